//! The Ed25519 keys that sign access tokens: generated on first start, stored with the private
//! half encrypted under a key derived from the server secret (XChaCha20-Poly1305, the kid as
//! associated data), rotated by `latchkey signing-keys rotate`, published as a JWKS.

use crate::EngineError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use latchkey_core::token::{AccessTokenClaims, JWT_TYPE};
use latchkey_core::{ids, Secret};
use latchkey_store::{SigningKeyRecord, SqlStore};
use rand::RngCore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7): what `EncodingKey::from_ed_der` takes.
const PKCS8_V1_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Retired keys stay published this long even without tokens, for nodes that had not yet reloaded.
pub const RETIRED_GRACE_SECONDS: i64 = 120;
/// How often a node re-reads the key set, at most, when it meets an unknown `kid`.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);

struct Signer {
    kid: String,
    key: EncodingKey,
}

#[derive(Default)]
struct KeySet {
    signer: Option<Arc<Signer>>,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Vec<Value>,
}

pub struct SigningKeys {
    sealing_key: [u8; 32],
    set: RwLock<Arc<KeySet>>,
    last_reload: Mutex<Option<Instant>>,
}

impl SigningKeys {
    pub fn new(server_secret: &Secret) -> Self {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"latchkey signing keys"),
            server_secret.expose().as_bytes(),
        );
        let mut sealing_key = [0u8; 32];
        hk.expand(b"xchacha20poly1305 v1", &mut sealing_key)
            .expect("32 bytes is a valid HKDF output length");
        Self {
            sealing_key,
            set: RwLock::new(Arc::new(KeySet::default())),
            last_reload: Mutex::new(None),
        }
    }

    /// A fresh key pair, sealed for storage.
    pub fn generate(&self) -> SigningKeyRecord {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let kid = ids::new_id("sig");
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &seed,
                    aad: kid.as_bytes(),
                },
            )
            .expect("encryption of 32 bytes cannot fail");
        let mut stored = nonce.to_vec();
        stored.extend(sealed);
        SigningKeyRecord {
            kid,
            public_key: B64.encode(public),
            private_key: B64.encode(stored),
            created_at: 0,
            retired_at: None,
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.sealing_key).into())
    }

    fn unseal(&self, r: &SigningKeyRecord) -> Result<EncodingKey, EngineError> {
        let corrupt = || EngineError::SigningKeys(format!("signing key {} is corrupt", r.kid));
        let raw = B64.decode(&r.private_key).map_err(|_| corrupt())?;
        if raw.len() <= 24 {
            return Err(corrupt());
        }
        let (nonce, sealed) = raw.split_at(24);
        let seed = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: r.kid.as_bytes(),
                },
            )
            .map_err(|_| {
                EngineError::SigningKeys(format!(
                    "signing key {} does not open with this server secret",
                    r.kid
                ))
            })?;
        let mut der = PKCS8_V1_ED25519_PREFIX.to_vec();
        der.extend(seed);
        Ok(EncodingKey::from_ed_der(&der))
    }

    /// Makes sure a signing key exists (first start), then loads the published set.
    pub async fn init(&self, store: &SqlStore) -> Result<(), EngineError> {
        store.ensure_signing_key(&self.generate()).await?;
        self.reload(store).await
    }

    /// Re-reads the keys: the newest active one signs; every published one verifies.
    pub async fn reload(&self, store: &SqlStore) -> Result<(), EngineError> {
        let records = store.published_signing_keys(RETIRED_GRACE_SECONDS).await?;
        let mut set = KeySet::default();
        for r in &records {
            if r.retired_at.is_none() && set.signer.is_none() {
                set.signer = Some(Arc::new(Signer {
                    kid: r.kid.clone(),
                    key: self.unseal(r)?,
                }));
            }
            set.verifiers.insert(
                r.kid.clone(),
                DecodingKey::from_ed_components(&r.public_key).map_err(|_| {
                    EngineError::SigningKeys(format!("signing key {} is corrupt", r.kid))
                })?,
            );
            set.jwks.push(json!({
                "kty": "OKP", "crv": "Ed25519", "x": r.public_key, "kid": r.kid, "alg": "EdDSA", "use": "sig"
            }));
        }
        *self.set.write().expect("key set lock") = Arc::new(set);
        *self.last_reload.lock().expect("reload lock") = Some(Instant::now());
        Ok(())
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().expect("key set lock").clone()
    }

    pub fn sign(&self, claims: &AccessTokenClaims) -> Result<(String, String), EngineError> {
        let set = self.current();
        let signer = set.signer.as_ref().ok_or(EngineError::Internal)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(JWT_TYPE.into());
        header.kid = Some(signer.kid.clone());
        let jwt = jsonwebtoken::encode(&header, claims, &signer.key).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            EngineError::Internal
        })?;
        Ok((jwt, signer.kid.clone()))
    }

    /// Checks a token's header, signature, issuer and audience (not its expiry: the caller
    /// reports an expired token as such). `Ok(None)` for anything not signed by us;
    /// `Err(Unavailable)` when its key is not known here and the database cannot say whether
    /// it exists (an outage is never a verdict).
    pub async fn verify(
        &self,
        store: &SqlStore,
        jwt: &str,
        issuer: Option<&str>,
    ) -> Result<Option<AccessTokenClaims>, EngineError> {
        let Ok(header) = jsonwebtoken::decode_header(jwt) else {
            return Ok(None);
        };
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(JWT_TYPE) {
            return Ok(None);
        }
        let Some(kid) = header.kid else {
            return Ok(None);
        };
        let mut key = self.current().verifiers.get(&kid).cloned();
        if key.is_none() && self.may_reload() {
            // A key rotated on another node: learn it, at most once a second.
            if let Err(e) = self.reload(store).await {
                if e.is_unavailable() {
                    return Err(EngineError::Unavailable);
                }
                tracing::error!(error = %e, "reloading signing keys failed");
            }
            key = self.current().verifiers.get(&kid).cloned();
        }
        let Some(key) = key else { return Ok(None) };
        let mut v = Validation::new(Algorithm::EdDSA);
        match issuer {
            Some(issuer) => {
                v.set_issuer(&[issuer]);
                v.set_audience(&[issuer]);
            }
            // Ours by its signature; whichever URL the deployment serves on (see `Engine::issuer`).
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_exp = false;
        Ok(jsonwebtoken::decode::<AccessTokenClaims>(jwt, &key, &v)
            .ok()
            .map(|d| d.claims))
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().expect("reload lock");
        if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_RELOAD) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": self.current().jwks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let a = SigningKeys::new(&Secret::new("a".repeat(40)));
        let b = SigningKeys::new(&Secret::new("b".repeat(40)));
        let rec = a.generate();
        assert!(a.unseal(&rec).is_ok());
        assert!(
            b.unseal(&rec).is_err(),
            "another server secret cannot open it"
        );
        let mut moved = rec.clone();
        moved.kid = "sig_other".into();
        assert!(
            a.unseal(&moved).is_err(),
            "the kid is bound to the ciphertext"
        );
        assert!(!rec.private_key.contains(&rec.public_key));
    }
}
