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
    assert!(
        stderr.contains("intake refuses to start with it"),
        "{stderr}"
    );
    assert!(stderr.contains("2027.toml"), "names the file: {stderr}");
    assert!(stderr.contains("2027-01-04 is a Mon"), "{stderr}");
}

#[test]
fn a_statutory_holiday_left_out_on_a_weekday_fails_the_check() {
    // Intake would read this file. 2027-10-01 is a Friday: left out, deadlines would count it
    // as a working day. 2027-05-02 is a Sunday: left out, it changes no deadline.
    let file = "year = 2027\nsource = \"test\"\nadjusted_working_days = []\nholidays = \
                [\"2027-01-01\", \"2027-05-01\", \"2027-10-02\", \"2027-10-03\"]\n";
    let dir = dir_with("statutory", &[("2027.toml", file)]);
    let out = check(&dir, "2026-12-02");
    let weekend_only = file.replace(r#""2027-10-02""#, r#""2027-10-01", "2027-10-02""#);
    std::fs::write(dir.join("2027.toml"), weekend_only).unwrap();
    let weekend = check(&dir, "2026-12-02");
    std::fs::remove_dir_all(&dir).unwrap();

    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: 2027.toml: 2027-10-01 (国庆节) is a statutory holiday"),
        "{stdout}"
    );
    assert!(
        stdout.contains("deadlines can be counted up to 2027-12-31"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("1 statutory holiday(s) missing"),
        "{}",
        text(&out.stderr)
    );

    let stdout = text(&weekend.stdout);
    assert!(weekend.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: 2027.toml: 2027-05-02 (劳动节) is a statutory holiday"),
        "{stdout}"
    );
    assert!(!stdout.contains("error"), "{stdout}");
}

#[test]
fn without_a_directory_it_reads_the_one_intake_would_and_says_why() {
    let run = |dir: &Path, calendar_dir: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fupinctl"));
        command
            .args(["calendar", "check", "--today", "2026-06-01"])
            .current_dir(dir)
            .env_remove("CALENDAR_DIR");
        if let Some(calendar_dir) = calendar_dir {
            command.env("CALENDAR_DIR", calendar_dir);
        }
        command.output().expect("running fupinctl")
    };
    let workspace = Path::new(SHIPPED).join("../..");
    let out = run(&workspace, None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("(CALENDAR_DIR unset: deploy/calendar under the working directory)"),
        "{stdout}"
    );

    let refused = dir_with("from-env", &[("2030.toml", "not toml")]);
    let out = run(&workspace, Some(&refused));
    std::fs::remove_dir_all(&refused).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(from CALENDAR_DIR)"), "{stderr}");
    assert!(stderr.contains("2030.toml"), "{stderr}");
}
