//! The worker's link upstream: connecting (with fail-over across its
//! upstreams, and a jittered backoff kept inside the lease: `backoff`),
//! registering with its holdings, and what happens when the link is lost
//! (jobs keep running; it reconnects).

use super::{Incoming, Worker};
use crate::connect::{connect_holder, split_link, PeerFramed};
use actix::prelude::*;
use pilotq_wire::{Holding, HoldingState, Role, ToMaster};
use std::time::Duration;

impl Worker {
    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting || self.outbox.is_some() {
            return;
        }
        self.connecting = true;
        let c = self.cfg.clone();
        let upstream = self.upstream().to_string();
        let fut = async move {
            connect_holder(
                &upstream,
                Role::Worker,
                &c.name,
                c.secret.as_ref(),
                c.tls.as_ref(),
                c.max_frame,
                Duration::from_secs(20),
            )
            .await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.connecting = false;
            match res {
                Ok((framed, lease)) => {
                    if let Some(lease) = lease {
                        act.backoff.fit_lease(lease);
                    }
                    act.attach(framed, ctx)
                }
                Err(e) => {
                    act.fail_over();
                    let wait = act.backoff.next_wait_among(act.cfg.upstreams.len());
                    tracing::warn!(
                        "{e}; trying {} in {:.1} s",
                        act.upstream(),
                        wait.as_secs_f64()
                    );
                    ctx.run_later(wait, |act, ctx| act.connect(ctx));
                }
            }
        }));
    }

    pub(super) fn upstream(&self) -> &str {
        &self.cfg.upstreams[self.upstream % self.cfg.upstreams.len()]
    }

    /// The next upstream in the list (the same one if there is only one).
    fn fail_over(&mut self) {
        self.upstream = (self.upstream + 1) % self.cfg.upstreams.len();
    }

    fn attach(&mut self, framed: PeerFramed, ctx: &mut Context<Self>) {
        self.generation += 1;
        let gen = self.generation;
        // Specs are sent once per cluster per connection; blobs asked for on
        // the old one are asked for again below.
        self.specs.clear();
        self.fetching.clear();
        let (outbox, stream) = split_link(framed, self.cfg.max_frame, move |m| Incoming(gen, m));
        ctx.add_message_stream(stream);
        let holdings = self.holdings();
        tracing::info!(upstream = %self.upstream(), name = %self.cfg.name, holdings = holdings.len(), "connected");
        // A single-task worker takes one job, and queues nothing behind it.
        let (depth, max_jobs) = if self.cfg.single_task {
            (1, 1)
        } else {
            (self.cfg.depth, 0)
        };
        // A draining worker offers nothing: no job may be planned for it
        // before its Drain (sent next) is read.
        let resources = if self.draining {
            pilotq_wire::Resources::default()
        } else {
            self.cfg.resources
        };
        outbox.deliver(ToMaster::Register {
            resources,
            holdings,
            depth,
            max_jobs,
            tags: self.cfg.tags.clone(),
            token: self.token.clone(),
        });
        if self.draining {
            self.drained = false;
            outbox.deliver(ToMaster::Drain);
        }
        self.outbox = Some(outbox);
        self.fetch_missing();
        self.backoff.reset();
        // Results not yet acknowledged follow, in frames of bounded size.
        self.pending_finished = self.results.values().cloned().collect();
        self.schedule_flush(ctx);
    }

    fn holdings(&self) -> Vec<Holding> {
        let key = |job, attempt| self.keys.get(&(job, attempt)).copied();
        let running = self.running.iter().map(|(job, r)| Holding {
            job: *job,
            attempt: r.attempt,
            spec: Some(Box::new((*r.spec).clone())),
            wrapper: r.wrapper.clone(),
            key: key(*job, r.attempt),
            state: HoldingState::Running {
                started_at: r.started_at,
            },
        });
        let queued = self.queue.iter().map(|q| Holding {
            job: q.job,
            attempt: q.attempt,
            spec: Some(Box::new((*q.spec).clone())),
            wrapper: q.wrapper.clone(),
            key: key(q.job, q.attempt),
            state: HoldingState::Queued,
        });
        let done = self.results.values().map(|r| Holding {
            job: r.job,
            attempt: r.attempt,
            spec: None,
            wrapper: None,
            key: r.key,
            state: HoldingState::ResultFollows,
        });
        running.chain(queued).chain(done).collect()
    }

    pub(super) fn lost_connection(&mut self, ctx: &mut Context<Self>, why: &str) {
        if let Some(ob) = self.outbox.take() {
            ob.closed.cancel();
            self.fail_over();
            tracing::warn!(
                "lost the upstream ({why}); jobs keep running; reconnecting to {}",
                self.upstream()
            );
            self.pending_started.clear();
            self.pending_finished.clear();
            let wait = self.backoff.next_wait_among(self.cfg.upstreams.len());
            ctx.run_later(wait, |act, ctx| act.connect(ctx));
        }
    }
}
