//! `fupinctl events tail` against the NATS configuration compose ships, as the read-only
//! `subscriber` user of other government systems.

use std::process::Output;

use fupin_platform::{
    events::EventBus,
    testing::{SHIPPED_SERVICE_PASSWORD, SHIPPED_SUBSCRIBER_PASSWORD, shipped_server, with_user},
};

/// A subject the shipped configuration lets `subscriber` read.
const PUBLIC: &str = "fupin.risk.v1.NplThresholdExceeded";

async fn tail(nats_url: &str, extra: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fupinctl"))
        .args(["--nats-url", nats_url, "events", "tail", "--from-start"])
        .args(["--count", "1", "--timeout-secs", "30"])
        .args(extra)
        .env_remove("EVENT_SUBJECT_PREFIX")
        .env_remove("EVENT_STREAM")
        .output()
        .await
        .expect("running fupinctl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_without_a_filter_is_told_why_it_is_refused() {
    let nats = shipped_server().await;
    let bus = EventBus::connect(
        &with_user(&nats.url(), "fupin", SHIPPED_SERVICE_PASSWORD),
        "fupin",
        "FUPIN",
        "/fupin/test",
    )
    .await
    .expect("the services' user creates the stream");
    bus.js
        .publish(PUBLIC, "suspended".into())
        .await
        .expect("published")
        .await
        .expect("stored");
    let subscriber = with_user(&nats.url(), "subscriber", SHIPPED_SUBSCRIBER_PASSWORD);

    // Every event (the default `fupin.>`) is more than this user may read: it is told so, and
    // what to do, rather than left to wait for a timeout.
    let refused = tail(&subscriber, &[]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused, not followed: {stderr}");
    assert!(
        stderr.contains("NATS refused to create a consumer of fupin.> on stream FUPIN")
            && stderr.contains("Permissions Violation")
            && stderr.contains("pass --filter"),
        "says who refused what, and what to do: {stderr}"
    );

    // Naming one of its subjects, it follows the events.
    let followed = tail(&subscriber, &["--filter", PUBLIC]).await;
    let stdout = String::from_utf8_lossy(&followed.stdout);
    assert!(
        followed.status.success(),
        "followed: {}",
        String::from_utf8_lossy(&followed.stderr)
    );
    assert!(stdout.contains(PUBLIC), "prints the event: {stdout}");
}
