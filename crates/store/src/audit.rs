//! The audit log and the change log, both appended inside the transaction of the write they describe.

use crate::query::{Arg, ListQuery};
use crate::{
    now, Actor, AuditEvent, AuditFilter, Change, LoggedChange, Page, PageRequest, Result, SqlStore,
    WriteTx,
};
use latchkey_core::ids;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

/// The PostgreSQL notification channel that wakes followers of the change log.
pub const CHANGES_CHANNEL: &str = "latchkey_changes";

/// What a write appends besides itself.
pub(crate) struct Log<'a> {
    actor: &'a Actor,
    events: Vec<AuditEvent>,
    pub(crate) changes: Vec<Change>,
}

impl<'a> Log<'a> {
    pub fn new(actor: &'a Actor) -> Self {
        Self {
            actor,
            events: Vec::new(),
            changes: Vec::new(),
        }
    }

    pub fn event(
        &mut self,
        workspace_id: Option<&str>,
        action: &str,
        target_type: &str,
        target_id: &str,
        detail: Value,
    ) -> &mut Self {
        self.events.push(AuditEvent {
            id: ids::new_id(ids::EVENT),
            at: now(),
            workspace_id: workspace_id.map(str::to_owned),
            action: action.to_owned(),
            actor: self.actor.clone(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            detail,
        });
        self
    }

    pub fn change(&mut self, c: Change) -> &mut Self {
        self.changes.push(c);
        self
    }

    /// Writes the events and changes inside the caller's transaction.
    pub async fn write(self, tx: &mut WriteTx) -> Result<Vec<Change>> {
        tx.logged_changes |= !self.changes.is_empty();
        let conn: &mut AnyConnection = tx;
        for e in &self.events {
            sqlx::query(
                "INSERT INTO audit_events (id, at, workspace_id, action, actor_user_id, \
                 actor_credential_id, actor_credential_name, target_type, target_id, ip, \
                 user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&e.id)
            .bind(e.at)
            .bind(&e.workspace_id)
            .bind(&e.action)
            .bind(&e.actor.user_id)
            .bind(&e.actor.credential_id)
            .bind(&e.actor.credential_name)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.actor.ip)
            .bind(&e.actor.user_agent)
            .bind(e.detail.to_string())
            .execute(&mut *conn)
            .await?;
        }
        crate::webhooks::enqueue(conn, &self.events).await?;
        let at = now();
        for c in &self.changes {
            let (kind, subject) = c.kind_subject();
            sqlx::query("INSERT INTO changes (at, kind, subject) VALUES ($1, $2, $3)")
                .bind(at)
                .bind(kind)
                .bind(subject)
                .execute(&mut *conn)
                .await?;
        }
        Ok(self.changes)
    }
}

impl SqlStore {
    pub async fn list_audit(
        &self,
        f: &AuditFilter,
        page: PageRequest<'_>,
    ) -> Result<Page<AuditEvent>> {
        let mut q = ListQuery::new(
            "SELECT id, at, workspace_id, action, actor_user_id, actor_credential_id, \
             actor_credential_name, target_type, target_id, ip, user_agent, detail FROM audit_events",
        );
        q.and_if("workspace_id = ?", f.workspace_id.as_deref())
            .and_if("action = ?", f.action.as_deref())
            .and_if("at >= ?", f.since);
        if let Some(a) = &f.actor {
            q.and(
                "(actor_user_id = ? OR actor_credential_id = ?)",
                [Arg::from(a.as_str()), Arg::from(a.as_str())],
            );
        }
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows = sqlx::query_with(&sql, args).fetch_all(&self.read).await?;
        let events = rows
            .into_iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    workspace_id: r.try_get("workspace_id")?,
                    action: r.try_get("action")?,
                    actor: Actor {
                        user_id: r.try_get("actor_user_id")?,
                        credential_id: r.try_get("actor_credential_id")?,
                        credential_name: r.try_get("actor_credential_name")?,
                        ip: r.try_get("ip")?,
                        user_agent: r.try_get("user_agent")?,
                    },
                    target_type: r.try_get("target_type")?,
                    target_id: r.try_get("target_id")?,
                    detail: serde_json::from_str(&r.try_get::<String, _>("detail")?)
                        .unwrap_or(Value::Null),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Page::from_rows(events, page.limit, |e| e.id.clone()))
    }

    /// Entries of the change log numbered above `after` (and at most `up_to`), lowest first.
    /// An entry of a kind this version does not know is returned with `change: None`, so the
    /// follower still counts its number as read.
    pub async fn changes_after(
        &self,
        after: i64,
        up_to: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoggedChange>> {
        let rows = sqlx::query(
            "SELECT seq, kind, subject FROM changes WHERE seq > $1 AND seq <= $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(up_to.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let subject: String = r.try_get("subject")?;
                Ok(LoggedChange {
                    seq: r.try_get("seq")?,
                    change: Change::from_kind_subject(&kind, &subject),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// How many entries the change log holds numbered in `(after, up_to]`: lets a follower see
    /// that a lower-numbered transaction committed late without re-reading the whole range.
    pub async fn count_changes(&self, after: i64, up_to: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM changes WHERE seq > $1 AND seq <= $2")
            .bind(after)
            .bind(up_to)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The lowest number the change log still holds (`None` when it is empty): a reader whose
    /// position is below it may have missed pruned entries.
    pub async fn oldest_change(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MIN(seq) AS s FROM changes")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("s")?)
    }

    /// Drops change-log entries older than `before` (unix seconds).
    pub async fn prune_changes(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(before)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }

    /// The highest number among entries written before `at` (unix seconds; 0 when none): a
    /// starting floor below every transaction that may still be in flight.
    pub async fn change_floor_before(&self, at: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes WHERE at < $1")
            .bind(at)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("seq")?)
    }
}
