//! `einvoice.*` capability types (being written).
