//! SPEC §8: the client commands against a real server, as a script or a person would run them.

use crate::harness::{Backend, TestServer};
use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

async fn latchkey(srv: &TestServer, key: Option<&str>, args: &[&str]) -> Run {
    // tokio's Command: the server runs on this test's runtime and must keep serving meanwhile.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.args(args)
        .env("LATCHKEY_URL", &srv.url)
        .env_remove("LATCHKEY_API_KEY");
    if let Some(k) = key {
        cmd.env("LATCHKEY_API_KEY", k);
    }
    let out = cmd.output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[tokio::test]
async fn key_lifecycle_from_the_command_line() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let admin = Some(srv.admin_key.as_str());

    let created = latchkey(
        &srv,
        admin,
        &[
            "keys",
            "create",
            "--name",
            "cli key",
            "--environment",
            "test",
            "--permission",
            "documents:read",
            "--json",
        ],
    )
    .await
    .json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_test_"));
    assert_eq!(
        created["permissions"],
        serde_json::json!(["documents:read"])
    );

    // For people: the key once, with a warning; tables show only the redacted form.
    let human = latchkey(&srv, admin, &["keys", "create", "--name", "for people"]).await;
    assert_eq!(human.code, Some(0), "{}", human.stderr);
    assert!(human.stdout.contains("sk_live_"));
    assert!(
        human.stdout.to_lowercase().contains("not be shown again")
            || human
                .stdout
                .to_lowercase()
                .contains("cannot be shown again"),
        "{}",
        human.stdout
    );
    let table = latchkey(&srv, admin, &["keys", "list"]).await;
    assert_eq!(table.code, Some(0));
    assert!(
        table.stdout.contains("cli key")
            && table.stdout.contains(created["redacted"].as_str().unwrap())
    );
    assert!(
        !table.stdout.contains(&key[8..]),
        "a list never shows a secret"
    );

    let got = latchkey(&srv, admin, &["keys", "get", &id, "--json"])
        .await
        .json();
    assert_eq!(got["id"], id.as_str());
    assert!(got.get("key").is_none());

    let rolled = latchkey(
        &srv,
        admin,
        &["keys", "roll", &id, "--grace-seconds", "60", "--json"],
    )
    .await
    .json();
    let new_key = rolled["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    srv.get("/v1/me", new_key).await.expect(200);

    let revoked = latchkey(
        &srv,
        admin,
        &["keys", "revoke", rolled["id"].as_str().unwrap()],
    )
    .await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.stderr);
    srv.get("/v1/me", new_key)
        .await
        .problem(401, "invalid_credentials");
    let listed = latchkey(
        &srv,
        admin,
        &["keys", "list", "--status", "revoked", "--json"],
    )
    .await
    .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn users_and_workspaces_from_the_command_line() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let admin = Some(srv.admin_key.as_str());
    let ws = latchkey(
        &srv,
        admin,
        &["workspaces", "create", "--name", "From CLI", "--json"],
    )
    .await
    .json();
    let ws_id = ws["id"].as_str().unwrap();
    let user = latchkey(
        &srv,
        admin,
        &[
            "users",
            "create",
            "--email",
            "cli@example.com",
            "--name",
            "Cli User",
            "--json",
        ],
    )
    .await
    .json();
    let user_id = user["id"].as_str().unwrap();
    let m = latchkey(
        &srv,
        admin,
        &[
            "workspaces",
            "set-member",
            ws_id,
            user_id,
            "--role",
            "developer",
        ],
    )
    .await;
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let members = latchkey(&srv, admin, &["workspaces", "members", ws_id, "--json"])
        .await
        .json();
    let roles: Vec<_> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert!(roles.contains(&"developer".to_owned()));
    let people = latchkey(&srv, admin, &["users", "list"]).await;
    assert!(people.stdout.contains("cli@example.com"));
    let gone = latchkey(&srv, admin, &["users", "deactivate", user_id]).await;
    assert_eq!(gone.code, Some(0), "{}", gone.stderr);
    let u = latchkey(&srv, admin, &["users", "get", user_id, "--json"])
        .await
        .json();
    assert_eq!(u["active"], false);
    srv.stop().await;
}

#[tokio::test]
async fn instance_roles_from_the_command_line() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let admin = Some(srv.admin_key.as_str());
    let gateway = latchkey(
        &srv,
        admin,
        &[
            "users",
            "create",
            "--email",
            "gateway@example.com",
            "--name",
            "Gateway",
            "--instance-role",
            "verifier",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(gateway["instance_role"], "verifier");
    let id = gateway["id"].as_str().unwrap();
    let shown = latchkey(&srv, admin, &["users", "get", id]).await;
    assert!(
        shown.stdout.contains("Instance role") && shown.stdout.contains("verifier"),
        "{}",
        shown.stdout
    );
    for (flag, wanted) in [("admin", serde_json::json!("admin")), ("none", Value::Null)] {
        let u = latchkey(
            &srv,
            admin,
            &["users", "update", id, "--instance-role", flag, "--json"],
        )
        .await
        .json();
        assert_eq!(u["instance_role"], wanted, "{flag}");
    }
    let renamed = latchkey(
        &srv,
        admin,
        &["users", "update", id, "--name", "Edge gateway", "--json"],
    )
    .await
    .json();
    assert_eq!(renamed["name"], "Edge gateway");
    // The last instance admin stays one: the server's 409, said in words, and a failing exit.
    let last = latchkey(
        &srv,
        admin,
        &[
            "users",
            "update",
            &srv.admin_user_id,
            "--instance-role",
            "none",
        ],
    )
    .await;
    assert_ne!(last.code, Some(0));
    assert!(
        last.stderr.contains("last instance admin"),
        "{}",
        last.stderr
    );
    let nothing = latchkey(&srv, admin, &["users", "update", id]).await;
    assert_ne!(nothing.code, Some(0));
    srv.stop().await;
}

#[tokio::test]
async fn errors_show_the_problem_detail_and_exit_non_zero() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let bad = latchkey(&srv, Some("sk_live_wrong"), &["keys", "list"]).await;
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("Invalid or missing API key"),
        "{}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("sk_live_wrong"),
        "the key is never echoed"
    );

    let invalid = latchkey(
        &srv,
        Some(&srv.admin_key),
        &["keys", "create", "--name", ""],
    )
    .await;
    assert_eq!(invalid.code, Some(1));
    assert!(invalid.stderr.contains("name"), "{}", invalid.stderr);

    let missing = latchkey(
        &srv,
        Some(&srv.admin_key),
        &["keys", "get", "key_0000000000000000000x"],
    )
    .await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("Not found"), "{}", missing.stderr);

    let none = latchkey(&srv, None, &["keys", "list"]).await;
    assert_eq!(none.code, Some(1));
    assert!(none.stderr.contains("LATCHKEY_API_KEY"), "{}", none.stderr);
    srv.stop().await;
}

#[tokio::test]
async fn tokens_from_the_command_line() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let admin = Some(srv.admin_key.as_str());
    let exchanged = latchkey(
        &srv,
        admin,
        &["tokens", "exchange", "--ttl-seconds", "120", "--json"],
    )
    .await
    .json();
    let jwt = exchanged["access_token"].as_str().unwrap();
    assert_eq!(exchanged["expires_in"], 120);
    srv.get("/v1/me", jwt).await.expect(200);

    let created = latchkey(
        &srv,
        admin,
        &["tokens", "create", "--name", "Live server", "--json"],
    )
    .await
    .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["access_token"].as_str().unwrap().to_owned();
    let listed = latchkey(&srv, admin, &["tokens", "list"]).await;
    assert!(listed.stdout.contains("Live server") && listed.stdout.contains(&id));
    assert!(
        !listed.stdout.contains(&first[..30]),
        "a list never shows a token"
    );
    let renewed = latchkey(&srv, admin, &["tokens", "renew", &id, "--json"])
        .await
        .json();
    srv.get("/v1/me", &first)
        .await
        .problem(401, "invalid_credentials");
    let second = renewed["access_token"].as_str().unwrap();
    srv.get("/v1/me", second).await.expect(200);
    let revoked = latchkey(
        &srv,
        admin,
        &["tokens", "revoke", renewed["id"].as_str().unwrap()],
    )
    .await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.stderr);
    srv.get("/v1/me", second)
        .await
        .problem(401, "invalid_credentials");
    srv.stop().await;
}
