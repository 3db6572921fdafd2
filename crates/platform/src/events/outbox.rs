//! Writing events in the same transaction as the state change they announce (R-X-2).

use chrono::{DateTime, Utc};
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::telemetry::current_traceparent;

/// Appends `event` to the outbox inside the caller's transaction and wakes the relay at commit.
/// `about` is the CloudEvents `subject` (e.g. the application id).
#[tracing::instrument(skip_all, fields(ce_type = M::full_name()))]
pub async fn enqueue<M: prost::Message + Name>(
    conn: &mut PgConnection,
    prefix: &str,
    event: &M,
    about: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    let full_name = M::full_name();
    sqlx::query(
        r#"insert into outbox (id, subject, ce_type, ce_subject, payload, traceparent, created_at)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
    )
    .bind(id)
    .bind(super::subject_for(prefix, &full_name))
    .bind(&full_name)
    .bind(about)
    .bind(event.encode_to_vec())
    .bind(current_traceparent())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // Delivered only if the transaction commits; the relay also polls in case it is missed.
    sqlx::query("select pg_notify('fupin_outbox', '')")
        .execute(&mut *conn)
        .await?;
    Ok(id)
}
