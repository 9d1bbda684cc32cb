//! Access tokens (SPEC §6.1): the exchange of a key for a token (`POST /v1/auth/token`) and the
//! named, long-lived environment tokens (`/v1/tokens`).

use crate::Timestamp;
use latchkey_core::{Environment, Permission, Secret};
use serde::{Deserialize, Serialize};

/// `POST /v1/auth/token`. The key is normally in a header (a [`crate`] client sends its own);
/// `api_key` is for a caller that has none there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::option"
    )]
    pub api_key: Option<Secret>,
    /// Lifetime in seconds; capped by the server's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// Narrow the token to these (never more than the key holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
}

/// The answer to an exchange, shaped as RFC 6749 §5.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The JWT, this once. `Debug` prints `[redacted]`.
    #[serde(with = "crate::secret")]
    pub access_token: Secret,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// The permissions the token carries, space-separated.
    pub scope: String,
}

/// `POST /v1/tokens`: an environment token, from an API key allowed to manage keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateToken {
    pub name: String,
    /// Must be the environment of the API key creating it (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Default 30 days; at most the server's maximum (365 days by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

/// An environment token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: Option<String>,
    pub environment: Environment,
    /// The API key it was generated with; it dies with that key.
    pub key_id: String,
    pub status: TokenStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// The answer to create and renew: the only one that carries the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The JWT, this once. `Debug` prints `[redacted]`.
    #[serde(with = "crate::secret")]
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(flatten)]
    pub token: Token,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_have_only_the_given_fields() {
        assert_eq!(
            serde_json::to_value(Exchange::default()).unwrap(),
            json!({})
        );
        let narrow = Exchange {
            ttl_seconds: Some(600),
            permissions: Some(vec![Permission::parse("docs:read").unwrap()]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&narrow).unwrap(),
            json!({"ttl_seconds": 600, "permissions": ["docs:read"]})
        );
        let create = CreateToken {
            name: "deploy".into(),
            environment: Some(Environment::Live),
            ttl_seconds: None,
        };
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            json!({"name": "deploy", "environment": "live"})
        );
    }

    #[test]
    fn tokens_are_redacted_in_debug() {
        let t: AccessToken = serde_json::from_value(json!({
            "access_token": "eyJ.secret-part.sig", "token_type": "Bearer", "expires_in": 60,
            "scope": "docs:read",
        }))
        .unwrap();
        assert!(!format!("{t:?}").contains("secret-part"));
        let e = Exchange {
            api_key: Some(Secret::new("sk_live_hidden")),
            ..Default::default()
        };
        assert!(!format!("{e:?}").contains("hidden"));
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"api_key": "sk_live_hidden"})
        );
    }
}
