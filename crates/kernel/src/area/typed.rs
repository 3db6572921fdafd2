//! Area codes that are known to be of one level.
//!
//! A household's village, a station's town and the center's district are different things; a
//! function that needs a village takes a [`VillageCode`] and cannot be handed a town by mistake.

use std::fmt;

use super::{AreaCode, AreaError, AreaLevel};
use crate::serde_str::serde_via_parse;

macro_rules! level_code {
    ($(#[$doc:meta])* $name:ident, $level:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(AreaCode);

        serde_via_parse!($name, |c| c.as_str());

        impl $name {
            /// Parses an area code and requires it to be of this level.
            pub fn parse(input: &str) -> Result<$name, AreaError> {
                $name::try_from(AreaCode::parse(input)?)
            }

            pub fn as_area(&self) -> &AreaCode {
                &self.0
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl TryFrom<AreaCode> for $name {
            type Error = AreaError;

            fn try_from(code: AreaCode) -> Result<Self, Self::Error> {
                let found = code.level();
                if found == $level {
                    Ok($name(code))
                } else {
                    Err(AreaError::WrongLevel {
                        code: code.0,
                        expected: $level,
                        found,
                    })
                }
            }
        }

        impl From<$name> for AreaCode {
            fn from(code: $name) -> AreaCode {
                code.0
            }
        }

        impl AsRef<AreaCode> for $name {
            fn as_ref(&self) -> &AreaCode {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = AreaError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

level_code!(
    /// A 6-digit district (区/县) code such as `410311`.
    DistrictCode,
    AreaLevel::District
);
level_code!(
    /// A 9-digit town or sub-district office (镇/办事处) code such as `410311100`.
    TownCode,
    AreaLevel::Town
);
level_code!(
    /// A 12-digit administrative village (行政村) code such as `410311100201`.
    VillageCode,
    AreaLevel::Village
);

impl TownCode {
    pub fn district(&self) -> DistrictCode {
        DistrictCode(self.0.district())
    }
}

impl VillageCode {
    pub fn town(&self) -> TownCode {
        TownCode(self.0.prefix(AreaLevel::Town))
    }

    pub fn district(&self) -> DistrictCode {
        DistrictCode(self.0.district())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_requires_its_level() {
        assert!(DistrictCode::parse("410311").is_ok());
        assert!(TownCode::parse("410311100").is_ok());
        assert!(VillageCode::parse("410311100201").is_ok());
        let err = VillageCode::parse("410311100").unwrap_err();
        assert!(matches!(
            err,
            AreaError::WrongLevel {
                expected: AreaLevel::Village,
                found: AreaLevel::Town,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "area code 410311100 is a town code; a village code is required"
        );
        assert!(TownCode::parse("410311").is_err());
        assert!(DistrictCode::parse("410311100201").is_err());
        assert!(matches!(
            TownCode::parse("410311000"),
            Err(AreaError::ZeroPart { .. })
        ));
    }

    #[test]
    fn village_knows_its_town_and_district() {
        let village = VillageCode::parse("410311102203").unwrap();
        assert_eq!(village.town(), TownCode::parse("410311102").unwrap());
        assert_eq!(village.district(), DistrictCode::parse("410311").unwrap());
        assert_eq!(village.town().district(), village.district());
        assert!(village.town().as_area().contains(village.as_area()));
    }

    #[test]
    fn converts_to_and_from_area_code() {
        let village = VillageCode::parse("410311102203").unwrap();
        let area: AreaCode = village.clone().into();
        assert_eq!(area.as_str(), village.as_str());
        assert_eq!(VillageCode::try_from(area).unwrap(), village);
        let town_area = AreaCode::parse("410311102").unwrap();
        assert!(VillageCode::try_from(town_area).is_err());
    }

    #[test]
    fn serde_requires_the_level() {
        let town = TownCode::parse("410311102").unwrap();
        let json = serde_json::to_string(&town).unwrap();
        assert_eq!(json, "\"410311102\"");
        assert_eq!(serde_json::from_str::<TownCode>(&json).unwrap(), town);
        assert!(serde_json::from_str::<VillageCode>(&json).is_err());
    }
}
