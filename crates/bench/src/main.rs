//! `fupin-bench intake`: drives `SubmitApplication` over gRPC against a real intake binary with
//! 1, 16 and 64 concurrent clients and prints throughput and p50/p99 latency; in the same run it
//! measures plain single-row INSERT transactions into the same PostgreSQL from the same number
//! of connections, so the ratio between the two is known.

mod intake;
mod plain_insert;
mod stats;

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "fupin-bench")]
struct Cli {
    #[command(subcommand)]
    target: Target,
}

#[derive(Subcommand)]
enum Target {
    Intake {
        /// The intake binary to start (a release build for meaningful figures).
        #[arg(long, default_value = "target/release/fupin-intake")]
        intake_bin: PathBuf,
        /// Seconds per measured run (after a 2 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// Also measure the floor under any call: a gRPC call intake refuses at once.
        #[arg(long)]
        floor: bool,
        /// Read-model changes per second while submissions run (other households' ratings
        /// updated, as during a district's rating run); 0 for none.
        #[arg(long, default_value_t = 0)]
        churn: u32,
    },
}

#[global_allocator]
static ALLOCATOR: fupin_platform::Allocator = fupin_platform::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().target {
        Target::Intake {
            intake_bin,
            seconds,
            clients,
            floor,
            churn,
        } => {
            intake::run(
                &intake_bin,
                Duration::from_secs(seconds),
                &clients,
                floor,
                churn,
            )
            .await
        }
    }
}
