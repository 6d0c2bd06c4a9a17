//! End-to-end tests: the real `passerelle` binary, real plugin files and provider emulators.
//! One test binary; shared helpers live in `passerelle_e2e` (the crate's lib).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod calendar_graph;
mod chorus_pro;
mod cluster;
mod cluster_console;
mod config;
mod console;
mod crash;
mod demo;
mod einvoice_afnor;
mod events;
mod exchange_ews;
mod forms;
mod i18n;
mod isolation;
mod loader;
mod metrics;
mod ocr_mindee;
mod ocr_switch;
mod operations;
mod partner_kit;
mod secure_defaults;
mod security;
mod serve;
mod services;
mod signing;
mod sirene;
mod storage_pg;
mod universign;
mod web_security;
