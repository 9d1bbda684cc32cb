//! Latchkey's HTTP service: the API, its authentication, the cache in front of the store, the
//! process around them (configuration, bootstrap, TLS, shutdown) and the command line.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod follower;
pub mod metrics_layer;
pub mod password;
pub mod routes;
pub mod signing;
pub mod state;
pub mod throttle;
pub mod usage;

pub use app::App;
pub use config::Config;

/// Wall-clock unix seconds: the unit of every stored time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
