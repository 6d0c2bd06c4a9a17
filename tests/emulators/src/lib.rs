//! # passerelle-emulators
//!
//! Emulators of the providers Passerelle talks to, as real HTTP servers on `127.0.0.1`, so
//! that end-to-end tests drive the real binary and the real plugin files without a network,
//! accounts or quotas. Each emulator reproduces what a plugin must cope with (answer shapes
//! taken from real samples, refused credentials, quotas, outages), not the provider's whole
//! API.
//!
//! Layout: [`kit`] holds the plumbing every emulator shares (server start, locks, quotas and
//! `429` answers, JSON bodies, form and Basic credentials, dates with `time`, an XML element
//! tree on `quick-xml`, byte search and PDF reading). Each provider is a folder whose
//! `mod.rs` holds its public face (options, the running emulator and its test controls)
//! and whose other files each hold one idea of that provider: its routes, state, checks,
//! answers and faults, samples, and its own tests.
//!
//! ```no_run
//! use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
//!
//! let sirene = SireneEmulator::start(SireneOptions::default())?;
//! println!("point the plugin at {}", sirene.base_url());
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod afnor;
pub mod chorus_pro;
mod entra;
pub mod ews;
pub mod graph;
pub mod kit;
pub mod mindee;
/// The server side of NTLM, under its former path (it lives with the EWS emulator).
pub use ews::ntlm;
pub mod probe;
pub mod sirene;
pub mod universign;

/// The server start, kept under its former path for tests written against it.
pub use kit::serve as server;
pub use kit::serve::{spawn, RunningServer};
pub use sirene::{SireneEmulator, SireneOptions};
