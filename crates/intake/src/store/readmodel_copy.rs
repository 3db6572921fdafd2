//! The submission dispatcher's in-memory copy of the read model (R-IN-3).
//!
//! Reading admission facts from PostgreSQL cost every batch a round trip and a query (at 16
//! bench clients, 40% of a batch's time). The read model changes rarely (ratings yearly,
//! blacklist entries and suspensions occasionally) and is read on every submission, so the
//! dispatcher keeps a copy and decides admission against it. The copy is not trusted blindly:
//! it knows the read-model version it holds (`rm_version`, migration `20261130000001`), and a
//! batch's write goes ahead only if the read model is still at that version, or nothing its
//! applicants were decided on changed since ([`super::applications::insert_submissions`]).
//! Otherwise the copy catches up (only the rows changed since) and the batch is decided again.
//! A copy is also loaded whole again after the database server restarted (a restore, a
//! failover): the version it holds may then name another history.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, Utc};
use fupin_kernel::AreaCode;
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection, types::Json};

use super::readmodel::{
    FactsQuery, StoredTimeline, earlier_ratings, rating_fact, suspended_among,
    suspension_candidates,
};
use crate::domain::admission::{AdmissionFacts, RatingFact, Timeline};

/// Which read model a copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReadModelAt {
    pub version: i64,
    pub epoch: i64,
    /// When the database server started: a restart may have restored another history.
    pub server_started: DateTime<Utc>,
}

/// The read model as of one version.
#[derive(Default)]
pub struct ReadModelCopy {
    /// None before the first load.
    at: Option<ReadModelAt>,
    /// When the copy last caught up.
    checked: Option<Instant>,
    /// By subject index: the newest rating, None for one that cannot be read (taken as no
    /// rating, like the query does), and the earlier ones in force until its day.
    ratings: HashMap<Vec<u8>, (Option<RatingFact>, Vec<RatingFact>)>,
    /// Credit-village status by village.
    villages: HashMap<String, Timeline<bool>>,
    /// Blacklist entries by id, and how many active entries each subject has.
    entries: HashMap<String, Entry>,
    blacklisted: HashMap<Vec<u8>, usize>,
    /// Areas with lending suspended.
    suspended: HashSet<String>,
    /// Enterprises' qualification by USCC.
    qualified: HashMap<String, Timeline<bool>>,
    /// Enterprises' registered areas by USCC, where announced.
    registered: HashMap<String, String>,
}

struct Entry {
    subject: Vec<u8>,
    active: bool,
}

/// Rows changed since a version, read in one snapshot.
struct Changes {
    at: ReadModelAt,
    ratings: Vec<RatingRow>,
    villages: Vec<TimelineRow>,
    entries: Vec<(String, Vec<u8>, bool)>,
    areas: Vec<(String, bool)>,
    enterprises: Vec<TimelineRow>,
}

/// A village's credit-village status or an enterprise's qualification, by its key.
#[derive(sqlx::FromRow)]
struct TimelineRow {
    key: String,
    status: bool,
    effective_from: Option<NaiveDate>,
    before: Option<bool>,
    timeline_from: Option<Vec<Option<NaiveDate>>>,
    timeline_status: Option<Vec<Option<bool>>>,
    /// An enterprise's registered area (R-ID-1); always None for a village.
    area_code: Option<String>,
}

impl TimelineRow {
    fn read(self, what: &str) -> (String, Timeline<bool>) {
        let timeline = StoredTimeline {
            days: self.timeline_from,
            statuses: self.timeline_status,
            status: Some(self.status),
            from: self.effective_from,
            before: self.before,
        }
        .read(what, &self.key);
        (self.key, timeline)
    }
}

#[derive(sqlx::FromRow)]
struct RatingRow {
    subject_idx: Vec<u8>,
    grade: String,
    veto: bool,
    credit_line: Decimal,
    effective_from: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
    village_code: String,
    earlier: Json<serde_json::Value>,
}

impl ReadModelCopy {
    /// The read model the copy holds; None before the first load.
    pub fn at(&self) -> Option<ReadModelAt> {
        self.at
    }

    /// Whether the copy last caught up at least `d` ago (or never).
    pub fn checked_before(&self, d: Duration) -> bool {
        self.checked.is_none_or(|t| t.elapsed() >= d)
    }

    /// The read-model version the copy holds; None before the first load.
    pub fn version(&self) -> Option<i64> {
        self.at.map(|at| at.version)
    }

    /// Brings the copy up to the current version: everything on the first call, after a
    /// delete (a new epoch) or a server restart, otherwise only the rows changed since the
    /// version held. Returns whether the version moved.
    pub async fn catch_up(&mut self, conn: &mut PgConnection) -> sqlx::Result<bool> {
        self.catch_up_within(conn, None).await
    }

    /// [`ReadModelCopy::catch_up`], each statement cancelled by the server past `deadline`, and
    /// the session ended if it sits that long idle in the transaction (cut off mid-way).
    pub async fn catch_up_within(
        &mut self,
        conn: &mut PgConnection,
        deadline: Option<std::time::Duration>,
    ) -> sqlx::Result<bool> {
        let mut tx = conn
            .begin_with("begin isolation level repeatable read, read only")
            .await?;
        if let Some(deadline) = deadline {
            sqlx::query(
                "select set_config('statement_timeout', $1, true),
                        set_config('idle_in_transaction_session_timeout', $1, true)",
            )
            .bind(deadline.as_millis().to_string())
            .execute(&mut *tx)
            .await?;
        }
        let at: ReadModelAt = sqlx::query_as(
            r#"select version, epoch, pg_postmaster_start_time() as server_started
               from rm_version"#,
        )
        .fetch_one(&mut *tx)
        .await?;
        if self.at == Some(at) {
            tx.commit().await?;
            self.checked = Some(Instant::now());
            return Ok(false);
        }
        // Only changed rows, unless the epoch or the server moved on (or the version went
        // back, which only a hand edit or a restore of `rm_version` does).
        let since = match self.at {
            Some(held)
                if held.epoch == at.epoch
                    && held.server_started == at.server_started
                    && held.version <= at.version =>
            {
                held.version
            }
            _ => -1,
        };
        let changes = Changes {
            at,
            ratings: changed_since(
                &mut tx,
                r#"select subject_idx, grade, veto, credit_line, effective_from, expires_on,
                     village_code,
                     case when earlier_as_of = sequence then earlier else '[]' end as earlier
                   from rm_credit_ratings where changed > $1"#,
                since,
            )
            .await?,
            villages: changed_since(
                &mut tx,
                r#"select village_code as key, credit_village as status, effective_from,
                     credit_village_before as before, timeline_from, timeline_status,
                     null::text as area_code
                   from rm_credit_villages where changed > $1"#,
                since,
            )
            .await?,
            entries: changed_since(
                &mut tx,
                "select entry_id, subject_idx, active from rm_blacklist where changed > $1",
                since,
            )
            .await?,
            areas: changed_since(
                &mut tx,
                "select area_code, suspended from rm_suspended_areas where changed > $1",
                since,
            )
            .await?,
            enterprises: changed_since(
                &mut tx,
                r#"select uscc as key, qualified as status, effective_from,
                     qualified_before as before, timeline_from, timeline_status, area_code
                   from rm_qualified_enterprises where changed > $1"#,
                since,
            )
            .await?,
        };
        tx.commit().await?;
        if since < 0 {
            *self = Self::default();
        }
        self.apply(changes);
        self.checked = Some(Instant::now());
        Ok(true)
    }

    fn apply(&mut self, c: Changes) {
        for r in c.ratings {
            let fact = rating_fact(
                Some(&r.grade),
                r.veto,
                r.credit_line,
                r.effective_from,
                r.expires_on,
                &r.village_code,
            );
            let earlier = earlier_ratings(Some(r.earlier.0));
            self.ratings.insert(r.subject_idx, (fact, earlier));
        }
        self.villages
            .extend(c.villages.into_iter().map(|v| v.read("credit village")));
        for (id, subject, active) in c.entries {
            let entry = Entry { subject, active };
            if entry.active {
                *self.blacklisted.entry(entry.subject.clone()).or_default() += 1;
            }
            if let Some(old) = self.entries.insert(id, entry)
                && old.active
            {
                self.unlist(&old.subject);
            }
        }
        for (area, suspended) in c.areas {
            if suspended {
                self.suspended.insert(area);
            } else {
                self.suspended.remove(&area);
            }
        }
        for e in c.enterprises {
            match &e.area_code {
                Some(area) => self.registered.insert(e.key.clone(), area.clone()),
                None => self.registered.remove(&e.key),
            };
            let (uscc, timeline) = e.read("qualification");
            self.qualified.insert(uscc, timeline);
        }
        self.at = Some(c.at);
    }

    fn unlist(&mut self, subject: &[u8]) {
        if let Some(n) = self.blacklisted.get_mut(subject) {
            *n -= 1;
            if *n == 0 {
                self.blacklisted.remove(subject);
            }
        }
    }

    /// What admission needs about one applicant, as the read model says at the version held:
    /// the same as [`super::readmodel::admission_facts`] reads from the tables.
    pub fn facts(&self, q: &FactsQuery<'_>) -> anyhow::Result<AdmissionFacts> {
        let village = q.village.and_then(|v| self.villages.get(v));
        let qualification = q.subject.uscc.and_then(|u| self.qualified.get(u));
        let rating = self.ratings.get(q.subject.index);
        let (newest, earlier) = match rating {
            Some((newest, earlier)) => (newest.as_ref(), earlier.as_slice()),
            None => (None, &[][..]),
        };
        let suspended_areas = suspended_among(
            suspension_candidates(q.village, q.town, q.subject.uscc, newest, earlier),
            |area| self.suspended.contains(area),
        )?;
        Ok(AdmissionFacts {
            rating: rating.and_then(|(newest, _)| newest.clone()),
            earlier_ratings: rating.map(|(_, e)| e.clone()).unwrap_or_default(),
            credit_village: village.cloned().unwrap_or_default(),
            blacklisted: self.blacklisted.contains_key(q.subject.index),
            suspended_areas,
            enterprise_qualified: qualification.cloned().unwrap_or_default(),
            enterprise_area: q
                .subject
                .uscc
                .and_then(|u| self.registered.get(u))
                .map(|a| AreaCode::parse(a))
                .transpose()?,
        })
    }
}

/// The rows `select` finds changed since version `since` (its `$1`).
async fn changed_since<T>(
    conn: &mut PgConnection,
    select: &'static str,
    since: i64,
) -> sqlx::Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(select).bind(since).fetch_all(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(version: i64, entries: &[(&str, &[u8], bool)]) -> Changes {
        Changes {
            at: ReadModelAt {
                version,
                epoch: 0,
                server_started: DateTime::UNIX_EPOCH,
            },
            ratings: vec![],
            villages: vec![],
            entries: entries
                .iter()
                .map(|(id, s, a)| ((*id).to_owned(), s.to_vec(), *a))
                .collect(),
            areas: vec![],
            enterprises: vec![],
        }
    }

    fn listed(copy: &ReadModelCopy, subject: &[u8]) -> bool {
        let q = FactsQuery {
            subject: super::super::readmodel::Subject {
                index: subject,
                uscc: None,
            },
            village: None,
            town: None,
        };
        copy.facts(&q).expect("facts").blacklisted
    }

    /// R-CR-10 in the copy: a subject stays blacklisted while any of its entries is active,
    /// and an entry that changes subject moves with it.
    #[test]
    fn blacklist_follows_each_entry() {
        let mut copy = ReadModelCopy::default();
        copy.apply(changes(1, &[("e1", b"a", true), ("e2", b"a", true)]));
        assert!(listed(&copy, b"a"));
        copy.apply(changes(2, &[("e1", b"a", false)]));
        assert!(listed(&copy, b"a"), "e2 is still active");
        copy.apply(changes(3, &[("e2", b"b", true)]));
        assert!(!listed(&copy, b"a"));
        assert!(listed(&copy, b"b"));
        // A redelivered row changes nothing.
        copy.apply(changes(4, &[("e2", b"b", true)]));
        copy.apply(changes(5, &[("e2", b"b", false)]));
        assert!(!listed(&copy, b"b"));
        assert!(copy.blacklisted.is_empty());
        assert_eq!(copy.version(), Some(5));
    }
}
