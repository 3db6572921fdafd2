//! `fupinctl events tail`: a plain JetStream subscriber. It creates an ephemeral ordered
//! consumer (no acks, nothing left behind on the server) and prints one line per event with the
//! CloudEvents headers and the protobuf payload decoded by `ce-type`.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use fupin_platform::events::headers;
use fupin_proto::{industry, intake, rating, risk};
use futures::StreamExt;

use crate::Global;

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Replay the stream from its first message (default: only events published from now on).
    #[arg(long)]
    pub from_start: bool,
    /// Subject pattern to follow; default `<prefix>.>` (every event, dead letters included).
    /// As the shipped configuration's `subscriber` user, name one subject it may read.
    #[arg(long)]
    pub filter: Option<String>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long)]
    pub timeout_secs: Option<u64>,
}

pub async fn run(g: &Global, args: &TailArgs) -> anyhow::Result<()> {
    let (options, address) = fupin_platform::events::nats_options(&g.nats_url)?;
    // NATS refuses a request this user may not publish with an error on the connection, not an
    // answer: the request itself would only time out. The error is kept to say why.
    let (refused_tx, mut refused) = tokio::sync::watch::channel(None::<String>);
    let client = options
        .event_callback(move |event| {
            if let async_nats::Event::ServerError(async_nats::ServerError::Other(e)) = &event
                && e.to_ascii_lowercase().contains("permissions violation")
            {
                refused_tx.send_replace(Some(e.clone()));
            }
            async {}
        })
        .connection_timeout(Duration::from_secs(5))
        .name("fupinctl events tail")
        .connect(address.as_str())
        .await
        .with_context(|| format!("connecting to NATS at {address}"))?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&g.stream).await.with_context(|| {
        format!(
            "stream {} (has any service or `fupinctl demo seed` run yet?)",
            g.stream
        )
    })?;
    let filter = args
        .filter
        .clone()
        .unwrap_or_else(|| format!("{}.>", g.prefix));
    let create = stream.create_consumer(OrderedConfig {
        // Named, so that the `subscriber` user of the shipped NATS configuration may create
        // it (with `--filter` on one of its subjects).
        name: Some(format!("fupinctl-tail-{}", uuid::Uuid::now_v7().simple())),
        filter_subject: filter.clone(),
        deliver_policy: if args.from_start {
            DeliverPolicy::All
        } else {
            DeliverPolicy::New
        },
        ..Default::default()
    });
    let consumer = tokio::select! {
        created = create => {
            created.with_context(|| format!("creating an ordered consumer on {}", g.stream))?
        }
        Ok(()) = refused.changed() => {
            let why = refused.borrow().clone().unwrap_or_default();
            anyhow::bail!(
                "NATS refused to create a consumer of {filter} on stream {} for this user \
                 ({why}); as the shipped configuration's `subscriber`, pass --filter with one \
                 of the subjects it may read (README \"Subscribing to the events\")",
                g.stream
            );
        }
    };
    let mut messages = consumer.messages().await.context("subscribing")?;
    eprintln!(
        "fupinctl: following {filter} on stream {} ({})",
        g.stream,
        if args.from_start {
            "from the start"
        } else {
            "new events only"
        }
    );

    let silence = args.timeout_secs.map(Duration::from_secs);
    let mut seen = 0_u64;
    while args.count.is_none_or(|n| seen < n) {
        let next = match silence {
            Some(t) => match tokio::time::timeout(t, messages.next()).await {
                Ok(next) => next,
                Err(_) => {
                    eprintln!(
                        "fupinctl: no message for {}s, stopping after {seen}",
                        t.as_secs()
                    );
                    break;
                }
            },
            None => messages.next().await,
        };
        let Some(msg) = next else { break };
        let msg = msg.context("receiving from JetStream")?;
        crate::print_line(format_message(&msg, &g.prefix))?;
        seen += 1;
    }
    Ok(())
}

fn format_message(msg: &jetstream::Message, prefix: &str) -> String {
    let h = msg.headers.as_ref();
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
    let header = |name: &str| headers::get(h, name).unwrap_or("-").to_owned();
    // Without ce-type (a foreign publisher), fall back to the type the subject names.
    let ce_type = headers::get(h, headers::CE_TYPE)
        .map(str::to_owned)
        .or_else(|| type_from_subject(prefix, &msg.subject));
    let payload = match &ce_type {
        Some(t) => decode(t, &msg.payload),
        None => format!("<{} bytes>", msg.payload.len()),
    };
    let mut line = format!(
        "#{seq} {subject} ce-id={} ce-type={} ce-source={} ce-time={} ce-subject={} traceparent={}",
        header(headers::CE_ID),
        header(headers::CE_TYPE),
        header(headers::CE_SOURCE),
        header(headers::CE_TIME),
        header(headers::CE_SUBJECT),
        header(headers::TRACEPARENT),
        subject = msg.subject,
    );
    if let Some(err) = headers::get(h, headers::DLQ_ERROR) {
        line.push_str(&format!(" dlq-error={err:?}"));
    }
    line.push(' ');
    line.push_str(&payload);
    line
}

/// `<prefix>.risk.v1.LoanOverdue` -> `fupin.risk.v1.LoanOverdue`.
fn type_from_subject(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    (rest.split('.').count() == 3).then(|| format!("fupin.{rest}"))
}

/// The payload decoded as the protobuf message named by `ce_type`, printed with `{:?}`;
/// unknown types print their length.
pub fn decode(ce_type: &str, payload: &[u8]) -> String {
    macro_rules! known {
        ($($ty:ty),+ $(,)?) => {
            $(
                if ce_type == <$ty as prost::Name>::full_name() {
                    return match <$ty as prost::Message>::decode(payload) {
                        Ok(m) => format!("{m:?}"),
                        Err(e) => format!("<{} bytes, not a valid {ce_type}: {e}>", payload.len()),
                    };
                }
            )+
        };
    }
    known!(
        rating::v1::CreditRatingEffective,
        rating::v1::CreditVillageStatusChanged,
        rating::v1::BlacklistEntryAdded,
        rating::v1::BlacklistEntryRemoved,
        risk::v1::NplThresholdExceeded,
        risk::v1::LendingResumed,
        industry::v1::EnterpriseQualificationChanged,
        intake::v1::ApplicationSubmitted,
        intake::v1::ApplicationStatusChanged,
        intake::v1::ApplicationStepOverdue,
        intake::v1::LoanDisbursed,
        intake::v1::ComplaintOverdue,
        intake::v1::ComplaintAnswered,
    );
    format!("<{} bytes>", payload.len())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn known_types_are_decoded() {
        let ev = risk::v1::NplThresholdExceeded {
            area_code: "410311101".into(),
            npl_ratio: "0.0600".into(),
            threshold: "0.0500".into(),
            measured_at: "2026-11-29T00:00:00Z".into(),
            sequence: 1,
        };
        let out = decode("fupin.risk.v1.NplThresholdExceeded", &ev.encode_to_vec());
        assert!(out.starts_with("NplThresholdExceeded {"), "{out}");
        assert!(out.contains("\"0.0600\""), "{out}");

        let ev = intake::v1::ComplaintOverdue {
            complaint_id: "c1".into(),
            ..Default::default()
        };
        let out = decode("fupin.intake.v1.ComplaintOverdue", &ev.encode_to_vec());
        assert!(out.contains("\"c1\""), "{out}");
    }

    #[test]
    fn unknown_types_print_their_length() {
        assert_eq!(decode("fupin.other.v1.Thing", &[1, 2, 3]), "<3 bytes>");
        assert!(decode("fupin.risk.v1.LendingResumed", &[0xff, 0xff]).contains("not a valid"));
    }

    #[test]
    fn type_is_derived_from_the_subject() {
        assert_eq!(
            type_from_subject("t1", "t1.risk.v1.LoanOverdue").as_deref(),
            Some("fupin.risk.v1.LoanOverdue")
        );
        assert_eq!(type_from_subject("fupin", "fupin.dlq.intake"), None);
        assert_eq!(type_from_subject("fupin", "fupinx.risk.v1.X"), None);
    }
}
