//! What every handler shares.

use latchkey_engine::Engine;
use latchkey_store::{Change, SqlStore};
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    /// The verification engine: credentials, cache, resolution, token signatures, usage.
    pub engine: Engine,
    /// The engine behind forward auth's route table (SPEC §10.2, §10.3); SIGHUP replaces the table.
    pub gate: latchkey_tower::Gate,
    /// The engine's store, for the handlers' reads and writes.
    pub store: SqlStore,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub tokens: TokenSettings,
    /// How long a portal link stays usable, in seconds (five minutes but in tests).
    pub portal_link_ttl: i64,
    /// Failed dashboard sign-ins and password checks.
    pub throttle: crate::dashboard::session::Throttle,
    /// Failed credentials per client address.
    pub credential_throttle: crate::throttle::CredentialThrottle,
    /// Whose `X-Forwarded-For` names the client.
    pub proxies: crate::client_addr::TrustedProxies,
    /// `[dashboard]`: sign-in methods and branding, as configured (its `oidc` is in `sso`).
    pub dashboard: crate::config::DashboardSettings,
    /// Single sign-on, when `[dashboard.oidc]` is configured.
    pub sso: Option<crate::dashboard::oidc::Sso>,
    /// `[leaks]`: what a leak report does, and the keys GitHub's reports are signed with.
    pub leaks: crate::config::LeakSettings,
    /// Webhook settings, the endpoint secrets' sealing key, and the worker's bell.
    pub webhooks: crate::webhooks::Webhooks,
    /// Set when the server starts shutting down: long-lived responses (the change stream) end
    /// then, instead of holding the graceful shutdown for its whole grace period.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// Lifetimes of access tokens, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    pub default_ttl: i64,
    pub max_ttl: i64,
    pub environment_default_ttl: i64,
    pub environment_max_ttl: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            default_ttl: 3600,
            max_ttl: 86_400,
            environment_default_ttl: 30 * 86_400,
            environment_max_ttl: 365 * 86_400,
        }
    }
}

impl TokenSettings {
    pub fn new(
        default_ttl: Option<i64>,
        max_ttl: Option<i64>,
        environment_max_ttl: Option<i64>,
    ) -> anyhow::Result<Self> {
        let d = Self::default();
        let s = Self {
            default_ttl: default_ttl.unwrap_or(d.default_ttl),
            max_ttl: max_ttl.unwrap_or(d.max_ttl),
            environment_max_ttl: environment_max_ttl.unwrap_or(d.environment_max_ttl),
            ..d
        };
        anyhow::ensure!(
            0 < s.default_ttl && s.default_ttl <= s.max_ttl && s.environment_max_ttl > 0,
            "token lifetimes must be positive, and the default no longer than the maximum"
        );
        Ok(Self {
            environment_default_ttl: s.environment_default_ttl.min(s.environment_max_ttl),
            ..s
        })
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Call after every committed write with the changes it returned (and for changes other
    /// nodes made, read from the log).
    pub fn changed(&self, changes: &[Change]) {
        self.engine.changed(changes);
    }

    /// `iss` (and `aud`) of our access tokens: the configured public URL, or the address we
    /// serve on, set once when serving starts.
    pub fn issuer(&self) -> &str {
        self.engine.issuer().unwrap_or("")
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
