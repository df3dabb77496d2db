//! # The job ClassAd — a [`JobView`] as HTCondor's tools see a job
//!
//! `condor_q` constraints, `-format`, `-af` and `-long` (and `condor_rm
//! -constraint`) read jobs through [`JobAd`], which answers HTCondor's
//! attribute names (case-insensitively) from the view:
//!
//! | attribute | value |
//! |---|---|
//! | `ClusterId`, `ProcId` | the job id |
//! | `JobStatus` | 1 Idle (also while assigned to a holder), 2 Running, 3 Removed, 4 Completed, 5 Held |
//! | `Owner`, `Cmd` | as submitted |
//! | `Args` | old-syntax arguments (space-joined); undefined when an argument has a blank or `"` or is empty, which old syntax cannot say |
//! | `Arguments` | new-syntax arguments (`a 'b c' 'it''s'`) |
//! | `QDate`, `EnteredCurrentStatus` | Unix seconds |
//! | `JobPrio` (and `JobPriority`) | `priority` |
//! | `RequestCpus`, `RequestMemory` (MB), `RequestDisk` (KB) | the request |
//! | `ExitCode` | only when completed with an exit code |
//! | `ExitBySignal`, `ExitSignal` | when completed: whether by a signal, and which |
//! | `CompletionDate` | Unix seconds, when completed (history records: also when removed) |
//! | `NumJobStarts` | times the job started; `JobRunCount`: dispatches so far |
//! | `RemoteHost` | the holder, while the job is out on one |
//! | `LastRemoteHost` | the holder of its last attempt |
//! | `RemoteWallClockTime` | seconds (real) of its last run, once finished; 0.0 before (pilotq keeps only the last run) |
//! | `HoldReason` | while held |
//! | `JobStartDate`, `JobCurrentStartDate` | Unix seconds, when the view has a start time (while running; history records that keep it) |
//! | `GlobalJobId` | `pilotq#C.P` |
//! | `JobUniverse`, `MyType`, `TargetType` | 5 (vanilla), `"Job"`, `"Machine"` |
//! | `ServerTime` | now, Unix seconds (as the schedd adds to query results) |
//!
//! Every custom attribute (`+Name = value` in the submit file) is there too:
//! its stored ClassAd text is parsed and evaluated against the same ad, so
//! `+Weight = RequestCpus * 2` works. A custom attribute never shadows one of
//! the attributes above. Self-reference (`+A = A + 1`) is cut off after
//! [`MAX_DEPTH`] nested evaluations and yields `error`.
//!
//! `Iwd`, `Out`, `Err`, `UserLog`, `Environment` are not in a [`JobView`]
//! and so not in the ad.

use super::classad::{parse_value, Ad, Value};
use super::print_format::FormatAd;
use pilotq_wire::{JobSpec, JobStatus, JobView};
use std::cell::Cell;
use std::fmt::Write as _;

/// How deep custom attributes may refer to custom attributes.
pub const MAX_DEPTH: u32 = 16;

thread_local! {
    /// Custom-attribute evaluations under way on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// One job as a ClassAd.
#[derive(Debug, Clone, Copy)]
pub struct JobAd<'a>(pub &'a JobView);

/// The built-in attributes, as HTCondor spells them (for `-long`).
pub const BUILTIN_ATTRIBUTES: &[&str] = &[
    "Args",
    "Arguments",
    "ClusterId",
    "Cmd",
    "CompletionDate",
    "EnteredCurrentStatus",
    "ExitBySignal",
    "ExitCode",
    "ExitSignal",
    "GlobalJobId",
    "HoldReason",
    "JobCurrentStartDate",
    "JobPrio",
    "JobPriority",
    "JobRunCount",
    "JobStartDate",
    "JobStatus",
    "JobUniverse",
    "LastRemoteHost",
    "MyType",
    "NumJobStarts",
    "Owner",
    "ProcId",
    "QDate",
    "RemoteHost",
    "RemoteWallClockTime",
    "RequestCpus",
    "RequestDisk",
    "RequestMemory",
    "ServerTime",
    "TargetType",
];

fn secs(ms: u64) -> Value {
    Value::Int((ms / 1000) as i64)
}

/// When the job finished, Unix ms: a history record says (completed or
/// removed); a completed job of the live table finished when it entered its
/// status.
fn finished_at(v: &JobView) -> Option<u64> {
    v.completed_at
        .or((v.status == JobStatus::Completed).then_some(v.entered_status_at))
}

/// HTCondor's `RemoteWallClockTime`: whole seconds of the (last) run, a real;
/// 0.0 until the job has finished a run pilotq knows the start of.
fn wall_clock(v: &JobView) -> Value {
    let ms = match (v.started_at, finished_at(v)) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => 0,
    };
    Value::Real((ms / 1000) as f64)
}

/// `Some(value)` for a built-in attribute (`Some(None)`: built in, but
/// undefined for this job now); `None` for any other name.
fn builtin(v: &JobView, name: &str) -> Option<Option<Value>> {
    let completed = v.status == JobStatus::Completed;
    Some(match name {
        "clusterid" => Some(Value::Int(v.id.cluster.0 as i64)),
        "procid" => Some(Value::Int(i64::from(v.id.proc))),
        "jobstatus" => Some(Value::Int(i64::from(v.status.number()))),
        "owner" => Some(Value::Str(v.owner.clone())),
        "cmd" => Some(Value::Str(v.cmd.clone())),
        "args" => args_v1(v).map(Value::Str),
        "arguments" => Some(Value::Str(args_v2(v))),
        "qdate" => Some(secs(v.submitted_at)),
        "enteredcurrentstatus" => Some(secs(v.entered_status_at)),
        "jobprio" | "jobpriority" => Some(Value::Int(i64::from(v.priority))),
        "requestcpus" => Some(Value::Int(i64::from(v.request.cores))),
        "requestmemory" => Some(Value::Int(v.request.memory_mb as i64)),
        "requestdisk" => Some(Value::Int(v.request.disk_mb.saturating_mul(1024) as i64)),
        "exitcode" => v
            .exit_code
            .filter(|_| completed)
            .map(|c| Value::Int(i64::from(c))),
        "exitbysignal" => completed.then(|| Value::Bool(v.signal.is_some())),
        "exitsignal" => v
            .signal
            .filter(|_| completed)
            .map(|s| Value::Int(i64::from(s))),
        "completiondate" => finished_at(v).map(secs),
        "numjobstarts" => Some(Value::Int(i64::from(v.num_starts))),
        "jobruncount" => Some(Value::Int(i64::from(v.attempts))),
        "remotehost" => v.holder.clone().map(Value::Str),
        "lastremotehost" => v.last_holder.clone().map(Value::Str),
        "remotewallclocktime" => Some(wall_clock(v)),
        "holdreason" => v
            .hold_reason
            .clone()
            .filter(|_| v.status == JobStatus::Held)
            .map(Value::Str),
        "jobstartdate" | "jobcurrentstartdate" => v.started_at.map(secs),
        "globaljobid" => Some(Value::Str(format!("pilotq#{}", v.id))),
        "jobuniverse" => Some(Value::Int(5)),
        "mytype" => Some(Value::Str("Job".to_string())),
        "targettype" => Some(Value::Str("Machine".to_string())),
        "servertime" => Some(secs(pilotq_journal::now_ms())),
        _ => return None,
    })
}

/// The job's arguments with `$(Cluster)`/`$(Process)` expanded, as
/// `condor_submit` puts them into the ad.
fn expanded_args(v: &JobView) -> impl Iterator<Item = String> + '_ {
    v.arguments.iter().map(|a| JobSpec::expand(a, v.id))
}

/// Old ("V1") syntax: words joined by spaces. `None` when a word cannot be
/// written that way (a blank, a double quote, or an empty word).
fn args_v1(v: &JobView) -> Option<String> {
    let mut out = String::new();
    for (i, a) in expanded_args(v).enumerate() {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
            return None;
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&a);
    }
    Some(out)
}

/// New ("V2") syntax, as HTCondor stores `Arguments`: words separated by
/// spaces; a word with a blank or a single quote, or an empty one, in single
/// quotes with `'` doubled.
fn args_v2(v: &JobView) -> String {
    let mut out = String::new();
    for (i, a) in expanded_args(v).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
            out.push('\'');
            out.push_str(&a.replace('\'', "''"));
            out.push('\'');
        } else {
            out.push_str(&a);
        }
    }
    out
}

impl<'a> JobAd<'a> {
    /// The stored text of custom attribute `name` (any case).
    fn custom_text(&self, name: &str) -> Option<&'a str> {
        self.0
            .attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, text)| text.as_str())
    }
}

impl Ad for JobAd<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(value) = builtin(self.0, name) {
            return value;
        }
        let text = self.custom_text(name)?;
        let depth = DEPTH.with(|d| d.get());
        if depth >= MAX_DEPTH {
            return Some(Value::Error);
        }
        let Ok(expr) = parse_value(text) else {
            // Text the submit side accepted but this subset cannot read.
            return Some(Value::Error);
        };
        DEPTH.with(|d| d.set(depth + 1));
        let value = expr.eval(self);
        DEPTH.with(|d| d.set(depth));
        Some(value)
    }
}

impl FormatAd for JobAd<'_> {
    /// Custom attributes unevaluated, as HTCondor stores them.
    fn raw(&self, name: &str) -> Option<String> {
        match builtin(self.0, name) {
            Some(value) => value.map(|v| v.to_classad_string()),
            None => self.custom_text(name).map(|t| t.trim().to_string()),
        }
    }
}

/// One attribute of a whole ad (`-long`, `-json`).
#[derive(Debug, Clone, PartialEq)]
pub struct AdEntry {
    /// As HTCondor spells it (a custom one as submitted).
    pub name: String,
    /// Its ClassAd text: a built-in's value, a custom attribute as stored.
    pub text: String,
    /// A built-in's value; `None` for a custom attribute (unevaluated).
    pub value: Option<Value>,
}

/// Every attribute the job's ad has, sorted by name ignoring case, as
/// `-long` and `-json` print them. `only`: the attributes of `-attributes`
/// (any case).
pub fn ad_entries(view: &JobView, only: Option<&[String]>) -> Vec<AdEntry> {
    let wanted = |name: &str| only.is_none_or(|o| o.iter().any(|w| w.eq_ignore_ascii_case(name)));
    let mut entries: Vec<AdEntry> = Vec::with_capacity(48);
    for name in BUILTIN_ATTRIBUTES {
        if !wanted(name) {
            continue;
        }
        if let Some(Some(value)) = builtin(view, &name.to_ascii_lowercase()) {
            entries.push(AdEntry {
                name: name.to_string(),
                text: value.to_classad_string(),
                value: Some(value),
            });
        }
    }
    for (name, text) in &view.attributes {
        let lower = name.to_ascii_lowercase();
        if builtin(view, &lower).is_none() && wanted(name) {
            entries.push(AdEntry {
                name: name.clone(),
                text: text.trim().to_string(),
                value: None,
            });
        }
    }
    entries.sort_by_cached_key(|e| e.name.to_ascii_lowercase());
    entries
}

/// The job as `condor_q -long` prints it: one `Name = value` line per
/// attribute, values in ClassAd text (custom attributes as stored,
/// unevaluated), sorted by name ignoring case. No blank line at the end: the
/// caller separates jobs. `only`: the attributes of `-attributes` (any case).
pub fn long_form(view: &JobView, only: Option<&[String]>) -> String {
    let entries = ad_entries(view, only);
    let mut out = String::with_capacity(entries.len() * 32);
    for e in entries {
        let _ = writeln!(out, "{} = {}", e.name, e.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condor::classad::Expr;
    use pilotq_wire::{JobId, Resources};
    use std::collections::BTreeMap;

    pub(crate) fn view(cluster: u64, proc: u32, status: JobStatus) -> JobView {
        JobView {
            id: JobId::new(cluster, proc),
            status,
            attempts: 0,
            exit_code: None,
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".to_string(),
            cmd: "/bin/sleep".to_string(),
            arguments: vec!["30".to_string()],
            priority: 0,
            request: Resources::new(1, 512, 100),
            submitted_at: 1_700_000_000_123,
            entered_status_at: 1_700_000_100_999,
            started_at: None,
            attributes: BTreeMap::new(),
            completed_at: None,
            num_starts: 0,
            last_holder: None,
            seq: 0,
        }
    }

    fn get(v: &JobView, name: &str) -> Option<Value> {
        JobAd(v).lookup(&name.to_ascii_lowercase())
    }

    fn eval(v: &JobView, expr: &str) -> Value {
        Expr::parse(expr).unwrap().eval(&JobAd(v))
    }

    #[test]
    fn identity_status_and_times() {
        let v = view(12, 3, JobStatus::Idle);
        assert_eq!(get(&v, "ClusterId"), Some(Value::Int(12)));
        assert_eq!(get(&v, "ProcId"), Some(Value::Int(3)));
        assert_eq!(get(&v, "JobStatus"), Some(Value::Int(1)));
        assert_eq!(get(&v, "Owner"), Some(Value::Str("alice".into())));
        assert_eq!(get(&v, "Cmd"), Some(Value::Str("/bin/sleep".into())));
        assert_eq!(get(&v, "QDate"), Some(Value::Int(1_700_000_000)));
        assert_eq!(
            get(&v, "EnteredCurrentStatus"),
            Some(Value::Int(1_700_000_100))
        );
        assert_eq!(
            get(&v, "GlobalJobId"),
            Some(Value::Str("pilotq#12.3".into()))
        );
        assert_eq!(get(&v, "JobUniverse"), Some(Value::Int(5)));
        assert_eq!(get(&v, "MyType"), Some(Value::Str("Job".into())));
        assert!(matches!(get(&v, "ServerTime"), Some(Value::Int(t)) if t > 1_700_000_000));
        for (status, n) in [
            (JobStatus::Idle, 1),
            (JobStatus::Running, 2),
            (JobStatus::Removed, 3),
            (JobStatus::Completed, 4),
            (JobStatus::Held, 5),
        ] {
            assert_eq!(get(&view(1, 0, status), "jobstatus"), Some(Value::Int(n)));
        }
        assert_eq!(get(&v, "NoSuchThing"), None);
    }

    #[test]
    fn names_are_case_insensitive_in_expressions() {
        let v = view(12, 3, JobStatus::Idle);
        assert!(eval(
            &v,
            "JOBSTATUS == 1 && clusterid == 12 && Owner == \"ALICE\""
        )
        .is_true());
        assert!(eval(&v, "MY.ProcId == 3").is_true());
    }

    #[test]
    fn requests_priority_and_starts() {
        let mut v = view(1, 0, JobStatus::Idle);
        v.priority = -5;
        v.attempts = 2;
        v.request = Resources::new(4, 2048, 10);
        v.num_starts = 2;
        assert_eq!(get(&v, "RequestCpus"), Some(Value::Int(4)));
        assert_eq!(get(&v, "RequestMemory"), Some(Value::Int(2048)));
        assert_eq!(get(&v, "RequestDisk"), Some(Value::Int(10 * 1024)));
        assert_eq!(get(&v, "JobPrio"), Some(Value::Int(-5)));
        assert_eq!(get(&v, "JobPriority"), Some(Value::Int(-5)));
        assert_eq!(get(&v, "NumJobStarts"), Some(Value::Int(2)));
        assert_eq!(get(&v, "JobRunCount"), Some(Value::Int(2)));
    }

    #[test]
    fn exit_code_only_when_completed() {
        let mut v = view(1, 0, JobStatus::Running);
        v.holder = Some("worker-a".into());
        v.started_at = Some(1_700_000_200_000);
        // A stale exit code is not shown while the job is not completed.
        v.exit_code = Some(3);
        assert_eq!(get(&v, "ExitCode"), None);
        assert_eq!(get(&v, "ExitBySignal"), None);
        assert_eq!(get(&v, "CompletionDate"), None);
        assert_eq!(get(&v, "RemoteHost"), Some(Value::Str("worker-a".into())));
        assert_eq!(get(&v, "JobStartDate"), Some(Value::Int(1_700_000_200)));
        assert_eq!(
            get(&v, "JobCurrentStartDate"),
            Some(Value::Int(1_700_000_200))
        );
        assert_eq!(eval(&v, "ExitCode == 0"), Value::Undefined);

        let mut done = view(1, 0, JobStatus::Completed);
        done.exit_code = Some(3);
        assert_eq!(get(&done, "ExitCode"), Some(Value::Int(3)));
        assert_eq!(get(&done, "ExitBySignal"), Some(Value::Bool(false)));
        assert_eq!(get(&done, "ExitSignal"), None);
        assert_eq!(
            get(&done, "CompletionDate"),
            Some(Value::Int(1_700_000_100))
        );
        assert_eq!(get(&done, "RemoteHost"), None);
        assert_eq!(get(&done, "JobStartDate"), None);

        let mut killed = view(1, 0, JobStatus::Completed);
        killed.signal = Some(9);
        assert_eq!(get(&killed, "ExitCode"), None);
        assert_eq!(get(&killed, "ExitBySignal"), Some(Value::Bool(true)));
        assert_eq!(get(&killed, "ExitSignal"), Some(Value::Int(9)));
    }

    #[test]
    fn hold_reason_while_held() {
        let mut v = view(1, 0, JobStatus::Held);
        v.hold_reason = Some("too many attempts".into());
        assert_eq!(
            get(&v, "HoldReason"),
            Some(Value::Str("too many attempts".into()))
        );
        assert_eq!(get(&view(1, 0, JobStatus::Idle), "HoldReason"), None);
    }

    #[test]
    fn arguments_in_both_syntaxes() {
        let mut v = view(7, 2, JobStatus::Idle);
        v.arguments = vec!["-n".into(), "$(Cluster).$(Process)".into()];
        assert_eq!(get(&v, "Args"), Some(Value::Str("-n 7.2".into())));
        assert_eq!(get(&v, "Arguments"), Some(Value::Str("-n 7.2".into())));
        v.arguments = vec![
            "a".into(),
            "b c".into(),
            "it's".into(),
            "".into(),
            "q\"".into(),
        ];
        assert_eq!(get(&v, "Args"), None);
        assert_eq!(
            get(&v, "Arguments"),
            Some(Value::Str("a 'b c' 'it''s' '' q\"".into()))
        );
        v.arguments.clear();
        assert_eq!(get(&v, "Args"), Some(Value::Str(String::new())));
        assert_eq!(get(&v, "Arguments"), Some(Value::Str(String::new())));
    }

    #[test]
    fn custom_attributes_evaluate_against_the_ad() {
        let mut v = view(1, 0, JobStatus::Idle);
        v.attributes.insert("Project".into(), "\"atlas\"".into());
        v.attributes
            .insert("Weight".into(), "RequestCpus * 2 + Bonus".into());
        v.attributes.insert("Bonus".into(), "10".into());
        v.attributes.insert("SelfRef".into(), "SelfRef + 1".into());
        v.attributes.insert("PingA".into(), "PingB".into());
        v.attributes.insert("PingB".into(), "PingA".into());
        v.attributes.insert("Garbage".into(), "f(x)".into());
        v.attributes.insert("JobStatus".into(), "99".into());
        assert_eq!(get(&v, "project"), Some(Value::Str("atlas".into())));
        assert_eq!(get(&v, "PROJECT"), Some(Value::Str("atlas".into())));
        assert_eq!(get(&v, "Weight"), Some(Value::Int(12)));
        assert!(eval(&v, "Project == \"atlas\" && Weight > 11").is_true());
        assert_eq!(get(&v, "SelfRef"), Some(Value::Error));
        assert_eq!(get(&v, "PingA"), Some(Value::Error));
        assert_eq!(get(&v, "Garbage"), Some(Value::Error));
        // The real status wins over a custom attribute of the same name.
        assert_eq!(get(&v, "JobStatus"), Some(Value::Int(1)));
        // The depth counter is back to zero after a runaway evaluation.
        assert_eq!(DEPTH.with(|d| d.get()), 0);
        assert_eq!(
            JobAd(&v).raw("weight").as_deref(),
            Some("RequestCpus * 2 + Bonus")
        );
        assert_eq!(JobAd(&v).raw("clusterid").as_deref(), Some("1"));
        assert_eq!(JobAd(&v).raw("exitcode"), None);
    }

    #[test]
    fn long_form_is_sorted_and_complete() {
        let mut v = view(3, 1, JobStatus::Completed);
        v.exit_code = Some(0);
        v.attributes.insert("Project".into(), " \"atlas\" ".into());
        v.attributes.insert("aaa".into(), "1 + 1".into());
        let long = long_form(&v, None);
        let names: Vec<&str> = long
            .lines()
            .map(|l| l.split(" = ").next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        assert_eq!(names, sorted);
        assert_eq!(names[0], "aaa");
        assert!(long.contains("ClusterId = 3\n"));
        assert!(long.contains("ProcId = 1\n"));
        assert!(long.contains("JobStatus = 4\n"));
        assert!(long.contains("ExitCode = 0\n"));
        assert!(long.contains("Owner = \"alice\"\n"));
        assert!(long.contains("Cmd = \"/bin/sleep\"\n"));
        assert!(long.contains("Project = \"atlas\"\n"));
        assert!(long.contains("aaa = 1 + 1\n"));
        assert!(!long.contains("RemoteHost"));
        assert!(!long.contains("HoldReason"));
        let some = long_form(&v, Some(&["owner".to_string(), "PROJECT".to_string()]));
        assert_eq!(some, "Owner = \"alice\"\nProject = \"atlas\"\n");
    }

    #[test]
    fn history_records_say_when_where_and_how_long() {
        let mut v = view(4, 2, JobStatus::Completed);
        v.exit_code = Some(3);
        v.attempts = 3;
        v.num_starts = 2;
        v.started_at = Some(1_700_000_050_000);
        v.completed_at = Some(1_700_000_095_500);
        v.last_holder = Some("worker-b".into());
        // The record's completion time, not when it entered its status.
        assert_eq!(get(&v, "CompletionDate"), Some(Value::Int(1_700_000_095)));
        // Starts and dispatches are different counts.
        assert_eq!(get(&v, "NumJobStarts"), Some(Value::Int(2)));
        assert_eq!(get(&v, "JobRunCount"), Some(Value::Int(3)));
        assert_eq!(
            get(&v, "LastRemoteHost"),
            Some(Value::Str("worker-b".into()))
        );
        assert_eq!(get(&v, "RemoteWallClockTime"), Some(Value::Real(45.0)));
        assert_eq!(get(&v, "JobStartDate"), Some(Value::Int(1_700_000_050)));
        let long = long_form(&v, None);
        assert!(long.contains("LastRemoteHost = \"worker-b\"\n"), "{long}");
        assert!(long.contains("RemoteWallClockTime = 45.0\n"), "{long}");
        assert!(long.contains("CompletionDate = 1700000095\n"), "{long}");

        // A removed job has a completion date but no exit.
        let mut x = view(4, 3, JobStatus::Removed);
        x.completed_at = Some(1_700_000_200_000);
        assert_eq!(get(&x, "CompletionDate"), Some(Value::Int(1_700_000_200)));
        assert_eq!(get(&x, "ExitCode"), None);
        assert_eq!(get(&x, "ExitBySignal"), None);
        assert_eq!(get(&x, "RemoteWallClockTime"), Some(Value::Real(0.0)));
        // A live job has no last host yet, and no wall clock time.
        let idle = view(4, 4, JobStatus::Idle);
        assert_eq!(get(&idle, "LastRemoteHost"), None);
        assert_eq!(get(&idle, "CompletionDate"), None);
        assert_eq!(get(&idle, "RemoteWallClockTime"), Some(Value::Real(0.0)));
    }
}
