//! Serde for newtypes that travel as strings.
//!
//! Deserialising goes through the type's parsing constructor, so a value read from JSON or
//! TOML is held to exactly the rules of one typed at an API edge: there is no second, laxer
//! way in.

/// Serialises with `$to_str` (an expression over `self` yielding something `Display`) and
/// deserialises a string through `<$ty>::parse`.
macro_rules! serde_via_parse {
    ($ty:ty, |$this:ident| $to_str:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let $this = self;
                serializer.collect_str(&$to_str)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw =
                    <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_via_parse;
