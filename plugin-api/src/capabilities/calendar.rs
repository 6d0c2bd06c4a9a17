//! `calendar.*` capability types (being written).
