//! Dashboard sessions and passwords.

use crate::{now, Result, SqlStore, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when a portal link opened the session: where the dashboard's "Back to …" goes.
    pub return_url: Option<String>,
}

impl SqlStore {
    pub async fn create_session(&self, s: &Session) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, workspace_id, csrf_token, created_at, expires_at, \
             return_url) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.workspace_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.return_url)
        .execute(&mut *tx)
        .await?;
        // Expired sessions are swept whenever someone signs in.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live session by id (the hash of its cookie secret).
    pub async fn session(&self, id: &str) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, workspace_id, csrf_token, created_at, expires_at, return_url \
             FROM sessions \
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn switch_session_workspace(&self, id: &str, workspace_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE sessions SET workspace_id = $1 WHERE id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password hash and ends every other session of the user.
    pub async fn set_password(&self, user_id: &str, hash: &str, keep_session: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The workspaces a user can switch between: id and name.
    pub async fn user_workspaces(&self, user_id: &str) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT w.id AS id, w.name AS name, m.role AS role FROM members m \
             JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1 ORDER BY w.name",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?, r.try_get("role")?)))
            .collect()
    }
}
