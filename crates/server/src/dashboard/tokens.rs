//! Environment access tokens in the dashboard: generate one from one of your keys for a lifetime
//! you choose, see which key each came from, renew and revoke. Through [`service::tokens`].

use super::flash::{self, Flash};
use super::pages::{
    listed, load_failed, messages, nav, render, short_time, with_status, DashForm, Nav,
};
use super::session::DashUser;
use crate::error::ApiError;
use crate::routes::keys::KeyListParams;
use crate::routes::tokens::{CreateTokenRequest, TokenView};
use crate::routes::views::PageParams;
use crate::service;
use crate::service::tokens::TokenSource;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::{Environment, KeyType};
use serde::Deserialize;

const DAY: i64 = 86_400;
/// The lifetimes offered, in days; those beyond the server's maximum are left out.
const LIFETIME_DAYS: [i64; 5] = [1, 7, 30, 90, 365];

/// One row: the token and the key it was generated from.
pub struct TokenRow {
    pub token: TokenView,
    /// The source key's name and redacted form ("Checkout (sk_live_…AbCd)"), or its id when it
    /// is no longer visible.
    pub from_key: String,
}

/// A key a token can be generated from (its group says test or live).
pub struct SourceKey {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Nav,
    rows: Vec<TokenRow>,
    /// The keys a token can come from, by environment ("Test keys", "Live keys"), each group
    /// non-empty: the group says test or live, so an option need only name its key.
    key_groups: Vec<(&'static str, Vec<SourceKey>)>,
    /// (days, words, selected)
    lifetimes: Vec<(i64, String, bool)>,
    can_manage: bool,
    errors: Vec<String>,
    typed_name: String,
}

/// A key as the picker and the "From key" column name it: "name (sk_test_…abcd)".
fn key_label(k: &latchkey_store::ApiKeyRecord) -> String {
    format!("{} ({})", k.name, k.redacted)
}

fn lifetime_words(days: i64) -> String {
    match days {
        1 => "1 day".into(),
        365 => "1 year".into(),
        d => format!("{d} days"),
    }
}

async fn view(
    state: &AppState,
    user: &DashUser,
    errors: Vec<String>,
    typed_name: String,
    status: StatusCode,
) -> Response {
    let c = &user.caller;
    let page = PageParams {
        limit: Some(500),
        cursor: None,
    };
    let tokens: Vec<TokenView> = match listed(service::tokens::list(state, c, &page).await) {
        Ok(page) => page
            .map(|p| p.data.iter().map(TokenView::from).collect())
            .unwrap_or_default(),
        Err(e) => return load_failed(state, user, "tokens", e).await,
    };
    // Every key of the caller's, active or not, to name each token's source; the picker offers
    // only the active secret keys that were not rolled away (a rolled key in its grace period
    // still works, but a new token from it would die with it soon).
    let params = KeyListParams {
        workspace_id: None,
        owner_id: Some(c.user_id().to_owned()),
        environment: None,
        status: None,
        r#type: Some("secret".into()),
        name: None,
        limit: Some(500),
        cursor: None,
    };
    let mine = match listed(service::keys::list(state, c, &params).await) {
        Ok(page) => page.map(|p| p.data).unwrap_or_default(),
        Err(e) => return load_failed(state, user, "tokens", e).await,
    };
    let now = crate::now();
    // Active secret keys that were not rolled away, by environment ("Test keys", "Live
    // keys"), each group only when it has one.
    let key_groups = [
        (Environment::Test, "Test keys"),
        (Environment::Live, "Live keys"),
    ]
    .into_iter()
    .map(|(env, heading)| {
        let group: Vec<SourceKey> = mine
            .iter()
            .filter(|k| {
                k.environment == env
                    && k.key_type == KeyType::Secret
                    && k.rolled_to.is_none()
                    && k.status(now) == latchkey_store::KeyStatus::Active
            })
            .map(|k| SourceKey {
                id: k.id.clone(),
                label: key_label(k),
            })
            .collect();
        (heading, group)
    })
    .filter(|(_, group)| !group.is_empty())
    .collect();
    let rows = tokens
        .into_iter()
        .map(|mut t| {
            t.created_at = short_time(&t.created_at);
            t.expires_at = short_time(&t.expires_at);
            let from_key = mine
                .iter()
                .find(|k| k.id == t.key_id)
                .map_or_else(|| t.key_id.clone(), key_label);
            TokenRow { token: t, from_key }
        })
        .collect();
    let max_days = state.tokens.environment_max_ttl / DAY;
    let default_days = state.tokens.environment_default_ttl / DAY;
    let lifetimes = LIFETIME_DAYS
        .iter()
        .filter(|d| **d <= max_days.max(1))
        .map(|d| (*d, lifetime_words(*d), *d == default_days))
        .collect();
    let page = TokensPage {
        nav: nav(state, user, "tokens").await,
        rows,
        key_groups,
        lifetimes,
        can_manage: service::keys::may_read_keys(c),
        errors,
        typed_name,
    };
    with_status(render(page), status)
}

pub async fn page(State(state): State<AppState>, user: DashUser) -> Response {
    view(&state, &user, vec![], String::new(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct GenerateForm {
    key_id: String,
    name: String,
    lifetime_days: Option<i64>,
}

/// "Generate": a token from one of the user's own active secret keys, in that key's environment.
pub async fn generate(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<GenerateForm>,
) -> Response {
    let req = CreateTokenRequest {
        name: f.name.clone(),
        environment: None,
        ttl_seconds: f.lifetime_days.map(|d| d.saturating_mul(DAY)),
    };
    let source = TokenSource::OwnKey(&f.key_id);
    match service::tokens::create(&state, &user.caller, source, &req).await {
        Ok(issued) => {
            let env = issued.record.environment;
            let flash = Flash::secret(
                "token",
                format!("Your new {env} token"),
                issued.jwt,
                format!(
                    "Token generated. It expires {}.",
                    short_time(&crate::routes::views::ts(issued.record.expires_at))
                ),
            );
            flash::redirect(&state, &user, "/tokens", flash)
        }
        Err(ApiError::Validation(errs)) if errs.iter().any(|e| e.field == "key_id") => {
            let message = "Choose one of your active secret keys.".to_owned();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            view(&state, &user, vec![message], f.name, status).await
        }
        Err(e) => view(&state, &user, messages(&e), f.name, e.status()).await,
    }
}

pub async fn renew(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    match service::tokens::renew(&state, &user.caller, &id).await {
        Ok(issued) => {
            let flash = Flash::secret(
                "token",
                "The renewed token".into(),
                issued.jwt,
                "Token renewed. The old one has stopped working.".into(),
            );
            flash::redirect(&state, &user, "/tokens", flash)
        }
        Err(e) => view(&state, &user, messages(&e), String::new(), e.status()).await,
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    match service::tokens::revoke(&state, &user.caller, &id).await {
        Ok(_) => flash::redirect(
            &state,
            &user,
            "/tokens",
            Flash::ok("Token revoked. Requests with it fail from now on."),
        ),
        Err(e) => view(&state, &user, messages(&e), String::new(), e.status()).await,
    }
}
