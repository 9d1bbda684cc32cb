//! Latchkey's wire formats, shared by the server and everything that talks to it or enforces
//! its answers: the identity a verified request carries on (SPEC §10.1), the messages of
//! `POST /v1/verify` and of the change stream (§10.6), the bodies of the Admin API that the
//! typed client and the CLI send and read (§6), and the problem+json body of every error.
//! Plain data on `serde` and `http` (and `chrono` for timestamps): no IO.
//!
//! Request bodies leave out every field that is `None` (and every [`Patch::Keep`]), so a client
//! never sends a field its user did not give. Answers mirror the server's JSON field for field;
//! the server's integration suite checks that each one reads and writes back unchanged.

pub mod audit;
pub mod changes;
pub mod denial;
pub mod forwarded;
pub mod identity;
pub mod keys;
pub mod list;
pub mod me;
pub mod patch;
pub mod portal;
pub mod problem;
pub mod ratelimit;
pub mod secret;
pub mod tokens;
pub mod users;
pub mod verify;
pub mod workspaces;

pub use changes::{ChangeEvent, ChangeKind};
pub use denial::Rejection;
pub use identity::Identity;
pub use list::{List, Page};
pub use patch::Patch;
pub use problem::Problem;
pub use verify::{VerifyAnswer, VerifyRequest};

/// Every timestamp of the API: RFC 3339 in UTC (`2030-01-01T00:00:00Z`).
pub type Timestamp = chrono::DateTime<chrono::Utc>;
