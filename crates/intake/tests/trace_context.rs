//! ARCHITECTURE "Events": an event carries the W3C `traceparent` of the request that caused it,
//! so a trace follows it across services, also when the write was group-committed in a batch
//! that runs outside the request's span.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use prost::Name;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submitted_event_carries_the_trace_of_its_request() {
    bounded(90, async {
        fupin_platform::testing::init_trace_context();
        let t = spawn_intake().await;
        let residents: Vec<String> = (700..704).map(resident_id).collect();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let calls = residents.iter().map(|r| {
            let mut c = t.as_village_staff(VILLAGE_A);
            let req = household_request(r, VILLAGE_A, "15000");
            tokio::spawn(async move { c.submit_application(req).await })
        });
        for call in futures::future::join_all(calls).await {
            call.expect("task").expect("admitted");
        }
        t.outbox_drained().await;
        let events = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        assert_eq!(events.len(), residents.len());
        let mut traces = std::collections::HashSet::new();
        for e in &events {
            let tp = e.header("traceparent").expect("a traceparent header");
            let parts: Vec<&str> = tp.split('-').collect();
            assert_eq!(parts.len(), 4, "{tp}");
            assert_eq!(parts[0], "00", "{tp}");
            assert_eq!(parts[1].len(), 32, "{tp}");
            assert_eq!(parts[2].len(), 16, "{tp}");
            assert!(
                traces.insert(parts[1].to_owned()),
                "one trace per request: {tp}"
            );
        }
        t.shutdown().await;
    })
    .await;
}
