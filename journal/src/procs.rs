//! A set of process numbers kept as ranges: which jobs of a cluster have left
//! the queue for the history store. Jobs finish in roughly the order they were
//! dispatched, so a million finished processes are a handful of ranges, not a
//! million entries.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRanges {
    /// start → end (exclusive); ranges never touch or overlap.
    ranges: BTreeMap<u32, u32>,
}

impl ProcRanges {
    pub fn contains(&self, proc: u32) -> bool {
        self.ranges
            .range(..=proc)
            .next_back()
            .is_some_and(|(_, end)| proc < *end)
    }

    /// Adds `proc`, merging it with the ranges it touches.
    pub fn insert(&mut self, proc: u32) {
        if self.contains(proc) {
            return;
        }
        let mut start = proc;
        let mut end = u64::from(proc) + 1;
        // A range ending right before `proc` grows to take it.
        if let Some((s, e)) = self.ranges.range(..proc).next_back().map(|(s, e)| (*s, *e)) {
            if e == proc {
                start = s;
            }
        }
        // A range starting right after it is swallowed.
        if end <= u64::from(u32::MAX) {
            if let Some(e) = self.ranges.remove(&(end as u32)) {
                end = u64::from(e);
            }
        }
        // `end` may be u32::MAX + 1 only for proc == u32::MAX, which no
        // cluster has (its count would not fit); saturate rather than wrap.
        self.ranges
            .insert(start, end.min(u64::from(u32::MAX)) as u32);
    }

    /// Adds `start..end`.
    pub fn insert_range(&mut self, start: u32, end: u32) {
        // Small clusters and tests; a removed cluster's whole range goes in
        // as one step.
        if start >= end {
            return;
        }
        let mut s = start;
        let mut e = end;
        let overlapping: Vec<(u32, u32)> = self
            .ranges
            .range(..=end)
            .filter(|(rs, re)| **re >= start && **rs <= end)
            .map(|(a, b)| (*a, *b))
            .collect();
        for (rs, re) in overlapping {
            self.ranges.remove(&rs);
            s = s.min(rs);
            e = e.max(re);
        }
        self.ranges.insert(s, e);
    }

    /// Takes `proc` out, splitting its range.
    pub fn remove(&mut self, proc: u32) {
        let Some((&start, &end)) = self.ranges.range(..=proc).next_back() else {
            return;
        };
        if proc >= end {
            return;
        }
        self.ranges.remove(&start);
        if start < proc {
            self.ranges.insert(start, proc);
        }
        if proc + 1 < end {
            self.ranges.insert(proc + 1, end);
        }
    }

    /// How many processes the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| u64::from(e - s)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many ranges it takes (its memory).
    pub fn fragments(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_as_processes_finish_in_any_order() {
        let mut r = ProcRanges::default();
        assert!(!r.contains(0));
        for p in [3, 1, 2, 0, 7, 5, 6] {
            r.insert(p);
        }
        for p in [0, 1, 2, 3, 5, 6, 7] {
            assert!(r.contains(p), "{p}");
        }
        assert!(!r.contains(4) && !r.contains(8));
        assert_eq!((r.len(), r.fragments()), (7, 2));
        r.insert(4);
        assert_eq!((r.len(), r.fragments()), (8, 1));
        r.insert(4);
        assert_eq!(r.len(), 8);
        r.insert_range(6, 20);
        assert_eq!((r.len(), r.fragments()), (20, 1));
        r.insert_range(30, 40);
        r.insert_range(19, 31);
        assert_eq!((r.len(), r.fragments()), (40, 1));
        assert!(r.contains(39) && !r.contains(40));
        r.remove(20);
        assert!(!r.contains(20) && r.contains(19) && r.contains(21));
        assert_eq!((r.len(), r.fragments()), (39, 2));
        r.remove(0);
        r.remove(39);
        r.remove(50);
        assert_eq!((r.len(), r.fragments()), (37, 2));
        assert!(!r.contains(0) && r.contains(1) && !r.contains(39));
    }

    #[test]
    fn a_million_finished_in_order_is_one_range() {
        let mut r = ProcRanges::default();
        for p in 0..1_000_000 {
            r.insert(p);
        }
        assert_eq!((r.len(), r.fragments()), (1_000_000, 1));
        r.insert(u32::MAX - 1);
        assert!(r.contains(u32::MAX - 1));
    }

    #[test]
    fn it_matches_a_plain_set() {
        use std::collections::BTreeSet;
        // A fixed pseudo-random order, checked against a BTreeSet.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut set = BTreeSet::new();
        let mut r = ProcRanges::default();
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = (x % 600) as u32;
            if x.is_multiple_of(5) {
                let end = p + (x % 7) as u32;
                r.insert_range(p, end);
                set.extend(p..end);
            } else {
                r.insert(p);
                set.insert(p);
            }
        }
        for p in 0..700 {
            assert_eq!(r.contains(p), set.contains(&p), "{p}");
        }
        assert_eq!(r.len(), set.len() as u64);
    }
}
