//! Configuration from the environment, with defaults that work on a developer machine
//! (the private PostgreSQL and NATS that `cargo xtask up` starts). Secrets have no defaults:
//! without `AUTH_JWT_SECRET`, `PII_KEYS` and `PII_INDEX_KEY` a service refuses to start, unless
//! `FUPIN_DEV=1` lets it use the development keys published in this source.

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
    /// `FUPIN_DEV=1`: secrets left unset fall back to the development keys.
    pub dev: bool,
    /// TLS on the gRPC port (`GRPC_TLS_CERT`, `GRPC_TLS_KEY`, optionally `GRPC_TLS_CLIENT_CA`);
    /// None serves plain HTTP/2.
    pub grpc_tls: Option<GrpcTls>,
    /// Lets the admin RPC move this service's clock. Off unless `FUPIN_TEST_CLOCK=1`.
    pub test_clock: bool,
    pub json_logs: bool,
    pub calendar_dir: PathBuf,
    pub areas_file: PathBuf,
    pub policy_dir: PathBuf,
}

/// Development key used when `AUTH_JWT_SECRET` is unset and `FUPIN_DEV=1`.
pub const DEV_JWT_SECRET: &str = "fupin-dev-secret-not-for-production";

/// The shortest `AUTH_JWT_SECRET` accepted outside development: HS256 keys shorter than the
/// hash (32 bytes) are weaker than the signature (RFC 7518 section 3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// PEM files of the gRPC port's TLS: the server's certificate chain and key, and, for mutual
/// TLS (partner banks' systems presenting client certificates), the CA that signs clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl BaseConfig {
    /// Reads the standard variables; `default_db` and `default_port` are the service's own.
    pub fn from_env(
        service_name: &str,
        default_db: &str,
        default_port: u16,
    ) -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let dev = flag(var("FUPIN_DEV").as_deref(), "FUPIN_DEV")?;
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
            jwt_secret: jwt_secret(var("AUTH_JWT_SECRET"), dev)?,
            pii: pii_from(var("PII_KEYS"), var("PII_INDEX_KEY"), dev)?,
            dev,
            grpc_tls: grpc_tls(
                var("GRPC_TLS_CERT"),
                var("GRPC_TLS_KEY"),
                var("GRPC_TLS_CLIENT_CA"),
            )?,
            test_clock: flag(var("FUPIN_TEST_CLOCK").as_deref(), "FUPIN_TEST_CLOCK")?,
            json_logs: matches!(var("LOG_FORMAT").as_deref(), Some("json")),
            calendar_dir: path("CALENDAR_DIR", "deploy/calendar"),
            areas_file: path("AREAS_FILE", "deploy/areas/410311.toml"),
            policy_dir: path("POLICY_DIR", "deploy/policy"),
        })
    }
}

/// A yes/no setting: unset, `0`/`false` or `1`/`true`; anything else is refused rather than
/// read as "no" (a mistyped `FUPIN_DEV=yes` would otherwise fail later for want of keys).
fn flag(value: Option<&str>, name: &str) -> anyhow::Result<bool> {
    match value {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => anyhow::bail!("{name} must be 1, true, 0 or false, not {other:?}"),
    }
}

/// The key material of the development PII key, whatever id a configuration gives it.
fn dev_pii_key_material() -> &'static str {
    DEV_PII_KEYS
        .split_once(':')
        .map_or(DEV_PII_KEYS, |(_, material)| material)
}

const DEV_HINT: &str =
    "set real secrets, or FUPIN_DEV=1 on a developer machine for the development keys";

/// The token-signing key: required outside development, at least [`MIN_JWT_SECRET_BYTES`]
/// long and never the published development key.
fn jwt_secret(secret: Option<String>, dev: bool) -> anyhow::Result<String> {
    match secret {
        None if dev => Ok(DEV_JWT_SECRET.to_owned()),
        None => anyhow::bail!("AUTH_JWT_SECRET is not set: {DEV_HINT}"),
        Some(s) if dev => Ok(s),
        Some(s) if s == DEV_JWT_SECRET => {
            anyhow::bail!("AUTH_JWT_SECRET is the published development key: {DEV_HINT}")
        }
        Some(s) if s.len() < MIN_JWT_SECRET_BYTES => anyhow::bail!(
            "AUTH_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand \
             -base64 48`)"
        ),
        Some(s) => Ok(s),
    }
}

/// Both PII settings or neither: keys without their index key (or the reverse) would silently
/// pair a production key with a development one. Neither is allowed only in development.
fn pii_from(
    keys: Option<String>,
    index_key: Option<String>,
    dev: bool,
) -> anyhow::Result<PiiCipher> {
    let (keys, index_key) = match (keys, index_key) {
        (Some(k), Some(i)) => {
            if !dev && (k.contains(dev_pii_key_material()) || i == DEV_PII_INDEX_KEY) {
                anyhow::bail!(
                    "PII_KEYS / PII_INDEX_KEY hold the published development keys: {DEV_HINT}"
                );
            }
            (k, i)
        }
        (None, None) if dev => (DEV_PII_KEYS.to_owned(), DEV_PII_INDEX_KEY.to_owned()),
        (None, None) => anyhow::bail!("PII_KEYS and PII_INDEX_KEY are not set: {DEV_HINT}"),
        (Some(_), None) => anyhow::bail!("PII_KEYS is set but PII_INDEX_KEY is not"),
        (None, Some(_)) => anyhow::bail!("PII_INDEX_KEY is set but PII_KEYS is not"),
    };
    PiiCipher::from_config(&keys, &index_key).context("PII_KEYS / PII_INDEX_KEY")
}

/// Certificate and key together or neither; a client CA only with them.
fn grpc_tls(
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
) -> anyhow::Result<Option<GrpcTls>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(GrpcTls {
            cert: cert.into(),
            key: key.into(),
            client_ca: client_ca.map(PathBuf::from),
        })),
        (None, None) if client_ca.is_some() => {
            anyhow::bail!("GRPC_TLS_CLIENT_CA is set but GRPC_TLS_CERT and GRPC_TLS_KEY are not")
        }
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!("GRPC_TLS_CERT is set but GRPC_TLS_KEY is not"),
        (None, Some(_)) => anyhow::bail!("GRPC_TLS_KEY is set but GRPC_TLS_CERT is not"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_keys_come_in_pairs() {
        let k = Some("k1:a2V5LW9uZS1mb3ItdGhlLXRlc3RzLS0tLS0tLS0tLS0=".to_owned());
        let i = Some("cHJvZHVjdGlvbi1pbmRleC1rZXktLS0tLS0tLS0tLS0=".to_owned());
        assert_eq!(
            pii_from(k.clone(), i.clone(), false)
                .unwrap()
                .current_key_id(),
            "k1"
        );
        assert_eq!(pii_from(None, None, true).unwrap().current_key_id(), "dev");
        assert!(pii_from(k.clone(), None, true).is_err());
        assert!(pii_from(None, i.clone(), true).is_err());
        assert!(pii_from(Some("k1:short".into()), i, true).is_err());
    }

    #[test]
    fn secrets_are_required_outside_development() {
        let err = |r: anyhow::Result<String>| format!("{:#}", r.unwrap_err());
        assert!(err(jwt_secret(None, false)).contains("AUTH_JWT_SECRET is not set"));
        assert!(err(jwt_secret(Some(DEV_JWT_SECRET.into()), false)).contains("development key"));
        assert!(err(jwt_secret(Some("x".repeat(31)), false)).contains("at least 32 bytes"));
        assert_eq!(
            jwt_secret(Some("x".repeat(32)), false).unwrap(),
            "x".repeat(32)
        );
        assert_eq!(jwt_secret(None, true).unwrap(), DEV_JWT_SECRET);
        let pii = |k: Option<&str>, i: Option<&str>, dev| {
            pii_from(k.map(str::to_owned), i.map(str::to_owned), dev).map(|_| ())
        };
        assert!(format!("{:#}", pii(None, None, false).unwrap_err()).contains("not set"));
        let published = pii(Some(DEV_PII_KEYS), Some(DEV_PII_INDEX_KEY), false).unwrap_err();
        assert!(format!("{published:#}").contains("development keys"));
        assert!(pii(Some(DEV_PII_KEYS), Some(DEV_PII_INDEX_KEY), true).is_ok());
    }

    #[test]
    fn flags_and_tls_files_are_read_strictly() {
        assert!(!flag(None, "F").unwrap());
        assert!(flag(Some("1"), "F").unwrap());
        assert!(!flag(Some("false"), "F").unwrap());
        assert!(flag(Some("yes"), "F").is_err());
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(grpc_tls(None, None, None).unwrap(), None);
        assert_eq!(
            grpc_tls(s("c.pem"), s("k.pem"), s("ca.pem")).unwrap(),
            Some(GrpcTls {
                cert: "c.pem".into(),
                key: "k.pem".into(),
                client_ca: Some("ca.pem".into()),
            })
        );
        assert!(grpc_tls(s("c.pem"), None, None).is_err());
        assert!(grpc_tls(None, s("k.pem"), None).is_err());
        assert!(grpc_tls(None, None, s("ca.pem")).is_err());
    }
}
