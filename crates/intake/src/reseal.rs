//! Re-sealing after a key rotation (R-CR-11): the personal values intake keeps sealed with a
//! key being retired (`PII_RETIRING_KEYS`) are opened and sealed again with the current key,
//! so that the retiring key can then be removed. Only keys named as retiring are touched: a
//! replica whose configuration has not caught up (another current key) re-seals nothing it
//! was not told to, so replicas never undo each other's work during a rollout. Runs at start
//! and then on a timer, because replicas still on the old configuration keep sealing with the
//! old key until they restart.
//!
//! Each pass walks one column at a time in key order, `BATCH` rows per statement, and finds
//! only the values whose header names a retiring key. A value is replaced only if it is still
//! the one that was read (a concurrent write wins, and the next pass looks again). A value that
//! does not open is left as it is and logged; reads of it fail the same way. A pass stops
//! between batches on shutdown.

use std::time::Duration;

use anyhow::Context as _;
use fupin_platform::{PiiCipher, idempotency, pii::Resealed, shutdown::Shutdown};
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
    /// The next rows after `$1` whose value starts with one of the headers `$2`, at most `$3`.
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
                " where id > $1 and exists (select 1 from unnest($2::bytea[]) as h(header)",
                " where substring(",
                $column,
                " from 1 for length(h.header)) = h.header)",
                " order by id limit $3"
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

const COLUMNS: [SealedColumn; 6] = [
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
        "applications",
        "legal_rep_enc",
        crate::store::applications::LEGAL_REP
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

/// The keys being retired: configured, not current.
#[derive(Clone, Debug)]
pub struct Retiring {
    ids: Vec<String>,
    headers: Vec<Vec<u8>>,
}

impl Retiring {
    /// `ids` as listed in `PII_RETIRING_KEYS`; each must be one of `cipher`'s keys and not
    /// the current one.
    pub fn new(cipher: &PiiCipher, ids: &[String]) -> anyhow::Result<Self> {
        let mut headers = Vec::with_capacity(ids.len());
        for id in ids {
            anyhow::ensure!(
                id != cipher.current_key_id(),
                "PII_RETIRING_KEYS: {id} is the current key (PII_KEYS lists it first)"
            );
            headers.push(
                cipher
                    .header_of(id)
                    .with_context(|| format!("PII_RETIRING_KEYS: {id} is not in PII_KEYS"))?,
            );
        }
        Ok(Self {
            ids: ids.to_vec(),
            headers,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One pass over every sealed column and the stored responses (all intake's are sealed),
/// until done or `stop`.
pub async fn pass(
    pool: &PgPool,
    cipher: &PiiCipher,
    retiring: &Retiring,
    stop: &Shutdown,
) -> Result<Resealed, sqlx::Error> {
    let mut done = Resealed::default();
    if retiring.is_empty() {
        return Ok(done);
    }
    let began = fupin_platform::db::database_now(pool).await?;
    for column in &COLUMNS {
        let d = reseal_column(pool, cipher, retiring, column, stop).await?;
        log(column.table, column.column, cipher, retiring, d);
        done += d;
    }
    let d = idempotency::reseal_responses(pool, cipher, &retiring.headers, BATCH, stop).await?;
    log("idempotency_keys", "response", cipher, retiring, d);
    done += d;
    if stop.is_triggered() {
        return Ok(done);
    }
    // Every column walked: nothing that opens is left under the retiring keys, which may now
    // leave PII_KEYS (the start check allows it from here on).
    let still = fupin_platform::db::record_keys_retired(pool, &retiring.ids, began).await?;
    if !still.is_empty() {
        tracing::warn!(
            still = ?still,
            "re-sealing pass done, but a replica has sealed with these keys lately (one still \
             on the old configuration): they stay in PII_KEYS until a pass begun after every \
             replica moved on"
        );
    } else if done.failed == 0 {
        tracing::info!(
            retiring = ?retiring.ids,
            to = cipher.current_key_id(),
            resealed = done.resealed,
            "re-sealing pass done: no value left under the retiring keys; they may leave PII_KEYS"
        );
    } else {
        tracing::warn!(
            retiring = ?retiring.ids,
            to = cipher.current_key_id(),
            resealed = done.resealed,
            failed = done.failed,
            "re-sealing pass done: the values that did not open (logged above) are left as \
             they are, no key opens them; the retiring keys may leave PII_KEYS"
        );
    }
    Ok(done)
}

fn log(table: &str, column: &str, cipher: &PiiCipher, retiring: &Retiring, d: Resealed) {
    if d != Resealed::default() {
        tracing::info!(
            table,
            column,
            from = ?retiring.ids,
            to = cipher.current_key_id(),
            resealed = d.resealed,
            failed = d.failed,
            "re-sealed personal data"
        );
    }
}

async fn reseal_column(
    pool: &PgPool,
    cipher: &PiiCipher,
    retiring: &Retiring,
    c: &SealedColumn,
    stop: &Shutdown,
) -> Result<Resealed, sqlx::Error> {
    let mut after = Uuid::nil();
    let mut done = Resealed::default();
    while !stop.is_triggered() {
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(c.select)
            .bind(after)
            .bind(&retiring.headers)
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
        let Some(&(last, _)) = rows.last() else {
            break;
        };
        after = last;
        let changed =
            cipher.reseal_rows(c.label, &rows, |id| pii::context(c.label, *id), &mut done);
        if changed.is_empty() {
            continue;
        }
        let updated = sqlx::query(c.update)
            .bind(changed.iter().map(|(id, _, _)| **id).collect::<Vec<_>>())
            .bind(changed.iter().map(|(_, old, _)| *old).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|(_, _, new)| new.as_slice())
                    .collect::<Vec<_>>(),
            )
            .execute(pool)
            .await?;
        done.resealed += updated.rows_affected();
    }
    Ok(done)
}

/// Runs a pass now and then every `every`, until `shutdown`.
pub async fn run_every(
    pool: PgPool,
    cipher: PiiCipher,
    retiring: Retiring,
    every: Duration,
    mut shutdown: Shutdown,
) {
    loop {
        let mut wait = every;
        match pass(&pool, &cipher, &retiring, &shutdown).await {
            // A key a replica sealed with lately (this one's predecessor, just restarted) is
            // retired by a pass begun once that is quiet: run it then, not a period later.
            Ok(_) => match fupin_platform::db::keys_quiet_in(&pool, &retiring.ids).await {
                Ok(Some(quiet)) => wait = wait.min(quiet),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the retiring keys' state"),
            },
            Err(e) => tracing::warn!(error = %e, "re-sealing pass failed; trying again next time"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Says every [`fupin_platform::db::KEY_HEARTBEAT`] which key this replica seals with, until
/// `shutdown` (a failure is logged and tried again at the next beat).
pub async fn key_heartbeat(pool: PgPool, cipher: PiiCipher, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(fupin_platform::db::KEY_HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = fupin_platform::db::key_heartbeat(&pool, &cipher).await {
                    tracing::warn!(error = %e, "could not say which key this replica seals with");
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}

/// Keys the request fingerprints an earlier intake stored unkeyed
/// ([`idempotency::key_request_hashes`], R-CR-11): at start beside the service, then every
/// `every` (older replicas of a rolling upgrade still write unkeyed ones; a pass that finds
/// none reads an empty partial index), a minute after a failure (the database away).
pub async fn key_fingerprints(
    pool: PgPool,
    cipher: PiiCipher,
    every: Duration,
    mut shutdown: Shutdown,
) {
    loop {
        let wait = match idempotency::key_request_hashes(&pool, &cipher, BATCH, &shutdown).await {
            Ok(0) => every,
            Ok(keyed) => {
                tracing::info!(keyed, "keyed the request fingerprints stored unkeyed");
                every
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "keying the stored request fingerprints failed; trying again in a minute"
                );
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
    }
}
