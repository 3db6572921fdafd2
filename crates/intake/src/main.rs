//! Wires config, telemetry, store, events and the gRPC server together.

use std::time::Duration;

use fupin_intake::{MIGRATIONS, Reference, Runtime, run};
use fupin_platform::{
    BaseConfig, clock::AdjustableClock, db, events::EventBus, shutdown, telemetry,
};

#[global_allocator]
static ALLOCATOR: fupin_platform::Allocator = fupin_platform::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = BaseConfig::from_env("intake", "intake", 50051)?;
    let _telemetry = telemetry::init("fupin-intake", config.json_logs)?;
    let reference = Reference::load(&config)?;
    let max_conns = std::env::var("DATABASE_MAX_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let pool = db::connect_and_migrate(&config.database_url, max_conns, &MIGRATIONS).await?;
    let bus = EventBus::connect(
        &config.nats_url,
        &config.subject_prefix,
        &config.stream_name,
        "/fupin/intake",
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    if config.test_clock {
        tracing::warn!(
            "FUPIN_TEST_CLOCK=1: the admin RPC may move this service's clock (never in production)"
        );
    }
    tracing::info!(addr = %listener.local_addr()?, "intake listening");
    let scan_secs = std::env::var("DEADLINE_SCAN_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // R-CR-11: re-seal the values sealed with the keys being retired, at start and then
    // hourly by default.
    let retiring: Vec<String> = std::env::var("PII_RETIRING_KEYS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    let retiring = fupin_intake::reseal::Retiring::new(&config.pii, &retiring)?;
    let reseal_secs: u64 = std::env::var("PII_RESEAL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(3600);
    let (_trigger, shutdown) = shutdown::on_signals();
    run(
        Runtime {
            pool,
            bus,
            clock: AdjustableClock::new(),
            jwt_secret: config.jwt_secret.clone(),
            pii: config.pii.clone(),
            test_clock: config.test_clock,
            reference,
            scan_interval: Some(Duration::from_secs(scan_secs)),
            reseal: Some((retiring, Duration::from_secs(reseal_secs))),
        },
        listener,
        shutdown,
    )
    .await
}
