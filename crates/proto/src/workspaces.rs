//! `/v1/workspaces` (SPEC §6.3): tenants, their settings, members, roles and grants.

use crate::list::Page;
use crate::patch::Patch;
use crate::Timestamp;
use latchkey_core::Permission;
use serde::{Deserialize, Serialize};

/// `POST /v1/workspaces` (instance admins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWorkspace {
    pub name: String,
}

/// `PATCH /v1/workspaces/{id}`: the name and the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWorkspace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A lone credential is refused: requests carry an API key and an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pair: Option<bool>,
    /// The most a publishable key of the workspace may do; never a `latchkey:` permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishable_permissions: Option<Vec<Permission>>,
    /// The longest lifetime of a new key (60 s to 10 years), or [`Patch::Clear`] for no limit.
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub max_key_ttl_seconds: Patch<i64>,
}

impl UpdateWorkspace {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub require_pair: bool,
    pub publishable_permissions: Vec<Permission>,
    pub max_key_ttl_seconds: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `PUT /v1/workspaces/{id}/members/{user_id}`: adds the user (201) or changes their role (200).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutMember {
    /// `admin`, `developer`, `member`, `viewer` or a custom role of the workspace.
    pub role: String,
    /// The member's rate limits; `None` leaves them as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<Vec<latchkey_core::ratelimit::NamedLimit>>,
    /// The member's credits; [`Patch::Clear`] for unlimited, [`Patch::Keep`] leaves them.
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub credits: Patch<latchkey_core::credits::Credits>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    /// The user is active (not deactivated).
    pub active: bool,
    /// When the user joined the workspace.
    pub created_at: Timestamp,
    /// Shared by all of the member's keys and tokens in the workspace.
    #[serde(default)]
    pub ratelimits: Vec<latchkey_core::ratelimit::NamedLimit>,
    #[serde(default)]
    pub credits: Option<latchkey_core::credits::Credits>,
}

/// `PUT /v1/workspaces/{id}/roles/{role}`: the role's whole permission list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRole {
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<Permission>,
    /// One of `admin`, `developer`, `member`, `viewer`.
    pub built_in: bool,
    pub updated_at: Timestamp,
}

/// `POST /v1/workspaces/{id}/grants`: one permission for one member, besides their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGrant {
    pub user_id: String,
    pub permission: Permission,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub workspace_id: String,
    pub user_id: String,
    pub permission: Permission,
    pub created_at: Timestamp,
}

/// The query of `GET /v1/workspaces/{id}/grants`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantFilter {
    /// Only this member's grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_lifetime_limit_is_set_cleared_or_left() {
        let set = UpdateWorkspace {
            max_key_ttl_seconds: Patch::Set(3600),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            json!({"max_key_ttl_seconds": 3600})
        );
        let clear = UpdateWorkspace {
            max_key_ttl_seconds: Patch::Clear,
            require_pair: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&clear).unwrap(),
            json!({"max_key_ttl_seconds": null, "require_pair": false})
        );
        assert!(UpdateWorkspace::default().is_empty());
    }
}
