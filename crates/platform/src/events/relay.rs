//! Publishes outbox rows to JetStream in `seq` order and waits for each ack, so the stream
//! holds each subject's events (an application's, a complaint's: their `ce-subject`) in commit
//! order. Across subjects there is no such promise: a subject's second event in a batch waits
//! for the next round while later rows of other subjects go on. A row is deleted only after its ack (the stream is the record
//! of what was published); a crash between ack and delete republishes it, and JetStream drops
//! the duplicate by `Nats-Msg-Id`. While NATS is down the rows wait and the relay backs off.
//!
//! Wake-ups: the writing service calls [`RelayHandle::wake`] after its commit (in-process, so
//! the hot write path takes no NOTIFY queue lock); any other writer (another replica, a manual
//! fix) may `NOTIFY fupin_outbox`; and the relay polls as a fallback. One relay per database
//! publishes at a time: it holds a session advisory lock, and standbys retry. A leader that
//! cannot publish for [`RelayConfig::leader_stall_timeout`] while rows wait (its NATS out of
//! reach, or refusing it, while another replica's may not be) gives the lock up and stays out
//! for a few poll intervals, so that a standby publishes instead.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use tokio::{sync::Notify, task::JoinHandle};

use super::{EventBus, headers};
use crate::shutdown::Shutdown;

const BATCH: i64 = 256;
const ADVISORY_LOCK_KEY: i64 = 0x6675_7069_6e5f_6f62; // "fupin_ob"

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub poll_interval: Duration,
    pub ack_timeout: Duration,
    pub max_backoff: Duration,
    /// How long the relay waits after a wake-up before reading, to batch a burst of writes.
    pub linger: Duration,
    /// At shutdown, how long the leading relay keeps publishing what is already committed
    /// before it stops: a clean stop leaves nothing for the next start (or a standby) to send.
    pub final_flush: Duration,
    /// How long the leader's session may sit idle before PostgreSQL ends it
    /// (`idle_session_timeout`), and with it the advisory lock: a leader that hangs (stopped,
    /// swapping, cut off from its database) hands over to a standby after this, instead of
    /// holding publication up for as long as it hangs. A working leader uses its session at
    /// least every `poll_interval`, `max_backoff` and batch (sends and acks within twice
    /// `ack_timeout`): it must be well above them.
    pub leader_idle_timeout: Duration,
    /// How long the leader may go on failing to publish (not one event acknowledged by
    /// JetStream while events wait) before it gives up leadership: it releases the lock and
    /// stays out for a few `poll_interval`s (jittered), so that a standby that reaches NATS
    /// takes over. Without it a leader cut off from NATS alone (a partition, a password change
    /// refusing its reconnect, a wrong `NATS_URL`) kept the lock, and the outbox of the whole
    /// database waited, for as long as that lasted. An empty outbox is no failure, and one
    /// batch that gets through starts the count again. Well above twice `ack_timeout` plus
    /// `max_backoff`, so that one failed batch alone never steps down.
    pub leader_stall_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            ack_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            linger: Duration::from_millis(5),
            final_flush: Duration::from_secs(5),
            leader_idle_timeout: Duration::from_secs(30),
            leader_stall_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RelayHandle {
    wake: Arc<Notify>,
}

impl RelayHandle {
    /// Tells the relay that new rows were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: uuid::Uuid,
    subject: String,
    ce_type: String,
    ce_subject: Option<String>,
    payload: Vec<u8>,
    traceparent: Option<String>,
    created_at: DateTime<Utc>,
}

pub fn spawn(
    pool: PgPool,
    bus: EventBus,
    config: RelayConfig,
    shutdown: Shutdown,
) -> (RelayHandle, JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let handle = RelayHandle { wake: wake.clone() };
    let task = tokio::spawn(run(pool, bus, config, wake, shutdown));
    (handle, task)
}

async fn run(
    pool: PgPool,
    bus: EventBus,
    config: RelayConfig,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_triggered() {
        match lead(&pool, &bus, &config, &wake, &mut shutdown).await {
            Ok(Led::Stopped) => return,
            Ok(Led::SteppedDown) => {
                backoff = Duration::from_millis(100);
                // Out of the race for a while: a standby (trying every `poll_interval`) takes
                // the lock meanwhile. Jittered, so that replicas that all fail to publish (NATS
                // down for everyone) do not step down and come back in step.
                tokio::select! {
                    _ = tokio::time::sleep(step_down_pause(&config)) => {}
                    _ = shutdown.wait() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay interrupted; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => return,
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

/// How [`lead`] ended, when not on database trouble.
#[derive(Debug, PartialEq, Eq)]
enum Led {
    /// Shutdown: the relay is done.
    Stopped,
    /// Gave up leadership after failing to publish for `leader_stall_timeout`.
    SteppedDown,
}

/// How long a relay that stepped down stays out of the race for the lock: several of the
/// standbys' poll intervals, so that one of them takes it, plus up to as much again at random.
fn step_down_pause(config: &RelayConfig) -> Duration {
    let base = config.poll_interval * 4;
    base + base.mul_f64(rand::random::<f64>())
}

/// Takes the advisory lock and publishes until shutdown, or until it steps down (see
/// [`RelayConfig::leader_stall_timeout`]). Returns Err on database trouble.
async fn lead(
    pool: &PgPool,
    bus: &EventBus,
    config: &RelayConfig,
    wake: &Notify,
    shutdown: &mut Shutdown,
) -> anyhow::Result<Led> {
    let mut conn = pool.acquire().await?;
    loop {
        let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(ADVISORY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if locked {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.wait() => return Ok(Led::Stopped),
        }
    }
    // The lock lives as long as this session: however `lead` ends (shutdown or an error), close
    // the connection rather than return it to the pool still holding the lock, which would
    // lock out every later relay — a retry here and the standby replicas alike.
    conn.close_on_drop();
    // The relay's queries all have an index path (the primary key on `seq`). A young outbox
    // has stale statistics for up to a minute of heavy writing, and the planner then prefers
    // sequential scans that read every row (and every deleted row not yet vacuumed) per batch.
    sqlx::query("set enable_seqscan = off")
        .execute(&mut *conn)
        .await?;
    // Set here, after the lock, on a session closed when `lead` ends. PostgreSQL 14 and later:
    // an older server publishes as before, without the bound (a hung leader then holds the
    // lock until its connection drops).
    if let Err(e) = sqlx::query("select set_config('idle_session_timeout', $1, false)")
        .bind(format!("{}ms", config.leader_idle_timeout.as_millis()))
        .execute(&mut *conn)
        .await
    {
        tracing::warn!(error = %e, "the relay's session has no idle bound (PostgreSQL 14 or \
            later needed): a standby takes over from a hung leader only once its connection drops");
    }
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("fupin_outbox").await?;
    tracing::info!("outbox relay leads: publishing this database's outbox");
    let mut nats_backoff = Duration::from_millis(100);
    // Since when every batch has failed without one event acknowledged (rows waiting).
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_triggered() {
            final_flush(&mut conn, bus, config).await;
            return Ok(Led::Stopped);
        }
        let started = tokio::time::Instant::now();
        let rows = next_batch(&mut conn).await?;
        let fetched = rows.len();
        let (sent, failure) = publish_batch(bus, config, &rows).await;
        delete_sent(&mut conn, &sent).await?;
        let cut_short = sent.len() < fetched;
        if let Some(e) = failure {
            let pending = fetched - sent.len();
            tracing::warn!(error = %e, pending, "NATS publish failed; rows wait");
            // An event acknowledged is progress (a slow NATS, a reconnect): the count starts
            // again from the next failure.
            let since = if sent.is_empty() {
                *failing_since.get_or_insert(started)
            } else {
                failing_since = None;
                started
            };
            if since.elapsed() >= config.leader_stall_timeout {
                tracing::warn!(error = %e, pending, failing_for = ?since.elapsed(),
                    "outbox relay stepping down: no event could be published for over {:?} \
                     while events wait (this replica's NATS out of reach or refusing it); \
                     releasing the lock so that another replica publishes them",
                    config.leader_stall_timeout);
                step_down(conn).await;
                return Ok(Led::SteppedDown);
            }
            tokio::select! {
                _ = tokio::time::sleep(nats_backoff) => {}
                _ = shutdown.wait() => {}
            }
            nats_backoff = (nats_backoff * 2).min(config.max_backoff);
            continue;
        }
        failing_since = None;
        nats_backoff = Duration::from_millis(100);
        // A full batch, or one that held back a second event of a subject: the rest is
        // waiting already.
        if fetched as i64 == BATCH || cut_short {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {
                // Let a burst of commits land so one batch carries them all.
                tokio::time::sleep(config.linger).await;
            }
            n = listener.recv() => { n?; }
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.wait() => {}
        }
    }
}

/// Gives up the lock: unlocked at once (the rows not acknowledged stay in the outbox, in
/// order, for whoever leads next), and the session is closed as `lead` ends (`close_on_drop`),
/// which releases it too should the unlock fail.
async fn step_down(mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>) {
    let unlock = sqlx::query_scalar::<_, bool>("select pg_advisory_unlock($1)")
        .bind(ADVISORY_LOCK_KEY)
        .fetch_one(&mut *conn);
    match tokio::time::timeout(Duration::from_secs(5), unlock).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            tracing::warn!("the relay's advisory lock was not held when it stepped down")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "unlocking the relay's advisory lock failed; \
            closing its session releases it"),
        Err(_) => tracing::warn!(
            "unlocking the relay's advisory lock took over 5 s; closing its \
            session releases it"
        ),
    }
}

/// The oldest rows of the outbox, in commit order.
async fn next_batch(conn: &mut PgConnection) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(
        r#"select seq, id, subject, ce_type, ce_subject, payload, traceparent, created_at
           from outbox order by seq limit $1"#,
    )
    .bind(BATCH)
    .fetch_all(conn)
    .await
}

/// Acknowledged rows go: the stream is the record of what was published. A join with unnest,
/// not `seq = any($1)`: with stale statistics on a young, fast-growing table the planner
/// picked a sequential scan for the array form (intake bench).
async fn delete_sent(conn: &mut PgConnection, sent: &[i64]) -> sqlx::Result<()> {
    if !sent.is_empty() {
        sqlx::query(
            "delete from outbox using unnest($1::bigint[]) as sent(seq) where outbox.seq = sent.seq",
        )
        .bind(sent)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// At shutdown: publishes the rows committed by then, batch after batch, until none of them is
/// left, NATS fails, or `config.final_flush` has passed; whatever is left (and what other
/// replicas commit meanwhile) waits for the next relay.
async fn final_flush(conn: &mut PgConnection, bus: &EventBus, config: &RelayConfig) {
    let flush = async {
        let last: Option<i64> = sqlx::query_scalar("select max(seq) from outbox")
            .fetch_one(&mut *conn)
            .await?;
        let Some(last) = last else {
            return anyhow::Ok(());
        };
        loop {
            let mut rows = next_batch(conn).await?;
            rows.retain(|r| r.seq <= last);
            if rows.is_empty() {
                return anyhow::Ok(());
            }
            let (sent, failure) = publish_batch(bus, config, &rows).await;
            delete_sent(conn, &sent).await?;
            if let Some(e) = failure {
                anyhow::bail!("NATS publish failed ({e}); the rest waits in the outbox");
            }
        }
    };
    match tokio::time::timeout(config.final_flush, flush).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "outbox relay stopped before publishing everything");
        }
        Err(_) => tracing::warn!(
            within = ?config.final_flush,
            "outbox relay stopped with rows left; the next relay publishes them"
        ),
    }
}

/// Sends the batch's messages back to back, then awaits their acks in order; returns the seqs
/// acknowledged before the first failure. A row whose `ce-subject` (the application or
/// complaint) already has a message in this batch is not sent: the client reconnects by
/// itself, and a message lost on the old connection while the next went out on the new one
/// would be stored after it when sent again. With one message of a subject in flight at a
/// time, a subject's events reach the stream in commit order whatever fails (the later one
/// goes in the next round, after the earlier one's ack).
async fn publish_batch(
    bus: &EventBus,
    config: &RelayConfig,
    rows: &[Row],
) -> (Vec<i64>, Option<anyhow::Error>) {
    let first = first_of_subject(rows.iter().map(|r| r.ce_subject.as_deref()));
    let mut pending = Vec::with_capacity(rows.len());
    let mut failure = None;
    // A batch takes at most twice `ack_timeout` (its sends, then its acks, each within one
    // deadline), however slowly a busy server answers one by one: the leader's session must not
    // sit idle past `leader_idle_timeout` while it works.
    let sends_by = tokio::time::Instant::now() + config.ack_timeout;
    for row in rows.iter().zip(first).filter_map(|(r, f)| f.then_some(r)) {
        match tokio::time::timeout_at(sends_by, send(bus, row)).await {
            Ok(Ok(ack)) => pending.push((row.seq, ack)),
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some(anyhow::anyhow!(
                    "NATS took the batch's sends no faster than {:?}",
                    config.ack_timeout
                ));
                break;
            }
        }
    }
    let mut sent = Vec::with_capacity(pending.len());
    let acks_by = tokio::time::Instant::now() + config.ack_timeout;
    for (seq, ack) in pending {
        match tokio::time::timeout_at(acks_by, ack).await {
            Ok(Ok(ack)) => {
                tracing::debug!(
                    seq,
                    stream_seq = ack.sequence,
                    duplicate = ack.duplicate,
                    "published"
                );
                sent.push(seq);
            }
            Ok(Err(e)) => {
                failure = Some(e.into());
                break;
            }
            Err(_) => {
                failure = Some(anyhow::anyhow!(
                    "no JetStream ack within {:?}",
                    config.ack_timeout
                ));
                break;
            }
        }
    }
    (sent, failure)
}

/// Which rows a batch sends: each subject's first; a later row of a subject already in the
/// batch waits for the next round, after the first one's ack. A row without a subject names
/// nothing to keep in order and is always sent.
fn first_of_subject<'a>(subjects: impl Iterator<Item = Option<&'a str>>) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    subjects.map(|s| s.is_none_or(|s| seen.insert(s))).collect()
}

async fn send(
    bus: &EventBus,
    row: &Row,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let id = row.id.to_string();
    let time = row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let headers = headers::build(&headers::CloudEvent {
        id: &id,
        ce_type: &row.ce_type,
        source: &bus.source,
        time_rfc3339: &time,
        subject: row.ce_subject.as_deref(),
        traceparent: row.traceparent.as_deref(),
    });
    Ok(bus
        .js
        .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::first_of_subject;

    /// README "Order": two events of one application are never in flight together; the later
    /// one waits for the next round while other subjects' events go on.
    #[test]
    fn a_batch_sends_one_event_of_each_subject() {
        let sent = |s: &[Option<&str>]| first_of_subject(s.iter().copied());
        assert_eq!(sent(&[]), Vec::<bool>::new());
        assert_eq!(sent(&[Some("a"), Some("b"), Some("c")]), [true; 3]);
        assert_eq!(
            sent(&[Some("a"), Some("b"), Some("a"), Some("c"), Some("b")]),
            [true, true, false, true, false]
        );
        assert_eq!(
            sent(&[None, Some("a"), None, Some("a"), None]),
            [true, true, true, false, true]
        );
    }
}
