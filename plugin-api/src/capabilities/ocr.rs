//! `ocr.*` capability types (being written).
