//! Rate limits kept in Redis, exact across nodes (SPEC §11.1 "Cluster"): one script call charges
//! all of a request's limits with `charge_all`'s arithmetic and all-or-none rule, and
//! [`ClusterLimiter`] falls back to the node's own limits while Redis does not answer.
//!
//! Works against a single Redis (or a primary behind a proxy or Sentinel). Redis Cluster would
//! need every key of one request in one hash slot, which the keys here do not promise.

use latchkey_core::ratelimit::{Charged, Rate};
use metrics::{Counter, Gauge};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long opening a connection may take. Redis sits next to the nodes; a connect slower than
/// this is an outage, and a node that starts while Redis is away must not hold its start up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// How long one charge may wait for Redis (connection included) before the request is answered
/// by the local limiter, unless `[ratelimit] timeout_ms` says otherwise: a round trip is well
/// under a millisecond, and this bounds what an outage adds to a verification. A node that
/// times out answers locally until its next probe, so under a starved CPU (a loaded test
/// machine) a limit can pass more than its count; a longer timeout trades outage latency for
/// exactness.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// While Redis is down, how often one request tries it again (the others answer locally): often
/// enough to come back within a second or two, rare enough that an outage costs Redis and the
/// node next to nothing.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The script: `charge_all` in Lua. Its header says why every number is kept as two parts.
const CHARGE_SCRIPT: &str = include_str!("redis_limits.lua");

/// One limit of a request, as Redis keeps it.
#[derive(Debug, Clone, Copy)]
pub struct ClusterCharge<'a> {
    /// The limit's name in Redis below the store's prefix, e.g. `k:key_123:burst`.
    pub key: &'a str,
    pub rate: Rate,
    pub cost: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the rate-limit store did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis's own error: an I/O error, a refused connection, a script error. redis-rs's errors
    /// do not repeat the URL (which may hold a password), so this one may be logged.
    #[error("the rate-limit store: {0}")]
    Store(#[from] redis::RedisError),
    #[error("the rate-limit store's answer does not fit the request")]
    Reply,
}

/// The rate limits of every node, in one Redis.
pub struct RedisLimits {
    /// Reconnects by itself after an error; cloning it is a reference count, and commands from
    /// concurrent requests are pipelined on one connection.
    conn: ConnectionManager,
    /// Before every key, so several deployments (or tests) can share one Redis.
    prefix: String,
    /// EVALSHA, and on NOSCRIPT (a restarted Redis has forgotten it) SCRIPT LOAD and again.
    script: Script,
    /// [`CALL_TIMEOUT`] unless configured.
    call_timeout: Duration,
}

impl RedisLimits {
    /// Connects, and loads the script so the first charge is one round trip. Fails within
    /// `CONNECT_TIMEOUT + CALL_TIMEOUT` when Redis is away.
    pub async fn connect(
        url: &str,
        prefix: &str,
        call_timeout: Duration,
    ) -> Result<Self, ClusterError> {
        let limits = Self::lazy(url, prefix, call_timeout)?;
        limits.load_script().await?;
        Ok(limits)
    }

    /// Opens nothing yet: the connection is made by the first call, and made again after a
    /// failure by the next one. A bad URL fails here. Needs a Tokio runtime.
    fn lazy(url: &str, prefix: &str, call_timeout: Duration) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(call_timeout))
            // One attempt per reconnect: [`ClusterLimiter`] paces the attempts while Redis is
            // down, and the manager's own backoff would only delay noticing it is back.
            .set_number_of_retries(0);
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: prefix.to_owned(),
            script: Script::new(CHARGE_SCRIPT),
            call_timeout,
        })
    }

    async fn load_script(&self) -> Result<(), ClusterError> {
        let bound = CONNECT_TIMEOUT + self.call_timeout;
        let mut conn = self.conn.clone();
        tokio::time::timeout(bound, self.script.load_async(&mut conn))
            .await
            .map_err(|_| ClusterError::Timeout(bound))??;
        Ok(())
    }

    /// Charges every limit, or none, as `latchkey_core::ratelimit::charge_all` does, in one
    /// EVALSHA; outcome `i` is limit `i`'s. `now_ns` is for tests: without it, Redis's clock
    /// (unix nanoseconds) is the time, the same for every node. Bounded by [`CALL_TIMEOUT`].
    pub async fn charge(
        &self,
        limits: &[ClusterCharge<'_>],
        now_ns: Option<u64>,
    ) -> Result<Vec<Charged>, ClusterError> {
        bounded(self.call_timeout, self.eval(limits, now_ns)).await
    }

    async fn eval(
        &self,
        limits: &[ClusterCharge<'_>],
        now_ns: Option<u64>,
    ) -> Result<Vec<Charged>, ClusterError> {
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.script.prepare_invoke();
        for limit in limits {
            invocation
                .key(format!("{}{}", self.prefix, limit.key))
                .arg(limit.rate.capacity_ns())
                .arg(increment(limit));
        }
        if let Some(now) = now_ns {
            invocation.arg(now);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        decode(limits, &reply)
    }

    /// Whether Redis answers, asked up to twice. The manager remakes a failed connection only
    /// when a call finds it failed, so after an outage the first PING may only report the last
    /// failed attempt (and start a new one), which the second PING then uses. A PING, not a
    /// charge, because only a PING is safe to repeat.
    async fn ping_twice(&self) -> Result<(), ClusterError> {
        let ping = || async {
            redis::cmd("PING")
                .query_async::<()>(&mut self.conn.clone())
                .await
        };
        if ping().await.is_err() {
            ping().await?;
        }
        Ok(())
    }
}

/// Bounds a call to Redis, waiting for a connection included, by `limit`.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| ClusterError::Timeout(limit))?
}

/// What a charge adds to a TAT, exactly as `Limiter::charge` computes it (saturating), so the
/// script needs no multiplication.
fn increment(limit: &ClusterCharge<'_>) -> u64 {
    limit
        .rate
        .interval_ns()
        .saturating_mul(u64::from(limit.cost))
}

/// The script's `{now, allowed_i, tat_i…}` as `charge_all` reports it: the state of each TAT at
/// `now` by core's arithmetic, and for each limit that would not take its cost (the one that
/// refused, and any later one, only read, that is short too) how long until it would.
fn decode(limits: &[ClusterCharge<'_>], reply: &[String]) -> Result<Vec<Charged>, ClusterError> {
    let number = |text: &String| text.parse::<u64>().map_err(|_| ClusterError::Reply);
    let (now, pairs) = reply.split_first().ok_or(ClusterError::Reply)?;
    if pairs.len() != 2 * limits.len() {
        return Err(ClusterError::Reply);
    }
    let now = number(now)?;
    limits
        .iter()
        .zip(pairs.chunks_exact(2))
        .map(|(limit, pair)| {
            let allowed = match pair[0].as_str() {
                "1" => true,
                "0" => false,
                _ => return Err(ClusterError::Reply),
            };
            let tat = number(&pair[1])?;
            let retry_after_ns = if allowed {
                0
            } else {
                let next = tat.max(now).saturating_add(increment(limit));
                (next - now).saturating_sub(limit.rate.capacity_ns())
            };
            Ok(Charged {
                allowed,
                state: limit.rate.standing(tat, now),
                retry_after_ns,
            })
        })
        .collect()
}

/// The limiter a node holds when `[ratelimit] store` is set: Redis while it answers, the node's
/// own limits while it does not, and back to Redis by itself. Health is two atomics, so a
/// healthy request takes no lock; while Redis is down one request per [`PROBE_INTERVAL`] tries
/// it and the rest go straight to the local limits. What was charged locally during an outage
/// stays local: Redis resumes from its own state (or from rest, if it restarted empty).
pub struct ClusterLimiter {
    /// `None`: no store configured, every charge is local (and not counted as a fallback).
    store: Option<RedisLimits>,
    up: AtomicBool,
    /// While down, the earliest time (ns after `epoch`) the next probe may go out; taken by a
    /// compare-and-swap, so one request probes.
    next_probe_ns: AtomicU64,
    epoch: Instant,
    /// `latchkey_ratelimit_fallbacks_total`: requests answered locally because Redis was down.
    fallbacks: Counter,
    /// `latchkey_ratelimit_store_up`: 1 while Redis answers, 0 while it does not.
    store_up: Gauge,
}

impl ClusterLimiter {
    /// Every charge local: no store is configured.
    pub fn local_only() -> Self {
        Self::new(None, false)
    }

    /// Redis at `url`, keys under `prefix`. An unreachable Redis is not an error: the limiter
    /// starts down (warns once) and moves to Redis when it answers. Only a URL that cannot be
    /// used fails. Returns within `CONNECT_TIMEOUT + call_timeout`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        call_timeout: Duration,
    ) -> Result<Self, ClusterError> {
        let store = RedisLimits::lazy(url, prefix, call_timeout)?;
        let reached = store.load_script().await;
        let limiter = Self::new(Some(store), reached.is_ok());
        if let Err(error) = reached {
            // The URL is never logged: it may carry a password.
            tracing::warn!(%error, "rate-limit store unreachable at start: each node limits alone until it answers");
            limiter.next_probe_ns.store(
                limiter.elapsed_ns() + PROBE_INTERVAL.as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        Ok(limiter)
    }

    fn new(store: Option<RedisLimits>, up: bool) -> Self {
        let limiter = Self {
            store,
            up: AtomicBool::new(up),
            next_probe_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            fallbacks: metrics::counter!("latchkey_ratelimit_fallbacks_total"),
            store_up: metrics::gauge!("latchkey_ratelimit_store_up"),
        };
        if limiter.store.is_some() {
            limiter.store_up.set(if up { 1.0 } else { 0.0 });
        }
        limiter
    }

    /// Whether charges currently go to Redis.
    pub fn store_up(&self) -> bool {
        self.store.is_some() && self.up.load(Ordering::Relaxed)
    }

    /// Charges the request's limits in Redis, or, while Redis does not answer (or none is
    /// configured), returns what `local` answers: the caller's `charge_all` on the node's own
    /// limiters for the same limits. Never fails, and never waits longer than [`CALL_TIMEOUT`].
    pub async fn charge(
        &self,
        limits: &[ClusterCharge<'_>],
        local: impl FnOnce() -> Vec<Charged>,
    ) -> Vec<Charged> {
        let Some(store) = &self.store else {
            return local();
        };
        let up = self.up.load(Ordering::Acquire);
        if !up && !self.take_probe() {
            self.fallbacks.increment(1);
            return local();
        }
        let charged = if up {
            store.charge(limits, None).await
        } else {
            // The probe: is Redis back? Then charge there; both within one call timeout.
            bounded(store.call_timeout, async {
                store.ping_twice().await?;
                store.eval(limits, None).await
            })
            .await
        };
        match charged {
            Ok(charged) => {
                self.mark_up();
                charged
            }
            Err(error) => {
                // A call that timed out may have been charged in Redis all the same: then this
                // request counts twice, which errs towards refusing, never towards admitting.
                self.mark_down(&error);
                self.fallbacks.increment(1);
                local()
            }
        }
    }

    fn elapsed_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether this request is the one that tries Redis again now.
    fn take_probe(&self) -> bool {
        let now = self.elapsed_ns();
        let due = self.next_probe_ns.load(Ordering::Relaxed);
        now >= due
            && self
                .next_probe_ns
                .compare_exchange(
                    due,
                    now + PROBE_INTERVAL.as_nanos() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn mark_up(&self) {
        // One load on the healthy path; the swap only when coming back, so one request logs.
        if !self.up.load(Ordering::Relaxed)
            && self
                .up
                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.store_up.set(1.0);
            tracing::info!("rate-limit store answers again: limits are cluster-wide again");
        }
    }

    fn mark_down(&self, error: &ClusterError) {
        // The next probe is set before `up` falls (released by the swap, acquired by the load in
        // `charge`), so a request that sees "down" does not probe again at once.
        self.next_probe_ns.store(
            self.elapsed_ns() + PROBE_INTERVAL.as_nanos() as u64,
            Ordering::Relaxed,
        );
        if self
            .up
            .compare_exchange(true, false, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            self.store_up.set(0.0);
            tracing::warn!(%error, "rate-limit store unreachable: each node limits alone until it answers");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a real Redis: the shared one at `LATCHKEY_TEST_REDIS_URL` (default
    //! 127.0.0.1:6379), each test under a prefix of its own that it deletes at the end; the
    //! outage tests start and kill their own `redis-server` on a free port.

    use super::*;
    use latchkey_core::ratelimit::{charge_all, Charge, Limiter, State, MAX_WINDOW_SECONDS};
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    const S: u64 = 1_000_000_000;

    fn shared_url() -> String {
        std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn unique_prefix(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("latchkey-test:{test}:{}:{nanos}:", std::process::id())
    }

    /// A connection under a fresh prefix, and the guard that deletes the prefix's keys when the
    /// test ends, failed or not.
    async fn shared(test: &str) -> (RedisLimits, Cleanup) {
        let prefix = unique_prefix(test);
        let limits = RedisLimits::connect(&shared_url(), &prefix, CALL_TIMEOUT)
            .await
            .expect("the test Redis (LATCHKEY_TEST_REDIS_URL) answers");
        (limits, Cleanup(prefix))
    }

    struct Cleanup(String);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            // Synchronous: a drop cannot await, and this runs once per test.
            let client = redis::Client::open(shared_url()).unwrap();
            let mut conn = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.0))
                .query(&mut conn)
                .unwrap();
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(keys).query(&mut conn).unwrap();
            }
        }
    }

    impl RedisLimits {
        async fn raw<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
            cmd.query_async(&mut self.conn.clone()).await.unwrap()
        }

        async fn stored(&self, key: &str) -> Option<String> {
            self.raw(redis::cmd("GET").arg(format!("{}{key}", self.prefix)))
                .await
        }

        async fn pttl(&self, key: &str) -> i64 {
            self.raw(redis::cmd("PTTL").arg(format!("{}{key}", self.prefix)))
                .await
        }
    }

    /// Test time in unix-scale nanoseconds (so the script's two-part numbers are exercised), moved
    /// by hand and never slower than real time: Redis expires keys on its real clock, and a key
    /// that real time has expired must also be at rest on the test clock.
    struct TestClock {
        base: u64,
        start: Instant,
    }

    impl TestClock {
        fn new() -> Self {
            Self {
                base: 1_780_000_000 * S + 123_456_789,
                start: Instant::now(),
            }
        }

        fn advance(&mut self, ns: u64) {
            self.base += ns;
        }

        fn now(&self) -> u64 {
            self.base + self.start.elapsed().as_nanos() as u64
        }
    }

    fn rested() -> Charged {
        Charged {
            allowed: false,
            state: State {
                remaining: 0,
                reset_ns: 0,
            },
            retry_after_ns: 0,
        }
    }

    /// The same request on both sides: `charge_all` on local limiters, the script in Redis.
    async fn both(
        redis: &RedisLimits,
        local: &HashMap<&str, Limiter>,
        request: &[ClusterCharge<'_>],
        now: u64,
    ) -> (Vec<Charged>, Vec<Charged>) {
        let charges: Vec<Charge<'_>> = request
            .iter()
            .map(|c| Charge {
                limiter: &local[c.key],
                rate: c.rate,
                cost: c.cost,
            })
            .collect();
        let mut expected = vec![rested(); request.len()];
        charge_all(&charges, now, &mut expected);
        let got = redis.charge(request, Some(now)).await.unwrap();
        (got, expected)
    }

    #[tokio::test]
    async fn the_script_answers_as_charge_all_does() {
        let (redis, _cleanup) = shared("equal").await;
        // Rates whose interval is a whole second, not a whole microsecond (7 per second), the
        // longest window (its ns are past 2^53), the densest limit, and one key read under two
        // rates (a lowered limit: more spent than the new capacity).
        let limits = [
            ("a", Rate::new(10, 60).unwrap()),
            ("b", Rate::new(2, 60).unwrap()),
            ("c", Rate::new(7, 1).unwrap()),
            ("d", Rate::new(1, MAX_WINDOW_SECONDS).unwrap()),
            ("e", Rate::new(1_000_000, 1).unwrap()),
            ("f", Rate::new(3, 86_400).unwrap()),
            ("c", Rate::new(3, 1).unwrap()),
        ];
        let local: HashMap<&str, Limiter> =
            limits.iter().map(|(k, _)| (*k, Limiter::new())).collect();
        let costs = [0, 1, 1, 1, 1, 2, 3, 5, 11, 999_999, u32::MAX];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut clock = TestClock::new();
        let (mut passed, mut refused_before_last) = (0, 0);
        for step in 0..600 {
            clock.advance(match rng.gen_range(0..6) {
                0 | 1 => 0,
                2 => rng.gen_range(0..2_000_000),
                3 => rng.gen_range(0..200_000_000),
                4 => rng.gen_range(0..20 * S),
                _ => rng.gen_range(0..3 * 86_400 * S),
            });
            let request: Vec<ClusterCharge<'_>> = (0..rng.gen_range(1..=4))
                .map(|_| {
                    let (key, rate) = limits[rng.gen_range(0..limits.len())];
                    ClusterCharge {
                        key,
                        rate,
                        cost: costs[rng.gen_range(0..costs.len())],
                    }
                })
                .collect();
            let (got, expected) = both(&redis, &local, &request, clock.now()).await;
            assert_eq!(got, expected, "step {step}: {request:?}");
            match expected.iter().position(|c| !c.allowed) {
                None => passed += 1,
                Some(i) if i + 1 < request.len() => refused_before_last += 1,
                Some(_) => {}
            }
        }
        assert!(passed > 100, "{passed} requests passed");
        assert!(
            refused_before_last > 30,
            "{refused_before_last} refused before their last limit"
        );
    }

    #[tokio::test]
    async fn a_refusal_in_the_middle_writes_nothing() {
        let (redis, _cleanup) = shared("middle").await;
        let local: HashMap<&str, Limiter> = ["wide", "narrow", "after"]
            .into_iter()
            .map(|k| (k, Limiter::new()))
            .collect();
        let request = [
            ClusterCharge {
                key: "wide",
                rate: Rate::new(100, 60).unwrap(),
                cost: 1,
            },
            ClusterCharge {
                key: "narrow",
                rate: Rate::new(2, 60).unwrap(),
                cost: 1,
            },
            ClusterCharge {
                key: "after",
                rate: Rate::new(50, 60).unwrap(),
                cost: 1,
            },
        ];
        let now = TestClock::new().now();
        for _ in 0..2 {
            let (got, expected) = both(&redis, &local, &request, now).await;
            assert_eq!(got, expected);
            assert!(got.iter().all(|c| c.allowed));
        }
        let before = [
            redis.stored("wide").await,
            redis.stored("narrow").await,
            redis.stored("after").await,
        ];
        let (got, expected) = both(&redis, &local, &request, now).await;
        assert_eq!(got, expected);
        assert!(got[0].allowed && !got[1].allowed && got[2].allowed);
        assert_eq!(got[0].state.remaining, 98, "reported as if not charged");
        assert_eq!(
            got[1].retry_after_ns,
            30 * S,
            "one of 2 per minute rests in 30 s"
        );
        assert_eq!(got[2].state.remaining, 48, "read, not charged");
        let after = [
            redis.stored("wide").await,
            redis.stored("narrow").await,
            redis.stored("after").await,
        ];
        assert_eq!(before, after, "a refused request writes nothing");
    }

    #[tokio::test]
    async fn keys_expire_when_their_limit_rests() {
        let (redis, _cleanup) = shared("expiry").await;
        let now = TestClock::new().now();
        let per_minute = Rate::new(10, 60).unwrap();
        let charge = |key, rate, cost| [ClusterCharge { key, rate, cost }];
        assert!(
            redis
                .charge(&charge("spent", per_minute, 3), Some(now))
                .await
                .unwrap()[0]
                .allowed
        );
        let ttl = redis.pttl("spent").await;
        assert!(
            (17_000..=18_000).contains(&ttl),
            "3 units of 6 s rest in 18 s: {ttl} ms"
        );

        // A read and a refusal create nothing.
        assert!(
            redis
                .charge(&charge("read", per_minute, 0), Some(now))
                .await
                .unwrap()[0]
                .allowed
        );
        assert!(
            !redis
                .charge(&charge("refused", per_minute, 11), Some(now))
                .await
                .unwrap()[0]
                .allowed
        );
        assert_eq!(redis.pttl("read").await, -2);
        assert_eq!(redis.pttl("refused").await, -2);

        // On Redis's own clock: one of 10 per second rests in 100 ms, and then the key is gone.
        let per_second = Rate::new(10, 1).unwrap();
        assert!(
            redis
                .charge(&charge("brief", per_second, 1), None)
                .await
                .unwrap()[0]
                .allowed
        );
        let ttl = redis.pttl("brief").await;
        assert!((1..=100).contains(&ttl), "{ttl} ms");
        let deadline = Instant::now() + Duration::from_secs(2);
        while redis.pttl("brief").await != -2 {
            assert!(Instant::now() < deadline, "the key outlived its rest");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let again = redis
            .charge(&charge("brief", per_second, 0), None)
            .await
            .unwrap();
        assert_eq!(again[0].state.remaining, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_share_one_limit_exactly() {
        let prefix = unique_prefix("nodes");
        let _cleanup = Cleanup(prefix.clone());
        let nodes = [
            Arc::new(
                RedisLimits::connect(&shared_url(), &prefix, CALL_TIMEOUT)
                    .await
                    .unwrap(),
            ),
            Arc::new(
                RedisLimits::connect(&shared_url(), &prefix, CALL_TIMEOUT)
                    .await
                    .unwrap(),
            ),
        ];
        let rate = Rate::new(100, 3_600).unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let node = nodes[i % 2].clone();
                tokio::spawn(async move {
                    let limit = [ClusterCharge {
                        key: "shared",
                        rate,
                        cost: 1,
                    }];
                    node.charge(&limit, None).await.unwrap()[0].allowed
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        assert_eq!(
            allowed, 100,
            "200 charges from two nodes against a limit of 100"
        );
    }

    /// A `redis-server` of the test's own, killed (SIGKILL) when dropped.
    struct OwnRedis {
        child: std::process::Child,
    }

    impl OwnRedis {
        async fn start(port: u16) -> Self {
            let child = std::process::Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--requirepass", PASSWORD])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("/usr/bin/redis-server starts");
            let deadline = Instant::now() + Duration::from_secs(5);
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} did not listen"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Self { child }
        }

        fn kill(mut self) {
            self.child.kill().unwrap();
            self.child.wait().unwrap();
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A local fallback that counts how often it answered.
    fn local_answer(count: &AtomicUsize) -> Vec<Charged> {
        count.fetch_add(1, Ordering::Relaxed);
        vec![Charged {
            allowed: true,
            state: State {
                remaining: 7,
                reset_ns: 0,
            },
            retry_after_ns: 0,
        }]
    }

    /// Charges until Redis answers (the fallback was not used), within a bound.
    async fn until_redis_answers(limiter: &ClusterLimiter, request: &[ClusterCharge<'_>]) {
        let locally = AtomicUsize::new(0);
        // The first probe after Redis is back moves to it: within one interval, and some slack
        // for a busy machine.
        let deadline = Instant::now() + PROBE_INTERVAL + Duration::from_millis(700);
        loop {
            let before = locally.load(Ordering::Relaxed);
            let got = limiter.charge(request, || local_answer(&locally)).await;
            if locally.load(Ordering::Relaxed) == before {
                assert!(got[0].allowed && got[0].state.remaining >= 990, "{got:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the limiter did not return to Redis"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(limiter.store_up());
    }

    const SLACK: Duration = Duration::from_millis(150);

    /// The own servers' password: it is in the URL, and must never reach a log line.
    const PASSWORD: &str = "pw-not-for-logs";

    fn own_url(port: u16) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{port}")
    }

    /// What the code under test logs on this thread (a current-thread runtime polls everything
    /// there), until the guard is dropped.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Logs {
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(self.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_default(subscriber)
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// One warning for the outage, one note for the recovery, and no secret.
        fn assert_one_outage(&self) {
            let text = self.text();
            assert_eq!(text.matches("WARN").count(), 1, "{text}");
            assert_eq!(text.matches("unreachable").count(), 1, "{text}");
            assert_eq!(text.matches("answers again").count(), 1, "{text}");
            assert!(
                !text.contains(PASSWORD) && !text.contains("redis://"),
                "{text}"
            );
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;

        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

    fn one_limit() -> [ClusterCharge<'static>; 1] {
        [ClusterCharge {
            key: "k",
            rate: Rate::new(1_000, 60).unwrap(),
            cost: 1,
        }]
    }

    #[tokio::test]
    async fn an_outage_falls_back_locally_and_recovers_by_itself() {
        let logs = Logs::default();
        let _capture = logs.capture();
        let port = free_port();
        let server = OwnRedis::start(port).await;
        let limiter = ClusterLimiter::connect(&own_url(port), "outage:", CALL_TIMEOUT)
            .await
            .unwrap();
        assert!(limiter.store_up());
        let request = one_limit();
        let locally = AtomicUsize::new(0);
        let got = limiter.charge(&request, || local_answer(&locally)).await;
        assert_eq!(
            (locally.load(Ordering::Relaxed), got[0].state.remaining),
            (0, 999)
        );

        server.kill();
        // Past one probe interval, so the outage is probed again and still logged once.
        let deadline = Instant::now() + PROBE_INTERVAL + Duration::from_millis(300);
        let mut i = 0;
        while Instant::now() < deadline {
            i += 1;
            let started = Instant::now();
            let got = limiter.charge(&request, || local_answer(&locally)).await;
            assert!(
                started.elapsed() < CALL_TIMEOUT + SLACK,
                "request {i} took {:?}",
                started.elapsed()
            );
            assert_eq!(got[0].state.remaining, 7, "answered locally");
            assert_eq!(locally.load(Ordering::Relaxed), i);
            assert!(!limiter.store_up());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let _server = OwnRedis::start(port).await;
        until_redis_answers(&limiter, &request).await;
        logs.assert_one_outage();
    }

    #[tokio::test]
    async fn a_store_away_at_start_is_used_once_it_answers() {
        let logs = Logs::default();
        let _capture = logs.capture();
        let port = free_port();
        let started = Instant::now();
        let limiter = ClusterLimiter::connect(&own_url(port), "late:", CALL_TIMEOUT)
            .await
            .unwrap();
        assert!(started.elapsed() < CONNECT_TIMEOUT + CALL_TIMEOUT + SLACK);
        assert!(!limiter.store_up());
        let request = one_limit();
        let locally = AtomicUsize::new(0);
        let started = Instant::now();
        let got = limiter.charge(&request, || local_answer(&locally)).await;
        assert!(started.elapsed() < CALL_TIMEOUT + SLACK);
        assert_eq!(
            (locally.load(Ordering::Relaxed), got[0].state.remaining),
            (1, 7)
        );

        let _server = OwnRedis::start(port).await;
        until_redis_answers(&limiter, &request).await;
        logs.assert_one_outage();
    }

    /// The engine holds one limiter for every request, and handlers' futures must be `Send`.
    #[test]
    fn the_limiter_is_shared_and_its_charge_is_send() {
        fn shared<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let limiter = ClusterLimiter::local_only();
        shared(&limiter);
        send(limiter.charge(&one_limit(), Vec::new));
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_and_none_configured_is_local() {
        assert!(
            ClusterLimiter::connect("http://nowhere", "p:", CALL_TIMEOUT)
                .await
                .is_err()
        );
        let limiter = ClusterLimiter::local_only();
        assert!(!limiter.store_up());
        let locally = AtomicUsize::new(0);
        let request = [ClusterCharge {
            key: "k",
            rate: Rate::new(1, 60).unwrap(),
            cost: 1,
        }];
        limiter.charge(&request, || local_answer(&locally)).await;
        assert_eq!(locally.load(Ordering::Relaxed), 1);
    }
}
