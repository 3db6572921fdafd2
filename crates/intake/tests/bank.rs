//! The partner-bank API (R-IN-6), played by a test as the bank's core system would: list what
//! was recommended to it (paged, filtered), record decisions and the disbursement, with every
//! bad input refused by field and rule; the disbursement is announced as `LoanDisbursed`.

mod common;

use common::*;
use fupin_proto::{
    common::v1::{DateRange, PageRequest},
    intake::v1 as pb,
};
use prost::Name;
use tonic::Code;

fn list_req(
    page_size: u32,
    token: &str,
    statuses: &[pb::Status],
    from: &str,
    to: &str,
) -> pb::ListRecommendedApplicationsRequest {
    pb::ListRecommendedApplicationsRequest {
        page: Some(PageRequest {
            page_size,
            page_token: token.to_owned(),
        }),
        statuses: statuses.iter().map(|s| *s as i32).collect(),
        recommended_on: Some(DateRange {
            from: from.to_owned(),
            to: to.to_owned(),
        }),
    }
}

async fn list(
    c: &mut Client,
    req: pb::ListRecommendedApplicationsRequest,
) -> (Vec<String>, String) {
    let r = c
        .list_recommended_applications(req)
        .await
        .unwrap_or_else(|s| panic!("bank listing: {s:?}"))
        .into_inner();
    (
        r.applications.into_iter().map(|a| a.id).collect(),
        r.page.map(|p| p.next_page_token).unwrap_or_default(),
    )
}

fn instalment(due: &str, principal: &str, interest: &str) -> pb::Instalment {
    pb::Instalment {
        due_on: due.to_owned(),
        principal: money(principal),
        interest: money(interest),
    }
}

/// Twelve monthly instalments of 1,500 from 2026-04-10 to 2027-03-10.
fn monthly_schedule() -> Vec<pb::Instalment> {
    (0..12)
        .map(|i| {
            let (y, m) = if i < 9 { (2026, 4 + i) } else { (2027, i - 8) };
            instalment(&format!("{y}-{m:02}-10"), "1500.00", "65.25")
        })
        .collect()
}

fn disbursement_req(id: &str) -> pb::RecordDisbursementRequest {
    pb::RecordDisbursementRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        loan_account_number: "6228-4801-0000-0001".into(),
        amount: money("18000.00"),
        disbursed_on: "2026-03-10".into(),
        schedule: monthly_schedule(),
    }
}

/// R-IN-6: paging, filters, decisions with validation, disbursement with a consistent
/// schedule, and the `LoanDisbursed` announcement with its CloudEvents headers (R-X-2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bank_lists_decides_and_disburses() {
    bounded(120, async {
        let t = spawn_intake().await;
        let residents = [resident_id(41), resident_id(42), resident_id(43)];
        let mut apps = Vec::new();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
            let a = t.submit_household(r, VILLAGE_A, "20000").await;
            t.approve_to_notice(&a).await;
            apps.push(a.id);
        }
        // Recommended on three consecutive days (notice ended 2026-03-06).
        for (i, id) in apps.iter().enumerate() {
            t.set_time(&format!("2026-03-0{}T09:00:00+08:00", 7 + i));
            t.recommend(id, BANK).await.expect("recommend");
        }
        t.set_time("2026-03-10T10:00:00+08:00");
        let mut bank = t.as_bank(BANK);

        // Paged one by one with the opaque token.
        let mut seen = Vec::new();
        let mut token = String::new();
        for page in 0..3 {
            let (ids, next) = list(&mut bank, list_req(1, &token, &[], "", "")).await;
            assert_eq!(ids.len(), 1, "page {page}");
            seen.extend(ids);
            if page < 2 {
                assert!(!next.is_empty(), "page {page} has a next token");
            } else {
                assert_eq!(next, "", "last page");
            }
            token = next;
        }
        assert_eq!(seen, apps);
        let s = err(bank
            .list_recommended_applications(list_req(1, "not-a-token", &[], "", ""))
            .await);
        assert_invalid(&s, "page.page_token", "R-X-3");
        let s = err(bank
            .list_recommended_applications(list_req(201, "", &[], "", ""))
            .await);
        assert_invalid(&s, "page.page_size", "R-X-3");

        // The bank sees the resident IDs it lends to, and each read is audit-logged (R-CR-11).
        let full = bank
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .applications;
        assert_eq!(
            full.iter()
                .map(|a| a.applicant_id.clone())
                .collect::<Vec<_>>(),
            residents.to_vec()
        );
        // Each shows the day it was recommended (the list's filter, the payout's earliest day).
        assert_eq!(
            full.iter()
                .map(|a| a.recommended_on.as_str())
                .collect::<Vec<_>>(),
            ["2026-03-07", "2026-03-08", "2026-03-09"]
        );
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from pii_access_log where rpc = 'ListRecommendedApplications'"
            )
            .await,
            3 + 3,
            "paged reads (3 x 1) and the full read (3)"
        );

        // Recommendation date range: half-open [from, to).
        let (ids, _) = list(&mut bank, list_req(0, "", &[], "2026-03-08", "2026-03-09")).await;
        assert_eq!(ids, vec![apps[1].clone()]);
        let (ids, _) = list(&mut bank, list_req(0, "", &[], "2026-03-08", "")).await;
        assert_eq!(ids, vec![apps[1].clone(), apps[2].clone()]);
        let (ids, _) = list(&mut bank, list_req(0, "", &[], "", "2026-03-08")).await;
        assert_eq!(ids, vec![apps[0].clone()]);
        let s = err(bank
            .list_recommended_applications(list_req(0, "", &[], "2026-02-30", ""))
            .await);
        assert_invalid(&s, "recommended_on.from", "R-IN-6");
        // An empty range is empty; a reversed one is a mistake to say so.
        let (ids, _) = list(&mut bank, list_req(0, "", &[], "2026-03-08", "2026-03-08")).await;
        assert!(ids.is_empty());
        let s = err(bank
            .list_recommended_applications(list_req(0, "", &[], "2026-03-09", "2026-03-08"))
            .await);
        assert_invalid(&s, "recommended_on.to", "R-IN-6");
        let s = err(bank
            .list_recommended_applications(list_req(0, "", &[pb::Status::VillageReview], "", ""))
            .await);
        assert_invalid(&s, "statuses", "R-IN-6");

        // ---- decisions ----
        let (a1, a2, a3) = (apps[0].clone(), apps[1].clone(), apps[2].clone());
        for (what, req, field, rule) in [
            (
                "above the requested amount",
                approve_req(&a1, "20000.01", "0.0435", 12),
                "approved_amount",
                "R-IN-6",
            ),
            (
                "zero amount",
                approve_req(&a1, "0", "0.0435", 12),
                "approved_amount",
                "R-IN-6",
            ),
            (
                "no amount",
                pb::RecordBankDecisionRequest {
                    approved_amount: None,
                    ..approve_req(&a1, "1", "0.0435", 12)
                },
                "approved_amount",
                "R-IN-6",
            ),
            (
                "rate as a percentage",
                approve_req(&a1, "18000", "4.35", 12),
                "annual_rate",
                "R-IN-6",
            ),
            (
                "no rate",
                approve_req(&a1, "18000", "", 12),
                "annual_rate",
                "R-IN-6",
            ),
            (
                "term 0",
                approve_req(&a1, "18000", "0.0435", 0),
                "term_months",
                "R-IN-3",
            ),
            (
                "term 37",
                approve_req(&a1, "18000", "0.0435", 37),
                "term_months",
                "R-IN-3",
            ),
            (
                "reject without reason",
                pb::RecordBankDecisionRequest {
                    approved: false,
                    rejection_reason: "  ".into(),
                    ..approve_req(&a3, "0", "", 0)
                },
                "rejection_reason",
                "R-IN-6",
            ),
            // The other outcome's fields are checked as it would check them (bad input is
            // refused by name whatever the outcome) and not recorded.
            (
                "rejection with a bad approval amount, rate and term",
                pb::RecordBankDecisionRequest {
                    approved: false,
                    rejection_reason: "no income".into(),
                    ..approve_req(&a3, "-5", "abc", 999)
                },
                "approved_amount",
                "R-IN-6",
            ),
            (
                "rejection with a term over the cap",
                pb::RecordBankDecisionRequest {
                    approved: false,
                    rejection_reason: "no income".into(),
                    ..approve_req(&a3, "0", "", 37)
                },
                "term_months",
                "R-IN-3",
            ),
            (
                "approval with a rejection reason in reverse text",
                pb::RecordBankDecisionRequest {
                    rejection_reason: "\u{202e}x".into(),
                    ..approve_req(&a1, "18000", "0.0435", 12)
                },
                "rejection_reason",
                "R-IN-6",
            ),
        ] {
            let s = err(bank.record_bank_decision(req).await);
            assert_invalid(&s, field, rule);
            let _ = what;
        }
        for id in &apps {
            let a = t.get_as(&mut bank, id).await.unwrap();
            assert_eq!(
                a.status(),
                pb::Status::Recommended,
                "bad decisions changed nothing"
            );
            assert!(a.bank_decision.is_none());
        }
        // Only the bank it was recommended to decides.
        let s = err(t
            .as_bank(OTHER_BANK)
            .record_bank_decision(approve_req(&a1, "18000", "0.0435", 12))
            .await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        let s = err(t
            .as_district_staff()
            .record_bank_decision(approve_req(&a1, "18000", "0.0435", 12))
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

        let approved = bank
            .record_bank_decision(approve_req(&a1, "18000", "0.0435", 12))
            .await
            .expect("approve")
            .into_inner();
        assert_eq!(approved.status(), pb::Status::BankApproved);
        let d = approved.bank_decision.as_ref().expect("decision");
        assert!(d.approved);
        assert_eq!(d.approved_amount.as_ref().unwrap().amount, "18000.00");
        assert_eq!(d.annual_rate, "0.0435");
        assert_eq!(d.term_months, 12);
        // A rejection sent with an approval's valid fields left over is a rejection: they are
        // not recorded.
        let rejected = bank
            .record_bank_decision(pb::RecordBankDecisionRequest {
                approved: false,
                rejection_reason: "field visit: no planting land under contract".into(),
                ..approve_req(&a3, "18000", "0.0435", 12)
            })
            .await
            .expect("reject")
            .into_inner();
        assert_eq!(rejected.status(), pb::Status::BankRejected);
        let d = rejected.bank_decision.unwrap();
        assert_eq!(
            d.rejection_reason,
            "field visit: no planting land under contract"
        );
        assert!(
            d.approved_amount.is_none() && d.annual_rate.is_empty() && d.term_months == 0,
            "{d:?}"
        );
        // A second decision on a decided application is refused.
        let s = err(bank
            .record_bank_decision(approve_req(&a1, "18000", "0.0435", 12))
            .await);
        assert_refused(&s, &["R-IN-6"]);

        let (ids, _) = list(
            &mut bank,
            list_req(0, "", &[pb::Status::BankApproved], "", ""),
        )
        .await;
        assert_eq!(ids, vec![a1.clone()]);
        let (ids, _) = list(
            &mut bank,
            list_req(0, "", &[pb::Status::Recommended], "", ""),
        )
        .await;
        assert_eq!(ids, vec![a2.clone()]);
        let (ids, _) = list(
            &mut bank,
            list_req(
                0,
                "",
                &[pb::Status::BankApproved, pb::Status::BankRejected],
                "",
                "",
            ),
        )
        .await;
        assert_eq!(ids, vec![a1.clone(), a3.clone()]);

        // ---- disbursement ----
        let s = err(bank.record_disbursement(disbursement_req(&a2)).await);
        assert_refused(&s, &["R-IN-6"]);

        let mut short = disbursement_req(&a1);
        short.schedule[11].principal = money("1499.99");
        let mut unordered = disbursement_req(&a1);
        unordered.schedule.swap(3, 4);
        let mut same_day = disbursement_req(&a1);
        same_day.schedule[0].due_on = "2026-03-10".into();
        let mut beyond_term = disbursement_req(&a1);
        beyond_term.schedule[11].due_on = "2027-03-11".into();
        let future = pb::RecordDisbursementRequest {
            disbursed_on: "2026-03-11".into(),
            ..disbursement_req(&a1)
        };
        let before_recommendation = pb::RecordDisbursementRequest {
            disbursed_on: "2026-03-06".into(),
            ..disbursement_req(&a1)
        };
        // A schedule that adds up, for a payout above the approval (a sum that does not add up
        // is reported first: what the request says on its own comes before the approval).
        let mut above_schedule = monthly_schedule();
        above_schedule[11] = instalment("2027-03-10", "1500.01", "65.25");
        let above_approved = pb::RecordDisbursementRequest {
            amount: money("18000.01"),
            schedule: above_schedule,
            ..disbursement_req(&a1)
        };
        let no_schedule = pb::RecordDisbursementRequest {
            schedule: vec![],
            ..disbursement_req(&a1)
        };
        let bad_account = pb::RecordDisbursementRequest {
            loan_account_number: "6228 4801".into(),
            ..disbursement_req(&a1)
        };
        let dash_account = pb::RecordDisbursementRequest {
            loan_account_number: "-".into(),
            ..disbursement_req(&a1)
        };
        // Interest worked out from 4.35 as a fraction: 100 times the schedule's.
        let interest_as_percent = pb::RecordDisbursementRequest {
            schedule: monthly_schedule()
                .into_iter()
                .map(|i| pb::Instalment {
                    interest: money("6525.00"),
                    ..i
                })
                .collect(),
            ..disbursement_req(&a1)
        };
        // The principal repaid in month 11, interest still owed in month 12.
        let mut after_repaid = monthly_schedule();
        after_repaid[10].principal = money("3000.00");
        after_repaid[11].principal = money("0");
        let after_repaid = pb::RecordDisbursementRequest {
            schedule: after_repaid,
            ..disbursement_req(&a1)
        };
        for (what, req, field) in [
            ("principal sum 17999.99", short, "schedule.principal"),
            ("due dates not increasing", unordered, "schedule.due_on"),
            (
                "first due on the disbursement day",
                same_day,
                "schedule.due_on",
            ),
            (
                "due after the 12-month term",
                beyond_term,
                "schedule.due_on",
            ),
            ("disbursed tomorrow", future, "disbursed_on"),
            (
                "disbursed before recommendation",
                before_recommendation,
                "disbursed_on",
            ),
            ("more than approved", above_approved, "amount"),
            ("no schedule", no_schedule, "schedule"),
            ("account with a space", bad_account, "loan_account_number"),
            ("account of a dash", dash_account, "loan_account_number"),
            (
                "interest 100 times the rate's",
                interest_as_percent,
                "schedule.interest",
            ),
            (
                "interest after the principal is repaid",
                after_repaid,
                "schedule.principal",
            ),
        ] {
            let s = err(bank.record_disbursement(req).await);
            assert_invalid(&s, field, "R-IN-6");
            assert_eq!(
                t.get_as(&mut bank, &a1).await.unwrap().status(),
                pb::Status::BankApproved,
                "{what} changed nothing"
            );
        }
        assert!(
            t.intake_events(&pb::LoanDisbursed::full_name())
                .await
                .is_empty()
        );

        // R-RK-10: a downgrade after the approval does not change the credit the approval was
        // judged on, which the loan's announcement carries.
        t.rate_household(&residents[0], VILLAGE_A, "C", "0", 2)
            .await;
        let req = disbursement_req(&a1);
        let req_again = req.clone();
        let disbursed = bank
            .record_disbursement(req.clone())
            .await
            .expect("disburse")
            .into_inner();
        assert_eq!(disbursed.status(), pb::Status::Disbursed);
        let info = disbursed.disbursement.clone().expect("disbursement info");
        assert_eq!(info.loan_account_number, "6228-4801-0000-0001");
        assert_eq!(info.amount.unwrap().amount, "18000.00");
        assert_eq!(info.disbursed_on, "2026-03-10");
        assert_eq!(info.schedule.len(), 12);
        assert!(uuid::Uuid::parse_str(&info.loan_id).is_ok());
        // A retry of the same request returns the first result (R-IN-8).
        let again = bank
            .record_disbursement(req)
            .await
            .expect("retry")
            .into_inner();
        assert_eq!(again, disbursed);
        // The same request id with one instalment changed is not the same request (R-IN-8):
        // refused naming the id, nothing recorded twice.
        let mut changed = req_again.clone();
        changed.schedule[0].interest = money("65.26");
        let s = err(bank.record_disbursement(changed).await);
        assert_invalid(&s, "request_id", "R-IN-8");

        // R-IN-6: the disbursement is announced to the other services, once.
        let events = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_cloudevent(&events[0], &pb::LoanDisbursed::full_name(), &a1);
        let e: pb::LoanDisbursed = events[0].decode();
        assert_eq!(e.loan_id, info.loan_id);
        assert_eq!(e.application_id, a1);
        assert_eq!(e.kind(), pb::ApplicantKind::Household);
        assert_eq!(
            e.borrower_id, residents[0],
            "risk control needs the borrower's id"
        );
        assert_eq!(e.borrower_name, "王建国");
        assert_eq!(e.village_code, VILLAGE_A);
        assert_eq!(e.town_code, TOWN_A);
        assert_eq!(e.area_code, VILLAGE_A);
        assert_eq!(e.bank_id, BANK);
        assert_eq!(e.loan_account_number, "6228-4801-0000-0001");
        assert_eq!(e.amount, "18000.00");
        assert_eq!(e.annual_rate, "0.0435");
        assert_eq!(e.term_months, 12);
        assert_eq!(e.disbursed_on, "2026-03-10");
        assert_eq!(e.purpose(), pb::Purpose::Planting);
        assert_eq!(e.policy_version, "luolong-2026.1");
        assert_eq!(e.schedule, monthly_schedule());
        // What the bank approved, the registration number (R-RK-10) and the project (R-DS).
        assert_eq!(e.approved_amount, "18000.00");
        assert_eq!(e.poor_household_number, "LL-2016-000123");
        assert_eq!(e.project_description, "peony seedlings, 3 mu");
        // The credit admission judged on at the bank's approval (R-CR-3, R-CR-8, R-RK-10).
        assert_eq!(
            (
                e.credit_grade.as_str(),
                e.credit_line.as_str(),
                e.credit_village
            ),
            ("A", "20000.00", false)
        );
        // The version of the move to DISBURSED, which it shares (R-X-2 ordering).
        assert_eq!(e.application_version, disbursed.version);

        // R-CR-11: the decision and disbursement responses showed the bank the resident ID.
        for rpc in ["RecordBankDecision", "RecordDisbursement"] {
            let n: i64 = sqlx::query_scalar(
                "select count(*) from pii_access_log where rpc = $1 and application_id = $2::uuid",
            )
            .bind(rpc)
            .bind(&a1)
            .fetch_one(&t.pool)
            .await
            .unwrap();
            assert_eq!(n, 1, "{rpc} unmasked read is audit-logged");
        }

        let (ids, _) = list(&mut bank, list_req(0, "", &[pb::Status::Disbursed], "", "")).await;
        assert_eq!(ids, vec![a1.clone()]);
        // The other bank still sees nothing.
        let (ids, _) = list(&mut t.as_bank(OTHER_BANK), list_req(0, "", &[], "", "")).await;
        assert!(ids.is_empty());
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6, R-IN-8: a bank's decision on an application not yet recommended to it is told the
/// application does not exist, and that answer is the request id's first result: retried after
/// the recommendation, the same request is answered the same and decides nothing; a new request
/// decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_sent_before_the_recommendation_stays_not_found_for_its_request_id() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(45);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&a).await;
        let mut bank = t.as_bank(BANK);
        let early = approve_req(&a.id, "18000", "0.0435", 12);
        let s = err(bank.record_bank_decision(early.clone()).await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");

        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&a.id, BANK).await.expect("recommend");
        let again = err(bank.record_bank_decision(early).await);
        assert_eq!(
            (again.code(), again.message()),
            (s.code(), s.message()),
            "the first answer is kept"
        );
        let got = t.get_as(&mut t.as_district_staff(), &a.id).await.unwrap();
        assert_eq!(got.status(), pb::Status::Recommended, "nothing decided");
        let approved = bank
            .record_bank_decision(approve_req(&a.id, "18000", "0.0435", 12))
            .await
            .expect("a new request decides")
            .into_inner();
        assert_eq!(approved.status(), pb::Status::BankApproved);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-IN-6, R-CR-10: what the bank approves is admitted once more against the read model
/// of the decision day. A household blacklisted during the bank's step is refused the approval,
/// the refusal kept with its request id (R-IN-8) even after the entry is removed; a new request
/// then approves. Objections are not the bank's to list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_is_refused_for_a_household_blacklisted_during_the_bank_step() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(44);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&a).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&a.id, BANK).await.expect("recommend");

        let entry = t.publish_blacklisted("bl-44", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&entry).await;
        let mut bank = t.as_bank(BANK);
        let req = approve_req(&a.id, "18000", "0.0435", 12);
        let s = err(bank.record_bank_decision(req.clone()).await);
        assert_refused(&s, &["R-CR-10"]);
        assert!(
            s.message().ends_with("(policy luolong-2026.1)"),
            "R-X-4: {s:?}"
        );
        let got = t.get_as(&mut t.as_district_staff(), &a.id).await.unwrap();
        assert_eq!(got.status(), pb::Status::Recommended, "nothing changed");

        let removed = t
            .publish_blacklist_removed("bl-44", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&removed).await;
        let again = err(bank.record_bank_decision(req).await);
        assert_eq!(again.message(), s.message(), "the refusal is kept");
        let s = err(bank
            .list_objections(pb::ListObjectionsRequest {
                application_id: a.id.clone(),
                page: None,
            })
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

        // The line fell to 10,000 meanwhile (R-CR-8): the refusal names the bank's field.
        let lower = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "A",
                "10000.00",
                false,
                "2024-01-01",
                "2027-12-31",
                2,
            )
            .await;
        t.wait_applied(&lower).await;
        let s = err(bank
            .record_bank_decision(approve_req(&a.id, "18000", "0.0435", 12))
            .await);
        assert_refused(&s, &["R-CR-8"]);
        assert!(s.message().starts_with("approved_amount: "), "{s:?}");
        let approved = bank
            .record_bank_decision(approve_req(&a.id, "10000", "0.0435", 12))
            .await
            .expect("approved within the line, once the entry is removed")
            .into_inner();
        assert_eq!(approved.status(), pb::Status::BankApproved);
        t.shutdown().await;
    })
    .await;
}
