//! `fupinctl`: the operator CLI of the fupin platform.
//!
//! - `token`: a bearer token (HS256 with the shared secret, or signed with `--signing-key`);
//! - `events tail`: a plain JetStream subscriber printing the platform's events, decoded;
//! - `demo seed`: loads the demo district's read-model facts and one demo application;
//! - `calendar check`: checks a working-day calendar directory before intake reads it;
//! - `intake submit|get`: convenience calls to the intake service;
//! - `clock set|reset|get`: the test clock of a service started with `FUPIN_TEST_CLOCK=1`.

mod calendar;
mod clock;
mod demo;
mod events_tail;
mod grpc;
mod health;
mod intake_cmd;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fupin_platform::config::DEV_JWT_SECRET;

/// Where the CLI looks when told nothing: what `cargo xtask up` runs.
pub const DEFAULT_PREFIX: &str = "fupin";
pub const DEFAULT_STREAM: &str = "FUPIN";
pub const DEFAULT_INTAKE: &str = "http://127.0.0.1:50051";

/// Connection settings shared by every command.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// NATS server with JetStream.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:54222",
        // It may carry a password: `--help` must not print it.
        hide_env_values = true,
        global = true
    )]
    pub nats_url: String,
    /// Key that signs bearer tokens (must match the services' AUTH_JWT_SECRET).
    #[arg(
        long,
        env = "AUTH_JWT_SECRET",
        default_value = DEV_JWT_SECRET,
        hide_env_values = true,
        hide_default_value = true,
        global = true
    )]
    pub secret: String,
    /// Private key (PKCS#8 PEM: Ed25519, ECDSA P-256/P-384 or RSA) to sign tokens with instead
    /// of the secret, when the services verify with its public key (AUTH_JWT_PUBLIC_KEY_FILE).
    #[arg(long, env = "FUPIN_SIGNING_KEY", global = true)]
    pub signing_key: Option<std::path::PathBuf>,
    /// `iss` claim of the tokens, for services that expect one (AUTH_JWT_ISSUER).
    #[arg(long, env = "FUPIN_TOKEN_ISSUER", global = true)]
    pub token_issuer: Option<String>,
    /// `aud` claim of the tokens, for services that expect one (AUTH_JWT_AUDIENCE).
    #[arg(long, env = "FUPIN_TOKEN_AUDIENCE", global = true)]
    pub token_audience: Option<String>,
    /// First token of event subjects (`<prefix>.<ctx>.v1.<Event>`).
    #[arg(
        long,
        env = "EVENT_SUBJECT_PREFIX",
        default_value = DEFAULT_PREFIX,
        global = true
    )]
    pub prefix: String,
    /// JetStream stream carrying every event.
    #[arg(long, env = "EVENT_STREAM", default_value = DEFAULT_STREAM, global = true)]
    pub stream: String,
    /// gRPC endpoint of the intake service.
    #[arg(
        long,
        env = "INTAKE_ADDR",
        default_value = DEFAULT_INTAKE,
        global = true
    )]
    pub intake: String,
    // The TLS settings fall back to their variables in `grpc::TlsSettings`, not through clap:
    // an empty variable (compose passes every variable it names, set or not) means unset.
    /// CA certificate (PEM) that signed intake's TLS certificate, for an `https://` address;
    /// without it the system's roots are trusted. [env: FUPIN_TLS_CA]
    #[arg(long, global = true)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) to present when intake requires one (mutual TLS).
    /// [env: FUPIN_TLS_CERT]
    #[arg(long, global = true)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM). [env: FUPIN_TLS_KEY]
    #[arg(long, global = true)]
    pub tls_key: Option<std::path::PathBuf>,
    /// The name to expect in intake's certificate when it differs from the address's host
    /// (e.g. a health check dialling https://127.0.0.1 inside intake's container).
    /// [env: FUPIN_TLS_DOMAIN]
    #[arg(long, global = true)]
    pub tls_domain: Option<String>,
}

/// Without the token key and NATS credentials.
impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field(
                "nats_url",
                &fupin_platform::events::redacted(&self.nats_url),
            )
            .field("secret", &"<hidden>")
            .field("signing_key", &self.signing_key)
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .field("prefix", &self.prefix)
            .field("stream", &self.stream)
            .field("intake", &self.intake)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_domain", &self.tls_domain)
            .finish()
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "fupinctl",
    version,
    about = "Operator CLI of the fupin microcredit platform"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a bearer token (JWT): HS256 with the shared secret, or signed with --signing-key.
    Token(token::TokenArgs),
    /// Watch the platform's events on JetStream.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Demo data for the demo district (410311).
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Convenience calls to the intake service.
    Intake {
        #[command(subcommand)]
        command: intake_cmd::IntakeCommand,
    },
    /// The test clock of the intake service (only when it runs with FUPIN_TEST_CLOCK=1).
    Clock {
        #[command(subcommand)]
        command: clock::ClockCommand,
    },
    /// Whether intake serves (grpc.health.v1): exits 0 when SERVING, 1 otherwise.
    Health(health::HealthArgs),
    /// The working-day calendar intake reads (CALENDAR_DIR).
    Calendar {
        #[command(subcommand)]
        command: calendar::CalendarCommand,
    },
}

#[derive(Subcommand, Debug)]
enum EventsCommand {
    /// Print events as they arrive (an ephemeral ordered consumer; nothing is acknowledged).
    Tail(events_tail::TailArgs),
}

#[derive(Subcommand, Debug)]
enum DemoCommand {
    /// Publish the demo district's ratings, credit village, blacklist, qualified cooperative and
    /// NPL suspension, then submit one demo application through intake (if it is running).
    /// Only to a NATS server on this machine unless `--remote`: the facts are made up, and
    /// intake's admission trusts them.
    Seed(demo::SeedArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("fupinctl: error: starting the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`fupinctl events tail | head`): done, quietly.
        Err(err) if output_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fupinctl: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `text` and a newline on stdout. Unlike `println!`, which panics when the reader has
/// gone, it returns the error, which `main` turns into a quiet exit.
pub fn print_line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

fn output_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Token(args) => token::run(g, &args),
        Command::Events {
            command: EventsCommand::Tail(args),
        } => events_tail::run(g, &args).await,
        Command::Demo {
            command: DemoCommand::Seed(args),
        } => demo::seed(g, &args).await,
        Command::Intake { command } => intake_cmd::run(g, command).await,
        Command::Clock { command } => clock::run(g, command).await,
        Command::Health(args) => health::run(g, &args).await,
        Command::Calendar { command } => calendar::run(command),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_commands() {
        let cli = Cli::try_parse_from([
            "fupinctl",
            "events",
            "tail",
            "--from-start",
            "--count",
            "5",
            "--timeout-secs",
            "5",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Events { .. }));
        let cli = Cli::try_parse_from(["fupinctl", "--prefix", "t1", "demo", "seed"]).unwrap();
        assert_eq!(cli.global.prefix, "t1");
        let cli = Cli::try_parse_from([
            "fupinctl",
            "token",
            "--role",
            "village_staff",
            "--area",
            "410311100201",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Token(_)));
        assert!(Cli::try_parse_from(["fupinctl", "clock", "reset"]).is_ok());
        assert!(Cli::try_parse_from(["fupinctl", "calendar", "check", "deploy/calendar"]).is_ok());
        assert!(
            Cli::try_parse_from(["fupinctl", "calendar", "check", "--today", "2026-12-02"]).is_ok()
        );
        assert!(
            Cli::try_parse_from(["fupinctl", "clock", "set", "2026-10-09T09:00:00+08:00"]).is_ok()
        );
    }
}
