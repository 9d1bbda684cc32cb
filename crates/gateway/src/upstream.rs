//! Where requests go: the upstream's scheme, authority and base path, and a request's URI
//! moved onto it.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use std::fmt;

/// `http[s]://host[:port][/base]`: the API behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    scheme: Scheme,
    authority: Authority,
    /// Without a trailing `/`; empty for the root.
    base: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "the upstream {0:?} is not an absolute http:// or https:// URL \
         (http[s]://host[:port][/base])"
    )]
    NotHttp(String),
    #[error("the upstream {0:?} may not carry a user, a query or a fragment")]
    Extra(String),
}

impl UpstreamUrl {
    pub fn parse(s: &str) -> Result<Self, UpstreamError> {
        let uri: Uri = s.parse().map_err(|_| UpstreamError::NotHttp(s.into()))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(UpstreamError::NotHttp(s.into())),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::NotHttp(s.into()))?;
        if authority.as_str().contains('@') || uri.query().is_some() || s.contains('#') {
            return Err(UpstreamError::Extra(s.into()));
        }
        Ok(Self {
            scheme,
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether the upstream is spoken to over TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The upstream's URI for a request's `path?query` (which starts with `/`). Its authority
    /// is what the connection asks for: the `Host` (or HTTP/2 `:authority`), the TLS server
    /// name and the name the certificate must be valid for.
    pub fn join(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let pq: PathAndQuery = format!("{}{path_and_query}", self.base).parse()?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_path_prefixes_every_request() {
        let u = UpstreamUrl::parse("http://127.0.0.1:9000/api/").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9000/api");
        assert!(!u.is_https());
        assert_eq!(
            u.join("/documents/1?x=%2F").unwrap().to_string(),
            "http://127.0.0.1:9000/api/documents/1?x=%2F"
        );
        let root = UpstreamUrl::parse("http://api.internal").unwrap();
        assert_eq!(root.join("/").unwrap().to_string(), "http://api.internal/");
    }

    #[test]
    fn https_keeps_its_scheme_and_authority() {
        let u = UpstreamUrl::parse("https://api.example:8443/v2").unwrap();
        assert!(u.is_https());
        assert_eq!(u.to_string(), "https://api.example:8443/v2");
        let joined = u.join("/documents/1").unwrap();
        assert_eq!(joined.scheme(), Some(&Scheme::HTTPS));
        assert_eq!(joined.host(), Some("api.example"));
        assert_eq!(
            joined.to_string(),
            "https://api.example:8443/v2/documents/1"
        );
        // No port: 443 is the connector's, and the URI (so the Host) names none.
        let default_port = UpstreamUrl::parse("HTTPS://api.example").unwrap();
        assert!(default_port.is_https());
        assert_eq!(
            default_port.join("/").unwrap().to_string(),
            "https://api.example/"
        );
    }

    #[test]
    fn only_http_and_https_urls_without_extras() {
        for bad in [
            "api.internal:80",
            "/api",
            "ftp://x",
            "",
            "http://",
            "https://",
            "wss://api",
        ] {
            assert!(
                matches!(UpstreamUrl::parse(bad), Err(UpstreamError::NotHttp(_))),
                "{bad:?}"
            );
        }
        for bad in [
            "http://u:p@api",
            "http://api/?a=1",
            "http://api/#f",
            "https://u:p@api",
            "https://api/?a=1",
        ] {
            assert!(
                matches!(UpstreamUrl::parse(bad), Err(UpstreamError::Extra(_))),
                "{bad:?}"
            );
        }
    }
}
