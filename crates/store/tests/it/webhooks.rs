//! The webhook outbox: deliveries written with the change they announce, claimed once.

use crate::db::{actor, each_backend, owner_and_key};
use latchkey_core::ids;
use latchkey_store::{
    AttemptOutcome, DeliveryStatus, NewWebhookEndpoint, PageRequest, SqlStore, WebhookEndpointPatch,
};

fn page() -> PageRequest<'static> {
    PageRequest {
        cursor: None,
        limit: 100,
    }
}

async fn endpoint(store: &SqlStore, ws: &str, events: &[&str]) -> String {
    let id = ids::new_id(ids::WEBHOOK);
    store
        .create_webhook(
            &NewWebhookEndpoint {
                id: id.clone(),
                workspace_id: ws.into(),
                url: "https://example.com/hook".into(),
                description: String::new(),
                events: events.iter().map(|s| s.to_string()).collect(),
                secret: "sealed".into(),
            },
            &actor(),
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn webhook_deliveries_are_written_with_the_change_and_claimed_once() {
    each_backend(|store, _| async move {
        let (_, ws, _, new) = owner_and_key(&store).await;
        let keys = endpoint(&store, &ws, &["key.*"]).await;
        let members = endpoint(&store, &ws, &["member.added"]).await;
        let off = endpoint(&store, &ws, &["*"]).await;
        store
            .update_webhook(
                &off,
                &WebhookEndpointPatch {
                    enabled: Some(false),
                    ..Default::default()
                },
                &actor(),
            )
            .await
            .unwrap();
        let (rec, _) = store.create_key(&new, &actor()).await.unwrap();

        let queued = store.list_webhook_deliveries(&keys, page()).await.unwrap();
        assert_eq!(queued.data.len(), 1);
        let d = &queued.data[0];
        assert_eq!(d.event_type, "key.created");
        assert!(d.event_id.starts_with("evt_"));
        let body: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(body["id"], d.event_id.as_str());
        assert_eq!(body["workspace_id"], ws.as_str());
        assert_eq!(body["data"]["object"]["id"], rec.id.as_str());
        assert!(
            !d.payload.contains(&new.hash.to_string()),
            "no hash in the body"
        );
        for other in [&members, &off] {
            let none = store.list_webhook_deliveries(other, page()).await.unwrap();
            assert!(none.data.is_empty(), "filtered out or disabled");
        }

        let claimed = store.claim_webhook_deliveries(60, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].1.id, keys);
        assert!(store
            .claim_webhook_deliveries(60, 10)
            .await
            .unwrap()
            .is_empty());
        store
            .record_webhook_attempt(
                &claimed[0].0,
                &AttemptOutcome::Succeeded { status_code: 204 },
            )
            .await
            .unwrap();
        let done = store.get_webhook_delivery(&d.id).await.unwrap();
        assert_eq!(done.status, DeliveryStatus::Succeeded);
        assert_eq!((done.attempts, done.last_status_code), (1, Some(204)));

        store.redeliver_webhook(&d.id).await.unwrap();
        let again = store.claim_webhook_deliveries(60, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        store
            .record_webhook_attempt(
                &again[0].0,
                &AttemptOutcome::Failed {
                    status_code: Some(410),
                    error: "gone".into(),
                    disable_endpoint: true,
                },
            )
            .await
            .unwrap();
        assert!(!store.get_webhook(&keys).await.unwrap().enabled);

        store.delete_webhook(&keys, &actor()).await.unwrap();
        assert!(store.get_webhook_delivery(&d.id).await.is_err());
    })
    .await;
}
