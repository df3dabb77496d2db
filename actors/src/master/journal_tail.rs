//! `JournalTail`: the journal's events still in the live database, for
//! post-mortems while the master holds the journal (`pilotq journal
//! --master`). Events already sealed into files are read from those files by
//! the tool itself (they need no lock); this sends what only the master can
//! read: sled's segments, as stored, undecoded.
//!
//! Modelled on the query answer (`clients.rs`, `SendQueryChunks`): chunks
//! of about [`TAIL_CHUNK_BYTES`] of segment bytes, each read only once the
//! client has fewer than [`TAIL_CHUNKS_AHEAD`] waiting in its outbox, and
//! each sent after a durability barrier — a segment read from sled may not
//! have been flushed yet, and nothing leaves the master before it is
//! durable. The answer ends at the last event stored when the request came,
//! so a busy master's growing journal never makes it endless.

use super::Master;
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_journal::JournalError;
use pilotq_wire::{FromMaster, TailSegment};
use std::time::{Duration, Instant};

/// Segment bytes per `JournalSegments` frame: well under the 16 MiB frame,
/// and a few hundred thousand events per round trip.
const TAIL_CHUNK_BYTES: usize = 4 << 20;

/// Chunks that may wait in a client's outbox (as for query answers).
const TAIL_CHUNKS_AHEAD: usize = 4;

/// A client that leaves its chunks unread this long is cut off.
const TAIL_STALL: Duration = Duration::from_secs(60);

/// The rest of a tail answer: events `next..=end`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SendTailChunks {
    ob: Outbox<FromMaster>,
    next: u64,
    end: u64,
    stalled_since: Option<Instant>,
}

impl Handler<SendTailChunks> for Master {
    type Result = ();

    fn handle(&mut self, mut q: SendTailChunks, ctx: &mut Context<Self>) {
        if q.ob.is_closed() {
            return;
        }
        if q.ob.pending() >= TAIL_CHUNKS_AHEAD {
            let since = *q.stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > TAIL_STALL {
                tracing::warn!(
                    conn = q.ob.conn,
                    "client has not read its journal tail for {} s; closing its connection",
                    TAIL_STALL.as_secs()
                );
                q.ob.closed.cancel();
                return;
            }
            ctx.run_later(Duration::from_millis(2), move |_, ctx| ctx.notify(q));
            return;
        }
        q.stalled_since = None;
        match self.tail_chunk(q.next, q.end) {
            Err(e) => {
                let message = format!("cannot read the journal from event {}: {e}", q.next);
                self.after_durable(move || {
                    q.ob.deliver(FromMaster::Error { message });
                });
            }
            Ok((segments, next)) => {
                // Done once past the end, or when nothing more is stored
                // (never an endless round of empty chunks).
                let last = next > q.end || segments.is_empty();
                q.next = next;
                let me = ctx.address();
                self.after_durable(move || {
                    if q.ob.deliver(FromMaster::JournalSegments { segments, last }) && !last {
                        me.do_send(q);
                    }
                });
            }
        }
    }
}

impl Master {
    pub(crate) fn on_journal_tail(
        &mut self,
        ctx: &mut Context<Self>,
        ob: Outbox<FromMaster>,
        from: u64,
    ) {
        let end = match self.store.last_seq() {
            Ok(end) => end,
            Err(e) => {
                ob.deliver(FromMaster::Error {
                    message: format!("cannot read the journal: {e}"),
                });
                return;
            }
        };
        ctx.notify(SendTailChunks {
            ob,
            next: from.max(1),
            end,
            stalled_since: None,
        });
    }

    /// Sled's segments from `next` (or from the first event not sealed, if
    /// later: the tool reads sealed files itself), up to about
    /// `TAIL_CHUNK_BYTES`; returns them and the sequence to go on from.
    fn tail_chunk(&self, next: u64, end: u64) -> Result<(Vec<TailSegment>, u64), JournalError> {
        // Looked at every chunk: the sealer may move events out meanwhile.
        let sealed_last = self.store.sealed()?.last_seq().unwrap_or(0);
        let start = next.max(sealed_last + 1);
        let mut segments = Vec::new();
        if start > end {
            return Ok((segments, start));
        }
        let (mut bytes, mut after) = (0usize, start);
        for item in self.store.segments_from(start) {
            let (first, last, b) = item?;
            if last < start {
                continue;
            }
            bytes += b.len();
            segments.push(TailSegment {
                first,
                last,
                bytes: b.to_vec(),
            });
            after = last + 1;
            if bytes >= TAIL_CHUNK_BYTES || after > end {
                break;
            }
        }
        Ok((segments, after))
    }
}
