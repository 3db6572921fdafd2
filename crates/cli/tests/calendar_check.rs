//! `fupinctl calendar check`, run as an operator would before restarting intake with a new
//! year's file (R-IN-4).

use std::path::{Path, PathBuf};
use std::process::Output;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/calendar");

fn check(dir: &Path, today: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fupinctl"))
        .args(["calendar", "check", "--today", today])
        .arg(dir)
        .env_remove("CALENDAR_DIR")
        .output()
        .expect("running fupinctl")
}

/// The shipped years copied to a directory of the test's own, with `extra` files added.
fn dir_with(name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fupinctl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(SHIPPED).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    for (file, text) in extra {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_shipped_calendar_passes_and_asks_for_the_next_year_in_time() {
    let out = check(Path::new(SHIPPED), "2026-12-02");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("2026: 248 working days"), "{stdout}");
    assert!(
        stdout.contains("deadlines can be counted up to 2026-12-31"),
        "{stdout}"
    );
    assert!(stdout.contains("warning: 2027 has no data"), "{stdout}");

    let out = check(Path::new(SHIPPED), "2026-11-01");
    assert!(out.status.success());
    assert!(
        !text(&out.stdout).contains("warning"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_file_intake_would_refuse_fails_the_check_naming_it() {
    // 2027-01-04 is a Monday: it cannot be a swapped working weekend.
    let file =
        "year = 2027\nsource = \"test\"\nholidays = []\nadjusted_working_days = [\"2027-01-04\"]\n";
    let dir = dir_with("refused", &[("2027.toml", file)]);
    let out = check(&dir, "2026-12-02");
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("intake would refuse to start"), "{stderr}");
    assert!(stderr.contains("2027.toml"), "names the file: {stderr}");
    assert!(stderr.contains("2027-01-04 is a Mon"), "{stderr}");
}

#[test]
fn a_year_without_a_statutory_holiday_fails_the_check() {
    // Intake would read this file; the check fails it: 2 May is a statutory holiday since 2025.
    let file = "year = 2027\nsource = \"test\"\nadjusted_working_days = []\nholidays = \
                [\"2027-01-01\", \"2027-05-01\", \"2027-10-01\", \"2027-10-02\", \"2027-10-03\"]\n";
    let dir = dir_with("statutory", &[("2027.toml", file)]);
    let out = check(&dir, "2026-12-02");
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: 2027: 2027-05-02 is a statutory holiday every year"),
        "{stdout}"
    );
    assert!(
        stdout.contains("deadlines can be counted up to 2027-12-31"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning"), "2027 is there: {stdout}");
    assert!(text(&out.stderr).contains("1 statutory holiday(s) missing"));
}
