//! Schedules: when a cron schedule's ticks fall, which tick fires when a node looks, what
//! happens to ticks nobody fired in time, and how each is told.
//!
//! A schedule is a cron pattern (five fields, or six with seconds first) read in an IANA time
//! zone (`UTC` by default). Its ticks are whole seconds, stored as ms since the epoch. Across a
//! daylight-saving change the ticks are croner's: in a skipped hour, a fixed-time pattern
//! (`30 2 * * *`) fires at the first valid time after the gap on the same day and an interval
//! or wildcard pattern (`*/15 * * * *`) skips the ticks inside the gap; in a repeated hour a
//! fixed-time pattern fires once (the first pass) and an interval pattern fires on both passes.
//!
//! Late and missed ticks follow one policy, [`CATCH_UP`]: a tick due at most [`LATE_GRACE_MS`]
//! ago still fires, in order (a node that was busy, a short stall of every node); older ticks
//! are missed (every node was down): skipped, and the job's `queued` event says how many. When
//! every due tick is older than the grace, the latest of them fires, so an outage ends with
//! one firing.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The missed-tick policy, as the README and the API describe it.
pub const CATCH_UP: &str = "ticks up to a minute late fire in order; older ticks are missed: skipped and counted, except that the latest fires when every due tick is older than a minute";

/// How late a tick may be and still fire: one minute.
pub const LATE_GRACE_MS: i64 = 60_000;

/// Past this many, skipped ticks are not counted one by one (the count says "at least").
pub const MAX_COUNTED: u64 = 10_000;

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Why a schedule's cron pattern or time zone is not valid. Its message says what is wrong
/// and shows a valid example.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadSchedule(pub String);

/// A schedule's timetable: its cron pattern read in its time zone.
#[derive(Debug, Clone)]
pub struct Timetable {
    cron: Cron,
    tz: Tz,
}

/// What fires when a node looks at a schedule whose next tick is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The tick that fires: the latest due one (ms since the epoch).
    pub tick_ms: i64,
    /// Earlier due ticks, skipped (counted up to [`MAX_COUNTED`]).
    pub skipped: u64,
    /// The schedule's next tick after this one.
    pub next_ms: i64,
}

const EXAMPLES: &str = "five fields (minute hour day-of-month month day-of-week), or six with seconds first: `*/5 * * * *` (every five minutes), `0 30 2 * * MON-FRI` (02:30:00 on weekdays), `*/10 * * * * *` (every ten seconds)";

impl Timetable {
    /// Read `cron` in `timezone` (an IANA name such as `Europe/Berlin`; `None`: UTC). Refused
    /// when either does not parse, or when the pattern has no tick within a year of `now_ms`
    /// (`0 0 30 2 *`, the 30th of February).
    pub fn parse(
        cron: &str,
        timezone: Option<&str>,
        now_ms: i64,
    ) -> Result<Timetable, BadSchedule> {
        let zone = timezone.unwrap_or(DEFAULT_TIMEZONE);
        let tz: Tz = zone.parse().map_err(|_| {
            BadSchedule(format!(
                "`{zone}` is not an IANA time zone; name one such as `UTC` (the default), `Europe/Berlin` or `America/New_York`"
            ))
        })?;
        let fields = cron.split_whitespace().count();
        if !(5..=6).contains(&fields) || cron.contains('@') {
            return Err(BadSchedule(format!(
                "`{cron}` is not a cron pattern driftless reads (it has {fields} field(s)); give {EXAMPLES}"
            )));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| {
                BadSchedule(format!(
                    "`{cron}` is not a valid cron pattern ({e}); give {EXAMPLES}"
                ))
            })?;
        let table = Timetable { cron: parsed, tz };
        if table.next_after(now_ms).is_none() {
            return Err(BadSchedule(format!(
                "`{cron}` never fires (no tick within a year in {zone}); give {EXAMPLES}"
            )));
        }
        Ok(table)
    }

    /// The time zone's name.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The first tick strictly after `after_ms` (`None`: none within a year, or past year 5000).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let from = self.at(after_ms.div_euclid(1000) * 1000)?;
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        Some(next.timestamp() * 1000)
    }

    /// The latest tick at or before `at_ms`.
    fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let from = self.at(at_ms.div_euclid(1000) * 1000)?;
        let previous = self.cron.find_previous_occurrence(&from, true).ok()?;
        Some(previous.timestamp() * 1000)
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms)?;
        Some(self.tz.from_utc_datetime(&utc.naive_utc()))
    }

    /// What fires at `now_ms` for a schedule whose next tick is `next_tick_ms` (`None`: not
    /// due yet). The policy is [`CATCH_UP`]: the first due tick at most [`LATE_GRACE_MS`] old
    /// fires (the ones after it fire next, in order); older ones are skipped; when every due
    /// tick is older, the latest fires.
    pub fn due(&self, next_tick_ms: i64, now_ms: i64) -> Option<Due> {
        if next_tick_ms > now_ms {
            return None;
        }
        let cutoff = now_ms - LATE_GRACE_MS;
        let tick_ms = if next_tick_ms >= cutoff {
            next_tick_ms
        } else {
            match self.next_after(cutoff - 1).filter(|t| *t <= now_ms) {
                Some(first_recent) => first_recent,
                None => self
                    .latest_at_or_before(now_ms)
                    .filter(|t| *t >= next_tick_ms)
                    .unwrap_or(next_tick_ms),
            }
        };
        let mut skipped = 0;
        let mut at = next_tick_ms;
        while at < tick_ms && skipped < MAX_COUNTED {
            skipped += 1;
            match self.next_after(at) {
                Some(next) => at = next,
                None => break,
            }
        }
        // A pattern with no tick after this one (past year 5000) is not looked at again for
        // a year.
        let next_ms = self
            .next_after(tick_ms)
            .unwrap_or(now_ms + 366 * 86_400_000);
        Some(Due {
            tick_ms,
            skipped,
            next_ms,
        })
    }
}

/// How a job a schedule made says so in its `queued` event: the schedule, the tick (RFC 3339,
/// UTC) and, when earlier due ticks were skipped, how many.
pub fn made_by(schedule: &str, tick_ms: i64, skipped: u64) -> String {
    let mut told = format!(
        "made by schedule {schedule} for its tick at {}",
        super::attempts::rfc3339(tick_ms)
    );
    match skipped {
        0 => {}
        n => told.push_str(&format!(
            "; skipped {}{n} earlier missed tick(s): no node fired them within a minute of their time",
            if n >= MAX_COUNTED { "at least " } else { "" }
        )),
    }
    told
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-29 00:00:00 UTC: the night Europe/Berlin springs forward (02:00 → 03:00 local,
    /// at 01:00 UTC).
    const SPRING_2026_MS: i64 = 1_774_742_400_000;

    fn ms(s: i64) -> i64 {
        s * 1000
    }

    #[test]
    fn five_or_six_fields_with_seconds_optional() {
        let t = Timetable::parse("*/1 * * * * *", None, 0).unwrap();
        assert_eq!(t.next_after(1_500), Some(2_000));
        assert_eq!(t.next_after(2_000), Some(3_000));
        let t = Timetable::parse("*/5 * * * *", None, 0).unwrap();
        assert_eq!(t.next_after(ms(1)), Some(ms(300)));
        assert_eq!(t.timezone(), "UTC");
    }

    #[test]
    fn bad_patterns_and_zones_say_what_is_wrong_with_an_example() {
        for (cron, tz, says) in [
            ("* * * *", None, "has 4 field(s)"),
            ("* * * * * * *", None, "has 7 field(s)"),
            ("61 * * * *", None, "not a valid cron pattern"),
            ("@daily", None, "not a cron pattern"),
            ("0 0 30 2 *", None, "never fires"),
            ("* * * * *", Some("Mars/Olympus"), "not an IANA time zone"),
        ] {
            let e = Timetable::parse(cron, tz, 0).unwrap_err();
            assert!(e.0.contains(says), "{cron}: {e}");
            assert!(
                e.0.contains("`*/5 * * * *`") || e.0.contains("Europe/Berlin"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_due_schedule_fires_its_latest_tick_and_counts_the_skipped() {
        let t = Timetable::parse("* * * * * *", None, 0).unwrap();
        assert_eq!(t.due(ms(10), ms(9) + 999), None, "not due yet");
        assert_eq!(
            t.due(ms(10), ms(10) + 20),
            Some(Due {
                tick_ms: ms(10),
                skipped: 0,
                next_ms: ms(11)
            })
        );
        assert_eq!(
            t.due(ms(10), ms(15) + 500),
            Some(Due {
                tick_ms: ms(10),
                skipped: 0,
                next_ms: ms(11)
            }),
            "5.5 s late: still fires, and 11..15 after it"
        );
        assert_eq!(
            t.due(ms(10), ms(75) + 500),
            Some(Due {
                tick_ms: ms(16),
                skipped: 6,
                next_ms: ms(17)
            }),
            "65.5 s late: 10..15 are missed, 16 (a minute ago) fires, then the rest in order"
        );
        let hourly = Timetable::parse("0 * * * *", None, 0).unwrap();
        assert_eq!(
            hourly.due(ms(3_600), ms(3 * 3_600 + 90)),
            Some(Due {
                tick_ms: ms(3 * 3_600),
                skipped: 2,
                next_ms: ms(4 * 3_600)
            }),
            "every due tick older than a minute: the latest fires"
        );
        let far = t.due(ms(10), ms(10 + 86_400)).unwrap();
        assert_eq!(far.tick_ms, ms(10 + 86_400 - 60));
        assert_eq!(far.skipped, MAX_COUNTED, "counting stops");
        assert!(made_by("s", far.tick_ms, far.skipped).contains("at least 10000"));
        assert!(made_by("nightly", ms(10), 0).ends_with("1970-01-01T00:00:10Z"));
    }

    #[test]
    fn across_a_spring_forward_a_fixed_time_fires_after_the_gap_and_intervals_skip_it() {
        // 02:30 local does not exist on that night: a fixed-time pattern fires at 03:00 local
        // (01:00 UTC), the first valid time after the gap.
        let fixed = Timetable::parse("30 2 * * *", Some("Europe/Berlin"), 0).unwrap();
        assert_eq!(
            fixed.next_after(SPRING_2026_MS),
            Some(SPRING_2026_MS + 3_600_000)
        );
        // Every 30 minutes: 01:30 local (00:30 UTC), then 03:00 local (01:00 UTC); nothing
        // inside the gap.
        let interval = Timetable::parse("*/30 * * * *", Some("Europe/Berlin"), 0).unwrap();
        let first = interval.next_after(SPRING_2026_MS).unwrap();
        assert_eq!(first, SPRING_2026_MS + 1_800_000);
        assert_eq!(interval.next_after(first), Some(SPRING_2026_MS + 3_600_000));
    }
}
