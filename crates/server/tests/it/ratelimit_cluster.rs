//! Rate limits across nodes (SPEC §11.1 "Cluster"): with `[ratelimit] store` two nodes charge
//! one limit exactly; without it each node limits alone (what docs/configuration.md says N
//! nodes allow); and a Redis killed mid-run costs no request an error: the nodes fall back to
//! their own limits at once and return to Redis by themselves.
//!
//! The shared Redis (LATCHKEY_TEST_REDIS_URL, default 127.0.0.1:6379) is used under a prefix of
//! the test's own, deleted afterwards; the outage test starts and kills a Redis of its own.

use crate::harness::{each_backend_with, eventually, random_suffix, TestServer};
use latchkey_core::Secret;
use latchkey_engine::redis_limits::CALL_TIMEOUT;
use latchkey_server::config::RatelimitStore;
use latchkey_server::Config;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn shared_redis() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Deletes every key under `prefix` when dropped (also when the test fails).
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("latchkey-test:{}:", random_suffix()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(shared_redis()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// `[ratelimit] store` at `url`. `timeout` is `[ratelimit] timeout_ms`: the exactness tests give
/// Redis seconds, so that a CPU starved by the other tests of the run (two nodes and 200
/// requests in one process) is not taken for an outage, which would send a node to its own
/// limits and let the limit pass more than its count, as documented.
fn with_store(url: String, prefix: String, timeout: Duration) -> impl Fn(&mut Config) {
    move |c: &mut Config| {
        c.ratelimit = Some(RatelimitStore {
            url: Secret::new(url.clone()),
            prefix: prefix.clone(),
            timeout,
        })
    }
}

async fn metered_key(srv: &TestServer, limit: u32) -> String {
    let ws = srv.workspace_of(&srv.admin_key).await;
    let key = srv
        .key_for(
            &ws,
            &srv.admin_user_id,
            json!({"ratelimits": [{"name": "shared", "limit": limit, "window_seconds": 3600}]}),
        )
        .await;
    key["key"].as_str().unwrap().to_owned()
}

/// `n` concurrent verifications of `key`, alternating between `nodes`: how many were VALID
/// (every other answer must be RATE_LIMITED).
async fn valid_of(nodes: &[Arc<TestServer>], key: &str, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (node, key) = (nodes[i % nodes.len()].clone(), key.to_owned());
            tokio::spawn(async move { node.verify(json!({"key": key})).await["code"].clone() })
        })
        .collect();
    let mut valid = 0;
    for t in tasks {
        match t.await.unwrap().as_str() {
            Some("VALID") => valid += 1,
            Some("RATE_LIMITED") => {}
            other => panic!("unexpected code {other:?}"),
        }
    }
    valid
}

#[tokio::test]
async fn two_nodes_on_one_redis_pass_exactly_the_limit() {
    let prefix = Prefix::new();
    each_backend_with(
        with_store(shared_redis(), prefix.0.clone(), Duration::from_secs(5)),
        |srv| async move {
            let key = metered_key(&srv, 100).await;
            let other = srv.another_node().await;
            let nodes = [Arc::new(srv), Arc::new(other)];
            assert_eq!(valid_of(&nodes, &key, 200).await, 100);
            // Both nodes see the limit spent.
            for node in &nodes {
                assert_eq!(
                    node.verify(json!({"key": key})).await["code"],
                    "RATE_LIMITED"
                );
            }
        },
    )
    .await;
}

/// Credits with `[ratelimit] store` set: Redis keeps the limit, the database keeps the balance
/// (docs/limits.md), and on two nodes both stay exact together. Of 200 concurrent requests
/// the limit of 100 passes 100, and of those the 50 credits pay for 50: never more, never one
/// charged for a request the limit refused (credits are charged last).
#[tokio::test]
async fn two_nodes_on_one_redis_spend_exactly_the_credits() {
    let prefix = Prefix::new();
    each_backend_with(
        with_store(shared_redis(), prefix.0.clone(), Duration::from_secs(5)),
        |srv| async move {
            let ws = srv.workspace_of(&srv.admin_key).await;
            let created = srv
                .key_for(
                    &ws,
                    &srv.admin_user_id,
                    json!({"credits": {"remaining": 50},
                           "ratelimits": [{"name": "shared", "limit": 100, "window_seconds": 3600}]}),
                )
                .await;
            let (key, id) = (
                created["key"].as_str().unwrap().to_owned(),
                created["id"].as_str().unwrap().to_owned(),
            );
            let other = srv.another_node().await;
            let nodes = [Arc::new(srv), Arc::new(other)];
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let (node, key) = (nodes[i % 2].clone(), key.clone());
                    tokio::spawn(async move { node.verify(json!({"key": key})).await["code"].clone() })
                })
                .collect();
            let mut codes = std::collections::BTreeMap::<String, usize>::new();
            for t in tasks {
                let code = t.await.unwrap().as_str().unwrap_or("(none)").to_owned();
                *codes.entry(code).or_default() += 1;
            }
            let expected: std::collections::BTreeMap<String, usize> = [
                ("VALID".to_owned(), 50),
                ("USAGE_EXCEEDED".to_owned(), 50),
                ("RATE_LIMITED".to_owned(), 100),
            ]
            .into();
            assert_eq!(codes, expected);
            for node in &nodes {
                let shown = node
                    .get(&format!("/v1/keys/{id}"), &node.admin_key)
                    .await
                    .expect(200);
                assert_eq!(shown["credits"]["remaining"], 0, "{shown}");
            }
        },
    )
    .await;
}

#[tokio::test]
async fn without_a_store_each_node_limits_alone() {
    each_backend_with(
        |_| {},
        |srv| async move {
            let key = metered_key(&srv, 50).await;
            let other = srv.another_node().await;
            let nodes = [Arc::new(srv), Arc::new(other)];
            // What docs/configuration.md states: N nodes allow up to N times the limit.
            assert_eq!(valid_of(&nodes, &key, 200).await, 100);
        },
    )
    .await;
}

/// A Redis of the test's own, on a port of its own, that can be killed and started again.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self { port, child: None };
        r.spawn();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(
            std::env::var("LATCHKEY_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
        )
        .args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (Debian's redis-server package)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A metric of `srv`'s `/metrics`. The recorder is the test process's, shared by every node it
/// runs: read counters that only this test moves, or gauges only before anything else can.
async fn metric(srv: &TestServer, name: &str) -> Option<f64> {
    let text = srv
        .http
        .get(format!("{}/metrics", srv.url))
        .header("authorization", format!("Bearer {}", srv.admin_key))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// Requests sent without a pause by `workers` tasks to both nodes until stopped: how many
/// were answered, and every status that was not a success (with how often).
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<u16>>>,
}

impl Load {
    fn start(nodes: &[Arc<TestServer>; 2], key: &str, workers: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..workers)
            .map(|w| {
                let (node, key) = (nodes[w % 2].clone(), key.to_owned());
                let (stop, answered) = (stop.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut failures = vec![];
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = node
                            .request(reqwest::Method::GET, "/v1/me")
                            .bearer_auth(&key)
                            .send()
                            .await
                            .unwrap();
                        if !r.status().is_success() {
                            failures.push(r.status().as_u16());
                        }
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    failures
                })
            })
            .collect();
        Self {
            stop,
            answered,
            tasks,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `n` more requests were answered than now.
    async fn runs_on(&self, n: usize, what: &str) {
        let target = self.answered() + n;
        eventually(what, Duration::from_secs(15), || async {
            self.answered() >= target
        })
        .await;
    }

    /// Stops the load: every status that was not a success.
    async fn stop(self) -> Vec<u16> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut failures = vec![];
        for t in self.tasks {
            failures.extend(t.await.unwrap());
        }
        failures
    }
}

#[tokio::test]
async fn a_redis_killed_mid_run_costs_no_request_and_the_nodes_come_back_to_it() {
    for backend in crate::harness::backends() {
        let mut redis = OwnRedis::start();
        let srv = TestServer::start_with(
            &backend,
            with_store(redis.url(), "lk:".into(), CALL_TIMEOUT),
        )
        .await;
        let other = srv.another_node().await;
        let nodes = [Arc::new(srv), Arc::new(other)];
        let roomy = metered_key(&nodes[0], 1_000_000).await;
        assert_eq!(
            metric(&nodes[0], "latchkey_ratelimit_store_up").await,
            Some(1.0)
        );
        let fallbacks = || async {
            metric(&nodes[0], "latchkey_ratelimit_fallbacks_total")
                .await
                .unwrap_or(0.0)
        };
        let before = fallbacks().await;

        // Four clients keep both nodes busy through the kill and the restart.
        let load = Load::start(&nodes, &roomy, 4);
        load.runs_on(40, "the load runs on Redis").await;
        redis.kill_9();
        load.runs_on(40, "the load runs on while Redis is gone")
            .await;
        // Every request still answers, and at once (each waits at most the store's call
        // timeout), limited locally.
        for i in 0..20 {
            let r = nodes[i % 2]
                .request(reqwest::Method::GET, "/v1/me")
                .bearer_auth(&roomy)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            assert!(
                r.headers().contains_key("ratelimit"),
                "still limited, locally"
            );
        }
        assert!(
            fallbacks().await >= before + 20.0,
            "each request while Redis was gone was limited locally, and counted"
        );

        // Back: the nodes find it by themselves (one request a second probes it), each on its
        // own schedule; once both charge Redis, a limit is exact again (while one still limits
        // alone, a fresh limit of 10 lets more than 10 through).
        redis.spawn();
        eventually(
            "both nodes charge Redis again",
            Duration::from_secs(15),
            || {
                let nodes = nodes.clone();
                async move {
                    let exact = metered_key(&nodes[0], 10).await;
                    let valid = valid_of(&nodes, &exact, 40).await;
                    assert!(valid >= 10, "never fewer than the limit: {valid}");
                    valid == 10
                }
            },
        )
        .await;
        load.runs_on(40, "the load runs on Redis again").await;
        let served = load.answered();
        let failures = load.stop().await;
        assert_eq!(
            failures,
            Vec::<u16>::new(),
            "not one of {served} requests failed"
        );
    }
}

/// Calls of each command `redis` has served (`INFO commandstats`), the INFO itself left out.
fn commands_served(redis: &OwnRedis) -> std::collections::BTreeMap<String, u64> {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

/// SPEC §11.1 "Cluster": one round trip per verification for all its limits. A key with a
/// limit of its own, owned by a member with one, verified 30 times on the verify API and 30
/// times as the API's own credential: Redis serves exactly one script call for each (its two
/// limits charged inside it), and nothing else; a key without limits costs no call. Counted on a Redis of the test's own,
/// which nothing else talks to.
#[tokio::test]
async fn all_of_a_verifications_limits_are_one_redis_call() {
    for backend in crate::harness::backends() {
        let redis = OwnRedis::start();
        let srv = TestServer::start_with(
            &backend,
            with_store(redis.url(), "lk:".into(), Duration::from_secs(5)),
        )
        .await;
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, _) = srv.member_with_key(&ws, "developer").await;
        srv.put(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &srv.admin_key,
            json!({"role": "developer",
                   "ratelimits": [{"name": "member", "limit": 1000, "window_seconds": 3600}]}),
        )
        .await
        .expect(200);
        let limited = srv
            .key_for(
                &ws,
                &user,
                json!({"ratelimits": [{"name": "key", "limit": 1000, "window_seconds": 3600}]}),
            )
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let unlimited = srv.key_for(&ws, &srv.admin_user_id, json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        // The first charge may load the script (NOSCRIPT, then SCRIPT LOAD): not counted.
        let first = srv.verify(json!({"key": limited})).await;
        assert_eq!(first["code"], "VALID");
        assert_eq!(first["ratelimits"].as_array().unwrap().len(), 2, "{first}");
        let before = commands_served(&redis);

        for _ in 0..30 {
            assert_eq!(srv.verify(json!({"key": limited})).await["code"], "VALID");
            srv.get("/v1/me", &limited).await.expect(200);
            assert_eq!(srv.verify(json!({"key": unlimited})).await["code"], "VALID");
        }

        let after = commands_served(&redis);
        let moved: std::collections::BTreeMap<&str, u64> = after
            .iter()
            .map(|(name, calls)| {
                (
                    name.as_str(),
                    calls - before.get(name).copied().unwrap_or(0),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        // INFO counts the commands the script runs inside Redis too: its TIME, and a GET and
        // a SET per limit. What came over the wire is the EVALSHA alone.
        assert_eq!(
            moved,
            [("evalsha", 60), ("time", 60), ("get", 120), ("set", 120)].into(),
            "one call per verification with limits, none without ({})",
            backend.name()
        );
        srv.stop().await;
    }
}
