//! In-process cost of rate limits (SPEC §11.1), next to what it is added to.
//!
//! Requirements (issue 13): a rate-limit check on a cached key costs at most 100 ns at the
//! median, and a verification with one auto-applied limit at most 1.2× the same verification
//! without. Both sides run here, in the same process and minutes:
//! - `limiter_charge`: one GCRA charge on one `Limiter` (the floor: one compare-and-swap);
//! - `check_one_limit`: what the engine adds per verification for a key with one limit:
//!   planning the request's charges from the cached key's bound limits, and charging them;
//! - `verify_without_limit` / `verify_with_one_limit`: `Engine::authenticate` (resolve through
//!   the cache, decide, charge) for two keys of the same owner that differ only in the limit.
//!
//! The limit is 10⁹ per hour, so no sample is ever refused (a refusal is cheaper, not dearer).
//!
//! Run: `cargo bench -p latchkey-server --bench limits`.

mod common;

use common::{open_state, TempDir};
use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::ratelimit::{Limiter, NamedLimit, Rate};
use latchkey_core::{ApiKey, Demand, Environment, KeyType};
use latchkey_engine::limits::{charge_local, plan};
use latchkey_engine::resolve::resolve_key;
use latchkey_engine::Presented;
use latchkey_store::{Actor, NewApiKey};
use std::borrow::Cow;
use std::hint::black_box;

fn limits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = TempDir::new();
    let (state, admin) = rt.block_on(open_state(&dir));
    let owner = rt
        .block_on(resolve_key(&state.engine, &admin))
        .expect("resolve")
        .expect("the admin key");
    let new_key = |limited: bool| {
        let key = ApiKey::generate(KeyType::Secret, Environment::Live);
        let mut new = NewApiKey::for_key(
            &key,
            &state.engine.hasher,
            "bench".into(),
            owner.key.workspace_id.clone(),
            owner.key.owner_id.clone(),
        );
        if limited {
            new.ratelimits = vec![NamedLimit {
                name: "burst".into(),
                limit: 1_000_000_000,
                window_seconds: 3600,
                auto_apply: true,
            }];
        }
        rt.block_on(state.store.create_key(&new, &Actor::default()))
            .expect("creating a bench key");
        key.secret().expose().to_owned()
    };
    let (plain, limited) = (new_key(false), new_key(true));
    let resolved = rt
        .block_on(resolve_key(&state.engine, &limited))
        .expect("resolve")
        .expect("the limited key");
    assert!(!resolved.limits.is_empty(), "the key's limit is bound");
    rt.block_on(resolve_key(&state.engine, &plain))
        .expect("warm")
        .expect("found");

    let mut g = c.benchmark_group("ratelimit");
    let rate = Rate::new(1_000_000_000, 3600).expect("a valid rate");
    let limiter = Limiter::new();
    g.bench_function("limiter_charge", |b| {
        b.iter(|| black_box(limiter.charge(&rate, state.engine.clock.now_ns(), 1)))
    });
    g.bench_function("check_one_limit", |b| {
        b.iter(|| {
            let p = plan(&[black_box(&resolved.limits)], &[]);
            black_box(charge_local(&p, state.engine.clock.now_ns()).allowed())
        })
    });
    for (name, key) in [
        ("verify_without_limit", &plain),
        ("verify_with_one_limit", &limited),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let presented = Presented {
                    key: Some(Cow::Borrowed(key.as_str())),
                    token: None,
                };
                black_box(
                    state
                        .engine
                        .authenticate(&presented, &Demand::default(), false)
                        .await
                        .is_ok(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, limits);
criterion_main!(benches);
