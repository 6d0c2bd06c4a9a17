//! Sirene's multi-criteria query language (`q=` of `GET /siret`), parsed and evaluated
//! against the emulator's establishments.
//!
//! The grammar follows INSEE's documentation of API Sirene 3.11 ("recherche multicritères"):
//! `champ:valeur`, `champ:"une phrase"`, a trailing `*` for a prefix, `AND` / `OR` / `NOT`,
//! parentheses, and `periode(…)` around conditions on an establishment's dated fields. Field
//! names are checked against the variables of the establishment, its address and its legal
//! unit; anything else — an unknown field, an unbalanced quote or parenthesis, a missing
//! operand — is a syntax error, which the emulator answers with 400 as Sirene does.
//!
//! Matching is the emulator's simplification of Sirene's: phrases match whole words,
//! ignoring case and accents; bare values match the whole value (or its start, with `*`).

use serde_json::Value;

/// Variables a query may name (Sirene 3.11 names, establishment, address and unit).
const FIELDS: &[&str] = &[
    "siren",
    "siret",
    "nic",
    "etablissementSiege",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "codeCommuneEtablissement",
    "libelleVoieEtablissement",
    "denominationUniteLegale",
    "sigleUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "prenom1UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "etatAdministratifUniteLegale",
    "statutDiffusionUniteLegale",
];

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Term {
        field: String,
        value: Pattern,
    },
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    /// `periode(…)`: evaluated on the current period, which the emulator has flattened.
    Period(Box<Query>),
}

/// The value side of a term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Phrase(String),
    Exact(String),
    Prefix(String),
}

/// Parses `q`, or says what is wrong in Sirene's words.
pub fn parse(q: &str) -> Result<Query, String> {
    let tokens = tokenize(q)?;
    let mut parser = Parser { tokens, pos: 0 };
    let query = parser.expr()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(query),
        Some(t) => Err(format!(
            "Erreur de syntaxe dans le paramètre q : {t:?} inattendu"
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    PeriodOpen,
    And,
    Or,
    Not,
    Term(String, Pattern),
}

fn tokenize(q: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' {
            tokens.push(Token::Open);
            i += 1;
            continue;
        }
        if c == ')' {
            tokens.push(Token::Close);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if word.is_empty() {
            return Err(format!(
                "Erreur de syntaxe dans le paramètre q : caractère {c:?} inattendu"
            ));
        }
        match (word.as_str(), chars.get(i)) {
            ("AND", _) => tokens.push(Token::And),
            ("OR", _) => tokens.push(Token::Or),
            ("NOT", _) => tokens.push(Token::Not),
            ("periode", Some('(')) => {
                tokens.push(Token::PeriodOpen);
                i += 1;
            }
            (field, Some(':')) => {
                if !FIELDS.contains(&field) {
                    return Err(format!(
                        "Erreur de syntaxe dans le paramètre q : le champ {field} n'existe pas"
                    ));
                }
                i += 1;
                let pattern = if chars.get(i) == Some(&'"') {
                    let from = i + 1;
                    let Some(len) = chars[from..].iter().position(|c| *c == '"') else {
                        return Err(
                            "Erreur de syntaxe dans le paramètre q : guillemet non fermé".into(),
                        );
                    };
                    i = from + len + 1;
                    Pattern::Phrase(chars[from..from + len].iter().collect())
                } else {
                    let from = i;
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || matches!(chars[i], '.' | '-' | '*'))
                    {
                        i += 1;
                    }
                    let value: String = chars[from..i].iter().collect();
                    if value.is_empty() {
                        return Err(format!(
                            "Erreur de syntaxe dans le paramètre q : valeur manquante pour {field}"
                        ));
                    }
                    match value.strip_suffix('*') {
                        Some(prefix) if !prefix.contains('*') => Pattern::Prefix(prefix.to_owned()),
                        _ if value.contains('*') => {
                            return Err(format!(
                            "Erreur de syntaxe dans le paramètre q : joker mal placé dans {value}"
                        ))
                        }
                        _ => Pattern::Exact(value),
                    }
                };
                tokens.push(Token::Term(field.to_owned(), pattern));
            }
            (other, _) => {
                return Err(format!(
                    "Erreur de syntaxe dans le paramètre q : {other} n'est ni un champ ni un \
                     opérateur"
                ))
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// `expr := unary ((AND | OR) unary)*`, AND binding tighter than OR.
    fn expr(&mut self) -> Result<Query, String> {
        let mut left = self.conjunction()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.conjunction()?;
            left = Query::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Query, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Query::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Query, String> {
        match self.next() {
            Some(Token::Not) => Ok(Query::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let inner = self.expr()?;
                self.close()?;
                Ok(inner)
            }
            Some(Token::PeriodOpen) => {
                let inner = self.expr()?;
                self.close()?;
                Ok(Query::Period(Box::new(inner)))
            }
            Some(Token::Term(field, value)) => Ok(Query::Term { field, value }),
            Some(other) => Err(format!(
                "Erreur de syntaxe dans le paramètre q : {other:?} inattendu"
            )),
            None => Err("Erreur de syntaxe dans le paramètre q : critère manquant".into()),
        }
    }

    fn close(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Token::Close) => Ok(()),
            _ => Err("Erreur de syntaxe dans le paramètre q : parenthèse non fermée".into()),
        }
    }
}

/// Whether an establishment (its fields, its address's and its unit's, current period
/// flattened) matches.
pub fn matches(query: &Query, establishment: &Value) -> bool {
    match query {
        Query::And(a, b) => matches(a, establishment) && matches(b, establishment),
        Query::Or(a, b) => matches(a, establishment) || matches(b, establishment),
        Query::Not(a) => !matches(a, establishment),
        Query::Period(a) => matches(a, establishment),
        Query::Term { field, value } => {
            let Some(actual) = lookup(establishment, field) else {
                return false;
            };
            match value {
                Pattern::Phrase(phrase) => {
                    let hay = format!(" {} ", normalize(&actual));
                    let needle = normalize(phrase);
                    !needle.is_empty() && hay.contains(&format!(" {needle} "))
                }
                Pattern::Exact(v) => normalize(&actual) == normalize(v),
                Pattern::Prefix(p) => normalize(&actual).starts_with(&normalize(p)),
            }
        }
    }
}

/// A field's value as text, looked up in the establishment, its address, its current period
/// and its unit, in that order.
fn lookup(establishment: &Value, field: &str) -> Option<String> {
    let current_period = establishment
        .get("periodesEtablissement")
        .and_then(Value::as_array)
        .and_then(|p| {
            p.iter()
                .find(|p| p.get("dateFin").is_some_and(Value::is_null))
        });
    [
        Some(establishment),
        establishment.get("adresseEtablissement"),
        current_period,
        establishment.get("uniteLegale"),
    ]
    .into_iter()
    .flatten()
    .find_map(|obj| match obj.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Upper case, common French accents removed, anything else than letters and digits a space.
fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' | 'Ä' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'î' | 'ï' | 'Î' | 'Ï' => 'I',
            'ô' | 'ö' | 'Ô' | 'Ö' => 'O',
            'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' => 'U',
            'ç' | 'Ç' => 'C',
            c if c.is_alphanumeric() => c.to_ascii_uppercase(),
            _ => ' ',
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plugins_queries_parse() {
        let q = parse(
            "(denominationUniteLegale:\"Commune de Clamart\" OR nomUniteLegale:\"Commune de \
             Clamart\") AND codePostalEtablissement:92140 AND \
             periode(etatAdministratifEtablissement:A)",
        )
        .unwrap();
        let clamart = json!({
            "siret": "21920023500014",
            "etablissementSiege": true,
            "adresseEtablissement": {"codePostalEtablissement": "92140"},
            "periodesEtablissement": [{"dateFin": null, "etatAdministratifEtablissement": "A"}],
            "uniteLegale": {"denominationUniteLegale": "COMMUNE DE CLAMART"}
        });
        assert!(matches(&q, &clamart));
        let q = parse("siren:219200235 AND etablissementSiege:true").unwrap();
        assert!(!matches(&q, &clamart));
        let q = parse("siret:2192* AND NOT etablissementSiege:false").unwrap();
        assert!(matches(&q, &clamart));
        let q = parse("denominationUniteLegale:\"clamart\"").unwrap();
        assert!(matches(&q, &clamart));
        let q = parse("denominationUniteLegale:\"CLAM\"").unwrap();
        assert!(!matches(&q, &clamart), "phrases match whole words");
    }

    #[test]
    fn malformed_queries_are_refused() {
        for bad in [
            "",
            "denominationUniteLegale:\"open",
            "(siren:1",
            "siren:1 AND",
            "siren:1 OR OR siren:2",
            "raisonSocial:ACME",
            "siren:",
            "ACME",
            "siren:1*2",
            "siren:1)",
            "siren:1 ; DROP",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
