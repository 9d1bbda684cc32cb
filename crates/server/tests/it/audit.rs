//! SPEC §6.5: every change writes an audit event naming the credential that made it.

use crate::harness::each_backend;
use serde_json::{json, Value};

#[tokio::test]
async fn every_action_is_audited_under_the_credentials_name() {
    each_backend(|srv| async move {
        let ws = srv.workspace("Audited").await;
        let (admin_user, _) = srv.member_with_key(&ws, "admin").await;
        let named = srv
            .key_for(&ws, &admin_user, json!({"name": "Ops robot"}))
            .await;
        let robot = named["key"].as_str().unwrap().to_owned();
        let robot_id = named["id"].as_str().unwrap().to_owned();

        let user = srv.user("audited").await;
        srv.put(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &robot,
            json!({"role": "developer"}),
        )
        .await
        .expect(201);
        srv.put(
            &format!("/v1/workspaces/{ws}/members/{user}"),
            &robot,
            json!({"role": "member"}),
        )
        .await
        .expect(200);
        let k = srv
            .post(
                "/v1/keys",
                &robot,
                json!({"name": "for audit", "owner_id": user}),
            )
            .await
            .expect(201);
        let kid = k["id"].as_str().unwrap();
        srv.patch(
            &format!("/v1/keys/{kid}"),
            &robot,
            json!({"name": "renamed"}),
        )
        .await
        .expect(200);
        let rolled = srv
            .post(&format!("/v1/keys/{kid}/roll"), &robot, json!({}))
            .await
            .expect(201);
        srv.delete(
            &format!("/v1/keys/{}", rolled["id"].as_str().unwrap()),
            &robot,
        )
        .await
        .expect(204);
        srv.put(
            &format!("/v1/workspaces/{ws}/roles/viewer"),
            &robot,
            json!({"permissions": ["*:read"]}),
        )
        .await
        .expect(200);
        let g = srv
            .post(
                &format!("/v1/workspaces/{ws}/grants"),
                &robot,
                json!({"user_id": user, "permission": "x:y"}),
            )
            .await
            .expect(201);
        srv.delete(
            &format!("/v1/workspaces/{ws}/grants/{}", g["id"].as_str().unwrap()),
            &robot,
        )
        .await
        .expect(204);
        srv.patch(
            &format!("/v1/workspaces/{ws}"),
            &robot,
            json!({"require_pair": false}),
        )
        .await
        .expect(200);
        srv.delete(&format!("/v1/workspaces/{ws}/members/{user}"), &robot)
            .await
            .expect(204);

        let events = srv.get("/v1/audit?limit=500", &robot).await.expect(200)["data"]
            .as_array()
            .unwrap()
            .clone();
        let by_robot: Vec<&Value> = events
            .iter()
            .filter(|e| e["actor"]["credential_id"] == robot_id.as_str())
            .collect();
        let actions: Vec<&str> = by_robot
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "member.added",
                "member.role_changed",
                "key.created",
                "key.updated",
                "key.rolled",
                "key.revoked",
                "role.updated",
                "grant.created",
                "grant.deleted",
                "workspace.updated",
                "member.removed"
            ]
        );
        for e in &by_robot {
            assert_eq!(e["actor"]["credential_name"], "Ops robot");
            assert_eq!(e["actor"]["user_id"], admin_user.as_str());
            assert_eq!(e["workspace_id"], ws.as_str());
            assert_eq!(e["ip"], "127.0.0.1");
            assert!(e["id"].as_str().unwrap().starts_with("evt_"));
            assert!(e["at"].as_str().unwrap().ends_with('Z'));
        }
        let key_created = by_robot
            .iter()
            .find(|e| e["action"] == "key.created")
            .unwrap();
        assert_eq!(key_created["target"], json!({"type": "key", "id": kid}));

        // Filters; instance-level events (user.created, workspace.created) for the instance admin.
        let only = srv
            .get("/v1/audit?action=key.revoked", &robot)
            .await
            .expect(200);
        assert!(only["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "key.revoked"));
        let mine = srv
            .get(&format!("/v1/audit?actor={robot_id}"), &robot)
            .await
            .expect(200);
        assert_eq!(mine["data"].as_array().unwrap().len(), by_robot.len());
        let all = srv
            .get("/v1/audit?limit=500", &srv.admin_key)
            .await
            .expect(200);
        let actions: Vec<&str> = all["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in ["user.created", "workspace.created"] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        srv.delete(&format!("/v1/users/{user}"), &srv.admin_key)
            .await
            .expect(204);
        let deact = srv
            .get("/v1/audit?action=user.deactivated", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(deact["data"][0]["target"]["id"], user.as_str());
        assert_eq!(
            deact["data"][0]["actor"]["credential_name"],
            "Bootstrap admin key"
        );
        let later = srv
            .get("/v1/audit?since=2999-01-01T00:00:00Z", &srv.admin_key)
            .await
            .expect(200);
        assert_eq!(later["data"], json!([]));

        // Reading the audit log needs latchkey:audit:read.
        let (_, dev) = srv.member_with_key(&ws, "developer").await;
        srv.get("/v1/audit", &dev)
            .await
            .problem(403, "insufficient_permissions");
    })
    .await;
}
