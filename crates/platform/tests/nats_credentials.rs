//! ARCHITECTURE.md "Events": a NATS server that requires credentials (the deployment's, see
//! deploy/nats) is reached with those in `NATS_URL` (`nats://user:password@host`, percent-encoded),
//! and a service without them cannot connect: nobody unauthenticated publishes the events
//! intake's admission reads (R-IN-3), or reads personal data off the stream.

use std::time::Duration;

use fupin_platform::events::EventBus;
use fupin_platform::testing::NatsServer;

#[tokio::test]
async fn credentials_in_the_url_are_used_and_required() {
    let nats = NatsServer::start_with(&["--user", "fupin", "--pass", "s3cr@t/pw"]);
    nats.wait_listening().await;
    let with = |userinfo: &str| {
        nats.url()
            .replacen("nats://", &format!("nats://{userinfo}"), 1)
    };

    let bus = tokio::time::timeout(
        Duration::from_secs(20),
        EventBus::connect(
            &with("fupin:s3cr%40t%2Fpw@"),
            "creds",
            "CREDS",
            "/fupin/test",
        ),
    )
    .await
    .expect("connects within 20 s")
    .expect("the right credentials connect and the stream is made");
    bus.js.get_stream("CREDS").await.expect("the stream exists");

    for wrong in ["", "fupin:wrong@", "intruder@"] {
        // The bus retries its first connection for ever; without the right credentials it never
        // gets through.
        let attempt = tokio::time::timeout(
            Duration::from_secs(3),
            EventBus::connect(&with(wrong), "creds", "CREDS", "/fupin/test"),
        )
        .await;
        assert!(
            !matches!(attempt, Ok(Ok(_))),
            "connected with {wrong:?} as credentials"
        );
    }
}
