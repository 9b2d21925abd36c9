//! A route's time window: `hours`, `days` and `timezone`.

use std::time::SystemTime;

use jiff::{Timestamp, tz::TimeZone};

/// Minutes in a day.
const DAY: u16 = 24 * 60;

/// Day names as the config writes them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When a route is open.
#[derive(Clone, Debug)]
pub struct Window {
    /// Start and end, minutes after midnight (end 1440 = midnight after;
    /// an end at or before the start wraps past midnight).
    hours: Option<(u16, u16)>,
    /// Bit `i`: day `DAYS[i]` is open.
    days: u8,
    tz: TimeZone,
    tz_name: String,
}

fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// Parses `"08:00-18:00"`; errors say what is expected.
pub fn parse_hours(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?}: expected \"HH:MM-HH:MM\" (24-hour clock, e.g. \"08:00-18:00\")");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
    if a == DAY {
        return Err(bad());
    }
    if a == b {
        return Err(format!(
            "{s:?}: an empty window (for all day, leave hours out or write \"00:00-24:00\")"
        ));
    }
    Ok((a, b))
}

/// Parses day names (`mon` .. `sun`, any case, full names too).
pub fn parse_days(days: &[String]) -> Result<u8, String> {
    if days.is_empty() {
        return Err("an empty list (leave days out for every day)".into());
    }
    let mut bits = 0u8;
    for d in days {
        let l = d.trim().to_ascii_lowercase();
        let i = DAYS
            .iter()
            .position(|n| l.len() >= 3 && l.starts_with(n) && full_or_short(&l, n))
            .ok_or_else(|| format!("{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))?;
        bits |= 1 << i;
    }
    Ok(bits)
}

fn full_or_short(l: &str, short: &str) -> bool {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    l == short || FULL.contains(&l) && l.starts_with(short)
}

impl Window {
    /// A window from the route's keys; None when it has none of them.
    pub fn new(
        hours: Option<&str>,
        days: Option<&[String]>,
        timezone: Option<&str>,
    ) -> Result<Option<Window>, (&'static str, String)> {
        if hours.is_none() && days.is_none() {
            if let Some(tz) = timezone {
                TimeZone::get(tz).map_err(|e| ("timezone", format!("{tz:?}: {e}")))?;
            }
            return Ok(None);
        }
        let hours = hours
            .map(parse_hours)
            .transpose()
            .map_err(|e| ("hours", e))?;
        let days = days
            .map(parse_days)
            .transpose()
            .map_err(|e| ("days", e))?
            .unwrap_or(0x7f);
        let tz_name = timezone.unwrap_or("UTC").to_string();
        let tz = TimeZone::get(&tz_name).map_err(|e| {
            (
                "timezone",
                format!("{tz_name:?}: {e} (an IANA name such as \"Europe/Paris\" or \"UTC\")"),
            )
        })?;
        Ok(Some(Window {
            hours: hours.filter(|&(a, b)| !(a == 0 && b == DAY)),
            days,
            tz,
            tz_name,
        }))
    }

    /// Whether the route is open at `now`. A window that wraps past
    /// midnight belongs to the day it starts on.
    pub fn is_open(&self, now: SystemTime) -> bool {
        let Ok(ts) = Timestamp::try_from(now) else {
            return false;
        };
        let local = ts.to_zoned(self.tz.clone());
        let t = local.hour() as u16 * 60 + local.minute() as u16;
        let today = local.weekday().to_monday_zero_offset() as u8;
        let yesterday = (today + 6) % 7;
        let open_on = |d: u8| self.days & (1 << d) != 0;
        match self.hours {
            None => open_on(today),
            Some((a, b)) if a < b => (a..b).contains(&t) && open_on(today),
            Some((a, b)) => (t >= a && open_on(today)) || (t < b && open_on(yesterday)),
        }
    }

    /// The window as the config wrote it, for `waf route`.
    pub fn describe(&self) -> String {
        let hours = match self.hours {
            None => "all day".to_string(),
            Some((a, b)) => format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60),
        };
        let days: Vec<&str> = (0..7)
            .filter(|i| self.days & (1 << i) != 0)
            .map(|i| DAYS[i as usize])
            .collect();
        format!("{hours} on {} ({})", days.join(","), self.tz_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: the instant of a civil time in a zone.
    fn at(tz: &str, civil: &str) -> SystemTime {
        let dt: jiff::civil::DateTime = civil.parse().unwrap();
        SystemTime::from(dt.to_zoned(TimeZone::get(tz).unwrap()).unwrap().timestamp())
    }

    fn days(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn office_hours_on_weekdays() {
        let w = Window::new(
            Some("08:00-18:00"),
            Some(&days(&["mon", "tue", "wed", "thu", "fri"])),
            Some("Europe/Paris"),
        )
        .unwrap()
        .unwrap();
        // 2026-12-04 is a Friday.
        assert!(w.is_open(at("Europe/Paris", "2026-12-04T08:00")));
        assert!(w.is_open(at("Europe/Paris", "2026-12-04T17:59")));
        assert!(!w.is_open(at("Europe/Paris", "2026-12-04T18:00")));
        assert!(!w.is_open(at("Europe/Paris", "2026-12-04T07:59")));
        assert!(
            !w.is_open(at("Europe/Paris", "2026-12-05T10:00")),
            "Saturday"
        );
        // The zone counts: 07:30 UTC is 08:30 in Paris in winter.
        assert!(w.is_open(at("UTC", "2026-12-04T07:30")));
        // Summer time: 06:30 UTC is 08:30 in Paris in July.
        assert!(w.is_open(at("UTC", "2026-07-03T06:30")));
        assert!(!w.is_open(at("UTC", "2026-07-03T16:30")));
        assert!(
            w.describe()
                .contains("08:00-18:00 on mon,tue,wed,thu,fri (Europe/Paris)")
        );
    }

    #[test]
    fn windows_past_midnight_belong_to_their_first_day() {
        let w = Window::new(Some("22:00-02:00"), Some(&days(&["friday"])), None)
            .unwrap()
            .unwrap();
        assert!(w.is_open(at("UTC", "2026-12-04T23:00")), "Friday night");
        assert!(
            w.is_open(at("UTC", "2026-12-05T01:59")),
            "Saturday, small hours"
        );
        assert!(!w.is_open(at("UTC", "2026-12-05T02:00")));
        assert!(!w.is_open(at("UTC", "2026-12-05T23:00")), "Saturday night");
        assert!(
            !w.is_open(at("UTC", "2026-12-04T01:00")),
            "Thursday's night"
        );
    }

    #[test]
    fn bad_windows_are_refused_with_the_reason() {
        for h in [
            "8-18",
            "08:00",
            "25:00-26:00",
            "08:00-08:00",
            "08:60-09:00",
            "24:00-01:00",
        ] {
            assert!(parse_hours(h).is_err(), "{h}");
        }
        assert_eq!(parse_hours("00:00-24:00"), Ok((0, DAY)));
        assert!(parse_days(&days(&["mo"])).is_err());
        assert!(parse_days(&days(&["mondays"])).is_err());
        assert!(parse_days(&[]).is_err());
        let e = Window::new(Some("08:00-18:00"), None, Some("Mars/Olympus")).unwrap_err();
        assert_eq!(e.0, "timezone");
        assert!(Window::new(None, None, Some("Nowhere/City")).is_err());
        assert!(Window::new(None, None, Some("UTC")).unwrap().is_none());
        // All day every day is open at any time.
        let all = Window::new(Some("00:00-24:00"), None, None)
            .unwrap()
            .unwrap();
        assert!(all.is_open(at("UTC", "2026-12-04T00:00")));
        assert!(all.is_open(at("UTC", "2026-12-06T23:59")));
    }
}
