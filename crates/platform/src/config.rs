//! Configuration from the environment, with defaults that work on a developer machine
//! (the private PostgreSQL and NATS that `cargo xtask up` starts).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;

use crate::pii::{DEV_PII_INDEX_KEY, DEV_PII_KEYS, PiiCipher};

/// What every service reads. Service-specific settings live in the service.
#[derive(Clone, Debug)]
pub struct BaseConfig {
    pub service_name: String,
    pub database_url: String,
    pub nats_url: String,
    pub grpc_addr: SocketAddr,
    /// Subjects are `<prefix>.<ctx>.v1.<Event>`; `fupin` in production, unique per test run.
    pub subject_prefix: String,
    pub stream_name: String,
    pub jwt_secret: String,
    /// Seals personal data at rest and keys its blind index (R-CR-11): `PII_KEYS` and
    /// `PII_INDEX_KEY`, see [`crate::pii`].
    pub pii: PiiCipher,
    /// Lets the admin RPC move this service's clock. Off unless `FUPIN_TEST_CLOCK=1`.
    pub test_clock: bool,
    pub json_logs: bool,
    pub calendar_dir: PathBuf,
    pub areas_file: PathBuf,
    pub policy_dir: PathBuf,
}

/// Development key used when `AUTH_JWT_SECRET` is unset; the service logs a warning.
pub const DEV_JWT_SECRET: &str = "fupin-dev-secret-not-for-production";

impl BaseConfig {
    /// Reads the standard variables; `default_db` and `default_port` are the service's own.
    pub fn from_env(
        service_name: &str,
        default_db: &str,
        default_port: u16,
    ) -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let grpc_addr = var("GRPC_ADDR")
            .unwrap_or_else(|| format!("127.0.0.1:{default_port}"))
            .parse()
            .context("GRPC_ADDR must be host:port")?;
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let path = |k: &str, rel: &str| {
            var(k)
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join(rel))
        };
        Ok(Self {
            service_name: service_name.to_owned(),
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:55432/{default_db}")),
            nats_url: var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:54222".to_owned()),
            grpc_addr,
            subject_prefix: var("EVENT_SUBJECT_PREFIX").unwrap_or_else(|| "fupin".to_owned()),
            stream_name: var("EVENT_STREAM").unwrap_or_else(|| "FUPIN".to_owned()),
            jwt_secret: var("AUTH_JWT_SECRET").unwrap_or_else(|| {
                eprintln!("warning: AUTH_JWT_SECRET unset, using the development key");
                DEV_JWT_SECRET.to_owned()
            }),
            pii: pii_from(var("PII_KEYS"), var("PII_INDEX_KEY"))?,
            test_clock: matches!(var("FUPIN_TEST_CLOCK").as_deref(), Some("1" | "true")),
            json_logs: matches!(var("LOG_FORMAT").as_deref(), Some("json")),
            calendar_dir: path("CALENDAR_DIR", "deploy/calendar"),
            areas_file: path("AREAS_FILE", "deploy/areas/410311.toml"),
            policy_dir: path("POLICY_DIR", "deploy/policy"),
        })
    }
}

/// Both PII settings or neither: keys without their index key (or the reverse) would silently
/// pair a production key with a development one.
fn pii_from(keys: Option<String>, index_key: Option<String>) -> anyhow::Result<PiiCipher> {
    let (keys, index_key) = match (keys, index_key) {
        (Some(k), Some(i)) => (k, i),
        (None, None) => {
            eprintln!("warning: PII_KEYS and PII_INDEX_KEY unset, using the development keys");
            (DEV_PII_KEYS.to_owned(), DEV_PII_INDEX_KEY.to_owned())
        }
        (Some(_), None) => anyhow::bail!("PII_KEYS is set but PII_INDEX_KEY is not"),
        (None, Some(_)) => anyhow::bail!("PII_INDEX_KEY is set but PII_KEYS is not"),
    };
    PiiCipher::from_config(&keys, &index_key).context("PII_KEYS / PII_INDEX_KEY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_keys_come_in_pairs() {
        let k = Some("k1:ZnVwaW4tZGV2LXBpaS1rZXktbm90LWZvci1wcm9kISE=".to_owned());
        let i = Some(DEV_PII_INDEX_KEY.to_owned());
        assert_eq!(
            pii_from(k.clone(), i.clone()).unwrap().current_key_id(),
            "k1"
        );
        assert_eq!(pii_from(None, None).unwrap().current_key_id(), "dev");
        assert!(pii_from(k, None).is_err());
        assert!(pii_from(None, i).is_err());
        assert!(pii_from(Some("k1:short".into()), Some(DEV_PII_INDEX_KEY.into())).is_err());
    }
}
