//! Credit grades (R-CR-2, R-CR-3, R-CR-8).
//!
//! The grade decides whether a household is a credit household and which credit line applies,
//! so it is a closed set of values rather than a free string.

use std::fmt;

use crate::serde_str::serde_via_parse;

/// A household's or enterprise's credit grade, ordered from worst to best so that
/// `grade >= CreditGrade::A` reads as "A or better".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CreditGrade {
    C,
    B,
    A,
    Aa,
    Aaa,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credit grade {0:?} is not one of AAA, AA, A, B, C")]
pub struct CreditGradeError(pub String);

serde_via_parse!(CreditGrade, |g| g.as_str());

impl CreditGrade {
    pub const ALL: [CreditGrade; 5] = [
        CreditGrade::Aaa,
        CreditGrade::Aa,
        CreditGrade::A,
        CreditGrade::B,
        CreditGrade::C,
    ];

    /// Parses the upper-case grade names used in the plans ("AAA", "AA", "A", "B", "C").
    pub fn parse(input: &str) -> Result<CreditGrade, CreditGradeError> {
        CreditGrade::ALL
            .into_iter()
            .find(|grade| grade.as_str() == input)
            .ok_or_else(|| CreditGradeError(input.to_owned()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CreditGrade::Aaa => "AAA",
            CreditGrade::Aa => "AA",
            CreditGrade::A => "A",
            CreditGrade::B => "B",
            CreditGrade::C => "C",
        }
    }

    /// A or better: the grade part of being a credit household (R-CR-3) and of admission
    /// (R-IN-3). The veto and effectiveness are the credit service's to decide.
    pub fn is_credit_grade(self) -> bool {
        self >= CreditGrade::A
    }
}

impl fmt::Display for CreditGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CreditGrade {
    type Err = CreditGradeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreditGrade::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_every_grade() {
        for grade in CreditGrade::ALL {
            assert_eq!(CreditGrade::parse(grade.as_str()), Ok(grade));
            assert_eq!(grade.to_string(), grade.as_str());
        }
        for bad in ["", "aaa", "AAAA", "D", " A", "A+"] {
            assert!(CreditGrade::parse(bad).is_err(), "{bad}");
        }
    }

    // R-CR-3
    #[test]
    fn a_or_better_is_a_credit_grade() {
        assert!(CreditGrade::Aaa > CreditGrade::Aa && CreditGrade::Aa > CreditGrade::A);
        assert!(CreditGrade::A.is_credit_grade());
        assert!(CreditGrade::Aaa.is_credit_grade());
        assert!(!CreditGrade::B.is_credit_grade());
        assert!(!CreditGrade::C.is_credit_grade());
    }

    #[test]
    fn serde_uses_the_grade_name() {
        assert_eq!(serde_json::to_string(&CreditGrade::Aa).unwrap(), "\"AA\"");
        assert_eq!(
            serde_json::from_str::<CreditGrade>("\"AAA\"").unwrap(),
            CreditGrade::Aaa
        );
        assert!(serde_json::from_str::<CreditGrade>("\"aa\"").is_err());
    }
}
