//! How long a holder (worker or foreman) waits between tries to reach its
//! master.
//!
//! The wait doubles from 1 s, and each wait is jittered by ±20% so that a
//! thousand holders that lost the master together do not come back together.
//! It stops growing at 60 s, or at a third of the lease the master granted
//! in its `Welcome` if that is less. The lease is the limit because a master
//! that comes back gives each orphaned holder one lease to return and claim
//! its jobs. A holder asleep in a longer wait would find them requeued and
//! run again elsewhere. At a third, even the longest jittered wait (0.4 of a
//! lease) leaves time to connect and register.

use rand::Rng;
use std::time::Duration;

pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    /// The base of the next wait.
    next: Duration,
    /// Where the doubling stops: `max`, or less once a lease is known.
    ceiling: Duration,
}

impl Default for Backoff {
    /// A real holder's: 1 s doubling to 60 s.
    fn default() -> Self {
        Backoff::new(BACKOFF_MIN, BACKOFF_MAX)
    }
}

impl Backoff {
    /// Waits from `min` doubling to `max` (the sim's workers use shorter
    /// ones, so that a simulated crash costs seconds).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
            ceiling: max,
        }
    }

    /// The wait before the next try; the one after will be twice as long,
    /// up to the ceiling.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    }

    /// Connected: the next loss starts again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Keeps the waits inside `lease` (from the master's `Welcome`). The
    /// ceiling is kept across reconnects: the holder has jobs to keep only
    /// once it has been welcomed.
    pub fn fit_lease(&mut self, lease: Duration) {
        self.ceiling = (lease / 3).clamp(self.min, self.max);
        self.next = self.next.min(self.ceiling);
    }

    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// The longest wait there can be from now on: the ceiling, jittered up.
    pub fn longest_wait(&self) -> Duration {
        self.ceiling.mul_f64(1.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bases of `n` waits, with the ±20% jitter taken back out.
    fn bases(b: &mut Backoff, n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|_| {
                let base = b.next.as_secs_f64();
                let w = b.next_wait().as_secs_f64();
                assert!(
                    (base * 0.8..=base * 1.2).contains(&w),
                    "{w} s is not within 20% of {base} s"
                );
                (base, w)
            })
            .collect()
    }

    #[test]
    fn doubles_from_one_second_to_a_minute() {
        let mut b = Backoff::default();
        let got: Vec<f64> = bases(&mut b, 9).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]);
        b.reset();
        assert_eq!(bases(&mut b, 1)[0].0, 1.0);
    }

    #[test]
    fn a_lease_caps_it_at_a_third_and_the_longest_wait_fits() {
        let lease = Duration::from_secs(60);
        let mut b = Backoff::default();
        // Already deep in a long outage when the lease is learned.
        bases(&mut b, 8);
        b.fit_lease(lease);
        assert_eq!(b.ceiling(), Duration::from_secs(20));
        assert_eq!(b.longest_wait(), Duration::from_secs(24));
        for (base, wait) in bases(&mut b, 50) {
            assert!(base <= 20.0, "{base}");
            assert!(wait <= 0.4 * lease.as_secs_f64() + 1e-9, "{wait}");
        }
        // The ceiling stays across a reset.
        b.reset();
        let got: Vec<f64> = bases(&mut b, 7).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]);
    }

    #[test]
    fn the_ceiling_stays_between_one_second_and_a_minute() {
        let mut b = Backoff::default();
        b.fit_lease(Duration::from_millis(1500));
        assert_eq!(b.ceiling(), BACKOFF_MIN);
        assert!(bases(&mut b, 5).iter().all(|(base, _)| *base == 1.0));
        b.fit_lease(Duration::from_secs(3600));
        assert_eq!(b.ceiling(), BACKOFF_MAX);
    }

    #[test]
    fn other_bounds_hold_the_same_way() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let got: Vec<f64> = bases(&mut b, 7).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]);
        b.fit_lease(Duration::from_secs(3));
        assert_eq!(b.ceiling(), Duration::from_secs(1));
        b.fit_lease(Duration::from_millis(300));
        assert_eq!(b.ceiling(), Duration::from_millis(200));
        b.reset();
        assert_eq!(bases(&mut b, 1)[0].0, 0.2);
    }
}
