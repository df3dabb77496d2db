//! # `-format FMT ATTR` and `-af[:qualifiers] ATTR…` — HTCondor's print masks
//!
//! `condor_q` and `condor_status` print chosen attributes of each ad through
//! a *print mask*: a list of columns, each a printf-like format applied to an
//! attribute or a ClassAd expression, plus separators. The rules follow
//! HTCondor's `AttrListPrintMask` (`ad_printmask.cpp`) and
//! `parse_autoformat_args`:
//!
//! - `-format FMT ATTR` adds a column with no separators: nothing is printed
//!   between columns or after a row unless FMT says so (`'%d\n'`). FMT's
//!   escapes (`\n`, `\t`, `\\`, `\"`, octal `\ooo`, …) are collapsed first.
//! - One conversion per format: `%d %i %o %u %x %X %c` (integers), `%e %E %f
//!   %F %g %G %a %A` (reals), `%s` (strings), `%v` / `%V` (any value, `%V`
//!   quoting strings as `-long` does), `%r` (the unevaluated expression),
//!   `%T` (seconds as `D+HH:MM:SS`), `%Y` (a Unix time as a local date), `%p`;
//!   with C's flags (`- + space # 0`), width and precision; length modifiers
//!   (`l`, `ll`, `h`, …) are accepted and ignored (values are 64-bit). `%%` is
//!   a percent sign. A format without any conversion prints as it stands.
//! - A value of the wrong type prints *nothing at all* for that column — not
//!   even FMT's literal text or its `\n` — exactly as HTCondor: `%d` of a
//!   string, `%s` or `%d` of a missing attribute. Reals given to `%d` are
//!   truncated, booleans are 0/1. `%v` prints every value, `undefined` for a
//!   missing attribute. `%s` of an attribute that exists but is not a string
//!   prints its ClassAd text (`%s` of `ClusterId` prints `12`).
//! - `-af ATTR…` adds `%v` columns separated by a space, one line per ad.
//!   Qualifiers after a colon (combinable, `-af:jh`): `j` job id first
//!   (`C.P`), `h` a heading line of the attribute names (columns padded to
//!   the widest value), `l` label each value `Name = value`, `V` `%V`, `r`
//!   `%r`, `t` tab before each column instead of a space, `,` a comma after
//!   each column but the last, `n` a newline after each column but the last,
//!   `g` a blank line between ads and no space before columns.
//!
//! Attribute arguments may be any ClassAd expression of the subset
//! [`crate::condor::classad`] parses; one that does not parse is an error
//! (HTCondor would print nothing for it, which a job-counting client would
//! read as "no jobs").

use super::classad::{Ad, Expr, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// An ad a print mask can read: values, and for `%r` (and `%s` of a
/// non-string) an attribute's unevaluated text.
pub trait FormatAd: Ad {
    /// The unevaluated ClassAd text of attribute `name` (lowercase), if the
    /// ad has it. By default the value's ClassAd form.
    fn raw(&self, name: &str) -> Option<String> {
        self.lookup(name).map(|v| v.to_classad_string())
    }
}

impl FormatAd for HashMap<String, Value> {}

/// Where a column's value comes from: an attribute name (looked up first as
/// such, as HTCondor does) or any other expression.
#[derive(Debug, Clone)]
pub struct Source {
    /// As given on the command line (headings, `:l` labels).
    pub text: String,
    /// Lowercase name when `text` is a plain attribute name.
    attr: Option<String>,
    expr: Expr,
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, String> {
        let expr =
            Expr::parse(text).map_err(|e| format!("'{text}' is not a ClassAd expression: {e}"))?;
        let trimmed = text.trim();
        let is_name = !trimmed.is_empty()
            && trimmed
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        // Keywords (`true`, `undefined`) are literals, not attribute names.
        let attr = (is_name && expr.references().len() == 1).then(|| trimmed.to_ascii_lowercase());
        Ok(Source {
            text: text.to_string(),
            attr,
            expr,
        })
    }
}

/// What kind of value a conversion wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Char,
    Float,
    Str,
    Value,
    Raw,
    Time,
    Date,
    Pointer,
}

/// One `%…` conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub left: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub zero: bool,
    pub width: usize,
    pub precision: Option<usize>,
    pub conv: char,
}

impl Spec {
    fn kind(&self) -> Kind {
        match self.conv {
            'd' | 'i' | 'o' | 'u' | 'x' | 'X' => Kind::Int,
            'c' => Kind::Char,
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'a' | 'A' => Kind::Float,
            's' => Kind::Str,
            'v' | 'V' => Kind::Value,
            'r' | 'R' => Kind::Raw,
            'T' => Kind::Time,
            'Y' => Kind::Date,
            _ => Kind::Pointer,
        }
    }
}

/// A parsed format: literal text, at most one conversion, literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    before: String,
    spec: Option<Spec>,
    after: String,
}

impl Format {
    /// Parses FMT as given on the command line (escapes not yet collapsed).
    pub fn parse(fmt: &str) -> Format {
        Format::parse_collapsed(&collapse_escapes(fmt))
    }

    fn parse_collapsed(fmt: &str) -> Format {
        let chars: Vec<char> = fmt.chars().collect();
        let mut before = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '%' {
                before.push(chars[i]);
                i += 1;
                continue;
            }
            if chars.get(i + 1) == Some(&'%') {
                before.push('%');
                i += 2;
                continue;
            }
            if let Some((spec, next)) = parse_spec(&chars, i + 1) {
                let rest: String = chars[next..].iter().collect();
                return Format {
                    before,
                    spec: Some(spec),
                    after: rest.replace("%%", "%"),
                };
            }
            // Not a conversion HTCondor knows: no conversion at all.
            break;
        }
        // No conversion: HTCondor prints the format exactly as it stands.
        Format {
            before: fmt.to_string(),
            spec: None,
            after: String::new(),
        }
    }

    pub fn spec(&self) -> Option<&Spec> {
        self.spec.as_ref()
    }
}

/// Parses `[flags][width][.precision][length]conv` starting at `chars[i]`;
/// returns the spec and the index after it.
fn parse_spec(chars: &[char], mut i: usize) -> Option<(Spec, usize)> {
    let mut spec = Spec::default();
    while let Some(&c) = chars.get(i) {
        match c {
            '-' => spec.left = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => spec.alt = true,
            '0' => spec.zero = true,
            '\'' => {}
            _ => break,
        }
        i += 1;
    }
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        spec.width = spec.width.saturating_mul(10).saturating_add(d as usize);
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        let mut p = 0usize;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            p = p.saturating_mul(10).saturating_add(d as usize);
            i += 1;
        }
        spec.precision = Some(p);
    }
    while matches!(chars.get(i), Some('h' | 'l' | 'L' | 'q' | 'j' | 'z' | 't')) {
        i += 1;
    }
    let conv = *chars.get(i)?;
    if !"diouxXceEfFgGaAsvVrRTYp".contains(conv) {
        return None;
    }
    spec.conv = conv;
    Some((spec, i + 1))
}

/// HTCondor's `collapse_escapes`: C escapes in a format string.
pub fn collapse_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some(c @ ('\\' | '"' | '\'' | '?')) => out.push(c),
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(n) => {
                            v = v * 8 + n;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from((v & 0xff) as u8));
            }
            Some('x') => {
                let mut v = 0u32;
                let mut any = false;
                while let Some(n) = chars.peek().and_then(|c| c.to_digit(16)) {
                    v = (v * 16 + n) & 0xff;
                    any = true;
                    chars.next();
                }
                if any {
                    out.push(char::from(v as u8));
                } else {
                    out.push_str("\\x");
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// One column of a print mask.
#[derive(Debug, Clone)]
struct Column {
    format: Format,
    source: Source,
    heading: String,
    /// Never print the column prefix before this column (`:j`'s proc id).
    no_prefix: bool,
    /// Never print the column suffix after this column (`:j`'s cluster id).
    no_suffix: bool,
    /// `:h` columns grow to their widest value; left-aligned unless `right`.
    auto_width: usize,
    right: bool,
}

/// A list of columns and the separators around them.
#[derive(Debug, Clone, Default)]
pub struct PrintMask {
    columns: Vec<Column>,
    row_prefix: &'static str,
    col_prefix: &'static str,
    col_suffix: &'static str,
    row_suffix: &'static str,
    headings: bool,
}

impl PrintMask {
    pub fn new() -> PrintMask {
        PrintMask::default()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// `-format FMT ATTR`.
    pub fn add_format(&mut self, fmt: &str, attr: &str) -> Result<(), String> {
        let source = Source::parse(attr)?;
        self.columns.push(Column {
            format: Format::parse(fmt),
            heading: source.text.clone(),
            source,
            no_prefix: false,
            no_suffix: false,
            auto_width: 0,
            right: false,
        });
        Ok(())
    }

    /// `-af[:qualifiers] ATTR…`; `qualifiers` is the text after the colon
    /// (empty for plain `-af`).
    pub fn add_autoformat(&mut self, qualifiers: &str, attrs: &[String]) -> Result<(), String> {
        let (mut label, mut cap_v, mut raw, mut headings, mut job_id) =
            (false, false, false, false, false);
        let mut row_prefix = "";
        let mut col_prefix = " ";
        let mut col_suffix = "";
        for q in qualifiers.chars() {
            match q {
                ',' => col_suffix = ",",
                'n' => col_suffix = "\n",
                'g' => {
                    col_prefix = "";
                    row_prefix = "\n";
                }
                't' => col_prefix = "\t",
                'l' => label = true,
                'V' => cap_v = true,
                'r' | 'o' => raw = true,
                'h' => headings = true,
                'j' => job_id = true,
                // HTCondor ignores qualifiers it does not know; so do we
                // for its display-only ones (`T`, `Y`, …).
                _ => {}
            }
        }
        self.row_prefix = row_prefix;
        self.col_prefix = col_prefix;
        self.col_suffix = col_suffix;
        self.row_suffix = "\n";
        self.headings |= headings;
        let headings = self.headings;
        if job_id {
            let (cfmt, pfmt) = match (headings, label) {
                (true, _) => ("%4d.", "%-3d"),
                (false, true) => ("ID = %d.", "%d"),
                (false, false) => ("%d.", "%d"),
            };
            self.columns.push(Column {
                format: Format::parse(cfmt),
                source: Source::parse("ClusterId")?,
                heading: " ID".to_string(),
                no_prefix: false,
                no_suffix: true,
                auto_width: if headings { 5 } else { 0 },
                right: true,
            });
            self.columns.push(Column {
                format: Format::parse(pfmt),
                source: Source::parse("ProcId")?,
                heading: " ".to_string(),
                no_prefix: true,
                no_suffix: false,
                auto_width: if headings { 3 } else { 0 },
                right: false,
            });
        }
        let conv = if raw {
            "%r"
        } else if cap_v {
            "%V"
        } else {
            "%v"
        };
        for attr in attrs {
            let source = Source::parse(attr)?;
            let fmt = if label && !headings {
                // The label is literal text: a `%` in it must stay one.
                format!("{} = {conv}", attr.replace('%', "%%"))
            } else {
                conv.to_string()
            };
            self.columns.push(Column {
                format: Format::parse_collapsed(&fmt),
                heading: attr.clone(),
                source,
                no_prefix: false,
                no_suffix: false,
                auto_width: if headings { attr.len() } else { 0 },
                right: false,
            });
        }
        Ok(())
    }

    /// Renders every ad (with the heading line first for `:h`).
    pub fn render<A, I>(&self, ads: I, out: &mut impl std::io::Write) -> std::io::Result<()>
    where
        A: FormatAd,
        I: IntoIterator<Item = A>,
    {
        let mut line = String::new();
        let mut cells: Vec<Option<String>> = Vec::with_capacity(self.columns.len());
        if !self.headings {
            for ad in ads {
                line.clear();
                cells.clear();
                cells.extend(self.columns.iter().map(|c| cell(c, &ad)));
                self.write_row(&cells, None, &mut line);
                out.write_all(line.as_bytes())?;
            }
            return Ok(());
        }
        // Headings: widths are the widest of heading and values.
        let rows: Vec<Vec<Option<String>>> = ads
            .into_iter()
            .map(|ad| self.columns.iter().map(|c| cell(c, &ad)).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.auto_width).collect();
        for row in &rows {
            for (w, v) in widths.iter_mut().zip(row) {
                *w = (*w).max(v.as_deref().map_or(0, |s| s.chars().count()));
            }
        }
        if !rows.is_empty() {
            let heads: Vec<Option<String>> = self
                .columns
                .iter()
                .map(|c| Some(c.heading.clone()))
                .collect();
            line.clear();
            self.write_row_aligned(&heads, &widths, true, &mut line);
            out.write_all(line.as_bytes())?;
        }
        for row in &rows {
            line.clear();
            self.write_row(row, Some(&widths), &mut line);
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// The text of one ad's row.
    pub fn render_one(&self, ad: &dyn FormatAd) -> String {
        let cells: Vec<Option<String>> = self.columns.iter().map(|c| cell(c, ad)).collect();
        let mut line = String::new();
        self.write_row(&cells, None, &mut line);
        line
    }

    fn write_row(&self, cells: &[Option<String>], widths: Option<&[usize]>, out: &mut String) {
        match widths {
            Some(w) => self.write_row_aligned(cells, w, false, out),
            None => {
                let zero = vec![0; cells.len()];
                self.write_row_aligned(cells, &zero, false, out)
            }
        }
    }

    fn write_row_aligned(
        &self,
        cells: &[Option<String>],
        widths: &[usize],
        heading: bool,
        out: &mut String,
    ) {
        out.push_str(self.row_prefix);
        let n = self.columns.len();
        for (i, ((col, value), &width)) in self.columns.iter().zip(cells).zip(widths).enumerate() {
            if i > 0 && !col.no_prefix {
                out.push_str(self.col_prefix);
            }
            let text = value.as_deref().unwrap_or("");
            let pad = width.saturating_sub(text.chars().count());
            // Headings are always left-aligned (HTCondor: `%-Ns`).
            if col.right && !heading {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(text);
            } else {
                out.push_str(text);
                out.extend(std::iter::repeat_n(' ', pad));
            }
            if i + 1 < n && !col.no_suffix {
                out.push_str(self.col_suffix);
            }
        }
        out.push_str(self.row_suffix);
    }
}

/// The text one column prints for one ad; `None` when the value does not
/// suit the conversion (HTCondor then prints nothing for the column).
fn cell(col: &Column, ad: &dyn FormatAd) -> Option<String> {
    let Some(spec) = &col.format.spec else {
        return Some(col.format.before.clone());
    };
    let kind = spec.kind();
    let present = col
        .source
        .attr
        .as_deref()
        .and_then(|name| ad.lookup(name).map(|v| (name, v)));
    let value: Value = match (present, kind) {
        // `%s` of an attribute that is not a string prints its text.
        (Some((_, Value::Str(s))), Kind::Str) => Value::Str(s),
        (Some((name, _)), Kind::Str | Kind::Raw) => Value::Str(ad.raw(name)?),
        (Some((_, v)), _) => v,
        (None, Kind::Raw) => Value::Str(if col.source.attr.is_some() {
            "undefined".to_string()
        } else {
            col.source.expr.to_string()
        }),
        (None, _) => col.source.expr.eval(ad),
    };
    let mut out = String::with_capacity(col.format.before.len() + col.format.after.len() + 16);
    out.push_str(&col.format.before);
    match kind {
        Kind::Int | Kind::Char | Kind::Pointer => {
            let i = as_int(&value)?;
            match kind {
                Kind::Int => fmt_int(spec, i, &mut out),
                Kind::Char => {
                    let c = char::from(i as u8).to_string();
                    pad(spec, &c, &mut out);
                }
                _ => {
                    let p = if i == 0 {
                        "(nil)".to_string()
                    } else {
                        format!("0x{i:x}")
                    };
                    pad(spec, &p, &mut out);
                }
            }
        }
        Kind::Float => fmt_float(spec, as_real(&value)?, &mut out),
        Kind::Time => {
            let secs = as_int(&value)?;
            let text = crate::commands::q::run_time(secs.max(0) as u64 * 1000);
            pad(spec, &text, &mut out);
        }
        Kind::Date => pad(spec, &local_date(as_int(&value)?), &mut out),
        Kind::Str | Kind::Raw => {
            let Value::Str(s) = &value else { return None };
            fmt_str(spec, s, &mut out);
        }
        Kind::Value => {
            let text = match (&value, spec.conv) {
                (Value::Str(s), 'v') => s.clone(),
                (v, _) => v.to_classad_string(),
            };
            fmt_str(spec, &text, &mut out);
        }
    }
    out.push_str(&col.format.after);
    Some(out)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        // C's (long long) cast: truncation toward zero, saturating.
        Value::Real(r) if r.is_finite() => Some(*r as i64),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn as_real(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Real(r) => Some(*r),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// `%s` with width and precision (precision counts characters).
fn fmt_str(spec: &Spec, s: &str, out: &mut String) {
    match spec.precision {
        Some(p) if s.chars().count() > p => {
            let cut: String = s.chars().take(p).collect();
            pad(spec, &cut, out);
        }
        _ => pad(spec, s, out),
    }
}

/// Pads `text` with spaces to the spec's width.
fn pad(spec: &Spec, text: &str, out: &mut String) {
    let n = spec.width.saturating_sub(text.chars().count());
    if spec.left {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', n));
    } else {
        out.extend(std::iter::repeat_n(' ', n));
        out.push_str(text);
    }
}

/// Pads `sign`+`prefix`+`digits` to the width as C does: zeros go between
/// the prefix and the digits (flag `0`, not with `-`), spaces outside.
fn pad_number(
    spec: &Spec,
    sign: &str,
    prefix: &str,
    digits: &str,
    zero_ok: bool,
    out: &mut String,
) {
    let len = sign.len() + prefix.len() + digits.chars().count();
    let n = spec.width.saturating_sub(len);
    if spec.left {
        out.push_str(sign);
        out.push_str(prefix);
        out.push_str(digits);
        out.extend(std::iter::repeat_n(' ', n));
    } else if spec.zero && zero_ok {
        out.push_str(sign);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', n));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', n));
        out.push_str(sign);
        out.push_str(prefix);
        out.push_str(digits);
    }
}

fn sign_of(negative: bool, spec: &Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// `%d %i %o %u %x %X` of a 64-bit value (unsigned conversions see the
/// two's-complement bits, as C does).
fn fmt_int(spec: &Spec, i: i64, out: &mut String) {
    let (negative, mut digits, prefix) = match spec.conv {
        'o' => {
            let d = format!("{:o}", i as u64);
            (false, d, "")
        }
        'u' => (false, (i as u64).to_string(), ""),
        'x' => (
            false,
            format!("{:x}", i as u64),
            if spec.alt && i != 0 { "0x" } else { "" },
        ),
        'X' => (
            false,
            format!("{:X}", i as u64),
            if spec.alt && i != 0 { "0X" } else { "" },
        ),
        _ => (i < 0, i.unsigned_abs().to_string(), ""),
    };
    if let Some(p) = spec.precision {
        if p == 0 && i == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits.insert_str(0, &"0".repeat(p - digits.len()));
        }
    }
    if spec.conv == 'o' && spec.alt && !digits.starts_with('0') {
        digits.insert(0, '0');
    }
    let sign = if matches!(spec.conv, 'd' | 'i') {
        sign_of(negative, spec)
    } else {
        ""
    };
    pad_number(spec, sign, prefix, &digits, spec.precision.is_none(), out);
}

/// `%f %e %g` (and `%a`, printed as `%e`) as C's printf prints them.
fn fmt_float(spec: &Spec, r: f64, out: &mut String) {
    let upper = spec.conv.is_ascii_uppercase();
    let sign = sign_of(r.is_sign_negative() && !r.is_nan(), spec);
    if !r.is_finite() {
        let text = match (r.is_nan(), upper) {
            (true, false) => "nan",
            (true, true) => "NAN",
            (false, false) => "inf",
            (false, true) => "INF",
        };
        pad_number(spec, sign, "", text, false, out);
        return;
    }
    let a = r.abs();
    let precision = spec.precision.unwrap_or(6);
    let mut body = match spec.conv {
        'f' | 'F' => {
            let mut s = format!("{a:.precision$}");
            if spec.alt && precision == 0 {
                s.push('.');
            }
            s
        }
        'e' | 'E' | 'a' | 'A' => exp_form(a, precision, spec.alt),
        _ => {
            // %g: precision 0 means 1; exponent form when X < -4 or X >= P.
            let p = precision.max(1);
            let sci = format!("{:.*e}", p - 1, a);
            let exp: i32 = sci
                .split_once('e')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            let mut s = if exp < -4 || exp >= p as i32 {
                exp_form(a, p - 1, spec.alt)
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                let mut s = format!("{a:.decimals$}");
                if spec.alt && decimals == 0 {
                    s.push('.');
                }
                s
            };
            if !spec.alt {
                s = strip_trailing_zeros(&s);
            }
            s
        }
    };
    if upper {
        body = body.to_ascii_uppercase();
    }
    pad_number(spec, sign, "", &body, true, out);
}

/// `d.ddde±XX` with `precision` decimals and at least two exponent digits.
fn exp_form(a: f64, precision: usize, alt: bool) -> String {
    let sci = format!("{a:.precision$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut m = mantissa.to_string();
    if alt && precision == 0 {
        m.push('.');
    }
    let _ = write!(
        m,
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    );
    m
}

/// `%g` drops trailing zeros of the fraction (and a bare point), in the
/// mantissa only.
fn strip_trailing_zeros(s: &str) -> String {
    let (mantissa, exp) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    format!("{mantissa}{exp}")
}

/// A Unix time as HTCondor's `format_date`: local `M/D  HH:MM` (month and
/// day not zero-padded, 11 characters).
pub fn local_date(secs: i64) -> String {
    let tm = local_tm(secs);
    format!(
        "{:>2}/{:<2} {:02}:{:02}",
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// The broken-down local time of a Unix time (the `TZ` rules of the
/// machine, as HTCondor's tools print times).
pub fn local_tm(secs: i64) -> libc::tm {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain old data, so all-zero is a valid value;
    // localtime_r only writes into the struct we own, and is thread-safe.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return std::mem::zeroed();
        }
        tm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    }

    fn sample() -> HashMap<String, Value> {
        ad(&[
            ("ClusterId", Value::Int(12)),
            ("ProcId", Value::Int(3)),
            ("Owner", Value::Str("alice".into())),
            ("Rate", Value::Real(2.5)),
            ("Neg", Value::Int(-42)),
            ("Flag", Value::Bool(true)),
            ("Quote", Value::Str("say \"hi\"".into())),
        ])
    }

    fn one(fmt: &str, attr: &str) -> String {
        let mut m = PrintMask::new();
        m.add_format(fmt, attr).unwrap();
        m.render_one(&sample())
    }

    fn af(quals: &str, attrs: &[&str], ads: &[HashMap<String, Value>]) -> String {
        let mut m = PrintMask::new();
        let attrs: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
        m.add_autoformat(quals, &attrs).unwrap();
        let mut out = Vec::new();
        m.render(ads.iter().cloned(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integer_conversions_with_flags_width_and_precision() {
        assert_eq!(one("%d\n", "ClusterId"), "12\n");
        assert_eq!(one("%i", "ClusterId"), "12");
        assert_eq!(one("[%5d]", "ClusterId"), "[   12]");
        assert_eq!(one("[%-5d]", "ClusterId"), "[12   ]");
        assert_eq!(one("[%05d]", "ClusterId"), "[00012]");
        assert_eq!(one("[%05d]", "Neg"), "[-0042]");
        assert_eq!(one("[%+d]", "ClusterId"), "[+12]");
        assert_eq!(one("[% d]", "ClusterId"), "[ 12]");
        assert_eq!(one("[%.4d]", "ClusterId"), "[0012]");
        assert_eq!(one("[%6.4d]", "Neg"), "[ -0042]");
        assert_eq!(one("%ld", "ClusterId"), "12");
        assert_eq!(one("%lld", "ClusterId"), "12");
        assert_eq!(one("%x", "ClusterId"), "c");
        assert_eq!(one("%X", "ClusterId"), "C");
        assert_eq!(one("%#x", "ClusterId"), "0xc");
        assert_eq!(one("%o", "ClusterId"), "14");
        assert_eq!(one("%#o", "ClusterId"), "014");
        assert_eq!(one("%u", "ClusterId"), "12");
        assert_eq!(one("%c", "65"), "A");
        assert_eq!(one("[%3c]", "65"), "[  A]");
        // Reals truncate, booleans are 0/1.
        assert_eq!(one("%d", "Rate"), "2");
        assert_eq!(one("%d", "Flag"), "1");
        assert_eq!(one("%d", "ClusterId + ProcId"), "15");
    }

    #[test]
    fn float_conversions() {
        assert_eq!(one("%f", "Rate"), "2.500000");
        assert_eq!(one("%.2f", "Rate"), "2.50");
        assert_eq!(one("[%8.2f]", "Rate"), "[    2.50]");
        assert_eq!(one("[%-8.1f]", "Rate"), "[2.5     ]");
        assert_eq!(one("[%08.2f]", "Neg"), "[-0042.00]");
        assert_eq!(one("%.0f", "Rate"), "2");
        assert_eq!(one("%f", "ClusterId"), "12.000000");
        assert_eq!(one("%e", "Rate"), "2.500000e+00");
        assert_eq!(one("%.2E", "1234.5"), "1.23E+03");
        assert_eq!(one("%g", "Rate"), "2.5");
        assert_eq!(one("%g", "100000"), "100000");
        assert_eq!(one("%g", "1000000"), "1e+06");
        assert_eq!(one("%g", "0.0001"), "0.0001");
        assert_eq!(one("%g", "0.00001"), "1e-05");
        assert_eq!(one("%.3g", "3.14159"), "3.14");
        assert_eq!(one("%G", "0.00001"), "1E-05");
        assert_eq!(one("%+.1f", "Rate"), "+2.5");
    }

    #[test]
    fn string_and_value_conversions() {
        assert_eq!(one("%s\n", "Owner"), "alice\n");
        assert_eq!(one("[%10s]", "Owner"), "[     alice]");
        assert_eq!(one("[%-10s]", "Owner"), "[alice     ]");
        assert_eq!(one("[%.3s]", "Owner"), "[ali]");
        assert_eq!(one("[%-6.2s]", "Owner"), "[al    ]");
        // %s of an attribute that is not a string: its ClassAd text.
        assert_eq!(one("%s", "ClusterId"), "12");
        assert_eq!(one("%s", "Flag"), "true");
        assert_eq!(one("%v", "Owner"), "alice");
        assert_eq!(one("%V", "Owner"), "\"alice\"");
        assert_eq!(one("%V", "Quote"), "\"say \\\"hi\\\"\"");
        assert_eq!(one("%v", "ClusterId"), "12");
        assert_eq!(one("%v", "Rate"), "2.5");
        assert_eq!(one("[%-8v]", "Owner"), "[alice   ]");
        assert_eq!(one("%v", "Owner == \"alice\""), "true");
        assert_eq!(one("%s", "strcat_is_not_needed"), "");
        assert_eq!(one("%r", "ClusterId"), "12");
        assert_eq!(one("%r", "Missing"), "undefined");
        assert_eq!(one("%r", "ClusterId+1"), "clusterid + 1");
        assert_eq!(one("%T", "3661"), "0+01:01:01");
    }

    #[test]
    fn wrong_types_and_undefined_print_nothing_but_v_says_undefined() {
        assert_eq!(one("%s\n", "Missing"), "");
        assert_eq!(one("%d\n", "Missing"), "");
        assert_eq!(one("%d\n", "Owner"), "");
        assert_eq!(one("%f\n", "Owner"), "");
        assert_eq!(one("%s\n", "ClusterId + 1"), "");
        assert_eq!(one("%v\n", "Missing"), "undefined\n");
        assert_eq!(one("%V\n", "Missing"), "undefined\n");
        assert_eq!(one("%v\n", "Owner + 1"), "error\n");
    }

    #[test]
    fn escapes_percent_and_formats_without_conversion() {
        assert_eq!(one("a\\tb\\\\c%d\\n", "ClusterId"), "a\tb\\c12\n");
        assert_eq!(one("100%% %d%%", "ClusterId"), "100% 12%");
        assert_eq!(one("\\n", "Missing"), "\n");
        assert_eq!(one("just text", "Owner"), "just text");
        assert_eq!(one("\\101\\x42", "Owner"), "AB");
        assert_eq!(one("\\\"%s\\\"", "Owner"), "\"alice\"");
        assert_eq!(collapse_escapes("trailing\\"), "trailing\\");
        assert_eq!(collapse_escapes("\\q"), "\\q");
    }

    #[test]
    fn several_formats_concatenate_without_separators() {
        let mut m = PrintMask::new();
        m.add_format("%d.", "ClusterId").unwrap();
        m.add_format("%d\n", "ProcId").unwrap();
        assert_eq!(m.render_one(&sample()), "12.3\n");
        let mut m = PrintMask::new();
        m.add_format("%s ", "Owner").unwrap();
        m.add_format("%s ", "Missing").unwrap();
        m.add_format("%d\n", "ProcId").unwrap();
        assert_eq!(m.render_one(&sample()), "alice 3\n");
    }

    #[test]
    fn unparsable_attribute_is_an_error() {
        let mut m = PrintMask::new();
        assert!(m.add_format("%d", "ClusterId ==").is_err());
        assert!(m.add_autoformat("", &["(".to_string()]).is_err());
    }

    #[test]
    fn autoformat_plain_and_qualifiers() {
        let a = sample();
        let mut b = sample();
        b.insert("clusterid".into(), Value::Int(7));
        b.insert("owner".into(), Value::Str("bob".into()));
        let ads = [a, b];
        assert_eq!(
            af("", &["ClusterId", "Owner", "Missing"], &ads),
            "12 alice undefined\n7 bob undefined\n"
        );
        assert_eq!(af(":j", &["Owner"], &ads), "12.3 alice\n7.3 bob\n");
        assert_eq!(af("j", &["Owner"], &ads), "12.3 alice\n7.3 bob\n");
        assert_eq!(af("t", &["ClusterId", "Owner"], &ads[..1]), "12\talice\n");
        assert_eq!(af(",", &["ClusterId", "Owner"], &ads[..1]), "12, alice\n");
        assert_eq!(af("n", &["ClusterId", "Owner"], &ads[..1]), "12\n alice\n");
        assert_eq!(
            af("l", &["ClusterId", "Owner"], &ads[..1]),
            "ClusterId = 12 Owner = alice\n"
        );
        assert_eq!(af("jl", &["Owner"], &ads[..1]), "ID = 12.3 Owner = alice\n");
        assert_eq!(af("V", &["Owner"], &ads[..1]), "\"alice\"\n");
        assert_eq!(af("r", &["ClusterId"], &ads[..1]), "12\n");
        assert_eq!(
            af("lrng", &["ClusterId", "Owner"], &ads),
            "\nClusterId = 12\nOwner = \"alice\"\n\nClusterId = 7\nOwner = \"bob\"\n"
        );
        assert_eq!(af("", &["ClusterId * 2"], &ads[..1]), "24\n");
    }

    #[test]
    fn autoformat_headings_pad_columns() {
        let a = sample();
        let mut b = sample();
        b.insert("owner".into(), Value::Str("bartholomew".into()));
        b.insert("clusterid".into(), Value::Int(7));
        let ads = [a, b];
        assert_eq!(
            af("h", &["Owner", "ClusterId"], &ads),
            "Owner       ClusterId\nalice       12       \nbartholomew 7        \n"
        );
        assert_eq!(
            af("jh", &["Owner"], &ads),
            " ID      Owner      \n  12.3   alice      \n   7.3   bartholomew\n"
        );
        // No ads: no heading either.
        assert_eq!(af("h", &["Owner"], &[]), "");
    }
}
