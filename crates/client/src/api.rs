//! The endpoints of the Admin API (SPEC §6), one method each, grouped by resource:
//! `client.keys().create(&body)`, `client.workspaces().put_member(ws, user, &body)`, ….

use crate::{Call, Client};
use latchkey_proto::audit::{AuditEvent, AuditFilter};
use latchkey_proto::keys::{
    CreateKey, CreatedKey, ImportKeys, ImportResult, Key, KeyFilter, RollKey, UpdateKey,
};
use latchkey_proto::me::Me;
use latchkey_proto::portal::{CreatePortalSession, PortalSession};
use latchkey_proto::tokens::{AccessToken, CreateToken, CreatedToken, Exchange, Token};
use latchkey_proto::users::{CreateUser, UpdateUser, User, UserFilter};
use latchkey_proto::workspaces::{
    CreateGrant, CreateWorkspace, Grant, GrantFilter, Member, PutMember, PutRole, Role,
    UpdateWorkspace, Workspace,
};
use latchkey_proto::{List, Page};
use reqwest::Method;

impl Client {
    /// `GET /v1/me`: the credential this client presents.
    pub fn me(&self) -> Call<'_, Me> {
        Call::new(self, Method::GET, &["v1", "me"])
    }

    /// `GET /v1/audit` (needs `latchkey:audit:read`).
    pub fn audit(&self, filter: &AuditFilter) -> Call<'_, List<AuditEvent>> {
        Call::new(self, Method::GET, &["v1", "audit"]).query(filter)
    }

    /// `/v1/keys`.
    pub fn keys(&self) -> Keys<'_> {
        Keys(self)
    }

    /// `/v1/users`.
    pub fn users(&self) -> Users<'_> {
        Users(self)
    }

    /// `/v1/workspaces`, with their members, roles and grants.
    pub fn workspaces(&self) -> Workspaces<'_> {
        Workspaces(self)
    }

    /// `POST /v1/auth/token` and `/v1/tokens`.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens(self)
    }

    /// `POST /v1/portal/sessions` → 201 (SPEC §7): a single-use link, valid five minutes, that
    /// signs `user_id` into the dashboard for `workspace_id`. Send the person's browser to its
    /// `url`; it is shown this once.
    pub fn portal_session(&self, body: &CreatePortalSession) -> Call<'_, PortalSession> {
        Call::new(self, Method::POST, &["v1", "portal", "sessions"]).json(body)
    }
}

/// `/v1/keys` (SPEC §6.2).
#[derive(Debug, Clone, Copy)]
pub struct Keys<'c>(&'c Client);

impl<'c> Keys<'c> {
    /// `POST /v1/keys` → 201, the key shown this once.
    pub fn create(&self, body: &CreateKey) -> Call<'c, CreatedKey> {
        Call::new(self.0, Method::POST, &["v1", "keys"]).json(body)
    }

    pub fn list(&self, filter: &KeyFilter) -> Call<'c, List<Key>> {
        Call::new(self.0, Method::GET, &["v1", "keys"]).query(filter)
    }

    pub fn get(&self, id: &str) -> Call<'c, Key> {
        Call::new(self.0, Method::GET, &["v1", "keys", id])
    }

    /// `PATCH /v1/keys/{id}`.
    pub fn update(&self, id: &str, body: &UpdateKey) -> Call<'c, Key> {
        Call::new(self.0, Method::PATCH, &["v1", "keys", id]).json(body)
    }

    /// `POST /v1/keys/{id}/roll` → 201, the new key shown this once.
    pub fn roll(&self, id: &str, body: &RollKey) -> Call<'c, CreatedKey> {
        Call::new(self.0, Method::POST, &["v1", "keys", id, "roll"]).json(body)
    }

    /// `POST /v1/keys/import`: up to 1,000 keys issued elsewhere, stored in one transaction.
    pub fn import(&self, body: &ImportKeys) -> Call<'c, ImportResult> {
        Call::new(self.0, Method::POST, &["v1", "keys", "import"]).json(body)
    }

    /// `DELETE /v1/keys/{id}` → 204; idempotent.
    pub fn revoke(&self, id: &str) -> Call<'c, ()> {
        Call::new(self.0, Method::DELETE, &["v1", "keys", id])
    }
}

/// `/v1/users` (SPEC §6.3).
#[derive(Debug, Clone, Copy)]
pub struct Users<'c>(&'c Client);

impl<'c> Users<'c> {
    /// `POST /v1/users` → 201; 409 on a taken email.
    pub fn create(&self, body: &CreateUser) -> Call<'c, User> {
        Call::new(self.0, Method::POST, &["v1", "users"]).json(body)
    }

    pub fn list(&self, filter: &UserFilter) -> Call<'c, List<User>> {
        Call::new(self.0, Method::GET, &["v1", "users"]).query(filter)
    }

    pub fn get(&self, id: &str) -> Call<'c, User> {
        Call::new(self.0, Method::GET, &["v1", "users", id])
    }

    /// `PATCH /v1/users/{id}`: the name, the instance role.
    pub fn update(&self, id: &str, body: &UpdateUser) -> Call<'c, User> {
        Call::new(self.0, Method::PATCH, &["v1", "users", id]).json(body)
    }

    /// `DELETE /v1/users/{id}` → 204: deactivates the user and revokes all they hold.
    pub fn deactivate(&self, id: &str) -> Call<'c, ()> {
        Call::new(self.0, Method::DELETE, &["v1", "users", id])
    }
}

/// `/v1/workspaces` (SPEC §6.3).
#[derive(Debug, Clone, Copy)]
pub struct Workspaces<'c>(&'c Client);

impl<'c> Workspaces<'c> {
    /// `POST /v1/workspaces` → 201 (instance admins).
    pub fn create(&self, body: &CreateWorkspace) -> Call<'c, Workspace> {
        Call::new(self.0, Method::POST, &["v1", "workspaces"]).json(body)
    }

    pub fn list(&self, page: &Page) -> Call<'c, List<Workspace>> {
        Call::new(self.0, Method::GET, &["v1", "workspaces"]).query(page)
    }

    pub fn get(&self, id: &str) -> Call<'c, Workspace> {
        Call::new(self.0, Method::GET, &["v1", "workspaces", id])
    }

    /// `PATCH /v1/workspaces/{id}`: the name and the settings.
    pub fn update(&self, id: &str, body: &UpdateWorkspace) -> Call<'c, Workspace> {
        Call::new(self.0, Method::PATCH, &["v1", "workspaces", id]).json(body)
    }

    /// `GET /v1/workspaces/{id}/members`.
    pub fn members(&self, id: &str, page: &Page) -> Call<'c, List<Member>> {
        Call::new(self.0, Method::GET, &["v1", "workspaces", id, "members"]).query(page)
    }

    /// `PUT /v1/workspaces/{id}/members/{user_id}`: adds (201) or changes the role (200).
    pub fn put_member(&self, id: &str, user_id: &str, body: &PutMember) -> Call<'c, Member> {
        Call::new(
            self.0,
            Method::PUT,
            &["v1", "workspaces", id, "members", user_id],
        )
        .json(body)
    }

    /// `DELETE /v1/workspaces/{id}/members/{user_id}` → 204.
    pub fn remove_member(&self, id: &str, user_id: &str) -> Call<'c, ()> {
        Call::new(
            self.0,
            Method::DELETE,
            &["v1", "workspaces", id, "members", user_id],
        )
    }

    /// `GET /v1/workspaces/{id}/roles`: every role, in one page.
    pub fn roles(&self, id: &str) -> Call<'c, List<Role>> {
        Call::new(self.0, Method::GET, &["v1", "workspaces", id, "roles"])
    }

    /// `GET /v1/workspaces/{id}/roles/{role}`.
    pub fn role(&self, id: &str, role: &str) -> Call<'c, Role> {
        Call::new(
            self.0,
            Method::GET,
            &["v1", "workspaces", id, "roles", role],
        )
    }

    /// `PUT /v1/workspaces/{id}/roles/{role}`: the role's whole permission list.
    pub fn put_role(&self, id: &str, role: &str, body: &PutRole) -> Call<'c, Role> {
        Call::new(
            self.0,
            Method::PUT,
            &["v1", "workspaces", id, "roles", role],
        )
        .json(body)
    }

    /// `POST /v1/workspaces/{id}/grants` → 201.
    pub fn create_grant(&self, id: &str, body: &CreateGrant) -> Call<'c, Grant> {
        Call::new(self.0, Method::POST, &["v1", "workspaces", id, "grants"]).json(body)
    }

    /// `GET /v1/workspaces/{id}/grants`.
    pub fn grants(&self, id: &str, filter: &GrantFilter) -> Call<'c, List<Grant>> {
        Call::new(self.0, Method::GET, &["v1", "workspaces", id, "grants"]).query(filter)
    }

    /// `DELETE /v1/workspaces/{id}/grants/{grant_id}` → 204.
    pub fn delete_grant(&self, id: &str, grant_id: &str) -> Call<'c, ()> {
        Call::new(
            self.0,
            Method::DELETE,
            &["v1", "workspaces", id, "grants", grant_id],
        )
    }
}

/// Access tokens (SPEC §6.1).
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'c>(&'c Client);

impl<'c> Tokens<'c> {
    /// `POST /v1/auth/token`: this client's key for a short-lived access token.
    pub fn exchange(&self, body: &Exchange) -> Call<'c, AccessToken> {
        Call::new(self.0, Method::POST, &["v1", "auth", "token"]).json(body)
    }

    /// `POST /v1/tokens` → 201: an environment token, shown this once.
    pub fn create(&self, body: &CreateToken) -> Call<'c, CreatedToken> {
        Call::new(self.0, Method::POST, &["v1", "tokens"]).json(body)
    }

    pub fn list(&self, page: &Page) -> Call<'c, List<Token>> {
        Call::new(self.0, Method::GET, &["v1", "tokens"]).query(page)
    }

    /// `POST /v1/tokens/{id}/renew` → 201: a new token, shown this once; the old one is revoked.
    pub fn renew(&self, id: &str) -> Call<'c, CreatedToken> {
        Call::new(self.0, Method::POST, &["v1", "tokens", id, "renew"])
    }

    /// `DELETE /v1/tokens/{id}` → 204.
    pub fn revoke(&self, id: &str) -> Call<'c, ()> {
        Call::new(self.0, Method::DELETE, &["v1", "tokens", id])
    }
}
