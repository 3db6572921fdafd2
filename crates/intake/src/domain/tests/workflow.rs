//! The application workflow (R-IN-1, R-IN-2, R-IN-6): who files, who takes each step, the
//! recorded transitions, returns and resubmissions, the bank's part.

use chrono::NaiveDate;

use super::fixtures::*;
use crate::domain::{
    Actor, ApplicantKind, Decision, DomainError, Status, Step,
    application::{Application, Correction, Moved},
};

fn day() -> NaiveDate {
    date("2025-06-16") // a Monday with no holiday near
}

fn file(
    actor: &Actor,
    kind: ApplicantKind,
    code: &str,
) -> Result<(Application, Moved), DomainError> {
    Application::file(
        actor,
        kind,
        area(code),
        money("20000.00"),
        24,
        day(),
        policy(),
        calendar(),
    )
}

fn review(
    app: &mut Application,
    actor: &Actor,
    decision: Decision,
    reason: &str,
) -> Result<Moved, DomainError> {
    app.review(actor, decision, reason, day(), policy(), calendar())
}

fn moved(from: Option<Status>, to: Status, action: &'static str, reason: &str) -> Moved {
    Moved {
        from,
        to,
        action,
        reason: reason.to_owned(),
        corrections: Vec::new(),
    }
}

/// The three staff steps, the tier that takes each and the status an approval leads to.
fn staff_steps() -> [(Status, Step, Actor, Status); 3] {
    [
        (
            Status::VillageReview,
            Step::Village,
            village_staff(VILLAGE),
            Status::TownReview,
        ),
        (
            Status::TownReview,
            Step::Town,
            town_staff(TOWN),
            Status::DistrictReview,
        ),
        (
            Status::DistrictReview,
            Step::District,
            district_staff(),
            Status::PublicNotice,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Filing (R-IN-1)

// R-IN-1
#[test]
fn village_department_files_a_household_of_its_village_into_village_review() {
    let (app, m) = file(&village_staff(VILLAGE), ApplicantKind::Household, VILLAGE).unwrap();
    assert_eq!(app.status, Status::VillageReview);
    assert_eq!(app.step_seq, 1);
    assert_eq!(app.step_started_on, Some(day()));
    assert!(app.step_due_on.is_some());
    assert_eq!(m, moved(None, Status::VillageReview, "submit", ""));
}

// R-IN-1
#[test]
fn village_department_of_another_village_may_not_file_the_household() {
    assert_denied(file(
        &village_staff(NEIGHBOUR_VILLAGE),
        ApplicantKind::Household,
        VILLAGE,
    ));
}

// R-IN-1: households are recorded by the village department only
#[test]
fn town_district_and_bank_may_not_file_a_household() {
    for actor in [town_staff(TOWN), district_staff(), bank(BANK), operator()] {
        assert_denied(file(&actor, ApplicantKind::Household, VILLAGE));
    }
}

// R-IN-1: enterprise applications may also be filed at the district center
#[test]
fn district_center_files_an_enterprise_straight_into_district_review() {
    for (kind, code) in [
        (ApplicantKind::Enterprise, TOWN),
        (ApplicantKind::Cooperative, TOWN),
        (ApplicantKind::Enterprise, VILLAGE),
    ] {
        let (app, m) = file(&district_staff(), kind, code).unwrap();
        assert_eq!(app.status, Status::DistrictReview, "{kind:?} in {code}");
        assert_eq!(m, moved(None, Status::DistrictReview, "submit", ""));
        assert_eq!(
            app.step_due_on,
            Some(calendar().add_working_days(day(), 5).unwrap())
        );
    }
}

// R-IN-1
#[test]
fn village_department_files_an_enterprise_registered_in_its_village_into_village_review() {
    let (app, _) = file(&village_staff(VILLAGE), ApplicantKind::Cooperative, VILLAGE).unwrap();
    assert_eq!(app.status, Status::VillageReview);
}

// R-IN-1
#[test]
fn enterprise_outside_the_filers_village_or_by_a_town_station_is_denied() {
    // a village department for an enterprise of another village, or one registered at town level
    assert_denied(file(
        &village_staff(NEIGHBOUR_VILLAGE),
        ApplicantKind::Enterprise,
        VILLAGE,
    ));
    assert_denied(file(
        &village_staff(VILLAGE),
        ApplicantKind::Enterprise,
        TOWN,
    ));
    // town stations do not file (R-IN-1 names the village department and the district center)
    assert_denied(file(&town_staff(TOWN), ApplicantKind::Enterprise, VILLAGE));
    assert_denied(file(&bank(BANK), ApplicantKind::Cooperative, VILLAGE));
}

// ---------------------------------------------------------------------------------------------
// The happy path (R-IN-2, R-IN-5, R-IN-6)

// R-IN-2, R-IN-4, R-IN-5, R-IN-6
#[test]
fn happy_path_from_the_village_to_disbursement_records_every_move() {
    let mut history = Vec::new();
    // given a household application filed on Mon 2025-06-16
    let (mut app, m) = file(&village_staff(VILLAGE), ApplicantKind::Household, VILLAGE).unwrap();
    history.push(m);
    assert_eq!(app.step_due_on, Some(date("2025-06-19"))); // Tue, Wed, Thu
    // the village department approves the same day
    history.push(review(&mut app, &village_staff(VILLAGE), Decision::Approve, "").unwrap());
    assert_eq!(app.status, Status::TownReview);
    assert_eq!(app.step_due_on, Some(date("2025-06-19")));
    // the town station approves on Tue 06-17
    history.push(
        app.review(
            &town_staff(TOWN),
            Decision::Approve,
            "材料齐全",
            date("2025-06-17"),
            policy(),
            calendar(),
        )
        .unwrap(),
    );
    assert_eq!(app.status, Status::DistrictReview);
    assert_eq!(app.step_started_on, Some(date("2025-06-17")));
    // 5 working days from Tue 06-17: 18, 19, 20, 23, 24
    assert_eq!(app.step_due_on, Some(date("2025-06-24")));
    // the district center approves on Wed 06-18: public notice 06-18 .. 06-22
    history.push(
        app.review(
            &district_staff(),
            Decision::Approve,
            "",
            date("2025-06-18"),
            policy(),
            calendar(),
        )
        .unwrap(),
    );
    assert_eq!(app.status, Status::PublicNotice);
    assert_eq!(app.notice_ends_on, Some(date("2025-06-22")));
    assert_eq!((app.step_started_on, app.step_due_on), (None, None));
    // recommended to the partner bank on Mon 06-23
    history.push(
        app.recommend(
            &district_staff(),
            BANK,
            date("2025-06-23"),
            policy(),
            calendar(),
        )
        .unwrap(),
    );
    assert_eq!(app.status, Status::Recommended);
    assert_eq!(app.bank_id.as_deref(), Some(BANK));
    assert_eq!(app.recommended_on, Some(date("2025-06-23")));
    // 10 working days: 24..27 (4), 30, 07-01..04 (9), 07-07 (10)
    assert_eq!(app.step_due_on, Some(date("2025-07-07")));
    assert!(app.visible_to(&bank(BANK)));
    assert!(!app.visible_to(&bank(OTHER_BANK)));
    // the bank approves and disburses
    history.push(app.bank_decide(&bank(BANK), true, "").unwrap());
    assert_eq!(app.status, Status::BankApproved);
    assert_eq!(app.step_due_on, None);
    history.push(app.disburse(&bank(BANK)).unwrap());
    assert_eq!(app.status, Status::Disbursed);
    assert!(app.status.is_terminal());

    assert_eq!(
        history,
        vec![
            moved(None, Status::VillageReview, "submit", ""),
            moved(
                Some(Status::VillageReview),
                Status::TownReview,
                "approve",
                ""
            ),
            moved(
                Some(Status::TownReview),
                Status::DistrictReview,
                "approve",
                "材料齐全"
            ),
            moved(
                Some(Status::DistrictReview),
                Status::PublicNotice,
                "approve",
                ""
            ),
            moved(
                Some(Status::PublicNotice),
                Status::Recommended,
                "recommend",
                BANK
            ),
            moved(
                Some(Status::Recommended),
                Status::BankApproved,
                "bank_approve",
                ""
            ),
            moved(
                Some(Status::BankApproved),
                Status::Disbursed,
                "disburse",
                ""
            ),
        ]
    );
    // each step entered once: village, town, district, bank
    assert_eq!(app.step_seq, 4);
}

// ---------------------------------------------------------------------------------------------
// Staff steps (R-IN-2)

// R-IN-2
#[test]
fn each_staff_step_approves_to_the_next() {
    for (status, _, actor, next) in staff_steps() {
        let mut app = household_in(status, day());
        let seq = app.step_seq;
        let m = review(&mut app, &actor, Decision::Approve, "").unwrap();
        assert_eq!(m, moved(Some(status), next, "approve", ""));
        assert_eq!(app.status, next);
        if next.step().is_some() {
            assert_eq!(app.step_seq, seq + 1, "{status:?}");
        }
    }
}

// R-IN-2: reject with a reason ends the application
#[test]
fn each_staff_step_rejects_with_a_reason() {
    for (status, _, actor, _) in staff_steps() {
        let mut app = household_in(status, day());
        let m = review(&mut app, &actor, Decision::Reject, "  非建档立卡户  ").unwrap();
        assert_eq!(
            m,
            moved(Some(status), Status::Rejected, "reject", "非建档立卡户")
        );
        assert_eq!(app.status, Status::Rejected);
        assert!(app.status.is_terminal());
        assert_eq!((app.step_started_on, app.step_due_on), (None, None));
        assert!(!app.is_overdue(date("2026-12-31")));
    }
}

// R-IN-2: return for correction (退回补正)
#[test]
fn each_staff_step_returns_for_correction_with_a_reason() {
    for (status, step, actor, _) in staff_steps() {
        let mut app = household_in(status, day());
        let m = review(
            &mut app,
            &actor,
            Decision::ReturnForCorrection,
            "缺收入证明",
        )
        .unwrap();
        assert_eq!(
            m,
            moved(Some(status), Status::Returned, "return", "缺收入证明")
        );
        assert_eq!(app.status, Status::Returned);
        assert_eq!(app.returned_from, Some(step));
        assert_eq!(app.step_due_on, None);
    }
}

// R-IN-2, R-X-3: reject and return need a reason; nothing changes without one
#[test]
fn reject_or_return_without_a_reason_is_invalid_and_changes_nothing() {
    for (status, _, actor, _) in staff_steps() {
        for decision in [Decision::Reject, Decision::ReturnForCorrection] {
            for reason in ["", "   \n"] {
                let mut app = household_in(status, day());
                let before = app.clone();
                assert_invalid(
                    review(&mut app, &actor, decision, reason),
                    "reason",
                    "R-IN-2",
                );
                assert_eq!(app, before, "{status:?} {decision:?}");
            }
        }
    }
}

// R-IN-2: each step is taken by its own tier
#[test]
fn the_wrong_tier_is_denied_at_every_staff_step() {
    let tiers = [village_staff(VILLAGE), town_staff(TOWN), district_staff()];
    for (status, _, right, _) in staff_steps() {
        for actor in tiers.iter().filter(|a| a.role != right.role) {
            for decision in [
                Decision::Approve,
                Decision::Reject,
                Decision::ReturnForCorrection,
            ] {
                let mut app = household_in(status, day());
                let before = app.clone();
                assert_denied(review(&mut app, actor, decision, "理由"));
                assert_eq!(app, before);
            }
        }
        // a bank or an operator does not even see an application under staff review
        for actor in [bank(BANK), operator()] {
            let mut app = household_in(status, day());
            assert_not_visible(review(&mut app, &actor, Decision::Approve, ""));
        }
    }
}

// R-IN-2: staff act only inside their area
#[test]
fn staff_of_another_town_or_village_do_not_see_the_application() {
    for (status, _, _, _) in staff_steps() {
        for actor in [
            town_staff(OTHER_TOWN),
            village_staff(NEIGHBOUR_VILLAGE),
            village_staff(OTHER_TOWN_VILLAGE),
        ] {
            let mut app = household_in(status, day());
            let before = app.clone();
            assert_not_visible(review(&mut app, &actor, Decision::Approve, ""));
            assert_eq!(app, before);
        }
    }
}

// R-IN-2 (README "Who before what"): a bank sees an application recommended to it but never
// reviews it: denied by its role whatever the state (nothing kept), not told the state.
#[test]
fn a_bank_never_reviews_whatever_the_state() {
    let (recommended, _) = recommended_household(day());
    for status in [
        Status::Recommended,
        Status::BankApproved,
        Status::BankRejected,
        Status::Disbursed,
    ] {
        let mut app = recommended.clone();
        app.status = status;
        for d in [
            Decision::Approve,
            Decision::Reject,
            Decision::ReturnForCorrection,
        ] {
            let e = review(&mut app, &bank(BANK), d, "not ours").unwrap_err();
            assert!(
                matches!(e, DomainError::PermissionDenied(_)),
                "{status:?} {d:?}: {e:?}"
            );
        }
        assert_eq!(app.status, status);
    }
}

// R-IN-2
#[test]
fn review_outside_a_staff_step_is_refused() {
    let mut app = household_in(Status::PublicNotice, day());
    assert_refused(
        review(&mut app, &district_staff(), Decision::Approve, ""),
        "R-IN-2",
    );
    let mut app = household_in(Status::VillageReview, day());
    review(
        &mut app,
        &village_staff(VILLAGE),
        Decision::Reject,
        "不符合条件",
    )
    .unwrap();
    // a rejected application is final
    for actor in [village_staff(VILLAGE), town_staff(TOWN), district_staff()] {
        assert_refused(review(&mut app, &actor, Decision::Approve, ""), "R-IN-2");
    }
    assert_eq!(app.status, Status::Rejected);
}

// R-IN-2, R-IN-5: once the notice has ended the district center may reject or return instead
// of recommending (an application whose admission no longer holds would otherwise stay under
// notice for good); during the notice, and for approval, review is refused.
#[test]
fn past_the_notice_the_district_center_rejects_or_returns() {
    let approved = day();
    let last = plus_days(
        approved,
        u64::from(policy().public_notice_calendar_days) - 1,
    );
    let after = plus_days(last, 1);
    let decide = |app: &mut Application, actor: &Actor, d: Decision, reason: &str, on| {
        app.review(actor, d, reason, on, policy(), calendar())
    };

    // on the notice's last day: not awaiting a review, whoever asks; nothing changes
    let mut app = household_in(Status::PublicNotice, approved);
    let before = app.clone();
    for d in [Decision::Reject, Decision::ReturnForCorrection] {
        for actor in [district_staff(), town_staff(TOWN)] {
            assert_refused(decide(&mut app, &actor, d, "年龄超限", last), "R-IN-2");
        }
    }
    // approval past the notice is a recommendation, not a review, and the refusal says so
    let approval = decide(&mut app, &district_staff(), Decision::Approve, "", after);
    assert!(
        format!("{approval:?}").contains("RecommendToBank"),
        "{approval:?}"
    );
    assert_refused(approval, "R-IN-2");
    // other tiers have no step there; the district center needs a reason
    for actor in [town_staff(TOWN), village_staff(VILLAGE)] {
        assert_refused(
            decide(&mut app, &actor, Decision::Reject, "年龄超限", after),
            "R-IN-2",
        );
    }
    assert_not_visible(decide(
        &mut app,
        &bank(BANK),
        Decision::Reject,
        "年龄超限",
        after,
    ));
    assert_invalid(
        decide(&mut app, &district_staff(), Decision::Reject, "  ", after),
        "reason",
        "R-IN-2",
    );
    assert_eq!(app, before);

    // the day after: rejected
    let m = decide(
        &mut app,
        &district_staff(),
        Decision::Reject,
        "年龄超限",
        after,
    )
    .unwrap();
    assert_eq!(
        (m.from, m.to, m.action, m.reason.as_str()),
        (
            Some(Status::PublicNotice),
            Status::Rejected,
            "reject",
            "年龄超限"
        )
    );
    assert_eq!(app.status, Status::Rejected);

    // or returned to the district step, which a resubmission enters again (then a new notice)
    let mut app = household_in(Status::PublicNotice, approved);
    let m = decide(
        &mut app,
        &district_staff(),
        Decision::ReturnForCorrection,
        "金额超过授信额度",
        after,
    )
    .unwrap();
    assert_eq!(
        (m.from, m.to),
        (Some(Status::PublicNotice), Status::Returned)
    );
    assert_eq!(
        app.notice_ends_on, None,
        "no notice until the district approves again"
    );
    let m = app
        .resubmit(&village_staff(VILLAGE), after, policy(), calendar())
        .unwrap();
    assert_eq!(m.to, Status::DistrictReview);
    let again = plus_days(after, 1);
    let m = decide(&mut app, &district_staff(), Decision::Approve, "", again).unwrap();
    assert_eq!(m.to, Status::PublicNotice);
    assert_eq!(
        app.notice_ends_on,
        Some(plus_days(
            again,
            u64::from(policy().public_notice_calendar_days) - 1
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// Resubmission (R-IN-2 退回补正)

// R-IN-2: back to the step that returned it
#[test]
fn resubmission_returns_to_the_step_that_returned_it() {
    let later = date("2025-06-20");
    for (status, step, actor, _) in staff_steps() {
        let mut app = household_in(status, day());
        review(&mut app, &actor, Decision::ReturnForCorrection, "补充材料").unwrap();
        let seq = app.step_seq;
        let m = app
            .resubmit(&village_staff(VILLAGE), later, policy(), calendar())
            .unwrap();
        assert_eq!(m, moved(Some(Status::Returned), status, "resubmit", ""));
        assert_eq!(app.status, status);
        assert_eq!(app.current_step(), Some(step));
        assert_eq!(app.returned_from, None);
        assert_eq!(app.step_seq, seq + 1);
        assert_eq!(app.step_started_on, Some(later));
        assert_eq!(
            app.step_due_on,
            Some(
                calendar()
                    .add_working_days(later, crate::domain::application::step_days(step, policy()))
                    .unwrap()
            )
        );
    }
}

// R-IN-2: a returned application awaits correction; the tier that returned it may reject it
// instead (with a reason), when no correction can make it admissible again. Nothing else
// reviews it: not an approval or a second return, not another tier.
#[test]
fn the_tier_that_returned_an_application_may_reject_it() {
    for (status, _, actor, _) in staff_steps() {
        let mut app = household_in(status, day());
        review(&mut app, &actor, Decision::ReturnForCorrection, "补充材料").unwrap();
        let returned = app.clone();
        for decision in [Decision::Approve, Decision::ReturnForCorrection] {
            assert_refused(review(&mut app, &actor, decision, "再次"), "R-IN-2");
        }
        for other in [village_staff(VILLAGE), town_staff(TOWN), district_staff()]
            .into_iter()
            .filter(|o| o.role != actor.role)
        {
            assert_denied(review(&mut app, &other, Decision::Reject, "超龄"));
        }
        assert_invalid(
            review(&mut app, &actor, Decision::Reject, "  "),
            "reason",
            "R-IN-2",
        );
        assert_eq!(app, returned, "refusals change nothing");
        let m = review(&mut app, &actor, Decision::Reject, "超龄，无法补正").unwrap();
        assert_eq!(
            m,
            moved(
                Some(Status::Returned),
                Status::Rejected,
                "reject",
                "超龄，无法补正"
            )
        );
        assert_eq!(app.status, Status::Rejected);
        assert_eq!(app.step_due_on, None);
        assert_eq!(app.returned_from, None, "no longer returned");
    }
    // Returned by the district once the notice had ended: the district rejects it.
    let mut app = household_in(Status::PublicNotice, day());
    let after = plus_days(app.notice_ends_on.expect("under notice"), 1);
    app.review(
        &district_staff(),
        Decision::ReturnForCorrection,
        "公示期间发现收入不实",
        after,
        policy(),
        calendar(),
    )
    .unwrap();
    assert_eq!(
        (app.status, app.returned_from),
        (Status::Returned, Some(Step::District))
    );
    assert_denied(review(
        &mut app,
        &village_staff(VILLAGE),
        Decision::Reject,
        "x",
    ));
    review(&mut app, &district_staff(), Decision::Reject, "列入黑名单").unwrap();
    assert_eq!(app.status, Status::Rejected);
}

// R-IN-1, R-IN-2: only who may file may resubmit
#[test]
fn resubmission_of_a_household_by_another_tier_is_denied() {
    let mut app = household_in(Status::TownReview, day());
    review(
        &mut app,
        &town_staff(TOWN),
        Decision::ReturnForCorrection,
        "补充材料",
    )
    .unwrap();
    let before = app.clone();
    assert_denied(app.resubmit(&town_staff(TOWN), day(), policy(), calendar()));
    assert_denied(app.resubmit(&district_staff(), day(), policy(), calendar()));
    assert_not_visible(app.resubmit(
        &village_staff(NEIGHBOUR_VILLAGE),
        day(),
        policy(),
        calendar(),
    ));
    assert_eq!(app, before);
    // Who before what: denied in any state, not told the state (a refusal a retry would
    // repeat once the application is returned).
    let mut not_returned = household_in(Status::VillageReview, day());
    assert_denied(not_returned.resubmit(&town_staff(TOWN), day(), policy(), calendar()));
    assert_denied(not_returned.resubmit(&district_staff(), day(), policy(), calendar()));
}

// R-IN-1, R-IN-2
#[test]
fn district_filed_enterprise_returned_by_the_district_is_resubmitted_there() {
    let (mut app, _) = file(&district_staff(), ApplicantKind::Enterprise, TOWN).unwrap();
    review(
        &mut app,
        &district_staff(),
        Decision::ReturnForCorrection,
        "缺带贫协议",
    )
    .unwrap();
    let m = app
        .resubmit(&district_staff(), day(), policy(), calendar())
        .unwrap();
    assert_eq!(m.to, Status::DistrictReview);
}

// R-IN-2
#[test]
fn resubmission_of_an_application_that_was_not_returned_is_refused() {
    for status in [
        Status::VillageReview,
        Status::TownReview,
        Status::PublicNotice,
    ] {
        let mut app = household_in(status, day());
        let before = app.clone();
        assert_refused(
            app.resubmit(&village_staff(VILLAGE), day(), policy(), calendar()),
            "R-IN-2",
        );
        assert_eq!(app, before);
    }
    let mut app = household_in(Status::VillageReview, day());
    review(
        &mut app,
        &village_staff(VILLAGE),
        Decision::Reject,
        "不符合",
    )
    .unwrap();
    assert_refused(
        app.resubmit(&village_staff(VILLAGE), day(), policy(), calendar()),
        "R-IN-2",
    );
}

// ---------------------------------------------------------------------------------------------
// Recommendation and the bank (R-IN-2, R-IN-6)

// R-IN-2
#[test]
fn only_the_district_center_recommends() {
    let approved = day();
    let after = plus_days(approved, 5);
    for actor in [village_staff(VILLAGE), town_staff(TOWN)] {
        let mut app = household_in(Status::PublicNotice, approved);
        assert_denied(app.recommend(&actor, BANK, after, policy(), calendar()));
        assert_eq!(app.status, Status::PublicNotice);
    }
    let mut app = household_in(Status::PublicNotice, approved);
    assert_not_visible(app.recommend(&bank(BANK), BANK, after, policy(), calendar()));
}

// R-IN-2: nothing is recommended before the district approved it
#[test]
fn recommendation_during_review_is_refused() {
    let mut app = household_in(Status::DistrictReview, day());
    assert_refused(
        app.recommend(
            &district_staff(),
            BANK,
            plus_days(day(), 30),
            policy(),
            calendar(),
        ),
        "R-IN-2",
    );
}

// R-IN-6: the bank sees only what was recommended to it
#[test]
fn a_bank_sees_only_applications_recommended_to_it() {
    let app = household_in(Status::PublicNotice, day());
    assert!(!app.visible_to(&bank(BANK)));
    let (app, _) = recommended_household(day());
    assert!(app.visible_to(&bank(BANK)));
    assert!(!app.visible_to(&bank(OTHER_BANK)));
    assert!(!app.visible_to(&operator()));
}

// R-IN-6
#[test]
fn bank_decision_by_another_bank_is_not_visible() {
    let (mut app, _) = recommended_household(day());
    let before = app.clone();
    assert_not_visible(app.bank_decide(&bank(OTHER_BANK), true, ""));
    assert_not_visible(app.disburse(&bank(OTHER_BANK)));
    assert_eq!(app, before);
}

// R-IN-6
#[test]
fn staff_may_not_record_a_bank_decision() {
    let (mut app, _) = recommended_household(day());
    let before = app.clone();
    for actor in [district_staff(), town_staff(TOWN), village_staff(VILLAGE)] {
        assert_denied(app.bank_decide(&actor, true, ""));
    }
    // staff who cannot see it are told just that
    assert_not_visible(app.bank_decide(&town_staff(OTHER_TOWN), true, ""));
    assert_eq!(app, before);
}

// R-IN-6
#[test]
fn bank_rejection_is_final() {
    let (mut app, _) = recommended_household(day());
    let m = app.bank_decide(&bank(BANK), false, "经营风险高").unwrap();
    assert_eq!(
        m,
        moved(
            Some(Status::Recommended),
            Status::BankRejected,
            "bank_reject",
            "经营风险高"
        )
    );
    assert!(app.status.is_terminal());
    assert_eq!(app.step_due_on, None);
    assert_refused(app.bank_decide(&bank(BANK), true, ""), "R-IN-6");
    assert_refused(app.disburse(&bank(BANK)), "R-IN-6");
}

// R-IN-6
#[test]
fn disbursement_before_the_bank_approved_is_refused() {
    let (mut app, _) = recommended_household(day());
    let before = app.clone();
    assert_refused(app.disburse(&bank(BANK)), "R-IN-6");
    assert_eq!(app, before);
    // a bank cannot disburse what was never recommended to it
    let mut app = household_in(Status::PublicNotice, day());
    assert_not_visible(app.disburse(&bank(BANK)));
}

// R-IN-6
#[test]
fn a_bank_decision_is_taken_once_and_disbursement_once() {
    let (mut app, _) = recommended_household(day());
    app.bank_decide(&bank(BANK), true, "").unwrap();
    assert_refused(app.bank_decide(&bank(BANK), false, "改变主意"), "R-IN-6");
    app.disburse(&bank(BANK)).unwrap();
    assert_refused(app.disburse(&bank(BANK)), "R-IN-6");
    assert_eq!(app.status, Status::Disbursed);
}

/// R-IN-2, R-CR-11: a correction names its field and both values, or, for personal data,
/// only that it was corrected; an unchanged value is no correction. Kept as JSON without the
/// withheld values.
#[test]
fn corrections_name_the_field_and_withhold_personal_values() {
    assert_eq!(Correction::of("term_months", 12, 12), None);
    let term = Correction::of("term_months", 12, 24).unwrap();
    assert_eq!(
        (term.from.as_deref(), term.to.as_deref()),
        (Some("12"), Some("24"))
    );
    assert!(!term.is_personal());
    assert_eq!(Correction::personal("household.phone", "138", "138"), None);
    let phone = Correction::personal("household.phone", "13800138000", "13900139000").unwrap();
    assert!(phone.is_personal());
    let kept = serde_json::to_string(&[&term, &phone]).unwrap();
    assert_eq!(
        kept,
        r#"[{"field":"term_months","from":"12","to":"24"},{"field":"household.phone"}]"#
    );
    assert!(!kept.contains("1380"), "no personal value is kept: {kept}");
    let back: Vec<Correction> = serde_json::from_str(&kept).unwrap();
    assert_eq!(back, vec![term, phone]);
}
