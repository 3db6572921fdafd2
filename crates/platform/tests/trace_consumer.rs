//! ARCHITECTURE "Events": a consumer applies an event in a span that continues the event's
//! trace (its W3C `traceparent` header), so the trace of a request follows its events into
//! the services that consume them, and into the events those write in turn.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::eventually;
use fupin_platform::{
    events::{
        consumer::{self, ConsumerConfig, Delivered, EventHandler},
        outbox,
    },
    shutdown,
    telemetry::current_traceparent,
    testing::{init_trace_context, test_bus},
};
use fupin_proto::risk::v1::{LendingResumed, NplThresholdExceeded};
use futures::future::BoxFuture;
use prost::Name;
use sqlx::PgConnection;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// An event's id and the `traceparent` of the span it was applied in.
type Applied = (String, Option<String>);

/// Records the trace context each event is applied in, and writes an event of its own.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Applied>>>);

impl EventHandler for Recorder {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let seen = (event.id.clone(), current_traceparent());
            self.0.lock().expect("recorder lock").push(seen);
            let now = chrono::Utc::now();
            outbox::enqueue(conn, "t", &LendingResumed::default(), Some(&event.id), now).await?;
            Ok(())
        })
    }
}

fn parts(tp: &str) -> (&str, &str) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(
        (p.len(), p[0], p[1].len(), p[2].len()),
        (4, "00", 32, 16),
        "{tp}"
    );
    (p[1], p[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_applied_in_the_trace_it_carries() {
    tokio::time::timeout(Duration::from_secs(30), async {
        init_trace_context();
        let db = common::platform_db().await;
        let bus = test_bus("/fupin/platform-test")
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let traced = format!("00-{TRACE}-{SPAN}-01");
        let sent = [
            Some(traced.as_str()),
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ];
        let mut ids = Vec::new();
        for tp in sent {
            let (id, _) = bus
                .publish_now(&NplThresholdExceeded::default(), None, tp)
                .await
                .expect("publish");
            ids.push(id);
        }

        let recorder = Recorder::default();
        let config = ConsumerConfig::new("trace_consumer", vec![NplThresholdExceeded::full_name()]);
        let (trigger, stop) = shutdown::channel();
        let task = consumer::spawn(
            db.pool.clone(),
            bus.clone(),
            config,
            Arc::new(recorder.clone()),
            stop,
        );
        let seen = eventually(Duration::from_secs(15), "every event applied", || async {
            let seen = recorder.0.lock().expect("recorder lock").clone();
            (seen.len() == ids.len()).then_some(seen)
        })
        .await;
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("consumer stops")
            .expect("no panic");

        let applied_in = |id: &str| {
            let (_, tp) = seen.iter().find(|(i, _)| i == id).expect("applied");
            tp.clone().expect("applied in a traced span")
        };
        // The event's trace, in a span of the consumer's own.
        let tp = applied_in(&ids[0]);
        assert_eq!(parts(&tp).0, TRACE, "{tp}");
        assert_ne!(parts(&tp).1, SPAN, "{tp}");
        // Without a valid traceparent: a trace of its own, each.
        let mut others = std::collections::HashSet::new();
        for id in &ids[1..] {
            let tp = applied_in(id);
            assert_ne!(parts(&tp).0, TRACE, "{tp}");
            assert!(others.insert(parts(&tp).0.to_owned()), "{tp}");
        }
        // What the handler wrote carries the event's trace on.
        let written: Option<String> =
            sqlx::query_scalar("select traceparent from outbox where ce_subject = $1")
                .bind(&ids[0])
                .fetch_one(&db.pool)
                .await
                .expect("the handler's event");
        let written = written.expect("a traceparent");
        assert_eq!(parts(&written).0, TRACE, "{written}");
    })
    .await
    .expect("test took longer than 30 s");
}
