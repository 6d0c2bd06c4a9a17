//! Passerelle plugin: Universign. (Skeleton: being written.)

use passerelle_plugin_api::prelude::*;

pub struct Skeleton;

/// Configuration (skeleton).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

impl Plugin for Skeleton {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "universign",
            "Universign",
            env!("CARGO_PKG_VERSION"),
            Category::Esign,
        )
    }

    fn test(_: &Config, _: &Host<'_>) -> TestReport {
        TestReport::failed("not implemented", "this plugin is being written")
    }
}

export_plugin!(Skeleton);
