//! Who acts from the command line, for the audit history: the operating-system account that
//! runs the process, read from the kernel's user id (not `$USER`, which is unset under cron
//! or sudo and which anyone can set), as `cli:<login>`.

/// `cli:<login>` of the process's real user, or `cli:uid-<n>` when the account has no name.
pub fn cli_actor() -> String {
    format!("cli:{}", os_user())
}

#[cfg(unix)]
fn os_user() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes only into the buffers it is given and
    // `result` is either null or points at `pwd`, whose strings live in `buf`.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr(pwd.pw_name).to_str() {
                if !name.is_empty() {
                    return name.to_owned();
                }
            }
        }
        format!("uid-{uid}")
    }
}

#[cfg(not(unix))]
fn os_user() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_actor_comes_from_the_account_not_the_environment() {
        let before = super::cli_actor();
        assert!(before.starts_with("cli:") && before.len() > 4, "{before}");
        assert_ne!(before, "cli:unknown");
    }
}
