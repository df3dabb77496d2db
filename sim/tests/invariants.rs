//! The end-of-run checks (`invariants::check`) against real journals.
//!
//! A check that never fails proves nothing, so each invariant gets a run
//! that breaks it, and one clean run shows that none fires without cause.
//! Every run is a real journal written by the master's own `Writer`, and the
//! master's tables are the same events folded by `Table::apply`, as the
//! master folds them: a job that completes or is removed leaves the "live"
//! table, and its departure's record (stamped with the event's sequence) goes
//! to the "history" store. A test then breaks one thing (an event, a view, a
//! history record, the evidence) and asserts the counts and the failure line
//! that must name it.

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
    submitted_leaving_in_queue(false)
}

/// The cluster's submission; with `leave_in_queue`, its finished jobs stay
/// in the queue instead of leaving for the history.
fn submitted_leaving_in_queue(leave_in_queue: bool) -> Event {
    let mut spec = sim_spec("sim-job", 0);
    tag_plan(&mut spec, PLAN);
    spec.leave_in_queue = leave_in_queue;
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

/// `proc` held before it ran, with a reason.
fn held(proc: u32) -> Vec<Event> {
    vec![Event::JobHeld {
        job: job(proc),
        reason: "failed to start on worker-1: no such file".into(),
        at: T0 + 10,
        kept: None,
    }]
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
    /// The jobs still in the queue at the end.
    live: Vec<JobView>,
    /// The jobs that left the queue, in the order they left.
    history: Vec<JobView>,
    submitted: u64,
    book: JobBook,
    overlaps: Vec<(JobId, Duration)>,
    /// Whether the run removed what was left (`--stop-after`).
    removal_ends: bool,
}

impl Fixture {
    /// Journals `events` and folds the same events as the master does: the
    /// jobs that leave the queue go to the history, each record stamped with
    /// the sequence of the event that ended it (the journal's first is 1).
    fn new(events: Vec<Event>) -> Fixture {
        let journal = tempfile::tempdir().unwrap();
        write_journal(journal.path(), &events);
        let mut table = Table::new();
        table.keep_departures();
        let mut history = Vec::new();
        for (seq, e) in (1u64..).zip(&events) {
            table.apply(e);
            for d in table.take_departures() {
                history.extend(d.records(seq));
            }
        }
        let live = table
            .select(&[])
            .into_iter()
            .map(|id| table.view(id).unwrap())
            .collect();
        Fixture {
            journal,
            live,
            history,
            submitted: u64::from(JOBS),
            book: book(),
            overlaps: vec![],
            removal_ends: false,
        }
    }

    /// The live view of `proc`, which must still be in the queue.
    fn view_mut(&mut self, proc: u32) -> &mut JobView {
        self.live.iter_mut().find(|v| v.id == job(proc)).unwrap()
    }

    /// The history record of `proc`, which must have left the queue.
    fn history_mut(&mut self, proc: u32) -> &mut JobView {
        self.history.iter_mut().find(|v| v.id == job(proc)).unwrap()
    }

    fn record(&self, proc: u32) -> &JobView {
        self.history.iter().find(|v| v.id == job(proc)).unwrap()
    }

    fn evidence(&self) -> Evidence<'_> {
        Evidence {
            live: &self.live,
            history: &self.history,
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

/// The fixture's journal, once sled has let go of its file lock.
fn open_when_free(f: &Fixture) -> Result<Store, JournalError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(f.journal.path()) {
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other,
        }
    }
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
fn the_fixture_keeps_history_as_the_master_does() -> Result<()> {
    // The journal numbers events from 1 (MasterStarted 1, the submission 2,
    // then three events a job), and each completion takes its job out of the
    // queue with a record stamped with the completion's sequence.
    let events = clean_run();
    let f = Fixture::new(events.clone());
    let seqs: Vec<u64> = f.history.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [5, 8, 11, 14]);
    for (p, h) in (0..JOBS).zip(&f.history) {
        assert_eq!(h.id, job(p));
        assert_eq!(h.status, JobStatus::Completed);
        assert_eq!(h.exit_code, Some(code_of(p)));
        assert_eq!(h.completed_at, Some(T0 + 30));
        assert_eq!(h.num_starts, 1);
        assert_eq!(h.last_holder.as_deref(), Some("worker-1"));
        assert_eq!(events[h.seq as usize - 1], completed(p, 1, code_of(p)));
    }
    let store = open_when_free(&f)?;
    let journaled: Vec<u64> = store
        .events_from(1)
        .map(|item| item.map(|(seq, _)| seq))
        .collect::<Result<_, _>>()?;
    assert_eq!(journaled, (1..=events.len() as u64).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn a_clean_run_passes() {
    let events = clean_run();
    let f = Fixture::new(events.clone());
    // Every job finished, so the queue is empty and every job is in the
    // history, in the order it left.
    assert!(f.live.is_empty(), "{:#?}", f.live);
    let left: Vec<JobId> = f.history.iter().map(|h| h.id).collect();
    assert_eq!(left, (0..JOBS).map(job).collect::<Vec<_>>());
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
    assert_eq!(f.record(2).attempts, 2, "the table took attempt 2's report");
    assert_eq!(f.record(2).last_holder.as_deref(), Some("worker-2"));
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
        failure(&end, "missing from the master's queue and history"),
        "2 of 6 accepted jobs are missing from the master's queue and history"
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_history_record_unlike_the_journal_fails_the_replay() {
    // The history claims 7.2 took two attempts; the journal has one. (7.2
    // completed, so its record is in the history, not the queue.)
    let mut f = Fixture::new(clean_run());
    f.history_mut(2).attempts = 2;
    let end = f.check();
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.2 (history)"), "{line}");
    // Nothing else is wrong with the run.
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_history_record_with_another_last_holder_fails_the_replay() {
    // 7.2 ran on worker-1; the history says it ran elsewhere.
    let mut f = Fixture::new(clean_run());
    assert_eq!(f.record(2).last_holder.as_deref(), Some("worker-1"));
    f.history_mut(2).last_holder = Some("worker-9".into());
    let end = f.check();
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.2 (history)"), "{line}");
    assert!(line.contains("worker-9"), "{line}");
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_history_record_with_another_result_fails_twice() {
    // The journal has 7.1 exit 9, as its run reported; the history store
    // recorded 0. The result check and the replay both see it.
    assert_eq!(code_of(1), 9);
    let mut f = Fixture::new(clean_run());
    f.history_mut(1).exit_code = Some(0);
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS) - 1, 1));
    assert!(
        failure(&end, "do not carry the result their run reported")
            .contains("7.1 exit Some(0), its run reported Some(9)"),
        "{:#?}",
        end.failures
    );
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.1 (history)"), "{line}");
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}

#[test]
fn a_live_view_unlike_the_journal_fails_the_replay() {
    // Rewritten for the history store: in a clean run every job has left
    // the queue, so the live view checked is that of a job still in it (7.3,
    // held with a reason). The live table claims 7.3 took two attempts; the
    // journal has none.
    let mut f = Fixture::new(run_of(|p| {
        if p == 3 {
            held(p)
        } else {
            ran(p, 1, code_of(p))
        }
    }));
    assert_eq!(f.live.len(), 1);
    f.view_mut(3).attempts = 2;
    let end = f.check();
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.3: live"), "{line}");
    // Nothing else is wrong with the run.
    assert_eq!((end.completed, end.held, end.lost), (3, 1, 0));
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
fn a_history_completion_the_journal_lacks_fails_twice() {
    // As above, but the master also moved 7.3 to its history: the journal
    // has it still running, the history store has it completed.
    let mut f = Fixture::new(run_of(|p| {
        if p == 3 {
            vec![dispatched(p, 1), started(p, 1)]
        } else {
            ran(p, 1, code_of(p))
        }
    }));
    let mut v = f.live.pop().unwrap();
    assert!(f.live.is_empty());
    assert_eq!(v.id, job(3));
    v.status = JobStatus::Completed;
    v.exit_code = Some(code_of(3));
    v.completed_at = Some(T0 + 30);
    f.history.push(v);
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert!(!end.journal_matches_live);
    assert_eq!(
        failure(&end, "no completion in the journal"),
        "1 jobs the master shows completed have no completion in the journal"
    );
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("7.3 (history): store"), "{line}");
    assert!(
        line.contains("the replay has 3 jobs leave the queue, the history store holds 4"),
        "{line}"
    );
    assert!(
        line.contains("the replayed table has 1 jobs, the live one 0"),
        "{line}"
    );
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}

#[test]
fn a_journal_job_missing_from_the_live_table_fails_the_replay() {
    // Rewritten for the history store: in a clean run the queue is empty, so
    // the job lost is one still in it (7.0, held with a reason). The live
    // table lost 7.0 altogether (and so did the count accepted, so only the
    // journal can tell).
    let mut f = Fixture::new(run_of(|p| {
        if p == 0 {
            held(p)
        } else {
            ran(p, 1, code_of(p))
        }
    }));
    f.live.retain(|v| v.id != job(0));
    assert!(f.live.is_empty());
    f.submitted -= 1;
    let end = f.check();
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replayed table has 1 jobs, the live one 0"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_journal_job_missing_from_the_history_fails_the_replay() {
    // The history store lost 7.0's record (and so did the count accepted,
    // so only the journal can tell): the replay has it leave the queue.
    let mut f = Fixture::new(clean_run());
    f.history.retain(|v| v.id != job(0));
    f.submitted -= 1;
    let end = f.check();
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replay has 4 jobs leave the queue, the history store holds 3"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_job_both_in_the_queue_and_in_history_fails() {
    // The master recorded 7.1 in its history but left it in its queue too.
    let mut f = Fixture::new(clean_run());
    let v = f.record(1).clone();
    f.live.push(v);
    let end = f.check();
    assert_eq!(
        failure(&end, "both in the queue and in history"),
        "1 jobs are both in the queue and in history, or twice in either (e.g. 7.1)"
    );
    // The replayed queue is empty: the live 7.1 is not in it.
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("7.1: live"), "{line}");
    assert!(
        line.contains("the replayed table has 0 jobs, the live one 1"),
        "{line}"
    );
    assert_eq!(end.lost, 0);
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}

#[test]
fn a_job_twice_in_history_fails() {
    // The history store holds 7.1's record twice (both right).
    let mut f = Fixture::new(clean_run());
    let v = f.record(1).clone();
    f.history.push(v);
    let end = f.check();
    assert_eq!(
        failure(&end, "or twice in either"),
        "1 jobs are both in the queue and in history, or twice in either (e.g. 7.1)"
    );
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replay has 4 jobs leave the queue, the history store holds 5"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.lost, 0);
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}

#[test]
fn a_record_twice_in_history_does_not_hide_one_missing() {
    // 7.0's record was overwritten by a second copy of 7.1's: as many
    // records as the replay has departures, each equal to the replay's.
    let mut f = Fixture::new(clean_run());
    assert_eq!(f.history[0].id, job(0));
    f.history[0] = f.record(1).clone();
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 1));
    assert!(
        failure(&end, "or twice in either").contains("(e.g. 7.1)"),
        "{:#?}",
        end.failures
    );
    assert_eq!(
        failure(&end, "missing from the master's queue and history"),
        "1 of 4 accepted jobs are missing from the master's queue and history"
    );
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replay has 4 jobs leave the queue, the history store holds 4 (1 of them with no record: 7.0)"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 3, "{:#?}", end.failures);
}

#[test]
fn a_job_twice_in_the_queue_does_not_hide_one_missing() {
    // 7.2 and 7.3 are held; the live table lists 7.2 twice and lacks 7.3.
    let mut f = Fixture::new(run_of(|p| {
        if p >= 2 {
            held(p)
        } else {
            ran(p, 1, code_of(p))
        }
    }));
    assert_eq!(f.live.len(), 2);
    f.live[1] = f.live[0].clone();
    assert_eq!(f.live[1].id, job(2));
    let end = f.check();
    assert_eq!((end.held, end.lost), (2, 1));
    assert!(
        failure(&end, "jobs are both in the queue and in history").contains("(e.g. 7.2)"),
        "{:#?}",
        end.failures
    );
    assert!(!end.journal_matches_live);
    assert!(
        failure(&end, "differs from the master's live table")
            .contains("the replayed table has 2 jobs, the live one 2 (1 of them not listed: 7.3)"),
        "{:#?}",
        end.failures
    );
    assert_eq!(end.failures.len(), 3, "{:#?}", end.failures);
}

#[test]
fn a_clean_run_that_leaves_jobs_in_the_queue_passes() {
    // With `leave_in_queue`, finished jobs stay in the queue: nothing goes
    // to the history.
    let mut events = clean_run();
    events[1] = submitted_leaving_in_queue(true);
    let f = Fixture::new(events);
    assert!(f.history.is_empty(), "{:#?}", f.history);
    assert_eq!(f.live.len(), JOBS as usize);
    let end = f.check();
    assert!(end.failures.is_empty(), "{:#?}", end.failures);
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert!(end.journal_matches_live);
}

#[test]
fn a_job_moved_to_history_against_leave_in_queue_fails_the_replay() {
    // The cluster says `leave_in_queue`, but the master moved 7.1 to its
    // history anyway.
    let mut events = clean_run();
    events[1] = submitted_leaving_in_queue(true);
    let mut f = Fixture::new(events);
    let i = f.live.iter().position(|v| v.id == job(1)).unwrap();
    let v = f.live.remove(i);
    f.history.push(v);
    let end = f.check();
    assert_eq!((end.completed, end.lost), (u64::from(JOBS), 0));
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("7.1 (history): store"), "{line}");
    assert!(line.contains("replayed None"), "{line}");
    assert!(
        line.contains("the replay has 0 jobs leave the queue, the history store holds 1"),
        "{line}"
    );
    assert_eq!(end.failures.len(), 1, "{:#?}", end.failures);
}

#[test]
fn a_removed_cluster_leaves_for_history() {
    // `--stop-after` removed the cluster with 7.2 running and 7.3 never run:
    // both leave, 7.2 with its holder, 7.3 as one of the jobs that never ran.
    let mut events = run_of(|p| match p {
        2 => vec![dispatched(p, 1), started(p, 1)],
        3 => vec![],
        _ => ran(p, 1, code_of(p)),
    });
    events.push(Event::ClusterRemoved {
        cluster: ClusterId(CLUSTER),
        at: T0 + 50,
    });
    let mut f = Fixture::new(events.clone());
    f.removal_ends = true;
    assert!(f.live.is_empty(), "{:#?}", f.live);
    assert_eq!(f.history.len(), JOBS as usize);
    let (r2, r3) = (f.record(2), f.record(3));
    assert_eq!(
        (r2.status, r2.last_holder.as_deref(), r2.seq),
        (JobStatus::Removed, Some("worker-1"), events.len() as u64)
    );
    assert_eq!(
        (r3.status, r3.last_holder.as_deref(), r3.num_starts),
        (JobStatus::Removed, None, 0)
    );
    let end = f.check();
    assert!(end.failures.is_empty(), "{:#?}", end.failures);
    assert_eq!((end.completed, end.removed, end.lost), (2, 2, 0));
    assert!(end.journal_matches_live);

    // A record of a job that never ran claiming a holder is caught too.
    f.history_mut(3).last_holder = Some("worker-1".into());
    let end = f.check();
    assert!(!end.journal_matches_live);
    let line = failure(&end, "differs from the master's live table");
    assert!(line.contains("in 1 jobs: 7.3 (history)"), "{line}");
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
    let _held = open_when_free(&f)?;
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
    assert!(f.live.is_empty(), "{:#?}", f.live);
    assert_eq!(f.history.len(), 2 * JOBS as usize);
    let end = f.check();
    assert_eq!(
        failure(&end, "accepted more than once"),
        "1 submissions were accepted more than once (plan 31 as clusters {7, 8})"
    );
    assert_eq!(
        failure(&end, "accepted 4 from us"),
        "the master holds 8 jobs (queue and history) but accepted 4 from us"
    );
    // No job id completed twice and the journal agrees with the table: only
    // the plan tags show it.
    assert_eq!(end.duplicated, 0);
    assert!(end.journal_matches_live);
    assert_eq!(end.failures.len(), 2, "{:#?}", end.failures);
}
