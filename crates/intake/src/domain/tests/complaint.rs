//! Complaints (投诉, R-IN-7): lodged by staff, assigned by the town station or district center
//! to an organisation over the complaint's area, answered by that organisation within 10
//! working days; unanswered ones past the deadline are flagged once.

use chrono::NaiveDate;

use super::fixtures::*;
use crate::domain::complaint::Complaint;

fn lodged_on() -> NaiveDate {
    date("2025-09-26") // Fri before the National Day holidays
}

fn lodge_in(code: &str) -> Complaint {
    Complaint::lodge(
        &district_staff(),
        area(code),
        lodged_on(),
        policy().complaint_answer_days,
        calendar(),
    )
    .expect("lodged by staff inside the area")
}

fn lodged() -> Complaint {
    lodge_in(VILLAGE)
}

// R-IN-7
#[test]
fn staff_lodge_a_complaint_inside_their_area() {
    for (actor, code) in [
        (village_staff(VILLAGE), VILLAGE),
        (town_staff(TOWN), VILLAGE),
        (town_staff(TOWN), TOWN),
        (district_staff(), DISTRICT),
        (district_staff(), OTHER_TOWN_VILLAGE),
    ] {
        let c = Complaint::lodge(&actor, area(code), lodged_on(), 10, calendar()).unwrap();
        assert_eq!(c.area, area(code));
        assert_eq!(c.lodged_on, lodged_on());
        assert_eq!(c.assigned_to, None);
        assert!(!c.answered && !c.overdue_alerted);
    }
}

// R-IN-7
#[test]
fn complaints_outside_the_lodgers_area_or_by_non_staff_are_denied() {
    for (actor, code) in [
        (village_staff(VILLAGE), NEIGHBOUR_VILLAGE),
        (village_staff(VILLAGE), TOWN),
        (town_staff(TOWN), OTHER_TOWN_VILLAGE),
        (town_staff(TOWN), DISTRICT),
        (bank(BANK), VILLAGE),
        (operator(), VILLAGE),
    ] {
        assert_denied(Complaint::lodge(
            &actor,
            area(code),
            lodged_on(),
            10,
            calendar(),
        ));
    }
}

// R-IN-7: 10 working days on the official calendar
#[test]
fn answer_is_due_ten_working_days_after_lodging() {
    assert_eq!(policy().complaint_answer_days, 10);
    let c = lodged();
    // 09-28 (1, adjusted Sun), 09-29 (2), 09-30 (3), Oct 1-8 off, 10-09 (4), 10-10 (5),
    // 10-11 (6, adjusted Sat), 10-13 (7), 10-14 (8), 10-15 (9), 10-16 (10)
    assert_eq!(c.due_on, Some(date("2025-10-16")));
    assert_eq!(
        calendar()
            .working_days_between(lodged_on(), c.due_on.unwrap())
            .unwrap(),
        10
    );
}

// R-IN-7: never a guessed deadline, and never a complaint unheard: lodged when the calendar
// does not reach its deadline, it is recorded with the deadline pending, not overdue, and the
// deadline is counted once a calendar covers it (here a test year with only its New Year's Day
// off; the shipped 2027 file will come from the State Council's notice).
#[test]
fn lodged_beyond_the_calendar_the_deadline_is_counted_later() {
    let lodged_on = date("2026-12-28");
    let mut c = Complaint::lodge(&district_staff(), area(VILLAGE), lodged_on, 10, calendar())
        .expect("recorded");
    assert_eq!((c.due_on, c.calendar_version.clone()), (None, None));
    assert!(!c.is_overdue(date("2027-06-01")));
    assert!(!c.count_deadline(10, calendar()), "still not covered");
    assert_eq!(c.due_on, None);

    let shipped: Vec<String> = (2024..=2026)
        .map(|y| std::fs::read_to_string(format!("{DEPLOY}/calendar/{y}.toml")).unwrap())
        .collect();
    let test_2027 = "year = 2027\nsource = \"test\"\nholidays = [\"2027-01-01\"]\n\
                     adjusted_working_days = []\n";
    let mut texts: Vec<&str> = shipped.iter().map(String::as_str).collect();
    texts.push(test_2027);
    let covering = fupin_kernel::WorkingDayCalendar::from_year_strs(&texts).unwrap();
    assert!(c.count_deadline(10, &covering));
    // 12-28 to 12-31 (3 working days), 2027-01-01 off, then 7 more from 01-04.
    assert_eq!(c.due_on, Some(date("2027-01-12")));
    assert!(
        c.calendar_version
            .as_deref()
            .is_some_and(|v| v.contains("2027"))
    );
    assert!(!c.count_deadline(10, &covering), "counted once");
    assert!(c.is_overdue(date("2027-01-13")));
}

// R-IN-7
#[test]
fn town_station_or_district_center_assign_to_an_organisation_over_the_area() {
    for (actor, to) in [
        (town_staff(TOWN), VILLAGE),
        (town_staff(TOWN), TOWN),
        (district_staff(), VILLAGE),
        (district_staff(), TOWN),
        (district_staff(), DISTRICT),
    ] {
        let mut c = lodged();
        assert_eq!(
            c.assign(&actor, area(to)),
            Ok(true),
            "{} -> {to}",
            actor.subject
        );
        assert_eq!(c.assigned_to, Some(area(to)));
    }
}

// R-IN-7: a complaint may be reassigned until answered, but a town station does not take one
// from the district center; the district may take one from the town, and the town may move
// one it holds to its village
#[test]
fn a_lower_tier_does_not_take_a_complaint_from_the_one_above() {
    let mut c = lodged();
    c.assign(&district_staff(), area(DISTRICT))
        .expect("to the district");
    assert_denied(c.assign(&town_staff(TOWN), area(TOWN)));
    assert_eq!(c.assigned_to, Some(area(DISTRICT)), "unchanged");
    c.assign(&district_staff(), area(TOWN))
        .expect("the district hands it to the town");
    c.assign(&town_staff(TOWN), area(VILLAGE))
        .expect("the town to its village");
    c.assign(&district_staff(), area(DISTRICT))
        .expect("the district takes it back");
    assert_eq!(c.assigned_to, Some(area(DISTRICT)));
}

// R-IN-7: assigning a complaint to the organisation that holds it changes nothing (no new
// assignment is recorded); it is still refused once answered, and still denied to a lower tier
#[test]
fn assigning_to_the_organisation_that_holds_it_changes_nothing() {
    let mut c = lodged();
    assert_eq!(c.assign(&district_staff(), area(TOWN)), Ok(true));
    assert_eq!(c.assign(&district_staff(), area(TOWN)), Ok(false));
    assert_eq!(c.assign(&town_staff(TOWN), area(TOWN)), Ok(false));
    assert_eq!(c.assigned_to, Some(area(TOWN)));
    assert_eq!(c.assign(&district_staff(), area(DISTRICT)), Ok(true));
    assert_denied(c.assign(&town_staff(TOWN), area(TOWN)));
    c.answer(&district_staff(), c.lodged_on).expect("answered");
    assert_refused(c.assign(&district_staff(), area(DISTRICT)), "R-IN-7");
}

// R-IN-7
#[test]
fn assignment_by_a_village_department_is_denied() {
    let mut c = lodged();
    assert_denied(c.assign(&village_staff(VILLAGE), area(VILLAGE)));
    assert_eq!(c.assigned_to, None);
}

// R-IN-7
#[test]
fn assignment_from_outside_the_area_is_not_visible() {
    let mut c = lodged();
    assert_not_visible(c.assign(&town_staff(OTHER_TOWN), area(OTHER_TOWN)));
    assert_not_visible(c.assign(&bank(BANK), area(VILLAGE)));
    assert_eq!(c.assigned_to, None);
}

// R-IN-7, R-X-3
#[test]
fn assignment_to_an_organisation_not_over_the_complaint_area_is_invalid() {
    // the neighbour village, another town, and (for the town) the district above it
    for (actor, to) in [
        (town_staff(TOWN), NEIGHBOUR_VILLAGE),
        (district_staff(), OTHER_TOWN),
        (district_staff(), NEIGHBOUR_VILLAGE),
        (town_staff(TOWN), DISTRICT),
    ] {
        let mut c = lodged();
        assert_invalid(
            c.assign(&actor, area(to)),
            "organisation_area_code",
            "R-IN-7",
        );
        assert_eq!(c.assigned_to, None);
    }
}

// R-IN-7
#[test]
fn only_the_assigned_organisation_answers() {
    let mut c = lodged();
    c.assign(&district_staff(), area(TOWN)).unwrap();
    // the village department (which sees it) and the district center are not the assignee
    assert_denied(c.answer(&village_staff(VILLAGE), c.lodged_on));
    assert_denied(c.answer(&district_staff(), c.lodged_on));
    assert_not_visible(c.answer(&town_staff(OTHER_TOWN), c.lodged_on));
    assert!(!c.answered);
    // the town station answers
    assert_eq!(c.answer(&town_staff(TOWN), c.lodged_on), Ok(false));
    assert!(c.answered);
    // once
    assert_refused(c.answer(&town_staff(TOWN), c.lodged_on), "R-IN-7");
    assert_refused(c.assign(&district_staff(), area(VILLAGE)), "R-IN-7");
}

// R-IN-7
#[test]
fn answer_before_assignment_is_refused() {
    let mut c = lodged();
    assert_refused(c.answer(&village_staff(VILLAGE), c.lodged_on), "R-IN-7");
    assert_refused(c.answer(&district_staff(), c.lodged_on), "R-IN-7");
    assert!(!c.answered);
}

// R-IN-7: an organisation sees complaints assigned to it
#[test]
fn the_assignee_sees_the_complaint() {
    let mut c = lodge_in(TOWN);
    assert!(!c.visible_to(&village_staff(VILLAGE)));
    assert!(c.visible_to(&town_staff(TOWN)));
    c.assign(&district_staff(), area(TOWN)).unwrap();
    assert!(c.visible_to(&town_staff(TOWN)));
    assert!(!c.visible_to(&bank(BANK)));
}

// R-IN-7
#[test]
fn overdue_from_the_day_after_the_due_date() {
    let c = lodged();
    let due = c.due_on.unwrap();
    assert!(!c.is_overdue(due));
    assert!(!c.needs_overdue_alert(due));
    let next = plus_days(due, 1);
    assert!(c.is_overdue(next));
    assert!(c.needs_overdue_alert(next));
}

// R-IN-7: the due day is in time; the day after is late; unanswered is not (yet) late
#[test]
fn answered_late_after_the_due_day() {
    use crate::domain::complaint::answered_late;
    let due = date("2025-10-16");
    assert!(!answered_late(Some(due), Some(due)));
    assert!(!answered_late(Some(due), Some(date("2025-10-15"))));
    assert!(answered_late(Some(due), Some(plus_days(due, 1))));
    assert!(!answered_late(Some(due), None));
    assert!(
        !answered_late(None, Some(plus_days(due, 1))),
        "not counted yet"
    );
}

// R-IN-7: flagged once
#[test]
fn unanswered_complaint_is_flagged_once() {
    let mut c = lodged();
    let late = plus_days(c.due_on.unwrap(), 3);
    assert!(c.needs_overdue_alert(late));
    c.overdue_alerted = true;
    assert!(!c.needs_overdue_alert(late));
    assert!(c.is_overdue(late));
}

// R-IN-7
#[test]
fn an_answered_complaint_is_never_overdue() {
    let mut c = lodged();
    c.assign(&town_staff(TOWN), area(VILLAGE)).unwrap();
    let due = c.due_on.unwrap();
    assert_eq!(c.answer(&village_staff(VILLAGE), due), Ok(false));
    let late = plus_days(due, 30);
    assert!(!c.is_overdue(late));
    assert!(!c.needs_overdue_alert(late));
}

// R-IN-7: a late answer flags a complaint no scan has flagged yet, once; an answer on the due
// day flags nothing, and neither does a late answer to one already flagged.
#[test]
fn a_late_answer_flags_the_complaint_if_no_scan_did() {
    let answered_on = |day: NaiveDate, flagged: bool| {
        let mut c = lodged();
        c.assign(&town_staff(TOWN), area(VILLAGE)).unwrap();
        c.overdue_alerted = flagged;
        let flag = c.answer(&village_staff(VILLAGE), day).unwrap();
        assert!(c.answered && (c.overdue_alerted || !flag));
        flag
    };
    let due = lodged().due_on.unwrap();
    assert!(!answered_on(due, false));
    assert!(answered_on(plus_days(due, 1), false));
    assert!(!answered_on(plus_days(due, 1), true));
}

// R-IN-7, README "Who before what": an assignment to an organisation that cannot hold the
// complaint is bad input (nothing kept) whatever the complaint's state; a good one to an
// answered complaint is refused by the state.
#[test]
fn a_bad_assignment_is_bad_input_before_the_state_is_judged() {
    let mut c = lodged();
    c.assign(&town_staff(TOWN), area(VILLAGE)).expect("assign");
    c.answer(&village_staff(VILLAGE), lodged_on())
        .expect("answer");
    assert_invalid(
        c.assign(&district_staff(), area(OTHER_TOWN)),
        "organisation_area_code",
        "R-IN-7",
    );
    assert_refused(c.assign(&district_staff(), area(TOWN)), "R-IN-7");
}
