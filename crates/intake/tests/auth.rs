//! ARCHITECTURE.md "Cross-cutting" (Auth) on the intake service: every IntakeService call needs
//! a bearer token signed with the service's key; health answers without one; the test clock
//! moves only for an operator.

mod common;

use common::{SECRET, bounded, err, spawn_intake};
use fupin_platform::{Role, auth::token_for};
use fupin_proto::{
    admin::v1::{SetTimeRequest, test_clock_service_client::TestClockServiceClient},
    intake::v1 as pb,
};
use tonic::{Code, Request};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// ARCHITECTURE "Auth": no token, a token signed with another key, an expired token, a token
/// whose area does not fit its role or is not one of the district's, a token naming no
/// subject, a bank token of a bank that is not a partner bank, and a token that lives longer
/// than a day are all `Unauthenticated`, on reads and writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intake_calls_without_a_valid_token_are_unauthenticated() {
    bounded(60, async {
        let t = spawn_intake().await;
        let wrong_key = token_for(
            "another-secret",
            "x",
            Role::DistrictStaff,
            "410311",
            None,
            3600,
        );
        let expired = token_for(SECRET, "x", Role::DistrictStaff, "410311", None, -3600);
        let village_role_district_area =
            token_for(SECRET, "x", Role::VillageStaff, "410311", None, 3600);
        // Areas this deployment does not serve: another district (whose district token could
        // otherwise run the deadline scan), a town the district does not have.
        let other_district = token_for(SECRET, "x", Role::DistrictStaff, "110101", None, 3600);
        let unknown_town = token_for(SECRET, "x", Role::TownStaff, "410311199", None, 3600);
        let blank_subject = token_for(SECRET, " ", Role::DistrictStaff, "410311", None, 3600);
        // R-IN-6: a bank that is no partner bank of any policy version.
        let other_bank = token_for(SECRET, "x", Role::Bank, "410311", Some("ccb-other"), 3600);
        // Longer than the day a token may live by default (AUTH_JWT_MAX_LIFETIME_HOURS).
        let too_long = token_for(SECRET, "x", Role::DistrictStaff, "410311", None, 25 * 3600);
        for (what, mut c) in [
            ("no token", t.anonymous()),
            ("wrong key", t.client_with(Some(&wrong_key))),
            ("expired", t.client_with(Some(&expired))),
            (
                "area/role mismatch",
                t.client_with(Some(&village_role_district_area)),
            ),
            ("not a jwt", t.client_with(Some("garbage"))),
            ("another district", t.client_with(Some(&other_district))),
            ("unknown town", t.client_with(Some(&unknown_town))),
            ("blank subject", t.client_with(Some(&blank_subject))),
            ("not a partner bank", t.client_with(Some(&other_bank))),
            ("lives longer than a day", t.client_with(Some(&too_long))),
        ] {
            let s = err(c
                .list_applications(pb::ListApplicationsRequest::default())
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            let s = err(c
                .submit_application(common::household_request(
                    &common::resident_id(1),
                    common::VILLAGE_A,
                    "1000",
                ))
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            let s = err(c
                .run_deadline_scan(pb::RunDeadlineScanRequest {
                    request_id: common::rid(),
                })
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
        }
        assert_eq!(
            common::count(&t.pool, "select count(*) from applications").await,
            0
        );
        // A valid token passes the same gate.
        let ok = t
            .as_district_staff()
            .list_applications(pb::ListApplicationsRequest::default())
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        t.shutdown().await;
    })
    .await;
}

/// Load balancers probe health without a token; the service reports SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_is_serving_without_a_token() {
    bounded(60, async {
        let t = spawn_intake().await;
        let mut health = HealthClient::new(t.channel.clone());
        for service in ["", "fupin.intake.v1.IntakeService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap_or_else(|s| panic!("health {service:?}: {s:?}"))
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "service {service:?}");
        }
        t.shutdown().await;
    })
    .await;
}

/// The test clock (enabled here) is moved only by an operator: district staff get
/// `PermissionDenied`, no token `Unauthenticated`, and the service's time stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_operator_moves_the_test_clock() {
    bounded(60, async {
        let t = spawn_intake().await;
        let before = fupin_platform::Clock::now(t.clock.as_ref());
        let mut clock = TestClockServiceClient::new(t.channel.clone());
        let set = |token: Option<String>| {
            let mut r = Request::new(SetTimeRequest {
                now: "2030-01-01T09:00:00+08:00".into(),
            });
            if let Some(tok) = token {
                r.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {tok}").parse().expect("ascii"),
                );
            }
            r
        };
        let district = token_for(SECRET, "d", Role::DistrictStaff, "410311", None, 3600);
        let s = err(clock.set_time(set(Some(district))).await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let s = err(clock.set_time(set(None)).await);
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        let after = fupin_platform::Clock::now(t.clock.as_ref());
        assert!(
            (after - before).num_seconds().abs() < 60,
            "clock unmoved: {before} -> {after}"
        );
        let operator = token_for(SECRET, "ops", Role::Operator, "410311", None, 3600);
        let reply = clock
            .set_time(set(Some(operator)))
            .await
            .expect("operator moves the clock")
            .into_inner();
        assert!(reply.now.starts_with("2030-01-01T01:00:0"), "{reply:?}");
        t.shutdown().await;
    })
    .await;
}
