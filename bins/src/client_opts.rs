//! How clients find the master and the shared secret: `--master` or
//! `PILOTQ_MASTER` (default `127.0.0.1:9094`, or `unix:PATH`),
//! `--password-file` or `PILOTQ_PASSWORD_FILE`, and TLS: `--tls-ca` or
//! `PILOTQ_TLS_CA` (with `PILOTQ_TLS_CERT`/`PILOTQ_TLS_KEY` for mutual TLS).

use anyhow::Result;
use clap::Args;
use pilotq_actors::connect::ConnectError;
use pilotq_actors::Client;
use pilotq_wire::{Secret, DEFAULT_MAX_FRAME};
use std::path::PathBuf;

pub const DEFAULT_MASTER: &str = "127.0.0.1:9094";

#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// The master's HOST:PORT, or unix:PATH for its Unix socket.
    #[arg(long, env = "PILOTQ_MASTER", default_value = DEFAULT_MASTER)]
    pub master: String,
    #[command(flatten)]
    pub secret: SecretOpts,
    #[command(flatten)]
    pub tls: crate::tls_opts::PeerTlsOpts,
}

#[derive(Debug, Clone, Args)]
pub struct SecretOpts {
    /// File holding the shared secret (a trailing newline is ignored).
    #[arg(long, env = "PILOTQ_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
}

impl SecretOpts {
    pub fn load(&self) -> Result<Option<Secret>> {
        match &self.password_file {
            None => Ok(None),
            Some(p) => Ok(Some(Secret::from_file(p)?)),
        }
    }
}

impl ClientOpts {
    /// For the `condor_*` commands, which parse HTCondor-style options by
    /// hand: the master from `pool` (their `-pool HOST:PORT`), else
    /// `PILOTQ_MASTER`, else the default; the secret from
    /// `PILOTQ_PASSWORD_FILE`.
    pub fn from_env(pool: Option<String>) -> ClientOpts {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ClientOpts {
            master: pool
                .or_else(|| env("PILOTQ_MASTER"))
                .unwrap_or_else(|| DEFAULT_MASTER.to_string()),
            secret: SecretOpts {
                password_file: env("PILOTQ_PASSWORD_FILE").map(PathBuf::from),
            },
            tls: crate::tls_opts::PeerTlsOpts::from_env(),
        }
    }

    pub async fn connect(&self) -> Result<Client> {
        let secret = self.secret.load()?;
        let tls = self.tls.load()?;
        match Client::connect(
            &self.master,
            secret.as_ref(),
            tls.as_ref(),
            DEFAULT_MAX_FRAME,
        )
        .await
        {
            Ok(c) => Ok(c),
            // Only a master we cannot reach gets the hint to start one.
            Err(e @ (ConnectError::Connect { .. } | ConnectError::Timeout { .. })) => {
                Err(anyhow::anyhow!(
                    "{e}\n(is the master running? start one with `pilotq master` or `pilotq up`)"
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs a client future on a small single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(f)
}
