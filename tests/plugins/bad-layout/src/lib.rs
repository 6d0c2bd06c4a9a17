//! A "plugin" built against an incompatible plugin API: same root module name and version,
//! different layout. The loader must refuse it with a layout error.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics, export_root_module,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RStr, RString},
    StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    pub api_version: extern "C" fn() -> RStr<'static>,
    /// Wrong type on purpose: the real one returns `RResult<RString, RString>`.
    #[sabi(last_prefix_field)]
    pub manifest: extern "C" fn(u64) -> RString,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "passerelle_plugin";
    const NAME: &'static str = "passerelle_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn api_version() -> RStr<'static> {
    RStr::from_str("1.0.0")
}

extern "C" fn manifest(_: u64) -> RString {
    RString::new()
}

#[export_root_module]
pub fn get_library() -> PluginModRef {
    PluginMod {
        api_version,
        manifest,
    }
    .leak_into_prefix()
}
