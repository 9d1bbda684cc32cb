//! Rate limits (SPEC §11.1) as a user meets them: named limits on keys and members, charged on
//! every front door, 429 `rate_limited` with `Retry-After` and the `RateLimit` fields (also on
//! successes), the verify answer's `ratelimits`, all-or-none charging, and a changed limit that
//! keeps what was spent. Windows are long (an hour), so nothing here depends on time passing;
//! the arithmetic over time is tested on a test clock in `latchkey_core::ratelimit` and
//! `latchkey_engine::limits`.

use crate::harness::{
    backends, each_backend, PgDatabase, Resp, ServerProcess, TempDir, TestServer,
};
use reqwest::Method;
use serde_json::{json, Value};

fn header(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII").to_owned())
}

/// `r` of the `RateLimit` field for limit `name` (`"name";r=R;t=T`).
fn remaining(r: &Resp, name: &str) -> u64 {
    let field = header(r, "ratelimit").unwrap_or_else(|| panic!("no RateLimit field: {r:?}"));
    let item = field
        .split(", ")
        .find(|i| i.starts_with(&format!("\"{name}\";")))
        .unwrap_or_else(|| panic!("no limit {name} in {field}"));
    item.split(';')
        .find_map(|p| p.strip_prefix("r="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no r in {item}"))
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, self.body)
    }
}

async fn limited_key(srv: &TestServer, ratelimits: Value) -> (String, String, String) {
    let ws = srv.workspace_of(&srv.admin_key).await;
    let user = srv.user("metered").await;
    srv.set_member(&ws, &user, "developer").await;
    let key = srv
        .key_for(&ws, &user, json!({"ratelimits": ratelimits}))
        .await;
    (
        key["key"].as_str().unwrap().to_owned(),
        key["id"].as_str().unwrap().to_owned(),
        user,
    )
}

#[tokio::test]
async fn a_keys_limit_is_charged_on_every_request_and_then_answers_429() {
    each_backend(|srv| async move {
        let (key, id, _) = limited_key(
            &srv,
            json!([{"name": "burst", "limit": 3, "window_seconds": 3600}]),
        )
        .await;
        let shown = srv
            .get(&format!("/v1/keys/{id}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(
            shown["ratelimits"],
            json!([{"name": "burst", "limit": 3, "window_seconds": 3600, "auto_apply": true}])
        );
        for left in [2, 1, 0] {
            let r = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(
                header(&r, "ratelimit-policy").as_deref(),
                Some(r#""burst";q=3;w=3600"#)
            );
            assert_eq!(remaining(&r, "burst"), left);
        }
        let r = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
        // One unit rests every 1200 s.
        assert!((1..=1200).contains(&retry), "Retry-After {retry}");
        assert_eq!(remaining(&r, "burst"), 0);
        let body = r.problem(429, "rate_limited");
        assert!(body["detail"].as_str().unwrap().contains("Rate limit"));

        // The verify API answers the same verdict for the same key, with where it stands.
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(
            (v["valid"].clone(), v["code"].clone()),
            (json!(false), json!("RATE_LIMITED"))
        );
        let l = &v["ratelimits"][0];
        assert_eq!(
            (
                l["name"].clone(),
                l["limit"].clone(),
                l["remaining"].clone(),
                l["exceeded"].clone()
            ),
            (json!("burst"), json!(3), json!(0), json!(true))
        );
        assert!(l["reset_at"].as_str().unwrap().ends_with('Z'));
        assert!(l["retry_after_seconds"].as_u64().unwrap() >= 1);

        // Forward auth (and so every proxy in front of it) refuses it too; nginx gets a 403.
        let ask = |nginx: bool| {
            let (q, convention) = match nginx {
                true => ("?proxy=nginx", "x-original"),
                false => ("", "x-forwarded"),
            };
            srv.request(Method::GET, &format!("/v1/forward-auth{q}"))
                .header(format!("{convention}-method"), "GET")
                .header(format!("{convention}-uri"), "/documents")
                .header("x-api-key", &key)
        };
        let r = srv.send(ask(false)).await;
        assert_eq!(
            header(&r, "x-latchkey-code").as_deref(),
            Some("RATE_LIMITED"),
            "{r:?}"
        );
        assert!(header(&r, "retry-after").is_some() && header(&r, "ratelimit").is_some());
        r.problem(429, "rate_limited");
        let r = srv.send(ask(true)).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            header(&r, "x-latchkey-code").as_deref(),
            Some("RATE_LIMITED")
        );

        // A key without limits is not metered and carries no fields.
        let r = srv
            .call(Method::GET, "/v1/me", Some(&srv.admin_key), None)
            .await;
        assert_eq!(r.status, 200);
        assert!(header(&r, "ratelimit").is_none() && header(&r, "ratelimit-policy").is_none());
    })
    .await;
}

#[tokio::test]
async fn forward_auth_hands_the_fields_on_with_the_identity() {
    each_backend(|srv| async move {
        let (key, _, _) = limited_key(
            &srv,
            json!([{"name": "minute", "limit": 2, "window_seconds": 60}]),
        )
        .await;
        let ask = || {
            srv.request(Method::GET, "/v1/forward-auth")
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-uri", "/documents")
                .header("x-api-key", &key)
        };
        for left in [1, 0] {
            let r = srv.send(ask()).await;
            assert_eq!(r.status, 200, "{r:?}");
            assert!(header(&r, "x-latchkey-user-id")
                .unwrap()
                .starts_with("usr_"));
            assert_eq!(
                header(&r, "ratelimit-policy").as_deref(),
                Some(r#""minute";q=2;w=60"#)
            );
            assert_eq!(remaining(&r, "minute"), left);
        }
        let r = srv.send(ask()).await;
        let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
        assert!(
            (1..=30).contains(&retry),
            "one unit rests every 30 s: {retry}"
        );
        r.problem(429, "rate_limited");
    })
    .await;
}

#[tokio::test]
async fn a_members_limit_is_shared_by_all_of_their_keys_and_tokens() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let (user, first) = srv.member_with_key(&ws, "developer").await;
        let second = srv.key_for(&ws, &user, json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        // An access token of theirs, exchanged before the limit exists.
        let token = srv
            .post("/v1/auth/token", &second, json!({}))
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/workspaces/{ws}/members/{user}");
        let limits = json!([{"name": "member", "limit": 4, "window_seconds": 3600}]);
        let m = srv
            .put(
                &path,
                &srv.admin_key,
                json!({"role": "developer", "ratelimits": limits}),
            )
            .await
            .expect(200);
        assert_eq!(m["ratelimits"][0]["name"], "member");
        // A later PUT without `ratelimits` leaves them.
        srv.put(&path, &srv.admin_key, json!({"role": "developer"}))
            .await
            .expect(200);

        for (key, left) in [(&first, 3), (&second, 2), (&token, 1), (&first, 0)] {
            let r = srv.call(Method::GET, "/v1/me", Some(key), None).await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(remaining(&r, "member"), left);
        }
        for spent in [&second, &token] {
            srv.get("/v1/me", spent).await.problem(429, "rate_limited");
        }
        let v = srv.verify(json!({"key": first})).await;
        assert_eq!(v["code"], "RATE_LIMITED");

        // The change is audited, from → to.
        let audit = srv
            .get(
                &format!("/v1/audit?action=member.updated&workspace_id={ws}"),
                &srv.admin_key,
            )
            .await
            .expect(200);
        let detail = &audit["data"][0]["detail"]["ratelimits"];
        assert_eq!(detail["from"], json!([]));
        assert_eq!(detail["to"][0]["limit"], 4);

        // Lifted, the member's keys pass again at once.
        srv.put(
            &path,
            &srv.admin_key,
            json!({"role": "developer", "ratelimits": []}),
        )
        .await
        .expect(200);
        let r = srv.call(Method::GET, "/v1/me", Some(&first), None).await;
        assert_eq!(r.status, 200);
        assert!(header(&r, "ratelimit").is_none());
    })
    .await;
}

#[tokio::test]
async fn named_limits_charge_their_cost_and_a_request_passes_all_or_charges_none() {
    each_backend(|srv| async move {
        let (key, _, _) = limited_key(
            &srv,
            json!([
                {"name": "burst", "limit": 10, "window_seconds": 3600},
                {"name": "tokens", "limit": 100, "window_seconds": 3600, "auto_apply": false}
            ]),
        )
        .await;
        let standing = |v: &Value, name: &str| {
            v["ratelimits"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == name)
                .map(|l| (l["remaining"].as_u64().unwrap(), l["exceeded"].as_bool().unwrap()))
        };
        // Not named: only the auto-applied limit is charged.
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(standing(&v, "burst"), Some((9, false)));
        assert_eq!(standing(&v, "tokens"), None);

        let spend = |cost: u32| json!({"key": key, "ratelimits": [{"name": "tokens", "cost": cost}]});
        let v = srv.verify(spend(60)).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(standing(&v, "tokens"), Some((40, false)));
        assert_eq!(standing(&v, "burst"), Some((8, false)));

        // 60 more do not fit: refused, and the auto-applied limit is not charged either.
        let v = srv.verify(spend(60)).await;
        assert_eq!((v["valid"].clone(), v["code"].clone()), (json!(false), json!("RATE_LIMITED")));
        assert_eq!(standing(&v, "tokens"), Some((40, true)));
        assert_eq!(standing(&v, "burst"), Some((8, false)));
        let v = srv.verify(spend(40)).await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(standing(&v, "tokens"), Some((0, false)));
        assert_eq!(standing(&v, "burst"), Some((7, false)), "8 before: the refusal cost nothing");

        // A cost of 0 reads; a name the key does not carry charges nothing.
        let v = srv
            .verify(json!({"key": key, "ratelimits": [{"name": "tokens", "cost": 0}, {"name": "other"}]}))
            .await;
        assert_eq!(v["code"], "VALID");
        assert_eq!(standing(&v, "tokens"), Some((0, false)));
        assert_eq!(standing(&v, "other"), None);

        // Bad requests are 422s that name the field, and charge nothing.
        let r = srv
            .post(
                "/v1/verify",
                &srv.admin_key,
                json!({"key": key, "ratelimits": [{"name": "no spaces"}, {"name": "tokens", "cost": 2_000_000}]}),
            )
            .await;
        let body = r.problem(422, "validation_failed");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["ratelimits[0].name", "ratelimits[1].cost"]);
        let v = srv.verify(json!({"key": key})).await;
        assert_eq!(standing(&v, "burst"), Some((5, false)), "one each for the two verifications above");
    })
    .await;
}

#[tokio::test]
async fn changing_a_limit_applies_at_once_and_keeps_what_was_spent() {
    each_backend(|srv| async move {
        let (key, id, _) = limited_key(
            &srv,
            json!([{"name": "hourly", "limit": 5, "window_seconds": 3600}]),
        )
        .await;
        for _ in 0..3 {
            srv.get("/v1/me", &key).await.expect(200);
        }
        let lower = json!({"ratelimits": [{"name": "hourly", "limit": 4, "window_seconds": 3600}]});
        let k = srv
            .patch(&format!("/v1/keys/{id}"), &srv.admin_key, lower)
            .await
            .expect(200);
        assert_eq!(k["ratelimits"][0]["limit"], 4);
        // 3 of 5 spent is 60 % of the window: under 4 per hour one more fits, not four (a reset).
        let r = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            header(&r, "ratelimit-policy").as_deref(),
            Some(r#""hourly";q=4;w=3600"#)
        );
        assert_eq!(remaining(&r, "hourly"), 0);
        srv.get("/v1/me", &key).await.problem(429, "rate_limited");

        // The audit log says what the limits were and became.
        let audit = srv
            .get("/v1/audit?action=key.updated", &srv.admin_key)
            .await
            .expect(200);
        let e = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["id"] == id.as_str())
            .expect("the key's update is audited");
        assert_eq!(e["detail"]["ratelimits"]["from"][0]["limit"], 5);
        assert_eq!(e["detail"]["ratelimits"]["to"][0]["limit"], 4);

        // Removed: the key is not metered any more.
        srv.patch(
            &format!("/v1/keys/{id}"),
            &srv.admin_key,
            json!({"ratelimits": []}),
        )
        .await
        .expect(200);
        let r = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        assert_eq!(r.status, 200);
        assert!(header(&r, "ratelimit").is_none());
    })
    .await;
}

#[tokio::test]
async fn invalid_limits_are_422s_that_change_nothing() {
    each_backend(|srv| async move {
        let ws = srv.workspace_of(&srv.admin_key).await;
        let before = srv.key_count(&srv.admin_key).await;
        let bad = json!({"name": "k", "workspace_id": ws, "ratelimits": [
            {"name": "", "limit": 1, "window_seconds": 60},
            {"name": "zero", "limit": 0, "window_seconds": 60},
            {"name": "long", "limit": 1, "window_seconds": 40_000_000},
            {"name": "dup", "limit": 1, "window_seconds": 60},
            {"name": "dup", "limit": 1, "window_seconds": 60}
        ]});
        let body = srv.post("/v1/keys", &srv.admin_key, bad).await.problem(422, "validation_failed");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "ratelimits[0].name",
                "ratelimits[1].limit",
                "ratelimits[2].window_seconds",
                "ratelimits[4].name"
            ]
        );
        let unknown = json!({"name": "k", "ratelimits": [{"name": "a", "limit": 1, "window_seconds": 60, "burst": 5}]});
        srv.post("/v1/keys", &srv.admin_key, unknown).await.problem(422, "validation_failed");
        assert_eq!(srv.key_count(&srv.admin_key).await, before);
    })
    .await;
}

#[tokio::test]
async fn concurrent_verifications_pass_exactly_the_limit() {
    each_backend(|srv| async move {
        let (key, _, _) = limited_key(
            &srv,
            json!([{"name": "exact", "limit": 100, "window_seconds": 3600}]),
        )
        .await;
        let srv = std::sync::Arc::new(srv);
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (srv, key) = (srv.clone(), key.clone());
                tokio::spawn(async move { srv.verify(json!({"key": key})).await["code"].clone() })
            })
            .collect();
        let mut valid = 0;
        for t in tasks {
            let code = t.await.unwrap();
            match code.as_str() {
                Some("VALID") => valid += 1,
                Some("RATE_LIMITED") => {}
                other => panic!("unexpected code {other:?}"),
            }
        }
        assert_eq!(valid, 100);
    })
    .await;
}

/// The fields as an independent RFC 9651 parser reads them: PyPI's `http-sf` (pinned in
/// `.ci/run`), run by the Python in LATCHKEY_TEST_PYTHON.
fn parsed_by_http_sf(fields: &[String]) -> Value {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, json, http_sf\n\
             print(json.dumps([http_sf.parse(f.encode(), tltype='list') for f in sys.argv[1:]]))",
        ])
        .args(fields)
        .output()
        .unwrap_or_else(|e| panic!("{python} runs: {e}"));
    assert!(
        out.status.success(),
        "http-sf parses the fields (.ci/run installs it; LATCHKEY_TEST_PYTHON names the Python): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_fields_are_structured_field_lists_to_an_independent_parser() {
    each_backend(|srv| async move {
        let (key, _, _) = limited_key(
            &srv,
            json!([
                {"name": "burst", "limit": 2, "window_seconds": 60},
                {"name": "daily", "limit": 10000, "window_seconds": 86400}
            ]),
        )
        .await;
        let fields = |r: &Resp| {
            vec![
                header(r, "ratelimit-policy").expect("RateLimit-Policy"),
                header(r, "ratelimit").expect("RateLimit"),
            ]
        };
        let ok = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        assert_eq!(ok.status, 200);
        let parsed = parsed_by_http_sf(&fields(&ok));
        assert_eq!(
            parsed[0],
            json!([["burst", {"q": 2, "w": 60}], ["daily", {"q": 10000, "w": 86400}]])
        );
        assert_eq!(parsed[1][0], json!(["burst", {"r": 1, "t": 30}]));
        assert_eq!(parsed[1][1], json!(["daily", {"r": 9999, "t": 9}]));

        srv.get("/v1/me", &key).await.expect(200);
        let refused = srv.call(Method::GET, "/v1/me", Some(&key), None).await;
        assert_eq!(refused.status, 429);
        let parsed = parsed_by_http_sf(&fields(&refused));
        let burst = &parsed[1][0];
        assert_eq!(
            (burst[0].clone(), burst[1]["r"].clone()),
            (json!("burst"), json!(0))
        );
        // Refused: nothing more was charged, so daily still shows two spent.
        assert_eq!(parsed[1][1][1]["r"], 9998);
    })
    .await;
}

/// SPEC §11.3: `latchkey_*` metrics per outcome, limits and credits included, on the verify
/// API and on the API's own authentication alike. The metrics recorder is a process's, so
/// this test runs the real binary in a process of its own: in this one, every other test of
/// the run moves the same counters at the same time.
#[tokio::test]
async fn refusals_by_limits_and_credits_are_counted_per_outcome() {
    for backend in backends() {
        let dir = TempDir::new();
        let pg = PgDatabase::for_backend(&backend).await;
        let srv = ServerProcess::spawn(&dir.0, pg.as_ref().map(|p| p.url.as_str()), &[]);
        srv.wait_ready().await;
        let admin = srv.admin_key();
        let http = reqwest::Client::new();
        let send = |method: Method, path: &str, key: &str, body: Option<Value>| {
            let rb = http
                .request(method, format!("{}{path}", srv.url))
                .bearer_auth(key);
            let rb = match body {
                Some(b) => rb.json(&b),
                None => rb,
            };
            async move {
                let r = rb.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let create = |extra: Value| {
            let mut body = json!({"name": "metered"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let sent = send(Method::POST, "/v1/keys", &admin, Some(body));
            async move {
                let (status, body) = sent.await;
                assert_eq!(status, 201, "{body}");
                body["key"].as_str().unwrap().to_owned()
            }
        };
        let limited =
            create(json!({"ratelimits": [{"name": "one", "limit": 1, "window_seconds": 3600}]}))
                .await;
        let prepaid = create(json!({"credits": {"remaining": 1}})).await;
        let verify = |key: &str| {
            let sent = send(
                Method::POST,
                "/v1/verify",
                &admin,
                Some(json!({"key": key})),
            );
            async move { sent.await.1["code"].as_str().unwrap().to_owned() }
        };
        let me = |key: &str| {
            let sent = send(Method::GET, "/v1/me", key, None);
            async move {
                let (status, body) = sent.await;
                (status, body["code"].as_str().unwrap_or("").to_owned())
            }
        };
        let metrics = || {
            let sent = http.get(format!("{}/metrics", srv.url)).send();
            async move { sent.await.unwrap().text().await.unwrap() }
        };
        let series = [
            ("RATE_LIMITED", "verify"),
            ("RATE_LIMITED", "auth"),
            ("USAGE_EXCEEDED", "verify"),
            ("USAGE_EXCEEDED", "auth"),
        ];
        let counts = |text: String| {
            series.map(|(code, source)| {
                let name =
                    format!("latchkey_verifications_total{{code=\"{code}\",source=\"{source}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(name.as_str()))
                    .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
            })
        };
        let before = counts(metrics().await);

        assert_eq!(verify(&limited).await, "VALID");
        assert_eq!(verify(&limited).await, "RATE_LIMITED");
        assert_eq!(me(&limited).await, (429, "rate_limited".to_owned()));
        assert_eq!(me(&limited).await, (429, "rate_limited".to_owned()));
        assert_eq!(me(&prepaid).await.0, 200);
        assert_eq!(me(&prepaid).await, (429, "usage_exceeded".to_owned()));
        for _ in 0..3 {
            assert_eq!(verify(&prepaid).await, "USAGE_EXCEEDED");
        }

        let after = counts(metrics().await);
        let moved: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        assert_eq!(moved, [1.0, 2.0, 3.0, 1.0], "{}", backend.name());
        drop(srv);
        drop(pg);
    }
}
