//! The typed client's contract (issue 11): every request type of `latchkey-proto` is accepted
//! by the real server (whose request bodies refuse unknown fields), and every answer reads into
//! its proto type and writes back to exactly the JSON the server sent. A field the server adds,
//! renames or retypes, on either backend, fails here before it silently vanishes from the CLI.

use crate::harness::{each_backend, TestServer};
use latchkey_client::{Call, Client, ClientError, ClientOptions};
use latchkey_core::credits::{Credits, Interval, Refill};
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{Environment, KeyType, Permission, Secret};
use latchkey_proto::audit::{AuditEvent, AuditFilter};
use latchkey_proto::keys::{
    CreateKey, ImportKey, ImportKeys, KeyFilter, KeyStatus, RollKey, UpdateKey,
};
use latchkey_proto::me::{CredentialType, Me};
use latchkey_proto::tokens::{CreateToken, Exchange, TokenStatus};
use latchkey_proto::users::{CreateUser, UpdateUser, UserFilter};
use latchkey_proto::workspaces::{
    CreateGrant, CreateWorkspace, GrantFilter, PutMember, PutRole, UpdateWorkspace,
};
use latchkey_proto::{List, Page, Patch, Problem};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

fn client(srv: &TestServer, key: &str) -> Client {
    Client::new(&srv.url, key, &ClientOptions::default()).unwrap()
}

fn perm(p: &str) -> Permission {
    Permission::parse(p).unwrap()
}

/// `raw` read as a `T` and written back: exactly `raw` again, or the test fails naming `what`.
#[track_caller]
fn same_as_sent<T: DeserializeOwned + Serialize>(what: &str, raw: Value) -> T {
    let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| {
        panic!("{what}: the answer does not read as the proto type: {e}\n{raw:#}")
    });
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        back, raw,
        "{what}: the proto type does not write back the server's JSON (a field added, renamed or retyped?)"
    );
    typed
}

/// Sends `call` and checks its answer against its proto type; returns the typed answer.
async fn checked<T: DeserializeOwned + Serialize>(what: &str, call: Call<'_, T>) -> T {
    let raw: Value = call
        .send_as()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    same_as_sent(what, raw)
}

/// Like [`checked`] for lists, reading every item of every page.
async fn checked_list<T: DeserializeOwned + Serialize>(
    what: &str,
    call: Call<'_, List<T>>,
) -> List<T> {
    let raw = call
        .all_as::<Value>()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    same_as_sent(what, serde_json::to_value(raw).unwrap())
}

/// The problem of a failed call: checked against `Problem`, with its status and code.
async fn problem<T: DeserializeOwned + Send>(
    what: &str,
    call: Call<'_, T>,
    status: u16,
    code: &str,
) -> Problem {
    match call.await {
        Err(ClientError::Api {
            status: s, problem, ..
        }) => {
            assert_eq!(
                (s, problem.code.as_str()),
                (status, code),
                "{what}: {problem:?}"
            );
            assert_eq!(problem.status, status, "{what}");
            assert_eq!(
                problem.r#type,
                format!("urn:latchkey:problem:{code}"),
                "{what}"
            );
            *problem
        }
        Err(e) => panic!("{what}: expected a {status} problem, got {e:?}"),
        Ok(_) => panic!("{what}: expected a {status} problem, got an answer"),
    }
}

#[tokio::test]
async fn every_answer_reads_into_its_proto_type_and_writes_back_unchanged() {
    each_backend(|srv| async move {
        let b = srv.backend_name();
        let admin = client(&srv, &srv.admin_key);

        // Identity.
        let me = checked(&format!("{b} GET /v1/me"), admin.me()).await;
        assert_eq!(me.credential.credential_type, CredentialType::ApiKey);
        let home = me.workspace.id.clone();

        // Workspaces and their settings.
        let ws = checked(
            "POST /v1/workspaces",
            admin.workspaces().create(&CreateWorkspace {
                name: "Contract".into(),
            }),
        )
        .await;
        checked("GET /v1/workspaces/{id}", admin.workspaces().get(&ws.id)).await;
        let every_setting = UpdateWorkspace {
            name: Some("Contract, renamed".into()),
            require_pair: Some(false),
            publishable_permissions: Some(vec![perm("docs:read")]),
            max_key_ttl_seconds: Patch::Set(86_400),
        };
        let updated = checked(
            "PATCH /v1/workspaces/{id}",
            admin.workspaces().update(&ws.id, &every_setting),
        )
        .await;
        assert_eq!(updated.max_key_ttl_seconds, Some(86_400));
        let cleared = UpdateWorkspace {
            max_key_ttl_seconds: Patch::Clear,
            ..Default::default()
        };
        let updated = checked(
            "PATCH /v1/workspaces/{id} (clear)",
            admin.workspaces().update(&ws.id, &cleared),
        )
        .await;
        assert_eq!(updated.max_key_ttl_seconds, None);
        assert_eq!(updated.publishable_permissions, [perm("docs:read")]);
        let page = Page {
            limit: Some(1),
            cursor: None,
        };
        let all = checked_list("GET /v1/workspaces", admin.workspaces().list(&page)).await;
        assert!(all.data.len() >= 2);

        // Users.
        let dev = checked(
            "POST /v1/users",
            admin.users().create(&CreateUser {
                email: format!("dev-{b}@contract.test"),
                name: "Dana Dev".into(),
                password: Some(Secret::new("a long enough password")),
                instance_role: None,
            }),
        )
        .await;
        let gateway = checked(
            "POST /v1/users (verifier)",
            admin.users().create(&CreateUser {
                email: format!("gw-{b}@contract.test"),
                name: "Gateway".into(),
                password: None,
                instance_role: Some(InstanceRole::Verifier),
            }),
        )
        .await;
        assert_eq!(gateway.instance_role, Some(InstanceRole::Verifier));
        checked("GET /v1/users/{id}", admin.users().get(&dev.id)).await;
        let renamed = UpdateUser {
            name: Some("Dana D.".into()),
            instance_role: Patch::Set(InstanceRole::Admin),
        };
        let u = checked(
            "PATCH /v1/users/{id}",
            admin.users().update(&gateway.id, &renamed),
        )
        .await;
        assert!(u.is_instance_admin);
        let demote = UpdateUser {
            instance_role: Patch::Clear,
            ..Default::default()
        };
        let u = checked(
            "PATCH /v1/users/{id} (demote)",
            admin.users().update(&gateway.id, &demote),
        )
        .await;
        assert_eq!(u.instance_role, None);
        let everyone = UserFilter {
            workspace_id: None,
            page: page.clone(),
        };
        checked_list("GET /v1/users", admin.users().list(&everyone)).await;

        // Members, roles, grants.
        let as_dev = PutMember {
            role: "developer".into(),
            ratelimits: Some(vec![limit("member-burst", 1000, 60, true)]),
            credits: Patch::Set(Credits {
                remaining: 5000,
                refill: Some(Refill {
                    interval: Interval::Monthly,
                    amount: 5000,
                    day: Some(31),
                }),
            }),
        };
        let m = checked(
            "PUT /v1/workspaces/{id}/members/{user} (added)",
            admin.workspaces().put_member(&ws.id, &dev.id, &as_dev),
        )
        .await;
        assert_eq!(m.role, "developer");
        let as_viewer = PutMember {
            role: "viewer".into(),
            ratelimits: None,
            credits: Patch::Keep,
        };
        checked(
            "PUT /v1/workspaces/{id}/members/{user} (changed)",
            admin.workspaces().put_member(&ws.id, &dev.id, &as_viewer),
        )
        .await;
        checked(
            "PUT /v1/workspaces/{id}/members/{user} (changed back)",
            admin.workspaces().put_member(&ws.id, &dev.id, &as_dev),
        )
        .await;
        checked(
            "PUT /v1/workspaces/{id}/members/{user} (gateway)",
            admin.workspaces().put_member(
                &ws.id,
                &gateway.id,
                &PutMember {
                    role: "member".into(),
                    ratelimits: None,
                    credits: Patch::Clear,
                },
            ),
        )
        .await;
        let members = checked_list(
            "GET /v1/workspaces/{id}/members",
            admin.workspaces().members(&ws.id, &page),
        )
        .await;
        assert_eq!(
            members.data.len(),
            3,
            "the creator, the developer, the gateway"
        );
        let in_ws = UserFilter {
            workspace_id: Some(ws.id.clone()),
            page: Page::default(),
        };
        checked_list("GET /v1/users?workspace_id", admin.users().list(&in_ws)).await;
        let roles = checked_list(
            "GET /v1/workspaces/{id}/roles",
            admin.workspaces().roles(&ws.id),
        )
        .await;
        assert!(roles.data.iter().any(|r| r.name == "viewer" && r.built_in));
        checked(
            "GET /v1/workspaces/{id}/roles/{role}",
            admin.workspaces().role(&ws.id, "viewer"),
        )
        .await;
        let support = PutRole {
            permissions: vec![perm("tickets:read"), perm("tickets:*:write")],
        };
        let role = checked(
            "PUT /v1/workspaces/{id}/roles/{role}",
            admin.workspaces().put_role(&ws.id, "support", &support),
        )
        .await;
        assert!(!role.built_in);
        let grant = checked(
            "POST /v1/workspaces/{id}/grants",
            admin.workspaces().create_grant(
                &ws.id,
                &CreateGrant {
                    user_id: dev.id.clone(),
                    permission: perm("billing:read"),
                },
            ),
        )
        .await;
        let of_dev = GrantFilter {
            user_id: Some(dev.id.clone()),
            page: Page::default(),
        };
        let grants = checked_list(
            "GET /v1/workspaces/{id}/grants",
            admin.workspaces().grants(&ws.id, &of_dev),
        )
        .await;
        assert_eq!(grants.data, std::slice::from_ref(&grant));
        admin
            .workspaces()
            .delete_grant(&ws.id, &grant.id)
            .await
            .unwrap();
        admin
            .workspaces()
            .remove_member(&ws.id, &gateway.id)
            .await
            .unwrap();

        // Keys: every field of SPEC §6.2 on create and on update.
        let every_field = CreateKey {
            name: "browser".into(),
            key_type: Some(KeyType::Publishable),
            environment: Some(Environment::Test),
            workspace_id: Some(ws.id.clone()),
            owner_id: Some(dev.id.clone()),
            permissions: Some(vec![perm("docs:read")]),
            expires_at: Some("2099-01-01T00:00:00Z".parse().unwrap()),
            allowed_origins: Some(vec!["https://app.example.com".into()]),
            allowed_ips: Some(vec!["10.0.0.1".into(), "192.168.0.0/16".into()]),
            metadata: Some(json!({"team": "web", "tier": 2})),
            ratelimits: Some(vec![
                limit("burst", 100, 60, true),
                limit("tokens", 10_000, 86_400, false),
            ]),
            credits: Some(Credits {
                remaining: 100,
                refill: Some(Refill {
                    interval: Interval::Daily,
                    amount: 100,
                    day: None,
                }),
            }),
        };
        let created = checked("POST /v1/keys", admin.keys().create(&every_field)).await;
        assert!(created.secret.expose().starts_with("pk_test_"));
        assert_eq!(created.key.allowed_ips, ["10.0.0.1/32", "192.168.0.0/16"]);
        let id = created.key.id.clone();
        checked("GET /v1/keys/{id}", admin.keys().get(&id)).await;
        let update_all = UpdateKey {
            name: Some("browser, renamed".into()),
            permissions: Patch::Set(vec![perm("docs:read"), perm("docs:list")]),
            expires_at: Patch::Set("2098-01-01T00:00:00Z".parse().unwrap()),
            enabled: Some(false),
            allowed_origins: Some(vec!["https://*.example.com".into()]),
            allowed_ips: Some(vec![]),
            metadata: Some(json!({})),
            ratelimits: Some(vec![limit("burst", 50, 60, true)]),
            credits: Patch::Set(Credits {
                remaining: 7,
                refill: None,
            }),
        };
        let k = checked("PATCH /v1/keys/{id}", admin.keys().update(&id, &update_all)).await;
        assert_eq!(k.status, KeyStatus::Disabled);
        let clear = UpdateKey {
            permissions: Patch::Clear,
            expires_at: Patch::Clear,
            enabled: Some(true),
            ..Default::default()
        };
        let k = checked(
            "PATCH /v1/keys/{id} (clear)",
            admin.keys().update(&id, &clear),
        )
        .await;
        assert_eq!((k.permissions, k.expires_at), (None, None));
        let rolled = checked(
            "POST /v1/keys/{id}/roll",
            admin.keys().roll(
                &id,
                &RollKey {
                    grace_seconds: Some(60),
                },
            ),
        )
        .await;
        let old = checked("GET /v1/keys/{id} (rolled)", admin.keys().get(&id)).await;
        assert_eq!(old.rolled_to.as_deref(), Some(rolled.key.id.as_str()));
        checked(
            "POST /v1/keys/{id}/roll (no body fields)",
            admin.keys().roll(&rolled.key.id, &RollKey::default()),
        )
        .await;
        // Import: every field of SPEC §12.3, by plaintext and by SHA-256.
        let every_import_field = ImportKey {
            key: Some(Secret::new(format!("contract_live_{b}_0123456789abcdef"))),
            sha256: None,
            name: "imported".into(),
            owner_id: dev.id.clone(),
            workspace_id: Some(ws.id.clone()),
            environment: Some(Environment::Test),
            key_type: Some(KeyType::Secret),
            permissions: Some(vec![perm("docs:read")]),
            expires_at: Some("2099-01-01T00:00:00Z".parse().unwrap()),
            metadata: Some(json!({"from": "legacy"})),
        };
        let by_digest = ImportKey {
            key: None,
            sha256: Some(format!("{:0>64}", b.len())),
            name: "by digest".into(),
            owner_id: dev.id.clone(),
            workspace_id: Some(ws.id.clone()),
            ..Default::default()
        };
        let imported = checked(
            "POST /v1/keys/import",
            admin.keys().import(&ImportKeys {
                keys: vec![every_import_field, by_digest],
            }),
        )
        .await;
        assert_eq!(imported.imported.len(), 2, "{imported:?}");
        checked(
            "GET /v1/keys/{id} (imported)",
            admin.keys().get(&imported.imported[0].id),
        )
        .await;
        admin.keys().revoke(&rolled.key.id).await.unwrap();
        let revoked = checked(
            "GET /v1/keys/{id} (revoked)",
            admin.keys().get(&rolled.key.id),
        )
        .await;
        assert_eq!(revoked.status, KeyStatus::Revoked);
        let filter = KeyFilter {
            workspace_id: Some(ws.id.clone()),
            owner_id: Some(dev.id.clone()),
            environment: Some(Environment::Test),
            status: Some(KeyStatus::Revoked),
            page: page.clone(),
        };
        let listed = checked_list("GET /v1/keys (filtered)", admin.keys().list(&filter)).await;
        assert_eq!(listed.data.len(), 1);
        checked_list("GET /v1/keys", admin.keys().list(&KeyFilter::default())).await;

        // A developer's own secret key, and what it sees of itself.
        let dev_key = checked(
            "POST /v1/keys (for a member)",
            admin.keys().create(&CreateKey {
                name: "laptop".into(),
                workspace_id: Some(ws.id.clone()),
                owner_id: Some(dev.id.clone()),
                environment: Some(Environment::Live),
                ..Default::default()
            }),
        )
        .await;
        let as_dev = client(&srv, dev_key.secret.expose());
        let me = checked("GET /v1/me (member)", as_dev.me()).await;
        assert_eq!(me.workspace.role.as_deref(), Some("developer"));
        let publishable = checked(
            "POST /v1/keys (publishable, own)",
            as_dev.keys().create(&CreateKey {
                name: "site".into(),
                key_type: Some(KeyType::Publishable),
                ..Default::default()
            }),
        )
        .await;
        let me = checked(
            "GET /v1/me (publishable)",
            client(&srv, publishable.secret.expose()).me(),
        )
        .await;
        assert_eq!(me.user.email, None);

        // Tokens.
        let exchange = Exchange {
            ttl_seconds: Some(600),
            permissions: Some(vec![perm("docs:read")]),
            ..Default::default()
        };
        let token = checked("POST /v1/auth/token", as_dev.tokens().exchange(&exchange)).await;
        assert_eq!(
            (token.token_type.as_str(), token.expires_in),
            ("Bearer", 600)
        );
        let me = checked(
            "GET /v1/me (access token)",
            client(&srv, token.access_token.expose()).me(),
        )
        .await;
        assert_eq!(me.credential.credential_type, CredentialType::AccessToken);
        // The pair: the key beside its token (the client sends one credential, so by hand).
        let pair = srv
            .send(
                srv.request(reqwest::Method::GET, "/v1/me")
                    .header("x-api-key", dev_key.secret.expose())
                    .bearer_auth(token.access_token.expose()),
            )
            .await
            .expect(200);
        let me: Me = same_as_sent("GET /v1/me (pair)", pair);
        assert_eq!(me.paired_key_id.as_deref(), Some(dev_key.key.id.as_str()));
        let body_key = Exchange {
            api_key: Some(Secret::new(dev_key.secret.expose())),
            ..Default::default()
        };
        checked(
            "POST /v1/auth/token (key in the body too)",
            as_dev.tokens().exchange(&body_key),
        )
        .await;
        let env_token = checked(
            "POST /v1/tokens",
            as_dev.tokens().create(&CreateToken {
                name: "deploy".into(),
                environment: Some(Environment::Live),
                ttl_seconds: Some(3600),
            }),
        )
        .await;
        assert_eq!(env_token.expires_in, 3600);
        let renewed = checked(
            "POST /v1/tokens/{id}/renew",
            as_dev.tokens().renew(&env_token.token.id),
        )
        .await;
        as_dev.tokens().revoke(&renewed.token.id).await.unwrap();
        let tokens = checked_list("GET /v1/tokens", as_dev.tokens().list(&page)).await;
        assert!(tokens.data.iter().all(|t| t.status == TokenStatus::Revoked));

        // The audit log of all of it, every page.
        let events = checked_list(
            "GET /v1/audit",
            admin.audit(&AuditFilter {
                page: Page {
                    limit: Some(500),
                    cursor: None,
                },
                ..Default::default()
            }),
        )
        .await;
        let actions: Vec<&str> = events.data.iter().map(|e| e.action.as_str()).collect();
        for a in [
            "workspace.created",
            "workspace.updated",
            "user.created",
            "user.updated",
            "member.added",
            "member.role_changed",
            "member.removed",
            "role.updated",
            "grant.created",
            "grant.deleted",
            "key.created",
            "key.updated",
            "key.rolled",
            "key.revoked",
            "token.issued",
            "token.renewed",
            "token.revoked",
        ] {
            assert!(actions.contains(&a), "{b}: no {a} event among {actions:?}");
        }
        let since = events.data.last().unwrap().at;
        let filtered = checked_list(
            "GET /v1/audit (filtered)",
            admin.audit(&AuditFilter {
                workspace_id: Some(ws.id.clone()),
                actor: Some(dev.id.clone()),
                action: Some("token.issued".into()),
                since: Some(since),
                page: Page::default(),
            }),
        )
        .await;
        assert!(!filtered.data.is_empty());
        assert!(filtered
            .data
            .iter()
            .all(|e: &AuditEvent| e.action == "token.issued"));

        // Deactivation, then the problems the API answers.
        admin.users().deactivate(&gateway.id).await.unwrap();
        let gone = checked(
            "GET /v1/users/{id} (deactivated)",
            admin.users().get(&gateway.id),
        )
        .await;
        assert!(!gone.active && gone.deactivated_at.is_some());
        checked(
            "GET /v1/workspaces/{id} (home)",
            admin.workspaces().get(&home),
        )
        .await;
        problem(
            "404",
            admin.keys().get("key_0000000000000000000x"),
            404,
            "not_found",
        )
        .await;
        let p = problem(
            "422",
            admin.keys().create(&CreateKey::default()),
            422,
            "validation_failed",
        )
        .await;
        assert!(
            p.errors.as_ref().is_some_and(|e| e[0].field == "name"),
            "{p:?}"
        );
        let taken = CreateUser {
            email: dev.email.clone(),
            name: "Again".into(),
            ..Default::default()
        };
        problem("409", admin.users().create(&taken), 409, "conflict").await;
        let p = problem(
            "401",
            client(&srv, "sk_live_wrong").me(),
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(p.detail, "Invalid or missing API key");
        problem(
            "403",
            as_dev.users().list(&UserFilter::default()),
            403,
            "insufficient_permissions",
        )
        .await;
        // And each problem's body as sent, against the proto type.
        for (path, key) in [
            ("/v1/keys/key_0000000000000000000x", srv.admin_key.as_str()),
            ("/v1/me", "sk_live_wrong"),
            ("/v1/users", dev_key.secret.expose()),
        ] {
            let raw = srv.get(path, key).await.body;
            same_as_sent::<Problem>(&format!("problem of GET {path}"), raw);
        }
        let raw = srv
            .post("/v1/keys", &srv.admin_key, json!({"name": ""}))
            .await
            .body;
        same_as_sent::<Problem>("problem of a 422", raw);
        srv.stop().await;
    })
    .await;
}

fn limit(name: &str, limit: u32, window_seconds: u64, auto_apply: bool) -> NamedLimit {
    NamedLimit {
        name: name.into(),
        limit,
        window_seconds,
        auto_apply,
    }
}
