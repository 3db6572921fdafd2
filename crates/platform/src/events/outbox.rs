//! Writing events in the same transaction as the state change they announce (R-X-2).
//!
//! The writer does not NOTIFY: PostgreSQL serialises the commits of notifying transactions on
//! one queue lock, which would cap write throughput. The service wakes its relay in-process
//! after commit (`RelayHandle::wake`), and the relay polls as a fallback.

use chrono::{DateTime, Utc};
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::telemetry::current_traceparent;

/// One outbox row, built before it is written so that a caller may insert it as part of a
/// larger statement (see the intake submission).
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: Uuid,
    pub subject: String,
    pub ce_type: String,
    /// CloudEvents `subject`: what the event is about (e.g. the application id).
    pub ce_subject: Option<String>,
    pub payload: Vec<u8>,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OutboxRow {
    pub fn new<M: prost::Message + Name>(
        prefix: &str,
        event: &M,
        about: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let ce_type = M::full_name();
        Self {
            id: Uuid::now_v7(),
            subject: super::subject_for(prefix, &ce_type),
            ce_type,
            ce_subject: about.map(str::to_owned),
            payload: event.encode_to_vec(),
            traceparent: current_traceparent(),
            created_at: now,
        }
    }
}

/// Appends `event` to the outbox inside the caller's transaction.
#[tracing::instrument(skip_all, fields(ce_type = M::full_name()))]
pub async fn enqueue<M: prost::Message + Name>(
    conn: &mut PgConnection,
    prefix: &str,
    event: &M,
    about: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    let row = OutboxRow::new(prefix, event, about, now);
    sqlx::query(
        r#"insert into outbox (id, subject, ce_type, ce_subject, payload, traceparent, created_at)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
    )
    .bind(row.id)
    .bind(&row.subject)
    .bind(&row.ce_type)
    .bind(&row.ce_subject)
    .bind(&row.payload)
    .bind(&row.traceparent)
    .bind(row.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(row.id)
}
