//! Events over NATS JetStream (ARCHITECTURE.md "Events").
//!
//! - [`outbox::enqueue`] writes an event in the caller's transaction (R-X-2);
//! - [`relay::spawn`] publishes the rows in order, waits for each ack and deletes the
//!   row once acknowledged;
//! - [`consumer::spawn`] applies each delivered event once, recording it in the inbox
//!   inside the handler's transaction, and dead-letters poison messages.
//!
//! Subjects are `<prefix>.<ctx>.v1.<EventName>`; the payload is the protobuf message of that
//! name; headers follow the CloudEvents NATS binding plus `Nats-Msg-Id` and `traceparent`.

pub mod consumer;
pub mod headers;
pub mod outbox;
pub mod relay;
pub mod stream;

use std::time::Duration;

/// Where this service's events go and where it listens.
#[derive(Clone, Debug)]
pub struct EventBus {
    pub js: async_nats::jetstream::Context,
    /// `fupin` in production; unique per test so tests never collide.
    pub prefix: String,
    pub stream: String,
    /// CloudEvents `source` of events this service produces, e.g. `/fupin/intake`.
    pub source: String,
}

impl EventBus {
    /// Connects to NATS (retrying the first connection, reconnecting forever afterwards) and
    /// makes sure the stream exists.
    pub async fn connect(
        url: &str,
        prefix: &str,
        stream: &str,
        source: &str,
    ) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .name(source)
            .connect(url)
            .await?;
        let js = async_nats::jetstream::new(client);
        let bus = Self {
            js,
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            source: source.to_owned(),
        };
        stream::ensure_stream(&bus).await?;
        Ok(bus)
    }

    /// Subject of an event type given its protobuf full name (`fupin.intake.v1.X`).
    pub fn subject_for(&self, full_name: &str) -> String {
        subject_for(&self.prefix, full_name)
    }

    /// Publishes an event at once, bypassing the outbox, with the full CloudEvents headers:
    /// for tools and tests that stand in for another service (the demo seed, the load
    /// generator). A service's own events always go through the outbox. Returns the `ce-id`
    /// and the stream sequence.
    pub async fn publish_now<M: prost::Message + prost::Name>(
        &self,
        event: &M,
        about: Option<&str>,
        traceparent: Option<&str>,
    ) -> anyhow::Result<(String, u64)> {
        let ce_type = M::full_name();
        let id = uuid::Uuid::now_v7().to_string();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let h = headers::build(&headers::CloudEvent {
            id: &id,
            ce_type: &ce_type,
            source: &self.source,
            time_rfc3339: &time,
            subject: about,
            traceparent,
        });
        let subject = self.subject_for(&ce_type);
        let ack = self
            .js
            .publish_with_headers(subject.clone(), h, event.encode_to_vec().into())
            .await
            .map_err(|e| anyhow::anyhow!("publishing {subject}: {e}"))?
            .await
            .map_err(|e| anyhow::anyhow!("JetStream ack for {subject}: {e}"))?;
        Ok((id, ack.sequence))
    }

    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.prefix)
    }
}

/// `fupin.intake.v1.ApplicationSubmitted` with prefix `t123` -> `t123.intake.v1.ApplicationSubmitted`.
pub fn subject_for(prefix: &str, full_name: &str) -> String {
    let rest = full_name.strip_prefix("fupin.").unwrap_or(full_name);
    format!("{prefix}.{rest}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_mapping() {
        assert_eq!(
            super::subject_for("fupin", "fupin.risk.v1.LoanOverdue"),
            "fupin.risk.v1.LoanOverdue"
        );
        assert_eq!(
            super::subject_for("t1", "fupin.intake.v1.ApplicationSubmitted"),
            "t1.intake.v1.ApplicationSubmitted"
        );
    }
}
