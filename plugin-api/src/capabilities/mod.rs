//! Provider-neutral capabilities. The ERP calls an operation by name (`company.lookup`); any
//! plugin that lists it in its manifest answers with these types, so swapping providers
//! changes nothing for the caller.

pub mod calendar;
pub mod company;
pub mod directory;
pub mod einvoice;
pub mod esign;
pub mod inbox;
pub mod lifecycle;
pub mod ocr;

pub use calendar::*;
pub use company::{
    Company, CompanyLookup, CompanyQuery, CompanySearch, CompanySearchPage, CompanySearchQuery,
};
pub use directory::*;
pub use einvoice::*;
pub use esign::*;
pub use inbox::*;
pub use lifecycle::*;
pub use ocr::*;
