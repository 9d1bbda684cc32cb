//! The layer: verifies each request before the wrapped service sees it.

use crate::gate::{Asked, Gate};
use crate::principal::Principal;
use crate::verifier::Verifier;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use latchkey_core::route::RouteTable;
use latchkey_proto::identity::strip_inbound;
use latchkey_proto::ratelimit::Fields;
use latchkey_proto::Rejection;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Verifies every request with a [`Verifier`]; with a route table, each route's permission
/// (SPEC §10.2), else any valid credential. A verified request reaches the service with its
/// [`Principal`]; any other is answered here (§10.1: problem+json, `X-Latchkey-Code`).
/// `X-Latchkey-*` headers sent by the client are removed either way.
#[derive(Clone)]
pub struct LatchkeyLayer {
    gate: Gate,
}

impl LatchkeyLayer {
    pub fn new(verifier: Verifier) -> Self {
        Self {
            gate: Gate::new(verifier, None),
        }
    }

    /// On a gate made elsewhere (to share its route table, or reload it).
    pub fn from_gate(gate: Gate) -> Self {
        Self { gate }
    }

    /// Decide each request's permission by `routes`: unmatched paths answer 404 (or the
    /// table's default), `public` routes pass without a credential.
    pub fn with_routes(self, routes: RouteTable) -> Self {
        self.gate.set_routes(Some(routes));
        self
    }
}

impl<S> Layer<S> for LatchkeyLayer {
    type Service = LatchkeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LatchkeyService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LatchkeyService<S> {
    inner: S,
    gate: Gate,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LatchkeyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was made ready goes with this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            match authorize(&gate, &mut req).await {
                Ok((principal, ratelimit)) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    let mut resp = inner.call(req).await?;
                    if let Some(fields) = ratelimit {
                        fields.insert(resp.headers_mut());
                    }
                    Ok(resp)
                }
                Err(rejection) => Ok(rejection.to_response().map(ResBody::from)),
            }
        })
    }
}

/// `Ok(None)`: a public route, passed without a credential. With the `RateLimit` fields of
/// the limits charged, for the answer.
async fn authorize<B>(
    gate: &Gate,
    req: &mut Request<B>,
) -> Result<(Option<Principal>, Option<Fields>), Rejection> {
    strip_inbound(req.headers_mut());
    let asked = Asked {
        method: req.method().as_str(),
        target: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        headers: req.headers(),
        // The connection's peer: behind a proxy, the proxy's address (X-Forwarded-For is
        // not read here: the layer cannot know which proxies to believe).
        ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
    };
    let admission = gate.admit(&asked, &[]).await?;
    Ok((
        admission.identity().cloned().map(Principal),
        admission.ratelimit().cloned(),
    ))
}
