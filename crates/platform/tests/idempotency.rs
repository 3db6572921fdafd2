//! R-IN-8 (idempotent writes keyed by the client's request id): concurrent retries of one write
//! apply it once and all see the first response; a request id reused for different content is
//! refused, naming `request_id` and the rule.

mod common;

use std::{sync::Arc, time::Duration};

use common::{count, platform_db};
use fupin_kernel::AreaCode;
use fupin_platform::{
    Caller, Role, ServiceError,
    error::RuleFailure,
    idempotency::{self, Claim, RequestKey},
};
use fupin_proto::admin::v1::{SetTimeRequest, TimeReply};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Barrier;
use tonic::Code;

const METHOD: &str = "fupin.test.v1.TestService/Write";
const CALLERS: usize = 16;

fn caller() -> Caller {
    Caller {
        subject: "clerk-1".into(),
        role: Role::DistrictStaff,
        area: AreaCode::parse("410311").expect("district code"),
        bank_id: None,
    }
}

/// Claims `key`, which must be unused: the first attempt's transaction.
async fn fresh(pool: &PgPool, key: &RequestKey) -> Transaction<'static, Postgres> {
    match idempotency::claim::<TimeReply>(pool, key)
        .await
        .expect("claim")
    {
        Claim::Fresh(tx) => tx,
        Claim::Replay(r) => panic!("first claim must be fresh, got a replay: {r:?}"),
    }
}

fn request(body: &str) -> SetTimeRequest {
    SetTimeRequest { now: body.into() }
}

#[derive(Debug)]
enum Seen {
    Fresh(TimeReply),
    Replay(TimeReply),
}

/// R-IN-8: 16 concurrent calls with one request id: exactly one does the write, every other
/// one gets the first response, and the effect exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_write_once_and_replay_the_first_response() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = db.pool.clone();
        sqlx::query("create table effects (request_id text not null, writer int not null)")
            .execute(&pool)
            .await
            .expect("effects table");
        let key = RequestKey::new(
            &caller(),
            METHOD,
            "req-0001",
            &request("2030-01-01T00:00:00Z"),
        )
        .expect("key");
        let barrier = Arc::new(Barrier::new(CALLERS));

        let tasks: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (pool, key, barrier) = (pool.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    match idempotency::claim::<TimeReply>(&pool, &key)
                        .await
                        .expect("claim")
                    {
                        Claim::Fresh(mut tx) => {
                            sqlx::query("insert into effects (request_id, writer) values ($1, $2)")
                                .bind(&key.request_id)
                                .bind(i as i32)
                                .execute(&mut *tx)
                                .await
                                .expect("effect");
                            // Hold the claim a while so the others really race against it.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let response = TimeReply {
                                now: format!("written by {i}"),
                                pinned: true,
                            };
                            let response = idempotency::settle(tx, &key, Ok(response))
                                .await
                                .expect("settle");
                            Seen::Fresh(response)
                        }
                        Claim::Replay(r) => Seen::Replay(r),
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("caller task"));
        }

        let fresh: Vec<&TimeReply> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Fresh(r) => Some(r),
                Seen::Replay(_) => None,
            })
            .collect();
        assert_eq!(
            fresh.len(),
            1,
            "exactly one caller does the write: {seen:?}"
        );
        let first = fresh[0];
        for s in &seen {
            if let Seen::Replay(r) = s {
                assert_eq!(r, first, "every retry sees the first response");
            }
        }
        assert_eq!(
            count(&pool, "select count(*) from effects").await,
            1,
            "the effect happened once"
        );
        let writer: i32 = sqlx::query_scalar("select writer from effects")
            .fetch_one(&pool)
            .await
            .expect("writer");
        assert_eq!(first.now, format!("written by {writer}"));
        assert_eq!(
            count(
                &pool,
                "select count(*) from idempotency_keys where response is not null"
            )
            .await,
            1
        );
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-IN-8: a request id reused with a different request is `InvalidArgument` naming
/// `request_id` and R-IN-8 (never the unrelated first response); the same request still replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_request_id_with_different_body_is_invalid_argument() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let original = RequestKey::new(
            &caller(),
            METHOD,
            "req-0002",
            &request("2030-01-01T00:00:00Z"),
        )
        .expect("key");
        let tx = fresh(pool, &original).await;
        let response = TimeReply {
            now: "first".into(),
            pinned: false,
        };
        idempotency::settle(tx, &original, Ok(response.clone()))
            .await
            .expect("settle");

        let different = RequestKey::new(
            &caller(),
            METHOD,
            "req-0002",
            &request("2031-06-30T00:00:00Z"),
        )
        .expect("key");
        let err = match idempotency::claim::<TimeReply>(pool, &different).await {
            Err(e) => e,
            Ok(Claim::Fresh(_)) => panic!("a reused request id must not start a second write"),
            Ok(Claim::Replay(r)) => {
                panic!("a reused request id must not replay an unrelated response: {r:?}")
            }
        };
        assert_eq!(err.code(), Code::InvalidArgument);
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("request_id") && status.message().contains("R-IN-8"),
            "the refusal names the field and the rule: {:?}",
            status.message()
        );

        match idempotency::claim::<TimeReply>(pool, &original)
            .await
            .expect("retry")
        {
            Claim::Replay(r) => assert_eq!(r, response),
            Claim::Fresh(_) => panic!("the identical retry must replay"),
        }
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-IN-8: a write that failed (rolled back) leaves nothing behind, so its retry is a fresh write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_frees_its_request_id() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let key = RequestKey::new(&caller(), METHOD, "req-0003", &request("x")).expect("key");
        let tx = fresh(pool, &key).await;
        let failed: Result<TimeReply, _> = Err(ServiceError::Unavailable("an outage".into()));
        assert!(idempotency::settle(tx, &key, failed).await.is_err());
        assert!(matches!(
            idempotency::claim::<TimeReply>(pool, &key)
                .await
                .expect("retry"),
            Claim::Fresh(_)
        ));
        assert!(
            RequestKey::new(&caller(), METHOD, "  ", &request("x")).is_err(),
            "an empty request id is refused"
        );
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-IN-8: a refusal by a rule is the request id's first result, kept in the attempt's own
/// transaction: a retry that was already waiting on the key gets the same refusal, never a
/// free key, and the refused attempt's writes are undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_kept_before_a_waiting_retry_sees_the_key() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = db.pool.clone();
        sqlx::query("create table effects (request_id text not null)")
            .execute(&pool)
            .await
            .expect("effects table");
        let key = RequestKey::new(&caller(), METHOD, "req-0004", &request("x")).expect("key");
        let mut tx = fresh(&pool, &key).await;
        sqlx::query("insert into effects (request_id) values ($1)")
            .bind(&key.request_id)
            .execute(&mut *tx)
            .await
            .expect("effect");
        // The retry starts while the first attempt holds the key, and waits on it.
        let retry = tokio::spawn({
            let (pool, key) = (pool.clone(), key.clone());
            async move { idempotency::claim::<TimeReply>(&pool, &key).await }
        });
        // Until its insert of the key is seen waiting on the first attempt's lock.
        loop {
            let waiting: bool = sqlx::query_scalar(
                r#"select exists (select 1 from pg_stat_activity
                   where datname = current_database() and wait_event_type = 'Lock'
                     and query like 'insert into idempotency_keys%')"#,
            )
            .fetch_one(&pool)
            .await
            .expect("pg_stat_activity");
            if waiting {
                break;
            }
            assert!(
                !retry.is_finished(),
                "the retry did not wait for the first attempt"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let refusal = ServiceError::Refused(vec![RuleFailure {
            rule: "R-RK-9",
            field: None,
            message: "blacklisted".into(),
        }]);
        let first = idempotency::settle::<TimeReply>(tx, &key, Err(refusal))
            .await
            .expect_err("the refusal is returned");
        assert_eq!(first.code(), Code::FailedPrecondition);

        let again = match retry.await.expect("retry task") {
            Err(e) => e,
            Ok(Claim::Fresh(_)) => panic!("the key was free between the refusal and its keeping"),
            Ok(Claim::Replay(r)) => panic!("a refusal replayed as a response: {r:?}"),
        };
        assert_eq!(again.code(), Code::FailedPrecondition);
        assert_eq!(
            tonic::Status::from(again).message(),
            tonic::Status::from(first).message(),
            "the retry gets the first refusal"
        );
        let effects: i64 = sqlx::query_scalar("select count(*) from effects")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(effects, 0, "the refused attempt's writes are undone");
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-IN-8: a refusal decided after one of the attempt's statements failed (its transaction
/// aborted) is still kept: undoing to the savepoint makes the transaction usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_a_failed_statement_is_kept() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let key = RequestKey::new(&caller(), METHOD, "req-0005", &request("x")).expect("key");
        let mut tx = fresh(pool, &key).await;
        assert!(
            sqlx::query("select 1 / 0").execute(&mut *tx).await.is_err(),
            "the statement fails and aborts the transaction"
        );
        let refusal = ServiceError::refused("R-IN-5", "objection already upheld");
        idempotency::settle::<TimeReply>(tx, &key, Err(refusal))
            .await
            .expect_err("the refusal is returned");
        match idempotency::claim::<TimeReply>(pool, &key).await {
            Err(e) => assert!(
                e.code() == Code::FailedPrecondition && e.to_string().contains("R-IN-5"),
                "the retry gets the refusal: {e}"
            ),
            Ok(Claim::Fresh(_)) => panic!("the refusal was not kept"),
            Ok(Claim::Replay(r)) => panic!("a refusal replayed as a response: {r:?}"),
        }
    })
    .await
    .expect("test took longer than 30 s");
}
