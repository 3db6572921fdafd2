//! The audit trails of personal data (R-CR-11): unmasked reads (`pii_access_log`) and the
//! credit facts admission refusals disclose (`admission_disclosures`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// One access-log row per record a response showed unmasked: its application or complaint
/// (and, for an objector's name, the objection on the application) and the fields
/// (comma-joined, as on the wire).
pub struct Shown {
    pub application: Option<Uuid>,
    pub objection: Option<Uuid>,
    pub complaint: Option<Uuid>,
    pub fields: String,
}

/// Who acted, as the audit trails record it: the token's subject and role, and the caller's
/// area and bank id (one subject may act for several).
pub struct Caller<'a> {
    pub subject: &'a str,
    pub role: &'a str,
    pub area: &'a str,
    pub bank_id: Option<&'a str>,
}

impl<'a> Caller<'a> {
    pub fn of(actor: &'a crate::domain::Actor) -> Self {
        Self {
            subject: &actor.subject,
            role: actor.role.as_str(),
            area: actor.area.as_str(),
            bank_id: actor.bank_id.as_deref(),
        }
    }
}

/// Logs what one response of `rpc` showed `caller` unmasked.
pub async fn log_unmasked_reads<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    at: DateTime<Utc>,
    caller: &Caller<'_>,
    rpc: &str,
    shown: &[Shown],
) -> sqlx::Result<()> {
    if shown.is_empty() {
        return Ok(());
    }
    let applications: Vec<Option<Uuid>> = shown.iter().map(|s| s.application).collect();
    let objections: Vec<Option<Uuid>> = shown.iter().map(|s| s.objection).collect();
    let complaints: Vec<Option<Uuid>> = shown.iter().map(|s| s.complaint).collect();
    let fields: Vec<&str> = shown.iter().map(|s| s.fields.as_str()).collect();
    sqlx::query(
        r#"insert into pii_access_log (at, caller, role, rpc, application_id, objection_id,
             complaint_id, fields, caller_area, caller_bank_id)
           select $1, $2, $3, $4, a, o, c, string_to_array(f, ','), $9, $10
           from unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::text[]) as shown (a, o, c, f)"#,
    )
    .bind(at)
    .bind(caller.subject)
    .bind(caller.role)
    .bind(rpc)
    .bind(&applications)
    .bind(&objections)
    .bind(&complaints)
    .bind(&fields)
    .bind(caller.area)
    .bind(caller.bank_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One submission refusal that named credit facts: who asked, under which request id, about
/// which applicant (blind index), the rules (comma-joined; empty logs nothing), and whether
/// the refusal was kept with the request id (not for bad input over the caps, which is told
/// admission's other refusals too).
pub struct Disclosure<'a> {
    pub at: DateTime<Utc>,
    pub caller: Caller<'a>,
    pub request_id: &'a str,
    pub subject_idx: &'a [u8],
    pub rules: String,
    pub kept: bool,
}

/// Logs the disclosures of a batch of `SubmitApplication` refusals.
pub async fn log_disclosures(
    conn: &mut PgConnection,
    disclosures: &[Disclosure<'_>],
) -> sqlx::Result<()> {
    let col = |f: &dyn Fn(&Disclosure<'_>) -> String| -> Vec<String> {
        disclosures.iter().map(f).collect()
    };
    let at: Vec<DateTime<Utc>> = disclosures.iter().map(|d| d.at).collect();
    let idx: Vec<&[u8]> = disclosures.iter().map(|d| d.subject_idx).collect();
    sqlx::query(
        r#"insert into admission_disclosures (at, caller, role, rpc, request_id, subject_idx, rules,
             kept, caller_area, caller_bank_id)
           select at, caller, role, 'SubmitApplication', request_id, idx, string_to_array(rules, ','),
             kept, area, bank_id
           from unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                       $6::text[], $7::bool[], $8::text[], $9::text[])
                as d (at, caller, role, request_id, idx, rules, kept, area, bank_id)
           where rules <> ''"#,
    )
    .bind(at)
    .bind(col(&|d| d.caller.subject.to_owned()))
    .bind(col(&|d| d.caller.role.to_owned()))
    .bind(col(&|d| d.request_id.to_owned()))
    .bind(idx)
    .bind(col(&|d| d.rules.clone()))
    .bind(disclosures.iter().map(|d| d.kept).collect::<Vec<_>>())
    .bind(col(&|d| d.caller.area.to_owned()))
    .bind(
        disclosures
            .iter()
            .map(|d| d.caller.bank_id.map(str::to_owned))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
