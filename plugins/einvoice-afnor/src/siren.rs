//! SIREN and SIRET numbers, checked locally before any request: a typo then gets a message
//! that says which digit rule failed instead of an empty directory answer.

/// SIREN of La Poste, whose establishments have SIRETs that do not follow the Luhn rule.
const LA_POSTE: &str = "356000000";

/// What kind of identifier a directory query is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Siren(String),
    Siret(String),
    /// An addressing identifier (`SIRET_ROUTINGCODE`, a routing code…), passed as given.
    Addressing(String),
}

/// Whether `digits` pass the Luhn check.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The SIREN without spaces, or why it is not one.
pub fn check_siren(text: &str) -> Result<String, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() != 9 || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not a SIREN: a SIREN has 9 digits (the first 9 of the SIRET)"
        ));
    }
    if !luhn(&compact) {
        return Err(format!(
            "{compact} is not a valid SIREN: the check digit does not match (Luhn); check for \
             a mistyped or swapped digit"
        ));
    }
    Ok(compact)
}

/// Classifies a directory query: 9 digits are a SIREN, 14 a SIRET (both Luhn-checked),
/// anything else an addressing identifier of at most 125 characters.
pub fn classify(text: &str) -> Result<Identifier, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(
            "the identifier is empty: give a SIREN, a SIRET or an addressing identifier".to_owned(),
        );
    }
    let all_digits = compact.bytes().all(|b| b.is_ascii_digit());
    if all_digits && compact.len() == 9 {
        return check_siren(&compact).map(Identifier::Siren);
    }
    if all_digits && compact.len() == 14 {
        if luhn(&compact) || compact.starts_with(LA_POSTE) {
            return Ok(Identifier::Siret(compact));
        }
        return Err(format!(
            "{compact} is not a valid SIRET: the check digit does not match (Luhn); check for a \
             mistyped or swapped digit"
        ));
    }
    if all_digits {
        return Err(format!(
            "{compact} has {} digits: a SIREN has 9, a SIRET 14",
            compact.len()
        ));
    }
    if compact.chars().count() > 125 || compact.contains(['/', '\\', '?', '#']) {
        return Err(format!(
            "{compact:?} is not an addressing identifier: at most 125 characters, no '/', '\\', \
             '?' or '#'"
        ));
    }
    Ok(Identifier::Addressing(compact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sirens_and_sirets_are_checked() {
        assert_eq!(check_siren("702 042 755").unwrap(), "702042755");
        assert!(check_siren("702042756").unwrap_err().contains("Luhn"));
        assert!(check_siren("12345").unwrap_err().contains("9 digits"));
        assert_eq!(
            classify("70204275500240").unwrap(),
            Identifier::Siret("70204275500240".into())
        );
        assert!(classify("70204275500241").is_err());
        assert_eq!(
            classify("70204275500240_ACHATS").unwrap(),
            Identifier::Addressing("70204275500240_ACHATS".into())
        );
        assert!(classify("1234567890").unwrap_err().contains("10 digits"));
        assert!(classify("a/b").is_err());
    }
}
