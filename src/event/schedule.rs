//! Schedules: "every N" intervals and cron expressions (through `croner`) in the configured time
//! zone, and the arithmetic of when each fires next. Pure: the clock is a parameter, so tests
//! can walk across daylight-saving changes.
//!
//! - `every` counts real time from a fixed anchor (the Unix epoch, UTC): "every 1h" fires each
//!   hour of elapsed time, also across a DST change; its firings do not drift with restarts.
//! - `cron` reads wall-clock time in the zone: a time skipped by a spring-forward change fires at
//!   the first instant after the gap, a time repeated by a fall-back change fires once.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Shortest interval of an `every` schedule.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval (and longest `wait`).
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 24 * 3600);

/// The time zone schedules are read in.
/// What a schedule's text, a duration or a time-zone name got wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error("`{0}` is not a time zone name such as Europe/Berlin")]
    Zone(String),
    #[error("`{0}` is not a duration such as 30s, 5m, 2h or 1h30m")]
    Duration(String),
    #[error("`{0}` is outside 1s to 366d for a schedule")]
    OutOfRange(String),
    #[error("`{text}` is not a cron expression: {reason}")]
    Cron { text: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// The machine's local zone.
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `""` (the machine's zone) or an IANA name such as `Europe/Berlin`.
    pub fn parse(name: &str) -> Result<Zone, ScheduleError> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        name.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| ScheduleError::Zone(name.to_string()))
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Local => f.write_str("local time"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron {
        source: String,
        cron: Box<croner::Cron>,
    },
}

/// Reads `30s`, `5m`, `2h`, `1d`, `1h30m`, `500ms` (units may combine, largest first).
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let invalid = || ScheduleError::Duration(text.to_string());
    if compact.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = unit
            .checked_mul(u32::try_from(amount).map_err(|_| invalid())?)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

impl Schedule {
    pub fn every(text: &str) -> Result<Schedule, ScheduleError> {
        let period = parse_duration(text)?;
        if period < MIN_INTERVAL || period > MAX_INTERVAL {
            return Err(ScheduleError::OutOfRange(text.to_string()));
        }
        Ok(Schedule::Every(period))
    }

    /// Five fields (minute hour day-of-month month weekday) or six (seconds first).
    pub fn cron(text: &str) -> Result<Schedule, ScheduleError> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        let cron = parser.parse(text).map_err(|e| ScheduleError::Cron {
            text: text.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Schedule::Cron {
            source: text.trim().to_string(),
            cron: Box::new(cron),
        })
    }

    /// The first firing strictly after `after`, or `None` when there is none (a date that
    /// never comes).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let period_ms = i64::try_from(period.as_millis()).ok()?.max(1);
                let now_ms = after.timestamp_millis();
                let next_ms = (now_ms.div_euclid(period_ms) + 1).checked_mul(period_ms)?;
                DateTime::<Utc>::from_timestamp_millis(next_ms)
            }
            Schedule::Cron { cron, .. } => match zone {
                Zone::Local => next_cron(cron, &after.with_timezone(&chrono::Local)),
                Zone::Named(tz) => next_cron(cron, &after.with_timezone(&tz)),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(period) => format!("every {}", describe_duration(*period)),
            Schedule::Cron { source, .. } => format!("cron `{source}`"),
        }
    }
}

fn next_cron<Z: TimeZone>(cron: &croner::Cron, after: &DateTime<Z>) -> Option<DateTime<Utc>>
where
    DateTime<Z>: croner::CronDateTime,
{
    cron.find_next_occurrence(after, false)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `90s` → `1m30s`; `2h` → `2h`.
pub fn describe_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2 h"), Ok(Duration::from_secs(7200)));
        for bad in [
            "",
            "5",
            "m5",
            "5x",
            "1.5h",
            "-5s",
            "99999999999s",
            "4294967296d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(Schedule::every("0s").is_err());
        assert!(Schedule::every("400d").is_err());
        assert_eq!(describe_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn every_counts_real_time_from_a_fixed_anchor() {
        let schedule = Schedule::every("15m").unwrap_or_else(|e| panic!("{e}"));
        let next = schedule.next_after(utc("2026-03-29T00:52:10Z"), Zone::Local);
        assert_eq!(next, Some(utc("2026-03-29T01:00:00Z")));
        // Strictly after: a firing instant gives the next one.
        let next = schedule.next_after(utc("2026-03-29T01:00:00Z"), Zone::Local);
        assert_eq!(next, Some(utc("2026-03-29T01:15:00Z")));
    }

    #[test]
    fn cron_reads_wall_clock_time_across_daylight_saving_changes() {
        let berlin = Zone::parse("Europe/Berlin").unwrap_or_else(|e| panic!("{e}"));
        // Every day at 07:30 Berlin time: 06:30 UTC in winter, 05:30 UTC in summer.
        let daily = Schedule::cron("30 7 * * *").unwrap_or_else(|e| panic!("{e}"));
        let before = daily.next_after(utc("2026-03-28T12:00:00Z"), berlin);
        assert_eq!(
            before,
            Some(utc("2026-03-29T05:30:00Z")),
            "the morning after the change"
        );
        let winter = daily.next_after(utc("2026-01-10T12:00:00Z"), berlin);
        assert_eq!(winter, Some(utc("2026-01-11T06:30:00Z")));
        // 02:30 does not exist on 2026-03-29 in Berlin (02:00 → 03:00): it fires after the gap,
        // once, and the next day at 02:30 again.
        let skipped = Schedule::cron("30 2 * * *").unwrap_or_else(|e| panic!("{e}"));
        let spring = skipped
            .next_after(utc("2026-03-28T23:00:00Z"), berlin)
            .unwrap_or_else(|| panic!("no firing"));
        assert!(
            spring >= utc("2026-03-29T01:00:00Z") && spring <= utc("2026-03-29T01:30:00Z"),
            "{spring}"
        );
        let after_spring = skipped.next_after(spring, berlin);
        assert_eq!(after_spring, Some(utc("2026-03-30T00:30:00Z")));
        // 02:30 happens twice on 2026-10-25 (03:00 → 02:00): at least once, never more than
        // twice, and the next day as usual.
        let mut at = utc("2026-10-24T22:00:00Z");
        let mut firings = Vec::new();
        while let Some(next) = skipped.next_after(at, berlin) {
            if next >= utc("2026-10-26T00:00:00Z") {
                break;
            }
            firings.push(next);
            at = next;
        }
        assert!(
            (1..=2).contains(&firings.len()),
            "fall-back firings: {firings:?}"
        );
        assert_eq!(
            skipped.next_after(at, berlin),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn bad_schedules_and_zones_say_what_is_wrong() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* 25 * * *",
            "not cron",
            "* * * * * * * *",
        ] {
            let error = Schedule::cron(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("not a cron expression"), "{bad}: {error}");
        }
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Zone::parse(""), Ok(Zone::Local));
    }
}
