//! `pilotq env`: the whole client set-up of a grid site's submit machine is
//! `eval "$(pilotq env)"`: pilotq's `condor_*` commands first on PATH, and
//! where the master is (and the password file, if one is given).

use crate::cli::EnvArgs;
use anyhow::{Context, Result};

pub fn run(a: EnvArgs) -> Result<i32> {
    let me = std::env::current_exe().context("cannot find the pilotq executable")?;
    let dir = me
        .parent()
        .context("the pilotq executable has no directory")?;
    print!(
        "{}",
        lines(
            &dir.display().to_string(),
            &a.client.master,
            a.client.secret.password_file.as_deref()
        )
    );
    Ok(0)
}

/// Single-quoted for the shell, so any path survives `eval`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn lines(bin_dir: &str, master: &str, password_file: Option<&std::path::Path>) -> String {
    let mut out = format!(
        "export PATH={}:\"$PATH\"\nexport PILOTQ_MASTER={}\n",
        quote(bin_dir),
        quote(master)
    );
    if let Some(p) = password_file {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        out += &format!(
            "export PILOTQ_PASSWORD_FILE={}\n",
            quote(&abs.display().to_string())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_shell_safe() {
        let s = lines("/opt/pilot q/bin", "h:9094", None);
        assert_eq!(
            s,
            "export PATH='/opt/pilot q/bin':\"$PATH\"\nexport PILOTQ_MASTER='h:9094'\n"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
