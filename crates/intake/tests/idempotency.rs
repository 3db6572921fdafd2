//! Client request ids (R-IN-8): a retry with the same id returns the first result and changes
//! nothing, even when the retries race; the same id with another body is refused.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use prost::Name;

/// R-IN-8, R-X-2: 16 concurrent submissions with one request id from one caller produce one
/// application, one transition, one `ApplicationSubmitted`, and all 16 answers name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_retries_of_one_submission_create_it_once() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(51);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let req = household_request(&resident, VILLAGE_A, "12000");
        let calls = (0..16).map(|_| {
            let mut c = t.as_village_staff(VILLAGE_A);
            let req = req.clone();
            tokio::spawn(async move { c.submit_application(req).await.map(|r| r.into_inner()) })
        });
        let mut answers = Vec::new();
        for call in futures::future::join_all(calls).await {
            answers.push(call.expect("task").expect("every retry succeeds"));
        }
        let first = answers[0].clone();
        for a in &answers {
            assert_eq!(a, &first, "every retry returns the first result");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        assert_eq!(count(&t.pool, "select count(*) from transitions").await, 1);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            1
        );
        assert_eq!(
            t.intake_events(&pb::ApplicationSubmitted::full_name())
                .await
                .len(),
            1
        );

        // The same id with a different body is refused and changes nothing.
        let mut other = req.clone();
        other.amount = money("12000.01");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(other)
            .await);
        assert_invalid(&s, "request_id", "R-IN-8");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);

        // The same id from another caller is that caller's own request (here: refused, as the
        // other village may not file for this household), not a replay of the first.
        let s = err(t
            .as_village_staff(VILLAGE_A2)
            .submit_application(req.clone())
            .await);
        assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");

        // Surrounding spaces are trimmed from an id: the same request, replayed.
        for spaced in [
            format!(" {} ", req.request_id),
            format!("{}\t", req.request_id),
        ] {
            let mut r = req.clone();
            r.request_id = spaced.clone();
            let again = t
                .as_village_staff(VILLAGE_A)
                .submit_application(r)
                .await
                .unwrap_or_else(|s| panic!("{spaced:?} replays: {s:?}"))
                .into_inner();
            assert_eq!(again, first, "{spaced:?}");
        }
        let spaced = pb::ReviewApplicationRequest {
            request_id: " rv-spaced".into(),
            ..review_req(&first.id, pb::Decision::Approve, "")
        };
        let reviewed = t
            .as_village_staff(VILLAGE_A)
            .review_application(spaced.clone())
            .await
            .expect("approved")
            .into_inner();
        let again = t
            .as_village_staff(VILLAGE_A)
            .review_application(pb::ReviewApplicationRequest {
                request_id: "rv-spaced".into(),
                ..spaced
            })
            .await
            .expect("the same request, replayed")
            .into_inner();
        assert_eq!(again, reviewed);
        assert_eq!(count(&t.pool, "select count(*) from transitions").await, 2);

        // Missing or unusable request ids are refused on every write.
        for bad in ["", "   ", "has space", &"x".repeat(129)] {
            let mut r = req.clone();
            r.request_id = bad.to_owned();
            let s = err(t.as_village_staff(VILLAGE_A).submit_application(r).await);
            assert_invalid(&s, "request_id", "R-IN-8");
        }
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .review_application(pb::ReviewApplicationRequest {
                request_id: String::new(),
                ..review_req(&first.id, pb::Decision::Approve, "")
            })
            .await);
        assert_invalid(&s, "request_id", "R-IN-8");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8: retrying a review that succeeded returns the first result (same version), records
/// one transition and one event, even after the application moved on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_review_returns_the_first_result() {
    bounded(60, async {
        let t = spawn_intake().await;
        let resident = resident_id(52);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "8000").await;
        let req = review_req(&app.id, pb::Decision::Approve, "");
        let mut village = t.as_village_staff(VILLAGE_A);
        let first = village
            .review_application(req.clone())
            .await
            .expect("review")
            .into_inner();
        assert_eq!(first.status(), pb::Status::TownReview);
        assert_eq!(first.version, 2);
        let retry = village
            .review_application(req.clone())
            .await
            .expect("retry")
            .into_inner();
        assert_eq!(retry, first);

        // The town approves; a late retry of the village's review still answers the same.
        review(&mut t.as_town_staff(TOWN_A), &app.id, pb::Decision::Approve, "").await;
        let late = village
            .review_application(req.clone())
            .await
            .expect("late retry")
            .into_inner();
        assert_eq!(late, first);
        assert_eq!(late.version, 2);
        let now = t.get_as(&mut t.as_district_staff(), &app.id).await.unwrap();
        assert_eq!(now.status(), pb::Status::DistrictReview);
        assert_eq!(now.version, 3);
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from transitions where application_id = $1::uuid and from_status = 'village_review'",
                &[&app.id],
            )
            .await,
            1
        );
        let changed = t
            .intake_events(&pb::ApplicationStatusChanged::full_name())
            .await;
        assert_eq!(changed.len(), 2, "village approve and town approve, once each");

        // A different decision under the same id is refused, naming the rule.
        let s = err(village
            .review_application(pb::ReviewApplicationRequest {
                decision: pb::Decision::Reject as i32,
                reason: "changed my mind".into(),
                ..req.clone()
            })
            .await);
        assert_invalid(&s, "request_id", "R-IN-8");

        // A failed write stores nothing, not even its id: the corrected request may reuse it.
        let retry_id = rid();
        let s = err(t
            .as_district_staff()
            .review_application(pb::ReviewApplicationRequest {
                request_id: retry_id.clone(),
                ..review_req(&app.id, pb::Decision::Reject, "")
            })
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        let ok = t
            .as_district_staff()
            .review_application(pb::ReviewApplicationRequest {
                request_id: retry_id,
                ..review_req(&app.id, pb::Decision::Approve, "")
            })
            .await
            .expect("the id of a failed write is free")
            .into_inner();
        assert_eq!(ok.status(), pb::Status::PublicNotice);
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-8, R-IN-2: a rejection or return without a reason, or a resubmission whose note
/// is unreadable, is wrong whatever the application's state: INVALID_ARGUMENT naming the field,
/// decided before the state, and nothing is kept with the request id. Sent to another tier's
/// step it was the tier's denial (or, to a finished application, its state's refusal), kept,
/// so the corrected request under the same id was told the id was used for another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_wrong_in_any_state_is_invalid_before_the_state_and_not_kept() {
    bounded(60, async {
        let t = spawn_intake().await;
        let resident = resident_id(57);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "8000").await;
        let mut village = t.as_village_staff(VILLAGE_A);
        review(&mut village, &app.id, pb::Decision::Approve, "").await; // town review
        let keys = || count(&t.pool, "select count(*) from idempotency_keys");

        for decision in [pb::Decision::Reject, pb::Decision::ReturnForCorrection] {
            let kept = keys().await;
            let first = review_req(&app.id, decision, " ");
            let s = err(village.review_application(first.clone()).await);
            assert_invalid(&s, "reason", "R-IN-2");
            assert_eq!(keys().await, kept, "{decision:?}: nothing kept");
            // Corrected, the same id is the village's denial at the town's step, kept.
            let s = err(village
                .review_application(pb::ReviewApplicationRequest {
                    reason: "no project plan".into(),
                    ..first
                })
                .await);
            assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
            assert_eq!(keys().await, kept + 1, "{decision:?}: the denial is kept");
        }

        // At the village step, a resubmission with an unreadable note is invalid, not told
        // the application is not returned; corrected under the same id, it is told that.
        let other = resident_id(58);
        t.given_credit_household(&other, VILLAGE_A).await;
        let filed = t.submit_household(&other, VILLAGE_A, "8000").await;
        let first = pb::ResubmitApplicationRequest {
            request_id: rid(),
            application_id: filed.id.clone(),
            note: "signed\u{0}".into(),
            ..Default::default()
        };
        let kept = keys().await;
        let s = err(village.resubmit_application(first.clone()).await);
        assert_invalid(&s, "note", "R-IN-2");
        assert_eq!(keys().await, kept, "nothing kept");
        let s = err(village
            .resubmit_application(pb::ResubmitApplicationRequest {
                note: "signed".into(),
                ..first
            })
            .await);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");

        // A finished application: a reasonless rejection is still the request's fault.
        let rejected = review(&mut village, &filed.id, pb::Decision::Reject, "moved away").await;
        assert_eq!(rejected.status(), pb::Status::Rejected);
        let s = err(t
            .as_district_staff()
            .review_application(review_req(&filed.id, pb::Decision::Reject, ""))
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8: a refusal is a first result too. A submission refused while the household is
/// blacklisted (R-CR-10) gets the same refusal, and stores nothing, when retried with its id
/// after the entry was removed; eight concurrent first attempts all get it; a new id is
/// decided on the facts of the day. A staff step works the same way: a recommendation refused
/// during the public notice (R-IN-5) stays refused for its id after the notice ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_refusal_is_the_first_result_of_its_request_id() {
    bounded(90, async {
        let t = spawn_intake().await;
        t.set_time("2026-03-02T09:00:00+08:00");
        let resident = resident_id(53);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let id = t
            .publish_blacklisted("bl-53", &resident, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        let req = household_request(&resident, VILLAGE_A, "10000");
        let calls = (0..8).map(|_| {
            let mut c = t.as_village_staff(VILLAGE_A);
            let req = req.clone();
            tokio::spawn(async move { c.submit_application(req).await })
        });
        let mut refusals = Vec::new();
        for call in futures::future::join_all(calls).await {
            refusals.push(err(call.expect("task")));
        }
        let first = refusals[0].message().to_owned();
        for s in &refusals {
            assert_refused(s, &["R-CR-10"]);
            assert_eq!(s.message(), first, "every attempt gets the one refusal");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            1,
            "the refusal is kept once"
        );

        let id = t
            .publish_blacklist_removed("bl-53", &resident, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(req.clone())
            .await);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
        assert_eq!(s.message(), first, "the retry gets the first result");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        // The same id with another body is still another request.
        let mut other = req.clone();
        other.amount = money("9000");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(other)
            .await);
        assert_invalid(&s, "request_id", "R-IN-8");
        // A new request is decided afresh.
        let app = t.submit_household(&resident, VILLAGE_A, "10000").await;

        // A staff step: refused during the notice, and for good under that request id.
        t.approve_to_notice(&app).await;
        let recommend = pb::RecommendToBankRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            bank_id: BANK.to_owned(),
        };
        let s = err(t
            .as_district_staff()
            .recommend_to_bank(recommend.clone())
            .await);
        assert_refused(&s, &["R-IN-5"]);
        let during_notice = s.message().to_owned();
        t.set_time("2026-03-09T09:00:00+08:00");
        let s = err(t
            .as_district_staff()
            .recommend_to_bank(recommend.clone())
            .await);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
        assert_eq!(s.message(), during_notice);
        let a = t.recommend(&app.id, BANK).await.expect("a new request");
        assert_eq!(a.status(), pb::Status::Recommended);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8 on staff steps: only a rule's refusal is kept.
/// - Concurrent attempts of a step the workflow refuses (R-IN-2: a recommendation before the
///   reviews) all get one refusal, kept once.
/// - A submission refused for want of a policy in force (R-X-4) keeps nothing: the same
///   request id goes again once it can be decided. A step whose deadline runs into a year whose
///   calendar is not deployed is taken with its deadline pending (R-IN-4), and kept like any
///   result: its retry replays it, even on a day the deadline could be counted.
/// - A step refused for bad input after its id was claimed keeps nothing: the corrected request
///   may reuse the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn staff_steps_keep_only_a_rules_refusal() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(54);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let keys = || count(&t.pool, "select count(*) from idempotency_keys");
        // Before the first policy version (2024-01-01) nothing can be decided (R-X-4), and
        // nothing is kept: the same request goes through once a policy is in force.
        let req = household_request(&resident, VILLAGE_A, "10000");
        t.set_time("2023-06-01T09:00:00+08:00");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(req.clone())
            .await);
        assert_refused(&s, &["R-X-4"]);
        assert_eq!(keys().await, 0, "nothing kept without a policy in force");
        t.set_time("2026-12-01T09:00:00+08:00");
        let app = submit(&mut t.as_village_staff(VILLAGE_A), req).await;

        // At the village step nothing can be recommended: eight attempts, one refusal.
        let early = pb::RecommendToBankRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            bank_id: BANK.to_owned(),
        };
        let calls = (0..8).map(|_| {
            let mut c = t.as_district_staff();
            let req = early.clone();
            tokio::spawn(async move { c.recommend_to_bank(req).await })
        });
        let mut messages = std::collections::HashSet::new();
        for call in futures::future::join_all(calls).await {
            let s = err(call.expect("task"));
            assert_refused(&s, &["R-IN-2"]);
            messages.insert(s.message().to_owned());
        }
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from idempotency_keys where refused_code is not null"
            )
            .await,
            1
        );

        // 2026-12-30: the town's 3 working days run into 2027, whose calendar is not deployed.
        t.set_time("2026-12-30T09:00:00+08:00");
        let village = review_req(&app.id, pb::Decision::Approve, "");
        let before = keys().await;
        let a = t
            .as_village_staff(VILLAGE_A)
            .review_application(village.clone())
            .await
            .expect("taken with its deadline pending")
            .into_inner();
        assert_eq!(
            (a.status(), a.step_due_on.as_str()),
            (pb::Status::TownReview, "")
        );
        assert_eq!(keys().await, before + 1, "kept like any result");
        // On a day its deadline could be counted, the same id replays it.
        t.set_time("2026-12-15T09:00:00+08:00");
        let again = t
            .as_village_staff(VILLAGE_A)
            .review_application(village)
            .await
            .expect("the same id, replayed")
            .into_inner();
        assert_eq!(again, a);

        // A rejection needs a reason: refused after the claim, nothing kept, and the corrected
        // request reuses the id.
        let mut reject = review_req(&app.id, pb::Decision::Reject, "");
        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(reject.clone())
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        reject.reason = "the household has a loan with another bank".into();
        let a = t
            .as_town_staff(TOWN_A)
            .review_application(reject)
            .await
            .expect("corrected, same id")
            .into_inner();
        assert_eq!(a.status(), pb::Status::Rejected);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8 with R-IN-2 and R-IN-7: a denial that depends on the state (another tier's step, a
/// complaint held by another organisation) is the request id's first result: retried after the
/// state moved on, it is denied again and changes nothing; a new request id acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_denial_by_the_state_is_the_first_result_of_its_request_id() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(56);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "10000").await;
        // The town approves while the application is still at the village step.
        let early = review_req(&app.id, pb::Decision::Approve, "");
        let first = err(t
            .as_town_staff(TOWN_A)
            .review_application(early.clone())
            .await);
        assert_eq!(first.code(), tonic::Code::PermissionDenied, "{first:?}");
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let again = err(t.as_town_staff(TOWN_A).review_application(early).await);
        assert_eq!(
            (again.code(), again.message()),
            (first.code(), first.message())
        );
        let now = t
            .get_as(&mut t.as_district_staff(), &app.id)
            .await
            .expect("get");
        assert_eq!(
            now.status(),
            pb::Status::TownReview,
            "the retry changed nothing"
        );
        let moved = review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(moved.status(), pb::Status::DistrictReview);

        // A complaint held by the district: the village's answer is denied, and stays denied
        // for its request id once the district hands the complaint to the village.
        let complaint = lodge(
            &mut t.as_village_staff(VILLAGE_A),
            VILLAGE_A,
            "the notice was not posted",
        )
        .await;
        let assign = |to: &str| assign_req(&complaint.id, to);
        t.as_district_staff()
            .assign_complaint(assign(DISTRICT))
            .await
            .expect("assigned to the district");
        let answer = answer_req(&complaint.id, "posted on the village board");
        let first = err(t
            .as_village_staff(VILLAGE_A)
            .answer_complaint(answer.clone())
            .await);
        assert_eq!(first.code(), tonic::Code::PermissionDenied, "{first:?}");
        t.as_district_staff()
            .assign_complaint(assign(VILLAGE_A))
            .await
            .expect("handed to the village");
        let again = err(t
            .as_village_staff(VILLAGE_A)
            .answer_complaint(answer.clone())
            .await);
        assert_eq!(
            (again.code(), again.message()),
            (first.code(), first.message())
        );
        let answered = t
            .as_village_staff(VILLAGE_A)
            .answer_complaint(pb::AnswerComplaintRequest {
                request_id: rid(),
                ..answer
            })
            .await
            .expect("a new request id answers")
            .into_inner();
        assert_eq!(answered.answer, "posted on the village board");
        t.shutdown().await;
    })
    .await;
}
