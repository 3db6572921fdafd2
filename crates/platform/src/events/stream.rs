//! Idempotent creation of the one stream that carries every event.

use std::time::Duration;

use async_nats::jetstream::{
    context::{CreateStreamError, CreateStreamErrorKind},
    stream::{Config, StorageType},
};

use super::EventBus;

/// Duplicate window for `Nats-Msg-Id` dedupe: longer than any relay retry cycle.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

/// Makes sure the stream exists; when JetStream cannot be reached (NATS down, not answering),
/// keeps trying in the background instead of failing, so that a service starts and serves
/// while NATS is away: its writes wait in the outbox and its consumers and health report the
/// outage until the stream is there. Any other refusal (a stream of that name configured
/// otherwise, a bad name) fails at once. Returns the background task, if one was needed.
pub async fn ensure_stream_or_keep_trying(
    bus: &EventBus,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    match create(bus).await {
        Ok(()) => Ok(None),
        Err(e) if unreachable(&e) => {
            tracing::warn!(stream = %bus.stream, error = %e,
                "JetStream is not reachable; starting without it and making sure of the stream \
                 in the background");
            let bus = bus.clone();
            Ok(Some(tokio::spawn(async move {
                let mut tries = 0_u32;
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    match create(&bus).await {
                        Ok(()) => {
                            tracing::info!(stream = %bus.stream, "JetStream reached; stream ready");
                            return;
                        }
                        Err(e) => {
                            tries += 1;
                            if tries.is_multiple_of(30) {
                                tracing::warn!(stream = %bus.stream, error = %e,
                                    "JetStream still not reachable");
                            }
                        }
                    }
                }
            })))
        }
        Err(e) => Err(anyhow::anyhow!("creating stream {}: {e}", bus.stream)),
    }
}

/// Whether creating the stream failed for want of JetStream, not because of what was asked.
fn unreachable(e: &CreateStreamError) -> bool {
    matches!(
        e.kind(),
        CreateStreamErrorKind::TimedOut
            | CreateStreamErrorKind::JetStreamUnavailable
            | CreateStreamErrorKind::Response
    )
}

pub async fn ensure_stream(bus: &EventBus) -> anyhow::Result<()> {
    create(bus)
        .await
        .map_err(|e| anyhow::anyhow!("creating stream {}: {e}", bus.stream))
}

async fn create(bus: &EventBus) -> Result<(), CreateStreamError> {
    let config = Config {
        name: bus.stream.clone(),
        subjects: vec![format!("{}.>", bus.prefix)],
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        // Long retention: other government systems replay history.
        max_age: Duration::from_secs(10 * 365 * 24 * 3600),
        ..Default::default()
    };
    bus.js.get_or_create_stream(config).await?;
    Ok(())
}
