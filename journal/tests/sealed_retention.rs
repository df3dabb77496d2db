//! Retention: the oldest sealed files go first, by the age of their last
//! event or by the total size, and never a file holding events after the
//! oldest kept snapshot. A journal whose head was retired still replays: a
//! "full" replay starts from the oldest snapshot that covers the retired
//! events; with none, it is refused by name rather than rebuilt wrong.
//!
//! The journals here are written straight into sled with chosen envelope
//! times (days apart), as a master that ran for weeks would have left them.

use pilotq_journal::store::{encode_segment, key_of};
use pilotq_journal::{
    now_ms, replay, snapshot, Event, JournalError, Retention, Sealer, Store, Table,
};
use std::path::Path;
use std::time::{Duration, Instant};

const DAY: u64 = 24 * 3600 * 1000;

fn open(dir: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(dir) {
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other.expect("open the journal"),
        }
    }
}

/// The journal's sled database itself, once the last store let go of it.
fn raw_sled(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).open() {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => return other.expect("open the sled database"),
        }
    }
}

/// A journal of one 10-event segment per entry of `ages` (days before now),
/// with snapshots covering the events through each of `snapshots`; every
/// segment but the newest sealed, one file each. Returns the store and the
/// table of all the events.
fn journal(dir: &Path, ages: &[u64], snapshots: &[u64]) -> (Store, Table) {
    let now = now_ms();
    let mut live = Table::new();
    {
        let db = raw_sled(dir);
        let (events, snaps) = (
            db.open_tree("events").unwrap(),
            db.open_tree("snapshots").unwrap(),
        );
        let mut seq = 1;
        for age in ages {
            let group: Vec<Event> = (0..10)
                .map(|i| Event::MasterStarted {
                    name: format!("m{seq}+{i}"),
                    at: seq + i,
                })
                .collect();
            for e in &group {
                live.apply(e);
                if snapshots.contains(&seq) {
                    snaps
                        .insert(seq.to_be_bytes(), snapshot::encode(&live))
                        .unwrap();
                }
                seq += 1;
            }
            events
                .insert(
                    key_of(seq - 10, seq - 1),
                    encode_segment(now - age * DAY, group.iter()),
                )
                .unwrap();
        }
        db.flush().unwrap();
    }
    let store = open(dir);
    let all = 10 * ages.len() as u64;
    let report = store.seal_through_in_files_of(all, 1).unwrap();
    assert_eq!(report.files.len(), ages.len() - 1);
    (store, live)
}

fn firsts(store: &Store) -> Vec<u64> {
    store
        .sealed()
        .unwrap()
        .segments()
        .iter()
        .map(|s| s.first)
        .collect()
}

fn keep_age(days: u64) -> Retention {
    Retention {
        keep_age: Some(Duration::from_millis(days * DAY)),
        keep_bytes: None,
    }
}

#[test]
fn files_older_than_the_age_kept_go_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, live) = journal(tmp.path(), &[40, 35, 20, 1, 0], &[40, 50]);
    let gone = store.retire_sealed(&keep_age(30)).unwrap();
    assert_eq!(gone.iter().map(|f| f.first).collect::<Vec<_>>(), [1, 11]);
    assert!(gone.iter().all(|f| !f.path.exists()));
    assert_eq!(firsts(&store), [21, 31]);
    // Nothing more to do at the same age.
    assert!(store.retire_sealed(&keep_age(30)).unwrap().is_empty());

    // The journal now starts at 21: readers start there without a fuss.
    assert_eq!(store.first_seq().unwrap(), 21);
    assert_eq!(store.event_count(), 30);
    let seqs: Vec<u64> = store.events_from(1).map(|i| i.unwrap().0).collect();
    assert_eq!(seqs, (21..=50).collect::<Vec<_>>());
    // A full replay starts from the oldest snapshot that covers 1..=20.
    let (full, base, replayed) = replay::rebuild(&store, false).unwrap();
    assert_eq!((base, replayed), (Some(40), 10));
    assert_eq!(full, live);
    let (fast, base, _) = replay::rebuild(&store, true).unwrap();
    assert_eq!((fast, base), (live.clone(), Some(50)));
    drop(store);
    let r = replay::open(tmp.path()).unwrap();
    assert_eq!((r.table, r.next_seq), (live, 51));
}

#[test]
fn no_file_past_the_oldest_kept_snapshot_ever_goes() {
    let tmp = tempfile::tempdir().unwrap();
    // Every file is older than a zero age, but the oldest snapshot covers
    // only 1..=15: the file of 11..=20 holds events a replay from it needs.
    let (store, live) = journal(tmp.path(), &[9, 8, 7, 6, 5], &[15, 50]);
    let everything = Retention {
        keep_age: Some(Duration::ZERO),
        keep_bytes: Some(0),
    };
    let gone = store.retire_sealed(&everything).unwrap();
    assert_eq!(
        gone.iter().map(|f| (f.first, f.last)).collect::<Vec<_>>(),
        [(1, 10)]
    );
    assert_eq!(firsts(&store), [11, 21, 31]);
    let (full, base, replayed) = replay::rebuild(&store, false).unwrap();
    assert_eq!((full, base, replayed), (live, Some(15), 35));
}

#[test]
fn without_a_snapshot_nothing_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = journal(tmp.path(), &[60, 50, 40], &[]);
    assert!(store.retire_sealed(&keep_age(1)).unwrap().is_empty());
    assert_eq!(firsts(&store), [1, 11]);
}

#[test]
fn files_go_oldest_first_until_the_rest_fit_the_size_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = journal(tmp.path(), &[5, 4, 3, 2, 1, 0], &[60]);
    let sizes: Vec<u64> = store
        .sealed()
        .unwrap()
        .segments()
        .iter()
        .map(|s| s.bytes)
        .collect();
    let newest_two: u64 = sizes[3..].iter().sum();
    let keep = Retention {
        keep_age: None,
        keep_bytes: Some(newest_two),
    };
    let gone = store.retire_sealed(&keep).unwrap();
    assert_eq!(
        gone.iter().map(|f| f.first).collect::<Vec<_>>(),
        [1, 11, 21]
    );
    assert_eq!(firsts(&store), [31, 41]);
    assert!(store.sealed().unwrap().total_bytes() <= newest_two);
}

#[test]
fn the_sealer_applies_retention_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = journal(tmp.path(), &[45, 31, 29, 0], &[40]);
    let mut sealer = Sealer::start(store.clone(), Retention::default());
    sealer.idle();
    sealer.shutdown();
    assert_eq!(firsts(&store), [21]);
}

#[test]
fn a_retired_head_without_a_snapshot_over_it_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = journal(tmp.path(), &[40, 35, 0], &[20]);
    assert_eq!(store.retire_sealed(&keep_age(30)).unwrap().len(), 2);
    drop(store);
    // The snapshot lost (a crash took it, or a newer pilotq wrote another
    // version): nothing can stand in for events 1..=20.
    {
        let db = raw_sled(tmp.path());
        db.open_tree("snapshots").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let store = open(tmp.path());
    assert_eq!(store.first_seq().unwrap(), 21);
    let e = replay::rebuild(&store, false).unwrap_err();
    assert!(matches!(e, JournalError::NoBase { first: 21 }), "{e:?}");
    let e = replay::rebuild(&store, true).unwrap_err();
    assert!(e.to_string().contains("starts at event 21"), "{e}");
}
