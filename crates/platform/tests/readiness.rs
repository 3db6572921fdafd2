//! Readiness (operations): `grpc.health.v1` follows the database. A service whose PostgreSQL
//! stops answering reports NOT_SERVING, so compose or a load balancer stops sending it calls,
//! and SERVING again once the database answers. A pool busy with calls is not an outage, and
//! NATS being away changes nothing, because writes keep committing their events to the outbox
//! (R-X-2). Shutdown leaves everything NOT_SERVING.

mod common;

use std::{sync::Arc, time::Duration};

use common::{eventually, platform_db};
use fupin_platform::testing::NatsServer;
use fupin_platform::{
    events::{
        EventBus,
        consumer::{self, ConsumerConfig, Delivered, EventHandler},
        stream::ensure_stream,
    },
    health::{self, Consumers, DatabaseProbe, INBOX_SERVICE, Readiness},
    shutdown,
    testing::{admin_database_url, drop_database, set_connections_allowed, test_bus},
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::future::BoxFuture;
use prost::Name;
use sqlx::postgres::PgPoolOptions;
use tokio::{net::TcpListener, sync::Semaphore};
use tonic::transport::{Channel, Server};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SERVICE: &str = "fupin.test.v1.ReadinessProbe";

/// How long a consumer may stall, be behind or go unread, in these tests.
const INBOX_LAG: Duration = Duration::from_secs(1);

async fn status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

/// A health server for `SERVICE` (SERVING) and the readiness task on `pool`, checking every
/// 100 ms: the client, the shutdown trigger (the task's), the task and a stop for the server.
async fn serve_readiness(
    pool: &sqlx::PgPool,
    nats: Option<async_nats::Client>,
    consumers: Option<Consumers>,
) -> (
    HealthClient<Channel>,
    shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<()>,
    impl std::future::Future<Output = ()>,
) {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, stop) = shutdown::channel();
    let (server_trigger, mut server_stop) = shutdown::channel();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health_service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move { server_stop.wait().await },
            ),
    );
    let task = health::spawn(
        Readiness {
            every: Duration::from_millis(100),
            // Generous: a loaded machine must not make a healthy database look down.
            timeout: Duration::from_secs(2),
            failures_to_fail: 2,
            outbox_lag: Duration::from_secs(60),
            inbox_lag: INBOX_LAG,
        },
        reporter,
        vec![SERVICE.to_owned()],
        pool,
        nats,
        consumers,
        stop,
    );
    let probe = HealthClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect"),
    );
    let stop_server = async move {
        server_trigger.trigger();
        server.await.expect("server task").expect("server");
    };
    (probe, trigger, task, stop_server)
}

async fn until(probe: &HealthClient<Channel>, wanted: ServingStatus) {
    for service in [SERVICE, ""] {
        eventually(Duration::from_secs(15), &format!("{wanted:?}"), || {
            let mut probe = probe.clone();
            async move { (status(&mut probe, service).await == wanted).then_some(()) }
        })
        .await;
    }
}

#[tokio::test]
async fn serving_follows_the_database_not_a_busy_pool_nor_nats() {
    let db = platform_db().await;
    let mut nats = NatsServer::start();
    nats.wait_listening().await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&db.url)
        .await
        .expect("pool");

    let (mut probe, trigger, task, stop_server) = serve_readiness(&pool, Some(client), None).await;

    // The pool's only connection busy and NATS away, for many checks: still serving.
    let held = pool.acquire().await.expect("hold the pool's connection");
    nats.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(status(&mut probe, SERVICE).await, ServingStatus::Serving);
    assert_eq!(status(&mut probe, "").await, ServingStatus::Serving);
    drop(held);

    // The database refuses connections and drops the ones it had: NOT_SERVING.
    set_connections_allowed(&db.name, false)
        .await
        .expect("refuse");
    until(&probe, ServingStatus::NotServing).await;

    // It answers again: SERVING.
    set_connections_allowed(&db.name, true)
        .await
        .expect("allow");
    until(&probe, ServingStatus::Serving).await;

    // Shutdown: the task's last report is NOT_SERVING, for the service too.
    trigger.trigger();
    task.await.expect("readiness task stops with shutdown");
    assert_eq!(status(&mut probe, SERVICE).await, ServingStatus::NotServing);
    assert_eq!(status(&mut probe, "").await, ServingStatus::NotServing);
    stop_server.await;
    pool.close().await;
    db.pool.close().await;
    drop_database(&admin_database_url(), &db.name)
        .await
        .expect("drop test database");
}

// A check that gets no answer within its timeout fails at the timeout (a server that accepts
// the connection and never answers); one whose connection was cut fails, and the next check
// connects afresh and passes once the database answers again.
#[tokio::test]
async fn a_check_is_bounded_by_its_timeout_and_reconnects() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "postgres://nobody@127.0.0.1:{}/none",
        silent.local_addr().expect("addr").port()
    );
    let mute = PgPoolOptions::new().connect_lazy(&url).expect("lazy pool");
    let started = std::time::Instant::now();
    let e = DatabaseProbe::new(&mute)
        .check(Duration::from_millis(300))
        .await
        .expect_err("no answer");
    assert!(e.to_string().contains("no answer within"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "bounded");

    let db = platform_db().await;
    let mut probe = DatabaseProbe::new(&db.pool);
    probe.check(Duration::from_secs(5)).await.expect("answers");
    set_connections_allowed(&db.name, false)
        .await
        .expect("refuse");
    probe
        .check(Duration::from_secs(5))
        .await
        .expect_err("its connection was cut and no new one is allowed");
    set_connections_allowed(&db.name, true)
        .await
        .expect("allow");
    probe
        .check(Duration::from_secs(5))
        .await
        .expect("reconnected");
    db.pool.close().await;
    drop_database(&admin_database_url(), &db.name)
        .await
        .expect("drop test database");
}

// Operations, R-X-2: events waiting in the outbox longer than allowed (NATS away, the stream
// full) are reported as the health of `fupin.events.Outbox`, apart from the service's own:
// NOT_SERVING while the oldest has waited too long, SERVING once the outbox drains; the
// server itself keeps serving.
#[tokio::test]
async fn events_waiting_too_long_are_reported_apart() {
    use fupin_platform::{events::outbox, health::OUTBOX_SERVICE};
    let db = platform_db().await;
    let (probe, trigger, task, stop_server) = serve_readiness(&db.pool, None, None).await;
    let outbox_status = |wanted: ServingStatus| {
        let probe = probe.clone();
        async move {
            eventually(Duration::from_secs(15), &format!("outbox {wanted:?}"), || {
                let mut probe = probe.clone();
                async move { (status(&mut probe, OUTBOX_SERVICE).await == wanted).then_some(()) }
            })
            .await
        }
    };
    outbox_status(ServingStatus::Serving).await;

    // A fresh event waiting: fine, even when the service's clock says it is from yesterday
    // (a moved test clock, or a clock that drifted). One that has waited ten minutes since it
    // was committed: reported.
    let event = fupin_proto::risk::v1::NplThresholdExceeded {
        area_code: "410311100".into(),
        ..Default::default()
    };
    let mut tx = db.pool.begin().await.expect("begin");
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    outbox::enqueue(&mut tx, "t", &event, None, yesterday)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&mut probe.clone(), OUTBOX_SERVICE).await,
        ServingStatus::Serving
    );
    sqlx::query("update outbox set enqueued_at = now() - interval '10 minutes'")
        .execute(&db.pool)
        .await
        .expect("age it");
    outbox_status(ServingStatus::NotServing).await;
    assert_eq!(status(&mut probe.clone(), "").await, ServingStatus::Serving);

    // Published (the relay deletes what it sent): SERVING again.
    sqlx::query("delete from outbox")
        .execute(&db.pool)
        .await
        .expect("drain");
    outbox_status(ServingStatus::Serving).await;

    trigger.trigger();
    task.await.expect("readiness task");
    stop_server.await;
    db.pool.close().await;
    drop_database(&admin_database_url(), &db.name)
        .await
        .expect("drop test database");
}

/// Waits until `service` reports `wanted`.
async fn until_service(probe: &HealthClient<Channel>, service: &str, wanted: ServingStatus) {
    eventually(
        Duration::from_secs(20),
        &format!("{service} {wanted:?}"),
        || {
            let mut probe = probe.clone();
            async move { (status(&mut probe, service).await == wanted).then_some(()) }
        },
    )
    .await;
}

/// Asserts `service` reports `wanted` at every look over `window`.
async fn stays(
    probe: &HealthClient<Channel>,
    service: &str,
    wanted: ServingStatus,
    window: Duration,
) {
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        assert_eq!(
            status(&mut probe.clone(), service).await,
            wanted,
            "{service}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Applies nothing until let through, one event per permit.
#[derive(Clone)]
struct Gate(Arc<Semaphore>);

impl EventHandler for Gate {
    fn handle<'a>(
        &'a self,
        _conn: &'a mut sqlx::PgConnection,
        _event: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.0.acquire().await?.forget();
            Ok(())
        })
    }
}

/// Publishes `n` events of the type the test consumers take.
async fn publish(bus: &EventBus, n: usize) {
    for _ in 0..n {
        bus.publish_now(&NplThresholdExceeded::default(), None, None)
            .await
            .expect("publish");
    }
}

/// How many events the consumers have applied (recorded in the inbox).
async fn applied(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from inbox")
        .fetch_one(pool)
        .await
        .expect("inbox")
}

fn consumer_of(bus: &EventBus, name: &str) -> (ConsumerConfig, Consumers) {
    let config = ConsumerConfig::new(name, vec![NplThresholdExceeded::full_name()]);
    let watched = Consumers {
        bus: bus.clone(),
        names: vec![name.to_owned()],
    };
    (config, watched)
}

// Operations, R-IN-3 and R-X-2: a read model fed by events decides with what it has. A
// consumer the server cannot tell about (here its stream is gone) is reported as the health of
// `fupin.events.Inbox` once that has lasted longer than allowed, apart from the service's own;
// SERVING again once it is there and caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_be_read_is_reported_apart() {
    let db = platform_db().await;
    let bus = test_bus("/fupin/platform-test").await.expect("test bus");
    bus.js.delete_stream(&bus.stream).await.expect("no stream");
    let (config, watched) = consumer_of(&bus, "inbox_unreadable");
    let (probe, trigger, task, stop_server) = serve_readiness(&db.pool, None, Some(watched)).await;
    let (consumer_stop, consumer_shutdown) = shutdown::channel();
    let gate = Gate(Arc::new(Semaphore::new(0)));
    let consumer = consumer::spawn(
        db.pool.clone(),
        bus.clone(),
        config,
        Arc::new(gate),
        consumer_shutdown,
    );

    until_service(&probe, INBOX_SERVICE, ServingStatus::NotServing).await;
    assert_eq!(status(&mut probe.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        status(&mut probe.clone(), SERVICE).await,
        ServingStatus::Serving
    );

    ensure_stream(&bus).await.expect("the stream back");
    until_service(&probe, INBOX_SERVICE, ServingStatus::Serving).await;

    consumer_stop.trigger();
    trigger.trigger();
    consumer.await.expect("consumer stops");
    task.await.expect("readiness stops");
    stop_server.await;
}

// Operations, R-IN-3 and R-X-2: events waiting longer than allowed without the consumer
// acknowledging any (a handler stuck, an event held through an outage, nobody consuming), or a
// consumer working through events published longer ago than allowed (a backlog), are reported
// as the health of `fupin.events.Inbox`; SERVING once it has caught up. The state is
// the server's, which every replica sees alike: a process with no consumer running is not
// behind while nothing waits, and is told when events wait that nobody applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_does_not_apply_waiting_events_is_reported_apart() {
    let db = platform_db().await;
    let bus = test_bus("/fupin/platform-test").await.expect("test bus");
    let (config, watched) = consumer_of(&bus, "inbox_stalled");
    let (probe, trigger, task, stop_server) = serve_readiness(&db.pool, None, Some(watched)).await;
    let gate = Gate(Arc::new(Semaphore::new(0)));
    let run = |gate: &Gate| {
        let (stop, shutdown) = shutdown::channel();
        let task = consumer::spawn(
            db.pool.clone(),
            bus.clone(),
            config.clone(),
            Arc::new(gate.clone()),
            shutdown,
        );
        (stop, task)
    };
    let (consumer_stop, consumer) = run(&gate);
    // Created and idle: SERVING throughout, for longer than the limit.
    consumer::create(&bus, &config).await.expect("consumer");
    stays(&probe, INBOX_SERVICE, ServingStatus::Serving, INBOX_LAG * 2).await;

    // Two events; the handler holds the first past the limit.
    publish(&bus, 2).await;
    until_service(&probe, INBOX_SERVICE, ServingStatus::NotServing).await;
    assert_eq!(status(&mut probe.clone(), "").await, ServingStatus::Serving);
    gate.0.add_permits(2);
    until_service(&probe, INBOX_SERVICE, ServingStatus::Serving).await;
    assert_eq!(applied(&db.pool).await, 2);

    // No consumer running here: nothing waits, nothing to report.
    consumer_stop.trigger();
    consumer.await.expect("consumer stops");
    stays(&probe, INBOX_SERVICE, ServingStatus::Serving, INBOX_LAG * 2).await;
    // An event nobody applies: reported.
    publish(&bus, 5).await;
    until_service(&probe, INBOX_SERVICE, ServingStatus::NotServing).await;
    // Consumed again, one event every 300 ms: moving (no stall lasts the limit), but through
    // events published longer ago than the limit, so still behind until caught up.
    let (consumer_stop, consumer) = run(&gate);
    let pace = gate.clone();
    let pacer = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            pace.0.add_permits(1);
        }
    });
    stays(
        &probe,
        INBOX_SERVICE,
        ServingStatus::NotServing,
        Duration::from_millis(1100),
    )
    .await;
    pacer.await.expect("pacer");
    until_service(&probe, INBOX_SERVICE, ServingStatus::Serving).await;
    assert_eq!(applied(&db.pool).await, 7);

    consumer_stop.trigger();
    trigger.trigger();
    consumer.await.expect("consumer stops");
    task.await.expect("readiness stops");
    stop_server.await;
}
