//! What every handler shares.

use crate::cache::VerifyCache;
use crate::usage::UsageRecorder;
use latchkey_core::KeyHasher;
use latchkey_store::{Change, SqlStore};
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: SqlStore,
    pub hasher: KeyHasher,
    pub cache: VerifyCache,
    pub usage: UsageRecorder,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Call after every committed write with the changes it returned.
    pub fn changed(&self, changes: &[Change]) {
        self.cache.apply_all(changes);
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
