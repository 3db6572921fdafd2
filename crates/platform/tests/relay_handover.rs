//! R-X-2 / ARCHITECTURE.md "Events": one relay per database publishes at a time (a session
//! advisory lock) and a standby takes over when the leader stops. A relay that stops must not
//! leave its lock behind on a pooled connection, or no relay on that pool ever publishes again.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{count, eventually, platform_db};
use fupin_platform::{
    events::{
        EventBus, outbox,
        relay::{self, RelayConfig, RelayHandle},
    },
    shutdown,
    testing::test_bus,
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use sqlx::PgPool;

const SOURCE: &str = "/fupin/platform-test";

fn config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(100),
        ack_timeout: Duration::from_secs(2),
        max_backoff: Duration::from_millis(500),
        linger: Duration::from_millis(1),
        final_flush: Duration::from_secs(2),
        leader_idle_timeout: Duration::from_secs(30),
        leader_stall_timeout: Duration::from_secs(30),
    }
}

async fn write(pool: &PgPool, bus: &EventBus, relay: &RelayHandle, sequence: u64) {
    let mut tx = pool.begin().await.expect("begin");
    enqueue(&mut tx, bus, sequence).await;
    tx.commit().await.expect("commit");
    relay.wake();
}

/// One event into the outbox, in the caller's transaction.
async fn enqueue(tx: &mut sqlx::PgConnection, bus: &EventBus, sequence: u64) {
    let event = NplThresholdExceeded {
        area_code: "410311100".into(),
        sequence,
        ..Default::default()
    };
    outbox::enqueue(tx, &bus.prefix, &event, None, Utc::now())
        .await
        .expect("enqueue");
}

/// Waits until the stream holds `n` events and the outbox is empty (the relay deletes each row
/// JetStream acknowledged).
async fn wait_published(pool: &PgPool, bus: &EventBus, n: u64) {
    eventually(Duration::from_secs(10), "the relay to publish", || async {
        let mut stream = bus.js.get_stream(&bus.stream).await.expect("stream");
        let stored = stream.info().await.expect("stream info").state.messages;
        (stored >= n && count(pool, "select count(*) from outbox").await == 0).then_some(())
    })
    .await;
}

/// Several idle connections in the pool, so the next acquire need not return the last one used.
async fn warm(pool: &PgPool) {
    let queries = (0..4).map(|_| sqlx::query("select pg_sleep(0.05)").execute(pool));
    for r in futures::future::join_all(queries).await {
        r.expect("warming the pool");
    }
}

/// R-X-2: a relay restarted in the same process (same pool) after the previous one stopped
/// still publishes: the stopped relay released its advisory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successor_relay_on_the_same_pool_takes_over() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        warm(pool).await;

        let (stop_first, first_stop) = shutdown::channel();
        let (first, first_task) = relay::spawn(pool.clone(), bus.clone(), config(), first_stop);
        write(pool, &bus, &first, 0).await;
        wait_published(pool, &bus, 1).await;
        stop_first.trigger();
        tokio::time::timeout(Duration::from_secs(5), first_task)
            .await
            .expect("first relay stops")
            .expect("no panic");
        eventually(
            Duration::from_secs(5),
            "the stopped relay's advisory lock to be released",
            || async {
                let held = count(
                    pool,
                    "select count(*) from pg_locks l join pg_database d on d.oid = l.database \
                 where l.locktype = 'advisory' and d.datname = current_database()",
                )
                .await;
                (held == 0).then_some(())
            },
        )
        .await;

        warm(pool).await;
        let (stop_second, second_stop) = shutdown::channel();
        let (second, second_task) = relay::spawn(pool.clone(), bus.clone(), config(), second_stop);
        write(pool, &bus, &second, 1).await;
        wait_published(pool, &bus, 2).await;

        stop_second.trigger();
        tokio::time::timeout(Duration::from_secs(5), second_task)
            .await
            .expect("second relay stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 30 s");
}

/// One relay per database: while a leader runs, a standby on another pool publishes nothing
/// itself and takes over once the leader stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_relay_takes_over_when_the_leader_stops() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let other_pool = PgPool::connect(&db.url)
            .await
            .expect("a second replica's pool");
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");

        let (stop_leader, leader_stop) = shutdown::channel();
        let (leader, leader_task) = relay::spawn(pool.clone(), bus.clone(), config(), leader_stop);
        write(pool, &bus, &leader, 0).await;
        wait_published(pool, &bus, 1).await;

        let (stop_standby, standby_stop) = shutdown::channel();
        let (standby, standby_task) =
            relay::spawn(other_pool.clone(), bus.clone(), config(), standby_stop);
        stop_leader.trigger();
        tokio::time::timeout(Duration::from_secs(5), leader_task)
            .await
            .expect("leader stops")
            .expect("no panic");

        write(&other_pool, &bus, &standby, 1).await;
        wait_published(pool, &bus, 2).await;
        let stream = bus.js.get_stream(&bus.stream).await.expect("stream");
        assert_eq!(
            stream.get_info().await.expect("stream info").state.messages,
            2
        );

        stop_standby.trigger();
        tokio::time::timeout(Duration::from_secs(5), standby_task)
            .await
            .expect("standby stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 30 s");
}

/// A leader that hangs (here its runtime's one thread blocked, as a stopped or swapping
/// process would be) while holding the lock: PostgreSQL ends its idle session after
/// `leader_idle_timeout`, the lock goes with it, and a standby publishes what was written
/// meanwhile. Without the bound the standby waited for as long as the leader hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_leader_that_hangs() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let hung = RelayConfig {
            leader_idle_timeout: Duration::from_secs(2),
            ..config()
        };
        // The leader runs on a runtime of its own, on a thread this test can stop.
        let (leader_pool, leader_bus) =
            (PgPool::connect(&db.url).await.expect("pool"), bus.clone());
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (hang_tx, hang_rx) = std::sync::mpsc::channel::<()>();
        let leader_thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the leader's runtime");
            rt.block_on(async move {
                let (_stop, leader_stop) = shutdown::channel();
                let (leader, _task) =
                    relay::spawn(leader_pool.clone(), leader_bus.clone(), hung, leader_stop);
                write(&leader_pool, &leader_bus, &leader, 0).await;
                wait_published(&leader_pool, &leader_bus, 1).await;
                started_tx.send(()).expect("the test waits");
                // Hangs: nothing on this runtime runs until the test lets it go.
                hang_rx.recv().expect("released");
            });
        });
        started_rx.await.expect("the leader published");

        let (stop_standby, standby_stop) = shutdown::channel();
        let (standby, standby_task) =
            relay::spawn(pool.clone(), bus.clone(), config(), standby_stop);
        write(pool, &bus, &standby, 1).await;
        wait_published(pool, &bus, 2).await;

        hang_tx.send(()).expect("release the leader");
        leader_thread.join().expect("the leader's thread");
        stop_standby.trigger();
        tokio::time::timeout(Duration::from_secs(5), standby_task)
            .await
            .expect("standby stops")
            .expect("no panic");
    })
    .await
    .expect("test took longer than 60 s");
}

/// R-X-2, clean stop: what was committed before the relay is stopped is published before it
/// stops (within its final flush), not left for the next start: here a thousand rows, four
/// batches, committed the moment the stop is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_relay_publishes_what_was_committed() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let db = platform_db().await;
        let pool = &db.pool;
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        let (stop, stopped) = shutdown::channel();
        let (relay, task) = relay::spawn(pool.clone(), bus.clone(), config(), stopped);
        write(pool, &bus, &relay, 0).await;
        wait_published(pool, &bus, 1).await;

        let mut tx = pool.begin().await.expect("begin");
        for sequence in 1..=1000 {
            enqueue(&mut tx, &bus, sequence).await;
        }
        tx.commit().await.expect("commit");
        relay.wake();
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the relay stops")
            .expect("no panic");

        assert_eq!(count(pool, "select count(*) from outbox").await, 0);
        let stream = bus.js.get_stream(&bus.stream).await.expect("stream");
        assert_eq!(
            stream.get_info().await.expect("stream info").state.messages,
            1001
        );
    })
    .await
    .expect("test took longer than 30 s");
}
