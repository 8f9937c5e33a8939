//! Stork's schedule-policy syntax, exactly as Stork parses it (`pkg/schedule`, `SchedulePolicy.Validate`).
//!
//! In: a [`SchedulePolicyItem`] (or one time / weekday string). Out: the parsed value, or errors that name the
//! field path, the offending value and what Stork would accept instead.

use thiserror::Error;

use super::types::{DailyPolicy, IntervalPolicy, MonthlyPolicy, SchedulePolicyItem, WeeklyPolicy};

/// Names of the cluster policies Stork creates at start-up, always resolvable by a MigrationSchedule.
pub const BUILT_IN_POLICIES: [&str; 5] = [
    "default-migration-policy",
    "default-interval-policy",
    "default-daily-policy",
    "default-weekly-policy",
    "default-monthly-policy",
];

/// Whether `name` is one of Stork's built-in policies.
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN_POLICIES.contains(&name)
}

/// The body of a built-in policy, as Stork's `createDefaultPolicy` creates it.
pub fn built_in_policy(name: &str) -> Option<SchedulePolicyItem> {
    let time = || Some("12:00am".to_string());
    let item = match name {
        "default-migration-policy" => SchedulePolicyItem {
            interval: Some(IntervalPolicy {
                interval_minutes: Some(30),
                ..Default::default()
            }),
            ..Default::default()
        },
        "default-interval-policy" => SchedulePolicyItem {
            interval: Some(IntervalPolicy {
                interval_minutes: Some(15),
                retain: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        },
        "default-daily-policy" => SchedulePolicyItem {
            daily: Some(DailyPolicy {
                time: time(),
                retain: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        },
        "default-weekly-policy" => SchedulePolicyItem {
            weekly: Some(WeeklyPolicy {
                day: Some("Sunday".to_string()),
                time: time(),
                retain: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        },
        "default-monthly-policy" => SchedulePolicyItem {
            monthly: Some(MonthlyPolicy {
                date: Some(15),
                time: time(),
                retain: Some(12),
                ..Default::default()
            }),
            ..Default::default()
        },
        _ => return None,
    };
    Some(item)
}

/// A time of day as Stork reads it: 24-hour clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourMinute {
    pub hour: u8,
    pub minute: u8,
}

/// Why a schedule time is not what Go's `time.Parse("3:04PM")` (or `"3:04pm"`) accepts.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TimeError {
    #[error(
        "invalid time {0:?}: expected 1 or 2 digits of hour, a colon, 2 digits of minute and AM or PM, e.g. \"4:00PM\" or \"12:30am\""
    )]
    Syntax(String),
    #[error(
        "invalid time {0:?}: the hour must be between 0 and 12 (a 12-hour clock with AM/PM), e.g. \"1:15PM\" instead of \"13:15PM\""
    )]
    HourRange(String),
    #[error("invalid time {0:?}: the minute must be between 00 and 59")]
    MinuteRange(String),
}

/// Parses a schedule time the way Stork's `getHourMinute` does: Go `time.Parse("3:04PM", s)`, then
/// `time.Parse("3:04pm", s)`.
///
/// Hour: 1 or 2 digits, 0–12 (`0:30AM` and `01:15am` are valid). Minute: exactly 2 digits, 00–59. Suffix: exactly
/// `AM`/`PM` or `am`/`pm` (not mixed case), no space, nothing after. `12:xxAM` is 00:xx; `0:xxPM` is 12:xx.
pub fn parse_time(s: &str) -> Result<HourMinute, TimeError> {
    let syntax = || TimeError::Syntax(s.to_string());
    let b = s.as_bytes();
    // Hour: Go's getnum(value, false) takes one digit and a second one if present.
    let mut i = 0;
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Err(syntax());
    }
    let mut hour = u32::from(b[0] - b'0');
    i += 1;
    if b.get(1).is_some_and(u8::is_ascii_digit) {
        hour = hour * 10 + u32::from(b[1] - b'0');
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return Err(syntax());
    }
    i += 1;
    // Minute: getnum(value, true) needs exactly two digits.
    let (Some(m1), Some(m2)) = (b.get(i), b.get(i + 1)) else {
        return Err(syntax());
    };
    if !m1.is_ascii_digit() || !m2.is_ascii_digit() {
        return Err(syntax());
    }
    let minute = u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0');
    i += 2;
    let (am, pm) = match &b[i..] {
        b"AM" | b"am" => (true, false),
        b"PM" | b"pm" => (false, true),
        _ => return Err(syntax()),
    };
    // Go checks ranges after the whole layout matched, hour before minute.
    if hour > 12 {
        return Err(TimeError::HourRange(s.to_string()));
    }
    if minute > 59 {
        return Err(TimeError::MinuteRange(s.to_string()));
    }
    let hour = match (am, pm, hour) {
        (true, _, 12) => 0,
        (_, true, h) if h < 12 => h + 12,
        (_, _, h) => h,
    };
    // Both values were range-checked above, so they fit in a u8.
    Ok(HourMinute {
        hour: hour as u8,
        minute: minute as u8,
    })
}

/// Stork's `Days` map: the exact weekday keys it accepts, with the weekday (0 = Sunday).
const DAYS: [(&str, u8); 32] = [
    ("Sunday", 0),
    ("Sun", 0),
    ("sunday", 0),
    ("sun", 0),
    ("Monday", 1),
    ("Mon", 1),
    ("monday", 1),
    ("mon", 1),
    ("Tuesday", 2),
    ("Tue", 2),
    ("tuesday", 2),
    ("tue", 2),
    ("Wednesday", 3),
    ("Wed", 3),
    ("wednesday", 3),
    ("wed", 3),
    ("Thursday", 4),
    ("Thu", 4),
    ("Thur", 4),
    ("Thurs", 4),
    ("thursday", 4),
    ("thu", 4),
    ("thur", 4),
    ("thurs", 4),
    ("Friday", 5),
    ("Fri", 5),
    ("friday", 5),
    ("fri", 5),
    ("Saturday", 6),
    ("Sat", 6),
    ("saturday", 6),
    ("sat", 6),
];

/// The weekday (0 = Sunday) of one of Stork's weekday keys; `None` for anything else (`MONDAY`, `Tues`, `""`).
pub fn weekday(day: &str) -> Option<u8> {
    DAYS.iter().find(|(k, _)| *k == day).map(|(_, d)| *d)
}

/// One problem in a schedule policy, at a field path.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// Full field path, e.g. `policy.weekly.day`.
    pub field: String,
    /// What is wrong, the offending value and what to write instead.
    pub message: String,
}

/// Validates a policy body as Stork's `Validate()` does, plus `retain ≥ 0` (Stork ignores negatives silently).
/// `prefix` is the path of the body, e.g. `policy` or `spec.schedule`. Returns every problem, in field order.
pub fn validate_policy(policy: &SchedulePolicyItem, prefix: &str) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    let mut push = |field: String, message: String| errors.push(PolicyError { field, message });
    let check_time = |push: &mut dyn FnMut(String, String), section: &str, time: Option<&str>| {
        let field = format!("{prefix}.{section}.time");
        match time {
            None => push(
                field,
                "missing: set a time such as \"2:00AM\" (hour 0-12, 2-digit minute, AM or PM)"
                    .into(),
            ),
            Some(t) => {
                if let Err(e) = parse_time(t) {
                    push(field, e.to_string());
                }
            }
        }
    };
    let check_retain =
        |push: &mut dyn FnMut(String, String), section: &str, retain: Option<i64>| {
            if let Some(r) = retain.filter(|r| *r < 0) {
                push(
                    format!("{prefix}.{section}.retain"),
                    format!("{r} is negative: use 0 for Stork's default or a positive count"),
                );
            }
        };

    if let Some(interval) = &policy.interval {
        let minutes = interval.interval_minutes.unwrap_or(0);
        if minutes < 1 {
            push(
                format!("{prefix}.interval.intervalMinutes"),
                format!(
                    "{minutes} is not a valid interval: use at least 1 (minutes between migrations)"
                ),
            );
        }
        check_retain(&mut push, "interval", interval.retain);
    }
    if let Some(daily) = &policy.daily {
        check_time(&mut push, "daily", daily.time.as_deref());
        check_retain(&mut push, "daily", daily.retain);
        if let Some(day) = daily
            .force_full_snapshot_day
            .as_deref()
            .filter(|d| !d.is_empty())
            && weekday(day).is_none()
        {
            push(
                format!("{prefix}.daily.forceFullSnapshotDay"),
                invalid_day_message(day),
            );
        }
    }
    if let Some(weekly) = &policy.weekly {
        let day = weekly.day.as_deref().unwrap_or("");
        if weekday(day).is_none() {
            push(format!("{prefix}.weekly.day"), invalid_day_message(day));
        }
        check_time(&mut push, "weekly", weekly.time.as_deref());
        check_retain(&mut push, "weekly", weekly.retain);
    }
    if let Some(monthly) = &policy.monthly {
        let date = monthly.date.unwrap_or(0);
        if !(1..=31).contains(&date) {
            push(
                format!("{prefix}.monthly.date"),
                format!(
                    "{date} is not a day of the month: use 1 to 31 (29-31 skip the months without that day)"
                ),
            );
        }
        check_time(&mut push, "monthly", monthly.time.as_deref());
        check_retain(&mut push, "monthly", monthly.retain);
    }
    errors
}

fn invalid_day_message(day: &str) -> String {
    if day.is_empty() {
        return "missing: set a weekday Stork accepts, e.g. \"Sunday\", \"Sun\", \"sunday\" or \"sun\"".to_string();
    }
    format!(
        "invalid day {day:?}: use a weekday Stork accepts, e.g. \"Monday\", \"Mon\", \"monday\" or \"mon\" \
         (also \"Thur\"/\"Thurs\"); all-caps and other abbreviations are rejected"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stork::types::{DailyPolicy, IntervalPolicy, MonthlyPolicy, WeeklyPolicy};

    #[test]
    fn times_follow_go_kitchen_parsing() {
        let ok = [
            ("12:04PM", 12, 4),
            ("4:00PM", 16, 0),
            ("01:15am", 1, 15),
            ("0:30AM", 0, 30),
            ("12:00am", 0, 0),
            ("12:59AM", 0, 59),
            ("0:30PM", 12, 30),
            ("11:59pm", 23, 59),
            ("2:00AM", 2, 0),
        ];
        for (s, h, m) in ok {
            assert_eq!(parse_time(s), Ok(HourMinute { hour: h, minute: m }), "{s}");
        }
        let syntax = [
            "12:04", "4:5PM", "4:005PM", "4:00 PM", "4:00Pm", "4:00pM", "4:00PMx", "4:00P", "",
            "PM", "123:00PM", ":30PM", "4-00PM", " 4:00PM", "4:00PM ",
        ];
        for s in syntax {
            assert!(
                matches!(parse_time(s), Err(TimeError::Syntax(_))),
                "{s} should be a syntax error"
            );
        }
        assert!(matches!(
            parse_time("13:15pm"),
            Err(TimeError::HourRange(_))
        ));
        assert!(matches!(
            parse_time("25:15am"),
            Err(TimeError::HourRange(_))
        ));
        assert!(matches!(
            parse_time("4:60PM"),
            Err(TimeError::MinuteRange(_))
        ));
    }

    #[test]
    fn weekday_keys_are_exact() {
        for (k, d) in [
            ("Thurs", 4),
            ("thur", 4),
            ("Thu", 4),
            ("sun", 0),
            ("Saturday", 6),
            ("friday", 5),
        ] {
            assert_eq!(weekday(k), Some(d), "{k}");
        }
        for k in [
            "MONDAY", "Tues", "T", "", "Fooday", "Sunday ", "SUN", "wednes",
        ] {
            assert_eq!(weekday(k), None, "{k}");
        }
    }

    fn fields(policy: &SchedulePolicyItem) -> Vec<String> {
        validate_policy(policy, "policy")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn validate_policy_table() {
        let interval = |m| SchedulePolicyItem {
            interval: Some(IntervalPolicy {
                interval_minutes: m,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(fields(&interval(Some(1))).is_empty());
        assert_eq!(
            fields(&interval(Some(0))),
            ["policy.interval.intervalMinutes"]
        );
        assert_eq!(fields(&interval(None)), ["policy.interval.intervalMinutes"]);

        let monthly = |date| SchedulePolicyItem {
            monthly: Some(MonthlyPolicy {
                date,
                time: Some("12:04PM".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(fields(&monthly(Some(31))).is_empty());
        assert!(fields(&monthly(Some(1))).is_empty());
        assert_eq!(fields(&monthly(Some(32))), ["policy.monthly.date"]);
        assert_eq!(fields(&monthly(Some(0))), ["policy.monthly.date"]);

        let weekly = |day: Option<&str>, time: &str| SchedulePolicyItem {
            weekly: Some(WeeklyPolicy {
                day: day.map(Into::into),
                time: Some(time.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(fields(&weekly(Some("Thurs"), "0:30AM")).is_empty());
        assert_eq!(
            fields(&weekly(Some("MONDAY"), "2:00AM")),
            ["policy.weekly.day"]
        );
        assert_eq!(fields(&weekly(None, "12:04PM")), ["policy.weekly.day"]);
        assert_eq!(
            fields(&weekly(Some("mon"), "12:04")),
            ["policy.weekly.time"]
        );

        let daily = SchedulePolicyItem {
            daily: Some(DailyPolicy {
                time: Some("4:00PM".into()),
                retain: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fields(&daily), ["policy.daily.retain"]);
        assert!(
            fields(&SchedulePolicyItem::default()).is_empty(),
            "an empty policy is valid and never fires"
        );
    }

    #[test]
    fn errors_name_value_and_fix() {
        let weekly = SchedulePolicyItem {
            weekly: Some(WeeklyPolicy {
                day: Some("Fooday".into()),
                time: Some("12:04PM".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let errs = validate_policy(&weekly, "policy");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.contains("\"Fooday\""),
            "{}",
            errs[0].message
        );
        assert!(errs[0].message.contains("Monday"), "{}", errs[0].message);
    }

    #[test]
    fn built_in_policy_names() {
        for name in BUILT_IN_POLICIES {
            let policy = built_in_policy(name).unwrap();
            assert!(
                validate_policy(&policy, "policy").is_empty(),
                "{name} is valid"
            );
        }
        assert_eq!(
            built_in_policy("default-migration-policy")
                .unwrap()
                .interval
                .unwrap()
                .interval_minutes,
            Some(30)
        );
        assert!(built_in_policy("nightly").is_none());
        assert!(is_built_in("default-migration-policy"));
        assert!(is_built_in("default-monthly-policy"));
        assert!(!is_built_in("default-hourly-policy"));
    }
}
