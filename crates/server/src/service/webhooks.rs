//! Webhook endpoints of the caller's workspace (SPEC §12.1): workspace admins
//! (`latchkey:members:manage`) only; another workspace's endpoint is a 404.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::views::PageParams;
use crate::routes::webhooks::{CreateWebhookRequest, UpdateWebhookRequest};
use crate::service::page_request;
use crate::state::AppState;
use crate::webhooks::{new_secret, ROTATION_OVERLAP_SECONDS};
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::{ids, webhooks, Secret, Validator};
use latchkey_store::{
    NewWebhookEndpoint, Page, WebhookDelivery, WebhookEndpoint, WebhookEndpointPatch,
};

pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_FILTERS: usize = 50;

/// An endpoint with the secret shown this once.
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: Secret,
}

/// The endpoint `id`, if the caller may manage it.
async fn managed(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookEndpoint, ApiError> {
    if !ids::is_id(ids::WEBHOOK, id) {
        return Err(ApiError::NotFound);
    }
    let e = state.store.get_webhook(id).await?;
    if !caller.sees_workspace(&e.workspace_id) {
        return Err(ApiError::NotFound);
    }
    caller.require(MEMBERS_MANAGE)?;
    Ok(e)
}

fn check_url(v: &mut Validator, url: &str) {
    if url.chars().count() > MAX_URL_CHARS {
        v.error("url", format!("must be at most {MAX_URL_CHARS} characters"));
        return;
    }
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
            v.check(
                u.username().is_empty() && u.password().is_none(),
                "url",
                "must not carry a user name or password",
            );
            v.check(u.fragment().is_none(), "url", "must not have a fragment");
        }
        _ => v.error("url", "must be an absolute http or https URL"),
    }
}

fn check_events(v: &mut Validator, events: &[String]) {
    if events.is_empty() || events.len() > MAX_FILTERS {
        v.error(
            "events",
            format!("must list 1 to {MAX_FILTERS} event filters"),
        );
    }
    for e in events {
        if !webhooks::is_valid_filter(e) {
            v.error("events", format!("`{e}` is not an event, `group.*` or `*`"));
        }
    }
}

fn check_description(v: &mut Validator, d: &str) {
    v.check(
        d.chars().count() <= MAX_DESCRIPTION_CHARS && !d.chars().any(char::is_control),
        "description",
        "must be at most 500 characters, none of them a control character",
    );
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: &CreateWebhookRequest,
) -> Result<EndpointWithSecret, ApiError> {
    caller.require(MEMBERS_MANAGE)?;
    caller.require_live()?;
    let mut v = Validator::new();
    check_url(&mut v, &body.url);
    check_events(&mut v, &body.events);
    let description = body.description.clone().unwrap_or_default();
    check_description(&mut v, &description);
    v.finish()?;
    let id = ids::new_id(ids::WEBHOOK);
    let secret = new_secret();
    let endpoint = state
        .store
        .create_webhook(
            &NewWebhookEndpoint {
                id: id.clone(),
                workspace_id: caller.workspace_id().to_owned(),
                url: body.url.clone(),
                description,
                events: dedup(&body.events),
                secret: state.webhooks.seal(&id, &secret),
            },
            &caller.actor(),
        )
        .await?;
    Ok(EndpointWithSecret { endpoint, secret })
}

fn dedup(events: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &PageParams,
) -> Result<Page<WebhookEndpoint>, ApiError> {
    caller.require(MEMBERS_MANAGE)?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::WEBHOOK)?;
    Ok(state
        .store
        .list_webhooks(caller.workspace_id(), page)
        .await?)
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookEndpoint, ApiError> {
    managed(state, caller, id).await
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &UpdateWebhookRequest,
) -> Result<WebhookEndpoint, ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()?;
    let mut v = Validator::new();
    if let Some(u) = &body.url {
        check_url(&mut v, u);
    }
    if let Some(e) = &body.events {
        check_events(&mut v, e);
    }
    if let Some(d) = &body.description {
        check_description(&mut v, d);
    }
    v.finish()?;
    Ok(state
        .store
        .update_webhook(
            id,
            &WebhookEndpointPatch {
                url: body.url.clone(),
                description: body.description.clone(),
                events: body.events.as_deref().map(dedup),
                enabled: body.enabled,
            },
            &caller.actor(),
        )
        .await?)
}

pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()?;
    Ok(state.store.delete_webhook(id, &caller.actor()).await?)
}

/// A new secret; the current one keeps signing for [`ROTATION_OVERLAP_SECONDS`].
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<EndpointWithSecret, ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()?;
    let secret = new_secret();
    let endpoint = state
        .store
        .rotate_webhook_secret(
            id,
            &state.webhooks.seal(id, &secret),
            crate::now() + ROTATION_OVERLAP_SECONDS,
            &caller.actor(),
        )
        .await?;
    Ok(EndpointWithSecret { endpoint, secret })
}

pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: &str,
    q: &PageParams,
) -> Result<Page<WebhookDelivery>, ApiError> {
    managed(state, caller, id).await?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::DELIVERY)?;
    Ok(state.store.list_webhook_deliveries(id, page).await?)
}

/// Sends a delivery again (same event id and body), as soon as the worker next looks.
pub async fn redeliver(
    state: &AppState,
    caller: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<WebhookDelivery, ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()?;
    if !ids::is_id(ids::DELIVERY, delivery_id) {
        return Err(ApiError::NotFound);
    }
    let d = state.store.get_webhook_delivery(delivery_id).await?;
    if d.endpoint_id != id {
        return Err(ApiError::NotFound);
    }
    let d = state.store.redeliver_webhook(delivery_id).await?;
    state.webhooks.wake();
    Ok(d)
}
