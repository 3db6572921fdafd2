//! gRPC plumbing shared by the commands: a channel with a short connect timeout and requests
//! carrying `authorization: Bearer <token>`.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Global;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A channel to intake (`--intake`). An `https://` address is reached over TLS, trusting
/// `--tls-ca` (or the system's roots without it) and presenting `--tls-cert`/`--tls-key`
/// when intake asks for a client certificate.
pub async fn channel(g: &Global) -> anyhow::Result<Channel> {
    let addr = g.intake.as_str();
    let mut endpoint = Endpoint::from_shared(addr.to_owned())
        .with_context(|| format!("invalid gRPC address {addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30));
    if addr.starts_with("https://") {
        endpoint = endpoint
            .tls_config(client_tls(g)?)
            .context("TLS settings")?;
    } else if g.tls_ca.is_some() || g.tls_cert.is_some() {
        anyhow::bail!("--tls-ca/--tls-cert need an https:// intake address, not {addr}");
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

fn client_tls(g: &Global) -> anyhow::Result<ClientTlsConfig> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
    };
    let mut tls = match &g.tls_ca {
        Some(ca) => {
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?))
        }
        None => ClientTlsConfig::new().with_native_roots(),
    };
    match (&g.tls_cert, &g.tls_key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read("--tls-cert", cert)?,
                read("--tls-key", key)?,
            ));
        }
        (None, None) => {}
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    }
    Ok(tls)
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

/// `code: message` of a failed call, for error messages.
pub fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
