//! Handing idle jobs to holders. Passes are coalesced: any number of
//! finished reports, registrations and submissions in one burst schedule a
//! single pass, which walks the connected holders and gives each what fits in
//! its free resources, in the table's order (priority, cluster, process).

use super::Master;
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
        let names: Vec<String> = self
            .holders
            .iter()
            .filter(|(_, h)| {
                h.outbox.as_ref().is_some_and(|o| !o.is_closed()) && h.resources.cores > 0
            })
            .map(|(n, _)| n.clone())
            .collect();
        let now = now_ms();
        let mut events = Vec::new();
        let mut deliveries = Vec::new();
        for name in names {
            let h = &self.holders[&name];
            let free = h.resources.minus(&self.table.used_on(&name));
            let picks = self.table.pick_idle(free, MAX_PER_PASS);
            if picks.is_empty() {
                continue;
            }
            let mut assignments = Vec::with_capacity(picks.len());
            let mut these = Vec::with_capacity(picks.len());
            for job in picks {
                let attempt = self.table.job(job).map(|r| r.job.attempts + 1).unwrap_or(1);
                let spec = (*self
                    .table
                    .cluster(job.cluster)
                    .expect("picked from it")
                    .spec)
                    .clone();
                let h = self.holders.get_mut(&name).expect("listed");
                let executable = if h.blobs_sent.contains(&spec.executable) {
                    None
                } else {
                    match self.store.blob(&spec.executable) {
                        Ok(Some(b)) => {
                            h.blobs_sent.insert(spec.executable.clone());
                            Some(b)
                        }
                        _ => {
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
                // Applied now so the next pick in this pass sees it.
                self.table.apply(&e);
                these.push(e);
                assignments.push(Assignment {
                    job,
                    attempt,
                    spec,
                    executable,
                });
            }
            events.append(&mut these);
            let ob = self.holders[&name].outbox.clone().expect("connected");
            deliveries.push((ob, assignments));
        }
        if events.is_empty() {
            return;
        }
        // Already applied above; hand them to the journal only.
        self.commit_applied(events, move || {
            for (ob, a) in deliveries {
                ob.deliver(FromMaster::Dispatch(a));
            }
        });
    }
}
