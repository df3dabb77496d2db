//! Sealing changes where events live, never what the journal says: after
//! the writer's sealer and explicit seals have moved any part of a journal
//! into sealed files, a reopened journal has exactly the table it had, from
//! its snapshot plus tail and from its first event alike, and its readers
//! give every event once, in order, byte for byte what was appended.
//!
//! Events are random: `Table::apply` is total (an event that does not fit
//! changes nothing), so any sequence is a journal a replay must follow.

use pilotq_journal::sealed::referenced_blobs;
use pilotq_journal::{replay, snapshot, Event, JournalError, KeptOutput, Retention, Table, Writer};
use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome, Resources};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn spec(n: u64) -> Box<JobSpec> {
    Box::new(JobSpec {
        executable: format!("{n:064x}"),
        cmd: "pilot.sh".into(),
        arguments: vec![format!("--n={n}")],
        environment: BTreeMap::new(),
        output: None,
        error: None,
        log: None,
        request: Resources::new(1, 100, 100),
        priority: (n % 3) as i32,
        attributes: BTreeMap::new(),
        owner: "alice".into(),
        iwd: "/".into(),
        tags: vec![],
        leave_in_queue: false,
    })
}

fn job() -> impl Strategy<Value = JobId> {
    (1u64..6, 0u32..6).prop_map(|(c, p)| JobId::new(c, p))
}

fn event() -> impl Strategy<Value = Event> {
    let at = 1_700_000_000_000u64..1_700_000_100_000;
    prop_oneof![
        2 => (1u64..6, 1u32..8, at.clone()).prop_map(|(c, count, at)| Event::ClusterSubmitted {
            cluster: ClusterId(c),
            count,
            spec: spec(c * 10 + u64::from(count)),
            at,
        }),
        4 => (job(), 1u32..4, 0usize..3, at.clone()).prop_map(|(job, attempt, h, at)| {
            Event::JobDispatched { job, attempt, holder: format!("worker-{h:04}"), at }
        }),
        3 => (job(), 1u32..4, at.clone()).prop_map(|(job, attempt, at)| Event::JobStarted { job, attempt, at }),
        3 => (job(), 1u32..4, -1i32..3, at.clone()).prop_map(|(job, attempt, code, at)| {
            Event::JobCompleted { job, attempt, outcome: Outcome::Exited { code }, at }
        }),
        1 => (job(), 1u32..4, at.clone()).prop_map(|(job, attempt, at)| Event::JobRequeued {
            job, attempt, reason: "lost".into(), at
        }),
        1 => (job(), any::<bool>(), 0u8..4, at.clone()).prop_map(|(job, keep, n, at)| Event::JobHeld {
            job,
            reason: "cannot write".into(),
            at,
            kept: keep.then(|| Box::new(KeptOutput {
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                stdout: Some(format!("{:064x}", 0xa000 + u64::from(n))),
                stderr: (n & 1 == 0).then(|| format!("{:064x}", 0xb000 + u64::from(n))),
            })),
        }),
        1 => (job(), at.clone()).prop_map(|(job, at)| Event::JobReleased { job, at }),
        1 => (job(), at.clone()).prop_map(|(job, at)| Event::JobRemoved { job, at }),
        1 => (job(), 1u32..4, any::<bool>(), at.clone()).prop_map(|(job, attempt, wrapped, at)| {
            Event::JobAdopted { key: None,
                job,
                attempt,
                spec: Some(spec(job.cluster.0 * 100)),
                at,
                wrapper: wrapped.then(|| format!("{:064x}", 0xc0de)),
            }
        }),
        1 => (1u64..6, at.clone()).prop_map(|(c, at)| Event::ClusterRemoved { cluster: ClusterId(c), at }),
        1 => at.prop_map(|at| Event::MasterStarted { name: "m".into(), at }),
    ]
}

/// One append (a group of events), then maybe a snapshot.
fn step() -> impl Strategy<Value = (Vec<Event>, bool)> {
    (
        prop::collection::vec(event(), 1..40),
        prop::bool::weighted(0.3),
    )
}

fn wait(f: impl FnOnce(pilotq_journal::Done)) -> u64 {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().expect("a completion").expect("journal write")
}

/// sled lets go of its lock a moment after the last handle drops.
fn reopen(dir: &Path) -> replay::Replayed {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match replay::open(dir) {
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other.expect("reopen the journal"),
        }
    }
}

fn check(steps: Vec<(Vec<Event>, bool)>, seal_at: u64, file_events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let r = replay::open(dir.path()).unwrap();
    let mut w = Writer::start_sealing(r.store, r.next_seq, 16, Retention::default());
    let mut live = Table::new();
    let mut all: Vec<Event> = Vec::new();
    let mut snapshots = Vec::new();
    for (events, snap) in steps {
        events.iter().for_each(|e| live.apply(e));
        all.extend(events.iter().cloned());
        assert_eq!(wait(|d| w.append(events, vec![], d)), all.len() as u64);
        if snap {
            snapshots.push(wait(|d| w.snapshot(snapshot::encode(&live), d)));
        }
    }
    w.sealer().expect("started sealing").idle();
    w.shutdown();
    let total = all.len() as u64;

    // The writer's sealer sealed through the older kept snapshot (all but
    // sled's newest segment).
    let r = reopen(dir.path());
    let sealed = r.store.sealed().unwrap();
    if let [.., older, _] | [older] = snapshots[..] {
        let through = sealed.last_seq().unwrap_or(0);
        assert!(
            through <= older,
            "sealed {through} past the older snapshot {older}"
        );
    }
    // An explicit seal of any prefix, in small files.
    let before = r.store.sealed().unwrap().last_seq().unwrap_or(0);
    let report = r
        .store
        .seal_through_in_files_of(seal_at.min(total), file_events * 40)
        .unwrap();
    let after = r.store.sealed().unwrap();
    assert_eq!(after.last_seq().unwrap_or(0), before + report.events);
    assert!(
        after.last_seq().unwrap_or(0) < total.max(1),
        "sled keeps its newest segment"
    );
    assert_eq!(r.store.last_seq().unwrap(), total);
    drop(r);

    let r = reopen(dir.path());
    assert_eq!(r.next_seq, total + 1);
    assert_eq!(r.snapshot_seq, snapshots.last().copied());
    assert_eq!(r.table, live);
    let (full, base, replayed) = replay::rebuild(&r.store, false).unwrap();
    assert_eq!((base, replayed), (None, total));
    assert_eq!(full, live);
    r.table.check_indexes().unwrap();

    assert_eq!(r.store.event_count() as u64, total);
    let read: Vec<Event> = r
        .store
        .events_from(1)
        .map(|item| item.expect("every event reads back").1.e)
        .collect();
    assert_eq!(read, all);
    // From anywhere, too.
    let from = total / 2 + 1;
    let tail: Vec<u64> = r.store.events_from(from).map(|i| i.unwrap().0).collect();
    assert_eq!(tail, (from..=total).collect::<Vec<_>>());
    // Raw segments cover the same events, each once, and decode.
    let mut next = 1;
    for seg in r.store.segments_from(1) {
        let (first, last, bytes) = seg.unwrap();
        assert_eq!(first, next);
        let envs = pilotq_journal::store::decode_segment(first, last, &bytes).unwrap();
        assert_eq!(envs.len() as u64, last - first + 1);
        next = last + 1;
    }
    assert_eq!(next, total + 1);

    // The blob list of the sealed files is exactly what their events name.
    let sealed = r.store.sealed().unwrap();
    let mut expected = BTreeSet::new();
    for e in &all[..sealed.last_seq().unwrap_or(0) as usize] {
        referenced_blobs(e, &mut expected);
    }
    assert_eq!(sealed.referenced_blobs().unwrap(), expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sealing_never_changes_the_journal(
        steps in prop::collection::vec(step(), 1..30),
        seal_at in 0u64..1200,
        file_events in 1usize..60,
    ) {
        check(steps, seal_at, file_events);
    }
}

/// The writer asks for a seal after each snapshot, and the sealer seals
/// through the older kept one: a replay from either reads only sled.
#[test]
fn the_writer_seals_through_the_older_kept_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay::open(dir.path()).unwrap();
    let store = r.store.clone();
    let mut w = Writer::start_sealing(r.store, r.next_seq, 16, Retention::default());
    let mut live = Table::new();
    let started = |n: u64| Event::MasterStarted {
        name: format!("m{n}"),
        at: n,
    };
    let mut snaps = Vec::new();
    for round in 0..4u64 {
        for i in 0..3 {
            let e = started(round * 10 + i);
            live.apply(&e);
            wait(|d| w.append(vec![e], vec![], d));
        }
        snaps.push(wait(|d| w.snapshot(snapshot::encode(&live), d)));
        w.sealer().unwrap().idle();
        let sealed = store.sealed().unwrap().last_seq();
        // Through the older kept snapshot (the only one, at first), but
        // never sled's newest segment: here the snapshot's own last event.
        let older = if snaps.len() >= 2 {
            snaps[snaps.len() - 2]
        } else {
            snaps[0]
        };
        let newest_segment = snaps.last().unwrap();
        assert_eq!(
            sealed,
            Some(older.min(newest_segment - 1)),
            "after snapshots {snaps:?}"
        );
    }
    w.shutdown();
    drop(store);
    let r = reopen(dir.path());
    assert_eq!(r.table, live);
    assert_eq!(r.replayed, 0);
}
