//! Hostile input: deeply nested JSON, invalid UTF-8, NUL bytes, oversized headers, duplicated
//! credentials. Each is answered with a 4xx (problem+json wherever the request reached
//! Latchkey), changes nothing, and leaves the server healthy. Sent over a raw TCP connection
//! where an HTTP client library would refuse to send it.

use crate::harness::{each_backend, TestServer};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status line, headers and body of the answer to `raw`, sent as is.
async fn raw(srv: &TestServer, request: &[u8]) -> (u16, String, Vec<u8>) {
    let addr = srv.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    // The server closes after answering (`Connection: close`) or after a malformed request.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.get(split + 4..).unwrap_or_default().to_vec();
    (status, head, body)
}

fn request(method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nhost: latchkey\r\nconnection: close\r\n").into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    r.extend_from_slice(body);
    r
}

#[track_caller]
fn problem(answer: &(u16, String, Vec<u8>), status: u16, code: &str) {
    let (s, head, body) = answer;
    assert_eq!(*s, status, "{head}\n{}", String::from_utf8_lossy(body));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON problem");
    assert_eq!(v["code"], code, "{v}");
}

/// `POST /v1/keys` as the admin with `body` as JSON, byte for byte.
async fn post_keys_raw(srv: &TestServer, body: &[u8]) -> (u16, String, Vec<u8>) {
    let auth = format!("Bearer {}", srv.admin_key);
    raw(
        srv,
        &request(
            "POST",
            "/v1/keys",
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
            ],
            body,
        ),
    )
    .await
}

async fn healthy(srv: &TestServer) {
    srv.get("/v1/me", &srv.admin_key).await.expect(200);
}

#[tokio::test]
async fn hostile_bodies_are_refused_and_change_nothing() {
    each_backend(|srv| async move {
        let before = srv.key_count(&srv.admin_key).await;

        // 100,000 levels of nesting: refused by the parser's depth limit, no stack overflow.
        let nested = format!(
            "{{\"name\": \"x\", \"metadata\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let a = post_keys_raw(&srv, nested.as_bytes()).await;
        problem(&a, 400, "bad_request");

        // Not UTF-8.
        let a = post_keys_raw(&srv, b"{\"name\": \"\xff\xfe\xfd\"}").await;
        problem(&a, 400, "bad_request");

        // A raw NUL byte inside a JSON string is not JSON; an escaped one is a control character.
        let a = post_keys_raw(&srv, b"{\"name\": \"a\x00b\"}").await;
        problem(&a, 400, "bad_request");
        srv.post("/v1/keys", &srv.admin_key, json!({"name": "a\u{0}b"}))
            .await
            .problem(422, "validation_failed");
        srv.post(
            "/v1/users",
            &srv.admin_key,
            json!({"email": "nul\u{0}@example.com", "name": "N"}),
        )
        .await
        .problem(422, "validation_failed");
        srv.post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "p", "permissions": ["documents:\u{0}read"]}),
        )
        .await
        .problem(422, "validation_failed");

        // A body that is not an object, and an empty body. serde's structs would take an
        // array of their fields in order: the last one would have created a key.
        let fields = format!("[\"array key\"{}]", ", null".repeat(9));
        for body in [&b"[]"[..], b"\"x\"", b"null", b"12", b"", fields.as_bytes()] {
            let a = post_keys_raw(&srv, body).await;
            assert!(
                a.0 == 400 || a.0 == 422,
                "{} for {:?}",
                a.0,
                String::from_utf8_lossy(body)
            );
            problem(
                &a,
                a.0,
                if a.0 == 400 {
                    "bad_request"
                } else {
                    "validation_failed"
                },
            );
        }

        // An endpoint whose body is optional takes no body, or JSON whitespace, as "no options";
        // any other byte (a form feed is whitespace to Rust, not to JSON) is a bad body.
        let token = |body: &'static [u8]| {
            srv.request(Method::POST, "/v1/auth/token")
                .bearer_auth(&srv.admin_key)
                .header("content-type", "application/json")
                .body(body)
        };
        for body in [&b"\x0c"[..], b"\x0b", b" \x0c ", b"\xc2\xa0"] {
            let r = srv.send(token(body)).await;
            assert!(
                r.status == 400 || r.status == 422,
                "{} for {body:?}",
                r.status
            );
        }
        srv.send(token(b" \r\n\t")).await.expect(200);

        assert_eq!(
            srv.key_count(&srv.admin_key).await,
            before,
            "nothing was created"
        );
        healthy(&srv).await;
    })
    .await;
}

#[tokio::test]
async fn hostile_headers_and_urls_are_refused_and_the_server_stays_healthy() {
    each_backend(|srv| async move {
        let good = format!("Bearer {}", srv.admin_key);

        // A credential that is not visible ASCII can never be a key: 401, not a crash or a 500.
        let a = raw(
            &srv,
            &request("GET", "/v1/me", &[("x-api-key", b"sk_live_\xff\xfe")], b""),
        )
        .await;
        problem(&a, 401, "invalid_credentials");

        // Two different credentials are ambiguous; the same one twice is that one.
        let a = raw(
            &srv,
            &request(
                "GET",
                "/v1/me",
                &[
                    ("authorization", good.as_bytes()),
                    ("authorization", b"Bearer sk_live_somethingelse"),
                ],
                b"",
            ),
        )
        .await;
        problem(&a, 400, "ambiguous_credentials");
        let a = raw(
            &srv,
            &request(
                "GET",
                "/v1/me",
                &[
                    ("authorization", good.as_bytes()),
                    ("authorization", good.as_bytes()),
                ],
                b"",
            ),
        )
        .await;
        assert_eq!(a.0, 200, "{}", a.1);

        // A credential-sized header of 64 KiB: refused as a credential, no echo of it.
        let long = format!("Bearer sk_live_{}", "A".repeat(64 * 1024));
        let a = raw(
            &srv,
            &request("GET", "/v1/me", &[("authorization", long.as_bytes())], b""),
        )
        .await;
        problem(&a, 401, "invalid_credentials");
        assert!(!String::from_utf8_lossy(&a.2).contains("AAAA"));

        // Headers beyond what the HTTP parser buffers: refused before any handler (hyper answers
        // 431 itself), and the next request is served.
        let huge = "x".repeat(2 * 1024 * 1024);
        let a = raw(
            &srv,
            &request("GET", "/v1/me", &[("x-padding", huge.as_bytes())], b""),
        )
        .await;
        assert!(
            (400..500).contains(&a.0) || a.0 == 0,
            "an oversized header block is a 4xx or a closed connection: {}",
            a.1
        );

        // Percent-encoded NUL, invalid UTF-8 and traversal in paths and queries.
        for path in [
            "/v1/keys/%00",
            "/v1/keys/%ff%fe",
            "/v1/keys/..%2f..%2fetc%2fpasswd",
            "/v1/keys?limit=%00",
            "/v1/keys?limit=%ff",
        ] {
            let r = srv
                .send(srv.request(Method::GET, path).bearer_auth(&srv.admin_key))
                .await;
            assert!(
                r.status.is_client_error(),
                "{path}: {} {}",
                r.status,
                r.body
            );
            assert_eq!(
                r.headers.get("content-type").unwrap(),
                "application/problem+json",
                "{path}"
            );
        }
        healthy(&srv).await;
    })
    .await;
}
