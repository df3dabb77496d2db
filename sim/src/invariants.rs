//! The end checks. A simulation passes only if all of these hold:
//!
//! 1. every submitted job is Completed exactly once, or Held with a reason
//!    (or Removed, when the run ended with `--stop-after`);
//! 2. no result is lost: each completed job carries the exit code its
//!    simulated run reported (a pure function of the job, so a result lost,
//!    mixed up or invented shows);
//! 3. no job ran on two holders at once for longer than a lease;
//! 4. the journal replayed from empty equals the master's live table, job by
//!    job, and its indexes are consistent; and the history records the
//!    replay gives for the jobs that left the queue equal the master's
//!    history store, record by record.
//!
//! Finished jobs leave the master's queue for its history store, so "every
//! job" is the queue and the history together, each job in exactly one.
//!
//! "Completed exactly once" is read from the journal itself: a job with two
//! `JobCompleted` events was completed twice, whatever the table says.

use crate::workload::JobBook;
use anyhow::{Context, Result};
use pilotq_journal::{Event, Store};
use pilotq_wire::{JobId, JobStatus, JobView};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct EndCheck {
    pub completed: u64,
    pub held: u64,
    /// Removed by `--stop-after` (only counted when that was asked for).
    pub removed: u64,
    /// Not completed nor held at the end, missing from the table, or
    /// completed with a result other than the one its run reported.
    pub lost: u64,
    pub duplicated: u64,
    pub overlaps: u64,
    pub journal_events: u64,
    pub journal_matches_live: bool,
    /// One line per failed invariant; empty when all hold.
    pub failures: Vec<String>,
}

/// Everything the checks look at, gathered at the end of a run.
pub struct Evidence<'a> {
    /// The master's live table, queried before it was stopped.
    pub live: &'a [JobView],
    /// The master's history store (jobs that left the queue), oldest first.
    pub history: &'a [JobView],
    /// How many jobs the master accepted.
    pub submitted: u64,
    pub book: &'a JobBook,
    /// The master's journal, no longer held by it.
    pub journal: &'a Path,
    /// Jobs that ran on two holders at once longer than `allowed_overlap`.
    pub overlaps: &'a [(JobId, Duration)],
    /// A lease, plus the longest time a holder was cut off by the
    /// simulation (a partition) and one reconnect: holders do not fence
    /// themselves, so a stale run ends only once its holder is back and told.
    pub allowed_overlap: Duration,
    /// The run removed what was left at `--stop-after`: Removed is an end.
    pub removal_ends: bool,
}

pub fn check(ev: &Evidence) -> Result<EndCheck> {
    let mut c = EndCheck::default();
    let all: Vec<&JobView> = ev.live.iter().chain(ev.history).collect();
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    let in_both: Vec<JobId> = all
        .iter()
        .map(|v| v.id)
        .filter(|id| !seen.insert(*id))
        .collect();
    if !in_both.is_empty() {
        c.failures.push(format!(
            "{} jobs are both in the queue and in history, or twice in either (e.g. {})",
            in_both.len(),
            in_both
                .iter()
                .take(5)
                .map(|j| j.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut lost_examples = Vec::new();
    let mut wrong_examples = Vec::new();
    let mut unreasoned_holds = 0u64;
    let mut wrong = 0u64;
    for v in all.iter().copied() {
        match v.status {
            JobStatus::Completed => {
                let expected = JobBook::plan_of(&v.attributes)
                    .and_then(|plan| ev.book.lookup(plan, v.id.proc))
                    .map(|(_, code)| code);
                if expected.is_some() && v.exit_code == expected {
                    c.completed += 1;
                } else {
                    wrong += 1;
                    if wrong_examples.len() < 5 {
                        wrong_examples.push(format!(
                            "{} exit {:?}, its run reported {:?}",
                            v.id, v.exit_code, expected
                        ));
                    }
                }
            }
            JobStatus::Held => {
                c.held += 1;
                if v.hold_reason.as_deref().unwrap_or("").trim().is_empty() {
                    unreasoned_holds += 1;
                }
            }
            JobStatus::Removed if ev.removal_ends => c.removed += 1,
            other => {
                c.lost += 1;
                if lost_examples.len() < 5 {
                    lost_examples.push(format!("{} {}", v.id, other.name()));
                }
            }
        }
    }
    // Each plan was accepted as exactly one cluster: a submission retried
    // after a crash must not land twice.
    let mut clusters_of: HashMap<usize, std::collections::BTreeSet<u64>> = HashMap::new();
    let mut foreign = 0u64;
    for v in all.iter().copied() {
        match JobBook::plan_of(&v.attributes) {
            Some(plan) => {
                clusters_of.entry(plan).or_default().insert(v.id.cluster.0);
            }
            None => foreign += 1,
        }
    }
    let twice_submitted: Vec<String> = clusters_of
        .iter()
        .filter(|(_, cl)| cl.len() > 1)
        .map(|(plan, cl)| format!("plan {plan} as clusters {cl:?}"))
        .collect();
    if !twice_submitted.is_empty() {
        c.failures.push(format!(
            "{} submissions were accepted more than once ({})",
            twice_submitted.len(),
            twice_submitted
                .into_iter()
                .take(3)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if foreign > 0 {
        c.failures.push(format!(
            "{foreign} jobs in the master's table are not from this simulation"
        ));
    }
    // Distinct jobs: one listed twice is named above, not an extra job.
    if seen.len() as u64 > ev.submitted {
        c.failures.push(format!(
            "the master holds {} jobs (queue and history) but accepted {} from us",
            seen.len(),
            ev.submitted
        ));
    }
    let missing = ev.submitted.saturating_sub(seen.len() as u64);
    c.lost += missing + wrong;
    if missing > 0 {
        c.failures.push(format!(
            "{missing} of {} accepted jobs are missing from the master's queue and history",
            ev.submitted
        ));
    }
    if c.lost > missing + wrong {
        c.failures.push(format!(
            "{} jobs neither completed nor held at the end (e.g. {})",
            c.lost - missing - wrong,
            lost_examples.join(", ")
        ));
    }
    if wrong > 0 {
        c.failures.push(format!(
            "{wrong} completed jobs do not carry the result their run reported (e.g. {})",
            wrong_examples.join("; ")
        ));
    }
    if unreasoned_holds > 0 {
        c.failures
            .push(format!("{unreasoned_holds} held jobs have no hold reason"));
    }

    // What the journal says happened (a wrong path must not pass as an
    // empty journal).
    let store = Store::open_existing(ev.journal)
        .with_context(|| format!("opening the journal {}", ev.journal.display()))?;
    let mut completions: HashMap<JobId, u32> = HashMap::new();
    for item in store.events_from(1) {
        let (_, env) = item.context("reading the journal")?;
        c.journal_events += 1;
        if let Event::JobCompleted { job, .. } = env.e {
            *completions.entry(job).or_default() += 1;
        }
    }
    let twice: Vec<JobId> = completions
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(j, _)| *j)
        .collect();
    c.duplicated = twice.len() as u64;
    if !twice.is_empty() {
        c.failures.push(format!(
            "{} jobs completed more than once in the journal (e.g. {})",
            twice.len(),
            twice
                .iter()
                .take(5)
                .map(|j| j.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let unjournaled = all
        .iter()
        .filter(|v| v.status == JobStatus::Completed && !completions.contains_key(&v.id))
        .count();
    if unjournaled > 0 {
        c.failures.push(format!(
            "{unjournaled} jobs the master shows completed have no completion in the journal"
        ));
    }

    c.overlaps = ev.overlaps.len() as u64;
    if let Some((job, worst)) = ev.overlaps.iter().max_by_key(|(_, d)| *d) {
        c.failures.push(format!(
            "{} jobs ran on two holders at once for longer than allowed ({:.1} s: a lease, plus any partition and a reconnect) (longest: {job}, {:.1} s)",
            ev.overlaps.len(),
            ev.allowed_overlap.as_secs_f64(),
            worst.as_secs_f64()
        ));
    }

    // The journal, replayed from its first event, against the live table,
    // and the jobs that left the queue in that replay against the history.
    let mut table = pilotq_journal::Table::new();
    table.keep_departures();
    let mut left: HashMap<JobId, JobView> = HashMap::new();
    for item in store.events_from(1) {
        let (seq, env) = item.context("replaying the journal from empty")?;
        table.apply(&env.e);
        for d in table.take_departures() {
            left.extend(d.records(seq).map(|r| (r.id, r)));
        }
    }
    let mut mismatches = Vec::new();
    let mut mismatched = 0u64;
    if let Err(e) = table.check_indexes() {
        c.failures.push(format!(
            "the replayed table's indexes are inconsistent: {e}"
        ));
    }
    for v in ev.live {
        let replayed = table.view(v.id);
        if replayed.as_ref() != Some(v) {
            mismatched += 1;
            if mismatches.len() < 3 {
                mismatches.push(format!("{}: live {:?} / replayed {:?}", v.id, v, replayed));
            }
        }
    }
    for h in ev.history {
        // The store stamps a record with its append's last event; the
        // replay with the event itself: the same job, the same record.
        let replayed = left.get(&h.id).map(|r| JobView {
            seq: h.seq,
            ..r.clone()
        });
        if replayed.as_ref() != Some(h) {
            mismatched += 1;
            if mismatches.len() < 3 {
                mismatches.push(format!(
                    "{} (history): store {:?} / replayed {:?}",
                    h.id, h, replayed
                ));
            }
        }
    }
    // By job, not only by count: a record listed twice must not hide one
    // missing (and the same for the queue).
    let recorded: HashSet<JobId> = ev.history.iter().map(|h| h.id).collect();
    let unrecorded: Vec<JobId> = left
        .keys()
        .filter(|id| !recorded.contains(id))
        .copied()
        .collect();
    if left.len() != ev.history.len() || !unrecorded.is_empty() {
        mismatched += 1;
        mismatches.push(format!(
            "the replay has {} jobs leave the queue, the history store holds {}{}",
            left.len(),
            ev.history.len(),
            not_in("with no record", &unrecorded)
        ));
    }
    let listed: HashSet<JobId> = ev.live.iter().map(|v| v.id).collect();
    let unlisted: Vec<JobId> = table
        .select(&[])
        .into_iter()
        .filter(|id| !listed.contains(id))
        .collect();
    let replayed_total = table.counts().total();
    if replayed_total != ev.live.len() as u64 || !unlisted.is_empty() {
        mismatched += 1;
        mismatches.push(format!(
            "the replayed table has {replayed_total} jobs, the live one {}{}",
            ev.live.len(),
            not_in("not listed", &unlisted)
        ));
    }
    c.journal_matches_live = mismatched == 0;
    if mismatched > 0 {
        c.failures.push(format!(
            "the journal replayed from empty differs from the master's live table in {mismatched} jobs: {}",
            mismatches.join(" | ")
        ));
    }
    Ok(c)
}

/// " (N of them {what}: a, b, c)", or nothing when `jobs` is empty.
fn not_in(what: &str, jobs: &[JobId]) -> String {
    if jobs.is_empty() {
        return String::new();
    }
    let mut some = jobs.to_vec();
    some.sort();
    let some: Vec<String> = some.iter().take(5).map(|j| j.to_string()).collect();
    format!(" ({} of them {what}: {})", jobs.len(), some.join(", "))
}
