//! `pilotq status`: what the master holds, for people (or `--json`).

use crate::cli::StatusArgs;
use crate::client_opts::block_on;
use anyhow::Result;

pub fn run(a: StatusArgs) -> Result<i32> {
    crate::logging::init("warn");
    let s = block_on(async {
        let mut c = a.client.connect().await?;
        anyhow::Ok(c.status().await?)
    })?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "name": s.name, "idle": s.idle, "running": s.running, "held": s.held,
                "completed": s.completed, "removed": s.removed, "holders": s.holders, "cores": s.cores,
                "history_completed": s.history_completed, "history_removed": s.history_removed,
            })
        );
    } else {
        println!("master    {} at {}", s.name, a.client.master);
        println!("holders   {} connected, {} cores", s.holders, s.cores);
        println!(
            "queue     {} idle, {} running, {} held, {} completed, {} removed",
            s.idle, s.running, s.held, s.completed, s.removed
        );
        println!(
            "history   {} completed, {} removed (finished jobs leave the queue; see condor_history)",
            s.history_completed, s.history_removed
        );
    }
    Ok(0)
}
