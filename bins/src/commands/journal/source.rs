//! Where a post-mortem's events come from:
//!
//! - a stopped master's journal, or a copy of one: `Store::open_existing`
//!   (sled, with its sealed files if it has any);
//! - a journal a running master holds: its sealed files, read from the
//!   directory without a lock (`SealedDir`), then the rest — what is still in
//!   the master's live database — fetched from the master (`JournalTail`).
//!
//! Which one: `--master HOST:PORT` asks the master. Without it, the directory
//! is opened; if a master holds it, and no `--journal` was named, the master
//! at `PILOTQ_MASTER` (else the default address) is asked. An explicit
//! `--journal` never silently turns into whatever master the environment
//! names (it might be another master's), and the error says to pass
//! `--master`.

use crate::client_opts::{SecretOpts, DEFAULT_MASTER};
use anyhow::{anyhow, bail, Context, Result};
use pilotq_actors::tls::ClientTls;
use pilotq_actors::Client;
use pilotq_journal::postmortem::at::snapshot_at_or_before;
use pilotq_journal::store::decode_segment;
use pilotq_journal::{Envelope, JournalError, SealedDir, Store, Table};
use pilotq_wire::{Secret, TailSegment, DEFAULT_MAX_FRAME};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

pub const DEFAULT_JOURNAL: &str = "./pilotq-data/master";

#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// The journal directory: a stopped master's, a copy of one, or a
    /// running master's (with --master) [default: ./pilotq-data/master].
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// HOST:PORT of the running master that holds the journal: the events
    /// still in its live database come from it, sealed files from --journal.
    /// Without --journal, a journal held by a master is read through
    /// PILOTQ_MASTER (else 127.0.0.1:9094).
    #[arg(long, value_name = "HOST:PORT")]
    pub master: Option<String>,
    #[command(flatten)]
    pub secret: SecretOpts,
    #[command(flatten)]
    pub tls: crate::tls_opts::PeerTlsOpts,
}

pub type Events<'a> = Box<dyn Iterator<Item = Result<(u64, Envelope)>> + 'a>;

pub enum Source {
    Stopped(Store),
    Live {
        /// The journal directory, when it is here (its sealed files).
        dir: Option<PathBuf>,
        addr: String,
        secret: Option<Secret>,
        tls: Option<ClientTls>,
    },
}

impl Source {
    pub fn open(a: &SourceArgs) -> Result<Source> {
        let dir = a
            .journal
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_JOURNAL));
        if let Some(addr) = &a.master {
            let secret = a.secret.load()?;
            return Source::live(&dir, addr, secret, a.tls.load()?);
        }
        match Store::open_existing(&dir) {
            Ok(store) => Ok(Source::Stopped(store)),
            Err(JournalError::Locked { .. }) => {
                let held = format!("journal {} is held by a running master", dir.display());
                if a.journal.is_some() {
                    bail!(
                        "{held}; pass --master HOST:PORT of that master to read it while it runs"
                    );
                }
                let addr = std::env::var("PILOTQ_MASTER")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| DEFAULT_MASTER.to_string());
                let secret = a.secret.load()?;
                Source::live(&dir, &addr, secret, a.tls.load()?).map_err(|e| {
                    anyhow!("{held}, and the master at {addr} cannot be asked ({e:#}); pass --master HOST:PORT of the master that holds it")
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A running master's journal; checks at once that the master answers.
    fn live(
        dir: &Path,
        addr: &str,
        secret: Option<Secret>,
        tls: Option<ClientTls>,
    ) -> Result<Source> {
        let rt = runtime();
        rt.block_on(Client::connect(
            addr,
            secret.as_ref(),
            tls.as_ref(),
            DEFAULT_MAX_FRAME,
        ))
        .map_err(|e| anyhow!("{e}"))?;
        Ok(Source::Live {
            dir: dir.is_dir().then(|| dir.to_path_buf()),
            addr: addr.to_string(),
            secret,
            tls,
        })
    }

    /// Events from `from` on, in order, each once.
    pub fn events_from(&self, from: u64) -> Result<Events<'_>> {
        match self {
            Source::Stopped(store) => Ok(Box::new(decoded_ahead(store.clone(), from))),
            Source::Live {
                dir,
                addr,
                secret,
                tls,
            } => {
                let rt = runtime();
                let client = rt
                    .block_on(Client::connect(
                        addr,
                        secret.as_ref(),
                        tls.as_ref(),
                        DEFAULT_MAX_FRAME,
                    ))
                    .map_err(|e| anyhow!("{e}"))?;
                // Sealed files first: the master sends only what it has not
                // sealed.
                let sealed = dir.as_deref().map(SealedDir::open).transpose()?;
                let sealed_last = sealed.as_ref().and_then(SealedDir::last_seq).unwrap_or(0);
                let head: Events<'_> = match sealed {
                    Some(sealed) if sealed_last >= from => Box::new(
                        sealed
                            .events_from(from)
                            .take_while(move |r| {
                                r.as_ref().map_or(true, |(s, _)| *s <= sealed_last)
                            })
                            .map(|r| r.context("reading sealed journal files")),
                    ),
                    _ => Box::new(std::iter::empty()),
                };
                let tail = Tail {
                    rt,
                    client,
                    dir: dir.clone(),
                    addr: addr.clone(),
                    from: from.max(sealed_last + 1),
                    next: None,
                    buf: VecDeque::new(),
                    state: TailState::NotAsked,
                    any: sealed_last >= from,
                };
                Ok(Box::new(head.chain(tail)))
            }
        }
    }

    /// The newest snapshot at or before `seq`, for `at` on a journal whose
    /// first events are gone; `None` when the events reach back to the
    /// start (a replay from the first event is exact) or none is readable.
    pub fn snapshot_for(&self, seq: u64) -> Result<Option<(u64, Table)>> {
        match self {
            Source::Stopped(store) if store.first_seq()? > 1 => {
                Ok(snapshot_at_or_before(store, seq)?)
            }
            // A running master's snapshots are in its locked database.
            _ => Ok(None),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Stopped(s) => format!("journal {}", s.path().display()),
            Source::Live { addr, .. } => format!("the master at {addr}"),
        }
    }
}

/// Events read and decoded on a thread of their own, in batches, while the
/// caller folds them: decoding is most of a scan's cost, so on two cores a
/// 15-million-event `stats` takes about the decoding's time instead of the
/// sum of both. A caller that stops early drops the receiver, and the
/// thread stops at its next batch.
fn decoded_ahead(store: Store, from: u64) -> impl Iterator<Item = Result<(u64, Envelope)>> {
    const BATCH: usize = 4096;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<(u64, Envelope)>>>(8);
    std::thread::Builder::new()
        .name("pilotq-journal-read".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            for item in store.events_from(from) {
                let failed = item.is_err();
                batch.push(item.context("reading the journal"));
                if batch.len() < BATCH && !failed {
                    continue;
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // Stop at an error (sent), or when nobody reads any more.
                if tx.send(full).is_err() || failed {
                    return;
                }
            }
            let _ = tx.send(batch);
        })
        .expect("starting the journal reader thread");
    rx.into_iter().flatten()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

enum TailState {
    NotAsked,
    Reading,
    Done,
}

/// The master's tail, chunk by chunk as it is read: a journal of millions
/// of events is never held whole.
struct Tail {
    rt: tokio::runtime::Runtime,
    client: Client,
    dir: Option<PathBuf>,
    addr: String,
    /// Asked from.
    from: u64,
    /// The sequence the next event must have (None before the first).
    next: Option<u64>,
    buf: VecDeque<(u64, Envelope)>,
    state: TailState,
    /// Whether any event came before (sealed files, or the tail itself):
    /// from then on the tail must continue them exactly.
    any: bool,
}

impl Tail {
    fn fetch(&mut self) -> Result<()> {
        let (segments, last) = match self.state {
            TailState::NotAsked => {
                self.state = TailState::Reading;
                self.rt.block_on(self.client.journal_tail(self.from))
            }
            TailState::Reading => self.rt.block_on(self.client.journal_tail_more()),
            TailState::Done => return Ok(()),
        }
        .map_err(|e| anyhow!("reading the journal from the master at {}: {e}", self.addr))?;
        if last {
            self.state = TailState::Done;
        }
        for seg in segments {
            self.take(seg)?;
        }
        Ok(())
    }

    fn take(&mut self, seg: TailSegment) -> Result<()> {
        let expected = self.next.unwrap_or(self.from);
        if seg.last < expected {
            return Ok(());
        }
        if seg.first > expected {
            // Events the master no longer has in its live database: sealed
            // into files since (read them from there), or, before anything
            // was read, retired for good (the journal starts later).
            let started = self.any || self.next.is_some();
            self.fill_from_sealed(expected, seg.first - 1, !started)?;
        }
        let envs = decode_segment(seg.first, seg.last, &seg.bytes)?;
        for (seq, env) in (seg.first..=seg.last).zip(envs) {
            if seq >= expected {
                self.buf.push_back((seq, env));
            }
        }
        self.next = Some(seg.last + 1);
        Ok(())
    }

    fn fill_from_sealed(&mut self, from: u64, to: u64, at_start: bool) -> Result<()> {
        let Some(dir) = &self.dir else {
            bail!(
                "events {from} to {to} are not in the master's live database: they are sealed into files on the master's machine; run this there with --journal DIR"
            );
        };
        let sealed = SealedDir::open(dir)?;
        let mut want = from;
        for item in sealed.events_from(from) {
            let (seq, env) = item?;
            if seq > to {
                break;
            }
            self.buf.push_back((seq, env));
            want = seq + 1;
        }
        if want == from && at_start {
            return Ok(());
        }
        if want <= to {
            bail!("events {want} to {to} are neither in the master's live database nor in the sealed files of {}", dir.display());
        }
        Ok(())
    }
}

impl Iterator for Tail {
    type Item = Result<(u64, Envelope)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                self.any = true;
                return Some(Ok(e));
            }
            if matches!(self.state, TailState::Done) {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.state = TailState::Done;
                return Some(Err(e));
            }
        }
    }
}
