//! Snapshots: the encoded table at a sequence number, so that a restart
//! replays only the tail. A snapshot is a cache, never the truth: it uses the
//! compact (array) msgpack encoding for speed, carries its own version, and
//! one that cannot be read is ignored in favour of a full replay of the
//! events, which stay the record.

use crate::table::Table;
use serde::{Deserialize, Serialize};

/// Bump whenever `Table`'s serialised shape changes.
pub const SNAPSHOT_VERSION: u32 = 3;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    v: u32,
    table: &'a Table,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    v: u32,
    table: Table,
}

pub fn encode(table: &Table) -> Vec<u8> {
    rmp_serde::to_vec(&SnapshotRef {
        v: SNAPSHOT_VERSION,
        table,
    })
    .expect("the table always encodes")
}

/// The table in a snapshot, or `None` if it is of another version or does not
/// decode (the caller then replays from the first event).
pub fn decode(bytes: &[u8]) -> Option<Table> {
    let s: SnapshotOwned = rmp_serde::from_slice(bytes).ok()?;
    if s.v != SNAPSHOT_VERSION {
        return None;
    }
    let mut table = s.table;
    table.reindex();
    Some(table)
}
