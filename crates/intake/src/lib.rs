//! The intake service (SPEC.md section 1): the three-tier application workflow, admission
//! against a read model of other services' events, deadlines, public notice, complaints and
//! the partner-bank API.

pub mod api;
pub mod app;
pub mod domain;
pub mod readmodel;
pub mod reseal;
pub mod store;
pub mod submit;

use std::{sync::Arc, time::Duration};

use fupin_kernel::{AreaRegistry, PolicyHistory, WorkingDayCalendar, policy::IntakePolicy};
use fupin_platform::{
    PiiCipher, SharedClock,
    auth::{JwtVerifier, TokenKeys},
    clock::AdjustableClock,
    events::{EventBus, consumer, relay},
    grpc::GrpcServer,
    health,
    shutdown::Shutdown,
};
use fupin_proto::intake::v1::intake_service_server::IntakeServiceServer;
use futures::FutureExt;
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;
use tonic::{server::NamedService, transport::ServerTlsConfig};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Reference data the service decides with, loaded once at start-up.
pub struct Reference {
    pub areas: AreaRegistry,
    pub calendar: WorkingDayCalendar,
    pub policy: PolicyHistory<IntakePolicy>,
}

impl Reference {
    pub fn load(config: &fupin_platform::BaseConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        Ok(Self {
            areas: AreaRegistry::load(&config.areas_file)
                .with_context(|| format!("areas file {}", config.areas_file.display()))?,
            calendar: WorkingDayCalendar::load_dir(&config.calendar_dir)
                .with_context(|| format!("calendar dir {}", config.calendar_dir.display()))?,
            policy: PolicyHistory::load(config.policy_dir.join("intake.toml")).with_context(
                || format!("policy {}", config.policy_dir.join("intake.toml").display()),
            )?,
        })
    }
}

pub struct Runtime {
    pub pool: PgPool,
    pub bus: EventBus,
    pub clock: Arc<AdjustableClock>,
    /// What bearer tokens are verified with.
    pub token_keys: TokenKeys,
    /// Seals personal data at rest and keys its blind index (R-CR-11).
    pub pii: PiiCipher,
    pub test_clock: bool,
    pub reference: Reference,
    /// How often the deadline scan runs on its own (R-IN-4); None disables the timer.
    pub scan_interval: Option<Duration>,
    /// Re-sealing of values sealed with retiring keys (R-CR-11, see [`reseal`]): the keys and
    /// how often; the first pass runs at start. None (or no key) runs nothing.
    pub reseal: Option<(reseal::Retiring, Duration)>,
    /// TLS on the gRPC port (`GRPC_TLS_*`); None serves plain HTTP/2.
    pub grpc_tls: Option<ServerTlsConfig>,
    /// How `grpc.health.v1` follows the database ([`health`]); None keeps it SERVING while
    /// the server runs.
    pub readiness: Option<health::Readiness>,
    /// After shutdown is asked for, how long the server reports NOT_SERVING while still
    /// taking calls, so load balancers stop sending new ones before it stops accepting them.
    pub shutdown_drain: Duration,
    /// How long one statement of the submission writer may run before the server cancels it
    /// ([`submit::STATEMENT_DEADLINE`] in production).
    pub submit_deadline: Duration,
}

/// The largest request intake decodes. Its largest legitimate requests (a disbursement with a
/// monthly schedule, a submission with its texts) are a few kilobytes; tonic's default of
/// 4 MiB let one request hold megabytes of memory per stream.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Runs relay, consumer, deadline timer and the gRPC server until `shutdown`.
pub async fn run(rt: Runtime, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    // R-X-4: a version id means what it meant when decisions used it; a policy file that
    // would change that stops the start, before anything decides with it.
    {
        let today = fupin_kernel::china_date(fupin_platform::Clock::now(rt.clock.as_ref()));
        let policy = &rt.reference.policy;
        let registered = store::policy::register(&rt.pool, "intake", policy, today).await?;
        let in_force = policy.in_force(today).ok().map(|v| v.version.id.as_str());
        let next = policy
            .versions()
            .iter()
            .find(|v| v.version.effective_from > today)
            .map(|v| format!("{} from {}", v.version.id, v.version.effective_from));
        tracing::info!(
            in_force = in_force.unwrap_or("none"),
            next = next.as_deref().unwrap_or("none"),
            added = ?registered.add.iter().map(|v| &v.id).collect::<Vec<_>>(),
            withdrawn = ?registered.withdraw,
            "intake policy"
        );
        if in_force.is_none() {
            tracing::error!(
                "no intake policy version is in force today ({today}): every decision is \
                 refused until one takes effect [R-X-4]"
            );
        }
    }
    // A read-model consumer that would apply events out of order stops the start, before
    // anything is started (R-X-2).
    let consumer_config =
        consumer::ConsumerConfig::new(readmodel::CONSUMER, readmodel::event_types());
    let mut stop_asked = shutdown.clone();
    if rt.bus.is_connected() {
        tokio::select! {
            checked = consumer::check(&rt.bus, &consumer_config) => checked?,
            // A stop asked for while NATS is slow to answer.
            _ = stop_asked.wait() => return Ok(()),
        }
    } else {
        // Checked by the consumers themselves once NATS answers (a consumer that lost a
        // guarantee is then an error each time they try, not a refused start).
        tracing::warn!("NATS does not answer: the read model's consumers are checked once it does");
    }
    // Everything started here stops when asked to, or when the server stops on its own.
    let (stop_all, shutdown) = shutdown.linked();
    // The relay stops last, after the calls still in flight at shutdown and the batches they
    // queued: what they commit is published before the process exits (R-X-2).
    let (relay_stop, relay_shutdown) = fupin_platform::shutdown::channel();
    let (relay, relay_task) = relay::spawn(
        rt.pool.clone(),
        rt.bus.clone(),
        relay::RelayConfig::default(),
        relay_shutdown,
    );
    let consumer_names = consumer::per_context(&consumer_config)
        .into_iter()
        .map(|c| c.name)
        .collect();
    let consumer_task = consumer::spawn(
        rt.pool.clone(),
        rt.bus.clone(),
        consumer_config,
        Arc::new(readmodel::ReadModelHandler {
            pii: rt.pii.clone(),
        }),
        shutdown.clone(),
    );
    let clock: SharedClock = rt.clock.clone();
    let policy = Arc::new(rt.reference.policy);
    let (submit_close, submit_closing) = fupin_platform::shutdown::channel();
    let (submissions, submit_task) = submit::SubmitQueue::spawn(
        submit::Writer {
            pool: rt.pool.clone(),
            prefix: rt.bus.prefix.clone(),
            relay: relay.clone(),
            policy: policy.clone(),
            deadline: rt.submit_deadline,
        },
        submit_closing,
    );
    let intake = app::Intake {
        pool: rt.pool.clone(),
        prefix: rt.bus.prefix.clone(),
        relay,
        clock,
        areas: Arc::new(rt.reference.areas),
        calendar: Arc::new(rt.reference.calendar),
        policy,
        submissions,
        pii: rt.pii,
        manual_scans: Arc::default(),
    };
    // Intake's own background tasks run again after a panic (logged as an error, then a
    // backoff), rather than leave intake SERVING without, say, its deadline scan (R-IN-4,
    // R-IN-7), or stop intake and take submissions down with a panic that may recur.
    let tasks = Supervisor::new(shutdown.clone());
    let scan_task = rt.scan_interval.map(|every| {
        let (intake, shutdown) = (intake.clone(), shutdown.clone());
        tasks.spawn("deadline scan", move || {
            let (intake, mut shutdown) = (intake.clone(), shutdown.clone());
            async move {
                let mut tick = tokio::time::interval(every);
                let mut warned_on = None;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            // At start, then once a day while it applies.
                            let (_, today) = intake.now();
                            if warned_on != Some(today)
                                && let Some(warning) = app::calendar_warning(&intake.calendar, today)
                            {
                                tracing::warn!("{warning}");
                                warned_on = Some(today);
                            }
                            if let Err(e) = intake.scan_deadlines().await {
                                tracing::warn!(error = %e, "deadline scan failed");
                            }
                        }
                        _ = shutdown.wait() => return,
                    }
                }
            }
        })
    });
    let keying_task = {
        let (pool, pii, shutdown) = (rt.pool.clone(), intake.pii.clone(), shutdown.clone());
        tasks.spawn("fingerprint keying", move || {
            reseal::key_fingerprints(
                pool.clone(),
                pii.clone(),
                Duration::from_secs(3600),
                shutdown.clone(),
            )
        })
    };
    // Which key this replica seals with, every minute: a pass on another replica does not
    // retire it meanwhile (R-CR-11, see `fupin_platform::db::record_keys_retired`).
    let heartbeat_task = {
        let (pool, pii, shutdown) = (rt.pool.clone(), intake.pii.clone(), shutdown.clone());
        tasks.spawn("key heartbeat", move || {
            reseal::key_heartbeat(pool.clone(), pii.clone(), shutdown.clone())
        })
    };
    let reseal_task =
        rt.reseal
            .filter(|(retiring, _)| !retiring.is_empty())
            .map(|(retiring, every)| {
                let (pool, pii, shutdown) = (rt.pool.clone(), intake.pii.clone(), shutdown.clone());
                tasks.spawn("re-sealing", move || {
                    reseal::run_every(
                        pool.clone(),
                        pii.clone(),
                        retiring.clone(),
                        every,
                        shutdown.clone(),
                    )
                })
            });
    // R-IN-6: the banks of every policy version, those ahead of their day too (a bank the
    // district stops recommending to still decides and disburses what it was given).
    let verifier = JwtVerifier::new(rt.token_keys)
        .serving(intake.areas.all().map(|a| a.code()))
        .banks(
            intake
                .policy
                .versions()
                .iter()
                .flat_map(|v| v.value.partner_banks.iter().map(String::as_str)),
        );
    let mut server = GrpcServer::new(verifier.clone(), rt.clock.clone(), rt.test_clock);
    if let Some(tls) = rt.grpc_tls {
        server = server.with_tls(tls);
    }
    server = server.with_drain(rt.shutdown_drain);
    server
        .routes_mut()
        .add_service(tonic::service::interceptor::InterceptedService::new(
            IntakeServiceServer::new(api::IntakeApi(intake))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            move |r| verifier.intercept(r),
        ));
    server
        .health()
        .set_serving::<IntakeServiceServer<api::IntakeApi>>()
        .await;
    let readiness_task = rt.readiness.map(|config| {
        health::spawn(
            config,
            server.health(),
            vec![<IntakeServiceServer<api::IntakeApi> as NamedService>::NAME.to_owned()],
            &rt.pool,
            Some(rt.bus.js.client()),
            Some(health::Consumers {
                bus: rt.bus.clone(),
                names: consumer_names,
            }),
            shutdown.clone(),
        )
    });
    let served = server.serve(listener, shutdown).await;
    // The server stops when asked to, or when it cannot serve: a TLS certificate that does not
    // match its key is only read here. The rest stops with it, rather than keep a process up
    // with its port closed until someone sends it a signal.
    if let Err(e) = &served {
        tracing::error!(
            error = format!("{e:#}"),
            "the gRPC server stopped; stopping intake"
        );
    }
    stop_all.trigger();
    // The server and the scan hold the last queue handles; with them gone the batches drain.
    if let Some(t) = scan_task {
        let _ = t.await;
    }
    if let Some(t) = reseal_task {
        let _ = t.await;
    }
    let _ = keying_task.await;
    let _ = heartbeat_task.await;
    if let Some(t) = readiness_task {
        let _ = t.await;
    }
    // Connections the server could not close (a stream left open) still hold queue handles.
    submit_close.trigger();
    let _ = submit_task.await;
    relay_stop.trigger();
    let _ = relay_task.await;
    let _ = consumer_task.await;
    served
}

/// Runs background tasks again after a panic: the panic is logged as an error, and the task
/// started anew after a backoff (doubling from a second up to five minutes), until shutdown.
struct Supervisor {
    shutdown: Shutdown,
}

/// The longest wait before a task that keeps panicking runs again.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Supervisor {
    fn new(shutdown: Shutdown) -> Self {
        Self { shutdown }
    }

    /// Runs the task `make` makes, and again after each panic. Returns how many times it
    /// panicked once it ends without one, or at shutdown.
    fn spawn<F>(
        &self,
        name: &'static str,
        make: impl Fn() -> F + Send + 'static,
    ) -> tokio::task::JoinHandle<u32>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut panics = 0_u32;
            let mut backoff = Duration::from_secs(1);
            loop {
                let started = tokio::time::Instant::now();
                let Err(panic) = std::panic::AssertUnwindSafe(make()).catch_unwind().await else {
                    return panics;
                };
                panics += 1;
                // A panic after a long healthy run starts the backoff over.
                if started.elapsed() >= RESTART_BACKOFF_MAX {
                    backoff = Duration::from_secs(1);
                }
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(task = name, panic = %why, panics, restart_in = ?backoff,
                    "a background task panicked; it runs again after the backoff");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => return panics,
                }
                backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::Duration,
    };

    use super::Supervisor;

    // R-IN-4, R-IN-7: a background task that panics (the deadline scan) runs again, and keeps
    // running once it no longer panics; one that ends normally is not run again.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_runs_again_after_a_backoff() {
        let (_stop, shutdown) = fupin_platform::shutdown::channel();
        let tasks = Supervisor::new(shutdown);
        assert_eq!(tasks.spawn("quiet", || async {}).await.expect("joined"), 0);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let panics = tasks
            .spawn("deadline scan", move || {
                let runs = counted.clone();
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) < 3 {
                        panic!("overflow");
                    }
                }
            })
            .await
            .expect("the panics are caught, not passed on");
        assert_eq!(panics, 3);
        assert_eq!(runs.load(Ordering::SeqCst), 4, "run again after each panic");
    }

    // At shutdown, a task waiting to run again stops waiting.
    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_backoff() {
        let (stop, shutdown) = fupin_platform::shutdown::channel();
        let tasks = Supervisor::new(shutdown);
        let task = tasks.spawn("re-sealing", || async { panic!("always") });
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.trigger();
        let panics = task.await.expect("ends");
        assert!(panics >= 3, "{panics}");
    }
}
