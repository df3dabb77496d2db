//! How long a holder (worker or foreman) waits between tries to reach its
//! master.
//!
//! The wait doubles from 1 s, and each wait is jittered by ±20% so that a
//! thousand holders that lost the master together do not come back together.
//! It stops growing at 60 s, or at a third of the shortest lease a master
//! has stated in its `Welcome` if that is less (a foreman starts from its
//! own lease, since it may hold jobs from before its restart). The lease is
//! the limit because a master that comes back gives each orphaned holder
//! one lease to return and claim its jobs. A holder asleep in a longer wait
//! would find them requeued and run again elsewhere. At a third, even the
//! longest jittered wait (0.4 of a lease) leaves time to connect and
//! register — unless the try itself hangs: a connect to a host that drops
//! packets waits out its own timeout (20 s) first.

use rand::Rng;
use std::time::Duration;

pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    /// The base of the next wait.
    next: Duration,
    /// Where the doubling stops: `max`, or less once a lease is known.
    ceiling: Duration,
    /// Tries since the last reset, for [`Backoff::next_wait_among`].
    tries: usize,
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
        assert!(min <= max, "backoff from {min:?} to {max:?}");
        Backoff {
            min,
            next: min,
            ceiling: max,
            tries: 0,
        }
    }

    /// The wait before the next try; the one after will be twice as long,
    /// up to the ceiling.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        base.mul_f64(jitter())
    }

    /// The wait before trying the next of `upstreams` masters, in turn:
    /// the shortest while a round of them is not over, the doubling wait
    /// once it is. A dead first upstream then costs a holder one short wait
    /// before the live second, not a doubled one.
    pub fn next_wait_among(&mut self, upstreams: usize) -> Duration {
        self.tries += 1;
        if upstreams > 1 && !self.tries.is_multiple_of(upstreams) {
            return self.min.min(self.ceiling).mul_f64(jitter());
        }
        self.next_wait()
    }

    /// Connected: the next loss starts again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = self.min.min(self.ceiling);
        self.tries = 0;
    }

    /// Keeps the waits inside `lease` (a master's, from its `Welcome`) and
    /// every lease fitted before: the ceiling only comes down. A holder
    /// that fails over between masters with different leases must meet the
    /// strictest, since it cannot know which one holds its jobs; and a
    /// master that states a long lease but dies before the holder
    /// registers must not lift the ceiling meanwhile.
    ///
    /// The ceiling never goes below 100 ms, however short the lease.
    pub fn fit_lease(&mut self, lease: Duration) {
        let fitted = (lease / 3).max(Duration::from_millis(100));
        self.ceiling = self.ceiling.min(fitted);
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

/// ±20%.
fn jitter() -> f64 {
    rand::thread_rng().gen_range(0.8..1.2)
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
    fn a_lease_under_three_seconds_brings_even_the_first_wait_down() {
        let mut b = Backoff::default();
        b.fit_lease(Duration::from_millis(1500));
        assert_eq!(b.ceiling(), Duration::from_millis(500));
        assert!(bases(&mut b, 5).iter().all(|(base, _)| *base == 0.5));
        assert!(b.longest_wait() < Duration::from_millis(1500));
        b.reset();
        assert_eq!(bases(&mut b, 1)[0].0, 0.5);
        // However short the lease, there is a floor.
        b.fit_lease(Duration::from_millis(30));
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn the_ceiling_only_comes_down() {
        let mut b = Backoff::default();
        b.fit_lease(Duration::from_secs(3600));
        assert_eq!(b.ceiling(), BACKOFF_MAX);
        b.fit_lease(Duration::from_secs(9));
        assert_eq!(b.ceiling(), Duration::from_secs(3));
        // A master with a longer lease does not lift it.
        b.fit_lease(Duration::from_secs(600));
        assert_eq!(b.ceiling(), Duration::from_secs(3));
    }

    #[test]
    fn among_several_upstreams_it_doubles_once_a_round() {
        let mut b = Backoff::default();
        let waits: Vec<f64> = (0..7)
            .map(|_| (b.next_wait_among(3).as_secs_f64() / 0.8).floor())
            .collect();
        // Two short waits, then the round's doubling wait: 1, 2, 4 …
        // (floored after dividing out the lowest jitter).
        assert_eq!(waits, [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0]);
        b.reset();
        assert!(b.next_wait_among(3) < Duration::from_millis(1200));
        // One upstream: every try doubles, as `next_wait`.
        let mut one = Backoff::default();
        let bases: Vec<f64> = (0..4)
            .map(|_| {
                let base = one.next.as_secs_f64();
                one.next_wait_among(1);
                base
            })
            .collect();
        assert_eq!(bases, [1.0, 2.0, 4.0, 8.0]);
    }

    #[test]
    #[should_panic(expected = "backoff from")]
    fn bounds_the_wrong_way_round_are_refused() {
        Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
    }

    #[test]
    fn other_bounds_hold_the_same_way() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let got: Vec<f64> = bases(&mut b, 7).into_iter().map(|(b, _)| b).collect();
        assert_eq!(got, [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]);
        b.fit_lease(Duration::from_secs(3));
        assert_eq!(b.ceiling(), Duration::from_secs(1));
        b.fit_lease(Duration::from_millis(900));
        assert_eq!(b.ceiling(), Duration::from_millis(300));
        b.reset();
        assert_eq!(bases(&mut b, 1)[0].0, 0.2);
    }
}
