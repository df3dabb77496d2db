//! Replay: the latest readable snapshot, then every event after it, folded
//! into a [`Table`]. Also used, from sequence 1, by `journal dump` and by the
//! property test that holds replay equal to the live table.

use crate::error::JournalError;
use crate::snapshot;
use crate::store::{decode_envelope, Store};
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
    let store = Store::open(path)?;
    let (table, snapshot_seq, replayed) = rebuild(&store, true)?;
    let next_seq = store.last_seq()? + 1;
    Ok(Replayed {
        store,
        table,
        next_seq,
        snapshot_seq,
        replayed,
    })
}

/// Rebuilds the table from `store`: from its latest snapshot when
/// `use_snapshot`, else from the first event.
pub fn rebuild(
    store: &Store,
    use_snapshot: bool,
) -> Result<(Table, Option<u64>, u64), JournalError> {
    let mut table = Table::new();
    let mut from = 1;
    let mut snapshot_seq = None;
    if use_snapshot {
        if let Some((seq, bytes)) = store.latest_snapshot()? {
            match snapshot::decode(&bytes) {
                Some(t) => {
                    table = t;
                    from = seq + 1;
                    snapshot_seq = Some(seq);
                }
                None => tracing::warn!(
                    seq,
                    "snapshot unreadable (older format?); replaying every event"
                ),
            }
        }
    }
    let mut replayed = 0;
    for item in store.raw_events_from(from) {
        let (seq, bytes) = item?;
        let env = decode_envelope(seq, &bytes)?;
        table.apply(&env.e);
        replayed += 1;
    }
    Ok((table, snapshot_seq, replayed))
}
