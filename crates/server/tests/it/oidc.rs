//! Single sign-on to the dashboard (SPEC §7, `[dashboard.oidc]`) against a real OpenID
//! provider: `tests/oidc/provider.js`, the certified `oidc-provider` package on Node.js, started
//! by each test on a loopback port with accounts whose claims the test chooses. A reqwest client
//! with a cookie store plays the browser, following every redirect by hand so a test can tamper
//! with the one back to Latchkey.
//!
//! The provider's packages must be installed: `LATCHKEY_TEST_OIDC_DIR` names the directory,
//! else this repository's `tests/oidc` is used once `npm ci --prefix tests/oidc` has run there.
//! As with the proxies (proxies.rs), a missing provider fails the test with how to install it;
//! `.ci/run` installs it.

use crate::harness::{each_backend_with, random_suffix, ServerProcess, TempDir, TestServer};
use latchkey_core::Secret;
use latchkey_server::config::OidcSettings;
use latchkey_server::Config;
use reqwest::{header, redirect, Client, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use url::Url;

const CLIENT_ID: &str = "latchkey-dashboard";
const CLIENT_SECRET: &str = "oidc-client-secret-that-never-reaches-a-log";
const PROVIDER_NAME: &str = "Test IdP";
const CALLBACK: &str = "/auth/oidc/callback";

/// `LATCHKEY_TEST_OIDC_DIR`, else the repository's `tests/oidc` with its packages installed.
fn provider_dir() -> PathBuf {
    const INSTALL: &str = "npm ci --prefix tests/oidc (Node.js 20 or later; .ci/run does it)";
    if let Some(p) = std::env::var_os("LATCHKEY_TEST_OIDC_DIR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.join("node_modules/oidc-provider").is_dir(),
            "LATCHKEY_TEST_OIDC_DIR={} has no node_modules/oidc-provider (run: {INSTALL})",
            p.display()
        );
        return p;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
    if repo.join("node_modules/oidc-provider").is_dir() {
        return repo;
    }
    panic!(
        "the OpenID provider of the single sign-on tests is not installed \
         (set LATCHKEY_TEST_OIDC_DIR, or: {INSTALL})"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A running `provider.js`.
struct OidcProvider {
    child: Child,
    url: String,
    dir: TempDir,
}

impl OidcProvider {
    /// On `port`, sending people back to `latchkey`'s callback; `accounts` as provider.js takes
    /// them; `mode` one of provider.js's.
    async fn start(port: u16, latchkey: &str, accounts: Value, mode: &str) -> Self {
        let code = provider_dir();
        let dir = TempDir::new();
        let child = Command::new("node")
            .arg(code.join("provider.js"))
            .current_dir(&code)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", format!("{latchkey}{CALLBACK}"))
            .env("OIDC_ACCOUNTS", accounts.to_string())
            .env("OIDC_MODE", mode)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.0.join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.0.join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting node (Node.js 20 or later is needed): {e}"));
        let mut p = Self {
            child,
            url: issuer(port),
            dir,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&mut self) {
        let http = Client::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the OpenID provider exited ({status}): {}", self.output());
            }
            let discovery = format!("{}/.well-known/openid-configuration", self.url);
            if http
                .get(&discovery)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the OpenID provider did not start: {}", self.output());
    }

    fn output(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.0.join(f)).unwrap_or_default();
        read("stdout") + &read("stderr")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Single sign-on with the provider on `port`.
fn with_oidc(port: u16, create_users: bool) -> impl Fn(&mut Config) {
    move |c: &mut Config| {
        c.dashboard.oidc = Some(OidcSettings {
            issuer: issuer(port),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            create_users,
            name: PROVIDER_NAME.into(),
        });
    }
}

/// A browser: cookies kept, redirects followed by hand.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// From `GET /auth/oidc` through the provider, signing in there as `account`, to the redirect
/// back to Latchkey's callback, which is returned unsent.
async fn to_callback(http: &Client, latchkey: &str, account: &str) -> Url {
    let mut at = Url::parse(&format!("{latchkey}/auth/oidc")).unwrap();
    for _ in 0..12 {
        let r = http.get(at.clone()).send().await.unwrap();
        let status = r.status();
        let Some(location) = r.headers().get(header::LOCATION).cloned() else {
            panic!("{at} answered {status}: {}", r.text().await.unwrap());
        };
        let mut to = at.join(location.to_str().unwrap()).unwrap();
        if to.as_str().starts_with(&format!("{latchkey}{CALLBACK}")) {
            return to;
        }
        if to.path().starts_with("/interaction/") {
            to.query_pairs_mut().append_pair("account", account);
        }
        at = to;
    }
    panic!("no redirect back to Latchkey");
}

/// A whole sign-on as `account`: the callback's answer.
async fn sign_on(http: &Client, latchkey: &str, account: &str) -> reqwest::Response {
    let callback = to_callback(http, latchkey, account).await;
    http.get(callback).send().await.unwrap()
}

fn set_cookie<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Asserts a sign-on was refused: `status`, the sign-in page saying `says`, no session.
async fn assert_refused(r: reqwest::Response, status: u16, says: &str) -> String {
    assert_eq!(r.status().as_u16(), status);
    assert!(
        set_cookie(&r, "lk_session").is_none(),
        "a refusal starts no session"
    );
    let cleared = set_cookie(&r, "lk_oidc").expect("the attempt cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(r.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains(says), "the page says {says:?}: {html}");
    assert!(
        html.contains("id=\"sign-in-sso\""),
        "and offers to try again"
    );
    html
}

/// A user with `email`, a developer in the admin's workspace; their id.
async fn member(srv: &TestServer, email: &str) -> String {
    let id = srv
        .post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": email, "name": "Alice Example"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ws = srv.workspace_of(&srv.admin_key).await;
    srv.set_member(&ws, &id, "developer").await;
    id
}

async fn user_with_email(srv: &TestServer, email: &str) -> Option<Value> {
    let users = srv
        .get("/v1/users?limit=500", &srv.admin_key)
        .await
        .expect(200);
    users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .cloned()
}

fn email(who: &str) -> String {
    format!("{who}-{}@example.com", random_suffix())
}

/// Signs on as an existing member through a provider in `mode` and checks the dashboard
/// shows them.
async fn a_member_signs_in(mode: &'static str) {
    let port = free_port();
    each_backend_with(with_oidc(port, false), |srv| async move {
        let alice = email("alice");
        member(&srv, &alice).await;
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"alice": {"email": alice.to_uppercase(), "email_verified": true}}),
            mode,
        )
        .await;
        let http = browser();
        let login = http.get(format!("{}/login", srv.url)).send().await.unwrap();
        let html = login.text().await.unwrap();
        assert!(html.contains("id=\"sign-in-sso\""), "{html}");
        assert!(html.contains(&format!("Sign in with {PROVIDER_NAME}")));
        assert!(html.contains("id=\"login\""), "the password form stays");

        let r = sign_on(&http, &srv.url, "alice").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", srv.backend_name());
        assert_eq!(r.headers()[header::LOCATION], "/keys");
        assert!(set_cookie(&r, "lk_session").is_some());
        assert!(set_cookie(&r, "lk_oidc").unwrap().contains("Max-Age=0"));
        let keys = http.get(format!("{}/keys", srv.url)).send().await.unwrap();
        assert_eq!(keys.status(), 200);
        let page = keys.text().await.unwrap();
        assert!(
            page.contains(&alice),
            "the dashboard is Alice's (matched case-insensitively)"
        );
    })
    .await;
}

#[tokio::test]
async fn oidc_a_verified_email_of_a_member_signs_in() {
    a_member_signs_in("honest").await;
}

#[tokio::test]
async fn oidc_the_email_may_come_from_userinfo() {
    a_member_signs_in("userinfo").await;
}

#[tokio::test]
async fn oidc_an_unknown_email_is_refused_without_create_users() {
    let port = free_port();
    each_backend_with(with_oidc(port, false), |srv| async move {
        let bob = email("bob");
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"bob": {"email": bob, "email_verified": true}}),
            "honest",
        )
        .await;
        let r = sign_on(&browser(), &srv.url, "bob").await;
        assert_refused(r, 403, &format!("There is no account for {bob} here")).await;
        assert!(
            user_with_email(&srv, &bob).await.is_none(),
            "nothing created"
        );
    })
    .await;
}

#[tokio::test]
async fn oidc_create_users_creates_a_user_who_then_needs_a_workspace() {
    let port = free_port();
    each_backend_with(with_oidc(port, true), |srv| async move {
        let carol = email("carol");
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"carol": {"email": carol, "email_verified": true, "name": "Carol Example"}}),
            "honest",
        )
        .await;
        let http = browser();
        let r = sign_on(&http, &srv.url, "carol").await;
        assert_refused(r, 403, "Your account is not a member of any workspace yet.").await;
        let user = user_with_email(&srv, &carol).await.expect("created");
        assert_eq!(user["name"], "Carol Example");
        let id = user["id"].as_str().unwrap().to_owned();
        let created = |audit: Value| {
            audit["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["target"]["id"] == id.as_str())
                .cloned()
                .collect::<Vec<_>>()
        };
        let audit = srv
            .get("/v1/audit?action=user.created&limit=500", &srv.admin_key)
            .await
            .expect(200);
        let events = created(audit);
        assert_eq!(events.len(), 1, "one user.created");
        assert_eq!(
            events[0]["actor"]["credential_name"],
            format!("Single sign-on ({PROVIDER_NAME})")
        );

        // An admin adds her; the next sign-on lets her in and creates nothing more.
        let ws = srv.workspace_of(&srv.admin_key).await;
        srv.set_member(&ws, &id, "member").await;
        let r = sign_on(&http, &srv.url, "carol").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/keys");
        let audit = srv
            .get("/v1/audit?action=user.created&limit=500", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(created(audit).len(), 1);
    })
    .await;
}

#[tokio::test]
async fn oidc_a_tampered_state_or_a_provider_error_is_refused() {
    let port = free_port();
    each_backend_with(with_oidc(port, false), |srv| async move {
        let alice = email("alice");
        member(&srv, &alice).await;
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"alice": {"email": alice, "email_verified": true}}),
            "honest",
        )
        .await;
        let http = browser();
        let callback = to_callback(&http, &srv.url, "alice").await;
        let mut tampered = callback.clone();
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    format!("{v}x")
                } else {
                    v.into()
                };
                (k.into(), v)
            })
            .collect();
        tampered.query_pairs_mut().clear().extend_pairs(pairs);
        let r = http.get(tampered).send().await.unwrap();
        assert_refused(r, 400, "This sign-in attempt has expired").await;

        // The right state from another browser (no attempt cookie) is no better.
        let r = browser().get(callback).send().await.unwrap();
        assert_refused(r, 400, "This sign-in attempt has expired").await;

        // The provider says no: its code is named, its description never shown.
        for (error, shown) in [
            ("access_denied", "did not sign you in (access_denied)"),
            ("<b>bold</b>", "did not sign you in. Sign in again"),
        ] {
            let start = http
                .get(format!("{}/auth/oidc", srv.url))
                .send()
                .await
                .unwrap();
            let to = Url::parse(start.headers()[header::LOCATION].to_str().unwrap()).unwrap();
            let state = to
                .query_pairs()
                .find(|(k, _)| k == "state")
                .unwrap()
                .1
                .into_owned();
            let mut cb = Url::parse(&format!("{}{CALLBACK}", srv.url)).unwrap();
            cb.query_pairs_mut()
                .append_pair("error", error)
                .append_pair("error_description", "<script>alert(1)</script>")
                .append_pair("state", &state);
            let r = http.get(cb).send().await.unwrap();
            let html = assert_refused(r, 403, shown).await;
            assert!(!html.contains("<script>alert") && !html.contains("<b>bold"));
        }
    })
    .await;
}

/// A provider in `mode` answers with a valid-looking ID token that must fail a check.
async fn an_id_token_is_refused(mode: &'static str) {
    let port = free_port();
    each_backend_with(with_oidc(port, false), |srv| async move {
        let alice = email("alice");
        member(&srv, &alice).await;
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"alice": {"email": alice, "email_verified": true}}),
            mode,
        )
        .await;
        let r = sign_on(&browser(), &srv.url, "alice").await;
        assert_refused(r, 403, "could not be verified, so you were not signed in").await;
    })
    .await;
}

#[tokio::test]
async fn oidc_a_wrong_nonce_is_refused() {
    an_id_token_is_refused("wrong-nonce").await;
}

#[tokio::test]
async fn oidc_an_id_token_signed_by_another_key_is_refused() {
    an_id_token_is_refused("foreign-key").await;
}

#[tokio::test]
async fn oidc_an_unverified_email_is_refused() {
    let port = free_port();
    each_backend_with(with_oidc(port, true), |srv| async move {
        let alice = email("alice");
        member(&srv, &alice).await;
        let nobody = email("nobody");
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({
                "alice": {"email": alice, "email_verified": false},
                "nobody": {"email": nobody},
            }),
            "honest",
        )
        .await;
        for account in ["alice", "nobody"] {
            let r = sign_on(&browser(), &srv.url, account).await;
            assert_refused(r, 403, "has not verified your email address").await;
        }
        assert!(
            user_with_email(&srv, &nobody).await.is_none(),
            "not even with create_users"
        );
    })
    .await;
}

#[tokio::test]
async fn oidc_password_login_can_be_turned_off() {
    let port = free_port();
    let configure = move |c: &mut Config| {
        with_oidc(port, false)(c);
        c.dashboard.password_login = false;
    };
    each_backend_with(configure, |srv| async move {
        let http = browser();
        let page = http.get(format!("{}/login", srv.url)).send().await.unwrap();
        let csrf = set_cookie(&page, "lk_login_csrf")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("lk_login_csrf=")
            .to_owned();
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"sign-in-sso\""));
        assert!(
            !html.contains("id=\"login\"") && !html.contains("type=\"password\""),
            "no password form: {html}"
        );
        // The right password and a valid form token still sign no one in.
        let r = http
            .post(format!("{}/login", srv.url))
            .form(&[
                ("email", srv.admin_email.as_str()),
                ("password", srv.admin_password.as_str()),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&r, "lk_session").is_none());
        let html = r.text().await.unwrap();
        assert!(html.contains("Signing in with a password is turned off here."));
    })
    .await;

    // Without single sign-on configured there is no button, and the form is there.
    let srv = TestServer::start(&crate::harness::Backend::Sqlite).await;
    let html = browser()
        .get(format!("{}/login", srv.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("sign-in-sso") && html.contains("id=\"login\""));
    let r = browser()
        .get(format!("{}/auth/oidc", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oidc_an_unreachable_provider_is_a_503_page_until_it_is_back() {
    let port = free_port();
    each_backend_with(with_oidc(port, false), |srv| async move {
        let http = browser();
        let r = http
            .get(format!("{}/auth/oidc", srv.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("{PROVIDER_NAME} cannot be reached")),
            "{html}"
        );
        assert_eq!(
            srv.get("/healthz", &srv.admin_key).await.status,
            200,
            "the server is fine"
        );

        let alice = email("alice");
        member(&srv, &alice).await;
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"alice": {"email": alice, "email_verified": true}}),
            "honest",
        )
        .await;
        // It is asked again a few seconds after a failure.
        let start = Instant::now();
        loop {
            let r = http
                .get(format!("{}/auth/oidc", srv.url))
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::SEE_OTHER {
                break;
            }
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(start.elapsed() < Duration::from_secs(15), "not back");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let r = sign_on(&http, &srv.url, "alice").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    })
    .await;
}

#[tokio::test]
async fn oidc_the_client_secret_never_reaches_the_log() {
    use base64::Engine;
    let port = free_port();
    let dir = TempDir::new();
    let issuer = issuer(port);
    let mut srv = ServerProcess::spawn(
        &dir.0,
        None,
        &[
            ("LATCHKEY_LOG", "trace"),
            ("LATCHKEY_DASHBOARD_OIDC_ISSUER", issuer.as_str()),
            ("LATCHKEY_DASHBOARD_OIDC_CLIENT_ID", CLIENT_ID),
            ("LATCHKEY_DASHBOARD_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    srv.wait_ready().await;
    let admin = srv.admin_key();
    let alice = email("alice");
    let r = Client::new()
        .post(format!("{}/v1/users", srv.url))
        .bearer_auth(&admin)
        .json(&json!({"email": alice, "name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let me: Value = Client::new()
        .get(format!("{}/v1/me", srv.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = me["workspace"]["id"].as_str().unwrap();
    let r = Client::new()
        .put(format!(
            "{}/v1/workspaces/{ws}/members/{}",
            srv.url,
            user["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    {
        let _idp = OidcProvider::start(
            port,
            &srv.url,
            json!({"alice": {"email": alice, "email_verified": true}}),
            "honest",
        )
        .await;
        let r = sign_on(&browser(), &srv.url, "alice").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    srv.terminate();
    let output = srv.output();
    assert!(
        output.contains("single sign-on"),
        "trace logging was on: {output}"
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    for secret in [CLIENT_SECRET, basic.as_str()] {
        assert!(!output.contains(secret), "{secret} is in the log");
    }

    // Nor in --help (with the variable set), nor in a startup error.
    let help = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--help"])
        .env("LATCHKEY_DASHBOARD_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--dashboard-oidc-issuer",
        "--dashboard-oidc-client-id",
        "--dashboard-oidc-client-secret",
        "--dashboard-oidc-create-users",
        "--dashboard-password-login",
        "--dashboard-product-name",
        "--dashboard-logo-url",
        "--dashboard-accent-color",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
    assert!(!help.contains(CLIENT_SECRET));
    let bad = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--data-dir"])
        .arg(&dir.0)
        .env("LATCHKEY_DASHBOARD_OIDC_ISSUER", "http://idp.example.com")
        .env("LATCHKEY_DASHBOARD_OIDC_CLIENT_ID", CLIENT_ID)
        .env("LATCHKEY_DASHBOARD_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr) + String::from_utf8_lossy(&bad.stdout);
    assert!(err.contains("[dashboard.oidc] issuer"), "{err}");
    assert!(!err.contains(CLIENT_SECRET));
}
