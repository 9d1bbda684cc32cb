//! Latchkey's persistence. One [`SqlStore`] serves SQLite and PostgreSQL through sqlx's `Any`
//! driver: the SQL is written once in the dialect both accept (`$n` placeholders, TEXT ids,
//! BIGINT unix times, 0/1 booleans, JSON as TEXT); only DDL is kept per backend.
//!
//! Every write is one transaction that also appends its audit event and, when it can change a
//! verification outcome, a row to the `changes` log. It returns those [`Change`]s so the caller
//! can invalidate its cache at once; other nodes can follow the log.

mod audit;
mod credits;
mod error;
mod keys;
mod model;
mod portal;
mod query;
mod sessions;
mod tokens;
mod usage;
mod users;
mod webhooks;
mod workspaces;

pub use audit::CHANGES_CHANNEL;
pub use credits::{CreditCharge, CreditHolder, CreditOutcome};
pub use error::StoreError;
pub use model::*;
pub use portal::{NewPortalLink, PortalLink};
pub use sessions::Session;
pub use usage::{Granularity, UsageCount, UsageFilter, UsageRow};
pub use webhooks::{
    AttemptOutcome, DeliveryStatus, NewWebhookEndpoint, WebhookDelivery, WebhookEndpoint,
    WebhookEndpointPatch,
};

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::pool::PoolConnection;
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// How long a PostgreSQL query waits for a pooled connection (sqlx retries a refused
/// connection until then).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct SqlStore {
    /// Used for writes. On SQLite it holds one connection, so writers queue in the pool instead
    /// of failing with SQLITE_BUSY.
    write: AnyPool,
    /// Used for reads; on SQLite WAL readers never block the writer.
    read: AnyPool,
    backend: Backend,
    /// For the change-log listener (PostgreSQL only).
    url: String,
    /// Wakes the task that tells other nodes the change log grew (PostgreSQL only).
    announce: Option<Arc<Notify>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish()
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How [`SqlStore::open_with`] opens a database.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Bring the schema up to date (what `serve` does). An embedded verifier opens a database
    /// that `serve` owns and leaves its schema alone: a verifier older than the server must
    /// not fail on migrations it does not know, nor one newer apply its own.
    pub migrate: bool,
    /// PostgreSQL connections at most (SQLite: one writer, four readers).
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            migrate: true,
            max_connections: 16,
        }
    }
}

impl SqlStore {
    /// Opens (creating if needed) and migrates the database at `url`: a `postgres://` URL or a
    /// SQLite file path (`sqlite://` prefix optional).
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, OpenOptions::default()).await
    }

    pub async fn open_with(url: &str, options: OpenOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections)
                // During an outage a request waits this long for a connection before it is
                // answered 503: short, so clients and load balancers learn at once.
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            if options.migrate {
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .map_err(|e| StoreError::Migration(e.to_string()))?;
            }
            let announce = Arc::new(Notify::new());
            tokio::spawn(announce_changes(pool.clone(), announce.clone()));
            return Ok(Self {
                write: pool.clone(),
                read: pool,
                backend: Backend::Postgres,
                url: url.to_owned(),
                announce: Some(announce),
            });
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        // Validate the path through sqlx's own parser before building the Any URL.
        sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?;
        // Without migrating, the database must exist already: `rw` does not create it.
        let mode = if options.migrate { "rwc" } else { "rw" };
        let any_url = format!("sqlite://{path}?mode={mode}");
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(sqlite_pragmas)
            .connect(&any_url)
            .await?;
        write.execute("PRAGMA journal_mode = WAL").await?;
        if options.migrate {
            sqlx::migrate!("./migrations/sqlite")
                .run(&write)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
        }
        let read = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(sqlite_pragmas)
            .connect(&any_url)
            .await?;
        Ok(Self {
            write,
            read,
            backend: Backend::Sqlite,
            url: any_url,
            announce: None,
        })
    }

    /// A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred
    /// transaction that reads and then writes fails at once with SQLITE_BUSY if another
    /// process committed in between, instead of waiting its turn.
    ///
    /// The transaction is run with plain `BEGIN`/`COMMIT`/`ROLLBACK` statements on a pooled
    /// connection rather than sqlx's `Transaction`, because a connection must never go back to
    /// the pool inside a transaction, and sqlx's bookkeeping can get there: its BEGIN is not
    /// cancel-safe (launchbadge/sqlx#3932), and when SQLite fails a COMMIT (SQLITE_FULL on a
    /// full disk) and rolls back by itself, sqlx still counts the transaction as open and
    /// refuses every later BEGIN on that connection, which on SQLite's single writer fails every
    /// write until a restart. Here each step runs to completion in its own task, and a
    /// connection whose transaction did not end cleanly is closed rather than reused.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let pool = self.write.clone();
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        let announce = self.announce.clone();
        // The transaction is wrapped inside the task: if the caller is gone by the time BEGIN
        // completes, dropping it there rolls it back.
        let tx = detached(async move {
            let mut conn = pool.acquire().await?;
            match conn.execute(begin).await {
                Ok(_) => Ok(WriteTx {
                    conn: Some(conn),
                    logged_changes: false,
                    announce,
                }),
                Err(e) => {
                    abandon(conn).await;
                    Err(e)
                }
            }
        })
        .await?;
        Ok(tx)
    }

    /// On PostgreSQL, a listener for change-log notifications. It reconnects by itself when
    /// its connection drops (notifications sent meanwhile are lost: callers also poll).
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut l = sqlx::postgres::PgListener::connect(&self.url).await?;
        l.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener(l)))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For `/readyz`: can we reach the database right now?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(a) = &self.announce {
            // An announcement may still be pending (a CLI command closes right after its
            // write): send one now rather than leave other nodes to their poll.
            let _ = announce(&self.write).await;
            a.notify_one(); // lets the announcing task see the pool closed and end
        }
        self.write.close().await;
        self.read.close().await;
    }
}

/// A write transaction (see [`SqlStore::begin_write`]); derefs to its connection. Dropped
/// without a commit, it rolls back.
pub(crate) struct WriteTx {
    /// `None` once committed.
    conn: Option<PoolConnection<sqlx::Any>>,
    /// Set by [`audit::Log::write`]: committing must tell other nodes.
    pub(crate) logged_changes: bool,
    announce: Option<Arc<Notify>>,
}

impl WriteTx {
    /// COMMIT, in its own task for the same reason as BEGIN: once asked for, it completes, and
    /// so does the announcement to other nodes.
    pub async fn commit(mut self) -> Result<()> {
        let mut conn = self.conn.take().expect("a transaction commits once");
        let announce = self.announce.take().filter(|_| self.logged_changes);
        detached(async move {
            match conn.execute("COMMIT").await {
                Ok(_) => {
                    if let Some(a) = &announce {
                        a.notify_one();
                    }
                    Ok(())
                }
                Err(e) => {
                    abandon(conn).await;
                    Err(e)
                }
            }
        })
        .await?;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(abandon(conn));
                }
                // No runtime to roll back on: closing the connection rolls back.
                Err(_) => drop(conn.detach()),
            }
        }
    }
}

/// Ends whatever transaction `conn` may be in. If ROLLBACK fails (no transaction was left
/// open, or the database is failing) the connection is closed, not returned to the pool.
async fn abandon(mut conn: PoolConnection<sqlx::Any>) {
    if conn.execute("ROLLBACK").await.is_err() {
        let _ = conn.close().await;
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        self.conn.as_deref().expect("open until committed")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        self.conn.as_deref_mut().expect("open until committed")
    }
}

/// Runs `f` to completion in its own task, whether or not the caller is still waiting.
async fn detached<T: Send + 'static>(
    f: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>> + Send + 'static,
) -> std::result::Result<T, sqlx::Error> {
    tokio::spawn(f)
        .await
        .unwrap_or_else(|e| Err(sqlx::Error::Io(std::io::Error::other(e))))
}

/// Tells followers on every node that the change log grew: one `NOTIFY` per burst of commits,
/// sent after they commit. Not inside the writes' transactions, on purpose: PostgreSQL holds a
/// cluster-wide lock while committing a transaction that notified, which would serialize every
/// write (and defeat group commit). A notification lost here is covered by the followers' poll.
async fn announce_changes(pool: AnyPool, wake: Arc<Notify>) {
    let mut warned = false;
    loop {
        wake.notified().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = announce(&pool).await {
            if pool.is_closed() {
                return;
            }
            // Once: an engine without LISTEN/NOTIFY (some PostgreSQL-compatible databases)
            // would fail every time, and the poll carries changes there anyway.
            if !warned {
                tracing::warn!(error = %e, "could not notify other nodes of changes; they will poll");
                warned = true;
            }
        }
    }
}

async fn announce(pool: &AnyPool) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(audit::CHANGES_CHANNEL)
        .execute(pool)
        .await
        .map(drop)
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        // FULL: a commit is on disk before we answer 2xx (WAL's default NORMAL is not).
        for p in [
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA busy_timeout = 10000",
        ] {
            conn.execute(p).await?;
        }
        Ok(())
    })
}

/// Notifications that the change log grew (PostgreSQL `LISTEN`).
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next notification. After a dropped connection the next call reconnects.
    pub async fn recv(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

pub(crate) fn affected(r: &AnyQueryResult) -> u64 {
    r.rows_affected()
}
