//! # passerelle
//!
//! The host: it loads plugin libraries ([`loader`]), keeps their instances' configuration
//! ([`store`], [`secrets`], [`schema`]), gives plugins their services ([`services`]) and runs
//! their test routines and capabilities ([`runner`]). The binary's command line lives in
//! `main.rs` and [`cli`]; everything here is usable from tests without a process.

pub mod actor;
pub mod argv;
pub mod catalog;
pub mod cli;
pub mod datadir;
pub mod engine;
pub mod events;
pub mod failure;
pub mod hardening;
pub mod hot;
pub mod i18n;
pub mod ids;
pub mod inspect;
pub mod instances;
pub mod isolation;
pub mod loader;
pub mod logging;
pub mod metrics;
pub mod operations;
pub mod plugin;
pub mod redact;
pub mod runner;
pub mod scaffold;
pub mod scheduler;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod services;
pub mod settings;
pub mod signing;
pub mod storage;
pub mod store;
pub mod trust;
pub mod verified;

/// The range of plugin API versions this host loads: same major as ours, minor not newer.
pub use passerelle_plugin_api::PLUGIN_API_VERSION as HOST_PLUGIN_API_VERSION;
