//! Time stamps: `stamp_ns: i64` nanoseconds everywhere; helpers to convert at the edges.

/// Nanoseconds per second.
pub const NS_PER_S: i64 = 1_000_000_000;

/// Seconds (f64) to nanoseconds, rounded to the nearest nanosecond.
pub fn seconds_to_ns(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

/// Nanoseconds to seconds (f64). Exact to ~0.2 µs for stamps around 2030 since the Unix epoch.
pub fn ns_to_seconds(stamp_ns: i64) -> f64 {
    // Split to keep the fractional part exact for large stamps.
    let s = stamp_ns.div_euclid(NS_PER_S);
    let ns = stamp_ns.rem_euclid(NS_PER_S);
    s as f64 + ns as f64 * 1e-9
}

/// Days since 1970-01-01 of a proleptic Gregorian calendar date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Nanoseconds since the Unix epoch of a civil date-time, interpreted as UTC.
pub fn civil_to_ns(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32, nanos: u32) -> i64 {
    let days = days_from_civil(year, month, day);
    ((days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64) * NS_PER_S) + nanos as i64
}

/// Dates (UTC) from which GPS time ran ahead of UTC by one more second (IERS Bulletin C; none
/// announced after 2017-01-01 as of 2026).
const LEAP_SECOND_DATES: [(i64, u32, u32); 18] = [
    (1981, 7, 1),
    (1982, 7, 1),
    (1983, 7, 1),
    (1985, 7, 1),
    (1988, 1, 1),
    (1990, 1, 1),
    (1991, 1, 1),
    (1992, 7, 1),
    (1993, 7, 1),
    (1994, 7, 1),
    (1996, 1, 1),
    (1997, 7, 1),
    (1999, 1, 1),
    (2006, 1, 1),
    (2009, 1, 1),
    (2012, 7, 1),
    (2015, 7, 1),
    (2017, 1, 1),
];

/// GPS − UTC in whole seconds at a Unix time (seconds).
pub fn gps_minus_utc_s(unix_s: f64) -> i64 {
    LEAP_SECOND_DATES
        .iter()
        .filter(|(y, m, d)| unix_s >= (days_from_civil(*y, *m, *d) * 86_400) as f64)
        .count() as i64
}

/// Unix seconds (UTC) to adjusted standard GPS time (GPS seconds since 1980-01-06 minus 10⁹,
/// the LAS convention).
pub fn unix_to_gps_adjusted_s(unix_s: f64) -> f64 {
    let gps_epoch = (days_from_civil(1980, 1, 6) * 86_400) as f64;
    unix_s - gps_epoch + gps_minus_utc_s(unix_s) as f64 - 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_time_matches_published_offsets() {
        // GPS − UTC is 18 s since 2017 and 17 s in 2016 (IERS); the GPS epoch is Unix
        // 315 964 800 (1980-01-06).
        assert_eq!(gps_minus_utc_s(1_700_000_000.0), 18);
        assert_eq!(gps_minus_utc_s(1_460_000_000.0), 17);
        assert_eq!(gps_minus_utc_s(315_964_800.0), 0);
        // 2021-10-26 16:21:29.468 UTC = GPS week 2181, 231 707.468 s (+18 s leap).
        let t = unix_to_gps_adjusted_s(1_635_265_289.468);
        let gps = t + 1e9;
        assert!((gps - (2181.0 * 604_800.0 + 231_707.468)).abs() < 1e-5, "{gps}");
    }

    #[test]
    fn civil_dates_match_known_epochs() {
        // Known Unix times (from `date -u -d ... +%s`).
        assert_eq!(civil_to_ns(1970, 1, 1, 0, 0, 0, 0), 0);
        assert_eq!(civil_to_ns(2000, 3, 1, 0, 0, 0, 0), 951_868_800 * NS_PER_S);
        assert_eq!(civil_to_ns(2021, 10, 26, 16, 21, 29, 468_000_000), 1_635_265_289_468_000_000);
        assert_eq!(civil_to_ns(1969, 12, 31, 23, 59, 59, 0), -NS_PER_S);
    }

    #[test]
    fn seconds_round_trip() {
        for ns in [0i64, 1, -1, 1_635_265_289_468_000_123, -5_000_000_001] {
            let back = seconds_to_ns(ns_to_seconds(ns));
            assert!((back - ns).abs() <= 256, "{ns} -> {back}");
        }
    }
}
