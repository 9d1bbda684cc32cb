//! Portal links: used once, however many requests race for one, and never after they expire.

use crate::db::{actor, each_backend, owner_and_key};
use latchkey_store::{AuditFilter, NewPortalLink, PageRequest};

#[tokio::test]
async fn a_portal_link_is_used_once_however_many_race_for_it() {
    each_backend(|store, _| async move {
        let (user, ws, _, _) = owner_and_key(&store).await;
        let now = 1_900_000_000;
        let link = |id: &str, expires_at| NewPortalLink {
            id: id.into(),
            user_id: user.clone(),
            workspace_id: ws.clone(),
            return_url: Some("https://app.example.com/".into()),
            created_at: now - 10,
            expires_at,
            session_ends_by: None,
        };
        store
            .create_portal_link(&link("hash-live", now + 300), &actor())
            .await
            .unwrap();
        store
            .create_portal_link(&link("hash-expired", now), &actor())
            .await
            .unwrap();

        let races: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.use_portal_link("hash-live", now, &actor()).await })
            })
            .collect();
        let mut won = vec![];
        for r in races {
            if let Some(l) = r.await.unwrap().unwrap() {
                won.push(l);
            }
        }
        assert_eq!(won.len(), 1, "exactly one use");
        assert_eq!(won[0].user_id, user);
        assert_eq!(won[0].used_at, Some(now));
        assert_eq!(
            won[0].return_url.as_deref(),
            Some("https://app.example.com/")
        );
        let seen = store.portal_link("hash-live").await.unwrap().unwrap();
        assert_eq!(seen.used_at, Some(now), "remembered as used");

        assert!(
            store
                .use_portal_link("hash-expired", now, &actor())
                .await
                .unwrap()
                .is_none(),
            "expired at `now` exactly"
        );
        assert!(store
            .use_portal_link("no-such-hash", now, &actor())
            .await
            .unwrap()
            .is_none());
        assert!(store.portal_link("no-such-hash").await.unwrap().is_none());

        let events = store
            .list_audit(
                &AuditFilter {
                    workspace_id: Some(ws.clone()),
                    ..Default::default()
                },
                PageRequest {
                    cursor: None,
                    limit: 100,
                },
            )
            .await
            .unwrap();
        let count = |action: &str| events.data.iter().filter(|e| e.action == action).count();
        assert_eq!(count("portal.session_created"), 2);
        assert_eq!(count("portal.session_used"), 1, "one event for one use");
    })
    .await;
}
