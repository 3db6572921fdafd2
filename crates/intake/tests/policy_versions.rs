//! R-X-4: policy values are versioned with effective dates and each decision records the
//! version it used. A second intake policy version takes effect while an application is in
//! flight: the moves before it record the first, the moves after it the second, and the
//! re-check at recommendation refuses under the second's lower cap, naming it.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;

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
        let history = t
            .as_district_staff()
            .list_transitions(pb::ListTransitionsRequest {
                application_id: a.id.clone(),
                page: None,
            })
            .await
            .expect("history")
            .into_inner()
            .transitions;
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
