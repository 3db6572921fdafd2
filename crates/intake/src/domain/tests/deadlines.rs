//! Processing time limits (办结时限, R-IN-4) against the shipped official calendar: deadlines in
//! working days, overdue from the day after, one alert per step entry, no guessing without data.

use chrono::{Datelike, NaiveDate};
use fupin_kernel::WorkingDayCalendar;
use proptest::prelude::*;

use super::fixtures::*;
use crate::domain::{
    ApplicantKind, Decision, Status, Step,
    application::{Application, step_days},
};

// R-IN-4: the policy defaults
#[test]
fn step_deadlines_are_the_policy_defaults() {
    assert_eq!(step_days(Step::Village, policy()), 3);
    assert_eq!(step_days(Step::Town, policy()), 3);
    assert_eq!(step_days(Step::District, policy()), 5);
    assert_eq!(step_days(Step::Bank, policy()), 10);
}

// R-IN-4: the calendar facts the deadline tests below rely on (国办发明电〔2024〕12号)
#[test]
fn shipped_calendar_has_the_2025_national_day_arrangement() {
    let cal = calendar();
    assert!(!cal.is_working_day(date("2025-09-27")).unwrap()); // Sat
    assert!(cal.is_working_day(date("2025-09-28")).unwrap()); // Sun, 调休 working day
    for d in 1..=8 {
        let day = date(&format!("2025-10-{d:02}"));
        assert!(!cal.is_working_day(day).unwrap(), "{day} is a holiday");
    }
    assert!(cal.is_working_day(date("2025-10-11")).unwrap()); // Sat, 调休 working day
    assert!(!cal.is_working_day(date("2025-10-12")).unwrap()); // Sun
}

// R-IN-4
#[test]
fn village_step_from_friday_26_september_counts_the_adjusted_sunday() {
    // given a household filed on Fri 2025-09-26 (village step: 3 working days)
    let app = filed_household(date("2025-09-26"));
    // then Sun 09-28 (1), Mon 09-29 (2), Tue 09-30 (3): due Tue 2025-09-30
    assert_eq!(app.step_started_on, Some(date("2025-09-26")));
    assert_eq!(app.step_due_on, Some(date("2025-09-30")));
    // not overdue on the due date, overdue from the next day (a holiday: calendar days count
    // for lateness)
    assert!(!app.is_overdue(date("2025-09-30")));
    assert!(!app.needs_overdue_alert(date("2025-09-30")));
    assert!(app.is_overdue(date("2025-10-01")));
    assert!(app.needs_overdue_alert(date("2025-10-01")));
}

// R-IN-4
#[test]
fn district_step_from_29_september_skips_the_national_day_holidays() {
    // given an enterprise filed at the district center on Mon 2025-09-29 (district step: 5)
    let (app, _) = Application::file(
        &district_staff(),
        ApplicantKind::Enterprise,
        area(TOWN),
        money("300000.00"),
        36,
        date("2025-09-29"),
        policy(),
        calendar(),
    )
    .unwrap();
    assert_eq!(app.status, Status::DistrictReview);
    // then 09-30 (1), Oct 1-8 off, 10-09 (2), 10-10 (3), Sat 10-11 adjusted (4), 10-13 (5)
    assert_eq!(app.step_due_on, Some(date("2025-10-13")));
    assert_eq!(
        calendar()
            .working_days_between(date("2025-09-29"), date("2025-10-13"))
            .unwrap(),
        5
    );
    assert!(!app.is_overdue(date("2025-10-13")));
    assert!(app.is_overdue(date("2025-10-14")));
}

// R-IN-4: the town step after a village approval
#[test]
fn town_step_starts_on_the_village_approval_day() {
    let mut app = filed_household(date("2025-09-24"));
    app.review(
        &village_staff(VILLAGE),
        Decision::Approve,
        "",
        date("2025-09-26"),
        policy(),
        calendar(),
    )
    .unwrap();
    // town step: 3 working days from Fri 09-26 -> Tue 09-30
    assert_eq!(app.status, Status::TownReview);
    assert_eq!(app.step_started_on, Some(date("2025-09-26")));
    assert_eq!(app.step_due_on, Some(date("2025-09-30")));
}

// R-IN-4: the bank step, 10 working days across the holiday
#[test]
fn bank_step_from_26_september_is_due_16_october() {
    // given the district approval on Sun 09-21, notice to 09-25, recommended Fri 09-26
    let (app, recommended_on) = recommended_household(date("2025-09-21"));
    assert_eq!(recommended_on, date("2025-09-26"));
    // 09-28 (1), 09-29 (2), 09-30 (3), 10-09 (4), 10-10 (5), 10-11 (6), 10-13 (7), 10-14 (8),
    // 10-15 (9), 10-16 (10)
    assert_eq!(app.step_due_on, Some(date("2025-10-16")));
    assert!(!app.is_overdue(date("2025-10-16")));
    assert!(app.is_overdue(date("2025-10-17")));
}

// R-IN-4: a public notice has no working-day deadline
#[test]
fn no_step_no_deadline_no_overdue() {
    let app = household_in(Status::PublicNotice, date("2025-09-26"));
    assert_eq!(app.current_step(), None);
    assert_eq!(app.step_due_on, None);
    assert!(!app.is_overdue(date("2026-12-31")));
    assert!(!app.needs_overdue_alert(date("2026-12-31")));
}

// R-IN-4: the alert is raised once per step
#[test]
fn overdue_alert_is_raised_once_per_step_entry() {
    // given a village step due 2025-09-30, overdue on 10-01
    let mut app = filed_household(date("2025-09-26"));
    assert!(app.needs_overdue_alert(date("2025-10-01")));
    // when the alert is raised
    app.mark_overdue_alerted();
    // then it is not raised again, though the application stays overdue and listed
    assert!(!app.needs_overdue_alert(date("2025-10-01")));
    assert!(!app.needs_overdue_alert(date("2025-10-20")));
    assert!(app.is_overdue(date("2025-10-20")));
    // when the village finally approves on Thu 10-09, the town step starts:
    // 10-10 (1), Sat 10-11 adjusted (2), 10-13 (3)
    app.review(
        &village_staff(VILLAGE),
        Decision::Approve,
        "",
        date("2025-10-09"),
        policy(),
        calendar(),
    )
    .unwrap();
    assert_eq!(app.step_due_on, Some(date("2025-10-13")));
    assert!(!app.is_overdue(date("2025-10-13")));
    assert!(!app.needs_overdue_alert(date("2025-10-13")));
    // then overdue in the new step raises a new alert
    assert!(app.needs_overdue_alert(date("2025-10-14")));
    app.mark_overdue_alerted();
    assert!(!app.needs_overdue_alert(date("2025-10-14")));
}

// R-IN-4: a returned and resubmitted step is a new entry with its own alert
#[test]
fn resubmitted_step_gets_a_fresh_alert() {
    let mut app = filed_household(date("2025-09-26"));
    app.mark_overdue_alerted();
    app.review(
        &village_staff(VILLAGE),
        Decision::ReturnForCorrection,
        "补充材料",
        date("2025-10-09"),
        policy(),
        calendar(),
    )
    .unwrap();
    // a returned application waits for the household, not for staff: no deadline
    assert!(!app.is_overdue(date("2025-12-31")));
    app.resubmit(
        &village_staff(VILLAGE),
        date("2025-10-10"),
        policy(),
        calendar(),
    )
    .unwrap();
    // 10-11 (1, adjusted Sat), 10-13 (2), 10-14 (3)
    assert_eq!(app.step_due_on, Some(date("2025-10-14")));
    assert!(app.needs_overdue_alert(date("2025-10-15")));
}

// R-IN-4: never a guess without calendar data, and never a refusal for it either: the step is
// taken and its deadline left pending, neither overdue nor alerted
#[test]
fn a_step_started_in_a_year_without_calendar_data_is_taken_with_its_deadline_pending() {
    assert!(!calendar().years().contains(&2030));
    let on = date("2030-03-04");
    let (mut app, moved) = Application::file(
        &village_staff(VILLAGE),
        ApplicantKind::Household,
        area(VILLAGE),
        money("10000.00"),
        12,
        on,
        policy(),
        calendar(),
    )
    .expect("filed without a deadline");
    assert_eq!(moved.to, Status::VillageReview);
    assert_eq!(
        (app.step_seq, app.step_started_on, app.step_due_on),
        (1, Some(on), None)
    );
    assert_eq!(app.step_calendar, None);
    assert!(app.step_deadline_pending());
    assert!(!app.is_overdue(date("2031-12-31")));
    assert!(!app.needs_overdue_alert(date("2031-12-31")));

    // entering the next step: taken, its deadline pending too
    let moved = approve(&mut app, date("2030-03-05"));
    assert_eq!(moved.to, Status::TownReview);
    assert_eq!(
        (app.step_seq, app.step_started_on, app.step_due_on),
        (2, Some(date("2030-03-05")), None)
    );
    assert!(app.step_deadline_pending());
    // still no data: nothing to count
    let before = app.clone();
    assert!(!app.count_step_deadline(policy(), calendar_with_2027()));
    assert_eq!(app, before);
}

// R-IN-4: a deadline running past the last year with data is left pending, and counted from the
// day the step started once that year's data is there; once only
#[test]
fn a_deadline_running_into_a_year_without_data_is_counted_once_the_year_is_there() {
    assert_eq!(*calendar().years().last().unwrap(), 2026);
    // Wed 2026-12-30: 12-31 (1), then 2027 has no data
    let mut app = filed_household(date("2026-12-28"));
    assert_eq!(app.step_due_on, Some(date("2026-12-31")));
    approve(&mut app, date("2026-12-30"));
    assert_eq!(app.status, Status::TownReview);
    assert!(app.step_deadline_pending());
    let before = app.clone();
    assert!(!app.count_step_deadline(policy(), calendar()));
    assert_eq!(app, before, "the same calendar counts nothing");

    assert!(app.count_step_deadline(policy(), calendar_with_2027()));
    // 12-31 (1); 1 January off, 2-3 January a weekend; 01-04 (2), 01-05 (3)
    assert_eq!(app.step_due_on, Some(date("2027-01-05")));
    assert_eq!(app.step_started_on, Some(date("2026-12-30")));
    assert_eq!(app.step_seq, before.step_seq);
    let version = app
        .step_calendar
        .clone()
        .expect("the version that counted it");
    assert!(
        version.starts_with("2026#") && version.contains("+2027#"),
        "{version}"
    );
    assert!(!app.step_deadline_pending());
    assert!(!app.needs_overdue_alert(date("2027-01-05")));
    assert!(app.needs_overdue_alert(date("2027-01-06")));

    let counted = app.clone();
    assert!(!app.count_step_deadline(policy(), calendar_with_2027()));
    assert_eq!(app, counted, "counted once");
}

// R-IN-4: a step outside the calendar is counted with its own step's days (the bank's 10), and
// nothing is counted where no step is pending (the notice counts calendar days, R-IN-5)
#[test]
fn pending_deadlines_count_the_steps_own_days_and_only_for_steps() {
    // approved on Fri 2026-12-11: the notice ends 12-15, recommended 12-16 (the bank fits: 12-30)
    let (app, on) = recommended_household(date("2026-12-11"));
    assert_eq!(
        (on, app.step_due_on),
        (date("2026-12-16"), Some(date("2026-12-30")))
    );
    // recommended on 12-18: 12-21..25 (5), 12-28..31 (9), then 2027
    let mut noticed = household_in(Status::PublicNotice, date("2026-12-11"));
    let before = noticed.clone();
    assert!(!noticed.count_step_deadline(policy(), calendar_with_2027()));
    assert_eq!(noticed, before, "no step in public notice");
    noticed
        .recommend(
            &district_staff(),
            BANK,
            date("2026-12-18"),
            policy(),
            calendar(),
        )
        .expect("recommended without the 2027 calendar");
    assert_eq!(noticed.status, Status::Recommended);
    assert!(noticed.step_deadline_pending());
    assert!(noticed.count_step_deadline(policy(), calendar_with_2027()));
    // ... 01-04 (10)
    assert_eq!(noticed.step_due_on, Some(date("2027-01-04")));
}

/// A household application filed on `on` and approved `approvals` times on the same day, every
/// deadline counted on `calendar`.
fn moved_on(on: NaiveDate, approvals: usize, calendar: &WorkingDayCalendar) -> Application {
    let (mut app, _) = Application::file(
        &village_staff(VILLAGE),
        ApplicantKind::Household,
        area(VILLAGE),
        money("20000.00"),
        24,
        on,
        policy(),
        calendar,
    )
    .expect("filed");
    for actor in [village_staff(VILLAGE), town_staff(TOWN)]
        .into_iter()
        .take(approvals)
    {
        app.review(&actor, Decision::Approve, "", on, policy(), calendar)
            .expect("approved by the step's tier");
    }
    app
}

proptest! {
    // R-IN-4: a step's deadline left pending for want of next year's calendar and counted once
    // it is there is the deadline it would have had with that calendar from the start (the
    // same day, version and alert), for the village, town and district steps on every day of
    // the last year with data; pending exactly when it runs past that year.
    #[test]
    fn a_pending_deadline_counted_later_is_the_one_counted_at_once(
        day in 0u64..365,
        approvals in 0usize..=2,
    ) {
        let on = plus_days(date("2026-01-01"), day);
        let at_once = moved_on(on, approvals, calendar_with_2027());
        let mut late = moved_on(on, approvals, calendar());
        let due = at_once.step_due_on.expect("counted with 2027");
        prop_assert_eq!(late.step_deadline_pending(), due.year() > 2026);
        prop_assert_eq!(
            late.count_step_deadline(policy(), calendar_with_2027()),
            due.year() > 2026
        );
        prop_assert_eq!(late, at_once);
    }
}
