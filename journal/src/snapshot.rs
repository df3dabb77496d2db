//! Snapshots: the encoded table at a sequence number, so that a restart
//! replays only the tail. A snapshot is a cache, never the truth: it uses the
//! compact (array) msgpack encoding for speed, carries its own version, and
//! one that cannot be read is ignored in favour of a full replay of the
//! events, which stay the record.

use crate::table::Table;
use serde::{Deserialize, Serialize};

/// Bump whenever `Table`'s serialised shape changes.
///
/// Once retention has deleted a journal's oldest sealed files, a snapshot is
/// the only way to rebuild its table: a pilotq that cannot read the kept
/// snapshots cannot open that journal (`JournalError::NoBase`). So a bump
/// must either keep decoding the previous version, or be released with the
/// advice to stop the master cleanly with the old pilotq, which leaves a
/// snapshot, and to keep the sealed files of the last 2 snapshots' span.
pub const SNAPSHOT_VERSION: u32 = 4;

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

/// The version a snapshot says it has, read from its first bytes without
/// decoding the table (retention asks it of every kept snapshot).
pub fn version(bytes: &[u8]) -> Option<u32> {
    // Compact msgpack of `SnapshotRef`: a 2-element array, then `v`.
    if bytes.first() != Some(&0x92) {
        return None;
    }
    match *bytes.get(1)? {
        v @ 0x00..=0x7f => Some(u32::from(v)),
        0xcc => bytes.get(2).map(|&v| u32::from(v)),
        0xcd => Some(u32::from(u16::from_be_bytes(
            bytes.get(2..4)?.try_into().ok()?,
        ))),
        0xce => Some(u32::from_be_bytes(bytes.get(2..6)?.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_without_decoding_the_table() {
        let bytes = encode(&Table::new());
        assert_eq!(version(&bytes), Some(SNAPSHOT_VERSION));
        for v in [0u32, 127, 128, 255, 256, 70_000] {
            let other = rmp_serde::to_vec(&SnapshotRef {
                v,
                table: &Table::new(),
            })
            .unwrap();
            assert_eq!(version(&other), Some(v));
        }
        assert_eq!(version(b""), None);
        assert_eq!(version(b"\x93\x01"), None);
        assert_eq!(version(b"\x92"), None);
    }
}
