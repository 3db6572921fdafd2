//! Readiness (operations): `grpc.health.v1` follows the database. A service whose PostgreSQL
//! stops answering reports NOT_SERVING, so compose or a load balancer stops sending it calls,
//! and SERVING again once the database answers. A pool busy with calls is not an outage, and
//! NATS being away changes nothing, because writes keep committing their events to the outbox
//! (R-X-2). Shutdown leaves everything NOT_SERVING.

mod common;

use std::time::Duration;

use common::{NatsServer, eventually, platform_db};
use fupin_platform::{
    health::{self, DatabaseProbe, Readiness},
    shutdown,
    testing::{admin_database_url, drop_database, set_connections_allowed},
};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SERVICE: &str = "fupin.test.v1.ReadinessProbe";

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
        },
        reporter,
        vec![SERVICE.to_owned()],
        pool,
        nats,
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

    let (mut probe, trigger, task, stop_server) = serve_readiness(&pool, Some(client)).await;

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
    let (probe, trigger, task, stop_server) = serve_readiness(&db.pool, None).await;
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
