//! The shared domain kernel of fupin: the values every service agrees on.
//!
//! Pure by design: no I/O beyond the explicit `load` helpers that read data files, no async,
//! no database or messaging. Each domain value is a newtype that can only be built through a
//! parsing constructor, so code holding one never re-checks it ("parse, don't validate").
//!
//! - [`money`]: yuan to the fen, ratios and exact loss sharing (R-RK-5).
//! - [`area`]: district / town / village codes and the district's area registry.
//! - [`resident_id`], [`uscc`]: identifiers of households and organisations.
//! - [`grade`]: credit grades.
//! - [`calendar`]: the official working-day calendar, from yearly data files.
//! - [`policy`]: versioned policy with effective dates (R-X-4), and the intake policy.
//! - [`time`]: China civil dates from UTC instants.
//! - [`text`]: characters that show nothing.

pub mod area;
pub mod calendar;
mod fnv;
pub mod grade;
pub mod money;
pub mod policy;
pub mod resident_id;
mod serde_str;
pub mod text;
pub mod time;
pub mod uscc;

pub use area::{
    Area, AreaCode, AreaError, AreaLevel, AreaRegistry, DistrictCode, TownCode, VillageCode,
};
pub use calendar::{CalendarError, WorkingDayCalendar};
pub use grade::{CreditGrade, CreditGradeError};
pub use money::{Money, MoneyError, Ratio};
pub use policy::{IntakePolicy, PolicyError, PolicyHistory, PolicyVersion, Versioned};
pub use resident_id::{ResidentId, ResidentIdError};
pub use time::{china_date, china_start_of_day_utc};
pub use uscc::{Uscc, UsccError};
