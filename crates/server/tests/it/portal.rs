//! SPEC §7 portal sessions: a provider's server asks for a link, its customer's browser opens
//! it once and is signed into the dashboard for that workspace, with a way back.

use crate::dashboard::client;
use crate::harness::{each_backend, each_backend_with, Resp, TestServer};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const SESSIONS: &str = "/v1/portal/sessions";

async fn make_link(srv: &TestServer, key: &str, body: Value) -> Resp {
    srv.post(SESSIONS, key, body).await
}

/// A link for `user` in `ws` made with `key`: its URL.
async fn link_for(srv: &TestServer, key: &str, user: &str, ws: &str, back: Option<&str>) -> String {
    let mut body = json!({"user_id": user, "workspace_id": ws});
    if let Some(b) = back {
        body["return_url"] = json!(b);
    }
    let made = make_link(srv, key, body).await.expect(201);
    made["url"].as_str().unwrap().to_owned()
}

/// What opening a link in a browser gets: status, `Location`, the session cookie pair if one
/// was set, and the page.
struct Opened {
    status: StatusCode,
    location: Option<String>,
    session: Option<String>,
    /// The session cookie's `Max-Age`.
    max_age: Option<i64>,
    html: String,
}

async fn open(url: &str) -> Opened {
    let r = client().get(url).send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let set_cookie = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lk_session="))
        .map(str::to_owned);
    let session = set_cookie
        .as_deref()
        .map(|c| c.split(';').next().unwrap().to_owned());
    let max_age = set_cookie.as_deref().and_then(|c| {
        c.split("; ")
            .find_map(|a| a.strip_prefix("Max-Age="))
            .map(|n| n.parse().unwrap())
    });
    let html = r.text().await.unwrap();
    Opened {
        status,
        location,
        session,
        max_age,
        html,
    }
}

/// A dashboard page with a session cookie.
async fn page(srv: &TestServer, session: &str, path: &str) -> (StatusCode, String) {
    let r = client()
        .get(format!("{}{path}", srv.url))
        .header(header::COOKIE, session)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn email_of(srv: &TestServer, user: &str) -> String {
    srv.get(&format!("/v1/users/{user}"), &srv.admin_key)
        .await
        .expect(200)["email"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The workspace's audit events with `action`.
async fn audited(srv: &TestServer, ws: &str, action: &str) -> Vec<Value> {
    srv.get(
        &format!("/v1/audit?workspace_id={ws}&action={action}"),
        &srv.admin_key,
    )
    .await
    .expect(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Unix seconds as the API writes them.
fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn secret_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn a_portal_link_signs_its_person_in_once() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Acme").await;
        let (_, provider_key) = srv.member_with_key(&ws, "admin").await;
        let provider_key_id = srv.get("/v1/me", &provider_key).await.expect(200)["credential"]
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (customer, _) = srv.member_with_key(&ws, "developer").await;
        let email = email_of(&srv, &customer).await;

        let made = make_link(
            &srv,
            &provider_key,
            json!({"user_id": customer, "workspace_id": ws,
                   "return_url": "https://app.example.com/settings/api"}),
        )
        .await
        .expect(201);
        let url = made["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("{}/portal/", srv.url)), "{url}");
        let expires = chrono::DateTime::parse_from_rfc3339(made["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
        let in_five_minutes = chrono::Utc::now().timestamp() + 300;
        assert!(
            (in_five_minutes - 5..=in_five_minutes).contains(&expires),
            "valid five minutes: {made}"
        );

        let first = open(&url).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.html);
        assert_eq!(first.location.as_deref(), Some("/keys"));
        assert_eq!(first.max_age, Some(12 * 3600), "a dashboard session's lifetime");
        let session = first.session.expect("signed in with a session cookie");
        let (status, keys) = page(&srv, &session, "/keys").await;
        assert_eq!(status, 200);
        assert!(keys.contains(&email), "the keys page is the customer's");
        assert!(
            keys.contains(r#"href="https://app.example.com/settings/api""#)
                && keys.contains("← Back to app.example.com"),
            "the way back, named by its host"
        );

        let second = open(&url).await;
        assert_eq!(second.status, StatusCode::GONE);
        assert!(second.session.is_none(), "no session the second time");
        assert!(
            second
                .html
                .contains("This link has been used or has expired. Go back to app.example.com and open it again."),
            "{}",
            second.html
        );

        let created = audited(&srv, &ws, "portal.session_created").await;
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["actor"]["credential_id"], provider_key_id);
        assert_eq!(created[0]["target"], json!({"type": "user", "id": customer}));
        let used = audited(&srv, &ws, "portal.session_used").await;
        assert_eq!(used.len(), 1);
        assert_eq!(used[0]["actor"]["user_id"], json!(customer));
        assert_eq!(used[0]["target"]["id"], json!(customer));
        let log = serde_json::to_string(&[created, used]).unwrap();
        assert!(
            !log.contains(secret_of(&url)),
            "the link's secret is not in the audit log"
        );
    })
    .await;
}

#[tokio::test]
async fn head_does_not_use_a_link_and_unknown_links_are_404() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (customer, _) = srv.member_with_key(&ws, "member").await;
        let url = link_for(&srv, &srv.admin_key, &customer, &ws, None).await;
        for _ in 0..2 {
            let r = client().head(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "a usable link");
            assert!(r.headers().get(header::SET_COOKIE).is_none());
        }
        let used = open(&url).await;
        assert_eq!(used.status, StatusCode::SEE_OTHER, "HEAD spent nothing");
        let session = used.session.unwrap();
        let (_, keys) = page(&srv, &session, "/keys").await;
        assert!(
            !keys.contains("back-to-product"),
            "no return_url, no back link: {keys}"
        );
        assert_eq!(client().head(&url).send().await.unwrap().status(), 410);

        let unknown = format!("{}/portal/{}", srv.url, "A".repeat(43));
        let r = open(&unknown).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.session.is_none());
        assert!(
            r.html.contains("<html") && r.html.contains("Go back to the product you came from"),
            "{}",
            r.html
        );
        assert_eq!(open(&format!("{}/portal/short", srv.url)).await.status, 404);
        assert_eq!(client().head(&unknown).send().await.unwrap().status(), 404);
        assert_eq!(
            audited(&srv, &ws, "portal.session_used").await.len(),
            1,
            "HEAD is not a use"
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_portal_link_signs_no_one_in() {
    each_backend_with(
        |c| c.portal_link_ttl = Duration::from_secs(1),
        |srv| async move {
            let ws = srv.workspace_of(&srv.admin_key).await;
            let (customer, _) = srv.member_with_key(&ws, "developer").await;
            let url = link_for(
                &srv,
                &srv.admin_key,
                &customer,
                &ws,
                Some("https://shop.example.org/"),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(2100)).await;
            let r = open(&url).await;
            assert_eq!(r.status, StatusCode::GONE, "{}", r.html);
            assert!(r.session.is_none());
            assert!(r.html.contains("Go back to shop.example.org"));
            assert!(audited(&srv, &ws, "portal.session_used").await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn neither_a_link_nor_its_session_outlives_the_credential_that_made_it() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Short-lived").await;
        let (admin_user, _) = srv.member_with_key(&ws, "admin").await;
        let (customer, _) = srv.member_with_key(&ws, "developer").await;
        let in_an_hour = chrono::Utc::now().timestamp() + 3600;
        let expiring = srv
            .key_for(&ws, &admin_user, json!({"expires_at": rfc3339(in_an_hour)}))
            .await;
        let in_two_minutes = chrono::Utc::now().timestamp() + 120;
        let soon = srv
            .key_for(
                &ws,
                &admin_user,
                json!({"expires_at": rfc3339(in_two_minutes)}),
            )
            .await;
        let body = json!({"user_id": customer, "workspace_id": ws});

        let made = make_link(&srv, soon["key"].as_str().unwrap(), body.clone())
            .await
            .expect(201);
        assert_eq!(
            made["expires_at"],
            json!(rfc3339(in_two_minutes)),
            "the link ends with its maker"
        );
        let made = make_link(&srv, expiring["key"].as_str().unwrap(), body)
            .await
            .expect(201);
        let opened = open(made["url"].as_str().unwrap()).await;
        let max_age = opened.max_age.expect("signed in");
        assert!(
            (3590..=3600).contains(&max_age),
            "the session ends with the key that made the link, not 12 hours on: {max_age}"
        );
    })
    .await;
}

#[tokio::test]
async fn ten_browsers_racing_for_one_link_sign_in_once() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Race").await;
        let (customer, _) = srv.member_with_key(&ws, "developer").await;
        let url = link_for(&srv, &srv.admin_key, &customer, &ws, None).await;
        let opens: Vec<_> = (0..10)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { open(&url).await })
            })
            .collect();
        let mut signed_in = 0;
        for o in opens {
            let o = o.await.unwrap();
            match o.status {
                StatusCode::SEE_OTHER => {
                    assert!(o.session.is_some());
                    signed_in += 1;
                }
                StatusCode::GONE => assert!(o.session.is_none()),
                other => panic!("unexpected {other}: {}", o.html),
            }
        }
        assert_eq!(signed_in, 1, "exactly one session");
        assert_eq!(audited(&srv, &ws, "portal.session_used").await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn only_a_live_manage_all_credential_holding_all_the_person_holds_makes_a_link() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Gatekept").await;
        let (admin_user, ws_admin) = srv.member_with_key(&ws, "admin").await;
        let (customer, developer) = srv.member_with_key(&ws, "developer").await;
        let body = json!({"user_id": customer, "workspace_id": ws});

        make_link(&srv, &developer, body.clone())
            .await
            .problem(403, "insufficient_permissions");
        let test_key = srv
            .key_for(&ws, &admin_user, json!({"environment": "test"}))
            .await;
        make_link(&srv, test_key["key"].as_str().unwrap(), body.clone())
            .await
            .problem(403, "environment_mismatch");

        // Key management over everyone, but none of the developer's app permissions.
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/keymaster"),
            &srv.admin_key,
            json!({"permissions": ["latchkey:keys:manage_all", "latchkey:keys:manage_own"]}),
        )
        .await
        .expect(200);
        let (_, keymaster) = srv.member_with_key(&ws, "keymaster").await;
        make_link(&srv, &keymaster, body.clone())
            .await
            .problem(403, "insufficient_permissions");
        // …who may still sign in someone holding no more than it does.
        let (viewer, _) = srv.member_with_key(&ws, "viewer").await;
        make_link(
            &srv,
            &keymaster,
            json!({"user_id": viewer, "workspace_id": ws}),
        )
        .await
        .problem(403, "insufficient_permissions");
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/nothing"),
            &srv.admin_key,
            json!({"permissions": []}),
        )
        .await
        .expect(200);
        let (nobody, _) = srv.member_with_key(&ws, "nothing").await;
        make_link(
            &srv,
            &keymaster,
            json!({"user_id": nobody, "workspace_id": ws}),
        )
        .await
        .expect(201);

        // An admin's key restricted below the developer: refused, though its owner holds more.
        let narrowed = srv
            .key_for(
                &ws,
                &admin_user,
                json!({"permissions": ["latchkey:keys:manage_all"]}),
            )
            .await;
        make_link(&srv, narrowed["key"].as_str().unwrap(), body.clone())
            .await
            .problem(403, "insufficient_permissions");
        make_link(&srv, &ws_admin, body.clone()).await.expect(201);

        // The instance admin's session would reach every workspace: not a workspace admin's to open.
        let admin_ws = srv.workspace_of(&srv.admin_key).await;
        srv.set_member(&ws, &srv.admin_user_id, "admin").await;
        make_link(
            &srv,
            &ws_admin,
            json!({"user_id": srv.admin_user_id, "workspace_id": ws}),
        )
        .await
        .problem(403, "insufficient_permissions");
        make_link(
            &srv,
            &srv.admin_key,
            json!({"user_id": srv.admin_user_id, "workspace_id": admin_ws}),
        )
        .await
        .expect(201);
    })
    .await;
}

#[tokio::test]
async fn other_workspaces_and_their_people_are_404_and_non_members_422() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Ours").await;
        let (_, ws_admin) = srv.member_with_key(&ws, "admin").await;
        let other = srv.workspace("Theirs").await;
        let (stranger, _) = srv.member_with_key(&other, "developer").await;

        for body in [
            json!({"user_id": stranger, "workspace_id": other}),
            json!({"user_id": stranger, "workspace_id": ws}),
            json!({"user_id": format!("usr_{}", "0".repeat(20)), "workspace_id": ws}),
            json!({"user_id": stranger, "workspace_id": "ws_nope"}),
            json!({"user_id": stranger, "workspace_id": format!("ws_{}", "0".repeat(20))}),
        ] {
            make_link(&srv, &ws_admin, body.clone())
                .await
                .problem(404, "not_found");
        }
        // The instance admin sees every workspace, but not one that does not exist.
        make_link(
            &srv,
            &srv.admin_key,
            json!({"user_id": stranger, "workspace_id": format!("ws_{}", "0".repeat(20))}),
        )
        .await
        .problem(404, "not_found");

        // Someone the caller may see who is not an active member here: a field error.
        let newcomer = srv.user("newcomer").await;
        let (leaver, _) = srv.member_with_key(&ws, "developer").await;
        srv.delete(&format!("/v1/users/{leaver}"), &srv.admin_key)
            .await
            .expect(204);
        for (caller, user) in [
            (&ws_admin, newcomer.as_str()),
            (&ws_admin, leaver.as_str()),
            (&srv.admin_key, stranger.as_str()),
            (&ws_admin, "alice"),
        ] {
            let p = make_link(&srv, caller, json!({"user_id": user, "workspace_id": ws}))
                .await
                .problem(422, "validation_failed");
            assert_eq!(p["errors"][0]["field"], "user_id", "{p}");
        }
        let p = make_link(
            &srv,
            &ws_admin,
            json!({"user_id": newcomer, "workspace_id": ws}),
        )
        .await
        .problem(422, "validation_failed");
        assert_eq!(
            p["errors"][0]["message"],
            "must be an active member of the workspace"
        );
        assert!(audited(&srv, &ws, "portal.session_created")
            .await
            .is_empty());
        assert!(audited(&srv, &other, "portal.session_created")
            .await
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_bad_return_url_or_body_creates_nothing() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (customer, _) = srv.member_with_key(&ws, "developer").await;
        let long = format!("https://example.com/{}", "a".repeat(2030));
        for bad in [
            "javascript:alert(document.cookie)",
            "JAVASCRIPT:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com/",
            "/settings",
            "//evil.example.com/",
            "https://app.example.com@evil.example.com/",
            "https://exa mple.com/",
            &long,
        ] {
            let p = make_link(
                &srv,
                &srv.admin_key,
                json!({"user_id": customer, "workspace_id": ws, "return_url": bad}),
            )
            .await
            .problem(422, "validation_failed");
            assert_eq!(p["errors"][0]["field"], "return_url", "{bad}: {p}");
        }
        for (bad, field) in [
            (json!({"workspace_id": ws}), "user_id"),
            (json!({"user_id": customer}), "workspace_id"),
            (
                json!({"user_id": customer, "workspace_id": ws, "return_url": 7}),
                "return_url",
            ),
            (
                json!({"user_id": customer, "workspace_id": ws, "redirect": "https://x.example/"}),
                "redirect",
            ),
        ] {
            let p = make_link(&srv, &srv.admin_key, bad.clone())
                .await
                .problem(422, "validation_failed");
            assert_eq!(p["errors"][0]["field"], field, "{bad}: {p}");
        }
        let r = srv
            .send(
                srv.request(Method::POST, SESSIONS)
                    .bearer_auth(&srv.admin_key)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body("{not json"),
            )
            .await;
        r.problem(400, "bad_request");
        make_link(&srv, "sk_live_nope", json!({}))
            .await
            .problem(401, "invalid_credentials");
        assert!(
            audited(&srv, &ws, "portal.session_created")
                .await
                .is_empty(),
            "nothing was made"
        );

        // At the limit, accepted and normalised.
        let edge = format!("https://Example.com/{}", "a".repeat(2048 - 20));
        let url = link_for(&srv, &srv.admin_key, &customer, &ws, Some(&edge)).await;
        let session = open(&url).await.session.unwrap();
        let (_, keys) = page(&srv, &session, "/keys").await;
        assert!(keys.contains("← Back to example.com"));
        assert!(!keys.to_lowercase().contains("href=\"javascript"));
    })
    .await;
}

#[tokio::test]
async fn a_link_signs_in_only_a_person_still_in_the_workspace() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Leaving").await;
        let (customer, _) = srv.member_with_key(&ws, "developer").await;
        let url = link_for(
            &srv,
            &srv.admin_key,
            &customer,
            &ws,
            Some("https://app.example.com/"),
        )
        .await;
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{customer}"),
            &srv.admin_key,
        )
        .await
        .expect(204);
        let r = open(&url).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
        assert!(r.session.is_none());
        assert!(r.html.contains("no longer a member"));
        assert!(audited(&srv, &ws, "portal.session_used").await.is_empty());

        // A session it opened ends when its person leaves, like any other.
        srv.set_member(&ws, &customer, "developer").await;
        let url = link_for(&srv, &srv.admin_key, &customer, &ws, None).await;
        let session = open(&url).await.session.unwrap();
        assert_eq!(page(&srv, &session, "/keys").await.0, 200);
        srv.delete(
            &format!("/v1/workspaces/{ws}/members/{customer}"),
            &srv.admin_key,
        )
        .await
        .expect(204);
        assert_eq!(
            page(&srv, &session, "/keys").await.0,
            StatusCode::SEE_OTHER,
            "back to the sign-in page"
        );
    })
    .await;
}

#[tokio::test]
async fn the_typed_client_and_the_cli_make_links() {
    use latchkey_client::{Client, ClientOptions};
    use latchkey_proto::portal::{CreatePortalSession, PortalSession};
    let srv = TestServer::start(&crate::harness::Backend::Sqlite).await;
    let ws = srv.workspace_of(&srv.admin_key).await;
    let (customer, _) = srv.member_with_key(&ws, "developer").await;

    // The answer reads into the proto type and writes back to exactly what the server sent.
    let client = Client::new(&srv.url, &srv.admin_key, &ClientOptions::default()).unwrap();
    let body = CreatePortalSession {
        user_id: customer.clone(),
        workspace_id: ws.clone(),
        return_url: Some("https://app.example.com/".into()),
    };
    let raw: Value = client.portal_session(&body).send_as().await.unwrap();
    let typed: PortalSession = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), raw);
    assert!(!format!("{typed:?}").contains(secret_of(typed.url.expose())));
    assert_eq!(open(typed.url.expose()).await.status, StatusCode::SEE_OTHER);

    let cli = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        cmd.args(args)
            .env("LATCHKEY_URL", &srv.url)
            .env("LATCHKEY_API_KEY", &srv.admin_key)
            .env_remove("LATCHKEY_CACERT");
        async move { cmd.output().await.unwrap() }
    };
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "portal",
            "create",
            "--user-id",
            &customer,
            "--workspace-id",
            &ws,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = cli(args(&[
        "--json",
        "--return-url",
        "https://shop.example.org/",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = made["url"].as_str().unwrap();
    let session = open(url).await.session.expect("the printed link signs in");
    assert!(page(&srv, &session, "/keys")
        .await
        .1
        .contains("← Back to shop.example.org"));

    let out = cli(args(&[])).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/portal/", srv.url)))
        .unwrap_or_else(|| panic!("the URL is printed: {text}"));
    assert_eq!(open(url).await.status, StatusCode::SEE_OTHER);

    let out = cli(args(&["--return-url", "javascript:alert(1)"])).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("return_url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    srv.stop().await;
}
