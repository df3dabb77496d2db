//! Tags: a job that has tags runs only on holders offering all of them —
//! workers directly, and workers behind a foreman that offers them too.

use pilotq_tests::{free_port, Cluster, MasterOpts, COMPLETED, IDLE};
use std::time::Duration;

#[test]
fn tagged_jobs_go_only_where_their_tags_are_offered() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let addr = c.addr();
    c.add_worker_to("plain", 2, &addr);
    let mut cmd = c.command();
    cmd.arg("worker")
        .args([
            "--master",
            &addr,
            "--cores",
            "2",
            "--heartbeat",
            "1",
            "--tags",
            "gpu,cern",
        ])
        .arg("--workdir")
        .arg(c.path("workers/gpu"))
        .args(["--name", "gpu"]);
    let _gpu = c.spawn("worker-gpu", cmd);
    c.wait_holders(2, Duration::from_secs(20));
    let gpu_jobs = c.submit(
        6,
        &["--tag", "gpu", "--output", "out/$(Process).out"],
        &["/bin/sh", "-c", "echo $PWD"],
    );
    let nowhere = c.submit(1, &["--tag", "tpu"], &["/bin/true"]);
    let jobs = c.wait_until(Duration::from_secs(30), "the gpu jobs completed", |jobs| {
        jobs.iter()
            .filter(|j| j.cluster == gpu_jobs && j.status == COMPLETED)
            .count()
            == 6
    });
    for p in 0..6 {
        let out = std::fs::read_to_string(c.path(&format!("out/{p}.out"))).unwrap();
        assert!(
            out.contains("/workers/gpu/"),
            "job {p} ran outside the gpu worker: {out}"
        );
    }
    let j = jobs.iter().find(|j| j.cluster == nowhere).unwrap();
    assert_eq!(
        (j.status, j.attempts, j.holder.as_deref()),
        (IDLE, 0, None),
        "{:#}",
        j.raw
    );
}

#[test]
fn a_foreman_offers_its_tags_upstream() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let f = c
        .start_foreman("f", free_port(), &["--tags", "gpu"])
        .addr
        .clone();
    let mut cmd = c.command();
    cmd.arg("worker")
        .args([
            "--master",
            &f,
            "--cores",
            "1",
            "--heartbeat",
            "1",
            "--tags",
            "gpu",
        ])
        .arg("--workdir")
        .arg(c.path("workers/w"))
        .args(["--name", "w"]);
    let _w = c.spawn("worker-w", cmd);
    c.wait_holders(1, Duration::from_secs(20));
    c.submit(3, &["--tag", "gpu"], &["/bin/true"]);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert!(jobs.iter().all(|j| j.attempts == 1), "{jobs:#?}");
}
