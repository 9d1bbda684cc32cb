//! One-time messages across a redirect. Every dashboard form answers with a 303 to the page
//! that shows its outcome (post/redirect/get), so reloading that page never repeats the action;
//! what the page must say ("Key revoked.", and a new key shown once) travels in a cookie.
//!
//! The cookie is sealed (XChaCha20-Poly1305) under a key derived from the session cookie's
//! secret, which the server never stores, and bound to the session id: only the browser that
//! holds that session can have it opened, a flash cannot be moved to another session, and a new
//! key is never in a URL, a log line or the database. It lives five minutes and is cleared by the
//! first page that shows it ([`clear_after_shown`]).

use super::session::{self, DashUser};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const COOKIE: &str = "lk_flash";
/// Long enough for any redirect to be followed; short enough that a key is not kept around.
const MAX_AGE_SECONDS: i64 = 300;
const NONCE_BYTES: usize = 24;

/// What the next page shows once.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Flash {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ok: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Shown>,
}

/// A secret shown once: a new key or token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shown {
    /// `key` or `token`: names the card's element ids (`new-key`, `copy-token`, …).
    pub kind: String,
    pub heading: String,
    pub value: String,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: vec![message.into()],
            secret: None,
        }
    }

    pub fn secret(kind: &str, heading: String, value: String, message: String) -> Self {
        Self {
            ok: vec![message],
            secret: Some(Shown {
                kind: kind.into(),
                heading,
                value,
            }),
        }
    }
}

fn cipher(cookie_secret: &str) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, cookie_secret.as_bytes())
        .expand(b"latchkey dashboard flash v1", &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

/// The cookie's value: base64url(nonce ‖ ciphertext), with the session id as associated data.
pub fn seal(cookie_secret: &str, session_id: &str, flash: &Flash) -> String {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let plain = serde_json::to_vec(flash).expect("a flash serialises");
    let sealed = cipher(cookie_secret)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: session_id.as_bytes(),
            },
        )
        .expect("encryption of a small message cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    B64.encode(out)
}

/// The flash in a cookie, or nothing when it was not sealed for this session (or was altered).
pub fn open(cookie_secret: &str, session_id: &str, value: &str) -> Option<Flash> {
    let bytes = B64.decode(value).ok()?;
    if bytes.len() <= NONCE_BYTES {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let plain = cipher(cookie_secret)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: session_id.as_bytes(),
            },
        )
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = super::session::served_securely(state);
    super::session::cookie_line(COOKIE, value, "/", "Lax", max_age, secure)
        .parse()
        .expect("a base64url cookie is a valid header value")
}

/// A form's answer: 303 See Other (`Redirect::to`) to `to`, carrying `flash` to the page there.
pub fn redirect(state: &AppState, user: &DashUser, to: &str, flash: Flash) -> Response {
    let value = seal(&user.cookie_secret, &user.session.id, &flash);
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, cookie(state, &value, MAX_AGE_SECONDS));
    r
}

/// The flash a request carries for its session, if any.
pub fn from_request(
    headers: &axum::http::HeaderMap,
    cookie_secret: &str,
    session_id: &str,
) -> Flash {
    session::cookie_value(headers, COOKIE)
        .and_then(|v| open(cookie_secret, session_id, &v))
        .unwrap_or_default()
}

/// Clears the flash cookie once a page has been drawn with it: the first GET that is not itself
/// a redirect.
pub async fn clear_after_shown(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let carried = req.method() == Method::GET
        && session::cookie_value(req.headers(), COOKIE).is_some_and(|v| !v.is_empty());
    let mut resp = next.run(req).await;
    if carried && !resp.status().is_redirection() {
        resp.headers_mut()
            .append(header::SET_COOKIE, cookie(&state, "", 0));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_for_one_session_only() {
        let flash = Flash::secret(
            "key",
            "Your new key".into(),
            "sk_test_abc".into(),
            "Key created.".into(),
        );
        let v = seal("cookie-secret", "sess-1", &flash);
        assert!(
            !v.contains("sk_test_abc"),
            "the key is not readable in the cookie"
        );
        assert_eq!(open("cookie-secret", "sess-1", &v), Some(flash));
        assert_eq!(
            open("cookie-secret", "sess-2", &v),
            None,
            "another session id"
        );
        assert_eq!(
            open("other-secret", "sess-1", &v),
            None,
            "another session's cookie"
        );
        let mut bytes = B64.decode(&v).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert_eq!(open("cookie-secret", "sess-1", &B64.encode(bytes)), None);
        assert_eq!(open("cookie-secret", "sess-1", "!!"), None);
        assert_eq!(open("cookie-secret", "sess-1", ""), None);
    }
}
