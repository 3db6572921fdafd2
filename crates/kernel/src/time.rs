//! China civil dates from instants.
//!
//! Deadlines and notice periods are counted in China's calendar days, while instants are stored
//! in UTC. China uses UTC+8 all year (no daylight saving), so a fixed offset is exact.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The date in China (UTC+8) at instant `ts`.
pub fn china_date(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&CHINA).date_naive()
}

/// The instant China's `date` begins (00:00 UTC+8, i.e. 16:00 UTC the day before).
/// Saturates at the earliest representable instant for chrono's minimum date.
pub fn china_start_of_day_utc(date: NaiveDate) -> DateTime<Utc> {
    CHINA
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .single()
        .map_or(DateTime::<Utc>::MIN_UTC, |start| start.with_timezone(&Utc))
}

/// A calendar day written exactly `YYYY-MM-DD`, years 0001 to 9999 (what the APIs and events
/// promise and PostgreSQL stores). chrono alone also reads `2026-3-8`, `+2026-03-08` and
/// years with a sign or more digits.
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && !s.starts_with("0000");
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn china_date_is_utc_plus_eight() {
        assert_eq!(china_date(utc("2025-09-30T15:59:59Z")), date(2025, 9, 30));
        assert_eq!(china_date(utc("2025-09-30T16:00:00Z")), date(2025, 10, 1));
        assert_eq!(china_date(utc("2025-12-31T20:00:00Z")), date(2026, 1, 1));
        // Mid-summer: no daylight saving shift.
        assert_eq!(china_date(utc("2025-07-01T15:59:59Z")), date(2025, 7, 1));
    }

    #[test]
    fn start_of_day_is_previous_utc_day_at_sixteen() {
        assert_eq!(
            china_start_of_day_utc(date(2025, 10, 1)),
            utc("2025-09-30T16:00:00Z")
        );
        assert_eq!(
            china_start_of_day_utc(NaiveDate::MIN),
            DateTime::<Utc>::MIN_UTC
        );
    }

    proptest! {
        #[test]
        fn start_of_day_maps_back_to_its_date(days in -100_000i64..100_000) {
            let day = date(2000, 1, 1) + TimeDelta::days(days);
            let start = china_start_of_day_utc(day);
            prop_assert_eq!(china_date(start), day);
            prop_assert_eq!(china_date(start - TimeDelta::seconds(1)), day.pred_opt().unwrap());
            prop_assert_eq!(china_date(start + TimeDelta::hours(24) - TimeDelta::seconds(1)), day);
        }
    }

    #[test]
    fn iso_dates_are_read_exactly() {
        assert_eq!(
            parse_iso_date("2026-03-08"),
            NaiveDate::from_ymd_opt(2026, 3, 8)
        );
        assert!(parse_iso_date("0001-01-01").is_some());
        assert!(parse_iso_date("9999-12-31").is_some());
        for bad in [
            "2026-3-8",
            "+2026-03-08",
            "-5000-01-01",
            "12026-03-08",
            "0000-01-01",
            "2026-02-30",
            " 2026-03-08",
            "2026/03/08",
            "",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }
}
