//! `fupinctl clock set|reset|get`: the admin test clock of the intake service (refused unless
//! the service runs with `FUPIN_TEST_CLOCK=1`; needs an operator token).

use anyhow::Context;
use fupin_platform::auth::Role;
use fupin_proto::admin::v1::{
    GetTimeRequest, SetTimeRequest, TimeReply, test_clock_service_client::TestClockServiceClient,
};

use crate::{Global, grpc, intake_cmd::DISTRICT, token};

#[derive(clap::Subcommand, Debug)]
pub enum ClockCommand {
    /// Move the service's clock to an RFC 3339 instant, e.g. 2026-10-09T09:00:00+08:00; it runs
    /// on from there.
    Set {
        #[arg(value_parser = parse_instant)]
        now: String,
    },
    /// Back to the system clock.
    Reset,
    /// Show the service's current time.
    Get,
}

fn parse_instant(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not an RFC 3339 instant ({e}), e.g. 2026-10-09T09:00:00+08:00"))
}

pub async fn run(g: &Global, command: ClockCommand) -> anyhow::Result<()> {
    let t = token::mint(
        &token::signer(g)?,
        &token::default_subject(Role::Operator, DISTRICT),
        Role::Operator,
        DISTRICT,
        None,
        600,
    )?;
    let mut client = TestClockServiceClient::new(grpc::channel(g).await?);
    let reply = match command {
        ClockCommand::Set { now } => {
            client
                .set_time(grpc::request(SetTimeRequest { now }, &t)?)
                .await
        }
        ClockCommand::Reset => {
            client
                .set_time(grpc::request(SetTimeRequest { now: String::new() }, &t)?)
                .await
        }
        ClockCommand::Get => client.get_time(grpc::request(GetTimeRequest {}, &t)?).await,
    };
    let TimeReply { now, pinned } = reply
        .map_err(|s| anyhow::anyhow!(grpc::describe(&s)))
        .with_context(|| format!("TestClockService on {}", g.intake))?
        .into_inner();
    println!(
        "{now} ({})",
        if pinned {
            "moved by SetTime"
        } else {
            "system clock"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants_are_checked_locally() {
        assert!(super::parse_instant("2026-10-09T09:00:00+08:00").is_ok());
        assert!(super::parse_instant("2026-10-09").is_err());
    }
}
