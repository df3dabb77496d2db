//! Ten thousand workers are ten thousand sockets in this process and as many
//! in the master (which inherits our limit): raise the soft open-file limit
//! as far as the hard one allows, and say clearly when that is not enough.

use anyhow::{bail, Result};

/// Descriptors beyond one per connection: journal files, logs, pipes,
/// listeners.
const SPARE: u64 = 256;

/// Raises `RLIMIT_NOFILE` to fit `connections`; returns the new soft limit.
pub fn raise_for(connections: u64) -> Result<u64> {
    let need = connections + SPARE;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!(
            "cannot read the open-file limit: {}",
            std::io::Error::last_os_error()
        );
    }
    let (soft, hard) = (lim.rlim_cur, lim.rlim_max);
    if soft >= need {
        return Ok(soft);
    }
    let want = need.min(hard);
    lim.rlim_cur = want;
    // SAFETY: `lim` is a valid rlimit with cur <= max.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        bail!(
            "cannot raise the open-file limit from {soft} to {want}: {}",
            std::io::Error::last_os_error()
        );
    }
    if want < need {
        bail!(
            "{connections} connections need about {need} open files, but the hard limit is {hard}: \
             raise it (ulimit -Hn, or LimitNOFILE= under systemd) or simulate at most {} workers",
            hard.saturating_sub(SPARE)
        );
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_need_is_met_and_an_impossible_one_is_refused_clearly() {
        assert!(raise_for(100).unwrap() >= 356);
        let e = raise_for(u64::MAX / 4).unwrap_err().to_string();
        assert!(e.contains("hard limit"), "{e}");
    }
}
