//! The dashboard (SPEC §7): server-rendered pages over the very same service layer as the API
//! ([`crate::service`]), with the signed-in session standing in for a credential (see
//! [`session::session_caller`]). Works without JavaScript; `app.js` only adds the copy button
//! and confirmations. Every form answers with a redirect and a one-time message ([`flash`]).

pub mod audit;
pub mod brand;
pub mod chart;
pub mod flash;
pub mod form;
pub mod keys;
pub mod limits;
pub mod oidc;
pub mod pages;
pub mod portal;
pub mod session;
pub mod tokens;
pub mod webhooks;

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Dashboard forms are small; anything bigger is not ours.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/keys") }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/auth/oidc", get(oidc::start))
        .route(oidc::CALLBACK_PATH, get(oidc::callback))
        .route("/workspace", post(pages::switch_workspace))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/new", get(keys::new_key))
        .route("/keys/{id}", get(keys::page).post(keys::update))
        .route("/keys/{id}/limits", post(keys::save_limits))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/keys/{id}/roll", post(keys::roll))
        .route("/tokens", get(tokens::page).post(tokens::generate))
        .route("/tokens/{id}/renew", post(tokens::renew))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/members", get(pages::members_page).post(pages::add_member))
        .route("/members/{user_id}", get(pages::member_page))
        .route("/members/{user_id}/limits", post(pages::save_member_limits))
        .route("/members/{user_id}/role", post(pages::change_role))
        .route("/members/{user_id}/remove", post(pages::remove_member))
        .route("/roles/{role}", post(pages::edit_role))
        .route(
            "/settings",
            get(pages::settings_page).post(pages::save_settings),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::page).post(webhooks::update))
        .route("/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/audit", get(audit::page))
        .route("/account", get(pages::account_page))
        .route("/account/password", post(pages::change_password))
        .route("/portal/{secret}", get(portal::open).head(portal::peek))
        .route(
            "/assets/app.css",
            get(|| {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("../../assets/app.css"),
                )
            }),
        )
        .route("/assets/brand.css", get(brand_css))
        .route(
            "/assets/app.js",
            get(|| {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../../assets/app.js"),
                )
            }),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), csrf_guard))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            flash::clear_after_shown,
        ))
        .route_layer(middleware::from_fn_with_state(state, security_headers))
}

/// The provider's accent colour as a stylesheet (see [`brand`]).
async fn brand_css(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        brand::css(&state.dashboard),
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Paths that are the API's: an unknown one there is the API's 404 (problem+json), whatever asks.
const API_PREFIXES: [&str; 4] = ["/v1/", "/oauth/", "/.well-known/", "/auth/"];

/// An unknown URL: the API's problem+json under the API's paths or when JSON is asked for, an
/// HTML page for a person anywhere else (a mistyped dashboard link, an old bookmark).
pub async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    let api = path == "/v1" || API_PREFIXES.iter().any(|p| path.starts_with(p));
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants_json = accept.contains("json") && !accept.contains("text/html");
    if api || wants_json || req.method() != Method::GET && req.method() != Method::HEAD {
        return crate::error::ApiError::NotFound.into_response();
    }
    let mut r = pages::page_not_found(&state);
    harden(r.headers_mut(), false, &brand::csp(&state.dashboard));
    r
}

/// Every state-changing form must carry the session's CSRF token (sign-in carries its own,
/// checked against a cookie). Anything else is a 403, before any handler runs.
async fn csrf_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path() == "/login" {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return pages::form_too_large();
    };
    let submitted = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    let session = match session::cookie_value(&parts.headers, session::COOKIE) {
        Some(secret) => state
            .store
            .session(&session::session_id(&secret))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match session {
        Some(s) if session::csrf_ok(&s, submitted.as_deref()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Some(_) => pages::forbidden(
            "This form has expired or did not come from this site. Reload the page and try again.",
        ),
        None => axum::response::Redirect::to("/login").into_response(),
    }
}

/// A strict CSP (no inline script or style), no framing, no sniffing, no referrer, no caching.
async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let ok = resp.status() == StatusCode::OK;
    harden(resp.headers_mut(), ok, &brand::csp(&state.dashboard));
    resp
}

fn harden(h: &mut axum::http::HeaderMap, ok: bool, csp: &str) {
    if let Ok(v) = HeaderValue::try_from(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if ok && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
