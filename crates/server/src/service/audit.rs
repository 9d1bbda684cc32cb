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
