//! `pilotq journal plot`: idle, running and completed jobs over time, with
//! master restarts, outages and holder losses, from one streaming pass.
//!
//! The counts come from the [`Tracker`]; a sample is kept per time bucket
//! (the last reading in it). The bucket starts at one second and doubles
//! whenever more than [`MAX_SAMPLES`] would be kept, so a month-long journal
//! makes as small a curve as an hour-long one.

use super::tracker::{Effect, Tracker};
use crate::event::{Envelope, Event};
use serde::Serialize;

/// The most samples kept; the plotter draws at most ~2 per pixel anyway.
pub const MAX_SAMPLES: usize = 8_192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// Stored time of the last event in its bucket (unix ms).
    pub t: u64,
    /// HTCondor's idle (assigned included).
    pub idle: u64,
    pub running: u64,
    /// Cumulative.
    pub completed: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Curve {
    pub samples: Vec<Reading>,
    /// Master starts after the first (unix ms).
    pub restarts: Vec<u64>,
    /// Outages: last event before a start → that start (unix ms).
    pub outages: Vec<(u64, u64)>,
    /// Holder losses: each requeue (unix ms, stored time).
    pub requeues: Vec<u64>,
}

#[derive(Debug)]
pub struct CurveFold {
    tracker: Tracker,
    curve: Curve,
    bucket_ms: u64,
    last_t: Option<u64>,
    completed: u64,
    /// Requeues are many in a bad hour; more than this are thinned to one
    /// per bucket.
    requeue_bucket: Option<u64>,
}

impl Default for CurveFold {
    fn default() -> Self {
        CurveFold {
            tracker: Tracker::new(),
            curve: Curve::default(),
            bucket_ms: 1_000,
            last_t: None,
            completed: 0,
            requeue_bucket: None,
        }
    }
}

impl CurveFold {
    pub fn new() -> CurveFold {
        CurveFold::default()
    }

    pub fn push(&mut self, env: &Envelope) {
        let t = env.t;
        if let Event::MasterStarted { at, .. } = &env.e {
            if let Some(prev) = self.last_t {
                self.curve.restarts.push(*at);
                self.curve.outages.push((prev, (*at).max(prev)));
            }
        }
        match self.tracker.apply(&env.e) {
            Effect::Completed { .. } => self.completed += 1,
            Effect::Requeued { .. } => {
                let b = t / self.bucket_ms;
                if self.requeue_bucket != Some(b) || self.curve.requeues.len() < MAX_SAMPLES {
                    self.curve.requeues.push(t);
                }
                self.requeue_bucket = Some(b);
            }
            _ => {}
        }
        self.last_t = Some(t);
        let c = self.tracker.counts();
        let reading = Reading {
            t,
            idle: c.idle,
            running: c.running,
            completed: self.completed,
        };
        let s = &mut self.curve.samples;
        match s.last_mut() {
            Some(last) if last.t / self.bucket_ms == t / self.bucket_ms => *last = reading,
            _ => s.push(reading),
        }
        if s.len() > MAX_SAMPLES {
            self.bucket_ms *= 2;
            let b = self.bucket_ms;
            // Keep the last reading of each (doubled) bucket.
            let mut kept: Vec<Reading> = Vec::with_capacity(s.len() / 2 + 1);
            for r in s.drain(..) {
                match kept.last_mut() {
                    Some(k) if k.t / b == r.t / b => *k = r,
                    _ => kept.push(r),
                }
            }
            *s = kept;
        }
    }

    pub fn finish(self) -> Curve {
        self.curve
    }
}

#[cfg(test)]
mod tests {
    use super::super::tracker::tests::story;
    use super::*;

    #[test]
    fn the_story_as_a_curve() {
        let mut f = CurveFold::new();
        for e in story() {
            f.push(&Envelope { v: 2, t: e.at(), e });
        }
        let c = f.finish();
        assert_eq!(c.restarts, [30_000]);
        assert_eq!(c.outages, [(20_000, 30_000)]);
        assert_eq!(c.requeues, [20_000]);
        let last = c.samples.last().unwrap();
        assert_eq!((last.t, last.completed, last.running), (50_000, 3, 0));
        // One reading per second at most.
        assert!(c.samples.windows(2).all(|w| w[0].t / 1000 < w[1].t / 1000));
        // The first second ends with clusters 1 and 2 submitted.
        assert_eq!(c.samples[0].idle, 8);
    }

    #[test]
    fn a_long_journal_keeps_a_bounded_curve() {
        let mut f = CurveFold::new();
        let story = story();
        // A million events a second apart.
        for i in 0..1_000_000u64 {
            let e = story[(i % 3) as usize].clone();
            f.push(&Envelope {
                v: 2,
                t: 1_000 + i * 1_000,
                e,
            });
        }
        let c = f.finish();
        assert!(c.samples.len() <= MAX_SAMPLES && c.samples.len() > MAX_SAMPLES / 4);
        assert_eq!(c.samples.last().unwrap().t, 1_000 + 999_999 * 1_000);
        assert!(c.samples.windows(2).all(|w| w[0].t < w[1].t));
    }
}
