//! Latchkey's verification engine: what every front door (the API, forward auth, the gateway,
//! the tower layer) runs to decide whether a presented credential may do something. Credential
//! parsing on plain `http` headers, the in-memory cache in front of the store, resolution and the
//! decision, the change-log follower that keeps the cache right across nodes, access-token
//! signatures, and `last_used_at` recording.
//!
//! No HTTP server and no web framework: an [`Engine`] is a value a process opens on a store and
//! asks. It installs no global state (no metrics recorder, no files); metrics go through the
//! `metrics` facade and count only where the process installed a recorder.

pub mod cache;
pub mod clock;
pub mod credentials;
pub mod enforce;
mod error;
pub mod feed;
pub mod follower;
pub mod limits;
pub mod origins;
pub mod redis_limits;
pub mod resolve;
pub mod signing;
pub mod usage;

pub use credentials::{presented_credentials, Ambiguous, Presented};
pub use error::EngineError;
pub use resolve::{Refusal, Resolved, Verified};

use cache::VerifyCache;
use latchkey_core::{Demand, Denial, KeyHasher, Secret};
use latchkey_store::{Change, Granularity, SqlStore};
use metrics::Counter;
use signing::SigningKeys;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use usage::UsageRecorder;

/// Wall-clock unix seconds: the unit of every stored time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How an engine keeps its cache.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Keys (with their owners' standing) held in memory.
    pub cache_capacity: u64,
    /// How long an entry may be served without the change log confirming it: the bound on
    /// staleness if the log could not be read at all.
    pub cache_ttl: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 1_000_000,
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// The engine's parts. Shared by clones of [`Engine`].
pub struct Parts {
    pub store: SqlStore,
    pub hasher: KeyHasher,
    pub cache: VerifyCache,
    pub usage: UsageRecorder,
    pub signing: SigningKeys,
    pub counters: Counters,
    /// What the follower applied, for the change stream.
    pub feed: feed::ChangeFeed,
    /// The origins of active publishable keys, for CORS preflights.
    pub origins: origins::PublishableOrigins,
    /// Rate-limit state by limit (SPEC §11.1).
    pub limits: limits::Registry,
    /// The time limits and credits are measured in.
    pub clock: clock::Clock,
    /// `[ratelimit] store`: limits kept in Redis, exact across nodes; unset, each node's own.
    cluster_limits: OnceLock<redis_limits::ClusterLimiter>,
    /// Wakes the follower after this node's own writes: their entries are in the log at once,
    /// and the change stream should not wait for the next poll to hand them on.
    pub(crate) wake_follower: tokio::sync::Notify,
    /// `iss` (and `aud`) of our access tokens, once known; until then (and for an embedded
    /// verifier that is not told) any issuer is accepted: a token that verifies under our
    /// signing keys was signed by this deployment whatever URL it names.
    issuer: OnceLock<String>,
    options: EngineOptions,
}

/// The verification engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine(Arc<Parts>);

impl Deref for Engine {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Engine {
    /// An engine on `store` with the deployment's server secret. Loads the token signing keys
    /// (read only: `serve` creates the first one, see [`SigningKeys::init`]).
    pub async fn open(
        store: SqlStore,
        secret: &Secret,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let engine = Self::new(store, secret, options);
        engine.signing.reload(&engine.store).await?;
        Ok(engine)
    }

    /// An engine whose signing keys are not loaded yet (the caller loads or creates them).
    pub fn new(store: SqlStore, secret: &Secret, options: EngineOptions) -> Self {
        Self::with_clock(store, secret, options, clock::Clock::system())
    }

    /// [`Engine::new`] on a given clock (a manual one in tests).
    pub fn with_clock(
        store: SqlStore,
        secret: &Secret,
        options: EngineOptions,
        clock: clock::Clock,
    ) -> Self {
        Self(Arc::new(Parts {
            hasher: KeyHasher::new(secret.expose().as_bytes()),
            store,
            cache: VerifyCache::new(options.cache_capacity, options.cache_ttl),
            usage: UsageRecorder::default(),
            signing: SigningKeys::new(secret),
            counters: Counters::register(),
            feed: feed::ChangeFeed::default(),
            origins: origins::PublishableOrigins::default(),
            limits: limits::Registry::default(),
            clock,
            cluster_limits: OnceLock::new(),
            wake_follower: tokio::sync::Notify::new(),
            issuer: OnceLock::new(),
            options,
        }))
    }

    /// Keeps rate limits in Redis at `url` (keys under `prefix`), exact across every node that
    /// does the same (SPEC §11.1). Redis unreachable is not an error: limits are local until
    /// it answers. Only the first call takes effect.
    pub async fn use_ratelimit_store(
        &self,
        url: &str,
        prefix: &str,
        call_timeout: std::time::Duration,
    ) -> Result<(), redis_limits::ClusterError> {
        let limiter = redis_limits::ClusterLimiter::connect(url, prefix, call_timeout).await?;
        let _ = self.cluster_limits.set(limiter);
        Ok(())
    }

    /// The cluster-wide limiter, when `[ratelimit] store` is set.
    pub fn cluster_limits(&self) -> Option<&redis_limits::ClusterLimiter> {
        self.cluster_limits.get()
    }

    /// Sets the `iss`/`aud` access tokens must carry (once; later calls are ignored).
    pub fn set_issuer(&self, issuer: String) {
        let _ = self.issuer.set(issuer);
    }

    pub fn issuer(&self) -> Option<&str> {
        self.issuer.get().map(String::as_str)
    }

    /// Call after every committed write with the changes it returned (and for changes other
    /// nodes made, read from the log).
    pub fn changed(&self, changes: &[Change]) {
        self.apply(changes);
        if !changes.is_empty() {
            self.wake_follower.notify_one();
        }
    }

    /// Drops what `changes` made stale (and reloads the signing keys when they changed).
    pub(crate) fn apply(&self, changes: &[Change]) {
        self.cache.apply_all(changes);
        self.origins.apply(changes);
        if changes.contains(&Change::SigningKeys) {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.signing.reload(&engine.store).await {
                    tracing::error!(error = %e, "reloading signing keys failed");
                }
            });
        }
    }

    /// Whether `origin` is in the `allowed_origins` of an active publishable key: a CORS
    /// preflight, which carries no credential, is allowed from it (SPEC §10.4).
    pub async fn publishable_origin_allowed(&self, origin: &str) -> Result<bool, EngineError> {
        Ok(self.origins.allowed(&self.store, origin, now()).await?)
    }

    /// An API key or an access token. `Ok(Err(NotFound))` when there is no such credential.
    pub async fn resolve(&self, raw: &str) -> Result<Result<Resolved, Denial>, EngineError> {
        resolve::resolve(self, raw).await
    }

    /// Checks presented credentials against a demand (see [`resolve::authenticate`]).
    pub async fn authenticate(
        &self,
        presented: &Presented<'_>,
        demand: &Demand<'_>,
        lone_ok: bool,
    ) -> Result<Verified, Refusal> {
        resolve::authenticate(self, presented, demand, lone_ok).await
    }

    /// Records one verification's outcome: the counter by code and source, the usage of the key
    /// it concerned (when one was found) and, when `VALID`, its `last_used_at`.
    pub fn record(
        &self,
        found: Option<&Resolved>,
        code: &'static str,
        source: &'static str,
        credits_spent: i64,
    ) {
        self.counters.verification(code, source);
        if let Some(r) = found {
            let at = now();
            self.usage.count(&r.key, at, code, credits_spent);
            if code == "VALID" {
                self.usage.touch(&r.key, at);
            }
        }
    }

    /// A request its limits refused: recorded like any verification, and the 429 every front
    /// door answers with.
    pub fn refused_by_limits(
        &self,
        found: &Resolved,
        report: &limits::Report,
        source: &'static str,
    ) -> latchkey_proto::denial::Limited {
        let limited = report.limited(self.clock.unix());
        self.record(Some(found), limited.denial.verify_code(), source, 0);
        limited
    }

    /// Whether credentials admitted earlier are still valid, charging no limit.
    pub async fn recheck(
        &self,
        presented: &Presented<'_>,
        demand: &Demand<'_>,
    ) -> Result<(Resolved, Option<Resolved>), Refusal> {
        resolve::check_credentials(self, presented, demand, false).await
    }

    /// Starts what keeps the engine right while it runs: the change-log follower, the usage
    /// flusher and the cache's ageing. Stop it with [`Upkeep::shutdown`] (or by dropping it).
    pub async fn start_upkeep(&self, every: UpkeepIntervals) -> Result<Upkeep, EngineError> {
        let follower = follower::Follower::start(self).await?;
        let changes = tokio::spawn(follower.run(self.clone(), every.change_poll));
        let flusher = {
            let engine = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every.usage_flush);
                loop {
                    tick.tick().await;
                    engine.usage.flush(&engine.store).await;
                }
            })
        };
        let ager = {
            let engine = self.clone();
            let half_ttl = (self.options.cache_ttl / 2).max(Duration::from_millis(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(half_ttl);
                tick.tick().await; // the first tick is immediate
                loop {
                    tick.tick().await;
                    engine.cache.tick();
                    engine.limits.prune(engine.clock.now_ns());
                }
            })
        };
        let pruner = {
            let engine = self.clone();
            let keep = every.usage_retention;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(600));
                loop {
                    tick.tick().await;
                    let cutoffs = keep.cutoffs(engine.clock.unix());
                    if let Err(e) = engine.store.prune_usage(&cutoffs).await {
                        tracing::warn!(error = %e, "pruning old usage failed; will retry");
                    }
                }
            })
        };
        Ok(Upkeep {
            engine: self.clone(),
            tasks: vec![changes, flusher, ager, pruner],
        })
    }
}

/// How often the engine's background work runs.
#[derive(Debug, Clone, Copy)]
pub struct UpkeepIntervals {
    /// Reading the change log without a notification (PostgreSQL also wakes it at once).
    pub change_poll: Duration,
    /// Writing `last_used_at` and the usage counts.
    pub usage_flush: Duration,
    pub usage_retention: UsageRetention,
}

impl Default for UpkeepIntervals {
    fn default() -> Self {
        Self {
            change_poll: Duration::from_millis(500),
            usage_flush: Duration::from_secs(1),
            usage_retention: UsageRetention::default(),
        }
    }
}

/// How long usage buckets of each granularity are kept (SPEC §11.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRetention {
    pub minutes: Duration,
    pub hours: Duration,
    pub days: Duration,
}

impl Default for UsageRetention {
    /// Two days of minutes, 90 days of hours, five years of days.
    fn default() -> Self {
        Self {
            minutes: Duration::from_secs(2 * 86_400),
            hours: Duration::from_secs(90 * 86_400),
            days: Duration::from_secs(5 * 365 * 86_400),
        }
    }
}

impl UsageRetention {
    /// For each granularity, the start of the oldest bucket kept at unix second `now`: older
    /// buckets are pruned.
    pub fn cutoffs(&self, now: i64) -> [(Granularity, i64); 3] {
        let before = |keep: Duration| now.saturating_sub(keep.as_secs() as i64);
        [
            (Granularity::Minute, before(self.minutes)),
            (Granularity::Hour, before(self.hours)),
            (Granularity::Day, before(self.days)),
        ]
    }
}

/// The engine's running background tasks.
pub struct Upkeep {
    engine: Engine,
    tasks: Vec<JoinHandle<()>>,
}

impl Upkeep {
    /// Stops the tasks and writes what usage is still pending.
    pub async fn shutdown(mut self) {
        self.abort();
        // Safe mid-flush: a flush drops an entry only once its write committed.
        self.engine.usage.flush(&self.engine.store).await;
    }

    fn abort(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Counters bumped on every verification, registered once: the `counter!` macro looks the
/// series up in the registry on each call, which costs more than the increment itself. Handles
/// taken before a recorder is installed count nothing, so a process installs its recorder
/// before opening an engine.
pub struct Counters {
    pub key_hits: Counter,
    pub key_misses: Counter,
    /// `VALID` by source, for the sources that verify on every request.
    valid: [(&'static str, Counter); 5],
}

impl Counters {
    fn register() -> Self {
        let valid = |source: &'static str| metrics::counter!("latchkey_verifications_total", "code" => "VALID", "source" => source);
        Self {
            key_hits: metrics::counter!("latchkey_cache_hits_total", "kind" => "key"),
            key_misses: metrics::counter!("latchkey_cache_misses_total", "kind" => "key"),
            valid: ["auth", "verify", "tower", "forward_auth", "gateway"]
                .map(|source| (source, valid(source))),
        }
    }

    /// One verification's outcome (`code`) by where it happened (`source`).
    pub fn verification(&self, code: &'static str, source: &'static str) {
        if code == "VALID" {
            if let Some((_, c)) = self.valid.iter().find(|(s, _)| *s == source) {
                return c.increment(1);
            }
        }
        // A refusal, or a source that is not on every request's path.
        metrics::counter!("latchkey_verifications_total", "code" => code, "source" => source)
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_kept_for_each_granularitys_retention_back_from_now() {
        let keep = UsageRetention {
            minutes: Duration::from_secs(3_600),
            hours: Duration::from_secs(86_400),
            days: Duration::from_secs(30 * 86_400),
        };
        let now = 1_800_000_000;
        assert_eq!(
            keep.cutoffs(now),
            [
                (Granularity::Minute, now - 3_600),
                (Granularity::Hour, now - 86_400),
                (Granularity::Day, now - 30 * 86_400),
            ]
        );
    }
}
