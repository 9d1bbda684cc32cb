//! `GET /v1/audit` (SPEC §6.5): who did what, with which credential.

use crate::list::Page;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Default: the caller's workspace (an instance admin's: every workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// A user id, or the id of the key or token that acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// e.g. `key.revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Events at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(flatten)]
    pub page: Page,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub at: Timestamp,
    /// `None` for events outside any workspace (users, for instance).
    pub workspace_id: Option<String>,
    /// `key.created`, `member.role_changed`, … (SPEC §6.5).
    pub action: String,
    pub actor: AuditActor,
    pub target: AuditTarget,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// What changed, by action (a role change's `from` and `to`, …).
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    pub user_id: Option<String>,
    /// The key or token that acted; `None` for the dashboard and the bootstrap.
    pub credential_id: Option<String>,
    /// Its name at the time.
    pub credential_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTarget {
    /// `key`, `token`, `user`, `workspace`, `member`, `role`, `grant`, …
    #[serde(rename = "type")]
    pub target_type: String,
    /// The target's id (a role's name for `role`).
    pub id: String,
}
