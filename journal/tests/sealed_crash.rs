//! A crash in the middle of a seal loses nothing and doubles nothing.
//!
//! A seal renames a file into place, then removes its events from sled. A
//! crash between the two leaves the events in both: the state is made here
//! exactly (a journal copied before a seal, given the sealed files the seal
//! wrote), and readers must give each event once, and the next seal must
//! clean sled up. A crash while the file is written leaves only a temporary
//! file, which readers ignore and the sealer deletes.

use pilotq_journal::{
    replay, snapshot, Event, JournalError, Retention, Sealer, Store, Table, Writer,
};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn wait(f: impl FnOnce(pilotq_journal::Done)) -> u64 {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().expect("a completion").expect("journal write")
}

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

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A journal of `groups` appends of 10 events and a snapshot at the end.
fn journal(dir: &Path, groups: u64) -> (Vec<Event>, Table) {
    let store = Store::open(dir).unwrap();
    let mut w = Writer::start(store, 1, 16);
    let mut live = Table::new();
    let mut all = Vec::new();
    for g in 0..groups {
        let events: Vec<Event> = (0..10)
            .map(|i| Event::MasterStarted {
                name: format!("m{g}.{i}"),
                at: g * 10 + i,
            })
            .collect();
        events.iter().for_each(|e| live.apply(e));
        all.extend(events.iter().cloned());
        wait(|d| w.append(events, vec![], d));
    }
    wait(|d| w.snapshot(snapshot::encode(&live), d));
    w.shutdown();
    (all, live)
}

fn events(store: &Store) -> Vec<Event> {
    store
        .events_from(1)
        .map(|i| i.expect("each event reads").1.e)
        .collect()
}

#[test]
fn a_crash_between_rename_and_removal_reads_each_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (sealed_dir, crashed_dir) = (tmp.path().join("sealed"), tmp.path().join("crashed"));
    let (all, live) = journal(&sealed_dir, 8);
    copy_dir(&sealed_dir, &crashed_dir);
    {
        let store = open(&sealed_dir);
        let report = store.seal_through_in_files_of(50, 200).unwrap();
        assert_eq!(report.events, 50);
        assert!(report.files.len() > 1, "{report:?}");
    }
    // The crashed copy: every sealed file in place, sled never told.
    copy_dir(&sealed_dir.join("sealed"), &crashed_dir.join("sealed"));

    let store = open(&crashed_dir);
    assert_eq!(store.event_count(), all.len());
    assert_eq!(events(&store), all);
    assert_eq!(store.last_seq().unwrap(), all.len() as u64);
    let (full, _, replayed) = replay::rebuild(&store, false).unwrap();
    assert_eq!((full, replayed), (live.clone(), all.len() as u64));
    let mut n = 0;
    for seg in store.segments_from(1) {
        let (first, last, _) = seg.unwrap();
        assert_eq!(first, n + 1, "segments follow one another, each once");
        n = last;
    }
    assert_eq!(n, all.len() as u64);

    // The next seal removes sled's copies (and seals nothing new here).
    let report = store.seal_through(50).unwrap();
    assert_eq!((report.leftovers, report.events), (5, 0));
    assert_eq!(events(&store), all);
    assert_eq!(store.event_count(), all.len());
    drop(store);
    let r = replay::open(&crashed_dir).unwrap();
    assert_eq!(r.table, live);
}

#[test]
fn a_crash_while_writing_leaves_a_temporary_file_that_nothing_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (all, _) = journal(tmp.path(), 4);
    let sealed = tmp.path().join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    // What a crash mid-write leaves: a temporary name, half its bytes.
    let name = ".tmp-events-00000000000000000001-00000000000000000010-19700101T000000Z-19700101T000000Z.seg.4242";
    std::fs::write(sealed.join(name), b"PQSEALED half").unwrap();

    let store = open(tmp.path());
    assert!(store.sealed().unwrap().segments().is_empty());
    assert_eq!(events(&store), all);
    // The sealer (the journal's holder) deletes it at start, then seals
    // through the snapshot.
    let mut sealer = Sealer::start(store.clone(), Retention::default());
    sealer.idle();
    sealer.shutdown();
    assert!(!sealed.join(name).exists());
    assert_eq!(store.sealed().unwrap().last_seq(), Some(30));
    assert_eq!(events(&store), all);
}
