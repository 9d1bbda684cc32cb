//! Single sign-on to the dashboard with the provider's OpenID Connect provider (SPEC §7,
//! `[dashboard.oidc]`): `GET /auth/oidc` starts an authorization code flow with PKCE (S256), a
//! random `state` and `nonce`; `GET /auth/oidc/callback` checks them, exchanges the code, checks
//! the ID token (signature against the provider's JWKS, issuer, audience, expiry, nonce) and
//! signs in the active user whose email the provider says it has verified.
//!
//! Every refusal is the sign-in page with a plain sentence and a 4xx (503 when the provider is
//! out of reach), and creates nothing. What went wrong in detail goes to the log, never the
//! provider's own error text to the page.

mod attempt;
mod provider;

use super::pages;
use super::session;
use crate::auth::client_ip;
use crate::config::OidcSettings;
use crate::now;
use crate::service;
use crate::state::AppState;
use attempt::{Attempt, Sealer};
use axum::extract::{RawQuery, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::{Secret, Validator};
use latchkey_store::{Actor, User};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use provider::{Fetched, Provider};
use std::sync::Arc;

/// Where the provider sends people back: `<public URL>` + this, registered at the provider.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Single sign-on as configured, with what it learnt of the provider.
pub struct Sso {
    settings: OidcSettings,
    provider: Provider,
    sealer: Sealer,
}

impl Sso {
    pub fn new(settings: OidcSettings, server_secret: &Secret) -> anyhow::Result<Self> {
        Ok(Self {
            provider: Provider::new(&settings.issuer)?,
            sealer: Sealer::new(server_secret),
            settings,
        })
    }

    /// The provider's name, for "Sign in with <name>".
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    fn client(&self, fetched: &Fetched, redirect_uri: RedirectUrl) -> Client {
        CoreClient::from_provider_metadata(
            fetched.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(redirect_uri)
    }
}

/// Why a sign-on did not sign anyone in. Each is a sentence on the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// No attempt cookie, a lapsed one, one that is not ours, or a `state` that does not match
    /// it: a stale tab, another tab's attempt, or a forged callback.
    Attempt,
    /// The provider answered with `error=` (the person cancelled, or was not allowed).
    ProviderSaidNo(Option<String>),
    /// The provider could not be reached.
    Unreachable,
    /// The provider answered something that is not OAuth or OpenID Connect.
    BadAnswer,
    /// The provider refused to exchange the code.
    CodeRefused,
    /// The ID token failed a check: signature, issuer, audience, expiry, nonce.
    Unverifiable,
    /// The provider has not verified the email, or gave none.
    Unverified,
    /// No user has the email, and `create_users` is off.
    Unknown(String),
    Deactivated,
    NoWorkspace,
    /// Latchkey's own database failed.
    Store {
        unavailable: bool,
    },
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Attempt => StatusCode::BAD_REQUEST,
            Refusal::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::BadAnswer => StatusCode::BAD_GATEWAY,
            Refusal::Store { unavailable: true } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Store { unavailable: false } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }

    fn message(&self, name: &str) -> String {
        match self {
            Refusal::Attempt => "This sign-in attempt has expired, or was started in another tab \
                                 or browser. Sign in again."
                .into(),
            Refusal::ProviderSaidNo(Some(code)) => {
                format!("{name} did not sign you in ({code}). Sign in again, or ask your administrator.")
            }
            Refusal::ProviderSaidNo(None) => {
                format!("{name} did not sign you in. Sign in again, or ask your administrator.")
            }
            Refusal::Unreachable => format!(
                "Signing in with {name} is not possible right now: {name} cannot be reached. \
                 Try again in a moment."
            ),
            Refusal::BadAnswer => format!(
                "Signing in with {name} is not possible right now: its answer could not be \
                 understood. Try again later, or tell whoever runs this Latchkey."
            ),
            Refusal::CodeRefused => {
                format!("{name} did not complete the sign-in. Sign in again.")
            }
            Refusal::Unverifiable => format!(
                "The answer from {name} could not be verified, so you were not signed in. Sign \
                 in again; if it keeps happening, tell whoever runs this Latchkey."
            ),
            Refusal::Unverified => format!(
                "{name} has not verified your email address, so it cannot sign you in here. \
                 Verify it with {name} first."
            ),
            Refusal::Unknown(email) => {
                format!("There is no account for {email} here. Ask an administrator to add you.")
            }
            Refusal::Deactivated => "Your account is deactivated.".into(),
            Refusal::NoWorkspace => "Your account is not a member of any workspace yet.".into(),
            Refusal::Store { .. } => {
                "Signing in is not possible right now. Try again in a moment.".into()
            }
        }
    }
}

fn clear_attempt(state: &AppState, r: &mut Response) {
    r.headers_mut().append(
        header::SET_COOKIE,
        attempt::cookie("", 0, crate::dashboard::session::served_securely(state))
            .parse()
            .expect("valid cookie"),
    );
}

/// The sign-in page saying why, and the attempt cookie gone (an attempt is used once).
fn refuse(state: &AppState, sso: &Sso, why: Refusal) -> Response {
    let status = why.status();
    let mut r = pages::login_form(state, String::new(), Some(why.message(sso.name())), status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
        );
    }
    clear_attempt(state, &mut r);
    r
}

fn redirect_uri(state: &AppState) -> RedirectUrl {
    RedirectUrl::new(format!("{}{CALLBACK_PATH}", state.issuer())).expect("the public URL is a URL")
}

/// `GET /auth/oidc`: off to the provider, with this attempt's secrets in a sealed cookie.
pub async fn start(State(state): State<AppState>) -> Response {
    let Some(sso) = state.sso.as_ref() else {
        return not_configured();
    };
    let Ok(fetched) = sso.provider.metadata().await else {
        return refuse(&state, sso, Refusal::Unreachable);
    };
    let client = sso.client(&fetched, redirect_uri(&state));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let sealed = sso.sealer.seal(&Attempt {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        expires_at: now() + attempt::ATTEMPT_SECONDS,
    });
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        attempt::cookie(
            &sealed,
            attempt::ATTEMPT_SECONDS,
            crate::dashboard::session::served_securely(&state),
        )
        .parse()
        .expect("valid cookie"),
    );
    r
}

fn not_configured() -> Response {
    pages::bare_error(
        StatusCode::NOT_FOUND,
        "Not found",
        "Single sign-on is not configured here.",
    )
}

/// The callback's parameters. Each at most once: a repeated one is a forged or broken
/// redirect, whichever copy a reader would take.
#[derive(Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

fn parse_callback(query: &str) -> Option<Callback> {
    let mut c = Callback::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*k {
            "code" => &mut c.code,
            "state" => &mut c.state,
            "error" => &mut c.error,
            "iss" => &mut c.iss,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return None;
        }
    }
    Some(c)
}

/// An RFC 6749 §4.1.2.1 error code is shown only if it looks like one (lowercase letters and
/// underscores); anything else the provider sent is not repeated.
fn error_code(e: &str) -> Option<String> {
    (!e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .then(|| e.to_owned())
}

/// `GET /auth/oidc/callback`.
pub async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(sso) = state.sso.as_ref() else {
        return not_configured();
    };
    let signed_in = match sign_on(&state, sso, &parts, query.as_deref().unwrap_or("")).await {
        Ok((user, workspace_id)) => session::start(&state, &user.id, &workspace_id, "/keys")
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "single sign-on: storing the session failed");
                Refusal::Store {
                    unavailable: e.is_unavailable(),
                }
            }),
        Err(why) => Err(why),
    };
    match signed_in {
        Ok(mut r) => {
            clear_attempt(&state, &mut r);
            r
        }
        Err(why) => {
            tracing::info!(reason = refusal_kind(&why), "single sign-on refused");
            refuse(&state, sso, why)
        }
    }
}

/// The refusal without the email it may carry, for the log.
fn refusal_kind(r: &Refusal) -> &'static str {
    match r {
        Refusal::Attempt => "attempt",
        Refusal::ProviderSaidNo(_) => "provider_error",
        Refusal::Unreachable => "unreachable",
        Refusal::BadAnswer => "bad_answer",
        Refusal::CodeRefused => "code_refused",
        Refusal::Unverifiable => "id_token",
        Refusal::Unverified => "email_unverified",
        Refusal::Unknown(_) => "unknown_email",
        Refusal::Deactivated => "deactivated",
        Refusal::NoWorkspace => "no_workspace",
        Refusal::Store { .. } => "store",
    }
}

/// Who the provider says this is, checked every way, and the workspace to sign them into.
async fn sign_on(
    state: &AppState,
    sso: &Sso,
    parts: &Parts,
    query: &str,
) -> Result<(User, String), Refusal> {
    let cb = parse_callback(query).ok_or(Refusal::Attempt)?;
    let attempt = session::cookie_value(&parts.headers, attempt::COOKIE)
        .and_then(|v| sso.sealer.open(&v, now()))
        .ok_or(Refusal::Attempt)?;
    let state_ok = cb.state.as_deref().is_some_and(|s| {
        use subtle::ConstantTimeEq;
        bool::from(s.as_bytes().ct_eq(attempt.state.as_bytes()))
    });
    if !state_ok {
        return Err(Refusal::Attempt);
    }
    // RFC 9207: a provider that names itself must be ours (a mix-up with another provider).
    if cb
        .iss
        .as_deref()
        .is_some_and(|iss| iss != sso.settings.issuer)
    {
        tracing::warn!("single sign-on: the callback's iss is not the configured issuer");
        return Err(Refusal::Attempt);
    }
    if let Some(e) = cb.error {
        return Err(Refusal::ProviderSaidNo(error_code(&e)));
    }
    let code = cb.code.filter(|c| !c.is_empty()).ok_or(Refusal::Attempt)?;
    let fetched = sso
        .provider
        .metadata()
        .await
        .map_err(|_| Refusal::Unreachable)?;
    let client = sso.client(&fetched, redirect_uri(state));
    let http = sso.provider.http();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            tracing::warn!(error = %e, "single sign-on: the provider publishes no token endpoint");
            Refusal::BadAnswer
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => {
                tracing::warn!(error = %r.error(), "single sign-on: the provider refused the code");
                Refusal::CodeRefused
            }
            RequestTokenError::Request(e) => {
                tracing::warn!(error = %e, "single sign-on: the token endpoint is out of reach");
                Refusal::Unreachable
            }
            e => {
                tracing::warn!(error = %e, "single sign-on: the token endpoint's answer is unreadable");
                Refusal::BadAnswer
            }
        })?;
    let id_token = tokens.id_token().ok_or_else(|| {
        tracing::warn!("single sign-on: the token response has no ID token");
        Refusal::Unverifiable
    })?;
    let nonce = Nonce::new(attempt.nonce.clone());
    let claims: CoreIdTokenClaims = match id_token.claims(&client.id_token_verifier(), &nonce) {
        Ok(c) => c.clone(),
        // The provider may have rotated its keys since they were read: read them again (at
        // most once a minute) and check once more.
        Err(ClaimsVerificationError::SignatureVerification(first)) => {
            let again = sso
                .provider
                .no_older_than(provider::KEYS_MIN_AGE)
                .await
                .ok()
                .filter(|f| !Arc::ptr_eq(f, &fetched));
            let verified = again.map(|f| {
                let client = sso.client(&f, redirect_uri(state));
                let verifier = client.id_token_verifier();
                let claims = id_token.claims(&verifier, &nonce).cloned();
                claims
            });
            match verified {
                Some(Ok(c)) => c,
                Some(Err(e)) => return Err(unverifiable(e)),
                None => {
                    return Err(unverifiable(
                        ClaimsVerificationError::SignatureVerification(first),
                    ))
                }
            }
        }
        Err(e) => return Err(unverifiable(e)),
    };
    let mut profile = Profile {
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified(),
        name: display_name(claims.name(), claims.preferred_username()),
    };
    // Some providers (OpenID Connect Core §5.4, strictly read) put the email in the UserInfo
    // answer only; that answer must be about the same subject (checked by `user_info`).
    if profile.email.is_none() {
        if let Ok(request) = client.user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        ) {
            let info: CoreUserInfoClaims = request.request_async(http).await.map_err(|e| {
                tracing::warn!(error = %e, "single sign-on: the UserInfo endpoint failed");
                Refusal::BadAnswer
            })?;
            profile = Profile {
                email: info.email().map(|e| e.as_str().to_owned()),
                email_verified: info.email_verified(),
                name: display_name(info.name(), info.preferred_username()),
            };
        }
    }
    let email = match (profile.email, profile.email_verified) {
        (Some(email), Some(true)) => email,
        _ => return Err(Refusal::Unverified),
    };
    let mut v = Validator::new();
    let email = v.email("email", &email);
    if v.finish().is_err() {
        tracing::warn!("single sign-on: the provider's email is not an email address");
        return Err(Refusal::Unverified);
    }
    let store_failed = |e: latchkey_store::StoreError| {
        tracing::error!(error = %e, "single sign-on could not read the database");
        Refusal::Store {
            unavailable: e.is_unavailable(),
        }
    };
    let user = match state
        .store
        .user_by_email(&email)
        .await
        .map_err(store_failed)?
    {
        Some(u) if u.is_active() => u,
        Some(_) => return Err(Refusal::Deactivated),
        None if sso.settings.create_users => {
            create_user(state, sso, parts, &email, profile.name).await?
        }
        None => return Err(Refusal::Unknown(email)),
    };
    let workspaces = state
        .store
        .user_workspaces(&user.id)
        .await
        .map_err(store_failed)?;
    match workspaces.into_iter().next() {
        Some((workspace_id, _, _)) => Ok((user, workspace_id)),
        None => Err(Refusal::NoWorkspace),
    }
}

/// What the provider says of the person, from the ID token or the UserInfo answer.
struct Profile {
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
}

fn display_name(
    name: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserName>>,
    username: Option<&openidconnect::EndUserUsername>,
) -> Option<String> {
    name.and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .or_else(|| username.map(|u| u.as_str().to_owned()))
}

fn unverifiable(e: ClaimsVerificationError) -> Refusal {
    tracing::warn!(error = %e, "single sign-on: the ID token failed its checks");
    Refusal::Unverifiable
}

/// `create_users`: a user for a verified email no one has, named as the provider names them.
async fn create_user(
    state: &AppState,
    sso: &Sso,
    parts: &Parts,
    email: &str,
    name: Option<String>,
) -> Result<User, Refusal> {
    let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let actor = Actor {
        user_id: None,
        credential_id: None,
        credential_name: Some(format!("Single sign-on ({})", sso.name())),
        ip: client_ip(parts, state).map(|ip| ip.to_string()),
        user_agent: crate::auth::user_agent(&parts.headers),
    };
    match service::users::create_signed_on(state, email, &name, actor).await {
        Ok(u) => Ok(u),
        // Two tabs at once: the other one created it.
        Err(crate::error::ApiError::Conflict(_)) => match state.store.user_by_email(email).await {
            Ok(Some(u)) if u.is_active() => Ok(u),
            _ => Err(Refusal::Store { unavailable: false }),
        },
        Err(e) => {
            tracing::error!(status = %e.status(), "single sign-on: creating the user failed");
            Err(Refusal::Store {
                unavailable: e.status() == StatusCode::SERVICE_UNAVAILABLE,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parameters_come_once() {
        let c = parse_callback("code=a&state=b&iss=http%3A%2F%2Fx&other=1").unwrap();
        assert_eq!(
            (c.code.as_deref(), c.state.as_deref(), c.iss.as_deref()),
            (Some("a"), Some("b"), Some("http://x"))
        );
        assert!(parse_callback("code=a&state=b&state=c").is_none());
    }

    #[test]
    fn only_error_codes_that_look_like_codes_are_repeated() {
        assert_eq!(error_code("access_denied"), Some("access_denied".into()));
        assert_eq!(error_code("<script>alert(1)</script>"), None);
        assert_eq!(error_code("Access Denied"), None);
        assert_eq!(error_code(""), None);
    }

    #[test]
    fn refusals_are_4xx_except_outages() {
        assert_eq!(Refusal::Attempt.status(), 400);
        for r in [
            Refusal::Unverified,
            Refusal::Unverifiable,
            Refusal::Unknown("a@b".into()),
            Refusal::ProviderSaidNo(None),
            Refusal::NoWorkspace,
        ] {
            assert_eq!(r.status(), 403, "{r:?}");
        }
        assert_eq!(Refusal::Unreachable.status(), 503);
        assert_eq!(
            Refusal::NoWorkspace.message("X"),
            "Your account is not a member of any workspace yet."
        );
    }
}
