//! Portal links (SPEC §7): single-use, short-lived links that sign a person into the dashboard,
//! kept by the SHA-256 of their secret.

use crate::audit::Log;
use crate::{Actor, Result, SqlStore};
use serde_json::json;

/// How long a link is remembered after it expires, so that opening it late still says "used
/// or expired" rather than "unknown"; after that it is swept.
pub const KEPT_AFTER_EXPIRY_SECONDS: i64 = 86_400;

/// A link to record. `id` is the SHA-256 of its secret, never the secret.
#[derive(Debug, Clone)]
pub struct NewPortalLink {
    pub id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub return_url: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The latest the session it opens may end (the expiry of the credential that made it).
    pub session_ends_by: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortalLink {
    pub id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub return_url: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub session_ends_by: Option<i64>,
}

const LINK_COLUMNS: &str =
    "id, user_id, workspace_id, return_url, created_at, expires_at, used_at, session_ends_by";

impl SqlStore {
    /// Records a link, with its `portal.session_created` event (target: the person it signs
    /// in), and sweeps links that expired long ago.
    pub async fn create_portal_link(&self, l: &NewPortalLink, actor: &Actor) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO portal_links (id, user_id, workspace_id, return_url, created_at, \
             expires_at, session_ends_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&l.id)
        .bind(&l.user_id)
        .bind(&l.workspace_id)
        .bind(&l.return_url)
        .bind(l.created_at)
        .bind(l.expires_at)
        .bind(l.session_ends_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM portal_links WHERE expires_at <= $1")
            .bind(l.created_at - KEPT_AFTER_EXPIRY_SECONDS)
            .execute(&mut *tx)
            .await?;
        let mut log = Log::new(actor);
        log.event(
            Some(&l.workspace_id),
            "portal.session_created",
            "user",
            &l.user_id,
            json!({"workspace_id": l.workspace_id, "return_url": l.return_url,
                   "expires_at": l.expires_at}),
        );
        log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A link by id, used or not: tells a spent link from one that never existed.
    pub async fn portal_link(&self, id: &str) -> Result<Option<PortalLink>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {LINK_COLUMNS} FROM portal_links WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Uses the link `id` at `now`, with its `portal.session_used` event: `Some` for the one
    /// call that used it, `None` when it was used already, has expired or does not exist. One
    /// conditional UPDATE decides, so of any number of concurrent calls exactly one wins (on
    /// PostgreSQL the losers wait for the winner's row lock and then see `used_at` set).
    pub async fn use_portal_link(
        &self,
        id: &str,
        now: i64,
        actor: &Actor,
    ) -> Result<Option<PortalLink>> {
        let mut tx = self.begin_write().await?;
        let used: Option<PortalLink> = sqlx::query_as(&format!(
            "UPDATE portal_links SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1 RETURNING {LINK_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(link) = used else {
            return Ok(None);
        };
        let mut log = Log::new(actor);
        log.event(
            Some(&link.workspace_id),
            "portal.session_used",
            "user",
            &link.user_id,
            json!({"workspace_id": link.workspace_id, "return_url": link.return_url}),
        );
        log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(link))
    }
}
