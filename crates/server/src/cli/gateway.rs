//! `latchkey gateway` (SPEC §10.4): the reverse proxy of `latchkey-gateway`, verifying
//! in-process on the deployment's database (embedded) or at a Latchkey server (remote).

use crate::config::{Config, ServerArgs};
use anyhow::{bail, Context};
use latchkey_core::route::DefaultAccess;
use latchkey_gateway::{Gateway, GatewayOptions, UpstreamTrust, UpstreamUrl};
use latchkey_proto::forwarded::TrustedProxies;
use latchkey_tower::{ClientOptions, EmbeddedOptions, Gate, RemoteOptions, Verifier};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long the upstream's response headers may take when nothing is configured.
const DEFAULT_UPSTREAM_TIMEOUT: u64 = 30;
/// How long in-flight requests may take to finish at shutdown (as `serve`).
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Clone, clap::Args)]
pub struct GatewayArgs {
    /// A TOML file: its `[gateway]` section and `[[gateway.routes]]` (default: ./latchkey.toml
    /// if it exists).
    #[arg(long, env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (or `[gateway] listen`).
    #[arg(long, env = "LATCHKEY_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The API behind the gateway: `http[s]://host[:port][/base]` (or `[gateway] upstream`).
    #[arg(long, env = "LATCHKEY_GATEWAY_UPSTREAM")]
    pub upstream: Option<String>,
    /// A PEM file of CA certificates an `https://` upstream's certificate may chain to, besides
    /// the system's roots (or `[gateway] upstream_cacert`). `--cacert` is for the Latchkey
    /// server of remote mode; this one is for the upstream.
    #[arg(long, env = "LATCHKEY_UPSTREAM_CACERT", value_name = "PEM")]
    pub upstream_cacert: Option<PathBuf>,
    /// Seconds the upstream's response headers may take before the client gets 504 [default: 30].
    #[arg(
        long,
        env = "LATCHKEY_GATEWAY_UPSTREAM_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub upstream_timeout: Option<u64>,
    /// A route (SPEC §10.2), e.g. `GET /documents/{id} document:{id}:read`; repeatable. Given
    /// here, it replaces `[[gateway.routes]]` of the file (which SIGHUP then cannot change).
    #[arg(long = "route", value_name = "METHOD PATH PERMISSION")]
    pub routes: Vec<String>,
    /// What a request that matches no route needs: a permission, or `public` [default: 404].
    #[arg(long, env = "LATCHKEY_DEFAULT_PERMISSION")]
    pub default_permission: Option<DefaultAccess>,
    /// Embedded mode: the data directory of `latchkey serve` (its SQLite database and secret)
    /// [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Embedded mode: the deployment's `postgres://…` database (with LATCHKEY_SECRET).
    #[arg(long, env = "LATCHKEY_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Remote mode: the Latchkey server to verify at.
    #[arg(long, value_name = "URL", requires = "api_key")]
    pub latchkey_url: Option<String>,
    /// Remote mode: an instance verifier's API key (better given as LATCHKEY_API_KEY, which
    /// other users of the machine cannot read from the process list).
    #[arg(long, env = "LATCHKEY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Proxies whose X-Forwarded-For is believed: CIDRs or addresses, comma-separated, or
    /// `none` [default: 127.0.0.0/8,::1].
    #[arg(long, env = "LATCHKEY_PROXY_TRUSTED", value_delimiter = ',')]
    pub proxy_trusted: Option<Vec<String>>,
    /// Embedded mode: how often the change log is read for other nodes' writes [default: 500].
    #[arg(long, env = "LATCHKEY_CHANGE_POLL_MS")]
    pub change_poll_ms: Option<u64>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS terminator, or on a private
    /// network the operator vouches for).
    #[arg(long, env = "LATCHKEY_INSECURE_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub insecure_http: Option<bool>,
}

impl GatewayArgs {
    /// The settings `serve` shares with the gateway, as `Config::load` and SIGHUP read them.
    fn server_args(&self) -> ServerArgs {
        ServerArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            routes: self.routes.clone(),
            default_permission: self.default_permission.clone(),
            proxy_trusted: self.proxy_trusted.clone(),
            change_poll_ms: self.change_poll_ms,
            insecure_http: self.insecure_http,
            ..ServerArgs::default()
        }
    }
}

/// Runs the gateway until SIGTERM or Ctrl-C.
pub async fn run(args: &GatewayArgs, cacert: Option<PathBuf>) -> anyhow::Result<()> {
    super::init_logging();
    let server_args = args.server_args();
    let config = Config::load(&server_args)?;
    let listen = args
        .listen
        .or(config.gateway.listen)
        .context("no address to listen on: give --listen ADDR (or `[gateway] listen`)")?;
    let upstream = args
        .upstream
        .clone()
        .or(config.gateway.upstream.clone())
        .context("no upstream: give --upstream URL (or `[gateway] upstream`)")?;
    let upstream = UpstreamUrl::parse(&upstream)?;
    let upstream_cacert = args
        .upstream_cacert
        .clone()
        .or(config.gateway.upstream_cacert.clone());
    // Read even for an http:// upstream, so a wrong path fails now rather than at the switch.
    let upstream_trust = UpstreamTrust::load(upstream_cacert.as_deref())?;
    if upstream.is_https() && upstream_trust.is_empty() {
        tracing::warn!(
            upstream = %upstream,
            "no trusted root certificate (the system has none, and no --upstream-cacert): \
             every request to the upstream will be answered 502"
        );
    }
    let timeout = args
        .upstream_timeout
        .or(config.gateway.upstream_timeout)
        .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT);
    if timeout == 0 {
        bail!("--upstream-timeout must be at least 1 second");
    }
    // SPEC §4: API keys cross this listener in headers; outside loopback, plain HTTP only
    // when the operator says something else protects them.
    if !listen.ip().is_loopback() && !config.insecure_http {
        bail!(
            "refusing to serve plain HTTP on {listen}: the gateway has no TLS of its own; put \
             it behind a TLS-terminating proxy (or on a private network) and pass --insecure-http"
        );
    }

    let (verifier, mode) = match &args.latchkey_url {
        Some(url) => {
            if args.database.is_some() {
                bail!("--latchkey-url (remote mode) and --database (embedded mode) exclude each other");
            }
            let key = args
                .api_key
                .as_deref()
                .context("--latchkey-url needs --api-key")?;
            let client = ClientOptions {
                ca_cert: cacert,
                ..ClientOptions::default()
            };
            let verifier = Verifier::remote_with(url, key, &client, RemoteOptions::default())?;
            (verifier, "remote")
        }
        None => {
            if config.database.is_none() {
                let file = config.data_dir.join("latchkey.db");
                if !file.exists() {
                    bail!(
                        "no database at {}: start `latchkey serve` with this data directory \
                         first, or give --database, or --latchkey-url for remote mode",
                        file.display()
                    );
                }
            }
            let secret = crate::app::existing_secret(&config)?;
            let mut options = EmbeddedOptions::default();
            options.engine.cache_capacity = config.cache_capacity;
            options.engine.cache_ttl = config.cache_ttl;
            options.upkeep.change_poll = config.change_poll;
            options.upkeep.usage_flush = config.usage_flush;
            let verifier =
                Verifier::embedded_with(&config.database_url(), secret.expose(), options)
                    .await
                    .context("opening the deployment's database")?;
            // An embedded gateway is a node: it charges the same limits as `serve` does.
            if let (Some(store), Some(engine)) = (&config.ratelimit, verifier.engine()) {
                engine
                    .use_ratelimit_store(store.url.expose(), &store.prefix, store.timeout)
                    .await
                    .context("[ratelimit] store")?;
            }
            (verifier, "embedded")
        }
    };
    let gate = Gate::new(verifier, config.routes.clone()).with_source("gateway");
    super::reload_routes_on_hangup(config.clone(), server_args, gate.clone());
    let gateway = Gateway::new(
        gate,
        GatewayOptions {
            upstream: upstream.clone(),
            upstream_timeout: Duration::from_secs(timeout),
            trusted_proxies: TrustedProxies::new(config.proxy_trusted.clone()),
            upstream_trust,
        },
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    let routes = config.routes.as_ref().map_or(0, |t| t.routes().len());
    // Neither the API key nor the database URL (it may hold a password) is logged.
    tracing::info!(
        address = %address,
        upstream = %upstream,
        mode,
        routes,
        upstream_timeout_s = timeout,
        "gateway listening on http://{address}"
    );
    latchkey_gateway::serve(listener, gateway, super::shutdown_signal(), DRAIN).await;
    Ok(())
}
