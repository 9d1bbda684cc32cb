//! SPEC §8: the client commands against a real server, as a script or a person would run them.

use crate::harness::{eventually, Backend, ServerProcess, TempDir, TestServer};
use latchkey_client::{Client, ClientError, ClientOptions, RemoteOptions, RemoteVerifier};
use latchkey_proto::VerifyRequest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    latchkey_at(&srv.url, key, args, &[]).await
}

async fn latchkey_at(url: &str, key: Option<&str>, args: &[&str], env: &[(&str, &Path)]) -> Run {
    // tokio's Command: the server runs on this test's runtime and must keep serving meanwhile.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.args(args)
        .env("LATCHKEY_URL", url)
        .env_remove("LATCHKEY_API_KEY")
        .env_remove("LATCHKEY_CACERT");
    if let Some(k) = key {
        cmd.env("LATCHKEY_API_KEY", k);
    }
    for (name, value) in env {
        cmd.env(name, value);
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

/// A private CA (as PEM), and a certificate for 127.0.0.1 and localhost that it signed, with
/// its key: what a company's internal PKI hands a Latchkey server.
pub(crate) fn private_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    private_ca_for(dir, name, &["127.0.0.1", "localhost"])
}

/// [`private_ca`], its certificate valid for `hosts` (names or IP addresses) only.
pub(crate) fn private_ca_for(
    dir: &Path,
    name: &str,
    hosts: &[&str],
) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} internal CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    let mut leaf = CertificateParams::new(hosts).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "latchkey.internal");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

/// Issue 11: `latchkey serve --tls-cert/--tls-key` with a certificate from a private CA. The
/// client commands refuse it until told to trust that CA (`--cacert`, `LATCHKEY_CACERT`), and
/// so does the remote verifier (`ClientOptions::ca_cert`), which fails closed meanwhile.
#[tokio::test]
async fn a_private_ca_is_trusted_with_cacert_by_the_cli_and_the_remote_verifier() {
    let dir = TempDir::new();
    let (ca, cert, key) = private_ca(&dir.0, "acme");
    let (other_ca, _, _) = private_ca(&dir.0, "other");
    let srv = ServerProcess::spawn_with(
        &dir.0,
        None,
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        "https",
    );
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    eventually("the HTTPS server is ready", Duration::from_secs(15), || {
        let r = trusting.get(format!("{}/readyz", srv.url)).send();
        async move { r.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let admin = srv.admin_key();
    let list = ["keys", "list"];

    // Not trusted: a clear error naming the server, the certificate and the flag; no secret,
    // no output.
    let refused = latchkey_at(&srv.url, Some(&admin), &list, &[]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    let err = &refused.stderr;
    assert!(
        err.contains(&srv.url) && err.contains("certificate") && err.contains("--cacert"),
        "{err}"
    );
    assert!(!err.contains(&admin[8..]), "the key is never echoed: {err}");

    // A CA, but not the one that signed the server's certificate.
    let other = other_ca.to_str().unwrap();
    let wrong = latchkey_at(
        &srv.url,
        Some(&admin),
        &["--cacert", other, "keys", "list"],
        &[],
    )
    .await;
    assert_eq!(wrong.code, Some(1), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("names the CA that signed"),
        "{}",
        wrong.stderr
    );

    // A file that is not a CA at all is refused before any request.
    let not_pem = dir.0.join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let bad = latchkey_at(
        &srv.url,
        Some(&admin),
        &list,
        &[("LATCHKEY_CACERT", &not_pem)],
    )
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("holds no PEM certificate"),
        "{}",
        bad.stderr
    );

    // Trusted: by flag (anywhere on the line, it is global) and by environment.
    let ca_arg = ca.to_str().unwrap();
    for run in [
        latchkey_at(
            &srv.url,
            Some(&admin),
            &["--cacert", ca_arg, "keys", "list"],
            &[],
        )
        .await,
        latchkey_at(
            &srv.url,
            Some(&admin),
            &["keys", "list", "--cacert", ca_arg],
            &[],
        )
        .await,
        latchkey_at(&srv.url, Some(&admin), &list, &[("LATCHKEY_CACERT", &ca)]).await,
    ] {
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stdout.starts_with("ID "), "{}", run.stdout);
        assert!(run.stdout.contains("sk_live_…"), "{}", run.stdout);
    }
    let token = latchkey_at(
        &srv.url,
        Some(&admin),
        &["tokens", "exchange", "--json"],
        &[("LATCHKEY_CACERT", &ca)],
    )
    .await
    .json();
    assert_eq!(token["token_type"], "Bearer");

    // The remote verifier: fails closed without the CA, verifies and follows the change
    // stream with it.
    let request = VerifyRequest {
        key: Some(admin.clone()),
        ..Default::default()
    };
    let untrusting = Client::new(&srv.url, &admin, &ClientOptions::default()).unwrap();
    let blind = RemoteVerifier::new(untrusting, RemoteOptions::default());
    match blind.verify(&request).await {
        Err(ClientError::Unavailable(m)) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("an untrusted server is unavailable, not a verdict: {other:?}"),
    }
    let options = ClientOptions {
        ca_cert: Some(ca.clone()),
        ..Default::default()
    };
    let verifier = RemoteVerifier::new(
        Client::new(&srv.url, &admin, &options).unwrap(),
        RemoteOptions::default(),
    );
    let answer = verifier.verify(&request).await.unwrap();
    assert!(answer.valid, "{answer:?}");
    eventually(
        "the verifier follows the change stream over TLS",
        Duration::from_secs(10),
        || {
            let following = verifier.is_following();
            async move { following }
        },
    )
    .await;
    assert!(!blind.is_following());
}

/// `latchkey keys import` (SPEC §12.3): a CSV of 2,500 keys issued elsewhere goes in over three
/// requests; the rows that cannot be imported are named by line, the command says how many
/// went in and exits non-zero; JSON Lines works the same; every imported key verifies.
#[tokio::test]
async fn keys_are_imported_from_csv_and_json_lines() {
    use serde_json::json;
    for backend in crate::harness::backends() {
        let srv = TestServer::start(&backend).await;
        let admin = Some(srv.admin_key.as_str());
        let ws = srv.workspace_of(&srv.admin_key).await;
        let user = srv.user("customer").await;
        srv.set_member(&ws, &user, "developer").await;
        let dir = TempDir::new();
        let suffix = crate::harness::random_suffix();
        let key = |i: usize| format!("legacy_{suffix}_{i:06}_secret");
        let mut csv = String::from("name,key,sha256,owner_id,environment,permissions,metadata\n");
        for i in 0..2_500 {
            match i {
                // A duplicate of row 1's key, a bad environment, a missing name, quoted JSON.
                7 => csv.push_str(&format!("dup,{},,{user},live,,\n", key(0))),
                8 => csv.push_str(&format!("bad env,{},,{user},prod,,\n", key(i))),
                9 => csv.push_str(&format!(",{},,{user},live,,\n", key(i))),
                10 => csv.push_str(&format!(
                    "with metadata,{},,{user},live,documents:read documents:write,\"{{\"\"plan\"\": \"\"pro\"\"}}\"\n",
                    key(i)
                )),
                i if i % 2 == 1 => {
                    let digest = crate::upstream::sha256_hex(key(i).as_bytes());
                    csv.push_str(&format!("hashed {i},,{digest},{user},live,,\n"));
                }
                i => csv.push_str(&format!("plain {i},{},,{user},live,,\n", key(i))),
            }
        }
        let path = dir.0.join("keys.csv");
        std::fs::write(&path, csv).unwrap();
        let run = latchkey(
            &srv,
            admin,
            &["keys", "import", path.to_str().unwrap(), "--json"],
        )
        .await;
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let summary: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(summary["imported"], 2_497, "{summary}");
        let failed = summary["failed"].as_array().unwrap();
        let lines: Vec<u64> = failed.iter().map(|f| f["line"].as_u64().unwrap()).collect();
        // Line 1 is the header: row i is on line i + 2.
        assert_eq!(lines, [9, 10, 11], "{summary}");
        assert!(
            failed[0]["message"]
                .as_str()
                .unwrap()
                .contains("same key as item")
                || failed[0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("stored already"),
            "{summary}"
        );
        assert!(
            failed[1]["message"]
                .as_str()
                .unwrap()
                .starts_with("environment"),
            "{summary}"
        );
        assert!(
            failed[2]["message"].as_str().unwrap().starts_with("name"),
            "{summary}"
        );
        assert!(
            run.stderr.contains("3 of 2500 keys were not imported"),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains(&key(8)) && !run.stderr.contains(&key(8)));
        for i in [0, 1, 10, 2_498, 2_499] {
            let v = srv.verify(json!({"key": key(i)})).await;
            assert_eq!(v["valid"], true, "row {i}: {v}");
            assert_eq!(v["owner_id"], user.as_str());
        }
        let v = srv
            .verify(json!({"key": key(10), "permissions": ["documents:write"]}))
            .await;
        assert_eq!(
            (v["valid"].clone(), v["metadata"].clone()),
            (json!(true), json!({"plan": "pro"})),
            "{v}"
        );
        assert_eq!(srv.verify(json!({"key": key(8)})).await["valid"], false);

        // JSON Lines, for people: a line that is not JSON is named, the rest goes in.
        let jsonl = dir.0.join("more.jsonl");
        let lines = [
            json!({"key": format!("other_{suffix}_one_secret_key"), "name": "one", "owner_id": user, "environment": "live"}).to_string(),
            "{not json".to_owned(),
            String::new(),
            json!({"key": format!("other_{suffix}_two_secret_key"), "name": "two", "owner_id": user, "environment": "live"}).to_string(),
        ];
        std::fs::write(&jsonl, lines.join("\n")).unwrap();
        let run = latchkey(&srv, admin, &["keys", "import", jsonl.to_str().unwrap()]).await;
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(
            run.stdout.contains("Imported 2 of 3 keys."),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("line 2: not a key to import"),
            "{}",
            run.stdout
        );
        let v = srv
            .verify(json!({"key": format!("other_{suffix}_two_secret_key")}))
            .await;
        assert_eq!(v["valid"], true, "{v}");

        // An unknown column is refused before anything is sent.
        let bad = dir.0.join("bad.csv");
        std::fs::write(
            &bad,
            format!("name,secret,owner_id\nx,{},{user}\n", key(99_999)),
        )
        .unwrap();
        let run = latchkey(&srv, admin, &["keys", "import", bad.to_str().unwrap()]).await;
        assert_ne!(run.code, Some(0));
        assert!(
            run.stderr.contains("unknown column \"secret\""),
            "{}",
            run.stderr
        );
    }
}

/// SPEC §11 from the command line: limits and credits set on create, on update and on a
/// member, shown in words, and enforced by the server they were sent to.
#[tokio::test]
async fn limits_and_credits_from_the_command_line() {
    let srv = TestServer::start(&Backend::Sqlite).await;
    let admin = Some(srv.admin_key.as_str());
    let created = latchkey(
        &srv,
        admin,
        &[
            "keys",
            "create",
            "--name",
            "metered",
            "--ratelimit",
            "burst=2/60",
            "--ratelimit",
            "tokens=1000/3600,manual",
            "--credits",
            "5",
            "--refill",
            "monthly:50:31",
            "--json",
        ],
    )
    .await
    .json();
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let shown = latchkey(&srv, admin, &["keys", "get", &id]).await;
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    for words in [
        "burst: 2 per minute",
        "tokens: 1000 per hour, when a verify request names it",
        "5 left, refills to 50 on day 31 of each month",
    ] {
        assert!(shown.stdout.contains(words), "{words}: {}", shown.stdout);
    }
    // The server enforces what the command set: two pass, the third is limited.
    let codes: Vec<String> = {
        let mut v = vec![];
        for _ in 0..3 {
            v.push(
                srv.verify(serde_json::json!({"key": key})).await["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        v
    };
    assert_eq!(codes, ["VALID", "VALID", "RATE_LIMITED"]);

    // Update: new credits, limits replaced; `unlimited` removes the credits.
    let updated = latchkey(
        &srv,
        admin,
        &[
            "keys",
            "update",
            &id,
            "--credits",
            "9",
            "--ratelimit",
            "slow=1/86400",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(updated["credits"]["remaining"], 9);
    assert_eq!(updated["credits"]["refill"], Value::Null, "{updated}");
    assert_eq!(updated["ratelimits"][0]["name"], "slow");
    assert_eq!(updated["ratelimits"].as_array().unwrap().len(), 1);
    let unlimited = latchkey(
        &srv,
        admin,
        &["keys", "update", &id, "--credits", "unlimited"],
    )
    .await;
    assert_eq!(unlimited.code, Some(0), "{}", unlimited.stderr);
    let shown = latchkey(&srv, admin, &["keys", "get", &id]).await;
    assert!(shown.stdout.contains("unlimited"), "{}", shown.stdout);

    // A member's limits and credits, shared by all of their keys.
    let ws = srv.workspace_of(&srv.admin_key).await;
    let user = srv.user("metered").await;
    let set = latchkey(
        &srv,
        admin,
        &[
            "workspaces",
            "set-member",
            &ws,
            &user,
            "--role",
            "developer",
            "--ratelimit",
            "member=100/60",
            "--credits",
            "1",
        ],
    )
    .await;
    assert_eq!(set.code, Some(0), "{}", set.stderr);
    assert!(
        set.stdout.contains("member: 100 per minute"),
        "{}",
        set.stdout
    );
    assert!(
        set.stdout.contains("1 left, never refills"),
        "{}",
        set.stdout
    );
    let theirs = srv.key_for(&ws, &user, serde_json::json!({})).await;
    let theirs = theirs["key"].as_str().unwrap();
    assert_eq!(
        srv.verify(serde_json::json!({"key": theirs})).await["code"],
        "VALID"
    );
    assert_eq!(
        srv.verify(serde_json::json!({"key": theirs})).await["code"],
        "USAGE_EXCEEDED"
    );
    // A role change alone leaves them as they are.
    let again = latchkey(
        &srv,
        admin,
        &[
            "workspaces",
            "set-member",
            &ws,
            &user,
            "--role",
            "member",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(again["credits"]["remaining"], 0, "{again}");
    assert_eq!(again["ratelimits"][0]["name"], "member");
    srv.stop().await;
}
