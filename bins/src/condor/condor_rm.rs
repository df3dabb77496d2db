//! `condor_rm C | C.P | USER | -all | -constraint EXPR`: HTCondor's removal
//! command over pilotq, with its messages. Running jobs are killed (their
//! whole process group) by the workers on the master's order.

use crate::client_opts::{block_on, ClientOpts};
use crate::condor::classad::Expr;
use crate::condor::job_ad::JobAd;
use anyhow::{bail, Context, Result};
use pilotq_actors::Client;
use pilotq_wire::{ClusterId, JobId, Selector};

const USAGE: &str =
    "usage: condor_rm [-pool HOST:PORT] (C | C.P | USER)... | -all | -constraint EXPR";

#[derive(Debug, PartialEq)]
enum Target {
    Cluster(ClusterId),
    Job(JobId),
    User(String),
    All,
    Constraint(String),
}

fn parse_args(args: &[String]) -> Result<(Vec<Target>, Option<String>)> {
    let mut targets = Vec::new();
    let mut pool = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-a" | "-all" => targets.push(Target::All),
            "-constraint" | "-const" => targets.push(Target::Constraint(
                it.next()
                    .context("-constraint needs an expression")?
                    .clone(),
            )),
            "-pool" => pool = Some(it.next().context("-pool needs HOST:PORT")?.clone()),
            "-name" => {
                it.next().context("-name needs a value")?;
            }
            "-forcex" | "-f" => {}
            "-h" | "-help" => bail!("{USAGE}"),
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            s if s.starts_with(|c: char| c.is_ascii_digit()) => targets.push(if s.contains('.') {
                Target::Job(s.parse()?)
            } else {
                Target::Cluster(s.parse()?)
            }),
            s => targets.push(Target::User(s.to_string())),
        }
    }
    if targets.is_empty() {
        bail!("nothing to remove\n{USAGE}");
    }
    Ok((targets, pool))
}

/// Entry point of the `condor_rm` binary; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    crate::logging::init("warn");
    let (targets, pool) = match parse_args(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("condor_rm: {e:#}");
            return 1;
        }
    };
    // Constraints are parsed before anything is sent: a typo removes nothing.
    let mut parsed = Vec::new();
    for t in &targets {
        let expr = match t {
            Target::Constraint(text) => {
                Some(Expr::parse(text).map_err(|e| format!("constraint '{text}': {e}")))
            }
            Target::User(u) => Some(
                Expr::parse(&format!("Owner == \"{}\"", u.replace('"', "\\\"")))
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        match expr.transpose() {
            Ok(e) => parsed.push(e),
            Err(e) => {
                eprintln!("condor_rm: {e}");
                return 1;
            }
        }
    }
    let client = ClientOpts::from_env(pool);
    let r = block_on(async {
        let mut c = client.connect().await?;
        let mut code = 0;
        for (t, expr) in targets.iter().zip(&parsed) {
            if !remove(&mut c, t, expr.as_ref()).await? {
                code = 1;
            }
        }
        anyhow::Ok(code)
    });
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("condor_rm: {e:#}");
            1
        }
    }
}

/// Removes one target and prints HTCondor's message; false if nothing matched.
async fn remove(c: &mut Client, t: &Target, expr: Option<&Expr>) -> Result<bool> {
    let removed = match (t, expr) {
        (Target::All, _) => c.remove(vec![Selector::All]).await?,
        (Target::Cluster(cl), _) => c.remove(vec![Selector::Cluster(*cl)]).await?,
        (Target::Job(j), _) => c.remove(vec![Selector::Job(*j)]).await?,
        (_, Some(expr)) => {
            // Evaluated here, against the jobs as they are now; a job that
            // finishes in between is simply not removed.
            let jobs = c.query(vec![]).await?;
            let ids: Vec<Selector> = jobs
                .iter()
                .filter(|j| !j.status.is_final() && expr.eval(&JobAd(j)).is_true())
                .map(|j| Selector::Job(j.id))
                .collect();
            if ids.is_empty() {
                0
            } else {
                c.remove(ids).await?
            }
        }
        (_, None) => unreachable!("constraints and users carry an expression"),
    };
    let found = removed > 0;
    match (t, found) {
        (Target::All, _) => println!("All jobs have been marked for removal"),
        (Target::Cluster(cl), true) => {
            println!("All jobs in cluster {cl} have been marked for removal")
        }
        (Target::Cluster(cl), false) => eprintln!("Couldn't find/remove all jobs in cluster {cl}"),
        (Target::Job(j), true) => println!("Job {j} marked for removal"),
        (Target::Job(j), false) => eprintln!("Couldn't find/remove all jobs matching {j}"),
        (Target::User(u), true) => {
            println!("All jobs of user \"{u}\" have been marked for removal")
        }
        (Target::User(u), false) => eprintln!("Couldn't find/remove all jobs of user {u}"),
        (Target::Constraint(e), true) => {
            println!("All jobs matching constraint ({e}) have been marked for removal")
        }
        (Target::Constraint(e), false) => {
            eprintln!("Couldn't find/remove all jobs matching constraint ({e})")
        }
    }
    Ok(found || matches!(t, Target::All))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_parse_like_condor_rm() {
        let (t, pool) = parse_args(&args(&["3", "4.1", "alice", "-pool", "h:1"])).unwrap();
        assert_eq!(
            t,
            [
                Target::Cluster(ClusterId(3)),
                Target::Job(JobId::new(4, 1)),
                Target::User("alice".into())
            ]
        );
        assert_eq!(pool.as_deref(), Some("h:1"));
        let (t, _) = parse_args(&args(&["-constraint", "JobStatus == 1"])).unwrap();
        assert_eq!(t, [Target::Constraint("JobStatus == 1".into())]);
        assert_eq!(parse_args(&args(&["-all"])).unwrap().0, [Target::All]);
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["-constraint"])).is_err());
        assert!(parse_args(&args(&["3.x"])).is_err());
        assert!(parse_args(&args(&["-bogus"])).is_err());
    }
}
