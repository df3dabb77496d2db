//! Replay gives exactly the table the live master had (ARCHITECTURE.md, "decide,
//! append, apply"). A random run of master-like operations is decided against
//! a live table, appended through the group-commit `Writer` into a real sled
//! store, and applied; at the end (and at every simulated restart) the journal
//! is reopened and its table must equal the live one, from the latest snapshot
//! plus tail and from the first event alike.

use pilotq_journal::{
    replay, snapshot, Event, JobState, KeptOutput, Table, Writer, FORMAT_VERSION,
};
use pilotq_wire::{ClusterId, JobId, JobSpec, JobStatus, Outcome, Resources};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

const HOLDERS: [&str; 3] = ["w0", "w1", "w2"];
/// What each holder offers; jobs ask for 1..3 cores.
const HOLDER_SIZE: Resources = Resources::new(6, 1 << 20, 1 << 20);
/// Dispatches of one job before a lost holder puts it on hold (ARCHITECTURE.md says
/// 3 by default; 2 so that short runs reach it).
const MAX_ATTEMPTS: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Submit {
        count: u32,
        priority: i32,
        cores: u32,
    },
    Dispatch {
        k: usize,
        holder: usize,
    },
    Start(Index),
    Complete(Index, Outcome),
    CompleteStale(Index),
    Requeue(Index),
    /// A holder's lease ran out: everything on it goes back (or on hold).
    LoseHolder(usize),
    Hold(Index),
    /// A job out on a holder finished, but its output could not be put in
    /// place: Held with its result kept.
    HoldKept(Index, Outcome),
    /// A release of a job held with its result failed again: held again
    /// with the same result and a new reason.
    HoldKeptAgain(Index),
    /// The output of a job held with its result was written after all: it
    /// completes with the kept attempt and outcome.
    CompleteKept(Index),
    /// `pilotq release` of a held job: Idle again without a kept result,
    /// unchanged with one.
    Release(Index),
    RemoveJob(Index),
    RemoveCluster(Index),
    Snapshot,
    /// The master stops and starts again on the same journal.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = || {
        prop_oneof![
            (-2i32..3).prop_map(|code| Outcome::Exited { code }),
            (1i32..16).prop_map(|signal| Outcome::Signalled { signal }),
            Just(Outcome::FailedToStart {
                reason: "no such file".into()
            }),
        ]
    };
    prop_oneof![
        3 => (1u32..50, -2i32..3, 1u32..=3)
            .prop_map(|(count, priority, cores)| Op::Submit { count, priority, cores }),
        4 => (1usize..10, 0..HOLDERS.len()).prop_map(|(k, holder)| Op::Dispatch { k, holder }),
        3 => any::<Index>().prop_map(Op::Start),
        3 => (any::<Index>(), outcome()).prop_map(|(i, o)| Op::Complete(i, o)),
        1 => any::<Index>().prop_map(Op::CompleteStale),
        2 => any::<Index>().prop_map(Op::Requeue),
        1 => (0..HOLDERS.len()).prop_map(Op::LoseHolder),
        1 => any::<Index>().prop_map(Op::Hold),
        1 => (any::<Index>(), outcome()).prop_map(|(i, o)| Op::HoldKept(i, o)),
        1 => any::<Index>().prop_map(Op::HoldKeptAgain),
        1 => any::<Index>().prop_map(Op::CompleteKept),
        1 => any::<Index>().prop_map(Op::Release),
        1 => any::<Index>().prop_map(Op::RemoveJob),
        1 => any::<Index>().prop_map(Op::RemoveCluster),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Restart),
    ]
}

fn spec(priority: i32, cores: u32) -> Box<JobSpec> {
    Box::new(JobSpec {
        executable: "ab".repeat(32),
        cmd: "pilot.sh".into(),
        arguments: vec!["--queue".into(), format!("p{priority}")],
        environment: BTreeMap::from([("HOME".into(), "/tmp".into())]),
        output: Some("/out/$(Cluster).$(Process).out".into()),
        error: None,
        log: Some("/out/log".into()),
        request: Resources::new(cores, 500 * u64::from(cores), 100),
        priority,
        attributes: BTreeMap::from([("Pilot".into(), "true".into())]),
        owner: "alice".into(),
        iwd: "/home/alice".into(),
        tags: vec![],
        // Both ways a finished job can go: out of the queue for the
        // history store (odd priorities), or kept in it.
        leave_in_queue: priority % 2 == 0,
    })
}

/// A master's journal side: the live table, and the writer it appends through.
struct Master<'a> {
    dir: &'a Path,
    writer: Writer,
    live: Table,
    next_seq: u64,
    last_snapshot: Option<u64>,
    /// The live table after each append, by the last event it covers: what
    /// `pilotq journal at #SEQ` must show for that point.
    history: Vec<(u64, Table)>,
    clock: u64,
}

fn wait(f: impl FnOnce(pilotq_journal::Done)) -> u64 {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv()
        .expect("the writer dropped a completion")
        .expect("journal write")
}

impl<'a> Master<'a> {
    fn open(dir: &'a Path) -> Self {
        let r = replay::open(dir).expect("open a fresh journal");
        assert_eq!(r.next_seq, 1);
        Master {
            dir,
            writer: Writer::start(r.store, r.next_seq, 16),
            live: r.table,
            next_seq: 1,
            last_snapshot: None,
            history: Vec::new(),
            clock: 1_700_000_000_000,
        }
    }

    /// Appends `events`, waits until they are durable, then applies them.
    fn append(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        let seq = wait(|done| self.writer.append(events.clone(), vec![], done));
        assert_eq!(
            seq,
            self.next_seq + n - 1,
            "completion names the last event"
        );
        self.next_seq += n;
        for e in &events {
            self.live.apply(e);
            if let Err(why) = self.live.check_indexes() {
                panic!("live indexes wrong after {e:?}: {why}");
            }
        }
        self.history.push((self.next_seq - 1, self.live.clone()));
    }

    fn tick(&mut self) -> u64 {
        self.clock += 17;
        self.clock
    }

    /// Jobs out on any holder, in a fixed order.
    fn out(&self) -> Vec<JobId> {
        let mut out: Vec<JobId> = HOLDERS.iter().flat_map(|h| self.live.jobs_on(h)).collect();
        out.sort();
        out
    }

    fn jobs_where(&self, keep: impl Fn(&JobState, u32) -> bool) -> Vec<JobId> {
        self.live
            .select(&[])
            .into_iter()
            .filter(|id| {
                let j = self.live.job(*id).expect("selected").job;
                keep(&j.state, j.attempts)
            })
            .collect()
    }

    fn attempt(&self, job: JobId) -> u32 {
        self.live.current_attempt(job).expect("job is out")
    }

    /// What a master decides for a job whose holder was lost.
    fn lost(&self, job: JobId, at: u64) -> Event {
        let attempt = self.attempt(job);
        if attempt >= MAX_ATTEMPTS {
            Event::JobHeld {
                job,
                reason: format!("holder lost {attempt} times"),
                at,
                kept: None,
            }
        } else {
            Event::JobRequeued {
                job,
                attempt,
                reason: "holder lost".into(),
                at,
            }
        }
    }

    fn run(&mut self, op: &Op) {
        let at = self.tick();
        let events = match op {
            Op::Submit {
                count,
                priority,
                cores,
            } => vec![Event::ClusterSubmitted {
                cluster: ClusterId(self.live.last_cluster().0 + 1),
                count: *count,
                spec: spec(*priority, *cores),
                at,
            }],
            Op::Dispatch { k, holder } => {
                let name = HOLDERS[*holder];
                let free = HOLDER_SIZE.minus(&self.live.used_on(name));
                self.live
                    .pick_idle(free, *k)
                    .into_iter()
                    .map(|job| Event::JobDispatched {
                        job,
                        attempt: self.live.job(job).expect("picked").job.attempts + 1,
                        holder: name.into(),
                        at,
                    })
                    .collect()
            }
            Op::Start(i) => {
                let assigned: Vec<JobId> = self
                    .out()
                    .into_iter()
                    .filter(|j| {
                        matches!(
                            self.live.job(*j).expect("out").job.state,
                            JobState::Assigned { .. }
                        )
                    })
                    .collect();
                if assigned.is_empty() {
                    return;
                }
                let job = *i.get(&assigned);
                vec![Event::JobStarted {
                    job,
                    attempt: self.attempt(job),
                    at,
                }]
            }
            Op::Complete(i, outcome) => {
                let out = self.out();
                if out.is_empty() {
                    return;
                }
                let job = *i.get(&out);
                vec![Event::JobCompleted {
                    job,
                    attempt: self.attempt(job),
                    outcome: outcome.clone(),
                    at,
                }]
            }
            Op::CompleteStale(i) => {
                let tried = self.jobs_where(|_, attempts| attempts > 0);
                if tried.is_empty() {
                    return;
                }
                let job = *i.get(&tried);
                let j = self.live.job(job).expect("selected").job;
                // An earlier attempt of a job out again, a duplicate report
                // of a job no longer out, or another attempt than the one
                // whose result a held job keeps: all refused by the table.
                let attempt = match (j.state.out_on(), self.live.kept_output(job)) {
                    (Some((_, current)), _) => current - 1,
                    (None, Some(k)) => k.attempt + 1,
                    (None, None) => j.attempts,
                };
                let before = self.live.clone();
                self.append(vec![Event::JobCompleted {
                    job,
                    attempt,
                    outcome: Outcome::Exited { code: 99 },
                    at,
                }]);
                assert_eq!(self.live, before, "a stale report changed the table");
                assert_eq!(self.live.counts(), before.counts());
                return;
            }
            Op::Requeue(i) => {
                let out = self.out();
                if out.is_empty() {
                    return;
                }
                vec![self.lost(*i.get(&out), at)]
            }
            Op::LoseHolder(h) => {
                let on: Vec<JobId> = self.live.jobs_on(HOLDERS[*h]).collect();
                on.into_iter().map(|job| self.lost(job, at)).collect()
            }
            Op::Hold(i) => {
                let holdable = self.jobs_where(|s, _| {
                    !s.status().is_final() && !matches!(s, JobState::Held { .. })
                });
                if holdable.is_empty() {
                    return;
                }
                vec![Event::JobHeld {
                    job: *i.get(&holdable),
                    reason: format!("held at {at}"),
                    at,
                    kept: None,
                }]
            }
            Op::HoldKept(i, outcome) => {
                let out = self.out();
                if out.is_empty() {
                    return;
                }
                let job = *i.get(&out);
                let attempt = self.attempt(job);
                vec![Event::JobHeld {
                    job,
                    reason: format!("output of attempt {attempt} not written"),
                    at,
                    kept: Some(Box::new(KeptOutput {
                        attempt,
                        outcome: outcome.clone(),
                        stdout: Some(format!("{:064x}", at)),
                        stderr: attempt.is_multiple_of(2).then(|| "e".repeat(64)),
                    })),
                }]
            }
            Op::HoldKeptAgain(i) => {
                let kept =
                    self.jobs_where(|s, _| matches!(s, JobState::Held { kept: Some(_), .. }));
                if kept.is_empty() {
                    return;
                }
                let job = *i.get(&kept);
                let k = self.live.kept_output(job).expect("held with its result");
                let event = Event::JobHeld {
                    job,
                    reason: format!("release at {at} failed"),
                    at,
                    kept: Some(Box::new(k.clone())),
                };
                let before = self.live.counts();
                self.append(vec![event]);
                let v = self.live.view(job).expect("selected");
                assert_eq!(v.hold_reason, Some(format!("release at {at} failed")));
                assert_eq!(v.entered_status_at, at);
                assert_eq!(self.live.counts(), before);
                return;
            }
            Op::CompleteKept(i) => {
                let kept =
                    self.jobs_where(|s, _| matches!(s, JobState::Held { kept: Some(_), .. }));
                if kept.is_empty() {
                    return;
                }
                let job = *i.get(&kept);
                let k = self.live.kept_output(job).expect("held with its result");
                let (attempt, outcome) = (k.attempt, k.outcome.clone());
                let before = self.live.counts();
                self.append(vec![Event::JobCompleted {
                    job,
                    attempt,
                    outcome: outcome.clone(),
                    at,
                }]);
                assert_eq!(self.live.kept_output(job), None);
                let after = self.live.counts();
                match self.live.job(job) {
                    Some(r) => {
                        // leave_in_queue: completed in place.
                        assert_eq!(r.job.state, JobState::Completed { outcome });
                        assert_eq!(r.job.attempts, attempt);
                        assert_eq!(
                            (after.held, after.completed),
                            (before.held - 1, before.completed + 1)
                        );
                    }
                    None => {
                        // Gone to the history store.
                        assert!(self.live.has_left(job));
                        assert_eq!(
                            (after.held, after.completed),
                            (before.held - 1, before.completed)
                        );
                    }
                }
                return;
            }
            Op::Release(i) => {
                let held = self.jobs_where(|s, _| matches!(s, JobState::Held { .. }));
                if held.is_empty() {
                    return;
                }
                let job = *i.get(&held);
                let before = self.live.clone();
                let attempts = self.live.job(job).expect("selected").job.attempts;
                let kept = self.live.kept_output(job).is_some();
                self.append(vec![Event::JobReleased { job, at }]);
                if kept {
                    assert_eq!(self.live, before, "a release dropped a kept result");
                    assert_eq!(self.live.counts(), before.counts());
                } else {
                    let j = self.live.job(job).expect("selected").job;
                    assert_eq!((&j.state, j.attempts), (&JobState::Idle, attempts));
                    let (b, a) = (before.counts(), self.live.counts());
                    assert_eq!((a.held, a.idle), (b.held - 1, b.idle + 1));
                }
                return;
            }
            Op::RemoveJob(i) => {
                let live = self.jobs_where(|s, _| !s.status().is_final());
                if live.is_empty() {
                    return;
                }
                vec![Event::JobRemoved {
                    job: *i.get(&live),
                    at,
                }]
            }
            Op::RemoveCluster(i) => {
                let ids: Vec<ClusterId> = self.live.clusters().map(|(id, _)| *id).collect();
                if ids.is_empty() {
                    return;
                }
                vec![Event::ClusterRemoved {
                    cluster: *i.get(&ids),
                    at,
                }]
            }
            Op::Snapshot => {
                let bytes = snapshot::encode(&self.live);
                let decoded = snapshot::decode(&bytes).expect("a fresh snapshot decodes");
                same_table(&self.live, &decoded);
                let seq = wait(|done| self.writer.snapshot(bytes, done));
                assert_eq!(
                    seq,
                    self.next_seq - 1,
                    "a snapshot covers every event before it"
                );
                self.last_snapshot = Some(seq);
                return;
            }
            Op::Restart => {
                self.writer.shutdown();
                let r = self.reopen_and_compare();
                self.writer = Writer::start(r.store, r.next_seq, 16);
                vec![Event::MasterStarted {
                    name: "master".into(),
                    at,
                }]
            }
        };
        self.append(events);
    }

    /// Reopens the journal (the writer must be shut down) and holds its
    /// table, from snapshot + tail and from the first event, to the live one.
    fn reopen_and_compare(&self) -> replay::Replayed {
        // sled lets go of its file lock when the last of its own background
        // tasks drops the database, a moment after our last handle: a
        // reopen in the same process may have to wait for that (a restart
        // in a new process never does). It must succeed within 5 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let r = loop {
            match replay::open(self.dir) {
                Err(pilotq_journal::JournalError::Locked { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => break other.expect("reopen the journal"),
            }
        };
        assert_eq!(r.next_seq, self.next_seq);
        assert_eq!(r.snapshot_seq, self.last_snapshot);
        let from = self.last_snapshot.map_or(1, |s| s + 1);
        assert_eq!(r.replayed, self.next_seq - from);
        same_table(&self.live, &r.table);

        let (full, snap, replayed) = replay::rebuild(&r.store, false).expect("full replay");
        assert_eq!(snap, None);
        assert_eq!(replayed, self.next_seq - 1);
        same_table(&self.live, &full);
        self.at_every_point_is_the_table_then(&r.store);

        let mut expect = 1;
        for item in r.store.events_from(1) {
            let (seq, env) = item.expect("every stored event decodes");
            assert_eq!(seq, expect, "sequence numbers are contiguous");
            assert_eq!(env.v, FORMAT_VERSION);
            expect += 1;
        }
        assert_eq!(expect, self.next_seq);
        r
    }
}

impl Master<'_> {
    /// `pilotq journal at`: at every point the live master passed (and
    /// every sequence number between), a replay of the journal to that
    /// point, from the first event or from the newest snapshot at or before
    /// it, is the table the master had then; and what `at` prints of it
    /// agrees with the table's own counts.
    fn at_every_point_is_the_table_then(&self, store: &pilotq_journal::Store) {
        use pilotq_journal::postmortem::at::{describe, snapshot_at_or_before, table_at};
        use pilotq_journal::postmortem::Point;
        // The table after each event, folded one by one; at the points
        // where the live master's table is known, it must be that one.
        let events: Vec<Event> = store
            .events_from(1)
            .map(|r| r.expect("every stored event decodes").1.e)
            .collect();
        let mut then = Table::new();
        let mut points = self.history.iter().peekable();
        for seq in 0..self.next_seq {
            if seq > 0 {
                then.apply(&events[seq as usize - 1]);
            }
            while points.peek().is_some_and(|(s, _)| *s < seq) {
                points.next();
            }
            if let Some((_, live)) = points.peek().filter(|(s, _)| *s == seq) {
                same_table(live, &then);
            }
            let (got, last) =
                table_at(None, store.events_from(1), Point::Seq(seq)).expect("the journal reads");
            same_table(&then, &got);
            assert_eq!(last.map(|l| l.0), (seq > 0).then_some(seq), "at #{seq}");
            if let Some((snap, start)) = snapshot_at_or_before(store, seq).expect("snapshots read")
            {
                assert!(snap <= seq);
                let (from_snap, _) = table_at(
                    Some((snap, start)),
                    store.events_from(snap + 1),
                    Point::Seq(seq),
                )
                .expect("the journal reads");
                same_table(&then, &from_snap);
            }
            let view = describe(&got, last, None, usize::MAX);
            let c = got.counts();
            assert_eq!(
                (view.idle, view.running, view.held),
                (c.idle, c.running, c.held)
            );
            let listed = |k: &str| view.states.get(k).map_or(0, |l| l.count);
            assert_eq!(listed("idle") + listed("assigned"), c.idle, "at #{seq}");
            assert_eq!(listed("running"), c.running, "at #{seq}");
            assert_eq!(listed("held"), c.held, "at #{seq}");
            let out: usize = view.holders.iter().map(|h| h.jobs.count as usize).sum();
            assert_eq!(
                out,
                got.holders().map(|(_, n)| n).sum::<usize>(),
                "at #{seq}"
            );
        }
    }
}

/// Everything a client or the master can read is the same in both tables.
fn same_table(live: &Table, replayed: &Table) {
    assert_eq!(live, replayed);
    replayed
        .check_indexes()
        .unwrap_or_else(|why| panic!("replayed indexes: {why}"));
    assert_eq!(live.counts(), replayed.counts());
    assert_eq!(live.last_cluster(), replayed.last_cluster());
    assert_eq!(live.restarts(), replayed.restarts());
    let ids = live.select(&[]);
    assert_eq!(ids, replayed.select(&[]));
    for id in &ids {
        assert_eq!(live.view(*id), replayed.view(*id), "view of {id}");
    }
    let by_status = |t: &Table, s: JobStatus| {
        ids.iter()
            .filter(|id| t.view(**id).expect("selected").status == s)
            .count() as u64
    };
    let c = replayed.counts();
    assert_eq!(by_status(replayed, JobStatus::Idle), c.idle);
    assert_eq!(by_status(replayed, JobStatus::Running), c.running);
    assert_eq!(by_status(replayed, JobStatus::Removed), c.removed);
    assert_eq!(by_status(replayed, JobStatus::Completed), c.completed);
    assert_eq!(by_status(replayed, JobStatus::Held), c.held);
    for h in HOLDERS {
        assert_eq!(
            live.jobs_on(h).collect::<Vec<_>>(),
            replayed.jobs_on(h).collect::<Vec<_>>(),
            "jobs on {h}"
        );
        assert_eq!(live.used_on(h), replayed.used_on(h));
    }
    for free in [Resources::new(1, 500, 100), HOLDER_SIZE] {
        assert_eq!(live.pick_idle(free, 1000), replayed.pick_idle(free, 1000));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replay_gives_the_live_table(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Master::open(dir.path());
        for op in &ops {
            m.run(op);
        }
        m.writer.shutdown();
        m.reopen_and_compare();
    }
}
