//! TLS for pilotq's TCP links, with rustls (the `ring` provider).
//!
//! TLS carries the link; it does not decide who a peer is. The HMAC
//! handshake of `pilotq_wire::handshake` runs inside it, unchanged, and still
//! decides the role. What TLS adds is integrity and secrecy for every frame
//! after the handshake (without it, a man in the middle could rewrite a
//! `Finished` frame), and a master that proves its name with a certificate.
//!
//! With `--tls-client-ca` the master also asks each peer for a certificate
//! signed by that CA (mutual TLS): a peer without one is refused before it
//! sends a byte of pilotq's protocol.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("cannot use {host:?} as a TLS server name: {reason}")]
    ServerName { host: String, reason: String },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |reason: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "TLS key",
            path: path.to_path_buf(),
            expected: "private key",
        },
        e => TlsError::Read {
            what: "TLS key",
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

fn roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(what, path)? {
        roots
            .add(c)
            .map_err(|e| TlsError::Config(format!("{what} {}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// A master's (or foreman's) side: its certificate and key, and the CA its
/// peers' certificates must chain to, if it asks for them.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Whether peers must show a certificate (`--tls-client-ca`).
    pub mutual: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls {{ mutual: {} }}", self.mutual)
    }
}

impl ServerTls {
    pub fn load(cert: &Path, key_path: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let chain = certs("TLS certificate", cert)?;
        let key = key(key_path)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots("TLS client CA", ca)?),
                    provider(),
                )
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            TlsError::Config(format!(
                "certificate {} and key {} do not go together: {e}",
                cert.display(),
                key_path.display()
            ))
        })?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mutual: client_ca.is_some(),
        })
    }
}

/// A peer's side (worker, foreman upstream, client): the CA the master's
/// certificate must chain to, and its own certificate for mutual TLS.
#[derive(Clone)]
pub struct ClientTls {
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    pub fn load(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots("TLS CA", ca)?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key_path)) => builder
                .with_client_auth_cert(certs("TLS certificate", cert)?, key(key_path)?)
                .map_err(|e| {
                    TlsError::Config(format!(
                        "certificate {} and key {} do not go together: {e}",
                        cert.display(),
                        key_path.display()
                    ))
                })?,
        };
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The name the master's certificate must carry: the host of `addr`
    /// (`HOST:PORT`, `[V6]:PORT`), a DNS name or an IP address.
    pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
        let host = match addr.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => addr,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| TlsError::ServerName {
            host: host.to_string(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host_of_the_address() {
        let name = |a| ClientTls::server_name(a).unwrap();
        match name("master.example.org:9094") {
            ServerName::DnsName(d) => assert_eq!(d.as_ref(), "master.example.org"),
            other => panic!("{other:?}"),
        }
        let ip = |s: &str| ServerName::IpAddress(s.parse::<std::net::IpAddr>().unwrap().into());
        assert_eq!(name("127.0.0.1:9094"), ip("127.0.0.1"));
        assert_eq!(name("[::1]:9094"), ip("::1"));
        assert!(ClientTls::server_name("bad host:9094").is_err());
    }

    #[test]
    fn a_missing_or_empty_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = ClientTls::load(&empty, None).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = ServerTls::load(&dir.path().join("nope.pem"), &empty, None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
