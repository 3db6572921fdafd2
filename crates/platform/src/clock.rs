//! The services never call `Utc::now()` directly: rules take `now`/`today` as input and the
//! application layer reads a [`Clock`], so tests (and the test-mode admin RPC) can move time.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, NaiveDate, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Today's calendar date in China (UTC+8), the date every working-day rule counts in.
    fn today(&self) -> NaiveDate {
        fupin_kernel::time::china_date(self.now())
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The system clock shifted by an offset that the test-mode admin RPC may set. Time keeps
/// flowing after a shift, so timestamps stay ordered; with offset zero it is the system clock.
#[derive(Debug, Default)]
pub struct AdjustableClock {
    offset_ns: AtomicI64,
}

impl AdjustableClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `now()` return `target` at this instant (and advance from there). Refused, the
    /// clock unchanged, when `target` is further from the system clock than an offset in
    /// nanoseconds holds (about 292 years either way).
    pub fn set(&self, target: DateTime<Utc>) -> Result<(), OutOfRange> {
        // Nanoseconds, so a clock set to midnight never reads back a hair before it.
        let offset = (target - Utc::now()).num_nanoseconds().ok_or(OutOfRange)?;
        self.offset_ns.store(offset, Ordering::SeqCst);
        Ok(())
    }

    pub fn reset(&self) {
        self.offset_ns.store(0, Ordering::SeqCst);
    }

    pub fn is_shifted(&self) -> bool {
        self.offset_ns.load(Ordering::SeqCst) != 0
    }
}

impl Clock for AdjustableClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }
}

/// An instant too far from the system clock for [`AdjustableClock::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than about 292 years from the system clock")]
pub struct OutOfRange;

/// A clock that stands still at a given instant until moved: for unit and service tests.
#[derive(Debug)]
pub struct FixedClock(std::sync::Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(t)))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustable_clock_moves_and_keeps_flowing() {
        let c = AdjustableClock::default();
        let target = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        c.set(target).expect("within range");
        let now = c.now();
        assert!(now >= target, "never reads back before the set instant");
        assert!(
            now >= target - chrono::Duration::seconds(1)
                && now <= target + chrono::Duration::seconds(5)
        );
        assert!(c.is_shifted());
        c.reset();
        assert!((c.now() - Utc::now()).num_seconds().abs() < 5);
    }

    #[test]
    fn adjustable_clock_refuses_an_instant_it_cannot_hold() {
        let c = AdjustableClock::default();
        let target = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        c.set(target).expect("within range");
        for far in ["1700-01-01T00:00:00Z", "2400-01-01T00:00:00Z"] {
            let far = DateTime::parse_from_rfc3339(far).unwrap().to_utc();
            assert_eq!(c.set(far), Err(OutOfRange));
        }
        let now = c.now();
        assert!(
            now >= target && now <= target + chrono::Duration::seconds(5),
            "a refused instant leaves the clock where it was: {now}"
        );
    }

    #[test]
    fn today_is_china_date() {
        // 2025-09-30T17:00Z is 2025-10-01 01:00 in Beijing.
        let c = FixedClock::at(
            DateTime::parse_from_rfc3339("2025-09-30T17:00:00Z")
                .unwrap()
                .to_utc(),
        );
        assert_eq!(c.today(), NaiveDate::from_ymd_opt(2025, 10, 1).unwrap());
    }
}
