//! `POST /v1/verify` as a client sends and reads it (SPEC §6.4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyRequest {
    /// The API key (alone, or with `access_token` for a pair).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Every one is required.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Limits to charge besides the auto-applied ones (SPEC §11.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratelimits: Vec<LimitCharge>,
    /// The credits a successful verification costs (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<u32>,
}

/// A limit a verify request names, and what to charge it (default 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCharge {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<u32>,
}

/// Where one of the credential's limits stands after the verification (SPEC §11.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitAnswer {
    pub name: String,
    pub limit: u32,
    /// Beside the SPEC's fields: what `RateLimit-Policy` needs (`w`).
    pub window_seconds: u64,
    pub remaining: u32,
    /// When the limit is fully rested again.
    pub reset_at: String,
    pub exceeded: bool,
    /// Beside the SPEC's fields: for a limit that refused, the seconds until the request
    /// would pass (`Retry-After`); 0 otherwise.
    #[serde(default)]
    pub retry_after_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VerifyAnswer {
    pub valid: bool,
    pub code: String,
    pub key_id: Option<String>,
    pub token_id: Option<String>,
    pub name: Option<String>,
    pub key_type: Option<String>,
    pub environment: Option<String>,
    pub workspace_id: Option<String>,
    pub owner_id: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    pub expires_at: Option<String>,
    pub metadata: Option<Value>,
    #[serde(default)]
    pub ratelimits: Vec<LimitAnswer>,
    #[serde(default)]
    pub credits: Vec<CreditsAnswer>,
}

/// Where the credits of the key or its member stand after the verification (SPEC §11.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsAnswer {
    /// `key` or `member`.
    pub owner: String,
    pub remaining: i64,
    pub exceeded: bool,
    /// The next refill, if the credits have one.
    pub refills_at: Option<String>,
}

impl VerifyAnswer {
    /// The `RateLimit` fields of the answer's limits, as the verifying server would send them.
    pub fn ratelimit_fields(&self, now_unix: i64) -> Option<crate::ratelimit::Fields> {
        let standings: Vec<crate::ratelimit::Standing<'_>> = self
            .ratelimits
            .iter()
            .map(|l| crate::ratelimit::Standing {
                name: &l.name,
                limit: l.limit,
                window_seconds: l.window_seconds,
                remaining: l.remaining,
                reset_seconds: chrono::DateTime::parse_from_rfc3339(&l.reset_at)
                    .map(|t| u64::try_from(t.timestamp() - now_unix).unwrap_or(0))
                    .unwrap_or(0),
            })
            .collect();
        crate::ratelimit::Fields::of(&standings)
    }

    /// `Retry-After` of a `RATE_LIMITED` or `USAGE_EXCEEDED` answer, at least 1 s; `None` for
    /// credits that never refill.
    pub fn retry_after_seconds(&self, now_unix: i64) -> Option<u64> {
        if self.code == "USAGE_EXCEEDED" {
            return self
                .credits
                .iter()
                .filter(|c| c.exceeded)
                .filter_map(|c| c.refills_at.as_deref())
                .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| u64::try_from(t.timestamp() - now_unix).unwrap_or(0).max(1))
                .max();
        }
        Some(
            self.ratelimits
                .iter()
                .map(|l| l.retry_after_seconds)
                .max()
                .unwrap_or(0)
                .max(1),
        )
    }
}
