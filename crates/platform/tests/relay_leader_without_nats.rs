//! R-X-2 / README "Relay wake-up without NOTIFY": one relay per database publishes at a time (a
//! session advisory lock). A leader that reaches PostgreSQL but not NATS (a partition between
//! that replica and NATS only, a password change refusing its reconnect, a wrong `NATS_URL`)
//! must not keep the lock for ever while a standby could publish: once it has failed to
//! publish for `leader_stall_timeout` while rows wait, it steps down and the standby publishes
//! them, each event once, an application's (a `ce-subject`'s) in commit order. With nothing to
//! publish it keeps the lead, however long its NATS is away.

mod common;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use chrono::Utc;
use common::{count, eventually, platform_db};
use fupin_platform::{
    events::{
        EventBus, headers, outbox,
        relay::{self, RelayConfig},
    },
    shutdown,
    testing::{NatsServer, test_bus},
};
use fupin_proto::risk::v1::NplThresholdExceeded;
use futures::StreamExt;
use prost::Message;
use sqlx::PgPool;

const SOURCE: &str = "/fupin/platform-test";
/// Applications (`ce-subject`s) whose events are written interleaved.
const SUBJECTS: [&str; 3] = ["app-a", "app-b", "app-c"];
const PER_SUBJECT: u64 = 5;

fn config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(100),
        ack_timeout: Duration::from_millis(500),
        max_backoff: Duration::from_millis(200),
        linger: Duration::from_millis(1),
        final_flush: Duration::from_secs(1),
        leader_idle_timeout: Duration::from_secs(30),
        // Well above one failed batch (its sends and its acks, 0.5 s each) and a backoff.
        leader_stall_timeout: Duration::from_secs(2),
    }
}

/// The backend holding the relay's advisory lock, if any.
async fn lock_holder(pool: &PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "select l.pid from pg_locks l join pg_database d on d.oid = l.database \
         where l.locktype = 'advisory' and l.granted and d.datname = current_database()",
    )
    .fetch_optional(pool)
    .await
    .expect("pg_locks")
}

/// The events in the stream of `bus`, in stream order: (ce-id, ce-subject, sequence).
async fn stream_events(bus: &EventBus, n: u64) -> Vec<(String, String, u64)> {
    let stream = bus.js.get_stream(&bus.stream).await.expect("stream");
    let reader = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = reader.messages().await.expect("messages");
    let mut events = Vec::new();
    for k in 0..n {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap_or_else(|_| panic!("message {k} of {n} not delivered within 5 s"))
            .expect("the ordered stream does not end")
            .expect("message");
        let h = msg.headers.as_ref();
        let get = |name| headers::get(h, name).expect(name).to_owned();
        let sequence = NplThresholdExceeded::decode(msg.payload.as_ref())
            .expect("payload")
            .sequence;
        events.push((get(headers::CE_ID), get(headers::CE_SUBJECT), sequence));
    }
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        panic!(
            "a message beyond the {n}: {:?}",
            extra.map(|m| m.headers.clone())
        );
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_nats_hands_over_to_a_standby_that_reaches_it() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let db = platform_db().await;
        // The standby's NATS: the test server, and the stream the events must reach.
        let bus = test_bus(SOURCE)
            .await
            .expect("connecting the test bus (is NATS up? see NATS_URL)");
        // The leader's NATS: a server of its own, stopped below (as a partition between the
        // leader and NATS, or a NATS refusing its reconnect, looks to it).
        let mut leaders_nats = NatsServer::start();
        leaders_nats.wait_listening().await;
        let leader_bus = EventBus::connect(&leaders_nats.url(), &bus.prefix, &bus.stream, SOURCE)
            .await
            .expect("the leader's bus");
        let leader_pool = PgPool::connect(&db.url).await.expect("the leader's pool");
        let standby_pool = PgPool::connect(&db.url).await.expect("the standby's pool");

        let (stop_leader, leader_stop) = shutdown::channel();
        let (leader, leader_task) =
            relay::spawn(leader_pool.clone(), leader_bus, config(), leader_stop);
        let leader_pid = eventually(Duration::from_secs(5), "the first relay to lead", || {
            lock_holder(&db.pool)
        })
        .await;
        let (stop_standby, standby_stop) = shutdown::channel();
        let (standby, standby_task) =
            relay::spawn(standby_pool.clone(), bus.clone(), config(), standby_stop);
        leaders_nats.kill();

        // Nothing to publish: no failure, and the leader keeps the lead past the stall bound.
        tokio::time::sleep(config().leader_stall_timeout * 2).await;
        assert_eq!(
            lock_holder(&db.pool).await,
            Some(leader_pid),
            "a leader with nothing to publish must not step down, whatever its NATS"
        );

        // Events of three applications, interleaved, one transaction each.
        let mut written = Vec::new();
        for sequence in 0..PER_SUBJECT {
            for about in SUBJECTS {
                let mut tx = leader_pool.begin().await.expect("begin");
                let event = NplThresholdExceeded {
                    area_code: "410311100".into(),
                    sequence,
                    ..Default::default()
                };
                let id = outbox::enqueue(&mut tx, &bus.prefix, &event, Some(about), Utc::now())
                    .await
                    .expect("enqueue");
                tx.commit().await.expect("commit");
                leader.wake();
                written.push((id.to_string(), about.to_owned(), sequence));
            }
        }
        let n = written.len() as u64;

        // The leader fails for `leader_stall_timeout`, steps down, and the standby publishes.
        eventually(
            Duration::from_secs(20),
            "the standby to publish what the leader could not",
            || async {
                let mut stream = bus.js.get_stream(&bus.stream).await.ok()?;
                let stored = stream.info().await.ok()?.state.messages;
                (stored >= n && count(&db.pool, "select count(*) from outbox").await == 0)
                    .then_some(())
            },
        )
        .await;
        let holder = lock_holder(&db.pool).await;
        assert!(
            holder.is_some_and(|pid| pid != leader_pid),
            "the standby leads now (lock held by {holder:?}, the leader was {leader_pid})"
        );

        // Each event exactly once, and each application's in the order they were written.
        let events = stream_events(&bus, n).await;
        let ids: HashSet<&str> = events.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids.len() as u64, n, "no event twice: {events:?}");
        let expected: HashSet<&str> = written.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, expected, "every event written, and only those");
        let mut by_subject: HashMap<&str, Vec<u64>> = HashMap::new();
        for (_, about, sequence) in &events {
            by_subject.entry(about).or_default().push(*sequence);
        }
        for about in SUBJECTS {
            assert_eq!(
                by_subject.get(about).cloned().unwrap_or_default(),
                (0..PER_SUBJECT).collect::<Vec<_>>(),
                "{about}'s events in the order they were written"
            );
        }

        stop_standby.trigger();
        stop_leader.trigger();
        for (task, which) in [(standby_task, "standby"), (leader_task, "leader")] {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap_or_else(|_| panic!("the {which} stops"))
                .expect("no panic");
        }
        drop(standby);
    })
    .await
    .expect("test took longer than 60 s");
}
