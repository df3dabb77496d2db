//! What the simulation submits: clusters, when, and how long each of their
//! jobs "runs". A workload is either synthetic (`--jobs`, `--duration`,
//! `--seed`) or read from a recorded journal (`--replay`, see
//! [`crate::recorded`]); the simulated workers look a job's run time up here
//! by its cluster and process, so any worker that gets a job runs it for the
//! same time, whatever attempt it is.

use pilotq_wire::{JobSpec, Resources};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;

/// The executable every simulated cluster is submitted with. Simulated
/// workers never run it; the master stores and ships it as it would any.
pub const SIM_EXECUTABLE: &[u8] =
    b"#!/bin/sh\n# pilotq sim: simulated workers never run this\nexit 0\n";

/// One cluster to submit.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// When to submit it, from the start of the workload, in simulated time
    /// (divided by `--speed` in real time).
    pub at: Duration,
    /// Its spec; `executable` is replaced by the hash of [`SIM_EXECUTABLE`]
    /// when submitted.
    pub spec: JobSpec,
    /// Each job's run time in simulated milliseconds; `len()` is the
    /// cluster's size (`queue N`).
    pub run_ms: Vec<u32>,
}

impl ClusterPlan {
    pub fn count(&self) -> u32 {
        self.run_ms.len() as u32
    }
}

#[derive(Debug, Clone, Default)]
pub struct Workload {
    pub clusters: Vec<ClusterPlan>,
}

impl Workload {
    pub fn jobs(&self) -> u64 {
        self.clusters.iter().map(|c| c.run_ms.len() as u64).sum()
    }

    /// Reduces requests that no simulated worker could take (a recorded
    /// 8-core pilot, on 1-core simulated workers) to what one offers, so
    /// they run rather than wait out the timeout; returns how many clusters
    /// were changed.
    pub fn fit_requests(&mut self, offer: Resources) -> usize {
        let mut changed = 0;
        for c in &mut self.clusters {
            let r = c.spec.request;
            if !offer.fits(&r) {
                c.spec.request = Resources::new(
                    r.cores.clamp(1, offer.cores.max(1)),
                    r.memory_mb.min(offer.memory_mb),
                    r.disk_mb.min(offer.disk_mb),
                );
                changed += 1;
            }
        }
        changed
    }
}

/// The exit code a simulated job reports, a pure function of where it is in
/// the workload, so the end check can tell a result delivered intact from one
/// lost or mixed up: about one job in 50 exits non-zero.
pub fn exit_code_for(plan_index: usize, proc: u32) -> i32 {
    let h = (plan_index as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(proc as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    if (h >> 33) % 50 == 7 {
        1 + ((h >> 40) % 9) as i32
    } else {
        0
    }
}

/// A distribution of job run times: `fixed:2s`, `exp:30s` (mean),
/// `uniform:1s..10s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DurationDist {
    Fixed(Duration),
    Exp { mean: Duration },
    Uniform { low: Duration, high: Duration },
}

impl std::str::FromStr for DurationDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |t: &str| {
            humantime::parse_duration(t.trim())
                .map_err(|e| format!("bad duration {t:?} in {s:?}: {e}"))
        };
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            format!("bad distribution {s:?}: expected fixed:2s, exp:30s or uniform:1s..10s")
        })?;
        match kind {
            "fixed" => Ok(DurationDist::Fixed(parse(rest)?)),
            "exp" => {
                let mean = parse(rest)?;
                if mean.is_zero() {
                    return Err(format!(
                        "bad distribution {s:?}: the mean must be above zero"
                    ));
                }
                Ok(DurationDist::Exp { mean })
            }
            "uniform" => {
                let (a, b) = rest
                    .split_once("..")
                    .ok_or_else(|| format!("bad distribution {s:?}: expected uniform:LOW..HIGH"))?;
                let (low, high) = (parse(a)?, parse(b)?);
                if low > high {
                    return Err(format!("bad distribution {s:?}: LOW is above HIGH"));
                }
                Ok(DurationDist::Uniform { low, high })
            }
            other => Err(format!(
                "bad distribution kind {other:?} in {s:?}: expected fixed, exp or uniform"
            )),
        }
    }
}

impl DurationDist {
    /// One run time, in milliseconds (capped at about 49 days).
    pub fn sample_ms(&self, rng: &mut impl Rng) -> u32 {
        let d = match *self {
            DurationDist::Fixed(d) => d,
            DurationDist::Exp { mean } => {
                // Inverse transform: -mean * ln(U), U in (0, 1].
                let u: f64 = 1.0 - rng.gen::<f64>();
                mean.mul_f64(-u.ln())
            }
            DurationDist::Uniform { low, high } => {
                if low == high {
                    low
                } else {
                    rng.gen_range(low..=high)
                }
            }
        };
        d.as_millis().min(u32::MAX as u128) as u32
    }
}

/// The spec of a simulated cluster: one core, a little memory, no files.
pub fn sim_spec(name: &str, priority: i32) -> JobSpec {
    JobSpec {
        executable: String::new(),
        cmd: name.to_string(),
        arguments: vec![],
        environment: BTreeMap::new(),
        output: None,
        error: None,
        log: None,
        request: Resources::new(1, 100, 100),
        priority,
        attributes: BTreeMap::new(),
        owner: "pilotq-sim".into(),
        iwd: "/".into(),
        tags: vec![],
        leave_in_queue: false,
    }
}

/// A synthetic workload of `jobs` jobs, all submitted at the start: clusters
/// of mixed sizes (as pilot factories submit: many small, a few large) and
/// priorities, run times drawn from `dist`. The same seed gives the same
/// workload.
pub fn synthetic(jobs: u64, dist: DurationDist, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clusters = Vec::new();
    let mut left = jobs;
    const SIZES: [u64; 5] = [1, 10, 100, 1_000, 10_000];
    while left > 0 {
        // Small clusters are common, large ones rare; the largest takes what
        // is left once it is all that fits.
        let pick = rng.gen_range(0..100u32);
        let size = match pick {
            0..=29 => SIZES[0],
            30..=59 => SIZES[1],
            60..=84 => SIZES[2],
            85..=96 => SIZES[3],
            _ => SIZES[4],
        }
        .min(left);
        let priority = rng.gen_range(0..10);
        let run_ms = (0..size).map(|_| dist.sample_ms(&mut rng)).collect();
        clusters.push(ClusterPlan {
            at: Duration::ZERO,
            spec: sim_spec("sim-job", priority),
            run_ms,
        });
        left -= size;
    }
    Workload { clusters }
}

/// The custom attribute (`+PilotqSimPlan = N`) that names a cluster's plan
/// in the workload. It travels with the spec, so a simulated worker knows
/// what a job is from its first assignment, and the end check knows what a
/// completed job should have reported, whatever cluster id the master chose
/// and however submissions raced.
pub const PLAN_ATTRIBUTE: &str = "PilotqSimPlan";

/// Every job's run time, by plan and process; built before anything is
/// submitted, read by every simulated worker.
#[derive(Debug, Default)]
pub struct JobBook {
    runs: Vec<std::sync::Arc<Vec<u32>>>,
}

impl JobBook {
    pub fn new(w: &Workload) -> JobBook {
        JobBook {
            runs: w
                .clusters
                .iter()
                .map(|c| std::sync::Arc::new(c.run_ms.clone()))
                .collect(),
        }
    }

    /// A job's simulated run time (ms) and exit code, if it is in the plan.
    pub fn lookup(&self, plan: usize, proc: u32) -> Option<(u32, i32)> {
        let ms = *self.runs.get(plan)?.get(proc as usize)?;
        Some((ms, exit_code_for(plan, proc)))
    }

    /// The plan a spec (or a job view's attributes) names.
    pub fn plan_of(attributes: &BTreeMap<String, String>) -> Option<usize> {
        attributes.get(PLAN_ATTRIBUTE)?.trim().parse().ok()
    }
}

/// Marks `spec` as plan `index` of the workload.
pub fn tag_plan(spec: &mut JobSpec, index: usize) {
    spec.attributes
        .insert(PLAN_ATTRIBUTE.to_string(), index.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse_and_refuse() {
        assert_eq!(
            "fixed:2s".parse::<DurationDist>().unwrap(),
            DurationDist::Fixed(Duration::from_secs(2))
        );
        assert_eq!(
            "uniform:1s..10s".parse::<DurationDist>().unwrap(),
            DurationDist::Uniform {
                low: Duration::from_secs(1),
                high: Duration::from_secs(10)
            }
        );
        assert!(matches!(
            "exp:30s".parse::<DurationDist>().unwrap(),
            DurationDist::Exp { .. }
        ));
        for bad in ["2s", "gauss:2s", "uniform:5s..1s", "exp:0s", "fixed:soon"] {
            assert!(bad.parse::<DurationDist>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn synthetic_workload_has_every_job_and_is_reproducible() {
        let d = DurationDist::Exp {
            mean: Duration::from_secs(3),
        };
        let a = synthetic(12_345, d, 7);
        assert_eq!(a.jobs(), 12_345);
        let b = synthetic(12_345, d, 7);
        let runs = |w: &Workload| {
            w.clusters
                .iter()
                .flat_map(|c| c.run_ms.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(runs(&a), runs(&b));
        assert_ne!(runs(&a), runs(&synthetic(12_345, d, 8)));
        let mean = runs(&a).iter().map(|&m| m as f64).sum::<f64>() / 12_345.0;
        assert!((2_700.0..3_300.0).contains(&mean), "mean {mean} ms");
    }

    #[test]
    fn requests_too_big_for_a_simulated_worker_are_reduced_to_fit() {
        let mut w = synthetic(20, DurationDist::Fixed(Duration::from_secs(1)), 1);
        w.clusters[0].spec.request = Resources::new(8, 64_000, 100);
        let offer = Resources::new(2, 4_000, 20_000);
        assert_eq!(w.fit_requests(offer), 1);
        assert_eq!(w.clusters[0].spec.request, Resources::new(2, 4_000, 100));
        assert!(w.clusters.iter().all(|c| offer.fits(&c.spec.request)));
        assert_eq!(w.fit_requests(offer), 0);
    }

    #[test]
    fn some_jobs_fail_and_most_do_not() {
        let codes: Vec<i32> = (0..10_000).map(|p| exit_code_for(3, p)).collect();
        let failing = codes.iter().filter(|&&c| c != 0).count();
        assert!((100..400).contains(&failing), "{failing} failing");
    }
}
