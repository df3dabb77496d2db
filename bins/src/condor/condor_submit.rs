//! `condor_submit [FILE | -]`: HTCondor's submit command over pilotq.
//!
//! Reads the submit description from FILE, or from stdin when there is none
//! or it is `-`; given a file it never touches stdin (a caller that leaves
//! stdin open must not hang). All or nothing: every check that can fail —
//! parsing, the executable, paths — runs before anything is sent, and a bad
//! file prints `ERROR: ` with the line at fault and queues nothing.

use crate::client_opts::{block_on, ClientOpts};
use crate::commands::submit::current_user;
use crate::condor::submit_description::{self, JobDescription, QueueStatement};
use anyhow::{bail, Context, Result};
use pilotq_wire::{JobSpec, Resources};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const USAGE: &str =
    "usage: condor_submit [-terse] [-append 'key = value']... [-pool HOST:PORT] [FILE | -]";

struct Options {
    file: Option<String>,
    terse: bool,
    append: Vec<String>,
    pool: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        file: None,
        terse: false,
        append: vec![],
        pool: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-" => o.file = Some("-".into()),
            "-terse" => o.terse = true,
            "-a" | "-append" => o
                .append
                .push(it.next().context("-append needs 'key = value'")?.clone()),
            "-pool" => o.pool = Some(it.next().context("-pool needs HOST:PORT")?.clone()),
            // Accepted for compatibility; pilotq has one queue.
            "-name" | "-remote" | "-batch-name" => {
                it.next().with_context(|| format!("{a} needs a value"))?;
            }
            "-verbose" | "-v" | "-disable" | "-spool" => {}
            "-h" | "-help" => bail!("{USAGE}"),
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            s => {
                if o.file.is_some() {
                    bail!("only one submit file may be given\n{USAGE}");
                }
                o.file = Some(s.to_string());
            }
        }
    }
    Ok(o)
}

/// Entry point of the `condor_submit` binary; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    crate::logging::init("warn");
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("\nERROR: {e:#}");
            1
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let o = parse_args(args)?;
    let mut text = match o.file.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the submit description from stdin")?;
            s
        }
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read submit file {f}"))?
        }
    };
    if !o.append.is_empty() {
        // HTCondor inserts -append lines before the queue statement; as a
        // prefix they apply to every queue statement, which is the same for a
        // file with one.
        text = format!("{}\n{text}", o.append.join("\n"));
    }
    let statements =
        submit_description::parse(&text).map_err(|e| anyhow::anyhow!("{e}: {}", e.text.trim()))?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    // Every local check first: nothing is queued unless all of them pass.
    let mut clusters: Vec<(JobSpec, u32, Vec<u8>)> = Vec::new();
    for q in statements.iter().filter(|q| q.count > 0) {
        let (spec, exe) = spec_of(q, &cwd)?;
        match clusters.last_mut() {
            // Consecutive queue statements with the same description are one
            // cluster, as in HTCondor.
            Some((last, n, _)) if *last == spec => *n += q.count,
            _ => clusters.push((spec, q.count, exe)),
        }
    }
    let client = ClientOpts::from_env(o.pool);
    let submitted = block_on(async {
        let mut c = client.connect().await?;
        let mut out = Vec::new();
        for (spec, count, exe) in clusters {
            out.push(c.submit(spec, count, exe).await?);
        }
        anyhow::Ok(out)
    })?;
    let mut stdout = std::io::stdout().lock();
    if o.terse {
        for (cluster, count) in &submitted {
            writeln!(
                stdout,
                "{cluster}.0 - {cluster}.{}",
                count.saturating_sub(1)
            )?;
        }
        return Ok(());
    }
    let total: u64 = submitted.iter().map(|(_, n)| u64::from(*n)).sum();
    write!(stdout, "Submitting job(s)")?;
    stdout.write_all(&vec![b'.'; total as usize])?;
    writeln!(stdout)?;
    for (cluster, count) in &submitted {
        writeln!(stdout, "{count} job(s) submitted to cluster {cluster}.")?;
    }
    Ok(())
}

/// The JobSpec of one queue statement, and its executable's bytes.
fn spec_of(q: &QueueStatement, cwd: &Path) -> Result<(JobSpec, Vec<u8>)> {
    let d: &JobDescription = &q.description;
    let iwd = match &d.iwd {
        Some(dir) => absolute(cwd, dir),
        None => cwd.to_path_buf(),
    };
    let exe_path = absolute(&iwd, &d.executable);
    let bytes = std::fs::read(&exe_path).map_err(|e| {
        anyhow::anyhow!(
            "on line {}: executable {} cannot be read: {e}",
            q.line,
            exe_path.display()
        )
    })?;
    let mut environment = BTreeMap::new();
    if d.getenv {
        environment.extend(std::env::vars());
    }
    environment.extend(d.environment.clone());
    let path = |p: &Option<String>| p.as_ref().map(|p| absolute(&iwd, p).display().to_string());
    let spec = JobSpec {
        executable: hex::encode(Sha256::digest(&bytes)),
        cmd: exe_path.display().to_string(),
        arguments: d.arguments.clone(),
        environment,
        output: path(&d.output),
        error: path(&d.error),
        log: path(&d.log),
        request: Resources {
            cores: d.request_cpus.max(1),
            memory_mb: d.request_memory_mb,
            disk_mb: d.request_disk_mb,
        },
        priority: d.priority,
        attributes: d.attributes.clone(),
        owner: current_user(),
        iwd: iwd.display().to_string(),
        tags: tags_of(&d.attributes),
        leave_in_queue: d.leave_in_queue,
    };
    Ok((spec, bytes))
}

/// `+PilotqTags = "a,b"`: the holders' tags the jobs need (a pilotq
/// extension; HTCondor keeps it as an ordinary custom attribute).
fn tags_of(attributes: &BTreeMap<String, String>) -> Vec<String> {
    attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("PilotqTags"))
        .map(|(_, v)| {
            v.trim_matches('"')
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_like_condor_submit() {
        let o = parse_args(&args(&["-terse", "job.sub"])).unwrap();
        assert!(o.terse);
        assert_eq!(o.file.as_deref(), Some("job.sub"));
        let o = parse_args(&args(&["-append", "priority = 5", "-pool", "h:1", "-"])).unwrap();
        assert_eq!(
            (o.append.len(), o.pool.as_deref(), o.file.as_deref()),
            (1, Some("h:1"), Some("-"))
        );
        assert!(parse_args(&args(&["a", "b"])).is_err());
        assert!(parse_args(&args(&["-bogus"])).is_err());
        assert!(parse_args(&args(&["-append"])).is_err());
    }

    #[test]
    fn a_description_becomes_a_spec_with_absolute_paths() {
        let dir = std::env::temp_dir().join(format!("pilotq-submit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        let q = &submit_description::parse(
            "executable = run.sh\narguments = \"a 'b c'\"\noutput = out/$(Cluster).$(Process).out\nrequest_cpus = 2\n+Pilot = \"yes\"\nqueue 3\n",
        )
        .unwrap()[0];
        let (spec, bytes) = spec_of(q, &dir).unwrap();
        assert_eq!(bytes, b"#!/bin/sh\necho hi\n");
        assert_eq!(spec.cmd, dir.join("run.sh").display().to_string());
        assert_eq!(spec.arguments, ["a", "b c"]);
        assert_eq!(
            spec.output.unwrap(),
            format!("{}/out/$(Cluster).$(Process).out", dir.display())
        );
        assert_eq!(spec.request.cores, 2);
        assert_eq!(spec.attributes["Pilot"], "\"yes\"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_executable_names_its_line() {
        let q = &submit_description::parse("executable = /no/such/exe\nqueue\n").unwrap()[0];
        let e = spec_of(q, Path::new("/")).unwrap_err().to_string();
        assert!(e.contains("on line 2") && e.contains("/no/such/exe"), "{e}");
    }
}
