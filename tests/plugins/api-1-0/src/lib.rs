//! A plugin as built against plugin API 1.0: its root module declares 1.0.0 and its manifest
//! is the JSON a 1.0 `export_plugin!` wrote (no `locales`). The host must load it and show it
//! in English whatever language is asked for. It serves `company.lookup` the 1.0 way: listed
//! in the manifest by hand and decoded in its own `invoke`, without `Plugin::operations`.

use passerelle_plugin_api::__private::abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::prelude::*;

pub struct ApiOneZero;

/// Settings of a plugin built against plugin API 1.0.
#[derive(Deserialize, JsonSchema)]
pub struct Config {
    /// Greeting
    ///
    /// What the test routine says.
    #[serde(default)]
    pub greeting: String,
}

impl Plugin for ApiOneZero {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("api-one-zero", "API 1.0 plugin", "0.1.0", Category::Other)
    }

    fn test(config: &Config, _: &Host<'_>) -> TestReport {
        let mut report = TestReport::new();
        report.step("say hello", || Ok(Check::ok((), config.greeting.clone())));
        report.finish("all good")
    }

    fn invoke(call: Call<'_>, config: &Config, _: &Host<'_>) -> Result<Reply, PluginError> {
        if call.is::<CompanyLookup>() {
            return call.serve::<CompanyLookup>(|query| {
                Ok(Company {
                    siren: query.id,
                    legal_name: Some(config.greeting.clone()),
                    ..Company::default()
                })
            });
        }
        Err(call.unsupported())
    }
}

extern "C" fn api_1_0() -> RStr<'static> {
    RStr::from_str("1.0.0")
}

/// The manifest exactly as plugin API 1.0 serialised it.
extern "C" fn manifest_1_0() -> RResult<RString, RString> {
    let json = serde_json::json!({
        "id": "api-one-zero",
        "name": "API 1.0 plugin",
        "version": "0.1.0",
        "api_version": "1.0.0",
        "category": "other",
        "description": "",
        "capabilities": ["company.lookup"],
        "tasks": [],
        "quotas": {}
    });
    RResult::ROk(RString::from(json.to_string()))
}

export_plugin!(
    ApiOneZero,
    declaring || {
        passerelle_plugin_api::__private::root_module_describing::<ApiOneZero>(
            api_1_0,
            manifest_1_0,
        )
    }
);
