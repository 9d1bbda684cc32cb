//! Configuration: command-line flags, then `LATCHKEY_*` environment variables (clap reads both),
//! then `latchkey.toml`, then defaults.

use crate::state::TokenSettings;
use anyhow::{bail, Context};
use axum_server::tls_rustls::RustlsConfig;
use ipnet::IpNet;
use latchkey_core::route::{DefaultAccess, Route, RouteTable};
use latchkey_core::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod dashboard;
mod leaks;
pub use dashboard::{DashboardArgs, DashboardSettings, OidcSettings};
pub use leaks::{GithubPublicKey, LeakAction, LeakSettings, LeaksArgs};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// A TOML file with the same settings (default: ./latchkey.toml if it exists).
    #[arg(long, env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LATCHKEY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the SQLite database and the generated server secret live [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "LATCHKEY_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, env = "LATCHKEY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "LATCHKEY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, env = "LATCHKEY_INSECURE_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub insecure_http: Option<bool>,
    /// Email of the instance admin created on first start [default: admin@latchkey.local].
    #[arg(long, env = "LATCHKEY_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Most keys (and owners) kept in the verification cache [default: 1000000].
    #[arg(long, env = "LATCHKEY_CACHE_CAPACITY")]
    pub cache_capacity: Option<u64>,
    /// Longest a cache entry lives without being re-read [default: 300].
    #[arg(long, env = "LATCHKEY_CACHE_TTL_SECONDS")]
    pub cache_ttl_seconds: Option<u64>,
    /// How often batched `last_used_at` values are written [default: 1000].
    #[arg(long, env = "LATCHKEY_USAGE_FLUSH_MS")]
    pub usage_flush_ms: Option<u64>,
    /// How often the change log is read for other nodes' writes [default: 500].
    #[arg(long, env = "LATCHKEY_CHANGE_POLL_MS")]
    pub change_poll_ms: Option<u64>,
    /// The URL clients reach this service at: the `iss` and `aud` of access tokens and the base
    /// of the OAuth metadata [default: http(s)://<listen address>].
    #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Lifetime of an exchanged access token when none is asked for [default: 3600].
    #[arg(long, env = "LATCHKEY_TOKEN_TTL_SECONDS")]
    pub token_ttl_seconds: Option<i64>,
    /// Longest lifetime of an exchanged access token; longer requests are capped [default: 86400].
    #[arg(long, env = "LATCHKEY_MAX_TOKEN_TTL_SECONDS")]
    pub max_token_ttl_seconds: Option<i64>,
    /// Longest lifetime of an environment access token (`POST /v1/tokens`) [default: 31536000].
    #[arg(long, env = "LATCHKEY_MAX_ENVIRONMENT_TOKEN_TTL_SECONDS")]
    pub max_environment_token_ttl_seconds: Option<i64>,
    /// Proxies whose X-Forwarded-For is believed: CIDRs or addresses, comma-separated, or
    /// `none` [default: 127.0.0.0/8,::1].
    #[arg(long, env = "LATCHKEY_PROXY_TRUSTED", value_delimiter = ',')]
    pub proxy_trusted: Option<Vec<String>>,
    /// Failed credentials a client address may present per window before it is refused with
    /// 429 [default: 100].
    #[arg(long, env = "LATCHKEY_THROTTLE_CREDENTIAL_FAILURES")]
    pub throttle_credential_failures: Option<u32>,
    /// The window of --throttle-credential-failures [default: 60].
    #[arg(long, env = "LATCHKEY_THROTTLE_CREDENTIAL_WINDOW_SECONDS")]
    pub throttle_credential_window_seconds: Option<u64>,
    /// A route of the table that forward auth and the gateway enforce (SPEC §10.2), e.g.
    /// `GET /documents/{id} document:{id}:read`; repeatable. Given here, it replaces
    /// `[[gateway.routes]]` of the file.
    #[arg(long = "route", value_name = "METHOD PATH PERMISSION")]
    pub routes: Vec<String>,
    /// What a request that matches no route needs: a permission, or `public` [default: 404].
    #[arg(long, env = "LATCHKEY_DEFAULT_PERMISSION")]
    pub default_permission: Option<DefaultAccess>,
    /// Redis that keeps rate limits exact across every node given the same one,
    /// `redis://[:password@]host[:port][/db]` [default: none; each node limits alone].
    #[arg(long, env = "LATCHKEY_RATELIMIT_STORE", value_name = "URL")]
    pub ratelimit_store: Option<String>,
    /// Prefix of the rate-limit keys in that Redis, to share one Redis between deployments
    /// [default: latchkey:ratelimit:].
    #[arg(long, env = "LATCHKEY_RATELIMIT_PREFIX")]
    pub ratelimit_prefix: Option<String>,
    /// How long a verification waits for that Redis before this node answers from its own
    /// limits, in milliseconds, 1 to 10000 [default: 100].
    #[arg(long, env = "LATCHKEY_RATELIMIT_TIMEOUT_MS", value_name = "MS")]
    pub ratelimit_timeout_ms: Option<u64>,
    /// How long per-minute usage buckets are kept, in hours [default: 48].
    #[arg(long, env = "LATCHKEY_USAGE_MINUTE_RETENTION_HOURS")]
    pub usage_minute_retention_hours: Option<u64>,
    /// How long hourly usage buckets are kept, in days [default: 90].
    #[arg(long, env = "LATCHKEY_USAGE_HOUR_RETENTION_DAYS")]
    pub usage_hour_retention_days: Option<u64>,
    /// How long daily usage buckets are kept, in days [default: 1825].
    #[arg(long, env = "LATCHKEY_USAGE_DAY_RETENTION_DAYS")]
    pub usage_day_retention_days: Option<u64>,
    /// Deliver webhooks to loopback, private (RFC 1918, ULA), link-local, CGNAT … addresses
    /// too; for tests and closed networks [default: false].
    #[arg(long, env = "LATCHKEY_WEBHOOKS_ALLOW_PRIVATE_TARGETS", num_args = 0..=1, default_missing_value = "true")]
    pub webhooks_allow_private_targets: Option<bool>,
    /// Seconds to wait before each webhook retry, comma-separated; a delivery fails after the
    /// last [default: Standard Webhooks' 5,300,1800,7200,18000,36000 ×7, about 3 days].
    #[arg(
        long,
        env = "LATCHKEY_WEBHOOKS_RETRY_SCHEDULE",
        value_delimiter = ',',
        value_name = "SECONDS"
    )]
    pub webhooks_retry_schedule: Option<Vec<u64>>,
    /// Days before a key's expiry when `key.expiring` is sent, comma-separated [default: 7,1].
    #[arg(
        long,
        env = "LATCHKEY_WEBHOOKS_EXPIRING_DAYS",
        value_delimiter = ',',
        value_name = "DAYS"
    )]
    pub webhooks_expiring_days: Option<Vec<u64>>,
    /// How often the webhook worker looks for due deliveries, in milliseconds [default: 1000].
    #[arg(long, env = "LATCHKEY_WEBHOOKS_POLL_MS", value_name = "MS")]
    pub webhooks_poll_ms: Option<u64>,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    #[command(flatten)]
    pub leaks: LeaksArgs,
}

/// `latchkey.toml`: every setting above, plus `secret`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_http: Option<bool>,
    admin_email: Option<String>,
    cache_capacity: Option<u64>,
    cache_ttl_seconds: Option<u64>,
    usage_flush_ms: Option<u64>,
    change_poll_ms: Option<u64>,
    public_url: Option<String>,
    token_ttl_seconds: Option<i64>,
    max_token_ttl_seconds: Option<i64>,
    max_environment_token_ttl_seconds: Option<i64>,
    secret: Option<String>,
    // Settings added after the first release live in sections (SPEC §8).
    #[serde(default)]
    proxy: ProxySection,
    #[serde(default)]
    throttle: ThrottleSection,
    #[serde(default)]
    gateway: GatewaySection,
    #[serde(default)]
    ratelimit: RatelimitSection,
    #[serde(default)]
    usage: UsageSection,
    #[serde(default)]
    webhooks: WebhooksSection,
    #[serde(default)]
    dashboard: dashboard::DashboardSection,
    #[serde(default)]
    leaks: leaks::LeaksSection,
}

/// `[webhooks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksSection {
    allow_private_targets: Option<bool>,
    retry_schedule: Option<Vec<u64>>,
    poll_ms: Option<u64>,
    expiring_days: Option<Vec<u64>>,
}

/// `[usage]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageSection {
    minute_retention_hours: Option<u64>,
    hour_retention_days: Option<u64>,
    day_retention_days: Option<u64>,
}

/// `[ratelimit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatelimitSection {
    store: Option<String>,
    prefix: Option<String>,
    timeout_ms: Option<u64>,
}

/// Where rate limits are kept across nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatelimitStore {
    /// A `redis://` URL; it may carry a password, so `Debug` never shows it.
    pub url: Secret,
    pub prefix: String,
    /// `[ratelimit] timeout_ms`: how long one charge waits for Redis before answering locally.
    pub timeout: Duration,
}

/// The default key prefix of `[ratelimit] prefix`.
pub const RATELIMIT_PREFIX: &str = "latchkey:ratelimit:";

/// `[gateway]`, with its `[[gateway.routes]]`: the route table is forward auth's too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    listen: Option<SocketAddr>,
    upstream: Option<String>,
    upstream_timeout: Option<u64>,
    upstream_cacert: Option<PathBuf>,
    default_permission: Option<DefaultAccess>,
    #[serde(default)]
    routes: Vec<Route>,
}

/// `[gateway]` settings as the file gives them; `latchkey gateway` lays its flags over them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayFile {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
    /// Seconds.
    pub upstream_timeout: Option<u64>,
    /// A PEM file of CAs an `https://` upstream may be signed by, besides the system's roots.
    pub upstream_cacert: Option<PathBuf>,
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    trusted: Option<Vec<String>>,
}

/// `[throttle]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleSection {
    credential_failures: Option<u32>,
    credential_window_seconds: Option<u64>,
}

/// How many failed credentials one client address may present, and in what window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub credential_failures: u32,
    pub credential_window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            credential_failures: 100,
            credential_window: Duration::from_secs(60),
        }
    }
}

/// Loopback: a proxy on the same host (the usual nginx or Caddy in front) works unconfigured,
/// and nothing a remote client sends is believed (SPEC §10.3's default).
pub fn default_trusted_proxies() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("valid"),
        "::1/128".parse().expect("valid"),
    ]
}

/// `10.0.0.0/8`, `192.0.2.7` (one address) or `none` (an empty list).
fn parse_trusted(list: &[String]) -> anyhow::Result<Vec<IpNet>> {
    let mut out = vec![];
    for item in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if item.eq_ignore_ascii_case("none") {
            continue;
        }
        let net = match item.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match item.parse::<std::net::IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    bail!("[proxy] trusted: {item:?} is not a CIDR (10.0.0.0/8) or an IP address")
                }
            },
        };
        out.push(net);
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite in `data_dir`.
    pub database: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub insecure_http: bool,
    /// From `LATCHKEY_SECRET` or the file; `None`: read or generate `data_dir/secret`.
    pub secret: Option<Secret>,
    pub admin_email: String,
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
    pub usage_flush: Duration,
    pub change_poll: Duration,
    pub public_url: Option<String>,
    pub tokens: TokenSettings,
    /// Peers whose `X-Forwarded-For` names the client (see [`crate::client_addr`]).
    pub proxy_trusted: Vec<IpNet>,
    pub throttle: ThrottleSettings,
    /// The route table of forward auth and the gateway; `None`: none configured (forward auth
    /// then takes `?permission=`, or any valid credential).
    pub routes: Option<RouteTable>,
    pub gateway: GatewayFile,
    /// The configuration file read, if any: SIGHUP reads its routes again.
    pub config_file: Option<PathBuf>,
    /// `[ratelimit] store`: `None`, each node keeps its own limits.
    pub ratelimit: Option<RatelimitStore>,
    /// `[usage]`: how long usage buckets are kept.
    pub usage_retention: latchkey_engine::UsageRetention,
    /// `[dashboard]` and `[dashboard.oidc]`: sign-in methods and branding.
    pub dashboard: DashboardSettings,
    /// `[leaks]`: what a leak report does, and GitHub's public keys.
    pub leaks: LeakSettings,
    /// How long a portal link stays usable. Not a setting (SPEC §7 says five minutes): only
    /// tests change it, so that a link expires without a five-minute wait.
    pub portal_link_ttl: Duration,
    /// `[webhooks]`.
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// SPEC §7: a portal link is valid for five minutes.
pub const PORTAL_LINK_TTL: Duration = Duration::from_secs(5 * 60);

impl Config {
    /// Defaults for tests and embedding: loopback, a given data directory, SQLite.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid"),
            data_dir: data_dir.into(),
            database: None,
            tls: None,
            insecure_http: false,
            secret: None,
            admin_email: "admin@latchkey.local".into(),
            cache_capacity: 1_000_000,
            cache_ttl: Duration::from_secs(300),
            usage_flush: Duration::from_millis(1000),
            change_poll: Duration::from_millis(500),
            public_url: None,
            tokens: TokenSettings::default(),
            proxy_trusted: default_trusted_proxies(),
            throttle: ThrottleSettings::default(),
            routes: None,
            gateway: GatewayFile::default(),
            config_file: None,
            ratelimit: None,
            usage_retention: Default::default(),
            dashboard: DashboardSettings::default(),
            leaks: LeakSettings::default(),
            portal_link_ttl: PORTAL_LINK_TTL,
            webhooks: Default::default(),
        }
    }

    pub fn load(args: &ServerArgs) -> anyhow::Result<Self> {
        let config_file = match &args.config {
            Some(p) => Some(p.clone()),
            None if Path::new("latchkey.toml").exists() => Some(PathBuf::from("latchkey.toml")),
            None => None,
        };
        let mut file = match &config_file {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let routes = route_table(
            args,
            std::mem::take(&mut file.gateway.routes),
            file.gateway.default_permission.take(),
        )?;
        let gateway = GatewayFile {
            listen: file.gateway.listen,
            upstream: file.gateway.upstream.take(),
            upstream_timeout: file.gateway.upstream_timeout,
            upstream_cacert: file.gateway.upstream_cacert.take(),
        };
        let env_secret = std::env::var("LATCHKEY_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        let secret = env_secret.or(file.secret).map(Secret::new);
        if let Some(s) = &secret {
            if s.expose().chars().count() < 32 {
                bail!("the server secret (LATCHKEY_SECRET, or `secret` in latchkey.toml) must be at least 32 characters");
            }
        }
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let proxy_trusted = match args.proxy_trusted.as_ref().or(file.proxy.trusted.as_ref()) {
            Some(list) => parse_trusted(list)?,
            None => default_trusted_proxies(),
        };
        let defaults = ThrottleSettings::default();
        let throttle = ThrottleSettings {
            credential_failures: args
                .throttle_credential_failures
                .or(file.throttle.credential_failures)
                .unwrap_or(defaults.credential_failures),
            credential_window: args
                .throttle_credential_window_seconds
                .or(file.throttle.credential_window_seconds)
                .map_or(defaults.credential_window, Duration::from_secs),
        };
        if throttle.credential_failures == 0 || throttle.credential_window.is_zero() {
            bail!("[throttle] credential_failures and credential_window_seconds must be positive");
        }
        let ratelimit = match args
            .ratelimit_store
            .clone()
            .or(file.ratelimit.store.take())
            .filter(|s| !s.is_empty())
        {
            Some(url) => {
                if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
                    bail!("[ratelimit] store must be a redis:// URL");
                }
                let timeout_ms = args
                    .ratelimit_timeout_ms
                    .or(file.ratelimit.timeout_ms)
                    .unwrap_or(latchkey_engine::redis_limits::CALL_TIMEOUT.as_millis() as u64);
                if !(1..=10_000).contains(&timeout_ms) {
                    bail!("[ratelimit] timeout_ms must be 1 to 10000");
                }
                Some(RatelimitStore {
                    timeout: Duration::from_millis(timeout_ms),
                    url: Secret::new(url),
                    prefix: args
                        .ratelimit_prefix
                        .clone()
                        .or(file.ratelimit.prefix.take())
                        .unwrap_or_else(|| RATELIMIT_PREFIX.into()),
                })
            }
            None => None,
        };
        let keep = latchkey_engine::UsageRetention::default();
        let hours = |h: Option<u64>, default: Duration| {
            h.map_or(default, |h| Duration::from_secs(h * 3_600))
        };
        let days = |d: Option<u64>, default: Duration| {
            d.map_or(default, |d| Duration::from_secs(d * 86_400))
        };
        let usage_retention = latchkey_engine::UsageRetention {
            minutes: hours(
                args.usage_minute_retention_hours
                    .or(file.usage.minute_retention_hours),
                keep.minutes,
            ),
            hours: days(
                args.usage_hour_retention_days
                    .or(file.usage.hour_retention_days),
                keep.hours,
            ),
            days: days(
                args.usage_day_retention_days
                    .or(file.usage.day_retention_days),
                keep.days,
            ),
        };
        if [
            usage_retention.minutes,
            usage_retention.hours,
            usage_retention.days,
        ]
        .iter()
        .any(|d| d.is_zero())
        {
            bail!("[usage] retention settings must be positive");
        }
        let dashboard =
            DashboardSettings::load(&args.dashboard, std::mem::take(&mut file.dashboard))?;
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid"));
        dashboard::check_public_url(&dashboard, public_url.as_deref(), listen)?;
        let leaks = LeakSettings::load(&args.leaks, std::mem::take(&mut file.leaks))?;
        let mut webhooks = crate::webhooks::WebhookSettings::default();
        if let Some(b) = args
            .webhooks_allow_private_targets
            .or(file.webhooks.allow_private_targets)
        {
            webhooks.allow_private_targets = b;
        }
        if let Some(s) = args
            .webhooks_retry_schedule
            .clone()
            .or(file.webhooks.retry_schedule.take())
        {
            webhooks.retry_schedule = s.into_iter().map(Duration::from_secs).collect();
        }
        if let Some(d) = args
            .webhooks_expiring_days
            .clone()
            .or(file.webhooks.expiring_days.take())
        {
            if d.iter().any(|d| *d == 0 || *d > 365) {
                bail!("[webhooks] expiring_days must each be 1 to 365");
            }
            webhooks.expiring_days = d.into_iter().map(|d| d as i64).collect();
        }
        if let Some(ms) = args.webhooks_poll_ms.or(file.webhooks.poll_ms) {
            if ms == 0 {
                bail!("[webhooks] poll_ms must be positive");
            }
            webhooks.poll = Duration::from_millis(ms);
        }
        Ok(Self {
            leaks,
            webhooks,
            dashboard,
            usage_retention,
            ratelimit,
            proxy_trusted,
            throttle,
            routes,
            gateway,
            config_file,
            listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| "latchkey-data".into()),
            database: args.database.clone().or(file.database),
            tls,
            insecure_http: args.insecure_http.or(file.insecure_http).unwrap_or(false),
            secret,
            admin_email: args
                .admin_email
                .clone()
                .or(file.admin_email)
                .unwrap_or_else(|| "admin@latchkey.local".into()),
            cache_capacity: args
                .cache_capacity
                .or(file.cache_capacity)
                .unwrap_or(1_000_000),
            cache_ttl: Duration::from_secs(
                args.cache_ttl_seconds
                    .or(file.cache_ttl_seconds)
                    .unwrap_or(300),
            ),
            usage_flush: Duration::from_millis(
                args.usage_flush_ms
                    .or(file.usage_flush_ms)
                    .unwrap_or(1000)
                    .max(10),
            ),
            change_poll: Duration::from_millis(
                args.change_poll_ms
                    .or(file.change_poll_ms)
                    .unwrap_or(500)
                    .max(10),
            ),
            public_url,
            tokens: TokenSettings::new(
                args.token_ttl_seconds.or(file.token_ttl_seconds),
                args.max_token_ttl_seconds.or(file.max_token_ttl_seconds),
                args.max_environment_token_ttl_seconds
                    .or(file.max_environment_token_ttl_seconds),
            )?,
            portal_link_ttl: PORTAL_LINK_TTL,
        })
    }

    /// SPEC §4: outside loopback, plain HTTP only when the operator says so.
    pub fn check_transport(&self) -> anyhow::Result<()> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure_http {
            bail!(
                "refusing to serve plain HTTP on {}: configure --tls-cert and --tls-key, \
                 or pass --insecure-http when a TLS-terminating proxy is in front",
                self.listen
            );
        }
        Ok(())
    }

    /// Loads the certificate and key now, so a wrong path fails before anything else happens.
    pub async fn load_tls(&self) -> anyhow::Result<Option<RustlsConfig>> {
        let Some((cert, key)) = &self.tls else {
            return Ok(None);
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = RustlsConfig::from_pem_file(cert, key)
            .await
            .with_context(|| {
                format!(
                    "loading the TLS certificate {} and key {}",
                    cert.display(),
                    key.display()
                )
            })?;
        Ok(Some(tls))
    }

    /// The database URL: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("latchkey.db").display()))
    }
}

/// The route table from `--route` flags (which replace the file's routes) or the file's
/// `[[gateway.routes]]`, and the default from `--default-permission` or the file.
fn route_table(
    args: &ServerArgs,
    file_routes: Vec<Route>,
    file_default: Option<DefaultAccess>,
) -> anyhow::Result<Option<RouteTable>> {
    let routes = if args.routes.is_empty() {
        file_routes
    } else {
        args.routes
            .iter()
            .map(|line| Route::parse(line).with_context(|| format!("--route {line:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    let default = args.default_permission.clone().or(file_default);
    if routes.is_empty() && default.is_none() {
        return Ok(None);
    }
    Ok(Some(RouteTable::new(routes, default)?))
}

impl Config {
    /// The route table as the configuration file gives it now, with the flags of `args` still
    /// laid over it (SIGHUP: flags do not change while the process runs, the file may).
    pub fn reload_routes(&self, args: &ServerArgs) -> anyhow::Result<Option<RouteTable>> {
        let mut file = match &self.config_file {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        route_table(
            args,
            std::mem::take(&mut file.gateway.routes),
            file.gateway.default_permission.take(),
        )
    }
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServerArgs,
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("lk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("latchkey.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/x\"\ncache_capacity = 7\n",
        )
        .unwrap();
        let t = T::parse_from([
            "t",
            "--config",
            f.to_str().unwrap(),
            "--listen",
            "127.0.0.1:1234",
        ]);
        let c = Config::load(&t.a).unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.cache_capacity, 7);
        assert_eq!(c.usage_flush, Duration::from_millis(1000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trusted_proxies_from_the_file_a_flag_or_nowhere() {
        let dir = std::env::temp_dir().join(format!("lk-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("latchkey.toml");
        std::fs::write(
            &f,
            "[proxy]\ntrusted = [\"10.1.2.3/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        let path = f.to_str().unwrap();
        let c = Config::load(&T::parse_from(["t", "--config", path]).a).unwrap();
        let nets: Vec<String> = c.proxy_trusted.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        let c = Config::load(&T::parse_from(["t", "--config", path, "--proxy-trusted", "none"]).a)
            .unwrap();
        assert!(
            c.proxy_trusted.is_empty(),
            "the flag wins, and `none` trusts nobody"
        );
        let c = Config::load(&T::parse_from(["t", "--proxy-trusted", "10.0.0.0/8,::1"]).a).unwrap();
        assert_eq!(c.proxy_trusted.len(), 2, "comma-separated");
        assert!(Config::load(&T::parse_from(["t", "--proxy-trusted", "example.com"]).a).is_err());
        let c = Config::load(&T::parse_from(["t"]).a).unwrap();
        assert_eq!(c.proxy_trusted, default_trusted_proxies());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_credential_throttle_from_its_section() {
        let dir = std::env::temp_dir().join(format!("lk-throttle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("latchkey.toml");
        std::fs::write(&f, "[throttle]\ncredential_failures = 7\n").unwrap();
        let path = f.to_str().unwrap();
        let c = Config::load(
            &T::parse_from([
                "t",
                "--config",
                path,
                "--throttle-credential-window-seconds",
                "30",
            ])
            .a,
        )
        .unwrap();
        assert_eq!(c.throttle.credential_failures, 7);
        assert_eq!(c.throttle.credential_window, Duration::from_secs(30));
        assert!(
            Config::load(&T::parse_from(["t", "--throttle-credential-failures", "0"]).a).is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_http_outside_loopback_needs_consent() {
        let mut c = Config::for_data_dir("/tmp/x");
        c.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(c.check_transport().is_err());
        c.insecure_http = true;
        assert!(c.check_transport().is_ok());
        c.listen = "127.0.0.1:8080".parse().unwrap();
        c.insecure_http = false;
        assert!(c.check_transport().is_ok());
    }

    #[test]
    fn routes_from_flags_replace_the_files() {
        let dir = std::env::temp_dir().join(format!("lk-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("latchkey.toml");
        std::fs::write(
            &file,
            "[gateway]\nupstream = \"http://127.0.0.1:9\"\nupstream_cacert = \"ca.pem\"\n\
             default_permission = \"public\"\n\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/documents/{id}\"\npermission = \"document:{id}:read\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = Config::load(&T::parse_from(["t", "--config", path]).a).unwrap();
        let table = c.routes.clone().expect("the file's table");
        assert_eq!(table.routes().len(), 1);
        assert_eq!(table.default_access(), Some(&DefaultAccess::Public));
        assert_eq!(c.gateway.upstream.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(c.gateway.upstream_cacert, Some(PathBuf::from("ca.pem")));

        let args = T::parse_from([
            "t",
            "--config",
            path,
            "--route",
            "POST /documents documents:write",
            "--route",
            "GET /health public",
        ])
        .a;
        let c = Config::load(&args).unwrap();
        let table = c.routes.clone().unwrap();
        assert_eq!(table.routes().len(), 2, "flags replace the file's routes");
        assert_eq!(
            table.default_access(),
            Some(&DefaultAccess::Public),
            "the file's default stays"
        );

        // A reload reads the file again; the flags still win.
        std::fs::write(
            &file,
            "[[gateway.routes]]\nmethod = \"*\"\npath = \"/admin/**\"\npermission = \"admin:*\"\n",
        )
        .unwrap();
        let reloaded = c.reload_routes(&args).unwrap().unwrap();
        assert_eq!(reloaded.routes().len(), 2);
        let only_file = T::parse_from(["t", "--config", path]).a;
        let reloaded = c.reload_routes(&only_file).unwrap().unwrap();
        assert_eq!(reloaded.routes().len(), 1);
        assert_eq!(reloaded.default_access(), None);

        assert!(Config::load(
            &T::parse_from(["t", "--route", "GET /documents/{id} document:{id"]).a
        )
        .is_err());
        assert!(
            Config::load(&T::parse_from(["t"]).a)
                .unwrap()
                .routes
                .is_none(),
            "no table unless configured"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
