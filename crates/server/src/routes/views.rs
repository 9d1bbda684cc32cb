//! Response bodies: what the API shows of each stored object (never a secret, except the one
//! `key` field of a creation or roll response).

use super::schema::{
    CreditsSchema, EnvironmentName, EventId, GrantId, InstanceRoleName, KeyId, KeyStatusName,
    KeyTypeName, Metadata, Permission, RateLimitList, RoleName, Timestamp, UserId,
    WebhookDeliveryId, WebhookDeliveryStatus, WebhookEventFilter, WebhookId, WorkspaceId,
};
use crate::now;
use crate::service::keys::IssuedKey;
use crate::state::AppState;
use chrono::{DateTime, SecondsFormat};
use latchkey_core::credits::Credits;
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::roles::InstanceRole;
use latchkey_store::{
    ApiKeyRecord, AuditEvent, DeliveryStatus, Grant, Member, Page, Role, User, WebhookDelivery,
    WebhookEndpoint, Workspace,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Unix seconds → RFC 3339 UTC (`2026-11-22T05:42:47Z`).
pub fn ts(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn ts_opt(t: Option<i64>) -> Option<String> {
    t.map(ts)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    #[schema(value_type = KeyId)]
    pub id: String,
    pub name: String,
    /// Display form: type, environment and the last four characters.
    #[schema(example = "sk_live_…AbCd")]
    pub redacted: String,
    #[schema(value_type = KeyTypeName)]
    pub r#type: String,
    #[schema(value_type = EnvironmentName)]
    pub environment: String,
    #[schema(value_type = WorkspaceId)]
    pub workspace_id: String,
    #[schema(value_type = UserId)]
    pub owner_id: String,
    /// The key's own restriction list; `null` means all of its owner's permissions.
    #[schema(value_type = Option<Vec<Permission>>)]
    pub permissions: Option<Vec<String>>,
    pub allowed_origins: Vec<String>,
    pub allowed_ips: Vec<String>,
    #[schema(value_type = Metadata)]
    pub metadata: Value,
    #[schema(value_type = RateLimitList)]
    pub ratelimits: Vec<NamedLimit>,
    /// The balance as it stands and the refill; `null` = unlimited.
    #[schema(value_type = Option<CreditsSchema>)]
    pub credits: Option<Credits>,
    pub enabled: bool,
    /// `active`, `expired`, `revoked` or `disabled`.
    #[schema(value_type = KeyStatusName)]
    pub status: String,
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    #[schema(value_type = Option<Timestamp>)]
    pub last_used_at: Option<String>,
    #[schema(value_type = Option<Timestamp>)]
    pub revoked_at: Option<String>,
    /// The key that replaced this one, after a roll.
    #[schema(value_type = Option<KeyId>)]
    pub rolled_to: Option<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

impl KeyView {
    pub fn new(k: &ApiKeyRecord, now: i64, pending_use: Option<i64>) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            redacted: k.redacted.clone(),
            r#type: k.key_type.as_str().into(),
            environment: k.environment.as_str().into(),
            workspace_id: k.workspace_id.clone(),
            owner_id: k.owner_id.clone(),
            permissions: k.permissions.as_ref().map(|p| p.to_strings()),
            allowed_origins: k.allowed_origins.clone(),
            allowed_ips: k.allowed_ips.iter().map(ToString::to_string).collect(),
            metadata: k.metadata.clone(),
            ratelimits: k.ratelimits.clone(),
            credits: k.credits.clone(),
            enabled: k.enabled,
            status: k.status(now).as_str().into(),
            expires_at: ts_opt(k.expires_at),
            last_used_at: ts_opt(k.last_used_at.max(pending_use)),
            revoked_at: ts_opt(k.revoked_at),
            rolled_to: k.rolled_to.clone(),
            created_at: ts(k.created_at),
            updated_at: ts(k.updated_at),
        }
    }
}

impl KeyView {
    /// The key as it is now, with a use this node has seen but not yet written.
    pub fn current(state: &AppState, k: &ApiKeyRecord) -> Self {
        Self::new(k, now(), state.engine.usage.pending(&k.id))
    }

    /// `secret` or `publishable` (templates cannot name a raw identifier).
    pub fn kind(&self) -> &str {
        &self.r#type
    }
}

/// A key as created or rolled: the only response that ever carries the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The full API key. Shown this once; store it now.
    #[schema(pattern = "^(sk|pk)_(test|live)_[0-9A-Za-z]{38}$")]
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

impl CreatedKey {
    pub fn new(state: &AppState, issued: &IssuedKey) -> Self {
        Self {
            key: issued.key.secret().expose().to_owned(),
            view: KeyView::current(state, &issued.record),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = UserId)]
    pub id: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    /// `admin`, `verifier` or `null`.
    #[schema(value_type = Option<InstanceRoleName>)]
    pub instance_role: Option<&'static str>,
    /// `instance_role == "admin"`, as earlier versions answered it.
    pub is_instance_admin: bool,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Option<Timestamp>)]
    pub deactivated_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            active: u.is_active(),
            instance_role: u.instance_role().map(InstanceRole::as_str),
            is_instance_admin: u.is_instance_admin(),
            created_at: ts(u.created_at),
            deactivated_at: ts_opt(u.deactivated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    #[schema(value_type = WorkspaceId)]
    pub id: String,
    pub name: String,
    /// A lone credential is refused; requests must carry API key + access token.
    pub require_pair: bool,
    /// The most a publishable key of this workspace can ever do.
    #[schema(value_type = Vec<Permission>)]
    pub publishable_permissions: Vec<String>,
    pub max_key_ttl_seconds: Option<i64>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

impl From<&Workspace> for WorkspaceView {
    fn from(w: &Workspace) -> Self {
        Self {
            id: w.id.clone(),
            name: w.name.clone(),
            require_pair: w.require_pair,
            publishable_permissions: w.publishable_permissions.to_strings(),
            max_key_ttl_seconds: w.max_key_ttl_seconds,
            created_at: ts(w.created_at),
            updated_at: ts(w.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = UserId)]
    pub user_id: String,
    pub email: String,
    pub name: String,
    #[schema(value_type = RoleName)]
    pub role: String,
    pub active: bool,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = RateLimitList)]
    pub ratelimits: Vec<NamedLimit>,
    /// `null` = unlimited.
    #[schema(value_type = Option<CreditsSchema>)]
    pub credits: Option<Credits>,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            credits: m.credits.clone(),
            ratelimits: m.ratelimits.clone(),
            user_id: m.user_id.clone(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.clone(),
            active: m.active,
            created_at: ts(m.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    #[schema(value_type = RoleName)]
    pub name: String,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    pub built_in: bool,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

impl From<&Role> for RoleView {
    fn from(r: &Role) -> Self {
        Self {
            name: r.name.clone(),
            permissions: r.permissions.to_strings(),
            built_in: latchkey_core::roles::BUILT_IN.contains(&r.name.as_str()),
            updated_at: ts(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    #[schema(value_type = GrantId)]
    pub id: String,
    #[schema(value_type = WorkspaceId)]
    pub workspace_id: String,
    #[schema(value_type = UserId)]
    pub user_id: String,
    #[schema(value_type = Permission)]
    pub permission: String,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
}

impl From<&Grant> for GrantView {
    fn from(g: &Grant) -> Self {
        Self {
            id: g.id.clone(),
            workspace_id: g.workspace_id.clone(),
            user_id: g.user_id.clone(),
            permission: g.permission.clone(),
            created_at: ts(g.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActorView {
    #[schema(value_type = Option<UserId>)]
    pub user_id: Option<String>,
    /// The key or token that acted; `null` for the dashboard and the bootstrap.
    pub credential_id: Option<String>,
    /// The name of the key (or token) that acted, as it was at the time.
    pub credential_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTargetView {
    /// `key`, `token`, `user`, `workspace`, `member`, `role`, `grant`, …
    pub r#type: String,
    /// The target's id (a role's name for `role`).
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    #[schema(value_type = EventId)]
    pub id: String,
    #[schema(value_type = Timestamp)]
    pub at: String,
    #[schema(value_type = Option<WorkspaceId>)]
    pub workspace_id: Option<String>,
    /// e.g. `key.created`, `member.role_changed`.
    pub action: String,
    pub actor: AuditActorView,
    pub target: AuditTargetView,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id.clone(),
            at: ts(e.at),
            workspace_id: e.workspace_id.clone(),
            action: e.action.clone(),
            actor: AuditActorView {
                user_id: e.actor.user_id.clone(),
                credential_id: e.actor.credential_id.clone(),
                credential_name: e.actor.credential_name.clone(),
            },
            target: AuditTargetView {
                r#type: e.target_type.clone(),
                id: e.target_id.clone(),
            },
            ip: e.actor.ip.clone(),
            user_agent: e.actor.user_agent.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// `{"data": [...], "next_cursor": "…" | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn from_page<S>(page: Page<S>) -> Self
    where
        T: for<'a> From<&'a S>,
    {
        Self::map(page, |s| T::from(s))
    }

    pub fn map<S>(page: Page<S>, f: impl Fn(&S) -> T) -> Self {
        Self {
            data: page.data.iter().map(f).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Pagination parameters shared by the lists without filters. Their operations document them
/// one by one: each list's cursor is an id of its own kind.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    #[schema(value_type = WebhookId)]
    pub id: String,
    #[schema(value_type = WorkspaceId)]
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    /// Event filters: an event's name, `group.*` or `*`.
    #[schema(value_type = Vec<WebhookEventFilter>)]
    pub events: Vec<String>,
    /// `false` once the receiver answered 410 Gone (or when turned off); nothing is sent then.
    pub enabled: bool,
    /// Until when the secret replaced by the last rotation also signs; `null` when none does.
    #[schema(value_type = Option<Timestamp>)]
    pub previous_secret_expires_at: Option<String>,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
    #[schema(value_type = Timestamp)]
    pub updated_at: String,
}

impl From<&WebhookEndpoint> for WebhookView {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.clone(),
            workspace_id: e.workspace_id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            previous_secret_expires_at: e.previous_expires_at.filter(|t| *t > now()).map(ts),
            created_at: ts(e.created_at),
            updated_at: ts(e.updated_at),
        }
    }
}

/// An endpoint as created or after a rotation: the only response that carries its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The signing secret (Standard Webhooks' `whsec_` form). Shown this once; store it now.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]+={0,2}$")]
    pub secret: String,
    #[serde(flatten)]
    pub view: WebhookView,
}

/// One event sent (or to be sent) to one endpoint, with the outcome of its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    #[schema(value_type = WebhookDeliveryId)]
    pub id: String,
    /// The `webhook-id` header and the payload's `id`: the same on every attempt.
    #[schema(value_type = EventId)]
    pub event_id: String,
    #[schema(value_type = WebhookEventFilter)]
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    #[schema(value_type = WebhookDeliveryStatus)]
    pub status: String,
    pub attempts: i64,
    /// When the next attempt is due; `null` unless pending.
    #[schema(value_type = Option<Timestamp>)]
    pub next_attempt_at: Option<String>,
    /// The HTTP status of the last answer; `null` when there was none (refused, timed out).
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// The body sent.
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Timestamp)]
    pub created_at: String,
}

impl From<&WebhookDelivery> for WebhookDeliveryView {
    fn from(d: &WebhookDelivery) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: pending.then(|| ts(d.next_attempt_at)),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
            created_at: ts(d.created_at),
        }
    }
}
