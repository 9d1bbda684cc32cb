//! Rows as stored and the inputs of writes. JSON columns are decoded here, once.

use latchkey_core::credits::Credits;
use latchkey_core::ipnet::IpNet;
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{ids, ApiKey, Environment, KeyHasher, KeyType, PermissionSet};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Self {
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(id)
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<'a> {
    pub cursor: Option<&'a str>,
    pub limit: u32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_instance_admin: i64,
    pub active: i64,
    pub created_at: i64,
    pub deactivated_at: Option<i64>,
    /// Exclusive with `is_instance_admin` (a CHECK in the schema).
    pub is_instance_verifier: i64,
}

impl User {
    pub fn is_instance_admin(&self) -> bool {
        self.is_instance_admin != 0
    }
    pub fn is_instance_verifier(&self) -> bool {
        self.is_instance_verifier != 0
    }
    pub fn instance_role(&self) -> Option<InstanceRole> {
        instance_role(self.is_instance_admin(), self.is_instance_verifier())
    }
    pub fn is_active(&self) -> bool {
        self.active != 0
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub instance_role: Option<InstanceRole>,
}

/// `PATCH /v1/users/{id}`: each field is changed when given.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    /// `Some(None)` takes the user's instance role away.
    pub instance_role: Option<Option<InstanceRole>>,
}

fn instance_role(admin: bool, verifier: bool) -> Option<InstanceRole> {
    if admin {
        Some(InstanceRole::Admin)
    } else if verifier {
        Some(InstanceRole::Verifier)
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub require_pair: bool,
    pub publishable_permissions: PermissionSet,
    pub max_key_ttl_seconds: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    pub require_pair: Option<bool>,
    pub publishable_permissions: Option<PermissionSet>,
    /// `Some(None)` clears the limit.
    pub max_key_ttl_seconds: Option<Option<i64>>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub workspace_id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub active: bool,
    pub created_at: i64,
    pub ratelimits: Vec<NamedLimit>,
    pub credits: Option<Credits>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub workspace_id: String,
    pub name: String,
    pub permissions: PermissionSet,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub workspace_id: String,
    pub user_id: String,
    pub permission: String,
    pub created_at: i64,
}

/// A user's standing in one workspace: what verification needs besides the key itself.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub workspace_id: String,
    pub active: bool,
    pub is_instance_admin: bool,
    /// `latchkey:verify` across every workspace on top of `permissions` (see
    /// `latchkey_core::verify::OwnerFacts::instance_verifier`).
    pub is_instance_verifier: bool,
    pub role: Option<String>,
    /// Role permissions plus grants; everything for an instance admin.
    pub permissions: PermissionSet,
    /// The member's own rate limits, shared by all of the user's keys and tokens here.
    pub ratelimits: Vec<NamedLimit>,
    /// The member's credits, as read (the balance is charged in the database, never from here);
    /// `None` = unlimited.
    pub credits: Option<Credits>,
}

impl Principal {
    pub fn instance_role(&self) -> Option<InstanceRole> {
        instance_role(self.is_instance_admin, self.is_instance_verifier)
    }

    /// A member of the workspace. Instance admins too need to be one for their keys there to
    /// work: removing anyone from a workspace stops their keys in it at once (SPEC §3).
    pub fn is_member(&self) -> bool {
        self.role.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: String,
    pub hash: String,
    pub redacted: String,
    pub name: String,
    pub key_type: KeyType,
    pub environment: Environment,
    pub workspace_id: String,
    pub owner_id: String,
    pub permissions: Option<PermissionSet>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<IpNet>,
    pub metadata: Value,
    pub ratelimits: Vec<NamedLimit>,
    /// As read: the balance is charged in the database, never from a cached copy.
    pub credits: Option<Credits>,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rolled_to: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
    Disabled,
}

impl KeyStatus {
    pub const ALL: [KeyStatus; 4] = [
        KeyStatus::Active,
        KeyStatus::Expired,
        KeyStatus::Revoked,
        KeyStatus::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => KeyStatus::Active,
            "expired" => KeyStatus::Expired,
            "revoked" => KeyStatus::Revoked,
            "disabled" => KeyStatus::Disabled,
            _ => return None,
        })
    }
}

impl ApiKeyRecord {
    /// Same precedence as the verification decision: revoked, disabled, expired.
    pub fn status(&self, now: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if !self.enabled {
            KeyStatus::Disabled
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub hash: String,
    pub redacted: String,
    pub name: String,
    pub key_type: KeyType,
    pub environment: Environment,
    pub workspace_id: String,
    pub owner_id: String,
    pub permissions: Option<PermissionSet>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<IpNet>,
    pub metadata: Value,
    pub ratelimits: Vec<NamedLimit>,
    pub credits: Option<Credits>,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
}

impl NewApiKey {
    /// The record of a freshly generated key: a new id, the key's stored hash and redacted form,
    /// and nothing else set (no restriction, origins, IPs, metadata or expiry; not created by
    /// a key). Callers that set more fill in the rest themselves.
    pub fn for_key(
        key: &ApiKey,
        hasher: &KeyHasher,
        name: String,
        workspace_id: String,
        owner_id: String,
    ) -> Self {
        Self {
            id: ids::new_id(ids::KEY),
            hash: hasher.hash(key.secret().expose()).to_hex(),
            redacted: key.redacted(),
            name,
            key_type: key.key_type(),
            environment: key.environment(),
            workspace_id,
            owner_id,
            permissions: None,
            allowed_origins: vec![],
            allowed_ips: vec![],
            metadata: Value::Object(Default::default()),
            ratelimits: vec![],
            credits: None,
            expires_at: None,
            created_by: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    /// `Some(None)` removes the restriction (the key then has all its owner's permissions).
    pub permissions: Option<Option<PermissionSet>>,
    pub expires_at: Option<Option<i64>>,
    pub enabled: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<IpNet>>,
    pub metadata: Option<Value>,
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// `Some(None)`: unlimited.
    pub credits: Option<Option<Credits>>,
}

/// What `PUT /v1/workspaces/{id}/members/{user_id}` may set besides the role; `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct MemberSettings {
    pub ratelimits: Option<Vec<NamedLimit>>,
    /// `Some(None)`: unlimited.
    pub credits: Option<Option<Credits>>,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub workspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub environment: Option<Environment>,
    pub status: Option<KeyStatus>,
    pub key_type: Option<KeyType>,
    /// Keys whose name contains this, ignoring ASCII case (a search box).
    pub name_contains: Option<String>,
    /// For a caller who is not an instance admin, the caller's user id: keys owned by users
    /// with an instance role (which act beyond the workspace) are left out, but for its own.
    pub instance_role_keys_hidden_from: Option<String>,
}

/// Who did something, as the audit log shows it.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub credential_id: Option<String>,
    pub credential_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub workspace_id: Option<String>,
    pub action: String,
    pub actor: Actor,
    pub target_type: String,
    pub target_id: String,
    pub detail: Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// `None` means every workspace (instance admins only); events without a workspace
    /// (user.created, …) are only listed then.
    pub workspace_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
}

/// One entry of the change log as a follower reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub seq: i64,
    /// `None` for a kind this version does not know (written by a newer node).
    pub change: Option<Change>,
}

/// What a write changed that may alter a verification outcome. Written to the `changes` log in
/// the write's transaction and returned to the caller to invalidate its cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key (by its stored hash) was created, revoked, rolled or edited.
    Key(String),
    /// A user's standing in one workspace changed (membership, grant).
    Principal {
        workspace_id: String,
        user_id: String,
    },
    /// A workspace's roles or settings changed: every principal in it.
    Workspace(String),
    /// A user was deactivated: every principal of that user.
    User(String),
    /// An access token (by id) was revoked or replaced.
    Token(String),
    /// The signing keys changed (rotation): reload them.
    SigningKeys,
}

impl Change {
    pub(crate) fn kind_subject(&self) -> (&'static str, String) {
        match self {
            Change::Key(h) => ("key", h.clone()),
            Change::Principal {
                workspace_id,
                user_id,
            } => ("principal", format!("{workspace_id}/{user_id}")),
            Change::Workspace(w) => ("workspace", w.clone()),
            Change::User(u) => ("user", u.clone()),
            Change::Token(t) => ("token", t.clone()),
            Change::SigningKeys => ("signing_keys", String::new()),
        }
    }

    pub fn from_kind_subject(kind: &str, subject: &str) -> Option<Self> {
        Some(match kind {
            "key" => Change::Key(subject.to_owned()),
            "principal" => {
                let (w, u) = subject.split_once('/')?;
                Change::Principal {
                    workspace_id: w.to_owned(),
                    user_id: u.to_owned(),
                }
            }
            "workspace" => Change::Workspace(subject.to_owned()),
            "user" => Change::User(subject.to_owned()),
            "token" => Change::Token(subject.to_owned()),
            "signing_keys" => Change::SigningKeys,
            _ => return None,
        })
    }
}

/// The first-start bootstrap, done in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin: NewUser,
    pub workspace_id: String,
    pub workspace_name: String,
    pub key: NewApiKey,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// base64url of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    /// Encrypted private key (see the server's `signing` module).
    pub private_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// How an access token came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `POST /v1/auth/token`.
    Exchange,
    /// `POST /oauth/token` (client credentials).
    ClientCredentials,
    /// `POST /v1/tokens`: named, long-lived, listed and renewable.
    Environment,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Exchange => "exchange",
            TokenKind::ClientCredentials => "client_credentials",
            TokenKind::Environment => "environment",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "exchange" => TokenKind::Exchange,
            "client_credentials" => TokenKind::ClientCredentials,
            "environment" => TokenKind::Environment,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub kid: String,
    pub key_id: String,
    /// The stored hash of the key it was obtained from, to find that key in the verification cache.
    pub key_hash: String,
    pub workspace_id: String,
    pub owner_id: String,
    pub environment: Environment,
    /// The narrowing asked for at issue; `None` = everything the key can do.
    pub scope: Option<PermissionSet>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub kid: String,
    pub key_id: String,
    pub workspace_id: String,
    pub owner_id: String,
    pub environment: Environment,
    pub scope: Option<PermissionSet>,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub workspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub kind: Option<&'static str>,
    /// `test` or `live`.
    pub environment: Option<&'static str>,
    /// For a caller who is not an instance admin, the caller's user id: tokens owned by users
    /// with an instance role are left out, but for its own.
    pub instance_role_tokens_hidden_from: Option<String>,
}
