//! Handing idle jobs to holders. Passes are coalesced: any number of
//! finished reports, registrations and submissions in one burst schedule a
//! single pass, which walks the connected holders and gives each what fits in
//! its free resources, in the table's order (priority, cluster, process).

use super::Master;
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_journal::{now_ms, Event};
use pilotq_wire::message::Assignment;
use pilotq_wire::FromMaster;

/// Most jobs one holder gets in one pass (and one `Dispatch` frame).
const MAX_PER_PASS: usize = 1024;

impl Master {
    pub(crate) fn schedule_dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.dispatch_scheduled {
            self.dispatch_scheduled = true;
            ctx.run_later(std::time::Duration::ZERO, |act, _| act.dispatch_pass());
        }
    }

    fn dispatch_pass(&mut self) {
        self.dispatch_scheduled = false;
        if self.table.counts().idle == 0 {
            return;
        }
        let names: Vec<String> = self.holders.keys().cloned().collect();
        let (events, deliveries) = self.plan_dispatch(names);
        if events.is_empty() {
            return;
        }
        // Already applied by the plan; hand them to the journal only.
        self.commit_applied(events, vec![], vec![], move || deliver(deliveries));
    }

    /// Picks idle jobs for the named holders (those connected and with room),
    /// applies the dispatch events to the table, and returns them with the
    /// frames to deliver once they are durable.
    ///
    /// Two rounds: first every holder's free *slots* (its real resources),
    /// so work spreads over idle holders before any queues; then their
    /// queues (resources × depth), so each has its next job at hand.
    pub(crate) fn plan_dispatch(&mut self, names: Vec<String>) -> (Vec<Event>, Deliveries) {
        let mut events = Vec::new();
        let mut deliveries = Vec::new();
        for queue in [false, true] {
            if self.table.counts().idle == 0 {
                break;
            }
            self.plan_round(&names, queue, &mut events, &mut deliveries);
        }
        (events, deliveries)
    }

    fn plan_round(
        &mut self,
        names: &[String],
        queue: bool,
        events: &mut Vec<Event>,
        deliveries: &mut Deliveries,
    ) {
        let now = now_ms();
        for name in names {
            let Some(h) = self.holders.get(name) else {
                continue;
            };
            let Some(ob) = h.outbox.clone().filter(|o| !o.is_closed()) else {
                continue;
            };
            if h.draining {
                continue;
            }
            let limit = if queue { h.capacity } else { h.resources };
            let free = limit.minus(&self.table.used_on(name));
            let most = match h.max_jobs {
                0 => MAX_PER_PASS,
                n => (n as usize).saturating_sub(self.table.jobs_on(name).count()),
            };
            let picks = self
                .table
                .pick_idle_within(free, h.resources, most, Some(&h.tags));
            if picks.is_empty() {
                continue;
            }
            let mut assignments = Vec::with_capacity(picks.len());
            for job in picks {
                let (exe_hash, cluster_wrapper) = {
                    let c = self.table.cluster(job.cluster).expect("picked from it");
                    (c.spec.executable.clone(), c.wrapper.clone())
                };
                // A foreman dispatches nothing whose executable or wrapper it
                // lacks (a job adopted from a worker that failed over to it):
                // it asks its master and dispatches once the bytes are here.
                if self.seat.is_local() {
                    let missing: Vec<String> = std::iter::once(exe_hash.clone())
                        .chain(cluster_wrapper.clone())
                        .filter(|h| !self.has_blob_here(h))
                        .collect();
                    if !missing.is_empty() {
                        for h in &missing {
                            self.fetch_blob(h);
                        }
                        continue;
                    }
                }
                // A foreman dispatches its master's attempt (attempts hold end
                // to end); a master, the next one.
                let attempt = match self.table.job(job) {
                    Some(r) if r.job.pinned > 0 => r.job.pinned,
                    Some(r) => r.job.attempts + 1,
                    None => 1,
                };
                let spec = self
                    .table
                    .cluster(job.cluster)
                    .expect("picked from it")
                    .spec
                    .clone();
                let h = &self.holders[name];
                let sent = h.blobs_sent.contains(&spec.executable);
                let spec_sent = h.specs_sent.contains(&job.cluster);
                let executable = if sent {
                    None
                } else {
                    match self.blob(&spec.executable) {
                        Some(b) => {
                            let h = self.holders.get_mut(name).expect("listed");
                            h.blobs_sent.insert(spec.executable.clone());
                            Some(b)
                        }
                        None => {
                            tracing::error!(%job, hash = %spec.executable, "executable missing from the journal's blobs");
                            None
                        }
                    }
                };
                let e = Event::JobDispatched {
                    job,
                    attempt,
                    holder: name.clone(),
                    at: now,
                };
                // Applied now so the next pick sees it.
                self.table.apply(&e);
                events.push(e);
                if !spec_sent {
                    let h = self.holders.get_mut(name).expect("listed");
                    h.specs_sent.insert(job.cluster);
                }
                let (wrapper, wrapper_bytes) = self.wrapper_for(name, cluster_wrapper);
                assignments.push(Assignment {
                    wrapper,
                    wrapper_bytes,
                    job,
                    attempt,
                    spec: (!spec_sent).then(|| (*spec).clone()),
                    executable,
                    key: self.seat.attempt_key(&self.table, job, attempt),
                });
            }
            // Several frames when executables make one too big for the
            // holder to read (it would break the connection, and the jobs
            // would be requeued until held).
            for frame in frames_within(assignments, self.cfg.max_frame / 2) {
                deliveries.push((ob.clone(), frame));
            }
        }
    }

    /// The job wrapper's hash, and its bytes if this connection lacks them:
    /// on a foreman, the one its master adopted the job's cluster with; on a
    /// master, its own `--job-wrapper`. So a job runs wrapped on every path.
    fn wrapper_for(
        &mut self,
        name: &str,
        adopted: Option<String>,
    ) -> (Option<String>, Option<Vec<u8>>) {
        let hash = match (adopted, &self.wrapper) {
            (Some(h), _) => h,
            (None, Some((h, _))) => h.clone(),
            (None, None) => return (None, None),
        };
        let h = self.holders.get_mut(name).expect("listed");
        if !h.blobs_sent.insert(hash.clone()) {
            return (Some(hash), None);
        }
        let bytes = match &self.wrapper {
            Some((own, bytes)) if *own == hash => Some(bytes.clone()),
            _ => self.blob(&hash),
        };
        if bytes.is_none() {
            // Not sent after all: the next dispatch tries again.
            if let Some(h) = self.holders.get_mut(name) {
                h.blobs_sent.remove(&hash);
            }
            tracing::error!(%hash, "job wrapper missing from the journal's blobs");
        }
        (Some(hash), bytes)
    }

    /// Whether an executable's bytes are here (memory or journal).
    pub(crate) fn has_blob_here(&self, hash: &str) -> bool {
        self.blobs.contains_key(hash) || self.store.has_blob(hash).unwrap_or(false)
    }

    /// An executable's bytes: from memory if submitted recently (its write
    /// to the journal may still be in flight), else from the journal.
    fn blob(&mut self, hash: &str) -> Option<Vec<u8>> {
        if let Some(b) = self.blobs.get(hash) {
            return Some(b.clone());
        }
        let b = self.store.blob(hash).ok().flatten()?;
        self.remember_blob(hash.to_string(), b.clone());
        Some(b)
    }
}

/// About how many bytes an assignment takes in a frame: its executable and
/// wrapper bytes, its spec when it carries one, and a margin for the rest.
fn size_hint(a: &Assignment) -> usize {
    a.executable.as_ref().map_or(0, Vec::len)
        + a.wrapper_bytes.as_ref().map_or(0, Vec::len)
        + a.spec.as_ref().map_or(0, spec_size_hint)
        + ASSIGNMENT_OVERHEAD
}

/// Bytes of an assignment besides its blobs and spec (ids, hashes, names).
pub(crate) const ASSIGNMENT_OVERHEAD: usize = 256;

/// About how many bytes a spec takes encoded (an upper estimate).
pub(crate) fn spec_size_hint(s: &pilotq_wire::JobSpec) -> usize {
    s.cmd.len()
        + s.executable.len()
        + s.arguments.iter().map(|x| x.len() + 8).sum::<usize>()
        + s.environment
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
        + s.attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
        + s.tags.iter().map(|x| x.len() + 8).sum::<usize>()
        + s.output.as_ref().map_or(0, String::len)
        + s.error.as_ref().map_or(0, String::len)
        + s.log.as_ref().map_or(0, String::len)
        + s.owner.len()
        + s.iwd.len()
        + 512
}

/// Splits one holder's assignments into frames of at most about `budget`
/// bytes each (one assignment per frame at least), in order.
fn frames_within(assignments: Vec<Assignment>, budget: usize) -> Vec<Vec<Assignment>> {
    let mut frames = Vec::new();
    let mut frame = Vec::new();
    let mut size = 0;
    for a in assignments {
        let n = size_hint(&a);
        if !frame.is_empty() && size + n > budget {
            frames.push(std::mem::take(&mut frame));
            size = 0;
        }
        size += n;
        frame.push(a);
    }
    if !frame.is_empty() {
        frames.push(frame);
    }
    frames
}

/// `Dispatch` frames waiting for their events to be durable.
pub(crate) type Deliveries = Vec<(Outbox<FromMaster>, Vec<Assignment>)>;

pub(crate) fn deliver(deliveries: Deliveries) {
    for (ob, a) in deliveries {
        ob.deliver(FromMaster::Dispatch(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::JobId;

    fn a(proc: u32, exe: usize) -> Assignment {
        Assignment {
            job: JobId::new(1, proc),
            attempt: 1,
            spec: None,
            executable: (exe > 0).then(|| vec![0u8; exe]),
            wrapper: None,
            wrapper_bytes: None,
            key: None,
        }
    }

    #[test]
    fn executables_split_a_dispatch_into_frames_within_the_budget() {
        let frames = frames_within(
            vec![
                a(0, 400_000),
                a(1, 0),
                a(2, 400_000),
                a(3, 400_000),
                a(4, 0),
            ],
            1_000_000,
        );
        let procs: Vec<Vec<u32>> = frames
            .iter()
            .map(|f| f.iter().map(|a| a.job.proc).collect())
            .collect();
        assert_eq!(procs, [vec![0, 1, 2], vec![3, 4]]);
        for f in &frames {
            let bytes: usize = f.iter().map(size_hint).sum();
            let exe: usize = f
                .iter()
                .map(|a| a.executable.as_ref().map_or(0, Vec::len))
                .sum();
            assert!(exe <= bytes && bytes <= 1_000_000, "{exe} {bytes}");
        }
        // One too big for the budget still goes, alone.
        let frames = frames_within(vec![a(0, 10), a(1, 2_000_000), a(2, 10)], 1_000_000);
        assert_eq!(frames.len(), 3);
        // Small ones share a frame.
        assert_eq!(
            frames_within((0..1000).map(|p| a(p, 0)).collect(), 1_000_000).len(),
            1
        );
    }
}
