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
    bus.js
        .get_or_create_stream(config)
        .await
        .map_err(|e| anyhow::anyhow!("creating stream {}: {e}", bus.stream))?;
    Ok(())
}
