//! The registry of operation contracts: what every operation of [`crate::capabilities`] takes
//! and returns, as JSON Schemas, for anyone who links this crate.
//!
//! Why a registry: the host describes, checks and documents operations without a plugin
//! loaded (OpenAPI paths with typed bodies, `passerelle invoke --help`, refusing a bad input
//! before any plugin sees it), and it must know every operation without a second list to keep
//! in step. Each capability module submits the contract of its operations right beside the
//! types, with [`inventory::submit!`]; [`contracts`] collects them at run time.
//!
//! ```text
//! inventory::submit! {
//!     OperationContract::of::<CompanyLookup>(Category::Company, "Looks up a company by SIRET or SIREN")
//! }
//! ```

use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};

/// One operation's contract: its name, category, a one-line summary and its input and output
/// schemas (derived from the Rust types with `schemars`, so they cannot drift from them).
#[derive(Debug, Clone, Copy)]
pub struct OperationContract {
    /// E.g. `company.lookup`.
    pub name: &'static str,
    /// The family the operation belongs to.
    pub category: Category,
    /// One line for help texts and the OpenAPI summary.
    pub summary: &'static str,
    input: fn(&mut SchemaGenerator) -> Schema,
    output: fn(&mut SchemaGenerator) -> Schema,
    input_root: fn() -> Schema,
    output_root: fn() -> Schema,
}

inventory::collect!(OperationContract);

impl OperationContract {
    /// The contract of operation `O`; `const` so that it can be [`inventory::submit!`]ted.
    pub const fn of<O: Operation>(category: Category, summary: &'static str) -> Self {
        OperationContract {
            name: O::NAME,
            category,
            summary,
            input: SchemaGenerator::subschema_for::<O::Input>,
            output: SchemaGenerator::subschema_for::<O::Output>,
            input_root: root_schema::<O::Input>,
            output_root: root_schema::<O::Output>,
        }
    }

    /// The input's schema inside `generator`: usually a `$ref` to a definition the generator
    /// now holds (see [`SchemaGenerator::take_definitions`]); for composing documents such as
    /// an OpenAPI description, where several operations share types.
    pub fn input_in(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.input)(generator)
    }

    /// The output's schema inside `generator`; see [`OperationContract::input_in`].
    pub fn output_in(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.output)(generator)
    }

    /// The input's schema as a standalone JSON Schema (draft 2020-12, definitions under
    /// `$defs`), e.g. to validate an input.
    pub fn input_schema(&self) -> Schema {
        (self.input_root)()
    }

    /// The output's schema as a standalone JSON Schema (draft 2020-12).
    pub fn output_schema(&self) -> Schema {
        (self.output_root)()
    }
}

fn root_schema<T: JsonSchema>() -> Schema {
    SchemaGenerator::new(SchemaSettings::draft2020_12()).into_root_schema_for::<T>()
}

/// Every operation contract this crate knows, sorted by name.
pub fn contracts() -> Vec<&'static OperationContract> {
    let mut all: Vec<&'static OperationContract> =
        inventory::iter::<OperationContract>.into_iter().collect();
    all.sort_by_key(|c| c.name);
    all
}

/// The contract of operation `name`, e.g. `company.lookup`; `None` for an operation this
/// crate does not define (a plugin's own, or one of a newer API).
pub fn contract(name: &str) -> Option<&'static OperationContract> {
    inventory::iter::<OperationContract>
        .into_iter()
        .find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{Company, CompanyLookup, CompanyQuery};
    use serde_json::{json, Value};

    #[test]
    fn every_capability_operation_has_one_contract() {
        let names: Vec<&str> = contracts().iter().map(|c| c.name).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique, "an operation is submitted twice");
        for expected in [
            "calendar.sync",
            "company.lookup",
            "company.search",
            "directory.lookup",
            "einvoice.fetch",
            "einvoice.inbox",
            "einvoice.list",
            "einvoice.respond",
            "einvoice.status",
            "einvoice.submit",
            "esign.cancel",
            "esign.documents",
            "esign.request",
            "esign.status",
            "ocr.expense_receipt",
        ] {
            assert!(names.contains(&expected), "{expected} has no contract");
        }
        for c in contracts() {
            let (category, _) = c.name.split_once('.').unwrap_or_default();
            assert!(!c.summary.is_empty(), "{} has no summary", c.name);
            assert!(
                category == c.category.to_string() || category == "directory",
                "{} is filed under {}",
                c.name,
                c.category
            );
        }
    }

    #[test]
    fn schemas_are_the_types_schemas() {
        let lookup = contract(CompanyLookup::NAME).expect("company.lookup is registered");
        let input = Value::from(lookup.input_schema());
        let expected = Value::from(schemars::schema_for!(CompanyQuery));
        assert_eq!(input["properties"], expected["properties"]);
        assert_eq!(input["required"], json!(["id"]));
        let output = Value::from(lookup.output_schema());
        assert_eq!(
            output["properties"],
            Value::from(schemars::schema_for!(Company))["properties"]
        );
        assert!(contract("nothing.here").is_none());
    }

    #[test]
    fn shared_types_are_defined_once_in_a_generator() {
        let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
        for c in contracts() {
            c.input_in(&mut generator);
            c.output_in(&mut generator);
        }
        let definitions = generator.take_definitions(true);
        assert!(definitions.contains_key("Company"));
        assert!(definitions.contains_key("InvoiceFormat"));
    }
}
