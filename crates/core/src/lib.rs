//! Latchkey's domain: what a key looks like, how it is hashed, what a permission means and
//! whether a credential may do something. Pure functions and plain data; no IO, no async.

pub mod base62;
pub mod credits;
pub mod delegation;
pub mod hash;
pub mod ids;
pub mod imported;
pub mod issuance;
pub mod key;
pub mod permission;
pub mod ratelimit;
pub mod roles;
pub mod route;
pub mod secret;
pub mod token;
pub mod validate;
pub mod verify;
pub mod webhooks;

pub use hash::{KeyHash, KeyHasher};
pub use ipnet;
pub use key::{ApiKey, Environment, KeyType, ParseKeyError};
pub use permission::{Permission, PermissionSet};
pub use route::{DefaultAccess, Route, RouteDecision, RouteError, RouteTable};
pub use secret::Secret;
pub use validate::{FieldError, Validator};
pub use verify::{Demand, Denial, KeyFacts, OwnerFacts, WorkspacePolicy};
