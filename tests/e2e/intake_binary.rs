//! The foundation's promise, end to end: the binary starts, migrates, answers health and
//! reflection, stores a submitted application, announces it on JetStream with CloudEvents
//! headers (R-X-2), lets an operator move its clock only in test mode, and exits cleanly on
//! SIGTERM.

use std::time::{Duration, Instant};

use fupin_e2e::{RunningService, authed, binary, household_submission};
use fupin_kernel::ResidentId;
use fupin_platform::testing::{admin_database_url, set_connections_allowed};
use fupin_platform::{Role, events::EventBus};
use fupin_proto::{
    admin::v1::{
        GetTimeRequest, SetTimeRequest, test_clock_service_client::TestClockServiceClient,
    },
    intake::v1::{self as pb, intake_service_client::IntakeServiceClient},
    rating::v1 as rating,
};
use futures::StreamExt;
use prost::{Message, Name};
use sqlx::Connection;
use tokio_stream::wrappers::ReceiverStream;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const VILLAGE: &str = "410311100201";

fn resident_id() -> String {
    let body = "41031119800501123";
    format!("{body}{}", ResidentId::check_char_for(body).unwrap())
}

async fn publish_rating(bus: &EventBus, id: &str) -> anyhow::Result<()> {
    // The service runs on the test clock, from TEST_CLOCK_START.
    let today = fupin_e2e::test_clock_day();
    let ev = rating::CreditRatingEffective {
        rating_id: "e2e-1".into(),
        subject_kind: rating::SubjectKind::Household as i32,
        subject_id: id.into(),
        village_code: VILLAGE.into(),
        grade: "AA".into(),
        veto: false,
        credit_line: "30000.00".into(),
        effective_from: (today - chrono::Days::new(1)).to_string(),
        expires_on: (today + chrono::Days::new(300)).to_string(),
        policy_version: "e2e".into(),
        sequence: 1,
    };
    bus.publish_now(&ev, Some(id), None).await?;
    Ok(())
}

async fn reflection_services(svc: &RunningService) -> anyhow::Result<Vec<String>> {
    let mut client = ServerReflectionClient::new(svc.channel().await?);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    })
    .await?;
    drop(tx);
    let mut resp = client
        .server_reflection_info(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut names = Vec::new();
    while let Some(r) = resp.next().await {
        if let Some(MessageResponse::ListServicesResponse(l)) = r?.message_response {
            names.extend(l.service.into_iter().map(|s| s.name));
        }
    }
    Ok(names)
}

fn submit_request(id: &str, attempt: u32) -> pb::SubmitApplicationRequest {
    household_submission(&format!("e2e-submit-{attempt}"), id, VILLAGE)
}

/// Submits household `id`'s application once its rating has reached the read model.
/// Admission reads intake's read model, fed asynchronously by the rating event (R-IN-3).
/// Until it has arrived the household is refused, and a refusal stays with its request id
/// (R-IN-8): each attempt has its own.
async fn submit_once_rated(
    intake: &mut IntakeServiceClient<tonic::transport::Channel>,
    id: &str,
) -> anyhow::Result<pb::Application> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match intake
            .submit_application(authed(
                submit_request(id, attempt),
                Role::VillageStaff,
                VILLAGE,
                None,
            ))
            .await
        {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if s.code() == tonic::Code::FailedPrecondition && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => anyhow::bail!("submit failed: {s:?}"),
        }
    }
}

/// The household [`resident_id`] rated through the credit service's event on `svc`'s stream,
/// then its application submitted: the bus, the client and the application.
async fn rated_and_submitted(
    svc: &RunningService,
) -> anyhow::Result<(
    EventBus,
    IntakeServiceClient<tonic::transport::Channel>,
    pb::Application,
)> {
    let bus = EventBus::connect(
        &fupin_platform::testing::nats_url(),
        &svc.prefix,
        &svc.stream,
        "/e2e",
    )
    .await?;
    let id = resident_id();
    publish_rating(&bus, &id).await?;
    let mut intake = IntakeServiceClient::new(svc.channel().await?);
    let app = submit_once_rated(&mut intake, &id).await?;
    Ok((bus, intake, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_application_is_stored_announced_and_the_binary_stops_cleanly()
-> anyhow::Result<()> {
    let svc = RunningService::start("fupin-intake", true).await?;
    let services = reflection_services(&svc).await?;
    for expected in [
        "fupin.intake.v1.IntakeService",
        "grpc.health.v1.Health",
        "fupin.admin.v1.TestClockService",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "reflection lists {expected}: {services:?}"
        );
    }

    let (bus, mut intake, app) = rated_and_submitted(&svc).await?;
    let id = resident_id();
    assert_eq!(app.status, pb::Status::VillageReview as i32);
    assert_eq!(
        app.applicant_id,
        format!("410311********{}", &id[14..]),
        "R-CR-11 masked for staff"
    );

    let got = intake
        .get_application(authed(
            pb::GetApplicationRequest { id: app.id.clone() },
            Role::TownStaff,
            "410311100",
            None,
        ))
        .await?
        .into_inner();
    assert_eq!(got.id, app.id);
    assert_eq!(got.amount.unwrap().amount, "30000.00");

    // R-X-1: it ran as production runs it, migrated and wrote as its database's owner, no
    // superuser that could reach other services' databases (deploy/postgres/service-databases.sh).
    let mut admin = sqlx::PgConnection::connect(&admin_database_url()).await?;
    let (sessions, superusers): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where r.rolsuper or r.rolname <> d.datname)
         from pg_stat_activity a join pg_roles r on r.oid = a.usesysid
         join pg_database d on d.oid = a.datid where d.datname = $1",
    )
    .bind(svc.database())
    .fetch_one(&mut admin)
    .await?;
    admin.close().await?;
    assert!(sessions > 0, "intake holds connections to its database");
    assert_eq!(
        superusers, 0,
        "every session is the owning role's, none a superuser's"
    );

    // A plain JetStream subscriber sees the event with its CloudEvents headers.
    let stream = bus.js.get_stream(&svc.stream).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: bus.subject_for(&pb::ApplicationSubmitted::full_name()),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
    let h = msg.headers.clone().expect("CloudEvents headers");
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned()).unwrap_or_default();
    assert_eq!(get("ce-specversion"), "1.0");
    assert_eq!(get("ce-type"), "fupin.intake.v1.ApplicationSubmitted");
    assert_eq!(get("ce-source"), "/fupin/intake");
    assert_eq!(get("ce-subject"), app.id);
    assert_eq!(get("content-type"), "application/protobuf");
    assert!(!get("ce-time").is_empty());
    assert_eq!(get("ce-id"), get("Nats-Msg-Id"));
    let ev = pb::ApplicationSubmitted::decode(msg.payload.as_ref())?;
    assert_eq!(ev.application_id, app.id);
    assert_eq!(ev.amount, "30000.00");

    // Test clock: an operator may move it (test mode is on), staff may not.
    let mut clock = TestClockServiceClient::new(svc.channel().await?);
    let denied = clock
        .set_time(authed(
            SetTimeRequest {
                now: "2026-01-05T09:00:00+08:00".into(),
            },
            Role::DistrictStaff,
            "410311",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    clock
        .set_time(authed(
            SetTimeRequest {
                now: "2026-01-05T09:00:00+08:00".into(),
            },
            Role::Operator,
            "410311",
            None,
        ))
        .await?;
    let t = clock
        .get_time(authed(GetTimeRequest {}, Role::Operator, "410311", None))
        .await?
        .into_inner();
    assert!(
        t.now.starts_with("2026-01-05T01:0"),
        "moved clock reads {}",
        t.now
    );

    let exit = svc.terminate(Duration::from_secs(15)).await?;
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_clock_is_refused_unless_enabled() -> anyhow::Result<()> {
    let svc = RunningService::start("fupin-intake", false).await?;
    let mut clock = TestClockServiceClient::new(svc.channel().await?);
    let err = clock
        .set_time(authed(
            SetTimeRequest {
                now: "2030-01-01T00:00:00Z".into(),
            },
            Role::Operator,
            "410311",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let exit = svc.terminate(Duration::from_secs(15)).await?;
    assert!(exit.success());
    Ok(())
}

/// R-CR-11, ARCHITECTURE Auth: without its secrets the binary refuses to start, naming the
/// first one missing, instead of signing tokens and sealing personal data with the development
/// keys published in the source; `FUPIN_DEV=1` is needed for those. A short `AUTH_JWT_SECRET` is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_start_without_its_secrets() -> anyhow::Result<()> {
    let bin = binary("fupin-intake").await?;
    let start = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        // Nothing it would reach before the secrets: a refused start never gets that far.
        cmd.env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("NATS_URL", "nats://127.0.0.1:1")
            .env("GRPC_ADDR", "127.0.0.1:0");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output()
    };
    let refused = |out: std::process::Output, says: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started: {stderr}");
        assert!(stderr.contains(says), "{says:?} not in {stderr}");
    };
    refused(start(&[])?, "AUTH_JWT_SECRET is not set");
    refused(
        start(&[("AUTH_JWT_SECRET", "too-short")])?,
        "at least 32 bytes",
    );
    let secret = "a-secret-of-at-least-thirty-two-bytes!!";
    refused(
        start(&[("AUTH_JWT_SECRET", secret)])?,
        "PII_KEYS and PII_INDEX_KEY are not set",
    );
    refused(start(&[("FUPIN_DEV", "yes")])?, "FUPIN_DEV must be");
    // A clock that starts elsewhere is for tests only, and must say when.
    let dev = [("FUPIN_DEV", "1")];
    refused(
        start(&[
            dev[0],
            ("FUPIN_TEST_CLOCK_START", "2026-11-30T10:00:00+08:00"),
        ])?,
        "FUPIN_TEST_CLOCK_START needs FUPIN_TEST_CLOCK=1",
    );
    refused(
        start(&[
            dev[0],
            ("FUPIN_TEST_CLOCK", "1"),
            ("FUPIN_TEST_CLOCK_START", "2026-11-30"),
        ])?,
        "is not an RFC 3339 instant",
    );
    // Past the settings, a database out of reach is named by its setting, without the user.
    refused(
        start(&dev)?,
        "PostgreSQL at DATABASE_URL postgres://127.0.0.1:1/none",
    );
    Ok(())
}

/// A gRPC port that cannot serve (a TLS certificate with another certificate's key) stops the
/// start with the reason and the variables, with the other settings, instead of leaving the
/// process running with its port closed and nothing said until someone signals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_serve_stops_the_process() -> anyhow::Result<()> {
    let mut svc = RunningService::start("fupin-intake", false).await?;
    svc.stop(Duration::from_secs(30)).await?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/platform/tests/tls");
    let file = |name: &str| dir.join(name).display().to_string();
    let (status, stderr) = svc
        .restart_failing(
            &[
                ("GRPC_TLS_CERT", &file("server.pem")),
                ("GRPC_TLS_KEY", &file("client.key")),
            ],
            Duration::from_secs(60),
        )
        .await?;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("GRPC_TLS_CERT") && stderr.contains("GRPC_TLS_KEY"),
        "names the variables: {stderr}"
    );
    // Refused with the settings, before the database is touched or the port bound.
    assert!(!stderr.contains("intake listening"), "{stderr}");
    // Exited already: this only drops its database.
    svc.terminate_after_signal(Duration::from_secs(5)).await?;
    Ok(())
}

/// R-CR-11: a start with another blind-index key than the one the database was used with
/// (a regenerated `.env`) is refused naming `PII_INDEX_KEY`, before it serves: every lookup
/// by resident ID, blacklist entries included, would miss. Other material under a key id
/// already used is refused naming `PII_KEYS`. With the keys restored it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_did_not_write_the_database_stop_the_start() -> anyhow::Result<()> {
    let mut svc = RunningService::start("fupin-intake", false).await?;
    svc.stop(Duration::from_secs(30)).await?;
    let other = "YW5vdGhlci1pbmRleC1rZXktZm9yLXRoZS10ZXN0cy0=";
    for (envs, says) in [
        (
            [
                ("PII_KEYS", fupin_platform::pii::DEV_PII_KEYS.to_owned()),
                ("PII_INDEX_KEY", other.to_owned()),
            ],
            "PII_INDEX_KEY is not the key",
        ),
        (
            [
                ("PII_KEYS", format!("dev:{other}")),
                (
                    "PII_INDEX_KEY",
                    fupin_platform::pii::DEV_PII_INDEX_KEY.to_owned(),
                ),
            ],
            "PII_KEYS: key \"dev\"",
        ),
        // The key that sealed, left out before a re-sealing pass moved its values.
        (
            [
                ("PII_KEYS", format!("k2:{other}")),
                (
                    "PII_INDEX_KEY",
                    fupin_platform::pii::DEV_PII_INDEX_KEY.to_owned(),
                ),
            ],
            "PII_KEYS: key \"dev\" has sealed values",
        ),
    ] {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, stderr) = svc.restart_failing(&envs, Duration::from_secs(60)).await?;
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains(says), "{says:?} not in {stderr}");
        assert!(!stderr.contains("intake listening"), "{stderr}");
    }
    // The rotation as README says: the new key first, the old one retiring; once a pass begun
    // well after the last replica sealed with the old key is done, the old key may go (that
    // replica's last beat is set back here, as if minutes had passed).
    let mut db = sqlx::PgConnection::connect(svc.database_url()).await?;
    sqlx::query("update pii_key_checks set last_current_at = now() - interval '10 minutes'")
        .execute(&mut db)
        .await?;
    let rotated = format!("k2:{other},{}", fupin_platform::pii::DEV_PII_KEYS);
    svc.restart_with(&[
        ("PII_KEYS", &rotated),
        ("PII_RETIRING_KEYS", "dev"),
        ("PII_INDEX_KEY", fupin_platform::pii::DEV_PII_INDEX_KEY),
    ])
    .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sqlx::query_scalar::<_, bool>(
        "select retired_at is not null from pii_key_checks where key_use = 'seal' and key_id = 'dev'",
    )
    .fetch_one(&mut db)
    .await?
    {
        anyhow::ensure!(Instant::now() < deadline, "no re-sealing pass finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    svc.stop(Duration::from_secs(30)).await?;
    let only_k2 = format!("k2:{other}");
    svc.restart_with(&[
        ("PII_KEYS", &only_k2),
        ("PII_INDEX_KEY", fupin_platform::pii::DEV_PII_INDEX_KEY),
    ])
    .await?;
    assert!(svc.terminate(Duration::from_secs(30)).await?.success());
    Ok(())
}

/// R-CR-11: a database written before the key check values (none recorded) has its keys
/// checked against what it holds before they are recorded: keys that open none of its newest
/// resident IDs, or an index key that does not give their stored blind index, stop the start
/// (a configuration regenerated at the upgrade would otherwise become the truth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_against_the_data_before_they_are_first_recorded() -> anyhow::Result<()> {
    let mut svc = RunningService::start("fupin-intake", false).await?;
    rated_and_submitted(&svc).await?;
    svc.stop(Duration::from_secs(30)).await?;
    let mut db = sqlx::PgConnection::connect(svc.database_url()).await?;
    sqlx::query("delete from pii_key_checks")
        .execute(&mut db)
        .await?;
    let other = "YW5vdGhlci1pbmRleC1rZXktZm9yLXRoZS10ZXN0cy0=";
    let dev_keys = fupin_platform::pii::DEV_PII_KEYS;
    let dev_index = fupin_platform::pii::DEV_PII_INDEX_KEY;
    let other_keys = format!("k2:{other}");
    for (keys, index, says) in [
        (other_keys.as_str(), dev_index, "PII_KEYS open none"),
        (dev_keys, other, "PII_INDEX_KEY does not give"),
    ] {
        let (status, stderr) = svc
            .restart_failing(
                &[("PII_KEYS", keys), ("PII_INDEX_KEY", index)],
                Duration::from_secs(60),
            )
            .await?;
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains(says), "{says:?} not in {stderr}");
    }
    let recorded: i64 = sqlx::query_scalar("select count(*) from pii_key_checks")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(recorded, 0, "a refused start records nothing");
    svc.restart().await?;
    assert!(svc.terminate(Duration::from_secs(30)).await?.success());
    Ok(())
}

/// R-X-2: a read-model consumer that NATS will not bring to one event at a time (made by hand
/// with a deliver policy the server cannot change and eight events in flight) stops the start,
/// naming it and what to do, instead of intake serving while it applies events out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_taking_several_events_at_a_time_stops_the_start() -> anyhow::Result<()> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let mut svc = RunningService::start("fupin-intake", false).await?;
    svc.stop(Duration::from_secs(30)).await?;
    let bus = EventBus::connect(
        &fupin_platform::testing::nats_url(),
        &svc.prefix,
        &svc.stream,
        "/fupin/e2e",
    )
    .await?;
    let stream = bus.js.get_stream(&svc.stream).await?;
    let name = "intake-readmodel-rating-v1";
    stream.delete_consumer(name).await?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: format!("{}.rating.v1.>", svc.prefix),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::New,
            max_ack_pending: 8,
            ..Default::default()
        })
        .await?;
    let (status, stderr) = svc.restart_failing(&[], Duration::from_secs(60)).await?;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("consumer {name}"))
            && stderr.contains("max_ack_pending 8 (needs 1)")
            && stderr.contains("delete the consumer"),
        "{stderr}"
    );
    bus.js.delete_stream(&svc.stream).await.ok();
    svc.terminate_after_signal(Duration::from_secs(5)).await?;
    Ok(())
}

/// `fupinctl` with `args`, its exit status and what it printed.
async fn fupinctl(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = tokio::process::Command::new(binary("fupinctl").await?)
        .args(args)
        .env_remove("FUPIN_TLS_CA")
        .env_remove("FUPIN_TLS_CERT")
        .env_remove("FUPIN_TLS_KEY")
        .env_remove("FUPIN_TLS_DOMAIN")
        .output()
        .await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    ))
}

/// Operations: the container's health check (`fupinctl health`) follows the database. While
/// intake's PostgreSQL refuses connections it reports NOT_SERVING and exits 1, so compose marks
/// the container unhealthy; once the database answers again it is SERVING and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_follows_the_database() -> anyhow::Result<()> {
    let svc =
        RunningService::start_with("fupin-intake", false, &[("HEALTH_CHECK_SECONDS", "2")]).await?;
    let args = ["--intake", svc.endpoint.as_str(), "health"];
    let check = || fupinctl(&args);
    assert_eq!(check().await?, (true, "SERVING".to_owned(), String::new()));

    set_connections_allowed(svc.database(), false).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, _, stderr) = check().await?;
        if !ok {
            assert!(stderr.contains("NOT_SERVING"), "{stderr}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still SERVING without its database"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    set_connections_allowed(svc.database(), true).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await?.0 {
        assert!(Instant::now() < deadline, "not SERVING again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exit = svc.terminate(Duration::from_secs(15)).await?;
    assert!(exit.success());
    Ok(())
}

/// Operations, with TLS: intake requires client certificates (mutual TLS); the health check
/// dials 127.0.0.1 expecting the certificate's name (`--tls-domain`), as compose's healthcheck
/// does inside the container, and is refused without a client certificate. Empty TLS
/// variables, as compose passes them when TLS is off, count as unset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_speaks_mutual_tls() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/platform/tests/tls");
    let file = |name: &str| dir.join(name).display().to_string();
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let read = |path: &str| std::fs::read(path);
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(&ca)?))
        .identity(tonic::transport::Identity::from_pem(
            read(&cert)?,
            read(&key)?,
        ));
    let svc = RunningService::start_tls(
        "fupin-intake",
        &[
            ("GRPC_TLS_CERT", &file("server.pem")),
            ("GRPC_TLS_KEY", &file("server.key")),
            ("GRPC_TLS_CLIENT_CA", &ca),
        ],
        tls,
    )
    .await?;
    let port = svc
        .endpoint
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let by_ip = format!("https://127.0.0.1:{port}");
    let client = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-domain",
        "localhost",
    ];
    let mut args = vec!["--intake", by_ip.as_str()];
    args.extend(client);
    args.push("health");
    assert_eq!(
        fupinctl(&args).await?,
        (true, "SERVING".to_owned(), String::new())
    );

    let (ok, _, stderr) = fupinctl(&[
        "--intake",
        &by_ip,
        "--tls-ca",
        &ca,
        "--tls-domain",
        "localhost",
        "health",
    ])
    .await?;
    assert!(!ok, "no client certificate, yet: {stderr}");
    // What happened beneath the status is said: the server's alert, or (TLS 1.3 sends it after
    // the client's side of the handshake, racing the client's first request) what became of
    // the connection the server closed ("connection closed", "connection error: ... broken
    // pipe"); not only "transport error" or "operation was canceled".
    assert!(stderr.contains("connection"), "{stderr}");

    // Plaintext with TLS variables set but empty: as if unset.
    let plain = RunningService::start("fupin-intake", false).await?;
    let out = tokio::process::Command::new(binary("fupinctl").await?)
        .args(["--intake", &plain.endpoint, "health"])
        .env("FUPIN_TLS_CA", "")
        .env("FUPIN_TLS_CERT", "")
        .env("FUPIN_TLS_KEY", "")
        .env("FUPIN_TLS_DOMAIN", "")
        .output()
        .await?;
    assert!(out.status.success(), "{out:?}");
    assert!(plain.terminate(Duration::from_secs(15)).await?.success());
    assert!(svc.terminate(Duration::from_secs(15)).await?.success());
    Ok(())
}

/// Mutual TLS binds a bank token to its bank: over a connection whose client certificate names
/// the bank (subject common name or DNS alternative name) the bank's core lists what was
/// recommended to it; over one whose certificate names no bank, or another, its token is
/// `UNAUTHENTICATED`, saying so. Staff tokens are not bound to their certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_takes_a_bank_token_only_with_its_banks_certificate() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/platform/tests/tls");
    let read = |name: &str| std::fs::read(dir.join(name));
    let tls = |who: &str| -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        Ok(tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read("ca.pem")?))
            .identity(tonic::transport::Identity::from_pem(
                read(&format!("{who}.pem"))?,
                read(&format!("{who}.key"))?,
            ))
            .domain_name("localhost"))
    };
    let file = |name: &str| dir.join(name).display().to_string();
    let svc = RunningService::start_tls(
        "fupin-intake",
        &[
            ("GRPC_TLS_CERT", &file("server.pem")),
            ("GRPC_TLS_KEY", &file("server.key")),
            ("GRPC_TLS_CLIENT_CA", &file("ca.pem")),
        ],
        tls("client")?,
    )
    .await?;
    let over = |who: &str| {
        let config = tls(who);
        let endpoint = svc.endpoint.clone();
        async move {
            let channel = tonic::transport::Channel::from_shared(endpoint)?
                .tls_config(config?)?
                .connect()
                .await?;
            anyhow::Ok(IntakeServiceClient::new(channel))
        }
    };
    // One token throughout: accepted (and remembered as verified) over the bank's
    // certificates, it is still refused over another.
    let token = fupin_platform::auth::token_for(
        fupin_e2e::SECRET,
        "abc-core-1",
        Role::Bank,
        "410311",
        Some("abc-luolong-xinqu"),
        600,
    );
    let list = || {
        let mut req = tonic::Request::new(pb::ListRecommendedApplicationsRequest::default());
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII token"),
        );
        req
    };
    for who in ["bank", "bank-san"] {
        let page = over(who).await?.list_recommended_applications(list()).await;
        assert!(page.is_ok(), "{who}: {page:?}");
    }
    let refused = over("client")
        .await?
        .list_recommended_applications(list())
        .await
        .expect_err("a bank token over a certificate naming no bank");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("client certificate names \"fupin test client\", not that bank"),
        "{}",
        refused.message()
    );
    let staff = over("client")
        .await?
        .list_applications(authed(
            pb::ListApplicationsRequest::default(),
            Role::DistrictStaff,
            "410311",
            None,
        ))
        .await;
    assert!(staff.is_ok(), "{staff:?}");
    assert!(svc.terminate(Duration::from_secs(15)).await?.success());
    Ok(())
}

/// ARCHITECTURE Auth: a deployment whose tokens come from an issuer holding the private key
/// gives intake only the public key (`AUTH_JWT_PUBLIC_KEY_FILE`, no `AUTH_JWT_SECRET`) and the
/// issuer and audience to expect. Tokens signed with the private key for this audience (here
/// by `fupinctl --signing-key`) are accepted; the issuer's tokens for another audience are
/// refused, and so are HS256 tokens, with any secret and even the development one under
/// `FUPIN_DEV=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_with_the_issuers_public_key() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/platform/tests/jwt");
    let file = |name: &str| dir.join(name).display().to_string();
    let svc = RunningService::start_with(
        "fupin-intake",
        false,
        &[
            // Empty is unset: no shared secret at all.
            ("AUTH_JWT_SECRET", ""),
            ("AUTH_JWT_PUBLIC_KEY_FILE", &file("ed25519.pub")),
            ("AUTH_JWT_ISSUER", "idp.luolong"),
            ("AUTH_JWT_AUDIENCE", "fupin"),
        ],
    )
    .await?;
    let key = file("ed25519.key");
    let token_for = |audience: &'static str| {
        let key = key.clone();
        async move {
            let (ok, token, stderr) = fupinctl(&[
                "--signing-key",
                &key,
                "--token-issuer",
                "idp.luolong",
                "--token-audience",
                audience,
                "token",
                "--role",
                "district_staff",
                "--area",
                "410311",
            ])
            .await?;
            anyhow::ensure!(ok, "{stderr}");
            anyhow::Ok(token)
        }
    };
    let mut client = IntakeServiceClient::new(svc.channel().await?);
    let bearer = |token: &str| -> anyhow::Result<tonic::Request<pb::ListApplicationsRequest>> {
        let mut req = tonic::Request::new(pb::ListApplicationsRequest::default());
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        Ok(req)
    };
    client
        .list_applications(bearer(&token_for("fupin").await?)?)
        .await?;
    let elsewhere = client
        .list_applications(bearer(&token_for("another-system").await?)?)
        .await
        .unwrap_err();
    assert_eq!(
        elsewhere.code(),
        tonic::Code::Unauthenticated,
        "{elsewhere:?}"
    );

    let hs256 = client
        .list_applications(authed(
            pb::ListApplicationsRequest::default(),
            Role::DistrictStaff,
            "410311",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(hs256.code(), tonic::Code::Unauthenticated, "{hs256:?}");
    let dev = fupin_platform::auth::token_for(
        fupin_platform::config::DEV_JWT_SECRET,
        "x",
        Role::DistrictStaff,
        "410311",
        None,
        60,
    );
    let e = client.list_applications(bearer(&dev)?).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(svc.terminate(Duration::from_secs(15)).await?.success());
    Ok(())
}

/// Operations: with `SHUTDOWN_DRAIN_SECONDS`, a stop asked for (SIGTERM) first reports
/// NOT_SERVING while calls are still answered, so load balancers move away before the port
/// closes; then the binary stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_reports_not_serving_while_still_serving_for_the_drain() -> anyhow::Result<()> {
    let svc = RunningService::start_with("fupin-intake", false, &[("SHUTDOWN_DRAIN_SECONDS", "3")])
        .await?;
    let mut client = IntakeServiceClient::new(svc.channel().await?);
    let list = || {
        authed(
            pb::ListApplicationsRequest::default(),
            Role::DistrictStaff,
            "410311",
            None,
        )
    };
    client.list_applications(list()).await?;
    let asked = Instant::now();
    svc.sigterm().await?;
    wait_not_serving(&svc).await?;
    // Still answering calls during the drain (a call that succeeds now ran inside it: the
    // port closes when it ends).
    client.list_applications(list()).await?;
    let exit = svc.terminate_after_signal(Duration::from_secs(20)).await?;
    assert!(exit.success());
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "not before the drain ended"
    );
    Ok(())
}

/// Operations (another replica that hangs holding a row lock): a call waiting for the lock
/// gives up after the pool's `lock_timeout` with `UNAVAILABLE`, changing nothing, instead of
/// holding a pooled connection for as long as the other holder hangs (40 such calls emptied a
/// replica's pool); once the lock is gone the same request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_for_a_lock_held_elsewhere_a_bounded_time() -> anyhow::Result<()> {
    let svc = RunningService::start("fupin-intake", false).await?;
    let (_, mut intake, app) = rated_and_submitted(&svc).await?;

    let mut holder = sqlx::PgConnection::connect(svc.database_url()).await?;
    sqlx::query("begin").execute(&mut holder).await?;
    sqlx::query("select 1 from applications where id = $1::uuid for update")
        .bind(&app.id)
        .execute(&mut holder)
        .await?;
    let review = || {
        let mut req = authed(
            pb::ReviewApplicationRequest {
                request_id: "e2e-review-1".into(),
                application_id: app.id.clone(),
                decision: pb::Decision::Approve as i32,
                ..Default::default()
            },
            Role::VillageStaff,
            VILLAGE,
            None,
        );
        req.set_timeout(Duration::from_secs(40));
        req
    };
    let asked = Instant::now();
    let e = intake
        .review_application(review())
        .await
        .expect_err("the row is locked");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "gave up after the lock timeout: {waited:?}"
    );
    sqlx::query("rollback").execute(&mut holder).await?;
    let moved = intake.review_application(review()).await?.into_inner();
    assert_eq!(moved.status, pb::Status::TownReview as i32);
    assert!(svc.terminate(Duration::from_secs(30)).await?.success());
    Ok(())
}

/// Operations: NATS away when intake starts (a replica restarted during a NATS outage) does
/// not stop it: it serves (health SERVING; a household without a rating is refused R-CR-3, an
/// answer from the read model), and once NATS is back it makes the stream, its consumers apply
/// a rating, and its events are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_starts_and_serves_while_nats_is_away() -> anyhow::Result<()> {
    let mut nats = fupin_platform::testing::NatsServer::start();
    nats.wait_listening().await;
    nats.kill();
    let nats_url = nats.url();
    let svc = RunningService::start_with("fupin-intake", false, &[("NATS_URL", &nats_url)]).await?;
    let mut intake = IntakeServiceClient::new(svc.channel().await?);
    let id = resident_id();
    let refused = intake
        .submit_application(authed(
            submit_request(&id, 0),
            Role::VillageStaff,
            VILLAGE,
            None,
        ))
        .await
        .expect_err("no rating yet");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("R-CR-3"), "{refused:?}");

    nats.spawn();
    nats.wait_listening().await;
    // Intake makes the stream (the test's bus below would make it too).
    let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await?);
    let deadline = Instant::now() + Duration::from_secs(20);
    while js.get_stream(&svc.stream).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "intake did not make the stream");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bus = EventBus::connect(&nats_url, &svc.prefix, &svc.stream, "/e2e").await?;
    publish_rating(&bus, &id).await?;
    let app = submit_once_rated(&mut intake, &id).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = bus.js.get_stream(&svc.stream).await?;
        let subjects = stream
            .info_with_subjects(format!("{}.intake.>", svc.prefix))
            .await?
            .collect::<Vec<_>>()
            .await;
        if !subjects.is_empty() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{} was not published", app.id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(svc.terminate(Duration::from_secs(30)).await?.success());
    Ok(())
}

/// Operations: a NATS that answers and refuses intake's credentials is a configuration to fix,
/// not an outage: the start is refused naming `NATS_URL` and the refusal, rather than serving
/// with a read model that never changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_refusing_the_credentials_stops_the_start() -> anyhow::Result<()> {
    let nats = fupin_platform::testing::shipped_server().await;
    let mut svc = RunningService::start("fupin-intake", false).await?;
    svc.stop(Duration::from_secs(30)).await?;
    let wrong = fupin_platform::testing::with_user(&nats.url(), "fupin", "not-the-password");
    let (status, stderr) = svc
        .restart_failing(&[("NATS_URL", &wrong)], Duration::from_secs(60))
        .await?;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("NATS_URL") && stderr.to_lowercase().contains("authorization"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    svc.terminate_after_signal(Duration::from_secs(5)).await?;
    Ok(())
}

/// Waits up to 5 s for intake's health to say NOT_SERVING (its drain has started).
async fn wait_not_serving(svc: &RunningService) -> anyhow::Result<()> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(svc.channel().await?);
    let deadline = Instant::now() + Duration::from_secs(5);
    while health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await?
        .into_inner()
        .status()
        != tonic_health::pb::health_check_response::ServingStatus::NotServing
    {
        anyhow::ensure!(Instant::now() < deadline, "the drain never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Operations: Ctrl-C (SIGINT) during a long drain stops the binary at once, with exit status
/// 130, instead of leaving SIGKILL as the only way out; a second SIGTERM (a supervisor's stop
/// command and its service manager's own signal) does not cut the drain short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_drain_at_once_and_a_second_sigterm_does_not() -> anyhow::Result<()> {
    let svc =
        RunningService::start_with("fupin-intake", false, &[("SHUTDOWN_DRAIN_SECONDS", "120")])
            .await?;
    svc.sigterm().await?;
    wait_not_serving(&svc).await?;
    let asked = Instant::now();
    svc.signal("INT").await?;
    let exit = svc.terminate_after_signal(Duration::from_secs(10)).await?;
    assert_eq!(
        exit.code(),
        Some(fupin_platform::shutdown::FORCED_EXIT_CODE),
        "{exit:?}"
    );
    assert!(asked.elapsed() < Duration::from_secs(10));

    let svc = RunningService::start_with("fupin-intake", false, &[("SHUTDOWN_DRAIN_SECONDS", "3")])
        .await?;
    let asked = Instant::now();
    svc.sigterm().await?;
    wait_not_serving(&svc).await?;
    svc.sigterm().await?;
    let exit = svc.terminate_after_signal(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{exit:?}");
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "the drain ran to its end"
    );
    Ok(())
}

/// Operations: a call that never ends (here a health Watch stream, as a load balancer keeps
/// open) does not hold a stop until the orchestrator kills the process: after the grace
/// period the server closes it and the binary exits cleanly, having run its relay's flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_does_not_hold_the_stop() -> anyhow::Result<()> {
    let svc = RunningService::start("fupin-intake", false).await?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(svc.channel().await?);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await?
        .into_inner();
    assert!(watch.message().await?.is_some(), "the first status");
    let asked = Instant::now();
    let exit = svc.terminate(Duration::from_secs(25)).await?;
    assert!(exit.success());
    let took = asked.elapsed();
    assert!(
        took >= fupin_platform::grpc::CLOSE_GRACE,
        "closed only after the grace period: {took:?}"
    );
    Ok(())
}
