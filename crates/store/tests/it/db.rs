//! A fresh database per test, on each backend.

use latchkey_core::{base62, ids, ApiKey, Environment, KeyHasher, KeyType};
use latchkey_store::{Actor, NewApiKey, NewUser, SqlStore};
use sqlx::Connection;
use std::future::Future;
use std::path::PathBuf;

pub const PG_ENV: &str = "LATCHKEY_TEST_POSTGRES_URL";

fn suffix() -> String {
    let mut s = String::new();
    base62::push_random(12, &mut s);
    s.to_lowercase()
}

/// Where one test's database lives; removed (dropped) afterwards.
pub enum Place {
    Sqlite(PathBuf),
    Postgres { admin: String, name: String },
}

impl Place {
    pub async fn new_sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("latchkey-store-test-{}", suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Place::Sqlite(dir.join("latchkey.db"))
    }

    pub async fn new_postgres(admin: &str) -> Self {
        let name = format!("latchkey_store_{}", suffix());
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        Place::Postgres {
            admin: admin.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        match self {
            Place::Sqlite(p) => p.display().to_string(),
            Place::Postgres { admin, name } => {
                let mut u = url_base(admin);
                u.push_str(name);
                u
            }
        }
    }

    pub async fn cleanup(self) {
        match self {
            Place::Sqlite(p) => {
                let _ = std::fs::remove_dir_all(p.parent().unwrap());
            }
            Place::Postgres { admin, name } => {
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }
}

/// `postgres://user@host:port/` of an admin URL (its database and query dropped).
fn url_base(admin: &str) -> String {
    let no_query = admin.split('?').next().unwrap();
    let (scheme, rest) = no_query.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}/")
}

/// Runs `scenario` on a fresh, migrated store of each backend.
pub async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(SqlStore, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut places = vec![Place::new_sqlite().await];
    if let Ok(admin) = std::env::var(PG_ENV) {
        if !admin.is_empty() {
            places.push(Place::new_postgres(&admin).await);
        }
    }
    for place in places {
        let url = place.url();
        let store = SqlStore::open(&url).await.expect("opens and migrates");
        scenario(store.clone(), url).await;
        store.close().await;
        place.cleanup().await;
    }
}

pub fn actor() -> Actor {
    Actor::default()
}

pub fn hasher() -> KeyHasher {
    KeyHasher::new(b"store tests: 0123456789abcdef0123456789")
}

/// A user, a workspace they administer, and a new key record of theirs (not yet stored).
pub async fn owner_and_key(store: &SqlStore) -> (String, String, ApiKey, NewApiKey) {
    let user = store
        .create_user(
            &NewUser {
                id: ids::new_id(ids::USER),
                email: format!("{}@example.com", suffix()),
                name: "Owner".into(),
                password_hash: None,
                instance_role: None,
            },
            &actor(),
        )
        .await
        .unwrap();
    let ws = store
        .create_workspace(&ids::new_id(ids::WORKSPACE), "Tenant", &user.id, &actor())
        .await
        .unwrap();
    let key = ApiKey::generate(KeyType::Secret, Environment::Live);
    let new = NewApiKey::for_key(&key, &hasher(), "k".into(), ws.id.clone(), user.id.clone());
    (user.id, ws.id, key, new)
}
