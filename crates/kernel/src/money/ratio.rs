//! Sharing ratios and the split of an amount between two parties (R-RK-4, R-RK-5, R-RK-6).
//!
//! A loss is shared between the government fund and the bank at the agreement's ratio. The
//! first party's share is rounded half-up to the fen and the second gets the remainder, so the
//! two shares always add up to the total exactly: no fen is created or lost.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{Money, MoneyError};
use crate::serde_str::serde_via_parse;

/// A two-party ratio such as `80:20` (first : second). Parts are whole numbers, not both zero;
/// they need not add up to 100 (`4:1` shares like `80:20`), and are kept as given so the ratio
/// displays the way the agreement states it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ratio {
    first: u32,
    second: u32,
}

serde_via_parse!(Ratio, |r| r);

impl Ratio {
    pub fn new(first: u32, second: u32) -> Result<Ratio, MoneyError> {
        if first == 0 && second == 0 {
            return Err(MoneyError::ZeroRatio);
        }
        Ok(Ratio { first, second })
    }

    /// The ratio `pct : (100 - pct)`, e.g. `80` gives `80:20` and `62.5` gives `625:375`.
    /// At most 4 decimal places, so the parts stay exact whole numbers.
    pub fn from_percent(pct: Decimal) -> Result<Ratio, MoneyError> {
        let invalid = || MoneyError::InvalidPercent(pct);
        let pct_n = pct.normalize();
        if (pct_n.is_sign_negative() && !pct_n.is_zero()) || pct_n > Decimal::ONE_HUNDRED {
            return Err(invalid());
        }
        let scale = pct_n.scale();
        if scale > 4 {
            return Err(invalid());
        }
        let unit = 10_u32.pow(scale);
        let first = u32::try_from(pct_n.abs().mantissa()).map_err(|_| invalid())?;
        Ratio::new(first, 100 * unit - first)
    }

    /// Parses `"<first>:<second>"`, the form agreements and config files use.
    pub fn parse(input: &str) -> Result<Ratio, MoneyError> {
        let malformed = || MoneyError::MalformedRatio(crate::text::excerpt(input));
        let (first, second) = input.split_once(':').ok_or_else(malformed)?;
        let part = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            s.parse::<u32>().map_err(|_| malformed())
        };
        Ratio::new(part(first)?, part(second)?)
    }

    pub fn first(self) -> u32 {
        self.first
    }

    pub fn second(self) -> u32 {
        self.second
    }
}

impl FromStr for Ratio {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ratio::parse(s)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.first, self.second)
    }
}

impl Money {
    /// Splits this amount at `ratio` (R-RK-5): the first share is
    /// `total * first / (first + second)` rounded half-up (away from zero) to the fen, the second
    /// share is the remainder. The shares therefore always sum to `self` exactly.
    ///
    /// Computed in whole fen with integer arithmetic, so there is no intermediate rounding.
    pub fn split(self, ratio: &Ratio) -> (Money, Money) {
        let total = i128::from(self.to_fen());
        let numerator = total * i128::from(ratio.first);
        let denominator = i128::from(ratio.first) + i128::from(ratio.second);
        // Half-up on the magnitude, then restore the sign: away from zero for adjustments too.
        let first_magnitude = (2 * numerator.abs() + denominator) / (2 * denominator);
        let first = first_magnitude * numerator.signum();
        let second = total - first;
        // |first| <= |total| and |second| <= |total|, both with the sign of the total.
        (
            Money::from_fen_checked(first).expect("share within the total"),
            Money::from_fen_checked(second).expect("share within the total"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::RoundingStrategy;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn ratio(a: u32, b: u32) -> Ratio {
        Ratio::new(a, b).unwrap()
    }

    #[test]
    fn rejects_all_zero_ratio() {
        assert_eq!(Ratio::new(0, 0), Err(MoneyError::ZeroRatio));
        assert!(Ratio::new(0, 1).is_ok());
    }

    #[test]
    fn parses_and_displays_colon_form() {
        let r = Ratio::parse("80:20").unwrap();
        assert_eq!((r.first(), r.second()), (80, 20));
        assert_eq!(r.to_string(), "80:20");
        for bad in [
            "80", "80:", ":20", "80:20:0", "-80:20", "8 0:20", "0:0", "80：20",
        ] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"80:20\"");
        assert_eq!(serde_json::from_str::<Ratio>(&json).unwrap(), r);
    }

    #[test]
    fn from_percent_builds_complementary_parts() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(Ratio::from_percent(d("80")).unwrap(), ratio(80, 20));
        assert_eq!(Ratio::from_percent(d("80.00")).unwrap(), ratio(80, 20));
        assert_eq!(Ratio::from_percent(d("62.5")).unwrap(), ratio(625, 375));
        assert_eq!(Ratio::from_percent(d("100")).unwrap(), ratio(100, 0));
        assert_eq!(Ratio::from_percent(d("0")).unwrap(), ratio(0, 100));
        for bad in ["-1", "100.01", "12.34567"] {
            assert!(Ratio::from_percent(d(bad)).is_err(), "{bad}");
        }
    }

    // R-RK-5
    #[test]
    fn government_share_rounds_half_up_and_bank_takes_the_remainder() {
        assert_eq!(m("1000").split(&ratio(80, 20)), (m("800"), m("200")));
        // 100.01 * 0.8 = 80.008 -> 80.01; bank 20.00
        assert_eq!(m("100.01").split(&ratio(80, 20)), (m("80.01"), m("20.00")));
        // 0.01 * 0.5 = 0.005 exactly: half-up gives the first party the fen
        assert_eq!(m("0.01").split(&ratio(50, 50)), (m("0.01"), m("0.00")));
        // 0.03 * 0.8 = 0.024 -> 0.02
        assert_eq!(m("0.03").split(&ratio(80, 20)), (m("0.02"), m("0.01")));
        // 10 / 3 = 3.333.. -> 3.33, remainder 6.67
        assert_eq!(m("10").split(&ratio(1, 2)), (m("3.33"), m("6.67")));
        assert_eq!(m("10").split(&ratio(0, 7)), (Money::ZERO, m("10")));
        assert_eq!(m("10").split(&ratio(7, 0)), (m("10"), Money::ZERO));
        assert_eq!(
            Money::ZERO.split(&ratio(80, 20)),
            (Money::ZERO, Money::ZERO)
        );
    }

    #[test]
    fn negative_adjustments_split_symmetrically() {
        let neg = Money::parse_signed("-0.01").unwrap();
        let (a, b) = neg.split(&ratio(50, 50));
        assert_eq!((a.to_fen(), b.to_fen()), (-1, 0));
    }

    proptest! {
        // R-RK-5: shares sum exactly, are non-negative, and the first is the exact share
        // rounded to within half a fen.
        #[test]
        fn split_sums_exactly_and_rounds_to_nearest_fen(
            fen in 0..=999_999_999_999_999_999_i64,
            first in 0..=u32::MAX,
            second in 0..=u32::MAX,
        ) {
            prop_assume!(first != 0 || second != 0);
            let total = Money::from_fen(fen).unwrap();
            let (a, b) = total.split(&ratio(first, second));
            prop_assert_eq!(a.checked_add(b), Some(total));
            prop_assert!(!a.is_negative() && !b.is_negative());
            // |a - total*first/den| <= 0.5 fen, in exact integers.
            let den = i128::from(first) + i128::from(second);
            let error = i128::from(a.to_fen()) * den - i128::from(fen) * i128::from(first);
            prop_assert!(2 * error.abs() <= den, "error {error} for den {den}");
        }

        // The same rule checked against rust_decimal's own half-up rounding, on ranges where
        // the decimal quotient is exact enough to be an oracle.
        #[test]
        fn split_matches_decimal_half_up(
            fen in 0..=100_000_000_000_i64,
            first in 0..=1_000_u32,
            second in 0..=1_000_u32,
        ) {
            prop_assume!(first != 0 || second != 0);
            let total = Money::from_fen(fen).unwrap();
            let exact = total.amount() * Decimal::from(first) / Decimal::from(first + second);
            let expected = exact.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            let (a, _) = total.split(&ratio(first, second));
            prop_assert_eq!(a.amount(), expected);
            prop_assert!((a.amount() - exact).abs() <= Decimal::new(5, 3));
        }
    }
}
