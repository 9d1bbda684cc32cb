//! The HTTP API: one module per resource, assembled into a router whose OpenAPI document is
//! generated from the same handler annotations (so it cannot miss an endpoint). Handlers are
//! thin: they extract, call [`crate::service`] (where every decision is) and wrap the answer.

pub mod audit;
pub mod changes;
pub mod forward_auth;
pub mod keys;
pub mod leaks;
pub mod me;
pub mod oauth;
pub mod ops;
pub mod portal;
pub mod schema;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod verify;
pub mod views;
pub mod webhooks;
pub mod workspaces;

use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::{auth, metrics_layer};
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::FutureExt;
use serde::{Deserialize, Deserializer};
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "Latchkey", description = "API keys and access tokens: issue, verify, roll, revoke."),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("api_key" = [])),
    components(schemas(Problem)),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        // The field schemas, whether or not a body refers to them (parameters do, by `$ref`).
        c.schemas.extend(schema::components());
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        // OAuth clients: `client_id:client_secret` (the key's id and the key), RFC 6749 §2.3.1.
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The OpenAPI document and the router, built together.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::get_key, keys::update_key, keys::revoke_key))
        .routes(routes!(keys::roll_key))
        .routes(routes!(keys::import_keys))
        .routes(routes!(leaks::report))
        .routes(routes!(leaks::github))
        .routes(routes!(usage::key_usage))
        .routes(routes!(usage::usage))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::deactivate_user
        ))
        .routes(routes!(
            workspaces::create_workspace,
            workspaces::list_workspaces
        ))
        .routes(routes!(
            workspaces::get_workspace,
            workspaces::update_workspace
        ))
        .routes(routes!(workspaces::list_members))
        .routes(routes!(workspaces::put_member, workspaces::remove_member))
        .routes(routes!(workspaces::list_roles))
        .routes(routes!(workspaces::get_role, workspaces::put_role))
        .routes(routes!(workspaces::create_grant, workspaces::list_grants))
        .routes(routes!(workspaces::delete_grant))
        .routes(routes!(tokens::exchange))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::renew_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(portal::create_portal_session))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::introspect))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::jwks))
        .routes(routes!(oauth::metadata))
        .routes(routes!(verify::verify))
        .routes(routes!(changes::changes))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(audit::list_audit))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .split_for_parts();
    optional_bodies(&mut doc);
    (router, doc)
}

/// `request_body(content = Option<T>)` is how a handler taking `ApiJsonOrEmpty<T>` says its
/// body may be left out. utoipa renders that as a required body that may be JSON `null`, which
/// the server refuses (422); what it accepts is no body at all, or a `T`.
fn optional_bodies(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{schema::Schema, RefOr, Required};
    let ops = doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
    });
    for op in ops.flatten() {
        let Some(body) = op.request_body.as_mut() else {
            continue;
        };
        let mut optional = false;
        for content in body.content.values_mut() {
            if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
                let is_null = |s: &RefOr<Schema>| {
                    serde_json::to_value(s).is_ok_and(|v| v == serde_json::json!({"type": "null"}))
                };
                if let [a, b] = one_of.items.as_slice() {
                    let inner = if is_null(a) {
                        Some(b)
                    } else if is_null(b) {
                        Some(a)
                    } else {
                        None
                    };
                    if let Some(inner) = inner.cloned() {
                        content.schema = Some(inner);
                        optional = true;
                    }
                }
            }
        }
        if optional {
            body.required = Some(Required::False);
        }
    }
}

pub fn router(state: AppState) -> Router {
    let (api_router, _) = api();
    api_router
        .merge(forward_auth::router())
        .merge(crate::dashboard::router(state.clone()))
        .fallback(crate::dashboard::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(edge))
        .with_state(state)
}

/// Every request passes here once (one layer rather than a stack of them: each layer boxes,
/// clones and moves per request). In order: refuse what no handler should see, run the handler
/// inside the request's log span, turn a panic into a bare 500 (the payload may hold anything),
/// forbid caching, log and record the latency. Logs and metrics carry the matched route
/// template, never the raw path, which could hold ids or a key pasted into a URL by mistake.
///
/// A request that may write runs in its own task: a client that disconnects must not stop a
/// handler between its commit and the cache invalidation that follows it (this node would
/// serve the old answer until its change-log poll). `POST /v1/verify` and forward auth (whatever
/// the method it is asked about) only read.
async fn edge(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = metrics_layer::method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!("request", method, route);
    let writes = !matches!(method, "GET" | "HEAD" | "OPTIONS")
        && route != "/v1/verify"
        && !route.starts_with(forward_auth::PREFIX);
    let limits = crate::ratelimit_headers::Slot::default();
    req.extensions_mut().insert(limits.clone());
    let mut resp = match refusal(&req) {
        Some(refused) => refused.into_response(),
        // A panic in the spawned task comes back as a `JoinError`.
        None if writes => tokio::spawn(next.run(req).instrument(span.clone()))
            .await
            .unwrap_or_else(|_| ApiError::Internal.into_response()),
        None => AssertUnwindSafe(next.run(req).instrument(span.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| ApiError::Internal.into_response()),
    };
    crate::ratelimit_headers::apply(&limits, &mut resp);
    // Responses are never cached: some carry a secret shown once.
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let elapsed = start.elapsed();
    let (status, latency_ms) = (resp.status().as_u16(), elapsed.as_secs_f64() * 1e3);
    span.in_scope(|| {
        if resp.status().is_server_error() {
            tracing::error!(status, latency_ms, "finished processing request");
        } else {
            tracing::info!(status, latency_ms, "finished processing request");
        }
    });
    metrics_layer::observe(method, route, resp.status(), elapsed);
    resp
}

/// SPEC §4: a credential in a URL ends up in proxy and server logs, so it is refused outright.
/// Control characters (`%00`, …) in the path or query are refused before they reach a handler
/// or the database.
fn refusal(req: &Request) -> Option<ApiError> {
    if req.uri().query().is_some_and(auth::query_has_credential) {
        return Some(ApiError::BadRequest {
            code: "credentials_in_query",
            detail: latchkey_proto::denial::CREDENTIALS_IN_QUERY.into(),
        });
    }
    if has_encoded_control(req.uri().path()) || req.uri().query().is_some_and(has_encoded_control) {
        return Some(ApiError::bad_request("The URL contains control characters"));
    }
    None
}

/// `%00`–`%1F` or `%7F` anywhere in a raw URL component.
fn has_encoded_control(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Integer fields of JSON bodies. JSON has one number type, and JSON Schema's `integer` is any
/// number with no fractional part: `60.0` is 60 (and is what Python sends for
/// `timedelta(minutes=1).total_seconds()`). serde alone refuses it for an integer type.
pub mod integer {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    fn from_number<E: Error, T: TryFrom<i64>>(n: serde_json::Number) -> Result<T, E> {
        let i = match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i),
            // `i64::MAX as f64` is 2^63, one past the range.
            (None, Some(f)) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                Some(f as i64)
            }
            _ => None,
        };
        let i = i.ok_or_else(|| E::custom(format!("expected an integer, got {n}")))?;
        T::try_from(i).map_err(|_| E::custom(format!("{i} is out of range")))
    }

    /// For `Option<integer>` fields (with `#[serde(default)]`).
    pub fn option<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(from_number)
            .transpose()
    }

    /// For PATCH fields that tell absent (`None`) from `null` (`Some(None)`), like [`super::nullable`].
    pub fn nullable<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        option(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::{Method, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_a_bare_500_that_is_not_cached() {
        async fn boom() -> &'static str {
            panic!("a payload that must not reach the client: sk_live_0123456789")
        }
        let app: Router = Router::new()
            .route("/boom", get(boom).post(boom))
            .layer(middleware::from_fn(edge));
        // GET runs in the request's task, POST in a task of its own (writes): both are caught.
        for method in [Method::GET, Method::POST] {
            let req = Request::builder()
                .method(method.clone())
                .uri("/boom")
                .body(Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{method}");
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            assert_eq!(
                resp.headers()[header::CONTENT_TYPE],
                "application/problem+json"
            );
            let body = to_bytes(resp.into_body(), 4096).await.unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(
                !body.contains("sk_live") && !body.contains("payload"),
                "{body}"
            );
        }
    }
}
