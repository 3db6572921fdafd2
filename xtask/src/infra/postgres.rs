//! A private PostgreSQL on 127.0.0.1:55432, or the server named by `DATABASE_URL`; and, for
//! benchmarks, a second private one with PostgreSQL's default (durable) settings on :55434.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Cleanup, LEFTOVER_AGE_MINUTES, Purpose};
use crate::proc;
use crate::signals::Interrupt;
use crate::workspace::{Workspace, short_hash};

pub const PORT: u16 = 55432;
const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:55432/postgres";
/// The durable instance (benchmarks only).
pub const DURABLE_PORT: u16 = 55434;
const DURABLE_URL: &str = "postgres://postgres@127.0.0.1:55434/postgres";

/// What a private instance is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Tests and local runs: fsync, synchronous commit and full-page writes off.
    Fast,
    /// Benchmarks that should see what a deployment sees: PostgreSQL's defaults.
    Durable,
}

impl Flavor {
    fn port(self) -> u16 {
        match self {
            Flavor::Fast => PORT,
            Flavor::Durable => DURABLE_PORT,
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Flavor::Fast => "pg",
            Flavor::Durable => "pg-durable",
        }
    }
}
/// Unix socket paths are limited to 107 bytes; longer directories get TCP only.
const MAX_SOCKET_DIR: usize = 90;

pub enum Plan {
    External(String),
    Reuse,
    Start,
}

pub fn plan() -> Plan {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Plan::External(url),
        _ if proc::is_listening(PORT) => Plan::Reuse,
        _ => Plan::Start,
    }
}

pub fn missing_packages(plan: &Plan, purpose: Purpose) -> Vec<&'static str> {
    match plan {
        Plan::Start if server_bin_dir().is_none() => vec!["postgresql"],
        Plan::External(_) | Plan::Reuse if purpose != Purpose::Test && psql().is_none() => {
            vec!["postgresql-client"]
        }
        _ => vec![],
    }
}

pub struct Postgres {
    /// A server URL whose user may create databases; its database part is replaced per use.
    url: String,
    origin: Origin,
}

enum Origin {
    External,
    Reused,
    Started(Instance),
}

impl Postgres {
    pub fn ensure(plan: Plan, ws: &Workspace, interrupt: &Interrupt) -> Result<Self> {
        let (url, origin) = match plan {
            Plan::External(url) => (url, Origin::External),
            Plan::Reuse => {
                println!("xtask: reusing the PostgreSQL already listening on 127.0.0.1:{PORT}");
                (LOCAL_URL.to_string(), Origin::Reused)
            }
            Plan::Start => (
                LOCAL_URL.to_string(),
                Origin::Started(Instance::start(ws, Flavor::Fast, interrupt)?),
            ),
        };
        Ok(Self { url, origin })
    }

    /// The durable instance: reused when something already listens on its port, else started
    /// (and stopped on drop).
    pub fn durable(ws: &Workspace, interrupt: &Interrupt) -> Result<Self> {
        if proc::is_listening(DURABLE_PORT) {
            println!("xtask: reusing the PostgreSQL already listening on 127.0.0.1:{DURABLE_PORT}");
            return Ok(Self {
                url: DURABLE_URL.to_string(),
                origin: Origin::Reused,
            });
        }
        Ok(Self {
            url: DURABLE_URL.to_string(),
            origin: Origin::Started(Instance::start(ws, Flavor::Durable, interrupt)?),
        })
    }

    /// What tests get: the server URL as given (tests create their own databases from it).
    pub fn test_url(&self) -> &str {
        &self.url
    }

    pub fn database_url(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    /// The `psql` that talks to this server: the started instance's own, else any.
    fn psql(&self) -> Option<PathBuf> {
        match &self.origin {
            Origin::Started(instance) => Some(instance.bin_dir.join("psql")),
            Origin::External | Origin::Reused => psql(),
        }
    }

    pub fn create_database(&self, name: &str) -> Result<()> {
        let psql = self.psql().context("psql not found")?;
        let output = Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.database_url("postgres"))
            .arg("-c")
            .arg(format!("create database \"{name}\""))
            .output()
            .context("running psql")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.contains("already exists") {
            return Ok(());
        }
        bail!("creating database {name} failed: {stderr}")
    }

    /// Drops the databases earlier test runs left behind: names the tests generate, no session
    /// connected, created at least [`LEFTOVER_AGE_MINUTES`] ago, so a concurrent run's newest
    /// databases are kept. Only as a superuser, who may read the files that tell their age.
    /// A plain `drop database` (no `force`) fails for a database a session has just joined;
    /// such failures are ignored.
    pub fn drop_leftover_test_databases(&self) -> Result<Cleanup> {
        let Some(psql) = self.psql() else {
            return Ok(Cleanup::Skipped(
                "psql not found (apt-get install postgresql-client)".to_string(),
            ));
        };
        let mut child = Command::new(psql)
            .args(["-X", "-v", "ON_ERROR_STOP=0", "-d"])
            .arg(&self.url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running psql")?;
        let script = leftover_databases_script();
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(script.as_bytes())
                .context("writing to psql")?;
        }
        let output = child.wait_with_output().context("running psql")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let dropped = stdout
            .lines()
            .filter(|l| l.trim() == "DROP DATABASE")
            .count();
        if !output.status.success() {
            bail!("psql failed ({}): {}", output.status, stderr.trim());
        }
        // Expected: a database someone connected to meanwhile, or one of another owner.
        let unexpected: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("ERROR:"))
            .filter(|l| {
                !l.contains("is being accessed by other users") && !l.contains("must be owner")
            })
            .collect();
        if !unexpected.is_empty() {
            bail!("dropped {dropped}, then: {}", unexpected.join("; "));
        }
        Ok(Cleanup::Done(dropped))
    }

    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::External => "DATABASE_URL from the environment".to_string(),
            Origin::Reused => format!("{} (already running, reused)", self.url),
            Origin::Started(instance) => format!(
                "{} (started by xtask; data {}, log {})",
                self.url,
                instance.data.display(),
                instance.log.display()
            ),
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Origin::Started(instance) = &self.origin {
            instance.stop();
        }
    }
}

/// A data directory and the server running on it, owned by the `postgres` user when we are
/// root (PostgreSQL refuses to run as root).
struct Instance {
    flavor: Flavor,
    bin_dir: PathBuf,
    base: PathBuf,
    data: PathBuf,
    log: PathBuf,
    as_postgres: bool,
}

impl Instance {
    fn start(ws: &Workspace, flavor: Flavor, interrupt: &Interrupt) -> Result<Self> {
        let bin_dir = server_bin_dir().context("PostgreSQL server binaries not found")?;
        let as_postgres = proc::is_root();
        // As root the data must live where `postgres` can reach it; the workspace may sit in a
        // directory it cannot enter.
        let base = if as_postgres {
            PathBuf::from(format!(
                "/var/tmp/fupin-{}",
                short_hash(&ws.root.display().to_string())
            ))
        } else {
            ws.state.clone()
        };
        let instance = Self {
            flavor,
            data: base.join(flavor.dir()),
            log: base.join(match flavor {
                Flavor::Fast => "postgres.log",
                Flavor::Durable => "postgres-durable.log",
            }),
            bin_dir,
            base,
            as_postgres,
        };
        instance.prepare()?;
        println!(
            "xtask: starting PostgreSQL on 127.0.0.1:{} (data {})",
            flavor.port(),
            instance.data.display()
        );
        let started = proc::output(
            instance
                .command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(&instance.data)
                .arg("-l")
                .arg(&instance.log)
                .args(["-w", "-t", "60", "-s"]),
        );
        if let Err(err) = started {
            bail!("{err:#}\n{}", proc::tail(&instance.log, 30));
        }
        instance.wait_ready(interrupt)?;
        Ok(instance)
    }

    /// Creates the data directory on first use and (re)writes our settings on every start.
    fn prepare(&self) -> Result<()> {
        let socket_dir = self.base.join(format!("{}-socket", self.flavor.dir()));
        for dir in [&self.base, &socket_dir] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            self.give_to_postgres(dir)?;
        }
        if !self.data.join("PG_VERSION").exists() {
            if self.data.exists() {
                // Left over from an initdb that did not finish.
                fs::remove_dir_all(&self.data)?;
            }
            println!(
                "xtask: creating a PostgreSQL cluster in {}",
                self.data.display()
            );
            proc::output(
                self.command("initdb")
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                    .args(["--locale=C", "--no-sync", "--no-instructions"]),
            )?;
            let conf = self.data.join("postgresql.conf");
            let mut text = fs::read_to_string(&conf)?;
            text.push_str("\ninclude = 'fupin.conf'\n");
            fs::write(&conf, text)?;
        }
        let socket_dir = (socket_dir.as_os_str().len() <= MAX_SOCKET_DIR).then_some(socket_dir);
        let fupin_conf = self.data.join("fupin.conf");
        fs::write(&fupin_conf, settings(self.flavor, socket_dir.as_deref()))?;
        self.give_to_postgres(&fupin_conf)
    }

    fn wait_ready(&self, interrupt: &Interrupt) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin_dir.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.flavor.port().to_string(),
                ])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not accept connections on 127.0.0.1:{} within 30 s\n{}",
                    self.flavor.port(),
                    proc::tail(&self.log, 30)
                );
            }
            interrupt.sleep(Duration::from_millis(200))?;
        }
    }

    fn stop(&self) {
        println!("xtask: stopping PostgreSQL");
        let stopped = proc::output(
            self.command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-s"]),
        );
        if let Err(err) = stopped {
            eprintln!("xtask: {err:#}");
        }
    }

    /// A PostgreSQL tool, run as `postgres` when we are root, from a directory it can enter.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin_dir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut cmd =
                Command::new(proc::find_program("runuser").unwrap_or_else(|| "runuser".into()));
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        // Its own process group: a Ctrl-C in the terminal must not kill the server behind
        // our back; we stop it ourselves, after the services.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.current_dir(&self.base);
        cmd
    }

    fn give_to_postgres(&self, path: &Path) -> Result<()> {
        if self.as_postgres {
            proc::output(Command::new("chown").arg("postgres:postgres").arg(path))?;
        }
        Ok(())
    }
}

/// Server settings. The fast (dev/test) instance trades durability for speed: fsync,
/// synchronous commit and full-page writes off; never use it for data you want to keep. The
/// durable (benchmark) instance keeps PostgreSQL's defaults for all three.
fn settings(flavor: Flavor, socket_dir: Option<&Path>) -> String {
    let socket_dir = socket_dir.map_or(String::new(), |dir| {
        dir.display().to_string().replace('\'', "''")
    });
    let port = flavor.port();
    let common = format!(
        "# Written by `cargo xtask` before every start; edits are overwritten.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         max_connections = 400\n"
    );
    match flavor {
        Flavor::Fast => format!(
            "{common}\
             # A dev/test instance: fast, not durable.\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n"
        ),
        Flavor::Durable => format!(
            "{common}\
             # A benchmark instance: PostgreSQL's durable defaults (fsync, synchronous commit and\n\
             # full-page writes on).\n"
        ),
    }
}

/// The names tests give their databases: `test_` (TestDb), `e2e_` (tests/), `bench_intake_`
/// and `bench_plain_` (fupin-bench), each followed by `t` and 12 hex digits.
const TEST_DATABASE_PATTERN: &str = "^(test|e2e|bench_intake|bench_plain)_t[0-9a-f]{12}$";

/// The roles the e2e suite's databases are owned by: named as their database.
const TEST_ROLE_PATTERN: &str = "^e2e_t[0-9a-f]{12}$";

/// A psql script that drops every leftover test database, one `drop database` each
/// (`\gexec`), then the e2e roles that no longer own one, each in its own transaction, going
/// on past the ones that fail. The age test reads the database's files (`pg_stat_file`), which
/// only a superuser may: anyone else drops nothing, since a concurrent run's database has no
/// session between its creation and its first connection, and only its age tells it from a
/// leftover.
fn leftover_databases_script() -> String {
    let select = "select format('drop database if exists %I', d.datname)\n\
                  from pg_database d\n\
                  where d.datname ~ '{pattern}'\n\
                  and not exists (select 1 from pg_stat_activity a where a.datid = d.oid)\n";
    let select = select.replace("{pattern}", TEST_DATABASE_PATTERN);
    // The e2e suite's roles (`create_owned_database`) each own their database from the moment
    // they exist: one that owns none is a leftover whose database is gone.
    let roles = format!(
        "select format('drop role if exists %I', r.rolname)\n\
         from pg_roles r\n\
         where r.rolname ~ '{TEST_ROLE_PATTERN}'\n\
         and not exists (select 1 from pg_database d where d.datdba = r.oid)\n\
         \\gexec\n"
    );
    format!(
        "select rolsuper as fupin_superuser from pg_roles where rolname = current_user \\gset\n\
         \\if :fupin_superuser\n\
         {select}\
         and coalesce((pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification\n\
         < now() - interval '{LEFTOVER_AGE_MINUTES} minutes', false)\n\
         \\gexec\n\
         {roles}\
         \\else\n\
         \\echo 'not a superuser: leftover test databases kept (their age cannot be read)'\n\
         \\endif\n"
    )
}

/// Replaces the database part of a PostgreSQL URL, keeping user, host and query parameters.
pub fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |i| &url[authority_end + i..]);
    format!("{}/{database}{query}", &url[..authority_end])
}

fn psql() -> Option<PathBuf> {
    proc::find_program("psql").or_else(|| {
        server_bin_dir()
            .map(|dir| dir.join("psql"))
            .filter(|p| p.is_file())
    })
}

/// The newest directory holding the server tools: `pg_config --bindir`, Debian's
/// `/usr/lib/postgresql/<version>/bin`, or wherever `initdb` is on the PATH.
fn server_bin_dir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    sort_newest_first(&mut debian);
    let on_path = proc::find_program("initdb").and_then(|p| p.parent().map(Path::to_path_buf));
    from_pg_config
        .into_iter()
        .chain(debian)
        .chain(on_path)
        .find(|dir| {
            ["initdb", "pg_ctl", "pg_isready"]
                .iter()
                .all(|tool| dir.join(tool).is_file())
        })
}

/// Sorts `<prefix>/<version>/bin` paths by version, newest first (`15` before `9.6`).
fn sort_newest_first(dirs: &mut [PathBuf]) {
    let version = |dir: &PathBuf| -> Vec<u32> {
        dir.parent()
            .and_then(Path::file_name)
            .map(|name| {
                name.to_string_lossy()
                    .split('.')
                    .map(|part| part.parse().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    };
    dirs.sort_by_key(|dir| std::cmp::Reverse(version(dir)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "intake"),
            "postgres://postgres@127.0.0.1:55432/intake"
        );
    }

    #[test]
    fn adds_a_database_when_there_is_none() {
        assert_eq!(
            with_database("postgres://u:p@db:5432", "risk"),
            "postgres://u:p@db:5432/risk"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5432/", "risk"),
            "postgres://u:p@db:5432/risk"
        );
    }

    #[test]
    fn keeps_query_parameters() {
        assert_eq!(
            with_database("postgresql://u@db/app?sslmode=require", "rating"),
            "postgresql://u@db/rating?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://u@db?sslmode=require", "rating"),
            "postgresql://u@db/rating?sslmode=require"
        );
    }

    #[test]
    fn settings_are_for_a_fast_local_instance() {
        let text = settings(Flavor::Fast, Some(Path::new("/var/tmp/fupin-x/pg-socket")));
        for line in [
            "listen_addresses = '127.0.0.1'",
            "port = 55432",
            "unix_socket_directories = '/var/tmp/fupin-x/pg-socket'",
            "max_connections = 400",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(settings(Flavor::Fast, None).contains("unix_socket_directories = ''"));
        assert!(settings(Flavor::Fast, Some(Path::new("/it's"))).contains("'/it''s'"));
    }

    #[test]
    fn the_durable_instance_keeps_the_defaults_on_its_own_port() {
        let text = settings(Flavor::Durable, None);
        assert!(text.contains("port = 55434"), "{text}");
        for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
            assert!(
                !text.lines().any(|l| l.starts_with(setting)),
                "{setting} must keep its default in\n{text}"
            );
        }
    }

    #[test]
    fn leftover_script_drops_only_old_unused_test_databases() {
        let script = leftover_databases_script();
        let (superuser, other) = script.split_once("\\else").unwrap();
        assert!(superuser.contains("pg_stat_file"), "{script}");
        assert!(superuser.contains("interval '10 minutes'"), "{script}");
        // Anyone else cannot tell a leftover from a concurrent run's newest database: nothing.
        assert!(!other.contains("drop database"), "{script}");
        assert_eq!(script.matches(TEST_DATABASE_PATTERN).count(), 1);
        assert_eq!(script.matches("pg_stat_activity").count(), 1);
        assert_eq!(script.matches("\\gexec").count(), 2);
        // Roles only once their databases are gone, and only by a superuser.
        assert!(superuser.contains("drop role"), "{script}");
        assert!(!other.contains("drop role"), "{script}");
        assert!(script.find("drop database") < script.find("drop role"));
        assert!(!script.contains("force"), "{script}");
    }

    #[test]
    fn newest_postgres_first() {
        let mut dirs: Vec<PathBuf> = ["9.6", "15", "13", "16"]
            .iter()
            .map(|v| Path::new("/usr/lib/postgresql").join(v).join("bin"))
            .collect();
        sort_newest_first(&mut dirs);
        let order: Vec<String> = dirs
            .iter()
            .map(|d| {
                d.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(order, ["16", "15", "13", "9.6"]);
    }
}
