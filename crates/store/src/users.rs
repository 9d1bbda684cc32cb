//! Users and their standing in a workspace (the principal that verification checks live).

use crate::audit::Log;
use crate::keys::from_json;
use crate::query::ListQuery;
use crate::{
    now, Actor, Backend, Change, NewUser, Page, PageRequest, Principal, Result, SqlStore,
    StoreError, User, UserPatch,
};
use latchkey_core::roles::InstanceRole;
use latchkey_core::PermissionSet;
use serde_json::json;
use sqlx::{AnyConnection, Row};

const USER_COLUMNS: &str = "id, email, name, password_hash, is_instance_admin, \
     is_instance_verifier, active, created_at, deactivated_at";

/// The two flags that store an instance role (see migration 0004).
fn role_flags(role: Option<InstanceRole>) -> (i64, i64) {
    (
        i64::from(role == Some(InstanceRole::Admin)),
        i64::from(role == Some(InstanceRole::Verifier)),
    )
}

pub(crate) async fn insert_user(conn: &mut AnyConnection, u: &NewUser) -> Result<()> {
    let (admin, verifier) = role_flags(u.instance_role);
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, is_instance_admin, \
         is_instance_verifier, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
    )
    .bind(&u.id)
    .bind(&u.email)
    .bind(&u.name)
    .bind(&u.password_hash)
    .bind(admin)
    .bind(verifier)
    .bind(now())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::unique("a user with this email already exists"))?;
    Ok(())
}

async fn fetch_user(conn: &mut AnyConnection, id: &str) -> Result<User> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Refuses to take the instance-admin role from `id` when no other active instance admin is left.
async fn keep_an_instance_admin(conn: &mut AnyConnection, id: &str) -> Result<()> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM users WHERE is_instance_admin = 1 AND active = 1 AND id <> $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if row.try_get::<i64, _>("n")? == 0 {
        return Err(StoreError::Conflict(
            "this is the last instance admin: make another user instance admin first",
        ));
    }
    Ok(())
}

impl SqlStore {
    pub async fn create_user(&self, u: &NewUser, actor: &Actor) -> Result<User> {
        let mut tx = self.begin_write().await?;
        insert_user(&mut tx, u).await?;
        let mut log = Log::new(actor);
        let mut detail = json!({"email": u.email});
        if let Some(r) = u.instance_role {
            detail["instance_role"] = r.as_str().into();
        }
        log.event(None, "user.created", "user", &u.id, detail);
        log.write(&mut tx).await?;
        let user = fetch_user(&mut tx, &u.id).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        let mut conn = self.read.acquire().await?;
        fetch_user(&mut conn, id).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.read)
        .await?)
    }

    /// All users, or (with `workspace_id`) the members of one workspace.
    pub async fn list_users(
        &self,
        workspace_id: Option<&str>,
        page: PageRequest<'_>,
    ) -> Result<Page<User>> {
        let mut q = ListQuery::new(&format!("SELECT {USER_COLUMNS} FROM users"));
        q.and_if(
            "id IN (SELECT user_id FROM members WHERE workspace_id = ?)",
            workspace_id,
        );
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows: Vec<User> = sqlx::query_as_with(&sql, args)
            .fetch_all(&self.read)
            .await?;
        Ok(Page::from_rows(rows, page.limit, |u| u.id.clone()))
    }

    /// Whether `user_id` is a member of `workspace_id`; decides whether a workspace-scoped
    /// caller may see that user.
    pub async fn is_member(&self, workspace_id: &str, user_id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM members WHERE workspace_id = $1 AND user_id = $2",
        )
        .bind(workspace_id)
        .bind(user_id)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// The workspaces a user is a member of.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT workspace_id FROM members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("workspace_id")?))
            .collect()
    }

    /// Changes a user's name and instance role, with one `user.updated` event naming each
    /// change as from → to; a patch that changes nothing writes nothing. Either change appends
    /// `Change::User`: an instance role moves what every key of the user may verify, and a
    /// name is part of the standing every node caches. Taking the role from the last active
    /// instance admin is a `Conflict`.
    pub async fn update_user(
        &self,
        id: &str,
        p: &UserPatch,
        actor: &Actor,
    ) -> Result<(User, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // The user, and every instance admin (whom a demotion counts), in one order for
            // every writer: a concurrent patch cannot write back what this one read, and of
            // two concurrent demotions of the last two instance admins the second waits, then
            // counts what the first left. SQLite's writes are serial.
            sqlx::query(
                "SELECT id FROM users WHERE id = $1 OR is_instance_admin = 1 ORDER BY id FOR UPDATE",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        }
        let before = fetch_user(&mut tx, id).await?;
        let mut detail = serde_json::Map::new();
        let name = p.name.as_ref().unwrap_or(&before.name);
        if *name != before.name {
            detail.insert("name".into(), json!({"from": before.name, "to": name}));
        }
        let role_before = before.instance_role();
        let role = p.instance_role.unwrap_or(role_before);
        if role != role_before {
            if role_before == Some(InstanceRole::Admin) && before.is_active() {
                keep_an_instance_admin(&mut tx, id).await?;
            }
            let name = |r: Option<InstanceRole>| r.map(InstanceRole::as_str);
            detail.insert(
                "instance_role".into(),
                json!({"from": name(role_before), "to": name(role)}),
            );
        }
        if detail.is_empty() {
            return Ok((before, Vec::new()));
        }
        let (admin, verifier) = role_flags(role);
        sqlx::query(
            "UPDATE users SET name = $1, is_instance_admin = $2, is_instance_verifier = $3 \
             WHERE id = $4",
        )
        .bind(name)
        .bind(admin)
        .bind(verifier)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut log = Log::new(actor);
        log.event(None, "user.updated", "user", id, detail.into())
            .change(Change::User(id.to_owned()));
        let changes = log.write(&mut tx).await?;
        let user = fetch_user(&mut tx, id).await?;
        tx.commit().await?;
        Ok((user, changes))
    }

    /// Deactivates a user and revokes every key they own. `None` if already inactive.
    pub async fn deactivate_user(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<Option<(User, Vec<Change>)>> {
        let mut tx = self.begin_write().await?;
        let user = fetch_user(&mut tx, id).await?;
        if !user.is_active() {
            return Ok(None);
        }
        // A deactivated admin is no admin: no workspace of theirs may be left without one.
        let admin_of: Vec<String> =
            sqlx::query("SELECT workspace_id FROM members WHERE user_id = $1 AND role = $2")
                .bind(id)
                .bind(latchkey_core::roles::ADMIN)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("workspace_id"))
                .collect::<Result<_, _>>()?;
        self.lock_workspaces(&mut tx, &admin_of).await?;
        for ws in &admin_of {
            if !crate::workspaces::has_other_admin(&mut tx, ws, id).await? {
                return Err(StoreError::Conflict(
                    "a workspace of this user would lose its last admin: make another member admin first",
                ));
            }
        }
        let t = now();
        sqlx::query("UPDATE users SET active = 0, deactivated_at = $1 WHERE id = $2")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revoked = sqlx::query(
            "SELECT id, hash, workspace_id FROM api_keys WHERE owner_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE owner_id = $2 AND revoked_at IS NULL",
        )
        .bind(t)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1, updated_at = $1 WHERE owner_id = $2 AND revoked_at IS NULL")
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut log = Log::new(actor);
        log.event(
            None,
            "user.deactivated",
            "user",
            id,
            json!({"revoked_keys": revoked.len()}),
        )
        .change(Change::User(id.to_owned()));
        for r in &revoked {
            let key_id: String = r.try_get("id")?;
            let ws: String = r.try_get("workspace_id")?;
            log.event(
                Some(&ws),
                "key.revoked",
                "key",
                &key_id,
                json!({"reason": "owner deactivated"}),
            )
            .change(Change::Key(r.try_get("hash")?));
        }
        let changes = log.write(&mut tx).await?;
        let user = fetch_user(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some((user, changes)))
    }

    /// A user's standing in a workspace, read fresh. `None` if the user does not exist.
    pub async fn principal(&self, workspace_id: &str, user_id: &str) -> Result<Option<Principal>> {
        let Some(user) =
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(user_id)
                .fetch_optional(&self.read)
                .await?
        else {
            return Ok(None);
        };
        let role_row = sqlx::query(
            "SELECT m.role AS role, r.permissions AS permissions, m.ratelimits AS ratelimits, \
             m.credits_remaining AS credits_remaining, m.credits_refill AS credits_refill \
             FROM members m \
             LEFT JOIN roles r ON r.workspace_id = m.workspace_id AND r.name = m.role \
             WHERE m.workspace_id = $1 AND m.user_id = $2",
        )
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?;
        let (role, mut permissions, ratelimits, credits) = match role_row {
            Some(r) => {
                let credits = crate::keys::credits_of(
                    r.try_get("credits_remaining")?,
                    r.try_get::<Option<String>, _>("credits_refill")?.as_deref(),
                )?;
                let ratelimits =
                    from_json(&r.try_get::<String, _>("ratelimits")?, "member ratelimits")?;
                let perms: Option<String> = r.try_get("permissions")?;
                let set = match perms {
                    Some(p) => from_json::<PermissionSet>(&p, "role permissions")?,
                    None => PermissionSet::default(),
                };
                (
                    Some(r.try_get::<String, _>("role")?),
                    set,
                    ratelimits,
                    credits,
                )
            }
            None => (None, PermissionSet::default(), vec![], None),
        };
        if role.is_some() {
            let grants = sqlx::query(
                "SELECT permission FROM grants WHERE workspace_id = $1 AND user_id = $2",
            )
            .bind(workspace_id)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?;
            let granted: Vec<String> = grants
                .iter()
                .map(|r| r.try_get("permission"))
                .collect::<Result<_, _>>()?;
            let granted =
                PermissionSet::parse_all(granted.iter().map(String::as_str)).map_err(|_| {
                    StoreError::Database(sqlx::Error::Decode("bad stored grant".into()))
                })?;
            permissions = permissions.union(&granted);
        }
        if user.is_instance_admin() {
            permissions = PermissionSet::all();
        }
        let (is_instance_admin, is_instance_verifier) =
            (user.is_instance_admin(), user.is_instance_verifier());
        Ok(Some(Principal {
            user_id: user.id,
            email: user.email,
            name: user.name,
            workspace_id: workspace_id.to_owned(),
            active: user.active != 0,
            is_instance_admin,
            is_instance_verifier,
            role,
            permissions,
            ratelimits,
            credits,
        }))
    }
}
