//! R-X-2 / ARCHITECTURE.md "Events": a poison message goes to the dead-letter subject after
//! bounded retries, with the handler's error, and none of its failed attempts leaves a trace.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use common::{count, eventually, platform_db};
use fupin_platform::{
    events::{
        consumer::{self, ConsumerConfig, Delivered, EventHandler},
        headers,
    },
    shutdown,
    testing::test_bus,
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::{StreamExt, future::BoxFuture};
use prost::{Message, Name};
use sqlx::PgConnection;

const SOURCE: &str = "/fupin/platform-test";
/// What PostgreSQL says when the handler's statement fails.
const FAILURE: &str = "division by zero";

/// A platform database with the `effects` table the handlers below write to.
async fn db_with_effects() -> fupin_platform::testing::TestDb {
    let db = platform_db().await;
    sqlx::query("create table effects (n int not null)")
        .execute(&db.pool)
        .await
        .expect("effects table");
    db
}

/// Writes a row, then a statement of it fails (a failure that might pass another time, so it
/// is retried): the row must be rolled back with the inbox entry.
#[derive(Clone, Default)]
struct AlwaysFails {
    calls: Arc<AtomicUsize>,
}

impl EventHandler for AlwaysFails {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            sqlx::query("insert into effects (n) values (1)")
                .execute(&mut *conn)
                .await?;
            sqlx::query("select 1 / (n - 1) from effects")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }
}

/// ARCHITECTURE.md "Events" (poison messages, R-X-2): after `max_attempts` failed deliveries the
/// event is copied once to `<prefix>.dlq.<consumer>` with the error and the original subject and
/// payload, the handler has run exactly `max_attempts` times, and nothing was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_dead_lettered_after_max_attempts() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = db_with_effects().await;
        let pool = &db.pool;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let ce_type = NplThresholdExceeded::full_name();
        let config = ConsumerConfig {
            max_attempts: 3,
            retry_backoff: Duration::from_millis(50),
            ack_wait: Duration::from_secs(2),
            ..ConsumerConfig::new("poison", vec![ce_type.clone()])
        };
        let dlq_subject = bus.dead_letter_subject(&config.name);
        assert_eq!(dlq_subject, format!("{}.dlq.poison", bus.prefix));

        // The dead-letter subject is inside the stream: watch it with a consumer of our own.
        let stream = bus.js.get_stream(&bus.stream).await.expect("stream");
        let watcher = stream
            .create_consumer(OrderedConfig {
                filter_subject: dlq_subject.clone(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("dead-letter watcher");
        let mut dead_letters = watcher.messages().await.expect("watcher messages");

        let original_subject = bus.subject_for(&ce_type);
        let payload = NplThresholdExceeded {
            area_code: "410311100".into(),
            sequence: 3,
            ..Default::default()
        }
        .encode_to_vec();
        let h = headers::build(&headers::CloudEvent {
            id: "poison-1",
            ce_type: &ce_type,
            source: SOURCE,
            time_rfc3339: "2026-03-31T16:00:00.000000Z",
            subject: None,
            traceparent: None,
        });
        bus.js
            .publish_with_headers(original_subject.clone(), h, payload.clone().into())
            .await
            .expect("publish")
            .await
            .expect("JetStream ack");

        let handler = AlwaysFails::default();
        let (trigger, stop) = shutdown::channel();
        let task = consumer::spawn(
            pool.clone(),
            bus.clone(),
            config.clone(),
            Arc::new(handler.clone()),
            stop,
        );

        let dead = tokio::time::timeout(Duration::from_secs(15), dead_letters.next())
            .await
            .expect("a dead letter within 15 s")
            .expect("watcher stream open")
            .expect("dead letter");
        assert_eq!(dead.subject.as_str(), dlq_subject);
        let h = dead.headers.as_ref();
        let error = headers::get(h, headers::DLQ_ERROR).expect("fupin-dlq-error header");
        assert!(
            error.contains(FAILURE),
            "fupin-dlq-error {error:?} must carry the handler's error"
        );
        assert_eq!(
            headers::get(h, headers::DLQ_ORIGINAL_SUBJECT),
            Some(original_subject.as_str())
        );
        assert_eq!(
            headers::get(h, headers::CE_ID),
            Some("poison-1"),
            "the CloudEvent is kept"
        );
        assert_eq!(headers::get(h, headers::CE_TYPE), Some(ce_type.as_str()));
        assert_eq!(
            dead.payload.as_ref(),
            payload.as_slice(),
            "the original payload is kept"
        );

        // The original is terminated: past another ack_wait, no further attempt and no second letter.
        let consumer = consumer::create(&bus, &config)
            .await
            .expect("consumer handle");
        eventually(
            Duration::from_secs(10),
            "the poison message to be terminated",
            || async {
                let info = consumer.get_info().await.ok()?;
                (info.num_ack_pending == 0 && info.num_pending == 0).then_some(())
            },
        )
        .await;
        if let Ok(more) =
            tokio::time::timeout(Duration::from_millis(2500), dead_letters.next()).await
        {
            panic!(
                "a second dead letter arrived: {:?}",
                more.map(|m| m.map(|m| m.subject.to_string()))
            );
        }
        assert_eq!(
            handler.calls.load(Ordering::SeqCst),
            3,
            "the handler runs exactly max_attempts times"
        );
        assert_eq!(
            count(pool, "select count(*) from inbox").await,
            0,
            "failed attempts leave no inbox entry"
        );
        assert_eq!(
            count(pool, "select count(*) from effects").await,
            0,
            "failed attempts are rolled back"
        );

        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("consumer stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 30 s");
}

/// Runs a statement (so it needs the database), then refuses every event whose payload is
/// more than one byte (the event's fault: dead-lettered at the first attempt) with an error as
/// long as the payload, and records the others.
#[derive(Clone, Default)]
struct Records {
    applied: Arc<std::sync::Mutex<Vec<String>>>,
}

impl EventHandler for Records {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            sqlx::query("select 1").execute(&mut *conn).await?;
            if event.payload.len() > 1 {
                anyhow::bail!("refused: {}", "\u{1}".repeat(event.payload.len()));
            }
            self.applied.lock().unwrap().push(event.id.clone());
            Ok(())
        })
    }
}

/// A consumer of `NplThresholdExceeded` named `name` that gives up after `max_attempts`,
/// quickly.
fn quick_consumer(name: &str, max_attempts: i64) -> ConsumerConfig {
    ConsumerConfig {
        max_attempts,
        retry_backoff: Duration::from_millis(50),
        ack_wait: Duration::from_secs(2),
        ..ConsumerConfig::new(name, vec![NplThresholdExceeded::full_name()])
    }
}

/// Publishes `payload` on the `NplThresholdExceeded` subject as event `id` of type `ce_type`,
/// with the headers of [`headers::build`]; for an id over 100 bytes, as a producer that sets no
/// `Nats-Msg-Id` of its own (the CloudEvents id, type, source and version only). Returns its
/// stream sequence.
async fn publish_on_exceeded(
    bus: &fupin_platform::events::EventBus,
    id: &str,
    ce_type: &str,
    payload: Vec<u8>,
) -> u64 {
    let h = if id.len() > 100 {
        let mut h = async_nats::HeaderMap::new();
        h.insert(headers::CE_ID, id);
        h.insert(headers::CE_TYPE, ce_type);
        h.insert(headers::CE_SOURCE, SOURCE);
        h.insert(headers::CE_SPECVERSION, "1.0");
        h
    } else {
        headers::build(&headers::CloudEvent {
            id,
            ce_type,
            source: SOURCE,
            time_rfc3339: "2026-03-31T16:00:00.000000Z",
            subject: None,
            traceparent: None,
        })
    };
    bus.js
        .publish_with_headers(
            bus.subject_for(&NplThresholdExceeded::full_name()),
            h,
            payload.into(),
        )
        .await
        .expect("publish")
        .await
        .expect("JetStream ack")
        .sequence
}

/// The dead letters of consumer `name`, from the start of the stream.
async fn dead_letters_of(
    bus: &fupin_platform::events::EventBus,
    name: &str,
) -> async_nats::jetstream::consumer::pull::Ordered {
    bus.js
        .get_stream(&bus.stream)
        .await
        .expect("stream")
        .create_consumer(OrderedConfig {
            filter_subject: bus.dead_letter_subject(name),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("dead-letter watcher")
        .messages()
        .await
        .expect("watcher messages")
}

/// R-X-2, ARCHITECTURE.md "Events": whatever a poison event is, its dead letter can be
/// published, so the consumer moves on to the events behind it:
/// - an event near the server's payload limit, refused with an error as long as itself: the
///   error is cut short, and the payload left out (the original stays in the stream);
/// - an event whose `ce-type` is not its subject's type (handlers go by `ce-type`, producers
///   are allowed by subject): refused without reaching the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_poison_event_is_dead_lettered_and_the_consumer_moves_on() {
    use fupin_proto::risk::v1::LendingResumed;
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = platform_db().await;
        let bus = test_bus(SOURCE).await.expect("test bus");
        let exceeded = NplThresholdExceeded::full_name();
        let config = quick_consumer("poison-any", 3);
        let mut dead_letters = dead_letters_of(&bus, &config.name).await;
        let limit = bus.js.client().server_info().max_payload;
        let big = publish_on_exceeded(&bus, "big", &exceeded, vec![7; limit - 1500]).await;
        // An id of 40 KiB (JetStream takes at most 64 KiB of headers), from a producer that sets
        // no Nats-Msg-Id: copied as it was, with the dead letter's own id made of it, the
        // headers would not fit.
        let forged_id = format!("forged-{}", "f".repeat(40 * 1024));
        publish_on_exceeded(&bus, &forged_id, &LendingResumed::full_name(), vec![7]).await;
        publish_on_exceeded(&bus, "good", &exceeded, vec![7]).await;

        let handler = Records::default();
        let (trigger, stop) = shutdown::channel();
        let task = consumer::spawn(
            db.pool.clone(),
            bus.clone(),
            config.clone(),
            Arc::new(handler.clone()),
            stop,
        );
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(15), dead_letters.next())
                .await
                .expect("a dead letter within 15 s")
                .expect("watcher open")
                .expect("dead letter")
        };
        let first = next().await;
        let h = first.headers.as_ref();
        assert_eq!(headers::get(h, headers::CE_ID), Some("big"));
        let error = headers::get(h, headers::DLQ_ERROR).expect("error");
        assert!(error.starts_with("refused: "), "{error:.40}");
        assert!(error.len() <= 2048 + 3, "cut short: {} bytes", error.len());
        assert!(first.payload.is_empty(), "payload left out");
        assert_eq!(
            headers::get(h, headers::DLQ_PAYLOAD_OMITTED),
            Some(format!("{} bytes, stream sequence {big}", limit - 1500).as_str())
        );
        let second = next().await;
        let h = second.headers.as_ref();
        let id = headers::get(h, headers::CE_ID).expect("ce-id");
        assert!(
            id.starts_with("forged-ff") && id.ends_with("..."),
            "{id:.20}"
        );
        assert!(id.len() <= 256 + 3, "cut short: {} bytes", id.len());
        let error = headers::get(h, headers::DLQ_ERROR).expect("error");
        assert!(error.contains("is not the type of subject"), "{error}");
        assert_eq!(second.payload.as_ref(), &[7]);
        eventually(
            Duration::from_secs(10),
            "the event behind them to be applied",
            || async {
                let applied = handler.applied.lock().unwrap().clone();
                (!applied.is_empty()).then_some(applied)
            },
        )
        .await;
        assert_eq!(*handler.applied.lock().unwrap(), vec!["good".to_owned()]);

        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("consumer stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 60 s");
}

/// R-X-2, README "Events": a database that refuses connections (an operator turned
/// `allow_connections` off: SQLSTATE 55000 at connect) is an outage, not the event's fault:
/// the consumer holds the event, dead-letters nothing, and applies it once connections are
/// allowed again; a database that does not exist (3D000, a restore) reads the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_held_while_the_database_refuses_connections() {
    use fupin_platform::{
        db::is_transient,
        testing::{replace_database, set_connections_allowed},
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = platform_db().await;
        let bus = test_bus(SOURCE).await.expect("test bus");
        let config = quick_consumer("held", 2);
        let mut dead_letters = dead_letters_of(&bus, &config.name).await;
        let missing = sqlx::PgPool::connect(&replace_database(&db.url, "no_such_database_x"))
            .await
            .expect_err("no such database");
        assert!(is_transient(&missing.into()), "3D000");

        // The same code raised by a statement is the statement's.
        sqlx::query("create sequence s")
            .execute(&db.pool)
            .await
            .unwrap();
        let statement = sqlx::query("select currval('s')")
            .execute(&db.pool)
            .await
            .expect_err("currval before nextval");
        assert_eq!(
            statement
                .as_database_error()
                .and_then(|d| d.code())
                .as_deref(),
            Some("55000")
        );
        assert!(!is_transient(&statement.into()), "55000 from a statement");
        set_connections_allowed(&db.name, false)
            .await
            .expect("refuse connections");
        let refused = sqlx::PgPool::connect(&db.url)
            .await
            .expect_err("connections refused");
        assert!(is_transient(&refused.into()), "55000");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy(&db.url)
            .expect("lazy pool");
        publish_on_exceeded(&bus, "held-1", &NplThresholdExceeded::full_name(), vec![7]).await;
        let handler = Records::default();
        let (trigger, stop) = shutdown::channel();
        let task = consumer::spawn(pool, bus.clone(), config, Arc::new(handler.clone()), stop);
        // Past several attempts' worth of the outage (max_attempts 2, ack wait 2 s).
        if let Ok(letter) = tokio::time::timeout(Duration::from_secs(6), dead_letters.next()).await
        {
            panic!(
                "dead-lettered during the outage: {:?}",
                letter.map(|m| m.map(|m| m.headers.clone()))
            );
        }
        assert!(handler.applied.lock().unwrap().is_empty());
        set_connections_allowed(&db.name, true)
            .await
            .expect("allow connections");
        eventually(
            Duration::from_secs(20),
            "the held event applied",
            || async {
                let applied = handler.applied.lock().unwrap().clone();
                (!applied.is_empty()).then_some(())
            },
        )
        .await;
        assert_eq!(*handler.applied.lock().unwrap(), vec!["held-1".to_owned()]);
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("consumer stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 60 s");
}

/// Fails its first `conflicts` attempts as a transaction PostgreSQL gave up in a conflict
/// (SQLSTATE 40P01, raised by the database itself), then records the event.
#[derive(Clone)]
struct ConflictsFirst {
    conflicts: usize,
    calls: Arc<AtomicUsize>,
}

impl EventHandler for ConflictsFirst {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            sqlx::query("insert into effects (n) values (1)")
                .execute(&mut *conn)
                .await?;
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.conflicts {
                sqlx::query(
                    "do $$ begin raise exception 'deadlock detected' using errcode = '40P01'; end $$",
                )
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
    }
}

/// R-X-2: a deadlock or serialization failure says nothing about the event. The consumer
/// holds the event and applies it again, however many times the conflict recurs, instead of
/// counting the conflicts as attempts and dead-lettering the fact (a blacklisting or a
/// suspension admission would then miss). Applied once; nothing of the failed attempts kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_held_through_conflicts_not_dead_lettered() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = db_with_effects().await;
        let pool = &db.pool;
        let bus = test_bus(SOURCE).await.expect("the test bus");
        let config = quick_consumer("conflicts", 2);
        let mut dead = dead_letters_of(&bus, &config.name).await;
        publish_on_exceeded(
            &bus,
            "conflicted-1",
            &NplThresholdExceeded::full_name(),
            vec![1],
        )
        .await;
        let handler = ConflictsFirst {
            conflicts: 4,
            calls: Arc::default(),
        };
        let (trigger, stop) = shutdown::channel();
        let task = consumer::spawn(
            pool.clone(),
            bus.clone(),
            config,
            Arc::new(handler.clone()),
            stop,
        );
        eventually(Duration::from_secs(40), "the event applied", || async {
            (count(pool, "select count(*) from effects").await == 1).then_some(())
        })
        .await;
        assert_eq!(
            handler.calls.load(Ordering::SeqCst),
            5,
            "four conflicts, then applied"
        );
        assert!(
            tokio::time::timeout(Duration::from_secs(1), dead.next())
                .await
                .is_err(),
            "no dead letter"
        );
        trigger.trigger();
        task.await.expect("consumer stops");
        bus.js.delete_stream(&bus.stream).await.ok();
    })
    .await
    .expect("test took longer than 60 s");
}
