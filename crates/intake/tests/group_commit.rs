//! Submissions are decided and written in batches (group commit, `fupin_intake::submit`);
//! each caller must still get exactly the answer it would have got alone.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use prost::Name;

/// R-IN-3, R-IN-8: a burst of concurrent submissions, half from rated households (admitted)
/// and half from unrated ones (refused, R-CR-3), lands in shared batches. Every admitted one
/// gets its own application and event, every refused one its refusal, and nothing of a
/// refused one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_burst_of_mixed_submissions_answers_each_as_if_alone() {
    bounded(120, async {
        let t = spawn_intake().await;
        let rated: Vec<String> = (300..316).map(resident_id).collect();
        for r in &rated {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let unrated: Vec<String> = (400..416).map(resident_id).collect();
        let calls = rated
            .iter()
            .map(|r| (r.clone(), true))
            .chain(unrated.iter().map(|r| (r.clone(), false)))
            .map(|(resident, admitted)| {
                let mut c = t.as_village_staff(VILLAGE_A);
                tokio::spawn(async move {
                    let r = c
                        .submit_application(household_request(&resident, VILLAGE_A, "15000"))
                        .await;
                    (resident, admitted, r.map(|r| r.into_inner()))
                })
            });
        let mut ids = std::collections::HashSet::new();
        for call in futures::future::join_all(calls).await {
            let (resident, admitted, answer) = call.expect("task");
            if admitted {
                let app = answer.unwrap_or_else(|s| panic!("{resident} is admitted: {s:?}"));
                assert_eq!(app.applicant_id, masked(&resident), "its own applicant");
                assert_eq!(app.status(), pb::Status::VillageReview);
                assert!(ids.insert(app.id.clone()), "a distinct application");
            } else {
                let s = answer.expect_err("an unrated household is refused");
                assert_refused(&s, &["R-CR-3"]);
            }
        }
        assert_eq!(ids.len(), rated.len());
        assert_eq!(
            count(&t.pool, "select count(*) from applications").await,
            rated.len() as i64
        );
        assert_eq!(
            count(&t.pool, "select count(*) from transitions").await,
            rated.len() as i64
        );
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            (rated.len() + unrated.len()) as i64,
            "every submission's first result is kept with its key"
        );
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from idempotency_keys where refused_code is not null"
            )
            .await,
            unrated.len() as i64,
            "a refusal is kept as a refusal"
        );
        t.outbox_drained().await;
        let events = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        let event_ids: std::collections::HashSet<String> = events
            .iter()
            .map(|e| e.decode::<pb::ApplicationSubmitted>().application_id)
            .collect();
        assert_eq!(event_ids, ids, "one event per admitted application");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8: concurrent attempts of a submission that is refused all get the one refusal, kept
/// once with the request id; no application is stored. Once the household is rated, that id
/// still answers with its first result, the refusal; a new id is decided afresh and admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_retries_of_a_refused_submission_are_all_refused() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(501);
        let req = household_request(&resident, VILLAGE_A, "15000");
        let calls = (0..12).map(|_| {
            let mut c = t.as_village_staff(VILLAGE_A);
            let req = req.clone();
            tokio::spawn(async move { c.submit_application(req).await })
        });
        let mut messages = std::collections::HashSet::new();
        for call in futures::future::join_all(calls).await {
            let s = err(call.expect("task"));
            assert_refused(&s, &["R-CR-3"]);
            messages.insert(s.message().to_owned());
        }
        assert_eq!(messages.len(), 1, "one refusal for all: {messages:?}");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            1
        );

        t.given_credit_household(&resident, VILLAGE_A).await;
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(req.clone())
            .await);
        assert_refused(&s, &["R-CR-3"]);
        let req = household_request(&resident, VILLAGE_A, "15000");
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = submit(&mut t.as_village_staff(VILLAGE_A), req.clone()).await;
        let again = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
        assert_eq!(app, again, "a retry after success replays the first answer");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8, R-X-2: a submission whose write fails (here a trigger poisons one row) fails alone:
/// the others sharing its batch are written, its request id stays unused, and a retry after
/// the fault is gone succeeds. The batch is made to hold all of them: a lock holds the
/// dispatcher on an earlier batch while they queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_failing_write_fails_only_its_own_submission() {
    bounded(120, async {
        let t = spawn_intake().await;
        for sql in [
            r#"create function poison() returns trigger language plpgsql as $$
               begin
                 if new.project_description = 'poison' then raise exception 'poisoned row'; end if;
                 return new;
               end $$"#,
            "create trigger poison before insert on applications for each row execute function poison()",
        ] {
            sqlx::query(sql).execute(&t.pool).await.expect("install the fault");
        }
        let residents: Vec<String> = (600..612).map(resident_id).collect();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let earlier = resident_id(612);
        t.given_credit_household(&earlier, VILLAGE_A).await;

        // The dispatcher takes an earlier submission and waits on the lock to write it.
        let mut blocker = t.pool.begin().await.expect("begin");
        sqlx::query("lock table applications in access exclusive mode")
            .execute(&mut *blocker)
            .await
            .expect("lock the applications");
        let mut c = t.as_village_staff(VILLAGE_A);
        let earlier_call = tokio::spawn(async move {
            c.submit_application(household_request(&earlier, VILLAGE_A, "15000"))
                .await
        });
        let pool = t.pool.clone();
        wait_until("the dispatcher to wait on the lock", || {
            let pool = pool.clone();
            async move {
                count_where(
                    &pool,
                    "select count(*) from pg_stat_activity
                      where datname = current_database() and application_name = $1
                        and wait_event_type = 'Lock'",
                    &[fupin_intake::submit::CONNECTION_NAME],
                )
                .await
                    == 1
            }
        })
        .await;
        let mut poisoned = household_request(&residents[0], VILLAGE_A, "15000");
        poisoned.project_description = "poison".into();
        let calls = residents.iter().enumerate().map(|(i, r)| {
            let req = if i == 0 {
                poisoned.clone()
            } else {
                household_request(r, VILLAGE_A, "15000")
            };
            let mut c = t.as_village_staff(VILLAGE_A);
            tokio::spawn(async move { (i, c.submit_application(req).await) })
        });
        let calls: Vec<_> = calls.collect();
        // Every one of them queues behind the held batch (each needs well under a millisecond
        // to be sealed and queued), then the lock goes and they make the next batch together.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        blocker.rollback().await.expect("release the lock");
        earlier_call
            .await
            .expect("task")
            .expect("the earlier submission is written");
        for call in futures::future::join_all(calls).await {
            let (i, answer) = call.expect("task");
            if i == 0 {
                let s = answer.expect_err("the poisoned submission fails");
                assert_eq!(s.code(), tonic::Code::Internal, "{s:?}");
            } else {
                answer.unwrap_or_else(|s| panic!("submission {i} is written: {s:?}"));
            }
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 12);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            12,
            "the failed submission's request id stays unused"
        );

        sqlx::query("drop trigger poison on applications")
            .execute(&t.pool)
            .await
            .expect("remove the fault");
        let app = submit(&mut t.as_village_staff(VILLAGE_A), poisoned).await;
        assert_eq!(app.applicant_id, masked(&residents[0]));
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 13);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-X-2: the submission writer keeps its own connection; when the server ends that
/// session between batches (a restart, an idle timeout, `pg_terminate_backend`), the next
/// submission is still written: right after (the batch's write runs again on a new
/// connection), and after a pause (the idle connection is tested before use).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_writer_connection_is_replaced_without_failing_a_submission() {
    bounded(60, async {
        let t = spawn_intake().await;
        let residents: Vec<String> = (620..623).map(resident_id).collect();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        t.submit_household(&residents[0], VILLAGE_A, "10000").await;
        for (r, pause_ms) in [(&residents[1], 0), (&residents[2], 1100)] {
            let terminated: Vec<bool> = sqlx::query_scalar(
                "select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = current_database() and application_name = $1",
            )
            .bind(fupin_intake::submit::CONNECTION_NAME)
            .fetch_all(&t.pool)
            .await
            .expect("terminate the writer's connection");
            assert_eq!(terminated, [true], "the writer had one connection open");
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            let app = t.submit_household(r, VILLAGE_A, "10000").await;
            assert_eq!(
                app.status(),
                pb::Status::VillageReview,
                "after {pause_ms} ms"
            );
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 3);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8: a batch statement the database does not answer (here it waits on a lock a stuck
/// transaction holds) is cancelled by the server at the writer's deadline: its submission is
/// answered UNAVAILABLE instead of holding every submission of the replica, nothing is left
/// waiting on the lock, and the retry with the same request id, once the database answers,
/// stores the application once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_the_database_does_not_answer_is_given_up() {
    bounded(90, async {
        let t = spawn_intake_with_submit_deadline(std::time::Duration::from_secs(1)).await;
        let r = resident_id(311);
        t.given_credit_household(&r, VILLAGE_A).await;
        let req = household_request(&r, VILLAGE_A, "15000");
        let mut stuck = t.pool.begin().await.expect("a transaction");
        sqlx::query("lock table applications in access exclusive mode")
            .execute(&mut *stuck)
            .await
            .expect("the lock");
        let started = std::time::Instant::now();
        let s = t
            .as_village_staff(VILLAGE_A)
            .submit_application(req.clone())
            .await
            .expect_err("given up");
        assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
        assert!(
            s.message().contains("retry with the same request id"),
            "{s:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "cancelled by the server at the deadline, before the client's grace: {:?}",
            started.elapsed()
        );
        // Cancelled by the server, not left behind waiting for the lock (a backend per
        // attempt would pile up while the lock is held).
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where application_name = $1 and wait_event_type = 'Lock'",
        )
        .bind(fupin_intake::submit::CONNECTION_NAME)
        .fetch_one(&t.pool)
        .await
        .expect("activity");
        assert_eq!(waiting, 0, "no writer statement still waits on the lock");
        stuck.rollback().await.expect("released");

        let app = t
            .as_village_staff(VILLAGE_A)
            .submit_application(req)
            .await
            .expect("the retry goes through")
            .into_inner();
        assert_eq!(app.status(), pb::Status::VillageReview);
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        t.shutdown().await;
    })
    .await;
}
