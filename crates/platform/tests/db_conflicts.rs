//! A transaction PostgreSQL gives up in a conflict with another (here a real deadlock) is
//! answered `UNAVAILABLE`, a retry with the same request id, not `INTERNAL` (R-IN-8).

mod common;

use std::time::Duration;

use common::platform_db;
use fupin_platform::{ServiceError, db::is_given_up};
use tonic::{Code, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_answered_unavailable() {
    let db = platform_db().await;
    sqlx::query("create table pair (id int primary key, n int not null)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("insert into pair values (1, 0), (2, 0)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut a = db.pool.begin().await.unwrap();
    let mut b = db.pool.begin().await.unwrap();
    let bump = "update pair set n = n + 1 where id = $1";
    sqlx::query(bump).bind(1).execute(&mut *a).await.unwrap();
    sqlx::query(bump).bind(2).execute(&mut *b).await.unwrap();
    // Each now waits for the row the other holds: PostgreSQL aborts one of them.
    let (ra, rb) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            sqlx::query(bump).bind(2).execute(&mut *a),
            sqlx::query(bump).bind(1).execute(&mut *b),
        )
    })
    .await
    .expect("PostgreSQL detects the deadlock");
    let aborted = match (ra, rb) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("one of the two is aborted: {other:?}"),
    };
    let cause = anyhow::Error::from(aborted);
    assert!(is_given_up(&cause), "{cause:?}");
    let status = Status::from(ServiceError::Internal(cause));
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("retry with the same request id"),
        "{status:?}"
    );
    assert!(!is_given_up(&anyhow::anyhow!("any other failure")));
}
