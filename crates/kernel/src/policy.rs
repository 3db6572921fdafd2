//! Versioned policy with effective dates (R-X-4).
//!
//! Thresholds, periods and lines change by decision, and a decision must be explainable later
//! with the values in force when it was taken. So policy is a history of versions, each with
//! an id and the date it takes effect; a decision asks for the version [`in force`] on its date
//! and records that version's id.
//!
//! TOML shape (the value sits under `value`, so version metadata and policy fields never
//! collide and unknown fields in either are errors):
//!
//! ```toml
//! [[versions]]
//! id = "luolong-2026.1"
//! effective_from = "2024-01-01"   # a quoted ISO date
//!
//! [versions.value]
//! max_amount = "50000.00"
//! # ...
//! ```
//!
//! [`in force`]: PolicyHistory::in_force

mod intake;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use intake::IntakePolicy;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("a policy history needs at least one version")]
    Empty,
    #[error("policy version id must not be empty")]
    EmptyId,
    #[error("policy version id {0:?} is used twice")]
    DuplicateId(String),
    #[error("two policy versions take effect on {0}")]
    DuplicateEffectiveDate(NaiveDate),
    #[error("no policy version is in force on {on}; the earliest takes effect on {earliest}")]
    NotInForce { on: NaiveDate, earliest: NaiveDate },
    #[error("policy value is invalid: {0}")]
    Invalid(String),
    #[error("cannot read policy file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy data is not valid TOML of the expected shape")]
    Toml(#[from] toml::de::Error),
}

/// Which version of a policy, recorded with every decision taken under it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: String,
    pub effective_from: NaiveDate,
}

/// A policy value with its version.
#[derive(Clone, PartialEq, Debug)]
pub struct Versioned<T> {
    pub version: PolicyVersion,
    pub value: T,
}

/// All versions of one policy, sorted by effective date, ids and dates unique.
#[derive(Clone, Debug)]
pub struct PolicyHistory<T> {
    versions: Vec<Versioned<T>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory<T> {
    versions: Vec<RawVersion<T>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion<T> {
    id: String,
    effective_from: NaiveDate,
    value: T,
}

impl<T> PolicyHistory<T> {
    pub fn new(mut versions: Vec<Versioned<T>>) -> Result<PolicyHistory<T>, PolicyError> {
        if versions.is_empty() {
            return Err(PolicyError::Empty);
        }
        let mut ids = BTreeSet::new();
        let mut dates = BTreeSet::new();
        for Versioned { version, .. } in &versions {
            if version.id.trim().is_empty() {
                return Err(PolicyError::EmptyId);
            }
            if !ids.insert(version.id.as_str()) {
                return Err(PolicyError::DuplicateId(version.id.clone()));
            }
            if !dates.insert(version.effective_from) {
                return Err(PolicyError::DuplicateEffectiveDate(version.effective_from));
            }
        }
        versions.sort_by_key(|v| v.version.effective_from);
        Ok(PolicyHistory { versions })
    }

    /// The latest version whose `effective_from` is on or before `on`.
    pub fn in_force(&self, on: NaiveDate) -> Result<&Versioned<T>, PolicyError> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.version.effective_from <= on)
            .ok_or_else(|| PolicyError::NotInForce {
                on,
                earliest: self.versions[0].version.effective_from,
            })
    }

    /// The version a past decision recorded, to re-explain it.
    pub fn by_id(&self, id: &str) -> Option<&Versioned<T>> {
        self.versions.iter().find(|v| v.version.id == id)
    }

    /// All versions, oldest first.
    pub fn versions(&self) -> &[Versioned<T>] {
        &self.versions
    }
}

impl<T: DeserializeOwned> PolicyHistory<T> {
    pub fn from_toml_str(text: &str) -> Result<PolicyHistory<T>, PolicyError> {
        let raw: RawHistory<T> = toml::from_str(text)?;
        let versions = raw
            .versions
            .into_iter()
            .map(|raw| Versioned {
                version: PolicyVersion {
                    id: raw.id,
                    effective_from: raw.effective_from,
                },
                value: raw.value,
            })
            .collect();
        PolicyHistory::new(versions)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<PolicyHistory<T>, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        PolicyHistory::from_toml_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn version(id: &str, from: NaiveDate, value: u32) -> Versioned<u32> {
        Versioned {
            version: PolicyVersion {
                id: id.into(),
                effective_from: from,
            },
            value,
        }
    }

    fn history() -> PolicyHistory<u32> {
        PolicyHistory::new(vec![
            version("v2", date(2025, 7, 1), 2),
            version("v1", date(2024, 1, 1), 1),
            version("v3", date(2026, 1, 1), 3),
        ])
        .unwrap()
    }

    // R-X-4
    #[test]
    fn in_force_is_the_latest_version_already_effective() {
        let history = history();
        assert_eq!(history.in_force(date(2024, 1, 1)).unwrap().value, 1);
        assert_eq!(history.in_force(date(2025, 6, 30)).unwrap().value, 1);
        assert_eq!(history.in_force(date(2025, 7, 1)).unwrap().value, 2);
        let latest = history.in_force(date(2030, 1, 1)).unwrap();
        assert_eq!((latest.version.id.as_str(), latest.value), ("v3", 3));
        assert!(matches!(
            history.in_force(date(2023, 12, 31)),
            Err(PolicyError::NotInForce { earliest, .. }) if earliest == date(2024, 1, 1)
        ));
    }

    #[test]
    fn versions_are_sorted_and_findable_by_id() {
        let history = history();
        let ids: Vec<_> = history
            .versions()
            .iter()
            .map(|v| v.version.id.as_str())
            .collect();
        assert_eq!(ids, ["v1", "v2", "v3"]);
        assert_eq!(history.by_id("v2").unwrap().value, 2);
        assert!(history.by_id("v9").is_none());
    }

    #[test]
    fn rejects_empty_duplicate_ids_and_duplicate_dates() {
        assert!(matches!(
            PolicyHistory::<u32>::new(vec![]),
            Err(PolicyError::Empty)
        ));
        assert!(matches!(
            PolicyHistory::new(vec![version(" ", date(2024, 1, 1), 1)]),
            Err(PolicyError::EmptyId)
        ));
        assert!(matches!(
            PolicyHistory::new(vec![
                version("v1", date(2024, 1, 1), 1),
                version("v1", date(2025, 1, 1), 2),
            ]),
            Err(PolicyError::DuplicateId(id)) if id == "v1"
        ));
        assert!(matches!(
            PolicyHistory::new(vec![
                version("v1", date(2024, 1, 1), 1),
                version("v2", date(2024, 1, 1), 2),
            ]),
            Err(PolicyError::DuplicateEffectiveDate(_))
        ));
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Threshold {
        percent: u32,
    }

    #[test]
    fn deserialises_from_toml_with_value_tables() {
        let text = r#"
            [[versions]]
            id = "b"
            effective_from = "2026-01-01"
            [versions.value]
            percent = 7

            [[versions]]
            id = "a"
            effective_from = "2024-01-01"
            [versions.value]
            percent = 5
        "#;
        let history = PolicyHistory::<Threshold>::from_toml_str(text).unwrap();
        assert_eq!(history.in_force(date(2025, 1, 1)).unwrap().value.percent, 5);
        assert_eq!(history.in_force(date(2026, 1, 1)).unwrap().version.id, "b");
        let typo = text.replace("percent = 7", "percnt = 7");
        assert!(matches!(
            PolicyHistory::<Threshold>::from_toml_str(&typo),
            Err(PolicyError::Toml(_))
        ));
        let dup = text.replace("\"2026-01-01\"", "\"2024-01-01\"");
        assert!(matches!(
            PolicyHistory::<Threshold>::from_toml_str(&dup),
            Err(PolicyError::DuplicateEffectiveDate(_))
        ));
    }

    #[test]
    fn version_serialises_for_decision_records() {
        let v = PolicyVersion {
            id: "luolong-2026.1".into(),
            effective_from: date(2024, 1, 1),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"id":"luolong-2026.1","effective_from":"2024-01-01"}"#
        );
    }
}
