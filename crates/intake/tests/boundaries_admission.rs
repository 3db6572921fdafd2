//! Boundary tests of admission (R-IN-3, with R-CR-3, R-CR-5, R-CR-8, R-CR-10, R-RK-9, R-ID-4)
//! and of the bank's decision and disbursement (R-IN-6), driven over gRPC as a black box, with
//! the read model fed by the other services' events.
//!
//! Every application here is submitted on Monday 2026-03-02 (unless a test moves the clock
//! first), passes the three tiers the same day, is publicly noticed 03-02..03-06 and can be
//! recommended from Saturday 03-07. The cases already covered by boundaries.rs, read_model.rs,
//! submission.rs, bank.rs and boundaries_bank_events.rs are not repeated; these probe the
//! edges between them: leap-day birthdays, lines with fen and the rounding of the uplift, the
//! re-checks at recommendation and at the bank's approval for every kind of fact, and refusals
//! that combine several rules.

mod common;

use common::*;
use fupin_proto::{
    common::v1::PageRequest,
    intake::v1::{self as pb, submit_application_request::Applicant},
};
use prost::Name;
use tonic::{Code, Status};

// ---- helpers ----

/// Waits until the read model applied the event with this ce-id.
async fn settle(t: &TestIntake, ce_id: String) {
    t.wait_applied(&ce_id).await;
}

/// `InvalidArgument` whose message starts with `field:` and names some rule (R-X-3).
fn assert_bad(s: &Status, field: &str, what: &str) {
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

/// Whether `msg` names the area `code` on its own (not only as the prefix of a longer code).
fn names_area(msg: &str, code: &str) -> bool {
    msg.match_indices(code).any(|(i, _)| {
        let before = msg[..i].chars().next_back();
        let after = msg[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Asserts `s` is a refusal naming exactly `rules` and returns it.
fn refused_move(rules: &[&str], s: Status) -> Status {
    assert_refused(&s, rules);
    s
}

/// An enterprise/cooperative application registered in `area`, filed at the district center.
async fn try_enterprise(
    t: &TestIntake,
    code: &str,
    area: &str,
    purpose: pb::Purpose,
) -> Result<pb::Application, Status> {
    let mut req = enterprise_request(code, area, "300000");
    req.purpose = purpose as i32;
    t.as_district_staff()
        .submit_application(req)
        .await
        .map(tonic::Response::into_inner)
}

/// Approves at every staff step the application is at until it is publicly noticed.
async fn to_notice(t: &TestIntake, app: &pb::Application) -> pb::Application {
    let mut a = app.clone();
    loop {
        let mut c = match a.status() {
            pb::Status::VillageReview => t.as_village_staff(&a.village_code),
            pb::Status::TownReview => t.as_town_staff(&a.town_code),
            pb::Status::DistrictReview => t.as_district_staff(),
            pb::Status::PublicNotice => return a,
            s => panic!("{} is at {s:?}, not on the way to the notice", a.id),
        };
        a = review(&mut c, &a.id, pb::Decision::Approve, "").await;
    }
}

/// The application and its whole history as the district sees them: what a refused move must
/// leave exactly as it was.
async fn snapshot(t: &TestIntake, id: &str) -> (pb::Application, Vec<pb::Transition>) {
    let mut d = t.as_district_staff();
    let app = t.get_as(&mut d, id).await.expect("district reads it");
    let history = d
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
        .transitions;
    (app, history)
}

/// How many `ApplicationStatusChanged` intake has published (once its outbox is drained).
async fn status_events(t: &TestIntake) -> usize {
    t.intake_events(&pb::ApplicationStatusChanged::full_name())
        .await
        .len()
}

async fn bank_approve(
    t: &TestIntake,
    id: &str,
    amount: &str,
    term: u32,
) -> Result<pb::Application, Status> {
    t.as_bank(BANK)
        .record_bank_decision(approve_req(id, amount, "0.0435", term))
        .await
        .map(tonic::Response::into_inner)
}

fn instalment(due: &str, principal: &str, interest: &str) -> pb::Instalment {
    pb::Instalment {
        due_on: due.to_owned(),
        principal: money(principal),
        interest: money(interest),
    }
}

// ---- R-IN-3: age ----

/// R-IN-3 ("borrower aged 18 to 65"), age from the resident ID's birth date against the China
/// day of the decision. Someone born on 29 February reaches a birthday in a non-leap year on
/// 1 March (the reading fupin_kernel's `ResidentId::age_on` documents; README is silent): born
/// 2008-02-29, 17 on 2026-02-27 and all of 02-28 (refused), 18 on 03-01 (admitted); born
/// 1960-02-29, 65 through 02-28 (admitted), 66 on 03-01 (refused). The same reading holds at
/// both ends. Born 2008-02-28 is 18 on 02-28.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leap_day_birthdays_are_reached_on_the_first_of_march() {
    bounded(120, async {
        let t = spawn_intake().await;
        let young = resident_id_born("20080229", 301);
        let old = resident_id_born("19600229", 302);
        let feb_28 = resident_id_born("20080228", 303);
        for r in [&young, &old, &feb_28] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let too_young_or_old = |s: &Status| {
            assert!(
                s.message().contains("household.resident_id"),
                "names the field: {s:?}"
            );
        };

        t.set_time("2026-02-27T09:00:00+08:00");
        too_young_or_old(&refused(&t, &young, VILLAGE_A, "1000", &["R-IN-3"], "17 (02-27)").await);
        too_young_or_old(
            &refused(&t, &feb_28, VILLAGE_A, "1000", &["R-IN-3"], "18 tomorrow").await,
        );
        admitted(&t, &old, VILLAGE_A, "1000", "65, born on a leap day").await;

        for now in ["2026-02-28T00:30:00+08:00", "2026-02-28T23:59:00+08:00"] {
            t.set_time(now);
            too_young_or_old(
                &refused(
                    &t,
                    &young,
                    VILLAGE_A,
                    "1000",
                    &["R-IN-3"],
                    &format!("born 02-29 is still 17 at {now}"),
                )
                .await,
            );
            admitted(
                &t,
                &old,
                VILLAGE_A,
                "1000",
                &format!("born 02-29 is still 65 at {now}"),
            )
            .await;
            admitted(&t, &feb_28, VILLAGE_A, "1000", "18th birthday on 02-28").await;
        }

        t.set_time("2026-03-01T00:30:00+08:00");
        admitted(&t, &young, VILLAGE_A, "1000", "born 02-29: 18 on 03-01").await;
        too_young_or_old(
            &refused(
                &t,
                &old,
                VILLAGE_A,
                "1000",
                &["R-IN-3"],
                "born 02-29: 66 on 03-01",
            )
            .await,
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3 / R-CR-8: lines ----

/// R-CR-8, R-IN-3, SPEC section 0 (money to the fen, rounding half-up): the line is the one the
/// rating carries, fen included (20,000.50: itself admitted, a fen more refused); a line above
/// the national cap still caps at 50,000.00. In a credit village the line is raised 20%
/// (20,000 -> 24,000 exactly, 24,000.01 refused), rounded half-up to the fen (10,000.04 ->
/// 12,000.048 -> 12,000.05; 12,345.67 -> 14,814.804 -> 14,814.80), and still within the cap
/// (45,000 -> 54,000 -> 50,000; AAA 50,000 stays 50,000; 50,000.01 is bad input).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lines_with_fen_and_the_credit_village_uplift_to_the_fen() {
    bounded(150, async {
        let t = spawn_intake().await;
        let with_fen = resident_id(311);
        let above_cap = resident_id(312);
        t.rate_household(&with_fen, VILLAGE_A, "A", "20000.50", 1)
            .await;
        t.rate_household(&above_cap, VILLAGE_A, "AAA", "60000.00", 1)
            .await;
        admitted(&t, &with_fen, VILLAGE_A, "20000.50", "the line with fen").await;
        let s = refused(
            &t,
            &with_fen,
            VILLAGE_A,
            "20000.51",
            &["R-CR-8"],
            "a fen above a line with fen",
        )
        .await;
        assert!(s.message().contains("amount"), "{s:?}");
        admitted(
            &t,
            &above_cap,
            VILLAGE_A,
            "50000.00",
            "a 60,000 line capped",
        )
        .await;
        assert_invalid(
            &try_household(&t, &above_cap, VILLAGE_A, "50000.01")
                .await
                .unwrap_err(),
            "amount",
            "R-IN-3",
        );

        settle(&t, t.publish_credit_village(VILLAGE_B, true, 1).await).await;
        let cases = [
            (resident_id(313), "A", "20000.00", "24000.00", "24000.01"),
            (resident_id(314), "A", "10000.04", "12000.05", "12000.06"),
            (resident_id(315), "A", "12345.67", "14814.80", "14814.81"),
            (resident_id(316), "A", "10000.01", "12000.01", "12000.02"),
        ];
        for (r, grade, line, _, _) in &cases {
            t.rate_household(r, VILLAGE_B, grade, line, 1).await;
        }
        let mut wrong = Vec::new();
        for (r, _, line, at, above) in &cases {
            if let Err(s) = try_household(&t, r, VILLAGE_B, at).await {
                wrong.push(format!("line {line} +20%: {at} refused: {}", s.message()));
            }
            match try_household(&t, r, VILLAGE_B, above).await {
                Ok(_) => wrong.push(format!("line {line} +20%: {above} admitted")),
                Err(s) => assert_refused(&s, &["R-CR-8"]),
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");

        let aa_high = resident_id(317);
        let aaa = resident_id(318);
        t.rate_household(&aa_high, VILLAGE_B, "AA", "45000.00", 1)
            .await;
        t.rate_household(&aaa, VILLAGE_B, "AAA", "50000.00", 1)
            .await;
        admitted(&t, &aa_high, VILLAGE_B, "50000.00", "45,000 + 20% capped").await;
        admitted(&t, &aaa, VILLAGE_B, "50000.00", "AAA in a credit village").await;
        for r in [&aa_high, &aaa] {
            assert_invalid(
                &try_household(&t, r, VILLAGE_B, "50000.01")
                    .await
                    .unwrap_err(),
                "amount",
                "R-IN-3",
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-CR-3 (an effective grade of A or better and no veto), R-CR-5, R-IN-3: B and C are refused
/// even when the event carries a line the amount is within (only R-CR-3 named, no R-CR-8); A
/// at its line is admitted; AAA with a veto is refused. A newer B followed by an older AAA
/// (lower sequence, delivered late) stays B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grades_below_a_and_vetoes_refuse_whatever_the_line() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (b, c, a, vetoed, late) = (
            resident_id(321),
            resident_id(322),
            resident_id(323),
            resident_id(324),
            resident_id(325),
        );
        t.rate_household(&b, VILLAGE_A, "B", "20000.00", 1).await;
        t.rate_household(&c, VILLAGE_A, "C", "", 1).await;
        t.rate_household(&a, VILLAGE_A, "A", "20000.00", 1).await;
        let id = t
            .publish_rating_effective(
                &vetoed,
                VILLAGE_A,
                "AAA",
                "50000.00",
                true,
                "2024-01-01",
                "2027-12-31",
                1,
            )
            .await;
        settle(&t, id).await;
        refused(&t, &b, VILLAGE_A, "1000", &["R-CR-3"], "grade B").await;
        refused(&t, &c, VILLAGE_A, "1000", &["R-CR-3"], "grade C").await;
        admitted(&t, &a, VILLAGE_A, "20000", "grade A at its line").await;
        refused(&t, &vetoed, VILLAGE_A, "1000", &["R-CR-3"], "AAA vetoed").await;

        t.rate_household(&late, VILLAGE_A, "B", "", 5).await;
        t.rate_household(&late, VILLAGE_A, "AAA", "50000.00", 4)
            .await;
        refused(
            &t,
            &late,
            VILLAGE_A,
            "1000",
            &["R-CR-3"],
            "an older AAA after a newer B",
        )
        .await;
        t.rate_household(&late, VILLAGE_A, "A", "20000.00", 6).await;
        admitted(&t, &late, VILLAGE_A, "1000", "a newer A").await;
        t.shutdown().await;
    })
    .await;
}

// ---- R-X-3 / R-IN-3: amount and term as sent ----

/// R-X-3, R-IN-3, common.proto Money ("a decimal string with at most two fractional digits"):
/// "0", "-1", "1e3", " 100", "100 ", "100.", ".5", "+100", "1_000", "100.000", "0.001", a tab
/// or a line break around the digits, and no amount at all are bad input naming `amount`;
/// term 0 and 37 are bad input naming `term_months`. None of them stores anything or takes a
/// request id. "100.5" is 100.50, and term 36 is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amount_strings_and_terms_at_submission() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(331);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut accepted = Vec::new();
        for bad in [
            "0", "-1", "1e3", " 100", "100 ", "100.", ".5", "+100", "1_000", "100.000", "0.001",
            "\t100", "100\n", "0.0", "00",
        ] {
            match try_household(&t, &r, VILLAGE_A, bad).await {
                Ok(a) => accepted.push(format!("{bad:?} stored as {:?}", a.amount)),
                Err(s) => assert_bad(&s, "amount", &format!("amount {bad:?}")),
            }
        }
        assert!(accepted.is_empty(), "{accepted:#?}");
        let mut none = household_request(&r, VILLAGE_A, "1");
        none.amount = None;
        let s = err(t.as_village_staff(VILLAGE_A).submit_application(none).await);
        assert_bad(&s, "amount", "no amount");
        for term in [0, 37] {
            let mut req = household_request(&r, VILLAGE_A, "1000");
            req.term_months = term;
            let s = err(t.as_village_staff(VILLAGE_A).submit_application(req).await);
            assert_bad(&s, "term_months", &format!("term {term}"));
            if term == 37 {
                assert_invalid(&s, "term_months", "R-IN-3");
            }
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            0,
            "bad input keeps nothing with its request id"
        );

        let a = try_household(&t, &r, VILLAGE_A, "100.5")
            .await
            .expect("100.5 is money");
        assert_eq!(a.amount.unwrap().amount, "100.50");
        let mut req = household_request(&r, VILLAGE_A, "1000");
        req.term_months = 36;
        let a = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
        assert_eq!(a.term_months, 36);
        t.shutdown().await;
    })
    .await;
}

// ---- R-CR-10 / R-ID-4 / R-RK-9 ----

/// R-CR-10 (removal is an explicit decision about one entry), R-ID-4, R-IN-3: the removal of an
/// entry that was never listed blacklists nobody and lifts no other entry; removing the
/// subject's own entry admits it again. An enterprise on the blacklist is refused (R-CR-10
/// alone while qualified; with R-ID-4 once disqualified too), and only both the removal and a
/// new qualification admit it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blacklist_removals_and_enterprises_on_the_blacklist() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (clean, listed) = (resident_id(341), resident_id(342));
        t.given_credit_household(&clean, VILLAGE_A).await;
        t.given_credit_household(&listed, VILLAGE_A).await;

        settle(
            &t,
            t.publish_blacklist_removed("bl-never-listed", &clean, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        admitted(&t, &clean, VILLAGE_A, "1000", "removal of an unknown entry").await;

        settle(
            &t,
            t.publish_blacklisted("bl-342", &listed, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        refused(&t, &listed, VILLAGE_A, "1000", &["R-CR-10"], "listed").await;
        settle(
            &t,
            t.publish_blacklist_removed("bl-342-other", &listed, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        refused(
            &t,
            &listed,
            VILLAGE_A,
            "1000",
            &["R-CR-10"],
            "another entry's removal lifts nothing",
        )
        .await;
        settle(
            &t,
            t.publish_blacklist_removed("bl-342", &listed, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        admitted(&t, &listed, VILLAGE_A, "1000", "its entry removed").await;

        let code = uscc('3', 343);
        settle(&t, t.publish_enterprise_qualified(&code, true, 1).await).await;
        try_enterprise(&t, &code, TOWN_A, pb::Purpose::Processing)
            .await
            .expect("qualified, not listed");
        settle(
            &t,
            t.publish_blacklisted("bl-343", &code, ENTERPRISE_KIND)
                .await,
        )
        .await;
        let s = try_enterprise(&t, &code, TOWN_A, pb::Purpose::Processing)
            .await
            .unwrap_err();
        assert_refused(&s, &["R-CR-10"]);
        settle(&t, t.publish_enterprise_qualified(&code, false, 2).await).await;
        let s = try_enterprise(&t, &code, TOWN_A, pb::Purpose::Processing)
            .await
            .unwrap_err();
        assert_refused(&s, &["R-ID-4", "R-CR-10"]);
        settle(
            &t,
            t.publish_blacklist_removed("bl-343", &code, ENTERPRISE_KIND)
                .await,
        )
        .await;
        let s = try_enterprise(&t, &code, TOWN_A, pb::Purpose::Processing)
            .await
            .unwrap_err();
        assert_refused(&s, &["R-ID-4"]);
        settle(&t, t.publish_enterprise_qualified(&code, true, 3).await).await;
        try_enterprise(&t, &code, TOWN_A, pb::Purpose::Processing)
            .await
            .expect("removed and qualified again");
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9, R-IN-3 ("lending in its village and town not suspended"; a refusal names every
/// failure): with both the village and its town suspended, the refusal names both areas;
/// resuming the town leaves the village's suspension (only the village named); resuming the
/// village too admits. Another village of the town is refused while the town is suspended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn village_and_town_suspensions_are_each_named_and_lifted_separately() {
    bounded(120, async {
        let t = spawn_intake().await;
        let other_village = "410311101202";
        let (h, h2) = (resident_id(351), resident_id(352));
        t.given_credit_household(&h, VILLAGE_B).await;
        t.given_credit_household(&h2, other_village).await;
        settle(&t, t.publish_npl_exceeded(VILLAGE_B, 1).await).await;
        settle(&t, t.publish_npl_exceeded(TOWN_B, 1).await).await;

        let s = refused(&t, &h, VILLAGE_B, "1000", &["R-RK-9"], "both suspended").await;
        assert!(names_area(s.message(), VILLAGE_B), "{s:?}");
        assert!(names_area(s.message(), TOWN_B), "the town too: {s:?}");
        let s = refused(
            &t,
            &h2,
            other_village,
            "1000",
            &["R-RK-9"],
            "a village of the suspended town",
        )
        .await;
        assert!(names_area(s.message(), TOWN_B), "{s:?}");

        settle(&t, t.publish_lending_resumed(TOWN_B, 2).await).await;
        let s = refused(&t, &h, VILLAGE_B, "1000", &["R-RK-9"], "village still").await;
        assert!(names_area(s.message(), VILLAGE_B), "{s:?}");
        assert!(!names_area(s.message(), TOWN_B), "town resumed: {s:?}");
        admitted(&t, &h2, other_village, "1000", "town resumed").await;

        settle(&t, t.publish_lending_resumed(VILLAGE_B, 2).await).await;
        admitted(&t, &h, VILLAGE_B, "1000", "both resumed").await;
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3: a refusal names every failed rule ----

/// R-IN-3 ("a refusal names every rule that failed"): a household 17 years old, blacklisted,
/// in a suspended village, asking a fen above its line for housing without the 户借户用户还
/// declaration is refused once, naming R-CR-8 (amount), R-IN-3 (resident ID, purpose,
/// declaration), R-CR-10 and R-RK-9 (the village); nothing is stored. An enterprise never
/// qualified, blacklisted, registered in a village whose village and town are both
/// suspended, asking for housing, is refused naming R-ID-4, R-CR-10, R-RK-9 (both areas) and
/// R-IN-3 (purpose).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_names_every_failed_rule_for_households_and_enterprises() {
    bounded(120, async {
        let t = spawn_intake().await;
        let minor = resident_id_born("20080303", 361);
        t.given_credit_household(&minor, VILLAGE_A).await;
        settle(
            &t,
            t.publish_blacklisted("bl-361", &minor, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        settle(&t, t.publish_npl_exceeded(VILLAGE_A, 1).await).await;
        let mut req = household_request(&minor, VILLAGE_A, "20000.01");
        req.purpose = pb::Purpose::Housing as i32;
        if let Some(Applicant::Household(h)) = req.applicant.as_mut() {
            h.household_borrows_uses_repays = false;
        }
        let s = err(t.as_village_staff(VILLAGE_A).submit_application(req).await);
        assert_refused(&s, &["R-CR-8", "R-IN-3", "R-CR-10", "R-RK-9"]);
        for part in [
            "amount",
            "household.resident_id",
            "purpose",
            "household.household_borrows_uses_repays",
        ] {
            assert!(s.message().contains(part), "{part}: {:?}", s.message());
        }
        assert!(names_area(s.message(), VILLAGE_A), "{s:?}");

        let code = uscc('3', 362);
        let village = "410311101202";
        settle(
            &t,
            t.publish_blacklisted("bl-362", &code, ENTERPRISE_KIND)
                .await,
        )
        .await;
        settle(&t, t.publish_npl_exceeded(village, 1).await).await;
        settle(&t, t.publish_npl_exceeded(TOWN_B, 1).await).await;
        let s = try_enterprise(&t, &code, village, pb::Purpose::Housing)
            .await
            .unwrap_err();
        assert_refused(&s, &["R-ID-4", "R-CR-10", "R-RK-9", "R-IN-3"]);
        assert!(s.message().contains("purpose"), "{s:?}");
        assert!(names_area(s.message(), village), "{s:?}");
        assert!(names_area(s.message(), TOWN_B), "{s:?}");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(count(&t.pool, "select count(*) from outbox").await, 0);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3: checked again at recommendation ----

/// R-IN-3 ("checked at submission and again at recommendation"), README (against the read
/// model of that day): during the notice one household is downgraded to B and blacklisted
/// (both named; an older AAA rating redelivered afterwards changes nothing), one's rating
/// expires on the recommendation day, one's village loses credit-village status so its 24,000
/// is above the 20,000 line (R-CR-8 naming `amount`), one's village is suspended (R-RK-9
/// naming it), and one that asked 24,000 in a credit village is re-rated by the credit service
/// as a household of another village, which is no credit village (R-CR-8: "its households")
/// and is the suspended one (R-RK-9: lending suspended where the household is). Each
/// recommendation is refused and changes nothing: the application, its
/// history and the announcements stay as they were. Once the facts are back, a new request
/// recommends each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn households_are_admitted_again_at_recommendation() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (down, expiring, credit_village, suspended, moved) = (
            resident_id(371),
            resident_id(372),
            resident_id(373),
            resident_id(374),
            resident_id(375),
        );
        // Stays a credit village throughout.
        let other_credit_village = "410311101203";
        t.given_credit_household(&down, VILLAGE_A).await;
        let id = t
            .publish_rating_effective(
                &expiring,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2024-01-01",
                "2026-03-07",
                1,
            )
            .await;
        settle(&t, id).await;
        t.given_credit_household(&credit_village, VILLAGE_B).await;
        settle(&t, t.publish_credit_village(VILLAGE_B, true, 1).await).await;
        t.given_credit_household(&suspended, VILLAGE_A2).await;
        t.given_credit_household(&moved, other_credit_village).await;
        settle(
            &t,
            t.publish_credit_village(other_credit_village, true, 1)
                .await,
        )
        .await;

        let mut apps = Vec::new();
        for (r, v, amount) in [
            (&down, VILLAGE_A, "20000"),
            (&expiring, VILLAGE_A, "20000"),
            (&credit_village, VILLAGE_B, "24000"),
            (&suspended, VILLAGE_A2, "20000"),
            (&moved, other_credit_village, "24000"),
        ] {
            let a = t.submit_household(r, v, amount).await;
            apps.push(to_notice(&t, &a).await);
        }

        t.rate_household(&down, VILLAGE_A, "B", "", 2).await;
        t.rate_household(&moved, VILLAGE_A2, "A", "20000.00", 2)
            .await;
        settle(
            &t,
            t.publish_blacklisted("bl-371", &down, HOUSEHOLD_KIND).await,
        )
        .await;
        t.rate_household(&down, VILLAGE_A, "AAA", "50000.00", 1)
            .await;
        settle(&t, t.publish_credit_village(VILLAGE_B, false, 2).await).await;
        settle(&t, t.publish_npl_exceeded(VILLAGE_A2, 1).await).await;

        t.set_time("2026-03-07T09:00:00+08:00");
        let events_before = status_events(&t).await;
        let expected: [(&[&str], &[&str]); 5] = [
            (&["R-CR-3", "R-CR-10"], &[]),
            (&["R-CR-3"], &[]),
            (&["R-CR-8"], &["amount"]),
            (&["R-RK-9"], &[VILLAGE_A2]),
            (&["R-CR-8", "R-RK-9"], &["amount", VILLAGE_A2]),
        ];
        for (a, (rules, parts)) in apps.iter().zip(expected) {
            let before = snapshot(&t, &a.id).await;
            let s = t.recommend(&a.id, BANK).await.unwrap_err();
            assert_refused(&s, rules);
            for p in parts {
                assert!(s.message().contains(p), "{p} in {:?}", s.message());
            }
            assert!(
                s.message().contains("luolong-2026.1"),
                "names the policy version: {s:?}"
            );
            let after = snapshot(&t, &a.id).await;
            assert_eq!(after, before, "a refused recommendation changed nothing");
            assert_eq!(after.0.status(), pb::Status::PublicNotice);
        }
        assert_eq!(status_events(&t).await, events_before, "nothing announced");

        settle(
            &t,
            t.publish_blacklist_removed("bl-371", &down, HOUSEHOLD_KIND)
                .await,
        )
        .await;
        t.rate_household(&down, VILLAGE_A, "A", "20000.00", 3).await;
        let id = t
            .publish_rating_effective(
                &expiring,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2026-03-07",
                "2027-03-07",
                2,
            )
            .await;
        settle(&t, id).await;
        settle(&t, t.publish_credit_village(VILLAGE_B, true, 3).await).await;
        settle(&t, t.publish_lending_resumed(VILLAGE_A2, 2).await).await;
        t.rate_household(&moved, other_credit_village, "A", "20000.00", 3)
            .await;
        for a in &apps {
            let got = t
                .recommend(&a.id, BANK)
                .await
                .unwrap_or_else(|s| panic!("{} after the facts are back: {s:?}", a.id));
            assert_eq!(got.status(), pb::Status::Recommended);
        }
        assert_eq!(status_events(&t).await, events_before + apps.len());
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-3 / R-IN-6: checked again for what the bank approves ----

/// R-IN-3, R-IN-6, README ("for what the bank approves (amount and term), against the read
/// model and the policy of that day"): during the bank's step a credit village loses its
/// status, so the 24,000 its household asked for is now above the 20,000 line: approving
/// 24,000 or 20,000.01 is refused naming R-CR-8 and `approved_amount`; approving 20,000.00 is
/// accepted. A household downgraded to B and blacklisted is refused the approval naming both
/// (an older AAA delivered late changes nothing), but the bank may still reject it. A
/// household whose village is suspended is refused naming R-RK-9 and the village. Refusals
/// change nothing and announce nothing. A rejected decision shows no approved amount, rate or
/// term, even when the rejection request carried some.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_bank_approves_is_admitted_against_the_facts_of_that_day() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (cv, down, suspended) = (resident_id(381), resident_id(382), resident_id(383));
        t.given_credit_household(&cv, VILLAGE_B).await;
        settle(&t, t.publish_credit_village(VILLAGE_B, true, 1).await).await;
        t.given_credit_household(&down, VILLAGE_A).await;
        t.given_credit_household(&suspended, VILLAGE_A2).await;
        let mut apps = Vec::new();
        for (r, v, amount) in [
            (&cv, VILLAGE_B, "24000"),
            (&down, VILLAGE_A, "20000"),
            (&suspended, VILLAGE_A2, "20000"),
        ] {
            let a = t.submit_household(r, v, amount).await;
            apps.push(to_notice(&t, &a).await);
        }
        t.set_time("2026-03-07T09:00:00+08:00");
        for a in &apps {
            t.recommend(&a.id, BANK).await.expect("recommend");
        }
        let (cv_app, down_app, sus_app) = (
            apps[0].id.as_str(),
            apps[1].id.as_str(),
            apps[2].id.as_str(),
        );

        settle(&t, t.publish_credit_village(VILLAGE_B, false, 2).await).await;
        t.rate_household(&down, VILLAGE_A, "B", "", 2).await;
        settle(
            &t,
            t.publish_blacklisted("bl-382", &down, HOUSEHOLD_KIND).await,
        )
        .await;
        t.rate_household(&down, VILLAGE_A, "AAA", "50000.00", 1)
            .await;
        settle(&t, t.publish_npl_exceeded(VILLAGE_A2, 1).await).await;

        t.set_time("2026-03-09T10:00:00+08:00");
        let events_before = status_events(&t).await;
        let cases: [(&str, &str, &[&str], &[&str]); 4] = [
            (cv_app, "24000", &["R-CR-8"], &["approved_amount"]),
            (cv_app, "20000.01", &["R-CR-8"], &["approved_amount"]),
            (down_app, "20000", &["R-CR-3", "R-CR-10"], &[]),
            (sus_app, "20000", &["R-RK-9"], &[VILLAGE_A2]),
        ];
        for (id, amount, rules, parts) in cases {
            let before = snapshot(&t, id).await;
            let s = bank_approve(&t, id, amount, 12).await.unwrap_err();
            assert_refused(&s, rules);
            for p in parts {
                assert!(
                    s.message().contains(p),
                    "{amount}: {p} in {:?}",
                    s.message()
                );
            }
            let after = snapshot(&t, id).await;
            assert_eq!(
                after, before,
                "a refused approval of {amount} changed nothing"
            );
            assert_eq!(after.0.status(), pb::Status::Recommended);
            assert!(after.0.bank_decision.is_none());
        }
        assert_eq!(status_events(&t).await, events_before, "nothing announced");

        let a = bank_approve(&t, cv_app, "20000.00", 36)
            .await
            .expect("within the line of the day");
        assert_eq!(a.status(), pb::Status::BankApproved);
        let d = a.bank_decision.expect("decision");
        assert_eq!(d.approved_amount.unwrap().amount, "20000.00");
        assert_eq!(d.term_months, 36);

        // A rejection that also carries approval terms is either bad input or recorded as a
        // rejection without them: a rejected decision never shows an approved amount.
        let rejection = |with_terms: bool| pb::RecordBankDecisionRequest {
            request_id: rid(),
            application_id: down_app.to_owned(),
            approved: false,
            approved_amount: if with_terms { money("20000") } else { None },
            annual_rate: if with_terms {
                "0.0435".into()
            } else {
                String::new()
            },
            term_months: if with_terms { 12 } else { 0 },
            rejection_reason: "downgraded and blacklisted during the investigation".into(),
        };
        let rejected = match t.as_bank(BANK).record_bank_decision(rejection(true)).await {
            Ok(a) => a.into_inner(),
            Err(s) => {
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                t.as_bank(BANK)
                    .record_bank_decision(rejection(false))
                    .await
                    .expect("a rejection is no admission")
                    .into_inner()
            }
        };
        assert_eq!(rejected.status(), pb::Status::BankRejected);
        let d = rejected.bank_decision.expect("the rejection");
        assert!(!d.approved);
        assert!(
            d.approved_amount
                .as_ref()
                .is_none_or(|m| m.amount.is_empty()),
            "a rejection shows no approved amount"
        );
        assert!(d.annual_rate.is_empty() && d.term_months == 0, "{d:?}");
        assert_eq!(status_events(&t).await, events_before + 2);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 (enterprise admission: currently qualified, not blacklisted, lending not suspended),
/// R-ID-4, R-CR-10, R-RK-9, checked again at recommendation and at the bank's approval: a
/// cooperative of village A disqualified during the notice is refused the recommendation
/// (R-ID-4), recommended once qualified again, then blacklisted during the bank's step and
/// refused the approval (R-CR-10), approved once the entry is removed. An enterprise of town B
/// is refused the recommendation while town B is suspended (R-RK-9 naming it), recommended
/// after it resumes, and refused the approval once disqualified (R-ID-4). An enterprise
/// registered in village A2, filed at the district, is refused the recommendation once that
/// village is suspended (R-RK-9 naming the village). Refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprises_are_admitted_again_at_recommendation_and_approval() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (coop, firm, village_firm) = (uscc('3', 391), uscc('3', 392), uscc('3', 393));
        settle(&t, t.publish_enterprise_qualified(&coop, true, 1).await).await;
        settle(&t, t.publish_enterprise_qualified(&firm, true, 1).await).await;
        settle(
            &t,
            t.publish_enterprise_qualified(&village_firm, true, 1).await,
        )
        .await;
        let v = try_enterprise(&t, &village_firm, VILLAGE_A2, pb::Purpose::Processing)
            .await
            .expect("firm of village A2");
        let v = to_notice(&t, &v).await;
        let c = submit(
            &mut t.as_village_staff(VILLAGE_A),
            enterprise_request(&coop, VILLAGE_A, "300000"),
        )
        .await;
        let c = to_notice(&t, &c).await;
        let f = try_enterprise(&t, &firm, TOWN_B, pb::Purpose::Processing)
            .await
            .expect("firm of town B");
        let f = to_notice(&t, &f).await;

        settle(&t, t.publish_enterprise_qualified(&coop, false, 2).await).await;
        settle(&t, t.publish_npl_exceeded(TOWN_B, 1).await).await;
        settle(&t, t.publish_npl_exceeded(VILLAGE_A2, 1).await).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        let before = snapshot(&t, &v.id).await;
        let s = refused_move(&["R-RK-9"], t.recommend(&v.id, BANK).await.unwrap_err());
        assert!(names_area(s.message(), VILLAGE_A2), "{s:?}");
        assert_eq!(snapshot(&t, &v.id).await, before);
        let before = snapshot(&t, &c.id).await;
        refused_move(&["R-ID-4"], t.recommend(&c.id, BANK).await.unwrap_err());
        assert_eq!(snapshot(&t, &c.id).await, before);
        let before = snapshot(&t, &f.id).await;
        let s = refused_move(&["R-RK-9"], t.recommend(&f.id, BANK).await.unwrap_err());
        assert!(names_area(s.message(), TOWN_B), "{s:?}");
        assert_eq!(snapshot(&t, &f.id).await, before);

        settle(&t, t.publish_enterprise_qualified(&coop, true, 3).await).await;
        settle(&t, t.publish_lending_resumed(TOWN_B, 2).await).await;
        t.recommend(&c.id, BANK).await.expect("coop requalified");
        t.recommend(&f.id, BANK).await.expect("town B resumed");

        settle(
            &t,
            t.publish_blacklisted("bl-391", &coop, ENTERPRISE_KIND)
                .await,
        )
        .await;
        settle(&t, t.publish_enterprise_qualified(&firm, false, 2).await).await;
        t.set_time("2026-03-09T10:00:00+08:00");
        let before = snapshot(&t, &c.id).await;
        refused_move(
            &["R-CR-10"],
            bank_approve(&t, &c.id, "300000", 24).await.unwrap_err(),
        );
        assert_eq!(snapshot(&t, &c.id).await, before);
        let before = snapshot(&t, &f.id).await;
        refused_move(
            &["R-ID-4"],
            bank_approve(&t, &f.id, "300000", 24).await.unwrap_err(),
        );
        assert_eq!(snapshot(&t, &f.id).await, before);

        settle(
            &t,
            t.publish_blacklist_removed("bl-391", &coop, ENTERPRISE_KIND)
                .await,
        )
        .await;
        let a = bank_approve(&t, &c.id, "300000", 24)
            .await
            .expect("entry removed");
        assert_eq!(a.status(), pb::Status::BankApproved);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: decision and disbursement ----

/// R-IN-6, R-IN-3, README ("admission is checked three times": submission, recommendation,
/// approval; "the disbursement is at most the approved amount"): a request of 12,345.67 is
/// approved for exactly that (a fen more is bad input naming `approved_amount`). The borrower
/// turns 66 after the approval; the disbursement is no fourth admission and goes through. An
/// instalment owing neither principal nor interest is bad input naming a schedule field;
/// quarterly interest with all principal at maturity (the term's last day) is accepted, and
/// amounts sent without two decimals ("0", "134.3") are recorded and announced in
/// `LoanDisbursed` as decimal strings with two ("0.00", "134.30"), with the approved amount,
/// rate and term.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_fen_approval_and_an_interest_only_disbursement_after_a_66th_birthday() {
    bounded(150, async {
        let t = spawn_intake().await;
        // 65 on 2026-03-02 and at the approval on 03-07; 66 on 03-09.
        let r = resident_id_born("19600309", 401);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "12345.67").await;
        to_notice(&t, &app).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommend at 65");
        let s = bank_approve(&t, &app.id, "12345.68", 12).await.unwrap_err();
        assert_invalid(&s, "approved_amount", "R-IN-6");
        let a = bank_approve(&t, &app.id, "12345.67", 12)
            .await
            .expect("exactly the requested amount");
        assert_eq!(
            a.bank_decision.unwrap().approved_amount.unwrap().amount,
            "12345.67"
        );

        t.set_time("2026-03-10T10:00:00+08:00");
        let mut bank = t.as_bank(BANK);
        let quarterly = vec![
            instalment("2026-06-10", "0", "134.3"),
            instalment("2026-09-10", "0", "134.3"),
            instalment("2026-12-10", "0", "134.3"),
            instalment("2027-03-10", "12345.67", "134.3"),
        ];
        let req = |schedule: Vec<pb::Instalment>| pb::RecordDisbursementRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            loan_account_number: "6228-4801-0000-0401".into(),
            amount: money("12345.67"),
            disbursed_on: "2026-03-10".into(),
            schedule,
        };
        let mut owes_nothing = quarterly.clone();
        owes_nothing[1].interest = money("0");
        let s = err(bank.record_disbursement(req(owes_nothing)).await);
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(
            s.message().starts_with("schedule") && s.message().contains("[R-IN-6]"),
            "names a schedule field and R-IN-6: {s:?}"
        );
        assert_eq!(
            t.get_as(&mut bank, &app.id).await.unwrap().status(),
            pb::Status::BankApproved
        );

        let d = bank
            .record_disbursement(req(quarterly))
            .await
            .expect("interest quarterly, principal at maturity, borrower now 66")
            .into_inner();
        assert_eq!(d.status(), pb::Status::Disbursed);
        let info = d.disbursement.expect("disbursement");
        assert_eq!(info.amount.unwrap().amount, "12345.67");
        let shown: Vec<(String, String, String)> = info
            .schedule
            .iter()
            .map(|i| {
                (
                    i.due_on.clone(),
                    i.principal.clone().unwrap_or_default().amount,
                    i.interest.clone().unwrap_or_default().amount,
                )
            })
            .collect();
        let expected: Vec<(String, String, String)> = [
            ("2026-06-10", "0.00"),
            ("2026-09-10", "0.00"),
            ("2026-12-10", "0.00"),
            ("2027-03-10", "12345.67"),
        ]
        .iter()
        .map(|(d, p)| ((*d).to_owned(), (*p).to_owned(), "134.30".to_owned()))
        .collect();
        assert_eq!(shown, expected);

        let events = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(events.len(), 1);
        let e: pb::LoanDisbursed = events[0].decode();
        assert_eq!(e.application_id, app.id);
        assert_eq!(e.borrower_id, r);
        assert_eq!(e.amount, "12345.67");
        assert_eq!(e.annual_rate, "0.0435");
        assert_eq!(e.term_months, 12);
        assert_eq!(e.disbursed_on, "2026-03-10");
        assert_eq!(e.bank_id, BANK);
        assert_eq!(e.village_code, VILLAGE_A);
        assert_eq!(e.town_code, TOWN_A);
        let announced: Vec<(String, String, String)> = e
            .schedule
            .iter()
            .map(|i| {
                (
                    i.due_on.clone(),
                    i.principal.clone().unwrap_or_default().amount,
                    i.interest.clone().unwrap_or_default().amount,
                )
            })
            .collect();
        assert_eq!(announced, expected);
        t.shutdown().await;
    })
    .await;
}
