//! TLS options: a master's or foreman's certificate (`ServerTlsOpts`), and
//! what a worker, foreman or client trusts and shows (`PeerTlsOpts`).
//! Without them, links are plain TCP, which is fine on loopback and on a
//! trusted network; with them, the HMAC handshake runs inside TLS.

use anyhow::{Context, Result};
use clap::Args;
use pilotq_actors::tls::{ClientTls, ServerTls};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Args)]
pub struct ServerTlsOpts {
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: every peer must show a certificate signed by this CA
    /// (PEM), before the password handshake.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServerTlsOpts {
    pub fn load(&self) -> Result<Option<ServerTls>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(ServerTls::load(
                cert,
                key,
                self.tls_client_ca.as_deref(),
            )?)),
            _ => Ok(None),
        }
    }

    /// The certificate and key, for a foreman to show upstream too.
    pub fn identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct PeerTlsOpts {
    /// Connect with TLS, trusting the master's certificate only if it is
    /// signed by this CA (PEM).
    #[arg(long, value_name = "PEM", env = "PILOTQ_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Our certificate, for a master that asks for one (mutual TLS).
    #[arg(long, value_name = "PEM", env = "PILOTQ_TLS_CERT", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        value_name = "PEM",
        env = "PILOTQ_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl PeerTlsOpts {
    /// For the `condor_*` commands: from `PILOTQ_TLS_CA`, `PILOTQ_TLS_CERT`
    /// and `PILOTQ_TLS_KEY`.
    pub fn from_env() -> PeerTlsOpts {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        PeerTlsOpts {
            tls_ca: env("PILOTQ_TLS_CA"),
            tls_cert: env("PILOTQ_TLS_CERT"),
            tls_key: env("PILOTQ_TLS_KEY"),
        }
    }

    pub fn load(&self) -> Result<Option<ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        Ok(Some(ClientTls::load(ca, identity)?))
    }
}

/// A foreman's upstream TLS: the CA it trusts (its `--tls-ca`), and its own
/// certificate (`--tls-cert`) shown to a master that asks for one, which must
/// then allow client authentication as well as server authentication.
pub fn foreman_upstream(ca: Option<&PathBuf>, server: &ServerTlsOpts) -> Result<Option<ClientTls>> {
    let Some(ca) = ca else { return Ok(None) };
    Ok(Some(
        ClientTls::load(ca, server.identity()).context("the foreman's upstream TLS")?,
    ))
}
