//! A shared library that is not a Passerelle plugin: the loader must refuse it, and must do
//! so without running any of its code. Its constructor (run by the dynamic linker when the
//! library is mapped) creates the file named by `FIXTURE_CTOR_MARKER`, so a test can tell
//! whether the host ever mapped it.

/// Some exported function, so the library is not empty.
#[no_mangle]
pub extern "C" fn fixture_add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[cfg(target_os = "linux")]
extern "C" fn constructor() {
    if let Some(path) = std::env::var_os("FIXTURE_CTOR_MARKER") {
        let _ = std::fs::write(path, b"the library's constructor ran");
    }
}
