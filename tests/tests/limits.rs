//! Per-owner limits: an owner's live jobs stay under `--max-jobs-per-owner`
//! (HTCondor's MAX_JOBS_PER_OWNER); a submission beyond is refused whole
//! with one clear error, and finished jobs no longer count.

use pilotq_tests::{Cluster, MasterOpts};
use std::time::Duration;

#[test]
fn an_owner_beyond_its_live_job_limit_is_refused_until_its_jobs_finish() {
    let mut c = Cluster::with_master(MasterOpts {
        extra: vec!["--max-jobs-per-owner".into(), "10".into()],
        ..MasterOpts::default()
    });
    c.submit(8, &[], &["/bin/true"]);
    let out = c.run(&["submit", "--count", "3", "--", "/bin/true"]);
    assert!(!out.ok(), "an 11th live job was accepted:\n{out}");
    assert!(
        out.stderr.contains("--max-jobs-per-owner") && out.stderr.contains("10"),
        "says which limit: {out}"
    );
    assert_eq!(
        c.q_json().len(),
        8,
        "nothing of the refused submission applied"
    );
    c.submit(2, &[], &["/bin/true"]);
    // Finished jobs leave the queue and no longer count.
    c.add_worker("w1", 2);
    c.wait_all_completed(Duration::from_secs(30));
    c.submit(10, &[], &["/bin/true"]);
}
