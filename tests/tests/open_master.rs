//! No accidental open master: beyond loopback, a master (or foreman) without
//! a shared secret refuses to start, saying how to make one; `--insecure`
//! is the only way past, and it warns. `pilotq init-secret` makes the secret.

use pilotq_tests::{bin, run_with_timeout, Out};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn pilotq(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(dir)
        .env_remove("PILOTQ_MASTER")
        .env_remove("PILOTQ_PASSWORD_FILE")
        .stdin(Stdio::null());
    c
}

fn run(dir: &std::path::Path, args: &[&str]) -> Out {
    run_with_timeout(pilotq(dir, args), Duration::from_secs(30), &args.join(" "))
}

/// Starts a service, waits for its "listening on" line, and stops it; its
/// stderr so far.
fn starts(dir: &std::path::Path, args: &[&str]) -> String {
    let mut child = pilotq(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pilotq");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        line.contains("listening on"),
        "`{}` did not start: {line:?}\n{stderr}",
        args.join(" ")
    );
    stderr
}

#[test]
fn a_master_beyond_loopback_without_a_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["master", "--listen", "0.0.0.0:0", "--journal", "j"]);
    assert!(!out.ok(), "it started:\n{out}");
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0"),
        "{out}"
    );
    assert!(out.stderr.contains("pilotq init-secret"), "says how: {out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    // The same for a foreman's listener.
    let out = run(
        d,
        &[
            "foreman",
            "--listen",
            "0.0.0.0:0",
            "--journal",
            "f",
            "--master",
            "127.0.0.1:1",
        ],
    );
    assert!(!out.ok(), "it started:\n{out}");
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0"),
        "{out}"
    );

    // Loopback needs no set-up.
    starts(d, &["master", "--listen", "127.0.0.1:0", "--journal", "j1"]);
    // --insecure gets past, loudly.
    let err = starts(
        d,
        &[
            "master",
            "--listen",
            "0.0.0.0:0",
            "--journal",
            "j2",
            "--insecure",
        ],
    );
    assert!(err.contains("--insecure"), "it warns: {err}");
}

#[test]
fn init_secret_writes_a_private_secret_a_master_beyond_loopback_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["init-secret", "secret"]);
    assert!(out.ok(), "{out}");
    let path = d.join("secret");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner only");
    let text = std::fs::read_to_string(&path).unwrap();
    let hexits = text.trim_end();
    assert_eq!(hexits.len(), 64, "{text:?}");
    assert!(hexits.bytes().all(|b| b.is_ascii_hexdigit()), "{text:?}");
    // Never over an existing secret.
    let again = run(d, &["init-secret", "secret"]);
    assert!(
        !again.ok() && again.stderr.contains("already exists"),
        "{again}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "left alone");
    // Two secrets differ.
    assert!(run(d, &["init-secret", "other"]).ok());
    assert_ne!(std::fs::read_to_string(d.join("other")).unwrap(), text);
    // With it, a master listens beyond loopback.
    starts(
        d,
        &[
            "master",
            "--listen",
            "0.0.0.0:0",
            "--journal",
            "j",
            "--password-file",
            "secret",
        ],
    );
}

/// Holders and clients prove different secrets: a pilot's (holder) secret
/// cannot be used to submit or read, a client's cannot register a worker.
#[test]
fn holder_and_client_secrets_are_separate_credentials() {
    use pilotq_tests::{Cluster, MasterOpts, COMPLETED};
    use pilotq_wire::handshake::fresh_nonce;
    use pilotq_wire::{FromMaster, Hello, Role, Secret, PROTOCOL_VERSION};

    let dir = tempfile::tempdir().unwrap();
    let (holder, client) = (dir.path().join("holder"), dir.path().join("client"));
    assert!(run(dir.path(), &["init-secret", "holder"]).ok());
    assert!(run(dir.path(), &["init-secret", "client"]).ok());
    // Workers get --password-file (the holder secret; the master's
    // fallback for every role), clients the client secret.
    let mut c = Cluster::with_master(MasterOpts {
        password_file: Some(holder.clone()),
        extra: vec![
            "--client-password-file".into(),
            client.display().to_string(),
        ],
        ..MasterOpts::default()
    });
    c.client_password = Some(client.clone());
    c.submit(2, &[], &["/bin/true"]);
    c.add_worker("w1", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert!(jobs.iter().all(|j| j.status == COMPLETED));

    // A client proving the holder secret is refused.
    let out = c.run(&["status", "--password-file", holder.to_str().unwrap()]);
    assert!(
        !out.ok(),
        "a holder secret read the master's status:\n{out}"
    );
    assert!(out.stderr.contains("authentication"), "{out}");
    // A worker proving the client secret is refused.
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        role: Role::Worker,
        name: "intruder".into(),
        nonce: fresh_nonce(),
    };
    let mut conn = prove(&c.addr(), &hello, &Secret::from_file(&client).unwrap());
    let m = conn
        .expect_error_and_close(Duration::from_secs(10))
        .expect("refused");
    assert!(m.contains("authentication"), "{m:?}");
    // And the same worker handshake with the holder secret is accepted.
    let mut conn = prove(&c.addr(), &hello, &Secret::from_file(&holder).unwrap());
    assert!(matches!(
        conn.read_msg(Duration::from_secs(10)),
        Ok(FromMaster::Accepted)
    ));
}

/// Sends `hello` and a proof of `secret` for the master's nonce; the
/// connection, awaiting the master's verdict.
fn prove(
    addr: &str,
    hello: &pilotq_wire::Hello,
    secret: &pilotq_wire::Secret,
) -> pilotq_tests::RawConn {
    use pilotq_wire::handshake::Prover;
    use pilotq_wire::{FromMaster, ToMaster};
    let mut conn = pilotq_tests::RawConn::connect(addr);
    conn.send_msg(&ToMaster::Hello(hello.clone())).unwrap();
    let nonce = match conn.read_msg(Duration::from_secs(10)) {
        Ok(FromMaster::Welcome(w)) => w.nonce,
        other => panic!("expected Welcome, got {other:?}"),
    };
    conn.send_msg(&ToMaster::Proof {
        proof: Some(secret.prove(Prover::Peer, hello, &nonce)),
    })
    .unwrap();
    conn
}
