//! Idempotent writes keyed by the client's request id (R-IN-8 shape).
//!
//! The key row is inserted first in the write's own transaction. A concurrent retry with the
//! same id blocks on the primary key until the first transaction ends: if it committed, the
//! retry finds the stored response and returns it; if it rolled back (the write failed and
//! changed nothing), the retry proceeds as a fresh write. So the effect happens at most once
//! and every retry sees the first result.
//!
//! A write refused by a rule ([`ServiceError::Refused`]) is a first result as well: [`settle`]
//! undoes what the attempt wrote back to the claim (a savepoint) and keeps the refusal on the
//! key row in the same transaction, so a concurrent retry waiting on the key sees the refusal,
//! never a free key, and gets the same refusal even after the facts behind it changed (so is
//! a denial by the object's state, and an object hidden from the caller by its state). Its code
//! is kept in `refused_code` and its message in `response`, sealed like a response. Other
//! failures (bad input, conflicts, outages, reference data not yet deployed) keep nothing: the
//! attempt rolls back whole, and a retry goes again.
//!
//! Responses may show personal data (R-CR-11), so a key made [`RequestKey::sealed_with`] a
//! [`PiiCipher`] stores its response sealed, bound to the key's caller, method and request id.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

use crate::{Caller, PiiCipher, error::ServiceError, pii::Resealed};

/// Marks where an attempt's own writes start, after its claim on the key, and goes back there.
const ATTEMPT: &str = "savepoint fupin_attempt";
const UNDO_ATTEMPT: &str = "rollback to savepoint fupin_attempt";

/// Identifies one client write: who, which RPC, which request id.
#[derive(Clone, Debug)]
pub struct RequestKey {
    pub caller: String,
    pub method: &'static str,
    pub request_id: String,
    /// What is stored in `idempotency_keys.request_hash`: the request's fingerprint, keyed
    /// (`KEYED`) once [`Self::sealed_with`] a cipher.
    pub request_hash: Vec<u8>,
    /// Other fingerprints that stand for this same request in keys stored by earlier versions,
    /// unkeyed:
    /// - the request alone, before fingerprints covered the caller's scope;
    /// - the request as sent, when its id had surrounding spaces, before ids were trimmed for
    ///   the fingerprint too;
    /// - once sealed, this request's own unkeyed fingerprint, before fingerprints were keyed
    ///   (until [`key_request_hashes`] has keyed it).
    ///
    /// Their keyed forms match too; they are computed only when a stored key is compared
    /// (a retry), not for every write.
    earlier: Vec<Vec<u8>>,
    /// Seals the stored response; None stores it as encoded.
    pub sealer: Option<PiiCipher>,
}

/// What a request id's first result is bound to: the request, and the role, area and bank the
/// caller acted with. A token of the same subject for another area or role reusing the id is
/// refused as a different request (R-IN-8) instead of being replayed a result its scope may not
/// see (R-CR-11).
fn fingerprint(caller: &Caller, encoded: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [
        caller.role.as_str(),
        caller.area.as_str(),
        caller.bank_id.as_deref().unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(encoded);
    h.finalize().to_vec()
}

/// The first byte of a keyed fingerprint, which is one byte longer than an unkeyed one.
const KEYED: u8 = 1;

/// A fingerprint (an unkeyed SHA-256) keyed with the index key of `cipher`: what a service that
/// seals personal data stores. The request holds the applicant's resident id, name and phone in
/// the clear, and everything else about it is in readable columns, so an unkeyed hash let anyone
/// who can read the table find the resident id by trying the few thousand birth dates (R-CR-11).
/// The index key is never rotated, so the keyed form of a request stays the same.
fn keyed(cipher: &PiiCipher, unkeyed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.push(KEYED);
    out.extend_from_slice(&cipher.blind_index("idempotency_keys.request_hash", unkeyed));
    out
}

/// Keys the fingerprints stored unkeyed by earlier versions (`keyed`), `batch` rows at a time
/// in key order, until none is left or `stop`; returns how many it keyed. A key replays for its
/// request in either form meanwhile, so this may run beside writes; an older replica, during a
/// rolling upgrade, refuses a retry of a key already keyed as a different request.
pub async fn key_request_hashes(
    pool: &PgPool,
    cipher: &PiiCipher,
    batch: i64,
    stop: &crate::shutdown::Shutdown,
) -> Result<u64, sqlx::Error> {
    let mut after = (String::new(), String::new(), String::new());
    let mut done = 0;
    while !stop.is_triggered() {
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
            r#"select caller, method, request_id, request_hash from idempotency_keys
               where (caller, method, request_id) > ($1, $2, $3) and length(request_hash) = 32
               order by caller, method, request_id
               limit $4"#,
        )
        .bind(&after.0)
        .bind(&after.1)
        .bind(&after.2)
        .bind(batch)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1.clone(), last.2.clone());
        let updated = sqlx::query(
            r#"update idempotency_keys k set request_hash = u.new
               from unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])
                 as u(caller, method, request_id, old, new)
               where k.caller = u.caller and k.method = u.method
                 and k.request_id = u.request_id and k.request_hash = u.old"#,
        )
        .bind(rows.iter().map(|r| &r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.2).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.3).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| keyed(cipher, &r.3)).collect::<Vec<_>>())
        .execute(pool)
        .await?;
        done += updated.rows_affected();
    }
    Ok(done)
}

/// The encoding of a request whose id (`raw`, its field 1, encoded first) had surrounding
/// spaces, with the id trimmed (`id`), so that " r-1 " and "r-1" are the same request (R-IN-8);
/// None when the id needs no trimming or the encoding does not start with it (then the request
/// is fingerprinted as sent).
fn with_trimmed_id(encoded: &[u8], raw: &str, id: &str) -> Option<Vec<u8>> {
    if raw == id {
        return None;
    }
    let field = |value: &str| {
        let mut record = Vec::with_capacity(value.len() + 3);
        prost::encoding::string::encode(1, &value.to_owned(), &mut record);
        record
    };
    let rest = encoded.strip_prefix(field(raw).as_slice())?;
    let mut out = field(id);
    out.extend_from_slice(rest);
    Some(out)
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
                "at most 128 printable ASCII characters, without spaces inside",
            ));
        }
        let encoded = request.encode_to_vec();
        let trimmed = with_trimmed_id(&encoded, request_id, id);
        let mut earlier = vec![Sha256::digest(&encoded).to_vec()];
        let request_hash = match &trimmed {
            Some(t) => {
                earlier.push(fingerprint(caller, &encoded));
                fingerprint(caller, t)
            }
            None => fingerprint(caller, &encoded),
        };
        Ok(Self {
            caller: caller.subject.clone(),
            method,
            request_id: id.to_owned(),
            request_hash,
            earlier,
            sealer: None,
        })
    }

    /// Whether `hash`, stored with this key's id, fingerprints this same request.
    fn same_request(&self, hash: &[u8]) -> bool {
        hash == self.request_hash
            || self.earlier.iter().any(|e| e == hash)
            || (hash.first() == Some(&KEYED)
                && self
                    .sealer
                    .as_ref()
                    .is_some_and(|c| self.earlier.iter().any(|e| keyed(c, e) == hash)))
    }

    /// Stores this key's response sealed with `cipher` (responses that may show personal data),
    /// and its fingerprint keyed with the cipher's index key (see `keyed`).
    pub fn sealed_with(mut self, cipher: &PiiCipher) -> Self {
        if self.sealer.is_none() {
            let unkeyed = std::mem::take(&mut self.request_hash);
            self.request_hash = keyed(cipher, &unkeyed);
            self.earlier.push(unkeyed);
        }
        self.sealer = Some(cipher.clone());
        self
    }

    /// The response as stored in `idempotency_keys.response`: encoded, sealed if the key says so.
    pub fn stored_response<R: Message>(&self, response: &R) -> Vec<u8> {
        self.stored(response.encode_to_vec())
    }

    /// `bytes` as stored in `idempotency_keys.response`: sealed if the key says so.
    fn stored(&self, bytes: Vec<u8>) -> Vec<u8> {
        match &self.sealer {
            Some(cipher) => cipher.seal(&self.context(), &bytes),
            None => bytes,
        }
    }

    fn open_response(&self, stored: Vec<u8>) -> Result<Vec<u8>, ServiceError> {
        match &self.sealer {
            Some(cipher) => cipher.open(&self.context(), &stored).map_err(|e| {
                ServiceError::Internal(anyhow::Error::new(e).context("stored response"))
            }),
            None => Ok(stored),
        }
    }

    /// What a sealed response is bound to: this key's row.
    fn context(&self) -> Vec<u8> {
        response_context(&self.caller, self.method, &self.request_id)
    }
}

fn response_context(caller: &str, method: &str, request_id: &str) -> Vec<u8> {
    [
        b"idempotency_keys.response".as_slice(),
        caller.as_bytes(),
        method.as_bytes(),
        request_id.as_bytes(),
    ]
    .join(&0u8)
}

/// A stored response's key: caller, method, request id.
type ResponseKey = (String, String, String);

/// Re-seals, with the current key, every stored response sealed with a key whose header is
/// among `retiring` (see [`PiiCipher::header_of`]), `batch` rows at a time in key order, until
/// done or `stop`. For a service whose keys are all [`RequestKey::sealed_with`] its cipher. A
/// row changed meanwhile (a response stored by a concurrent write) is left to the next pass.
pub async fn reseal_responses(
    pool: &PgPool,
    cipher: &PiiCipher,
    retiring: &[Vec<u8>],
    batch: i64,
    stop: &crate::shutdown::Shutdown,
) -> Result<Resealed, sqlx::Error> {
    let mut after = (String::new(), String::new(), String::new());
    let mut done = Resealed::default();
    while !stop.is_triggered() {
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
            r#"select caller, method, request_id, response from idempotency_keys
               where (caller, method, request_id) > ($1, $2, $3) and response is not null
                 and exists (select 1 from unnest($4::bytea[]) as h(header)
                             where substring(response from 1 for length(h.header)) = h.header)
               order by caller, method, request_id
               limit $5"#,
        )
        .bind(&after.0)
        .bind(&after.1)
        .bind(&after.2)
        .bind(retiring)
        .bind(batch)
        .fetch_all(pool)
        .await?;
        let rows: Vec<(ResponseKey, Vec<u8>)> = rows
            .into_iter()
            .map(|(caller, method, request_id, response)| ((caller, method, request_id), response))
            .collect();
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = last.clone();
        let changed = cipher.reseal_rows(
            "idempotency_keys.response",
            &rows,
            |(caller, method, request_id)| response_context(caller, method, request_id),
            &mut done,
        );
        if changed.is_empty() {
            continue;
        }
        let updated = sqlx::query(
            r#"update idempotency_keys k set response = u.new
               from unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])
                 as u(caller, method, request_id, old, new)
               where k.caller = u.caller and k.method = u.method
                 and k.request_id = u.request_id and k.response = u.old"#,
        )
        .bind(changed.iter().map(|(k, _, _)| &k.0).collect::<Vec<_>>())
        .bind(changed.iter().map(|(k, _, _)| &k.1).collect::<Vec<_>>())
        .bind(changed.iter().map(|(k, _, _)| &k.2).collect::<Vec<_>>())
        .bind(changed.iter().map(|(_, old, _)| old).collect::<Vec<_>>())
        .bind(changed.iter().map(|(_, _, new)| new).collect::<Vec<_>>())
        .execute(pool)
        .await?;
        done.resealed += updated.rows_affected();
    }
    Ok(done)
}

/// What [`claim`] found.
pub enum Claim<R> {
    /// First time: do the work in this transaction, then end it with [`settle`], and only so:
    /// committed any other way, the key would have no result and every retry would be told
    /// the request is still in progress.
    Fresh(Transaction<'static, Postgres>),
    /// A retry: the stored first response.
    Replay(R),
}

/// Claims `key` for a write, in a new transaction, or finds its first result. A concurrent
/// attempt with the same key waits here until the first one ends (see the module docs).
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
        sqlx::query(ATTEMPT).execute(&mut *tx).await?;
        return Ok(Claim::Fresh(tx));
    }
    tx.rollback().await?;
    Ok(Claim::Replay(replay(pool, key).await?))
}

/// The primary-key columns of `keys`, to bind as arrays.
fn key_columns<'k>(
    keys: impl Iterator<Item = &'k RequestKey> + Clone,
) -> (Vec<&'k str>, Vec<&'k str>, Vec<&'k str>) {
    (
        keys.clone().map(|k| k.caller.as_str()).collect(),
        keys.clone().map(|k| k.method).collect(),
        keys.map(|k| k.request_id.as_str()).collect(),
    )
}

/// Whether each of `keys` is already taken, in order (one round trip for any number).
pub async fn taken<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    keys: &[&RequestKey],
) -> Result<Vec<bool>, ServiceError> {
    let (callers, methods, ids) = key_columns(keys.iter().copied());
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
    .fetch_all(conn)
    .await?)
}

/// The stored first result of `key` (after a write found the key taken): its response, or the
/// refusal it got. A reused id with a different request is refused.
pub async fn replay<R: Message + Default>(
    pool: &PgPool,
    key: &RequestKey,
) -> Result<R, ServiceError> {
    type Row = (Vec<u8>, Option<Vec<u8>>, Option<i32>);
    let (hash, response, refused_code): Row = sqlx::query_as(
        r#"select request_hash, response, refused_code from idempotency_keys
           where caller = $1 and method = $2 and request_id = $3"#,
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .fetch_one(pool)
    .await?;
    if !key.same_request(&hash) {
        return Err(ServiceError::invalid(
            "request_id",
            "R-IN-8",
            "already used for a different request",
        ));
    }
    let stored =
        response.ok_or_else(|| ServiceError::Conflict("request still in progress".into()))?;
    let bytes = key.open_response(stored)?;
    if let Some(code) = refused_code {
        return Err(ServiceError::Recorded {
            code: tonic::Code::from(code),
            message: String::from_utf8(bytes)
                .map_err(|e| ServiceError::Internal(anyhow::Error::new(e).context("refusal")))?,
        });
    }
    R::decode(bytes.as_slice()).map_err(|e| ServiceError::Internal(e.into()))
}

/// Whether a failed write's error is kept as the request id's first result: refusals by a rule,
/// and denials and not-founds that depend on the object's state.
pub fn is_kept(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Refused(_)
            | ServiceError::RefusedUnderPolicy { .. }
            | ServiceError::DeniedInState(_)
            | ServiceError::NotFoundInState { .. }
    )
}

/// Keeps the refusals among `refused` with their keys, in one statement; says, in order,
/// which were kept. One not kept (its key was taken: a concurrent attempt with the same id
/// finished first) should be answered with that attempt's result ([`replay`]). Errors that are
/// not [`is_kept`] are passed over and reported as not kept. Rows are written in key order, as
/// every batch of keys is, so two writers cannot deadlock on each other's keys.
pub async fn keep_refusals<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    refused: &[(&RequestKey, &ServiceError)],
) -> Result<Vec<bool>, ServiceError> {
    let mut kept: Vec<&(&RequestKey, &ServiceError)> =
        refused.iter().filter(|(_, e)| is_kept(e)).collect();
    kept.sort_by(|(a, _), (b, _)| {
        (&a.caller, a.method, &a.request_id).cmp(&(&b.caller, b.method, &b.request_id))
    });
    let (callers, methods, ids) = key_columns(kept.iter().map(|(k, _)| *k));
    let hashes: Vec<&[u8]> = kept
        .iter()
        .map(|(k, _)| k.request_hash.as_slice())
        .collect();
    let codes: Vec<i32> = kept.iter().map(|(_, e)| e.code() as i32).collect();
    let messages: Vec<Vec<u8>> = kept
        .iter()
        .map(|(k, e)| k.stored(e.to_string().into_bytes()))
        .collect();
    let inserted: Vec<(String, String, String)> = if kept.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            r#"insert into idempotency_keys
                 (caller, method, request_id, request_hash, refused_code, response)
               select * from unnest($1::text[], $2::text[], $3::text[], $4::bytea[],
                                    $5::int4[], $6::bytea[])
               on conflict do nothing
               returning caller, method, request_id"#,
        )
        .bind(callers)
        .bind(methods)
        .bind(ids)
        .bind(hashes)
        .bind(codes)
        .bind(messages)
        .fetch_all(conn)
        .await?
    };
    Ok(refused
        .iter()
        .map(|(k, e)| {
            is_kept(e)
                && inserted
                    .iter()
                    .any(|(c, m, r)| *c == k.caller && m == k.method && *r == k.request_id)
        })
        .collect())
}

/// Ends a claimed write ([`Claim::Fresh`]) with its result, which becomes the request id's
/// first result:
/// - a response is stored with the key and committed with the write;
/// - a refusal by a rule ([`is_kept`]) undoes the attempt's writes back to its claim and is
///   kept on the key in the same transaction, so the key is never free in between;
/// - anything else rolls the whole attempt back, key included.
///
/// Should keeping a refusal fail, nothing is kept and that failure is returned instead of the
/// refusal (`UNAVAILABLE` when the database was out of reach): an answer that looks final must
/// be the one a retry gets, and a retry is decided again.
pub async fn settle<R: Message>(
    mut tx: Transaction<'static, Postgres>,
    key: &RequestKey,
    result: Result<R, ServiceError>,
) -> Result<R, ServiceError> {
    match result {
        Ok(response) => {
            store(&mut tx, key, None, key.stored_response(&response)).await?;
            tx.commit().await?;
            Ok(response)
        }
        Err(e) if is_kept(&e) => {
            let kept = async {
                sqlx::query(UNDO_ATTEMPT).execute(&mut *tx).await?;
                let message = key.stored(e.to_string().into_bytes());
                store(&mut tx, key, Some(e.code() as i32), message).await?;
                tx.commit().await
            }
            .await;
            if let Err(keep) = kept {
                tracing::warn!(error = %keep, request_id = %key.request_id, refusal = %e,
                    "a refusal could not be kept with its request id");
                return Err(keep.into());
            }
            Err(e)
        }
        Err(e) => {
            // Before answering, so that a retry sent on the answer finds the key free.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed write");
            }
            Err(e)
        }
    }
}

/// Writes the first result on a claimed key.
async fn store(
    conn: &mut sqlx::PgConnection,
    key: &RequestKey,
    refused_code: Option<i32>,
    stored: Vec<u8>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"update idempotency_keys set response = $4, refused_code = $5
           where caller = $1 and method = $2 and request_id = $3"#,
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .bind(stored)
    .bind(refused_code)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use fupin_kernel::AreaCode;
    use fupin_proto::admin::v1::TimeReply;

    use super::*;
    use crate::Role;

    fn key(request_id: &str) -> RequestKey {
        let caller = Caller {
            subject: "village-staff-1".into(),
            role: Role::VillageStaff,
            area: AreaCode::parse("410311100201").unwrap(),
            bank_id: None,
        };
        RequestKey::new(&caller, "Write", request_id, &TimeReply::default()).unwrap()
    }

    // R-IN-8 across the upgrade that scoped fingerprints: a key stored with the request's hash
    // alone still matches its retry, while new keys carry the caller's role, area and bank.
    #[test]
    fn fingerprints_cover_the_scope_and_still_know_the_old_form() {
        let k = key("r-1");
        let old = Sha256::digest(TimeReply::default().encode_to_vec()).to_vec();
        assert!(k.same_request(&old));
        assert_ne!(k.request_hash, old);
        let elsewhere = Caller {
            subject: "village-staff-1".into(),
            role: Role::VillageStaff,
            area: AreaCode::parse("410311100202").unwrap(),
            bank_id: None,
        };
        let moved = RequestKey::new(&elsewhere, "Write", "r-1", &TimeReply::default()).unwrap();
        assert_ne!(moved.request_hash, k.request_hash);
    }

    // R-IN-8: request ids are trimmed, so " r-1 " and "r-1" with the same body are the same
    // request (the first used to be fingerprinted with its spaces and the second refused as a
    // different request); a key stored with the spaces still matches a retry as it was sent.
    #[test]
    fn surrounding_spaces_of_an_id_do_not_make_another_request() {
        use fupin_proto::intake::v1::ReviewApplicationRequest;
        let caller = Caller {
            subject: "village-staff-1".into(),
            role: Role::VillageStaff,
            area: AreaCode::parse("410311100201").unwrap(),
            bank_id: None,
        };
        let req = |id: &str, reason: &str| ReviewApplicationRequest {
            request_id: id.into(),
            application_id: "01a22beb-0000-7000-8000-000000000000".into(),
            decision: 2,
            reason: reason.into(),
            expected_version: 0,
        };
        let make = |r: &ReviewApplicationRequest| {
            RequestKey::new(&caller, "ReviewApplication", &r.request_id, r).unwrap()
        };
        let plain = make(&req("r-1", "不符合"));
        for spaced in [" r-1 ", "r-1 ", "\tr-1"] {
            let k = make(&req(spaced, "不符合"));
            assert_eq!(k.request_id, "r-1");
            assert_eq!(k.request_hash, plain.request_hash, "{spaced:?}");
            assert!(plain.same_request(&k.request_hash));
            // stored as sent by an earlier version: still the same request
            let as_sent = fingerprint(&caller, &req(spaced, "不符合").encode_to_vec());
            assert!(k.same_request(&as_sent), "{spaced:?}");
            // another body under the same id is still another request
            let other = make(&req(spaced, "材料不全"));
            assert!(!plain.same_request(&other.request_hash));
            assert!(!other.same_request(&plain.request_hash));
        }
    }

    // R-CR-11: a service that seals personal data stores the request's fingerprint keyed, so
    // the table alone cannot be searched for the request (and its resident id) by hashing
    // guesses; keys stored unkeyed, in any earlier form, still replay for the same request,
    // before and after `key_request_hashes` keyed them.
    #[test]
    fn a_sealed_key_stores_a_keyed_fingerprint_and_knows_the_unkeyed_ones() {
        let cipher = PiiCipher::development();
        let plain = key("r-1");
        let sealed = key("r-1").sealed_with(&cipher);
        assert_eq!(sealed.request_hash.len(), 33);
        assert_eq!(sealed.request_hash[0], KEYED);
        assert_eq!(sealed.request_hash, keyed(&cipher, &plain.request_hash));
        let other_cipher = PiiCipher::from_config(
            "k9:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=",
        )
        .unwrap();
        assert_ne!(
            sealed.request_hash,
            key("r-1").sealed_with(&other_cipher).request_hash,
            "the fingerprint depends on the index key"
        );
        let legacy = Sha256::digest(TimeReply::default().encode_to_vec()).to_vec();
        for stored in [
            plain.request_hash.clone(),
            legacy.clone(),
            keyed(&cipher, &legacy),
            sealed.request_hash.clone(),
        ] {
            assert!(sealed.same_request(&stored));
        }
        // Sealing twice changes nothing.
        assert_eq!(
            sealed.clone().sealed_with(&cipher).request_hash,
            sealed.request_hash
        );
        let other = RequestKey::new(
            &plain_caller(),
            "Write",
            "r-1",
            &TimeReply {
                now: "x".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!sealed.same_request(&other.request_hash));
        assert!(!sealed.same_request(&other.sealed_with(&cipher).request_hash));
    }

    fn plain_caller() -> Caller {
        Caller {
            subject: "village-staff-1".into(),
            role: Role::VillageStaff,
            area: AreaCode::parse("410311100201").unwrap(),
            bank_id: None,
        }
    }

    #[test]
    fn a_sealed_key_stores_its_response_sealed_and_bound_to_the_key() {
        let reply = TimeReply {
            now: "王建国 13800138000".into(),
            ..Default::default()
        };
        let plain = key("r-1").stored_response(&reply);
        assert_eq!(plain, reply.encode_to_vec());

        let cipher = PiiCipher::development();
        let sealed_key = key("r-1").sealed_with(&cipher);
        let stored = sealed_key.stored_response(&reply);
        assert!(!stored.windows(11).any(|w| w == b"13800138000"));
        assert_eq!(
            sealed_key.open_response(stored.clone()).unwrap(),
            reply.encode_to_vec()
        );
        // Another key's row does not open it.
        assert!(
            key("r-2")
                .sealed_with(&cipher)
                .open_response(stored)
                .is_err()
        );
    }
}
