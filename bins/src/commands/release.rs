//! `pilotq release`: C, C.P or --all, with condor_release's messages.

use crate::cli::RmArgs;
use crate::client_opts::block_on;
use anyhow::Result;
use pilotq_wire::Selector;

pub fn run(a: RmArgs) -> Result<i32> {
    crate::logging::init("warn");
    let sel = crate::commands::rm::selected(&a, "release")?;
    block_on(async {
        let mut c = a.client.connect().await?;
        let mut code = 0;
        if a.all {
            let (n, problems) = c.release(sel).await?;
            for p in &problems {
                eprintln!("{p}");
            }
            println!("{n} held job(s) released");
            return anyhow::Ok(if problems.is_empty() { 0 } else { 1 });
        }
        for (s, text) in sel.into_iter().zip(&a.ids) {
            let (n, problems) = c.release(vec![s]).await?;
            for p in &problems {
                eprintln!("{p}");
            }
            match (s, n) {
                (Selector::Cluster(cl), n) if n > 0 && problems.is_empty() => {
                    println!("All jobs in cluster {cl} have been released")
                }
                (Selector::Job(j), n) if n > 0 => println!("Job {j} released"),
                _ => {
                    eprintln!("Couldn't find/release all jobs matching {text}");
                    code = 1;
                }
            }
        }
        anyhow::Ok(code)
    })
}
