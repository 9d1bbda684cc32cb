//! Workspaces (tenants), their members, roles and grants.
//!
//! A credential sees only its own workspace (instance admins see all); another workspace is a
//! 404. Reading the workspace and its roles needs only to see it; everything else needs
//! `latchkey:members:manage`, and changes a live credential. Creating workspaces is for
//! instance admins. What a role, grant or membership may give is `latchkey_core::delegation`'s
//! decision: never more than the caller holds, and `admin` only from a full admin.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::users::CreateUserRequest;
use crate::routes::views::PageParams;
use crate::routes::workspaces::{
    CreateGrantRequest, CreateWorkspaceRequest, GrantListParams, PutMemberRequest, PutRoleRequest,
    UpdateWorkspaceRequest,
};
use crate::service::{page_request, users};
use crate::state::AppState;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_core::{ids, roles, Permission, PermissionSet, Validator};
use latchkey_store::{Grant, Member, Page, Role, StoreError, Workspace, WorkspacePatch};

/// `max_key_ttl_seconds`: a minute to ten years.
pub const MIN_TTL_SECONDS: i64 = 60;
pub const MAX_TTL_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// A membership after [`put_member`]: the member, and whether they were added (rather than
/// given another role).
pub struct PutMember {
    pub member: Member,
    pub added: bool,
}

/// The workspace `id`, if the caller may see it and it exists. An instance admin sees every
/// workspace id, so existence is checked here: a workspace that does not exist is a 404 on
/// every path below it (not an empty list, a 422 about a field, or a foreign-key 500).
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    if !(ids::is_id(ids::WORKSPACE, id) && caller.sees_workspace(id)) {
        return Err(ApiError::NotFound);
    }
    if caller.is_instance_admin() && id != caller.workspace_id() {
        state.store.get_workspace(id).await?;
    }
    Ok(())
}

async fn managed(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    visible(state, caller, id).await?;
    caller.require(MEMBERS_MANAGE)
}

/// For changes: managed, and made with a live credential.
async fn changeable(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    managed(state, caller, id).await?;
    caller.require_live()
}

/// Whom a workspace admin may add or change: a user already in this workspace, or one in no
/// workspace yet (just provisioned). Users of other workspaces are invisible (404); the
/// membership of an instance admin or verifier is an instance admin's to manage (403): it is
/// where their keys, which act beyond the workspace, live.
async fn may_manage_member(
    state: &AppState,
    caller: &Caller,
    ws: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    if !ids::is_id(ids::USER, user_id) {
        return Err(ApiError::NotFound);
    }
    let user = state.store.get_user(user_id).await?;
    if caller.is_instance_admin() {
        return Ok(());
    }
    let memberships = state.store.memberships(user_id).await?;
    if !memberships.is_empty() && !memberships.iter().any(|m| m == ws) {
        return Err(ApiError::NotFound);
    }
    if user.instance_role().is_some() {
        return Err(ApiError::insufficient_permissions());
    }
    Ok(())
}

/// The permissions of the workspace's `admin` role, against which "full admin" is measured
/// (`latchkey_core::delegation`). Should the role be missing, everything: then only a
/// credential holding everything counts as a full admin.
async fn admin_role(state: &AppState, ws: &str) -> Result<PermissionSet, ApiError> {
    match state.store.get_role(ws, roles::ADMIN).await {
        Ok(r) => Ok(r.permissions),
        Err(StoreError::NotFound) => Ok(PermissionSet::all()),
        Err(e) => Err(e.into()),
    }
}

/// The role a user has in a workspace now, if a member.
async fn current_role(state: &AppState, ws: &str, user: &str) -> Result<Option<String>, ApiError> {
    Ok(state.store.principal(ws, user).await?.and_then(|p| p.role))
}

/// A new workspace, with the caller as its admin.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: &CreateWorkspaceRequest,
) -> Result<Workspace, ApiError> {
    if !caller.is_instance_admin() {
        return Err(ApiError::insufficient_permissions());
    }
    caller.require_live()?;
    let mut v = Validator::new();
    let name = v.name("name", &body.name);
    v.finish()?;
    Ok(state
        .store
        .create_workspace(
            &ids::new_id(ids::WORKSPACE),
            &name,
            caller.user_id(),
            &caller.actor(),
        )
        .await?)
}

/// Every workspace for an instance admin; for anyone else, their own.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &PageParams,
) -> Result<Page<Workspace>, ApiError> {
    let page = page_request(q.limit, q.cursor.as_deref(), ids::WORKSPACE)?;
    if caller.is_instance_admin() {
        return Ok(state.store.list_workspaces(None, page).await?);
    }
    let own = state.store.get_workspace(caller.workspace_id()).await?;
    let data = if page.cursor.is_some_and(|c| c <= own.id.as_str()) {
        vec![]
    } else {
        vec![own]
    };
    Ok(Page {
        data,
        next_cursor: None,
    })
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Workspace, ApiError> {
    visible(state, caller, id).await?;
    Ok(state.store.get_workspace(id).await?)
}

/// The workspace's settings: name, `require_pair`, the ceiling of publishable keys, the
/// longest key lifetime.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &UpdateWorkspaceRequest,
) -> Result<Workspace, ApiError> {
    changeable(state, caller, id).await?;
    let mut v = Validator::new();
    let name = body.name.as_deref().map(|n| v.name("name", n));
    let publishable_permissions = body.publishable_permissions.as_deref().map(|list| {
        let set = v.permissions("publishable_permissions", list);
        if set.iter().any(Permission::is_latchkey) {
            v.error(
                "publishable_permissions",
                "publishable keys can never hold latchkey: permissions",
            );
        }
        set
    });
    if let Some(Some(ttl)) = body.max_key_ttl_seconds {
        v.check(
            (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl),
            "max_key_ttl_seconds",
            "must be 60 seconds to 10 years",
        );
    }
    v.finish()?;
    let patch = WorkspacePatch {
        name,
        require_pair: body.require_pair,
        publishable_permissions,
        max_key_ttl_seconds: body.max_key_ttl_seconds,
    };
    let (ws, changes) = state
        .store
        .update_workspace(id, &patch, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(ws)
}

pub async fn list_members(
    state: &AppState,
    caller: &Caller,
    id: &str,
    q: &PageParams,
) -> Result<Page<Member>, ApiError> {
    managed(state, caller, id).await?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::USER)?;
    Ok(state.store.list_members(id, page).await?)
}

/// One member, for whoever may list the members (a user who is not one is a 404).
pub async fn get_member(
    state: &AppState,
    caller: &Caller,
    id: &str,
    user_id: &str,
) -> Result<Member, ApiError> {
    managed(state, caller, id).await?;
    if !ids::is_id(ids::USER, user_id) {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .member(id, user_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Adds `user_id` to the workspace with a role, or gives a member another role.
pub async fn put_member(
    state: &AppState,
    caller: &Caller,
    id: &str,
    user_id: &str,
    body: &PutMemberRequest,
) -> Result<PutMember, ApiError> {
    changeable(state, caller, id).await?;
    may_manage_member(state, caller, id, user_id).await?;
    if !roles::is_valid_name(&body.role) {
        return Err(ApiError::validation(
            "role",
            "no such role in this workspace",
        ));
    }
    let role = match state.store.get_role(id, &body.role).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => {
            return Err(ApiError::validation(
                "role",
                "no such role in this workspace",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let current = current_role(state, id, user_id).await?;
    let mut v = Validator::new();
    caller.issuer().may_assign_role(
        &mut v,
        &body.role,
        &role.permissions,
        current.as_deref(),
        &admin_role(state, id).await?,
    )?;
    if let Some(l) = &body.ratelimits {
        v.ratelimits("ratelimits", l);
    }
    if let Some(Some(c)) = &body.credits {
        v.credits("credits", c);
    }
    v.finish()?;
    let settings = latchkey_store::MemberSettings {
        ratelimits: body.ratelimits.clone(),
        credits: body.credits.clone(),
    };
    let (member, added, changes) = state
        .store
        .put_member(id, user_id, &body.role, &settings, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(PutMember { member, added })
}

/// The dashboard's "Add member": the user with `user.email` if there is one, else `user` newly
/// provisioned ([`users::create`]), put into the workspace with `role` ([`put_member`]). The
/// existing user is subject to [`put_member`]'s rules like any other: one of another
/// workspace is not found.
pub async fn add_member_by_email(
    state: &AppState,
    caller: &Caller,
    id: &str,
    mut user: CreateUserRequest,
    role: &PutMemberRequest,
) -> Result<PutMember, ApiError> {
    changeable(state, caller, id).await?;
    user.email = user.email.trim().to_lowercase();
    let user_id = match state.store.user_by_email(&user.email).await? {
        Some(u) => u.id,
        None => users::create(state, caller, user).await?.id,
    };
    put_member(state, caller, id, &user_id, role).await
}

/// Removes a member; their keys in this workspace stop working at once.
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    changeable(state, caller, id).await?;
    may_manage_member(state, caller, id, user_id).await?;
    let current = current_role(state, id, user_id).await?;
    caller
        .issuer()
        .may_change_member(current.as_deref(), &admin_role(state, id).await?)?;
    let changes = state
        .store
        .remove_member(id, user_id, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(())
}

pub async fn list_roles(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Vec<Role>, ApiError> {
    visible(state, caller, id).await?;
    Ok(state.store.list_roles(id).await?)
}

pub async fn get_role(
    state: &AppState,
    caller: &Caller,
    id: &str,
    role: &str,
) -> Result<Role, ApiError> {
    visible(state, caller, id).await?;
    if !roles::is_valid_name(role) {
        return Err(ApiError::NotFound);
    }
    Ok(state.store.get_role(id, role).await?)
}

/// Creates a role or sets its permissions.
pub async fn put_role(
    state: &AppState,
    caller: &Caller,
    id: &str,
    role: &str,
    body: &PutRoleRequest,
) -> Result<Role, ApiError> {
    changeable(state, caller, id).await?;
    let mut v = Validator::new();
    v.check(
        roles::is_valid_name(role),
        "role",
        "must be lowercase letters, digits, `_` or `-`",
    );
    let perms = v.permissions("permissions", &body.permissions);
    caller.issuer().may_set_role(
        &mut v,
        "permissions",
        role,
        &body.permissions,
        &admin_role(state, id).await?,
    )?;
    v.finish()?;
    let (r, changes) = state
        .store
        .put_role(id, role, &perms, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(r)
}

/// Gives a member one permission beyond their role.
pub async fn create_grant(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &CreateGrantRequest,
) -> Result<Grant, ApiError> {
    changeable(state, caller, id).await?;
    let mut v = Validator::new();
    match Permission::parse(&body.permission) {
        Ok(p) => caller.issuer().may_grant(&mut v, "permission", &p),
        Err(e) => v.error("permission", e.0),
    }
    let is_member =
        ids::is_id(ids::USER, &body.user_id) && state.store.is_member(id, &body.user_id).await?;
    v.check(is_member, "user_id", "is not a member of this workspace");
    v.finish()?;
    let (grant, changes) = state
        .store
        .create_grant(id, &body.user_id, &body.permission, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(grant)
}

pub async fn list_grants(
    state: &AppState,
    caller: &Caller,
    id: &str,
    q: &GrantListParams,
) -> Result<Page<Grant>, ApiError> {
    managed(state, caller, id).await?;
    let page = page_request(q.limit, q.cursor.as_deref(), ids::GRANT)?;
    if q.user_id
        .as_deref()
        .is_some_and(|u| !ids::is_id(ids::USER, u))
    {
        return Err(ApiError::validation("user_id", "is not a user id"));
    }
    Ok(state
        .store
        .list_grants(id, q.user_id.as_deref(), page)
        .await?)
}

/// Deletes a grant; it stops counting on the next request.
pub async fn delete_grant(
    state: &AppState,
    caller: &Caller,
    id: &str,
    grant_id: &str,
) -> Result<(), ApiError> {
    changeable(state, caller, id).await?;
    if !ids::is_id(ids::GRANT, grant_id) {
        return Err(ApiError::NotFound);
    }
    let changes = state
        .store
        .delete_grant(id, grant_id, &caller.actor())
        .await?;
    state.changed(&changes);
    Ok(())
}

/// Every member of `workspace_id`, every page of them, for callers that have already decided
/// the caller may see them (the dashboard's owner column, the audit log's names).
pub(crate) async fn all_members(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<Member>, ApiError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = latchkey_store::PageRequest {
            cursor: cursor.as_deref(),
            limit: 500,
        };
        let members = state.store.list_members(workspace_id, page).await?;
        out.extend(members.data);
        match members.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
