//! End-to-end tests: the real `passerelle` binary, real plugin files and provider emulators.
//! One test binary; shared helpers live in `passerelle_e2e` (the crate's lib).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod config;
mod loader;
mod services;
mod sirene;
