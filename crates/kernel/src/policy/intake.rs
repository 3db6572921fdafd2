//! The policy values the intake service decides with (R-IN-3, R-IN-4, R-IN-5, R-IN-7, R-CR-8).
//!
//! The values themselves live in `deploy/policy/intake.toml`; this type only says what they are
//! and which combinations make sense, and refuses a file that does not.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::PolicyError;
use crate::money::Money;

/// Admission limits, processing deadlines and the credit-village uplift of the intake service.
/// Working-day counts are counted with the official calendar, calendar-day counts are not.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct IntakePolicy {
    /// Largest loan to a household (R-IN-3, national cap).
    pub max_amount: Money,
    /// Longest term in months (R-IN-3).
    pub max_term_months: u32,
    /// Longest term for an enterprise or cooperative loan. The plans give no figure; the
    /// default keeps the household limit until the district sets one.
    pub enterprise_max_term_months: u32,
    /// Borrower age range, both inclusive, in whole years on the day of each admission check
    /// (submission, recommendation, the bank's approval; R-IN-3).
    pub min_age: u32,
    pub max_age: u32,
    /// Working days each step may take (R-IN-4).
    pub village_review_days: u32,
    pub town_review_days: u32,
    pub district_review_days: u32,
    pub bank_decision_days: u32,
    /// Calendar days of public notice before recommendation to a bank (R-IN-5).
    pub public_notice_calendar_days: u32,
    /// Working days to answer a complaint (R-IN-7).
    pub complaint_answer_days: u32,
    /// Percentage a credit village adds to its households' lines, still capped by
    /// `max_amount` (R-CR-8). A decimal string such as "20".
    pub credit_village_line_uplift_pct: Decimal,
    /// Partner banks applications may be recommended to (R-IN-6), by bank id as in the banks'
    /// tokens. Versioned because agreements start and end on dates.
    pub partner_banks: Vec<String>,
    /// The annual rates a bank may approve (R-IN-6), both included, as fractions ("0.01" is
    /// 1% a year): a plausibility range that refuses a monthly rate or a percentage divided
    /// by 100 twice. A version without them bounds a rate only by 0 and 1 (both excluded).
    #[serde(default)]
    pub min_annual_rate: Option<Decimal>,
    #[serde(default)]
    pub max_annual_rate: Option<Decimal>,
    /// Credit lines by grade are the credit-rating service's (R-CR-8). Policy files written
    /// when intake's policy still listed them keep loading; the values are not used.
    #[serde(default, rename = "line_aaa")]
    _line_aaa: Option<Money>,
    #[serde(default, rename = "line_aa")]
    _line_aa: Option<Money>,
    #[serde(default, rename = "line_a")]
    _line_a: Option<Money>,
}

impl<'de> Deserialize<'de> for IntakePolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let policy = IntakePolicy::deserialize(deserializer)?;
        policy.validate().map_err(serde::de::Error::custom)?;
        Ok(policy)
    }
}

impl IntakePolicy {
    /// Checks the values make sense together; every loaded policy has passed this.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |why: &str| Err(PolicyError::Invalid(why.to_owned()));
        if self.max_amount.is_zero() || self.max_amount.is_negative() {
            return invalid("max_amount must be positive");
        }
        if self.max_term_months == 0 {
            return invalid("max_term_months must be at least 1");
        }
        if self.enterprise_max_term_months == 0 {
            return invalid("enterprise_max_term_months must be at least 1");
        }
        if self.min_age > self.max_age {
            return invalid("min_age must not exceed max_age");
        }
        let periods = [
            ("village_review_days", self.village_review_days),
            ("town_review_days", self.town_review_days),
            ("district_review_days", self.district_review_days),
            ("bank_decision_days", self.bank_decision_days),
            (
                "public_notice_calendar_days",
                self.public_notice_calendar_days,
            ),
            ("complaint_answer_days", self.complaint_answer_days),
        ];
        if let Some((name, _)) = periods.iter().find(|(_, days)| *days == 0) {
            return invalid(&format!("{name} must be at least 1"));
        }
        if self.credit_village_line_uplift_pct.is_sign_negative() {
            return invalid("credit_village_line_uplift_pct must not be negative");
        }
        for (name, rate) in [
            ("min_annual_rate", self.min_annual_rate),
            ("max_annual_rate", self.max_annual_rate),
        ] {
            if rate.is_some_and(|r| r <= Decimal::ZERO || r >= Decimal::ONE) {
                return invalid(&format!("{name} must be between 0 and 1 (both excluded)"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_annual_rate, self.max_annual_rate)
            && min > max
        {
            return invalid("min_annual_rate must not exceed max_annual_rate");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyHistory;
    use chrono::NaiveDate;

    const SHIPPED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/policy/intake.toml"
    );

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn shipped() -> IntakePolicy {
        let history = PolicyHistory::<IntakePolicy>::load(SHIPPED).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let in_force = history.in_force(today).unwrap();
        assert_eq!(in_force.version.id, "luolong-2026.1");
        in_force.value.clone()
    }

    #[test]
    fn shipped_policy_has_the_spec_defaults() {
        let policy = shipped();
        // R-IN-3
        assert_eq!(policy.max_amount, m("50000"));
        assert_eq!(policy.max_term_months, 36);
        assert_eq!((policy.min_age, policy.max_age), (18, 65));
        // R-IN-4, R-IN-5, R-IN-7
        assert_eq!(
            (
                policy.village_review_days,
                policy.town_review_days,
                policy.district_review_days,
                policy.bank_decision_days
            ),
            (3, 3, 5, 10)
        );
        assert_eq!(policy.public_notice_calendar_days, 5);
        assert_eq!(policy.complaint_answer_days, 10);
        // R-CR-8
        assert_eq!(policy.credit_village_line_uplift_pct, Decimal::from(20));
        assert_eq!(
            (policy.min_annual_rate, policy.max_annual_rate),
            (None, None)
        );
    }

    // R-IN-6, R-X-4: from 2026-12-04 a second version bounds the rates banks approve, with
    // every other value as before (a version in force is never edited).
    #[test]
    fn the_rate_range_takes_effect_as_a_new_version() {
        let history = PolicyHistory::<IntakePolicy>::load(SHIPPED).unwrap();
        let before = history
            .in_force(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
            .unwrap();
        let from = history
            .in_force(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap())
            .unwrap();
        assert_eq!(before.version.id, "luolong-2026.1");
        assert_eq!(from.version.id, "luolong-2026-12-rates");
        assert_eq!(
            (from.value.min_annual_rate, from.value.max_annual_rate),
            (Some(Decimal::new(1, 2)), Some(Decimal::new(24, 2)))
        );
        let mut same = from.value.clone();
        same.min_annual_rate = None;
        same.max_annual_rate = None;
        assert_eq!(same, before.value);
    }

    // R-CR-8, R-X-4: a policy file from before lines left intake's policy still loads, with
    // the same values for everything intake decides with.
    #[test]
    fn a_file_that_still_lists_credit_lines_loads() {
        let text = std::fs::read_to_string(SHIPPED).unwrap().replace(
            "credit_village_line_uplift_pct = \"20\"",
            "line_aaa = \"50000.00\"\nline_aa = \"30000.00\"\nline_a = \"20000.00\"\n\
             credit_village_line_uplift_pct = \"20\"",
        );
        let dir = std::env::temp_dir().join(format!("fupin-old-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("intake.toml");
        std::fs::write(&path, text).unwrap();
        let old = PolicyHistory::<IntakePolicy>::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let old = old.in_force(today).unwrap().value.clone();
        let shipped = shipped();
        assert_eq!(
            (old.max_amount, old.credit_village_line_uplift_pct),
            (shipped.max_amount, shipped.credit_village_line_uplift_pct)
        );
    }

    #[test]
    fn refuses_values_that_do_not_fit_together() {
        let text = std::fs::read_to_string(SHIPPED).unwrap();
        for (from, to) in [
            ("min_age = 18", "min_age = 70"),
            ("max_term_months = 36", "max_term_months = 0"),
            ("village_review_days = 3", "village_review_days = 0"),
            (
                "enterprise_max_term_months = 36",
                "enterprise_max_term_months = 0",
            ),
            (
                "credit_village_line_uplift_pct = \"20\"",
                "credit_village_line_uplift_pct = \"-5\"",
            ),
            ("max_amount = \"50000.00\"", "max_amount = \"50000.001\""),
            ("min_annual_rate = \"0.01\"", "min_annual_rate = \"0.30\""),
            ("max_annual_rate = \"0.24\"", "max_annual_rate = \"1\""),
            ("min_annual_rate = \"0.01\"", "min_annual_rate = \"0\""),
            (
                "max_term_months = 36",
                "max_term_months = 36\nmax_term_days = 1",
            ),
        ] {
            assert!(text.contains(from), "{from} not in shipped file");
            let changed = text.replace(from, to);
            assert!(
                PolicyHistory::<IntakePolicy>::from_toml_str(&changed).is_err(),
                "accepted {to}"
            );
        }
    }
}
