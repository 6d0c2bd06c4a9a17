//! The Sirene plugin end to end (filled in below).
