//! A plugin that declares a plugin API version this host does not accept (2.0.0). The
//! loader must refuse it and say which versions it accepts.

use passerelle_plugin_api::prelude::*;

pub struct BadVersion;

#[derive(Deserialize, JsonSchema)]
pub struct Config {}

impl Plugin for BadVersion {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("bad-version", "Bad version", "0.1.0", Category::Other)
    }

    fn test(_: &Config, _: &Host<'_>) -> TestReport {
        TestReport::new().finish("unreachable")
    }
}

extern "C" fn future_api() -> passerelle_plugin_api::__private::abi_stable::std_types::RStr<'static>
{
    passerelle_plugin_api::__private::abi_stable::std_types::RStr::from_str("2.0.0")
}

export_plugin!(
    BadVersion,
    declaring || {
        passerelle_plugin_api::__private::root_module_declaring::<BadVersion>(future_api)
    }
);
