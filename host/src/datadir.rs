//! The data directory is private to the user running the host.
//!
//! It holds sealed secrets and their key, plugin state (signer e-mails, invoice numbers,
//! cached OAuth tokens), password and token hashes and the audit: nothing another local user
//! should read. So every folder the host creates there is 0700 and every file 0600, and at
//! start of every command the directory is walked once: group and other permissions found
//! on anything in it (left by older versions, by `cp`, by an editor) are removed, and each
//! such fix is logged so the administrator knows the files were readable before. A file the
//! host cannot fix (owned by someone else) is warned about, never skipped silently.
//!
//! Only bits are removed, never added: a read-only file (the plugin cache) stays read-only.

use std::path::Path;

/// How many entries the start-up walk looks at, at most: a data directory is small, and a
/// huge one (an administrator's backup folder inside it) must not slow every command down.
const WALK_LIMIT: usize = 10_000;

/// Creates `dir` and its missing parents with mode 0700 (existing ones are left as they are:
/// `--out .` must not change the mode of the current directory).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// What [`secure`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Secured {
    /// Files and folders whose group/other permissions were removed.
    pub tightened: Vec<String>,
    /// Files and folders that stay readable by others (the fix failed).
    pub left_open: Vec<String>,
}

/// Creates the data directory (0700) when missing and removes group and other permissions
/// from everything in it, logging each fix. Errors are logged, never fatal: a command must
/// still run on a read-only data directory.
pub fn secure(data_dir: &Path) -> Secured {
    let mut out = Secured::default();
    if let Err(e) = create_private_dir_all(data_dir) {
        tracing::warn!(path = %data_dir.display(), error = %e, "cannot create the data directory");
        return out;
    }
    #[cfg(unix)]
    {
        let mut budget = WALK_LIMIT;
        walk(data_dir, &mut budget, &mut out);
        if !out.tightened.is_empty() {
            tracing::warn!(
                data_dir = %data_dir.display(),
                count = out.tightened.len(),
                files = %out.tightened.join(", "),
                "files of the data directory were readable by other users; they are now private (0600 files, 0700 folders)"
            );
        }
        for path in &out.left_open {
            tracing::warn!(path, "this file of the data directory is readable by other users and cannot be made private; change its owner or mode (chmod go-rwx)");
        }
    }
    out
}

#[cfg(unix)]
fn walk(path: &Path, budget: &mut usize, out: &mut Secured) {
    use std::os::unix::fs::PermissionsExt;
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    // Symbolic links are not followed: a link to /etc must not be chmod-ed.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        let tight = mode & !0o077;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(tight)) {
            Ok(()) => out.tightened.push(path.display().to_string()),
            Err(_) => out.left_open.push(path.display().to_string()),
        }
    }
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                walk(&entry.path(), budget, out);
            }
        }
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Issue 19: `state.sqlite3` was created 0644 and folders 0755.
    #[test]
    fn a_new_data_directory_is_private_and_an_old_one_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        secure(&data);
        assert_eq!(mode(&data), 0o700);
        create_private_dir_all(&data.join("a/b")).unwrap();
        assert_eq!(mode(&data.join("a")), 0o700);
        assert_eq!(mode(&data.join("a/b")), 0o700);

        let old_dir = data.join("instances");
        std::fs::create_dir(&old_dir).unwrap();
        std::fs::set_permissions(&old_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old_file = old_dir.join("x.toml");
        std::fs::write(&old_file, "id = 'x'").unwrap();
        std::fs::set_permissions(&old_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let read_only = data.join("cache.so");
        std::fs::write(&read_only, "x").unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();

        let secured = secure(&data);
        assert_eq!(mode(&old_dir), 0o700);
        assert_eq!(mode(&old_file), 0o600);
        assert_eq!(mode(&read_only), 0o400, "bits are removed, never added");
        assert_eq!(mode(&outside), 0o644, "links are not followed");
        assert_eq!(secured.tightened.len(), 3, "{secured:?}");
        assert!(secured.left_open.is_empty());
        assert_eq!(
            secure(&data),
            Secured::default(),
            "a second start has nothing to fix"
        );
    }

    #[test]
    fn an_existing_parent_keeps_its_mode() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_all(&root.path().join("keys")).unwrap();
        assert_eq!(mode(root.path()), 0o755);
        assert_eq!(mode(&root.path().join("keys")), 0o700);
    }
}
