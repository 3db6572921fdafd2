//! A private `nats-server` for tests that need a server of their own: one they stop and
//! restart, or one running a configuration of users and permissions.

use std::{
    fs::{File, OpenOptions},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::unique_token;

/// The password of the services' user `fupin` in [`shipped_server`].
pub const SHIPPED_SERVICE_PASSWORD: &str = "0123456789abcdef0123456789abcdef";
/// The password of the read-only user `subscriber` in [`shipped_server`].
pub const SHIPPED_SUBSCRIBER_PASSWORD: &str = "fedcba9876543210fedcba9876543210";
/// The key that encrypts the stored events in [`shipped_server`].
pub const SHIPPED_JS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// `nats-server` from PATH, or from the sbin directory Debian installs it in (not on a normal
/// user's PATH; `cargo xtask` finds it there too).
fn program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("nats-server"))
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

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &std::path::Path {
        &self.dir
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
        let child = Command::new(program())
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
            .expect("starting `nats-server` (on PATH or in an sbin directory?)");
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not listen on {addr} within 10 s:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shipped file without its store directory, which the command line gives instead (the
/// server refuses both), written next to the test's other files.
pub fn shipped_config() -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/nats.conf");
    let text = std::fs::read_to_string(&shipped).expect("deploy/nats/nats.conf");
    let store = "store_dir: /data";
    assert_eq!(text.matches(store).count(), 1, "one `{store}` in {text}");
    let copy = std::env::temp_dir().join(format!("fupin-nats-{}.conf", unique_token()));
    std::fs::write(&copy, text.replace(store, "")).expect("writing the config copy");
    copy
}

pub fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    l.local_addr().expect("local addr").port().to_string()
}

/// A server on the shipped file (`deploy/nats/nats.conf`) with [`SHIPPED_SERVICE_PASSWORD`] and
/// [`SHIPPED_SUBSCRIBER_PASSWORD`]; the port, monitoring port and store directory are given on
/// the command line (which overrides the file) so that tests run side by side.
pub async fn shipped_server() -> NatsServer {
    let config = shipped_config();
    let monitor = free_port();
    let nats = NatsServer::start_configured(
        &["-c", config.to_str().expect("UTF-8 path"), "-m", &monitor],
        &[
            ("NATS_SERVICE_PASSWORD", SHIPPED_SERVICE_PASSWORD),
            ("NATS_SUBSCRIBER_PASSWORD", SHIPPED_SUBSCRIBER_PASSWORD),
            ("NATS_JS_KEY", SHIPPED_JS_KEY),
        ],
    );
    nats.wait_listening().await;
    let _ = std::fs::remove_file(config);
    nats
}
