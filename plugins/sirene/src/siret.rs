//! SIRET and SIREN validation, done before any HTTP call.
//!
//! A typo in an identifier is the most common lookup failure. Checking the format and the
//! Luhn check digit locally gives the user a precise message ("the check digit does not
//! match") instead of a bare "not found", and does not spend the provider's quota (about 30
//! requests per minute on the public plan) on numbers that cannot exist.

use passerelle_plugin_api::prelude::*;

/// SIREN of La Poste, whose establishments have SIRETs that do not follow the Luhn rule.
const LA_POSTE_SIREN: &str = "356000000";

/// A syntactically valid identifier of the Sirene register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyId {
    /// 14 digits: one establishment.
    Siret(String),
    /// 9 digits: a legal unit.
    Siren(String),
}

impl CompanyId {
    /// Reads a SIRET or a SIREN typed by a person: spaces (including non-breaking ones) are
    /// ignored, everything else must be a digit, and the check digit must match.
    pub fn parse(input: &str) -> Result<CompanyId, PluginError> {
        let id: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if id.is_empty() {
            return Err(PluginError::invalid_input(
                "the identifier is empty: give a SIRET (14 digits) or a SIREN (9 digits)",
            )
            .with_field("id"));
        }
        if let Some(bad) = id.chars().find(|c| !c.is_ascii_digit()) {
            return Err(PluginError::invalid_input(format!(
                "{input:?} is neither a SIRET nor a SIREN: it contains {bad:?}, but only digits \
                 are allowed (14 for a SIRET, 9 for a SIREN)"
            ))
            .with_field("id"));
        }
        let (kind, parsed) = match id.len() {
            14 => ("SIRET", CompanyId::Siret(id.clone())),
            9 => ("SIREN", CompanyId::Siren(id.clone())),
            n => {
                return Err(PluginError::invalid_input(format!(
                    "{id} is neither a SIRET nor a SIREN: it has {n} digits, expected 14 (SIRET) \
                     or 9 (SIREN)"
                ))
                .with_field("id"))
            }
        };
        if !checksum_ok(&id) {
            return Err(PluginError::invalid_input(format!(
                "{id} is not a valid {kind}: the check digit does not match (Luhn); check for a \
                 typo"
            ))
            .with_field("id"));
        }
        Ok(parsed)
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        match self {
            CompanyId::Siret(s) | CompanyId::Siren(s) => s,
        }
    }

    /// "SIRET" or "SIREN", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            CompanyId::Siret(_) => "SIRET",
            CompanyId::Siren(_) => "SIREN",
        }
    }
}

impl std::fmt::Display for CompanyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.as_str())
    }
}

/// Luhn, or for La Poste's establishments the rule INSEE applies to them instead: the sum of
/// the digits is a multiple of 5. La Poste's head office (35600000000048) follows Luhn, its
/// other establishments usually do not, so either rule is accepted for that SIREN.
fn checksum_ok(digits: &str) -> bool {
    if luhn(digits) {
        return true;
    }
    digits.len() == 14 && digits.starts_with(LA_POSTE_SIREN) && digit_sum(digits).is_multiple_of(5)
}

/// The Luhn check: from the right, every second digit is doubled (minus 9 above 9); the
/// total must be a multiple of 10. Callers pass ASCII digits only.
fn luhn(digits: &str) -> bool {
    let total: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    total.is_multiple_of(10)
}

fn digit_sum(digits: &str) -> u32 {
    digits.bytes().map(|b| u32::from(b - b'0')).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        let err = CompanyId::parse(input).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(err.field.as_deref(), Some("id"));
        err.message
    }

    #[test]
    fn real_sirets_from_the_samples_are_valid() {
        for siret in [
            "21920023500014",
            "13002437500011",
            "32816124500027",
            "55204944700006",
        ] {
            assert_eq!(
                CompanyId::parse(siret).unwrap(),
                CompanyId::Siret(siret.into())
            );
        }
    }

    #[test]
    fn sirens_are_recognised() {
        assert_eq!(
            CompanyId::parse("219200235").unwrap(),
            CompanyId::Siren("219200235".into())
        );
        assert_eq!(
            CompanyId::parse("328 161 245").unwrap(),
            CompanyId::Siren("328161245".into())
        );
    }

    #[test]
    fn spaces_are_ignored() {
        assert_eq!(
            CompanyId::parse(" 219 200 235 00014 ").unwrap(),
            CompanyId::Siret("21920023500014".into())
        );
        // A non-breaking space, as copied from a web page.
        assert_eq!(
            CompanyId::parse("219\u{a0}200\u{a0}235\u{a0}00014").unwrap(),
            CompanyId::Siret("21920023500014".into())
        );
    }

    #[test]
    fn la_poste_head_office_follows_luhn() {
        assert!(luhn("35600000000048"));
        assert!(CompanyId::parse("35600000000048").is_ok());
    }

    #[test]
    fn la_poste_establishments_use_the_digit_sum_rule() {
        // Not Luhn-valid, but the digits add up to 35.
        assert!(!luhn("35600000009075"));
        assert!(CompanyId::parse("35600000009075").is_ok());
        // Neither rule: digit sum 31, Luhn fails.
        assert!(!luhn("35600000009071"));
        assert!(message("35600000009071").contains("check digit"));
    }

    #[test]
    fn the_digit_sum_rule_is_only_for_la_poste() {
        // Digit sum 25 but Luhn fails and the SIREN is not La Poste's.
        assert!(!luhn("21920023500001"));
        assert!(message("21920023500001").contains("not a valid SIRET"));
    }

    #[test]
    fn a_typo_is_reported_as_a_check_digit_error() {
        let m = message("21920023500015");
        assert_eq!(
            m,
            "21920023500015 is not a valid SIRET: the check digit does not match (Luhn); check \
             for a typo"
        );
        assert!(message("219200236").contains("not a valid SIREN"));
    }

    #[test]
    fn wrong_lengths_and_characters_are_explained() {
        assert!(message("2192002350001").contains("13 digits"));
        assert!(message("12345").contains("5 digits"));
        assert!(message("2192002350001A").contains("'A'"));
        assert!(message("219-200-235").contains("'-'"));
        assert!(message("   ").contains("empty"));
    }
}
