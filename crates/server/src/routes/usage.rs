//! `GET /v1/keys/{id}/usage` and `GET /v1/usage` (SPEC §11.3). Who may read what is
//! [`crate::service::usage`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::schema::{KeyId, Timestamp, UserId, WorkspaceId};
use crate::routes::views::ts;
use crate::service::usage::{self as service, Point, Span, Window};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowParams {
    /// Start of the window, RFC 3339 (default: 24 hours before `until`, 30 days by day), rounded
    /// down to a bucket.
    #[param(value_type = Option<Timestamp>)]
    pub since: Option<String>,
    /// End of the window, RFC 3339 (default: now).
    #[param(value_type = Option<Timestamp>)]
    pub until: Option<String>,
    /// `minute`, `hour` (default) or `day` (UTC days). At most 1440 buckets per answer.
    #[param(value_type = Option<String>, pattern = "^(minute|hour|day)$")]
    pub granularity: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Default: the calling credential's workspace.
    #[param(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    /// Only this owner's keys.
    #[param(value_type = Option<UserId>)]
    pub owner_id: Option<String>,
    /// As for a key's usage.
    #[param(value_type = Option<Timestamp>)]
    pub since: Option<String>,
    #[param(value_type = Option<Timestamp>)]
    pub until: Option<String>,
    #[param(value_type = Option<String>, pattern = "^(minute|hour|day)$")]
    pub granularity: Option<String>,
}

/// One bucket: how many verifications passed, how many were refused and why, and the
/// credits spent.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePoint {
    /// The bucket's start.
    #[schema(value_type = Timestamp)]
    pub at: String,
    pub valid: i64,
    /// Refused verifications by verify code (`RATE_LIMITED`, `EXPIRED`, …).
    pub denied: BTreeMap<String, i64>,
    pub credits_spent: i64,
}

/// Every bucket of the window, oldest first (empty ones included).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSeries {
    pub data: Vec<UsagePoint>,
}

fn answer(points: Vec<Point>) -> ApiJson<UsageSeries> {
    ApiJson(UsageSeries {
        data: points
            .into_iter()
            .map(|p| UsagePoint {
                at: ts(p.at),
                valid: p.valid,
                denied: p.denied,
                credits_spent: p.credits_spent,
            })
            .collect(),
    })
}

fn span(
    since: &Option<String>,
    until: &Option<String>,
    granularity: &Option<String>,
) -> Result<Span, ApiError> {
    let w = Window {
        since: since.as_deref(),
        until: until.as_deref(),
        granularity: granularity.as_deref(),
    };
    Span::parse(&w, crate::now())
}

#[utoipa::path(get, path = "/v1/keys/{id}/usage", tag = "usage",
    params(("id" = KeyId, Path), WindowParams),
    responses((status = 200, body = UsageSeries), Authenticated, NotFound, Unprocessable))]
pub async fn key_usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(w): ApiQuery<WindowParams>,
) -> Result<ApiJson<UsageSeries>, ApiError> {
    let span = span(&w.since, &w.until, &w.granularity)?;
    Ok(answer(service::of_key(&state, &caller, &id, span).await?))
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsageSeries), Authenticated, NotFound, Unprocessable))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> Result<ApiJson<UsageSeries>, ApiError> {
    let span = span(&q.since, &q.until, &q.granularity)?;
    let points = service::of_workspace(
        &state,
        &caller,
        q.workspace_id.as_deref(),
        q.owner_id.as_deref(),
        span,
    )
    .await?;
    Ok(answer(points))
}
