//! `pilotq journal` post-mortems on a live site: every verb against the
//! running master (`--master`, its live tail over the wire) and against a
//! copy of its journal taken after a SIGKILL, with the same answers, and
//! the right ones: dispatches to the worker by name, exit codes, a requeue
//! after a worker's SIGKILL, a removal, the restart count.

use pilotq_tests::{Cluster, MasterOpts, Out, COMPLETED, IDLE, REMOVED, RUNNING};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn json_of(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn lines_of(out: &Out) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A failure: non-zero, one line on stderr, and no panic.
fn assert_clear_error(out: &Out, what: &str, says: &str) {
    assert!(!out.ok(), "{what} succeeded:\n{out}");
    assert_eq!(out.status.code(), Some(1), "{what}:\n{out}");
    assert!(!out.stderr.contains("panicked"), "{what} panicked:\n{out}");
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "{what}: one line\n{out}"
    );
    assert!(
        out.stderr.contains(says),
        "{what}: should say {says:?}\n{out}"
    );
}

#[test]
fn every_verb_answers_the_same_live_and_from_a_copy() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let quick = c.submit(
        3,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "echo ok; exit 3"],
    );
    // Asks for more cores than any worker has: stays idle; one is removed.
    let waiting = c.submit(2, &["--cores", "64"], &["/bin/sh", "-c", "echo never"]);
    // Runs long the first time (until its worker is SIGKILLed), at once
    // the second.
    let marker = c.path("marker");
    let script = format!(
        "if [ -e {m} ]; then exit 0; else touch {m}; sleep 600; fi",
        m = marker.display()
    );
    c.add_worker("w1", 2);
    c.wait_until(
        Duration::from_secs(30),
        "the quick jobs completed",
        |jobs| {
            jobs.iter()
                .filter(|j| j.cluster == quick && j.status == COMPLETED)
                .count()
                == 3
        },
    );
    let slow = c.submit(1, &[], &["/bin/sh", "-c", &script]);
    let slow_id = format!("{slow}.0");
    c.wait_until(Duration::from_secs(30), "the slow job running", |jobs| {
        jobs.iter().any(|j| j.id == slow_id && j.status == RUNNING)
    });
    c.run_ok(&["rm", &format!("{waiting}.1")]);
    c.kill_worker("w1");
    c.wait_until(Duration::from_secs(30), "the slow job requeued", |jobs| {
        jobs.iter().any(|j| j.id == slow_id && j.status == IDLE)
    });
    c.add_worker("w2", 1);
    c.wait_until(Duration::from_secs(30), "the slow job completed", |jobs| {
        jobs.iter()
            .any(|j| j.id == slow_id && j.status == COMPLETED)
    });
    assert_eq!(c.job(&format!("{waiting}.1")).status, REMOVED);

    let addr = c.addr();
    let journal = c.journal.display().to_string();
    let plot_live = c.path("live.svg").display().to_string();
    let plot_copy = c.path("copy.svg").display().to_string();
    let last_seq = |c: &Cluster, src: &[&str]| -> u64 {
        let mut a = vec!["journal", "dump", "--json"];
        a.extend_from_slice(src);
        let all = lines_of(&c.run_ok(&a));
        all.last().unwrap()["seq"].as_u64().unwrap()
    };
    let live_src = ["--journal", &journal, "--master", &addr];
    let n = last_seq(&c, &live_src);
    let verbs = |c: &Cluster, src: &[&str], plot: &str| -> Vec<(String, Out)> {
        let at = format!("#{n}");
        let mid = format!("#{}", n / 2);
        let cases: Vec<Vec<&str>> = vec![
            vec!["dump", "--json"],
            vec!["dump", "--json", "--job", &slow_id],
            vec![
                "dump",
                "--json",
                "--kind",
                "completed,requeued",
                "--since",
                "#2",
            ],
            vec!["job", &slow_id, "--json"],
            vec!["job", "1.0", "--json"],
            vec!["at", &at, "--json"],
            vec!["at", &mid, "--json", "--all"],
            vec!["at", "2999-01-01", "--json"],
            vec!["stats", "--json"],
            vec!["stats", "--json", "--until", &mid],
            vec!["plot", plot, "--json"],
            vec!["export", "--jsonl"],
            vec!["export", "--csv"],
        ];
        cases
            .into_iter()
            .map(|mut args| {
                let label = args.join(" ");
                let mut full = vec!["journal"];
                full.append(&mut args);
                full.extend_from_slice(src);
                (label, c.run_ok(&full))
            })
            .collect()
    };
    let live = verbs(&c, &live_src, &plot_live);
    // A master with nothing more to do appends nothing: the tail read live
    // ends at the same event as the copy.
    assert_eq!(last_seq(&c, &live_src), n);

    // Without --master, a journal held by a running master is refused
    // with the advice to pass it.
    let held = c.run(&["journal", "stats", "--journal", &journal]);
    assert_clear_error(&held, "stats on a held journal", "--master");
    assert!(held.stderr.contains("held"), "{held}");

    c.kill_master();
    let copy = c.path("journal-copy");
    copy_dir(&c.journal, &copy);
    let copy = copy.display().to_string();
    let copied = verbs(&c, &["--journal", &copy], &plot_copy);
    for ((label, a), (_, b)) in live.iter().zip(&copied) {
        if label.starts_with("plot") {
            let (mut a, mut b) = (json_of(a), json_of(b));
            a["file"] = Value::Null;
            b["file"] = Value::Null;
            assert_eq!(a, b, "{label}");
        } else {
            assert_eq!(
                a.stdout, b.stdout,
                "`journal {label}` differs live and from the copy"
            );
        }
    }
    let get = |label: &str| -> &Out {
        &live
            .iter()
            .find(|(l, _)| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label}"))
            .1
    };

    // dump: every event once, in order; the job filter keeps the slow
    // job's and its cluster's events.
    let all = lines_of(get("dump --json"));
    assert_eq!(all.len() as u64, n);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let mine = lines_of(get(&format!("dump --json --job {slow_id}")));
    let kinds: Vec<&str> = mine.iter().map(|e| pilotq_tests::event_kind(e).0).collect();
    assert_eq!(
        kinds,
        [
            "ClusterSubmitted",
            "JobDispatched",
            "JobStarted",
            "JobRequeued",
            "JobDispatched",
            "JobStarted",
            "JobCompleted"
        ]
    );
    let some = lines_of(get("dump --json --kind"));
    assert_eq!(
        some.len(),
        3 + 1 + 1,
        "three quick completions, one requeue, one slow"
    );

    // job: the dispatches by worker name, the requeue, the exit code.
    let life = json_of(get(&format!("job {slow_id}")));
    assert_eq!(life["state"], "completed", "{life}");
    let attempts = life["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{life}");
    assert_eq!(attempts[0]["holder"], "w1");
    assert_eq!(attempts[0]["ended"], "requeued");
    assert_eq!(attempts[1]["holder"], "w2");
    assert_eq!(attempts[1]["ended"], "completed");
    let steps = life["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["exit_code"], 0, "{life}");
    assert!(steps.iter().all(|s| s["applied"] == true), "{life}");
    let first = json_of(get("job 1.0"));
    assert_eq!(first["attempts"][0]["holder"], "w1");
    assert_eq!(
        first["steps"].as_array().unwrap().last().unwrap()["exit_code"],
        3
    );

    // at: the end, and the far future (the same table).
    let end = json_of(get(&format!("at #{n}")));
    assert_eq!(end["seq"], n);
    assert_eq!(
        (
            &end["idle"],
            &end["running"],
            &end["completed"],
            &end["removed"]
        ),
        (&1.into(), &0.into(), &4.into(), &1.into()),
        "{end}"
    );
    assert_eq!(end["restarts"], 1);
    assert_eq!(end["holders"].as_array().unwrap().len(), 0);
    let future = json_of(get("at 2999-01-01"));
    assert_eq!(future, end);

    // stats: what happened.
    let s = json_of(get("stats --json"));
    assert_eq!(s["completed"], 4, "{s}");
    assert_eq!(s["removed"], 1, "{s}");
    assert_eq!(s["jobs_submitted"], 6, "{s}");
    assert_eq!(s["requeues"], 1, "{s}");
    assert_eq!(s["requeues_per_holder"]["w1"], 1, "{s}");
    assert_eq!(s["failures"], 3, "{s}");
    assert_eq!(s["failures_per_code"]["exit 3"], 3, "{s}");
    assert_eq!(s["failures_per_holder"]["w1"], 3, "{s}");
    assert_eq!(s["restarts"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["queue_wait"]["count"], 4, "{s}");
    assert_eq!(s["run_time"]["count"], 4, "{s}");
    assert!(
        s["completions_per_minute_peak"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert_eq!(s["last"][0], n, "{s}");

    // plot: a chart was drawn.
    let svg = std::fs::read_to_string(&plot_live).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    assert!(svg.contains("holder lost"), "the requeue is marked");
    assert_eq!(json_of(get("plot"))["requeues"], 1);

    // export: one row per event, flat.
    let rows = lines_of(get("export --jsonl"));
    assert_eq!(rows.len() as u64, n);
    let done: Vec<&Value> = rows
        .iter()
        .filter(|r| r["kind"] == "JobCompleted")
        .collect();
    assert_eq!(done.len(), 4);
    assert!(done
        .iter()
        .any(|r| r["job"] == slow_id.as_str() && r["exit_code"] == 0));
    let csv = &get("export --csv").stdout;
    assert_eq!(csv.lines().count() as u64, n + 1);
    assert!(csv.starts_with("seq,t_ms,time,kind,"), "{csv}");

    // verify still works on the copy.
    let v = c.run_ok(&["journal", "verify", "--journal", &copy]);
    assert!(v.stdout.starts_with(&format!("ok: {n} events;")), "{v}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let mut c = Cluster::with_master(MasterOpts::default());
    c.submit(1, &["--cores", "64"], &["/bin/sh", "-c", "echo never"]);
    c.kill_master();
    let j = c.journal.display().to_string();
    let missing = c.path("nowhere").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["dump", "--since", "yesterday"],
            "is neither a time nor an event number",
        ),
        (vec!["dump", "--until", "2026-02-30"], "--until"),
        (vec!["dump", "--kind", "exploded"], "unknown event kind"),
        (vec!["dump", "--job", "x.y"], "not a job id"),
        (vec!["at", "soon"], "is neither a time nor an event number"),
        (vec!["stats", "--since", "#-3"], "--since"),
        (vec!["job", "1.7"], "cluster 1 has only 1 job"),
        (vec!["job", "9.0"], "cluster 9 was never submitted"),
        (vec!["job", "banana"], "not a job id"),
    ];
    for (mut args, says) in cases {
        let what = args.join(" ");
        let mut full = vec!["journal"];
        full.append(&mut args);
        full.extend_from_slice(&["--journal", &j]);
        assert_clear_error(&c.run(&full), &what, says);
    }
    for verb in [
        "dump",
        "stats",
        "at #1",
        "plot x.svg",
        "export --csv",
        "job 1.0",
    ] {
        let mut full = vec!["journal"];
        full.extend(verb.split(' '));
        full.extend_from_slice(&["--journal", &missing]);
        assert_clear_error(&c.run(&full), verb, "no journal at");
    }
    // A master that is not there.
    let out = c.run(&[
        "journal",
        "stats",
        "--master",
        "127.0.0.1:1",
        "--journal",
        &j,
    ]);
    assert_clear_error(&out, "stats --master nowhere", "127.0.0.1:1");
}
