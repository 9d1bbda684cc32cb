//! A fixed-rate load: `paced URL RATE SECONDS CONNECTIONS KEYS_FILE` sends `GET /items/<n>`
//! with a different key from KEYS_FILE each time, RATE requests per second spread over
//! CONNECTIONS keep-alive connections on a schedule that does not wait for answers (wrk only
//! waits, so its rate is whatever the server allows). Prints one line:
//! `achieved_rps p50_us p99_us p999_us non_2xx late`.
//!
//! Latency is from sending to the whole answer (the timer's millisecond granularity would
//! otherwise count as the server's). `late` counts requests whose slot passed before the
//! connection's previous answer came back: when it is more than a few per cent, the server is
//! not keeping up at this rate, and their wait is not in the latency.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

struct Tally {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    late: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, rate, seconds, connections, keys] = &args[..] else {
        eprintln!("usage: paced URL RATE SECONDS CONNECTIONS KEYS_FILE");
        std::process::exit(2);
    };
    let rate: f64 = rate.parse().expect("RATE");
    let seconds: f64 = seconds.parse().expect("SECONDS");
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let keys: Vec<String> = std::fs::read_to_string(keys)
        .expect("KEYS_FILE")
        .lines()
        .map(str::to_owned)
        .collect();
    let authority = url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/')
        .to_owned();
    // One thread: the generator takes one core's worth at most, and its timing is not shared
    // with a scheduler's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (tally, elapsed) = rt.block_on(async move {
        let keys = std::sync::Arc::new(keys);
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let total = (rate * seconds) as u64;
        let mut tasks = Vec::new();
        for c in 0..connections as u64 {
            let keys = keys.clone();
            let authority = authority.clone();
            tasks.push(tokio::spawn(async move {
                let mut send = connect(&authority).await;
                let mut t = Tally {
                    latencies_us: Vec::new(),
                    non_2xx: 0,
                    late: 0,
                };
                let mut i = c;
                while i < total {
                    let slot = start + Duration::from_secs_f64(i as f64 / rate);
                    // Past the slot already: the previous answer came back after it.
                    if tokio::time::Instant::now() > slot {
                        t.late += 1;
                    }
                    tokio::time::sleep_until(slot).await;
                    let key = &keys[i as usize % keys.len()];
                    let req = Request::get(format!("/items/{}", i % 1000))
                        .header("host", &authority)
                        .header("authorization", format!("Bearer {key}"))
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    // A server may close a keep-alive connection after so many requests
                    // (nginx: keepalive_requests): then a new one, as any client would.
                    if send.ready().await.is_err() {
                        send = connect(&authority).await;
                    }
                    let sent = Instant::now();
                    let resp = send.send_request(req).await.expect("an answer");
                    let status = resp.status();
                    resp.into_body().collect().await.expect("a body");
                    t.latencies_us.push(sent.elapsed().as_micros() as u32);
                    if !status.is_success() {
                        t.non_2xx += 1;
                    }
                    i += connections as u64;
                }
                t
            }));
        }
        let mut all = Tally {
            latencies_us: Vec::new(),
            non_2xx: 0,
            late: 0,
        };
        for task in tasks {
            let t = task.await.expect("a connection's task");
            all.latencies_us.extend(t.latencies_us);
            all.non_2xx += t.non_2xx;
            all.late += t.late;
        }
        (all, tokio::time::Instant::now() - start)
    });
    let mut l = tally.latencies_us;
    l.sort_unstable();
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    println!(
        "{:.0} {} {} {} {} {}",
        l.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(0.999),
        tally.non_2xx,
        tally.late
    );
}

async fn connect(authority: &str) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    send
}
