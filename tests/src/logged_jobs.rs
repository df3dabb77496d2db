//! Jobs that log their runs, and the checks that each ran exactly once.
//!
//! A [`logged_job`] appends `start C.P` and `end C.P` to a shared runs log
//! (so a second run of any job would show) and prints `done C.P`; submitted
//! with `--output out/$(Cluster).$(Process).out`, that output is what
//! [`assert_each_completed_once`] expects.

use crate::{Cluster, Job, COMPLETED};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A job (a `/bin/sh -c` script) that logs its start and end to the shared
/// `log` (so a second run of any job would show), sleeps `secs`, and prints
/// `done C.P`.
pub fn logged_job(log: &Path, secs: &str) -> String {
    format!(
        "echo \"start $(Cluster).$(Process)\" >> {l}; sleep {secs}; \
         echo \"done $(Cluster).$(Process)\"; echo \"end $(Cluster).$(Process)\" >> {l}",
        l = log.display()
    )
}

/// Each line of a log, counted (none if it cannot be read).
pub fn lines_counted(path: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for l in text.lines() {
            *m.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// The jobs with a `what` (`start` or `end`) line in a runs log.
pub fn logged(path: &Path, what: &str) -> BTreeSet<String> {
    lines_counted(path)
        .keys()
        .filter_map(|l| l.strip_prefix(&format!("{what} ")).map(str::to_string))
        .collect()
}

/// Every job Completed once, with exit 0, no holder, its first attempt
/// (the master's), and `out/C.P.out` holding `done C.P`; `n` jobs in all.
pub fn assert_each_completed_once(c: &Cluster, jobs: &[Job], n: usize) {
    assert_eq!(jobs.len(), n, "{jobs:#?}\n{}", c.diag());
    for j in jobs {
        assert_eq!(
            (j.status, j.exit_code, j.holder.as_deref()),
            (COMPLETED, Some(0), None),
            "{:#}\n{}",
            j.raw,
            c.diag()
        );
        assert_eq!(
            j.attempts,
            1,
            "job {} was dispatched more than once: {:#}\n{}",
            j.id,
            j.raw,
            c.diag()
        );
        let path = c.path(&format!("out/{}.out", j.id));
        let out = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), c.diag()));
        assert_eq!(out, format!("done {}\n", j.id), "{}", path.display());
    }
}

/// Each of `jobs` logged `start` and `end` exactly once in the runs log,
/// and nothing else ran.
pub fn assert_each_ran_once(c: &Cluster, log: &Path, jobs: &[Job]) {
    let want: BTreeMap<String, usize> = jobs
        .iter()
        .flat_map(|j| [format!("start {}", j.id), format!("end {}", j.id)])
        .map(|l| (l, 1))
        .collect();
    assert_eq!(
        lines_counted(log),
        want,
        "each job must start and end exactly once\n{}",
        c.diag()
    );
}
