//! Portal sessions (SPEC §7): a single-use link, valid five minutes, that signs one of the
//! provider's customers into the dashboard for one workspace (`POST /v1/portal/sessions`).

use crate::Timestamp;
use latchkey_core::Secret;
use serde::{Deserialize, Serialize};

/// `POST /v1/portal/sessions`, with a live credential holding `latchkey:keys:manage_all` and
/// every permission the person holds in the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePortalSession {
    /// The person to sign in: an active member of the workspace.
    pub user_id: String,
    pub workspace_id: String,
    /// Where the dashboard's "Back to …" link goes: an absolute http or https URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// The link, this once: send the person's browser to `url` before `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalSession {
    /// It holds the link's secret: `Debug` prints `[redacted]`.
    #[serde(with = "crate::secret")]
    pub url: Secret,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_link_is_redacted_and_return_url_left_out_when_not_given() {
        let body = CreatePortalSession {
            user_id: "usr_1".into(),
            workspace_id: "ws_1".into(),
            return_url: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"user_id": "usr_1", "workspace_id": "ws_1"})
        );
        let s: PortalSession = serde_json::from_value(json!({
            "url": "https://latchkey.example/portal/the-secret-part",
            "expires_at": "2030-01-01T00:05:00Z",
        }))
        .unwrap();
        assert!(!format!("{s:?}").contains("the-secret-part"));
    }
}
