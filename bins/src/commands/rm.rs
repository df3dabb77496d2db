//! `pilotq rm`: C, C.P or --all, with condor_rm's messages.

use crate::cli::RmArgs;
use crate::client_opts::block_on;
use crate::commands::q::selectors;
use anyhow::{bail, Result};
use pilotq_wire::Selector;

/// The jobs `C`, `C.P` or `--all` name, for `verb` (remove, release).
pub fn selected(a: &RmArgs, verb: &str) -> Result<Vec<Selector>> {
    if a.all && !a.ids.is_empty() {
        bail!("give either --all or job ids, not both");
    }
    if !a.all && a.ids.is_empty() {
        bail!("nothing to {verb}: give C, C.P or --all");
    }
    if a.all {
        Ok(vec![Selector::All])
    } else {
        selectors(&a.ids)
    }
}

pub fn run(a: RmArgs) -> Result<i32> {
    crate::logging::init("warn");
    let sel = selected(&a, "remove")?;
    // One request per id, so each gets its own message like condor_rm.
    block_on(async {
        let mut c = a.client.connect().await?;
        if a.all {
            c.remove(sel).await?;
            println!("All jobs have been marked for removal");
            return anyhow::Ok(0);
        }
        let mut code = 0;
        for (s, text) in sel.into_iter().zip(&a.ids) {
            let n = c.remove(vec![s]).await?;
            match (s, n) {
                (Selector::Cluster(cl), n) if n > 0 => {
                    println!("All jobs in cluster {cl} have been marked for removal")
                }
                (Selector::Job(j), n) if n > 0 => println!("Job {j} marked for removal"),
                _ => {
                    eprintln!("Couldn't find/remove all jobs matching {text}");
                    code = 1;
                }
            }
        }
        anyhow::Ok(code)
    })
}
