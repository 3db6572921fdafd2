//! R-X-2 (ARCHITECTURE.md "Events", producer side): the outbox relay survives NATS being down.
//! Rows written while NATS is unreachable wait in the outbox, and once NATS is back every event
//! reaches the stream exactly once, in commit order, with its CloudEvents headers.

mod common;

use std::{collections::HashSet, time::Duration};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use chrono::{DateTime, Utc};
use common::{count, eventually, platform_db};
use fupin_platform::testing::NatsServer;
use fupin_platform::{
    events::{
        EventBus, headers, outbox,
        relay::{self, RelayConfig, RelayHandle},
    },
    shutdown,
    testing::unique_token,
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::StreamExt;
use prost::{Message, Name};
use sqlx::PgPool;

const EVENTS: u64 = 20;
const BEFORE_OUTAGE: u64 = 5;
const SOURCE: &str = "/fupin/platform-test";
const AREA: &str = "410311100";

fn event(sequence: u64) -> NplThresholdExceeded {
    NplThresholdExceeded {
        area_code: AREA.to_owned(),
        npl_ratio: "0.0612".to_owned(),
        threshold: "0.0500".to_owned(),
        measured_at: "2026-03-31T16:00:00Z".to_owned(),
        sequence,
    }
}

/// One state change = one transaction carrying one outbox row; the relay is woken after commit.
/// Returns the row's id (the event's ce-id).
async fn write(pool: &PgPool, bus: &EventBus, relay: &RelayHandle, sequence: u64) -> uuid::Uuid {
    let mut tx = pool.begin().await.expect("begin");
    let id = outbox::enqueue(
        &mut tx,
        &bus.prefix,
        &event(sequence),
        Some(AREA),
        Utc::now(),
    )
    .await
    .expect("enqueue");
    tx.commit().await.expect("commit");
    relay.wake();
    id
}

/// The relay deletes a row once JetStream has acknowledged it: what is left waits.
async fn unpublished(pool: &PgPool) -> i64 {
    count(pool, "select count(*) from outbox").await
}

/// R-X-2: events committed while NATS is down wait in the outbox and are published exactly
/// once, in order, when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_wait_while_nats_is_down_then_publish_once_in_order() {
    tokio::time::timeout(Duration::from_secs(30), scenario())
        .await
        .expect("test took longer than 30 s");
}

async fn scenario() {
    let mut nats = NatsServer::start();
    nats.wait_listening().await;
    let db = platform_db().await;
    let pool = &db.pool;
    let token = unique_token();
    let bus = EventBus::connect(&nats.url(), &token, &token.to_uppercase(), SOURCE)
        .await
        .expect("connecting the bus");

    let (trigger, stop) = shutdown::channel();
    let config = RelayConfig {
        poll_interval: Duration::from_millis(100),
        ack_timeout: Duration::from_secs(1),
        max_backoff: Duration::from_millis(500),
        linger: Duration::from_millis(1),
        final_flush: Duration::from_secs(2),
        ..RelayConfig::default()
    };
    let (relay, relay_task) = relay::spawn(pool.clone(), bus.clone(), config, stop);

    // NATS up: the first events flow.
    // The rows' ids in commit order: the relay deletes each row once published.
    let mut outbox_ids = Vec::new();
    for i in 0..BEFORE_OUTAGE {
        outbox_ids.push(write(pool, &bus, &relay, i).await);
    }
    eventually(
        Duration::from_secs(10),
        "the first events to be published",
        || async { (unpublished(pool).await == 0).then_some(()) },
    )
    .await;

    // NATS down: writes still commit; their rows wait.
    nats.kill();
    for i in BEFORE_OUTAGE..EVENTS {
        outbox_ids.push(write(pool, &bus, &relay, i).await);
    }
    let waiting = (EVENTS - BEFORE_OUTAGE) as i64;
    assert_eq!(
        unpublished(pool).await,
        waiting,
        "rows written during the outage must wait"
    );
    // Give the relay time to try (and fail) a few publishes: still nothing may be taken as sent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        unpublished(pool).await,
        waiting,
        "no row may be taken as published while NATS is down"
    );

    // NATS back on the same port and store: the waiting rows drain.
    nats.spawn();
    nats.wait_listening().await;
    eventually(
        Duration::from_secs(20),
        "every outbox row to be published after NATS came back",
        || async { (unpublished(pool).await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        count(pool, "select count(*) from outbox").await,
        0,
        "acknowledged rows are deleted"
    );

    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(5), relay_task)
        .await
        .expect("relay stops within 5 s of shutdown")
        .expect("relay task did not panic");

    // Read the whole stream with a plain JetStream consumer of our own.
    let client = async_nats::connect(nats.url())
        .await
        .expect("connecting a reader");
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&bus.stream)
        .await
        .expect("the stream survived the restart");
    let stored = stream.get_info().await.expect("stream info").state.messages;
    assert_eq!(
        stored, EVENTS,
        "the stream must hold each event exactly once (no duplicates, none lost)"
    );

    let reader = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = reader.messages().await.expect("ordered consumer messages");

    let expected_subject = format!("{}.risk.v1.NplThresholdExceeded", bus.prefix);
    let mut seen_ids = HashSet::new();
    for k in 0..EVENTS {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap_or_else(|_| panic!("message {k} of {EVENTS} not delivered within 5 s"))
            .expect("the ordered stream does not end")
            .expect("message");
        assert_eq!(msg.subject.as_str(), expected_subject);
        let payload = NplThresholdExceeded::decode(msg.payload.as_ref()).expect("protobuf payload");
        assert_eq!(payload.sequence, k, "events must be in commit order");
        assert_eq!(payload, event(k));

        let h = msg.headers.as_ref();
        let get = |name: &str| {
            headers::get(h, name)
                .unwrap_or_else(|| panic!("message {k} lacks header {name}"))
                .to_owned()
        };
        assert_eq!(get(headers::CE_SPECVERSION), "1.0");
        let id = get(headers::CE_ID);
        assert_eq!(
            get(headers::NATS_MSG_ID),
            id,
            "Nats-Msg-Id must equal ce-id (JetStream dedupe)"
        );
        assert_eq!(
            id,
            outbox_ids[k as usize].to_string(),
            "ce-id is the outbox row id, in seq order"
        );
        assert!(seen_ids.insert(id.clone()), "duplicate event {id}");
        assert_eq!(get(headers::CE_TYPE), "fupin.risk.v1.NplThresholdExceeded");
        assert_eq!(get(headers::CE_TYPE), NplThresholdExceeded::full_name());
        assert_eq!(get(headers::CE_SOURCE), SOURCE);
        assert_eq!(get(headers::CE_SUBJECT), AREA);
        let time = get(headers::CE_TIME);
        DateTime::parse_from_rfc3339(&time)
            .unwrap_or_else(|e| panic!("ce-time {time:?} is not RFC 3339: {e}"));
        assert_eq!(get(headers::CONTENT_TYPE), "application/protobuf");
    }
    assert_eq!(seen_ids.len() as u64, EVENTS);
    // Nothing beyond the 20.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        panic!(
            "unexpected message beyond the {EVENTS}: {:?}",
            extra.map(|m| m.subject.to_string())
        );
    }

    assert_eq!(unpublished(pool).await, 0);
}
