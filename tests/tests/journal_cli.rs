//! `pilotq journal dump|verify` on a stopped master's journal, replay after a
//! clean stop and after a crash, and one master per journal.

use pilotq_tests::{event_job, event_kind, Cluster, MasterOpts, COMPLETED, IDLE, REMOVED};
use std::time::Duration;

#[test]
fn dump_and_verify_a_stopped_masters_journal_and_replay_gives_the_same_table() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let done = c.submit(
        3,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "echo ok; exit 7"],
    );
    // Asks for more cores than any worker has: stays idle.
    let waiting = c.submit(2, &["--cores", "64"], &["/bin/sh", "-c", "echo never"]);
    c.add_worker("w", 2);
    c.wait_until(Duration::from_secs(30), "three jobs completed", |jobs| {
        jobs.iter().filter(|j| j.status == COMPLETED).count() == 3
    });
    c.run_ok(&["rm", &format!("{waiting}.1")]);
    let before = c.q_json();
    assert_eq!(c.job(&format!("{waiting}.1")).status, REMOVED);
    assert_eq!(c.job(&format!("{waiting}.0")).status, IDLE);

    let status = c.stop_master();
    assert!(status.success(), "master exit after SIGTERM: {status}");

    let events = c.journal_events();
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(
            ev["seq"],
            (i + 1) as u64,
            "sequence numbers run 1, 2, ...: {ev}"
        );
        assert_eq!(ev["v"], pilotq_journal::FORMAT_VERSION, "{ev}");
        assert!(ev["t"].as_u64().is_some_and(|t| t > 0), "{ev}");
    }
    let kinds: Vec<&str> = events.iter().map(|e| event_kind(e).0).collect();
    assert_eq!(kinds[0], "MasterStarted", "{kinds:?}");
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("MasterStarted"), 1, "{kinds:?}");
    assert_eq!(count("ClusterSubmitted"), 2, "{kinds:?}");
    assert_eq!(count("JobDispatched"), 3, "{kinds:?}");
    assert_eq!(count("JobCompleted"), 3, "{kinds:?}");
    assert_eq!(count("JobRemoved"), 1, "{kinds:?}");
    for ev in &events {
        let (k, body) = event_kind(ev);
        match k {
            "ClusterSubmitted" => {
                let cl = body["cluster"].as_u64().unwrap();
                let n = if cl == done { 3 } else { 2 };
                assert_eq!(body["count"], n, "{ev}");
                assert!(cl == done || cl == waiting, "{ev}");
            }
            "JobCompleted" => {
                assert_eq!(
                    body["outcome"],
                    serde_json::json!({"Exited": {"code": 7}}),
                    "{ev}"
                );
                assert!(
                    event_job(body).unwrap().starts_with(&format!("{done}.")),
                    "{ev}"
                );
            }
            "JobRemoved" => assert_eq!(event_job(body).unwrap(), format!("{waiting}.1")),
            _ => {}
        }
    }

    // The text dump: one line per event, starting with its sequence number.
    let j = c.journal.display().to_string();
    let text = c.run_ok(&["journal", "dump", "--journal", &j]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), events.len(), "{text}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            l.split_whitespace().next(),
            Some((i + 1).to_string().as_str()),
            "{l}"
        );
    }

    let v = c.run_ok(&["journal", "verify", "--journal", &j]);
    assert!(
        v.stdout
            .starts_with(&format!("ok: {} events;", events.len())),
        "{v}"
    );
    assert!(
        v.stdout
            .contains("5 jobs (1 idle, 0 running, 0 held, 3 completed, 1 removed)"),
        "{v}"
    );
    // The finished jobs left the queue for the history store (none was
    // submitted with leave_in_queue): verify says so beside the totals.
    assert!(
        v.stdout
            .contains("; 4 left the queue for history (3 completed, 1 removed)"),
        "{v}"
    );

    // A master started on it again shows exactly the same table.
    c.start_master();
    let after = c.q_json();
    assert_eq!(
        after, before,
        "the table after replay differs from the table before the stop"
    );
}

#[test]
fn a_crashed_masters_journal_verifies_and_replays() {
    let mut c = Cluster::with_master(MasterOpts {
        fixed_port: true,
        ..MasterOpts::default()
    });
    c.submit(
        4,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "echo crash"],
    );
    c.add_worker("w", 2);
    c.wait_all_completed(Duration::from_secs(30));
    let before = c.q_json();
    c.kill_master();
    let j = c.journal.display().to_string();
    let v = c.run_ok(&["journal", "verify", "--journal", &j]);
    assert!(v.stdout.starts_with("ok:"), "{v}");
    assert!(
        v.stdout
            .contains("4 jobs (0 idle, 0 running, 0 held, 4 completed, 0 removed)"),
        "{v}"
    );
    assert!(
        v.stdout
            .contains("; 4 left the queue for history (4 completed, 0 removed)"),
        "{v}"
    );
    let events = c.journal_events();
    let completed = events
        .iter()
        .filter(|e| event_kind(e).0 == "JobCompleted")
        .count();
    assert_eq!(completed, 4);
    c.restart_master();
    assert_eq!(c.q_json(), before, "the table after replay differs");
}

#[test]
fn a_second_master_on_a_held_journal_refuses_clearly() {
    let mut c = Cluster::with_master(MasterOpts::default());
    c.submit(
        1,
        &["--output", "out/one.out"],
        &["/bin/sh", "-c", "echo one"],
    );
    c.add_worker("w", 1);
    c.wait_all_completed(Duration::from_secs(30));
    let before = c.q_json();
    let j = c.journal.display().to_string();

    let out = c.run(&["master", "--listen", "127.0.0.1:0", "--journal", &j]);
    assert!(
        !out.ok(),
        "a second master started on a held journal:\n{out}"
    );
    assert!(
        out.stderr.contains("held") && out.stderr.contains(&j),
        "the error should say the journal is held: {out}"
    );
    assert!(
        !out.stdout.contains("listening"),
        "the second master claimed to listen: {out}"
    );
    for args in [
        vec!["journal", "dump", "--journal", &j],
        vec!["journal", "verify", "--journal", &j],
    ] {
        let out = c.run(&args);
        assert!(!out.ok(), "{args:?} on a held journal succeeded:\n{out}");
        assert!(out.stderr.contains("held"), "{args:?}: {out}");
    }
    // The first master is unharmed.
    assert_eq!(c.q_json(), before);
    let cl = c.submit(
        1,
        &["--output", "out/two.out"],
        &["/bin/sh", "-c", "echo two"],
    );
    c.wait_until(Duration::from_secs(30), "the new job completed", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == cl && j.status == COMPLETED)
    });
    assert_eq!(
        std::fs::read_to_string(c.path("out/two.out")).unwrap(),
        "two\n"
    );
}

/// Pointed at a path that holds no journal, a post-mortem says so and
/// exits non-zero, and leaves nothing behind: an existing directory (a
/// typo for the journal's parent, say) must not gain an empty sled
/// database.
#[test]
fn a_path_without_a_journal_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a journal").unwrap();
    let cases = [
        (dir.path().join("nowhere"), "no such directory"),
        (empty.clone(), "no sled database"),
        (file.clone(), "not a directory"),
    ];
    for (path, why) in &cases {
        for cmd in ["dump", "verify"] {
            let out = std::process::Command::new(pilotq_tests::bin())
                .args(["journal", cmd, "--journal"])
                .arg(path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{cmd} {path:?}: {stderr}");
            assert!(
                stderr.contains("no journal at") && stderr.contains(why),
                "{cmd} {path:?}: {stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        }
    }
    assert!(!dir.path().join("nowhere").exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a journal");
}
