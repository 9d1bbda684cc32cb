//! `GET /v1/audit`: who did what, with which credential. Needs `latchkey:audit:read`; shows the
//! caller's workspace (instance admins: every workspace, and events without one).

use crate::auth::Caller;
use crate::error::responses::{Authenticated, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::ApiQuery;
use crate::routes::schema::{ActorId, AuditAction, EventId, Limit, Timestamp, WorkspaceId};
use crate::routes::views::{AuditEventView, List};
use crate::service::{check_id_filter, page_request, parse_time};
use crate::state::AppState;
use axum::extract::State;
use latchkey_core::permission::AUDIT_READ;
use latchkey_core::{ids, Validator};
use latchkey_store::AuditFilter;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Default: the caller's workspace (an instance admin's: every workspace).
    #[param(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    /// A user id or a credential id.
    #[param(value_type = Option<ActorId>)]
    pub actor: Option<String>,
    /// e.g. `key.revoked`.
    #[param(value_type = Option<AuditAction>)]
    pub action: Option<String>,
    /// RFC 3339; events at or after this time.
    #[param(value_type = Option<Timestamp>)]
    pub since: Option<String>,
    #[param(value_type = Option<Limit>)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<EventId>)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = List<AuditEventView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<ApiJson<List<AuditEventView>>, ApiError> {
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
        actor: q.actor,
        action: q.action,
        since,
    };
    let page = state.store.list_audit(&filter, page).await?;
    Ok(ApiJson(List::from_page(page)))
}
