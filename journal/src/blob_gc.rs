//! Which blobs may go: executables, job wrappers and kept outputs live in
//! the `blobs` tree until nothing kept needs them. Needed are the blobs
//! that the live table names (the caller's part: it owns the table) and
//! those that the kept events name, in sealed files (listed in their
//! headers) or still in the live database. So a blob goes only once its
//! jobs have all left the queue *and* retention has deleted the events that
//! mention it.
//!
//! The race with new submissions is the writer's to close: a collection
//! begins with `Writer::blob_gc_start`, and the writer never deletes a blob
//! appended after that, whatever `keep` says (see `writer.rs`).

use crate::error::JournalError;
use crate::sealed;
use crate::store::Store;
use std::collections::BTreeSet;

/// The blobs that the journal's kept events name.
pub fn referenced_by_journal(store: &Store) -> Result<BTreeSet<String>, JournalError> {
    let dir = store.sealed()?;
    let mut refs = dir.referenced_blobs()?;
    // Events past the files listed: in the database, or sealed since (the
    // store's reader goes on seamlessly into new files).
    let from = dir.last_seq().map_or(1, |s| s + 1);
    for item in store.events_from(from) {
        let (_, env) = item?;
        sealed::referenced_blobs(&env.e, &mut refs);
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::writer::Writer;
    use pilotq_wire::{ClusterId, JobSpec};
    use std::sync::mpsc;

    fn spec(exe: &str) -> Box<JobSpec> {
        let mut s = crate::table::tests::leaving_spec(0, 1);
        s.executable = exe.into();
        s
    }

    fn wait<T: Send + 'static>(
        f: impl FnOnce(Box<dyn FnOnce(Result<T, JournalError>) + Send>),
    ) -> Result<T, JournalError> {
        let (tx, rx) = mpsc::channel();
        f(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx.recv().unwrap()
    }

    #[test]
    fn a_blob_goes_only_when_neither_table_nor_events_nor_a_new_append_need_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let w = Writer::start(store.clone(), 1, 64);
        let submitted = |cluster: u64, exe: &str| Event::ClusterSubmitted {
            cluster: ClusterId(cluster),
            count: 1,
            spec: spec(exe),
            at: 1,
        };
        // "a" is named by an event, "b" by nothing (its events are gone,
        // as retention deletes them), "live" only by the caller's table.
        wait(|d| {
            w.append(
                vec![submitted(1, "a")],
                vec![
                    ("a".into(), b"A".to_vec()),
                    ("b".into(), b"B".to_vec()),
                    ("live".into(), b"L".to_vec()),
                ],
                Box::new(move |r| d(r.map(|_| ()))),
            )
        })
        .unwrap();
        w.blob_gc_start();
        let mut keep = referenced_by_journal(&store).unwrap();
        assert_eq!(keep, BTreeSet::from(["a".to_string()]));
        keep.insert("live".into());
        // A submission between the start and the collection: its blob is
        // not in `keep`, and must stay.
        wait(|d| {
            w.append(
                vec![submitted(2, "new")],
                vec![("new".into(), b"N".to_vec())],
                Box::new(move |r| d(r.map(|_| ()))),
            )
        })
        .unwrap();
        let gone = wait(|d| w.collect_blobs(keep, d)).unwrap();
        assert_eq!(gone, 1);
        assert!(store.has_blob("a").unwrap());
        assert!(!store.has_blob("b").unwrap());
        assert!(store.has_blob("live").unwrap());
        assert!(store.has_blob("new").unwrap());
        // The next collection, with nothing new, drops what nothing names.
        w.blob_gc_start();
        let keep = BTreeSet::from(["new".to_string()]);
        assert_eq!(wait(|d| w.collect_blobs(keep, d)).unwrap(), 2);
        assert!(store.has_blob("new").unwrap() && !store.has_blob("a").unwrap());
    }
}
