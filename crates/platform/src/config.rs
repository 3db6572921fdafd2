//! Configuration from the environment, with defaults that work on a developer machine
//! (the private PostgreSQL and NATS that `cargo xtask up` starts). Secrets have no defaults:
//! without `AUTH_JWT_SECRET` (or `AUTH_JWT_PUBLIC_KEY_FILE`), `PII_KEYS` and `PII_INDEX_KEY` a
//! service refuses to start, unless `FUPIN_DEV=1` lets it use the development keys published
//! in this source.

use std::{net::SocketAddr, ops::RangeInclusive, path::PathBuf};

use anyhow::Context;

use crate::{
    auth::{MAX_LIFETIME_LIMIT_SECS, TokenKeys},
    pii::{DEV_PII_INDEX_KEY, DEV_PII_KEYS, PiiCipher},
};

/// What every service reads. Service-specific settings live in the service. Its `Debug` leaves
/// out the secrets and the credentials in URLs.
#[derive(Clone)]
pub struct BaseConfig {
    pub service_name: String,
    pub database_url: String,
    pub nats_url: String,
    pub grpc_addr: SocketAddr,
    /// Subjects are `<prefix>.<ctx>.v1.<Event>`; `fupin` in production, unique per test run.
    pub subject_prefix: String,
    pub stream_name: String,
    /// What bearer tokens are verified with: `AUTH_JWT_SECRET` (HS256) and/or the public keys
    /// in `AUTH_JWT_PUBLIC_KEY_FILE`.
    pub token_keys: TokenKeys,
    /// Seals personal data at rest and keys its blind index (R-CR-11): `PII_KEYS` and
    /// `PII_INDEX_KEY`, see [`crate::pii`].
    pub pii: PiiCipher,
    /// `FUPIN_DEV=1`: secrets left unset fall back to the development keys.
    pub dev: bool,
    /// What the service should log once its logger runs (e.g. a development key kept for
    /// reading only).
    pub warnings: Vec<String>,
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
        let json_logs = log_format(var("LOG_FORMAT").as_deref())?;
        log_filter(var("RUST_LOG").as_deref())?;
        let insecure = [
            "OTEL_EXPORTER_OTLP_INSECURE",
            "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
        ]
        .iter()
        .any(|k| var(k).is_some_and(|v| v.eq_ignore_ascii_case("true")));
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            otlp_endpoint(name, var(name).as_deref(), insecure)?;
        }
        let dev = flag(var("FUPIN_DEV").as_deref(), "FUPIN_DEV")?;
        let grpc_addr = var("GRPC_ADDR")
            .unwrap_or_else(|| format!("127.0.0.1:{default_port}"))
            .parse()
            .context("GRPC_ADDR must be an IP address and a port, e.g. 0.0.0.0:50051")?;
        dev_only_on_loopback(dev, grpc_addr)?;
        let test_clock = flag(var("FUPIN_TEST_CLOCK").as_deref(), "FUPIN_TEST_CLOCK")?;
        test_clock_only_on_loopback(test_clock, grpc_addr)?;
        // Secrets in the order the README lists them: a start refused names the first missing.
        let token_keys = token_keys(
            var("AUTH_JWT_SECRET"),
            var("AUTH_JWT_PUBLIC_KEY_FILE").map(PathBuf::from),
            dev,
        )?
        .expecting(
            var("AUTH_JWT_ISSUER").as_deref(),
            var("AUTH_JWT_AUDIENCE").as_deref(),
        )
        .lifetime_at_most(max_token_hours(var("AUTH_JWT_MAX_LIFETIME_HOURS").as_deref())? * 3600);
        let (pii, warnings) = pii_from(
            var("PII_KEYS"),
            var("PII_INDEX_KEY"),
            dev,
            flag(
                var("PII_INDEX_KEY_DEV_ACCEPTED").as_deref(),
                "PII_INDEX_KEY_DEV_ACCEPTED",
            )?,
        )?;
        let subject_prefix = subject_prefix(var("EVENT_SUBJECT_PREFIX"))?;
        let stream_name = stream_name(var("EVENT_STREAM"))?;
        let nats_url = var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:54222".to_owned());
        // Read here so that a malformed one stops the start before anything is done.
        crate::events::nats_options(&nats_url).context("NATS_URL")?;
        Ok(Self {
            service_name: service_name.to_owned(),
            database_url: database_url(var("DATABASE_URL"), default_db)?,
            nats_url,
            grpc_addr,
            subject_prefix,
            stream_name,
            token_keys,
            pii,
            dev,
            warnings,
            grpc_tls: grpc_tls(
                var("GRPC_TLS_CERT"),
                var("GRPC_TLS_KEY"),
                var("GRPC_TLS_CLIENT_CA"),
            )?,
            test_clock,
            json_logs,
            calendar_dir: reference_path("CALENDAR_DIR", "deploy/calendar"),
            areas_file: reference_path("AREAS_FILE", "deploy/areas/410311.toml"),
            policy_dir: reference_path("POLICY_DIR", "deploy/policy"),
        })
    }
}

/// A reference-data path as the services read it: `key`'s value when set, else `rel` under
/// the working directory when it has a `deploy/` (an installed binary beside its deploy
/// files), else under the source tree the binary was built from (`cargo run` from any
/// directory of the checkout). One root for the calendar, the areas and the policy, so they
/// never come from different places.
pub fn reference_path(key: &str, rel: &str) -> PathBuf {
    reference_path_and_origin(key, rel).0
}

/// [`reference_path`], and which of its rules chose it, in words (for `fupinctl calendar
/// check`, which finds a directory as a service started from the same shell would).
pub fn reference_path_and_origin(key: &str, rel: &str) -> (PathBuf, String) {
    if let Some(value) = std::env::var(key).ok().filter(|v| !v.is_empty()) {
        return (PathBuf::from(value), format!("from {key}"));
    }
    if PathBuf::from("deploy").is_dir() {
        return (
            PathBuf::from(".").join(rel),
            format!("{key} unset: {rel} under the working directory"),
        );
    }
    (
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel),
        format!(
            "{key} unset and no deploy/ here: {rel} of the source tree this binary was built from"
        ),
    )
}

/// `LOG_FORMAT`: `json`, or `text` (the default, human-readable); anything else is a typo
/// that would leave a container's log collector reading lines it cannot parse.
fn log_format(value: Option<&str>) -> anyhow::Result<bool> {
    match value {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => anyhow::bail!("LOG_FORMAT must be json or text, not {other:?}"),
    }
}

/// `RUST_LOG`: a log filter; one that does not parse would silently log at `info`.
fn log_filter(value: Option<&str>) -> anyhow::Result<()> {
    if let Some(filter) = value {
        tracing_subscriber::EnvFilter::try_new(filter)
            .with_context(|| format!("RUST_LOG {filter:?} is not a log filter"))?;
    }
    Ok(())
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `name`): a plaintext
/// `http://` URL of a collector (OTLP over TLS is not built), or one without a scheme when
/// `OTEL_EXPORTER_OTLP_INSECURE` is true (the exporter then adds `http://`). Checked here so
/// that a wrong one names the variable; the value is not repeated (it may hold credentials).
fn otlp_endpoint(name: &str, value: Option<&str>, insecure: bool) -> anyhow::Result<()> {
    let Some(endpoint) = value else {
        return Ok(());
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| anyhow::anyhow!("{name} is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(()),
        (None, Some(_)) if insecure => Ok(()),
        (Some("https"), _) => anyhow::bail!(
            "{name}: OTLP over TLS is not built; run the collector beside the service and give \
             its http:// URL"
        ),
        _ => anyhow::bail!(
            "{name} must be an http:// URL with a host, e.g. http://otel-collector:4317 (or \
             host:port with OTEL_EXPORTER_OTLP_INSECURE=true)"
        ),
    }
}

/// `DATABASE_URL`: a PostgreSQL URL (`postgres://` or `postgresql://`), the service's own
/// database on the local test instance when unset.
fn database_url(value: Option<String>, default_db: &str) -> anyhow::Result<String> {
    let Some(url) = value else {
        return Ok(format!("postgres://postgres@127.0.0.1:55432/{default_db}"));
    };
    let scheme = url.trim_start().to_ascii_lowercase();
    if !(scheme.starts_with("postgres://") || scheme.starts_with("postgresql://")) {
        anyhow::bail!("DATABASE_URL must be a postgres:// or postgresql:// URL");
    }
    url.parse::<sqlx::postgres::PgConnectOptions>()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    Ok(url)
}

/// `EVENT_SUBJECT_PREFIX`: one subject token (the first of every event subject), `fupin` when
/// unset. A dot, a wildcard or a space would put the events under other subjects than the
/// consumers, the stream and the NATS permissions expect.
fn subject_prefix(value: Option<String>) -> anyhow::Result<String> {
    one_token("EVENT_SUBJECT_PREFIX", "one subject token", value, "fupin")
}

/// `EVENT_STREAM`: a JetStream stream name (no dots, wildcards or spaces), `FUPIN` when unset.
fn stream_name(value: Option<String>) -> anyhow::Result<String> {
    one_token("EVENT_STREAM", "a stream name", value, "FUPIN")
}

/// Setting `name`, `default` when unset: letters, digits, `-` and `_` only.
fn one_token(
    name: &str,
    what: &str,
    value: Option<String>,
    default: &str,
) -> anyhow::Result<String> {
    let value = value.unwrap_or_else(|| default.to_owned());
    anyhow::ensure!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{name} must be {what} (letters, digits, - and _), not {value:?}"
    );
    Ok(value)
}

/// `AUTH_JWT_MAX_LIFETIME_HOURS`: the longest a token may live from `iat` to `exp`, 1 hour to
/// a year, a day when unset.
fn max_token_hours(value: Option<&str>) -> anyhow::Result<i64> {
    let hours = whole(
        "AUTH_JWT_MAX_LIFETIME_HOURS",
        value,
        (crate::auth::DEFAULT_MAX_LIFETIME_SECS / 3600) as u64,
        "number of hours",
        1..=(MAX_LIFETIME_LIMIT_SECS / 3600) as u64,
    )?;
    Ok(hours as i64)
}

/// A whole number setting `name` within `range`, `default` when unset. Anything else stops the
/// start, naming the variable: a mistyped value would otherwise become the default, or a timer
/// that never fires.
pub fn whole(
    name: &str,
    value: Option<&str>,
    default: u64,
    what: &str,
    range: RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    match value.map(|v| v.trim().parse::<u64>()) {
        None => Ok(default),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => anyhow::bail!(
            "{name}={:?}: must be a whole {what} from {} to {}",
            fupin_kernel::text::excerpt(value.unwrap_or_default()),
            range.start(),
            range.end()
        ),
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

/// The keys tokens are verified with. With `AUTH_JWT_PUBLIC_KEY_FILE` the issuer's public keys,
/// plus HS256 only when `AUTH_JWT_SECRET` is set too (while moving from one to the other); the
/// development secret is never added to public keys. Without it, the HS256 secret as
/// [`jwt_secret`] requires it.
fn token_keys(
    secret: Option<String>,
    public_key_file: Option<PathBuf>,
    dev: bool,
) -> anyhow::Result<TokenKeys> {
    let public = public_key_file
        .map(|path| {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("AUTH_JWT_PUBLIC_KEY_FILE {}", path.display()))?;
            TokenKeys::public_pem(&pem)
                .with_context(|| format!("AUTH_JWT_PUBLIC_KEY_FILE {}", path.display()))
        })
        .transpose()?;
    match (secret, public) {
        (None, Some(public)) => Ok(public),
        (secret, public) => {
            let hs256 = TokenKeys::hs256(&jwt_secret(secret, dev)?);
            Ok(match public {
                Some(public) => hs256.and(public),
                None => hs256,
            })
        }
    }
}

/// The token-signing key: required outside development, at least [`MIN_JWT_SECRET_BYTES`]
/// long and never the published development key.
fn jwt_secret(secret: Option<String>, dev: bool) -> anyhow::Result<String> {
    match secret {
        None if dev => Ok(DEV_JWT_SECRET.to_owned()),
        None => {
            anyhow::bail!("AUTH_JWT_SECRET is not set (nor AUTH_JWT_PUBLIC_KEY_FILE): {DEV_HINT}")
        }
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
/// Outside development the published development keys are refused, except where a deployment
/// that once ran on them needs them to move off: the development PII key after the current
/// one (kept for reading while its values are re-sealed), and the development index key when
/// `PII_INDEX_KEY_DEV_ACCEPTED=1` says the blind index was built with it (no tool re-keys an
/// index yet). Both are then warned about at every start.
fn pii_from(
    keys: Option<String>,
    index_key: Option<String>,
    dev: bool,
    dev_index_accepted: bool,
) -> anyhow::Result<(PiiCipher, Vec<String>)> {
    let mut warnings = Vec::new();
    let (keys, index_key) = match (keys, index_key) {
        (Some(k), Some(i)) => {
            if !dev {
                let mut entries = k.split(',').map(str::trim).filter(|e| !e.is_empty());
                let published = |entry: &str| {
                    entry
                        .split_once(':')
                        .is_some_and(|(_, key)| key.trim() == dev_pii_key_material())
                };
                if entries.next().is_some_and(published) {
                    anyhow::bail!(
                        "the current PII key (first in PII_KEYS) is the published development \
                         key: {DEV_HINT}"
                    );
                }
                if let Some(old) = entries.find(|e| published(e)) {
                    let id = old.split_once(':').map_or(old, |(id, _)| id.trim());
                    warnings.push(format!(
                        "PII_KEYS keeps the published development key {id:?} for reading: \
                         retire it (PII_RETIRING_KEYS={id}) and remove it once re-sealed"
                    ));
                }
                if i.trim() == DEV_PII_INDEX_KEY {
                    if !dev_index_accepted {
                        anyhow::bail!(
                            "PII_INDEX_KEY is the published development key: {DEV_HINT} \
                             (PII_INDEX_KEY_DEV_ACCEPTED=1 if this database's blind index was \
                             built with it)"
                        );
                    }
                    warnings.push(
                        "PII_INDEX_KEY is the published development key \
                         (PII_INDEX_KEY_DEV_ACCEPTED=1): anyone with the database can test \
                         resident ids against its blind index"
                            .to_owned(),
                    );
                }
            }
            (k, i)
        }
        (None, None) if dev => (DEV_PII_KEYS.to_owned(), DEV_PII_INDEX_KEY.to_owned()),
        (None, None) => anyhow::bail!("PII_KEYS and PII_INDEX_KEY are not set: {DEV_HINT}"),
        (Some(_), None) => anyhow::bail!("PII_KEYS is set but PII_INDEX_KEY is not"),
        (None, Some(_)) => anyhow::bail!("PII_INDEX_KEY is set but PII_KEYS is not"),
    };
    let cipher = PiiCipher::from_config(&keys, &index_key).context("PII_KEYS / PII_INDEX_KEY")?;
    Ok((cipher, warnings))
}

impl std::fmt::Debug for BaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = crate::events::redacted;
        f.debug_struct("BaseConfig")
            .field("service_name", &self.service_name)
            .field("database_url", &hidden(&self.database_url))
            .field("nats_url", &hidden(&self.nats_url))
            .field("grpc_addr", &self.grpc_addr)
            .field("subject_prefix", &self.subject_prefix)
            .field("stream_name", &self.stream_name)
            .field("token_keys", &self.token_keys)
            .field("pii", &self.pii.current_key_id())
            .field("dev", &self.dev)
            .field("warnings", &self.warnings)
            .field("grpc_tls", &self.grpc_tls)
            .field("test_clock", &self.test_clock)
            .field("json_logs", &self.json_logs)
            .field("calendar_dir", &self.calendar_dir)
            .field("areas_file", &self.areas_file)
            .field("policy_dir", &self.policy_dir)
            .finish()
    }
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

/// `FUPIN_DEV=1` accepts keys published in this source (anyone can sign a district or bank
/// token with them) and short secrets: it serves this machine alone. A service reachable from
/// others (an image's `0.0.0.0`, a `.env` copied to a server) refuses to start with it.
fn dev_only_on_loopback(dev: bool, grpc_addr: SocketAddr) -> anyhow::Result<()> {
    if dev && !grpc_addr.ip().is_loopback() {
        anyhow::bail!(
            "FUPIN_DEV=1 is for a developer machine: it serves only on a loopback GRPC_ADDR \
             (127.0.0.1 or [::1]), not {grpc_addr}; set the real secrets (README \
             \"Running the binaries directly\") and unset FUPIN_DEV to serve other machines"
        );
    }
    Ok(())
}

/// `FUPIN_TEST_CLOCK=1` lets an operator token move the service's clock: a public notice
/// (R-IN-5) ends at once, an expired rating is in force again, the trail is dated as one
/// likes. It is for tests and demonstrations on one machine: a service reachable from others
/// refuses to start with it, as with `FUPIN_DEV=1`.
fn test_clock_only_on_loopback(on: bool, grpc_addr: SocketAddr) -> anyhow::Result<()> {
    if on && !grpc_addr.ip().is_loopback() {
        anyhow::bail!(
            "FUPIN_TEST_CLOCK=1 lets an operator token move this service's clock (public \
             notices end at once, expired ratings come back): it serves only on a loopback \
             GRPC_ADDR (127.0.0.1 or [::1]), not {grpc_addr}; unset FUPIN_TEST_CLOCK to serve \
             other machines"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_keys_serve_only_this_machine() {
        let addr = |a: &str| a.parse::<SocketAddr>().unwrap();
        for local in ["127.0.0.1:50051", "[::1]:50051"] {
            assert!(dev_only_on_loopback(true, addr(local)).is_ok(), "{local}");
        }
        for exposed in ["0.0.0.0:50051", "10.0.0.5:50051", "[::]:50051"] {
            let e = dev_only_on_loopback(true, addr(exposed))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("FUPIN_DEV=1") && e.contains(exposed), "{e}");
            assert!(dev_only_on_loopback(false, addr(exposed)).is_ok());
        }
    }

    #[test]
    fn the_test_clock_serves_only_this_machine() {
        let addr = |a: &str| a.parse::<SocketAddr>().unwrap();
        for local in ["127.0.0.1:50051", "[::1]:50051"] {
            assert!(
                test_clock_only_on_loopback(true, addr(local)).is_ok(),
                "{local}"
            );
        }
        for exposed in ["0.0.0.0:50051", "10.0.0.5:50051", "[::]:50051"] {
            let e = test_clock_only_on_loopback(true, addr(exposed))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("FUPIN_TEST_CLOCK=1") && e.contains(exposed),
                "{e}"
            );
            assert!(test_clock_only_on_loopback(false, addr(exposed)).is_ok());
        }
    }

    // README "Running the binaries directly": every setting is checked at start, naming the
    // variable; a typo is not taken for the default.
    #[test]
    fn log_format_otlp_endpoint_and_database_url_are_checked() {
        assert!(!log_format(None).unwrap());
        assert!(!log_format(Some("text")).unwrap());
        assert!(log_format(Some("json")).unwrap());
        let e = log_format(Some("xml")).unwrap_err().to_string();
        assert!(e.starts_with("LOG_FORMAT"), "{e}");

        assert!(log_filter(Some("info,fupin_intake=debug")).is_ok());
        let e = log_filter(Some("[[[bad")).unwrap_err().to_string();
        assert!(e.starts_with("RUST_LOG"), "{e}");

        let name = "OTEL_EXPORTER_OTLP_ENDPOINT";
        assert!(otlp_endpoint(name, None, false).is_ok());
        assert!(otlp_endpoint(name, Some("http://otel-collector:4317"), false).is_ok());
        // The exporter adds http:// to a bare host:port when told it is insecure.
        assert!(otlp_endpoint(name, Some("otel-collector:4317"), true).is_ok());
        for bad in [
            "https://x:4317",
            "notaurl",
            "otel-collector:4317",
            "http://",
            "ftp://x",
        ] {
            let e = otlp_endpoint(name, Some(bad), false)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(name), "{bad}: {e}");
        }
        let e = otlp_endpoint(name, Some("https://user:secret@x:4317"), true)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");

        assert_eq!(
            database_url(None, "intake").unwrap(),
            "postgres://postgres@127.0.0.1:55432/intake"
        );
        for good in [
            "postgres://u:p@db:5432/intake",
            "postgresql://db/intake",
            "POSTGRES://db/intake",
            "postgres:///intake?host=/run/postgresql",
        ] {
            assert_eq!(database_url(Some(good.into()), "intake").unwrap(), good);
        }
        for bad in ["mysql://x", "db:5432", "postgres://db:port/x"] {
            let e = format!(
                "{:#}",
                database_url(Some(bad.into()), "intake").unwrap_err()
            );
            assert!(e.starts_with("DATABASE_URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn pii_keys_come_in_pairs() {
        let k = Some("k1:a2V5LW9uZS1mb3ItdGhlLXRlc3RzLS0tLS0tLS0tLS0=".to_owned());
        let i = Some("cHJvZHVjdGlvbi1pbmRleC1rZXktLS0tLS0tLS0tLS0=".to_owned());
        assert_eq!(
            pii_from(k.clone(), i.clone(), false, false)
                .unwrap()
                .0
                .current_key_id(),
            "k1"
        );
        assert_eq!(
            pii_from(None, None, true, false)
                .unwrap()
                .0
                .current_key_id(),
            "dev"
        );
        assert!(pii_from(k.clone(), None, true, false).is_err());
        assert!(pii_from(None, i.clone(), true, false).is_err());
        assert!(pii_from(Some("k1:short".into()), i, true, false).is_err());
    }

    // R-CR-11 (personal data protected at rest) and ARCHITECTURE Auth: outside development no
    // secret falls back to a key published in the source.
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
        let pii = |k: Option<&str>, i: Option<&str>, dev, accepted| {
            pii_from(k.map(str::to_owned), i.map(str::to_owned), dev, accepted)
                .map(|(_, warnings)| warnings)
        };
        let err = |r: anyhow::Result<Vec<String>>| format!("{:#}", r.unwrap_err());
        let own_index = "cHJvZHVjdGlvbi1pbmRleC1rZXktLS0tLS0tLS0tLS0=";
        let own_key = "k2:a2V5LW9uZS1mb3ItdGhlLXRlc3RzLS0tLS0tLS0tLS0=";
        assert!(err(pii(None, None, false, false)).contains("not set"));
        // The published PII key as the current one: refused.
        assert!(
            err(pii(Some(DEV_PII_KEYS), Some(own_index), false, false)).contains("current PII key")
        );
        // Kept behind the current one, to re-seal its values: allowed, warned about.
        let moving_off = format!("{own_key},{DEV_PII_KEYS}");
        let warnings = pii(Some(&moving_off), Some(own_index), false, false).unwrap();
        assert!(
            warnings[0].contains("PII_RETIRING_KEYS=dev"),
            "{warnings:?}"
        );
        // The published index key: only when accepted, and warned about.
        assert!(
            err(pii(Some(own_key), Some(DEV_PII_INDEX_KEY), false, false))
                .contains("PII_INDEX_KEY_DEV_ACCEPTED")
        );
        let warnings = pii(Some(own_key), Some(DEV_PII_INDEX_KEY), false, true).unwrap();
        assert!(warnings[0].contains("blind index"), "{warnings:?}");
        assert!(
            pii(Some(own_key), Some(own_index), false, false)
                .unwrap()
                .is_empty()
        );
        assert!(pii(Some(DEV_PII_KEYS), Some(DEV_PII_INDEX_KEY), true, false).is_ok());
    }

    // ARCHITECTURE Auth: with the issuer's public keys no secret is needed, and none is added
    // unless given: not even the development one, which would let anyone sign tokens again.
    #[test]
    fn public_keys_need_no_secret_and_get_none_by_default() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jwt");
        let public = Some(dir.join("ed25519.pub"));
        for dev in [false, true] {
            let keys = token_keys(None, public.clone(), dev).unwrap();
            assert_eq!(keys.describe(), "EdDSA", "dev {dev}");
        }
        let both = token_keys(Some("s".repeat(32)), public.clone(), false).unwrap();
        assert_eq!(both.describe(), "HS256, EdDSA");
        let e = format!(
            "{:#}",
            token_keys(Some("short".into()), public, false).unwrap_err()
        );
        assert!(e.contains("at least 32 bytes"), "{e}");
        let e = format!(
            "{:#}",
            token_keys(None, Some(dir.join("missing.pub")), false).unwrap_err()
        );
        assert!(
            e.contains("AUTH_JWT_PUBLIC_KEY_FILE") && e.contains("missing.pub"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            token_keys(None, Some(dir.join("ed25519.key")), true).unwrap_err()
        );
        assert!(e.contains("not a public key"), "{e}");
        assert_eq!(token_keys(None, None, true).unwrap().describe(), "HS256");
        let e = format!("{:#}", token_keys(None, None, false).unwrap_err());
        assert!(e.contains("AUTH_JWT_SECRET is not set"), "{e}");
    }

    #[test]
    fn debug_output_hides_secrets_and_credentials() {
        let config = BaseConfig {
            service_name: "intake".into(),
            database_url: "postgres://postgres:pgpass123@db:5432/intake".into(),
            nats_url: "nats://fupin:natspass456@nats:4222".into(),
            grpc_addr: "127.0.0.1:50051".parse().unwrap(),
            subject_prefix: "fupin".into(),
            stream_name: "FUPIN".into(),
            token_keys: TokenKeys::hs256(&"jwtsecret789".repeat(3)),
            pii: PiiCipher::development(),
            dev: false,
            warnings: Vec::new(),
            grpc_tls: None,
            test_clock: false,
            json_logs: false,
            calendar_dir: "c".into(),
            areas_file: "a".into(),
            policy_dir: "p".into(),
        };
        let shown = format!("{config:?}");
        for secret in ["pgpass123", "natspass456", "jwtsecret789"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("nats://nats:4222") && shown.contains("db:5432/intake"));
    }

    #[test]
    fn the_stream_name_is_a_stream_name() {
        assert_eq!(stream_name(None).unwrap(), "FUPIN");
        for bad in ["A.B", "A*", "A>", "A B", "A/B"] {
            assert!(stream_name(Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_subject_prefix_is_one_token() {
        assert_eq!(subject_prefix(None).unwrap(), "fupin");
        assert_eq!(subject_prefix(Some("qa-1_x".into())).unwrap(), "qa-1_x");
        for bad in ["qa.docs", "qa>", "a*", "a b", "前缀"] {
            let e = format!("{:#}", subject_prefix(Some(bad.into())).unwrap_err());
            assert!(e.contains("EVENT_SUBJECT_PREFIX"), "{e}");
        }
    }

    // Security review: the longest token lifetime is a day unless set, from an hour to a year;
    // anything else stops the start naming the variable.
    #[test]
    fn the_token_lifetime_bound_is_read_strictly() {
        assert_eq!(max_token_hours(None).unwrap(), 24);
        assert_eq!(max_token_hours(Some("1")).unwrap(), 1);
        assert_eq!(max_token_hours(Some("8760")).unwrap(), 8760);
        for bad in ["0", "-1", "8761", "1.5", "24h", "none"] {
            let e = max_token_hours(Some(bad)).expect_err(bad).to_string();
            assert!(
                e.starts_with("AUTH_JWT_MAX_LIFETIME_HOURS=")
                    && e.contains("whole number of hours from 1 to 8760"),
                "{e}"
            );
        }
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
