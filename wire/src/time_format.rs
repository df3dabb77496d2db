//! Dates as HTCondor prints them, in UTC, without a date crate: the civil
//! calendar from days since the epoch (Howard Hinnant's algorithm).

/// Days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `(year, month, day, hour, minute, second)` of unix milliseconds.
pub fn utc(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u32;
    (y, m, d, rem / 3600, (rem / 60) % 60, rem % 60)
}

/// `YYYY-MM-DD HH:MM:SS`: HTCondor's ISO date format of job event logs.
pub fn iso_time(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `MM/DD HH:MM`: condor_q's SUBMITTED column.
pub fn month_day_time(ms: u64) -> String {
    let (_, mo, d, h, mi, _) = utc(ms);
    format!("{mo:02}/{d:02} {h:02}:{mi:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(iso_time(0), "1970-01-01 00:00:00");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(iso_time(1_795_319_360_000), "2026-11-22 03:49:20");
        assert_eq!(month_day_time(1_795_319_360_000), "11/22 03:49");
    }
}
