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

/// Logs what one response of `rpc` showed `caller` (acting as `role`) unmasked.
pub async fn log_unmasked_reads<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    at: DateTime<Utc>,
    caller: &str,
    role: &str,
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
             complaint_id, fields)
           select $1, $2, $3, $4, a, o, c, string_to_array(f, ',')
           from unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::text[]) as shown (a, o, c, f)"#,
    )
    .bind(at)
    .bind(caller)
    .bind(role)
    .bind(rpc)
    .bind(&applications)
    .bind(&objections)
    .bind(&complaints)
    .bind(&fields)
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
    pub caller: &'a str,
    pub role: &'a str,
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
             kept)
           select at, caller, role, 'SubmitApplication', request_id, idx, string_to_array(rules, ','),
             kept
           from unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                       $6::text[], $7::bool[]) as d (at, caller, role, request_id, idx, rules, kept)
           where rules <> ''"#,
    )
    .bind(at)
    .bind(col(&|d| d.caller.to_owned()))
    .bind(col(&|d| d.role.to_owned()))
    .bind(col(&|d| d.request_id.to_owned()))
    .bind(idx)
    .bind(col(&|d| d.rules.clone()))
    .bind(disclosures.iter().map(|d| d.kept).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
