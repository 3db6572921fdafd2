//! Administrative area codes: district > town > village (SPEC section 0, "area").
//!
//! Staff see and act only inside their area, so "does this area contain that one" is asked on
//! every request. Codes nest by prefix (a 6-digit district code from GB/T 2260, then 3 digits
//! for the town and 3 for the village, as in the statistical division codes), which makes
//! containment a prefix test once a code is known to be well formed.

mod registry;
mod typed;

use std::fmt;
use std::path::PathBuf;

pub use registry::{Area, AreaRegistry};
pub use typed::{DistrictCode, TownCode, VillageCode};

use crate::serde_str::serde_via_parse;

const DISTRICT_LEN: usize = 6;
const TOWN_LEN: usize = 9;
const VILLAGE_LEN: usize = 12;

/// The tier an area code names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum AreaLevel {
    District,
    Town,
    Village,
}

impl AreaLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AreaLevel::District => "district",
            AreaLevel::Town => "town",
            AreaLevel::Village => "village",
        }
    }

    fn code_len(self) -> usize {
        match self {
            AreaLevel::District => DISTRICT_LEN,
            AreaLevel::Town => TOWN_LEN,
            AreaLevel::Village => VILLAGE_LEN,
        }
    }
}

impl fmt::Display for AreaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an area code or an area data file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error("area code {code:?} must contain only ASCII digits")]
    NotDigits { code: String },
    #[error(
        "area code {code:?} has {len} characters; expected 6 (district), 9 (town) or 12 (village)"
    )]
    Length { code: String, len: usize },
    #[error("area code {code:?}: the {part} part must not be all zeros ({why})")]
    ZeroPart {
        code: String,
        part: &'static str,
        why: &'static str,
    },
    #[error("area code {code} is a {found} code; a {expected} code is required")]
    WrongLevel {
        code: String,
        expected: AreaLevel,
        found: AreaLevel,
    },
    #[error("cannot read area data file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("area data is not valid TOML of the expected shape")]
    Toml(#[from] toml::de::Error),
    #[error("area {code} is listed more than once")]
    Duplicate { code: AreaCode },
    #[error("area {code} is listed under {parent} but does not belong to it")]
    Misplaced { code: AreaCode, parent: AreaCode },
    #[error("area {code} has an empty name")]
    EmptyName { code: AreaCode },
}

/// A well-formed district (6 digits), town (9) or village (12) code.
///
/// The district part must not end in `00` (that would be a prefecture or province, not a
/// district), and the town and village parts must not be `000` (those denote the level above).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AreaCode(String);

serde_via_parse!(AreaCode, |c| c.as_str());

impl AreaCode {
    pub fn parse(input: &str) -> Result<AreaCode, AreaError> {
        if !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AreaError::NotDigits {
                code: crate::text::excerpt(input),
            });
        }
        if ![DISTRICT_LEN, TOWN_LEN, VILLAGE_LEN].contains(&input.len()) {
            return Err(AreaError::Length {
                code: crate::text::excerpt(input),
                len: input.chars().count(),
            });
        }
        let zero = |part, why| AreaError::ZeroPart {
            code: crate::text::excerpt(input),
            part,
            why,
        };
        // GB/T 2260: 2 digits province, 2 prefecture, 2 county; "00" in any of them names a
        // higher level.
        for (range, part) in [(0..2, "province"), (2..4, "prefecture"), (4..6, "county")] {
            if &input[range] == "00" {
                return Err(zero(
                    part,
                    "a district code has non-zero province, prefecture and county digits",
                ));
            }
        }
        if input.len() >= TOWN_LEN && &input[DISTRICT_LEN..TOWN_LEN] == "000" {
            return Err(zero(
                "town",
                "digits 7-9 of a town or village code name the town",
            ));
        }
        if input.len() == VILLAGE_LEN && &input[TOWN_LEN..VILLAGE_LEN] == "000" {
            return Err(zero(
                "village",
                "digits 10-12 of a village code name the village",
            ));
        }
        Ok(AreaCode(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> AreaLevel {
        match self.0.len() {
            DISTRICT_LEN => AreaLevel::District,
            TOWN_LEN => AreaLevel::Town,
            _ => AreaLevel::Village,
        }
    }

    /// The area one level up, `None` for a district.
    pub fn parent(&self) -> Option<AreaCode> {
        match self.level() {
            AreaLevel::District => None,
            AreaLevel::Town => Some(self.prefix(AreaLevel::District)),
            AreaLevel::Village => Some(self.prefix(AreaLevel::Town)),
        }
    }

    /// Whether `other` is this area or lies inside it. Reflexive: a town officer acts on the
    /// town itself as well as on its villages.
    pub fn contains(&self, other: &AreaCode) -> bool {
        other.0.starts_with(&self.0)
    }

    pub fn district(&self) -> AreaCode {
        self.prefix(AreaLevel::District)
    }

    /// The town of a town or village code, `None` for a district.
    pub fn town(&self) -> Option<AreaCode> {
        (self.level() >= AreaLevel::Town).then(|| self.prefix(AreaLevel::Town))
    }

    /// A prefix of a valid code is itself valid: each part was checked on parsing.
    fn prefix(&self, level: AreaLevel) -> AreaCode {
        AreaCode(self.0[..level.code_len()].to_owned())
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AreaCode {
    type Err = AreaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaCode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> AreaCode {
        AreaCode::parse(s).unwrap()
    }

    #[test]
    fn parses_each_level() {
        assert_eq!(code("410311").level(), AreaLevel::District);
        assert_eq!(code("410311100").level(), AreaLevel::Town);
        assert_eq!(code("410311100201").level(), AreaLevel::Village);
        assert_eq!(code("410311100201").as_str(), "410311100201");
        assert_eq!(code("410311100201").to_string(), "410311100201");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            AreaCode::parse(""),
            Err(AreaError::Length { len: 0, .. })
        ));
        assert!(matches!(
            AreaCode::parse("41031"),
            Err(AreaError::Length { .. })
        ));
        assert!(matches!(
            AreaCode::parse("4103111"),
            Err(AreaError::Length { .. })
        ));
        assert!(matches!(
            AreaCode::parse("41031110020"),
            Err(AreaError::Length { .. })
        ));
        assert!(matches!(
            AreaCode::parse("4103111002011"),
            Err(AreaError::Length { .. })
        ));
        assert!(matches!(
            AreaCode::parse("41031a"),
            Err(AreaError::NotDigits { .. })
        ));
        assert!(matches!(
            AreaCode::parse(" 410311"),
            Err(AreaError::NotDigits { .. })
        ));
        assert!(matches!(
            AreaCode::parse("４１０３１１"),
            Err(AreaError::NotDigits { .. })
        ));
    }

    #[test]
    fn rejects_codes_of_the_wrong_tier() {
        // A prefecture (洛阳市 410300) or province (河南省 410000) is not a district.
        for bad in ["410300", "410000", "000311", "410011"] {
            assert!(
                matches!(AreaCode::parse(bad), Err(AreaError::ZeroPart { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            AreaCode::parse("410311000"),
            Err(AreaError::ZeroPart { part: "town", .. })
        ));
        assert!(matches!(
            AreaCode::parse("410311000201"),
            Err(AreaError::ZeroPart { part: "town", .. })
        ));
        assert!(matches!(
            AreaCode::parse("410311100000"),
            Err(AreaError::ZeroPart {
                part: "village",
                ..
            })
        ));
    }

    #[test]
    fn navigates_up_the_hierarchy() {
        let village = code("410311100201");
        assert_eq!(village.parent(), Some(code("410311100")));
        assert_eq!(village.town(), Some(code("410311100")));
        assert_eq!(village.district(), code("410311"));
        let town = code("410311100");
        assert_eq!(town.parent(), Some(code("410311")));
        assert_eq!(town.town(), Some(town.clone()));
        assert_eq!(code("410311").parent(), None);
        assert_eq!(code("410311").town(), None);
        assert_eq!(code("410311").district(), code("410311"));
    }

    #[test]
    fn containment_follows_the_hierarchy() {
        let district = code("410311");
        let town = code("410311100");
        let village = code("410311100201");
        let other_town = code("410311101");
        let other_village = code("410311101201");
        assert!(district.contains(&district));
        assert!(district.contains(&town));
        assert!(district.contains(&village));
        assert!(town.contains(&town));
        assert!(town.contains(&village));
        assert!(!town.contains(&other_village));
        assert!(!town.contains(&district));
        assert!(!village.contains(&town));
        assert!(!other_town.contains(&village));
        assert!(!code("410302").contains(&village));
    }

    #[test]
    fn serde_goes_through_parse() {
        let json = serde_json::to_string(&code("410311100")).unwrap();
        assert_eq!(json, "\"410311100\"");
        assert_eq!(
            serde_json::from_str::<AreaCode>(&json).unwrap(),
            code("410311100")
        );
        assert!(serde_json::from_str::<AreaCode>("\"410300\"").is_err());
    }

    fn part(len: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, len)
            .prop_map(|d| d.into_iter().map(|x| char::from(b'0' + x)).collect())
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,16}") {
            let _ = AreaCode::parse(&text);
        }

        #[test]
        fn well_formed_codes_nest(d in part(6), t in part(3), v in part(3)) {
            let parsed = AreaCode::parse(&format!("{d}{t}{v}"));
            let ok = &d[0..2] != "00" && &d[2..4] != "00" && &d[4..6] != "00"
                && t != "000" && v != "000";
            prop_assert_eq!(parsed.is_ok(), ok);
            if let Ok(village) = parsed {
                let town = village.parent().unwrap();
                let district = town.parent().unwrap();
                prop_assert!(district.contains(&town) && town.contains(&village));
                prop_assert!(district.contains(&village));
                prop_assert!(village.contains(&village));
                prop_assert!(!village.contains(&town));
                prop_assert_eq!(village.district(), district.clone());
                prop_assert_eq!(AreaCode::parse(town.as_str()).unwrap(), town);
            }
        }
    }
}
