// glibc's malloc spent a fifth of a verification request's instructions (callgrind, see
// docs/performance.md); mimalloc's thread-local free lists cut that for the many small
// allocations of a request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    std::process::exit(latchkey_server::cli::main().await);
}
