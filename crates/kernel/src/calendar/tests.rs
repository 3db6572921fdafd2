use super::*;
use proptest::prelude::*;

const SHIPPED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/calendar");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn shipped() -> WorkingDayCalendar {
    WorkingDayCalendar::load_dir(SHIPPED_DIR).unwrap()
}

/// A synthetic year with one holiday and one swapped Saturday, for the data-driven rules.
fn synthetic(year: i32, holidays: &str, working: &str) -> String {
    format!(
        "year = {year}\nsource = \"test\"\nholidays = [{holidays}]\nadjusted_working_days = [{working}]\n"
    )
}

#[test]
fn shipped_files_load_and_are_consistent() {
    // load_dir rejects swapped working days that are not weekends, dates outside their year,
    // duplicates and contradictions, so loading proves the shipped data is self-consistent.
    let calendar = shipped();
    assert_eq!(calendar.years(), vec![2024, 2025, 2026]);
    assert!(
        calendar
            .source(2025)
            .unwrap()
            .contains("国办发明电〔2024〕12号")
    );
    assert!(
        calendar
            .source(2024)
            .unwrap()
            .contains("国办发明电〔2023〕7号")
    );
}

#[test]
fn holiday_periods_are_days_off_and_swapped_weekends_are_working() {
    let calendar = shipped();
    let off = |from: NaiveDate, to: NaiveDate| {
        from.iter_days()
            .take_while(|d| *d <= to)
            .all(|d| !calendar.is_working_day(d).unwrap())
    };
    // 2024 (国办发明电〔2023〕7号)
    assert!(off(date(2024, 2, 10), date(2024, 2, 17)));
    assert!(calendar.is_working_day(date(2024, 2, 4)).unwrap());
    assert!(calendar.is_working_day(date(2024, 2, 9)).unwrap()); // 除夕: only "encouraged" off
    assert!(calendar.is_working_day(date(2024, 2, 18)).unwrap());
    assert!(calendar.is_working_day(date(2024, 9, 14)).unwrap());
    assert!(off(date(2024, 10, 1), date(2024, 10, 7)));
    assert!(calendar.is_working_day(date(2024, 10, 12)).unwrap());
    // 2025 (国办发明电〔2024〕12号)
    assert!(off(date(2025, 1, 28), date(2025, 2, 4)));
    assert!(calendar.is_working_day(date(2025, 1, 26)).unwrap());
    assert!(calendar.is_working_day(date(2025, 2, 8)).unwrap());
    assert!(off(date(2025, 5, 31), date(2025, 6, 2)));
    assert!(!calendar.is_working_day(date(2025, 10, 1)).unwrap());
    assert!(off(date(2025, 10, 1), date(2025, 10, 8)));
    assert!(calendar.is_working_day(date(2025, 9, 28)).unwrap());
    assert!(calendar.is_working_day(date(2025, 10, 9)).unwrap());
    // 2026
    assert!(off(date(2026, 1, 1), date(2026, 1, 3)));
    assert!(calendar.is_working_day(date(2026, 1, 4)).unwrap());
    assert!(calendar.is_working_day(date(2026, 2, 14)).unwrap()); // Saturday, swapped
    assert!(!calendar.is_working_day(date(2026, 2, 16)).unwrap());
    assert!(off(date(2026, 2, 15), date(2026, 2, 23)));
    assert!(calendar.is_working_day(date(2026, 2, 24)).unwrap());
    assert!(calendar.is_working_day(date(2026, 2, 28)).unwrap());
    assert!(calendar.is_working_day(date(2026, 5, 9)).unwrap());
    assert!(calendar.is_working_day(date(2026, 9, 20)).unwrap());
    assert!(off(date(2026, 10, 1), date(2026, 10, 7)));
    assert!(calendar.is_working_day(date(2026, 10, 10)).unwrap());
    // Ordinary weekends and weekdays.
    assert!(!calendar.is_working_day(date(2025, 3, 8)).unwrap());
    assert!(calendar.is_working_day(date(2025, 3, 10)).unwrap());
}

#[test]
fn working_days_per_year_match_the_notices() {
    // Worked by hand from the notices: weekdays of the year, minus holidays falling on
    // weekdays, plus swapped weekends.
    //   2024: 262 - (1+5+2+3+1+2+5 = 19) + 8 = 251
    //   2025: 261 - (1+6+1+3+1+6 = 18) + 5 = 248
    //   2026: 261 - (2+6+1+3+1+1+5 = 19) + 6 = 248
    let calendar = shipped();
    // The (Dec 31 of the year before) start is excluded by the half-open interval, so it needs
    // no data.
    let count = |year| calendar.working_days_between(date(year - 1, 12, 31), date(year, 12, 31));
    assert_eq!(count(2024).unwrap(), 251);
    assert_eq!(count(2025).unwrap(), 248);
    assert_eq!(count(2026).unwrap(), 248);
}

#[test]
fn ten_working_days_across_national_day_2025() {
    // Counts Sun 09-28 and Sat 10-11, skips 10-01..10-08.
    let calendar = shipped();
    assert_eq!(
        calendar.add_working_days(date(2025, 9, 26), 10).unwrap(),
        date(2025, 10, 16)
    );
    assert_eq!(
        calendar
            .working_days_between(date(2025, 9, 26), date(2025, 10, 16))
            .unwrap(),
        10
    );
}

#[test]
fn adding_crosses_year_boundaries_with_data() {
    let calendar = shipped();
    assert_eq!(
        calendar.add_working_days(date(2024, 12, 31), 1).unwrap(),
        date(2025, 1, 2)
    );
    // 2026-01-01..03 are off and Sunday 2026-01-04 is a swapped working day.
    assert_eq!(
        calendar.add_working_days(date(2025, 12, 31), 1).unwrap(),
        date(2026, 1, 4)
    );
    assert_eq!(
        calendar.add_working_days(date(2025, 12, 31), 2).unwrap(),
        date(2026, 1, 5)
    );
}

#[test]
fn zero_working_days_is_the_start_itself() {
    let calendar = shipped();
    let saturday = date(2025, 10, 4);
    assert_eq!(calendar.add_working_days(saturday, 0).unwrap(), saturday);
}

#[test]
fn years_without_data_are_errors_not_guesses() {
    let calendar = shipped();
    assert!(matches!(
        calendar.is_working_day(date(2023, 6, 1)),
        Err(CalendarError::NoDataForYear(2023))
    ));
    assert!(matches!(
        calendar.add_working_days(date(2026, 12, 20), 30),
        Err(CalendarError::NoDataForYear(2027))
    ));
    assert!(matches!(
        calendar.working_days_between(date(2026, 12, 1), date(2027, 1, 10)),
        Err(CalendarError::NoDataForYear(2027))
    ));
    assert!(matches!(
        calendar.next_working_day_on_or_after(date(2023, 12, 30)),
        Err(CalendarError::NoDataForYear(2023))
    ));
}

#[test]
fn working_days_between_is_half_open_and_zero_when_reversed() {
    let calendar = shipped();
    // (Fri, Mon]: the weekend does not count, Monday does.
    assert_eq!(
        calendar
            .working_days_between(date(2025, 3, 7), date(2025, 3, 10))
            .unwrap(),
        1
    );
    assert_eq!(
        calendar
            .working_days_between(date(2025, 3, 10), date(2025, 3, 10))
            .unwrap(),
        0
    );
    assert_eq!(
        calendar
            .working_days_between(date(2025, 3, 10), date(2025, 3, 7))
            .unwrap(),
        0
    );
}

#[test]
fn next_working_day_on_or_after() {
    let calendar = shipped();
    assert_eq!(
        calendar
            .next_working_day_on_or_after(date(2025, 10, 1))
            .unwrap(),
        date(2025, 10, 9)
    );
    assert_eq!(
        calendar
            .next_working_day_on_or_after(date(2025, 10, 9))
            .unwrap(),
        date(2025, 10, 9)
    );
    assert_eq!(
        calendar
            .next_working_day_on_or_after(date(2026, 2, 14))
            .unwrap(),
        date(2026, 2, 14)
    );
}

#[test]
fn a_new_year_file_needs_no_code_change() {
    // 2030-01-05 is a Saturday, 2030-01-01 a Tuesday.
    let year = synthetic(2030, "\"2030-01-01\"", "\"2030-01-05\"");
    let calendar = WorkingDayCalendar::from_year_strs(&[&year]).unwrap();
    assert_eq!(calendar.years(), vec![2030]);
    assert!(!calendar.is_working_day(date(2030, 1, 1)).unwrap());
    assert!(calendar.is_working_day(date(2030, 1, 2)).unwrap());
    assert!(calendar.is_working_day(date(2030, 1, 5)).unwrap());
    assert!(!calendar.is_working_day(date(2030, 1, 6)).unwrap());
    assert_eq!(
        calendar.add_working_days(date(2029, 12, 31), 4).unwrap(),
        date(2030, 1, 5)
    );
}

#[test]
fn rejects_inconsistent_year_data() {
    let check = |text: String| WorkingDayCalendar::from_year_strs(&[&text]).unwrap_err();
    let outside = check(synthetic(2030, "\"2031-01-01\"", ""));
    assert!(matches!(
        outside,
        CalendarError::DateOutsideYear { year: 2030, .. }
    ));
    assert!(
        outside
            .to_string()
            .ends_with("it belongs in the file of its own year, 2031.toml"),
        "says where it belongs: {outside}"
    );
    assert!(matches!(
        check(synthetic(2030, "\"2030-01-01\", \"2030-01-01\"", "")),
        CalendarError::DuplicateDate { .. }
    ));
    assert!(matches!(
        check(synthetic(2030, "\"2030-01-05\"", "\"2030-01-05\"")),
        CalendarError::HolidayAndWorkingDay { .. }
    ));
    // 2030-01-07 is a Monday: a weekday cannot be "swapped" into a working day.
    assert!(matches!(
        check(synthetic(2030, "", "\"2030-01-07\"")),
        CalendarError::AdjustedWorkingDayNotWeekend {
            weekday: Weekday::Mon,
            ..
        }
    ));
    assert!(matches!(
        check(synthetic(2030, "\"2030-02-30\"", "")),
        CalendarError::Parse { .. }
    ));
    assert!(matches!(
        check(synthetic(2030, "", "").replace("\"test\"", "\" \"")),
        CalendarError::MissingSource { year: 2030 }
    ));
    assert!(matches!(
        check(synthetic(2030, "", "") + "extra = 1\n"),
        CalendarError::Parse { .. }
    ));
    let a = synthetic(2030, "", "");
    assert!(matches!(
        WorkingDayCalendar::from_year_strs(&[&a, &a]),
        Err(CalendarError::DuplicateYear(2030))
    ));
    assert!(matches!(
        WorkingDayCalendar::from_year_strs(&[]),
        Err(CalendarError::Empty)
    ));
}

#[test]
fn load_dir_requires_files_named_for_their_year() {
    let dir = std::env::temp_dir().join(format!("fupin-calendar-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2031.toml"), synthetic(2030, "", "")).unwrap();
    std::fs::write(dir.join("README.md"), "not a year file").unwrap();
    let result = WorkingDayCalendar::load_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        result,
        Err(CalendarError::FileNameMismatch { year: 2030, .. })
    ));
    assert!(matches!(
        WorkingDayCalendar::load_dir("/nonexistent/calendar"),
        Err(CalendarError::Io { .. })
    ));
}

#[test]
fn load_dir_names_the_file_a_mistake_is_in() {
    let dir = std::env::temp_dir().join(format!("fupin-calendar-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2030.toml"), synthetic(2030, "", "")).unwrap();
    // 2031-01-06 is a Monday.
    std::fs::write(dir.join("2031.toml"), synthetic(2031, "", "\"2031-01-06\"")).unwrap();
    let result = WorkingDayCalendar::load_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let Err(CalendarError::InFile { path, source }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(path, dir.join("2031.toml"));
    assert!(matches!(
        *source,
        CalendarError::AdjustedWorkingDayNotWeekend {
            weekday: Weekday::Mon,
            ..
        }
    ));
}

proptest! {
    #[test]
    fn add_then_count_agree(offset in 0i64..(3 * 365), n in 0u32..80) {
        let calendar = shipped();
        let start = date(2024, 1, 1) + chrono::Days::new(offset as u64);
        match calendar.add_working_days(start, n) {
            Ok(end) => {
                prop_assert_eq!(calendar.working_days_between(start, end).unwrap(), n);
                if n >= 1 {
                    prop_assert!(end > start);
                    prop_assert!(calendar.is_working_day(end).unwrap());
                    // No working day is skipped: one fewer lands strictly earlier.
                    prop_assert!(calendar.add_working_days(start, n - 1).unwrap() < end);
                } else {
                    prop_assert_eq!(end, start);
                }
            }
            Err(err) => prop_assert!(matches!(err, CalendarError::NoDataForYear(2027))),
        }
    }

    #[test]
    fn next_working_day_is_a_working_day_on_or_after(offset in 0i64..(3 * 365 - 20)) {
        let calendar = shipped();
        let day = date(2024, 1, 1) + chrono::Days::new(offset as u64);
        let next = calendar.next_working_day_on_or_after(day).unwrap();
        prop_assert!(next >= day && calendar.is_working_day(next).unwrap());
        prop_assert_eq!(calendar.working_days_between(day, next).unwrap(), u32::from(next != day));
    }
}

#[test]
fn the_last_start_for_n_working_days_is_the_last_day_they_can_be_counted_from() {
    // R-IN-4: 2026 ends on Thursday 12-31. 10 working days from 12-17 end on 12-31; from 12-18
    // they need 2027. 3 working days from 12-28 end on 12-31. 0 need nothing beyond the day.
    let shipped = shipped();
    let from = date(2026, 6, 1);
    assert_eq!(shipped.last_start_for(10, from), Some(date(2026, 12, 17)));
    assert_eq!(shipped.last_start_for(3, from), Some(date(2026, 12, 28)));
    assert_eq!(shipped.last_start_for(0, from), Some(date(2026, 12, 31)));
    assert_eq!(shipped.last_start_for(3, date(2027, 1, 4)), None, "no data");
    // The deadline with its data's version, up to that day and not after it.
    let (due, version) = shipped.deadline(date(2026, 12, 17), 10).unwrap();
    assert_eq!(due, date(2026, 12, 31));
    assert_eq!(
        Some(version),
        shipped.version(date(2026, 12, 17), date(2026, 12, 31))
    );
    assert_eq!(shipped.deadline(date(2026, 12, 18), 10), None);
    for n in [1, 3, 5, 10, 30] {
        let last = shipped.last_start_for(n, from).unwrap();
        assert!(shipped.add_working_days(last, n).is_ok(), "{n}");
        assert!(
            shipped
                .add_working_days(last.succ_opt().unwrap(), n)
                .is_err(),
            "{n}"
        );
    }
    // More working days than the whole run holds: no day.
    let short = WorkingDayCalendar::from_year_strs(&[&synthetic(2029, "", "")]).unwrap();
    assert_eq!(short.last_start_for(400, date(2029, 1, 1)), None);
}

#[test]
fn coverage_runs_to_the_end_of_the_last_unbroken_year() {
    // Whatever years are shipped (operators add one a year), counted from the first.
    let shipped = shipped();
    let years = shipped.years();
    let (first, last) = (years[0], years[years.len() - 1]);
    let end = date(last, 12, 31);
    assert_eq!(shipped.covered_until(date(first, 3, 1)), Some(end));
    assert_eq!(shipped.covered_until(end), Some(end));
    assert_eq!(shipped.covered_until(date(last + 1, 1, 1)), None);
    assert_eq!(shipped.covered_until(date(first - 1, 12, 31)), None);
    // A gap would end the coverage silently (2032 unreachable by counting from 2029): the
    // years must be one unbroken run.
    let gap = WorkingDayCalendar::from_year_strs(&[
        &synthetic(2029, "", ""),
        &synthetic(2030, "", ""),
        &synthetic(2032, "", ""),
    ]);
    assert!(
        matches!(
            gap,
            Err(CalendarError::MissingYear {
                before: 2030,
                missing: 2031,
                after: 2032
            })
        ),
        "{gap:?}"
    );
}

// A year file whose extension is written in capitals is read like any other, not skipped
// (which would leave its deadlines pending without a word); a backup beside it is not read.
#[test]
fn load_dir_reads_a_year_file_whatever_the_case_of_its_extension() {
    let dir = std::env::temp_dir().join(format!("fupin-calendar-case-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2030.toml"), synthetic(2030, "", "")).unwrap();
    std::fs::write(dir.join("2031.TOML"), synthetic(2031, "", "")).unwrap();
    std::fs::write(dir.join("2031.toml.bak"), "not read").unwrap();
    let result = WorkingDayCalendar::load_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(result.unwrap().years(), [2030, 2031]);
}

// R-X-4: what counted a deadline is recorded by version: one per year of data, changed by any
// change of a date and by nothing else; a span across years names each year it used.
#[test]
fn versions_follow_the_dates_and_name_each_year_used() {
    let base = synthetic(2031, r#""2031-01-01""#, r#""2031-01-05""#);
    let v = |text: &str| {
        WorkingDayCalendar::from_year_strs(&[text])
            .unwrap()
            .version(date(2031, 3, 2), date(2031, 3, 9))
            .unwrap()
    };
    let original = v(&base);
    assert!(
        original.starts_with("2031#") && original.len() == 5 + 16,
        "{original}"
    );
    let commented = format!(
        "# a comment\n{}",
        base.replace("source = \"", "source = \"amended ")
    );
    assert_eq!(
        v(&commented),
        original,
        "comments and the source's wording are not data"
    );
    for changed in [
        synthetic(2031, r#""2031-01-02""#, r#""2031-01-05""#),
        synthetic(2031, r#""2031-01-01""#, r#""2031-01-04""#),
        synthetic(2031, r#""2031-01-01", "2031-01-02""#, r#""2031-01-05""#),
        synthetic(2031, r#""2031-01-01""#, r#""2031-01-05", "2031-01-11""#),
    ] {
        assert_ne!(v(&changed), original, "{changed}");
    }

    let cal = shipped();
    let within = cal.version(date(2025, 9, 26), date(2025, 10, 16)).unwrap();
    assert!(
        within.starts_with("2025#") && !within.contains('+'),
        "{within}"
    );
    let across = cal.version(date(2025, 12, 29), date(2026, 1, 5)).unwrap();
    let parts: Vec<&str> = across.split('+').collect();
    assert_eq!(parts.len(), 2, "{across}");
    assert_eq!(parts[0], within);
    assert!(parts[1].starts_with("2026#"));
    // Counting starts the day after: from 31 December only the next year's days are counted.
    let start = date(2025, 12, 31);
    let due = cal.add_working_days(start, 3).unwrap();
    assert_eq!(cal.version(start, due).unwrap(), parts[1]);
    assert_eq!(
        cal.version(start, start).unwrap(),
        within,
        "nothing counted: its own year"
    );
    assert_eq!(cal.version(date(2026, 12, 30), date(2027, 1, 4)), None);
}

// What `fupinctl calendar check` prints of a year: the figures worked by hand in
// `working_days_per_year_match_the_notices`, and the counts of the files' lists.
#[test]
fn summaries_count_each_shipped_year() {
    let cal = shipped();
    for (year, days_off, swapped, working) in
        [(2024, 28, 8, 251), (2025, 28, 5, 248), (2026, 33, 6, 248)]
    {
        let summary = cal.summary(year).unwrap();
        assert_eq!(summary.year, year);
        assert_eq!(summary.days_off, days_off, "{year}");
        assert_eq!(summary.adjusted_working_days, swapped, "{year}");
        assert_eq!(summary.working_days, working, "{year}");
        assert_eq!(summary.unlisted_statutory_days, vec![], "{year}");
        assert_eq!(Some(summary.source.as_str()), cal.source(year));
        let mid = date(year, 6, 1);
        assert_eq!(Some(summary.version), cal.version(mid, mid));
    }
    assert_eq!(cal.summary(2027), None);
}

// The fixed-date statutory holidays are off every year, so a file without one departs from
// the notice; 2 May joined them in 2025 and is not asked of earlier years. Left out on a
// weekday, the day counts as a working day; on a weekend it changes nothing.
#[test]
fn a_year_missing_a_fixed_date_statutory_holiday_is_flagged() {
    let unlisted = |text: String| {
        let cal = WorkingDayCalendar::from_year_strs(&[&text]).unwrap();
        let year = cal.years()[0];
        cal.summary(year).unwrap().unlisted_statutory_days
    };
    let all_2025 =
        r#""2025-01-01", "2025-05-01", "2025-05-02", "2025-10-01", "2025-10-02", "2025-10-03""#;
    assert_eq!(unlisted(synthetic(2025, all_2025, "")), vec![]);

    // 2025-05-02 is a Friday.
    let without_may_2 = all_2025.replace(r#""2025-05-02", "#, "");
    assert_eq!(
        unlisted(synthetic(2025, &without_may_2, "")),
        vec![UnlistedStatutoryHoliday {
            date: date(2025, 5, 2),
            name: "劳动节",
            counted_as_working_day: true,
        }]
    );

    // 2024: 2 May was not yet statutory; 1 May (a Wednesday) and 3 October (a Thursday) were.
    let missing = unlisted(synthetic(
        2024,
        r#""2024-01-01", "2024-10-01", "2024-10-02""#,
        "",
    ));
    let dates: Vec<NaiveDate> = missing.iter().map(|m| m.date).collect();
    assert_eq!(dates, vec![date(2024, 5, 1), date(2024, 10, 3)]);
    assert!(missing.iter().all(|m| m.counted_as_working_day));
    assert_eq!(
        fixed_date_statutory_holidays(2024).len() + 1,
        fixed_date_statutory_holidays(2025).len()
    );

    // 2027-10-03 is a Sunday: left out it is still a day off, unless listed as worked.
    let all_but_oct_3 = r#""2027-01-01", "2027-05-01", "2027-05-02", "2027-10-01", "2027-10-02""#;
    let weekend = unlisted(synthetic(2027, all_but_oct_3, ""));
    assert_eq!(weekend.len(), 1);
    assert_eq!(weekend[0].date, date(2027, 10, 3));
    assert!(!weekend[0].counted_as_working_day);
    let worked = unlisted(synthetic(2027, all_but_oct_3, r#""2027-10-03""#));
    assert!(worked[0].counted_as_working_day);
}

// R-IN-4: the next year is asked for once fewer than CALENDAR_NOTICE days of data are left,
// and a day without data asks for its own year.
#[test]
fn the_next_year_is_needed_from_sixty_days_before_the_data_ends() {
    let cal = shipped();
    let last = cal.covered_until(date(2026, 1, 1)).unwrap();
    assert_eq!(cal.year_needed_soon(last - CALENDAR_NOTICE), None);
    let first_day = last - CALENDAR_NOTICE + Days::new(1);
    assert_eq!(cal.year_needed_soon(first_day), Some(last.year() + 1));
    assert_eq!(cal.year_needed_soon(last), Some(last.year() + 1));
    assert_eq!(
        cal.year_needed_soon(date(last.year() + 1, 1, 1)),
        Some(last.year() + 1)
    );
}
