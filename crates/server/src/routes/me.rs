//! `GET /v1/me`: who am I, with what, allowed to do what.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::views::ts_opt;
use axum::Json;
use latchkey_core::KeyType;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MeUser {
    pub id: String,
    /// `null` for a publishable key: it ships in public code and must not reveal its owner's address.
    pub email: Option<String>,
    pub name: String,
    pub is_instance_admin: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeWorkspace {
    pub id: String,
    pub name: String,
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MeCredential {
    /// `api_key` (or `access_token`).
    pub r#type: &'static str,
    pub id: String,
    pub name: String,
    pub key_type: &'static str,
    pub environment: &'static str,
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: MeUser,
    pub workspace: MeWorkspace,
    pub credential: MeCredential,
    /// What this credential can do right now (owner's permissions ∩ the key's restriction).
    pub permissions: Vec<String>,
}

#[utoipa::path(get, path = "/v1/me", tag = "identity",
    responses((status = 200, body = Me), ApiError))]
pub async fn me(caller: Caller) -> Result<Json<Me>, ApiError> {
    let r = &caller.resolved;
    Ok(Json(Me {
        user: MeUser {
            id: r.principal.user_id.clone(),
            email: (r.key.key_type == KeyType::Secret).then(|| r.principal.email.clone()),
            name: r.principal.name.clone(),
            is_instance_admin: r.principal.is_instance_admin,
        },
        workspace: MeWorkspace {
            id: r.workspace.id.clone(),
            name: r.workspace.name.clone(),
            role: r.principal.role.clone(),
        },
        credential: MeCredential {
            r#type: "api_key",
            id: r.key.id.clone(),
            name: r.key.name.clone(),
            key_type: r.key.key_type.as_str(),
            environment: r.key.environment.as_str(),
            expires_at: ts_opt(r.key.expires_at),
        },
        permissions: caller.permissions().to_strings(),
    }))
}
