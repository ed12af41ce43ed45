//! When a cron val runs: a schedule parsed from what its owner wrote, either
//! an interval (`every 15m`) or a five-field cron expression, in UTC or in
//! an IANA time zone (`TZ=Europe/Paris 0 9 * * 1-5`). The text is untrusted:
//! every refusal says what was wrong and what to write instead.

use std::fmt;
use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// The longest schedule text accepted, in bytes.
pub const MAX_SCHEDULE_BYTES: usize = 200;

/// Intervals stop at a year: anything longer is surely a typo, and a cron
/// expression says "yearly" better.
const MAX_INTERVAL_MS: u64 = 365 * DAY_MS;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

const EXAMPLES: &str = "an interval like `every 15m` or a cron expression like `0 9 * * 1-5`";

/// A parsed schedule; [`Display`](fmt::Display) gives it back normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Every {
        count: u64,
        unit: Unit,
    },
    Cron {
        cron: Box<Cron>,
        zone: Tz,
        fields: String,
    },
}

/// Why a schedule's text was refused, in words meant for its author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError(String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

fn refuse<T>(message: String) -> Result<T, ScheduleError> {
    Err(ScheduleError(message))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        if text.len() > MAX_SCHEDULE_BYTES {
            return refuse(format!(
                "a schedule is at most {MAX_SCHEDULE_BYTES} bytes, this one has {}: \
                 write {EXAMPLES}",
                text.len()
            ));
        }
        let text = text.trim();
        if text.is_empty() {
            return refuse(format!("the schedule is empty: write {EXAMPLES}"));
        }
        match strip_word(text, "every") {
            Some(rest) => parse_interval(text, rest),
            None => parse_cron(text),
        }
    }

    /// The first due time strictly after `after_ms` (ms since the epoch):
    /// for an interval, `after_ms` plus the interval, so the caller passes
    /// the last due time (or the deploy's); for cron, the next matching
    /// minute in the schedule's zone. `None` past the representable future.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        match &self.0 {
            Kind::Every { count, unit } => after_ms.checked_add(count * unit.ms()),
            Kind::Cron { cron, zone, .. } => {
                // Whole seconds: croner steps from the next second on, so a
                // run due at this very minute is never returned twice.
                let start = i64::try_from(after_ms / 1000 * 1000).ok()?;
                let start = zone.timestamp_millis_opt(start).single()?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                u64::try_from(next.timestamp_millis())
                    .ok()
                    .filter(|&next| next > after_ms)
            }
        }
    }

    /// The shortest gap between two runs, for the caller's minimum. For
    /// cron, the shortest gap on the wall clock of the schedule's zone (as
    /// if every day matched); across a DST change, runs the change skips
    /// happen at its end, so two runs may come closer once.
    pub fn min_interval_ms(&self) -> u64 {
        match &self.0 {
            Kind::Every { count, unit } => count * unit.ms(),
            Kind::Cron { cron, .. } => cron_min_gap_ms(cron),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Schedule::parse(text)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Every { count, unit } => write!(f, "every {count}{}", unit.suffix()),
            Kind::Cron {
                zone: Tz::UTC,
                fields,
                ..
            } => f.write_str(fields),
            Kind::Cron { zone, fields, .. } => write!(f, "TZ={} {fields}", zone.name()),
        }
    }
}

/// `text` without its leading `word` (any case) and the blanks after it,
/// when `word` stands alone at its start.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    let alone = rest.is_empty() || rest.starts_with(char::is_whitespace);
    (head.eq_ignore_ascii_case(word) && alone).then(|| rest.trim_start())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

impl Unit {
    const NAMES: [(Unit, &'static [&'static str]); 4] = [
        (Unit::Second, &["s", "sec", "secs", "second", "seconds"]),
        (Unit::Minute, &["m", "min", "mins", "minute", "minutes"]),
        (Unit::Hour, &["h", "hr", "hrs", "hour", "hours"]),
        (Unit::Day, &["d", "day", "days"]),
    ];

    fn parse(text: &str) -> Option<Unit> {
        let text = text.to_ascii_lowercase();
        Self::NAMES
            .into_iter()
            .find(|(_, names)| names.contains(&text.as_str()))
            .map(|(unit, _)| unit)
    }

    fn ms(self) -> u64 {
        match self {
            Unit::Second => 1000,
            Unit::Minute => MINUTE_MS,
            Unit::Hour => 60 * MINUTE_MS,
            Unit::Day => DAY_MS,
        }
    }

    fn suffix(self) -> &'static str {
        Self::NAMES[self as usize].1[0]
    }
}

/// `rest` is what follows `every` in `text`: a whole number, then a unit.
fn parse_interval(text: &str, rest: &str) -> Result<Schedule, ScheduleError> {
    const UNITS: &str = "s, m, h or d (or seconds, minutes, hours, days)";
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, unit) = (&rest[..digits], rest[digits..].trim_start());
    if number.is_empty() || unit.starts_with(['.', ',']) {
        return refuse(format!(
            "`{text}`: give a whole number and a unit, like `every 15m` or `every 90s`"
        ));
    }
    if unit.is_empty() {
        return refuse(format!(
            "`{text}`: give a unit after the number: {UNITS}, like `every 15m`"
        ));
    }
    let Some(unit) = Unit::parse(unit) else {
        return refuse(format!(
            "`{text}`: unknown unit `{unit}`: use {UNITS}, like `every 15m`"
        ));
    };
    let count = number.parse::<u64>().unwrap_or(u64::MAX);
    if count == 0 {
        return refuse(format!(
            "`{text}` is not an interval: give a number above 0, like `every 15m`"
        ));
    }
    if count.saturating_mul(unit.ms()) > MAX_INTERVAL_MS {
        return refuse(format!(
            "`{text}` is longer than a year: give at most `every 365d`, or a cron \
             expression like `0 9 1 1 *` for once a year"
        ));
    }
    Ok(Schedule(Kind::Every { count, unit }))
}

/// An optional `TZ=<IANA name>` and five cron fields (or a shortcut such
/// as `@daily`).
fn parse_cron(text: &str) -> Result<Schedule, ScheduleError> {
    let (zone, rest) = match text
        .get(..3)
        .filter(|head| head.eq_ignore_ascii_case("TZ="))
    {
        Some(_) => parse_zone(text, &text[3..])?,
        None => (Tz::UTC, text),
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let fields_text = fields.join(" ");
    check_field_count(text, &fields)?;
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let cron = match parser.parse(&fields_text) {
        Ok(cron) => cron,
        Err(error) => return refuse(explain(text, &fields, &parser, &error)),
    };
    // A pattern such as `0 0 31 2 *` parses but never matches; refused here
    // rather than never running. Dates repeat, so any fixed start will do.
    let since_2000 = chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default();
    if cron.find_next_occurrence(&since_2000, true).is_err() {
        return refuse(format!(
            "`{text}` never runs: no date matches its day of month, month and day of week"
        ));
    }
    let (cron, fields) = (Box::new(cron), fields_text);
    Ok(Schedule(Kind::Cron { cron, zone, fields }))
}

/// `rest` follows `TZ=`: the zone's name, then the cron fields.
fn parse_zone<'a>(text: &str, rest: &'a str) -> Result<(Tz, &'a str), ScheduleError> {
    const EXAMPLE: &str = "`TZ=Europe/Paris 0 9 * * 1-5`";
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, fields) = (&rest[..end], rest[end..].trim_start());
    if name.is_empty() {
        return refuse(format!(
            "`{text}`: give a time zone after `TZ=`, like {EXAMPLE}"
        ));
    }
    let Ok(zone) = name.parse::<Tz>() else {
        return refuse(format!(
            "unknown time zone `{name}`: use an IANA name like `Europe/Paris`"
        ));
    };
    if fields.is_empty() {
        return refuse(format!(
            "`{text}`: give a cron expression after the time zone, like {EXAMPLE}"
        ));
    }
    if strip_word(fields, "every").is_some() {
        return refuse(format!(
            "`{text}`: an interval runs the same in every time zone: write `{fields}` alone"
        ));
    }
    Ok((zone, fields))
}

fn check_field_count(text: &str, fields: &[&str]) -> Result<(), ScheduleError> {
    match fields {
        [shortcut] if shortcut.starts_with('@') => Ok(()),
        [_, _, _, _, _] => Ok(()),
        [_, rest @ ..] if rest.len() == 5 => refuse(format!(
            "`{text}` has six fields, but schedules are to the minute: drop the seconds and \
             keep five (minute hour day-of-month month day-of-week), like `{}`, or use an \
             interval like `every 30s`",
            rest.join(" ")
        )),
        _ => refuse(format!(
            "`{text}` has {} field{}: a cron expression has five (minute hour day-of-month \
             month day-of-week), like `0 9 * * 1-5`; or write an interval like `every 15m`",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        )),
    }
}

/// One of the five fields, for messages.
struct Field {
    name: &'static str,
    low: u64,
    high: u64,
    takes: &'static str,
}

const FIELDS: [Field; 5] = [
    Field::new("minute", 0, 59, "0-59"),
    Field::new("hour", 0, 23, "0-23"),
    Field::new("day of month", 1, 31, "1-31"),
    Field::new("month", 1, 12, "1-12 or jan-dec"),
    Field::new("day of week", 0, 7, "0-7 (0 and 7 are Sunday) or sun-sat"),
];

impl Field {
    const fn new(name: &'static str, low: u64, high: u64, takes: &'static str) -> Field {
        Field {
            name,
            low,
            high,
            takes,
        }
    }
}

/// What the author should read for croner's `error`: which field is at
/// fault (the first that fails alone, the others `*`) and why.
fn explain(text: &str, fields: &[&str], parser: &CronParser, error: &CronError) -> String {
    if let [shortcut] = fields {
        return format!(
            "`{shortcut}` is not a known shortcut: use @hourly, @daily, @weekly, @monthly or \
             @yearly, or five fields like `0 9 * * 1-5`"
        );
    }
    let alone = |at: usize| {
        let mut only = ["*"; 5];
        only[at] = fields[at];
        parser.parse(&only.join(" ")).is_err()
    };
    let Some(at) = (0..fields.len().min(5)).find(|&at| alone(at)) else {
        return format!("`{text}` is not a valid cron expression ({error}): write {EXAMPLES}");
    };
    let (field, value) = (&FIELDS[at], fields[at]);
    if let Some(problem) = range_problem(field, value) {
        return format!("`{text}`: {problem}");
    }
    let detail = match error {
        CronError::ComponentError(detail) => detail.trim_end_matches('.').to_lowercase(),
        _ => "unexpected characters".to_string(),
    };
    format!(
        "`{text}`: the {} field `{value}` is not valid ({detail}): use {}, `*`, lists like \
         `1,5`, ranges like `1-5` or steps like `*/10`",
        field.name, field.takes
    )
}

/// A number out of the field's range, or a range written backwards.
fn range_problem(field: &Field, value: &str) -> Option<String> {
    let number = |n: &str| n.parse::<u64>().unwrap_or(u64::MAX);
    for part in value.split(',') {
        // Steps (`/10`) and nth weekdays (`#2`) follow the values.
        let values = part.split(['/', '#']).next().unwrap_or_default();
        let numbers: Vec<&str> = values
            .split('-')
            .map(|n| n.trim_end_matches(['L', 'l', 'W', 'w']))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        if let Some(n) = numbers
            .iter()
            .find(|n| !(field.low..=field.high).contains(&number(n)))
        {
            let (name, low, high) = (field.name, field.low, field.high);
            return Some(format!("{name} {n} is out of range ({low}-{high})"));
        }
        if let [a, b] = numbers[..]
            && values.split('-').count() == 2
            && number(a) > number(b)
        {
            return Some(format!(
                "the {} range `{values}` runs backwards: write the smaller number first, \
                 like `{b}-{a}`",
                field.name
            ));
        }
    }
    None
}

/// The shortest gap between two matching minutes of a day, the day wrapping
/// round to the next; a day when only one minute of it matches.
fn cron_min_gap_ms(cron: &Cron) -> u64 {
    let hours = cron.pattern.hours.values();
    let minutes = cron.pattern.minutes.values();
    let times: Vec<u64> = hours
        .iter()
        .flat_map(|&h| {
            minutes
                .iter()
                .map(move |&m| u64::from(h) * 60 + u64::from(m))
        })
        .collect();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return MINUTE_MS;
    };
    let wrap = 24 * 60 - last + first;
    let gaps = times.windows(2).map(|pair| pair[1] - pair[0]);
    gaps.chain([wrap]).min().unwrap_or(24 * 60).max(1) * MINUTE_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> u64 {
        let time = Utc.with_ymd_and_hms(year, month, day, hour, minute, 0);
        time.single().unwrap().timestamp_millis() as u64
    }

    fn parsed(text: &str) -> Schedule {
        Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refusal(text: &str) -> String {
        match Schedule::parse(text) {
            Ok(schedule) => panic!("{text} parsed as {schedule}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn intervals() {
        for (text, shown, ms) in [
            ("every 30s", "every 30s", 30_000),
            ("every 15m", "every 15m", 900_000),
            ("  Every 2H ", "every 2h", 7_200_000),
            ("every 1d", "every 1d", DAY_MS),
            ("every 90 seconds", "every 90s", 90_000),
            ("every 1 hour", "every 1h", 3_600_000),
            ("every 365d", "every 365d", MAX_INTERVAL_MS),
        ] {
            let schedule = parsed(text);
            assert_eq!(schedule.to_string(), shown);
            assert_eq!(schedule.min_interval_ms(), ms);
            assert_eq!(schedule.next_after(1_000), Some(1_000 + ms));
        }
        assert_eq!(parsed("every 1d").next_after(u64::MAX - 5), None);
    }

    #[test]
    fn cron_in_utc() {
        let weekdays = parsed("0  9 * * mon-fri");
        assert_eq!(weekdays.to_string(), "0 9 * * mon-fri");
        // 2024-03-01 is a Friday: next is Monday 09:00.
        let friday = at(2024, 3, 1, 9, 0);
        assert_eq!(weekdays.next_after(friday - 1), Some(friday));
        assert_eq!(weekdays.next_after(friday), Some(at(2024, 3, 4, 9, 0)));
        assert_eq!(
            weekdays.next_after(friday + 500),
            Some(at(2024, 3, 4, 9, 0))
        );
        assert_eq!(weekdays.min_interval_ms(), DAY_MS);

        let quarter = parsed("*/15 * * * *");
        assert_eq!(
            quarter.next_after(at(2024, 1, 1, 23, 50)),
            Some(at(2024, 1, 2, 0, 0))
        );
        assert_eq!(quarter.min_interval_ms(), 15 * MINUTE_MS);
        assert_eq!(parsed("* * * * *").min_interval_ms(), MINUTE_MS);
        assert_eq!(parsed("0,50 9,10 * * *").min_interval_ms(), 10 * MINUTE_MS);
        assert_eq!(parsed("0 */6 * * *").min_interval_ms(), 6 * 60 * MINUTE_MS);
        assert_eq!(
            parsed("0 0 1 jan *").next_after(at(2024, 6, 1, 0, 0)),
            Some(at(2025, 1, 1, 0, 0))
        );
        assert_eq!(parsed("@daily").to_string(), "@daily");
        assert_eq!(parsed("TZ=UTC 0 9 * * *").to_string(), "0 9 * * *");
        assert_eq!(weekdays.next_after(u64::MAX), None);
    }

    #[test]
    fn cron_in_a_zone_across_dst() {
        let nine = parsed("TZ=Europe/Paris 0 9 * * *");
        assert_eq!(nine.to_string(), "TZ=Europe/Paris 0 9 * * *");
        // Paris moves from UTC+1 to UTC+2 on 2024-03-31 at 02:00.
        let before = at(2024, 3, 30, 8, 0);
        assert_eq!(nine.next_after(at(2024, 3, 29, 12, 0)), Some(before));
        assert_eq!(nine.next_after(before), Some(at(2024, 3, 31, 7, 0)));

        // 02:30 does not exist that night: it runs when the clock resumes.
        let half_two = parsed("TZ=Europe/Paris 30 2 * * *");
        let gap_end = at(2024, 3, 31, 1, 0);
        assert_eq!(half_two.next_after(at(2024, 3, 30, 1, 30)), Some(gap_end));
        assert_eq!(half_two.next_after(gap_end), Some(at(2024, 4, 1, 0, 30)));

        // 02:30 happens twice on 2024-10-27: it runs once, the first time.
        let first = at(2024, 10, 27, 0, 30);
        assert_eq!(half_two.next_after(at(2024, 10, 26, 0, 30)), Some(first));
        assert_eq!(half_two.next_after(first), Some(at(2024, 10, 28, 1, 30)));
    }

    #[test]
    fn bad_inputs_say_what_to_write() {
        for (text, says) in [
            (
                "",
                "the schedule is empty: write an interval like `every 15m`",
            ),
            (
                "every 0m",
                "`every 0m` is not an interval: give a number above 0, like `every 15m`",
            ),
            ("every", "give a whole number and a unit, like `every 15m`"),
            ("every m", "give a whole number and a unit"),
            ("every 1.5h", "give a whole number and a unit"),
            ("every 15", "give a unit after the number"),
            ("every 5y", "unknown unit `y`: use s, m, h or d"),
            (
                "every 400d",
                "longer than a year: give at most `every 365d`",
            ),
            ("every 99999999999999999999999s", "longer than a year"),
            (
                "61 * * * *",
                "`61 * * * *`: minute 61 is out of range (0-59)",
            ),
            ("0 24 * * *", "hour 24 is out of range (0-23)"),
            ("0 0 0 * *", "day of month 0 is out of range (1-31)"),
            ("0 0 1 13 *", "month 13 is out of range (1-12)"),
            ("0 0 * * 8", "day of week 8 is out of range (0-7)"),
            ("5-70 * * * *", "minute 70 is out of range (0-59)"),
            (
                "50-10 * * * *",
                "runs backwards: write the smaller number first, like `10-50`",
            ),
            (
                "*/0 * * * *",
                "the minute field `*/0` is not valid (step cannot be zero)",
            ),
            (
                "0 0 * foo *",
                "the month field `foo` is not valid (unexpected characters): use 1-12",
            ),
            ("0 9 * *", "has 4 fields: a cron expression has five"),
            ("hourly", "has 1 field: a cron expression has five"),
            (
                "@reboot",
                "`@reboot` is not a known shortcut: use @hourly, @daily",
            ),
            ("0 0 31 2 *", "never runs"),
            (
                "TZ=Mars/Base 0 9 * * *",
                "unknown time zone `Mars/Base`: use an IANA name like `Europe/Paris`",
            ),
            ("TZ= 0 9 * * *", "give a time zone after `TZ=`"),
            (
                "TZ=Europe/Paris",
                "give a cron expression after the time zone",
            ),
            ("TZ=Europe/Paris every 15m", "write `every 15m` alone"),
        ] {
            let message = refusal(text);
            assert!(
                message.contains(says),
                "{text:?} said {message:?}, not {says:?}"
            );
        }
    }

    #[test]
    fn six_fields_are_refused() {
        let message = refusal("0 */5 * * * *");
        assert!(
            message.contains("has six fields, but schedules are to the minute"),
            "{message}"
        );
        assert!(message.contains("like `*/5 * * * *`"), "{message}");
        assert!(message.contains("`every 30s`"), "{message}");
    }

    #[test]
    fn long_input_is_refused() {
        let long = format!("every 1m{}", " ".repeat(MAX_SCHEDULE_BYTES));
        assert!(refusal(&long).contains("at most 200 bytes"));
        assert!(refusal(&"* ".repeat(150)).contains("at most 200 bytes"));
    }

    /// Odd strings, random bytes and cron-like pieces, whole or mutated:
    /// nothing panics, and whatever parses runs and reads back as itself.
    #[test]
    fn odd_strings_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut parsed = 0;
        for round in 0..6000 {
            let mut text = match round % 3 {
                0 => {
                    let bytes: Vec<u8> = (0..next(40)).map(|_| next(256) as u8).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => odd_cron(&mut next),
                _ => (0..next(12)).map(|_| PIECES[next(PIECES.len())]).collect(),
            };
            if next(4) == 0 && !text.is_empty() {
                let at = text
                    .char_indices()
                    .nth(next(text.chars().count()))
                    .unwrap()
                    .0;
                text.insert_str(at, PIECES[next(PIECES.len())]);
            }
            let Ok(schedule) = Schedule::parse(&text) else {
                continue;
            };
            parsed += 1;
            assert!(schedule.min_interval_ms() >= 1000, "{text:?}");
            for after in [0, at(2024, 3, 31, 0, 59), i64::MAX as u64, u64::MAX] {
                if let Some(due) = schedule.next_after(after) {
                    assert!(due > after, "{text:?}");
                }
            }
            assert_eq!(
                Schedule::parse(&schedule.to_string()),
                Ok(schedule),
                "{text:?}"
            );
        }
        assert!(parsed > 500, "only {parsed} parsed: the generator drifted");
    }

    const PIECES: &[&str] = &[
        "*",
        "*/",
        "/",
        "-",
        ",",
        "#",
        "L",
        "W",
        "?",
        "@",
        "0",
        "1",
        "7",
        "59",
        "60",
        "99999",
        "65536",
        "-1",
        "mon",
        "SUN",
        "jan",
        "dec",
        "every",
        "TZ=",
        "Europe/Paris",
        "UTC",
        "s",
        "m",
        "h",
        "d",
        " ",
        "\t",
        "\n",
        "é",
        "日本",
        "🦀",
        "\u{0}",
        "٣",
        "ß",
        "ﬀ",
    ];

    /// Five fields from cron's vocabulary, mostly valid, sometimes in a zone.
    fn odd_cron(next: &mut impl FnMut(usize) -> usize) -> String {
        const FIELDS: [&[&str]; 5] = [
            &[
                "*", "0", "59", "*/7", "*/61", "0-59/15", "1,2,30", "3-1", "60",
            ],
            &["*", "0", "2", "23", "*/5", "1-3", "1,2,3", "24"],
            &["*", "1", "15", "29", "31", "L", "15W", "?", "1-7", "0"],
            &["*", "1", "2", "jan", "dec", "feb-mar", "*/3", "13"],
            &["*", "0", "7", "mon-fri", "sun", "5#2", "7L", "?", "8"],
        ];
        const ZONES: &[&str] = &[
            "",
            "TZ=Europe/Paris ",
            "TZ=America/New_York ",
            "TZ=Australia/Lord_Howe ",
        ];
        if next(5) == 0 {
            return format!(
                "every {}{}",
                next(100_000),
                ["s", "m", "h", " days", "y"][next(5)]
            );
        }
        let fields: Vec<&str> = FIELDS
            .iter()
            .map(|field| field[next(field.len())])
            .collect();
        format!("{}{}", ZONES[next(ZONES.len())], fields.join(" "))
    }
}
