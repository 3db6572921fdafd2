//! R-X-2: the stream the services find already made (by an older version, by hand, by a
//! restore) gets the duplicate window the relay's retries need.

use std::time::Duration;

use async_nats::jetstream::stream::Config;
use fupin_platform::{
    events::{EventBus, stream::DUPLICATE_WINDOW},
    testing::{nats_url, unique_token},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_before_gets_the_relays_duplicate_window() {
    let prefix = unique_token();
    let name = prefix.to_uppercase();
    let client = async_nats::connect(nats_url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    js.create_stream(Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("a stream with the server's default window");

    let bus = EventBus::connect(&nats_url(), &prefix, &name, "/fupin/test")
        .await
        .expect("the services connect");
    let mut stream = js.get_stream(&name).await.expect("the stream");
    let window = stream.info().await.expect("info").config.duplicate_window;
    assert_eq!(window, DUPLICATE_WINDOW);
    bus.js.delete_stream(&name).await.expect("cleaned up");
}
