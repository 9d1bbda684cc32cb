//! The engine's one error type: why a credential could not be checked. A verdict about a
//! credential is never an error (it is a [`latchkey_core::Denial`]); these are the cases where
//! no verdict could be reached, which every front door must answer as "try again", never as
//! "invalid key".

use latchkey_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database cannot be reached or used right now: nothing was decided.
    #[error("the database is unavailable")]
    Unavailable,
    /// Something is wrong on our side (a corrupt row, a failed signature); logged where it
    /// happened, never shown to a client.
    #[error("internal error")]
    Internal,
    /// The signing keys cannot be loaded (a different server secret, a corrupt row): a
    /// configuration problem to report at start-up.
    #[error("signing keys: {0}")]
    SigningKeys(String),
}

impl EngineError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, EngineError::Unavailable)
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                EngineError::Unavailable
            }
            other => {
                // The database error may quote SQL and values: to the log only.
                tracing::error!(error = %other, "store error");
                EngineError::Internal
            }
        }
    }
}
