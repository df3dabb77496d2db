//! Jobs as clients see them: [`JobView`] for `q`, selected by cluster or job
//! id, in cluster and process order.

use crate::table::{Cluster, JobState, Table};
use pilotq_wire::{ClusterId, JobId, JobView, Selector};
use std::collections::{BTreeMap, BTreeSet};

impl Table {
    /// The job ids `selectors` name (all jobs when empty), in order, each once.
    ///
    /// Only the named clusters are looked at: a query for one job costs a
    /// lookup, not a walk over every job ever submitted.
    pub fn select(&self, selectors: &[Selector]) -> Vec<JobId> {
        let all = selectors.is_empty() || selectors.contains(&Selector::All);
        let mut whole: BTreeSet<ClusterId> = BTreeSet::new();
        let mut some: BTreeMap<ClusterId, BTreeSet<u32>> = BTreeMap::new();
        for s in selectors {
            match s {
                Selector::Cluster(c) => {
                    whole.insert(*c);
                }
                Selector::Job(j) => {
                    some.entry(j.cluster).or_default().insert(j.proc);
                }
                Selector::All => {}
            }
        }
        let named: Vec<ClusterId> = if all {
            self.clusters().map(|(id, _)| *id).collect()
        } else {
            let named: BTreeSet<ClusterId> = whole.iter().chain(some.keys()).copied().collect();
            named.into_iter().collect()
        };
        let mut out = Vec::new();
        for cid in named {
            let Some(c) = self.cluster(cid) else { continue };
            let id = |proc| JobId { cluster: cid, proc };
            if all || whole.contains(&cid) {
                out.extend(c.procs_in_queue().map(id));
            } else if let Some(procs) = some.get(&cid) {
                out.extend(procs.range(..c.count).copied().map(id));
            }
        }
        out
    }

    /// Clusters named by `selectors`, for O(clusters) iteration without
    /// enumerating a million processes when the whole cluster is wanted.
    pub fn selected_clusters(&self, selectors: &[Selector]) -> Vec<ClusterId> {
        let all = selectors.is_empty() || selectors.contains(&Selector::All);
        if all {
            return self.clusters().map(|(id, _)| *id).collect();
        }
        let named: BTreeSet<ClusterId> = selectors
            .iter()
            .filter_map(|s| match s {
                Selector::Cluster(c) => Some(*c),
                _ => None,
            })
            .collect();
        named
            .into_iter()
            .filter(|c| self.cluster(*c).is_some())
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
    let (exit_code, signal) = state.exit();
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
        completed_at: None,
        num_starts: attempts,
        last_holder: state.out_on().map(|(h, _)| h.to_string()),
        seq: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn table() -> Table {
        let mut t = Table::new();
        for (c, count) in [(1u64, 5u32), (2, 1), (4, 3)] {
            t.apply(&Event::ClusterSubmitted {
                cluster: ClusterId(c),
                count,
                spec: crate::table::tests::spec(0, 1),
                at: 1,
            });
        }
        t
    }

    /// What `select` meant when it walked every job: each job id of the
    /// table, in order, kept if any selector names it.
    fn walked(t: &Table, selectors: &[Selector]) -> Vec<JobId> {
        let all = selectors.is_empty() || selectors.contains(&Selector::All);
        let mut out = Vec::new();
        for (cid, c) in t.clusters() {
            for proc in 0..c.count {
                let id = JobId {
                    cluster: *cid,
                    proc,
                };
                let named = selectors.iter().any(|s| s.matches(id));
                if all || named {
                    out.push(id);
                }
            }
        }
        out
    }

    #[test]
    fn select_looks_only_at_named_clusters_and_matches_a_full_walk() {
        let t = table();
        let j = |c, p| Selector::Job(JobId::new(c, p));
        let cases: Vec<Vec<Selector>> = vec![
            vec![],
            vec![Selector::All],
            vec![j(1, 3)],
            vec![j(4, 2), j(1, 0), j(1, 0)],
            vec![Selector::Cluster(ClusterId(4)), j(4, 1), j(2, 0)],
            vec![j(1, 5), j(3, 0), j(9, 9), Selector::Cluster(ClusterId(7))],
            vec![
                Selector::Cluster(ClusterId(2)),
                Selector::Cluster(ClusterId(1)),
            ],
            vec![j(2, 0), Selector::All],
            vec![j(1, u32::MAX)],
        ];
        for sel in cases {
            assert_eq!(t.select(&sel), walked(&t, &sel), "{sel:?}");
            let clusters: Vec<ClusterId> = t
                .clusters()
                .map(|(c, _)| *c)
                .filter(|c| {
                    sel.is_empty()
                        || sel.contains(&Selector::All)
                        || sel.contains(&Selector::Cluster(*c))
                })
                .collect();
            assert_eq!(t.selected_clusters(&sel), clusters, "{sel:?}");
        }
    }
}
