//! Webhooks (SPEC §12.1): endpoint secrets sealed under the server secret, and the worker that
//! delivers the outbox ([`worker`]).

pub mod worker;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use latchkey_core::webhooks::SECRET_PREFIX;
use latchkey_core::Secret;
use rand::RngCore;
use std::time::Duration;

/// Random bytes in a new endpoint secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;
/// How long the secret replaced by a rotation keeps signing.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Deliver to loopback, private, link-local … addresses too (tests, closed networks).
    pub allow_private_targets: bool,
    /// The wait before each retry; after the last, a delivery has failed.
    pub retry_schedule: Vec<Duration>,
    /// How often the worker looks for due deliveries.
    pub poll: Duration,
    /// `key.expiring` is sent this many days before a key's expiry (each threshold once).
    pub expiring_days: Vec<i64>,
    /// How often keys are checked for `key.expiring` and `key.expired`.
    pub expiry_check: Duration,
}

/// Standard Webhooks' schedule: the first retry at once (5 s), the last about three days after
/// the first attempt.
pub fn default_retry_schedule() -> Vec<Duration> {
    [
        5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 36_000, 36_000, 36_000, 36_000, 36_000,
    ]
    .into_iter()
    .map(Duration::from_secs)
    .collect()
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_schedule: default_retry_schedule(),
            poll: Duration::from_secs(1),
            expiring_days: vec![7, 1],
            expiry_check: Duration::from_secs(60),
        }
    }
}

/// Seals endpoint secrets for the database (XChaCha20-Poly1305 under a key derived from the
/// server secret, the endpoint id as associated data: a sealed secret copied onto another
/// endpoint does not open), and opens them to sign.
pub struct SecretBox {
    key: [u8; 32],
}

impl SecretBox {
    pub fn new(server_secret: &Secret) -> Self {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"latchkey webhook secrets"),
            server_secret.expose().as_bytes(),
        );
        let mut key = [0u8; 32];
        hk.expand(b"xchacha20poly1305 v1", &mut key)
            .expect("32 bytes is a valid HKDF output length");
        Self { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// base64url(nonce ‖ ciphertext).
    pub fn seal(&self, endpoint_id: &str, secret: &Secret) -> String {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: endpoint_id.as_bytes(),
                },
            )
            .expect("encryption does not fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// `None` when it does not open (another server secret, or tampered with).
    pub fn open(&self, endpoint_id: &str, sealed: &str) -> Option<Secret> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() <= 24 {
            return None;
        }
        let (nonce, msg) = raw.split_at(24);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg,
                    aad: endpoint_id.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(Secret::new)
    }
}

/// What the API and the worker share: the settings, the sealing key, and a bell that wakes the
/// worker when a delivery is due now (a redelivery) instead of at its next poll.
pub struct Webhooks {
    pub settings: WebhookSettings,
    secrets: SecretBox,
    pub(crate) bell: std::sync::Arc<tokio::sync::Notify>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings, server_secret: &Secret) -> Self {
        Self {
            settings,
            secrets: SecretBox::new(server_secret),
            bell: Default::default(),
        }
    }

    pub fn seal(&self, endpoint_id: &str, secret: &Secret) -> String {
        self.secrets.seal(endpoint_id, secret)
    }

    pub fn open(&self, endpoint_id: &str, sealed: &str) -> Option<Secret> {
        self.secrets.open(endpoint_id, sealed)
    }

    pub fn wake(&self) {
        self.bell.notify_one();
    }
}

/// A new endpoint secret, `whsec_<base64 of 32 random bytes>`.
pub fn new_secret() -> Secret {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_endpoint_and_server_secret() {
        let a = SecretBox::new(&Secret::new("one"));
        let b = SecretBox::new(&Secret::new("two"));
        let s = new_secret();
        assert!(latchkey_core::webhooks::secret_key(s.expose()).is_some_and(|k| k.len() == 32));
        let sealed = a.seal("wh_1", &s);
        assert!(!sealed.contains(s.expose()));
        assert_eq!(a.open("wh_1", &sealed).unwrap().expose(), s.expose());
        assert!(a.open("wh_2", &sealed).is_none());
        assert!(b.open("wh_1", &sealed).is_none());
    }
}
