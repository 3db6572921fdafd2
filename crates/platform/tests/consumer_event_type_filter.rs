//! ARCHITECTURE.md "Events": a consumer receives only the event types it names, whichever
//! JetStream server version runs (nats-server < 2.10 silently ignores multi-subject filters),
//! and never the dead letters that share its stream.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::jetstream::consumer::PullConsumer;
use common::eventually;
use fupin_platform::{
    events::{
        EventBus,
        consumer::{self, ConsumerConfig, Delivered, EventHandler},
        headers,
    },
    shutdown,
    testing::test_bus,
};
use fupin_proto::{
    intake::v1::ApplicationSubmitted,
    risk::v1::{LendingResumed, NplThresholdExceeded},
};
use futures::future::BoxFuture;
use prost::{Message, Name};
use sqlx::PgConnection;

const SOURCE: &str = "/fupin/platform-test";

/// Records the `ce-type` of every event it is handed.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn seen(&self) -> Vec<String> {
        let mut v = self.0.lock().expect("recorder lock").clone();
        v.sort();
        v
    }
}

impl EventHandler for Recorder {
    fn handle<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.0
                .lock()
                .expect("recorder lock")
                .push(event.ce_type.clone());
            Ok(())
        })
    }
}

async fn publish<M: Message + Name>(bus: &EventBus, id: &str, event: &M) {
    let ce_type = M::full_name();
    let h = headers::build(&headers::CloudEvent {
        id,
        ce_type: &ce_type,
        source: SOURCE,
        time_rfc3339: "2026-03-31T16:00:00.000000Z",
        subject: None,
        traceparent: None,
    });
    bus.js
        .publish_with_headers(bus.subject_for(&ce_type), h, event.encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("JetStream ack");
}

async fn wait_drained(consumer: &PullConsumer) {
    eventually(
        Duration::from_secs(15),
        "the consumer to drain its stream",
        || async {
            let info = consumer.get_info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= 1)
                .then_some(())
        },
    )
    .await;
}

/// One-type and two-type consumers on a stream carrying three event types and a dead letter
/// each see only what they asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_see_only_their_event_types() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = common::platform_db().await;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        publish(
            &bus,
            "e1",
            &NplThresholdExceeded {
                sequence: 1,
                ..Default::default()
            },
        )
        .await;
        publish(&bus, "e2", &ApplicationSubmitted::default()).await;
        publish(&bus, "e3", &LendingResumed::default()).await;
        // Something on the dead-letter subject of the one-type consumer, as a failure would leave.
        bus.js
            .publish(
                bus.dead_letter_subject("one_type"),
                NplThresholdExceeded::default().encode_to_vec().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");

        let one = ConsumerConfig::new("one_type", vec![NplThresholdExceeded::full_name()]);
        let two = ConsumerConfig::new(
            "two_types",
            vec![
                NplThresholdExceeded::full_name(),
                LendingResumed::full_name(),
            ],
        );
        let (one_seen, two_seen) = (Recorder::default(), Recorder::default());
        let (trigger, stop) = shutdown::channel();
        let tasks = [
            consumer::spawn(
                db.pool.clone(),
                bus.clone(),
                one.clone(),
                Arc::new(one_seen.clone()),
                stop.clone(),
            ),
            consumer::spawn(
                db.pool.clone(),
                bus.clone(),
                two.clone(),
                Arc::new(two_seen.clone()),
                stop,
            ),
        ];
        for config in [&one, &two] {
            let c = eventually(Duration::from_secs(10), "the durable consumer", || async {
                consumer::create(&bus, config).await.ok()
            })
            .await;
            wait_drained(&c).await;
        }

        assert_eq!(one_seen.seen(), vec![NplThresholdExceeded::full_name()]);
        assert_eq!(
            two_seen.seen(),
            vec![
                LendingResumed::full_name(),
                NplThresholdExceeded::full_name()
            ]
        );

        trigger.trigger();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("consumer stops")
                .expect("no panic");
        }
    })
    .await
    .expect("test took longer than 30 s");
}

/// R-X-2: a consumer has one event unacknowledged at a time and no server-side delivery bound
/// (an event held through a database outage, or redelivered across restarts during one, must
/// not be stranded past a bound). A durable consumer an earlier version created with a bound
/// and a larger window is brought to that configuration when the service starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_take_one_event_at_a_time_without_a_delivery_bound() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let config =
            ConsumerConfig::new("platform-upgraded", vec![NplThresholdExceeded::full_name()]);
        let stream = bus.js.get_stream(&bus.stream).await.expect("the stream");
        // As an earlier version created it.
        stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(config.name.clone()),
                filter_subject: bus.subject_for(&NplThresholdExceeded::full_name()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: config.max_attempts + 1,
                ..Default::default()
            })
            .await
            .expect("the earlier consumer");
        let mut consumer = consumer::create(&bus, &config).await.expect("the consumer");
        let info = consumer.info().await.expect("its configuration");
        assert_eq!(info.config.max_ack_pending, 1);
        assert_eq!(info.config.max_deliver, -1);
        // And a consumer created afresh.
        let fresh = ConsumerConfig::new("platform-fresh", vec![LendingResumed::full_name()]);
        let mut consumer = consumer::create(&bus, &fresh).await.expect("the consumer");
        let info = consumer.info().await.expect("its configuration");
        assert_eq!(
            (info.config.max_ack_pending, info.config.max_deliver),
            (1, -1)
        );
    })
    .await
    .expect("within 30 s");
}

/// R-X-2: a durable consumer the server will not bring to this configuration (its deliver
/// policy cannot change) is used as it is only if it keeps the guarantees; one taking several
/// events at a time stops the start, naming the setting and what to do, instead of applying
/// events out of order behind a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_be_updated_must_keep_the_guarantees() {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    tokio::time::timeout(Duration::from_secs(30), async {
        let bus = test_bus(SOURCE).await.expect("the test bus");
        let stream = bus.js.get_stream(&bus.stream).await.expect("the stream");
        let made = |name: &str, max_ack_pending: i64| pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: bus.subject_for(&NplThresholdExceeded::full_name()),
            ack_policy: AckPolicy::Explicit,
            // Not the deliver policy the services ask for, which the server will not change.
            deliver_policy: DeliverPolicy::New,
            max_ack_pending,
            ..Default::default()
        };
        stream
            .create_consumer(made("platform-kept", 1))
            .await
            .expect("a consumer that keeps the guarantees");
        let kept = ConsumerConfig::new("platform-kept", vec![NplThresholdExceeded::full_name()]);
        consumer::create(&bus, &kept).await.expect("used as it is");
        consumer::check(&bus, &kept)
            .await
            .expect("a service may start on it");

        stream
            .create_consumer(made("platform-lost", 8))
            .await
            .expect("a consumer taking eight at a time");
        let lost = ConsumerConfig::new("platform-lost", vec![NplThresholdExceeded::full_name()]);
        let e = consumer::create(&bus, &lost)
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("consumer platform-lost")
                && e.contains("max_ack_pending 8 (needs 1)")
                && e.contains("delete the consumer"),
            "{e}"
        );
        let e = consumer::check(&bus, &lost)
            .await
            .expect_err("a service must not start on it");
        assert!(e.is::<consumer::LostGuarantee>(), "{e}");
        bus.js.delete_stream(&bus.stream).await.ok();
    })
    .await
    .expect("within 30 s");
}
