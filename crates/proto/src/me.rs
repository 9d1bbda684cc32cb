//! `GET /v1/me` (SPEC §6.1): who the credential is, where, allowed to do what.

use crate::Timestamp;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{Environment, KeyType, Permission};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: MeUser,
    pub workspace: MeWorkspace,
    pub credential: MeCredential,
    /// With a key + token pair: the API key presented beside the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_key_id: Option<String>,
    /// What the credential can do now: the owner's permissions narrowed by the key's
    /// restriction (and a token's scope).
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeUser {
    pub id: String,
    /// `None` for a publishable key, which must not reveal its owner's address.
    pub email: Option<String>,
    pub name: String,
    pub instance_role: Option<InstanceRole>,
    pub is_instance_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeWorkspace {
    pub id: String,
    pub name: String,
    /// `None` when the owner is no member (an instance admin acting elsewhere).
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeCredential {
    #[serde(rename = "type")]
    pub credential_type: CredentialType,
    /// The key's id, or the access token's.
    pub id: String,
    pub name: String,
    pub key_type: KeyType,
    pub environment: Environment,
    pub expires_at: Option<Timestamp>,
    /// The API key (for an access token: the key it was obtained from).
    pub key_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    ApiKey,
    AccessToken,
}
