//! Provider-neutral capabilities. The ERP calls an operation by name (`company.lookup`); any
//! plugin that lists it in its manifest answers with these types, so swapping providers
//! changes nothing for the caller.

pub mod company;

pub use company::{Company, CompanyLookup, CompanyQuery};
