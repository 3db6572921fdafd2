//! PostgreSQL and NATS for a developer machine: use the ones named by `DATABASE_URL` /
//! `NATS_URL`, reuse whatever already listens on our private ports, or start private ones.
//! Whatever was started here is stopped when the returned [`Infra`] is dropped.

mod nats;
mod postgres;

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
    Test,
    Infra,
}

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
}

/// Installs Debian packages when running as root; otherwise says what to install.
fn install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !proc::is_root() {
        bail!(
            "missing tools: install them with `sudo apt-get install -y {list}`, or point \
             DATABASE_URL / NATS_URL at servers you already run"
        );
    }
    println!("xtask: installing {list} (apt-get)");
    // Wait for a concurrent apt/dpkg run instead of failing on its lock.
    let lock_wait = ["-o", "DPkg::Lock::Timeout=600"];
    let apt = |args: &[&str]| {
        let mut cmd = std::process::Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .args(lock_wait)
            .args(args);
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
