//! Readiness: what `grpc.health.v1` answers follows the service's dependencies, so a load
//! balancer or `docker compose` stops sending calls to an instance that cannot serve them.
//!
//! - **PostgreSQL** decides. Every call reads or writes the service's own database: after
//!   [`Readiness::failures_to_fail`] failed checks in a row (each bounded by
//!   [`Readiness::timeout`]) the service and the server (`""`) report NOT_SERVING; the first
//!   check that passes reports SERVING again.
//! - **NATS** does not. Writes keep committing their events to the outbox while NATS is away
//!   and the relay publishes them once it is back (R-X-2), so an outage only delays events.
//!   It is logged when the connection is lost and when it is back.
//!
//! After shutdown starts the task stops; the server reports NOT_SERVING itself
//! ([`crate::grpc::GrpcServer::serve`]).

use std::time::Duration;

use async_nats::connection::State;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::shutdown::Shutdown;

/// How often and how patiently the dependencies are checked.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub every: Duration,
    pub timeout: Duration,
    /// Failed database checks in a row before NOT_SERVING: one slow check under load does not
    /// take an instance out of rotation.
    pub failures_to_fail: u32,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            failures_to_fail: 2,
        }
    }
}

/// Checks the database (and watches NATS) every `config.every` until `shutdown`, reporting
/// `services` and the server as a whole SERVING or NOT_SERVING on `health`.
pub fn spawn(
    config: Readiness,
    health: HealthReporter,
    services: Vec<String>,
    pool: PgPool,
    nats: Option<async_nats::Client>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tracker = Tracker::new(config.failures_to_fail);
        let mut nats_up = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            let answered = database_answers(&pool, config.timeout).await;
            if let Err(e) = &answered {
                tracing::warn!(error = %e, "readiness: the database does not answer");
            }
            // Never report SERVING once shutdown has started: the server reports NOT_SERVING.
            if let Some(status) = tracker.observe(answered.is_ok())
                && !shutdown.is_triggered()
            {
                if status == ServingStatus::Serving {
                    tracing::info!("readiness: the database answers again; SERVING");
                } else {
                    tracing::error!("readiness: the database does not answer; NOT_SERVING");
                }
                health.set_service_status("", status).await;
                for s in &services {
                    health.set_service_status(s, status).await;
                }
            }
            if let Some(client) = &nats {
                let up = client.connection_state() == State::Connected;
                if up != nats_up {
                    if up {
                        tracing::info!("NATS connection is back; the relay publishes what waited");
                    } else {
                        tracing::warn!(
                            "NATS connection lost; events wait in the outbox and writes go on"
                        );
                    }
                    nats_up = up;
                }
            }
        }
    })
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

/// One round trip to the database through the pool, within `timeout`.
pub async fn database_answers(pool: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    match tokio::time::timeout(timeout, sqlx::query("select 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!("no answer within {timeout:?}"),
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
