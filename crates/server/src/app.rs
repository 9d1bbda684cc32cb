//! The process: open the store, load the server secret, bootstrap, serve (plain or TLS) until
//! a shutdown signal, then drain requests and flush batched writes.

use crate::bootstrap::{bootstrap, BootstrapOutput};
use crate::config::Config;
use crate::state::{AppState, Shared};
use crate::{metrics_layer, routes};
use anyhow::{bail, Context};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use latchkey_core::{base62, Secret};
use latchkey_engine::{Engine, EngineOptions, UpkeepIntervals};
use latchkey_store::{Backend, SqlStore};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub struct App {
    pub state: AppState,
    config: Config,
}

impl App {
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let store = SqlStore::open(&config.database_url())
            .await
            .context("opening the database")?;
        let secret = match &config.secret {
            Some(s) => s.clone(),
            None => {
                if store.backend() == Backend::Postgres {
                    tracing::warn!(
                        "no LATCHKEY_SECRET set: using a secret from the data directory; \
                         every node of a cluster must share one LATCHKEY_SECRET"
                    );
                }
                load_or_create_secret(&config.data_dir.join("secret"))?
            }
        };
        let metrics = metrics_layer::install();
        // After `install`: the engine's counters, taken before a recorder exists, would count nothing.
        let engine = Engine::new(
            store.clone(),
            &secret,
            EngineOptions {
                cache_capacity: config.cache_capacity,
                cache_ttl: config.cache_ttl,
            },
        );
        if let Some(store) = &config.ratelimit {
            engine
                .use_ratelimit_store(store.url.expose(), &store.prefix, store.timeout)
                .await
                .context("[ratelimit] store")?;
        }
        let gate = latchkey_tower::Gate::new(
            latchkey_tower::Verifier::from_engine(engine.clone()),
            config.routes.clone(),
        )
        .with_source("forward_auth");
        // The OIDC settings (the client secret among them) live in `sso` alone.
        let mut dashboard = config.dashboard.clone();
        let sso = match dashboard.oidc.take() {
            Some(o) => {
                Some(crate::dashboard::oidc::Sso::new(o, &secret).context("[dashboard.oidc]")?)
            }
            None => None,
        };
        let state = AppState::new(Shared {
            dashboard,
            leaks: config.leaks.clone(),
            sso,
            gate,
            engine,
            store,
            metrics,
            tokens: config.tokens,
            portal_link_ttl: i64::try_from(config.portal_link_ttl.as_secs()).unwrap_or(i64::MAX),
            throttle: Default::default(),
            credential_throttle: crate::throttle::CredentialThrottle::new(config.throttle),
            proxies: crate::client_addr::TrustedProxies::new(config.proxy_trusted.clone()),
            closing: tokio::sync::watch::Sender::new(false),
            webhooks: crate::webhooks::Webhooks::new(config.webhooks.clone(), &secret),
        });
        state
            .engine
            .signing
            .init(&state.store)
            .await
            .context("loading the token signing keys")?;
        Ok(Self {
            state,
            config: config.clone(),
        })
    }

    /// Creates the instance admin on an empty database; `None` if it was already initialised.
    pub async fn bootstrap(&self) -> anyhow::Result<Option<BootstrapOutput>> {
        bootstrap(
            &self.state.store,
            &self.state.engine.hasher,
            &self.config.admin_email,
        )
        .await
    }

    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// Serves on `listener` (HTTPS with `tls`) until `shutdown` resolves; then lets in-flight
    /// requests finish (up to 30 s), flushes `last_used_at` and closes the database.
    pub async fn serve(
        self,
        listener: std::net::TcpListener,
        tls: Option<RustlsConfig>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        listener.set_nonblocking(true)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = self
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", listener.local_addr().expect("bound")));
        self.state.engine.set_issuer(issuer);
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            shutdown.await;
            state.closing.send_replace(true);
            h.graceful_shutdown(Some(Duration::from_secs(30)));
        });
        let upkeep = self
            .state
            .engine
            .start_upkeep(UpkeepIntervals {
                change_poll: self.config.change_poll,
                usage_flush: self.config.usage_flush,
                usage_retention: self.config.usage_retention,
            })
            .await?;
        let webhooks = tokio::spawn(crate::webhooks::worker::run(self.state.clone()));
        let mut router = self.router();
        if tls.is_some() {
            router = router.layer(axum::middleware::map_response(strict_transport_security));
        }
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = match tls {
            Some(tls) => {
                axum_server::from_tcp_rustls(listener, tls)
                    .handle(handle)
                    .serve(service)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)
                    .handle(handle)
                    .serve(service)
                    .await
            }
        };
        upkeep.shutdown().await;
        // An attempt cut short here is sent again once its lease runs out.
        self.state.closing.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), webhooks).await;
        self.state.store.close().await;
        served.context("serving HTTP")
    }
}

/// HSTS (RFC 6797) on every response served over TLS: a browser that once reached the dashboard
/// over HTTPS never sends its session cookie or a key over plain HTTP to this host again.
/// Two years (hstspreload.org's recommended max-age). No `includeSubDomains`: Latchkey cannot
/// know what else lives under its host name (an operator who does can add it at a proxy). Over
/// plain HTTP the header means nothing (RFC 6797 §8.1); a TLS-terminating proxy sets its own.
async fn strict_transport_security(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=63072000"),
    );
    resp
}

/// The server secret of a deployment that `serve` already runs, for a process beside it
/// (the gateway in embedded mode): `LATCHKEY_SECRET` or the file's `secret`, else the one
/// `serve` generated in the data directory. Never generated here: a secret of our own would
/// match no stored key.
pub fn existing_secret(config: &Config) -> anyhow::Result<Secret> {
    if let Some(s) = &config.secret {
        return Ok(s.clone());
    }
    let path = config.data_dir.join("secret");
    read_secret(&path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no server secret: set LATCHKEY_SECRET (or `secret` in latchkey.toml) to the one \
             `latchkey serve` uses, or point --data-dir at its data directory ({} does not exist)",
            path.display()
        )
    })
}

/// The secret in `path`; `None` when there is no such file.
fn read_secret(path: &Path) -> anyhow::Result<Option<Secret>> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().len() >= 32 => Ok(Some(Secret::new(s.trim()))),
        Ok(_) => bail!("{} is shorter than 32 characters", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The single-node secret: generated once, readable by the owner only.
fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    if let Some(s) = read_secret(path)? {
        return Ok(s);
    }
    let mut s = String::new();
    base62::push_random(48, &mut s);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(s.as_bytes())?;
    f.sync_all()?;
    Ok(Secret::new(s))
}
