//! What this machine offers, for a worker's default resources.

use std::path::Path;

pub fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

pub fn memory_mb() -> u64 {
    // SAFETY: sysconf only reads system configuration.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        return 1024;
    }
    (pages as u64 * size as u64) / (1024 * 1024)
}

/// Free space where `dir` lives (or its nearest existing parent), in MB.
pub fn disk_mb(dir: &Path) -> u64 {
    let mut p = dir.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return 1024;
        }
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return 1024;
    };
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a
    // valid NUL-terminated string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return 1024;
        }
        (s.f_bavail as u64 * s.f_frsize as u64) / (1024 * 1024)
    }
}
