//! Replay: the latest readable snapshot, then every event after it, folded
//! into a [`Table`]. Also used, from sequence 1, by `journal dump` and by the
//! property test that holds replay equal to the live table.

use crate::error::JournalError;
use crate::snapshot;
use crate::store::Store;
use crate::table::Table;
use std::path::Path;

/// A journal opened for a master: the store, the table it holds, and where
/// appending continues.
pub struct Replayed {
    pub store: Store,
    pub table: Table,
    /// The first free sequence number.
    pub next_seq: u64,
    /// Sequence covered by the snapshot used, if any.
    pub snapshot_seq: Option<u64>,
    /// Events folded after the snapshot.
    pub replayed: u64,
}

/// Opens the journal at `path` and rebuilds its table.
pub fn open(path: &Path) -> Result<Replayed, JournalError> {
    let t0 = std::time::Instant::now();
    let store = Store::open(path)?;
    let open_ms = t0.elapsed().as_millis() as u64;
    let stale = store.drop_snapshots_past_events()?;
    if stale > 0 {
        tracing::warn!(
            stale,
            "dropped snapshots covering events that are not in the journal (lost in a crash)"
        );
    }
    let t1 = std::time::Instant::now();
    let (table, snapshot_seq, replayed) = rebuild(&store, true)?;
    let next_seq = store.last_seq()? + 1;
    tracing::info!(
        open_ms,
        rebuild_ms = t1.elapsed().as_millis() as u64,
        ?snapshot_seq,
        replayed,
        "journal opened"
    );
    Ok(Replayed {
        store,
        table,
        next_seq,
        snapshot_seq,
        replayed,
    })
}

/// Rebuilds the table from `store`: from its latest readable snapshot when
/// `use_snapshot`, else from the first event (a full replay). Returns the
/// table, the snapshot it started from, and the events folded.
///
/// Once retention has deleted the oldest sealed files, the journal starts
/// past event 1 ([`Store::first_seq`]): a full replay then starts from the
/// oldest readable snapshot that covers every event before that start, and
/// says so by returning it. Without one the table cannot be rebuilt
/// ([`JournalError::NoBase`]).
///
/// An unreadable snapshot (another version) is passed over for the next
/// older one (the writer keeps two for this), and then for the events.
pub fn rebuild(
    store: &Store,
    use_snapshot: bool,
) -> Result<(Table, Option<u64>, u64), JournalError> {
    let first = store.first_seq()?;
    // A snapshot is only as good as the events under it: one past the
    // journal's last event would replay events that are not there and skip
    // the ones appended since under the same numbers. One before the
    // journal's start would need events that are gone.
    let snapshots: Vec<(u64, sled::IVec)> = store
        .snapshots_within_events()?
        .into_iter()
        .filter(|(seq, _)| seq + 1 >= first)
        .collect();
    let candidates: Vec<&(u64, sled::IVec)> = if use_snapshot {
        snapshots.iter().rev().collect()
    } else if first > 1 {
        snapshots.iter().collect()
    } else {
        Vec::new()
    };
    let mut table = Table::new();
    let mut from = 1;
    let mut snapshot_seq = None;
    for (seq, bytes) in candidates {
        let t0 = std::time::Instant::now();
        let decoded = snapshot::decode(bytes);
        tracing::debug!(
            seq,
            bytes = bytes.len(),
            ms = t0.elapsed().as_millis() as u64,
            "snapshot decoded"
        );
        match decoded {
            Some(t) => {
                table = t;
                from = seq + 1;
                snapshot_seq = Some(*seq);
                break;
            }
            None => tracing::warn!(
                seq,
                "snapshot unreadable (older format?); trying an older one, then the events"
            ),
        }
    }
    if snapshot_seq.is_none() && first > 1 {
        return Err(JournalError::NoBase { first });
    }
    let mut replayed = 0;
    for item in store.events_from(from) {
        let (_, env) = item?;
        table.apply(&env.e);
        replayed += 1;
    }
    Ok((table, snapshot_seq, replayed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Writer};
    use pilotq_wire::{ClusterId, JobSpec, Resources};
    use std::sync::mpsc;

    fn started(name: &str) -> Event {
        Event::MasterStarted {
            name: name.into(),
            at: 1,
        }
    }

    fn durably(f: impl FnOnce(crate::Done)) -> u64 {
        let (tx, rx) = mpsc::channel();
        f(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx.recv().unwrap().unwrap()
    }

    fn submitted(cluster: u64) -> Event {
        Event::ClusterSubmitted {
            cluster: ClusterId(cluster),
            count: 2,
            spec: Box::new(JobSpec {
                executable: "00".into(),
                cmd: "true".into(),
                arguments: vec![],
                environment: Default::default(),
                output: None,
                error: None,
                log: None,
                request: Resources::new(1, 1, 1),
                priority: 0,
                attributes: Default::default(),
                owner: "o".into(),
                iwd: "/".into(),
                tags: vec![],
                leave_in_queue: false,
            }),
            at: cluster,
        }
    }

    fn cluster_ids(t: &Table) -> Vec<u64> {
        t.clusters().map(|(id, _)| id.0).collect()
    }

    #[test]
    fn a_snapshot_past_the_last_event_is_never_used() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut w = Writer::start(store.clone(), 1, 4);
            let events = vec![submitted(1), submitted(2), submitted(3)];
            let mut t = Table::new();
            events.iter().for_each(|e| t.apply(e));
            assert_eq!(durably(|d| w.append(events, vec![], d)), 3);
            assert_eq!(durably(|d| w.snapshot(snapshot::encode(&t), d)), 3);
            w.shutdown();
            // What a crash that kept the snapshot but not the events under
            // it would leave.
            // (One group, so one segment of three events: rewrite it as
            // just its first.)
            let seg = store
                .events
                .remove(crate::store::key_of(1, 3))
                .unwrap()
                .unwrap();
            let mut envs = crate::store::decode_segment(1, 3, &seg).unwrap();
            envs.truncate(1);
            let one = rmp_serde::to_vec_named(&envs).unwrap();
            store
                .events
                .insert(crate::store::key_of(1, 1), one)
                .unwrap();
            store.db.flush().unwrap();
            // A reader (`journal verify`) does not use it either.
            let (t, snap, replayed) = rebuild(&store, true).unwrap();
            assert_eq!((cluster_ids(&t), snap, replayed), (vec![1], None, 1));
        }
        let r = open(dir.path()).unwrap();
        assert_eq!((r.next_seq, r.snapshot_seq, r.replayed), (2, None, 1));
        assert_eq!(cluster_ids(&r.table), [1]);
        // The master carries on: its new events take numbers 2 and 3, and
        // the next start must see them.
        let mut w = Writer::start(r.store.clone(), r.next_seq, 4);
        assert_eq!(
            durably(|d| w.append(vec![submitted(7), submitted(8)], vec![], d)),
            3
        );
        w.shutdown();
        drop(r);
        let r = open(dir.path()).unwrap();
        assert_eq!((r.next_seq, r.snapshot_seq, r.replayed), (4, None, 3));
        assert_eq!(cluster_ids(&r.table), [1, 7, 8]);
        let (full, _, _) = rebuild(&r.store, false).unwrap();
        assert_eq!(r.table, full);
    }

    #[test]
    fn a_snapshot_and_its_tail_give_the_full_replay() {
        let dir = tempfile::tempdir().unwrap();
        let r = open(dir.path()).unwrap();
        let mut w = Writer::start(r.store.clone(), r.next_seq, 4);
        let mut t = r.table.clone();
        // Sent without waiting, so the writer may take them as one group:
        // the snapshot still covers exactly the events sent before it.
        let (tx, rx) = mpsc::channel();
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let appended = tx.clone();
            w.append(
                vec![started(name)],
                vec![],
                Box::new(move |r| appended.send((i, r)).unwrap()),
            );
            t.apply(&started(name));
            if i == 1 {
                let snapped = tx.clone();
                w.snapshot(
                    snapshot::encode(&t),
                    Box::new(move |r| snapped.send((99, r)).unwrap()),
                );
            }
        }
        drop(tx);
        let mut got: Vec<(usize, u64)> = rx.iter().map(|(i, r)| (i, r.unwrap())).collect();
        got.sort();
        assert_eq!(got, [(0, 1), (1, 2), (2, 3), (3, 4), (99, 2)]);
        w.shutdown();
        drop(r);
        let r = open(dir.path()).unwrap();
        assert_eq!((r.snapshot_seq, r.replayed, r.next_seq), (Some(2), 2, 5));
        assert_eq!(r.table, t);
        assert_eq!(r.table.restarts(), 4);
    }
}
