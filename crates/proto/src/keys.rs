//! `/v1/keys` (SPEC §6.2): create (the key shown once), list, get, update, roll, revoke.

use crate::list::Page;
use crate::patch::Patch;
use crate::Timestamp;
use latchkey_core::credits::Credits;
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::{Environment, KeyType, Permission, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/keys`. Only `name` is required; every field left `None` is left out of the body,
/// so the server's default applies (the calling credential's workspace and environment, the
/// caller as owner, all of the owner's permissions, no expiry unless the workspace sets one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateKey {
    pub name: String,
    /// `secret` (default) or `publishable`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Another member of the workspace; needs `latchkey:keys:manage_all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Restrict the key to these (never more than its owner and its creator hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Publishable keys only: `https://app.example.com`, `https://*.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// IP addresses or CIDR blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    /// A JSON object, at most 4096 bytes, returned by verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Named rate limits (SPEC §11.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// Credits (SPEC §11.2); none = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
}

/// `PATCH /v1/keys/{id}`: only what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new restriction list, or [`Patch::Clear`] to follow the owner's permissions again.
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub permissions: Patch<Vec<Permission>>,
    /// A new expiry, or [`Patch::Clear`] for none.
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub expires_at: Patch<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The whole new list of rate limits (`Some(vec![])` removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// New credits, or [`Patch::Clear`] for unlimited.
    #[serde(default, skip_serializing_if = "Patch::is_keep")]
    pub credits: Patch<Credits>,
}

impl UpdateKey {
    /// Whether the update would change nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `POST /v1/keys/{id}/roll`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollKey {
    /// How long the old key keeps working: 0 (the default) to 604800 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u32>,
}

/// The query of `GET /v1/keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFilter {
    /// Default: the calling credential's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KeyStatus>,
    #[serde(flatten)]
    pub page: Page,
}

/// Whether a key works, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for KeyStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            KeyStatus::Active,
            KeyStatus::Expired,
            KeyStatus::Revoked,
            KeyStatus::Disabled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("not a key status: {s:?}"))
    }
}

/// A key as the API shows it: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    /// Type, environment and last four characters: `sk_live_…AbCd`.
    pub redacted: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub environment: Environment,
    pub workspace_id: String,
    pub owner_id: String,
    /// The key's own restriction list; `None` means all of its owner's permissions.
    pub permissions: Option<Vec<Permission>>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub ratelimits: Vec<NamedLimit>,
    /// The balance as it stands, and the refill; `None` = unlimited.
    #[serde(default)]
    pub credits: Option<Credits>,
    pub enabled: bool,
    pub status: KeyStatus,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// The key that replaced this one, after a roll.
    pub rolled_to: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The answer to create and roll: the only one that carries the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    /// The full API key, this once. `Debug` prints `[redacted]`.
    #[serde(rename = "key", with = "crate::secret")]
    pub secret: Secret,
    #[serde(flatten)]
    pub key: Key,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_create_body_has_only_the_given_fields() {
        let body = CreateKey {
            name: "ci".into(),
            key_type: Some(KeyType::Publishable),
            permissions: Some(vec![Permission::parse("docs:read").unwrap()]),
            expires_at: Some("2030-01-01T02:00:00+02:00".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "ci", "type": "publishable", "permissions": ["docs:read"],
                   "expires_at": "2030-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn an_update_tells_clearing_from_leaving_alone() {
        let clear = UpdateKey {
            expires_at: Patch::Clear,
            permissions: Patch::Clear,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&clear).unwrap(),
            json!({"expires_at": null, "permissions": null})
        );
        assert!(UpdateKey::default().is_empty() && !clear.is_empty());
        assert_eq!(
            serde_json::to_value(UpdateKey::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn the_created_key_is_redacted_in_debug() {
        let created: CreatedKey = serde_json::from_value(json!({
            "key": "sk_test_0123456789abcdefghijklmnopqrstuvwxyzAB", "id": "key_1",
            "name": "ci", "redacted": "sk_test_…yzAB", "type": "secret", "environment": "test",
            "workspace_id": "ws_1", "owner_id": "usr_1", "permissions": null,
            "allowed_origins": [], "allowed_ips": [], "metadata": {}, "enabled": true,
            "status": "active", "expires_at": null, "last_used_at": null, "revoked_at": null,
            "rolled_to": null, "created_at": "2024-05-01T12:34:56Z",
            "updated_at": "2024-05-01T12:34:56Z",
        }))
        .unwrap();
        assert_eq!(created.key.status, KeyStatus::Active);
        let debug = format!("{created:?}");
        assert!(
            !debug.contains("0123456789") && debug.contains("[redacted]"),
            "{debug}"
        );
        assert_eq!(
            serde_json::to_value(&created).unwrap()["key"],
            "sk_test_0123456789abcdefghijklmnopqrstuvwxyzAB"
        );
    }

    #[test]
    fn statuses_read_and_print_as_the_api_spells_them() {
        for s in ["active", "expired", "revoked", "disabled"] {
            let k: KeyStatus = s.parse().unwrap();
            assert_eq!(serde_json::to_value(k).unwrap(), s);
        }
        assert!("gone".parse::<KeyStatus>().is_err());
    }
}

/// One key of `POST /v1/keys/import` (SPEC §12.3): a key issued elsewhere, given as `key`
/// (its plaintext, any format) or `sha256` (its SHA-256, hex or base64), never both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportKey {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::option"
    )]
    pub key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub name: String,
    pub owner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// `secret` (default) or `publishable`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `POST /v1/keys/import`: up to 1,000 keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportKeys {
    pub keys: Vec<ImportKey>,
}

/// What became of an import: the keys stored (all in one transaction) and the ones refused,
/// each by its position in the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportResult {
    pub imported: Vec<Imported>,
    pub failed: Vec<ImportFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    pub index: usize,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportFailure {
    pub index: usize,
    pub message: String,
}
