//! PostgreSQL pool and embedded migrations, run at start-up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgDatabaseError, PgPoolOptions, PgSeverity},
};

/// Platform tables (outbox, inbox, idempotency keys), versions 1..999.
pub static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Bounds on every session of a service's pool, as startup parameters (a session may lower
/// or raise them for itself, as the submission writer does):
/// - `idle_in_transaction_session_timeout`: a replica that hangs (stopped, swapping, cut off)
///   inside a transaction loses its session, and the locks it held go with it, instead of
///   holding up the other replicas' calls and the read model's consumers for as long as it
///   hangs;
/// - `lock_timeout`: a call that waits for a row another session holds gives up (55P03:
///   `UNAVAILABLE` for a call, the event held for a consumer) rather than hold a pooled
///   connection until the pool is empty.
///
/// No pool-wide `statement_timeout`: maintenance walks whole tables (re-sealing, keying
/// fingerprints) and may rightly take longer on a large one; the submission writer sets its
/// own. Migrations run on a connection of their own without these bounds: a migration may wait
/// for another replica's (an advisory lock). They are startup parameters: a connection pooler
/// in front of PostgreSQL must pass `options` on (PgBouncer does not), and they take the place
/// of the role's own settings of the same names.
pub const SESSION_LIMITS: [(&str, &str); 2] = [
    ("idle_in_transaction_session_timeout", "30s"),
    ("lock_timeout", "10s"),
];

/// Connects and applies the platform migrations, then the service's own.
pub async fn connect_and_migrate(
    url: &str,
    max_connections: u32,
    service: &Migrator,
) -> anyhow::Result<PgPool> {
    use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};
    let options: PgConnectOptions = url.parse()?;
    // Bounded like the pool's first connection: a database whose packets are dropped would
    // otherwise hold the start for the system's TCP timeout.
    let mut migrator = tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .map_err(|_| anyhow::anyhow!("no connection within 10 s"))??;
    migrate(&mut migrator, service).await?;
    migrator.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.options(SESSION_LIMITS))
        .await?;
    // Advice only: a server that cannot answer (one older than PostgreSQL 15 has no
    // `datlocprovider`) still starts.
    if let Err(e) = warn_unless_bytewise(&pool).await {
        tracing::warn!(error = %e, "could not check the database's collation");
    }
    Ok(pool)
}

/// SQLSTATEs of a statement the database gave up, though nothing was wrong with it: a
/// serialization failure (40001) or a deadlock (40P01), lost to a concurrent transaction; a
/// lock it could not take in time (55P03); a statement cancelled by its `statement_timeout`
/// (57014, the submission writer's deadline). The same work goes through when tried again.
const GAVE_UP: [&str; 4] = ["40001", "40P01", "55P03", "57014"];

/// The [`GAVE_UP`] codes that a concurrent transaction caused, and that pass once it ends; a
/// statement cancelled (57014) may fail the same way every time (a role's `statement_timeout`
/// the work always exceeds, an operator's `pg_cancel_backend`).
const CONFLICT: [&str; 3] = ["40001", "40P01", "55P03"];

fn sqlstate_in(e: &anyhow::Error, codes: &[&str]) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|d| d.code())
            .is_some_and(|code| codes.contains(&code.as_ref()))
    })
}

/// Whether the database gave `e`'s statement up (`GAVE_UP`): a call answers `UNAVAILABLE`
/// (retry with the same request id).
pub fn is_given_up(e: &anyhow::Error) -> bool {
    sqlstate_in(e, &GAVE_UP)
}

/// Whether `e`'s statement lost to a concurrent transaction (`CONFLICT`): a consumer holds
/// the event and applies it again rather than count it towards the dead letter.
pub fn is_conflict(e: &anyhow::Error) -> bool {
    sqlstate_in(e, &CONFLICT)
}

/// Warns when the database is not collated byte-wise. The services' listings by area filter
/// on a code prefix (`area_code like '410311100%'`), which PostgreSQL serves from an index
/// only under the C (or POSIX) collation; under another (the postgres image's default
/// en_US.utf8) every page reads the table. `deploy/postgres/service-databases.sh` creates the
/// databases collated C, as the tests' server is; one created before that keeps its collation.
async fn warn_unless_bytewise(pool: &PgPool) -> anyhow::Result<()> {
    // `datlocprovider` 'i' is ICU, which compares through ICU whatever `datcollate` says.
    let (name, collation, provider): (String, String, String) = sqlx::query_as(
        "select datname::text, datcollate::text, datlocprovider::text
         from pg_database where datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    if provider != "c" || !is_bytewise(&collation) {
        tracing::warn!(
            database = %name,
            collation = %collation,
            provider = %provider,
            "the database is not collated C: listings by area cannot use their index and read \
             the whole table (README \"With containers\": recreate it collated C)"
        );
    }
    Ok(())
}

/// Whether PostgreSQL compares strings of this collation byte by byte, so that a `LIKE`
/// prefix can use a plain btree index.
fn is_bytewise(collation: &str) -> bool {
    matches!(collation, "C" | "POSIX")
}

/// R-CR-11: the personal-data keys are the ones this database's values were written with. Each
/// key's check value ([`crate::pii::KeyCheck`]) is recorded at the first start that uses it; a
/// start with other material under a recorded key id, or with another blind-index key, is
/// refused naming the variable. A regenerated `.env` would otherwise serve: sealed values
/// failing to open on every read, and every lookup by blind index missing (a household's
/// blacklist entry no longer found while its new rating is).
///
/// A key that has sealed values (it has been current) may leave `PII_KEYS` only once a
/// re-sealing pass has moved them ([`record_keys_retired`]): a start without it before then is
/// refused too, rather than serve `INTERNAL` for every read of those values.
pub async fn verify_pii_keys(pool: &PgPool, cipher: &crate::PiiCipher) -> anyhow::Result<()> {
    use crate::pii::KeyUse;
    let mut tx = pool.begin().await?;
    // Replicas starting at once with a new key: one records it, the others compare with it.
    sqlx::query("lock table pii_key_checks in share row exclusive mode")
        .execute(&mut *tx)
        .await?;
    type Stored = (String, String, Vec<u8>, bool, Option<DateTime<Utc>>);
    let stored: Vec<Stored> = sqlx::query_as(
        "select key_use, key_id, check_value, sealed, retired_at from pii_key_checks",
    )
    .fetch_all(&mut *tx)
    .await?;
    let checks = cipher.key_checks();
    let configured = |id: &str| {
        checks
            .iter()
            .any(|c| c.key_use == KeyUse::Seal && c.key_id == id)
    };
    for (key_use, key_id, _, sealed, retired_at) in &stored {
        if key_use == KeyUse::Seal.as_str()
            && *sealed
            && retired_at.is_none()
            && !configured(key_id)
        {
            anyhow::bail!(
                "PII_KEYS: key {key_id:?} has sealed values of this database and no re-sealing \
                 pass has finished moving them: without it they would not open. Put it back in \
                 PII_KEYS, name it in PII_RETIRING_KEYS, and remove it once intake logs \
                 \"re-sealing pass done\""
            );
        }
    }
    // A database whose keys are recorded for the first time: any configured key may have
    // sealed values.
    let first = stored.is_empty();
    for check in checks {
        let recorded = stored
            .iter()
            .find(|(u, id, ..)| u == check.key_use.as_str() && *id == check.key_id);
        match recorded {
            Some((_, _, value, ..)) if value.as_slice() == check.value.as_slice() => {}
            Some(_) => match check.key_use {
                KeyUse::Index => anyhow::bail!(
                    "PII_INDEX_KEY is not the key this database's blind index was built with \
                     (its check value differs from the one recorded at its first use): every \
                     lookup by resident ID, blacklist entries included, would miss. Restore the \
                     key from the backup of the configuration; changing it needs every index \
                     recomputed, which no tool does yet"
                ),
                KeyUse::Seal => anyhow::bail!(
                    "PII_KEYS: key {:?} is not the key that sealed this database's values under \
                     that id (its check value differs from the one recorded at its first use): \
                     they would not open. Restore its material, or give a new key a new id",
                    check.key_id
                ),
            },
            None => {
                sqlx::query(
                    "insert into pii_key_checks (key_use, key_id, check_value, sealed) \
                     values ($1, $2, $3, $4)",
                )
                .bind(check.key_use.as_str())
                .bind(&check.key_id)
                .bind(check.value.as_slice())
                .bind(first && check.key_use == KeyUse::Seal)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    // The current key seals from now on (again, if it had been retired).
    key_heartbeat(&mut *tx, cipher).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether this database has recorded its personal-data keys ([`verify_pii_keys`]); before
/// the first recording a service checks the keys against what the database holds.
pub async fn pii_keys_recorded(pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from pii_key_checks)")
        .fetch_one(pool)
        .await
}

/// How often each replica says which key it seals with ([`key_heartbeat`]).
pub const KEY_HEARTBEAT: Duration = Duration::from_secs(60);

/// How long after a replica last sealed with a key a pass must have begun to retire it: three
/// heartbeats, so that a replica still sealing with it has said so since.
const KEY_QUIET: Duration = Duration::from_secs(180);

/// Says, for this replica, that its current key still seals: until no replica has said so for
/// a while, no pass retires it ([`record_keys_retired`]).
pub async fn key_heartbeat<'c>(
    db: impl sqlx::PgExecutor<'c>,
    cipher: &crate::PiiCipher,
) -> sqlx::Result<()> {
    sqlx::query(
        "update pii_key_checks set last_current_at = now(), sealed = true, retired_at = null \
         where key_use = 'seal' and key_id = $1",
    )
    .bind(cipher.current_key_id())
    .execute(db)
    .await?;
    Ok(())
}

/// How long until a pass could retire the keys `ids` that are not retired yet because a
/// replica sealed with one of them lately ([`record_keys_retired`]): the wait for the newest
/// such beat to be quiet long enough, with a margin. None when none waits.
pub async fn keys_quiet_in(pool: &PgPool, ids: &[String]) -> sqlx::Result<Option<Duration>> {
    let wait: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from max(last_current_at) + $2 - now())::float8 \
         from pii_key_checks \
         where key_use = 'seal' and key_id = any($1) and retired_at is null",
    )
    .bind(ids)
    .bind(KEY_QUIET)
    .fetch_one(pool)
    .await?;
    Ok(wait.map(|w| Duration::from_secs_f64(w.max(0.0)) + Duration::from_secs(10)))
}

/// The database's clock, for [`record_keys_retired`]'s `pass_began` (the replicas' heartbeats
/// are in its time too).
pub async fn database_now(pool: &PgPool) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar("select now()").fetch_one(pool).await
}

/// Records that a re-sealing pass that began at `pass_began` (database time) finished with no
/// value left under the keys `ids` (values that did not open are left, and logged: no key would
/// open them), so that they may leave `PII_KEYS` ([`verify_pii_keys`]). A key some replica
/// sealed with since shortly before the pass began (a replica still on the old configuration)
/// is not retired: its later values may not have been walked. Returns the ids not retired.
pub async fn record_keys_retired(
    pool: &PgPool,
    ids: &[String],
    pass_began: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    let quiet_since = pass_began
        - chrono::Duration::from_std(KEY_QUIET).expect("a few minutes fit a chrono duration");
    let retired: Vec<String> = sqlx::query_scalar(
        "update pii_key_checks set retired_at = now() \
         where key_use = 'seal' and key_id = any($1) and retired_at is null \
           and (last_current_at is null or last_current_at < $2) \
         returning key_id",
    )
    .bind(ids)
    .bind(quiet_since)
    .fetch_all(pool)
    .await?;
    let still: Vec<String> = sqlx::query_scalar(
        "select key_id from pii_key_checks \
         where key_use = 'seal' and key_id = any($1) and retired_at is null and key_id <> all($2)",
    )
    .bind(ids)
    .bind(&retired)
    .fetch_all(pool)
    .await?;
    Ok(still)
}

pub async fn migrate<'a, A>(db: A, service: &Migrator) -> anyhow::Result<()>
where
    A: sqlx::Acquire<'a, Database = sqlx::Postgres>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let mut conn = db.acquire().await?;
    // Both sets share `_sqlx_migrations`, so each must tolerate the other's rows.
    for set in [&PLATFORM_MIGRATIONS, service] {
        let mut m = Migrator::with_migrations(set.iter().cloned().collect());
        m.set_ignore_missing(true);
        m.run(&mut *conn).await?;
    }
    Ok(())
}

/// SQLSTATEs that say the connection, not the statement, failed: connection exceptions but
/// the protocol violation 08P01 (a client bug fails every time), the server shutting down or
/// not accepting connections yet (57P01-57P03), the database dropped (57P04), a session ended
/// for idling (57P05, 25P03), too many connections (53300).
const CONNECTION_LOST: [&str; 12] = [
    "08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "57P04", "57P05",
    "25P03", "53300",
];

/// What connecting answers (with severity FATAL) while an operator works on the database: not
/// accepting connections (55000, `allow_connections` off), no such database (3D000, during a
/// restore), the role refused (28000, 28P01, during a password change). A statement may raise
/// the same codes as an ERROR (55000 for a sequence or a view in the wrong state): that is the
/// statement's, not an outage.
const REFUSED_AT_CONNECT: [&str; 4] = ["55000", "3D000", "28000", "28P01"];

/// Whether `e` means the database could not be reached, rather than anything about the
/// statement or the event, so that the same work goes through once the database is back (a
/// consumer holds the event, a call is answered `UNAVAILABLE`): no connection from the pool
/// (timed out, closed), I/O, TLS, the connection's worker gone, one of `CONNECTION_LOST`,
/// or one of `REFUSED_AT_CONNECT` answered to connecting. Anything else counts as an
/// attempt: an undecodable payload or a value a handler refuses (dead-lettered at once), a
/// constraint or a cancelled statement (a consumer retries those with backoff, see
/// [`crate::events::consumer::involves_database`]). A serialization failure, a deadlock or a
/// lock timeout is neither: see [`is_conflict`].
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(|e| match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.code().is_some_and(|code| {
                    CONNECTION_LOST.contains(&code.as_ref())
                        || (REFUSED_AT_CONNECT.contains(&code.as_ref())
                            && d.try_downcast_ref::<PgDatabaseError>().is_some_and(|p| {
                                matches!(p.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                            }))
                }),
                _ => false,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::is_bytewise;

    #[test]
    fn only_c_and_posix_serve_a_like_prefix_from_an_index() {
        assert!(is_bytewise("C"));
        assert!(is_bytewise("POSIX"));
        // PostgreSQL 15 treats only those two as byte-wise (its C.UTF-8 provider is 17's).
        for other in ["en_US.utf8", "C.UTF-8", "C.utf8", "zh_CN.UTF-8", ""] {
            assert!(!is_bytewise(other), "{other}");
        }
    }
}
