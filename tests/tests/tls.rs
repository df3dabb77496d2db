//! TLS on every TCP link ("secure by default"): a master and a foreman
//! serving TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`), and the
//! workers, the foreman's upstream and the clients (`pilotq`, `condor_*`)
//! trusting its CA (`--tls-ca` or `PILOTQ_TLS_CA`, with `PILOTQ_TLS_CERT` /
//! `PILOTQ_TLS_KEY` for mutual TLS).
//!
//! | test | what a user sees |
//! |---|---|
//! | end to end | master, foreman, workers on both, `pilotq submit` and `condor_submit` over TLS: every job's output file holds its own line; `condor_q`, `pilotq status` answer over TLS; the master's log does not report clients that leave without a TLS close_notify |
//! | plain client | a client without `--tls-ca` is refused at once, told the master speaks TLS and to give `--tls-ca`, and a pilotq frame sent in the clear gets no pilotq answer |
//! | wrong CA | a client (or `condor_q`) trusting another CA is refused with a certificate error, said once and with no "is the master running" hint; the master goes on serving |
//! | TLS client, plain master | `pilotq` and `condor_q` trusting a CA are refused and asked whether the master serves TLS |
//! | mutual TLS | without a client certificate (or with one of another CA) a client and a worker are refused; with one, a worker runs the jobs a client submits |
//! | foreman under mutual TLS | a foreman showing its server certificate upstream registers and its TLS workers run jobs; a foreman with no certificate to show never registers |
//! | roles | inside TLS, the holder secret still cannot submit and the client secret cannot hold jobs |
//! | slow handshake | a TCP connection that never finishes its TLS handshake is closed after `--handshake-timeout` |
//!
//! The certificates come from [`pilotq_sim::certs::Pki`]: a CA, a server
//! certificate for `localhost` / `127.0.0.1` / `::1`, a client certificate.
//! The harness's own client helpers do not pass TLS settings, so clients and
//! workers are started here, with the cluster's tempdir, logs and guards
//! (workers are kept in `Cluster::workers` and die with the cluster).

use pilotq_sim::certs::Pki;
use pilotq_tests::{
    parse_submit, run_with_input, serde_json, wait_for, Cluster, Finished, Input, Job, MasterOpts,
    Out, RawConn, Worker, COMPLETED, HELD, REMOVED,
};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The TLS and password settings of one client process, given to it through
/// the environment (`PILOTQ_TLS_CA`, `PILOTQ_TLS_CERT`, `PILOTQ_TLS_KEY`,
/// `PILOTQ_PASSWORD_FILE`), which `pilotq` and the `condor_*` commands both
/// read. Anything not set here is removed from the inherited environment.
#[derive(Debug, Clone, Default)]
struct Creds {
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
    password: Option<PathBuf>,
}

impl Creds {
    /// Trusts `pki`'s CA, shows no certificate.
    fn trusting(pki: &Pki, password: Option<&Path>) -> Creds {
        Creds {
            ca: Some(pki.ca.clone()),
            identity: None,
            password: password.map(Path::to_path_buf),
        }
    }

    /// Trusts `pki`'s CA and shows its client certificate.
    fn with_cert(pki: &Pki, password: Option<&Path>) -> Creds {
        Creds::trusting(pki, password).showing(pki)
    }

    /// These, showing `shown`'s client certificate.
    fn showing(self, shown: &Pki) -> Creds {
        Creds {
            identity: Some((shown.client_cert.clone(), shown.client_key.clone())),
            ..self
        }
    }

    /// No TLS at all.
    fn plain(password: Option<&Path>) -> Creds {
        Creds {
            password: password.map(Path::to_path_buf),
            ..Creds::default()
        }
    }

    fn apply(&self, c: &Cluster, cmd: &mut Command) {
        for k in [
            "PILOTQ_TLS_CA",
            "PILOTQ_TLS_CERT",
            "PILOTQ_TLS_KEY",
            "PILOTQ_PASSWORD_FILE",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("PILOTQ_MASTER", c.addr());
        if let Some(ca) = &self.ca {
            cmd.env("PILOTQ_TLS_CA", ca);
        }
        if let Some((cert, key)) = &self.identity {
            cmd.env("PILOTQ_TLS_CERT", cert).env("PILOTQ_TLS_KEY", key);
        }
        if let Some(p) = &self.password {
            cmd.env("PILOTQ_PASSWORD_FILE", p);
        }
    }
}

/// A fresh PKI (CA, server and client certificates) in `<tempdir>/<name>`.
fn pki(c: &Cluster, name: &str) -> Pki {
    Pki::generate(&c.path(name), name).expect("generating a throw-away PKI")
}

/// A shared secret in `<tempdir>/<name>`.
fn secret(c: &Cluster, name: &str) -> PathBuf {
    let p = c.path(name);
    std::fs::write(&p, format!("the {name} secret, long enough to be one\n")).unwrap();
    p
}

/// `--tls-cert SERVER --tls-key KEY` for a master or a foreman.
fn server_tls(pki: &Pki) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        pki.server_cert.display().to_string(),
        "--tls-key".into(),
        pki.server_key.display().to_string(),
    ]
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A master serving TLS with `pki`'s server certificate, `password` (if
/// any) for every role, and the rest of `opts` (its `extra` arguments after
/// the TLS ones).
fn tls_master(c: &mut Cluster, pki: &Pki, password: Option<PathBuf>, opts: MasterOpts) {
    let mut extra = server_tls(pki);
    extra.extend(opts.extra.iter().cloned());
    c.client_password = password.clone();
    c.opts = MasterOpts {
        password_file: password,
        extra,
        ..opts
    };
    c.start_master();
}

/// A master serving TLS with a fresh PKI in `<tempdir>/pki` and one
/// secret, `<tempdir>/password`, for every role; the rest of its options
/// as [`tls_master`]'s, given the PKI. The cluster, the PKI, the secret.
fn tls_cluster(opts: impl FnOnce(&Pki) -> MasterOpts) -> (Cluster, Pki, PathBuf) {
    let mut c = Cluster::new();
    let pki = pki(&c, "pki");
    let pw = secret(&c, "password");
    let opts = opts(&pki);
    tls_master(&mut c, &pki, Some(pw.clone()), opts);
    (c, pki, pw)
}

/// `--tls-client-ca CA`: a master of [`tls_cluster`] asking clients and
/// holders for a certificate of `pki`'s CA (mutual TLS).
fn client_ca(pki: &Pki) -> MasterOpts {
    MasterOpts {
        extra: vec!["--tls-client-ca".into(), s(&pki.ca)],
        ..MasterOpts::default()
    }
}

/// A foreman named `name` serving TLS with `pki`'s server certificate,
/// which it also shows upstream, trusting `pki`'s CA there; its address.
fn tls_foreman(c: &mut Cluster, pki: &Pki, name: &str) -> String {
    let mut args = server_tls(pki);
    args.extend(trust(pki));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.start_foreman(name, 0, &args).addr.clone()
}

/// How long a client of [`pilotq_timed`] or [`condor_timed`] may run (one
/// that is refused must fail well within it: [`assert_refused`]).
const REFUSAL_LIMIT: Duration = Duration::from_secs(30);

/// `pilotq ARGS` as a client with `creds`, within `limit`; also how long
/// it took.
fn pilotq_in(c: &Cluster, creds: &Creds, args: &[&str], limit: Duration) -> (Out, Duration) {
    let what = format!("pilotq {args:?}");
    client_in(c, creds, c.command(), args, &what, limit)
}

/// `cmd ARGS` (`what`, for messages) as a client with `creds`, stdin
/// `/dev/null`, within `limit`; also how long it took.
fn client_in(
    c: &Cluster,
    creds: &Creds,
    mut cmd: Command,
    args: &[&str],
    what: &str,
    limit: Duration,
) -> (Out, Duration) {
    cmd.args(args);
    creds.apply(c, &mut cmd);
    let t = Instant::now();
    let out = run_with_input(cmd, Input::Null, limit, what);
    (out, t.elapsed())
}

/// [`pilotq_in`] within [`REFUSAL_LIMIT`].
fn pilotq_timed(c: &Cluster, creds: &Creds, args: &[&str]) -> (Out, Duration) {
    pilotq_in(c, creds, args, REFUSAL_LIMIT)
}

fn pilotq(c: &Cluster, creds: &Creds, args: &[&str]) -> Out {
    pilotq_in(c, creds, args, Duration::from_secs(60)).0
}

fn pilotq_ok(c: &Cluster, creds: &Creds, args: &[&str]) -> Out {
    let out = pilotq(c, creds, args);
    if !out.ok() {
        panic!(
            "`pilotq {}` failed with {creds:?}\n{out}\n{}",
            args.join(" "),
            c.diag()
        );
    }
    out
}

/// `NAME ARGS` (a `condor_*` command) as a client with `creds`, stdin
/// `/dev/null`; also how long it took.
fn condor(
    c: &Cluster,
    creds: &Creds,
    name: &str,
    args: &[&str],
    limit: Duration,
) -> (Out, Duration) {
    let what = format!("{name} {args:?}");
    client_in(c, creds, c.condor_command(name), args, &what, limit)
}

/// [`condor`] within [`REFUSAL_LIMIT`].
fn condor_timed(c: &Cluster, creds: &Creds, name: &str, args: &[&str]) -> (Out, Duration) {
    condor(c, creds, name, args, REFUSAL_LIMIT)
}

/// Writes the submit file `<tempdir>/<file>`; its path.
fn submit_file(c: &Cluster, file: &str, text: &str) -> String {
    let path = c.path(file);
    std::fs::write(&path, text).unwrap();
    s(&path)
}

/// A submit file of one `/bin/true` job.
const TRUE_SUB: &str = "executable = /bin/true\nqueue 1\n";

/// Writes a submit file and runs `condor_submit` on it with `creds`.
fn condor_submit(c: &Cluster, creds: &Creds, file: &str, text: &str) -> Out {
    let path = submit_file(c, file, text);
    condor(c, creds, "condor_submit", &[&path], Duration::from_secs(60)).0
}

/// `pilotq submit --count COUNT --output out/$(Cluster).$(Process).out --
/// /bin/sh -c SCRIPT` with `creds` and `flags` (before `--count`); the new
/// cluster.
fn submit_sh(c: &Cluster, creds: &Creds, flags: &[&str], count: u32, script: &str) -> u64 {
    let count_s = count.to_string();
    let mut args = vec!["submit"];
    args.extend_from_slice(flags);
    args.extend([
        "--count",
        &count_s,
        "--output",
        "out/$(Cluster).$(Process).out",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    let out = pilotq_ok(c, creds, &args);
    parse_submit(&out.stdout, count).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

/// `pilotq worker` named `name` on `upstream` with 1 core, the cluster's
/// heartbeat, its own work dir, `password` and the TLS flags `tls`. It is
/// kept in `c.workers`, so it dies with the cluster.
fn spawn_worker(c: &mut Cluster, name: &str, upstream: &str, password: &Path, tls: &[String]) {
    let mut cmd = c.command();
    for k in ["PILOTQ_TLS_CA", "PILOTQ_TLS_CERT", "PILOTQ_TLS_KEY"] {
        cmd.env_remove(k);
    }
    cmd.arg("worker")
        .args(["--master", upstream])
        .args(["--cores", "1"])
        .arg("--workdir")
        .arg(c.root.join("workers").join(name))
        .args(["--name", name])
        .args(["--heartbeat", &c.opts.heartbeat.to_string()])
        .arg("--password-file")
        .arg(password)
        .args(tls);
    let proc = c.spawn(&format!("worker-{name}"), cmd);
    c.workers.push(Worker {
        proc,
        name: name.to_string(),
        cores: 1,
    });
}

/// `--tls-ca CA` for a worker trusting `pki`.
fn trust(pki: &Pki) -> Vec<String> {
    vec!["--tls-ca".into(), s(&pki.ca)]
}

/// `--tls-ca CA --tls-cert CLIENT --tls-key KEY` for a worker trusting
/// `pki` and showing `shown`'s client certificate.
fn trust_and_show(pki: &Pki, shown: &Pki) -> Vec<String> {
    let mut v = trust(pki);
    v.extend([
        "--tls-cert".into(),
        s(&shown.client_cert),
        "--tls-key".into(),
        s(&shown.client_key),
    ]);
    v
}

/// `pilotq status --json` with `creds`, parsed (`None` if it fails).
fn status(c: &Cluster, creds: &Creds) -> Option<Value> {
    let out = pilotq(c, creds, &["status", "--json"]);
    if !out.ok() {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

/// Waits until the master counts `holders` holders with `cores` cores.
fn wait_capacity(c: &Cluster, creds: &Creds, holders: u64, cores: u64) {
    let last = RefCell::new(Value::Null);
    wait_for(
        Duration::from_secs(30),
        &format!("{holders} holder(s) with {cores} core(s) over TLS"),
        || {
            let st = status(c, creds).unwrap_or(Value::Null);
            let ok = st["holders"] == holders && st["cores"] == cores;
            *last.borrow_mut() = st;
            ok.then_some(())
        },
        || format!("last status --json: {}\n{}", last.borrow(), c.diag()),
    );
}

/// Every job the master knows, by `history --json` and `q --json` over
/// TLS, keyed by `C.P`. History is read before and after the queue, so a
/// job moving from one to the other between the reads is still seen.
fn all_jobs(c: &Cluster, creds: &Creds) -> BTreeMap<String, Job> {
    let mut jobs = BTreeMap::new();
    for verb in ["history", "q", "history"] {
        let out = pilotq_ok(c, creds, &[verb, "--json"]);
        let list: Vec<Value> = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`pilotq {verb} --json` printed no JSON: {e}\n{out}"));
        for v in &list {
            let j = Job::from_json(v);
            jobs.insert(j.id.clone(), j);
        }
    }
    jobs
}

/// Waits until `n` jobs completed with exit code 0 (in the queue or in
/// history), all read over TLS; returns them.
fn wait_completed(c: &Cluster, creds: &Creds, n: usize) -> BTreeMap<String, Job> {
    let last = RefCell::new(String::new());
    wait_for(
        Duration::from_secs(45),
        &format!("{n} jobs completed over TLS"),
        || {
            let jobs = all_jobs(c, creds);
            *last.borrow_mut() = jobs
                .values()
                .map(|j| j.raw.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            for j in jobs.values() {
                assert!(
                    j.status != HELD && j.status != REMOVED,
                    "job {} can no longer complete: {}\n{}",
                    j.id,
                    j.raw,
                    c.diag()
                );
            }
            let done = jobs.values().filter(|j| j.status == COMPLETED).count();
            (jobs.len() == n && done == n).then_some(jobs)
        },
        || format!("last jobs:\n{}\n{}", last.borrow(), c.diag()),
    )
}

/// Waits until the jobs of `clusters` (id, number of jobs, word) completed,
/// and no others (all read over TLS): each job of each is there, exited 0,
/// and its output file `out/C.P.out` holds `WORD C.P`.
fn wait_outputs(c: &Cluster, creds: &Creds, clusters: &[(u64, u32, &str)]) {
    let n = clusters.iter().map(|&(_, count, _)| count as usize).sum();
    let jobs = wait_completed(c, creds, n);
    for j in jobs.values() {
        assert_eq!(j.exit_code, Some(0), "{}", j.raw);
        let (_, _, word) = clusters
            .iter()
            .find(|&&(cl, _, _)| cl == j.cluster)
            .unwrap_or_else(|| panic!("a job of no cluster submitted here: {}", j.raw));
        // What a user checks: every output file holds its own job's line.
        assert_eq!(
            c.read_file(&format!("out/{}.{}.out", j.cluster, j.proc)),
            format!("{word} {}.{}\n", j.cluster, j.proc),
            "{}",
            j.raw
        );
    }
    for &(cl, count, _) in clusters {
        for p in 0..count {
            assert!(jobs.contains_key(&format!("{cl}.{p}")), "{jobs:?}");
        }
    }
}

/// What a user checks of a refused client: a non-zero exit, quickly, with
/// an error on stderr that mentions one of `words` (case-insensitive).
fn assert_refused(what: &str, (out, took): &(Out, Duration), words: &[&str]) {
    let took = *took;
    assert!(!out.ok(), "{what} succeeded:\n{out}");
    assert!(
        took < Duration::from_secs(15),
        "{what} took {took:?} to fail: a refused client must not hang\n{out}"
    );
    let err = out.stderr.to_lowercase();
    assert!(
        words.iter().any(|w| err.contains(&w.to_lowercase())),
        "{what} failed without saying why (expected one of {words:?} in stderr)\n{out}"
    );
}

/// [`assert_refused`], and stderr says every one of `phrases` (exactly as
/// written): what tells the user what to do.
fn assert_refused_saying(what: &str, run: &(Out, Duration), phrases: &[&str]) {
    assert_refused(what, run, phrases);
    let out = &run.0;
    for p in phrases {
        assert!(
            out.stderr.contains(p),
            "{what}: stderr does not say {p:?}\n{out}"
        );
    }
}

/// The error of a refused client says `cause` once: an error printed with
/// its chain of causes must not repeat it.
fn assert_said_once(what: &str, out: &Out, cause: &str) {
    assert_eq!(
        out.stderr.matches(cause).count(),
        1,
        "{what}: stderr should say {cause:?} exactly once\n{out}"
    );
}

/// The master's log (its stderr) so far.
fn master_log(c: &Cluster) -> String {
    let path = &c.master.as_ref().expect("a master").proc.stderr_path;
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The master's log once everything before this call is in it: a raw
/// connection sends something that is not TLS, and the master's line about
/// that failed handshake (written after whatever it logged for earlier
/// connections) is waited for.
fn master_log_settled(c: &Cluster) -> String {
    let failed = |log: &str| log.matches("TLS handshake failed").count();
    let before = failed(&master_log(c));
    let mut conn = RawConn::connect(&c.addr());
    conn.send_raw(b"GET / HTTP/1.1\r\nHost: marker\r\n\r\n")
        .unwrap();
    let (_, end, _) = read_until_close(&mut conn, Duration::from_secs(10));
    assert_ne!(
        end,
        End::StillOpen,
        "a non-TLS marker connection was kept open"
    );
    wait_for(
        Duration::from_secs(10),
        "the master to log the marker connection's failed TLS handshake",
        || {
            let log = master_log(c);
            (failed(&log) > before).then_some(log)
        },
        || c.diag(),
    )
}

/// Ordinary TLS clients leave without a TLS close_notify when they exit:
/// that is a normal end, which the master does not report at INFO.
fn assert_no_close_notify_noise(c: &Cluster) {
    let log = master_log_settled(c);
    // (A RUST_LOG=debug run may still show them at DEBUG.)
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("close_notify"))
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
        .collect();
    assert!(
        noisy.is_empty(),
        "the master logged ordinary client exits ({} lines), e.g.:\n{}",
        noisy.len(),
        noisy.iter().take(5).copied().collect::<Vec<_>>().join("\n")
    );
}

/// How a raw connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    Reset,
    StillOpen,
}

/// Reads what the master sends on a raw TCP connection until it closes or
/// `limit` passes: the bytes, how it ended, and when.
fn read_until_close(conn: &mut RawConn, limit: Duration) -> (Vec<u8>, End, Duration) {
    let start = Instant::now();
    let deadline = start + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, End::StillOpen, start.elapsed());
        }
        conn.stream.set_read_timeout(Some(left)).unwrap();
        match conn.stream.read(&mut buf) {
            Ok(0) => return (got, End::Closed, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return (got, End::StillOpen, start.elapsed())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (got, End::Reset, start.elapsed()),
        }
    }
}

/// A TLS record is a content type (20–24; 21 is an alert), then the version
/// 3.x. A pilotq frame starts with a 4-byte big-endian length, which for
/// any frame the master sends starts 0x00.
fn is_tls_record(bytes: &[u8]) -> bool {
    bytes.len() >= 5 && (20..=24).contains(&bytes[0]) && bytes[1] == 3
}

#[test]
fn tls_end_to_end_master_foreman_workers_and_clients() {
    let (mut c, pki, pw) = tls_cluster(|_| MasterOpts::default());
    let creds = Creds::trusting(&pki, Some(&pw));

    // A foreman serving TLS to its workers (the same server certificate),
    // and trusting the CA upstream.
    let foreman = tls_foreman(&mut c, &pki, "f");
    let master = c.addr();
    for (name, upstream) in [
        ("direct-1", &master),
        ("direct-2", &master),
        ("behind-1", &foreman),
        ("behind-2", &foreman),
    ] {
        spawn_worker(&mut c, name, upstream, &pw, &trust(&pki));
    }
    // Two workers and the foreman (with its two workers' cores).
    wait_capacity(&c, &creds, 3, 4);

    // Each job notes where it ran (its sandbox is inside its worker's work
    // dir), then prints its own id.
    let runs = c.path("runs.log");
    let script = format!(
        "echo \"$(Cluster).$(Process) $PWD\" >> {}; sleep 1; echo \"job $(Cluster).$(Process)\"",
        runs.display()
    );
    let first = submit_sh(&c, &creds, &[], 10, &script);
    let sub = condor_submit(
        &c,
        &creds,
        "jobs.sub",
        &format!(
            "executable = /bin/sh\n\
             arguments = \"-c '{}'\"\n\
             output = out/$(Cluster).$(Process).out\n\
             error = out/$(Cluster).$(Process).err\n\
             queue 10\n",
            script.replace('"', "")
        ),
    );
    assert!(
        sub.ok(),
        "condor_submit over TLS failed\n{sub}\n{}",
        c.diag()
    );
    let second = parse_submit(&sub.stdout, 10).unwrap_or_else(|e| panic!("{e}\n{sub}"));

    // condor_q over TLS, while the jobs (1 s each, 4 cores) are still there.
    let (q, _) = condor(
        &c,
        &creds,
        "condor_q",
        &["-af", "ClusterId", "ProcId"],
        Duration::from_secs(60),
    );
    assert!(q.ok(), "condor_q over TLS failed\n{q}\n{}", c.diag());
    assert!(!q.stdout.trim().is_empty(), "condor_q listed no job\n{q}");
    for line in q.stdout.lines() {
        let cl: u64 = line
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("condor_q -af printed {line:?}\n{q}"));
        assert!(
            cl == first || cl == second,
            "unknown cluster in {line:?}\n{q}"
        );
    }

    wait_outputs(&c, &creds, &[(first, 10, "job"), (second, 10, "job")]);
    // Jobs ran on both paths: on the master's own workers and behind the
    // foreman (each TLS link carried some).
    let log = std::fs::read_to_string(&runs).unwrap();
    let ran_under = |w: &str| {
        let dir = s(&c.root.join("workers").join(w));
        log.lines().filter(|l| l.contains(&dir)).count()
    };
    let direct = ran_under("direct-1") + ran_under("direct-2");
    let behind = ran_under("behind-1") + ran_under("behind-2");
    assert_eq!(log.lines().count(), 20, "each job ran once:\n{log}");
    assert!(
        direct > 0 && behind > 0,
        "direct {direct}, behind the foreman {behind}:\n{log}"
    );

    // pilotq status (for people, and --json) over TLS.
    let st = pilotq_ok(&c, &creds, &["status"]);
    assert!(st.stdout.contains("3 connected, 4 cores"), "{st}");
    let st = status(&c, &creds).expect("status --json over TLS");
    let f = Finished::from_status(&st).unwrap_or_else(|| panic!("{st}"));
    assert_eq!(
        f,
        Finished {
            completed: 20,
            removed: 0
        },
        "{st}"
    );
    assert_eq!(st["holders"], 3, "{st}");

    // All those clients (status polls, submits, condor_q, history) left
    // as clients do; the master's log does not call that out.
    assert_no_close_notify_noise(&c);
}

/// What a plain client of a TLS master is told: `TLS with the master at
/// ADDR failed: the master speaks TLS; give its CA with --tls-ca (or
/// PILOTQ_TLS_CA)`.
const PLAIN_TO_TLS: &[&str] = &["speaks TLS", "--tls-ca"];

#[test]
fn a_plain_tcp_client_is_refused_by_a_tls_master() {
    let (c, pki, pw) = tls_cluster(|_| MasterOpts::default());

    // pilotq and condor_q without --tls-ca / PILOTQ_TLS_CA: refused, fast,
    // and told what is missing (not a frame-size error).
    let plain = Creds::plain(Some(&pw));
    assert_refused_saying(
        "a plain-TCP `pilotq status`",
        &pilotq_timed(&c, &plain, &["status"]),
        PLAIN_TO_TLS,
    );
    assert_refused_saying(
        "a plain-TCP condor_q",
        &condor_timed(&c, &plain, "condor_q", &[]),
        PLAIN_TO_TLS,
    );
    let sub = submit_file(&c, "plain.sub", TRUE_SUB);
    assert_refused_saying(
        "a plain-TCP condor_submit",
        &condor_timed(&c, &plain, "condor_submit", &[&sub]),
        PLAIN_TO_TLS,
    );

    // A pilotq Hello sent in the clear gets no pilotq answer: at most a TLS
    // alert, then the end of the connection.
    let mut conn = RawConn::connect(&c.addr());
    conn.send_msg(&pilotq_wire::ToMaster::Hello(pilotq_wire::Hello {
        protocol: pilotq_wire::PROTOCOL_VERSION,
        role: pilotq_wire::Role::Client,
        name: "in-the-clear".into(),
        nonce: pilotq_wire::handshake::fresh_nonce(),
    }))
    .unwrap();
    let (bytes, end, took) = read_until_close(&mut conn, Duration::from_secs(10));
    assert_ne!(
        end,
        End::StillOpen,
        "a plain Hello left the connection open"
    );
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert!(
        bytes.is_empty() || is_tls_record(&bytes),
        "the master answered a plain Hello with {bytes:02x?}"
    );

    // Nothing was submitted, and a TLS client is still served.
    let st = status(&c, &Creds::trusting(&pki, Some(&pw))).expect("status over TLS");
    assert_eq!(st["idle"], 0, "{st}");
    let q = pilotq_ok(&c, &Creds::trusting(&pki, Some(&pw)), &["q", "--json"]);
    assert_eq!(q.stdout.trim(), "[]", "{q}");
}

/// A client trusting another CA: refused with the certificate error
/// (rustls's `UnknownIssuer`) said once, not repeated as its own cause,
/// and without the hint to start a master, which is there and answered.
fn assert_wrong_ca(what: &str, run: &(Out, Duration)) {
    assert_refused(what, run, &["certificate"]);
    let out = &run.0;
    assert_said_once(what, out, "UnknownIssuer");
    assert!(
        !out.stderr.contains("is the master running"),
        "{what}: a master that answered is not a master to start\n{out}"
    );
}

#[test]
fn a_client_with_the_wrong_ca_is_refused() {
    let (c, pki, pw) = tls_cluster(|_| MasterOpts::default());
    let other = self::pki(&c, "other-pki");

    // Refused with the certificate error, said once, and no hint to start a
    // master that answered.
    let wrong = Creds::trusting(&other, Some(&pw));
    assert_wrong_ca(
        "`pilotq status` trusting another CA",
        &pilotq_timed(&c, &wrong, &["status"]),
    );
    assert_wrong_ca(
        "`pilotq submit` trusting another CA",
        &pilotq_timed(&c, &wrong, &["submit", "--", "/bin/true"]),
    );
    assert_wrong_ca(
        "condor_q trusting another CA",
        &condor_timed(&c, &wrong, "condor_q", &[]),
    );

    // The master goes on serving the clients that trust its CA.
    let right = Creds::trusting(&pki, Some(&pw));
    let out = pilotq_ok(&c, &right, &["submit", "--", "/bin/true"]);
    let cl = parse_submit(&out.stdout, 1).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let q = pilotq_ok(&c, &right, &["q", "--json"]);
    let jobs: Vec<Value> = serde_json::from_str(&q.stdout).unwrap();
    assert_eq!(jobs.len(), 1, "only the right client's job is queued: {q}");
    assert_eq!(Job::from_json(&jobs[0]).cluster, cl, "{q}");
    let (out, _) = condor_timed(&c, &right, "condor_q", &[]);
    assert!(out.ok(), "condor_q trusting the right CA\n{out}");

    // Those clients' ordinary exits are not in the master's log.
    assert_no_close_notify_noise(&c);
}

#[test]
fn a_tls_client_of_a_plain_master_is_told_the_master_does_not_serve_tls() {
    let mut c = Cluster::new();
    let pki = pki(&c, "pki");
    let pw = secret(&c, "password");
    c.client_password = Some(pw.clone());
    c.opts = MasterOpts {
        password_file: Some(pw.clone()),
        ..MasterOpts::default()
    };
    c.start_master();

    // `pilotq status --tls-ca CA` (the flag) and condor_q (PILOTQ_TLS_CA).
    let ca = s(&pki.ca);
    assert_refused_saying(
        "`pilotq status --tls-ca` against a plain master",
        &pilotq_timed(&c, &Creds::plain(Some(&pw)), &["status", "--tls-ca", &ca]),
        TLS_TO_PLAIN,
    );
    assert_refused_saying(
        "condor_q with PILOTQ_TLS_CA against a plain master",
        &condor_timed(&c, &Creds::trusting(&pki, Some(&pw)), "condor_q", &[]),
        TLS_TO_PLAIN,
    );

    // The master goes on serving plain clients.
    let st = status(&c, &Creds::plain(Some(&pw))).expect("plain status");
    assert_eq!(st["idle"], 0, "{st}");
}

/// What a TLS client of a plain master is told: `TLS with the master at
/// ADDR failed: … (does the master serve TLS? it needs --tls-cert and
/// --tls-key)`.
const TLS_TO_PLAIN: &[&str] = &["TLS", "does the master serve TLS"];

#[test]
fn mutual_tls_refuses_a_peer_without_a_certificate() {
    let (mut c, pki, pw) = tls_cluster(client_ca);
    let other = self::pki(&c, "other-pki");
    let master = c.addr();
    let good = Creds::with_cert(&pki, Some(&pw));

    // Workers without a certificate, or with one of another CA, and one
    // with the right certificate.
    spawn_worker(&mut c, "no-cert", &master, &pw, &trust(&pki));
    let foreign = trust_and_show(&pki, &other);
    spawn_worker(&mut c, "foreign-cert", &master, &pw, &foreign);
    spawn_worker(
        &mut c,
        "with-cert",
        &master,
        &pw,
        &trust_and_show(&pki, &pki),
    );

    // Clients without a certificate, or with another CA's: refused.
    let no_cert = Creds::trusting(&pki, Some(&pw));
    assert_refused(
        "`pilotq status` without a client certificate",
        &pilotq_timed(&c, &no_cert, &["status"]),
        &["certificate"],
    );
    let foreign_client = Creds::trusting(&pki, Some(&pw)).showing(&other);
    assert_refused(
        "`pilotq submit` with another CA's client certificate",
        &pilotq_timed(&c, &foreign_client, &["submit", "--", "/bin/true"]),
        &["certificate", "UnknownCA"],
    );
    assert_refused(
        "condor_q without a client certificate",
        &condor_timed(&c, &no_cert, "condor_q", &[]),
        &["certificate"],
    );

    // Only the worker with the right certificate registers.
    wait_capacity(&c, &good, 1, 1);

    // A client with the certificate submits: condor_submit through the
    // environment, pilotq submit through its flags.
    let sub = condor_submit(
        &c,
        &good,
        "jobs.sub",
        "executable = /bin/sh\n\
         arguments = \"-c 'echo condor $(Cluster).$(Process)'\"\n\
         output = out/$(Cluster).$(Process).out\n\
         queue 3\n",
    );
    assert!(
        sub.ok(),
        "condor_submit with a client certificate\n{sub}\n{}",
        c.diag()
    );
    let a = parse_submit(&sub.stdout, 3).unwrap_or_else(|e| panic!("{e}\n{sub}"));
    let flags = trust_and_show(&pki, &pki);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let b = submit_sh(
        &c,
        &Creds::plain(Some(&pw)),
        &flags,
        2,
        "echo pilotq $(Cluster).$(Process)",
    );

    wait_outputs(&c, &good, &[(a, 3, "condor"), (b, 2, "pilotq")]);
    // The refused workers never got in, and are still trying.
    let st = status(&c, &good).unwrap();
    assert_eq!(st["holders"], 1, "{st}");
    for w in ["no-cert", "foreign-cert"] {
        assert!(c.worker(w).proc.running(), "worker {w} gave up");
    }
}

#[test]
fn a_foreman_shows_its_certificate_to_a_mutual_tls_master() {
    let (mut c, pki, pw) = tls_cluster(client_ca);
    let good = Creds::with_cert(&pki, Some(&pw));

    // A foreman serving TLS with the server certificate, which it also
    // shows upstream; two workers reach it over TLS.
    let with_cert = tls_foreman(&mut c, &pki, "with-cert");
    for w in ["behind-1", "behind-2"] {
        spawn_worker(&mut c, w, &with_cert, &pw, &trust(&pki));
    }
    // A foreman that trusts the CA upstream but has no certificate to show
    // (without --tls-cert it serves its own worker plain TCP).
    let ca = s(&pki.ca);
    let no_cert = c
        .start_foreman("no-cert", 0, &["--tls-ca", &ca])
        .addr
        .clone();
    spawn_worker(&mut c, "behind-no-cert", &no_cert, &pw, &[]);

    // Only the foreman with the certificate registers, with its workers'
    // two cores.
    wait_capacity(&c, &good, 1, 2);
    // The other one tried, was refused, and goes on trying.
    let no_cert_log = c.foreman("no-cert").proc.stderr_path.clone();
    wait_for(
        Duration::from_secs(20),
        "the foreman without a certificate to be refused upstream",
        || {
            let log = std::fs::read_to_string(&no_cert_log).unwrap_or_default();
            log.to_lowercase().contains("certificate").then_some(())
        },
        || c.diag(),
    );

    // Jobs run behind the foreman with the certificate.
    let runs = c.path("runs.log");
    let script = format!(
        "echo \"$(Cluster).$(Process) $PWD\" >> {}; echo \"foreman $(Cluster).$(Process)\"",
        runs.display()
    );
    let cl = submit_sh(&c, &good, &[], 4, &script);
    wait_outputs(&c, &good, &[(cl, 4, "foreman")]);
    let log = std::fs::read_to_string(&runs).unwrap();
    let dirs = ["behind-1", "behind-2"].map(|w| s(&c.root.join("workers").join(w)) + "/");
    assert_eq!(log.lines().count(), 4, "each job ran once:\n{log}");
    assert!(
        log.lines()
            .all(|l| dirs.iter().any(|d| l.contains(d.as_str()))),
        "jobs ran outside the certified foreman's workers:\n{log}"
    );

    // The foreman without a certificate never got in, and is still trying.
    let st = status(&c, &good).unwrap();
    assert_eq!(st["holders"], 1, "{st}");
    assert_eq!(st["cores"], 2, "{st}");
    assert!(c.foreman("no-cert").proc.running(), "{}", c.diag());
    let text = std::fs::read_to_string(&no_cert_log).unwrap_or_default();
    assert!(
        !text.contains("foreman connected upstream"),
        "the foreman without a certificate connected upstream:\n{text}"
    );
}

#[test]
fn the_password_still_decides_roles_inside_tls() {
    let mut c = Cluster::new();
    let pki = pki(&c, "pki");
    let holder = secret(&c, "holder");
    let client = secret(&c, "client");
    tls_master(
        &mut c,
        &pki,
        None,
        MasterOpts {
            extra: vec![
                "--holder-password-file".into(),
                s(&holder),
                "--client-password-file".into(),
                s(&client),
            ],
            ..MasterOpts::default()
        },
    );
    let master = c.addr();
    let as_client = Creds::trusting(&pki, Some(&client));
    let as_holder = Creds::trusting(&pki, Some(&holder));

    // Over TLS, the holder secret cannot submit (nor read the queue).
    assert_refused(
        "`pilotq submit` with the holder secret",
        &pilotq_timed(&c, &as_holder, &["submit", "--", "/bin/true"]),
        &["authentication"],
    );
    let sub = submit_file(&c, "holder.sub", TRUE_SUB);
    assert_refused(
        "condor_submit with the holder secret",
        &condor_timed(&c, &as_holder, "condor_submit", &[&sub]),
        &["authentication"],
    );
    assert_refused(
        "`pilotq q` with the holder secret",
        &pilotq_timed(&c, &as_holder, &["q"]),
        &["authentication"],
    );
    // The client secret without TLS: refused too (TLS is not optional).
    assert_refused_saying(
        "a plain-TCP submit with the client secret",
        &pilotq_timed(
            &c,
            &Creds::plain(Some(&client)),
            &["submit", "--", "/bin/true"],
        ),
        PLAIN_TO_TLS,
    );

    // Workers: the client secret cannot hold jobs, the holder secret can.
    spawn_worker(&mut c, "with-client-secret", &master, &client, &trust(&pki));
    spawn_worker(&mut c, "with-holder-secret", &master, &holder, &trust(&pki));
    wait_capacity(&c, &as_client, 1, 1);

    // The client secret over TLS submits, and the job runs.
    let cl = submit_sh(&c, &as_client, &[], 2, "echo roles $(Cluster).$(Process)");
    wait_outputs(&c, &as_client, &[(cl, 2, "roles")]);
    let st = status(&c, &as_client).unwrap();
    assert_eq!(
        st["holders"], 1,
        "the client secret registered a worker: {st}"
    );
}

#[test]
fn a_tls_handshake_that_never_completes_is_closed_after_the_handshake_timeout() {
    let (mut c, pki, pw) = tls_cluster(|_| MasterOpts {
        handshake_timeout: Some(1.0),
        ..MasterOpts::default()
    });
    let addr = c.addr();

    // Three at once: one silent, one that starts a ClientHello and stalls
    // (a record header announcing 512 bytes, then 6 of them), one that
    // sends something that is not TLS at all.
    let stalls: [(&str, &[u8]); 3] = [
        ("silent", b""),
        (
            "stalled ClientHello",
            &[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ],
        ),
        ("not TLS", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    let threads: Vec<_> = stalls
        .iter()
        .map(|(what, bytes)| {
            let (addr, what, bytes) = (addr.clone(), what.to_string(), bytes.to_vec());
            std::thread::spawn(move || {
                let mut conn = RawConn::connect(&addr);
                if !bytes.is_empty() {
                    conn.send_raw(&bytes).unwrap();
                }
                let (got, end, took) = read_until_close(&mut conn, Duration::from_secs(10));
                (what, got, end, took)
            })
        })
        .collect();
    for t in threads {
        let (what, got, end, took) = t.join().unwrap();
        assert_ne!(
            end,
            End::StillOpen,
            "{what}: still open after 10 s with --handshake-timeout 1"
        );
        assert!(
            took < Duration::from_secs(5),
            "{what}: closed only after {took:?}"
        );
        assert!(
            got.is_empty() || is_tls_record(&got),
            "{what}: the master sent {got:02x?}"
        );
        if what != "not TLS" {
            // Held until the timeout, not closed at once: the master was
            // waiting for the rest of a TLS handshake.
            assert!(
                took >= Duration::from_millis(800),
                "{what}: closed after {took:?}, before the 1 s handshake timeout"
            );
        }
    }

    // The master is alive and serves a TLS client.
    assert!(c.master.as_mut().unwrap().proc.running(), "{}", c.diag());
    let st = status(&c, &Creds::trusting(&pki, Some(&pw)));
    assert!(
        st.is_some(),
        "status over TLS after the stalls\n{}",
        c.diag()
    );
    // And says why it closed them.
    let log = c.master.as_ref().unwrap().proc.stderr_path.clone();
    wait_for(
        Duration::from_secs(5),
        "the master to log why it closed the three connections",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // The timeout as given (`1 s`) or to a tenth (`1.0 s`).
            let timed_out = text
                .lines()
                .filter(|l| {
                    l.contains("TLS handshake not completed within 1 s")
                        || l.contains("TLS handshake not completed within 1.0 s")
                })
                .count();
            (timed_out == 2 && text.contains("TLS handshake failed")).then_some(())
        },
        || c.diag(),
    );
}
