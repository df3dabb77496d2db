//! A job's life: submit, dispatch, run, output files, exit code, `q`.

use pilotq_tests::{Cluster, Finished, MasterOpts, COMPLETED, IDLE, RUNNING};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn a_job_runs_and_its_output_and_exit_code_are_recorded() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // Workers join after the submission here; a worker already waiting when
    // a new executable arrives is the subject of its own test below.
    let cl = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "echo hi; exit 3"],
    );
    c.add_worker("w1", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let j = &jobs[0];
    assert_eq!(j.id, format!("{cl}.0"));
    assert_eq!((j.cluster, j.proc), (cl, 0));
    assert_eq!(j.status, COMPLETED);
    assert_eq!(j.exit_code, Some(3), "{:#}", j.raw);
    assert_eq!(j.attempts, 1, "{:#}", j.raw);
    assert_eq!(j.holder, None, "{:#}", j.raw);
    assert!(j.raw["signal"].is_null(), "{:#}", j.raw);
    assert!(j.raw["hold_reason"].is_null(), "{:#}", j.raw);
    assert_eq!(j.raw["cmd"], "/bin/sh");
    assert_eq!(j.raw["args"], serde_json::json!(["-c", "echo hi; exit 3"]));
    let out = c.path(&format!("out/{cl}.0.out"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_else(|e| panic!(
            "{}: {e}\n{}",
            out.display(),
            c.diag()
        )),
        "hi\n"
    );
    // A query by id shows the same.
    assert_eq!(c.job(&format!("{cl}.0")), *j);
    // A completed job leaves the queue for the history store (as in
    // HTCondor's schedd): status counts it under `history_completed`.
    assert_eq!(
        c.finished_counts(),
        Finished {
            completed: 1,
            removed: 0
        }
    );
    let s = c.status_json();
    assert_eq!(s["completed"], 0, "the completed job left the queue: {s}");
    assert_eq!(s["idle"], 0, "{s}");
    assert_eq!(s["running"], 0, "{s}");
    assert_eq!(s["holders"], 1, "{s}");
    assert_eq!(s["cores"], 1, "{s}");
}

#[test]
fn the_environment_is_exactly_what_was_submitted() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // The worker inherits this test's environment (HOME, PATH, ...) plus a
    // canary variable; none of it may reach the job.
    let cl = c.submit(
        1,
        &[
            "--env",
            "FOO=bar baz",
            "--env",
            "ANSWER=42",
            "--output",
            "out/$(Cluster).$(Process).env",
        ],
        &["/usr/bin/env"],
    );
    c.add_worker("w1", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs[0].exit_code, Some(0), "{:#}", jobs[0].raw);
    let text = std::fs::read_to_string(c.path(&format!("out/{cl}.0.env"))).unwrap();
    let got: BTreeSet<&str> = text.lines().collect();
    let want: BTreeSet<&str> = ["ANSWER=42", "FOO=bar baz"].into_iter().collect();
    assert_eq!(
        got, want,
        "the job's environment must be exactly the submitted one; it was:\n{text}"
    );
    assert!(!text.contains("HOME="), "HOME leaked into the job:\n{text}");
    assert!(
        !text.contains("PILOTQ_TEST_CANARY"),
        "the worker's environment leaked into the job:\n{text}"
    );
}

#[test]
fn stderr_goes_to_the_error_file_and_stdout_to_the_output_file() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let cl = c.submit(
        2,
        &[
            "--output",
            "out/job.$(Cluster).$(Process).out",
            "--error",
            "out/job.$(Cluster).$(Process).err",
        ],
        &[
            "/bin/sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; echo more-stderr 1>&2",
        ],
    );
    c.add_worker("w1", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
        let p = j.proc;
        let out = std::fs::read_to_string(c.path(&format!("out/job.{cl}.{p}.out"))).unwrap();
        let err = std::fs::read_to_string(c.path(&format!("out/job.{cl}.{p}.err"))).unwrap();
        assert_eq!(out, "to-stdout\n");
        assert_eq!(err, "to-stderr\nmore-stderr\n");
    }
}

#[test]
fn a_four_core_worker_runs_four_one_core_jobs_at_once() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // Five jobs: four fit, the fifth must wait for a free core. Each job
    // writes when it started and ended (ns since the epoch, read by the job
    // itself on the worker) around its sleep.
    let cl = c.submit(
        5,
        &["--cores", "1", "--output", "out/$(Cluster).$(Process).out"],
        &[
            "/bin/sh",
            "-c",
            "echo start $(date +%s%N); sleep 4; echo slept; echo end $(date +%s%N)",
        ],
    );
    c.add_worker("big", 4);
    let jobs = c.wait_until(
        Duration::from_secs(30),
        "four jobs running at once on the 4-core worker, the fifth idle",
        |jobs| {
            let running = jobs.iter().filter(|j| j.status == RUNNING).count();
            running == 4 && jobs.iter().filter(|j| j.status == IDLE).count() == 1
        },
    );
    for j in jobs.iter().filter(|j| j.status == RUNNING) {
        assert_eq!(j.holder.as_deref(), Some("big"), "{:#}", j.raw);
        assert_eq!(j.attempts, 1, "{:#}", j.raw);
    }
    // The fifth shows as idle (1); it may already be queued on the worker
    // (Assigned, with a holder), which HTCondor's numbers also show as 1.
    let idle = jobs.iter().find(|j| j.status == IDLE).unwrap();
    assert!(
        matches!(idle.holder.as_deref(), None | Some("big")),
        "{:#}",
        idle.raw
    );
    let s = c.status_json();
    assert_eq!(s["running"], 4, "{s}");
    assert_eq!(s["idle"], 1, "{s}");
    let jobs = c.wait_until(Duration::from_secs(40), "all five completed", |jobs| {
        jobs.len() == 5 && jobs.iter().all(|j| j.status == COMPLETED)
    });
    // How many ran at once is read from the jobs' own clocks, not from
    // the master's view: that view lags by design. A worker that finishes
    // job A and starts queued job E reports both; E's start is journaled
    // at once, while A's completion waits for A's output files to be
    // written and synced (they are part of its commit), so the master can
    // briefly show five Running on four cores.
    let mut intervals = Vec::new();
    for j in &jobs {
        assert_eq!((j.exit_code, j.attempts), (Some(0), 1), "{:#}", j.raw);
        let out = c.read_file(&format!("out/{cl}.{}.out", j.proc));
        let lines: Vec<&str> = out.lines().collect();
        let stamp = |line: Option<&&str>, what: &str| -> u128 {
            line.and_then(|l| l.strip_prefix(what))
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or_else(|| panic!("job {}: no {what:?} line in {out:?}", j.id))
        };
        assert_eq!(lines.len(), 3, "job {}: {out:?}", j.id);
        assert_eq!(lines[1], "slept", "job {}: {out:?}", j.id);
        let (start, end) = (stamp(lines.first(), "start "), stamp(lines.get(2), "end "));
        assert!(start < end, "job {}: {out:?}", j.id);
        intervals.push((start, end, j.id.clone()));
    }
    let most = max_overlap(&intervals);
    assert!(
        most <= 4,
        "{most} one-core jobs ran at once on a 4-core worker: {intervals:?}"
    );
    // And four did, since four fit: a worker running them one at a time
    // would fail here.
    assert_eq!(most, 4, "the worker never ran four at once: {intervals:?}");
}

/// The largest number of `[start, end]` intervals that overlap at one
/// instant. An interval that ends exactly when another starts does not
/// overlap it (ends are counted first at a tie).
fn max_overlap(intervals: &[(u128, u128, String)]) -> usize {
    let mut edges: Vec<(u128, i32)> = intervals
        .iter()
        .flat_map(|(s, e, _)| [(*s, 1), (*e, -1)])
        .collect();
    // At a tie -1 sorts before +1.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// The usual order: workers are up and idle, then someone submits a program
/// the master has never seen. Each must be shipped with its first dispatch
/// and run, not be held for a missing executable.
#[test]
fn new_executables_submitted_to_a_waiting_worker_run() {
    let mut c = Cluster::with_master(MasterOpts::default());
    c.add_worker("w1", 2);
    c.wait_holders(1, Duration::from_secs(20));
    let mut clusters = Vec::new();
    for i in 0..6 {
        // Distinct bytes, so each is an executable the master has not seen;
        // a couple of MiB, like a real pilot, padded after the `exit`.
        let script = c.path(&format!("script-{i}.sh"));
        let padding = format!("# padding {i}\n").repeat(200_000);
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho script-{i}\nexit 0\n{padding}"),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cl = c.submit(
            1,
            &["--output", "out/$(Cluster).$(Process).out"],
            &[script.to_str().unwrap()],
        );
        clusters.push((i, cl));
        std::thread::sleep(Duration::from_millis(100));
    }
    let jobs = c.wait_until(
        Duration::from_secs(30),
        "every job completed (status 4), none held",
        |jobs| jobs.len() == 6 && jobs.iter().all(|j| j.status != IDLE && j.status != RUNNING),
    );
    for j in &jobs {
        assert_eq!(
            (j.status, j.exit_code),
            (COMPLETED, Some(0)),
            "job {} did not complete:\n{:#}\n{}",
            j.id,
            j.raw,
            c.diag()
        );
    }
    for (i, cl) in clusters {
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.0.out"))).unwrap();
        assert_eq!(out, format!("script-{i}\n"));
    }
}

/// Two idle 2-core workers and four 1-core jobs: all four run at once, two
/// on each, rather than two running and two waiting on one worker while the
/// other has nothing to do.
#[test]
fn jobs_are_spread_over_idle_workers() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // The executable is stored before the workers come (see the test above).
    c.submit(1, &[], &["/bin/sh", "-c", "exit 0"]);
    c.add_worker("w1", 2);
    c.add_worker("w2", 2);
    c.wait_holders(2, Duration::from_secs(20));
    c.wait_all_completed(Duration::from_secs(20));
    let cl = c.submit(
        4,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "sleep 4; echo spread"],
    );
    // The jobs sleep 4 s: sample the first seconds and record where they are.
    let t0 = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut spread = false;
    while t0.elapsed() < Duration::from_secs(3) && !spread {
        let jobs: Vec<_> = c.jobs().into_iter().filter(|j| j.cluster == cl).collect();
        let count = |w: &str, st: u64| {
            jobs.iter()
                .filter(|j| j.holder.as_deref() == Some(w) && j.status == st)
                .count()
        };
        let line = format!(
            "{:?}: w1 {} running + {} queued, w2 {} running + {} queued, {} unassigned",
            t0.elapsed(),
            count("w1", RUNNING),
            count("w1", IDLE),
            count("w2", RUNNING),
            count("w2", IDLE),
            jobs.iter().filter(|j| j.holder.is_none()).count()
        );
        spread = count("w1", RUNNING) == 2 && count("w2", RUNNING) == 2;
        seen.push(line);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        spread,
        "four 1-core jobs and two idle 2-core workers: all four should run at once, two on each; seen:\n{}",
        seen.join("\n")
    );
    c.wait_all_completed(Duration::from_secs(30));
}

/// A query answer is streamed in chunks built as the client reads them: a
/// large one arrives whole and in order, and the master answers other
/// requests while it streams.
#[test]
fn a_large_query_streams_whole_and_in_order() {
    let c = Cluster::with_master(MasterOpts::default());
    let a = c.submit(30_000, &[], &["/bin/true"]);
    let b = c.submit(5_000, &[], &["/bin/true"]);
    let all = c.q_json();
    assert_eq!(all.len(), 35_000);
    let ids: Vec<String> = all.iter().map(|v| v["id"].to_string()).collect();
    let mut expected = Vec::new();
    for (cl, n) in [(a, 30_000u32), (b, 5_000)] {
        for p in 0..n {
            expected.push(format!("\"{cl}.{p}\""));
        }
    }
    assert_eq!(ids, expected);
    // Several big answers at once, and a status in between, all served.
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3).map(|_| s.spawn(|| c.q_json().len())).collect();
        let status = c.run(&["status"]);
        assert!(status.ok(), "{status}");
        for r in readers {
            assert_eq!(r.join().unwrap(), 35_000);
        }
    });
}
