//! R-X-2 / README "Every pooled session is bounded": a consumer holds an event its database
//! cannot apply (an outage, a conflict) and tries again. One stopped meanwhile (a rolling
//! restart, a scale-down) hands the event back to NATS, so that another replica on the same
//! durable consumer gets it at once: left unacknowledged, it held up the context's events on
//! every replica until the ack wait (30 s) ran out.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{eventually, platform_db};
use fupin_platform::{
    events::consumer::{self, ConsumerConfig, Delivered, EventHandler},
    shutdown,
    testing::test_bus,
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::future::BoxFuture;
use prost::Name;
use sqlx::PgConnection;

const SOURCE: &str = "/fupin/platform-test";

/// Every attempt loses to a concurrent transaction (SQLSTATE 40P01, raised by PostgreSQL): the
/// consumer holds the event and tries again, until it is stopped.
#[derive(Clone, Default)]
struct AlwaysDeadlocked {
    calls: Arc<AtomicUsize>,
}

impl EventHandler for AlwaysDeadlocked {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            sqlx::query(
                "do $$ begin raise exception 'deadlock detected' using errcode = '40P01'; end $$",
            )
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}

/// Records the ids of the events it applies.
#[derive(Clone, Default)]
struct Records {
    applied: Arc<Mutex<Vec<String>>>,
}

impl EventHandler for Records {
    fn handle<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.applied.lock().unwrap().push(event.id.clone());
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_while_holding_an_event_hands_it_to_another_replica_at_once() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = platform_db().await;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let config = ConsumerConfig {
            // The default: what the event would wait for without the hand-back.
            ack_wait: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            ..ConsumerConfig::new("handback", vec![NplThresholdExceeded::full_name()])
        };
        let durable = consumer::create(&bus, &config).await.expect("the consumer");
        let event = NplThresholdExceeded {
            area_code: "410311100".into(),
            sequence: 1,
            ..Default::default()
        };
        let (id, _) = bus
            .publish_now(&event, Some("410311100"), None)
            .await
            .expect("publish");

        // The first replica holds the event: its database keeps refusing it.
        let holding = AlwaysDeadlocked::default();
        let (stop_first, first_stop) = shutdown::channel();
        let first = consumer::spawn(
            db.pool.clone(),
            bus.clone(),
            config.clone(),
            Arc::new(holding.clone()),
            first_stop,
        );
        eventually(
            Duration::from_secs(10),
            "the first replica to hold the event",
            || async { (holding.calls.load(Ordering::SeqCst) >= 2).then_some(()) },
        )
        .await;

        // A second replica on the same durable consumer waits: one event at a time.
        let records = Records::default();
        let (stop_second, second_stop) = shutdown::channel();
        let second = consumer::spawn(
            db.pool.clone(),
            bus.clone(),
            config.clone(),
            Arc::new(records.clone()),
            second_stop,
        );
        eventually(
            Duration::from_secs(10),
            "both replicas' pull requests to wait at the server",
            || async { (durable.get_info().await.ok()?.num_waiting >= 2).then_some(()) },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            records.applied.lock().unwrap().is_empty(),
            "the held event is not delivered twice at once"
        );

        // The first replica stops: the second gets the event well before the ack wait.
        stop_first.trigger();
        let stopped_at = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .expect("the first replica stops")
            .expect("no panic");
        eventually(
            Duration::from_secs(5),
            "the second replica to apply the event the first one held",
            || async { (!records.applied.lock().unwrap().is_empty()).then_some(()) },
        )
        .await;
        assert_eq!(*records.applied.lock().unwrap(), vec![id]);
        assert!(
            stopped_at.elapsed() < config.ack_wait / 3,
            "handed over in {:?}",
            stopped_at.elapsed()
        );

        stop_second.trigger();
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second replica stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 60 s");
}
