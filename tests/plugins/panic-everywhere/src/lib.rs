//! A plugin that panics in every entry point, manifest included. The host must contain the
//! panics (no abort) and refuse the plugin.

use passerelle_plugin_api::prelude::*;

pub struct PanicEverywhere;

#[derive(Deserialize, JsonSchema)]
pub struct Config {}

impl Plugin for PanicEverywhere {
    type Config = Config;

    fn manifest() -> Manifest {
        panic!("manifest exploded")
    }

    fn test(_: &Config, _: &Host<'_>) -> TestReport {
        panic!("test exploded")
    }

    fn validate(_: &Config) -> Vec<PluginError> {
        panic!("validate exploded")
    }

    fn quotas(_: &Config) -> Quotas {
        panic!("quotas exploded")
    }

    fn invoke(_: Call<'_>, _: &Config, _: &Host<'_>) -> Result<Reply, PluginError> {
        panic!("invoke exploded")
    }

    fn run_task(_: &str, _: &Config, _: &Host<'_>) -> Result<TaskOutcome, PluginError> {
        panic!("run_task exploded")
    }
}

export_plugin!(PanicEverywhere);
