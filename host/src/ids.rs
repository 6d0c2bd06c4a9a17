//! Identifiers as types, so that a plugin id is never passed where an instance id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {value:?} is not valid: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit")]
pub struct InvalidId {
    kind: &'static str,
    value: String,
}

/// The rule of [`PluginId`] and [`InstanceId`] as a regular expression (OpenAPI `pattern`).
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// Field names of a plugin's configuration: Rust identifiers, as serde derives them. The
/// host refuses a schema with other names, so API paths that name a field can be checked
/// against this (OpenAPI `pattern`).
pub const FIELD_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,63}$";

/// Whether `name` matches [`FIELD_NAME_PATTERN`].
pub fn is_field_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            kind,
            value: value.to_owned(),
        })
    }
}

/// The id a plugin declares in its manifest, e.g. `sirene`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PluginId(String);

impl PluginId {
    pub fn new(value: &str) -> Result<Self, InvalidId> {
        check("plugin id", value).map(|()| PluginId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id an administrator gives an instance, e.g. `sirene-prod`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    pub fn new(value: &str) -> Result<Self, InvalidId> {
        check("instance id", value).map(|()| InstanceId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstanceId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        InstanceId::new(&value)
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> String {
        id.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_path_tricks() {
        assert!(InstanceId::new("sirene-prod").is_ok());
        assert!(InstanceId::new("../etc").is_err());
        assert!(InstanceId::new("A").is_err());
        assert!(InstanceId::new("").is_err());
        assert!(InstanceId::new("-x").is_err());
    }

    /// The patterns published in the OpenAPI document say what the checks do.
    #[test]
    fn patterns_agree_with_the_checks() {
        let id = regex_lite_match(ID_PATTERN);
        let field = regex_lite_match(FIELD_NAME_PATTERN);
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for s in [
            "a",
            "0",
            "sirene-prod",
            "a_b",
            &long,
            &too_long,
            "",
            "-x",
            "_x",
            "A",
            "a.b",
            "a/b",
            "é",
            "a b",
        ] {
            assert_eq!(InstanceId::new(s).is_ok(), id(s), "instance id {s:?}");
        }
        for s in [
            "api_key", "_x", "A1", &long, &too_long, "", "1a", "a-b", "a.b", "é", "a b",
        ] {
            assert_eq!(is_field_name(s), field(s), "field {s:?}");
        }
    }

    /// The two patterns above by hand: `^[first][rest]{0,63}$` with ASCII classes.
    fn regex_lite_match(pattern: &'static str) -> impl Fn(&str) -> bool {
        let class = |spec: &str| -> Vec<char> {
            let mut out = Vec::new();
            let chars: Vec<char> = spec.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                if i + 2 < chars.len() && chars[i + 1] == '-' {
                    out.extend(chars[i]..=chars[i + 2]);
                    i += 3;
                } else {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            out
        };
        let inner = pattern
            .strip_prefix("^[")
            .unwrap()
            .strip_suffix("]{0,63}$")
            .unwrap();
        let (first, rest) = inner.split_once("][").unwrap();
        let (first, rest) = (class(first), class(rest));
        move |s: &str| {
            let mut chars = s.chars();
            chars.next().is_some_and(|c| first.contains(&c))
                && s.chars().count() <= 64
                && chars.all(|c| rest.contains(&c))
        }
    }
}
