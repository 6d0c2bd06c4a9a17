//! Secrets never travel on the command line.
//!
//! A program's arguments land in the shell history and are readable by every local user in
//! the process list (`ps`, `/proc/<pid>/cmdline`) while it runs. So a secret field's value
//! given as an argument is refused, with the standard-input form to use instead; a script
//! that truly cannot feed standard input passes `--insecure-argv`, and that use is logged
//! as a warning and written into the audit history with the change, so it shows up in a
//! review instead of passing silently.

use crate::instances::ConfigError;

/// What the audit history says of a change made with `--insecure-argv`.
pub const AUDIT_NOTE: &str = "secret given on the command line with --insecure-argv";

/// Refuses a secret given as an argument unless `insecure_argv`; when allowed, warns.
/// The refusal shows the command to use; it never repeats the value.
pub fn check_secret_argument(
    instance: &str,
    field: &str,
    insecure_argv: bool,
) -> Result<(), ConfigError> {
    if !insecure_argv {
        return Err(ConfigError::Refused(format!(
            "`{field}` is a secret: a value on the command line lands in the shell history and in the process list, so it is refused. \
             Give it on standard input instead: `passerelle config set {instance} {field} --stdin` and type it, then Ctrl-D; \
             or from a file or a variable: `passerelle config set {instance} {field} --stdin < file` / `printf '%s' \"$VALUE\" | passerelle config set {instance} {field} --stdin`. \
             A script that cannot do that may add --insecure-argv (logged and audited)"
        )));
    }
    tracing::warn!(
        instance,
        field,
        "INSECURE: the secret `{field}` was given on the command line (--insecure-argv); it may be in the shell history and was visible in the process list: rotate it if others can read them, and use --stdin"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_argument_is_refused_with_the_stdin_form_and_allowed_when_insecure() {
        let err = check_secret_argument("sirene", "api_key", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`api_key` is a secret")
                && err.contains("passerelle config set sirene api_key --stdin")
                && err.contains("--insecure-argv"),
            "{err}"
        );
        check_secret_argument("sirene", "api_key", true).unwrap();
    }
}
