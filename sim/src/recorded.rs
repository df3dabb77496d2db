//! The workload of a recorded journal, for `pilotq sim --replay JOURNAL_DIR`.
//!
//! A synthetic workload only has the shape we thought of; a master's journal
//! holds the load that really came: which clusters, how big, how far apart,
//! and how long each job ran. Replaying it lets a change to the master be
//! tried on the very day that showed a problem.
//!
//! The journal is streamed once from its first event (a snapshot would not
//! do: it holds each job's state, not how long it ran). Which completion
//! counts follows the table's own rules (`Table::apply`): today's master only
//! journals the current attempt's completion, but the table would refuse a
//! late report of an attempt whose holder it had given up on (the format-1
//! fixture journal holds one), so a run time is only taken from the attempt
//! that was current when it completed.
//!
//! Memory stays proportional to the jobs, not to the events (a journal can
//! hold millions): one `u32` per job, which becomes its run time in the plan,
//! and a map entry only for the jobs out on a holder at that point of the
//! recording.

use crate::workload::{ClusterPlan, DurationDist, Workload};
use anyhow::{bail, Context, Result};
use pilotq_journal::{Event, JournalError, Store};
use pilotq_wire::{ClusterId, JobId, JobSpec};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A job's slot while reading: not completed (yet).
const PENDING: u32 = u32::MAX;
/// A job's slot while reading: held or removed, so never dispatched again
/// (the table only hands out idle jobs) and given a fallback run time.
const SETTLED: u32 = u32::MAX - 1;
/// The longest recorded run kept (about 49 days): below the two markers, so
/// a slot is never mistaken for one.
const MAX_RUN_MS: u32 = u32::MAX - 2;

/// Reads the journal at `dir` (a master's journal directory) and returns its
/// workload: one [`ClusterPlan`] per `ClusterSubmitted`, `at` its submission
/// time relative to the first submission, `spec` the recorded spec made safe
/// to resubmit (see [`resubmittable`]), and `run_ms[proc]` the recorded run
/// time of the attempt that completed that job (completion − that attempt's
/// start, or its dispatch when no start was recorded; at least 0). Jobs that
/// never completed in the recording (removed, held, still idle or running)
/// get a time drawn from `fallback` with an RNG seeded by `seed`, so the same
/// journal and seed give the same workload.
pub fn load(dir: &Path, fallback: DurationDist, seed: u64) -> Result<Workload> {
    let store = open(dir)?;
    let mut reader = Reader::default();
    for item in store.events_from(1) {
        let (_, envelope) =
            item.with_context(|| format!("reading the journal at {}", dir.display()))?;
        reader.apply(envelope.e);
    }
    if reader.clusters.is_empty() {
        let hint = if reader.adopted {
            ": it holds adopted jobs only, as a foreman's journal does; replay its master's"
        } else {
            ""
        };
        bail!(
            "no cluster submissions in the journal at {}: nothing to replay{hint}",
            dir.display()
        );
    }
    let (workload, recorded, drawn) = reader.finish(fallback, seed);
    tracing::info!(
        clusters = workload.clusters.len(),
        recorded,
        drawn,
        "workload read from the journal at {}",
        dir.display()
    );
    Ok(workload)
}

/// One line for humans: clusters, jobs, over how long they were submitted,
/// and the mean run time.
pub fn summary(w: &Workload) -> String {
    let first = w.clusters.iter().map(|c| c.at).min().unwrap_or_default();
    let last = w.clusters.iter().map(|c| c.at).max().unwrap_or_default();
    let jobs = w.jobs();
    let total_ms: u64 = w
        .clusters
        .iter()
        .flat_map(|c| c.run_ms.iter())
        .map(|&ms| u64::from(ms))
        .sum();
    let mean = Duration::from_millis(total_ms.checked_div(jobs).unwrap_or(0));
    format!(
        "{}, {}, submitted over {}, mean run time {}",
        plural(w.clusters.len() as u64, "cluster"),
        plural(jobs, "job"),
        humantime::format_duration(last - first),
        humantime::format_duration(mean)
    )
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The recorded spec, made safe to submit again: the master writes a job's
/// output, error and log at these submit-side paths, which belong to the
/// recording's users, and simulated workers offer no tags, so a tagged job
/// would never run. What shapes scheduling (request, priority, owner) and the
/// rest stay; the executable is replaced by the simulator's own when it
/// submits.
pub fn resubmittable(mut spec: JobSpec) -> JobSpec {
    spec.output = None;
    spec.error = None;
    spec.log = None;
    spec.tags.clear();
    spec
}

/// Opens the journal for reading, with errors that say what to do.
fn open(dir: &Path) -> Result<Store> {
    match Store::open_existing(dir) {
        Ok(store) => Ok(store),
        Err(e @ JournalError::Locked { .. }) => Err(anyhow::Error::new(e).context(format!(
            "the journal at {} is in use by a running master: stop the master, \
             or copy the directory (cp -r) and replay the copy",
            dir.display()
        ))),
        // It names the path and what is wrong with it already.
        Err(e @ JournalError::Missing { .. }) => Err(e.into()),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("opening the journal at {}", dir.display())))
        }
    }
}

/// A cluster as recorded so far.
struct Recording {
    spec: JobSpec,
    submitted_at: u64,
    /// `ClusterRemoved`: its jobs not completed by then never run again.
    removed: bool,
    /// Per process: its run time once completed, else [`PENDING`] or
    /// [`SETTLED`].
    slots: Vec<u32>,
}

/// The attempt of a job out on a holder, as the table tracks it.
struct Out {
    attempt: u32,
    dispatched_at: u64,
    started_at: Option<u64>,
}

/// The fold of the journal's events into run times.
#[derive(Default)]
struct Reader {
    clusters: Vec<Recording>,
    index: HashMap<ClusterId, usize>,
    /// Jobs dispatched and neither completed, requeued, held nor removed:
    /// at most the jobs running at one time, not every job.
    out: HashMap<JobId, Out>,
    /// Whether any job came by adoption (a foreman's journal), for the error
    /// when there is nothing else.
    adopted: bool,
}

impl Reader {
    fn apply(&mut self, event: Event) {
        match event {
            Event::ClusterSubmitted {
                cluster,
                count,
                spec,
                at,
            } => {
                // As in the table, a second submission under a known id
                // changes nothing. The master refuses `queue 0`, but an
                // empty plan could not be submitted again: skip it.
                if count == 0 || self.index.contains_key(&cluster) {
                    return;
                }
                self.index.insert(cluster, self.clusters.len());
                self.clusters.push(Recording {
                    spec: resubmittable(*spec),
                    submitted_at: at,
                    removed: false,
                    slots: vec![PENDING; count as usize],
                });
            }
            Event::JobDispatched {
                job, attempt, at, ..
            } => {
                // The table hands out idle jobs only: not one already out,
                // completed, held or removed.
                let idle = self.recording(job.cluster).is_some_and(|c| {
                    !c.removed && c.slots.get(job.proc as usize) == Some(&PENDING)
                });
                if idle && !self.out.contains_key(&job) {
                    self.out.insert(
                        job,
                        Out {
                            attempt,
                            dispatched_at: at,
                            started_at: None,
                        },
                    );
                }
            }
            Event::JobStarted { job, attempt, at } => {
                if let Some(o) = self.out.get_mut(&job) {
                    if o.attempt == attempt && o.started_at.is_none() {
                        o.started_at = Some(at);
                    }
                }
            }
            Event::JobCompleted {
                job, attempt, at, ..
            } => {
                // Only the current attempt's completion counts: a late report
                // from a holder given up on (requeued) is refused.
                match self.out.get(&job) {
                    Some(o) if o.attempt == attempt => {}
                    _ => return,
                }
                let o = self.out.remove(&job).expect("checked above");
                let from = o.started_at.unwrap_or(o.dispatched_at);
                // Clocks step back: a negative run is taken as none.
                let ms = at.saturating_sub(from).min(u64::from(MAX_RUN_MS)) as u32;
                if let Some(slot) = self.slot(job) {
                    *slot = ms;
                }
            }
            Event::JobRequeued { job, attempt, .. } => {
                if self.out.get(&job).is_some_and(|o| o.attempt == attempt) {
                    self.out.remove(&job);
                }
            }
            Event::JobHeld { job, .. } | Event::JobRemoved { job, .. } => {
                self.out.remove(&job);
                if let Some(slot) = self.slot(job) {
                    if *slot == PENDING {
                        *slot = SETTLED;
                    }
                }
            }
            Event::ClusterRemoved { cluster, .. } => {
                if let Some(c) = self.recording(cluster) {
                    c.removed = true;
                    self.out.retain(|job, _| job.cluster != cluster);
                }
            }
            Event::JobAdopted { .. } => self.adopted = true,
            // Neither changes which attempt is current.
            Event::JobMoved { .. } | Event::MasterStarted { .. } => {}
            // A released job ran before it was held: its run, if it runs
            // again, is not a recorded one.
            Event::JobReleased { .. } => {}
        }
    }

    fn recording(&mut self, cluster: ClusterId) -> Option<&mut Recording> {
        let i = *self.index.get(&cluster)?;
        self.clusters.get_mut(i)
    }

    fn slot(&mut self, job: JobId) -> Option<&mut u32> {
        self.recording(job.cluster)?
            .slots
            .get_mut(job.proc as usize)
    }

    /// The workload, with how many run times were recorded and how many
    /// drawn from `fallback`.
    fn finish(self, fallback: DurationDist, seed: u64) -> (Workload, u64, u64) {
        // The earliest submission, which is the first unless the master's
        // clock stepped back between two.
        let t0 = self
            .clusters
            .iter()
            .map(|c| c.submitted_at)
            .min()
            .unwrap_or(0);
        // Drawn in cluster then process order: the same journal and seed give
        // the same times.
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut recorded, mut drawn) = (0, 0);
        let clusters = self
            .clusters
            .into_iter()
            .map(|c| {
                let mut run_ms = c.slots;
                for ms in &mut run_ms {
                    if *ms == PENDING || *ms == SETTLED {
                        *ms = fallback.sample_ms(&mut rng);
                        drawn += 1;
                    } else {
                        recorded += 1;
                    }
                }
                ClusterPlan {
                    at: Duration::from_millis(c.submitted_at - t0),
                    spec: c.spec,
                    run_ms,
                }
            })
            .collect();
        (Workload { clusters }, recorded, drawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_journal::Writer;
    use pilotq_wire::{Outcome, Resources};
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Unix ms of the recording's first event; every `at` counts from it.
    const T0: u64 = 1_700_000_000_000;
    /// The fallback in exact checks: a time no recorded job has.
    const FALLBACK_MS: u64 = 42_000;

    fn spec() -> JobSpec {
        JobSpec {
            executable: "ab12".repeat(16),
            cmd: "pilot.sh".into(),
            arguments: vec!["--queue".into(), "alice".into()],
            environment: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
            output: Some("/home/alice/out/$(Cluster).$(Process).out".into()),
            error: Some("/home/alice/out/$(Cluster).$(Process).err".into()),
            log: Some("/home/alice/out/pilot.log".into()),
            request: Resources::new(2, 4_000, 1_000),
            priority: 5,
            attributes: BTreeMap::from([("GridResource".into(), "\"batch pilotq\"".into())]),
            owner: "alice".into(),
            iwd: "/home/alice".into(),
            tags: vec!["gpu".into()],
            leave_in_queue: false,
        }
    }

    fn job(cluster: u64, proc: u32) -> JobId {
        JobId::new(cluster, proc)
    }

    fn submitted(cluster: u64, count: u32, at: u64) -> Event {
        Event::ClusterSubmitted {
            cluster: ClusterId(cluster),
            count,
            spec: Box::new(spec()),
            at: T0 + at,
        }
    }

    fn dispatched(j: JobId, attempt: u32, at: u64) -> Event {
        Event::JobDispatched {
            job: j,
            attempt,
            holder: "worker-a".into(),
            at: T0 + at,
        }
    }

    fn started(j: JobId, attempt: u32, at: u64) -> Event {
        Event::JobStarted {
            job: j,
            attempt,
            at: T0 + at,
        }
    }

    fn completed(j: JobId, attempt: u32, at: u64) -> Event {
        Event::JobCompleted {
            job: j,
            attempt,
            outcome: Outcome::Exited { code: 0 },
            at: T0 + at,
        }
    }

    /// Two clusters submitted 1.5 s apart. Cluster 1 (4 jobs): 1.0 runs 10 s;
    /// 1.1 is requeued, runs 2.5 s on its 2nd attempt, and a late report of
    /// its 1st is refused; 1.2 completes 1.234 s after its dispatch with no
    /// start recorded; 1.3 is removed. Cluster 2 (3 jobs): 2.0 runs 0.777 s;
    /// 2.1 completes before its recorded start (clock step): 0; 2.2 is still
    /// running at the end.
    fn script() -> Vec<Vec<Event>> {
        vec![
            vec![Event::MasterStarted {
                name: "recorded".into(),
                at: T0,
            }],
            vec![submitted(1, 4, 1_000)],
            vec![submitted(2, 3, 2_500)],
            vec![
                dispatched(job(1, 0), 1, 3_000),
                dispatched(job(1, 1), 1, 3_000),
                dispatched(job(1, 2), 1, 3_000),
                dispatched(job(2, 0), 1, 3_000),
                dispatched(job(2, 1), 1, 3_000),
                dispatched(job(2, 2), 1, 3_000),
            ],
            vec![started(job(1, 0), 1, 3_100), started(job(1, 1), 1, 3_200)],
            vec![
                started(job(2, 0), 1, 3_223),
                started(job(2, 1), 1, 5_000),
                started(job(2, 2), 1, 5_000),
            ],
            vec![
                completed(job(2, 0), 1, 4_000),
                completed(job(2, 1), 1, 4_000),
            ],
            vec![Event::JobRemoved {
                job: job(1, 3),
                at: T0 + 4_000,
            }],
            vec![completed(job(1, 2), 1, 4_234)],
            vec![Event::JobRequeued {
                job: job(1, 1),
                attempt: 1,
                reason: "worker-a lost".into(),
                at: T0 + 5_000,
            }],
            vec![
                dispatched(job(1, 1), 2, 6_000),
                started(job(1, 1), 2, 6_500),
            ],
            // The lost holder's late report: refused.
            vec![completed(job(1, 1), 1, 7_000)],
            vec![completed(job(1, 1), 2, 9_000)],
            vec![completed(job(1, 0), 1, 13_100)],
            // A duplicate report of a completed job: refused too.
            vec![completed(job(1, 0), 1, 20_000)],
        ]
    }

    /// Writes `groups` with the master's own writer, one durable append each.
    fn write_journal(dir: &Path, groups: Vec<Vec<Event>>) {
        let store = Store::open(dir).expect("create the journal");
        let mut writer = Writer::start(store, 1, 16);
        for events in groups {
            let (tx, rx) = mpsc::channel();
            writer.append(
                events,
                vec![],
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
            rx.recv().expect("completion").expect("durable");
        }
        writer.shutdown();
    }

    fn recorded_journal() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_journal(dir.path(), script());
        dir
    }

    fn is_locked(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            matches!(
                c.downcast_ref::<JournalError>(),
                Some(JournalError::Locked { .. })
            )
        })
    }

    /// `load`, waiting for sled to let go of its file lock: it does so a
    /// moment after the last handle in this process is dropped (a new
    /// process never waits).
    fn load_when_free(dir: &Path, fallback: DurationDist, seed: u64) -> Result<Workload> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match load(dir, fallback, seed) {
                Err(e) if is_locked(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return other,
            }
        }
    }

    fn fixed_fallback() -> DurationDist {
        DurationDist::Fixed(Duration::from_millis(FALLBACK_MS))
    }

    #[test]
    fn a_recorded_journal_becomes_its_workload() {
        let dir = recorded_journal();
        let w = load_when_free(dir.path(), fixed_fallback(), 1).unwrap();

        let at: Vec<Duration> = w.clusters.iter().map(|c| c.at).collect();
        assert_eq!(at, [Duration::ZERO, Duration::from_millis(1_500)]);
        let counts: Vec<u32> = w.clusters.iter().map(ClusterPlan::count).collect();
        assert_eq!(counts, [4, 3]);
        let f = FALLBACK_MS as u32;
        assert_eq!(w.clusters[0].run_ms, [10_000, 2_500, 1_234, f]);
        assert_eq!(w.clusters[1].run_ms, [777, 0, f]);

        for c in &w.clusters {
            let (s, recorded) = (&c.spec, spec());
            assert_eq!((&s.output, &s.error, &s.log), (&None, &None, &None));
            assert!(s.tags.is_empty(), "tags kept: {:?}", s.tags);
            // Everything else is as recorded.
            let expected = JobSpec {
                output: None,
                error: None,
                log: None,
                tags: vec![],
                ..recorded
            };
            assert_eq!(*s, expected);
        }

        assert_eq!(
            summary(&w),
            "2 clusters, 7 jobs, submitted over 1s 500ms, mean run time 14s 73ms"
        );
    }

    #[test]
    fn jobs_never_completed_draw_from_the_fallback_by_seed() {
        let dir = recorded_journal();
        let dist = DurationDist::Uniform {
            low: Duration::from_secs(1),
            high: Duration::from_secs(3_600),
        };
        let a = load_when_free(dir.path(), dist, 7).unwrap();
        let b = load_when_free(dir.path(), dist, 7).unwrap();
        let c = load_when_free(dir.path(), dist, 8).unwrap();
        // 1.3 (removed) and 2.2 (still running) never completed.
        let drawn = |w: &Workload| [w.clusters[0].run_ms[3], w.clusters[1].run_ms[2]];
        let recorded = |w: &Workload| {
            let mut r = w.clusters[0].run_ms[..3].to_vec();
            r.extend_from_slice(&w.clusters[1].run_ms[..2]);
            r
        };
        assert_eq!(drawn(&a), drawn(&b), "same seed, different draws");
        assert_ne!(drawn(&a), drawn(&c), "another seed, the same draws");
        for ms in drawn(&a).into_iter().chain(drawn(&c)) {
            assert!(
                (1_000..=3_600_000).contains(&ms),
                "{ms} ms out of the distribution"
            );
        }
        for w in [&a, &b, &c] {
            assert_eq!(recorded(w), [10_000, 2_500, 1_234, 777, 0]);
        }
    }

    #[test]
    fn a_missing_directory_is_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = load(&missing, fixed_fallback(), 1).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "no journal at {}: no such directory",
                missing.display()
            )),
            "{e}"
        );
        assert!(!missing.exists(), "load created {}", missing.display());
    }

    #[test]
    fn a_directory_without_a_journal_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path(), fixed_fallback(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no journal at"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "load wrote {left:?}");
    }

    #[test]
    fn a_journal_held_by_a_master_is_refused() {
        let dir = recorded_journal();
        // Hold it as a running master would (waiting, as `load_when_free`
        // does, for the writer's handle to let go first).
        let deadline = Instant::now() + Duration::from_secs(5);
        let _held = loop {
            match Store::open(dir.path()) {
                Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => break other.expect("open the journal"),
            }
        };
        let e = load(dir.path(), fixed_fallback(), 1).unwrap_err();
        assert!(is_locked(&e), "{e:#}");
        let e = e.to_string();
        assert!(e.contains("in use by a running master"), "{e}");
        assert!(e.contains("copy"), "{e}");
    }

    #[test]
    fn a_journal_without_submissions_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_journal(
            dir.path(),
            vec![vec![Event::MasterStarted {
                name: "idle".into(),
                at: T0,
            }]],
        );
        let e = load_when_free(dir.path(), fixed_fallback(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no cluster submissions"), "{e}");
    }
}
