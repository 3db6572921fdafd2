//! Re-sealing after a key rotation (R-CR-11): every personal value intake keeps sealed with a
//! key other than the current one is opened and sealed again with the current key, so that the
//! old key can be retired. Runs at start-up and then on a timer, because replicas still on the
//! old configuration keep sealing with the old key until they restart.
//!
//! Each pass walks one column at a time in key order, `BATCH` rows per statement, and finds
//! only the values whose header names another key. A value is replaced only if it is still the
//! one that was read (a concurrent write wins, and the next pass looks again). A value that
//! does not open (its key is no longer configured, or it was damaged) is left as it is and
//! logged; reads of it fail the same way.

use std::time::Duration;

use fupin_platform::{
    PiiCipher,
    idempotency::{self, Resealed},
    shutdown::Shutdown,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::pii;

/// Rows read and written per statement.
pub const BATCH: i64 = 500;

/// A sealed column keyed by a `uuid` id, the label its values are bound to, and its two
/// statements (spelled out at compile time: no SQL is assembled at run time).
struct SealedColumn {
    table: &'static str,
    column: &'static str,
    label: &'static str,
    /// The next rows after `$1` whose value does not start with the current header `$3` of
    /// length `$2`, at most `$4`.
    select: &'static str,
    /// Replaces values still equal to the one read.
    update: &'static str,
}

macro_rules! sealed_column {
    ($table:literal, $column:literal, $label:expr) => {
        SealedColumn {
            table: $table,
            column: $column,
            label: $label,
            select: concat!(
                "select id, ",
                $column,
                " from ",
                $table,
                " where id > $1 and substring(",
                $column,
                " from 1 for $2) <> $3",
                " order by id limit $4"
            ),
            update: concat!(
                "update ",
                $table,
                " t set ",
                $column,
                " = u.new",
                " from unnest($1::uuid[], $2::bytea[], $3::bytea[]) as u(id, old, new)",
                " where t.id = u.id and t.",
                $column,
                " = u.old"
            ),
        }
    };
}

const COLUMNS: [SealedColumn; 5] = [
    sealed_column!(
        "applications",
        "applicant_id_enc",
        crate::store::applications::APPLICANT_ID
    ),
    sealed_column!(
        "applications",
        "applicant_name_enc",
        crate::store::applications::APPLICANT_NAME
    ),
    sealed_column!(
        "applications",
        "phone_enc",
        crate::store::applications::PHONE
    ),
    sealed_column!(
        "objections",
        "objector_enc",
        crate::store::applications::OBJECTOR
    ),
    sealed_column!(
        "complaints",
        "complainant_enc",
        crate::store::complaints::COMPLAINANT
    ),
];

/// One pass over every sealed column and the stored responses (all intake's are sealed).
pub async fn pass(pool: &PgPool, cipher: &PiiCipher) -> Result<Resealed, sqlx::Error> {
    let mut done = Resealed::default();
    for column in &COLUMNS {
        let d = reseal_column(pool, cipher, column).await?;
        if d != Resealed::default() {
            tracing::info!(
                table = column.table,
                column = column.column,
                key = cipher.current_key_id(),
                resealed = d.resealed,
                failed = d.failed,
                "re-sealed personal data"
            );
        }
        done += d;
    }
    let d = idempotency::reseal_responses(pool, cipher, BATCH).await?;
    if d != Resealed::default() {
        tracing::info!(
            table = "idempotency_keys",
            column = "response",
            key = cipher.current_key_id(),
            resealed = d.resealed,
            failed = d.failed,
            "re-sealed personal data"
        );
    }
    done += d;
    Ok(done)
}

async fn reseal_column(
    pool: &PgPool,
    cipher: &PiiCipher,
    c: &SealedColumn,
) -> Result<Resealed, sqlx::Error> {
    let (table, column) = (c.table, c.column);
    let header = cipher.current_header();
    let mut after = Uuid::nil();
    let mut done = Resealed::default();
    loop {
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(c.select)
            .bind(after)
            .bind(header.len() as i32)
            .bind(&header)
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(done);
        };
        after = last;
        let (mut ids, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
        for (id, old) in &rows {
            match pii::reseal(cipher, c.label, *id, old) {
                Ok(Some(new)) => {
                    ids.push(*id);
                    olds.push(old.as_slice());
                    news.push(new);
                }
                Ok(None) => {}
                Err(e) => {
                    done.failed += 1;
                    tracing::warn!(table, column, row = %id, error = %e,
                        "a sealed value cannot be re-sealed");
                }
            }
        }
        if ids.is_empty() {
            continue;
        }
        let updated = sqlx::query(c.update)
            .bind(&ids)
            .bind(&olds)
            .bind(news.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .execute(pool)
            .await?;
        done.resealed += updated.rows_affected();
    }
}

/// Runs a pass now and then every `every`, until `shutdown`.
pub async fn run_every(pool: PgPool, cipher: PiiCipher, every: Duration, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = pass(&pool, &cipher).await {
                    tracing::warn!(error = %e, "re-sealing pass failed; trying again next time");
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}
