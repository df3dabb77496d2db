//! The durability contract under a real crash: a writer process SIGKILLed
//! mid-append loses nothing it acknowledged, and leaves nothing half-written.
//!
//! The test binary re-executes itself: `crash_child` does nothing unless
//! `PILOTQ_CRASH_CHILD_DIR` is set; then it appends to the journal there from
//! several threads, printing `acked <seq> <op>` once each append is durable,
//! while another thread takes snapshots. The parent kills it at a random
//! moment, reopens the journal, checks it, and starts the next round on the
//! same journal.
//!
//! Every event the child writes is a `MasterStarted` (the only event that
//! changes the table whatever came before it), so the table of a journal of
//! `n` events has `restarts() == n`, from a snapshot plus its tail or not.

use pilotq_journal::{replay, snapshot, Event, Store, Table, Writer, FORMAT_VERSION};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "PILOTQ_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "PILOTQ_CRASH_ROUND";
const CHILD_SEED: &str = "PILOTQ_CRASH_SEED";
const ROUNDS: u32 = 10;
const THREADS: u32 = 4;
/// A child nobody killed (its parent died) stops by itself.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
const SNAPSHOT_EVERY: Duration = Duration::from_millis(25);

/// xorshift64*: enough randomness for timings and batch sizes, and a seed
/// printed so that a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One append of the child: `len` events, each naming its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OpId {
    round: u32,
    thread: u32,
    op: u32,
}

impl OpId {
    fn name(self) -> String {
        format!("{}/{}/{}", self.round, self.thread, self.op)
    }
}

/// The reason field of event `i` of `len` in append `id`: `round/thread/op/i/len`.
fn tag(id: OpId, i: u32, len: u32) -> String {
    format!("{}/{i}/{len}", id.name())
}

fn numbers(s: &str) -> Option<Vec<u32>> {
    s.split('/').map(|p| p.parse().ok()).collect()
}

fn untag(s: &str) -> Option<(OpId, u32, u32)> {
    match numbers(s)?[..] {
        [round, thread, op, i, len] => Some((OpId { round, thread, op }, i, len)),
        _ => None,
    }
}

fn op_named(s: &str) -> Option<OpId> {
    match numbers(s)?[..] {
        [round, thread, op] => Some(OpId { round, thread, op }),
        _ => None,
    }
}

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let var = |name| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} unset"))
    };
    let round = var(CHILD_ROUND) as u32;
    let seed = var(CHILD_SEED);
    let store = Store::open(Path::new(&dir)).expect("child opens the journal");
    let next_seq = store.last_seq().expect("last sequence") + 1;
    let writer = Arc::new(Writer::start(store, next_seq, 64));
    // The table as of the events sent to the writer so far: each thread
    // applies and sends under the lock, so a snapshot taken under it covers
    // exactly the events ahead of it in the writer's queue.
    let mut table = Table::new();
    for _ in 1..next_seq {
        table.apply(&Event::MasterStarted {
            name: String::new(),
            at: 0,
        });
    }
    let sent = Arc::new(Mutex::new(table));
    let deadline = Instant::now() + CHILD_LIFETIME;
    let snapshots = {
        let (writer, sent) = (writer.clone(), sent.clone());
        std::thread::spawn(move || {
            while Instant::now() < deadline {
                std::thread::sleep(SNAPSHOT_EVERY);
                let (tx, rx) = mpsc::channel();
                {
                    let sent = sent.lock().expect("table lock");
                    let done = Box::new(move |r| {
                        let _ = tx.send(r);
                    });
                    writer.snapshot(snapshot::encode(&sent), done);
                }
                rx.recv().expect("completion").expect("durable snapshot");
            }
        })
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (writer, sent) = (writer.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (u64::from(thread) << 32));
                let mut op = 0;
                while Instant::now() < deadline {
                    let id = OpId { round, thread, op };
                    let len = rng.range(1, 50) as u32;
                    let events: Vec<Event> = (0..len)
                        .map(|i| Event::MasterStarted {
                            name: tag(id, i, len),
                            at: u64::from(i),
                        })
                        .collect();
                    let (tx, rx) = mpsc::channel();
                    {
                        let mut sent = sent.lock().expect("table lock");
                        events.iter().for_each(|e| sent.apply(e));
                        let done = Box::new(move |r| {
                            let _ = tx.send(r);
                        });
                        writer.append(events, vec![], done);
                    }
                    let seq = rx.recv().expect("completion").expect("durable append");
                    // One write per line, flushed: the parent sees whole lines.
                    let line = format!("acked {seq} {}\n", id.name());
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).expect("stdout");
                    out.flush().expect("stdout");
                    op += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appending thread");
    }
    snapshots.join().expect("snapshot thread");
}

/// What a check of the journal found: every stored value, and where each
/// append's last event is.
struct Checked {
    raw: Vec<Vec<u8>>,
    last_of: HashMap<OpId, u64>,
    /// The snapshot replay started from.
    snapshot: Option<u64>,
}

/// Checks the whole journal: contiguous keys from 1, every value decodes in
/// the current format, every append is whole and in its place, and each
/// child thread's appends are there from its first without a gap (it waited
/// for each before sending the next).
fn check(dir: &Path) -> Checked {
    let r = replay::open(dir).expect("the journal reopens after SIGKILL");
    let last = r.store.last_seq().expect("last sequence");
    assert_eq!(r.next_seq, last + 1);
    assert_eq!(r.table.restarts(), last, "the table holds every event");
    let from = r.snapshot_seq.unwrap_or(0);
    assert!(from <= last, "snapshot {from} covers more than the journal");
    assert_eq!(r.replayed, last - from);
    let (full, _, _) = replay::rebuild(&r.store, false).expect("full replay");
    assert_eq!(r.table, full);
    let mut raw = Vec::new();
    let mut last_of = HashMap::new();
    let mut open: Option<(OpId, u32, u32)> = None;
    let mut next_op: HashMap<(u32, u32), u32> = HashMap::new();
    for item in r.store.events_from(1) {
        let (seq, env) = item.unwrap_or_else(|e| panic!("an event is half-written: {e}"));
        assert_eq!(seq, raw.len() as u64 + 1, "sequence numbers are contiguous");
        assert_eq!(env.v, FORMAT_VERSION);
        let Event::MasterStarted { name: reason, .. } = &env.e else {
            panic!("event {seq} is not one the child wrote: {:?}", env.e);
        };
        let (id, i, len) = untag(reason).unwrap_or_else(|| panic!("event {seq}: tag {reason:?}"));
        match open {
            Some((o, next, olen)) => assert_eq!(
                (id, i, len),
                (o, next, olen),
                "event {seq} breaks into append {o:?}"
            ),
            None => {
                assert_eq!(i, 0, "event {seq} starts append {id:?} in its middle");
                let want = next_op.entry((id.round, id.thread)).or_insert(0);
                assert_eq!(
                    id.op, *want,
                    "event {seq}: appends of a thread out of order"
                );
                *want += 1;
            }
        }
        open = if i + 1 < len {
            Some((id, i + 1, len))
        } else {
            last_of.insert(id, seq);
            None
        };
        raw.push(format!("{env:?}").into_bytes());
    }
    assert_eq!(open, None, "the last append is cut short");
    Checked {
        raw,
        last_of,
        snapshot: r.snapshot_seq,
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("crash test seed {seed}");
    let mut rng = Rng::new(seed);
    let mut before = Checked {
        raw: vec![],
        last_of: HashMap::new(),
        snapshot: None,
    };
    let mut total_acked = 0;
    for round in 1..=ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .env(CHILD_SEED, rng.next().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let rest = l.strip_prefix("acked ")?;
                    let (seq, op) = rest.split_once(' ')?;
                    Some((seq.parse::<u64>().ok()?, op_named(op)?))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.range(50, 400)));
        // SAFETY: kill(2) on the pid of a child we spawned and have not
        // reaped yet, so the pid cannot have been reused.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill the child");
        let status = child.wait().expect("reap the child");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child ended by itself"
        );
        let acked = reader.join().expect("stdout reader");
        total_acked += acked.len();

        let now = check(dir.path());
        assert!(
            now.raw.len() >= before.raw.len() && now.raw[..before.raw.len()] == before.raw[..],
            "round {round}: events of earlier rounds changed"
        );
        for (seq, id) in &acked {
            assert_eq!(id.round, round);
            assert!(
                *seq > before.raw.len() as u64,
                "round {round}: ack {seq} reuses an old sequence"
            );
            assert_eq!(
                now.last_of.get(id),
                Some(seq),
                "round {round}: acknowledged append {id:?} (ending at {seq}) is not in the journal"
            );
        }
        eprintln!(
            "round {round}: {} appends acknowledged, journal {} -> {} events, replayed from snapshot {:?}",
            acked.len(),
            before.raw.len(),
            now.raw.len(),
            now.snapshot,
        );
        before = now;
    }
    assert!(
        total_acked > 0,
        "no child got anything written before its kill"
    );
}
