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
//!   NOT_SERVING while one of the service's consumers has not received events for longer than
//!   [`Readiness::inbox_lag`] (not connected, NATS away, its stream gone), or is further than
//!   that behind the stream (an event held through a database outage, a backlog); SERVING once
//!   each receives and is within it; each change is logged, with the consumers concerned. A
//!   read model fed by events decides with what it has: this is how an operator learns that
//!   what it has is old.
//!
//! When shutdown starts the task reports NOT_SERVING for the services and the server, and
//! stops; [`crate::grpc::GrpcServer::serve`] reports the server NOT_SERVING too.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use async_nats::connection::State;
use sqlx::{Connection, Executor, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{events::consumer::Progress, shutdown::Shutdown};

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
    /// How long a consumer may be without events, or behind the stream, before
    /// [`INBOX_SERVICE`] reports NOT_SERVING.
    pub inbox_lag: Duration,
}

/// The health-service name under which events waiting too long in the outbox are reported.
pub const OUTBOX_SERVICE: &str = "fupin.events.Outbox";

/// The health-service name under which consumers not receiving, or behind the stream, are
/// reported.
pub const INBOX_SERVICE: &str = "fupin.events.Inbox";

/// Checks the database (and watches NATS and the service's consumers, when it has them) every
/// `config.every` until `shutdown`, reporting `services` and the server as a whole SERVING or
/// NOT_SERVING on `health`.
pub fn spawn(
    config: Readiness,
    health: HealthReporter,
    services: Vec<String>,
    pool: &PgPool,
    nats: Option<async_nats::Client>,
    consumers: Option<Progress>,
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
            if let Some(progress) = &consumers {
                events_applied = watch_inbox(progress, &health, &config, events_applied).await;
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

/// Reports [`INBOX_SERVICE`] when whether every consumer receives and keeps up changes;
/// whether they do now.
async fn watch_inbox(
    progress: &Progress,
    health: &HealthReporter,
    config: &Readiness,
    kept_up: bool,
) -> bool {
    let lagging = progress.lagging(config.inbox_lag, Instant::now(), SystemTime::now());
    let keep_up = lagging.is_empty();
    if keep_up == kept_up {
        return keep_up;
    }
    let status = if keep_up {
        tracing::info!("every consumer receives events and keeps up with the stream again");
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
}
