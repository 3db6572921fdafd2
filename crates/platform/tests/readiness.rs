//! Readiness (ARCHITECTURE.md "Errors" and operations): `grpc.health.v1` follows the database.
//! A service whose PostgreSQL stops answering reports NOT_SERVING, so compose or a load
//! balancer stops sending it calls, and SERVING again once the database answers; NATS being
//! away changes nothing, because writes keep committing their events to the outbox (R-X-2).

mod common;

use std::time::Duration;

use common::{NatsServer, eventually, platform_db};
use fupin_platform::{
    health::{self, Readiness},
    shutdown,
    testing::admin_database_url,
};
use sqlx::{Connection, Executor, PgConnection, postgres::PgPoolOptions};
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

/// Runs `sql` (built from a generated database name) as the administrator.
async fn admin(sql: String) {
    let mut conn = PgConnection::connect(&admin_database_url())
        .await
        .expect("admin connection");
    conn.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("admin statement");
    conn.close().await.expect("close");
}

#[tokio::test]
async fn serving_follows_the_database_and_not_nats() {
    let db = platform_db().await;
    let mut nats = NatsServer::start();
    nats.wait_listening().await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&db.url)
        .await
        .expect("pool");

    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, stop) = shutdown::channel();
    let mut server_stop = stop.clone();
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
            timeout: Duration::from_millis(500),
            failures_to_fail: 2,
        },
        reporter,
        vec![SERVICE.to_owned()],
        pool,
        Some(client),
        stop,
    );
    let mut probe = HealthClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect"),
    );

    // NATS away: still serving, for several checks.
    nats.kill();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(status(&mut probe, SERVICE).await, ServingStatus::Serving);
    assert_eq!(status(&mut probe, "").await, ServingStatus::Serving);

    // The database refuses connections and drops the ones it had: NOT_SERVING.
    let name = &db.name;
    admin(format!(
        r#"alter database "{name}" allow_connections false"#
    ))
    .await;
    admin(format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'"
    ))
    .await;
    for service in [SERVICE, ""] {
        eventually(Duration::from_secs(10), "NOT_SERVING", || {
            let mut probe = probe.clone();
            async move {
                (status(&mut probe, service).await == ServingStatus::NotServing).then_some(())
            }
        })
        .await;
    }

    // It answers again: SERVING.
    admin(format!(r#"alter database "{name}" allow_connections true"#)).await;
    for service in [SERVICE, ""] {
        eventually(Duration::from_secs(10), "SERVING again", || {
            let mut probe = probe.clone();
            async move { (status(&mut probe, service).await == ServingStatus::Serving).then_some(()) }
        })
        .await;
    }

    trigger.trigger();
    task.await.expect("readiness task stops with shutdown");
    server.await.expect("server task").expect("server");
    db.pool.close().await;
    fupin_platform::testing::drop_database(&admin_database_url(), name)
        .await
        .expect("drop test database");
}

// A check that cannot get a connection within its timeout fails (a saturated pool is as
// unavailable as a stopped server), and passes again once one is free.
#[tokio::test]
async fn a_check_is_bounded_by_its_timeout() {
    let db = platform_db().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&db.url)
        .await
        .expect("pool");
    assert!(
        health::database_answers(&pool, Duration::from_secs(1))
            .await
            .is_ok()
    );
    // The only connection is held: a check cannot get it within its timeout.
    let held = pool.acquire().await.expect("hold the connection");
    let e = health::database_answers(&pool, Duration::from_millis(200))
        .await
        .expect_err("no connection within the timeout");
    assert!(e.to_string().contains("no answer within"), "{e}");
    drop(held);
    assert!(
        health::database_answers(&pool, Duration::from_secs(1))
            .await
            .is_ok()
    );
    db.pool.close().await;
    fupin_platform::testing::drop_database(&admin_database_url(), &db.name)
        .await
        .expect("drop test database");
}
