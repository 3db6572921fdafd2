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

use anyhow::Context;

/// Connect options for a NATS URL with the credentials it carries, which async-nats itself
/// ignores: `nats://user:password@host:4222` (user and password, percent-encoded) or
/// `nats://token@host:4222` (a token). `tls://` asks for TLS. A user's replies come on inbox
/// subjects of its own, `_INBOX_<user>.>`. Returns the options and the URL without
/// credentials, to connect to and to show in logs and errors.
pub fn nats_options(url: &str) -> anyhow::Result<(async_nats::ConnectOptions, String)> {
    let addr: async_nats::ServerAddr = url
        .parse()
        .with_context(|| format!("NATS_URL {:?} is not a NATS URL", redacted(url)))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .context("NATS_URL credentials are not UTF-8 once percent-decoded")
    };
    let options = async_nats::ConnectOptions::new();
    let options = match (addr.username(), addr.password()) {
        (Some(user), Some(password)) => {
            let user = decode(user)?;
            // Replies to this user (JetStream API answers, pull deliveries) on its own inbox
            // subjects, which a NATS permission can keep other users from subscribing to
            // (deploy/nats/nats.conf).
            let options = if !user.is_empty()
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                options.custom_inbox_prefix(format!("_INBOX_{user}"))
            } else {
                options
            };
            options.user_and_password(user, decode(password)?)
        }
        (Some(token), None) => options.token(decode(token)?),
        _ => options,
    };
    Ok((options, redacted(url)))
}

/// The URL without its credentials (`user:password@` or `token@`), for logs and errors; a URL
/// without a scheme (`user:password@host:4222`) too.
pub fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match scheme {
            Some(scheme) => format!("{scheme}://{}", &rest[at + 1..]),
            None => rest[at + 1..].to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn credentials_are_taken_from_the_url_and_kept_out_of_what_is_shown() {
        assert_eq!(
            redacted("nats://fupin:s3cr%40t@nats:4222"),
            "nats://nats:4222"
        );
        assert_eq!(
            redacted("nats://tok@127.0.0.1:4222/x@y"),
            "nats://127.0.0.1:4222/x@y"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redacted("127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(redacted("fupin:pw@nats:4222"), "nats:4222");
        let (_, shown) = nats_options("fupin:pw@nats:4222").unwrap();
        assert!(!shown.contains("pw"), "{shown}");
        let (_, shown) = nats_options("nats://fupin:s3cr%40t@nats:4222").unwrap();
        assert_eq!(shown, "nats://nats:4222");
        let err = nats_options("nats://u:p@").map(|_| ()).unwrap_err();
        assert!(!format!("{err:#}").contains(":p@"), "{err:#}");
    }
}

/// A service's connection options for `url` (named after its CloudEvents `source`), and the
/// address to connect to.
fn client_options(url: &str, source: &str) -> anyhow::Result<(async_nats::ConnectOptions, String)> {
    let (options, address) = nats_options(url)?;
    Ok((
        options
            .connection_timeout(Duration::from_secs(5))
            .name(source),
        address,
    ))
}

/// Whether the stream was made (or found) when the service started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    Ready,
    /// NATS did not answer at start: the stream is made once it does.
    Pending,
}

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
        let bus = Self::open(url, prefix, stream, source).await?;
        stream::ensure_stream(&bus).await?;
        Ok(bus)
    }

    /// [`EventBus::connect`] that does not wait for a NATS that is away: when it cannot be
    /// reached (refused, timed out, its name not resolved), the bus is returned with
    /// [`StreamState::Pending`] (the client keeps connecting in the background, and
    /// [`stream::ensure_stream_when_reachable`] makes the stream once NATS answers). A service
    /// then starts and serves while NATS is away, as it goes on serving when NATS goes away
    /// later: its events wait in the outbox. A NATS that answers and refuses (credentials, TLS,
    /// the stream's settings) still fails here: that is a configuration to fix, not an outage.
    pub async fn connect_or_defer(
        url: &str,
        prefix: &str,
        stream: &str,
        source: &str,
    ) -> anyhow::Result<(Self, StreamState)> {
        use async_nats::ConnectErrorKind as Kind;
        let (options, address) = client_options(url, source)?;
        let probe = options.connect(address.as_str()).await;
        let bus = match probe {
            Ok(client) => Self::with_client(client, prefix, stream, source),
            Err(e) if matches!(e.kind(), Kind::Io | Kind::TimedOut | Kind::Dns) => {
                tracing::warn!(error = %e, address = %address, "NATS cannot be reached: \
                    serving without it; events wait in the outbox and the read model waits for \
                    its events until it can");
                let bus = Self::open(url, prefix, stream, source).await?;
                return Ok((bus, StreamState::Pending));
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("connecting to NATS at {address}"))
                );
            }
        };
        match stream::ensure_stream(&bus).await {
            Ok(()) => Ok((bus, StreamState::Ready)),
            // Gone between the connection and the stream's request.
            Err(e) if !bus.is_connected() => {
                tracing::warn!(error = %e, "NATS went away before the stream was made: serving \
                    without it until it is back");
                Ok((bus, StreamState::Pending))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the client is connected to a NATS server now.
    pub fn is_connected(&self) -> bool {
        self.js.client().connection_state() == async_nats::connection::State::Connected
    }

    async fn open(url: &str, prefix: &str, stream: &str, source: &str) -> anyhow::Result<Self> {
        let (options, address) = client_options(url, source)?;
        let client = options
            .retry_on_initial_connect()
            .connect(address.as_str())
            .await
            .with_context(|| format!("connecting to NATS at {address}"))?;
        Ok(Self::with_client(client, prefix, stream, source))
    }

    fn with_client(client: async_nats::Client, prefix: &str, stream: &str, source: &str) -> Self {
        Self {
            js: async_nats::jetstream::new(client),
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            source: source.to_owned(),
        }
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
