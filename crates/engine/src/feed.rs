//! The change-log entries this engine applied, as a broadcast: what the change stream
//! (`GET /v1/changes`, SPEC §10.6) hands on to remote verifiers, so their caches follow the same
//! log as a node's own.
//!
//! Positions: the follower's *floor* (every entry at or below it is applied, or will never
//! commit) is the only number that is safe to resume from. An entry's own number is not: an
//! entry with a lower number may still commit after it (see `follower`). So a subscriber is
//! told the floor, and resuming from it may repeat a few entries, which is harmless for
//! invalidations.

use latchkey_store::LoggedChange;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::broadcast;

/// Entries a subscriber may fall behind by before it is told to start over.
const CAPACITY: usize = 4096;

pub struct ChangeFeed {
    tx: broadcast::Sender<LoggedChange>,
    floor: AtomicI64,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            floor: AtomicI64::new(0),
        }
    }
}

impl ChangeFeed {
    /// Every entry applied from now on, and the floor as of subscribing: entries at or below it
    /// were applied before.
    pub fn subscribe(&self) -> (broadcast::Receiver<LoggedChange>, i64) {
        // Subscribe first: an entry applied between the two reads is then both below the
        // floor read after and in the channel (repeated, never lost).
        let rx = self.tx.subscribe();
        (rx, self.floor())
    }

    /// The follower's floor: safe to resume from.
    pub fn floor(&self) -> i64 {
        self.floor.load(Ordering::Acquire)
    }

    pub(crate) fn publish(&self, entry: &LoggedChange) {
        // No subscribers is not an error.
        let _ = self.tx.send(entry.clone());
    }

    pub(crate) fn set_floor(&self, floor: i64) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }
}
