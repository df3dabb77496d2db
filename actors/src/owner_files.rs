//! Writing a job's files as the job's owner, and never through a symbolic
//! link.
//!
//! A job's `output`, `error` and `log` paths are chosen by whoever submits
//! it, and the master usually runs as root. Written as root, `output =
//! /etc/shadow` would overwrite any file on the submit host, and a symbolic
//! link planted in a directory the submitter owns (`out -> /etc`) would
//! redirect a write there even when the path looks harmless. So:
//!
//! - **As the owner.** When the master runs as root, a file thread switches
//!   its filesystem user and group ids (`setfsuid`, `setfsgid`) and its
//!   supplementary groups to the owner's for the write, and back after
//!   ([`Acting`]). The kernel then checks every permission as it would for
//!   the owner, and what is created belongs to the owner. These ids are
//!   per thread in the kernel: glibc makes `setuid` and `setgroups` apply to
//!   every thread of the process, but not `setfsuid`/`setfsgid`, and the
//!   groups are set with the raw `setgroups` system call, which changes the
//!   calling thread alone. The rest of the master (its journal, its
//!   sockets) stays root throughout. A helper process per owner would give
//!   the same result at the cost of a process per owner and every byte
//!   through a pipe; the file threads do nothing but this I/O, so switching
//!   them is the smaller thing.
//! - **No symbolic link is followed.** A directory is opened by walking its
//!   path from `/` one component at a time, each opened with `O_NOFOLLOW`
//!   relative to the last ([`Dir::open`]), missing ones made as the owner.
//!   A file is created in that directory under a new temporary name with
//!   `O_EXCL | O_NOFOLLOW` and renamed over its target within the same
//!   directory: a rename replaces a symbolic link at the target, it never
//!   follows it. A job event log is appended with `O_NOFOLLOW`. A symbolic
//!   link met anywhere is an error that names it. (Symbolic links an
//!   administrator made, say `/home -> /export/home`, are refused too: the
//!   job's paths must name the real directories.)
//! - **Not root.** A master that does not run as root writes as itself, still
//!   without following symbolic links; a submission of another owner that
//!   names files is refused at submit ([`may_write_for`]), as those files
//!   could not be written as their owner.
//!
//! Relative paths (never sent by pilotq's clients, which make them absolute)
//! are taken from the master's working directory, as they always were.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The end of the error for a symbolic link met in a path.
pub const NOT_FOLLOWED: &str = "pilotq does not follow symbolic links in output paths";

/// Whether this process writes files as their owners: it runs as root.
pub fn writes_as_owners() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The user this process runs as, named as its clients name a job's owner.
pub fn master_user() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(crate::client::current_user)
}

/// Whether a job of `owner` naming the files `files` (its output, error and
/// log paths) may be taken: always by a master running as root, which
/// writes them as the owner; by any other only for its own user's jobs, or
/// for jobs that name no file. `Err` is the message for the submitter.
pub fn may_write_for(owner: &str, files: &[&Option<String>]) -> Result<(), String> {
    if writes_as_owners() || files.iter().all(|f| f.is_none()) {
        return Ok(());
    }
    let me = master_user();
    if owner == me {
        return Ok(());
    }
    Err(format!(
        "submission refused: this master runs as user {me:?}, not as root, so it cannot write output, error or log files as their owner {owner:?}; submit without them, or as {me:?}, or run the master as root"
    ))
}

/// A user's ids, as its files are written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups (the primary one included).
    pub groups: Vec<libc::gid_t>,
}

/// Who a file is written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAs {
    /// As this process is (not root, or the owner is this process's user).
    Master,
    /// As another user.
    Owner(Arc<Ids>),
}

impl WriteAs {
    /// For a job of `owner`: as the owner when this master runs as root, as
    /// itself otherwise. `Err`: the owner is not a user here (the message
    /// says so) or the user database could not be read.
    pub fn for_owner(owner: &str) -> io::Result<WriteAs> {
        if !writes_as_owners() {
            return Ok(WriteAs::Master);
        }
        match cached_ids(owner)? {
            // SAFETY: geteuid/getegid have no preconditions.
            Some(ids) if ids.uid == unsafe { libc::geteuid() } => Ok(WriteAs::Master),
            Some(ids) => Ok(WriteAs::Owner(ids)),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("owner {owner:?} is not a user on the submit host"),
            )),
        }
    }
}

/// How long a user's ids (or their absence) are trusted: a user added or
/// changed is seen within this time, and a queue of a million jobs costs a
/// handful of lookups.
const IDS_FOR: Duration = Duration::from_secs(60);

type IdsCache = Mutex<HashMap<String, (Instant, Option<Arc<Ids>>)>>;

fn cached_ids(name: &str) -> io::Result<Option<Arc<Ids>>> {
    static CACHE: OnceLock<IdsCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((at, ids)) = cache.lock().expect("ids cache").get(name) {
        if at.elapsed() < IDS_FOR {
            return Ok(ids.clone());
        }
    }
    // Looked up outside the lock (it may ask a directory service); a
    // failure to ask is not remembered.
    let ids = lookup(name)?.map(Arc::new);
    let mut c = cache.lock().expect("ids cache");
    if c.len() > 10_000 {
        c.clear();
    }
    c.insert(name.to_string(), (Instant::now(), ids.clone()));
    Ok(ids)
}

/// One entry of the user database, by whatever key `get` looks it up with
/// (`getpwnam_r` or `getpwuid_r`), passed to `take` while its strings are
/// alive; `None`: no such user. The buffer grows while the C library says
/// it is too small.
fn passwd_entry<T>(
    mut get: impl FnMut(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
    take: impl FnOnce(&libc::passwd) -> T,
) -> io::Result<Option<T>> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: zeroed is a valid passwd (pointers null, numbers 0).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        match get(&mut pw, &mut buf, &mut found) {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(take(&pw))),
            libc::ERANGE if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            // "Not found" as some NSS modules report it.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// The user name of `uid` from the user database (`None`: no such user, or
/// the database cannot be read).
pub fn name_of(uid: libc::uid_t) -> Option<String> {
    passwd_entry(
        // SAFETY: every pointer is valid for the call; buf.len() is its size.
        |pw, buf, found| unsafe { libc::getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), found) },
        // SAFETY: on success pw_name points at a NUL-terminated string in
        // the buffer, alive during `take`.
        |pw| {
            unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
                .to_string_lossy()
                .into_owned()
        },
    )
    .ok()
    .flatten()
}

/// `name`'s uid, primary gid and groups from the user database (`None`: no
/// such user).
pub fn lookup(name: &str) -> io::Result<Option<Ids>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let found = passwd_entry(
        // SAFETY: every pointer is valid for the call; buf.len() is its size.
        |pw, buf, found| unsafe {
            libc::getpwnam_r(cname.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), found)
        },
        |pw| (pw.pw_uid, pw.pw_gid),
    )?;
    let Some((uid, gid)) = found else {
        return Ok(None);
    };
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: groups has room for n entries; n is updated to the count.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            break;
        }
        if groups.len() >= 65536 {
            return Err(io::Error::other(format!("{name:?} is in too many groups")));
        }
        let more = (n.max(0) as usize).max(groups.len() * 2);
        groups.resize(more, 0);
    }
    Ok(Some(Ids { uid, gid, groups }))
}

/// This thread acting as another user for file access, until dropped: its
/// filesystem uid and gid and its supplementary groups are the user's (the
/// process's other threads are untouched). Dropping restores the previous
/// ones. Tied to its thread.
pub struct Acting {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    _thread_bound: PhantomData<*const ()>,
}

impl Acting {
    /// Acts as `who` on this thread (`None`: nothing to change).
    pub fn begin(who: &WriteAs) -> io::Result<Option<Acting>> {
        let WriteAs::Owner(ids) = who else {
            return Ok(None);
        };
        let groups = current_groups()?;
        set_groups(&ids.groups)?;
        // SAFETY: setfsgid has no memory preconditions; it returns the
        // previous fsgid whether it succeeds or not.
        let gid = unsafe { libc::setfsgid(ids.gid) } as libc::gid_t;
        if current_fsgid() != ids.gid {
            let _ = set_groups(&groups);
            return Err(io::Error::other(format!(
                "cannot take group id {} to write as the owner (setfsgid failed)",
                ids.gid
            )));
        }
        // SAFETY: as above.
        let uid = unsafe { libc::setfsuid(ids.uid) } as libc::uid_t;
        let acting = Acting {
            uid,
            gid,
            groups,
            _thread_bound: PhantomData,
        };
        if current_fsuid() != ids.uid {
            // Restored by the drop.
            return Err(io::Error::other(format!(
                "cannot take user id {} to write as the owner (setfsuid failed)",
                ids.uid
            )));
        }
        Ok(Some(acting))
    }
}

impl Drop for Acting {
    fn drop(&mut self) {
        // The uid first: back to root, the filesystem capabilities return,
        // then the gid and groups.
        // SAFETY: see `begin`.
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
        let groups = set_groups(&self.groups);
        if current_fsuid() != self.uid || current_fsgid() != self.gid || groups.is_err() {
            // A thread left with someone else's identity would do the
            // master's own file work as them: never go on with one.
            eprintln!(
                "pilotq: cannot restore a file thread's ids after writing as a job's owner ({groups:?}); aborting"
            );
            std::process::abort();
        }
    }
}

/// The thread's filesystem uid: `setfsuid` with an invalid id fails and
/// returns the current one (setfsuid(2)'s way of checking a change).
fn current_fsuid() -> libc::uid_t {
    // SAFETY: an invalid id changes nothing.
    unsafe { libc::setfsuid(libc::uid_t::MAX) as libc::uid_t }
}

fn current_fsgid() -> libc::gid_t {
    // SAFETY: an invalid id changes nothing.
    unsafe { libc::setfsgid(libc::gid_t::MAX) as libc::gid_t }
}

fn current_groups() -> io::Result<Vec<libc::gid_t>> {
    loop {
        // SAFETY: a zero size asks for the count only.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut g = vec![0; n as usize];
        // SAFETY: g has room for n entries.
        let m = unsafe { libc::getgroups(n, g.as_mut_ptr()) };
        if m >= 0 {
            g.truncate(m as usize);
            return Ok(g);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        // Changed in between: again.
    }
}

/// Sets this thread's supplementary groups, and only this thread's: the raw
/// system call (glibc's `setgroups` sets them on every thread).
fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the pointer is valid for groups.len() entries (64-bit Linux
    // targets: the system call takes 32-bit group ids).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_setgroups,
            groups.len() as libc::c_long,
            groups.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A directory opened without following any symbolic link: file operations
/// relative to it name nothing outside it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// The directory and the name of a file path (`Err`: it names no file).
pub fn split(path: &Path) -> io::Result<(PathBuf, OsString)> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file",
        ));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

fn openat(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: name is NUL-terminated; the fd returned is ours.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, libc::c_uint::from(mode)) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor, owned by nothing else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `name` in `dir` is a symbolic link (not followed).
fn is_symlink(dir: RawFd, name: &CString) -> bool {
    // SAFETY: zeroed is a valid stat; the pointers are valid for the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    rc == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
}

fn symlink_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; {NOT_FOLLOWED}",
        path.display()
    ))
}

impl Dir {
    /// Opens the directory `path`, walking it from `/` (or, relative, from
    /// the working directory) one component at a time without following a
    /// symbolic link; a symbolic link met is an error naming it. With
    /// `create`, missing directories are made (mode 0755 less the umask)
    /// by whoever this thread acts as.
    pub fn open(path: &Path, create: bool) -> io::Result<Dir> {
        let mut names: Vec<&OsStr> = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => names.push(OsStr::new("..")),
                Component::Normal(n) => names.push(n),
            }
        }
        let walk = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // The directory itself is opened for reading: its fd is synced.
        let last = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let (start, mut so_far) = if path.is_absolute() {
            (c"/", PathBuf::from("/"))
        } else {
            (c".", PathBuf::new())
        };
        let flags = if names.is_empty() { last } else { walk };
        let mut fd = openat(libc::AT_FDCWD, &start.to_owned(), flags, 0)?;
        for (i, name) in names.iter().enumerate() {
            so_far.push(name);
            let flags = if i + 1 == names.len() { last } else { walk };
            let c = cstr(name)?;
            let mut opened = openat(fd.as_raw_fd(), &c, flags, 0);
            if create && matches!(&opened, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                // SAFETY: c is NUL-terminated.
                let rc = unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755) };
                let made = if rc == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                };
                opened = match made {
                    Ok(()) => openat(fd.as_raw_fd(), &c, flags, 0),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        openat(fd.as_raw_fd(), &c, flags, 0)
                    }
                    Err(e) => Err(e),
                };
            }
            fd = match opened {
                Ok(next) => next,
                Err(_) if is_symlink(fd.as_raw_fd(), &c) => return Err(symlink_error(&so_far)),
                Err(e) => return Err(e),
            };
        }
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` (which must not exist: a temporary name), writes
    /// `bytes` and syncs them. On failure it is removed again.
    pub fn write_new(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let c = cstr(name)?;
        let flags =
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let mut f = File::from(openat(self.fd.as_raw_fd(), &c, flags, 0o644)?);
        let written = f.write_all(bytes).and_then(|()| f.sync_data());
        drop(f);
        if written.is_err() {
            let _ = self.remove(name);
        }
        written
    }

    /// Renames `from` to `to`, both in this directory. A symbolic link at
    /// `to` is replaced, not followed.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        let d = self.fd.as_raw_fd();
        // SAFETY: both names are NUL-terminated.
        if unsafe { libc::renameat(d, f.as_ptr(), d, t.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: c is NUL-terminated.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Opens `name` for appending, created (mode 0666 less the umask) if
    /// missing; a symbolic link there is an error naming it.
    pub fn open_append(&self, name: &OsStr) -> io::Result<File> {
        let c = cstr(name)?;
        let flags =
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        match openat(self.fd.as_raw_fd(), &c, flags, 0o666) {
            Ok(fd) => Ok(File::from(fd)),
            Err(_) if is_symlink(self.fd.as_raw_fd(), &c) => {
                Err(symlink_error(&self.path.join(name)))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes the directory's entries (a rename into it) durable.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: our own open descriptor.
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn a_uid_is_named_and_the_name_looked_up_gives_it_back() {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let name = name_of(uid).expect("our own uid has a passwd entry");
        assert_eq!(lookup(&name).unwrap().unwrap().uid, uid);
        assert_eq!(name_of(u32::MAX - 7), None);
    }

    #[test]
    fn a_symlink_anywhere_in_a_directory_path_is_named_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let other = d.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        symlink(&other, d.path().join("real/link")).unwrap();
        for create in [false, true] {
            let e = Dir::open(&d.path().join("real/link/deeper"), create).unwrap_err();
            let text = e.to_string();
            let link = d.path().join("real/link").display().to_string();
            assert!(
                text.starts_with(&format!("{link} is a symbolic link;"))
                    && text.contains(NOT_FOLLOWED),
                "{text}"
            );
            // And as the last component.
            let e = Dir::open(&d.path().join("real/link"), create).unwrap_err();
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
        }
        assert_eq!(
            std::fs::read_dir(&other).unwrap().count(),
            0,
            "nothing made through the link"
        );
        // Missing directories are made, a `..` goes to the real parent.
        let dir = Dir::open(&d.path().join("real/a/b/../c"), true).unwrap();
        assert!(d.path().join("real/a/c").is_dir());
        dir.write_new(OsStr::new("x"), b"x").unwrap();
        assert_eq!(std::fs::read(d.path().join("real/a/c/x")).unwrap(), b"x");
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_by_a_rename_and_refused_by_an_append() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        symlink(&victim, d.path().join("o.txt")).unwrap();
        symlink(&victim, d.path().join("job.log")).unwrap();
        let dir = Dir::open(d.path(), false).unwrap();
        dir.write_new(OsStr::new(".o.tmp"), b"output").unwrap();
        // Exclusive: an existing name (a link included) is never opened.
        assert!(dir.write_new(OsStr::new("job.log"), b"x").is_err());
        dir.rename(OsStr::new(".o.tmp"), OsStr::new("o.txt"))
            .unwrap();
        dir.sync().unwrap();
        let meta = std::fs::symlink_metadata(d.path().join("o.txt")).unwrap();
        assert!(meta.is_file());
        assert_eq!(std::fs::read(d.path().join("o.txt")).unwrap(), b"output");
        let e = dir.open_append(OsStr::new("job.log")).unwrap_err();
        assert!(e.to_string().contains("job.log is a symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    /// Only as root (CI runs the tests as root): this thread writes as
    /// `nobody`, another thread of the process stays root meanwhile, and
    /// this one is root again after.
    #[test]
    fn acting_as_a_user_changes_this_thread_only_and_is_undone() {
        if !writes_as_owners() {
            eprintln!("not root: nothing to switch");
            return;
        }
        let Some(nobody) = lookup("nobody").unwrap() else {
            eprintln!("no user nobody here");
            return;
        };
        assert_eq!(lookup("no-such-user-pilotq").unwrap(), None);
        let e = WriteAs::for_owner("no-such-user-pilotq").unwrap_err();
        assert!(
            e.to_string().contains("is not a user on the submit host"),
            "{e}"
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let theirs = d.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(nobody.uid), Some(nobody.gid)).unwrap();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let root_dir = d.path().to_path_buf();
        let other = std::thread::spawn(move || {
            wait.recv().unwrap();
            std::fs::write(root_dir.join("root-wrote"), b"r")
        });
        let who = WriteAs::for_owner("nobody").unwrap();
        assert!(matches!(&who, WriteAs::Owner(ids) if ids.uid == nobody.uid));
        {
            let _as = Acting::begin(&who).unwrap().expect("a switch");
            Dir::open(&theirs.join("made"), true)
                .unwrap()
                .write_new(OsStr::new("f"), b"f")
                .unwrap();
            // Root's own directory is not writable by nobody.
            let e = Dir::open(d.path(), false)
                .unwrap()
                .write_new(OsStr::new("f"), b"f")
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            // Another thread, started before (a thread starts with its
            // creator's ids), is still root.
            go.send(()).unwrap();
            other.join().unwrap().unwrap();
        }
        let made = std::fs::metadata(theirs.join("made/f")).unwrap();
        assert_eq!((made.uid(), made.gid()), (nobody.uid, nobody.gid));
        let dir = std::fs::metadata(theirs.join("made")).unwrap();
        assert_eq!((dir.uid(), dir.gid()), (nobody.uid, nobody.gid));
        let root = std::fs::metadata(d.path().join("root-wrote")).unwrap();
        assert_eq!(root.uid(), 0);
        // Root again on this thread.
        std::fs::write(d.path().join("after"), b"a").unwrap();
        assert_eq!(current_fsuid(), 0);
    }

    #[test]
    fn a_submission_naming_no_file_may_always_be_taken() {
        assert!(may_write_for("someone-else", &[&None, &None, &None]).is_ok());
        assert!(may_write_for(master_user(), &[&Some("/x".into())]).is_ok());
        let other = may_write_for("someone-else", &[&Some("/x".into())]);
        assert_eq!(other.is_ok(), writes_as_owners(), "{other:?}");
    }
}
