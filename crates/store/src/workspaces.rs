//! Workspaces, their roles, members and grants, and the first-start bootstrap.

use crate::audit::Log;
use crate::keys::{credit_columns, credits_of, from_json, insert_key, to_json};
use crate::query::ListQuery;
use crate::users::insert_user;
use crate::MemberSettings;
use crate::{
    now, Actor, Backend, Bootstrap, Change, Grant, Member, Page, PageRequest, Result, Role,
    SqlStore, StoreError, Workspace, WorkspacePatch, WriteTx,
};
use latchkey_core::{ids, roles, PermissionSet};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const WS_COLUMNS: &str =
    "id, name, require_pair, publishable_permissions, max_key_ttl_seconds, created_at, updated_at";

fn ws_from_row(r: &AnyRow) -> Result<Workspace> {
    Ok(Workspace {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        require_pair: r.try_get::<i64, _>("require_pair")? != 0,
        publishable_permissions: from_json(
            &r.try_get::<String, _>("publishable_permissions")?,
            "publishable_permissions",
        )?,
        max_key_ttl_seconds: r.try_get("max_key_ttl_seconds")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn member_from_row(r: &AnyRow) -> Result<Member> {
    Ok(Member {
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        active: r.try_get::<i64, _>("active")? != 0,
        created_at: r.try_get("created_at")?,
        ratelimits: from_json(&r.try_get::<String, _>("ratelimits")?, "member ratelimits")?,
        credits: credits_of(
            r.try_get("credits_remaining")?,
            r.try_get::<Option<String>, _>("credits_refill")?.as_deref(),
        )?,
    })
}

const MEMBER_SELECT: &str = "SELECT m.workspace_id AS workspace_id, m.user_id AS user_id, \
    u.email AS email, u.name AS name, m.role AS role, u.active AS active, m.created_at AS created_at, \
    m.ratelimits AS ratelimits, m.credits_remaining AS credits_remaining, \
    m.credits_refill AS credits_refill FROM members m JOIN users u ON u.id = m.user_id";

async fn fetch_ws(conn: &mut AnyConnection, id: &str) -> Result<Workspace> {
    let row = sqlx::query(&format!(
        "SELECT {WS_COLUMNS} FROM workspaces WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    ws_from_row(&row)
}

async fn fetch_member(conn: &mut AnyConnection, ws: &str, user: &str) -> Result<Option<Member>> {
    sqlx::query(&format!(
        "{MEMBER_SELECT} WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(ws)
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(member_from_row)
    .transpose()
}

async fn set_member_credits(
    conn: &mut AnyConnection,
    ws: &str,
    user: &str,
    credits: Option<&latchkey_core::credits::Credits>,
) -> Result<()> {
    let (remaining, refill, refilled_at) = credit_columns(credits, now());
    sqlx::query(
        "UPDATE members SET credits_remaining = $1, credits_refill = $2, credits_refilled_at = $3 \
         WHERE workspace_id = $4 AND user_id = $5",
    )
    .bind(remaining)
    .bind(refill)
    .bind(refilled_at)
    .bind(ws)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const LAST_ADMIN: &str = "the workspace would lose its last admin: make another member admin first";

/// Whether `ws` keeps an active admin other than `user`. Run after [`SqlStore::lock_workspaces`],
/// so no concurrent change can remove that other admin before this transaction commits.
pub(crate) async fn has_other_admin(
    conn: &mut AnyConnection,
    ws: &str,
    user: &str,
) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM members m JOIN users u ON u.id = m.user_id \
         WHERE m.workspace_id = $1 AND m.role = $2 AND m.user_id <> $3 AND u.active = 1",
    )
    .bind(ws)
    .bind(roles::ADMIN)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Refuses a change that takes `before` (an active admin) out of the admin role when nobody
/// else is one.
async fn keep_last_admin(conn: &mut AnyConnection, before: &Member) -> Result<()> {
    if before.role == roles::ADMIN
        && before.active
        && !has_other_admin(conn, &before.workspace_id, &before.user_id).await?
    {
        return Err(StoreError::Conflict(LAST_ADMIN));
    }
    Ok(())
}

/// Inserts a workspace with the built-in roles, and its first admin if given.
async fn insert_workspace(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    admin: Option<&str>,
) -> Result<()> {
    let t = now();
    sqlx::query(
        "INSERT INTO workspaces (id, name, require_pair, publishable_permissions, created_at, updated_at) \
         VALUES ($1, $2, 0, '[]', $3, $3)",
    )
    .bind(id)
    .bind(name)
    .bind(t)
    .execute(&mut *conn)
    .await?;
    for role in roles::BUILT_IN {
        let perms = roles::default_permissions(role).expect("built-in");
        sqlx::query("INSERT INTO roles (workspace_id, name, permissions, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(role)
            .bind(serde_json::to_string(&perms).expect("serialises"))
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    if let Some(user) = admin {
        sqlx::query(
            "INSERT INTO members (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(user)
        .bind(roles::ADMIN)
        .bind(t)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl SqlStore {
    /// Serialises the membership changes of these workspaces until `tx` ends, so "is there
    /// another admin?" stays true until commit. SQLite's write transactions are serial already
    /// (BEGIN IMMEDIATE); on PostgreSQL, at READ COMMITTED, two demotions of the last two admins
    /// would each see the other still admin without this row lock. Locked in id order, so two
    /// transactions locking several never deadlock.
    pub(crate) async fn lock_workspaces(&self, tx: &mut WriteTx, ids: &[String]) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let mut ids = ids.to_vec();
        ids.sort();
        for id in &ids {
            sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn is_initialised(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM meta WHERE name = 'initialised'")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// First start: the instance admin, the `Default` workspace and the admin's key, atomically.
    /// `Conflict` if another process (or an earlier run) already did it.
    pub async fn bootstrap(&self, b: &Bootstrap) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO meta (name, value) VALUES ('initialised', $1)")
            .bind(now().to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique("already initialised"))?;
        insert_user(&mut tx, &b.admin).await?;
        insert_workspace(
            &mut tx,
            &b.workspace_id,
            &b.workspace_name,
            Some(&b.admin.id),
        )
        .await?;
        insert_key(&mut tx, &b.key).await?;
        let actor = Actor {
            user_id: Some(b.admin.id.clone()),
            credential_name: Some("latchkey init".into()),
            ..Actor::default()
        };
        let mut log = Log::new(&actor);
        log.event(
            None,
            "user.created",
            "user",
            &b.admin.id,
            json!({"email": b.admin.email}),
        )
        .event(
            Some(&b.workspace_id),
            "workspace.created",
            "workspace",
            &b.workspace_id,
            json!({"name": b.workspace_name}),
        )
        .event(
            Some(&b.workspace_id),
            "member.added",
            "user",
            &b.admin.id,
            json!({"role": roles::ADMIN}),
        )
        .event(
            Some(&b.workspace_id),
            "key.created",
            "key",
            &b.key.id,
            json!({"name": b.key.name, "redacted": b.key.redacted}),
        );
        log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_workspace(
        &self,
        id: &str,
        name: &str,
        admin: &str,
        actor: &Actor,
    ) -> Result<Workspace> {
        let mut tx = self.begin_write().await?;
        insert_workspace(&mut tx, id, name, Some(admin)).await?;
        let mut log = Log::new(actor);
        log.event(
            Some(id),
            "workspace.created",
            "workspace",
            id,
            json!({"name": name}),
        )
        .event(
            Some(id),
            "member.added",
            "user",
            admin,
            json!({"role": roles::ADMIN}),
        );
        log.write(&mut tx).await?;
        let ws = fetch_ws(&mut tx, id).await?;
        tx.commit().await?;
        Ok(ws)
    }

    pub async fn get_workspace(&self, id: &str) -> Result<Workspace> {
        let mut conn = self.read.acquire().await?;
        fetch_ws(&mut conn, id).await
    }

    /// All workspaces, or (with `member`) those a user belongs to.
    pub async fn list_workspaces(
        &self,
        member: Option<&str>,
        page: PageRequest<'_>,
    ) -> Result<Page<Workspace>> {
        let mut q = ListQuery::new(&format!("SELECT {WS_COLUMNS} FROM workspaces"));
        q.and_if(
            "id IN (SELECT workspace_id FROM members WHERE user_id = ?)",
            member,
        );
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows = sqlx::query_with(&sql, args).fetch_all(&self.read).await?;
        let list = rows.iter().map(ws_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(list, page.limit, |w| w.id.clone()))
    }

    pub async fn update_workspace(
        &self,
        id: &str,
        p: &WorkspacePatch,
        actor: &Actor,
    ) -> Result<(Workspace, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let mut ws = fetch_ws(&mut tx, id).await?;
        let mut fields = Vec::new();
        if let Some(v) = &p.name {
            ws.name.clone_from(v);
            fields.push("name");
        }
        if let Some(v) = p.require_pair {
            ws.require_pair = v;
            fields.push("require_pair");
        }
        if let Some(v) = &p.publishable_permissions {
            ws.publishable_permissions = v.clone();
            fields.push("publishable_permissions");
        }
        if let Some(v) = p.max_key_ttl_seconds {
            ws.max_key_ttl_seconds = v;
            fields.push("max_key_ttl_seconds");
        }
        ws.updated_at = now();
        sqlx::query(
            "UPDATE workspaces SET name = $1, require_pair = $2, publishable_permissions = $3, \
             max_key_ttl_seconds = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(&ws.name)
        .bind(i64::from(ws.require_pair))
        .bind(serde_json::to_string(&ws.publishable_permissions).expect("serialises"))
        .bind(ws.max_key_ttl_seconds)
        .bind(ws.updated_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut log = Log::new(actor);
        log.event(
            Some(id),
            "workspace.updated",
            "workspace",
            id,
            json!({"fields": fields}),
        )
        .change(Change::Workspace(id.to_owned()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((ws, changes))
    }

    pub async fn list_members(&self, ws: &str, page: PageRequest<'_>) -> Result<Page<Member>> {
        let mut q = ListQuery::new(MEMBER_SELECT);
        q.and("m.workspace_id = ?", [ws.into()]);
        let (sql, args) = q.page("m.user_id", page.cursor, page.limit);
        let rows = sqlx::query_with(&sql, args).fetch_all(&self.read).await?;
        let list = rows
            .iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(list, page.limit, |m| m.user_id.clone()))
    }

    /// One member of a workspace, if `user` is one.
    pub async fn member(&self, ws: &str, user: &str) -> Result<Option<Member>> {
        let mut conn = self.read.acquire().await?;
        fetch_member(&mut conn, ws, user).await
    }

    /// Adds a member or changes their role and, when `ratelimits` is given, their limits.
    /// Returns the member and whether they were added.
    pub async fn put_member(
        &self,
        ws: &str,
        user: &str,
        role: &str,
        settings: &MemberSettings,
        actor: &Actor,
    ) -> Result<(Member, bool, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        self.lock_workspaces(&mut tx, &[ws.to_owned()]).await?;
        let before = fetch_member(&mut tx, ws, user).await?;
        let ratelimits = settings.ratelimits.as_deref();
        let mut log = Log::new(actor);
        match &before {
            Some(m) => {
                if m.role != role {
                    keep_last_admin(&mut tx, m).await?;
                    sqlx::query(
                        "UPDATE members SET role = $1 WHERE workspace_id = $2 AND user_id = $3",
                    )
                    .bind(role)
                    .bind(ws)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                    log.event(
                        Some(ws),
                        "member.role_changed",
                        "user",
                        user,
                        json!({"from": m.role, "to": role}),
                    );
                }
                if let Some(limits) = ratelimits.filter(|l| *l != m.ratelimits.as_slice()) {
                    sqlx::query(
                        "UPDATE members SET ratelimits = $1 WHERE workspace_id = $2 AND user_id = $3",
                    )
                    .bind(to_json(&limits))
                    .bind(ws)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                    log.event(
                        Some(ws),
                        "member.updated",
                        "user",
                        user,
                        json!({"ratelimits": {"from": m.ratelimits, "to": limits}}),
                    );
                }
                if let Some(credits) = settings.credits.as_ref().filter(|c| **c != m.credits) {
                    set_member_credits(&mut tx, ws, user, credits.as_ref()).await?;
                    log.event(
                        Some(ws),
                        "member.updated",
                        "user",
                        user,
                        json!({"credits": {"from": m.credits, "to": credits}}),
                    );
                }
            }
            None => {
                let limits = ratelimits.unwrap_or_default();
                sqlx::query(
                    "INSERT INTO members (workspace_id, user_id, role, created_at, ratelimits) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(ws)
                .bind(user)
                .bind(role)
                .bind(now())
                .bind(to_json(&limits))
                .execute(&mut *tx)
                .await?;
                let mut detail = json!({"role": role});
                if !limits.is_empty() {
                    detail["ratelimits"] = json!(limits);
                }
                if let Some(Some(credits)) = &settings.credits {
                    set_member_credits(&mut tx, ws, user, Some(credits)).await?;
                    detail["credits"] = json!(credits);
                }
                log.event(Some(ws), "member.added", "user", user, detail);
            }
        }
        log.change(Change::Principal {
            workspace_id: ws.to_owned(),
            user_id: user.to_owned(),
        });
        let changes = log.write(&mut tx).await?;
        let member = fetch_member(&mut tx, ws, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok((member, before.is_none(), changes))
    }

    pub async fn remove_member(&self, ws: &str, user: &str, actor: &Actor) -> Result<Vec<Change>> {
        let mut tx = self.begin_write().await?;
        self.lock_workspaces(&mut tx, &[ws.to_owned()]).await?;
        let before = fetch_member(&mut tx, ws, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        keep_last_admin(&mut tx, &before).await?;
        sqlx::query("DELETE FROM members WHERE workspace_id = $1 AND user_id = $2")
            .bind(ws)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let mut log = Log::new(actor);
        log.event(
            Some(ws),
            "member.removed",
            "user",
            user,
            json!({"role": before.role}),
        )
        .change(Change::Principal {
            workspace_id: ws.to_owned(),
            user_id: user.to_owned(),
        });
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(changes)
    }

    pub async fn get_role(&self, ws: &str, name: &str) -> Result<Role> {
        let row = sqlx::query("SELECT workspace_id, name, permissions, updated_at FROM roles WHERE workspace_id = $1 AND name = $2")
            .bind(ws)
            .bind(name)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        role_from_row(&row)
    }

    pub async fn list_roles(&self, ws: &str) -> Result<Vec<Role>> {
        let rows = sqlx::query("SELECT workspace_id, name, permissions, updated_at FROM roles WHERE workspace_id = $1 ORDER BY name")
            .bind(ws)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(role_from_row).collect()
    }

    /// Creates or replaces a role's permissions.
    pub async fn put_role(
        &self,
        ws: &str,
        name: &str,
        perms: &PermissionSet,
        actor: &Actor,
    ) -> Result<(Role, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let json = serde_json::to_string(perms).expect("serialises");
        let t = now();
        let updated = sqlx::query("UPDATE roles SET permissions = $1, updated_at = $2 WHERE workspace_id = $3 AND name = $4")
            .bind(&json)
            .bind(t)
            .bind(ws)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if crate::affected(&updated) == 0 {
            sqlx::query("INSERT INTO roles (workspace_id, name, permissions, updated_at) VALUES ($1, $2, $3, $4)")
                .bind(ws)
                .bind(name)
                .bind(&json)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        let mut log = Log::new(actor);
        log.event(
            Some(ws),
            "role.updated",
            "role",
            name,
            json!({"permissions": perms}),
        )
        .change(Change::Workspace(ws.to_owned()));
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok((
            Role {
                workspace_id: ws.to_owned(),
                name: name.to_owned(),
                permissions: perms.clone(),
                updated_at: t,
            },
            changes,
        ))
    }

    pub async fn create_grant(
        &self,
        ws: &str,
        user: &str,
        permission: &str,
        actor: &Actor,
    ) -> Result<(Grant, Vec<Change>)> {
        let mut tx = self.begin_write().await?;
        let id = ids::new_id(ids::GRANT);
        sqlx::query("INSERT INTO grants (id, workspace_id, user_id, permission, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(ws)
            .bind(user)
            .bind(permission)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique("this user already has this grant"))?;
        let mut log = Log::new(actor);
        log.event(
            Some(ws),
            "grant.created",
            "grant",
            &id,
            json!({"user_id": user, "permission": permission}),
        )
        .change(Change::Principal {
            workspace_id: ws.to_owned(),
            user_id: user.to_owned(),
        });
        let changes = log.write(&mut tx).await?;
        let grant = sqlx::query_as(
            "SELECT id, workspace_id, user_id, permission, created_at FROM grants WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((grant, changes))
    }

    pub async fn list_grants(
        &self,
        ws: &str,
        user: Option<&str>,
        page: PageRequest<'_>,
    ) -> Result<Page<Grant>> {
        let mut q =
            ListQuery::new("SELECT id, workspace_id, user_id, permission, created_at FROM grants");
        q.and("workspace_id = ?", [ws.into()])
            .and_if("user_id = ?", user);
        let (sql, args) = q.page("id", page.cursor, page.limit);
        let rows: Vec<Grant> = sqlx::query_as_with(&sql, args)
            .fetch_all(&self.read)
            .await?;
        Ok(Page::from_rows(rows, page.limit, |g| g.id.clone()))
    }

    pub async fn delete_grant(&self, ws: &str, id: &str, actor: &Actor) -> Result<Vec<Change>> {
        let mut tx = self.begin_write().await?;
        let grant: Grant = sqlx::query_as(
            "SELECT id, workspace_id, user_id, permission, created_at FROM grants WHERE id = $1 AND workspace_id = $2",
        )
        .bind(id)
        .bind(ws)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM grants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut log = Log::new(actor);
        log.event(
            Some(ws),
            "grant.deleted",
            "grant",
            id,
            json!({"user_id": grant.user_id, "permission": grant.permission}),
        )
        .change(Change::Principal {
            workspace_id: ws.to_owned(),
            user_id: grant.user_id.clone(),
        });
        let changes = log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(changes)
    }
}

fn role_from_row(r: &AnyRow) -> Result<Role> {
    Ok(Role {
        workspace_id: r.try_get("workspace_id")?,
        name: r.try_get("name")?,
        permissions: from_json(&r.try_get::<String, _>("permissions")?, "role permissions")?,
        updated_at: r.try_get("updated_at")?,
    })
}
