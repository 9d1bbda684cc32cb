//! The layer: verifies each request before the wrapped service sees it.

use crate::principal::Principal;
use crate::verifier::Verifier;
use axum::extract::ConnectInfo;
use http::{header, Request, Response};
use latchkey_core::route::{RouteDecision, RouteTable};
use latchkey_core::Demand;
use latchkey_engine::credentials::{presented_credentials, query_has_credential};
use latchkey_proto::identity::strip_inbound;
use latchkey_proto::Rejection;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Verifies every request with a [`Verifier`]; with a route table, each route's permission
/// (SPEC §10.2), else any valid credential. A verified request reaches the service with its
/// [`Principal`]; any other is answered here (§10.1: problem+json, `X-Latchkey-Code`).
/// `X-Latchkey-*` headers sent by the client are removed either way.
#[derive(Clone)]
pub struct LatchkeyLayer {
    verifier: Verifier,
    routes: Option<Arc<RouteTable>>,
}

impl LatchkeyLayer {
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            routes: None,
        }
    }

    /// Decide each request's permission by `routes`: unmatched paths answer 404 (or the
    /// table's default), `public` routes pass without a credential.
    pub fn with_routes(mut self, routes: RouteTable) -> Self {
        self.routes = Some(Arc::new(routes));
        self
    }
}

impl<S> Layer<S> for LatchkeyLayer {
    type Service = LatchkeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LatchkeyService {
            inner,
            verifier: self.verifier.clone(),
            routes: self.routes.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LatchkeyService<S> {
    inner: S,
    verifier: Verifier,
    routes: Option<Arc<RouteTable>>,
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
        let verifier = self.verifier.clone();
        let routes = self.routes.clone();
        Box::pin(async move {
            match authorize(&verifier, routes.as_deref(), &mut req).await {
                Ok(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    inner.call(req).await
                }
                Err(rejection) => Ok(rejection.to_response().map(ResBody::from)),
            }
        })
    }
}

/// `Ok(None)`: a public route, passed without a credential.
async fn authorize<B>(
    verifier: &Verifier,
    routes: Option<&RouteTable>,
    req: &mut Request<B>,
) -> Result<Option<Principal>, Rejection> {
    strip_inbound(req.headers_mut());
    if req.uri().query().is_some_and(query_has_credential) {
        return Err(Rejection::credentials_in_query());
    }
    let required = match routes.map(|t| t.decide(req.method().as_str(), req.uri().path())) {
        None => None,
        Some(RouteDecision::Public { .. }) => return Ok(None),
        Some(RouteDecision::NotFound) => return Err(Rejection::NoRoute),
        Some(RouteDecision::Require { permission, .. }) => Some(permission),
    };
    let presented =
        presented_credentials(req.headers()).map_err(|_| Rejection::ambiguous_credentials())?;
    let permissions: Vec<_> = required.into_iter().collect();
    let demand = Demand {
        permissions: &permissions,
        environment: None,
        origin: req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        // The connection's peer: behind a proxy, the proxy's address (X-Forwarded-For is
        // not read here: the layer cannot know which proxies to believe).
        ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
    };
    verifier
        .check(&presented, &demand)
        .await
        .map(|identity| Some(Principal(identity)))
}
