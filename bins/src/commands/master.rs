//! `pilotq master`.

use crate::cli::MasterArgs;
use crate::commands::seconds;
use anyhow::Result;
use pilotq_actors::{Master, MasterConfig, Shutdown};
use std::io::Write;

pub fn run(a: MasterArgs) -> Result<i32> {
    crate::logging::init("info");
    let mut cfg = MasterConfig::new(a.listen.clone(), a.journal.clone());
    cfg.history_limits = a.history_limits();
    cfg.insecure = a.insecure;
    cfg.name = a.name;
    cfg.secret = a.secret.load()?;
    let load = |p: &Option<std::path::PathBuf>| -> Result<Option<pilotq_wire::Secret>> {
        match p {
            None => Ok(None),
            Some(p) => Ok(Some(pilotq_wire::Secret::from_file(p)?)),
        }
    };
    cfg.holder_secret = load(&a.holder_password_file)?;
    cfg.client_secret = load(&a.client_password_file)?;
    cfg.heartbeat = seconds("heartbeat", a.heartbeat)?;
    cfg.lease = seconds("lease", a.lease)?;
    cfg.handshake_timeout = seconds("handshake-timeout", a.handshake_timeout)?;
    cfg.max_attempts = a.max_attempts.max(1);
    cfg.max_submit = a.max_submit;
    cfg.max_jobs_per_owner = a.max_jobs_per_owner;
    cfg.super_users = a.super_users;
    cfg.snapshot_every = a.snapshot_every.max(1);
    cfg.max_frame = a.max_frame;
    cfg.job_wrapper = a.job_wrapper;
    cfg.min_free_disk = a.min_free_disk;
    cfg.journal_keep_age = a.journal_keep.journal_keep_age.0;
    cfg.journal_keep_size = a.journal_keep.journal_keep_size;
    cfg.tls = a.tls.load()?;
    cfg.unix_socket = a.unix_socket.clone();
    cfg.open_reads = a.open_reads;
    cfg.max_connections_per_ip = a.max_connections_per_ip;
    let journal = a.journal.display().to_string();
    let sys = actix::System::new();
    sys.block_on(async move {
        let (addr, info) = Master::start(cfg).await?;
        tracing::info!(
            replayed = info.replayed,
            snapshot = ?info.snapshot_seq,
            jobs = info.jobs,
            replay_ms = info.replay_ms as u64,
            "journal {journal} replayed"
        );
        // One plain line on stdout for scripts and tests: the bound address.
        println!("pilotq master listening on {}", info.addr);
        let _ = std::io::stdout().flush();
        let sig = crate::signals::stop_requested().await;
        tracing::info!("{sig}: storing a snapshot and stopping");
        let _ = addr.send(Shutdown).await;
        anyhow::Ok(())
    })?;
    Ok(0)
}
