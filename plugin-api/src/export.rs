//! What [`crate::export_plugin!`] expands to: the root module of a plugin, with every entry
//! point wrapped so that a panic becomes an error value instead of unwinding across
//! `extern "C"` (which would abort the host).

use crate::abi::{AbiResult, HostRef, PluginMod, PluginModRef};
use crate::error::{ErrorKind, PluginError};
use crate::host::Host;
use crate::plugin::{Call, Plugin};
use crate::report::TestReport;
use crate::serve::Operations;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RResult, RStr, RString};
use serde::Serialize;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// Name of the symbol holding a library's `LibHeader`, as `abi_stable` looks it up.
/// Checked against `abi_stable::library::ROOT_MODULE_LOADER_NAME` by a test.
pub const ROOT_MODULE_LOADER_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

thread_local! {
    static IN_PLUGIN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Keeps panics inside a plugin call quiet: the default hook would print the message (which
/// may hold a secret) to stderr. The message travels back to the host as an error instead,
/// where it is redacted. Panics outside plugin calls go to the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_PLUGIN_CALL.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

fn guard(entry: &str, f: impl FnOnce() -> Result<String, PluginError>) -> AbiResult {
    install_panic_hook();
    let was_inside = IN_PLUGIN_CALL.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_PLUGIN_CALL.with(|c| c.set(was_inside));
    match result {
        Ok(Ok(json)) => RResult::ROk(RString::from(json)),
        Ok(Err(e)) => RResult::RErr(RString::from(e.to_json())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            let e = PluginError::new(
                ErrorKind::Panic,
                format!("the plugin panicked in {entry}: {message}"),
            );
            RResult::RErr(RString::from(e.to_json()))
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string(value)
        .map_err(|e| PluginError::internal(format!("cannot encode the plugin's answer: {e}")))
}

fn parse_config<P: Plugin>(config: RStr<'_>) -> Result<P::Config, PluginError> {
    read_config(config.as_str(), field_names::<P::Config>)
}

/// The top-level fields of a configuration, flattened blocks included.
fn field_names<C: schemars::JsonSchema>() -> Vec<String> {
    crate::config::config_schema::<C>()
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Reads a configuration, naming the field of the first error: its path as
/// `serde_path_to_error` tracks it (`timeout_secs`, `mailboxes[2].address`), followed by the
/// name serde quotes in backticks when the error is about a field of that value ("missing
/// field", "unknown field", a value of a flattened block, which path tracking does not reach).
///
/// serde lists the expected fields after an unknown one, except in a configuration with a
/// flattened block; `known` gives them then, so the message still says what to write instead.
fn read_config<C: serde::de::DeserializeOwned>(
    text: &str,
    known: impl Fn() -> Vec<String>,
) -> Result<C, PluginError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.inner().to_string();
        if message.starts_with("unknown field `") && !message.contains("expected") {
            let expected = known()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if !expected.is_empty() {
                message = match message.rsplit_once(" at line ") {
                    Some((head, at)) => format!("{head}, expected one of {expected} at line {at}"),
                    None => format!("{message}, expected one of {expected}"),
                };
            }
        }
        // serde names the field between backticks in "missing field `x`" and "unknown field
        // `x`"; in other messages backticks quote a value ("invalid type: floating point
        // `5.0`"), which must not be reported as a field name.
        let quoted = || {
            message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field `"))
                .filter(|f| {
                    f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                        && f.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                })
                .map(str::to_owned)
        };
        // A field named by the message ("missing field `address`") is inside the value at
        // `path`; any other error is about the value at `path` itself.
        let field = match (path == "." || path == "?", quoted()) {
            (true, quoted) => quoted,
            (false, Some(quoted)) => Some(format!("{path}.{quoted}")),
            (false, None) => Some(path),
        };
        let mut err = PluginError::new(
            ErrorKind::Config,
            match &field {
                Some(field) if !message.contains(&format!("`{field}`")) => {
                    format!("the configuration cannot be read: {field}: {message}")
                }
                _ => format!("the configuration cannot be read: {message}"),
            },
        );
        if let Some(field) = field {
            err = err.with_field(field);
        }
        err
    })
}

extern "C" fn api_version() -> RStr<'static> {
    RStr::from_str(crate::PLUGIN_API_VERSION)
}

extern "C" fn manifest<P: Plugin>() -> AbiResult {
    guard("manifest", || {
        let mut m = P::manifest();
        // Derived from the handlers, never written twice: a name the manifest lists by hand
        // as well is listed twice, which `Manifest::check` refuses with its name.
        m.capabilities.extend(
            Operations::<P>::of_plugin()
                .names()
                .into_iter()
                .map(str::to_owned),
        );
        m.api_version = crate::PLUGIN_API_VERSION.to_owned();
        for (lang, source) in P::LOCALES {
            m.locales.insert((*lang).to_owned(), (*source).to_owned());
        }
        to_json(&m)
    })
}

extern "C" fn config_schema<P: Plugin>() -> AbiResult {
    guard("config_schema", || {
        to_json(&crate::config::config_schema::<P::Config>())
    })
}

extern "C" fn validate<P: Plugin>(config: RStr<'_>) -> AbiResult {
    guard("validate", || match parse_config::<P>(config) {
        Ok(c) => to_json(&P::validate(&c)),
        Err(e) => to_json(&vec![e]),
    })
}

extern "C" fn quotas<P: Plugin>(config: RStr<'_>) -> AbiResult {
    guard("quotas", || {
        let quotas = match parse_config::<P>(config) {
            Ok(c) => P::quotas(&c),
            Err(_) => P::manifest().quotas,
        };
        to_json(&quotas)
    })
}

extern "C" fn test<P: Plugin>(config: RStr<'_>, host: HostRef<'_>) -> AbiResult {
    guard("test", || {
        let host = Host::from_abi(host);
        let report = match parse_config::<P>(config) {
            Ok(c) => P::test(&c, &host),
            Err(e) => TestReport::failed("read configuration", e.message),
        };
        to_json(&report)
    })
}

extern "C" fn invoke<P: Plugin>(
    operation: RStr<'_>,
    input: RStr<'_>,
    config: RStr<'_>,
    host: HostRef<'_>,
) -> AbiResult {
    guard("invoke", || {
        let host = Host::from_abi(host);
        let c = parse_config::<P>(config)?;
        if operation.as_str() == crate::plugin::ENVIRONMENT_OPERATION {
            return to_json(&P::environment(&c));
        }
        P::invoke(Call::new(operation.as_str(), input.as_str()), &c, &host).map(|r| r.into_json())
    })
}

extern "C" fn run_task<P: Plugin>(
    name: RStr<'_>,
    config: RStr<'_>,
    host: HostRef<'_>,
) -> AbiResult {
    guard("run_task", || {
        let host = Host::from_abi(host);
        let c = parse_config::<P>(config)?;
        to_json(&P::run_task(name.as_str(), &c, &host)?)
    })
}

/// Builds the root module of plugin `P`. Called once per load by the exported header.
pub fn root_module<P: Plugin>() -> PluginModRef {
    root_module_declaring::<P>(api_version)
}

/// Like [`root_module`] with another declared API version. Only for the host's tests of
/// version checks: a real plugin always declares the version it was built against.
pub fn root_module_declaring<P: Plugin>(
    api_version: extern "C" fn() -> RStr<'static>,
) -> PluginModRef {
    root_module_describing::<P>(api_version, manifest::<P>)
}

/// Like [`root_module_declaring`] with another manifest entry too. Only for the host's tests
/// of older plugins: a manifest JSON as an older `export_plugin!` wrote it.
pub fn root_module_describing<P: Plugin>(
    api_version: extern "C" fn() -> RStr<'static>,
    manifest: extern "C" fn() -> AbiResult,
) -> PluginModRef {
    PluginMod {
        api_version,
        manifest,
        config_schema: config_schema::<P>,
        validate: validate::<P>,
        quotas: quotas::<P>,
        test: test::<P>,
        invoke: invoke::<P>,
        run_task: run_task::<P>,
    }
    .leak_into_prefix()
}

/// Exports a [`crate::Plugin`] as the root module of this library.
///
/// ```ignore
/// struct Sirene;
/// impl Plugin for Sirene { /* … */ }
/// export_plugin!(Sirene);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!($plugin, declaring $crate::__private::root_module::<$plugin>);
    };
    // Hidden form for the host's tests: export a root module built by another function.
    ($plugin:ty, declaring $root:expr) => {
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __PASSERELLE_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __passerelle_root_module(
            ) -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(|| $root())
            }
            // SAFETY: the constructor returns the prefix of `PluginModRef`, the type named here.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::abi::PluginModRef,
                >(
                    __passerelle_root_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use super::{field_names, read_config};
    use crate::blocks::{Timeout, TimeoutSpec};
    use crate::error::ErrorKind;
    use serde::Deserialize;
    use std::ops::RangeInclusive;

    struct Spec;
    impl TimeoutSpec for Spec {
        const DOC: &'static str = "Timeout (seconds)";
        const GROUP: &'static str = "connection";
        const DEFAULT_SECS: u32 = 30;
        const SECS: RangeInclusive<u32> = 5..=120;
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Config {
        url: String,
        #[serde(default)]
        mailboxes: Vec<Mailbox>,
        #[serde(flatten)]
        timeout: Timeout<Spec>,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Mailbox {
        address: String,
    }

    fn field_and_message(text: &str) -> (Option<String>, String) {
        let e = read_config::<Config>(text, field_names::<Config>).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        (e.field, e.message)
    }

    #[test]
    fn configuration_errors_name_the_field_path() {
        let (field, message) =
            field_and_message(r#"{"url": "u", "mailboxes": [{"address": "a"}, {"address": 5}]}"#);
        assert_eq!(field.as_deref(), Some("mailboxes[1].address"));
        assert_eq!(
            message,
            "the configuration cannot be read: mailboxes[1].address: invalid type: integer `5`, \
             expected a string at line 1 column 58"
        );
        let (field, message) =
            field_and_message(r#"{"url": "u", "mailboxes": [{"address": "a"}, {}]}"#);
        assert_eq!(field.as_deref(), Some("mailboxes[1].address"));
        assert!(message.contains("missing field `address`"), "{message}");
        let (field, _) = field_and_message(r#"{"url": 5.0}"#);
        assert_eq!(field.as_deref(), Some("url"));
        let (field, message) = field_and_message(r#"{}"#);
        assert_eq!(field.as_deref(), Some("url"));
        assert!(message.contains("missing field `url`"), "{message}");
        let (field, message) = field_and_message(r#"{"url": "u", "urls": []}"#);
        assert_eq!(field.as_deref(), Some("urls"));
        assert_eq!(
            message,
            "the configuration cannot be read: unknown field `urls`, expected one of `url`, \
             `mailboxes`, `timeout_secs` at line 1 column 24"
        );
        let (field, message) = field_and_message(r#"{"url": "u", "timeout_secs": "60"}"#);
        assert_eq!(field.as_deref(), Some("timeout_secs"));
        assert!(message.contains("invalid type: string"), "{message}");
        let c = read_config::<Config>(r#"{"url": "u", "timeout_secs": 60}"#, Vec::new).unwrap();
        assert_eq!(c.timeout.secs(), 60);
    }

    #[test]
    fn exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            super::ROOT_MODULE_LOADER_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
