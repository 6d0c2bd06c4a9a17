//! `passerelle config check <plugin> <file.json>`: the host's verdict on a configuration
//! document, without saving anything.
//!
//! An integrator generating forms from the committed schemas (RJSF, JSON Forms) needs to know
//! that what their validator accepts, the host accepts too. This command gives the host's
//! answer on the same raw document, field by field, with the same rules as `config apply` and
//! enabling (field schemas, defaults applied, conditional rules): `tests/forms` compares it
//! with ajv's on a corpus of documents per plugin. The plugin's own rules beyond its schema
//! (cross-field checks in code) are not run: a form cannot know them either.

use crate::engine::Engine;
use crate::instances::ConfigError;
use crate::schema::FieldError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `config check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Plugin id, e.g. `sirene`.
    pub plugin: String,
    /// Configuration documents, each a JSON object (field → value); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array with one `{"file", "plugin", "valid", "errors": [{"field",
    /// "pointer", "message"}]}` per file.
    #[arg(long)]
    pub json: bool,
}

/// The verdict on one document, what `--json` prints.
#[derive(Debug, serde::Serialize)]
struct Verdict<'a> {
    file: String,
    plugin: &'a str,
    valid: bool,
    errors: Vec<FieldError>,
}

/// Runs the check: exit 0 when every document is valid, 3 (refused) when one is not.
pub fn run(engine: &Engine, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let plugin = engine.instances().plugin(&args.plugin)?.clone();
    let mut verdicts = Vec::new();
    for file in &args.files {
        let document = read_document(file)?;
        let errors = plugin.schema.check_document(&document);
        verdicts.push(Verdict {
            file: file.display().to_string(),
            plugin: &args.plugin,
            valid: errors.is_empty(),
            errors,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdicts)?);
    } else {
        for v in &verdicts {
            if v.valid {
                println!("{}: valid for plugin {}", v.file, v.plugin);
            } else {
                println!(
                    "{}: {} problem(s) for plugin {}:",
                    v.file,
                    v.errors.len(),
                    v.plugin
                );
                for e in &v.errors {
                    println!("  {e}");
                }
            }
        }
    }
    Ok(if verdicts.iter().all(|v| v.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::cli::EXIT_REFUSED)
    })
}

/// Reads one document: a JSON object, or an error naming the file and what to give instead.
fn read_document(file: &Path) -> Result<Map<String, Value>, ConfigError> {
    let name = file.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| ConfigError::Provisioning {
        path: name.clone(),
        reason: format!("cannot read it ({e}); give a readable UTF-8 JSON file, or - for stdin"),
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ConfigError::Provisioning {
            path: name,
            reason: format!(
                "expected a JSON object of field names to values, e.g. {{\"timeout_secs\": 30}}, got {}",
                kind(&other)
            ),
        }),
        Err(e) => Err(ConfigError::Provisioning {
            path: name,
            reason: format!("it is not valid JSON: {e}"),
        }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
