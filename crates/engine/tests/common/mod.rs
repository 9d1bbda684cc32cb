//! A deployment for the engine's own tests: a fresh SQLite store, its bootstrap admin, and one
//! key of theirs set up by the test, under an engine on the test's clock.
// Each test binary uses what it needs of it.
#![allow(dead_code)]

use latchkey_core::{ids, ApiKey, Environment, KeyType, Secret};
use latchkey_engine::clock::Clock;
use latchkey_engine::{Engine, EngineOptions};
use latchkey_store::{Actor, Bootstrap, NewApiKey, NewUser, SqlStore};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

pub struct Deployment {
    pub engine: Engine,
    /// The key's plaintext.
    pub key: String,
    pub key_id: String,
    pub workspace_id: String,
    /// The key's owner, the workspace's admin.
    pub owner_id: String,
    dir: std::path::PathBuf,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh deployment whose one key `setup` shapes before it is stored.
pub async fn deployment(clock: Clock, setup: impl FnOnce(&mut NewApiKey)) -> Deployment {
    let dir = std::env::temp_dir().join(format!("latchkey-engine-{}", ids::new_id("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::open(dir.join("db.sqlite").to_str().unwrap())
        .await
        .unwrap();
    let engine = Engine::with_clock(
        store.clone(),
        &Secret::new(SECRET.to_owned()),
        EngineOptions::default(),
        clock,
    );
    let admin = NewUser {
        id: ids::new_id(ids::USER),
        email: "admin@example.com".into(),
        name: "Admin".into(),
        password_hash: None,
        instance_role: None,
    };
    let workspace_id = ids::new_id(ids::WORKSPACE);
    let boot_key = ApiKey::generate(KeyType::Secret, Environment::Live);
    store
        .bootstrap(&Bootstrap {
            key: NewApiKey::for_key(
                &boot_key,
                &engine.hasher,
                "boot".into(),
                workspace_id.clone(),
                admin.id.clone(),
            ),
            admin: admin.clone(),
            workspace_id: workspace_id.clone(),
            workspace_name: "Default".into(),
        })
        .await
        .unwrap();
    let key = ApiKey::generate(KeyType::Secret, Environment::Live);
    let mut new = NewApiKey::for_key(
        &key,
        &engine.hasher,
        "metered".into(),
        workspace_id.clone(),
        admin.id.clone(),
    );
    setup(&mut new);
    let (record, _) = store.create_key(&new, &Actor::default()).await.unwrap();
    Deployment {
        engine,
        key: key.secret().expose().to_owned(),
        key_id: record.id,
        workspace_id,
        owner_id: admin.id,
        dir,
    }
}
