//! Dashboard sign-in: session cookies, CSRF tokens, sign-in throttling, and the [`DashUser`]
//! extractor that turns a session into the same [`Caller`] the API uses, so every page obeys
//! exactly the API's rules.

use crate::auth::{client_ip, Caller, Resolved};
use crate::error::ApiError;
use crate::now;
use crate::state::AppState;
use crate::throttle::{self, FailureThrottle};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use latchkey_core::{Environment, KeyType};
use latchkey_engine::cache::KeyEntry;
use latchkey_store::{ApiKeyRecord, Session};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "lk_session";
/// Sessions end after this long, whatever the activity.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// A random secret, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// Sessions are stored by the SHA-256 of the cookie's secret.
pub fn session_id(cookie_secret: &str) -> String {
    B64.encode(Sha256::digest(cookie_secret.as_bytes()))
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the dashboard is served over HTTPS: then every cookie it sets is `Secure`.
pub fn served_securely(state: &AppState) -> bool {
    state.issuer().starts_with("https://")
}

/// A `Set-Cookie` line of the dashboard's: always HttpOnly, `Secure` when `secure`. The one
/// place its cookies' attributes are written (session, flash, sign-in CSRF, SSO attempt).
pub fn cookie_line(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    )
}

/// `Set-Cookie` for the session: HttpOnly, SameSite=Lax, Secure when served over HTTPS.
pub fn session_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    cookie_line(COOKIE, value, "/", "Lax", max_age, served_securely(state))
}

/// The signed-in user of a dashboard page.
pub struct DashUser {
    pub caller: Caller,
    pub session: Session,
    /// The session cookie's secret (the store has only its hash): it keys the flash.
    pub cookie_secret: String,
    /// What the previous form's redirect left for this page to show once.
    pub flash: super::flash::Flash,
}

/// Why a page request has no signed-in user.
pub enum NoSession {
    /// No session, or one that no longer holds: sign in.
    ToLogin,
    /// The session could not be checked (the database is out of reach): not a sign-out.
    Unavailable,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::ToLogin => Redirect::to("/login").into_response(),
            NoSession::Unavailable => super::pages::unavailable(),
        }
    }
}

impl FromRequestParts<AppState> for DashUser {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NoSession> {
        let secret = cookie_value(&parts.headers, COOKIE).ok_or(NoSession::ToLogin)?;
        let session = match state.store.session(&session_id(&secret)).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(NoSession::ToLogin),
            Err(e) if e.is_unavailable() => return Err(NoSession::Unavailable),
            Err(e) => {
                tracing::error!(error = %e, "reading a dashboard session failed");
                return Err(NoSession::ToLogin);
            }
        };
        let caller = session_caller(state, &session, client_ip(parts, state), &parts.headers)
            .await
            .map_err(|e| match e {
                ApiError::Unavailable => NoSession::Unavailable,
                _ => NoSession::ToLogin,
            })?;
        let flash = super::flash::from_request(&parts.headers, &secret, &session.id);
        Ok(DashUser {
            caller,
            session,
            cookie_secret: secret,
            flash,
        })
    }
}

/// The session as a credential: a key-shaped record that carries no restriction of its own, so
/// the user acts with exactly their rights in the selected workspace, checked live like a key.
pub async fn session_caller(
    state: &AppState,
    session: &Session,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let principal = state
        .store
        .principal(&session.workspace_id, &session.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated { presented: true })?;
    if !principal.active || !principal.is_member() {
        return Err(ApiError::Unauthenticated { presented: true });
    }
    let workspace = state.store.get_workspace(&session.workspace_id).await?;
    let key = ApiKeyRecord {
        id: "dashboard".into(),
        hash: String::new(),
        redacted: String::new(),
        name: format!("Dashboard ({})", principal.email),
        key_type: KeyType::Secret,
        environment: Environment::Live,
        workspace_id: session.workspace_id.clone(),
        owner_id: session.user_id.clone(),
        permissions: None,
        allowed_origins: vec![],
        allowed_ips: vec![],
        metadata: serde_json::json!({}),
        ratelimits: vec![],
        credits: None,
        enabled: true,
        expires_at: None,
        revoked_at: None,
        rolled_to: None,
        created_by: None,
        created_at: session.created_at,
        updated_at: session.created_at,
        last_used_at: None,
    };
    Ok(Caller {
        resolved: Resolved {
            key: Arc::new(KeyEntry::detached(key)),
            token: None,
            principal: Arc::new(principal),
            workspace: Arc::new(workspace),
            // A person at the dashboard is not metered: limits are on keys and members' keys.
            limits: Default::default(),
        },
        pair: None,
        ip,
        user_agent: crate::auth::user_agent(headers),
    })
}

pub fn new_session(
    user_id: &str,
    workspace_id: &str,
    return_url: Option<&str>,
) -> (String, Session) {
    let secret = random_token();
    let t = now();
    let session = Session {
        id: session_id(&secret),
        user_id: user_id.to_owned(),
        workspace_id: workspace_id.to_owned(),
        csrf_token: random_token(),
        created_at: t,
        expires_at: t + SESSION_SECONDS,
        return_url: return_url.map(str::to_owned),
    };
    (secret, session)
}

/// Signs `user_id` into `workspace_id`: stores a new session and answers with a redirect to
/// `to` that sets its cookie. Every way in (password, portal link, single sign-on) ends here,
/// once it has established who the person is.
pub async fn start(
    state: &AppState,
    user_id: &str,
    workspace_id: &str,
    to: &str,
) -> Result<Response, latchkey_store::StoreError> {
    start_returning_to(state, user_id, workspace_id, None, None, to).await
}

/// [`start`] for a person sent here by another product (a portal link): the session's pages
/// show a "Back to …" link to `return_url`, and it ends by `ends_by` if that is sooner than
/// [`SESSION_SECONDS`] from now.
pub async fn start_returning_to(
    state: &AppState,
    user_id: &str,
    workspace_id: &str,
    return_url: Option<&str>,
    ends_by: Option<i64>,
    to: &str,
) -> Result<Response, latchkey_store::StoreError> {
    let (secret, mut s) = new_session(user_id, workspace_id, return_url);
    s.expires_at = s.expires_at.min(ends_by.unwrap_or(i64::MAX));
    state.store.create_session(&s).await?;
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(state, &secret, (s.expires_at - s.created_at).max(0))
            .parse()
            .expect("valid cookie"),
    );
    Ok(r)
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_ok(session: &Session, submitted: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(session.csrf_token.as_bytes())))
}

/// Failed password checks (sign-in, and the current password on `/account/password`), per
/// account and per client address: each has a small allowance that refills slowly (see
/// [`FailureThrottle`]). Bounded memory: at most [`throttle::CAPACITY`] accounts and as many
/// addresses are remembered, and only failures are (a check inserts nothing).
pub struct Throttle {
    accounts: FailureThrottle<String>,
    addresses: FailureThrottle<IpAddr>,
}

/// The window in which [`MAX_PER_ACCOUNT`] and [`MAX_PER_ADDRESS`] failures are allowed; after
/// that, one more per `WINDOW / MAX`.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_PER_ACCOUNT: u32 = 5;
pub const MAX_PER_ADDRESS: u32 = 20;

impl Default for Throttle {
    fn default() -> Self {
        Self {
            accounts: FailureThrottle::new(MAX_PER_ACCOUNT, WINDOW, throttle::CAPACITY),
            addresses: FailureThrottle::new(MAX_PER_ADDRESS, WINDOW, throttle::CAPACITY),
        }
    }
}

impl Throttle {
    /// `Err(retry after)` when the account (an email, lowercased; at most
    /// [`MAX_EMAIL_BYTES`]) or the client address has no attempt left now.
    pub fn allowed(&self, account: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let by_account = self.accounts.check(account, now);
        let by_address = ip.map_or(Ok(()), |ip| {
            self.addresses.check(&throttle::address_key(ip), now)
        });
        match (by_account, by_address) {
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(w), _) | (_, Err(w)) => Err(w),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        self.accounts.failed(account.to_owned(), now);
        if let Some(ip) = ip {
            self.addresses.failed(throttle::address_key(ip), now);
        }
    }

    /// The right password: the account's failures are forgotten (the address's are not, so
    /// one good account does not launder guesses at others).
    pub fn succeeded(&self, account: &str) {
        self.accounts.reset(account);
    }
}

/// The longest email an account can have (`Validator::email`, after RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// "Try again in 3 minutes."
pub fn try_again_in(wait: Duration) -> String {
    let minutes = throttle::retry_after_secs(wait).div_ceil(60);
    match minutes {
        1 => "Try again in a minute.".into(),
        m => format!("Try again in {m} minutes."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_per_account_and_per_address() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_PER_ACCOUNT {
            assert!(t.allowed("a@x", Some(ip)).is_ok());
            t.failed("a@x", Some(ip));
        }
        let wait = t.allowed("a@x", Some(ip)).unwrap_err();
        assert!(
            wait <= WINDOW / MAX_PER_ACCOUNT,
            "the account waits {wait:?}"
        );
        assert!(
            t.allowed("b@x", Some(ip)).is_ok(),
            "another account from the same address is not, yet"
        );
        for i in 0..MAX_PER_ADDRESS {
            t.failed(&format!("c{i}@x"), Some(ip));
        }
        assert!(t.allowed("d@x", Some(ip)).is_err(), "the address is");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(
            t.allowed("d@x", Some(other)).is_ok(),
            "other addresses are not"
        );
        t.succeeded("a@x");
        assert!(t.allowed("a@x", None).is_ok());
        assert_eq!(
            try_again_in(Duration::from_secs(179)),
            "Try again in 3 minutes."
        );
        assert_eq!(
            try_again_in(Duration::from_secs(1)),
            "Try again in a minute."
        );
    }

    #[test]
    fn csrf_and_cookies() {
        let (secret, s) = new_session("usr_1", "ws_1", None);
        assert_eq!(s.id, session_id(&secret));
        assert!(csrf_ok(&s, Some(&s.csrf_token.clone())));
        assert!(!csrf_ok(&s, Some("nope")));
        assert!(!csrf_ok(&s, None));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=1; {COOKIE}={secret}; b=2").parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some(secret));
    }
}
