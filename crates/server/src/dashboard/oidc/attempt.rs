//! One sign-on attempt's secrets (`state`, `nonce`, the PKCE verifier), kept in the browser for
//! ten minutes in a cookie sealed with a key derived from the server secret, so every node of
//! a cluster can finish an attempt another node started, and nothing is stored server-side.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use latchkey_core::Secret;
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const COOKIE: &str = "lk_oidc";
/// The cookie's path: the start of the flow and its callback, nothing else.
pub const PATH: &str = "/auth/oidc";
/// How long a person has at the provider before the attempt lapses.
pub const ATTEMPT_SECONDS: i64 = 600;
/// Binds a sealed value to its use: a ciphertext made for anything else never opens here.
const AAD: &[u8] = b"lk_oidc attempt v1";

/// What the callback must see again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Unix seconds.
    pub expires_at: i64,
}

pub struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// A key of its own from the server secret (HKDF-SHA256, its own salt and info), so it
    /// opens nothing else the secret protects.
    pub fn new(server_secret: &Secret) -> Self {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"latchkey dashboard oidc"),
            server_secret.expose().as_bytes(),
        );
        let mut key = [0u8; 32];
        hk.expand(b"xchacha20poly1305 attempt cookie v1", &mut key)
            .expect("32 bytes is a valid HKDF output length");
        Self { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// base64url(nonce ‖ ciphertext), safe as a cookie value.
    pub fn seal(&self, a: &Attempt) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(a).expect("an attempt serialises");
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        B64.encode(out)
    }

    /// The attempt, if `value` was sealed here and has not lapsed at `now`.
    pub fn open(&self, value: &str, now: i64) -> Option<Attempt> {
        let raw = B64.decode(value).ok()?;
        if raw.len() <= 24 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(24);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .ok()?;
        let a: Attempt = serde_json::from_slice(&plain).ok()?;
        (now < a.expires_at).then_some(a)
    }
}

/// `Set-Cookie` for an attempt (`value` empty and `max_age` 0 to clear it): HttpOnly, Lax (the
/// provider's redirect back is a top-level GET, which Lax lets through), only under `/auth/oidc`.
pub fn cookie(value: &str, max_age: i64, secure: bool) -> String {
    crate::dashboard::session::cookie_line(COOKIE, value, PATH, "Lax", max_age, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(expires_at: i64) -> Attempt {
        Attempt {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            expires_at,
        }
    }

    #[test]
    fn sealed_attempts_open_only_here_and_only_in_time() {
        let sealer = Sealer::new(&Secret::new("a".repeat(32)));
        let a = attempt(1_000);
        let value = sealer.seal(&a);
        assert_eq!(sealer.open(&value, 999), Some(a.clone()));
        assert_eq!(sealer.open(&value, 1_000), None, "lapsed");
        let other = Sealer::new(&Secret::new("b".repeat(32)));
        assert_eq!(other.open(&value, 0), None, "another deployment's secret");
        let mut raw = B64.decode(&value).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(sealer.open(&B64.encode(raw), 0), None, "tampered");
        assert_eq!(sealer.open("", 0), None);
        assert_eq!(sealer.open("not base64!", 0), None);
        assert_ne!(sealer.seal(&a), value, "a fresh nonce every time");
    }

    #[test]
    fn the_cookie_is_scoped_and_http_only() {
        assert_eq!(
            cookie("v", 600, true),
            "lk_oidc=v; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600; Secure"
        );
        assert!(!cookie("", 0, false).contains("Secure"));
    }
}
