//! PostgreSQL and NATS for a developer machine: use the ones named by `DATABASE_URL` /
//! `NATS_URL`, reuse whatever already listens on our private ports, or start private ones.
//! Whatever was started here is stopped when the returned [`Infra`] is dropped.

mod nats;
mod postgres;

use std::process::{Command, Stdio};

use anyhow::{Result, bail};

pub use nats::Nats;
pub use postgres::Postgres;

use crate::proc;
use crate::signals::Interrupt;
use crate::workspace::Workspace;

/// What the caller will do with the infrastructure; decides which tools must be installed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Creates the service databases, so `psql` is needed even for an existing server.
    Up,
    /// Drops leftover test databases with `psql` when it is there (skipped when it is not).
    Test,
    /// Creates the service databases, like `Up`.
    Infra,
}

/// Test databases are removed only when nothing has touched them for this long: another
/// `cargo xtask test` may be running against the same server, and its newest databases are in
/// use even when no session shows it yet. (Leftover test streams are deleted by the tests
/// themselves, `fupin_platform::testing::prune_leftover_streams`, with the same age.)
pub const LEFTOVER_AGE_MINUTES: u64 = 10;

/// Field order is drop order: NATS is stopped before PostgreSQL.
pub struct Infra {
    pub nats: Nats,
    pub postgres: Postgres,
}

impl Infra {
    pub fn ensure(ws: &Workspace, purpose: Purpose, interrupt: &Interrupt) -> Result<Self> {
        let pg_plan = postgres::plan();
        let nats_plan = nats::plan();
        let mut missing = postgres::missing_packages(&pg_plan, purpose);
        missing.extend(nats::missing_packages(&nats_plan));
        install(&missing)?;
        let postgres = Postgres::ensure(pg_plan, ws, interrupt)?;
        let nats = Nats::ensure(nats_plan, ws, interrupt)?;
        Ok(Self { nats, postgres })
    }

    /// Drops the databases that earlier test runs left behind (a failing or interrupted test
    /// does not clean up after itself). Only names that tests generate are touched
    /// (`test_t<12 hex>`, `e2e_…`, `bench_intake_…`, `bench_plain_…`), never `intake`, and
    /// only those unused for [`LEFTOVER_AGE_MINUTES`]. Best effort: a failure is a warning.
    pub fn remove_test_leftovers(&self) {
        match self.postgres.drop_leftover_test_databases() {
            Ok(Cleanup::Done(0)) => {}
            Ok(Cleanup::Done(n)) => println!("xtask: dropped {n} leftover test databases"),
            Ok(Cleanup::Skipped(why)) => {
                println!("xtask: note: leftover test databases kept: {why}")
            }
            Err(err) => eprintln!("xtask: warning: dropping leftover test databases: {err:#}"),
        }
    }
}

/// What a leftover cleanup did.
pub enum Cleanup {
    /// Removed this many.
    Done(usize),
    /// Could not look, for this reason (not an error: e.g. no `psql`).
    Skipped(String),
}

/// Installs Debian packages with `apt-get`: directly when running as root, through `sudo -n`
/// when sudo works without a password; otherwise says what to install.
fn install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    let sudo = !proc::is_root();
    if sudo && !sudo_without_password() {
        bail!(
            "missing tools: install them with `sudo apt-get install -y {list}`, or point \
             DATABASE_URL / NATS_URL at servers you already run"
        );
    }
    let via = if sudo { " via sudo" } else { "" };
    println!("xtask: installing {list} (apt-get{via})");
    // Wait for a concurrent apt/dpkg run instead of failing on its lock.
    let lock_wait = ["-o", "DPkg::Lock::Timeout=600"];
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            // sudo resets the environment: pass DEBIAN_FRONTEND through env(1).
            let mut cmd = Command::new("sudo");
            cmd.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            cmd
        } else {
            let mut cmd = Command::new("apt-get");
            cmd.env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        };
        cmd.args(lock_wait).args(args);
        let status = cmd.status();
        match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => bail!("{cmd:?} failed ({status})"),
            Err(err) => bail!("running {cmd:?}: {err}"),
        }
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install)
}

/// Whether `sudo` runs commands here without asking for a password (`sudo -n true`).
fn sudo_without_password() -> bool {
    proc::find_program("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}
