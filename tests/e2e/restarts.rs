//! Restarts of the real binary on the same database, subject prefix and stream, as an operator
//! makes them: a stop asked for (SIGTERM), a crash (SIGKILL), a restart that brings new
//! configuration, and a rolling restart where the old and the new process overlap. Nothing may
//! be lost, doubled or forgotten across them: events (R-X-2), the read model they feed
//! (R-IN-3), request ids (R-IN-8), overdue alerts (R-IN-4, R-IN-7), calendar data added by a
//! restart (R-X-4) and sealed personal data (R-CR-11).

use std::{
    collections::{BTreeSet, HashSet},
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use async_nats::jetstream::consumer::pull;
use chrono::NaiveDate;
use fupin_e2e::{RunningService, authed, household_submission};
use fupin_kernel::ResidentId;
use fupin_platform::{
    Role,
    events::{EventBus, headers},
    testing::{nats_url, unique_token},
};
use fupin_proto::{
    admin::v1::{SetTimeRequest, test_clock_service_client::TestClockServiceClient},
    intake::v1::{self as pb, intake_service_client::IntakeServiceClient},
    rating::v1 as rating,
};
use futures::StreamExt;
use prost::{Message, Name};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use tonic::{Code, Status, transport::Channel};

const INTAKE: &str = "fupin-intake";
const VILLAGE: &str = "410311100201";
const DISTRICT: &str = "410311";
/// How long a stop asked for may take (the relay's final flush included).
const STOP: Duration = Duration::from_secs(20);
/// The durable consumer of rating events (intake's read model, one consumer per context).
const RATING_CONSUMER: &str = "intake-readmodel-rating-v1";
/// The session advisory lock that makes one relay per database publish at a time
/// (README "Relay wake-up"; `fupin_platform::events::relay`): "fupin_ob".
const RELAY_LOCK: i64 = 0x6675_7069_6e5f_6f62;

type Intake = IntakeServiceClient<Channel>;

/// A valid resident ID (born 1980-05-01, aged 18 to 65) numbered `n`.
fn resident(n: u32) -> String {
    let body = format!("41031119800501{n:03}");
    format!(
        "{body}{}",
        ResidentId::check_char_for(&body).expect("17-digit body")
    )
}

async fn bus_of(svc: &RunningService) -> anyhow::Result<EventBus> {
    EventBus::connect(&nats_url(), &svc.prefix, &svc.stream, "/e2e").await
}

/// The service's own database, as its owning role, to look at what it keeps.
async fn db_of(svc: &RunningService) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect(svc.database_url())
        .await?)
}

async fn client(svc: &RunningService) -> anyhow::Result<Intake> {
    Ok(IntakeServiceClient::new(svc.channel().await?))
}

async fn count(db: &PgPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(db).await?)
}

/// Polls `check` until it holds, for at most `within`.
async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The services run on the test clock, from [`START`] (restarts start it there again).
fn today() -> NaiveDate {
    fupin_e2e::test_clock_day()
}

/// An AA rating of household `id`, in force from the start of 2026 (so also on the days the
/// tests pin their clocks to) for the next 300 days.
fn rating_of(id: &str, sequence: u64, veto: bool) -> rating::CreditRatingEffective {
    rating::CreditRatingEffective {
        rating_id: format!("e2e-{id}-{sequence}"),
        subject_kind: rating::SubjectKind::Household as i32,
        subject_id: id.into(),
        village_code: VILLAGE.into(),
        grade: "AA".into(),
        veto,
        credit_line: "30000.00".into(),
        effective_from: "2026-01-01".into(),
        expires_on: (today() + chrono::Days::new(300)).to_string(),
        policy_version: "e2e".into(),
        sequence,
    }
}

/// Publishes household `id`'s rating as the credit-rating service would; returns its ce-id.
async fn rate(bus: &EventBus, id: &str) -> anyhow::Result<String> {
    Ok(bus
        .publish_now(&rating_of(id, 1, false), Some(id), None)
        .await?
        .0)
}

/// Waits until intake's read model holds `n` ratings.
async fn wait_rated(db: &PgPool, n: i64) -> anyhow::Result<()> {
    wait_until(
        "ratings in the read model",
        Duration::from_secs(20),
        || async { Ok(count(db, "select count(*) from rm_credit_ratings").await? >= n) },
    )
    .await
}

async fn rating_consumer(bus: &EventBus) -> anyhow::Result<async_nats::jetstream::consumer::Info> {
    let stream = bus.js.get_stream(&bus.stream).await?;
    let consumer = stream
        .get_consumer::<pull::Config>(RATING_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!("consumer {RATING_CONSUMER}: {e}"))?;
    Ok(consumer.get_info().await?)
}

/// Whether intake's rating consumer has applied and acknowledged everything in the stream.
async fn read_model_caught_up(bus: &EventBus) -> anyhow::Result<bool> {
    let info = rating_consumer(bus).await?;
    Ok(info.num_pending == 0 && info.num_ack_pending == 0)
}

/// Waits until NATS has dropped the pull request of a process that was killed, so that what is
/// published next waits for the next process. An event published in the moment before (the
/// server still counting the dead process's request) is handed to the dead process and comes
/// back only after the consumer's ack wait, 30 s: applied, but late.
async fn wait_pull_requests_dropped(bus: &EventBus) -> anyhow::Result<()> {
    wait_until(
        "NATS dropped the killed process's pull request",
        Duration::from_secs(10),
        || async { Ok(rating_consumer(bus).await?.num_waiting == 0) },
    )
    .await
}

async fn wait_caught_up(bus: &EventBus) -> anyhow::Result<()> {
    wait_until(
        "the read model consumer caught up",
        Duration::from_secs(20),
        || read_model_caught_up(bus),
    )
    .await
}

fn submission(request_id: &str, resident_id: &str) -> pb::SubmitApplicationRequest {
    household_submission(request_id, resident_id, VILLAGE)
}

/// Submits household `resident_id`'s application as its village's staff.
async fn submit(
    intake: &mut Intake,
    request_id: &str,
    resident_id: &str,
) -> Result<pb::Application, Status> {
    intake
        .submit_application(authed(
            submission(request_id, resident_id),
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn approve_at_village(
    intake: &mut Intake,
    request_id: &str,
    application_id: &str,
) -> Result<pb::Application, Status> {
    intake
        .review_application(authed(
            pb::ReviewApplicationRequest {
                request_id: request_id.into(),
                application_id: application_id.into(),
                decision: pb::Decision::Approve as i32,
                reason: String::new(),
                expected_version: 0,
            },
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn lodge(
    intake: &mut Intake,
    complaint: &pb::LodgeComplaintRequest,
) -> Result<pb::Complaint, Status> {
    intake
        .lodge_complaint(authed(complaint.clone(), Role::VillageStaff, VILLAGE, None))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_application(intake: &mut Intake, id: &str) -> anyhow::Result<pb::Application> {
    Ok(intake
        .get_application(authed(
            pb::GetApplicationRequest { id: id.into() },
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await?
        .into_inner())
}

async fn scan(svc: &RunningService) -> anyhow::Result<pb::RunDeadlineScanResponse> {
    Ok(client(svc)
        .await?
        .run_deadline_scan(authed(
            pb::RunDeadlineScanRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
            },
            Role::Operator,
            DISTRICT,
            None,
        ))
        .await?
        .into_inner())
}

/// Moves the service's test clock (FUPIN_TEST_CLOCK=1) to `now` (RFC 3339).
async fn set_clock(svc: &RunningService, now: &str) -> anyhow::Result<()> {
    TestClockServiceClient::new(svc.channel().await?)
        .set_time(authed(
            SetTimeRequest { now: now.into() },
            Role::Operator,
            DISTRICT,
            None,
        ))
        .await?;
    Ok(())
}

/// One event as a plain JetStream subscriber sees it.
struct Seen<M> {
    ce_id: String,
    msg_id: String,
    event: M,
}

/// Every message on `subject` in the stream now, in stream order.
async fn messages_on(
    bus: &EventBus,
    subject: String,
) -> anyhow::Result<Vec<async_nats::jetstream::Message>> {
    let stream = bus.js.get_stream(&bus.stream).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await?;
    let total = consumer.cached_info().num_pending;
    let mut seen = Vec::new();
    if total == 0 {
        return Ok(seen);
    }
    let mut messages = consumer.messages().await?;
    while (seen.len() as u64) < total {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        seen.push(msg);
    }
    Ok(seen)
}

/// Every event of type `M` in the stream now, in stream order.
async fn events_of<M: Message + Name + Default>(bus: &EventBus) -> anyhow::Result<Vec<Seen<M>>> {
    let mut seen = Vec::new();
    for msg in messages_on(bus, bus.subject_for(&M::full_name())).await? {
        let header = |name: &str| {
            headers::get(msg.headers.as_ref(), name)
                .unwrap_or_default()
                .to_owned()
        };
        seen.push(Seen {
            ce_id: header(headers::CE_ID),
            msg_id: header(headers::NATS_MSG_ID),
            event: M::decode(msg.payload.as_ref())?,
        });
    }
    Ok(seen)
}

/// The events of type `M` once at least `at_least` are in the stream, read again a moment
/// later so that late duplicates are counted too.
async fn settled_events<M: Message + Name + Default>(
    bus: &EventBus,
    at_least: usize,
) -> anyhow::Result<Vec<Seen<M>>> {
    wait_until(
        &format!("{at_least} {} in the stream", M::full_name()),
        Duration::from_secs(20),
        || async { Ok(events_of::<M>(bus).await?.len() >= at_least) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    events_of::<M>(bus).await
}

/// The application ids `ApplicationSubmitted` announced, each with its ce-id equal to its
/// `Nats-Msg-Id` (R-X-2: the id JetStream dedupes by is the event's own).
fn submitted_ids(events: &[Seen<pb::ApplicationSubmitted>]) -> Vec<String> {
    for e in events {
        assert_eq!(e.ce_id, e.msg_id, "ce-id is the Nats-Msg-Id");
        assert!(!e.ce_id.is_empty(), "every event has an id");
    }
    events
        .iter()
        .map(|e| e.event.application_id.clone())
        .collect()
}

/// R-X-2, R-IN-3: events for intake's read model published while intake is down (after a crash)
/// wait for its durable consumer and are applied once it is back, each exactly once: a
/// household rated while intake was down can submit, one blacklisted meanwhile cannot, and a
/// second copy of an event applied before the crash (the same ce-id, saying otherwise) changes
/// nothing; one that cannot be applied is dead-lettered once without holding up the rest.
/// A further restart applies and dead-letters nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_model_events_published_while_down_are_applied_once_after_restart()
-> anyhow::Result<()> {
    let mut svc = RunningService::start(INTAKE, true).await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    let (before, rated, listed) = (resident(1), resident(2), resident(3));

    // Applied (and acknowledged) before the crash.
    let first = rate(&bus, &before).await?;
    wait_rated(&db, 1).await?;
    wait_caught_up(&bus).await?;
    let exit = svc.kill().await?;
    assert!(!exit.success(), "killed: {exit}");
    wait_pull_requests_dropped(&bus).await?;

    // While intake is down.
    let rated_id = rate(&bus, &rated).await?;
    let listed_id = rate(&bus, &listed).await?;
    let (blacklist_id, _) = bus
        .publish_now(
            &rating::BlacklistEntryAdded {
                entry_id: "e2e-bl-1".into(),
                subject_kind: rating::SubjectKind::Household as i32,
                subject_id: listed.clone(),
                reason: "骗取贴息".into(),
                source: "e2e".into(),
                listed_on: today().to_string(),
            },
            Some(&listed),
            None,
        )
        .await?;
    // The first rating again under its ce-id, now with a veto, as a producer that lost track
    // of what it had sent might publish it (a new Nats-Msg-Id, so JetStream keeps it): the
    // inbox must recognise the event and drop it.
    let ce_type = rating::CreditRatingEffective::full_name();
    let time = chrono::Utc::now().to_rfc3339();
    let mut h = headers::build(&headers::CloudEvent {
        id: &first,
        ce_type: &ce_type,
        source: "/e2e",
        time_rfc3339: &time,
        subject: Some(&before),
        traceparent: None,
    });
    h.insert(headers::NATS_MSG_ID, format!("{first}-again").as_str());
    bus.js
        .publish_with_headers(
            bus.subject_for(&ce_type),
            h,
            rating_of(&before, 2, true).encode_to_vec().into(),
        )
        .await?
        .await?;

    // And one no consumer can apply (a grade that does not exist): retried, then dead-lettered.
    let mut poison = rating_of(&resident(4), 1, false);
    poison.grade = "Z".into();
    let (poison_id, _) = bus.publish_now(&poison, None, None).await?;

    svc.restart().await?;
    wait_caught_up(&bus).await?;
    let dead = messages_on(&bus, bus.dead_letter_subject(RATING_CONSUMER)).await?;
    assert_eq!(dead.len(), 1, "dead-lettered once");
    let error = headers::get(dead[0].headers.as_ref(), headers::DLQ_ERROR).unwrap_or_default();
    assert!(error.contains("grade"), "{error}");
    assert_eq!(
        headers::get(dead[0].headers.as_ref(), headers::CE_ID),
        Some(poison_id.as_str())
    );
    let mut intake = client(&svc).await?;
    let app = submit(&mut intake, "rated-while-down", &rated).await?;
    assert_eq!(app.status, pb::Status::VillageReview as i32);
    let refused = submit(&mut intake, "listed-while-down", &listed)
        .await
        .expect_err("blacklisted while intake was down");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("R-CR-10"), "{refused:?}");
    // The vetoing copy was not applied: the first rating stands.
    submit(&mut intake, "rated-before-the-crash", &before).await?;

    let mut expected = vec![first, rated_id, listed_id, blacklist_id];
    expected.sort();
    let applied: Vec<String> = sqlx::query_scalar("select event_id from inbox order by event_id")
        .fetch_all(&db)
        .await?;
    assert_eq!(applied, expected, "each event applied once");

    // Another restart: nothing is delivered or applied again.
    assert!(svc.stop(STOP).await?.success());
    svc.restart().await?;
    wait_caught_up(&bus).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&db, "select count(*) from inbox").await?, 4);
    assert_eq!(
        count(&db, "select count(*) from rm_credit_ratings").await?,
        3
    );
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

/// What intake has written, to check that retries write nothing.
#[derive(Debug, PartialEq, Eq)]
struct Written {
    applications: i64,
    transitions: i64,
    request_ids: i64,
    disclosures: i64,
    access_log: i64,
}

impl Written {
    async fn read(db: &PgPool) -> anyhow::Result<Self> {
        Ok(Self {
            applications: count(db, "select count(*) from applications").await?,
            transitions: count(db, "select count(*) from transitions").await?,
            request_ids: count(db, "select count(*) from idempotency_keys").await?,
            disclosures: count(db, "select count(*) from admission_disclosures").await?,
            access_log: count(db, "select count(*) from pii_access_log").await?,
        })
    }
}

/// R-IN-8: writes retried after a crash with their request ids return their first results —
/// the stored application, the village's approval, and a kept refusal even though the rating
/// it lacked arrived while intake was down — and write nothing: no row, no event, no access
/// log entry. The same id with another body is still refused, and a new id decides again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_retried_after_a_crash_return_their_first_results() -> anyhow::Result<()> {
    let mut svc = RunningService::start(INTAKE, true).await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    let (rated, unrated) = (resident(11), resident(12));
    rate(&bus, &rated).await?;
    wait_rated(&db, 1).await?;

    let mut intake = client(&svc).await?;
    let submitted = submit(&mut intake, "idem-submit", &rated).await?;
    let refused = submit(&mut intake, "idem-refused", &unrated)
        .await
        .expect_err("not rated yet");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let approved = approve_at_village(&mut intake, "idem-approve", &submitted.id).await?;
    assert_eq!(approved.status, pb::Status::TownReview as i32);
    let written = Written::read(&db).await?;
    let approvals = settled_events::<pb::ApplicationStatusChanged>(&bus, 1).await?;
    assert_eq!(approvals.len(), 1, "approved at the village");

    assert!(!svc.kill().await?.success());
    wait_pull_requests_dropped(&bus).await?;
    rate(&bus, &unrated).await?;
    svc.restart().await?;
    wait_rated(&db, 2).await?;
    wait_caught_up(&bus).await?;

    let mut intake = client(&svc).await?;
    assert_eq!(submit(&mut intake, "idem-submit", &rated).await?, submitted);
    let again = submit(&mut intake, "idem-refused", &unrated)
        .await
        .expect_err("the kept refusal, though the household is rated now");
    assert_eq!(
        (again.code(), again.message()),
        (refused.code(), refused.message())
    );
    assert_eq!(
        approve_at_village(&mut intake, "idem-approve", &submitted.id).await?,
        approved
    );
    assert_eq!(
        Written::read(&db).await?,
        written,
        "the retries wrote nothing"
    );

    let mut other = submission("idem-submit", &rated);
    other.term_months = 24;
    let reused = intake
        .submit_application(authed(other, Role::VillageStaff, VILLAGE, None))
        .await
        .expect_err("the same id with another body");
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused:?}");
    assert!(reused.message().contains("request_id"), "{reused:?}");

    let decided_again = submit(&mut intake, "idem-refused-2", &unrated).await?;
    let submitted_events = settled_events::<pb::ApplicationSubmitted>(&bus, 2).await?;
    assert_eq!(
        submitted_ids(&submitted_events),
        vec![submitted.id.clone(), decided_again.id.clone()]
    );
    assert_eq!(
        events_of::<pb::ApplicationStatusChanged>(&bus).await?.len(),
        1,
        "the replayed approval announced nothing again"
    );
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

/// R-X-2: events committed with their state changes but not yet published when the process
/// crashes (here its relay never got the lead: the test holds the advisory lock a standby
/// relay would hold) are published by the restarted process, each once, in commit order, and
/// leave the outbox; a further restart publishes nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_before_a_crash_are_published_once_after_restart() -> anyhow::Result<()> {
    const N: u32 = 8;
    let mut svc = RunningService::start(INTAKE, true).await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    let households: Vec<String> = (0..N).map(|i| resident(20 + i)).collect();
    for h in &households {
        rate(&bus, h).await?;
    }
    wait_rated(&db, i64::from(N)).await?;
    // Its relay holds the lead while it runs: stop it, take the lead, start it again.
    assert!(svc.stop(STOP).await?.success());
    let mut lead = PgConnection::connect(svc.database_url()).await?;
    // The server ends the stopped process's session (and its lock) once it sees the socket
    // closed, a moment after the process has exited.
    let mut locked = false;
    for _ in 0..50 {
        locked = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut lead)
            .await?;
        if locked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(locked, "the stopped relay let go of the lead");
    svc.restart().await?;

    let mut intake = client(&svc).await?;
    let mut ids = Vec::new();
    for (i, h) in households.iter().enumerate() {
        ids.push(submit(&mut intake, &format!("crash-{i}"), h).await?.id);
    }
    assert_eq!(
        count(
            &db,
            "select count(*) from outbox where ce_type = 'fupin.intake.v1.ApplicationSubmitted'"
        )
        .await?,
        i64::from(N),
        "committed with the applications"
    );
    assert!(
        events_of::<pb::ApplicationSubmitted>(&bus)
            .await?
            .is_empty()
    );
    assert!(!svc.kill().await?.success());

    lead.close().await?;
    svc.restart().await?;
    let published = settled_events::<pb::ApplicationSubmitted>(&bus, N as usize).await?;
    assert_eq!(submitted_ids(&published), ids, "each once, in commit order");
    wait_until("the outbox emptied", Duration::from_secs(10), || async {
        Ok(count(&db, "select count(*) from outbox").await? == 0)
    })
    .await?;

    assert!(svc.stop(STOP).await?.success());
    svc.restart().await?;
    let again = settled_events::<pb::ApplicationSubmitted>(&bus, N as usize).await?;
    assert_eq!(submitted_ids(&again), ids, "nothing published again");
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Halt {
    /// SIGTERM: a stop asked for.
    Stop,
    /// SIGKILL: a crash.
    Crash,
}

/// Submissions in flight when the process halts: whatever answer each caller got (an
/// application, or an error from the halt), retrying with the same request id after the
/// restart ends with exactly one application per request id, the first answer's if there was
/// one (R-IN-8), and exactly one `ApplicationSubmitted` per application (R-X-2). A stop asked
/// for also answers every call it took (a call it turned away wrote nothing) and leaves nothing
/// in the outbox: what it committed is published before it exits.
async fn submissions_in_flight_survive(halt: Halt) -> anyhow::Result<()> {
    const N: u32 = 30;
    let mut svc = RunningService::start(INTAKE, true).await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    let households: Vec<String> = (0..N).map(|i| resident(100 + i)).collect();
    for h in &households {
        rate(&bus, h).await?;
    }
    wait_rated(&db, i64::from(N)).await?;

    let channel = svc.channel().await?;
    let mut calls = Vec::new();
    for (i, h) in households.iter().enumerate() {
        let mut intake = IntakeServiceClient::new(channel.clone());
        let h = h.clone();
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(4 * i as u64)).await;
            submit(&mut intake, &format!("burst-{i}"), &h).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let exit = match halt {
        Halt::Stop => svc.stop(STOP).await?,
        Halt::Crash => svc.kill().await?,
    };
    let mut firsts = Vec::new();
    for call in calls {
        firsts.push(call.await?);
    }
    if let Halt::Stop = halt {
        assert!(exit.success(), "a stop asked for exits 0: {exit}");
        assert_eq!(
            count(&db, "select count(*) from outbox").await?,
            0,
            "a clean stop publishes what it committed"
        );
    }

    let answered = firsts.iter().filter(|r| r.is_ok()).count();
    let committed = usize::try_from(count(&db, "select count(*) from applications").await?)?;
    eprintln!("{halt:?}: {answered} of {N} submissions answered, {committed} committed");
    match halt {
        // A call cut by the stop was not taken: it wrote nothing.
        Halt::Stop => assert_eq!(committed, answered, "a stop answers every call it took"),
        Halt::Crash => assert!(committed >= answered),
    }
    svc.restart().await?;
    let mut intake = client(&svc).await?;
    let mut ids = BTreeSet::new();
    for (i, (h, first)) in households.iter().zip(&firsts).enumerate() {
        let again = submit(&mut intake, &format!("burst-{i}"), h).await?;
        if let Ok(first) = first {
            assert_eq!(&again, first, "burst-{i}: the first answer");
        }
        ids.insert(again.id);
    }
    assert_eq!(ids.len(), N as usize, "one application per request id");
    assert_eq!(
        count(&db, "select count(*) from applications").await?,
        i64::from(N)
    );
    let published = settled_events::<pb::ApplicationSubmitted>(&bus, N as usize).await?;
    let announced = submitted_ids(&published);
    assert_eq!(announced.len(), N as usize, "each announced once");
    assert_eq!(announced.into_iter().collect::<BTreeSet<_>>(), ids);
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

// R-IN-8, R-X-2
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_in_flight_at_a_crash_are_neither_lost_nor_doubled() -> anyhow::Result<()> {
    submissions_in_flight_survive(Halt::Crash).await
}

// R-IN-8, R-X-2
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_in_flight_at_a_stop_are_neither_lost_nor_doubled() -> anyhow::Result<()> {
    submissions_in_flight_survive(Halt::Stop).await
}

/// Whether application `id` shows as overdue, and its village's one complaint too (R-IN-4,
/// R-IN-7).
async fn both_overdue(svc: &RunningService, id: &str) -> anyhow::Result<bool> {
    let mut intake = client(svc).await?;
    let app = get_application(&mut intake, id).await?;
    let late = intake
        .list_complaints(authed(
            pb::ListComplaintsRequest {
                page: None,
                unanswered_past_deadline_only: true,
            },
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await?
        .into_inner()
        .complaints;
    Ok(app.overdue && late.len() == 1 && late[0].overdue)
}

/// Monday 2026-11-30, 10:00 in China: where the tests' clocks start, so that their deadlines
/// are the same whatever day they run.
const START: &str = fupin_e2e::TEST_CLOCK_START;

/// R-IN-4, R-IN-7: a step past its deadline raises `ApplicationStepOverdue` once, and a
/// complaint unanswered past its deadline `ComplaintOverdue` once, from the scheduled scan;
/// after a stop and after a crash, restarted processes scanning the same late day (and a later
/// one) raise nothing again, and both still show as overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_alerts_are_raised_once_across_restarts() -> anyhow::Result<()> {
    let mut svc =
        RunningService::start_with(INTAKE, true, &[("DEADLINE_SCAN_SECONDS", "1")]).await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    set_clock(&svc, START).await?;
    let household = resident(41);
    rate(&bus, &household).await?;
    wait_rated(&db, 1).await?;
    let mut intake = client(&svc).await?;
    let app = submit(&mut intake, "overdue", &household).await?;
    assert_eq!(app.step_due_on, "2026-12-03", "3 working days");
    let complaint = lodge(
        &mut intake,
        &pb::LodgeComplaintRequest {
            request_id: "overdue-complaint".into(),
            complainant: "赵六".into(),
            content: "没人答复".into(),
            area_code: VILLAGE.into(),
            application_id: app.id.clone(),
        },
    )
    .await?;
    assert_eq!(complaint.due_on, "2026-12-14", "10 working days");
    const LATE: &str = "2026-12-16T10:00:00+08:00";
    const LATER: &str = "2026-12-17T10:00:00+08:00";
    set_clock(&svc, LATE).await?;
    let alerts = settled_events::<pb::ApplicationStepOverdue>(&bus, 1).await?;
    assert_eq!(alerts.len(), 1, "raised once");
    assert_eq!(alerts[0].event.application_id, app.id);
    assert_eq!(alerts[0].event.due_on, app.step_due_on);
    let flagged = settled_events::<pb::ComplaintOverdue>(&bus, 1).await?;
    assert_eq!(flagged.len(), 1, "flagged once");
    assert_eq!(flagged[0].event.complaint_id, complaint.id);
    let nothing_new = pb::RunDeadlineScanResponse::default();
    assert_eq!(scan(&svc).await?, nothing_new);
    assert!(both_overdue(&svc, &app.id).await?);

    for halt in [Halt::Stop, Halt::Crash] {
        match halt {
            Halt::Stop => assert!(svc.stop(STOP).await?.success()),
            Halt::Crash => assert!(!svc.kill().await?.success()),
        }
        // The restarted process starts its clock at START again: move it to the late days.
        svc.restart().await?;
        set_clock(&svc, LATE).await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(scan(&svc).await?, nothing_new, "after the {halt:?}");
        set_clock(&svc, LATER).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(scan(&svc).await?, nothing_new, "after the {halt:?}");
        assert!(
            both_overdue(&svc, &app.id).await?,
            "still overdue after the {halt:?}"
        );
        assert_eq!(
            events_of::<pb::ApplicationStepOverdue>(&bus).await?.len(),
            1,
            "not raised again after the {halt:?}"
        );
        assert_eq!(
            events_of::<pb::ComplaintOverdue>(&bus).await?.len(),
            1,
            "not flagged again after the {halt:?}"
        );
    }
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

/// README "Operating it", with the operator's restart: in a year without calendar data, a
/// submission whose village deadline runs into it is taken with that deadline pending (R-IN-4)
/// and a complaint is recorded with its answer deadline pending (R-IN-7). Once the operator
/// adds the year's file and restarts, the first deadline scan counts both on the new year's
/// data and records that data's version (R-X-4), and alerts the step once it is past due;
/// retries of both writes replay their first answers (R-IN-8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_year_added_with_a_restart_counts_the_pending_deadlines() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("fupin-e2e-calendar-{}", unique_token()));
    std::fs::create_dir_all(&dir)?;
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/calendar");
    for year in 2024..=2026 {
        let file = format!("{year}.toml");
        std::fs::copy(shipped.join(&file), dir.join(&file))?;
    }
    let calendar_dir = dir.display().to_string();
    let mut svc =
        RunningService::start_with(INTAKE, true, &[("CALENDAR_DIR", calendar_dir.as_str())])
            .await?;
    let db = db_of(&svc).await?;
    let household = resident(61);
    rate(&bus_of(&svc).await?, &household).await?;
    wait_rated(&db, 1).await?;
    // Monday 2026-12-21: ten working days run into 2027.
    const MONDAY: &str = "2026-12-21T10:00:00+08:00";
    set_clock(&svc, MONDAY).await?;
    let complaint = pb::LodgeComplaintRequest {
        request_id: "late-in-the-year".into(),
        complainant: "赵六".into(),
        content: "村里没有公示名单".into(),
        area_code: VILLAGE.into(),
        application_id: String::new(),
    };
    let pending = lodge(&mut client(&svc).await?, &complaint).await?;
    assert_eq!(
        (pending.due_on.as_str(), pending.calendar_version.as_str()),
        ("", ""),
        "recorded with its deadline pending"
    );
    // Tuesday 2026-12-29: three working days run into 2027.
    const TUESDAY: &str = "2026-12-29T10:00:00+08:00";
    set_clock(&svc, TUESDAY).await?;
    let app = submit(&mut client(&svc).await?, "late-submission", &household).await?;
    assert_eq!(
        (
            app.status,
            app.step_due_on.as_str(),
            app.step_calendar_version.as_str()
        ),
        (pb::Status::VillageReview as i32, "", ""),
        "taken with its deadline pending"
    );

    assert!(svc.stop(STOP).await?.success());
    std::fs::write(
        dir.join("2027.toml"),
        "year = 2027\n\
         source = \"e2e: a stand-in for the State Council's notice\"\n\
         holidays = [\"2027-01-01\"]\n\
         adjusted_working_days = []\n",
    )?;
    svc.restart().await?;
    // Tuesday 2027-01-05. The restarted process's first scan counted both (its scheduled
    // one, at start, or this one); this one alerts the step if that one has not.
    set_clock(&svc, "2027-01-05T10:00:00+08:00").await?;
    let mut intake = client(&svc).await?;
    assert_eq!(scan(&svc).await?.complaints_flagged, 0, "not due yet");
    let counted = get_application(&mut intake, &app.id).await?;
    // 30, 31 December; 1 January off; 4 January.
    assert_eq!(counted.step_due_on, "2027-01-04");
    assert!(counted.overdue);
    assert!(
        counted.step_calendar_version.starts_with("2026#")
            && counted.step_calendar_version.contains("+2027#"),
        "both years' data counted it: {}",
        counted.step_calendar_version
    );
    let alerts = settled_events::<pb::ApplicationStepOverdue>(&bus_of(&svc).await?, 1).await?;
    assert_eq!(alerts.len(), 1, "alerted once");
    assert_eq!(
        (
            alerts[0].event.due_on.as_str(),
            alerts[0].event.detected_on.as_str()
        ),
        ("2027-01-04", "2027-01-05")
    );
    let (due_on, version): (Option<NaiveDate>, Option<String>) =
        sqlx::query_as("select due_on, calendar_version from complaints")
            .fetch_one(&db)
            .await?;
    // 22, 23, 24, 25, 28, 29, 30, 31 December; 1 January off; 4, 5 January.
    assert_eq!(due_on, Some("2027-01-05".parse()?));
    assert!(
        version
            .as_deref()
            .is_some_and(|v| v.starts_with("2026#") && v.contains("+2027#")),
        "both years' data counted it: {version:?}"
    );
    assert_eq!(
        submit(&mut intake, "late-submission", &household).await?,
        app,
        "a retry replays the first answer"
    );
    assert_eq!(
        lodge(&mut intake, &complaint).await?,
        pending,
        "a retry replays the first answer"
    );
    assert_eq!(count(&db, "select count(*) from applications").await?, 1);
    assert_eq!(count(&db, "select count(*) from complaints").await?, 1);
    assert!(svc.terminate(STOP).await?.success());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Test keys (base64 of 32 random bytes), never used anywhere else.
const KEY_1: &str = "k1:GCS9Fp9Qd0F102i1bj60QJTccquvLufYi8ujRqFuLp4=";
const KEY_2: &str = "k2:on5w90GaGRVuro0l/KEJoVnhCT3caHdEg4mG91E6RyI=";
const INDEX_KEY: &str = "0VIK0KC4udY8W77ArEXJldFn9dHT8B7S2A5GbaPT0nQ=";

/// R-CR-11, README "Rotation": a PII key rotated through restarts, as an operator does it (add
/// the new key in front and retire the old one, restart; remove the old one, restart), leaves
/// everything readable: names and phones, complaints, stored responses and kept refusals
/// replayed for their request ids (R-IN-8), and the blind index the read model is keyed by,
/// so a household rated before the rotation is still admitted (R-IN-3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pii_key_rotated_through_restarts_leaves_everything_readable() -> anyhow::Result<()> {
    let mut svc = RunningService::start_with(
        INTAKE,
        false,
        &[("PII_KEYS", KEY_1), ("PII_INDEX_KEY", INDEX_KEY)],
    )
    .await?;
    let bus = bus_of(&svc).await?;
    let db = db_of(&svc).await?;
    let (applicant, later, unrated) = (resident(51), resident(52), resident(53));
    rate(&bus, &applicant).await?;
    rate(&bus, &later).await?;
    wait_rated(&db, 2).await?;
    let mut intake = client(&svc).await?;
    let submitted = submit(&mut intake, "rot-submit", &applicant).await?;
    let refused = submit(&mut intake, "rot-refused", &unrated)
        .await
        .expect_err("not rated");
    let complaint = lodge(
        &mut intake,
        &pb::LodgeComplaintRequest {
            request_id: "rot-complaint".into(),
            complainant: "孙七".into(),
            content: "贷款审批太慢".into(),
            area_code: VILLAGE.into(),
            application_id: submitted.id.clone(),
        },
    )
    .await?;

    // Step 1 and 2 at once (one replica): k2 seals, k1 still opens and is being retired.
    assert!(svc.stop(STOP).await?.success());
    let both = format!("{KEY_2},{KEY_1}");
    svc.restart_with(&[("PII_KEYS", &both), ("PII_RETIRING_KEYS", "k1")])
        .await?;
    wait_until(
        "every value re-sealed with k2",
        Duration::from_secs(20),
        || async {
            let left: i64 = sqlx::query_scalar(
                r#"select count(*) from (
                     select applicant_id_enc as v from applications
                     union all select applicant_name_enc from applications
                     union all select phone_enc from applications
                     union all select complainant_enc from complaints
                     union all select response from idempotency_keys where response is not null
                   ) sealed where substring(v from 1 for 4) = '\x01026b31'::bytea"#,
            )
            .fetch_one(&db)
            .await?;
            Ok(left == 0)
        },
    )
    .await?;

    // The pass that moved them did not retire k1: the process before sealed with it a moment
    // before. A pass begun once that is quiet (three minutes on, made to have passed here)
    // does, and only then may k1 go: a start without it is refused until then.
    assert!(svc.stop(STOP).await?.success());
    let (status, stderr) = svc
        .restart_failing(&[("PII_KEYS", KEY_2)], Duration::from_secs(60))
        .await?;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("\"k1\" has sealed values"), "{stderr}");
    sqlx::query("update pii_key_checks set last_current_at = now() - interval '10 minutes'")
        .execute(&db)
        .await?;
    svc.restart_with(&[("PII_KEYS", &both), ("PII_RETIRING_KEYS", "k1")])
        .await?;
    wait_until("k1 retired", Duration::from_secs(20), || async {
        let retired: bool = sqlx::query_scalar(
            "select retired_at is not null from pii_key_checks where key_id = 'k1'",
        )
        .fetch_one(&db)
        .await?;
        Ok(retired)
    })
    .await?;

    // Step 4: k1 removed.
    assert!(svc.stop(STOP).await?.success());
    svc.restart_with(&[("PII_KEYS", KEY_2)]).await?;
    let mut intake = client(&svc).await?;
    let shown = get_application(&mut intake, &submitted.id).await?;
    assert_eq!(
        (
            shown.applicant_name.as_str(),
            shown.applicant_phone.as_str()
        ),
        ("王五", "13800000000"),
        "village staff see names and phones"
    );
    assert_eq!(
        submit(&mut intake, "rot-submit", &applicant).await?,
        submitted
    );
    let again = submit(&mut intake, "rot-refused", &unrated)
        .await
        .expect_err("the kept refusal");
    assert_eq!(
        (again.code(), again.message()),
        (refused.code(), refused.message())
    );
    let complaints = intake
        .list_complaints(authed(
            pb::ListComplaintsRequest::default(),
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await?
        .into_inner()
        .complaints;
    assert_eq!(complaints.len(), 1);
    assert_eq!(complaints[0].id, complaint.id);
    assert_eq!(complaints[0].complainant, "孙七");
    let admitted = submit(&mut intake, "rot-later", &later).await?;
    assert_eq!(admitted.status, pb::Status::VillageReview as i32);
    assert!(svc.terminate(STOP).await?.success());
    Ok(())
}

/// A rolling restart: the new process starts while the old one still runs, on the same
/// database and stream, then the old one stops. Events consumed while both run are applied
/// once (R-X-2, the inbox), submissions to either are announced once, the new process's relay
/// takes over when the old one's stops, and both processes scanning the same late day raise
/// each step's overdue alert once (R-IN-4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_applies_publishes_and_alerts_once() -> anyhow::Result<()> {
    const N: u32 = 10;
    let scan_every = [("DEADLINE_SCAN_SECONDS", "1")];
    let mut old = RunningService::start_with(INTAKE, true, &scan_every).await?;
    let new = old.replica(&[]).await?;
    set_clock(&old, START).await?;
    set_clock(&new, START).await?;
    let bus = bus_of(&old).await?;
    let db = db_of(&old).await?;
    let households: Vec<String> = (0..=N).map(|i| resident(60 + i)).collect();
    let mut rating_ids = HashSet::new();
    for h in &households {
        rating_ids.insert(rate(&bus, h).await?);
    }
    wait_rated(&db, i64::from(N) + 1).await?;
    wait_caught_up(&bus).await?;
    let applied: Vec<String> = sqlx::query_scalar("select event_id from inbox")
        .fetch_all(&db)
        .await?;
    assert_eq!(applied.len(), rating_ids.len(), "each applied once");
    assert_eq!(applied.into_iter().collect::<HashSet<_>>(), rating_ids);

    let (mut to_old, mut to_new) = (client(&old).await?, client(&new).await?);
    let mut apps = Vec::new();
    for (i, h) in households[..N as usize].iter().enumerate() {
        let intake = if i % 2 == 0 { &mut to_old } else { &mut to_new };
        apps.push(submit(intake, &format!("rolling-{i}"), h).await?);
    }
    assert!(apps.iter().all(|a| a.step_due_on == "2026-12-03"));
    let late = "2026-12-07T10:00:00+08:00";
    set_clock(&old, late).await?;
    set_clock(&new, late).await?;
    let alerts = settled_events::<pb::ApplicationStepOverdue>(&bus, N as usize).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alerts_later = events_of::<pb::ApplicationStepOverdue>(&bus).await?;
    assert_eq!(alerts.len(), alerts_later.len());
    let alerted: Vec<&str> = alerts
        .iter()
        .map(|a| a.event.application_id.as_str())
        .collect();
    assert_eq!(alerted.len(), N as usize, "one alert per step: {alerted:?}");
    assert_eq!(
        alerted.iter().collect::<HashSet<_>>().len(),
        N as usize,
        "none twice"
    );

    // The old process goes; the new one carries on, publishing what it commits.
    assert!(old.stop(STOP).await?.success());
    let last = submit(&mut to_new, "rolling-last", &households[N as usize]).await?;
    apps.push(last);
    let published = settled_events::<pb::ApplicationSubmitted>(&bus, N as usize + 1).await?;
    let announced = submitted_ids(&published);
    assert_eq!(
        announced.iter().collect::<BTreeSet<_>>(),
        apps.iter().map(|a| &a.id).collect::<BTreeSet<_>>()
    );
    assert_eq!(announced.len(), apps.len(), "each announced once");
    assert_eq!(scan(&new).await?.newly_overdue, 0);

    assert!(new.terminate(STOP).await?.success());
    assert!(old.terminate_after_signal(STOP).await?.success());
    Ok(())
}
