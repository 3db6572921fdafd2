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

use std::collections::{BTreeMap, BTreeSet};
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
    #[error(
        "policy version {id:?} is not the version first used under that id (its {what} \
         changed): a version decisions have used is never edited; add a new version with a new \
         id and a later effective date [R-X-4]"
    )]
    Changed { id: String, what: &'static str },
    #[error(
        "new policy version {id:?} takes effect on {effective_from}, not after today \
         ({today}): decisions already taken on those days recorded the version in force then; \
         give it a later effective date [R-X-4]"
    )]
    Backdated {
        id: String,
        effective_from: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "policy version {id:?} (in force from {effective_from}) is missing from the file: \
         decisions and pending deadlines name it; keep it, and add a new version to change \
         the values [R-X-4]"
    )]
    Removed {
        id: String,
        effective_from: NaiveDate,
    },
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
    /// By version id, a digest of the version's values as the file wrote them (keys sorted,
    /// comments and layout aside); only for a history read from TOML.
    digests: BTreeMap<String, String>,
}

/// A policy version as a service first registered it (R-X-4): what later starts are held to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KnownVersion {
    pub id: String,
    pub effective_from: NaiveDate,
    /// Empty when the history it came from was not read from TOML (nothing to compare).
    pub digest: String,
}

/// What a start changes in the registered versions: the versions to add and the ids of
/// versions withdrawn before they took effect.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Registration {
    pub add: Vec<KnownVersion>,
    pub withdraw: Vec<String>,
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
        Ok(PolicyHistory {
            versions,
            digests: BTreeMap::new(),
        })
    }

    /// The digest of version `id`'s values as its file wrote them, if it was read from TOML.
    pub fn digest(&self, id: &str) -> Option<&str> {
        self.digests.get(id).map(String::as_str)
    }

    /// Checks this history against the versions registered by earlier starts (`known`) on
    /// `today`, so a recorded version id keeps meaning what it meant when decisions used it
    /// (R-X-4):
    /// - a known version still in the file has the same effective date and values (a used
    ///   version edited in place, or replicas running different files under one id, would
    ///   make the id mean two things);
    /// - a version new to this database takes effect after today, unless nothing was known
    ///   (the first start, or the first since versions were registered): one that takes
    ///   effect on a day already past, or today, would stand for days whose decisions recorded
    ///   another;
    /// - a known version missing from the file had not taken effect yet (withdrawn before its
    ///   day); one that had may be named by decisions and pending deadlines, counted later by
    ///   its values.
    pub fn register(
        &self,
        known: &[KnownVersion],
        today: NaiveDate,
    ) -> Result<Registration, PolicyError> {
        let mut plan = Registration::default();
        for v in &self.versions {
            let id = &v.version.id;
            let digest = self.digest(id).unwrap_or_default();
            match known.iter().find(|k| &k.id == id) {
                Some(k) if k.effective_from != v.version.effective_from => {
                    return Err(PolicyError::Changed {
                        id: id.clone(),
                        what: "effective date",
                    });
                }
                Some(k) if !k.digest.is_empty() && !digest.is_empty() && k.digest != digest => {
                    return Err(PolicyError::Changed {
                        id: id.clone(),
                        what: "values",
                    });
                }
                Some(_) => {}
                None if !known.is_empty() && v.version.effective_from <= today => {
                    return Err(PolicyError::Backdated {
                        id: id.clone(),
                        effective_from: v.version.effective_from,
                        today,
                    });
                }
                None => plan.add.push(KnownVersion {
                    id: id.clone(),
                    effective_from: v.version.effective_from,
                    digest: digest.to_owned(),
                }),
            }
        }
        for k in known {
            if self.by_id(&k.id).is_some() {
                continue;
            }
            if k.effective_from <= today {
                return Err(PolicyError::Removed {
                    id: k.id.clone(),
                    effective_from: k.effective_from,
                });
            }
            plan.withdraw.push(k.id.clone());
        }
        Ok(plan)
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
        let mut history = PolicyHistory::new(versions)?;
        let tables: RawHistory<toml::Table> = toml::from_str(text)?;
        history.digests = tables
            .versions
            .into_iter()
            .map(|raw| {
                let mut hash = crate::fnv::Fnv1a::new();
                canonical(&toml::Value::Table(raw.value), &mut hash);
                (raw.id, hash.hex())
            })
            .collect();
        Ok(history)
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

/// Feeds `value` to `hash` with every table's keys sorted, so the digest depends on what a
/// version says, not on the order or layout it was written in.
fn canonical(value: &toml::Value, hash: &mut crate::fnv::Fnv1a) {
    match value {
        toml::Value::Table(table) => {
            let mut keys: Vec<_> = table.keys().collect();
            keys.sort();
            hash.feed("{");
            for key in keys {
                hash.feed(&format!("k{}:{key}=", key.len()));
                canonical(&table[key.as_str()], hash);
                hash.feed(";");
            }
            hash.feed("}");
        }
        toml::Value::Array(items) => {
            hash.feed("[");
            for item in items {
                canonical(item, hash);
                hash.feed(",");
            }
            hash.feed("]");
        }
        // Each scalar by its type and its value as parsed, not as a TOML library prints it:
        // a dependency update must not make every registered version look edited.
        toml::Value::String(text) => hash.feed(&format!("s{}:{text}", text.len())),
        toml::Value::Integer(n) => hash.feed(&format!("i{n}")),
        toml::Value::Float(f) => hash.feed(&format!("f{:016x}", f.to_bits())),
        toml::Value::Boolean(b) => hash.feed(if *b { "b1" } else { "b0" }),
        toml::Value::Datetime(d) => {
            let text = d.to_string();
            hash.feed(&format!("d{}:{text}", text.len()));
        }
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

    const TWO_VERSIONS: &str = r#"
        [[versions]]
        id = "a"
        effective_from = "2024-01-01"
        [versions.value]
        percent = 5

        [[versions]]
        id = "b"
        effective_from = "2026-07-01"
        [versions.value]
        percent = 7
    "#;

    fn known(history: &PolicyHistory<Threshold>) -> Vec<KnownVersion> {
        history
            .register(&[], date(2020, 1, 1))
            .expect("a first start registers every version")
            .add
    }

    fn load(text: &str) -> PolicyHistory<Threshold> {
        PolicyHistory::from_toml_str(text).expect("loads")
    }

    // R-X-4: a start registers what each version id means; the same file again, laid out or
    // commented differently, changes nothing.
    #[test]
    fn the_first_start_registers_every_version_and_the_same_file_passes_again() {
        let history = load(TWO_VERSIONS);
        let known = known(&history);
        assert_eq!(
            known.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(known.iter().all(|k| k.digest.len() == 16));
        let today = date(2026, 12, 2);
        assert_eq!(
            history.register(&known, today).unwrap(),
            Registration::default()
        );
        let relaid = TWO_VERSIONS.replace(
            "percent = 5",
            "# five
        percent     =   5",
        );
        assert_eq!(
            load(&relaid).register(&known, today).unwrap(),
            Registration::default()
        );
        // A first start takes the file as it is, whatever its dates.
        assert_eq!(history.register(&[], today).unwrap().add, known);
    }

    // R-X-4: the digest is this code's own encoding of the values, pinned: a change of it (or
    // of a TOML library's printing) would make every registered version look edited and stop
    // every start.
    #[test]
    fn the_digest_of_a_version_is_pinned() {
        let history = load(TWO_VERSIONS);
        assert_eq!(history.digest("a"), Some("4c0b0fe187c0dfa0"));
        assert_eq!(history.digest("b"), Some("5c4065e1909e0f8a"));
    }

    // R-X-4: a version that decisions may have used is never edited in place.
    #[test]
    fn a_registered_version_edited_in_place_is_refused() {
        let known = known(&load(TWO_VERSIONS));
        let today = date(2026, 12, 2);
        let values = load(&TWO_VERSIONS.replace("percent = 5", "percent = 6"));
        assert!(matches!(
            values.register(&known, today),
            Err(PolicyError::Changed { id, what: "values" }) if id == "a"
        ));
        let moved = load(&TWO_VERSIONS.replace("2026-07-01", "2026-08-01"));
        assert!(matches!(
            moved.register(&known, today),
            Err(PolicyError::Changed { id, what: "effective date" }) if id == "b"
        ));
    }

    // R-X-4: a new version takes effect after the day it is deployed, never on a day already
    // decided under another.
    #[test]
    fn a_new_version_takes_effect_after_today() {
        let known = known(&load(TWO_VERSIONS));
        let today = date(2026, 12, 2);
        let with = |from: &str| {
            load(&format!(
                "{TWO_VERSIONS}\n[[versions]]\nid = \"c\"\neffective_from = \"{from}\"\n\
                 [versions.value]\npercent = 9\n"
            ))
            .register(&known, today)
        };
        let plan = with("2026-12-03").expect("tomorrow");
        assert_eq!(
            plan.add
                .iter()
                .map(|k| (k.id.as_str(), k.effective_from))
                .collect::<Vec<_>>(),
            [("c", date(2026, 12, 3))]
        );
        for day in ["2026-12-02", "2026-01-01"] {
            assert!(
                matches!(with(day), Err(PolicyError::Backdated { id, .. }) if id == "c"),
                "{day}"
            );
        }
    }

    // R-X-4: a version that has taken effect stays in the file; one withdrawn before its day
    // is forgotten.
    #[test]
    fn a_version_in_force_once_may_not_be_removed() {
        let known = known(&load(TWO_VERSIONS));
        let only_a = r#"
            [[versions]]
            id = "a"
            effective_from = "2024-01-01"
            [versions.value]
            percent = 5
        "#;
        let plan = load(only_a).register(&known, date(2026, 6, 30)).unwrap();
        assert_eq!(plan.withdraw, ["b"]);
        assert!(matches!(
            load(only_a).register(&known, date(2026, 7, 1)),
            Err(PolicyError::Removed { id, .. }) if id == "b"
        ));
    }

    // R-X-4: a history built in code has no digests: only dates are compared.
    #[test]
    fn a_history_built_in_code_compares_dates_only() {
        let known = known(&load(TWO_VERSIONS));
        let built = PolicyHistory::new(vec![
            Versioned {
                version: PolicyVersion {
                    id: "a".into(),
                    effective_from: date(2024, 1, 1),
                },
                value: Threshold { percent: 1 },
            },
            Versioned {
                version: PolicyVersion {
                    id: "b".into(),
                    effective_from: date(2026, 7, 1),
                },
                value: Threshold { percent: 1 },
            },
        ])
        .unwrap();
        assert_eq!(built.digest("a"), None);
        assert_eq!(
            built.register(&known, date(2026, 12, 2)).unwrap(),
            Registration::default()
        );
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
