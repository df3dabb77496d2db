//! ClassAd values and how HTCondor prints them.

use std::fmt::Write as _;

/// The value of a ClassAd expression: the literal types the constraint subset
/// can produce, plus the two exceptional values of ClassAd's three-valued
/// logic (`undefined`: a missing attribute, `error`: a type mismatch).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Real(f64),
    Str(String),
    Bool(bool),
    Undefined,
    Error,
}

impl Value {
    /// Whether a constraint with this value selects a job: only `true` does
    /// (`undefined`, `error` and every non-boolean value do not).
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// The ClassAd text form, as `condor_q -l` prints it: strings quoted with
    /// backslash escapes, reals as HTCondor's old-ClassAd unparser does.
    pub fn to_classad_string(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Real(r) => real_to_classad(*r),
            Value::Str(s) => quote(s),
            Value::Bool(b) => b.to_string(),
            Value::Undefined => "undefined".to_string(),
            Value::Error => "error".to_string(),
        }
    }

    /// The form `-format %s` and `-af` print: strings bare, everything else
    /// as [`Value::to_classad_string`].
    pub fn to_plain_string(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.to_classad_string(),
        }
    }
}

/// A string as a ClassAd string literal. Escapes exactly what the lexer
/// unescapes, so the result always reads back as the same string.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A real as HTCondor's unparser prints it (classad sink.cpp, old-ClassAd
/// form): zero as `%.1f`, NaN/infinities as `real("…")`, anything else as
/// `%.16G` with `.0` tacked on when that looks like an integer.
fn real_to_classad(r: f64) -> String {
    if r == 0.0 {
        return if r.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    if r.is_nan() {
        return "real(\"NaN\")".to_string();
    }
    if r.is_infinite() {
        let sign = if r < 0.0 { "-" } else { "" };
        return format!("real(\"{sign}INF\")");
    }
    let mut s = format_g(r, 16);
    if !s.contains(['.', 'E']) {
        s.push_str(".0");
    }
    s
}

/// C's `%.{precision}G` for a finite, non-zero `r`: fixed notation when the
/// decimal exponent X satisfies -4 <= X < precision, exponent notation
/// (`1.5E+20`, at least two exponent digits) otherwise; trailing zeros of the
/// fraction removed.
fn format_g(r: f64, precision: usize) -> String {
    // The exponent after rounding to `precision` significant digits decides
    // the notation, exactly as C does.
    let sci = format!("{:.*e}", precision - 1, r);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mut out = strip_fraction_zeros(mantissa.to_string());
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "E{sign}{:02}", exp.unsigned_abs());
        out
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(format!("{r:.decimals$}"))
    }
}

fn strip_fraction_zeros(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
