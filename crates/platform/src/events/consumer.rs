//! Durable pull consumer with an inbox for exactly-once effect (R-X-2).
//!
//! For each delivery: begin a transaction, insert the event id into `inbox` (a conflict means
//! the event was already applied: commit nothing, ack), run the handler in the same
//! transaction, commit, then ack. A crash between commit and ack leads to a redelivery that the
//! inbox turns into a no-op. An event that cannot be applied is copied to the dead-letter
//! subject (`<prefix>.dlq.<consumer>`) with the error, and terminated: at once when the fault
//! is the event's own (undecodable, a value the handler refuses: it would fail every time,
//! and the events behind it wait), after `max_attempts` deliveries with backoff when a
//! statement failed otherwise (a cancelled statement may pass another time).
//!
//! The database's trouble is not the event's: when PostgreSQL cannot be reached or the pool
//! has no connection to give (see [`is_transient`]), or a statement lost to a concurrent
//! transaction (see [`crate::db::is_conflict`]), the consumer keeps the delivery (telling
//! the server it is still working on it), waits and applies it again, without counting an
//! attempt, until it applies or shutdown; after a minute it logs an error. The consumer has
//! one event unacknowledged at a time and no server-side delivery bound, so events are not
//! reordered, dead-lettered or stranded by an outage of any length. A consumer stopped while it
//! holds an event hands it back (a negative acknowledgement), so that another replica gets it
//! at once rather than after the ack wait, the context's events all waiting meanwhile.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    message::AckKind,
};
use bytes::Bytes;
use futures::{FutureExt, StreamExt, future::BoxFuture};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use crate::db::is_transient;

use super::{EventBus, headers};
use crate::shutdown::Shutdown;

/// One delivered event, as a handler sees it.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// `ce-id` (falls back to `Nats-Msg-Id`, then the stream sequence).
    pub id: String,
    pub ce_type: String,
    pub subject: String,
    pub payload: Bytes,
    pub time: Option<String>,
    pub traceparent: Option<String>,
    pub delivery: i64,
}

impl Delivered {
    pub fn decode<M: prost::Message + Default>(&self) -> anyhow::Result<M> {
        Ok(M::decode(self.payload.as_ref())?)
    }

    /// True when the event is of protobuf type `M`.
    pub fn is<M: prost::Name>(&self) -> bool {
        self.ce_type == M::full_name()
    }
}

pub trait EventHandler: Send + Sync + 'static {
    /// Applies the event inside the consumer's transaction. An error rolls everything back.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Durable name, unique per consuming service and purpose (no dots).
    pub name: String,
    /// Protobuf full names of the event types to receive (`fupin.risk.v1.NplThresholdExceeded`).
    pub event_types: Vec<String>,
    pub max_attempts: i64,
    pub ack_wait: Duration,
    pub retry_backoff: Duration,
}

impl ConsumerConfig {
    pub fn new(name: &str, event_types: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            event_types,
            max_attempts: 5,
            ack_wait: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// What happened to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Already in the inbox: nothing done.
    Duplicate,
}

pub async fn create(bus: &EventBus, config: &ConsumerConfig) -> anyhow::Result<PullConsumer> {
    let stream = bus
        .js
        .get_stream(&bus.stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {}: {e}", bus.stream))?;
    let (filter_subject, filter_subjects) = filters(bus, &config.event_types);
    let wanted = pull::Config {
        durable_name: Some(config.name.clone()),
        filter_subject,
        filter_subjects,
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: config.ack_wait,
        // No server-side bound: the consumer dead-letters an event that keeps failing
        // itself, and an event held through a database outage, or redelivered across restarts
        // during one, must never reach a bound past which the server stops delivering it
        // (neither applied nor dead-lettered).
        max_deliver: -1,
        // One event at a time, across every replica sharing the consumer: events apply in
        // stream order, and none waits unacknowledged behind one that is held (its delivery
        // count rising with each ack wait).
        max_ack_pending: 1,
        ..Default::default()
    };
    // Created, or brought to this configuration when an earlier version created it (both
    // settings can be changed on a durable consumer). Should the server refuse the change
    // (a setting it cannot change, such as the deliver policy), the consumer as it is serves
    // if it keeps the guarantees: one event at a time, acknowledged explicitly, no delivery
    // bound. Otherwise the start stops, saying what to do.
    let consumer = match stream.create_consumer(wanted.clone()).await {
        Ok(consumer) => consumer,
        // Only the server's refusal; a timeout or a lost request says nothing of the consumer
        // and is retried by the caller.
        Err(e)
            if !matches!(
                e.kind(),
                async_nats::jetstream::stream::ConsumerErrorKind::JetStream(_)
            ) =>
        {
            return Err(anyhow::anyhow!("consumer {}: {e}", config.name));
        }
        Err(e) => {
            let mut consumer: PullConsumer = stream
                .get_consumer(&config.name)
                .await
                .map_err(|e2| anyhow::anyhow!("consumer {}: {e}; then {e2}", config.name))?;
            let has = consumer
                .info()
                .await
                .map_err(|e| anyhow::anyhow!("consumer {}: {e}", config.name))?
                .config
                .clone();
            if let Some(wrong) = lost_guarantee(&has) {
                return Err(LostGuarantee(format!(
                    "consumer {} on stream {} has {wrong}, and NATS refused to change it ({e}): \
                     delete the consumer and start again (it is created anew and replays the \
                     stream; the inbox skips every event already applied)",
                    config.name, bus.stream
                ))
                .into());
            }
            tracing::warn!(consumer = %config.name, error = %e,
                "the consumer could not be updated; using it as it is (its guarantees hold)");
            consumer
        }
    };
    Ok(consumer)
}

/// An existing durable consumer that NATS will not bring to the configuration events are
/// applied under, and that lacks one of its guarantees: the service must not start on it.
#[derive(Debug)]
pub struct LostGuarantee(String);

impl std::fmt::Display for LostGuarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LostGuarantee {}

/// Creates or updates, before a service serves, the durable consumers [`spawn`] will run, and
/// stops the start if one of them lost a guarantee ([`LostGuarantee`]). Any other failure (NATS
/// busy or away) is logged and left to the consumers, which try again until it passes.
pub async fn check(bus: &EventBus, config: &ConsumerConfig) -> anyhow::Result<()> {
    for c in per_context(config) {
        match create(bus, &c).await {
            Ok(_) => {}
            Err(e) if e.is::<LostGuarantee>() => return Err(e),
            Err(e) => tracing::warn!(consumer = %c.name, error = %e,
                "the consumer could not be checked at start; it will try again"),
        }
    }
    Ok(())
}

/// What an existing consumer lacks of the guarantees events are applied under (R-X-2): one
/// event unacknowledged at a time (in stream order, none stranded behind a held one),
/// explicit acknowledgement, no server-side delivery bound.
fn lost_guarantee(has: &async_nats::jetstream::consumer::Config) -> Option<String> {
    if has.max_ack_pending != 1 {
        Some(format!("max_ack_pending {} (needs 1)", has.max_ack_pending))
    } else if has.ack_policy != AckPolicy::Explicit {
        Some(format!("ack policy {:?} (needs explicit)", has.ack_policy))
    } else if has.max_deliver > 0 {
        Some(format!("max_deliver {} (needs none)", has.max_deliver))
    } else {
        None
    }
}

/// The server-side filter for a consumer of `event_types`.
///
/// Debian's nats-server 2.9 silently ignores `filter_subjects` (2.10+), so a consumer of
/// several types would receive the whole stream, its own service's events and the dead letters
/// included. `filter_subject` works everywhere: one type is filtered exactly, several types of
/// one bounded context by `<prefix>.<ctx>.v1.>` (`consume` skips the context's other types).
/// Types of several contexts fall back to `filter_subjects`; [`spawn`] avoids that case by
/// running one consumer per context.
fn filters(bus: &EventBus, event_types: &[String]) -> (String, Vec<String>) {
    let subjects: Vec<String> = event_types.iter().map(|t| bus.subject_for(t)).collect();
    match subjects.as_slice() {
        [one] => (one.clone(), Vec::new()),
        _ => match common_context(event_types) {
            Some(ctx) => (format!("{}.{ctx}.>", bus.prefix), Vec::new()),
            None => (String::new(), subjects),
        },
    }
}

/// `fupin.rating.v1` for `fupin.rating.v1.X`: the package, i.e. the bounded context's version.
fn context_of(event_type: &str) -> &str {
    event_type
        .rsplit_once('.')
        .map_or(event_type, |(pkg, _)| pkg)
}

/// The context (`rating.v1`) shared by all types, if they share one.
fn common_context(event_types: &[String]) -> Option<String> {
    let first = context_of(event_types.first()?);
    event_types
        .iter()
        .all(|t| context_of(t) == first)
        .then(|| first.strip_prefix("fupin.").unwrap_or(first).to_owned())
}

/// Splits a consumer of several contexts' events into one consumer per context, named
/// `<name>-<ctx>` (order is kept within a context, which is where producers order events).
pub fn per_context(config: &ConsumerConfig) -> Vec<ConsumerConfig> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in &config.event_types {
        let ctx = context_of(t).to_owned();
        match groups.iter_mut().find(|(c, _)| *c == ctx) {
            Some((_, types)) => types.push(t.clone()),
            None => groups.push((ctx, vec![t.clone()])),
        }
    }
    if groups.len() <= 1 {
        return vec![config.clone()];
    }
    groups
        .into_iter()
        .map(|(ctx, types)| {
            let short = ctx.strip_prefix("fupin.").unwrap_or(&ctx).replace('.', "-");
            ConsumerConfig {
                name: format!("{}-{short}", config.name),
                event_types: types,
                ..config.clone()
            }
        })
        .collect()
}

pub fn delivered(msg: &jetstream::Message) -> Delivered {
    let h = msg.headers.as_ref();
    let info = msg.info().ok();
    // A blank id is no id: kept as the inbox key, every later event with a blank id would be
    // taken for that one and dropped (R-X-2), and their dead letters for one another's.
    let id_header = |name| headers::get(h, name).filter(|id| !id.trim().is_empty());
    // Without either, the stream's sequence stands in, with the stream's name and the time the
    // server stored the message: a sequence alone starts again at 1 when a stream is made anew
    // (restored, or deleted by hand), and the inbox would take the new stream's events for
    // the old one's and drop them.
    let id = id_header(headers::CE_ID)
        .or_else(|| id_header(headers::NATS_MSG_ID))
        .map(str::to_owned)
        .unwrap_or_else(|| match &info {
            Some(i) => format!(
                "seq-{}-{}-{}",
                i.stream,
                i.stream_sequence,
                i.published.unix_timestamp_nanos()
            ),
            None => "seq-0".to_owned(),
        });
    Delivered {
        id,
        ce_type: headers::get(h, headers::CE_TYPE)
            .unwrap_or_default()
            .to_owned(),
        subject: msg.subject.to_string(),
        payload: msg.payload.clone(),
        time: headers::get(h, headers::CE_TIME).map(str::to_owned),
        traceparent: headers::get(h, headers::TRACEPARENT).map(str::to_owned),
        delivery: info.map_or(1, |i| i.delivered),
    }
}

/// Applies one delivery exactly once: inbox insert and handler in one transaction. Does not
/// ack — the caller acks after this returns Ok, which is what makes a crash in between safe.
/// Runs in a span that continues the event's trace (its `traceparent`, when valid), so the
/// handler's work, and any event it writes, joins the trace of the request that caused it.
pub async fn apply_once(
    pool: &PgPool,
    consumer: &str,
    handler: &dyn EventHandler,
    event: &Delivered,
) -> anyhow::Result<Outcome> {
    let span = tracing::info_span!(
        "apply_once",
        otel.kind = "consumer",
        consumer = consumer,
        event_id = %event.id,
        ce_type = %event.ce_type,
    );
    if let Some(tp) = &event.traceparent {
        crate::telemetry::continue_trace(&span, &crate::telemetry::Traceparent(tp));
    }
    apply(pool, consumer, handler, event).instrument(span).await
}

async fn apply(
    pool: &PgPool,
    consumer: &str,
    handler: &dyn EventHandler,
    event: &Delivered,
) -> anyhow::Result<Outcome> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(
        "insert into inbox (consumer, event_id, subject) values ($1, $2, $3) on conflict do nothing",
    )
    .bind(consumer)
    .bind(&event.id)
    .bind(&event.subject)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tx.rollback().await?;
        return Ok(Outcome::Duplicate);
    }
    handler.handle(&mut tx, event).await?;
    tx.commit().await?;
    Ok(Outcome::Applied)
}

/// Runs the consumer (one per bounded context of its event types, see [`per_context`]) until
/// shutdown, re-creating it after NATS trouble.
pub fn spawn(
    pool: PgPool,
    bus: EventBus,
    config: ConsumerConfig,
    handler: std::sync::Arc<dyn EventHandler>,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    let tasks: Vec<JoinHandle<()>> = per_context(&config)
        .into_iter()
        .map(|c| {
            spawn_one(
                pool.clone(),
                bus.clone(),
                c,
                handler.clone(),
                shutdown.clone(),
            )
        })
        .collect();
    tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
    })
}

fn spawn_one(
    pool: PgPool,
    bus: EventBus,
    config: ConsumerConfig,
    handler: std::sync::Arc<dyn EventHandler>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_triggered() {
            match consume(&pool, &bus, &config, handler.as_ref(), &mut shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(consumer = %config.name, error = %e, "consumer interrupted; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    })
}

async fn consume(
    pool: &PgPool,
    bus: &EventBus,
    config: &ConsumerConfig,
    handler: &dyn EventHandler,
    shutdown: &mut Shutdown,
) -> anyhow::Result<()> {
    let consumer = create(bus, config).await?;
    // Each subject asked for, with the one event type it carries.
    let wanted: Vec<(String, &str)> = config
        .event_types
        .iter()
        .map(|t| (bus.subject_for(t), t.as_str()))
        .collect();
    let mut messages = consumer.messages().await?;
    loop {
        let next = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.wait() => {
                // A delivery that came with the stop, already received but not yet taken, is
                // handed back too (at most one: one event unacknowledged at a time).
                if let Some(Some(Ok(msg))) = messages.next().now_or_never() {
                    hand_back(bus, config, messages, &msg).await;
                }
                return Ok(());
            }
        };
        let Some(msg) = next else {
            anyhow::bail!("message stream ended");
        };
        let msg = msg.map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
        let Some((_, carried)) = wanted
            .iter()
            .find(|(s, _)| s.as_str() == msg.subject.as_str())
        else {
            // Another type of the same context, or a server that ignored `filter_subjects`.
            tracing::debug!(subject = %msg.subject, "skipping an event type this consumer did not ask for");
            msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            continue;
        };
        let event = delivered(&msg);
        if event.ce_type != *carried {
            // Handlers go by `ce-type`, and publishing is allowed by subject: a `ce-type` that
            // is not the subject's would let a producer allowed one subject announce another
            // context's facts (a resumption of lending on a rating subject), or a mislabelled
            // event flip a fact. The event is refused as it stands.
            let e = anyhow::anyhow!(
                "ce-type {:?} is not the type of subject {} ({carried})",
                cut(&event.ce_type, 80),
                msg.subject
            );
            give_up(bus, config, &msg, &event, &e).await?;
            continue;
        }
        let mut wait = config.retry_backoff;
        let held_since = tokio::time::Instant::now();
        let mut told = false;
        let applied = loop {
            match apply_once(pool, &config.name, handler, &event).await {
                // The database out of reach, or a statement that lost to a concurrent
                // transaction (a deadlock, a lock a migration holds): neither says anything
                // about the event, which would be dead-lettered within seconds if counted as
                // attempts (a blacklisting or a suspension lost to admission meanwhile).
                Err(e) if is_transient(&e) || crate::db::is_conflict(&e) => {
                    tracing::warn!(event_id = %event.id, error = %e, retry_in = ?wait,
                        "the database did not apply the event (unavailable, or a conflict with \
                         another transaction); holding it to apply it again");
                    if !told && held_since.elapsed() >= HELD_TOO_LONG {
                        told = true;
                        tracing::error!(consumer = %config.name, event_id = %event.id,
                            held = ?held_since.elapsed(),
                            "events of this context wait: the database has not applied the \
                             consumer's event for over a minute");
                    }
                    // Still ours: the server restarts its ack wait and does not redeliver.
                    msg.ack_with(AckKind::Progress)
                        .await
                        .map_err(|e| anyhow::anyhow!("in progress: {e}"))?;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        // Left unacknowledged, it would hold up this context on every replica
                        // until the ack wait (30 s) ran out: handed back for another at once.
                        _ = shutdown.wait() => {
                            hand_back(bus, config, messages, &msg).await;
                            return Ok(());
                        }
                    }
                    wait = (wait * 2).min(HOLD_BACKOFF_MAX);
                }
                other => break other,
            }
        };
        match applied {
            Ok(outcome) => {
                tracing::debug!(event_id = %event.id, ?outcome, "event handled");
                msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            }
            Err(e) if !involves_database(&e) || event.delivery >= config.max_attempts => {
                give_up(bus, config, &msg, &event, &e).await?;
            }
            Err(e) => {
                tracing::warn!(event_id = %event.id, attempt = event.delivery, error = %e, "handler failed; will retry");
                let delay = config.retry_backoff
                    * 2u32
                        .saturating_pow(event.delivery.clamp(1, 10) as u32 - 1)
                        .min(64);
                msg.ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|e| anyhow::anyhow!("nak: {e}"))?;
            }
        }
    }
}

/// At shutdown, hands a delivery this consumer holds back to the server (a negative
/// acknowledgement without delay), so that another replica gets it at once. This replica's
/// pull requests are withdrawn first (`messages` dropped: an unsubscribe, sent ahead of the
/// NAK on the same connection), or the server could give the event straight back to one of
/// them, to sit unacknowledged there until the ack wait. Flushed within a bound, since the
/// process may end next; on failure (NATS away) the server redelivers after the ack wait.
async fn hand_back(
    bus: &EventBus,
    config: &ConsumerConfig,
    messages: pull::Stream,
    msg: &jetstream::Message,
) {
    drop(messages);
    let nak = async {
        msg.ack_with(AckKind::Nak(None))
            .await
            .map_err(|e| anyhow::anyhow!("nak: {e}"))?;
        bus.js
            .client()
            .flush()
            .await
            .map_err(|e| anyhow::anyhow!("flush: {e}"))
    };
    let sequence = msg.info().map_or(0, |i| i.stream_sequence);
    match tokio::time::timeout(HAND_BACK_WITHIN, nak).await {
        Ok(Ok(())) => tracing::info!(consumer = %config.name, stream_sequence = sequence,
            "stopping: handed the event held back to NATS for another replica"),
        Ok(Err(e)) => tracing::warn!(consumer = %config.name, stream_sequence = sequence,
            error = %e, "stopping: could not hand the event held back; NATS redelivers it \
            after the ack wait"),
        Err(_) => tracing::warn!(consumer = %config.name, stream_sequence = sequence,
            "stopping: handing the event held back took too long; NATS redelivers it after \
            the ack wait"),
    }
}

/// How long a stopping consumer tries to hand its event back.
const HAND_BACK_WITHIN: Duration = Duration::from_secs(2);

/// The longest wait between two attempts at an event held through a database outage: well
/// under any ack wait, so the in-progress acknowledgement keeps the delivery.
const HOLD_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long an event is held before the consumer logs an error (once per event).
const HELD_TOO_LONG: Duration = Duration::from_secs(60);

/// Whether a statement was part of the failure (it may pass another time), rather than only
/// the event itself (undecodable, or refused by the handler: it fails the same every time).
pub fn involves_database(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.downcast_ref::<sqlx::Error>().is_some())
}

/// Dead-letters the event and terminates its delivery: it will not be delivered again.
async fn give_up(
    bus: &EventBus,
    config: &ConsumerConfig,
    msg: &jetstream::Message,
    event: &Delivered,
    error: &anyhow::Error,
) -> anyhow::Result<()> {
    tracing::error!(event_id = %event.id, attempts = event.delivery, error = %error, "dead-lettering event");
    dead_letter(bus, config, msg, error).await?;
    msg.ack_with(AckKind::Term)
        .await
        .map_err(|e| anyhow::anyhow!("term: {e}"))
}

async fn dead_letter(
    bus: &EventBus,
    config: &ConsumerConfig,
    msg: &jetstream::Message,
    error: &anyhow::Error,
) -> anyhow::Result<()> {
    let mut h = copied_headers(msg.headers.as_ref());
    // A fresh id: the dead letter is a new message, not a duplicate of the original. Named
    // after the original's id, or its stream sequence when it has none: one constant id for
    // every message without `ce-id` made JetStream drop all but the first dead letter. A long
    // id is named by its hash.
    let mut original_id = delivered(msg).id;
    if original_id.len() > DLQ_HEADER_MAX / 2 {
        original_id = Sha256::digest(original_id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }
    h.insert(
        headers::NATS_MSG_ID,
        format!("dlq-{}-{original_id}", config.name).as_str(),
    );
    h.insert(headers::DLQ_ERROR, dlq_error(error).as_str());
    h.insert(headers::DLQ_ORIGINAL_SUBJECT, msg.subject.as_str());
    // The dead letter must be publishable whatever the event was: one the server refuses would
    // leave the event unacknowledged, redelivered for ever, and every event behind it waiting.
    // The original fitted the server's limit; with the headers added it may not, and then the
    // payload is left out (the original stays in the stream, at the sequence given).
    let mut payload = msg.payload.clone();
    let limit = bus.js.client().server_info().max_payload;
    if limit > 0 && payload.len() + headers_len(&h) + DLQ_SLACK > limit {
        let sequence = msg.info().map_or(0, |i| i.stream_sequence);
        h.insert(
            headers::DLQ_PAYLOAD_OMITTED,
            format!("{} bytes, stream sequence {sequence}", payload.len()).as_str(),
        );
        payload = bytes::Bytes::new();
    }
    bus.js
        .publish_with_headers(bus.dead_letter_subject(&config.name), h, payload)
        .await?
        .await?;
    Ok(())
}

/// Room left under the server's payload limit for the subject and the header block's framing.
const DLQ_SLACK: usize = 1024;

/// Of the original's header values, a dead letter keeps at most this many, each cut at
/// [`DLQ_HEADER_MAX`] bytes, under names of at most 64 bytes: JetStream refuses a message whose
/// headers pass 64 KiB, and a producer's long header (a forged `ce-type`, a long `ce-id`) must
/// not make the dead letter's pass it once its own are added.
const DLQ_HEADERS_KEPT: usize = 32;
const DLQ_HEADER_MAX: usize = 256;

/// The original's headers as a dead letter keeps them (see [`DLQ_HEADERS_KEPT`]).
fn copied_headers(original: Option<&async_nats::HeaderMap>) -> async_nats::HeaderMap {
    let mut kept = async_nats::HeaderMap::new();
    let Some(original) = original else {
        return kept;
    };
    // The CloudEvents headers first (the map's order is arbitrary), then the others.
    let known = [
        headers::CE_ID,
        headers::CE_TYPE,
        headers::CE_SOURCE,
        headers::CE_SPECVERSION,
        headers::CE_TIME,
        headers::CE_SUBJECT,
        headers::CONTENT_TYPE,
        headers::CE_DATACONTENTTYPE,
        headers::TRACEPARENT,
    ];
    let mut values: Vec<(String, &async_nats::HeaderValue)> = original
        .iter()
        .flat_map(|(name, values)| {
            let name = name.to_string();
            values.iter().map(move |v| (name.clone(), v))
        })
        .filter(|(name, _)| name.len() <= 64 && name != headers::NATS_MSG_ID)
        .collect();
    values.sort_by_key(|(name, _)| !known.contains(&name.as_str()));
    for (name, value) in values.into_iter().take(DLQ_HEADERS_KEPT) {
        kept.append(name.as_str(), cut(value.as_str(), DLQ_HEADER_MAX).as_str());
    }
    kept
}

/// `text` cut at `max` bytes on a character boundary, marked with `...` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The longest `fupin-dlq-error` kept, in bytes.
const DLQ_ERROR_MAX: usize = 2048;

/// The error a dead letter carries: one line, at most [`DLQ_ERROR_MAX`] bytes.
fn dlq_error(error: &anyhow::Error) -> String {
    cut(
        &format!("{error:#}").replace(['\r', '\n'], " "),
        DLQ_ERROR_MAX,
    )
}

/// About what `h` adds to a message: its names and values with their separators.
fn headers_len(h: &async_nats::HeaderMap) -> usize {
    h.iter()
        .map(|(name, values)| {
            values
                .iter()
                .map(|v| name.to_string().len() + v.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum::<usize>()
        + 16
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn the_databases_trouble_is_told_from_the_events() {
        let transient = |e: sqlx::Error| is_transient(&anyhow::Error::from(e));
        assert!(transient(sqlx::Error::PoolTimedOut));
        assert!(transient(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        // Wrapped with context by a handler: still the database's.
        assert!(is_transient(
            &anyhow::Error::from(sqlx::Error::PoolTimedOut).context("applying a rating")
        ));
        assert!(!transient(sqlx::Error::RowNotFound));
        assert!(!transient(sqlx::Error::Protocol(
            "unexpected message".into()
        )));
        assert!(!is_transient(&anyhow::anyhow!("grade \"Z\": not a grade")));
        let undecodable =
            <String as prost::Message>::decode(&[0xff][..]).expect_err("not a message");
        let undecodable = anyhow::Error::from(undecodable);
        assert!(!is_transient(&undecodable));
        // The event's own fault: dead-lettered at once. A statement's: retried.
        assert!(!involves_database(&undecodable));
        assert!(!involves_database(&anyhow::anyhow!(
            "grade \"Z\": not a grade"
        )));
        assert!(involves_database(
            &anyhow::Error::from(sqlx::Error::RowNotFound).context("a rating")
        ));
    }

    // A dead letter keeps the CloudEvents headers of an event with many others, each cut
    // short, and never the original's Nats-Msg-Id (the copy has its own).
    #[test]
    fn a_dead_letter_keeps_the_cloudevents_headers_first() {
        let mut h = async_nats::HeaderMap::new();
        for i in 0..40 {
            h.insert(format!("x-junk-{i}").as_str(), "j");
        }
        h.insert(headers::CE_ID, "e-1");
        h.insert(headers::CE_TYPE, "t".repeat(1000).as_str());
        h.insert(headers::NATS_MSG_ID, "e-1");
        let kept = copied_headers(Some(&h));
        assert_eq!(headers::get(Some(&kept), headers::CE_ID), Some("e-1"));
        let ce_type = headers::get(Some(&kept), headers::CE_TYPE).unwrap();
        assert_eq!(ce_type.len(), DLQ_HEADER_MAX + 3);
        assert_eq!(headers::get(Some(&kept), headers::NATS_MSG_ID), None);
        assert_eq!(
            kept.iter().map(|(_, v)| v.len()).sum::<usize>(),
            DLQ_HEADERS_KEPT
        );
    }

    #[test]
    fn one_consumer_per_context() {
        let c = ConsumerConfig::new(
            "intake-readmodel",
            vec![
                "fupin.rating.v1.A".into(),
                "fupin.risk.v1.B".into(),
                "fupin.rating.v1.C".into(),
            ],
        );
        let parts = per_context(&c);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "intake-readmodel-rating-v1");
        assert_eq!(
            parts[0].event_types,
            vec!["fupin.rating.v1.A", "fupin.rating.v1.C"]
        );
        assert_eq!(parts[1].name, "intake-readmodel-risk-v1");
        let single = ConsumerConfig::new("x", vec!["fupin.risk.v1.B".into()]);
        assert_eq!(per_context(&single)[0].name, "x");
    }

    #[test]
    fn common_context_of_types() {
        assert_eq!(
            common_context(&["fupin.rating.v1.A".into(), "fupin.rating.v1.B".into()]).as_deref(),
            Some("rating.v1")
        );
        assert_eq!(
            common_context(&["fupin.rating.v1.A".into(), "fupin.risk.v1.B".into()]),
            None
        );
    }
}
