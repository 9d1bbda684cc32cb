//! The one integration-test binary (each extra binary costs a link). Every scenario runs
//! against SQLite and, when LATCHKEY_TEST_POSTGRES_URL is set, PostgreSQL.

mod audit;
mod bad_input;
mod browser;
mod changes;
mod cli;
mod cluster;
mod contract;
mod credentials;
mod credits;
mod dashboard;
mod durability;
mod errors;
mod escalation;
mod forward_auth;
mod front_doors;
mod gateway;
mod harness;
mod inheritance;
mod keys;
mod ops;
mod outage;
mod process;
mod proto_contract;
mod proxies;
mod publishable;
mod ratelimit_cluster;
mod ratelimits;
mod secrets_in_logs;
mod tenancy;
mod tokens;
mod upstream;
mod usage;
mod verifier;
mod verify;
