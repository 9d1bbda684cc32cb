//! SPEC §7 in a real browser: headless Chromium driven over WebDriver (Debian's `chromedriver`)
//! against the real server — sign-in, show-once keys, revoke with confirmation, roll, environment
//! tokens, the workspace switcher, members and roles, a key's and a member's page (limits, credits
//! and the usage chart), the audit log, CSRF and sign-out; portal links; revoking with
//! JavaScript off.
//!
//! Chromium and ChromeDriver are required: a missing one fails the test (CI installs the
//! `chromium` and `chromium-driver` packages). Screenshots land in `target/screenshots/`.

use crate::harness::{random_suffix, Backend, TempDir, TestServer};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/screenshots");
const WAIT: Duration = Duration::from_secs(15);

fn chromedriver_path() -> PathBuf {
    std::env::var_os("LATCHKEY_CHROMEDRIVER")
        .map_or_else(|| "/usr/bin/chromedriver".into(), PathBuf::from)
}

fn chromium_path() -> PathBuf {
    std::env::var_os("LATCHKEY_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// A chromedriver process of our own with a fresh browser profile; both go away on drop, and so
/// does any browser process left behind by a test that panicked before closing its session.
struct Browser {
    driver: Child,
    profile: TempDir,
    client: Client,
}

impl Browser {
    /// Runs `scenario` (which drives this browser) and then closes the session, whatever
    /// happened. A failure leaves the page's URL and a screenshot
    /// (`{SCREENSHOTS}/{failure}.png`) for whoever reads it, then fails the test with the
    /// scenario's own panic.
    async fn run(self, failure: &str, scenario: impl std::future::Future<Output = ()>) {
        let outcome = AssertUnwindSafe(scenario).catch_unwind().await;
        if outcome.is_err() {
            if let Ok(url) = self.client.current_url().await {
                eprintln!("browser was at {url}");
            }
            if let Ok(png) = self.client.screenshot().await {
                let path = Path::new(SCREENSHOTS).join(format!("{failure}.png"));
                let _ = std::fs::create_dir_all(SCREENSHOTS);
                let _ = std::fs::write(&path, png);
                eprintln!("screenshot of the failure: {}", path.display());
            }
        }
        let _ = self.client.clone().close().await;
        drop(self);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Chromium with `extra` flags (`--force-dark-mode` for `prefers-color-scheme: dark`).
    async fn start_with(extra: &[&str]) -> Self {
        Self::start_configured(extra, json!({})).await
    }

    /// Chromium that runs no page's JavaScript, as some people's browsers do.
    async fn start_without_javascript() -> Self {
        Self::start_configured(
            &[],
            json!({"profile.default_content_setting_values.javascript": 2}),
        )
        .await
    }

    /// Chromium with `extra` flags and `prefs` (its profile's preferences).
    async fn start_configured(extra: &[&str], prefs: Value) -> Self {
        let driver_bin = chromedriver_path();
        let chromium = chromium_path();
        for (what, path) in [("chromedriver", &driver_bin), ("chromium", &chromium)] {
            assert!(
                path.exists(),
                "the dashboard's browser tests need {what}, not found at {}: install Debian's \
                 `chromium` and `chromium-driver` packages (or point LATCHKEY_CHROMEDRIVER / \
                 LATCHKEY_CHROMIUM at them)",
                path.display()
            );
        }
        let profile = TempDir::new();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = profile.0.join("chromedriver.log");
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(profile.0.join("chromedriver.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        // From here on, `guard` kills chromedriver if anything below panics.
        let mut guard = DriverGuard {
            driver: Some(driver),
            profile: Some(profile),
        };
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = guard.driver.as_mut().unwrap().try_wait().unwrap() {
                panic!("chromedriver exited ({status}): {}", guard.logs());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not come up: {}",
                guard.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let user_data = guard.profile.as_ref().unwrap().0.join("chrome-profile");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        let mut args = vec![
            json!("--headless=new"),
            json!("--no-sandbox"),
            json!("--disable-gpu"),
            json!("--disable-dev-shm-usage"),
            json!("--no-first-run"),
            json!("--disable-background-networking"),
            json!("--disable-component-update"),
            json!("--disable-sync"),
            json!("--window-size=1280,900"),
            json!(format!("--user-data-dir={}", user_data.display())),
        ];
        args.extend(extra.iter().map(|a| json!(a)));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.to_str().unwrap(), "args": args, "prefs": prefs}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}; {}", guard.logs()));
        Self {
            driver: guard.driver.take().unwrap(),
            profile: guard.profile.take().unwrap(),
            client,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_driver(&mut self.driver, &self.profile.0);
    }
}

/// Kills chromedriver during `Browser::start` if it panics half-way.
struct DriverGuard {
    driver: Option<Child>,
    profile: Option<TempDir>,
}

impl DriverGuard {
    fn logs(&self) -> String {
        let dir = &self.profile.as_ref().unwrap().0;
        let out = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
        let err = std::fs::read_to_string(dir.join("chromedriver.err")).unwrap_or_default();
        format!("chromedriver output:\n{out}{err}")
    }
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let (Some(d), Some(p)) = (self.driver.as_mut(), self.profile.as_ref()) {
            stop_driver(d, &p.0);
        }
    }
}

/// Kills our chromedriver, then any browser process still using our own profile directory (a
/// session that was never closed); those are the only processes this test started.
fn stop_driver(driver: &mut Child, profile: &Path) {
    let _ = driver.kill();
    let _ = driver.wait();
    let marker = profile.join("chrome-profile");
    let marker = marker.to_string_lossy();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(marker.as_ref()) {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_a_real_browser() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let browser = Browser::start().await;
    let c = browser.client.clone();
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    browser.run("failure", scenario(&srv, &c)).await;
}

async fn scenario(srv: &TestServer, c: &Client) {
    let web = Web { c, base: &srv.url };
    let default_ws = srv.workspace_of(&srv.admin_key).await;

    // --- Sign-in: a wrong password is refused, the right one lands on /keys.
    web.goto("/login").await;
    assert!(
        web.exists("form#login").await,
        "the sign-in page has form#login"
    );
    web.shot("login").await;
    web.fill("form#login input[name=email]", &srv.admin_email)
        .await;
    web.fill("form#login input[name=password]", "not the password at all")
        .await;
    web.submit("button#sign-in", Confirm::No).await;
    assert_eq!(
        web.path().await,
        "/login",
        "a wrong password stays on the sign-in page"
    );
    assert!(
        !web.text(".flash.error").await.trim().is_empty(),
        "a wrong password shows an error"
    );
    assert!(
        c.get_named_cookie("lk_session").await.is_err(),
        "no session after a wrong password"
    );

    web.sign_in(&srv.admin_email, &srv.admin_password).await;
    let cookie = c
        .get_named_cookie("lk_session")
        .await
        .expect("signing in sets lk_session");
    assert_eq!(cookie.http_only(), Some(true), "lk_session is HttpOnly");
    assert_eq!(
        format!("{:?}", cookie.same_site()),
        "Some(Lax)",
        "lk_session is SameSite=Lax"
    );
    for nav in [
        "a#nav-keys",
        "a#nav-tokens",
        "a#nav-members",
        "a#nav-audit",
        "a#nav-account",
    ] {
        assert!(web.exists(nav).await, "the admin sees {nav}");
    }
    assert!(web.exists("form#logout button#sign-out").await);
    assert!(
        !web.exists("select[name=workspace_id]").await,
        "no workspace switcher for someone in one workspace"
    );
    assert_csrf_fields(&web).await;

    // --- Create a key: shown once with a copy button and a warning.
    let key1 = web.create_key("Browser key one", "secret", "live").await;
    web.shot("keys-new-key").await;
    assert!(
        key1.starts_with("sk_live_") && key1.len() == "sk_live_".len() + 38,
        "a full secret live key is shown: {key1}"
    );
    let me = srv.get("/v1/me", &key1).await.expect(200);
    assert_eq!(me["credential"]["name"], "Browser key one");
    assert_eq!(me["credential"]["environment"], "live");
    assert_eq!(me["workspace"]["id"], default_ws.as_str());
    let key1_id = me["credential"]["id"].as_str().unwrap().to_owned();

    // Loading the page again never shows it.
    web.goto("/keys").await;
    assert!(
        !web.exists("#new-key").await,
        "the new key is shown only once"
    );
    assert!(
        !c.source().await.unwrap().contains(&key1),
        "the full key is not in the page source"
    );
    let row = web.key_row(&key1_id).await;
    assert_eq!(web.cell(&row, "td.name").await, "Browser key one");
    let redacted = web.cell(&row, "td.redacted").await;
    assert!(
        redacted.ends_with(&key1[key1.len() - 4..])
            && redacted.starts_with("sk_live_")
            && redacted != key1,
        "the list shows the redacted form: {redacted}"
    );
    assert!(web
        .cell(&row, "td.type")
        .await
        .to_lowercase()
        .contains("secret"));
    assert_eq!(web.cell(&row, "td.environment").await, "live");
    assert_eq!(web.cell(&row, "td.status").await, "active");
    for cell in ["td.created", "td.last-used", "td.expires"] {
        assert!(
            web.find_in(&row, cell).await.is_some(),
            "key rows have {cell}"
        );
    }
    web.shot("keys-list").await;

    // --- Revoke, on the key's page, asks for confirmation: dismissing keeps the key,
    // accepting revokes it and lands on the list with a confirmation.
    let link = web.must_find_in(&row, "td.name a").await;
    web.submit_el(&link, Confirm::No).await;
    assert_eq!(web.path().await, format!("/keys/{key1_id}"));
    let button = web.must_find("form#revoke-key button").await;
    button.click().await.unwrap();
    let question = web
        .alert_text()
        .await
        .expect("revoking asks for confirmation with confirm()");
    assert!(
        question.contains("Browser key one"),
        "the confirmation names the key: {question}"
    );
    c.dismiss_alert().await.unwrap();
    srv.get("/v1/me", &key1).await.expect(200);
    web.submit("form#revoke-key button", Confirm::Required)
        .await;
    assert_eq!(web.path().await, "/keys", "revoking lands on the list");
    assert!(
        web.text("#messages")
            .await
            .contains("Key “Browser key one” revoked."),
        "and says so"
    );
    srv.get("/v1/me", &key1)
        .await
        .problem(401, "invalid_credentials");
    web.goto("/keys").await;
    assert!(
        !web.text("#messages").await.contains("revoked"),
        "the confirmation is shown once"
    );
    let row = web.key_row(&key1_id).await;
    assert_eq!(web.cell(&row, "td.status").await, "revoked");
    web.goto(&format!("/keys/{key1_id}")).await;
    assert!(
        !web.exists("form#revoke-key").await && !web.exists("form#roll-key").await,
        "a revoked key can be neither revoked again nor rolled"
    );

    // --- Roll, on the key's page, with a grace period: the new key is shown once; the old one
    // keeps working through the grace period. Reloading the page rolls nothing again.
    let key2 = web.create_key("Browser key two", "secret", "test").await;
    assert!(key2.starts_with("sk_test_"));
    let key2_id = srv.get("/v1/me", &key2).await.expect(200)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    web.goto(&format!("/keys/{key2_id}")).await;
    web.must_find("form#roll-key select#roll-grace")
        .await
        .select_by_value("3600")
        .await
        .unwrap();
    web.submit("button#roll-key-submit", Confirm::Required)
        .await;
    let rolled = web
        .new_secret("#new-key", "code#new-key-value", "#copy-key")
        .await;
    assert!(
        rolled.starts_with("sk_test_") && rolled != key2,
        "rolling shows a new test key"
    );
    let old = srv.get("/v1/me", &key2).await.expect(200);
    assert!(
        old["credential"]["expires_at"].is_string(),
        "the old key works on through its grace period, which ends: {old}"
    );
    let me = srv.get("/v1/me", &rolled).await.expect(200);
    let rolled_id = me["credential"]["id"].as_str().unwrap().to_owned();
    let rolled_name = me["credential"]["name"].as_str().unwrap().to_owned();
    assert_eq!(
        web.path().await,
        format!("/keys/{rolled_id}"),
        "the new key's page"
    );
    let keys_before = srv.key_count(&srv.admin_key).await;
    c.refresh().await.unwrap();
    web.settle().await;
    assert_eq!(
        srv.key_count(&srv.admin_key).await,
        keys_before,
        "reloading after a roll rolls nothing"
    );
    assert!(
        !c.source().await.unwrap().contains(&rolled),
        "the rolled key is shown once"
    );

    // --- Environment tokens: generate from a key, renew, revoke.
    web.click_nav("a#nav-tokens", "/tokens").await;
    let offered = web.options("form#generate-token select[name=key_id]").await;
    assert_offered_once(&offered);
    let rolled_redacted = srv
        .get(&format!("/v1/keys/{rolled_id}"), &srv.admin_key)
        .await
        .expect(200)["redacted"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, label, group) = offered
        .iter()
        .find(|(v, _, _)| *v == rolled_id)
        .unwrap_or_else(|| panic!("the rolled key {rolled_id} is offered: {offered:?}"));
    assert!(
        label.contains(&rolled_name) && label.contains(&rolled_redacted) && group == "Test keys",
        "the option names the key, its redacted form and (by its group) its environment: \
         {label} in {group:?}"
    );
    assert!(
        !offered
            .iter()
            .any(|(v, _, _)| *v == key1_id || *v == key2_id),
        "revoked and rolled-away keys are not offered: {offered:?}"
    );
    c.find(Locator::Css("form#generate-token select[name=key_id]"))
        .await
        .unwrap()
        .select_by_value(&rolled_id)
        .await
        .unwrap();
    web.fill("form#generate-token input[name=name]", "Browser token")
        .await;
    web.submit("button#generate-token-submit", Confirm::No)
        .await;
    let tok1 = web
        .new_secret("#new-token", "code#new-token-value", "")
        .await;
    web.shot("tokens").await;
    let me = srv.get("/v1/me", &tok1).await.expect(200);
    assert_eq!(me["credential"]["type"], "access_token");
    assert_eq!(
        me["credential"]["environment"], "test",
        "the token takes its key's environment"
    );
    let tok1_id = me["credential"]["id"].as_str().unwrap().to_owned();
    assert!(tok1_id.starts_with("tok_"), "{me}");

    web.goto("/tokens").await;
    assert!(!web.exists("#new-token").await);
    assert!(
        !c.source().await.unwrap().contains(&tok1),
        "the token is shown once"
    );
    let row = web
        .must_find(&format!("table#tokens tr[data-token-id=\"{tok1_id}\"]"))
        .await;
    assert_eq!(web.cell(&row, "td.name").await, "Browser token");
    let source = web.cell(&row, "td.from-key").await;
    assert_eq!(
        source,
        format!("{rolled_name} ({rolled_redacted})"),
        "the token shows the key it came from"
    );
    let button = web.must_find_in(&row, "form.renew-token button").await;
    web.submit_el(&button, Confirm::IfAsked).await;
    let tok2 = web
        .new_secret("#new-token", "code#new-token-value", "")
        .await;
    assert_ne!(tok2, tok1, "renewing shows a new token");
    srv.get("/v1/me", &tok1)
        .await
        .problem(401, "invalid_credentials");
    let tok2_id = srv.get("/v1/me", &tok2).await.expect(200)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    web.goto("/tokens").await;
    let row = web
        .must_find(&format!("table#tokens tr[data-token-id=\"{tok2_id}\"]"))
        .await;
    let button = web.must_find_in(&row, "form.revoke-token button").await;
    web.submit_el(&button, Confirm::IfAsked).await;
    srv.get("/v1/me", &tok2)
        .await
        .problem(401, "invalid_credentials");

    // --- Workspace switcher: appears with a second workspace; new keys land in the chosen one.
    let second_ws = srv.workspace("Second workspace").await;
    srv.set_member(&second_ws, &srv.admin_user_id, "admin")
        .await;
    web.goto("/keys").await;
    let switcher = web
        .must_find("form#switch-workspace select[name=workspace_id]")
        .await;
    switcher.select_by_value(&second_ws).await.unwrap();
    web.submit("button#switch-workspace-submit", Confirm::No)
        .await;
    assert_eq!(
        web.must_find("form#switch-workspace select[name=workspace_id]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(second_ws.as_str()),
        "the switcher shows the chosen workspace"
    );
    web.goto("/keys").await;
    let key3 = web
        .create_key("Second workspace key", "secret", "test")
        .await;
    assert_eq!(
        srv.workspace_of(&key3).await,
        second_ws,
        "a key created after switching lands there"
    );
    web.goto("/keys").await;
    web.must_find("form#switch-workspace select[name=workspace_id]")
        .await
        .select_by_value(&default_ws)
        .await
        .unwrap();
    web.submit("button#switch-workspace-submit", Confirm::No)
        .await;

    // --- Members and roles: an admin adds a member, then lowers their role; their key follows.
    let casey_email = format!("casey-{}@example.com", random_suffix());
    let casey_password = "correct horse battery staple";
    let casey = srv
        .post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": casey_email, "name": "Casey Member", "password": casey_password}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    web.click_nav("a#nav-members", "/members").await;
    web.fill("form#add-member input[name=email]", &casey_email)
        .await;
    web.fill("form#add-member input[name=name]", "Casey Member")
        .await;
    web.must_find("form#add-member select[name=role]")
        .await
        .select_by_value("member")
        .await
        .unwrap();
    web.submit("button#add-member-submit", Confirm::No).await;
    assert_eq!(
        member_role(srv, &default_ws, &casey).await.as_deref(),
        Some("member")
    );
    let casey_key = srv.key_for(&default_ws, &casey, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let write = json!({"key": casey_key, "permissions": ["documents:write"]});
    assert_eq!(
        srv.verify(write.clone()).await["code"],
        "VALID",
        "a member may write documents"
    );

    web.goto("/members").await;
    let row = web
        .must_find(&format!("table#members tr[data-user-id=\"{casey}\"]"))
        .await;
    assert_eq!(
        web.must_find_in(&row, "form.change-role select[name=role]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("member")
    );
    assert!(web.find_in(&row, "form.remove-member").await.is_some());
    web.shot("members").await;
    web.must_find_in(&row, "form.change-role select[name=role]")
        .await
        .select_by_value("viewer")
        .await
        .unwrap();
    let button = web.must_find_in(&row, "form.change-role button").await;
    web.submit_el(&button, Confirm::IfAsked).await;
    assert_eq!(
        member_role(srv, &default_ws, &casey).await.as_deref(),
        Some("viewer")
    );
    assert_eq!(
        srv.verify(write).await["code"],
        "INSUFFICIENT_PERMISSIONS",
        "lowering the role in the dashboard takes documents:write from the member's key at once"
    );
    srv.get("/v1/me", &casey_key).await.expect(200);

    // --- Limits, credits and usage (SPEC §11): a key's page and a member's.
    limits_and_usage(srv, &web, &casey).await;

    // --- Audit log: the changes above, with the acting credential's name.
    web.click_nav("a#nav-audit", "/audit").await;
    let mut events = Vec::new();
    for r in c
        .find_all(Locator::Css("table#audit tbody tr"))
        .await
        .unwrap()
    {
        events.push((
            web.cell(&r, "td.action").await,
            web.cell(&r, "td.actor").await,
        ));
    }
    for action in [
        "key.created",
        "key.revoked",
        "key.rolled",
        "token.renewed",
        "token.revoked",
        "member.added",
        "member.role_changed",
    ] {
        assert!(
            events.iter().any(|(a, _)| a == action),
            "the audit log shows {action}: {events:?}"
        );
    }
    let admin_key_name = srv.get("/v1/me", &srv.admin_key).await.expect(200)["credential"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        events
            .iter()
            .any(|(a, actor)| a == "key.created" && actor.contains(&admin_key_name)),
        "the key created through the API shows the credential's name ({admin_key_name}): {events:?}"
    );
    web.shot("audit").await;

    // --- CSRF: every dashboard form needs the right token (checked with a plain HTTP client).
    csrf_is_enforced(srv).await;

    // --- Sign-out ends the session, on the server too.
    let old_session = c
        .get_named_cookie("lk_session")
        .await
        .unwrap()
        .value()
        .to_owned();
    web.submit("button#sign-out", Confirm::No).await;
    web.goto("/keys").await;
    assert_eq!(
        web.path().await,
        "/login",
        "after signing out /keys leads to the sign-in page"
    );
    let mut replay = Session::new(&srv.url);
    replay.cookies.insert("lk_session".into(), old_session);
    let r = replay.get("/keys").await;
    assert!(
        r.status.is_redirection() && r.location().starts_with("/login"),
        "the old session cookie no longer works: {} {}",
        r.status,
        r.location()
    );

    // --- A member (now a viewer) in the browser: no member management, no key creation.
    web.sign_in(&casey_email, casey_password).await;
    assert!(
        !web.exists("a#nav-members").await,
        "a viewer is not offered the members page"
    );
    assert!(
        web.exists("#no-key-permission").await,
        "a viewer is told they cannot manage keys"
    );
    assert!(!web.exists("form#create-key").await);
    web.goto("/members").await;
    assert_eq!(web.text("h1").await.trim(), "Not allowed");
    let mut casey_http = Session::sign_in(&srv.url, &casey_email, casey_password).await;
    assert_eq!(
        casey_http.get("/members").await.status,
        StatusCode::FORBIDDEN
    );

    // --- Account: the member changes their password; only the new one signs in afterwards.
    web.goto("/keys").await;
    web.click_nav("a#nav-account", "/account").await;
    let new_password = "a much better passphrase";
    web.fill(
        "form#change-password input[name=current_password]",
        casey_password,
    )
    .await;
    web.fill(
        "form#change-password input[name=new_password]",
        new_password,
    )
    .await;
    web.fill(
        "form#change-password input[name=confirm_password]",
        new_password,
    )
    .await;
    web.submit("form#change-password button[type=submit]", Confirm::No)
        .await;
    assert!(
        !web.exists(".flash.error").await,
        "changing the password succeeds: {}",
        web.text("main").await
    );
    if web.exists("button#sign-out").await {
        web.submit("button#sign-out", Confirm::No).await;
    }
    web.goto("/login").await;
    web.fill("form#login input[name=email]", &casey_email).await;
    web.fill("form#login input[name=password]", casey_password)
        .await;
    web.submit("button#sign-in", Confirm::No).await;
    assert_eq!(
        web.path().await,
        "/login",
        "the old password no longer signs in"
    );
    web.sign_in(&casey_email, new_password).await;
    web.submit("button#sign-out", Confirm::No).await;
    assert_eq!(web.path().await, "/login");
}

/// A key created with a rate limit of 2 a minute and 5 credits: its page shows them; three
/// requests pass, pass and are refused, and the chart and its table say so; the form sets the
/// credits and lands back on the page. Then a member's page with their chart.
async fn limits_and_usage(srv: &TestServer, web: &Web<'_>, member: &str) {
    let c = web.c;
    web.goto("/keys/new").await;
    web.fill("form#create-key input[name=name]", "Metered browser key")
        .await;
    web.must_find("form#create-key select[name=environment]")
        .await
        .select_by_value("test")
        .await
        .unwrap();
    web.fill("form#create-key input[name=ratelimit]", "2").await;
    web.must_find("form#create-key select[name=window_seconds]")
        .await
        .select_by_value("60")
        .await
        .unwrap();
    web.fill("form#create-key input[name=credits]", "5").await;
    web.must_find("form#create-key select[name=refill]")
        .await
        .select_by_value("never")
        .await
        .unwrap();
    web.submit("button#create-key-submit", Confirm::No).await;
    let key = web
        .new_secret("#new-key", "code#new-key-value", "#copy-key")
        .await;
    // The key's id from the list, without spending any of its requests.
    let keys = srv
        .get("/v1/keys?limit=500", &srv.admin_key)
        .await
        .expect(200);
    let id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Metered browser key")
        .and_then(|k| k["id"].as_str())
        .expect("the key is listed")
        .to_owned();

    // The list links to the key's page.
    web.goto("/keys").await;
    let row = web.key_row(&id).await;
    let link = web.must_find_in(&row, "td.name a").await;
    web.submit_el(&link, Confirm::No).await;
    assert_eq!(web.path().await, format!("/keys/{id}"));
    assert_eq!(web.text("h1").await.trim(), "Metered browser key");
    assert_eq!(web.text("#key-facts .environment").await.trim(), "test");
    assert_eq!(web.text("#key-facts .last-used").await.trim(), "never");
    assert_eq!(web.text("#credits .remaining").await.trim(), "5");
    assert_eq!(
        web.text("table#ratelimits tr[data-limit=default] td.limit")
            .await
            .trim(),
        "2"
    );
    assert_eq!(
        web.text("table#ratelimits tr[data-limit=default] td.window")
            .await
            .trim(),
        "per minute"
    );
    assert!(web.exists("svg.usage-chart[role=img]").await);
    assert_csrf_fields(web).await;

    // Two requests pass, the third is over the limit.
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(srv.get("/v1/me", &key).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);

    // Usage is flushed every 50 ms in tests: reload until the page has it.
    let path = format!("/keys/{id}");
    let count = |code: &'static str| async move {
        let css = format!("table#usage-totals tr[data-code={code}] td.count");
        match web.c.find(Locator::Css(&css)).await {
            Ok(e) => e.text().await.unwrap().trim().to_owned(),
            Err(_) => String::new(),
        }
    };
    let deadline = Instant::now() + WAIT;
    loop {
        web.goto(&path).await;
        if count("VALID").await == "2" && count("RATE_LIMITED").await == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key's page shows 2 valid and 1 RATE_LIMITED: {}",
            web.text("#usage").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(web.exists("svg.usage-chart rect.bar-valid").await);
    assert!(web.exists("svg.usage-chart rect.bar-refused").await);
    let label = web
        .must_find("svg.usage-chart")
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        label,
        "3 verifications in the last 24 hours: 2 valid, 1 refused"
    );
    assert_eq!(
        web.text("table#usage-totals tr.credits-spent td.count")
            .await
            .trim(),
        "2"
    );
    assert_eq!(web.text("#credits .remaining").await.trim(), "3");
    web.shot("key-page").await;

    // At a phone's width nothing is wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    web.goto(&path).await;
    let widths = c
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth, \
             document.querySelector('svg.usage-chart').getBoundingClientRect().right]",
            vec![],
        )
        .await
        .unwrap();
    let w: Vec<f64> = widths
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    if w[0] <= 400.0 {
        assert!(
            w[1] <= w[0] && w[2] <= w[0],
            "the key's page fits {} px: {w:?}",
            w[0]
        );
        web.shot_at("key-page-390", "#usage").await;
    } else {
        eprintln!("the browser would not narrow its window to 390 px ({w:?}); not checked");
    }
    c.set_window_size(1280, 900).await.unwrap();

    // The form sets the credits and answers with a redirect to the key's page.
    web.goto(&path).await;
    web.fill("form#limits-form input[name=credits]", "10").await;
    web.submit("button#limits-submit", Confirm::No).await;
    assert_eq!(web.path().await, path, "the form lands on the key's page");
    assert_eq!(web.text("#credits .remaining").await.trim(), "10");
    assert!(web
        .text(".flash.ok")
        .await
        .contains("Limits and credits saved"));
    let api = srv
        .get(&format!("/v1/keys/{id}"), &srv.admin_key)
        .await
        .expect(200);
    assert_eq!(api["credits"], json!({"remaining": 10}));
    assert_eq!(
        api["ratelimits"][0]["limit"], 2,
        "the rate limit was left as it was"
    );
    web.shot_at("key-page-saved", "#limits").await;
    // Reloading shows the page; it does not send the form again.
    web.goto(&path).await;
    assert!(!web.exists(".flash.ok").await);

    // A member's page, from the members list: their usage chart.
    web.goto("/members").await;
    let row = web
        .must_find(&format!("table#members tr[data-user-id=\"{member}\"]"))
        .await;
    let link = web.must_find_in(&row, "td.name a").await;
    web.submit_el(&link, Confirm::No).await;
    assert_eq!(web.path().await, format!("/members/{member}"));
    assert!(web.exists("svg.usage-chart[role=img]").await);
    assert!(web.exists("table#usage-totals").await);
    assert!(web.exists("form#limits-form").await);
    assert_csrf_fields(web).await;
    web.shot("member-page").await;
    web.shot_at("member-page-limits", "#limits").await;
}

/// Every POST form on the page carries a non-empty hidden `csrf` field.
async fn assert_csrf_fields(web: &Web<'_>) {
    for form in web.c.find_all(Locator::Css("form")).await.unwrap() {
        if form
            .attr("method")
            .await
            .unwrap()
            .unwrap_or_default()
            .to_lowercase()
            != "post"
        {
            continue;
        }
        let id = form.attr("id").await.unwrap().unwrap_or_default();
        let field = web
            .find_in(&form, "input[type=hidden][name=csrf]")
            .await
            .unwrap_or_else(|| panic!("POST form {id:?} has a hidden csrf field"));
        assert!(!field
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
            .is_empty());
    }
}

async fn member_role(srv: &TestServer, ws: &str, user: &str) -> Option<String> {
    let body = srv
        .get(
            &format!("/v1/workspaces/{ws}/members?limit=500"),
            &srv.admin_key,
        )
        .await
        .expect(200);
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .and_then(|m| m["role"].as_str().map(str::to_owned))
}

async fn csrf_is_enforced(srv: &TestServer) {
    // Signing in itself is a form: without the token it is refused.
    let mut anon = Session::new(&srv.url);
    let login = anon.get("/login").await;
    // A strict CSP: no inline or foreign script, no framing (SPEC §7).
    let csp = login
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("dashboard pages send a Content-Security-Policy")
        .to_owned();
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    let script_src = directive("script-src")
        .or_else(|| directive("default-src"))
        .unwrap_or_else(|| panic!("the CSP restricts scripts: {csp}"));
    assert!(
        !script_src.contains("unsafe-inline") && !script_src.contains('*'),
        "no inline or wildcard script: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "no framing: {csp}");
    let r = anon
        .post(
            "/login",
            &[
                ("email", &srv.admin_email),
                ("password", &srv.admin_password),
            ],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "sign-in without csrf: {}",
        r.body
    );
    assert!(!anon.cookies.contains_key("lk_session"));

    let mut s = Session::sign_in(&srv.url, &srv.admin_email, &srv.admin_password).await;
    let names = |suffix: &str| format!("csrf {suffix} {}", random_suffix());
    let missing = names("missing");
    let wrong = names("wrong");
    let right = names("right");
    let form = |name: &str| {
        vec![
            ("name".to_owned(), name.to_owned()),
            ("type".to_owned(), "secret".to_owned()),
            ("environment".to_owned(), "test".to_owned()),
        ]
    };
    let r = s.post_owned("/keys", form(&missing)).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "POST /keys without csrf: {}",
        r.body
    );
    let mut f = form(&wrong);
    f.push(("csrf".into(), "not-the-token".into()));
    let r = s.post_owned("/keys", f).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "POST /keys with a wrong csrf: {}",
        r.body
    );
    let r = s.post("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "POST /logout without csrf");

    // The same request with the page's token works, so the 403s above were about CSRF.
    let page = s.get("/keys").await;
    assert_eq!(page.status, StatusCode::OK, "the session still works");
    let mut f = form(&right);
    f.push((
        "csrf".into(),
        hidden_csrf(&page.body).expect("/keys has a csrf field"),
    ));
    let r = s.post_owned("/keys", f).await;
    assert!(
        r.status == StatusCode::OK || r.status.is_redirection(),
        "POST /keys with the token: {} {}",
        r.status,
        r.body
    );
    let keys = srv
        .get("/v1/keys?limit=500", &srv.admin_key)
        .await
        .expect(200);
    let names: Vec<&str> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&right.as_str()), "{names:?}");
    assert!(
        !names.contains(&missing.as_str()) && !names.contains(&wrong.as_str()),
        "{names:?}"
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Confirm {
    /// The click must not open a dialog.
    No,
    /// Accept a `confirm()` if the page asks.
    IfAsked,
    /// The page must ask; accept.
    Required,
}

/// The browser, with waits that make each step finish before the next.
struct Web<'a> {
    c: &'a Client,
    base: &'a str,
}

impl Web<'_> {
    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
        self.settle().await;
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(Path::new(SCREENSHOTS).join(format!("{name}.png")), png).unwrap();
    }

    /// A screenshot with `css` scrolled into view.
    async fn shot_at(&self, name: &str, css: &str) {
        self.c
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView()",
                vec![json!(css)],
            )
            .await
            .unwrap();
        self.shot(name).await;
    }

    async fn exists(&self, css: &str) -> bool {
        !self.c.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    async fn must_find(&self, css: &str) -> Element {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("{css} is on {}: {e}", self.path().await),
        }
    }

    async fn find_in(&self, el: &Element, css: &str) -> Option<Element> {
        el.find_all(Locator::Css(css))
            .await
            .unwrap()
            .into_iter()
            .next()
    }

    async fn must_find_in(&self, el: &Element, css: &str) -> Element {
        self.find_in(el, css)
            .await
            .unwrap_or_else(|| panic!("{css} is in the row"))
    }

    async fn text(&self, css: &str) -> String {
        self.must_find(css).await.text().await.unwrap()
    }

    async fn cell(&self, row: &Element, css: &str) -> String {
        self.must_find_in(row, css)
            .await
            .text()
            .await
            .unwrap()
            .trim()
            .to_owned()
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.must_find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn key_row(&self, id: &str) -> Element {
        self.must_find(&format!("table#keys tr[data-key-id=\"{id}\"]"))
            .await
    }

    async fn click_nav(&self, css: &str, path: &str) {
        self.submit(css, Confirm::No).await;
        assert_eq!(self.path().await, path, "{css} leads to {path}");
    }

    async fn submit(&self, css: &str, confirm: Confirm) {
        let e = self.must_find(css).await;
        self.submit_el(&e, confirm).await;
    }

    /// Clicks `el` (a submit button or link), handles the confirmation, and waits until the next
    /// page has replaced this one.
    async fn submit_el(&self, el: &Element, confirm: Confirm) {
        let old = self.must_find("html").await;
        el.click().await.unwrap();
        match (confirm, self.alert_text().await) {
            (Confirm::No, Some(q)) => panic!("unexpected dialog: {q}"),
            (Confirm::Required, None) => panic!("expected a confirm() dialog"),
            (_, Some(_)) => self.c.accept_alert().await.unwrap(),
            (_, None) => {}
        }
        let deadline = Instant::now() + WAIT;
        // The old document's root goes stale once the response has replaced it.
        while old.tag_name().await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the page did not change after the click"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.settle().await;
    }

    async fn settle(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Value::String(s)) = self.c.execute("return document.readyState", vec![]).await
            {
                if s == "complete" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the page did not finish loading");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of an open dialog, if one is open.
    async fn alert_text(&self) -> Option<String> {
        self.c.get_alert_text().await.ok()
    }

    async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("form#login input[name=email]", email).await;
        self.fill("form#login input[name=password]", password).await;
        self.submit("button#sign-in", Confirm::No).await;
        assert_eq!(self.path().await, "/keys", "signing in leads to /keys");
    }

    /// Creates a key through `form#create-key` on `/keys/new` (reached from the list's "Create
    /// key") and returns the key shown once, on the list it redirects to. Reloading that page
    /// creates nothing and shows the key no more.
    async fn create_key(&self, name: &str, kind: &str, env: &str) -> String {
        if self.path().await != "/keys" {
            self.goto("/keys").await;
        }
        self.submit("a#create-key-link", Confirm::No).await;
        assert_eq!(self.path().await, "/keys/new");
        self.fill("form#create-key input[name=name]", name).await;
        self.must_find("form#create-key select[name=type]")
            .await
            .select_by_value(kind)
            .await
            .unwrap();
        self.must_find("form#create-key select[name=environment]")
            .await
            .select_by_value(env)
            .await
            .unwrap();
        for optional in [
            "input[name=expires_on][type=date]",
            "textarea[name=permissions]",
            "textarea[name=allowed_origins]",
            "textarea[name=allowed_ips]",
        ] {
            assert!(
                self.exists(&format!("form#create-key {optional}")).await,
                "form#create-key has {optional}"
            );
        }
        self.submit("button#create-key-submit", Confirm::No).await;
        assert_eq!(self.path().await, "/keys", "creating lands on the list");
        let key = self
            .new_secret("#new-key", "code#new-key-value", "#copy-key")
            .await;
        assert!(self
            .text("#messages")
            .await
            .contains(&format!("Key “{name}” created.")));
        let names = |html: String| html.matches(&format!(">{name}</a>")).count();
        let listed = names(self.c.source().await.unwrap());
        self.c.refresh().await.unwrap();
        self.settle().await;
        assert!(
            !self.exists("#new-key").await,
            "a reload shows the key no more"
        );
        assert_eq!(
            names(self.c.source().await.unwrap()),
            listed,
            "a reload creates no second key"
        );
        key
    }

    /// The secret shown once in `section`, after checking its warning and copy button.
    async fn new_secret(&self, section: &str, value: &str, copy: &str) -> String {
        let box_text = self.text(section).await;
        assert!(
            box_text.to_lowercase().contains("shown again"),
            "{section} warns that it cannot be shown again: {box_text}"
        );
        if !copy.is_empty() {
            assert!(
                self.exists(&format!("{section} button{copy}")).await,
                "{section} has {copy}"
            );
        }
        self.text(&format!("{section} {value}"))
            .await
            .trim()
            .to_owned()
    }
}

/// A plain HTTP client with a cookie jar and no redirect following, for what a browser won't do.
struct Session {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// The attributes of the last `Set-Cookie: lk_session=…`, lower-cased.
    session_attrs: Vec<String>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

impl Session {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            session_attrs: Vec::new(),
        }
    }

    async fn sign_in(base: &str, email: &str, password: &str) -> Self {
        let mut s = Self::new(base);
        let page = s.get("/login").await;
        let csrf = hidden_csrf(&page.body).expect("the sign-in page has a csrf field");
        let r = s
            .post(
                "/login",
                &[("email", email), ("password", password), ("csrf", &csrf)],
            )
            .await;
        assert!(
            r.status.is_redirection(),
            "sign-in redirects: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.location().ends_with("/keys"),
            "sign-in leads to /keys: {}",
            r.location()
        );
        assert!(
            s.cookies.contains_key("lk_session"),
            "sign-in sets lk_session"
        );
        assert!(
            s.session_attrs.iter().any(|a| a == "httponly"),
            "{:?}",
            s.session_attrs
        );
        assert!(
            s.session_attrs.iter().any(|a| a == "samesite=lax"),
            "{:?}",
            s.session_attrs
        );
        s
    }

    async fn get(&mut self, path: &str) -> Page {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.send(rb).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let rb = self.http.post(format!("{}{path}", self.base)).form(fields);
        self.send(rb).await
    }

    async fn post_owned(&mut self, path: &str, fields: Vec<(String, String)>) -> Page {
        let rb = self.http.post(format!("{}{path}", self.base)).form(&fields);
        self.send(rb).await
    }

    async fn send(&mut self, mut rb: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            rb = rb.header("cookie", header);
        }
        let r = rb.send().await.expect("request reaches the server");
        let status = r.status();
        let headers = r.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let mut parts = sc.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let attrs: Vec<String> = parts.map(str::to_lowercase).collect();
            let expired = value.is_empty() || attrs.iter().any(|a| a == "max-age=0");
            if name == "lk_session" {
                self.session_attrs = attrs;
            }
            if expired {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = r.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }
}

/// The value of the first hidden `csrf` input in an HTML page.
fn hidden_csrf(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(start) = rest.find("<input") {
        let tag_end = rest[start..].find('>')? + start;
        let tag = &rest[start..tag_end];
        if tag.contains("name=\"csrf\"") {
            let v = tag.split_once("value=\"")?.1;
            let v = &v[..v.find('"')?];
            return Some(v.replace("&amp;", "&"));
        }
        rest = &rest[tag_end..];
    }
    None
}

/// The pages people expect (SPEC §7), at a desktop's 1280 px and a phone's 390 px, light and
/// dark: nothing wider than the screen or cut off, every control labelled, no text clipped in
/// its control, no word broken in a table, no table wider than its card on a desktop (also for
/// a used portal link's page and the 403 page); the list of 120 keys searched, paged and
/// filtered, with owners for an admin and only their own keys for a developer; a refused form
/// that keeps what was typed and says what to change beside the field; a key edited from its
/// page (name, enabled, metadata, permissions, allowed IPs and origins, expiry, each checked
/// through the API); a token generated once however often the page is reloaded, from a picker
/// offering each key once; the HTML 404; the last admin kept; a role change confirmed in words
/// and shown in the audit log as from → to, paged to older events; a portal link used once.
/// Screenshots of every page in all four looks go to `target/screenshots/`, and whole pages
/// for docs/screenshots as `doc-*.png`.
#[tokio::test]
async fn every_page_fits_and_works_as_people_expect() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    let ws = srv.workspace_of(&srv.admin_key).await;
    for i in 0..120 {
        srv.post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": format!("bulk key {i:03}"), "environment": "test"}),
        )
        .await
        .expect(201);
    }
    let (member, _) = srv.member_with_key(&ws, "developer").await;
    let for_tokens = srv
        .post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "token source", "environment": "test"}),
        )
        .await
        .expect(201);
    let key_id = for_tokens["id"].as_str().unwrap().to_owned();
    let hook = srv
        .post(
            "/v1/webhooks",
            &srv.admin_key,
            json!({"url": "https://example.invalid/hook", "events": ["key.*"], "description": "ops"}),
        )
        .await
        .expect(201);
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let seed = Seed::plant(&srv, &ws, for_tokens["key"].as_str().unwrap(), &member).await;
    let pages = [
        ("keys", "/keys".to_owned()),
        ("key-new", "/keys/new".to_owned()),
        ("key", format!("/keys/{key_id}")),
        ("tokens", "/tokens".to_owned()),
        ("members", "/members".to_owned()),
        ("member", format!("/members/{member}")),
        ("settings", "/settings".to_owned()),
        ("webhooks", "/webhooks".to_owned()),
        ("webhook", format!("/webhooks/{hook_id}")),
        ("audit", "/audit".to_owned()),
        ("account", "/account".to_owned()),
        ("not-found", "/no/such/page".to_owned()),
        ("portal-used", seed.used_portal_path.clone()),
    ];
    for dark in [false, true] {
        let browser = if dark {
            Browser::start_with(&["--force-dark-mode"]).await
        } else {
            Browser::start().await
        };
        let c = browser.client.clone();
        browser
            .run("failure-pages", async {
                let web = Web {
                    c: &c,
                    base: &srv.url,
                };
                let look = if dark { "dark" } else { "light" };
                web.goto("/login").await;
                for (w, h) in [(1280, 900), (390, 844)] {
                    c.set_window_size(w, h).await.unwrap();
                    web.fits(&format!("login-{w}-{look}")).await;
                }
                c.set_window_size(1280, 900).await.unwrap();
                web.sign_in(&srv.admin_email, &srv.admin_password).await;
                let background = web.style("body", "background-color").await;
                assert_eq!(
                    background,
                    if dark {
                        "rgb(15, 17, 21)"
                    } else {
                        "rgb(246, 247, 249)"
                    },
                    "the page follows prefers-color-scheme ({look})"
                );
                let ink = web.style("h1", "color").await;
                assert_ne!(ink, background, "text stands out from the page");
                for (name, path) in &pages {
                    for (w, h) in [(1280, 900), (390, 844)] {
                        c.set_window_size(w, h).await.unwrap();
                        web.goto(path).await;
                        web.fits(&format!("{name}-{w}-{look}")).await;
                    }
                }
                // The 403 page, as a developer meets it.
                c.set_window_size(1280, 900).await.unwrap();
                web.goto("/keys").await;
                web.submit("button#sign-out", Confirm::No).await;
                web.sign_in(&seed.dana_email, DANA_PASSWORD).await;
                for (w, h) in [(1280, 900), (390, 844)] {
                    c.set_window_size(w, h).await.unwrap();
                    web.goto("/members").await;
                    assert_eq!(web.text("h1").await.trim(), "Not allowed");
                    web.fits(&format!("forbidden-{w}-{look}")).await;
                }
                c.set_window_size(1280, 900).await.unwrap();
                web.submit("button#sign-out", Confirm::No).await;
                if !dark {
                    web.sign_in(&srv.admin_email, &srv.admin_password).await;
                    flows(&srv, &web, &key_id, &seed).await;
                }
            })
            .await;
    }
}

const DANA_PASSWORD: &str = "dana's long passphrase";
const SHOP_URL: &str = "https://shop.example.org/settings?tab=keys";

/// What [`every_page_fits_and_works_as_people_expect`] sets up through the API besides its
/// bulk keys, so that its pages show something and its flows have someone to act on.
struct Seed {
    /// A developer who signs in, with a live and a test key of her own.
    dana: String,
    dana_email: String,
    dana_keys: std::collections::BTreeSet<String>,
    /// A developer whose role the flows change.
    robin: String,
    robin_email: String,
    /// A publishable key (allowed origins), a disabled one and a revoked one.
    widget: String,
    paused: String,
    retired: String,
    /// A portal link already used: its page is the refusal.
    used_portal_path: String,
}

impl Seed {
    async fn plant(srv: &TestServer, ws: &str, token_source: &str, member: &str) -> Self {
        let person = |name: &str, password: Option<&str>| {
            let email = format!(
                "{}-{}@example.com",
                name.split(' ').next().unwrap().to_lowercase(),
                random_suffix()
            );
            let mut body = json!({"email": email, "name": name});
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            async move {
                let id = srv
                    .post("/v1/users", &srv.admin_key, body)
                    .await
                    .expect(201)["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                srv.set_member(ws, &id, "developer").await;
                (id, email)
            }
        };
        let (dana, dana_email) = person("Dana Developer", Some(DANA_PASSWORD)).await;
        let (robin, robin_email) = person("Robin Role", None).await;
        let mut dana_keys = std::collections::BTreeSet::new();
        for (name, env) in [("Dana live key", "live"), ("Dana test key", "test")] {
            let k = srv
                .key_for(ws, &dana, json!({"name": name, "environment": env}))
                .await;
            dana_keys.insert(k["id"].as_str().unwrap().to_owned());
        }
        let key = |body: Value| async move {
            srv.post("/v1/keys", &srv.admin_key, body).await.expect(201)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let widget = key(json!({"name": "web widget", "type": "publishable", "environment": "live", "allowed_origins": ["https://shop.example.com"]})).await;
        let paused = key(json!({"name": "paused key", "environment": "live"})).await;
        srv.patch(
            &format!("/v1/keys/{paused}"),
            &srv.admin_key,
            json!({"enabled": false}),
        )
        .await
        .expect(200);
        let retired = key(json!({"name": "retired key", "environment": "test"})).await;
        let r = srv
            .delete(&format!("/v1/keys/{retired}"), &srv.admin_key)
            .await;
        assert!(r.status.is_success(), "revoking: {}", r.body);
        srv.post("/v1/tokens", token_source, json!({"name": "Deploy bot"}))
            .await
            .expect(201);
        let link = srv
            .post(
                "/v1/portal/sessions",
                &srv.admin_key,
                json!({"user_id": member, "workspace_id": ws, "return_url": SHOP_URL}),
            )
            .await
            .expect(201)["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let used = no_redirects.get(&link).send().await.unwrap();
        assert_eq!(
            used.status(),
            StatusCode::SEE_OTHER,
            "the link signs in once"
        );
        let used_portal_path = reqwest::Url::parse(&link).unwrap().path().to_owned();
        Self {
            dana,
            dana_email,
            dana_keys,
            robin,
            robin_email,
            widget,
            paused,
            retired,
            used_portal_path,
        }
    }
}

/// The flows of [`every_page_fits_and_works_as_people_expect`], in the light browser.
async fn flows(srv: &TestServer, web: &Web<'_>, key_id: &str, seed: &Seed) {
    let c = web.c;
    // The HTML 404, for a person; the API's paths keep their problem+json.
    web.goto("/no/such/page").await;
    assert_eq!(web.text("h1").await.trim(), "Page not found");
    let r = reqwest::get(format!("{}/v1/no-such-thing", srv.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));

    // The keyboard: the first Tab reaches "Skip to content", which moves focus to the page's
    // content; messages are announced from a live region.
    web.goto("/keys").await;
    web.must_find("body")
        .await
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = || async {
        c.execute(
            "return document.activeElement.className + '#' + document.activeElement.id",
            vec![],
        )
        .await
        .unwrap()
    };
    assert_eq!(
        focused().await,
        json!("skip#"),
        "the first Tab reaches the skip link"
    );
    web.must_find("a.skip")
        .await
        .send_keys("\u{E007}")
        .await
        .unwrap();
    assert_eq!(
        focused().await,
        json!("#content"),
        "Enter on it moves focus to the content"
    );
    assert_eq!(
        web.must_find("#messages")
            .await
            .attr("aria-live")
            .await
            .unwrap()
            .as_deref(),
        Some("polite")
    );

    // 122 keys: 25 a page, in order, each once; the search finds by name.
    web.goto("/keys").await;
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = 0;
    loop {
        pages += 1;
        let rows = c
            .find_all(Locator::Css("table#keys tbody tr"))
            .await
            .unwrap();
        assert!(rows.len() <= 25, "at most 25 a page: {}", rows.len());
        for r in &rows {
            let id = r.attr("data-key-id").await.unwrap().unwrap();
            assert!(seen.insert(id.clone()), "{id} on two pages");
        }
        if !web.exists("a#next-page").await {
            break;
        }
        web.submit("a#next-page", Confirm::No).await;
        assert!(
            web.exists("a#first-page").await,
            "a way back to the first page"
        );
    }
    let total = srv.key_count(&srv.admin_key).await;
    assert_eq!(seen.len(), total, "every key, once");
    assert_eq!(pages, total.div_ceil(25));
    web.goto("/keys").await;
    web.fill("form#key-filters input[name=q]", "BULK KEY 11")
        .await;
    web.submit("button#filter-submit", Confirm::No).await;
    let rows = c
        .find_all(Locator::Css("table#keys tbody tr td.name"))
        .await
        .unwrap();
    let mut names = vec![];
    for r in rows {
        names.push(r.text().await.unwrap());
    }
    let want: Vec<String> = (110..120).rev().map(|i| format!("bulk key {i}")).collect();
    assert_eq!(
        names, want,
        "the search ignores case and finds exactly these"
    );
    assert_eq!(
        web.must_find("form#key-filters input[name=q]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("BULK KEY 11"),
        "the search box keeps what was searched"
    );

    // The filters narrow the list to exactly the keys they name, and keep what was chosen;
    // an admin sees each key's owner and can pick keys by owner.
    let all = srv
        .get("/v1/keys?limit=500", &srv.admin_key)
        .await
        .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    let ids_where = |field: &str, value: &str| -> std::collections::BTreeSet<String> {
        all.iter()
            .filter(|k| k[field] == value)
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (select, field, value, cell) in [
        ("#f-env", "environment", "live", "td.environment"),
        ("#f-type", "type", "publishable", "td.type"),
        ("#f-status", "status", "disabled", "td.status"),
        ("#f-status", "status", "revoked", "td.status"),
        ("#f-owner", "owner_id", seed.dana.as_str(), "td.owner"),
    ] {
        let want = ids_where(field, value);
        assert!(
            !want.is_empty() && want.len() < all.len(),
            "{field}={value} is a real filter here: {want:?}"
        );
        web.goto("/keys").await;
        web.must_find(select)
            .await
            .select_by_value(value)
            .await
            .unwrap();
        web.submit("button#filter-submit", Confirm::No).await;
        let rows = web.listed_keys().await;
        let got: std::collections::BTreeSet<String> =
            rows.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(got, want, "{select}={value} lists exactly those keys");
        let shown = if field == "owner_id" {
            seed.dana_email.as_str()
        } else {
            value
        };
        for (id, row) in &rows {
            let text = web.cell(row, cell).await;
            assert!(
                text.to_lowercase().contains(shown),
                "{id} shows {shown} in {cell}: {text}"
            );
        }
        assert_eq!(
            web.must_find(select)
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some(value),
            "{select} keeps what was chosen"
        );
        assert!(
            web.exists("a#filter-clear").await,
            "a way to clear the filters"
        );
    }
    web.goto("/keys").await;
    let admin_email = srv.admin_email.to_lowercase();
    let row = web.key_row(key_id).await;
    assert_eq!(
        web.cell(&row, "td.owner").await,
        admin_email,
        "the owner, for an admin"
    );
    web.shot("doc-keys").await;

    // A refused form: the error beside its field in plain words, what was typed kept.
    let before = srv.key_count(&srv.admin_key).await;
    web.goto("/keys/new").await;
    web.fill("form#create-key input[name=name]", "Typed name")
        .await;
    web.fill(
        "form#create-key textarea[name=permissions]",
        "documents:read\ndocs read",
    )
    .await;
    web.submit("button#create-key-submit", Confirm::No).await;
    let error = web.text("#key-perms-error").await;
    assert!(
        error.contains("“docs read” is not valid") && error.contains("documents:read"),
        "{error}"
    );
    assert_eq!(
        web.must_find("#key-perms")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true"),
        "the field is marked for screen readers"
    );
    let kept = |css: &'static str| async move {
        web.must_find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(kept("#key-name").await, "Typed name");
    assert_eq!(kept("#key-perms").await, "documents:read\ndocs read");
    assert_eq!(
        srv.key_count(&srv.admin_key).await,
        before,
        "nothing was created"
    );
    web.shot("key-new-refused").await;

    // Edit and disable from the key's page: verify answers DISABLED; enable it again.
    let key = srv
        .post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "to edit", "environment": "test"}),
        )
        .await
        .expect(201);
    let (id, secret) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());
    web.goto(&format!("/keys/{id}")).await;
    web.fill("#edit-name", "edited in the browser").await;
    web.must_find("#edit-enabled").await.click().await.unwrap();
    web.fill("#edit-metadata", "{\"plan\": \"pro\"}").await;
    web.submit("button#edit-key-submit", Confirm::No).await;
    assert_eq!(web.path().await, format!("/keys/{id}"));
    assert!(web
        .text("#messages")
        .await
        .contains("Key “edited in the browser” saved."));
    let v = srv.verify(json!({"key": secret})).await;
    assert_eq!(v["code"], "DISABLED", "{v}");
    let api = srv
        .get(&format!("/v1/keys/{id}"), &srv.admin_key)
        .await
        .expect(200);
    assert_eq!(api["name"], "edited in the browser");
    assert_eq!(api["metadata"], json!({"plan": "pro"}));
    assert_eq!(
        api["expires_at"],
        Value::Null,
        "what was not touched is not sent"
    );
    web.must_find("#edit-enabled").await.click().await.unwrap();
    web.submit("button#edit-key-submit", Confirm::No).await;
    assert_eq!(srv.verify(json!({"key": secret})).await["code"], "VALID");
    web.fill("#edit-metadata", "not json").await;
    web.submit("button#edit-key-submit", Confirm::No).await;
    assert!(web
        .text("#edit-metadata-error")
        .await
        .contains("JSON object"));
    assert_eq!(kept("#edit-metadata").await, "not json");

    // Permissions, allowed IP addresses and the expiry, from the same form: each reaches the
    // API, and the page shows them afterwards.
    web.goto(&format!("/keys/{id}")).await;
    web.fill("#edit-perms", "documents:read\ndocuments:write")
        .await;
    web.fill("#edit-ips", "203.0.113.7\n10.0.0.0/8").await;
    web.set_date("#edit-expires", "2027-06-30").await;
    web.submit("button#edit-key-submit", Confirm::No).await;
    assert!(
        web.text("#messages")
            .await
            .contains("Key “edited in the browser” saved."),
        "{}",
        web.text("main").await
    );
    let api = srv
        .get(&format!("/v1/keys/{id}"), &srv.admin_key)
        .await
        .expect(200);
    assert_eq!(
        api["permissions"],
        json!(["documents:read", "documents:write"]),
        "{api}"
    );
    assert_eq!(
        api["allowed_ips"],
        json!(["203.0.113.7/32", "10.0.0.0/8"]),
        "an address is a block of one: {api}"
    );
    let expires = chrono::DateTime::parse_from_rfc3339(api["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        expires.format("%Y-%m-%d %H:%M:%S").to_string(),
        "2027-06-30 23:59:59",
        "the end of the chosen day, UTC"
    );
    assert_eq!(api["metadata"], json!({"plan": "pro"}), "untouched, kept");
    assert_eq!(api["name"], "edited in the browser");
    assert_eq!(kept("#edit-perms").await, "documents:read\ndocuments:write");
    assert_eq!(kept("#edit-ips").await, "203.0.113.7/32\n10.0.0.0/8");
    assert_eq!(kept("#edit-expires").await, "2027-06-30");
    assert!(
        web.text("#key-facts .expires").await.contains("2027-06-30"),
        "the facts show the expiry"
    );
    web.shot_full("doc-key").await;
    // A publishable key's allowed origins.
    web.goto(&format!("/keys/{}", seed.widget)).await;
    web.fill(
        "#edit-origins",
        "https://shop.example.com\nhttps://app.example.com",
    )
    .await;
    web.submit("button#edit-key-submit", Confirm::No).await;
    assert!(web
        .text("#messages")
        .await
        .contains("Key “web widget” saved."));
    let api = srv
        .get(&format!("/v1/keys/{}", seed.widget), &srv.admin_key)
        .await
        .expect(200);
    assert_eq!(
        api["allowed_origins"],
        json!(["https://shop.example.com", "https://app.example.com"]),
        "{api}"
    );

    // A token generated once, however often the page is reloaded; with the lifetime chosen.
    web.goto("/tokens").await;
    let offered = web.options("form#generate-token select[name=key_id]").await;
    assert_offered_once(&offered);
    assert!(
        offered.iter().any(|(v, _, _)| v == key_id),
        "the token source is offered: {offered:?}"
    );
    assert!(
        !offered
            .iter()
            .any(|(v, _, _)| *v == seed.paused || *v == seed.retired || *v == seed.widget),
        "disabled, revoked and publishable keys are not offered: {offered:?}"
    );
    web.must_find("form#generate-token select[name=key_id]")
        .await
        .select_by_value(key_id)
        .await
        .unwrap();
    web.must_find("#token-lifetime")
        .await
        .select_by_value("7")
        .await
        .unwrap();
    web.fill("#token-name", "reload me").await;
    web.submit("button#generate-token-submit", Confirm::No)
        .await;
    let token = web
        .new_secret("#new-token", "code#new-token-value", "#copy-token")
        .await;
    let me = srv.get("/v1/me", &token).await.expect(200);
    let expires = me["credential"]["expires_at"].as_str().unwrap().to_owned();
    let seven_days = chrono::Utc::now() + chrono::Duration::days(7);
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    assert!(
        (expires.timestamp() - seven_days.timestamp()).abs() < 120,
        "the token lives the 7 days chosen: {expires}"
    );
    let count = || async {
        srv.get("/v1/tokens?limit=500", &srv.admin_key)
            .await
            .expect(200)["data"]
            .as_array()
            .unwrap()
            .len()
    };
    let tokens = count().await;
    for _ in 0..2 {
        c.refresh().await.unwrap();
        web.settle().await;
    }
    assert_eq!(count().await, tokens, "reloading generates nothing");
    assert!(!web.exists("#new-token").await);
    let row = web
        .must_find(&format!(
            "table#tokens tr[data-token-id=\"{}\"] td.from-key",
            me["credential"]["id"].as_str().unwrap()
        ))
        .await;
    let source = row.text().await.unwrap();
    let redacted = all
        .iter()
        .find(|k| k["id"] == key_id)
        .and_then(|k| k["redacted"].as_str())
        .unwrap();
    assert!(
        source.contains("token source") && source.contains(redacted),
        "the source key is named, with its redacted form ({redacted}): {source}"
    );
    let href = web
        .find_in(&row, "a")
        .await
        .expect("the source key is a link")
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(href.ends_with(&format!("/keys/{key_id}")), "{href}");
    web.shot_full("doc-tokens").await;

    // The last admin stays: demoting yourself as the only admin is refused (409), in words.
    let mine = srv.admin_user_id.clone();
    web.goto("/members").await;
    let row = web
        .must_find(&format!("table#members tr[data-user-id=\"{mine}\"]"))
        .await;
    web.must_find_in(&row, "form.change-role select[name=role]")
        .await
        .select_by_value("developer")
        .await
        .unwrap();
    let button = web.must_find_in(&row, "form.change-role button").await;
    web.submit_el(&button, Confirm::Required).await;
    assert!(
        web.text(".flash.error").await.contains("last admin"),
        "{}",
        web.text("main").await
    );
    assert_eq!(
        member_role(srv, &srv.workspace_of(&srv.admin_key).await, &mine)
            .await
            .as_deref(),
        Some("admin")
    );
    let mut http = Session::sign_in(&srv.url, &srv.admin_email, &srv.admin_password).await;
    let page = http.get("/members").await;
    let csrf = hidden_csrf(&page.body).unwrap();
    let r = http
        .post(
            &format!("/members/{mine}/role"),
            &[("csrf", &csrf), ("role", "developer")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "the page answers 409");

    // Each role's permissions in words; `*` is the API's permissions, not Latchkey's own.
    web.goto("/members").await;
    let words = |role: &'static str| async move {
        let mut out = vec![];
        for li in web
            .c
            .find_all(Locator::Css(&format!("ul#role-words-{role} li")))
            .await
            .unwrap()
        {
            out.push(li.text().await.unwrap().trim().to_owned());
        }
        out
    };
    let apis = "every permission of your API (none of Latchkey's own)";
    assert_eq!(
        words("developer").await,
        [apis, "create and manage their own API keys and tokens"]
    );
    assert_eq!(
        words("admin").await,
        [
            apis,
            "everything in Latchkey (keys, members, audit log, verification)"
        ]
    );
    assert!(web
        .text("label[for=role-perms-developer]")
        .await
        .contains("(built in)"));

    // A role change, confirmed, then said in words; the member's role follows at once.
    let row = web
        .must_find(&format!(
            "table#members tr[data-user-id=\"{}\"]",
            seed.robin
        ))
        .await;
    web.must_find_in(&row, "form.change-role select[name=role]")
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    let button = web.must_find_in(&row, "form.change-role button").await;
    web.submit_el(&button, Confirm::Required).await;
    assert_eq!(web.path().await, "/members");
    assert_eq!(
        web.text("#messages .flash.ok").await.trim(),
        format!("{} is now admin (was developer).", seed.robin_email)
    );
    assert_eq!(
        member_role(srv, &srv.workspace_of(&srv.admin_key).await, &seed.robin)
            .await
            .as_deref(),
        Some("admin")
    );
    web.shot_full("doc-members").await;

    // Audit: from → to beside the person's name and email, to the second in UTC, newest
    // first; older events a page further.
    web.goto("/audit").await;
    let newest = web.audit_rows().await;
    assert_eq!(newest.len(), 50, "50 a page");
    let change = newest
        .iter()
        .find(|r| r.action == "member.role_changed" && r.target_id == seed.robin)
        .unwrap_or_else(|| panic!("the role change is logged: {newest:?}"));
    assert_eq!(change.change, "developer → admin", "{change:?}");
    assert!(
        change.target.contains("Robin Role") && change.target.contains(&seed.robin_email),
        "the member by name and email, beside the id: {change:?}"
    );
    assert!(
        change.actor.contains(&admin_email) && change.actor.contains("Dashboard"),
        "who, and with which credential: {change:?}"
    );
    for r in &newest {
        let when =
            r.at.strip_suffix(" UTC")
                .unwrap_or_else(|| panic!("the time zone is shown: {r:?}"));
        assert!(
            chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M:%S").is_ok(),
            "to the second: {r:?}"
        );
    }
    assert!(
        newest.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first: {newest:?}"
    );
    web.shot("doc-audit").await;
    web.submit("a#audit-next", Confirm::No).await;
    let older = web.audit_rows().await;
    assert!(!older.is_empty(), "the next page has events");
    let first: std::collections::BTreeSet<_> = newest
        .iter()
        .map(|r| (&r.at, &r.action, &r.target_id))
        .collect();
    assert!(
        older
            .iter()
            .all(|r| !first.contains(&(&r.at, &r.action, &r.target_id))),
        "the next page shows other events: {older:?}"
    );
    assert!(
        older.iter().all(|r| r.at <= newest[newest.len() - 1].at),
        "and older ones: {older:?}"
    );
    assert!(
        web.exists("a#audit-first").await,
        "a way back to the newest"
    );

    // Audit: from → to, emails beside ids, filter by a person's email.
    web.goto("/audit").await;
    let text = web.text("table#audit").await;
    assert!(text.contains("key “edited in the browser”"), "{text}");
    web.fill("#f-person", &srv.admin_email).await;
    web.submit("button#audit-filter-submit", Confirm::No).await;
    assert!(web.exists("table#audit tbody tr").await);
    web.fill("#f-person", "nobody@example.com").await;
    web.submit("button#audit-filter-submit", Confirm::No).await;
    assert!(web
        .text(".flash.error")
        .await
        .contains("nobody@example.com"));

    // A developer sees only their own keys, without an owner column or filter.
    web.submit("button#sign-out", Confirm::No).await;
    web.sign_in(&seed.dana_email, DANA_PASSWORD).await;
    let rows = web.listed_keys().await;
    let mine: std::collections::BTreeSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        mine, seed.dana_keys,
        "a developer's list: their keys, every one"
    );
    assert!(!web.exists("#f-owner").await && !web.exists("table#keys td.owner").await);
    assert!(
        !web.text("table#keys thead")
            .await
            .to_lowercase()
            .contains("owner"),
        "no owner column for one's own keys"
    );
    web.submit("button#sign-out", Confirm::No).await;

    // A portal link (SPEC §7) signs its person in, once, and the header leads back to the
    // product; Latchkey does not go there by itself.
    let ws = srv.workspace_of(&srv.admin_key).await;
    let link = srv
        .post(
            "/v1/portal/sessions",
            &srv.admin_key,
            json!({"user_id": seed.dana, "workspace_id": ws, "return_url": SHOP_URL}),
        )
        .await
        .expect(201)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    c.goto(&link).await.unwrap();
    web.settle().await;
    let here = c.current_url().await.unwrap();
    assert_eq!(
        (here.host_str(), here.path()),
        (reqwest::Url::parse(&srv.url).unwrap().host_str(), "/keys"),
        "the link lands on the keys page, not on the product"
    );
    assert_eq!(web.text("a#nav-account").await.trim(), seed.dana_email);
    let back = web.must_find("header a#back-to-product").await;
    assert_eq!(
        back.text().await.unwrap().trim(),
        "← Back to shop.example.org"
    );
    assert_eq!(
        back.attr("href").await.unwrap().as_deref(),
        Some(SHOP_URL),
        "it links to the return_url"
    );
    web.shot("doc-portal").await;
    c.goto(&link).await.unwrap();
    web.settle().await;
    assert_eq!(web.text("h1").await.trim(), "Link used or expired");
    assert!(
        web.text("#portal-message")
            .await
            .contains("shop.example.org"),
        "the refusal says where to go back to"
    );
    assert_eq!(
        web.must_find("a#back-to-product")
            .await
            .attr("href")
            .await
            .unwrap()
            .as_deref(),
        Some(SHOP_URL)
    );
}

/// A row of the audit log as it reads.
#[derive(Debug)]
struct AuditLine {
    at: String,
    action: String,
    actor: String,
    target: String,
    target_id: String,
    change: String,
}

/// Each key picker option once: no value and no text twice.
fn assert_offered_once(offered: &[(String, String, String)]) {
    let values: std::collections::BTreeSet<_> = offered.iter().map(|(v, _, _)| v).collect();
    let texts: std::collections::BTreeSet<_> = offered.iter().map(|(_, t, _)| t).collect();
    assert!(
        values.len() == offered.len() && texts.len() == offered.len(),
        "each key is offered once, under a name of its own: {offered:?}"
    );
}

impl Web<'_> {
    /// The page is no wider than the window and nothing on it is cut off at either edge; then
    /// a screenshot named `name`.
    async fn fits(&self, name: &str) {
        let report = self
            .c
            .execute(
                r#"
                const width = document.documentElement.clientWidth;
                const wide = document.documentElement.scrollWidth;
                const cut = [];
                for (const el of document.querySelectorAll('button, a, input, select, textarea, code, h1, td, th')) {
                  const r = el.getBoundingClientRect();
                  if (r.width === 0 || getComputedStyle(el).visibility === 'hidden') continue;
                  if (el.closest('.table-wrap') && el.closest('table')) {
                    const wrap = el.closest('.table-wrap').getBoundingClientRect();
                    if (r.right > wrap.right + 1 && !['TD', 'TH', 'CODE'].includes(el.tagName)) cut.push(el.outerHTML.slice(0, 80));
                    continue;
                  }
                  if (r.left < -1 || r.right > width + 1) cut.push(el.outerHTML.slice(0, 80));
                }
                // Every control a person can use has a name a screen reader reads out.
                const unlabelled = [];
                for (const el of document.querySelectorAll('input, select, textarea')) {
                  if (el.type === 'hidden') continue;
                  const named = (el.id && document.querySelector('label[for="' + el.id + '"]'))
                    || el.closest('label') || el.getAttribute('aria-label');
                  if (!named) unlabelled.push(el.outerHTML.slice(0, 80));
                }
                for (const el of document.querySelectorAll('button, a')) {
                  if (!el.textContent.trim() && !el.getAttribute('aria-label')) unlabelled.push(el.outerHTML.slice(0, 80));
                }
                // Text cut off inside its control: a button or link wider inside than its box,
                // or a select whose chosen option does not fit beside its arrow.
                const measure = document.createElement('canvas').getContext('2d');
                const textWidth = (el, text) => {
                  const s = getComputedStyle(el);
                  measure.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
                  return measure.measureText(text).width;
                };
                const clipped = [];
                for (const el of document.querySelectorAll('button, a, select')) {
                  const r = el.getBoundingClientRect();
                  if (r.width === 0 || getComputedStyle(el).visibility === 'hidden' || el.closest('.sr-only')) continue;
                  if (el.tagName === 'SELECT') {
                    const chosen = el.options[el.selectedIndex];
                    if (!chosen) continue;
                    const s = getComputedStyle(el);
                    // Chromium draws the arrow inside the padding box, about 20 px wide.
                    const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - 20;
                    const need = textWidth(el, chosen.text);
                    if (need > room + 1) clipped.push(`${el.outerHTML.slice(0, 60)} needs ${Math.ceil(need)} px, has ${Math.floor(room)}`);
                  } else if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline') {
                    clipped.push(el.outerHTML.slice(0, 80));
                  }
                }
                // A single word in a table cell (an action's name, an id, a status) broken
                // across lines although its table would have room for it on one.
                const broken = [];
                for (const el of document.querySelectorAll('td code, td .pill')) {
                  const text = el.textContent.trim();
                  if (!text || /\s/.test(text) || el.getClientRects().length < 2) continue;
                  const cell = el.closest('td');
                  const room = getComputedStyle(cell).display === 'block'
                    ? cell.clientWidth
                    : (el.closest('.table-wrap') || el.closest('table')).clientWidth / 3;
                  if (textWidth(el, text) <= room) broken.push(el.outerHTML.slice(0, 80));
                }
                // On a desktop a table fits its card: nothing is hidden off to the side.
                const sideways = [];
                if (width >= 900) {
                  for (const wrap of document.querySelectorAll('.table-wrap')) {
                    if (wrap.scrollWidth > wrap.clientWidth + 1) sideways.push(`${wrap.firstElementChild.outerHTML.slice(0, 40)} is ${wrap.scrollWidth} px in ${wrap.clientWidth}`);
                  }
                }
                return {width, wide, cut, unlabelled, clipped, broken, sideways};
                "#,
                vec![],
            )
            .await
            .unwrap();
        let width = report["width"].as_i64().unwrap();
        let wide = report["wide"].as_i64().unwrap();
        assert!(
            wide <= width,
            "{name}: the page is {wide} px wide in a {width} px window"
        );
        assert_eq!(report["cut"], json!([]), "{name}: cut off at {width} px");
        assert_eq!(
            report["unlabelled"],
            json!([]),
            "{name}: controls without a label a screen reader can read out"
        );
        assert_eq!(
            report["clipped"],
            json!([]),
            "{name}: text cut off inside its control at {width} px"
        );
        assert_eq!(
            report["broken"],
            json!([]),
            "{name}: a word broken across lines in a table at {width} px"
        );
        assert_eq!(
            report["sideways"],
            json!([]),
            "{name}: a table wider than its card at {width} px"
        );
        self.shot(name).await;
    }

    /// The rows of `table#keys` (all on one page): each key's id and row.
    async fn listed_keys(&self) -> Vec<(String, Element)> {
        assert!(
            !self.exists("a#next-page").await,
            "the list fits one page here"
        );
        let mut out = vec![];
        for r in self
            .c
            .find_all(Locator::Css("table#keys tbody tr"))
            .await
            .unwrap()
        {
            out.push((r.attr("data-key-id").await.unwrap().unwrap(), r));
        }
        out
    }

    /// A select's options: value, text and the label of its group.
    async fn options(&self, select: &str) -> Vec<(String, String, String)> {
        let mut out = vec![];
        for o in self
            .c
            .find_all(Locator::Css(&format!("{select} option")))
            .await
            .unwrap()
        {
            let group = self
                .c
                .execute(
                    "return arguments[0].parentElement.label || ''",
                    vec![serde_json::to_value(&o).unwrap()],
                )
                .await
                .unwrap();
            out.push((
                o.attr("value").await.unwrap().unwrap_or_default(),
                o.text().await.unwrap().trim().to_owned(),
                group.as_str().unwrap_or_default().to_owned(),
            ));
        }
        out
    }

    async fn audit_rows(&self) -> Vec<AuditLine> {
        let mut out = vec![];
        for r in self
            .c
            .find_all(Locator::Css("table#audit tbody tr"))
            .await
            .unwrap()
        {
            out.push(AuditLine {
                at: self.cell(&r, "td.at").await,
                action: self.cell(&r, "td.action").await,
                actor: self.cell(&r, "td.actor").await,
                target: self.cell(&r, "td.target").await,
                target_id: self.cell(&r, "td.target code").await,
                change: self.cell(&r, "td.change").await,
            });
        }
        out
    }

    /// A date field set as its picker would (typing into one depends on the browser's locale).
    async fn set_date(&self, css: &str, date: &str) {
        self.c
            .execute(
                "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
                 e.dispatchEvent(new Event('input', {bubbles: true})); \
                 e.dispatchEvent(new Event('change', {bubbles: true})); return e.value",
                vec![json!(css), json!(date)],
            )
            .await
            .unwrap();
    }

    /// A screenshot of the whole page (up to 2400 px tall) at 1280 px wide.
    async fn shot_full(&self, name: &str) {
        // The window's height includes what the browser itself takes of it.
        let sizes = self
            .c
            .execute(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .unwrap();
        let px = |i: usize| sizes[i].as_f64().unwrap_or(0.0) as u32;
        self.c
            .set_window_size(1280, (px(0) + px(1)).clamp(600, 2400))
            .await
            .unwrap();
        self.shot(name).await;
        self.c.set_window_size(1280, 900).await.unwrap();
    }

    /// An element's computed style property.
    async fn style(&self, css: &str, property: &str) -> String {
        self.c
            .execute(
                "return getComputedStyle(document.querySelector(arguments[0])).getPropertyValue(arguments[1])",
                vec![json!(css), json!(property)],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// SPEC §7 asks for pages usable without JavaScript and a revoke with confirmation: with
/// JavaScript off, "Revoke key" asks on a page of its own (which revokes nothing and can be
/// left), and only that page's button, a CSRF-protected form, revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_asks_first_without_javascript() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    let key = srv
        .post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "No-script key", "environment": "test"}),
        )
        .await
        .expect(201);
    let (id, secret) = (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let browser = Browser::start_without_javascript().await;
    let c = browser.client.clone();
    browser
        .run("failure-no-js", async {
            let web = Web {
                c: &c,
                base: &srv.url,
            };
            let works = || async { srv.get("/v1/me", &secret).await.status };
            web.sign_in(&srv.admin_email, &srv.admin_password).await;
            web.goto(&format!("/keys/{id}")).await;
            // No dialog (no script runs): the question is a page.
            web.submit("button#revoke-key-submit", Confirm::No).await;
            assert_eq!(web.path().await, format!("/keys/{id}/revoke"));
            assert_eq!(web.text("h1").await.trim(), "Revoke “No-script key”?");
            assert!(
                web.text("#confirm-revoke-card")
                    .await
                    .contains("cannot be undone"),
                "it says what revoking does"
            );
            assert_csrf_fields(&web).await;
            assert_eq!(works().await, StatusCode::OK, "asking revokes nothing");
            for (w, h) in [(1280, 900), (390, 844)] {
                c.set_window_size(w, h).await.unwrap();
                web.fits(&format!("key-revoke-{w}-light")).await;
            }
            c.set_window_size(1280, 900).await.unwrap();
            // Leaving the question keeps the key.
            web.submit("a#cancel-revoke", Confirm::No).await;
            assert_eq!(web.path().await, format!("/keys/{id}"));
            assert_eq!(works().await, StatusCode::OK, "cancelling keeps the key");
            // Confirming revokes it and says so.
            web.submit("button#revoke-key-submit", Confirm::No).await;
            web.submit("button#confirm-revoke-submit", Confirm::No)
                .await;
            assert_eq!(web.path().await, "/keys", "revoking lands on the list");
            assert!(web
                .text("#messages")
                .await
                .contains("Key “No-script key” revoked."));
            srv.get("/v1/me", &secret)
                .await
                .problem(401, "invalid_credentials");
            let api = srv
                .get(&format!("/v1/keys/{id}"), &srv.admin_key)
                .await
                .expect(200);
            assert_eq!(api["status"], "revoked");
        })
        .await;

    // The confirmation is a form like any other: without the session's CSRF token it is
    // refused, and the question itself needs the token too.
    let other = srv
        .post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "kept", "environment": "test"}),
        )
        .await
        .expect(201);
    let other_id = other["id"].as_str().unwrap();
    let mut s = Session::sign_in(&srv.url, &srv.admin_email, &srv.admin_password).await;
    let r = s
        .post(&format!("/keys/{other_id}/revoke"), &[("confirmed", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no csrf, no revoke");
    let page = s.get(&format!("/keys/{other_id}")).await;
    let csrf = hidden_csrf(&page.body).unwrap();
    let r = s
        .post(&format!("/keys/{other_id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "unconfirmed: the question");
    assert!(r.body.contains("id=\"confirm-revoke\""), "{}", r.body);
    srv.get("/v1/me", other["key"].as_str().unwrap())
        .await
        .expect(200);
}

/// A loopback webhook receiver that answers every request with 200 and counts them.
async fn hook_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(AtomicUsize::new(0));
    let seen = got.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// SPEC §12.1 in the dashboard: an admin adds an endpoint (its secret shown once), sees a
/// delivery with its response code, redelivers it, rotates the secret, moves and disables and
/// deletes the endpoint; a developer is refused; another workspace's endpoint is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_in_the_dashboard() {
    let srv = TestServer::start_with(&Backend::Sqlite, |c| {
        c.webhooks.allow_private_targets = true;
        c.webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
        c.webhooks.poll = Duration::from_millis(50);
    })
    .await;
    let browser = Browser::start().await;
    let c = browser.client.clone();
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    browser
        .run("failure-webhooks", async {
            let web = Web {
                c: &c,
                base: &srv.url,
            };
            webhooks_scenario(&srv, &web).await;
        })
        .await;
}

/// The endpoint page's first delivery row, once `done` says it is as expected (reloading).
async fn delivery_row_when(
    web: &Web<'_>,
    what: &str,
    done: impl Fn(&str, &str, &str) -> bool,
) -> Element {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(row) = web
            .c
            .find(Locator::Css("table#deliveries tr[data-delivery-id]"))
            .await
        {
            let status = web.cell(&row, "td.status").await;
            let response = web.cell(&row, "td.response").await;
            let attempts = web.cell(&row, "td.attempts").await;
            if done(&status, &response, &attempts) {
                return row;
            }
        }
        assert!(Instant::now() < deadline, "no delivery was {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        web.c.refresh().await.unwrap();
        web.settle().await;
    }
}

async fn webhooks_scenario(srv: &TestServer, web: &Web<'_>) {
    let c = web.c;
    let (receiver, received) = hook_receiver().await;
    web.sign_in(&srv.admin_email, &srv.admin_password).await;
    web.click_nav("a#nav-webhooks", "/webhooks").await;
    assert!(web.exists("#no-webhooks").await, "no endpoints yet");
    for ev in std::iter::once(&"*").chain(latchkey_core::webhooks::EVENTS) {
        assert!(
            web.exists(&format!(
                "form#create-webhook input[type=checkbox][name=events][value=\"{ev}\"]"
            ))
            .await,
            "the form offers {ev}"
        );
    }

    // --- Refused: not an http URL and no events; said next to each field, the typing kept.
    web.fill("#webhook-url", "ftp://example.com/hook").await;
    web.fill("#webhook-description", "Billing").await;
    web.submit("button#create-webhook-submit", Confirm::No)
        .await;
    assert_eq!(web.path().await, "/webhooks");
    assert!(web.exists("#form-errors").await);
    let url_error = web.text("#webhook-url-error").await;
    assert!(
        url_error.contains("absolute http or https URL"),
        "the URL's error in plain words: {url_error}"
    );
    let events_error = web.text("#webhook-events-error").await;
    assert!(
        events_error.contains("Choose at least one event"),
        "{events_error}"
    );
    let typed = |css: &'static str| async move {
        web.must_find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(typed("#webhook-url").await, "ftp://example.com/hook");
    assert_eq!(typed("#webhook-description").await, "Billing");
    web.shot("webhook-new-refused").await;

    // --- Added: the secret is shown once, with a copy button; a reload shows it no more.
    web.fill("#webhook-url", &receiver).await;
    web.must_find("#new-ev-key-created")
        .await
        .click()
        .await
        .unwrap();
    web.submit("button#create-webhook-submit", Confirm::No)
        .await;
    let hook_path = web.path().await;
    assert!(hook_path.starts_with("/webhooks/wh_"), "{hook_path}");
    let secret = web
        .new_secret("#new-secret", "code#new-secret-value", "#copy-secret")
        .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(!c.current_url().await.unwrap().as_str().contains(&secret));
    assert!(web.text("#messages").await.contains("Endpoint added."));
    assert_eq!(web.text("#webhook-facts .url").await.trim(), receiver);
    web.shot("webhook-created").await;
    c.refresh().await.unwrap();
    web.settle().await;
    assert!(
        !web.exists("#new-secret").await,
        "a reload shows it no more"
    );
    assert!(!c.source().await.unwrap().contains(&secret));
    web.goto("/webhooks").await;
    let row = web.must_find("table#webhooks tr[data-webhook-id]").await;
    assert_eq!(web.cell(&row, "td.description").await, "Billing");
    assert_eq!(web.cell(&row, "td.events").await, "key.created");
    assert_eq!(web.cell(&row, "td.status").await, "enabled");

    // --- A new key is an event; its delivery shows on the endpoint's page with the 200.
    web.create_key("hooked", "secret", "test").await;
    crate::harness::eventually(
        "the receiver got key.created",
        Duration::from_secs(20),
        || async { received.load(Ordering::SeqCst) >= 1 },
    )
    .await;
    web.goto(&hook_path).await;
    let row = delivery_row_when(web, "delivered", |s, r, _| s == "delivered" && r == "200").await;
    assert_eq!(web.cell(&row, "td.event-type").await, "key.created");
    assert_eq!(web.cell(&row, "td.attempts").await, "1");
    let event_id = web.cell(&row, "td.event-id").await;
    assert!(event_id.starts_with("evt_"), "{event_id}");
    web.shot("webhook").await;

    // --- Redeliver: a second attempt of the same event.
    let button = web.must_find_in(&row, "form.redeliver button").await;
    web.submit_el(&button, Confirm::No).await;
    assert_eq!(web.path().await, hook_path);
    assert!(web
        .text("#messages")
        .await
        .contains("Redelivery of key.created"));
    delivery_row_when(web, "attempted twice", |s, r, a| {
        s == "delivered" && r == "200" && a == "2"
    })
    .await;
    assert!(received.load(Ordering::SeqCst) >= 2);
    web.shot_at("webhook-deliveries", "#deliveries-card").await;

    // --- Rotate: a new secret, once; the old one signs for 24 hours more.
    web.submit("button#rotate-webhook-submit", Confirm::Required)
        .await;
    let rotated = web
        .new_secret("#new-secret", "code#new-secret-value", "#copy-secret")
        .await;
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(web.text("#messages").await.contains("24 hours"));
    assert!(web.exists("#webhook-facts .previous-secret").await);
    c.refresh().await.unwrap();
    web.settle().await;
    assert!(!web.exists("#new-secret").await);

    // --- Edit: no events is refused on the field; disabling is saved and shown.
    web.must_find("#edit-ev-key-created")
        .await
        .click()
        .await
        .unwrap();
    web.submit("button#edit-webhook-submit", Confirm::No).await;
    assert!(web
        .text("#edit-events-error")
        .await
        .contains("Choose at least one event"));
    web.must_find("#edit-ev-key-created")
        .await
        .click()
        .await
        .unwrap();
    // A URL that is not http(s) is refused beside the field, as typed, and nothing is saved.
    web.fill("#edit-url", "ftp://billing.example/hook").await;
    web.submit("button#edit-webhook-submit", Confirm::No).await;
    assert!(web.text("#edit-url-error").await.contains("http or https"));
    assert_eq!(
        web.must_find("#edit-url")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("ftp://billing.example/hook"),
        "what was typed is kept"
    );
    assert_eq!(web.text("#webhook-facts .url").await.trim(), receiver);
    let moved = format!("{receiver}?v=2");
    web.fill("#edit-url", &moved).await;
    web.must_find("#edit-enabled").await.click().await.unwrap();
    web.fill("#edit-description", "Billing (paused)").await;
    web.submit("button#edit-webhook-submit", Confirm::No).await;
    assert_eq!(web.path().await, hook_path);
    assert!(web.text("#messages").await.contains("disabled"));
    assert_eq!(web.text("#webhook-facts .status").await.trim(), "disabled");
    assert_eq!(
        web.text("#webhook-facts .description").await.trim(),
        "Billing (paused)"
    );
    assert_eq!(web.text("#webhook-facts .url").await.trim(), moved);
    let endpoint = srv
        .get(&format!("/v1{hook_path}"), &srv.admin_key)
        .await
        .expect(200);
    assert_eq!(endpoint["enabled"], false, "the API agrees");
    assert_eq!(endpoint["url"], moved.as_str());

    // --- At 390 px both pages fit.
    c.set_window_size(390, 844).await.unwrap();
    web.goto(&hook_path).await;
    web.fits("webhook-390").await;
    web.goto("/webhooks").await;
    web.fits("webhooks-390").await;
    c.set_window_size(1280, 900).await.unwrap();

    // --- Delete, with a confirmation.
    web.goto(&hook_path).await;
    web.submit("button#delete-webhook-submit", Confirm::Required)
        .await;
    assert_eq!(web.path().await, "/webhooks");
    assert!(web.text("#messages").await.contains("deleted"));
    assert!(web.exists("#no-webhooks").await);

    let ws = srv.workspace_of(&srv.admin_key).await;
    // --- Another workspace's endpoint is the HTML 404 for a workspace admin (an instance admin,
    // like the one above, sees every workspace, as in the API).
    let other = srv.workspace("elsewhere").await;
    let (_, other_admin) = srv.member_with_key(&other, "admin").await;
    let theirs = srv
        .post(
            "/v1/webhooks",
            &other_admin,
            json!({"url": "https://example.invalid/hook", "events": ["*"]}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wes_email = format!("wes-{}@example.com", random_suffix());
    let wes_password = "another fine passphrase";
    let wes = srv
        .post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": wes_email, "name": "Wes Admin", "password": wes_password}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.set_member(&ws, &wes, "admin").await;
    web.submit("button#sign-out", Confirm::No).await;
    web.sign_in(&wes_email, wes_password).await;
    web.click_nav("a#nav-webhooks", "/webhooks").await;
    web.goto(&format!("/webhooks/{theirs}")).await;
    assert_eq!(web.text("h1").await.trim(), "Not found");
    let mut wes_http = Session::sign_in(&srv.url, &wes_email, wes_password).await;
    let page = wes_http.get(&format!("/webhooks/{theirs}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let csrf = hidden_csrf(&wes_http.get("/webhooks").await.body).expect("a csrf field");
    let page = wes_http
        .post(&format!("/webhooks/{theirs}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "nor can it be deleted");

    // --- A developer is not offered webhooks and is refused them.
    let dev_email = format!("dev-{}@example.com", random_suffix());
    let dev_password = "correct horse battery staple";
    let dev = srv
        .post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": dev_email, "name": "Dana Developer", "password": dev_password}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.set_member(&ws, &dev, "developer").await;
    web.submit("button#sign-out", Confirm::No).await;
    web.sign_in(&dev_email, dev_password).await;
    assert!(!web.exists("a#nav-webhooks").await);
    web.goto("/webhooks").await;
    assert_eq!(web.text("h1").await.trim(), "Not allowed");
    let mut dev_http = Session::sign_in(&srv.url, &dev_email, dev_password).await;
    assert_eq!(
        dev_http.get("/webhooks").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(dev_http.get(&hook_path).await.status, StatusCode::FORBIDDEN);
}

/// Branding from `[dashboard] product_name, logo_url, accent_color`: the name in titles and the
/// header, the logo, the accent on buttons, all under the same strict CSP (the colour comes as a
/// stylesheet of its own; only the logo's origin is added to `img-src`).
#[tokio::test]
async fn branding_shows_and_the_csp_stays_strict() {
    let srv = TestServer::start_with(&Backend::Sqlite, |c| {
        c.dashboard.product_name = Some("Acme Cloud".into());
        c.dashboard.logo_url = Some("https://cdn.acme.test/brand/logo.svg".into());
        c.dashboard.accent_color = Some("#aa3300".into());
    })
    .await;
    let r = reqwest::get(format!("{}/login", srv.url)).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("img-src 'self' data: https://cdn.acme.test;") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("style-src 'self';"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<title>Sign in · Acme Cloud</title>"),
        "{html}"
    );
    assert!(html.contains("<img src=\"https://cdn.acme.test/brand/logo.svg\" alt=\"\">"));
    let css = reqwest::get(format!("{}/assets/brand.css", srv.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.contains("--accent: #aa3300; --accent-ink: #fff;"),
        "{css}"
    );
    let r = reqwest::get(format!("{}/no/such/page", srv.url))
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("· Acme Cloud</title>"));

    let browser = Browser::start().await;
    let c = browser.client.clone();
    browser
        .run("failure-branding", async {
            let web = Web {
                c: &c,
                base: &srv.url,
            };
            web.sign_in(&srv.admin_email, &srv.admin_password).await;
            assert_eq!(c.title().await.unwrap(), "API Keys & Tokens · Acme Cloud");
            assert_eq!(web.text("header .brand").await.trim(), "Acme Cloud");
            assert_eq!(
                web.style("a#create-key-link", "background-color").await,
                "rgb(170, 51, 0)",
                "the accent colours the primary button"
            );
            assert_eq!(
                web.style("a#create-key-link", "color").await,
                "rgb(255, 255, 255)"
            );
            web.shot("branding").await;
        })
        .await;
}
