//! What a plugin says about itself: identity, category, the operations it serves, its
//! scheduled tasks and its default quotas. The host refuses a plugin whose manifest does not
//! pass [`Manifest::check`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The family of integrations a plugin belongs to; the ERP calls capabilities by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Ocr,
    Company,
    Calendar,
    Einvoice,
    Esign,
    Other,
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Category::Ocr => "ocr",
            Category::Company => "company",
            Category::Calendar => "calendar",
            Category::Einvoice => "einvoice",
            Category::Esign => "esign",
            Category::Other => "other",
        };
        f.write_str(s)
    }
}

/// Rate limits of a provider, enforced by the host per instance. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

/// A task the host schedules for every enabled instance of the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDecl {
    pub name: String,
    pub description: String,
    /// Name of the config field holding the interval in seconds.
    pub interval_field: String,
    /// Name of the config field holding the delay after host start, in seconds.
    pub start_delay_field: String,
}

/// Identity and abilities of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stable identifier: lowercase letters, digits and `-`, e.g. `sirene`.
    pub id: String,
    /// Human name, e.g. "INSEE Sirene".
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// Filled in by `export_plugin!`: the plugin API version the plugin was built against.
    #[serde(default)]
    pub api_version: String,
    pub category: Category,
    /// One line for plugin lists.
    #[serde(default)]
    pub description: String,
    /// Operations served, e.g. `company.lookup`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tasks: Vec<TaskDecl>,
    /// Default quotas; a plugin may compute them from its config with `Plugin::quotas`.
    #[serde(default)]
    pub quotas: Quotas,
    /// Fields two instances of *different environments* (see `Plugin::environment`) may not
    /// share, e.g. the client id of a production and a sandbox account. The host refuses the
    /// second instance at save or enable time, naming the field and the other instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_scoped_fields: Vec<String>,
    /// Translations, by language tag (`fr`): the Fluent source of the plugin's
    /// `locales/<lang>.ftl` (see [`crate::i18n`]). Filled in by `export_plugin!` from
    /// `Plugin::LOCALES`; added in plugin API 1.1, absent from older plugins (English only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locales: BTreeMap<String, String>,
}

impl Manifest {
    /// A manifest with no capabilities, tasks or quotas yet.
    pub fn new(id: &str, name: &str, version: &str, category: Category) -> Self {
        Manifest {
            id: id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            api_version: crate::PLUGIN_API_VERSION.to_owned(),
            category,
            description: String::new(),
            capabilities: Vec::new(),
            tasks: Vec::new(),
            quotas: Quotas::default(),
            environment_scoped_fields: Vec::new(),
            locales: BTreeMap::new(),
        }
    }

    /// Checks the rules the host relies on; returns what is wrong, in words.
    pub fn check(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.id.starts_with('-');
        if !id_ok {
            return Err(format!(
                "plugin id {:?} is invalid: expected 1-64 lowercase letters, digits or '-'",
                self.id
            ));
        }
        if self.name.trim().is_empty() {
            return Err("manifest name is empty".into());
        }
        if !is_semver(&self.version) {
            return Err(format!(
                "plugin version {:?} is not a semantic version (expected e.g. 1.2.3)",
                self.version
            ));
        }
        for cap in &self.capabilities {
            let ok = cap.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && cap
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            });
            if !ok {
                return Err(format!(
                    "capability {cap:?} is invalid: expected `category.operation`, e.g. company.lookup"
                ));
            }
        }
        for (i, cap) in self.capabilities.iter().enumerate() {
            if self.capabilities[..i].contains(cap) {
                return Err(format!(
                    "capability {cap:?} is listed twice: register its handler once in \
                     `Plugin::operations`, which lists it in the manifest (do not also list it \
                     in `Plugin::manifest`)"
                ));
            }
        }
        for task in &self.tasks {
            if task.name.is_empty() {
                return Err("a task has an empty name".into());
            }
        }
        Ok(())
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre`/`+build` suffix.
pub fn is_semver(v: &str) -> bool {
    parse_version(v).is_some()
}

/// Parses the numeric `MAJOR.MINOR.PATCH` part of a semantic version.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_check_names_the_problem() {
        let mut m = Manifest::new("sirene", "Sirene", "1.0.0", Category::Company);
        assert!(m.check().is_ok());
        m.id = "Bad Id".into();
        assert!(m.check().unwrap_err().contains("plugin id"));
        m.id = "ok".into();
        m.version = "1.0".into();
        assert!(m.check().unwrap_err().contains("semantic version"));
        m.version = "1.0.0".into();
        m.capabilities = vec!["lookup".into()];
        assert!(m.check().unwrap_err().contains("category.operation"));
        m.capabilities = vec!["company.lookup".into(), "company.lookup".into()];
        assert!(m.check().unwrap_err().contains("listed twice"));
    }
}
