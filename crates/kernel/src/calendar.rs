//! The PRC official working-day calendar (SPEC section 0, "working day"; R-IN-4, R-RK-4).
//!
//! Deadlines count working days, and which days those are is decided each year by the State
//! Council: statutory holidays plus weekend days swapped into working days (调休). That is data,
//! one file per year in `deploy/calendar/<year>.toml`, never a weekday rule in code. A date in a
//! year without data is an error, never a guess: a wrong deadline is worse than a loud failure.
//!
//! File shape:
//!
//! ```toml
//! year = 2025
//! source = "国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号)"
//! holidays = ["2025-01-01"]                 # every official day off of the holiday periods
//! adjusted_working_days = ["2025-01-26"]    # weekend days that are working days (调休)
//! ```
//!
//! Each date goes into the file of its own year: days of a notice's holiday period that fall
//! in the year before (2022-12-31 of the 2023 New Year period) belong in that year's file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("no working-day calendar data for year {0}")]
    NoDataForYear(i32),
    #[error("no calendar year data was given")]
    Empty,
    #[error("cannot read calendar data {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("calendar data {origin} is not valid TOML of the expected shape")]
    Parse {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("calendar file {path}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<CalendarError>,
    },
    #[error("calendar file {path} holds year {year}; it must be named {year}.toml")]
    FileNameMismatch { path: PathBuf, year: i32 },
    #[error("calendar year {0} appears twice")]
    DuplicateYear(i32),
    #[error(
        "calendar years {before} and {after} are given but not {missing}: deadlines would stop \
         being counted at the end of {before}; add {missing}.toml (or remove the years before it)"
    )]
    MissingYear {
        before: i32,
        missing: i32,
        after: i32,
    },
    #[error("calendar year {year} has an empty source; name the notice the dates come from")]
    MissingSource { year: i32 },
    #[error(
        "date {date} is listed in the calendar of year {year}; it belongs in the file of its own \
         year, {}.toml",
        .date.year()
    )]
    DateOutsideYear { year: i32, date: NaiveDate },
    #[error("date {date} is listed twice")]
    DuplicateDate { date: NaiveDate },
    #[error("date {date} is listed both as a holiday and as an adjusted working day")]
    HolidayAndWorkingDay { date: NaiveDate },
    #[error("adjusted working day {date} is a {weekday}; only a Saturday or Sunday can be one")]
    AdjustedWorkingDayNotWeekend { date: NaiveDate, weekday: Weekday },
}

/// How long before the calendar's data runs out operators are told to add the next year
/// ([`WorkingDayCalendar::year_needed_soon`]): more than the longest step deadline, and time to
/// deploy the file.
pub const CALENDAR_NOTICE: Days = Days::new(CALENDAR_NOTICE_DAYS);

/// [`CALENDAR_NOTICE`] in days.
pub const CALENDAR_NOTICE_DAYS: u64 = 60;

/// A year's data in figures ([`WorkingDayCalendar::summary`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearSummary {
    pub year: i32,
    /// The notice the dates come from, as the file names it.
    pub source: String,
    /// The version recorded with the deadlines counted on this data (R-X-4).
    pub version: String,
    /// Days listed in `holidays`.
    pub days_off: usize,
    /// Weekend days made working days (调休).
    pub adjusted_working_days: usize,
    /// Working days of the year.
    pub working_days: u32,
    /// Statutory holidays on a fixed date ([`fixed_date_statutory_holidays`]) the file does
    /// not list as days off. Every notice gives them off, so each departs from the notice.
    pub unlisted_statutory_days: Vec<UnlistedStatutoryHoliday>,
}

/// A fixed-date statutory holiday a year's data leaves out of its days off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlistedStatutoryHoliday {
    pub date: NaiveDate,
    /// The holiday's name in the law (元旦, 劳动节, 国庆节).
    pub name: &'static str,
    /// Whether the data makes it a working day (a weekday, or a weekend day listed as worked),
    /// so that deadlines across it come one day short. A weekend day that is not worked
    /// changes no deadline.
    pub counted_as_working_day: bool,
}

/// The statutory holidays of `year` that fall on a fixed date of the Gregorian calendar
/// (全国年节及纪念日放假办法), with their names, for years from 2008: 1 January; 1 May, and
/// also 2 May from 2025, when the 2024 amendment took effect; 1 to 3 October. They are off
/// every year and every notice names them. The others (the Spring Festival, Qingming, the
/// Dragon Boat and Mid-Autumn festivals) follow the lunar calendar or a solar term and are
/// not derived here.
pub fn fixed_date_statutory_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    const NEW_YEAR: &str = "元旦";
    const LABOUR_DAY: &str = "劳动节";
    const NATIONAL_DAY: &str = "国庆节";
    let mut days = vec![(1, 1, NEW_YEAR), (5, 1, LABOUR_DAY)];
    if year >= 2025 {
        days.push((5, 2, LABOUR_DAY));
    }
    days.extend([
        (10, 1, NATIONAL_DAY),
        (10, 2, NATIONAL_DAY),
        (10, 3, NATIONAL_DAY),
    ]);
    days.into_iter()
        .filter_map(|(m, d, name)| Some((NaiveDate::from_ymd_opt(year, m, d)?, name)))
        .collect()
}

/// The days off and swapped working days of one year.
#[derive(Clone, Debug)]
struct YearCalendar {
    source: String,
    /// `<year>#<16 hex digits>`: a digest of the year's dates, not of the file's text, so a
    /// comment or reordering keeps it and any change of a date changes it.
    version: String,
    holidays: BTreeSet<NaiveDate>,
    adjusted_working_days: BTreeSet<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    holidays: Vec<NaiveDate>,
    adjusted_working_days: Vec<NaiveDate>,
}

/// Working days for the years that have data.
#[derive(Clone, Debug)]
pub struct WorkingDayCalendar {
    years: BTreeMap<i32, YearCalendar>,
}

impl WorkingDayCalendar {
    /// Builds a calendar from the texts of year files (a new year is just one more text).
    pub fn from_year_strs(texts: &[&str]) -> Result<WorkingDayCalendar, CalendarError> {
        let years = texts
            .iter()
            .enumerate()
            .map(|(i, text)| parse_year(text, &format!("#{} (of {})", i + 1, texts.len())))
            .collect::<Result<Vec<_>, _>>()?;
        WorkingDayCalendar::from_years(years)
    }

    /// Reads every `*.toml` in `dir`; each must be named for the year it holds.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<WorkingDayCalendar, CalendarError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CalendarError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            // `2027.TOML` too: a year file skipped for its name's case would leave the year's
            // deadlines pending without a word.
            if path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"))
            {
                paths.push(path);
            }
        }
        paths.sort();
        let mut years = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            // A parse error names the file already; the checks of the dates do not.
            let (year, calendar) =
                parse_year(&text, &path.display().to_string()).map_err(|e| match e {
                    e @ CalendarError::Parse { .. } => e,
                    e => CalendarError::InFile {
                        path: path.clone(),
                        source: Box::new(e),
                    },
                })?;
            if path.file_stem().and_then(|s| s.to_str()) != Some(year.to_string().as_str()) {
                return Err(CalendarError::FileNameMismatch { path, year });
            }
            years.push((year, calendar));
        }
        WorkingDayCalendar::from_years(years)
    }

    fn from_years(years: Vec<(i32, YearCalendar)>) -> Result<WorkingDayCalendar, CalendarError> {
        if years.is_empty() {
            return Err(CalendarError::Empty);
        }
        let mut by_year = BTreeMap::new();
        for (year, calendar) in years {
            if by_year.insert(year, calendar).is_some() {
                return Err(CalendarError::DuplicateYear(year));
            }
        }
        // Years are one unbroken run: a year missing in the middle (a file deleted or not
        // copied) would stop every count at the end of the year before it, silently.
        let given: Vec<i32> = by_year.keys().copied().collect();
        if let Some(w) = given.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(CalendarError::MissingYear {
                before: w[0],
                missing: w[0] + 1,
                after: w[1],
            });
        }
        Ok(WorkingDayCalendar { years: by_year })
    }

    /// The years with data, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// The last day working days can be counted to from `from` without running out of data:
    /// the end of the last year in the unbroken run of years from `from`'s. None when `from`'s
    /// own year has no data. Deadlines that would fall after it cannot be set (R-IN-4), so
    /// operators must add the next year before then.
    pub fn covered_until(&self, from: NaiveDate) -> Option<NaiveDate> {
        let mut year = from.year();
        if !self.years.contains_key(&year) {
            return None;
        }
        while self.years.contains_key(&(year + 1)) {
            year += 1;
        }
        NaiveDate::from_ymd_opt(year, 12, 31)
    }

    /// The last day from which `n` working days can be counted (the last `start` for which
    /// [`Self::add_working_days`] succeeds), in the unbroken run of years from `from`'s; none
    /// when there is no such day. Every deadline of at most `n` working days from a day up to
    /// it can be counted.
    pub fn last_start_for(&self, n: u32, from: NaiveDate) -> Option<NaiveDate> {
        let mut start = self.covered_until(from)?;
        while self.add_working_days(start, n).is_err() {
            start = start.pred_opt()?;
            if !self.years.contains_key(&start.year()) {
                return None;
            }
        }
        Some(start)
    }

    /// The year whose data is missing and needed within [`CALENDAR_NOTICE`] of `today`: the
    /// year after [`Self::covered_until`] once fewer than that many days are left, or
    /// `today`'s own year when it has no data. None while enough is there.
    pub fn year_needed_soon(&self, today: NaiveDate) -> Option<i32> {
        match self.covered_until(today) {
            Some(last) if today + CALENDAR_NOTICE <= last => None,
            Some(last) => Some(last.year() + 1),
            None => Some(today.year()),
        }
    }

    /// What the data of `year` amounts to, for an operator checking a new file before
    /// deploying it. None when `year` has no data.
    pub fn summary(&self, year: i32) -> Option<YearSummary> {
        let data = self.years.get(&year)?;
        // The day before the year is excluded by the half-open count, so it needs no data.
        let working_days = self
            .working_days_between(
                NaiveDate::from_ymd_opt(year - 1, 12, 31)?,
                NaiveDate::from_ymd_opt(year, 12, 31)?,
            )
            .ok()?;
        Some(YearSummary {
            year,
            source: data.source.clone(),
            version: data.version.clone(),
            days_off: data.holidays.len(),
            adjusted_working_days: data.adjusted_working_days.len(),
            working_days,
            unlisted_statutory_days: fixed_date_statutory_holidays(year)
                .into_iter()
                .filter(|(date, _)| !data.holidays.contains(date))
                .map(|(date, name)| UnlistedStatutoryHoliday {
                    date,
                    name,
                    counted_as_working_day: self.is_working_day(date).unwrap_or(false),
                })
                .collect(),
        })
    }

    /// [`Self::summary`] of every year with data, ascending.
    pub fn summaries(&self) -> impl Iterator<Item = YearSummary> + '_ {
        self.years.keys().filter_map(|&year| self.summary(year))
    }

    /// The notice a year's dates come from, for recording with decisions (R-X-4).
    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year).map(|y| y.source.as_str())
    }

    /// The version of the calendar data that counted the working days after `start` up to
    /// `to`, as [`Self::add_working_days`] does (R-X-4): each year's `<year>#<digest>` in
    /// order, joined by `+`; `to`'s year alone when `to` is not after `start`. None when a year
    /// has no data (never after `add_working_days(start, n)` returned `to`).
    pub fn version(&self, start: NaiveDate, to: NaiveDate) -> Option<String> {
        let first = start.succ_opt().unwrap_or(start).min(to).year();
        let last = to.year();
        let versions = (first..=last)
            .map(|y| self.years.get(&y).map(|c| c.version.as_str()))
            .collect::<Option<Vec<_>>>()?;
        Some(versions.join("+"))
    }

    /// The deadline `n` working days after `start` ([`Self::add_working_days`]) with the
    /// version of the data that counted it ([`Self::version`]), as a decision records both
    /// (R-IN-4, R-X-4); none while the data does not reach it.
    pub fn deadline(&self, start: NaiveDate, n: u32) -> Option<(NaiveDate, String)> {
        let due = self.add_working_days(start, n).ok()?;
        Some((due, self.version(start, due)?))
    }

    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        let year = self
            .years
            .get(&date.year())
            .ok_or(CalendarError::NoDataForYear(date.year()))?;
        if year.adjusted_working_days.contains(&date) {
            return Ok(true);
        }
        if year.holidays.contains(&date) {
            return Ok(false);
        }
        Ok(!is_weekend(date))
    }

    /// The `n`-th working day strictly after `start`; `n = 0` returns `start` unchanged.
    /// A deadline of 3 working days from a Friday submission is `add_working_days(friday, 3)`.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut date = start;
        let mut remaining = n;
        while remaining > 0 {
            date = next_day(date)?;
            if self.is_working_day(date)? {
                remaining -= 1;
            }
        }
        Ok(date)
    }

    /// Working days in `(from, to]`: 0 when `to <= from`. The count of days a step has been
    /// open, so `working_days_between(d, add_working_days(d, n)) == n`.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0;
        let mut date = from;
        while date < to {
            date = next_day(date)?;
            if self.is_working_day(date)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// `date` if it is a working day, otherwise the first working day after it.
    pub fn next_working_day_on_or_after(
        &self,
        date: NaiveDate,
    ) -> Result<NaiveDate, CalendarError> {
        let mut date = date;
        while !self.is_working_day(date)? {
            date = next_day(date)?;
        }
        Ok(date)
    }
}

/// FNV-1a (64 bits) over the year and its sorted dates: an identifier of the data.
fn year_version(
    year: i32,
    holidays: &BTreeSet<NaiveDate>,
    adjusted_working_days: &BTreeSet<NaiveDate>,
) -> String {
    let mut hash = crate::fnv::Fnv1a::new();
    hash.feed(&format!("{year};"));
    for d in holidays {
        hash.feed(&format!("h{d};"));
    }
    for d in adjusted_working_days {
        hash.feed(&format!("w{d};"));
    }
    format!("{year}#{}", hash.hex())
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn next_day(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    // Only at chrono's last representable date, far past any calendar data.
    date.succ_opt()
        .ok_or(CalendarError::NoDataForYear(date.year().saturating_add(1)))
}

fn parse_year(text: &str, origin: &str) -> Result<(i32, YearCalendar), CalendarError> {
    let file: YearFile = toml::from_str(text).map_err(|source| CalendarError::Parse {
        origin: origin.to_owned(),
        source,
    })?;
    let year = file.year;
    if file.source.trim().is_empty() {
        return Err(CalendarError::MissingSource { year });
    }
    let holidays = date_set(year, file.holidays)?;
    let adjusted_working_days = date_set(year, file.adjusted_working_days)?;
    if let Some(&date) = holidays.intersection(&adjusted_working_days).next() {
        return Err(CalendarError::HolidayAndWorkingDay { date });
    }
    if let Some(&date) = adjusted_working_days.iter().find(|d| !is_weekend(**d)) {
        return Err(CalendarError::AdjustedWorkingDayNotWeekend {
            date,
            weekday: date.weekday(),
        });
    }
    let calendar = YearCalendar {
        source: file.source,
        version: year_version(year, &holidays, &adjusted_working_days),
        holidays,
        adjusted_working_days,
    };
    Ok((year, calendar))
}

fn date_set(year: i32, dates: Vec<NaiveDate>) -> Result<BTreeSet<NaiveDate>, CalendarError> {
    let mut set = BTreeSet::new();
    for date in dates {
        if date.year() != year {
            return Err(CalendarError::DateOutsideYear { year, date });
        }
        if !set.insert(date) {
            return Err(CalendarError::DuplicateDate { date });
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
