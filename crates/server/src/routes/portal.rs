//! `POST /v1/portal/sessions` (SPEC §7): a provider's server asks for a single-use link that
//! signs one of its customers into the dashboard ([`crate::service::portal`]); the browser side
//! of the link is [`crate::dashboard::portal`].

use crate::auth::Caller;
use crate::error::responses::{Authenticated, JsonBody, NotFound};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::schema::{ReturnUrl, Timestamp, UserId, WorkspaceId};
use crate::routes::views::ts;
use crate::service;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalSessionRequest {
    /// The person to sign in: an active member of the workspace.
    #[schema(value_type = UserId)]
    pub user_id: String,
    /// The workspace they are signed into.
    #[schema(value_type = WorkspaceId)]
    pub workspace_id: String,
    /// Where the dashboard's "Back to …" link goes (shown, never followed by itself). Without
    /// it the dashboard shows no such link.
    #[schema(value_type = Option<ReturnUrl>)]
    pub return_url: Option<String>,
}

/// A portal link, this once: send the person's browser to `url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalSession {
    /// Signs the person in once, until `expires_at`; the secret in it is never shown again.
    #[schema(example = "https://latchkey.example.com/portal/3q2-7wAAAAA…")]
    pub url: String,
    /// Five minutes after it was made.
    #[schema(value_type = Timestamp)]
    pub expires_at: String,
}

#[utoipa::path(post, path = "/v1/portal/sessions", tag = "portal",
    request_body = CreatePortalSessionRequest,
    description = "A single-use link, valid for five minutes, that signs `user_id` into the dashboard \
        for `workspace_id` without a password. Needs a live credential holding \
        `latchkey:keys:manage_all` and every permission the person holds in the workspace (403 \
        otherwise). Another workspace, and its people, are 404; someone who is not an active member \
        of the workspace is a 422 on `user_id`.",
    responses((status = 201, body = PortalSession), Authenticated, JsonBody, NotFound))]
pub async fn create_portal_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePortalSessionRequest>,
) -> Result<(StatusCode, ApiJson<PortalSession>), ApiError> {
    let link = service::portal::create(&state, &caller, &body).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(PortalSession {
            url: link.url.expose().to_owned(),
            expires_at: ts(link.expires_at),
        }),
    ))
}
