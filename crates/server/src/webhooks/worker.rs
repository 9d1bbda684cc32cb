//! Delivers the outbox: claims due deliveries, POSTs them signed per Standard Webhooks v1,
//! records the outcome, and schedules the retry. At least once: a node that dies between
//! sending and recording leaves its lease to run out, and the attempt is sent again (with the
//! same `webhook-id`, so the receiver can tell).

use super::WebhookSettings;
use crate::state::AppState;
use latchkey_core::webhooks;
use latchkey_store::{AttemptOutcome, WebhookDelivery, WebhookEndpoint};
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed attempt is this node's: well beyond the request timeout.
const LEASE_SECONDS: i64 = 60;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts claimed at once (and sent concurrently).
const BATCH: i64 = 16;
/// What an answer's status is recorded with; the body is never kept.
const REFUSED: &str = "refused: the address is loopback, private or otherwise not public";

/// True for addresses a webhook must not reach unless `allow_private_targets`: loopback,
/// private (RFC 1918, ULA), link-local, unspecified, multicast, broadcast, CGNAT (RFC 6598),
/// documentation and benchmarking ranges, and IPv4 mapped into IPv6 for any of those.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // CGNAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // ULA
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 to anything
        }
    }
}

/// Resolves through the system and keeps only public addresses, so the address checked is the
/// one connected to (no second lookup an attacker's DNS could answer differently).
struct PublicOnly;

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED)
    }
}
impl std::error::Error for Refused {}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs())
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??
                    .filter(|a| !is_forbidden(a.ip()))
                    .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client deliveries go through: no redirects followed (a 3xx is a failed attempt, so a
/// redirect cannot lead to a private address), no proxy from the environment, 15 s per attempt.
pub fn client(settings: &WebhookSettings) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("Latchkey-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private_targets {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build().expect("the webhook client builds")
}

/// Runs until `closing` turns true.
pub async fn run(state: AppState) {
    let client = client(&state.webhooks.settings);
    let mut closing = state.closing.subscribe();
    let bell = state.webhooks.bell.clone();
    let mut expiry_checked: Option<std::time::Instant> = None;
    loop {
        if *closing.borrow() {
            return;
        }
        let settings = &state.webhooks.settings;
        if expiry_checked.is_none_or(|t| t.elapsed() >= settings.expiry_check) {
            expiry_checked = Some(std::time::Instant::now());
            if let Err(e) = state
                .store
                .queue_key_expiry_events(&settings.expiring_days)
                .await
            {
                tracing::warn!(error = %e, "could not check keys for expiry events");
            }
        }
        let claimed = match state
            .store
            .claim_webhook_deliveries(LEASE_SECONDS, BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not read due webhook deliveries");
                Vec::new()
            }
        };
        let full = claimed.len() as i64 == BATCH;
        futures::future::join_all(
            claimed
                .into_iter()
                .map(|(d, w)| attempt(&state, &client, d, w)),
        )
        .await;
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(state.webhooks.settings.poll) => {}
            _ = bell.notified() => {}
            _ = closing.changed() => {}
        }
    }
}

async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    d: WebhookDelivery,
    w: WebhookEndpoint,
) {
    let outcome = send(state, client, &d, &w).await;
    if let Err(e) = state.store.record_webhook_attempt(&d, &outcome).await {
        // The lease runs out and the attempt is made again.
        tracing::warn!(error = %e, delivery = %d.id, "could not record a webhook attempt");
    }
}

/// Every signature the receiver should accept: the current secret's, and the previous one's
/// during a rotation's overlap.
fn signatures(
    state: &AppState,
    d: &WebhookDelivery,
    w: &WebhookEndpoint,
    timestamp: i64,
) -> Option<String> {
    let mut sealed = vec![w.secret.as_str()];
    if let (Some(p), Some(until)) = (&w.previous_secret, w.previous_expires_at) {
        if until > crate::now() {
            sealed.push(p.as_str());
        }
    }
    let sigs: Vec<String> = sealed
        .into_iter()
        .filter_map(|s| state.webhooks.open(&w.id, s))
        .filter_map(|s| webhooks::secret_key(s.expose()))
        .map(|key| webhooks::sign(&key, &d.event_id, timestamp, d.payload.as_bytes()))
        .collect();
    (!sigs.is_empty()).then(|| sigs.join(" "))
}

async fn send(
    state: &AppState,
    client: &reqwest::Client,
    d: &WebhookDelivery,
    w: &WebhookEndpoint,
) -> AttemptOutcome {
    let settings = &state.webhooks.settings;
    let retry = |status_code: Option<i64>, error: String| match settings
        .retry_schedule
        .get(d.attempts as usize)
    {
        Some(wait) => AttemptOutcome::Retry {
            next_attempt_at: crate::now() + jittered(*wait).as_secs() as i64,
            status_code,
            error,
        },
        None => AttemptOutcome::Failed {
            status_code,
            error,
            disable_endpoint: false,
        },
    };
    let url = match reqwest::Url::parse(&w.url) {
        Ok(u) => u,
        Err(_) => return retry(None, "the endpoint's URL does not parse".into()),
    };
    // An address written in the URL is never looked up, so the resolver does not see it.
    if !settings.allow_private_targets {
        let literal = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        if literal.is_some_and(is_forbidden) {
            return retry(None, REFUSED.into());
        }
    }
    let timestamp = crate::now();
    let Some(signature) = signatures(state, d, w, timestamp) else {
        return retry(
            None,
            "the endpoint's secret does not open with this server secret".into(),
        );
    };
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    match result {
        Ok(resp) => {
            let status = resp.status();
            let code = Some(i64::from(status.as_u16()));
            if status.is_success() {
                AttemptOutcome::Succeeded {
                    status_code: i64::from(status.as_u16()),
                }
            } else if status == reqwest::StatusCode::GONE {
                AttemptOutcome::Failed {
                    status_code: code,
                    error: "410 Gone: the endpoint is disabled".into(),
                    disable_endpoint: true,
                }
            } else if status.is_redirection() {
                retry(
                    code,
                    format!("HTTP {}: redirects are not followed", status.as_u16()),
                )
            } else {
                retry(code, format!("HTTP {}", status.as_u16()))
            }
        }
        Err(e) => retry(None, describe(&e)),
    }
}

/// A short, secret-free account of a failed request (no URL, which may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<Refused>() {
            return REFUSED.into();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out after 15 s".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// `wait` ± 10 %, so retries of many deliveries spread out.
fn jittered(wait: Duration) -> Duration {
    let f = rand::thread_rng().gen_range(0.9..=1.1);
    wait.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "ff02::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
