//! The safe side of the boundary: what a plugin author implements.
//!
//! A plugin is stateless code plus a typed configuration. The host hands it the configuration
//! of one instance and a [`Host`] on every call; anything that must outlive a call goes into
//! the host's per-instance state.

use crate::error::{ErrorKind, PluginError};
use crate::host::Host;
use crate::manifest::{Manifest, Quotas};
use crate::report::TestReport;
use crate::serve::Operations;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// One operation of a capability, with its input and output types. The types live in
/// [`crate::capabilities`] so that every provider of a capability speaks the same language.
pub trait Operation {
    /// E.g. `company.lookup`.
    const NAME: &'static str;
    type Input: Serialize + DeserializeOwned + JsonSchema;
    type Output: Serialize + DeserializeOwned + JsonSchema;
}

/// Operation the host calls (through `invoke`, so the root module layout is unchanged) to
/// learn a configuration's environment; answered by `export_plugin!` from
/// [`Plugin::environment`]. Added in plugin API 1.0; older plugins answer "unsupported".
pub const ENVIRONMENT_OPERATION: &str = "passerelle.environment";

/// An incoming operation call, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    operation: &'a str,
    input: &'a str,
}

/// The encoded answer to a [`Call`].
#[derive(Debug, Clone)]
pub struct Reply(String);

impl Reply {
    #[doc(hidden)]
    pub fn into_json(self) -> String {
        self.0
    }
}

impl<'a> Call<'a> {
    #[doc(hidden)]
    pub fn new(operation: &'a str, input: &'a str) -> Self {
        Call { operation, input }
    }

    /// The operation's name, e.g. `company.lookup`.
    pub fn operation(&self) -> &'a str {
        self.operation
    }

    /// Whether this call is for operation `O`. Plugins register handlers with
    /// [`Plugin::operations`] instead of testing calls one by one.
    pub fn is<O: Operation>(&self) -> bool {
        self.operation == O::NAME
    }

    /// Decodes the input as `O::Input`, runs `f` and encodes its output.
    pub fn serve<O: Operation>(
        self,
        f: impl FnOnce(O::Input) -> Result<O::Output, PluginError>,
    ) -> Result<Reply, PluginError> {
        let input: O::Input = serde_json::from_str(self.input).map_err(|e| {
            PluginError::invalid_input(format!("the input of {} is not valid: {e}", O::NAME))
        })?;
        let output = f(input)?;
        serde_json::to_string(&output)
            .map(Reply)
            .map_err(|e| PluginError::internal(format!("cannot encode {} output: {e}", O::NAME)))
    }

    /// The error to return for an operation this plugin does not serve.
    pub fn unsupported(&self) -> PluginError {
        PluginError::new(
            ErrorKind::Unsupported,
            format!(
                "this plugin does not serve the operation {:?}",
                self.operation
            ),
        )
    }
}

/// What a scheduled task run did, for the task list and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub summary: String,
}

impl TaskOutcome {
    pub fn new(summary: impl Into<String>) -> Self {
        TaskOutcome {
            summary: summary.into(),
        }
    }
}

/// A Passerelle plugin. Implement it on a unit struct and export it with
/// [`crate::export_plugin!`]. Every method but `manifest` and `test` has a default.
pub trait Plugin: 'static {
    /// The instance configuration, with doc comments for titles and descriptions and
    /// `#[serde(default)]` for defaults. Secrets are [`crate::Secret`].
    type Config: DeserializeOwned + JsonSchema;

    fn manifest() -> Manifest;

    /// Translations: `(language tag, Fluent source)`, usually
    /// `&[("fr", include_str!("../locales/fr.ftl"))]`. English needs none: it comes from doc
    /// comments and the test routine. See [`crate::i18n`] for the message ids.
    const LOCALES: &'static [(&'static str, &'static str)] = &[];

    /// Checks the connection with the saved values against the real service.
    fn test(config: &Self::Config, host: &Host<'_>) -> TestReport;

    /// Rules across fields that a JSON Schema cannot express well. Each error names its field.
    fn validate(_config: &Self::Config) -> Vec<PluginError> {
        Vec::new()
    }

    /// Quotas for this configuration; by default those of the manifest.
    fn quotas(_config: &Self::Config) -> Quotas {
        Self::manifest().quotas
    }

    /// The environment this configuration targets (e.g. `sandbox`, `production`), when the
    /// provider has several; used with `Manifest::environment_scoped_fields`.
    fn environment(_config: &Self::Config) -> Option<String> {
        None
    }

    /// The operations this plugin serves, one typed handler each (see [`crate::serve`]).
    /// `export_plugin!` lists them as the manifest's capabilities: never list them by hand.
    ///
    /// ```text
    /// fn operations(ops: &mut Operations<Self>) {
    ///     ops.serve::<CompanyLookup>(|query, config, host| lookup(&query, config, host));
    /// }
    /// ```
    fn operations(_ops: &mut Operations<Self>)
    where
        Self: Sized,
    {
    }

    /// Serves an operation call. By default, routes it to the handler registered in
    /// [`Plugin::operations`]; override only for a plugin that decodes calls itself (as
    /// plugins built against API 1.0 did, listing their capabilities in the manifest).
    fn invoke(call: Call<'_>, config: &Self::Config, host: &Host<'_>) -> Result<Reply, PluginError>
    where
        Self: Sized,
    {
        Operations::<Self>::of_plugin().dispatch(call, config, host)
    }

    /// Runs a task listed in the manifest.
    fn run_task(
        task: &str,
        _config: &Self::Config,
        _host: &Host<'_>,
    ) -> Result<TaskOutcome, PluginError> {
        Err(PluginError::new(
            ErrorKind::Unsupported,
            format!("this plugin has no task {task:?}"),
        ))
    }
}
