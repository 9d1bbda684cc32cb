//! Measures how fast a change made on one node changes the verification answer on the others.
//!
//! Against already-running nodes that share one PostgreSQL database:
//!
//! ```sh
//! cargo run --release -p latchkey-server --example propagation -- \
//!   --nodes http://127.0.0.1:9101,http://127.0.0.1:9102,http://127.0.0.1:9103 \
//!   --admin-key sk_live_... --changes 210
//! ```
//!
//! Setup goes through the first node: a workspace, and per change a user who is a `developer`
//! member with a key. Change `i` is, round-robin, a key revocation, a role change (`developer` →
//! `viewer`, so `documents:write` is lost) or a membership removal. Before it, every other node
//! verifies the affected key so that its cache holds the old answer (`VALID`); the change is made on
//! the first node (t0 = its 2xx); then every other node is polled with `POST /v1/verify`,
//! concurrently and without pause, until it answers the new code. The time from t0 to that answer
//! is one sample; a wait is bounded at 10 s and counts as a failure.

use anyhow::{bail, Context};
use clap::Parser;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PERMISSION: &str = "documents:write";
const WAIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Cross-node propagation of revocations, role changes and member removals")]
struct Args {
    /// Node base URLs, comma-separated; changes are made on the first, observed on the others.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// An admin API key (the one `latchkey init` prints).
    #[arg(long, env = "LATCHKEY_API_KEY")]
    admin_key: String,
    /// How many changes to make (round-robin over the three kinds).
    #[arg(long, default_value_t = 210)]
    changes: usize,
    /// Also write every sample as CSV (`change,kind,node,ms`) to this file.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Revoke,
    Role,
    Remove,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Revoke, Kind::Role, Kind::Remove];

    fn name(self) -> &'static str {
        match self {
            Kind::Revoke => "revoke key",
            Kind::Role => "lower role",
            Kind::Remove => "remove member",
        }
    }

    /// The verify code once the change has reached a node.
    fn expected(self) -> &'static str {
        match self {
            Kind::Revoke => "REVOKED",
            Kind::Role => "INSUFFICIENT_PERMISSIONS",
            Kind::Remove => "FORBIDDEN",
        }
    }
}

/// One change's subject: a developer member and their key.
struct Subject {
    user_id: String,
    key_id: String,
    key: String,
}

struct Api {
    http: Client,
    admin_key: String,
}

impl Api {
    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.admin_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        if status == StatusCode::NO_CONTENT || text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn verify(&self, node: &str, key: &str) -> anyhow::Result<String> {
        let body = json!({"key": key, "permissions": [PERMISSION]});
        let v = self
            .call(Method::POST, &format!("{node}/v1/verify"), Some(body))
            .await?;
        Ok(v["code"].as_str().unwrap_or("?").to_string())
    }

    /// Polls `node` until it answers `expected`; the time since `t0`, or an error after 10 s.
    async fn wait_for(
        &self,
        node: &str,
        key: &str,
        expected: &str,
        t0: Instant,
    ) -> anyhow::Result<Duration> {
        let mut last = String::new();
        loop {
            let code = self.verify(node, key).await?;
            let seen = t0.elapsed();
            if code == expected {
                return Ok(seen);
            }
            if seen > WAIT_LIMIT {
                bail!("{node} still answers {code} after {seen:?} (expected {expected})");
            }
            if code != "VALID" && code != last {
                eprintln!("note: {node} answered {code} while waiting for {expected}");
            }
            last = code;
        }
    }
}

fn str_field(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no `{field}` in {v}"))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(label: &str, samples: &mut [f64], failures: usize) {
    samples.sort_by(f64::total_cmp);
    println!(
        "{label:<14} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9}",
        samples.len(),
        percentile(samples, 50.0),
        percentile(samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN),
        failures
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nodes: Vec<String> = args
        .nodes
        .iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    if nodes.len() < 2 {
        bail!("need at least two nodes: changes go to the first, the others are observed");
    }
    let (writer, observers) = (&nodes[0], &nodes[1..]);
    let api = Arc::new(Api {
        http: Client::builder().timeout(WAIT_LIMIT).build()?,
        admin_key: args.admin_key,
    });
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();

    // Setup, all through the first node.
    let ws = api
        .call(
            Method::POST,
            &format!("{writer}/v1/workspaces"),
            Some(json!({"name": format!("propagation {run}")})),
        )
        .await?;
    let ws = str_field(&ws, "id")?;
    let mut subjects = Vec::with_capacity(args.changes);
    for i in 0..args.changes {
        let user = api
            .call(
                Method::POST,
                &format!("{writer}/v1/users"),
                Some(json!({"email": format!("prop-{run}-{i}@prop.test"), "name": format!("Prop {i}")})),
            )
            .await?;
        let user_id = str_field(&user, "id")?;
        api.call(
            Method::PUT,
            &format!("{writer}/v1/workspaces/{ws}/members/{user_id}"),
            Some(json!({"role": "developer"})),
        )
        .await?;
        let key = api
            .call(
                Method::POST,
                &format!("{writer}/v1/keys"),
                Some(json!({"name": format!("prop {i}"), "workspace_id": ws, "owner_id": user_id, "environment": "test"})),
            )
            .await?;
        subjects.push(Subject {
            user_id,
            key_id: str_field(&key, "id")?,
            key: str_field(&key, "key")?,
        });
    }
    eprintln!(
        "setup: workspace {ws}, {} members with keys; {} changes on {writer}, observed on {}",
        subjects.len(),
        args.changes,
        observers.join(", ")
    );

    // (kind, milliseconds) per (change, observer) pair, and failures per kind.
    let mut samples: Vec<(Kind, f64)> = Vec::new();
    let mut csv = String::from("change,kind,node,ms\n");
    let mut failures: Vec<(Kind, String)> = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let kind = Kind::ALL[i % 3];
        // Warm the observers: their caches now hold the old answer.
        for node in observers {
            let code = api.verify(node, &s.key).await?;
            if code != "VALID" {
                bail!("change {i}: {node} answers {code} before the change (expected VALID)");
            }
        }
        let (method, url, body) = match kind {
            Kind::Revoke => (
                Method::DELETE,
                format!("{writer}/v1/keys/{}", s.key_id),
                None,
            ),
            Kind::Role => (
                Method::PUT,
                format!("{writer}/v1/workspaces/{ws}/members/{}", s.user_id),
                Some(json!({"role": "viewer"})),
            ),
            Kind::Remove => (
                Method::DELETE,
                format!("{writer}/v1/workspaces/{ws}/members/{}", s.user_id),
                None,
            ),
        };
        api.call(method, &url, body).await?;
        let t0 = Instant::now();
        // Poll every observer concurrently, each in its own task.
        let waits: Vec<_> = observers
            .iter()
            .map(|node| {
                let (api, node, key) = (api.clone(), node.clone(), s.key.clone());
                tokio::spawn(async move { api.wait_for(&node, &key, kind.expected(), t0).await })
            })
            .collect();
        let mut results = Vec::new();
        for w in waits {
            results.push(w.await?);
        }
        for (node, r) in observers.iter().zip(results) {
            match r {
                Ok(d) => {
                    let ms = d.as_secs_f64() * 1000.0;
                    csv += &format!("{i},{},{node},{ms:.3}\n", kind.name());
                    samples.push((kind, ms));
                }
                Err(e) => {
                    eprintln!("change {i} ({}): {e:#}", kind.name());
                    failures.push((kind, e.to_string()));
                }
            }
        }
    }

    if let Some(path) = &args.csv {
        std::fs::write(path, csv)?;
    }
    println!();
    println!(
        "{:<14} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "kind", "n", "p50 ms", "p99 ms", "max ms", "failures"
    );
    for kind in Kind::ALL {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, ms)| *ms)
            .collect();
        let f = failures.iter().filter(|(k, _)| *k == kind).count();
        row(kind.name(), &mut v, f);
    }
    let mut all: Vec<f64> = samples.iter().map(|(_, ms)| *ms).collect();
    row("all", &mut all, failures.len());
    println!(
        "propagation p50={:.2} ms p99={:.2} ms n={} failures={}",
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all.len(),
        failures.len()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
