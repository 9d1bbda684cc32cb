//! Where verification happens: in-process on the deployment's database, or at a Latchkey
//! server with a local cache.

use latchkey_client::{Client, ClientError, ClientOptions, RemoteVerifier};
use latchkey_core::{Demand, Denial, PermissionSet, Secret};
use latchkey_engine::{Engine, EngineOptions, Presented, Upkeep, UpkeepIntervals};
use latchkey_proto::denial::Limited;
use latchkey_proto::ratelimit::Fields;
use latchkey_proto::{Identity, Rejection, VerifyAnswer, VerifyRequest};
use latchkey_store::{OpenOptions, SqlStore};
use std::sync::Arc;

pub use latchkey_client::RemoteOptions;

/// Why a [`Verifier`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("{0}")]
    Config(String),
    #[error("opening the database: {0}")]
    Database(String),
}

/// How an embedded verifier runs its engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddedOptions {
    pub engine: EngineOptions,
    pub upkeep: UpkeepIntervals,
}

/// Verifies credentials; cheap to clone.
#[derive(Clone)]
pub struct Verifier(Kind);

#[derive(Clone)]
enum Kind {
    Embedded {
        engine: Engine,
        _upkeep: Option<Arc<Upkeep>>,
    },
    Remote(RemoteVerifier),
}

impl Verifier {
    /// In-process, on the deployment's database (a `postgres://` URL, or the SQLite file of a
    /// single node), with its server secret: the same engine as `latchkey serve`, following the
    /// same change log, so a revocation anywhere reaches it as fast as any node. Leaves the
    /// schema to `serve` (it does not migrate).
    pub async fn embedded(database_url: &str, secret: &str) -> Result<Self, VerifierError> {
        Self::embedded_with(database_url, secret, EmbeddedOptions::default()).await
    }

    pub async fn embedded_with(
        database_url: &str,
        secret: &str,
        options: EmbeddedOptions,
    ) -> Result<Self, VerifierError> {
        if secret.len() < 32 {
            return Err(VerifierError::Config(
                "the server secret (LATCHKEY_SECRET) is at least 32 characters".into(),
            ));
        }
        let store = SqlStore::open_with(
            database_url,
            OpenOptions {
                migrate: false,
                ..OpenOptions::default()
            },
        )
        .await
        .map_err(|e| VerifierError::Database(e.to_string()))?;
        let engine = Engine::open(store, &Secret::new(secret), options.engine)
            .await
            .map_err(|e| VerifierError::Database(e.to_string()))?;
        let upkeep = engine
            .start_upkeep(options.upkeep)
            .await
            .map_err(|e| VerifierError::Database(e.to_string()))?;
        Ok(Self(Kind::Embedded {
            engine,
            _upkeep: Some(Arc::new(upkeep)),
        }))
    }

    /// On an engine the caller runs (and keeps up to date) itself, such as `serve`'s own.
    pub fn from_engine(engine: Engine) -> Self {
        Self(Kind::Embedded {
            engine,
            _upkeep: None,
        })
    }

    /// The engine of an embedded verifier (`None` when remote).
    pub fn engine(&self) -> Option<&Engine> {
        match &self.0 {
            Kind::Embedded { engine, .. } => Some(engine),
            Kind::Remote(_) => None,
        }
    }

    /// At a Latchkey server, with an instance verifier's API key (or any key holding
    /// `latchkey:verify`, for its own workspace only). Needs a Tokio runtime: it starts
    /// following the change stream at once.
    pub fn remote(url: &str, api_key: &str) -> Result<Self, VerifierError> {
        Self::remote_with(
            url,
            api_key,
            &ClientOptions::default(),
            RemoteOptions::default(),
        )
    }

    pub fn remote_with(
        url: &str,
        api_key: &str,
        client: &ClientOptions,
        options: RemoteOptions,
    ) -> Result<Self, VerifierError> {
        let client =
            Client::new(url, api_key, client).map_err(|e| VerifierError::Config(e.to_string()))?;
        Ok(Self(Kind::Remote(RemoteVerifier::new(client, options))))
    }

    /// The remote verifier, when this is one (to see whether it follows the stream).
    pub fn as_remote(&self) -> Option<&RemoteVerifier> {
        match &self.0 {
            Kind::Remote(r) => Some(r),
            Kind::Embedded { .. } => None,
        }
    }

    /// Whether a CORS preflight from `origin` may be allowed: its origin is in the
    /// `allowed_origins` of an active publishable key (SPEC §10.4). `None` from a remote
    /// verifier, which cannot know: the server has no such question in its API, and the
    /// actual request is checked against its own key (docs/api-decisions.md).
    pub async fn preflight_origin_allowed(&self, origin: &str) -> Result<Option<bool>, Rejection> {
        match &self.0 {
            Kind::Embedded { engine, .. } => {
                match engine.publishable_origin_allowed(origin).await {
                    Ok(allowed) => Ok(Some(allowed)),
                    Err(_) => Err(Rejection::Unavailable),
                }
            }
            Kind::Remote(_) => Ok(None),
        }
    }

    /// Verifies presented credentials against a demand.
    pub async fn check(
        &self,
        presented: &Presented<'_>,
        demand: &Demand<'_>,
    ) -> Result<(Identity, Option<Fields>), Rejection> {
        self.check_as(presented, demand, "tower").await
    }

    /// [`Verifier::check`], counted under `source` (`latchkey_verifications_total{source}`)
    /// when embedded; a remote verifier's checks are counted by the server, as `verify`.
    pub async fn check_as(
        &self,
        presented: &Presented<'_>,
        demand: &Demand<'_>,
        source: &'static str,
    ) -> Result<(Identity, Option<Fields>), Rejection> {
        match &self.0 {
            Kind::Embedded { engine, .. } => engine.check(presented, demand, source).await,
            Kind::Remote(remote) => {
                if presented.is_empty() {
                    return Err(Rejection::missing_credential());
                }
                let request = VerifyRequest {
                    key: presented.key.as_deref().map(str::to_owned),
                    access_token: presented.token.as_deref().map(str::to_owned),
                    permissions: demand
                        .permissions
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                    origin: demand.origin.map(str::to_owned),
                    ip: demand.ip.map(|ip| ip.to_string()),
                    ratelimits: vec![],
                    cost: None,
                };
                match remote.verify(&request).await {
                    Ok(answer) => {
                        let fields = answer.ratelimit_fields(latchkey_engine::now());
                        identity_of(&answer, fields)
                    }
                    Err(ClientError::Refused { status }) => {
                        tracing::error!(status, "the Latchkey server refused this verifier's key");
                        Err(Rejection::Unavailable)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot verify: the Latchkey server is unavailable");
                        Err(Rejection::Unavailable)
                    }
                }
            }
        }
    }
}

/// The identity in a verify answer, or the denial it names.
fn identity_of(
    a: &VerifyAnswer,
    fields: Option<Fields>,
) -> Result<(Identity, Option<Fields>), Rejection> {
    if !a.valid {
        let denial = Denial::from_verify_code(&a.code).unwrap_or_else(|| {
            // A code this version does not know is still a refusal.
            tracing::warn!(code = %a.code, "unknown verify code");
            Denial::NotFound
        });
        if denial.is_limit() {
            return Err(Rejection::Limited(Limited {
                denial,
                retry_after: a.retry_after_seconds(latchkey_engine::now()),
                fields,
            }));
        }
        return Err(Rejection::Denied {
            denial,
            presented: true,
        });
    }
    let malformed = || {
        tracing::error!("the Latchkey server's verify answer lacks a field");
        Rejection::Unavailable
    };
    let text = |v: &Option<String>| v.clone().ok_or_else(malformed);
    let identity = Identity {
        user_id: text(&a.owner_id)?,
        workspace_id: text(&a.workspace_id)?,
        key_id: text(&a.key_id)?,
        token_id: a.token_id.clone(),
        key_type: a
            .key_type
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?,
        environment: a
            .environment
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?,
        permissions: PermissionSet::parse_all(a.permissions.iter().map(String::as_str))
            .map_err(|_| malformed())?,
        name: a.name.clone().unwrap_or_default(),
    };
    Ok((identity, fields))
}
