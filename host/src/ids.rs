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
}
