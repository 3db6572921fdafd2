//! Boundary tests of the intake service's TIME rules (SPEC.md sections 0, 1 and 6: R-IN-4,
//! R-IN-5, R-IN-7, R-X-4, "working day"; README "How intake reads the rules", "Operating it"),
//! driven over gRPC as a black box with the test clock.
//!
//! Every expected date below was counted by hand on deploy/calendar/2026.toml (and checked
//! against an independent count of the same files), not computed by the service's own calendar
//! code. 2026: 01-01..03 off, Sunday 01-04 worked; Spring Festival 02-15..23 off, Saturdays
//! 02-14 and 02-28 worked; Qingming 04-04..06 off; Mid-Autumn 09-25..27 off, Sunday 09-20
//! worked; National Day 10-01..07 off, Saturday 10-10 worked. No 2027 calendar is shipped.
//!
//! Times are China time (+08:00); "09:00" is used where the hour does not matter.

mod common;

use common::*;
use fupin_proto::{common::v1::PageRequest, intake::v1 as pb};
use prost::Name;
use tonic::Status;

// ---- helpers ----

/// Moves the service's clock to 09:00 China time on `day` (YYYY-MM-DD).
fn on(t: &TestIntake, day: &str) {
    t.set_time(&format!("{day}T09:00:00+08:00"));
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The overdue listing (R-IN-4) as `c` sees it, narrowed to `area` (empty: the caller's own)
/// and `step` (Unspecified: any), ids sorted. Every listed application says it is overdue.
async fn overdue_in(c: &mut Client, area: &str, step: pb::Step) -> Vec<String> {
    let apps = c
        .list_applications(pb::ListApplicationsRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: String::new(),
            }),
            area_code: area.to_owned(),
            statuses: vec![],
            step: step as i32,
            overdue_only: true,
        })
        .await
        .unwrap_or_else(|s| panic!("overdue listing of {area:?}: {s:?}"))
        .into_inner()
        .applications;
    let mut ids = Vec::with_capacity(apps.len());
    for a in apps {
        assert!(a.overdue, "listed as overdue but not flagged: {a:?}");
        ids.push(a.id);
    }
    ids.sort();
    ids
}

/// The district's overdue listing, any step.
async fn overdue_all(t: &TestIntake) -> Vec<String> {
    overdue_in(&mut t.as_district_staff(), "", pb::Step::Unspecified).await
}

/// The complaints `c` sees (one page of 200), only those unanswered past their deadline when
/// `late_only` (R-IN-7).
async fn complaints_of(c: &mut Client, late_only: bool) -> Vec<pb::Complaint> {
    c.list_complaints(pb::ListComplaintsRequest {
        page: Some(PageRequest {
            page_size: 200,
            page_token: String::new(),
        }),
        unanswered_past_deadline_only: late_only,
    })
    .await
    .expect("complaint listing")
    .into_inner()
    .complaints
}

/// Complaints unanswered past their deadline (R-IN-7) as `c` sees them, ids sorted.
async fn late_complaints(c: &mut Client) -> Vec<String> {
    let complaints = complaints_of(c, true).await;
    let mut ids = Vec::with_capacity(complaints.len());
    for c in complaints {
        assert!(c.overdue, "listed as late but not flagged: {c:?}");
        ids.push(c.id);
    }
    ids.sort();
    ids
}

async fn get(t: &TestIntake, id: &str) -> pb::Application {
    t.get_as(&mut t.as_district_staff(), id)
        .await
        .unwrap_or_else(|s| panic!("get {id}: {s:?}"))
}

async fn approve(c: &mut Client, id: &str) -> pb::Application {
    review(c, id, pb::Decision::Approve, "").await
}

async fn history(t: &TestIntake, id: &str) -> Vec<pb::Transition> {
    t.as_district_staff()
        .list_transitions(pb::ListTransitionsRequest {
            application_id: id.to_owned(),
            page: Some(PageRequest {
                page_size: 200,
                page_token: String::new(),
            }),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions
}

/// (application, step, due_on, detected_on) of every `ApplicationStepOverdue` on the stream.
async fn step_alerts(t: &TestIntake) -> Vec<(String, pb::Step, String, String)> {
    t.intake_events(&pb::ApplicationStepOverdue::full_name())
        .await
        .iter()
        .map(|e| {
            let a: pb::ApplicationStepOverdue = e.decode();
            (a.application_id.clone(), a.step(), a.due_on, a.detected_on)
        })
        .collect()
}

fn alert(
    id: &str,
    step: pb::Step,
    due: &str,
    detected: &str,
) -> (String, pb::Step, String, String) {
    (id.to_owned(), step, due.to_owned(), detected.to_owned())
}

async fn status_changes(t: &TestIntake) -> usize {
    t.intake_events(&pb::ApplicationStatusChanged::full_name())
        .await
        .len()
}

fn objection_req(id: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        objector: "村民 赵某".into(),
        content: "the household already has a loan with another bank".into(),
    }
}

async fn object(t: &TestIntake, id: &str) -> Result<pb::Objection, Status> {
    t.as_village_staff(VILLAGE_A)
        .file_objection(objection_req(id))
        .await
        .map(tonic::Response::into_inner)
}

fn resubmit_req(id: &str, note: &str) -> pb::ResubmitApplicationRequest {
    pb::ResubmitApplicationRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        note: note.to_owned(),
        ..Default::default()
    }
}

fn recommend_req(id: &str) -> pb::RecommendToBankRequest {
    pb::RecommendToBankRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        bank_id: BANK.to_owned(),
    }
}

/// A credit household's application in village A, filed on `day` and approved by every tier
/// the same day: in public notice from `day`.
async fn noticed_on(t: &TestIntake, resident: &str, day: &str) -> pb::Application {
    on(t, day);
    let app = t.submit_household(resident, VILLAGE_A, "5000").await;
    t.approve_to_notice(&app).await
}

// ---- R-IN-4: where each step's deadline falls ----

/// R-IN-4, SPEC section 0 "working day": each step's deadline counts its working days on the
/// official calendar from the day the step starts, whether that day is a holiday, an adjusted
/// working weekend (调休) or the day before a long holiday: village 3, town 3, district 5, bank
/// 10. Deadlines may fall on a worked Saturday.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_started_on_holidays_and_adjusted_working_weekends() {
    bounded(240, async {
        let t = spawn_intake().await;
        let r = resident_id(401);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut district = t.as_district_staff();

        // R-IN-4: the village step (3 working days) by the day of submission.
        for (d, due, why) in [
            (
                "2026-01-03",
                "2026-01-06",
                "Saturday of 元旦: the worked Sunday 01-04 is day 1",
            ),
            (
                "2026-01-04",
                "2026-01-07",
                "the worked Sunday itself is day 0",
            ),
            (
                "2026-02-14",
                "2026-02-26",
                "worked Saturday before Spring Festival",
            ),
            ("2026-02-15", "2026-02-26", "first day of Spring Festival"),
            ("2026-02-23", "2026-02-26", "last day of Spring Festival"),
            (
                "2026-02-27",
                "2026-03-03",
                "Friday before the worked Saturday 02-28",
            ),
            (
                "2026-09-30",
                "2026-10-10",
                "day before National Day: due on the worked Saturday",
            ),
            (
                "2026-10-09",
                "2026-10-13",
                "Friday before the worked Saturday 10-10",
            ),
            ("2026-10-10", "2026-10-14", "the worked Saturday itself"),
        ] {
            on(&t, d);
            let a = t.submit_household(&r, VILLAGE_A, "1000").await;
            assert_eq!(a.current_step(), pb::Step::Village, "{why}");
            assert_eq!(a.step_due_on, due, "village step filed {d}: {why}");
            assert!(!a.overdue, "{why}");
        }

        // R-IN-4: 元旦. Filed Saturday 01-03; every later step starts on the worked Sunday 01-04.
        on(&t, "2026-01-03");
        let a = t.submit_household(&r, VILLAGE_A, "1000").await;
        on(&t, "2026-01-04");
        let x = approve(&mut village, &a.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::Town, "2026-01-07")
        );
        let x = approve(&mut town, &a.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::District, "2026-01-09")
        );
        let x = approve(&mut district, &a.id).await;
        assert_eq!(x.notice_ends_on, "2026-01-08");
        on(&t, "2026-01-09");
        let x = t.recommend(&a.id, BANK).await.expect("recommend 01-09");
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::Bank, "2026-01-23")
        );

        // R-IN-4: Spring Festival. Filed Friday 02-13 (day 1 is the worked Saturday 02-14);
        // the village approves on the worked Saturday, the town on the festival's first day
        // (the district is due on the worked Saturday 02-28), the district on its last day;
        // the bank's step starts on the worked Saturday 02-28.
        on(&t, "2026-02-13");
        let b = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(b.step_due_on, "2026-02-25");
        on(&t, "2026-02-14");
        let x = approve(&mut village, &b.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::Town, "2026-02-26")
        );
        on(&t, "2026-02-15");
        let x = approve(&mut town, &b.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::District, "2026-02-28")
        );
        on(&t, "2026-02-23");
        let x = approve(&mut district, &b.id).await;
        assert_eq!(x.notice_ends_on, "2026-02-27");
        on(&t, "2026-02-28");
        let x = t.recommend(&b.id, BANK).await.expect("recommend 02-28");
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::Bank, "2026-03-13")
        );

        // R-IN-4: National Day. Filed the day before it; the village approves on its last day,
        // the town on the worked Saturday 10-10, the bank's step starts 10-15.
        on(&t, "2026-09-30");
        let c = t.submit_household(&r, VILLAGE_A, "1000").await;
        on(&t, "2026-10-07");
        let x = approve(&mut village, &c.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::Town, "2026-10-10")
        );
        on(&t, "2026-10-10");
        let x = approve(&mut town, &c.id).await;
        assert_eq!(
            (x.current_step(), x.step_due_on.as_str()),
            (pb::Step::District, "2026-10-16")
        );
        let x = approve(&mut district, &c.id).await;
        assert_eq!(x.notice_ends_on, "2026-10-14");
        on(&t, "2026-10-15");
        let x = t.recommend(&c.id, BANK).await.expect("recommend 10-15");
        assert_eq!(x.step_due_on, "2026-10-29");

        // R-IN-4: the bank's 10 working days from the day before a long holiday (Friday
        // 02-13, Wednesday 09-30) and from the worked Saturday 10-10.
        for (noticed, recommended, due) in [
            ("2026-02-02", "2026-02-13", "2026-03-05"),
            ("2026-09-21", "2026-09-30", "2026-10-20"),
            ("2026-10-05", "2026-10-10", "2026-10-23"),
        ] {
            let n = noticed_on(&t, &r, noticed).await;
            on(&t, recommended);
            let x = t.recommend(&n.id, BANK).await.expect("recommend");
            assert_eq!(
                (x.current_step(), x.step_due_on.as_str()),
                (pb::Step::Bank, due),
                "bank step from {recommended}"
            );
            assert!(!x.overdue);
        }
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: overdue from the calendar day after the due date ----

/// R-IN-4: a step due on a worked Saturday is overdue on the next calendar day, a Sunday or a
/// holiday (not the next working day), and not at 23:59:59 on the due day. The scan raises
/// `ApplicationStepOverdue` once per overdue step: a second scan, and scans after the clock
/// moves on (days, months), raise nothing more; a late approval raises nothing more for the
/// alerted step, and the next step gets its own deadline from the approval day and, when that
/// passes, its own alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_the_calendar_day_after_a_due_date_on_a_worked_weekend() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(411);
        t.given_credit_household(&r, VILLAGE_A).await;

        // Filed Wednesday 02-11: due on the worked Saturday 02-14; 02-15 starts Spring Festival.
        on(&t, "2026-02-11");
        let y = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(y.step_due_on, "2026-02-14");
        t.set_time("2026-02-14T23:59:59+08:00");
        assert!(!get(&t, &y.id).await.overdue, "in time on the due day");
        assert!(overdue_all(&t).await.is_empty());
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-02-15T00:00:30+08:00");
        assert!(get(&t, &y.id).await.overdue, "overdue on the holiday after");
        assert_eq!(overdue_all(&t).await, vec![y.id.clone()]);
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0, "a second scan");
        on(&t, "2026-02-24");
        assert_eq!(
            scan(&t).await.newly_overdue,
            0,
            "the first working day after"
        );

        // Filed the day before National Day: due on the worked Saturday 10-10, overdue on
        // Sunday 10-11.
        on(&t, "2026-09-30");
        let x = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(x.step_due_on, "2026-10-10");
        t.set_time("2026-10-10T23:59:59+08:00");
        assert!(!get(&t, &x.id).await.overdue);
        assert_eq!(overdue_all(&t).await, vec![y.id.clone()]);
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-10-11T00:00:30+08:00");
        assert!(get(&t, &x.id).await.overdue, "overdue on Sunday 10-11");
        assert_eq!(overdue_all(&t).await, sorted(&[&x.id, &y.id]));
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0);

        // Approved late on Monday 10-12: the town step gets 3 working days from that day.
        on(&t, "2026-10-12");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        let a = approve(&mut t.as_village_staff(VILLAGE_A), &x.id).await;
        assert_eq!(
            (a.current_step(), a.step_due_on.as_str(), a.overdue),
            (pb::Step::Town, "2026-10-15", false)
        );
        assert_eq!(
            scan(&t).await.newly_overdue,
            0,
            "the alerted village step is not alerted again when left"
        );
        assert_eq!(overdue_all(&t).await, vec![y.id.clone()]);
        t.set_time("2026-10-15T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-10-16T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1, "the town step's own alert");
        for later in ["2026-10-19", "2026-11-30", "2026-12-31"] {
            on(&t, later);
            assert_eq!(scan(&t).await.newly_overdue, 0, "nothing more on {later}");
        }

        assert_eq!(
            step_alerts(&t).await,
            vec![
                alert(&y.id, pb::Step::Village, "2026-02-14", "2026-02-15"),
                alert(&x.id, pb::Step::Village, "2026-10-10", "2026-10-11"),
                alert(&x.id, pb::Step::Town, "2026-10-15", "2026-10-16"),
            ]
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4: one application late at every step — village, town, district (across nothing
/// special) and the bank (across Qingming, 04-04..06) — raises exactly one alert per step
/// entry, each with that step's own due date counted from the day the step started; a bank
/// decision after its alert and scans weeks later raise nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_step_late_is_alerted_once_with_its_own_deadline() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(421);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        assert_eq!(app.step_due_on, "2026-03-05");
        let id = app.id.clone();

        on(&t, "2026-03-06");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        on(&t, "2026-03-09");
        let a = approve(&mut t.as_village_staff(VILLAGE_A), &id).await;
        assert_eq!(a.step_due_on, "2026-03-12");
        assert_eq!(scan(&t).await.newly_overdue, 0);

        t.set_time("2026-03-12T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        on(&t, "2026-03-13");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        on(&t, "2026-03-16");
        let a = approve(&mut t.as_town_staff(TOWN_A), &id).await;
        assert_eq!(a.step_due_on, "2026-03-23");
        assert_eq!(scan(&t).await.newly_overdue, 0);

        t.set_time("2026-03-23T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        on(&t, "2026-03-24");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        on(&t, "2026-03-25");
        let a = approve(&mut t.as_district_staff(), &id).await;
        assert_eq!(a.notice_ends_on, "2026-03-29");
        assert!(!a.overdue, "the notice is no step");
        on(&t, "2026-03-30");
        let a = t.recommend(&id, BANK).await.expect("recommend");
        assert_eq!(
            a.step_due_on, "2026-04-14",
            "10 working days across Qingming"
        );
        t.set_time("2026-04-14T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-04-15T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(
            overdue_in(&mut t.as_town_staff(TOWN_A), "", pb::Step::Bank).await,
            vec![id.clone()]
        );
        on(&t, "2026-04-16");
        let a = t
            .as_bank(BANK)
            .record_bank_decision(approve_req(&id, "5000", "0.0435", 12))
            .await
            .expect("late bank approval")
            .into_inner();
        assert!(!a.overdue);
        on(&t, "2026-05-30");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        assert!(overdue_all(&t).await.is_empty());

        assert_eq!(
            step_alerts(&t).await,
            vec![
                alert(&id, pb::Step::Village, "2026-03-05", "2026-03-06"),
                alert(&id, pb::Step::Town, "2026-03-12", "2026-03-13"),
                alert(&id, pb::Step::District, "2026-03-23", "2026-03-24"),
                alert(&id, pb::Step::Bank, "2026-04-14", "2026-04-15"),
            ]
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: overdue listings per area ----

/// R-IN-4 with section 0 (staff see only inside their area): the overdue listing of each
/// village department, town station and the district center holds exactly the overdue
/// applications inside its area — none on the due day, all from the day after — narrowed by
/// `area_code` and `step`; an application not yet due stays out; a bank step past its
/// deadline is listed to the tiers above its village too. Each alert names the application's
/// village.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_listings_are_scoped_to_each_area() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (ra, ra2, rb) = (resident_id(431), resident_id(432), resident_id(433));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        t.given_credit_household(&rb, VILLAGE_B).await;
        // Monday 03-02: village steps due Thursday 03-05.
        let a1 = t.submit_household(&ra, VILLAGE_A, "5000").await;
        let a2 = t.submit_household(&ra2, VILLAGE_A2, "5000").await;
        let b1 = t.submit_household(&rb, VILLAGE_B, "5000").await;
        let banked = t.submit_household(&ra2, VILLAGE_A2, "5000").await;
        t.approve_to_notice(&banked).await;
        on(&t, "2026-03-04");
        let fresh = t.submit_household(&ra, VILLAGE_A, "5000").await;
        assert_eq!(fresh.step_due_on, "2026-03-09");

        t.set_time("2026-03-05T23:59:59+08:00");
        for (who, mut c) in [
            ("village A", t.as_village_staff(VILLAGE_A)),
            ("village A2", t.as_village_staff(VILLAGE_A2)),
            ("village B", t.as_village_staff(VILLAGE_B)),
            ("town A", t.as_town_staff(TOWN_A)),
            ("town B", t.as_town_staff(TOWN_B)),
            ("district", t.as_district_staff()),
        ] {
            assert!(
                overdue_in(&mut c, "", pb::Step::Unspecified)
                    .await
                    .is_empty(),
                "{who}: nothing overdue on the due day"
            );
        }

        t.set_time("2026-03-06T00:00:30+08:00");
        let any = pb::Step::Unspecified;
        let cases: Vec<(&str, Client, &str, pb::Step, Vec<String>)> = vec![
            (
                "village A",
                t.as_village_staff(VILLAGE_A),
                "",
                any,
                vec![a1.id.clone()],
            ),
            (
                "village A2",
                t.as_village_staff(VILLAGE_A2),
                "",
                any,
                vec![a2.id.clone()],
            ),
            (
                "village B",
                t.as_village_staff(VILLAGE_B),
                "",
                any,
                vec![b1.id.clone()],
            ),
            (
                "town A",
                t.as_town_staff(TOWN_A),
                "",
                any,
                sorted(&[&a1.id, &a2.id]),
            ),
            (
                "town A, village A2",
                t.as_town_staff(TOWN_A),
                VILLAGE_A2,
                any,
                vec![a2.id.clone()],
            ),
            (
                "town A, village A",
                t.as_town_staff(TOWN_A),
                VILLAGE_A,
                any,
                vec![a1.id.clone()],
            ),
            (
                "town B",
                t.as_town_staff(TOWN_B),
                "",
                any,
                vec![b1.id.clone()],
            ),
            (
                "district",
                t.as_district_staff(),
                "",
                any,
                sorted(&[&a1.id, &a2.id, &b1.id]),
            ),
            (
                "district, town B",
                t.as_district_staff(),
                TOWN_B,
                any,
                vec![b1.id.clone()],
            ),
            (
                "district, town A",
                t.as_district_staff(),
                TOWN_A,
                any,
                sorted(&[&a1.id, &a2.id]),
            ),
            (
                "district, village step",
                t.as_district_staff(),
                "",
                pb::Step::Village,
                sorted(&[&a1.id, &a2.id, &b1.id]),
            ),
            (
                "district, town step",
                t.as_district_staff(),
                "",
                pb::Step::Town,
                vec![],
            ),
        ];
        for (who, mut c, area, step, want) in cases {
            assert_eq!(overdue_in(&mut c, area, step).await, want, "{who}");
        }
        assert_eq!(scan(&t).await.newly_overdue, 3);
        let mut areas: Vec<(String, String)> = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await
            .iter()
            .map(|e| {
                let a: pb::ApplicationStepOverdue = e.decode();
                (a.application_id, a.area_code)
            })
            .collect();
        areas.sort();
        let mut want = vec![
            (a1.id.clone(), VILLAGE_A.to_owned()),
            (a2.id.clone(), VILLAGE_A2.to_owned()),
            (b1.id.clone(), VILLAGE_B.to_owned()),
        ];
        want.sort();
        assert_eq!(areas, want);

        // The bank step (recommended Saturday 03-07, due 03-20) late on Monday 03-23.
        on(&t, "2026-03-07");
        let x = t.recommend(&banked.id, BANK).await.expect("recommend");
        assert_eq!(x.step_due_on, "2026-03-20");
        on(&t, "2026-03-20");
        assert_eq!(
            overdue_in(&mut t.as_district_staff(), "", pb::Step::Bank).await,
            Vec::<String>::new()
        );
        on(&t, "2026-03-23");
        for (who, mut c, want) in [
            ("district", t.as_district_staff(), vec![banked.id.clone()]),
            ("town A", t.as_town_staff(TOWN_A), vec![banked.id.clone()]),
            (
                "village A2",
                t.as_village_staff(VILLAGE_A2),
                vec![banked.id.clone()],
            ),
            ("village A", t.as_village_staff(VILLAGE_A), vec![]),
            ("town B", t.as_town_staff(TOWN_B), vec![]),
        ] {
            assert_eq!(
                overdue_in(&mut c, "", pb::Step::Bank).await,
                want,
                "{who}: bank step"
            );
        }
        assert_eq!(
            overdue_in(&mut t.as_village_staff(VILLAGE_A), "", any).await,
            sorted(&[&a1.id, &fresh.id]),
            "village A: its two late village steps"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4 with R-IN-2: return for correction ----

/// R-IN-4, R-IN-2 (README: a return goes back to the step that returned it): a returned
/// application has no step and no deadline running — never overdue, listed or alerted however
/// long it waits; the resubmission starts the returning tier's step again with its full
/// working days counted from the resubmission day (here a Spring Festival holiday, and the
/// worked Saturday 02-28), not what was left of the old deadline; that step is alerted once
/// the day after its new due date.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resubmitted_step_counts_its_full_days_from_the_resubmission_day() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(441);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);

        // Returned by the town on its due day, Friday 02-13.
        on(&t, "2026-02-09");
        let r1 = t.submit_household(&r, VILLAGE_A, "5000").await;
        on(&t, "2026-02-10");
        let a = approve(&mut village, &r1.id).await;
        assert_eq!(a.step_due_on, "2026-02-13");
        on(&t, "2026-02-13");
        let a = review(
            &mut town,
            &r1.id,
            pb::Decision::ReturnForCorrection,
            "project plan unsigned",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Returned);
        assert_eq!(a.returned_from(), pb::Step::Town);
        assert_eq!(a.step_due_on, "");

        // Returned by the district, to be resubmitted on the worked Saturday.
        on(&t, "2026-02-02");
        let r2 = t.submit_household(&r, VILLAGE_A, "5000").await;
        approve(&mut village, &r2.id).await;
        approve(&mut town, &r2.id).await;
        on(&t, "2026-02-03");
        review(
            &mut t.as_district_staff(),
            &r2.id,
            pb::Decision::ReturnForCorrection,
            "guarantee letter missing",
        )
        .await;

        // A week after the old due date: nothing is running.
        on(&t, "2026-02-20");
        let a = get(&t, &r1.id).await;
        assert!(!a.overdue, "returned: {a:?}");
        assert!(overdue_all(&t).await.is_empty());
        assert_eq!(scan(&t).await.newly_overdue, 0);

        // Resubmitted on Saturday 02-21, a holiday: 3 working days 02-24, 25, 26.
        on(&t, "2026-02-21");
        let a = village
            .resubmit_application(resubmit_req(&r1.id, "plan signed"))
            .await
            .expect("resubmit on a holiday")
            .into_inner();
        assert_eq!(a.status(), pb::Status::TownReview);
        assert_eq!(a.step_due_on, "2026-02-26");
        assert!(!a.overdue);

        // Resubmitted on the worked Saturday 02-28: district, 5 working days 03-02..06.
        on(&t, "2026-02-28");
        let b = village
            .resubmit_application(resubmit_req(&r2.id, "letter attached"))
            .await
            .expect("resubmit on the worked Saturday")
            .into_inner();
        assert_eq!(b.status(), pb::Status::DistrictReview);
        assert_eq!(b.step_due_on, "2026-03-06");

        t.set_time("2026-02-26T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-02-27T00:00:30+08:00");
        assert_eq!(overdue_all(&t).await, vec![r1.id.clone()]);
        assert_eq!(scan(&t).await.newly_overdue, 1);
        t.set_time("2026-03-06T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-03-07T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0);
        assert_eq!(
            step_alerts(&t).await,
            vec![
                alert(&r1.id, pb::Step::Town, "2026-02-26", "2026-02-27"),
                alert(&r2.id, pb::Step::District, "2026-03-06", "2026-03-07"),
            ],
            "only the resubmitted steps were ever late"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-5: public notice of 5 calendar days ----

/// R-IN-5 (README: the approval day is day 1): a notice approved on Friday 02-13 runs through
/// Tuesday 02-17 in calendar days, Spring Festival or not. RecommendToBank is refused on day 1
/// and at 23:59:59 on day 5 (FAILED_PRECONDITION naming R-IN-5, nothing changed) and first
/// succeeds at 00:00:30 on day 6, a holiday (the bank's 10 working days then start after the
/// festival). An objection on day 1 holds; dismissed during the notice, the hold ends but the
/// notice still runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notice_across_spring_festival_counts_calendar_days() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(451), resident_id(452));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let n1 = noticed_on(&t, &r1, "2026-02-13").await;
        let n2 = noticed_on(&t, &r2, "2026-02-13").await;
        assert_eq!(n1.notice_ends_on, "2026-02-17");
        assert_eq!(n1.step_due_on, "");

        // Day 1: an objection holds n2; n1 cannot be recommended.
        let o = object(&t, &n2.id).await.expect("objection on day 1");
        assert_eq!(get(&t, &n2.id).await.status(), pb::Status::OnHold);
        assert_refused(&t.recommend(&n1.id, BANK).await.unwrap_err(), &["R-IN-5"]);

        // Day 3 (a holiday): the objection dismissed; n2 is back in a notice that still runs.
        on(&t, "2026-02-15");
        t.as_district_staff()
            .resolve_objection(resolve_req(&o.id, false, "the other loan was repaid"))
            .await
            .expect("dismissed");
        assert_eq!(get(&t, &n2.id).await.status(), pb::Status::PublicNotice);
        assert_refused(&t.recommend(&n2.id, BANK).await.unwrap_err(), &["R-IN-5"]);

        // Day 5, last second.
        t.set_time("2026-02-17T23:59:59+08:00");
        let before = get(&t, &n1.id).await;
        let moves = history(&t, &n1.id).await.len();
        let changes = status_changes(&t).await;
        for id in [&n1.id, &n2.id] {
            let s = t.recommend(id, BANK).await.unwrap_err();
            assert_refused(&s, &["R-IN-5"]);
        }
        let after = get(&t, &n1.id).await;
        assert_eq!(after.status(), pb::Status::PublicNotice);
        assert_eq!(after.version, before.version, "nothing changed");
        assert_eq!(after.bank_id, "");
        assert_eq!(history(&t, &n1.id).await.len(), moves);
        assert_eq!(status_changes(&t).await, changes, "nothing announced");

        // Day 6, 02-18, a holiday.
        t.set_time("2026-02-18T00:00:30+08:00");
        for id in [&n1.id, &n2.id] {
            let a = t.recommend(id, BANK).await.expect("recommend on day 6");
            assert_eq!(a.status(), pb::Status::Recommended);
            assert_eq!(
                a.step_due_on, "2026-03-06",
                "10 working days after the festival"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5: an objection filed on the last notice day holds the application past the notice
/// until it is resolved: a further objection the day after is refused (the notice ended) and
/// adds nothing; while held there is no step deadline (not overdue, not alerted) however long
/// it lasts; upheld after the period the application is rejected and cannot be recommended;
/// dismissed after the period it can be recommended the same day. An objection filed and
/// dismissed on the last day itself still leaves the recommendation to the day after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_objection_on_the_last_notice_day_holds_until_resolved() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (r1, r2, r3) = (resident_id(461), resident_id(462), resident_id(463));
        for r in [&r1, &r2, &r3] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let up = noticed_on(&t, &r1, "2026-03-02").await;
        let down = noticed_on(&t, &r2, "2026-03-02").await;
        let same_day = noticed_on(&t, &r3, "2026-03-02").await;
        assert_eq!(up.notice_ends_on, "2026-03-06");

        on(&t, "2026-03-06");
        let o_up = object(&t, &up.id).await.expect("last day");
        let o_down = object(&t, &down.id).await.expect("last day");
        let o_same = object(&t, &same_day.id).await.expect("last day");
        t.set_time("2026-03-06T18:00:00+08:00");
        t.as_district_staff()
            .resolve_objection(resolve_req(&o_same.id, false, "unfounded"))
            .await
            .expect("dismissed on the last day");
        assert_eq!(
            get(&t, &same_day.id).await.status(),
            pb::Status::PublicNotice
        );
        assert_refused(
            &t.recommend(&same_day.id, BANK).await.unwrap_err(),
            &["R-IN-5"],
        );

        t.set_time("2026-03-07T00:00:30+08:00");
        t.recommend(&same_day.id, BANK)
            .await
            .expect("the day after the notice");
        t.as_bank(BANK)
            .record_bank_decision(approve_req(&same_day.id, "5000", "0.0435", 12))
            .await
            .expect("the bank decides at once: no bank step left running");
        let s = object(&t, &up.id).await.unwrap_err();
        assert_refused(&s, &["R-IN-5"]);
        assert_eq!(t.objections(&up.id).await.len(), 1, "nothing added");
        assert_eq!(get(&t, &up.id).await.status(), pb::Status::OnHold);
        assert_refused(&t.recommend(&up.id, BANK).await.unwrap_err(), &["R-IN-5"]);
        assert_refused(&t.recommend(&down.id, BANK).await.unwrap_err(), &["R-IN-5"]);

        // Five weeks on hold: no step, no deadline.
        on(&t, "2026-04-10");
        for id in [&up.id, &down.id] {
            let a = get(&t, id).await;
            assert_eq!(a.status(), pb::Status::OnHold);
            assert_eq!(a.step_due_on, "");
            assert!(!a.overdue);
        }
        assert!(overdue_all(&t).await.is_empty());
        assert_eq!(scan(&t).await.newly_overdue, 0);

        t.as_district_staff()
            .resolve_objection(resolve_req(&o_up.id, true, "a second loan was confirmed"))
            .await
            .expect("upheld after the notice");
        assert_eq!(get(&t, &up.id).await.status(), pb::Status::Rejected);
        assert_refused(&t.recommend(&up.id, BANK).await.unwrap_err(), &["R-IN-2"]);

        t.as_district_staff()
            .resolve_objection(resolve_req(&o_down.id, false, "unfounded"))
            .await
            .expect("dismissed after the notice");
        let a = t
            .recommend(&down.id, BANK)
            .await
            .expect("recommended the day the hold ends");
        assert_eq!(a.step_due_on, "2026-04-24");
        assert!(step_alerts(&t).await.is_empty());
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-7: complaint answer deadlines ----

/// R-IN-7: a complaint is due 10 working days after the day it is lodged, across Spring
/// Festival (lodged 02-13: due 03-05; lodged on the festival's first day: due 03-06) and
/// National Day (lodged the day before it or on its first day: 10-20; on the worked Saturday
/// 10-10: 10-23). Answered on its due day it is never late; unanswered it is late, listed and
/// flagged (`ComplaintOverdue`) from the day after, once, whatever scans follow; a late answer
/// takes it out of the listing and flags nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complaints_across_holidays_are_late_the_day_after_their_due_date() {
    bounded(180, async {
        let t = spawn_intake().await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);

        on(&t, "2026-02-13");
        let answered = lodge(&mut village, VILLAGE_A, "asked for a fee").await;
        let late = lodge(&mut village, VILLAGE_A, "notice board not updated").await;
        assert_eq!(answered.due_on, "2026-03-05");
        assert_eq!(late.due_on, "2026-03-05");
        on(&t, "2026-02-15");
        let holiday = lodge(&mut village, VILLAGE_A, "lodged during the festival").await;
        assert_eq!(holiday.due_on, "2026-03-06");
        for c in [&answered, &late, &holiday] {
            town.assign_complaint(assign_req(&c.id, VILLAGE_A))
                .await
                .expect("assign");
        }

        t.set_time("2026-03-05T23:59:00+08:00");
        let a = village
            .answer_complaint(answer_req(&answered.id, "no fee is due"))
            .await
            .expect("answered on the due day")
            .into_inner();
        assert!(!a.overdue, "answered on its due day: {a:?}");
        t.set_time("2026-03-05T23:59:59+08:00");
        assert!(late_complaints(&mut town).await.is_empty());
        assert_eq!(scan(&t).await.complaints_flagged, 0);

        t.set_time("2026-03-06T00:00:30+08:00");
        for (who, mut c) in [
            ("village A", t.as_village_staff(VILLAGE_A)),
            ("town A", t.as_town_staff(TOWN_A)),
            ("district", t.as_district_staff()),
        ] {
            assert_eq!(
                late_complaints(&mut c).await,
                vec![late.id.clone()],
                "{who}"
            );
        }
        assert!(
            late_complaints(&mut t.as_town_staff(TOWN_B))
                .await
                .is_empty()
        );
        assert_eq!(scan(&t).await.complaints_flagged, 1);
        assert_eq!(scan(&t).await.complaints_flagged, 0);

        t.set_time("2026-03-07T00:00:30+08:00");
        assert_eq!(
            late_complaints(&mut town).await,
            sorted(&[&late.id, &holiday.id])
        );
        assert_eq!(scan(&t).await.complaints_flagged, 1, "the festival one");
        on(&t, "2026-03-31");
        assert_eq!(scan(&t).await.complaints_flagged, 0);
        let a = village
            .answer_complaint(answer_req(&late.id, "board updated"))
            .await
            .expect("late answer")
            .into_inner();
        assert!(!a.overdue, "answered: {a:?}");
        assert_eq!(late_complaints(&mut town).await, vec![holiday.id.clone()]);
        assert_eq!(scan(&t).await.complaints_flagged, 0);
        let flagged: Vec<(String, String, String, String, String)> = t
            .intake_events(&pb::ComplaintOverdue::full_name())
            .await
            .iter()
            .map(|e| {
                let c: pb::ComplaintOverdue = e.decode();
                (
                    c.complaint_id,
                    c.area_code,
                    c.due_on,
                    c.answered_on,
                    c.detected_on,
                )
            })
            .collect();
        assert_eq!(
            flagged,
            vec![
                (
                    late.id.clone(),
                    VILLAGE_A.to_owned(),
                    "2026-03-05".to_owned(),
                    String::new(),
                    "2026-03-06".to_owned()
                ),
                (
                    holiday.id.clone(),
                    VILLAGE_A.to_owned(),
                    "2026-03-06".to_owned(),
                    String::new(),
                    "2026-03-07".to_owned()
                ),
            ],
            "the one answered on its due day is never flagged"
        );

        for (d, due) in [
            ("2026-09-30", "2026-10-20"),
            ("2026-10-01", "2026-10-20"),
            ("2026-10-10", "2026-10-23"),
        ] {
            on(&t, d);
            let c = lodge(&mut village, VILLAGE_A, "lodged around National Day").await;
            assert_eq!(c.due_on, due, "lodged {d}");
            assert!(!c.overdue);
        }
        t.shutdown().await;
    })
    .await;
}

// ---- R-X-4: the policy version in force when a period starts ----

/// R-X-4 with R-IN-4, R-IN-5, R-IN-7: a second policy version (village step 1 working day,
/// notice 3 days, complaints 3 working days, bank 5 working days) in force from Wednesday
/// 03-04 does not move deadlines set on Tuesday under the first: the village step filed 03-03
/// stays due 03-06 (not overdue on 03-05 or 03-06), the complaint lodged 03-03 stays due 03-17
/// and keeps the version that set it when answered later; the notice approved 03-03 runs its 5
/// days to 03-07, and an objection to it and its dismissal under the new version record the
/// version the notice was decided under (README). Steps started from 03-04 get the new values
/// and record the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periods_keep_the_policy_version_in_force_when_they_start() {
    bounded(180, async {
        let v2 = policy_version(
            "luolong-2026.5",
            "2026-03-04",
            &[
                "village_review_days = 1",
                "public_notice_calendar_days = 3",
                "complaint_answer_days = 3",
                "bank_decision_days = 5",
            ],
        );
        let t = spawn_intake_with_policy_versions(&v2).await;
        let r = resident_id(471);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);

        on(&t, "2026-03-03");
        let old = t.submit_household(&r, VILLAGE_A, "5000").await;
        assert_eq!(
            (old.policy_version.as_str(), old.step_due_on.as_str()),
            ("luolong-2026.1", "2026-03-06")
        );
        let noticed = t.submit_household(&r, VILLAGE_A, "5000").await;
        let noticed = t.approve_to_notice(&noticed).await;
        assert_eq!(noticed.notice_ends_on, "2026-03-07");
        assert_eq!(noticed.policy_version, "luolong-2026.1");
        let c = lodge(&mut village, VILLAGE_A, "asked for a fee").await;
        assert_eq!(
            (c.policy_version.as_str(), c.due_on.as_str()),
            ("luolong-2026.1", "2026-03-17")
        );
        t.as_town_staff(TOWN_A)
            .assign_complaint(assign_req(&c.id, VILLAGE_A))
            .await
            .expect("assign");

        t.set_time("2026-03-04T00:30:00+08:00");
        let new = t.submit_household(&r, VILLAGE_A, "5000").await;
        assert_eq!(
            (new.policy_version.as_str(), new.step_due_on.as_str()),
            ("luolong-2026.5", "2026-03-05")
        );
        let c2 = lodge(&mut village, VILLAGE_A, "notice board not updated").await;
        assert_eq!(
            (c2.policy_version.as_str(), c2.due_on.as_str()),
            ("luolong-2026.5", "2026-03-09")
        );
        assert_eq!(get(&t, &old.id).await.step_due_on, "2026-03-06");

        // R-X-4 (README: a move that reads no policy value records the version the current
        // step was decided under): an objection and its dismissal under the new version.
        on(&t, "2026-03-05");
        let o = object(&t, &noticed.id)
            .await
            .expect("objection during the notice");
        t.as_district_staff()
            .resolve_objection(resolve_req(&o.id, false, "unfounded"))
            .await
            .expect("dismissed");

        t.set_time("2026-03-05T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        on(&t, "2026-03-06");
        assert!(
            !get(&t, &old.id).await.overdue,
            "due 03-06 under its version"
        );
        assert_eq!(overdue_all(&t).await, vec![new.id.clone()]);
        assert_eq!(scan(&t).await.newly_overdue, 1);
        // The 3-day notice of the new version would have ended 03-05.
        let s = t.recommend(&noticed.id, BANK).await.unwrap_err();
        assert_refused(&s, &["R-IN-5"]);
        assert!(s.message().contains("2026-03-07"), "{s:?}");
        t.set_time("2026-03-07T00:00:30+08:00");
        assert!(get(&t, &old.id).await.overdue);
        assert_eq!(scan(&t).await.newly_overdue, 1);

        on(&t, "2026-03-08");
        let b = t
            .recommend(&noticed.id, BANK)
            .await
            .expect("the day after the 5-day notice");
        assert_eq!(
            (b.policy_version.as_str(), b.step_due_on.as_str()),
            ("luolong-2026.5", "2026-03-13"),
            "the bank step starts under the new version: 5 working days"
        );
        assert_eq!(
            history(&t, &noticed.id)
                .await
                .iter()
                .map(|tr| (tr.action.clone(), tr.policy_version.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("submit".to_owned(), "luolong-2026.1".to_owned()),
                ("approve".to_owned(), "luolong-2026.1".to_owned()),
                ("approve".to_owned(), "luolong-2026.1".to_owned()),
                ("approve".to_owned(), "luolong-2026.1".to_owned()),
                ("objection".to_owned(), "luolong-2026.1".to_owned()),
                (
                    "objection_dismissed".to_owned(),
                    "luolong-2026.1".to_owned()
                ),
                ("recommend".to_owned(), "luolong-2026.5".to_owned()),
            ]
        );

        // The complaint of 03-03 is late from 03-18, not from 03-07.
        on(&t, "2026-03-09");
        assert_eq!(
            late_complaints(&mut t.as_town_staff(TOWN_A)).await,
            Vec::<String>::new()
        );
        t.set_time("2026-03-17T23:59:59+08:00");
        assert_eq!(
            late_complaints(&mut t.as_town_staff(TOWN_A)).await,
            vec![c2.id.clone()]
        );
        t.set_time("2026-03-18T00:00:30+08:00");
        assert_eq!(
            late_complaints(&mut t.as_town_staff(TOWN_A)).await,
            sorted(&[&c.id, &c2.id])
        );
        let a = village
            .answer_complaint(answer_req(&c.id, "no fee is due"))
            .await
            .expect("answered")
            .into_inner();
        assert_eq!(
            (a.policy_version.as_str(), a.due_on.as_str()),
            ("luolong-2026.1", "2026-03-17"),
            "the version that set due_on"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4 / R-IN-7 at the end of the deployed calendar (2026) ----

/// A step taken with its deadline pending: where it was moved, no due date, no calendar
/// version, not overdue (README "Operating it").
#[track_caller]
fn assert_pending(a: &pb::Application, status: pb::Status, what: &str) {
    assert_eq!(
        (
            a.status(),
            a.step_due_on.as_str(),
            a.step_calendar_version.as_str(),
            a.overdue
        ),
        (status, "", "", false),
        "{what}: taken with its deadline pending"
    );
}

/// R-IN-4 (README "Operating it"): the last day each step's deadline still fits the deployed
/// calendar (it ends on 2026-12-31) and the first that does not. It fits for a recommendation
/// on Thursday 12-17 (the bank's 10 working days), a town approval into the district step on
/// 12-24 (5), and a village approval into the town step, a resubmission and a submission on
/// Monday 12-28 (3). The day after, each is taken all the same (R-IN-2 goes on): moved,
/// announced, in the history (with no calendar version), its deadline pending (no due date, no
/// calendar version, not overdue); a retry with the same request id replays it (R-IN-8); the
/// bank lists the application recommended to it (R-IN-6). However long they wait without a
/// calendar, none is listed overdue or alerted, while the steps with a deadline are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_past_the_calendar_are_taken_with_their_deadlines_pending() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (r1, r2, r) = (resident_id(481), resident_id(482), resident_id(491));
        for x in [&r1, &r2, &r] {
            t.given_credit_household(x, VILLAGE_A).await;
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let p = noticed_on(&t, &r1, "2026-12-01").await;
        let q = noticed_on(&t, &r2, "2026-12-01").await;

        on(&t, "2026-12-21");
        let v_ok = t.submit_household(&r, VILLAGE_A, "1000").await;
        let v_late = t.submit_household(&r, VILLAGE_A, "1000").await;
        let d_ok = t.submit_household(&r, VILLAGE_A, "1000").await;
        let d_late = t.submit_household(&r, VILLAGE_A, "1000").await;
        approve(&mut village, &d_ok.id).await;
        approve(&mut village, &d_late.id).await;
        let s_ok = t.submit_household(&r, VILLAGE_A, "1000").await;
        let s_late = t.submit_household(&r, VILLAGE_A, "1000").await;
        for id in [&s_ok.id, &s_late.id] {
            review(
                &mut village,
                id,
                pb::Decision::ReturnForCorrection,
                "phone missing",
            )
            .await;
        }

        // The last day each deadline fits.
        t.set_time("2026-12-17T23:59:00+08:00");
        let a = t.recommend(&p.id, BANK).await.expect("12-17");
        assert_eq!(a.step_due_on, "2026-12-31");
        t.set_time("2026-12-24T23:59:00+08:00");
        let a = approve(&mut town, &d_ok.id).await;
        assert_eq!(
            (a.current_step(), a.step_due_on.as_str()),
            (pb::Step::District, "2026-12-31")
        );
        t.set_time("2026-12-28T23:59:00+08:00");
        let a = approve(&mut village, &v_ok.id).await;
        assert_eq!(
            (a.current_step(), a.step_due_on.as_str()),
            (pb::Step::Town, "2026-12-31")
        );
        let a = village
            .resubmit_application(resubmit_req(&s_ok.id, "phone added"))
            .await
            .expect("resubmitted 12-28")
            .into_inner();
        assert_eq!(
            (a.status(), a.step_due_on.as_str()),
            (pb::Status::VillageReview, "2026-12-31")
        );
        let sub_ok = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(sub_ok.step_due_on, "2026-12-31");

        // The first day each does not: taken, and a retry replays it.
        let changes = status_changes(&t).await;
        t.set_time("2026-12-18T00:00:30+08:00");
        let req = recommend_req(&q.id);
        let a = t
            .as_district_staff()
            .recommend_to_bank(req.clone())
            .await
            .expect("recommended on 12-18")
            .into_inner();
        assert_pending(&a, pb::Status::Recommended, "recommendation on 12-18");
        assert_eq!(a.bank_id, BANK);
        let again = t
            .as_district_staff()
            .recommend_to_bank(req)
            .await
            .expect("a retry")
            .into_inner();
        assert_eq!(again, a, "the retry replays the recommendation");
        let listed = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await
            .expect("bank listing")
            .into_inner()
            .applications;
        let seen = listed
            .iter()
            .find(|x| x.id == q.id)
            .expect("the bank lists it");
        assert_pending(seen, pb::Status::Recommended, "the bank's listing");

        t.set_time("2026-12-25T00:00:30+08:00");
        let req = review_req(&d_late.id, pb::Decision::Approve, "");
        let a = town
            .review_application(req.clone())
            .await
            .expect("approved on 12-25")
            .into_inner();
        assert_pending(&a, pb::Status::DistrictReview, "district step from 12-25");
        let again = town.review_application(req).await.expect("a retry");
        assert_eq!(again.into_inner(), a, "the retry replays the approval");

        t.set_time("2026-12-29T00:00:30+08:00");
        let a = approve(&mut village, &v_late.id).await;
        assert_pending(&a, pb::Status::TownReview, "town step from 12-29");
        let req = resubmit_req(&s_late.id, "phone added");
        let a = village
            .resubmit_application(req.clone())
            .await
            .expect("resubmitted on 12-29")
            .into_inner();
        assert_pending(&a, pb::Status::VillageReview, "resubmission on 12-29");
        let again = village.resubmit_application(req).await.expect("a retry");
        assert_eq!(again.into_inner(), a, "the retry replays the resubmission");
        let sub = household_request(&r, VILLAGE_A, "1000");
        let sub_late = submit(&mut village, sub.clone()).await;
        assert_pending(&sub_late, pb::Status::VillageReview, "submission on 12-29");
        assert_eq!(
            submit(&mut village, sub).await,
            sub_late,
            "the retry replays the submission"
        );
        assert_eq!(
            status_changes(&t).await,
            changes + 4,
            "each move announced once (a submission as submitted)"
        );
        let last = history(&t, &q.id).await.pop().expect("moved");
        assert_eq!(
            (last.action.as_str(), last.calendar_version.as_str()),
            ("recommend", "")
        );

        // Half a year on, still without a 2027 calendar: the steps with a deadline are overdue
        // and alerted; the pending ones neither.
        on(&t, "2027-06-30");
        let s = scan(&t).await;
        assert_eq!(s.newly_overdue, 5, "the five steps due 12-31");
        let late = [&p.id, &d_ok.id, &v_ok.id, &s_ok.id, &sub_ok.id];
        let mut want: Vec<&str> = late.iter().map(|id| id.as_str()).collect();
        want.sort_unstable();
        assert_eq!(overdue_all(&t).await, want);
        for (id, status) in [
            (&q.id, pb::Status::Recommended),
            (&d_late.id, pb::Status::DistrictReview),
            (&v_late.id, pb::Status::TownReview),
            (&s_late.id, pb::Status::VillageReview),
            (&sub_late.id, pb::Status::VillageReview),
        ] {
            assert_pending(&get(&t, id).await, status, "half a year on");
        }
        let mut alerted: Vec<(String, String)> = step_alerts(&t)
            .await
            .into_iter()
            .filter(|(_, _, _, detected)| detected == "2027-06-30")
            .map(|(id, _, due, _)| (id, due))
            .collect();
        alerted.sort();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|id| ((*id).to_owned(), "2026-12-31".to_owned()))
            .collect();
        assert_eq!(
            alerted, want,
            "alerted: the steps with a deadline, once each"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 past the calendar (README "Operating it"): on the days a step's deadline cannot be
/// counted (a submission and a resubmission on 2026-12-29, a recommendation on 12-18),
/// admission is decided as on any day: a blacklisted household is refused naming R-CR-10,
/// kept with its request id (R-IN-8) after the entry is removed; an admitted one is taken with
/// its deadline pending. Nothing tells a caller the calendar is missing, so no disclosure names
/// R-IN-4 (R-CR-11).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_is_decided_past_the_calendar_as_on_any_day() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (listed, admitted) = (resident_id(497), resident_id(498));
        let (res, rec, fine) = (resident_id(492), resident_id(493), resident_id(494));
        for r in [&listed, &admitted, &res, &rec, &fine] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let returned = t.submit_household(&res, VILLAGE_A, "5000").await;
        review(
            &mut village,
            &returned.id,
            pb::Decision::ReturnForCorrection,
            "plan missing",
        )
        .await;
        let banked = noticed_on(&t, &rec, "2026-12-10").await;
        let admissible = noticed_on(&t, &fine, "2026-12-10").await;
        for (n, r) in [(497, &listed), (492, &res), (493, &rec)] {
            let entry = t
                .publish_blacklisted(&format!("bl-{n}"), r, HOUSEHOLD_KIND)
                .await;
            t.wait_applied(&entry).await;
        }

        on(&t, "2026-12-18");
        let s = t.recommend(&banked.id, BANK).await.unwrap_err();
        assert_refused(&s, &["R-CR-10"]);
        let a = t.recommend(&admissible.id, BANK).await.expect("admitted");
        assert_pending(&a, pb::Status::Recommended, "an admissible recommendation");

        on(&t, "2026-12-29");
        let refused_req = household_request(&listed, VILLAGE_A, "1000");
        let s = err(village.submit_application(refused_req.clone()).await);
        assert_refused(&s, &["R-CR-10"]);
        let resubmit = resubmit_req(&returned.id, "plan added");
        let r = err(village.resubmit_application(resubmit.clone()).await);
        assert_refused(&r, &["R-CR-10"]);
        for (n, who) in [(497, &listed), (492, &res)] {
            let removed = t
                .publish_blacklist_removed(&format!("bl-{n}"), who, HOUSEHOLD_KIND)
                .await;
            t.wait_applied(&removed).await;
        }
        let again = err(village.submit_application(refused_req).await);
        assert_eq!(again.message(), s.message(), "the refusal is kept");
        let again = err(village.resubmit_application(resubmit).await);
        assert_eq!(again.message(), r.message(), "the refusal is kept");

        let a = t.submit_household(&admitted, VILLAGE_A, "1000").await;
        assert_pending(&a, pb::Status::VillageReview, "an admitted submission");
        let a = village
            .resubmit_application(resubmit_req(&returned.id, "plan added, again"))
            .await
            .expect("admissible once the entry is removed")
            .into_inner();
        assert_pending(&a, pb::Status::VillageReview, "an admissible resubmission");
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from admission_disclosures where 'R-IN-4' = any(rules)"
            )
            .await,
            0,
            "nobody is told to wait for a calendar"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4, R-IN-7 (README "Operating it": deadlines are never guessed without a calendar) on
/// 2027-01-01 with no 2027 calendar: the scan alerts the steps and flags the complaint due
/// 2026-12-31 (detected 2027-01-01), the listings show them, a late step left by a rejection
/// is alerted by that move, the complaint is answered and the bank decides; the steps that
/// start a deadline in 2027 (a village approval of an alerted step, a recommendation after a
/// notice ending in 2027, a submission) are taken with it pending, and a complaint is
/// recorded with its deadline pending (R-IN-7): none of them is alerted or flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_year_without_a_2027_calendar() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(495), resident_id(496));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);

        let banked = noticed_on(&t, &r1, "2026-12-01").await;
        on(&t, "2026-12-17");
        let b = t.recommend(&banked.id, BANK).await.expect("recommend");
        assert_eq!(b.step_due_on, "2026-12-31");
        let c = lodge(&mut village, VILLAGE_A, "asked for a fee").await;
        assert_eq!(c.due_on, "2026-12-31");
        t.as_town_staff(TOWN_A)
            .assign_complaint(assign_req(&c.id, VILLAGE_A))
            .await
            .expect("assign");
        on(&t, "2026-12-28");
        let kept = t.submit_household(&r2, VILLAGE_A, "1000").await;
        let rejected = t.submit_household(&r2, VILLAGE_A, "1000").await;
        assert_eq!(kept.step_due_on, "2026-12-31");
        // Noticed from 12-30 (each step in time: the district is due 12-31).
        on(&t, "2026-12-21");
        let noticed = t.submit_household(&r2, VILLAGE_A, "1000").await;
        approve(&mut village, &noticed.id).await;
        on(&t, "2026-12-24");
        approve(&mut t.as_town_staff(TOWN_A), &noticed.id).await;
        on(&t, "2026-12-30");
        let noticed = approve(&mut t.as_district_staff(), &noticed.id).await;
        assert_eq!(noticed.notice_ends_on, "2027-01-03");

        t.set_time("2026-12-31T23:59:59+08:00");
        let s = scan(&t).await;
        assert_eq!((s.newly_overdue, s.complaints_flagged), (0, 0));

        t.set_time("2027-01-01T00:00:30+08:00");
        let a = review(
            &mut village,
            &rejected.id,
            pb::Decision::Reject,
            "household moved away",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Rejected);
        let s = scan(&t).await;
        assert_eq!(
            (s.newly_overdue, s.complaints_flagged),
            (2, 1),
            "the scan needs no 2027 calendar"
        );
        assert_eq!(overdue_all(&t).await, sorted(&[&kept.id, &banked.id]));
        assert!(get(&t, &kept.id).await.overdue);
        assert_eq!(
            late_complaints(&mut t.as_town_staff(TOWN_A)).await,
            vec![c.id.clone()]
        );
        let mut alerts = step_alerts(&t).await;
        alerts.sort();
        let mut want = vec![
            alert(&rejected.id, pb::Step::Village, "2026-12-31", "2027-01-01"),
            alert(&kept.id, pb::Step::Village, "2026-12-31", "2027-01-01"),
            alert(&banked.id, pb::Step::Bank, "2026-12-31", "2027-01-01"),
        ];
        want.sort();
        assert_eq!(alerts, want);
        let flagged = t.intake_events(&pb::ComplaintOverdue::full_name()).await;
        assert_eq!(flagged.len(), 1);
        assert_eq!(
            flagged[0].decode::<pb::ComplaintOverdue>().due_on,
            "2026-12-31"
        );

        // Moves that start no deadline.
        village
            .answer_complaint(answer_req(&c.id, "no fee is due"))
            .await
            .expect("answered in 2027");
        let a = t
            .as_bank(BANK)
            .record_bank_decision(approve_req(&banked.id, "5000", "0.0435", 12))
            .await
            .expect("the bank decides in 2027")
            .into_inner();
        assert_eq!(a.status(), pb::Status::BankApproved);

        // Moves that start one: taken, each with its deadline pending.
        let changes = status_changes(&t).await;
        let a = approve(&mut village, &kept.id).await;
        assert_pending(&a, pb::Status::TownReview, "village approval in 2027");
        assert!(overdue_all(&t).await.is_empty(), "the late step was left");
        on(&t, "2027-01-04");
        let a = t.recommend(&noticed.id, BANK).await.expect("recommended");
        assert_pending(&a, pb::Status::Recommended, "recommendation in 2027");
        let a = t.submit_household(&r2, VILLAGE_A, "1000").await;
        assert_pending(&a, pb::Status::VillageReview, "submission in 2027");
        // A complaint is heard without a calendar: recorded, its deadline pending.
        let pending = village
            .lodge_complaint(lodge_req(VILLAGE_A, "lodged in 2027"))
            .await
            .expect("recorded")
            .into_inner();
        assert_eq!(
            (pending.due_on.as_str(), pending.calendar_version.as_str()),
            ("", ""),
            "deadline pending"
        );
        assert_eq!(status_changes(&t).await, changes + 2, "each move announced");
        assert_eq!(count(&t.pool, "select count(*) from complaints").await, 2);
        on(&t, "2027-03-01");
        let s = scan(&t).await;
        assert_eq!((s.newly_overdue, s.complaints_flagged), (0, 0));
        assert!(overdue_all(&t).await.is_empty());
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: a step left after its deadline before any scan ----

/// (action or "overdue <due_on>") of the application's `ApplicationStatusChanged` and
/// `ApplicationStepOverdue` events, in stream order.
async fn moves_and_alerts(t: &TestIntake, id: &str) -> Vec<String> {
    t.outbox_drained().await;
    let subject = t.bus.subject_for("fupin.intake.v1.*");
    all_events(&t.bus, &subject)
        .await
        .iter()
        .filter_map(|e| {
            if e.subject.ends_with(".ApplicationStepOverdue") {
                let a: pb::ApplicationStepOverdue = e.decode();
                (a.application_id == id).then(|| format!("overdue {}", a.due_on))
            } else if e.subject.ends_with(".ApplicationStatusChanged") {
                let a: pb::ApplicationStatusChanged = e.decode();
                (a.application_id == id).then_some(a.action)
            } else {
                None
            }
        })
        .collect()
}

/// R-IN-4 (README: a step left after its deadline before any scan saw it is alerted by the
/// move that leaves it, `ApplicationStepOverdue` just before its `ApplicationStatusChanged`):
/// whatever the move — a return for correction, a district approval into the notice, a bank
/// approval, a bank rejection — the late step is alerted once, with its own due date and the
/// day of the move; a step left on its due day (23:59) is not; the scan afterwards alerts only
/// the steps still pending past their deadline (the resubmitted one, the next one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_left_late_is_alerted_by_the_move_that_leaves_it() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(501);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        // Monday 03-02.
        let ret = t.submit_household(&r, VILLAGE_A, "5000").await;
        let in_time = t.submit_household(&r, VILLAGE_A, "5000").await;
        let dist = t.submit_household(&r, VILLAGE_A, "5000").await;
        approve(&mut village, &dist.id).await;
        let d = approve(&mut t.as_town_staff(TOWN_A), &dist.id).await;
        assert_eq!(d.step_due_on, "2026-03-09");
        let bank_ok = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.approve_to_notice(&bank_ok).await;
        let bank_no = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.approve_to_notice(&bank_no).await;
        on(&t, "2026-03-07");
        for id in [&bank_ok.id, &bank_no.id] {
            let a = t.recommend(id, BANK).await.expect("recommend");
            assert_eq!(a.step_due_on, "2026-03-20");
        }

        t.set_time("2026-03-05T23:59:00+08:00");
        let a = approve(&mut village, &in_time.id).await;
        assert_eq!(a.step_due_on, "2026-03-10");

        on(&t, "2026-03-06");
        review(
            &mut village,
            &ret.id,
            pb::Decision::ReturnForCorrection,
            "phone missing",
        )
        .await;
        let a = village
            .resubmit_application(resubmit_req(&ret.id, "phone added"))
            .await
            .expect("resubmit")
            .into_inner();
        assert_eq!(a.step_due_on, "2026-03-11");

        on(&t, "2026-03-10");
        let a = approve(&mut t.as_district_staff(), &dist.id).await;
        assert_eq!(a.status(), pb::Status::PublicNotice);

        on(&t, "2026-03-23");
        t.as_bank(BANK)
            .record_bank_decision(approve_req(&bank_ok.id, "5000", "0.0435", 12))
            .await
            .expect("late approval");
        t.as_bank(BANK)
            .record_bank_decision(pb::RecordBankDecisionRequest {
                request_id: rid(),
                application_id: bank_no.id.clone(),
                approved: false,
                rejection_reason: "repayment capacity insufficient".into(),
                ..Default::default()
            })
            .await
            .expect("late rejection");

        let s = scan(&t).await;
        assert_eq!(
            s.newly_overdue, 2,
            "the resubmitted village step and in_time's town step"
        );
        assert_eq!(scan(&t).await.newly_overdue, 0);

        let mut alerts = step_alerts(&t).await;
        alerts.sort();
        let mut want = vec![
            alert(&ret.id, pb::Step::Village, "2026-03-05", "2026-03-06"),
            alert(&ret.id, pb::Step::Village, "2026-03-11", "2026-03-23"),
            alert(&dist.id, pb::Step::District, "2026-03-09", "2026-03-10"),
            alert(&bank_ok.id, pb::Step::Bank, "2026-03-20", "2026-03-23"),
            alert(&bank_no.id, pb::Step::Bank, "2026-03-20", "2026-03-23"),
            alert(&in_time.id, pb::Step::Town, "2026-03-10", "2026-03-23"),
        ];
        want.sort();
        assert_eq!(alerts, want);

        for (id, want) in [
            (
                &ret.id,
                vec![
                    "overdue 2026-03-05",
                    "return",
                    "resubmit",
                    "overdue 2026-03-11",
                ],
            ),
            (
                &dist.id,
                vec!["approve", "approve", "overdue 2026-03-09", "approve"],
            ),
            (
                &bank_ok.id,
                vec![
                    "approve",
                    "approve",
                    "approve",
                    "recommend",
                    "overdue 2026-03-20",
                    "bank_approve",
                ],
            ),
            (
                &bank_no.id,
                vec![
                    "approve",
                    "approve",
                    "approve",
                    "recommend",
                    "overdue 2026-03-20",
                    "bank_reject",
                ],
            ),
            (&in_time.id, vec!["approve", "overdue 2026-03-10"]),
        ] {
            assert_eq!(moves_and_alerts(&t, id).await, want, "{id}");
        }
        t.shutdown().await;
    })
    .await;
}

/// The shipped reference data with a 2027 calendar added, as an operator deploys it: a test
/// year with only New Year's Day off and no worked weekend day.
fn with_2027() -> fupin_intake::Reference {
    let shipped: Vec<String> = (2024..=2026)
        .map(|y| {
            std::fs::read_to_string(format!(
                "{}/../../deploy/calendar/{y}.toml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("shipped calendar")
        })
        .collect();
    let mut texts: Vec<&str> = shipped.iter().map(String::as_str).collect();
    texts.push(
        "year = 2027\nsource = \"test\"\nholidays = [\"2027-01-01\"]\n\
         adjusted_working_days = []\n",
    );
    fupin_intake::Reference {
        calendar: fupin_kernel::WorkingDayCalendar::from_year_strs(&texts).expect("2027"),
        ..reference()
    }
}

/// R-IN-4 across the end of the calendar: steps entered when their deadline ran past the
/// deployed calendar (a village step from a submission on 2026-12-29, a town step from a
/// village approval on 12-30, bank steps from recommendations on 12-18 and 12-31) wait with
/// their deadline pending, neither listed overdue nor alerted on 2027-01-07. Once intake
/// restarts with a 2027 calendar (a test year with only New Year's Day off), the first scan
/// counts each from the day its step started, with its own step's days, and records the
/// version of the years' data that counted it (R-X-4): due 01-04, 01-05, 01-04 and 01-15. The three past due are
/// alerted once, with those dates, and listed overdue; the fourth is not yet; a step entered
/// after the restart has its deadline at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_entered_beyond_the_calendar_gets_its_deadline_once_it_is_deployed() {
    bounded(180, async {
        let mut t = spawn_intake().await;
        let (r1, r2, r3, r4) = (
            resident_id(521),
            resident_id(522),
            resident_id(523),
            resident_id(524),
        );
        for r in [&r1, &r2, &r3, &r4] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let early = noticed_on(&t, &r3, "2026-12-01").await;
        let last = noticed_on(&t, &r4, "2026-12-01").await;
        on(&t, "2026-12-18");
        let bank_early = t.recommend(&early.id, BANK).await.expect("12-18");
        on(&t, "2026-12-29");
        let village_step = t.submit_household(&r1, VILLAGE_A, "1000").await;
        let town_step = t.submit_household(&r2, VILLAGE_A, "1000").await;
        on(&t, "2026-12-30");
        let town_step = approve(&mut t.as_village_staff(VILLAGE_A), &town_step.id).await;
        on(&t, "2026-12-31");
        let bank_late = t.recommend(&last.id, BANK).await.expect("12-31");
        for a in [&bank_early, &village_step, &town_step, &bank_late] {
            assert_eq!(a.step_due_on, "", "pending");
        }
        on(&t, "2027-01-07");
        assert_eq!(
            scan(&t).await.newly_overdue,
            0,
            "nothing to alert while pending"
        );
        assert!(overdue_all(&t).await.is_empty());

        t.restart_with(with_2027()).await;
        on(&t, "2027-01-07");
        let s = scan(&t).await;
        assert_eq!(s.newly_overdue, 3, "the three past their counted deadline");
        assert_eq!(
            overdue_all(&t).await,
            sorted(&[&bank_early.id, &village_step.id, &town_step.id])
        );
        for (a, step, due, overdue, years) in [
            // 12-21..25, 12-28..31 (9); 1 January off; 01-04 (10)
            (&bank_early, pb::Step::Bank, "2027-01-04", true, "2026+2027"),
            // 12-30, 12-31, 01-04
            (
                &village_step,
                pb::Step::Village,
                "2027-01-04",
                true,
                "2026+2027",
            ),
            // 12-31, 01-04, 01-05
            (&town_step, pb::Step::Town, "2027-01-05", true, "2026+2027"),
            // 01-04..08, 01-11..15: no day of 2026 counted
            (&bank_late, pb::Step::Bank, "2027-01-15", false, "2027"),
        ] {
            let got = get(&t, &a.id).await;
            assert_eq!(
                (got.current_step(), got.step_due_on.as_str(), got.overdue),
                (step, due, overdue),
                "{step:?} step of {}",
                a.id
            );
            let counted_by: Vec<&str> = got
                .step_calendar_version
                .split('+')
                .map(|v| v.split('#').next().unwrap_or_default())
                .collect();
            assert_eq!(
                counted_by.join("+"),
                years,
                "the years whose data counted it: {}",
                got.step_calendar_version
            );
            assert!(got.version > a.version, "the change is a new version");
            // The move that entered the step gets it too, as it would have then.
            let entered = history(&t, &a.id).await.pop().expect("a history");
            assert_eq!(
                (
                    entered.step_due_on.as_str(),
                    entered.calendar_version.as_str()
                ),
                (due, got.step_calendar_version.as_str()),
                "the transition into the step of {}",
                a.id
            );
        }
        let mut alerts = step_alerts(&t).await;
        alerts.sort();
        let mut want = vec![
            alert(&bank_early.id, pb::Step::Bank, "2027-01-04", "2027-01-07"),
            alert(
                &village_step.id,
                pb::Step::Village,
                "2027-01-04",
                "2027-01-07",
            ),
            alert(&town_step.id, pb::Step::Town, "2027-01-05", "2027-01-07"),
        ];
        want.sort();
        assert_eq!(alerts, want);
        assert_eq!(scan(&t).await.newly_overdue, 0, "once");
        on(&t, "2027-01-18");
        assert_eq!(scan(&t).await.newly_overdue, 1, "the last one, when due");

        let a = t.submit_household(&r1, VILLAGE_A, "1000").await;
        // 01-19, 01-20, 01-21
        assert_eq!(a.step_due_on, "2027-01-21");

        // During a rolling update a replica still without the 2027 data may leave a deadline
        // pending after this process's first scan (here written as it would): the next scan
        // counts it.
        sqlx::query(
            "update applications set step_due_on = null, step_calendar = null where id = $1::uuid",
        )
        .bind(&a.id)
        .execute(&t.pool)
        .await
        .expect("left pending as an older replica would");
        on(&t, "2027-01-22");
        assert_eq!(scan(&t).await.newly_overdue, 1, "counted, then alerted");
        let got = get(&t, &a.id).await;
        assert_eq!(
            (got.step_due_on.as_str(), got.overdue),
            ("2027-01-21", true)
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4, once per step, for steps left while their deadline was pending. Without a 2027
/// calendar: village steps entered on 2026-12-29 (they will be due 01-04) are left on 12-30
/// (in time), on 01-04 (on the day: in time) and on 01-20 (late), and a bank step entered on
/// 12-31 (due 01-15) is left by the bank's decision on 01-20 (late); none is alerted, since
/// nobody can tell yet. Once intake restarts with a 2027 calendar, a move that leaves such a
/// step before any scan counts its deadline and alerts it as for any late step (just before
/// its move); the first scan alerts the two steps left late (each with its due date, detected
/// on the scan's day; the bank step naming its bank, the policy it was entered under and the
/// 2027 data that counted it) and, as usual, the pending town step now past its counted
/// deadline, but not the steps left in time; later scans and restarts alert nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_left_while_its_deadline_was_pending_is_alerted_if_it_was_left_late() {
    bounded(180, async {
        let mut t = spawn_intake().await;
        let (r1, r2, r3, r4) = (
            resident_id(531),
            resident_id(532),
            resident_id(533),
            resident_id(534),
        );
        for r in [&r1, &r2, &r3, &r4] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let noticed = noticed_on(&t, &r4, "2026-12-01").await;
        on(&t, "2026-12-29");
        let late = t.submit_household(&r1, VILLAGE_A, "1000").await;
        let in_time = t.submit_household(&r2, VILLAGE_A, "1000").await;
        let on_the_day = t.submit_household(&r2, VILLAGE_A, "1000").await;
        let after_restart = t.submit_household(&r3, VILLAGE_A, "1000").await;
        on(&t, "2026-12-30");
        approve(&mut village, &in_time.id).await;
        on(&t, "2026-12-31");
        let banked = t.recommend(&noticed.id, BANK).await.expect("recommended");
        assert_eq!(banked.step_due_on, "", "pending");
        t.set_time("2027-01-04T23:59:00+08:00");
        review(
            &mut village,
            &on_the_day.id,
            pb::Decision::Reject,
            "moved away",
        )
        .await;
        on(&t, "2027-01-20");
        let late_left = approve(&mut village, &late.id).await;
        let decided = t
            .as_bank(BANK)
            .record_bank_decision(approve_req(&banked.id, "5000", "0.0435", 12))
            .await
            .expect("the bank decides")
            .into_inner();
        assert_eq!(decided.status(), pb::Status::BankApproved);
        assert_eq!(scan(&t).await.newly_overdue, 0, "nobody can tell yet");
        assert!(step_alerts(&t).await.is_empty());

        t.restart_with(with_2027()).await;
        on(&t, "2027-01-20");
        let a = approve(&mut t.as_village_staff(VILLAGE_A), &after_restart.id).await;
        // 01-21, 01-22, 01-25
        assert_eq!(a.step_due_on, "2027-01-25");
        // 12-30, 12-31, 01-04
        assert_eq!(
            moves_and_alerts(&t, &after_restart.id).await,
            vec!["overdue 2027-01-04", "approve"],
            "counted and alerted by the move"
        );

        on(&t, "2027-01-21");
        let s = scan(&t).await;
        assert_eq!(s.newly_overdue, 3);
        let mut alerts = step_alerts(&t).await;
        alerts.sort();
        let mut want = vec![
            alert(
                &after_restart.id,
                pb::Step::Village,
                "2027-01-04",
                "2027-01-20",
            ),
            alert(&late.id, pb::Step::Village, "2027-01-04", "2027-01-21"),
            // 01-04..08, 01-11..15
            alert(&banked.id, pb::Step::Bank, "2027-01-15", "2027-01-21"),
            // 12-31, 01-04, 01-05: still in the town step, alerted by the scan as usual
            alert(&in_time.id, pb::Step::Town, "2027-01-05", "2027-01-21"),
        ];
        want.sort();
        assert_eq!(alerts, want);
        let bank_alert = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await
            .iter()
            .map(|e| e.decode::<pb::ApplicationStepOverdue>())
            .find(|a| a.application_id == banked.id)
            .expect("the bank step's alert");
        assert_eq!(
            (
                bank_alert.bank_id.as_str(),
                bank_alert.policy_version.as_str()
            ),
            (BANK, banked.policy_version.as_str()),
            "its bank, and the policy the step was entered under"
        );
        assert!(
            bank_alert.calendar_version.starts_with("2027#")
                && !bank_alert.calendar_version.contains('+'),
            "the 2027 data counted it: {}",
            bank_alert.calendar_version
        );
        // Which entry into a step is late, and whether the application had left it: a step
        // left while its deadline was pending names the day it was left (the application has
        // moved on since); one it is still in, or leaves with the alert, names none. Each
        // carries the application's version: the current one when the scan raised it, the
        // one before the move that raised it.
        let alerts: std::collections::HashMap<String, pb::ApplicationStepOverdue> = t
            .intake_messages::<pb::ApplicationStepOverdue>()
            .await
            .into_iter()
            .map(|a| (a.application_id.clone(), a))
            .collect();
        let left = &alerts[&late.id];
        assert_eq!((left.step_entry, left.left_on.as_str()), (1, "2027-01-20"));
        assert!(left.application_version >= late_left.version, "{left:?}");
        let staying = &alerts[&in_time.id];
        assert_eq!((staying.step_entry, staying.left_on.as_str()), (2, ""));
        let with_move = &alerts[&after_restart.id];
        assert_eq!((with_move.step_entry, with_move.left_on.as_str()), (1, ""));
        assert_eq!(with_move.application_version + 1, a.version);
        // The deadlines counted after the step was left, by the scan or by the move that left
        // it, are recorded on the transition that entered the step (its first, the
        // submission's), found by its step entry.
        for id in [&late.id, &after_restart.id] {
            let entered = history(&t, id).await.remove(0);
            assert_eq!(
                (entered.action.as_str(), entered.step_due_on.as_str()),
                ("submit", "2027-01-04"),
                "{id}"
            );
            assert!(entered.calendar_version.contains("2027#"), "{entered:?}");
        }
        assert_eq!(
            count(&t.pool, "select count(*) from left_steps_pending").await,
            0,
            "every left step counted"
        );
        assert_eq!(scan(&t).await.newly_overdue, 0, "once");
        t.restart_with(with_2027()).await;
        on(&t, "2027-01-21");
        assert_eq!(scan(&t).await.newly_overdue, 0, "once, across restarts");
        assert_eq!(step_alerts(&t).await.len(), 4);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-7 across the end of the calendar: complaints lodged on 2026-12-28 (ten working days
/// reach 2027, which the deployed calendar lacks) are recorded with their deadline pending:
/// neither listed late nor flagged, however long they wait. Once intake restarts with a 2027
/// calendar (here a test year with only New Year's Day off), the scan counts their deadline
/// (2027-01-12) under the calendar version now deployed: the unanswered one is flagged and
/// listed late, the one answered on 01-13 is flagged as answered late, each once; the one
/// answered on 01-12 is in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_complaint_lodged_beyond_the_calendar_gets_its_deadline_once_it_is_deployed() {
    bounded(120, async {
        let mut t = spawn_intake().await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        on(&t, "2026-12-28");
        let open = lodge(&mut village, VILLAGE_A, "asked for a fee").await;
        let answered = lodge(&mut village, VILLAGE_A, "notice board not updated").await;
        let in_time = lodge(&mut village, VILLAGE_A, "list not posted").await;
        for c in [&open, &answered, &in_time] {
            assert_eq!((c.due_on.as_str(), c.overdue), ("", false), "pending");
            town.assign_complaint(assign_req(&c.id, VILLAGE_A))
                .await
                .expect("assign");
        }
        t.set_time("2027-01-12T23:59:00+08:00");
        village
            .answer_complaint(answer_req(&in_time.id, "posted"))
            .await
            .expect("answered on what will be its due day");
        on(&t, "2027-01-13");
        let a = village
            .answer_complaint(answer_req(&answered.id, "updated"))
            .await
            .expect("answered without a calendar")
            .into_inner();
        assert_eq!((a.due_on.as_str(), a.answered_late), ("", false));
        let s = scan(&t).await;
        assert_eq!(s.complaints_flagged, 0, "nothing to flag while pending");
        assert!(late_complaints(&mut town).await.is_empty());

        t.restart_with(with_2027()).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let s = scan(&t).await;
        assert_eq!(s.complaints_flagged, 2, "the late one and the late answer");
        assert_eq!(late_complaints(&mut town).await, vec![open.id.clone()]);
        let listed = complaints_of(&mut village, false).await;
        for c in &listed {
            assert_eq!(c.due_on, "2027-01-12", "{c:?}");
            assert!(c.calendar_version.contains("+2027#"), "{c:?}");
        }
        let late_answer = listed.iter().find(|c| c.id == answered.id).expect("listed");
        assert!(late_answer.answered_late && !late_answer.overdue);
        let timely = listed.iter().find(|c| c.id == in_time.id).expect("listed");
        assert!(!timely.answered_late && !timely.overdue, "{timely:?}");
        // The late answer's flag says when it was answered, so a system listing flagged
        // complaints as open can clear it; the unanswered one's says none.
        let mut flagged: Vec<(String, String, String)> = t
            .intake_messages::<pb::ComplaintOverdue>()
            .await
            .into_iter()
            .map(|c| (c.complaint_id, c.answered_on, c.detected_on))
            .collect();
        flagged.sort();
        let mut want = vec![
            (open.id.clone(), String::new(), "2027-01-13".to_owned()),
            (
                answered.id.clone(),
                "2027-01-13".to_owned(),
                "2027-01-13".to_owned(),
            ),
        ];
        want.sort();
        assert_eq!(flagged, want);
        assert_eq!(scan(&t).await.complaints_flagged, 0, "once");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-8 with R-IN-4 / R-IN-7: retries across the end of the calendar ----

/// R-IN-8 with R-IN-4, R-IN-7 (README "Operating it": steps and complaints past the calendar
/// are taken with their deadline pending): a write that succeeded on the last day its deadline fitted, retried
/// with the same request id the day after, returns the first result and changes nothing; a
/// submission taken the day after with its deadline pending, retried the day before (the clock
/// moved back), replays that and does not count a deadline. A submission (12-28 / 12-29), a
/// recommendation and a complaint (12-17 / 12-18); a complaint lodged on 12-18 is recorded
/// with its deadline pending, and its retry replays that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_around_the_last_fitting_day() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(511);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let noticed = noticed_on(&t, &r, "2026-12-01").await;

        on(&t, "2026-12-17");
        let rec = recommend_req(&noticed.id);
        let first_rec = t
            .as_district_staff()
            .recommend_to_bank(rec.clone())
            .await
            .expect("recommend 12-17")
            .into_inner();
        assert_eq!(first_rec.step_due_on, "2026-12-31");
        let lodge_first = lodge_req(VILLAGE_A, "asked for a fee");
        let first_c = village
            .lodge_complaint(lodge_first.clone())
            .await
            .expect("lodge 12-17")
            .into_inner();
        assert_eq!(first_c.due_on, "2026-12-31");
        on(&t, "2026-12-28");
        let sub = household_request(&r, VILLAGE_A, "1000");
        let first_app = submit(&mut village, sub.clone()).await;
        assert_eq!(first_app.step_due_on, "2026-12-31");

        on(&t, "2026-12-18");
        let again = t
            .as_district_staff()
            .recommend_to_bank(rec)
            .await
            .expect("a retry replays the recommendation")
            .into_inner();
        assert_eq!(again, first_rec);
        let again = village
            .lodge_complaint(lodge_first)
            .await
            .expect("a retry replays the complaint")
            .into_inner();
        assert_eq!(again, first_c);
        on(&t, "2026-12-29");
        let again = submit(&mut village, sub).await;
        assert_eq!(again, first_app);

        // Taken with its deadline pending, then replayed as it was.
        let sub2 = household_request(&r, VILLAGE_A, "2000");
        let a2 = submit(&mut village, sub2.clone()).await;
        assert_pending(&a2, pb::Status::VillageReview, "submission on 12-29");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 3);
        // A complaint is recorded on 12-18 with its deadline pending; its retry is answered
        // the same, whenever it comes.
        on(&t, "2026-12-18");
        let lodge2 = lodge_req(VILLAGE_A, "notice board not updated");
        let c2 = village
            .lodge_complaint(lodge2.clone())
            .await
            .expect("recorded on 12-18")
            .into_inner();
        assert_eq!(c2.due_on, "", "deadline pending");
        t.set_time("2026-12-17T23:59:00+08:00");
        let again = village
            .lodge_complaint(lodge2)
            .await
            .expect("a retry replays the complaint")
            .into_inner();
        assert_eq!(again, c2);
        t.set_time("2026-12-28T23:59:00+08:00");
        assert_eq!(
            submit(&mut village, sub2).await,
            a2,
            "the retry replays the pending deadline"
        );

        assert_eq!(count(&t.pool, "select count(*) from complaints").await, 2);
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 3);
        assert_eq!(
            history(&t, &noticed.id).await.len(),
            5,
            "one recommendation"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: overdue listing of a town-level enterprise ----

/// R-IN-4 with R-IN-1 and section 0: a cooperative registered at town A and filed at the
/// district center starts at the district step (5 working days: filed Monday 03-02, due
/// Monday 03-09). It is overdue from 03-10 in the listings of the district and of town A, not
/// in those of village A (which does not see town-level enterprises) or of town B, and its
/// alert names the town.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_town_level_enterprise_is_overdue_for_the_town_and_the_district() {
    bounded(120, async {
        let t = spawn_intake().await;
        let code = uscc('3', 521);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let app = submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_A, "300000"),
        )
        .await;
        assert_eq!(
            (app.current_step(), app.step_due_on.as_str()),
            (pb::Step::District, "2026-03-09")
        );
        let any = pb::Step::Unspecified;
        t.set_time("2026-03-09T23:59:59+08:00");
        assert!(overdue_all(&t).await.is_empty());
        t.set_time("2026-03-10T00:00:30+08:00");
        assert_eq!(overdue_all(&t).await, vec![app.id.clone()]);
        assert_eq!(
            overdue_in(&mut t.as_town_staff(TOWN_A), "", any).await,
            vec![app.id.clone()]
        );
        assert_eq!(
            overdue_in(&mut t.as_district_staff(), TOWN_A, pb::Step::District).await,
            vec![app.id.clone()]
        );
        assert!(
            overdue_in(&mut t.as_village_staff(VILLAGE_A), "", any)
                .await
                .is_empty()
        );
        assert!(
            overdue_in(&mut t.as_town_staff(TOWN_B), "", any)
                .await
                .is_empty()
        );
        assert_eq!(scan(&t).await.newly_overdue, 1);
        let alerts = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await;
        assert_eq!(alerts.len(), 1);
        let a: pb::ApplicationStepOverdue = alerts[0].decode();
        assert_eq!(
            (a.step(), a.area_code.as_str(), a.due_on.as_str()),
            (pb::Step::District, TOWN_A, "2026-03-09")
        );
        t.shutdown().await;
    })
    .await;
}
