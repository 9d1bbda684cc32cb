//! Webhook endpoints and their outbox (SPEC §12.1). Deliveries are inserted by the audit writer
//! ([`crate::audit::Log::write`]) in the transaction of the change; the worker claims them here.

use crate::{affected, now, Actor, Backend, Page, PageRequest, Result, SqlStore, StoreError};
use latchkey_core::{ids, webhooks};
use serde_json::json;
use sqlx::{AnyConnection, Row};

/// An endpoint as stored. `secret` and `previous_secret` are sealed by the server: the store
/// never sees a usable secret.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub secret: String,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// The exact body sent, every attempt (the signature covers these bytes).
    pub payload: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub status: DeliveryStatus,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Succeeded {
        status_code: i64,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        next_attempt_at: i64,
        status_code: Option<i64>,
        error: String,
    },
    /// No more attempts; `disable_endpoint` for a 410.
    Failed {
        status_code: Option<i64>,
        error: String,
        disable_endpoint: bool,
    },
}

/// A table read here: its columns and how one of its rows becomes a value, so that reading one
/// by id and paging through them are written once for endpoints and deliveries.
struct Table<T> {
    name: &'static str,
    columns: &'static str,
    row: fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
    id: fn(&T) -> &str,
}

const ENDPOINTS: Table<WebhookEndpoint> = Table {
    name: "webhook_endpoints",
    columns: "id, workspace_id, url, description, events, secret, previous_secret, \
              previous_expires_at, enabled, created_at, updated_at",
    row: endpoint_row,
    id: |e| &e.id,
};

const DELIVERIES: Table<WebhookDelivery> = Table {
    name: "webhook_deliveries",
    columns: "id, event_id, endpoint_id, event_type, payload, attempts, next_attempt_at, \
              status, last_status_code, last_error, created_at",
    row: delivery_row,
    id: |d| &d.id,
};

impl<T> Table<T> {
    /// The row with this id, or [`StoreError::NotFound`].
    async fn one<'c, E>(&self, conn: E, id: &str) -> Result<T>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let sql = format!("SELECT {} FROM {} WHERE id = $1", self.columns, self.name);
        let r = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((self.row)(&r)?)
    }

    /// The rows whose `column` is `value`, newest first, a page at a time.
    async fn page(
        &self,
        pool: &sqlx::AnyPool,
        column: &str,
        value: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<T>> {
        let mut q =
            crate::query::ListQuery::new(&format!("SELECT {} FROM {}", self.columns, self.name));
        q.and(&format!("{column} = ?"), [value.into()]);
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows = sqlx::query_with(&sql, args).fetch_all(pool).await?;
        let list = rows.iter().map(self.row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(list, page.limit, |t| {
            (self.id)(t).to_owned()
        }))
    }
}

fn endpoint_row(r: &sqlx::any::AnyRow) -> Result<WebhookEndpoint, sqlx::Error> {
    Ok(WebhookEndpoint {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        events: serde_json::from_str(&r.try_get::<String, _>("events")?).unwrap_or_default(),
        secret: r.try_get("secret")?,
        previous_secret: r.try_get("previous_secret")?,
        previous_expires_at: r.try_get("previous_expires_at")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn delivery_row(r: &sqlx::any::AnyRow) -> Result<WebhookDelivery, sqlx::Error> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        status: DeliveryStatus::parse(&r.try_get::<String, _>("status")?),
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The body of an event: built from the audit event alone, which never holds a secret.
pub(crate) fn event_payload(e: &crate::AuditEvent, workspace_id: &str) -> String {
    json!({
        "id": e.id,
        "type": e.action,
        "created_at": e.at,
        "workspace_id": workspace_id,
        "data": {
            "object": {"type": e.target_type, "id": e.target_id},
            "actor": {"user_id": e.actor.user_id, "credential_id": e.actor.credential_id},
            "detail": e.detail,
        },
    })
    .to_string()
}

/// Queues each of `events` for every enabled endpoint of its workspace whose filters match,
/// inside the caller's transaction. A workspace's endpoints are read once per call however many
/// of its events there are (an import writes up to 1,000).
pub(crate) async fn enqueue(conn: &mut AnyConnection, events: &[crate::AuditEvent]) -> Result<()> {
    let mut endpoints = std::collections::HashMap::<&str, Vec<(String, Vec<String>)>>::new();
    for e in events {
        let Some(ws) = e.workspace_id.as_deref() else {
            continue;
        };
        if !webhooks::is_event(&e.action) {
            continue;
        }
        if !endpoints.contains_key(ws) {
            let rows = sqlx::query(
                "SELECT id, events FROM webhook_endpoints WHERE workspace_id = $1 AND enabled = 1",
            )
            .bind(ws)
            .fetch_all(&mut *conn)
            .await?;
            let mut read = Vec::with_capacity(rows.len());
            for r in rows {
                let filters: Vec<String> =
                    serde_json::from_str(&r.try_get::<String, _>("events")?).unwrap_or_default();
                read.push((r.try_get("id")?, filters));
            }
            endpoints.insert(ws, read);
        }
        let mut payload = None;
        for (endpoint_id, filters) in &endpoints[ws] {
            if !webhooks::any_filter_matches(filters, &e.action) {
                continue;
            }
            let body = payload.get_or_insert_with(|| event_payload(e, ws));
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, payload, \
                 attempts, next_attempt_at, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, 'pending', $6)",
            )
            .bind(ids::new_id(ids::DELIVERY))
            .bind(&e.id)
            .bind(endpoint_id)
            .bind(&e.action)
            .bind(body.as_str())
            .bind(e.at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl SqlStore {
    pub async fn create_webhook(
        &self,
        w: &NewWebhookEndpoint,
        actor: &Actor,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_write().await?;
        let at = now();
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, workspace_id, url, description, events, secret, \
             enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(serde_json::to_string(&w.events).expect("strings encode"))
        .bind(&w.secret)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let mut log = crate::audit::Log::new(actor);
        log.event(
            Some(&w.workspace_id),
            "webhook.created",
            "webhook",
            &w.id,
            json!({"url": w.url, "events": w.events}),
        );
        log.write(&mut tx).await?;
        let e = fetch_endpoint(&mut tx, &w.id).await?;
        tx.commit().await?;
        Ok(e)
    }

    pub async fn get_webhook(&self, id: &str) -> Result<WebhookEndpoint> {
        ENDPOINTS.one(&self.read, id).await
    }

    /// A workspace's endpoints, newest first.
    pub async fn list_webhooks(
        &self,
        workspace_id: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<WebhookEndpoint>> {
        ENDPOINTS
            .page(&self.read, "workspace_id", workspace_id, page)
            .await
    }

    pub async fn update_webhook(
        &self,
        id: &str,
        p: &WebhookEndpointPatch,
        actor: &Actor,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_write().await?;
        let old = fetch_endpoint(&mut tx, id).await?;
        let events = p.events.as_ref().unwrap_or(&old.events);
        let enabled = p.enabled.unwrap_or(old.enabled);
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, enabled = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(p.url.as_ref().unwrap_or(&old.url))
        .bind(p.description.as_ref().unwrap_or(&old.description))
        .bind(serde_json::to_string(events).expect("strings encode"))
        .bind(i64::from(enabled))
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut fields = Vec::new();
        for (name, set) in [
            ("url", p.url.is_some()),
            ("description", p.description.is_some()),
            ("events", p.events.is_some()),
            ("enabled", p.enabled.is_some()),
        ] {
            if set {
                fields.push(name);
            }
        }
        let mut log = crate::audit::Log::new(actor);
        log.event(
            Some(&old.workspace_id),
            "webhook.updated",
            "webhook",
            id,
            json!({"fields": fields}),
        );
        log.write(&mut tx).await?;
        let e = fetch_endpoint(&mut tx, id).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// Deletes the endpoint and its delivery log.
    pub async fn delete_webhook(&self, id: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let old = fetch_endpoint(&mut tx, id).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut log = crate::audit::Log::new(actor);
        log.event(
            Some(&old.workspace_id),
            "webhook.deleted",
            "webhook",
            id,
            json!({"url": old.url}),
        );
        log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the secret with `secret`; the current one keeps signing until
    /// `previous_expires_at`.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_expires_at: i64,
        actor: &Actor,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_write().await?;
        let old = fetch_endpoint(&mut tx, id).await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $1, \
             secret = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(previous_expires_at)
        .bind(secret)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut log = crate::audit::Log::new(actor);
        log.event(
            Some(&old.workspace_id),
            "webhook.secret_rotated",
            "webhook",
            id,
            json!({"previous_expires_at": previous_expires_at}),
        );
        log.write(&mut tx).await?;
        let e = fetch_endpoint(&mut tx, id).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// An endpoint's deliveries, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        endpoint_id: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<WebhookDelivery>> {
        DELIVERIES
            .page(&self.read, "endpoint_id", endpoint_id, page)
            .await
    }

    pub async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery> {
        DELIVERIES.one(&self.read, id).await
    }

    /// Queues a delivery again, due now, with the same event id and body.
    pub async fn redeliver_webhook(&self, delivery_id: &str) -> Result<WebhookDelivery> {
        let r = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(delivery_id)
        .execute(&self.write)
        .await?;
        if affected(&r) == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_webhook_delivery(delivery_id).await
    }

    /// Claims up to `limit` due deliveries of enabled endpoints by moving their next attempt
    /// `lease` seconds ahead: another node (or this one, after a crash) takes a claimed attempt
    /// only once the lease has run out. On PostgreSQL the rows are locked with `SKIP LOCKED`,
    /// so concurrent claimers never take the same row; SQLite has one writer.
    pub async fn claim_webhook_deliveries(
        &self,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<(WebhookDelivery, WebhookEndpoint)>> {
        let at = now();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (\
             SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w \
             ON w.id = d.endpoint_id WHERE d.status = 'pending' AND d.next_attempt_at <= $2 \
             AND w.enabled = 1 ORDER BY d.next_attempt_at LIMIT $3{lock}) \
             AND status = 'pending' AND next_attempt_at <= $2 RETURNING {}",
            DELIVERIES.columns
        );
        let rows = sqlx::query(&sql)
            .bind(at + lease)
            .bind(at)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        // Each endpoint read once, however many of its deliveries fell due together.
        let mut endpoints = std::collections::HashMap::<String, Option<WebhookEndpoint>>::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = delivery_row(r)?;
            if !endpoints.contains_key(&d.endpoint_id) {
                let read = match self.get_webhook(&d.endpoint_id).await {
                    Ok(w) => Some(w),
                    Err(StoreError::NotFound) => None, // deleted meanwhile: its rows went with it
                    Err(e) => return Err(e),
                };
                endpoints.insert(d.endpoint_id.clone(), read);
            }
            if let Some(w) = &endpoints[&d.endpoint_id] {
                out.push((d, w.clone()));
            }
        }
        Ok(out)
    }

    /// Records one attempt of a claimed delivery.
    pub async fn record_webhook_attempt(
        &self,
        d: &WebhookDelivery,
        outcome: &AttemptOutcome,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (status, next, code, error) = match outcome {
            AttemptOutcome::Succeeded { status_code } => {
                ("succeeded", d.next_attempt_at, Some(*status_code), None)
            }
            AttemptOutcome::Retry {
                next_attempt_at,
                status_code,
                error,
            } => (
                "pending",
                *next_attempt_at,
                *status_code,
                Some(error.as_str()),
            ),
            AttemptOutcome::Failed {
                status_code, error, ..
            } => (
                "failed",
                d.next_attempt_at,
                *status_code,
                Some(error.as_str()),
            ),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, \
             next_attempt_at = $2, last_status_code = $3, last_error = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(next)
        .bind(code)
        .bind(error)
        .bind(&d.id)
        .execute(&mut *tx)
        .await?;
        if let AttemptOutcome::Failed {
            disable_endpoint: true,
            ..
        } = outcome
        {
            sqlx::query("UPDATE webhook_endpoints SET enabled = 0, updated_at = $1 WHERE id = $2")
                .bind(now())
                .bind(&d.endpoint_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn fetch_endpoint(conn: &mut AnyConnection, id: &str) -> Result<WebhookEndpoint> {
    ENDPOINTS.one(&mut *conn, id).await
}

impl SqlStore {
    /// Queues `key.expiring` for live keys expiring within one of `days` (the nearest
    /// threshold that applies, once per key and threshold) and `key.expired` for keys whose
    /// expiry passed in the last day (once per key). Returns how many events were queued.
    pub async fn queue_key_expiry_events(&self, days: &[i64]) -> Result<usize> {
        let at = now();
        let max = days.iter().copied().max().unwrap_or(0);
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT id, workspace_id, name, owner_id, expires_at FROM api_keys \
             WHERE revoked_at IS NULL AND expires_at IS NOT NULL \
             AND expires_at > $1 AND expires_at <= $2",
        )
        .bind(at - 86_400)
        .bind(at + max * 86_400)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        for r in rows {
            let expires_at: i64 = r.try_get("expires_at")?;
            let (action, notice, before) = if expires_at <= at {
                ("key.expired", "expired".to_owned(), None)
            } else {
                let Some(d) = days
                    .iter()
                    .copied()
                    .filter(|d| expires_at - at <= d * 86_400)
                    .min()
                else {
                    continue;
                };
                ("key.expiring", format!("expiring:{d}"), Some(d))
            };
            let key_id: String = r.try_get("id")?;
            let inserted = sqlx::query(
                "INSERT INTO webhook_key_notices (key_id, notice) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&key_id)
            .bind(&notice)
            .execute(&mut *tx)
            .await?;
            if affected(&inserted) == 0 {
                continue;
            }
            let mut detail = json!({
                "name": r.try_get::<String, _>("name")?,
                "owner_id": r.try_get::<String, _>("owner_id")?,
                "expires_at": expires_at,
            });
            if let Some(d) = before {
                detail["days_before"] = d.into();
            }
            let event = crate::AuditEvent {
                id: ids::new_id(ids::EVENT),
                at,
                workspace_id: Some(r.try_get("workspace_id")?),
                action: action.to_owned(),
                actor: Actor::default(),
                target_type: "key".into(),
                target_id: key_id,
                detail,
            };
            events.push(event);
        }
        enqueue(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(events.len())
    }
}
