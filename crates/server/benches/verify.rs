//! In-process cost of verifying an API key, next to its floor.
//!
//! Requirement: a cached verification of a valid key costs at most 2× one HMAC-SHA256 plus one
//! hash-map lookup (`baseline`, measured here in the same group), and a malformed key (bad
//! checksum) is refused in well under one HMAC (`hmac_only`).
//!
//! The verification benchmarks run the real path (`latchkey_engine::resolve::resolve_key` then
//! `Resolved::decide`) on a state opened the real way (`App::open` on SQLite in a temporary
//! directory, `App::bootstrap` for a valid key), with the cache warmed by one resolve first. They
//! run on a tokio current-thread runtime through criterion's `to_async`, which enters the
//! runtime once per sample (one `block_on` around the whole timed loop), so the per-iteration
//! overhead is only polling a future that never suspends.
//!
//! The `hmac_only`, `check_*` and `step_*` benchmarks time the pieces of that path alone, for
//! the breakdown. `cached_verify_valid_1m_keys` runs last: it first fills the key cache to just
//! under its capacity.
//!
//! Run: `cargo bench -p latchkey-server --bench verify` (a filter selects some, e.g.
//! `-- 'verify/(baseline|cached)'`).

mod common;

use common::{open_state, TempDir};
use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::{ApiKey, Demand, KeyHasher};
use latchkey_engine::cache::{CachedKey, KeyEntry};
use latchkey_engine::resolve::resolve_key;
use latchkey_server::state::AppState;

use latchkey_store::{ApiKeyRecord, Change};

use std::hint::black_box;

use std::sync::Arc;
use std::time::Duration;

/// Just under the cache's capacity: the cache's fill for the "many keys" variant.
const CACHE_FILLERS: usize = 999_000;

/// The same key with one character of its random part changed: right shape, wrong checksum.
fn bad_checksum(key: &str) -> String {
    let mut b = key.as_bytes().to_vec();
    let i = 8 + 5; // inside the 32 random characters after `sk_live_`
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    let s = String::from_utf8(b).expect("ascii");
    assert_eq!(
        ApiKey::parse(&s),
        Err(latchkey_core::key::ParseKeyError::BadChecksum)
    );
    s
}

/// Fills the key cache with `n` more keys, each with its own record (a copy of the admin key's
/// under another hash) and the admin's standing, so lookups run against a cache as large as a
/// big deployment's. Returns the resident memory this added per key, in bytes.
fn fill_key_cache(state: &AppState, valid_key: &str, n: usize) -> u64 {
    let hasher = KeyHasher::new(b"filler keys: any secret will do here");
    let cached = state
        .engine
        .cache
        .key(&state.engine.hasher.hash(valid_key))
        .expect("the admin key is cached");
    let before = resident_bytes();
    for i in 0..n {
        let hash = hasher.hash(&format!("filler-{i}"));
        let mut record = ApiKeyRecord::clone(&cached.key);
        record.id = format!("key_filler{i:012}");
        record.hash = hash.to_hex();
        let key = KeyEntry::new(record, state.engine.cache.generation()).expect("valid hash");
        let epoch = state.engine.cache.epoch();
        let entry = CachedKey::new(
            Arc::new(key),
            cached.principal.clone(),
            cached.workspace.clone(),
            cached.limits.clone(),
            &cached.stamp(),
        );
        state.engine.cache.insert_key(hash, Arc::new(entry), epoch);
    }
    resident_bytes().saturating_sub(before) / n as u64
}

/// Caches `per_workspace` principals in each of `workspaces` workspaces.
fn fill_principal_cache(state: &AppState, workspaces: usize, per_workspace: usize) {
    for w in 0..workspaces {
        for u in 0..per_workspace {
            let p = latchkey_store::Principal {
                user_id: format!("usr_filler{u}"),
                email: format!("filler{u}@example.com"),
                name: "Filler".into(),
                workspace_id: format!("ws_filler{w}"),
                active: true,
                is_instance_admin: false,
                is_instance_verifier: false,
                role: Some("member".into()),
                permissions: Default::default(),
                ratelimits: vec![],
                credits: None,
            };
            let stamp = state.engine.cache.stamp(&p.workspace_id, &p.user_id);
            state
                .engine
                .cache
                .insert_principal(Arc::new(p), state.engine.cache.epoch(), stamp);
        }
    }
}

/// This process's resident set size (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = TempDir::new();
    let (state, key) = rt.block_on(open_state(&dir));
    let bad = bad_checksum(&key);
    assert!(
        rt.block_on(resolve_key(&state.engine, &bad))
            .expect("no error for a bad checksum")
            .is_none(),
        "a bad checksum resolves to nothing"
    );

    let (hasher, map) = common::baseline(&key);

    let mut g = c.benchmark_group("verify");

    g.bench_function("baseline_hmac_plus_hashmap_1m", |b| {
        b.iter(|| {
            let h = hasher.hash(black_box(&key));
            black_box(map.get(&h).cloned())
        })
    });

    g.bench_function("hmac_only", |b| b.iter(|| hasher.hash(black_box(&key))));

    g.bench_function("check_valid", |b| b.iter(|| ApiKey::check(black_box(&key))));

    g.bench_function("check_bad_checksum", |b| {
        b.iter(|| ApiKey::check(black_box(&bad)))
    });

    g.bench_function("cached_verify_valid", |b| {
        b.to_async(&rt).iter(|| async {
            let r = resolve_key(&state.engine, black_box(&key))
                .await
                .expect("resolve")
                .expect("found");
            black_box(r.decide(&Demand::default()).is_ok())
        })
    });

    g.bench_function("reject_bad_checksum", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                resolve_key(&state.engine, black_box(&bad))
                    .await
                    .expect("resolve")
                    .is_none(),
            )
        })
    });

    // The same verification while another workspace's standing changes 5,000 times a second
    // (a role or membership change there must cost nothing here). The churn runs for the whole
    // benchmark, warm-up included.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (state, stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                state
                    .engine
                    .cache
                    .apply(&Change::Workspace("ws_elsewhere".into()));
                state.engine.cache.apply(&Change::Principal {
                    workspace_id: "ws_elsewhere".into(),
                    user_id: format!("usr_elsewhere{}", n % 100),
                });
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            n
        })
    };
    g.bench_function("cached_verify_valid_while_another_workspace_changes", |b| {
        b.to_async(&rt).iter(|| async {
            let r = resolve_key(&state.engine, black_box(&key))
                .await
                .expect("resolve")
                .expect("found");
            black_box(r.decide(&Demand::default()).is_ok())
        })
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes = churn.join().expect("churn thread");
    eprintln!("changes applied to another workspace meanwhile: {changes}");

    // What one workspace change costs the node applying it, with 100,000 principals of 1,000
    // workspaces cached (a walk over the principal cache would cost all 100,000).
    fill_principal_cache(&state, 1_000, 100);
    let mut i = 0u64;
    g.bench_function("apply_workspace_change_100k_principals_cached", |b| {
        b.iter(|| {
            i += 1;
            state
                .engine
                .cache
                .apply(&Change::Workspace(format!("ws_filler{}", i % 1_000)))
        })
    });

    // The breakdown: each step of the cached path alone, on the same state.
    let resolved = rt
        .block_on(resolve_key(&state.engine, &key))
        .expect("resolve")
        .expect("found");
    let key_hash = state.engine.hasher.hash(&key);
    let (ws, user) = (
        resolved.key.workspace_id.clone(),
        resolved.key.owner_id.clone(),
    );
    g.bench_function("step_cache_key", |b| {
        b.iter(|| state.engine.cache.key(black_box(&key_hash)))
    });
    g.bench_function("step_cache_principal", |b| {
        b.iter(|| {
            state
                .engine
                .cache
                .principal(black_box(&ws), black_box(&user))
        })
    });
    g.bench_function("step_cache_workspace", |b| {
        b.iter(|| state.engine.cache.workspace(black_box(&ws)))
    });
    g.bench_function("step_principal_key_strings", |b| {
        b.iter(|| black_box((black_box(&ws).to_owned(), black_box(&user).to_owned())))
    });
    g.bench_function("step_hash_ct_eq", |b| {
        b.iter(|| black_box(&resolved.key.hash).ct_eq(black_box(&key_hash)))
    });
    // As `load_key` counts a hit: a labelled `counter!` looks the series up in the registry
    // each time; a handle registered once is one atomic add.
    g.bench_function("step_metrics_counter_macro", |b| {
        b.iter(|| metrics::counter!("latchkey_cache_hits_total", "kind" => "key").increment(1))
    });
    let hits = metrics::counter!("latchkey_cache_hits_total", "kind" => "key");
    g.bench_function("step_metrics_counter_handle", |b| {
        b.iter(|| black_box(&hits).increment(1))
    });
    g.bench_function("step_decide", |b| {
        b.iter(|| black_box(resolved.decide(&Demand::default()).is_ok()))
    });

    // The same verification with the key cache nearly full: filled on first use only, so a
    // filtered run that skips this benchmark skips the fill too.
    let mut filled = false;
    g.bench_function("cached_verify_valid_1m_keys", |b| {
        if !filled {
            let per_key = fill_key_cache(&state, &key, CACHE_FILLERS);
            eprintln!("memory per cached key: {per_key} bytes ({CACHE_FILLERS} keys cached)");
            filled = true;
        }
        b.to_async(&rt).iter(|| async {
            let r = resolve_key(&state.engine, black_box(&key))
                .await
                .expect("resolve")
                .expect("found");
            black_box(r.decide(&Demand::default()).is_ok())
        })
    });

    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
