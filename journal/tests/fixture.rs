//! Old journals stay readable (ARCHITECTURE.md): a journal written in each released
//! format is checked in under `tests/fixtures/format-v<N>/`, and this test
//! holds today's code to reading it and rebuilding exactly the table it held.
//!
//! The fixture of a released format is never regenerated, edited or deleted:
//! it stands for the journals out there. When `FORMAT_VERSION` is bumped, add
//! a generator for the new format beside `generate_format_v1_fixture` (a new
//! function writing `format-v<N+1>`), run it once with
//!
//! ```text
//! cargo test -p pilotq-journal --test fixture -- --ignored generate_format_v<N+1>_fixture
//! ```
//!
//! commit the files it wrote, and add a test like `format_v1_journal_still_reads`
//! for it. The generator refuses to overwrite an existing fixture.

use pilotq_journal::{replay, snapshot, Event, Store, Table, Writer, FORMAT_VERSION};
use pilotq_wire::{ClusterId, JobId, JobSpec, JobStatus, Outcome, Resources, Selector};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

const FORMAT_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1");
/// Format 2: the same script, stored in segments (one per group commit).
const FORMAT_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v2");

/// Unix ms of the fixture's first event; every `at` counts from it.
const T0: u64 = 1_700_000_000_000;
const PILOT: &[u8] = b"#!/bin/sh\nexec ./pilot --queue alice\n";
/// The sequence number the fixture's snapshot covers.
const SNAPSHOT_AT: u64 = 17;
const EVENTS: u64 = 27;

fn pilot_hash() -> String {
    hex::encode(Sha256::digest(PILOT))
}

fn spec(priority: i32, cores: u32, cmd: &str) -> Box<JobSpec> {
    Box::new(JobSpec {
        executable: pilot_hash(),
        cmd: cmd.into(),
        arguments: vec!["--queue".into(), "alice".into()],
        environment: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
        output: Some("/home/alice/out/$(Cluster).$(Process).out".into()),
        error: Some("/home/alice/out/$(Cluster).$(Process).err".into()),
        log: Some("/home/alice/out/pilot.log".into()),
        request: Resources::new(cores, 2000 * u64::from(cores), 1000),
        priority,
        attributes: BTreeMap::from([("GridResource".into(), "\"batch pilotq\"".into())]),
        owner: "alice".into(),
        iwd: "/home/alice".into(),
        tags: vec![],
        leave_in_queue: false,
    })
}

fn job(cluster: u64, proc: u32) -> JobId {
    JobId::new(cluster, proc)
}

fn dispatched(j: JobId, attempt: u32, holder: &str, at: u64) -> Event {
    Event::JobDispatched {
        job: j,
        attempt,
        holder: holder.into(),
        at: T0 + at,
    }
}

fn started(j: JobId, attempt: u32, at: u64) -> Event {
    Event::JobStarted {
        job: j,
        attempt,
        at: T0 + at,
    }
}

fn completed(j: JobId, attempt: u32, outcome: Outcome, at: u64) -> Event {
    Event::JobCompleted {
        job: j,
        attempt,
        outcome,
        at: T0 + at,
    }
}

/// The fixture's appends, in order, each as the master would group them;
/// `None` is where the snapshot is taken.
fn script() -> Vec<Option<Vec<Event>>> {
    let exit = |code| Outcome::Exited { code };
    vec![
        Some(vec![Event::MasterStarted {
            name: "fixture-master".into(),
            at: T0,
        }]),
        Some(vec![Event::ClusterSubmitted {
            cluster: ClusterId(1),
            count: 5,
            spec: spec(0, 1, "pilot.sh"),
            at: T0 + 1_000,
        }]),
        Some(vec![Event::ClusterSubmitted {
            cluster: ClusterId(2),
            count: 3,
            spec: spec(5, 2, "pilot.sh"),
            at: T0 + 2_000,
        }]),
        Some(vec![Event::ClusterSubmitted {
            cluster: ClusterId(3),
            count: 1_000,
            spec: spec(-1, 1, "stress.sh"),
            at: T0 + 3_000,
        }]),
        Some(vec![
            dispatched(job(2, 0), 1, "worker-a", 4_000),
            dispatched(job(2, 1), 1, "worker-a", 4_000),
        ]),
        Some(vec![
            dispatched(job(1, 0), 1, "worker-b", 4_100),
            dispatched(job(1, 1), 1, "worker-b", 4_100),
            dispatched(job(1, 2), 1, "worker-b", 4_100),
        ]),
        Some(vec![started(job(2, 0), 1, 5_000)]),
        Some(vec![started(job(2, 1), 1, 5_001)]),
        Some(vec![started(job(1, 0), 1, 5_002)]),
        Some(vec![started(job(1, 1), 1, 5_003)]),
        Some(vec![completed(job(2, 0), 1, exit(0), 60_000)]),
        Some(vec![completed(job(1, 0), 1, exit(3), 61_000)]),
        Some(vec![completed(
            job(2, 1),
            1,
            Outcome::Signalled { signal: 9 },
            62_000,
        )]),
        Some(vec![Event::MasterStarted {
            name: "fixture-master".into(),
            at: T0 + 70_000,
        }]),
        None,
        Some(vec![Event::JobRequeued {
            job: job(1, 1),
            attempt: 1,
            reason: "worker-b lost".into(),
            at: T0 + 130_000,
        }]),
        Some(vec![dispatched(job(1, 1), 2, "worker-a", 131_000)]),
        Some(vec![started(job(1, 1), 2, 131_500)]),
        Some(vec![Event::JobHeld {
            job: job(1, 2),
            reason: "failed to start: exec format error".into(),
            at: T0 + 132_000,
            kept: None,
        }]),
        Some(vec![Event::JobRemoved {
            job: job(1, 4),
            at: T0 + 133_000,
        }]),
        Some(vec![Event::ClusterRemoved {
            cluster: ClusterId(3),
            at: T0 + 134_000,
        }]),
        Some(vec![
            dispatched(job(2, 2), 1, "worker-c", 135_000),
            started(job(2, 2), 1, 135_500),
        ]),
        // A late report of the lost attempt: refused (the table ignores it).
        Some(vec![completed(job(1, 1), 1, exit(1), 136_000)]),
        Some(vec![completed(job(1, 1), 2, exit(0), 190_000)]),
    ]
}

fn durably(f: impl FnOnce(pilotq_journal::Done)) -> u64 {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().expect("completion").expect("durable")
}

#[test]
#[ignore = "wrote the committed format-v1 fixture (with format-1 code); never rerun"]
fn generate_format_v1_fixture() {
    generate(FORMAT_V1, 1);
}

#[test]
#[ignore = "writes the committed format-v2 fixture; never rerun once committed"]
fn generate_format_v2_fixture() {
    generate(FORMAT_V2, 2);
}

fn generate(path: &str, version: u32) {
    let dir = Path::new(path);
    assert!(
        !dir.exists(),
        "{path} exists: a released format's fixture is never regenerated"
    );
    assert_eq!(
        FORMAT_VERSION, version,
        "this code writes format {FORMAT_VERSION} only"
    );
    let store = Store::open(dir).expect("create the fixture journal");
    let mut writer = Writer::start(store, 1, 16);
    let mut table = Table::new();
    let mut blobs = vec![(pilot_hash(), PILOT.to_vec())];
    for step in script() {
        match step {
            Some(events) => {
                durably(|done| writer.append(events.clone(), std::mem::take(&mut blobs), done));
                events.iter().for_each(|e| table.apply(e));
            }
            None => {
                let seq = durably(|done| writer.snapshot(snapshot::encode(&table), done));
                assert_eq!(seq, SNAPSHOT_AT);
            }
        }
    }
    let last = durably(|done| writer.barrier(done));
    assert_eq!(last, EVENTS);
    writer.shutdown();
}

/// Copies the fixture: sled takes a lock and writes on open, and the
/// committed files must never change.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

#[test]
fn format_v1_journal_still_reads() {
    check_fixture(FORMAT_V1, 1);
}

#[test]
fn format_v2_journal_still_reads() {
    check_fixture(FORMAT_V2, 2);
}

fn check_fixture(path: &str, version: u32) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("journal");
    copy_dir(Path::new(path), &dir);
    let r = replay::open(&dir).expect("a format-1 journal opens");

    // Every event is there and decodes, written in format 1.
    assert_eq!(r.next_seq, EVENTS + 1);
    assert_eq!(r.store.event_count() as u64, EVENTS);
    let mut seq = 0;
    for item in r.store.events_from(1) {
        let (s, env) = item.expect("a format-1 event decodes");
        seq += 1;
        assert_eq!(s, seq);
        assert_eq!(env.v, version);
        assert!(env.t >= T0, "event {s} stored at {}", env.t);
    }
    assert_eq!(seq, EVENTS);
    let first = r
        .store
        .events_from(1)
        .next()
        .expect("event 1")
        .expect("decodes");
    assert_eq!(
        first.1.e,
        Event::MasterStarted {
            name: "fixture-master".into(),
            at: T0
        }
    );

    // The snapshot is a cache: whether today's code can use it or not, the
    // table is the one every event folds to.
    let (snap_seq, _) = r
        .store
        .latest_snapshot()
        .expect("read snapshots")
        .expect("the fixture has a snapshot");
    assert_eq!(snap_seq, SNAPSHOT_AT);
    // It was written as snapshot version 1: while that is still the version,
    // it must decode (else `Table` changed shape without a version bump).
    if snapshot::SNAPSHOT_VERSION == 1 {
        assert_eq!(r.snapshot_seq, Some(SNAPSHOT_AT));
        assert_eq!(r.replayed, EVENTS - SNAPSHOT_AT);
    } else {
        assert_eq!(r.snapshot_seq, None);
    }
    let (full, _, replayed) = replay::rebuild(&r.store, false).expect("full replay");
    assert_eq!(replayed, EVENTS);
    assert_eq!(r.table, full);
    let t = &r.table;
    t.check_indexes().expect("indexes");

    // Finished jobs have left the queue (none of the fixture's clusters
    // says `leave_in_queue`), cluster 3 with its 1,000 removed jobs whole.
    let c = t.counts();
    assert_eq!(
        (c.idle, c.running, c.removed, c.completed, c.held),
        (1, 1, 0, 0, 1)
    );
    assert_eq!((t.left().completed, t.left().removed), (4, 1001));
    assert_eq!(t.restarts(), 2);
    assert_eq!(t.last_cluster(), ClusterId(3));
    assert_eq!(t.selected_clusters(&[]), [ClusterId(1), ClusterId(2)]);
    for id in [job(1, 0), job(1, 1), job(1, 4), job(2, 1), job(3, 0)] {
        assert!(t.view(id).is_none() && t.has_left(id), "{id} left");
    }

    // What left is what the history store gets: a replay that keeps the
    // departures gives each finished job's record.
    let mut keeping = Table::new();
    keeping.keep_departures();
    let mut history: BTreeMap<JobId, pilotq_wire::JobView> = BTreeMap::new();
    for item in r.store.events_from(1) {
        let (seq, env) = item.expect("decodes");
        keeping.apply(&env.e);
        for d in keeping.take_departures() {
            for rec in d.records(seq) {
                assert!(history.insert(rec.id, rec).is_none(), "one record per job");
            }
        }
    }
    assert_eq!(keeping, *t);
    assert_eq!(history.len(), 4 + 1001);
    let in_queue_or_history = |c, p| {
        t.view(job(c, p))
            .or_else(|| history.get(&job(c, p)).cloned())
            .expect("job exists")
    };
    let view = in_queue_or_history;
    let v = view(1, 0);
    assert_eq!(
        (v.status, v.exit_code, v.attempts),
        (JobStatus::Completed, Some(3), 1)
    );
    assert_eq!(v.entered_status_at, T0 + 61_000);
    assert_eq!(v.submitted_at, T0 + 1_000);
    assert_eq!(v.owner, "alice");
    assert_eq!(v.cmd, "pilot.sh");
    assert_eq!(v.arguments, ["--queue", "alice"]);
    assert_eq!(v.request, Resources::new(1, 2000, 1000));
    assert_eq!(v.attributes["GridResource"], "\"batch pilotq\"");

    // Requeued after its holder was lost; the late report of attempt 1 was
    // refused, attempt 2's result stands.
    let v = view(1, 1);
    assert_eq!(
        (v.status, v.exit_code, v.attempts),
        (JobStatus::Completed, Some(0), 2)
    );
    assert_eq!(v.entered_status_at, T0 + 190_000);

    let v = view(1, 2);
    assert_eq!(v.status, JobStatus::Held);
    assert_eq!(
        v.hold_reason.as_deref(),
        Some("failed to start: exec format error")
    );
    assert_eq!(v.attempts, 1);
    assert_eq!(v.holder, None);

    let v = view(1, 3);
    assert_eq!((v.status, v.attempts, v.holder), (JobStatus::Idle, 0, None));
    assert_eq!(view(1, 4).status, JobStatus::Removed);

    let v = view(2, 1);
    assert_eq!(
        (v.status, v.exit_code, v.signal),
        (JobStatus::Completed, None, Some(9))
    );
    assert_eq!((v.priority, v.request.cores), (5, 2));

    let v = view(2, 2);
    assert_eq!(v.status, JobStatus::Running);
    assert_eq!(v.holder.as_deref(), Some("worker-c"));
    assert_eq!(v.started_at, Some(T0 + 135_500));
    assert_eq!(t.jobs_on("worker-c").collect::<Vec<_>>(), [job(2, 2)]);
    assert_eq!(t.holders().count(), 1);

    assert!(t.select(&[Selector::Cluster(ClusterId(3))]).is_empty());
    for id in [job(3, 0), job(3, 999)] {
        let v = history[&id].clone();
        assert_eq!(
            (v.status, v.entered_status_at),
            (JobStatus::Removed, T0 + 134_000)
        );
        assert_eq!(v.cmd, "stress.sh");
    }

    // Only 1.3 is left to run.
    assert_eq!(
        t.pick_idle(Resources::new(64, 1 << 30, 1 << 30), 100),
        [job(1, 3)]
    );

    // The executable captured at submit time.
    assert_eq!(
        r.store.blob(&pilot_hash()).expect("read blob").as_deref(),
        Some(PILOT)
    );
}
