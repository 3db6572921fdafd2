//! Helpers shared by the platform's integration tests. Each test binary uses a subset, hence
//! the `dead_code` allowance.
#![allow(dead_code)]

use std::{
    fs::{File, OpenOptions},
    future::Future,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fupin_platform::testing::{TestDb, unique_token};
use sqlx::{PgPool, migrate::Migrator};

/// A fresh test database carrying only the platform tables (no service migrations).
pub async fn platform_db() -> TestDb {
    let none = Migrator::with_migrations(vec![]);
    TestDb::create(&none)
        .await
        .expect("creating a test database (is PostgreSQL up? see DATABASE_URL)")
}

/// Polls `probe` every 50 ms until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `select count(*) ...` as an i64.
pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// A private nats-server child process with JetStream on a fixed port and store directory, so it
/// can be killed and restarted with its stream intact. Killed (and its directory removed) on drop.
pub struct NatsServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    envs: Vec<(String, String)>,
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with extra command-line options (e.g. `--user`, `--pass`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_configured(extra, &[])
    }

    /// Started with extra command-line options and environment variables (e.g. `-c` and the
    /// variables the configuration file reads).
    pub fn start_configured(extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
            l.local_addr().expect("local addr").port()
        };
        let dir = std::env::temp_dir().join(format!("fupin-nats-{}", unique_token()));
        std::fs::create_dir_all(&dir).expect("creating the nats store dir");
        let mut server = Self {
            port,
            dir,
            child: None,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }

    fn log(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .expect("nats log file")
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "nats-server already running");
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .args(&self.extra)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.log())
            .stderr(self.log())
            .spawn()
            .expect("starting `nats-server` (is it on PATH?)");
        self.child = Some(child);
    }

    /// SIGKILL, as a crash or a network cut looks to the client.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn wait_listening(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        eventually(Duration::from_secs(10), "nats-server to listen", || {
            let addr = addr.clone();
            async move { TcpStream::connect(&addr).ok().map(|_| ()) }
        })
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
