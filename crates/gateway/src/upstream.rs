//! Where requests go: the upstream's scheme, authority and base path, and a request's URI
//! moved onto it.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use std::fmt;

/// `http://host:port[/base]`: the API behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    authority: Authority,
    /// Without a trailing `/`; empty for the root.
    base: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream {0:?} is not an absolute http:// URL (http://host:port[/base])")]
    NotHttp(String),
    #[error(
        "the upstream {0:?} is https://: the gateway speaks plain HTTP to its upstream; \
         keep the upstream on loopback or a private network"
    )]
    Https(String),
    #[error("the upstream {0:?} may not carry a user, a query or a fragment")]
    Extra(String),
}

impl UpstreamUrl {
    pub fn parse(s: &str) -> Result<Self, UpstreamError> {
        let uri: Uri = s.parse().map_err(|_| UpstreamError::NotHttp(s.into()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(UpstreamError::Https(s.into())),
            _ => return Err(UpstreamError::NotHttp(s.into())),
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::NotHttp(s.into()))?;
        if authority.as_str().contains('@') || uri.query().is_some() || s.contains('#') {
            return Err(UpstreamError::Extra(s.into()));
        }
        Ok(Self {
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream's URI for a request's `path?query` (which starts with `/`).
    pub fn join(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let pq: PathAndQuery = format!("{}{path_and_query}", self.base).parse()?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_path_prefixes_every_request() {
        let u = UpstreamUrl::parse("http://127.0.0.1:9000/api/").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9000/api");
        assert_eq!(
            u.join("/documents/1?x=%2F").unwrap().to_string(),
            "http://127.0.0.1:9000/api/documents/1?x=%2F"
        );
        let root = UpstreamUrl::parse("http://api.internal").unwrap();
        assert_eq!(root.join("/").unwrap().to_string(), "http://api.internal/");
    }

    #[test]
    fn only_plain_http_urls_without_extras() {
        assert!(matches!(
            UpstreamUrl::parse("https://api.example"),
            Err(UpstreamError::Https(_))
        ));
        for bad in ["api.internal:80", "/api", "ftp://x", "", "http://"] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["http://u:p@api", "http://api/?a=1", "http://api/#f"] {
            assert!(
                matches!(UpstreamUrl::parse(bad), Err(UpstreamError::Extra(_))),
                "{bad:?}"
            );
        }
    }
}
