//! The district's areas, loaded from a data file (`deploy/areas/<district>.toml`).
//!
//! Which towns and villages exist is data that changes with administrative reforms, so it
//! lives in a file rather than in code. The file is checked as a whole on loading: every town
//! must lie in the district, every village in the town it is listed under, no code twice.
//!
//! File shape:
//!
//! ```toml
//! [district]
//! code = "410311"
//! name = "洛龙区"
//!
//! [[towns]]
//! code = "410311100"
//! name = "安乐镇"
//! villages = [
//!   { code = "410311100201", name = "军屯村" },
//! ]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{AreaCode, AreaError, AreaLevel, DistrictCode, TownCode, VillageCode};

/// One district, town or village with its name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Area {
    code: AreaCode,
    name: String,
}

impl Area {
    pub fn code(&self) -> &AreaCode {
        &self.code
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Derived from the code, so it cannot disagree with it.
    pub fn level(&self) -> AreaLevel {
        self.code.level()
    }
}

/// All areas of one district, validated as a tree.
#[derive(Clone, Debug)]
pub struct AreaRegistry {
    district: Area,
    /// Towns and villages by code; code order lists each town followed by its villages.
    below: BTreeMap<AreaCode, Area>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    district: RawArea<DistrictCode>,
    #[serde(default)]
    towns: Vec<RawTown>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTown {
    code: TownCode,
    name: String,
    #[serde(default)]
    villages: Vec<RawArea<VillageCode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArea<C> {
    code: C,
    name: String,
}

impl AreaRegistry {
    pub fn from_toml_str(text: &str) -> Result<AreaRegistry, AreaError> {
        let raw: RawRegistry = toml::from_str(text)?;
        let district = area(raw.district.code.into(), raw.district.name)?;
        let mut below = BTreeMap::new();
        for town in raw.towns {
            let town_code: AreaCode = town.code.into();
            insert(
                &mut below,
                &district.code,
                area(town_code.clone(), town.name)?,
            )?;
            for village in town.villages {
                insert(
                    &mut below,
                    &town_code,
                    area(village.code.into(), village.name)?,
                )?;
            }
        }
        Ok(AreaRegistry { district, below })
    }

    pub fn load(path: impl AsRef<Path>) -> Result<AreaRegistry, AreaError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| AreaError::Io {
            path: path.to_owned(),
            source,
        })?;
        AreaRegistry::from_toml_str(&text)
    }

    pub fn district(&self) -> &Area {
        &self.district
    }

    pub fn get(&self, code: &AreaCode) -> Option<&Area> {
        if *code == self.district.code {
            Some(&self.district)
        } else {
            self.below.get(code)
        }
    }

    pub fn exists(&self, code: &AreaCode) -> bool {
        self.get(code).is_some()
    }

    pub fn towns(&self) -> impl Iterator<Item = &Area> {
        self.below
            .values()
            .filter(|area| area.level() == AreaLevel::Town)
    }

    /// The villages of `town`, in code order; empty when `town` is not a known town.
    pub fn villages_of<'a>(&'a self, town: &AreaCode) -> impl Iterator<Item = &'a Area> + use<'a> {
        let town = town.clone();
        self.below.values().filter(move |area| {
            area.level() == AreaLevel::Village && area.code.parent().as_ref() == Some(&town)
        })
    }

    /// The district, then each town followed by its villages.
    pub fn all(&self) -> impl Iterator<Item = &Area> {
        std::iter::once(&self.district).chain(self.below.values())
    }
}

fn area(code: AreaCode, name: String) -> Result<Area, AreaError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(AreaError::EmptyName { code });
    }
    Ok(Area { code, name })
}

fn insert(
    below: &mut BTreeMap<AreaCode, Area>,
    parent: &AreaCode,
    area: Area,
) -> Result<(), AreaError> {
    if area.code.parent().as_ref() != Some(parent) {
        return Err(AreaError::Misplaced {
            code: area.code,
            parent: parent.clone(),
        });
    }
    if below.contains_key(&area.code) {
        return Err(AreaError::Duplicate { code: area.code });
    }
    below.insert(area.code.clone(), area);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/areas/410311.toml"
    );

    fn code(s: &str) -> AreaCode {
        AreaCode::parse(s).unwrap()
    }

    const SMALL: &str = r#"
        [district]
        code = "410311"
        name = "洛龙区"

        [[towns]]
        code = "410311100"
        name = "安乐镇"
        villages = [
          { code = "410311100201", name = "甲村" },
          { code = "410311100202", name = "乙村" },
        ]

        [[towns]]
        code = "410311101"
        name = "白马寺镇"
        villages = [{ code = "410311101201", name = "丙村" }]
    "#;

    #[test]
    fn loads_a_small_registry() {
        let registry = AreaRegistry::from_toml_str(SMALL).unwrap();
        assert_eq!(registry.district().name(), "洛龙区");
        assert_eq!(registry.district().level(), AreaLevel::District);
        assert_eq!(registry.towns().count(), 2);
        let villages: Vec<_> = registry
            .villages_of(&code("410311100"))
            .map(|a| a.name())
            .collect();
        assert_eq!(villages, ["甲村", "乙村"]);
        assert_eq!(registry.villages_of(&code("410311102")).count(), 0);
        assert_eq!(registry.all().count(), 6);
        assert_eq!(registry.get(&code("410311101201")).unwrap().name(), "丙村");
        assert!(registry.exists(&code("410311")));
        assert!(!registry.exists(&code("410311100203")));
    }

    #[test]
    fn rejects_a_town_outside_the_district() {
        let text = SMALL.replace("410311101\"", "410302101\"");
        let err = AreaRegistry::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, AreaError::Misplaced { .. }), "{err}");
    }

    #[test]
    fn rejects_a_village_under_the_wrong_town() {
        let text = SMALL.replace("410311101201", "410311100203");
        let err = AreaRegistry::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, AreaError::Misplaced { .. }), "{err}");
    }

    #[test]
    fn rejects_duplicates() {
        let text = SMALL.replace("410311100202", "410311100201");
        let err = AreaRegistry::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, AreaError::Duplicate { .. }), "{err}");
        let text = SMALL
            .replace("410311101\"", "410311100\"")
            .replace("410311101201", "410311100209");
        let err = AreaRegistry::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, AreaError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn rejects_wrong_levels_unknown_fields_and_empty_names() {
        let text = SMALL.replace("code = \"410311101\"", "code = \"410311101201\"");
        assert!(matches!(
            AreaRegistry::from_toml_str(&text),
            Err(AreaError::Toml(_))
        ));
        let text = SMALL.replace("name = \"洛龙区\"", "name = \"洛龙区\"\nnmae = \"x\"");
        assert!(matches!(
            AreaRegistry::from_toml_str(&text),
            Err(AreaError::Toml(_))
        ));
        let text = SMALL.replace("甲村", " ");
        assert!(matches!(
            AreaRegistry::from_toml_str(&text),
            Err(AreaError::EmptyName { .. })
        ));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let err = AreaRegistry::load("/nonexistent/areas.toml").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/areas.toml"), "{err}");
    }

    #[test]
    fn shipped_luolong_file_loads() {
        let registry = AreaRegistry::load(SHIPPED).unwrap();
        assert_eq!(registry.district().code(), &code("410311"));
        assert_eq!(registry.district().name(), "洛龙区");
        assert!(registry.towns().count() >= 6);
        for town in registry.towns() {
            let villages = registry.villages_of(town.code()).count();
            assert!(
                (3..=4).contains(&villages),
                "{} has {villages} villages",
                town.name()
            );
        }
        let anle = registry.get(&code("410311100")).unwrap();
        assert_eq!(anle.name(), "安乐镇");
        // Every listed area lies in the district and is reachable from its parent.
        for area in registry.all() {
            assert!(registry.district().code().contains(area.code()));
            if let Some(parent) = area.code().parent() {
                assert!(registry.exists(&parent));
            }
        }
    }
}
