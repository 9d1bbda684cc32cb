//! Latchkey for Rust services (SPEC §10.5): put [`LatchkeyLayer`] in front of a tower or axum
//! service and every request is verified the way `POST /v1/verify` verifies, before the
//! service sees it. Handlers take the caller as the [`Principal`] extractor.
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use latchkey_tower::{LatchkeyLayer, Principal, RouteTable, Verifier};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let verifier = Verifier::remote("https://latchkey.internal", "sk_live_…")?;
//! let routes = RouteTable::from_lines(
//!     ["GET /documents/{id} document:{id}:read", "GET /public public"],
//!     None,
//! )?;
//! let app: Router = Router::new()
//!     .route("/documents/{id}", get(|p: Principal| async move { Json(p) }))
//!     .layer(LatchkeyLayer::new(verifier).with_routes(routes));
//! # Ok(()) }
//! ```
//!
//! Two ways to verify, one behaviour: [`Verifier::embedded`] runs Latchkey's engine in-process
//! on the deployment's database (the same code as `latchkey serve`, following the same change
//! log); [`Verifier::remote`] asks a Latchkey server and caches its answers, invalidated by the
//! change stream.

mod gate;
mod layer;
mod principal;
mod require;
mod verifier;

pub use gate::{Admission, Asked, Gate};
pub use latchkey_client::ClientOptions;
pub use latchkey_core::route::{DefaultAccess, Route, RouteDecision, RouteError, RouteTable};
pub use latchkey_proto::{Identity, Rejection};
pub use layer::{LatchkeyLayer, LatchkeyService};
pub use principal::Principal;
pub use require::{RequirePermission, RequirePermissionLayer};
pub use verifier::{EmbeddedOptions, RemoteOptions, Verifier, VerifierError};
