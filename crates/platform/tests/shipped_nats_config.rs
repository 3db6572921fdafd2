//! The NATS configuration compose ships (`deploy/nats/nats.conf`), run as shipped, with only
//! the ports and the store directory moved (tests run side by side): the services' user publishes and manages the
//! stream; the read-only `subscriber` user of other government systems replays and follows
//! the events but cannot forge one (admission reads ratings, blacklists and suspensions off
//! this stream, R-IN-3), delete or purge the history (R-X-2), take a service's durable consumer
//! or read the services' replies; nobody connects without a password.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use fupin_platform::{
    events::EventBus,
    testing::{
        NatsServer, SHIPPED_SERVICE_PASSWORD as SERVICE_PASSWORD,
        SHIPPED_SUBSCRIBER_PASSWORD as SUBSCRIBER_PASSWORD, shipped_server, unique_token,
    },
};
use futures::StreamExt;
/// One of intake's durable consumers, as the configuration names it.
const INTAKE_CONSUMER: &str = "intake-readmodel-rating-v1";
/// How long a request the server refuses to pass on may wait for an answer that never comes.
const DENIED_WITHIN: Duration = Duration::from_secs(2);

fn with_user(nats: &NatsServer, user: &str, password: &str) -> String {
    nats.url()
        .replacen("nats://", &format!("nats://{user}:{password}@"), 1)
}

/// The `subscriber` user as another government system connects: its own inbox prefix, so the
/// replies to its JetStream requests reach it.
async fn subscriber(nats: &NatsServer) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::ConnectOptions::with_user_and_password(
        "subscriber".into(),
        SUBSCRIBER_PASSWORD.into(),
    )
    .custom_inbox_prefix("_INBOX_subscriber")
    .connect(nats.url())
    .await
    .unwrap_or_else(|e| panic!("subscriber connects: {e}\n{}", nats.log_text()));
    let js = jetstream::ContextBuilder::new()
        .timeout(DENIED_WITHIN)
        .build(client.clone());
    (client, js)
}

/// The services, as compose runs them: user `fupin`, the `fupin.>` subjects, stream FUPIN.
async fn services(nats: &NatsServer) -> EventBus {
    tokio::time::timeout(
        Duration::from_secs(20),
        EventBus::connect(
            &with_user(nats, "fupin", SERVICE_PASSWORD),
            "fupin",
            "FUPIN",
            "/fupin/test",
        ),
    )
    .await
    .expect("the service user connects within 20 s")
    .expect("the service user creates the stream")
}

/// Whether a fresh `subscriber` connection following `subject` live receives an event the
/// services publish there. Core NATS delivers at most once, and on a loaded test machine a
/// live event has been missed twice running (no error, no slow-consumer warning in the
/// server's log), so the event is published up to three times, five seconds apart; a
/// subscription the server refuses receives none of them.
async fn follows_live(
    nats: &NatsServer,
    bus: &EventBus,
    subject: &str,
    body: &'static str,
) -> bool {
    let (follower, _) = subscriber(nats).await;
    let mut live = follower.subscribe(subject.to_owned()).await.unwrap();
    follower.flush().await.unwrap();
    for _ in 0..3 {
        bus.js
            .publish(subject.to_owned(), body.into())
            .await
            .expect("the service user publishes")
            .await
            .expect("JetStream stores the event");
        if let Ok(seen) = tokio::time::timeout(Duration::from_secs(5), live.next()).await {
            let seen = seen.expect("subscription open");
            assert_eq!(seen.payload.as_ref(), body.as_bytes());
            return true;
        }
    }
    false
}

async fn messages_in(bus: &EventBus) -> u64 {
    let mut stream = bus.js.get_stream(&bus.stream).await.expect("the stream");
    stream.info().await.expect("stream info").state.messages
}

// R-IN-3 (no forged upstream facts), R-X-2 (no lost history)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_reads_the_events_and_can_change_nothing() {
    let nats = shipped_server().await;
    let bus = services(&nats).await;
    let subject = bus.subject_for("fupin.intake.v1.ApplicationSubmitted");
    bus.js
        .publish(subject.clone(), "first".into())
        .await
        .expect("the service user publishes")
        .await
        .expect("JetStream stores the event");
    bus.js
        .get_stream("FUPIN")
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some(INTAKE_CONSUMER.into()),
            ..Default::default()
        })
        .await
        .expect("the service user creates its durable consumer");

    let (client, js) = subscriber(&nats).await;

    // Replays the history with a consumer of its own, named and filtered on one subject.
    let stream = js
        .get_stream("FUPIN")
        .await
        .expect("subscriber reads stream info");
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            name: Some("gov-replay".into()),
            filter_subject: subject.clone(),
            ..Default::default()
        })
        .await
        .expect("subscriber creates a consumer of its own");
    let mut history = consumer.messages().await.expect("subscriber pulls");
    let first = tokio::time::timeout(Duration::from_secs(5), history.next())
        .await
        .expect("history within 5 s")
        .expect("a message")
        .expect("delivered");
    assert_eq!(first.payload.as_ref(), b"first");
    drop(history);

    // Follows live events (on a connection of its own, as the other live checks: under a
    // loaded test run, one that had just pulled has twice missed the event).
    assert!(
        follows_live(&nats, &bus, &subject, "second").await,
        "a live event\n{}",
        nats.log_text()
    );

    // But not the replies meant for the services, nor those of clients with the default
    // inbox prefix (each on a connection of its own: the server answers the refused
    // subscription with an error, which may make a client reconnect).
    for inbox in ["_INBOX_fupin", "_INBOX"] {
        let (prying, _) = subscriber(&nats).await;
        let mut replies = prying.subscribe(format!("{inbox}.>")).await.unwrap();
        prying.flush().await.unwrap();
        for _ in 0..5 {
            bus.js
                .client()
                .publish(format!("{inbox}.secret"), "reply".into())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !matches!(
                tokio::time::timeout(Duration::from_millis(500), replies.next()).await,
                Ok(Some(_))
            ),
            "the subscriber must not see the replies on {inbox}.>"
        );
    }

    // Cannot forge an event, by plain publish or through JetStream.
    let before = messages_in(&bus).await;
    client
        .publish(subject.clone(), "forged".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let forged = match tokio::time::timeout(
        DENIED_WITHIN * 2,
        js.publish(subject.clone(), "forged".into()),
    )
    .await
    {
        Ok(Ok(ack)) => tokio::time::timeout(DENIED_WITHIN * 2, ack)
            .await
            .is_ok_and(|r| r.is_ok()),
        _ => false,
    };
    assert!(
        !forged,
        "JetStream must not acknowledge an event the subscriber sent"
    );

    // Cannot delete or purge the history, nor take or delete a service's consumer.
    let denied = |what: &str, r: Result<Result<(), String>, tokio::time::error::Elapsed>| {
        assert!(
            !matches!(r, Ok(Ok(()))),
            "the subscriber must not be able to {what}"
        );
    };
    denied(
        "delete the stream",
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            js.delete_stream("FUPIN")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await,
    );
    denied(
        "purge the stream",
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            stream.purge().await.map(|_| ()).map_err(|e| e.to_string())
        })
        .await,
    );
    denied(
        "read a service's durable consumer",
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            stream
                .get_consumer::<pull::Config>(INTAKE_CONSUMER)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await,
    );
    denied(
        "delete a service's durable consumer",
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            stream
                .delete_consumer(INTAKE_CONSUMER)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await,
    );

    // What the services see: nothing forged, nothing removed.
    assert_eq!(messages_in(&bus).await, before, "no forged event stored");
    // The first event and the live one (published again, up to three times, when a loaded
    // run missed it).
    assert!((2..=4).contains(&before), "{before} events");
    bus.js
        .get_stream("FUPIN")
        .await
        .unwrap()
        .get_consumer::<pull::Config>(INTAKE_CONSUMER)
        .await
        .expect("intake's consumer is still there");
}

// R-CR-11: the borrower's resident ID and name (LoanDisbursed), ratings and blacklistings
// (resident IDs, credit facts) and dead letters (copies of any event) stay with the services:
// the subscriber can neither follow nor replay them, by any form of consumer or by sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_sees_no_personal_data() {
    let nats = shipped_server().await;
    let bus = services(&nats).await;
    let personal = [
        "fupin.intake.v1.LoanDisbursed",
        "fupin.rating.v1.CreditRatingEffective",
        "fupin.rating.v1.BlacklistEntryAdded",
        "fupin.rating.v1.BlacklistEntryRemoved",
        "fupin.dlq.intake-readmodel-rating-v1",
    ];
    let public = "fupin.risk.v1.NplThresholdExceeded";
    let publish = |subject: &str, body: &'static str| {
        let (js, subject) = (bus.js.clone(), subject.to_owned());
        async move {
            js.publish(subject, body.into())
                .await
                .expect("the service user publishes")
                .await
                .expect("JetStream stores the event");
        }
    };
    publish(personal[0], "410311197905230315 王德明").await;

    let (_client, js) = subscriber(&nats).await;
    let stream = js.get_stream("FUPIN").await.expect("stream info");
    let refused = |what: String, r: Result<bool, tokio::time::error::Elapsed>| {
        assert!(!matches!(r, Ok(true)), "the subscriber must not {what}");
    };
    let mut n = 0;
    let mut name = || {
        n += 1;
        format!("gov-{n}")
    };
    // A consumer filtered on a personal subject, on a wildcard, on nothing, or unnamed.
    for filter in personal.iter().map(|s| s.to_string()).chain([
        "fupin.>".to_string(),
        "fupin.intake.v1.*".to_string(),
        String::new(),
    ]) {
        for named in [true, false] {
            let config = pull::Config {
                name: named.then(&mut name),
                filter_subject: filter.clone(),
                ..Default::default()
            };
            refused(
                format!("create a consumer on {filter:?} (named: {named})"),
                tokio::time::timeout(DENIED_WITHIN * 2, async {
                    stream.create_consumer(config).await.is_ok()
                })
                .await,
            );
        }
    }
    // The create call for a public subject with a personal filter in its body.
    let body = serde_json::json!({
        "stream_name": "FUPIN",
        "config": {"name": "gov-sly", "filter_subject": personal[0], "ack_policy": "explicit"},
    });
    refused(
        "create a consumer whose body names another filter than its subject".into(),
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            let r: Result<serde_json::Value, _> = js
                .request(format!("CONSUMER.CREATE.FUPIN.gov-sly.{public}"), &body)
                .await;
            matches!(r, Ok(v) if v.get("error").is_none())
        })
        .await,
    );
    // An operator's `fupinctl events tail` as the services' user: a consumer of everything,
    // under a random name that the subscriber cannot list (nor find any other way).
    bus.js
        .get_stream("FUPIN")
        .await
        .unwrap()
        .create_consumer(pull::OrderedConfig {
            name: Some(format!("fupinctl-tail-{}", unique_token())),
            filter_subject: "fupin.>".into(),
            ..Default::default()
        })
        .await
        .expect("the services' user follows everything");
    refused(
        "list the consumers' names".into(),
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            matches!(stream.consumer_names().next().await, Some(Ok(_)))
        })
        .await,
    );
    refused(
        "list the consumers".into(),
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            matches!(stream.consumers().next().await, Some(Ok(_)))
        })
        .await,
    );
    // A message by its sequence.
    refused(
        "read a message by sequence".into(),
        tokio::time::timeout(DENIED_WITHIN * 2, async {
            stream.get_raw_message(1).await.is_ok()
        })
        .await,
    );
    // Live: a wildcard or a personal subject delivers nothing personal (each on a connection
    // of its own: the server answers a refused subscription with an error).
    let mut live = Vec::new();
    for subject in personal.iter().copied().chain(["fupin.>"]) {
        let (c, _) = subscriber(&nats).await;
        let sub = c.subscribe(subject.to_owned()).await.unwrap();
        c.flush().await.unwrap();
        live.push((subject, c, sub));
    }
    for subject in personal {
        publish(subject, "410311197905230315").await;
    }
    for (subject, _c, mut sub) in live {
        assert!(
            !matches!(
                tokio::time::timeout(Duration::from_millis(500), sub.next()).await,
                Ok(Some(_))
            ),
            "a live subscription to {subject} must deliver nothing"
        );
    }

    // The public subject is still there, by replay and live (on a fresh connection, as a
    // system would follow it: this test's own one has been refused many calls).
    assert!(
        follows_live(&nats, &bus, public, "410311 suspended").await,
        "the public event live\n{}",
        nats.log_text()
    );
    let consumer = stream
        .create_consumer(pull::Config {
            name: Some("gov-risk".into()),
            filter_subject: public.into(),
            ..Default::default()
        })
        .await
        .expect("a consumer on a public subject");
    let mut replay = consumer.messages().await.expect("pull");
    let first = tokio::time::timeout(Duration::from_secs(5), replay.next())
        .await
        .expect("replayed within 5 s")
        .expect("a message")
        .expect("delivered");
    assert_eq!(first.subject.as_str(), public);
    first.ack().await.expect("the subscriber acknowledges");
}

// R-CR-11 (the events carry personal data), R-IN-3
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_connects_without_a_password() {
    let nats = shipped_server().await;
    for url in [
        nats.url(),
        with_user(&nats, "fupin", "wrong"),
        with_user(&nats, "subscriber", SERVICE_PASSWORD),
        with_user(&nats, "intruder", SUBSCRIBER_PASSWORD),
    ] {
        let (options, address) = fupin_platform::events::nats_options(&url).unwrap();
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), options.connect(address.as_str())).await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "{} must be refused",
            fupin_platform::events::redacted(&url)
        );
    }
}

/// Every file under `dir`, read whole.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("store directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

// R-CR-11: the stream keeps events with resident IDs and names for ten years; on disk they are
// encrypted (NATS_JS_KEY), neither the payload nor the subject readable in the store's files,
// and the services still read them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_events_are_encrypted_at_rest() {
    let nats = shipped_server().await;
    let bus = services(&nats).await;
    let marker = format!("410311199001011234-{}", unique_token());
    let subject = "fupin.intake.v1.LoanDisbursed";
    bus.js
        .publish(subject, marker.clone().into())
        .await
        .expect("the service user publishes")
        .await
        .expect("JetStream stores the event");
    let stream = bus.js.get_stream(&bus.stream).await.expect("the stream");
    let stored = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .expect("read back");
    assert_eq!(stored.payload.as_ref(), marker.as_bytes());
    let files = files_under(nats.store_dir());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "blk")),
        "the stream's message blocks are on disk: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in &files {
        for needle in [marker.as_bytes(), subject.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?} in the clear",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

// R-X-2: the services never delete events, and a leaked service password cannot wipe the
// history either: deleting or purging the stream, or deleting a message, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_cannot_delete_the_history() {
    let nats = shipped_server().await;
    let bus = services(&nats).await;
    bus.js
        .publish("fupin.intake.v1.ApplicationSubmitted", "kept".into())
        .await
        .expect("the service user publishes")
        .await
        .expect("JetStream stores the event");
    let js = jetstream::ContextBuilder::new()
        .timeout(DENIED_WITHIN)
        .build(bus.js.client());
    let stream = js.get_stream(&bus.stream).await.expect("the stream");
    let within =
        |r: Result<Result<(), String>, tokio::time::error::Elapsed>| !matches!(r, Ok(Ok(())));
    assert!(
        within(
            tokio::time::timeout(DENIED_WITHIN * 2, async {
                stream.purge().await.map(|_| ()).map_err(|e| e.to_string())
            })
            .await
        ),
        "purging the stream is refused"
    );
    assert!(
        within(
            tokio::time::timeout(DENIED_WITHIN * 2, async {
                stream
                    .delete_message(1)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
        ),
        "deleting a message is refused"
    );
    assert!(
        within(
            tokio::time::timeout(DENIED_WITHIN * 2, async {
                js.delete_stream("FUPIN")
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
        ),
        "deleting the stream is refused"
    );
    assert_eq!(messages_in(&bus).await, 1, "the event is still there");
}

/// Every event `proto/fupin/<ctx>/v1/events.proto` names by its `// Subject:` line.
fn contract_subjects() -> Vec<String> {
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/fupin");
    let mut subjects = Vec::new();
    for ctx in std::fs::read_dir(&proto).expect("proto/fupin") {
        let events = ctx.expect("an entry").path().join("v1/events.proto");
        if let Ok(text) = std::fs::read_to_string(&events) {
            subjects.extend(
                text.lines()
                    .filter_map(|l| l.trim().strip_prefix("// Subject: "))
                    .map(|s| s.trim().to_owned()),
            );
        }
    }
    subjects.sort();
    subjects
}

// R-X-2, R-CR-11: other government systems follow every event of the contracts but those that
// carry personal data (the borrower's identity, ratings, blacklistings): an event added to a
// contract is readable by the subscriber, or deliberately not, never forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_follows_every_event_without_personal_data() {
    let personal = [
        "fupin.intake.v1.LoanDisbursed",
        "fupin.rating.v1.CreditRatingEffective",
        "fupin.rating.v1.BlacklistEntryAdded",
        "fupin.rating.v1.BlacklistEntryRemoved",
    ];
    let subjects = contract_subjects();
    assert!(
        subjects.contains(&"fupin.intake.v1.ComplaintAnswered".to_owned()),
        "{subjects:?}"
    );
    for p in personal {
        assert!(
            subjects.contains(&p.to_owned()),
            "{p} is no longer a contract"
        );
    }
    let nats = shipped_server().await;
    let bus = services(&nats).await;
    let (_client, js) = subscriber(&nats).await;
    let stream = js.get_stream("FUPIN").await.expect("stream info");
    for subject in subjects.iter().filter(|s| !personal.contains(&s.as_str())) {
        assert!(
            follows_live(&nats, &bus, subject, "an event").await,
            "the subscriber cannot follow {subject}"
        );
        stream
            .create_consumer(pull::OrderedConfig {
                name: Some(format!("gov-{}", subject.replace('.', "-"))),
                filter_subject: subject.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("the subscriber cannot replay {subject}: {e}"));
    }
}
