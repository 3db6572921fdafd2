//! `fupinctl calendar check`: reads a working-day calendar directory as intake does at start,
//! so a new year's file can be checked before intake is restarted with it (R-IN-4). Prints
//! each year's figures and how far deadlines can be counted; exits 1 when intake would refuse
//! the directory, or when a year leaves out a fixed-date statutory holiday on a day it
//! would then count as a working day.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use fupin_kernel::{
    WorkingDayCalendar,
    calendar::{CALENDAR_NOTICE_DAYS, YearSummary},
    china_date,
};
use fupin_platform::config::reference_path_and_origin;

#[derive(clap::Subcommand, Debug)]
pub enum CalendarCommand {
    /// Check a calendar directory (one `<year>.toml` per year) before intake reads it.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The directory to check; by default the one intake started from this shell and
    /// directory would read: `CALENDAR_DIR`, else `deploy/calendar` found as intake finds it.
    pub dir: Option<PathBuf>,
    /// The day to count from (YYYY-MM-DD); today in China by default.
    #[arg(long)]
    pub today: Option<NaiveDate>,
}

pub fn run(command: CalendarCommand) -> anyhow::Result<()> {
    match command {
        CalendarCommand::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let (path, origin) = match &args.dir {
        Some(dir) => (dir.clone(), "given".to_owned()),
        None => reference_path_and_origin("CALENDAR_DIR", "deploy/calendar"),
    };
    let dir = format!("{} ({origin})", path.display());
    let calendar = WorkingDayCalendar::load_dir(&path)
        .with_context(|| format!("calendar dir {dir}: intake refuses to start with it"))?;
    let today = args.today.unwrap_or_else(|| china_date(Utc::now()));
    let report = Report::of(&calendar, today);
    let printed = std::iter::once(format!("calendar dir {dir}"))
        .chain(report.lines)
        .try_for_each(crate::print_line);
    // Mistakes fail the check even when the reader of the output has gone.
    anyhow::ensure!(
        report.mistakes == 0,
        "calendar dir {dir}: {} statutory holiday(s) missing from their year's holidays would \
         count as working days",
        report.mistakes
    );
    printed
}

/// What `check` prints of a calendar read from `today`, and how many mistakes it found.
#[derive(Debug)]
struct Report {
    lines: Vec<String>,
    mistakes: usize,
}

impl Report {
    fn of(calendar: &WorkingDayCalendar, today: NaiveDate) -> Report {
        let mut lines = Vec::new();
        let mut mistakes = 0;
        for summary in calendar.summaries() {
            lines.push(year_line(&summary));
            for missing in &summary.unlisted_statutory_days {
                let (date, name, year) = (missing.date, missing.name, summary.year);
                lines.push(if missing.counted_as_working_day {
                    mistakes += 1;
                    format!(
                        "error: {year}.toml: {date} ({name}) is a statutory holiday but is not in \
                         holidays: deadlines count it as a working day"
                    )
                } else {
                    format!(
                        "warning: {year}.toml: {date} ({name}) is a statutory holiday but is not in \
                         holidays: a weekend day, so no deadline changes, but the notice lists it"
                    )
                });
            }
        }
        lines.push(match calendar.covered_until(today) {
            Some(last) => format!("from {today}, deadlines can be counted up to {last}"),
            None => format!("from {today}, no deadline can be counted: its year has no data"),
        });
        if let Some(year) = calendar.year_needed_soon(today) {
            lines.push(format!(
                "warning: {year} has no data and deadlines counted from {today} may need it \
                 within {CALENDAR_NOTICE_DAYS} days: steps and complaints whose deadline \
                 would fall in it are taken with their deadline pending; add {year}.toml \
                 from the State Council holiday notice and restart intake"
            ));
        }
        Report { lines, mistakes }
    }
}

fn year_line(s: &YearSummary) -> String {
    format!(
        "{}: {} working days; {} days off, {} weekend days worked; version {}; source: {}",
        s.year, s.working_days, s.days_off, s.adjusted_working_days, s.version, s.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/calendar");

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_shipped_calendar_reports_each_year_and_its_end() {
        let calendar = WorkingDayCalendar::load_dir(SHIPPED).unwrap();
        let report = Report::of(&calendar, date(2026, 11, 1));
        assert_eq!(report.mistakes, 0);
        let text = report.lines.join("\n");
        assert!(
            text.contains("2026: 248 working days; 33 days off, 6 weekend days worked"),
            "{text}"
        );
        assert!(
            text.contains("from 2026-11-01, deadlines can be counted up to 2026-12-31"),
            "{text}"
        );
        assert!(!text.contains("warning"), "60 days are left: {text}");

        let report = Report::of(&calendar, date(2026, 11, 2));
        let last = report.lines.last().unwrap();
        assert!(
            last.starts_with("warning: 2027 has no data") && last.contains("add 2027.toml"),
            "{last}"
        );

        let report = Report::of(&calendar, date(2027, 1, 4));
        let text = report.lines.join("\n");
        assert!(
            text.contains("from 2027-01-04, no deadline can be counted"),
            "{text}"
        );
        assert!(text.contains("warning: 2027 has no data"), "{text}");
    }

    #[test]
    fn a_statutory_holiday_left_out_on_a_weekday_is_a_mistake_on_a_weekend_a_warning() {
        // 2027-10-01 is a Friday, 2027-05-02 a Sunday.
        let calendar = WorkingDayCalendar::from_year_strs(&[
            "year = 2027\nsource = \"test\"\nadjusted_working_days = []\nholidays = \
             [\"2027-01-01\", \"2027-05-01\", \"2027-10-02\", \"2027-10-03\"]\n",
        ])
        .unwrap();
        let report = Report::of(&calendar, date(2027, 1, 4));
        assert_eq!(report.mistakes, 1, "{:?}", report.lines);
        let error = "error: 2027.toml: 2027-10-01 (国庆节) is a statutory holiday but is not in \
                     holidays: deadlines count it as a working day";
        let warning = "warning: 2027.toml: 2027-05-02 (劳动节) is a statutory holiday but is not \
                       in holidays: a weekend day, so no deadline changes, but the notice lists it";
        for expected in [error, warning] {
            assert!(
                report.lines.iter().any(|l| l == expected),
                "{expected}: {:?}",
                report.lines
            );
        }
    }
}
