//! gRPC plumbing shared by the commands: a channel with a short connect timeout and requests
//! carrying `authorization: Bearer <token>`.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn channel(addr: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(addr.to_owned())
        .with_context(|| format!("invalid gRPC address {addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30))
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

/// `code: message` of a failed call, for error messages.
pub fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
