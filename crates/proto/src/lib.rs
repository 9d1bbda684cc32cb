//! Latchkey's wire formats, shared by the server and everything that talks to it or enforces
//! its answers: the identity a verified request carries on (SPEC §10.1), the messages of
//! `POST /v1/verify` and of the change stream (§10.6), and the problem+json body of a denial.
//! Plain data on `serde` and `http`: no IO.

pub mod changes;
pub mod denial;
pub mod identity;
pub mod verify;

pub use changes::{ChangeEvent, ChangeKind};
pub use denial::Rejection;
pub use identity::Identity;
pub use verify::{VerifyAnswer, VerifyRequest};
