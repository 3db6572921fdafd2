//! Idempotent creation of the one stream that carries every event.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, StorageType};

use super::EventBus;

/// Duplicate window for `Nats-Msg-Id` dedupe: longer than any relay retry cycle.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

pub async fn ensure_stream(bus: &EventBus) -> anyhow::Result<()> {
    let config = Config {
        name: bus.stream.clone(),
        subjects: vec![format!("{}.>", bus.prefix)],
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        // Long retention: other government systems replay history.
        max_age: Duration::from_secs(10 * 365 * 24 * 3600),
        ..Default::default()
    };
    let mut stream = bus
        .js
        .get_or_create_stream(config)
        .await
        .map_err(|e| anyhow::anyhow!("creating stream {}: {e}", bus.stream))?;
    // A stream made before (by an older version, by hand, by a restore) keeps its own
    // settings, and with the server's default two minutes the relay's retry of a publish
    // whose acknowledgement was lost, after a longer NATS outage or relay handover, would be
    // stored twice for subscribers. Widened here; a stream the server refuses to change is
    // named in a warning.
    let current = stream
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("reading stream {}: {e}", bus.stream))?
        .config
        .clone();
    if current.duplicate_window < DUPLICATE_WINDOW {
        let widened = Config {
            duplicate_window: DUPLICATE_WINDOW,
            ..current.clone()
        };
        match bus.js.update_stream(&widened).await {
            Ok(_) => tracing::info!(
                stream = %bus.stream,
                was = ?current.duplicate_window,
                now = ?DUPLICATE_WINDOW,
                "widened the stream's duplicate window"
            ),
            Err(e) => tracing::warn!(
                stream = %bus.stream,
                window = ?current.duplicate_window,
                error = %e,
                "the stream's duplicate window is shorter than the relay needs; a publish \
                 retried after it may be stored twice"
            ),
        }
    }
    Ok(())
}

/// Makes the stream once NATS answers, for a service that started without it
/// ([`super::EventBus::connect_or_defer`]): tries every few seconds until it succeeds or
/// `shutdown`, warning at most once a minute.
pub async fn ensure_stream_when_reachable(bus: EventBus, mut shutdown: crate::shutdown::Shutdown) {
    let mut last_warned: Option<tokio::time::Instant> = None;
    loop {
        match ensure_stream(&bus).await {
            Ok(()) => {
                tracing::info!(stream = %bus.stream, "NATS answers: the stream is ready");
                return;
            }
            Err(e) => {
                if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    if bus.is_connected() {
                        // NATS answers and refuses: a configuration to fix.
                        tracing::error!(error = %e, stream = %bus.stream,
                            "NATS refuses the stream; events wait in the outbox until it is fixed");
                    } else {
                        tracing::warn!(error = %e, "NATS is still away; the stream is made once it is back");
                    }
                    last_warned = Some(tokio::time::Instant::now());
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait() => return,
        }
    }
}
