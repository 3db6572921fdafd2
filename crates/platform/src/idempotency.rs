//! Idempotent writes keyed by the client's request id (R-IN-8 shape).
//!
//! The key row is inserted first in the write's own transaction. A concurrent retry with the
//! same id blocks on the primary key until the first transaction ends: if it committed, the
//! retry finds the stored response and returns it; if it rolled back (the write failed and
//! changed nothing), the retry proceeds as a fresh write. So the effect happens at most once
//! and every retry sees the first result.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

use crate::{Caller, error::ServiceError};

/// Identifies one client write: who, which RPC, which request id.
#[derive(Clone, Debug)]
pub struct RequestKey {
    pub caller: String,
    pub method: &'static str,
    pub request_id: String,
    pub request_hash: Vec<u8>,
}

impl RequestKey {
    /// Validates the request id and fingerprints the request so a reused id with different
    /// content is refused instead of silently returning an unrelated result.
    pub fn new<M: Message>(
        caller: &Caller,
        method: &'static str,
        request_id: &str,
        request: &M,
    ) -> Result<Self, ServiceError> {
        let id = request_id.trim();
        if id.is_empty() {
            return Err(ServiceError::invalid(
                "request_id",
                "R-IN-8",
                "required on every write",
            ));
        }
        if id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ServiceError::invalid(
                "request_id",
                "R-IN-8",
                "at most 128 printable ASCII characters",
            ));
        }
        Ok(Self {
            caller: caller.subject.clone(),
            method,
            request_id: id.to_owned(),
            request_hash: Sha256::digest(request.encode_to_vec()).to_vec(),
        })
    }
}

pub enum Claim<R> {
    /// First time: do the work in this transaction, then call [`complete`].
    Fresh(Transaction<'static, Postgres>),
    /// A retry: the stored first response.
    Replay(R),
}

pub async fn claim<R: Message + Default>(
    pool: &PgPool,
    key: &RequestKey,
) -> Result<Claim<R>, ServiceError> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        r#"insert into idempotency_keys (caller, method, request_id, request_hash)
           values ($1, $2, $3, $4) on conflict do nothing"#,
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .bind(&key.request_hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh(tx));
    }
    tx.rollback().await?;
    Ok(Claim::Replay(replay(pool, key).await?))
}

/// Whether each of `keys` is already taken, in order (one round trip for any number).
pub async fn taken(pool: &PgPool, keys: &[&RequestKey]) -> Result<Vec<bool>, ServiceError> {
    let callers: Vec<&str> = keys.iter().map(|k| k.caller.as_str()).collect();
    let methods: Vec<&str> = keys.iter().map(|k| k.method).collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.request_id.as_str()).collect();
    Ok(sqlx::query_scalar(
        r#"select exists (select 1 from idempotency_keys k
                          where k.caller = q.caller and k.method = q.method
                            and k.request_id = q.request_id)
           from unnest($1::text[], $2::text[], $3::text[]) with ordinality as q(caller, method, request_id, ord)
           order by q.ord"#,
    )
    .bind(callers)
    .bind(methods)
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// The stored first response to `key` (after a write found the key taken). A reused id with a
/// different request is refused.
pub async fn replay<R: Message + Default>(
    pool: &PgPool,
    key: &RequestKey,
) -> Result<R, ServiceError> {
    let (hash, response): (Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
        r#"select request_hash, response from idempotency_keys
           where caller = $1 and method = $2 and request_id = $3"#,
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .fetch_one(pool)
    .await?;
    if hash != key.request_hash {
        return Err(ServiceError::invalid(
            "request_id",
            "R-IN-8",
            "already used for a different request",
        ));
    }
    let bytes =
        response.ok_or_else(|| ServiceError::Conflict("request still in progress".into()))?;
    R::decode(bytes.as_slice()).map_err(|e| ServiceError::Internal(e.into()))
}

/// Stores the response with the key and commits the write.
pub async fn complete<R: Message>(
    mut tx: Transaction<'static, Postgres>,
    key: &RequestKey,
    response: &R,
) -> Result<(), ServiceError> {
    sqlx::query(
        r#"update idempotency_keys set response = $4
           where caller = $1 and method = $2 and request_id = $3"#,
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .bind(response.encode_to_vec())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
