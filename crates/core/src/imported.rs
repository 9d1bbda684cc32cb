//! Keys issued elsewhere and imported (SPEC §12.3), so a provider can move to Latchkey without
//! asking every customer for a new key.
//!
//! Such keys keep their own format, so they carry no checksum, and the provider may hold only
//! their SHA-256 (what many services store). At rest they are the HMAC, under the server
//! secret, of that digest: a stolen database is no more useful than for native keys, and the
//! plaintext is never needed.
//!
//! Which hash a presented string is looked up by ([`KeyHasher::lookup`]):
//! - Latchkey's own format with a good checksum: the native hash;
//! - Latchkey's own format with a bad checksum: none, so typos and junk in our format still
//!   cost a CRC32 and no lookup (an import refuses such keys: they could never be used);
//! - anything else of a plausible length and alphabet: the imported hash.

use crate::hash::{KeyHash, KeyHasher};
use crate::key::{ApiKey, ParseKeyError};
use crate::token::looks_like_jwt;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Shorter strings are not secrets worth moving; longer ones are not keys.
pub const MIN_LEN: usize = 16;
pub const MAX_LEN: usize = 256;

/// Why a plaintext key cannot be imported: each would make it a key nobody could ever use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImportRefusal {
    #[error("must be {MIN_LEN} to {MAX_LEN} characters long")]
    Length,
    #[error("may hold only visible ASCII characters (no spaces), as HTTP headers carry them")]
    Alphabet,
    #[error("has the form of a Latchkey key but its checksum is wrong, so it could never be used")]
    BadChecksum,
    #[error("looks like an access token (a JWT), which is never looked up as a key")]
    LooksLikeToken,
}

/// Whether `s` could be an imported key as presented: the rules [`check_plaintext`] applies,
/// as one pass over the bytes.
fn plausible(s: &str) -> Result<(), ImportRefusal> {
    if !(MIN_LEN..=MAX_LEN).contains(&s.len()) {
        return Err(ImportRefusal::Length);
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ImportRefusal::Alphabet);
    }
    if looks_like_jwt(s) {
        return Err(ImportRefusal::LooksLikeToken);
    }
    Ok(())
}

/// How a plaintext key offered for import is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// In Latchkey's own format with a good checksum (from another Latchkey, say): stored like
    /// a native key, so it keeps the checksum-first lookup.
    Native,
    /// Any other format: stored by the HMAC of its SHA-256.
    Foreign,
}

pub fn check_plaintext(s: &str) -> Result<Plaintext, ImportRefusal> {
    match ApiKey::check(s) {
        Ok(_) => Ok(Plaintext::Native),
        Err(ParseKeyError::BadChecksum) => Err(ImportRefusal::BadChecksum),
        Err(ParseKeyError::Malformed) => plausible(s).map(|()| Plaintext::Foreign),
    }
}

/// A SHA-256 as 64 hex digits (either case) or base64 (standard or URL-safe, padded or not).
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() == 64 {
        if let Some(h) = KeyHash::from_hex(&s.to_ascii_lowercase()) {
            return Some(h.to_bytes());
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let unpadded = s.trim_end_matches('=').replace('-', "+").replace('_', "/");
    b64.decode(unpadded).ok()?.try_into().ok()
}

impl KeyHasher {
    /// The stored hash of an imported key known by its SHA-256.
    pub fn hash_imported(&self, sha256: &[u8; 32]) -> KeyHash {
        self.hash_bytes(sha256)
    }

    /// The stored hash of an imported key known in plaintext.
    pub fn hash_foreign(&self, key: &str) -> KeyHash {
        self.hash_imported(&Sha256::digest(key.as_bytes()).into())
    }

    /// The stored hash a presented key would have, or `None` when it cannot be a stored key at
    /// all (see the module's rules). The one rule for every lookup by a presented key.
    pub fn lookup(&self, presented: &str) -> Option<KeyHash> {
        match check_plaintext(presented).ok()? {
            Plaintext::Native => Some(self.hash(presented)),
            Plaintext::Foreign => Some(self.hash_foreign(presented)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Environment, KeyType};

    fn hasher() -> KeyHasher {
        KeyHasher::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_foreign_key_is_found_by_its_plaintext_or_its_digest_in_any_encoding() {
        let key = "acme_live_4f9a7c1e2b3d4f5a6b7c8d9e";
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let std = base64::engine::general_purpose::STANDARD.encode(digest);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        let h = hasher();
        assert_eq!(check_plaintext(key), Ok(Plaintext::Foreign));
        for encoded in [hex.clone(), hex.to_uppercase(), std, url] {
            let parsed = parse_sha256(&encoded).expect(&encoded);
            assert_eq!(h.hash_imported(&parsed), h.hash_foreign(key), "{encoded}");
        }
        assert_eq!(h.lookup(key), Some(h.hash_foreign(key)));
        // The stored form presented as a key is another string, with another digest.
        assert_ne!(h.lookup(&hex), Some(h.hash_foreign(key)));
        // Digest and native hash of the same string never meet.
        assert_ne!(h.hash_foreign(key), h.hash(key));
    }

    #[test]
    fn native_keys_keep_their_own_hash_and_bad_checksums_skip_the_lookup() {
        let h = hasher();
        let native = ApiKey::generate(KeyType::Secret, Environment::Live);
        let s = native.secret().expose();
        assert_eq!(check_plaintext(s), Ok(Plaintext::Native));
        assert_eq!(h.lookup(s), Some(h.hash(s)));
        let mut typo = s.as_bytes().to_vec();
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(h.lookup(&typo), None);
        assert_eq!(check_plaintext(&typo), Err(ImportRefusal::BadChecksum));
    }

    #[test]
    fn strings_that_could_never_be_presented_are_refused() {
        assert_eq!(check_plaintext("short"), Err(ImportRefusal::Length));
        assert_eq!(
            check_plaintext(&"x".repeat(MAX_LEN + 1)),
            Err(ImportRefusal::Length)
        );
        assert_eq!(
            check_plaintext("has a space in the middle"),
            Err(ImportRefusal::Alphabet)
        );
        assert_eq!(
            check_plaintext("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
            Err(ImportRefusal::LooksLikeToken)
        );
        assert_eq!(hasher().lookup("short"), None);
        for bad in ["", "zz", &"g".repeat(64), "AAAA"] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }
}
