//! Yuan amounts held exactly to the fen (SPEC section 0, "money").
//!
//! Money is never a float. Every [`Money`] is a `Decimal` with exactly two fractional digits
//! whose magnitude fits the `numeric(18,2)` columns the services store it in, so a value that
//! exists in memory can always be written, and a value read back compares equal.
//!
//! Amounts are non-negative unless built on purpose with [`Money::parse_signed`] (adjustments);
//! every other constructor, and [`Money::checked_sub`], refuses to produce a negative amount.

mod ratio;

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

pub use ratio::Ratio;

use crate::serde_str::serde_via_parse;
use crate::text::excerpt;

/// The largest amount, in fen, that fits `numeric(18,2)`: 9999999999999999.99 yuan.
const MAX_FEN: i64 = 999_999_999_999_999_999;

/// Digits allowed before the decimal point (after leading zeros are dropped).
const MAX_INTEGER_DIGITS: usize = 16;

/// Why a text, decimal or ratio was not accepted as money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error(
        "amount {0:?} is not a plain decimal number (digits, optionally '.' and one or two digits)"
    )]
    Malformed(String),
    #[error("amount {0:?} has more than 2 decimal places (amounts are held to the fen)")]
    TooManyDecimals(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("amount exceeds 9999999999999999.99 yuan (numeric(18,2))")]
    OutOfRange,
    #[error("a sharing ratio needs at least one non-zero part")]
    ZeroRatio,
    #[error("ratio {0:?} is not of the form \"<whole number>:<whole number>\", e.g. \"80:20\"")]
    MalformedRatio(String),
    #[error("percentage {0} must lie in 0..=100 with at most 4 decimal places")]
    InvalidPercent(Decimal),
}

/// An amount of yuan with exactly two decimal places.
///
/// Ordering, equality and hashing are by value; `Display` always shows two decimals
/// (`1234.50`), which is also the serde form (a string, so no JSON float ever holds money).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Money(Decimal);

serde_via_parse!(Money, |m| m);

impl Money {
    /// Nothing at all: `0.00`.
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    /// Parses a non-negative amount: digits, optionally followed by `.` and one or two digits.
    ///
    /// Deliberately strict so that no amount is ever silently rounded or reinterpreted: more than
    /// two fractional digits (even `1.230`), signs, exponents, whitespace, `NaN` and anything above
    /// 9999999999999999.99 are errors.
    pub fn parse(input: &str) -> Result<Money, MoneyError> {
        if let Some(rest) = input.strip_prefix('-') {
            // Name the real problem when the text is otherwise a valid amount; "-0" is no
            // negative amount, just a sign where none is allowed.
            return Err(match parse_fen(rest, input)? {
                0 => MoneyError::Malformed(excerpt(input)),
                _ => MoneyError::Negative,
            });
        }
        parse_fen(input, input).map(Money::from_fen_in_range)
    }

    /// Like [`Money::parse`] but allows one leading `-`, for adjustments and corrections.
    pub fn parse_signed(input: &str) -> Result<Money, MoneyError> {
        match input.strip_prefix('-') {
            Some(rest) => parse_fen(rest, input).map(|fen| Money::from_fen_in_range(-fen)),
            None => parse_fen(input, input).map(Money::from_fen_in_range),
        }
    }

    /// Accepts a decimal that is a whole number of fen (`12.3`, `12.30`, `12.300` are fine;
    /// `12.345` is not), non-negative and in range; the result always has scale 2.
    pub fn from_decimal(value: Decimal) -> Result<Money, MoneyError> {
        if value.is_zero() {
            return Ok(Money::ZERO);
        }
        if value.is_sign_negative() {
            return Err(MoneyError::Negative);
        }
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(MoneyError::TooManyDecimals(excerpt(&value.to_string())));
        }
        if normalized > Decimal::new(MAX_FEN, 2) {
            return Err(MoneyError::OutOfRange);
        }
        // In range with at most two places, so rescaling is lossless and the mantissa is fen.
        let mut exact = normalized;
        exact.rescale(2);
        Money::from_fen_checked(exact.mantissa()).ok_or(MoneyError::OutOfRange)
    }

    /// Builds an amount from a whole number of fen (1 yuan = 100 fen); negative is refused.
    pub fn from_fen(fen: i64) -> Result<Money, MoneyError> {
        if fen < 0 {
            Err(MoneyError::Negative)
        } else if fen > MAX_FEN {
            Err(MoneyError::OutOfRange)
        } else {
            Ok(Money::from_fen_in_range(fen))
        }
    }

    /// Callers guarantee `|fen| <= MAX_FEN`; every public path checks before calling this.
    fn from_fen_in_range(fen: i64) -> Money {
        debug_assert!(fen.abs() <= MAX_FEN);
        Money(Decimal::new(fen, 2))
    }

    /// Result of fen arithmetic, refused when it leaves the `numeric(18,2)` range.
    fn from_fen_checked(fen: i128) -> Option<Money> {
        let fen = i64::try_from(fen).ok()?;
        (fen.abs() <= MAX_FEN).then(|| Money::from_fen_in_range(fen))
    }

    /// The amount as a decimal, always with scale 2 (so it binds directly to `numeric(18,2)`).
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// The amount in fen.
    pub fn to_fen(self) -> i64 {
        // Every constructor stores `Decimal::new(fen, 2)` with |fen| <= MAX_FEN, so the mantissa
        // is the fen count and fits an i64.
        i64::try_from(self.0.mantissa()).expect("Money invariant: |fen| <= MAX_FEN")
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// True only for amounts built through [`Money::parse_signed`] with a `-`.
    pub fn is_negative(self) -> bool {
        self.to_fen() < 0
    }

    /// Sum, or `None` when it would leave the `numeric(18,2)` range.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        Money::from_fen_checked(i128::from(self.to_fen()) + i128::from(other.to_fen()))
    }

    /// Difference, or `None` when it would be negative (e.g. paying out more than a balance)
    /// or leave the range.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        let fen = i128::from(self.to_fen()) - i128::from(other.to_fen());
        if fen < 0 {
            return None;
        }
        Money::from_fen_checked(fen)
    }

    /// Sum of many amounts, or `None` if any partial sum leaves the range.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::ZERO, |acc, next| acc.checked_add(next))
    }

    /// `pct` percent of this amount (`scale_pct(dec!(120))` is 1.2x, `scale_pct(dec!(20))` is a
    /// fifth), rounded half-up (away from zero) to the fen. For "+20%" use [`Money::uplift_pct`].
    ///
    /// Saturates at ±9999999999999999.99 instead of failing, because the inputs are policy
    /// percentages applied to loan-sized amounts; use [`Money::checked_scale_pct`] where the
    /// inputs are not bounded like that.
    pub fn scale_pct(self, pct: Decimal) -> Money {
        self.checked_scale_pct(pct).unwrap_or_else(|| {
            let negative = self.is_negative() != pct.is_sign_negative();
            Money::from_fen_in_range(if negative { -MAX_FEN } else { MAX_FEN })
        })
    }

    /// [`Money::scale_pct`] that returns `None` instead of saturating.
    pub fn checked_scale_pct(self, pct: Decimal) -> Option<Money> {
        let scaled = self.0.checked_mul(pct)?.checked_div(Decimal::ONE_HUNDRED)?;
        let mut rounded = scaled.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        if rounded.abs() > Decimal::new(MAX_FEN, 2) {
            return None;
        }
        // In range, so rescaling to exactly two places is lossless and the mantissa is the fen.
        rounded.rescale(2);
        Money::from_fen_checked(rounded.mantissa())
    }

    /// This amount raised by `pct` percent: `uplift_pct(dec!(20))` is 1.2x (the credit-village
    /// line uplift, R-CR-8). Rounds and saturates like [`Money::scale_pct`].
    pub fn uplift_pct(self, pct: Decimal) -> Money {
        self.scale_pct(Decimal::ONE_HUNDRED.saturating_add(pct))
    }
}

/// Parses an unsigned amount into fen; `original` is echoed in errors.
fn parse_fen(digits: &str, original: &str) -> Result<i64, MoneyError> {
    if original.is_empty() {
        return Err(MoneyError::Empty);
    }
    let malformed = || MoneyError::Malformed(excerpt(original));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (integer, fraction) = match digits.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (digits, None),
    };
    if !all_digits(integer) {
        return Err(malformed());
    }
    let fraction_fen = match fraction {
        None => 0,
        Some(f) if !all_digits(f) => return Err(malformed()),
        Some(f) if f.len() > 2 => return Err(MoneyError::TooManyDecimals(excerpt(original))),
        Some(f) => {
            let value: i64 = f.parse().map_err(|_| malformed())?;
            if f.len() == 1 { value * 10 } else { value }
        }
    };
    let significant = integer.trim_start_matches('0');
    if significant.len() > MAX_INTEGER_DIGITS {
        return Err(MoneyError::OutOfRange);
    }
    let yuan: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| malformed())?
    };
    // 16 digits of yuan plus two of fen is at most MAX_FEN, so this cannot overflow.
    Ok(yuan * 100 + fraction_fen)
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_whole_one_and_two_decimal_amounts() {
        assert_eq!(m("123").to_string(), "123.00");
        assert_eq!(m("123.4").to_string(), "123.40");
        assert_eq!(m("123.45").to_string(), "123.45");
        assert_eq!(m("0").to_string(), "0.00");
        assert_eq!(m("007.10").to_fen(), 710);
        assert_eq!("50000".parse::<Money>().unwrap().to_fen(), 5_000_000);
    }

    #[test]
    fn rejects_more_than_two_decimals_even_trailing_zeros() {
        for input in ["1.234", "1.230", "0.001", "1.000"] {
            assert_eq!(
                Money::parse(input),
                Err(MoneyError::TooManyDecimals(input.to_owned())),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for input in [
            " 1", "1 ", "1e3", "1E3", "NaN", "+1", "1.", ".5", "1,000", "1.2.3", "１", "abc",
            "--1", "-", "0x10", "1_000", "inf",
        ] {
            assert_eq!(
                Money::parse(input),
                Err(MoneyError::Malformed(input.to_owned())),
                "{input}"
            );
        }
        assert_eq!(Money::parse(""), Err(MoneyError::Empty));
    }

    #[test]
    fn rejects_negative_with_a_clear_error() {
        assert_eq!(Money::parse("-1.00"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("-0.01"), Err(MoneyError::Negative));
        assert_eq!(
            Money::parse("-1.005"),
            Err(MoneyError::TooManyDecimals("-1.005".into()))
        );
        // A signed zero is no negative amount: a sign where none is allowed.
        for zero in ["-0", "-0.00"] {
            assert_eq!(Money::parse(zero), Err(MoneyError::Malformed(zero.into())));
        }
    }

    #[test]
    fn range_is_numeric_18_2() {
        assert_eq!(m("9999999999999999.99").to_fen(), MAX_FEN);
        assert_eq!(m("0009999999999999999.99").to_fen(), MAX_FEN);
        assert_eq!(
            Money::parse("10000000000000000"),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            Money::parse("99999999999999999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn parse_signed_allows_one_leading_minus() {
        let adj = Money::parse_signed("-12.5").unwrap();
        assert_eq!(adj.to_string(), "-12.50");
        assert!(adj.is_negative());
        assert_eq!(adj.to_fen(), -1250);
        assert_eq!(Money::parse_signed("12.5").unwrap(), m("12.50"));
        assert_eq!(Money::parse_signed("-0").unwrap(), Money::ZERO);
        assert!(Money::parse_signed("--1").is_err());
        assert!(Money::parse_signed("+1").is_err());
        assert!(Money::parse_signed("-").is_err());
    }

    #[test]
    fn from_decimal_accepts_whole_fen_only() {
        assert_eq!(Money::from_decimal(dec("12.300")).unwrap(), m("12.30"));
        assert_eq!(
            Money::from_decimal(dec("12.300")).unwrap().amount().scale(),
            2
        );
        assert_eq!(Money::from_decimal(dec("5")).unwrap().amount().scale(), 2);
        assert_eq!(Money::from_decimal(dec("-0.00")).unwrap(), Money::ZERO);
        assert_eq!(
            Money::from_decimal(dec("12.345")),
            Err(MoneyError::TooManyDecimals("12.345".into()))
        );
        assert_eq!(Money::from_decimal(dec("-1")), Err(MoneyError::Negative));
        assert_eq!(
            Money::from_decimal(dec("10000000000000000")),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn from_fen_checks_sign_and_range() {
        assert_eq!(Money::from_fen(12345).unwrap(), m("123.45"));
        assert_eq!(Money::from_fen(-1), Err(MoneyError::Negative));
        assert_eq!(Money::from_fen(MAX_FEN + 1), Err(MoneyError::OutOfRange));
        assert_eq!(Money::from_fen(0).unwrap(), Money::ZERO);
        assert!(Money::ZERO.is_zero());
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }

    #[test]
    fn amount_always_has_scale_two() {
        assert_eq!(m("7").amount().scale(), 2);
        assert_eq!(m("7").amount(), dec("7"));
    }

    #[test]
    fn checked_arithmetic_stays_in_range_and_non_negative() {
        assert_eq!(m("1.10").checked_add(m("2.95")), Some(m("4.05")));
        assert_eq!(m("5").checked_sub(m("1.01")), Some(m("3.99")));
        assert_eq!(m("5").checked_sub(m("5")), Some(Money::ZERO));
        assert_eq!(m("1").checked_sub(m("1.01")), None);
        assert_eq!(m("9999999999999999.99").checked_add(m("0.01")), None);
        assert_eq!(
            Money::checked_sum([m("1"), m("2.5"), m("0.05")]),
            Some(m("3.55"))
        );
        assert_eq!(Money::checked_sum([]), Some(Money::ZERO));
    }

    #[test]
    fn ordering_and_min_are_by_value() {
        assert!(m("2") > m("1.99"));
        assert_eq!(m("30000").min(m("50000")), m("30000"));
    }

    #[test]
    fn scale_pct_rounds_half_up_to_the_fen() {
        // R-CR-8: a credit village raises a 20,000 line by 20%.
        assert_eq!(m("20000").scale_pct(dec("120")), m("24000"));
        assert_eq!(m("20000").uplift_pct(dec("20")), m("24000"));
        assert_eq!(m("30000").scale_pct(dec("20")), m("6000"));
        // 0.05 * 50% = 0.025 -> 0.03 (half-up), 0.01 * 50% = 0.005 -> 0.01
        assert_eq!(m("0.05").scale_pct(dec("50")), m("0.03"));
        assert_eq!(m("0.01").scale_pct(dec("50")), m("0.01"));
        assert_eq!(m("0.01").scale_pct(dec("49.9")), Money::ZERO);
        assert_eq!(m("100").scale_pct(dec("33.333")), m("33.33"));
        assert_eq!(
            m("9999999999999999.99").scale_pct(dec("200")),
            m("9999999999999999.99")
        );
        assert_eq!(m("9999999999999999.99").checked_scale_pct(dec("200")), None);
    }

    #[test]
    fn serde_is_a_two_decimal_string_and_parses_strictly() {
        let json = serde_json::to_string(&m("1234.5")).unwrap();
        assert_eq!(json, "\"1234.50\"");
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m("1234.5"));
        assert!(serde_json::from_str::<Money>("\"1.234\"").is_err());
        assert!(serde_json::from_str::<Money>("1.5").is_err());
        assert!(serde_json::from_str::<Money>("\"-1\"").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips_through_parse(fen in 0..=MAX_FEN) {
            let money = Money::from_fen(fen).unwrap();
            let text = money.to_string();
            prop_assert_eq!(Money::parse(&text).unwrap(), money);
            prop_assert_eq!(money.to_fen(), fen);
            prop_assert_eq!(money.amount().scale(), 2);
        }

        #[test]
        fn parse_agrees_with_decimal(int in 0u64..10_000_000_000_000_000, frac in 0u32..100, one_digit in any::<bool>()) {
            let text = if one_digit { format!("{int}.{}", frac / 10) } else { format!("{int}.{frac:02}") };
            let expected = Decimal::from_str(&text).unwrap();
            prop_assert_eq!(Money::parse(&text).unwrap().amount(), expected);
        }

        #[test]
        fn signed_display_round_trips(fen in -MAX_FEN..=MAX_FEN) {
            let money = Money::parse_signed(&format!("{}", Decimal::new(fen, 2))).unwrap();
            prop_assert_eq!(money.to_fen(), fen);
            prop_assert_eq!(Money::parse_signed(&money.to_string()).unwrap(), money);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
            let _ = Money::parse(&text);
            let _ = Money::parse_signed(&text);
        }

        #[test]
        fn checked_sub_never_goes_negative(a in 0..=MAX_FEN, b in 0..=MAX_FEN) {
            let (a, b) = (Money::from_fen(a).unwrap(), Money::from_fen(b).unwrap());
            match a.checked_sub(b) {
                Some(diff) => {
                    prop_assert!(a >= b);
                    prop_assert_eq!(diff.checked_add(b), Some(a));
                }
                None => prop_assert!(a < b),
            }
        }
    }
}
