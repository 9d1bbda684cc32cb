#[tokio::main]
async fn main() {
    std::process::exit(latchkey_server::cli::main().await);
}
