//! SPEC §5.1: the instance verifier. Its keys live in a workspace it belongs to; its instance
//! role adds `latchkey:verify` across every workspace, and nothing else.

use crate::harness::{each_backend, eventually, random_suffix, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

/// A new user made instance verifier by the instance admin, a member of `ws` with `role`, and
/// a live secret key of theirs there (issued by the instance admin).
async fn verifier(srv: &TestServer, ws: &str, role: &str) -> (String, String) {
    let user = srv
        .post(
            "/v1/users",
            &srv.admin_key,
            json!({
                "email": format!("gateway-{}@example.com", random_suffix()),
                "name": "Gateway",
                "instance_role": "verifier",
            }),
        )
        .await
        .expect(201);
    assert_eq!(user["instance_role"], "verifier");
    assert_eq!(user["is_instance_admin"], false);
    let id = user["id"].as_str().unwrap().to_owned();
    srv.set_member(ws, &id, role).await;
    let key = srv.key_for(ws, &id, json!({})).await;
    (id, key["key"].as_str().unwrap().to_owned())
}

async fn verify_as(srv: &TestServer, caller: &str, key: &str) -> Value {
    srv.post("/v1/verify", caller, json!({"key": key}))
        .await
        .expect(200)
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_instance_verifier_verifies_the_keys_of_every_workspace() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (b_user, b_key) = srv.member_with_key(&b, "developer").await;
        // A `member` of A: no latchkey permission of its own there.
        let (v_user, v_key) = verifier(&srv, &a, "member").await;
        // A's own admin holds latchkey:verify, for A only.
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;

        let ok = verify_as(&srv, &v_key, &b_key).await;
        assert_eq!(ok["code"], "VALID", "{ok}");
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["workspace_id"], b.as_str());
        assert_eq!(ok["owner_id"], b_user.as_str());
        assert!(strs(&ok["permissions"]).contains(&"latchkey:keys:manage_own"));
        let demanded = srv
            .post(
                "/v1/verify",
                &v_key,
                json!({"key": b_key, "permissions": ["latchkey:members:manage"]}),
            )
            .await
            .expect(200);
        assert_eq!(demanded["code"], "INSUFFICIENT_PERMISSIONS");
        assert_eq!(
            demanded["workspace_id"],
            b.as_str(),
            "denials are detailed too"
        );

        let plain = verify_as(&srv, &a_admin, &b_key).await;
        assert_eq!(plain["code"], "NOT_FOUND", "{plain}");
        assert!(plain["workspace_id"].is_null() && plain["key_id"].is_null());

        // What the verifier's key says of itself: verify on top of its role, in its workspace.
        let me = srv.get("/v1/me", &v_key).await.expect(200);
        assert_eq!(me["user"]["id"], v_user.as_str());
        assert_eq!(me["user"]["instance_role"], "verifier");
        assert_eq!(me["user"]["is_instance_admin"], false);
        assert_eq!(me["workspace"]["id"], a.as_str());
        assert_eq!(me["workspace"]["role"], "member");
        assert_eq!(strs(&me["permissions"]), ["*", "latchkey:verify"]);

        // Its access tokens verify too, unless their scope leaves verify out.
        let token = srv
            .post("/v1/auth/token", &v_key, json!({}))
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(verify_as(&srv, &token, &b_key).await["code"], "VALID");
        let scoped = srv
            .post(
                "/v1/auth/token",
                &v_key,
                json!({"permissions": ["documents:read"]}),
            )
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.post("/v1/verify", &scoped, json!({"key": b_key}))
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}

#[tokio::test]
async fn an_instance_verifier_sees_nothing_else_outside_its_workspace() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (b_user, b_admin) = srv.member_with_key(&b, "admin").await;
        let b_key = srv
            .post("/v1/keys", &b_admin, json!({"name": "b's key"}))
            .await
            .expect(201);
        let b_key_id = b_key["id"].as_str().unwrap();
        let b_secret = b_key["key"].as_str().unwrap();
        // The strongest verifier there is: a full admin of its own workspace.
        let (v_user, v_key) = verifier(&srv, &a, "admin").await;
        let (a_member, _) = srv.member_with_key(&a, "member").await;

        for path in [
            format!("/v1/workspaces/{b}"),
            format!("/v1/workspaces/{b}/members"),
            format!("/v1/workspaces/{b}/roles"),
            format!("/v1/workspaces/{b}/grants"),
            format!("/v1/keys/{b_key_id}"),
            format!("/v1/keys?workspace_id={b}"),
            format!("/v1/users/{b_user}"),
            format!("/v1/users?workspace_id={b}"),
            format!("/v1/audit?workspace_id={b}"),
        ] {
            srv.get(&path, &v_key).await.problem(404, "not_found");
        }
        let workspaces = srv.get("/v1/workspaces", &v_key).await.expect(200);
        let ids: Vec<_> = workspaces["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [a.as_str()]);
        let keys = srv.get("/v1/keys?limit=500", &v_key).await.expect(200);
        assert!(keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["workspace_id"] == a.as_str()));
        let users = srv.get("/v1/users?limit=500", &v_key).await.expect(200);
        let users: Vec<_> = users["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        assert!(users.contains(&a_member.as_str()) && !users.contains(&b_user.as_str()));
        let audit = srv.get("/v1/audit?limit=500", &v_key).await.expect(200);
        assert!(audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["workspace_id"] == a.as_str()));

        // No keys outside its workspace, and none for anyone outside it.
        srv.post(
            "/v1/keys",
            &v_key,
            json!({"name": "x", "workspace_id": b}),
        )
        .await
        .problem(404, "not_found");
        let bad = srv
            .post("/v1/keys", &v_key, json!({"name": "x", "owner_id": b_user}))
            .await
            .problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "owner_id");
        srv.delete(&format!("/v1/keys/{b_key_id}"), &v_key)
            .await
            .problem(404, "not_found");
        srv.post(&format!("/v1/keys/{b_key_id}/roll"), &v_key, json!({}))
            .await
            .problem(404, "not_found");
        srv.put(
            &format!("/v1/workspaces/{b}/members/{v_user}"),
            &v_key,
            json!({"role": "admin"}),
        )
        .await
        .problem(404, "not_found");
        srv.post("/v1/workspaces", &v_key, json!({"name": "mine"}))
            .await
            .problem(403, "insufficient_permissions");

        // No user changes beyond renaming itself, and no instance role for anyone.
        srv.patch(
            &format!("/v1/users/{b_user}"),
            &v_key,
            json!({"name": "x"}),
        )
        .await
        .problem(404, "not_found");
        for body in [
            json!({"instance_role": "admin"}),
            json!({"instance_role": null}),
        ] {
            srv.patch(&format!("/v1/users/{v_user}"), &v_key, body)
                .await
                .problem(403, "insufficient_permissions");
        }
        for body in [json!({"name": "x"}), json!({"instance_role": "verifier"})] {
            srv.patch(&format!("/v1/users/{a_member}"), &v_key, body)
                .await
                .problem(403, "insufficient_permissions");
        }
        for body in [
            json!({"email": format!("x-{}@example.com", random_suffix()), "name": "X", "instance_role": "verifier"}),
            json!({"email": format!("x-{}@example.com", random_suffix()), "name": "X", "is_instance_admin": true}),
        ] {
            srv.post("/v1/users", &v_key, body)
                .await
                .problem(403, "insufficient_permissions");
        }
        let me = srv
            .get(&format!("/v1/users/{v_user}"), &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(me["instance_role"], "verifier");

        // B is untouched, and the verifier still verifies there.
        srv.get("/v1/me", b_secret).await.expect(200);
        assert_eq!(verify_as(&srv, &v_key, b_secret).await["code"], "VALID");
    })
    .await;
}

#[tokio::test]
async fn a_verifiers_key_restricted_to_something_else_or_publishable_cannot_verify() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (_, b_key) = srv.member_with_key(&b, "developer").await;
        let (v_user, _) = verifier(&srv, &a, "member").await;

        let docs = srv
            .key_for(&a, &v_user, json!({"permissions": ["documents:read"]}))
            .await;
        let docs = docs["key"].as_str().unwrap();
        srv.post("/v1/verify", docs, json!({"key": b_key}))
            .await
            .problem(403, "insufficient_permissions");
        let me = srv.get("/v1/me", docs).await.expect(200);
        assert_eq!(strs(&me["permissions"]), ["documents:read"]);

        let only_verify = srv
            .key_for(&a, &v_user, json!({"permissions": ["latchkey:verify"]}))
            .await;
        let only_verify = only_verify["key"].as_str().unwrap();
        assert_eq!(verify_as(&srv, only_verify, &b_key).await["code"], "VALID");
        let me = srv.get("/v1/me", only_verify).await.expect(200);
        assert_eq!(strs(&me["permissions"]), ["latchkey:verify"]);

        let publishable = srv
            .key_for(&a, &v_user, json!({"type": "publishable"}))
            .await;
        let publishable = publishable["key"].as_str().unwrap();
        srv.post("/v1/verify", publishable, json!({"key": b_key}))
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}

/// The ex-verifier whose role in its workspace lacks `latchkey:verify` is refused outright
/// (403): the endpoint asks for the permission before it looks at the key to check. One whose
/// role holds it keeps verifying its own workspace, and other workspaces' keys become
/// `NOT_FOUND` to it, as to any workspace-scoped verifier.
#[tokio::test]
async fn demoting_a_verifier_takes_effect_on_the_next_request_on_every_node() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (_, b_key) = srv.member_with_key(&b, "developer").await;
        let (_, a_key) = srv.member_with_key(&a, "developer").await;
        let (member_v, member_v_key) = verifier(&srv, &a, "member").await;
        let (admin_v, admin_v_key) = verifier(&srv, &a, "admin").await;
        let other = srv.another_node().await;
        for node in [&srv, &other] {
            // Cached on both nodes now.
            assert_eq!(
                verify_as(node, &member_v_key, &b_key).await["code"],
                "VALID"
            );
            assert_eq!(verify_as(node, &admin_v_key, &b_key).await["code"], "VALID");
        }

        for id in [&member_v, &admin_v] {
            let user = srv
                .patch(
                    &format!("/v1/users/{id}"),
                    &srv.admin_key,
                    json!({"instance_role": null}),
                )
                .await
                .expect(200);
            assert!(user["instance_role"].is_null(), "{user}");
        }
        srv.post("/v1/verify", &member_v_key, json!({"key": b_key}))
            .await
            .problem(403, "insufficient_permissions");
        let scoped = verify_as(&srv, &admin_v_key, &b_key).await;
        assert_eq!(scoped["code"], "NOT_FOUND", "{scoped}");
        assert_eq!(verify_as(&srv, &admin_v_key, &a_key).await["code"], "VALID");
        let me = srv.get("/v1/me", &member_v_key).await.expect(200);
        assert!(me["user"]["instance_role"].is_null());
        assert_eq!(strs(&me["permissions"]), ["*"]);

        eventually(
            "the demotion on the other node",
            Duration::from_secs(1),
            || {
                let (other, key, b_key) = (&other, &member_v_key, &b_key);
                async move {
                    other
                        .post("/v1/verify", key, json!({"key": b_key}))
                        .await
                        .status
                        == 403
                }
            },
        )
        .await;
        assert_eq!(
            verify_as(&other, &admin_v_key, &b_key).await["code"],
            "NOT_FOUND"
        );

        // Audited as from -> to, by whom.
        let events = srv
            .get("/v1/audit?action=user.updated&limit=500", &srv.admin_key)
            .await
            .expect(200);
        let event = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"]["id"] == member_v.as_str())
            .unwrap_or_else(|| panic!("a user.updated event: {events}"));
        assert_eq!(event["target"]["type"], "user");
        assert_eq!(
            event["detail"]["instance_role"],
            json!({"from": "verifier", "to": null})
        );
        assert_eq!(event["actor"]["user_id"], srv.admin_user_id.as_str());

        // And given back, at once.
        srv.patch(
            &format!("/v1/users/{member_v}"),
            &srv.admin_key,
            json!({"instance_role": "verifier"}),
        )
        .await
        .expect(200);
        assert_eq!(
            verify_as(&srv, &member_v_key, &b_key).await["code"],
            "VALID"
        );
    })
    .await;
}

#[tokio::test]
async fn the_last_instance_admin_keeps_the_role() {
    each_backend(|srv| async move {
        let me = srv.admin_user_id.clone();
        let root = &srv.admin_key;
        let default_ws = srv.workspace_of(root).await;
        for role in [json!(null), json!("verifier")] {
            let c = srv
                .patch(
                    &format!("/v1/users/{me}"),
                    root,
                    json!({"instance_role": role}),
                )
                .await
                .problem(409, "conflict");
            assert!(
                c["detail"].as_str().unwrap().contains("last instance admin"),
                "{c}"
            );
        }
        // A deactivated instance admin is none.
        let gone = srv
            .post(
                "/v1/users",
                root,
                json!({"email": format!("gone-{}@example.com", random_suffix()), "name": "Gone", "instance_role": "admin"}),
            )
            .await
            .expect(201);
        srv.delete(&format!("/v1/users/{}", gone["id"].as_str().unwrap()), root)
            .await
            .expect(204);
        srv.patch(
            &format!("/v1/users/{me}"),
            root,
            json!({"instance_role": null}),
        )
        .await
        .problem(409, "conflict");

        // With a second one, either may go, but not both.
        let second = srv
            .post(
                "/v1/users",
                root,
                json!({"email": format!("root2-{}@example.com", random_suffix()), "name": "Root 2", "instance_role": "admin"}),
            )
            .await
            .expect(201);
        let second = second["id"].as_str().unwrap().to_owned();
        srv.set_member(&default_ws, &second, "admin").await;
        let second_key = srv.key_for(&default_ws, &second, json!({})).await;
        let second_key = second_key["key"].as_str().unwrap().to_owned();
        srv.patch(
            &format!("/v1/users/{second}"),
            root,
            json!({"instance_role": null}),
        )
        .await
        .expect(200);
        srv.post("/v1/workspaces", &second_key, json!({"name": "x"}))
            .await
            .problem(403, "insufficient_permissions");
        srv.patch(
            &format!("/v1/users/{second}"),
            root,
            json!({"instance_role": "admin"}),
        )
        .await
        .expect(200);
        srv.post("/v1/workspaces", &second_key, json!({"name": "x"}))
            .await
            .expect(201);
        srv.patch(
            &format!("/v1/users/{me}"),
            &second_key,
            json!({"instance_role": null}),
        )
        .await
        .expect(200);
        srv.patch(
            &format!("/v1/users/{second}"),
            &second_key,
            json!({"instance_role": "verifier"}),
        )
        .await
        .problem(409, "conflict");
        srv.post("/v1/workspaces", root, json!({"name": "y"}))
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}

#[tokio::test]
async fn only_an_unbounded_instance_admin_credential_sets_instance_roles() {
    each_backend(|srv| async move {
        let a = srv.workspace("Tenant").await;
        let b = srv.workspace("Other").await;
        let (a_admin_id, a_admin) = srv.member_with_key(&a, "admin").await;
        let (a_member, _) = srv.member_with_key(&a, "member").await;
        let (b_user, _) = srv.member_with_key(&b, "member").await;

        // A workspace admin: instance roles are not its to give, take or claim.
        for (id, body) in [
            (&a_member, json!({"instance_role": "verifier"})),
            (&a_member, json!({"instance_role": null})),
            (&a_admin_id, json!({"instance_role": "admin"})),
            (&a_member, json!({"name": "Renamed"})),
        ] {
            srv.patch(&format!("/v1/users/{id}"), &a_admin, body)
                .await
                .problem(403, "insufficient_permissions");
        }
        srv.patch(
            &format!("/v1/users/{b_user}"),
            &a_admin,
            json!({"instance_role": "verifier"}),
        )
        .await
        .problem(404, "not_found");
        srv.patch(
            "/v1/users/usr_00000000000000000000",
            &srv.admin_key,
            json!({"name": "x"}),
        )
        .await
        .problem(404, "not_found");
        for body in [
            json!({"email": format!("x-{}@example.com", random_suffix()), "name": "X", "instance_role": "verifier"}),
            json!({"email": format!("x-{}@example.com", random_suffix()), "name": "X", "instance_role": "admin"}),
        ] {
            srv.post("/v1/users", &a_admin, body)
                .await
                .problem(403, "insufficient_permissions");
        }
        // It may rename itself, with a live secret key.
        let renamed = srv
            .patch(
                &format!("/v1/users/{a_admin_id}"),
                &a_admin,
                json!({"name": "  Ada  "}),
            )
            .await
            .expect(200);
        assert_eq!(renamed["name"], "Ada");
        assert_eq!(
            srv.get("/v1/me", &a_admin).await.expect(200)["user"]["name"],
            "Ada",
            "the cached standing follows"
        );
        srv.patch(
            &format!("/v1/users/{a_admin_id}"),
            &a_admin,
            json!({"name": " "}),
        )
        .await
        .problem(422, "validation_failed");
        let test_key = srv
            .post(
                "/v1/keys",
                &a_admin,
                json!({"name": "t", "environment": "test"}),
            )
            .await
            .expect(201);
        srv.patch(
            &format!("/v1/users/{a_admin_id}"),
            test_key["key"].as_str().unwrap(),
            json!({"name": "Test"}),
        )
        .await
        .problem(403, "environment_mismatch");
        let publishable = srv
            .post(
                "/v1/keys",
                &a_admin,
                json!({"name": "p", "type": "publishable"}),
            )
            .await
            .expect(201);
        srv.patch(
            &format!("/v1/users/{a_admin_id}"),
            publishable["key"].as_str().unwrap(),
            json!({"name": "Public"}),
        )
        .await
        .problem(403, "insufficient_permissions");

        // An instance admin's key that expires, is restricted or fenced to addresses does not
        // either: an instance role outlives and outreaches it.
        let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        for extra in [
            json!({"expires_at": expires}),
            json!({"permissions": ["*", "latchkey:*"]}),
            json!({"allowed_ips": ["127.0.0.0/8"]}),
        ] {
            let mut body = json!({"name": "narrowed"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let narrowed = srv
                .post("/v1/keys", &srv.admin_key, body)
                .await
                .expect(201);
            let narrowed = narrowed["key"].as_str().unwrap();
            srv.patch(
                &format!("/v1/users/{a_member}"),
                narrowed,
                json!({"instance_role": "verifier"}),
            )
            .await
            .problem(403, "insufficient_permissions");
            srv.post(
                "/v1/users",
                narrowed,
                json!({"email": format!("x-{}@example.com", random_suffix()), "name": "X", "instance_role": "verifier"}),
            )
            .await
            .problem(403, "insufficient_permissions");
            // Renaming is no instance role.
            srv.patch(
                &format!("/v1/users/{a_member}"),
                narrowed,
                json!({"name": "Named by an instance admin"}),
            )
            .await
            .expect(200);
        }
        let user = srv
            .get(&format!("/v1/users/{a_member}"), &srv.admin_key)
            .await
            .expect(200);
        assert!(user["instance_role"].is_null(), "{user}");
    })
    .await;
}

#[tokio::test]
async fn is_instance_admin_stays_an_alias_of_instance_role_admin() {
    each_backend(|srv| async move {
        let create = |extra: Value| {
            let srv = &srv;
            async move {
                let mut body = json!({
                    "email": format!("u-{}@example.com", random_suffix()),
                    "name": "U",
                });
                for (k, v) in extra.as_object().unwrap() {
                    body[k] = v.clone();
                }
                srv.post("/v1/users", &srv.admin_key, body).await
            }
        };
        for (extra, role, admin) in [
            (json!({"is_instance_admin": true}), json!("admin"), true),
            (json!({"is_instance_admin": false}), json!(null), false),
            (json!({}), json!(null), false),
            (json!({"instance_role": "admin"}), json!("admin"), true),
            (
                json!({"instance_role": "verifier"}),
                json!("verifier"),
                false,
            ),
            (json!({"instance_role": null}), json!(null), false),
            (
                json!({"instance_role": "admin", "is_instance_admin": true}),
                json!("admin"),
                true,
            ),
            (
                json!({"instance_role": "verifier", "is_instance_admin": false}),
                json!("verifier"),
                false,
            ),
        ] {
            let user = create(extra.clone()).await.expect(201);
            assert_eq!(user["instance_role"], role, "{extra}");
            assert_eq!(user["is_instance_admin"], admin, "{extra}");
            let id = user["id"].as_str().unwrap();
            let read = srv
                .get(&format!("/v1/users/{id}"), &srv.admin_key)
                .await
                .expect(200);
            assert_eq!(read["instance_role"], role, "{extra}");
        }
        for extra in [
            json!({"instance_role": "admin", "is_instance_admin": false}),
            json!({"instance_role": "verifier", "is_instance_admin": true}),
            json!({"instance_role": null, "is_instance_admin": true}),
        ] {
            let bad = create(extra.clone())
                .await
                .problem(422, "validation_failed");
            assert_eq!(bad["errors"][0]["field"], "is_instance_admin", "{extra}");
        }
        let bad = create(json!({"instance_role": "root"}))
            .await
            .problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "instance_role");

        // A verifier made admin, and back, through PATCH; the alias follows.
        let user = create(json!({"instance_role": "verifier"}))
            .await
            .expect(201);
        let id = user["id"].as_str().unwrap();
        let patched = srv
            .patch(
                &format!("/v1/users/{id}"),
                &srv.admin_key,
                json!({"instance_role": "admin"}),
            )
            .await
            .expect(200);
        assert_eq!(
            (&patched["instance_role"], &patched["is_instance_admin"]),
            (&json!("admin"), &json!(true))
        );
        let listed = srv
            .get("/v1/users?limit=500", &srv.admin_key)
            .await
            .expect(200);
        let listed = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .unwrap()
            .clone();
        assert_eq!(listed["instance_role"], "admin");
        srv.patch(
            &format!("/v1/users/{id}"),
            &srv.admin_key,
            json!({"instance_role": "nobody"}),
        )
        .await
        .problem(422, "validation_failed");
    })
    .await;
}

/// A workspace admin who could read, roll or mint the verifier's keys, or move its membership,
/// would hold a credential that verifies in every workspace.
#[tokio::test]
async fn a_workspace_admin_cannot_reach_a_verifiers_keys_or_membership() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (_, b_key) = srv.member_with_key(&b, "developer").await;
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;
        let (v_user, v_key) = verifier(&srv, &a, "developer").await;
        let v_key_id = srv.get("/v1/me", &v_key).await.expect(200)["credential"]["key_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let listed = srv.get("/v1/keys?limit=500", &a_admin).await.expect(200);
        assert!(
            listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["owner_id"] != v_user.as_str()),
            "{listed}"
        );
        assert_eq!(
            srv.get(&format!("/v1/keys?owner_id={v_user}"), &a_admin)
                .await
                .expect(200)["data"],
            json!([])
        );
        srv.get(&format!("/v1/keys/{v_key_id}"), &a_admin)
            .await
            .problem(404, "not_found");
        srv.post(&format!("/v1/keys/{v_key_id}/roll"), &a_admin, json!({}))
            .await
            .problem(404, "not_found");
        srv.delete(&format!("/v1/keys/{v_key_id}"), &a_admin)
            .await
            .problem(404, "not_found");
        let bad = srv
            .post(
                "/v1/keys",
                &a_admin,
                json!({"name": "mine now", "owner_id": v_user}),
            )
            .await
            .problem(422, "validation_failed");
        assert_eq!(bad["errors"][0]["field"], "owner_id");
        srv.put(
            &format!("/v1/workspaces/{a}/members/{v_user}"),
            &a_admin,
            json!({"role": "admin"}),
        )
        .await
        .problem(403, "insufficient_permissions");
        srv.delete(&format!("/v1/workspaces/{a}/members/{v_user}"), &a_admin)
            .await
            .problem(403, "insufficient_permissions");

        // The verifier itself still manages its own keys (developer), and they still verify.
        let own = srv.get("/v1/keys?limit=500", &v_key).await.expect(200);
        assert!(own["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == v_key_id.as_str()));
        let made = srv
            .post(
                "/v1/keys",
                &v_key,
                json!({"name": "sidecar", "permissions": ["latchkey:verify"]}),
            )
            .await
            .expect(201);
        let made = made["key"].as_str().unwrap();
        assert_eq!(verify_as(&srv, made, &b_key).await["code"], "VALID");
        // The instance admin sees them all.
        srv.get(&format!("/v1/keys/{v_key_id}"), &srv.admin_key)
            .await
            .expect(200);
    })
    .await;
}

/// RFC 7662 introspection is the other online check of a token: scoped like `/v1/verify`.
#[tokio::test]
async fn an_instance_verifier_introspects_the_tokens_of_every_workspace() {
    each_backend(|srv| async move {
        let a = srv.workspace("Provider").await;
        let b = srv.workspace("Customer").await;
        let (b_user, b_key) = srv.member_with_key(&b, "developer").await;
        let b_token = srv
            .post("/v1/auth/token", &b_key, json!({}))
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, v_key) = verifier(&srv, &a, "member").await;
        let (_, a_admin) = srv.member_with_key(&a, "admin").await;
        let introspect = |caller: String| {
            let (srv, token) = (&srv, &b_token);
            async move {
                let rb = srv
                    .request(reqwest::Method::POST, "/oauth/introspect")
                    .bearer_auth(caller)
                    .form(&[("token", token.as_str())]);
                srv.send(rb).await.expect(200)
            }
        };
        let seen = introspect(v_key.clone()).await;
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["sub"], b_user.as_str());
        assert_eq!(seen["workspace_id"], b.as_str());
        assert_eq!(introspect(a_admin).await, json!({"active": false}));
    })
    .await;
}

/// Two instance admins demoting each other at once: one wins, and one instance admin is left
/// (on PostgreSQL, the second transaction waits for the first and counts what it left).
#[tokio::test]
async fn concurrent_demotions_never_leave_no_instance_admin() {
    each_backend(|srv| async move {
        let default_ws = srv.workspace_of(&srv.admin_key).await;
        let mut survivor = (srv.admin_user_id.clone(), srv.admin_key.clone());
        for round in 0..10 {
            let new = srv
                .post(
                    "/v1/users",
                    &survivor.1,
                    json!({"email": format!("root{round}-{}@example.com", random_suffix()), "name": "Root", "instance_role": "admin"}),
                )
                .await
                .expect(201);
            let new_id = new["id"].as_str().unwrap().to_owned();
            let put = srv
                .put(
                    &format!("/v1/workspaces/{default_ws}/members/{new_id}"),
                    &survivor.1,
                    json!({"role": "admin"}),
                )
                .await;
            assert!(put.status.is_success(), "{}", put.body);
            let new_key = srv
                .post(
                    "/v1/keys",
                    &survivor.1,
                    json!({"name": "root", "owner_id": new_id}),
                )
                .await
                .expect(201)["key"]
                .as_str()
                .unwrap()
                .to_owned();
            let demote = |caller: String, target: String| {
                let srv = &srv;
                async move {
                    srv.patch(
                        &format!("/v1/users/{target}"),
                        &caller,
                        json!({"instance_role": null}),
                    )
                    .await
                }
            };
            let (one, other) = tokio::join!(
                demote(survivor.1.clone(), new_id.clone()),
                demote(new_key.clone(), survivor.0.clone())
            );
            let statuses = [one.status.as_u16(), other.status.as_u16()];
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "round {round}: {statuses:?} {} {}",
                one.body,
                other.body
            );
            assert!(
                statuses.iter().all(|s| [200, 403, 409].contains(s)),
                "{statuses:?}"
            );
            if other.status == 200 {
                survivor = (new_id, new_key);
            }
            let me = srv.get("/v1/me", &survivor.1).await.expect(200);
            assert_eq!(me["user"]["instance_role"], "admin", "round {round}");
            let users = srv.get("/v1/users?limit=500", &survivor.1).await.expect(200);
            let admins = users["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| u["is_instance_admin"] == true && u["active"] == true)
                .count();
            assert_eq!(admins, 1, "round {round}");
        }
    })
    .await;
}
