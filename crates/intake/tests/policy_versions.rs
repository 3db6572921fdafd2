//! R-X-4: policy values are versioned with effective dates and each decision records the
//! version it used. A second intake policy version takes effect while an application is in
//! flight: the moves before it record the first, the moves after it the second, and the
//! re-check at recommendation refuses under the second's lower cap, naming it.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use prost::Name;

/// The application's transitions as the district sees them.
async fn history(t: &TestIntake, id: &str) -> Vec<pb::Transition> {
    t.as_district_staff()
        .list_transitions(pb::ListTransitionsRequest {
            application_id: id.to_owned(),
            page: None,
        })
        .await
        .expect("history")
        .into_inner()
        .transitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_decision_records_the_policy_version_in_force_on_its_day() {
    bounded(90, async {
        // The shipped values, but a 10,000 yuan cap from Wednesday 2026-03-04.
        let lower_cap = policy_version(
            "luolong-2026.2",
            "2026-03-04",
            &["max_amount = \"10000.00\""],
        );
        let t = spawn_intake_with_policy_versions(&lower_cap).await;
        let r = resident_id(81);
        t.given_credit_household(&r, VILLAGE_A).await;
        // Monday and Tuesday under the first version.
        let a = t.submit_household(&r, VILLAGE_A, "15000").await;
        assert_eq!(a.policy_version, "luolong-2026.1");
        t.set_time("2026-03-03T09:00:00+08:00");
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        // Wednesday under the second.
        t.set_time("2026-03-04T09:00:00+08:00");
        review(
            &mut t.as_town_staff(TOWN_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let noticed = review(&mut t.as_district_staff(), &a.id, pb::Decision::Approve, "").await;
        assert_eq!(noticed.policy_version, "luolong-2026.2");
        let history = history(&t, &a.id).await;
        assert_eq!(
            history
                .iter()
                .map(|tr| (tr.action.as_str(), tr.policy_version.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("submit", "luolong-2026.1"),
                ("approve", "luolong-2026.1"),
                ("approve", "luolong-2026.2"),
                ("approve", "luolong-2026.2"),
            ]
        );
        let complaint = t
            .as_village_staff(VILLAGE_A)
            .lodge_complaint(pb::LodgeComplaintRequest {
                request_id: rid(),
                complainant: "村民 钱某".into(),
                content: "notice board not updated".into(),
                area_code: VILLAGE_A.into(),
                application_id: String::new(),
            })
            .await
            .expect("lodged")
            .into_inner();
        assert_eq!(complaint.policy_version, "luolong-2026.2");

        // After the notice, the re-check refuses the 15,000 under the second version's cap.
        t.set_time("2026-03-09T09:00:00+08:00");
        let s = t
            .recommend(&a.id, BANK)
            .await
            .expect_err("above the new cap");
        // The household cap, and the line capped by it (R-CR-8).
        assert_refused(&s, &["R-IN-3", "R-CR-8"]);
        assert!(s.message().contains("10000"), "{s:?}");
        assert!(s.message().ends_with("(policy luolong-2026.2)"), "{s:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-4 (calendars are versioned policy values): every deadline counted in working days
/// records the version of the calendar data that counted it: the application's current step,
/// the transition that started the step, the overdue alert, and the complaint. A move that
/// starts no step (the public notice, in calendar days) records none; a deadline counted
/// across New Year records both years.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_deadline_records_the_calendar_data_that_counted_it() {
    bounded(90, async {
        let t = spawn_intake().await;
        let cal = |from: &str, to: &str| {
            t.calendar
                .version(day(from), day(to))
                .expect("shipped years")
        };
        let v2026 = cal("2026-03-02", "2026-03-05");
        assert!(v2026.starts_with("2026#"), "{v2026}");

        let r = resident_id(82);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "15000").await;
        assert_eq!(a.step_due_on, "2026-03-05");
        assert_eq!(a.step_calendar_version, v2026);
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_town_staff(TOWN_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let noticed = review(&mut t.as_district_staff(), &a.id, pb::Decision::Approve, "").await;
        assert_eq!(noticed.step_calendar_version, "", "no step pending");
        let history = history(&t, &a.id).await;
        assert_eq!(
            history
                .iter()
                .map(|tr| (tr.action.as_str(), tr.calendar_version.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("submit", v2026.as_str()),
                ("approve", v2026.as_str()),
                ("approve", v2026.as_str()),
                ("approve", ""),
            ]
        );

        // A village step started on 2025-12-30 is due in 2026: both years counted it.
        t.set_time("2025-12-30T09:00:00+08:00");
        let r2 = resident_id(83);
        t.given_credit_household(&r2, VILLAGE_A).await;
        let b = t.submit_household(&r2, VILLAGE_A, "5000").await;
        let across = cal("2025-12-30", &b.step_due_on);
        assert!(
            across.starts_with("2025#") && across.contains("+2026#"),
            "{across}"
        );
        assert_eq!(b.step_calendar_version, across);
        let complaint = lodge(
            &mut t.as_village_staff(VILLAGE_A),
            VILLAGE_A,
            "notice board not updated",
        )
        .await;
        assert_eq!(
            complaint.calendar_version,
            cal("2025-12-30", &complaint.due_on)
        );

        // Overdue: the alert names the calendar of the deadline it alerts.
        t.set_time("2026-02-27T09:00:00+08:00");
        assert!(scan(&t).await.newly_overdue >= 1);
        let alerts = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await;
        let alert: pb::ApplicationStepOverdue = alerts
            .iter()
            .map(|e| e.decode::<pb::ApplicationStepOverdue>())
            .find(|e| e.application_id == b.id)
            .expect("b's alert");
        assert_eq!(alert.calendar_version, across);
        let flagged = t.intake_events(&pb::ComplaintOverdue::full_name()).await;
        let flag: pb::ComplaintOverdue = flagged[0].decode();
        assert_eq!(flag.calendar_version, complaint.calendar_version);
        t.shutdown().await;
    })
    .await;
}

/// R-X-4, R-IN-4, R-IN-7: an overdue alert names the policy version whose days counted its
/// deadline (the version the step was entered, or the complaint lodged, under), not the one in
/// force when it is raised, whether the scan raises it or a late move does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_alerts_name_the_policy_that_counted_their_deadline() {
    bounded(90, async {
        // Five days for the village and twenty for complaints from Wednesday 2026-03-04.
        let later = policy_version(
            "luolong-2026.2",
            "2026-03-04",
            &["village_review_days = 5", "complaint_answer_days = 20"],
        );
        let t = spawn_intake_with_policy_versions(&later).await;
        let (ra, rb, rc) = (resident_id(85), resident_id(86), resident_id(87));
        for r in [&ra, &rb, &rc] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        // Monday 03-02 under the first version: due Thursday 03-05.
        let a = t.submit_household(&ra, VILLAGE_A, "5000").await;
        let b = t.submit_household(&rb, VILLAGE_A, "5000").await;
        assert_eq!(a.step_due_on, "2026-03-05");
        let complaint = lodge(
            &mut t.as_village_staff(VILLAGE_A),
            VILLAGE_A,
            "notice board not updated",
        )
        .await;
        assert_eq!(complaint.due_on, "2026-03-16");
        // Wednesday under the second: due five working days on, Wednesday 03-11.
        t.set_time("2026-03-04T09:00:00+08:00");
        let c = t.submit_household(&rc, VILLAGE_A, "5000").await;
        assert_eq!(c.step_due_on, "2026-03-11");

        // Friday: b's village step is left late, by a move under the second version.
        t.set_time("2026-03-06T09:00:00+08:00");
        let moved = review(
            &mut t.as_village_staff(VILLAGE_A),
            &b.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(moved.policy_version, "luolong-2026.2");
        // ... and the scan finds a's.
        assert_eq!(scan(&t).await.newly_overdue, 1);
        // Thursday 03-12: c's village step and b's town step (entered on 03-06 under the
        // second, three days: due 03-11); the complaint (lodged under the first: due 03-16)
        // not yet.
        t.set_time("2026-03-12T09:00:00+08:00");
        let counts = scan(&t).await;
        assert_eq!((counts.newly_overdue, counts.complaints_flagged), (2, 0));
        t.set_time("2026-03-17T09:00:00+08:00");
        assert_eq!(scan(&t).await.complaints_flagged, 1);

        let alerts: Vec<pb::ApplicationStepOverdue> = t.intake_messages().await;
        let of = |id: &str, step: pb::Step| {
            let alert = alerts
                .iter()
                .find(|e| e.application_id == id && e.step() == step)
                .unwrap_or_else(|| panic!("a {step:?} alert for {id}: {alerts:?}"));
            (alert.due_on.as_str(), alert.policy_version.as_str())
        };
        let village = pb::Step::Village;
        assert_eq!(alerts.len(), 4, "{alerts:?}");
        assert_eq!(
            of(&a.id, village),
            ("2026-03-05", "luolong-2026.1"),
            "by the scan"
        );
        assert_eq!(
            of(&b.id, village),
            ("2026-03-05", "luolong-2026.1"),
            "by the late move"
        );
        assert_eq!(of(&b.id, pb::Step::Town), ("2026-03-11", "luolong-2026.2"));
        assert_eq!(of(&c.id, village), ("2026-03-11", "luolong-2026.2"));
        let flagged = t.intake_events(&pb::ComplaintOverdue::full_name()).await;
        let flag: pb::ComplaintOverdue = flagged[0].decode();
        assert_eq!(
            (flag.due_on.as_str(), flag.policy_version.as_str()),
            ("2026-03-16", "luolong-2026.1")
        );
        t.shutdown().await;
    })
    .await;
}

/// The shipped policy file with `edit` applied and `later` entries added, as an operator's
/// file would be read at a start.
fn policy_file(edit: (&str, &str), later: &str) -> fupin_intake::Reference {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/policy/intake.toml"
    ))
    .expect("shipped policy");
    assert!(
        shipped.contains(edit.0),
        "{} not in the shipped policy",
        edit.0
    );
    let text = format!("{}\n{later}", shipped.replace(edit.0, edit.1));
    fupin_intake::Reference {
        policy: fupin_kernel::PolicyHistory::from_toml_str(&text).expect("the policy loads"),
        ..reference()
    }
}

/// The error chain of a refused start, as intake logs it.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// R-X-4: a version id keeps the meaning it had when decisions used it. Against the versions
/// this database has seen, a start is refused, naming the version and the rule, when the file
/// edits a version in place, adds one that takes effect on a day already begun (today
/// included), or drops one that has taken effect; a version added from tomorrow is taken, and
/// one withdrawn before its day is forgotten. Each refused start leaves the service startable
/// with the right file, and the refused one's versions unregistered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_file_that_would_change_a_recorded_version_stops_the_start() {
    bounded(120, async {
        let same = ("max_amount", "max_amount");
        // Today is 2026-03-02 (China time) on the test clock.
        let mut t = spawn_intake_with(policy_file(same, "")).await;
        let r = resident_id(82);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "15000").await;
        assert_eq!(a.policy_version, "luolong-2026.1");

        let edited = policy_file(("max_amount = \"50000.00\"", "max_amount = \"40000.00\""), "");
        let e = chain(&t.restart_refused(edited).await);
        assert!(e.contains("\"luolong-2026.1\"") && e.contains("values"), "{e}");
        assert!(e.contains("[R-X-4]"), "{e}");

        let today = policy_version("luolong-2026.2", "2026-03-02", &["max_amount = \"10000.00\""]);
        let e = chain(&t.restart_refused(policy_file(same, &today)).await);
        assert!(e.contains("\"luolong-2026.2\"") && e.contains("2026-03-02"), "{e}");

        // From tomorrow: taken.
        let tomorrow =
            policy_version("luolong-2026.2", "2026-03-03", &["max_amount = \"10000.00\""]);
        t.restart_with(policy_file(same, &tomorrow)).await;
        // Serving: the start's checks are done.
        assert!(history(&t, &a.id).await.len() == 1);
        let registered: Vec<(String, String)> = sqlx::query_as(
            "select id, effective_from::text from policy_versions where policy = 'intake' order by id",
        )
        .fetch_all(&t.pool)
        .await
        .unwrap();
        assert_eq!(
            registered,
            [
                ("luolong-2026-12-rates".to_owned(), "2026-12-04".to_owned()),
                ("luolong-2026.1".to_owned(), "2024-01-01".to_owned()),
                ("luolong-2026.2".to_owned(), "2026-03-03".to_owned())
            ]
        );
        // The same version moved to another day is an edit too.
        let moved = policy_version("luolong-2026.2", "2026-03-04", &["max_amount = \"10000.00\""]);
        let e = chain(&t.restart_refused(policy_file(same, &moved)).await);
        assert!(e.contains("\"luolong-2026.2\"") && e.contains("effective date"), "{e}");

        // Withdrawn before its day: forgotten, and may come back with other values.
        t.restart_with(policy_file(same, "")).await;
        assert!(history(&t, &a.id).await.len() == 1);
        let withdrawn: i64 = sqlx::query_scalar(
            "select count(*) from policy_versions where id = 'luolong-2026.2'",
        )
        .fetch_one(&t.pool)
        .await
        .unwrap();
        assert_eq!(withdrawn, 0);
        t.restart_with(policy_file(same, &tomorrow)).await;

        // Once it has taken effect, it stays in the file.
        t.set_time("2026-03-03T00:00:00+08:00");
        let e = chain(&t.restart_refused(policy_file(same, "")).await);
        assert!(e.contains("\"luolong-2026.2\"") && e.contains("missing"), "{e}");
        t.restart_with(policy_file(same, &tomorrow)).await;
        let r = resident_id(83);
        t.given_credit_household(&r, VILLAGE_A).await;
        let b = t.submit_household(&r, VILLAGE_A, "5000").await;
        assert_eq!(b.policy_version, "luolong-2026.2");
        t.shutdown().await;
    })
    .await;
}
