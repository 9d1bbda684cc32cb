//! Serde for [`latchkey_core::Secret`]: the fields that carry a key, a token or a password are
//! plain strings on the wire but print `[redacted]` in `Debug`, so logging an answer or a
//! request never shows them. Use with `#[serde(with = "latchkey_proto::secret")]`.

use latchkey_core::Secret;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// For `Option<Secret>` fields (with `skip_serializing_if = "Option::is_none"` and `default`).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match secret {
            Some(v) => s.serialize_some(v.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(Secret::new))
    }
}
