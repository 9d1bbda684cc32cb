//! The dashboard over plain HTTP (the real browser runs in `browser.rs`): security headers,
//! cookies, CSRF, sign-in throttling, and who may open which page.

use crate::harness::{each_backend, each_backend_with, TestServer};
use reqwest::{header, redirect, Client, StatusCode};
use serde_json::{json, Value};

pub(crate) fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in through the form; returns the session cookie pair `lk_session=…` (or the response).
pub(crate) async fn sign_in(
    srv: &TestServer,
    email: &str,
    password: &str,
) -> Result<String, reqwest::Response> {
    sign_in_from(srv, email, password, None).await
}

/// [`sign_in`] through a proxy that forwards for `client`.
async fn sign_in_from(
    srv: &TestServer,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Result<String, reqwest::Response> {
    let http = client();
    let page = http.get(format!("{}/login", srv.url)).send().await.unwrap();
    let login_cookie = cookie(&page, "lk_login_csrf").unwrap();
    let html = page.text().await.unwrap();
    let mut post = http.post(format!("{}/login", srv.url));
    if let Some(c) = forwarded_for {
        post = post.header("x-forwarded-for", c);
    }
    let r = post
        .header(header::COOKIE, login_cookie.split(';').next().unwrap())
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf_of(&html)),
        ])
        .send()
        .await
        .unwrap();
    match cookie(&r, "lk_session") {
        Some(c) if r.status() == StatusCode::SEE_OTHER => Ok(c),
        _ => Err(r),
    }
}

#[tokio::test]
async fn pages_are_locked_down() {
    each_backend(|srv| async move {
        let set_cookie = sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .expect("admin signs in");
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        assert!(
            !set_cookie.contains("Secure"),
            "plain HTTP on loopback: no Secure flag to lose the cookie"
        );
        let session = set_cookie.split(';').next().unwrap().to_owned();
        let http = client();
        let page = http
            .get(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let h = page.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-frame-options"], "DENY");
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style=\""),
            "no inline script or style"
        );

        // A state-changing POST without the session's CSRF token is refused and changes nothing.
        let before = srv.key_count(&srv.admin_key).await;
        let r = http
            .post(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .form(&[("name", "csrf-less")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = http
            .post(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .form(&[("name", "forged"), ("csrf", "not-the-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(srv.key_count(&srv.admin_key).await, before);
        // With it, the key is created and shown once.
        let r = http
            .post(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .form(&[
                ("name", "from the form"),
                ("environment", "test"),
                ("csrf", &csrf_of(&html)),
            ])
            .send()
            .await
            .unwrap();
        let (location, shown) = followed(&srv, &session, r).await;
        assert_eq!(location, "/keys");
        assert!(shown.contains("Key “from the form” created."));
        let at = shown
            .find("id=\"new-key-value\">")
            .expect("the new key is shown once")
            + 19;
        let secret = shown[at..].split('<').next().unwrap().to_owned();
        assert!(secret.starts_with("sk_test_") && secret.len() == 46);
        let again = http
            .get(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        let again = again.text().await.unwrap();
        assert!(
            !again.contains("new-key-value") && !again.contains(&secret),
            "reloading never shows it again"
        );
        let me = srv.get("/v1/me", &secret).await.expect(200);
        assert_eq!(me["credential"]["name"], "from the form");

        // Signed out, the pages send you to sign in.
        let r = http.get(format!("{}/keys", srv.url)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/login");
    })
    .await;
}

#[tokio::test]
async fn sign_in_is_throttled_and_needs_the_right_password() {
    each_backend(|srv| async move {
        let r = sign_in(&srv, &srv.admin_email, "wrong password!")
            .await
            .unwrap_err();
        assert_eq!(r.status(), 401);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Email or password is incorrect"));
        for _ in 0..4 {
            sign_in(&srv, &srv.admin_email, "still wrong!!")
                .await
                .unwrap_err();
        }
        // Even the right password waits now.
        let r = sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .unwrap_err();
        assert_eq!(r.status(), 429);
        // Nobody learns whether an email exists: same answer for unknown accounts.
        let r = sign_in(&srv, "nobody@example.com", "whatever123456")
            .await
            .unwrap_err();
        assert_eq!(r.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn members_without_the_permission_cannot_open_admin_pages() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Pages").await;
        let email = format!("member-{}@example.com", crate::harness::random_suffix());
        let u = srv
            .post(
                "/v1/users",
                &srv.admin_key,
                json!({"email": email, "name": "M", "password": "a long password 1"}),
            )
            .await
            .expect(201);
        srv.set_member(&ws, u["id"].as_str().unwrap(), "member")
            .await;
        let session = sign_in(&srv, &email, "a long password 1")
            .await
            .expect("member signs in");
        let session = session.split(';').next().unwrap().to_owned();
        let http = client();
        for page in ["/members", "/settings", "/audit"] {
            let r = http
                .get(format!("{}{page}", srv.url))
                .header(header::COOKIE, &session)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{page}");
            assert!(r.text().await.unwrap().contains("Not allowed"));
        }
        let keys = http
            .get(format!("{}/keys", srv.url))
            .header(header::COOKIE, &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            keys.contains("id=\"no-key-permission\""),
            "a member sees why they cannot create keys"
        );
        assert!(!keys.contains("id=\"nav-members\""));
    })
    .await;
}

/// A signed-in admin's session cookie and the CSRF token of its forms.
async fn admin_session(srv: &TestServer) -> (String, String) {
    let session = sign_in(srv, &srv.admin_email, &srv.admin_password)
        .await
        .expect("admin signs in");
    let session = session.split(';').next().unwrap().to_owned();
    let html = client()
        .get(format!("{}/keys", srv.url))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (session, csrf_of(&html))
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed_from_the_dashboard() {
    each_backend(|srv| async move {
        let (session, csrf) = admin_session(&srv).await;
        let http = client();
        for (action, form) in [
            ("remove", vec![("csrf", csrf.as_str())]),
            ("role", vec![("csrf", csrf.as_str()), ("role", "member")]),
        ] {
            let r = http
                .post(format!(
                    "{}/members/{}/{action}",
                    srv.url, srv.admin_user_id
                ))
                .header(header::COOKIE, &session)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 409, "{action}");
            let html = r.text().await.unwrap();
            assert!(
                html.contains("role=\"alert\"") && html.contains("last admin"),
                "{action}: the page says why: {html}"
            );
        }
        srv.get("/v1/me", &srv.admin_key).await.expect(200);
    })
    .await;
}

/// Renames a table behind the server's back, so reading it fails.
async fn break_table(srv: &TestServer, table: &str) {
    use sqlx::Connection;
    let (db, _) = srv.database_and_secret();
    let sql = format!("ALTER TABLE {table} RENAME TO {table}_gone");
    if db.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&db).await.unwrap();
        sqlx::Executor::execute(&mut c, sql.as_str()).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::Executor::execute(&mut c, sql.as_str()).await.unwrap();
    }
}

#[tokio::test]
async fn a_page_that_cannot_read_its_data_says_so() {
    each_backend(|srv| async move {
        let (session, _) = admin_session(&srv).await;
        let http = client();
        for (table, page) in [
            ("api_keys", "/keys"),
            ("access_tokens", "/tokens"),
            ("audit_events", "/audit"),
        ] {
            break_table(&srv, table).await;
            let r = http
                .get(format!("{}{page}", srv.url))
                .header(header::COOKIE, &session)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 500, "{page}");
            let html = r.text().await.unwrap();
            assert!(html.contains("could not be loaded"), "{page}: {html}");
            assert!(!html.contains(table), "{page}: no internals");
        }
    })
    .await;
}

/// Defect 16: an oversized form is a 413 page on the dashboard (sign-in included), never axum's
/// plain text, and changes nothing.
#[tokio::test]
async fn oversized_forms_are_413_pages() {
    each_backend(|srv| async move {
        let session = sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .expect("admin signs in");
        let session = session.split(';').next().unwrap().to_owned();
        let before = srv.key_count(&srv.admin_key).await;
        let big = format!("name={}", "a".repeat(3 << 20));
        for path in ["/login", "/keys", "/account/password"] {
            let r = client()
                .post(format!("{}{path}", srv.url))
                .header(header::COOKIE, &session)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(big.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 413, "{path}");
            assert!(
                r.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{path}"
            );
            assert!(r.text().await.unwrap().contains("too large"), "{path}");
        }
        assert_eq!(srv.key_count(&srv.admin_key).await, before);
    })
    .await;
}

/// Defect 6: behind a trusted proxy each client has its own sign-in allowance, so one
/// client's failures do not lock everybody out; without one, X-Forwarded-For is ignored.
#[tokio::test]
async fn sign_in_throttle_is_per_forwarded_client_behind_a_trusted_proxy() {
    each_backend(|srv| async move {
        let (a, b) = ("198.51.100.20", "198.51.100.21");
        for i in 0..20 {
            let r = sign_in_from(
                &srv,
                &format!("nobody{i}@example.com"),
                "wrong password!",
                Some(a),
            )
            .await
            .unwrap_err();
            assert_eq!(r.status(), 401);
        }
        let r = sign_in_from(&srv, &srv.admin_email, &srv.admin_password, Some(a))
            .await
            .unwrap_err();
        assert_eq!(r.status(), 429, "the address that failed waits");
        sign_in_from(&srv, &srv.admin_email, &srv.admin_password, Some(b))
            .await
            .expect("another client behind the same proxy signs in");
    })
    .await;
    each_backend_with(
        |c| c.proxy_trusted = vec![],
        |srv| async move {
            for i in 0..20 {
                sign_in_from(
                    &srv,
                    &format!("nobody{i}@example.com"),
                    "wrong password!",
                    Some("198.51.100.20"),
                )
                .await
                .unwrap_err();
            }
            let r = sign_in_from(
                &srv,
                &srv.admin_email,
                &srv.admin_password,
                Some("198.51.100.21"),
            )
            .await
            .unwrap_err();
            assert_eq!(
                r.status(),
                429,
                "an untrusted peer's X-Forwarded-For is not believed"
            );
        },
    )
    .await;
}

/// Defect 6: sign-in fields are bounded; an absurd email is refused before it is looked up
/// or remembered by the throttle.
#[tokio::test]
async fn oversized_sign_in_fields_are_refused() {
    each_backend(|srv| async move {
        let long = format!("{}@example.com", "a".repeat(10_000));
        let r = sign_in(&srv, &long, "whatever123456").await.unwrap_err();
        assert_eq!(r.status(), 400);
        let html = r.text().await.unwrap();
        assert!(!html.contains(&long), "not echoed back");
        let r = sign_in(&srv, &srv.admin_email, &"p".repeat(5_000))
            .await
            .unwrap_err();
        assert_eq!(r.status(), 400);
        sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .expect("refused fields were not counted as failures");
    })
    .await;
}

/// Defect 15: checking the current password on /account/password is throttled like sign-in,
/// so a stolen session cannot guess it; the lock also holds for sign-in to that account.
#[tokio::test]
async fn password_change_guesses_are_throttled() {
    each_backend(|srv| async move {
        let session = sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .expect("admin signs in");
        let session = session.split(';').next().unwrap().to_owned();
        let http = client();
        let account = http
            .get(format!("{}/account", srv.url))
            .header(header::COOKIE, &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&account);
        let change = |current: String| {
            let (http, session, csrf) = (http.clone(), session.clone(), csrf.clone());
            let url = format!("{}/account/password", srv.url);
            async move {
                http.post(url)
                    .header(header::COOKIE, &session)
                    .form(&[
                        ("current_password", current.as_str()),
                        ("new_password", "a brand new password"),
                        ("confirm_password", "a brand new password"),
                        ("csrf", csrf.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        };
        for i in 0..5 {
            let r = change(format!("guess number {i}")).await;
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("current password is not right"));
        }
        let r = change(srv.admin_password.clone()).await;
        assert_eq!(r.status(), 429, "even the right password waits now");
        assert!(r.text().await.unwrap().contains("Too many"));
        let r = sign_in(&srv, &srv.admin_email, &srv.admin_password)
            .await
            .unwrap_err();
        assert_eq!(r.status(), 429);
    })
    .await;
}

/// The value of the hidden field `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("a {name} field"))
        + name.len()
        + 15;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn page(srv: &TestServer, session: &str, path: &str) -> (StatusCode, String) {
    let r = client()
        .get(format!("{}{path}", srv.url))
        .header(header::COOKIE, session)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Follows a form's answer as a browser would: a 303 whose page is drawn with the session and
/// the one-time flash cookie the redirect set, which that page clears. The location and the page.
pub(crate) async fn followed(
    srv: &TestServer,
    session: &str,
    r: reqwest::Response,
) -> (String, String) {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a form answers with a redirect"
    );
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let flash = cookie(&r, "lk_flash").map(|c| c.split(';').next().unwrap().to_owned());
    let cookies = match &flash {
        Some(f) => format!("{session}; {f}"),
        None => session.to_owned(),
    };
    let page = client()
        .get(format!("{}{location}", srv.url))
        .header(header::COOKIE, cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{location}");
    if flash.is_some() {
        let cleared = cookie(&page, "lk_flash").expect("the page clears the flash");
        assert!(cleared.starts_with("lk_flash=;") && cleared.contains("Max-Age=0"));
    }
    (location, page.text().await.unwrap())
}

async fn post_form(
    srv: &TestServer,
    session: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!("{}{path}", srv.url))
        .header(header::COOKIE, session)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// SPEC §11 in the dashboard: the create form's rate limit and credits, the key's page (its
/// limits, credits and usage) and its form, which sends `PATCH /v1/keys/{id}`'s fields and
/// only those that changed; a member's page and `PUT …/members/{user_id}`.
#[tokio::test]
async fn limits_and_credits_through_the_forms() {
    each_backend(|srv| async move {
        let (session, csrf) = admin_session(&srv).await;
        // The API's own validation messages.
        for (field, value, message) in [
            ("ratelimit", "0", "ratelimits[0].limit: at least 1"),
            ("credits", "-1", "credits.remaining: 0 to 1000000000000"),
        ] {
            let r = post_form(
                &srv,
                &session,
                "/keys",
                &[
                    ("csrf", &csrf),
                    ("name", "refused"),
                    ("window_seconds", "60"),
                    (field, value),
                ],
            )
            .await;
            let html = r.text().await.unwrap();
            assert!(html.contains(message), "{field}={value}: {html}");
        }
        let r = post_form(
            &srv,
            &session,
            "/keys",
            &[
                ("csrf", &csrf),
                ("name", "metered"),
                ("environment", "live"),
                ("ratelimit", "100"),
                ("window_seconds", "3600"),
                ("credits", "50"),
                ("refill", "monthly"),
            ],
        )
        .await;
        let (_, html) = followed(&srv, &session, r).await;
        let marker = "id=\"new-key-value\">";
        let at = html.find(marker).expect("created") + marker.len();
        let key = html[at..].split('<').next().unwrap().to_owned();
        let me = srv.get("/v1/me", &key).await.expect(200);
        let id = me["credential"]["id"].as_str().unwrap().to_owned();
        let api = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(
            api["ratelimits"],
            json!([{"name": "default", "limit": 100, "window_seconds": 3600, "auto_apply": true}])
        );
        assert_eq!(
            api["credits"],
            json!({"remaining": 49, "refill": {"interval": "monthly", "amount": 50}}),
            "the form's credits, less the /v1/me above"
        );
        // Empty fields are none: no limit, unlimited.
        let r = post_form(
            &srv,
            &session,
            "/keys",
            &[("csrf", &csrf), ("name", "plain")],
        )
        .await;
        assert!(followed(&srv, &session, r)
            .await
            .1
            .contains("id=\"new-key-value\""));

        // Another limit, set through the API, which the form leaves alone.
        srv.patch(
            &format!("/v1/keys/{id}"),
            &srv.admin_key,
            json!({"ratelimits": [
                {"name": "burst", "limit": 5, "window_seconds": 1},
                {"name": "default", "limit": 100, "window_seconds": 3600}]}),
        )
        .await
        .expect(200);
        let (status, html) = page(&srv, &session, &format!("/keys/{id}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("<svg class=\"usage-chart\"") && html.contains("role=\"img\""));
        assert!(
            html.contains("aria-label=\"1 verification in the last 24 hours: 1 valid, 0 refused\"")
                || html.contains("aria-label=\"No verifications"),
            "{html}"
        );
        assert!(!html.contains(" style=\""), "no inline style");
        assert!(html.contains("refills to 50 on day 1 of each month (UTC;"));
        assert!(html.contains("data-limit=\"burst\"") && html.contains("data-limit=\"default\""));
        assert!(html.contains(&format!("action=\"/keys/{id}/limits\"")));
        let shown_ratelimit = hidden(&html, "shown_ratelimit");
        let shown_credits = hidden(&html, "shown_credits");
        assert_eq!(
            (shown_ratelimit.as_str(), shown_credits.as_str()),
            ("100/3600", "49/monthly/50")
        );

        // A credit is spent after the page was drawn; the form then changes only the rate
        // limit, so the balance it showed (49) is not sent back.
        srv.get("/v1/me", &key).await.expect(200);
        let form = |ratelimit: &'static str, credits: &'static str| {
            vec![
                ("csrf", csrf.clone()),
                ("shown_ratelimit", shown_ratelimit.clone()),
                ("shown_credits", shown_credits.clone()),
                ("ratelimit", ratelimit.to_owned()),
                ("window_seconds", "3600".to_owned()),
                ("credits", credits.to_owned()),
                ("refill", "monthly".to_owned()),
                ("refill_amount", "50".to_owned()),
            ]
        };
        let limits = format!("/keys/{id}/limits");
        let send = |f: Vec<(&'static str, String)>| {
            let (srv, session, limits) = (&srv, &session, &limits);
            async move {
                let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                post_form(srv, session, limits, &f).await
            }
        };
        let r = send(form("", "49")).await;
        let (location, saved) = followed(&srv, &session, r).await;
        assert_eq!(location, format!("/keys/{id}"));
        let api = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(
            api["ratelimits"],
            json!([{"name": "burst", "limit": 5, "window_seconds": 1, "auto_apply": true}]),
            "an empty rate limit removes `default` and keeps the others"
        );
        assert_eq!(
            api["credits"]["remaining"], 48,
            "the credit spent stays spent"
        );
        assert!(
            saved.contains("Limits and credits saved."),
            "a confirmation"
        );
        let (_, again) = page(&srv, &session, &location).await;
        assert!(!again.contains("Limits and credits saved."), "once");

        // Changing the credits sets them; an unchanged form changes nothing.
        let r = send(form("", "10")).await;
        assert_eq!(r.status(), 303);
        let api = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(api["credits"]["remaining"], 10);
        let (_, html) = page(&srv, &session, &format!("/keys/{id}")).await;
        let unchanged = [
            ("csrf", csrf.as_str()),
            ("shown_ratelimit", ""),
            ("shown_credits", "10/monthly/50"),
            ("window_seconds", "60"),
            ("credits", "10"),
            ("refill", "monthly"),
            ("refill_amount", "50"),
        ];
        assert_eq!(hidden(&html, "shown_credits"), "10/monthly/50");
        let r = post_form(&srv, &session, &limits, &unchanged).await;
        let (location, html) = followed(&srv, &session, r).await;
        assert_eq!(location, format!("/keys/{id}"));
        assert!(html.contains("Nothing changed."));
        // Empty credits: unlimited.
        let mut f = unchanged.to_vec();
        f[4] = ("credits", "");
        f[5] = ("refill", "never");
        f[6] = ("refill_amount", "");
        assert_eq!(post_form(&srv, &session, &limits, &f).await.status(), 303);
        let api = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(api["credits"], Value::Null);

        // What cannot be read is said on the page, with what was typed kept.
        let r = send(form("lots", "10")).await;
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("ratelimit: a whole number of requests"),
            "{html}"
        );
        assert!(html.contains("value=\"lots\""), "what was typed is kept");

        // Someone else's key, and no key at all, are the same HTML 404 (here for a member, who
        // sees only their own keys; the instance admin above sees every workspace's).
        let ws = srv.workspace_of(&srv.admin_key).await;
        let pat_email = format!("pat-{}@example.com", crate::harness::random_suffix());
        let pat = srv
            .post(
                "/v1/users",
                &srv.admin_key,
                json!({"email": pat_email, "name": "Pat", "password": "a long password 1"}),
            )
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.set_member(&ws, &pat, "member").await;
        let pat_session = sign_in(&srv, &pat_email, "a long password 1")
            .await
            .expect("pat signs in");
        let pat_session = pat_session.split(';').next().unwrap().to_owned();
        let (_, pat_keys) = page(&srv, &pat_session, "/keys").await;
        let pat_csrf = csrf_of(&pat_keys);
        for path in [format!("/keys/{id}"), "/keys/key_nope".to_owned()] {
            let (status, html) = page(&srv, &pat_session, &path).await;
            assert_eq!(status, 404, "{path}");
            assert!(html.contains("<h1>Not found</h1>"), "{path}: {html}");
        }
        let r = post_form(
            &srv,
            &pat_session,
            &limits,
            &[
                ("csrf", &pat_csrf),
                ("ratelimit", "1"),
                ("window_seconds", "60"),
            ],
        )
        .await;
        assert_eq!(r.status(), 404);
        let (status, _) = page(&srv, &pat_session, &format!("/members/{pat}")).await;
        assert_eq!(status, 403, "a member's page is for admins");

        // A member's page: their usage, and their limit and credits with their role kept.
        let (casey, casey_key) = srv.member_with_key(&ws, "developer").await;
        srv.get("/v1/me", &casey_key).await.expect(200);
        let (status, html) = page(&srv, &session, &format!("/members/{casey}")).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("<svg class=\"usage-chart\""));
        assert!(html.contains("id=\"no-ratelimits\""));
        let (_, members) = page(&srv, &session, "/members").await;
        assert!(members.contains(&format!("href=\"/members/{casey}\"")));
        let r = post_form(
            &srv,
            &session,
            &format!("/members/{casey}/limits"),
            &[
                ("csrf", &csrf),
                ("shown_ratelimit", ""),
                ("shown_credits", "/never/"),
                ("ratelimit", "10"),
                ("window_seconds", "60"),
                ("credits", "7"),
                ("refill", "daily"),
            ],
        )
        .await;
        let (location, html) = followed(&srv, &session, r).await;
        assert_eq!(location, format!("/members/{casey}"));
        assert!(html.contains("Limits and credits saved."));
        let body = srv
            .get(
                &format!("/v1/workspaces/{ws}/members?limit=500"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        let m = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == casey.as_str())
            .unwrap()
            .clone();
        assert_eq!(m["role"], "developer", "the role is kept");
        assert_eq!(
            m["ratelimits"],
            json!([{"name": "member", "limit": 10, "window_seconds": 60, "auto_apply": true}])
        );
        assert_eq!(
            m["credits"],
            json!({"remaining": 7, "refill": {"interval": "daily", "amount": 7}})
        );
        let (_, html) = page(&srv, &session, &format!("/members/{casey}")).await;
        assert!(html.contains("refills to 7 every day at 00:00 UTC"));
        let other_ws = srv.workspace("Elsewhere").await;
        let (stranger, _) = srv.member_with_key(&other_ws, "admin").await;
        for path in [
            format!("/members/{stranger}"),
            "/members/usr_nope".to_owned(),
        ] {
            let (status, _) = page(&srv, &session, &path).await;
            assert_eq!(status, 404, "{path}");
        }
    })
    .await;
}
