//! SPEC §7 in a real browser: headless Chromium driven over WebDriver (Debian's `chromedriver`)
//! against the real server — sign-in, show-once keys, revoke with confirmation, roll, environment
//! tokens, the workspace switcher, members and roles, a key's and a member's page (limits, credits
//! and the usage chart), the audit log, CSRF and sign-out.
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
    async fn start() -> Self {
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
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", user_data.display()),
                ],
            }),
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
    let outcome = AssertUnwindSafe(scenario(&srv, &c)).catch_unwind().await;
    if outcome.is_err() {
        // Leave evidence for whoever reads the failure.
        if let Ok(url) = c.current_url().await {
            eprintln!("browser was at {url}");
        }
        if let Ok(png) = c.screenshot().await {
            let _ = std::fs::write(Path::new(SCREENSHOTS).join("failure.png"), png);
            eprintln!("screenshot of the failure: {SCREENSHOTS}/failure.png");
        }
    }
    let _ = c.close().await;
    drop(browser);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
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

    // --- Revoke asks for confirmation: dismissing keeps the key, accepting revokes it.
    let button = web.must_find_in(&row, "form.revoke-key button").await;
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
    let row = web.key_row(&key1_id).await;
    let button = web.must_find_in(&row, "form.revoke-key button").await;
    web.submit_el(&button, Confirm::Required).await;
    srv.get("/v1/me", &key1)
        .await
        .problem(401, "invalid_credentials");
    web.goto("/keys").await;
    let row = web.key_row(&key1_id).await;
    assert_eq!(web.cell(&row, "td.status").await, "revoked");
    assert!(
        web.find_in(&row, "form.revoke-key").await.is_none(),
        "a revoked key cannot be revoked again"
    );
    assert!(
        web.find_in(&row, "form.roll-key").await.is_none(),
        "a revoked key cannot be rolled"
    );

    // --- Roll: the new key is shown once; the old one stops at once (no grace).
    let key2 = web.create_key("Browser key two", "secret", "test").await;
    assert!(key2.starts_with("sk_test_"));
    let key2_id = srv.get("/v1/me", &key2).await.expect(200)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    web.goto("/keys").await;
    let row = web.key_row(&key2_id).await;
    if let Some(grace) = web
        .find_in(&row, "form.roll-key [name=grace_seconds]")
        .await
    {
        grace.clear().await.unwrap();
        grace.send_keys("0").await.unwrap();
    }
    let button = web.must_find_in(&row, "form.roll-key button").await;
    web.submit_el(&button, Confirm::IfAsked).await;
    let rolled = web
        .new_secret("#new-key", "code#new-key-value", "#copy-key")
        .await;
    assert!(
        rolled.starts_with("sk_test_") && rolled != key2,
        "rolling shows a new test key"
    );
    srv.get("/v1/me", &key2)
        .await
        .problem(401, "invalid_credentials");
    let me = srv.get("/v1/me", &rolled).await.expect(200);
    let rolled_id = me["credential"]["id"].as_str().unwrap().to_owned();
    let rolled_name = me["credential"]["name"].as_str().unwrap().to_owned();
    web.goto("/keys").await;
    assert!(
        !c.source().await.unwrap().contains(&rolled),
        "the rolled key is shown once"
    );

    // --- Environment tokens: generate from a key, renew, revoke.
    web.click_nav("a#nav-tokens", "/tokens").await;
    let options = c
        .find_all(Locator::Css(
            "form#generate-token select[name=key_id] option",
        ))
        .await
        .unwrap();
    let mut offered = Vec::new();
    for o in &options {
        offered.push((
            o.attr("value").await.unwrap().unwrap_or_default(),
            o.text().await.unwrap(),
        ));
    }
    let (_, label) = offered
        .iter()
        .find(|(v, _)| *v == rolled_id)
        .unwrap_or_else(|| panic!("the rolled key {rolled_id} is offered: {offered:?}"));
    assert!(
        label.contains(&rolled_name) && label.contains("test"),
        "the option names the key and its environment: {label}"
    );
    assert!(
        !offered.iter().any(|(v, _)| *v == key1_id || *v == key2_id),
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
    web.goto("/keys").await;
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

    /// Creates a key through `form#create-key` and returns the key shown once.
    async fn create_key(&self, name: &str, kind: &str, env: &str) -> String {
        if self.path().await != "/keys" {
            self.goto("/keys").await;
        }
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
        ] {
            assert!(
                self.exists(&format!("form#create-key {optional}")).await,
                "form#create-key has {optional}"
            );
        }
        self.submit("button#create-key-submit", Confirm::No).await;
        self.new_secret("#new-key", "code#new-key-value", "#copy-key")
            .await
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
