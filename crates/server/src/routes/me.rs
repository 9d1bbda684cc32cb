//! `GET /v1/me`: who am I, with what, allowed to do what.

use crate::auth::Caller;
use crate::error::responses::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::schema::{
    CredentialId, CredentialType, EnvironmentName, InstanceRoleName, KeyId, KeyTypeName,
    Permission, RoleName, Timestamp, UserId, WorkspaceId,
};
use crate::routes::views::ts_opt;
use latchkey_core::KeyType;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MeUser {
    #[schema(value_type = UserId)]
    pub id: String,
    /// `null` for a publishable key: it ships in public code and must not reveal its owner's address.
    pub email: Option<String>,
    pub name: String,
    /// `admin`, `verifier` or `null`.
    #[schema(value_type = Option<InstanceRoleName>)]
    pub instance_role: Option<&'static str>,
    pub is_instance_admin: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeWorkspace {
    #[schema(value_type = WorkspaceId)]
    pub id: String,
    pub name: String,
    /// `null` when the owner is no member (an instance admin acting elsewhere).
    #[schema(value_type = Option<RoleName>)]
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MeCredential {
    /// `api_key` (or `access_token`).
    #[schema(value_type = CredentialType)]
    pub r#type: &'static str,
    #[schema(value_type = CredentialId)]
    pub id: String,
    pub name: String,
    #[schema(value_type = KeyTypeName)]
    pub key_type: &'static str,
    #[schema(value_type = EnvironmentName)]
    pub environment: &'static str,
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    /// The API key (for an access token: the key it was obtained from).
    #[schema(value_type = KeyId)]
    pub key_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: MeUser,
    pub workspace: MeWorkspace,
    pub credential: MeCredential,
    /// With a key + token pair: the API key presented beside the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<KeyId>)]
    pub paired_key_id: Option<String>,
    /// What this credential can do right now (owner's permissions ∩ the key's restriction).
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
}

#[utoipa::path(get, path = "/v1/me", tag = "identity",
    responses((status = 200, body = Me), Authenticated))]
pub async fn me(caller: Caller) -> Result<ApiJson<Me>, ApiError> {
    let r = &caller.resolved;
    Ok(ApiJson(Me {
        user: MeUser {
            id: r.principal.user_id.clone(),
            email: (r.key.key_type == KeyType::Secret).then(|| r.principal.email.clone()),
            name: r.principal.name.clone(),
            instance_role: r.principal.instance_role().map(|i| i.as_str()),
            is_instance_admin: r.principal.is_instance_admin,
        },
        workspace: MeWorkspace {
            id: r.workspace.id.clone(),
            name: r.workspace.name.clone(),
            role: r.principal.role.clone(),
        },
        credential: MeCredential {
            r#type: r.credential_type(),
            id: r.credential_id().to_owned(),
            name: r.credential_name().into_owned(),
            key_type: r.key.key_type.as_str(),
            environment: r.key.environment.as_str(),
            expires_at: ts_opt(r.expires_at()),
            key_id: r.key.id.clone(),
        },
        paired_key_id: caller.pair.as_ref().map(|p| p.key.id.clone()),
        permissions: caller.permissions().to_strings(),
    }))
}
