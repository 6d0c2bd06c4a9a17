//! Events the ERP is told about: typed like the capabilities, emitted by plugins (through
//! [`crate::Host::emit_event`]) and by the host, stored by the host in its outbox and
//! delivered as signed webhooks and as a server-sent event stream.
//!
//! An [`Event`] is `{id, type, instance, time, data}`. The host gives the id, the instance and
//! the time: a plugin only says what happened ([`EmitEvent`]), so it cannot speak for another
//! instance. The `data` of each type is one of the structs below; new fields come with serde
//! defaults, new types get new names (a name is never reused with another meaning).
//!
//! A plugin that may see the same change twice (a task round cut short and run again) gives
//! a `key` unique to that change, e.g. `"<transaction>/completed"`: the host keeps one event
//! per instance and key, so the ERP is not told twice.

use serde::{Deserialize, Serialize};

/// Names of the event types.
pub mod types {
    /// Every signer signed; the signed documents are stored (`data`: [`super::EsignEvent`]).
    pub const ESIGN_COMPLETED: &str = "esign.completed";
    /// A signer refused, or the requester canceled (`data`: [`super::EsignEvent`]).
    pub const ESIGN_REFUSED: &str = "esign.refused";
    /// Not signed in time (`data`: [`super::EsignEvent`]).
    pub const ESIGN_EXPIRED: &str = "esign.expired";
    /// The provider stopped the transaction on an error (`data`: [`super::EsignEvent`]).
    pub const ESIGN_FAILED: &str = "esign.failed";
    /// A submitted invoice or deposit changed status (`data`: [`super::EinvoiceStatusChanged`]).
    pub const EINVOICE_STATUS_CHANGED: &str = "einvoice.status_changed";
    /// A calendar synchronisation failed (`data`: [`super::CalendarSyncFailed`]).
    pub const CALENDAR_SYNC_FAILED: &str = "calendar.sync_failed";
    /// An instance's test routine failed (`data`: [`super::InstanceTestFailed`]), emitted by
    /// the host.
    pub const INSTANCE_TEST_FAILED: &str = "instance.test_failed";
    /// An instance is degraded (`data`: [`super::InstanceDegraded`]), emitted by the host.
    pub const INSTANCE_DEGRADED: &str = "instance.degraded";
    /// Sent by `webhooks test` to one webhook only, never stored.
    pub const WEBHOOK_PING: &str = "webhook.ping";
}

/// Every event type a webhook can subscribe to, in documentation order.
pub const EVENT_TYPES: &[&str] = &[
    types::ESIGN_COMPLETED,
    types::ESIGN_REFUSED,
    types::ESIGN_EXPIRED,
    types::ESIGN_FAILED,
    types::EINVOICE_STATUS_CHANGED,
    types::CALENDAR_SYNC_FAILED,
    types::INSTANCE_TEST_FAILED,
    types::INSTANCE_DEGRADED,
];

/// One event as the ERP receives it (webhook body, SSE `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Unique id, also the webhook's `X-Passerelle-Delivery` and the SSE `id`.
    pub id: String,
    /// One of [`EVENT_TYPES`], e.g. `esign.completed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The instance the event is about.
    pub instance: String,
    /// When it happened, RFC 3339 UTC.
    pub time: String,
    /// The type's data.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What a plugin asks the host to emit (`events.emit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmitEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
    /// One event per instance and key: a second emission with the same key is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The host's answer to `events.emit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emitted {
    /// The event's id (the earlier event's, for a duplicate key).
    pub id: String,
    /// An event with this key existed already; nothing new was stored.
    #[serde(default)]
    pub duplicate: bool,
}

/// `data` of the `esign.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EsignEvent {
    /// The provider's transaction id (what `esign.request` returned).
    pub transaction_id: String,
    /// The new status: `completed`, `expired`, `canceled` or `failed`.
    pub status: String,
    /// The status before.
    #[serde(default)]
    pub previous_status: String,
    /// The ERP's own reference given with the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `data` of `einvoice.status_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EinvoiceStatusChanged {
    /// The deposit or flow id the provider gave at submission.
    pub deposit_id: String,
    /// The invoice number, when the change concerns one invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    #[serde(default)]
    pub previous_status: String,
    pub status: String,
    /// The provider's own words for the status, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `data` of `calendar.sync_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CalendarSyncFailed {
    /// The error's kind (`unauthorized`, `unavailable`, …).
    pub error_kind: String,
    pub message: String,
}

/// `data` of `instance.test_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceTestFailed {
    pub summary: String,
    /// Names of the failed steps.
    #[serde(default)]
    pub failed_steps: Vec<String>,
}

/// `data` of `instance.degraded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceDegraded {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_with_type_as_its_json_name_and_data_defaulted() {
        let e: Event = serde_json::from_str(
            r#"{"id":"evt-1","type":"esign.completed","instance":"u","time":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, "esign.completed");
        assert!(e.data.is_null());
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["type"], "esign.completed");
        let emit: EmitEvent = serde_json::from_str(r#"{"type":"x"}"#).unwrap();
        assert_eq!(emit.key, None);
    }

    #[test]
    fn event_type_names_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for t in EVENT_TYPES {
            assert!(seen.insert(*t), "{t} twice");
            assert!(t.contains('.'), "{t} has no namespace");
        }
    }
}
