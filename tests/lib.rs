//! Harness for the end-to-end suite: starts real service binaries against a private database
//! and NATS subject prefix, and talks to them as their users do (gRPC with bearer tokens, a
//! plain JetStream subscriber for events).

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use fupin_platform::{
    Role,
    auth::token_for,
    testing::{
        admin_database_url, create_owned_database, drop_owned_database, nats_url, unique_token,
    },
};
use fupin_proto::{common::v1::Money, intake::v1 as pb};
use tokio::process::{Child, Command};
use tonic::{
    Request,
    transport::{Channel, ClientTlsConfig},
};

pub const SECRET: &str = "e2e-secret";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The debug binary of `package`, brought up to date first: `cargo test --workspace` builds it,
/// but `cargo test -p fupin-e2e` alone would otherwise run whatever binary an earlier build
/// left (a no-op build when it is current). Built once per test binary.
pub async fn binary(package: &str) -> anyhow::Result<PathBuf> {
    static BUILT: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let bin = target.join("debug").join(package);
    let mut built = BUILT.lock().await;
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "-p", package])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "building {package} failed");
        built.push(package.to_owned());
    }
    Ok(bin)
}

/// A running service binary with its own database and event prefix.
pub struct RunningService {
    pub child: Child,
    pub endpoint: String,
    pub prefix: String,
    pub stream: String,
    database: String,
    /// How to reach an `https://` endpoint.
    tls: Option<ClientTlsConfig>,
    /// How it was started, for [`RunningService::restart`] and [`RunningService::replica`].
    setup: Setup,
    /// Whether [`RunningService::terminate_after_signal`] drops the database (a replica
    /// leaves it to the service it was started beside).
    owns_database: bool,
}

/// Monday 2026-11-30, 10:00 in China: where a service started with the test clock on starts
/// its clock, again at each restart.
pub const TEST_CLOCK_START: &str = "2026-11-30T10:00:00+08:00";

/// The day in China of [`TEST_CLOCK_START`].
pub fn test_clock_day() -> chrono::NaiveDate {
    fupin_kernel::time::china_date(
        chrono::DateTime::parse_from_rfc3339(TEST_CLOCK_START)
            .expect("an RFC 3339 instant")
            .to_utc(),
    )
}

/// What starts a service process again on the same database, prefix and stream.
#[derive(Clone)]
struct Setup {
    package: String,
    test_clock: bool,
    envs: Vec<(String, String)>,
    /// The URL the service connects with: its database's owning role.
    database_url: String,
}

impl RunningService {
    pub async fn start(package: &str, test_clock: bool) -> anyhow::Result<Self> {
        Self::start_with(package, test_clock, &[]).await
    }

    /// [`RunningService::start`] with more environment variables.
    pub async fn start_with(
        package: &str,
        test_clock: bool,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::launch(package, test_clock, envs, None).await
    }

    /// A service serving TLS as `envs` configure it (`GRPC_TLS_*`), reached at
    /// `https://localhost:<port>` with `tls`.
    pub async fn start_tls(
        package: &str,
        envs: &[(&str, &str)],
        tls: ClientTlsConfig,
    ) -> anyhow::Result<Self> {
        Self::launch(package, false, envs, Some(tls)).await
    }

    async fn launch(
        package: &str,
        test_clock: bool,
        envs: &[(&str, &str)],
        tls: Option<ClientTlsConfig>,
    ) -> anyhow::Result<Self> {
        binary(package).await?;
        let token = unique_token();
        let database = format!("e2e_{token}");
        // As in production: a role that owns this database and nothing else, not a superuser.
        let url = create_owned_database(&admin_database_url(), &database).await?;
        let setup = Setup {
            package: package.to_owned(),
            test_clock,
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            database_url: url,
        };
        let (child, endpoint) = setup.spawn(&token, tls.is_some(), &[]).await?;
        let svc = Self {
            child,
            endpoint,
            tls,
            prefix: token.clone(),
            stream: token.to_uppercase(),
            database,
            setup,
            owns_database: true,
        };
        svc.wait_healthy(Duration::from_secs(30)).await?;
        Ok(svc)
    }

    /// Starts the service again, as it was started (its environment, plus `envs` for this start
    /// only, which win), on the same database, subject prefix and stream, at a new port: an
    /// operator's restart.
    /// The previous process must have exited ([`RunningService::stop`],
    /// [`RunningService::kill`]).
    pub async fn restart_with(&mut self, envs: &[(&str, &str)]) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.child.try_wait()?.is_some(),
            "{} is still running: stop or kill it first",
            self.endpoint
        );
        let (child, endpoint) = self
            .setup
            .spawn(&self.prefix, self.tls.is_some(), envs)
            .await?;
        self.child = child;
        self.endpoint = endpoint;
        self.wait_healthy(Duration::from_secs(30)).await
    }

    /// Starts the service again as [`RunningService::restart_with`] does, for a start that must
    /// fail: waits up to `within` for the process to exit and returns its status and what it
    /// wrote to stderr.
    pub async fn restart_failing(
        &mut self,
        envs: &[(&str, &str)],
        within: Duration,
    ) -> anyhow::Result<(std::process::ExitStatus, String)> {
        anyhow::ensure!(
            self.child.try_wait()?.is_some(),
            "{} is still running: stop or kill it first",
            self.endpoint
        );
        let mut cmd = self
            .setup
            .command(&self.prefix, self.tls.is_some(), envs)
            .await?;
        let out = tokio::time::timeout(within, cmd.0.stderr(Stdio::piped()).output())
            .await
            .map_err(|_| anyhow::anyhow!("still running after {within:?}"))??;
        Ok((
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// [`RunningService::restart_with`] with no more environment.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_with(&[]).await
    }

    /// A second process of the service, started as this one was (plus `envs`), on the same
    /// database, prefix and stream while this one runs: a replica, or the new process of a
    /// rolling restart. It leaves the database to this one: terminate it first.
    pub async fn replica(&self, envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let (child, endpoint) = self
            .setup
            .spawn(&self.prefix, self.tls.is_some(), envs)
            .await?;
        let svc = Self {
            child,
            endpoint,
            tls: self.tls.clone(),
            prefix: self.prefix.clone(),
            stream: self.stream.clone(),
            database: self.database.clone(),
            setup: self.setup.clone(),
            owns_database: false,
        };
        svc.wait_healthy(Duration::from_secs(30)).await?;
        Ok(svc)
    }

    /// SIGTERM, then waits for a clean exit; the database stays (see
    /// [`RunningService::restart`]).
    pub async fn stop(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.sigterm().await?;
        Ok(tokio::time::timeout(within, self.child.wait()).await??)
    }

    /// SIGKILL, a crash: the process ends wherever it was; the database stays.
    pub async fn kill(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.child.kill().await?;
        Ok(self.child.wait().await?)
    }

    /// The URL the service connects to its database with (the database's owning role).
    pub fn database_url(&self) -> &str {
        &self.setup.database_url
    }

    /// The name of the service's own database.
    pub fn database(&self) -> &str {
        &self.database
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let mut endpoint = Channel::from_shared(self.endpoint.clone())?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        Ok(endpoint.connect().await?)
    }

    async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(ch) = self.channel().await {
                let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
                if let Ok(r) = h
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    && r.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} not healthy within {within:?}",
                self.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM (a stop asked for; see [`RunningService::terminate`]).
    pub async fn sigterm(&self) -> anyhow::Result<()> {
        self.signal("TERM").await
    }

    /// Sends the signal named (`TERM`, `INT`, as `kill -<name>` takes it).
    pub async fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("already exited"))?;
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{name} failed");
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.sigterm().await?;
        self.terminate_after_signal(within).await
    }

    /// Waits for the exit a signal already sent asked for, then drops the database.
    pub async fn terminate_after_signal(
        mut self,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let exit = tokio::time::timeout(within, self.child.wait()).await??;
        if self.owns_database {
            drop_owned_database(&admin_database_url(), &self.database).await?;
        }
        Ok(exit)
    }
}

impl Setup {
    /// Spawns the binary on this setup's database and the subject prefix `prefix` (stream: the
    /// prefix in upper case), at a free port; returns the process and its endpoint.
    async fn spawn(
        &self,
        prefix: &str,
        tls: bool,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<(Child, String)> {
        let (mut cmd, endpoint) = self.command(prefix, tls, envs).await?;
        Ok((cmd.spawn()?, endpoint))
    }

    /// The command [`Setup::spawn`] runs, and the endpoint it will serve at.
    async fn command(
        &self,
        prefix: &str,
        tls: bool,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<(Command, String)> {
        let bin = binary(&self.package).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let ws = workspace();
        let mut cmd = Command::new(bin);
        cmd.env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", nats_url())
            .env("GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("EVENT_SUBJECT_PREFIX", prefix)
            .env("EVENT_STREAM", prefix.to_uppercase())
            .env("AUTH_JWT_SECRET", SECRET)
            // The development PII keys: test data is thrown away.
            .env("FUPIN_DEV", "1")
            .env("CALENDAR_DIR", ws.join("deploy/calendar"))
            .env("AREAS_FILE", ws.join("deploy/areas/410311.toml"))
            .env("POLICY_DIR", ws.join("deploy/policy"))
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").map_or("warn".into(), |_| "info".to_owned()),
            )
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if self.test_clock {
            // From a fixed instant, so that dated test data and deadlines are the same whatever
            // day the tests run (a test may set another start, or move the clock).
            cmd.env("FUPIN_TEST_CLOCK", "1")
                .env("FUPIN_TEST_CLOCK_START", TEST_CLOCK_START);
        }
        // Settings a developer's shell may carry that would change what the tests expect.
        for var in [
            "AUTH_JWT_PUBLIC_KEY_FILE",
            "AUTH_JWT_ISSUER",
            "AUTH_JWT_AUDIENCE",
            "AUTH_JWT_MAX_LIFETIME_HOURS",
            "SHUTDOWN_DRAIN_SECONDS",
            "GRPC_TLS_CERT",
            "GRPC_TLS_KEY",
            "GRPC_TLS_CLIENT_CA",
            "PII_KEYS",
            "PII_INDEX_KEY",
        ] {
            cmd.env_remove(var);
        }
        if !self.test_clock {
            cmd.env_remove("FUPIN_TEST_CLOCK")
                .env_remove("FUPIN_TEST_CLOCK_START");
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd.envs(envs.iter().copied());
        let endpoint = if tls {
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        Ok((cmd, endpoint))
    }
}

/// Household `resident_id`'s application in `village` as its village's staff file it: 30,000
/// yuan for 36 months of planting, with a phone number (sealed at rest, R-CR-11).
pub fn household_submission(
    request_id: &str,
    resident_id: &str,
    village: &str,
) -> pb::SubmitApplicationRequest {
    pb::SubmitApplicationRequest {
        request_id: request_id.into(),
        applicant: Some(pb::submit_application_request::Applicant::Household(
            pb::Household {
                resident_id: resident_id.into(),
                name: "王五".into(),
                phone: "13800000000".into(),
                village_code: village.into(),
                poor_household_number: "JD-0001".into(),
                household_borrows_uses_repays: true,
            },
        )),
        kind: pb::ApplicantKind::Household as i32,
        amount: Some(Money {
            amount: "30000.00".into(),
        }),
        term_months: 36,
        purpose: pb::Purpose::Planting as i32,
        project_description: "花椒种植".into(),
    }
}

/// A request carrying a bearer token for `role` in `area`.
pub fn authed<T>(msg: T, role: Role, area: &str, bank: Option<&str>) -> Request<T> {
    let token = token_for(
        SECRET,
        &format!("e2e-{}-{area}", role.as_str()),
        role,
        area,
        bank,
        600,
    );
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    req
}
