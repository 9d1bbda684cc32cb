//! Issue 13 asks that a rate-limit check allocate nothing once a key's state exists: it runs
//! on every verification. The usual request (up to two limits) allocates nothing; one of
//! three or more allocates once. `allocation_counter` (its global allocator in this test binary only)
//! counts what this thread allocates while the engine plans and charges the limits of a
//! cached key and of its owner's membership.

mod common;

use latchkey_core::ratelimit::{Named, NamedLimit};
use latchkey_engine::clock::Clock;
use latchkey_engine::limits::{charge_local, plan};
use latchkey_engine::resolve::resolve_key;
use latchkey_store::{Actor, MemberSettings};

fn roomy(name: &str, auto_apply: bool) -> NamedLimit {
    NamedLimit {
        name: name.into(),
        limit: 1_000_000_000,
        window_seconds: 3600,
        auto_apply,
    }
}

#[tokio::test]
async fn a_check_of_up_to_two_limits_on_a_cached_key_allocates_nothing() {
    let clock = Clock::manual(latchkey_engine::now());
    let d = common::deployment(clock.clone(), |k| {
        k.ratelimits = vec![roomy("burst", true), roomy("tokens", false)];
    })
    .await;
    d.engine
        .store
        .put_member(
            &d.workspace_id,
            &d.owner_id,
            "admin",
            &MemberSettings {
                ratelimits: Some(vec![roomy("member", true)]),
                credits: None,
            },
            &Actor::default(),
        )
        .await
        .unwrap();
    let resolved = resolve_key(&d.engine, &d.key).await.unwrap().unwrap();
    assert_eq!(
        resolved.limits.iter().count(),
        3,
        "the key's two and the member's"
    );

    // The usual request: the key's and the member's auto-applied limits.
    let mut allowed = 0;
    let counted = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            clock.advance(std::time::Duration::from_millis(1));
            let charges = plan(&[&resolved.limits], &[]);
            allowed += usize::from(charge_local(&charges, clock.now_ns()).allowed());
        }
    });
    assert_eq!(allowed, 1_000);
    assert_eq!(counted.count_total, 0, "allocations in 1,000 checks");

    // A request that also names the key's third limit, with a cost: three limits are more
    // than the report holds inline, and it allocates its list once, no more (the choice
    // crates/engine/src/limits.rs explains).
    let named = [Named {
        name: "tokens",
        cost: 25,
    }];
    let counted = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            clock.advance(std::time::Duration::from_millis(1));
            let charges = plan(&[&resolved.limits], &named);
            assert!(charge_local(&charges, clock.now_ns()).allowed());
        }
    });
    assert_eq!(counted.count_total, 1_000, "one allocation per check");

    // The counter counts: keeping the reports allocates (the vector that keeps them).
    let counted = allocation_counter::measure(|| {
        let kept: Vec<_> = (0..10)
            .map(|_| charge_local(&plan(&[&resolved.limits], &[]), clock.now_ns()))
            .collect();
        std::hint::black_box(kept);
    });
    assert!(counted.count_total > 0);
}
