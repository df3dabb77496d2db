//! Reading a job event log (`log = path` in a submit description): the
//! master appends HTCondor user-log events, one block per event, each opened
//! by `NNN (CCC.PPP.000) ` and closed by a line `...`.

use crate::{wait_for, Cluster};
use std::path::Path;
use std::time::Duration;

/// One event block of a user log.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// The three-digit event code (`000` submitted, `001` executing, `005`
    /// terminated, `009` aborted, `012` held, …).
    pub code: String,
    /// `C.P`
    pub job: String,
    /// The whole block, header to `...`.
    pub text: String,
}

/// Parses a whole log; `Err` names the first malformed line. Every block
/// must be closed by `...`, and the log must end with that line.
pub fn parse_log(text: &str) -> Result<Vec<LogEvent>, String> {
    let mut events = Vec::new();
    let mut open: Option<LogEvent> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        match &mut open {
            None => {
                let (code, job) = parse_header(line)
                    .ok_or_else(|| format!("line {n}: {line:?} does not open an event block"))?;
                open = Some(LogEvent {
                    code,
                    job,
                    text: format!("{line}\n"),
                });
            }
            Some(ev) => {
                ev.text.push_str(line);
                ev.text.push('\n');
                if line == "..." {
                    events.push(open.take().unwrap());
                } else if parse_header(line).is_some() {
                    return Err(format!(
                        "line {n}: a new event opens before `...` closed the last"
                    ));
                }
            }
        }
    }
    if let Some(ev) = open {
        return Err(format!(
            "the last block is not closed by `...`:\n{}",
            ev.text
        ));
    }
    if !text.is_empty() && !text.ends_with("...\n") {
        return Err("the log does not end with a `...` line".into());
    }
    Ok(events)
}

/// `NNN (CCC.PPP.000) rest`: the event code and `C.P`. Cluster and proc are
/// zero-padded to at least 3 digits, the subproc is `000`, and something
/// follows the id.
fn parse_header(line: &str) -> Option<(String, String)> {
    let (code, rest) = line.split_at_checked(3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (id, after) = rest.strip_prefix(" (")?.split_once(") ")?;
    let parts: Vec<&str> = id.split('.').collect();
    let padded = |s: &str| s.len() >= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(|p| padded(p)) || parts[2] != "000" || after.is_empty()
    {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().unwrap();
    Some((
        code.to_string(),
        format!("{}.{}", num(parts[0]), num(parts[1])),
    ))
}

/// The codes of `job`'s events, in the order logged.
pub fn codes_of(events: &[LogEvent], job: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.job == job)
        .map(|e| e.code.clone())
        .collect()
}

/// Waits (up to 20 s) until the log at `path` exists, parses, and `done`
/// holds for its events; returns them. On timeout the panic shows the log,
/// why it does not parse (if it does not), and the cluster's logs.
pub fn wait_log(
    c: &Cluster,
    path: &Path,
    what: &str,
    done: impl Fn(&[LogEvent]) -> bool,
) -> Vec<LogEvent> {
    wait_for(
        Duration::from_secs(20),
        what,
        || {
            let text = std::fs::read_to_string(path).ok()?;
            parse_log(&text).ok().filter(|evs| done(evs))
        },
        || {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
            let parsed = parse_log(&text)
                .map(|_| "well-formed".to_string())
                .unwrap_or_else(|e| e);
            format!("{} ({parsed}):\n{text}\n{}", path.display(), c.diag())
        },
    )
}
