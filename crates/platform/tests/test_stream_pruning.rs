//! Test hygiene: streams that earlier test runs left behind on a developer's NATS are deleted
//! once nothing has used them for a while; streams of running tests and anything not named like
//! a test stream (`FUPIN`, a subscriber's own) are kept.

use std::time::Duration;

use fupin_platform::testing::NatsServer;
use fupin_platform::testing::{is_test_stream, prune_leftover_streams, unique_token};

#[test]
fn only_test_stream_names_are_leftovers() {
    assert!(is_test_stream(&unique_token().to_uppercase()));
    assert!(is_test_stream("T0123456789AB"));
    for kept in [
        "FUPIN",
        "MANUAL",
        "T0123456789ab",
        "T0123456789A",
        "T0123456789ABC",
        "X0123456789AB",
    ] {
        assert!(!is_test_stream(kept), "{kept}");
    }
}

#[tokio::test]
async fn leftover_test_streams_are_deleted_and_the_rest_kept() {
    let nats = NatsServer::start();
    nats.wait_listening().await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let create = |name: &'static str| {
        let js = js.clone();
        async move {
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                ..Default::default()
            })
            .await
            .expect("create stream");
        }
    };
    create("T0123456789AB").await;
    create("FUPIN").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    create("TFEDCBA987654").await;
    let deleted = prune_leftover_streams(&js, Duration::from_secs(1))
        .await
        .expect("prune");
    assert_eq!(deleted, 1);
    let mut left: Vec<String> = futures::TryStreamExt::try_collect(js.stream_names())
        .await
        .expect("names");
    left.sort();
    assert_eq!(left, ["FUPIN", "TFEDCBA987654"]);
}
