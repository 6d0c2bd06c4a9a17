//! The configuration of one Tesseract instance, and the rules the schema alone cannot enforce.
//!
//! The fields are what the engine needs (languages, page segmentation, where the program is,
//! how long it may take), the threshold under which a value is not trusted, and the ERP
//! technical user recorded on entries, as with Mindee, so that the ERP keeps telling OCR
//! entries from manual ones whichever provider reads. The schema is generated from this
//! struct and rendered as a form; the `dependencies` block makes the ERP user required only
//! while OCR is active. [`Config::problems`] repeats those rules in code (blank values
//! included) so that a call with an incomplete configuration fails with a message naming
//! the field before the engine is started.

use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The languages read when none are configured: French receipts, English ones abroad.
pub const DEFAULT_LANGUAGES: &str = "fra+eng";

/// Settings of a Tesseract expense receipts instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "ocr_enabled": {
        "oneOf": [
            {
                "properties": { "ocr_enabled": { "const": true } },
                "required": ["erp_user"]
            },
            {
                "properties": { "ocr_enabled": { "const": false } }
            }
        ]
    }
}))]
pub struct Config {
    /// OCR active
    ///
    /// Whether this instance reads the receipts sent from the expense portal and the mobile
    /// app. When off, every OCR request to it is refused and the ERP technical user is not
    /// required.
    #[serde(default = "yes")]
    #[schemars(extend("x-group" = "general"))]
    pub ocr_enabled: bool,

    /// Languages
    ///
    /// Tesseract language codes joined by `+`, most frequent first, e.g. `fra+eng`. Each
    /// needs its data installed on this machine (Debian: packages tesseract-ocr-fra,
    /// tesseract-ocr-eng…); the test routine lists what is installed.
    #[serde(default = "default_languages")]
    #[schemars(length(min = 3, max = 100))]
    #[schemars(regex(pattern = r"^[A-Za-z_]+(\+[A-Za-z_]+)*$"))]
    #[schemars(extend("x-group" = "engine"))]
    pub languages: String,

    /// Engine path
    ///
    /// Full path of the `tesseract` program, only when it is not on the PATH of the host,
    /// e.g. `/opt/tesseract/bin/tesseract`. Leave empty to use the one on the PATH.
    #[serde(default)]
    #[schemars(extend("x-group" = "engine"))]
    pub engine_path: Option<String>,

    /// Page segmentation
    ///
    /// How Tesseract finds the text on the image. Receipts are one column of lines of
    /// varying size: keep "Single column" unless photos of crumpled receipts read badly,
    /// then try "Sparse text".
    #[serde(default)]
    #[schemars(extend("x-group" = "engine"))]
    pub page_segmentation: PageSegmentation,

    /// Minimum confidence (%)
    ///
    /// A value read with less confidence than this is returned empty (its confidence is
    /// still reported), so that the expense form asks the user rather than trusting a
    /// doubtful reading. 0 keeps everything.
    #[serde(default = "default_min_confidence")]
    #[schemars(range(min = 0, max = 100))]
    #[schemars(extend("x-group" = "engine"))]
    pub min_confidence: u32,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,

    /// ERP technical user
    ///
    /// The ERP user recorded on every expense created through OCR, so that the ERP's
    /// history tells OCR entries from manual ones. Returned with each reading as
    /// `recorded_by`.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_user: Option<String>,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long the engine may take to read one document before it is stopped. A phone photo \
        takes one to five seconds.";
    const GROUP: &'static str = "engine";
    const DEFAULT_SECS: u32 = 30;
    const SECS: RangeInclusive<u32> = 5..=120;
}

/// Tesseract's page segmentation modes that suit receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageSegmentation {
    /// Single column of text of variable sizes (receipts, recommended)
    #[default]
    SingleColumn,
    /// Fully automatic (several columns, as on invoices)
    Auto,
    /// Single uniform block of text
    SingleBlock,
    /// Sparse text, as much as possible in no particular order (crumpled or partial photos)
    SparseText,
}

impl PageSegmentation {
    /// The value of Tesseract's `--psm` option.
    pub fn psm(self) -> u8 {
        match self {
            PageSegmentation::Auto => 3,
            PageSegmentation::SingleColumn => 4,
            PageSegmentation::SingleBlock => 6,
            PageSegmentation::SparseText => 11,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_languages() -> String {
    DEFAULT_LANGUAGES.to_owned()
}

fn default_min_confidence() -> u32 {
    50
}

impl Config {
    /// Everything that keeps this configuration from reading receipts, each naming its
    /// field. The switch is not a problem: an instance may be saved switched off.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if self.ocr_enabled && self.erp_user().is_empty() {
            problems.push(PluginError::config(
                "erp_user",
                "the ERP technical user is required while OCR is active: it is recorded on \
                 every expense created through OCR",
            ));
        }
        let languages = self.language_list();
        if languages.is_empty()
            || self
                .languages
                .trim()
                .split('+')
                .any(|l| l.trim().is_empty() || !l.trim().chars().all(is_language_char))
        {
            problems.push(PluginError::config(
                "languages",
                format!(
                    "the languages {:?} are not Tesseract language codes joined by `+`: write \
                     e.g. {DEFAULT_LANGUAGES}",
                    self.languages
                ),
            ));
        }
        if let Some(path) = self.engine_path() {
            if !std::path::Path::new(path).is_absolute() {
                problems.push(PluginError::config(
                    "engine_path",
                    format!(
                        "the engine path {path:?} must be the full path of the tesseract \
                         program (e.g. /usr/bin/tesseract), or empty to use the PATH"
                    ),
                ));
            }
        }
        if self.min_confidence > 100 {
            problems.push(PluginError::config(
                "min_confidence",
                format!(
                    "the minimum confidence is a percentage between 0 and 100, not {}",
                    self.min_confidence
                ),
            ));
        }
        problems.extend(self.timeout.problems());
        problems
    }

    /// The configured language codes, trimmed, without empty entries.
    pub fn language_list(&self) -> Vec<&str> {
        self.languages
            .split('+')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The `-l` argument: the codes joined by `+`.
    pub fn languages_arg(&self) -> String {
        self.language_list().join("+")
    }

    /// The engine path, when one is set.
    pub fn engine_path(&self) -> Option<&str> {
        self.engine_path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// The program to run: the configured path, or `tesseract` from the PATH.
    pub fn program(&self) -> &str {
        self.engine_path().unwrap_or("tesseract")
    }

    /// The ERP technical user, trimmed.
    pub fn erp_user(&self) -> &str {
        self.erp_user.as_deref().map(str::trim).unwrap_or("")
    }

    /// The threshold as a fraction (0 to 1).
    pub fn min_confidence(&self) -> f64 {
        f64::from(self.min_confidence.min(100)) / 100.0
    }

    /// How long one run of the engine may take.
    pub fn timeout(&self) -> Duration {
        self.timeout.duration()
    }
}

fn is_language_char(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_plugin_api::config_schema;
    use serde_json::json;

    fn config(value: serde_json::Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    fn fields(c: &Config) -> Vec<String> {
        c.problems()
            .into_iter()
            .map(|e| {
                assert_eq!(e.kind, ErrorKind::Config);
                e.field.unwrap()
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let c = config(json!({}));
        assert!(c.ocr_enabled);
        assert_eq!(c.languages_arg(), "fra+eng");
        assert_eq!(c.program(), "tesseract");
        assert_eq!(c.page_segmentation.psm(), 4);
        assert_eq!(c.min_confidence, 50);
        assert_eq!(c.timeout(), Duration::from_secs(30));
        assert_eq!(fields(&c), ["erp_user"]);
        assert!(fields(&config(json!({"erp_user": "svc-ocr"}))).is_empty());
        assert!(fields(&config(json!({"ocr_enabled": false}))).is_empty());
    }

    #[test]
    fn languages_path_and_ranges_are_checked() {
        let bad = config(json!({
            "erp_user": " ",
            "languages": "fra++eng",
            "engine_path": "bin/tesseract",
            "min_confidence": 101,
            "timeout_secs": 3
        }));
        assert_eq!(
            fields(&bad),
            [
                "erp_user",
                "languages",
                "engine_path",
                "min_confidence",
                "timeout_secs"
            ]
        );
        let good = config(json!({
            "erp_user": "svc",
            "languages": " deu + chi_sim ",
            "engine_path": "  ",
            "page_segmentation": "sparse_text"
        }));
        assert!(fields(&good).is_empty());
        assert_eq!(good.languages_arg(), "deu+chi_sim");
        assert_eq!(good.program(), "tesseract");
        assert_eq!(good.page_segmentation.psm(), 11);
        assert!(
            fields(&config(json!({"erp_user": "u", "languages": "fra eng"})))
                .contains(&"languages".to_owned())
        );
    }

    #[test]
    fn unknown_fields_and_modes_are_refused() {
        assert!(serde_json::from_value::<Config>(json!({"colour": "blue"})).is_err());
        assert!(serde_json::from_value::<Config>(json!({"page_segmentation": "6"})).is_err());
    }

    #[test]
    fn schema_follows_the_form_conventions() {
        let s = config_schema::<Config>();
        let props = s["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "ocr_enabled",
                "languages",
                "engine_path",
                "page_segmentation",
                "min_confidence",
                "timeout_secs",
                "erp_user"
            ]
        );
        for (name, prop) in props {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        assert_eq!(props["languages"]["default"], "fra+eng");
        assert_eq!(props["page_segmentation"]["default"], "single_column");
        let choices = props["page_segmentation"]["oneOf"].as_array().unwrap();
        assert_eq!(choices.len(), 4);
        for choice in choices {
            assert!(choice["const"].is_string() && choice["title"].is_string());
        }
        assert_eq!(props["min_confidence"]["maximum"], 100);
        let rules = passerelle_plugin_api::config::conditionals(&s);
        let required = |tag: &str, value: serde_json::Value| {
            rules
                .iter()
                .find(|r| r.tag == tag && r.value == value)
                .map(|r| r.required.clone())
                .unwrap_or_default()
        };
        assert_eq!(required("ocr_enabled", json!(true)), ["erp_user"]);
        assert_eq!(s["additionalProperties"], false);
        assert!(s.get("required").is_none(), "{s:#}");
        assert!(!s.to_string().contains("$ref"));
    }
}
