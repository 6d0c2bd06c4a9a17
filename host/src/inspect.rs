//! A plugin file read as data before anything maps it.
//!
//! `dlopen` runs a library's constructors before the loader can ask it anything, and maps its
//! segments as the headers say: a library that is not a plugin has already run its code by
//! the time it is "refused", and a truncated one kills the host with SIGBUS when a segment
//! beyond the end of the file is touched. So every candidate is parsed first with the
//! `object` crate, from the bytes that were read (and that the signature check covers):
//!
//! - it must be a shared library of this platform's format and architecture;
//! - every segment and section that occupies file bytes must lie inside the file;
//! - it must export abi_stable's root-module loader symbol (what `export_plugin!` makes).
//!
//! Only then is it checked against the trust policy and mapped, from a read-only copy.

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

/// What the inspection found wrong; the text is the refusal reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

fn expected_format() -> object::BinaryFormat {
    if cfg!(target_os = "windows") {
        object::BinaryFormat::Pe
    } else if cfg!(target_vendor = "apple") {
        object::BinaryFormat::MachO
    } else {
        object::BinaryFormat::Elf
    }
}

fn expected_architecture() -> Option<object::Architecture> {
    match std::env::consts::ARCH {
        "x86_64" => Some(object::Architecture::X86_64),
        "aarch64" => Some(object::Architecture::Aarch64),
        "x86" => Some(object::Architecture::I386),
        "arm" => Some(object::Architecture::Arm),
        "riscv64" => Some(object::Architecture::Riscv64),
        _ => None,
    }
}

fn within(len: u64, (offset, size): (u64, u64)) -> bool {
    offset.checked_add(size).is_some_and(|end| end <= len)
}

/// Checks that `bytes` are a plugin library for this host that can be mapped safely.
pub fn inspect(bytes: &[u8]) -> Result<(), Rejected> {
    let file = object::File::parse(bytes).map_err(|e| {
        Rejected(format!(
            "it is not a valid {} library ({e}): it may be truncated or corrupt — copy it again from its publisher",
            std::env::consts::DLL_EXTENSION
        ))
    })?;
    if file.format() != expected_format() {
        return Err(Rejected(format!(
            "it is a {:?} file, but this host loads {:?} libraries; use the build of the plugin for this platform",
            file.format(),
            expected_format()
        )));
    }
    if let Some(arch) = expected_architecture() {
        if file.architecture() != arch {
            return Err(Rejected(format!(
                "it is built for {:?}, but this host runs on {:?}; use the plugin's {} build",
                file.architecture(),
                arch,
                std::env::consts::ARCH
            )));
        }
    }
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(Rejected(format!(
            "it is a {:?} object, not a shared library; plugins are built as `cdylib`",
            file.kind()
        )));
    }
    let len = bytes.len() as u64;
    for segment in file.segments() {
        if !within(len, segment.file_range()) {
            let (offset, size) = segment.file_range();
            return Err(Rejected(format!(
                "it is truncated or corrupt: a segment spans bytes {offset}..{} but the file has {len}; copy it again from its publisher",
                offset.saturating_add(size)
            )));
        }
    }
    for section in file.sections() {
        if let Some(range) = section.file_range() {
            if !within(len, range) {
                return Err(Rejected(format!(
                    "it is truncated or corrupt: section {} lies beyond the end of the file ({len} bytes); copy it again from its publisher",
                    section.name().unwrap_or("?")
                )));
            }
        }
    }
    let root = abi_stable::library::ROOT_MODULE_LOADER_NAME;
    let exported = file.exports().ok().is_some_and(|exports| {
        exports
            .iter()
            .any(|e| trim_prefix(e.name()) == root.as_bytes())
    }) || file.dynamic_symbols().any(|s| {
        s.is_definition()
            && s.name_bytes()
                .is_ok_and(|n| trim_prefix(n) == root.as_bytes())
    });
    if !exported {
        return Err(Rejected(
            "it is a library but not a Passerelle plugin (it does not export the root module symbol); plugins are built with `export_plugin!` from passerelle-plugin-api — remove it from the plugin directory".to_owned(),
        ));
    }
    Ok(())
}

/// Mach-O prefixes C symbols with `_`.
fn trim_prefix(name: &[u8]) -> &[u8] {
    if cfg!(target_vendor = "apple") {
        name.strip_prefix(b"_").unwrap_or(name)
    } else {
        name
    }
}

/// Refuses a file or directory that any user may write: whoever can write it can make the
/// host run their code.
#[cfg(unix)]
pub fn check_not_world_writable(path: &std::path::Path, what: &str) -> Result<(), Rejected> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o002 != 0 => Err(Rejected(format!(
            "its {what} {} is writable by every user, so anyone could replace the code the host runs; remove the write permission for others (chmod o-w {})",
            path.display(),
            path.display()
        ))),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
pub fn check_not_world_writable(_path: &std::path::Path, _what: &str) -> Result<(), Rejected> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_library() -> Option<Vec<u8>> {
        // The test binary itself is an executable, not a library: used for the kind check.
        std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::read(p).ok())
    }

    #[test]
    fn garbage_and_executables_are_refused_with_a_reason() {
        let err = inspect(b"garbage that would crash a careless loader").unwrap_err();
        assert!(err.0.contains("not a valid"), "{err}");
        if let Some(exe) = own_library() {
            let err = inspect(&exe).unwrap_err();
            assert!(
                err.0.contains("not a shared library") || err.0.contains("not a Passerelle plugin"),
                "{err}"
            );
            // Cut short: refused, never a crash.
            let err = inspect(&exe[..exe.len() / 3]).unwrap_err();
            assert!(
                err.0.contains("truncated") || err.0.contains("not a valid"),
                "{err}"
            );
        }
    }
}
