//! End-to-end tests: the real `passerelle` binary, real plugin files and provider emulators.
//! One test binary; shared helpers live in `passerelle_e2e` (the crate's lib).

mod config;
mod loader;
mod sirene;
