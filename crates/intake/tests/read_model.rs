//! Intake's read model of other services' events (ARCHITECTURE "each consuming service keeps
//! its own read model"): each consumed event type changes admission (R-IN-3), newer facts win
//! by sequence whatever the delivery order, and each event is applied once (R-X-2).

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;

/// Tries a household application; Ok = admitted (and stored), Err = the refusal.
async fn try_submit(
    t: &TestIntake,
    resident: &str,
    village: &str,
    amount: &str,
) -> Result<pb::Application, tonic::Status> {
    t.as_village_staff(village)
        .submit_application(household_request(resident, village, amount))
        .await
        .map(tonic::Response::into_inner)
}

async fn admitted(t: &TestIntake, resident: &str, village: &str, amount: &str) {
    let r = try_submit(t, resident, village, amount).await;
    assert!(r.is_ok(), "{amount} for {village} admitted: {r:?}");
}

async fn refused(t: &TestIntake, resident: &str, village: &str, amount: &str, rules: &[&str]) {
    let s = try_submit(t, resident, village, amount)
        .await
        .expect_err("refused");
    assert_refused(&s, rules);
}

async fn grade_of(t: &TestIntake, resident: &str) -> (String, i64) {
    sqlx::query_as("select grade, sequence from rm_credit_ratings where subject_idx = $1")
        .bind(t.subject_index(resident))
        .fetch_one(&t.pool)
        .await
        .expect("rating row")
}

/// R-CR-3, R-CR-5 via CreditRatingEffective: an effective A admits; a later downgrade to B
/// (higher sequence) refuses with R-CR-3; an older sequence delivered afterwards does not win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ratings_admit_and_downgrades_refuse_in_sequence_order() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(21);
        refused(&t, &r, VILLAGE_A, "5000", &["R-CR-3"]).await;

        let id = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2024-01-01",
                "2027-12-31",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        assert_eq!(grade_of(&t, &r).await, ("A".into(), 1));
        admitted(&t, &r, VILLAGE_A, "5000").await;

        let id = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "B",
                "0",
                false,
                "2026-03-01",
                "2027-03-01",
                2,
            )
            .await;
        t.wait_applied(&id).await;
        assert_eq!(grade_of(&t, &r).await, ("B".into(), 2));
        refused(&t, &r, VILLAGE_A, "5000", &["R-CR-3"]).await;

        // The old A rating (sequence 1) arrives again later, as a new delivery: it must not win.
        let id = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "A",
                "20000.00",
                false,
                "2024-01-01",
                "2027-12-31",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        assert_eq!(grade_of(&t, &r).await, ("B".into(), 2));
        refused(&t, &r, VILLAGE_A, "5000", &["R-CR-3"]).await;

        // An upgrade with a higher sequence admits again.
        let id = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "AA",
                "30000.00",
                false,
                "2026-03-02",
                "2027-03-02",
                3,
            )
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "30000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-3, R-CR-5, R-CR-8: a rating older than the newest (a lower sequence) delivered after
/// it is not lost. Ratings are announced ahead of their day, so an older one can be about the
/// days before the newest's: here A from 01-01 (1) and AA from 07-01 (3, announced ahead) are
/// stored when a downgrade to C from 02-01 (2) arrives. Folded in sequence order, C is in
/// force on 03-02 (refused, R-CR-3) until AA takes over on 07-01; dropped, A would admit the
/// household on a grade it no longer has. The mirror: AA from 07-01 (2) delivered before A
/// from 01-01 (1) leaves A in force until 07-01, line and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rating_delivered_after_a_newer_one_still_decides_its_days() {
    bounded(60, async {
        let t = spawn_intake().await; // 2026-03-02
        let facts_on = |resident: &str, on: &str| {
            let index = t.subject_index(resident);
            let (pool, on) = (t.pool.clone(), day(on));
            async move {
                let facts = fupin_intake::store::readmodel::admission_facts(
                    &pool,
                    fupin_intake::store::readmodel::Subject {
                        index: &index,
                        uscc: None,
                    },
                    Some(VILLAGE_A),
                    Some(TOWN_A),
                )
                .await
                .expect("facts from the tables");
                facts
                    .rating_on(on)
                    .and_then(|r| r.grade)
                    .map(|g| g.as_str().to_owned())
            }
        };
        let rate = |resident: &str, grade: &str, line: &str, from: &str, to: &str, seq| {
            let (t, resident, grade) = (&t, resident.to_owned(), grade.to_owned());
            let line = line.to_owned();
            let (from, to) = (from.to_owned(), to.to_owned());
            async move {
                let id = t
                    .publish_rating_effective(
                        &resident, VILLAGE_A, &grade, &line, false, &from, &to, seq,
                    )
                    .await;
                t.wait_applied(&id).await;
            }
        };

        let downgraded = resident_id(25);
        rate(&downgraded, "A", "20000.00", "2026-01-01", "2027-01-01", 1).await;
        rate(&downgraded, "AA", "30000.00", "2026-07-01", "2027-07-01", 3).await;
        admitted(&t, &downgraded, VILLAGE_A, "10000").await;
        rate(&downgraded, "C", "0", "2026-02-01", "2027-02-01", 2).await;
        assert_eq!(grade_of(&t, &downgraded).await, ("AA".into(), 3));
        refused(&t, &downgraded, VILLAGE_A, "10000", &["R-CR-3"]).await;
        for (on, grade) in [
            ("2026-01-31", "A"),
            ("2026-02-01", "C"),
            ("2026-06-30", "C"),
            ("2026-07-01", "AA"),
        ] {
            assert_eq!(
                facts_on(&downgraded, on).await.as_deref(),
                Some(grade),
                "{on}"
            );
        }
        // Delivered again, the same sequence is the same rating: nothing changes.
        rate(
            &downgraded,
            "AAA",
            "50000.00",
            "2026-02-01",
            "2027-02-01",
            2,
        )
        .await;
        refused(&t, &downgraded, VILLAGE_A, "10000", &["R-CR-3"]).await;
        t.set_time("2026-07-01T09:00:00+08:00");
        admitted(&t, &downgraded, VILLAGE_A, "30000.00").await;

        t.set_time("2026-03-02T09:00:00+08:00");
        let renewed = resident_id(26);
        rate(&renewed, "AA", "30000.00", "2026-07-01", "2027-07-01", 2).await;
        refused(&t, &renewed, VILLAGE_A, "10000", &["R-CR-3"]).await;
        rate(&renewed, "A", "20000.00", "2026-01-01", "2027-01-01", 1).await;
        assert_eq!(grade_of(&t, &renewed).await, ("AA".into(), 2));
        admitted(&t, &renewed, VILLAGE_A, "20000.00").await;
        refused(&t, &renewed, VILLAGE_A, "20000.01", &["R-CR-8"]).await;
        assert_eq!(facts_on(&renewed, "2026-06-30").await.as_deref(), Some("A"));
        assert_eq!(
            facts_on(&renewed, "2026-07-01").await.as_deref(),
            Some("AA")
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-8 via CreditVillageStatusChanged: a credit village raises the A line 20,000 by 20% to
/// 24,000: 24,000 is admitted, 24,000.01 refused with R-CR-8; losing the status drops it back;
/// a status announced ahead of its effective day, gained or lost, counts from that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credit_village_raises_the_line() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(22);
        t.given_credit_household(&r, VILLAGE_A).await;
        refused(&t, &r, VILLAGE_A, "24000.00", &["R-CR-8"]).await;
        admitted(&t, &r, VILLAGE_A, "20000.00").await;

        let id = t.publish_credit_village(VILLAGE_A, true, 1).await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "24000.00").await;
        refused(&t, &r, VILLAGE_A, "24000.01", &["R-CR-8"]).await;

        // A stale "not a credit village" (older sequence) does not win ...
        let id = t.publish_credit_village(VILLAGE_A, false, 0).await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "24000.00").await;
        // ... a newer one does.
        let id = t.publish_credit_village(VILLAGE_A, false, 2).await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "24000.00", &["R-CR-8"]).await;
        // Announced today as a credit village from tomorrow: no uplift until then.
        t.set_time("2026-03-02T09:00:00+08:00");
        let id = t
            .publish_credit_village_from(VILLAGE_A, true, "2026-03-03", 3)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "24000.00", &["R-CR-8"]).await;
        t.set_time("2026-03-03T09:00:00+08:00");
        admitted(&t, &r, VILLAGE_A, "24000.00").await;
        // And a loss announced for 03-05 leaves the uplift until then.
        let id = t
            .publish_credit_village_from(VILLAGE_A, false, "2026-03-05", 4)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "24000.00").await;
        t.set_time("2026-03-05T09:00:00+08:00");
        refused(&t, &r, VILLAGE_A, "24000.00", &["R-CR-8"]).await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-8, R-ID-4 via CreditVillageStatusChanged / EnterpriseQualificationChanged: two changes
/// announced ahead of their days both apply, each from its own day, and until the first one's
/// day the status in force when they were announced stays, at submission (the dispatcher's copy)
/// and in the query the re-checks at recommendation and approval run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_changes_announced_ahead_apply_each_from_its_day() {
    two_changes_announced_ahead(false).await;
}

/// R-CR-8, R-ID-4: the same, the later announcement (sequence 3) delivered before the earlier
/// one (2), as when intake replicas share the consumer or an event is redelivered: the
/// announcements are folded in sequence order whatever order they arrived in, so the earlier
/// one is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn announcements_ahead_apply_whatever_their_delivery_order() {
    two_changes_announced_ahead(true).await;
}

async fn two_changes_announced_ahead(later_first: bool) {
    bounded(60, async {
        let t = spawn_intake().await; // 2026-03-02
        let r = resident_id(31);
        t.given_credit_household(&r, VILLAGE_A).await;
        let code = uscc('3', 31);
        let id = t.publish_credit_village(VILLAGE_A, false, 1).await;
        t.wait_applied(&id).await;
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        // Announced on 03-02: a credit village from 03-04 and no longer from 03-06; the
        // enterprise disqualified from 03-04 and qualified again from 03-06.
        let mut changes = [
            (true, "2026-03-04", false, 2),
            (false, "2026-03-06", true, 3),
        ];
        if later_first {
            changes.reverse();
        }
        for (credit, from, qualified, seq) in changes {
            let id = t
                .publish_credit_village_from(VILLAGE_A, credit, from, seq)
                .await;
            t.wait_applied(&id).await;
            let id = t
                .publish_enterprise_qualification(&code, qualified, from, seq)
                .await;
            t.wait_applied(&id).await;
        }
        let index = t.subject_index(&r);
        let stored = fupin_intake::store::readmodel::admission_facts(
            &t.pool,
            fupin_intake::store::readmodel::Subject {
                index: &index,
                uscc: Some(&code),
            },
            Some(VILLAGE_A),
            Some(TOWN_A),
        )
        .await
        .expect("facts from the tables");
        let submit_enterprise = || async {
            t.as_district_staff()
                .submit_application(enterprise_request(&code, TOWN_B, "200000"))
                .await
        };
        for (on, credit_village, qualified) in [
            ("2026-03-03", false, true),
            ("2026-03-04", true, false),
            ("2026-03-05", true, false),
            ("2026-03-06", false, true),
            ("2026-03-20", false, true),
        ] {
            t.set_time(&format!("{on}T09:00:00+08:00"));
            assert_eq!(stored.credit_village_on(day(on)), credit_village, "{on}");
            assert_eq!(stored.enterprise_qualified_on(day(on)), qualified, "{on}");
            if credit_village {
                admitted(&t, &r, VILLAGE_A, "24000.00").await;
            } else {
                refused(&t, &r, VILLAGE_A, "24000.00", &["R-CR-8"]).await;
            }
            match submit_enterprise().await {
                Ok(_) => assert!(qualified, "{on}: admitted while disqualified"),
                Err(s) => {
                    assert!(!qualified, "{on}: refused while qualified: {s:?}");
                    assert_refused(&s, &["R-ID-4"]);
                }
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-CR-10 via BlacklistEntryAdded / BlacklistEntryRemoved: listed -> refused naming R-CR-10;
/// the explicit removal -> admitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blacklist_refuses_until_removed() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(23);
        t.given_credit_household(&r, VILLAGE_A).await;
        admitted(&t, &r, VILLAGE_A, "1000").await;

        let id = t.publish_blacklisted("bl-23", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"]).await;

        let id = t
            .publish_blacklist_removed("bl-23", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "1000").await;

        // A second, independent entry still refuses while it is active.
        let id = t.publish_blacklisted("bl-24", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"]).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-IN-8: a submission is decided on the read model as it is when it is written, not
/// as the dispatcher's in-memory copy last saw it. A rating that arrived after the copy was
/// loaded admits (the refusal decided on the copy is not kept for the request id); a
/// blacklisting refuses (the write finds the read model moved on and the submission is
/// decided again); and an entry an operator deletes straight from the table no longer refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_are_decided_on_the_read_model_as_it_is_now() {
    bounded(60, async {
        let t = spawn_intake().await;
        let (a, b) = (resident_id(51), resident_id(52));
        t.given_credit_household(&a, VILLAGE_A).await;
        // The copy now holds a's rating: the submission was written at its version.
        admitted(&t, &a, VILLAGE_A, "1000").await;

        t.given_credit_household(&b, VILLAGE_A).await;
        let req = household_request(&b, VILLAGE_A, "1000");
        let first = submit(&mut t.as_village_staff(VILLAGE_A), req.clone()).await;
        let again = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
        assert_eq!(first, again, "the request id keeps the admission");

        let id = t.publish_blacklisted("bl-51", &a, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-CR-10"]).await;
        assert_eq!(
            count(&t.pool, "select count(*) from applications").await,
            2,
            "the refused submission wrote nothing"
        );

        sqlx::query("delete from rm_blacklist where entry_id = 'bl-51'")
            .execute(&t.pool)
            .await
            .expect("an operator deletes the entry");
        admitted(&t, &a, VILLAGE_A, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3: submissions keep being written while the read model changes all the time (as in a
/// district's annual rating run): a change that does not concern a batch's applicants does not
/// send the batch back, while one that does still refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_go_through_while_the_read_model_keeps_changing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let residents: Vec<String> = (700..712).map(resident_id).collect();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let version = || async {
            let v: i64 = sqlx::query_scalar("select version from rm_version")
                .fetch_one(&t.pool)
                .await
                .expect("version");
            v
        };
        let before = version().await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let made = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let churn = {
            let (pool, stop, made) = (t.pool.clone(), stop.clone(), made.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sqlx::query(
                        r#"insert into rm_credit_ratings (subject_idx, subject_kind, village_code,
                             grade, veto, credit_line, effective_from, expires_on, policy_version,
                             sequence)
                           values (sha256(('churn-' || $1)::bytea), 1, $2, 'A', false, 10000,
                             '2024-01-01', '2027-12-31', 'test', $3)
                           on conflict (subject_idx) do update set sequence = excluded.sequence"#,
                    )
                    .bind((n % 50).to_string())
                    .bind(VILLAGE_A)
                    .bind(i64::from(n))
                    .execute(&pool)
                    .await
                    .expect("an unrelated rating");
                    n += 1;
                    made.store(n, std::sync::atomic::Ordering::Relaxed);
                }
                n
            })
        };
        wait_until("the read model to be changing", || async {
            made.load(std::sync::atomic::Ordering::Relaxed) >= 20
        })
        .await;
        for r in &residents {
            admitted(&t, r, VILLAGE_A, "1000").await;
        }
        let id = t
            .publish_blacklisted("bl-700", &residents[0], HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &residents[0], VILLAGE_A, "1000", &["R-CR-10"]).await;
        admitted(&t, &residents[1], VILLAGE_A, "1000").await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let changes = churn.await.expect("churn");
        let moved = version().await - before;
        assert!(
            moved > i64::from(changes),
            "the read model kept changing: {changes} changes, {moved} versions"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 after the read model went back (a database restored from a backup taken before
/// the copy's version): the batch's write finds the version behind the copy's and writes
/// nothing, and the copy reloads every row instead of reading rows changed since its own
/// version, so admission sees the restored state. The restore here is simulated by deleting a
/// rating with triggers off (as `pg_restore --disable-triggers` writes) and setting the version
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_model_restored_to_an_older_version_is_reloaded() {
    bounded(60, async {
        let t = spawn_intake().await;
        let (a, b) = (resident_id(61), resident_id(62));
        t.given_credit_household(&a, VILLAGE_A).await;
        t.given_credit_household(&b, VILLAGE_A).await;
        // Both written: the copy holds both ratings at the read model's current version.
        admitted(&t, &a, VILLAGE_A, "1000").await;
        admitted(&t, &b, VILLAGE_A, "1000").await;

        let mut tx = t.pool.begin().await.expect("begin");
        sqlx::query("set local session_replication_role = replica")
            .execute(&mut *tx)
            .await
            .expect("triggers off");
        sqlx::query("delete from rm_credit_ratings where subject_idx = $1")
            .bind(t.subject_index(&b))
            .execute(&mut *tx)
            .await
            .expect("the restored state has no rating for b");
        sqlx::query("update rm_version set version = version - 1")
            .execute(&mut *tx)
            .await
            .expect("the restored version is older");
        tx.commit().await.expect("restore");

        refused(&t, &b, VILLAGE_A, "1000", &["R-CR-3"]).await;
        admitted(&t, &a, VILLAGE_A, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 at a district's scale: with thousands of ratings and blacklist entries written
/// straight to the tables after intake loaded its copy of the read model, submissions still
/// refuse the one blacklisted applicant among them and admit the others; and the generic plan
/// of the recommendation's facts query looks the applicant up by index instead of scanning or
/// hashing whole tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_looks_applicants_up_by_index_at_district_scale() {
    bounded(60, async {
        let t = spawn_intake().await;
        // A first submission: the copy holds the read model from before the bulk rows.
        let early = resident_id(40);
        t.given_credit_household(&early, VILLAGE_A).await;
        admitted(&t, &early, VILLAGE_A, "1000").await;
        sqlx::query(
            r#"insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade,
                 veto, credit_line, effective_from, expires_on, policy_version, sequence)
               select sha256(('other-' || g)::bytea), 1, $1, 'B', false, 10000,
                 '2024-01-01', '2027-12-31', 'test', 1
               from generate_series(1, 20000) g"#,
        )
        .bind(VILLAGE_A)
        .execute(&t.pool)
        .await
        .expect("other ratings");
        sqlx::query(
            r#"insert into rm_blacklist (entry_id, subject_idx, subject_kind, reason, active)
               select 'other-' || g, sha256(('other-' || g)::bytea), 1, 'test', true
               from generate_series(1, 5000) g"#,
        )
        .execute(&t.pool)
        .await
        .expect("other blacklist entries");
        sqlx::query("analyze rm_credit_ratings, rm_blacklist")
            .execute(&t.pool)
            .await
            .expect("analyze");

        let mut conn = t.pool.acquire().await.expect("connection");
        sqlx::query("set plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await
            .expect("generic plans");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "prepare facts(bytea, text, text, text) as {}",
            fupin_intake::store::readmodel::FACTS_SQL
        )))
        .execute(&mut *conn)
        .await
        .expect("prepare");
        let plan: Vec<String> =
            sqlx::query_scalar("explain execute facts(sha256('x'::bytea), null, null, null)")
                .fetch_all(&mut *conn)
                .await
                .expect("explain");
        let plan = plan.join("\n");
        for table in ["rm_credit_ratings", "rm_blacklist"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{table} is scanned whole:\n{plan}"
            );
        }
        assert!(!plan.contains("Hash"), "a table is hashed:\n{plan}");
        drop(conn);

        let (blacklisted, clean) = (resident_id(41), resident_id(42));
        for r in [&blacklisted, &clean] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let id = t
            .publish_blacklisted("bl-41", &blacklisted, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &blacklisted, VILLAGE_A, "1000", &["R-CR-10"]).await;
        admitted(&t, &clean, VILLAGE_A, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9 via NplThresholdExceeded / LendingResumed: a suspended town refuses its villages'
/// applications naming R-RK-9 (other towns unaffected); resumption admits again; a village
/// suspension works the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn npl_circuit_breaker_suspends_and_resumes_lending() {
    bounded(60, async {
        let t = spawn_intake().await;
        let a = resident_id(24);
        let b = resident_id(25);
        t.given_credit_household(&a, VILLAGE_A).await;
        t.given_credit_household(&b, VILLAGE_B).await;

        let id = t.publish_npl_exceeded(TOWN_A, 1).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"]).await;
        admitted(&t, &b, VILLAGE_B, "1000").await;

        let id = t.publish_lending_resumed(TOWN_A, 2).await;
        t.wait_applied(&id).await;
        admitted(&t, &a, VILLAGE_A, "1000").await;

        // A late redelivery of the suspension (older sequence) does not suspend again.
        let id = t.publish_npl_exceeded(TOWN_A, 1).await;
        t.wait_applied(&id).await;
        admitted(&t, &a, VILLAGE_A, "1000").await;

        // Suspended again after the last submission was decided: the write's check of the
        // applicant's town sends it back, and it is refused.
        let id = t.publish_npl_exceeded(TOWN_A, 3).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"]).await;
        let id = t.publish_lending_resumed(TOWN_A, 4).await;
        t.wait_applied(&id).await;

        let id = t.publish_npl_exceeded(VILLAGE_B, 1).await;
        t.wait_applied(&id).await;
        let s = try_submit(&t, &b, VILLAGE_B, "1000")
            .await
            .expect_err("village suspended");
        assert_refused(&s, &["R-RK-9"]);
        assert!(s.message().contains(VILLAGE_B), "{s:?}");
        let id = t.publish_lending_resumed(VILLAGE_B, 2).await;
        t.wait_applied(&id).await;
        admitted(&t, &b, VILLAGE_B, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9, R-CR-5: a producer that does not number its events (sequence 0) is applied in the
/// order the stream delivers them: a resumption after an unnumbered suspension resumes, and a
/// downgrade after an unnumbered rating refuses. Once a subject has a numbered event, an
/// unnumbered one is older and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unnumbered_events_apply_in_the_order_they_arrive() {
    bounded(60, async {
        let t = spawn_intake().await;
        let a = resident_id(26);
        t.given_credit_household(&a, VILLAGE_A).await;
        let id = t.publish_npl_exceeded(TOWN_A, 0).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"]).await;
        let id = t.publish_lending_resumed(TOWN_A, 0).await;
        t.wait_applied(&id).await;
        admitted(&t, &a, VILLAGE_A, "1000").await;
        let id = t.publish_npl_exceeded(TOWN_A, 0).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"]).await;
        // Numbered from here: an unnumbered resumption is older.
        let id = t.publish_npl_exceeded(TOWN_A, 5).await;
        t.wait_applied(&id).await;
        let id = t.publish_lending_resumed(TOWN_A, 0).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"]).await;
        let id = t.publish_lending_resumed(TOWN_A, 6).await;
        t.wait_applied(&id).await;
        admitted(&t, &a, VILLAGE_A, "1000").await;

        let r = resident_id(27);
        t.rate_household(&r, VILLAGE_A, "A", "20000.00", 0).await;
        admitted(&t, &r, VILLAGE_A, "5000").await;
        t.rate_household(&r, VILLAGE_A, "B", "0", 0).await;
        assert_eq!(grade_of(&t, &r).await, ("B".into(), 0));
        refused(&t, &r, VILLAGE_A, "5000", &["R-CR-3"]).await;
        t.rate_household(&r, VILLAGE_A, "AA", "30000.00", 0).await;
        admitted(&t, &r, VILLAGE_A, "30000").await;
        t.rate_household(&r, VILLAGE_A, "B", "0", 7).await;
        t.rate_household(&r, VILLAGE_A, "AAA", "50000.00", 0).await;
        assert_eq!(
            grade_of(&t, &r).await,
            ("B".into(), 7),
            "older than the numbered one"
        );
        refused(&t, &r, VILLAGE_A, "5000", &["R-CR-3"]).await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-8, R-ID-4 (README "two unnumbered ones for the same village or enterprise keep the
/// first"): an unnumbered credit-village status or qualification announced again keeps the
/// first, one after a numbered announcement changes nothing, and the row's first (unnumbered)
/// announcement is folded first, as the oldest, when a numbered one arrives late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unnumbered_announcements_keep_the_first() {
    bounded(60, async {
        let t = spawn_intake().await; // 2026-03-02
        let r = resident_id(28);
        t.rate_household(&r, VILLAGE_A2, "A", "20000.00", 1).await;
        for _ in 0..2 {
            let id = t.publish_credit_village(VILLAGE_A2, true, 0).await;
            t.wait_applied(&id).await;
            admitted(&t, &r, VILLAGE_A2, "24000").await;
        }
        let id = t.publish_credit_village(VILLAGE_A2, false, 3).await;
        t.wait_applied(&id).await;
        let id = t.publish_credit_village(VILLAGE_A2, true, 0).await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A2, "24000", &["R-CR-8"]).await;

        let code = uscc('3', 28);
        let submit = || async {
            t.as_district_staff()
                .submit_application(enterprise_request(&code, TOWN_B, "200000"))
                .await
        };
        for _ in 0..2 {
            let id = t.publish_enterprise_qualification(&code, true, "", 0).await;
            t.wait_applied(&id).await;
            assert!(submit().await.is_ok(), "qualified, unnumbered");
        }
        let id = t
            .publish_enterprise_qualification(&code, false, "2026-03-10", 2)
            .await;
        t.wait_applied(&id).await;
        let id = t
            .publish_enterprise_qualification(&code, true, "2026-03-12", 1)
            .await;
        t.wait_applied(&id).await;
        assert!(
            submit().await.is_ok(),
            "qualified until 03-10 (the unnumbered first, folded before 1 and 2)"
        );
        t.set_time("2026-03-12T09:00:00+08:00");
        assert_refused(&submit().await.expect_err("disqualified"), &["R-ID-4"]);
        t.shutdown().await;
    })
    .await;
}

/// R-ID-4 ("currently qualified"), R-IN-3 via EnterpriseQualificationChanged.effective_from:
/// a qualification announced ahead of its day admits only from that day, and a
/// disqualification announced ahead refuses only from its day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprise_qualification_takes_effect_on_its_day() {
    bounded(60, async {
        let t = spawn_intake().await; // 2026-03-02
        let code = uscc('3', 27);
        let submit = || async {
            t.as_district_staff()
                .submit_application(enterprise_request(&code, TOWN_B, "200000"))
                .await
        };
        let id = t
            .publish_enterprise_qualification(&code, true, "2026-03-03", 1)
            .await;
        t.wait_applied(&id).await;
        assert_refused(&submit().await.expect_err("not yet qualified"), &["R-ID-4"]);
        t.set_time("2026-03-03T09:00:00+08:00");
        assert!(submit().await.is_ok(), "qualified from today");

        let id = t
            .publish_enterprise_qualification(&code, false, "2026-03-05", 2)
            .await;
        t.wait_applied(&id).await;
        t.set_time("2026-03-04T09:00:00+08:00");
        assert!(submit().await.is_ok(), "still qualified the day before");
        t.set_time("2026-03-05T09:00:00+08:00");
        assert_refused(&submit().await.expect_err("disqualified"), &["R-ID-4"]);
        t.shutdown().await;
    })
    .await;
}

/// R-ID-4 via EnterpriseQualificationChanged: qualification admits an enterprise, a later
/// disqualification refuses it, a stale qualification does not win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprise_qualification_follows_the_industry_service() {
    bounded(60, async {
        let t = spawn_intake().await;
        let code = uscc('3', 26);
        let submit = || async {
            t.as_district_staff()
                .submit_application(enterprise_request(&code, TOWN_B, "200000"))
                .await
        };
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        assert!(submit().await.is_ok());
        let id = t.publish_enterprise_qualified(&code, false, 2).await;
        t.wait_applied(&id).await;
        assert_refused(&submit().await.expect_err("disqualified"), &["R-ID-4"]);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        assert_refused(&submit().await.expect_err("stale"), &["R-ID-4"]);
        // An enterprise on the blacklist is refused even when qualified (R-IN-3, R-CR-10).
        let id = t.publish_enterprise_qualified(&code, true, 3).await;
        t.wait_applied(&id).await;
        assert!(submit().await.is_ok());
        let id = t.publish_blacklisted("bl-e", &code, ENTERPRISE_KIND).await;
        t.wait_applied(&id).await;
        assert_refused(&submit().await.expect_err("blacklisted"), &["R-CR-10"]);
        t.shutdown().await;
    })
    .await;
}

/// R-X-2: an event delivered twice with the same ce-id (past JetStream's duplicate window, so
/// the stream holds both copies) is applied once: one inbox row, and the second copy changes
/// nothing even when its payload would have won on sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_delivered_twice_is_applied_once() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(27);
        let ce_id = "rating-event-27";
        let first = rating_event(
            &r,
            VILLAGE_A,
            "A",
            "20000.00",
            false,
            "2024-01-01",
            "2027-12-31",
            1,
        );
        let ack = t
            .publish_with_ids("/fupin/credit-rating", &first, &r, ce_id, "msg-1")
            .await;
        assert!(!ack.duplicate);
        // Within the duplicate window JetStream itself drops a copy with the same Nats-Msg-Id.
        let ack = t
            .publish_with_ids("/fupin/credit-rating", &first, &r, ce_id, "msg-1")
            .await;
        assert!(ack.duplicate, "JetStream dedupes by Nats-Msg-Id");
        // A redelivery that reaches the stream again: same ce-id, another Nats-Msg-Id. Its
        // content claims a later downgrade; applied, it would refuse the household.
        let tampered = rating_event(
            &r,
            VILLAGE_A,
            "C",
            "0",
            false,
            "2024-01-01",
            "2027-12-31",
            9,
        );
        let ack = t
            .publish_with_ids("/fupin/credit-rating", &tampered, &r, ce_id, "msg-2")
            .await;
        assert!(!ack.duplicate, "both copies are on the stream");
        // And the exact same copy once more.
        t.publish_with_ids("/fupin/credit-rating", &first, &r, ce_id, "msg-3")
            .await;
        // A marker after them: once it is applied, every earlier delivery was handled.
        let marker = t.publish_credit_village(VILLAGE_B, true, 1).await;
        t.wait_applied(&marker).await;

        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from inbox where consumer like $1 || '%' and event_id = $2",
                &[READMODEL_CONSUMER, ce_id],
            )
            .await,
            1
        );
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from inbox where consumer like $1 || '%'",
                &[READMODEL_CONSUMER],
            )
            .await,
            2,
            "one row per distinct event"
        );
        assert_eq!(grade_of(&t, &r).await, ("A".into(), 1));
        admitted(&t, &r, VILLAGE_A, "20000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-3, R-CR-4, R-CR-5: a renewal announced ahead of its day (noticed before the rating in
/// force expires) leaves that rating in force until the day: A's line until the eve, AA's from
/// the day, and two renewals announced ahead each apply from their own day. A downgrade
/// announced for today replaces the rating in force and the renewals announced ahead alike
/// (R-CR-5 "downgrades the household at once"); so does a veto sent without a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rating_announced_ahead_leaves_the_one_in_force_until_its_day() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(31);
        t.set_time("2026-12-15T09:00:00+08:00");
        let rate = |grade: &'static str, line: &'static str, from, until, seq| {
            let (t, r) = (&t, r.clone());
            async move {
                let id = t
                    .publish_rating_effective(&r, VILLAGE_A, grade, line, false, from, until, seq)
                    .await;
                t.wait_applied(&id).await;
            }
        };
        rate("A", "20000.00", "2025-12-20", "2026-12-20", 1).await;
        admitted(&t, &r, VILLAGE_A, "20000").await;
        rate("AA", "30000.00", "2026-12-20", "2027-12-20", 2).await;
        admitted(&t, &r, VILLAGE_A, "20000").await;
        refused(&t, &r, VILLAGE_A, "20000.01", &["R-CR-8"]).await;
        t.set_time("2026-12-19T23:59:00+08:00");
        admitted(&t, &r, VILLAGE_A, "20000").await;
        t.set_time("2026-12-20T00:00:00+08:00");
        admitted(&t, &r, VILLAGE_A, "30000").await;
        refused(&t, &r, VILLAGE_A, "30000.01", &["R-CR-8"]).await;

        // Back on the eve, a second renewal announced ahead for 12-22: A until the eve, AA
        // from 12-20, AAA from 12-22.
        t.set_time("2026-12-19T09:00:00+08:00");
        rate("AAA", "50000.00", "2026-12-22", "2027-12-22", 3).await;
        refused(&t, &r, VILLAGE_A, "20000.01", &["R-CR-8"]).await;
        t.set_time("2026-12-21T09:00:00+08:00");
        admitted(&t, &r, VILLAGE_A, "30000").await;
        refused(&t, &r, VILLAGE_A, "30000.01", &["R-CR-8"]).await;
        t.set_time("2026-12-22T09:00:00+08:00");
        admitted(&t, &r, VILLAGE_A, "50000").await;

        // A downgrade for the eve replaces A then, and both renewals announced ahead.
        t.set_time("2026-12-19T09:00:00+08:00");
        rate("B", "", "2026-12-19", "2027-12-19", 4).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"]).await;
        t.set_time("2026-12-21T09:00:00+08:00");
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"]).await;

        // A veto sent without a day (R-CR-5 "at once") is applied, not dead-lettered, and
        // replaces a renewal announced ahead: nothing is in force on any day.
        rate("AA", "30000.00", "2026-12-25", "2027-12-25", 5).await;
        t.set_time("2026-12-25T09:00:00+08:00");
        admitted(&t, &r, VILLAGE_A, "30000").await;
        t.set_time("2026-12-21T09:00:00+08:00");
        let id = t
            .publish_rating_effective(&r, VILLAGE_A, "AA", "30000.00", true, "", "", 6)
            .await;
        t.wait_applied(&id).await;
        t.set_time("2026-12-25T09:00:00+08:00");
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"]).await;
        t.shutdown().await;
    })
    .await;
}

/// R-ID-1, R-RK-9: the registered area is the one the newest event naming an area gave,
/// whatever order the events arrive in. Registered in A (1), then qualified naming no area (3),
/// then registered in A2 (2) delivered last: the enterprise is held to A2 (refused in A, R-ID-1)
/// and A2's circuit breaker refuses it there (R-RK-9), at submission (the copy) and in the
/// tables the later re-checks read. Registered in A (3) before A2 (2): A stays. The area of an
/// event delivered late also counts when the row's newest named none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_area_delivered_late_still_counts_unless_a_newer_one_was_named() {
    bounded(90, async {
        let t = spawn_intake().await;
        let submit = |code: &str, area: &'static str| {
            let (t, code) = (&t, code.to_owned());
            async move {
                t.as_district_staff()
                    .submit_application(enterprise_request(&code, area, "200000"))
                    .await
            }
        };
        let stored_area = |code: &str| {
            let (pool, code) = (t.pool.clone(), code.to_owned());
            async move {
                sqlx::query_scalar::<_, Option<String>>(
                    "select area_code from rm_qualified_enterprises where uscc = $1",
                )
                .bind(code)
                .fetch_one(&pool)
                .await
                .expect("qualification row")
            }
        };
        let publish = |code: &str, area: Option<&'static str>, seq| {
            let (t, code) = (&t, code.to_owned());
            async move {
                let id = match area {
                    Some(area) => {
                        t.publish_enterprise_registered(&code, true, area, seq)
                            .await
                    }
                    None => t.publish_enterprise_qualified(&code, true, seq).await,
                };
                t.wait_applied(&id).await;
            }
        };

        let moved = uscc('3', 41);
        publish(&moved, Some(VILLAGE_A), 1).await;
        publish(&moved, None, 3).await;
        publish(&moved, Some(VILLAGE_A2), 2).await;
        assert_eq!(stored_area(&moved).await.as_deref(), Some(VILLAGE_A2));
        let s = submit(&moved, VILLAGE_A)
            .await
            .expect_err("registered in A2");
        assert_refused(&s, &["R-ID-1"]);
        assert!(s.message().contains(VILLAGE_A2), "names A2: {s:?}");
        assert!(submit(&moved, VILLAGE_A2).await.is_ok(), "filed in A2");
        let id = t.publish_npl_exceeded(VILLAGE_A2, 1).await;
        t.wait_applied(&id).await;
        assert_refused(
            &submit(&moved, VILLAGE_A2).await.expect_err("suspended"),
            &["R-RK-9"],
        );

        // The newest event naming an area wins over one older delivered after it.
        let kept = uscc('3', 42);
        publish(&kept, Some(VILLAGE_A), 3).await;
        publish(&kept, Some(VILLAGE_A2), 2).await;
        assert_eq!(stored_area(&kept).await.as_deref(), Some(VILLAGE_A));
        assert_refused(
            &submit(&kept, VILLAGE_A2)
                .await
                .expect_err("registered in A"),
            &["R-ID-1", "R-RK-9"],
        );

        // The row's first event named no area; the one that names it arrives late.
        let late = uscc('3', 43);
        publish(&late, None, 3).await;
        publish(&late, Some(VILLAGE_A), 2).await;
        assert_eq!(stored_area(&late).await.as_deref(), Some(VILLAGE_A));
        assert_refused(
            &submit(&late, TOWN_B).await.expect_err("registered in A"),
            &["R-ID-1"],
        );
        t.shutdown().await;
    })
    .await;
}

/// R-ID-1, R-RK-9: an enterprise the industry service registers in a village is held to it:
/// filed under another town, or under its own town (which would leave out its village's
/// circuit breaker), it is refused naming `enterprise.area_code`; under its village it is
/// admitted, and a suspension of that village then refuses it. A later qualification that
/// names no area keeps the registered one. One never registered is taken where it is filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enterprise_is_held_to_the_area_it_is_registered_in() {
    bounded(90, async {
        let t = spawn_intake().await;
        let code = uscc('3', 31);
        let id = t
            .publish_enterprise_registered(&code, true, VILLAGE_A, 1)
            .await;
        t.wait_applied(&id).await;
        let submit = |area: &'static str| {
            let (t, code) = (&t, code.clone());
            async move {
                t.as_district_staff()
                    .submit_application(enterprise_request(&code, area, "200000"))
                    .await
            }
        };
        for elsewhere in [TOWN_B, TOWN_A, VILLAGE_A2] {
            let s = submit(elsewhere)
                .await
                .expect_err("not where it is registered");
            assert_refused(&s, &["R-ID-1"]);
            assert!(
                s.message().contains("enterprise.area_code")
                    && s.message().contains(VILLAGE_A)
                    && s.message().contains(elsewhere),
                "names the field and both areas: {s:?}"
            );
        }
        assert!(
            submit(VILLAGE_A).await.is_ok(),
            "filed where it is registered"
        );

        let id = t.publish_enterprise_qualified(&code, true, 2).await;
        t.wait_applied(&id).await;
        assert_refused(
            &submit(TOWN_B).await.expect_err("still registered"),
            &["R-ID-1"],
        );
        let id = t.publish_npl_exceeded(VILLAGE_A, 1).await;
        t.wait_applied(&id).await;
        assert_refused(
            &submit(VILLAGE_A).await.expect_err("suspended"),
            &["R-RK-9"],
        );

        // An area that is neither a town nor a village: a qualification naming it is
        // dead-lettered (the registered area stays); a disqualification is applied without it.
        t.publish_enterprise_registered(&code, true, "410311", 3)
            .await;
        let dead = read_events(
            &t.bus,
            &t.bus.dead_letter_subject("*"),
            1,
            std::time::Duration::from_secs(60),
        )
        .await;
        assert_eq!(dead.len(), 1, "the qualification naming the district");
        let id = t
            .publish_enterprise_registered(&code, false, "410311", 4)
            .await;
        t.wait_applied(&id).await;
        let s = submit(VILLAGE_A).await.expect_err("disqualified");
        assert_refused(&s, &["R-ID-4", "R-RK-9"]);

        let unregistered = uscc('3', 32);
        let id = t.publish_enterprise_qualified(&unregistered, true, 1).await;
        t.wait_applied(&id).await;
        let filed = t
            .as_district_staff()
            .submit_application(enterprise_request(&unregistered, TOWN_B, "200000"))
            .await;
        assert!(filed.is_ok(), "no registered area: {filed:?}");
        t.shutdown().await;
    })
    .await;
}

/// Facts are checked as they are applied, not when admission reads them: a rating whose grade,
/// credit line or days intake cannot read goes to the dead-letter subject instead of the read model
/// (stored, it would fail admission for every submission batched with it), while the events
/// after it apply (R-IN-3, R-X-2). A USCC is kept upper-case, the form admission looks it up
/// by, whatever case the industry service sent (R-ID-4).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_facts_are_dead_lettered_and_codes_normalised() {
    bounded(120, async {
        let t = spawn_intake().await;
        let bad = resident_id(28);
        let good = resident_id(29);
        let malformed = [
            ("A+", "20000.00", "2024-01-01", "2027-12-31"),
            ("A", "-1.00", "2024-01-01", "2027-12-31"),
            ("A", "2e4", "2024-01-01", "2027-12-31"),
            // A grade with no day it took effect would never count (R-CR-3, R-CR-4).
            ("A", "20000.00", "", "2027-12-31"),
            // Expiring on (or before) the day it starts: never a rating.
            ("A", "20000.00", "2025-03-01", "2025-03-01"),
        ];
        for (seq, (grade, line, from, until)) in malformed.into_iter().enumerate() {
            t.publish_rating_effective(
                &bad,
                VILLAGE_A,
                grade,
                line,
                false,
                from,
                until,
                seq as u64 + 1,
            )
            .await;
        }
        t.given_credit_household(&good, VILLAGE_A).await;
        admitted(&t, &good, VILLAGE_A, "20000").await;

        let dead = read_events(
            &t.bus,
            &t.bus.dead_letter_subject("*"),
            malformed.len(),
            std::time::Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            dead.len(),
            malformed.len(),
            "each malformed rating is dead-lettered"
        );
        let stored: i64 =
            sqlx::query_scalar("select count(*) from rm_credit_ratings where subject_idx = $1")
                .bind(t.subject_index(&bad))
                .fetch_one(&t.pool)
                .await
                .expect("count");
        assert_eq!(stored, 0, "no malformed rating in the read model");
        refused(&t, &bad, VILLAGE_A, "1000", &["R-CR-3"]).await;
        // One stored before the consumer checked counts as no rating, and fails nothing else.
        sqlx::query(
            "insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade, veto,
               credit_line, effective_from, expires_on, policy_version, sequence)
             values ($1, 1, $2, 'A+', false, 20000, '2024-01-01', '2027-12-31', 'old', 1)",
        )
        .bind(t.subject_index(&bad))
        .bind(VILLAGE_A)
        .execute(&t.pool)
        .await
        .expect("a legacy row");
        refused(&t, &bad, VILLAGE_A, "1000", &["R-CR-3"]).await;
        admitted(&t, &good, VILLAGE_A, "20000").await;

        let code = uscc('3', 28);
        let id = t
            .publish_enterprise_qualified(&code.to_lowercase(), true, 1)
            .await;
        t.wait_applied(&id).await;
        let admitted = t
            .as_district_staff()
            .submit_application(enterprise_request(&code, TOWN_B, "200000"))
            .await;
        assert!(admitted.is_ok(), "qualified in lower case: {admitted:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-2 with R-RK-9 and R-CR-10: a NUL in an event's text (a protobuf string may hold one, a
/// PostgreSQL `text` column may not) does not lose the fact: the suspension and the
/// blacklisting apply (the NUL kept as U+FFFD), and the removal finds its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_in_an_events_text_does_not_lose_the_fact() {
    use fupin_proto::{rating::v1 as rating, risk::v1 as risk};
    bounded(60, async {
        let t = spawn_intake().await;
        let household = resident_id(901);
        let elsewhere = resident_id(902);
        t.given_credit_household(&household, VILLAGE_A).await;
        t.given_credit_household(&elsewhere, VILLAGE_B).await;

        let suspended = risk::NplThresholdExceeded {
            area_code: VILLAGE_B.into(),
            npl_ratio: "0.09\0".into(),
            threshold: "0.07".into(),
            measured_at: "2026-03-01T00:00:00Z".into(),
            sequence: 1,
        };
        let id = t
            .publish("/fupin/risk-control", &suspended, VILLAGE_B)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &elsewhere, VILLAGE_B, "1000", &["R-RK-9"]).await;

        let kind = rating::SubjectKind::Household as i32;
        let added = rating::BlacklistEntryAdded {
            entry_id: "bl-\0-901".into(),
            subject_kind: kind,
            subject_id: household.clone(),
            reason: "fraud\0".into(),
            source: "bank report".into(),
            listed_on: "2026-01-05".into(),
        };
        let id = t.publish("/fupin/credit-rating", &added, &household).await;
        t.wait_applied(&id).await;
        refused(&t, &household, VILLAGE_A, "1000", &["R-CR-10"]).await;
        // Another entry whose id reads like it with the NUL replaced stays another entry: its
        // removal lifts nothing.
        let lookalike = rating::BlacklistEntryRemoved {
            entry_id: "bl-\u{FFFD}-901".into(),
            subject_kind: kind,
            subject_id: household.clone(),
            decision: "repaid".into(),
            removed_on: "2026-02-01".into(),
        };
        let id = t
            .publish("/fupin/credit-rating", &lookalike, &household)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &household, VILLAGE_A, "1000", &["R-CR-10"]).await;
        let removed = rating::BlacklistEntryRemoved {
            entry_id: "bl-\0-901".into(),
            subject_kind: kind,
            subject_id: household.clone(),
            decision: "repaid".into(),
            removed_on: "2026-02-01".into(),
        };
        let id = t
            .publish("/fupin/credit-rating", &removed, &household)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &household, VILLAGE_A, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// An AA household rated in `in_force` since 2024 with a renewal naming `renewal` announced
/// ahead, from 2026-03-09 (the clock is at 2026-03-02).
async fn rated_with_renewal_ahead(t: &TestIntake, household: &str, in_force: &str, renewal: &str) {
    t.rate_household(household, in_force, "AA", "30000.00", 1)
        .await;
    let id = t
        .publish_rating_effective(
            household,
            renewal,
            "AA",
            "30000.00",
            false,
            "2026-03-09",
            "2027-12-31",
            2,
        )
        .await;
    t.wait_applied(&id).await;
}

/// R-RK-9, R-CR-4: where a household is rated is said by the rating in force. A renewal announced
/// ahead that names a village of a suspended town counts from its day: until then the household
/// is admitted in its village (the dispatcher's copy), from then on it is refused at submission
/// (the copy) and at recommendation (the tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_ahead_moves_the_household_into_a_suspension_only_from_its_day() {
    bounded(60, async {
        let t = spawn_intake().await;
        let household = resident_id(912);
        rated_with_renewal_ahead(&t, &household, VILLAGE_A, VILLAGE_B).await;
        let id = t.publish_npl_exceeded(TOWN_B, 1).await;
        t.wait_applied(&id).await;

        let app = try_submit(&t, &household, VILLAGE_A, "1000")
            .await
            .expect("admitted: the rating in force places it in an open town");
        t.approve_to_notice(&app).await;
        t.set_time("2026-03-10T09:00:00+08:00");
        let s = t
            .recommend(&app.id, BANK)
            .await
            .expect_err("the renewal in force places it in the suspended town");
        assert_refused(&s, &["R-RK-9"]);
        assert!(s.message().contains(TOWN_B), "{}", s.message());
        let s = try_submit(&t, &resident_id(912), VILLAGE_A, "1000")
            .await
            .expect_err("submitted once the renewal is in force");
        assert_refused(&s, &["R-RK-9"]);
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9 at the write: a suspension of the town where the household's rating in force (an
/// earlier one, with a renewal naming another village announced ahead) places it, written
/// after the dispatcher's copy was loaded, is caught by the batch's freshness check, which
/// follows every rating's village: the batch is decided again and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspension_of_the_rating_in_forces_town_is_seen_at_the_write() {
    bounded(60, async {
        let t = spawn_intake().await; // 2026-03-02
        let household = resident_id(913);
        rated_with_renewal_ahead(&t, &household, VILLAGE_B, VILLAGE_A).await;
        admitted(&t, &household, VILLAGE_A, "1000").await;
        // Straight to the table: the copy learns of it only from the write.
        sqlx::query(
            "insert into rm_suspended_areas (area_code, suspended, npl_ratio, sequence)
             values ($1, true, '0.0612', 1)",
        )
        .bind(TOWN_B)
        .execute(&t.pool)
        .await
        .expect("a suspension");
        refused(&t, &household, VILLAGE_A, "1000", &["R-RK-9"]).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-RK-9: lending is suspended where the household is: a household the credit service
/// rates in a suspended town is refused also when it is filed from another village, at
/// submission (the dispatcher's copy of the read model) and at recommendation (the tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_household_filed_elsewhere_does_not_escape_its_villages_suspension() {
    bounded(60, async {
        let t = spawn_intake().await;
        let household = resident_id(911);
        t.rate_household(&household, VILLAGE_B, "AA", "30000.00", 1)
            .await;
        let id = t.publish_npl_exceeded(TOWN_B, 1).await;
        t.wait_applied(&id).await;
        refused(&t, &household, VILLAGE_B, "1000", &["R-RK-9"]).await;
        let s = try_submit(&t, &household, VILLAGE_A, "1000")
            .await
            .expect_err("filed in another village");
        assert_refused(&s, &["R-RK-9"]);
        assert!(s.message().contains(TOWN_B), "{}", s.message());

        // Resumed, it is admitted; suspended again before the recommendation, it is refused.
        let id = t.publish_lending_resumed(TOWN_B, 2).await;
        t.wait_applied(&id).await;
        let app = try_submit(&t, &household, VILLAGE_A, "1000")
            .await
            .expect("admitted once lending resumed");
        t.approve_to_notice(&app).await;
        let id = t.publish_npl_exceeded(TOWN_B, 3).await;
        t.wait_applied(&id).await;
        t.set_time("2026-03-10T09:00:00+08:00");
        let s = t
            .recommend(&app.id, BANK)
            .await
            .expect_err("suspended at recommendation");
        assert_refused(&s, &["R-RK-9"]);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3, R-CR-3: however many ratings are announced ahead of their days, the one in force
/// today stays in force until the first of them (the read model once kept three earlier
/// ratings and dropped the one in force when four more were announced ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_ratings_announced_ahead_leave_the_one_in_force() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(43);
        t.set_time("2026-06-01T09:00:00+08:00");
        let ahead = [
            ("AA", "30000.00", "2026-06-10"),
            ("AA", "30000.00", "2026-06-11"),
            ("AAA", "50000.00", "2026-06-12"),
            ("AA", "30000.00", "2026-06-13"),
            ("AAA", "50000.00", "2026-06-14"),
            ("AA", "30000.00", "2026-06-15"),
        ];
        let in_force = ("A", "20000.00", "2026-01-01");
        for (seq, (grade, line, from)) in [in_force].into_iter().chain(ahead).enumerate() {
            let id = t
                .publish_rating_effective(
                    &r,
                    VILLAGE_A,
                    grade,
                    line,
                    false,
                    from,
                    "2027-01-01",
                    seq as u64 + 1,
                )
                .await;
            t.wait_applied(&id).await;
        }
        admitted(&t, &r, VILLAGE_A, "20000").await;
        refused(&t, &r, VILLAGE_A, "20000.01", &["R-CR-8"]).await;
        for (grade, line, from) in ahead {
            t.set_time(&format!("{from}T09:00:00+08:00"));
            admitted(&t, &r, VILLAGE_A, line).await;
            if grade == "AA" {
                refused(&t, &r, VILLAGE_A, "30000.01", &["R-CR-8"]).await;
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-CR-10, R-X-3: a blacklist entry names one subject. An event naming another subject for
/// a known entry is dead-lettered and changes nothing: a removal cannot lift someone else's
/// entry, and an addition after a removal stored under another subject does not move it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blacklist_event_naming_another_subject_changes_nothing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let (listed, other) = (resident_id(44), resident_id(45));
        for r in [&listed, &other] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let id = t
            .publish_blacklisted("bl-44", &listed, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        t.publish_blacklist_removed("bl-44", &other, HOUSEHOLD_KIND)
            .await;
        let id = t
            .publish_blacklist_removed("bl-45", &other, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        t.publish_blacklisted("bl-45", &listed, HOUSEHOLD_KIND)
            .await;

        let dead = read_events(
            &t.bus,
            &t.bus.dead_letter_subject("*"),
            2,
            std::time::Duration::from_secs(60),
        )
        .await;
        assert_eq!(dead.len(), 2, "both mismatched events dead-lettered");
        for d in &dead {
            let why = d.header("fupin-dlq-error").unwrap_or_default();
            assert!(why.contains("known under another subject"), "{why}");
            assert!(
                !why.contains(&listed) && !why.contains(&other),
                "no identifier repeated (R-CR-11): {why}"
            );
        }
        refused(&t, &listed, VILLAGE_A, "1000", &["R-CR-10"]).await;
        admitted(&t, &other, VILLAGE_A, "1000").await;
        // The entry's own removal still lifts it.
        let id = t
            .publish_blacklist_removed("bl-44", &listed, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &listed, VILLAGE_A, "1000").await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-6, R-X-3: a credit-village status names a village; a town's or the district's code is
/// dead-lettered, not stored where no household's line would ever read it. A sequence beyond
/// what intake can keep is dead-lettered naming `sequence`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credit_village_statuses_name_villages() {
    bounded(90, async {
        let t = spawn_intake().await;
        t.publish_credit_village(TOWN_A, true, 1).await;
        t.publish_credit_village("410311", true, 1).await;
        t.publish_credit_village(VILLAGE_A, true, 1 << 63).await;
        let dead = read_events(
            &t.bus,
            &t.bus.dead_letter_subject("*"),
            3,
            std::time::Duration::from_secs(60),
        )
        .await;
        let mut why: Vec<_> = dead
            .iter()
            .map(|d| d.header("fupin-dlq-error").unwrap_or_default().to_owned())
            .collect();
        why.sort();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].contains("sequence 9223372036854775808"), "{why:?}");
        assert!(
            why[1].contains("a district code, not a village's"),
            "{why:?}"
        );
        assert!(why[2].contains("a town code, not a village's"), "{why:?}");
        let stored: i64 = sqlx::query_scalar("select count(*) from rm_credit_villages")
            .fetch_one(&t.pool)
            .await
            .expect("count");
        assert_eq!(stored, 0);
        t.shutdown().await;
    })
    .await;
}
