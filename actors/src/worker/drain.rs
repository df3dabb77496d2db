//! Leaving cleanly: a drain file, a single task done, or an idle timeout
//! make the worker ask for no more jobs, finish what it holds, deliver the
//! results, and exit.

use super::Worker;
use actix::prelude::*;
use pilotq_wire::ToMaster;

impl Worker {
    /// Nothing running, queued or waiting for acknowledgement.
    pub(super) fn idle(&self) -> bool {
        self.running.is_empty() && self.queue.is_empty() && self.results.is_empty()
    }

    /// Asks for no more jobs; what the worker holds still runs and reports.
    pub(super) fn begin_drain(&mut self, why: &str) {
        if self.draining {
            return;
        }
        tracing::info!("draining ({why}): no new jobs; exiting once what is held is done");
        self.draining = true;
        if let Some(ob) = &self.outbox {
            ob.deliver(ToMaster::Drain);
        }
    }

    /// Once a second: the drain file, the idle timeout, and whether a
    /// draining worker is done.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        if !self.idle() {
            self.idle_since = std::time::Instant::now();
        }
        if self.cfg.drain_file.as_deref().is_some_and(|f| f.exists()) {
            self.begin_drain("the drain file exists");
        }
        if let Some(t) = self.cfg.idle_timeout {
            if self.idle() && self.idle_since.elapsed() >= t {
                self.begin_drain("idle timeout");
            }
        }
        // Done when nothing is held and either the upstream confirmed no
        // more jobs come, or there is no upstream to deliver anything to.
        if self.draining && self.idle() && (self.drained || self.outbox.is_none()) {
            tracing::info!("drained: exiting");
            self.cfg.done.notify_one();
            ctx.stop();
        }
    }
}
