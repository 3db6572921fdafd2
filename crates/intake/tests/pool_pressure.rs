//! Liveness under load: a write that holds its row lock and transaction reads everything else
//! it needs through that same transaction, so it finishes with a single pool connection
//! instead of waiting for a second one that the other in-flight writes hold (R-IN-3 admission
//! is re-checked inside recommendation and resubmission).

mod common;

use std::time::Duration;

use common::*;
use fupin_proto::intake::v1 as pb;
use sqlx::{PgPool, Postgres, pool::PoolConnection};

/// Takes every connection of `pool` but `free`.
async fn exhaust(pool: &PgPool, free: usize) -> Vec<PoolConnection<Postgres>> {
    let mut held = Vec::new();
    while let Ok(c) = tokio::time::timeout(Duration::from_millis(300), pool.acquire()).await {
        held.push(c.expect("connection"));
    }
    for _ in 0..free {
        held.pop();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    held
}

/// R-IN-3, R-IN-2: recommendation and resubmission complete with one free connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_rechecks_run_inside_the_writing_transaction() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(71), resident_id(72));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let a1 = t.submit_household(&r1, VILLAGE_A, "5000").await;
        t.approve_to_notice(&a1).await;
        let a2 = t.submit_household(&r2, VILLAGE_A, "5000").await;
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &a2.id,
            pb::Decision::ReturnForCorrection,
            "photo of the land contract missing",
        )
        .await;
        t.set_time("2026-03-07T09:00:00+08:00");
        let mut district = t.as_district_staff();
        let mut village = t.as_village_staff(VILLAGE_A);

        let held = exhaust(&t.service_pool, 1).await;
        let recommended = tokio::time::timeout(
            Duration::from_secs(10),
            district.recommend_to_bank(pb::RecommendToBankRequest {
                request_id: rid(),
                application_id: a1.id.clone(),
                bank_id: BANK.into(),
            }),
        )
        .await
        .expect("recommendation does not wait for a second connection")
        .expect("recommended")
        .into_inner();
        assert_eq!(recommended.status(), pb::Status::Recommended);
        let resubmitted = tokio::time::timeout(
            Duration::from_secs(10),
            village.resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: a2.id.clone(),
                note: "contract photo added".into(),
                ..Default::default()
            }),
        )
        .await
        .expect("resubmission does not wait for a second connection")
        .expect("resubmitted")
        .into_inner();
        assert_eq!(resubmitted.status(), pb::Status::VillageReview);
        drop(held);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-4, R-IN-8: scans on request run one at a time. Each holds its request id's connection
/// while its batches take a second one, so with two connections free six concurrent scans
/// still all finish (run side by side, each would hold one connection and wait for another).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_on_request_finish_with_two_free_connections() {
    bounded(90, async {
        let t = spawn_intake().await;
        let held = exhaust(&t.service_pool, 2).await;
        let scans = (0..6).map(|_| {
            let mut operator = t.as_operator();
            async move {
                operator
                    .run_deadline_scan(pb::RunDeadlineScanRequest { request_id: rid() })
                    .await
            }
        });
        let done = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(scans))
            .await
            .expect("the scans do not wait on each other's connections");
        for r in done {
            r.expect("scanned");
        }
        drop(held);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8, R-X-3: the database out of reach is an outage, not a bug: reads and writes are
/// answered `UNAVAILABLE` (what gRPC clients and banks' cores retry; a write retried with its
/// request id is safe), not `INTERNAL`, and the write changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_out_of_reach_is_unavailable() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(73);
        t.given_credit_household(&r, VILLAGE_A).await;
        let a = t.submit_household(&r, VILLAGE_A, "5000").await;
        let mut village = t.as_village_staff(VILLAGE_A);

        // Closed, not awaited: from now on the service gets no connection from its pool.
        drop(t.service_pool.close());
        let read = t
            .get_as(&mut village, &a.id)
            .await
            .expect_err("no database");
        assert_eq!(read.code(), tonic::Code::Unavailable, "{read:?}");
        let write = village
            .review_application(pb::ReviewApplicationRequest {
                request_id: rid(),
                application_id: a.id.clone(),
                decision: pb::Decision::Approve as i32,
                ..Default::default()
            })
            .await
            .expect_err("no database");
        assert_eq!(write.code(), tonic::Code::Unavailable, "{write:?}");
        assert!(write.message().contains("retry"), "{}", write.message());
        assert_eq!(
            count(&t.pool, "select count(*) from transitions").await,
            1,
            "only the submission's transition"
        );
        t.shutdown().await;
    })
    .await;
}
