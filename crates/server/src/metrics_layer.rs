//! Prometheus metrics: the recorder (installed once per process) and the request-latency
//! histogram. The per-verification counters belong to the engine (`latchkey_engine::Counters`).

use axum::http::{Method, StatusCode};
use metrics::Histogram;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // A histogram keeps every raw sample until it is drained, by a scrape or by
            // upkeep; without this, a server nobody scrapes grows by every request it serves
            // (bench/soak.sh saw 137 MB become 1.6 GB in 25 minutes).
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The method as a label: only standard methods, since arbitrary ones would grow the metrics
/// without bound.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Histogram handles by series (`"GET 200 /v1/me"`): the `histogram!` macro looks the series up
/// in the registry on each call, hashing and allocating its labels, which costs more per request
/// than the recording. The key set is bounded: standard methods × route templates × statuses.
static LATENCY: LazyLock<RwLock<HashMap<Box<str>, Histogram>>> = LazyLock::new(Default::default);

/// Records one request's latency, labelled by route template (`/v1/keys/{id}`), never by raw
/// path: ids stay out of metrics.
pub fn observe(method: &'static str, route: &str, status: StatusCode, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let mut buf = [0u8; 160];
    let key = series_key(&mut buf, method, status, route);
    if let Some(k) = key {
        if let Some(h) = read(&LATENCY).get(k) {
            h.record(seconds);
            return;
        }
    }
    let h = metrics::histogram!(
        "latchkey_http_request_duration_seconds",
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.as_str().to_owned()
    );
    h.record(seconds);
    // A handle taken before the recorder exists records nothing: never keep one of those.
    let installed = HANDLE.get().is_some_and(Option::is_some);
    if let Some(k) = key.filter(|_| installed) {
        write(&LATENCY).insert(k.into(), h);
    }
}

/// `"{method} {status} {route}"` in `buf`, without allocating; `None` if it does not fit.
fn series_key<'b>(
    buf: &'b mut [u8],
    method: &str,
    status: StatusCode,
    route: &str,
) -> Option<&'b str> {
    let mut len = 0;
    for part in [method, " ", status.as_str(), " ", route] {
        buf.get_mut(len..len + part.len())?
            .copy_from_slice(part.as_bytes());
        len += part.len();
    }
    std::str::from_utf8(&buf[..len]).ok()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_are_method_status_route_and_refuse_what_does_not_fit() {
        let mut buf = [0u8; 160];
        assert_eq!(
            series_key(&mut buf, "GET", StatusCode::OK, "/v1/keys/{id}"),
            Some("GET 200 /v1/keys/{id}")
        );
        let long = "/x".repeat(100);
        assert_eq!(series_key(&mut buf, "GET", StatusCode::OK, &long), None);
    }
}
