//! The operations a plugin serves, one typed handler each.
//!
//! Why: an operation used to live in two places of a plugin, the manifest's capability list
//! and an `if call.is::<X>()` chain in `invoke`, which could drift apart (an operation
//! announced and not served, or served and never announced). A plugin now registers each
//! handler once in [`crate::Plugin::operations`]:
//!
//! ```text
//! fn operations(ops: &mut Operations<Self>) {
//!     ops.serve::<CompanyLookup>(|query, config, host| lookup(&query, config, host))
//!         .serve::<CompanySearch>(|query, config, host| search(&query, config, host));
//! }
//! ```
//!
//! `export_plugin!` derives the manifest's capability list from these registrations and
//! routes each call to its handler, decoding the input and encoding the output with the
//! operation's types.

use crate::error::PluginError;
use crate::host::Host;
use crate::plugin::{Call, Operation, Plugin, Reply};

type Handler<C> = Box<dyn Fn(Call<'_>, &C, &Host<'_>) -> Result<Reply, PluginError>>;

/// The handlers of a plugin, by operation; built with [`Operations::serve`].
pub struct Operations<P: Plugin> {
    handlers: Vec<(&'static str, Handler<P::Config>)>,
}

impl<P: Plugin> std::fmt::Debug for Operations<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<P: Plugin> Default for Operations<P> {
    fn default() -> Self {
        Operations::new()
    }
}

impl<P: Plugin> Operations<P> {
    /// No operation yet. [`crate::Plugin::operations`] fills it in.
    pub fn new() -> Self {
        Operations {
            handlers: Vec::new(),
        }
    }

    /// Serves operation `O` with `handler`, which gets the decoded input, the instance's
    /// configuration and the host. Registering an operation twice is a mistake the host
    /// refuses at load time (the manifest would list it twice).
    pub fn serve<O: Operation + 'static>(
        &mut self,
        handler: impl Fn(O::Input, &P::Config, &Host<'_>) -> Result<O::Output, PluginError> + 'static,
    ) -> &mut Self {
        self.handlers.push((
            O::NAME,
            Box::new(move |call, config, host| {
                call.serve::<O>(|input| handler(input, config, host))
            }),
        ));
        self
    }

    /// The operations `P` registers in [`crate::Plugin::operations`].
    pub fn of_plugin() -> Self {
        let mut ops = Operations::new();
        P::operations(&mut ops);
        ops
    }

    /// The names of the operations served, in registration order: the manifest's
    /// capability list.
    pub fn names(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|(name, _)| *name).collect()
    }

    /// Whether operation `name` is served.
    pub fn serves(&self, name: &str) -> bool {
        self.handlers.iter().any(|(n, _)| *n == name)
    }

    /// Routes `call` to its handler; an operation not registered is `Unsupported`.
    pub fn dispatch(
        &self,
        call: Call<'_>,
        config: &P::Config,
        host: &Host<'_>,
    ) -> Result<Reply, PluginError> {
        match self
            .handlers
            .iter()
            .find(|(name, _)| *name == call.operation())
        {
            Some((_, handler)) => handler(call, config, host),
            None => Err(call.unsupported()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{Company, CompanyLookup, CompanyQuery, CompanySearch};
    use crate::error::ErrorKind;
    use crate::manifest::{Category, Manifest};
    use crate::report::TestReport;
    use schemars::JsonSchema;
    use serde::Deserialize;

    struct Lookups;

    #[derive(Deserialize, JsonSchema)]
    struct Config {
        #[serde(default)]
        prefix: String,
    }

    impl Plugin for Lookups {
        type Config = Config;

        fn manifest() -> Manifest {
            Manifest::new("lookups", "Lookups", "1.0.0", Category::Company)
        }

        fn test(_: &Config, _: &Host<'_>) -> TestReport {
            TestReport::new().finish("")
        }

        fn operations(ops: &mut Operations<Self>) {
            ops.serve::<CompanyLookup>(|query, config, _host| {
                Ok(Company {
                    siren: format!("{}{}", config.prefix, query.id),
                    ..Company::default()
                })
            });
        }
    }

    fn call(operation: &str, input: &str) -> Result<serde_json::Value, PluginError> {
        let host = crate::testing::ScriptedHost::default();
        let config = serde_json::json!({"prefix": "n°"});
        crate::testing::invoke_raw::<Lookups>(operation, input, config, &host)
    }

    #[test]
    fn a_registered_operation_is_served_with_its_types() {
        let out = call(CompanyLookup::NAME, r#"{"id": "123"}"#).expect("served");
        let company: Company = serde_json::from_value(out).expect("a company");
        assert_eq!(company.siren, "n°123");
        let query = CompanyQuery { id: "9".into() };
        let host = crate::testing::ScriptedHost::default();
        let typed =
            crate::testing::invoke::<Lookups, CompanyLookup>(&query, serde_json::json!({}), &host)
                .expect("served");
        assert_eq!(typed.siren, "9");
    }

    #[test]
    fn bad_input_and_unknown_operations_are_refused() {
        let e = call(CompanyLookup::NAME, r#"{"siret": "123"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("company.lookup"), "{}", e.message);
        let e = call(CompanySearch::NAME, r#"{"name": "x"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
    }

    #[test]
    fn the_manifest_lists_what_is_registered() {
        let ops = Operations::<Lookups>::of_plugin();
        assert_eq!(ops.names(), ["company.lookup"]);
        assert!(ops.serves("company.lookup"));
        assert!(!ops.serves("company.search"));
        let m = crate::testing::manifest::<Lookups>().expect("manifest");
        assert_eq!(m.capabilities, ["company.lookup"]);
        assert_eq!(m.api_version, crate::PLUGIN_API_VERSION);
    }
}
