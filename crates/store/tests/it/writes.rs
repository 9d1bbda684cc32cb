//! Writes: each one transaction with its audit event and its change-log entry.

use crate::db::{actor, each_backend, owner_and_key, Place, PG_ENV};
use latchkey_core::ids;
use latchkey_core::roles::InstanceRole;
use latchkey_store::{
    AuditFilter, Change, NewUser, OpenOptions, PageRequest, SqlStore, StoreError, UserPatch,
};

fn page() -> PageRequest<'static> {
    PageRequest {
        cursor: None,
        limit: 100,
    }
}

#[tokio::test]
async fn a_write_returns_and_logs_its_change_with_its_audit_event() {
    each_backend(|store, _| async move {
        let (_, ws, _, new) = owner_and_key(&store).await;
        let before = store.count_changes(0, i64::MAX).await.unwrap();
        let (rec, changes) = store.create_key(&new, &actor()).await.unwrap();
        assert_eq!(changes, vec![Change::Key(new.hash.clone())]);
        assert_eq!(store.count_changes(0, i64::MAX).await.unwrap(), before + 1);
        let logged = store.changes_after(0, None, 1000).await.unwrap();
        assert_eq!(
            logged.last().unwrap().change,
            Some(Change::Key(new.hash.clone()))
        );
        let events = store
            .list_audit(
                &AuditFilter {
                    workspace_id: Some(ws.clone()),
                    ..Default::default()
                },
                page(),
            )
            .await
            .unwrap();
        assert!(
            events
                .data
                .iter()
                .any(|e| e.action == "key.created" && e.target_id == rec.id),
            "the audit event is written with the key"
        );
        assert_eq!(
            store.key_by_hash(&new.hash).await.unwrap().unwrap().id,
            rec.id
        );

        // Revoking twice writes once.
        let first = store.revoke_key(&rec.id, &actor()).await.unwrap();
        assert_eq!(first, Some(vec![Change::Key(new.hash.clone())]));
        let n = store.count_changes(0, i64::MAX).await.unwrap();
        assert_eq!(store.revoke_key(&rec.id, &actor()).await.unwrap(), None);
        assert_eq!(store.count_changes(0, i64::MAX).await.unwrap(), n);
        assert!(store.get_key(&rec.id).await.unwrap().revoked_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_and_writes_nothing() {
    each_backend(|store, _| async move {
        let user = |email: &str| NewUser {
            id: ids::new_id(ids::USER),
            email: email.into(),
            name: "A".into(),
            password_hash: None,
            instance_role: None,
        };
        store
            .create_user(&user("same@example.com"), &actor())
            .await
            .unwrap();
        let second = user("same@example.com");
        let err = store.create_user(&second, &actor()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(matches!(
            store.get_user(&second.id).await,
            Err(StoreError::NotFound)
        ));
    })
    .await;
}

#[tokio::test]
async fn the_last_instance_admin_keeps_the_role() {
    each_backend(|store, _| async move {
        let admin = store
            .create_user(
                &NewUser {
                    id: ids::new_id(ids::USER),
                    email: "root@example.com".into(),
                    name: "Root".into(),
                    password_hash: None,
                    instance_role: Some(InstanceRole::Admin),
                },
                &actor(),
            )
            .await
            .unwrap();
        let demote = UserPatch {
            instance_role: Some(None),
            ..Default::default()
        };
        let err = store
            .update_user(&admin.id, &demote, &actor())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(
            store.get_user(&admin.id).await.unwrap().instance_role(),
            Some(InstanceRole::Admin)
        );
        // A change of role is a change every node must see.
        let rename = UserPatch {
            name: Some("Renamed".into()),
            ..Default::default()
        };
        let (_, changes) = store
            .update_user(&admin.id, &rename, &actor())
            .await
            .unwrap();
        assert_eq!(changes, vec![Change::User(admin.id.clone())]);
    })
    .await;
}

/// An embedded verifier opens `serve`'s database without touching its schema.
#[tokio::test]
async fn opening_without_migrating_leaves_the_schema_alone() {
    let no_migrate = OpenOptions {
        migrate: false,
        ..OpenOptions::default()
    };
    let mut places = vec![Place::new_sqlite().await];
    if let Ok(admin) = std::env::var(PG_ENV) {
        places.push(Place::new_postgres(&admin).await);
    }
    for place in places {
        let url = place.url();
        match &place {
            // SQLite: the file is not even created.
            Place::Sqlite(path) => {
                assert!(SqlStore::open_with(&url, no_migrate).await.is_err());
                assert!(!path.exists(), "a verifier must not create the database");
            }
            // PostgreSQL: it connects, and the schema is still empty.
            Place::Postgres { .. } => {
                let s = SqlStore::open_with(&url, no_migrate).await.unwrap();
                assert!(s.count_changes(0, i64::MAX).await.is_err(), "no tables yet");
                s.close().await;
            }
        }
        let migrated = SqlStore::open(&url).await.unwrap();
        let (_, _, _, new) = owner_and_key(&migrated).await;
        migrated.create_key(&new, &actor()).await.unwrap();
        migrated.close().await;
        let reader = SqlStore::open_with(&url, no_migrate).await.unwrap();
        assert!(reader.key_by_hash(&new.hash).await.unwrap().is_some());
        reader.close().await;
        place.cleanup().await;
    }
}

/// What a gateway answers CORS preflights from: the origin lists of publishable keys that are
/// neither revoked nor disabled (expiry is the caller's to check, it comes with each list).
#[tokio::test]
async fn publishable_origins_lists_only_active_publishable_keys_with_origins() {
    use latchkey_core::{ApiKey, Environment, KeyType};
    use latchkey_store::{KeyPatch, NewApiKey};
    each_backend(|store, _| async move {
        let (user, ws, _, secret) = owner_and_key(&store).await;
        let publishable = |origins: &[&str], expires_at: Option<i64>| {
            let key = ApiKey::generate(KeyType::Publishable, Environment::Live);
            let mut new = NewApiKey::for_key(
                &key,
                &crate::db::hasher(),
                "pk".into(),
                ws.clone(),
                user.clone(),
            );
            new.allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
            new.expires_at = expires_at;
            new
        };
        store.create_key(&secret, &actor()).await.unwrap();
        let none = publishable(&[], None);
        store.create_key(&none, &actor()).await.unwrap();
        let app = publishable(
            &["https://app.example", "https://*.shop.example"],
            Some(4_000_000_000),
        );
        store.create_key(&app, &actor()).await.unwrap();
        let disabled = publishable(&["https://disabled.example"], None);
        store.create_key(&disabled, &actor()).await.unwrap();
        store
            .update_key(
                &disabled.id,
                &KeyPatch {
                    enabled: Some(false),
                    ..Default::default()
                },
                &actor(),
            )
            .await
            .unwrap();
        let revoked = publishable(&["https://revoked.example"], None);
        store.create_key(&revoked, &actor()).await.unwrap();
        store.revoke_key(&revoked.id, &actor()).await.unwrap();

        let lists = store.publishable_origins().await.unwrap();
        assert_eq!(
            lists,
            vec![(
                vec![
                    "https://app.example".to_owned(),
                    "https://*.shop.example".to_owned()
                ],
                Some(4_000_000_000)
            )]
        );
    })
    .await;
}
