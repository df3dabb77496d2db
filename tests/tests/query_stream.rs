//! `pilotq q` streams the master's answer chunk by chunk (`--json`,
//! `--jsonl`, the table). Over 50,000 jobs (25 chunks of 2,000) each job must
//! be printed once, in order, and equal the master's whole answer, read here
//! with raw frames and collected before comparing.

use pilotq_tests::*;
use pilotq_wire::{FromMaster, JobView, Role, ToMaster};
use serde_json::{json, Value};
use std::time::Duration;

const REPLY: Duration = Duration::from_secs(30);

/// Every job the master answers to an unrestricted query, all chunks
/// collected: the non-streamed answer.
fn whole_answer(c: &Cluster) -> Vec<JobView> {
    let mut conn = RawConn::handshake(&c.addr(), Role::Client, "whole-answer", None);
    conn.send_msg(&ToMaster::Query { selectors: vec![] })
        .unwrap();
    let mut all = Vec::new();
    let mut chunks = 0;
    loop {
        match conn.read_msg(REPLY) {
            Ok(FromMaster::Jobs { jobs, last }) => {
                chunks += 1;
                all.extend(jobs);
                if last {
                    break;
                }
            }
            other => panic!("expected Jobs, got {other:?}"),
        }
    }
    assert!(
        chunks > 10,
        "the answer came in {chunks} chunks: nothing streamed"
    );
    all
}

/// The object `pilotq q --json` documents for a job.
fn expected(j: &JobView) -> Value {
    json!({
        "id": j.id.to_string(),
        "cluster": j.id.cluster.0,
        "proc": j.id.proc,
        "status": j.status.number(),
        "status_name": j.status.name(),
        "attempts": j.attempts,
        "exit_code": j.exit_code,
        "signal": j.signal,
        "holder": j.holder,
        "hold_reason": j.hold_reason,
        "owner": j.owner,
        "cmd": j.cmd,
        "args": j.arguments,
        "priority": j.priority,
        "request_cpus": j.request.cores,
        "request_memory": j.request.memory_mb,
        "request_disk": j.request.disk_mb,
        "submitted_at": j.submitted_at,
        "entered_status_at": j.entered_status_at,
        "started_at": j.started_at,
    })
}

/// Each job once, in (cluster, proc) order.
fn assert_once_in_order(jobs: &[Value], what: &str) {
    let key = |v: &Value| (v["cluster"].as_u64().unwrap(), v["proc"].as_u64().unwrap());
    for w in jobs.windows(2) {
        assert!(
            key(&w[0]) < key(&w[1]),
            "{what}: {} then {}: out of order or repeated",
            w[0]["id"],
            w[1]["id"]
        );
    }
}

#[test]
fn q_streams_every_job_once_in_order_as_the_master_answered() {
    // No workers: the jobs stay idle, so every answer shows the same state.
    let c = Cluster::with_master(MasterOpts::default());
    let big = c.submit(50_000, &[], &["/bin/echo", "$(Process)"]);
    let small = c.submit(3, &["--priority", "5"], &["/bin/true"]);
    // A removed job in the middle of the first cluster: a record of its
    // own among the never-materialised ones (listed as Removed, or gone to
    // the history store, as the queue keeps finished jobs or not).
    c.run_ok(&["rm", &format!("{big}.2001")]);
    let whole = whole_answer(&c);
    let n = whole.len();
    assert!(n == 50_003 || n == 50_002, "{n} jobs");
    let want: Vec<Value> = whole.iter().map(expected).collect();
    assert_once_in_order(&want, "the master's answer");

    let lines = c.run_ok(&["q", "--jsonl"]).stdout;
    assert!(lines.ends_with('\n'));
    let from_lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_once_in_order(&from_lines, "--jsonl");
    assert_eq!(from_lines.len(), want.len());
    assert!(
        from_lines == want,
        "--jsonl differs from the master's answer"
    );

    let array = c.run_ok(&["q", "--json"]).stdout;
    let Value::Array(from_array) = serde_json::from_str(&array).unwrap() else {
        panic!("--json printed no array");
    };
    assert_once_in_order(&from_array, "--json");
    assert!(
        from_array == want,
        "--json differs from the master's answer"
    );
    assert_eq!(from_array[n - 3]["id"], format!("{small}.0"));

    // The table: a line per job, and the totals counted along the way.
    let table = c.run_ok(&["q"]).stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 1 + n + 2, "heading, jobs, blank, totals");
    assert!(rows[1].starts_with(&format!(" {big}.0 ")));
    assert!(rows[n].starts_with(&format!(" {small}.2 ")));
    let removed = n - 50_002;
    assert_eq!(
        rows.last().unwrap(),
        &format!("Total for query: {n} jobs; 0 completed, {removed} removed, 50002 idle, 0 running, 0 held, 0 suspended")
    );

    // condor_q streams too (on a thread that hands over chunks): a line
    // per job, in order, and a summary that counted them all.
    let af = c
        .run_condor_ok("condor_q", &["-af", "ClusterId", "ProcId"])
        .stdout;
    let want_af: String = whole
        .iter()
        .map(|j| format!("{} {}\n", j.id.cluster.0, j.id.proc))
        .collect();
    assert!(
        af == want_af,
        "condor_q -af differs from the master's answer"
    );
    let nobatch = c.run_condor_ok("condor_q", &["-nobatch"]).stdout;
    assert_eq!(nobatch.lines().count(), 3 + n + 3, "{:.300}", nobatch);
    assert!(nobatch.contains(&format!("\nTotal for query: {n} jobs; ")));

    // A selection streams the same way, and an empty one is an empty array.
    let one = c.run_ok(&["q", "--jsonl", &small.to_string()]).stdout;
    assert_eq!(one.lines().count(), 3);
    let none = c.run_ok(&["q", "--json", "999"]).stdout;
    assert_eq!(none, "[]\n");
    assert_eq!(c.run_ok(&["q", "--jsonl", "999"]).stdout, "");
}
