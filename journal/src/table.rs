//! The pilot table: every cluster and job, as a pure fold of [`Event`]s.
//!
//! `Table::apply` is total: an event that does not fit the current state (a
//! report for an attempt that is no longer current, a removal of a finished
//! job) changes nothing. The master only appends events it decided against
//! this same table, so in practice every event applies; totality is what
//! makes replay of any journal safe.
//!
//! ## Lazy materialisation
//! A cluster of `queue N` is one record. Process `p` gets its own [`Job`]
//! record only when first dispatched, held or removed. Processes at or after
//! `next_fresh` that have no record are Idle with no attempts (or Removed,
//! once the whole cluster was removed). So a million idle jobs cost one
//! record until they run.
//!
//! ## The queue holds live jobs only
//! A job that completes or is removed leaves the table, as HTCondor's
//! leave the queue for its history file, unless its spec says
//! `leave_in_queue`. Its process number goes into the cluster's `gone`
//! ranges (so it is neither fresh nor Idle), and a cluster whose jobs have
//! all left leaves too. What the job was goes out as a [`Departure`] for the
//! history store, when the table is asked to keep them (the master; a replay
//! does not, the history being already written). So memory follows the live
//! jobs, not every job ever submitted.
//!
//! A foreman's clusters (adopted from its master) stay, spec and `gone`
//! ranges, once empty: its master sends a cluster's spec only with the
//! first job on a connection, and a worker that failed over with an
//! attempt the foreman already finished must find it finished (`has_left`),
//! not adopt it again. A newer attempt from the master itself is adopted.

use crate::counts::Counts;
use crate::departure::{Departed, Departure};
use crate::event::{Event, KeptOutput};
use crate::procs::ProcRanges;
use pilotq_wire::{AttemptKey, ClusterId, JobId, JobSpec, JobStatus, Outcome, Resources};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Idle,
    /// Handed to `holder`, not yet reported started. Shows as Idle (1).
    Assigned {
        holder: Arc<str>,
        attempt: u32,
    },
    Running {
        holder: Arc<str>,
        attempt: u32,
        started_at: u64,
    },
    Completed {
        outcome: Outcome,
    },
    Removed,
    Held {
        reason: String,
        /// A finished attempt's result whose output could not be put in
        /// place; released, the job completes with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<Box<KeptOutput>>,
    },
}

impl JobState {
    pub fn status(&self) -> JobStatus {
        match self {
            JobState::Idle | JobState::Assigned { .. } => JobStatus::Idle,
            JobState::Running { .. } => JobStatus::Running,
            JobState::Completed { .. } => JobStatus::Completed,
            JobState::Removed => JobStatus::Removed,
            JobState::Held { .. } => JobStatus::Held,
        }
    }

    /// A completed job's exit code or signal, as `condor_q` and
    /// `condor_history` show them (`ExitCode`, `ExitSignal`).
    pub fn exit(&self) -> (Option<i32>, Option<i32>) {
        match self {
            JobState::Completed {
                outcome: Outcome::Exited { code },
            } => (Some(*code), None),
            JobState::Completed {
                outcome: Outcome::Signalled { signal },
            } => (None, Some(*signal)),
            _ => (None, None),
        }
    }

    /// The holder and attempt of a job out on a holder.
    pub fn out_on(&self) -> Option<(&Arc<str>, u32)> {
        match self {
            JobState::Assigned { holder, attempt }
            | JobState::Running {
                holder, attempt, ..
            } => Some((holder, *attempt)),
            _ => None,
        }
    }
}

/// A materialised job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub state: JobState,
    /// Dispatches so far; the current attempt's number when out on a holder.
    pub attempts: u32,
    /// Unix ms when the job entered its current state.
    pub entered_at: u64,
    /// On a foreman: the master's attempt this job was adopted with. Every
    /// local dispatch uses it, and a local requeue keeps it (attempts hold
    /// end to end). 0: not adopted.
    #[serde(default)]
    pub pinned: u32,
    /// On a foreman: the key its master gave the pinned attempt, passed
    /// down with every local dispatch so that the worker can show it if it
    /// fails over (`pilotq_wire::attempt_key`). Last, for the snapshot's
    /// positional encoding.
    #[serde(default)]
    pub key: Option<AttemptKey>,
}

const FRESH: Job = Job {
    state: JobState::Idle,
    attempts: 0,
    entered_at: 0,
    pinned: 0,
    key: None,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub spec: Arc<JobSpec>,
    pub count: u32,
    pub submitted_at: u64,
    /// Every process below `next_fresh` has a record.
    next_fresh: u32,
    /// How many records sit at or after `next_fresh`.
    ahead: u32,
    jobs: BTreeMap<u32, Job>,
    /// Set when the whole cluster was removed.
    removed_at: Option<u64>,
    /// Materialised jobs that are Idle again (derived; rebuilt on load).
    #[serde(skip)]
    requeued: BTreeSet<u32>,
    /// A foreman's copy of a master's cluster: only the jobs it adopted
    /// exist (no implied ones); `count` is one past the highest.
    #[serde(default)]
    adopted: bool,
    /// On a foreman: the master's job wrapper (by hash) its jobs of this
    /// cluster were last adopted with. (Never skipped when `None`: snapshots
    /// encode fields by position, and `gone` follows.)
    #[serde(default)]
    pub wrapper: Option<String>,
    /// Processes that left the queue for the history store. Those at or after
    /// `next_fresh` count in `ahead`, like records there.
    #[serde(default)]
    gone: ProcRanges,
}

impl Cluster {
    /// Idle processes that never had a record.
    pub fn fresh_idle(&self) -> u32 {
        if self.removed_at.is_some() {
            0
        } else {
            // Never below zero while the cluster's invariants hold; a
            // wrapped count would have dispatch chase jobs that do not exist.
            self.count
                .saturating_sub(self.next_fresh)
                .saturating_sub(self.ahead)
        }
    }

    /// The materialised jobs, in process order.
    pub fn records(&self) -> impl Iterator<Item = (u32, &Job)> {
        self.jobs.iter().map(|(p, j)| (*p, j))
    }

    /// Jobs not yet Completed or Removed (idle, out on holders, or held).
    pub fn live(&self) -> u64 {
        u64::from(self.fresh_idle())
            + self
                .jobs
                .values()
                .filter(|j| !j.state.status().is_final())
                .count() as u64
    }

    fn has_idle(&self) -> bool {
        !self.requeued.is_empty() || self.fresh_idle() > 0
    }

    /// The job record of `proc`, or the implied one of an untouched process.
    pub fn job(&self, proc: u32) -> Option<JobRef<'_>> {
        if proc >= self.count || self.gone.contains(proc) {
            return None;
        }
        Some(match self.jobs.get(&proc) {
            Some(j) => JobRef {
                job: j,
                entered_at: j.entered_at,
            },
            None if self.adopted => return None,
            None if self.removed_at.is_some() => JobRef {
                job: &REMOVED,
                entered_at: self.removed_at.unwrap_or(0),
            },
            None => JobRef {
                job: &FRESH,
                entered_at: self.submitted_at,
            },
        })
    }

    /// Idle processes in dispatch order: requeued first (they are older),
    /// then fresh ones.
    fn idle_procs(&self) -> impl Iterator<Item = u32> + '_ {
        let fresh = (self.next_fresh..self.count).filter(move |p| {
            self.removed_at.is_none() && !self.jobs.contains_key(p) && !self.gone.contains(*p)
        });
        self.requeued.iter().copied().chain(fresh)
    }

    /// Gives `proc` a record (if it had none) and returns it.
    fn materialise(&mut self, proc: u32) -> &mut Job {
        if !self.jobs.contains_key(&proc) {
            let state = if self.removed_at.is_some() {
                JobState::Removed
            } else {
                JobState::Idle
            };
            self.jobs.insert(
                proc,
                Job {
                    state,
                    entered_at: self.submitted_at,
                    ..FRESH
                },
            );
            if proc >= self.next_fresh {
                self.ahead += 1;
            }
            self.advance_fresh();
        }
        self.jobs.get_mut(&proc).expect("just inserted")
    }

    /// Moves `next_fresh` past processes that have a record or have left.
    fn advance_fresh(&mut self) {
        while self.next_fresh < self.count
            && (self.jobs.contains_key(&self.next_fresh) || self.gone.contains(self.next_fresh))
        {
            self.next_fresh += 1;
            self.ahead = self.ahead.saturating_sub(1);
        }
    }

    /// The processes in the queue (with a record, fresh, or implied removed
    /// under `leave_in_queue`), in order, without visiting those that left:
    /// a query of a cluster whose million jobs are mostly done costs its
    /// live jobs.
    pub fn procs_in_queue(&self) -> impl Iterator<Item = u32> + '_ {
        let before = self.jobs.range(..self.next_fresh).map(|(p, _)| *p);
        let after = (self.next_fresh..self.count)
            .filter(move |p| self.jobs.contains_key(p) || !self.gone.contains(*p));
        before.chain(after)
    }

    /// Whether `proc` finished and left the queue.
    pub fn has_left(&self, proc: u32) -> bool {
        self.gone.contains(proc)
    }

    /// Nothing of it is in the queue any more.
    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.fresh_idle() == 0
    }
}

const REMOVED: Job = Job {
    state: JobState::Removed,
    ..FRESH
};

/// A job as read from the table, materialised or implied.
#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    pub job: &'a Job,
    pub entered_at: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Table {
    clusters: BTreeMap<ClusterId, Cluster>,
    last_cluster: u64,
    restarts: u64,
    /// Jobs that left the queue for the history store, by how they ended.
    #[serde(default)]
    left: LeftQueue,
    /// This is a foreman's table: its clusters are adopted ones.
    #[serde(default)]
    adopts: bool,
    // Derived indexes, rebuilt by `reindex` after a snapshot is loaded.
    /// Clusters with idle work, in dispatch order.
    #[serde(skip)]
    idle_index: BTreeSet<(Reverse<i32>, ClusterId)>,
    /// Jobs out on each holder.
    #[serde(skip)]
    out_on: HashMap<Arc<str>, BTreeSet<JobId>>,
    #[serde(skip)]
    counts: Counts,
    /// Jobs that left since the owner last took them (`Some` only when
    /// asked for, see [`Table::keep_departures`]).
    #[serde(skip)]
    departures: Option<Vec<Departure>>,
}

/// How many jobs have left the queue for the history store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftQueue {
    pub completed: u64,
    pub removed: u64,
}

impl PartialEq for Table {
    /// Equality of the *state*; the derived indexes follow from it (and
    /// `check_indexes` tests that they do).
    fn eq(&self, other: &Self) -> bool {
        self.clusters == other.clusters
            && self.last_cluster == other.last_cluster
            && self.restarts == other.restarts
            && self.left == other.left
            && self.adopts == other.adopts
    }
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::MasterStarted { .. } => self.restarts += 1,
            Event::ClusterSubmitted {
                cluster,
                count,
                spec,
                at,
            } => {
                if self.clusters.contains_key(cluster) {
                    return;
                }
                self.last_cluster = self.last_cluster.max(cluster.0);
                let c = Cluster {
                    spec: Arc::new((**spec).clone()),
                    count: *count,
                    submitted_at: *at,
                    next_fresh: 0,
                    ahead: 0,
                    jobs: BTreeMap::new(),
                    removed_at: None,
                    requeued: BTreeSet::new(),
                    adopted: false,
                    wrapper: None,
                    gone: ProcRanges::default(),
                };
                self.counts.idle += u64::from(*count);
                self.clusters.insert(*cluster, c);
                self.refresh_index(*cluster);
            }
            Event::JobDispatched {
                job,
                attempt,
                holder,
                at,
            } => {
                let Some(c) = self.clusters.get_mut(&job.cluster) else {
                    return;
                };
                if c.job(job.proc).map(|j| j.job.state.clone()) != Some(JobState::Idle) {
                    return;
                }
                c.requeued.remove(&job.proc);
                let holder: Arc<str> = match self.out_on.get_key_value(holder.as_str()) {
                    Some((k, _)) => k.clone(),
                    None => Arc::from(holder.as_str()),
                };
                let j = c.materialise(job.proc);
                j.state = JobState::Assigned {
                    holder: holder.clone(),
                    attempt: *attempt,
                };
                j.attempts = *attempt;
                j.entered_at = *at;
                self.out_on.entry(holder).or_default().insert(*job);
                self.refresh_index(job.cluster);
            }
            Event::JobStarted { job, attempt, at } => {
                let Some(j) = self.job_mut(*job) else { return };
                if let JobState::Assigned { holder, attempt: a } = &j.state {
                    if a == attempt {
                        j.state = JobState::Running {
                            holder: holder.clone(),
                            attempt: *attempt,
                            started_at: *at,
                        };
                        j.entered_at = *at;
                        self.counts.sub(JobStatus::Idle);
                        self.counts.add(JobStatus::Running);
                    }
                }
            }
            Event::JobCompleted {
                job,
                attempt,
                outcome,
                at,
            } => {
                let completes = self.current_attempt(*job) == Some(*attempt)
                    || self
                        .kept_output(*job)
                        .is_some_and(|k| k.attempt == *attempt);
                if completes {
                    self.leave(
                        *job,
                        JobState::Completed {
                            outcome: outcome.clone(),
                        },
                        *at,
                    );
                }
            }
            Event::JobRequeued {
                job, attempt, at, ..
            } => {
                if self.current_attempt(*job) == Some(*attempt) {
                    self.leave(*job, JobState::Idle, *at);
                    if let Some(c) = self.clusters.get_mut(&job.cluster) {
                        c.requeued.insert(job.proc);
                    }
                    self.refresh_index(job.cluster);
                }
            }
            Event::JobAdopted {
                job,
                attempt,
                spec,
                at,
                wrapper,
                key,
            } => {
                // A refused adoption changes nothing, the wrapper included.
                if self.adopt(*job, *attempt, spec.as_deref(), *at, *key) {
                    if let (Some(c), Some(w)) = (self.clusters.get_mut(&job.cluster), wrapper) {
                        c.wrapper = Some(w.clone());
                    }
                }
            }
            Event::JobMoved {
                job,
                attempt,
                holder,
                ..
            } => self.move_to(*job, *attempt, holder),
            Event::JobHeld {
                job,
                reason,
                at,
                kept,
            } => {
                // A held job's kept result that still cannot be written (a
                // release that failed): the same result, a new reason.
                if let Some(j) = self.job_mut(*job) {
                    if let JobState::Held {
                        reason: r,
                        kept: Some(k),
                    } = &mut j.state
                    {
                        if kept.as_ref() == Some(k) {
                            *r = reason.clone();
                            j.entered_at = *at;
                        }
                        return;
                    }
                }
                self.settle(
                    *job,
                    JobState::Held {
                        reason: reason.clone(),
                        kept: kept.clone(),
                    },
                    *at,
                )
            }
            Event::JobReleased { job, at } => {
                let held_bare = self
                    .job_mut(*job)
                    .is_some_and(|j| matches!(j.state, JobState::Held { kept: None, .. }));
                if held_bare {
                    self.leave(*job, JobState::Idle, *at);
                    if let Some(c) = self.clusters.get_mut(&job.cluster) {
                        c.requeued.insert(job.proc);
                    }
                    self.refresh_index(job.cluster);
                }
            }
            Event::JobRemoved { job, at } => self.settle(*job, JobState::Removed, *at),
            Event::ClusterRemoved { cluster, at } => {
                let Some(c) = self.clusters.get(cluster) else {
                    return;
                };
                if c.removed_at.is_some() {
                    return;
                }
                let live: Vec<u32> = c
                    .jobs
                    .iter()
                    .filter(|(_, j)| !j.state.status().is_final())
                    .map(|(p, _)| *p)
                    .collect();
                for proc in live {
                    self.settle(
                        JobId {
                            cluster: *cluster,
                            proc,
                        },
                        JobState::Removed,
                        *at,
                    );
                }
                // Its last jobs may have taken the cluster out with them.
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return;
                };
                let fresh = u64::from(c.fresh_idle());
                self.counts.idle = self.counts.idle.saturating_sub(fresh);
                if c.spec.leave_in_queue || c.adopted {
                    c.removed_at = Some(*at);
                    self.counts.removed += fresh;
                } else {
                    // The jobs that never ran leave with it, as ranges.
                    let mut procs = Vec::new();
                    let mut run: Option<(u32, u32)> = None;
                    for p in c.idle_procs().filter(|p| !c.jobs.contains_key(p)) {
                        run = match run {
                            Some((s, e)) if e == p => Some((s, p + 1)),
                            Some(r) => {
                                procs.push(r);
                                Some((p, p + 1))
                            }
                            None => Some((p, p + 1)),
                        };
                    }
                    procs.extend(run);
                    for (s, e) in &procs {
                        c.gone.insert_range(*s, *e);
                    }
                    c.ahead = c.ahead.saturating_add(fresh as u32);
                    c.removed_at = Some(*at);
                    self.left.removed += fresh;
                    if let Some(d) = &mut self.departures {
                        if !procs.is_empty() {
                            d.push(Departure {
                                cluster: *cluster,
                                spec: c.spec.clone(),
                                submitted_at: c.submitted_at,
                                at: *at,
                                jobs: Departed::NeverRan { procs },
                            });
                        }
                    }
                }
                self.refresh_index(*cluster);
                self.drop_if_empty(*cluster);
            }
        }
    }

    /// Hands attempt `attempt` of `job` to `holder`, state unchanged.
    fn move_to(&mut self, job: JobId, attempt: u32, holder: &str) {
        if self.current_attempt(job) != Some(attempt) {
            return;
        }
        let to: Arc<str> = match self.out_on.get_key_value(holder) {
            Some((k, _)) => k.clone(),
            None => Arc::from(holder),
        };
        let Some(j) = self.job_mut(job) else { return };
        let from = match &mut j.state {
            JobState::Assigned { holder: h, .. } | JobState::Running { holder: h, .. } => {
                std::mem::replace(h, to.clone())
            }
            _ => return,
        };
        if let Some(set) = self.out_on.get_mut(&from) {
            set.remove(&job);
            if set.is_empty() {
                self.out_on.remove(&from);
            }
        }
        self.out_on.entry(to).or_default().insert(job);
    }

    /// A foreman takes a job from its master: Idle here, pinned to the
    /// master's attempt. A newer attempt of a job it had replaces the old
    /// one; the same or an older attempt changes nothing.
    /// Whether the adoption was taken.
    fn adopt(
        &mut self,
        job: JobId,
        attempt: u32,
        spec: Option<&JobSpec>,
        at: u64,
        key: Option<AttemptKey>,
    ) -> bool {
        // Process u32::MAX cannot be adopted: the cluster's count, one past
        // its highest process, would not fit (a wire value, so refused here
        // rather than wrapped).
        let Some(end) = job.proc.checked_add(1) else {
            return false;
        };
        if attempt == 0 {
            return false;
        }
        if !self.clusters.contains_key(&job.cluster) {
            let Some(spec) = spec else { return false };
            self.last_cluster = self.last_cluster.max(job.cluster.0);
            self.clusters.insert(
                job.cluster,
                Cluster {
                    spec: Arc::new(spec.clone()),
                    count: 0,
                    submitted_at: at,
                    next_fresh: 0,
                    ahead: 0,
                    jobs: BTreeMap::new(),
                    removed_at: None,
                    requeued: BTreeSet::new(),
                    adopted: true,
                    wrapper: None,
                    gone: ProcRanges::default(),
                },
            );
        }
        let c = self.clusters.get_mut(&job.cluster).expect("present");
        if !c.adopted || c.jobs.get(&job.proc).is_some_and(|j| j.pinned >= attempt) {
            return false;
        }
        // A job that finished here and comes again: its master requeued it
        // (this foreman was cut off past its lease) and dispatched a newer
        // attempt, which must run. (A master never hands out an attempt
        // twice, and a worker failing over with an attempt this foreman
        // finished is refused before any adoption: `has_left`.)
        c.gone.remove(job.proc);
        self.adopts = true;
        if let std::collections::btree_map::Entry::Vacant(slot) = c.jobs.entry(job.proc) {
            slot.insert(Job {
                entered_at: at,
                ..FRESH
            });
            // Only records exist: nothing implied between or after them.
            c.count = c.count.max(end);
            c.next_fresh = c.count;
            self.counts.idle += 1;
        } else {
            self.leave(job, JobState::Idle, at);
        }
        let c = self.clusters.get_mut(&job.cluster).expect("present");
        let j = c.jobs.get_mut(&job.proc).expect("present");
        j.attempts = attempt - 1;
        j.pinned = attempt;
        j.key = key;
        c.requeued.insert(job.proc);
        self.refresh_index(job.cluster);
        true
    }

    /// Moves a non-final job (materialising it if needed) to a final or held
    /// state.
    fn settle(&mut self, job: JobId, to: JobState, at: u64) {
        let Some(c) = self.clusters.get_mut(&job.cluster) else {
            return;
        };
        let Some(current) = c.job(job.proc) else {
            return;
        };
        let from = current.job.state.status();
        if from.is_final() || (from == JobStatus::Held && to.status() == JobStatus::Held) {
            return;
        }
        c.requeued.remove(&job.proc);
        c.materialise(job.proc);
        self.leave(job, to, at);
        self.refresh_index(job.cluster);
    }

    /// Sets a materialised job's state, keeping counts and holder index true.
    /// A job that ends (Completed or Removed) leaves the queue, unless its
    /// cluster says `leave_in_queue`.
    fn leave(&mut self, job: JobId, to: JobState, at: u64) {
        let Some(j) = self.job_mut(job) else { return };
        let from = std::mem::replace(&mut j.state, to.clone());
        j.entered_at = at;
        if let Some((holder, _)) = from.out_on() {
            let holder = holder.clone();
            if let Some(set) = self.out_on.get_mut(&holder) {
                set.remove(&job);
                if set.is_empty() {
                    self.out_on.remove(&holder);
                }
            }
        }
        self.counts.sub(from.status());
        self.counts.add(to.status());
        if to.status().is_final() {
            self.depart(job, from, at);
        }
    }

    /// Moves a job that just ended out of the queue (see the module's
    /// "live jobs only").
    fn depart(&mut self, job: JobId, from: JobState, at: u64) {
        let Some(c) = self.clusters.get_mut(&job.cluster) else {
            return;
        };
        if c.spec.leave_in_queue {
            return;
        }
        let Some(j) = c.jobs.remove(&job.proc) else {
            return;
        };
        c.gone.insert(job.proc);
        c.requeued.remove(&job.proc);
        let status = j.state.status();
        self.counts.sub(status);
        match status {
            JobStatus::Completed => self.left.completed += 1,
            _ => self.left.removed += 1,
        }
        if let Some(d) = &mut self.departures {
            let (last_holder, started_at) = match from {
                JobState::Running {
                    holder, started_at, ..
                } => (Some(holder), Some(started_at)),
                JobState::Assigned { holder, .. } => (Some(holder), None),
                _ => (None, None),
            };
            d.push(Departure {
                cluster: job.cluster,
                spec: c.spec.clone(),
                submitted_at: c.submitted_at,
                at,
                jobs: Departed::One {
                    proc: job.proc,
                    state: j.state,
                    attempts: j.attempts,
                    last_holder,
                    started_at,
                },
            });
        }
        self.drop_if_empty(job.cluster);
    }

    /// A cluster none of whose jobs is in the queue any more leaves it (a
    /// foreman's stay: see the module's notes).
    fn drop_if_empty(&mut self, cluster: ClusterId) {
        let Some(c) = self.clusters.get(&cluster) else {
            return;
        };
        if c.adopted || c.spec.leave_in_queue || !c.is_empty() {
            return;
        }
        self.idle_index.remove(&(Reverse(c.spec.priority), cluster));
        self.clusters.remove(&cluster);
    }

    /// From now on, jobs that leave the queue are kept as [`Departure`]s
    /// until [`Table::take_departures`] (the master writes them to its
    /// history store).
    pub fn keep_departures(&mut self) {
        self.departures.get_or_insert_with(Vec::new);
    }

    /// The jobs that left since the last call.
    pub fn take_departures(&mut self) -> Vec<Departure> {
        match &mut self.departures {
            Some(d) => std::mem::take(d),
            None => Vec::new(),
        }
    }

    /// How many jobs have left the queue for the history store.
    pub fn left(&self) -> LeftQueue {
        self.left
    }

    /// Whether `id` finished and left the queue (its cluster may have left
    /// too): a report about it is stale, and it must never run again.
    pub fn has_left(&self, id: JobId) -> bool {
        match self.clusters.get(&id.cluster) {
            Some(c) => c.has_left(id.proc),
            // Cluster ids are never reused: a known one that is gone left.
            // A foreman's clusters never leave: one it lacks it never had.
            None => !self.adopts && id.cluster.0 <= self.last_cluster,
        }
    }

    /// The result kept with a job held because its output could not be put
    /// in place.
    pub fn kept_output(&self, job: JobId) -> Option<&KeptOutput> {
        match &self.clusters.get(&job.cluster)?.jobs.get(&job.proc)?.state {
            JobState::Held { kept: Some(k), .. } => Some(k),
            _ => None,
        }
    }

    fn job_mut(&mut self, job: JobId) -> Option<&mut Job> {
        self.clusters.get_mut(&job.cluster)?.jobs.get_mut(&job.proc)
    }

    fn refresh_index(&mut self, cluster: ClusterId) {
        let Some(c) = self.clusters.get(&cluster) else {
            return;
        };
        let key = (Reverse(c.spec.priority), cluster);
        if c.has_idle() {
            self.idle_index.insert(key);
        } else {
            self.idle_index.remove(&key);
        }
    }

    /// Rebuilds the derived indexes and counts from the state (after a
    /// snapshot is decoded).
    pub fn reindex(&mut self) {
        self.idle_index.clear();
        self.out_on.clear();
        self.counts = Counts::default();
        let ids: Vec<ClusterId> = self.clusters.keys().copied().collect();
        for id in ids {
            let c = self.clusters.get_mut(&id).expect("listed");
            c.requeued = c
                .jobs
                .iter()
                .filter(|(_, j)| j.state == JobState::Idle)
                .map(|(p, _)| *p)
                .collect();
            let fresh = u64::from(c.fresh_idle());
            let removed_implied = if c.removed_at.is_some() && !c.adopted {
                u64::from(c.count)
                    .saturating_sub(c.jobs.len() as u64)
                    .saturating_sub(c.gone.len())
            } else {
                0
            };
            self.counts.idle += fresh;
            self.counts.removed += removed_implied;
            for (p, j) in &c.jobs {
                self.counts.add(j.state.status());
                if let Some((holder, _)) = j.state.out_on() {
                    self.out_on
                        .entry(holder.clone())
                        .or_default()
                        .insert(JobId {
                            cluster: id,
                            proc: *p,
                        });
                }
            }
            self.refresh_index(id);
        }
    }

    // ---- reading ----

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Jobs of `owner` not yet Completed or Removed (for a per-owner limit:
    /// O(its clusters' records), each lazy cluster O(1) for its fresh jobs).
    pub fn live_jobs_of(&self, owner: &str) -> u64 {
        self.clusters
            .values()
            .filter(|c| c.spec.owner == owner)
            .map(Cluster::live)
            .sum()
    }

    pub fn last_cluster(&self) -> ClusterId {
        ClusterId(self.last_cluster)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    pub fn cluster(&self, id: ClusterId) -> Option<&Cluster> {
        self.clusters.get(&id)
    }

    pub fn clusters(&self) -> impl DoubleEndedIterator<Item = (&ClusterId, &Cluster)> {
        self.clusters.iter()
    }

    pub fn job(&self, id: JobId) -> Option<JobRef<'_>> {
        self.clusters.get(&id.cluster)?.job(id.proc)
    }

    /// The attempt a holder may report on, if the job is out on a holder.
    pub fn current_attempt(&self, id: JobId) -> Option<u32> {
        self.job(id)?.job.state.out_on().map(|(_, a)| a)
    }

    /// Jobs out on `holder` (assigned or running).
    pub fn jobs_on(&self, holder: &str) -> impl Iterator<Item = JobId> + '_ {
        self.out_on.get(holder).into_iter().flatten().copied()
    }

    /// Every holder with jobs out, and how many.
    pub fn holders(&self) -> impl Iterator<Item = (&Arc<str>, usize)> {
        self.out_on.iter().map(|(h, s)| (h, s.len()))
    }

    /// Resources used on `holder` by the jobs out on it.
    pub fn used_on(&self, holder: &str) -> Resources {
        self.jobs_on(holder).fold(Resources::default(), |acc, id| {
            match self.clusters.get(&id.cluster) {
                Some(c) => acc.plus(&c.spec.request),
                None => acc,
            }
        })
    }

    /// Idle jobs to hand to a holder with `free` resources: by priority (high
    /// first), then cluster, then process; a cluster whose request does not
    /// fit is passed over so smaller jobs can backfill. At most `max` jobs.
    pub fn pick_idle(&self, free: Resources, max: usize) -> Vec<JobId> {
        self.pick_idle_within(free, free, max, None)
    }

    /// Like [`Table::pick_idle`] for a holder that queues: `free` is what is
    /// left of its capacity (resources × depth), `whole` its real resources,
    /// which one job's request must fit. With `tags`, a cluster whose jobs
    /// need a tag the holder lacks is passed over too.
    pub fn pick_idle_within(
        &self,
        mut free: Resources,
        whole: Resources,
        max: usize,
        tags: Option<&[String]>,
    ) -> Vec<JobId> {
        let mut out = Vec::new();
        for (_, cid) in &self.idle_index {
            // Every request asks for at least one core (submit enforces it),
            // so a holder with no free core can take nothing more.
            if out.len() >= max || free.cores == 0 {
                break;
            }
            let c = &self.clusters[cid];
            let req = c.spec.request;
            if !whole.fits(&req) {
                continue;
            }
            if let Some(have) = tags {
                if !c.spec.tags.iter().all(|t| have.contains(t)) {
                    continue;
                }
            }
            for proc in c.idle_procs() {
                if out.len() >= max || !free.fits(&req) {
                    break;
                }
                free = free.minus(&req);
                out.push(JobId {
                    cluster: *cid,
                    proc,
                });
            }
        }
        out
    }

    /// Checks the derived indexes against a fresh rebuild (tests, and the
    /// `journal verify` tool).
    pub fn check_indexes(&self) -> Result<(), String> {
        let mut fresh = self.clone();
        fresh.reindex();
        if fresh.counts != self.counts {
            return Err(format!(
                "counts {:?} != rebuilt {:?}",
                self.counts, fresh.counts
            ));
        }
        if fresh.idle_index != self.idle_index {
            return Err("idle index differs from rebuilt".into());
        }
        if fresh.out_on != self.out_on {
            return Err("holder index differs from rebuilt".into());
        }
        for (id, c) in &self.clusters {
            if fresh.clusters[id].requeued != c.requeued {
                return Err(format!("requeued set of cluster {id} differs"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pilotq_wire::Selector;
    use std::collections::BTreeMap;

    const AT: u64 = 1_000;

    /// A job spec for table tests (also `view.rs`'s).
    pub(crate) fn spec(priority: i32, cores: u32) -> Box<JobSpec> {
        Box::new(JobSpec {
            executable: "0".repeat(64),
            cmd: "pilot.sh".into(),
            arguments: vec![],
            environment: BTreeMap::new(),
            output: None,
            error: None,
            log: None,
            request: Resources::new(cores, 1000 * u64::from(cores), 100),
            priority,
            attributes: BTreeMap::new(),
            owner: "alice".into(),
            iwd: "/home/alice".into(),
            tags: vec![],
            // The state machine's tests watch finished jobs' records, so
            // they keep them in the queue; jobs leaving it have tests of
            // their own (`gone_*`, below), with `leaving_spec`.
            leave_in_queue: true,
        })
    }

    /// A spec whose finished jobs leave the queue (the default).
    pub(crate) fn leaving_spec(priority: i32, cores: u32) -> Box<JobSpec> {
        let mut s = spec(priority, cores);
        s.leave_in_queue = false;
        s
    }

    /// Applies `e` and holds the derived indexes and counts to a rebuild.
    fn apply(t: &mut Table, e: Event) {
        t.apply(&e);
        if let Err(why) = t.check_indexes() {
            panic!("indexes wrong after {e:?}: {why}");
        }
        // A foreman's (adopted) cluster has only its records; a master's
        // has `count` jobs, implied or not.
        let jobs: u64 = t
            .clusters()
            .map(|(_, c)| {
                if c.adopted {
                    c.jobs.len() as u64
                } else {
                    u64::from(c.count) - c.gone.len()
                }
            })
            .sum();
        assert_eq!(t.counts().total(), jobs, "counts lost a job after {e:?}");
    }

    /// Applies `e` and checks it changed nothing at all.
    fn apply_ignored(t: &mut Table, e: Event) {
        let before = t.clone();
        apply(t, e.clone());
        assert_eq!(*t, before, "{e:?} should have been ignored");
        assert_eq!(t.counts(), before.counts(), "{e:?} moved the counts");
    }

    fn submit(t: &mut Table, cluster: u64, count: u32, priority: i32, cores: u32) {
        apply(
            t,
            Event::ClusterSubmitted {
                cluster: ClusterId(cluster),
                count,
                spec: spec(priority, cores),
                at: AT,
            },
        );
    }

    fn dispatch(t: &mut Table, job: JobId, attempt: u32, holder: &str) {
        apply(
            t,
            Event::JobDispatched {
                job,
                attempt,
                holder: holder.into(),
                at: AT + 1,
            },
        );
    }

    fn start(t: &mut Table, job: JobId, attempt: u32) {
        apply(
            t,
            Event::JobStarted {
                job,
                attempt,
                at: AT + 2,
            },
        );
    }

    fn complete(t: &mut Table, job: JobId, attempt: u32, code: i32) {
        apply(
            t,
            Event::JobCompleted {
                job,
                attempt,
                outcome: Outcome::Exited { code },
                at: AT + 3,
            },
        );
    }

    fn requeue(t: &mut Table, job: JobId, attempt: u32) {
        apply(
            t,
            Event::JobRequeued {
                job,
                attempt,
                reason: "holder lost".into(),
                at: AT + 4,
            },
        );
    }

    fn hold(t: &mut Table, job: JobId) {
        apply(
            t,
            Event::JobHeld {
                job,
                reason: "attempts spent".into(),
                at: AT + 5,
                kept: None,
            },
        );
    }

    fn plenty() -> Resources {
        Resources::new(1_000, 1_000_000_000, 1_000_000_000)
    }

    fn procs(ids: &[JobId]) -> Vec<u32> {
        ids.iter().map(|j| j.proc).collect()
    }

    fn counts(idle: u64, running: u64, removed: u64, completed: u64, held: u64) -> Counts {
        Counts {
            idle,
            running,
            removed,
            completed,
            held,
        }
    }

    #[test]
    fn a_million_jobs_cost_one_record_until_they_run() {
        let mut t = Table::new();
        submit(&mut t, 1, 1_000_000, 0, 1);
        assert_eq!(t.counts(), counts(1_000_000, 0, 0, 0, 0));
        let c = t.cluster(ClusterId(1)).unwrap();
        assert!(c.jobs.is_empty());
        assert_eq!(c.fresh_idle(), 1_000_000);
        assert_eq!(procs(&t.pick_idle(plenty(), 5)), [0, 1, 2, 3, 4]);
        // An untouched process reads as Idle with no attempts.
        let j = t.job(JobId::new(1, 999_999)).unwrap();
        assert_eq!(j.job.state, JobState::Idle);
        assert_eq!(j.job.attempts, 0);
        assert_eq!(j.entered_at, AT);
        assert!(t.job(JobId::new(1, 1_000_000)).is_none());

        for p in t.pick_idle(plenty(), 3) {
            dispatch(&mut t, p, 1, "w1");
        }
        start(&mut t, JobId::new(1, 1), 1);
        let c = t.cluster(ClusterId(1)).unwrap();
        assert_eq!(c.jobs.len(), 3);
        assert_eq!((c.next_fresh, c.ahead), (3, 0));
        assert_eq!(t.counts(), counts(999_999, 1, 0, 0, 0));
        assert_eq!(procs(&t.pick_idle(plenty(), 4)), [3, 4, 5, 6]);

        // Holding a process far ahead gives it a record without touching the
        // ones before it, and dispatch passes over it.
        hold(&mut t, JobId::new(1, 5));
        let c = t.cluster(ClusterId(1)).unwrap();
        assert_eq!(c.jobs.len(), 4);
        assert_eq!((c.next_fresh, c.ahead), (3, 1));
        assert_eq!(c.fresh_idle(), 999_996);
        assert_eq!(t.counts(), counts(999_998, 1, 0, 0, 1));
        assert_eq!(procs(&t.pick_idle(plenty(), 4)), [3, 4, 6, 7]);

        // Filling the gap moves `next_fresh` past the held record.
        dispatch(&mut t, JobId::new(1, 3), 1, "w2");
        dispatch(&mut t, JobId::new(1, 4), 1, "w2");
        let c = t.cluster(ClusterId(1)).unwrap();
        assert_eq!((c.next_fresh, c.ahead), (6, 0));
        assert_eq!(c.jobs.len(), 6);
        assert_eq!(procs(&t.pick_idle(plenty(), 2)), [6, 7]);
        assert_eq!(t.jobs_on("w2").count(), 2);
        assert_eq!(t.used_on("w1").cores, 3);
    }

    #[test]
    fn dispatch_order_is_priority_then_cluster_then_process() {
        let mut t = Table::new();
        submit(&mut t, 1, 2, 0, 1);
        submit(&mut t, 2, 2, 5, 1);
        submit(&mut t, 3, 2, 5, 1);
        submit(&mut t, 4, 2, -1, 1);
        submit(&mut t, 5, 1, 7, 1);
        let got: Vec<(u64, u32)> = t
            .pick_idle(plenty(), 100)
            .iter()
            .map(|j| (j.cluster.0, j.proc))
            .collect();
        assert_eq!(
            got,
            [
                (5, 0),
                (2, 0),
                (2, 1),
                (3, 0),
                (3, 1),
                (1, 0),
                (1, 1),
                (4, 0),
                (4, 1)
            ]
        );
        assert_eq!(
            t.pick_idle(plenty(), 2),
            [JobId::new(5, 0), JobId::new(2, 0)]
        );
        assert!(t.pick_idle(plenty(), 0).is_empty());
        assert!(t.pick_idle(Resources::default(), 10).is_empty());

        // A cluster with nothing idle leaves the order.
        dispatch(&mut t, JobId::new(5, 0), 1, "w");
        assert_eq!(t.pick_idle(plenty(), 1), [JobId::new(2, 0)]);
    }

    #[test]
    fn a_four_core_holder_takes_four_one_core_jobs() {
        let mut t = Table::new();
        submit(&mut t, 1, 10, 0, 1);
        let free = Resources::new(4, 8000, 10_000);
        let picked = t.pick_idle(free, 100);
        assert_eq!(procs(&picked), [0, 1, 2, 3]);
        for j in &picked {
            dispatch(&mut t, *j, 1, "w4");
        }
        assert_eq!(t.used_on("w4"), Resources::new(4, 4000, 400));
        let left = free.minus(&t.used_on("w4"));
        assert!(t.pick_idle(left, 100).is_empty());
        // Memory bounds too: 3500 MB takes three 1000 MB jobs.
        assert_eq!(
            procs(&t.pick_idle(Resources::new(8, 3500, 10_000), 100)),
            [4, 5, 6]
        );
    }

    #[test]
    fn a_cluster_that_does_not_fit_is_passed_over_for_smaller_jobs() {
        let mut t = Table::new();
        submit(&mut t, 1, 2, 10, 4);
        submit(&mut t, 2, 5, 0, 1);
        let free = |cores| Resources::new(cores, 1_000_000, 1_000_000);
        assert_eq!(
            t.pick_idle(free(3), 100),
            [JobId::new(2, 0), JobId::new(2, 1), JobId::new(2, 2)]
        );
        // Five cores: one big job first (priority), then backfill with the rest.
        assert_eq!(
            t.pick_idle(free(5), 100),
            [JobId::new(1, 0), JobId::new(2, 0)]
        );
        assert_eq!(
            t.pick_idle(free(9), 100),
            [JobId::new(1, 0), JobId::new(1, 1), JobId::new(2, 0)]
        );
    }

    #[test]
    fn requeued_jobs_come_before_fresh_ones() {
        let mut t = Table::new();
        submit(&mut t, 1, 6, 0, 1);
        // A master may dispatch out of order (a reclaimed holding, a tool):
        // process 4 goes out first and comes back before 0..3 ever ran.
        dispatch(&mut t, JobId::new(1, 4), 1, "a");
        dispatch(&mut t, JobId::new(1, 1), 1, "a");
        requeue(&mut t, JobId::new(1, 4), 1);
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [4, 0, 2, 3, 5]);
        requeue(&mut t, JobId::new(1, 1), 1);
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [1, 4, 0, 2, 3, 5]);
        let j = t.job(JobId::new(1, 1)).unwrap().job;
        assert_eq!((j.state.clone(), j.attempts), (JobState::Idle, 1));
        assert_eq!(t.holders().count(), 0);
        assert_eq!(t.counts(), counts(6, 0, 0, 0, 0));

        // Its next dispatch is its second attempt, and it leaves the requeued set.
        dispatch(&mut t, JobId::new(1, 1), 2, "b");
        assert_eq!(t.current_attempt(JobId::new(1, 1)), Some(2));
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [4, 0, 2, 3, 5]);

        // Requeued from another cluster does not jump over priority or cluster order.
        submit(&mut t, 2, 1, 0, 1);
        dispatch(&mut t, JobId::new(2, 0), 1, "a");
        requeue(&mut t, JobId::new(2, 0), 1);
        let got = t.pick_idle(plenty(), 100);
        assert_eq!(got.last(), Some(&JobId::new(2, 0)));
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn stale_and_misplaced_events_change_nothing() {
        let mut t = Table::new();
        submit(&mut t, 1, 3, 0, 1);
        let j = JobId::new(1, 0);
        dispatch(&mut t, j, 1, "old");
        requeue(&mut t, j, 1);
        dispatch(&mut t, j, 2, "new");

        // Reports for attempt 1 after attempt 2 went out.
        apply_ignored(
            &mut t,
            Event::JobStarted {
                job: j,
                attempt: 1,
                at: 9,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: j,
                attempt: 1,
                outcome: Outcome::Exited { code: 1 },
                at: 9,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobRequeued {
                job: j,
                attempt: 1,
                reason: "late".into(),
                at: 9,
            },
        );
        // Attempt from the future, and reports for idle or unknown jobs.
        for job in [
            j,
            JobId::new(1, 1),
            JobId::new(1, 3),
            JobId::new(9, 0),
            JobId::new(1, u32::MAX),
        ] {
            let attempt = if job == j { 3 } else { 1 };
            apply_ignored(
                &mut t,
                Event::JobStarted {
                    job,
                    attempt,
                    at: 9,
                },
            );
            apply_ignored(
                &mut t,
                Event::JobCompleted {
                    job,
                    attempt,
                    outcome: Outcome::Signalled { signal: 9 },
                    at: 9,
                },
            );
            apply_ignored(
                &mut t,
                Event::JobRequeued {
                    job,
                    attempt,
                    reason: "?".into(),
                    at: 9,
                },
            );
        }
        // Dispatching a job that is not idle, or does not exist.
        for job in [j, JobId::new(1, 3), JobId::new(2, 0)] {
            apply_ignored(
                &mut t,
                Event::JobDispatched {
                    job,
                    attempt: 7,
                    holder: "x".into(),
                    at: 9,
                },
            );
        }
        for job in [JobId::new(1, 3), JobId::new(2, 0)] {
            apply_ignored(
                &mut t,
                Event::JobHeld {
                    job,
                    reason: "?".into(),
                    at: 9,
                    kept: None,
                },
            );
            apply_ignored(&mut t, Event::JobRemoved { job, at: 9 });
        }
        apply_ignored(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(2),
                at: 9,
            },
        );
        // A second submission of the same cluster id.
        apply_ignored(
            &mut t,
            Event::ClusterSubmitted {
                cluster: ClusterId(1),
                count: 50,
                spec: spec(3, 2),
                at: 9,
            },
        );

        // The current attempt still counts; a duplicate report after it does not.
        start(&mut t, j, 2);
        complete(&mut t, j, 2, 0);
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: j,
                attempt: 2,
                outcome: Outcome::Exited { code: 3 },
                at: 10,
            },
        );
        // Final jobs stay final; a held job is not held again.
        apply_ignored(&mut t, Event::JobRemoved { job: j, at: 10 });
        apply_ignored(
            &mut t,
            Event::JobHeld {
                job: j,
                reason: "no".into(),
                at: 10,
                kept: None,
            },
        );
        hold(&mut t, JobId::new(1, 1));
        apply_ignored(
            &mut t,
            Event::JobHeld {
                job: JobId::new(1, 1),
                reason: "again".into(),
                at: 10,
                kept: None,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobDispatched {
                job: JobId::new(1, 1),
                attempt: 1,
                holder: "x".into(),
                at: 10,
            },
        );
        assert_eq!(t.counts(), counts(1, 0, 0, 1, 1));
        let done = t.job(j).unwrap().job;
        assert_eq!(done.attempts, 2);
        assert_eq!(
            done.state,
            JobState::Completed {
                outcome: Outcome::Exited { code: 0 }
            }
        );
    }

    #[test]
    fn removing_a_cluster_removes_every_job_not_final() {
        let mut t = Table::new();
        submit(&mut t, 1, 10, 0, 1);
        submit(&mut t, 2, 4, 0, 1);
        let job = |p| JobId::new(1, p);
        dispatch(&mut t, job(0), 1, "w"); // assigned
        dispatch(&mut t, job(1), 1, "w");
        start(&mut t, job(1), 1); // running
        dispatch(&mut t, job(2), 1, "w");
        complete(&mut t, job(2), 1, 42); // completed: stays
        hold(&mut t, job(3)); // held
        dispatch(&mut t, job(4), 1, "v");
        requeue(&mut t, job(4), 1); // idle again, materialised
        apply(&mut t, Event::JobRemoved { job: job(5), at: 7 }); // removed before
        hold(&mut t, job(8)); // a record ahead of next_fresh
        dispatch(&mut t, JobId::new(2, 0), 1, "w");
        assert_eq!(t.counts(), counts(9, 1, 1, 1, 2));

        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: 5_000,
            },
        );
        assert_eq!(t.counts(), counts(4, 0, 9, 1, 0));
        for p in 0..10 {
            let j = t.job(job(p)).unwrap();
            let want = if p == 2 {
                JobStatus::Completed
            } else {
                JobStatus::Removed
            };
            assert_eq!(j.job.state.status(), want, "process {p}");
            let entered = match p {
                2 => AT + 3,
                5 => 7,
                _ => 5_000,
            };
            assert_eq!(j.entered_at, entered, "process {p}");
        }
        // Only cluster 2 is left to dispatch, and only its job is out.
        assert_eq!(
            t.pick_idle(plenty(), 100),
            [JobId::new(2, 1), JobId::new(2, 2), JobId::new(2, 3)]
        );
        assert_eq!(t.jobs_on("w").collect::<Vec<_>>(), [JobId::new(2, 0)]);
        assert_eq!(t.jobs_on("v").count(), 0);
        assert_eq!(t.current_attempt(job(1)), None);
        let c = t.cluster(ClusterId(1)).unwrap();
        assert_eq!(c.fresh_idle(), 0);

        // Nothing brings a removed cluster back.
        apply_ignored(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: 6_000,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobDispatched {
                job: job(9),
                attempt: 1,
                holder: "w".into(),
                at: 6_000,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: job(1),
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                at: 6_000,
            },
        );
    }

    #[test]
    fn removing_a_huge_cluster_is_one_step() {
        let mut t = Table::new();
        submit(&mut t, 1, 1_000_000, 0, 1);
        for p in t.pick_idle(plenty(), 2) {
            dispatch(&mut t, p, 1, "w");
        }
        complete(&mut t, JobId::new(1, 0), 1, 0);
        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: 9,
            },
        );
        assert_eq!(t.counts(), counts(0, 0, 999_999, 1, 0));
        assert_eq!(t.cluster(ClusterId(1)).unwrap().jobs.len(), 2);
        assert_eq!(
            t.job(JobId::new(1, 777_777)).unwrap().job.state,
            JobState::Removed
        );
        assert!(t.pick_idle(plenty(), 10).is_empty());
    }

    #[test]
    fn restarts_and_last_cluster_are_kept() {
        let mut t = Table::new();
        apply(
            &mut t,
            Event::MasterStarted {
                name: "m".into(),
                at: 1,
            },
        );
        submit(&mut t, 7, 1, 0, 1);
        submit(&mut t, 3, 1, 0, 1);
        assert_eq!(t.restarts(), 1);
        assert_eq!(t.last_cluster(), ClusterId(7));
    }

    /// A foreman's table: only adopted jobs exist, each pinned to the
    /// master's attempt through local dispatches and requeues; a newer
    /// attempt replaces an older one, a stale one changes nothing.
    #[test]
    fn adopted_jobs_keep_the_masters_attempt() {
        let mut t = Table::new();
        let adopt = |t: &mut Table, proc, attempt, with_spec: bool| {
            t.apply(&Event::JobAdopted {
                key: None,
                job: JobId::new(7, proc),
                attempt,
                spec: with_spec.then(|| spec(0, 1)),
                at: AT,
                wrapper: None,
            });
            t.check_indexes().unwrap();
        };
        // Without a spec the first job of an unknown cluster is ignored.
        adopt(&mut t, 5, 2, false);
        assert!(t.cluster(ClusterId(7)).is_none());
        adopt(&mut t, 5, 2, true);
        adopt(&mut t, 9, 1, false);
        assert_eq!(t.counts().idle, 2);
        // Sparse: process 6 was never adopted, so it does not exist here.
        assert!(t.job(JobId::new(7, 6)).is_none());
        assert_eq!(
            t.select(&[])
                .iter()
                .filter(|j| t.job(**j).is_some())
                .count(),
            2
        );
        let picks = t.pick_idle(Resources::new(8, 100_000, 100_000), 10);
        assert_eq!(picks, [JobId::new(7, 5), JobId::new(7, 9)]);
        let r = t.job(JobId::new(7, 5)).unwrap();
        assert_eq!((r.job.pinned, r.job.attempts), (2, 1));
        // Dispatched locally with the pinned attempt, lost, requeued: still 2.
        let job = JobId::new(7, 5);
        t.apply(&Event::JobDispatched {
            job,
            attempt: 2,
            holder: "w".into(),
            at: AT,
        });
        t.apply(&Event::JobRequeued {
            job,
            attempt: 2,
            reason: "lost".into(),
            at: AT,
        });
        t.check_indexes().unwrap();
        let r = t.job(job).unwrap();
        assert_eq!((r.job.state.clone(), r.job.pinned), (JobState::Idle, 2));
        // The same attempt again changes nothing; a newer one replaces it.
        let before = t.clone();
        adopt(&mut t, 5, 2, false);
        assert_eq!(t, before);
        t.apply(&Event::JobDispatched {
            job,
            attempt: 2,
            holder: "w".into(),
            at: AT,
        });
        adopt(&mut t, 5, 3, false);
        let r = t.job(job).unwrap();
        assert_eq!((r.job.state.clone(), r.job.pinned), (JobState::Idle, 3));
        assert_eq!(t.jobs_on("w").count(), 0);
        assert_eq!(t.counts().idle, 2);
        // A snapshot round trip keeps the adoption.
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
        assert!(back.job(JobId::new(7, 6)).is_none());
    }

    /// A job moved to another holder keeps its state and attempt; a move of
    /// any other attempt changes nothing.
    #[test]
    fn a_moved_attempt_changes_holder_only() {
        let mut t = Table::new();
        submit(&mut t, 1, 1, 0, 1);
        let job = JobId::new(1, 0);
        dispatch(&mut t, job, 1, "f1");
        start(&mut t, job, 1);
        apply_ignored(
            &mut t,
            Event::JobMoved {
                job,
                attempt: 2,
                holder: "f2".into(),
                at: AT,
            },
        );
        apply(
            &mut t,
            Event::JobMoved {
                job,
                attempt: 1,
                holder: "f2".into(),
                at: AT,
            },
        );
        assert_eq!(t.jobs_on("f1").count(), 0);
        assert_eq!(t.jobs_on("f2").collect::<Vec<_>>(), [job]);
        let r = t.job(job).unwrap();
        assert!(
            matches!(&r.job.state, JobState::Running { holder, attempt: 1, .. } if &**holder == "f2")
        );
        assert_eq!(t.counts().running, 1);
    }

    fn kept(attempt: u32, code: i32) -> Box<KeptOutput> {
        Box::new(KeptOutput {
            attempt,
            outcome: Outcome::Exited { code },
            stdout: Some("5".repeat(64)),
            stderr: None,
        })
    }

    fn hold_kept(t: &mut Table, job: JobId, k: Box<KeptOutput>) {
        apply(
            t,
            Event::JobHeld {
                job,
                reason: "output not written: no space left on device".into(),
                at: AT + 5,
                kept: Some(k),
            },
        );
    }

    fn release(t: &mut Table, job: JobId) {
        apply(t, Event::JobReleased { job, at: AT + 6 });
    }

    /// A finished job whose output could not be put in place is Held with
    /// its result; only a completion of *that* attempt completes it, and a
    /// release leaves it alone (its result is not thrown away).
    #[test]
    fn a_job_held_with_its_result_completes_with_that_attempt_only() {
        let mut t = Table::new();
        submit(&mut t, 1, 3, 0, 1);
        let job = JobId::new(1, 0);
        dispatch(&mut t, job, 1, "w");
        requeue(&mut t, job, 1);
        dispatch(&mut t, job, 2, "w");
        start(&mut t, job, 2);
        assert_eq!(t.kept_output(job), None);
        hold_kept(&mut t, job, kept(2, 7));
        assert_eq!(t.kept_output(job), Some(&*kept(2, 7)));
        assert_eq!(t.counts(), counts(2, 0, 0, 0, 1));
        assert_eq!(t.jobs_on("w").count(), 0);
        assert_eq!(t.current_attempt(job), None);
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [1, 2]);
        let r = t.job(job).unwrap();
        assert_eq!((r.job.attempts, r.entered_at), (2, AT + 5));
        assert_eq!(
            t.view(job).unwrap().hold_reason.as_deref(),
            Some("output not written: no space left on device")
        );

        // Neither an earlier nor a later attempt completes it; a release, a
        // second hold, a start or a dispatch change nothing either.
        for attempt in [1, 3] {
            apply_ignored(
                &mut t,
                Event::JobCompleted {
                    job,
                    attempt,
                    outcome: Outcome::Exited { code: 0 },
                    at: AT + 6,
                },
            );
        }
        apply_ignored(&mut t, Event::JobReleased { job, at: AT + 6 });
        apply_ignored(
            &mut t,
            Event::JobHeld {
                job,
                reason: "again".into(),
                at: AT + 6,
                kept: Some(kept(3, 0)),
            },
        );
        apply_ignored(
            &mut t,
            Event::JobStarted {
                job,
                attempt: 2,
                at: AT + 6,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobDispatched {
                job,
                attempt: 3,
                holder: "w".into(),
                at: AT + 6,
            },
        );
        assert_eq!(t.kept_output(job), Some(&*kept(2, 7)));

        // A snapshot keeps the result.
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.kept_output(job), Some(&*kept(2, 7)));
        back.check_indexes().unwrap();

        // Its own attempt completes it: Held → Completed, the result gone.
        apply(
            &mut t,
            Event::JobCompleted {
                job,
                attempt: 2,
                outcome: Outcome::Exited { code: 7 },
                at: AT + 7,
            },
        );
        assert_eq!(t.counts(), counts(2, 0, 0, 1, 0));
        assert_eq!(t.kept_output(job), None);
        let r = t.job(job).unwrap();
        assert_eq!(
            (r.job.state.clone(), r.job.attempts, r.entered_at),
            (
                JobState::Completed {
                    outcome: Outcome::Exited { code: 7 }
                },
                2,
                AT + 7
            )
        );
        assert_eq!(t.view(job).unwrap().exit_code, Some(7));
        // Once.
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job,
                attempt: 2,
                outcome: Outcome::Exited { code: 0 },
                at: AT + 8,
            },
        );
    }

    /// A release whose files still cannot be written holds the job again
    /// with the *same* result: the reason (and when) change, nothing else. A
    /// hold with another result, or with none, changes nothing.
    #[test]
    fn a_failed_release_holds_again_with_the_new_reason() {
        let mut t = Table::new();
        submit(&mut t, 1, 2, 0, 1);
        let job = JobId::new(1, 0);
        dispatch(&mut t, job, 1, "w");
        start(&mut t, job, 1);
        hold_kept(&mut t, job, kept(1, 0));
        let held = |t: &Table| {
            let r = t.job(job).unwrap();
            (
                t.view(job).unwrap().hold_reason,
                r.entered_at,
                r.job.attempts,
            )
        };
        for other in [Some(kept(1, 1)), Some(kept(2, 0)), None] {
            apply_ignored(
                &mut t,
                Event::JobHeld {
                    job,
                    reason: "another".into(),
                    at: AT + 9,
                    kept: other,
                },
            );
        }
        apply(
            &mut t,
            Event::JobHeld {
                job,
                reason: "output not written: read-only file system".into(),
                at: AT + 20,
                kept: Some(kept(1, 0)),
            },
        );
        assert_eq!(
            held(&t),
            (
                Some("output not written: read-only file system".into()),
                AT + 20,
                1
            )
        );
        assert_eq!(t.kept_output(job), Some(&*kept(1, 0)));
        assert_eq!(t.counts(), counts(1, 0, 0, 0, 1));
        // Still completes with its attempt.
        complete(&mut t, job, 1, 0);
        assert_eq!(t.counts(), counts(1, 0, 0, 1, 0));
        // A bare hold of a bare-held job is still refused.
        hold(&mut t, JobId::new(1, 1));
        apply_ignored(
            &mut t,
            Event::JobHeld {
                job: JobId::new(1, 1),
                reason: "again".into(),
                at: AT + 30,
                kept: None,
            },
        );
    }

    /// A job held with its result can still be removed (the result goes
    /// with it), alone or with its cluster; a bare hold has no result.
    #[test]
    fn a_kept_result_goes_when_its_job_is_removed() {
        let mut t = Table::new();
        submit(&mut t, 1, 4, 0, 1);
        let job = |p| JobId::new(1, p);
        for p in 0..3 {
            dispatch(&mut t, job(p), 1, "w");
            start(&mut t, job(p), 1);
        }
        hold_kept(&mut t, job(0), kept(1, 0));
        hold_kept(&mut t, job(1), kept(1, 1));
        hold(&mut t, job(2));
        assert_eq!(t.kept_output(job(2)), None);
        assert_eq!(t.kept_output(job(3)), None);
        assert_eq!(t.kept_output(JobId::new(9, 0)), None);
        assert_eq!(t.counts(), counts(1, 0, 0, 0, 3));

        apply(&mut t, Event::JobRemoved { job: job(0), at: 9 });
        assert_eq!(t.kept_output(job(0)), None);
        assert_eq!(t.job(job(0)).unwrap().job.state, JobState::Removed);
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: job(0),
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                at: 10,
            },
        );
        assert_eq!(t.counts(), counts(1, 0, 1, 0, 2));

        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: 11,
            },
        );
        assert_eq!(t.kept_output(job(1)), None);
        assert_eq!(t.counts(), counts(0, 0, 4, 0, 0));
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: job(1),
                attempt: 1,
                outcome: Outcome::Exited { code: 1 },
                at: 12,
            },
        );
    }

    /// `pilotq release`: a held job without a kept result is Idle again,
    /// first in line, and its next dispatch is its next attempt.
    #[test]
    fn a_released_job_is_idle_again_with_its_attempts() {
        let mut t = Table::new();
        submit(&mut t, 1, 6, 0, 1);
        let job = |p| JobId::new(1, p);
        dispatch(&mut t, job(1), 1, "w");
        requeue(&mut t, job(1), 1);
        dispatch(&mut t, job(1), 2, "w");
        start(&mut t, job(1), 2);
        hold(&mut t, job(1));
        // Held before it ever ran, ahead of `next_fresh`.
        hold(&mut t, job(4));
        assert_eq!(t.counts(), counts(4, 0, 0, 0, 2));
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [0, 2, 3, 5]);

        release(&mut t, job(1));
        let r = t.job(job(1)).unwrap();
        assert_eq!(
            (r.job.state.clone(), r.job.attempts, r.entered_at),
            (JobState::Idle, 2, AT + 6)
        );
        assert_eq!(t.view(job(1)).unwrap().hold_reason, None);
        assert_eq!(t.counts(), counts(5, 0, 0, 0, 1));
        // Requeued work goes first.
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [1, 0, 2, 3, 5]);
        release(&mut t, job(4));
        assert_eq!(t.counts(), counts(6, 0, 0, 0, 0));
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [1, 4, 0, 2, 3, 5]);
        let r = t.job(job(4)).unwrap();
        assert_eq!((r.job.state.clone(), r.job.attempts), (JobState::Idle, 0));

        // A snapshot of released jobs rebuilds the same dispatch order.
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
        back.check_indexes().unwrap();
        assert_eq!(procs(&back.pick_idle(plenty(), 100)), [1, 4, 0, 2, 3, 5]);

        // Dispatched again with its third attempt; the second's late report
        // changes nothing, the third's completes it.
        dispatch(&mut t, job(1), 3, "v");
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: job(1),
                attempt: 2,
                outcome: Outcome::Exited { code: 0 },
                at: AT + 7,
            },
        );
        start(&mut t, job(1), 3);
        complete(&mut t, job(1), 3, 0);
        assert_eq!(t.counts(), counts(5, 0, 0, 1, 0));
    }

    /// A release of anything but a held job changes nothing.
    #[test]
    fn releasing_a_job_that_is_not_held_changes_nothing() {
        let mut t = Table::new();
        submit(&mut t, 1, 8, 0, 1);
        let job = |p| JobId::new(1, p);
        dispatch(&mut t, job(0), 1, "w"); // assigned
        dispatch(&mut t, job(1), 1, "w");
        start(&mut t, job(1), 1); // running
        dispatch(&mut t, job(2), 1, "w");
        complete(&mut t, job(2), 1, 0); // completed
        apply(&mut t, Event::JobRemoved { job: job(3), at: 9 }); // removed
        dispatch(&mut t, job(4), 1, "w");
        requeue(&mut t, job(4), 1); // idle, materialised
        hold(&mut t, job(5));
        release(&mut t, job(5)); // released once already
        for j in [
            job(0),
            job(1),
            job(2),
            job(3),
            job(4),
            job(5),
            job(6), // idle, implied
            job(8), // past the cluster
            JobId::new(1, u32::MAX),
            JobId::new(2, 0), // no such cluster
        ] {
            apply_ignored(&mut t, Event::JobReleased { job: j, at: 10 });
        }
        // A held job of a removed cluster is Removed: nothing to release.
        hold(&mut t, job(7));
        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: 11,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobReleased {
                job: job(7),
                at: 12,
            },
        );
    }

    /// A foreman runs an adopted cluster's jobs with the master's wrapper:
    /// the adoption carries it, a later one replaces it; a master's own
    /// cluster has no use for it (and adopts nothing).
    #[test]
    fn an_adoption_sets_the_wrapper_of_a_foremans_cluster() {
        let mut t = Table::new();
        let adopted = |t: &mut Table, proc, attempt, wrapper: Option<&str>| {
            apply(
                t,
                Event::JobAdopted {
                    key: None,
                    job: JobId::new(7, proc),
                    attempt,
                    spec: Some(spec(0, 1)),
                    at: AT,
                    wrapper: wrapper.map(str::to_string),
                },
            );
        };
        adopted(&mut t, 0, 1, None);
        assert_eq!(t.cluster(ClusterId(7)).unwrap().wrapper, None);
        adopted(&mut t, 1, 1, Some("w1"));
        assert_eq!(
            t.cluster(ClusterId(7)).unwrap().wrapper.as_deref(),
            Some("w1")
        );
        adopted(&mut t, 2, 1, Some("w2"));
        assert_eq!(
            t.cluster(ClusterId(7)).unwrap().wrapper.as_deref(),
            Some("w2")
        );
        assert_eq!(t.counts().idle, 3);
        // The wrapper outlives a snapshot.
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            back.cluster(ClusterId(7)).unwrap().wrapper.as_deref(),
            Some("w2")
        );

        // On a master's own cluster an adoption is refused whole, wrapper
        // and all.
        submit(&mut t, 1, 2, 0, 1);
        for wrapper in [None, Some("w9".to_string())] {
            apply_ignored(
                &mut t,
                Event::JobAdopted {
                    key: None,
                    job: JobId::new(1, 0),
                    attempt: 1,
                    spec: Some(spec(0, 1)),
                    at: AT,
                    wrapper,
                },
            );
        }
        assert_eq!(t.cluster(ClusterId(1)).unwrap().wrapper, None);
    }

    /// Process u32::MAX cannot be adopted (the cluster's count, one past its
    /// highest process, would not fit): nothing changes, whether the cluster
    /// is new or known, with a wrapper or without.
    #[test]
    fn the_last_process_number_cannot_be_adopted() {
        let mut t = Table::new();
        let last = |cluster| JobId::new(cluster, u32::MAX);
        let adopt_last = |cluster, wrapper: Option<&str>| Event::JobAdopted {
            key: None,
            job: last(cluster),
            attempt: 1,
            spec: Some(spec(0, 1)),
            at: AT,
            wrapper: wrapper.map(str::to_string),
        };
        apply_ignored(&mut t, adopt_last(7, None));
        apply_ignored(&mut t, adopt_last(7, Some("w1")));
        assert!(t.cluster(ClusterId(7)).is_none());
        assert_eq!(t.last_cluster(), ClusterId(0));

        // Next to an adopted process just below it.
        apply(
            &mut t,
            Event::JobAdopted {
                key: None,
                job: JobId::new(7, u32::MAX - 1),
                attempt: 1,
                spec: Some(spec(0, 1)),
                at: AT,
                wrapper: Some("w1".into()),
            },
        );
        let c = t.cluster(ClusterId(7)).unwrap();
        assert_eq!((c.count, c.fresh_idle(), c.live()), (u32::MAX, 0, 1));
        assert_eq!(t.counts(), counts(1, 0, 0, 0, 0));
        apply_ignored(&mut t, adopt_last(7, None));
        assert!(t.job(last(7)).is_none());
        assert_eq!(t.pick_idle(plenty(), 10), [JobId::new(7, u32::MAX - 1)]);
    }

    /// The refused adoption above must not touch the known cluster's wrapper
    /// either: "nothing changes".
    #[test]
    fn a_refused_adoption_leaves_the_wrapper_alone() {
        let mut t = Table::new();
        apply(
            &mut t,
            Event::JobAdopted {
                key: None,
                job: JobId::new(7, 0),
                attempt: 2,
                spec: Some(spec(0, 1)),
                at: AT,
                wrapper: Some("w1".into()),
            },
        );
        apply_ignored(
            &mut t,
            Event::JobAdopted {
                key: None,
                job: JobId::new(7, u32::MAX),
                attempt: 1,
                spec: None,
                at: AT,
                wrapper: Some("other".into()),
            },
        );
        assert_eq!(
            t.cluster(ClusterId(7)).unwrap().wrapper.as_deref(),
            Some("w1")
        );
    }

    /// Counts never wrap: a table whose counts disagree with its state (a
    /// decoded snapshot is reindexed, but `apply` must not panic or wrap on
    /// the way there) saturates at zero.
    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut c = Counts::default();
        c.sub(JobStatus::Idle);
        c.sub(JobStatus::Held);
        assert_eq!(c, Counts::default());
        c.add(JobStatus::Held);
        c.sub(JobStatus::Held);
        c.sub(JobStatus::Held);
        assert_eq!(c, Counts::default());

        // A removed cluster's idle count never goes below zero either.
        let mut t = Table::new();
        submit(&mut t, 1, 3, 0, 1);
        t.counts = Counts::default();
        t.apply(&Event::ClusterRemoved {
            cluster: ClusterId(1),
            at: 9,
        });
        assert_eq!(t.counts().idle, 0);
        assert_eq!(t.counts().removed, 3);
    }

    // ---- jobs leave the queue ----

    fn submit_leaving(t: &mut Table, cluster: u64, count: u32) {
        apply(
            t,
            Event::ClusterSubmitted {
                cluster: ClusterId(cluster),
                count,
                spec: leaving_spec(0, 1),
                at: AT,
            },
        );
    }

    fn run_to_end(t: &mut Table, job: JobId, code: i32) {
        dispatch(t, job, 1, "w");
        start(t, job, 1);
        complete(t, job, 1, code);
    }

    #[test]
    fn gone_a_finished_job_leaves_the_queue_with_its_record() {
        let mut t = Table::new();
        t.keep_departures();
        submit_leaving(&mut t, 1, 3);
        let j0 = JobId::new(1, 0);
        run_to_end(&mut t, j0, 7);
        assert!(t.job(j0).is_none() && t.view(j0).is_none() && t.has_left(j0));
        assert_eq!(t.counts(), counts(2, 0, 0, 0, 0));
        assert_eq!(
            t.left(),
            LeftQueue {
                completed: 1,
                removed: 0
            }
        );
        let d = t.take_departures();
        assert_eq!(d.len(), 1);
        let rec: Vec<_> = d[0].records(42).collect();
        assert_eq!(rec.len(), 1);
        let r = &rec[0];
        assert_eq!(
            (r.id, r.status, r.exit_code),
            (j0, JobStatus::Completed, Some(7))
        );
        assert_eq!((r.num_starts, r.last_holder.as_deref()), (1, Some("w")));
        assert_eq!(
            (r.completed_at, r.started_at, r.seq),
            (Some(AT + 3), Some(AT + 2), 42)
        );
        assert!(t.take_departures().is_empty(), "taken once");

        // Reports about it change nothing: it never runs again.
        apply_ignored(
            &mut t,
            Event::JobCompleted {
                job: j0,
                attempt: 1,
                outcome: Outcome::Exited { code: 0 },
                at: AT,
            },
        );
        apply_ignored(
            &mut t,
            Event::JobDispatched {
                job: j0,
                attempt: 2,
                holder: "w".into(),
                at: AT,
            },
        );
        apply_ignored(&mut t, Event::JobRemoved { job: j0, at: AT });
        assert_eq!(procs(&t.pick_idle(plenty(), 10)), [1, 2]);
        assert_eq!(t.select(&[]), [JobId::new(1, 1), JobId::new(1, 2)]);

        // The last jobs take the cluster with them; its id is not reused.
        run_to_end(&mut t, JobId::new(1, 2), 0);
        apply(
            &mut t,
            Event::JobRemoved {
                job: JobId::new(1, 1),
                at: AT + 9,
            },
        );
        assert!(t.cluster(ClusterId(1)).is_none());
        assert!(t.select(&[]).is_empty());
        assert_eq!(t.counts(), counts(0, 0, 0, 0, 0));
        assert_eq!(
            t.left(),
            LeftQueue {
                completed: 2,
                removed: 1
            }
        );
        assert!(t.has_left(JobId::new(1, 1)) && !t.has_left(JobId::new(2, 0)));
        assert_eq!(t.last_cluster(), ClusterId(1));
        let d = t.take_departures();
        assert_eq!(d.len(), 2);
        let removed: Vec<_> = d[1].records(50).collect();
        assert_eq!(
            (
                removed[0].status,
                removed[0].exit_code,
                removed[0].num_starts
            ),
            (JobStatus::Removed, None, 0)
        );

        // A snapshot of the emptied table is the table.
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn gone_jobs_finished_out_of_order_are_neither_fresh_nor_idle() {
        let mut t = Table::new();
        submit_leaving(&mut t, 1, 10);
        // 5 and 7 are removed before anything ran: records ahead of the
        // fresh ones, then gone.
        apply(
            &mut t,
            Event::JobRemoved {
                job: JobId::new(1, 5),
                at: AT,
            },
        );
        apply(
            &mut t,
            Event::JobRemoved {
                job: JobId::new(1, 7),
                at: AT,
            },
        );
        assert_eq!(t.counts().idle, 8);
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [0, 1, 2, 3, 4, 6, 8, 9]);
        for p in [0, 1, 2, 3, 4] {
            run_to_end(&mut t, JobId::new(1, p), 0);
        }
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [6, 8, 9]);
        run_to_end(&mut t, JobId::new(1, 6), 0);
        assert_eq!(procs(&t.pick_idle(plenty(), 100)), [8, 9]);
        assert_eq!(t.cluster(ClusterId(1)).unwrap().gone.fragments(), 1);
        assert_eq!(
            t.select(&[Selector::Cluster(ClusterId(1))]),
            [JobId::new(1, 8), JobId::new(1, 9)]
        );
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
        back.check_indexes().unwrap();
        assert_eq!(procs(&back.pick_idle(plenty(), 100)), [8, 9]);
    }

    #[test]
    fn gone_a_removed_million_job_cluster_leaves_as_one_range() {
        let mut t = Table::new();
        t.keep_departures();
        submit_leaving(&mut t, 1, 1_000_000);
        run_to_end(&mut t, JobId::new(1, 0), 0);
        dispatch(&mut t, JobId::new(1, 1), 1, "w");
        t.take_departures();
        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: AT + 5,
            },
        );
        assert!(t.cluster(ClusterId(1)).is_none());
        assert_eq!(t.counts(), counts(0, 0, 0, 0, 0));
        assert_eq!(
            t.left(),
            LeftQueue {
                completed: 1,
                removed: 999_999
            }
        );
        assert_eq!(t.jobs_on("w").count(), 0);
        let d = t.take_departures();
        let total: u64 = d.iter().map(|d| d.len()).sum();
        assert_eq!(total, 999_999);
        assert!(d.iter().any(
            |d| matches!(&d.jobs, Departed::NeverRan { procs } if procs == &[(2, 1_000_000)])
        ));
    }

    #[test]
    fn gone_leave_in_queue_keeps_finished_jobs() {
        let mut t = Table::new();
        t.keep_departures();
        submit(&mut t, 1, 2, 0, 1);
        run_to_end(&mut t, JobId::new(1, 0), 3);
        apply(
            &mut t,
            Event::ClusterRemoved {
                cluster: ClusterId(1),
                at: AT,
            },
        );
        assert_eq!(t.view(JobId::new(1, 0)).unwrap().exit_code, Some(3));
        assert_eq!(t.view(JobId::new(1, 1)).unwrap().status, JobStatus::Removed);
        assert_eq!(t.counts(), counts(0, 0, 1, 1, 0));
        assert_eq!(t.left(), LeftQueue::default());
        assert!(t.take_departures().is_empty());
    }

    #[test]
    fn gone_a_foreman_keeps_finished_jobs_out_until_its_master_sends_a_newer_attempt() {
        let mut t = Table::new();
        let adopt = |t: &mut Table, proc, attempt| {
            apply(
                t,
                Event::JobAdopted {
                    key: None,
                    job: JobId::new(4, proc),
                    attempt,
                    spec: Some(leaving_spec(0, 1)),
                    at: AT,
                    wrapper: None,
                },
            );
        };
        adopt(&mut t, 0, 2);
        run_to_end_pinned(&mut t, JobId::new(4, 0), 2);
        assert!(t.has_left(JobId::new(4, 0)) && t.job(JobId::new(4, 0)).is_none());
        // The cluster (its spec) stays for the master's next jobs.
        assert!(t.cluster(ClusterId(4)).is_some());
        assert!(t.pick_idle(plenty(), 10).is_empty());
        // An unknown cluster on a foreman is one it never had, not one gone.
        assert!(!t.has_left(JobId::new(2, 0)));
        adopt(&mut t, 1, 1);
        assert_eq!(procs(&t.pick_idle(plenty(), 10)), [1]);
        // The master requeued 4.0 (this foreman was away past its lease)
        // and sends attempt 3: it runs, pinned to it.
        adopt(&mut t, 0, 3);
        assert!(!t.has_left(JobId::new(4, 0)));
        let r = t.job(JobId::new(4, 0)).unwrap();
        assert_eq!((r.job.state.clone(), r.job.pinned), (JobState::Idle, 3));
        assert_eq!(procs(&t.pick_idle(plenty(), 10)), [0, 1]);
        let back = crate::snapshot::decode(&crate::snapshot::encode(&t)).unwrap();
        assert_eq!(back, t);
    }

    fn run_to_end_pinned(t: &mut Table, job: JobId, attempt: u32) {
        dispatch(t, job, attempt, "w");
        start(t, job, attempt);
        complete(t, job, attempt, 0);
    }
}
