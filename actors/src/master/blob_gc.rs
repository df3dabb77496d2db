//! Collecting blobs nothing needs any more (`pilotq_journal::blob_gc`):
//! executables and job wrappers of clusters that have left the queue, and
//! kept outputs of jobs gone, once retention has deleted the events that
//! name them. At start (after the replay, so across restarts too) and every
//! [`BLOB_GC_EVERY`].
//!
//! Kept: what the live table names (each cluster's executable and wrapper,
//! each held job's kept output), every job wrapper this master has used, what the
//! kept events name, and anything appended after the collection began.
//! Only the site's master collects: a foreman's blobs come and go with its
//! master's jobs, and its adoptions reuse blobs without appending them.

use super::Master;
use crate::master::seat::Seat;
use actix::prelude::*;
use pilotq_journal::{blob_gc, JobState};
use std::collections::BTreeSet;
use std::time::Duration;

/// How often blobs are collected.
pub(crate) const BLOB_GC_EVERY: Duration = Duration::from_secs(600);

impl Master {
    /// What the live table (and this master) still needs.
    fn blobs_in_use(&self) -> Result<BTreeSet<String>, pilotq_journal::JournalError> {
        let mut keep = BTreeSet::new();
        for (_, c) in self.table.clusters() {
            keep.insert(c.spec.executable.clone());
            keep.extend(c.wrapper.iter().cloned());
            for (_, j) in c.records() {
                if let JobState::Held { kept: Some(k), .. } = &j.state {
                    keep.extend(k.stdout.iter().cloned());
                    keep.extend(k.stderr.iter().cloned());
                }
            }
        }
        keep.extend(self.wrapper.as_ref().map(|(h, _)| h.clone()));
        // Every wrapper this master ever used: jobs dispatched with an old
        // one may still be out, and no event names it.
        keep.extend(self.store.noted_wrappers()?);
        Ok(keep)
    }

    pub(crate) fn collect_blobs(&mut self, ctx: &mut Context<Self>) {
        if !self.cfg.collect_blobs
            || !matches!(self.seat, Seat::Site { .. })
            || self.paused.is_some()
            || self.collecting_blobs
        {
            return;
        }
        self.collecting_blobs = true;
        // Begun before `keep` is read from the table: a submission handled
        // after this appends its blob after the start, and the writer keeps
        // it whatever `keep` says.
        self.writer.blob_gc_start();
        let mut keep = match self.blobs_in_use() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("blob collection skipped: cannot read the job wrappers noted in the journal: {e}");
                // The writer's collection state is reset by the next start.
                self.collecting_blobs = false;
                return;
            }
        };
        let store = self.store.clone();
        let scan = tokio::task::spawn_blocking(move || blob_gc::referenced_by_journal(&store));
        ctx.spawn(scan.into_actor(self).map(move |r, act, ctx| {
            let refs = match r {
                Ok(Ok(refs)) => refs,
                Ok(Err(e)) => {
                    tracing::warn!(
                        "blob collection skipped: cannot read the journal's events: {e}"
                    );
                    act.collecting_blobs = false;
                    return;
                }
                Err(e) => {
                    tracing::warn!("blob collection skipped: {e}");
                    act.collecting_blobs = false;
                    return;
                }
            };
            keep.extend(refs);
            let kept = keep.len();
            let me = ctx.address();
            act.writer.collect_blobs(
                keep,
                Box::new(move |r| {
                    match r {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(deleted = n, kept, "blobs nothing needs were deleted")
                        }
                        Err(e) => tracing::warn!("blob collection failed: {e}"),
                    }
                    me.do_send(BlobsCollected);
                }),
            );
        }));
    }
}

/// A collection ended; the next may begin.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct BlobsCollected;

impl Handler<BlobsCollected> for Master {
    type Result = ();

    fn handle(&mut self, _: BlobsCollected, _: &mut Context<Self>) {
        self.collecting_blobs = false;
    }
}
