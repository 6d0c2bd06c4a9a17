//! A shared library that is not a Passerelle plugin: the loader must refuse it.

/// Some exported function, so the library is not empty.
#[no_mangle]
pub extern "C" fn fixture_add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}
