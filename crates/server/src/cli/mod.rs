//! The `latchkey` command line: `serve`, `init` and `signing-keys` run against the database;
//! `keys`, `users`, `workspaces`, `tokens` and `portal` are clients of a running server; `gateway` is the
//! reverse proxy in front of a provider's API.

pub mod client;
pub mod gateway;
pub mod import;
pub mod table;

use crate::config::{Config, ServerArgs};
use crate::App;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "API keys and access tokens, self-hosted"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    client: client::ClientOpts,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (on first start, creates the instance admin and prints its key once).
    Serve(ServerArgs),
    /// Initialise an empty database and print the admin credentials once (`--json` for scripts).
    Init(ServerArgs),
    /// Manage the keys that sign access tokens (against the database, like `init`).
    #[command(subcommand)]
    SigningKeys(SigningKeysCommand),
    /// Bulk-create keys directly in the database, for load tests and benchmarks (same hashing
    /// and schema as `POST /v1/keys`). Writes the new keys, one per line, to `--out`.
    #[command(hide = true)]
    SeedKeys(SeedArgs),
    /// A reverse proxy in front of an existing HTTP API: verifies every request, then forwards
    /// it with the caller's identity (SPEC §10.4).
    Gateway(gateway::GatewayArgs),
    /// Manage API keys on a running server.
    #[command(subcommand)]
    Keys(client::KeysCommand),
    /// Manage users on a running server.
    #[command(subcommand)]
    Users(client::UsersCommand),
    /// Manage workspaces, members, roles and grants on a running server.
    #[command(subcommand)]
    Workspaces(client::WorkspacesCommand),
    /// Exchange a key for an access token, and manage environment tokens, on a running server.
    #[command(subcommand)]
    Tokens(client::TokensCommand),
    /// Sign a member into the dashboard with a single-use link, from another product (SPEC §7).
    #[command(subcommand)]
    Portal(client::PortalCommand),
}

#[derive(clap::Args)]
struct SeedArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// How many keys.
    #[arg(long)]
    count: usize,
    /// Where to write the keys (at most `--keep` of them), one per line.
    #[arg(long)]
    out: std::path::PathBuf,
    /// How many of the keys to write out.
    #[arg(long, default_value_t = 10_000)]
    keep: usize,
}

#[derive(Subcommand)]
enum SigningKeysCommand {
    /// Sign new tokens with a fresh key. The previous key stays in the JWKS until every token
    /// it signed has expired; running nodes pick the new key up within a second.
    Rotate(RotateArgs),
}

#[derive(clap::Args)]
struct RotateArgs {
    /// The previous key is compromised: revoke it now. Every token it signed stops verifying
    /// (within a second on every node) and the JWKS drops it.
    #[arg(long)]
    revoke_previous: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs the command line; returns the process exit code.
pub async fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args).await,
        Command::Init(args) => init(&args, cli.client.json).await,
        Command::SeedKeys(args) => seed_keys(&args).await,
        Command::SigningKeys(SigningKeysCommand::Rotate(args)) => {
            rotate_signing_key(&args.server, args.revoke_previous, cli.client.json).await
        }
        Command::Gateway(args) => gateway::run(&args, cli.client.cacert.clone()).await,
        Command::Keys(c) => client::run(&cli.client, client::ClientCommand::Keys(c)).await,
        Command::Users(c) => client::run(&cli.client, client::ClientCommand::Users(c)).await,
        Command::Workspaces(c) => {
            client::run(&cli.client, client::ClientCommand::Workspaces(c)).await
        }
        Command::Tokens(c) => client::run(&cli.client, client::ClientCommand::Tokens(c)).await,
        Command::Portal(c) => client::run(&cli.client, client::ClientCommand::Portal(c)).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        fmt.json().init();
    } else {
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

async fn serve(args: &ServerArgs) -> anyhow::Result<()> {
    init_logging();
    let config = Config::load(args)?;
    config.check_transport()?;
    let tls = config.load_tls().await?;
    if config.public_url.is_none()
        && (config.database.is_some() || !config.listen.ip().is_loopback())
    {
        tracing::warn!(
            "LATCHKEY_PUBLIC_URL is not set: access tokens will name this node's own address as \
             their issuer, so other nodes, and this one on another address, will refuse them"
        );
    }
    let app = App::open(&config).await?;
    reload_routes_on_hangup(config.clone(), args.clone(), app.state.gate.clone());
    if let Some(b) = app.bootstrap().await? {
        // Deliberately on stdout and not through the logger: shown once, to whoever started us.
        println!(
            "\nLatchkey initialised. Save these now; they will not be shown again.\n\n  \
             admin email:    {}\n  admin password: {}\n  admin API key:  {}\n",
            b.admin_email, b.admin_password, b.admin_key
        );
    }
    let listener = std::net::TcpListener::bind(config.listen)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(address = %listener.local_addr()?, "listening on {scheme}://{}", listener.local_addr()?);
    app.serve(listener, tls, shutdown_signal()).await
}

async fn init(args: &ServerArgs, json: bool) -> anyhow::Result<()> {
    init_logging();
    let config = Config::load(args)?;
    let app = App::open(&config).await?;
    let Some(b) = app.bootstrap().await? else {
        anyhow::bail!("this database is already initialised");
    };
    app.state.store.close().await;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "admin_user_id": b.admin_user_id,
                "admin_email": b.admin_email,
                "admin_password": b.admin_password,
                "admin_key": b.admin_key,
                "workspace_id": b.workspace_id,
            })
        );
    } else {
        println!(
            "admin email:    {}\nadmin password: {}\nadmin API key:  {}\nworkspace:      {} (Default)\n\
             These are shown once; store them now.",
            b.admin_email, b.admin_password, b.admin_key, b.workspace_id
        );
    }
    Ok(())
}

/// Keys for the instance admin in its first workspace, in batches of 10,000 per transaction.
async fn seed_keys(args: &SeedArgs) -> anyhow::Result<()> {
    use latchkey_core::{ApiKey, Environment, KeyType};
    use std::io::Write;
    let config = Config::load(&args.server)?;
    let app = App::open(&config).await?;
    let store = &app.state.store;
    let admin = store
        .user_by_email(&config.admin_email)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no instance admin {}: run `latchkey init` first",
                config.admin_email
            )
        })?;
    let (workspace_id, _, _) = store
        .user_workspaces(&admin.id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the instance admin is in no workspace"))?;
    let actor = latchkey_store::Actor {
        user_id: Some(admin.id.clone()),
        credential_name: Some("latchkey seed-keys".into()),
        ..Default::default()
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < args.count {
        let n = (args.count - done).min(10_000);
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            let key = ApiKey::generate(KeyType::Secret, Environment::Live);
            if done + i < args.keep {
                writeln!(out, "{}", key.secret().expose())?;
            }
            batch.push(latchkey_store::NewApiKey::for_key(
                &key,
                &app.state.engine.hasher,
                format!("seeded {}", done + i),
                workspace_id.clone(),
                admin.id.clone(),
            ));
        }
        store.insert_keys_bulk(&batch, &actor).await?;
        done += n;
    }
    out.flush()?;
    store.close().await;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "seeded {done} keys in {secs:.1} s ({:.0} keys/s)",
        done as f64 / secs
    );
    Ok(())
}

async fn rotate_signing_key(
    args: &ServerArgs,
    revoke_previous: bool,
    json: bool,
) -> anyhow::Result<()> {
    init_logging();
    let config = Config::load(args)?;
    let app = App::open(&config).await?;
    let new = app.state.engine.signing.generate();
    app.state
        .store
        .rotate_signing_key(&new, revoke_previous)
        .await?;
    app.state.store.close().await;
    if json {
        println!(
            "{}",
            serde_json::json!({ "kid": new.kid, "revoked_previous": revoke_previous })
        );
    } else if revoke_previous {
        println!(
            "signing with {} from now on; the previous keys are revoked, and every token they signed with them",
            new.kid
        );
    } else {
        println!(
            "signing with {} from now on; the previous key stays published while its tokens live",
            new.kid
        );
    }
    Ok(())
}

/// SIGTERM (orchestrators) or Ctrl-C.
/// SIGHUP reads the route table again (the configuration file's `[[gateway.routes]]`; the
/// `--route` flags stay as given). A table that does not parse is logged and the old one kept:
/// a typo must not open or close every route.
pub(crate) fn reload_routes_on_hangup(
    config: Config,
    args: ServerArgs,
    gate: latchkey_tower::Gate,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            match config.reload_routes(&args) {
                Ok(routes) => {
                    let count = routes.as_ref().map_or(0, |t| t.routes().len());
                    gate.set_routes(routes);
                    tracing::info!(routes = count, "SIGHUP: route table reloaded");
                }
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "SIGHUP: the route table does not parse; keeping the one in use"
                    )
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (config, args, gate);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
