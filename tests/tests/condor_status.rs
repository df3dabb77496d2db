//! `condor_status -schedd`: the queue's counts as a schedd ad, and failing
//! loudly when the master cannot be asked.

use pilotq_tests::{free_port, Cluster, MasterOpts, HELD, IDLE, REMOVED, RUNNING};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn schedd_af(c: &Cluster, attrs: &[&str]) -> String {
    let mut args = vec!["-schedd", "-af"];
    args.extend_from_slice(attrs);
    c.run_condor_ok("condor_status", &args).stdout
}

#[test]
fn the_schedd_ad_counts_running_idle_and_held_jobs() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // How a site's submit plugin reads the schedd: condor_status -schedd -af totalRunningJobs totalIdleJobs
    assert_eq!(
        schedd_af(&c, &["totalRunningJobs", "totalIdleJobs"]),
        "0 0\n"
    );
    // A job that cannot start (its interpreter does not exist) is held
    // once a worker tries it; it is first in line.
    let broken = c.path("broken.sh");
    std::fs::write(&broken, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.condor_submit_ok(&format!("executable = {}\nqueue\n", broken.display()), 1);
    assert_eq!(
        schedd_af(&c, &["totalRunningJobs", "totalIdleJobs"]),
        "0 1\n"
    );
    c.condor_submit_ok("executable = /bin/sleep\narguments = 30\nqueue 5\n", 5);
    assert_eq!(
        schedd_af(&c, &["totalRunningJobs", "totalIdleJobs"]),
        "0 6\n"
    );
    c.add_worker("w1", 2);
    c.wait_until(
        Duration::from_secs(30),
        "two jobs running, three idle, one held",
        |jobs| {
            let n = |s| jobs.iter().filter(|j| j.status == s).count();
            (n(RUNNING), n(IDLE), n(HELD)) == (2, 3, 1)
        },
    );
    assert_eq!(
        schedd_af(&c, &["totalRunningJobs", "totalIdleJobs"]),
        "2 3\n"
    );
    assert_eq!(
        schedd_af(
            &c,
            &[
                "TotalRunningJobs",
                "TotalIdleJobs",
                "totalHeldJobs",
                "TotalJobAds"
            ]
        ),
        "2 3 1 6\n"
    );
    let name = schedd_af(&c, &["Name"]);
    assert!(
        !name.trim().is_empty() && name.trim() != "undefined" && name.lines().count() == 1,
        "the schedd's Name: {name:?}"
    );
    let out = c.run_condor_ok(
        "condor_status",
        &[
            "-schedd",
            "-format",
            "%d ",
            "totalRunningJobs",
            "-format",
            "%d\\n",
            "totalIdleJobs",
        ],
    );
    assert_eq!(out.stdout, "2 3\n", "{out}");
    assert_eq!(schedd_af(&c, &["NoSuchAttribute"]), "undefined\n");

    c.run_ok(&["rm", "--all"]);
    c.wait_until(Duration::from_secs(15), "every job removed", |jobs| {
        jobs.iter().all(|j| j.status == REMOVED)
    });
    assert_eq!(
        schedd_af(&c, &["totalRunningJobs", "totalIdleJobs", "totalHeldJobs"]),
        "0 0 0\n"
    );
}

#[test]
fn with_the_master_down_condor_status_fails_loudly() {
    let mut c = Cluster::new();
    c.set_master_port(free_port());
    for args in [
        &["-schedd", "-af", "totalRunningJobs", "totalIdleJobs"][..],
        &["-schedd", "-format", "%d\\n", "totalIdleJobs"][..],
    ] {
        let out = c.run_condor("condor_status", args, None);
        assert!(
            !out.ok(),
            "condor_status {args:?} with no master exited 0\n{out}"
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "condor_status {args:?} with no master said nothing on stderr\n{out}"
        );
        assert_eq!(out.stdout.lines().count(), 0, "{out}");
    }
}
