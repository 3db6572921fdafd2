//! `fupinctl health`: asks a service's `grpc.health.v1` whether it serves (its database
//! answers, see `fupin_platform::health`). Exits 0 when SERVING and 1 otherwise, so it serves
//! as the container's health check; needs no token.

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{Global, grpc};

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// The gRPC service to ask about (e.g. `fupin.intake.v1.IntakeService`); empty for the
    /// server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
}

/// The service's status, or an error when it is not SERVING or cannot be asked.
pub async fn run(g: &Global, args: &HealthArgs) -> anyhow::Result<()> {
    let mut client = HealthClient::new(grpc::channel(g).await?);
    let status = client
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", g.intake, grpc::describe(&s)))?
        .into_inner()
        .status();
    let name = status.as_str_name();
    anyhow::ensure!(status == ServingStatus::Serving, "{}: {name}", g.intake);
    println!("{name}");
    Ok(())
}
