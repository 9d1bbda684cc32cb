//! What the benchmarks share: a real state on a temporary SQLite directory, and the baseline
//! every verification is measured against (one HMAC-SHA256 of the key, one lookup in a map of
//! a million entries).
#![allow(dead_code)] // each bench uses part of it

use latchkey_core::{Demand, KeyHash, KeyHasher};
use latchkey_engine::resolve::resolve_key;
use latchkey_server::state::AppState;
use latchkey_server::{App, Config};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Entries in the baseline's map.
pub const MAP_ENTRIES: usize = 1_000_000;

/// A temporary data directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let mut suffix = String::new();
        latchkey_core::base62::push_random(12, &mut suffix);
        let p = std::env::temp_dir().join(format!("latchkey-bench-{suffix}"));
        std::fs::create_dir_all(&p).expect("creating the bench data directory");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real state on SQLite with the bootstrap admin's key, verified once so that the key, its
/// owner's standing and the workspace are all in the cache.
pub async fn open_state(dir: &TempDir) -> (AppState, String) {
    let (app, key) = open_app(dir).await;
    (app.state.clone(), key)
}

/// [`open_state`], keeping the app (to serve it).
pub async fn open_app(dir: &TempDir) -> (App, String) {
    let mut config = Config::for_data_dir(&dir.0);
    // The default TTL (300 s) could expire the warmed entries during a long run and send a
    // sample to SQLite; a longer TTL costs the same per lookup.
    config.cache_ttl = Duration::from_secs(3600);
    let app = App::open(&config).await.expect("opening the app");
    let boot = app
        .bootstrap()
        .await
        .expect("bootstrap")
        .expect("a fresh data directory");
    let state = app.state.clone();
    let warmed = resolve_key(&state.engine, &boot.admin_key)
        .await
        .expect("resolving the admin key")
        .expect("the admin key exists");
    warmed
        .decide(&Demand::default())
        .expect("the admin key is usable");
    assert!(
        state
            .engine
            .cache
            .key(&state.engine.hasher.hash(&boot.admin_key))
            .is_some(),
        "the admin key is cached"
    );
    (app, boot.admin_key)
}

/// The baseline: a pre-keyed HMAC of the same key, one lookup in a 1M-entry map.
pub fn baseline(key: &str) -> (KeyHasher, HashMap<KeyHash, Arc<String>>) {
    let hasher = KeyHasher::new(b"0123456789abcdef0123456789abcdef0123456789abcdef");
    let value: Arc<String> = Arc::new("record".to_owned());
    let mut map: HashMap<KeyHash, Arc<String>> = HashMap::with_capacity(MAP_ENTRIES);
    for i in 0..MAP_ENTRIES - 1 {
        map.insert(hasher.hash(&format!("filler-{i}")), value.clone());
    }
    map.insert(hasher.hash(key), value.clone());
    assert_eq!(map.len(), MAP_ENTRIES);
    (hasher, map)
}
