//! Points in a journal's history as a user names them: a time in UTC, or a
//! sequence number; and times as post-mortems print them.
//!
//! Accepted (UTC unless an offset is given):
//! - `#123` or `seq:123`: event 123;
//! - `2026-12-03`, `2026-12-03 14:42`, `2026-12-03 14:42:45`,
//!   `2026-12-03 14:42:45.123` (a `T` may stand for the space);
//! - RFC 3339: `2026-12-03T14:42:45Z`, `2026-12-03T14:42:45.5+01:00`;
//! - unix milliseconds: `ms:1796308965123`.
//!
//! Why not a date crate: the journal needs only this much, and `pilotq-wire`
//! already carries the civil calendar (`time_format`).

use pilotq_wire::time_format::utc;
use std::fmt;

/// A point in the journal: before or after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The event with this sequence number.
    Seq(u64),
    /// Unix milliseconds, compared with the time each event was stored.
    Time(u64),
}

impl Point {
    /// Whether the event `(seq, stored at t)` is at or before this point.
    pub fn covers(&self, seq: u64, t: u64) -> bool {
        match *self {
            Point::Seq(s) => seq <= s,
            Point::Time(ms) => t <= ms,
        }
    }

    /// Whether the event `(seq, t)` is at or after this point.
    pub fn reached_by(&self, seq: u64, t: u64) -> bool {
        match *self {
            Point::Seq(s) => seq >= s,
            Point::Time(ms) => t >= ms,
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Seq(s) => write!(f, "#{s}"),
            Point::Time(ms) => f.write_str(&utc_ms(*ms)),
        }
    }
}

/// What the accepted forms are, for error messages and `--help`.
pub const POINT_SYNTAX: &str = "a UTC time (2026-12-03, 2026-12-03 14:42[:45[.123]], RFC 3339 such as 2026-12-03T14:42:45Z or ...+01:00) or an event number (#123 or seq:123)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is neither a time nor an event number: expected {POINT_SYNTAX}")]
pub struct BadPoint(pub String);

impl std::str::FromStr for Point {
    type Err = BadPoint;

    fn from_str(s: &str) -> Result<Point, BadPoint> {
        parse(s.trim()).ok_or_else(|| BadPoint(s.to_string()))
    }
}

fn parse(s: &str) -> Option<Point> {
    if let Some(n) = s.strip_prefix('#').or_else(|| s.strip_prefix("seq:")) {
        return digits(n).map(Point::Seq);
    }
    if let Some(n) = s.strip_prefix("ms:") {
        return digits(n).map(Point::Time);
    }
    parse_time(s).map(Point::Time)
}

/// A whole number, digits only (no sign, no spaces).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH:MM]` to unix ms.
fn parse_time(s: &str) -> Option<u64> {
    let (date, rest) = match s.find([' ', 'T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || mo.len() != 2 || da.len() != 2 {
        return None;
    }
    let (y, mo, da) = (digits(y)? as i64, digits(mo)? as u32, digits(da)? as u32);
    if !(1..=12).contains(&mo) || da == 0 || da > days_in_month(y, mo) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, da) * 86_400_000;
    if let Some(rest) = rest {
        // The offset: `Z`, or `+HH:MM` / `-HH:MM` after the clock.
        let (clock, offset_ms) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let (c, off) = rest.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om) = (digits(oh)? as i64, digits(om)? as i64);
            if oh > 23 || om > 59 {
                return None;
            }
            (c, sign * (oh * 3_600_000 + om * 60_000))
        } else {
            (rest, 0)
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (clock, None),
        };
        let mut parts = hms.split(':');
        let h = two(parts.next()?)?;
        let mi = two(parts.next()?)?;
        let sec = match parts.next() {
            Some(p) => two(p)?,
            None if frac.is_none() => 0,
            None => return None,
        };
        if parts.next().is_some() || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let frac_ms = match frac {
            None => 0,
            Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                // Milliseconds: the first three digits, padded.
                let f3: String = f.chars().chain("000".chars()).take(3).collect();
                f3.parse::<i64>().ok()?
            }
            Some(_) => return None,
        };
        ms += (h * 3600 + mi * 60 + sec) * 1000 + frac_ms - offset_ms;
    }
    u64::try_from(ms).ok()
}

fn two(s: &str) -> Option<i64> {
    (s.len() == 2).then_some(())?;
    digits(s).map(|v| v as i64)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm, the
/// inverse of `pilotq_wire::time_format::civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-03 14:42:45.123Z`: how every post-mortem prints a time.
pub fn utc_ms(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// A duration as people read it: `850ms`, `12.4s`, `3m05s`, `2h04m`, `3d02h`.
pub fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s / 3600) % 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Point, BadPoint> {
        s.parse()
    }

    #[test]
    fn sequence_numbers() {
        assert_eq!(p("#123"), Ok(Point::Seq(123)));
        assert_eq!(p("seq:7"), Ok(Point::Seq(7)));
        assert_eq!(p(" #1 "), Ok(Point::Seq(1)));
        for bad in ["#", "#-1", "#1.5", "seq:", "seq:x", "# 3"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_in_every_accepted_form() {
        let t = 1_796_308_965_123; // 2026-12-03 14:42:45.123Z
        assert_eq!(utc_ms(t), "2026-12-03 14:42:45.123Z");
        assert_eq!(p("2026-12-03 14:42:45.123"), Ok(Point::Time(t)));
        assert_eq!(p("2026-12-03T14:42:45.123Z"), Ok(Point::Time(t)));
        assert_eq!(p("2026-12-03T15:42:45.123+01:00"), Ok(Point::Time(t)));
        assert_eq!(p("2026-12-03T09:12:45.123-05:30"), Ok(Point::Time(t)));
        assert_eq!(p("2026-12-03 14:42:45"), Ok(Point::Time(t - 123)));
        assert_eq!(p("2026-12-03 14:42"), Ok(Point::Time(t - 45_123)));
        assert_eq!(p("2026-12-03"), Ok(Point::Time(t - 52_965_123)));
        assert_eq!(p("ms:42"), Ok(Point::Time(42)));
        assert_eq!(p("1970-01-01"), Ok(Point::Time(0)));
        assert_eq!(p("2000-02-29 00:00"), Ok(Point::Time(951_782_400_000)));
        // Every printed time parses back.
        for ms in [0, 1, 999, 951_782_400_000, t, 4_102_444_800_000] {
            let printed = utc_ms(ms);
            assert_eq!(p(&printed), Ok(Point::Time(ms)), "{printed}");
        }
    }

    #[test]
    fn nonsense_is_refused_not_guessed() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-12-3",
            "2026-12-03 24:00",
            "2026-12-03 14:60",
            "2026-12-03 14",
            "2026-12-03 14:42:45.",
            "2026-12-03 14:42:45.12a",
            "2026-12-03T14:42+1:00",
            "1969-12-31",
            "123",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.to_string().contains("#123"), "{e}");
        }
    }

    #[test]
    fn points_order_events() {
        assert!(Point::Seq(5).covers(5, 0) && !Point::Seq(5).covers(6, 0));
        assert!(Point::Time(10).covers(99, 10) && !Point::Time(10).covers(1, 11));
        assert!(Point::Seq(5).reached_by(5, 0) && !Point::Seq(5).reached_by(4, 0));
        assert!(Point::Time(10).reached_by(1, 10) && !Point::Time(10).reached_by(9, 9));
    }

    #[test]
    fn durations_read_easily() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(12_400), "12.4s");
        assert_eq!(human_ms(185_000), "3m05s");
        assert_eq!(human_ms(7_440_000), "2h04m");
        assert_eq!(human_ms(266_400_000), "3d02h");
    }
}
