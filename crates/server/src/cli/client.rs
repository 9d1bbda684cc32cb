//! The client commands of the `latchkey` binary (`keys`, `tokens`, `users`, `workspaces`): thin
//! wrappers over the HTTP API of a running server, printing tables for people and raw JSON for
//! scripts.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::{value_parser, Args, Subcommand};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use url::Url;

use super::table::{fields, printable, Table};

// Where the server is and how to authenticate to it; shared by every client command.
#[derive(Clone, Args)]
pub struct ClientOpts {
    /// Base URL of the Latchkey server
    #[arg(long, env = "LATCHKEY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key the client commands authenticate with
    #[arg(long, env = "LATCHKEY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print JSON for scripts instead of text for people
    #[arg(long, global = true)]
    pub json: bool,
}

impl fmt::Debug for ClientOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOpts")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("json", &self.json)
            .finish()
    }
}

pub enum ClientCommand {
    Keys(KeysCommand),
    Tokens(TokensCommand),
    Users(UsersCommand),
    Workspaces(WorkspacesCommand),
}

// Cursor pagination, as every list endpoint takes it.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Page size (1 to 500; the server's default is 50)
    #[arg(long, value_parser = value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Start after this cursor (the `next_cursor` of the previous page)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next_cursor` and print every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key (the full key is printed once and cannot be shown again)
    Create(CreateKeyArgs),
    /// List API keys
    List(ListKeysArgs),
    /// Show one API key
    Get { id: String },
    /// Change a key's name, enabled state, permissions, expiry or restrictions
    Update(UpdateKeyArgs),
    /// Replace a key with a new one, printed once; the old key expires after the grace period
    Roll {
        id: String,
        /// How long the old key keeps working (0 to 604800 seconds)
        #[arg(long, value_parser = value_parser!(u32).range(0..=604_800))]
        grace_seconds: Option<u32>,
    },
    /// Revoke a key and every token obtained from it, at once
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// A name to recognise the key by (1 to 100 characters)
    #[arg(long)]
    pub name: String,
    /// secret for servers, publishable for browser and mobile code (default: secret)
    #[arg(long = "type", value_parser = ["secret", "publishable"])]
    pub key_type: Option<String>,
    /// Environment of the key (default: the environment of the API key in use)
    #[arg(long, value_parser = ["test", "live"])]
    pub environment: Option<String>,
    /// Workspace of the key (default: the workspace of the API key in use)
    #[arg(long)]
    pub workspace_id: Option<String>,
    /// Owner of the key (default: the caller; another user needs latchkey:keys:manage_all)
    #[arg(long)]
    pub owner_id: Option<String>,
    /// Restrict the key to this permission (repeatable; default: all of the owner's)
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
    #[command(flatten)]
    pub restrictions: KeyRestrictions,
}

// The settings `create` and `update` share.
#[derive(Debug, Args)]
pub struct KeyRestrictions {
    /// Expiry time, RFC 3339 (e.g. 2030-01-01T00:00:00Z)
    #[arg(long, value_parser = parse_rfc3339)]
    pub expires_at: Option<String>,
    /// Allow browser requests only from this origin (repeatable)
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Allow requests only from this IP network (repeatable)
    #[arg(long = "allowed-ip", value_name = "CIDR")]
    pub allowed_ips: Vec<String>,
    /// Arbitrary JSON object stored with the key and returned by verify
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Args)]
pub struct ListKeysArgs {
    /// Only keys of this workspace
    #[arg(long)]
    pub workspace_id: Option<String>,
    /// Only keys owned by this user
    #[arg(long)]
    pub owner_id: Option<String>,
    /// Only keys of this environment
    #[arg(long, value_parser = ["test", "live"])]
    pub environment: Option<String>,
    /// Only keys in this state
    #[arg(long, value_parser = ["active", "expired", "revoked", "disabled"])]
    pub status: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct UpdateKeyArgs {
    pub id: String,
    /// New name (1 to 100 characters)
    #[arg(long)]
    pub name: Option<String>,
    /// Enable or disable the key
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
    /// Replace the key's permission restriction list (repeatable)
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
    #[command(flatten)]
    pub restrictions: KeyRestrictions,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Exchange the API key in use for a short-lived access token, printed once
    Exchange(ExchangeArgs),
    /// Create a long-lived environment access token (printed once and cannot be shown again)
    Create(CreateTokenArgs),
    /// List environment access tokens
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Replace a token with a new one, printed once; the old token stops working at once
    Renew { id: String },
    /// Revoke a token, at once
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// Lifetime in seconds (default and maximum set by the server)
    #[arg(long, value_parser = value_parser!(i64).range(1..))]
    pub ttl_seconds: Option<i64>,
    /// Narrow the token to this permission (repeatable; default: all of the key's)
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    /// A name to recognise the token by (1 to 100 characters)
    #[arg(long)]
    pub name: String,
    /// Environment of the token: must be that of the API key in use (the default)
    #[arg(long, value_parser = ["test", "live"])]
    pub environment: Option<String>,
    /// Lifetime in seconds (default 30 days; at most the server's maximum, 365 days by default)
    #[arg(long, value_parser = value_parser!(i64).range(1..))]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Dashboard password (omit for a service account)
        #[arg(long)]
        password: Option<String>,
        /// An instance role: admin (everything, everywhere) or verifier (latchkey:verify in
        /// every workspace, for a gateway, middleware or service); instance admins only
        #[arg(long, value_parser = ["admin", "verifier"])]
        instance_role: Option<String>,
    },
    /// List users
    List {
        /// Only members of this workspace
        #[arg(long)]
        workspace_id: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one user
    Get { id: String },
    /// Rename a user, or give or take their instance role
    Update {
        id: String,
        /// New name (1 to 100 characters)
        #[arg(long)]
        name: Option<String>,
        /// admin, verifier, or none to take the instance role away (instance admins only)
        #[arg(long, value_parser = ["admin", "verifier", "none"])]
        instance_role: Option<String>,
    },
    /// Deactivate a user and revoke all of their keys and tokens
    Deactivate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace
    Create {
        #[arg(long)]
        name: String,
    },
    /// List workspaces
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one workspace and its settings
    Get { id: String },
    /// List a workspace's members
    Members {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Add a user to a workspace, or change their role
    SetMember {
        id: String,
        user_id: String,
        /// admin, developer, member, viewer or a custom role
        #[arg(long)]
        role: String,
    },
    /// Remove a user from a workspace
    RemoveMember { id: String, user_id: String },
    /// Replace the permissions of a role in a workspace
    SetRole {
        id: String,
        role: String,
        /// A permission of the role (repeatable)
        #[arg(long = "permission", value_name = "PERMISSION", required = true)]
        permissions: Vec<String>,
    },
    /// Grant a permission directly to a member
    Grant {
        id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        permission: String,
    },
}

pub async fn run(opts: &ClientOpts, cmd: ClientCommand) -> Result<()> {
    let client = Client::new(opts)?;
    let json = opts.json;
    match cmd {
        ClientCommand::Keys(cmd) => keys(&client, json, cmd).await,
        ClientCommand::Tokens(cmd) => tokens(&client, json, cmd).await,
        ClientCommand::Users(cmd) => users(&client, json, cmd).await,
        ClientCommand::Workspaces(cmd) => workspaces(&client, json, cmd).await,
    }
}

async fn keys(client: &Client, json: bool, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create(args) => {
            let created = client.post(&["v1", "keys"], &create_key_body(args)).await?;
            show(json, &created, new_key_message(&created, "Created")?)
        }
        KeysCommand::List(args) => {
            let mut query = Vec::new();
            push(&mut query, "workspace_id", args.workspace_id);
            push(&mut query, "owner_id", args.owner_id);
            push(&mut query, "environment", args.environment);
            push(&mut query, "status", args.status);
            let page = client.list(&["v1", "keys"], query, &args.page).await?;
            show_list(json, &page, "keys", key_table)
        }
        KeysCommand::Get { id } => {
            let key = client.get(&["v1", "keys", &id], &[]).await?;
            show(json, &key, key_details(&key))
        }
        KeysCommand::Update(args) => {
            let id = args.id.clone();
            let body = update_key_body(args)?;
            let key = client.patch(&["v1", "keys", &id], &body).await?;
            show(json, &key, key_details(&key))
        }
        KeysCommand::Roll { id, grace_seconds } => {
            let body = match grace_seconds {
                Some(s) => json!({ "grace_seconds": s }),
                None => json!({}),
            };
            let rolled = client.post(&["v1", "keys", &id, "roll"], &body).await?;
            let mut text = new_key_message(&rolled, &format!("Rolled {id} into"))?;
            if let Some(s) = grace_seconds {
                text.push_str(&format!("The old key stops working in {s} seconds.\n"));
            }
            show(json, &rolled, text)
        }
        KeysCommand::Revoke { id } => {
            client.delete(&["v1", "keys", &id]).await?;
            done(json, format!("revoked {id}"))
        }
    }
}

async fn tokens(client: &Client, json: bool, cmd: TokensCommand) -> Result<()> {
    match cmd {
        TokensCommand::Exchange(args) => {
            let token = client
                .post(&["v1", "auth", "token"], &exchange_body(args))
                .await?;
            show(json, &token, access_token_message(&token, Utc::now())?)
        }
        TokensCommand::Create(args) => {
            let created = client
                .post(&["v1", "tokens"], &create_token_body(args))
                .await?;
            show(json, &created, new_token_message(&created, "Created")?)
        }
        TokensCommand::List { page } => {
            let page = client.list(&["v1", "tokens"], Vec::new(), &page).await?;
            show_list(json, &page, "tokens", token_table)
        }
        TokensCommand::Renew { id } => {
            let renewed = client.post_empty(&["v1", "tokens", &id, "renew"]).await?;
            let mut text = new_token_message(&renewed, &format!("Renewed {id} into"))?;
            text.push_str(&format!("The old token {id} has stopped working.\n"));
            show(json, &renewed, text)
        }
        TokensCommand::Revoke { id } => {
            client.delete(&["v1", "tokens", &id]).await?;
            done(json, format!("revoked {id}"))
        }
    }
}

async fn users(client: &Client, json: bool, cmd: UsersCommand) -> Result<()> {
    match cmd {
        UsersCommand::Create {
            email,
            name,
            password,
            instance_role,
        } => {
            let mut body = json!({ "email": email, "name": name });
            if let Some(p) = password {
                body["password"] = p.into();
            }
            if let Some(r) = instance_role {
                body["instance_role"] = r.into();
            }
            let user = client.post(&["v1", "users"], &body).await?;
            show(json, &user, user_details(&user))
        }
        UsersCommand::Update {
            id,
            name,
            instance_role,
        } => {
            let body = update_user_body(name, instance_role)?;
            let user = client.patch(&["v1", "users", &id], &body).await?;
            show(json, &user, user_details(&user))
        }
        UsersCommand::List { workspace_id, page } => {
            let mut query = Vec::new();
            push(&mut query, "workspace_id", workspace_id);
            let page = client.list(&["v1", "users"], query, &page).await?;
            show_list(json, &page, "users", user_table)
        }
        UsersCommand::Get { id } => {
            let user = client.get(&["v1", "users", &id], &[]).await?;
            show(json, &user, user_details(&user))
        }
        UsersCommand::Deactivate { id } => {
            client.delete(&["v1", "users", &id]).await?;
            done(json, format!("deactivated {id}"))
        }
    }
}

async fn workspaces(client: &Client, json: bool, cmd: WorkspacesCommand) -> Result<()> {
    match cmd {
        WorkspacesCommand::Create { name } => {
            let ws = client
                .post(&["v1", "workspaces"], &json!({ "name": name }))
                .await?;
            show(json, &ws, workspace_details(&ws))
        }
        WorkspacesCommand::List { page } => {
            let page = client
                .list(&["v1", "workspaces"], Vec::new(), &page)
                .await?;
            show_list(json, &page, "workspaces", workspace_table)
        }
        WorkspacesCommand::Get { id } => {
            let ws = client.get(&["v1", "workspaces", &id], &[]).await?;
            show(json, &ws, workspace_details(&ws))
        }
        WorkspacesCommand::Members { id, page } => {
            let path = ["v1", "workspaces", &id, "members"];
            let page = client.list(&path, Vec::new(), &page).await?;
            show_list(json, &page, "members", member_table)
        }
        WorkspacesCommand::SetMember { id, user_id, role } => {
            let path = ["v1", "workspaces", &id, "members", &user_id];
            let member = client.put(&path, &json!({ "role": role })).await?;
            show(json, &member, format!("{user_id} is now {role} in {id}\n"))
        }
        WorkspacesCommand::RemoveMember { id, user_id } => {
            client
                .delete(&["v1", "workspaces", &id, "members", &user_id])
                .await?;
            done(json, format!("removed {user_id} from {id}"))
        }
        WorkspacesCommand::SetRole {
            id,
            role,
            permissions,
        } => {
            let path = ["v1", "workspaces", &id, "roles", &role];
            let body = json!({ "permissions": permissions });
            let updated = client.put(&path, &body).await?;
            let text = format!("role {role} in {id}: {}\n", permissions.join(", "));
            show(json, &updated, text)
        }
        WorkspacesCommand::Grant {
            id,
            user_id,
            permission,
        } => {
            let body = json!({ "user_id": user_id, "permission": permission });
            let grant = client
                .post(&["v1", "workspaces", &id, "grants"], &body)
                .await?;
            let text = match grant.get("id").and_then(Value::as_str) {
                Some(gid) => format!("granted {permission} to {user_id} in {id} ({gid})\n"),
                None => format!("granted {permission} to {user_id} in {id}\n"),
            };
            show(json, &grant, text)
        }
    }
}

// ---- request bodies ------------------------------------------------------------------------

fn create_key_body(args: CreateKeyArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), args.name.into());
    insert(&mut body, "type", args.key_type);
    insert(&mut body, "environment", args.environment);
    insert(&mut body, "workspace_id", args.workspace_id);
    insert(&mut body, "owner_id", args.owner_id);
    insert_list(&mut body, "permissions", args.permissions);
    insert_restrictions(&mut body, args.restrictions);
    Value::Object(body)
}

fn update_key_body(args: UpdateKeyArgs) -> Result<Value> {
    let mut body = Map::new();
    insert(&mut body, "name", args.name);
    insert(&mut body, "enabled", args.enabled);
    insert_list(&mut body, "permissions", args.permissions);
    insert_restrictions(&mut body, args.restrictions);
    if body.is_empty() {
        bail!("nothing to update: pass --name, --enabled, --permission, --expires-at, --allowed-origin, --allowed-ip or --metadata");
    }
    Ok(Value::Object(body))
}

fn update_user_body(name: Option<String>, instance_role: Option<String>) -> Result<Value> {
    let mut body = Map::new();
    insert(&mut body, "name", name);
    if let Some(r) = instance_role {
        // `none` on the command line is `null` in the API: no instance role.
        let r = if r == "none" { Value::Null } else { r.into() };
        body.insert("instance_role".into(), r);
    }
    if body.is_empty() {
        bail!("nothing to update: pass --name or --instance-role");
    }
    Ok(Value::Object(body))
}

fn exchange_body(args: ExchangeArgs) -> Value {
    let mut body = Map::new();
    insert(&mut body, "ttl_seconds", args.ttl_seconds);
    insert_list(&mut body, "permissions", args.permissions);
    Value::Object(body)
}

fn create_token_body(args: CreateTokenArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), args.name.into());
    insert(&mut body, "environment", args.environment);
    insert(&mut body, "ttl_seconds", args.ttl_seconds);
    Value::Object(body)
}

fn insert_restrictions(body: &mut Map<String, Value>, r: KeyRestrictions) {
    insert(body, "expires_at", r.expires_at);
    insert_list(body, "allowed_origins", r.allowed_origins);
    insert_list(body, "allowed_ips", r.allowed_ips);
    insert(body, "metadata", r.metadata);
}

fn insert(body: &mut Map<String, Value>, field: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        body.insert(field.into(), v.into());
    }
}

fn insert_list(body: &mut Map<String, Value>, field: &str, values: Vec<String>) {
    if !values.is_empty() {
        body.insert(field.into(), values.into());
    }
}

fn push(query: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<String>) {
    if let Some(v) = value {
        query.push((name, v));
    }
}

fn parse_rfc3339(s: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        })
        .map_err(|e| format!("not an RFC 3339 timestamp such as 2030-01-01T00:00:00Z ({e})"))
}

fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON ({e})"))
}

// ---- HTTP ----------------------------------------------------------------------------------

/// A thin HTTP client: JSON in, JSON out, problem+json turned into an error message.
struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

impl Client {
    fn new(opts: &ClientOpts) -> Result<Self> {
        let key = opts.api_key.as_deref().map(str::trim).unwrap_or_default();
        if key.is_empty() {
            bail!("LATCHKEY_API_KEY is not set");
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            anyhow!("the API key contains characters not allowed in an HTTP header")
        })?;
        auth.set_sensitive(true);
        let base = parse_base_url(&opts.url)?;
        if base.scheme() == "http" && !is_loopback(&base) {
            eprintln!(
                "warning: sending the API key over plain HTTP to {}",
                display_url(&base)
            );
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // A redirect would silently turn a POST into a GET; report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client { http, base, auth })
    }

    async fn get(&self, path: &[&str], query: &[(&str, String)]) -> Result<Value> {
        self.send(Method::GET, path, query, None).await
    }

    async fn post(&self, path: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// A POST without a body, for actions such as renew.
    async fn post_empty(&self, path: &[&str]) -> Result<Value> {
        self.send(Method::POST, path, &[], None).await
    }

    async fn patch(&self, path: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::PATCH, path, &[], Some(body)).await
    }

    async fn put(&self, path: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    async fn delete(&self, path: &[&str]) -> Result<()> {
        self.send(Method::DELETE, path, &[], None).await.map(drop)
    }

    /// One page, or with `--all` every page merged into one `{"data", "next_cursor": null}`.
    async fn list(
        &self,
        path: &[&str],
        mut query: Vec<(&'static str, String)>,
        page: &PageArgs,
    ) -> Result<Value> {
        if let Some(limit) = page.limit {
            query.push(("limit", limit.to_string()));
        }
        let mut cursor = page.cursor.clone();
        let mut all = Vec::new();
        loop {
            let mut q = query.clone();
            push(&mut q, "cursor", cursor.take());
            let mut resp = self.get(path, &q).await?;
            if !page.all {
                return Ok(resp);
            }
            match resp.get_mut("data").map(Value::take) {
                Some(Value::Array(items)) => all.extend(items),
                _ => bail!("unexpected response from the server: no `data` list"),
            }
            match resp.get("next_cursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(json!({ "data": all, "next_cursor": null })),
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, endpoint(&self.base, path, query))
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json, application/problem+json");
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (retry_after, location) = (header(RETRY_AFTER), header(LOCATION));
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_redirection() {
            bail!(
                "the server at {} answered with a redirect{}; check --url / LATCHKEY_URL",
                display_url(&self.base),
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            );
        }
        if !status.is_success() {
            bail!(problem_message(status, &bytes, retry_after.as_deref()));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|_| {
            anyhow!(
                "the server at {} sent a response that is not JSON (HTTP {status}); is it a Latchkey server?",
                display_url(&self.base)
            )
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let at = display_url(&self.base);
        let mut cause: &dyn std::error::Error = e;
        while let Some(source) = cause.source() {
            cause = source;
        }
        if e.is_timeout() {
            anyhow!("timed out waiting for the Latchkey server at {at}")
        } else if e.is_connect() {
            anyhow!("cannot connect to the Latchkey server at {at}: {cause}")
        } else {
            anyhow!("request to the Latchkey server at {at} failed: {cause}")
        }
    }
}

fn parse_base_url(raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| anyhow!("invalid server URL {raw:?} (LATCHKEY_URL / --url): {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        bail!("invalid server URL {raw:?} (LATCHKEY_URL / --url): must start with http:// or https://");
    }
    Ok(url)
}

/// The base URL plus percent-encoded path segments, so an id can never change the route.
fn endpoint(base: &Url, path: &[&str], query: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path);
    }
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (k, v)));
    }
    url
}

/// The URL as it may appear in messages: without any user name or password in it.
fn display_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The error message for a failed request: the problem's `detail` (plus field errors for a 422),
/// falling back to its `title` and then to the HTTP status when the body is not problem+json.
fn problem_message(status: StatusCode, body: &[u8], retry_after: Option<&str>) -> String {
    let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |field: &str| {
        problem
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let mut message = match text("detail").or_else(|| text("title")) {
        Some(detail) => detail.to_owned(),
        None => format!("the server answered HTTP {status}"),
    };
    let field_errors: Vec<String> = problem
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let msg = e.get("message").and_then(Value::as_str)?;
            Some(match e.get("field").and_then(Value::as_str) {
                Some(field) if !field.is_empty() => format!("{field}: {msg}"),
                _ => msg.to_owned(),
            })
        })
        .collect();
    if !field_errors.is_empty() {
        message = format!("{message}: {}", field_errors.join("; "));
    }
    if let Some(secs) = retry_after.filter(|_| status == StatusCode::TOO_MANY_REQUESTS) {
        message.push_str(&format!(" (retry after {secs} seconds)"));
    }
    message
}

// ---- output --------------------------------------------------------------------------------

/// Prints the raw response for `--json`, else the text for people.
fn show(json: bool, response: &Value, text: String) -> Result<()> {
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(response)?))
    } else {
        emit(&text)
    }
}

/// For 204 answers: nothing for scripts (the exit status says it), a confirmation for people.
fn done(json: bool, text: String) -> Result<()> {
    if json {
        Ok(())
    } else {
        emit(&format!("{text}\n"))
    }
}

fn show_list(json: bool, page: &Value, noun: &str, table: fn(&[Value]) -> Table) -> Result<()> {
    if json {
        return show(true, page, String::new());
    }
    let items = page
        .get("data")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let table = table(items);
    if table.is_empty() {
        emit(&format!("no {noun}\n"))?;
    } else {
        emit(&table.to_string())?;
    }
    if let Some(next) = page.get("next_cursor").and_then(Value::as_str) {
        eprintln!("more {noun}: add --cursor {next} for the next page, or --all");
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`latchkey keys list | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The show-once message after create and roll; the key stands on a line of its own.
fn new_key_message(created: &Value, verb: &str) -> Result<String> {
    let key = created
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server's response has no `key`"))?;
    Ok(format!(
        "{verb} {} key {} \"{}\" ({}).\n\n    {}\n\n\
         Copy this key now and keep it secret: it cannot be shown again.\n",
        text(created, "type"),
        text(created, "id"),
        text(created, "name"),
        text(created, "environment"),
        printable(key),
    ))
}

fn access_token(response: &Value) -> Result<&str> {
    response
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server's response has no `access_token`"))
}

/// The message after an exchange: the token on a line of its own, when it expires, what it may do.
fn access_token_message(token: &Value, now: DateTime<Utc>) -> Result<String> {
    let jwt = access_token(token)?;
    let expiry = match token.get("expires_in").and_then(Value::as_i64) {
        None => String::new(),
        Some(secs) => {
            let at = TimeDelta::try_seconds(secs)
                .and_then(|d| now.checked_add_signed(d))
                .map(|t| format!(" ({})", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            format!(
                ", expires in {}{at}",
                duration(u64::try_from(secs).unwrap_or(0))
            )
        }
    };
    let scope = match token.get("scope").and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => printable(s),
        _ => "none".to_owned(),
    };
    Ok(format!(
        "{} access token{expiry}:\n\n    {}\n\nScope: {scope}\n\
         Copy this token now and keep it secret: it cannot be shown again.\n",
        text(token, "token_type"),
        printable(jwt),
    ))
}

/// The show-once message after create and renew; the token stands on a line of its own.
fn new_token_message(created: &Value, verb: &str) -> Result<String> {
    let jwt = access_token(created)?;
    Ok(format!(
        "{verb} {} token {} \"{}\" (expires {}).\n\n    {}\n\n\
         Copy this token now and keep it secret: it cannot be shown again.\n",
        text(created, "environment"),
        text(created, "id"),
        printable(&text(created, "name")),
        time(created, "expires_at", "never"),
        printable(jwt),
    ))
}

fn token_table(tokens: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "ENV", "STATUS", "EXPIRES", "CREATED"]);
    for k in tokens {
        t.row(vec![
            text(k, "id"),
            text(k, "name"),
            text(k, "environment"),
            text(k, "status"),
            time(k, "expires_at", "never"),
            time(k, "created_at", "-"),
        ]);
    }
    t
}

fn key_table(keys: &[Value]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "KEY",
        "TYPE",
        "ENV",
        "STATUS",
        "LAST USED",
        "EXPIRES",
        "CREATED",
    ]);
    for k in keys {
        t.row(vec![
            text(k, "id"),
            text(k, "name"),
            text(k, "redacted"),
            text(k, "type"),
            text(k, "environment"),
            text(k, "status"),
            time(k, "last_used_at", "never"),
            time(k, "expires_at", "never"),
            time(k, "created_at", "-"),
        ]);
    }
    t
}

fn key_details(k: &Value) -> String {
    let permissions = match k.get("permissions") {
        Some(Value::Array(_)) => text(k, "permissions"),
        _ => "all of the owner's".into(),
    };
    fields(&[
        ("ID", text(k, "id")),
        ("Name", text(k, "name")),
        ("Key", text(k, "redacted")),
        ("Type", text(k, "type")),
        ("Environment", text(k, "environment")),
        ("Status", text(k, "status")),
        ("Enabled", text(k, "enabled")),
        ("Workspace", text(k, "workspace_id")),
        ("Owner", text(k, "owner_id")),
        ("Permissions", permissions),
        ("Allowed origins", text(k, "allowed_origins")),
        ("Allowed IPs", text(k, "allowed_ips")),
        ("Metadata", text(k, "metadata")),
        ("Last used", time(k, "last_used_at", "never")),
        ("Expires", time(k, "expires_at", "never")),
        ("Revoked", time(k, "revoked_at", "-")),
        ("Created", time(k, "created_at", "-")),
        ("Updated", time(k, "updated_at", "-")),
    ])
}

fn user_table(users: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "EMAIL", "NAME", "ACTIVE", "INSTANCE ROLE", "CREATED"]);
    for u in users {
        t.row(vec![
            text(u, "id"),
            text(u, "email"),
            text(u, "name"),
            text(u, "active"),
            text(u, "instance_role"),
            time(u, "created_at", "-"),
        ]);
    }
    t
}

fn user_details(u: &Value) -> String {
    fields(&[
        ("ID", text(u, "id")),
        ("Email", text(u, "email")),
        ("Name", text(u, "name")),
        ("Active", text(u, "active")),
        ("Instance role", text(u, "instance_role")),
        ("Created", time(u, "created_at", "-")),
    ])
}

fn workspace_table(workspaces: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "REQUIRE PAIR", "MAX KEY TTL", "CREATED"]);
    for w in workspaces {
        t.row(vec![
            text(w, "id"),
            text(w, "name"),
            text(w, "require_pair"),
            ttl(w),
            time(w, "created_at", "-"),
        ]);
    }
    t
}

fn workspace_details(w: &Value) -> String {
    fields(&[
        ("ID", text(w, "id")),
        ("Name", text(w, "name")),
        ("Require pair", text(w, "require_pair")),
        (
            "Publishable permissions",
            text(w, "publishable_permissions"),
        ),
        ("Max key TTL", ttl(w)),
        ("Created", time(w, "created_at", "-")),
        ("Updated", time(w, "updated_at", "-")),
    ])
}

fn member_table(members: &[Value]) -> Table {
    let mut t = Table::new(&["USER ID", "EMAIL", "NAME", "ROLE", "ACTIVE", "ADDED"]);
    for m in members {
        t.row(vec![
            text(m, "user_id"),
            text(m, "email"),
            text(m, "name"),
            text(m, "role"),
            text(m, "active"),
            time(m, "created_at", "-"),
        ]);
    }
    t
}

/// A field as people read it: `-` for absent or null, yes/no, lists joined by commas.
fn text(v: &Value, field: &str) -> String {
    match v.get(field) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// An RFC 3339 timestamp shortened to UTC minutes; `none` when null.
fn time(v: &Value, field: &str, none: &str) -> String {
    match v.get(field).and_then(Value::as_str) {
        None => none.into(),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| {
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| s.to_owned()),
    }
}

fn ttl(w: &Value) -> String {
    w.get("max_key_ttl_seconds")
        .and_then(Value::as_u64)
        .map_or_else(|| "none".into(), duration)
}

/// Seconds in the largest whole unit: `90d`, `12h`, `90s`.
fn duration(s: u64) -> String {
    match s {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        client: ClientOpts,
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Subcommand)]
    enum TestCommand {
        #[command(subcommand)]
        Keys(KeysCommand),
        #[command(subcommand)]
        Tokens(TokensCommand),
        #[command(subcommand)]
        Users(UsersCommand),
        #[command(subcommand)]
        Workspaces(WorkspacesCommand),
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("latchkey").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches)
    }

    fn keys_cmd(args: &[&str]) -> KeysCommand {
        match parse(args).unwrap().command {
            TestCommand::Keys(k) => k,
            _ => panic!("not a keys command"),
        }
    }

    fn tokens_cmd(args: &[&str]) -> TokensCommand {
        match parse(args).unwrap().command {
            TestCommand::Tokens(t) => t,
            _ => panic!("not a tokens command"),
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn users_take_an_instance_role_and_none_takes_it_away() {
        let users = |args: &[&str]| match parse(args).unwrap().command {
            TestCommand::Users(u) => u,
            _ => panic!("not a users command"),
        };
        let UsersCommand::Create { instance_role, .. } = users(&[
            "users",
            "create",
            "--email",
            "gw@example.com",
            "--name",
            "Gateway",
            "--instance-role",
            "verifier",
        ]) else {
            panic!("not create")
        };
        assert_eq!(instance_role.as_deref(), Some("verifier"));
        assert!(parse(&[
            "users",
            "create",
            "--email",
            "a@b.c",
            "--name",
            "A",
            "--instance-role",
            "none"
        ])
        .is_err());
        for (flag, wanted) in [
            ("admin", json!({"instance_role": "admin"})),
            ("verifier", json!({"instance_role": "verifier"})),
            ("none", json!({"instance_role": null})),
        ] {
            let UsersCommand::Update {
                name,
                instance_role,
                ..
            } = users(&["users", "update", "usr_1", "--instance-role", flag])
            else {
                panic!("not update")
            };
            assert_eq!(update_user_body(name, instance_role).unwrap(), wanted);
        }
        assert!(parse(&["users", "update", "usr_1", "--instance-role", "root"]).is_err());
        assert_eq!(
            update_user_body(Some("Ada".into()), None).unwrap(),
            json!({"name": "Ada"})
        );
        assert!(update_user_body(None, None).is_err());
    }

    #[test]
    fn create_body_has_only_given_fields() {
        let KeysCommand::Create(args) = keys_cmd(&[
            "keys",
            "create",
            "--name",
            "ci",
            "--type",
            "publishable",
            "--permission",
            "docs:read",
            "--permission",
            "docs:write",
            "--expires-at",
            "2030-01-01T02:00:00+02:00",
            "--metadata",
            r#"{"team":"a"}"#,
            "--json",
        ]) else {
            panic!("not create")
        };
        assert_eq!(
            create_key_body(args),
            json!({
                "name": "ci", "type": "publishable", "permissions": ["docs:read", "docs:write"],
                "expires_at": "2030-01-01T00:00:00Z", "metadata": {"team": "a"},
            })
        );
    }

    #[test]
    fn bad_values_are_refused_before_any_request() {
        assert!(parse(&["keys", "create", "--name", "x", "--type", "private"]).is_err());
        assert!(parse(&["keys", "create", "--name", "x", "--expires-at", "tomorrow"]).is_err());
        assert!(parse(&["keys", "create", "--name", "x", "--metadata", "{"]).is_err());
        assert!(parse(&["keys", "list", "--limit", "501"]).is_err());
        assert!(parse(&["keys", "roll", "key_1", "--grace-seconds", "604801"]).is_err());
        assert!(parse(&["workspaces", "set-role", "ws_1", "admin"]).is_err());
    }

    #[test]
    fn token_bodies_have_only_given_fields() {
        let TokensCommand::Exchange(args) = tokens_cmd(&[
            "tokens",
            "exchange",
            "--ttl-seconds",
            "600",
            "--permission",
            "docs:read",
            "--permission",
            "docs:write",
        ]) else {
            panic!("not exchange")
        };
        assert_eq!(
            exchange_body(args),
            json!({ "ttl_seconds": 600, "permissions": ["docs:read", "docs:write"] })
        );
        let TokensCommand::Exchange(args) = tokens_cmd(&["tokens", "exchange"]) else {
            panic!("not exchange")
        };
        assert_eq!(exchange_body(args), json!({}));

        let TokensCommand::Create(args) = tokens_cmd(&[
            "tokens",
            "create",
            "--name",
            "deploy",
            "--environment",
            "live",
            "--ttl-seconds",
            "86400",
        ]) else {
            panic!("not create")
        };
        assert_eq!(
            create_token_body(args),
            json!({ "name": "deploy", "environment": "live", "ttl_seconds": 86_400 })
        );
        let TokensCommand::Create(args) = tokens_cmd(&["tokens", "create", "--name", "x"]) else {
            panic!("not create")
        };
        assert_eq!(create_token_body(args), json!({ "name": "x" }));
    }

    #[test]
    fn bad_token_values_are_refused_before_any_request() {
        assert!(parse(&["tokens", "create"]).is_err());
        assert!(parse(&["tokens", "create", "--name", "x", "--environment", "prod"]).is_err());
        assert!(parse(&["tokens", "create", "--name", "x", "--ttl-seconds", "0"]).is_err());
        assert!(parse(&["tokens", "exchange", "--ttl-seconds", "-5"]).is_err());
        assert!(parse(&["tokens", "exchange", "--ttl-seconds", "1h"]).is_err());
        assert!(parse(&["tokens", "list", "--limit", "0"]).is_err());
        assert!(parse(&["tokens", "renew"]).is_err());
        assert!(parse(&["tokens", "revoke"]).is_err());
        let TokensCommand::List { page } =
            tokens_cmd(&["tokens", "list", "--limit", "10", "--all", "--json"])
        else {
            panic!("not list")
        };
        assert_eq!((page.limit, page.all), (Some(10), true));
        let TokensCommand::Renew { id } = tokens_cmd(&["tokens", "renew", "tok_1"]) else {
            panic!("not renew")
        };
        assert_eq!(id, "tok_1");
    }

    #[test]
    fn update_body_and_empty_update() {
        let KeysCommand::Update(args) =
            keys_cmd(&["keys", "update", "key_1", "--enabled", "false"])
        else {
            panic!("not update")
        };
        assert_eq!(update_key_body(args).unwrap(), json!({ "enabled": false }));
        let KeysCommand::Update(args) = keys_cmd(&["keys", "update", "key_1"]) else {
            panic!("not update")
        };
        assert!(update_key_body(args).is_err());
    }

    #[test]
    fn json_flag_is_global_and_api_key_is_hidden_from_debug() {
        let cli = parse(&["keys", "list", "--json", "--all"]).unwrap();
        assert!(cli.client.json);
        let opts = ClientOpts {
            url: "http://x".into(),
            api_key: Some("sk_live_secret".into()),
            json: false,
        };
        assert!(!format!("{opts:?}").contains("sk_live_secret"));
    }

    #[tokio::test]
    async fn missing_api_key_fails_before_any_request() {
        let opts = ClientOpts {
            url: "http://127.0.0.1:1".into(),
            api_key: None,
            json: false,
        };
        let cmd = ClientCommand::Keys(KeysCommand::Get { id: "key_1".into() });
        let err = run(&opts, cmd).await.unwrap_err();
        assert_eq!(err.to_string(), "LATCHKEY_API_KEY is not set");
    }

    #[tokio::test]
    async fn connection_failure_names_the_url_but_not_the_key() {
        let opts = ClientOpts {
            url: "http://127.0.0.1:1".into(),
            api_key: Some("sk_test_notreallyakey".into()),
            json: false,
        };
        let cmd = ClientCommand::Keys(KeysCommand::Get { id: "key_1".into() });
        let err = run(&opts, cmd).await.unwrap_err().to_string();
        assert!(err.contains("http://127.0.0.1:1/"), "{err}");
        assert!(!err.contains("notreallyakey"), "{err}");
    }

    #[test]
    fn problem_detail_is_the_message() {
        let body = br#"{"type":"about:blank","title":"Unauthorized","status":401,
            "detail":"Invalid or missing API key","code":"invalid_credentials"}"#;
        assert_eq!(
            problem_message(StatusCode::UNAUTHORIZED, body, None),
            "Invalid or missing API key"
        );
    }

    #[test]
    fn validation_problem_lists_field_errors() {
        let body = br#"{"status":422,"title":"Unprocessable Entity","detail":"Validation failed",
            "errors":[{"field":"name","message":"must be 1 to 100 characters"},
                      {"field":"expires_at","message":"must be in the future"}]}"#;
        assert_eq!(
            problem_message(StatusCode::UNPROCESSABLE_ENTITY, body, None),
            "Validation failed: name: must be 1 to 100 characters; expires_at: must be in the future"
        );
    }

    #[test]
    fn non_problem_bodies_fall_back_to_title_then_status() {
        assert_eq!(
            problem_message(StatusCode::NOT_FOUND, br#"{"title":"Not Found"}"#, None),
            "Not Found"
        );
        assert_eq!(
            problem_message(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None),
            "the server answered HTTP 502 Bad Gateway"
        );
        assert_eq!(
            problem_message(
                StatusCode::TOO_MANY_REQUESTS,
                br#"{"detail":"Rate limit exceeded"}"#,
                Some("3")
            ),
            "Rate limit exceeded (retry after 3 seconds)"
        );
    }

    #[test]
    fn endpoints_encode_ids_and_keep_a_base_path() {
        let base = parse_base_url("https://api.example.com/latchkey/").unwrap();
        let url = endpoint(
            &base,
            &["v1", "keys", "key_1/../x?y"],
            &[("status", "active".into())],
        );
        assert_eq!(
            url.as_str(),
            "https://api.example.com/latchkey/v1/keys/key_1%2F..%2Fx%3Fy?status=active"
        );
        let base = parse_base_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            endpoint(&base, &["v1", "users"], &[]).as_str(),
            "http://127.0.0.1:8080/v1/users"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
        let secret = parse_base_url("https://u:p@h.example/").unwrap();
        assert_eq!(display_url(&secret), "https://h.example/");
        assert!(is_loopback(&base) && !is_loopback(&secret));
    }

    #[test]
    fn key_table_renders_the_list_columns() {
        let keys = [json!({
            "id": "key_1", "name": "ci", "redacted": "sk_live_…AbCd", "type": "secret",
            "environment": "live", "status": "active", "last_used_at": null,
            "expires_at": "2030-01-01T00:00:00Z", "created_at": "2024-05-01T12:34:56.789Z",
        })];
        assert_eq!(
            key_table(&keys).to_string(),
            "ID     NAME  KEY            TYPE    ENV   STATUS  LAST USED  EXPIRES               CREATED\n\
             key_1  ci    sk_live_…AbCd  secret  live  active  never      2030-01-01 00:00 UTC  2024-05-01 12:34 UTC\n"
        );
    }

    #[test]
    fn new_key_is_shown_once_with_a_warning() {
        let created = json!({
            "id": "key_1", "name": "ci", "type": "secret", "environment": "test",
            "key": "sk_test_abc", "redacted": "sk_test_…", "permissions": null,
        });
        let text = new_key_message(&created, "Created").unwrap();
        assert!(text.starts_with("Created secret key key_1 \"ci\" (test).\n\n    sk_test_abc\n\n"));
        assert!(text.contains("cannot be shown again"));
        assert!(new_key_message(&json!({ "id": "key_1" }), "Created").is_err());
    }

    #[test]
    fn token_table_renders_the_list_columns() {
        let tokens = [
            json!({
                "id": "tok_1", "name": "deploy", "environment": "live", "key_id": "key_1",
                "status": "active", "created_at": "2024-05-01T12:34:56Z",
                "expires_at": "2024-05-31T12:34:56Z", "revoked_at": null,
            }),
            json!({
                "id": "tok_22", "name": null, "environment": "test", "key_id": "key_1",
                "status": "revoked", "created_at": "2024-05-01T12:34:56Z",
                "expires_at": "2024-05-31T12:34:56Z", "revoked_at": "2024-05-02T00:00:00Z",
            }),
        ];
        assert_eq!(
            token_table(&tokens).to_string(),
            "ID      NAME    ENV   STATUS   EXPIRES               CREATED\n\
             tok_1   deploy  live  active   2024-05-31 12:34 UTC  2024-05-01 12:34 UTC\n\
             tok_22  -       test  revoked  2024-05-31 12:34 UTC  2024-05-01 12:34 UTC\n"
        );
    }

    #[test]
    fn new_token_is_shown_once_with_a_warning() {
        let created = json!({
            "access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 2_592_000,
            "id": "tok_2", "name": "deploy\u{1b}[31m", "environment": "live", "key_id": "key_1",
            "status": "active", "created_at": "2024-05-01T12:34:56Z",
            "expires_at": "2024-05-31T12:34:56Z", "revoked_at": null,
        });
        let text = new_token_message(&created, "Renewed tok_1 into").unwrap();
        assert_eq!(
            text,
            "Renewed tok_1 into live token tok_2 \"deploy?[31m\" (expires 2024-05-31 12:34 UTC).\n\n    \
             eyJ.abc.def\n\n\
             Copy this token now and keep it secret: it cannot be shown again.\n"
        );
        assert!(new_token_message(&json!({ "id": "tok_2" }), "Created").is_err());
    }

    #[test]
    fn exchanged_token_shows_expiry_and_scope() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token = json!({
            "access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 3600,
            "scope": "docs:read docs:write",
        });
        assert_eq!(
            access_token_message(&token, now).unwrap(),
            "Bearer access token, expires in 1h (2024-05-01 13:00 UTC):\n\n    eyJ.abc.def\n\n\
             Scope: docs:read docs:write\n\
             Copy this token now and keep it secret: it cannot be shown again.\n"
        );
        let narrow = json!({
            "access_token": "eyJ.x.y", "token_type": "Bearer", "expires_in": 90, "scope": "",
        });
        let text = access_token_message(&narrow, now).unwrap();
        assert!(
            text.starts_with("Bearer access token, expires in 90s (2024-05-01 12:01 UTC):\n"),
            "{text}"
        );
        assert!(text.contains("\nScope: none\n"), "{text}");
        assert!(access_token_message(&json!({ "expires_in": 60 }), now).is_err());
    }

    #[test]
    fn field_values_read_naturally() {
        let v = json!({
            "a": null, "b": true, "c": ["x", "y"], "d": [], "e": {"k": 1}, "f": 3,
            "max_key_ttl_seconds": 7_776_000, "t": "not a time",
        });
        assert_eq!(
            ["a", "b", "c", "d", "e", "f", "missing"].map(|f| text(&v, f)),
            ["-", "yes", "x, y", "-", r#"{"k":1}"#, "3", "-"]
        );
        assert_eq!(ttl(&v), "90d");
        assert_eq!(ttl(&json!({ "max_key_ttl_seconds": 90 })), "90s");
        assert_eq!([0, 7_200, 5_400].map(duration), ["0s", "2h", "5400s"]);
        assert_eq!(time(&v, "t", "never"), "not a time");
        assert_eq!(time(&v, "a", "never"), "never");
        let details = key_details(&json!({ "id": "key_1", "permissions": null }));
        assert!(
            details.contains("Permissions      all of the owner's\n"),
            "{details}"
        );
    }
}
