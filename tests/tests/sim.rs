//! `pilotq sim` end to end: the real master binary driven by simulated
//! workers, with its crashes, churn and partitions, and the report a CI job
//! would read. (The CI load simulation itself, 2,000 workers, runs from
//! `.ci/run` after the tests.)

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(pilotq_tests::bin())
        .arg("sim")
        .arg("--quiet")
        .args(["--timeout", "120s"])
        .args(args)
        .output()
        .expect("running pilotq sim")
}

fn report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON report");
    serde_json::from_str(&text).expect("valid JSON")
}

fn explain(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn master_crashes_and_worker_churn_lose_nothing_and_run_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let csv = dir.path().join("timeline.csv");
    let svg = dir.path().join("timeline.svg");
    let out = sim(&[
        "--workers",
        "60",
        "--cores-per-worker",
        "2",
        "--jobs",
        "3000",
        "--duration",
        "uniform:100ms..400ms",
        "--kill-master-every",
        "3s",
        "--worker-churn",
        "4",
        "--lease",
        "2s",
        "--report-json",
        json.to_str().unwrap(),
        "--timeline-csv",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&json);
    for key in [
        "jobs_completed",
        "jobs_lost",
        "jobs_duplicated",
        "completions_per_s_sustained",
        "completions_per_s_peak",
        "dispatch_latency_p50_ms",
        "dispatch_latency_p99_ms",
        "seconds_to_all_running",
        "master_cpu_s",
        "master_peak_rss_mb",
        "master_restarts",
    ] {
        assert!(r.get(key).is_some(), "report lacks {key}: {r}");
    }
    assert_eq!(r["jobs_submitted"], 3000, "{r}");
    // Churn can put a job on hold (its holders keep dying): it must say why,
    // and every other job completes exactly once.
    let (done, held) = (
        r["jobs_completed"].as_u64().unwrap(),
        r["jobs_held"].as_u64().unwrap(),
    );
    assert_eq!(done + held, 3000, "{r}");
    assert_eq!(r["jobs_lost"], 0, "{r}");
    assert_eq!(r["jobs_duplicated"], 0, "{r}");
    assert_eq!(r["journal_matches_live_table"], true, "{r}");
    assert!(r["master_restarts"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["worker_deaths"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["master_peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
    assert!(r["master_cpu_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["invariants_failed"].as_array().unwrap().is_empty(), "{r}");

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("invariants               all hold"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("t_s,idle,running,completed,master_up,event\n"));
    assert!(csv.contains("master_killed"), "{csv}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

/// Jobs of a crash loop: 30 workers need 6 s of 200 ms runs for them, long
/// enough for the master to be killed at least twice (with 600 jobs a run
/// could end at 4.1 s, after one kill only).
const CRASH_LOOP_JOBS: u64 = 900;

/// 30 workers and [`CRASH_LOOP_JOBS`] jobs of 200 ms under a master SIGKILLed
/// every 2 s, with a 5 s lease (so no start of the master lives a whole
/// lease), and `extra` settings; its report once every invariant held.
fn crash_loop(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let jobs = CRASH_LOOP_JOBS.to_string();
    let json = dir.path().join("report.json");
    let mut args = vec![
        "--workers",
        "30",
        "--jobs",
        &jobs,
        "--duration",
        "fixed:200ms",
        "--kill-master-every",
        "2s",
        "--lease",
        "5s",
        "--report-json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = sim(&args);
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&json);
    assert_eq!(r["jobs_lost"], 0, "{r}");
    assert_eq!(r["jobs_duplicated"], 0, "{r}");
    assert!(r["master_restarts"].as_u64().unwrap() >= 2, "{r}");
    r
}

/// If each start gave holders a fresh lease, the jobs of workers that died
/// in between would stay Running forever (this run timed out with jobs lost
/// before the reclaim window was kept across restarts).
#[test]
fn a_master_restarted_faster_than_its_lease_still_requeues_dead_workers_jobs() {
    let r = crash_loop(&["--worker-churn", "3"]);
    assert_eq!(
        r["jobs_completed"].as_u64().unwrap() + r["jobs_held"].as_u64().unwrap(),
        CRASH_LOOP_JOBS,
        "{r}"
    );
    assert!(r["runs_cut"].as_u64().unwrap() >= 1, "{r}");
}

/// The same crash loop with no worker dying: every holder comes back within
/// the reclaim window, so every job completes once (none ends Held for
/// running out of attempts), no run is cut and none runs again.
#[test]
fn a_crash_loop_with_live_workers_completes_every_job() {
    let r = crash_loop(&[]);
    assert_eq!(r["jobs_completed"], CRASH_LOOP_JOBS, "{r}");
    assert_eq!(r["jobs_held"], 0, "{r}");
    assert_eq!(r["runs_cut"], 0, "{r}");
    assert_eq!(r["jobs_rerun"], 0, "{r}");
}

#[test]
fn a_partitioned_foreman_comes_back_and_its_jobs_complete_once() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = sim(&[
        "--workers",
        "24",
        "--foremen",
        "2",
        "--jobs",
        "600",
        "--duration",
        "fixed:300ms",
        "--partition-foreman",
        "2s",
        "--lease",
        "5s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&json);
    assert_eq!(r["jobs_completed"], 600, "{r}");
    assert_eq!(r["jobs_lost"], 0, "{r}");
    assert_eq!(r["jobs_duplicated"], 0, "{r}");
    assert_eq!(r["foreman_partitions"], 1, "{r}");
    assert_eq!(r["foremen"], 2, "{r}");
}

#[test]
fn a_recorded_journal_replays_as_a_workload() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("recorded");
    let first = sim(&[
        "--workers",
        "20",
        "--jobs",
        "400",
        "--duration",
        "uniform:50ms..150ms",
        "--seed",
        "9",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert!(first.status.success(), "{}", explain(&first));
    assert!(journal.join("db").exists(), "the journal is kept");

    let json = dir.path().join("replay.json");
    let again = sim(&[
        "--workers",
        "20",
        "--replay",
        journal.to_str().unwrap(),
        "--speed",
        "2",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", explain(&again));
    let r = report(&json);
    assert_eq!(r["jobs_submitted"], 400, "{r}");
    assert_eq!(r["jobs_completed"], 400, "{r}");
    assert_eq!(r["jobs_lost"], 0, "{r}");
}

#[test]
fn stop_after_removes_what_is_left_and_still_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = sim(&[
        "--workers",
        "10",
        "--jobs",
        "5000",
        "--duration",
        "fixed:1h",
        "--stop-after",
        "2s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&json);
    assert_eq!(r["jobs_removed"], 5000, "{r}");
    assert_eq!(r["jobs_lost"], 0, "{r}");
    assert_eq!(r["peak_running"], 10, "{r}");
}

#[test]
fn bad_settings_get_one_clear_error() {
    // Exit 2 for bad settings (clap's own status for what it rejects), 3
    // for a simulation that cannot run: a CI job can tell them apart from 1,
    // an invariant that failed.
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().to_str().unwrap();
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["--duration", "gauss:1s"],
            "expected fixed, exp or uniform",
            2,
        ),
        (&["--duration", "uniform:5s..1s"], "LOW is above HIGH", 2),
        (&["--kill-master-every", "soon"], "invalid value", 2),
        (&["--partition-foreman", "2s"], "needs --foremen", 2),
        (&["--workers", "0"], "--workers must be at least 1", 2),
        (&["--speed", "0"], "--speed must be a number above 0", 2),
        (&["--speed", "1e-12"], "--speed must be a number above 0", 2),
        (
            &["--worker-churn", "1e-30"],
            "--worker-churn must be 0, or from",
            2,
        ),
        // A journal directory that already exists is never overwritten.
        (&["--journal", existing], "already exists", 2),
        (&["--replay", "/nonexistent/journal"], "no journal at", 3),
    ];
    for (args, want, code) in cases {
        let out = sim(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
