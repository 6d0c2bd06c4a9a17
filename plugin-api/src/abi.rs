#![allow(non_local_definitions)] // emitted by #[sabi_trait]

//! The binary boundary: the root module a plugin exports and the callback object the host
//! passes in.
//!
//! Everything here is `#[repr(C)]` and checked by `abi_stable` when a library is loaded. Data
//! crosses as JSON in `RStr`/`RString`, so the layout stays tiny and the shapes can evolve with
//! serde defaults. Plugin authors never touch this module: [`crate::export_plugin!`] builds the
//! root module and [`crate::Host`] wraps the callbacks.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::{RRef, VersionStrings},
    std_types::{RResult, RStr, RString},
    StableAbi,
};

/// Result of every boundary call: JSON on both sides.
pub type AbiResult = RResult<RString, RString>;

/// Callbacks from a plugin into the host.
///
/// Frozen on purpose: adding a method to a `#[sabi_trait]` breaks loading of older plugins, so
/// new services are new *names* passed to [`HostCallbacks::call`], never new methods.
#[sabi_trait]
pub trait HostCallbacks: Send + Sync {
    /// Calls the host service `name` with a JSON `input`; returns JSON, or a JSON
    /// [`crate::PluginError`] on failure.
    #[sabi(last_prefix_field)]
    fn call(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString>;
}

/// A borrowed host-callback object, valid for the duration of one boundary call.
pub type HostRef<'a> = HostCallbacks_TO<'a, RRef<'a, ()>>;

/// The root module every plugin library exports.
///
/// Append-only: **new fields go after the field marked `last_prefix_field`, never before it,
/// and existing fields never change type.** Older plugins then still load; the host reads
/// newer fields through the `Option`-returning accessors.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The plugin API version the plugin was built against (`PLUGIN_API_VERSION`).
    pub api_version: extern "C" fn() -> RStr<'static>,
    /// JSON [`crate::Manifest`].
    pub manifest: extern "C" fn() -> AbiResult,
    /// JSON Schema (draft-07) of the plugin's configuration.
    pub config_schema: extern "C" fn() -> AbiResult,
    /// Plugin-specific rules across fields (JSON list of [`crate::PluginError`], empty = valid).
    pub validate: extern "C" fn(config: RStr<'_>) -> AbiResult,
    /// Quotas for a given configuration (JSON [`crate::Quotas`]).
    pub quotas: extern "C" fn(config: RStr<'_>) -> AbiResult,
    /// Runs the test routine: JSON [`crate::TestReport`].
    pub test: extern "C" fn(config: RStr<'_>, host: HostRef<'_>) -> AbiResult,
    /// Serves one operation of a capability.
    pub invoke: extern "C" fn(
        operation: RStr<'_>,
        input: RStr<'_>,
        config: RStr<'_>,
        host: HostRef<'_>,
    ) -> AbiResult,
    /// Runs one scheduled task: JSON [`crate::TaskOutcome`].
    ///
    /// New fields go below this one, never above (append-only prefix type).
    #[sabi(last_prefix_field)]
    pub run_task: extern "C" fn(name: RStr<'_>, config: RStr<'_>, host: HostRef<'_>) -> AbiResult,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "passerelle_plugin";
    const NAME: &'static str = "passerelle_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::PLUGIN_API_VERSION);
}
