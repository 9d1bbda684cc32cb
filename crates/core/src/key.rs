//! The API key format: `{sk|pk}_{test|live}_{32 random base62}{6 base62 of CRC32}`.
//!
//! The checksum lets us refuse typos and junk without touching storage or the cache, and lets
//! secret scanners match `(sk|pk)_(test|live)_[0-9A-Za-z]{38}` with few false positives.

use crate::{base62, Secret};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = "sk_test_".len();
pub const KEY_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Secret,
    Publishable,
}

impl KeyType {
    pub const ALL: [KeyType; 2] = [KeyType::Secret, KeyType::Publishable];

    pub fn prefix(self) -> &'static str {
        match self {
            KeyType::Secret => "sk",
            KeyType::Publishable => "pk",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Secret => "secret",
            KeyType::Publishable => "publishable",
        }
    }
}

impl FromStr for KeyType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "secret" => Ok(KeyType::Secret),
            "publishable" => Ok(KeyType::Publishable),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Test,
    Live,
}

impl Environment {
    pub const ALL: [Environment; 2] = [Environment::Test, Environment::Live];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Live => "live",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "test" => Ok(Environment::Test),
            "live" => Ok(Environment::Live),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseKeyError {
    #[error("not an API key")]
    Malformed,
    #[error("API key checksum does not match")]
    BadChecksum,
}

/// A syntactically valid API key (prefix, characters and checksum all check out). Whether it
/// exists is the store's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    key_type: KeyType,
    environment: Environment,
    secret: Secret,
}

impl ApiKey {
    pub fn generate(key_type: KeyType, environment: Environment) -> Self {
        let mut s = String::with_capacity(KEY_LEN);
        s.push_str(key_type.prefix());
        s.push('_');
        s.push_str(environment.as_str());
        s.push('_');
        base62::push_random(RANDOM_LEN, &mut s);
        let crc = crc32fast::hash(s.as_bytes());
        base62::encode_fixed(u64::from(crc), CHECKSUM_LEN, &mut s);
        Self {
            key_type,
            environment,
            secret: Secret::new(s),
        }
    }

    /// Checks shape and checksum only; the key is copied only once it checks out.
    pub fn parse(s: &str) -> Result<Self, ParseKeyError> {
        let (key_type, environment) = Self::check(s)?;
        Ok(Self {
            key_type,
            environment,
            secret: Secret::new(s),
        })
    }

    /// [`ApiKey::parse`] without keeping the key: no allocation, so junk and typos cost a CRC32
    /// and nothing else.
    pub fn check(s: &str) -> Result<(KeyType, Environment), ParseKeyError> {
        let b = s.as_bytes();
        if b.len() != KEY_LEN || b[2] != b'_' || b[7] != b'_' {
            return Err(ParseKeyError::Malformed);
        }
        let key_type = match &b[..2] {
            b"sk" => KeyType::Secret,
            b"pk" => KeyType::Publishable,
            _ => return Err(ParseKeyError::Malformed),
        };
        let environment = match &b[3..7] {
            b"test" => Environment::Test,
            b"live" => Environment::Live,
            _ => return Err(ParseKeyError::Malformed),
        };
        if !b[PREFIX_LEN..].iter().all(|&c| base62::is_base62(c)) {
            return Err(ParseKeyError::Malformed);
        }
        let (payload, checksum) = b.split_at(KEY_LEN - CHECKSUM_LEN);
        let mut expected = [0u8; CHECKSUM_LEN];
        base62::encode_into(u64::from(crc32fast::hash(payload)), &mut expected);
        if expected != checksum {
            return Err(ParseKeyError::BadChecksum);
        }
        Ok((key_type, environment))
    }

    /// Whether a string is shaped like one of our keys (used to spot keys in query strings).
    pub fn looks_like_key(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == KEY_LEN && (b.starts_with(b"sk_") || b.starts_with(b"pk_"))
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The display form stored beside the hash: type, environment and last four characters.
    pub fn redacted(&self) -> String {
        let s = self.secret.expose();
        format!("{}…{}", &s[..PREFIX_LEN], &s[KEY_LEN - 4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_match_the_scanner_pattern() {
        for kt in [KeyType::Secret, KeyType::Publishable] {
            for env in [Environment::Test, Environment::Live] {
                let k = ApiKey::generate(kt, env);
                let s = k.secret().expose();
                assert_eq!(s.len(), KEY_LEN);
                assert!(s.starts_with(&format!("{}_{}_", kt.prefix(), env.as_str())));
                assert_eq!(ApiKey::parse(s).unwrap(), k);
                assert!(k.redacted().ends_with(&s[s.len() - 4..]));
                assert!(!k.redacted().contains(&s[PREFIX_LEN..PREFIX_LEN + 8]));
            }
        }
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            "",
            "sk_live_",
            "xx_live_0123",
            "sk_prod_0000000000000000000000000000000000000",
        ] {
            assert_eq!(ApiKey::parse(bad), Err(ParseKeyError::Malformed), "{bad}");
        }
        let good = ApiKey::generate(KeyType::Secret, Environment::Live);
        let with_dash = good.secret().expose().replacen('_', "-", 1);
        assert_eq!(ApiKey::parse(&with_dash), Err(ParseKeyError::Malformed));
    }

    fn flip(s: &str, i: usize, to: u8) -> String {
        let mut b = s.as_bytes().to_vec();
        b[i] = to;
        String::from_utf8(b).unwrap()
    }

    proptest! {
        // CRC32 detects every single-character substitution, so any one-character typo in the
        // random part or the checksum is refused before any lookup.
        #[test]
        fn any_single_substitution_is_refused(pos in PREFIX_LEN..KEY_LEN, digit in 0usize..62) {
            let key = ApiKey::generate(KeyType::Secret, Environment::Test);
            let s = key.secret().expose();
            let to = base62::ALPHABET[digit];
            prop_assume!(s.as_bytes()[pos] != to);
            prop_assert!(ApiKey::parse(&flip(s, pos, to)).is_err());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = ApiKey::parse(&s);
        }

        #[test]
        fn random_bodies_almost_never_pass(body in "[0-9A-Za-z]{38}") {
            let s = format!("sk_live_{body}");
            // A random body passes the checksum with probability 2^-32; treat a pass as a failure
            // unless it really is self-consistent.
            if let Ok(k) = ApiKey::parse(&s) {
                let crc = crc32fast::hash(&s.as_bytes()[..KEY_LEN - CHECKSUM_LEN]);
                let mut expect = String::new();
                base62::encode_fixed(u64::from(crc), CHECKSUM_LEN, &mut expect);
                prop_assert!(k.secret().expose().ends_with(&expect));
            }
        }
    }
}
