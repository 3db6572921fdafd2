//! A private NATS server with JetStream on 127.0.0.1:54222, or the one named by `NATS_URL`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::proc;
use crate::signals::Interrupt;
use crate::workspace::Workspace;

pub const PORT: u16 = 54222;
const LOCAL_URL: &str = "nats://127.0.0.1:54222";

pub enum Plan {
    External(String),
    Reuse,
    Start,
}

pub fn plan() -> Plan {
    match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Plan::External(url),
        _ if proc::is_listening(PORT) => Plan::Reuse,
        _ => Plan::Start,
    }
}

pub fn missing_packages(plan: &Plan) -> Vec<&'static str> {
    match plan {
        Plan::Start if proc::find_program("nats-server").is_none() => vec!["nats-server"],
        _ => vec![],
    }
}

pub struct Nats {
    url: String,
    origin: Origin,
}

enum Origin {
    External,
    Reused,
    Started { child: Child, log: PathBuf },
}

impl Nats {
    pub fn ensure(plan: Plan, ws: &Workspace, interrupt: &Interrupt) -> Result<Self> {
        let (url, origin) = match plan {
            Plan::External(url) => (url, Origin::External),
            Plan::Reuse => {
                anyhow::ensure!(
                    jetstream_enabled()?,
                    "a NATS server without JetStream is listening on 127.0.0.1:{PORT}; stop it \
                     or restart it with -js"
                );
                println!("xtask: reusing the NATS server already listening on {LOCAL_URL}");
                (LOCAL_URL.to_string(), Origin::Reused)
            }
            Plan::Start => (LOCAL_URL.to_string(), start(ws, interrupt)?),
        };
        Ok(Self { url, origin })
    }

    /// Whether the caller named the server (NATS_URL), which may be on another machine.
    pub fn is_external(&self) -> bool {
        matches!(self.origin, Origin::External)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::External => format!("{} (NATS_URL from the environment)", self.url),
            Origin::Reused => format!("{} (already running, reused)", self.url),
            Origin::Started { log, .. } => format!(
                "{} (JetStream; started by xtask, log {})",
                self.url,
                log.display()
            ),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Origin::Started { child, .. } = &mut self.origin {
            println!("xtask: stopping NATS");
            proc::terminate(child, "nats-server", Duration::from_secs(10));
        }
    }
}

fn start(ws: &Workspace, interrupt: &Interrupt) -> Result<Origin> {
    let program = proc::find_program("nats-server").context("nats-server not found")?;
    let store = ws.state.join("nats");
    std::fs::create_dir_all(&store)?;
    let log = ws.logs_dir().join("nats.log");
    let (out, err) = proc::log_file(&log)?;
    println!("xtask: starting NATS with JetStream on {LOCAL_URL}");
    let mut cmd = Command::new(program);
    cmd.args(["-js", "-a", "127.0.0.1", "-p", &PORT.to_string(), "-sd"])
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // Its own process group, so Ctrl-C reaches it only through us, after the services stopped.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("nats-server exited ({status})\n{}", proc::tail(&log, 30));
        }
        if proc::is_listening(PORT) {
            if jetstream_enabled()? {
                return Ok(Origin::Started { child, log });
            }
            proc::terminate(&mut child, "nats-server", Duration::from_secs(5));
            bail!(
                "nats-server started without JetStream\n{}",
                proc::tail(&log, 30)
            );
        }
        if Instant::now() > deadline {
            proc::terminate(&mut child, "nats-server", Duration::from_secs(5));
            bail!(
                "nats-server did not listen on {LOCAL_URL} within 20 s\n{}",
                proc::tail(&log, 30)
            );
        }
        if let Err(err) = interrupt.sleep(Duration::from_millis(100)) {
            proc::terminate(&mut child, "nats-server", Duration::from_secs(5));
            return Err(err);
        }
    }
}

/// Reads the INFO line a NATS server sends to every new client.
fn jetstream_enabled() -> Result<bool> {
    let addr = SocketAddr::from(([127, 0, 0, 1], PORT));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {LOCAL_URL}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .with_context(|| format!("reading the INFO line from {LOCAL_URL}"))?;
    Ok(info_has_jetstream(&line))
}

fn info_has_jetstream(line: &str) -> bool {
    line.starts_with("INFO ") && line.replace(' ', "").contains("\"jetstream\":true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_jetstream_in_info() {
        assert!(info_has_jetstream(
            r#"INFO {"server_id":"N1","version":"2.9.10","jetstream":true,"max_payload":1048576}"#
        ));
        assert!(!info_has_jetstream(
            r#"INFO {"server_id":"N1","version":"2.9.10","max_payload":1048576}"#
        ));
        assert!(!info_has_jetstream("-ERR 'whatever'"));
    }
}
