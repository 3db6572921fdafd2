//! Unified social credit codes (GB 32100-2015), the identity of enterprises and cooperatives.
//!
//! An organisation's code is public information, so unlike a resident ID it displays in full.

use std::fmt;

use crate::serde_str::serde_via_parse;

const LEN: usize = 18;
/// The 31 characters of the code, in value order (I, O, Z, S and V are never used).
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1-17: 3^(i-1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Positions 3-8 (0-based 2..8) hold the registering authority's administrative division code.
const DIVISION: std::ops::Range<usize> = 2..8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("unified social credit code must have 18 characters, found {found}")]
    Length { found: usize },
    #[error(
        "unified social credit code character {position} is not one of 0-9 A-H J-N P-R T U W-Y"
    )]
    Character { position: usize },
    #[error(
        "unified social credit code positions 3-8 must be digits (administrative division code)"
    )]
    AdminDivision,
    #[error("unified social credit code check character is {found}, expected {expected}")]
    CheckChar { expected: char, found: char },
}

/// A unified social credit code with a valid check character, stored upper-case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Uscc(String);

serde_via_parse!(Uscc, |c| c.as_str());

impl Uscc {
    /// Parses a code; lower-case letters are accepted and stored upper-case.
    pub fn parse(input: &str) -> Result<Uscc, UsccError> {
        let found = input.chars().count();
        if found != LEN {
            return Err(UsccError::Length { found });
        }
        let code = input.to_ascii_uppercase();
        let values = code
            .bytes()
            .enumerate()
            .map(|(i, b)| value_of(b).ok_or(UsccError::Character { position: i + 1 }))
            .collect::<Result<Vec<_>, _>>()?;
        if !code.as_bytes()[DIVISION].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::AdminDivision);
        }
        let expected = check_char(&values[..LEN - 1]);
        let found = char::from(code.as_bytes()[LEN - 1]);
        if found != expected {
            return Err(UsccError::CheckChar { expected, found });
        }
        Ok(Uscc(code))
    }

    /// The check character for a 17-character body; public so fixtures can build valid codes.
    pub fn check_char_for(body: &str) -> Result<char, UsccError> {
        let found = body.chars().count();
        if found != LEN - 1 {
            return Err(UsccError::Length { found });
        }
        let values = body
            .to_ascii_uppercase()
            .bytes()
            .enumerate()
            .map(|(i, b)| value_of(b).ok_or(UsccError::Character { position: i + 1 }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(check_char(&values))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit administrative division code of the registering authority.
    pub fn admin_division(&self) -> &str {
        &self.0[DIVISION]
    }
}

fn value_of(b: u8) -> Option<u32> {
    CHARSET
        .iter()
        .position(|&c| c == b)
        .and_then(|v| u32::try_from(v).ok())
}

fn check_char(values: &[u32]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    char::from(CHARSET[check as usize])
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Uscc {
    type Err = UsccError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

    /// Independent statement of GB 32100: weight of position i is 3^(i-1) mod 31 and the
    /// check value makes the weighted sum plus the check ≡ 0 (mod 31).
    fn reference_check(body: &str) -> char {
        let sum: u64 = body
            .chars()
            .enumerate()
            .map(|(i, c)| CHARS.find(c).unwrap() as u64 * (3_u64.pow(i as u32) % 31))
            .sum();
        CHARS.chars().nth(((31 - sum % 31) % 31) as usize).unwrap()
    }

    #[test]
    fn published_example_parses() {
        let code = Uscc::parse("91350100M000100Y43").unwrap();
        assert_eq!(code.as_str(), "91350100M000100Y43");
        assert_eq!(code.admin_division(), "350100");
        assert_eq!(code.to_string(), "91350100M000100Y43");
        assert_eq!(reference_check("91350100M000100Y4"), '3');
    }

    #[test]
    fn lower_case_is_normalised() {
        assert_eq!(
            Uscc::parse("91350100m000100y43").unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(UsccError::Length { found: 17 })
        );
        // I, O, Z, S and V are not in the character set.
        for (bad, position) in [
            ("91350100I000100Y43", 9),
            ("91350100O000100Y43", 9),
            ("9135010ZM000100Y43", 8),
            ("91350100M000100S43", 16),
            ("V1350100M000100Y43", 1),
            ("91350100M000100Y4-", 18),
        ] {
            assert_eq!(
                Uscc::parse(bad),
                Err(UsccError::Character { position }),
                "{bad}"
            );
        }
        assert_eq!(
            Uscc::parse("913A0100M000100Y43"),
            Err(UsccError::AdminDivision)
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(UsccError::CheckChar {
                expected: '3',
                found: '4'
            })
        );
        assert!(Uscc::parse("91350100M000100Y4３").is_err());
    }

    #[test]
    fn serde_goes_through_parse() {
        let code = Uscc::parse("91350100M000100Y43").unwrap();
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, "\"91350100M000100Y43\"");
        assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), code);
        assert!(serde_json::from_str::<Uscc>("\"91350100M000100Y44\"").is_err());
    }

    #[test]
    fn check_char_for_helps_build_fixtures() {
        assert_eq!(Uscc::check_char_for("91350100M000100Y4"), Ok('3'));
        assert_eq!(
            Uscc::check_char_for("91410311MA0000001"),
            Ok(reference_check("91410311MA0000001"))
        );
        assert!(Uscc::check_char_for("91350100M000100Y").is_err());
    }

    fn valid_body() -> impl Strategy<Value = String> {
        let any_char = proptest::sample::select(CHARS.chars().collect::<Vec<_>>());
        let digit = proptest::sample::select("0123456789".chars().collect::<Vec<_>>());
        (
            proptest::collection::vec(any_char.clone(), 2),
            proptest::collection::vec(digit, 6),
            proptest::collection::vec(any_char, 9),
        )
            .prop_map(|(a, b, c)| a.into_iter().chain(b).chain(c).collect())
    }

    proptest! {
        #[test]
        fn body_with_its_check_char_parses(body in valid_body()) {
            let code = format!("{body}{}", reference_check(&body));
            let parsed = Uscc::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
        }

        #[test]
        fn any_single_character_change_is_detected(
            body in valid_body(),
            position in 0usize..18,
            replacement in proptest::sample::select(CHARS.chars().collect::<Vec<_>>()),
        ) {
            let code = format!("{body}{}", reference_check(&body));
            let mut changed: Vec<char> = code.chars().collect();
            prop_assume!(changed[position] != replacement);
            changed[position] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert!(Uscc::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,20}") {
            let _ = Uscc::parse(&text);
        }
    }
}
