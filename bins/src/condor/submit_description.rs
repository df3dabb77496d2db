//! The HTCondor submit description, as `condor_submit` reads it.
//!
//! Pure: text in, one [`QueueStatement`] per `queue` line out (the caller
//! turns them into clusters). What is read, following HTCondor's manual and
//! its `config.cpp`/`submit_utils.cpp`:
//!
//! * Lines: blanks trimmed at both ends; a line ending in `\` goes on with the
//!   next line (its leading blanks dropped, nothing inserted); a line starting
//!   with `#` is a comment (it never continues, and inside a continued line it
//!   is skipped); blank lines are ignored. A `#` elsewhere is part of the
//!   value, except after `queue N`, as in HTCondor.
//! * `name = value`: names case-insensitive; every setting, known or not, is
//!   a macro usable as `$(name)`. `cmd`, `args`, `env` and `initial_dir` are
//!   other names of `executable`, `arguments`, `environment` and `initialdir`.
//! * `+Name = value` and `MY.Name = value`: a custom job attribute, the name
//!   keeping its spelling, the value kept as raw ClassAd text.
//! * Macros are expanded lazily, when a `queue` statement takes its snapshot,
//!   so a macro may be used before the line that defines it (HTCondor looks
//!   values up at queue time too). `$(name:default)` gives `default` when
//!   `name` is undefined or empty; an undefined macro without a default is the
//!   empty string, as in HTCondor. A setting naming itself (`PATHS = $(PATHS)
//!   /x`) sees its previous value, as HTCondor's `insert_macro` arranges.
//!   `$(Cluster)`, `$(ClusterId)`, `$(Process)` and `$(ProcId)` are per job:
//!   they are left in place (spelled so that `JobSpec::expand` finds them) to
//!   be expanded when a job's files are written; the executable may not use
//!   them, since one executable is captured for a whole cluster. `$$(...)`
//!   (HTCondor's match-time substitution) is left alone.
//! * An empty value unsets a setting, as in HTCondor where an empty value
//!   reads as not given.
//!
//! Not supported, each with a clear error: the `queue ... in/from/matching`
//! forms, `if`/`include`/`@=` lines (no `=`, so "expected name = value"),
//! and expressions where numbers are expected.

use super::quoting;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use super::quoting::{parse_arguments, parse_environment};

/// One job as the submit description sets it at a `queue` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDescription {
    pub executable: String,
    pub arguments: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub log: Option<String>,
    /// Default 1, HTCondor's default.
    pub request_cpus: u32,
    /// 0 = not given.
    pub request_memory_mb: u64,
    /// 0 = not given; `request_disk` is in KB unless suffixed, rounded up here.
    pub request_disk_mb: u64,
    pub priority: i32,
    /// `+Name`/`MY.Name` attributes: name as written, value as raw ClassAd text.
    pub attributes: BTreeMap<String, String>,
    /// `initialdir`, HTCondor's `Iwd`.
    pub iwd: Option<String>,
    pub universe: Option<String>,
    /// Default true, HTCondor's default.
    pub transfer_executable: bool,
    pub getenv: bool,
    /// HTCondor's `leave_in_queue`: finished jobs stay in the queue. pilotq
    /// takes a constant only (`True`/`False`), not an expression.
    pub leave_in_queue: bool,
}

/// A `queue [N]` statement and the settings in force there.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStatement {
    pub description: JobDescription,
    /// How many jobs; 0 is allowed (queues nothing), no upper limit here.
    pub count: u32,
    /// 1-based line of the `queue` statement.
    pub line: usize,
}

/// What is wrong, and where: `line` is 1-based (the first line of a
/// continued line), `text` the offending line as written (continuations
/// joined; empty when no line is to blame).
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitError {
    pub line: usize,
    pub message: String,
    pub text: String,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "on line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SubmitError {}

/// Reads a whole submit description.
pub fn parse(text: &str) -> Result<Vec<QueueStatement>, SubmitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut settings = Settings::default();
    let mut queues = Vec::new();
    for line in logical_lines(text) {
        if line.text.contains('\0') {
            return Err(line.error("the line contains a NUL character"));
        }
        match queue_arguments(&line.text) {
            Some(rest) => {
                let count = settings.queue_count(rest).map_err(|m| line.error(m))?;
                let description = settings.describe(&line)?;
                queues.push(QueueStatement {
                    description,
                    count,
                    line: line.number,
                });
            }
            None => settings.assign(&line)?,
        }
    }
    if queues.is_empty() {
        return Err(SubmitError {
            line: text.lines().count().max(1),
            message: "no queue statement: end the description with 'queue' or 'queue N'"
                .to_string(),
            text: String::new(),
        });
    }
    Ok(queues)
}

/// A logical line: continuations joined, trimmed, not blank, not a comment.
#[derive(Debug, Clone)]
struct Line {
    number: usize,
    text: String,
}

impl Line {
    fn error(&self, message: impl Into<String>) -> SubmitError {
        SubmitError {
            line: self.number,
            message: message.into(),
            text: self.text.clone(),
        }
    }
}

/// HTCondor's `getline_implementation` (with its "new comment" rules): trim,
/// join `\`-continued lines, drop comments and blank lines.
fn logical_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut open: Option<Line> = None;
    for (index, physical) in text.lines().enumerate() {
        let t = physical.trim();
        let continues = t.ends_with('\\');
        let body = t.strip_suffix('\\').unwrap_or(t);
        match open.take() {
            Some(mut line) => {
                if !t.starts_with('#') {
                    line.text.push_str(body);
                }
                if continues {
                    open = Some(line);
                } else {
                    lines.push(line);
                }
            }
            None if t.is_empty() || t.starts_with('#') => {}
            None => {
                let line = Line {
                    number: index + 1,
                    text: body.to_string(),
                };
                if continues {
                    open = Some(line);
                } else {
                    lines.push(line);
                }
            }
        }
    }
    lines.extend(open);
    lines.retain(|l| !l.text.trim().is_empty());
    lines
}

/// If the line is a queue statement, what follows the keyword. HTCondor
/// recognises `queue` (any case) followed by a blank or the end of the line.
fn queue_arguments(text: &str) -> Option<&str> {
    let keyword = text.get(..5)?;
    let rest = &text[5..];
    let ends_word = rest.is_empty() || rest.starts_with(char::is_whitespace);
    (keyword.eq_ignore_ascii_case("queue") && ends_word).then_some(rest)
}

/// The per-job macros, lower-cased, with the spelling `JobSpec::expand` knows.
const PER_JOB_MACROS: [(&str, &str); 4] = [
    ("cluster", "$(Cluster)"),
    ("clusterid", "$(ClusterId)"),
    ("process", "$(Process)"),
    ("procid", "$(ProcId)"),
];

/// How deeply macros may refer to macros; deeper is taken for a loop
/// (`a = $(b)`, `b = $(a)`), which HTCondor would also refuse.
const MAX_MACRO_DEPTH: usize = 32;
/// A bound on an expanded value, so that macros doubling each other cannot
/// make the parser build gigabytes.
const MAX_EXPANDED_LEN: usize = 1 << 20;
/// A bound on the references substituted for one value, so that macros
/// using each other twice over cannot keep the parser busy for hours.
const MAX_SUBSTITUTIONS: usize = 100_000;

/// The lower-case name a setting is stored and looked up under.
fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "cmd" => "executable".to_string(),
        "args" => "arguments".to_string(),
        "env" => "environment".to_string(),
        "initial_dir" => "initialdir".to_string(),
        _ => lower,
    }
}

/// A ClassAd attribute name: a letter or `_`, then letters, digits, `_`.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A submit-file macro name: letters, digits, `_` and `.` (the `.` for
/// `MY.Name`).
fn is_macro_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A setting as last assigned: its raw value and where.
#[derive(Debug, Clone)]
struct Setting {
    value: String,
    line: Line,
}

impl Setting {
    fn error(&self, message: impl Into<String>) -> SubmitError {
        self.line.error(message)
    }
}

#[derive(Debug, Default)]
struct Settings {
    /// By canonical name; custom attributes under `my.<lower-case name>`.
    values: HashMap<String, Setting>,
    /// Custom attributes: lower-case name → the spelling last written.
    attributes: BTreeMap<String, String>,
}

/// What a `$(name)` becomes.
enum Substitute {
    /// Inserted as it is.
    Insert(String),
    /// Expanded in turn, then inserted.
    Expand(String),
}

/// Expands `$(name)` and `$(name:default)` in `text`, asking `resolve` what
/// each becomes. Anything that is not a well-formed reference (no closing
/// parenthesis, an odd name) is left as written; `$$(...)` is left alone.
fn expand_macros(
    text: &str,
    resolve: &mut dyn FnMut(&str, Option<&str>) -> Substitute,
) -> Result<String, String> {
    let mut budget = MAX_SUBSTITUTIONS;
    expand_nested(text, 0, &mut budget, resolve)
}

fn expand_nested(
    text: &str,
    depth: usize,
    budget: &mut usize,
    resolve: &mut dyn FnMut(&str, Option<&str>) -> Substitute,
) -> Result<String, String> {
    if depth > MAX_MACRO_DEPTH {
        return Err(format!(
            "macros nest more than {MAX_MACRO_DEPTH} deep (does a macro refer to itself \
             through another?)"
        ));
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            // `$$(attr)`: substituted by HTCondor at match time, not ours.
            i += 2;
            if bytes.get(i) == Some(&b'(') {
                if let Some(close) = closing_paren(bytes, i + 1) {
                    i = close + 1;
                }
            }
            continue;
        }
        if bytes.get(i + 1) != Some(&b'(') {
            i += 1;
            continue;
        }
        let Some(close) = closing_paren(bytes, i + 2) else {
            break; // unclosed: the rest is literal
        };
        let body = &text[i + 2..close];
        let (name, default) = match body.find(':') {
            Some(colon) => (&body[..colon], Some(&body[colon + 1..])),
            None => (body, None),
        };
        if !is_macro_name(name) {
            i += 2; // not a reference; look for references inside it
            continue;
        }
        out.push_str(&text[copied..i]);
        *budget = budget.checked_sub(1).ok_or_else(|| {
            format!("more than {MAX_SUBSTITUTIONS} macro substitutions in one value")
        })?;
        match resolve(name, default) {
            Substitute::Insert(s) => out.push_str(&s),
            Substitute::Expand(s) => out.push_str(&expand_nested(&s, depth + 1, budget, resolve)?),
        }
        if out.len() > MAX_EXPANDED_LEN {
            return Err(format!(
                "macros expand to more than {MAX_EXPANDED_LEN} bytes"
            ));
        }
        i = close + 1;
        copied = i;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The index of the `)` closing a group whose content starts at `start`.
fn closing_paren(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (j, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

impl Settings {
    /// A `name = value` line.
    fn assign(&mut self, line: &Line) -> Result<(), SubmitError> {
        let Some(eq) = line.text.find('=') else {
            return Err(line.error(format!(
                "expected 'name = value' or a queue statement, not '{}'",
                line.text
            )));
        };
        let key = line.text[..eq].trim();
        let value = line.text[eq + 1..].trim();
        let custom = key.strip_prefix('+').or_else(|| {
            key.get(..3)
                .filter(|p| p.eq_ignore_ascii_case("my."))
                .map(|_| &key[3..])
        });
        let name = match custom {
            Some(attribute) => {
                if !is_attribute_name(attribute) {
                    return Err(line.error(format!(
                        "'{attribute}' is not a valid attribute name after '{}'",
                        &key[..key.len() - attribute.len()]
                    )));
                }
                let lower = attribute.to_ascii_lowercase();
                if value.is_empty() {
                    self.attributes.remove(&lower);
                } else {
                    self.attributes.insert(lower.clone(), attribute.to_string());
                }
                format!("my.{lower}")
            }
            None => {
                if !is_macro_name(key) {
                    return Err(line.error(format!(
                        "'{key}' is not a valid setting name (lines are 'name = value')"
                    )));
                }
                let name = canonical_name(key);
                if name == "queue" {
                    return Err(line.error(
                        "'queue' is a statement, not a setting: write 'queue' or 'queue N'",
                    ));
                }
                name
            }
        };
        let value = self.expand_self(&name, value).map_err(|m| line.error(m))?;
        if value.is_empty() {
            self.values.remove(&name);
        } else {
            self.values.insert(
                name,
                Setting {
                    value,
                    line: line.clone(),
                },
            );
        }
        Ok(())
    }

    /// Replaces the setting's references to itself with its previous value,
    /// leaving every other reference for later.
    fn expand_self(&self, name: &str, value: &str) -> Result<String, String> {
        let previous = self.values.get(name).map(|s| s.value.as_str());
        expand_macros(value, &mut |n, default| {
            if canonical_name(n) != name {
                let original = match default {
                    Some(d) => format!("$({n}:{d})"),
                    None => format!("$({n})"),
                };
                Substitute::Insert(original)
            } else {
                Substitute::Insert(previous.or(default).unwrap_or("").to_string())
            }
        })
    }

    /// Fully expands a value; also says whether a per-job macro was left in.
    fn expand(&self, value: &str) -> Result<(String, bool), String> {
        let mut per_job = false;
        let expanded = expand_macros(value, &mut |n, default| {
            let name = canonical_name(n);
            if let Some((_, spelled)) = PER_JOB_MACROS.iter().find(|(m, _)| *m == name) {
                per_job = true;
                return Substitute::Insert(spelled.to_string());
            }
            match self.values.get(&name) {
                Some(s) => Substitute::Expand(s.value.clone()),
                None => Substitute::Expand(default.unwrap_or("").to_string()),
            }
        })?;
        Ok((expanded.trim().to_string(), per_job))
    }

    /// The expanded value of a setting, if it is set and not empty.
    fn get(&self, name: &str) -> Result<Option<(String, &Setting)>, SubmitError> {
        let Some(setting) = self.values.get(name) else {
            return Ok(None);
        };
        let (value, _) = self
            .expand(&setting.value)
            .map_err(|m| setting.error(format!("{name}: {m}")))?;
        Ok((!value.is_empty()).then_some((value, setting)))
    }

    fn get_string(&self, name: &str) -> Result<Option<String>, SubmitError> {
        Ok(self.get(name)?.map(|(v, _)| v))
    }

    /// A setting read by `read`; an error names the setting and the value.
    fn get_with<T>(
        &self,
        name: &str,
        expected: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SubmitError> {
        match self.get(name)? {
            None => Ok(None),
            Some((value, setting)) => read(&value).map(Some).ok_or_else(|| {
                setting.error(format!("{name} must be {expected}, not \"{value}\""))
            }),
        }
    }

    /// The count of a queue statement; `rest` is what follows `queue`.
    fn queue_count(&self, rest: &str) -> Result<u32, String> {
        // HTCondor allows a comment after the count.
        let rest = rest.find('#').map_or(rest, |hash| &rest[..hash]);
        let (rest, _) = self.expand(rest)?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| {
            ["in", "from", "matching"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
        }) {
            return Err(
                "'queue ... in/from/matching' is not supported: use 'queue' or 'queue N' \
                 (one queue statement per set of settings)"
                    .to_string(),
            );
        }
        match words.as_slice() {
            [] => Ok(1),
            [n] => n
                .parse::<u32>()
                .map_err(|_| format!("the queue count must be a whole number, not \"{n}\"")),
            [first, ..] if first.starts_with('=') => {
                Err("'queue' is a statement, not a setting: write 'queue' or 'queue N'".to_string())
            }
            _ => Err(format!(
                "unsupported queue statement 'queue {rest}': use 'queue' or 'queue N'"
            )),
        }
    }

    /// The snapshot taken at a queue statement.
    fn describe(&self, queue: &Line) -> Result<JobDescription, SubmitError> {
        let executable = match self.values.get("executable") {
            None => None,
            Some(setting) => {
                let (value, per_job) = self
                    .expand(&setting.value)
                    .map_err(|m| setting.error(format!("executable: {m}")))?;
                if per_job {
                    return Err(setting.error(
                        "the executable cannot use $(Cluster), $(ClusterId), $(Process) or \
                         $(ProcId): one executable is captured for the whole cluster",
                    ));
                }
                Some(value).filter(|v| !v.is_empty())
            }
        };
        let Some(executable) = executable else {
            return Err(
                queue.error("no executable: set 'executable = PATH' before the queue statement")
            );
        };
        let arguments = match self.get("arguments")? {
            None => Vec::new(),
            Some((value, setting)) => quoting::parse_arguments(&value)
                .map_err(|m| setting.error(format!("arguments: {m}")))?,
        };
        let environment = match self.get("environment")? {
            None => BTreeMap::new(),
            Some((value, setting)) => quoting::parse_environment(&value)
                .map_err(|m| setting.error(format!("environment: {m}")))?,
        };
        let mut attributes = BTreeMap::new();
        for (lower, spelled) in &self.attributes {
            if let Some(value) = self.get_string(&format!("my.{lower}"))? {
                attributes.insert(spelled.clone(), value);
            }
        }
        const SIZE: &str = "a size such as 1024, 512M or 2G";
        Ok(JobDescription {
            executable,
            arguments,
            environment,
            output: self.get_string("output")?,
            error: self.get_string("error")?,
            log: self.get_string("log")?,
            request_cpus: self
                .get_with("request_cpus", "a whole number of cores", |v| {
                    v.parse().ok()
                })?
                .unwrap_or(1),
            request_memory_mb: self
                .get_with("request_memory", SIZE, |v| size_in_mb(v, MB_IN_KB))?
                .unwrap_or(0),
            request_disk_mb: self
                .get_with("request_disk", SIZE, |v| size_in_mb(v, 1))?
                .unwrap_or(0),
            priority: self
                .get_with("priority", "a whole number", |v| v.parse().ok())?
                .unwrap_or(0),
            attributes,
            iwd: self.get_string("initialdir")?,
            universe: self.get_string("universe")?,
            transfer_executable: self
                .get_with("transfer_executable", "true or false", parse_bool)?
                .unwrap_or(true),
            // HTCondor 10 also takes a list of variable names here; pilotq
            // has no way to carry one, so it is refused rather than misread.
            getenv: self
                .get_with("getenv", "true or false", parse_bool)?
                .unwrap_or(false),
            leave_in_queue: self
                .get_with(
                    "leave_in_queue",
                    "true or false (pilotq takes a constant here, not an expression)",
                    parse_bool,
                )?
                .unwrap_or(false),
        })
    }
}

const MB_IN_KB: u128 = 1024;

/// HTCondor's sizes: a number, possibly with a fraction, and an optional
/// unit `K`, `M`, `G`, `T` (any case, `B` after it allowed), powers of 1024;
/// without a unit, `default_kb` KB per unit (1024 for `request_memory`, 1 for
/// `request_disk`). Rounded up to whole MB.
fn size_in_mb(value: &str, default_kb: u128) -> Option<u64> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = (&value[..split], value[split..].trim());
    let unit_kb: u128 = match unit.to_ascii_lowercase().as_str() {
        "" => default_kb,
        "k" | "kb" => 1,
        "m" | "mb" => 1 << 10,
        "g" | "gb" => 1 << 20,
        "t" | "tb" => 1 << 30,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') || fraction.len() > 30 {
        return None;
    }
    // The number as an integer over 10^fraction_digits, in checked u128.
    let mut scaled: u128 = 0;
    for d in whole.bytes().chain(fraction.bytes()) {
        scaled = scaled.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    let kb = scaled.checked_mul(unit_kb)?;
    let divisor = 10u128.pow(fraction.len() as u32) * MB_IN_KB;
    u64::try_from(kb.div_ceil(divisor)).ok()
}

/// HTCondor's boolean submit values.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<QueueStatement> {
        parse(text).unwrap_or_else(|e| panic!("{e} ({:?})", e.text))
    }

    fn one(text: &str) -> JobDescription {
        let mut q = ok(text);
        assert_eq!(q.len(), 1);
        q.remove(0).description
    }

    /// The error, checking its line and that its message contains `needle`.
    fn err(text: &str, line: usize, needle: &str) -> SubmitError {
        let e = parse(text).expect_err("expected an error");
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(needle), "{e:?} lacks {needle:?}");
        assert_eq!(e.to_string(), format!("on line {line}: {}", e.message));
        e
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn minimal_description_and_defaults() {
        let q = ok("executable = /bin/true\nqueue\n");
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].count, q[0].line), (1, 2));
        assert_eq!(
            q[0].description,
            JobDescription {
                executable: "/bin/true".into(),
                arguments: vec![],
                environment: BTreeMap::new(),
                output: None,
                error: None,
                log: None,
                request_cpus: 1,
                request_memory_mb: 0,
                request_disk_mb: 0,
                priority: 0,
                attributes: BTreeMap::new(),
                iwd: None,
                universe: None,
                transfer_executable: true,
                getenv: false,
                leave_in_queue: false,
            }
        );
    }

    #[test]
    fn every_key() {
        let d = one(r#"
            universe = vanilla
            executable = job.sh
            arguments = "one 'two with spaces' 3"
            environment = "one=1 two=""2"" three='spacey ''quoted'' value'"
            output = out.$(Cluster).$(Process)
            error = err.txt
            log = job.log
            request_cpus = 4
            request_memory = 2G
            request_disk = 1000000
            priority = -5
            initialdir = /scratch/run
            getenv = True
            transfer_executable = false
            queue 3
        "#);
        assert_eq!(d.universe.as_deref(), Some("vanilla"));
        assert_eq!(d.executable, "job.sh");
        assert_eq!(d.arguments, strings(&["one", "two with spaces", "3"]));
        assert_eq!(d.environment["one"], "1");
        assert_eq!(d.environment["two"], "\"2\"");
        assert_eq!(d.environment["three"], "spacey 'quoted' value");
        assert_eq!(d.output.as_deref(), Some("out.$(Cluster).$(Process)"));
        assert_eq!(d.error.as_deref(), Some("err.txt"));
        assert_eq!(d.log.as_deref(), Some("job.log"));
        assert_eq!(d.request_cpus, 4);
        assert_eq!(d.request_memory_mb, 2048);
        assert_eq!(d.request_disk_mb, 977); // 1,000,000 KB, rounded up
        assert_eq!(d.priority, -5);
        assert_eq!(d.iwd.as_deref(), Some("/scratch/run"));
        assert!(d.getenv);
        assert!(!d.transfer_executable);
    }

    #[test]
    fn argument_and_environment_examples() {
        let d = one("executable = x\narguments = \"3 simple arguments\"\nqueue");
        assert_eq!(d.arguments, strings(&["3", "simple", "arguments"]));
        let d = one(
            "executable = x\narguments = \"one \"\"two\"\" 'spacey ''quoted'' argument'\"\nqueue",
        );
        assert_eq!(
            d.arguments,
            strings(&["one", "\"two\"", "spacey 'quoted' argument"])
        );
        let d = one("executable = x\narguments = one \\\"two\\\" 'three'\nqueue");
        assert_eq!(d.arguments, strings(&["one", "\"two\"", "'three'"]));
        let d = one("executable = x\nenvironment = A=1;B=2\nqueue");
        assert_eq!(d.environment.len(), 2);
        assert_eq!((&*d.environment["A"], &*d.environment["B"]), ("1", "2"));
    }

    #[test]
    fn comments_blank_lines_and_continuations() {
        let q = ok("# a comment\n\
             \n\
             \t  # indented comment \\\n\
             executable = /bin/echo\n\
             arguments = one \\\n\
             \x20   two\\\n\
             # skipped inside the continuation \\\n\
             three\n\
             output = a#b\n\
             queue 2 # two of them\n");
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].count, q[0].line), (2, 10));
        let d = &q[0].description;
        assert_eq!(d.arguments, strings(&["one", "twothree"]));
        // '#' is a comment only at the start of a line (or after queue N).
        assert_eq!(d.output.as_deref(), Some("a#b"));
        // Windows line ends and a byte-order mark are fine.
        let q = ok("\u{feff}executable = x\r\nqueue\r\n");
        assert_eq!(q[0].description.executable, "x");
        // A backslash on the last line just ends it.
        assert_eq!(ok("executable = x\nqueue \\")[0].count, 1);
    }

    #[test]
    fn keys_are_case_insensitive_and_aliases_work() {
        let q = ok("Executable = /bin/a\nARGUMENTS = x\nRequest_Cpus = 2\nQUEUE 5\n");
        assert_eq!(q[0].count, 5);
        assert_eq!(q[0].description.executable, "/bin/a");
        assert_eq!(q[0].description.request_cpus, 2);
        let d = one("cmd = /bin/b\nargs = -v\nenv = \"X=1\"\ninitial_dir = /d\nQueue");
        assert_eq!(d.executable, "/bin/b");
        assert_eq!(d.arguments, strings(&["-v"]));
        assert_eq!(d.environment["X"], "1");
        assert_eq!(d.iwd.as_deref(), Some("/d"));
        // The last assignment wins whichever name it uses.
        assert_eq!(one("cmd = a\nexecutable = b\nqueue").executable, "b");
        assert_eq!(one("executable = b\ncmd = a\nqueue").executable, "a");
    }

    #[test]
    fn macros() {
        let d = one("dir = /data\n\
             executable = $(dir)/bin/job\n\
             arguments = $(mode:fast) $(nothing) $(Dir)\n\
             output = $(dir)/$(Cluster).$(Process).out\n\
             error = $(later)/$(ClusterId)_$(ProcId).err\n\
             log = $(cluster)-$(PROCESS).log\n\
             later = /late\n\
             queue");
        assert_eq!(d.executable, "/data/bin/job");
        // Default used, unknown is empty, names are case-insensitive.
        assert_eq!(d.arguments, strings(&["fast", "/data"]));
        // Per-job macros survive, spelled for JobSpec::expand.
        assert_eq!(d.output.as_deref(), Some("/data/$(Cluster).$(Process).out"));
        assert_eq!(d.error.as_deref(), Some("/late/$(ClusterId)_$(ProcId).err"));
        assert_eq!(d.log.as_deref(), Some("$(Cluster)-$(Process).log"));
        // A defined macro beats its default; a default may hold a macro.
        let d = one("m = slow\nd = x\nexecutable = e\narguments = $(m:fast) $(u:$(d)y)\nqueue");
        assert_eq!(d.arguments, strings(&["slow", "xy"]));
        // Self-reference sees the previous value; macros of macros expand.
        let d = one("a = 1\na = $(a) 2\nb = $(a) 3\nexecutable = e\nargs = $(b)\nqueue");
        assert_eq!(d.arguments, strings(&["1", "2", "3"]));
        // Settings are macros too; what is not a reference stays as written.
        let d =
            one("executable = /bin/e\narguments = $(executable) $$(Memory) $(a b) $(open\nqueue");
        assert_eq!(
            d.arguments,
            strings(&["/bin/e", "$$(Memory)", "$(a", "b)", "$(open"])
        );
    }

    #[test]
    fn macro_loops_and_blowups_are_errors() {
        err(
            "a = $(b)\nb = $(a)\nexecutable = $(a)\nqueue",
            3,
            "nest more than",
        );
        let mut text = format!("m0 = {}\n", "x".repeat(4096));
        for i in 1..30 {
            text.push_str(&format!("m{i} = $(m{})$(m{})\n", i - 1, i - 1));
        }
        text.push_str("executable = e\noutput = $(m29)\nqueue\n");
        err(&text, 32, "bytes");
        // Doubling references to nothing: no output, but 2^29 lookups.
        let text = text.replacen(&"x".repeat(4096), "", 1);
        err(&text, 32, "substitutions");
        err(
            "a = $(b)$(b)\nb = $(a)$(a)\nexecutable = $(a)\nqueue",
            3,
            "nest more than",
        );
    }

    #[test]
    fn custom_attributes() {
        let d = one("executable = e\n\
             +Project = \"abc\"\n\
             MY.Count = 3\n\
             my.Flag = true\n\
             +Where = \"$(Cluster)-$(site:cern)\"\n\
             +Gone = 1\n\
             +Gone =\n\
             queue");
        let expected: BTreeMap<String, String> = [
            ("Count", "3"),
            ("Flag", "true"),
            ("Project", "\"abc\""),
            ("Where", "\"$(Cluster)-cern\""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(d.attributes, expected);
        // The same attribute in another case is the same attribute.
        let d = one("executable = e\n+foo = 1\nMY.Foo = 2\nqueue");
        assert_eq!(
            d.attributes.into_iter().collect::<Vec<_>>(),
            [("Foo".into(), "2".into())]
        );
        err(
            "executable = e\n+ = 1\nqueue",
            2,
            "not a valid attribute name",
        );
        err(
            "executable = e\nMY.1x = 1\nqueue",
            2,
            "not a valid attribute name",
        );
    }

    #[test]
    fn each_queue_statement_takes_a_snapshot() {
        let q = ok("executable = e\n\
             arguments = first\n\
             queue 2\n\
             arguments = second\n\
             request_memory = 512\n\
             queue\n\
             queue 0\n");
        assert_eq!(q.len(), 3);
        assert_eq!((q[0].count, q[0].line), (2, 3));
        assert_eq!(q[0].description.arguments, strings(&["first"]));
        assert_eq!(q[0].description.request_memory_mb, 0);
        assert_eq!((q[1].count, q[1].line), (1, 6));
        assert_eq!(q[1].description.arguments, strings(&["second"]));
        assert_eq!(q[1].description.request_memory_mb, 512);
        assert_eq!((q[2].count, q[2].line), (0, 7));
        // Large counts are the master's business.
        assert_eq!(ok("executable = e\nqueue 2000000")[0].count, 2_000_000);
        assert_eq!(ok("n = 7\nexecutable = e\nqueue $(n)")[0].count, 7);
    }

    #[test]
    fn memory_and_disk_units() {
        let mem = |v: &str| {
            one(&format!("executable = e\nrequest_memory = {v}\nqueue")).request_memory_mb
        };
        let disk =
            |v: &str| one(&format!("executable = e\nrequest_disk = {v}\nqueue")).request_disk_mb;
        assert_eq!(mem("100"), 100);
        assert_eq!(mem("2G"), 2048);
        assert_eq!(mem("2g"), 2048);
        assert_eq!(mem("2 GB"), 2048);
        assert_eq!(mem("512M"), 512);
        assert_eq!(mem("1536k"), 2); // 1.5 MB, rounded up
        assert_eq!(mem("1T"), 1 << 20);
        assert_eq!(mem("1.5G"), 1536);
        assert_eq!(disk("1024"), 1);
        assert_eq!(disk("1025"), 2);
        assert_eq!(disk("1"), 1);
        assert_eq!(disk("0"), 0);
        assert_eq!(disk("10M"), 10);
        assert_eq!(disk("3G"), 3072);
        assert_eq!(disk("2t"), 2 << 20);
        assert_eq!(disk("2048KB"), 2);
    }

    #[test]
    fn errors_name_the_line() {
        err("executable = e\n", 1, "no queue statement");
        err(
            "# nothing\n\nexecutable = e\n# more\n",
            4,
            "no queue statement",
        );
        err("", 1, "no queue statement");
        err("arguments = a\n\nqueue\n", 3, "no executable");
        err("executable = $(undefined)\nqueue\n", 2, "no executable");
        err(
            "executable = e\nqueue\ncmd =\nqueue 2\n",
            4,
            "no executable",
        );
        let e = err("executable = e\nrequest_cpus = four\nqueue", 2, "\"four\"");
        assert_eq!(e.text, "request_cpus = four");
        err(
            "executable = e\nrequest_cpus = -1\nqueue",
            2,
            "request_cpus",
        );
        err("executable = e\nrequest_memory = 2X\nqueue", 2, "\"2X\"");
        err("executable = e\nrequest_disk = lots\nqueue", 2, "\"lots\"");
        err(
            "executable = e\nrequest_memory = 99999999999999999999T\nqueue",
            2,
            "request_memory",
        );
        err("executable = e\npriority = high\nqueue", 2, "\"high\"");
        err(
            "executable = e\ngetenv = PATH, HOME\nqueue",
            2,
            "true or false",
        );
        let e = err(
            "executable = e\narguments = \"one 'two\"\nqueue",
            2,
            "unbalanced single quote",
        );
        assert!(e.message.starts_with("arguments: "));
        err(
            "executable = e\narguments = \"one\nqueue",
            2,
            "unbalanced double quote",
        );
        err(
            "executable = e\nenvironment = A=1;B\nqueue",
            2,
            "'B' has no '='",
        );
        err(
            "executable = e\nenv = \"=x\"\nqueue",
            2,
            "empty variable name",
        );
        err("executable = e\nqueue from jobs.txt\n", 2, "not supported");
        err("executable = e\nqueue name in (a b)\n", 2, "not supported");
        err("executable = e\nQueue Matching *.dat\n", 2, "not supported");
        err("executable = e\nqueue five\n", 2, "whole number");
        err("executable = e\nqueue -1\n", 2, "whole number");
        err(
            "executable = e\nqueue 1 2\n",
            2,
            "unsupported queue statement",
        );
        err("executable = e\nqueue = 2\n", 2, "is a statement");
        err("executable = e\nqueue=2\n", 2, "is a statement");
        err("executable e\nqueue\n", 1, "expected 'name = value'");
        err(
            "executable = e\nif true\nqueue\n",
            2,
            "expected 'name = value'",
        );
        err("exe cutable = e\nqueue\n", 1, "not a valid setting name");
        err("executable = e\noutput = a\0b\nqueue\n", 2, "NUL");
        // Continued lines report their first line; errors at queue time
        // report the line that made the setting.
        err("executable = e\nrequest_cpus = \\\n  x\nqueue", 2, "\"x\"");
        let e = err(
            "executable = /bin/$(Cluster)\n\nqueue\n",
            1,
            "executable cannot use",
        );
        assert_eq!(e.text, "executable = /bin/$(Cluster)");
        err(
            "p = $(process)\nexecutable = run$(p)\nqueue\n",
            2,
            "executable cannot use",
        );
    }

    /// A tiny deterministic xorshift64 generator (no proptest in this crate).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics() {
        const PIECES: [&str; 32] = [
            "executable",
            "cmd",
            " = ",
            "=",
            "queue",
            "QUEUE ",
            " 3",
            "0",
            "\n",
            "\\\n",
            "#",
            "$(",
            ")",
            ":",
            "$$(",
            "\"",
            "\"\"",
            "'",
            "''",
            "\\\"",
            "+A",
            "MY.",
            " in ",
            "from",
            "arguments",
            "environment",
            "request_memory",
            "request_disk",
            "G",
            ";",
            "x",
            "\u{e9}\u{1f600}",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let len = rng.below(64);
            let text = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect()
            };
            let _ = parse(&text);
            let _ = parse(&format!("executable = e\n{text}\nqueue\n"));
            let _ = parse_arguments(&text);
            let _ = parse_environment(&text);
        }
    }
}
