//! R-IN-3: submissions are admitted against the dispatcher's in-memory copy of the read model.
//! The copy must say exactly what the tables say, through any mix of changes: here random
//! changes are made straight to the tables (as the consumers, an operator or a restore would),
//! and after each few the copy catches up and is compared with the query the recommendation
//! step runs on the tables, for every applicant, village and enterprise involved.

mod common;

use common::*;
use fupin_intake::store::{
    readmodel::{EARLIER_KEPT, FactsQuery, Subject, admission_facts},
    readmodel_copy::ReadModelCopy,
};
use fupin_platform::testing::TestDb;
use sqlx::{PgConnection, PgPool};

const SUBJECTS: u8 = 6;
const VILLAGES: [&str; 3] = ["410311001001", "410311001002", "410311002001"];
const USCCS: [&str; 3] = [
    "91410311MA0000001X",
    "91410311MA0000002X",
    "91410311MA0000003X",
];
const GRADES: [&str; 7] = ["AAA", "AA", "A", "B", "C", "", "unreadable"];

/// A small deterministic generator: the same changes on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
    fn day(&mut self) -> Option<chrono::NaiveDate> {
        (self.below(3) > 0).then(|| day("2026-01-01") + chrono::Days::new(self.below(700)))
    }
}

fn subject(n: u64) -> Vec<u8> {
    vec![n as u8 + 1; 32]
}

fn town_of(village: &str) -> &str {
    &village[..9]
}

/// One random change to the read model (some change nothing: every statement takes a
/// version all the same).
async fn change(conn: &mut PgConnection, rng: &mut Rng, step: i64) {
    let s = subject(rng.below(SUBJECTS.into()));
    let result = match rng.below(9) {
        // Through the consumer's upsert, which keeps the ratings in force until the newest
        // one's day (`earlier`).
        0 => fupin_intake::store::readmodel::upsert_rating(
            conn,
            &s,
            1,
            VILLAGES[rng.below(2) as usize],
            GRADES[rng.below(GRADES.len() as u64) as usize],
            rng.below(4) == 0,
            rust_decimal::Decimal::from(rng.below(60_000)),
            rng.day(),
            rng.day(),
            "test",
            step,
        )
        .await
        .map(|()| Default::default()),
        1 => sqlx::query(
            r#"insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade, veto,
                 credit_line, effective_from, expires_on, policy_version, sequence)
               values ($1, 1, $2, $3, $4, $5, $6, $7, 'test', $8)
               on conflict (subject_idx) do update set grade = excluded.grade,
                 veto = excluded.veto, credit_line = excluded.credit_line,
                 effective_from = excluded.effective_from, expires_on = excluded.expires_on,
                 sequence = excluded.sequence"#,
        )
        .bind(&s)
        .bind(VILLAGES[0])
        .bind(GRADES[rng.below(GRADES.len() as u64) as usize])
        .bind(rng.below(4) == 0)
        .bind(rust_decimal::Decimal::from(rng.below(60_000)))
        .bind(rng.day())
        .bind(rng.day())
        .bind(step)
        .execute(conn)
        .await,
        2 => {
            sqlx::query(
                r#"insert into rm_credit_villages (village_code, credit_village, effective_from,
                 credit_village_before, sequence)
               values ($1, $2, $3, $4, $5)
               on conflict (village_code) do update set credit_village = excluded.credit_village,
                 effective_from = excluded.effective_from,
                 credit_village_before = excluded.credit_village_before,
                 sequence = excluded.sequence"#,
            )
            .bind(VILLAGES[rng.below(3) as usize])
            .bind(rng.coin())
            .bind(rng.day())
            .bind(rng.coin().then(|| rng.coin()))
            .bind(step)
            .execute(conn)
            .await
        }
        // An entry added, re-pointed at another subject (same entry id), or removed.
        3 | 4 => {
            sqlx::query(
                r#"insert into rm_blacklist (entry_id, subject_idx, subject_kind, reason, active)
               values ($1, $2, 1, 'test', $3)
               on conflict (entry_id) do update set subject_idx = excluded.subject_idx,
                 active = excluded.active"#,
            )
            .bind(format!("entry-{}", rng.below(8)))
            .bind(&s)
            .bind(rng.below(3) > 0)
            .execute(conn)
            .await
        }
        5 => {
            let village = VILLAGES[rng.below(3) as usize];
            let area = if rng.coin() {
                village
            } else {
                town_of(village)
            };
            sqlx::query(
                r#"insert into rm_suspended_areas (area_code, suspended, npl_ratio, sequence)
                   values ($1, $2, '0.05', $3)
                   on conflict (area_code) do update set suspended = excluded.suspended,
                     sequence = excluded.sequence"#,
            )
            .bind(area)
            .bind(rng.coin())
            .bind(step)
            .execute(conn)
            .await
        }
        6 => {
            sqlx::query(
                r#"insert into rm_qualified_enterprises (uscc, qualified, reason, sequence,
                     effective_from, qualified_before, area_code)
               values ($1, $2, '', $3, $4, $5, $6)
               on conflict (uscc) do update set qualified = excluded.qualified,
                 sequence = excluded.sequence, effective_from = excluded.effective_from,
                 qualified_before = excluded.qualified_before, area_code = excluded.area_code"#,
            )
            .bind(USCCS[rng.below(3) as usize])
            .bind(rng.coin())
            .bind(step)
            .bind(rng.day())
            .bind(if rng.coin() { None } else { Some(rng.coin()) })
            // Registered in a village, its town, or not said (R-ID-1).
            .bind(match rng.below(3) {
                0 => None,
                1 => Some(VILLAGES[rng.below(3) as usize]),
                _ => Some(town_of(VILLAGES[rng.below(3) as usize])),
            })
            .execute(conn)
            .await
        }
        // What the copy cannot follow row by row: deletes, and a key that changes.
        7 => match rng.below(3) {
            0 => {
                sqlx::query("delete from rm_credit_ratings where subject_idx = $1")
                    .bind(&s)
                    .execute(conn)
                    .await
            }
            1 => {
                sqlx::query("delete from rm_blacklist where subject_idx = $1")
                    .bind(&s)
                    .execute(conn)
                    .await
            }
            _ => {
                sqlx::query("delete from rm_suspended_areas where area_code = $1")
                    .bind(VILLAGES[rng.below(3) as usize])
                    .execute(conn)
                    .await
            }
        },
        _ => {
            sqlx::query(
                r#"update rm_credit_ratings set subject_idx = $2
               where subject_idx = $1
                 and not exists (select 1 from rm_credit_ratings where subject_idx = $2)"#,
            )
            .bind(&s)
            .bind(subject(rng.below(SUBJECTS.into())))
            .execute(conn)
            .await
        }
    };
    result.expect("change the read model");
}

/// The copy and the tables agree for every subject, village (or none) and enterprise (or none).
async fn agree(pool: &PgPool, copy: &ReadModelCopy, step: i64) {
    let mut conn = pool.acquire().await.expect("connection");
    for n in 0..u64::from(SUBJECTS) {
        let index = subject(n);
        for village in VILLAGES.iter().map(Some).chain([None]) {
            for uscc in USCCS.iter().take(2).map(Some).chain([None]) {
                let q = FactsQuery {
                    subject: Subject {
                        index: &index,
                        uscc: uscc.copied(),
                    },
                    village: village.copied(),
                    town: village.map(|v| town_of(v)),
                };
                let tables = admission_facts(&mut *conn, q.subject, q.village, q.town)
                    .await
                    .expect("facts from the tables");
                let copied = copy.facts(&q).expect("facts from the copy");
                assert_eq!(
                    copied, tables,
                    "step {step}: subject {n}, village {village:?}, enterprise {uscc:?}"
                );
            }
        }
    }
}

/// R-IN-3: the copy agrees with the tables through any changes (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_of_the_read_model_agrees_with_the_tables_through_any_changes() {
    bounded(120, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut reader = db.pool.acquire().await.expect("the copy's connection");
        let mut copy = ReadModelCopy::default();
        assert!(copy.catch_up(&mut reader).await.expect("load"));
        assert!(
            !copy.catch_up(&mut reader).await.expect("again"),
            "nothing changed"
        );
        let mut rng = Rng(0x5eed_f00d_1234_5678);
        let mut step = 0;
        for round in 0..60 {
            let mut tx = db.pool.begin().await.expect("begin");
            for _ in 0..=rng.below(4) {
                step += 1;
                change(&mut tx, &mut rng, step).await;
            }
            let before = copy.version();
            // Now and then the changes are rolled back: the version they took goes with them.
            let kept = round % 7 != 3;
            if kept {
                tx.commit().await.expect("commit");
            } else {
                tx.rollback().await.expect("rollback");
            }
            let moved = copy.catch_up(&mut reader).await.expect("catch up");
            assert_eq!(
                moved, kept,
                "round {round}: the version moved with a commit"
            );
            assert_eq!(
                copy.version(),
                before.map(|v| v + i64::from(kept)),
                "one version per committed transaction"
            );
            agree(&db.pool, &copy, step).await;
        }
    })
    .await;
}

/// R-IN-3: the version row every submission is written against cannot be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_version_row_cannot_be_deleted() {
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        for sql in ["delete from rm_version", "truncate rm_version"] {
            let e = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
            assert!(e.to_string().contains("keeps its one row"), "{sql}: {e}");
        }
        let n: i64 = sqlx::query_scalar("select count(*) from rm_version")
            .fetch_one(&db.pool)
            .await
            .expect("count");
        assert_eq!(n, 1);
    })
    .await;
}

async fn changed_of(pool: &PgPool, village: &str) -> i64 {
    sqlx::query_scalar("select changed from rm_credit_villages where village_code = $1")
        .bind(village)
        .fetch_one(pool)
        .await
        .expect("changed")
}

async fn set_village(conn: &mut PgConnection, village: &str) {
    sqlx::query(
        r#"insert into rm_credit_villages (village_code, credit_village, sequence)
           values ($1, true, 1)
           on conflict (village_code) do update set credit_village = not rm_credit_villages.credit_village"#,
    )
    .bind(village)
    .execute(conn)
    .await
    .expect("write a village");
}

/// R-IN-3: versions follow commit order: a second writer waits for the first to commit, and its rows
/// carry the next version; a version taken inside a savepoint that is rolled back goes with
/// it, and the transaction's next write takes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_follow_commit_order_and_savepoints() {
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let pool = &db.pool;
        let (a, b) = (VILLAGES[0], VILLAGES[1]);

        let mut first = pool.begin().await.expect("begin");
        sqlx::query("savepoint s")
            .execute(&mut *first)
            .await
            .expect("savepoint");
        set_village(&mut first, a).await;
        sqlx::query("rollback to savepoint s")
            .execute(&mut *first)
            .await
            .expect("rollback to savepoint");
        set_village(&mut first, a).await;

        let second = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin().await.expect("begin");
                set_village(&mut tx, b).await;
                tx.commit().await.expect("commit");
            })
        };
        wait_until("the second writer to wait for the first", || async {
            count(
                pool,
                "select count(*) from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'",
            )
            .await
                == 1
        })
        .await;
        first.commit().await.expect("commit");
        second.await.expect("second writer");

        assert_eq!(
            changed_of(pool, a).await,
            1,
            "the first commit is version 1"
        );
        assert_eq!(
            changed_of(pool, b).await,
            2,
            "the second commit is version 2"
        );
        let version: i64 = sqlx::query_scalar("select version from rm_version")
            .fetch_one(pool)
            .await
            .expect("version");
        assert_eq!(version, 2);
    })
    .await;
}

const VILLAGE_TIMELINE: &str =
    "select timeline_from, timeline_status from rm_credit_villages where village_code = $1";
const QUALIFICATION_TIMELINE: &str =
    "select timeline_from, timeline_status from rm_qualified_enterprises where uscc = $1";

/// The timeline stored for `key`, as (day, status) entries.
async fn stored_timeline(
    conn: &mut PgConnection,
    select: &'static str,
    key: &str,
) -> Vec<(Option<chrono::NaiveDate>, bool)> {
    let (days, statuses): (Vec<Option<chrono::NaiveDate>>, Vec<bool>) = sqlx::query_as(select)
        .bind(key)
        .fetch_one(conn)
        .await
        .expect("stored timeline");
    days.into_iter().zip(statuses).collect()
}

/// R-CR-8, R-ID-4: the timeline of announced statuses kept with each row (migrations
/// `20261130000005`, `..0006`, `..0012`) says what intake's domain says: after every one of a
/// few hundred random announcements through the consumers' own upserts (some arriving after
/// later ones, some for no day, some repeating a sequence already kept), the stored timeline
/// equals `Timeline::announce` applied to every announcement kept, once per sequence, in
/// sequence order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_timelines_follow_the_domain_announcements() {
    use fupin_intake::{domain::admission::Timeline, store::readmodel as rm};
    use std::collections::BTreeMap;
    /// The domain's timeline of the announcements kept, in sequence order.
    fn folded(kept: &BTreeMap<i64, (Option<chrono::NaiveDate>, bool)>) -> Timeline<bool> {
        let mut t = Timeline::default();
        for (day, status) in kept.values() {
            t.announce(*day, *status);
        }
        t
    }
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let mut rng = Rng(0x005e_ed0f_da75);
        let mut village = BTreeMap::new();
        let mut enterprise = BTreeMap::new();
        for step in 1..=300_i64 {
            let (day, status) = (rng.day(), rng.coin());
            // Now and then an older sequence number: delivered late, or (when that sequence
            // was already kept) a repeat, which changes nothing.
            let seq = if rng.below(6) == 0 { step - 3 } else { step };
            if rng.coin() {
                rm::upsert_credit_village(&mut conn, VILLAGES[0], status, day, seq)
                    .await
                    .expect("upsert");
                village.entry(seq).or_insert((day, status));
                assert_eq!(
                    stored_timeline(&mut conn, VILLAGE_TIMELINE, VILLAGES[0]).await,
                    folded(&village).entries(),
                    "village, step {step}"
                );
            } else {
                rm::set_qualification(&mut conn, USCCS[0], status, "", day, None, seq)
                    .await
                    .expect("upsert");
                enterprise.entry(seq).or_insert((day, status));
                assert_eq!(
                    stored_timeline(&mut conn, QUALIFICATION_TIMELINE, USCCS[0]).await,
                    folded(&enterprise).entries(),
                    "enterprise, step {step}"
                );
            }
        }
    })
    .await;
}

/// A rating of subject `index` in the first village, line 20,000, through the consumer's upsert.
async fn rate(
    conn: &mut PgConnection,
    index: &[u8],
    grade: &str,
    from: Option<chrono::NaiveDate>,
    seq: i64,
) {
    fupin_intake::store::readmodel::upsert_rating(
        conn,
        index,
        1,
        VILLAGES[0],
        grade,
        false,
        rust_decimal::Decimal::from(20_000),
        from,
        None,
        "test",
        seq,
    )
    .await
    .expect("upsert");
}

/// Who admission asks about: subject `index` in the first village.
fn household_in_first_village(index: &[u8]) -> FactsQuery<'_> {
    FactsQuery {
        subject: Subject { index, uscc: None },
        village: Some(VILLAGES[0]),
        town: Some(town_of(VILLAGES[0])),
    }
}

/// R-CR-3, R-CR-4, R-CR-5: ratings announced ahead of their day (migration
/// `20261130000014`). After every one of a few hundred random ratings through the consumer's
/// upsert (some arriving after newer ones, folded in sequence order all the same, migration
/// `20261202000003`; some for no day), the rating admission reads for each of twenty days is
/// the one a model of the row says: the newest once its day has come, else the latest of the
/// earlier ones kept (the `EARLIER_KEPT` latest that start before the newest) whose day has,
/// else the newest. `read_model.rs` plays the rule out
/// through the consumer and gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_announced_ahead_leave_the_earlier_ones_in_force() {
    type Rated = (i64, Option<chrono::NaiveDate>, &'static str);
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let mut rng = Rng(0x00ea_7e5a_edda_7e00);
        let index = subject(0);
        let grades = ["AAA", "AA", "A", "B", ""];
        // The model: every rating that counts, by sequence (a numbered one the first time its
        // sequence is seen, an unnumbered one only while it is newer than all), folded in
        // sequence order whatever order they arrived in: each keeps those before its day.
        let mut announced: std::collections::BTreeMap<i64, (Option<chrono::NaiveDate>, &str)> =
            Default::default();
        for step in 1..=300_i64 {
            let seq = match rng.below(6) {
                // Delivered again (or, never delivered, delivered late).
                0 => 2 * (step - 3),
                // Delivered late, after up to three newer ones: never delivered before.
                1 => 2 * (step - 1 - rng.below(4) as i64) + 1,
                _ => 2 * step,
            };
            let from = rng.day();
            let grade = grades[rng.below(grades.len() as u64) as usize];
            rate(&mut conn, &index, grade, from, seq).await;
            if seq > 0 || announced.last_key_value().is_none_or(|(&k, _)| k < seq) {
                announced.entry(seq).or_insert((from, grade));
            }
            let mut folded: Vec<Rated> = Vec::new();
            for (&seq, &(from, grade)) in &announced {
                folded.retain(|(_, d, _)| matches!((d, from), (Some(d), Some(from)) if *d < from));
                let drop = folded.len().saturating_sub(EARLIER_KEPT as usize);
                folded.drain(..drop);
                folded.push((seq, from, grade));
            }
            let newest = folded.last().copied();
            let earlier = &folded[..folded.len().saturating_sub(1)];
            let q = household_in_first_village(&index);
            let facts = admission_facts(&mut *conn, q.subject, q.village, q.town)
                .await
                .expect("facts");
            let grade_of = |r: Option<&fupin_intake::domain::admission::RatingFact>| {
                r.map(|r| r.grade.map_or("", |g| g.as_str()))
            };
            for probe in 0..20 {
                let on = day("2026-01-01") + chrono::Days::new(probe * 37);
                let model = match newest {
                    Some((_, d, g)) if d.is_none_or(|d| d <= on) => Some(g),
                    Some((_, _, g)) => earlier
                        .iter()
                        .rev()
                        .find(|(_, d, _)| d.is_some_and(|d| d <= on))
                        .map_or(Some(g), |(_, _, g)| Some(*g)),
                    None => None,
                };
                assert_eq!(
                    grade_of(facts.rating_on(on)),
                    model,
                    "step {step}, day {on}"
                );
            }
        }
    })
    .await;
}

/// R-CR-3, migration `20261202000003`: a rating row stored before the upgrade is the base
/// ratings delivered late are folded onto. A newer rating (AA from 07-01) and then, late, one
/// between the two (C from 02-01) both count, each from its day; one older than what the row
/// held at the upgrade (B from 2025-12-01, before A's day) is not known to the fold and still
/// drops: before 01-01 no rating is in force (the newest is read, not yet effective).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_stored_before_the_upgrade_are_what_late_ones_fold_onto() {
    bounded(60, async {
        let upgrade = 20261202000003;
        let before = sqlx::migrate::Migrator::with_migrations(
            fupin_intake::MIGRATIONS
                .iter()
                .filter(|m| m.version < upgrade)
                .cloned()
                .collect(),
        );
        let db = TestDb::create(&before).await.expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let index = subject(0);
        // What the upsert before the upgrade stored for A from 01-01 (sequence 2).
        sqlx::query(
            "insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade, veto,
               credit_line, effective_from, expires_on, policy_version, sequence, earlier_as_of)
             values ($1, 1, $2, 'A', false, 20000, '2026-01-01', null, 'test', 2, 2)",
        )
        .bind(&index)
        .bind(VILLAGES[0])
        .execute(&mut *conn)
        .await
        .expect("a rating stored before the upgrade");
        fupin_platform::db::migrate(&mut *conn, &fupin_intake::MIGRATIONS)
            .await
            .expect("the upgrade");

        rate(&mut conn, &index, "AA", Some(day("2026-07-01")), 4).await;
        rate(&mut conn, &index, "C", Some(day("2026-02-01")), 3).await;
        rate(&mut conn, &index, "B", Some(day("2025-12-01")), 1).await;
        let q = household_in_first_village(&index);
        let facts = admission_facts(&mut *conn, q.subject, q.village, q.town)
            .await
            .expect("facts");
        for (on, grade) in [
            ("2025-12-15", "AA"),
            ("2026-01-20", "A"),
            ("2026-02-01", "C"),
            ("2026-06-30", "C"),
            ("2026-07-01", "AA"),
        ] {
            let read = facts.rating_on(day(on)).and_then(|r| r.grade);
            assert_eq!(read.map(|g| g.as_str()), Some(grade), "{on}");
        }
    })
    .await;
}

/// R-CR-3, rollback: an earlier intake's upsert replaces a rating without knowing of
/// `earlier`, so what the row kept there was folded for a rating that is gone; it is not used
/// (not by the query, not by the copy), nor folded into the next rating this version writes.
/// Here A is in force with AA announced ahead; the earlier intake stores a veto for today; this
/// version then stores a renewal announced ahead: before its day the veto is in force, never A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_kept_before_a_rollback_are_not_brought_back() {
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let index = subject(0);
        let upsert = |grade: &'static str, from: &'static str, seq: i64| {
            let (index, pool) = (index.clone(), db.pool.clone());
            async move {
                let mut conn = pool.acquire().await.expect("connection");
                rate(&mut conn, &index, grade, Some(day(from)), seq).await;
            }
        };
        let grade_on = |on: &'static str| {
            let (pool, index) = (db.pool.clone(), index.clone());
            async move {
                let q = household_in_first_village(&index);
                let tables = admission_facts(&pool, q.subject, q.village, q.town)
                    .await
                    .expect("facts");
                let mut reader = pool.acquire().await.expect("connection");
                let mut copy = ReadModelCopy::default();
                copy.catch_up(&mut reader).await.expect("load");
                let copied = copy.facts(&q).expect("facts from the copy");
                assert_eq!(copied, tables, "the copy agrees on {on}");
                let r = tables.rating_on(day(on)).expect("a rating");
                (r.grade.map_or("", |g| g.as_str()).to_owned(), r.veto)
            }
        };
        upsert("A", "2026-01-01", 1).await;
        upsert("AA", "2026-06-01", 2).await;
        assert_eq!(grade_on("2026-03-01").await, ("A".to_owned(), false));
        // The earlier intake's upsert: the newest columns only.
        sqlx::query(
            r#"update rm_credit_ratings set grade = 'A', veto = true,
                 effective_from = '2026-03-01', sequence = 3
               where subject_idx = $1"#,
        )
        .bind(&index)
        .execute(&mut *conn)
        .await
        .expect("an earlier intake's write");
        assert_eq!(grade_on("2026-03-02").await, ("A".to_owned(), true));
        assert_eq!(
            grade_on("2026-02-01").await,
            ("A".to_owned(), true),
            "the veto, not yet in force: never the A kept for AA"
        );
        upsert("AAA", "2026-09-01", 4).await;
        assert_eq!(grade_on("2026-03-02").await, ("A".to_owned(), true));
        assert_eq!(grade_on("2026-09-01").await, ("AAA".to_owned(), false));
        assert_eq!(
            grade_on("2026-02-01").await,
            ("AAA".to_owned(), false),
            "before every kept day the newest (not yet in force), never the A before the veto"
        );
    })
    .await;
}

/// R-CR-8, rollback: an earlier intake writes credit-village rows with its own upsert, which
/// knows nothing of the announcement log; the rows' own trigger logs what it announced, so
/// when this version folds again (a later announcement) nothing the earlier one applied is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_written_by_an_earlier_intake_are_folded_too() {
    use fupin_intake::{domain::admission::Timeline, store::readmodel as rm};
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let village = VILLAGES[1];
        let on = |s: &str| Some(day(s));
        rm::upsert_credit_village(&mut conn, village, true, on("2026-03-04"), 2)
            .await
            .expect("this version");
        // The earlier version's statement, as it ran before the log existed.
        sqlx::query(
            r#"insert into rm_credit_villages (village_code, credit_village, effective_from, sequence)
               values ($1, false, '2026-03-06', 3)
               on conflict (village_code) do update set credit_village = excluded.credit_village,
                 effective_from = excluded.effective_from, sequence = excluded.sequence
               where rm_credit_villages.sequence < excluded.sequence"#,
        )
        .bind(village)
        .execute(&mut *conn)
        .await
        .expect("the earlier version");
        rm::upsert_credit_village(&mut conn, village, true, on("2026-03-10"), 4)
            .await
            .expect("this version again");
        let mut want = Timeline::default();
        want.announce(on("2026-03-04"), true);
        want.announce(on("2026-03-06"), false);
        want.announce(on("2026-03-10"), true);
        assert_eq!(
            stored_timeline(&mut conn, VILLAGE_TIMELINE, village).await,
            want.entries()
        );
    })
    .await;
}

/// R-CR-8, R-ID-4, migration `20261130000016`: a row whose timeline a second unnumbered
/// announcement emptied (the fold skipped the row's own unnumbered first) is folded again by
/// the migration, and unnumbered announcements are folded first from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_refolds_timelines_emptied_by_a_second_unnumbered_announcement() {
    use fupin_intake::{domain::admission::Timeline, store::readmodel as rm};
    bounded(60, async {
        let db = TestDb::create(&fupin_intake::MIGRATIONS)
            .await
            .expect("test database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let (emptied, untouched) = (VILLAGES[1], VILLAGES[2]);
        for village in [emptied, untouched] {
            rm::upsert_credit_village(&mut conn, village, true, None, 0)
                .await
                .expect("unnumbered");
        }
        // What the fold before the fix left.
        sqlx::query(
            "update rm_credit_villages set timeline_from = '{}', timeline_status = '{}'
              where village_code = $1",
        )
        .bind(emptied)
        .execute(&mut *conn)
        .await
        .expect("emptied");
        sqlx::raw_sql(include_str!(
            "../migrations/20261130000016_unnumbered_announcements_folded.sql"
        ))
        .execute(&mut *conn)
        .await
        .expect("the migration again");
        let mut want = Timeline::default();
        want.announce(None, true);
        for village in [emptied, untouched] {
            assert_eq!(
                stored_timeline(&mut conn, VILLAGE_TIMELINE, village).await,
                want.entries(),
                "{village}"
            );
        }

        // An unnumbered announcement after a numbered one changes nothing, also when an
        // earlier intake (after a rollback) takes it down the late path.
        let numbered = VILLAGES[0];
        let on = Some(day("2026-03-04"));
        rm::upsert_credit_village(&mut conn, numbered, true, on, 3)
            .await
            .expect("numbered");
        rm::upsert_credit_village(&mut conn, numbered, false, None, 0)
            .await
            .expect("unnumbered");
        sqlx::query("select rm_announced_late('credit_village', $1, 0, null, false)")
            .bind(numbered)
            .execute(&mut *conn)
            .await
            .expect("an earlier intake's late path");
        let mut want = Timeline::default();
        want.announce(on, true);
        assert_eq!(
            stored_timeline(&mut conn, VILLAGE_TIMELINE, numbered).await,
            want.entries()
        );
    })
    .await;
}
