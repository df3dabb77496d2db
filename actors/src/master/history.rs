//! `condor_history` through the master: finished jobs read from the history
//! store (`pilotq_journal::history`) on a thread of their own, sent in
//! chunks as the client takes them.
//!
//! The store is on disk, never in the master's memory, and reading it never
//! blocks the master's thread. A reader sees only records of durable events
//! (the writer syncs records just *before* their events, see the store's
//! notes): the request waits for a journal barrier, and its sequence bounds
//! what is read. A client that has what it wants (`-limit 100`) closes the
//! connection and the reader stops at its next chunk.

use super::Master;
use crate::outbox::Outbox;
use pilotq_journal::history::{self, Backwards, Forwards, ReadBound};
use pilotq_wire::{FromMaster, JobView, Selector};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records per `History` frame.
const CHUNK: usize = 2000;
/// Chunks that may wait unread in a client's outbox.
const CHUNKS_AHEAD: usize = 4;
/// A client that leaves its answer unread this long is cut off.
const STALL: Duration = Duration::from_secs(60);
/// History readers at once; more are refused (each is a thread reading a
/// file).
const MAX_READERS: usize = 16;

/// The master's handle on its history store.
pub(crate) struct HistoryStore {
    pub dir: PathBuf,
    /// The current file's committed length (kept by the journal writer).
    pub committed: Arc<AtomicU64>,
    readers: Arc<AtomicUsize>,
}

impl HistoryStore {
    pub fn new(dir: PathBuf, committed: Arc<AtomicU64>) -> HistoryStore {
        HistoryStore {
            dir,
            committed,
            readers: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Master {
    pub(crate) fn on_history(
        &mut self,
        ob: Outbox<FromMaster>,
        selectors: Vec<Selector>,
        forwards: bool,
    ) {
        let h = &self.history;
        if h.readers.fetch_add(1, Ordering::AcqRel) >= MAX_READERS {
            h.readers.fetch_sub(1, Ordering::AcqRel);
            ob.deliver(FromMaster::Error {
                message: format!(
                    "{MAX_READERS} history queries are running; try again in a moment"
                ),
            });
            return;
        }
        let dir = h.dir.clone();
        let committed = h.committed.clone();
        let readers = h.readers.clone();
        self.writer.barrier(Box::new(move |r| {
            let max_seq = match r {
                Ok(seq) => seq,
                Err(e) => {
                    readers.fetch_sub(1, Ordering::AcqRel);
                    ob.deliver(FromMaster::Error {
                        message: format!("the journal is failing: {e}"),
                    });
                    return;
                }
            };
            // Read after the barrier: everything committed is synced.
            let bound = ReadBound {
                max_seq,
                current_len: Some(committed.load(Ordering::Acquire)),
            };
            let spawned = std::thread::Builder::new()
                .name("pilotq-history".into())
                .spawn({
                    let slot = ReaderSlot(readers.clone());
                    move || {
                        let _slot = slot;
                        send_history(&dir, bound, &selectors, forwards, &ob);
                    }
                });
            // A thread that never started dropped its slot with its closure.
            drop(spawned);
        }));
    }
}

/// One of the [`MAX_READERS`] slots, given back however the reader ends.
struct ReaderSlot(Arc<AtomicUsize>);

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Records read between looks at whether the client is still there.
const CHECK_EVERY: usize = 1024;
/// A chunk with something in it goes out after this long, full or not: a
/// client asking for a few jobs hears of them while the scan goes on.
const CHUNK_WAIT: Duration = Duration::from_millis(200);

/// Reads and sends the answer; runs on its own thread.
fn send_history(
    dir: &std::path::Path,
    bound: ReadBound,
    selectors: &[Selector],
    forwards: bool,
    ob: &Outbox<FromMaster>,
) {
    let picks = selectors.to_vec();
    let wanted_id =
        move |id: pilotq_wire::JobId| picks.is_empty() || picks.iter().any(|s| s.matches(id));
    // With selectors, records of other jobs are skipped by their id alone.
    let want: Option<history::Want> = (!selectors.is_empty()
        && !selectors.contains(&Selector::All))
    .then(|| std::sync::Arc::new(wanted_id.clone()) as history::Want);
    let records: Box<dyn Iterator<Item = Result<JobView, pilotq_journal::JournalError>>> =
        if forwards {
            match Forwards::open(dir, bound) {
                Ok(f) => Box::new(match want {
                    Some(w) => f.only(w),
                    None => f,
                }),
                Err(e) => return refuse(ob, e),
            }
        } else {
            match Backwards::open(dir, bound) {
                Ok(b) => Box::new(match want {
                    Some(w) => b.only(w),
                    None => b,
                }),
                Err(e) => return refuse(ob, e),
            }
        };
    let wanted = |v: &JobView| wanted_id(v.id);
    // Only job ids asked for: each has one record, so the scan ends once
    // all are found.
    let mut jobs_left: Option<std::collections::HashSet<pilotq_wire::JobId>> = selectors
        .iter()
        .map(|s| match s {
            Selector::Job(j) => Some(*j),
            _ => None,
        })
        .collect::<Option<_>>()
        .filter(|set: &std::collections::HashSet<_>| !set.is_empty());
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut last_sent = Instant::now();
    for (n, rec) in records.enumerate() {
        match rec {
            Ok(v) if wanted(&v) => {
                if let Some(left) = &mut jobs_left {
                    left.remove(&v.id);
                }
                chunk.push(v);
            }
            Ok(_) => {}
            Err(e) => return refuse(ob, e),
        }
        if jobs_left.as_ref().is_some_and(|l| l.is_empty()) {
            break;
        }
        if n % CHECK_EVERY == 0 && ob.is_closed() {
            return;
        }
        let due = !chunk.is_empty() && last_sent.elapsed() >= CHUNK_WAIT;
        if chunk.len() == CHUNK || (due && ob.pending() == 0) {
            last_sent = Instant::now();
            if !wait_for_reader(ob) {
                return;
            }
            let jobs = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if !ob.deliver(FromMaster::History { jobs, last: false }) {
                return;
            }
        }
    }
    if wait_for_reader(ob) {
        ob.deliver(FromMaster::History {
            jobs: chunk,
            last: true,
        });
    }
}

fn refuse(ob: &Outbox<FromMaster>, e: pilotq_journal::JournalError) {
    tracing::warn!("history query failed: {e}");
    ob.deliver(FromMaster::Error {
        message: format!("cannot read the history store: {e}"),
    });
}

/// Waits until the client has read enough of what was sent; `false` when
/// it left, or stalled past [`STALL`] (its connection is then closed).
fn wait_for_reader(ob: &Outbox<FromMaster>) -> bool {
    let mut since: Option<Instant> = None;
    loop {
        if ob.is_closed() {
            return false;
        }
        if ob.pending() < CHUNKS_AHEAD {
            return true;
        }
        let t = *since.get_or_insert_with(Instant::now);
        if t.elapsed() > STALL {
            tracing::warn!(
                conn = ob.conn,
                "client has not read its history answer for {} s; closing its connection",
                STALL.as_secs()
            );
            ob.closed.cancel();
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The history store's directory for a journal.
pub(crate) fn dir_of(journal: &std::path::Path) -> PathBuf {
    history::dir_of(journal)
}
