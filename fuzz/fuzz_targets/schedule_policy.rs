//! Stork's schedule-policy syntax, differentially: generated times, weekdays, dates, intervals and retains,
//! judged by a reference model written here from Stork's documented rules (`pkg/schedule`: `getHourMinute` is Go
//! `time.Parse("3:04PM")` then `"3:04pm"`; the `Days` map; `Validate()`: interval ≥ 1, 1 ≤ date ≤ 31, weekly day
//! and every time required) plus drgitops' one documented addition (`retain` ≥ 0), and by drgitops three ways:
//! `stork::schedule::parse_time` / `weekday`, `validate_policy` on the typed policy, and the
//! `schedule-policy-syntax` admission rule on a SchedulePolicy object.
//!
//! Property: every way agrees with the model on accept/reject, on the error's field paths, on the kind of time
//! error (syntax, hour or minute range) and on the parsed 24-hour time.

#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use drgitops::policy::{Operation, Outcome, PolicyConfig, Request, UserInfo, evaluate};
use drgitops::stork::schedule::{HourMinute, TimeError, parse_time, validate_policy, weekday};
use drgitops::stork::types::SchedulePolicyItem;
use drgitops_fuzz::FixedView;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

// ---- The reference model -------------------------------------------------------------------------------------

/// The model's verdict on a time: Go's `time.Parse` with layout `3:04PM`, retried with `3:04pm`.
#[derive(Debug, PartialEq, Eq)]
enum ModelTime {
    Ok(u8, u8),
    Syntax,
    Hour,
    Minute,
}

/// Go `time.Parse(layout, s)` for the layouts `3:04PM` / `3:04pm`: `3` is `stdHour12` (`getnum(s, false)`: one
/// digit, and a second when one follows), `:` literal, `04` is `stdZeroMinute` (`getnum(s, true)`: exactly two
/// digits), `PM` / `pm` is `stdPM` / `stdpm` (exactly `AM`/`PM`, or exactly `am`/`pm`), then the end of the
/// string. Range checks come after the whole layout matched: hour 0–12, then minute 0–59.
fn go_kitchen(s: &str, upper: bool) -> ModelTime {
    let digits: Vec<char> = s.chars().collect();
    let is_digit = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_digit());
    let mut at = 0;
    if !is_digit(digits.get(at)) {
        return ModelTime::Syntax;
    }
    let mut hour = digits[at].to_digit(10).unwrap_or(0);
    at += 1;
    if is_digit(digits.get(at)) {
        hour = hour * 10 + digits[at].to_digit(10).unwrap_or(0);
        at += 1;
    }
    if digits.get(at) != Some(&':') {
        return ModelTime::Syntax;
    }
    at += 1;
    if !(is_digit(digits.get(at)) && is_digit(digits.get(at + 1))) {
        return ModelTime::Syntax;
    }
    let minute =
        digits[at].to_digit(10).unwrap_or(0) * 10 + digits[at + 1].to_digit(10).unwrap_or(0);
    at += 2;
    let rest: String = digits[at..].iter().collect();
    let (am, pm) = if upper { ("AM", "PM") } else { ("am", "pm") };
    let is_pm = if rest == am {
        false
    } else if rest == pm {
        true
    } else {
        return ModelTime::Syntax;
    };
    if hour > 12 {
        return ModelTime::Hour;
    }
    if minute > 59 {
        return ModelTime::Minute;
    }
    let hour24 = match (is_pm, hour) {
        (false, 12) => 0,
        (true, h) if h < 12 => h + 12,
        (_, h) => h,
    };
    ModelTime::Ok(hour24 as u8, minute as u8)
}

/// `getHourMinute`: the upper-case layout, and on failure the lower-case one; Stork reports the second error
/// only if both fail. The two layouts can only differ on the suffix, so a range error of either is the answer.
fn model_time(s: &str) -> ModelTime {
    match go_kitchen(s, true) {
        ModelTime::Syntax => go_kitchen(s, false),
        other => other,
    }
}

/// Stork's `Days` map: each weekday's full English name and its first three letters, capitalised or all lower
/// case, and for Thursday also `Thur` and `Thurs`. Nothing else: no upper case, no other abbreviations.
fn model_day(s: &str) -> Option<u8> {
    const NAMES: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    for (index, name) in NAMES.iter().enumerate() {
        let mut forms = vec![name.to_string(), name[..3].to_string()];
        if *name == "thursday" {
            forms.push("thur".to_string());
            forms.push("thurs".to_string());
        }
        for form in forms {
            let mut capital = form.clone();
            capital[..1].make_ascii_uppercase();
            if s == form || s == capital {
                return Some(index as u8);
            }
        }
    }
    None
}

// ---- Generated input -------------------------------------------------------------------------------------------

/// A time string, mostly close to the kitchen layout.
#[derive(Arbitrary, Debug)]
enum TimeText {
    Shaped {
        hour: u8,
        zero_pad: bool,
        separator: u8,
        minute: u8,
        minute_digits: u8,
        suffix: u8,
        prefix_space: bool,
        trailing: u8,
    },
    Raw(String),
}

const SUFFIXES: [&str; 14] = [
    "AM",
    "PM",
    "am",
    "pm",
    "Am",
    "aM",
    "Pm",
    "pM",
    "",
    " AM",
    "A",
    "PMM",
    "\u{0130}M",
    "pm\n",
];

impl TimeText {
    fn render(&self) -> String {
        match self {
            TimeText::Raw(s) => s.clone(),
            TimeText::Shaped {
                hour,
                zero_pad,
                separator,
                minute,
                minute_digits,
                suffix,
                prefix_space,
                trailing,
            } => {
                let hour = hour % 30;
                let hour = if *zero_pad {
                    format!("{hour:02}")
                } else {
                    hour.to_string()
                };
                let separator = match separator % 8 {
                    0 => ".",
                    1 => "-",
                    2 => "::",
                    _ => ":",
                };
                let minute = match minute_digits % 6 {
                    0 => format!("{}", minute % 10),
                    1 => format!("{:03}", minute),
                    _ => format!("{:02}", minute % 100),
                };
                let suffix = SUFFIXES[usize::from(*suffix) % SUFFIXES.len()];
                let space = if *prefix_space { " " } else { "" };
                let trailing = match trailing % 8 {
                    0 => " ",
                    1 => "x",
                    _ => "",
                };
                format!("{space}{hour}{separator}{minute}{suffix}{trailing}")
            }
        }
    }
}

/// A weekday string, mostly one of the accepted forms or a near miss.
#[derive(Arbitrary, Debug)]
enum DayText {
    Shaped { day: u8, length: u8, case: u8 },
    Raw(String),
}

impl DayText {
    fn render(&self) -> String {
        const NAMES: [&str; 7] = [
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
        ];
        match self {
            DayText::Raw(s) => s.clone(),
            DayText::Shaped { day, length, case } => {
                let name = NAMES[usize::from(*day) % 7];
                let length = match length % 6 {
                    0 => 2,
                    1 => 3,
                    2 => 4,
                    3 => 5,
                    _ => name.len(),
                }
                .min(name.len());
                let mut s = name[..length].to_string();
                match case % 5 {
                    0 => s[..1].make_ascii_uppercase(),
                    1 => s.make_ascii_uppercase(),
                    2 => s[length - 1..].make_ascii_uppercase(),
                    _ => {}
                }
                s
            }
        }
    }
}

/// A number field: absent, an integer, or a value of the wrong type.
#[derive(Arbitrary, Debug)]
enum Number {
    Absent,
    Small(i8),
    Large(i64),
    Text(String),
    Fraction,
}

impl Number {
    fn value(&self) -> Option<Value> {
        match self {
            Number::Absent => None,
            Number::Small(n) => Some(json!(n)),
            Number::Large(n) => Some(json!(n)),
            Number::Text(s) => Some(json!(s)),
            Number::Fraction => Some(json!(1.5)),
        }
    }
    fn integer(&self) -> Result<Option<i64>, ()> {
        match self {
            Number::Absent => Ok(None),
            Number::Small(n) => Ok(Some(i64::from(*n))),
            Number::Large(n) => Ok(Some(*n)),
            Number::Text(_) | Number::Fraction => Err(()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Section {
    time: Option<TimeText>,
    day: Option<DayText>,
    number: Number,
    retain: Number,
}

#[derive(Arbitrary, Debug)]
struct Input {
    interval: Option<(Number, Number)>,
    daily: Option<Section>,
    weekly: Option<Section>,
    monthly: Option<Section>,
    times: Vec<TimeText>,
    days: Vec<DayText>,
}

// ---- The comparison ------------------------------------------------------------------------------------------

fn ours_time(s: &str) -> ModelTime {
    match parse_time(s) {
        Ok(HourMinute { hour, minute }) => ModelTime::Ok(hour, minute),
        Err(TimeError::Syntax(_)) => ModelTime::Syntax,
        Err(TimeError::HourRange(_)) => ModelTime::Hour,
        Err(TimeError::MinuteRange(_)) => ModelTime::Minute,
    }
}

/// The field paths the model expects errors at, or `None` when some field has the wrong type (then the whole
/// `policy` cannot be read).
fn model_errors(input: &Input, object: &Value) -> Option<BTreeSet<String>> {
    let mut errors = BTreeSet::new();
    let time = |section: &str, t: &Option<TimeText>, errors: &mut BTreeSet<String>| {
        let ok = t
            .as_ref()
            .is_some_and(|t| matches!(model_time(&t.render()), ModelTime::Ok(..)));
        if !ok {
            errors.insert(format!("policy.{section}.time"));
        }
    };
    let retain = |section: &str, n: &Number, errors: &mut BTreeSet<String>| -> Option<()> {
        if n.integer().ok()?.is_some_and(|r| r < 0) {
            errors.insert(format!("policy.{section}.retain"));
        }
        Some(())
    };
    if let Some((minutes, r)) = &input.interval {
        if minutes.integer().ok()?.unwrap_or(0) < 1 {
            errors.insert("policy.interval.intervalMinutes".to_string());
        }
        retain("interval", r, &mut errors)?;
    }
    if let Some(daily) = &input.daily {
        time("daily", &daily.time, &mut errors);
        retain("daily", &daily.retain, &mut errors)?;
        // forceFullSnapshotDay: optional; when set and non-empty, one of the Days keys (storkctl's check).
        if let Some(day) = &daily.day {
            let day = day.render();
            if !day.is_empty() && model_day(&day).is_none() {
                errors.insert("policy.daily.forceFullSnapshotDay".to_string());
            }
        }
    }
    if let Some(weekly) = &input.weekly {
        if weekly
            .day
            .as_ref()
            .and_then(|d| model_day(&d.render()))
            .is_none()
        {
            errors.insert("policy.weekly.day".to_string());
        }
        time("weekly", &weekly.time, &mut errors);
        retain("weekly", &weekly.retain, &mut errors)?;
    }
    if let Some(monthly) = &input.monthly {
        if !(1..=31).contains(&monthly.number.integer().ok()?.unwrap_or(0)) {
            errors.insert("policy.monthly.date".to_string());
        }
        time("monthly", &monthly.time, &mut errors);
        retain("monthly", &monthly.retain, &mut errors)?;
    }
    let _ = object;
    Some(errors)
}

fn policy_object(input: &Input) -> Value {
    let mut policy = serde_json::Map::new();
    let put = |map: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>| {
        if let Some(v) = value {
            map.insert(key.to_string(), v);
        }
    };
    if let Some((minutes, retain)) = &input.interval {
        let mut s = serde_json::Map::new();
        put(&mut s, "intervalMinutes", minutes.value());
        put(&mut s, "retain", retain.value());
        policy.insert("interval".into(), Value::Object(s));
    }
    for (name, section) in [
        ("daily", &input.daily),
        ("weekly", &input.weekly),
        ("monthly", &input.monthly),
    ] {
        let Some(section) = section else { continue };
        let mut s = serde_json::Map::new();
        put(
            &mut s,
            "time",
            section.time.as_ref().map(|t| json!(t.render())),
        );
        put(&mut s, "retain", section.retain.value());
        match name {
            "daily" => put(
                &mut s,
                "forceFullSnapshotDay",
                section.day.as_ref().map(|d| json!(d.render())),
            ),
            "weekly" => put(
                &mut s,
                "day",
                section.day.as_ref().map(|d| json!(d.render())),
            ),
            _ => put(&mut s, "date", section.number.value()),
        }
        policy.insert(name.into(), Value::Object(s));
    }
    json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1",
        "kind": "SchedulePolicy",
        "metadata": {"name": "fuzz"},
        "policy": policy,
    })
}

fuzz_target!(|input: Input| {
    for t in &input.times {
        let s = t.render();
        assert_eq!(ours_time(&s), model_time(&s), "time {s:?}");
    }
    for d in &input.days {
        let s = d.render();
        assert_eq!(weekday(&s), model_day(&s), "weekday {s:?}");
    }

    let object = policy_object(&input);
    let expected = model_errors(&input, &object);

    // The typed policy, through `validate_policy`.
    let typed = serde_json::from_value::<SchedulePolicyItem>(object["policy"].clone());
    match (&expected, typed) {
        (None, Ok(item)) => panic!("a wrongly typed field was read: {item:?} from {object}"),
        (None, Err(_)) => {}
        (Some(_), Err(err)) => panic!("a well-typed policy was not read: {err} from {object}"),
        (Some(expected), Ok(item)) => {
            let got: BTreeSet<String> = validate_policy(&item, "policy")
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(&got, expected, "validate_policy on {object}");
        }
    }

    // The admission rule, on a SchedulePolicy CREATE.
    let user = UserInfo {
        username: "alice".to_string(),
        groups: vec!["system:authenticated".to_string()],
    };
    let req = Request {
        operation: Operation::Create,
        group: "stork.libopenstorage.org",
        kind: "SchedulePolicy",
        sub_resource: None,
        namespace: None,
        name: Some("fuzz"),
        object: Some(&object),
        old_object: None,
        user: &user,
        dry_run: false,
        field_manager: None,
    };
    let decision = evaluate(&req, &FixedView, &PolicyConfig::default());
    let got: BTreeSet<String> = decision
        .findings
        .iter()
        .filter(|f| f.rule == "schedule-policy-syntax")
        .inspect(|f| assert_eq!(f.outcome, Outcome::Deny, "{f:?}"))
        .map(|f| f.field.clone())
        .collect();
    let expected = expected.unwrap_or_else(|| BTreeSet::from(["policy".to_string()]));
    assert_eq!(got, expected, "schedule-policy-syntax on {object}");
});
