//! Events to the ERP: what plugins and the host emit (`esign.completed`,
//! `einvoice.status_changed`, `instance.degraded`, …; the types live in
//! [`passerelle_plugin_api::events`]), kept in a persistent [`outbox`], and delivered as
//! signed webhooks ([`webhooks`], [`signature`], [`delivery`]) and as a server-sent event
//! stream (`GET /api/events`).
//!
//! Why an outbox: the ERP may be down or the host killed at any moment; an event stored
//! before `emit` returns is delivered later, at least once, in order per instance.
//!
//! What the host itself emits, and when:
//! - `instance.test_failed`: a test routine with the saved values ended `failed`.
//! - `instance.degraded`: a call into the instance's plugin passed its deadline and was
//!   abandoned while its thread still runs (in-process plugins; see
//!   [`crate::isolation::DegradedBook`]); emitted when the instance goes from healthy to
//!   degraded, not for every further abandoned call.
//! - `calendar.sync_failed`: a `calendar.sync` call failed (whoever called it).

pub mod cli;
pub mod delivery;
pub mod outbox;
pub mod signature;
pub mod webhooks;

pub use outbox::Outbox;

/// Emits an event of the host's own; a failure to store it is logged, never fatal to the
/// action that caused it.
pub fn emit_host_event<D: serde::Serialize>(outbox: &Outbox, instance: &str, kind: &str, data: &D) {
    let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
    if let Err(e) = outbox.emit(instance, kind, &data, None) {
        tracing::error!(instance, kind, error = %e, "cannot store the event for the ERP");
    }
}
