//! pid files: written atomically (a temporary file renamed over the name,
//! so a reader never sees half a number), and trusted only when the process
//! is alive *and* its command line says it is the one the file is for — a
//! pid left by a crash may since belong to anybody.

use std::io::Write;
use std::path::Path;

/// Writes `pid` to `path` through a temporary file in the same folder.
pub fn write(path: &Path, pid: u32) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!("{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{pid}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The pid in `path`, if it holds one.
pub fn read(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok().filter(|p| *p > 0)
}

/// Removes `path`; a missing file is fine.
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// Whether `pid` is a live process (a zombie counts as dead: it has exited
/// and only waits for its parent to read its status).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state follows the parenthesised command name, which may
        // itself hold spaces and parentheses.
        Ok(s) => !matches!(
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X') | None
        ),
    }
}

/// The command line of `pid`, one string per argument.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        // A kernel thread, or a zombie.
        return None;
    }
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The live process `path` names if `is_ours` accepts its command line.
/// Otherwise the file is stale — its process is gone, or the pid now
/// belongs to someone else — and is removed (unless it changed meanwhile:
/// a supervisor may have just written its new child's pid).
pub fn live(path: &Path, is_ours: impl Fn(&[String]) -> bool) -> Option<i32> {
    let pid = read(path);
    if let Some(pid) = pid {
        if alive(pid) && cmdline(pid).is_some_and(|argv| is_ours(&argv)) {
            return Some(pid);
        }
    }
    if path.exists() && read(path) == pid {
        tracing::debug!("removing stale pid file {}", path.display());
        remove(path);
    }
    None
}

/// Sends `sig` to `pid`; false if there was no such process.
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory effects; pids come from checked files
    // or from /proc, and are never 0 or negative (which would hit groups).
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A child killed on drop.
    struct Kid(Child);

    impl Drop for Kid {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn any(_: &[String]) -> bool {
        true
    }

    #[test]
    fn written_atomically_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w-1.pid");
        write(&p, 4242).unwrap();
        assert_eq!(read(&p), Some(4242));
        write(&p, 4343).unwrap();
        assert_eq!(read(&p), Some(4343));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(read(&p), None);
        std::fs::write(&p, "0\n").unwrap();
        assert_eq!(read(&p), None);
        remove(&p);
        remove(&p);
        assert!(!p.exists());
    }

    #[test]
    fn the_pid_of_an_exited_process_is_stale_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w-1.pid");
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        write(&p, pid).unwrap();
        assert_eq!(live(&p, any), None);
        assert!(!p.exists(), "a stale pid file must be removed");
        // Missing and unreadable files are simply not live.
        assert_eq!(live(&p, any), None);
        std::fs::write(&p, "not a pid").unwrap();
        assert_eq!(live(&p, any), None);
        assert!(!p.exists());
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        // Not reaped yet: a zombie once it has exited.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!alive(pid));
        c.wait().unwrap();
        assert!(!alive(pid));
        assert!(alive(std::process::id() as i32));
    }

    #[test]
    fn a_live_process_that_is_not_ours_is_stale_and_left_running() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w-1.pid");
        let mut kid = Kid(Command::new("sleep").arg("30").spawn().unwrap());
        write(&p, kid.0.id()).unwrap();
        let layout = super::super::Layout::new(super::super::Role::Worker, d.path().into());
        assert_eq!(live(&p, |argv| layout.is_child(argv, 1)), None);
        assert!(!p.exists());
        assert!(
            kid.0.try_wait().unwrap().is_none(),
            "it must not be signalled"
        );
    }

    #[test]
    fn a_live_pilotq_worker_of_this_id_is_ours() {
        // A stand-in whose command line reads `pilotq worker --workdir
        // <scratch>`: sh, named pilotq by argv[0], running the script file
        // `worker` with the rest as its arguments.
        use std::os::unix::process::CommandExt;
        let d = tempfile::tempdir().unwrap();
        let layout = super::super::Layout::new(super::super::Role::Worker, d.path().into());
        std::fs::write(d.path().join("worker"), "sleep 30; :\n").unwrap();
        let scratch = layout.scratch(2);
        let kid = Kid(Command::new("/bin/sh")
            .arg0("pilotq")
            .arg("worker")
            .arg("--workdir")
            .arg(&scratch)
            .current_dir(d.path())
            .spawn()
            .unwrap());
        let p = layout.child_pid_file(2);
        std::fs::create_dir_all(layout.pids_dir()).unwrap();
        write(&p, kid.0.id()).unwrap();
        let pid = kid.0.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cmdline(pid).and_then(|a| a.get(1).cloned()).as_deref() != Some("worker") {
            assert!(std::time::Instant::now() < deadline, "{:?}", cmdline(pid));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(live(&p, |argv| layout.is_child(argv, 2)), Some(pid));
        assert!(p.exists());
        // The same process is not worker 3.
        assert_eq!(live(&p, |argv| layout.is_child(argv, 3)), None);
        assert!(!p.exists());
    }
}
