//! The sending half of a connection: a bounded queue drained by a writer task
//! into the socket. Anyone holding an [`Outbox`] (the master's thread, the
//! journal thread completing a group) may `deliver`; when the queue is full the
//! peer is not reading fast enough, and the connection is cut rather than
//! buffered without end (ARCHITECTURE.md, Bounds and back-pressure).

use futures::SinkExt;
use pilotq_wire::FrameCodec;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;

/// Frames that may wait for one slow peer.
pub const OUTBOX_FRAMES: usize = 4096;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub struct Outbox<T> {
    pub conn: u64,
    tx: mpsc::Sender<T>,
    /// Cancelled when the connection must close (either side).
    pub closed: CancellationToken,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox {
            conn: self.conn,
            tx: self.tx.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<T: Serialize + Send + 'static> Outbox<T> {
    /// Starts the writer task on the current (actix or tokio) runtime. It
    /// ends, and cancels `closed`, when the socket fails or `closed` is
    /// cancelled; frames still queued at cancellation are written first, so a
    /// final error message reaches the peer.
    pub fn start<W, In>(write: W, codec: FrameCodec<In, T>, closed: CancellationToken) -> Outbox<T>
    where
        W: AsyncWrite + Unpin + 'static,
        In: 'static,
    {
        let (tx, mut rx) = mpsc::channel::<T>(OUTBOX_FRAMES);
        let token = closed.clone();
        tokio::task::spawn_local(async move {
            let mut sink = FramedWrite::new(write, codec);
            loop {
                tokio::select! {
                    biased;
                    msg = rx.recv() => match msg {
                        Some(m) => {
                            // Write everything already queued before flushing.
                            if sink.feed(m).await.is_err() { break; }
                            let mut ok = true;
                            while let Ok(m) = rx.try_recv() {
                                if sink.feed(m).await.is_err() { ok = false; break; }
                            }
                            if !ok || sink.flush().await.is_err() { break; }
                        }
                        None => break,
                    },
                    _ = token.cancelled() => {
                        while let Ok(m) = rx.try_recv() {
                            if sink.feed(m).await.is_err() { break; }
                        }
                        let _ = sink.flush().await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
            token.cancel();
        });
        Outbox {
            conn: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            tx,
            closed,
        }
    }

    /// Queues a frame; cuts the connection if the peer is too slow to read.
    /// Returns false if the frame was not queued.
    pub fn deliver(&self, msg: T) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.conn,
                    "peer too slow to read; closing its connection"
                );
                self.closed.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Frames queued and not yet taken by the writer.
    pub fn pending(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}
