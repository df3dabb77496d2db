//! A damaged or missing sealed file is a clear error, never a panic and
//! never a silent hole: a flipped byte or a cut file names the file, and a
//! file missing between others names the events that are gone. And the
//! sealed files read without sled, while a master holds its lock.

use pilotq_journal::{replay, snapshot, Event, JournalError, SealedDir, Store, Table, Writer};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

fn wait(f: impl FnOnce(pilotq_journal::Done)) -> u64 {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().expect("a completion").expect("journal write")
}

/// A journal of 6 groups of 10 events, a snapshot at the end, and events
/// 1..=40 sealed one group per file. Returns the open store.
fn sealed_journal(dir: &Path) -> (Store, Vec<Event>) {
    let store = Store::open(dir).unwrap();
    let mut w = Writer::start(store.clone(), 1, 16);
    let mut live = Table::new();
    let mut all = Vec::new();
    for g in 0..6u64 {
        let events: Vec<Event> = (0..10)
            .map(|i| Event::MasterStarted {
                name: format!("master-{g}-{i}"),
                at: 1_700_000_000_000 + g * 10 + i,
            })
            .collect();
        events.iter().for_each(|e| live.apply(e));
        all.extend(events.iter().cloned());
        wait(|d| w.append(events, vec![], d));
    }
    wait(|d| w.snapshot(snapshot::encode(&live), d));
    w.shutdown();
    let report = store.seal_through_in_files_of(40, 1).unwrap();
    assert_eq!(report.files.len(), 4);
    (store, all)
}

fn file(store: &Store, i: usize) -> PathBuf {
    store.sealed().unwrap().segments()[i].path.clone()
}

fn read_all(store: &Store) -> Result<Vec<u64>, JournalError> {
    store
        .events_from(1)
        .map(|i| i.map(|(seq, _)| seq))
        .collect()
}

fn names_file(e: &JournalError, path: &Path) -> bool {
    matches!(e, JournalError::Sealed { file, .. } if file == &path.display().to_string())
        && e.to_string().contains(&path.display().to_string())
}

#[test]
fn a_flipped_byte_in_a_body_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = sealed_journal(tmp.path());
    let victim = file(&store, 1);
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();

    let e = read_all(&store).unwrap_err();
    assert!(names_file(&e, &victim), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");
    let e = replay::rebuild(&store, false).unwrap_err();
    assert!(names_file(&e, &victim), "{e}");
    // The events before it are still there, and those after it too.
    let head: Vec<u64> = store
        .events_from(1)
        .take(10)
        .map(|i| i.unwrap().0)
        .collect();
    assert_eq!(head, (1..=10).collect::<Vec<_>>());
    assert_eq!(store.events_from(21).next().unwrap().unwrap().0, 21);
    // The blob list sits in the header, which is whole.
    store.sealed().unwrap().referenced_blobs().unwrap();
}

#[test]
fn a_flipped_byte_in_a_header_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = sealed_journal(tmp.path());
    let victim = file(&store, 0);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[44] ^= 0x01; // in the first event's time
    std::fs::write(&victim, bytes).unwrap();
    let e = read_all(&store).unwrap_err();
    assert!(names_file(&e, &victim), "{e}");
    let e = store.sealed().unwrap().referenced_blobs().unwrap_err();
    assert!(names_file(&e, &victim), "{e}");
}

#[test]
fn a_cut_file_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = sealed_journal(tmp.path());
    let victim = file(&store, 2);
    let len = std::fs::metadata(&victim).unwrap().len();
    for cut in [len - 1, 81, 20, 0] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&victim)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let e = read_all(&store).unwrap_err();
        assert!(names_file(&e, &victim), "cut to {cut}: {e}");
    }
}

#[test]
fn a_missing_file_between_others_names_the_missing_events() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = sealed_journal(tmp.path());
    std::fs::remove_file(file(&store, 1)).unwrap();
    let e = read_all(&store).unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::Gap {
                first: 11,
                last: 20
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("11..=20"), "{e}");
    // A read that starts inside the hole says so too.
    let e = store.events_from(15).next().unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::Gap {
                first: 15,
                last: 20
            }
        ),
        "{e:?}"
    );
    let e = replay::rebuild(&store, false).unwrap_err();
    assert!(matches!(e, JournalError::Gap { .. }), "{e:?}");
    // From the snapshot, nothing sealed is needed.
    let (_, snap, replayed) = replay::rebuild(&store, true).unwrap();
    assert_eq!((snap, replayed), (Some(60), 0));

    // The newest sealed file missing: a hole between the sealed files and
    // sled.
    // (Files left: 1..=10, 21..=30, 31..=40.)
    std::fs::remove_file(file(&store, 2)).unwrap();
    let mut read = store.events_from(25);
    let seqs: Vec<u64> = read.by_ref().take(6).map(|i| i.unwrap().0).collect();
    assert_eq!(seqs, (25..=30).collect::<Vec<_>>());
    let e = read.next().unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::Gap {
                first: 31,
                last: 40
            }
        ),
        "{e:?}"
    );
    assert!(read.next().is_none(), "reading stops at an error");
}

#[test]
fn sealed_files_read_while_a_master_holds_the_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, all) = sealed_journal(tmp.path());
    // `store` holds sled's lock, as a running master would.
    assert!(matches!(
        Store::open(tmp.path()),
        Err(JournalError::Locked { .. })
    ));
    let sealed = SealedDir::open(tmp.path()).unwrap();
    assert_eq!((sealed.first_seq(), sealed.last_seq()), (Some(1), Some(40)));
    assert_eq!(sealed.event_count(), 40);
    let read: Vec<Event> = sealed.events_from(1).map(|i| i.unwrap().1.e).collect();
    assert_eq!(read, all[..40]);
    let tail: Vec<u64> = sealed.events_from(33).map(|i| i.unwrap().0).collect();
    assert_eq!(tail, (33..=40).collect::<Vec<_>>());
    let first = &sealed.segments()[0];
    assert!(
        first
            .name
            .starts_with("events-00000000000000000001-00000000000000000010-")
            && first.name.ends_with("Z.seg"),
        "{}",
        first.name
    );
    assert!(sealed.segments().iter().all(|s| s.bytes > 80));
    drop(store);
}
