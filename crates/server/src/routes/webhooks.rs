//! `/v1/webhooks`: the caller's workspace's endpoints and their deliveries (SPEC §12.1). Who
//! may see and change them is [`crate::service::webhooks`]'s decision.

use crate::auth::Caller;
use crate::error::responses::{Authenticated, JsonBody, NotFound, Unprocessable};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::schema::{Limit, WebhookDeliveryId, WebhookEventFilter, WebhookId};
use crate::routes::views::{List, PageParams, WebhookDeliveryView, WebhookView, WebhookWithSecret};
use crate::service;
use crate::service::webhooks::EndpointWithSecret;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: an absolute `https` (or `http`) URL, at most 2048 characters.
    pub url: String,
    /// 1 to 50 filters.
    #[schema(value_type = Vec<WebhookEventFilter>)]
    pub events: Vec<String>,
    /// At most 500 characters.
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<WebhookEventFilter>>)]
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` turns an endpoint disabled by a 410 back on.
    pub enabled: Option<bool>,
}

fn with_secret(s: EndpointWithSecret) -> WebhookWithSecret {
    WebhookWithSecret {
        secret: s.secret.expose().to_owned(),
        view: WebhookView::from(&s.endpoint),
    }
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, body = WebhookWithSecret), Authenticated, JsonBody))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, ApiJson<WebhookWithSecret>), ApiError> {
    let created = service::webhooks::create(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, ApiJson(with_secret(created))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    params(("limit" = Option<Limit>, Query), ("cursor" = Option<WebhookId>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, body = List<WebhookView>), Authenticated, Unprocessable))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<ApiJson<List<WebhookView>>, ApiError> {
    let page = service::webhooks::list(&state, &caller, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = WebhookId, Path)),
    responses((status = 200, body = WebhookView), Authenticated, NotFound))]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<WebhookView>, ApiError> {
    let e = service::webhooks::get(&state, &caller, &id).await?;
    Ok(ApiJson(WebhookView::from(&e)))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = WebhookId, Path)),
    request_body = UpdateWebhookRequest,
    responses((status = 200, body = WebhookView), Authenticated, JsonBody, NotFound))]
pub async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<ApiJson<WebhookView>, ApiError> {
    let e = service::webhooks::update(&state, &caller, &id, &body).await?;
    Ok(ApiJson(WebhookView::from(&e)))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = WebhookId, Path)),
    responses((status = 204, description = "Deleted, with its delivery log"), Authenticated, NotFound))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::webhooks::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = WebhookId, Path)),
    responses((status = 200, body = WebhookWithSecret, description = "The new secret; the previous one signs too for 24 h"),
        Authenticated, NotFound))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<WebhookWithSecret>, ApiError> {
    let rotated = service::webhooks::rotate_secret(&state, &caller, &id).await?;
    Ok(ApiJson(with_secret(rotated)))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = WebhookId, Path), ("limit" = Option<Limit>, Query), ("cursor" = Option<WebhookDeliveryId>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, body = List<WebhookDeliveryView>), Authenticated, NotFound, Unprocessable))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<ApiJson<List<WebhookDeliveryView>>, ApiError> {
    let page = service::webhooks::deliveries(&state, &caller, &id, &q).await?;
    Ok(ApiJson(List::from_page(page)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = WebhookId, Path), ("delivery_id" = WebhookDeliveryId, Path)),
    responses((status = 202, body = WebhookDeliveryView, description = "Queued again, due now"), Authenticated, NotFound))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, ApiJson<WebhookDeliveryView>), ApiError> {
    let d = service::webhooks::redeliver(&state, &caller, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(WebhookDeliveryView::from(&d))))
}
