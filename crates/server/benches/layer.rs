//! What `latchkey-tower`'s `LatchkeyLayer` adds to a request, in process, next to its floor.
//!
//! Requirement (issue 11): a trivial axum handler behind the layer on an embedded engine costs
//! at most 1.5× one HMAC-SHA256 plus one map lookup (`baseline`, measured in the same group)
//! more than the same handler without the layer, p99 included; the remote verifier's cached
//! path stays within 10 % of the embedded one.
//!
//! Each iteration sends one request through the router with `tower::ServiceExt::oneshot` (no
//! network): `bare` is the handler alone, `embedded` the layer on the server's own engine with
//! a warm cache, `embedded_routes` the same with a route table and a permission template, and
//! `remote_cached` the layer on a remote verifier whose cache holds the answer (its server runs
//! on loopback in this process and is not asked during the samples).
//!
//! After the criterion groups, `LATCHKEY_BENCH_PERCENTILES=1` also times 200,000 single
//! requests of each and prints p50/p99/p99.9, since criterion reports means.
//!
//! Run: `cargo bench -p latchkey-server --bench layer`.

mod common;

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use common::{open_app, TempDir};
use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_tower::{LatchkeyLayer, RemoteOptions, RouteTable, Verifier};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower::ServiceExt;

async fn handler() -> &'static str {
    "ok"
}

fn app() -> Router {
    Router::new().route("/documents/{id}", get(handler))
}

fn request(key: &str) -> Request<Body> {
    Request::get("/documents/doc_1")
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("a request")
}

async fn send(router: &Router, key: &str) {
    let resp = router
        .clone()
        .oneshot(request(key))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), 200);
    black_box(resp);
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = TempDir::new();
    let (app_, key) = rt.block_on(open_app(&dir));
    let state = app_.state.clone();
    let (hasher, map) = common::baseline(&key);

    let bare = app();
    let embedded = app().layer(LatchkeyLayer::new(Verifier::from_engine(
        state.engine.clone(),
    )));
    let routes = RouteTable::from_lines(["GET /documents/{id} document:{id}:read"], None).unwrap();
    let embedded_routes = app()
        .layer(LatchkeyLayer::new(Verifier::from_engine(state.engine.clone())).with_routes(routes));
    // A server on loopback for the remote verifier; it answers the first request only.
    let remote = rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(app_.serve(listener, None, std::future::pending()));
        let verifier = Verifier::remote_with(
            &url,
            &key,
            &Default::default(),
            RemoteOptions {
                ttl: Duration::from_secs(3600),
                ..RemoteOptions::default()
            },
        )
        .unwrap();
        let r = verifier.as_remote().unwrap().clone();
        let router = app().layer(LatchkeyLayer::new(verifier));
        // Cached only once the stream is live and no change arrives meanwhile.
        for _ in 0..200 {
            send(&router, &key).await;
            if r.is_following() && r.cached() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(r.cached() > 0, "the remote verifier cached the answer");
        router
    });
    for r in [&bare, &embedded, &embedded_routes, &remote] {
        rt.block_on(send(r, &key));
    }

    let mut g = c.benchmark_group("layer");
    g.bench_function("baseline_hmac_plus_hashmap_1m", |b| {
        b.iter(|| {
            let h = hasher.hash(black_box(&key));
            black_box(map.get(&h).cloned())
        })
    });
    for (name, router) in [
        ("bare", &bare),
        ("embedded", &embedded),
        ("embedded_routes", &embedded_routes),
        ("remote_cached", &remote),
    ] {
        g.bench_function(name, |b| b.to_async(&rt).iter(|| send(router, &key)));
    }
    g.finish();

    if std::env::var_os("LATCHKEY_BENCH_PERCENTILES").is_some() {
        for (name, router) in [
            ("bare", &bare),
            ("embedded", &embedded),
            ("embedded_routes", &embedded_routes),
            ("remote_cached", &remote),
        ] {
            let mut samples: Vec<u64> = rt.block_on(async {
                let mut v = Vec::with_capacity(200_000);
                for _ in 0..200_000 {
                    let t = Instant::now();
                    send(router, &key).await;
                    v.push(t.elapsed().as_nanos() as u64);
                }
                v
            });
            samples.sort_unstable();
            let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
            println!(
                "layer/{name}: p50 {} ns, p99 {} ns, p99.9 {} ns",
                at(0.50),
                at(0.99),
                at(0.999)
            );
        }
    }
}

criterion_group!(benches, layer);
criterion_main!(benches);
