//! `fupinctl demo seed` prints commands to try next: run as printed, they reach the intake,
//! subject prefix and stream the seed was given, not the defaults.

use fupin_platform::testing::{nats_url, unique_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_to_try_reach_what_the_seed_was_given() {
    let token = unique_token();
    let stream = token.to_uppercase();
    // No intake there: the seed publishes its facts and says the application was not submitted.
    let intake = "http://127.0.0.1:1";
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fupinctl"))
        .args(["--nats-url", &nats_url(), "--intake", intake])
        .args(["--prefix", &token, "--stream", &stream, "demo", "seed"])
        .output()
        .await
        .expect("running fupinctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flags = format!("--intake {intake} --prefix {token} --stream {stream}");
    let tries: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Try:")
        .skip(1)
        .filter(|l| l.trim_start().starts_with("fupinctl") || l.contains("/fupinctl"))
        .collect();
    assert!(tries.len() >= 3, "{stdout}");
    for line in &tries {
        assert!(line.contains(&flags), "{line:?} lacks {flags:?}");
    }
    assert!(
        tries.iter().any(|l| l.contains("events tail --from-start")),
        "{stdout}"
    );
    // The test stream is left to the pruning of leftover test streams.
}
