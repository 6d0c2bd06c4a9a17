//! Fuzzing of what the host reads from administrators and from plugins (issue 19):
//! configuration values typed on a command line (`parse_cli_value`, `validate_field`), whole
//! configurations (`validate_whole`), provisioning files (`config apply`) and what a plugin
//! says about itself (manifest and configuration schema, as the loader checks them). Seeds
//! are the committed schemas of the bundled plugins and `examples/demo.toml`, mutated by the
//! shared generator (`passerelle_plugin_api::testing::fuzz`). No input may panic; a refusal
//! names the field (or file and instance); a secret's value never appears in a refusal.
//! `PASSERELLE_FUZZ_CASES` runs longer (see README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use abi_stable::std_types::{RResult, RString};
use passerelle::instances::{plan_instance, read_provisioning};
use passerelle::loader::check_description;
use passerelle::schema::ConfigSchema;
use passerelle_plugin_api::manifest::TaskDecl;
use passerelle_plugin_api::testing::fuzz;
use passerelle_plugin_api::{Category, Manifest, PLUGIN_API_VERSION};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A secret as an administrator would type it: long enough to be recognised in a message.
const SECRET: &str = "S3cr3t-Value-42";

fn committed_schemas() -> BTreeMap<String, Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".schema.json") {
            let schema = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.insert(id.to_owned(), schema);
        }
    }
    assert!(out.len() >= 8, "committed schemas missing in {dir}");
    out
}

fn compiled() -> Vec<(String, ConfigSchema)> {
    committed_schemas()
        .into_iter()
        .map(|(id, schema)| (id, ConfigSchema::new(schema).unwrap()))
        .collect()
}

/// What a field's value may look like on a command line: its default, its choices, and a
/// few typical values.
fn raw_seeds(schemas: &[(String, ConfigSchema)]) -> Vec<Vec<u8>> {
    let typical = [
        "true",
        "30",
        "-1",
        "1.5",
        "[\"a\",\"b\"]",
        "a, b",
        "{}",
        "https://api.example/v1",
        SECRET,
    ];
    let mut seeds: Vec<Vec<u8>> = typical.iter().map(|s| s.as_bytes().to_vec()).collect();
    for (_, schema) in schemas {
        for name in schema.field_names() {
            let prop = schema.field(name).unwrap();
            let choices = prop
                .get("oneOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("const"));
            for v in prop.get("default").into_iter().chain(choices) {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                seeds.push(text.into_bytes());
            }
        }
    }
    seeds
}

#[test]
fn fuzz_config_values_typed_on_a_command_line() {
    let schemas = compiled();
    let seeds = raw_seeds(&schemas);
    fuzz::run(
        "host.config_value",
        2000,
        |u| {
            let s = u.choose_index(schemas.len()).unwrap_or(0);
            let fields = schemas[s].1.field_names();
            let f = u.choose_index(fields.len()).unwrap_or(0);
            let raw = fuzz::mutate_bytes(u, &seeds, fuzz::JSON_TOKENS);
            (
                s,
                fields[f].clone(),
                String::from_utf8_lossy(&raw).into_owned(),
            )
        },
        |(s, field, raw)| {
            let schema = &schemas[*s].1;
            let secret = schema.is_secret(field);
            let echoed = |text: &str| secret && raw.len() >= 6 && text.contains(raw.as_str());
            let value = match schema.parse_cli_value(field, raw) {
                Ok(value) => value,
                Err(e) => {
                    assert_eq!(&e.field, field, "{e:?}");
                    assert!(!echoed(&e.to_string()), "secret echoed: {e}");
                    return;
                }
            };
            if let Err(e) = schema.validate_field(field, &value) {
                assert_eq!(&e.field, field, "{e:?}");
                assert!(!echoed(&e.to_string()), "secret echoed: {e}");
            }
        },
    );
}

#[test]
fn fuzz_whole_configurations() {
    let schemas = compiled();
    let seeds: Vec<Value> = schemas
        .iter()
        .map(|(id, schema)| {
            let mut values = schema.with_defaults(&schema.initial_values());
            for name in schema.secret_fields() {
                values.insert(name.to_owned(), Value::from(SECRET));
            }
            json!({"plugin": id, "config": values})
        })
        .collect();
    fuzz::json("host.config_whole", &seeds, 1500, |input| {
        let (Some(id), Some(Value::Object(config))) = (
            input.get("plugin").and_then(Value::as_str),
            input.get("config"),
        ) else {
            return;
        };
        let Some((_, schema)) = schemas.iter().find(|(i, _)| i == id) else {
            return;
        };
        // A secret's value must not show, unless the same text was also put in a field that
        // is not secret (a grafted mutation may copy it there): that field's value may show.
        let in_the_clear: String = config
            .iter()
            .filter(|(f, _)| !schema.is_secret(f))
            .map(|(_, v)| v.to_string())
            .collect();
        let secrets: Vec<&str> = schema
            .secret_fields()
            .filter_map(|f| config.get(f).and_then(Value::as_str))
            .filter(|s| s.len() >= 6 && !in_the_clear.contains(*s))
            .collect();
        for e in schema.validate_whole(config) {
            assert!(!e.message.is_empty());
            let text = e.to_string();
            for secret in &secrets {
                assert!(!text.contains(secret), "secret echoed: {text}");
            }
        }
    });
}

#[test]
fn fuzz_provisioning_files() {
    let schemas = compiled();
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap();
    let seeds = vec![
        demo,
        "[instances.a]\nplugin = \"sirene\"\nenabled = false\n[instances.a.values]\n\
         api_key = { env = \"PASSERELLE_FUZZ_UNSET_VARIABLE\" }\ntimeout_seconds = 30\n"
            .to_owned(),
    ];
    let tokens: &[&[u8]] = &[
        b"[instances.",
        b"]",
        b"\n",
        b"=",
        b"\"",
        b"'''",
        b"{ env = \"PASSERELLE_FUZZ_UNSET\" }",
        b"[[",
        b"enabled = 1",
        b"plugin = ",
        b".values]",
        b"1979-05-27T07:32:00Z",
        b"inf",
        b"nan",
        b"0x7fffffffffffffff",
    ];
    fuzz::text("host.config_apply", &seeds, tokens, 1500, |text| {
        let file = match read_provisioning("demo.toml", text) {
            Ok(file) => file,
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with("provisioning file demo.toml: "), "{text}");
                return;
            }
        };
        for (name, spec) in &file.instances {
            let Some((_, schema)) = schemas.iter().find(|(id, _)| *id == spec.plugin) else {
                continue;
            };
            if let Err(e) = plan_instance("demo.toml", name, spec, schema) {
                let text = e.to_string();
                assert!(text.starts_with("provisioning file demo.toml: "), "{text}");
                assert!(
                    text.contains(&format!("[instances.{name}]")) || text.contains("id"),
                    "{text}"
                );
            }
        }
    });
}

fn sample_manifest() -> Manifest {
    let mut manifest = Manifest::new("sirene", "INSEE Sirene", "1.2.0", Category::Company);
    manifest.capabilities = vec!["company.lookup".into(), "company.search".into()];
    manifest.tasks = vec![TaskDecl {
        name: "refresh".into(),
        description: "Refreshes".into(),
        interval_field: "timeout_seconds".into(),
        start_delay_field: "timeout_seconds".into(),
    }];
    manifest
}

/// A plugin's answer to `manifest()` or `config_schema()`: the JSON text, or an error.
fn answer(v: Option<&Value>) -> RResult<RString, RString> {
    match v {
        Some(Value::String(s)) if s == "error" => {
            RResult::RErr(RString::from(r#"{"kind":"internal","message":"no"}"#))
        }
        Some(v) => RResult::ROk(RString::from(v.to_string())),
        None => RResult::ROk(RString::new()),
    }
}

#[test]
fn fuzz_plugin_manifests_and_schemas() {
    let manifest = sample_manifest();
    let seeds: Vec<Value> = committed_schemas()
        .into_values()
        .map(|schema| json!({"manifest": manifest, "schema": schema}))
        .collect();
    fuzz::json("host.plugin_description", &seeds, 800, |input| {
        let declared = input
            .get("api_version")
            .and_then(Value::as_str)
            .unwrap_or(PLUGIN_API_VERSION);
        let checked = check_description(
            declared,
            answer(input.get("manifest")),
            answer(input.get("schema")),
        );
        match checked {
            Ok((manifest, schema)) => {
                assert!(manifest.check().is_ok());
                assert!(schema
                    .field_names()
                    .iter()
                    .all(|f| schema.field(f).is_some()));
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    });
}

/// The seeds pass every check, so the cases explore past the first one.
#[test]
fn the_fuzz_seeds_pass_the_loader_checks() {
    let manifest = serde_json::to_value(sample_manifest()).unwrap();
    for (id, schema) in committed_schemas() {
        let has_timeout = schema["properties"].get("timeout_seconds").is_some();
        let mut manifest = manifest.clone();
        if !has_timeout {
            manifest["tasks"] = json!([]);
        }
        let checked = check_description(
            PLUGIN_API_VERSION,
            answer(Some(&manifest)),
            answer(Some(&schema)),
        );
        assert!(checked.is_ok(), "{id}: {:?}", checked.err());
    }
}

/// Found by `fuzz_whole_configurations` (`host.config_whole`): a refusal of the whole
/// configuration (the exchange-ews root `oneOf`) printed every value, the password included.
#[test]
fn a_refusal_of_the_whole_configuration_does_not_print_the_secrets() {
    let schemas = compiled();
    let (_, ews) = schemas.iter().find(|(id, _)| id == "exchange-ews").unwrap();
    let mut config = ews.with_defaults(&ews.initial_values());
    config.insert("password".into(), Value::from(SECRET));
    config.insert("client_secret".into(), Value::from(-4.5e145));
    config.insert("use_oauth".into(), Value::from(60));
    let errors = ews.validate_whole(&config);
    assert!(!errors.is_empty(), "the configuration is invalid");
    for e in errors {
        assert!(!e.to_string().contains(SECRET), "secret echoed: {e}");
    }
}

/// Small shared libraries every Linux system has: real ELF files (headers, segments,
/// sections, dynamic symbols) to mutate, as a damaged or hostile plugin file would be.
fn system_libraries() -> Vec<Vec<u8>> {
    let dirs = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/usr/lib",
    ];
    let names = [
        "libdl.so.2",
        "libgcc_s.so.1",
        "libutil.so.1",
        "libpthread.so.0",
    ];
    let found: Vec<Vec<u8>> = dirs
        .iter()
        .flat_map(|d| names.iter().map(move |n| format!("{d}/{n}")))
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|bytes| bytes.len() < 256 * 1024)
        .collect();
    assert!(
        !found.is_empty(),
        "no small system library ({names:?}) found in {dirs:?} to seed the plugin-file fuzzer"
    );
    found
}

#[test]
fn fuzz_plugin_library_files() {
    let tokens: &[&[u8]] = &[
        b"\x7fELF",
        b"\xff\xff\xff\xff",
        b"\x00\x00\x00\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x03\x00",
        b"\x3e\x00",
    ];
    fuzz::bytes(
        "host.plugin_file",
        &system_libraries(),
        tokens,
        300,
        |bytes| {
            // Never a plugin (no root module), so always refused, but with a reason.
            let e = passerelle::inspect::inspect(bytes).unwrap_err();
            assert!(e.0.starts_with("it "), "{e}");
        },
    );
}
