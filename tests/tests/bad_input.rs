//! Bad input on the master's port: garbage, oversized frames, bodies that do
//! not decode, messages before the handshake, wrong passwords, a newer
//! protocol, hundreds of silent connections. Each gets a clear error and a
//! closed connection; nothing of it is applied; everyone else is served.

use pilotq_tests::{Cluster, MasterOpts, RawConn, Reply, COMPLETED, IDLE};
use pilotq_wire::handshake::fresh_nonce;
use pilotq_wire::{FromMaster, Hello, JobSpec, Resources, Role, Selector, ToMaster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const REPLY: Duration = Duration::from_secs(10);

/// A master with a worker, three completed jobs and two that never run (they
/// ask for more cores than any worker has), so a removal or a submission
/// that slipped through would show. Returns the table as `q --json` shows it.
fn setup(opts: MasterOpts) -> (Cluster, Vec<Value>) {
    let mut c = Cluster::with_master(opts);
    // A tiny executable (some masters here take only 64 KiB frames), used by
    // every submission of these tests.
    let tiny = c.path("tiny.sh");
    std::fs::write(&tiny, "#!/bin/sh\necho \"$@\"\n").unwrap();
    std::fs::set_permissions(&tiny, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    c.submit(
        3,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["./tiny.sh", "first"],
    );
    c.submit(2, &["--cores", "64"], &["./tiny.sh", "never"]);
    c.add_worker("w", 2);
    let jobs = c.wait_until(
        Duration::from_secs(30),
        "three jobs completed, two idle",
        |jobs| {
            jobs.len() == 5
                && jobs.iter().filter(|j| j.status == COMPLETED).count() == 3
                && jobs.iter().filter(|j| j.status == IDLE).count() == 2
        },
    );
    assert!(jobs
        .iter()
        .all(|j| j.exit_code.is_some() || j.status == IDLE));
    let before = c.q_json();
    (c, before)
}

/// The table is as it was, `q` and a new submission work, the worker is
/// still connected.
fn still_serving(c: &Cluster, before: &[Value]) {
    let now = c.q_json();
    assert_eq!(
        now,
        before,
        "the table changed\nbefore: {}\nafter: {}",
        serde_json::to_string_pretty(before).unwrap(),
        serde_json::to_string_pretty(&now).unwrap()
    );
    let cl = c.submit(
        1,
        &["--output", "out/after.$(Cluster).out"],
        &["./tiny.sh", "after"],
    );
    c.wait_until(Duration::from_secs(30), "the new job completed", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == cl && j.status == COMPLETED)
    });
    assert_eq!(
        std::fs::read_to_string(c.path(&format!("out/after.{cl}.out"))).unwrap(),
        "after\n"
    );
    let s = c.status_json();
    assert_eq!(s["holders"], 1, "the worker was disconnected: {s}");
}

fn hello(protocol: u32, role: Role, name: &str) -> ToMaster {
    ToMaster::Hello(Hello {
        protocol,
        role,
        name: name.into(),
        nonce: fresh_nonce(),
    })
}

fn expect_refused(conn: &mut RawConn, what: &str) -> String {
    match conn.expect_error_and_close(REPLY) {
        Ok(m) => {
            assert!(!m.trim().is_empty(), "{what}: empty error message");
            m
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A job spec for raw submissions, with the executable's bytes.
fn raw_spec(c: &Cluster) -> (JobSpec, Vec<u8>) {
    let bytes = b"#!/bin/sh\necho smuggled\n".to_vec();
    let hash = {
        // sha256 is the wire's content hash; compute it with the system tool
        // to stay independent of the product's code.
        let f = c.path("smuggled.sh");
        std::fs::write(&f, &bytes).unwrap();
        let out = std::process::Command::new("sha256sum")
            .arg(&f)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    let spec = JobSpec {
        executable: hash,
        cmd: "smuggled.sh".into(),
        arguments: vec![],
        environment: BTreeMap::new(),
        output: Some(c.path("out/smuggled.out").display().to_string()),
        error: None,
        log: None,
        request: Resources::new(1, 0, 0),
        priority: 0,
        attributes: BTreeMap::new(),
        owner: "intruder".into(),
        iwd: c.root.display().to_string(),
        tags: vec![],
        leave_in_queue: false,
    };
    (spec, bytes)
}

#[test]
fn garbage_bytes_get_an_error_and_a_closed_connection() {
    let (c, before) = setup(MasterOpts::default());
    let addr = c.addr();
    // An HTTP request: its first four bytes read as a 1.1 GB length.
    let mut conn = RawConn::connect(&addr);
    conn.send_raw(b"GET / HTTP/1.1\r\nHost: pilotq\r\n\r\n")
        .unwrap();
    let m = expect_refused(&mut conn, "HTTP request");
    eprintln!("HTTP request refused with: {m}");
    // A small length and noise.
    let mut conn = RawConn::connect(&addr);
    conn.send_raw(&[
        0, 0, 0, 10, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37, 0xc1, 0xc1,
    ])
    .unwrap();
    let m = expect_refused(&mut conn, "noise");
    eprintln!("noise refused with: {m}");
    // TLS ClientHello-like bytes.
    let mut conn = RawConn::connect(&addr);
    conn.send_raw(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    expect_refused(&mut conn, "TLS hello");
    still_serving(&c, &before);
}

#[test]
fn an_oversized_frame_is_refused() {
    let (c, before) = setup(MasterOpts {
        max_frame: Some(65536),
        ..MasterOpts::default()
    });
    let mut conn = RawConn::connect(&c.addr());
    // A header claiming 1 MiB, and the start of a body.
    conn.send_raw(&(1u32 << 20).to_be_bytes()).unwrap();
    conn.send_raw(&[0x81; 512]).unwrap();
    let m = expect_refused(&mut conn, "1 MiB frame on a 64 KiB master");
    // Before the handshake the limit is a few KiB, whatever --max-frame says.
    assert!(
        m.contains("1048576") && m.contains("4096"),
        "the error should say how large the frame was and the pre-handshake maximum: {m:?}"
    );
    // Also as the first frame after a good handshake.
    let mut conn = RawConn::handshake(&c.addr(), Role::Client, "big", None);
    conn.send_raw(&(1u32 << 20).to_be_bytes()).unwrap();
    let m = expect_refused(&mut conn, "1 MiB frame after the handshake");
    assert!(m.contains("65536"), "{m:?}");
    still_serving(&c, &before);
}

/// An unauthenticated peer cannot make the master reserve a large frame:
/// before the handshake completes, 8 KiB is already too much (with the
/// default 16 MiB maximum, 60,000 such connections could have cost 1 TB).
#[test]
fn before_the_handshake_only_small_frames_are_taken() {
    let (c, before) = setup(MasterOpts::default());
    let mut conn = RawConn::connect(&c.addr());
    conn.send_raw(&(8u32 << 10).to_be_bytes()).unwrap();
    conn.send_raw(&[0x81; 512]).unwrap();
    let m = expect_refused(&mut conn, "8 KiB frame before the handshake");
    assert!(m.contains("8192") && m.contains("4096"), "{m:?}");
    // After Hello, still before the proof: the same.
    let mut conn = RawConn::connect(&c.addr());
    conn.send_msg(&hello(pilotq_wire::PROTOCOL_VERSION, Role::Client, "x"))
        .unwrap();
    match conn.read_msg(REPLY) {
        Ok(FromMaster::Welcome(_)) => {}
        other => panic!("expected Welcome, got {other:?}"),
    }
    conn.send_raw(&(8u32 << 10).to_be_bytes()).unwrap();
    let m = expect_refused(&mut conn, "8 KiB frame between Hello and Proof");
    assert!(m.contains("4096"), "{m:?}");
    still_serving(&c, &before);
}

#[test]
fn a_framed_body_that_is_not_a_message_is_refused() {
    let (c, before) = setup(MasterOpts::default());
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("bytes that are not msgpack", vec![0xc1; 16]),
        (
            "a msgpack string",
            rmp_serde::to_vec_named("Hello").unwrap(),
        ),
        (
            "a msgpack map that is no message",
            rmp_serde::to_vec_named(&serde_json::json!({"Hello": {"protocol": "one"}})).unwrap(),
        ),
        ("an empty body", vec![]),
    ];
    for (what, body) in bodies {
        let mut conn = RawConn::connect(&c.addr());
        conn.send_frame(&body).unwrap();
        let m = expect_refused(&mut conn, what);
        eprintln!("{what}: refused with {m}");
    }
    still_serving(&c, &before);
}

#[test]
fn requests_before_the_handshake_are_refused_and_not_applied() {
    let (c, before) = setup(MasterOpts::default());
    let (spec, bytes) = raw_spec(&c);
    let submit = ToMaster::Submit {
        spec: Box::new(spec),
        count: 5,
        executable: bytes,
    };
    // As a super user: accepted, it would remove everything.
    let remove = ToMaster::Remove {
        selectors: vec![Selector::All],
        owner: Some("root".into()),
    };
    // As the very first frame.
    for msg in [&submit, &remove] {
        let mut conn = RawConn::connect(&c.addr());
        conn.send_msg(msg).unwrap();
        expect_refused(&mut conn, "request as the first frame");
    }
    // After Hello, instead of the Proof.
    for msg in [&submit, &remove] {
        let mut conn = RawConn::connect(&c.addr());
        conn.send_msg(&hello(pilotq_wire::PROTOCOL_VERSION, Role::Client, "eager"))
            .unwrap();
        match conn.read_msg(REPLY) {
            Ok(FromMaster::Welcome(_)) => {}
            other => panic!("expected Welcome, got {other:?}"),
        }
        conn.send_msg(msg).unwrap();
        expect_refused(&mut conn, "request instead of the proof");
    }
    // A holder's report from a peer that never said who it is.
    let mut conn = RawConn::connect(&c.addr());
    conn.send_msg(&ToMaster::Heartbeat).unwrap();
    expect_refused(&mut conn, "heartbeat as the first frame");
    assert!(!c.path("out/smuggled.out").exists());
    still_serving(&c, &before);
}

#[test]
fn a_newer_protocol_is_refused_with_a_clear_error() {
    let (c, before) = setup(MasterOpts::default());
    for role in [Role::Client, Role::Worker] {
        let mut conn = RawConn::connect(&c.addr());
        conn.send_msg(&hello(99, role, "from-the-future")).unwrap();
        let m = expect_refused(&mut conn, "protocol 99");
        assert!(
            m.contains("99") && m.to_lowercase().contains("protocol"),
            "the error should name the protocol version: {m:?}"
        );
    }
    still_serving(&c, &before);
}

fn write_file(c: &Cluster, name: &str, text: &str) -> PathBuf {
    let p = c.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A master and worker sharing a password, and a file with a wrong one.
fn password_setup() -> (Cluster, Vec<Value>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    let (c, before) = setup(MasterOpts {
        password_file: Some(pw),
        ..MasterOpts::default()
    });
    let wrong = write_file(&c, "wrong-password", "Tr0ub4dor&3\n");
    (c, before, wrong, dir)
}

#[test]
fn a_client_with_a_wrong_password_is_told_authentication_failed() {
    let (c, before, wrong, _dir) = password_setup();
    let wrong_s = wrong.display().to_string();
    for (what, args) in [
        (
            "q with a wrong password",
            vec!["q", "--json", "--password-file", &wrong_s],
        ),
        (
            "submit with a wrong password",
            vec![
                "submit",
                "--password-file",
                &wrong_s,
                "--",
                "./tiny.sh",
                "smuggled",
            ],
        ),
    ] {
        let out = c.run(&args);
        assert!(!out.ok(), "{what} succeeded:\n{out}");
        let err = out.stderr.to_lowercase();
        assert!(
            err.contains("authentication"),
            "{what}: the error should say that authentication failed:\n{out}"
        );
        assert!(
            !err.contains("is the master running"),
            "{what}: the master is running; the error should not suggest starting one:\n{out}"
        );
    }
    let mut nopw = c.command();
    nopw.args(["q", "--json"]).env("PILOTQ_MASTER", c.addr());
    let out = pilotq_tests::run_with_timeout(nopw, Duration::from_secs(60), "q without password");
    assert!(!out.ok(), "q without a password succeeded:\n{out}");
    assert!(
        out.stderr.to_lowercase().contains("authentication"),
        "q without a password: {out}"
    );
    assert!(
        !out.stderr.contains("is the master running"),
        "q without a password: the master is running; the error should not suggest starting one:\n{out}"
    );
    still_serving(&c, &before);
}

#[test]
fn a_wrong_proof_is_refused_and_nothing_of_it_is_applied() {
    let (mut c, before, wrong, _dir) = password_setup();
    // A worker with a wrong password would get the 64-core jobs if it were
    // let in.
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", &c.addr()])
        .args(["--cores", "64", "--heartbeat", "1", "--name", "intruder"])
        .arg("--workdir")
        .arg(c.path("workers/intruder"))
        .arg("--password-file")
        .arg(&wrong);
    let intruder = c.spawn("worker-intruder", cmd);
    c.others.push(intruder);

    // Raw connections: a made-up proof, no proof, and a bad proof followed
    // at once by a submission.
    let (spec, bytes) = raw_spec(&c);
    for (what, proof, then_submit) in [
        ("a made-up proof", Some(vec![0u8; 32]), false),
        ("no proof", None, false),
        ("a bad proof and a submission", Some(vec![7u8; 32]), true),
    ] {
        let mut conn = RawConn::connect(&c.addr());
        conn.send_msg(&hello(pilotq_wire::PROTOCOL_VERSION, Role::Client, "raw"))
            .unwrap();
        match conn.read_msg(REPLY) {
            Ok(FromMaster::Welcome(w)) => {
                assert!(w.proof.is_some(), "a master with a password must prove it")
            }
            other => panic!("{what}: expected Welcome, got {other:?}"),
        }
        conn.send_msg(&ToMaster::Proof { proof }).unwrap();
        if then_submit {
            conn.send_msg(&ToMaster::Submit {
                spec: Box::new(spec.clone()),
                count: 3,
                executable: bytes.clone(),
            })
            .unwrap();
        }
        let m = expect_refused(&mut conn, what);
        assert!(m.to_lowercase().contains("authentication"), "{what}: {m:?}");
    }
    // Give the intruder time to try (and fail) a few times.
    std::thread::sleep(Duration::from_secs(3));
    let s = c.status_json();
    assert_eq!(
        s["holders"], 1,
        "a worker with a wrong password got in: {s}"
    );
    assert!(
        c.others[0].running(),
        "the refused worker should keep retrying, not exit"
    );
    assert!(!c.path("out/smuggled.out").exists());
    still_serving(&c, &before);
}

#[test]
fn hundreds_of_silent_connections_are_closed_and_do_not_block_anyone() {
    let timeout = 2.0;
    let (c, before) = setup(MasterOpts {
        handshake_timeout: Some(timeout),
        ..MasterOpts::default()
    });
    let t0 = Instant::now();
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut conn = RawConn::connect(&c.addr());
        if i % 5 == 0 {
            // Half a header, then silence.
            conn.send_raw(&[0, 0]).unwrap();
        } else if i % 5 == 1 {
            // A Hello, then silence instead of the proof.
            conn.send_msg(&hello(pilotq_wire::PROTOCOL_VERSION, Role::Client, "mute"))
                .unwrap();
        }
        conns.push((i, conn, Instant::now()));
    }
    let opened = t0.elapsed();
    // While they are all open, everyone else is served.
    let q = c.q_json();
    let during = t0.elapsed();
    assert!(
        during < Duration::from_secs_f64(timeout),
        "opening 300 connections and one q took {during:?} ({opened:?} to open); the test needs them open during the q"
    );
    assert_eq!(q, before, "the table changed");
    let cl = c.submit(
        1,
        &["--output", "out/during.$(Cluster).out"],
        &["./tiny.sh", "during"],
    );

    // Each is closed within a few seconds of the handshake timeout.
    let limit = Duration::from_secs_f64(timeout + 4.0);
    let mut late = Vec::new();
    let mut worst = Duration::ZERO;
    for (i, conn, opened_at) in &mut conns {
        let deadline = *opened_at + limit;
        let mut frames = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match conn.read_reply(left.max(Duration::from_millis(1))) {
                Reply::Frame(b) => {
                    frames += 1;
                    let m: FromMaster = rmp_serde::from_slice(&b)
                        .unwrap_or_else(|e| panic!("conn {i}: undecodable frame: {e}"));
                    let welcome_ok = *i % 5 == 1 && frames == 1;
                    if !welcome_ok {
                        assert!(
                            matches!(m, FromMaster::Error { .. }),
                            "conn {i}: a silent connection got {m:?}"
                        );
                    }
                }
                Reply::Closed | Reply::Reset => {
                    worst = worst.max(opened_at.elapsed());
                    break;
                }
                Reply::Silent => {
                    late.push(*i);
                    break;
                }
            }
        }
    }
    assert!(
        late.is_empty(),
        "{} of 300 silent connections were still open {limit:?} after they were opened (handshake timeout {timeout} s): {:?}\n{}",
        late.len(),
        &late[..late.len().min(20)],
        c.diag()
    );
    eprintln!("the slowest silent connection was closed after {worst:?}");
    drop(conns);

    c.wait_until(
        Duration::from_secs(30),
        "the job submitted during the flood completed",
        |jobs| {
            jobs.iter()
                .any(|j| j.cluster == cl && j.status == COMPLETED)
        },
    );
    assert_eq!(
        std::fs::read_to_string(c.path(&format!("out/during.{cl}.out"))).unwrap(),
        "during\n"
    );
    // Apart from that job, nothing changed.
    let now: Vec<Value> = c
        .q_json()
        .into_iter()
        .filter(|j| j["cluster"] != cl)
        .collect();
    assert_eq!(now, before);
    still_serving(&c, &before_with(&c, cl, &before));
}

/// `before` plus the jobs of cluster `cl` as they are now.
fn before_with(c: &Cluster, cl: u64, before: &[Value]) -> Vec<Value> {
    let mut v = before.to_vec();
    v.extend(c.q_json_ids(&[&cl.to_string()]));
    v
}

/// Client requests come from client connections only: a worker or foreman
/// connection (a pilot on a machine the site may not fully trust) that
/// submits, removes or reads the queue gets one error, its connection
/// closed, and nothing of it applied.
#[test]
fn a_holder_connection_cannot_submit_remove_or_read_the_queue() {
    let (c, before) = setup(MasterOpts::default());
    let (spec, bytes) = raw_spec(&c);
    let requests = [
        (
            "submit",
            ToMaster::Submit {
                spec: Box::new(spec),
                count: 2,
                executable: bytes,
            },
        ),
        (
            "remove",
            ToMaster::Remove {
                selectors: vec![pilotq_wire::Selector::All],
                owner: Some("root".into()),
            },
        ),
        ("query", ToMaster::Query { selectors: vec![] }),
        ("status", ToMaster::Status),
    ];
    for role in [Role::Worker, Role::Foreman] {
        for (what, req) in &requests {
            let mut conn = RawConn::handshake(&c.addr(), role, "pilot-7", None);
            conn.send_msg(req).unwrap();
            let m = expect_refused(&mut conn, &format!("a {role} sending {what}"));
            assert!(m.contains("may not send"), "{role} {what}: {m:?}");
        }
    }
    still_serving(&c, &before);
}
