//! Readiness: what `grpc.health.v1` answers follows the service's dependencies, so a load
//! balancer or `docker compose` stops sending calls to an instance that cannot serve them.
//!
//! - **PostgreSQL** decides. Every call reads or writes the service's own database: after
//!   [`Readiness::failures_to_fail`] failed checks in a row (each bounded by
//!   [`Readiness::timeout`]) the service and the server (`""`) report NOT_SERVING; the first
//!   check that passes reports SERVING again. The check has its own connection, not one of
//!   the pool's: a pool busy with a burst of calls is slow, not down, and taking every equally
//!   busy instance out of rotation at once would turn a slowdown into an outage.
//! - **NATS** does not. Writes keep committing their events to the outbox while NATS is away
//!   and the relay publishes them once it is back (R-X-2), so an outage only delays events.
//!   It is logged when the connection is lost and when it is back.
//! - **Events waiting** are reported apart, as the health of [`OUTBOX_SERVICE`]: NOT_SERVING
//!   while the oldest event in the outbox has waited longer than [`Readiness::outbox_lag`]
//!   (NATS away, the stream full or refusing), SERVING once events flow again; each change is
//!   logged. Load balancers asking about the server or the service are not affected.
//! - **Events not applied** are reported apart too, as the health of [`INBOX_SERVICE`]:
//!   NOT_SERVING while one of the service's durable consumers has had events waiting for
//!   longer than [`Readiness::inbox_lag`] without acknowledging any (a handler stuck, an
//!   event held through a database outage, no replica consuming), is further behind than that
//!   (the first event waiting for it was published longer ago: a backlog after a long stop),
//!   or could not be read from NATS for that long (NATS away, the stream or the consumer
//!   gone); SERVING once each is caught up again; each change is logged, with the consumers
//!   concerned. The state is read from the server, all consumers at once within one check's
//!   timeout, so replicas sharing a consumer see it alike and an idle one is not behind.
//!   Ages compare this host's clock with the NATS server's. Dead letters count as applied:
//!   they are alerted on by their own subject. A read model fed by events decides with what
//!   it has: this is how an operator learns that what it has is old.
//!
//! When shutdown starts the task reports NOT_SERVING for the services and the server (the
//! events' two names keep their last status), and stops; [`crate::grpc::GrpcServer::serve`]
//! reports the server NOT_SERVING too.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use async_nats::{connection::State, jetstream::stream::RawMessageErrorKind};
use sqlx::{Connection, Executor, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{events::EventBus, shutdown::Shutdown};

/// How often and how patiently the dependencies are checked.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub every: Duration,
    pub timeout: Duration,
    /// Failed database checks in a row before NOT_SERVING: one slow check does not take an
    /// instance out of rotation.
    pub failures_to_fail: u32,
    /// How long the oldest unpublished event may wait before [`OUTBOX_SERVICE`] reports
    /// NOT_SERVING.
    pub outbox_lag: Duration,
    /// How long a consumer may have events waiting without acknowledging any, be behind (its
    /// first waiting event published that long ago) or be unreadable, before
    /// [`INBOX_SERVICE`] reports NOT_SERVING.
    pub inbox_lag: Duration,
}

/// The health-service name under which events waiting too long in the outbox are reported.
pub const OUTBOX_SERVICE: &str = "fupin.events.Outbox";

/// The health-service name under which consumers that do not apply the events waiting for
/// them are reported.
pub const INBOX_SERVICE: &str = "fupin.events.Inbox";

/// The durable consumers of a service, on its bus's stream, whose progress readiness reports.
#[derive(Clone, Debug)]
pub struct Consumers {
    pub bus: EventBus,
    pub names: Vec<String>,
}

/// Checks the database (and watches NATS and the service's consumers, when it has them) every
/// `config.every` until `shutdown`, reporting `services` and the server as a whole SERVING or
/// NOT_SERVING on `health`.
pub fn spawn(
    config: Readiness,
    health: HealthReporter,
    services: Vec<String>,
    pool: &PgPool,
    nats: Option<async_nats::Client>,
    consumers: Option<Consumers>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    let mut probe = DatabaseProbe::new(pool);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tracker = Tracker::new(config.failures_to_fail);
        let mut nats_up = true;
        let mut events_flow = true;
        let mut events_applied = true;
        let mut inbox = InboxTracker::default();
        health
            .set_service_status(OUTBOX_SERVICE, ServingStatus::Serving)
            .await;
        if consumers.is_some() {
            health
                .set_service_status(INBOX_SERVICE, ServingStatus::Serving)
                .await;
        }
        loop {
            let answered = tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = tick.tick() => tokio::select! {
                    biased;
                    _ = shutdown.wait() => break,
                    answered = probe.check(config.timeout) => answered,
                },
            };
            if let Err(e) = &answered {
                tracing::warn!(error = %e, "readiness: the database does not answer");
            }
            // Never SERVING once shutdown has started (the server said NOT_SERVING, and the
            // drain may be on): the loop's next turn reports NOT_SERVING and stops.
            if let Some(status) = tracker.observe(answered.is_ok())
                && !shutdown.is_triggered()
            {
                if status == ServingStatus::Serving {
                    tracing::info!("readiness: the database answers again; SERVING");
                } else {
                    tracing::error!("readiness: the database does not answer; NOT_SERVING");
                }
                report(&health, &services, status).await;
            }
            if answered.is_ok() {
                events_flow = watch_outbox(&mut probe, &health, &config, events_flow).await;
            }
            if let Some(client) = &nats {
                nats_up = watch_nats(client, nats_up);
            }
            if let Some(consumers) = &consumers {
                // All at once, within one timeout, and not past the start of shutdown.
                let seen = tokio::select! {
                    biased;
                    _ = shutdown.wait() => break,
                    seen = read_consumers(consumers, config.timeout) => seen,
                };
                for (name, seen) in consumers.names.iter().zip(seen) {
                    inbox.observe(name, seen, Instant::now());
                }
                events_applied = watch_inbox(&inbox, &health, &config, events_applied).await;
            }
        }
        // The task's last word: nothing it wrote before can be read after this.
        report(&health, &services, ServingStatus::NotServing).await;
    })
}

/// Reads how long events have waited and reports [`OUTBOX_SERVICE`] when that changes
/// whether they flow; whether they flow now (`flowed` when the outbox could not be read).
async fn watch_outbox(
    probe: &mut DatabaseProbe,
    health: &HealthReporter,
    config: &Readiness,
    flowed: bool,
) -> bool {
    let lag = match probe.outbox_lag(config.timeout).await {
        Ok(lag) => lag,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: reading the outbox failed");
            return flowed;
        }
    };
    let flow = lag.is_none_or(|waited| waited <= config.outbox_lag);
    if flow == flowed {
        return flow;
    }
    let status = if flow {
        tracing::info!("events reach NATS again; the outbox is catching up");
        ServingStatus::Serving
    } else {
        tracing::error!(
            waited = ?lag.unwrap_or_default(),
            "events are not reaching NATS: the oldest has waited longer than {:?} in the outbox \
             (NATS away, or the stream full or refusing them)",
            config.outbox_lag
        );
        ServingStatus::NotServing
    };
    health.set_service_status(OUTBOX_SERVICE, status).await;
    flow
}

/// What the server says of each consumer (in `consumers.names` order), read concurrently
/// within `timeout`; without a connection to NATS, that, without asking.
async fn read_consumers(consumers: &Consumers, timeout: Duration) -> Vec<Seen> {
    let client = consumers.bus.js.client();
    if client.connection_state() != State::Connected {
        return vec![Seen::Unreadable("no connection to NATS".into()); consumers.names.len()];
    }
    let reads = consumers
        .names
        .iter()
        .map(|name| read_consumer(&consumers.bus, name));
    match tokio::time::timeout(timeout, futures::future::join_all(reads)).await {
        Ok(seen) => seen,
        Err(_) => {
            vec![Seen::Unreadable(format!("no answer within {timeout:?}")); consumers.names.len()]
        }
    }
}

/// What the server says of one consumer: how many events wait for it, how far it has
/// acknowledged, and when the first event waiting for it was published (the next one its
/// filter matches after what it acknowledged). The server's count of waiting events can be
/// wrong (nats-server has over-counted `num_pending`): with nothing matching after the
/// acknowledged position, nothing waits.
async fn read_consumer(bus: &EventBus, name: &str) -> Seen {
    let read = async {
        let stream = bus.js.get_stream_no_info(&bus.stream).await?;
        let info = stream.consumer_info(name).await?;
        let waiting = info.num_pending + info.num_ack_pending as u64;
        let acked_through = info.ack_floor.stream_sequence;
        let filter = info.config.filter_subject.as_str();
        if waiting == 0 || filter.is_empty() {
            return anyhow::Ok(Seen::Progress {
                waiting,
                acked_through,
                oldest_published: None,
            });
        }
        let next = stream
            .raw_message_builder()
            .sequence(acked_through + 1)
            .next_by_subject(filter)
            .send()
            .await;
        Ok(match next {
            Ok(message) => Seen::Progress {
                waiting,
                acked_through,
                oldest_published: Some(SystemTime::from(message.time)),
            },
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Seen::Progress {
                waiting: 0,
                acked_through,
                oldest_published: None,
            },
            // Unknown: the position alone says whether it moves.
            Err(_) => Seen::Progress {
                waiting,
                acked_through,
                oldest_published: None,
            },
        })
    };
    match read.await {
        Ok(seen) => seen,
        Err(e) => Seen::Unreadable(format!("{e:#}")),
    }
}

/// Reports [`INBOX_SERVICE`] when whether every consumer applies what waits for it changes;
/// whether they do now.
async fn watch_inbox(
    inbox: &InboxTracker,
    health: &HealthReporter,
    config: &Readiness,
    kept_up: bool,
) -> bool {
    let lagging = inbox.lagging(config.inbox_lag, Instant::now(), SystemTime::now());
    let keep_up = lagging.is_empty();
    if keep_up == kept_up {
        return keep_up;
    }
    let status = if keep_up {
        tracing::info!("every consumer applies the events waiting for it again");
        ServingStatus::Serving
    } else {
        let why: Vec<String> = lagging.iter().map(ToString::to_string).collect();
        tracing::error!(
            "events are not being applied: {}; what the service decides from them may be out \
             of date",
            why.join("; ")
        );
        ServingStatus::NotServing
    };
    health.set_service_status(INBOX_SERVICE, status).await;
    keep_up
}

/// One reading of a consumer on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Events waiting for it (not yet delivered, or delivered and not acknowledged), the
    /// stream sequence up to which it has acknowledged every event, and when the first event
    /// waiting was published (by the server's clock), when known.
    Progress {
        waiting: u64,
        acked_through: u64,
        oldest_published: Option<SystemTime>,
    },
    /// The server could not say (why).
    Unreadable(String),
}

/// A consumer readiness reports, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lagging {
    /// Events have waited this long without it acknowledging any.
    Stalled {
        consumer: String,
        waiting: u64,
        for_: Duration,
    },
    /// The first event waiting for it was published this long ago.
    Behind { consumer: String, by: Duration },
    /// The server could not tell its state for this long.
    Unreadable {
        consumer: String,
        for_: Duration,
        why: String,
    },
}

impl std::fmt::Display for Lagging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lagging::Stalled {
                consumer,
                waiting,
                for_,
            } => write!(
                f,
                "consumer {consumer} has had {waiting} event(s) waiting for {}s without \
                 acknowledging any",
                for_.as_secs()
            ),
            Lagging::Behind { consumer, by } => write!(
                f,
                "consumer {consumer} is behind: the first event waiting for it was published {}s \
                 ago",
                by.as_secs()
            ),
            Lagging::Unreadable {
                consumer,
                for_,
                why,
            } => write!(
                f,
                "consumer {consumer} could not be read from NATS for {}s ({why})",
                for_.as_secs()
            ),
        }
    }
}

/// What the readings so far make of each consumer: since when it has had events waiting
/// with its acknowledged position standing still (stalled), when the first event waiting for
/// it was published (behind), and since when it could not be read (unreadable).
#[derive(Debug, Default)]
pub struct InboxTracker {
    consumers: std::collections::BTreeMap<String, Watched>,
}

#[derive(Debug, Default)]
struct Watched {
    acked_through: Option<u64>,
    waiting: u64,
    oldest_published: Option<SystemTime>,
    stalled_since: Option<Instant>,
    unreadable: Option<(Instant, String)>,
}

impl InboxTracker {
    /// Records one reading of `consumer`, taken at `now`.
    pub fn observe(&mut self, consumer: &str, seen: Seen, now: Instant) {
        let w = self.consumers.entry(consumer.to_owned()).or_default();
        match seen {
            Seen::Unreadable(why) => match &mut w.unreadable {
                Some((_, last)) => *last = why,
                None => w.unreadable = Some((now, why)),
            },
            Seen::Progress {
                waiting,
                acked_through,
                oldest_published,
            } => {
                w.unreadable = None;
                w.waiting = waiting;
                w.oldest_published = oldest_published.filter(|_| waiting > 0);
                w.stalled_since = if waiting == 0 {
                    None
                } else if w.acked_through != Some(acked_through) {
                    // Moved since the last reading (or the first reading): the clock starts.
                    Some(now)
                } else {
                    w.stalled_since.or(Some(now))
                };
                w.acked_through = Some(acked_through);
            }
        }
    }

    /// The consumers stalled, behind or unreadable by more than `limit`, as of `now` (the
    /// monotonic clock, for how long) and `wall` (against when events were published).
    pub fn lagging(&self, limit: Duration, now: Instant, wall: SystemTime) -> Vec<Lagging> {
        let mut out = Vec::new();
        for (name, w) in &self.consumers {
            if let Some((since, why)) = &w.unreadable {
                let for_ = now.saturating_duration_since(*since);
                if for_ > limit {
                    out.push(Lagging::Unreadable {
                        consumer: name.clone(),
                        for_,
                        why: why.clone(),
                    });
                    continue;
                }
            }
            if let Some(since) = w.stalled_since {
                let for_ = now.saturating_duration_since(since);
                if for_ > limit {
                    out.push(Lagging::Stalled {
                        consumer: name.clone(),
                        waiting: w.waiting,
                        for_,
                    });
                    continue;
                }
            }
            // A clock behind the server's reads as no lag.
            let by = w
                .oldest_published
                .and_then(|published| wall.duration_since(published).ok());
            if let Some(by) = by.filter(|by| *by > limit) {
                out.push(Lagging::Behind {
                    consumer: name.clone(),
                    by,
                });
            }
        }
        out
    }
}

/// Logs when the NATS connection is lost and when it is back; whether it is up now.
fn watch_nats(client: &async_nats::Client, was_up: bool) -> bool {
    let up = client.connection_state() == State::Connected;
    if up != was_up {
        if up {
            tracing::info!("NATS connection is back; the relay publishes what waited");
        } else {
            tracing::warn!("NATS connection lost; events wait in the outbox and writes go on");
        }
    }
    up
}

async fn report(health: &HealthReporter, services: &[String], status: ServingStatus) {
    health.set_service_status("", status).await;
    for s in services {
        health.set_service_status(s, status).await;
    }
}

/// What the checks so far make of the service: SERVING until `failures_to_fail` checks in a
/// row have failed, SERVING again at the first that passes.
#[derive(Debug)]
pub struct Tracker {
    failures_to_fail: u32,
    failures: u32,
    serving: bool,
}

impl Tracker {
    pub fn new(failures_to_fail: u32) -> Self {
        Self {
            failures_to_fail: failures_to_fail.max(1),
            failures: 0,
            serving: true,
        }
    }

    /// Records one check; the status to report when it changed.
    pub fn observe(&mut self, passed: bool) -> Option<ServingStatus> {
        self.failures = if passed {
            0
        } else {
            self.failures.saturating_add(1)
        };
        let serving = self.failures < self.failures_to_fail;
        if serving == self.serving {
            return None;
        }
        self.serving = serving;
        Some(if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }
}

/// A connection of its own to the pool's database, opened when needed and dropped after a
/// failed check.
pub struct DatabaseProbe {
    options: Arc<PgConnectOptions>,
    conn: Option<PgConnection>,
}

impl DatabaseProbe {
    /// Connects like `pool` does, but outside it.
    pub fn new(pool: &PgPool) -> Self {
        Self {
            options: pool.connect_options(),
            conn: None,
        }
    }

    /// How long the oldest event in the outbox has waited since it was committed (by the
    /// database's clock), None when it is empty.
    pub async fn outbox_lag(&mut self, timeout: Duration) -> anyhow::Result<Option<Duration>> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("not connected"))?;
        let query = sqlx::query_scalar::<_, f64>(
            "select greatest(extract(epoch from now() - enqueued_at), 0)::float8 \
             from outbox order by seq limit 1",
        )
        .fetch_optional(&mut *conn);
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok(seconds)) => Ok(seconds.map(Duration::from_secs_f64)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                self.conn = None;
                anyhow::bail!("no answer within {timeout:?}")
            }
        }
    }

    /// One round trip to the database, connecting first if needed, within `timeout`.
    pub async fn check(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let round_trip = async {
            if self.conn.is_none() {
                self.conn = Some(PgConnection::connect_with(&self.options).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            conn.execute("select 1").await?;
            anyhow::Ok(())
        };
        let result = match tokio::time::timeout(timeout, round_trip).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("no answer within {timeout:?}")),
        };
        if result.is_err() {
            // A connection in an unknown state (cut, or a query left running) is not reused.
            self.conn = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One slow or failed check under load does not take an instance out of rotation; the
    // `failures_to_fail`-th in a row does, and the first that passes brings it back.
    #[test]
    fn serving_changes_after_failures_in_a_row_and_back_at_the_first_pass() {
        let mut t = Tracker::new(2);
        assert_eq!(t.observe(true), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(
            t.observe(true),
            None,
            "one failure, then a pass: never left"
        );
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ServingStatus::NotServing));
        assert_eq!(t.observe(false), None, "reported once");
        assert_eq!(t.observe(true), Some(ServingStatus::Serving));
        assert_eq!(t.observe(true), None);
        let mut once = Tracker::new(0);
        assert_eq!(
            once.observe(false),
            Some(ServingStatus::NotServing),
            "0 means 1"
        );
    }

    // Events waiting with the consumer's position standing still for longer than the limit
    // are reported, exactly the limit is not; any acknowledgement restarts the clock; nothing
    // waiting is never stalled, however long the position stands; a first waiting event
    // published longer ago than the limit is reported as behind; a consumer the server could
    // not tell about is reported once that has lasted longer than the limit.
    #[test]
    fn consumers_are_reported_stalled_behind_or_unreadable_past_the_limit() {
        let limit = Duration::from_secs(60);
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let seen = |waiting, acked_through| Seen::Progress {
            waiting,
            acked_through,
            oldest_published: None,
        };
        let mut inbox = InboxTracker::default();
        inbox.observe("a", seen(0, 10), s(0));
        assert_eq!(inbox.lagging(limit, s(1000), wall), vec![], "idle");

        inbox.observe("a", seen(2, 10), s(1000));
        inbox.observe("a", seen(2, 10), s(1060));
        assert_eq!(inbox.lagging(limit, s(1060), wall), vec![]);
        let stalled = |secs, waiting| Lagging::Stalled {
            consumer: "a".into(),
            waiting,
            for_: Duration::from_secs(secs),
        };
        assert_eq!(inbox.lagging(limit, s(1061), wall), vec![stalled(61, 2)]);
        // One acknowledged: moving again, the clock restarts with what still waits.
        inbox.observe("a", seen(1, 11), s(1062));
        assert_eq!(inbox.lagging(limit, s(1100), wall), vec![]);
        inbox.observe("a", seen(1, 11), s(1123));
        assert_eq!(inbox.lagging(limit, s(1123), wall), vec![stalled(61, 1)]);
        inbox.observe("a", seen(0, 12), s(1124));
        assert_eq!(inbox.lagging(limit, s(5000), wall), vec![], "caught up");

        // Unreadable: from the first failed reading; a good one clears it.
        inbox.observe("b", Seen::Unreadable("timed out".into()), s(2000));
        inbox.observe("b", Seen::Unreadable("no responders".into()), s(2030));
        assert_eq!(inbox.lagging(limit, s(2060), wall), vec![]);
        assert_eq!(
            inbox
                .lagging(limit, s(2061), wall)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["consumer b could not be read from NATS for 61s (no responders)"]
        );
        inbox.observe("b", seen(0, 0), s(2062));
        assert_eq!(inbox.lagging(limit, s(2062), wall), vec![]);
        // Stalled before it became unreadable: still stalled once readable again.
        inbox.observe("a", seen(3, 12), s(3000));
        inbox.observe("a", Seen::Unreadable("x".into()), s(3010));
        inbox.observe("a", seen(3, 12), s(3061));
        assert_eq!(inbox.lagging(limit, s(3061), wall), vec![stalled(61, 3)]);

        // Moving, but through a backlog whose first event was published more than the limit
        // ago: behind, until nothing old waits. Exactly the limit is not; a first event
        // stamped after this clock's now is no lag.
        inbox.observe("a", seen(0, 13), s(3999));
        let behind = |published: SystemTime, waiting| Seen::Progress {
            waiting,
            acked_through: 500,
            oldest_published: Some(published),
        };
        inbox.observe("c", behind(wall - limit, 900), s(4000));
        assert_eq!(inbox.lagging(limit, s(4000), wall), vec![]);
        inbox.observe("c", behind(wall - limit * 10, 900), s(4001));
        assert_eq!(
            inbox
                .lagging(limit, s(4001), wall)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["consumer c is behind: the first event waiting for it was published 600s ago"]
        );
        inbox.observe("c", behind(wall + limit, 1), s(4002));
        assert_eq!(inbox.lagging(limit, s(4002), wall), vec![]);
        inbox.observe("c", behind(wall - limit * 10, 0), s(4003));
        assert_eq!(inbox.lagging(limit, s(4003), wall), vec![], "nothing waits");
    }
}
