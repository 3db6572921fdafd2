//! The intake load run.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use fupin_kernel::{AreaRegistry, ResidentId};
use fupin_platform::{
    Role,
    auth::token_for,
    events::EventBus,
    testing::{admin_database_url, create_database, drop_database, nats_url, unique_token},
};
use fupin_proto::{
    admin::v1::{GetTimeRequest, test_clock_service_client::TestClockServiceClient},
    common::v1::Money,
    intake::v1::{self as pb, intake_service_client::IntakeServiceClient},
    rating::v1 as rating,
};
use futures::future::BoxFuture;
use sqlx::{Connection, PgConnection};
use tonic::{Request, transport::Channel};

use crate::{
    plain_insert,
    stats::{CpuWindow, Summary, ms},
};

const SECRET: &str = "bench-secret";
/// Where intake's clock starts: a Monday, 10:00 in China.
const CLOCK_START: &str = "2026-11-30T10:00:00+08:00";
const HOUSEHOLDS: usize = 64;
const WARMUP: Duration = Duration::from_secs(2);

struct Household {
    resident_id: String,
    village: String,
    token: String,
}

pub async fn run(
    intake_bin: &Path,
    measure: Duration,
    levels: &[usize],
    floor: bool,
    churn: u32,
) -> anyhow::Result<()> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let admin = admin_database_url();
    let token = unique_token();
    let intake_db = format!("bench_intake_{token}");
    let plain_db = format!("bench_plain_{token}");
    let intake_url = create_database(&admin, &intake_db).await?;
    let plain_url = create_database(&admin, &plain_db).await?;
    plain_insert::setup(&plain_url).await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let max_conn = levels.iter().copied().max().unwrap_or(16).clamp(8, 64);
    let mut child = tokio::process::Command::new(intake_bin)
        .env("DATABASE_URL", &intake_url)
        .env("DATABASE_MAX_CONNECTIONS", max_conn.to_string())
        .env("NATS_URL", nats_url())
        .env("GRPC_ADDR", &addr)
        .env("EVENT_SUBJECT_PREFIX", &token)
        .env("EVENT_STREAM", token.to_uppercase())
        .env("AUTH_JWT_SECRET", SECRET)
        // The development PII keys: the bench's data is thrown away.
        .env("FUPIN_DEV", "1")
        // Dated from a fixed day, so that a run does not depend on the day it is made (a
        // deadline reaching a year without a calendar would be left pending).
        .env("FUPIN_TEST_CLOCK", "1")
        .env("FUPIN_TEST_CLOCK_START", CLOCK_START)
        .env("RUST_LOG", "warn")
        .env("CALENDAR_DIR", ws.join("deploy/calendar"))
        .env("AREAS_FILE", ws.join("deploy/areas/410311.toml"))
        .env("POLICY_DIR", ws.join("deploy/policy"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let endpoint = format!("http://{addr}");
    wait_healthy(&endpoint).await?;

    let households = seed(&ws, &token, &intake_url).await?;
    fill_district(&intake_url).await?;
    println!(
        "intake bench: {} s per level after {} s warm-up; {} households submitting; read model \
         of {} rated households and {} blacklist entries; intake pool {max_conn}; machine: {} cores",
        measure.as_secs(),
        WARMUP.as_secs(),
        households.len(),
        households.len() + OTHER_RATED,
        OTHER_BLACKLISTED,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>7} | {:>9} {:>7} {:>7} {:>6} {:>8} {:>8} | {:>9} {:>7} {:>7} {:>8} | {:>5}",
        "clients",
        "intake/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu µs",
        "svc µs",
        "insert/s",
        "p50 ms",
        "p99 ms",
        "cpu µs",
        "ratio"
    );
    for &clients in levels {
        let churner = (churn > 0).then(|| Churn::start(&intake_url, churn));
        let intake = submit_load(&endpoint, &households, clients, measure, child.id()).await?;
        let churned = match churner {
            Some(c) => Some(c.stop().await?),
            None => None,
        };
        let plain = plain_insert::run(&plain_url, clients, WARMUP, measure).await?;
        println!(
            "{:>7} | {} | {:>9.0} {:>7.2} {:>7.2} {:>8.0} | {:>5.2}",
            clients,
            intake.service_columns(),
            plain.per_second(),
            ms(plain.p50),
            ms(plain.p99),
            plain.cpu_per_op(plain.cpu.machine),
            intake.per_second() / plain.per_second()
        );
        if let Some((changes, took)) = churned {
            println!(
                "        read model: {changes} ratings changed meanwhile ({:.0}/s)",
                f64::from(changes) / took.as_secs_f64()
            );
        }
    }
    println!(
        "cpu µs: CPU time of the whole machine (all processes, all cores) per operation; \
         svc µs: of the intake process alone"
    );
    if floor {
        println!(
            "gRPC floor: TestClockService.GetTime on the same intake (refused at once; no \
             database, no NATS)"
        );
        println!(
            "{:>7} | {:>9} {:>7} {:>7} {:>6} {:>8} {:>8}",
            "clients", "calls/s", "p50 ms", "p99 ms", "errors", "cpu µs", "svc µs"
        );
        for &clients in levels {
            let f = floor_load(&endpoint, clients, measure, child.id()).await?;
            println!("{clients:>7} | {}", f.service_columns());
        }
    }
    child.kill().await?;
    let _ = child.wait().await;
    for db in [&intake_db, &plain_db] {
        drop_database(&admin, db).await?;
    }
    // The run's events are of no further use; leaving them would make NATS slower run by run.
    let bus = EventBus::connect(&nats_url(), &token, &token.to_uppercase(), "/fupin/bench").await?;
    bus.js.delete_stream(&bus.stream).await?;
    Ok(())
}

async fn wait_healthy(endpoint: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = Channel::from_shared(endpoint.to_owned())?.connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
            if let Ok(r) = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                && r.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "intake did not become healthy at {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Changes other households' ratings in intake's read model at a steady rate, each in its own
/// transaction (as the consumer applies a rating run's events), until stopped.
struct Churn {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<u32>>,
    started: Instant,
}

impl Churn {
    fn start(intake_url: &str, per_second: u32) -> Self {
        let url = intake_url.to_owned();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await?;
            let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u32;
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(n),
                    _ = tick.tick() => {}
                }
                sqlx::query(
                    r#"update rm_credit_ratings set sequence = sequence + 1
                       where subject_idx = sha256(('bench-other-' || $1)::bytea)"#,
                )
                .bind((n as usize % OTHER_RATED + 1).to_string())
                .execute(&mut conn)
                .await?;
                n += 1;
            }
        });
        Self {
            stop,
            task,
            started: Instant::now(),
        }
    }

    /// How many changes were made, and over how long.
    async fn stop(self) -> anyhow::Result<(u32, Duration)> {
        let _ = self.stop.send(());
        let n = self.task.await??;
        Ok((n, self.started.elapsed()))
    }
}

/// The rest of a district's read model: households rated or blacklisted that do not apply
/// during the run. Admission looks applicants up among them, so its cost is measured at a
/// district's scale rather than against a few dozen rows.
const OTHER_RATED: usize = 20_000;
const OTHER_BLACKLISTED: usize = 1_000;

/// Adds the other households straight to intake's read model (as its consumers store them;
/// publishing 20,000 events would only slow the bench down), then refreshes the planner's
/// statistics, as autovacuum would have by the time a district's read model is this size.
async fn fill_district(intake_url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(intake_url).await?;
    sqlx::query(
        r#"insert into rm_credit_ratings (subject_idx, subject_kind, village_code, grade, veto,
             credit_line, effective_from, expires_on, policy_version, sequence)
           select sha256(('bench-other-' || g)::bytea), 1, '410311100201', 'B', false, 10000,
             current_date - 30, current_date + 335, 'bench', 1
           from generate_series(1, $1) g"#,
    )
    .bind(OTHER_RATED as i32)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        r#"insert into rm_blacklist (entry_id, subject_idx, subject_kind, reason, active)
           select 'bench-other-' || g, sha256(('bench-other-' || g)::bytea), 1, 'bench', true
           from generate_series(1, $1) g"#,
    )
    .bind(OTHER_BLACKLISTED as i32)
    .execute(&mut conn)
    .await?;
    sqlx::query("analyze rm_credit_ratings, rm_blacklist")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Rates `HOUSEHOLDS` households (grade A, effective for a year) through the same events the
/// credit service publishes, and waits until intake's read model has them all.
async fn seed(ws: &Path, prefix: &str, intake_url: &str) -> anyhow::Result<Vec<Household>> {
    let areas = AreaRegistry::load(ws.join("deploy/areas/410311.toml"))?;
    let villages: Vec<String> = areas
        .towns()
        .flat_map(|t| {
            areas
                .villages_of(t.code())
                .map(|v| v.code().as_str().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let bus =
        EventBus::connect(&nats_url(), prefix, &prefix.to_uppercase(), "/fupin/bench").await?;
    let today = fupin_kernel::time::china_date(
        chrono::DateTime::parse_from_rfc3339(CLOCK_START)
            .expect("an RFC 3339 instant")
            .to_utc(),
    );
    let mut out = Vec::with_capacity(HOUSEHOLDS);
    for i in 0..HOUSEHOLDS {
        let body = format!("410311198{}0{}01{:03}", i % 10, 1 + i % 9, i);
        let id = format!("{body}{}", ResidentId::check_char_for(&body)?);
        let village = villages[i % villages.len()].clone();
        let ev = rating::CreditRatingEffective {
            rating_id: format!("bench-{i}"),
            subject_kind: rating::SubjectKind::Household as i32,
            subject_id: id.clone(),
            village_code: village.clone(),
            grade: "A".into(),
            veto: false,
            credit_line: "20000.00".into(),
            effective_from: (today - chrono::Days::new(30)).to_string(),
            expires_on: (today + chrono::Days::new(335)).to_string(),
            policy_version: "bench".into(),
            sequence: 1,
        };
        bus.publish_now(&ev, Some(&id), None).await?;
        let token = token_for(
            SECRET,
            &format!("bench-village-{village}"),
            Role::VillageStaff,
            &village,
            None,
            3600,
        );
        out.push(Household {
            resident_id: id,
            village,
            token,
        });
    }
    let mut conn = PgConnection::connect(intake_url).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar("select count(*) from rm_credit_ratings")
            .fetch_one(&mut conn)
            .await?;
        if n as usize >= HOUSEHOLDS {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "read model has {n} of {HOUSEHOLDS} ratings after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(out)
}

fn request(h: &Household) -> Request<pb::SubmitApplicationRequest> {
    let mut req = Request::new(pb::SubmitApplicationRequest {
        request_id: uuid::Uuid::now_v7().to_string(),
        applicant: Some(pb::submit_application_request::Applicant::Household(
            pb::Household {
                resident_id: h.resident_id.clone(),
                name: "张三".into(),
                phone: "13800000000".into(),
                village_code: h.village.clone(),
                poor_household_number: "LL-2026-0001".into(),
                household_borrows_uses_repays: true,
            },
        )),
        kind: pb::ApplicantKind::Household as i32,
        amount: Some(Money {
            amount: "20000".into(),
        }),
        term_months: 24,
        purpose: pb::Purpose::Breeding as i32,
        project_description: "养殖肉牛 5 头".into(),
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", h.token).parse().expect("ASCII token"),
    );
    req
}

/// One client's next call: resolves to whether it completed.
type Call = Box<dyn FnMut() -> BoxFuture<'static, Result<(), tonic::Status>> + Send>;

/// `clients` concurrent clients, each on its own HTTP/2 connection, submitting back to back.
async fn submit_load(
    endpoint: &str,
    households: &[Household],
    clients: usize,
    measure: Duration,
    intake_pid: Option<u32>,
) -> anyhow::Result<Summary> {
    let hs: Vec<(String, String, String)> = households
        .iter()
        .map(|h| (h.resident_id.clone(), h.village.clone(), h.token.clone()))
        .collect();
    drive(endpoint, clients, measure, intake_pid, |c, channel| {
        let client = IntakeServiceClient::new(channel);
        let hs = hs.clone();
        let mut i = c;
        Box::new(move || {
            let (resident_id, village, token) = hs[i % hs.len()].clone();
            i += clients;
            let req = request(&Household {
                resident_id,
                village,
                token,
            });
            let mut client = client.clone();
            Box::pin(async move { client.submit_application(req).await.map(|_| ()) })
        })
    })
    .await
}

/// The floor under any call to intake: `TestClockService.GetTime`, which goes through the same
/// server, interceptor and HTTP/2 stack and is refused at once (the bench's intake runs with the
/// real clock), touching neither PostgreSQL nor NATS.
async fn floor_load(
    endpoint: &str,
    clients: usize,
    measure: Duration,
    intake_pid: Option<u32>,
) -> anyhow::Result<Summary> {
    let token = format!(
        "Bearer {}",
        token_for(
            SECRET,
            "bench-operator",
            Role::Operator,
            "410311",
            None,
            3600
        )
    );
    drive(endpoint, clients, measure, intake_pid, |_, channel| {
        let client = TestClockServiceClient::new(channel);
        let token = token.clone();
        Box::new(move || {
            let mut req = Request::new(GetTimeRequest {});
            req.metadata_mut()
                .insert("authorization", token.parse().expect("ASCII token"));
            let mut client = client.clone();
            Box::pin(async move {
                match client.get_time(req).await {
                    Ok(_) => Ok(()),
                    Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok(()),
                    Err(s) => Err(s),
                }
            })
        })
    })
    .await
}

/// Runs `clients` closed-loop clients, each on its own HTTP/2 connection making the calls
/// `make` gives it back to back, and measures them after the warm-up.
async fn drive(
    endpoint: &str,
    clients: usize,
    measure: Duration,
    intake_pid: Option<u32>,
    make: impl Fn(usize, Channel) -> Call,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let deadline = measure_from + measure;
    let cpu = CpuWindow::spawn(measure_from, deadline, intake_pid);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let channel = Channel::from_shared(endpoint.to_owned())?.connect().await?;
        let mut call = make(c, channel);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = call().await;
                if t >= measure_from {
                    match r {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("first error: {e}");
                            }
                            errors += 1;
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok(Summary::new(all, errors, measure, cpu.finish().await))
}
