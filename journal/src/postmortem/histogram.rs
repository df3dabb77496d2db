//! Percentiles of millions of durations in a few kilobytes: a log-linear
//! histogram (HDR-style). Values below 128 ms are exact; above, each power
//! of two is cut in 64 buckets, so a percentile is off by less than 1/64
//! (1.6 %) — and reported as its bucket's upper bound, never below the
//! truth. The maximum is kept exactly.

use serde::Serialize;

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS; // buckets per power of two
const EXACT: u64 = 2 * SUB; // values below this get a bucket each

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
    sum: u128,
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = top - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..SUB
    (EXACT + u64::from(shift - 1) * SUB + sub) as usize
}

/// The largest value that falls in bucket `b`.
fn upper_of(b: usize) -> u64 {
    let b = b as u64;
    if b < EXACT {
        return b;
    }
    let shift = (b - EXACT) / SUB + 1;
    let sub = (b - EXACT) % SUB;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        let b = bucket_of(v);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
        self.count += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest recorded value's bucket bound at or above fraction `q`
    /// of the values (0 < q <= 1), capped at the exact maximum.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_of(b).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn summary(&self) -> Percentiles {
        Percentiles {
            count: self.count,
            mean_ms: (self.count > 0).then(|| (self.sum / u128::from(self.count)) as u64),
            p50_ms: self.quantile(0.50),
            p90_ms: self.quantile(0.90),
            p99_ms: self.quantile(0.99),
            max_ms: (self.count > 0).then_some(self.max),
        }
    }
}

/// What `stats` prints of a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ms: Option<u64>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went back");
            last = b;
            assert!(upper_of(b) >= v, "{v} above its bucket's bound");
            if v < EXACT {
                assert_eq!(upper_of(b), v);
            } else {
                // Within 1/64 of the value.
                assert!((upper_of(b) - v) as f64 <= v as f64 / 64.0, "{v}");
            }
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        let close = |got: Option<u64>, want: u64| {
            let g = got.unwrap();
            assert!(
                g >= want && (g - want) as f64 <= want as f64 / 64.0,
                "{g} vs {want}"
            );
        };
        close(h.quantile(0.5), 5_000);
        close(h.quantile(0.9), 9_000);
        close(h.quantile(0.99), 9_900);
        assert_eq!(h.quantile(1.0), Some(10_000));
        let s = h.summary();
        assert_eq!(
            (s.count, s.max_ms, s.mean_ms),
            (1000, Some(10_000), Some(5_005))
        );
        // Small values are exact.
        let mut h = Histogram::default();
        [3, 1, 2].into_iter().for_each(|v| h.record(v));
        assert_eq!(h.quantile(0.5), Some(2));
    }
}
