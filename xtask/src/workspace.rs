//! Where things are: the workspace, its state directory, built binaries and deploy data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// The operator CLI; `up` uses it to load the demo district when the package exists.
pub const CLI_PACKAGE: &str = "fupinctl";
pub const CLI_BIN: &str = "fupinctl";

/// Signs dev tokens when `AUTH_JWT_SECRET` is not set; never used outside a developer machine.
pub const DEV_JWT_SECRET: &str = "fupin-dev-secret-not-for-production";

pub struct Workspace {
    pub root: PathBuf,
    /// `<root>/.fupin`: logs and the NATS store (ignored by git).
    pub state: PathBuf,
    /// The cargo profile directory xtask itself was built into (`target/debug`), where
    /// `cargo build` also puts the service binaries.
    bin_dir: PathBuf,
}

impl Workspace {
    pub fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask lives inside the workspace")?
            .to_path_buf();
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        let bin_dir = exe
            .parent()
            .context("the xtask binary has a directory")?
            .to_path_buf();
        let ws = Self {
            state: root.join(".fupin"),
            root,
            bin_dir,
        };
        std::fs::create_dir_all(ws.logs_dir())
            .with_context(|| format!("creating {}", ws.logs_dir().display()))?;
        Ok(ws)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.state.join("logs")
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The cargo that runs us (cargo sets `CARGO` for `cargo run`), so toolchain overrides hold.
    pub fn cargo(&self) -> PathBuf {
        std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
    }

    pub fn cli_exists(&self) -> bool {
        Command::new(self.cargo())
            .current_dir(&self.root)
            .args(["pkgid", "--quiet", CLI_PACKAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// A path relative to the workspace root when it is inside it, for copy-paste hints.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Paths to the data every service and test reads: calendars, areas, policies.
    pub fn config_env(&self) -> Vec<(&'static str, String)> {
        config_env(&self.root)
    }

    /// What every service and the CLI get: data paths, NATS, the token key and, unless the
    /// caller set the real secrets, `FUPIN_DEV=1`. With `AUTH_JWT_PUBLIC_KEY_FILE` (tokens of
    /// an issuer's private key) no secret is added: the development one would let anyone sign
    /// tokens again (sign the CLI's with `FUPIN_SIGNING_KEY`).
    pub fn platform_env(&self, nats_url: &str) -> Vec<(&'static str, String)> {
        let mut env = self.config_env();
        env.push(("NATS_URL", nats_url.to_string()));
        if !set("AUTH_JWT_PUBLIC_KEY_FILE") {
            let secret =
                std::env::var("AUTH_JWT_SECRET").unwrap_or_else(|_| DEV_JWT_SECRET.to_string());
            env.push(("AUTH_JWT_SECRET", secret));
        }
        env.extend(dev_env());
        env
    }
}

/// Whether the variable is set to something.
fn set(key: &str) -> bool {
    std::env::var_os(key).is_some_and(|v| !v.is_empty())
}

/// The secrets the service binaries refuse to start without, unless `FUPIN_DEV=1`; each entry
/// is met by any one of its variables (tokens: the shared secret or the issuer's public keys).
pub const SECRETS: &[&[&str]] = &[
    &["AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY_FILE"],
    &["PII_KEYS"],
    &["PII_INDEX_KEY"],
];

/// `FUPIN_DEV=1` (the binaries then use their built-in development keys, with a warning) for
/// everything xtask starts that runs service binaries: `up`, the tests (tests/ starts the real
/// binaries) and the benchmark. Nothing when the caller set `FUPIN_DEV` themselves, or set all
/// the real secrets (the children inherit them).
pub fn dev_env() -> Vec<(&'static str, String)> {
    dev_env_for(
        set("FUPIN_DEV"),
        SECRETS.iter().all(|any| any.iter().any(|key| set(key))),
    )
}

fn dev_env_for(dev_set: bool, secrets_set: bool) -> Vec<(&'static str, String)> {
    if dev_set || secrets_set {
        Vec::new()
    } else {
        vec![("FUPIN_DEV", "1".to_string())]
    }
}

fn config_env(root: &Path) -> Vec<(&'static str, String)> {
    let deploy = root.join("deploy");
    let path = |p: PathBuf| p.display().to_string();
    vec![
        ("CALENDAR_DIR", path(deploy.join("calendar"))),
        ("AREAS_FILE", path(deploy.join("areas").join("410311.toml"))),
        ("POLICY_DIR", path(deploy.join("policy"))),
    ]
}

/// FNV-1a, written out because std's hasher may change between releases and this name must
/// stay the same for a given workspace.
pub fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_point_into_deploy() {
        let env = config_env(Path::new("/ws"));
        assert_eq!(
            env,
            vec![
                ("CALENDAR_DIR", "/ws/deploy/calendar".to_string()),
                ("AREAS_FILE", "/ws/deploy/areas/410311.toml".to_string()),
                ("POLICY_DIR", "/ws/deploy/policy".to_string()),
            ]
        );
    }

    #[test]
    fn dev_mode_unless_the_caller_decided() {
        assert_eq!(
            dev_env_for(false, false),
            vec![("FUPIN_DEV", "1".to_string())]
        );
        assert!(dev_env_for(true, false).is_empty());
        assert!(dev_env_for(false, true).is_empty());
    }

    #[test]
    fn short_hash_is_stable_and_short() {
        assert_eq!(short_hash("/work/main"), short_hash("/work/main"));
        assert_ne!(short_hash("/work/main"), short_hash("/work/other"));
        assert_eq!(short_hash("/work/main").len(), 8);
        // FNV-1a of the empty string is the offset basis.
        assert_eq!(short_hash(""), "cbf29ce4");
    }
}
