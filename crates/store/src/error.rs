//! The store's one error type.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit; the string names what was duplicated, for the 409 detail.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The database cannot be reached or used right now (connection refused or lost, pool
    /// timed out, disk full or unreadable, server shutting down): nothing was decided, and the
    /// same request may succeed once the database is back.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_outage(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    pub(crate) fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::from(e),
        }
    }

    /// True when the database could not be used, as opposed to a request it refused.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Whether an error says the database is out of reach rather than that a statement was wrong.
fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // SQLSTATE classes: 08 connection exception, 40 transaction rollback
                // (serialization failure, deadlock: retry), 53 insufficient resources (too many
                // connections, disk full), 57 operator intervention (shutdown, cannot connect
                // now, statement cancelled), 58 system error (I/O).
                // And 25006, a write on a read-only server: what a failover to a standby looks
                // like until the new primary is reachable.
                matches!(&pg.code()[..2], "08" | "40" | "53" | "57" | "58") || pg.code() == "25006"
            } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // Primary result codes: BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL,
                // CANTOPEN, PROTOCOL, NOTADB.
                let primary = sqlx::error::DatabaseError::code(lite)
                    .and_then(|c| c.parse::<i32>().ok())
                    .map_or(0, |c| c & 0xff);
                matches!(primary, 5 | 6 | 7 | 8 | 10 | 11 | 13 | 14 | 15 | 26)
            } else {
                false
            }
        }
        _ => false,
    }
}
