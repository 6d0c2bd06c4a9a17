//! Encryption at rest of secret configuration values.
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a 256-bit key that lives outside the
//! configuration files: in `PASSERELLE_SECRET_KEY` (base64) or in a key file created on first
//! use with mode 0600. Each value is bound to its instance and field (associated data), so a
//! sealed value copied to another field does not decrypt. Decrypted values are registered with
//! the redactor at once.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Environment variable holding the key (base64 of 32 bytes); wins over the key file.
pub const KEY_ENV: &str = "PASSERELLE_SECRET_KEY";

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{KEY_ENV} is set but is not the base64 of 32 bytes; generate one with `openssl rand -base64 32` or unset it to use the key file")]
    BadEnvKey,
    #[error("the secret key file {path} is unreadable or not 32 bytes of base64 ({reason}); restore it from your backup — without it, saved secrets cannot be decrypted")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("cannot create the secret key file {path}: {source}")]
    CreateKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the saved value of secret field `{field}` cannot be decrypted with the current key (was the key file replaced?); set the field again")]
    Decrypt { field: String },
}

/// The key that seals secret values.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl SecretKey {
    /// The key from the environment, else from `key_file`, created (0600) when missing.
    pub fn load_or_create(key_file: &Path) -> Result<Self, SecretError> {
        if let Ok(value) = std::env::var(KEY_ENV) {
            let bytes = b64()
                .decode(value.trim())
                .map_err(|_| SecretError::BadEnvKey)?;
            return Self::from_bytes(&bytes).ok_or(SecretError::BadEnvKey);
        }
        match std::fs::read_to_string(key_file) {
            Ok(text) => {
                let bytes = b64()
                    .decode(text.trim())
                    .map_err(|e| SecretError::BadKeyFile {
                        path: key_file.to_owned(),
                        reason: e.to_string(),
                    })?;
                Self::from_bytes(&bytes).ok_or_else(|| SecretError::BadKeyFile {
                    path: key_file.to_owned(),
                    reason: format!("{} bytes instead of 32", bytes.len()),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(key_file),
            Err(e) => Err(SecretError::BadKeyFile {
                path: key_file.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    fn create(key_file: &Path) -> Result<Self, SecretError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let err = |source| SecretError::CreateKeyFile {
            path: key_file.to_owned(),
            source,
        };
        if let Some(dir) = key_file.parent() {
            crate::datadir::create_private_dir_all(dir).map_err(err)?;
        }
        // Written whole to a private temporary file, then published with a hard link, which
        // fails if the key exists: processes starting together on a new data directory never
        // read a half-written key, and the one that lost the race uses the winner's key.
        let tmp = key_file.with_extension(format!("tmp.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&tmp).and_then(|mut file| {
            file.write_all(b64().encode(bytes).as_bytes())
                .and_then(|()| file.sync_all())
        });
        let published = written.and_then(|()| std::fs::hard_link(&tmp, key_file));
        let _ = std::fs::remove_file(&tmp);
        match published {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::load_or_create(key_file);
            }
            Err(e) => return Err(err(e)),
        }
        tracing::info!(path = %key_file.display(), "created the secret key file; back it up with the data directory");
        Self::from_bytes(&bytes).ok_or(SecretError::BadEnvKey)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 32).then(|| SecretKey {
            cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(bytes)),
        })
    }

    fn aad(instance: &str, field: &str) -> Vec<u8> {
        format!("passerelle/v1/{instance}/{field}").into_bytes()
    }

    /// Seals `value` for `instance`/`field`; the result is safe to store in a text file.
    pub fn seal(&self, instance: &str, field: &str, value: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(instance, field);
        // Encryption with a fresh nonce cannot fail for inputs below 256 GiB.
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", b64().encode(out))
    }

    /// Opens a value sealed by [`SecretKey::seal`] and registers it with the redactor.
    pub fn open(&self, instance: &str, field: &str, sealed: &str) -> Result<String, SecretError> {
        let err = || SecretError::Decrypt {
            field: field.to_owned(),
        };
        let raw = sealed.strip_prefix(PREFIX).ok_or_else(err)?;
        let bytes = b64().decode(raw).map_err(|_| err())?;
        if bytes.len() < NONCE_LEN {
            return Err(err());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(instance, field);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| err())?;
        let value = String::from_utf8(plain).map_err(|_| err())?;
        crate::redact::register(&value);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_instance_and_field() {
        let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal("a", "token", "canary-value");
        assert!(!sealed.contains("canary"));
        assert_eq!(key.open("a", "token", &sealed).unwrap(), "canary-value");
        assert!(key.open("a", "password", &sealed).is_err());
        assert!(key.open("b", "token", &sealed).is_err());
        let other = SecretKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("a", "token", &sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.key");
        let k1 = SecretKey::load_or_create(&path).unwrap();
        let sealed = k1.seal("i", "f", "value-1");
        let k2 = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(k2.open("i", "f", &sealed).unwrap(), "value-1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
