//! `/v1/users` (SPEC §6.3): the Admin API's users.

use crate::list::Page;
use crate::patch::Patch;
use crate::Timestamp;
use latchkey_core::roles::InstanceRole;
use latchkey_core::Secret;
use serde::{Deserialize, Serialize};

/// `POST /v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    /// For the dashboard, 12 to 1024 characters; service accounts need none. `Debug` prints
    /// `[redacted]`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::option"
    )]
    pub password: Option<Secret>,
    /// `admin` or `verifier` (instance admins only); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<InstanceRole>,
}

/// `PATCH /v1/users/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUser {
    /// The user themself or an instance admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new instance role, or [`Patch::Clear`] to take it away (instance admins only).
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub instance_role: Patch<InstanceRole>,
}

impl UpdateUser {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The query of `GET /v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFilter {
    /// Only the members of this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub instance_role: Option<InstanceRole>,
    /// `instance_role == Some(Admin)`, as earlier versions answered it.
    pub is_instance_admin: bool,
    pub created_at: Timestamp,
    pub deactivated_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn none_takes_the_instance_role_away_and_absent_leaves_it() {
        let demote = UpdateUser {
            instance_role: Patch::Clear,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&demote).unwrap(),
            json!({"instance_role": null})
        );
        let promote = UpdateUser {
            instance_role: Patch::Set(InstanceRole::Verifier),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&promote).unwrap(),
            json!({"instance_role": "verifier"})
        );
        let rename = UpdateUser {
            name: Some("Ada".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&rename).unwrap(),
            json!({"name": "Ada"})
        );
        assert!(UpdateUser::default().is_empty() && !rename.is_empty());
    }

    #[test]
    fn the_password_is_sent_but_never_printed() {
        let u = CreateUser {
            email: "a@example.com".into(),
            name: "A".into(),
            password: Some(Secret::new("correct horse battery")),
            instance_role: None,
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"email": "a@example.com", "name": "A", "password": "correct horse battery"})
        );
        assert!(!format!("{u:?}").contains("horse"));
    }
}
