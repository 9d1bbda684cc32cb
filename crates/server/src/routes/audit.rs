//! `GET /v1/audit`: who did what, with which credential. Who reads which events is
//! [`crate::service::audit`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::ApiQuery;
use crate::routes::schema::{ActorId, AuditAction, EventId, Limit, Timestamp, WorkspaceId};
use crate::routes::views::{AuditEventView, List};
use crate::service;
use crate::state::AppState;
use axum::extract::State;
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
    let page = service::audit::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}
