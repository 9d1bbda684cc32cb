//! One request through the gateway: ask the Gate, then hand it on to the upstream as a stream
//! and its answer back the same way.

use crate::problem::{self, bad_request};
use crate::tls::UpstreamTrust;
use crate::upstream::UpstreamUrl;
use crate::{cors, hop, Body};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use latchkey_core::KeyType;
use latchkey_proto::forwarded::TrustedProxies;
use latchkey_proto::identity::{insert_anonymous, insert_headers, strip_inbound};
use latchkey_tower::{Admission, Asked, Gate, RouteDecision};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What a gateway forwards to, and whom it believes about client addresses.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub upstream: UpstreamUrl,
    /// How long the upstream's response headers may take (the body then streams for as long
    /// as it takes): past it, 504.
    pub upstream_timeout: Duration,
    pub trusted_proxies: TrustedProxies,
    /// The roots an `https://` upstream's certificate must chain to.
    pub upstream_trust: UpstreamTrust,
}

/// Plain TCP for `http://`, TLS over it for `https://`.
type Connector = HttpsConnector<HttpConnector>;

/// The proxy: a Gate, the upstream and a pool of connections to it. Cheap to clone.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

struct Inner {
    gate: Gate,
    options: GatewayOptions,
    /// Every request but upgrades: HTTP/1.1, or HTTP/2 where an `https://` upstream offers it
    /// by ALPN (one connection then carries concurrent requests).
    client: Client<Connector, Incoming>,
    /// Upgrades (WebSocket): HTTP/2 has no `Upgrade` (its WebSockets are an extended CONNECT
    /// that few servers speak), so these connections offer HTTP/1.1 alone. An upgraded
    /// connection leaves the pool anyway, so a pool of its own costs nothing.
    upgrades: Client<Connector, Incoming>,
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// How long an idle upstream connection stays in the pool.
const POOL_IDLE: Duration = Duration::from_secs(90);

impl Gateway {
    pub fn new(gate: Gate, options: GatewayOptions) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(options.upstream_timeout));
        // The TLS layer above takes `https://` URIs; the TCP connector must not refuse them.
        tcp.enforce_http(false);
        // The URI's scheme decides whether TLS is spoken; the server name sent (SNI) and
        // checked against the certificate is the URI's host.
        let tls =
            || HttpsConnectorBuilder::new().with_tls_config(options.upstream_trust.client_config());
        let any_version = tls()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp.clone());
        let http1_only = tls().https_or_http().enable_http1().wrap_connector(tcp);
        // hyper-util's pooled client: one pool shared by every connection the gateway serves
        // (docs/architecture.md says why this and not Pingora).
        let pooled = |connector| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE)
                .build(connector)
        };
        Self(Arc::new(Inner {
            gate,
            client: pooled(any_version),
            upgrades: pooled(http1_only),
            options,
        }))
    }

    /// The Gate, whose route table a SIGHUP swaps.
    pub fn gate(&self) -> &Gate {
        &self.0.gate
    }

    /// Answers one request from `peer`.
    pub async fn handle(&self, peer: SocketAddr, mut req: Request<Incoming>) -> Response<Body> {
        // What a client sends under these names is never believed nor passed on.
        strip_inbound(req.headers_mut());
        let peer_ip = peer.ip().to_canonical();
        let target = match req.uri().path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.as_str().to_owned(),
            _ => return bad_request("The request target must be a path (/…)"),
        };
        let admission = match self.admit(&req, &target, peer_ip).await {
            Ok(admission) => admission,
            Err(answer) => return answer,
        };
        let readable_by = match &admission {
            Admission::Verified { identity, .. } if identity.key_type == KeyType::Publishable => {
                req.headers().get(header::ORIGIN).cloned()
            }
            _ => None,
        };
        let ratelimit = admission.ratelimit().cloned();
        let client_side = self.hand_on(&mut req, &admission, peer_ip);
        match self.0.options.upstream.join(&target) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return bad_request("The request target is not a valid URI"),
        }
        let mut resp = match self.forward(req, client_side.is_some()).await {
            Ok(resp) => resp,
            Err(answer) => return answer,
        };
        let switched = hop::strip_hop_by_hop(resp.headers_mut());
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            match (client_side, switched) {
                (Some(client_side), Some(protocol)) => {
                    hop::keep_upgrade(resp.headers_mut(), protocol);
                    let upstream_side = hyper::upgrade::on(&mut resp);
                    tokio::spawn(join_upgraded(client_side, upstream_side));
                }
                // A switch nobody asked for cannot be passed on.
                _ => return problem::bad_gateway(),
            }
        }
        if let Some(origin) = readable_by {
            cors::allow_response(resp.headers_mut(), origin);
        }
        // Latchkey's limits, not the upstream's: they replace any fields it sent.
        if let Some(fields) = ratelimit {
            fields.insert(resp.headers_mut());
        }
        resp.map(|body| body.boxed())
    }

    /// The Gate's decision; a CORS preflight is answered here instead (or, for a public route,
    /// let through as one).
    async fn admit(
        &self,
        req: &Request<Incoming>,
        target: &str,
        peer: IpAddr,
    ) -> Result<Admission, Response<Body>> {
        if let Some(origin) = cors::preflight_origin(req.method(), req.headers()) {
            return match self.public_preflight(req.headers(), target) {
                Some(public) => Ok(public),
                None => Err(self.preflight(origin, req.headers()).await),
            };
        }
        let asked = Asked {
            method: req.method().as_str(),
            target,
            headers: req.headers(),
            ip: Some(self.0.options.trusted_proxies.client(peer, req.headers())),
        };
        self.0
            .gate
            .admit(&asked, &[])
            .await
            .map_err(|rejection| problem::rejection(&rejection))
    }

    /// The headers the upstream gets: the client's, less hop-by-hop ones and (unless the route
    /// keeps them) the credentials, plus the identity and `X-Forwarded-*`. Returns the client's
    /// side of an upgrade the request asks for.
    fn hand_on(
        &self,
        req: &mut Request<Incoming>,
        admission: &Admission,
        peer: IpAddr,
    ) -> Option<OnUpgrade> {
        let host = req
            .headers()
            .get(header::HOST)
            .cloned()
            .or_else(|| req.uri().authority().and_then(|a| a.as_str().parse().ok()));
        let headers = req.headers_mut();
        let upgrade = hop::strip_hop_by_hop(headers);
        if !admission.keep_credentials() {
            headers.remove(header::AUTHORIZATION);
            headers.remove(X_API_KEY);
        }
        match admission.identity() {
            Some(identity) => insert_headers(identity, headers),
            None => insert_anonymous(headers),
        }
        let trusted = self.0.options.trusted_proxies.trusts(peer);
        hop::set_forwarded(headers, peer, trusted, host);
        // The client named a host of the gateway; the upstream gets its own (from the URI).
        headers.remove(header::HOST);
        *req.version_mut() = Version::HTTP_11;
        let protocol = upgrade.filter(|p| !hop::is_h2c(p))?;
        hop::keep_upgrade(req.headers_mut(), protocol);
        Some(hyper::upgrade::on(req))
    }

    /// The upstream's answer, as soon as its headers are in (the body follows as a stream);
    /// 502 or 504 when it refuses or takes too long.
    async fn forward(
        &self,
        req: Request<Incoming>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, Response<Body>> {
        let options = &self.0.options;
        let client = if upgrade {
            &self.0.upgrades
        } else {
            &self.0.client
        };
        match tokio::time::timeout(options.upstream_timeout, client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                let upstream = &options.upstream;
                match tls_failure(&e) {
                    Some(tls @ rustls::Error::InvalidCertificate(_)) => tracing::warn!(
                        %upstream,
                        error = %tls,
                        "the upstream's certificate is not trusted: it must be valid for the \
                         upstream's host name and signed by a CA of the system's roots or of \
                         --upstream-cacert"
                    ),
                    Some(tls) => tracing::warn!(
                        %upstream,
                        error = %tls,
                        "the TLS handshake with the upstream failed"
                    ),
                    None => tracing::warn!(
                        %upstream,
                        error = %Causes(&e),
                        "the upstream refused the request"
                    ),
                }
                Err(problem::bad_gateway())
            }
            Err(_) => {
                tracing::warn!(
                    upstream = %options.upstream,
                    timeout_s = options.upstream_timeout.as_secs_f64(),
                    "the upstream did not answer in time"
                );
                Err(problem::gateway_timeout())
            }
        }
    }

    /// A preflight for a `public` route is the API's own business (no key is involved, so no
    /// key's origins can decide it): it is passed on like the public request it asks about.
    fn public_preflight(&self, asked: &HeaderMap, target: &str) -> Option<Admission> {
        let method = asked
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
            .to_str()
            .ok()?;
        let path = target.split('?').next().unwrap_or(target);
        match self.0.gate.routes()?.decide(method, path) {
            RouteDecision::Public { keep_credentials } => {
                Some(Admission::Public { keep_credentials })
            }
            _ => None,
        }
    }

    async fn preflight(&self, origin: &HeaderValue, asked: &HeaderMap) -> Response<Body> {
        let Ok(origin_text) = origin.to_str() else {
            return cors::refuse_preflight();
        };
        match self
            .0
            .gate
            .verifier()
            .preflight_origin_allowed(origin_text)
            .await
        {
            Ok(Some(true)) => cors::allow_preflight(origin, asked),
            Ok(Some(false)) => cors::refuse_preflight(),
            // Remote mode: the server cannot be asked, so the preflight is let through and the
            // actual request is checked against its own key's origins (docs/api-decisions.md).
            Ok(None) => cors::allow_preflight(origin, asked),
            Err(rejection) => problem::rejection(&rejection),
        }
    }
}

/// The TLS error under a client error, when the handshake with the upstream is what failed.
/// hyper-rustls hands it up inside an `io::Error` inside another, and an `io::Error`'s
/// `source()` skips the error it wraps, so those are opened with `get_ref()`.
fn tls_failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// An error and its sources, `: `-separated. hyper-util's own message is only "client error
/// (Connect)"; the reason (refused, reset, no such host) is in the sources, which a JSON log
/// line would otherwise not show.
struct Causes<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// After a 101 from both sides: the two upgraded connections, joined until either closes.
async fn join_upgraded(client: OnUpgrade, upstream: OnUpgrade) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(error = %e, "an upgraded connection ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "an upgrade did not complete"),
    }
}
