//! R-X-2 (ARCHITECTURE.md "Events", consumer side): the inbox, written in the handler's own
//! transaction, makes a redelivered event a no-op, so each event's effect happens exactly once.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::consumer::PullConsumer;
use common::{count, eventually, platform_db};
use fupin_platform::{
    events::{
        EventBus,
        consumer::{self, ConsumerConfig, Delivered, EventHandler, Outcome},
        headers,
    },
    shutdown,
    testing::test_bus,
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::{StreamExt, future::BoxFuture};
use prost::{Message, Name};
use sqlx::{PgConnection, PgPool};

const SOURCE: &str = "/fupin/platform-test";

/// Inserts one `effects` row per applied event and counts its invocations.
#[derive(Clone, Default)]
struct InsertEffect {
    calls: Arc<AtomicUsize>,
}

impl EventHandler for InsertEffect {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let e: NplThresholdExceeded = event.decode()?;
            sqlx::query("insert into effects (n) values ($1)")
                .bind(i32::try_from(e.sequence)?)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }
}

async fn setup() -> (fupin_platform::testing::TestDb, EventBus) {
    let db = platform_db().await;
    sqlx::query("create table effects (n int not null)")
        .execute(&db.pool)
        .await
        .expect("effects table");
    let bus = test_bus(SOURCE)
        .await
        .expect("connecting the test bus (is NATS up? see NATS_URL)");
    (db, bus)
}

fn config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        ack_wait: Duration::from_secs(1),
        ..ConsumerConfig::new(name, vec![NplThresholdExceeded::full_name()])
    }
}

/// Publishes one event with CloudEvents headers, `ce-id` = `ce_id` and `Nats-Msg-Id` = `msg_id`.
async fn publish(bus: &EventBus, ce_id: &str, msg_id: &str, sequence: u64) {
    let ce_type = NplThresholdExceeded::full_name();
    let mut h = headers::build(&headers::CloudEvent {
        id: ce_id,
        ce_type: &ce_type,
        source: SOURCE,
        time_rfc3339: "2026-03-31T16:00:00.000000Z",
        subject: Some("410311100"),
        traceparent: None,
    });
    h.insert(headers::NATS_MSG_ID, msg_id);
    let event = NplThresholdExceeded {
        area_code: "410311100".into(),
        sequence,
        ..Default::default()
    };
    let ack = bus
        .js
        .publish_with_headers(bus.subject_for(&ce_type), h, event.encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("JetStream ack");
    assert!(!ack.duplicate, "{msg_id} must be stored, not deduplicated");
}

/// Waits until the consumer has had `deliveries` deliveries and nothing is pending or unacked.
async fn wait_settled(consumer: &PullConsumer, deliveries: u64) {
    eventually(
        Duration::from_secs(15),
        "the consumer to process and ack every delivery",
        || async {
            let info = consumer.get_info().await.ok()?;
            (info.delivered.consumer_sequence >= deliveries
                && info.num_ack_pending == 0
                && info.num_pending == 0)
                .then_some(())
        },
    )
    .await;
}

/// Runs the consumer (as a restarted service would) until it has had `deliveries` deliveries
/// and settled, then stops it.
async fn run_until_settled(
    pool: &PgPool,
    bus: &EventBus,
    config: &ConsumerConfig,
    handler: &InsertEffect,
    consumer: &PullConsumer,
    deliveries: u64,
) {
    let (trigger, stop) = shutdown::channel();
    let task = consumer::spawn(
        pool.clone(),
        bus.clone(),
        config.clone(),
        Arc::new(handler.clone()),
        stop,
    );
    wait_settled(consumer, deliveries).await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("consumer stops")
        .expect("no panic");
}

async fn effects(pool: &PgPool) -> i64 {
    count(pool, "select count(*) from effects").await
}

async fn inbox(pool: &PgPool) -> i64 {
    count(pool, "select count(*) from inbox").await
}

/// R-X-2: a consumer that crashed after committing its transaction but before acking gets the
/// event again; applying the redelivery changes nothing (the effect happened exactly once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_crash_between_commit_and_ack_is_a_no_op() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (db, bus) = setup().await;
        let pool = &db.pool;
        let config = config("exactly_once");
        let handler = InsertEffect::default();
        let consumer = consumer::create(&bus, &config)
            .await
            .expect("durable consumer");
        publish(&bus, "ev-1", "ev-1", 7).await;

        // First delivery: apply (commit) but "crash" before the ack.
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("pull request");
        let msg = batch.next().await.expect("one message").expect("message");
        let event = consumer::delivered(&msg);
        assert_eq!(event.id, "ev-1");
        assert_eq!(event.delivery, 1);
        let outcome = consumer::apply_once(pool, &config.name, &handler, &event)
            .await
            .expect("apply");
        assert_eq!(outcome, Outcome::Applied);
        drop(msg); // no ack: the process died here
        drop(batch);
        assert_eq!(effects(pool).await, 1);
        assert_eq!(inbox(pool).await, 1);

        // Restarted consumer: JetStream redelivers after ack_wait; the inbox turns it into a no-op.
        run_until_settled(pool, &bus, &config, &handler, &consumer, 2).await;

        assert_eq!(
            effects(pool).await,
            1,
            "the redelivered event must not be applied again"
        );
        assert_eq!(inbox(pool).await, 1);
        assert_eq!(
            handler.calls.load(Ordering::SeqCst),
            1,
            "the handler must not run for a duplicate"
        );
        let info = consumer.get_info().await.expect("consumer info");
        assert!(
            info.delivered.consumer_sequence >= 2,
            "the event was really redelivered: {:?}",
            info.delivered
        );
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-X-2: the inbox keys on `ce-id`, so an event that reaches the stream twice (a producer that
/// bypassed `Nats-Msg-Id` dedupe) is still applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_ce_id_under_two_msg_ids_is_applied_once() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (db, bus) = setup().await;
        let pool = &db.pool;
        let config = config("dup_ce_id");
        let handler = InsertEffect::default();
        let consumer = consumer::create(&bus, &config)
            .await
            .expect("durable consumer");
        publish(&bus, "ev-2", "ev-2-first", 8).await;
        publish(&bus, "ev-2", "ev-2-second", 8).await;
        let stream = bus.js.get_stream(&bus.stream).await.expect("stream");
        assert_eq!(
            stream.get_info().await.expect("stream info").state.messages,
            2,
            "both copies are stored"
        );

        run_until_settled(pool, &bus, &config, &handler, &consumer, 2).await;

        assert_eq!(
            effects(pool).await,
            1,
            "the second copy must not be applied"
        );
        assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
        let ids: Vec<String> = sqlx::query_scalar("select event_id from inbox")
            .fetch_all(pool)
            .await
            .expect("inbox");
        assert_eq!(ids, vec!["ev-2".to_owned()]);
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-X-2: an event with neither `ce-id` nor `Nats-Msg-Id` is known by its place in the stream,
/// and a stream made anew (restored, or deleted by hand) numbers its messages from 1 again: the
/// new stream's first id-less event is applied, not taken for the old stream's first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_without_ids_is_not_taken_for_one_of_a_stream_made_before() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (db, bus) = setup().await;
        let pool = &db.pool;
        let config = config("no_ids");
        let handler = InsertEffect::default();
        let publish_without_ids = |sequence: u64| {
            let bus = bus.clone();
            async move {
                let ce_type = NplThresholdExceeded::full_name();
                let h = headers::build(&headers::CloudEvent {
                    id: "",
                    ce_type: &ce_type,
                    source: SOURCE,
                    time_rfc3339: "2026-03-31T16:00:00.000000Z",
                    subject: Some("410311100"),
                    traceparent: None,
                });
                let event = NplThresholdExceeded {
                    area_code: "410311100".into(),
                    sequence,
                    ..Default::default()
                };
                let ack = bus
                    .js
                    .publish_with_headers(
                        bus.subject_for(&ce_type),
                        h,
                        event.encode_to_vec().into(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("JetStream ack");
                assert_eq!(ack.sequence, 1, "the stream's first message");
            }
        };
        for (round, sequence) in [(1, 11), (2, 12)] {
            if round == 2 {
                bus.js
                    .delete_stream(&bus.stream)
                    .await
                    .expect("deleting the stream");
                fupin_platform::events::stream::ensure_stream(&bus)
                    .await
                    .expect("the stream made anew");
            }
            let consumer = consumer::create(&bus, &config)
                .await
                .expect("durable consumer");
            publish_without_ids(sequence).await;
            run_until_settled(pool, &bus, &config, &handler, &consumer, 1).await;
            assert_eq!(
                effects(pool).await,
                round,
                "round {round}: the id-less event is applied"
            );
        }
        let ns: Vec<i32> = sqlx::query_scalar("select n from effects order by n")
            .fetch_all(pool)
            .await
            .expect("effects");
        assert_eq!(ns, vec![11, 12]);
    })
    .await
    .expect("test took longer than 60 s");
}
