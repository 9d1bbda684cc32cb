//! Keys at rest: HMAC-SHA256 under the server secret. A stolen database alone cannot be used
//! to test guesses offline, and nothing can show a key again.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::hash::{Hash, Hasher};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

/// Hashes as its first eight bytes: the value is already an HMAC output, uniform and
/// unpredictable without the server secret, so hashing it again (SipHash over 32 bytes) would buy
/// no protection and cost a tenth of a verification. Pair with a pass-through hasher.
impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix())
    }
}

impl KeyHash {
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = nibble(b[2 * i])? << 4 | nibble(b[2 * i + 1])?;
        }
        Some(Self(out))
    }

    /// Constant-time comparison, for the final check after a lookup by hash: four word XORs
    /// folded together, no early exit.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        let word = |h: &KeyHash, i: usize| {
            u64::from_le_bytes(h.0[8 * i..8 * i + 8].try_into().expect("8 bytes"))
        };
        let diff = (0..4).fold(0u64, |acc, i| acc | (word(self, i) ^ word(other, i)));
        diff.ct_eq(&0).into()
    }

    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    fn prefix(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the key, but it is still a lookup handle: keep it short in debug output.
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

/// The keyed hasher. Cloning the pre-keyed MAC state avoids re-deriving the HMAC pads per call.
#[derive(Clone)]
pub struct KeyHasher {
    mac: HmacSha256,
}

impl KeyHasher {
    pub fn new(server_secret: &[u8]) -> Self {
        Self {
            mac: HmacSha256::new_from_slice(server_secret).expect("HMAC accepts any key length"),
        }
    }

    pub fn hash(&self, key: &str) -> KeyHash {
        self.hash_bytes(key.as_bytes())
    }

    pub(crate) fn hash_bytes(&self, bytes: &[u8]) -> KeyHash {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        KeyHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_secret_and_key() {
        let a = KeyHasher::new(b"0123456789abcdef0123456789abcdef");
        let b = KeyHasher::new(b"fedcba9876543210fedcba9876543210");
        assert_eq!(a.hash("k1"), a.hash("k1"));
        assert_ne!(a.hash("k1"), a.hash("k2"));
        assert_ne!(a.hash("k1"), b.hash("k1"));
        let h = a.hash("k1");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert!(h.ct_eq(&KeyHash::from_hex(&h.to_hex()).unwrap()));
        assert!(!h.ct_eq(&a.hash("k2")));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }

    #[test]
    fn ct_eq_sees_a_difference_in_any_byte() {
        let h = KeyHasher::new(b"0123456789abcdef0123456789abcdef").hash("k1");
        for i in 0..32 {
            let mut other = h;
            other.0[i] ^= 1;
            assert!(!h.ct_eq(&other), "byte {i}");
        }
        assert!(h.ct_eq(&{ h }));
    }

    #[test]
    fn matches_rfc4231_case_2() {
        let h = KeyHasher::new(b"Jefe").hash("what do ya want for nothing?");
        assert_eq!(
            h.to_hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
