//! What a job costs on disk once its events are sealed: under 100 bytes for
//! a typical life (ClusterSubmitted once per cluster; JobDispatched,
//! JobStarted, JobCompleted per job), which is what lets a master keep a
//! month of record. Also prints how fast sealing goes.
//!
//! The journal is written through the real group-commit writer, so its
//! segments and envelope times are those a master would leave: 100,000 jobs
//! in clusters of 1,000, run by 200 workers named `worker-0042`, each job for
//! one to ten minutes, events in time order, in groups of a few hundred.

use pilotq_journal::{Event, Store, Writer};
use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome, Resources};
use std::collections::BTreeMap;
use std::sync::mpsc;

const JOBS: u64 = 100_000;
const CLUSTER: u64 = 1_000;
const WORKERS: u64 = 200;
const GROUP: usize = 300;

/// xorshift64*: deterministic, and enough for run times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn spec(cluster: u64) -> Box<JobSpec> {
    Box::new(JobSpec {
        executable: format!("{:064x}", cluster * 7919),
        cmd: "pilot.sh".into(),
        arguments: vec!["--site".into(), "T2_XX_Example".into()],
        environment: BTreeMap::from([("X509_USER_PROXY".into(), "/tmp/x509up".into())]),
        output: Some("/var/pilots/$(Cluster).$(Process).out".into()),
        error: Some("/var/pilots/$(Cluster).$(Process).err".into()),
        log: Some("/var/pilots/pilots.log".into()),
        request: Resources::new(1, 2_000, 10_000),
        priority: 0,
        attributes: BTreeMap::from([("GlideinFactory".into(), "\"example\"".into())]),
        owner: "pilot".into(),
        iwd: "/var/pilots".into(),
        tags: vec![],
        leave_in_queue: false,
    })
}

/// Every event of the run, in the order a master would journal them.
fn events() -> Vec<Event> {
    let mut rng = Rng(0x5eed_cafe);
    let t0: u64 = 1_796_308_965_000;
    let mut timed: Vec<(u64, u64, Event)> = Vec::new();
    // When each worker is next free.
    let mut free = vec![t0; WORKERS as usize];
    for job in 0..JOBS {
        let (cluster, proc) = (1 + job / CLUSTER, (job % CLUSTER) as u32);
        if proc == 0 {
            let at = free.iter().copied().min().unwrap_or(t0);
            timed.push((
                at,
                0,
                Event::ClusterSubmitted {
                    cluster: ClusterId(cluster),
                    count: CLUSTER as u32,
                    spec: spec(cluster),
                    at,
                },
            ));
        }
        let w = (0..WORKERS as usize)
            .min_by_key(|&w| free[w])
            .expect("workers");
        let id = JobId::new(cluster, proc);
        let dispatched = free[w] + rng.range(1, 400);
        let started = dispatched + rng.range(5, 80);
        let completed = started + rng.range(60_000, 600_000);
        free[w] = completed;
        timed.push((
            dispatched,
            1,
            Event::JobDispatched {
                job: id,
                attempt: 1,
                holder: format!("worker-{w:04}"),
                at: dispatched,
            },
        ));
        timed.push((
            started,
            2,
            Event::JobStarted {
                job: id,
                attempt: 1,
                at: started,
            },
        ));
        timed.push((
            completed,
            3,
            Event::JobCompleted {
                job: id,
                attempt: 1,
                outcome: Outcome::Exited {
                    code: if rng.range(0, 50) == 0 { 1 } else { 0 },
                },
                at: completed,
            },
        ));
    }
    timed.sort_by_key(|(at, order, _)| (*at, *order));
    timed.into_iter().map(|(_, _, e)| e).collect()
}

#[test]
fn a_sealed_job_costs_under_100_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let events = events();
    let total = events.len() as u64;
    let mut w = Writer::start(store.clone(), 1, 64);
    let (tx, rx) = mpsc::channel();
    for chunk in events.chunks(GROUP) {
        let tx = tx.clone();
        w.append(
            chunk.to_vec(),
            vec![],
            Box::new(move |r| tx.send(r).unwrap()),
        );
    }
    drop(tx);
    for r in rx {
        r.expect("journal write");
    }
    w.shutdown();
    assert_eq!(store.last_seq().unwrap(), total);

    let t0 = std::time::Instant::now();
    let report = store.seal_through(total).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    // Sled keeps its newest segment (the writer may have grouped many
    // appends into it, up to 20,000 events).
    let sealed = store.sealed().unwrap();
    assert_eq!(sealed.last_seq(), Some(report.events));
    assert!(report.events < total && report.events >= total - 20_000);
    assert_eq!(store.event_count() as u64, total);

    let on_disk = sealed.total_bytes();
    let sealed_jobs = (report.events as f64 / total as f64) * JOBS as f64;
    let per_job = on_disk as f64 / sealed_jobs;
    println!(
        "sealed {} events of {JOBS} jobs in {} file(s): {} raw bytes -> {on_disk} on disk, \
         {per_job:.1} bytes per job ({:.1}x); {:.0} events/s, {:.1} MB/s raw ({} build)",
        report.events,
        report.files.len(),
        report.raw_bytes,
        report.raw_bytes as f64 / on_disk as f64,
        report.events as f64 / secs,
        report.raw_bytes as f64 / secs / 1e6,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    assert!(per_job < 100.0, "{per_job:.1} bytes per job");

    // And every event reads back, in order, from the file and sled alike.
    let mut next = 1;
    for item in store.events_from(1) {
        let (seq, env) = item.unwrap();
        assert_eq!(seq, next);
        assert_eq!(env.e, events[(seq - 1) as usize]);
        next += 1;
    }
    assert_eq!(next, total + 1);
}
