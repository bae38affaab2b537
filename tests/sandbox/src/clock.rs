//! Civil time in the platform's zone. CYBERBIZ writes every timestamp as a zone-less
//! `YYYY-MM-DD HH:MM:SS` in Asia/Taipei, which has been UTC+8 without daylight saving since
//! 1979, so a fixed offset is exact for every date the sandbox generates.

use std::time::{SystemTime, UNIX_EPOCH};

pub const TAIPEI_OFFSET_SECS: i64 = 8 * 3600;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Local (Taipei) seconds since the epoch as the platform prints them.
pub fn format_local(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub fn format_date(secs: i64) -> String {
    format_local(secs)[..10].to_string()
}

pub fn now_local_secs() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    now + TAIPEI_OFFSET_SECS
}

pub fn now_unix_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (also with a `T`), and a
/// time followed by an offset (`2026-11-21 13:05:09 +0800`, as older shops send them): Taipei
/// local seconds. A bare date means its first second, or its last one when `end_of_day` is set,
/// which is how an inclusive `*_end_time=2026-11-21` reads.
pub fn parse_local(s: &str, end_of_day: bool) -> Option<i64> {
    let s = s.trim();
    if let Some((time, offset)) = s.rsplit_once(' ').filter(|(t, o)| t.contains(':') && (o.starts_with('+') || o.starts_with('-'))) {
        let (sign, hhmm) = offset.split_at(1);
        let (h, m): (i64, i64) = (hhmm.get(..2)?.parse().ok()?, hhmm.get(2..)?.trim_start_matches(':').parse().ok()?);
        let minutes = if sign == "-" { -(h * 60 + m) } else { h * 60 + m };
        return parse_local(time, end_of_day).map(|t| t + (8 * 60 - minutes) * 60);
    }
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d) * 86400;
    let tod = match time {
        None => {
            if end_of_day {
                86399
            } else {
                0
            }
        }
        Some(t) => {
            let mut tp = t.split(':');
            let h: i64 = tp.next()?.parse().ok()?;
            let mi: i64 = tp.next()?.parse().ok()?;
            let sec: i64 = match tp.next() {
                Some(x) => x.split('.').next()?.parse().ok()?,
                None => {
                    if end_of_day {
                        59
                    } else {
                        0
                    }
                }
            };
            if tp.next().is_some() || h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            h * 3600 + mi * 60 + sec
        }
    };
    Some(day + tod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 59, 365, 10957, 20000, 20785] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2026, 11, 28), 20785);
    }

    #[test]
    fn parses_platform_forms() {
        let t = parse_local("2026-11-21 13:05:09", false).unwrap();
        assert_eq!(format_local(t), "2026-11-21 13:05:09");
        assert_eq!(format_local(parse_local("2026-11-21", true).unwrap()), "2026-11-21 23:59:59");
        assert_eq!(format_local(parse_local("2026-11-21", false).unwrap()), "2026-11-21 00:00:00");
        assert_eq!(format_local(parse_local("2026-11-21T08:30", false).unwrap()), "2026-11-21 08:30:00");
        assert_eq!(parse_local("2026-11-21 13:05:09 +0800", false), Some(t), "older shops' zoned form");
        assert_eq!(parse_local("2026-11-21 05:05:09 +0000", false), Some(t));
        assert!(parse_local("yesterday", false).is_none());
        assert!(parse_local("2026-13-01", false).is_none());
    }
}
