//! Public notice (公示, R-IN-5): 5 calendar days from the district approval; an objection filed
//! in the period holds the application until it is resolved by the district center.

use chrono::NaiveDate;

use super::fixtures::*;
use crate::domain::{Status, application::Application};

/// The district approval day D.
fn d() -> NaiveDate {
    date("2025-06-16")
}

fn noticed() -> Application {
    household_in(Status::PublicNotice, d())
}

fn recommend(
    app: &mut Application,
    on: NaiveDate,
) -> Result<crate::domain::application::Moved, crate::domain::DomainError> {
    app.recommend(&district_staff(), BANK, on, policy(), calendar())
}

// R-IN-5
#[test]
fn notice_runs_five_calendar_days_including_the_approval_day() {
    assert_eq!(policy().public_notice_calendar_days, 5);
    let app = noticed();
    assert_eq!(app.notice_ends_on, Some(plus_days(d(), 4)));
    assert_eq!(app.notice_ends_on, Some(date("2025-06-20")));
}

// R-IN-5: calendar days, not working days
#[test]
fn notice_counts_calendar_days_across_a_holiday() {
    let app = household_in(Status::PublicNotice, date("2025-09-29"));
    assert_eq!(app.notice_ends_on, Some(date("2025-10-03")));
}

// R-IN-5
#[test]
fn recommendation_on_the_last_notice_day_is_refused_and_the_day_after_allowed() {
    let mut app = noticed();
    let before = app.clone();
    for on in [d(), plus_days(d(), 4)] {
        assert_refused(recommend(&mut app, on), "R-IN-5");
        assert_eq!(app, before);
    }
    let m = recommend(&mut app, plus_days(d(), 5)).unwrap();
    assert_eq!(m.to, Status::Recommended);
}

// R-IN-5
#[test]
fn objection_on_the_last_notice_day_holds_the_application() {
    let mut app = noticed();
    let m = app
        .file_objection(&village_staff(VILLAGE), plus_days(d(), 4))
        .unwrap()
        .expect("a transition");
    assert_eq!(
        (m.from, m.to, m.action),
        (Some(Status::PublicNotice), Status::OnHold, "objection")
    );
    assert_eq!(app.status, Status::OnHold);
}

// R-IN-5
#[test]
fn objection_after_the_notice_period_is_refused() {
    let mut app = noticed();
    let before = app.clone();
    assert_refused(
        app.file_objection(&district_staff(), plus_days(d(), 5)),
        "R-IN-5",
    );
    assert_eq!(app, before);
}

// R-IN-5: any staff tier over the applicant records objections; others cannot
#[test]
fn objections_are_recorded_by_staff_over_the_applicant() {
    for actor in [village_staff(VILLAGE), town_staff(TOWN), district_staff()] {
        let mut app = noticed();
        assert!(app.file_objection(&actor, d()).unwrap().is_some());
    }
    let mut app = noticed();
    assert_not_visible(app.file_objection(&town_staff(OTHER_TOWN), d()));
    assert_not_visible(app.file_objection(&bank(BANK), d()));
    assert_eq!(app.status, Status::PublicNotice);
}

// R-IN-5
#[test]
fn objection_outside_a_notice_is_refused() {
    let mut app = household_in(Status::DistrictReview, d());
    assert_refused(app.file_objection(&district_staff(), d()), "R-IN-5");
}

// R-IN-5
#[test]
fn recommendation_while_on_hold_is_refused() {
    let mut app = noticed();
    app.file_objection(&district_staff(), d()).unwrap();
    let before = app.clone();
    assert_refused(recommend(&mut app, plus_days(d(), 10)), "R-IN-5");
    assert_eq!(app, before);
}

// R-IN-5
#[test]
fn a_second_objection_while_on_hold_adds_no_transition() {
    let mut app = noticed();
    app.file_objection(&village_staff(VILLAGE), d()).unwrap();
    let before = app.clone();
    assert_eq!(
        app.file_objection(&town_staff(TOWN), plus_days(d(), 2)),
        Ok(None)
    );
    assert_eq!(app, before);
    // but not after the period
    assert_refused(
        app.file_objection(&town_staff(TOWN), plus_days(d(), 5)),
        "R-IN-5",
    );
}

// R-IN-5: the hold lasts until every objection is resolved
#[test]
fn dismissing_one_of_two_objections_keeps_the_hold_and_the_last_releases_it() {
    let mut app = noticed();
    app.file_objection(&village_staff(VILLAGE), d()).unwrap();
    app.file_objection(&town_staff(TOWN), d()).unwrap();
    // when the first of two is dismissed
    assert_eq!(app.resolve_objection(&district_staff(), false, 1), Ok(None));
    assert_eq!(app.status, Status::OnHold);
    // when the last is dismissed
    let m = app
        .resolve_objection(&district_staff(), false, 0)
        .unwrap()
        .expect("a transition");
    assert_eq!(
        (m.from, m.to, m.action),
        (
            Some(Status::OnHold),
            Status::PublicNotice,
            "objection_dismissed"
        )
    );
    // then recommendation is possible after the notice period
    assert_refused(recommend(&mut app, plus_days(d(), 4)), "R-IN-5");
    assert_eq!(
        recommend(&mut app, plus_days(d(), 5)).unwrap().to,
        Status::Recommended
    );
}

// R-IN-5
#[test]
fn an_upheld_objection_rejects_the_application() {
    let mut app = noticed();
    app.file_objection(&district_staff(), d()).unwrap();
    let m = app
        .resolve_objection(&district_staff(), true, 1)
        .unwrap()
        .expect("a transition");
    assert_eq!(
        (m.from, m.to, m.action),
        (Some(Status::OnHold), Status::Rejected, "objection_upheld")
    );
    assert!(app.status.is_terminal());
    assert_eq!(app.step_due_on, None);
}

// R-IN-5: only the district center resolves
#[test]
fn only_district_staff_resolve_objections() {
    let mut app = noticed();
    app.file_objection(&village_staff(VILLAGE), d()).unwrap();
    let before = app.clone();
    for actor in [village_staff(VILLAGE), town_staff(TOWN)] {
        for upheld in [true, false] {
            assert_denied(app.resolve_objection(&actor, upheld, 0));
        }
    }
    assert_not_visible(app.resolve_objection(&bank(BANK), false, 0));
    assert_eq!(app, before);
}

// R-IN-5
#[test]
fn resolving_without_a_hold_is_refused() {
    let mut app = noticed();
    assert_refused(app.resolve_objection(&district_staff(), false, 0), "R-IN-5");
    assert_eq!(app.status, Status::PublicNotice);
}
