//! Follows the `changes` log so that writes made on *other* nodes invalidate this node's cache
//! (SPEC §9). Each node applies its own writes at once; this loop catches everyone else's,
//! woken at once by PostgreSQL `LISTEN/NOTIFY` and by a short poll everywhere.
//!
//! On PostgreSQL a sequence number is taken at insert but becomes visible at commit, so a
//! lower number can appear after a higher one was read. The follower therefore keeps a floor
//! (every change at or below it has been applied) plus the set of applied numbers above it, and
//! re-reads from the floor each time; a gap that stays empty for [`GAP_TIMEOUT`] belonged to a
//! rolled-back transaction and is skipped.

use crate::state::AppState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const GAP_TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: i64 = 1000;
/// Changes older than this are pruned: a node that was away longer starts with a cold cache anyway.
const RETENTION_SECONDS: i64 = 24 * 3600;

pub struct Follower {
    floor: i64,
    applied: BTreeSet<i64>,
    gap_since: Option<Instant>,
}

impl Follower {
    /// Starts at the current end of the log: a fresh node has nothing cached to invalidate.
    pub async fn start(state: &AppState) -> anyhow::Result<Self> {
        Ok(Self {
            floor: state.store.latest_change().await?,
            applied: BTreeSet::new(),
            gap_since: None,
        })
    }

    /// Reads and applies what is new; returns how many changes were applied.
    pub async fn poll(&mut self, state: &AppState) -> anyhow::Result<usize> {
        let changes = state.store.changes_since(self.floor, BATCH).await?;
        let mut n = 0;
        for (seq, change) in changes {
            if self.applied.insert(seq) {
                state.changed(std::slice::from_ref(&change));
                n += 1;
            }
        }
        self.advance();
        Ok(n)
    }

    fn advance(&mut self) {
        loop {
            while self.applied.remove(&(self.floor + 1)) {
                self.floor += 1;
            }
            match self.applied.first() {
                None => {
                    self.gap_since = None;
                    return;
                }
                Some(_) => {
                    let since = *self.gap_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < GAP_TIMEOUT {
                        return;
                    }
                    // The missing number never committed; step over it.
                    self.floor += 1;
                    self.gap_since = None;
                }
            }
        }
    }

    /// Reads the log when PostgreSQL notifies a change, and every `every` regardless (a
    /// notification can be lost while the listener reconnects); until the task is aborted.
    pub async fn run(mut self, state: AppState, every: Duration) {
        let wake = Arc::new(Notify::new());
        let _listener = match state.store.change_listener().await {
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
            }
            if let Err(e) = self.poll(&state).await {
                tracing::warn!(error = %e, "could not read the change log; will retry");
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = Instant::now();
                let _ = state
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

    fn follower(floor: i64, applied: &[i64]) -> Follower {
        Follower {
            floor,
            applied: applied.iter().copied().collect(),
            gap_since: None,
        }
    }

    #[test]
    fn the_floor_advances_over_contiguous_changes_and_waits_at_a_gap() {
        let mut f = follower(10, &[11, 12, 14]);
        f.advance();
        assert_eq!(f.floor, 12);
        assert_eq!(f.applied.iter().copied().collect::<Vec<_>>(), vec![14]);
        assert!(f.gap_since.is_some(), "13 may still commit");
        f.applied.insert(13);
        f.advance();
        assert_eq!(f.floor, 14);
        assert!(f.applied.is_empty() && f.gap_since.is_none());
    }

    #[test]
    fn a_gap_that_never_fills_is_skipped_after_the_timeout() {
        let mut f = follower(1, &[3]);
        f.gap_since = Some(Instant::now() - GAP_TIMEOUT - Duration::from_secs(1));
        f.advance();
        assert_eq!(f.floor, 3);
        assert!(f.applied.is_empty());
    }
}
