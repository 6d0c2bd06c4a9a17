//! `esign.*` capability types (being written).
