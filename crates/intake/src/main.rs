//! Wires config, telemetry, store, events and the gRPC server together.

use std::{ops::RangeInclusive, sync::Arc, time::Duration};

use anyhow::Context;
use fupin_intake::{MIGRATIONS, Reference, Runtime, run};
use fupin_platform::{
    BaseConfig,
    clock::AdjustableClock,
    config, db,
    events::{EventBus, StreamState},
    grpc, shutdown, telemetry,
};

#[global_allocator]
static ALLOCATOR: fupin_platform::Allocator = fupin_platform::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = BaseConfig::from_env("intake", "intake", 50051)?;
    let _telemetry = telemetry::init("fupin-intake", config.json_logs)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.dev {
        tracing::warn!(
            "FUPIN_DEV=1: secrets left unset use the development keys published in the source \
             (never in production)"
        );
    }
    tracing::info!(keys = %config.token_keys.describe(), "bearer tokens verified with");
    tracing::info!(
        calendar = %config.calendar_dir.display(),
        areas = %config.areas_file.display(),
        policy = %config.policy_dir.display(),
        "reference data read from"
    );
    let grpc_tls = config.grpc_tls.as_ref().map(grpc::server_tls).transpose()?;
    let reference = Reference::load(&config)?;
    for mistake in fupin_intake::app::calendar_mistakes(&reference.calendar) {
        tracing::warn!("{mistake}");
    }
    let clock = test_clock_start(config.test_clock)?;
    let max_conns = from_env(
        "DATABASE_MAX_CONNECTIONS",
        32,
        "number of connections",
        POOL,
    )?
    .try_into()
    .context("DATABASE_MAX_CONNECTIONS is too large")?;
    // Every setting is read before anything is done with them: a mistyped one stops the start
    // before the database is migrated or the port bound.
    let scan_secs = from_env("DEADLINE_SCAN_SECONDS", 300, "number of seconds", PERIOD)?;
    // R-CR-11: re-seal the values sealed with the keys being retired, at start and then
    // hourly by default.
    let retiring: Vec<String> = env_value("PII_RETIRING_KEYS")?
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    let retiring = fupin_intake::reseal::Retiring::new(&config.pii, &retiring)?;
    let reseal_secs = from_env("PII_RESEAL_SECONDS", 3600, "number of seconds", PERIOD)?;
    let readiness = readiness()?;
    let shutdown_drain = Duration::from_secs(from_env(
        "SHUTDOWN_DRAIN_SECONDS",
        0,
        "number of seconds",
        DRAIN,
    )?);
    // Each dependency's failure names the setting that points at it (without credentials).
    let pool = db::connect_and_migrate(&config.database_url, max_conns, &MIGRATIONS)
        .await
        .with_context(|| at("PostgreSQL", "DATABASE_URL", &config.database_url))?;
    // Keys that did not write this database's personal data stop the start (R-CR-11).
    if !db::pii_keys_recorded(&pool).await? {
        fupin_intake::store::pii::check_keys_open_stored(&pool, &config.pii).await?;
    }
    db::verify_pii_keys(&pool, &config.pii).await?;
    // NATS away at start does not stop it (it serves while NATS is away later too); a NATS
    // that answers and refuses the stream does.
    let (bus, stream) = EventBus::connect_or_defer(
        &config.nats_url,
        &config.subject_prefix,
        &config.stream_name,
        "/fupin/intake",
    )
    .await
    .with_context(|| at("NATS", "NATS_URL", &config.nats_url))?;
    let listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("binding GRPC_ADDR {}", config.grpc_addr))?;
    if config.test_clock {
        tracing::warn!(
            "FUPIN_TEST_CLOCK=1: the admin RPC may move this service's clock (never in production)"
        );
    }
    tracing::info!(addr = %listener.local_addr()?, "intake listening");
    let (_trigger, shutdown) = shutdown::on_signals();
    if stream == StreamState::Pending {
        tokio::spawn(
            fupin_platform::events::stream::ensure_stream_when_reachable(
                bus.clone(),
                shutdown.clone(),
            ),
        );
    }
    run(
        Runtime {
            pool,
            bus,
            clock,
            token_keys: config.token_keys.clone(),
            pii: config.pii.clone(),
            test_clock: config.test_clock,
            reference,
            scan_interval: Some(Duration::from_secs(scan_secs)),
            reseal: Some((retiring, Duration::from_secs(reseal_secs))),
            grpc_tls,
            readiness: Some(readiness),
            shutdown_drain,
            submit_deadline: fupin_intake::submit::STATEMENT_DEADLINE,
        },
        listener,
        shutdown,
    )
    .await
}

/// A dependency named by the setting that points at it, without its credentials.
fn at(what: &str, setting: &str, url: &str) -> String {
    format!(
        "{what} at {setting} {}",
        fupin_platform::events::redacted(url)
    )
}

/// How often (`HEALTH_CHECK_SECONDS`, default 5) the database is checked for
/// `grpc.health.v1`, and how many failed checks in a row (`HEALTH_FAILURES_TO_FAIL`, default
/// 2) report NOT_SERVING.
fn readiness() -> anyhow::Result<fupin_platform::health::Readiness> {
    let every = Duration::from_secs(from_env(
        "HEALTH_CHECK_SECONDS",
        5,
        "number of seconds",
        PERIOD,
    )?);
    let failures_to_fail = from_env("HEALTH_FAILURES_TO_FAIL", 2, "number of checks", CHECKS)?
        .try_into()
        .context("HEALTH_FAILURES_TO_FAIL is too large")?;
    Ok(fupin_platform::health::Readiness {
        every,
        // A check may take most of the period, never more: checks do not pile up.
        timeout: every.mul_f32(0.8).min(Duration::from_secs(3)),
        failures_to_fail,
        outbox_lag: Duration::from_secs(from_env(
            "OUTBOX_ALERT_SECONDS",
            60,
            "number of seconds",
            THRESHOLD,
        )?),
        inbox_lag: Duration::from_secs(from_env(
            "INBOX_ALERT_SECONDS",
            60,
            "number of seconds",
            THRESHOLD,
        )?),
    })
}

/// The service's clock: the system's, or with `FUPIN_TEST_CLOCK_START` (an RFC 3339 instant,
/// only with the test clock on) starting from that instant, so that tests and demos whose data
/// is dated do not depend on the day they run.
fn test_clock_start(test_clock: bool) -> anyhow::Result<Arc<AdjustableClock>> {
    let clock = AdjustableClock::new();
    if let Some(start) = env_value("FUPIN_TEST_CLOCK_START")? {
        anyhow::ensure!(
            test_clock,
            "FUPIN_TEST_CLOCK_START needs FUPIN_TEST_CLOCK=1 (never in production)"
        );
        let at = chrono::DateTime::parse_from_rfc3339(start.trim()).with_context(|| {
            format!("FUPIN_TEST_CLOCK_START: {start:?} is not an RFC 3339 instant")
        })?;
        clock
            .set(at.to_utc())
            .map_err(|_| anyhow::anyhow!("FUPIN_TEST_CLOCK_START: {start:?} is out of range"))?;
        tracing::warn!(start = %at, "the test clock starts at FUPIN_TEST_CLOCK_START");
    }
    Ok(clock)
}

/// Periods in seconds (the deadline scan, re-sealing, health checks): at
/// least one (a zero period would stop the timer's task, the deadline scan of R-IN-4 and
/// R-IN-7 among them, while the service otherwise looked healthy) and at most a week (tokio's
/// timer panics on a period near `u64::MAX` seconds, and killed the task it ran in).
const PERIOD: RangeInclusive<u64> = 1..=604_800;
/// The drain after SIGTERM: none, up to an hour (the orchestrator's grace must exceed it).
const DRAIN: RangeInclusive<u64> = 0..=3_600;
/// The connection pool: the relay holds two connections for as long as it leads (its lock's
/// session and the listener that wakes it), so with fewer than four the calls, the consumers
/// and the submission writer's catch-ups would queue behind it, or starve.
const POOL: RangeInclusive<u64> = 4..=10_000;
/// A count of failed checks.
const CHECKS: RangeInclusive<u64> = 1..=1_000;
/// Alert thresholds in seconds (how long events may wait): compared, never waited for, so up
/// to a year (a deployment may set them high to quiet an alert).
const THRESHOLD: RangeInclusive<u64> = 1..=31_536_000;

/// A whole number from the environment within `range`, `default` when unset. Anything else
/// stops the start, naming the variable: a mistyped value would otherwise become the default,
/// or a timer that never fires.
fn from_env(
    name: &str,
    default: u64,
    what: &str,
    range: RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    config::whole(name, env_value(name)?.as_deref(), default, what, range)
}

/// A setting from the environment; empty counts as unset, as for the shared settings.
fn env_value(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) => anyhow::bail!("{name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use fupin_platform::config::whole;

    use super::{DRAIN, PERIOD, POOL};

    fn seconds(value: &str) -> anyhow::Result<u64> {
        whole("D", Some(value), 0, "number of seconds", DRAIN)
    }

    fn period(value: Option<&str>) -> anyhow::Result<u64> {
        whole("P", value, 300, "number of seconds", PERIOD)
    }

    // Operations: a drain of 0 seconds is allowed (no drain); anything not a whole number of
    // seconds up to an hour stops the start.
    #[test]
    fn drain_seconds_are_whole_and_may_be_zero() {
        assert_eq!(seconds("0").unwrap(), 0);
        assert_eq!(seconds(" 5 ").unwrap(), 5);
        assert_eq!(seconds("3600").unwrap(), 3600);
        for bad in ["-1", "1.5", "", "five", "3601", "18446744073709551615"] {
            let e = seconds(bad).expect_err(bad).to_string();
            assert!(
                e.contains("D=") && e.contains("whole number of seconds from 0 to 3600"),
                "{e}"
            );
        }
        assert_eq!(whole("D", None, 7, "number of seconds", DRAIN).unwrap(), 7);
    }

    // R-IN-4, R-IN-7: a period that would stop the deadline scan, or make its timer panic
    // (tokio overflows on a period near u64::MAX seconds), refuses to start.
    #[test]
    fn periods_are_positive_seconds_up_to_a_week() {
        assert_eq!(period(None).unwrap(), 300);
        assert_eq!(period(Some(" 60 ")).unwrap(), 60);
        assert_eq!(period(Some("604800")).unwrap(), 604_800);
        for bad in [
            "0",
            "-1",
            "1.5",
            "",
            "five",
            "604801",
            "9223372036854775808",
        ] {
            let e = period(Some(bad)).expect_err(bad).to_string();
            assert!(e.contains("P=") && e.contains("from 1 to 604800"), "{e}");
        }
    }

    // A pool the relay alone would hold refuses to start.
    #[test]
    fn the_pool_leaves_room_beside_the_relay() {
        let pool = |v| whole("N", Some(v), 32, "number of connections", POOL);
        assert_eq!(pool("4").unwrap(), 4);
        for bad in ["1", "2", "3", "10001"] {
            let e = pool(bad).expect_err(bad).to_string();
            assert!(e.contains("from 4 to 10000"), "{e}");
        }
    }
}
