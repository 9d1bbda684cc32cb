//! The listener: HTTP/1.1 (and HTTP/2 with prior knowledge) connections served by hyper-util,
//! with upgrades, until a shutdown signal; then the in-flight requests finish, for a bounded
//! time.

use crate::proxy::Gateway;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves `gateway` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish for at most `drain`, and returns. Upgraded connections
/// (WebSockets) are no longer requests and are not waited for.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer bounds how long a connection may take to send its request headers (hyper's
    // default 30 s), so a client that trickles them cannot hold a connection for ever.
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, mostly: wait rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = gateway.clone();
                let service = service_fn(move |req| {
                    let gw = gw.clone();
                    async move { Ok::<_, Infallible>(gw.handle(peer, req).await) }
                });
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "a client connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("every request finished"),
        _ = tokio::time::sleep(drain) => {
            tracing::warn!(drain_s = drain.as_secs(), "requests still in flight after the drain time; closing")
        }
    }
}
