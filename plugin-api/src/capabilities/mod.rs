//! Provider-neutral capabilities. The ERP calls an operation by name (`company.lookup`); any
//! plugin that lists it in its manifest answers with these types, so swapping providers
//! changes nothing for the caller.

pub mod calendar;
pub mod company;
pub mod einvoice;
pub mod esign;
pub mod ocr;

#[allow(unused_imports)] // until the calendar plugin defines its types
pub use calendar::*;
pub use company::{Company, CompanyLookup, CompanyQuery};
#[allow(unused_imports)] // until the einvoice plugin defines its types
pub use einvoice::*;
#[allow(unused_imports)] // until the esign plugin defines its types
pub use esign::*;
#[allow(unused_imports)] // until the ocr plugin defines its types
pub use ocr::*;
