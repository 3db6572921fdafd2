//! The intake service as the tests see it: a real server on 127.0.0.1:0 with its own database
//! and its own NATS subject prefix and stream, driven over gRPC with bearer tokens, fed with
//! upstream events published exactly as the producing services publish them, and observed
//! through its tables and the events it puts on the stream. Tests cannot collide, so they run
//! in parallel. Logs show only with `TEST_LOG=1`.
//!
//! Each test binary uses a subset of these helpers, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Once},
    time::Duration,
};

use async_nats::{
    HeaderMap,
    jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use chrono::{DateTime, NaiveDate, Utc};
use fupin_intake::{MIGRATIONS, Reference, Runtime};
use fupin_kernel::{
    AreaRegistry, PolicyHistory, ResidentId, Uscc, WorkingDayCalendar, policy::IntakePolicy,
};
use fupin_platform::{
    PiiCipher, Role,
    auth::token_for,
    clock::AdjustableClock,
    events::{EventBus, headers},
    shutdown::{self, ShutdownTrigger},
    testing::{TestDb, admin_database_url, replace_database, test_bus},
};
use fupin_proto::{
    common::v1::{Money, PageRequest},
    industry::v1 as industry,
    intake::v1::{self as pb, intake_service_client::IntakeServiceClient},
    rating::v1 as rating,
    risk::v1 as risk,
};
use futures::StreamExt;
use prost::{Message, Name};
use sqlx::{Connection, Executor, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub const SECRET: &str = "test-secret";
/// Personal-data keys of the tests (not the development ones): `t2` is current, `t1` an older
/// key still configured for reading.
pub const PII_KEYS: &str = concat!(
    "t2:dGVzdC1waWkta2V5LXR3by0tLS0tLS0tLS0tLS0tLS0=,",
    "t1:dGVzdC1waWkta2V5LW9uZS0tLS0tLS0tLS0tLS0tLS0="
);
pub const PII_INDEX_KEY: &str = "dGVzdC1waWktaW5kZXgta2V5LS0tLS0tLS0tLS0tLS0=";
pub const DISTRICT: &str = "410311";
/// 安乐镇 and two of its villages (deploy/areas/410311.toml).
pub const TOWN_A: &str = "410311100";
pub const VILLAGE_A: &str = "410311100201";
pub const VILLAGE_A2: &str = "410311100202";
/// 白马寺镇 and one of its villages.
pub const TOWN_B: &str = "410311101";
pub const VILLAGE_B: &str = "410311101201";
/// The partner bank of deploy/policy/intake.toml.
pub const BANK: &str = "abc-luolong-xinqu";
pub const OTHER_BANK: &str = "icbc-luolong";
/// Where every test starts unless it moves the clock: a Monday, inside the shipped calendars
/// and the shipped policy, so deadlines are deterministic whatever the real date.
pub const DEFAULT_NOW: &str = "2026-03-02T09:00:00+08:00";

const RATING_SOURCE: &str = "/fupin/credit-rating";
const RISK_SOURCE: &str = "/fupin/risk-control";
const INDUSTRY_SOURCE: &str = "/fupin/industry";
/// Durable consumer name prefix of intake's read model (one consumer per upstream context).
pub const READMODEL_CONSUMER: &str = fupin_intake::readmodel::CONSUMER;

pub type Client = IntakeServiceClient<InterceptedService<Channel, Bearer>>;

/// Attaches `authorization: Bearer <token>` (or nothing) to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A running intake service and everything a test needs to drive and observe it.
pub struct TestIntake {
    pub addr: SocketAddr,
    pub channel: Channel,
    /// The service's clock: `set_time` moves the service's "now".
    pub clock: Arc<AdjustableClock>,
    /// A pool of the test's own (the service has its own pool on the same database).
    pub pool: PgPool,
    /// The service's own pool (10 connections), to put it under pressure.
    pub service_pool: PgPool,
    /// The test's event bus: same stream and prefix as the service's.
    pub bus: EventBus,
    pub db_name: String,
    pub calendar: WorkingDayCalendar,
    /// The service's personal-data cipher, to compute blind indexes and open sealed columns.
    pub pii: PiiCipher,
    trigger: ShutdownTrigger,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The submission writer's statement deadline the service runs with.
    submit_deadline: Duration,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reference data from the shipped deploy files, with [`OTHER_BANK`] a partner bank beside the
/// shipped one in every policy version (same version ids), so tests can play another partner
/// bank (one that is no partner is refused at the token, R-IN-6).
pub fn reference() -> Reference {
    let ws = workspace();
    let shipped: PolicyHistory<IntakePolicy> =
        PolicyHistory::load(ws.join("deploy/policy/intake.toml")).expect("intake policy");
    let versions = shipped
        .versions()
        .iter()
        .cloned()
        .map(|mut v| {
            v.value.partner_banks.push(OTHER_BANK.to_owned());
            v
        })
        .collect();
    Reference {
        areas: AreaRegistry::load(ws.join("deploy/areas/410311.toml")).expect("areas file"),
        calendar: WorkingDayCalendar::load_dir(ws.join("deploy/calendar")).expect("calendars"),
        policy: PolicyHistory::new(versions).expect("the test policy"),
    }
}

pub fn test_pii() -> PiiCipher {
    PiiCipher::from_config(PII_KEYS, PII_INDEX_KEY).expect("test PII keys")
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// Starts a fresh intake service: its own database and stream, port 0, the test clock on,
/// the clock at [`DEFAULT_NOW`], no deadline timer (tests run the scan by RPC).
pub async fn spawn_intake() -> TestIntake {
    spawn_intake_with(reference()).await
}

/// [`spawn_intake`] whose submission writer gives up a statement unanswered for `deadline`.
pub async fn spawn_intake_with_submit_deadline(deadline: Duration) -> TestIntake {
    spawn_intake_running(reference(), deadline).await
}

/// A policy `[[versions]]` entry `id` in force from `from` (YYYY-MM-DD) with the values of the
/// first shipped version, except those `changes` ("key = value" lines) set, for
/// [`spawn_intake_with_policy_versions`].
pub fn policy_version(id: &str, from: &str, changes: &[&str]) -> String {
    let shipped = std::fs::read_to_string(workspace().join("deploy/policy/intake.toml"))
        .expect("shipped policy");
    let key = |line: &str| line.split('=').next().unwrap_or_default().trim().to_owned();
    let first = &shipped[shipped.find("[versions.value]").expect("values")..];
    let values = first
        .find("[[versions]]")
        .map_or(first, |end| &first[..end]);
    let mut entry = format!("[[versions]]\nid = \"{id}\"\neffective_from = \"{from}\"\n\n");
    for line in values.lines() {
        let changed = changes
            .iter()
            .find(|c| !line.contains('#') && key(c) == key(line));
        entry.push_str(changed.copied().unwrap_or(line));
        entry.push('\n');
    }
    for c in changes {
        assert!(entry.contains(c), "{c:?} is not a shipped policy value");
    }
    entry
}

/// Intake with a second partner bank ([`OTHER_BANK`]) from 2026-01-01 (policy
/// `luolong-2026.2`), the clock at [`DEFAULT_NOW`].
pub async fn spawn_intake_with_two_banks() -> TestIntake {
    spawn_intake_with_policy_versions(&policy_version(
        "luolong-2026.2",
        "2026-01-01",
        &[r#"partner_banks = ["abc-luolong-xinqu", "icbc-luolong"]"#],
    ))
    .await
}

/// [`spawn_intake`] under the shipped policy with `later` (TOML `[[versions]]` entries) added
/// after its versions: a policy that changes while applications are in flight (R-X-4).
pub async fn spawn_intake_with_policy_versions(later: &str) -> TestIntake {
    let shipped = std::fs::read_to_string(workspace().join("deploy/policy/intake.toml"))
        .expect("shipped policy");
    let path = std::env::temp_dir().join(format!("fupin-policy-{}.toml", uuid::Uuid::now_v7()));
    std::fs::write(&path, format!("{shipped}\n{later}")).expect("writing the test policy");
    let policy = PolicyHistory::load(&path).expect("the test policy loads");
    let _ = std::fs::remove_file(&path);
    spawn_intake_with(Reference {
        policy,
        ..reference()
    })
    .await
}

/// [`spawn_intake`] with `reference` instead of the test one.
pub async fn spawn_intake_with(reference: Reference) -> TestIntake {
    spawn_intake_running(reference, fupin_intake::submit::STATEMENT_DEADLINE).await
}

async fn spawn_intake_running(reference: Reference, submit_deadline: Duration) -> TestIntake {
    init_logs();
    let db = TestDb::create(&MIGRATIONS)
        .await
        .expect("creating a test database (is PostgreSQL up? `cargo xtask infra`)");
    let bus = test_bus("/fupin/intake")
        .await
        .expect("connecting the test bus (is NATS up? `cargo xtask infra`)");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .expect("test pool");
    let clock = AdjustableClock::new();
    clock
        .set(instant(DEFAULT_NOW))
        .expect("the default instant is in range");
    let (addr, channel, trigger, task) = start_service(
        db.pool.clone(),
        bus.clone(),
        clock.clone(),
        reference,
        submit_deadline,
    )
    .await;
    TestIntake {
        addr,
        channel,
        clock,
        pool,
        service_pool: db.pool.clone(),
        bus,
        db_name: db.name,
        calendar: self::reference().calendar,
        pii: test_pii(),
        trigger,
        task: Some(task),
        submit_deadline,
    }
}

type ServiceTask = JoinHandle<anyhow::Result<()>>;

/// Runs intake on `pool` and `bus` with `reference` on a port of its own.
/// What the tests run intake with: the test keys and clock, no timers, no drain.
fn runtime(
    pool: PgPool,
    bus: EventBus,
    clock: Arc<AdjustableClock>,
    reference: Reference,
    submit_deadline: Duration,
) -> Runtime {
    Runtime {
        pool,
        bus,
        clock,
        token_keys: fupin_platform::auth::TokenKeys::hs256(SECRET),
        pii: test_pii(),
        test_clock: true,
        reference,
        scan_interval: None,
        reseal: None,
        grpc_tls: None,
        readiness: None,
        shutdown_drain: Duration::ZERO,
        submit_deadline,
    }
}

async fn start_service(
    pool: PgPool,
    bus: EventBus,
    clock: Arc<AdjustableClock>,
    reference: Reference,
    submit_deadline: Duration,
) -> (SocketAddr, Channel, ShutdownTrigger, ServiceTask) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (trigger, stop) = shutdown::channel();
    let rt = runtime(pool, bus, clock, reference, submit_deadline);
    let task = tokio::spawn(fupin_intake::run(rt, listener, stop));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connecting to intake");
    (addr, channel, trigger, task)
}

impl TestIntake {
    /// Stops the service and waits for it to end cleanly.
    async fn stop_service(&mut self) {
        self.trigger.trigger();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("intake stops within 10 s of shutdown")
                .expect("intake task did not panic")
                .expect("intake run returns Ok");
        }
    }

    /// Stops the service and starts it again on the same database, stream and clock with
    /// `reference`, as an operator restarts intake after deploying reference data (calendars
    /// and policy are read at start).
    pub async fn restart_with(&mut self, reference: Reference) {
        self.stop_service().await;
        self.new_service_pool().await;
        self.calendar = reference.calendar.clone();
        let (addr, channel, trigger, task) = start_service(
            self.service_pool.clone(),
            self.bus.clone(),
            self.clock.clone(),
            reference,
            self.submit_deadline,
        )
        .await;
        (self.addr, self.channel, self.trigger, self.task) = (addr, channel, trigger, Some(task));
    }
}

impl TestIntake {
    async fn new_service_pool(&mut self) {
        self.service_pool.close().await;
        self.service_pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&replace_database(&admin_database_url(), &self.db_name))
            .await
            .expect("the service's pool again");
    }

    /// Stops the service and starts it again as [`Self::restart_with`] does, expecting the
    /// start to be refused: returns the error it stopped with. The service stays stopped
    /// until the next `restart_with`.
    pub async fn restart_refused(&mut self, reference: Reference) -> anyhow::Error {
        self.stop_service().await;
        self.new_service_pool().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let (_trigger, stop) = shutdown::channel();
        let rt = runtime(
            self.service_pool.clone(),
            self.bus.clone(),
            self.clock.clone(),
            reference,
            self.submit_deadline,
        );
        match tokio::time::timeout(
            Duration::from_secs(30),
            fupin_intake::run(rt, listener, stop),
        )
        .await
        {
            Ok(Err(e)) => e,
            Ok(Ok(())) => panic!("intake started and stopped without an error"),
            Err(_) => panic!("intake started (still running after 30 s)"),
        }
    }

    // ---- callers ----

    pub fn client_with(&self, token: Option<&str>) -> Client {
        let value = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
        IntakeServiceClient::with_interceptor(self.channel.clone(), Bearer(value))
    }

    pub fn as_caller(&self, subject: &str, role: Role, area: &str, bank: Option<&str>) -> Client {
        self.client_with(Some(&token_for(SECRET, subject, role, area, bank, 3600)))
    }

    pub fn anonymous(&self) -> Client {
        self.client_with(None)
    }

    pub fn as_village_staff(&self, village: &str) -> Client {
        self.as_caller(
            &format!("village-staff-{village}"),
            Role::VillageStaff,
            village,
            None,
        )
    }

    pub fn as_town_staff(&self, town: &str) -> Client {
        self.as_caller(&format!("town-staff-{town}"), Role::TownStaff, town, None)
    }

    pub fn as_district_staff(&self) -> Client {
        self.as_caller("district-center-1", Role::DistrictStaff, DISTRICT, None)
    }

    pub fn as_bank(&self, bank_id: &str) -> Client {
        self.as_caller(
            &format!("bank-{bank_id}"),
            Role::Bank,
            DISTRICT,
            Some(bank_id),
        )
    }

    pub fn as_operator(&self) -> Client {
        self.as_caller("ops-1", Role::Operator, DISTRICT, None)
    }

    // ---- time ----

    /// Moves the service's clock to an RFC 3339 instant (use China time, `+08:00`).
    pub fn set_time(&self, rfc3339: &str) {
        self.clock
            .set(instant(rfc3339))
            .expect("a test instant in range");
    }

    // ---- upstream events, as the producing services publish them ----

    /// Publishes `event` with CloudEvents headers and `Nats-Msg-Id` = `ce-id`; returns the id.
    pub async fn publish<M: Message + Name>(&self, source: &str, event: &M, about: &str) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.publish_with_ids(source, event, about, &id, &id).await;
        id
    }

    /// Publishes with explicit `ce-id` and `Nats-Msg-Id` (to play a redelivery that JetStream's
    /// duplicate window would not catch).
    pub async fn publish_with_ids<M: Message + Name>(
        &self,
        source: &str,
        event: &M,
        about: &str,
        ce_id: &str,
        nats_msg_id: &str,
    ) -> async_nats::jetstream::publish::PublishAck {
        let ce_type = M::full_name();
        let time = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut h = headers::build(&headers::CloudEvent {
            id: ce_id,
            ce_type: &ce_type,
            source,
            time_rfc3339: &time,
            subject: Some(about),
            traceparent: None,
        });
        h.insert(headers::NATS_MSG_ID, nats_msg_id);
        self.bus
            .js
            .publish_with_headers(
                self.bus.subject_for(&ce_type),
                h,
                event.encode_to_vec().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("JetStream ack")
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn publish_rating_effective(
        &self,
        resident_id: &str,
        village: &str,
        grade: &str,
        line: &str,
        veto: bool,
        effective_from: &str,
        expires_on: &str,
        seq: u64,
    ) -> String {
        let ev = rating_event(
            resident_id,
            village,
            grade,
            line,
            veto,
            effective_from,
            expires_on,
            seq,
        );
        self.publish(RATING_SOURCE, &ev, resident_id).await
    }

    pub async fn publish_credit_village(&self, village: &str, credit: bool, seq: u64) -> String {
        self.publish_credit_village_from(village, credit, "2024-01-01", seq)
            .await
    }

    pub async fn publish_credit_village_from(
        &self,
        village: &str,
        credit: bool,
        effective_from: &str,
        seq: u64,
    ) -> String {
        let ev = rating::CreditVillageStatusChanged {
            village_code: village.to_owned(),
            credit_village: credit,
            effective_from: effective_from.into(),
            sequence: seq,
        };
        self.publish(RATING_SOURCE, &ev, village).await
    }

    pub async fn publish_blacklisted(&self, entry_id: &str, subject_id: &str, kind: i32) -> String {
        let ev = rating::BlacklistEntryAdded {
            entry_id: entry_id.to_owned(),
            subject_kind: kind,
            subject_id: subject_id.to_owned(),
            reason: "malicious default".into(),
            source: "bank report".into(),
            listed_on: "2026-01-05".into(),
        };
        self.publish(RATING_SOURCE, &ev, subject_id).await
    }

    pub async fn publish_blacklist_removed(
        &self,
        entry_id: &str,
        subject_id: &str,
        kind: i32,
    ) -> String {
        let ev = rating::BlacklistEntryRemoved {
            entry_id: entry_id.to_owned(),
            subject_kind: kind,
            subject_id: subject_id.to_owned(),
            decision: "debt repaid; removal decided by the district center".into(),
            removed_on: "2026-02-01".into(),
        };
        self.publish(RATING_SOURCE, &ev, subject_id).await
    }

    pub async fn publish_npl_exceeded(&self, area: &str, seq: u64) -> String {
        let ev = risk::NplThresholdExceeded {
            area_code: area.to_owned(),
            npl_ratio: "0.0612".into(),
            threshold: if area.len() == 9 { "0.05" } else { "0.07" }.into(),
            measured_at: "2026-03-01T00:00:00Z".into(),
            sequence: seq,
        };
        self.publish(RISK_SOURCE, &ev, area).await
    }

    pub async fn publish_lending_resumed(&self, area: &str, seq: u64) -> String {
        let ev = risk::LendingResumed {
            area_code: area.to_owned(),
            npl_ratio: "0.0400".into(),
            threshold: if area.len() == 9 { "0.05" } else { "0.07" }.into(),
            measured_at: "2026-03-02T00:00:00Z".into(),
            sequence: seq,
        };
        self.publish(RISK_SOURCE, &ev, area).await
    }

    pub async fn publish_enterprise_qualified(
        &self,
        uscc: &str,
        qualified: bool,
        seq: u64,
    ) -> String {
        self.publish_enterprise_qualification(uscc, qualified, "2026-01-01", seq)
            .await
    }

    /// Industry's qualification (or disqualification) of an enterprise registered in `area`
    /// (R-ID-1), from 2026-01-01.
    pub async fn publish_enterprise_registered(
        &self,
        uscc: &str,
        qualified: bool,
        area: &str,
        seq: u64,
    ) -> String {
        let mut ev = enterprise_qualification(uscc, qualified, "2026-01-01", seq);
        ev.area_code = area.to_owned();
        self.publish(INDUSTRY_SOURCE, &ev, uscc).await
    }

    /// Industry's qualification (or disqualification) taking effect on `from` (YYYY-MM-DD).
    pub async fn publish_enterprise_qualification(
        &self,
        uscc: &str,
        qualified: bool,
        from: &str,
        seq: u64,
    ) -> String {
        let ev = enterprise_qualification(uscc, qualified, from, seq);
        self.publish(INDUSTRY_SOURCE, &ev, uscc).await
    }

    // ---- read-model catch-up ----

    /// Whether the read model has applied the event with this `ce-id` (its inbox holds it).
    pub async fn applied(&self, ce_id: &str) -> bool {
        count_where(
            &self.pool,
            "select count(*) from inbox where consumer like $1 || '%' and event_id = $2",
            &[READMODEL_CONSUMER, ce_id],
        )
        .await
            == 1
    }

    /// Waits until intake's read-model consumer has applied (or skipped as a duplicate) the
    /// event with this `ce-id`.
    pub async fn wait_applied(&self, ce_id: &str) {
        wait_until(&format!("event {ce_id} in the read-model inbox"), || {
            self.applied(ce_id)
        })
        .await;
    }

    /// A household rating (no veto) effective 2024-01-01 .. 2027-12-31, published and applied.
    pub async fn rate_household(
        &self,
        resident_id: &str,
        village: &str,
        grade: &str,
        line: &str,
        seq: u64,
    ) {
        let id = self
            .publish_rating_effective(
                resident_id,
                village,
                grade,
                line,
                false,
                "2024-01-01",
                "2027-12-31",
                seq,
            )
            .await;
        self.wait_applied(&id).await;
    }

    /// An effective grade-A rating (line 20,000) for a household, applied to the read model.
    pub async fn given_credit_household(&self, resident_id: &str, village: &str) {
        self.rate_household(resident_id, village, "A", "20000.00", 1)
            .await;
        let pool = &self.pool;
        let index = self.subject_index(resident_id);
        let index = &index;
        wait_until("the rating in rm_credit_ratings", || async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from rm_credit_ratings where subject_idx = $1 and grade = 'A'",
            )
            .bind(index)
            .fetch_one(pool)
            .await
            .expect("rating count")
                == 1
        })
        .await;
    }

    /// The blind index the service keys a resident ID or USCC by (R-CR-11).
    pub fn subject_index(&self, id: &str) -> Vec<u8> {
        fupin_intake::store::pii::subject_index(&self.pii, id)
    }

    /// Waits until the relay has published every outbox row.
    pub async fn outbox_drained(&self) {
        let pool = &self.pool;
        wait_until("the outbox relay to publish every row", || async move {
            // The relay deletes each row JetStream acknowledged.
            count(pool, "select count(*) from outbox").await == 0
        })
        .await;
    }

    /// Intake's events of one type (full name `fupin.intake.v1.X`) on the stream, in order;
    /// waits for the outbox to drain first, so "exactly n" assertions are meaningful.
    pub async fn intake_events(&self, full_name: &str) -> Vec<Event> {
        self.outbox_drained().await;
        let subject = self.bus.subject_for(full_name);
        all_events(&self.bus, &subject).await
    }

    /// [`TestIntake::intake_events`] of type `M`, decoded.
    pub async fn intake_messages<M: Message + Name + Default>(&self) -> Vec<M> {
        let events = self.intake_events(&M::full_name()).await;
        events.iter().map(Event::decode).collect()
    }

    /// Stops the service, then removes its stream and database.
    pub async fn shutdown(mut self) {
        self.stop_service().await;
        self.pool.close().await;
        self.service_pool.close().await;
        let _ = self.bus.js.delete_stream(&self.bus.stream).await;
        if let Ok(mut conn) = PgConnection::connect(&admin_database_url()).await {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    r#"drop database if exists "{}" with (force)"#,
                    self.db_name
                )))
                .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for TestIntake {
    fn drop(&mut self) {
        // A test that panicked never called `shutdown`: at least stop the service's tasks.
        self.trigger.trigger();
    }
}

#[allow(clippy::too_many_arguments)]
pub fn rating_event(
    resident_id: &str,
    village: &str,
    grade: &str,
    line: &str,
    veto: bool,
    effective_from: &str,
    expires_on: &str,
    seq: u64,
) -> rating::CreditRatingEffective {
    rating::CreditRatingEffective {
        rating_id: uuid::Uuid::now_v7().to_string(),
        subject_kind: rating::SubjectKind::Household as i32,
        subject_id: resident_id.to_owned(),
        village_code: village.to_owned(),
        grade: grade.to_owned(),
        veto,
        credit_line: line.to_owned(),
        effective_from: effective_from.to_owned(),
        expires_on: expires_on.to_owned(),
        policy_version: "rating-2026.1".into(),
        sequence: seq,
    }
}

pub const HOUSEHOLD_KIND: i32 = rating::SubjectKind::Household as i32;
pub const ENTERPRISE_KIND: i32 = rating::SubjectKind::Enterprise as i32;

// ---- observing ----

/// One event read back from the stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(Some(&self.headers), name)
    }

    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(self.payload.as_slice()).expect("payload decodes as its ce-type")
    }
}

/// A consumer that reads `subject_filter` from the start of the stream and leaves no trace.
async fn ephemeral_consumer(bus: &EventBus, subject_filter: &str) -> PullConsumer {
    bus.js
        .get_stream(&bus.stream)
        .await
        .expect("stream")
        .create_consumer(pull::Config {
            filter_subject: subject_filter.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("ephemeral consumer")
}

async fn next_events(
    messages: &mut pull::Stream,
    subject_filter: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(timeout, messages.next()).await {
            Ok(Some(Ok(m))) => out.push(Event {
                subject: m.subject.to_string(),
                headers: m.headers.clone().unwrap_or_default(),
                payload: m.payload.to_vec(),
            }),
            Ok(Some(Err(e))) => panic!("reading {subject_filter}: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// Reads up to `n` messages matching `subject_filter` (wildcards allowed) from the start of the
/// stream with an ephemeral consumer; stops at `n` or when no message arrives within `timeout`.
pub async fn read_events(
    bus: &EventBus,
    subject_filter: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Event> {
    let consumer = ephemeral_consumer(bus, subject_filter).await;
    let mut messages = consumer.messages().await.expect("messages");
    next_events(&mut messages, subject_filter, n, timeout).await
}

/// Every message on the stream matching `subject_filter` right now (the stream's own count of
/// matching messages, then exactly that many read).
pub async fn all_events(bus: &EventBus, subject_filter: &str) -> Vec<Event> {
    let consumer = ephemeral_consumer(bus, subject_filter).await;
    let pending = consumer
        .get_info()
        .await
        .expect("consumer info")
        .num_pending as usize;
    if pending == 0 {
        return Vec::new();
    }
    let mut messages = consumer.messages().await.expect("messages");
    let out = next_events(
        &mut messages,
        subject_filter,
        pending,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        out.len(),
        pending,
        "read every pending {subject_filter} message"
    );
    out
}

/// Asserts the CloudEvents NATS-binding headers intake puts on its events.
pub fn assert_cloudevent(e: &Event, full_name: &str, about: &str) {
    assert_eq!(e.header(headers::CE_SPECVERSION), Some("1.0"), "{e:?}");
    assert_eq!(e.header(headers::CE_TYPE), Some(full_name));
    assert_eq!(e.header(headers::CE_SOURCE), Some("/fupin/intake"));
    assert_eq!(e.header(headers::CE_SUBJECT), Some(about));
    assert_eq!(
        e.header(headers::CONTENT_TYPE),
        Some(headers::PROTOBUF_CONTENT_TYPE)
    );
    // The NATS binding's binary mode: the data's media type as an attribute header.
    assert_eq!(
        e.header(headers::CE_DATACONTENTTYPE),
        Some(headers::PROTOBUF_CONTENT_TYPE)
    );
    let id = e.header(headers::CE_ID).expect("ce-id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "ce-id {id} is a uuid");
    assert_eq!(
        e.header(headers::NATS_MSG_ID),
        Some(id),
        "Nats-Msg-Id = ce-id"
    );
    let time = e.header(headers::CE_TIME).expect("ce-time");
    assert!(
        DateTime::parse_from_rfc3339(time).is_ok(),
        "ce-time {time} is RFC 3339"
    );
}

/// Polls `probe` every 50 ms until it is true, failing the test after 10 s.
pub async fn wait_until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if probe().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 10 s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

pub async fn count_where(pool: &PgPool, sql: &'static str, binds: &[&str]) -> i64 {
    let mut q = sqlx::query_scalar(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_one(pool).await.expect(sql)
}

/// Runs a test body with a time bound, so a hung service fails the test instead of the run.
pub async fn bounded<F: Future<Output = ()>>(secs: u64, body: F) {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .unwrap_or_else(|_| panic!("test took longer than {secs} s"));
}

// ---- identities and requests ----

pub fn instant(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .to_utc()
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("YYYY-MM-DD")
}

/// A valid resident ID of district 410311 born on `birth` (YYYYMMDD), sequence `n` (0..999).
pub fn resident_id_born(birth: &str, n: u32) -> String {
    let body = format!("{DISTRICT}{birth}{n:03}");
    let check = ResidentId::check_char_for(&body).expect("17-digit body");
    format!("{body}{check}")
}

/// A valid resident ID of someone born 1980-05-01 (45 in 2025), sequence `n`.
pub fn resident_id(n: u32) -> String {
    resident_id_born("19800501", n)
}

/// `410311********XXXX`: what staff see (R-CR-11).
pub fn masked(id: &str) -> String {
    format!("{}********{}", &id[..6], &id[14..])
}

/// A valid unified social credit code registered in 410311 (`9` + type + division + 9 chars).
pub fn uscc(kind_digit: char, n: u32) -> String {
    let body = format!("9{kind_digit}{DISTRICT}MA{n:07}");
    let check = Uscc::check_char_for(&body).expect("17-char body");
    format!("{body}{check}")
}

pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn money(s: &str) -> Option<Money> {
    Some(Money { amount: s.into() })
}

pub fn household_request(
    resident: &str,
    village: &str,
    amount: &str,
) -> pb::SubmitApplicationRequest {
    pb::SubmitApplicationRequest {
        request_id: rid(),
        applicant: Some(pb::submit_application_request::Applicant::Household(
            pb::Household {
                resident_id: resident.to_owned(),
                name: "王建国".into(),
                phone: "13800138000".into(),
                village_code: village.to_owned(),
                poor_household_number: "LL-2016-000123".into(),
                household_borrows_uses_repays: true,
            },
        )),
        kind: pb::ApplicantKind::Household as i32,
        amount: money(amount),
        term_months: 12,
        purpose: pb::Purpose::Planting as i32,
        project_description: "peony seedlings, 3 mu".into(),
    }
}

pub fn enterprise_request(code: &str, area: &str, amount: &str) -> pb::SubmitApplicationRequest {
    pb::SubmitApplicationRequest {
        request_id: rid(),
        applicant: Some(pb::submit_application_request::Applicant::Enterprise(
            pb::Enterprise {
                uscc: code.to_owned(),
                name: "洛龙区牡丹种植合作社".into(),
                area_code: area.to_owned(),
                legal_representative: "李明".into(),
            },
        )),
        kind: pb::ApplicantKind::Cooperative as i32,
        amount: money(amount),
        term_months: 24,
        purpose: pb::Purpose::Processing as i32,
        project_description: "peony oil pressing line".into(),
    }
}

// ---- status assertions ----

/// The error of a call that must fail.
pub fn err<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>) -> Status {
    match r {
        Ok(v) => panic!("expected an error, got {:?}", v.into_inner()),
        Err(s) => s,
    }
}

/// `InvalidArgument` naming `field` and `rule` (R-X-3).
pub fn assert_invalid(s: &Status, field: &str, rule: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with(&format!("{field}:")),
        "message names the field {field}: {:?}",
        s.message()
    );
    assert!(
        s.message().contains(&format!("[{rule}]")),
        "message names the rule {rule}: {:?}",
        s.message()
    );
}

/// `FailedPrecondition` listing exactly these rules (each at least once, no other).
pub fn assert_refused(s: &Status, rules: &[&str]) {
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    for r in rules {
        assert!(
            s.message().contains(&format!("[{r}]")),
            "refusal lists {r}: {:?}",
            s.message()
        );
    }
    let listed: Vec<&str> = s
        .message()
        .split('[')
        .skip(1)
        .filter_map(|p| p.split(']').next())
        .collect();
    for l in &listed {
        assert!(
            rules.contains(l),
            "refusal lists only {rules:?}, but also {l}: {:?}",
            s.message()
        );
    }
}

// ---- workflow drivers ----

pub async fn submit(c: &mut Client, req: pb::SubmitApplicationRequest) -> pb::Application {
    c.submit_application(req)
        .await
        .unwrap_or_else(|s| panic!("submit: {s:?}"))
        .into_inner()
}

pub fn review_req(id: &str, decision: pb::Decision, reason: &str) -> pb::ReviewApplicationRequest {
    pb::ReviewApplicationRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        decision: decision as i32,
        reason: reason.to_owned(),
        expected_version: 0,
    }
}

pub async fn review(
    c: &mut Client,
    id: &str,
    decision: pb::Decision,
    reason: &str,
) -> pb::Application {
    c.review_application(review_req(id, decision, reason))
        .await
        .unwrap_or_else(|s| panic!("review {decision:?}: {s:?}"))
        .into_inner()
}

impl TestIntake {
    /// A credit household's application, submitted by its village department.
    pub async fn submit_household(
        &self,
        resident: &str,
        village: &str,
        amount: &str,
    ) -> pb::Application {
        submit(
            &mut self.as_village_staff(village),
            household_request(resident, village, amount),
        )
        .await
    }

    /// Village, town and district approve: the application enters public notice.
    pub async fn approve_to_notice(&self, app: &pb::Application) -> pb::Application {
        let id = &app.id;
        review(
            &mut self.as_village_staff(&app.village_code),
            id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut self.as_town_staff(&app.town_code),
            id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let a = review(&mut self.as_district_staff(), id, pb::Decision::Approve, "").await;
        assert_eq!(a.status(), pb::Status::PublicNotice);
        a
    }

    pub async fn recommend(&self, id: &str, bank: &str) -> Result<pb::Application, Status> {
        self.as_district_staff()
            .recommend_to_bank(pb::RecommendToBankRequest {
                request_id: rid(),
                application_id: id.to_owned(),
                bank_id: bank.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn get_as(&self, c: &mut Client, id: &str) -> Result<pb::Application, Status> {
        c.get_application(pb::GetApplicationRequest { id: id.to_owned() })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The objections filed against application `id` (R-IN-5), as the district lists them:
    /// one page of the most a page holds, which is every objection a test files.
    pub async fn objections(&self, id: &str) -> Vec<pb::Objection> {
        self.as_district_staff()
            .list_objections(pb::ListObjectionsRequest {
                application_id: id.to_owned(),
                page: Some(PageRequest {
                    page_size: 200,
                    page_token: String::new(),
                }),
            })
            .await
            .unwrap_or_else(|s| panic!("objections of {id}: {s:?}"))
            .into_inner()
            .objections
    }
}

// ---- request builders shared by the test files ----

/// The household applicant of a submission, to change one field.
pub fn household(r: &mut pb::SubmitApplicationRequest) -> &mut pb::Household {
    match r.applicant.as_mut() {
        Some(pb::submit_application_request::Applicant::Household(h)) => h,
        _ => unreachable!("a household request"),
    }
}

pub fn approve_req(id: &str, amount: &str, rate: &str, term: u32) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        approved: true,
        approved_amount: money(amount),
        annual_rate: rate.to_owned(),
        term_months: term,
        rejection_reason: String::new(),
    }
}

pub fn resolve_req(objection: &str, upheld: bool, resolution: &str) -> pb::ResolveObjectionRequest {
    pb::ResolveObjectionRequest {
        request_id: rid(),
        objection_id: objection.to_owned(),
        upheld,
        resolution: resolution.to_owned(),
    }
}

/// Lodges a complaint about `area` (R-IN-7) as `c`, which must succeed.
pub async fn lodge(c: &mut Client, area: &str, content: &str) -> pb::Complaint {
    c.lodge_complaint(lodge_req(area, content))
        .await
        .unwrap_or_else(|s| panic!("lodge: {s:?}"))
        .into_inner()
}

pub fn lodge_req(area: &str, content: &str) -> pb::LodgeComplaintRequest {
    pb::LodgeComplaintRequest {
        request_id: rid(),
        complainant: "村民 钱某".into(),
        content: content.to_owned(),
        area_code: area.to_owned(),
        application_id: String::new(),
    }
}

pub fn assign_req(id: &str, org: &str) -> pb::AssignComplaintRequest {
    pb::AssignComplaintRequest {
        request_id: rid(),
        complaint_id: id.to_owned(),
        organisation_area_code: org.to_owned(),
    }
}

pub fn answer_req(id: &str, answer: &str) -> pb::AnswerComplaintRequest {
    pb::AnswerComplaintRequest {
        request_id: rid(),
        complaint_id: id.to_owned(),
        answer: answer.to_owned(),
    }
}

/// Runs the deadline scan now, as an operator (R-IN-4, R-IN-7).
pub async fn scan(t: &TestIntake) -> pb::RunDeadlineScanResponse {
    t.as_operator()
        .run_deadline_scan(pb::RunDeadlineScanRequest { request_id: rid() })
        .await
        .expect("deadline scan")
        .into_inner()
}

// ---- household submissions as admission sees them (R-IN-3) ----

/// A household application filed by its village department; Ok = admitted and stored.
pub async fn try_household(
    t: &TestIntake,
    resident: &str,
    village: &str,
    amount: &str,
) -> Result<pb::Application, Status> {
    t.as_village_staff(village)
        .submit_application(household_request(resident, village, amount))
        .await
        .map(tonic::Response::into_inner)
}

/// [`try_household`] is admitted; `what` names the case.
pub async fn admitted(t: &TestIntake, resident: &str, village: &str, amount: &str, what: &str) {
    let r = try_household(t, resident, village, amount).await;
    assert!(r.is_ok(), "{what}: {amount} in {village} admitted: {r:?}");
}

/// [`try_household`] is refused naming exactly `rules`; `what` names the case.
pub async fn refused(
    t: &TestIntake,
    resident: &str,
    village: &str,
    amount: &str,
    rules: &[&str],
    what: &str,
) -> Status {
    let s = try_household(t, resident, village, amount)
        .await
        .expect_err(what);
    assert_refused(&s, rules);
    s
}

/// Industry's `EnterpriseQualificationChanged` as the industry service publishes it, with no
/// registered area.
fn enterprise_qualification(
    uscc: &str,
    qualified: bool,
    from: &str,
    seq: u64,
) -> industry::EnterpriseQualificationChanged {
    industry::EnterpriseQualificationChanged {
        uscc: uscc.to_owned(),
        name: "洛龙区牡丹种植合作社".into(),
        qualified,
        reason: if qualified {
            "evaluation: strong driving capacity"
        } else {
            "agreement not honoured after rectification deadline"
        }
        .into(),
        effective_from: from.into(),
        sequence: seq,
        area_code: String::new(),
    }
}
