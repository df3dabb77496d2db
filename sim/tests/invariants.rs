//! The end-of-run checks (`invariants::check`) against real journals.
//!
//! A check that never fails proves nothing, so each invariant gets a run
//! that breaks it, and one clean run shows that none fires without cause.
//! Every run is a real journal written by the master's own `Writer`, and the
//! "live" table is the same events folded by `Table::apply`, as the master
//! folds them; a test then breaks one thing (an event, a view, the evidence)
//! and asserts the counts and the failure line that must name it.

use anyhow::Result;
use pilotq_journal::{Event, JournalError, Store, Table, Writer};
use pilotq_sim::invariants::{check, EndCheck, Evidence};
use pilotq_sim::workload::{exit_code_for, sim_spec, tag_plan, ClusterPlan, JobBook, Workload};
use pilotq_wire::{ClusterId, JobId, JobStatus, JobView, Outcome};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The cluster id the "master" chose; deliberately not the plan index, so a
/// check that took one for the other would look up the wrong exit codes.
const CLUSTER: u64 = 7;
/// The workload plan the cluster came from (named by its spec's plan
/// attribute): with it, job 7.1's run exits 9 and the others 0 (see
/// `the_fixture_has_a_failing_job`), so a result swapped for a plain 0 shows.
const PLAN: usize = 31;
const JOBS: u32 = 4;
const LEASE: Duration = Duration::from_secs(60);
/// Unix ms of the first event.
const T0: u64 = 1_700_000_000_000;

fn job(proc: u32) -> JobId {
    JobId::new(CLUSTER, proc)
}

/// The code job `proc`'s simulated run reports.
fn code_of(proc: u32) -> i32 {
    exit_code_for(PLAN, proc)
}

fn submitted() -> Event {
    let mut spec = sim_spec("sim-job", 0);
    tag_plan(&mut spec, PLAN);
    Event::ClusterSubmitted {
        cluster: ClusterId(CLUSTER),
        count: JOBS,
        spec: Box::new(spec),
        at: T0,
    }
}

/// The run times of a workload whose plan `PLAN` is our cluster (the plans
/// before it are never submitted here; only their places count).
fn book() -> JobBook {
    let plan = ClusterPlan {
        at: Duration::ZERO,
        spec: sim_spec("sim-job", 0),
        run_ms: vec![1_000; JOBS as usize],
    };
    JobBook::new(&Workload {
        clusters: vec![plan; PLAN + 1],
    })
}

fn dispatched(proc: u32, attempt: u32) -> Event {
    Event::JobDispatched {
        job: job(proc),
        attempt,
        holder: format!("worker-{attempt}"),
        at: T0 + 10,
    }
}

fn started(proc: u32, attempt: u32) -> Event {
    Event::JobStarted {
        job: job(proc),
        attempt,
        at: T0 + 20,
    }
}

fn completed(proc: u32, attempt: u32, code: i32) -> Event {
    Event::JobCompleted {
        job: job(proc),
        attempt,
        outcome: Outcome::Exited { code },
        at: T0 + 30,
    }
}

fn requeued(proc: u32, attempt: u32) -> Event {
    Event::JobRequeued {
        job: job(proc),
        attempt,
        reason: format!("worker-{attempt} lost"),
        at: T0 + 25,
    }
}

/// One attempt of `proc` run to its end, reporting `code`.
fn ran(proc: u32, attempt: u32, code: i32) -> Vec<Event> {
    vec![
        dispatched(proc, attempt),
        started(proc, attempt),
        completed(proc, attempt, code),
    ]
}

/// A run where `settle(proc)` gives the events of each job after its
/// cluster's submission.
fn run_of(settle: impl Fn(u32) -> Vec<Event>) -> Vec<Event> {
    let mut events = vec![
        Event::MasterStarted {
            name: "sim".into(),
            at: T0,
        },
        submitted(),
    ];
    events.extend((0..JOBS).flat_map(settle));
    events
}

/// Every job run once, reporting what its run reported.
fn clean_run() -> Vec<Event> {
    run_of(|p| ran(p, 1, code_of(p)))
}

/// The evidence of one run. Its fields are public to the test so that it can
/// break one of them before `check`.
struct Fixture {
    journal: tempfile::TempDir,
    live: Vec<JobView>,
    submitted: u64,
    book: JobBook,
    overlaps: Vec<(JobId, Duration)>,
    /// Whether the run removed what was left (`--stop-after`).
    removal_ends: bool,
}

impl Fixture {
    /// Journals `events` and takes the live table from the same events.
    fn new(events: Vec<Event>) -> Fixture {
        let journal = tempfile::tempdir().unwrap();
        write_journal(journal.path(), &events);
        let mut table = Table::new();
        events.iter().for_each(|e| table.apply(e));
        let live = table
            .select(&[])
            .into_iter()
            .map(|id| table.view(id).unwrap())
            .collect();
        Fixture {
            journal,
            live,
            submitted: u64::from(JOBS),
            book: book(),
            overlaps: vec![],
            removal_ends: false,
        }
    }

    fn view_mut(&mut self, proc: u32) -> &mut JobView {
        self.live.iter_mut().find(|v| v.id == job(proc)).unwrap()
    }

    fn evidence(&self) -> Evidence<'_> {
        Evidence {
            live: &self.live,
            submitted: self.submitted,
            book: &self.book,
            journal: self.journal.path(),
            overlaps: &self.overlaps,
            allowed_overlap: LEASE,
            removal_ends: self.removal_ends,
        }
    }

    /// `check`, waiting for sled to let go of its file lock: it does so a
    /// moment after the writer's last handle is dropped (a separate process,
    /// as in a real run, never waits).
    fn check(&self) -> EndCheck {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match check(&self.evidence()) {
                Err(e) if is_locked(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return other.expect("check the run"),
            }
        }
    }
}

fn is_locked(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<JournalError>(),
            Some(JournalError::Locked { .. })
        )
    })
}

/// Writes `events` with the master's own writer, one durable append, then
/// stops it so that `check` can open the journal.
fn write_journal(dir: &std::path::Path, events: &[Event]) {
    let store = Store::open(dir).expect("create the journal");
    let mut writer = Writer::start(store, 1, 16);
    let (tx, rx) = mpsc::channel();
    writer.append(
        events.to_vec(),
        vec![],
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().expect("completion").expect("durable");
    writer.shutdown();
}

/// The one failure line containing `what`, or a panic listing them all.
fn failure<'a>(end: &'a EndCheck, what: &str) -> &'a str {
    let hits: Vec<&String> = end.failures.iter().filter(|f| f.contains(what)).collect();
    assert_eq!(hits.len(), 1, "no single failure about {what:?}: {end:#?}");
    hits[0]
}

#[test]
fn the_fixture_has_a_failing_job() {
    // The wrong-result test relies on one job whose run exits non-zero.
    let codes: Vec<i32> = (0..JOBS).map(code_of).collect();
    assert_eq!(codes, [0, 9, 0, 0]);
}

#[test]
fn a_clean_run_passes() {
    let events = clean_run();
    let f = Fixture::new(events.clone());
    let end = f.check();
    assert!(end.failures.is_empty(), "{:#?}", end.failures);
    assert_eq!(end.completed, u64::from(JOBS));
    assert_eq!(
        (end.held, end.lost, end.duplicated, end.overlaps),
        (0, 0, 0, 0)
    );
    assert_eq!(end.journal_events, events.len() as u64);
    assert!(end.journal_matches_live);
}

#[test]
fn a_job_completed_twice_in_the_journal_is_duplicated() {
    // 7.2's first holder is given up on and the job runs again; the first
    // holder's late report is journaled too. The table refuses it (not the
    // current attempt), so only the journal shows the second completion.
    let events = run_of(|p| {
        if p == 2 {
            vec![
                dispatched(p, 1),
                started(p, 1),
                requeued(p, 1),
                dispatched(p, 2),
                started(p, 2),
                completed(p, 1, code_of(p)),
                completed(p, 2, code_of(p)),
            ]
        } else {
            ran(p, 1, code_of(p))
        }
    });
    let f = Fixture::new(events);
    assert_eq!(f.live[2].attempts, 2, "the table took attempt 2's report");
    let end = f.check();
    assert_eq!(end.duplicated, 1);
    // Everything else holds: the table is right, only the journal tells.
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert!(end.journal_matches_live);
    let line = failure(&end, "completed more than once");
    assert!(line.starts_with("1 jobs"), "{line}");
    assert!(line.contains("7.2"), "{line}");
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_completion_with_another_result_is_lost() {
    // 7.1's run exited 9, but the master recorded 0: a failed pilot would
    // be reported as a success.
    assert_eq!(code_of(1), 9);
    let f = Fixture::new(run_of(|p| ran(p, 1, if p == 1 { 0 } else { code_of(p) })));
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS) - 1, 1));
    let line = failure(&end, "do not carry the result their run reported");
    assert!(
        line.contains("7.1 exit Some(0), its run reported Some(9)"),
        "{line}"
    );
    // The journal agrees with the table, so only the result is wrong.
    assert!(end.journal_matches_live);
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn jobs_idle_or_running_at_the_end_are_lost() {
    // 7.0 is Idle again after its holder was lost; 7.3 is still running.
    let events = run_of(|p| match p {
        0 => vec![dispatched(p, 1), requeued(p, 1)],
        3 => vec![dispatched(p, 1), started(p, 1)],
        _ => ran(p, 1, code_of(p)),
    });
    let f = Fixture::new(events);
    let end = f.check();
    assert_eq!((end.completed, end.held, end.lost), (2, 0, 2));
    let line = failure(&end, "neither completed nor held");
    assert!(line.starts_with("2 jobs"), "{line}");
    assert!(
        line.contains("7.0 Idle") && line.contains("7.3 Running"),
        "{line}"
    );
    assert!(end.journal_matches_live);
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_job_held_with_a_reason_is_no_failure() {
    let events = run_of(|p| {
        if p == 3 {
            vec![Event::JobHeld {
                job: job(p),
                reason: "failed to start on worker-1: no such file".into(),
                at: T0 + 10,
                kept: None,
            }]
        } else {
            ran(p, 1, code_of(p))
        }
    });
    let f = Fixture::new(events);
    let end = f.check();
    assert!(end.failures.is_empty(), "{:#?}", end.failures);
    assert_eq!((end.completed, end.held, end.lost), (3, 1, 0));
}

#[test]
fn a_job_held_without_a_reason_is_a_failure() {
    // The counterpart of the test above: the reason is what makes a hold
    // acceptable.
    let events = run_of(|p| {
        if p == 3 {
            vec![Event::JobHeld {
                job: job(p),
                reason: "  ".into(),
                at: T0 + 10,
                kept: None,
            }]
        } else {
            ran(p, 1, code_of(p))
        }
    });
    let end = Fixture::new(events).check();
    assert_eq!((end.completed, end.held, end.lost), (3, 1, 0));
    assert_eq!(
        end.failures,
        ["1 held jobs have no hold reason"],
        "{:#?}",
        end.failures
    );
}

#[test]
fn a_removed_job_is_lost_unless_the_run_removed_what_was_left() {
    // 7.3 was removed before it ran. In a run that removes nothing that is a
    // job gone without a result; after `--stop-after` it is how jobs end.
    let events = run_of(|p| {
        if p == 3 {
            vec![Event::JobRemoved {
                job: job(p),
                at: T0 + 10,
            }]
        } else {
            ran(p, 1, code_of(p))
        }
    });
    let mut f = Fixture::new(events);
    let end = f.check();
    assert_eq!((end.completed, end.removed, end.lost), (3, 0, 1));
    assert!(
        failure(&end, "neither completed nor held").contains("7.3 Removed"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);

    f.removal_ends = true;
    let end = f.check();
    assert!(end.failures.is_empty(), "{:#?}", end.failures);
    assert_eq!((end.completed, end.removed, end.lost), (3, 1, 0));
}

#[test]
fn accepted_jobs_missing_from_the_table_are_lost() {
    // The master accepted two jobs more than its table holds.
    let mut f = Fixture::new(clean_run());
    f.submitted += 2;
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 2));
    assert_eq!(
        failure(&end, "missing from the master's table"),
        "2 of 6 accepted jobs are missing from the master's table"
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_live_view_unlike_the_journal_fails_the_replay() {
    // The live table claims 7.2 took two attempts; the journal has one.
    let mut f = Fixture::new(clean_run());
    f.view_mut(2).attempts = 2;
    let end = f.check();
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.2"), "{line}");
    // Nothing else is wrong with the run.
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_live_completion_the_journal_lacks_fails_twice() {
    // 7.3 is still running in the journal, but the live table shows it
    // completed, with the right code: a completion that was never made
    // durable. Both the journal checks see it.
    let mut f = Fixture::new(run_of(|p| {
        if p == 3 {
            vec![dispatched(p, 1), started(p, 1)]
        } else {
            ran(p, 1, code_of(p))
        }
    }));
    let v = f.view_mut(3);
    v.status = JobStatus::Completed;
    v.exit_code = Some(code_of(3));
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert!(!end.journal_matches_live);
    assert_eq!(
        failure(&end, "no completion in the journal"),
        "1 jobs the master shows completed have no completion in the journal"
    );
    assert!(failure(&end, "differs from the master's live table").contains("in 1 jobs: 7.3"));
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}

#[test]
fn a_journal_job_missing_from_the_live_table_fails_the_replay() {
    // The live table lost 7.0 altogether (and so did the count accepted, so
    // only the journal can tell).
    let mut f = Fixture::new(clean_run());
    f.live.retain(|v| v.id != job(0));
    f.submitted -= 1;
    let end = f.check();
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replayed table has 4 jobs, the live one 3"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_job_on_two_holders_beyond_the_lease_fails() {
    let mut f = Fixture::new(clean_run());
    f.overlaps = vec![(job(1), Duration::from_secs(95))];
    let end = f.check();
    assert_eq!(end.overlaps, 1);
    let line = failure(&end, "lease");
    assert_eq!(
        line,
        "1 jobs ran on two holders at once for longer than allowed (60.0 s: a lease, plus any partition and a reconnect) (longest: 7.1, 95.0 s)"
    );
    // The journal and table are fine: only the workers saw it.
    assert!(end.journal_matches_live);
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

/// `check` reads the journal it is given: one it cannot open is an error,
/// not a pass.
#[test]
fn a_journal_in_use_is_an_error() -> Result<()> {
    let f = Fixture::new(clean_run());
    // Hold the journal as a master that was never stopped would.
    let deadline = Instant::now() + Duration::from_secs(5);
    let _held = loop {
        match Store::open(f.journal.path()) {
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => break other?,
        }
    };
    let e = check(&f.evidence()).unwrap_err();
    assert!(is_locked(&e), "{e:#}");
    assert!(format!("{e:#}").contains("opening the journal"), "{e:#}");
    Ok(())
}

#[test]
fn a_submission_accepted_twice_fails() {
    // The submitter retried plan 31 after a crash, though the master had
    // already accepted it: the plan now stands as clusters 7 and 8, and its
    // pilots run twice though each job id completed only once.
    let mut events = clean_run();
    let mut again = submitted();
    if let Event::ClusterSubmitted { cluster, .. } = &mut again {
        *cluster = ClusterId(CLUSTER + 1);
    }
    events.push(again);
    for proc in 0..JOBS {
        let id = JobId::new(CLUSTER + 1, proc);
        events.extend([
            Event::JobDispatched {
                job: id,
                attempt: 1,
                holder: "worker-9".into(),
                at: T0 + 40,
            },
            Event::JobStarted {
                job: id,
                attempt: 1,
                at: T0 + 41,
            },
            Event::JobCompleted {
                job: id,
                attempt: 1,
                outcome: Outcome::Exited {
                    code: code_of(proc),
                },
                at: T0 + 42,
            },
        ]);
    }
    // The sim counted the plan's jobs once: the retry's answer was lost.
    let f = Fixture::new(events);
    assert_eq!(f.live.len(), 2 * JOBS as usize);
    let end = f.check();
    assert_eq!(
        failure(&end, "accepted more than once"),
        "1 submissions were accepted more than once (plan 31 as clusters {7, 8})"
    );
    assert_eq!(
        failure(&end, "accepted 4 from us"),
        "the master holds 8 jobs but accepted 4 from us"
    );
    // No job id completed twice and the journal agrees with the table: only
    // the plan tags show it.
    assert_eq!(end.duplicated, 0);
    assert!(end.journal_matches_live);
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}
