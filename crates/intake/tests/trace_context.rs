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
            let (trace, _) = trace_of(e);
            assert!(
                traces.insert(trace.clone()),
                "one trace per request: {trace}"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// A caller's W3C trace context, as a traced client sends it in the call's metadata.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

/// `msg` with `traceparent: <value>` in its metadata.
fn traced<T>(msg: T, traceparent: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "traceparent",
        traceparent.parse().expect("an ASCII metadata value"),
    );
    req
}

/// The trace id and span id of an event's `traceparent`, checked to be well formed.
fn trace_of(e: &Event) -> (String, String) {
    let tp = e.header("traceparent").expect("a traceparent header");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[0], "00", "{tp}");
    assert_eq!(parts[1].len(), 32, "{tp}");
    assert_eq!(parts[2].len(), 16, "{tp}");
    assert!(
        parts[1].bytes().any(|b| b != b'0') && parts[2].bytes().any(|b| b != b'0'),
        "{tp}"
    );
    (parts[1].to_owned(), parts[2].to_owned())
}

/// A write other than a submission (a review, here late, so that it writes two events in one
/// transaction: the overdue alert and the status change) continues the trace its caller sent:
/// every event it writes carries the caller's trace id, with a span of the service's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_of_a_write_continues_the_callers_trace() {
    bounded(90, async {
        fupin_platform::testing::init_trace_context();
        let t = spawn_intake().await;
        t.set_time("2025-09-26T09:00:00+08:00");
        let resident = resident_id(710);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "10000").await;
        assert_eq!(app.step_due_on, "2025-09-30");
        // Past the village step's deadline, no scan ran: the review alerts it too.
        t.set_time("2025-10-01T09:00:00+08:00");
        t.as_village_staff(VILLAGE_A)
            .review_application(traced(
                review_req(&app.id, pb::Decision::Approve, ""),
                &caller_traceparent(),
            ))
            .await
            .expect("the review");

        let mut ours = Vec::new();
        for full_name in [
            pb::ApplicationStepOverdue::full_name(),
            pb::ApplicationStatusChanged::full_name(),
        ] {
            let events = t.intake_events(&full_name).await;
            let traced: Vec<Event> = events
                .into_iter()
                .filter(|e| trace_of(e).0 == CALLER_TRACE)
                .collect();
            assert_eq!(traced.len(), 1, "one {full_name} of the review: {traced:?}");
            ours.extend(traced);
        }
        let overdue: pb::ApplicationStepOverdue = ours[0].decode();
        assert_eq!(overdue.application_id, app.id);
        let changed: pb::ApplicationStatusChanged = ours[1].decode();
        assert_eq!(changed.application_id, app.id);
        assert_eq!(changed.from_status, pb::Status::VillageReview as i32);
        for e in &ours {
            assert_ne!(trace_of(e).1, CALLER_SPAN, "the service's own span");
        }
        // The submission, sent without trace context, is a trace of its own.
        let submitted = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        assert_eq!(submitted.len(), 1);
        assert_ne!(trace_of(&submitted[0]).0, CALLER_TRACE);
        t.shutdown().await;
    })
    .await;
}

/// A submission (group-committed outside the call's task) continues the trace its caller sent;
/// a malformed `traceparent` is ignored: the call succeeds and starts a trace of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_continues_the_callers_trace_and_ignores_a_malformed_one() {
    bounded(90, async {
        fupin_platform::testing::init_trace_context();
        let t = spawn_intake().await;
        let malformed = [
            "garbage".to_owned(),
            // Upper case, an all-zero trace id, an all-zero span id, a missing part.
            format!("00-{}-{CALLER_SPAN}-01", CALLER_TRACE.to_uppercase()),
            format!("00-{}-{CALLER_SPAN}-01", "0".repeat(32)),
            format!("00-{CALLER_TRACE}-{}-01", "0".repeat(16)),
            format!("00-{CALLER_TRACE}-01"),
        ];
        let residents: Vec<String> = (720..721 + malformed.len() as u32)
            .map(resident_id)
            .collect();
        for r in &residents {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        let mut c = t.as_village_staff(VILLAGE_A);
        let sent = std::iter::once(caller_traceparent()).chain(malformed.iter().cloned());
        let mut ids = Vec::new();
        for (r, tp) in residents.iter().zip(sent) {
            let app = c
                .submit_application(traced(household_request(r, VILLAGE_A, "15000"), &tp))
                .await
                .unwrap_or_else(|s| panic!("submitted with traceparent {tp:?}: {s:?}"))
                .into_inner();
            ids.push(app.id);
        }

        let events = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        assert_eq!(events.len(), ids.len());
        let trace_of_app = |id: &str| {
            let e = events
                .iter()
                .find(|e| e.header("ce-subject") == Some(id))
                .unwrap_or_else(|| panic!("the event of {id}"));
            trace_of(e)
        };
        let (trace, span) = trace_of_app(&ids[0]);
        assert_eq!(trace, CALLER_TRACE);
        assert_ne!(span, CALLER_SPAN, "the service's own span");
        let mut fresh = std::collections::HashSet::new();
        for id in &ids[1..] {
            let (trace, _) = trace_of_app(id);
            assert_ne!(
                trace, CALLER_TRACE,
                "a malformed traceparent is not continued"
            );
            assert!(fresh.insert(trace), "a fresh trace per call");
        }
        t.shutdown().await;
    })
    .await;
}
