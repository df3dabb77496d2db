//! The sealer thread: moves snapshotted events out of sled into sealed files
//! ([`crate::sealed`]) and applies retention, in the background, so that
//! neither the master's thread nor the journal writer ever waits for
//! compression or for a file's sync.
//!
//! When it works:
//! - at start: it deletes temporary files a crash left, removes from sled the
//!   events a sealed file already holds, seals through the oldest kept
//!   snapshot and applies retention;
//! - after every group that stored a snapshot (the writer asks,
//!   [`SealRequests::after_snapshot`]): it seals through the *oldest* kept
//!   snapshot, so that a replay from either kept snapshot reads only sled,
//!   then applies retention.
//!
//! Requests that pile up while it works count as one. A failure is logged
//! and costs nothing but space: the events stay in sled, and the next
//! request tries again.

use crate::sealed::Retention;
use crate::store::Store;
use crossbeam::channel::{unbounded, Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

enum Request {
    /// Seal through the oldest kept snapshot.
    KeptSnapshots,
    /// Seal through this event.
    Through(u64),
    /// Answer once everything asked before is done.
    Idle(Sender<()>),
}

/// Asks the sealer for work; cheap to clone, never blocks.
#[derive(Clone)]
pub struct SealRequests(Sender<Request>);

impl SealRequests {
    /// A snapshot was stored (and flushed): seal through the oldest kept one.
    pub fn after_snapshot(&self) {
        // A stopped sealer: the events simply stay in sled.
        let _ = self.0.send(Request::KeptSnapshots);
    }
}

pub struct Sealer {
    tx: Option<Sender<Request>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Starts the sealer thread on `store`, keeping sealed files as `keep`
    /// says. Only the journal's holder may start one.
    pub fn start(store: Store, keep: Retention) -> Sealer {
        let (tx, rx) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pilotq-sealer".into())
            .spawn(move || run(store, keep, rx, stopping))
            .expect("spawning the sealer thread");
        Sealer {
            tx: Some(tx),
            stop,
            thread: Some(thread),
        }
    }

    /// A handle for the writer.
    pub fn requests(&self) -> SealRequests {
        SealRequests(self.tx.clone().expect("a running sealer has a channel"))
    }

    /// Seals through `seq` (as [`Store::seal_through`], in the background).
    pub fn seal_through(&self, seq: u64) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Request::Through(seq));
        }
    }

    /// Waits until everything asked before is done (tests, tools).
    pub fn idle(&self) {
        let (done_tx, done_rx) = crossbeam::channel::bounded(1);
        if let Some(tx) = &self.tx {
            if tx.send(Request::Idle(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }

    /// Stops the thread: a seal in progress ends after the file in hand
    /// (what is left is sealed at the next start).
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(store: Store, keep: Retention, rx: Receiver<Request>, stop: Arc<AtomicBool>) {
    match store.sealed().and_then(|d| d.remove_temporaries()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "deleted temporary sealed files a crash left"),
        Err(e) => tracing::warn!("cleaning the sealed folder: {e}"),
    }
    work(&store, &keep, kept_snapshots(&store), &stop);
    while let Ok(first) = rx.recv() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // Everything waiting counts as one request: the furthest.
        let mut through = None;
        let mut idle = Vec::new();
        for r in std::iter::once(first).chain(rx.try_iter()) {
            let seq = match r {
                Request::Through(seq) => seq,
                Request::KeptSnapshots => kept_snapshots(&store),
                Request::Idle(done) => {
                    idle.push(done);
                    continue;
                }
            };
            through = through.max(Some(seq));
        }
        if let Some(through) = through {
            work(&store, &keep, through, &stop);
        }
        for done in idle {
            let _ = done.send(());
        }
    }
}

/// The oldest kept snapshot: a replay from it, or from any newer one, reads
/// only events after it.
fn kept_snapshots(store: &Store) -> u64 {
    match store.oldest_snapshot_seq() {
        Ok(seq) => seq.unwrap_or(0),
        Err(e) => {
            tracing::warn!("sealer: reading the snapshots: {e}");
            0
        }
    }
}

fn work(store: &Store, keep: &Retention, through: u64, stop: &AtomicBool) {
    let go_on = || !stop.load(Ordering::SeqCst);
    match store.seal_through_while(through, crate::sealed::MAX_FILE_BODY, &go_on) {
        Ok(report) => {
            if report.leftovers > 0 {
                tracing::info!(
                    entries = report.leftovers,
                    "removed from sled the events sealed files already held (a crash after a seal)"
                );
            }
            if !report.files.is_empty() {
                tracing::info!(
                    through,
                    files = report.files.len(),
                    events = report.events,
                    raw_bytes = report.raw_bytes,
                    sealed_bytes = report.sealed_bytes,
                    ms = report.ms,
                    "sealed journal events"
                );
            }
        }
        Err(e) => {
            tracing::error!("sealing journal events through {through}: {e}; they stay in sled")
        }
    }
    match store.retire_sealed(keep) {
        Ok(gone) => {
            for f in gone {
                tracing::info!(file = %f.name, events = f.events(), bytes = f.bytes, "retention deleted a sealed journal file");
            }
        }
        Err(e) => tracing::error!("retention of sealed journal files: {e}"),
    }
}
