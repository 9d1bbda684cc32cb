//! The client commands of the `latchkey` binary (`keys`, `tokens`, `users`, `workspaces`,
//! `portal`): thin
//! wrappers over the typed client of `latchkey-client`, printing tables for people and the
//! server's JSON, as received, for scripts.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, TimeDelta, Utc};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{value_parser, Args, Subcommand};
use latchkey_client::{Call, Client, ClientError, ClientOptions};
use latchkey_core::credits::{Credits, Interval, Refill};
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::roles::InstanceRole;
use latchkey_core::{Environment, KeyType, Permission, Secret};
use latchkey_proto::keys::{CreateKey, CreatedKey, Key, KeyFilter, KeyStatus, RollKey, UpdateKey};
use latchkey_proto::portal::{CreatePortalSession, PortalSession};
use latchkey_proto::tokens::{AccessToken, CreateToken, CreatedToken, Exchange, Token};
use latchkey_proto::users::{CreateUser, UpdateUser, User, UserFilter};
use latchkey_proto::workspaces::{
    CreateGrant, CreateWorkspace, Member, PutMember, PutRole, Workspace,
};
use latchkey_proto::{List, Page, Patch, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::table::{fields, printable, Table};
use crate::words::{refill_words, LimitRow};

// Where the server is and how to authenticate to it; shared by every client command.
#[derive(Clone, Args)]
pub struct ClientOpts {
    /// Base URL of the Latchkey server
    #[arg(long, env = "LATCHKEY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key the client commands authenticate with
    #[arg(long, env = "LATCHKEY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Trust the CA certificates in this PEM file besides the built-in roots (a server whose
    /// certificate comes from a private CA)
    #[arg(long, env = "LATCHKEY_CACERT", value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
    /// Print JSON for scripts instead of text for people
    #[arg(long, global = true)]
    pub json: bool,
}

impl fmt::Debug for ClientOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOpts")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("cacert", &self.cacert)
            .field("json", &self.json)
            .finish()
    }
}

pub enum ClientCommand {
    Keys(KeysCommand),
    Portal(PortalCommand),
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

impl PageArgs {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
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
    /// Import keys issued elsewhere, from CSV or JSON Lines, so their holders keep using them
    Import(super::import::ImportArgs),
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// A name to recognise the key by (1 to 100 characters)
    #[arg(long)]
    pub name: String,
    /// secret for servers, publishable for browser and mobile code (default: secret)
    #[arg(long = "type", value_parser = key_type())]
    pub key_type: Option<KeyType>,
    /// Environment of the key (default: the environment of the API key in use)
    #[arg(long, value_parser = environment())]
    pub environment: Option<Environment>,
    /// Workspace of the key (default: the workspace of the API key in use)
    #[arg(long)]
    pub workspace_id: Option<String>,
    /// Owner of the key (default: the caller; another user needs latchkey:keys:manage_all)
    #[arg(long)]
    pub owner_id: Option<String>,
    /// Restrict the key to this permission (repeatable; default: all of the owner's)
    #[arg(long = "permission", value_name = "PERMISSION", value_parser = parse_permission)]
    pub permissions: Vec<Permission>,
    #[command(flatten)]
    pub restrictions: KeyRestrictions,
}

// The settings `create` and `update` share.
#[derive(Debug, Args)]
pub struct KeyRestrictions {
    /// Expiry time, RFC 3339 (e.g. 2030-01-01T00:00:00Z)
    #[arg(long, value_parser = parse_rfc3339)]
    pub expires_at: Option<Timestamp>,
    /// Allow browser requests only from this origin (repeatable)
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Allow requests only from this IP network (repeatable)
    #[arg(long = "allowed-ip", value_name = "CIDR")]
    pub allowed_ips: Vec<String>,
    /// Arbitrary JSON object stored with the key and returned by verify
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub metadata: Option<Value>,
    #[command(flatten)]
    pub metering: Metering,
}

/// Rate limits and credits, as a key or a member (shared by all of a user's keys and tokens
/// in the workspace) holds them.
#[derive(Debug, Args)]
pub struct Metering {
    /// A rate limit, NAME=LIMIT/WINDOW_SECONDS (e.g. burst=100/60), charged on every
    /// verification; add ",manual" for one charged only when a verify request names it
    /// (repeatable; on update, replaces the limits)
    #[arg(long = "ratelimit", value_name = "NAME=LIMIT/SECONDS", value_parser = parse_ratelimit)]
    pub ratelimits: Vec<NamedLimit>,
    /// Credits, one spent per successful verification; `unlimited` on update removes them
    #[arg(long, value_name = "N|unlimited", value_parser = parse_credits)]
    pub credits: Option<Balance>,
    /// Refill the credits to AMOUNT daily (00:00 UTC) or monthly (on DAY, default 1; 31 is
    /// the month's last day): daily:AMOUNT or monthly:AMOUNT[:DAY]
    #[arg(long, value_name = "daily:AMOUNT|monthly:AMOUNT[:DAY]", value_parser = parse_refill, requires = "credits")]
    pub refill: Option<Refill>,
}

/// `--credits`: a balance, or `None` for unlimited. A type of its own: clap reads a field of
/// type `Option<Option<T>>` as a flag whose value may be left out, and the `--credits 5` it
/// then parses did not fit (a panic before any request was sent).
#[derive(Debug, Clone, Copy)]
pub struct Balance(Option<i64>);

fn parse_credits(s: &str) -> std::result::Result<Balance, String> {
    if s == "unlimited" {
        return Ok(Balance(None));
    }
    s.parse()
        .map(|n| Balance(Some(n)))
        .map_err(|_| format!("expected a number of credits or `unlimited`: {s:?}"))
}

/// `daily:1000`, `monthly:50000` or `monthly:50000:15`.
fn parse_refill(s: &str) -> std::result::Result<Refill, String> {
    let bad = || format!("expected daily:AMOUNT or monthly:AMOUNT[:DAY]: {s:?}");
    let mut parts = s.split(':');
    let interval = match parts.next() {
        Some("daily") => Interval::Daily,
        Some("monthly") => Interval::Monthly,
        _ => return Err(bad()),
    };
    let amount = parts.next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
    let day = match parts.next() {
        Some(d) if interval == Interval::Monthly => Some(d.parse().map_err(|_| bad())?),
        Some(_) => return Err(bad()),
        None => None,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Refill {
        interval,
        amount,
        day,
    })
}

fn credits_of(r: &Metering) -> Option<Option<Credits>> {
    r.credits.map(|Balance(c)| {
        c.map(|remaining| Credits {
            remaining,
            refill: r.refill,
        })
    })
}

/// `burst=100/60` or `tokens=1000/3600,manual`.
fn parse_ratelimit(s: &str) -> std::result::Result<NamedLimit, String> {
    let (spec, auto_apply) = match s.strip_suffix(",manual") {
        Some(spec) => (spec, false),
        None => (s, true),
    };
    let bad = || format!("expected NAME=LIMIT/WINDOW_SECONDS[,manual], e.g. burst=100/60: {s:?}");
    let (name, rate) = spec.split_once('=').ok_or_else(bad)?;
    let (limit, window) = rate.split_once('/').ok_or_else(bad)?;
    Ok(NamedLimit {
        name: name.trim().to_owned(),
        limit: limit.trim().parse().map_err(|_| bad())?,
        window_seconds: window
            .trim()
            .trim_end_matches('s')
            .parse()
            .map_err(|_| bad())?,
        auto_apply,
    })
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
    #[arg(long, value_parser = environment())]
    pub environment: Option<Environment>,
    /// Only keys in this state
    #[arg(long, value_parser = key_status())]
    pub status: Option<KeyStatus>,
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
    #[arg(long = "permission", value_name = "PERMISSION", value_parser = parse_permission)]
    pub permissions: Vec<Permission>,
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
    #[arg(long = "permission", value_name = "PERMISSION", value_parser = parse_permission)]
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    /// A name to recognise the token by (1 to 100 characters)
    #[arg(long)]
    pub name: String,
    /// Environment of the token: must be that of the API key in use (the default)
    #[arg(long, value_parser = environment())]
    pub environment: Option<Environment>,
    /// Lifetime in seconds (default 30 days; at most the server's maximum, 365 days by default)
    #[arg(long, value_parser = value_parser!(i64).range(1..))]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Make a single-use link, valid five minutes, that signs a member into the dashboard
    /// without a password (printed once); needs latchkey:keys:manage_all
    Create(CreatePortalArgs),
}

#[derive(Debug, Args)]
pub struct CreatePortalArgs {
    /// The person the link signs in (usr_…): an active member of the workspace
    #[arg(long)]
    pub user_id: String,
    /// The workspace they are signed into (ws_…)
    #[arg(long)]
    pub workspace_id: String,
    /// Where the dashboard's "Back to …" link goes: an absolute http or https URL
    #[arg(long, value_name = "URL")]
    pub return_url: Option<String>,
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
        #[arg(long, value_parser = instance_role())]
        instance_role: Option<InstanceRole>,
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
        #[arg(long, value_parser = instance_role_or_none())]
        instance_role: Option<Patch<InstanceRole>>,
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
        /// Limits and credits shared by all of the member's keys and tokens in the workspace;
        /// left as they are unless given
        #[command(flatten)]
        metering: Metering,
    },
    /// Remove a user from a workspace
    RemoveMember { id: String, user_id: String },
    /// Replace the permissions of a role in a workspace
    SetRole {
        id: String,
        role: String,
        /// A permission of the role (repeatable)
        #[arg(long = "permission", value_name = "PERMISSION", required = true, value_parser = parse_permission)]
        permissions: Vec<Permission>,
    },
    /// Grant a permission directly to a member
    Grant {
        id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long, value_parser = parse_permission)]
        permission: Permission,
    },
}

pub async fn run(opts: &ClientOpts, cmd: ClientCommand) -> Result<()> {
    let client = connect(opts)?;
    let json = opts.json;
    let result = match cmd {
        ClientCommand::Keys(cmd) => keys(&client, json, cmd).await,
        ClientCommand::Portal(cmd) => portal(&client, json, cmd).await,
        ClientCommand::Tokens(cmd) => tokens(&client, json, cmd).await,
        ClientCommand::Users(cmd) => users(&client, json, cmd).await,
        ClientCommand::Workspaces(cmd) => workspaces(&client, json, cmd).await,
    };
    result.map_err(|e| explain(e, opts))
}

async fn keys(client: &Client, json: bool, cmd: KeysCommand) -> Result<()> {
    let keys = client.keys();
    match cmd {
        KeysCommand::Create(args) => {
            let call = keys.create(&create_key_body(args));
            show(json, call, |created| new_key_message(created, "Created")).await
        }
        KeysCommand::List(args) => {
            let filter = KeyFilter {
                workspace_id: args.workspace_id,
                owner_id: args.owner_id,
                environment: args.environment,
                status: args.status,
                page: args.page.page(),
            };
            let call = keys.list(&filter);
            show_list(json, call, args.page.all, "keys", key_table).await
        }
        KeysCommand::Get { id } => show(json, keys.get(&id), key_details).await,
        KeysCommand::Update(args) => {
            let id = args.id.clone();
            let body = update_key_body(args)?;
            show(json, keys.update(&id, &body), key_details).await
        }
        KeysCommand::Roll { id, grace_seconds } => {
            let call = keys.roll(&id, &RollKey { grace_seconds });
            show(json, call, |rolled| {
                let mut text = new_key_message(rolled, &format!("Rolled {id} into"));
                if let Some(s) = grace_seconds {
                    text.push_str(&format!("The old key stops working in {s} seconds.\n"));
                }
                text
            })
            .await
        }
        KeysCommand::Revoke { id } => {
            keys.revoke(&id).await?;
            done(json, format!("revoked {id}"))
        }
        KeysCommand::Import(args) => super::import::run(client, json, args).await,
    }
}

async fn tokens(client: &Client, json: bool, cmd: TokensCommand) -> Result<()> {
    let tokens = client.tokens();
    match cmd {
        TokensCommand::Exchange(args) => {
            let call = tokens.exchange(&exchange_body(args));
            show(json, call, |token| access_token_message(token, Utc::now())).await
        }
        TokensCommand::Create(args) => {
            let call = tokens.create(&create_token_body(args));
            show(json, call, |created| new_token_message(created, "Created")).await
        }
        TokensCommand::List { page } => {
            let call = tokens.list(&page.page());
            show_list(json, call, page.all, "tokens", token_table).await
        }
        TokensCommand::Renew { id } => {
            show(json, tokens.renew(&id), |renewed| {
                let mut text = new_token_message(renewed, &format!("Renewed {id} into"));
                text.push_str(&format!("The old token {id} has stopped working.\n"));
                text
            })
            .await
        }
        TokensCommand::Revoke { id } => {
            tokens.revoke(&id).await?;
            done(json, format!("revoked {id}"))
        }
    }
}

async fn portal(client: &Client, json: bool, cmd: PortalCommand) -> Result<()> {
    match cmd {
        PortalCommand::Create(args) => {
            let body = CreatePortalSession {
                user_id: args.user_id,
                workspace_id: args.workspace_id,
                return_url: args.return_url,
            };
            show(json, client.portal_session(&body), portal_message).await
        }
    }
}

async fn users(client: &Client, json: bool, cmd: UsersCommand) -> Result<()> {
    let users = client.users();
    match cmd {
        UsersCommand::Create {
            email,
            name,
            password,
            instance_role,
        } => {
            let body = CreateUser {
                email,
                name,
                password: password.map(Secret::new),
                instance_role,
            };
            show(json, users.create(&body), user_details).await
        }
        UsersCommand::Update {
            id,
            name,
            instance_role,
        } => {
            let body = update_user_body(name, instance_role)?;
            show(json, users.update(&id, &body), user_details).await
        }
        UsersCommand::List { workspace_id, page } => {
            let filter = UserFilter {
                workspace_id,
                page: page.page(),
            };
            show_list(json, users.list(&filter), page.all, "users", user_table).await
        }
        UsersCommand::Get { id } => show(json, users.get(&id), user_details).await,
        UsersCommand::Deactivate { id } => {
            users.deactivate(&id).await?;
            done(json, format!("deactivated {id}"))
        }
    }
}

async fn workspaces(client: &Client, json: bool, cmd: WorkspacesCommand) -> Result<()> {
    let workspaces = client.workspaces();
    match cmd {
        WorkspacesCommand::Create { name } => {
            let call = workspaces.create(&CreateWorkspace { name });
            show(json, call, workspace_details).await
        }
        WorkspacesCommand::List { page } => {
            let call = workspaces.list(&page.page());
            show_list(json, call, page.all, "workspaces", workspace_table).await
        }
        WorkspacesCommand::Get { id } => show(json, workspaces.get(&id), workspace_details).await,
        WorkspacesCommand::Members { id, page } => {
            let call = workspaces.members(&id, &page.page());
            show_list(json, call, page.all, "members", member_table).await
        }
        WorkspacesCommand::SetMember {
            id,
            user_id,
            role,
            metering,
        } => {
            let credits = credits_of(&metering);
            let call = workspaces.put_member(
                &id,
                &user_id,
                &PutMember {
                    role: role.clone(),
                    ratelimits: non_empty(metering.ratelimits),
                    credits: credits.map_or(Patch::Keep, Patch::set_or_clear),
                },
            );
            show(json, call, |m: &Member| {
                format!(
                    "{user_id} is now {role} in {id}\nRate limits: {}\nCredits: {}\n",
                    limits_text(&m.ratelimits),
                    credits_text(m.credits.as_ref()),
                )
            })
            .await
        }
        WorkspacesCommand::RemoveMember { id, user_id } => {
            workspaces.remove_member(&id, &user_id).await?;
            done(json, format!("removed {user_id} from {id}"))
        }
        WorkspacesCommand::SetRole {
            id,
            role,
            permissions,
        } => {
            let text = format!("role {role} in {id}: {}\n", list(&permissions));
            let call = workspaces.put_role(&id, &role, &PutRole { permissions });
            show(json, call, |_| text).await
        }
        WorkspacesCommand::Grant {
            id,
            user_id,
            permission,
        } => {
            let body = CreateGrant {
                user_id: user_id.clone(),
                permission: permission.clone(),
            };
            show(json, workspaces.create_grant(&id, &body), |grant| {
                format!("granted {permission} to {user_id} in {id} ({})\n", grant.id)
            })
            .await
        }
    }
}

// ---- request bodies ------------------------------------------------------------------------

fn create_key_body(args: CreateKeyArgs) -> CreateKey {
    let r = args.restrictions;
    let credits = credits_of(&r.metering);
    CreateKey {
        name: args.name,
        key_type: args.key_type,
        environment: args.environment,
        workspace_id: args.workspace_id,
        owner_id: args.owner_id,
        permissions: non_empty(args.permissions),
        expires_at: r.expires_at,
        allowed_origins: non_empty(r.allowed_origins),
        allowed_ips: non_empty(r.allowed_ips),
        credits: credits.flatten(),
        metadata: r.metadata,
        ratelimits: non_empty(r.metering.ratelimits),
    }
}

fn update_key_body(args: UpdateKeyArgs) -> Result<UpdateKey> {
    let r = args.restrictions;
    let credits = credits_of(&r.metering);
    let body = UpdateKey {
        name: args.name,
        enabled: args.enabled,
        permissions: non_empty(args.permissions).map_or(Patch::Keep, Patch::Set),
        expires_at: r.expires_at.map_or(Patch::Keep, Patch::Set),
        allowed_origins: non_empty(r.allowed_origins),
        allowed_ips: non_empty(r.allowed_ips),
        credits: credits.map_or(Patch::Keep, Patch::set_or_clear),
        metadata: r.metadata,
        ratelimits: non_empty(r.metering.ratelimits),
    };
    if body.is_empty() {
        bail!("nothing to update: pass --name, --enabled, --permission, --expires-at, --allowed-origin, --allowed-ip, --metadata, --ratelimit or --credits");
    }
    Ok(body)
}

/// `none` on the command line is [`Patch::Clear`]: `null` in the API, no instance role.
fn update_user_body(
    name: Option<String>,
    instance_role: Option<Patch<InstanceRole>>,
) -> Result<UpdateUser> {
    let body = UpdateUser {
        name,
        instance_role: instance_role.unwrap_or_default(),
    };
    if body.is_empty() {
        bail!("nothing to update: pass --name or --instance-role");
    }
    Ok(body)
}

fn exchange_body(args: ExchangeArgs) -> Exchange {
    Exchange {
        // The key goes in the Authorization header, as for every other command.
        api_key: None,
        ttl_seconds: args.ttl_seconds,
        permissions: non_empty(args.permissions),
    }
}

fn create_token_body(args: CreateTokenArgs) -> CreateToken {
    CreateToken {
        name: args.name,
        environment: args.environment,
        ttl_seconds: args.ttl_seconds,
    }
}

/// A repeatable flag given no times is a field left out, not an empty list.
fn non_empty<T>(values: Vec<T>) -> Option<Vec<T>> {
    (!values.is_empty()).then_some(values)
}

fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 timestamp such as 2030-01-01T00:00:00Z ({e})"))
}

fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON ({e})"))
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    Permission::parse(s).map_err(|e| format!("not a permission such as documents:read ({e})"))
}

fn key_type() -> impl TypedValueParser<Value = KeyType> {
    PossibleValuesParser::new(["secret", "publishable"])
        .map(|s| s.parse().expect("a listed key type"))
}

fn environment() -> impl TypedValueParser<Value = Environment> {
    PossibleValuesParser::new(["test", "live"]).map(|s| s.parse().expect("a listed environment"))
}

fn key_status() -> impl TypedValueParser<Value = KeyStatus> {
    PossibleValuesParser::new(["active", "expired", "revoked", "disabled"])
        .map(|s| s.parse().expect("a listed key status"))
}

fn instance_role() -> impl TypedValueParser<Value = InstanceRole> {
    PossibleValuesParser::new(["admin", "verifier"])
        .map(|s| s.parse().expect("a listed instance role"))
}

fn instance_role_or_none() -> impl TypedValueParser<Value = Patch<InstanceRole>> {
    PossibleValuesParser::new(["admin", "verifier", "none"]).map(|s| match s.as_str() {
        "none" => Patch::Clear,
        role => Patch::Set(role.parse().expect("a listed instance role")),
    })
}

// ---- the server ----------------------------------------------------------------------------

/// The typed client for `opts`: the key checked first (no request without one), then the URL.
fn connect(opts: &ClientOpts) -> Result<Client> {
    let key = opts.api_key.as_deref().map(str::trim).unwrap_or_default();
    if key.is_empty() {
        bail!("LATCHKEY_API_KEY is not set");
    }
    let base = parse_base_url(&opts.url)?;
    if base.scheme() == "http" && !is_loopback(&base) {
        eprintln!(
            "warning: sending the API key over plain HTTP to {}",
            display_url(&base)
        );
    }
    let options = ClientOptions {
        ca_cert: opts.cacert.clone(),
        connect_timeout: Some(Duration::from_secs(10)),
        timeout: Duration::from_secs(60),
        user_agent: Some(concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")).into()),
    };
    Ok(Client::new(base.as_str(), key, &options)?)
}

/// Client errors in the words of the command line: which flag to check.
fn explain(e: anyhow::Error, opts: &ClientOpts) -> anyhow::Error {
    let at = || parse_base_url(&opts.url).map_or_else(|_| opts.url.clone(), |u| display_url(&u));
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Redirected { location, .. }) => anyhow!(
            "the server at {} answered with a redirect{}; check --url / LATCHKEY_URL",
            at(),
            location
                .as_ref()
                .map(|l| format!(" to {l}"))
                .unwrap_or_default()
        ),
        Some(ClientError::Unavailable(m)) if m.contains("certificate") => {
            let hint = if opts.cacert.is_some() {
                "check that --cacert / LATCHKEY_CACERT names the CA that signed the server's certificate"
            } else {
                "if the server's certificate comes from a private CA, pass that CA with --cacert FILE or LATCHKEY_CACERT"
            };
            anyhow!("{m}\n{hint}")
        }
        _ => e,
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

// ---- output --------------------------------------------------------------------------------

/// For `--json`, the server's answer as received; else the typed answer as text for people.
async fn show<T: DeserializeOwned + Send>(
    json: bool,
    call: Call<'_, T>,
    text: impl FnOnce(&T) -> String,
) -> Result<()> {
    if json {
        print_json(&call.send_as::<Value>().await?)
    } else {
        emit(&text(&call.await?))
    }
}

fn print_json(answer: &Value) -> Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(answer)?))
}

/// For 204 answers: nothing for scripts (the exit status says it), a confirmation for people.
fn done(json: bool, text: String) -> Result<()> {
    if json {
        Ok(())
    } else {
        emit(&format!("{text}\n"))
    }
}

/// One page, or with `all` every page merged into one `{"data", "next_cursor": null}`.
async fn show_list<T: DeserializeOwned + Send>(
    json: bool,
    call: Call<'_, List<T>>,
    all: bool,
    noun: &str,
    table: fn(&[T]) -> Table,
) -> Result<()> {
    if json {
        let answer = if all {
            serde_json::to_value(call.all_as::<Value>().await?)?
        } else {
            call.send_as::<Value>().await?
        };
        return print_json(&answer);
    }
    let page = if all { call.all().await? } else { call.await? };
    let table = table(&page.data);
    if table.is_empty() {
        emit(&format!("no {noun}\n"))?;
    } else {
        emit(&table.to_string())?;
    }
    if let Some(next) = page.next_cursor {
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
fn new_key_message(created: &CreatedKey, verb: &str) -> String {
    let k = &created.key;
    format!(
        "{verb} {} key {} \"{}\" ({}).\n\n    {}\n\n\
         Copy this key now and keep it secret: it cannot be shown again.\n",
        k.key_type.as_str(),
        k.id,
        k.name,
        k.environment,
        printable(created.secret.expose()),
    )
}

/// The message after an exchange: the token on a line of its own, when it expires, what it may do.
fn access_token_message(token: &AccessToken, now: DateTime<Utc>) -> String {
    let secs = token.expires_in;
    let at = TimeDelta::try_seconds(secs)
        .and_then(|d| now.checked_add_signed(d))
        .map(|t| format!(" ({})", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    let expiry = format!(
        ", expires in {}{at}",
        duration(u64::try_from(secs).unwrap_or(0))
    );
    let scope = match token.scope.trim() {
        "" => "none".to_owned(),
        s => printable(s),
    };
    format!(
        "{} access token{expiry}:\n\n    {}\n\nScope: {scope}\n\
         Copy this token now and keep it secret: it cannot be shown again.\n",
        token.token_type,
        printable(token.access_token.expose()),
    )
}

/// The show-once message after create and renew; the token stands on a line of its own.
fn new_token_message(created: &CreatedToken, verb: &str) -> String {
    let t = &created.token;
    format!(
        "{verb} {} token {} \"{}\" (expires {}).\n\n    {}\n\n\
         Copy this token now and keep it secret: it cannot be shown again.\n",
        t.environment,
        t.id,
        printable(t.name.as_deref().unwrap_or("-")),
        time(Some(&t.expires_at), "never"),
        printable(created.access_token.expose()),
    )
}

fn portal_message(link: &PortalSession) -> String {
    format!(
        "Portal link (expires {}):\n\n    {}\n\n\
         Send the person's browser there now: it signs them in once. It cannot be shown again.\n",
        time(Some(&link.expires_at), "-"),
        printable(link.url.expose()),
    )
}

fn token_table(tokens: &[Token]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "ENV", "STATUS", "EXPIRES", "CREATED"]);
    for k in tokens {
        t.row(vec![
            k.id.clone(),
            or_dash(k.name.as_deref()),
            k.environment.to_string(),
            k.status.as_str().into(),
            time(Some(&k.expires_at), "never"),
            time(Some(&k.created_at), "-"),
        ]);
    }
    t
}

fn key_table(keys: &[Key]) -> Table {
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
            k.id.clone(),
            k.name.clone(),
            k.redacted.clone(),
            k.key_type.as_str().into(),
            k.environment.to_string(),
            k.status.as_str().into(),
            time(k.last_used_at.as_ref(), "never"),
            time(k.expires_at.as_ref(), "never"),
            time(Some(&k.created_at), "-"),
        ]);
    }
    t
}

fn key_details(k: &Key) -> String {
    let permissions = match &k.permissions {
        Some(p) => list(p),
        None => "all of the owner's".into(),
    };
    fields(&[
        ("ID", k.id.clone()),
        ("Name", k.name.clone()),
        ("Key", k.redacted.clone()),
        ("Type", k.key_type.as_str().into()),
        ("Environment", k.environment.to_string()),
        ("Status", k.status.as_str().into()),
        ("Enabled", yes_no(k.enabled)),
        ("Workspace", k.workspace_id.clone()),
        ("Owner", k.owner_id.clone()),
        ("Permissions", permissions),
        ("Allowed origins", list(&k.allowed_origins)),
        ("Allowed IPs", list(&k.allowed_ips)),
        ("Rate limits", limits_text(&k.ratelimits)),
        ("Credits", credits_text(k.credits.as_ref())),
        (
            "Metadata",
            serde_json::to_string(&k.metadata).unwrap_or_default(),
        ),
        ("Last used", time(k.last_used_at.as_ref(), "never")),
        ("Expires", time(k.expires_at.as_ref(), "never")),
        ("Revoked", time(k.revoked_at.as_ref(), "-")),
        ("Created", time(Some(&k.created_at), "-")),
        ("Updated", time(Some(&k.updated_at), "-")),
    ])
}

/// `burst: 100 per minute, every verification; tokens: 1000 per hour, when a verify request
/// names it`: the dashboard's words for limits ([`LimitRow`]), on one line.
fn limits_text(limits: &[NamedLimit]) -> String {
    if limits.is_empty() {
        return "none".into();
    }
    let each: Vec<String> = limits
        .iter()
        .map(|l| {
            let r = LimitRow::from(l);
            format!("{}: {} {}, {}", r.name, r.limit, r.window, r.applied)
        })
        .collect();
    each.join("; ")
}

/// `42 left, refills to 100 every day at 00:00 UTC (next on …)`, or `unlimited`.
fn credits_text(credits: Option<&Credits>) -> String {
    match credits {
        None => "unlimited".into(),
        Some(c) => format!(
            "{} left, {}",
            c.remaining,
            refill_words(c.refill.as_ref(), latchkey_engine::now())
        ),
    }
}

fn instance_role_text(role: Option<InstanceRole>) -> String {
    or_dash(role.map(InstanceRole::as_str))
}

fn user_table(users: &[User]) -> Table {
    let mut t = Table::new(&["ID", "EMAIL", "NAME", "ACTIVE", "INSTANCE ROLE", "CREATED"]);
    for u in users {
        t.row(vec![
            u.id.clone(),
            u.email.clone(),
            u.name.clone(),
            yes_no(u.active),
            instance_role_text(u.instance_role),
            time(Some(&u.created_at), "-"),
        ]);
    }
    t
}

fn user_details(u: &User) -> String {
    fields(&[
        ("ID", u.id.clone()),
        ("Email", u.email.clone()),
        ("Name", u.name.clone()),
        ("Active", yes_no(u.active)),
        ("Instance role", instance_role_text(u.instance_role)),
        ("Created", time(Some(&u.created_at), "-")),
    ])
}

fn workspace_table(workspaces: &[Workspace]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "REQUIRE PAIR", "MAX KEY TTL", "CREATED"]);
    for w in workspaces {
        t.row(vec![
            w.id.clone(),
            w.name.clone(),
            yes_no(w.require_pair),
            ttl(w),
            time(Some(&w.created_at), "-"),
        ]);
    }
    t
}

fn workspace_details(w: &Workspace) -> String {
    fields(&[
        ("ID", w.id.clone()),
        ("Name", w.name.clone()),
        ("Require pair", yes_no(w.require_pair)),
        ("Publishable permissions", list(&w.publishable_permissions)),
        ("Max key TTL", ttl(w)),
        ("Created", time(Some(&w.created_at), "-")),
        ("Updated", time(Some(&w.updated_at), "-")),
    ])
}

fn member_table(members: &[Member]) -> Table {
    let mut t = Table::new(&["USER ID", "EMAIL", "NAME", "ROLE", "ACTIVE", "ADDED"]);
    for m in members {
        t.row(vec![
            m.user_id.clone(),
            m.email.clone(),
            m.name.clone(),
            m.role.clone(),
            yes_no(m.active),
            time(Some(&m.created_at), "-"),
        ]);
    }
    t
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").into()
}

/// A list as people read it: joined by commas, `-` when empty.
fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A timestamp shortened to UTC minutes; `none` when there is none.
fn time(t: Option<&Timestamp>, none: &str) -> String {
    t.map_or_else(
        || none.into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn ttl(w: &Workspace) -> String {
    w.max_key_ttl_seconds
        .and_then(|s| u64::try_from(s).ok())
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
    use serde_json::json;

    /// A body as the server receives it.
    fn sent(body: impl serde::Serialize) -> Value {
        serde_json::to_value(body).unwrap()
    }

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
        assert_eq!(instance_role, Some(InstanceRole::Verifier));
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
            assert_eq!(sent(update_user_body(name, instance_role).unwrap()), wanted);
        }
        assert!(parse(&["users", "update", "usr_1", "--instance-role", "root"]).is_err());
        assert_eq!(
            sent(update_user_body(Some("Ada".into()), None).unwrap()),
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
            sent(create_key_body(args)),
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
        assert!(parse(&["keys", "create", "--name", "x", "--permission", "bad perm"]).is_err());
        assert!(parse(&["keys", "list", "--status", "gone"]).is_err());
        let grant = [
            "workspaces",
            "grant",
            "ws_1",
            "--user-id",
            "usr_1",
            "--permission",
            "a::b",
        ];
        assert!(parse(&grant).is_err());
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
            sent(exchange_body(args)),
            json!({ "ttl_seconds": 600, "permissions": ["docs:read", "docs:write"] })
        );
        let TokensCommand::Exchange(args) = tokens_cmd(&["tokens", "exchange"]) else {
            panic!("not exchange")
        };
        assert_eq!(sent(exchange_body(args)), json!({}));

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
            sent(create_token_body(args)),
            json!({ "name": "deploy", "environment": "live", "ttl_seconds": 86_400 })
        );
        let TokensCommand::Create(args) = tokens_cmd(&["tokens", "create", "--name", "x"]) else {
            panic!("not create")
        };
        assert_eq!(sent(create_token_body(args)), json!({ "name": "x" }));
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
        assert_eq!(
            sent(update_key_body(args).unwrap()),
            json!({ "enabled": false })
        );
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
            cacert: None,
            json: false,
        };
        assert!(!format!("{opts:?}").contains("sk_live_secret"));
    }

    #[tokio::test]
    async fn missing_api_key_fails_before_any_request() {
        let opts = ClientOpts {
            url: "http://127.0.0.1:1".into(),
            api_key: None,
            cacert: None,
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
            cacert: None,
            json: false,
        };
        let cmd = ClientCommand::Keys(KeysCommand::Get { id: "key_1".into() });
        let err = run(&opts, cmd).await.unwrap_err().to_string();
        assert!(err.contains("http://127.0.0.1:1/"), "{err}");
        assert!(!err.contains("notreallyakey"), "{err}");
    }

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
        let base = parse_base_url("http://127.0.0.1:8080").unwrap();
        let secret = parse_base_url("https://u:p@h.example/").unwrap();
        assert_eq!(display_url(&secret), "https://h.example/");
        assert!(is_loopback(&base) && !is_loopback(&secret));
    }

    #[test]
    fn redirects_and_certificate_failures_name_the_flag_to_check() {
        let opts = |cacert: Option<&str>| ClientOpts {
            url: "https://u:p@latchkey.example/".into(),
            api_key: Some("sk_live_secret".into()),
            cacert: cacert.map(PathBuf::from),
            json: false,
        };
        let redirect = ClientError::Redirected {
            status: 308,
            location: Some("https://elsewhere/".into()),
        };
        assert_eq!(
            explain(redirect.into(), &opts(None)).to_string(),
            "the server at https://latchkey.example/ answered with a redirect to \
             https://elsewhere/; check --url / LATCHKEY_URL"
        );
        let tls = || {
            ClientError::Unavailable(
                "cannot connect to the Latchkey server at https://latchkey.example/: \
                 invalid peer certificate: UnknownIssuer"
                    .into(),
            )
        };
        let text = explain(tls().into(), &opts(None)).to_string();
        assert!(
            text.contains("UnknownIssuer") && text.contains("--cacert FILE"),
            "{text}"
        );
        let text = explain(tls().into(), &opts(Some("ca.pem"))).to_string();
        assert!(text.contains("names the CA that signed"), "{text}");
        let other = ClientError::Unavailable("timed out".into());
        assert_eq!(explain(other.into(), &opts(None)).to_string(), "timed out");
    }

    /// A typed answer from the server's JSON: `base` with `overrides` on top.
    fn answer<T: DeserializeOwned>(mut base: Value, overrides: Value) -> T {
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn key(overrides: Value) -> Key {
        let base = json!({
            "id": "key_1", "name": "ci", "redacted": "sk_live_…AbCd", "type": "secret",
            "environment": "live", "workspace_id": "ws_1", "owner_id": "usr_1",
            "permissions": null, "allowed_origins": [], "allowed_ips": [], "metadata": {},
            "enabled": true, "status": "active", "expires_at": null, "last_used_at": null,
            "revoked_at": null, "rolled_to": null, "created_at": "2024-05-01T12:34:56Z",
            "updated_at": "2024-05-01T12:34:56Z",
        });
        answer(base, overrides)
    }

    fn token(overrides: Value) -> Value {
        let mut base = json!({
            "id": "tok_1", "name": "deploy", "environment": "live", "key_id": "key_1",
            "status": "active", "created_at": "2024-05-01T12:34:56Z",
            "expires_at": "2024-05-31T12:34:56Z", "revoked_at": null,
        });
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn key_table_renders_the_list_columns() {
        let keys = [key(json!({
            "expires_at": "2030-01-01T00:00:00Z", "created_at": "2024-05-01T12:34:56.789Z",
        }))];
        assert_eq!(
            key_table(&keys).to_string(),
            "ID     NAME  KEY            TYPE    ENV   STATUS  LAST USED  EXPIRES               CREATED\n\
             key_1  ci    sk_live_…AbCd  secret  live  active  never      2030-01-01 00:00 UTC  2024-05-01 12:34 UTC\n"
        );
    }

    #[test]
    fn new_key_is_shown_once_with_a_warning() {
        let created: CreatedKey = answer(
            serde_json::to_value(key(json!({"environment": "test", "redacted": "sk_test_…"})))
                .unwrap(),
            json!({"key": "sk_test_abc"}),
        );
        let text = new_key_message(&created, "Created");
        assert!(text.starts_with("Created secret key key_1 \"ci\" (test).\n\n    sk_test_abc\n\n"));
        assert!(text.contains("cannot be shown again"));
    }

    #[test]
    fn token_table_renders_the_list_columns() {
        let tokens: [Token; 2] = [
            answer(token(json!({})), json!({})),
            answer(
                token(json!({
                    "id": "tok_22", "name": null, "environment": "test", "status": "revoked",
                    "revoked_at": "2024-05-02T00:00:00Z",
                })),
                json!({}),
            ),
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
        let created: CreatedToken = answer(
            token(json!({"id": "tok_2", "name": "deploy\u{1b}[31m"})),
            json!({"access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 2_592_000}),
        );
        let text = new_token_message(&created, "Renewed tok_1 into");
        assert_eq!(
            text,
            "Renewed tok_1 into live token tok_2 \"deploy?[31m\" (expires 2024-05-31 12:34 UTC).\n\n    \
             eyJ.abc.def\n\n\
             Copy this token now and keep it secret: it cannot be shown again.\n"
        );
        let unnamed: CreatedToken = answer(
            token(json!({"name": null})),
            json!({"access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 60}),
        );
        assert!(new_token_message(&unnamed, "Created").contains(" token tok_1 \"-\" "));
    }

    #[test]
    fn exchanged_token_shows_expiry_and_scope() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token: AccessToken = answer(
            json!({
                "access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 3600,
                "scope": "docs:read docs:write",
            }),
            json!({}),
        );
        assert_eq!(
            access_token_message(&token, now),
            "Bearer access token, expires in 1h (2024-05-01 13:00 UTC):\n\n    eyJ.abc.def\n\n\
             Scope: docs:read docs:write\n\
             Copy this token now and keep it secret: it cannot be shown again.\n"
        );
        let narrow: AccessToken = answer(
            json!({
                "access_token": "eyJ.x.y", "token_type": "Bearer", "expires_in": 90, "scope": "",
            }),
            json!({}),
        );
        let text = access_token_message(&narrow, now);
        assert!(
            text.starts_with("Bearer access token, expires in 90s (2024-05-01 12:01 UTC):\n"),
            "{text}"
        );
        assert!(text.contains("\nScope: none\n"), "{text}");
    }

    #[test]
    fn field_values_read_naturally() {
        assert_eq!([yes_no(true), yes_no(false)], ["yes", "no"]);
        assert_eq!(list(&["x", "y"]), "x, y");
        assert_eq!(list::<&str>(&[]), "-");
        assert_eq!([or_dash(None), or_dash(Some("a"))], ["-", "a"]);
        let ws = |ttl: Value| -> Workspace {
            answer(
                json!({
                    "id": "ws_1", "name": "W", "require_pair": false,
                    "publishable_permissions": [], "created_at": "2024-05-01T12:34:56Z",
                    "updated_at": "2024-05-01T12:34:56Z",
                }),
                json!({ "max_key_ttl_seconds": ttl }),
            )
        };
        assert_eq!(ttl(&ws(json!(7_776_000))), "90d");
        assert_eq!(ttl(&ws(json!(90))), "90s");
        assert_eq!(ttl(&ws(Value::Null)), "none");
        assert_eq!([0, 7_200, 5_400].map(duration), ["0s", "2h", "5400s"]);
        assert_eq!(time(None, "never"), "never");
        let details = key_details(&key(json!({})));
        assert!(
            details.contains("Permissions      all of the owner's\n"),
            "{details}"
        );
        assert!(details.contains("Metadata         {}\n"), "{details}");
        assert!(details.contains("Enabled          yes\n"), "{details}");
        let details = key_details(&key(json!({
            "permissions": ["docs:read", "docs:write"], "metadata": {"k": 1},
            "allowed_ips": ["10.0.0.0/8"],
        })));
        assert!(
            details.contains("Permissions      docs:read, docs:write\n")
                && details.contains("Metadata         {\"k\":1}\n")
                && details.contains("Allowed IPs      10.0.0.0/8\n")
                && details.contains("Allowed origins  -\n"),
            "{details}"
        );
    }
}
