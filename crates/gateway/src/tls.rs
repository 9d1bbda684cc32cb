//! Whom the gateway believes on an `https://` upstream: the system's roots and, if the operator
//! names one, a private CA. The upstream's host name is always checked against its certificate;
//! there is deliberately no way to turn that off.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The CA certificates an upstream's certificate must chain to.
#[derive(Debug, Clone)]
pub struct UpstreamTrust {
    roots: RootCertStore,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("reading the upstream CA file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the upstream CA file {} is not PEM: {source}", path.display())]
    NotPem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    // Else a wrong file (a key, a typo'd bundle) would pass silently and every request fail later.
    #[error("the upstream CA file {} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
    #[error("the upstream CA file {} holds a certificate that cannot be a trust anchor: {source}", path.display())]
    Unusable {
        path: PathBuf,
        source: rustls::Error,
    },
}

impl UpstreamTrust {
    /// The system's roots, as `rustls-native-certs` finds them (`SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` if set, else the platform's store), plus every certificate of the PEM
    /// file `extra_ca`. Read once, at start: a CA added later needs a restart.
    pub fn load(extra_ca: Option<&Path>) -> Result<Self, TrustError> {
        let mut roots = RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            // One unreadable file of the store is no reason to refuse the others.
            tracing::warn!(error = %error, "a system root certificate could not be read");
        }
        let (_, unusable) = roots.add_parsable_certificates(system.certs);
        if unusable > 0 {
            tracing::debug!(
                unusable,
                "system root certificates rustls cannot use were left out"
            );
        }
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path).map_err(|source| TrustError::Read {
                path: path.into(),
                source,
            })?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|source| TrustError::NotPem {
                    path: path.into(),
                    source,
                })?;
                roots.add(cert).map_err(|source| TrustError::Unusable {
                    path: path.into(),
                    source,
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(TrustError::Empty { path: path.into() });
            }
        }
        Ok(Self { roots })
    }

    /// No root at all: every `https://` upstream will be refused.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// A client configuration with these roots, TLS 1.2 and 1.3 on ring (the provider every
    /// other TLS use of Latchkey has), and no client certificate.
    pub(crate) fn client_config(&self) -> ClientConfig {
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_usable_certificate() {
        let dir = std::env::temp_dir().join(format!("latchkey-upstream-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("missing.pem", None, "reading the upstream CA file"),
            (
                "empty.pem",
                Some("not a certificate\n"),
                "holds no PEM certificate",
            ),
            (
                "truncated.pem",
                Some("-----BEGIN CERTIFICATE-----\nMIIB\n"),
                "is not PEM",
            ),
            (
                "garbage.pem",
                Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                "cannot be a trust anchor",
            ),
        ];
        for (name, content, wanted) in cases {
            let path = dir.join(name);
            if let Some(content) = content {
                std::fs::write(&path, content).unwrap();
            }
            let err = UpstreamTrust::load(Some(&path)).unwrap_err();
            assert!(err.to_string().contains(wanted), "{name}: {err}");
            assert!(err.to_string().contains(name), "the file is named: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
