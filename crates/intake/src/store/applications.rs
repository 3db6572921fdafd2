//! Applications, their transitions and objections.

use chrono::{DateTime, NaiveDate, Utc};
use fupin_kernel::{AreaCode, Money};
use fupin_platform::{PiiCipher, events::outbox::OutboxRow, idempotency::RequestKey};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{pii, readmodel_copy::ReadModelAt};
pub use crate::domain::bank::{Approval, DisbursementRecord, InstalmentRecord};
use crate::domain::{
    ApplicantKind, Status, Step,
    application::{Application, Correction, Moved},
};

/// The bank's decision as stored (jsonb).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDecision {
    pub approved: bool,
    pub approved_amount: Option<Money>,
    pub annual_rate: Option<Decimal>,
    pub term_months: Option<u32>,
    pub rejection_reason: String,
    pub decided_at: DateTime<Utc>,
    /// R-CR-3, R-CR-8, R-RK-10: a household's credit as admission judged it on the approval
    /// day; none for a rejection, an enterprise, and approvals recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<crate::domain::admission::CreditStanding>,
}

impl BankDecision {
    /// The stored decision of an approval.
    pub fn approved(approval: Approval, decided_at: DateTime<Utc>) -> Self {
        Self {
            approved: true,
            approved_amount: Some(approval.amount()),
            annual_rate: Some(approval.annual_rate()),
            term_months: Some(approval.term_months()),
            rejection_reason: String::new(),
            decided_at,
            credit: None,
        }
    }

    /// What the bank approved; `None` for a rejection.
    pub fn approval(&self) -> Option<Approval> {
        match (
            self.approved,
            self.approved_amount,
            self.annual_rate,
            self.term_months,
        ) {
            (true, Some(amount), Some(annual_rate), Some(term_months)) => {
                Some(Approval::recorded(amount, annual_rate, term_months))
            }
            _ => None,
        }
    }
}

/// The applicant's personal data in the clear (R-CR-11): only in memory, while a request needs
/// it. Rows hold it sealed ([`ApplicantPii::seal`], [`ApplicationRow::applicant`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ApplicantPii {
    /// Resident ID or USCC.
    pub id: String,
    pub name: String,
    /// Empty for organisations.
    pub phone: String,
    /// An organisation's legal representative (a person); empty for households, and for
    /// applications stored before it was kept.
    pub legal_representative: String,
}

impl std::fmt::Debug for ApplicantPii {
    /// Never the values: a stray `{:?}` in a log line must not leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplicantPii(<redacted>)")
    }
}

/// The sealed columns of one application's applicant.
pub struct SealedApplicant {
    pub id_enc: Vec<u8>,
    pub id_idx: Vec<u8>,
    pub name_enc: Vec<u8>,
    pub phone_enc: Vec<u8>,
    pub legal_rep_enc: Vec<u8>,
}

impl ApplicantPii {
    /// Seals for the application `row` (values are bound to their column and row).
    pub fn seal(&self, cipher: &PiiCipher, row: Uuid) -> SealedApplicant {
        SealedApplicant {
            id_enc: pii::seal(cipher, APPLICANT_ID, row, &self.id),
            id_idx: pii::subject_index(cipher, &self.id),
            name_enc: pii::seal(cipher, APPLICANT_NAME, row, &self.name),
            phone_enc: pii::seal(cipher, PHONE, row, &self.phone),
            legal_rep_enc: pii::seal(cipher, LEGAL_REP, row, &self.legal_representative),
        }
    }
}

pub(crate) const APPLICANT_ID: &str = "applications.applicant_id";
pub(crate) const APPLICANT_NAME: &str = "applications.applicant_name";
pub(crate) const PHONE: &str = "applications.phone";
pub(crate) const LEGAL_REP: &str = "applications.legal_representative";

/// One row of `applications`. Personal data is sealed (R-CR-11): read it with
/// [`ApplicationRow::applicant`].
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: Uuid,
    pub kind: String,
    /// Resident ID or USCC, sealed.
    pub applicant_id_enc: Vec<u8>,
    /// Blind index of the resident ID or USCC: the applicant's key in the read model.
    pub applicant_id_idx: Vec<u8>,
    pub applicant_name_enc: Vec<u8>,
    pub phone_enc: Vec<u8>,
    /// An organisation's legal representative, sealed; null for rows written before it was
    /// kept (migration 13).
    pub legal_rep_enc: Option<Vec<u8>>,
    pub poor_household_number: String,
    pub self_use: bool,
    pub village_code: Option<String>,
    pub town_code: Option<String>,
    pub area_code: String,
    pub amount: Decimal,
    pub term_months: i32,
    pub purpose: i32,
    pub project_description: String,
    pub status: String,
    pub returned_from: Option<String>,
    pub step_seq: i32,
    pub step_started_on: Option<NaiveDate>,
    pub step_due_on: Option<NaiveDate>,
    /// The version of the calendar data that counted `step_due_on` (R-X-4).
    pub step_calendar: Option<String>,
    pub overdue_alerted_seq: Option<i32>,
    pub notice_ends_on: Option<NaiveDate>,
    pub bank_id: Option<String>,
    pub recommended_on: Option<NaiveDate>,
    pub decision: Option<sqlx::types::Json<BankDecision>>,
    pub disbursement: Option<sqlx::types::Json<DisbursementRecord>>,
    pub submitted_by: String,
    pub policy_version: String,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The policy version the row carried before this request's move recorded its own
    /// ([`ApplicationRow::decided_under`]): the version the pending step was entered under.
    #[sqlx(skip)]
    pub policy_before: Option<String>,
}

impl ApplicationRow {
    /// Records that this request's move is decided under `version` (R-X-4), keeping the
    /// version the row carried before (the pending step's) in `policy_before`.
    pub fn decided_under(&mut self, version: &str) {
        let before = std::mem::replace(&mut self.policy_version, version.to_owned());
        self.policy_before.get_or_insert(before);
    }

    /// The policy version the pending step was entered under (R-X-4).
    pub fn step_policy_version(&self) -> &str {
        self.policy_before
            .as_deref()
            .unwrap_or(&self.policy_version)
    }

    /// The applicant's personal data, opened. A value that does not open (wrong key, moved or
    /// tampered with) is an internal error, never an empty value.
    pub fn applicant(&self, cipher: &PiiCipher) -> anyhow::Result<ApplicantPii> {
        Ok(ApplicantPii {
            id: pii::open(cipher, APPLICANT_ID, self.id, &self.applicant_id_enc)?,
            name: pii::open(cipher, APPLICANT_NAME, self.id, &self.applicant_name_enc)?,
            phone: pii::open(cipher, PHONE, self.id, &self.phone_enc)?,
            legal_representative: match &self.legal_rep_enc {
                Some(sealed) => pii::open(cipher, LEGAL_REP, self.id, sealed)?,
                None => String::new(),
            },
        })
    }

    /// Replaces the applicant's name, phone and legal representative with corrected values,
    /// sealed for this row.
    pub fn correct_applicant(&mut self, cipher: &PiiCipher, who: &ApplicantPii) {
        self.applicant_name_enc = pii::seal(cipher, APPLICANT_NAME, self.id, &who.name);
        self.phone_enc = pii::seal(cipher, PHONE, self.id, &who.phone);
        self.legal_rep_enc = Some(pii::seal(
            cipher,
            LEGAL_REP,
            self.id,
            &who.legal_representative,
        ));
    }

    /// The aggregate the domain decides on. The database only holds what the domain wrote, so
    /// a value that fails to parse is corruption, reported as an internal error.
    pub fn aggregate(&self) -> anyhow::Result<Application> {
        Ok(Application {
            kind: ApplicantKind::parse(&self.kind)
                .ok_or_else(|| anyhow::anyhow!("bad kind {}", self.kind))?,
            area: AreaCode::parse(&self.area_code)?,
            amount: Money::from_decimal(self.amount)?,
            term_months: u32::try_from(self.term_months)?,
            status: self.status(),
            returned_from: self.returned_from.as_deref().and_then(Step::parse),
            step_seq: self.step_seq,
            step_started_on: self.step_started_on,
            step_due_on: self.step_due_on,
            step_calendar: self.step_calendar.clone(),
            overdue_alerted_seq: self.overdue_alerted_seq,
            notice_ends_on: self.notice_ends_on,
            bank_id: self.bank_id.clone(),
            recommended_on: self.recommended_on,
        })
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Rejected)
    }

    /// Copies the aggregate's state back into the row.
    pub fn absorb(&mut self, app: &Application, now: DateTime<Utc>) {
        self.amount = app.amount.amount();
        self.term_months = app.term_months as i32;
        self.status = app.status.as_str().to_owned();
        self.returned_from = app.returned_from.map(|s| s.as_str().to_owned());
        self.step_seq = app.step_seq;
        self.step_started_on = app.step_started_on;
        self.step_due_on = app.step_due_on;
        self.step_calendar = app.step_calendar.clone();
        self.overdue_alerted_seq = app.overdue_alerted_seq;
        self.notice_ends_on = app.notice_ends_on;
        self.bank_id = app.bank_id.clone();
        self.recommended_on = app.recommended_on;
        self.updated_at = now;
    }
}

macro_rules! app_columns {
    () => {
        "id, kind, applicant_id_enc, applicant_id_idx, applicant_name_enc, phone_enc, legal_rep_enc, \
    poor_household_number, self_use, \
    village_code, town_code, area_code, amount, term_months, purpose, project_description, status, \
    returned_from, step_seq, step_started_on, step_due_on, step_calendar, overdue_alerted_seq, notice_ends_on, bank_id, \
    recommended_on, decision, disbursement, submitted_by, policy_version, submitted_at, updated_at, version"
    };
}

/// The statuses in which a step with a deadline is pending (R-IN-4), as SQL.
macro_rules! in_a_step {
    () => {
        "status in ('village_review','town_review','district_review','recommended')"
    };
}

/// A submission ready to be written: its idempotency key with the response, the new
/// application, its first transition and its outbox event.
pub struct NewSubmission<'a> {
    pub key: &'a RequestKey,
    pub response: &'a [u8],
    pub row: &'a ApplicationRow,
    pub moved: &'a Moved,
    pub actor_role: &'a str,
    pub event: &'a OutboxRow,
    /// The organisation's USCC, whose qualification admission read (R-ID-4).
    pub uscc: Option<&'a str>,
}

/// What a batch write did.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchWritten {
    /// Written: the ids of the applications written (a submission whose request id was taken
    /// wrote nothing). `behind`: the read model has moved on from the version admission was
    /// decided against, in ways that did not concern these applicants.
    Written { ids: Vec<Uuid>, behind: bool },
    /// Nothing written: what admission read about these applicants has changed since.
    Stale,
}

/// New applications in one statement (one round trip, one transaction, however many): for
/// each, the idempotency key with its response, the application, its first transition and its
/// outbox event (R-IN-8, R-IN-2, R-X-2). A submission whose request id is already taken
/// writes nothing; a concurrent first attempt is waited for by the key's primary key. Returns
/// the ids of the applications written.
///
/// Admission was decided against the read model `read_model` (R-IN-3, see
/// [`super::readmodel_copy`]). The batch is written if the read model is still there, or if
/// it has moved on (same epoch and server, a later version) without a newer row for any of
/// these applicants: their rating, blacklist entries, village, suspensions of the village and
/// town filed in and of those their ratings name, or enterprise qualification. Otherwise nothing is written ([`BatchWritten::Stale`]). The check runs in
/// the write's own statement, before its first row.
///
/// Keys are inserted in (caller, request id) order, so two batches that share keys take their
/// locks in the same order and cannot deadlock; callers pass distinct keys.
pub async fn insert_submissions(
    conn: &mut PgConnection,
    method: &str,
    subs: &[NewSubmission<'_>],
    read_model: &ReadModelAt,
) -> sqlx::Result<BatchWritten> {
    // The key rows are written with `method`; replay, `taken` and the sealing context use the
    // key's own method, so they must be the same.
    if let Some(other) = subs.iter().find(|s| s.key.method != method) {
        return Err(sqlx::Error::Protocol(format!(
            "submission key of method {} written as {method}",
            other.key.method
        )));
    }
    let mut order: Vec<&NewSubmission<'_>> = subs.iter().collect();
    order.sort_by(|a, b| {
        (&a.key.caller, &a.key.request_id).cmp(&(&b.key.caller, &b.key.request_id))
    });
    // Columns borrow from the submissions: nothing is copied to bind them.
    fn col<'a, T>(subs: &[&NewSubmission<'a>], f: impl Fn(&NewSubmission<'a>) -> T) -> Vec<T> {
        subs.iter().map(|s| f(s)).collect()
    }
    let o = order.as_slice();
    let rows: Vec<(Option<Uuid>, Option<bool>, Option<bool>)> = sqlx::query_as(
        r#"with input as (
             select * from unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::uuid[],
               $6::text[], $7::bytea[], $8::bytea[], $9::bytea[], $10::bytea[], $11::text[], $12::bool[],
               $13::text[], $14::text[], $15::text[], $16::numeric[], $17::int4[], $18::int4[],
               $19::text[], $20::text[], $21::text[], $22::int4[], $23::date[], $24::date[],
               $25::text[], $26::text[], $27::timestamptz[], $28::uuid[], $29::text[], $30::text[],
               $31::text[], $32::uuid[], $33::text[], $34::text[], $35::text[], $36::bytea[],
               $37::text[], $42::text[], $43::text[], $44::bytea[])
               with ordinality as t(caller, request_id, request_hash, response, id,
               kind, applicant_id_enc, applicant_id_idx, applicant_name_enc, phone_enc,
               poor_household_number, self_use, village_code, town_code, area_code, amount,
               term_months, purpose, project_description, status, returned_from, step_seq,
               step_started_on, step_due_on, submitted_by, policy_version, submitted_at,
               transition_id, to_status, action, actor_role, event_id, subject, ce_type, ce_subject,
               payload, traceparent, uscc, step_calendar, legal_rep_enc, ord)
           ), current as (
             -- The uncorrelated subqueries are init plans, run only when the version moved.
             select coalesce(r.version = $39 and r.server_started, false) as same,
               coalesce(r.epoch = $40 and r.server_started and (r.version = $39 or (
                 r.version > $39
                 and not exists (select 1 from input i join rm_credit_ratings x
                             on x.subject_idx = i.applicant_id_idx where x.changed > $39)
                 and not exists (select 1 from input i join rm_blacklist x
                                 on x.subject_idx = i.applicant_id_idx
                                 where x.active and x.changed > $39)
                 and not exists (select 1 from input i join rm_credit_villages x
                                 on x.village_code = i.village_code where x.changed > $39)
                 and not exists (select 1 from input i join rm_suspended_areas x
                                 on x.area_code in (i.village_code, i.town_code)
                                 where x.changed > $39)
                 -- The villages and towns of a household's ratings, the newest and those in
                 -- force before its day (R-RK-9).
                 and not exists (select 1 from input i join rm_credit_ratings r
                                 on r.subject_idx = i.applicant_id_idx and i.uscc is null
                                 cross join lateral (
                                   select trim(r.village_code) as v
                                   union all
                                   select trim(e->>'village_code')
                                   from jsonb_array_elements(r.earlier) e) rated
                                 join rm_suspended_areas x
                                 on x.area_code in (rated.v, left(rated.v, 9))
                                 where x.changed > $39)
                 and not exists (select 1 from input i join rm_qualified_enterprises x
                                 on x.uscc = i.uscc where x.changed > $39))), false) as fresh
             from (select 1) one
             left join (select version, epoch, pg_postmaster_start_time() = $41 as server_started
                        from rm_version) r on true
           ), key as (
             insert into idempotency_keys (caller, method, request_id, request_hash, response)
             select caller, $38, request_id, request_hash, response
             from input, current where current.fresh order by ord
             on conflict do nothing
             returning caller, request_id
           ), app as (
             insert into applications (id, kind, applicant_id_enc, applicant_id_idx, applicant_name_enc,
               phone_enc, legal_rep_enc, poor_household_number, self_use, village_code, town_code, area_code, amount,
               term_months, purpose, project_description, status, returned_from, step_seq, step_started_on,
               step_due_on, step_calendar, submitted_by, policy_version, submitted_at, updated_at, version)
             select i.id, i.kind, i.applicant_id_enc, i.applicant_id_idx, i.applicant_name_enc, i.phone_enc,
               i.legal_rep_enc,
               i.poor_household_number, i.self_use, i.village_code, i.town_code, i.area_code, i.amount,
               i.term_months, i.purpose, i.project_description, i.status, i.returned_from, i.step_seq,
               i.step_started_on, i.step_due_on, i.step_calendar, i.submitted_by, i.policy_version, i.submitted_at,
               i.submitted_at, 1
             from input i join key k on k.caller = i.caller and k.request_id = i.request_id
             returning id
           ), tr as (
             insert into transitions (id, application_id, from_status, to_status, action, actor, actor_role, reason, at,
               policy_version, calendar_version, step_due_on, step_seq)
             select i.transition_id, i.id, null, i.to_status, i.action, i.submitted_by, i.actor_role, '',
               i.submitted_at, i.policy_version, i.step_calendar, i.step_due_on, i.step_seq
             from input i join app a on a.id = i.id
           ), ev as (
             insert into outbox (id, subject, ce_type, ce_subject, payload, traceparent, created_at)
             select i.event_id, i.subject, i.ce_type, i.ce_subject, i.payload, i.traceparent, i.submitted_at
             from input i join app a on a.id = i.id
           )
           select id, null::boolean as fresh, null::boolean as same from app
           union all select null, fresh, same from current"#,
    )
    .bind(col(o, |s| s.key.caller.as_str()))
    .bind(col(o, |s| s.key.request_id.as_str()))
    .bind(col(o, |s| s.key.request_hash.as_slice()))
    .bind(col(o, |s| s.response))
    .bind(col(o, |s| s.row.id))
    .bind(col(o, |s| s.row.kind.as_str()))
    .bind(col(o, |s| s.row.applicant_id_enc.as_slice()))
    .bind(col(o, |s| s.row.applicant_id_idx.as_slice()))
    .bind(col(o, |s| s.row.applicant_name_enc.as_slice()))
    .bind(col(o, |s| s.row.phone_enc.as_slice()))
    .bind(col(o, |s| s.row.poor_household_number.as_str()))
    .bind(col(o, |s| s.row.self_use))
    .bind(col(o, |s| s.row.village_code.as_deref()))
    .bind(col(o, |s| s.row.town_code.as_deref()))
    .bind(col(o, |s| s.row.area_code.as_str()))
    .bind(col(o, |s| s.row.amount))
    .bind(col(o, |s| s.row.term_months))
    .bind(col(o, |s| s.row.purpose))
    .bind(col(o, |s| s.row.project_description.as_str()))
    .bind(col(o, |s| s.row.status.as_str()))
    .bind(col(o, |s| s.row.returned_from.as_deref()))
    .bind(col(o, |s| s.row.step_seq))
    .bind(col(o, |s| s.row.step_started_on))
    .bind(col(o, |s| s.row.step_due_on))
    .bind(col(o, |s| s.row.submitted_by.as_str()))
    .bind(col(o, |s| s.row.policy_version.as_str()))
    .bind(col(o, |s| s.row.submitted_at))
    .bind(col(o, |_| Uuid::now_v7()))
    .bind(col(o, |s| s.moved.to.as_str()))
    .bind(col(o, |s| s.moved.action))
    .bind(col(o, |s| s.actor_role))
    .bind(col(o, |s| s.event.id))
    .bind(col(o, |s| s.event.subject.as_str()))
    .bind(col(o, |s| s.event.ce_type.as_str()))
    .bind(col(o, |s| s.event.ce_subject.as_deref()))
    .bind(col(o, |s| s.event.payload.as_slice()))
    .bind(col(o, |s| s.event.traceparent.as_deref()))
    .bind(method)
    .bind(read_model.version)
    .bind(read_model.epoch)
    .bind(read_model.server_started)
    .bind(col(o, |s| s.uscc))
    .bind(col(o, |s| s.row.step_calendar.as_deref()))
    .bind(col(o, |s| s.row.legal_rep_enc.as_deref()))
    .fetch_all(conn)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut check = None;
    for (id, fresh, same) in rows {
        match (id, fresh, same) {
            (Some(id), _, _) => ids.push(id),
            (None, Some(fresh), Some(same)) => check = Some((fresh, same)),
            _ => return Err(sqlx::Error::Protocol("batch write: unexpected row".into())),
        }
    }
    match check {
        Some((true, same)) => Ok(BatchWritten::Written { ids, behind: !same }),
        Some((false, _)) => Ok(BatchWritten::Stale),
        None => Err(sqlx::Error::Protocol(
            "batch write: no read-model check row".into(),
        )),
    }
}

/// Writes corrected applicant data (resubmission after a return, R-IN-2) to a row the caller
/// holds locked; `update` then saves the move and bumps the version.
pub async fn save_applicant_corrections(
    conn: &mut PgConnection,
    r: &ApplicationRow,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"update applications set applicant_name_enc = $2, phone_enc = $3,
             poor_household_number = $4, self_use = $5, legal_rep_enc = $6
           where id = $1"#,
    )
    .bind(r.id)
    .bind(&r.applicant_name_enc)
    .bind(&r.phone_enc)
    .bind(&r.poor_household_number)
    .bind(r.self_use)
    .bind(&r.legal_rep_enc)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves a changed row if nobody else changed it since it was read (optimistic concurrency);
/// false when the version moved on.
pub async fn update(conn: &mut PgConnection, r: &ApplicationRow) -> sqlx::Result<bool> {
    let n = sqlx::query(
        r#"update applications set amount = $3, term_months = $4, purpose = $5, project_description = $6,
             status = $7, returned_from = $8, step_seq = $9, step_started_on = $10, step_due_on = $11,
             overdue_alerted_seq = $12, notice_ends_on = $13, bank_id = $14, recommended_on = $15,
             decision = $16, disbursement = $17, updated_at = $18, policy_version = $19,
             step_calendar = $20, version = version + 1
           where id = $1 and version = $2"#,
    )
    .bind(r.id)
    .bind(r.version)
    .bind(r.amount)
    .bind(r.term_months)
    .bind(r.purpose)
    .bind(&r.project_description)
    .bind(&r.status)
    .bind(&r.returned_from)
    .bind(r.step_seq)
    .bind(r.step_started_on)
    .bind(r.step_due_on)
    .bind(r.overdue_alerted_seq)
    .bind(r.notice_ends_on)
    .bind(&r.bank_id)
    .bind(r.recommended_on)
    .bind(&r.decision)
    .bind(&r.disbursement)
    .bind(r.updated_at)
    .bind(&r.policy_version)
    .bind(&r.step_calendar)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn get<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    id: Uuid,
) -> sqlx::Result<Option<ApplicationRow>> {
    sqlx::query_as(concat!(
        "select ",
        app_columns!(),
        " from applications where id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Reads and locks the row for the rest of the transaction.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<ApplicationRow>> {
    sqlx::query_as(concat!(
        "select ",
        app_columns!(),
        " from applications where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Records `moved` of the application in `row` (as saved after the move): the policy version
/// it was decided under and, when it started a step, the calendar that counted its deadline.
pub async fn record_transition(
    conn: &mut PgConnection,
    row: &ApplicationRow,
    moved: &Moved,
    actor: &str,
    actor_role: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into transitions (id, application_id, from_status, to_status, action, actor, actor_role, reason, at,
             policy_version, calendar_version, corrections, step_due_on, step_seq)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
    )
    .bind(Uuid::now_v7())
    .bind(row.id)
    .bind(moved.from.map(Status::as_str))
    .bind(moved.to.as_str())
    .bind(moved.action)
    .bind(actor)
    .bind(actor_role)
    .bind(&moved.reason)
    .bind(at)
    .bind(&row.policy_version)
    .bind(&row.step_calendar)
    .bind(sqlx::types::Json(&moved.corrections))
    .bind(row.step_due_on)
    .bind(moved.to.step().map(|_| row.step_seq))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TransitionRow {
    pub id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub action: String,
    pub actor: String,
    pub actor_role: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub policy_version: String,
    pub calendar_version: Option<String>,
    pub corrections: sqlx::types::Json<Vec<Correction>>,
    pub step_due_on: Option<NaiveDate>,
}

pub async fn transitions(
    pool: &PgPool,
    app: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<TransitionRow>> {
    sqlx::query_as(
        r#"select id, from_status, to_status, action, actor, actor_role, reason, at, policy_version,
             calendar_version, corrections, step_due_on
           from transitions
           where application_id = $1 and ($2::uuid is null or id > $2) order by id limit $3"#,
    )
    .bind(app)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Filters of a staff or bank listing. Every filter is optional except the scope.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Area prefix (staff scope).
    pub area_prefix: Option<String>,
    /// Bank scope.
    pub bank_id: Option<String>,
    pub statuses: Vec<String>,
    /// Only applications whose current step is past its due date on this day.
    pub overdue_on: Option<NaiveDate>,
    pub recommended_from: Option<NaiveDate>,
    pub recommended_to: Option<NaiveDate>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, f: &ListFilter) -> sqlx::Result<Vec<ApplicationRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        app_columns!(),
        r#" from applications
           where ($1::text is null or area_code like $1 || '%')
             and ($2::text is null or bank_id = $2)
             and (cardinality($3::text[]) = 0 or status = any($3))
             and ($4::date is null or (step_due_on < $4 and "#,
        in_a_step!(),
        r#"))
             and ($5::date is null or recommended_on >= $5)
             and ($6::date is null or recommended_on < $6)
             and ($7::uuid is null or id > $7)
           order by id limit $8"#
    ))
    .bind(&f.area_prefix)
    .bind(&f.bank_id)
    .bind(&f.statuses)
    .bind(f.overdue_on)
    .bind(f.recommended_from)
    .bind(f.recommended_to)
    .bind(f.after)
    .bind(f.limit)
    .fetch_all(pool)
    .await
}

/// Rows after `after` (in id order) whose current step is past due and not yet alerted,
/// locked for this scan (rows another transaction holds are left to it).
pub async fn overdue_unalerted(
    conn: &mut PgConnection,
    today: NaiveDate,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApplicationRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        app_columns!(),
        r#" from applications
           where step_due_on < $1
             and "#,
        in_a_step!(),
        r#"
             and overdue_alerted_seq is distinct from step_seq
             and ($2::uuid is null or id > $2)
           order by id limit $3 for update skip locked"#
    ))
    .bind(today)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Rows after `after` (in id order) in a step started by `started_by` whose deadline is
/// pending: entered while the deployed calendar did not reach it (R-IN-4). Locked until the
/// transaction ends.
pub async fn deadline_pending(
    conn: &mut PgConnection,
    started_by: NaiveDate,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApplicationRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        app_columns!(),
        r#" from applications
           where step_due_on is null
             and "#,
        in_a_step!(),
        r#"
             and step_started_on <= $1
             and ($2::uuid is null or id > $2)
           order by id limit $3 for update"#
    ))
    .bind(started_by)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Stores the deadline counted for a step entered before the calendar reached it, and the
/// calendar version that counted it (R-X-4), on the application and on the transition that
/// entered the step; whether that step was still pending.
pub async fn set_step_deadline(
    conn: &mut PgConnection,
    r: &ApplicationRow,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update applications
            set step_due_on = $3, step_calendar = $4, updated_at = $5, version = version + 1
          where id = $1 and step_seq = $2 and step_due_on is null",
    )
    .bind(r.id)
    .bind(r.step_seq)
    .bind(r.step_due_on)
    .bind(&r.step_calendar)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1
        && let Some(due) = r.step_due_on
    {
        set_transition_deadline(conn, r.id, r.step_seq, due, r.step_calendar.as_deref()).await?;
    }
    Ok(updated == 1)
}

/// Records on the transition that entered step entry `step_seq` of application `id` the
/// deadline counted for it later (it was pending when the transition was recorded), and the
/// calendar version that counted it (R-IN-4, R-X-4). Transitions recorded before they kept
/// their step entry are left as they are.
pub async fn set_transition_deadline(
    conn: &mut PgConnection,
    id: Uuid,
    step_seq: i32,
    due: NaiveDate,
    calendar: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update transitions set step_due_on = $3, calendar_version = $4
          where application_id = $1 and step_seq = $2 and step_due_on is null",
    )
    .bind(id)
    .bind(step_seq)
    .bind(due)
    .bind(calendar)
    .execute(conn)
    .await?;
    Ok(())
}

/// A step left while its deadline was pending (R-IN-4): kept until a calendar counts it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LeftStepRow {
    pub application_id: Uuid,
    pub step_seq: i32,
    pub step: String,
    pub started_on: NaiveDate,
    pub left_on: NaiveDate,
    pub policy_version: String,
    pub area_code: String,
    pub bank_id: Option<String>,
}

pub async fn insert_left_step(conn: &mut PgConnection, r: &LeftStepRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into left_steps_pending
             (application_id, step_seq, step, started_on, left_on, policy_version, area_code, bank_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           on conflict do nothing"#,
    )
    .bind(r.application_id)
    .bind(r.step_seq)
    .bind(&r.step)
    .bind(r.started_on)
    .bind(r.left_on)
    .bind(&r.policy_version)
    .bind(&r.area_code)
    .bind(&r.bank_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Left steps started by `started_by`, after `after` (in key order), locked until the
/// transaction ends.
pub async fn left_steps_pending(
    conn: &mut PgConnection,
    started_by: NaiveDate,
    after: Option<(Uuid, i32)>,
    limit: i64,
) -> sqlx::Result<Vec<LeftStepRow>> {
    let (id, seq) = after.unzip();
    sqlx::query_as(
        r#"select application_id, step_seq, step, started_on, left_on, policy_version, area_code,
                  bank_id
             from left_steps_pending
            where started_on <= $1
              and ($2::uuid is null or (application_id, step_seq) > ($2, $3))
            order by application_id, step_seq limit $4 for update"#,
    )
    .bind(started_by)
    .bind(id)
    .bind(seq)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Deletes a left step once its deadline is counted; whether it was still there.
pub async fn delete_left_step(conn: &mut PgConnection, r: &LeftStepRow) -> sqlx::Result<bool> {
    let deleted =
        sqlx::query("delete from left_steps_pending where application_id = $1 and step_seq = $2")
            .bind(r.application_id)
            .bind(r.step_seq)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(deleted == 1)
}

/// Locks an application's row until the transaction ends: an event about it written meanwhile
/// then takes its place in the outbox after the moves committed before, and before those
/// committed after (events of one application are published in the order they were
/// committed).
/// Locks application `id`'s row; returns its version (0 if there is no such row).
pub async fn lock_application(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<i64> {
    let version: Option<i64> =
        sqlx::query_scalar("select version from applications where id = $1 for update")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(version.unwrap_or_default())
}

pub async fn mark_overdue_alerted(conn: &mut PgConnection, id: Uuid, seq: i32) -> sqlx::Result<()> {
    sqlx::query("update applications set overdue_alerted_seq = $2 where id = $1")
        .bind(id)
        .bind(seq)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ObjectionRow {
    pub id: Uuid,
    pub application_id: Uuid,
    /// The objector's name, sealed (R-CR-11): see [`ObjectionRow::objector`].
    pub objector_enc: Vec<u8>,
    pub content: String,
    pub state: String,
    pub resolution: String,
    pub filed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who recorded it and who resolved it (R-IN-2 "who"), as a transition's actor.
    pub filed_by: String,
    pub resolved_by: Option<String>,
}

pub(crate) const OBJECTOR: &str = "objections.objector";

impl ObjectionRow {
    pub fn seal_objector(cipher: &PiiCipher, id: Uuid, objector: &str) -> Vec<u8> {
        pii::seal(cipher, OBJECTOR, id, objector)
    }

    pub fn objector(&self, cipher: &PiiCipher) -> anyhow::Result<String> {
        pii::open(cipher, OBJECTOR, self.id, &self.objector_enc)
    }
}

pub async fn insert_objection(conn: &mut PgConnection, o: &ObjectionRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into objections (id, application_id, objector_enc, content, state, filed_by, filed_at)
           values ($1, $2, $3, $4, 'open', $5, $6)"#,
    )
    .bind(o.id)
    .bind(o.application_id)
    .bind(&o.objector_enc)
    .bind(&o.content)
    .bind(&o.filed_by)
    .bind(o.filed_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The application of bank `bank` other than `except` whose disbursement was booked on loan
/// account `account` (R-IN-6: one loan per account number of a bank). Takes a lock on the
/// bank's account number for the rest of the transaction first, so two disbursements on one
/// number are decided one after the other; the unique index is the last guard.
pub async fn loan_account_holder(
    conn: &mut PgConnection,
    bank: &str,
    account: &str,
    except: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("fupin-intake loan account\n{bank}\n{account}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "select id from applications
          where bank_id = $1 and disbursement is not null
            and disbursement ->> 'loan_account_number' = $2 and id <> $3
          limit 1",
    )
    .bind(bank)
    .bind(account)
    .bind(except)
    .fetch_optional(conn)
    .await
}

/// The application an objection is about (an objection never moves), read without a lock:
/// resolvers lock the application before the objection, as filers do.
pub async fn objection_application(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select application_id from objections where id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn objection_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<ObjectionRow>> {
    sqlx::query_as(
        r#"select id, application_id, objector_enc, content, state, resolution, filed_at, resolved_at,
                  filed_by, resolved_by
           from objections where id = $1 for update"#,
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An application's objections in filing order, after `after`.
pub async fn objections(
    pool: &PgPool,
    app: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ObjectionRow>> {
    sqlx::query_as(
        r#"select id, application_id, objector_enc, content, state, resolution, filed_at, resolved_at,
                  filed_by, resolved_by
           from objections where application_id = $1 and ($2::uuid is null or id > $2)
           order by id limit $3"#,
    )
    .bind(app)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Closes the application's other open objections once one is upheld (R-IN-5).
pub async fn supersede_open_objections(
    conn: &mut PgConnection,
    app: Uuid,
    upheld: Uuid,
    by: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        r#"update objections set state = 'superseded', resolution = $3, resolved_by = $4,
             resolved_at = $5
           where application_id = $1 and state = 'open' and id <> $2"#,
    )
    .bind(app)
    .bind(upheld)
    .bind(format!(
        "closed: objection {upheld} was upheld and the application rejected"
    ))
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn open_objections_except(
    conn: &mut PgConnection,
    app: Uuid,
    except: Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from objections where application_id = $1 and state = 'open' and id <> $2",
    )
    .bind(app)
    .bind(except)
    .fetch_one(conn)
    .await
}

/// Records `o`'s resolution (state, resolution, who and when), as set on it.
pub async fn resolve_objection(conn: &mut PgConnection, o: &ObjectionRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"update objections set state = $2, resolution = $3, resolved_by = $4, resolved_at = $5
           where id = $1"#,
    )
    .bind(o.id)
    .bind(&o.state)
    .bind(&o.resolution)
    .bind(&o.resolved_by)
    .bind(o.resolved_at)
    .execute(conn)
    .await?;
    Ok(())
}
