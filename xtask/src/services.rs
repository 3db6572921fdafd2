//! The platform's services: the table `up` drives, and the processes it runs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::proc;
use crate::signals::Interrupt;
use crate::workspace::Workspace;

pub struct Service {
    pub name: &'static str,
    pub package: &'static str,
    pub bin: &'static str,
    pub database: &'static str,
    pub port: u16,
}

/// Every service `up` builds, gives a database and starts. Adding a service is one entry
/// (next: credit-rating 50052/rating, risk-control 50053/risk, disbursement 50054,
/// industry 50055).
pub const SERVICES: &[Service] = &[Service {
    name: "intake",
    package: "fupin-intake",
    bin: "fupin-intake",
    database: "intake",
    port: 50051,
}];

const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

impl Service {
    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr())
    }

    /// The variable that tells the CLI where this service is: `INTAKE_ADDR`,
    /// `CREDIT_RATING_ADDR`, ...
    pub fn addr_env(&self) -> String {
        format!("{}_ADDR", self.name.to_uppercase().replace('-', "_"))
    }
}

/// `<SERVICE>_ADDR=http://127.0.0.1:<port>` for every service, for the CLI.
pub fn addr_env() -> Vec<(String, String)> {
    SERVICES
        .iter()
        .map(|service| (service.addr_env(), service.endpoint()))
        .collect()
}

/// A service's environment: the platform's, plus its own database, address and log level.
pub fn service_env(
    service: &Service,
    platform: &[(&'static str, String)],
    database_url: &str,
) -> Vec<(&'static str, String)> {
    let mut env = platform.to_vec();
    env.push(("DATABASE_URL", database_url.to_string()));
    env.push(("GRPC_ADDR", service.grpc_addr()));
    env.push((
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
    ));
    env
}

pub fn ensure_ports_free() -> Result<()> {
    for service in SERVICES {
        if proc::is_listening(service.port) {
            bail!(
                "{} is already taken (is another `cargo xtask up` running?)",
                service.grpc_addr()
            );
        }
    }
    Ok(())
}

struct Running {
    service: &'static Service,
    child: Child,
    log: PathBuf,
    forwarders: Vec<JoinHandle<()>>,
}

impl Running {
    /// Fails, showing the end of its log, when the service has exited.
    fn ensure_alive(&mut self) -> Result<()> {
        let Some(status) = self.child.try_wait()? else {
            return Ok(());
        };
        // Let the log catch up with the last words of the process.
        for forwarder in self.forwarders.drain(..) {
            let _ = forwarder.join();
        }
        bail!(
            "{} exited ({status})\n{}",
            self.service.name,
            proc::tail(&self.log, 40)
        )
    }
}

/// The services started by `up`; dropping it stops them.
#[derive(Default)]
pub struct Fleet {
    running: Vec<Running>,
}

impl Fleet {
    pub fn start(
        &mut self,
        ws: &Workspace,
        service: &'static Service,
        env: &[(&'static str, String)],
        forward_logs: bool,
    ) -> Result<()> {
        let program = ws.bin(service.bin);
        let log = ws.logs_dir().join(format!("{}.log", service.name));
        let (out, err) = proc::log_file(&log)?;
        let mut cmd = Command::new(&program);
        cmd.current_dir(&ws.root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: on Ctrl-C we stop services first, then NATS and PostgreSQL.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let prefix = forward_logs.then(|| format!("[{}]", service.name));
        let mut forwarders = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            forwarders.push(proc::forward(stdout, out, prefix.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            forwarders.push(proc::forward(stderr, err, prefix));
        }
        println!("xtask: started {} on {}", service.name, service.grpc_addr());
        self.running.push(Running {
            service,
            child,
            log,
            forwarders,
        });
        Ok(())
    }

    /// Waits until every service answers SERVING on grpc.health.v1 for the server as a whole.
    pub fn wait_healthy(
        &mut self,
        rt: &tokio::runtime::Runtime,
        interrupt: &Interrupt,
    ) -> Result<()> {
        for running in &mut self.running {
            let name = running.service.name;
            let deadline = Instant::now() + HEALTH_TIMEOUT;
            loop {
                running.ensure_alive()?;
                if rt.block_on(serving(running.service.endpoint())) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{name} did not report SERVING within {HEALTH_TIMEOUT:?}\n{}",
                        proc::tail(&running.log, 40)
                    );
                }
                interrupt.sleep(Duration::from_millis(300))?;
            }
        }
        Ok(())
    }

    /// Returns when interrupted; fails when a service exits on its own.
    pub fn watch(&mut self, interrupt: &Interrupt) -> Result<()> {
        while !interrupt.is_set() {
            for running in &mut self.running {
                running.ensure_alive()?;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for running in self.running.iter_mut().rev() {
            println!("xtask: stopping {}", running.service.name);
            proc::terminate(
                &mut running.child,
                running.service.name,
                Duration::from_secs(15),
            );
        }
    }
}

async fn serving(endpoint: String) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(endpoint) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => response.get_ref().status == ServingStatus::Serving as i32,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn services_do_not_collide() {
        let unique = |values: Vec<String>| values.iter().collect::<HashSet<_>>().len();
        let n = SERVICES.len();
        assert_eq!(unique(SERVICES.iter().map(|s| s.name.into()).collect()), n);
        assert_eq!(
            unique(SERVICES.iter().map(|s| s.package.into()).collect()),
            n
        );
        assert_eq!(
            unique(SERVICES.iter().map(|s| s.database.into()).collect()),
            n
        );
        assert_eq!(
            unique(SERVICES.iter().map(|s| s.port.to_string()).collect()),
            n
        );
        assert!(SERVICES.iter().all(|s| (50051..=50055).contains(&s.port)));
    }

    #[test]
    fn intake_is_on_its_default_port() {
        let intake = SERVICES.iter().find(|s| s.name == "intake").unwrap();
        assert_eq!(intake.grpc_addr(), "127.0.0.1:50051");
        assert_eq!(intake.endpoint(), "http://127.0.0.1:50051");
        assert_eq!(intake.addr_env(), "INTAKE_ADDR");
    }

    #[test]
    fn addr_env_names_follow_the_service_name() {
        let rating = Service {
            name: "credit-rating",
            package: "fupin-credit-rating",
            bin: "fupin-credit-rating",
            database: "rating",
            port: 50052,
        };
        assert_eq!(rating.addr_env(), "CREDIT_RATING_ADDR");
    }

    #[test]
    fn service_env_adds_database_and_address() {
        let intake = &SERVICES[0];
        let platform = vec![("NATS_URL", "nats://127.0.0.1:54222".to_string())];
        let env = service_env(
            intake,
            &platform,
            "postgres://postgres@127.0.0.1:55432/intake",
        );
        let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("NATS_URL"), Some("nats://127.0.0.1:54222"));
        assert_eq!(
            get("DATABASE_URL"),
            Some("postgres://postgres@127.0.0.1:55432/intake")
        );
        assert_eq!(get("GRPC_ADDR"), Some("127.0.0.1:50051"));
        assert!(get("RUST_LOG").is_some());
    }
}
