//! `latchkey gateway` (SPEC §10.4): the real binary in front of the echo upstream, verifying
//! embedded (on the test server's database and secret) and remote (at the test server, with an
//! instance verifier's key), on each backend. Each gateway process is started once and runs
//! several scenarios; the upstream counts its requests, so a refused request is seen never to
//! reach it.

use crate::cli::{private_ca, private_ca_for};
use crate::harness::{each_backend, eventually, random_suffix, Backend, TempDir, TestServer};
use crate::upstream::{echoed, echoed_headers, pattern, Upstream};
use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Convergence, not speed: generous on purpose (the figures go to stderr, `--nocapture`).
const CONVERGES: Duration = Duration::from_secs(10);

const ROUTES: [&str; 5] = [
    "GET /documents/{id} document:{id}:read",
    "POST /documents documents:write",
    "GET /public public",
    "GET /kept/{id} document:{id}:read keep_credentials",
    "GET /ws document:doc_1:read",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Embedded,
    Remote,
}

/// A `latchkey gateway` process; killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    stderr: PathBuf,
    /// The credentials it was given: never to be seen in its log.
    secrets: Vec<String>,
    _dir: TempDir,
}

impl GatewayProcess {
    /// A gateway on `127.0.0.1:0` in front of `upstream`, verifying against `srv` in `mode`.
    /// `upstream: None` leaves it to the configuration file among `extra`.
    async fn start(srv: &TestServer, mode: Mode, upstream: Option<&str>, extra: &[String]) -> Self {
        let mut args: Vec<String> = vec![];
        let mut envs = vec![];
        match mode {
            Mode::Embedded => {
                let (db, secret) = srv.database_and_secret();
                args.extend([
                    "--database".into(),
                    db,
                    "--change-poll-ms".into(),
                    "100".into(),
                ]);
                envs.push(("LATCHKEY_SECRET".to_owned(), secret));
            }
            Mode::Remote => {
                let key = srv.instance_verifier_key().await;
                args.extend([
                    "--latchkey-url".into(),
                    srv.url.clone(),
                    "--api-key".into(),
                    key,
                ]);
            }
        }
        if let Some(upstream) = upstream {
            args.extend(["--upstream".into(), upstream.to_owned()]);
        }
        args.extend(extra.iter().cloned());
        Self::spawn(args, envs).await
    }

    async fn spawn(args: Vec<String>, envs: Vec<(String, String)>) -> Self {
        let mut secrets: Vec<String> = envs.iter().map(|(_, v)| v.clone()).collect();
        if let Some(at) = args.iter().position(|a| a == "--api-key") {
            secrets.push(args[at + 1].clone());
        }
        let dir = TempDir::new();
        let stderr = dir.0.join("gateway.log");
        // A clean environment and a directory of its own: no LATCHKEY_* of the test run, and
        // no ./latchkey.toml, reaches it.
        let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("gateway")
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .env_clear()
            .envs(envs)
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn latchkey gateway");
        let mut gw = Self {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            stderr,
            secrets,
            _dir: dir,
        };
        gw.addr = gw.listening().await;
        gw
    }

    /// The address its start-up line names.
    async fn listening(&mut self) -> SocketAddr {
        const MARK: &str = "gateway listening on http://";
        for _ in 0..400 {
            let log = self.log();
            if let Some(at) = log.find(MARK) {
                let rest = &log[at + MARK.len()..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                return rest[..end].parse().expect("an address");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the gateway exited ({status}): {log}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway did not start: {}", self.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Neither its own credentials nor any of `more` (keys its clients sent) is in its log.
    #[track_caller]
    fn logged_no_secret(&self, more: &[&str]) {
        let log = self.log();
        for s in self
            .secrets
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
        {
            assert!(
                !log.contains(s),
                "a credential is in the gateway's log: {log}"
            );
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route_flags(routes: &[&str]) -> Vec<String> {
    routes
        .iter()
        .flat_map(|r| ["--route".to_owned(), (*r).to_owned()])
        .collect()
}

/// A member of a new workspace who holds only `document:doc_1:read` (by a grant); returns
/// (workspace, user, key, key id).
async fn reader(srv: &TestServer) -> (String, String, String, String) {
    let ws = srv.workspace("Docs").await;
    srv.put(
        &format!("/v1/workspaces/{ws}/roles/member"),
        &srv.admin_key,
        json!({"permissions": []}),
    )
    .await
    .expect(200);
    let user = srv.user("reader").await;
    srv.set_member(&ws, &user, "member").await;
    srv.post(
        &format!("/v1/workspaces/{ws}/grants"),
        &srv.admin_key,
        json!({"user_id": user, "permission": "document:doc_1:read"}),
    )
    .await
    .expect(201);
    let key = srv.key_for(&ws, &user, json!({"name": "reader key"})).await;
    (
        ws,
        user,
        key["key"].as_str().unwrap().to_owned(),
        key["id"].as_str().unwrap().to_owned(),
    )
}

#[track_caller]
fn assert_problem(resp: &reqwest::Response, status: u16) {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "a denial is problem+json"
    );
}

#[tokio::test]
async fn the_gateway_lets_through_exactly_what_the_route_table_allows_in_both_modes() {
    each_backend(|srv| async move {
        let up = Upstream::start().await;
        let mut remote = None;
        for mode in [Mode::Embedded, Mode::Remote] {
            // A base path on the upstream: every request is moved under it.
            let gw = GatewayProcess::start(
                &srv,
                mode,
                Some(&format!("{}/api", up.url)),
                &route_flags(&ROUTES),
            )
            .await;
            let (ws, user, key, key_id) = reader(&srv).await;
            identity_and_denials(&srv, &up, &gw, mode, &user, &key, &key_id).await;
            cors(&srv, &up, &gw, mode, &ws, &user).await;
            websocket(&gw, &key, &key_id).await;
            limits(&srv, &up, &gw, mode, &ws, &user).await;
            revocation(&srv, &gw, mode, &key, &key_id).await;
            gw.logged_no_secret(&[&key]);
            if mode == Mode::Remote {
                remote = Some(gw);
            }
        }
        // The Latchkey server gone: a key the remote gateway never saw is 503, never 401.
        let remote = remote.unwrap();
        let (_, _, unseen, _) = reader(&srv).await;
        let hits = up.hits();
        srv.stop().await;
        let r = reqwest::Client::new()
            .get(remote.url("/documents/doc_1"))
            .header("x-api-key", &unseen)
            .send()
            .await
            .unwrap();
        assert_problem(&r, 503);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(up.hits(), hits);
    })
    .await;
}

async fn identity_and_denials(
    srv: &TestServer,
    up: &Upstream,
    gw: &GatewayProcess,
    mode: Mode,
    user: &str,
    key: &str,
    key_id: &str,
) {
    let http = reqwest::Client::new();
    // An answer can be a moment behind the setup's writes (remote: the change stream).
    eventually(
        &format!("{mode:?}: the reader is let through"),
        CONVERGES,
        || async {
            http.get(gw.url("/documents/doc_1"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                == 200
        },
    )
    .await;
    let a: Value = http
        .get(gw.url("/documents/doc_1?q=1"))
        .bearer_auth(key)
        .header("x-latchkey-user-id", "usr_forged")
        .header("X-Latchkey-Permissions", "admin:*")
        .header("x-latchkey-anything", "x")
        .header("x-forwarded-for", "198.51.100.7")
        .header("connection", "x-hop-only")
        .header("x-hop-only", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["uri"], "/api/documents/doc_1?q=1", "{mode:?}: {a}");
    let ws = srv.workspace_of(key).await;
    for (name, value) in [
        ("x-latchkey-user-id", user),
        ("x-latchkey-workspace-id", ws.as_str()),
        ("x-latchkey-key-id", key_id),
        ("x-latchkey-token-id", "-"),
        ("x-latchkey-key-type", "secret"),
        ("x-latchkey-environment", "live"),
        ("x-latchkey-permissions", "document:doc_1:read"),
        ("x-latchkey-name", "reader%20key"),
    ] {
        assert_eq!(echoed(&a, name), Some(value), "{mode:?}: {name}");
    }
    let names: Vec<&String> = echoed_headers(&a).keys().collect();
    for gone in [
        "authorization",
        "x-api-key",
        "x-latchkey-anything",
        "x-hop-only",
    ] {
        assert!(
            !echoed_headers(&a).contains_key(gone),
            "{mode:?}: {gone} reached the upstream: {names:?}"
        );
    }
    // The test client is on loopback, a trusted proxy by default: its chain is kept.
    assert_eq!(
        echoed(&a, "x-forwarded-for"),
        Some("198.51.100.7, 127.0.0.1")
    );
    assert_eq!(echoed(&a, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        echoed(&a, "x-forwarded-host"),
        Some(gw.addr.to_string().as_str())
    );
    assert_eq!(
        echoed(&a, "host"),
        Some(up.url.trim_start_matches("http://")),
        "the upstream is asked for its own host"
    );

    // keep_credentials: the credential goes on, beside the identity.
    let a: Value = http
        .get(gw.url("/kept/doc_1"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed(&a, "x-api-key"), Some(key));
    assert_eq!(echoed(&a, "x-latchkey-key-id"), Some(key_id));

    // A public route: no credential asked, the identity headers all `-`, nothing forged.
    let a: Value = http
        .get(gw.url("/public"))
        .header("x-latchkey-user-id", "usr_forged")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed(&a, "x-latchkey-user-id"), Some("-"));
    assert_eq!(echoed(&a, "x-latchkey-permissions"), Some("-"));

    // Refusals never reach the upstream.
    let hits = up.hits();
    for (method, path) in [("GET", "/documents/doc_2"), ("POST", "/documents")] {
        let r = http
            .request(method.parse().unwrap(), gw.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_problem(&r, 403);
        assert_eq!(r.headers()["x-latchkey-code"], "INSUFFICIENT_PERMISSIONS");
    }
    let r = http.get(gw.url("/documents/doc_1")).send().await.unwrap();
    assert_problem(&r, 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let forged_only = http
        .get(gw.url("/documents/doc_1"))
        .header("x-latchkey-user-id", user)
        .send()
        .await
        .unwrap();
    assert_problem(&forged_only, 401);
    let unknown = latchkey_core::ApiKey::generate(
        latchkey_core::KeyType::Secret,
        latchkey_core::Environment::Live,
    );
    let r = http
        .get(gw.url("/documents/doc_1"))
        .bearer_auth(unknown.secret().expose())
        .send()
        .await
        .unwrap();
    assert_problem(&r, 401);
    assert_eq!(r.headers()["x-latchkey-code"], "NOT_FOUND");
    // A path cannot inject a permission, nor reach another route by dot segments.
    for path in [
        "/documents/a:b",
        "/documents/%2A",
        "/documents/..%2Fx",
        "/documents/doc_1%3Aread",
        "/nowhere",
    ] {
        let r = http
            .get(gw.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_problem(&r, 404);
        assert_eq!(r.headers()["x-latchkey-code"], "NOT_FOUND", "{path}");
    }
    let r = http
        .get(gw.url(&format!("/documents/doc_1?api_key={key}")))
        .send()
        .await
        .unwrap();
    assert_problem(&r, 400);
    assert_eq!(
        up.hits(),
        hits,
        "{mode:?}: a refused request reached the upstream"
    );
}

async fn cors(
    srv: &TestServer,
    up: &Upstream,
    gw: &GatewayProcess,
    mode: Mode,
    ws: &str,
    user: &str,
) {
    let http = reqwest::Client::new();
    srv.patch(
        &format!("/v1/workspaces/{ws}"),
        &srv.admin_key,
        json!({"publishable_permissions": ["document:*:read"]}),
    )
    .await
    .expect(200);
    let app = "https://app-".to_owned() + &random_suffix() + ".example";
    let evil = "https://evil.example";
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, gw.url("/documents/doc_1"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .send()
    };
    if mode == Mode::Embedded {
        // Before any key names the origin: refused (and the list is now cached, so what
        // follows also shows that a new key reaches it through the change log).
        let r = preflight(&app).await.unwrap();
        assert_problem(&r, 403);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
    }
    let pk = srv
        .key_for(
            ws,
            user,
            json!({"type": "publishable", "allowed_origins": [app]}),
        )
        .await;
    let (pk, pk_id) = (
        pk["key"].as_str().unwrap().to_owned(),
        pk["id"].as_str().unwrap().to_owned(),
    );
    let hits = up.hits();
    eventually(
        &format!("{mode:?}: the preflight is allowed"),
        CONVERGES,
        || async { preflight(&app).await.unwrap().status() == 204 },
    )
    .await;
    let r = preflight(&app).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], app.as_str());
    assert_eq!(r.headers()["access-control-allow-methods"], "GET");
    assert_eq!(r.headers()["access-control-allow-headers"], "x-api-key");
    let r = preflight(evil).await.unwrap();
    match mode {
        Mode::Embedded => {
            assert_problem(&r, 403);
            assert!(!r.headers().contains_key("access-control-allow-origin"));
        }
        // Remote: no server endpoint can say; the actual request is checked instead
        // (docs/api-decisions.md).
        Mode::Remote => assert_eq!(r.status(), 204),
    }
    assert_eq!(up.hits(), hits, "preflights are answered by the gateway");
    // …except on a public route, where no key's origins can decide: the API answers.
    let r = http
        .request(reqwest::Method::OPTIONS, gw.url("/public"))
        .header("origin", evil)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "OPTIONS", "{echo}");
    assert_eq!(echoed(&echo, "origin"), Some(evil));
    assert_eq!(echoed(&echo, "x-latchkey-user-id"), Some("-"));
    assert_eq!(up.hits(), hits + 1);

    // The actual request: readable by its origin when its key allows the origin.
    let actual = |origin: &str| {
        http.get(gw.url("/documents/doc_1"))
            .header("x-api-key", &pk)
            .header("origin", origin)
            .send()
    };
    eventually(
        &format!("{mode:?}: the publishable key works"),
        CONVERGES,
        || async { actual(&app).await.unwrap().status() == 200 },
    )
    .await;
    let r = actual(&app).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], app.as_str());
    assert!(r.headers().get_all("vary").iter().any(|v| v == "Origin"));
    let r = actual(evil).await.unwrap();
    assert_problem(&r, 403);
    assert_eq!(r.headers()["x-latchkey-code"], "ORIGIN_NOT_ALLOWED");
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    if mode == Mode::Embedded {
        srv.delete(&format!("/v1/keys/{pk_id}"), &srv.admin_key)
            .await;
        eventually("a revoked key's origin closes", CONVERGES, || async {
            preflight(&app).await.unwrap().status() == 403
        })
        .await;
    }
}

/// An upgrade handshake through the gateway, then bytes both ways on the joined connection.
async fn websocket(gw: &GatewayProcess, key: &str, key_id: &str) {
    let handshake = |key: Option<&str>| {
        let credential = key.map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{credential}\r\n",
            gw.addr
        )
    };
    // HTTP/2 in clear is never tunnelled (its later requests would pass the Gate unseen): the
    // request goes on without its upgrade, and the upstream's /ws refuses that.
    let mut h2c = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let asked = handshake(Some(key))
        .replace("Upgrade: websocket", "Upgrade: h2c")
        .replace("Connection: Upgrade", "Connection: Upgrade, HTTP2-Settings");
    h2c.write_all(asked.as_bytes()).await.unwrap();
    let head = read_head(&mut h2c).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    let mut refused = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    refused.write_all(handshake(None).as_bytes()).await.unwrap();
    let head = read_head(&mut refused).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(handshake(Some(key)).as_bytes()).await.unwrap();
    let head = read_head(&mut s).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains(&format!("x-echo-key-id: {}", key_id.to_ascii_lowercase())),
        "the upgrade request carried the identity: {head}"
    );
    for message in [
        &b"ping through the gateway"[..],
        &[0u8, 255, 13, 10, 13, 10][..],
    ] {
        s.write_all(message).await.unwrap();
        let mut back = vec![0; message.len()];
        tokio::time::timeout(CONVERGES, s.read_exact(&mut back))
            .await
            .expect("the echo comes back")
            .unwrap();
        assert_eq!(back, message);
    }
}

async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    let mut head = vec![];
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(CONVERGES, s.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(
            n,
            1,
            "the connection closed: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// SPEC §11.1 at the gateway: a key's limit is charged on every request it lets through, and
/// the request over the limit is a 429 with `Retry-After` that never reaches the upstream. In
/// remote mode the server charges it (a metered answer is never served from the verifier's
/// cache); embedded, the gateway's own engine does.
async fn limits(
    srv: &TestServer,
    up: &Upstream,
    gw: &GatewayProcess,
    mode: Mode,
    ws: &str,
    user: &str,
) {
    let key = srv
        .key_for(
            ws,
            user,
            json!({"name": "metered", "ratelimits": [{"name": "gw", "limit": 2, "window_seconds": 3600}]}),
        )
        .await;
    let key = key["key"].as_str().unwrap();
    let http = reqwest::Client::new();
    let ask = || http.get(gw.url("/documents/doc_1")).bearer_auth(key).send();
    for left in ["1", "0"] {
        let r = ask().await.unwrap();
        assert_eq!(r.status(), 200, "{mode:?}");
        let fields = r.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(fields.contains(&format!("r={left}")), "{mode:?}: {fields}");
    }
    let hits = up.hits();
    let r = ask().await.unwrap();
    assert_problem(&r, 429);
    assert!(r.headers().contains_key("retry-after"), "{mode:?}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited", "{mode:?}: {body}");
    assert_eq!(
        up.hits(),
        hits,
        "{mode:?}: the refused request never reached the upstream"
    );
}

async fn revocation(srv: &TestServer, gw: &GatewayProcess, mode: Mode, key: &str, key_id: &str) {
    let http = reqwest::Client::new();
    let ask = || async {
        http.get(gw.url("/documents/doc_1"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..3 {
        assert_eq!(ask().await, 200, "cached before the revocation");
    }
    let revoked_at = Instant::now();
    srv.delete(&format!("/v1/keys/{key_id}"), &srv.admin_key)
        .await;
    eventually(&format!("{mode:?}: the revocation"), CONVERGES, || async {
        ask().await == 401
    })
    .await;
    // A figure, not a threshold (the bound is CONVERGES).
    eprintln!(
        "revocation reached the {mode:?} gateway on {} in {:?}",
        srv.backend_name(),
        revoked_at.elapsed()
    );
}

/// One HTTP/1.1 connection, for requests that must share it (keep-alive across a reload) or
/// stream a body the test makes as it goes.
type Sender = hyper::client::conn::http1::SendRequest<BoxBody<Bytes, Infallible>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

fn get(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
) -> hyper::Request<BoxBody<Bytes, Infallible>> {
    let mut b = hyper::Request::get(path).header("host", addr.to_string());
    if let Some(k) = key {
        b = b.header("x-api-key", k);
    }
    b.body(Empty::new().boxed()).unwrap()
}

/// 256 MiB each way: what the gateway's memory must not grow with.
const STREAMED: u64 = 256 * 1024 * 1024;
/// How much the gateway's peak resident memory may grow while both go through: a small
/// fraction of one body (measured: 16 to 23 MiB, hyper's buffers and the allocator's caches;
/// the debug binary starts at about 46 MiB).
const RSS_GROWTH_MIB: u64 = 48;

#[tokio::test]
async fn the_gateway_streams_times_out_reloads_and_drains() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let up = Upstream::start().await;
    let dir = TempDir::new();
    let config = dir.0.join("latchkey.toml");
    let upstream = up.url.clone();
    let table = move |document_permission: &str| {
        format!(
            "[gateway]\nupstream = \"{upstream}\"\nupstream_timeout = 2\n\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/documents/{{id}}\"\npermission = \"{document_permission}\"\n\n\
             [[gateway.routes]]\nmethod = \"POST\"\npath = \"/upload\"\npermission = \"document:doc_1:read\"\n\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/download\"\npermission = \"public\"\n\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/slow\"\npermission = \"public\"\n"
        )
    };
    std::fs::write(&config, table("document:{id}:read")).unwrap();
    let flags = ["--config".to_owned(), config.display().to_string()];
    // Upstream and timeout from `[gateway]` of the file.
    let gw = GatewayProcess::start(&srv, Mode::Embedded, None, &flags).await;
    // An upstream that is not there: a port bound and let go.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // --upstream wins over the file's.
    let down = GatewayProcess::start(&srv, Mode::Embedded, Some(&closed), &flags).await;
    let (_, _, key, _) = reader(&srv).await;
    let http = reqwest::Client::new();

    // Upstream down: 502; too slow: 504, after about the timeout.
    let r = http.get(down.url("/slow?ms=1")).send().await.unwrap();
    assert_problem(&r, 502);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_gateway");
    drop(down);
    let started = Instant::now();
    let r = http.get(gw.url("/slow?ms=4000")).send().await.unwrap();
    assert_problem(&r, 504);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "gateway_timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(3900),
        "504 after the 2 s timeout, not the upstream's 4 s: {waited:?}"
    );
    let r = http.get(gw.url("/slow?ms=100")).send().await.unwrap();
    assert_eq!(r.status(), 200, "within the timeout");

    http2(&gw, &key).await;
    streaming(&gw, &key).await;
    reload_keeps_connections(&gw, &config, &table, &key).await;
    drains_on_shutdown(gw, &up).await;
}

/// HTTP/2 by prior knowledge: decided and handed on alike (the upstream gets HTTP/1.1, and
/// `X-Forwarded-Host` from the `:authority`, as there is no `Host`).
async fn http2(gw: &GatewayProcess, key: &str) {
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let ask = |key: Option<&str>| {
        let mut b = hyper::Request::get(format!("http://{}/documents/doc_1", gw.addr));
        if let Some(k) = key {
            b = b.header("x-api-key", k);
        }
        b.body(Empty::<Bytes>::new()).unwrap()
    };
    let resp = h2.send_request(ask(Some(key))).await.unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        echoed(&echo, "x-latchkey-permissions"),
        Some("document:doc_1:read")
    );
    assert_eq!(
        echoed(&echo, "x-forwarded-host"),
        Some(gw.addr.to_string().as_str())
    );
    assert!(!echoed_headers(&echo).contains_key("x-api-key"));
    let resp = h2.send_request(ask(None)).await.unwrap();
    assert_eq!(resp.status(), 401);
}

async fn streaming(gw: &GatewayProcess, key: &str) {
    let started = Instant::now();
    let before = gw.peak_rss_kib();
    // Upload: made as it is sent, 1 MiB at a time, each chunk a different window of one buffer.
    const CHUNK: usize = 1024 * 1024;
    let buffer = Bytes::from((0..(CHUNK + 251) as u64).map(pattern).collect::<Vec<u8>>());
    let mut expected = Sha256::new();
    for i in 0..(STREAMED as usize / CHUNK) {
        expected.update(&buffer[i % 251..i % 251 + CHUNK]);
    }
    let expected = hex(&expected.finalize());
    let chunks = futures::stream::iter((0..STREAMED as usize / CHUNK).map(move |i| {
        Ok::<_, Infallible>(hyper::body::Frame::data(
            buffer.slice(i % 251..i % 251 + CHUNK),
        ))
    }));
    let mut conn = connect(gw.addr).await;
    let req = hyper::Request::post("/upload")
        .header("host", gw.addr.to_string())
        .header("x-api-key", key)
        .body(StreamBody::new(chunks).boxed())
        .unwrap();
    let resp = conn.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["bytes"], STREAMED);
    assert_eq!(
        answer["sha256"],
        expected.as_str(),
        "the upload arrives whole"
    );

    // Download: each byte checked against the pattern as it arrives, never held.
    let resp = conn
        .send_request(get(gw.addr, &format!("/download?bytes={STREAMED}"), None))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = 0u64;
    let mut mismatch = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            if mismatch.is_none() {
                mismatch = data
                    .iter()
                    .zip(received..)
                    .find(|(b, i)| **b != pattern(*i))
                    .map(|(_, i)| i);
            }
            received += data.len() as u64;
        }
    }
    assert_eq!(received, STREAMED);
    assert_eq!(mismatch, None, "the download arrives in order and intact");
    let peak = gw.peak_rss_kib();
    eprintln!(
        "streamed {} MiB each way through the gateway in {:?}; its peak RSS: {} MiB before, {} MiB after",
        STREAMED >> 20,
        started.elapsed(),
        before >> 10,
        peak >> 10
    );
    assert!(
        peak.saturating_sub(before) < RSS_GROWTH_MIB << 10,
        "the gateway's peak RSS grew from {} to {} MiB streaming {} MiB each way: it buffers",
        before >> 10,
        peak >> 10,
        STREAMED >> 20
    );
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SIGHUP swaps the route table; a keep-alive connection opened before goes on working, and
/// its next request is decided by the new table.
async fn reload_keeps_connections(
    gw: &GatewayProcess,
    config: &std::path::Path,
    table: &dyn Fn(&str) -> String,
    key: &str,
) {
    let mut conn = connect(gw.addr).await;
    let status = |conn: &mut Sender| {
        let req = get(gw.addr, "/documents/doc_1", Some(key));
        let sent = conn.send_request(req);
        async move {
            let resp = sent.await.expect("the kept-alive connection still works");
            let status = resp.status().as_u16();
            resp.into_body().collect().await.unwrap();
            status
        }
    };
    assert_eq!(status(&mut conn).await, 200);
    std::fs::write(config, table("documents:admin")).unwrap();
    gw.signal("HUP");
    let mut now = 0;
    for _ in 0..400 {
        now = status(&mut conn).await;
        if now == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        now, 403,
        "the reloaded table decides, on the same connection"
    );
    assert!(gw.log().contains("route table reloaded"), "{}", gw.log());
    // A table that does not parse keeps the one in use.
    std::fs::write(config, "[[gateway.routes]]\nmethod = \"GET\"\n").unwrap();
    gw.signal("HUP");
    eventually("the bad table is refused", CONVERGES, || async {
        gw.log().contains("does not parse")
    })
    .await;
    assert_eq!(status(&mut conn).await, 403);
}

/// SIGTERM: no new connection is accepted, the request in flight finishes, the process exits.
async fn drains_on_shutdown(mut gw: GatewayProcess, up: &Upstream) {
    let http = reqwest::Client::new();
    let hits = up.hits();
    let slow = tokio::spawn(http.get(gw.url("/slow?ms=1200")).send());
    eventually(
        "the slow request reaches the upstream",
        CONVERGES,
        || async { up.hits() > hits },
    )
    .await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "a draining gateway accepts no new connection"
    );
    let r = slow.await.unwrap().expect("the in-flight request finishes");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["slept_ms"], 1200);
    let exited = tokio::task::spawn_blocking(move || {
        let status = gw.child.wait().unwrap();
        (status, gw)
    });
    let (status, gw) = tokio::time::timeout(CONVERGES, exited)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}: {}", gw.log());
}

#[tokio::test]
async fn the_gateway_refuses_to_start_without_what_it_needs() {
    let empty = TempDir::new();
    // A database file but no secret: the gateway must not make one up.
    let no_secret = TempDir::new();
    std::fs::write(no_secret.0.join("latchkey.db"), b"").unwrap();
    let (empty_dir, no_secret_dir) = (
        empty.0.display().to_string(),
        no_secret.0.display().to_string(),
    );
    let upstream = "http://127.0.0.1:9";
    let remote = ["--latchkey-url", upstream, "--api-key", "sk_live_x"];
    let not_a_ca = empty.0.join("not-a-ca.pem");
    std::fs::write(&not_a_ca, "not a certificate").unwrap();
    let not_a_ca = not_a_ca.display().to_string();
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--upstream", upstream], "no address to listen on"),
        (vec!["--listen", "127.0.0.1:0"], "no upstream"),
        (
            [
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    "https://api.example",
                    "--upstream-cacert",
                    &not_a_ca,
                ][..],
                &remote,
            ]
            .concat(),
            "holds no PEM certificate",
        ),
        (
            [
                &["--listen", "0.0.0.0:0", "--upstream", upstream][..],
                &remote,
            ]
            .concat(),
            "refusing to serve plain HTTP",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--data-dir",
                &empty_dir,
            ],
            "no database at",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--data-dir",
                &no_secret_dir,
            ],
            "no server secret",
        ),
    ];
    for (args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("gateway")
            .args(&args)
            .env_clear()
            .current_dir(&empty.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("sk_live_x"), "{stderr}");
    }
}

/// An `https://` upstream whose certificate comes from a private CA. Trusted with
/// `--upstream-cacert`: the request goes through over HTTP/2 (ALPN) to the upstream's own
/// authority, an upgrade over HTTP/1.1, and the upstream sees the identity. Without that CA
/// (the system's roots only), or with a certificate for another name (its CA trusted, in a
/// bundle), the handshake fails: 502, the log says why, and no request reaches the upstream.
#[tokio::test]
async fn an_https_upstream_is_trusted_by_its_ca_and_its_host_name() {
    let started = Instant::now();
    let srv = TestServer::start(&Backend::Sqlite).await;
    let dir = TempDir::new();
    let (ca, cert, cert_key) = private_ca(&dir.0, "acme");
    let (other_ca, misnamed_cert, misnamed_key) =
        private_ca_for(&dir.0, "other", &["elsewhere.internal"]);
    let bundle = dir.0.join("bundle.pem");
    let both = [
        std::fs::read(&ca).unwrap(),
        std::fs::read(&other_ca).unwrap(),
    ]
    .concat();
    std::fs::write(&bundle, both).unwrap();
    let up = Upstream::start_tls(&cert, &cert_key).await;
    let misnamed = Upstream::start_tls(&misnamed_cert, &misnamed_key).await;
    let (ws, user, key, key_id) = reader(&srv).await;
    let with_ca = |file: &PathBuf| {
        [
            route_flags(&ROUTES),
            vec!["--upstream-cacert".into(), file.display().to_string()],
        ]
        .concat()
    };
    let (ca_flags, no_ca_flags, bundle_flags) =
        (with_ca(&ca), route_flags(&ROUTES), with_ca(&bundle));
    let (trusted, untrusted, wrong_name) = tokio::join!(
        GatewayProcess::start(&srv, Mode::Embedded, Some(&up.url), &ca_flags),
        GatewayProcess::start(&srv, Mode::Embedded, Some(&up.url), &no_ca_flags),
        GatewayProcess::start(&srv, Mode::Embedded, Some(&misnamed.url), &bundle_flags),
    );
    let http = reqwest::Client::new();

    let r = http
        .get(trusted.url("/documents/doc_1?q=1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", trusted.log());
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["version"], "HTTP/2.0", "ALPN chose HTTP/2: {a}");
    assert_eq!(
        a["uri"],
        format!("{}/documents/doc_1?q=1", up.url),
        ":authority is the upstream's own: {a}"
    );
    for (name, value) in [
        ("x-latchkey-user-id", user.as_str()),
        ("x-latchkey-workspace-id", ws.as_str()),
        ("x-latchkey-key-id", key_id.as_str()),
        ("x-latchkey-permissions", "document:doc_1:read"),
    ] {
        assert_eq!(echoed(&a, name), Some(value), "{name}: {a}");
    }
    assert!(!echoed_headers(&a).contains_key("authorization"), "{a}");
    websocket(&trusted, &key, &key_id).await;
    assert!(up.hits() >= 2);

    for (gw, upstream, why) in [
        (&untrusted, &up, "UnknownIssuer"),
        (
            &wrong_name,
            &misnamed,
            "certificate not valid for name \"localhost\"",
        ),
    ] {
        let hits = upstream.hits();
        let r = http
            .get(gw.url("/documents/doc_1"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_problem(&r, 502);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_gateway");
        assert_eq!(upstream.hits(), hits, "no request reached {}", upstream.url);
        eventually("the log says why", CONVERGES, || async {
            let log = gw.log();
            log.contains("the upstream's certificate is not trusted") && log.contains(why)
        })
        .await;
    }
    assert_eq!(misnamed.hits(), 0);
    for gw in [&trusted, &untrusted, &wrong_name] {
        gw.logged_no_secret(&[&key]);
    }
    eprintln!("https upstream scenarios: {:?}", started.elapsed());
}
