//! API keys: create, look up by hash, list, edit, roll, revoke, and the batched `last_used_at`.

use crate::audit::Log;
use crate::query::{Arg, ListQuery};
use crate::{
    now, Actor, ApiKeyRecord, Change, KeyFilter, KeyPatch, KeyStatus, NewApiKey, Page, PageRequest,
    Result, SqlStore, StoreError, WriteTx,
};
use latchkey_core::credits::Credits;
use latchkey_core::ipnet::IpNet;
use latchkey_core::PermissionSet;
use serde::de::DeserializeOwned;
use serde_json::json;
use sqlx::AnyConnection;

const KEY_COLUMNS: &str = "id, hash, redacted, name, key_type, environment, workspace_id, \
    owner_id, permissions, allowed_origins, allowed_ips, metadata, enabled, expires_at, \
    revoked_at, rolled_to, created_by, created_at, updated_at, last_used_at, ratelimits, \
    credits_remaining, credits_refill";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    hash: String,
    redacted: String,
    name: String,
    key_type: String,
    environment: String,
    workspace_id: String,
    owner_id: String,
    permissions: Option<String>,
    allowed_origins: String,
    allowed_ips: String,
    metadata: String,
    enabled: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    rolled_to: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    last_used_at: Option<i64>,
    ratelimits: String,
    credits_remaining: Option<i64>,
    credits_refill: Option<String>,
}

/// `credits` from its two columns.
pub(crate) fn credits_of(remaining: Option<i64>, refill: Option<&str>) -> Result<Option<Credits>> {
    let Some(remaining) = remaining else {
        return Ok(None);
    };
    Ok(Some(Credits {
        remaining,
        refill: refill.map(|r| from_json(r, "credits_refill")).transpose()?,
    }))
}

/// The three columns of `credits` as set now: the balance, the refill, and the boundary it was
/// last refilled at (now's, so setting credits never triggers a refill at once).
pub(crate) fn credit_columns(
    c: Option<&Credits>,
    now: i64,
) -> (Option<i64>, Option<String>, Option<i64>) {
    match c {
        None => (None, None, None),
        Some(c) => (
            Some(c.remaining),
            c.refill.as_ref().map(to_json),
            c.refill.as_ref().map(|r| r.last_boundary(now)),
        ),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(format!("bad stored {what}").into()))
}

pub(crate) fn from_json<T: DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|_| corrupt(what))
}

impl TryFrom<KeyRow> for ApiKeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self> {
        Ok(ApiKeyRecord {
            key_type: r.key_type.parse().map_err(|_| corrupt("key_type"))?,
            environment: r.environment.parse().map_err(|_| corrupt("environment"))?,
            permissions: r
                .permissions
                .as_deref()
                .map(|p| from_json::<PermissionSet>(p, "permissions"))
                .transpose()?,
            allowed_origins: from_json(&r.allowed_origins, "allowed_origins")?,
            allowed_ips: from_json::<Vec<IpNet>>(&r.allowed_ips, "allowed_ips")?,
            metadata: from_json(&r.metadata, "metadata")?,
            ratelimits: from_json(&r.ratelimits, "ratelimits")?,
            credits: credits_of(r.credits_remaining, r.credits_refill.as_deref())?,
            enabled: r.enabled != 0,
            id: r.id,
            hash: r.hash,
            redacted: r.redacted,
            name: r.name,
            workspace_id: r.workspace_id,
            owner_id: r.owner_id,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            rolled_to: r.rolled_to,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_used_at: r.last_used_at,
        })
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

pub(crate) async fn insert_key(conn: &mut AnyConnection, k: &NewApiKey) -> Result<()> {
    bind_key(sqlx::query(INSERT_KEY), k)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::unique("key"))?;
    Ok(())
}

const INSERT_KEY: &str = "INSERT INTO api_keys (id, hash, redacted, name, key_type, environment, \
     workspace_id, owner_id, permissions, allowed_origins, allowed_ips, metadata, enabled, \
     expires_at, created_by, created_at, updated_at, ratelimits, credits_remaining, \
     credits_refill, credits_refilled_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $15, $16, \
     $17, $18, $19)";

fn bind_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    k: &'q NewApiKey,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let t = now();
    let credits = credit_columns(k.credits.as_ref(), t);
    q.bind(&k.id)
        .bind(&k.hash)
        .bind(&k.redacted)
        .bind(&k.name)
        .bind(k.key_type.as_str())
        .bind(k.environment.as_str())
        .bind(&k.workspace_id)
        .bind(&k.owner_id)
        .bind(k.permissions.as_ref().map(to_json))
        .bind(to_json(&k.allowed_origins))
        .bind(to_json(&k.allowed_ips))
        .bind(k.metadata.to_string())
        .bind(k.expires_at)
        .bind(&k.created_by)
        .bind(t)
        .bind(to_json(&k.ratelimits))
        .bind(credits.0)
        .bind(credits.1)
        .bind(credits.2)
}

async fn fetch_key(conn: &mut AnyConnection, id: &str) -> Result<ApiKeyRecord> {
    let row: KeyRow = sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    row.try_into()
}

fn key_detail(k: &ApiKeyRecord) -> serde_json::Value {
    json!({"name": k.name, "key_type": k.key_type.as_str(), "environment": k.environment.as_str(),
           "redacted": k.redacted, "owner_id": k.owner_id})
}

/// Revokes `k` inside `tx` and logs `key.revoked`; `false` if it was revoked already. The one
/// revocation path, for `DELETE /v1/keys/{id}` and leak reports alike.
async fn revoke_in(tx: &mut WriteTx, k: &ApiKeyRecord, log: &mut Log<'_>) -> Result<bool> {
    let t = now();
    // Conditional, so two concurrent revokes write one event between them.
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(t)
    .bind(&k.id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Tokens obtained from the key die with it (their checks also look at the key; this
    // keeps their listed status true).
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
    )
    .bind(t)
    .bind(&k.id)
    .execute(&mut **tx)
    .await?;
    log.event(
        Some(&k.workspace_id),
        "key.revoked",
        "key",
        &k.id,
        key_detail(k),
    )
    .change(Change::Key(k.hash.clone()));
    Ok(true)
}

impl SqlStore {
    pub async fn create_key(
        &self,
        k: &NewApiKey,
        actor: &Actor,
    ) -> Result<(ApiKeyRecord, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        insert_key(&mut tx, k).await?;
        let rec = fetch_key(&mut tx, &k.id).await?;
        let mut log = Log::new(actor);
        log.event(
            Some(&k.workspace_id),
            "key.created",
            "key",
            &k.id,
            key_detail(&rec),
        )
        .change(Change::Key(k.hash.clone()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((rec, changes))
    }

    /// The names of the keys among `ids` that are in `workspace_id`, in one query (an audit
    /// page names the keys its events are about).
    pub async fn key_names(
        &self,
        workspace_id: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut q = ListQuery::new("SELECT id, name FROM api_keys");
        q.and("workspace_id = ?", [Arg::from(workspace_id)]);
        let marks = vec!["?"; ids.len()].join(", ");
        q.and(
            &format!("id IN ({marks})"),
            ids.iter().map(|i| Arg::from(i.as_str())),
        );
        let (sql, args) = q.finish("");
        Ok(sqlx::query_as_with(&sql, args)
            .fetch_all(&self.read)
            .await?)
    }

    pub async fn get_key(&self, id: &str) -> Result<ApiKeyRecord> {
        let mut conn = self.read.acquire().await?;
        fetch_key(&mut conn, id).await
    }

    /// The verification path's lookup, on a cache miss.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>> {
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    /// The `allowed_origins` lists of every publishable key that is not revoked or disabled,
    /// with its expiry (unix seconds): what a gateway needs to answer a CORS preflight, which
    /// carries no credential (SPEC §10.4). Keys without a list are left out: a preflight is
    /// opened by an origin some key names, not by a key that names none.
    pub async fn publishable_origins(&self) -> Result<Vec<(Vec<String>, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT allowed_origins, expires_at FROM api_keys \
             WHERE key_type = 'publishable' AND revoked_at IS NULL AND enabled = 1 \
             AND allowed_origins <> '[]'",
        )
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(origins, expires_at)| Ok((from_json(&origins, "allowed_origins")?, expires_at)))
            .collect()
    }

    pub async fn list_keys(
        &self,
        f: &KeyFilter,
        page: PageRequest<'_>,
    ) -> Result<Page<ApiKeyRecord>> {
        let mut q = ListQuery::new(&format!("SELECT {KEY_COLUMNS} FROM api_keys"));
        q.and_if("workspace_id = ?", f.workspace_id.as_deref())
            .and_if("owner_id = ?", f.owner_id.as_deref())
            .and_if("environment = ?", f.environment.map(|e| e.as_str()))
            .and_if("key_type = ?", f.key_type.map(|t| t.as_str()));
        if let Some(part) = f.name_contains.as_deref().filter(|p| !p.is_empty()) {
            // LIKE with its wildcards escaped, so `50%` finds "50%" and not "500"; lowered on
            // both sides, as SQLite's LIKE ignores ASCII case and PostgreSQL's does not.
            let escaped: String = part
                .to_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            q.and(
                "LOWER(name) LIKE ? ESCAPE '\\'",
                [Arg::from(format!("%{escaped}%"))],
            );
        }
        if let Some(caller) = &f.instance_role_keys_hidden_from {
            q.and(
                "(owner_id = ? OR owner_id NOT IN \
                 (SELECT id FROM users WHERE is_instance_admin = 1 OR is_instance_verifier = 1))",
                [Arg::from(caller.as_str())],
            );
        }
        let t = now();
        match f.status {
            None => {}
            Some(KeyStatus::Revoked) => {
                q.and("revoked_at IS NOT NULL", []);
            }
            Some(KeyStatus::Disabled) => {
                q.and("revoked_at IS NULL AND enabled = 0", []);
            }
            Some(KeyStatus::Expired) => {
                q.and(
                    "revoked_at IS NULL AND enabled = 1 AND expires_at IS NOT NULL AND expires_at <= ?",
                    [Arg::Int(t)],
                );
            }
            Some(KeyStatus::Active) => {
                q.and(
                    "revoked_at IS NULL AND enabled = 1 AND (expires_at IS NULL OR expires_at > ?)",
                    [Arg::Int(t)],
                );
            }
        }
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows: Vec<KeyRow> = sqlx::query_as_with(&sql, args)
            .fetch_all(&self.read)
            .await?;
        let recs = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<Vec<ApiKeyRecord>>>()?;
        Ok(Page::from_rows(recs, page.limit, |k| k.id.clone()))
    }

    pub async fn update_key(
        &self,
        id: &str,
        p: &KeyPatch,
        actor: &Actor,
    ) -> Result<(ApiKeyRecord, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let mut k = fetch_key(&mut tx, id).await?;
        let mut fields = Vec::new();
        if let Some(v) = &p.name {
            k.name.clone_from(v);
            fields.push("name");
        }
        if let Some(v) = &p.permissions {
            k.permissions.clone_from(v);
            fields.push("permissions");
        }
        if let Some(v) = p.expires_at {
            k.expires_at = v;
            fields.push("expires_at");
        }
        if let Some(v) = p.enabled {
            k.enabled = v;
            fields.push("enabled");
        }
        if let Some(v) = &p.allowed_origins {
            k.allowed_origins.clone_from(v);
            fields.push("allowed_origins");
        }
        if let Some(v) = &p.allowed_ips {
            k.allowed_ips.clone_from(v);
            fields.push("allowed_ips");
        }
        if let Some(v) = &p.metadata {
            k.metadata = v.clone();
            fields.push("metadata");
        }
        let ratelimits_before = p
            .ratelimits
            .as_ref()
            .map(|v| std::mem::replace(&mut k.ratelimits, v.clone()));
        if ratelimits_before.is_some() {
            fields.push("ratelimits");
        }
        let credits_before = p
            .credits
            .as_ref()
            .map(|v| std::mem::replace(&mut k.credits, v.clone()));
        if credits_before.is_some() {
            fields.push("credits");
        }
        k.updated_at = now();
        sqlx::query(
            "UPDATE api_keys SET name = $1, permissions = $2, expires_at = $3, enabled = $4, \
             allowed_origins = $5, allowed_ips = $6, metadata = $7, updated_at = $8, \
             ratelimits = $9 WHERE id = $10",
        )
        .bind(&k.name)
        .bind(k.permissions.as_ref().map(to_json))
        .bind(k.expires_at)
        .bind(i64::from(k.enabled))
        .bind(to_json(&k.allowed_origins))
        .bind(to_json(&k.allowed_ips))
        .bind(k.metadata.to_string())
        .bind(k.updated_at)
        .bind(to_json(&k.ratelimits))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if credits_before.is_some() {
            let (remaining, refill, refilled_at) = credit_columns(k.credits.as_ref(), k.updated_at);
            sqlx::query(
                "UPDATE api_keys SET credits_remaining = $1, credits_refill = $2, \
                 credits_refilled_at = $3 WHERE id = $4",
            )
            .bind(remaining)
            .bind(refill)
            .bind(refilled_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let mut detail = json!({"fields": fields});
        if let Some(before) = ratelimits_before {
            // Limits are what a customer pays for: the audit says what they were and became.
            detail["ratelimits"] = json!({"from": before, "to": k.ratelimits});
        }
        if let Some(before) = credits_before {
            // A manual change of credits is audited with the balance it replaced (SPEC §11.2).
            detail["credits"] = json!({"from": before, "to": k.credits});
        }
        let mut log = Log::new(actor);
        log.event(Some(&k.workspace_id), "key.updated", "key", id, detail)
            .change(Change::Key(k.hash.clone()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((k, changes))
    }

    /// Replaces key `old_id` by `new`; the old key stops working at `old_expires_at`.
    /// `Conflict` if, by the time this runs, the old key was revoked, rolled or had expired
    /// (checked in the transaction, so a concurrent revoke or roll cannot slip past it).
    pub async fn roll_key(
        &self,
        old_id: &str,
        new: &NewApiKey,
        old_expires_at: i64,
        actor: &Actor,
    ) -> Result<(ApiKeyRecord, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let t = now();
        let claimed = sqlx::query(
            "UPDATE api_keys SET expires_at = $1, rolled_to = $2, updated_at = $3 WHERE id = $4 \
             AND revoked_at IS NULL AND rolled_to IS NULL AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(old_expires_at)
        .bind(&new.id)
        .bind(t)
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "only an active key that was not rolled before can be rolled",
            ));
        }
        let old = fetch_key(&mut tx, old_id).await?;
        insert_key(&mut tx, new).await?;
        let rec = fetch_key(&mut tx, &new.id).await?;
        let mut log = Log::new(actor);
        log.event(
            Some(&old.workspace_id),
            "key.rolled",
            "key",
            old_id,
            json!({"new_key_id": new.id, "old_key_expires_at": old_expires_at}),
        )
        .change(Change::Key(old.hash.clone()))
        .change(Change::Key(new.hash.clone()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((rec, changes))
    }

    /// Revokes a key. `None` when it was already revoked (nothing written).
    pub async fn revoke_key(&self, id: &str, actor: &Actor) -> Result<Option<Vec<Change>>> {
        let mut tx = self.begin_write().await?;
        let k = fetch_key(&mut tx, id).await?;
        let mut log = Log::new(actor);
        if !revoke_in(&mut tx, &k, &mut log).await? {
            return Ok(None);
        }
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(changes))
    }

    /// A leak report of the key whose hash is `hash` (SPEC §12.2). `None`: no such key. For a
    /// key not yet revoked: with `revoke`, revoked as [`revoke_key`](Self::revoke_key) does it
    /// (its tokens too), and audited `key.leaked` with `detail`, in one transaction; without
    /// (`notify`), only audited, and only the first time. A revoked key changes nothing, so
    /// the same report twice writes one revocation and one `key.leaked`.
    ///
    /// `actor_workspace`: the reporter's workspace, if it has one. A key of another workspace
    /// is audited under `foreign_actor` instead, so a tenant's log never names another
    /// tenant's users or credentials.
    pub async fn report_leaked_key(
        &self,
        hash: &str,
        revoke: bool,
        detail: serde_json::Value,
        actor: &Actor,
        actor_workspace: Option<&str>,
        foreign_actor: &Actor,
    ) -> Result<Option<Vec<Change>>> {
        let mut tx = self.begin_write().await?;
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(k) = row.map(ApiKeyRecord::try_from).transpose()? else {
            return Ok(None);
        };
        if k.revoked_at.is_some() {
            return Ok(Some(vec![]));
        }
        let foreign = actor_workspace.is_some_and(|w| w != k.workspace_id);
        let mut log = Log::new(if foreign { foreign_actor } else { actor });
        if revoke {
            if !revoke_in(&mut tx, &k, &mut log).await? {
                return Ok(Some(vec![]));
            }
        } else {
            // The workspace narrows the scan to its index (audit_by_workspace).
            let reported: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM audit_events WHERE workspace_id = $1 AND target_type = 'key' \
                 AND target_id = $2 AND action = 'key.leaked' LIMIT 1",
            )
            .bind(&k.workspace_id)
            .bind(&k.id)
            .fetch_optional(&mut *tx)
            .await?;
            if reported.is_some() {
                return Ok(Some(vec![]));
            }
        }
        log.event(Some(&k.workspace_id), "key.leaked", "key", &k.id, detail);
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(changes))
    }

    /// Stores imported keys in one transaction, each audited as `key.created` (so webhooks hear
    /// of them too). A key whose hash is stored already (or earlier in `keys`) is skipped, not
    /// an error: the answer says, per key, whether it was stored.
    pub async fn import_keys(
        &self,
        keys: &[NewApiKey],
        actor: &Actor,
    ) -> Result<(Vec<bool>, Vec<Change>)> {
        let sql = format!("{INSERT_KEY} ON CONFLICT (hash) DO NOTHING");
        let mut tx = self.begin_write().await?;
        let mut stored = Vec::with_capacity(keys.len());
        let mut log = Log::new(actor);
        for k in keys {
            let done = bind_key(sqlx::query(&sql), k)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("key"))?
                .rows_affected()
                == 1;
            if done {
                let detail = json!({"name": k.name, "key_type": k.key_type.as_str(),
                    "environment": k.environment.as_str(), "redacted": k.redacted,
                    "owner_id": k.owner_id, "imported": true});
                log.event(Some(&k.workspace_id), "key.created", "key", &k.id, detail)
                    .change(Change::Key(k.hash.clone()));
            }
            stored.push(done);
        }
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((stored, changes))
    }

    /// Bulk creation for seeding large deployments and benchmarks: the same rows as
    /// [`create_key`](Self::create_key) in one transaction per call (one prepared statement,
    /// executed per key), with one audit event for the batch instead of one per key.
    pub async fn insert_keys_bulk(&self, keys: &[NewApiKey], actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for k in keys {
            insert_key(&mut tx, k).await?;
        }
        if let Some(first) = keys.first() {
            let mut log = Log::new(actor);
            log.event(
                Some(&first.workspace_id),
                "key.created",
                "key",
                &first.id,
                json!({"bulk": keys.len(), "owner_id": first.owner_id}),
            );
            log.write(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Flushes batched `last_used_at` values; only ever moves them forward.
    pub async fn record_last_used(&self, uses: &[(String, i64)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        // In id order: nodes flushing overlapping keys then lock rows in the same order and
        // cannot deadlock each other on PostgreSQL.
        let mut uses = uses.to_vec();
        uses.sort_unstable();
        let mut tx = self.begin_write().await?;
        for (id, at) in &uses {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
                 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(*at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
