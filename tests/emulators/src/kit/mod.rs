//! The plumbing every emulator shares, so that a provider's folder holds only what that
//! provider does: its routes, its state, its fixtures and its faults.
//!
//! - [`serve`]: a real server on `127.0.0.1` (plain or TLS) on its own thread, stopped on drop;
//! - [`lock`]: locking shared state that a panicking handler may have poisoned;
//! - [`quota`]: rolling windows and daily counts, and the `429` + `Retry-After` answer;
//! - [`respond`]: JSON bodies with the content type each provider sends;
//! - [`credentials`]: `Authorization: Basic` client credentials;
//! - [`form`]: `application/x-www-form-urlencoded` bodies (token endpoints);
//! - [`bytes`] and [`pdf`]: searching raw bodies, PDF pages and embedded files;
//! - [`dates`]: the clock and provider date formats, with the `time` crate;
//! - [`xml`]: a namespace-aware element tree read with `quick-xml`, and text escaping.

pub mod bytes;
pub mod credentials;
pub mod dates;
pub mod form;
pub mod pdf;
pub mod quota;
pub mod respond;
pub mod serve;
pub mod xml;

use std::sync::{Mutex, MutexGuard};

/// Locks emulator state. A poisoned lock only means another handler panicked (which fails
/// that test on its own); the data is still usable, so the other requests go on.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
