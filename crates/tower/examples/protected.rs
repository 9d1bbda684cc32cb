//! A service protected by Latchkey (SPEC §10.5):
//!
//! ```text
//! cargo run -p latchkey-tower --example protected -- --listen 127.0.0.1:3000 \
//!     --latchkey-url http://127.0.0.1:8080 --api-key "$VERIFIER_KEY"
//! LATCHKEY_SECRET=… cargo run -p latchkey-tower --example protected -- --database postgres://…
//! ```
//!
//! `GET /documents/{id}` needs `document:{id}:read`, `POST /documents` needs `documents:write`,
//! `GET /public` needs nothing; each answers the caller's `Principal` as JSON (`null` when public).

use anyhow::Context;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use latchkey_tower::{LatchkeyLayer, Principal, RouteTable, Verifier};
use std::net::SocketAddr;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Remote mode: the Latchkey server.
    #[arg(
        long,
        env = "LATCHKEY_URL",
        requires = "api_key",
        conflicts_with = "database"
    )]
    latchkey_url: Option<String>,
    /// Remote mode: an instance verifier's key.
    #[arg(long, env = "LATCHKEY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Remote mode: a PEM file of CA certificates to trust (a server with a private CA).
    #[arg(long, env = "LATCHKEY_CACERT")]
    cacert: Option<std::path::PathBuf>,
    /// Embedded mode: the deployment's database (with LATCHKEY_SECRET).
    #[arg(long)]
    database: Option<String>,
}

async fn answer(principal: Option<Principal>) -> Json<Option<Principal>> {
    Json(principal)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let verifier = match (&args.latchkey_url, &args.database) {
        (Some(url), None) => {
            let client = latchkey_tower::ClientOptions {
                ca_cert: args.cacert.clone(),
                ..Default::default()
            };
            let key = args.api_key.as_deref().unwrap_or_default();
            Verifier::remote_with(url, key, &client, Default::default())?
        }
        (None, Some(db)) => {
            let secret = std::env::var("LATCHKEY_SECRET")
                .context("embedded mode needs LATCHKEY_SECRET (the server's secret)")?;
            Verifier::embedded(db, &secret).await?
        }
        _ => anyhow::bail!("give --latchkey-url with --api-key, or --database"),
    };
    let routes = RouteTable::from_lines(
        [
            "GET /documents/{id} document:{id}:read",
            "POST /documents documents:write",
            "GET /public public",
        ],
        None,
    )?;
    let app = Router::new()
        .route("/documents/{id}", get(answer))
        .route("/documents", post(answer))
        .route("/public", get(answer))
        .layer(LatchkeyLayer::new(verifier).with_routes(routes));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
