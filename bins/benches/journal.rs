//! Journal benchmarks: durable appends with group commit, and replay.
//!
//! `cargo bench -p pilotq --bench journal`
//!
//! Appends: many concurrent appenders (as the master's sessions are), each
//! appending one event and waiting until it is durable before the next, so
//! every figure counts only flushed events. Replay: a journal of a million
//! job events (dispatch, start, complete), rebuilt from the first event.

mod common;

use pilotq_journal::{replay, Event, Store, Writer};
use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome};
use std::sync::mpsc;
use std::time::Instant;

fn spec() -> JobSpec {
    // Never run: only its size and shape matter here.
    common::job_spec(b"", "/bin/true", &[])
}

fn completed(i: u64) -> Event {
    Event::JobCompleted {
        job: JobId::new(1, i as u32),
        attempt: 1,
        outcome: Outcome::Exited { code: 0 },
        at: 1_795_000_000_000 + i,
    }
}

/// `appenders` threads each append `per` events one at a time, waiting for
/// durability each time. Returns events per second.
fn appends(appenders: usize, per: usize, batch: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let writer = std::sync::Arc::new(Writer::start(store, 1, 65_536));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..appenders {
            let w = writer.clone();
            s.spawn(move || {
                let (tx, rx) = mpsc::channel();
                for i in 0..per / batch {
                    let events = (0..batch)
                        .map(|k| completed((t * per + i * batch + k) as u64))
                        .collect();
                    let tx = tx.clone();
                    w.append(events, vec![], Box::new(move |r| tx.send(r).unwrap()));
                    rx.recv().unwrap().expect("durable");
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    (appenders * per) as f64 / secs
}

fn main() {
    println!("== durable appends, group commit (each appender waits for its flush)");
    for (appenders, per, batch) in [
        (1, 20_000, 1),
        (64, 4_000, 1),
        (256, 2_000, 1),
        (64, 20_000, 10),
    ] {
        let rate = appends(appenders, per, batch);
        println!(
            "appenders={appenders:<4} events/append={batch:<3} total={:<8} -> {:>10.0} events/s",
            appenders * per,
            rate
        );
    }

    println!("== replay");
    let dir = tempfile::tempdir().unwrap();
    let jobs: u32 = 333_334;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut w = Writer::start(store, 1, 1024);
        let (tx, rx) = mpsc::channel();
        let submit = Event::ClusterSubmitted {
            cluster: ClusterId(1),
            count: jobs,
            spec: Box::new(spec()),
            at: 1,
        };
        w.append(vec![submit], vec![], Box::new(|_| {}));
        for chunk in 0..(jobs / 1000 + 1) {
            let evs = common::finished_jobs(chunk * 1000..((chunk + 1) * 1000).min(jobs));
            let tx = tx.clone();
            w.append(
                evs,
                vec![],
                Box::new(move |r| tx.send(r.map(|_| ())).unwrap()),
            );
        }
        for _ in 0..(jobs / 1000 + 1) {
            rx.recv().unwrap().unwrap();
        }
        w.shutdown();
    }
    let store = Store::open(dir.path()).unwrap();
    let n = store.event_count();
    for round in 1..=3 {
        let t0 = Instant::now();
        let (table, _, replayed) = replay::rebuild(&store, false).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(replayed as usize, n);
        assert_eq!(table.counts().completed, u64::from(jobs));
        println!(
            "round {round}: {n} events in {:.3} s -> {:>10.0} events/s",
            secs,
            n as f64 / secs
        );
    }
    drop(store);
    blob_reads();
}

/// What a dispatch pays on the master's thread when an executable is not in
/// its in-memory cache (64 hashes): one `Store::blob`, first on a freshly
/// opened journal (as after a restart), then again.
fn blob_reads() {
    println!("== executable reads from the journal (a dispatch's cache miss)");
    for size in [30 << 10, 1 << 20, 8 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let hashes: Vec<String> = (0..16).map(|i| format!("{size}-{i}")).collect();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut w = Writer::start(store, 1, 1024);
            let (tx, rx) = mpsc::channel();
            let blobs = hashes
                .iter()
                .map(|h| (h.clone(), vec![7u8; size]))
                .collect();
            w.append(vec![], blobs, Box::new(move |r| tx.send(r).unwrap()));
            rx.recv().unwrap().unwrap();
            w.shutdown();
        }
        let store = Store::open(dir.path()).unwrap();
        let time = |store: &Store| {
            let t0 = Instant::now();
            for h in &hashes {
                assert_eq!(store.blob(h).unwrap().unwrap().len(), size);
            }
            t0.elapsed().as_secs_f64() * 1e6 / hashes.len() as f64
        };
        let first = time(&store);
        let again = time(&store);
        println!(
            "{:>5} KiB: first read {first:>8.1} us, again {again:>8.1} us",
            size >> 10
        );
    }
}
