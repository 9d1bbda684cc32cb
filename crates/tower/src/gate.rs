//! The one decision every front door outside the API makes about a request (SPEC §10): which
//! permission its route needs, and whether its credentials hold it. The tower layer, forward
//! auth and the gateway all ask a [`Gate`], so a route table, a credential style or a denial
//! means the same thing behind each of them.

use crate::verifier::Verifier;
use arc_swap::ArcSwapOption;
use http::{header, HeaderMap};
use latchkey_core::route::{RouteDecision, RouteTable};
use latchkey_core::{Demand, Permission};
use latchkey_engine::credentials::{presented_credentials, query_has_credential};
use latchkey_proto::ratelimit::Fields;
use latchkey_proto::{Identity, Rejection};
use std::net::IpAddr;
use std::sync::Arc;

/// A request as the gate sees it: the original method and target (`/path?query`, as received,
/// percent-encoded), its headers, and the client address the front door believes.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    pub ip: Option<IpAddr>,
}

/// A request the gate lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A `public` route: no credential asked, none checked.
    Public { keep_credentials: bool },
    /// Verified: who it is, and whether the route forwards the credential itself.
    Verified {
        identity: Identity,
        keep_credentials: bool,
        /// The `RateLimit` fields of the limits it was charged, for the answer.
        ratelimit: Option<Fields>,
    },
}

impl Admission {
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Admission::Verified { identity, .. } => Some(identity),
            Admission::Public { .. } => None,
        }
    }

    /// The `RateLimit-Policy`/`RateLimit` fields to answer with.
    pub fn ratelimit(&self) -> Option<&Fields> {
        match self {
            Admission::Verified { ratelimit, .. } => ratelimit.as_ref(),
            Admission::Public { .. } => None,
        }
    }

    pub fn keep_credentials(&self) -> bool {
        match self {
            Admission::Public { keep_credentials }
            | Admission::Verified {
                keep_credentials, ..
            } => *keep_credentials,
        }
    }
}

/// A verifier and the route table it enforces. Cheap to clone; clones share the table, so
/// [`Gate::set_routes`] (a SIGHUP reload) reaches every connection at once, and a request in
/// flight finishes on the table it started with.
#[derive(Clone)]
pub struct Gate {
    verifier: Verifier,
    routes: Arc<ArcSwapOption<RouteTable>>,
    source: &'static str,
}

impl Gate {
    /// Without a table (`None`), every request needs a valid credential and nothing more
    /// (or the permissions the caller names, see [`Gate::admit`]).
    pub fn new(verifier: Verifier, routes: Option<RouteTable>) -> Self {
        Self {
            verifier,
            routes: Arc::new(ArcSwapOption::from(routes.map(Arc::new))),
            source: "tower",
        }
    }

    /// Labels this gate's verifications in `latchkey_verifications_total{source}` (embedded
    /// verifiers only: a remote one counts at the server, as `verify`).
    pub fn with_source(mut self, source: &'static str) -> Self {
        self.source = source;
        self
    }

    /// Replaces the route table for the requests that arrive from now on.
    pub fn set_routes(&self, routes: Option<RouteTable>) {
        self.routes.store(routes.map(Arc::new));
    }

    pub fn routes(&self) -> Option<Arc<RouteTable>> {
        self.routes.load_full()
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Decides about a request. With a route table, its route's permission (an unmatched
    /// request is [`Rejection::NoRoute`] unless the table has a default); without one,
    /// `otherwise` (forward auth's `?permission=`; empty: any valid credential).
    pub async fn admit(
        &self,
        asked: &Asked<'_>,
        otherwise: &[Permission],
    ) -> Result<Admission, Rejection> {
        let (path, query) = match asked.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (asked.target, None),
        };
        // Before the route: a key in a URL is refused even on a public route, so a client
        // learns at once that it leaks keys into logs.
        if query.is_some_and(query_has_credential) {
            return Err(Rejection::credentials_in_query());
        }
        let (required, keep_credentials) = match self.routes.load().as_deref() {
            None => (None, false),
            Some(table) => match table.decide(asked.method, path) {
                RouteDecision::Public { keep_credentials } => {
                    return Ok(Admission::Public { keep_credentials })
                }
                RouteDecision::NotFound => return Err(Rejection::NoRoute),
                RouteDecision::Require {
                    permission,
                    keep_credentials,
                } => (Some(permission), keep_credentials),
            },
        };
        let presented =
            presented_credentials(asked.headers).map_err(|_| Rejection::ambiguous_credentials())?;
        let routed;
        let permissions: &[Permission] = match required {
            Some(p) => {
                routed = [p];
                &routed
            }
            None => otherwise,
        };
        let demand = Demand {
            permissions,
            environment: None,
            origin: asked
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok()),
            ip: asked.ip,
            ratelimits: &[],
            cost: None,
            within_workspace: None,
        };
        let (identity, ratelimit) = self
            .verifier
            .check_as(&presented, &demand, self.source)
            .await?;
        Ok(Admission::Verified {
            identity,
            keep_credentials,
            ratelimit,
        })
    }
}
