//! Intake's read model of other services' facts (R-IN-3), fed by their events. Every upsert
//! is guarded by the producer's per-subject sequence, so a late redelivery of an older fact
//! never overwrites a newer one. A rating or a suspension without a sequence (0: a producer
//! that does not number its events) replaces one without a sequence: such events apply in the
//! order the stream delivers them, which is the order they were published (one event in
//! flight per consumer); otherwise the second of two unnumbered events would be dropped, and
//! a downgrade (R-CR-5) or a resumption (R-RK-9) silently lost. Once a subject has a numbered
//! event, an unnumbered one is older. Subjects (resident IDs, USCCs) are keyed by their blind
//! index ([`super::pii::subject_index`]), never stored in the clear (R-CR-11).

use std::collections::HashSet;

use chrono::NaiveDate;
use fupin_kernel::{AreaCode, CreditGrade, Money};
use rust_decimal::Decimal;
use sqlx::{PgConnection, types::Json};

use crate::domain::admission::{AdmissionFacts, RatingFact, Timeline};

/// How many earlier ratings a household's row keeps, the latest by day. Without a clock the
/// fold cannot tell which of them is in force today, and when a later one is announced ahead
/// of its day every one of them may still be: keeping only three dropped the rating in force
/// once four more were announced ahead (QA). Four years of monthly re-ratings; a rating older
/// than that is long replaced by one of those kept.
pub const EARLIER_KEPT: i64 = 48;

/// Applies a `CreditRatingEffective`: the newest by sequence becomes the row's rating, keeping
/// those in force until its day; an older one delivered late is folded in among those
/// (migration `20261202000003`), so it still decides the days before the newest's.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_rating(
    conn: &mut PgConnection,
    subject_idx: &[u8],
    subject_kind: i32,
    village_code: &str,
    grade: &str,
    veto: bool,
    credit_line: Decimal,
    effective_from: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
    policy_version: &str,
    sequence: i64,
) -> sqlx::Result<()> {
    let written = sqlx::query(
        r#"insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade, veto, credit_line,
             effective_from, expires_on, policy_version, sequence, earlier_as_of)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
           on conflict (subject_idx) do update set subject_kind = excluded.subject_kind,
             village_code = excluded.village_code, grade = excluded.grade, veto = excluded.veto,
             credit_line = excluded.credit_line, effective_from = excluded.effective_from,
             expires_on = excluded.expires_on, policy_version = excluded.policy_version,
             sequence = excluded.sequence,
             -- The ratings in force until the new one's day (migration 20261130000014): the
             -- one replaced and those kept before it, if they start earlier; the latest
             -- EARLIER_KEPT ($11). Those kept before count only if they were folded for the
             -- rating replaced.
             earlier_as_of = excluded.sequence,
             earlier = rm_ratings_kept(
               case when rm_credit_ratings.earlier_as_of = rm_credit_ratings.sequence
                    then rm_credit_ratings.earlier else '[]'::jsonb end
               || jsonb_build_array(rm_rating_json(rm_credit_ratings.grade,
                    rm_credit_ratings.veto, rm_credit_ratings.credit_line,
                    rm_credit_ratings.effective_from, rm_credit_ratings.expires_on,
                    rm_credit_ratings.village_code)),
               excluded.effective_from, $11)
           where rm_credit_ratings.sequence < excluded.sequence
              or (excluded.sequence = 0 and rm_credit_ratings.sequence = 0)"#,
    )
    .bind(subject_idx)
    .bind(subject_kind)
    .bind(village_code)
    .bind(grade)
    .bind(veto)
    .bind(credit_line)
    .bind(effective_from)
    .bind(expires_on)
    .bind(policy_version)
    .bind(sequence)
    .bind(EARLIER_KEPT)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written == 0 && sequence > 0 {
        // Older than the row's newest: kept, and the ratings in force before the newest's
        // day folded again in sequence order (migration 20261202000003).
        sqlx::query(
            "select rm_rating_arrived_late($1, $2, \
               rm_rating_json($3, $4, $5::numeric(18,2), $6, $7, $8), $9)",
        )
        .bind(subject_idx)
        .bind(sequence)
        .bind(grade)
        .bind(veto)
        .bind(credit_line)
        .bind(effective_from)
        .bind(expires_on)
        .bind(village_code)
        .bind(EARLIER_KEPT)
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub async fn upsert_credit_village(
    conn: &mut PgConnection,
    village: &str,
    credit: bool,
    from: Option<NaiveDate>,
    seq: i64,
) -> sqlx::Result<()> {
    let written = sqlx::query(
        r#"insert into rm_credit_villages (village_code, credit_village, effective_from, sequence)
           values ($1, $2, $3, $4)
           on conflict (village_code) do update set credit_village = excluded.credit_village,
             effective_from = excluded.effective_from, sequence = excluded.sequence,
             -- The status in force just before the new one takes effect: the one replaced,
             -- unless that one was itself due to start later still.
             credit_village_before = case
               when rm_credit_villages.effective_from is null
                 or excluded.effective_from is null
                 or rm_credit_villages.effective_from <= excluded.effective_from
               then rm_credit_villages.credit_village
               else rm_credit_villages.credit_village_before end
           where rm_credit_villages.sequence < excluded.sequence"#,
    )
    .bind(village)
    .bind(credit)
    .bind(from)
    .bind(seq)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written == 0 && seq > 0 {
        arrived_late(conn, "credit_village", village, seq, from, credit).await?;
    }
    Ok(())
}

/// An announcement older than its row's latest, which the upsert left alone (the row is
/// locked by it): kept, and the row's timeline folded again in sequence order (migration
/// `20261130000012`). A newer one is kept and announced by the row's triggers. An unnumbered
/// one (sequence 0) is older than any other and changes nothing once its row exists: its
/// callers do not come here with it (a row's first, unnumbered, is folded first, migration
/// `20261130000016`).
async fn arrived_late(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
    seq: i64,
    day: Option<NaiveDate>,
    status: bool,
) -> sqlx::Result<()> {
    sqlx::query("select rm_announced_late($1, $2, $3, $4, $5)")
        .bind(kind)
        .bind(key)
        .bind(seq)
        .bind(day)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a blacklisting (R-CR-10). Returns false, changing nothing, when the entry is known
/// under another subject: an entry names one subject, and the event is the producer's mistake.
pub async fn blacklist_added(
    conn: &mut PgConnection,
    entry: &str,
    subject_idx: &[u8],
    kind: i32,
    reason: &str,
) -> sqlx::Result<bool> {
    // An entry removed before its addition arrived stays removed.
    let written = sqlx::query(
        r#"insert into rm_blacklist (entry_id, subject_idx, subject_kind, reason, active)
           values ($1, $2, $3, $4, true) on conflict (entry_id) do nothing"#,
    )
    .bind(entry)
    .bind(subject_idx)
    .bind(kind)
    .bind(reason)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written == 1 {
        return Ok(true);
    }
    let same: Option<bool> =
        sqlx::query_scalar("select subject_idx = $2 from rm_blacklist where entry_id = $1")
            .bind(entry)
            .bind(subject_idx)
            .fetch_optional(conn)
            .await?;
    Ok(same.unwrap_or(true))
}

/// Records a blacklist entry's removal (R-CR-10), also before its addition arrives. Returns
/// false, changing nothing, when the entry is known under another subject: a removal lifts
/// only the entry of the subject it names.
pub async fn blacklist_removed(
    conn: &mut PgConnection,
    entry: &str,
    subject_idx: &[u8],
    kind: i32,
) -> sqlx::Result<bool> {
    let written = sqlx::query(
        r#"insert into rm_blacklist (entry_id, subject_idx, subject_kind, reason, active)
           values ($1, $2, $3, '', false)
           on conflict (entry_id) do update set active = false
           where rm_blacklist.subject_idx = excluded.subject_idx"#,
    )
    .bind(entry)
    .bind(subject_idx)
    .bind(kind)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written == 1)
}

pub async fn set_suspension(
    conn: &mut PgConnection,
    area: &str,
    suspended: bool,
    ratio: &str,
    seq: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into rm_suspended_areas (area_code, suspended, npl_ratio, sequence)
           values ($1, $2, $3, $4)
           on conflict (area_code) do update set suspended = excluded.suspended,
             npl_ratio = excluded.npl_ratio, sequence = excluded.sequence
           where rm_suspended_areas.sequence < excluded.sequence
              or (excluded.sequence = 0 and rm_suspended_areas.sequence = 0)"#,
    )
    .bind(area)
    .bind(suspended)
    .bind(ratio)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn set_qualification(
    conn: &mut PgConnection,
    uscc: &str,
    qualified: bool,
    reason: &str,
    from: Option<NaiveDate>,
    area: Option<&str>,
    seq: i64,
) -> sqlx::Result<()> {
    let written = sqlx::query(
        r#"insert into rm_qualified_enterprises (uscc, qualified, reason, effective_from, sequence,
             area_code, area_sequence)
           values ($1, $2, $3, $4, $5, $6, case when $6::text is null then 0 else $5 end)
           on conflict (uscc) do update set qualified = excluded.qualified, reason = excluded.reason,
             effective_from = excluded.effective_from, sequence = excluded.sequence,
             -- The registered area (R-ID-1): the newest one announced, and its sequence
             -- (migration 20261202000004).
             area_code = coalesce(excluded.area_code, rm_qualified_enterprises.area_code),
             area_sequence = case when excluded.area_code is null
                                  then rm_qualified_enterprises.area_sequence
                                  else excluded.sequence end,
             -- The qualification in force just before the new one takes effect: the one
             -- replaced, unless that one was itself due to start later still.
             qualified_before = case
               when rm_qualified_enterprises.effective_from is null
                 or excluded.effective_from is null
                 or rm_qualified_enterprises.effective_from <= excluded.effective_from
               then rm_qualified_enterprises.qualified
               else rm_qualified_enterprises.qualified_before end
           where rm_qualified_enterprises.sequence < excluded.sequence"#,
    )
    .bind(uscc)
    .bind(qualified)
    .bind(reason)
    .bind(from)
    .bind(seq)
    .bind(area)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written == 0 && seq > 0 {
        arrived_late(&mut *conn, "qualification", uscc, seq, from, qualified).await?;
        // Its area, if it names one, counts unless a newer event named another.
        if let Some(area) = area {
            sqlx::query(
                "update rm_qualified_enterprises set area_code = $2, area_sequence = $3
                  where uscc = $1 and area_sequence < $3",
            )
            .bind(uscc)
            .bind(area)
            .bind(seq)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct FactsRow {
    earlier: Option<Json<serde_json::Value>>,
    grade: Option<String>,
    veto: Option<bool>,
    credit_line: Option<Decimal>,
    effective_from: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
    rated_in: Option<String>,
    credit_village: Option<bool>,
    credit_village_from: Option<NaiveDate>,
    credit_village_before: Option<bool>,
    credit_village_days: Option<Vec<Option<NaiveDate>>>,
    credit_village_statuses: Option<Vec<Option<bool>>>,
    blacklisted: bool,
    suspended: Vec<String>,
    qualified: Option<bool>,
    qualified_from: Option<NaiveDate>,
    qualified_before: Option<bool>,
    qualified_days: Option<Vec<Option<NaiveDate>>>,
    qualified_statuses: Option<Vec<Option<bool>>>,
    registered_in: Option<String>,
}

/// A stored timeline of announced statuses (credit village, qualification; intake migration
/// `20261130000005`, kept by a trigger). A row the trigger did not write (its triggers disabled)
/// is read from its older columns: the latest announcement and the status before it. No row
/// (`status` None) is no status on any day.
pub(crate) struct StoredTimeline {
    pub days: Option<Vec<Option<NaiveDate>>>,
    pub statuses: Option<Vec<Option<bool>>>,
    pub status: Option<bool>,
    pub from: Option<NaiveDate>,
    pub before: Option<bool>,
}

impl StoredTimeline {
    pub(crate) fn read(self, what: &str, key: &str) -> Timeline<bool> {
        let Some(status) = self.status else {
            return Timeline::default();
        };
        if let (Some(days), Some(statuses)) = (self.days, self.statuses) {
            let statuses: Option<Vec<bool>> = statuses.into_iter().collect();
            if let Some(statuses) = statuses.filter(|s| s.len() == days.len())
                && let Some(t) = Timeline::from_entries(days.into_iter().zip(statuses).collect())
            {
                return t;
            }
            tracing::warn!(
                what,
                key,
                "unreadable timeline in the read model; read from its latest change"
            );
        }
        let mut t = self.before.map(Timeline::always).unwrap_or_default();
        t.announce(self.from, status);
        t
    }
}

/// A rating kept in force until the newest one's day (`rm_credit_ratings.earlier`, migration
/// `20261130000014`), as the upsert writes it.
#[derive(Clone, Debug, serde::Deserialize)]
struct EarlierRating {
    grade: String,
    veto: bool,
    credit_line: String,
    effective_from: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
    village_code: String,
}

/// The earlier ratings as admission reads them. If any cannot be read (only a hand edit
/// writes one) none is used, logged: the household then has only its newest rating, which is
/// not in force before its day, so admission errs towards refusing, never towards a rating the
/// unreadable one replaced.
pub(crate) fn earlier_ratings(stored: Option<serde_json::Value>) -> Vec<RatingFact> {
    let Some(stored) = stored else {
        return Vec::new();
    };
    let read = serde_json::from_value::<Vec<EarlierRating>>(stored)
        .ok()
        .and_then(|entries| {
            entries
                .into_iter()
                .map(|r| {
                    rating_fact(
                        Some(&r.grade),
                        r.veto,
                        r.credit_line.parse::<Decimal>().ok()?,
                        r.effective_from,
                        r.expires_on,
                        &r.village_code,
                    )
                })
                .collect::<Option<Vec<_>>>()
        });
    read.unwrap_or_else(|| {
        tracing::warn!("unreadable earlier ratings in the read model; the newest alone counts");
        Vec::new()
    })
}

/// A stored rating as admission reads it. The consumer refuses ratings it cannot read, so an
/// unreadable one predates that check: it counts as no rating (R-CR-3 refuses the applicant)
/// and is logged, rather than failing every submission read in the same batch.
pub(crate) fn rating_fact(
    grade: Option<&str>,
    veto: bool,
    line: Decimal,
    effective_from: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
    village_code: &str,
) -> Option<RatingFact> {
    let grade = match grade.filter(|g| !g.is_empty()).map(CreditGrade::parse) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "unreadable grade in the read model; taken as no rating");
            return None;
        }
    };
    match Money::from_decimal(line) {
        Ok(credit_line) => Some(RatingFact {
            grade,
            veto,
            credit_line,
            effective_from,
            expires_on,
            // Rows stored before the consumer normalised villages may carry spaces.
            village_code: village_code.trim().to_owned(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable credit line in the read model; taken as no rating");
            None
        }
    }
}

/// The facts of one subject (the re-checks of a stored application at recommendation,
/// resubmission and the bank's approval, R-IN-3; submissions use the
/// dispatcher's [`super::readmodel_copy::ReadModelCopy`]). Plain parameters: PostgreSQL settles
/// on one generic plan for it after a few runs.
pub const FACTS_SQL: &str = r#"select case when r.earlier_as_of = r.sequence then r.earlier end as earlier,
     r.grade, r.veto, r.credit_line, r.effective_from, r.expires_on,
     r.village_code as rated_in,
     v.credit_village, v.effective_from as credit_village_from, v.credit_village_before,
     v.timeline_from as credit_village_days, v.timeline_status as credit_village_statuses,
     exists (select 1 from rm_blacklist b where b.subject_idx = $1 and b.active) as blacklisted,
     array(select s.area_code from rm_suspended_areas s where s.suspended) as suspended,
     q.qualified, q.effective_from as qualified_from, q.qualified_before,
     q.timeline_from as qualified_days, q.timeline_status as qualified_statuses,
     q.area_code as registered_in
   from (select $1::bytea as subject_idx) t
   left join rm_credit_ratings r on r.subject_idx = t.subject_idx
   left join rm_credit_villages v on v.village_code = $3
   left join rm_qualified_enterprises q on q.uscc = $2"#;

/// R-RK-9: the areas whose suspension admission may count, for the domain to choose from: the
/// village and town filed in and, for a household (no USCC), the village and town of every
/// rating held, the newest and those in force before its day.
pub(crate) fn suspension_candidates<'a>(
    village: Option<&'a str>,
    town: Option<&'a str>,
    uscc: Option<&str>,
    rating: Option<&'a RatingFact>,
    earlier: &'a [RatingFact],
) -> impl Iterator<Item = &'a str> {
    let rated = rating
        .into_iter()
        .chain(earlier)
        .filter(move |_| uscc.is_none())
        .map(|r| r.village_code.as_str())
        .filter(|v| !v.is_empty())
        .flat_map(|v| [Some(v), v.get(..9)]);
    [village, town].into_iter().chain(rated).flatten()
}

/// The `candidates` that `suspended` says are, in order, each once.
pub(crate) fn suspended_among<'a>(
    candidates: impl Iterator<Item = &'a str>,
    suspended: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<AreaCode>> {
    let mut areas: Vec<&str> = candidates.filter(|a| suspended(a)).collect();
    areas.sort_unstable();
    areas.dedup();
    Ok(areas
        .into_iter()
        .map(AreaCode::parse)
        .collect::<Result<_, _>>()?)
}

/// Whom admission asks about: the applicant's blind index (ratings, blacklist) and, for an
/// organisation, its USCC (industry's qualification; USCCs are public).
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub index: &'a [u8],
    pub uscc: Option<&'a str>,
}

/// Who admission is asked about: the applicant, their village and town.
pub struct FactsQuery<'a> {
    pub subject: Subject<'a>,
    pub village: Option<&'a str>,
    pub town: Option<&'a str>,
}

/// Everything admission needs about one applicant, in one round trip.
pub async fn admission_facts<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    subject: Subject<'_>,
    village: Option<&str>,
    town: Option<&str>,
) -> anyhow::Result<AdmissionFacts> {
    let row: FactsRow = sqlx::query_as(FACTS_SQL)
        .bind(subject.index)
        .bind(subject.uscc)
        .bind(village)
        .fetch_one(conn)
        .await?;
    facts(row, village, town, subject.uscc)
}

fn facts(
    row: FactsRow,
    village: Option<&str>,
    town: Option<&str>,
    uscc: Option<&str>,
) -> anyhow::Result<AdmissionFacts> {
    let rating = match (row.veto, row.credit_line) {
        (Some(veto), Some(line)) => rating_fact(
            row.grade.as_deref(),
            veto,
            line,
            row.effective_from,
            row.expires_on,
            row.rated_in.as_deref().unwrap_or_default(),
        ),
        _ => None,
    };
    let earlier_ratings = earlier_ratings(row.earlier.map(|Json(e)| e));
    let suspended: HashSet<&str> = row.suspended.iter().map(String::as_str).collect();
    let suspended_areas = suspended_among(
        suspension_candidates(village, town, uscc, rating.as_ref(), &earlier_ratings),
        |area| suspended.contains(area),
    )?;
    Ok(AdmissionFacts {
        rating,
        earlier_ratings,
        credit_village: StoredTimeline {
            days: row.credit_village_days,
            statuses: row.credit_village_statuses,
            status: row.credit_village,
            from: row.credit_village_from,
            before: row.credit_village_before,
        }
        .read("credit village", village.unwrap_or_default()),
        blacklisted: row.blacklisted,
        suspended_areas,
        enterprise_qualified: StoredTimeline {
            days: row.qualified_days,
            statuses: row.qualified_statuses,
            status: row.qualified,
            from: row.qualified_from,
            before: row.qualified_before,
        }
        .read("qualification", uscc.unwrap_or_default()),
        enterprise_area: row
            .registered_in
            .as_deref()
            .map(AreaCode::parse)
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a day")
    }

    fn stored(
        days: Option<Vec<Option<NaiveDate>>>,
        statuses: Option<Vec<Option<bool>>>,
    ) -> StoredTimeline {
        StoredTimeline {
            days,
            statuses,
            status: Some(false),
            from: Some(day("2026-03-06")),
            before: Some(true),
        }
    }

    // R-CR-3: earlier ratings are read as the upsert writes them; if any cannot be read none
    // is used, so a hand-edited row errs towards the newest rating alone, never fails a batch.
    #[test]
    fn earlier_ratings_are_read_whole_or_not_at_all() {
        let entry = |grade: &str, line: &str| {
            serde_json::json!({"grade": grade, "veto": false, "credit_line": line,
                "effective_from": "2026-01-01", "expires_on": null, "village_code": "410311100201"})
        };
        let read = earlier_ratings(Some(serde_json::json!([
            entry("A", "20000.00"),
            entry("", "0")
        ])));
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].grade, Some(CreditGrade::A));
        assert_eq!(read[0].effective_from, Some(day("2026-01-01")));
        assert_eq!(read[1].grade, None, "a revocation with a day");
        for unreadable in [
            serde_json::json!([entry("A", "20000.00"), entry("A+", "1")]),
            serde_json::json!([entry("A", "lots")]),
            serde_json::json!([{"grade": "A"}]),
            serde_json::json!({"grade": "A"}),
            serde_json::json!("[]"),
        ] {
            assert!(
                earlier_ratings(Some(unreadable.clone())).is_empty(),
                "{unreadable}"
            );
        }
        assert!(earlier_ratings(None).is_empty());
    }

    // R-CR-8, R-ID-4: the stored timeline is read as it is; one the trigger did not write, or
    // that cannot be read, falls back to the latest change and the status before it.
    #[test]
    fn a_stored_timeline_is_read_or_falls_back_to_the_latest_change() {
        let t = stored(
            Some(vec![None, Some(day("2026-03-04")), Some(day("2026-03-06"))]),
            Some(vec![Some(false), Some(true), Some(false)]),
        )
        .read("credit village", "v");
        assert_eq!(t.on(day("2026-03-03")), Some(false));
        assert_eq!(t.on(day("2026-03-04")), Some(true));
        assert_eq!(t.on(day("2026-03-06")), Some(false));
        let legacy = |t: Timeline<bool>| {
            assert_eq!(t.on(day("2026-03-05")), Some(true));
            assert_eq!(t.on(day("2026-03-06")), Some(false));
        };
        legacy(stored(None, None).read("credit village", "v"));
        // no row: no status
        let absent = StoredTimeline {
            status: None,
            ..stored(Some(vec![None]), Some(vec![Some(true)]))
        };
        assert_eq!(absent.read("credit village", "v"), Timeline::default());
        // lengths differ
        legacy(
            stored(Some(vec![None]), Some(vec![Some(true), Some(false)]))
                .read("credit village", "v"),
        );
        // a status that is not there
        legacy(stored(Some(vec![None]), Some(vec![None])).read("credit village", "v"));
        // out of order
        legacy(
            stored(
                Some(vec![Some(day("2026-03-06")), Some(day("2026-03-04"))]),
                Some(vec![Some(true), Some(false)]),
            )
            .read("credit village", "v"),
        );
    }
}
