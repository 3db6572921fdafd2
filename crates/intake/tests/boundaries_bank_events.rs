//! Boundary tests of the partner-bank API (R-IN-6), of complaint assignment and answers
//! (R-IN-7), and of the events intake publishes (ApplicationSubmitted, ApplicationStatusChanged,
//! ApplicationStepOverdue, ComplaintOverdue, LoanDisbursed) with what risk control needs from a
//! disbursement (R-RK-1, R-RK-9, R-DS-1) and their CloudEvents headers (ARCHITECTURE "Events"),
//! driven over gRPC as a black box.
//!
//! Unless a test moves it, the clock starts on Monday 2026-03-02 09:00 China time; a notice
//! started that day ends on Friday 03-06 and recommendation is possible from Saturday 03-07.

mod common;

use std::collections::HashSet;

use chrono::DateTime;
use common::*;
use fupin_proto::{
    common::v1::PageRequest,
    intake::v1::{self as pb, submit_application_request::Applicant},
};
use prost::Name;
use tonic::{Code, Status};

// ---- helpers ----

/// Credit households `ns` of village A apply for `amount` (term 12) on 2026-03-02, pass the
/// three tiers and the notice, and are recommended to BANK on Saturday 2026-03-07 09:00; the
/// clock stays there.
async fn recommended(t: &TestIntake, ns: &[u32], amount: &str) -> Vec<pb::Application> {
    t.set_time(DEFAULT_NOW);
    let mut apps = Vec::new();
    for n in ns {
        let r = resident_id(*n);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, amount).await;
        t.approve_to_notice(&a).await;
        apps.push(a);
    }
    t.set_time("2026-03-07T09:00:00+08:00");
    let mut out = Vec::new();
    for a in apps {
        out.push(t.recommend(&a.id, BANK).await.expect("recommend"));
    }
    out
}

fn reject_req(id: &str, reason: &str) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        approved: false,
        approved_amount: None,
        annual_rate: String::new(),
        term_months: 0,
        rejection_reason: reason.to_owned(),
    }
}

async fn approve(
    bank: &mut Client,
    id: &str,
    amount: &str,
    rate: &str,
    term: u32,
) -> pb::Application {
    bank.record_bank_decision(approve_req(id, amount, rate, term))
        .await
        .unwrap_or_else(|s| panic!("approve {amount} at {rate} for {term} months: {s:?}"))
        .into_inner()
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// `n` monthly instalments after `on` (YYYY-MM-DD), on the same day of the month or the
/// month's last day when it has no such day, summing to `total_fen`.
fn monthly(on: &str, n: u32, total_fen: i64, interest: &str) -> Vec<pb::Instalment> {
    let start = day(on);
    let each = total_fen / i64::from(n);
    (1..=n)
        .map(|i| {
            let due = start
                .checked_add_months(chrono::Months::new(i))
                .expect("a date");
            let fen = if i == n {
                total_fen - each * i64::from(n - 1)
            } else {
                each
            };
            pb::Instalment {
                due_on: due.to_string(),
                principal: money(&yuan(fen)),
                interest: money(interest),
            }
        })
        .collect()
}

fn disburse_req(
    id: &str,
    account: &str,
    amount: &str,
    on: &str,
    schedule: Vec<pb::Instalment>,
) -> pb::RecordDisbursementRequest {
    pb::RecordDisbursementRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        loan_account_number: account.to_owned(),
        amount: money(amount),
        disbursed_on: on.to_owned(),
        schedule,
    }
}

async fn transitions(c: &mut Client, id: &str) -> Vec<pb::Transition> {
    c.list_transitions(pb::ListTransitionsRequest {
        application_id: id.to_owned(),
        page: Some(PageRequest {
            page_size: 200,
            page_token: String::new(),
        }),
    })
    .await
    .expect("list transitions")
    .into_inner()
    .transitions
}

async fn status_changes(t: &TestIntake) -> Vec<(Event, pb::ApplicationStatusChanged)> {
    t.intake_events(&pb::ApplicationStatusChanged::full_name())
        .await
        .into_iter()
        .map(|e| {
            let d = e.decode();
            (e, d)
        })
        .collect()
}

/// Two RFC 3339 instants at most `ms` milliseconds apart (the service's clock, once set, runs
/// on; a response shows milliseconds, ce-time microseconds).
fn within_ms(a: &str, b: &str, ms: i64) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => (a - b).num_milliseconds().abs() <= ms,
        _ => false,
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    within_ms(a, b, 1)
}

fn objection_req(id: &str, content: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        objector: "村民 赵某".into(),
        content: content.to_owned(),
    }
}

/// An enterprise or cooperative application (`kind`) registered in `area`, term 24.
fn organisation_request(
    kind: pb::ApplicantKind,
    code: &str,
    area: &str,
    amount: &str,
) -> pb::SubmitApplicationRequest {
    let mut r = enterprise_request(code, area, amount);
    r.kind = kind as i32;
    if let Some(Applicant::Enterprise(e)) = r.applicant.as_mut() {
        e.name = match kind {
            pb::ApplicantKind::Cooperative => "洛龙区牡丹种植合作社".into(),
            _ => "洛阳牡丹食品有限公司".into(),
        };
    }
    r
}

// ---- R-IN-2: a bank never reviews ----

/// R-IN-2 (README "Who before what"), R-IN-8: a bank calling ReviewApplication on an
/// application recommended to it is denied by its role, before its expected version is
/// compared (a stale one is not ABORTED) and whatever the decision; nothing is kept, so the
/// same request id is denied again after the bank's decision moved the state on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bank_is_denied_a_review_by_its_role() {
    bounded(90, async {
        let t = spawn_intake().await;
        let apps = recommended(&t, &[830], "20000").await;
        let id = apps[0].id.clone();
        let mut bank = t.as_bank(BANK);
        let stale = pb::ReviewApplicationRequest {
            expected_version: 1,
            ..review_req(&id, pb::Decision::Reject, "not ours")
        };
        let s = err(bank.review_application(stale.clone()).await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        assert!(s.message().contains("[R-IN-2]"), "names the rule: {s:?}");
        bank.record_bank_decision(approve_req(&id, "20000", "0.0435", 12))
            .await
            .expect("approve");
        let s = err(bank.review_application(stale.clone()).await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from idempotency_keys where request_id = $1",
                &[&stale.request_id],
            )
            .await,
            0
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: the bank's decision ----

/// R-IN-6, R-X-3: the approved amount is money with at most 2 decimals, above 0 and at most the
/// requested amount: a fen (0.01) is an approval; 3 decimals (even 20000.000), a sign, an
/// exponent or a comma are bad input naming `approved_amount` and change nothing; a loan of
/// 0.01 is disbursed and announced as 0.01.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_amounts_at_a_fen_and_with_three_decimals() {
    bounded(120, async {
        let t = spawn_intake().await;
        let apps = recommended(&t, &[801], "20000").await;
        let id = apps[0].id.clone();
        let mut bank = t.as_bank(BANK);
        for bad in [
            "0.00",
            "0.001",
            "19999.999",
            "20000.000",
            "-0.01",
            "+100",
            "1e4",
            "100,00",
            " 100",
            "20000.01",
        ] {
            let s = err(bank
                .record_bank_decision(approve_req(&id, bad, "0.0435", 12))
                .await);
            assert_eq!(s.code(), Code::InvalidArgument, "{bad:?}: {s:?}");
            assert_invalid(&s, "approved_amount", "R-IN-6");
        }
        let a = t.get_as(&mut bank, &id).await.unwrap();
        assert_eq!(a.status(), pb::Status::Recommended, "nothing changed");
        assert!(a.bank_decision.is_none());
        assert_eq!(
            status_changes(&t).await.len(),
            4,
            "village, town, district, recommend: no event for a refused decision"
        );

        let a = approve(&mut bank, &id, "0.01", "0.0435", 12).await;
        assert_eq!(a.status(), pb::Status::BankApproved);
        assert_eq!(
            a.bank_decision.unwrap().approved_amount.unwrap().amount,
            "0.01"
        );

        t.set_time("2026-03-09T10:00:00+08:00");
        let s = err(bank
            .record_disbursement(disburse_req(
                &id,
                "6228480100000801",
                "0.02",
                "2026-03-09",
                monthly("2026-03-09", 1, 2, "0.00"),
            ))
            .await);
        assert_invalid(&s, "amount", "R-IN-6");
        let d = bank
            .record_disbursement(disburse_req(
                &id,
                "6228480100000801",
                "0.01",
                "2026-03-09",
                monthly("2026-03-09", 1, 1, "0.00"),
            ))
            .await
            .expect("a loan of one fen")
            .into_inner();
        assert_eq!(d.status(), pb::Status::Disbursed);
        let events = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(events.len(), 1);
        let e: pb::LoanDisbursed = events[0].decode();
        assert_eq!(e.amount, "0.01");
        assert_eq!(e.schedule.len(), 1);
        assert_eq!(e.schedule[0].principal.as_ref().unwrap().amount, "0.01");
        assert_eq!(e.schedule[0].due_on, "2026-04-09");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6, R-X-3, R-X-4: the annual rate is a decimal fraction with at most 6 decimals within
/// the policy's plausible range, both ends included (shipped from 2026-12-04: 0.01 to 0.24): 0,
/// 1, negatives, 7 decimals, percentages, commas, spaces, NaN and exponents are bad input
/// naming `annual_rate`, and so are a monthly rate (0.003625), a percentage divided by 100
/// twice (0.000435) and rates a millionth outside the range; 0.01 and 0.24 are accepted, and
/// trailing zeros carry no precision (0.0435000 is recorded as 0.0435). A monthly rate
/// approved in March, before the range, stays as recorded, and its loan can still be paid out
/// with the interest its real rate gives (the schedule's ceiling takes the range's top for a
/// recorded rate outside it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn annual_rates_at_their_bounds() {
    bounded(120, async {
        let t = spawn_intake().await;
        let apps = recommended(&t, &[811, 812, 813, 814], "20000").await;
        let mut bank = t.as_bank(BANK);
        let before = approve(&mut bank, &apps[3].id, "18000", "0.003625", 12).await;
        assert_eq!(before.bank_decision.unwrap().annual_rate, "0.003625");
        t.set_time("2026-12-07T09:00:00+08:00");
        for bad in [
            "0",
            "0.000000",
            "1",
            "1.000000",
            "-0.0435",
            "0.0000001",
            "4.35%",
            "0,0435",
            "0.0435 ",
            " 0.0435",
            "NaN",
            "abc",
            "0.003625",
            "0.000435",
            "0.009999",
            "0.240001",
            "0.99",
        ] {
            let s = err(bank
                .record_bank_decision(approve_req(&apps[0].id, "18000", bad, 12))
                .await);
            assert_eq!(s.code(), Code::InvalidArgument, "{bad:?}: {s:?}");
            assert_invalid(&s, "annual_rate", "R-IN-6");
        }
        assert_eq!(
            t.get_as(&mut bank, &apps[0].id).await.unwrap().status(),
            pb::Status::Recommended
        );
        for (a, rate, shown) in [
            (&apps[0], "0.010000", "0.01"),
            (&apps[1], "0.24", "0.24"),
            (&apps[2], "0.0435000", "0.0435"),
        ] {
            let got = approve(&mut bank, &a.id, "18000", rate, 12).await;
            assert_eq!(got.bank_decision.unwrap().annual_rate, shown, "{rate}");
        }
        // 65.25 a month is 4.35% a year on 18,000: far above what 0.003625 a year would owe.
        let paid = bank
            .record_disbursement(disburse_req(
                &apps[3].id,
                "6228-0000-0814",
                "18000.00",
                "2026-12-07",
                monthly("2026-12-07", 12, 1_800_000, "65.25"),
            ))
            .await
            .expect("the loan of an approval recorded before the range is paid out")
            .into_inner();
        assert_eq!(paid.status(), pb::Status::Disbursed);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6, R-X-3 (and kernel money's "no amount is ever silently rounded or reinterpreted"):
/// a rate string that is not a plain decimal fraction — digits grouped with underscores, an
/// exponent, or more decimals than can be kept — is bad input naming `annual_rate`, never
/// recorded as some other rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rates_that_are_not_plain_decimals_are_bad_input() {
    bounded(120, async {
        let t = spawn_intake().await;
        let bad = [
            "0.04_35",
            "1e-2",
            "4.35e-2",
            // 0.0435 plus 1e-31: more decimals than a rate can hold.
            "0.0435000000000000000000000000001",
        ];
        let apps = recommended(&t, &[816, 817, 818, 819], "20000").await;
        let mut bank = t.as_bank(BANK);
        let mut accepted = Vec::new();
        for (rate, a) in bad.iter().zip(&apps) {
            match bank
                .record_bank_decision(approve_req(&a.id, "18000", rate, 12))
                .await
            {
                Err(s) => assert_invalid(&s, "annual_rate", "R-IN-6"),
                Ok(got) => accepted.push(format!(
                    "{rate:?} recorded as {:?}",
                    got.into_inner().bank_decision.unwrap().annual_rate
                )),
            }
        }
        assert!(accepted.is_empty(), "{accepted:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-IN-6: the approved term is 1 to 36 months for a household (1 and 36 accepted,
/// u32::MAX bad input) and up to the enterprise limit (policy 36) for a cooperative, whose
/// approval may take a longer term than it asked for and exactly the requested amount, but not
/// 37 months or a fen more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_terms_for_households_and_cooperatives() {
    bounded(120, async {
        let t = spawn_intake().await;
        let code = uscc('3', 821);
        let q = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&q).await;
        let coop = submit(
            &mut t.as_village_staff(VILLAGE_A),
            organisation_request(pb::ApplicantKind::Cooperative, &code, VILLAGE_A, "300000"),
        )
        .await;
        t.approve_to_notice(&coop).await;
        let apps = recommended(&t, &[822, 823, 824], "20000").await;
        t.recommend(&coop.id, BANK).await.expect("recommend coop");
        let mut bank = t.as_bank(BANK);

        let s = err(bank
            .record_bank_decision(approve_req(&apps[2].id, "18000", "0.0435", u32::MAX))
            .await);
        assert_invalid(&s, "term_months", "R-IN-3");
        let a = approve(&mut bank, &apps[0].id, "18000", "0.0435", 1).await;
        assert_eq!(a.bank_decision.unwrap().term_months, 1);
        let a = approve(&mut bank, &apps[1].id, "18000", "0.0435", 36).await;
        assert_eq!(a.bank_decision.unwrap().term_months, 36);

        let s = err(bank
            .record_bank_decision(approve_req(&coop.id, "300000", "0.0435", 37))
            .await);
        assert_invalid(&s, "term_months", "R-IN-3");
        let s = err(bank
            .record_bank_decision(approve_req(&coop.id, "300000.01", "0.0435", 24))
            .await);
        assert_invalid(&s, "approved_amount", "R-IN-6");
        let a = approve(&mut bank, &coop.id, "300000.00", "0.0435", 36).await;
        assert_eq!(a.status(), pb::Status::BankApproved);
        let d = a.bank_decision.unwrap();
        assert_eq!(d.term_months, 36);
        assert_eq!(d.approved_amount.unwrap().amount, "300000.00");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6, R-IN-2: a rejection needs a reason of at most 2,000 characters (counted as
/// characters, not bytes) without invisible formatting characters; it is recorded trimmed and
/// announced with that reason. A decided application takes no second decision either way and
/// a rejected one no disbursement (R-IN-6, nothing changes). The bank cannot decide what was
/// not recommended to it (not found), nor an id that is not one (bad input).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejections_and_second_decisions() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(830);
        t.given_credit_household(&r, VILLAGE_A).await;
        let noticed = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&noticed).await;
        let apps = recommended(&t, &[831, 832], "20000").await;
        let (a1, a2) = (apps[0].id.clone(), apps[1].id.clone());
        let mut bank = t.as_bank(BANK);

        let s = err(bank
            .record_bank_decision(reject_req(&noticed.id, "no land"))
            .await);
        assert_eq!(s.code(), Code::NotFound, "not recommended yet: {s:?}");
        let s = err(bank
            .record_bank_decision(approve_req(&noticed.id, "18000", "0.0435", 12))
            .await);
        assert_eq!(s.code(), Code::NotFound, "not recommended yet: {s:?}");
        let s = err(bank
            .record_bank_decision(reject_req(
                "0190f3a0-0000-7000-8000-000000000000",
                "no land",
            ))
            .await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        let s = err(bank
            .record_bank_decision(reject_req("not-a-uuid", "no land"))
            .await);
        assert_invalid(&s, "application_id", "R-X-3");

        let long = "拒".repeat(2000);
        for (what, reason) in [
            ("2,001 characters", "拒".repeat(2001)),
            ("a bidirectional override", "no land\u{202E}dnal on".into()),
            ("a bell", "no land\u{7}".into()),
            ("empty", String::new()),
        ] {
            let s = err(bank.record_bank_decision(reject_req(&a1, &reason)).await);
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert_invalid(&s, "rejection_reason", "R-IN-6");
        }
        let rejected = bank
            .record_bank_decision(reject_req(&a1, &format!("  {long}\n")))
            .await
            .expect("2,000 characters (6,000 bytes) with surrounding blanks")
            .into_inner();
        assert_eq!(rejected.status(), pb::Status::BankRejected);
        let d = rejected.bank_decision.clone().unwrap();
        assert!(!d.approved);
        assert_eq!(d.rejection_reason, long);
        assert!(!d.decided_at.is_empty());
        assert_eq!(rejected.step_due_on, "", "no step pending");

        let changes = status_changes(&t).await;
        let (_, last) = changes.last().unwrap();
        assert_eq!(last.application_id, a1);
        assert_eq!(last.from_status(), pb::Status::Recommended);
        assert_eq!(last.to_status(), pb::Status::BankRejected);
        assert_eq!(last.action, "bank_reject");
        assert_eq!(last.reason, long);
        assert_eq!(
            last.bank_decision.as_ref(),
            Some(&d),
            "the rejection, on its move's event as on the application"
        );

        // Decided: neither a second rejection nor an approval, and no disbursement.
        let s = err(bank.record_bank_decision(reject_req(&a1, "again")).await);
        assert_refused(&s, &["R-IN-6"]);
        let s = err(bank
            .record_bank_decision(approve_req(&a1, "18000", "0.0435", 12))
            .await);
        assert_refused(&s, &["R-IN-6"]);
        t.set_time("2026-03-09T09:00:00+08:00");
        let s = err(bank
            .record_disbursement(disburse_req(
                &a1,
                "6228480100000831",
                "18000.00",
                "2026-03-09",
                monthly("2026-03-09", 12, 1_800_000, "65.25"),
            ))
            .await);
        assert_refused(&s, &["R-IN-6"]);
        let got = t.get_as(&mut bank, &a1).await.unwrap();
        assert_eq!(got.status(), pb::Status::BankRejected);
        assert_eq!(got.bank_decision.unwrap().rejection_reason, long);
        assert!(got.disbursement.is_none());

        // Approved, then a rejection is refused and changes nothing.
        approve(&mut bank, &a2, "18000", "0.0435", 12).await;
        let s = err(bank
            .record_bank_decision(reject_req(&a2, "changed our mind"))
            .await);
        assert_refused(&s, &["R-IN-6"]);
        let got = t.get_as(&mut bank, &a2).await.unwrap();
        assert_eq!(got.status(), pb::Status::BankApproved);
        assert!(got.bank_decision.unwrap().approved);
        let bank_moves = status_changes(&t)
            .await
            .into_iter()
            .filter(|(_, c)| c.action.starts_with("bank_"))
            .count();
        assert_eq!(bank_moves, 2, "one decision each");
        assert!(
            t.intake_events(&pb::LoanDisbursed::full_name())
                .await
                .is_empty()
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6, R-X-2: an approval and a rejection sent at once for one application end in exactly
/// one decision; four disbursements with different request ids sent at once end in exactly one
/// disbursement, one `LoanDisbursed` and one `disburse` transition, the others refused (R-IN-6).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_and_disbursements_take_effect_once() {
    bounded(120, async {
        let t = spawn_intake().await;
        let apps = recommended(&t, &[841, 842], "20000").await;
        let (raced, id) = (apps[0].id.clone(), apps[1].id.clone());
        let bank = t.as_bank(BANK);

        let mut a = bank.clone();
        let mut b = bank.clone();
        let approve_it = approve_req(&raced, "18000", "0.0435", 12);
        let reject_it = reject_req(&raced, "no land");
        let (ra, rb) = tokio::join!(
            async move { a.record_bank_decision(approve_it).await },
            async move { b.record_bank_decision(reject_it).await }
        );
        let outcomes = [ra.map(|r| r.into_inner()), rb.map(|r| r.into_inner())];
        let ok: Vec<&pb::Application> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 1, "{outcomes:?}");
        for r in &outcomes {
            if let Err(s) = r {
                assert_refused(s, &["R-IN-6"]);
            }
        }
        let got = t.get_as(&mut t.as_bank(BANK), &raced).await.unwrap();
        assert_eq!(got.status(), ok[0].status(), "the winner is what is stored");
        let raced_history = transitions(&mut t.as_district_staff(), &raced).await;
        assert_eq!(
            raced_history
                .iter()
                .filter(|tr| tr.action.starts_with("bank_"))
                .count(),
            1
        );

        approve(&mut bank.clone(), &id, "18000", "0.0435", 12).await;
        t.set_time("2026-03-09T09:00:00+08:00");
        let calls = (0..4).map(|i| {
            let mut c = bank.clone();
            let req = disburse_req(
                &id,
                &format!("62284801000008{i}"),
                "18000.00",
                "2026-03-09",
                monthly("2026-03-09", 12, 1_800_000, "65.25"),
            );
            tokio::spawn(async move { c.record_disbursement(req).await })
        });
        let results: Vec<Result<pb::Application, Status>> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("task").map(|r| r.into_inner()))
            .collect();
        let done: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(done.len(), 1, "{results:?}");
        for r in &results {
            if let Err(s) = r {
                assert_refused(s, &["R-IN-6"]);
            }
        }
        let info = done[0].disbursement.clone().unwrap();
        let loans = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(loans.len(), 1, "{loans:?}");
        let e: pb::LoanDisbursed = loans[0].decode();
        assert_eq!(e.loan_id, info.loan_id);
        assert_eq!(e.loan_account_number, info.loan_account_number);
        let got = t.get_as(&mut t.as_bank(BANK), &id).await.unwrap();
        assert_eq!(got.disbursement.unwrap(), info);
        let history = transitions(&mut t.as_district_staff(), &id).await;
        assert_eq!(
            history.iter().filter(|tr| tr.action == "disburse").count(),
            1
        );
        assert_eq!(
            history
                .iter()
                .filter(|tr| tr.action.starts_with("bank_"))
                .count(),
            1
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6 ("the partner bank lists the applications recommended to it (and only those)") with
/// two partner banks (a policy naming both): each bank lists, decides and disburses only what
/// was recommended to it — the other's application is not found for a decision, a disbursement
/// or a read — and each `LoanDisbursed` names the bank that lent. District staff see the
/// decision and the disbursement of either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_partner_banks_act_only_on_their_own_recommendations() {
    bounded(120, async {
        let t = spawn_intake_with_two_banks().await;
        t.set_time(DEFAULT_NOW);
        let mut apps = Vec::new();
        for n in [891, 892] {
            let r = resident_id(n);
            t.given_credit_household(&r, VILLAGE_A).await;
            let a = t.submit_household(&r, VILLAGE_A, "20000").await;
            t.approve_to_notice(&a).await;
            apps.push(a.id);
        }
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&apps[0], BANK).await.expect("to ABC");
        t.recommend(&apps[1], OTHER_BANK).await.expect("to ICBC");
        let mut abc = t.as_bank(BANK);
        let mut icbc = t.as_bank(OTHER_BANK);
        for (c, own) in [(&mut abc, &apps[0]), (&mut icbc, &apps[1])] {
            let listed: Vec<String> = c
                .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
                .await
                .expect("listing")
                .into_inner()
                .applications
                .into_iter()
                .map(|a| a.id)
                .collect();
            assert_eq!(&listed, std::slice::from_ref(own));
        }
        let s = err(icbc
            .record_bank_decision(approve_req(&apps[0], "18000", "0.0435", 12))
            .await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        assert_eq!(
            t.get_as(&mut icbc, &apps[0]).await.unwrap_err().code(),
            Code::NotFound
        );
        approve(&mut icbc, &apps[1], "18000", "0.0450", 12).await;
        approve(&mut abc, &apps[0], "20000", "0.0435", 12).await;
        t.set_time("2026-03-09T09:00:00+08:00");
        let schedule = monthly("2026-03-09", 12, 1_800_000, "67.50");
        let s = err(abc
            .record_disbursement(disburse_req(
                &apps[1],
                "6228480100000892",
                "18000.00",
                "2026-03-09",
                schedule.clone(),
            ))
            .await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        icbc.record_disbursement(disburse_req(
            &apps[1],
            "6222-0204-0000-0892",
            "18000.00",
            "2026-03-09",
            schedule,
        ))
        .await
        .expect("ICBC disburses its own");
        abc.record_disbursement(disburse_req(
            &apps[0],
            "6228-4801-0000-0891",
            "20000.00",
            "2026-03-09",
            monthly("2026-03-09", 12, 2_000_000, "72.50"),
        ))
        .await
        .expect("ABC disburses its own");
        let loans: Vec<pb::LoanDisbursed> = t
            .intake_events(&pb::LoanDisbursed::full_name())
            .await
            .iter()
            .map(Event::decode)
            .collect();
        let by_app: Vec<(&str, &str, &str)> = loans
            .iter()
            .map(|l| {
                (
                    l.application_id.as_str(),
                    l.bank_id.as_str(),
                    l.annual_rate.as_str(),
                )
            })
            .collect();
        assert_eq!(
            by_app,
            vec![
                (apps[1].as_str(), OTHER_BANK, "0.045"),
                (apps[0].as_str(), BANK, "0.0435")
            ]
        );
        let seen = t
            .get_as(&mut t.as_district_staff(), &apps[1])
            .await
            .unwrap();
        assert_eq!(seen.bank_id, OTHER_BANK);
        assert_eq!(seen.status(), pb::Status::Disbursed);
        assert!(seen.bank_decision.is_some_and(|d| d.approved));
        assert_eq!(
            seen.disbursement.unwrap().loan_account_number,
            "6222-0204-0000-0892"
        );
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: the disbursement ----

/// R-IN-6: the schedule's principal adds up to the disbursed amount exactly (a fen more is
/// bad input, as is a negative instalment offset by a larger one); due dates strictly increase
/// (two on one day are refused) and end by the term's end counted in calendar months (from
/// 03-31, 11 months end on 2027-02-28: that day is accepted, 03-01 refused); interest is money
/// (negative or 3 decimals refused; omitted is 0.00); the loan account number is 1 to 64
/// letters, digits or '-'. A second disbursement is refused and nothing is announced twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disbursement_schedule_and_account_boundaries() {
    bounded(120, async {
        let t = spawn_intake().await;
        let apps = recommended(&t, &[851], "20000").await;
        let id = apps[0].id.clone();
        let mut bank = t.as_bank(BANK);
        approve(&mut bank, &id, "20000", "0.0435", 11).await;
        t.set_time("2026-03-31T15:00:00+08:00");
        let on = "2026-03-31";
        let good = monthly(on, 11, 2_000_000, "72.50");
        assert_eq!(good[0].due_on, "2026-04-30");
        assert_eq!(good[10].due_on, "2027-02-28");
        let account64 = format!("ABC-{}", "0123456789".repeat(6));
        assert_eq!(account64.len(), 64);
        let ok = || disburse_req(&id, "6228-4801-0000-0851", "20000.00", on, good.clone());

        let mut plus_fen = ok();
        plus_fen.schedule[10].principal = money(&yuan(181_820 + 1));
        assert_eq!(good[10].principal.as_ref().unwrap().amount, "1818.20");
        let mut negative_offset = ok();
        negative_offset.schedule[0].principal = money("-100.00");
        negative_offset.schedule[1].principal = money("3736.36");
        let mut same_day = ok();
        same_day.schedule[1].due_on = same_day.schedule[0].due_on.clone();
        let mut after_term = ok();
        after_term.schedule[10].due_on = "2027-03-01".into();
        let mut not_a_day = ok();
        not_a_day.schedule[0].due_on = "2026-04-31".into();
        let mut negative_interest = ok();
        negative_interest.schedule[3].interest = money("-1.00");
        let mut fine_interest = ok();
        fine_interest.schedule[3].interest = money("72.505");
        let mut no_principal = ok();
        no_principal.schedule[5].principal = None;
        let cases: Vec<(&str, pb::RecordDisbursementRequest, &str)> = vec![
            ("principal a fen more", plus_fen, "schedule.principal"),
            (
                "a negative instalment offset by a larger one",
                negative_offset,
                "schedule.principal",
            ),
            ("two instalments on one day", same_day, "schedule.due_on"),
            ("a day after the term's end", after_term, "schedule.due_on"),
            ("2026-04-31", not_a_day, "schedule.due_on"),
            ("negative interest", negative_interest, "schedule.interest"),
            (
                "interest with 3 decimals",
                fine_interest,
                "schedule.interest",
            ),
            (
                "an instalment without principal",
                no_principal,
                "schedule.principal",
            ),
            (
                "account of 65 characters",
                pb::RecordDisbursementRequest {
                    loan_account_number: format!("{account64}9"),
                    ..ok()
                },
                "loan_account_number",
            ),
            (
                "account with an underscore",
                pb::RecordDisbursementRequest {
                    loan_account_number: "6228_4801".into(),
                    ..ok()
                },
                "loan_account_number",
            ),
            (
                "account in full-width digits",
                pb::RecordDisbursementRequest {
                    loan_account_number: "６２２８４８０１".into(),
                    ..ok()
                },
                "loan_account_number",
            ),
            (
                "no account",
                pb::RecordDisbursementRequest {
                    loan_account_number: "  ".into(),
                    ..ok()
                },
                "loan_account_number",
            ),
            (
                "amount with 3 decimals",
                pb::RecordDisbursementRequest {
                    amount: money("20000.000"),
                    ..ok()
                },
                "amount",
            ),
            (
                "no amount",
                pb::RecordDisbursementRequest {
                    amount: None,
                    ..ok()
                },
                "amount",
            ),
            (
                "a timestamp for a day",
                pb::RecordDisbursementRequest {
                    disbursed_on: "2026-03-31T00:00:00+08:00".into(),
                    ..ok()
                },
                "disbursed_on",
            ),
            (
                "no day",
                pb::RecordDisbursementRequest {
                    disbursed_on: String::new(),
                    ..ok()
                },
                "disbursed_on",
            ),
        ];
        for (what, req, field) in cases {
            let s = match bank.record_disbursement(req).await {
                Ok(a) => panic!("{what}: accepted {:?}", a.into_inner().disbursement),
                Err(s) => s,
            };
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert_invalid(&s, field, "R-IN-6");
            // R-X-3: an instalment's own error says which one (the schedule as sent, from 0).
            let instalment = match what {
                "a negative instalment offset by a larger one" | "2026-04-31" => Some(0),
                "two instalments on one day" => Some(1),
                "negative interest" | "interest with 3 decimals" => Some(3),
                "an instalment without principal" => Some(5),
                "a day after the term's end" => Some(10),
                // The sum is the whole schedule's, not one instalment's.
                "principal a fen more" => None,
                _ if field.starts_with("schedule") => panic!("{what}: which instalment?"),
                _ => None,
            };
            if let Some(i) = instalment {
                assert!(
                    s.message().contains(&format!("schedule[{i}]:")),
                    "{what}: {s:?}"
                );
            }
        }
        let got = t.get_as(&mut bank, &id).await.unwrap();
        assert_eq!(got.status(), pb::Status::BankApproved, "nothing changed");
        assert!(got.disbursement.is_none());
        assert!(
            t.intake_events(&pb::LoanDisbursed::full_name())
                .await
                .is_empty()
        );

        // 64 characters, the last instalment on the term's last day, one without interest.
        let mut req = pb::RecordDisbursementRequest {
            loan_account_number: account64.clone(),
            ..ok()
        };
        req.schedule[0].interest = None;
        let d = bank
            .record_disbursement(req.clone())
            .await
            .expect("disbursed")
            .into_inner();
        assert_eq!(d.status(), pb::Status::Disbursed);
        let info = d.disbursement.unwrap();
        assert_eq!(info.loan_account_number, account64);
        assert_eq!(info.schedule.len(), 11);
        assert_eq!(info.schedule[0].interest.as_ref().unwrap().amount, "0.00");
        assert_eq!(info.schedule[10].due_on, "2027-02-28");

        let s = err(bank
            .record_disbursement(pb::RecordDisbursementRequest {
                request_id: rid(),
                ..req
            })
            .await);
        assert_refused(&s, &["R-IN-6"]);
        let loans = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(loans.len(), 1);
        let e: pb::LoanDisbursed = loans[0].decode();
        assert_eq!(e.loan_account_number, account64);
        assert_eq!(e.schedule, info.schedule);
        assert_eq!(e.term_months, 11);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6 / R-RK-1 / R-DS-1: what LoanDisbursed tells the other services ----

/// R-IN-6 ("disbursement is announced to the other services"), R-RK-1 (borrower, village,
/// town, bank, amount, term, rate, schedule), R-RK-9 (the town of an enterprise registered at
/// town level), R-DS-1 (cooperative or enterprise, for supervision), R-X-4: a cooperative of
/// village A and an enterprise of town A (filed at the district) are disbursed; each
/// `LoanDisbursed` carries the borrower's USCC and name, its kind, village and town, the bank,
/// the account, the disbursed amount, the approved rate and term (not the requested term),
/// the day, the schedule, the purpose and the policy version of the bank's decision (a policy
/// version that took effect after the recommendation), with CloudEvents headers naming the
/// application. A USCC filed in lower case is announced in upper case (how risk control and
/// rating key the borrower). `ApplicationSubmitted` of the town-level enterprise names its town.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loan_disbursed_carries_what_risk_control_and_supervision_need() {
    bounded(150, async {
        let t = spawn_intake_with_policy_versions(&policy_version(
            "luolong-2026.2",
            "2026-03-08",
            &["bank_decision_days = 12"],
        ))
        .await;
        let coop_code = uscc('3', 861);
        let firm_code = uscc('1', 862);
        for (i, c) in [&coop_code, &firm_code].into_iter().enumerate() {
            let q = t.publish_enterprise_qualified(c, true, 1 + i as u64).await;
            t.wait_applied(&q).await;
        }
        let coop = submit(
            &mut t.as_village_staff(VILLAGE_A),
            // Filed with the USCC in lower case: announced in its canonical upper case.
            organisation_request(
                pb::ApplicantKind::Cooperative,
                &coop_code.to_lowercase(),
                VILLAGE_A,
                "600000",
            ),
        )
        .await;
        t.approve_to_notice(&coop).await;
        let firm = submit(
            &mut t.as_district_staff(),
            organisation_request(pb::ApplicantKind::Enterprise, &firm_code, TOWN_A, "1000000"),
        )
        .await;
        assert_eq!(firm.status(), pb::Status::DistrictReview);
        assert_eq!(firm.village_code, "");
        assert_eq!(firm.town_code, TOWN_A);
        let a = review(
            &mut t.as_district_staff(),
            &firm.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(a.status(), pb::Status::PublicNotice);

        let submitted = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        assert_eq!(submitted.len(), 2);
        let s: pb::ApplicationSubmitted = submitted[1].decode();
        assert_eq!(s.application_id, firm.id);
        assert_eq!(s.kind(), pb::ApplicantKind::Enterprise);
        assert_eq!(s.village_code, "");
        assert_eq!(s.town_code, TOWN_A);
        assert_eq!(s.area_code, TOWN_A);
        assert_eq!(s.amount, "1000000.00");
        assert_eq!(s.term_months, 24);
        assert_eq!(
            s.status(),
            pb::Status::DistrictReview,
            "filed at the district"
        );
        assert!(same_instant(&s.submitted_at, &firm.submitted_at));
        assert_cloudevent(
            &submitted[1],
            &pb::ApplicationSubmitted::full_name(),
            &firm.id,
        );

        t.set_time("2026-03-07T09:00:00+08:00");
        for id in [&coop.id, &firm.id] {
            t.recommend(id, BANK).await.expect("recommend");
        }
        t.set_time("2026-03-09T10:00:00+08:00");
        let mut bank = t.as_bank(BANK);
        approve(&mut bank, &coop.id, "550000", "0.0385000", 36).await;
        approve(&mut bank, &firm.id, "1000000.00", "0.0435", 30).await;
        t.set_time("2026-03-10T10:00:00+08:00");
        let coop_schedule = monthly("2026-03-10", 36, 55_000_000, "1764.58");
        let firm_schedule = monthly("2026-03-09", 30, 100_000_000, "3625.00");
        let coop_d = bank
            .record_disbursement(disburse_req(
                &coop.id,
                "6228-4801-0000-0861",
                "550000.00",
                "2026-03-10",
                coop_schedule.clone(),
            ))
            .await
            .expect("coop disbursed")
            .into_inner();
        let firm_d = bank
            .record_disbursement(disburse_req(
                &firm.id,
                "6228-4801-0000-0862",
                "1000000.00",
                "2026-03-09",
                firm_schedule.clone(),
            ))
            .await
            .expect("enterprise disbursed")
            .into_inner();

        let events = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(events.len(), 2, "{events:?}");
        for e in &events {
            let about = e.header("ce-subject").unwrap_or_default().to_owned();
            assert_cloudevent(e, &pb::LoanDisbursed::full_name(), &about);
            let time = e.header("ce-time").unwrap();
            assert!(
                within_ms(time, "2026-03-10T10:00:00+08:00", 5_000),
                "ce-time is when it happened: {time}"
            );
        }
        let c: pb::LoanDisbursed = events[0].decode();
        let f: pb::LoanDisbursed = events[1].decode();
        assert_eq!(events[0].header("ce-subject"), Some(coop.id.as_str()));
        assert_eq!(events[1].header("ce-subject"), Some(firm.id.as_str()));

        let coop_info = coop_d.disbursement.unwrap();
        assert_eq!(c.loan_id, coop_info.loan_id);
        assert_eq!(c.application_id, coop.id);
        assert_eq!(c.kind(), pb::ApplicantKind::Cooperative, "R-DS-1");
        assert_eq!(c.borrower_id, coop_code);
        assert_eq!(c.borrower_name, "洛龙区牡丹种植合作社");
        assert_eq!(c.village_code, VILLAGE_A);
        assert_eq!(c.town_code, TOWN_A);
        assert_eq!(c.area_code, VILLAGE_A);
        assert_eq!(c.bank_id, BANK);
        assert_eq!(c.loan_account_number, "6228-4801-0000-0861");
        assert_eq!(c.amount, "550000.00");
        assert_eq!(c.annual_rate, "0.0385");
        assert_eq!(c.term_months, 36, "the approved term, not the requested 24");
        assert_eq!(c.disbursed_on, "2026-03-10");
        assert_eq!(c.schedule, coop_schedule);
        assert_eq!(c.purpose(), pb::Purpose::Processing);
        assert_eq!(
            c.policy_version, "luolong-2026.2",
            "R-X-4: the version the bank's decision was taken under"
        );

        let firm_info = firm_d.disbursement.unwrap();
        assert_eq!(f.loan_id, firm_info.loan_id);
        assert_ne!(f.loan_id, c.loan_id);
        assert_eq!(f.kind(), pb::ApplicantKind::Enterprise, "R-DS-1");
        assert_eq!(f.borrower_id, firm_code);
        assert_eq!(f.borrower_name, "洛阳牡丹食品有限公司");
        assert_eq!(f.village_code, "");
        assert_eq!(f.town_code, TOWN_A, "R-RK-9 needs the town");
        assert_eq!(f.area_code, TOWN_A);
        assert_eq!(f.bank_id, BANK);
        assert_eq!(f.amount, "1000000.00");
        assert_eq!(f.annual_rate, "0.0435");
        assert_eq!(f.term_months, 30);
        assert_eq!(f.disbursed_on, "2026-03-09");
        assert_eq!(f.schedule, firm_schedule);
        assert_eq!(f.policy_version, "luolong-2026.2");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-2 / R-X-2 / R-X-4: ApplicationStatusChanged ----

/// R-IN-2 ("every transition is recorded ... and can be listed"), R-X-2, R-X-4, ARCHITECTURE
/// "Events": one application's whole life — approve, return with a name correction, resubmit,
/// approve twice, two objections (the second adds no move, dismissing the first neither),
/// release, recommendation under a newer policy version, approval, disbursement — announces
/// exactly one `ApplicationStatusChanged` per recorded transition after the submission, in the
/// same order and with the same from/to/action/reason/policy version and instant, its ce-time
/// that instant and its ce-subject the application. Every event intake published has its own
/// ce-id and a traceparent. `LoanDisbursed` names the borrower and purpose as corrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_state_change_is_announced_once_in_order() {
    bounded(150, async {
        fupin_platform::testing::init_trace_context();
        let t = spawn_intake_with_policy_versions(&policy_version(
            "luolong-2026.2",
            "2026-03-07",
            &["bank_decision_days = 12"],
        ))
        .await;
        let r = resident_id(871);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        let id = app.id.clone();
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut district = t.as_district_staff();

        t.set_time("2026-03-02T09:10:00+08:00");
        review(&mut village, &id, pb::Decision::Approve, "").await;
        t.set_time("2026-03-02T10:00:00+08:00");
        review(
            &mut town,
            &id,
            pb::Decision::ReturnForCorrection,
            "  name misspelt on the form  ",
        )
        .await;
        t.set_time("2026-03-02T11:00:00+08:00");
        village
            .resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: id.clone(),
                note: "name corrected".into(),
                purpose: pb::Purpose::Breeding as i32,
                household: Some(pb::HouseholdCorrection {
                    name: "王建民".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("resubmit");
        t.set_time("2026-03-02T12:00:00+08:00");
        review(&mut town, &id, pb::Decision::Approve, "").await;
        t.set_time("2026-03-02T13:00:00+08:00");
        review(&mut district, &id, pb::Decision::Approve, "").await;
        t.set_time("2026-03-04T10:00:00+08:00");
        let o1 = district
            .file_objection(objection_req(&id, "already has a loan"))
            .await
            .expect("objection 1")
            .into_inner();
        t.set_time("2026-03-04T11:00:00+08:00");
        let o2 = town
            .file_objection(objection_req(&id, "does not farm"))
            .await
            .expect("objection 2")
            .into_inner();
        t.set_time("2026-03-05T10:00:00+08:00");
        district
            .resolve_objection(resolve_req(&o1.id, false, "no other loan found"))
            .await
            .expect("dismiss 1");
        t.set_time("2026-03-05T11:00:00+08:00");
        district
            .resolve_objection(resolve_req(&o2.id, false, "farms 3 mu of peonies"))
            .await
            .expect("dismiss 2");
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&id, BANK).await.expect("recommend");
        t.set_time("2026-03-09T09:00:00+08:00");
        let mut bank = t.as_bank(BANK);
        approve(&mut bank, &id, "20000", "0.0435", 12).await;
        t.set_time("2026-03-10T09:00:00+08:00");
        bank.record_disbursement(disburse_req(
            &id,
            "6228-4801-0000-0871",
            "20000.00",
            "2026-03-10",
            monthly("2026-03-10", 12, 2_000_000, "72.50"),
        ))
        .await
        .expect("disburse");

        use pb::Status::*;
        let (v1, v2) = ("luolong-2026.1", "luolong-2026.2");
        let held = format!("objection {}", o1.id);
        // Released by the last dismissal, named like the hold (its text is the objection's).
        let released = format!("objection {}", o2.id);
        let want: Vec<(pb::Status, pb::Status, &str, &str, &str)> = vec![
            (VillageReview, TownReview, "approve", "", v1),
            (
                TownReview,
                Returned,
                "return",
                "name misspelt on the form",
                v1,
            ),
            (Returned, TownReview, "resubmit", "name corrected", v1),
            (TownReview, DistrictReview, "approve", "", v1),
            (DistrictReview, PublicNotice, "approve", "", v1),
            (PublicNotice, OnHold, "objection", held.as_str(), v1),
            (
                OnHold,
                PublicNotice,
                "objection_dismissed",
                released.as_str(),
                v1,
            ),
            (PublicNotice, Recommended, "recommend", BANK, v2),
            (Recommended, BankApproved, "bank_approve", "", v2),
            (BankApproved, Disbursed, "disburse", "", v2),
        ];
        let history = transitions(&mut district, &id).await;
        assert_eq!(history.len(), want.len() + 1, "{history:?}");
        assert_eq!(history[0].action, "submit");
        let listed: Vec<_> = history[1..]
            .iter()
            .map(|tr| {
                (
                    tr.from_status(),
                    tr.to_status(),
                    tr.action.as_str(),
                    tr.reason.as_str(),
                    tr.policy_version.as_str(),
                )
            })
            .collect();
        assert_eq!(listed, want, "the recorded history");

        let changes = status_changes(&t).await;
        let announced: Vec<_> = changes
            .iter()
            .map(|(_, c)| {
                (
                    c.from_status(),
                    c.to_status(),
                    c.action.as_str(),
                    c.reason.as_str(),
                    c.policy_version.as_str(),
                )
            })
            .collect();
        assert_eq!(announced, want, "one event per transition, in order");
        // R-IN-6: what the bank approved, on the approval's event (the other moves have none).
        for (_, c) in &changes {
            if c.action == "bank_approve" {
                let d = c.bank_decision.as_ref().expect("the approval's terms");
                assert!(d.approved);
                assert_eq!(
                    d.approved_amount.as_ref().map(|m| m.amount.as_str()),
                    Some("20000.00")
                );
                assert_eq!((d.annual_rate.as_str(), d.term_months), ("0.0435", 12));
                assert!(same_instant(&d.decided_at, &c.at), "{d:?} at {}", c.at);
            } else {
                assert_eq!(c.bank_decision, None, "{c:?}");
            }
        }
        for ((e, c), tr) in changes.iter().zip(&history[1..]) {
            assert_cloudevent(e, &pb::ApplicationStatusChanged::full_name(), &id);
            assert_eq!(c.application_id, id);
            assert_eq!(c.area_code, VILLAGE_A);
            assert!(
                same_instant(&c.at, &tr.at),
                "{c:?} at the transition's {tr:?}"
            );
            let time = e.header("ce-time").unwrap();
            assert!(same_instant(time, &c.at), "ce-time {time} = at {}", c.at);
        }

        let loans = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(loans.len(), 1);
        let loan: pb::LoanDisbursed = loans[0].decode();
        assert_eq!(loan.borrower_name, "王建民", "the corrected name");
        assert_eq!(
            loan.purpose(),
            pb::Purpose::Breeding,
            "the corrected purpose"
        );
        assert_eq!(loan.borrower_id, r);

        let all = all_events(&t.bus, &format!("{}.intake.v1.>", t.bus.prefix)).await;
        assert_eq!(all.len(), 1 + want.len() + 1, "submitted, changes, loan");
        assert_eq!(
            all[0].header("ce-type"),
            Some(pb::ApplicationSubmitted::full_name().as_str())
        );
        let mut ids = HashSet::new();
        for e in &all {
            let ce_id = e.header("ce-id").expect("ce-id").to_owned();
            assert!(ids.insert(ce_id.clone()), "ce-id {ce_id} used twice");
            assert!(
                e.header("traceparent").is_some_and(|tp| tp.len() == 55),
                "a traceparent on {:?}",
                e.header("ce-type")
            );
            assert_eq!(e.header("ce-subject"), Some(id.as_str()));
        }
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-4: ApplicationStepOverdue ----

/// R-IN-4: an overdue step is alerted once with its step and due date, whoever scans how
/// often; a step returned and resubmitted starts again with its own deadline and, when that
/// passes too, its own alert (step Village, the new due date); a bank step is alerted with
/// STEP_BANK and its due date, and a decision after it raises nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn step_overdue_alerts_carry_the_step_and_due_date_once_per_step_entry() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(881);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        assert_eq!(app.step_due_on, "2026-03-05");
        let mut village = t.as_village_staff(VILLAGE_A);

        t.set_time("2026-03-06T00:00:30+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        t.set_time("2026-03-06T09:00:00+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        review(
            &mut village,
            &app.id,
            pb::Decision::ReturnForCorrection,
            "phone number missing",
        )
        .await;
        assert_eq!(
            scan(&t).await.newly_overdue,
            0,
            "a returned one has no step"
        );
        let again = village
            .resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: app.id.clone(),
                note: "phone added".into(),
                ..Default::default()
            })
            .await
            .expect("resubmit")
            .into_inner();
        assert_eq!(again.current_step(), pb::Step::Village);
        // Friday 03-06 + 3 working days.
        assert_eq!(again.step_due_on, "2026-03-11");
        assert!(!again.overdue);
        t.set_time("2026-03-11T23:59:00+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 0);
        t.set_time("2026-03-12T08:00:00+08:00");
        assert_eq!(scan(&t).await.newly_overdue, 1);
        assert_eq!(scan(&t).await.newly_overdue, 0);

        let alerts = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let got: Vec<(pb::Step, String, String)> = alerts
            .iter()
            .map(|e| {
                assert_cloudevent(e, &pb::ApplicationStepOverdue::full_name(), &app.id);
                let a: pb::ApplicationStepOverdue = e.decode();
                assert_eq!(a.application_id, app.id);
                assert_eq!(a.area_code, VILLAGE_A);
                (a.step(), a.due_on, a.detected_on)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    pb::Step::Village,
                    "2026-03-05".to_owned(),
                    "2026-03-06".to_owned()
                ),
                (
                    pb::Step::Village,
                    "2026-03-11".to_owned(),
                    "2026-03-12".to_owned()
                ),
            ]
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4 ("a step past its deadline raises an overdue alert once"): a village step due
/// Thursday 03-05 that the village approves late, on Friday 03-06, was past its deadline; the
/// alert must not depend on a scan having run while the step was still pending. The next scan
/// raises one `ApplicationStepOverdue` for the village step (due 03-05), and only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_completed_late_before_any_scan_is_still_alerted() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(885);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        assert_eq!(app.step_due_on, "2026-03-05");
        t.set_time("2026-03-06T09:00:00+08:00");
        let late = t
            .get_as(&mut t.as_town_staff(TOWN_A), &app.id)
            .await
            .unwrap();
        assert!(late.overdue, "past its deadline");
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        scan(&t).await;
        scan(&t).await;
        let alerts = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await;
        let got: Vec<(pb::Step, String)> = alerts
            .iter()
            .map(|e| {
                let a: pb::ApplicationStepOverdue = e.decode();
                (a.step(), a.due_on)
            })
            .collect();
        assert_eq!(
            got,
            vec![(pb::Step::Village, "2026-03-05".to_owned())],
            "the late village step is alerted once"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4, R-IN-7 ("raises an overdue alert once"), R-X-2: three deadline scans run at once
/// over six overdue steps and six late complaints raise exactly six `ApplicationStepOverdue`
/// and six `ComplaintOverdue`, one per application and complaint, and the scans' counts add up
/// to six each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_alert_each_step_and_complaint_once() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut apps = HashSet::new();
        let mut complaints = HashSet::new();
        let mut village = t.as_village_staff(VILLAGE_A);
        for n in 0..6 {
            let r = resident_id(900 + n);
            t.given_credit_household(&r, VILLAGE_A).await;
            apps.insert(t.submit_household(&r, VILLAGE_A, "10000").await.id);
            let c = village
                .lodge_complaint(lodge_req(VILLAGE_A, &format!("complaint {n}")))
                .await
                .expect("lodge")
                .into_inner();
            complaints.insert(c.id);
        }
        t.set_time("2026-03-17T09:00:00+08:00");
        let scans = (0..3).map(|_| {
            let mut c = t.as_operator();
            tokio::spawn(async move {
                c.run_deadline_scan(pb::RunDeadlineScanRequest { request_id: rid() })
                    .await
            })
        });
        let (mut steps, mut late) = (0, 0);
        for r in futures::future::join_all(scans).await {
            let r = r.expect("task").expect("scan").into_inner();
            steps += r.newly_overdue;
            late += r.complaints_flagged;
        }
        assert_eq!((steps, late), (6, 6));
        let alerted: Vec<String> = t
            .intake_events(&pb::ApplicationStepOverdue::full_name())
            .await
            .iter()
            .map(|e| e.decode::<pb::ApplicationStepOverdue>().application_id)
            .collect();
        assert_eq!(alerted.len(), 6, "{alerted:?}");
        assert_eq!(alerted.into_iter().collect::<HashSet<_>>(), apps);
        let flagged: Vec<String> = t
            .intake_events(&pb::ComplaintOverdue::full_name())
            .await
            .iter()
            .map(|e| e.decode::<pb::ComplaintOverdue>().complaint_id)
            .collect();
        assert_eq!(flagged.len(), 6, "{flagged:?}");
        assert_eq!(flagged.into_iter().collect::<HashSet<_>>(), complaints);
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-7: complaints ----

/// R-IN-7: a complaint is assigned to an organisation over its area: the district cannot send a
/// village A complaint to another town, another village, a village that does not exist, or a
/// malformed or empty code. Reassignment moves who answers (the district, then village A); the
/// previous assignee can no longer answer; once answered it can be neither reassigned nor
/// answered again. A late complaint is flagged once (`ComplaintOverdue` with its area and due
/// day); reassigning it does not flag it again; it may still be answered late, which takes it
/// out of the late listing and clears `overdue`. Assigning it again to the organisation that
/// holds it records no second assignment. Who may act is decided before what they sent
/// (README "Who before what"): a bank or another town's station lodging one without content
/// is denied; another town's station assigning with a malformed code, or
/// answering with a blank answer, is told the complaint is not found; a village department
/// assigning is denied, whatever code it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complaint_assignment_reassignment_and_late_answers() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut other_town = t.as_town_staff(TOWN_B);
        let mut district = t.as_district_staff();
        let c1 = village
            .lodge_complaint(lodge_req(VILLAGE_A, "the officer asked for a fee"))
            .await
            .expect("lodge")
            .into_inner();
        assert_eq!(c1.due_on, "2026-03-16");
        // Lodged without content: by a bank, or by another town's station for village A, it
        // is denied, not bad input.
        let blank = lodge_req(VILLAGE_A, " ");
        let s = err(t.as_bank(BANK).lodge_complaint(blank.clone()).await);
        assert_eq!(s.code(), Code::PermissionDenied, "a bank: {s:?}");
        assert!(s.message().contains("[R-IN-7]"), "names the rule: {s:?}");
        let s = err(other_town.lodge_complaint(blank.clone()).await);
        assert_eq!(
            s.code(),
            Code::PermissionDenied,
            "another town's station: {s:?}"
        );
        let s = err(village.lodge_complaint(blank).await);
        assert_invalid(&s, "content", "R-IN-7");
        let s = err(other_town
            .assign_complaint(assign_req(&c1.id, "4103111"))
            .await);
        assert_eq!(s.code(), Code::NotFound, "another town's station: {s:?}");
        let s = err(other_town.answer_complaint(answer_req(&c1.id, " ")).await);
        assert_eq!(s.code(), Code::NotFound, "another town's station: {s:?}");
        let s = err(village.assign_complaint(assign_req(&c1.id, "")).await);
        assert_eq!(
            s.code(),
            Code::PermissionDenied,
            "a village department: {s:?}"
        );

        for (what, org) in [
            ("another town", TOWN_B),
            ("another town's village", VILLAGE_B),
            ("another village of the town", VILLAGE_A2),
            ("a village that does not exist", "410311100299"),
            ("a malformed code", "4103111"),
            ("no code", ""),
        ] {
            let s = err(district.assign_complaint(assign_req(&c1.id, org)).await);
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert_invalid(&s, "organisation_area_code", "R-IN-7");
        }
        let got = district
            .assign_complaint(assign_req(&c1.id, DISTRICT))
            .await
            .expect("assign to the district center")
            .into_inner();
        assert_eq!(got.assigned_to, DISTRICT);
        let again = district
            .assign_complaint(assign_req(&c1.id, DISTRICT))
            .await
            .expect("assign to the district center again")
            .into_inner();
        assert_eq!(again, got, "nothing changed");
        let assignments: i64 = sqlx::query_scalar(
            "select count(*) from complaint_assignments where complaint_id = $1::uuid",
        )
        .bind(&c1.id)
        .fetch_one(&t.pool)
        .await
        .expect("assignments");
        assert_eq!(assignments, 1, "one assignment recorded");
        let s = err(village.answer_complaint(answer_req(&c1.id, "done")).await);
        assert_eq!(
            s.code(),
            Code::PermissionDenied,
            "assigned elsewhere: {s:?}"
        );
        let got = district
            .assign_complaint(assign_req(&c1.id, VILLAGE_A))
            .await
            .expect("reassign to the village department")
            .into_inner();
        assert_eq!(got.assigned_to, VILLAGE_A);
        let s = err(district.answer_complaint(answer_req(&c1.id, "done")).await);
        assert_eq!(
            s.code(),
            Code::PermissionDenied,
            "no longer the assignee: {s:?}"
        );
        let answered = village
            .answer_complaint(answer_req(&c1.id, "  no fee is due  "))
            .await
            .expect("answer")
            .into_inner();
        assert_eq!(answered.answer, "no fee is due");
        let s = err(town.assign_complaint(assign_req(&c1.id, TOWN_A)).await);
        assert_refused(&s, &["R-IN-7"]);
        let s = err(village.answer_complaint(answer_req(&c1.id, "again")).await);
        assert_refused(&s, &["R-IN-7"]);

        // A late one: due Monday 03-16, late from Tuesday 03-17.
        let c2 = village
            .lodge_complaint(lodge_req(VILLAGE_A, "notice board not updated"))
            .await
            .expect("lodge")
            .into_inner();
        town.assign_complaint(assign_req(&c2.id, TOWN_A))
            .await
            .expect("assign");
        t.set_time("2026-03-17T08:00:00+08:00");
        let r = scan(&t).await;
        assert_eq!(r.complaints_flagged, 1);
        town.assign_complaint(assign_req(&c2.id, VILLAGE_A))
            .await
            .expect("reassign a late complaint");
        assert_eq!(scan(&t).await.complaints_flagged, 0, "flagged once");
        let late = village
            .answer_complaint(answer_req(&c2.id, "board updated"))
            .await
            .expect("a late answer is still an answer")
            .into_inner();
        assert!(!late.overdue);
        assert!(!late.answered_at.is_empty());
        let listed = town
            .list_complaints(pb::ListComplaintsRequest {
                page: None,
                unanswered_past_deadline_only: true,
            })
            .await
            .unwrap()
            .into_inner()
            .complaints;
        assert!(listed.is_empty(), "{listed:?}");
        assert_eq!(scan(&t).await.complaints_flagged, 0);

        let flagged = t.intake_events(&pb::ComplaintOverdue::full_name()).await;
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert_cloudevent(&flagged[0], &pb::ComplaintOverdue::full_name(), &c2.id);
        let e: pb::ComplaintOverdue = flagged[0].decode();
        assert_eq!(
            (
                e.complaint_id.as_str(),
                e.area_code.as_str(),
                e.due_on.as_str()
            ),
            (c2.id.as_str(), VILLAGE_A, "2026-03-16")
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-7, R-X-3 paging: the late-only listing, paged one by one, holds exactly the unanswered
/// complaints past their deadline (not the answered ones, not the one lodged later and not yet
/// due), each once, with no next token on the last page; a district-level complaint assigned
/// to the district is listed to the district and not to the town.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_complaints_are_paged_exactly() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut town = t.as_town_staff(TOWN_A);
        let mut district = t.as_district_staff();
        let mut all = Vec::new();
        for i in 0..5 {
            let c = village
                .lodge_complaint(lodge_req(VILLAGE_A, &format!("complaint {i}")))
                .await
                .expect("lodge")
                .into_inner();
            town.assign_complaint(assign_req(&c.id, VILLAGE_A))
                .await
                .expect("assign");
            all.push(c.id);
        }
        for id in [&all[1], &all[3]] {
            village
                .answer_complaint(answer_req(id, "answered"))
                .await
                .expect("answer");
        }
        let own = district
            .lodge_complaint(lodge_req(DISTRICT, "the center's phone is never answered"))
            .await
            .expect("district-level complaint")
            .into_inner();
        district
            .assign_complaint(assign_req(&own.id, DISTRICT))
            .await
            .expect("assign to itself");
        t.set_time("2026-03-16T09:00:00+08:00");
        let fresh = village
            .lodge_complaint(lodge_req(VILLAGE_A, "not yet due"))
            .await
            .expect("lodge")
            .into_inner();
        t.set_time("2026-03-17T09:00:00+08:00");

        let page = |c: &mut Client, token: String| {
            let mut c = c.clone();
            async move {
                c.list_complaints(pb::ListComplaintsRequest {
                    page: Some(PageRequest {
                        page_size: 1,
                        page_token: token,
                    }),
                    unanswered_past_deadline_only: true,
                })
                .await
                .expect("page")
                .into_inner()
            }
        };
        for (who, c, want) in [
            (
                "town",
                &mut town,
                vec![all[0].clone(), all[2].clone(), all[4].clone()],
            ),
            (
                "district",
                &mut district,
                vec![
                    all[0].clone(),
                    all[2].clone(),
                    all[4].clone(),
                    own.id.clone(),
                ],
            ),
        ] {
            let mut seen = Vec::new();
            let mut token = String::new();
            for _ in 0..10 {
                let p = page(c, token.clone()).await;
                assert!(p.complaints.len() <= 1);
                for cp in &p.complaints {
                    assert!(cp.overdue, "{who}: {cp:?}");
                    seen.push(cp.id.clone());
                }
                token = p.page.map(|p| p.next_page_token).unwrap_or_default();
                if token.is_empty() {
                    break;
                }
            }
            let mut want = want;
            want.sort();
            assert_eq!(seen, want, "{who}");
            assert!(!seen.contains(&fresh.id));
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6 (feeding R-RK-1): a bank books one loan per loan account number. Risk control
/// mirrors each loan and the bank reports repayments against its account number, so a second
/// disbursement of the same bank on a number that already holds a loan is refused
/// (`ALREADY_EXISTS` naming `loan_account_number`, the rule and the loan's application) and
/// changes nothing; it is not kept with the request id, and the corrected number goes through.
/// Two disbursements racing on one number: exactly one is booked. Another bank may use the
/// same number for its own loan.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loan_account_number_is_booked_once_per_bank() {
    bounded(120, async {
        let t = spawn_intake_with_two_banks().await;
        t.set_time(DEFAULT_NOW);
        let mut ids = Vec::new();
        for n in [931, 932, 933, 934, 935] {
            let r = resident_id(n);
            t.given_credit_household(&r, VILLAGE_A).await;
            let a = t.submit_household(&r, VILLAGE_A, "12000").await;
            t.approve_to_notice(&a).await;
            ids.push(a.id);
        }
        t.set_time("2026-03-07T09:00:00+08:00");
        for id in &ids[..4] {
            t.recommend(id, BANK).await.expect("to ABC");
        }
        t.recommend(&ids[4], OTHER_BANK).await.expect("to ICBC");
        let mut abc = t.as_bank(BANK);
        let mut icbc = t.as_bank(OTHER_BANK);
        for id in &ids[..4] {
            approve(&mut abc, id, "12000", "0.0435", 12).await;
        }
        approve(&mut icbc, &ids[4], "12000", "0.0435", 12).await;
        let schedule = || monthly("2026-03-07", 12, 1_200_000, "40.00");
        let req =
            |id: &str, account: &str| disburse_req(id, account, "12000", "2026-03-07", schedule());

        abc.record_disbursement(req(&ids[0], "6228-0001"))
            .await
            .expect("the first loan on 6228-0001");
        t.outbox_drained().await;
        let events = t.intake_events(&pb::LoanDisbursed::full_name()).await.len();
        let clash = req(&ids[1], "6228-0001");
        let s = err(abc.record_disbursement(clash.clone()).await);
        assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
        assert!(
            s.message().starts_with("loan_account_number:")
                && s.message().contains("[R-IN-6]")
                && s.message().contains(&ids[0]),
            "names the field, the rule and the loan holding the number: {s:?}"
        );
        let mut district = t.as_district_staff();
        let a = district
            .get_application(pb::GetApplicationRequest { id: ids[1].clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(a.status(), pb::Status::BankApproved);
        assert!(a.disbursement.is_none(), "{a:?}");
        // Not kept: the same request id with the corrected number books the loan.
        let corrected = pb::RecordDisbursementRequest {
            loan_account_number: "6228-0002".into(),
            ..clash
        };
        let a = abc
            .record_disbursement(corrected)
            .await
            .expect("the corrected number")
            .into_inner();
        assert_eq!(a.status(), pb::Status::Disbursed);

        // Two disbursements racing on one number.
        let (mut c1, mut c2) = (t.as_bank(BANK), t.as_bank(BANK));
        let (r1, r2) = tokio::join!(
            c1.record_disbursement(req(&ids[2], "6228-0003")),
            c2.record_disbursement(req(&ids[3], "6228-0003")),
        );
        let codes =
            [r1.map(|_| Code::Ok), r2.map(|_| Code::Ok)].map(|r| r.unwrap_or_else(|s| s.code()));
        assert!(
            codes.contains(&Code::Ok) && codes.contains(&Code::AlreadyExists),
            "one booked, one refused: {codes:?}"
        );

        // Another bank's loan may carry the same number.
        icbc.record_disbursement(req(&ids[4], "6228-0001"))
            .await
            .expect("ICBC's own 6228-0001");
        t.outbox_drained().await;
        let disbursed = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(
            disbursed.len(),
            events + 3,
            "the first, the corrected, one racer, ICBC's"
        );

        // Upgrading: a database where a bank had booked two loans on one number (before the
        // check existed) stops the migration, naming them; once corrected, it applies.
        for sql in [
            "drop index applications_bank_loan_account",
            "delete from _sqlx_migrations where version = 20261130000009",
        ] {
            sqlx::query(sql).execute(&t.pool).await.expect(sql);
        }
        let set = |id: &str, account: &str| {
            sqlx::query(
                "update applications set disbursement =
                   jsonb_set(disbursement, '{loan_account_number}', to_jsonb($2::text))
                 where id = $1::uuid",
            )
            .bind(id.to_owned())
            .bind(account.to_owned())
            .execute(&t.pool)
        };
        // As at a start: its own connection, closed after (a failed run leaves sqlx's
        // migration lock held on its connection).
        let migrate = || async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(t.pool.connect_options().as_ref().clone())
                .await
                .expect("a connection");
            let r = fupin_platform::db::migrate(&pool, &fupin_intake::MIGRATIONS).await;
            pool.close().await;
            r
        };
        set(&ids[1], "6228-0001").await.expect("an earlier clash");
        let e = migrate()
            .await
            .expect_err("the clash stops the upgrade")
            .to_string();
        assert!(
            e.contains("R-IN-6")
                && e.contains("6228-0001")
                && e.contains(&ids[0])
                && e.contains(&ids[1]),
            "names the bank's number and both applications: {e}"
        );
        set(&ids[1], "6228-0002").await.expect("corrected");
        migrate().await.expect("applies once corrected");
        let index: i64 = sqlx::query_scalar(
            "select count(*) from pg_indexes where indexname = 'applications_bank_loan_account'",
        )
        .fetch_one(&t.pool)
        .await
        .expect("the index");
        assert_eq!(index, 1);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5, R-IN-6 for subscribers: the status changes say when the public notice ends (from
/// the move into it) and which bank the application is recommended to (from the
/// recommendation), and a late bank step's alert names the bank whose decision is late, so a
/// notice board or a supervising system needs neither intake's policy nor the free-text
/// reason. Staff steps' alerts name no bank.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_name_the_notices_end_and_the_bank() {
    bounded(90, async {
        let t = spawn_intake().await; // 2026-03-02
        let r = resident_id(81);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "5000").await;
        let left = t.submit_household(&r, VILLAGE_A, "1000").await;
        let noticed = t.approve_to_notice(&a).await;
        assert!(!noticed.notice_ends_on.is_empty());
        t.set_time("2026-03-10T09:00:00+08:00");
        t.recommend(&a.id, BANK).await.expect("recommend");
        // Ten working days from 03-10 end 03-24; late from 03-25.
        t.set_time("2026-03-25T09:00:00+08:00");
        assert_eq!(
            scan(&t).await.newly_overdue,
            2,
            "the bank step and the village step"
        );
        t.outbox_drained().await;

        let changes: Vec<pb::ApplicationStatusChanged> = status_changes(&t)
            .await
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.application_id == a.id)
            .collect();
        for c in &changes {
            let noticed_yet = !matches!(
                c.to_status(),
                pb::Status::VillageReview | pb::Status::TownReview | pb::Status::DistrictReview
            );
            let recommended = c.to_status() == pb::Status::Recommended;
            assert_eq!(
                (c.notice_ends_on.as_str(), c.bank_id.as_str()),
                (
                    if noticed_yet {
                        noticed.notice_ends_on.as_str()
                    } else {
                        ""
                    },
                    if recommended { BANK } else { "" }
                ),
                "{c:?}"
            );
        }
        assert!(
            changes
                .iter()
                .any(|c| c.to_status() == pb::Status::Recommended)
        );
        let alerts: Vec<pb::ApplicationStepOverdue> = t.intake_messages().await;
        let mut alerts: Vec<(String, pb::Step, String)> = alerts
            .iter()
            .map(|e| (e.application_id.clone(), e.step(), e.bank_id.clone()))
            .collect();
        alerts.sort();
        let mut want = vec![
            (a.id.clone(), pb::Step::Bank, BANK.to_owned()),
            (left.id.clone(), pb::Step::Village, String::new()),
        ];
        want.sort();
        assert_eq!(alerts, want);
        t.shutdown().await;
    })
    .await;
}
