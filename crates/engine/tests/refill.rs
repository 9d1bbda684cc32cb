//! Credit refills (SPEC §11.2) on a test clock: lazy, at the UTC boundary, once per boundary,
//! each one audited; and the engine's verdicts around them. A real SQLite store; the engine's
//! clock is moved by hand, so no test waits for midnight.

mod common;

use common::Deployment;
use latchkey_core::credits::{Credits, Interval, Refill};
use latchkey_core::{Demand, Denial};
use latchkey_engine::clock::Clock;
use latchkey_engine::{Presented, Refusal};
use latchkey_store::{AuditFilter, PageRequest};
use std::borrow::Cow;
use std::time::Duration;

/// A deployment whose key holds `credits`.
async fn deployment(credits: Credits, clock: Clock) -> Deployment {
    common::deployment(clock, |k| k.credits = Some(credits)).await
}

/// The verdict for the key, and its balance after it.
async fn verify(d: &Deployment) -> (Option<Denial>, i64) {
    let presented = Presented {
        key: Some(Cow::Borrowed(&d.key)),
        token: None,
    };
    match d
        .engine
        .authenticate(&presented, &Demand::default(), false)
        .await
    {
        Ok(v) => (None, v.limits.credits[0].remaining),
        Err(Refusal::Limited(_, report)) => (report.refusal(), report.credits[0].remaining),
        Err(Refusal::Denied(_, d)) => panic!("denied: {d:?}"),
        Err(Refusal::Unchecked(e)) => panic!("unchecked: {e}"),
    }
}

async fn refills_audited(d: &Deployment) -> usize {
    let filter = AuditFilter {
        action: Some("key.credits_refilled".into()),
        ..Default::default()
    };
    let page = PageRequest {
        cursor: None,
        limit: 100,
    };
    let events = d.engine.store.list_audit(&filter, page).await.unwrap().data;
    assert!(events.iter().all(|e| e.target_id == d.key_id));
    events.len()
}

fn unix_now() -> i64 {
    latchkey_engine::now()
}

#[tokio::test]
async fn a_daily_refill_happens_at_midnight_utc_once_and_is_audited() {
    let clock = Clock::manual(unix_now());
    let daily = Refill {
        interval: Interval::Daily,
        amount: 3,
        day: None,
    };
    let d = deployment(
        Credits {
            remaining: 1,
            refill: Some(daily),
        },
        clock.clone(),
    )
    .await;

    assert_eq!(verify(&d).await, (None, 0));
    assert_eq!(verify(&d).await, (Some(Denial::UsageExceeded), 0));
    assert_eq!(
        refills_audited(&d).await,
        0,
        "setting credits is not a refill"
    );

    // Just before the next midnight: still nothing.
    // From the test clock, never the wall clock: a second that passes between two readings of
    // the wall clock would leave the test clock short of midnight.
    let midnight = daily.next_boundary(clock.unix());
    clock.advance(Duration::from_secs((midnight - 1 - clock.unix()) as u64));
    assert_eq!(verify(&d).await, (Some(Denial::UsageExceeded), 0));
    // At midnight the balance becomes `amount` (and this verification spends one of it).
    clock.advance(Duration::from_secs(1));
    assert_eq!(verify(&d).await, (None, 2));
    assert_eq!(verify(&d).await, (None, 1));
    assert_eq!(verify(&d).await, (None, 0));
    assert_eq!(
        verify(&d).await,
        (Some(Denial::UsageExceeded), 0),
        "one refill per boundary"
    );
    assert_eq!(refills_audited(&d).await, 1);

    // A day later, again, whatever was left.
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(verify(&d).await, (None, 2));
    assert_eq!(refills_audited(&d).await, 2);
    // Two boundaries passed without a verification refill once, not twice.
    clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(verify(&d).await, (None, 2));
    assert_eq!(refills_audited(&d).await, 3);
}

#[tokio::test]
async fn a_monthly_refill_on_day_31_comes_on_the_last_day_of_a_short_month() {
    // 2027-02-27 12:00 UTC, a month of 28 days.
    let start = 1_803_729_600;
    let clock = Clock::manual(start);
    let monthly = Refill {
        interval: Interval::Monthly,
        amount: 10,
        day: Some(31),
    };
    let d = deployment(
        Credits {
            remaining: 0,
            refill: Some(monthly),
        },
        clock.clone(),
    )
    .await;
    // The key was set up at the real now, long before: the refill of 2027-01-31 is due.
    assert_eq!(verify(&d).await, (None, 9));
    for _ in 0..9 {
        verify(&d).await;
    }
    assert_eq!(verify(&d).await, (Some(Denial::UsageExceeded), 0));
    // 2027-02-28 00:00 UTC.
    clock.advance(Duration::from_secs(12 * 3600));
    assert_eq!(verify(&d).await, (None, 9));
    assert_eq!(refills_audited(&d).await, 2);
}
