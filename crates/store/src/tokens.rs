//! Access tokens and the keys that sign them.

use crate::audit::Log;
use crate::keys::from_json;
use crate::query::{Arg, ListQuery};
use crate::{
    now, Actor, Change, NewToken, Page, PageRequest, Result, SigningKeyRecord, SqlStore,
    StoreError, TokenFilter, TokenKind, TokenRecord,
};
use latchkey_core::PermissionSet;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const TOKEN_SELECT: &str = "SELECT t.id AS id, t.kind AS kind, t.name AS name, t.kid AS kid, \
    t.key_id AS key_id, k.hash AS key_hash, t.workspace_id AS workspace_id, t.owner_id AS owner_id, \
    t.environment AS environment, t.scope AS scope, t.issued_at AS issued_at, \
    t.expires_at AS expires_at, t.revoked_at AS revoked_at, t.replaced_by AS replaced_by \
    FROM access_tokens t JOIN api_keys k ON k.id = t.key_id";

fn corrupt(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(format!("bad stored {what}").into()))
}

fn token_from_row(r: &AnyRow) -> Result<TokenRecord> {
    let scope: Option<String> = r.try_get("scope")?;
    Ok(TokenRecord {
        id: r.try_get("id")?,
        kind: TokenKind::parse(&r.try_get::<String, _>("kind")?)
            .ok_or_else(|| corrupt("token kind"))?,
        name: r.try_get("name")?,
        kid: r.try_get("kid")?,
        key_id: r.try_get("key_id")?,
        key_hash: r.try_get("key_hash")?,
        workspace_id: r.try_get("workspace_id")?,
        owner_id: r.try_get("owner_id")?,
        environment: r
            .try_get::<String, _>("environment")?
            .parse()
            .map_err(|_| corrupt("environment"))?,
        scope: scope
            .as_deref()
            .map(|s| from_json::<PermissionSet>(s, "scope"))
            .transpose()?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        replaced_by: r.try_get("replaced_by")?,
    })
}

async fn fetch_token(conn: &mut AnyConnection, id: &str) -> Result<TokenRecord> {
    let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    token_from_row(&row)
}

async fn insert_token(conn: &mut AnyConnection, t: &NewToken) -> Result<()> {
    sqlx::query(
        "INSERT INTO access_tokens (id, kind, name, kid, key_id, workspace_id, owner_id, environment, \
         scope, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&t.id)
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(&t.kid)
    .bind(&t.key_id)
    .bind(&t.workspace_id)
    .bind(&t.owner_id)
    .bind(t.environment.as_str())
    .bind(t.scope.as_ref().map(|s| serde_json::to_string(s).expect("serialises")))
    .bind(t.issued_at)
    .bind(t.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn token_detail(t: &NewToken) -> serde_json::Value {
    json!({"kind": t.kind.as_str(), "name": t.name, "key_id": t.key_id, "environment": t.environment.as_str(),
           "expires_at": t.expires_at})
}

/// `retired_at` of a revoked signing key: retired since the epoch, a time no rotation writes,
/// so revocation needs no column of its own.
pub const REVOKED_AT: i64 = 0;

impl SqlStore {
    /// Records an issued token (with its `token.issued` event) before it is handed out.
    pub async fn issue_token(&self, t: &NewToken, actor: &Actor) -> Result<TokenRecord> {
        let mut tx = self.begin_write().await?;
        insert_token(&mut tx, t).await?;
        let mut log = Log::new(actor);
        log.event(
            Some(&t.workspace_id),
            "token.issued",
            "token",
            &t.id,
            token_detail(t),
        );
        log.write(&mut tx).await?;
        let rec = fetch_token(&mut tx, &t.id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    pub async fn get_token(&self, id: &str) -> Result<TokenRecord> {
        let mut conn = self.read.acquire().await?;
        fetch_token(&mut conn, id).await
    }

    pub async fn list_tokens(
        &self,
        f: &TokenFilter,
        page: PageRequest<'_>,
    ) -> Result<Page<TokenRecord>> {
        let mut q = ListQuery::new(TOKEN_SELECT);
        q.and_if("t.workspace_id = ?", f.workspace_id.as_deref())
            .and_if("t.owner_id = ?", f.owner_id.as_deref())
            .and_if("t.kind = ?", f.kind)
            .and_if("t.environment = ?", f.environment);
        if let Some(caller) = &f.instance_role_tokens_hidden_from {
            q.and(
                "(t.owner_id = ? OR t.owner_id NOT IN \
                 (SELECT id FROM users WHERE is_instance_admin = 1 OR is_instance_verifier = 1))",
                [Arg::from(caller.as_str())],
            );
        }
        let (sql, args) = q.page("t.id", page.cursor, page.limit);
        let rows = sqlx::query_with(&sql, args).fetch_all(&self.read).await?;
        let list = rows
            .iter()
            .map(token_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(list, page.limit, |t| t.id.clone()))
    }

    /// Revokes a token. `None` when it was already revoked (nothing written).
    pub async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<Option<Vec<Change>>> {
        let mut tx = self.begin_write().await?;
        let t = fetch_token(&mut tx, id).await?;
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let mut log = Log::new(actor);
        log.event(
            Some(&t.workspace_id),
            "token.revoked",
            "token",
            id,
            json!({"kind": t.kind.as_str(), "name": t.name}),
        )
        .change(Change::Token(id.to_owned()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(changes))
    }

    /// Replaces token `old_id` by `new` and revokes the old one, atomically.
    pub async fn renew_token(
        &self,
        old_id: &str,
        new: &NewToken,
        actor: &Actor,
    ) -> Result<(TokenRecord, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1, replaced_by = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(&new.id)
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Err(StoreError::Conflict("only an active token can be renewed"));
        }
        insert_token(&mut tx, new).await?;
        let mut log = Log::new(actor);
        log.event(
            Some(&new.workspace_id),
            "token.renewed",
            "token",
            old_id,
            json!({"new_token_id": new.id}),
        )
        .change(Change::Token(old_id.to_owned()));
        let changes = log.write(&mut tx).await?;
        let rec = fetch_token(&mut tx, &new.id).await?;
        tx.commit().await?;
        Ok((rec, changes))
    }

    /// Signing keys to publish: the active ones, and retired ones while an unrevoked token they signed lives
    /// (plus `grace` seconds, for nodes that signed with a key just before learning it was retired).
    /// A revoked key ([`REVOKED_AT`]) is never published, whatever tokens it signed.
    pub async fn published_signing_keys(&self, grace: i64) -> Result<Vec<SigningKeyRecord>> {
        let t = now();
        Ok(sqlx::query_as(
            "SELECT kid, public_key, private_key, created_at, retired_at FROM signing_keys s \
             WHERE retired_at IS NULL OR (retired_at <> $3 AND (retired_at > $1 \
             OR EXISTS (SELECT 1 FROM access_tokens a WHERE a.kid = s.kid AND a.expires_at > $2 \
             AND a.revoked_at IS NULL))) \
             ORDER BY created_at DESC",
        )
        .bind(t - grace)
        .bind(t)
        .bind(REVOKED_AT)
        .fetch_all(&self.read)
        .await?)
    }

    /// Adds a signing key and retires every other one, so it becomes the only one that signs.
    /// With `revoke_previous` (a compromised key) the others are revoked instead: never
    /// published again, so nothing they signed verifies, and their tokens are marked revoked.
    pub async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        revoke_previous: bool,
    ) -> Result<Vec<Change>> {
        let mut tx = self.begin_write().await?;
        let t = now();
        if revoke_previous {
            sqlx::query(
                "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
                 AND kid IN (SELECT kid FROM signing_keys WHERE retired_at IS NULL OR retired_at <> $2)",
            )
            .bind(t)
            .bind(REVOKED_AT)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE signing_keys SET retired_at = $1")
                .bind(REVOKED_AT)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&new.kid)
            .bind(&new.public_key)
            .bind(&new.private_key)
            .bind(t)
            .execute(&mut *tx)
            .await?;
        let actor = Actor {
            credential_name: Some("latchkey signing-keys rotate".into()),
            ..Actor::default()
        };
        let mut log = Log::new(&actor);
        log.event(
            None,
            "signing_key.rotated",
            "signing_key",
            &new.kid,
            json!({"revoke_previous": revoke_previous}),
        )
        .change(Change::SigningKeys);
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(changes)
    }

    /// Adds the first signing key unless one is active already (first start; nodes may race).
    pub async fn ensure_signing_key(&self, new: &SigningKeyRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE retired_at IS NULL")
            .fetch_one(&mut *tx)
            .await?;
        if row.try_get::<i64, _>("n")? == 0 {
            sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&new.kid)
                .bind(&new.public_key)
                .bind(&new.private_key)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
