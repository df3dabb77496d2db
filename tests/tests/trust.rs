//! Secure by default: who a connection is decides what it may do, never a
//! claim in a request. Local users on the master's Unix socket are who the
//! kernel says (their jobs' Owner, their `rm`), and only clients may use it;
//! `--open-reads` lets a client without the secret read and nothing more;
//! one source address holds at most `--max-connections-per-ip` connections;
//! a request names at most 10,000 selectors; and a holder name is not a
//! credential: a newcomer under a live holder's name is refused, and one
//! under a gone holder's name does not get its attempts.

use pilotq_tests::{
    current_user, event_job, event_kind, raw_job_spec, write_executable, Cluster, MasterOpts,
    COMPLETED, IDLE, REMOVED, RUNNING, TRUE_SH,
};
use pilotq_wire::handshake::{fresh_nonce, Prover};
use pilotq_wire::message::{Attempt, Started};
use pilotq_wire::{
    ClusterId, FromMaster, Hello, Holding, HoldingState, JobId, JobResult, Outcome, Resources,
    Role, Secret, Selector, ToMaster, PROTOCOL_VERSION,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REPLY: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------
// Raw frames over TCP or the Unix socket.

/// A stream a [`Link`] can read with a time limit.
trait Timed: Read + Write {
    fn read_timeout(&self, d: Duration);
}

impl Timed for UnixStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

impl Timed for TcpStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

/// What came from the master.
#[derive(Debug)]
enum Got {
    Msg(FromMaster),
    /// End of stream, or reset.
    Closed,
    /// Nothing within the time limit.
    Silent,
}

/// A raw connection speaking 4-byte big-endian length + named msgpack.
struct Link<S: Timed> {
    s: S,
}

impl<S: Timed> Link<S> {
    fn send(&mut self, m: &ToMaster) -> std::io::Result<()> {
        let body = rmp_serde::to_vec_named(m).expect("encoding a message");
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&body);
        self.s.write_all(&buf)?;
        self.s.flush()
    }

    /// Fills `buf` by `deadline`; `Got::Closed` on end of stream or reset.
    fn fill(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Got> {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Got::Silent);
            }
            self.s.read_timeout(left);
            match self.s.read(&mut buf[got..]) {
                Ok(0) => return Err(Got::Closed),
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Got::Silent)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Got::Closed),
            }
        }
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        let mut header = [0u8; 4];
        if let Err(g) = self.fill(&mut header, deadline) {
            return g;
        }
        let len = u32::from_be_bytes(header) as usize;
        assert!(len <= 16 << 20, "the master sent a frame of {len} bytes");
        let mut body = vec![0u8; len];
        if let Err(g) = self.fill(&mut body, deadline) {
            panic!("the master's frame of {len} bytes ended early: {g:?}");
        }
        Got::Msg(rmp_serde::from_slice(&body).expect("the master's frame decodes"))
    }

    fn msg(&mut self, timeout: Duration) -> FromMaster {
        match self.recv(timeout) {
            Got::Msg(m) => m,
            other => panic!("expected a message from the master, got {other:?}"),
        }
    }

    /// An `Error` frame, then the end of the connection: the message.
    fn error_and_close(&mut self) -> String {
        let m = match self.msg(REPLY) {
            FromMaster::Error { message } => message,
            other => panic!("expected an Error frame, got {other:?}"),
        };
        match self.recv(REPLY) {
            Got::Closed => m,
            other => panic!("after the error {m:?} the connection stayed open: {other:?}"),
        }
    }

    /// Hello, Welcome, Proof (of `secret`, if any); the master's verdict is
    /// next on the connection.
    fn hello_and_proof(
        &mut self,
        role: Role,
        name: &str,
        secret: Option<&Secret>,
    ) -> Result<(), String> {
        let hello = hello(role, name);
        self.send(&ToMaster::Hello(hello.clone()))
            .map_err(|e| format!("sending Hello: {e}"))?;
        let nonce = match self.recv(REPLY) {
            Got::Msg(FromMaster::Welcome(w)) => w.nonce,
            other => return Err(format!("expected Welcome, got {other:?}")),
        };
        let proof = secret.map(|s| s.prove(Prover::Peer, &hello, &nonce));
        self.send(&ToMaster::Proof { proof })
            .map_err(|e| format!("sending Proof: {e}"))
    }

    /// [`Link::hello_and_proof`], then the master's verdict: `Ok` on
    /// `Accepted`, else its error message.
    fn handshake(&mut self, role: Role, name: &str, secret: Option<&Secret>) -> Result<(), String> {
        self.hello_and_proof(role, name, secret)?;
        match self.recv(REPLY) {
            Got::Msg(FromMaster::Accepted) => Ok(()),
            Got::Msg(FromMaster::Error { message }) => Err(message),
            other => Err(format!("expected Accepted, got {other:?}")),
        }
    }

    /// The answer to a query or history request, all chunks.
    fn jobs(&mut self) -> Result<Vec<pilotq_wire::JobView>, String> {
        let mut all = Vec::new();
        loop {
            match self.msg(REPLY) {
                FromMaster::Jobs { jobs, last } | FromMaster::History { jobs, last } => {
                    all.extend(jobs);
                    if last {
                        return Ok(all);
                    }
                }
                FromMaster::Error { message } => return Err(message),
                other => panic!("expected Jobs, got {other:?}"),
            }
        }
    }
}

/// A Hello of `role` named `name`, with a fresh nonce.
fn hello(role: Role, name: &str) -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        role,
        name: name.into(),
        nonce: fresh_nonce(),
    }
}

fn tcp(addr: &str) -> Link<TcpStream> {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_nodelay(true).ok();
    Link { s }
}

fn unix(path: &Path) -> Link<UnixStream> {
    let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    Link { s }
}

/// A client connection over TCP, handshake done.
fn tcp_client(addr: &str, secret: Option<&Secret>) -> Link<TcpStream> {
    let mut l = tcp(addr);
    l.handshake(Role::Client, "raw-client", secret)
        .unwrap_or_else(|e| panic!("client handshake at {addr}: {e}"));
    l
}

/// A client connection on the Unix socket, handshake done (no secret).
fn unix_client(path: &Path) -> Link<UnixStream> {
    let mut l = unix(path);
    l.handshake(Role::Client, "raw-local", None)
        .unwrap_or_else(|e| panic!("client handshake on {}: {e}", path.display()));
    l
}

/// A one-job submission claiming `owner`, with a tiny executable.
fn submit_msg(owner: &str) -> ToMaster {
    ToMaster::Submit {
        spec: Box::new(raw_job_spec(owner, "true.sh", TRUE_SH)),
        count: 1,
        executable: TRUE_SH.to_vec(),
    }
}

/// A holder connection over TCP: a `role` named `name` proving `secret`,
/// then registering with `resources`, `holdings` and `token` (depth 1, no
/// job limit, no tags). Panics if the handshake is refused.
fn registered(
    addr: &str,
    role: Role,
    name: &str,
    secret: &Secret,
    resources: Resources,
    holdings: Vec<Holding>,
    token: Vec<u8>,
) -> Link<TcpStream> {
    let mut l = tcp(addr);
    l.handshake(role, name, Some(secret))
        .unwrap_or_else(|e| panic!("{role} {name:?} proving the holder secret: {e}"));
    l.send(&ToMaster::Register {
        resources,
        holdings,
        depth: 1,
        max_jobs: 0,
        tags: vec![],
        token,
    })
    .unwrap();
    l
}

/// A master with the secret in `pw` for every role and a Unix socket in
/// the tempdir, started; the socket's path.
fn start_master_with_socket(c: &mut Cluster, pw: &Path) -> PathBuf {
    let socket = c.path("master.sock");
    c.opts = MasterOpts {
        password_file: Some(pw.to_path_buf()),
        extra: vec!["--unix-socket".into(), socket.display().to_string()],
        ..MasterOpts::default()
    };
    c.client_password = Some(pw.to_path_buf());
    c.start_master();
    socket
}

fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn require_root() {
    assert_eq!(
        current_user(),
        "root",
        "these tests start clients as other users (nobody): run them as root, as CI does"
    );
}

/// `(id, owner, status)` of every job, in the queue or in history.
fn owners(c: &Cluster) -> Vec<(String, String, u64)> {
    c.q_json()
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap().to_string(),
                j["owner"].as_str().unwrap().to_string(),
                j["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// A raw client as another user: this test binary, started again as that
// user, runs the helper below (a test that does nothing unless told to).

const HELPER_ENV: &str = "PILOTQ_TRUST_HELPER_SOCKET";
const HELPER: &str = "helper_raw_socket_client_run_as_another_user";

/// Run by [`as_user_on_socket`]: on the socket named by the environment,
/// submits a job claiming Owner "alice", then removes every job claiming to
/// be "root" (a super user); prints each answer on a `helper` line.
#[test]
#[ignore = "a helper: runs only when started by a_unix_socket_client_owns_its_jobs_by_the_kernels_word"]
fn helper_raw_socket_client_run_as_another_user() {
    let Some(path) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let mut l = unix_client(&path);
    l.send(&submit_msg("alice")).unwrap();
    println!("helper submit: {:?}", l.msg(REPLY));
    let mut l = unix_client(&path);
    l.send(&ToMaster::Remove {
        selectors: vec![Selector::All],
        owner: Some("root".into()),
    })
    .unwrap();
    println!("helper remove: {:?}", l.msg(REPLY));
}

/// Runs the helper as `uid`; its `helper` lines.
fn as_user_on_socket(uid: u32, socket: &Path) -> (String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([HELPER, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(HELPER_ENV, socket)
        .current_dir("/")
        .uid(uid)
        .gid(uid);
    let out = pilotq_tests::run_with_timeout(cmd, Duration::from_secs(30), "the raw-client helper");
    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("the helper printed no {prefix:?} line\n{out}"))
            .to_string()
    };
    assert!(out.ok(), "the helper failed\n{out}");
    (line("helper submit: "), line("helper remove: "))
}

/// `pilotq submit` of one `/bin/true` job on the Unix socket, as `uid`
/// (None: as this process's user).
fn submit_on_socket(c: &Cluster, socket: &Path, uid: Option<u32>) -> pilotq_tests::Out {
    let args = ["submit", "--count", "1", "--", "/bin/true"];
    on_socket(c, socket, "pilotq", &args, uid)
}

/// `pilotq ARGS` or a `condor_*` client on the Unix socket, with no password,
/// as `uid` (None: as this process's user).
fn on_socket(
    c: &Cluster,
    socket: &Path,
    program: &str,
    args: &[&str],
    uid: Option<u32>,
) -> pilotq_tests::Out {
    let mut cmd = if program == "pilotq" {
        c.command()
    } else {
        c.condor_command(program)
    };
    cmd.args(args)
        .env("PILOTQ_MASTER", format!("unix:{}", socket.display()))
        .env_remove("PILOTQ_PASSWORD_FILE");
    if let Some(u) = uid {
        cmd.uid(u).gid(u);
    }
    pilotq_tests::run_with_timeout(cmd, Duration::from_secs(60), &format!("{program} {args:?}"))
}

// ---------------------------------------------------------------------------

/// On the Unix socket the kernel says who the client is: no password is
/// needed, a job's Owner is that user, a user who is not a super user
/// cannot submit for someone else, and their `rm` acts on their own jobs
/// whatever owner the request names.
#[test]
fn a_unix_socket_client_owns_its_jobs_by_the_kernels_word() {
    require_root();
    let secrets = tempfile::tempdir().unwrap();
    let pw = secret_file(secrets.path(), "secret", "trust-unix-secret\n");
    let mut c = Cluster::new();
    // Local users must reach the socket (and read the submit file).
    std::fs::set_permissions(&c.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = start_master_with_socket(&mut c, &pw);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "the socket is open to every local user");

    // Over TCP, no password: refused (the master has a client secret).
    let mut tcp_cmd = c.command();
    tcp_cmd
        .args(["submit", "--count", "1", "--", "/bin/true"])
        .env("PILOTQ_MASTER", c.addr());
    let out = pilotq_tests::run_with_timeout(tcp_cmd, REPLY * 3, "submit over TCP");
    assert!(
        !out.ok(),
        "a passwordless submission over TCP was taken:\n{out}"
    );
    assert!(c.q_json().is_empty());

    // root on the socket, no password.
    let out = submit_on_socket(&c, &socket, None);
    assert!(
        out.ok(),
        "root's submission on the socket failed\n{out}\n{}",
        c.diag()
    );
    // nobody on the socket, with pilotq and with condor_submit.
    let out = submit_on_socket(&c, &socket, Some(NOBODY));
    assert!(
        out.ok(),
        "nobody's submission on the socket failed\n{out}\n{}",
        c.diag()
    );
    let sub = c.path("nobody.sub");
    std::fs::write(&sub, "executable = /bin/true\nqueue 1\n").unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = on_socket(
        &c,
        &socket,
        "condor_submit",
        &[sub.to_str().unwrap()],
        Some(NOBODY),
    );
    assert!(
        out.ok(),
        "nobody's condor_submit on the socket failed\n{out}\n{}",
        c.diag()
    );
    // condor_q on the socket, as nobody, sees the owners.
    let out = on_socket(
        &c,
        &socket,
        "condor_q",
        &["-af", "ClusterId", "Owner"],
        Some(NOBODY),
    );
    assert!(out.ok(), "{out}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1 root", "2 nobody", "3 nobody"],
        "{out}"
    );

    // A raw client as nobody claiming Owner "alice" is refused; claiming to
    // be root, its rm removes nobody's jobs only.
    let (submit, remove) = as_user_on_socket(NOBODY, &socket);
    assert!(
        submit.contains("Error") && submit.contains("alice") && submit.contains("nobody"),
        "a submission as nobody claiming Owner alice: {submit}"
    );
    assert_eq!(
        remove, "Removed { jobs: 2 }",
        "nobody's rm claiming to be root"
    );

    // root is a super user: it may submit for alice on the socket.
    let mut l = unix_client(&socket);
    l.send(&submit_msg("alice")).unwrap();
    match l.msg(REPLY) {
        FromMaster::Submitted { cluster, .. } => assert_eq!(cluster, ClusterId(4)),
        other => panic!("root submitting for alice on the socket: {other:?}"),
    }
    let want: Vec<(String, String, u64)> = vec![
        ("1.0".into(), "root".into(), IDLE),
        ("2.0".into(), "nobody".into(), REMOVED),
        ("3.0".into(), "nobody".into(), REMOVED),
        ("4.0".into(), "alice".into(), IDLE),
    ];
    assert_eq!(owners(&c), want, "{}", c.diag());
    // condor_rm -all as nobody on the socket: nobody's new job only.
    let out = submit_on_socket(&c, &socket, Some(NOBODY));
    assert!(out.ok(), "{out}");
    let out = on_socket(&c, &socket, "condor_rm", &["-all"], Some(NOBODY));
    assert!(out.ok(), "condor_rm -all as nobody\n{out}");
    let mut want = want;
    want.push(("5.0".into(), "nobody".into(), REMOVED));
    assert_eq!(owners(&c), want, "condor_rm -all as nobody:\n{out}");
}

/// The socket is for people: a worker or foreman is refused there, even
/// one that proves the holder secret; the same worker is accepted over TCP.
#[test]
fn a_worker_cannot_register_on_the_unix_socket() {
    let secrets = tempfile::tempdir().unwrap();
    let pw = secret_file(secrets.path(), "secret", "trust-holder-secret\n");
    let secret = Secret::from_file(&pw).unwrap();
    let mut c = Cluster::new();
    let socket = start_master_with_socket(&mut c, &pw);
    for role in [Role::Worker, Role::Foreman] {
        let mut l = unix(&socket);
        l.hello_and_proof(role, "local-pilot", Some(&secret))
            .unwrap_or_else(|e| panic!("{role} on the socket: {e}"));
        let m = l.error_and_close();
        assert!(
            m.contains(&format!("a {role} may not connect on the Unix socket")),
            "{role}: {m:?}"
        );
    }
    assert_eq!(c.status_json()["holders"], 0);
    // Over TCP the same worker is accepted and registers.
    let _l = registered(
        &c.addr(),
        Role::Worker,
        "local-pilot",
        &secret,
        Resources::new(1, 1024, 1024),
        vec![],
        fresh_nonce(),
    );
    c.wait_holders(1, REPLY);
    // A client on the socket is served.
    let out = on_socket(&c, &socket, "pilotq", &["status", "--json"], None);
    assert!(out.ok(), "{out}");
}

/// `--open-reads`: a client that offers no password reads the queue, the
/// history and the status, and changes nothing; a wrong password is still
/// refused; without the flag, no password is no entry.
#[test]
fn open_reads_lets_a_passwordless_client_read_but_not_write() {
    let secrets = tempfile::tempdir().unwrap();
    let pw = secret_file(secrets.path(), "secret", "trust-open-reads\n");
    let wrong = secret_file(secrets.path(), "wrong", "not-the-secret\n");
    let mut c = Cluster::with_master(MasterOpts {
        password_file: Some(pw.clone()),
        extra: vec!["--open-reads".into()],
        ..MasterOpts::default()
    });
    // With the secret: two idle jobs (no worker) and one in history.
    c.submit(2, &[], &["/bin/true"]);
    let done = c.submit(1, &[], &["/bin/true"]);
    c.run_ok(&["rm", &done.to_string()]);
    let before = c.q_json();
    assert_eq!(before.len(), 3, "{before:?}");

    c.client_password = None;
    // Reads.
    let q = c.q_json();
    assert_eq!(q, before, "passwordless q --json");
    let out = c.run_condor(
        "condor_q",
        &["-af", "ClusterId", "ProcId", "JobStatus"],
        None,
    );
    assert!(out.ok(), "passwordless condor_q\n{out}");
    assert_eq!(out.stdout, "1 0 1\n1 1 1\n", "{out}");
    let out = c.run(&["status"]);
    assert!(out.ok(), "passwordless status\n{out}");
    let s = c.status_json();
    assert_eq!(
        (s["idle"].as_u64(), s["history_removed"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let out = c.run_condor("condor_history", &["-af", "ClusterId"], None);
    assert!(out.ok(), "passwordless condor_history\n{out}");
    assert_eq!(out.stdout.trim(), done.to_string(), "{out}");

    // Writes are refused, with the reason.
    let refused = |out: &pilotq_tests::Out, what: &str| {
        assert!(!out.ok(), "passwordless {what} succeeded:\n{out}");
        assert!(
            out.stderr.contains("--open-reads"),
            "passwordless {what}: says why\n{out}"
        );
    };
    refused(
        &c.run(&["submit", "--count", "1", "--", "/bin/true"]),
        "submit",
    );
    refused(
        &c.run_condor("condor_rm", &["-all"], None),
        "condor_rm -all",
    );
    refused(&c.run_condor("condor_rm", &["1.0"], None), "condor_rm 1.0");
    refused(&c.run(&["release", "1"]), "release");
    // Raw: outputs and the journal are not reads either.
    let mut l = tcp_client(&c.addr(), None);
    for msg in [
        ToMaster::KeptOutput {
            job: JobId::new(1, 0),
            stderr: false,
        },
        ToMaster::JournalTail { from: 0 },
        submit_msg("root"),
        ToMaster::Remove {
            selectors: vec![Selector::All],
            owner: Some("root".into()),
        },
    ] {
        let what = format!("{msg:?}").chars().take(30).collect::<String>();
        l.send(&msg).unwrap();
        match l.msg(REPLY) {
            FromMaster::Error { message } => {
                assert!(message.contains("--open-reads"), "{what}: {message:?}")
            }
            other => panic!("passwordless {what}: {other:?}"),
        }
    }
    assert_eq!(c.q_json(), before, "nothing changed");

    // A wrong password is refused, reads included.
    let out = c.run(&["q", "--password-file", wrong.to_str().unwrap()]);
    assert!(!out.ok(), "a wrong password read the queue:\n{out}");
    assert!(out.stderr.contains("authentication"), "{out}");
    let mut l = tcp(&c.addr());
    let e = l
        .handshake(
            Role::Client,
            "wrong",
            Some(&Secret::from_file(&wrong).unwrap()),
        )
        .expect_err("a wrong password is refused at the handshake");
    assert!(e.contains("authentication"), "{e}");

    // Without --open-reads: no password, no reads.
    c.stop_master();
    c.opts.extra.clear();
    c.start_master();
    let out = c.run_condor("condor_q", &[], None);
    assert!(
        !out.ok(),
        "a passwordless condor_q without --open-reads:\n{out}"
    );
    assert!(out.stderr.contains("authentication"), "{out}");
    let out = c.run(&["status"]);
    assert!(!out.ok(), "{out}");
    c.client_password = Some(pw);
    assert_eq!(c.q_json(), before);
}

/// A TCP connection from `src` to `dst`.
fn connect_from(src: std::net::Ipv4Addr, dst: std::net::SocketAddrV4) -> TcpStream {
    use std::os::unix::io::FromRawFd;
    let sin = |a: std::net::SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket of ours, and sockaddr_in values that live for
    // each call; the fd goes to the TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let from = sin(std::net::SocketAddrV4::new(src, 0));
        let rc = libc::bind(fd, (&from as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
        let to = sin(dst);
        let rc = libc::connect(fd, (&to as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect {dst}: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// `--max-connections-per-ip 3`: a fourth connection from the same address
/// is closed at once, before any handshake, while another address is
/// served; when one of the three closes, a new one is served.
#[test]
fn connections_beyond_the_per_address_limit_are_closed() {
    let c = Cluster::with_master(MasterOpts {
        extra: vec!["--max-connections-per-ip".into(), "3".into()],
        ..MasterOpts::default()
    });
    let addr = c.addr();
    // Two clients and one silent connection (the handshake timeout is 10 s).
    let mut held = vec![tcp_client(&addr, None), tcp_client(&addr, None), tcp(&addr)];
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let mut fourth = tcp(&addr);
        let t = Instant::now();
        let _ = fourth.send(&ToMaster::Hello(hello(Role::Client, "fourth")));
        match fourth.recv(Duration::from_secs(3)) {
            Got::Closed => {}
            other => panic!(
                "connection {} from 127.0.0.1 got {other:?}\n{}",
                4 + i,
                c.diag()
            ),
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "closed after {:?}",
            t.elapsed()
        );
    }
    // Another source address has its own share.
    let dst: std::net::SocketAddrV4 = addr.parse().unwrap();
    let mut other = Link {
        s: connect_from("127.0.0.2".parse().unwrap(), dst),
    };
    other
        .handshake(Role::Client, "other-address", None)
        .expect("127.0.0.2 is served while 127.0.0.1 is full");
    other.send(&ToMaster::Status).unwrap();
    assert!(matches!(other.msg(REPLY), FromMaster::Status(_)));
    // The held ones are still served.
    held[0].send(&ToMaster::Status).unwrap();
    assert!(matches!(held[0].msg(REPLY), FromMaster::Status(_)));
    // One closes (the silent one): a new one gets in.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut again = loop {
        let mut l = tcp(&addr);
        match l.handshake(Role::Client, "after", None) {
            Ok(()) => break l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet served: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "no connection served after one of three closed: {e}\n{}",
                c.diag()
            ),
        }
    };
    again.send(&ToMaster::Status).unwrap();
    assert!(matches!(again.msg(REPLY), FromMaster::Status(_)));
    // And it is full again.
    let mut fifth = tcp(&addr);
    assert!(matches!(fifth.recv(Duration::from_secs(3)), Got::Closed));
    drop((held, again, other));
    // Everything closed: the ordinary clients work.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.run(&["status"]).ok() {
        assert!(
            Instant::now() < deadline,
            "status never served again\n{}",
            c.diag()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Query, Remove, History or Release naming more than 10,000 jobs gets one
/// error and nothing is applied; 10,000 is still answered.
#[test]
fn a_request_with_too_many_selectors_is_refused_whole() {
    let c = Cluster::with_master(MasterOpts::default());
    c.submit(3, &[], &["/bin/true"]);
    let before = c.q_json();
    assert_eq!(before.len(), 3);
    // Real jobs first, then ids that do not exist.
    let ids = |n: u32| -> Vec<Selector> {
        (0..n)
            .map(|p| Selector::Job(JobId::new(if p < 3 { 1 } else { 2 }, p)))
            .collect()
    };
    let too_many = ids(10_001);
    let mut l = tcp_client(&c.addr(), None);
    let refused = |l: &mut Link<TcpStream>, msg: ToMaster, what: &str| {
        l.send(&msg).unwrap();
        match l.msg(REPLY) {
            FromMaster::Error { message } => assert!(
                message.contains("at most 10000") && message.contains("10001"),
                "{what}: {message:?}"
            ),
            other => panic!("{what} with 10,001 selectors: {other:?}"),
        }
    };
    refused(
        &mut l,
        ToMaster::Remove {
            selectors: too_many.clone(),
            owner: Some("root".into()),
        },
        "Remove",
    );
    refused(
        &mut l,
        ToMaster::Query {
            selectors: too_many.clone(),
        },
        "Query",
    );
    refused(
        &mut l,
        ToMaster::History {
            selectors: too_many.clone(),
            forwards: false,
        },
        "History",
    );
    refused(
        &mut l,
        ToMaster::Release {
            selectors: too_many,
            owner: Some("root".into()),
        },
        "Release",
    );
    // The connection is still served, and 10,000 selectors are answered.
    l.send(&ToMaster::Query {
        selectors: ids(10_000),
    })
    .unwrap();
    let jobs = l.jobs().expect("a query of 10,000 selectors");
    assert_eq!(jobs.len(), 3);
    assert_eq!(c.q_json(), before, "nothing removed");
    assert!(before.iter().all(|j| j["status"] == IDLE));
}

/// A result with no key for `attempt` of `job`, started at `started_at`,
/// exited 0 now, that printed `stdout`.
fn forged_result(job: JobId, attempt: u32, started_at: u64, stdout: &[u8]) -> JobResult {
    JobResult {
        key: None,
        job,
        attempt,
        outcome: Outcome::Exited { code: 0 },
        started_at,
        ended_at: pilotq_journal::now_ms(),
        stdout: stdout.to_vec(),
        stderr: vec![],
    }
}

/// A holding with no key of `attempt` of `job`, in `state`.
fn holding(job: JobId, attempt: u32, state: HoldingState) -> Holding {
    Holding {
        key: None,
        job,
        attempt,
        state,
        spec: None,
        wrapper: None,
    }
}

/// The raw holder's forged results for `jobs` (attempt 1).
fn forged(jobs: &[JobId]) -> Vec<Holding> {
    jobs.iter()
        .map(|&job| {
            let result = forged_result(job, 1, pilotq_journal::now_ms(), b"FORGED\n");
            holding(job, 1, HoldingState::Finished(result))
        })
        .collect()
}

/// A holder with the holder secret but not the live holder's token is
/// refused under its name; the live holder keeps its jobs, which complete
/// on it, once each, with their real output.
#[test]
fn a_stranger_under_a_live_holders_name_is_refused() {
    let secrets = tempfile::tempdir().unwrap();
    let pw = secret_file(secrets.path(), "secret", "trust-live-holder\n");
    let secret = Secret::from_file(&pw).unwrap();
    let mut c = Cluster::with_master(MasterOpts {
        password_file: Some(pw),
        ..MasterOpts::default()
    });
    write_executable(&c.path("slow.sh"), "#!/bin/sh\nsleep 3\necho real-$1\n");
    c.submit(
        2,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["./slow.sh", "job"],
    );
    c.add_worker("w1", 2);
    c.wait_until(REPLY * 3, "both jobs running on w1", |jobs| {
        jobs.len() == 2
            && jobs
                .iter()
                .all(|j| j.status == RUNNING && j.holder.as_deref() == Some("w1"))
    });
    for (role, token) in [
        (Role::Worker, fresh_nonce()),
        (Role::Worker, vec![]),
        (Role::Foreman, fresh_nonce()),
    ] {
        let mut l = registered(
            &c.addr(),
            role,
            "w1",
            &secret,
            Resources::new(8, 8192, 8192),
            forged(&[JobId::new(1, 0), JobId::new(1, 1)]),
            token,
        );
        let m = l.error_and_close();
        assert!(
            m.contains("holder name \"w1\" is in use by a live connection"),
            "{role}: {m:?}"
        );
    }
    assert_eq!(c.status_json()["holders"], 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert!(c.worker("w1").proc.running(), "the live worker was cut off");
    for j in &jobs {
        assert_eq!(
            (j.exit_code, j.attempts, j.raw["last_holder"].as_str()),
            (Some(0), 1, Some("w1")),
            "{}",
            j.raw
        );
        assert_eq!(c.read_file(&format!("out/1.{}.out", j.proc)), "real-job\n");
    }
    c.assert_journal_once_each(2, 1);
}

/// A master with a 5 s lease and one job (`out/job.out` gets
/// `real-bytes-x`), taken by a raw holder "w1" that reports it started and
/// goes away: the cluster, the secret, and the attempt and its start time.
fn job_left_by_a_gone_holder() -> (Cluster, Secret, tempfile::TempDir, u32, u64) {
    let secrets = tempfile::tempdir().unwrap();
    let pw = secret_file(secrets.path(), "secret", "trust-gone-holder\n");
    let secret = Secret::from_file(&pw).unwrap();
    let c = Cluster::with_master(MasterOpts {
        password_file: Some(pw),
        lease: 5.0,
        ..MasterOpts::default()
    });
    write_executable(&c.path("real.sh"), "#!/bin/sh\necho real-bytes-$1\n");
    c.submit(1, &["--output", "out/job.out"], &["./real.sh", "x"]);
    let job = JobId::new(1, 0);
    let mut a = registered(
        &c.addr(),
        Role::Worker,
        "w1",
        &secret,
        Resources::new(1, 4096, 100_000),
        vec![],
        fresh_nonce(),
    );
    let (attempt, key) = match a.msg(REPLY) {
        FromMaster::Dispatch(asg) => {
            assert_eq!(asg.len(), 1, "{asg:?}");
            assert_eq!(asg[0].job, job);
            assert!(asg[0].key.is_some(), "a dispatch carries its attempt's key");
            (asg[0].attempt, asg[0].key)
        }
        other => panic!("expected a Dispatch, got {other:?}"),
    };
    let started_at = pilotq_journal::now_ms();
    // Its own attempt, with its key: the start is taken.
    a.send(&ToMaster::Started(vec![Started {
        key,
        job,
        attempt,
        at: started_at,
    }]))
    .unwrap();
    c.wait_until(REPLY, "the job running on w1", |jobs| {
        jobs.len() == 1 && jobs[0].status == RUNNING && jobs[0].holder.as_deref() == Some("w1")
    });
    drop(a);
    c.wait_holders(0, REPLY);
    (c, secret, secrets, attempt, started_at)
}

/// Within the lease, a holder `name` with a fresh token registers offering
/// no cores (so nothing is dispatched to it afresh), with `holdings`, then
/// reports job 1.0's `attempt` finished with forged output; what the master
/// tells it in the next two seconds.
fn stranger_reports(
    c: &Cluster,
    secret: &Secret,
    name: &str,
    holdings: Vec<Holding>,
    attempt: u32,
    started_at: u64,
) -> Vec<FromMaster> {
    let job = JobId::new(1, 0);
    let mut b = registered(
        &c.addr(),
        Role::Worker,
        name,
        secret,
        Resources::new(0, 0, 0),
        holdings,
        fresh_nonce(),
    );
    b.send(&ToMaster::Finished(vec![forged_result(
        job,
        attempt,
        started_at,
        b"FORGED-BY-A-STRANGER\n",
    )]))
    .unwrap();
    let mut told = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match b.recv(until.saturating_duration_since(Instant::now())) {
            Got::Msg(m) => told.push(m),
            Got::Silent => break,
            Got::Closed => panic!("the master closed the stranger's connection; it told: {told:?}"),
        }
    }
    eprintln!("the stranger {name} was told: {told:?}");
    told
}

/// The forged result was not taken; a real worker then runs job 1.0 to
/// completion with its real output, completed once in the journal. The
/// journal's events for 1.0, by kind.
fn forged_result_not_taken_and_job_runs_for_real(c: &mut Cluster) -> Vec<String> {
    let j = c.job("1.0");
    assert_ne!(
        j.status, COMPLETED,
        "completed by the forged result: {}",
        j.raw
    );
    assert_eq!(j.exit_code, None, "{}", j.raw);
    assert!(
        !c.path("out/job.out").exists(),
        "the forged result was written: {:?}",
        std::fs::read_to_string(c.path("out/job.out"))
    );
    c.add_worker("w2", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].exit_code, jobs[0].raw["last_holder"].as_str()),
        (Some(0), Some("w2")),
        "{}",
        jobs[0].raw
    );
    assert_eq!(c.read_file("out/job.out"), "real-bytes-x\n");
    assert!(c.stop_master().success());
    let kinds: Vec<String> = c
        .journal_events()
        .iter()
        .filter_map(|e| {
            let (k, body) = event_kind(e);
            (event_job(body).as_deref() == Some("1.0")).then(|| k.to_string())
        })
        .collect();
    let completions = kinds.iter().filter(|k| *k == "JobCompleted").count();
    assert_eq!(completions, 1, "{kinds:?}");
    kinds
}

/// A stranger registers as "w1" claiming w1's attempt as running, without
/// its key, and reports a forged result for it: the master must kill that
/// attempt on it. What it was told is returned.
fn stranger_claims_w1s_attempt(
    c: &Cluster,
    secret: &Secret,
    attempt: u32,
    started_at: u64,
) -> Vec<FromMaster> {
    let job = JobId::new(1, 0);
    let claim = vec![holding(job, attempt, HoldingState::Running { started_at })];
    let told = stranger_reports(c, secret, "w1", claim, attempt, started_at);
    let this = Attempt {
        job,
        attempt,
        key: None,
    };
    assert!(
        told.iter()
            .any(|m| matches!(m, FromMaster::Kill(k) if k.contains(&this))),
        "no Kill of {job} attempt {attempt}: {told:?}\n{}",
        c.diag()
    );
    told
}

/// A holder under the name of one whose connection is gone, with another
/// token, does not get its attempts: what it claims is killed, its result is
/// not taken, and the job is requeued and runs elsewhere, once.
#[test]
fn a_stranger_under_a_gone_holders_name_does_not_get_its_attempts() {
    let (mut c, secret, _secrets, attempt, started_at) = job_left_by_a_gone_holder();
    let told = stranger_claims_w1s_attempt(&c, &secret, attempt, started_at);
    assert!(
        !told.iter().any(|m| matches!(m, FromMaster::Dispatch(_))),
        "{told:?}"
    );
    assert_eq!(c.job("1.0").status, IDLE, "requeued at once");
    let kinds = forged_result_not_taken_and_job_runs_for_real(&mut c);
    assert_eq!(
        kinds.iter().filter(|k| *k == "JobRequeued").count(),
        1,
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|k| k == "JobMoved"), "{kinds:?}");
}

/// The same stranger under a name no holder has used: it must not get the
/// gone holder's attempt either. Fail-over moves an attempt to another
/// holder (JobMoved) only when it shows the attempt's key, which the
/// stranger does not have; before attempt keys, its forged result completed
/// the job and was written to the owner's output file.
#[test]
fn a_stranger_under_a_fresh_name_does_not_get_a_gone_holders_attempts() {
    let (mut c, secret, _secrets, attempt, started_at) = job_left_by_a_gone_holder();
    stranger_reports(&c, &secret, "w9", vec![], attempt, started_at);
    forged_result_not_taken_and_job_runs_for_real(&mut c);
}

/// After a master restart it has forgotten every holder's token, so the
/// first registration under a name is believed. A stranger that gets in
/// first as "w1" still cannot report w1's attempt: every report of an
/// attempt shows the attempt's key, which only the chain it was dispatched
/// down has, and the master's key survives its restart.
#[test]
fn after_a_master_restart_a_stranger_first_under_a_name_cannot_report_its_attempts() {
    let (mut c, secret, _secrets, attempt, started_at) = job_left_by_a_gone_holder();
    c.kill_master();
    c.restart_master();
    stranger_claims_w1s_attempt(&c, &secret, attempt, started_at);
    forged_result_not_taken_and_job_runs_for_real(&mut c);
}
