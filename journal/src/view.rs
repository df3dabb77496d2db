//! Jobs as clients see them: [`JobView`] for `q`, selected by cluster or job
//! id, in cluster and process order.

use crate::table::{Cluster, JobState, Table};
use pilotq_wire::{ClusterId, JobId, JobView, Outcome, Selector};

impl Table {
    /// The job ids `selectors` name (all jobs when empty), in order, each once.
    pub fn select(&self, selectors: &[Selector]) -> Vec<JobId> {
        let mut out = Vec::new();
        let all = selectors.is_empty() || selectors.contains(&Selector::All);
        for (cid, c) in self.clusters() {
            for proc in 0..c.count {
                let id = JobId {
                    cluster: *cid,
                    proc,
                };
                if all
                    || selectors.iter().any(|s| match s {
                        Selector::Cluster(sc) => sc == cid,
                        Selector::Job(j) => *j == id,
                        Selector::All => true,
                    })
                {
                    out.push(id);
                }
            }
        }
        out
    }

    /// Clusters named by `selectors`, for O(clusters) iteration without
    /// enumerating a million processes when the whole cluster is wanted.
    pub fn selected_clusters(&self, selectors: &[Selector]) -> Vec<ClusterId> {
        let all = selectors.is_empty() || selectors.contains(&Selector::All);
        self.clusters()
            .map(|(id, _)| *id)
            .filter(|id| {
                all || selectors
                    .iter()
                    .any(|s| matches!(s, Selector::Cluster(c) if c == id))
            })
            .collect()
    }

    pub fn view(&self, id: JobId) -> Option<JobView> {
        let c = self.cluster(id.cluster)?;
        let j = c.job(id.proc)?;
        Some(view_of(
            c,
            id,
            j.job.state.clone(),
            j.job.attempts,
            j.entered_at,
        ))
    }
}

fn view_of(c: &Cluster, id: JobId, state: JobState, attempts: u32, entered_at: u64) -> JobView {
    let spec = &c.spec;
    let (exit_code, signal) = match &state {
        JobState::Completed {
            outcome: Outcome::Exited { code },
        } => (Some(*code), None),
        JobState::Completed {
            outcome: Outcome::Signalled { signal },
        } => (None, Some(*signal)),
        _ => (None, None),
    };
    JobView {
        id,
        status: state.status(),
        attempts,
        exit_code,
        signal,
        holder: state.out_on().map(|(h, _)| h.to_string()),
        hold_reason: match &state {
            JobState::Held { reason, .. } => Some(reason.clone()),
            _ => None,
        },
        owner: spec.owner.clone(),
        cmd: spec.cmd.clone(),
        arguments: spec.arguments.clone(),
        priority: spec.priority,
        request: spec.request,
        submitted_at: c.submitted_at,
        entered_status_at: entered_at,
        started_at: match &state {
            JobState::Running { started_at, .. } => Some(*started_at),
            _ => None,
        },
        attributes: spec.attributes.clone(),
    }
}
