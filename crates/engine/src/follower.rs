//! Follows the `changes` log so that writes made on *other* nodes invalidate this node's cache
//! (SPEC §9). Each node applies its own writes at once; this loop catches everyone else's,
//! woken at once by PostgreSQL `LISTEN/NOTIFY` and by a short poll everywhere.
//!
//! A sequence number is taken when a transaction inserts its entry but becomes visible when it
//! commits, so a lower number can appear after a higher one was read; on distributed engines
//! (CockroachDB's `SERIAL`) numbers are not even consecutive. So the follower never assumes
//! that the next number exists. It keeps a *floor* (everything at or below it is applied or
//! given up on) and the numbers it has applied above it, each with the time it was first read.
//! Between the floor and the lowest of those lies a *hole*: numbers that may still commit.
//! A hole closes at once when the next number fills it, and is given up on [`GAP_TIMEOUT`]
//! after the number above it was read (its transaction rolled back, or numbers are sparse).
//! Meanwhile new entries are read past the hole, and late ones inside it are found by
//! comparing how many entries the log holds below the highest number read with how many were
//! applied.

use crate::{Engine, EngineError};
use latchkey_store::LoggedChange;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a transaction may stay open after taking its number and still be applied. Writes
/// here are short transactions; a longer one is caught by the cache TTL instead.
const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// A starting node reads this far back (by the writers' clocks): enough for
/// [`GAP_TIMEOUT`] plus clock skew between nodes.
const START_LOOKBACK_SECONDS: i64 = 60;
const BATCH: i64 = 1000;
/// Changes older than this are pruned: a node that was away longer starts with a cold cache anyway.
const RETENTION_SECONDS: i64 = 24 * 3600;

pub struct Follower {
    /// Every change at or below it has been applied, or will never commit.
    floor: i64,
    /// Applied changes above the floor, with when each was first read.
    applied: BTreeMap<i64, Instant>,
    /// The highest number read (the floor when nothing above it was).
    high: i64,
}

impl Follower {
    /// Starts below every transaction that might still commit: a lower-numbered transaction
    /// that was in flight when the node started is applied when it commits.
    pub async fn start(engine: &Engine) -> Result<Self, EngineError> {
        let floor = engine
            .store
            .change_floor_before(crate::now() - START_LOOKBACK_SECONDS)
            .await?;
        engine.feed.set_floor(floor);
        Ok(Self::from_floor(floor))
    }

    fn from_floor(floor: i64) -> Self {
        Self {
            floor,
            applied: BTreeMap::new(),
            high: floor,
        }
    }

    /// Reads and applies what is new; returns how many changes were applied.
    pub async fn poll(&mut self, engine: &Engine) -> Result<usize, EngineError> {
        let now = Instant::now();
        let mut n = 0;
        // New entries, page by page, past whatever holes lie below.
        loop {
            let page = engine.store.changes_after(self.high, None, BATCH).await?;
            let full = page.len() as i64 == BATCH;
            n += self.record(engine, page, now);
            if !full {
                break;
            }
        }
        // Late commits inside the holes: the log holds more entries there than were applied.
        if self.high > self.floor {
            let held = engine.store.count_changes(self.floor, self.high).await?;
            if held > self.applied.len() as i64 {
                let mut after = self.floor;
                loop {
                    let page = engine
                        .store
                        .changes_after(after, Some(self.high), BATCH)
                        .await?;
                    let full = page.len() as i64 == BATCH;
                    after = page.last().map_or(after, |c| c.seq);
                    n += self.record(engine, page, now);
                    if !full {
                        break;
                    }
                }
            }
        }
        self.advance(now);
        engine.feed.set_floor(self.floor);
        Ok(n)
    }

    /// Applies the entries not applied yet; returns how many.
    fn record(&mut self, engine: &Engine, page: Vec<LoggedChange>, now: Instant) -> usize {
        let mut n = 0;
        for entry in page {
            if entry.seq <= self.floor || self.applied.contains_key(&entry.seq) {
                continue;
            }
            self.applied.insert(entry.seq, now);
            self.high = self.high.max(entry.seq);
            match &entry.change {
                Some(change) => engine.apply(std::slice::from_ref(change)),
                None => {
                    tracing::warn!(
                        seq = entry.seq,
                        "change of an unknown kind in the log (a newer node?); clearing the cache"
                    );
                    engine.cache.clear();
                    engine.origins.forget();
                }
            }
            // After the cache dropped what it names: a subscriber that asks again gets the new answer.
            engine.feed.publish(&entry);
            n += 1;
        }
        n
    }

    /// Raises the floor over every hole that has closed or timed out, all at once.
    fn advance(&mut self, now: Instant) {
        while let Some((&seq, &read_at)) = self.applied.first_key_value() {
            let closed = seq == self.floor + 1;
            if !closed && now.saturating_duration_since(read_at) < GAP_TIMEOUT {
                return;
            }
            self.floor = seq;
            self.applied.pop_first();
        }
    }

    /// Reads the log when PostgreSQL notifies a change, and every `every` regardless (a
    /// notification can be lost while the listener reconnects); until the task is aborted.
    pub async fn run(mut self, engine: Engine, every: Duration) {
        let wake = Arc::new(Notify::new());
        let _listener = match engine.store.change_listener().await {
            Ok(Some(listener)) => Some(AbortOnDrop(tokio::spawn(listen(listener, wake.clone())))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "no change-log listener; following the log by polling only");
                None
            }
        };
        let mut tick = tokio::time::interval(every);
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {}
                _ = engine.wake_follower.notified() => {}
            }
            if let Err(e) = self.poll(&engine).await {
                tracing::warn!(error = %e, "could not read the change log; will retry");
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = Instant::now();
                let _ = engine
                    .store
                    .prune_changes(crate::now() - RETENTION_SECONDS)
                    .await;
            }
        }
    }
}

/// Wakes the follower on every notification. `PgListener` reconnects by itself on the next
/// `recv` after its connection drops.
async fn listen(mut listener: latchkey_store::ChangeListener, wake: Arc<Notify>) {
    loop {
        match listener.recv().await {
            Ok(_) => wake.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "change-log listener lost its connection; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(floor: i64, applied: &[(i64, Instant)]) -> Follower {
        let mut f = Follower::from_floor(floor);
        for &(seq, at) in applied {
            f.applied.insert(seq, at);
            f.high = f.high.max(seq);
        }
        f
    }

    fn applied(f: &Follower) -> Vec<i64> {
        f.applied.keys().copied().collect()
    }

    #[test]
    fn the_floor_advances_over_contiguous_changes_and_waits_at_a_hole() {
        let t = Instant::now();
        let mut f = follower(10, &[(11, t), (12, t), (14, t)]);
        f.advance(t);
        assert_eq!(f.floor, 12);
        assert_eq!(applied(&f), vec![14], "13 may still commit");
        f.applied.insert(13, t);
        f.advance(t);
        assert_eq!(f.floor, 14);
        assert!(f.applied.is_empty());
    }

    #[test]
    fn each_hole_times_out_on_its_own_clock() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(6);
        // Hole 2..4 opened at t0 (5 was read then); hole 6..7 at t1 (8 was read then).
        let mut f = follower(1, &[(5, t0), (8, t1)]);
        f.advance(t0 + GAP_TIMEOUT - Duration::from_millis(1));
        assert_eq!(f.floor, 1, "neither hole is old enough");
        f.advance(t0 + GAP_TIMEOUT);
        assert_eq!(f.floor, 5, "the older hole is given up on");
        assert_eq!(applied(&f), vec![8], "the younger one is still waited for");
        f.advance(t1 + GAP_TIMEOUT);
        assert_eq!(f.floor, 8);
    }

    #[test]
    fn every_expired_hole_is_skipped_at_once() {
        let t = Instant::now();
        let many: Vec<_> = (0..50).map(|i| (10 + 3 * i, t)).collect();
        let mut f = follower(1, &many);
        f.advance(t + GAP_TIMEOUT);
        assert_eq!(f.floor, 10 + 3 * 49);
        assert!(f.applied.is_empty());
    }

    #[test]
    fn sparse_numbers_lag_by_the_timeout_and_then_catch_up() {
        // CockroachDB-like numbers: never consecutive, so every entry opens a hole below it.
        let t = Instant::now();
        let mut f = follower(0, &[(1_000, t), (5_000, t), (9_000, t + GAP_TIMEOUT)]);
        f.advance(t + GAP_TIMEOUT);
        assert_eq!(f.floor, 5_000);
        assert_eq!(applied(&f), vec![9_000]);
        assert_eq!(f.high, 9_000);
    }
}
