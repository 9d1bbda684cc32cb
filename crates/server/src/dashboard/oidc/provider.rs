//! The provider's metadata and signing keys (OpenID Connect Discovery), fetched on first use,
//! not at startup (a provider that is down must not keep Latchkey from starting), and kept for
//! an hour. A refresh that fails keeps what was known; with nothing known the sign-in page says
//! the provider is unreachable, and asks again at most every few seconds.

use openidconnect::core::CoreProviderMetadata;
use openidconnect::IssuerUrl;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long discovered metadata and keys are used before they are fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// An ID token whose signature the cached keys reject fetches the keys again (the provider may
/// have rotated them), but at most this often.
pub const KEYS_MIN_AGE: Duration = Duration::from_secs(60);
/// After a failed fetch, sign-in attempts are answered from what is known (or 503) for this
/// long before the provider is asked again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(3);

pub struct Fetched {
    pub metadata: CoreProviderMetadata,
    at: Instant,
}

pub struct Provider {
    issuer: IssuerUrl,
    http: reqwest::Client,
    cached: RwLock<Option<Arc<Fetched>>>,
    /// One fetch at a time; holds when the last one failed.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// The provider could not be reached, or answered something that is not its metadata.
#[derive(Debug)]
pub struct Unreachable;

impl Provider {
    pub fn new(issuer: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Never follow a redirect: the provider's endpoints are the ones it published, and
            // a redirect would carry the client secret or a code somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_owned())?,
            http,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn current(&self, max_age: Duration) -> Option<Arc<Fetched>> {
        let c = self.cached.read().expect("not poisoned").clone()?;
        (c.at.elapsed() < max_age).then_some(c)
    }

    /// Metadata no older than [`MAX_AGE`], or the last known if the provider cannot be reached.
    pub async fn metadata(&self) -> Result<Arc<Fetched>, Unreachable> {
        self.no_older_than(MAX_AGE).await
    }

    /// Metadata (and keys) fetched after `max_age` ago, or the last known if the provider
    /// cannot be reached now.
    pub async fn no_older_than(&self, max_age: Duration) -> Result<Arc<Fetched>, Unreachable> {
        if let Some(c) = self.current(max_age) {
            return Ok(c);
        }
        let mut last_failure = self.fetching.lock().await;
        // Whoever held the lock before may have fetched it.
        if let Some(c) = self.current(max_age) {
            return Ok(c);
        }
        let stale = || self.cached.read().expect("not poisoned").clone();
        if last_failure.is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE) {
            return stale().ok_or(Unreachable);
        }
        match CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await {
            Ok(metadata) => {
                *last_failure = None;
                let f = Arc::new(Fetched {
                    metadata,
                    at: Instant::now(),
                });
                *self.cached.write().expect("not poisoned") = Some(f.clone());
                tracing::info!(issuer = %self.issuer.as_str(), "single sign-on: read the provider's metadata and keys");
                Ok(f)
            }
            Err(e) => {
                *last_failure = Some(Instant::now());
                let cause = std::error::Error::source(&e).map(|c| c.to_string());
                tracing::warn!(
                    issuer = %self.issuer.as_str(),
                    error = %e,
                    cause = cause.as_deref().unwrap_or(""),
                    "single sign-on: the provider's metadata could not be read"
                );
                stale().ok_or(Unreachable)
            }
        }
    }
}
