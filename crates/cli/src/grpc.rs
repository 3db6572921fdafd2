//! gRPC plumbing shared by the commands: a channel with a short connect timeout and requests
//! carrying `authorization: Bearer <token>`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Global;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The TLS options, each from its flag or else its variable; empty counts as unset.
struct TlsSettings {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    domain: Option<String>,
}

impl TlsSettings {
    fn of(g: &Global) -> Self {
        let text = |flag: Option<String>, var: &str| {
            flag.or_else(|| std::env::var(var).ok())
                .filter(|v| !v.is_empty())
        };
        let path = |flag: &Option<PathBuf>, var: &str| {
            text(flag.as_ref().map(|p| p.display().to_string()), var).map(PathBuf::from)
        };
        Self {
            ca: path(&g.tls_ca, "FUPIN_TLS_CA"),
            cert: path(&g.tls_cert, "FUPIN_TLS_CERT"),
            key: path(&g.tls_key, "FUPIN_TLS_KEY"),
            domain: text(g.tls_domain.clone(), "FUPIN_TLS_DOMAIN"),
        }
    }

    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.domain.is_some()
    }

    fn client_config(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
        };
        let mut tls = match &self.ca {
            Some(ca) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read("--tls-cert", cert)?,
                    read("--tls-key", key)?,
                ));
            }
            (None, None) => {}
            _ => anyhow::bail!(
                "--tls-cert and --tls-key (FUPIN_TLS_CERT, FUPIN_TLS_KEY) go together"
            ),
        }
        Ok(tls)
    }
}

/// A channel to intake (`--intake`). An `https://` address is reached over TLS, trusting
/// `--tls-ca` (or the system's roots without it), expecting `--tls-domain` in the certificate
/// (the address's host without it) and presenting `--tls-cert`/`--tls-key` when intake asks
/// for a client certificate.
pub async fn channel(g: &Global) -> anyhow::Result<Channel> {
    let addr = g.intake.as_str();
    let mut endpoint = Endpoint::from_shared(addr.to_owned())
        .with_context(|| format!("invalid gRPC address {addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30));
    let tls = TlsSettings::of(g);
    if addr.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tls.client_config()?)
            .context("TLS settings")?;
    } else if tls.any() {
        anyhow::bail!("the TLS settings need an https:// intake address, not {addr}");
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

pub fn request<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("token is not valid metadata")?,
    );
    Ok(req)
}

/// `code: message` of a failed call, for error messages, and the causes beneath it: a failed
/// TLS handshake says only "transport error" or "operation was canceled" by itself, the alert
/// the server sent (a certificate required, expired, or from an unknown CA) is a cause.
pub fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        let said = c.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_call_is_described_with_its_causes() {
        let io = std::io::Error::other("received fatal alert: CertificateRequired");
        let status = tonic::Status::from_error(Box::new(io));
        let said = super::describe(&status);
        assert!(said.contains("CertificateRequired"), "{said}");
        let plain = super::describe(&tonic::Status::not_found("application x"));
        assert_eq!(plain, "NotFound: application x");
    }
}
