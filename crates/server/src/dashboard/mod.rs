//! The dashboard (SPEC §7): server-rendered pages over the very same service layer as the API
//! ([`crate::service`]), with the signed-in session standing in for a credential (see
//! [`session::session_caller`]). Works without JavaScript; `app.js` only adds the copy button
//! and confirmations.

pub mod chart;
pub mod limits;
pub mod pages;
pub mod session;

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Dashboard forms are small; anything bigger is not ours.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/keys") }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/workspace", post(pages::switch_workspace))
        .route("/keys", get(pages::keys_page).post(pages::create_key))
        .route("/keys/{id}", get(pages::key_page))
        .route("/keys/{id}/limits", post(pages::save_key_limits))
        .route("/keys/{id}/revoke", post(pages::revoke_key))
        .route("/keys/{id}/roll", post(pages::roll_key))
        .route(
            "/tokens",
            get(pages::tokens_page).post(pages::generate_token),
        )
        .route("/tokens/{id}/renew", post(pages::renew_token))
        .route("/tokens/{id}/revoke", post(pages::revoke_token))
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
        .route("/audit", get(pages::audit_page))
        .route("/account", get(pages::account_page))
        .route("/account/password", post(pages::change_password))
        .route(
            "/assets/app.css",
            get(|| {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("../../assets/app.css"),
                )
            }),
        )
        .route(
            "/assets/app.js",
            get(|| {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../../assets/app.js"),
                )
            }),
        )
        .route_layer(middleware::from_fn_with_state(state, csrf_guard))
        .route_layer(middleware::from_fn(security_headers))
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
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let ok = resp.status() == StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
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
    resp
}
