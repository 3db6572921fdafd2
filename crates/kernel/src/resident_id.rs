//! PRC resident identity numbers (GB 11643-1999), the key of a poor household's head.
//!
//! The number is personal data (R-CR-11): `Debug` shows only the masked form, errors never echo
//! the input, and there is deliberately no `Display`, so the full number only leaves this type
//! through an explicit [`ResidentId::as_str`] (or serialisation for storage).

use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::serde_str::serde_via_parse;

const LEN: usize = 18;
/// Weights of positions 1-17: 2^(18-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by (weighted sum mod 11).
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// What is wrong with a resident ID; never contains the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("resident ID must have 18 characters, found {found}")]
    Length { found: usize },
    #[error(
        "resident ID character {position} is invalid (positions 1-17 are digits, 18 is a digit or X)"
    )]
    Character { position: usize },
    #[error("resident ID check character is {found}, expected {expected}")]
    CheckDigit { expected: char, found: char },
    #[error("resident ID birth date (positions 7-14) is not a real date on or after 1900-01-01")]
    BirthDate,
}

/// A resident ID with a valid check character and a real birth date; a trailing `x` is stored
/// as `X`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResidentId {
    number: String,
    birth_date: NaiveDate,
}

serde_via_parse!(ResidentId, |id| id.as_str());

impl ResidentId {
    pub fn parse(input: &str) -> Result<ResidentId, ResidentIdError> {
        let found = input.chars().count();
        if found != LEN {
            return Err(ResidentIdError::Length { found });
        }
        // 18 chars: non-ASCII input is caught here, so byte positions are char positions below.
        if let Some(i) = input.bytes().position(|b| !b.is_ascii()) {
            return Err(ResidentIdError::Character { position: i + 1 });
        }
        let number = input.to_ascii_uppercase();
        let bytes = number.as_bytes();
        let (body, check) = (&number[..LEN - 1], char::from(bytes[LEN - 1]));
        let expected = check_char_for(body)?;
        if !(check.is_ascii_digit() || check == 'X') {
            return Err(ResidentIdError::Character { position: LEN });
        }
        if check != expected {
            return Err(ResidentIdError::CheckDigit {
                expected,
                found: check,
            });
        }
        let birth_date = birth_date_of(body)?;
        Ok(ResidentId { number, birth_date })
    }

    /// The check character for a 17-digit body; public so fixtures can build valid numbers.
    pub fn check_char_for(body: &str) -> Result<char, ResidentIdError> {
        if body.len() != LEN - 1 {
            return Err(ResidentIdError::Length {
                found: body.chars().count(),
            });
        }
        check_char_for(body)
    }

    /// The full number. Personal data: show [`ResidentId::masked`] unless the caller's role
    /// needs the number, and audit-log that read (R-CR-11).
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// First 6 and last 4 characters with 8 stars between: `410311********123X`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.number[..6], &self.number[14..])
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Age in full years on `on` (0 before the birth date). A 29 February birthday counts as
    /// reached on 1 March in non-leap years.
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        let born = self.birth_date;
        if on <= born {
            return 0;
        }
        let years = on.year() - born.year();
        let reached = (on.month(), on.day()) >= (born.month(), born.day());
        let full = if reached { years } else { years - 1 };
        u32::try_from(full).unwrap_or(0)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResidentId").field(&self.masked()).finish()
    }
}

impl std::str::FromStr for ResidentId {
    type Err = ResidentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResidentId::parse(s)
    }
}

/// `body` is 17 bytes; errors name the first non-digit position.
fn check_char_for(body: &str) -> Result<char, ResidentIdError> {
    let mut sum = 0;
    for (i, (b, weight)) in body.bytes().zip(WEIGHTS).enumerate() {
        if !b.is_ascii_digit() {
            return Err(ResidentIdError::Character { position: i + 1 });
        }
        sum += u32::from(b - b'0') * weight;
    }
    Ok(CHECK_CHARS[(sum % 11) as usize])
}

/// Positions 7-14 are the birth date as YYYYMMDD; `body` is known to be 17 digits.
fn birth_date_of(body: &str) -> Result<NaiveDate, ResidentIdError> {
    let field = |range: std::ops::Range<usize>| body[range].parse::<u32>().ok();
    let (year, month, day) = (field(6..10), field(10..12), field(12..14));
    let date = match (year, month, day) {
        (Some(y), Some(m), Some(d)) => i32::try_from(y)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, m, d)),
        _ => None,
    };
    date.filter(|d| d.year() >= EARLIEST_BIRTH_YEAR)
        .ok_or(ResidentIdError::BirthDate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Independent statement of ISO 7064 MOD 11-2 as GB 11643 defines it: weight of position i
    /// (counted from the right, the check at position 1) is 2^(i-1) mod 11, and the check value
    /// makes the weighted sum of all 18 positions ≡ 1 (mod 11), with X standing for 10.
    fn reference_check(body: &str) -> char {
        let sum: u64 = body
            .bytes()
            .enumerate()
            .map(|(i, b)| u64::from(b - b'0') * (2_u64.pow(17 - i as u32) % 11))
            .sum();
        let value = (12 - (sum % 11)) % 11;
        if value == 10 {
            'X'
        } else {
            char::from(b'0' + value as u8)
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn standard_example_parses() {
        // The example number in GB 11643-1999.
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(reference_check("11010519491231002"), 'X');
    }

    #[test]
    fn lowercase_x_is_normalised() {
        let id = ResidentId::parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, ResidentId::parse("11010519491231002X").unwrap());
    }

    #[test]
    fn pre_1900_birth_year_is_refused_even_with_a_good_check_digit() {
        // 440524188001010014 is a widely cited number whose check digit is right but whose
        // birth year (1880) is before the programme's earliest accepted year.
        assert_eq!(reference_check("44052418800101001"), '4');
        assert_eq!(
            ResidentId::parse("440524188001010014"),
            Err(ResidentIdError::BirthDate)
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            ResidentId::parse("11010519491231002"),
            Err(ResidentIdError::Length { found: 17 })
        );
        assert_eq!(
            ResidentId::parse("11010519491231002X1"),
            Err(ResidentIdError::Length { found: 19 })
        );
        assert_eq!(
            ResidentId::parse("1101051949123100A2"),
            Err(ResidentIdError::Character { position: 17 })
        );
        assert_eq!(
            ResidentId::parse("X10105194912310023"),
            Err(ResidentIdError::Character { position: 1 })
        );
        assert_eq!(
            ResidentId::parse("11010519491231002Y"),
            Err(ResidentIdError::Character { position: 18 })
        );
        assert_eq!(
            ResidentId::parse("１1010519491231002X"),
            Err(ResidentIdError::Character { position: 1 })
        );
        assert_eq!(
            ResidentId::parse("110105194912310021"),
            Err(ResidentIdError::CheckDigit {
                expected: 'X',
                found: '1'
            })
        );
        let err = ResidentId::parse("110105194912310021").unwrap_err();
        assert!(!err.to_string().contains("1101051949"), "{err}");
    }

    #[test]
    fn impossible_birth_dates_are_refused() {
        for date in [
            "19490229", "20230229", "19491301", "19490001", "19490100", "18991231",
        ] {
            let body = format!("110105{date}002");
            let id = format!("{body}{}", reference_check(&body));
            assert_eq!(
                ResidentId::parse(&id),
                Err(ResidentIdError::BirthDate),
                "{date}"
            );
        }
        let body = "41031120000229123";
        let id = format!("{body}{}", reference_check(body));
        assert_eq!(
            ResidentId::parse(&id).unwrap().birth_date(),
            date(2000, 2, 29)
        );
    }

    #[test]
    fn masks_personal_data_in_debug() {
        let body = "41031119800101123";
        let id = ResidentId::parse(&format!("{body}{}", reference_check(body))).unwrap();
        let check = reference_check(body);
        assert_eq!(id.masked(), format!("410311********123{check}"));
        assert_eq!(
            format!("{id:?}"),
            format!("ResidentId(\"410311********123{check}\")")
        );
        assert!(!format!("{id:?}").contains("19800101"));
    }

    #[test]
    fn age_counts_full_years() {
        let body = "41031119800615123";
        let id = ResidentId::parse(&format!("{body}{}", reference_check(body))).unwrap();
        assert_eq!(id.age_on(date(2025, 6, 14)), 44);
        assert_eq!(id.age_on(date(2025, 6, 15)), 45);
        assert_eq!(id.age_on(date(1980, 6, 15)), 0);
        assert_eq!(id.age_on(date(1970, 1, 1)), 0);
    }

    #[test]
    fn leap_day_birthday_is_reached_on_first_of_march() {
        let body = "41031120000229123";
        let id = ResidentId::parse(&format!("{body}{}", reference_check(body))).unwrap();
        assert_eq!(id.age_on(date(2018, 2, 28)), 17);
        assert_eq!(id.age_on(date(2018, 3, 1)), 18);
        assert_eq!(id.age_on(date(2024, 2, 28)), 23);
        assert_eq!(id.age_on(date(2024, 2, 29)), 24);
    }

    #[test]
    fn check_char_for_helps_build_fixtures() {
        assert_eq!(ResidentId::check_char_for("11010519491231002"), Ok('X'));
        assert!(ResidentId::check_char_for("1101051949123100").is_err());
        assert!(ResidentId::check_char_for("1101051949123100a").is_err());
    }

    #[test]
    fn serde_round_trips_the_full_number() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<ResidentId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ResidentId>("\"110105194912310021\"").is_err());
    }

    fn valid_body() -> impl Strategy<Value = String> {
        let region = proptest::collection::vec(0u8..10, 6);
        let birth = (1900i32..=2099, 1u32..=366)
            .prop_filter_map("real date", |(y, ord)| NaiveDate::from_yo_opt(y, ord));
        let sequence = proptest::collection::vec(0u8..10, 3);
        (region, birth, sequence).prop_map(|(region, birth, sequence)| {
            let digits = |d: Vec<u8>| {
                d.into_iter()
                    .map(|x| char::from(b'0' + x))
                    .collect::<String>()
            };
            format!(
                "{}{}{}",
                digits(region),
                birth.format("%Y%m%d"),
                digits(sequence)
            )
        })
    }

    proptest! {
        #[test]
        fn body_with_its_check_char_parses(body in valid_body()) {
            let number = format!("{body}{}", reference_check(&body));
            let id = ResidentId::parse(&number).unwrap();
            prop_assert_eq!(id.as_str(), number.as_str());
            prop_assert_eq!(id.birth_date().format("%Y%m%d").to_string(), &body[6..14]);
        }

        #[test]
        fn any_single_character_change_is_detected(
            body in valid_body(),
            position in 0usize..18,
            replacement in proptest::sample::select(
                "0123456789X".chars().collect::<Vec<_>>(),
            ),
        ) {
            let number = format!("{body}{}", reference_check(&body));
            let mut changed: Vec<char> = number.chars().collect();
            prop_assume!(changed[position] != replacement);
            changed[position] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert!(ResidentId::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,20}") {
            let _ = ResidentId::parse(&text);
        }
    }
}
