//! The change stream's messages (`GET /v1/changes`, SPEC §10.6).

use serde::{Deserialize, Serialize};

/// What a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A key was created, edited, rolled or revoked: `key_id`, `workspace_id`.
    Key,
    /// An access token was revoked or replaced: `token_id`, `key_id`, `workspace_id`.
    Token,
    /// A member's standing in a workspace (membership, role, grant): `workspace_id`, `user_id`.
    Principal,
    /// A workspace's roles or settings: every member's standing: `workspace_id`.
    Workspace,
    /// A user (deactivation, instance role), in every workspace: `user_id`.
    User,
}

/// One `change` event's data: the ids a remote cache indexes its answers by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The change's number in the log (not a position to resume from: see the event's `id`).
    pub seq: i64,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl ChangeEvent {
    pub fn new(seq: i64, kind: ChangeKind) -> Self {
        Self {
            seq,
            kind,
            key_id: None,
            token_id: None,
            workspace_id: None,
            user_id: None,
        }
    }
}

/// The data of `ready` and `reset` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMarker {
    /// The position the stream stands at (also the event's `id`).
    pub position: i64,
    /// Why a `reset` was sent: `too_far_behind`, `fell_behind`, `undescribed_change`, `unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Names of the stream's events.
pub const READY: &str = "ready";
pub const CHANGE: &str = "change";
pub const RESET: &str = "reset";
