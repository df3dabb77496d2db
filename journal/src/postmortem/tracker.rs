//! A compact fold of the event stream for analyses that must not replay a
//! [`Table`](crate::Table): `stats` and `plot` over tens of millions of
//! events. It follows `Table::apply`'s rules (an event that does not fit the
//! job's state changes nothing) but keeps per-job state only while a job is
//! live (out on a holder, requeued, held); a finished job is one bit in its
//! cluster's bitset, and a job never dispatched costs nothing (clusters are
//! `queue N` records, as in the table).
//!
//! Each event yields an [`Effect`]: what it did, with the durations the
//! analyses want (queue wait, run time), so that they need no state of their
//! own per job.

use crate::counts::Counts;
use crate::event::Event;
use pilotq_wire::{JobId, JobStatus, Outcome};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher for our integer keys: SipHash's resistance to
/// chosen keys buys nothing for a journal we read, and costs a third of a
/// 15-million-event scan.
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Holder names, each stored once, by a small number.
#[derive(Debug, Default)]
pub struct Holders {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Holders {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", |n| n)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A live job's state, as far as the analyses care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Requeued or released: waiting again.
    Idle,
    Assigned,
    Running,
    /// Held; `kept` when its finished result was kept (it may still
    /// complete with that attempt).
    Held {
        kept: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Live {
    state: State,
    attempt: u32,
    /// The holder it is (or was last) out on; `u32::MAX`: none yet.
    holder: u32,
    /// When the current attempt started.
    started_at: u64,
    /// Whether any attempt started (the queue wait is to the first start).
    ever_started: bool,
}

const NO_HOLDER: u32 = u32::MAX;

#[derive(Debug, Default)]
struct ClusterInfo {
    count: u32,
    submitted_at: u64,
    removed: bool,
    /// A foreman's adopted cluster: only the jobs it adopted exist.
    adopted: bool,
    /// Processes that are Completed or Removed, one bit each (allocated at
    /// the first).
    done: Vec<u64>,
    /// How many bits of `done` are set.
    done_count: u32,
    /// Live jobs (entries in `Tracker::live`) of this cluster.
    live: u32,
}

impl ClusterInfo {
    fn is_done(&self, proc: u32) -> bool {
        self.done
            .get(proc as usize / 64)
            .is_some_and(|w| w & (1 << (proc % 64)) != 0)
    }

    fn mark_done(&mut self, proc: u32) {
        let i = proc as usize / 64;
        if self.done.len() <= i {
            self.done
                .resize((self.count as usize).div_ceil(64).max(i + 1), 0);
        }
        if self.done[i] & (1 << (proc % 64)) == 0 {
            self.done[i] |= 1 << (proc % 64);
            self.done_count += 1;
        }
    }
}

/// What one event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<'a> {
    /// The event did not fit the job's state (or a cluster already known):
    /// it changed nothing, as in the table.
    Nothing,
    Restart,
    Submitted {
        count: u32,
    },
    Dispatched,
    /// An attempt started; `queue_wait_ms` for a job's first start (from its
    /// cluster's submission).
    Started {
        queue_wait_ms: Option<u64>,
    },
    /// The job completed; `run_ms` from its attempt's start (none if it was
    /// never reported started), on `holder`.
    Completed {
        run_ms: Option<u64>,
        holder: Option<&'a str>,
        outcome: &'a Outcome,
    },
    /// The holder of the attempt was lost.
    Requeued {
        holder: Option<&'a str>,
    },
    Held {
        holder: Option<&'a str>,
    },
    Released,
    /// Jobs removed (one, or a cluster's live ones).
    Removed {
        jobs: u64,
    },
    /// A foreman adopted the job, or an attempt moved holder.
    Adopted,
    Moved,
}

/// The fold. `counts()` are the table's counts after the events so far.
#[derive(Debug, Default)]
pub struct Tracker {
    clusters: IntMap<u64, ClusterInfo>,
    live: IntMap<JobId, Live>,
    pub holders: Holders,
    counts: Counts,
    restarts: u64,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Jobs with state held here now (out, requeued, held): the memory the
    /// fold needs, whatever the journal's length.
    pub fn live_jobs(&self) -> usize {
        self.live.len()
    }

    fn status(s: State) -> JobStatus {
        match s {
            State::Idle | State::Assigned => JobStatus::Idle,
            State::Running => JobStatus::Running,
            State::Held { .. } => JobStatus::Held,
        }
    }

    /// The job's state: `Ok(Some)` live, `Ok(None)` never touched and idle,
    /// `Err(())` final or not a job.
    fn lookup(&self, job: JobId) -> Result<Option<Live>, ()> {
        let c = self.clusters.get(&job.cluster.0).ok_or(())?;
        if let Some(l) = self.live.get(&job) {
            return Ok(Some(*l));
        }
        if job.proc >= c.count || c.removed || c.adopted || c.is_done(job.proc) {
            return Err(());
        }
        Ok(None)
    }

    fn set_live(&mut self, job: JobId, l: Live) {
        if self.live.insert(job, l).is_none() {
            if let Some(c) = self.clusters.get_mut(&job.cluster.0) {
                c.live += 1;
            }
        }
    }

    /// Ends a job (Completed or Removed): out of the live map, a bit set.
    fn finish(&mut self, job: JobId, from: JobStatus, to: JobStatus) {
        self.counts.sub(from);
        self.counts.add(to);
        let was_live = self.live.remove(&job).is_some();
        if let Some(c) = self.clusters.get_mut(&job.cluster.0) {
            if was_live {
                c.live -= 1;
            }
            c.mark_done(job.proc);
        }
    }

    fn holder(holders: &Holders, id: u32) -> Option<&str> {
        (id != NO_HOLDER).then(|| holders.name(id))
    }

    pub fn apply<'a>(&'a mut self, e: &'a Event) -> Effect<'a> {
        match e {
            Event::MasterStarted { .. } => {
                self.restarts += 1;
                Effect::Restart
            }
            Event::ClusterSubmitted {
                cluster, count, at, ..
            } => {
                if self.clusters.contains_key(&cluster.0) {
                    return Effect::Nothing;
                }
                self.clusters.insert(
                    cluster.0,
                    ClusterInfo {
                        count: *count,
                        submitted_at: *at,
                        ..ClusterInfo::default()
                    },
                );
                self.counts.idle += u64::from(*count);
                Effect::Submitted { count: *count }
            }
            Event::JobDispatched {
                job,
                attempt,
                holder,
                ..
            } => {
                let prev = match self.lookup(*job) {
                    Ok(None) => None,
                    Ok(Some(l)) if l.state == State::Idle => Some(l),
                    _ => return Effect::Nothing,
                };
                let h = self.holders.id(holder);
                self.set_live(
                    *job,
                    Live {
                        state: State::Assigned,
                        attempt: *attempt,
                        holder: h,
                        started_at: 0,
                        ever_started: prev.is_some_and(|l| l.ever_started),
                    },
                );
                Effect::Dispatched
            }
            Event::JobStarted { job, attempt, at } => {
                let Some(l) = self.live.get_mut(job) else {
                    return Effect::Nothing;
                };
                if l.state != State::Assigned || l.attempt != *attempt {
                    return Effect::Nothing;
                }
                l.state = State::Running;
                l.started_at = *at;
                let first = !l.ever_started;
                l.ever_started = true;
                self.counts.sub(JobStatus::Idle);
                self.counts.add(JobStatus::Running);
                let queue_wait_ms = if first {
                    self.clusters
                        .get(&job.cluster.0)
                        .map(|c| at.saturating_sub(c.submitted_at))
                } else {
                    None
                };
                Effect::Started { queue_wait_ms }
            }
            Event::JobCompleted {
                job,
                attempt,
                outcome,
                at,
            } => {
                let Some(l) = self.live.get(job).copied() else {
                    return Effect::Nothing;
                };
                let completes = match l.state {
                    State::Assigned | State::Running => l.attempt == *attempt,
                    State::Held { kept } => kept == Some(*attempt),
                    State::Idle => false,
                };
                if !completes {
                    return Effect::Nothing;
                }
                let run_ms = (l.started_at > 0 && l.attempt == *attempt)
                    .then(|| at.saturating_sub(l.started_at));
                self.finish(*job, Self::status(l.state), JobStatus::Completed);
                Effect::Completed {
                    run_ms,
                    holder: Self::holder(&self.holders, l.holder),
                    outcome,
                }
            }
            Event::JobRequeued { job, attempt, .. } => {
                let Some(l) = self.live.get_mut(job) else {
                    return Effect::Nothing;
                };
                if !matches!(l.state, State::Assigned | State::Running) || l.attempt != *attempt {
                    return Effect::Nothing;
                }
                let from = Self::status(l.state);
                l.state = State::Idle;
                let h = l.holder;
                self.counts.sub(from);
                self.counts.add(JobStatus::Idle);
                Effect::Requeued {
                    holder: Self::holder(&self.holders, h),
                }
            }
            Event::JobHeld { job, kept, .. } => {
                let prev = match self.lookup(*job) {
                    Ok(p) => p,
                    Err(()) => return Effect::Nothing,
                };
                if prev.is_some_and(|l| matches!(l.state, State::Held { .. })) {
                    // Held again (a failed release of a kept result): a new
                    // reason, nothing else.
                    return Effect::Nothing;
                }
                let from = prev.map_or(JobStatus::Idle, |l| Self::status(l.state));
                let mut l = prev.unwrap_or(Live {
                    state: State::Idle,
                    attempt: 0,
                    holder: NO_HOLDER,
                    started_at: 0,
                    ever_started: false,
                });
                let holder = match l.state {
                    State::Assigned | State::Running => l.holder,
                    _ => NO_HOLDER,
                };
                l.state = State::Held {
                    kept: kept.as_ref().map(|k| k.attempt),
                };
                if let Some(k) = kept {
                    l.attempt = k.attempt;
                }
                self.set_live(*job, l);
                self.counts.sub(from);
                self.counts.add(JobStatus::Held);
                Effect::Held {
                    holder: Self::holder(&self.holders, holder),
                }
            }
            Event::JobReleased { job, .. } => match self.live.get_mut(job) {
                Some(l) if l.state == (State::Held { kept: None }) => {
                    l.state = State::Idle;
                    self.counts.sub(JobStatus::Held);
                    self.counts.add(JobStatus::Idle);
                    Effect::Released
                }
                _ => Effect::Nothing,
            },
            Event::JobRemoved { job, .. } => {
                let from = match self.lookup(*job) {
                    Ok(None) => JobStatus::Idle,
                    Ok(Some(l)) => Self::status(l.state),
                    Err(()) => return Effect::Nothing,
                };
                self.finish(*job, from, JobStatus::Removed);
                Effect::Removed { jobs: 1 }
            }
            Event::ClusterRemoved { cluster, .. } => {
                let Some(c) = self.clusters.get_mut(&cluster.0) else {
                    return Effect::Nothing;
                };
                if c.removed {
                    return Effect::Nothing;
                }
                c.removed = true;
                // Never-dispatched jobs: everything neither live nor done.
                let fresh = if c.adopted {
                    0
                } else {
                    u64::from(c.count) - u64::from(c.done_count) - u64::from(c.live)
                };
                let had_live = c.live > 0;
                c.live = 0;
                let mut removed = fresh;
                self.counts.idle = self.counts.idle.saturating_sub(fresh);
                self.counts.removed += fresh;
                if had_live {
                    // Rare (a removal), and bounded by the jobs live now.
                    let counts = &mut self.counts;
                    self.live.retain(|id, l| {
                        if id.cluster != *cluster {
                            return true;
                        }
                        counts.sub(Self::status(l.state));
                        counts.add(JobStatus::Removed);
                        removed += 1;
                        false
                    });
                }
                // Every job is final now; the bitset is no longer needed.
                let c = self.clusters.get_mut(&cluster.0).expect("present");
                c.done = Vec::new();
                Effect::Removed { jobs: removed }
            }
            Event::JobAdopted {
                job, attempt, at, ..
            } => {
                let end = job.proc.saturating_add(1);
                let c = self.clusters.entry(job.cluster.0).or_insert(ClusterInfo {
                    adopted: true,
                    submitted_at: *at,
                    ..ClusterInfo::default()
                });
                if !c.adopted {
                    return Effect::Nothing;
                }
                c.count = c.count.max(end);
                match self.live.get_mut(job) {
                    Some(l) => {
                        if l.attempt >= *attempt && !matches!(l.state, State::Idle) {
                            return Effect::Nothing;
                        }
                        let from = Self::status(l.state);
                        l.state = State::Idle;
                        l.attempt = attempt.saturating_sub(1);
                        self.counts.sub(from);
                        self.counts.add(JobStatus::Idle);
                    }
                    None => {
                        self.set_live(
                            *job,
                            Live {
                                state: State::Idle,
                                attempt: attempt.saturating_sub(1),
                                holder: NO_HOLDER,
                                started_at: 0,
                                ever_started: false,
                            },
                        );
                        self.counts.idle += 1;
                    }
                }
                Effect::Adopted
            }
            Event::JobMoved {
                job,
                attempt,
                holder,
                ..
            } => {
                let h = self.holders.id(holder);
                match self.live.get_mut(job) {
                    Some(l)
                        if matches!(l.state, State::Assigned | State::Running)
                            && l.attempt == *attempt =>
                    {
                        l.holder = h;
                        Effect::Moved
                    }
                    _ => Effect::Nothing,
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Table;
    use pilotq_wire::{ClusterId, JobSpec, Resources};

    pub(crate) fn spec() -> Box<JobSpec> {
        Box::new(JobSpec {
            executable: "00".into(),
            cmd: "true".into(),
            arguments: vec![],
            environment: Default::default(),
            output: None,
            error: None,
            log: None,
            request: Resources::new(1, 1, 1),
            priority: 0,
            attributes: Default::default(),
            owner: "o".into(),
            iwd: "/".into(),
            tags: vec![],
            leave_in_queue: false,
        })
    }

    /// A journal's worth of events touching every rule, stale ones included.
    pub(crate) fn story() -> Vec<Event> {
        let j = |p| JobId::new(1, p);
        let k = |p| JobId::new(2, p);
        vec![
            Event::MasterStarted {
                name: "m".into(),
                at: 1_000,
            },
            Event::ClusterSubmitted {
                cluster: ClusterId(1),
                count: 5,
                spec: spec(),
                at: 1_000,
            },
            Event::ClusterSubmitted {
                cluster: ClusterId(2),
                count: 3,
                spec: spec(),
                at: 1_500,
            },
            Event::JobDispatched {
                job: j(0),
                attempt: 1,
                holder: "w1".into(),
                at: 2_000,
            },
            Event::JobDispatched {
                job: j(1),
                attempt: 1,
                holder: "w1".into(),
                at: 2_000,
            },
            Event::JobDispatched {
                job: k(0),
                attempt: 1,
                holder: "w2".into(),
                at: 2_000,
            },
            Event::JobStarted {
                job: j(0),
                attempt: 1,
                at: 3_000,
            },
            Event::JobStarted {
                job: j(1),
                attempt: 1,
                at: 3_500,
            },
            // Stale: attempt 2 was never dispatched.
            Event::JobStarted {
                job: k(0),
                attempt: 2,
                at: 3_500,
            },
            Event::JobCompleted {
                job: j(0),
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                at: 13_000,
            },
            // Twice: the second changes nothing.
            Event::JobCompleted {
                job: j(0),
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                at: 13_000,
            },
            Event::JobRequeued {
                job: j(1),
                attempt: 1,
                reason: "holder w1 lost".into(),
                at: 20_000,
            },
            Event::MasterStarted {
                name: "m".into(),
                at: 30_000,
            },
            Event::JobDispatched {
                job: j(1),
                attempt: 2,
                holder: "w2".into(),
                at: 31_000,
            },
            Event::JobStarted {
                job: j(1),
                attempt: 2,
                at: 32_000,
            },
            Event::JobCompleted {
                job: j(1),
                attempt: 2,
                outcome: Outcome::Signalled { signal: 9 },
                at: 35_000,
            },
            Event::JobHeld {
                job: j(2),
                reason: "bad".into(),
                at: 36_000,
                kept: None,
            },
            Event::JobReleased {
                job: j(2),
                at: 37_000,
            },
            Event::JobRemoved {
                job: j(3),
                at: 38_000,
            },
            // Removing a finished job changes nothing.
            Event::JobRemoved {
                job: j(0),
                at: 38_000,
            },
            Event::JobDispatched {
                job: k(1),
                attempt: 1,
                holder: "w2".into(),
                at: 39_000,
            },
            Event::JobStarted {
                job: k(1),
                attempt: 1,
                at: 39_500,
            },
            Event::ClusterRemoved {
                cluster: ClusterId(2),
                at: 40_000,
            },
            // After the cluster's removal: nothing.
            Event::JobDispatched {
                job: k(2),
                attempt: 1,
                holder: "w2".into(),
                at: 41_000,
            },
            Event::ClusterRemoved {
                cluster: ClusterId(2),
                at: 42_000,
            },
            Event::JobDispatched {
                job: j(4),
                attempt: 1,
                holder: "w1".into(),
                at: 43_000,
            },
            Event::JobStarted {
                job: j(4),
                attempt: 1,
                at: 44_000,
            },
            Event::JobCompleted {
                job: j(4),
                attempt: 1,
                outcome: Outcome::Exited { code: 3 },
                at: 50_000,
            },
        ]
    }

    #[test]
    fn counts_follow_the_table_event_by_event() {
        let mut t = Table::new();
        let mut tr = Tracker::new();
        for (i, e) in story().iter().enumerate() {
            t.apply(e);
            tr.apply(e);
            // Finished jobs may leave the table's queue for its history
            // store: the table counts them apart.
            let (mine, table, left) = (tr.counts(), t.counts(), t.left());
            assert_eq!(
                (mine.idle, mine.running, mine.held),
                (table.idle, table.running, table.held),
                "after event {i}: {e:?}"
            );
            assert_eq!(
                (mine.completed, mine.removed),
                (
                    table.completed + left.completed,
                    table.removed + left.removed
                ),
                "after event {i}: {e:?}"
            );
        }
        let c = tr.counts();
        assert_eq!(
            (c.idle, c.running, c.held, c.completed, c.removed),
            (1, 0, 0, 3, 4)
        );
        assert_eq!(tr.restarts(), t.restarts());
        // Only the live jobs are held: 1.2 (released, idle again).
        assert_eq!(tr.live_jobs(), 1);
    }

    #[test]
    fn effects_carry_the_durations() {
        let mut tr = Tracker::new();
        let events = story();
        let effects: Vec<String> = events
            .iter()
            .map(|e| format!("{:?}", tr.apply(e)))
            .collect();
        assert_eq!(effects[6], "Started { queue_wait_ms: Some(2000) }");
        assert_eq!(effects[8], "Nothing");
        assert_eq!(
            effects[9],
            r#"Completed { run_ms: Some(10000), holder: Some("w1"), outcome: Exited { code: 0 } }"#
        );
        assert_eq!(effects[10], "Nothing");
        assert_eq!(effects[11], r#"Requeued { holder: Some("w1") }"#);
        // The second start of 1.1 is not a queue wait.
        assert_eq!(effects[14], "Started { queue_wait_ms: None }");
        assert_eq!(effects[19], "Nothing");
        // 2.0 (assigned), 2.1 (running), 2.2 (never dispatched).
        assert_eq!(effects[22], "Removed { jobs: 3 }");
        assert_eq!(effects[23], "Nothing");
        assert_eq!(effects[24], "Nothing");
    }

    #[test]
    fn a_hasher_spreads_job_ids() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..100u64 {
            for p in 0..100u32 {
                let mut h = IntHasher::default();
                std::hash::Hash::hash(&JobId::new(c, p), &mut h);
                seen.insert(h.finish() >> 50);
            }
        }
        // 10,000 ids over 16,384 buckets of the top bits: well spread.
        assert!(seen.len() > 5_000, "{}", seen.len());
    }
}
