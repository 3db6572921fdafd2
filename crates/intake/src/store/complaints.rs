//! Complaints (R-IN-7).

use chrono::{DateTime, NaiveDate, Utc};
use fupin_kernel::AreaCode;
use fupin_platform::PiiCipher;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::pii;
use crate::domain::complaint::Complaint;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ComplaintRow {
    pub id: Uuid,
    /// The complainant's name, sealed (R-CR-11): see [`ComplaintRow::complainant`].
    pub complainant_enc: Vec<u8>,
    pub content: String,
    pub area_code: String,
    pub application_id: Option<Uuid>,
    pub assigned_to: Option<String>,
    /// Who made the latest assignment, and when (every one is in `complaint_assignments`).
    pub assigned_by: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub answer: Option<String>,
    pub lodged_by: String,
    pub lodged_at: DateTime<Utc>,
    pub lodged_on: NaiveDate,
    /// None while the calendar cannot count it yet (migration `20261130000017`).
    pub due_on: Option<NaiveDate>,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub overdue_alerted: bool,
    /// The intake policy version that set `due_on` (R-X-4).
    pub policy_version: String,
    /// The version of the calendar data that counted `due_on` (R-X-4).
    pub calendar_version: Option<String>,
}

pub(crate) const COMPLAINANT: &str = "complaints.complainant";

impl ComplaintRow {
    pub fn seal_complainant(cipher: &PiiCipher, id: Uuid, complainant: &str) -> Vec<u8> {
        pii::seal(cipher, COMPLAINANT, id, complainant)
    }

    pub fn complainant(&self, cipher: &PiiCipher) -> anyhow::Result<String> {
        pii::open(cipher, COMPLAINANT, self.id, &self.complainant_enc)
    }

    pub fn aggregate(&self) -> anyhow::Result<Complaint> {
        Ok(Complaint {
            area: AreaCode::parse(&self.area_code)?,
            assigned_to: self
                .assigned_to
                .as_deref()
                .map(AreaCode::parse)
                .transpose()?,
            answered: self.answer.is_some(),
            lodged_on: self.lodged_on,
            due_on: self.due_on,
            calendar_version: self.calendar_version.clone(),
            overdue_alerted: self.overdue_alerted,
        })
    }
}

macro_rules! complaint_columns {
    () => {
        "id, complainant_enc, content, area_code, application_id, assigned_to, assigned_by, \
    assigned_at, answer, lodged_by, lodged_at, lodged_on, due_on, answered_by, answered_at, \
    overdue_alerted, policy_version, calendar_version"
    };
}

pub async fn insert(conn: &mut PgConnection, c: &ComplaintRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into complaints (id, complainant_enc, content, area_code, application_id, lodged_by, lodged_at,
             lodged_on, due_on, policy_version, calendar_version)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
    )
    .bind(c.id)
    .bind(&c.complainant_enc)
    .bind(&c.content)
    .bind(&c.area_code)
    .bind(c.application_id)
    .bind(&c.lodged_by)
    .bind(c.lodged_at)
    .bind(c.lodged_on)
    .bind(c.due_on)
    .bind(&c.policy_version)
    .bind(&c.calendar_version)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<ComplaintRow>> {
    sqlx::query_as(concat!(
        "select ",
        complaint_columns!(),
        " from complaints where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Assigns the complaint to organisation `to` (R-IN-7): the complaint shows the latest
/// assignment, and every one is logged in `complaint_assignments`.
pub async fn assign(
    conn: &mut PgConnection,
    c: &mut ComplaintRow,
    to: &str,
    by: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"insert into complaint_assignments (complaint_id, assigned_to, assigned_by, assigned_at)
           values ($1, $2, $3, $4)"#,
    )
    .bind(c.id)
    .bind(to)
    .bind(by)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    c.assigned_to = Some(to.to_owned());
    c.assigned_by = Some(by.to_owned());
    c.assigned_at = Some(at);
    save(conn, c).await
}

pub async fn save(conn: &mut PgConnection, c: &ComplaintRow) -> sqlx::Result<()> {
    sqlx::query(
        r#"update complaints set assigned_to = $2, assigned_by = $3, assigned_at = $4, answer = $5,
             answered_by = $6, answered_at = $7, overdue_alerted = $8 where id = $1"#,
    )
    .bind(c.id)
    .bind(&c.assigned_to)
    .bind(&c.assigned_by)
    .bind(c.assigned_at)
    .bind(&c.answer)
    .bind(&c.answered_by)
    .bind(c.answered_at)
    .bind(c.overdue_alerted)
    .execute(conn)
    .await?;
    Ok(())
}

/// Complaints about `area_prefix` or assigned to `org`, optionally only unanswered past due.
pub async fn list(
    pool: &PgPool,
    area_prefix: &str,
    org: &str,
    overdue_on: Option<NaiveDate>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ComplaintRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        complaint_columns!(),
        r#" from complaints
           where (area_code like $1 || '%' or assigned_to = $2)
             and ($3::date is null or (answer is null and due_on < $3))
             and ($4::uuid is null or id > $4)
           order by id limit $5"#
    ))
    .bind(area_prefix)
    .bind(org)
    .bind(overdue_on)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Complaints lodged by `lodged_by` whose answer deadline is not counted yet (R-IN-7), locked
/// for the caller's transaction in id order: a row another transaction holds (an answer,
/// another scan) is waited for, not skipped.
pub async fn deadline_pending(
    conn: &mut PgConnection,
    lodged_by: NaiveDate,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ComplaintRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        complaint_columns!(),
        r#" from complaints
           where due_on is null and lodged_on <= $1 and ($2::uuid is null or id > $2)
           order by id limit $3 for update"#
    ))
    .bind(lodged_by)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Stores the answer deadline counted for a complaint lodged before the calendar covered it,
/// and the calendar version that counted it (R-X-4); whether it was still pending.
pub async fn set_deadline(conn: &mut PgConnection, c: &ComplaintRow) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update complaints set due_on = $2, calendar_version = $3, overdue_alerted = $4
          where id = $1 and due_on is null",
    )
    .bind(c.id)
    .bind(c.due_on)
    .bind(&c.calendar_version)
    .bind(c.overdue_alerted)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

pub async fn overdue_unalerted(
    conn: &mut PgConnection,
    today: NaiveDate,
    limit: i64,
) -> sqlx::Result<Vec<ComplaintRow>> {
    sqlx::query_as(concat!(
        r#"select "#,
        complaint_columns!(),
        r#" from complaints
           where answer is null and due_on < $1 and not overdue_alerted
           order by id limit $2 for update skip locked"#
    ))
    .bind(today)
    .bind(limit)
    .fetch_all(conn)
    .await
}
