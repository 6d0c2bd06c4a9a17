//! Labels of the two INSEE codes a company carries: its activity (NAF rév. 2 sub-class,
//! `activitePrincipale…`) and its legal category (niveau III, `categorieJuridiqueUniteLegale`).
//!
//! API Sirene answers with codes only, and asking INSEE's nomenclature service for each label
//! would double the requests against a 30-per-minute quota. The tables ship with the plugin
//! instead (`nomenclature/*.tsv`, one `code<TAB>label` a line, sorted by code; their origin
//! is in `nomenclature/README.md`) and are read once per process.
//!
//! Only NAF rév. 2 codes get a label: API Sirene also returns codes of older nomenclatures
//! (NAF 1993, NAF rév. 1, NAP) for old periods, whose codes can look alike but mean something
//! else, so a code is labelled only when its nomenclature is NAF rév. 2 or not stated.

use std::sync::OnceLock;

const NAF_REV2: &str = include_str!("../nomenclature/naf_rev2_sous_classes.tsv");
const LEGAL_CATEGORIES: &str = include_str!("../nomenclature/categories_juridiques_n3.tsv");

/// How API Sirene names NAF rév. 2 in `nomenclatureActivitePrincipale…`.
pub const NAF_REV2_NAME: &str = "NAFRev2";

/// A sorted `code → label` table.
struct Table(Vec<(&'static str, &'static str)>);

impl Table {
    fn parse(text: &'static str) -> Self {
        let mut rows: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .collect();
        rows.sort_unstable_by_key(|(code, _)| *code);
        Table(rows)
    }

    fn get(&self, code: &str) -> Option<&'static str> {
        let i = self.0.binary_search_by_key(&code, |(c, _)| *c).ok()?;
        self.0.get(i).map(|(_, label)| *label)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

fn naf() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(NAF_REV2))
}

fn legal() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(LEGAL_CATEGORIES))
}

/// The label of a NAF code, e.g. `84.11Z` → "Administration publique générale", when the
/// code is of NAF rév. 2 (`nomenclature` as API Sirene writes it, `None` when not stated).
pub fn activity_label(code: &str, nomenclature: Option<&str>) -> Option<&'static str> {
    if nomenclature.is_some_and(|n| n != NAF_REV2_NAME) {
        return None;
    }
    naf().get(code.trim())
}

/// The label of a legal category (niveau III), e.g. `5710` → "SAS, société par actions
/// simplifiée".
pub fn legal_category_label(code: &str) -> Option<&'static str> {
    legal().get(code.trim())
}

/// Sizes of the shipped tables, for tests and the README.
pub fn table_sizes() -> (usize, usize) {
    (naf().len(), legal().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_complete_and_well_formed() {
        // 732 sub-classes in NAF rév. 2 (INSEE, 2008).
        assert_eq!(table_sizes().0, 732);
        assert!(table_sizes().1 >= 250, "{}", table_sizes().1);
        for line in NAF_REV2.lines() {
            let (code, label) = line.split_once('\t').unwrap();
            let b = code.as_bytes();
            assert!(
                b.len() == 6 && b[2] == b'.' && b[5].is_ascii_uppercase(),
                "{code}"
            );
            assert!(!label.trim().is_empty());
        }
        for line in LEGAL_CATEGORIES.lines() {
            let (code, _) = line.split_once('\t').unwrap();
            assert!(
                code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()),
                "{code}"
            );
        }
    }

    #[test]
    fn labels_of_known_codes() {
        assert_eq!(
            activity_label("84.11Z", Some("NAFRev2")),
            Some("Administration publique générale")
        );
        assert_eq!(
            activity_label("01.11Z", None),
            Some("Culture de céréales (à l'exception du riz), de légumineuses et de graines oléagineuses")
        );
        assert!(activity_label("99.00Z", None).is_some());
        assert_eq!(activity_label("84.11Z", Some("NAFRev1")), None);
        assert_eq!(activity_label("75.1A", None), None);
        assert_eq!(
            legal_category_label("5710"),
            Some("SAS, société par actions simplifiée")
        );
        assert_eq!(
            legal_category_label("7210"),
            Some("Commune et commune nouvelle")
        );
        assert_eq!(legal_category_label("0000"), None);
    }
}
