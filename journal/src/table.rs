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

use crate::counts::Counts;
use crate::event::Event;
use pilotq_wire::{ClusterId, JobId, JobSpec, JobStatus, Outcome, Resources};
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
}

const FRESH: Job = Job {
    state: JobState::Idle,
    attempts: 0,
    entered_at: 0,
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
}

impl Cluster {
    /// Idle processes that never had a record.
    pub fn fresh_idle(&self) -> u32 {
        if self.removed_at.is_some() {
            0
        } else {
            self.count - self.next_fresh - self.ahead
        }
    }

    fn has_idle(&self) -> bool {
        !self.requeued.is_empty() || self.fresh_idle() > 0
    }

    /// The job record of `proc`, or the implied one of an untouched process.
    pub fn job(&self, proc: u32) -> Option<JobRef<'_>> {
        if proc >= self.count {
            return None;
        }
        Some(match self.jobs.get(&proc) {
            Some(j) => JobRef {
                job: j,
                entered_at: j.entered_at,
            },
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
        let fresh = (self.next_fresh..self.count)
            .filter(move |p| self.removed_at.is_none() && !self.jobs.contains_key(p));
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
                    attempts: 0,
                    entered_at: self.submitted_at,
                },
            );
            if proc >= self.next_fresh {
                self.ahead += 1;
            }
            while self.next_fresh < self.count && self.jobs.contains_key(&self.next_fresh) {
                self.next_fresh += 1;
                self.ahead -= 1;
            }
        }
        self.jobs.get_mut(&proc).expect("just inserted")
    }
}

const REMOVED: Job = Job {
    state: JobState::Removed,
    attempts: 0,
    entered_at: 0,
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
    // Derived indexes, rebuilt by `reindex` after a snapshot is loaded.
    /// Clusters with idle work, in dispatch order.
    #[serde(skip)]
    idle_index: BTreeSet<(Reverse<i32>, ClusterId)>,
    /// Jobs out on each holder.
    #[serde(skip)]
    out_on: HashMap<Arc<str>, BTreeSet<JobId>>,
    #[serde(skip)]
    counts: Counts,
}

impl PartialEq for Table {
    /// Equality of the *state*; the derived indexes follow from it (and
    /// `check_indexes` tests that they do).
    fn eq(&self, other: &Self) -> bool {
        self.clusters == other.clusters
            && self.last_cluster == other.last_cluster
            && self.restarts == other.restarts
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
                        self.counts.idle -= 1;
                        self.counts.running += 1;
                    }
                }
            }
            Event::JobCompleted {
                job,
                attempt,
                outcome,
                at,
            } => {
                if self.current_attempt(*job) == Some(*attempt) {
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
            Event::JobHeld { job, reason, at } => self.settle(
                *job,
                JobState::Held {
                    reason: reason.clone(),
                },
                *at,
            ),
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
                let c = self.clusters.get_mut(cluster).expect("checked above");
                let fresh = u64::from(c.fresh_idle());
                c.removed_at = Some(*at);
                self.counts.idle -= fresh;
                self.counts.removed += fresh;
                self.refresh_index(*cluster);
            }
        }
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
            let removed_implied = if c.removed_at.is_some() {
                u64::from(c.count - c.jobs.len() as u32)
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
    pub fn pick_idle(&self, mut free: Resources, max: usize) -> Vec<JobId> {
        let mut out = Vec::new();
        for (_, cid) in &self.idle_index {
            // Every request asks for at least one core (submit enforces it),
            // so a holder with no free core can take nothing more.
            if out.len() >= max || free.cores == 0 {
                break;
            }
            let c = &self.clusters[cid];
            let req = c.spec.request;
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
