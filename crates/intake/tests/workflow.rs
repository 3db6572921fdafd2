//! The three-tier workflow over gRPC (R-IN-2, R-IN-5): village -> town -> district -> public
//! notice -> recommended to a partner bank, with objections, returns for correction, rejections,
//! the recorded history, and area scoping for every tier and for banks.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use prost::Name;
use tonic::Code;

async fn transitions(c: &mut Client, id: &str) -> Vec<pb::Transition> {
    c.list_transitions(pb::ListTransitionsRequest {
        application_id: id.to_owned(),
        page: None,
    })
    .await
    .expect("list transitions")
    .into_inner()
    .transitions
    .into_iter()
    .inspect(|tr| assert!(!tr.at.is_empty() && !tr.id.is_empty(), "{tr:?}"))
    .collect()
}

fn file_objection_req(id: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        objector: "村民 赵某".into(),
        content: "the household already has a loan with another bank".into(),
    }
}

async fn objections(c: &mut Client, application: &str) -> Vec<pb::Objection> {
    c.list_objections(pb::ListObjectionsRequest {
        application_id: application.to_owned(),
        page: None,
    })
    .await
    .expect("objections listed")
    .into_inner()
    .objections
}

/// R-IN-2, R-IN-5: village, town and district approve; the public notice runs 5 calendar days
/// (ends on day + 4); an objection holds it (ON_HOLD) and blocks recommendation; dismissing it
/// releases the hold; recommendation waits for the notice to end and names a partner bank;
/// the history lists every transition with actor, role and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_path_to_recommendation_with_notice_and_objection() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(31);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "20000").await;
        let id = app.id.clone();

        let a = review(
            &mut t.as_village_staff(VILLAGE_A),
            &id,
            pb::Decision::Approve,
            "",
        )
        .await;
        assert_eq!(a.status(), pb::Status::TownReview);
        assert_eq!(a.current_step(), pb::Step::Town);
        assert_eq!(a.step_due_on, "2026-03-05");
        assert_eq!(a.version, 2);
        let a = review(&mut t.as_town_staff(TOWN_A), &id, pb::Decision::Approve, "").await;
        assert_eq!(a.status(), pb::Status::DistrictReview);
        assert_eq!(a.step_due_on, "2026-03-09", "district: 5 working days");
        let a = review(&mut t.as_district_staff(), &id, pb::Decision::Approve, "").await;
        assert_eq!(a.status(), pb::Status::PublicNotice);
        assert_eq!(a.current_step(), pb::Step::Unspecified);
        assert_eq!(a.step_due_on, "");
        // R-IN-5: 5 calendar days starting today: 03-02 .. 03-06.
        assert_eq!(a.notice_ends_on, "2026-03-06");

        // Not before the notice ends.
        assert_refused(&t.recommend(&id, BANK).await.unwrap_err(), &["R-IN-5"]);

        // An objection during the notice holds the application.
        t.set_time("2026-03-04T10:00:00+08:00");
        let s = err(t
            .as_district_staff()
            .file_objection(pb::FileObjectionRequest {
                content: " ".into(),
                ..file_objection_req(&id)
            })
            .await);
        assert_invalid(&s, "content", "R-IN-5");
        let objection = t
            .as_district_staff()
            .file_objection(file_objection_req(&id))
            .await
            .expect("objection")
            .into_inner();
        assert_eq!(objection.state, "open");
        let held = t.get_as(&mut t.as_district_staff(), &id).await.unwrap();
        assert_eq!(held.status(), pb::Status::OnHold);
        assert_refused(&t.recommend(&id, BANK).await.unwrap_err(), &["R-IN-5"]);

        // Resolved by the district center only, with a resolution.
        let s = err(t
            .as_town_staff(TOWN_A)
            .resolve_objection(resolve_req(&objection.id, false, "checked"))
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let s = err(t
            .as_district_staff()
            .resolve_objection(resolve_req(&objection.id, false, ""))
            .await);
        assert_invalid(&s, "resolution", "R-IN-5");
        let resolved = t
            .as_district_staff()
            .resolve_objection(resolve_req(
                &objection.id,
                false,
                "verified with the bank: no other loan",
            ))
            .await
            .expect("dismiss")
            .into_inner();
        assert_eq!(resolved.state, "dismissed");
        let a = t.get_as(&mut t.as_district_staff(), &id).await.unwrap();
        assert_eq!(a.status(), pb::Status::PublicNotice);

        // The last notice day is still inside the notice.
        t.set_time("2026-03-06T18:00:00+08:00");
        assert_refused(&t.recommend(&id, BANK).await.unwrap_err(), &["R-IN-5"]);

        t.set_time("2026-03-07T09:00:00+08:00");
        assert_invalid(
            &t.recommend(&id, "no-such-bank").await.unwrap_err(),
            "bank_id",
            "R-IN-6",
        );
        // Only the district center recommends.
        let s = err(t
            .as_town_staff(TOWN_A)
            .recommend_to_bank(pb::RecommendToBankRequest {
                request_id: rid(),
                application_id: id.clone(),
                bank_id: BANK.into(),
            })
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let a = t.recommend(&id, BANK).await.expect("recommend");
        assert_eq!(a.status(), pb::Status::Recommended);
        assert_eq!(a.bank_id, BANK);
        assert_eq!(a.current_step(), pb::Step::Bank);
        let bank_due = t
            .calendar
            .add_working_days(day("2026-03-07"), 10)
            .expect("calendar");
        assert_eq!(a.step_due_on, bank_due.to_string(), "bank: 10 working days");

        // R-IN-2: every transition, who, in which role, why.
        let history = transitions(&mut t.as_town_staff(TOWN_A), &id).await;
        // R-X-4: each move records the policy version it was decided under.
        assert!(
            history
                .iter()
                .all(|tr| tr.policy_version == "luolong-2026.1"),
            "{history:?}"
        );
        let got: Vec<_> = history
            .iter()
            .map(|tr| {
                (
                    tr.from_status(),
                    tr.to_status(),
                    tr.action.as_str(),
                    tr.actor.as_str(),
                    tr.actor_role.as_str(),
                    tr.reason.as_str(),
                )
            })
            .collect();
        use pb::Status::*;
        let village_actor = format!("village-staff-{VILLAGE_A}");
        let town_actor = format!("town-staff-{TOWN_A}");
        let held = format!("objection {}", objection.id);
        assert_eq!(
            got,
            vec![
                (
                    Unspecified,
                    VillageReview,
                    "submit",
                    village_actor.as_str(),
                    "village_staff",
                    ""
                ),
                (
                    VillageReview,
                    TownReview,
                    "approve",
                    village_actor.as_str(),
                    "village_staff",
                    ""
                ),
                (
                    TownReview,
                    DistrictReview,
                    "approve",
                    town_actor.as_str(),
                    "town_staff",
                    ""
                ),
                (
                    DistrictReview,
                    PublicNotice,
                    "approve",
                    "district-center-1",
                    "district_staff",
                    ""
                ),
                (
                    PublicNotice,
                    OnHold,
                    "objection",
                    "district-center-1",
                    "district_staff",
                    held.as_str()
                ),
                (
                    OnHold,
                    PublicNotice,
                    "objection_dismissed",
                    "district-center-1",
                    "district_staff",
                    held.as_str()
                ),
                (
                    PublicNotice,
                    Recommended,
                    "recommend",
                    "district-center-1",
                    "district_staff",
                    BANK
                ),
            ]
        );
        // Paged history reads the same.
        let page = t
            .as_district_staff()
            .list_transitions(pb::ListTransitionsRequest {
                application_id: id.clone(),
                page: Some(fupin_proto::common::v1::PageRequest {
                    page_size: 4,
                    page_token: String::new(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.transitions.len(), 4);
        let rest = t
            .as_district_staff()
            .list_transitions(pb::ListTransitionsRequest {
                application_id: id.clone(),
                page: Some(fupin_proto::common::v1::PageRequest {
                    page_size: 4,
                    page_token: page.page.unwrap().next_page_token,
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rest.transitions.len(), 3);
        assert_eq!(rest.page.unwrap().next_page_token, "");

        // Each transition is announced (R-IN-2, R-X-2).
        let changed = t
            .intake_events(&pb::ApplicationStatusChanged::full_name())
            .await;
        assert_eq!(changed.len(), 6, "one per transition after the submission");
        let last: pb::ApplicationStatusChanged = changed[5].decode();
        assert_eq!(last.application_id, id);
        assert_eq!(last.to_status(), Recommended);
        assert_eq!(last.action, "recommend");
        assert_eq!(last.area_code, VILLAGE_A);
        assert_cloudevent(&changed[5], &pb::ApplicationStatusChanged::full_name(), &id);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5: an upheld objection rejects the application; objections after the notice period
/// are refused; a second open objection keeps the hold until it is resolved too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objections_hold_until_all_are_resolved_and_upheld_ones_reject() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(32), resident_id(33));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let a1 = t.submit_household(&r1, VILLAGE_A, "5000").await;
        let a2 = t.submit_household(&r2, VILLAGE_A, "5000").await;
        t.approve_to_notice(&a1).await;
        t.approve_to_notice(&a2).await;

        // Two objections on a1 (filed by the village and the district); dismissing one keeps
        // the hold, dismissing both releases it.
        let o1 = t
            .as_village_staff(VILLAGE_A)
            .file_objection(file_objection_req(&a1.id))
            .await
            .expect("village files")
            .into_inner();
        let o2 = t
            .as_district_staff()
            .file_objection(file_objection_req(&a1.id))
            .await
            .expect("district files")
            .into_inner();
        t.as_district_staff()
            .resolve_objection(resolve_req(&o1.id, false, "unfounded"))
            .await
            .expect("dismiss o1");
        let a = t.get_as(&mut t.as_district_staff(), &a1.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::OnHold, "o2 still open");
        t.as_district_staff()
            .resolve_objection(resolve_req(&o2.id, false, "unfounded"))
            .await
            .expect("dismiss o2");
        let a = t.get_as(&mut t.as_district_staff(), &a1.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::PublicNotice);
        // Resolving an already resolved objection is refused.
        let s = err(t
            .as_district_staff()
            .resolve_objection(resolve_req(&o2.id, true, "again"))
            .await);
        assert_refused(&s, &["R-IN-5"]);

        // The district finds every objection of an application, whoever filed it, in filing
        // order; staff of another town do not even learn the application exists.
        let listed = objections(&mut t.as_district_staff(), &a1.id).await;
        assert_eq!(
            listed
                .iter()
                .map(|o| (o.id.as_str(), o.state.as_str()))
                .collect::<Vec<_>>(),
            vec![(o1.id.as_str(), "dismissed"), (o2.id.as_str(), "dismissed")]
        );
        // R-IN-2 "who": who recorded each objection and who resolved it; only the holding and
        // releasing moves are transitions, so this is where the rest is read.
        let village_actor = format!("village-staff-{VILLAGE_A}");
        assert_eq!(
            listed
                .iter()
                .map(|o| (o.filed_by.as_str(), o.resolved_by.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (village_actor.as_str(), "district-center-1"),
                ("district-center-1", "district-center-1")
            ]
        );
        assert_eq!(
            (o1.filed_by.as_str(), o1.resolved_by.as_str()),
            (village_actor.as_str(), ""),
            "open: nobody resolved it yet"
        );
        let s = err(t
            .as_town_staff(TOWN_B)
            .list_objections(pb::ListObjectionsRequest {
                application_id: a1.id.clone(),
                page: None,
            })
            .await);
        assert_eq!(s.code(), tonic::Code::NotFound, "{s:?}");
        // Nor does resolving one of its objections tell them.
        let s = err(t
            .as_town_staff(TOWN_B)
            .resolve_objection(resolve_req(&o2.id, true, "again"))
            .await);
        assert_eq!(s.code(), tonic::Code::NotFound, "{s:?}");
        assert!(!s.message().contains(&a1.id), "{s:?}");

        // Upheld: a2 is rejected and can no longer be recommended; the other objection still
        // open on it is closed as superseded instead of staying open for good.
        let o = t
            .as_district_staff()
            .file_objection(file_objection_req(&a2.id))
            .await
            .expect("objection")
            .into_inner();
        let beside = t
            .as_village_staff(VILLAGE_A)
            .file_objection(file_objection_req(&a2.id))
            .await
            .expect("a second objection")
            .into_inner();
        t.as_district_staff()
            .resolve_objection(resolve_req(&o.id, true, "confirmed: loan elsewhere"))
            .await
            .expect("uphold");
        let a = t.get_as(&mut t.as_district_staff(), &a2.id).await.unwrap();
        assert_eq!(a.status(), pb::Status::Rejected);
        let listed = objections(&mut t.as_district_staff(), &a2.id).await;
        assert_eq!(
            listed
                .iter()
                .map(|o| (o.id.as_str(), o.state.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (o.id.as_str(), "upheld"),
                (beside.id.as_str(), "superseded")
            ]
        );
        assert!(listed[1].resolution.contains(&o.id), "{:?}", listed[1]);
        assert_eq!(
            listed[1].resolved_by, "district-center-1",
            "who upheld the other one"
        );
        assert!(!listed[1].resolved_at.is_empty());
        t.set_time("2026-03-07T09:00:00+08:00");
        assert_refused(&t.recommend(&a2.id, BANK).await.unwrap_err(), &["R-IN-2"]);

        // After the notice period no objection is taken.
        let s = err(t
            .as_district_staff()
            .file_objection(file_objection_req(&a1.id))
            .await);
        assert_refused(&s, &["R-IN-5"]);
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from objections where application_id = $1::uuid",
                &[&a1.id],
            )
            .await,
            2
        );
        t.recommend(&a1.id, BANK).await.expect("a1 recommended");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, R-IN-3: return for correction (with a reason) at the town step, resubmission by the
/// village department (validated and admitted again) goes back to TOWN_REVIEW with the
/// corrections; rejection needs a reason and ends the workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn return_for_correction_resubmit_and_reject() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(34);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "18000").await;
        let id = app.id.clone();
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &id,
            pb::Decision::Approve,
            "",
        )
        .await;

        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(review_req(&id, pb::Decision::ReturnForCorrection, "  "))
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(review_req(&id, pb::Decision::Unspecified, ""))
            .await);
        assert_invalid(&s, "decision", "R-IN-2");
        let a = review(
            &mut t.as_town_staff(TOWN_A),
            &id,
            pb::Decision::ReturnForCorrection,
            "project plan missing the planting area",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Returned);
        assert_eq!(a.returned_from(), pb::Step::Town);
        assert_eq!(a.step_due_on, "");

        // Only the village department resubmits; the town cannot.
        let resubmit = |request_id: String| pb::ResubmitApplicationRequest {
            request_id,
            application_id: id.clone(),
            amount: money("16000.00"),
            term_months: 18,
            purpose: 0,
            project_description: "peony seedlings, 2.5 mu, plan attached".into(),
            note: "planting area added".into(),
            household: None,
            enterprise: None,
        };
        let s = err(t
            .as_town_staff(TOWN_A)
            .resubmit_application(resubmit(rid()))
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        // Corrections are validated like a new submission (R-X-3).
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                amount: money("20000.001"),
                ..resubmit(rid())
            })
            .await);
        assert_invalid(&s, "amount", "R-IN-1");
        // ... and admitted again (R-IN-3): a corrected amount above the credit line is refused,
        // and the application stays returned.
        let over_line = || pb::ResubmitApplicationRequest {
            amount: money("20000.01"),
            ..resubmit(rid())
        };
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(over_line())
            .await);
        assert_refused(&s, &["R-CR-8"]);
        // The applicant's data is corrected too, checked like a new submission; a correction
        // for the other kind of applicant names its field.
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                household: Some(pb::HouseholdCorrection {
                    phone: "1390000000".into(),
                    ..Default::default()
                }),
                ..resubmit(rid())
            })
            .await);
        assert_invalid(&s, "household.phone", "R-IN-1");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                enterprise: Some(pb::EnterpriseCorrection {
                    name: "洛龙区某合作社".into(),
                    ..Default::default()
                }),
                ..resubmit(rid())
            })
            .await);
        assert_invalid(&s, "enterprise", "R-IN-2");
        let held = t
            .get_as(&mut t.as_village_staff(VILLAGE_A), &id)
            .await
            .unwrap();
        assert_eq!(held.status(), pb::Status::Returned);
        t.set_time("2026-03-03T09:00:00+08:00");
        let a = t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                household: Some(pb::HouseholdCorrection {
                    name: "张三丰".into(),
                    phone: "13912345678".into(),
                    poor_household_number: "HN-410311-2016-00999".into(),
                    household_borrows_uses_repays: Some(true),
                }),
                ..resubmit(rid())
            })
            .await
            .expect("resubmit")
            .into_inner();
        assert_eq!(a.status(), pb::Status::TownReview);
        assert_eq!(
            (a.applicant_name.as_str(), a.applicant_phone.as_str()),
            ("张三丰", "13912345678"),
            "the corrected applicant, as the village department sees it"
        );
        let stored: String = sqlx::query_scalar(
            "select poor_household_number from applications where id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&t.pool)
        .await
        .expect("row");
        assert_eq!(stored, "HN-410311-2016-00999");
        let again = t
            .get_as(&mut t.as_village_staff(VILLAGE_A), &id)
            .await
            .unwrap();
        assert_eq!(again.applicant_name, "张三丰", "sealed and read back");
        assert_eq!(a.current_step(), pb::Step::Town);
        assert_eq!(a.returned_from(), pb::Step::Unspecified);
        assert_eq!(a.amount.as_ref().unwrap().amount, "16000.00");
        assert_eq!(a.term_months, 18);
        assert_eq!(
            a.project_description,
            "peony seedlings, 2.5 mu, plan attached"
        );
        assert_eq!(
            a.step_due_on, "2026-03-06",
            "a fresh town deadline from the resubmission"
        );
        // No longer returned: refused as such (R-IN-2), whatever the corrections would fail.
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(over_line())
            .await);
        assert_refused(&s, &["R-IN-2"]);

        // Reject needs a reason; afterwards nothing moves.
        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(review_req(&id, pb::Decision::Reject, ""))
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        let a = review(
            &mut t.as_town_staff(TOWN_A),
            &id,
            pb::Decision::Reject,
            "household already repaying another programme loan",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Rejected);
        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(review_req(&id, pb::Decision::Approve, ""))
            .await);
        assert_refused(&s, &["R-IN-2"]);

        let history = transitions(&mut t.as_village_staff(VILLAGE_A), &id).await;
        let got: Vec<_> = history
            .iter()
            .map(|tr| {
                (
                    tr.action.as_str(),
                    tr.actor_role.as_str(),
                    tr.reason.as_str(),
                    tr.to_status(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("submit", "village_staff", "", pb::Status::VillageReview),
                ("approve", "village_staff", "", pb::Status::TownReview),
                (
                    "return",
                    "town_staff",
                    "project plan missing the planting area",
                    pb::Status::Returned
                ),
                (
                    "resubmit",
                    "village_staff",
                    "planting area added",
                    pb::Status::TownReview
                ),
                (
                    "reject",
                    "town_staff",
                    "household already repaying another programme loan",
                    pb::Status::Rejected
                ),
            ]
        );
        // R-IN-4: each move into a step keeps the deadline it set, after the step is left;
        // the others set none.
        let due: Vec<&str> = history.iter().map(|tr| tr.step_due_on.as_str()).collect();
        assert!(!due[0].is_empty() && !due[1].is_empty(), "{due:?}");
        assert_eq!((due[2], due[3], due[4]), ("", "2026-03-06", ""));
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2: an application returned for correction that no correction can make admissible
/// again (here the household was blacklisted meanwhile, R-CR-10) is rejected, with a reason,
/// by the tier that returned it. Other tiers are denied, an approval or a second return
/// refused, and each refusal changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tier_that_returned_an_application_rejects_it_when_it_cannot_be_corrected() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(35);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "10000").await;
        let id = app.id.clone();
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_town_staff(TOWN_A),
            &id,
            pb::Decision::ReturnForCorrection,
            "收入证明缺失",
        )
        .await;
        let listed = t.publish_blacklisted("bl-returned-35", &resident, 1).await;
        t.wait_applied(&listed).await;
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: id.clone(),
                note: "补".into(),
                ..Default::default()
            })
            .await);
        assert_refused(&s, &["R-CR-10"]);

        let before = transitions(&mut t.as_district_staff(), &id).await.len();
        for (mut caller, decision, code) in [
            (
                t.as_village_staff(VILLAGE_A),
                pb::Decision::Reject,
                Code::PermissionDenied,
            ),
            (
                t.as_district_staff(),
                pb::Decision::Reject,
                Code::PermissionDenied,
            ),
            (
                t.as_town_staff(TOWN_A),
                pb::Decision::Approve,
                Code::FailedPrecondition,
            ),
            (
                t.as_town_staff(TOWN_A),
                pb::Decision::ReturnForCorrection,
                Code::FailedPrecondition,
            ),
        ] {
            let s = err(caller
                .review_application(review_req(&id, decision, "列入失信黑名单"))
                .await);
            assert_eq!(s.code(), code, "{decision:?}: {s:?}");
            assert!(s.message().contains("R-IN-2"), "{s:?}");
        }
        let s = err(t
            .as_town_staff(TOWN_A)
            .review_application(review_req(&id, pb::Decision::Reject, " "))
            .await);
        assert_invalid(&s, "reason", "R-IN-2");
        assert_eq!(
            transitions(&mut t.as_district_staff(), &id).await.len(),
            before,
            "refusals change nothing"
        );

        let a = review(
            &mut t.as_town_staff(TOWN_A),
            &id,
            pb::Decision::Reject,
            "列入失信黑名单，无法补正",
        )
        .await;
        assert_eq!(a.status(), pb::Status::Rejected);
        assert_eq!(
            a.returned_from(),
            pb::Step::Unspecified,
            "no longer returned"
        );
        let last = transitions(&mut t.as_district_staff(), &id)
            .await
            .pop()
            .expect("history");
        assert_eq!(
            (
                last.from_status(),
                last.to_status(),
                last.action.as_str(),
                last.actor_role.as_str(),
                last.reason.as_str()
            ),
            (
                pb::Status::Returned,
                pb::Status::Rejected,
                "reject",
                "town_staff",
                "列入失信黑名单，无法补正"
            )
        );
        t.outbox_drained().await;
        let changed: Vec<pb::ApplicationStatusChanged> = t.intake_messages().await;
        assert!(
            changed.iter().any(|e| e.application_id == id
                && e.from_status() == pb::Status::Returned
                && e.to_status() == pb::Status::Rejected),
            "{changed:?}"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 area scoping: staff of another village or town cannot see an application at all
/// (NotFound on Get, Review and history); the wrong tier of the right area is PermissionDenied;
/// listings hold only the caller's area; a bank sees only what was recommended to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_tier_sees_and_acts_only_inside_its_area() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (ra, ra2, rb) = (resident_id(35), resident_id(36), resident_id(37));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        t.given_credit_household(&rb, VILLAGE_B).await;
        let a = t.submit_household(&ra, VILLAGE_A, "5000").await;
        let a2 = t.submit_household(&ra2, VILLAGE_A2, "5000").await;
        let b = t.submit_household(&rb, VILLAGE_B, "5000").await;

        // Cannot see it at all.
        for (who, mut c) in [
            ("other village", t.as_village_staff(VILLAGE_A2)),
            ("other town", t.as_town_staff(TOWN_B)),
            ("bank before recommendation", t.as_bank(BANK)),
            ("operator", t.as_operator()),
        ] {
            let s = t.get_as(&mut c, &a.id).await.unwrap_err();
            assert_eq!(s.code(), Code::NotFound, "{who} get: {s:?}");
            let s = err(c
                .review_application(review_req(&a.id, pb::Decision::Approve, ""))
                .await);
            assert_eq!(s.code(), Code::NotFound, "{who} review: {s:?}");
            let s = err(c
                .list_transitions(pb::ListTransitionsRequest {
                    application_id: a.id.clone(),
                    page: None,
                })
                .await);
            assert_eq!(s.code(), Code::NotFound, "{who} history: {s:?}");
        }
        // Sees it, but it is not this tier's step.
        for (who, mut c) in [
            ("town of the village", t.as_town_staff(TOWN_A)),
            ("district", t.as_district_staff()),
        ] {
            let s = err(c
                .review_application(review_req(&a.id, pb::Decision::Approve, ""))
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
        }
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        for (who, mut c) in [
            ("the village, after its step", t.as_village_staff(VILLAGE_A)),
            ("district at the town step", t.as_district_staff()),
        ] {
            let s = err(c
                .review_application(review_req(&a.id, pb::Decision::Approve, ""))
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
        }
        let s = err(t
            .as_town_staff(TOWN_B)
            .review_application(review_req(&a.id, pb::Decision::Approve, ""))
            .await);
        assert_eq!(
            s.code(),
            Code::NotFound,
            "other town at the town step: {s:?}"
        );
        let now = t.get_as(&mut t.as_district_staff(), &a.id).await.unwrap();
        assert_eq!(now.version, 2, "refused reviews changed nothing");

        // Listings are scoped to the caller's area.
        let list = |mut c: Client, area: &'static str| async move {
            let mut ids: Vec<String> = c
                .list_applications(pb::ListApplicationsRequest {
                    area_code: area.into(),
                    ..Default::default()
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .applications
                        .into_iter()
                        .map(|a| a.id)
                        .collect()
                })?;
            ids.sort();
            Ok::<_, tonic::Status>(ids)
        };
        let sorted = |mut v: Vec<&String>| {
            v.sort();
            v.into_iter().cloned().collect::<Vec<_>>()
        };
        assert_eq!(
            list(t.as_town_staff(TOWN_A), "").await.unwrap(),
            sorted(vec![&a.id, &a2.id])
        );
        assert_eq!(
            list(t.as_town_staff(TOWN_B), "").await.unwrap(),
            vec![b.id.clone()]
        );
        assert_eq!(
            list(t.as_village_staff(VILLAGE_A), "").await.unwrap(),
            vec![a.id.clone()]
        );
        assert_eq!(
            list(t.as_village_staff(VILLAGE_A2), "").await.unwrap(),
            vec![a2.id.clone()]
        );
        assert_eq!(
            list(t.as_district_staff(), "").await.unwrap(),
            sorted(vec![&a.id, &a2.id, &b.id])
        );
        assert_eq!(
            list(t.as_town_staff(TOWN_A), VILLAGE_A2).await.unwrap(),
            vec![a2.id.clone()]
        );
        let s = list(t.as_town_staff(TOWN_A), TOWN_B).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let s = list(t.as_village_staff(VILLAGE_A), VILLAGE_A2)
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let s = list(t.as_bank(BANK), "").await.unwrap_err();
        assert_eq!(
            s.code(),
            Code::PermissionDenied,
            "banks use their own listing: {s:?}"
        );
        // Status filter inside the scope.
        let only_town_review = t
            .as_town_staff(TOWN_A)
            .list_applications(pb::ListApplicationsRequest {
                statuses: vec![pb::Status::TownReview as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .applications;
        assert_eq!(
            only_town_review.iter().map(|x| &x.id).collect::<Vec<_>>(),
            vec![&a.id]
        );

        // Banks: only what was recommended to them.
        review(
            &mut t.as_town_staff(TOWN_A),
            &a.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(&mut t.as_district_staff(), &a.id, pb::Decision::Approve, "").await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&a.id, BANK).await.expect("recommend");
        let got = t
            .get_as(&mut t.as_bank(BANK), &a.id)
            .await
            .expect("bank sees it");
        assert_eq!(got.status(), pb::Status::Recommended);
        let mine = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .applications;
        assert_eq!(mine.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&a.id]);
        let s = t
            .get_as(&mut t.as_bank(OTHER_BANK), &a.id)
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        let theirs = t
            .as_bank(OTHER_BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .applications;
        assert!(theirs.is_empty(), "{theirs:?}");
        let s = t.get_as(&mut t.as_bank(BANK), &a2.id).await.unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "not recommended: {s:?}");
        // Staff do not use the bank listing.
        let s = err(t
            .as_district_staff()
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-RK-9, R-CR-10: admission is checked again at recommendation, against the read
/// model as it is then. A town suspended by the NPL circuit breaker after the application was
/// admitted, or a borrower blacklisted since, blocks recommendation; once lending resumes and
/// the entry is removed, the same application is recommended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_is_checked_again_at_recommendation() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(37);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "20000").await;
        t.approve_to_notice(&app).await;
        t.set_time("2026-03-07T09:00:00+08:00");

        let suspended = t.publish_npl_exceeded(TOWN_A, 1).await;
        t.wait_applied(&suspended).await;
        assert_refused(&t.recommend(&app.id, BANK).await.unwrap_err(), &["R-RK-9"]);

        let resumed = t.publish_lending_resumed(TOWN_A, 2).await;
        t.wait_applied(&resumed).await;
        let household = fupin_proto::rating::v1::SubjectKind::Household as i32;
        let listed = t
            .publish_blacklisted("bl-recommend", &resident, household)
            .await;
        t.wait_applied(&listed).await;
        assert_refused(&t.recommend(&app.id, BANK).await.unwrap_err(), &["R-CR-10"]);
        let a = t.get_as(&mut t.as_district_staff(), &app.id).await.unwrap();
        assert_eq!(
            a.status(),
            pb::Status::PublicNotice,
            "a refusal changes nothing"
        );

        let removed = t
            .publish_blacklist_removed("bl-recommend", &resident, household)
            .await;
        t.wait_applied(&removed).await;
        let a = t.recommend(&app.id, BANK).await.expect("recommend");
        assert_eq!(a.status(), pb::Status::Recommended);
    })
    .await;
}

/// R-IN-5 under concurrency: upholding one objection while another of the same application is
/// resolved ends in one consistent outcome (never an internal error: both lock the application
/// before the objection), and a village department's listing shows objectors' names and logs
/// that it did (R-CR-11).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resolutions_of_one_applications_objections_queue() {
    bounded(120, async {
        let t = spawn_intake().await;
        for n in 0..6 {
            let r = resident_id(90 + n);
            t.given_credit_household(&r, VILLAGE_A).await;
            let a = t.submit_household(&r, VILLAGE_A, "5000").await;
            t.approve_to_notice(&a).await;
            let file = || async {
                t.as_village_staff(VILLAGE_A)
                    .file_objection(file_objection_req(&a.id))
                    .await
                    .expect("objection")
                    .into_inner()
            };
            let (o1, o2) = (file().await, file().await);
            let mut d1 = t.as_district_staff();
            let mut d2 = t.as_district_staff();
            let (upheld, dismissed) = tokio::join!(
                d1.resolve_objection(resolve_req(&o1.id, true, "confirmed")),
                d2.resolve_objection(resolve_req(&o2.id, false, "unfounded")),
            );
            upheld.expect("the upheld objection is resolved whichever goes first");
            if let Err(s) = dismissed {
                // The uphold went first and closed it.
                assert_refused(&s, &["R-IN-5"]);
                assert!(s.message().contains("superseded"), "{s:?}");
            }
            let got = t.get_as(&mut t.as_district_staff(), &a.id).await.unwrap();
            assert_eq!(got.status(), pb::Status::Rejected);
            let states: Vec<String> = objections(&mut t.as_district_staff(), &a.id)
                .await
                .into_iter()
                .map(|o| o.state)
                .collect();
            assert!(
                states == ["upheld", "dismissed"] || states == ["upheld", "superseded"],
                "{states:?}"
            );
            if n == 0 {
                let seen = objections(&mut t.as_village_staff(VILLAGE_A), &a.id).await;
                assert!(seen.iter().all(|o| !o.objector.contains('*')), "{seen:?}");
                let masked = objections(&mut t.as_district_staff(), &a.id).await;
                assert!(
                    masked.iter().all(|o| o.objector.contains('*')),
                    "{masked:?}"
                );
                let logged = count_where(
                    &t.pool,
                    "select count(*) from pii_access_log where rpc = 'ListObjections' \
                     and role = 'village_staff' and application_id = $1::uuid \
                     and fields = array['objector']",
                    &[&a.id],
                )
                .await;
                assert_eq!(logged, 2, "one row per objection shown unmasked");
                // Each row names the objection whose objector it showed.
                for o in &seen {
                    let rows = count_where(
                        &t.pool,
                        "select count(*) from pii_access_log where rpc = 'ListObjections' \
                         and objection_id = $1::uuid",
                        &[&o.id],
                    )
                    .await;
                    assert_eq!(rows, 1, "objection {}", o.id);
                }
            }
        }
        t.shutdown().await;
    })
    .await;
}
