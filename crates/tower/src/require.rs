//! One route's permission, without a route table: `.route_layer(RequirePermission::layer("documents:write"))`.

use crate::principal::Principal;
use http::{Request, Response};
use latchkey_core::{Denial, Permission};
use latchkey_proto::Rejection;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Refuses a request whose [`Principal`] lacks a permission (403 `insufficient_permissions`),
/// or that has none (401). Goes inside [`crate::LatchkeyLayer`].
pub struct RequirePermission;

impl RequirePermission {
    /// Panics on an invalid permission: it is written in the service's code, not sent by a client.
    pub fn layer(permission: &str) -> RequirePermissionLayer {
        let p = Permission::parse(permission)
            .unwrap_or_else(|e| panic!("RequirePermission({permission:?}): {e}"));
        RequirePermissionLayer(Arc::new(p))
    }
}

#[derive(Clone)]
pub struct RequirePermissionLayer(Arc<Permission>);

impl<S> Layer<S> for RequirePermissionLayer {
    type Service = RequirePermissionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequirePermissionService {
            inner,
            permission: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequirePermissionService<S> {
    inner: S,
    permission: Arc<Permission>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequirePermissionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let refusal = match req.extensions().get::<Principal>() {
            None => Some(Rejection::missing_credential()),
            Some(p) if !p.permissions.allows(&self.permission) => Some(Rejection::Denied {
                denial: Denial::InsufficientPermissions,
                presented: true,
            }),
            Some(_) => None,
        };
        match refusal {
            Some(r) => {
                let resp = r.to_response().map(ResBody::from);
                Box::pin(async move { Ok(resp) })
            }
            None => Box::pin(self.inner.call(req)),
        }
    }
}
