//! Boundary tests of the intake service against SPEC.md sections 0, 1 and 6 (R-IN-1..R-IN-8,
//! R-X-3, R-X-4), driven over gRPC as a black box.
//!
//! Days are China days (Asia/Shanghai, UTC+8): many tests run just after midnight China time,
//! which is still the previous day in UTC, so a service that takes "today" in UTC gets them
//! wrong. Working days come from deploy/calendar (2026: 02-14 and 02-28 Saturdays worked,
//! 02-15..23 Spring Festival, 04-04..06 Qingming, 05-01..05 Labour Day with 05-09 worked,
//! 09-20 Sunday worked, 10-01..07 National Day with 10-10 worked; 2026-01-04 Sunday worked).

mod common;

use std::collections::HashSet;

use common::*;
use fupin_proto::{
    common::v1::{DateRange, PageRequest},
    intake::v1::{self as pb, submit_application_request::Applicant},
};
use prost::Name;
use tonic::{Code, Status};

// ---- helpers ----

async fn try_submit(
    filer: &mut Client,
    req: pb::SubmitApplicationRequest,
) -> Result<pb::Application, Status> {
    filer
        .submit_application(req)
        .await
        .map(tonic::Response::into_inner)
}

/// `InvalidArgument` whose message starts with `field:` and names some rule (R-X-3).
fn assert_invalid_field(s: &Status, field: &str, what: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
    assert!(
        s.message().starts_with(&format!("{field}:")),
        "{what}: message names the field {field}: {:?}",
        s.message()
    );
    assert!(
        s.message().contains("[R-"),
        "{what}: message names a rule: {:?}",
        s.message()
    );
}

fn page(size: u32, token: &str) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: size,
        page_token: token.to_owned(),
    })
}

async fn list_page(
    c: &mut Client,
    req: pb::ListApplicationsRequest,
) -> Result<(Vec<String>, String), Status> {
    c.list_applications(req).await.map(|r| {
        let r = r.into_inner();
        (
            r.applications.into_iter().map(|a| a.id).collect(),
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

async fn overdue_ids(c: &mut Client) -> Vec<String> {
    list_page(
        c,
        pb::ListApplicationsRequest {
            overdue_only: true,
            page: page(200, ""),
            ..Default::default()
        },
    )
    .await
    .expect("overdue listing")
    .0
}

async fn complaints_page(
    c: &mut Client,
    size: u32,
    token: &str,
    late_only: bool,
) -> Result<(Vec<pb::Complaint>, String), Status> {
    c.list_complaints(pb::ListComplaintsRequest {
        page: page(size, token),
        unanswered_past_deadline_only: late_only,
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (
            r.complaints,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

fn objection_req(id: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        objector: "村民 赵某".into(),
        content: "the household already has a loan with another bank".into(),
    }
}

/// `n` monthly instalments from the month after `first_month` (YYYY, MM) on day `dd`, summing
/// to `total_fen`.
fn schedule(year: i32, month: u32, dd: u32, n: u32, total_fen: i64) -> Vec<pb::Instalment> {
    let each = total_fen / i64::from(n);
    (0..n)
        .map(|i| {
            let m0 = month - 1 + i + 1;
            let (y, m) = (year + (m0 / 12) as i32, m0 % 12 + 1);
            let fen = if i + 1 == n {
                total_fen - each * i64::from(n - 1)
            } else {
                each
            };
            pb::Instalment {
                due_on: format!("{y}-{m:02}-{dd:02}"),
                principal: money(&format!("{}.{:02}", fen / 100, fen % 100)),
                interest: money("10.00"),
            }
        })
        .collect()
}

// ---- R-IN-3: age ----

/// R-IN-3: "borrower aged 18 to 65", ages in China days. Just after midnight China time on
/// 2026-03-02 (still 03-01 in UTC): 18 today and 65 today are admitted, 65 years and 364 days
/// is admitted, the day before the 18th birthday and the 66th birthday are refused naming
/// R-IN-3 and the resident ID. A minute before midnight the birthdays are still tomorrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn age_18_to_65_is_counted_in_china_days() {
    bounded(120, async {
        let t = spawn_intake().await;
        let turns_18_today = resident_id_born("20080302", 101);
        let turns_18_tomorrow = resident_id_born("20080303", 102);
        let turns_65_today = resident_id_born("19610302", 103);
        let turns_66_tomorrow = resident_id_born("19600303", 104);
        let turns_66_today = resident_id_born("19600302", 105);
        for r in [
            &turns_18_today,
            &turns_18_tomorrow,
            &turns_65_today,
            &turns_66_tomorrow,
            &turns_66_today,
        ] {
            t.given_credit_household(r, VILLAGE_A).await;
        }

        // 2026-03-01 23:59 in China.
        t.set_time("2026-03-01T23:59:00+08:00");
        let s = refused(
            &t,
            &turns_18_today,
            VILLAGE_A,
            "1000",
            &["R-IN-3"],
            "17 and 364 days",
        )
        .await;
        assert!(s.message().contains("household.resident_id"), "{s:?}");
        admitted(
            &t,
            &turns_66_today,
            VILLAGE_A,
            "1000",
            "65 and 364 days (eve of 66)",
        )
        .await;

        // 2026-03-02 00:30 in China = 2026-03-01 16:30 UTC.
        t.set_time("2026-03-02T00:30:00+08:00");
        admitted(&t, &turns_18_today, VILLAGE_A, "1000", "18th birthday").await;
        let s = refused(
            &t,
            &turns_18_tomorrow,
            VILLAGE_A,
            "1000",
            &["R-IN-3"],
            "the day before the 18th birthday",
        )
        .await;
        assert!(s.message().contains("household.resident_id"), "{s:?}");
        admitted(&t, &turns_65_today, VILLAGE_A, "1000", "65th birthday").await;
        admitted(&t, &turns_66_tomorrow, VILLAGE_A, "1000", "65 and 364 days").await;
        let s = refused(
            &t,
            &turns_66_today,
            VILLAGE_A,
            "1000",
            &["R-IN-3"],
            "66th birthday",
        )
        .await;
        assert!(s.message().contains("household.resident_id"), "{s:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3: admission is checked again at recommendation against that day (README): a borrower
/// admitted at 65 whose 66th birthday falls before the recommendation is refused then. R-IN-2:
/// the district center then rejects it instead (not during the notice), so it does not stay
/// under notice for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_66th_birthday_before_recommendation_refuses_it() {
    bounded(90, async {
        let t = spawn_intake().await;
        // 65 on 2026-03-02; 66 on 2026-03-07, the first day after the notice.
        let r = resident_id_born("19600307", 106);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.approve_to_notice(&app).await;
        let mut district = t.as_district_staff();
        let reject = |reason: &str| review_req(&app.id, pb::Decision::Reject, reason);
        // the notice's last day: not yet (not awaiting a review)
        t.set_time("2026-03-06T23:59:00+08:00");
        assert_refused(
            &err(district.review_application(reject("年满66周岁")).await),
            &["R-IN-2"],
        );

        t.set_time("2026-03-07T00:30:00+08:00");
        let s = t.recommend(&app.id, BANK).await.unwrap_err();
        assert_refused(&s, &["R-IN-3"]);
        let a = t.get_as(&mut district, &app.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::PublicNotice);

        // approval is the recommendation; the town has no step there; a reason is needed
        assert_refused(
            &err(district
                .review_application(review_req(&app.id, pb::Decision::Approve, ""))
                .await),
            &["R-IN-2"],
        );
        assert_refused(
            &err(t
                .as_town_staff(&app.town_code)
                .review_application(reject("年满66周岁"))
                .await),
            &["R-IN-2"],
        );
        assert_invalid(
            &err(district.review_application(reject(" ")).await),
            "reason",
            "R-IN-2",
        );

        let a = district
            .review_application(reject("年满66周岁"))
            .await
            .expect("rejected after the notice")
            .into_inner();
        assert_eq!(a.status(), pb::Status::Rejected);
        t.outbox_drained().await;
        let moved: Vec<pb::ApplicationStatusChanged> = t
            .intake_events(&pb::ApplicationStatusChanged::full_name())
            .await
            .iter()
            .map(|e| e.decode::<pb::ApplicationStatusChanged>())
            .filter(|e| e.application_id == app.id)
            .collect();
        let last = moved.last().expect("events of the application");
        assert_eq!(
            (
                last.from_status(),
                last.to_status(),
                last.action.as_str(),
                last.reason.as_str()
            ),
            (
                pb::Status::PublicNotice,
                pb::Status::Rejected,
                "reject",
                "年满66周岁"
            )
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3: what the bank approves is admitted against the day of the decision (README): a
/// borrower whose 66th birthday falls during the bank's step cannot be approved that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_66th_birthday_during_the_bank_step_refuses_the_approval() {
    bounded(90, async {
        let t = spawn_intake().await;
        // 65 at recommendation (03-07); 66 on 2026-03-10.
        let r = resident_id_born("19600310", 107);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.approve_to_notice(&app).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommended at 65");
        t.set_time("2026-03-10T00:30:00+08:00");
        let s = err(t
            .as_bank(BANK)
            .record_bank_decision(approve_req(&app.id, "5000", "0.0435", 12))
            .await);
        assert_refused(&s, &["R-IN-3"]);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3: amount and term ----

/// R-IN-3, R-CR-8: the amount is within the grade's line and at most 50,000.00: exactly the
/// line is admitted and a fen more refused (R-CR-8); 50,000.00 is admitted for AAA, also in a
/// credit village (+20% capped at 50,000), and 50,000.01 is bad input; 0.01 is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amounts_at_the_line_and_the_cap() {
    bounded(90, async {
        let t = spawn_intake().await;
        let a = resident_id(111);
        let aa = resident_id(112);
        let aaa = resident_id(113);
        let aa_credit_village = resident_id(114);
        t.rate_household(&a, VILLAGE_A, "A", "20000.00", 1).await;
        t.rate_household(&aa, VILLAGE_A, "AA", "30000.00", 1).await;
        t.rate_household(&aaa, VILLAGE_A, "AAA", "50000.00", 1)
            .await;
        t.rate_household(&aa_credit_village, VILLAGE_B, "AA", "30000.00", 1)
            .await;

        admitted(&t, &a, VILLAGE_A, "20000.00", "A at its line").await;
        admitted(&t, &a, VILLAGE_A, "20000", "A at its line, no decimals").await;
        refused(&t, &a, VILLAGE_A, "20000.01", &["R-CR-8"], "A line + 0.01").await;
        admitted(&t, &a, VILLAGE_A, "0.01", "one fen").await;
        admitted(&t, &aa, VILLAGE_A, "30000.00", "AA at its line").await;
        refused(
            &t,
            &aa,
            VILLAGE_A,
            "30000.01",
            &["R-CR-8"],
            "AA line + 0.01",
        )
        .await;
        admitted(&t, &aaa, VILLAGE_A, "50000.00", "AAA at the cap").await;
        let s = try_household(&t, &aaa, VILLAGE_A, "50000.01")
            .await
            .unwrap_err();
        assert_invalid(&s, "amount", "R-IN-3");

        let id = t.publish_credit_village(VILLAGE_B, true, 1).await;
        t.wait_applied(&id).await;
        admitted(
            &t,
            &aa_credit_village,
            VILLAGE_B,
            "36000.00",
            "AA in a credit village",
        )
        .await;
        refused(
            &t,
            &aa_credit_village,
            VILLAGE_B,
            "36000.01",
            &["R-CR-8"],
            "AA in a credit village + 0.01",
        )
        .await;
        let aaa_b = resident_id(115);
        t.rate_household(&aaa_b, VILLAGE_B, "AAA", "50000.00", 1)
            .await;
        admitted(&t, &aaa_b, VILLAGE_B, "50000.00", "AAA in a credit village").await;
        let s = try_household(&t, &aaa_b, VILLAGE_B, "50000.01")
            .await
            .unwrap_err();
        assert_invalid(&s, "amount", "R-IN-3");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-1: malformed money is bad input naming `amount`, never an internal error, and
/// stores nothing; a long one is echoed cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_amounts_are_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(116);
        t.given_credit_household(&r, VILLAGE_A).await;
        for bad in [
            "",
            " ",
            "abc",
            "1e4",
            "1E4",
            "1,000",
            "NaN",
            "Infinity",
            "inf",
            "0x10",
            "0.00",
            "-0.00",
            "-0.01",
            "100.5.5",
            "１０００",
            "1000.001",
            "1000.10000000000000000000000000001",
            "99999999999999999999999999999999999999",
            "79228162514264337593543950336",
        ] {
            let s = try_household(&t, &r, VILLAGE_A, bad).await.unwrap_err();
            assert_invalid_field(&s, "amount", &format!("amount {bad:?}"));
        }
        // An input of 20,000 characters is echoed cut short, so that the error still reaches
        // clients that refuse long headers, naming the field and rule (R-X-3).
        let long = format!("{}x", "9".repeat(20_000));
        let s = try_household(&t, &r, VILLAGE_A, &long).await.unwrap_err();
        assert_invalid(&s, "amount", "R-IN-1");
        assert!(s.message().len() < 300, "{}", s.message());
        assert!(
            s.message().contains(&format!(
                "amount \"{}…\" is not a plain decimal",
                "9".repeat(32)
            )),
            "{}",
            s.message()
        );
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(household_request(&r, &"4".repeat(20_000), "1000"))
            .await);
        assert_invalid(&s, "household.village_code", "R-IN-1");
        assert!(s.message().len() < 300, "{}", s.message());
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            0
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3: term at most 36 months: 1 and 36 are admitted, 37 and u32::MAX are bad input
/// naming `term_months`; the same bounds for an enterprise (policy 36).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terms_at_36_and_37_months() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(117);
        t.given_credit_household(&r, VILLAGE_A).await;
        for (term, ok) in [(1, true), (36, true), (37, false), (u32::MAX, false)] {
            let mut req = household_request(&r, VILLAGE_A, "1000");
            req.term_months = term;
            let res = try_submit(&mut t.as_village_staff(VILLAGE_A), req).await;
            if ok {
                let a = res.unwrap_or_else(|s| panic!("term {term}: {s:?}"));
                assert_eq!(a.term_months, term);
            } else {
                assert_invalid(&res.unwrap_err(), "term_months", "R-IN-3");
            }
        }
        let code = uscc('3', 117);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        for (term, ok) in [(36, true), (37, false)] {
            let mut req = enterprise_request(&code, TOWN_A, "300000");
            req.term_months = term;
            let res = try_submit(&mut t.as_district_staff(), req).await;
            if ok {
                res.unwrap_or_else(|s| panic!("enterprise term {term}: {s:?}"));
            } else {
                assert_invalid_field(&res.unwrap_err(), "term_months", "enterprise term 37");
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 ("a refusal names every rule that failed"), R-X-3, R-CR-11: a household over both
/// caps is bad input naming the amount, then the term, then every rule admission refuses
/// besides (here the blacklist, the missing rating and the age); nothing is kept, so the same
/// request id corrected is decided afresh, and what admission refused is logged as a
/// disclosure. Over a cap alone, nothing else is told and nothing is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_caps_the_refusal_names_every_rule() {
    bounded(60, async {
        let t = spawn_intake().await;
        let old = resident_id_born("19500101", 118);
        let listed = t.publish_blacklisted("bl-118", &old, HOUSEHOLD_KIND).await;
        t.wait_applied(&listed).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut req = household_request(&old, VILLAGE_A, "60000");
        req.term_months = 40;
        let s = err(village.submit_application(req.clone()).await);
        assert_invalid(&s, "amount", "R-IN-3");
        let told = s
            .message()
            .strip_suffix(" (policy luolong-2026.1)")
            .unwrap_or_else(|| panic!("names the policy: {}", s.message()));
        let told: Vec<&str> = told.split("; ").collect();
        assert_eq!(told.len(), 5, "{told:?}");
        assert!(told[0].starts_with("amount: at most 50000.00"), "{told:?}");
        assert!(told[1].starts_with("term_months: at most 36"), "{told:?}");
        for rule in ["[R-CR-3]", "[R-CR-10]"] {
            assert!(
                told[2..].iter().any(|f| f.ends_with(rule)),
                "{rule}: {told:?}"
            );
        }
        assert!(
            told[2..]
                .iter()
                .any(|f| f.starts_with("household.resident_id:") && f.ends_with("[R-IN-3]")),
            "the age: {told:?}"
        );
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            0
        );
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from admission_disclosures \
                 where rules = '{R-CR-10,R-CR-3,R-IN-3}' and not kept"
            )
            .await,
            1
        );
        // The same request id within the caps: decided afresh, refused and kept.
        req.amount = money("20000");
        req.term_months = 12;
        let s = err(village.submit_application(req).await);
        assert_refused(&s, &["R-CR-3", "R-CR-10", "R-IN-3"]);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            1
        );
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from admission_disclosures where kept"
            )
            .await,
            1
        );

        // A caller who may not file it is denied, and learns nothing (R-IN-2, R-CR-11).
        let mut over = household_request(&old, VILLAGE_A, "60000");
        over.term_months = 40;
        let s = err(t.as_town_staff(TOWN_A).submit_application(over).await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        assert!(!s.message().contains("R-CR-10"), "{}", s.message());
        assert_eq!(
            count(&t.pool, "select count(*) from admission_disclosures").await,
            2
        );

        // An AAA household over both caps is also over its line (R-CR-8), which is logged.
        let fine = resident_id(118);
        t.rate_household(&fine, VILLAGE_A, "AAA", "50000.00", 1)
            .await;
        let mut req = household_request(&fine, VILLAGE_A, "50000.01");
        req.term_months = 37;
        let s = err(village.submit_application(req.clone()).await);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "amount: at most 50000.00 yuan for a household [R-IN-3]; \
             term_months: at most 36 months [R-IN-3]; \
             amount: 50000.01 exceeds the credit line of 50000.00 yuan [R-CR-8] \
             (policy luolong-2026.1)"
        );
        assert_eq!(
            count(&t.pool, "select count(*) from admission_disclosures").await,
            3
        );
        // Over the term cap alone: told that alone, which says admission passed the rest, so
        // it is logged too (QA: an admissibility probe left no trace), not kept.
        req.amount = money("20000");
        let s = err(village.submit_application(req).await);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "term_months: at most 36 months [R-IN-3] (policy luolong-2026.1)"
        );
        assert_eq!(
            count(&t.pool, "select count(*) from admission_disclosures").await,
            4
        );
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from admission_disclosures where rules = '{R-IN-3}' and not kept"
            )
            .await,
            1
        );
        // An enterprise never qualified, over its term cap: the cap, then R-ID-4.
        let mut firm = enterprise_request(&uscc('3', 118), TOWN_A, "300000");
        firm.term_months = 37;
        let s = err(t.as_district_staff().submit_application(firm).await);
        assert_invalid(&s, "term_months", "R-IN-3");
        assert!(
            s.message().ends_with(
                "; not currently qualified for programme credit by the industry service [R-ID-4] \
                 (policy luolong-2026.1)"
            ),
            "{}",
            s.message()
        );
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        t.shutdown().await;
    })
    .await;
}

/// R-X-3: enum values outside the API are bad input naming their field.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_enum_values_are_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(118);
        t.given_credit_household(&r, VILLAGE_A).await;
        for (what, purpose) in [("between values", 8), ("far out", 99), ("negative", -1)] {
            let mut req = household_request(&r, VILLAGE_A, "1000");
            req.purpose = purpose;
            let s = try_submit(&mut t.as_village_staff(VILLAGE_A), req)
                .await
                .unwrap_err();
            assert_invalid_field(&s, "purpose", what);
            assert!(
                s.message()
                    .contains(&format!("{purpose} is not a purpose category")),
                "the value sent, not 'required': {s:?}"
            );
        }
        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        let mut rv = review_req(&app.id, pb::Decision::Approve, "x");
        rv.decision = 99;
        let s = err(t.as_village_staff(VILLAGE_A).review_application(rv).await);
        assert_invalid_field(&s, "decision", "decision 99");

        let s = list_page(
            &mut t.as_town_staff(TOWN_A),
            pb::ListApplicationsRequest {
                step: 99,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_invalid_field(&s, "step", "step 99");
        let s = list_page(
            &mut t.as_town_staff(TOWN_A),
            pb::ListApplicationsRequest {
                statuses: vec![99],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_invalid_field(&s, "statuses", "status 99");
        let a = t.get_as(&mut t.as_district_staff(), &app.id).await.unwrap();
        assert_eq!(a.version, 1, "nothing changed");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3 with R-X-4: facts that take effect on a China day ----

/// R-IN-3 (R-CR-3, R-CR-8, R-ID-4): ratings, credit-village status and enterprise
/// qualifications take effect on China days: at 23:59 the day before they do not apply yet, at
/// 00:30 on the day (still the previous day in UTC) they do; a rating expiring on a day no
/// longer admits from 00:30 on that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_model_facts_take_effect_on_china_days() {
    bounded(120, async {
        let t = spawn_intake().await;
        let starts = resident_id(121);
        let ends = resident_id(122);
        let in_credit_village = resident_id(123);
        let id = t
            .publish_rating_effective(
                &starts,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2026-03-02",
                "2027-03-02",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        let id = t
            .publish_rating_effective(
                &ends,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2024-01-01",
                "2026-03-02",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        t.given_credit_household(&in_credit_village, VILLAGE_B)
            .await;
        let id = t
            .publish_credit_village_from(VILLAGE_B, true, "2026-03-02", 1)
            .await;
        t.wait_applied(&id).await;
        let qualified_from_today = uscc('3', 121);
        let id = t
            .publish_enterprise_qualification(&qualified_from_today, true, "2026-03-02", 1)
            .await;
        t.wait_applied(&id).await;
        let disqualified_from_today = uscc('3', 122);
        let id = t
            .publish_enterprise_qualification(&disqualified_from_today, true, "2026-01-01", 1)
            .await;
        t.wait_applied(&id).await;
        let id = t
            .publish_enterprise_qualification(&disqualified_from_today, false, "2026-03-02", 2)
            .await;
        t.wait_applied(&id).await;
        let tr = &t;
        let enterprise = |code: &str| {
            let code = code.to_owned();
            async move {
                try_submit(
                    &mut tr.as_district_staff(),
                    enterprise_request(&code, TOWN_A, "300000"),
                )
                .await
            }
        };

        t.set_time("2026-03-01T23:59:00+08:00");
        refused(
            &t,
            &starts,
            VILLAGE_A,
            "1000",
            &["R-CR-3"],
            "rating from tomorrow",
        )
        .await;
        admitted(&t, &ends, VILLAGE_A, "1000", "rating's last day").await;
        refused(
            &t,
            &in_credit_village,
            VILLAGE_B,
            "24000.00",
            &["R-CR-8"],
            "credit village from tomorrow",
        )
        .await;
        assert_refused(
            &enterprise(&qualified_from_today).await.unwrap_err(),
            &["R-ID-4"],
        );
        enterprise(&disqualified_from_today)
            .await
            .expect("still qualified on the eve of the disqualification");

        t.set_time("2026-03-02T00:30:00+08:00");
        admitted(&t, &starts, VILLAGE_A, "1000", "rating from today").await;
        refused(
            &t,
            &ends,
            VILLAGE_A,
            "1000",
            &["R-CR-3"],
            "rating expired today",
        )
        .await;
        admitted(
            &t,
            &in_credit_village,
            VILLAGE_B,
            "24000.00",
            "credit village from today",
        )
        .await;
        enterprise(&qualified_from_today)
            .await
            .expect("qualified from today");
        assert_refused(
            &enterprise(&disqualified_from_today).await.unwrap_err(),
            &["R-ID-4"],
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-RK-9: a village's suspension refuses its households only; a town's refuses every
/// village of the town and the enterprises registered there; resuming lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension_applies_to_the_suspended_area_only() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (ra, ra2, rb) = (resident_id(131), resident_id(132), resident_id(133));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        t.given_credit_household(&rb, VILLAGE_B).await;
        let code = uscc('3', 131);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;

        let id = t.publish_npl_exceeded(VILLAGE_A, 1).await;
        t.wait_applied(&id).await;
        let s = refused(&t, &ra, VILLAGE_A, "1000", &["R-RK-9"], "suspended village").await;
        assert!(s.message().contains(VILLAGE_A), "{s:?}");
        admitted(&t, &ra2, VILLAGE_A2, "1000", "another village of the town").await;
        try_submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_A, "300000"),
        )
        .await
        .expect("an enterprise of the town, not of the village");
        assert_refused(
            &try_submit(
                &mut t.as_district_staff(),
                enterprise_request(&code, VILLAGE_A, "300000"),
            )
            .await
            .unwrap_err(),
            &["R-RK-9"],
        );

        let id = t.publish_npl_exceeded(TOWN_B, 1).await;
        t.wait_applied(&id).await;
        refused(
            &t,
            &rb,
            VILLAGE_B,
            "1000",
            &["R-RK-9"],
            "village of a suspended town",
        )
        .await;
        admitted(&t, &ra2, VILLAGE_A2, "1000", "other town").await;
        // an enterprise registered at the suspended town itself (no village)
        let s = try_submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_B, "300000"),
        )
        .await
        .unwrap_err();
        assert_refused(&s, &["R-RK-9"]);
        assert!(s.message().contains(TOWN_B), "{s:?}");

        let id = t.publish_lending_resumed(VILLAGE_A, 2).await;
        t.wait_applied(&id).await;
        admitted(&t, &ra, VILLAGE_A, "1000", "resumed village").await;
        let id = t.publish_lending_resumed(TOWN_B, 2).await;
        t.wait_applied(&id).await;
        admitted(&t, &rb, VILLAGE_B, "1000", "resumed town").await;
        try_submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_B, "300000"),
        )
        .await
        .expect("an enterprise of the resumed town");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: deadlines ----

/// R-IN-4: the village step's deadline is 3 working days on the official calendar from the
/// China day of submission: across weekends, holidays, adjusted working weekends and a year
/// end, and on either side of midnight China time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn village_deadlines_follow_the_official_calendar() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(141);
        t.given_credit_household(&r, VILLAGE_A).await;
        for (now, today, due) in [
            // Wednesday; 2026-01-01..03 off, Sunday 01-04 worked.
            ("2025-12-31T09:00:00+08:00", "2025-12-31", "2026-01-06"),
            // Friday before Spring Festival: Saturday 02-14 worked, 02-15..23 off.
            ("2026-02-13T09:00:00+08:00", "2026-02-13", "2026-02-25"),
            // Sunday 23:30 in China.
            ("2026-03-01T23:30:00+08:00", "2026-03-01", "2026-03-04"),
            // Monday 00:30 in China (Sunday in UTC).
            ("2026-03-02T00:30:00+08:00", "2026-03-02", "2026-03-05"),
            // Friday and Saturday.
            ("2026-03-06T09:00:00+08:00", "2026-03-06", "2026-03-11"),
            ("2026-03-07T09:00:00+08:00", "2026-03-07", "2026-03-11"),
            // Thursday before Qingming (04-04..06 off).
            ("2026-04-02T09:00:00+08:00", "2026-04-02", "2026-04-08"),
            // Friday before the worked Sunday 09-20.
            ("2026-09-18T09:00:00+08:00", "2026-09-18", "2026-09-22"),
            // On a holiday: 10-01..07 off, Saturday 10-10 worked.
            ("2026-10-01T09:00:00+08:00", "2026-10-01", "2026-10-10"),
        ] {
            assert_eq!(
                t.calendar.add_working_days(day(today), 3).unwrap(),
                day(due),
                "test's own arithmetic for {now}"
            );
            t.set_time(now);
            let a = t.submit_household(&r, VILLAGE_A, "1000").await;
            assert_eq!(a.step_due_on, due, "submitted {now}");
            assert!(!a.overdue);
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4: each step gets its own deadline from the China day it starts: village 3, town 3,
/// district 5, bank 10 working days, walked through Labour Day 2026 (05-01..05 off, Saturday
/// 05-09 worked), with steps started on a holiday and on the worked Saturday; a step started
/// just after midnight China time counts from that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_step_counts_its_own_working_days() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(142);
        t.given_credit_household(&r, VILLAGE_A).await;
        let cal = |d: &str, n: u32| t.calendar.add_working_days(day(d), n).unwrap().to_string();

        t.set_time("2026-04-30T09:00:00+08:00");
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        assert_eq!(app.step_due_on, "2026-05-08");
        assert_eq!(cal("2026-04-30", 3), "2026-05-08");

        // The village approves on a holiday: the town counts from it.
        t.set_time("2026-05-04T10:00:00+08:00");
        let a = review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(a.step_due_on, "2026-05-08");
        assert_eq!(cal("2026-05-04", 3), "2026-05-08");

        // The town approves on the worked Saturday.
        t.set_time("2026-05-09T10:00:00+08:00");
        let a = review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(a.current_step(), pb::Step::District);
        assert_eq!(a.step_due_on, "2026-05-15");
        assert_eq!(cal("2026-05-09", 5), "2026-05-15");

        t.set_time("2026-05-11T09:00:00+08:00");
        let a = review(
            &mut t.as_district_staff(),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(a.notice_ends_on, "2026-05-15");
        assert_eq!(a.step_due_on, "");

        t.set_time("2026-05-16T09:00:00+08:00");
        let a = t.recommend(&app.id, BANK).await.expect("recommend");
        assert_eq!(a.current_step(), pb::Step::Bank);
        assert_eq!(a.step_due_on, "2026-05-29");
        assert_eq!(cal("2026-05-16", 10), "2026-05-29");

        // Town and district steps started at 00:30 on a Friday in China (Thursday in UTC).
        t.set_time("2026-03-04T10:00:00+08:00");
        let app2 = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.set_time("2026-03-06T00:30:00+08:00");
        let a = review(
            &mut t.as_village_staff(VILLAGE_A),
            &app2.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(
            a.step_due_on, "2026-03-11",
            "town: 3 working days from Friday"
        );
        let a = review(
            &mut t.as_town_staff(TOWN_A),
            &app2.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(
            a.step_due_on, "2026-03-13",
            "district: 5 working days from Friday"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4: a step is overdue from the China day after its due date: not at 23:59:59 on the due
/// day, yes at 00:00:30 the next day (still the due day in UTC); the scan raises one
/// `ApplicationStepOverdue` per step (village step, then a bank step), never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_are_overdue_from_the_china_day_after_the_due_date() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(143), resident_id(144));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let late = t.submit_household(&r1, VILLAGE_A, "5000").await;
        assert_eq!(late.step_due_on, "2026-03-05");
        let banked = t.submit_household(&r2, VILLAGE_A, "5000").await;
        t.approve_to_notice(&banked).await;

        t.set_time("2026-03-05T23:59:59+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        assert!(overdue_ids(&mut t.as_district_staff()).await.is_empty());

        t.set_time("2026-03-06T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0, "once");
        assert_eq!(
            overdue_ids(&mut t.as_district_staff()).await,
            vec![late.id.clone()]
        );
        let got = t
            .get_as(&mut t.as_town_staff(TOWN_A), &late.id)
            .await
            .unwrap();
        assert!(got.overdue);

        // Recommended on Saturday 03-07 just after midnight: the bank is due 03-20.
        t.set_time("2026-03-07T00:30:00+08:00");
        let b = t.recommend(&banked.id, BANK).await.expect("recommend");
        assert_eq!(b.step_due_on, "2026-03-20");
        t.set_time("2026-03-20T23:59:59+08:00");
        assert_eq!(
            scan(&t).await.newly_overdue,
            0,
            "the village step was alerted already"
        );
        t.set_time("2026-03-21T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0);
        let mut ids = overdue_ids(&mut t.as_district_staff()).await;
        ids.sort();
        let mut want = vec![late.id.clone(), banked.id.clone()];
        want.sort();
        assert_eq!(ids, want);

        let alerts = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let first: pb::ApplicationStepOverdue = alerts[0].decode();
        assert_eq!(
            (
                first.application_id.as_str(),
                first.step(),
                first.due_on.as_str(),
                first.detected_on.as_str()
            ),
            (
                late.id.as_str(),
                pb::Step::Village,
                "2026-03-05",
                "2026-03-06"
            )
        );
        let second: pb::ApplicationStepOverdue = alerts[1].decode();
        assert_eq!(
            (
                second.application_id.as_str(),
                second.step(),
                second.due_on.as_str(),
                second.detected_on.as_str()
            ),
            (
                banked.id.as_str(),
                pb::Step::Bank,
                "2026-03-20",
                "2026-03-21"
            )
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4: "a step past its deadline ... shows in overdue listings": the listing and the
/// application's `overdue` flag follow the date, whether or not a scan has run since.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_listing_follows_the_date_without_a_scan() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(145);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        t.set_time("2026-03-06T09:00:00+08:00");
        assert_eq!(
            overdue_ids(&mut t.as_town_staff(TOWN_A)).await,
            vec![app.id.clone()]
        );
        let got = t
            .get_as(&mut t.as_town_staff(TOWN_A), &app.id)
            .await
            .unwrap();
        assert!(got.overdue);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, R-IN-4: a return for correction goes back to the step that returned it (README);
/// the resubmission starts that step again with a fresh deadline from its China day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_district_return_resubmitted_on_friday_gets_five_working_days() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(146);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let a = review(
            &mut t.as_district_staff(),
            &app.id,
            pb::Decision::ReturnForCorrection,
            "project plan unsigned",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Returned);
        assert_eq!(a.returned_from(), pb::Step::District);
        t.set_time("2026-03-06T00:30:00+08:00");
        let a = t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: app.id.clone(),
                note: "signed".into(),
                ..Default::default()
            })
            .await
            .expect("resubmit")
            .into_inner();
        assert_eq!(a.status(), pb::Status::DistrictReview);
        assert_eq!(a.step_due_on, "2026-03-13");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-5: public notice ----

/// R-IN-5 (README reading): the notice counts the China day of the district's approval as
/// day 1 of 5; an objection on the last day (23:59) holds the application, one at 00:00:30
/// the next day (still the last day in UTC) is refused; recommendation on the last day is
/// refused and allowed from 00:00:30 the day after; an application held by an objection filed
/// on the last day stays held after the notice until the objection is dismissed. A notice
/// crosses a month end by calendar days.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn public_notice_boundaries_in_china_days() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (r1, r2, r3) = (resident_id(151), resident_id(152), resident_id(153));
        for r in [&r1, &r2, &r3] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        // Approved 00:30 on Monday 03-02 in China (Sunday 03-01 in UTC).
        t.set_time("2026-03-02T00:30:00+08:00");
        let a1 = t.submit_household(&r1, VILLAGE_A, "5000").await;
        let a2 = t.submit_household(&r2, VILLAGE_A, "5000").await;
        let n1 = t.approve_to_notice(&a1).await;
        let n2 = t.approve_to_notice(&a2).await;
        assert_eq!(n1.notice_ends_on, "2026-03-06");
        assert_eq!(n2.notice_ends_on, "2026-03-06");

        t.set_time("2026-03-06T23:59:00+08:00");
        let o = t
            .as_village_staff(VILLAGE_A)
            .file_objection(objection_req(&a1.id))
            .await
            .expect("an objection on the last notice day")
            .into_inner();
        assert_eq!(o.state, "open");
        let held = t.get_as(&mut t.as_district_staff(), &a1.id).await.unwrap();
        assert_eq!(held.status(), pb::Status::OnHold);
        assert_refused(&t.recommend(&a2.id, BANK).await.unwrap_err(), &["R-IN-5"]);

        t.set_time("2026-03-07T00:00:30+08:00");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .file_objection(objection_req(&a2.id))
            .await);
        assert_refused(&s, &["R-IN-5"]);
        let r = t
            .recommend(&a2.id, BANK)
            .await
            .expect("the day after the notice");
        assert_eq!(r.status(), pb::Status::Recommended);
        // The held one waits for its objection.
        assert_refused(&t.recommend(&a1.id, BANK).await.unwrap_err(), &["R-IN-5"]);

        t.set_time("2026-03-09T09:00:00+08:00");
        t.as_district_staff()
            .resolve_objection(resolve_req(&o.id, false, "unfounded"))
            .await
            .expect("dismiss");
        let a = t.get_as(&mut t.as_district_staff(), &a1.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::PublicNotice);
        t.recommend(&a1.id, BANK)
            .await
            .expect("recommended once the hold is released");

        // Across a month end: approved 03-30, noticed through 04-03.
        t.set_time("2026-03-30T09:00:00+08:00");
        let a3 = t.submit_household(&r3, VILLAGE_A, "5000").await;
        let n3 = t.approve_to_notice(&a3).await;
        assert_eq!(n3.notice_ends_on, "2026-04-03");
        t.set_time("2026-04-03T23:00:00+08:00");
        assert_refused(&t.recommend(&a3.id, BANK).await.unwrap_err(), &["R-IN-5"]);
        t.set_time("2026-04-04T00:10:00+08:00");
        t.recommend(&a3.id, BANK).await.expect("04-04");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: the bank's dates ----

/// R-IN-6: the bank's listing filters by the China day of recommendation, and a disbursement
/// dated on the recommendation day, which is today in China just after midnight, is accepted
/// for exactly the approved amount with a last instalment exactly at the end of the term.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_dates_are_china_days() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(161);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&app).await;
        // Saturday 03-07 00:30 in China, Friday 03-06 in UTC.
        t.set_time("2026-03-07T00:30:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommend");
        let mut bank = t.as_bank(BANK);
        let listed = |from: &str, to: &str| pb::ListRecommendedApplicationsRequest {
            page: None,
            statuses: vec![],
            recommended_on: Some(DateRange {
                from: from.to_owned(),
                to: to.to_owned(),
            }),
        };
        let ids = |r: pb::ListApplicationsResponse| {
            r.applications.into_iter().map(|a| a.id).collect::<Vec<_>>()
        };
        let on_07 = bank
            .list_recommended_applications(listed("2026-03-07", "2026-03-08"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ids(on_07), vec![app.id.clone()]);
        let on_06 = bank
            .list_recommended_applications(listed("2026-03-06", "2026-03-07"))
            .await
            .unwrap()
            .into_inner();
        assert!(ids(on_06).is_empty());

        t.set_time("2026-03-07T00:40:00+08:00");
        let a = bank
            .record_bank_decision(approve_req(&app.id, "20000.00", "0.0435", 12))
            .await
            .expect("approve the full amount")
            .into_inner();
        assert_eq!(a.status(), pb::Status::BankApproved);
        let req = pb::RecordDisbursementRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            loan_account_number: "6228-4801-0000-0161".into(),
            amount: money("20000.00"),
            disbursed_on: "2026-03-07".into(),
            schedule: schedule(2026, 3, 7, 12, 2_000_000),
        };
        assert_eq!(req.schedule[11].due_on, "2027-03-07");
        let d = bank
            .record_disbursement(req)
            .await
            .expect("disbursed today, the recommendation day")
            .into_inner();
        assert_eq!(d.status(), pb::Status::Disbursed);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-7: complaints ----

/// R-IN-7: a complaint is due 10 working days after the China day it is lodged, and is late
/// from the China day after: lodged 00:30 Tuesday 03-03 (Monday in UTC) it is due 03-17,
/// listed and flagged once from 00:00:30 on 03-18; lodged before Labour Day, it is due after
/// the holiday and the worked Saturday.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complaint_deadlines_in_china_working_days() {
    bounded(90, async {
        let t = spawn_intake().await;
        let mut village = t.as_village_staff(VILLAGE_A);
        t.set_time("2026-03-03T00:30:00+08:00");
        let c = lodge(&mut village, VILLAGE_A, "the officer asked for a fee").await;
        assert_eq!(c.due_on, "2026-03-17");
        assert_eq!(
            t.calendar.add_working_days(day("2026-03-03"), 10).unwrap(),
            day("2026-03-17")
        );
        let mut town = t.as_town_staff(TOWN_A);
        t.set_time("2026-03-17T23:59:59+08:00");
        assert!(
            complaints_page(&mut town, 0, "", true)
                .await
                .unwrap()
                .0
                .is_empty()
        );
        assert_eq!(scan(&t).await.complaints_flagged, 0);
        t.set_time("2026-03-18T00:00:30+08:00");
        let late = complaints_page(&mut town, 0, "", true).await.unwrap().0;
        assert_eq!(
            late.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec![c.id.as_str()]
        );
        assert!(late[0].overdue);
        assert_eq!(scan(&t).await.complaints_flagged, 1);
        assert_eq!(scan(&t).await.complaints_flagged, 0, "flagged once");

        t.set_time("2026-04-30T09:00:00+08:00");
        let c = lodge(&mut village, VILLAGE_A, "notice board not updated").await;
        assert_eq!(c.due_on, "2026-05-18");
        assert_eq!(
            t.calendar.add_working_days(day("2026-04-30"), 10).unwrap(),
            day("2026-05-18")
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-8: request ids ----

/// R-IN-8 on every write: the same request id with the same body replays the first result and
/// changes nothing; with a different body it is refused naming `request_id`; the same id used
/// by one caller on different RPCs names independent requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_replays_and_refuses_a_changed_body() {
    bounded(180, async {
        let t = spawn_intake().await;
        let shared = "shared-request-0001".to_owned();
        let (r1, r2, r3) = (resident_id(171), resident_id(172), resident_id(173));
        for r in [&r1, &r2, &r3] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut district = t.as_district_staff();
        let mut bank = t.as_bank(BANK);
        let changed = |s: Status, what: &str| {
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert_invalid(&s, "request_id", "R-IN-8");
        };

        // SubmitApplication.
        let mut submit_req = household_request(&r1, VILLAGE_A, "10000");
        submit_req.request_id = shared.clone();
        let app = submit(&mut village, submit_req.clone()).await;
        assert_eq!(submit(&mut village, submit_req.clone()).await, app);
        let mut other = submit_req.clone();
        other.term_months = 13;
        changed(err(village.submit_application(other).await), "submit");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);

        // ReviewApplication with the same id by the same caller: another RPC, another request.
        let rv = pb::ReviewApplicationRequest {
            request_id: shared.clone(),
            ..review_req(&app.id, pb::Decision::Approve, "")
        };
        let first = village
            .review_application(rv.clone())
            .await
            .expect("village review")
            .into_inner();
        assert_eq!(first.status(), pb::Status::TownReview);
        assert_eq!(
            village
                .review_application(rv.clone())
                .await
                .unwrap()
                .into_inner(),
            first
        );
        changed(
            err(village
                .review_application(pb::ReviewApplicationRequest {
                    decision: pb::Decision::Reject as i32,
                    reason: "changed".into(),
                    ..rv.clone()
                })
                .await),
            "review",
        );
        for (c, who) in [(&mut town, "town"), (&mut district, "district")] {
            let a = c
                .review_application(pb::ReviewApplicationRequest {
                    request_id: shared.clone(),
                    ..review_req(&app.id, pb::Decision::Approve, "")
                })
                .await
                .unwrap_or_else(|s| panic!("{who} review with the shared id: {s:?}"))
                .into_inner();
            let _ = a;
        }
        let a = t.get_as(&mut district, &app.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::PublicNotice);
        let app2 = t.submit_household(&r2, VILLAGE_A, "10000").await;
        t.approve_to_notice(&app2).await;

        // FileObjection.
        let fo = pb::FileObjectionRequest {
            request_id: shared.clone(),
            ..objection_req(&app.id)
        };
        let o = village
            .file_objection(fo.clone())
            .await
            .expect("objection")
            .into_inner();
        assert_eq!(
            village
                .file_objection(fo.clone())
                .await
                .unwrap()
                .into_inner(),
            o
        );
        changed(
            err(village
                .file_objection(pb::FileObjectionRequest {
                    content: "something else".into(),
                    ..fo.clone()
                })
                .await),
            "objection",
        );
        assert_eq!(count(&t.pool, "select count(*) from objections").await, 1);

        // ResolveObjection.
        let ro = pb::ResolveObjectionRequest {
            request_id: shared.clone(),
            ..resolve_req(&o.id, false, "unfounded")
        };
        let res = district
            .resolve_objection(ro.clone())
            .await
            .expect("resolve")
            .into_inner();
        assert_eq!(
            district
                .resolve_objection(ro.clone())
                .await
                .unwrap()
                .into_inner(),
            res
        );
        changed(
            err(district
                .resolve_objection(pb::ResolveObjectionRequest {
                    resolution: "verified".into(),
                    ..ro.clone()
                })
                .await),
            "resolve",
        );

        // LodgeComplaint, AssignComplaint, AnswerComplaint.
        let lc = pb::LodgeComplaintRequest {
            request_id: shared.clone(),
            ..lodge_req(VILLAGE_A, "a fee was asked")
        };
        let c = village
            .lodge_complaint(lc.clone())
            .await
            .expect("lodge")
            .into_inner();
        assert_eq!(
            village
                .lodge_complaint(lc.clone())
                .await
                .unwrap()
                .into_inner(),
            c
        );
        changed(
            err(village
                .lodge_complaint(pb::LodgeComplaintRequest {
                    content: "another complaint".into(),
                    ..lc.clone()
                })
                .await),
            "lodge",
        );
        assert_eq!(count(&t.pool, "select count(*) from complaints").await, 1);
        let ac = pb::AssignComplaintRequest {
            request_id: shared.clone(),
            complaint_id: c.id.clone(),
            organisation_area_code: VILLAGE_A.into(),
        };
        let assigned = town
            .assign_complaint(ac.clone())
            .await
            .expect("assign")
            .into_inner();
        assert_eq!(
            town.assign_complaint(ac.clone())
                .await
                .unwrap()
                .into_inner(),
            assigned
        );
        changed(
            err(town
                .assign_complaint(pb::AssignComplaintRequest {
                    organisation_area_code: TOWN_A.into(),
                    ..ac.clone()
                })
                .await),
            "assign",
        );
        let an = pb::AnswerComplaintRequest {
            request_id: shared.clone(),
            complaint_id: c.id.clone(),
            answer: "no fee is due".into(),
        };
        let answered = village
            .answer_complaint(an.clone())
            .await
            .expect("answer")
            .into_inner();
        assert_eq!(
            village
                .answer_complaint(an.clone())
                .await
                .expect("replay after answered")
                .into_inner(),
            answered
        );
        changed(
            err(village
                .answer_complaint(pb::AnswerComplaintRequest {
                    answer: "another answer".into(),
                    ..an.clone()
                })
                .await),
            "answer",
        );

        // ResubmitApplication.
        let app3 = t.submit_household(&r3, VILLAGE_A, "10000").await;
        review(&mut village, &app3.id, pb::Decision::Approve, "").await;
        review(
            &mut town,
            &app3.id,
            pb::Decision::ReturnForCorrection,
            "plan missing",
        )
        .await;
        let rs = pb::ResubmitApplicationRequest {
            request_id: shared.clone(),
            application_id: app3.id.clone(),
            note: "plan added".into(),
            ..Default::default()
        };
        let re = village
            .resubmit_application(rs.clone())
            .await
            .expect("resubmit")
            .into_inner();
        assert_eq!(
            village
                .resubmit_application(rs.clone())
                .await
                .unwrap()
                .into_inner(),
            re
        );
        changed(
            err(village
                .resubmit_application(pb::ResubmitApplicationRequest {
                    note: "plan added, signed".into(),
                    ..rs.clone()
                })
                .await),
            "resubmit",
        );

        // RecommendToBank.
        t.set_time("2026-03-07T09:00:00+08:00");
        let rb = pb::RecommendToBankRequest {
            request_id: shared.clone(),
            application_id: app.id.clone(),
            bank_id: BANK.into(),
        };
        let rec = district
            .recommend_to_bank(rb.clone())
            .await
            .expect("recommend")
            .into_inner();
        assert_eq!(
            district
                .recommend_to_bank(rb.clone())
                .await
                .unwrap()
                .into_inner(),
            rec
        );
        changed(
            err(district
                .recommend_to_bank(pb::RecommendToBankRequest {
                    application_id: app2.id.clone(),
                    ..rb.clone()
                })
                .await),
            "recommend",
        );
        let a2 = t.get_as(&mut district, &app2.id).await.unwrap();
        assert_eq!(
            a2.status(),
            pb::Status::PublicNotice,
            "the changed body did nothing"
        );

        // RecordBankDecision, RecordDisbursement.
        let bd = pb::RecordBankDecisionRequest {
            request_id: shared.clone(),
            ..approve_req(&app.id, "10000", "0.0435", 12)
        };
        let dec = bank
            .record_bank_decision(bd.clone())
            .await
            .expect("decide")
            .into_inner();
        assert_eq!(
            bank.record_bank_decision(bd.clone())
                .await
                .unwrap()
                .into_inner(),
            dec
        );
        changed(
            err(bank
                .record_bank_decision(pb::RecordBankDecisionRequest {
                    approved_amount: money("9000"),
                    ..bd.clone()
                })
                .await),
            "decision",
        );
        let rd = pb::RecordDisbursementRequest {
            request_id: shared.clone(),
            application_id: app.id.clone(),
            loan_account_number: "6228-4801-0000-0171".into(),
            amount: money("10000.00"),
            disbursed_on: "2026-03-07".into(),
            schedule: schedule(2026, 3, 7, 12, 1_000_000),
        };
        let dis = bank
            .record_disbursement(rd.clone())
            .await
            .expect("disburse")
            .into_inner();
        assert_eq!(
            bank.record_disbursement(rd.clone())
                .await
                .unwrap()
                .into_inner(),
            dis
        );
        changed(
            err(bank
                .record_disbursement(pb::RecordDisbursementRequest {
                    loan_account_number: "6228-4801-0000-0172".into(),
                    ..rd.clone()
                })
                .await),
            "disbursement",
        );
        assert_eq!(
            t.intake_events(&pb::LoanDisbursed::full_name()).await.len(),
            1
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8: request ids of 1 to 128 printable ASCII characters (every one of `!` to `~`) are
/// accepted and replay; 129 characters, control characters and non-ASCII are refused naming
/// `request_id`, on submissions, reviews and complaints alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_ids_up_to_128_printable_ascii_characters() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(174);
        t.given_credit_household(&r, VILLAGE_A).await;
        let printable: String = (0x21u8..=0x7e).map(char::from).collect();
        let id128: String = printable.chars().cycle().take(128).collect();
        let id128b: String = printable.chars().rev().cycle().take(128).collect();
        let id129: String = printable.chars().cycle().take(129).collect();
        assert_eq!((id128.len(), id129.len()), (128, 129));
        let mut village = t.as_village_staff(VILLAGE_A);

        for id in ["a", id128.as_str(), id128b.as_str()] {
            let mut req = household_request(&r, VILLAGE_A, "1000");
            req.request_id = id.to_owned();
            let a = try_submit(&mut village, req.clone())
                .await
                .unwrap_or_else(|s| panic!("id {id:?}: {s:?}"));
            let again = try_submit(&mut village, req).await.expect("replay");
            assert_eq!(again, a, "id {id:?} replays");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 3);

        for bad in [
            id129.clone(),
            "申请-0001".to_owned(),
            "a\tb".to_owned(),
            "a\nb".to_owned(),
            "é".to_owned(),
            "a\u{7f}".to_owned(),
        ] {
            let mut req = household_request(&r, VILLAGE_A, "1000");
            req.request_id = bad.clone();
            let s = try_submit(&mut village, req).await.unwrap_err();
            assert_invalid(&s, "request_id", "R-IN-8");
            let mut lc = lodge_req(VILLAGE_A, "x");
            lc.request_id = bad.clone();
            let s = err(village.lodge_complaint(lc).await);
            assert_invalid(&s, "request_id", "R-IN-8");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 3);
        assert_eq!(count(&t.pool, "select count(*) from complaints").await, 0);

        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        let rv = pb::ReviewApplicationRequest {
            request_id: id128.clone(),
            ..review_req(&app.id, pb::Decision::Approve, "")
        };
        let a = village
            .review_application(rv.clone())
            .await
            .expect("128-char review id")
            .into_inner();
        assert_eq!(
            village.review_application(rv).await.unwrap().into_inner(),
            a
        );
        let rv = pb::ReviewApplicationRequest {
            request_id: id129.clone(),
            ..review_req(&app.id, pb::Decision::Approve, "")
        };
        assert_invalid(
            &err(t.as_town_staff(TOWN_A).review_application(rv).await),
            "request_id",
            "R-IN-8",
        );
        let mut lc = lodge_req(VILLAGE_A, "x");
        lc.request_id = id128.clone();
        village
            .lodge_complaint(lc)
            .await
            .expect("128-char complaint id");
        t.shutdown().await;
    })
    .await;
}

// ---- paging ----

/// R-X-3 paging: page_size 0 means the default 50, 200 is accepted, 201 refused naming
/// `page.page_size`; a made-up token is refused naming `page.page_token`. The same bounds on
/// every listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_sizes_0_200_and_201() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(181);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut ids = Vec::new();
        for _ in 0..51 {
            ids.push(t.submit_household(&r, VILLAGE_A, "1000").await.id);
        }
        let mut district = t.as_district_staff();
        let (first, token) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(0, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(first.len(), 50, "the default page size");
        assert!(!token.is_empty());
        let (rest, last) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(0, &token),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(last, "");
        let (none_given, _) = list_page(&mut district, pb::ListApplicationsRequest::default())
            .await
            .unwrap();
        assert_eq!(none_given.len(), 50, "no page request: the default too");
        let (all, last) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(200, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(all.len(), 51);
        assert_eq!(last, "");
        let mut union: Vec<String> = first.into_iter().chain(rest).collect();
        union.sort();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(union, sorted);

        let s = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(201, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_invalid_field(&s, "page.page_size", "applications 201");
        let s = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(10, "bm90LWEtdG9rZW4"),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_invalid_field(&s, "page.page_token", "made-up token");

        // Transitions, objections, complaints: 200 accepted, 201 refused.
        let tr = |size: u32| pb::ListTransitionsRequest {
            application_id: ids[0].clone(),
            page: page(size, ""),
        };
        district
            .list_transitions(tr(200))
            .await
            .expect("200 transitions");
        district
            .list_transitions(tr(0))
            .await
            .expect("0 transitions");
        assert_invalid_field(
            &err(district.list_transitions(tr(201)).await),
            "page.page_size",
            "transitions 201",
        );
        let ob = |size: u32| pb::ListObjectionsRequest {
            application_id: ids[0].clone(),
            page: page(size, ""),
        };
        district
            .list_objections(ob(200))
            .await
            .expect("200 objections");
        assert_invalid_field(
            &err(district.list_objections(ob(201)).await),
            "page.page_size",
            "objections 201",
        );
        complaints_page(&mut district, 200, "", false)
            .await
            .expect("200 complaints");
        assert_invalid_field(
            &complaints_page(&mut district, 201, "", false)
                .await
                .unwrap_err(),
            "page.page_size",
            "complaints 201",
        );
        let bank_req = |size: u32| pb::ListRecommendedApplicationsRequest {
            page: page(size, ""),
            ..Default::default()
        };
        t.as_bank(BANK)
            .list_recommended_applications(bank_req(200))
            .await
            .expect("200 recommended");

        // Complaints default to 50 too.
        let mut village = t.as_village_staff(VILLAGE_A);
        for i in 0..51 {
            lodge(&mut village, VILLAGE_A, &format!("complaint {i}")).await;
        }
        let (c, token) = complaints_page(&mut district, 0, "", false).await.unwrap();
        assert_eq!(c.len(), 50);
        let (c, last) = complaints_page(&mut district, 0, &token, false)
            .await
            .unwrap();
        assert_eq!((c.len(), last.as_str()), (1, ""));
        t.shutdown().await;
    })
    .await;
}

/// Paging (R-IN-2 listings, R-IN-7): while a listing is paged through, applications change
/// status, are rejected, and new ones arrive; the pages never repeat a row and never skip one
/// that existed when the listing started. The same for complaints being assigned and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_neither_repeats_nor_skips_while_rows_change() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (ra, ra2) = (resident_id(182), resident_id(183));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        let mut originals: Vec<pb::Application> = Vec::new();
        for i in 0..30 {
            let (r, v) = if i % 2 == 0 {
                (&ra, VILLAGE_A)
            } else {
                (&ra2, VILLAGE_A2)
            };
            originals.push(t.submit_household(r, v, "1000").await);
        }
        for (who, mut c) in [
            ("town", t.as_town_staff(TOWN_A)),
            ("district", t.as_district_staff()),
        ] {
            let mut seen: Vec<String> = Vec::new();
            let mut token = String::new();
            let mut round = 0;
            loop {
                let (ids, next) = list_page(
                    &mut c,
                    pb::ListApplicationsRequest {
                        page: page(7, &token),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|s| panic!("{who} page {round}: {s:?}"));
                seen.extend(ids);
                if next.is_empty() {
                    break;
                }
                token = next;
                // Change rows between pages: move some seen and unseen ones on, reject one,
                // return one, submit new ones.
                let seen_set: HashSet<&String> = seen.iter().collect();
                let moving: Vec<pb::Application> = originals
                    .iter()
                    .filter(|a| !seen_set.contains(&a.id))
                    .take(2)
                    .chain(
                        originals
                            .iter()
                            .filter(|a| seen_set.contains(&a.id))
                            .take(1),
                    )
                    .cloned()
                    .collect();
                for a in &moving {
                    let now = t.get_as(&mut t.as_district_staff(), &a.id).await.unwrap();
                    match now.status() {
                        pb::Status::VillageReview => {
                            let d = if round % 3 == 2 {
                                (pb::Decision::Reject, "moved away")
                            } else {
                                (pb::Decision::Approve, "")
                            };
                            review(&mut t.as_village_staff(&a.village_code), &a.id, d.0, d.1).await;
                        }
                        pb::Status::TownReview => {
                            review(
                                &mut t.as_town_staff(TOWN_A),
                                &a.id,
                                pb::Decision::ReturnForCorrection,
                                "plan missing",
                            )
                            .await;
                        }
                        _ => {}
                    }
                }
                t.submit_household(&ra, VILLAGE_A, "1000").await;
                t.submit_household(&ra2, VILLAGE_A2, "1000").await;
                round += 1;
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "{who}: a row repeated: {seen:?}");
            for a in &originals {
                assert!(unique.contains(&a.id), "{who}: skipped {}", a.id);
            }
        }

        // Complaints.
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut lodged = Vec::new();
        for i in 0..15 {
            lodged.push(lodge(&mut village, VILLAGE_A, &format!("complaint {i}")).await);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut token = String::new();
        let mut round = 0;
        loop {
            let (cs, next) = complaints_page(&mut town, 4, &token, false).await.unwrap();
            seen.extend(cs.into_iter().map(|c| c.id));
            if next.is_empty() {
                break;
            }
            token = next;
            for c in lodged.iter().skip(round * 3).take(3) {
                town.assign_complaint(pb::AssignComplaintRequest {
                    request_id: rid(),
                    complaint_id: c.id.clone(),
                    organisation_area_code: VILLAGE_A.into(),
                })
                .await
                .expect("assign");
                village
                    .answer_complaint(pb::AnswerComplaintRequest {
                        request_id: rid(),
                        complaint_id: c.id.clone(),
                        answer: "answered".into(),
                    })
                    .await
                    .expect("answer");
            }
            lodge(&mut village, VILLAGE_A, "a new one").await;
            round += 1;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "complaints: a row repeated");
        for c in &lodged {
            assert!(unique.contains(&c.id), "complaints: skipped {}", c.id);
        }
        t.shutdown().await;
    })
    .await;
}

// ---- area scoping ----

/// R-IN-2 (section 0: staff see only inside their area), R-X-3: a listing's area must be a
/// real area inside the caller's; codes that are only prefixes, carry SQL wildcards or name
/// no area are refused, never widened into a listing; a narrower real area lists only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_areas_are_exact_codes_inside_the_callers_area() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (ra, ra2, rb) = (resident_id(191), resident_id(192), resident_id(193));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        t.given_credit_household(&rb, VILLAGE_B).await;
        let a = t.submit_household(&ra, VILLAGE_A, "1000").await;
        let a2 = t.submit_household(&ra2, VILLAGE_A2, "1000").await;
        let b = t.submit_household(&rb, VILLAGE_B, "1000").await;
        let in_area = |area: &str| pb::ListApplicationsRequest {
            area_code: area.to_owned(),
            ..Default::default()
        };

        let (ids, _) = list_page(&mut t.as_district_staff(), in_area(TOWN_B))
            .await
            .unwrap();
        assert_eq!(ids, vec![b.id.clone()]);
        let (ids, _) = list_page(&mut t.as_district_staff(), in_area(VILLAGE_A2))
            .await
            .unwrap();
        assert_eq!(ids, vec![a2.id.clone()]);
        let (ids, _) = list_page(&mut t.as_village_staff(VILLAGE_A), in_area(VILLAGE_A))
            .await
            .unwrap();
        assert_eq!(ids, vec![a.id.clone()]);
        let s = list_page(&mut t.as_town_staff(TOWN_A), in_area(DISTRICT))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "a wider area: {s:?}");

        for (who, mut c, area) in [
            ("town, wildcard _", t.as_town_staff(TOWN_A), "410311100_"),
            ("town, wildcard %", t.as_town_staff(TOWN_A), "410311100%"),
            (
                "town, 10-digit prefix",
                t.as_town_staff(TOWN_A),
                "4103111002",
            ),
            ("town, letters", t.as_town_staff(TOWN_A), "abc"),
            ("district, wildcard", t.as_district_staff(), "410311%"),
            ("district, 8 digits", t.as_district_staff(), "41031110"),
            (
                "village, wildcard",
                t.as_village_staff(VILLAGE_A),
                "41031110020_",
            ),
        ] {
            match list_page(&mut c, in_area(area)).await {
                Ok((ids, _)) => panic!("{who}: {area:?} listed {ids:?}"),
                Err(s) => assert_invalid_field(&s, "area_code", who),
            }
        }

        // Complaints: each tier lists the complaints of its own area only.
        let cva = lodge(&mut t.as_village_staff(VILLAGE_A), VILLAGE_A, "a").await;
        let cva2 = lodge(&mut t.as_village_staff(VILLAGE_A2), VILLAGE_A2, "a2").await;
        let cta = lodge(&mut t.as_town_staff(TOWN_A), TOWN_A, "town a").await;
        let cvb = lodge(&mut t.as_village_staff(VILLAGE_B), VILLAGE_B, "b").await;
        let listed = |mut c: Client| async move {
            let mut v: Vec<String> = complaints_page(&mut c, 200, "", false)
                .await
                .unwrap()
                .0
                .into_iter()
                .map(|c| c.id)
                .collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<&String>| {
            v.sort();
            v.into_iter().cloned().collect::<Vec<_>>()
        };
        assert_eq!(
            listed(t.as_village_staff(VILLAGE_A)).await,
            vec![cva.id.clone()]
        );
        assert_eq!(
            listed(t.as_village_staff(VILLAGE_A2)).await,
            vec![cva2.id.clone()]
        );
        assert_eq!(
            listed(t.as_town_staff(TOWN_A)).await,
            sorted(vec![&cva.id, &cva2.id, &cta.id])
        );
        assert_eq!(listed(t.as_town_staff(TOWN_B)).await, vec![cvb.id.clone()]);
        assert_eq!(
            listed(t.as_district_staff()).await,
            sorted(vec![&cva.id, &cva2.id, &cta.id, &cvb.id])
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-X-3: resident IDs of the wrong length or with letters other than the final X are
/// bad input naming `household.resident_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_resident_ids_are_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let good = resident_id(194);
        t.given_credit_household(&good, VILLAGE_A).await;
        let mut cases = vec![
            good[..17].to_owned(),
            format!("{good}0"),
            String::new(),
            format!("{}A", &good[..17]),
            format!("41031119800501１９{}", &good[16..]),
        ];
        // Right check digit but a 13th month.
        cases.push(resident_id_born("19801301", 1));
        for bad in cases {
            let mut req = household_request(&good, VILLAGE_A, "1000");
            household(&mut req).resident_id = bad.clone();
            let s = try_submit(&mut t.as_village_staff(VILLAGE_A), req)
                .await
                .unwrap_err();
            assert_invalid(&s, "household.resident_id", "R-IN-1");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        t.shutdown().await;
    })
    .await;
}

/// R-X-3: a listing's area that is well formed but names no area of the district (a typo) is
/// bad input naming `area_code`, as it is for complaints and submissions, not an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_an_area_that_does_not_exist_is_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(195);
        t.given_credit_household(&r, VILLAGE_A).await;
        t.submit_household(&r, VILLAGE_A, "1000").await;
        // LodgeComplaint calls the same code bad input.
        let s = err(t
            .as_town_staff(TOWN_A)
            .lodge_complaint(lodge_req("410311100299", "x"))
            .await);
        assert_invalid_field(&s, "area_code", "complaint in an unknown village");
        for (who, mut c, area) in [
            (
                "town, unknown village",
                t.as_town_staff(TOWN_A),
                "410311100299",
            ),
            ("district, unknown town", t.as_district_staff(), "410311199"),
        ] {
            match list_page(
                &mut c,
                pb::ListApplicationsRequest {
                    area_code: area.to_owned(),
                    ..Default::default()
                },
            )
            .await
            {
                Ok((ids, _)) => panic!("{who}: {area:?} listed {ids:?} instead of an error"),
                Err(s) => assert_invalid_field(&s, "area_code", who),
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-1: an applicant kind outside the API (99) is bad input naming `kind`, not
/// taken as a household.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_applicant_kind_is_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(196);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut req = household_request(&r, VILLAGE_A, "1000");
        req.kind = 99;
        match try_submit(&mut t.as_village_staff(VILLAGE_A), req).await {
            Ok(a) => panic!("kind 99 accepted as {:?}", a.kind()),
            Err(s) => assert_invalid_field(&s, "kind", "kind 99"),
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        t.shutdown().await;
    })
    .await;
}

// ---- R-X-4: policy versions take effect on China days ----

/// R-IN-3, R-X-4, R-X-3: a term cap lowered while an application is returned. Resubmitted
/// without a new term, the stored term over the new cap is admission's refusal under the new
/// policy (kept with the request id, as at recommendation), not bad input the clerk never sent;
/// resubmitted with that term, it is bad input naming `term_months` (not kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cap_lowered_while_returned() {
    bounded(120, async {
        let shorter = policy_version("luolong-2026.9", "2026-03-03", &["max_term_months = 24"]);
        let t = spawn_intake_with_policy_versions(&shorter).await;
        let r = resident_id(204);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        t.set_time("2026-03-02T10:00:00+08:00");
        let mut q = household_request(&r, VILLAGE_A, "1000");
        q.term_months = 30;
        let a = submit(&mut village, q).await;
        review(
            &mut village,
            &a.id,
            pb::Decision::ReturnForCorrection,
            "plan missing",
        )
        .await;

        t.set_time("2026-03-03T10:00:00+08:00");
        let resubmit = |term: u32| pb::ResubmitApplicationRequest {
            request_id: rid(),
            application_id: a.id.clone(),
            term_months: term,
            note: "plan added".into(),
            ..Default::default()
        };
        let as_stored = resubmit(0);
        let s = err(village.resubmit_application(as_stored.clone()).await);
        assert_refused(&s, &["R-IN-3"]);
        assert!(s.message().contains("luolong-2026.9"), "{}", s.message());
        // Kept: the day before, under the old policy, the same request id is refused the same.
        t.set_time("2026-03-02T23:00:00+08:00");
        let again = err(village.resubmit_application(as_stored).await);
        assert_eq!(again.message(), s.message(), "kept");
        t.set_time("2026-03-03T10:00:00+08:00");
        let s = err(village.resubmit_application(resubmit(30)).await);
        assert_invalid(&s, "term_months", "R-IN-3");
        let a = village
            .resubmit_application(resubmit(24))
            .await
            .expect("24 months")
            .into_inner();
        assert_eq!(a.status(), pb::Status::VillageReview);
        t.shutdown().await;
    })
    .await;
}

/// R-X-4 (with R-IN-3, R-IN-4, R-IN-5, R-IN-7): a policy version applies from 00:00 China
/// time on its effective day: at 23:59 the day before the old values decide, at 00:30 on the
/// day (still the day before in UTC) the new ones, and the decision records that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_version_applies_from_midnight_china_time() {
    bounded(120, async {
        // Shipped values but, from 2026-03-03: ages 20 to 60, terms up to 24 months, village
        // step 5 working days, a 7-day notice, complaints due in 15 working days.
        let stricter = policy_version(
            "luolong-2026.9",
            "2026-03-03",
            &[
                "max_term_months = 24",
                "min_age = 20",
                "max_age = 60",
                "village_review_days = 5",
                "public_notice_calendar_days = 7",
                "complaint_answer_days = 15",
            ],
        );
        let t = spawn_intake_with_policy_versions(&stricter).await;
        let r = resident_id(201);
        let aged_62 = resident_id_born("19630801", 202);
        let aged_19 = resident_id_born("20060801", 203);
        for x in [&r, &aged_62, &aged_19] {
            t.given_credit_household(x, VILLAGE_A).await;
        }
        let with_term = |term: u32| {
            let mut q = household_request(&r, VILLAGE_A, "1000");
            q.term_months = term;
            q
        };

        t.set_time("2026-03-02T23:59:00+08:00");
        let a = submit(&mut t.as_village_staff(VILLAGE_A), with_term(30)).await;
        assert_eq!(a.policy_version, "luolong-2026.1");
        assert_eq!(a.step_due_on, "2026-03-05");
        admitted(&t, &aged_62, VILLAGE_A, "1000", "62 under the old policy").await;
        admitted(&t, &aged_19, VILLAGE_A, "1000", "19 under the old policy").await;

        t.set_time("2026-03-03T00:30:00+08:00");
        let s = try_submit(&mut t.as_village_staff(VILLAGE_A), with_term(30))
            .await
            .unwrap_err();
        assert_invalid(&s, "term_months", "R-IN-3");
        let b = submit(&mut t.as_village_staff(VILLAGE_A), with_term(24)).await;
        assert_eq!(b.policy_version, "luolong-2026.9");
        assert_eq!(b.step_due_on, "2026-03-10", "5 working days from Tuesday");
        let s = refused(
            &t,
            &aged_62,
            VILLAGE_A,
            "1000",
            &["R-IN-3"],
            "62 under the new",
        )
        .await;
        assert!(s.message().ends_with("(policy luolong-2026.9)"), "{s:?}");
        refused(
            &t,
            &aged_19,
            VILLAGE_A,
            "1000",
            &["R-IN-3"],
            "19 under the new",
        )
        .await;

        let c = lodge(&mut t.as_village_staff(VILLAGE_A), VILLAGE_A, "fee asked").await;
        assert_eq!(c.policy_version, "luolong-2026.9");
        assert_eq!(c.due_on, "2026-03-24");
        assert_eq!(
            t.calendar.add_working_days(day("2026-03-03"), 15).unwrap(),
            day("2026-03-24")
        );

        review(
            &mut t.as_village_staff(VILLAGE_A),
            &b.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_town_staff(TOWN_A),
            &b.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let n = review(&mut t.as_district_staff(), &b.id, pb::Decision::Approve, "").await;
        assert_eq!(n.notice_ends_on, "2026-03-09", "7 calendar days from 03-03");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4 at the end of the deployed calendars ----

/// R-IN-4, R-IN-7 (README "Operating it"): with no 2027 calendar, a step whose deadline would
/// run into 2027 is taken with its deadline pending, one that ends on 2026-12-31 gets it; a
/// complaint whose deadline would is recorded with it pending. The day is the China day. The
/// public notice counts calendar days and needs no calendar.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deadlines_at_the_end_of_the_deployed_calendar() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(211);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);

        // Complaints: 10 working days from 12-17 end on 12-31; from 12-18 they do not.
        t.set_time("2026-12-17T23:59:00+08:00");
        let c = lodge(&mut village, VILLAGE_A, "last one this year").await;
        assert_eq!(c.due_on, "2026-12-31");
        t.set_time("2026-12-18T00:30:00+08:00");
        let pending = lodge(&mut village, VILLAGE_A, "beyond the calendar").await;
        assert_eq!(pending.due_on, "", "deadline pending");

        // The village step: 3 working days from Monday 12-28 end on 12-31.
        t.set_time("2026-12-01T09:00:00+08:00");
        let early = t.submit_household(&r, VILLAGE_A, "1000").await;
        review(&mut village, &early.id, pb::Decision::Approve, "").await;
        t.set_time("2026-12-24T09:00:00+08:00");
        let d = review(
            &mut t.as_town_staff(TOWN_A),
            &early.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(
            d.step_due_on, "2026-12-31",
            "5 working days from Thursday 12-24"
        );
        t.set_time("2026-12-28T23:59:00+08:00");
        let a = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(a.step_due_on, "2026-12-31");
        t.set_time("2026-12-29T00:30:00+08:00");
        let p = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(
            (
                p.status(),
                p.step_due_on.as_str(),
                p.step_calendar_version.as_str()
            ),
            (pb::Status::VillageReview, "", ""),
            "taken, its deadline pending"
        );

        // The district approves on 12-30: a 5-day notice into 2027 needs no working days.
        t.set_time("2026-12-30T09:00:00+08:00");
        let n = review(
            &mut t.as_district_staff(),
            &early.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(n.status(), pb::Status::PublicNotice);
        assert_eq!(n.notice_ends_on, "2027-01-03");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: overdue ends with the step ----

/// R-IN-4: an overdue listing holds steps past their deadline; an application whose overdue
/// step ended (rejected at the village, decided by the bank) has no step pending and leaves
/// the listing and its `overdue` flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdue_step_that_ends_leaves_the_overdue_listing() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(221), resident_id(222));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let rejected = t.submit_household(&r1, VILLAGE_A, "5000").await;
        let banked = t.submit_household(&r2, VILLAGE_A, "5000").await;
        t.approve_to_notice(&banked).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&banked.id, BANK).await.expect("recommend");
        // Bank due 03-20; both overdue on 03-23.
        t.set_time("2026-03-23T09:00:00+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 2);
        let mut want = vec![rejected.id.clone(), banked.id.clone()];
        want.sort();
        let mut got = overdue_ids(&mut t.as_district_staff()).await;
        got.sort();
        assert_eq!(got, want);

        let a = review(
            &mut t.as_village_staff(VILLAGE_A),
            &rejected.id,
            pb::Decision::Reject,
            "household moved away",
        )
        .await;
        assert_eq!(a.step_due_on, "");
        assert!(!a.overdue, "no step pending: {a:?}");
        let a = t
            .as_bank(BANK)
            .record_bank_decision(approve_req(&banked.id, "5000", "0.0435", 12))
            .await
            .expect("late approval")
            .into_inner();
        assert!(!a.overdue, "the bank decided: {a:?}");
        assert!(overdue_ids(&mut t.as_district_staff()).await.is_empty());
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.shutdown().await;
    })
    .await;
}

// ---- paging: the last page ----

/// R-IN-2, R-IN-6, R-IN-7 listings, paged (common.proto "Empty when there are no more
/// results"): when the rows end exactly
/// at a page boundary, that page carries no next token (no empty trailing page); on every
/// listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_that_ends_the_rows_has_no_next_token() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(231);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut apps = Vec::new();
        for _ in 0..6 {
            apps.push(t.submit_household(&r, VILLAGE_A, "1000").await);
        }
        let mut district = t.as_district_staff();
        let (ids, next) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(6, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((ids.len(), next.as_str()), (6, ""), "applications 6 of 6");
        let (ids, next) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(3, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(ids.len(), 3);
        let (ids, next) = list_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(3, &next),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((ids.len(), next.as_str()), (3, ""), "applications 3+3 of 6");

        // Transitions: submit + 3 approvals = 4.
        let app = t.approve_to_notice(&apps[0]).await;
        let tr = district
            .list_transitions(pb::ListTransitionsRequest {
                application_id: app.id.clone(),
                page: page(4, ""),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tr.transitions.len(), 4);
        assert_eq!(
            tr.page.unwrap_or_default().next_page_token,
            "",
            "transitions 4 of 4"
        );

        // Objections: 2 of 2.
        for _ in 0..2 {
            district
                .file_objection(objection_req(&app.id))
                .await
                .expect("objection");
        }
        let ob = district
            .list_objections(pb::ListObjectionsRequest {
                application_id: app.id.clone(),
                page: page(2, ""),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ob.objections.len(), 2);
        assert_eq!(
            ob.page.unwrap_or_default().next_page_token,
            "",
            "objections 2 of 2"
        );

        // Complaints: 5 of 5.
        let mut village = t.as_village_staff(VILLAGE_A);
        for i in 0..5 {
            lodge(&mut village, VILLAGE_A, &format!("c{i}")).await;
        }
        let (cs, next) = complaints_page(&mut district, 5, "", false).await.unwrap();
        assert_eq!((cs.len(), next.as_str()), (5, ""), "complaints 5 of 5");

        // The bank: 2 of 2.
        for a in &apps[1..3] {
            t.approve_to_notice(a).await;
        }
        t.set_time("2026-03-07T09:00:00+08:00");
        for a in &apps[1..3] {
            t.recommend(&a.id, BANK).await.expect("recommend");
        }
        let b = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest {
                page: page(2, ""),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(b.applications.len(), 2);
        assert_eq!(
            b.page.unwrap_or_default().next_page_token,
            "",
            "bank 2 of 2"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-8: callers ----

/// R-IN-8 (README: "unique per caller and RPC"): two staff members of one village department
/// who happen to pick the same request id make two requests, not one replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_request_id_from_two_staff_members_is_two_requests() {
    bounded(60, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(241), resident_id(242));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let clerk = |n: u32| {
            t.as_caller(
                &format!("village-clerk-{n}"),
                fupin_platform::Role::VillageStaff,
                VILLAGE_A,
                None,
            )
        };
        let mut q1 = household_request(&r1, VILLAGE_A, "1000");
        q1.request_id = "form-0001".into();
        let mut q2 = household_request(&r2, VILLAGE_A, "2000");
        q2.request_id = "form-0001".into();
        let a1 = submit(&mut clerk(1), q1).await;
        let a2 = try_submit(&mut clerk(2), q2)
            .await
            .expect("another caller's request");
        assert_ne!(a1.id, a2.id);
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 2);

        let mut l1 = lodge_req(VILLAGE_A, "one");
        l1.request_id = "c-1".into();
        let mut l2 = lodge_req(VILLAGE_A, "two");
        l2.request_id = "c-1".into();
        let c1 = clerk(1)
            .lodge_complaint(l1)
            .await
            .expect("lodge 1")
            .into_inner();
        let c2 = clerk(2)
            .lodge_complaint(l2)
            .await
            .expect("another caller's complaint")
            .into_inner();
        assert_ne!(c1.id, c2.id);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-2/R-IN-3: resubmission is admitted again ----

/// R-IN-3 (README: admission is checked again at resubmission): a household whose 66th
/// birthday falls while the application is returned is refused at resubmission; corrected
/// terms are checked at the same bounds as a submission (36 accepted, 37 refused, with every
/// other rule admission refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resubmission_is_admitted_on_its_own_day() {
    bounded(90, async {
        let t = spawn_intake().await;
        let old = resident_id_born("19600305", 251);
        let young = resident_id(252);
        t.given_credit_household(&old, VILLAGE_A).await;
        t.given_credit_household(&young, VILLAGE_A).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let returned = |app: pb::Application| {
            let t = &t;
            async move {
                let mut v = t.as_village_staff(VILLAGE_A);
                review(
                    &mut v,
                    &app.id,
                    pb::Decision::ReturnForCorrection,
                    "plan missing",
                )
                .await;
                app
            }
        };
        let a_old = returned(t.submit_household(&old, VILLAGE_A, "5000").await).await;
        let a_young = returned(t.submit_household(&young, VILLAGE_A, "5000").await).await;
        let resubmit = |id: &str, term: u32| pb::ResubmitApplicationRequest {
            request_id: rid(),
            application_id: id.to_owned(),
            term_months: term,
            note: "plan added".into(),
            ..Default::default()
        };
        let s = err(village
            .resubmit_application(resubmit(&a_young.id, 37))
            .await);
        assert_invalid(&s, "term_months", "R-IN-3");
        let a = village
            .resubmit_application(resubmit(&a_young.id, 36))
            .await
            .expect("36 months")
            .into_inner();
        assert_eq!(a.term_months, 36);
        assert_eq!(a.status(), pb::Status::VillageReview);

        t.set_time("2026-03-05T00:30:00+08:00");
        let s = err(village.resubmit_application(resubmit(&a_old.id, 0)).await);
        assert_refused(&s, &["R-IN-3"]);
        let got = t.get_as(&mut village, &a_old.id).await.unwrap();
        assert_eq!(got.status(), pb::Status::Returned);
        // Over the term cap, the age is told with it, and nothing is kept: the same request
        // id within the cap is decided afresh (R-IN-3, R-X-3, R-IN-8).
        let mut over = resubmit(&a_old.id, 37);
        let s = err(village.resubmit_application(over.clone()).await);
        assert_invalid(&s, "term_months", "R-IN-3");
        assert!(
            s.message().ends_with(
                "; household.resident_id: borrower is 66, must be 18 to 65 [R-IN-3] \
                           (policy luolong-2026.1)"
            ),
            "{}",
            s.message()
        );
        over.term_months = 0;
        let s = err(village.resubmit_application(over).await);
        assert_refused(&s, &["R-IN-3"]);
        assert!(!s.message().contains("term_months"), "{}", s.message());
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: disbursement boundaries ----

/// R-IN-6 (README: the disbursement is at most the approved amount): a bank may disburse less
/// than it approved, with a schedule summing to what it disbursed; an interest-only schedule
/// with the principal at maturity (按季结息、到期还本, usual for these loans) is a schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_smaller_disbursement_with_principal_at_maturity() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(261);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&app).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommend");
        let mut bank = t.as_bank(BANK);
        bank.record_bank_decision(approve_req(&app.id, "20000", "0.0435", 12))
            .await
            .expect("approve");
        t.set_time("2026-03-10T09:00:00+08:00");
        let quarterly = ["2026-06-10", "2026-09-10", "2026-12-10", "2027-03-10"]
            .iter()
            .enumerate()
            .map(|(i, d)| pb::Instalment {
                due_on: (*d).to_owned(),
                principal: money(if i == 3 { "15000.00" } else { "0.00" }),
                interest: money("163.13"),
            })
            .collect();
        let d = bank
            .record_disbursement(pb::RecordDisbursementRequest {
                request_id: rid(),
                application_id: app.id.clone(),
                loan_account_number: "6228-4801-0000-0261".into(),
                amount: money("15000.00"),
                disbursed_on: "2026-03-10".into(),
                schedule: quarterly,
            })
            .await
            .expect("15,000 of 20,000, principal at maturity")
            .into_inner();
        assert_eq!(d.status(), pb::Status::Disbursed);
        assert_eq!(d.disbursement.unwrap().amount.unwrap().amount, "15000.00");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-1/R-IN-2: who files and sees an enterprise's application ----

/// R-IN-1, R-IN-2: an enterprise registered in a village may be filed by that village's
/// department (starting at the village step) or at the district center; one registered at a
/// town only at the district center; a village department does not see a town-level
/// enterprise's application, the town does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprise_filing_and_visibility_follow_its_area() {
    bounded(60, async {
        let t = spawn_intake().await;
        let code = uscc('3', 271);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let v = submit(
            &mut t.as_village_staff(VILLAGE_A),
            enterprise_request(&code, VILLAGE_A, "300000"),
        )
        .await;
        assert_eq!(v.status(), pb::Status::VillageReview);
        assert_eq!(v.step_due_on, "2026-03-05");
        for (who, mut c) in [
            ("village of the town", t.as_village_staff(VILLAGE_A)),
            ("town", t.as_town_staff(TOWN_A)),
        ] {
            let s = err(c
                .submit_application(enterprise_request(&code, TOWN_A, "300000"))
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
        }
        let town_level = submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_A, "300000"),
        )
        .await;
        assert_eq!(town_level.status(), pb::Status::DistrictReview);
        let s = t
            .get_as(&mut t.as_village_staff(VILLAGE_A), &town_level.id)
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        let (ids, _) = list_page(&mut t.as_village_staff(VILLAGE_A), Default::default())
            .await
            .unwrap();
        assert_eq!(ids, vec![v.id.clone()]);
        let (mut ids, _) = list_page(&mut t.as_town_staff(TOWN_A), Default::default())
            .await
            .unwrap();
        ids.sort();
        let mut want = vec![v.id.clone(), town_level.id.clone()];
        want.sort();
        assert_eq!(ids, want);
        let (ids, _) = list_page(&mut t.as_town_staff(TOWN_B), Default::default())
            .await
            .unwrap();
        assert!(ids.is_empty());
        t.shutdown().await;
    })
    .await;
}

// ---- R-X-3: text the database cannot store ----

/// Accepted, or bad input naming `field`: never an internal error (R-X-3).
fn accepted_or_named<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
    field: &str,
    what: &str,
    problems: &mut Vec<String>,
) {
    match r {
        Ok(_) => {}
        Err(s)
            if s.code() == Code::InvalidArgument
                && s.message().starts_with(&format!("{field}:")) => {}
        Err(s) => problems.push(format!("{what}: {:?} {:?}", s.code(), s.message())),
    }
}

/// R-X-3: free text with a NUL character (valid UTF-8, valid protobuf) is either stored or
/// refused naming its field; it never fails a write as an internal error. Every free-text
/// field of every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn free_text_with_a_nul_character_is_never_an_internal_error() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(281);
        t.given_credit_household(&r, VILLAGE_A).await;
        let nul = "peony\u{0}seedlings";
        let mut problems = Vec::new();
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut district = t.as_district_staff();

        let mut q = household_request(&r, VILLAGE_A, "1000");
        q.project_description = nul.into();
        accepted_or_named(
            village.submit_application(q).await,
            "project_description",
            "submit description",
            &mut problems,
        );
        let mut q = household_request(&r, VILLAGE_A, "1000");
        household(&mut q).poor_household_number = "LL\u{0}1".into();
        accepted_or_named(
            village.submit_application(q).await,
            "household.poor_household_number",
            "submit poor household number",
            &mut problems,
        );
        let mut q = household_request(&r, VILLAGE_A, "1000");
        household(&mut q).name = "王\u{0}建国".into();
        accepted_or_named(
            village.submit_application(q).await,
            "household.name",
            "submit name",
            &mut problems,
        );
        let code = uscc('3', 281);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let mut q = enterprise_request(&code, TOWN_A, "300000");
        if let Some(Applicant::Enterprise(e)) = q.applicant.as_mut() {
            e.name = "合作社\u{0}".into();
        }
        accepted_or_named(
            district.submit_application(q).await,
            "enterprise.name",
            "submit enterprise name",
            &mut problems,
        );
        let mut q = enterprise_request(&code, TOWN_A, "300000");
        if let Some(Applicant::Enterprise(e)) = q.applicant.as_mut() {
            e.legal_representative = "李\u{0}明".into();
        }
        accepted_or_named(
            district.submit_application(q).await,
            "enterprise.legal_representative",
            "submit legal representative",
            &mut problems,
        );

        // Staff steps.
        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        accepted_or_named(
            village
                .review_application(review_req(
                    &app.id,
                    pb::Decision::ReturnForCorrection,
                    "plan\u{0}missing",
                ))
                .await,
            "reason",
            "return reason",
            &mut problems,
        );
        let now = t.get_as(&mut district, &app.id).await.unwrap();
        if now.status() != pb::Status::Returned {
            review(
                &mut village,
                &app.id,
                pb::Decision::ReturnForCorrection,
                "plan missing",
            )
            .await;
        }
        accepted_or_named(
            village
                .resubmit_application(pb::ResubmitApplicationRequest {
                    request_id: rid(),
                    application_id: app.id.clone(),
                    note: "added\u{0}".into(),
                    ..Default::default()
                })
                .await,
            "note",
            "resubmit note",
            &mut problems,
        );
        let now = t.get_as(&mut district, &app.id).await.unwrap();
        if now.status() == pb::Status::Returned {
            village
                .resubmit_application(pb::ResubmitApplicationRequest {
                    request_id: rid(),
                    application_id: app.id.clone(),
                    note: "added".into(),
                    ..Default::default()
                })
                .await
                .expect("resubmit");
        }
        let app = t.approve_to_notice(&app).await;
        accepted_or_named(
            village
                .file_objection(pb::FileObjectionRequest {
                    content: "loan\u{0}elsewhere".into(),
                    ..objection_req(&app.id)
                })
                .await,
            "content",
            "objection content",
            &mut problems,
        );
        accepted_or_named(
            village
                .file_objection(pb::FileObjectionRequest {
                    objector: "赵\u{0}某".into(),
                    ..objection_req(&app.id)
                })
                .await,
            "objector",
            "objector",
            &mut problems,
        );
        let o = village
            .file_objection(objection_req(&app.id))
            .await
            .expect("objection")
            .into_inner();
        accepted_or_named(
            district
                .resolve_objection(resolve_req(&o.id, false, "un\u{0}founded"))
                .await,
            "resolution",
            "resolution",
            &mut problems,
        );

        // Complaints.
        accepted_or_named(
            village
                .lodge_complaint(lodge_req(VILLAGE_A, "a\u{0}fee"))
                .await,
            "content",
            "complaint content",
            &mut problems,
        );
        accepted_or_named(
            village
                .lodge_complaint(pb::LodgeComplaintRequest {
                    complainant: "钱\u{0}某".into(),
                    ..lodge_req(VILLAGE_A, "a fee")
                })
                .await,
            "complainant",
            "complainant",
            &mut problems,
        );
        let c = lodge(&mut village, VILLAGE_A, "a fee").await;
        t.as_town_staff(TOWN_A)
            .assign_complaint(pb::AssignComplaintRequest {
                request_id: rid(),
                complaint_id: c.id.clone(),
                organisation_area_code: VILLAGE_A.into(),
            })
            .await
            .expect("assign");
        accepted_or_named(
            village
                .answer_complaint(pb::AnswerComplaintRequest {
                    request_id: rid(),
                    complaint_id: c.id.clone(),
                    answer: "no\u{0}fee".into(),
                })
                .await,
            "answer",
            "complaint answer",
            &mut problems,
        );

        // The bank's rejection reason.
        let r2 = resident_id(282);
        t.given_credit_household(&r2, VILLAGE_A).await;
        let b = t.submit_household(&r2, VILLAGE_A, "1000").await;
        t.approve_to_notice(&b).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&b.id, BANK).await.expect("recommend");
        accepted_or_named(
            t.as_bank(BANK)
                .record_bank_decision(pb::RecordBankDecisionRequest {
                    approved: false,
                    rejection_reason: "no\u{0}land".into(),
                    ..approve_req(&b.id, "0", "0.0435", 0)
                })
                .await,
            "rejection_reason",
            "bank rejection reason",
            &mut problems,
        );
        assert!(
            problems.is_empty(),
            "internal errors on NUL text:\n{}",
            problems.join("\n")
        );
        t.shutdown().await;
    })
    .await;
}

/// R-X-3: a bad submission among many sent at once (batched together) fails alone, naming its
/// field; the good ones go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn one_unstorable_submission_does_not_fail_its_batch() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(301);
        t.given_credit_household(&r, VILLAGE_A).await;
        let calls = (0..12).map(|i| {
            let mut c = t.as_village_staff(VILLAGE_A);
            let mut q = household_request(&r, VILLAGE_A, "1000");
            if i == 5 {
                q.project_description = "bad\u{0}row".into();
            }
            tokio::spawn(async move { (i, c.submit_application(q).await) })
        });
        let mut ok = 0;
        for call in futures::future::join_all(calls).await {
            let (i, res) = call.expect("task");
            if i == 5 {
                let s = res.expect_err("a NUL in the description");
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                assert!(s.message().starts_with("project_description: "), "{s:?}");
                continue;
            }
            res.unwrap_or_else(|s| panic!("good submission {i} failed: {s:?}"));
            ok += 1;
        }
        assert_eq!(ok, 11);
        assert_eq!(
            count(&t.pool, "select count(*) from applications").await,
            11
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, R-IN-8 (README: `expected_version` is optional optimistic concurrency; a conflict
/// keeps nothing): the current version is accepted, a stale or future one is refused and
/// changes nothing, and the request id of a conflict is free for the corrected request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expected_version_boundaries() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(302);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        assert_eq!(app.version, 1);
        let mut village = t.as_village_staff(VILLAGE_A);
        let a = village
            .review_application(pb::ReviewApplicationRequest {
                expected_version: 1,
                ..review_req(&app.id, pb::Decision::Approve, "")
            })
            .await
            .expect("the current version")
            .into_inner();
        assert_eq!(a.version, 2);
        let mut town = t.as_town_staff(TOWN_A);
        let id = rid();
        for stale in [1, 3, u64::MAX] {
            let s = err(town
                .review_application(pb::ReviewApplicationRequest {
                    request_id: id.clone(),
                    expected_version: stale,
                    ..review_req(&app.id, pb::Decision::Approve, "")
                })
                .await);
            assert!(
                matches!(s.code(), Code::Aborted | Code::FailedPrecondition),
                "version {stale}: {s:?}"
            );
        }
        let now = t.get_as(&mut town, &app.id).await.unwrap();
        assert_eq!((now.version, now.status()), (2, pb::Status::TownReview));
        let a = town
            .review_application(pb::ReviewApplicationRequest {
                request_id: id,
                expected_version: 2,
                ..review_req(&app.id, pb::Decision::Approve, "")
            })
            .await
            .expect("the same id, corrected")
            .into_inner();
        assert_eq!(a.status(), pb::Status::DistrictReview);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4, R-IN-7: one scan raises every overdue step and flags every late complaint, also
/// beyond one internal batch (more than 200 of each), each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_scan_alerts_more_than_two_hundred_of_each_once() {
    bounded(180, async {
        let t = spawn_intake().await;
        let r = resident_id(303);
        t.given_credit_household(&r, VILLAGE_A).await;
        let n = 205;
        let mut village = t.as_village_staff(VILLAGE_A);
        for i in 0..n {
            t.submit_household(&r, VILLAGE_A, "1000").await;
            lodge(&mut village, VILLAGE_A, &format!("complaint {i}")).await;
        }
        t.set_time("2026-03-17T09:00:00+08:00");
        let s = scan(&t).await;
        assert_eq!((s.newly_overdue, s.complaints_flagged), (n, n));
        let s = scan(&t).await;
        assert_eq!((s.newly_overdue, s.complaints_flagged), (0, 0));
        assert_eq!(
            t.intake_events(&pb::ApplicationStepOverdue::full_name())
                .await
                .len(),
            n as usize
        );
        assert_eq!(
            t.intake_events(&pb::ComplaintOverdue::full_name())
                .await
                .len(),
            n as usize
        );
        t.shutdown().await;
    })
    .await;
}
