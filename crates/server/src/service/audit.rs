//! The audit log: who did what, with which credential. Reading it needs `latchkey:audit:read`;
//! a caller reads its own workspace's events (an instance admin: every workspace's, and the
//! events that belong to none).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::audit::AuditParams;
use crate::service::{check_id_filter, page_request, parse_time};
use crate::state::AppState;
use latchkey_core::permission::AUDIT_READ;
use latchkey_core::{ids, Validator};
use latchkey_store::{AuditEvent, AuditFilter, Page};

pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &AuditParams,
) -> Result<Page<AuditEvent>, ApiError> {
    caller.require(AUDIT_READ)?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::EVENT)?;
    let mut v = Validator::new();
    check_id_filter(
        &mut v,
        "workspace_id",
        q.workspace_id.as_deref(),
        &[ids::WORKSPACE],
    );
    check_id_filter(
        &mut v,
        "actor",
        q.actor.as_deref(),
        &[ids::USER, ids::KEY, ids::TOKEN],
    );
    let since = q
        .since
        .as_deref()
        .and_then(|s| parse_time(&mut v, "since", s));
    v.finish()?;
    let workspace_id = match (&q.workspace_id, caller.is_instance_admin()) {
        (None, true) => None,
        (ws, _) => Some(caller.target_workspace(ws.as_deref())?),
    };
    let filter = AuditFilter {
        workspace_id,
        actor: q.actor.clone(),
        action: q.action.clone(),
        since,
    };
    Ok(state.store.list_audit(&filter, page).await?)
}

/// The people of the caller's workspace (user id → email and name), for a caller who may read
/// the log: the names beside its ids, and whom a filter by email means.
pub async fn people(
    state: &AppState,
    caller: &Caller,
) -> Result<std::collections::HashMap<String, (String, String)>, ApiError> {
    caller.require(AUDIT_READ)?;
    Ok(super::workspaces::all_members(state, caller.workspace_id())
        .await?
        .into_iter()
        .map(|m| (m.user_id, (m.email, m.name)))
        .collect())
}

/// The names of the keys `events` are about or were made with (key id → name), of the caller's
/// workspace only, in one query.
pub async fn key_names(
    state: &AppState,
    caller: &Caller,
    events: &[AuditEvent],
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    caller.require(AUDIT_READ)?;
    let mut key_ids: Vec<String> = events
        .iter()
        .filter(|e| e.target_type == "key")
        .map(|e| e.target_id.clone())
        .chain(events.iter().filter_map(|e| {
            e.actor
                .credential_id
                .clone()
                .filter(|c| c.starts_with(ids::KEY))
        }))
        .collect();
    key_ids.sort();
    key_ids.dedup();
    let ws = caller.workspace_id();
    Ok(state
        .store
        .key_names(ws, &key_ids)
        .await?
        .into_iter()
        .collect())
}

/// What an audit page names its objects with: [`people`] and [`key_names`].
#[derive(Default)]
pub struct Names {
    /// user id → (email, name)
    pub people: std::collections::HashMap<String, (String, String)>,
    /// key id → name
    pub keys: std::collections::HashMap<String, String>,
}
