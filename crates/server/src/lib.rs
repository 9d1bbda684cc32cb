//! Latchkey's HTTP service: the API and dashboard on top of the verification engine
//! (`latchkey-engine`), and the process around them (configuration, bootstrap, TLS, shutdown) and the command line.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod metrics_layer;
pub mod password;
pub mod ratelimit_headers;
pub mod routes;
pub mod service;
pub mod state;
pub mod throttle;
pub mod webhooks;
pub mod words;

pub use app::App;
pub use config::Config;

pub use latchkey_engine::now;
