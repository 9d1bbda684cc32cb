//! Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::error::responses::BadRequest;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(),
    responses((status = 200, body = Health), BadRequest))]
pub async fn healthz() -> ApiJson<Health> {
    ApiJson(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(),
    responses((status = 200, body = Health),
        (status = 503, description = "Database unreachable", body = Health), BadRequest))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, ApiJson(Health { status: "ok" })),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ApiJson(Health {
                status: "database unreachable",
            }),
        ),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"), BadRequest))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Sampled at scrape time: the sizes cost nothing on the request path.
    for (kind, n) in state.engine.cache.sizes() {
        metrics::gauge!("latchkey_cache_entries", "kind" => kind).set(n as f64);
    }
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(),
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object), BadRequest))]
pub async fn openapi(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // Built from the same annotations as the router, once, on first request.
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    let mut doc = DOC
        .get_or_init(|| serde_json::to_value(super::api().1).expect("the document serialises"))
        .clone();
    // The limits this server was configured with (an environment token's lifetime is refused,
    // not capped, above it).
    if let Some(ttl) =
        doc.pointer_mut("/components/schemas/CreateTokenRequest/properties/ttl_seconds")
    {
        ttl["maximum"] = state.tokens.environment_max_ttl.into();
    }
    Ok(ApiJson(doc))
}
