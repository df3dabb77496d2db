//! `pilotq foreman`: a local master for its workers, linked upstream to the
//! real master as one holder.

use crate::cli::ForemanArgs;
use crate::commands::seconds;
use actix::Actor;
use anyhow::{Context, Result};
use pilotq_actors::foreman::{SetUpstream, Upstream, UpstreamConfig};
use pilotq_actors::{Master, MasterConfig, Shutdown};
use std::io::Write;

pub fn run(a: ForemanArgs) -> Result<i32> {
    crate::logging::init("info");
    let secret = a.secret.load()?;
    let mut cfg = MasterConfig::new(a.listen.clone(), a.journal.clone());
    // Its blobs come with its master's jobs (see `master/blob_gc.rs`).
    cfg.collect_blobs = false;
    cfg.insecure = a.insecure;
    cfg.secret = secret.clone();
    cfg.heartbeat = seconds("heartbeat", a.heartbeat)?;
    cfg.lease = seconds("lease", a.lease)?;
    cfg.min_free_disk = a.min_free_disk;
    cfg.journal_keep_age = a.journal_keep.journal_keep_age.0;
    cfg.journal_keep_size = a.journal_keep.journal_keep_size;
    cfg.tls = a.tls.load()?;
    cfg.max_connections_per_ip = a.max_connections_per_ip;
    let upstream_tls = crate::tls_opts::foreman_upstream(a.tls_ca.as_ref(), &a.tls)?;
    let upstreams: Vec<String> = a
        .master
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if upstreams.is_empty() {
        anyhow::bail!("--master needs HOST:PORT");
    }
    let sys = actix::System::new();
    sys.block_on(async move {
        let name = a.name.clone();
        cfg.name = name.clone().unwrap_or_else(|| "pilotq-foreman".into());
        let (master, info) = Master::start(cfg.clone()).await?;
        // After the journal is locked: one foreman per directory.
        let token = pilotq_actors::kept_secret::load_or_create(
            &a.journal,
            pilotq_actors::kept_secret::HOLDER_TOKEN,
        )
            .with_context(|| format!("cannot keep the holder token in {}", a.journal.display()))?;
        let name = name.unwrap_or_else(|| format!("{}:{}", pilotq_actors::config::hostname(), info.addr.port()));
        let up = Upstream::new(
            UpstreamConfig {
                upstreams,
                name: name.clone(),
                secret,
                tls: upstream_tls,
                token,
                max_frame: cfg.max_frame,
                heartbeat: cfg.heartbeat,
                depth: a.depth.clamp(1, 64),
                tags: a.tags.clone(),
                assumed_lease: cfg.lease,
            },
            master.clone(),
        )
        .start();
        master.send(SetUpstream(up.recipient())).await?;
        tracing::info!(%name, replayed = info.replayed, jobs = info.jobs, "foreman journal {} replayed", a.journal.display());
        println!("pilotq foreman listening on {}", info.addr);
        let _ = std::io::stdout().flush();
        let sig = crate::signals::stop_requested().await;
        tracing::info!("{sig}: storing a snapshot and stopping");
        let _ = master.send(Shutdown).await;
        anyhow::Ok(())
    })?;
    Ok(0)
}
