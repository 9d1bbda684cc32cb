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
}
