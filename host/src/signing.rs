//! Who built a plugin: ed25519 detached signatures and the host's trust policy.
//!
//! A native plugin runs with the host's rights, so in `strict` mode (the default of `serve`)
//! a library is mapped only if a trusted publisher signed it. The signature file sits beside
//! the library (`libfoo.so.sig`) and covers the file's SHA-256 *and* the plugin id and version
//! it claims to be, so a signed library cannot be renamed into another plugin, and a changed
//! byte breaks it. Verification reads the bytes once, checks them, and the loader maps exactly
//! those bytes (a content-addressed copy), so the file cannot change between check and load.

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const CONTEXT: &str = "passerelle-plugin-signature-v1";
const KEY_PREFIX: &str = "ed25519:";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a publisher key made by `passerelle plugin keygen`")]
    BadKey { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
}

/// A detached signature, stored as JSON in `<library>.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureFile {
    pub plugin_id: String,
    pub plugin_version: String,
    /// SHA-256 of the library file, hex.
    pub sha256: String,
    /// The signer's public key, `ed25519:<base64>`.
    pub public_key: String,
    /// Signature of `message()`, base64.
    pub signature: String,
}

/// What exactly is signed.
fn message(sha256: &str, id: &str, version: &str) -> Vec<u8> {
    format!("{CONTEXT}\n{sha256}\n{id}\n{version}\n").into_bytes()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `ed25519:<base64>` of a public key.
pub fn public_key_string(key: &VerifyingKey) -> String {
    format!("{KEY_PREFIX}{}", b64().encode(key.as_bytes()))
}

/// Parses `ed25519:<base64>`.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, SignError> {
    let raw = text.trim().strip_prefix(KEY_PREFIX).unwrap_or(text.trim());
    let bytes: [u8; 32] = b64()
        .decode(raw)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignError::Invalid(format!("{text:?} is not an ed25519 public key (expected `ed25519:` followed by 32 bytes of base64)")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| SignError::Invalid(e.to_string()))
}

/// Creates a publisher key pair: `<name>.key` (private, 0600) and `<name>.pub`.
pub fn keygen(dir: &Path, name: &str) -> Result<(PathBuf, String), SignError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SignError::Io { path, source }
    };
    crate::datadir::create_private_dir_all(dir).map_err(io(dir))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let private = dir.join(format!("{name}.key"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&private).map_err(io(&private))?;
    std::io::Write::write_all(&mut file, b64().encode(seed).as_bytes()).map_err(io(&private))?;
    let public = public_key_string(&key.verifying_key());
    let pub_path = dir.join(format!("{name}.pub"));
    std::fs::write(&pub_path, format!("{public}\n")).map_err(io(&pub_path))?;
    Ok((private, public))
}

fn read_key(path: &Path) -> Result<SigningKey, SignError> {
    let text = std::fs::read_to_string(path).map_err(|source| SignError::Io {
        path: path.to_owned(),
        source,
    })?;
    let seed: [u8; 32] = b64()
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignError::BadKey {
            path: path.to_owned(),
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signature file of a library.
pub fn signature_path(library: &Path) -> PathBuf {
    let mut name = library.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Signs `bytes` (the library's content) as plugin `id` at `version`; writes `<library>.sig`.
pub fn sign(
    library: &Path,
    bytes: &[u8],
    id: &str,
    version: &str,
    key_path: &Path,
) -> Result<SignatureFile, SignError> {
    let key = read_key(key_path)?;
    let sha256 = sha256_hex(bytes);
    let signature = key.sign(&message(&sha256, id, version));
    let file = SignatureFile {
        plugin_id: id.to_owned(),
        plugin_version: version.to_owned(),
        sha256,
        public_key: public_key_string(&key.verifying_key()),
        signature: b64().encode(signature.to_bytes()),
    };
    let path = signature_path(library);
    let text =
        serde_json::to_string_pretty(&file).map_err(|e| SignError::Invalid(e.to_string()))?;
    std::fs::write(&path, text).map_err(|source| SignError::Io { path, source })?;
    Ok(file)
}

/// The host's rule for unsigned or unknown plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyMode {
    /// Only plugins signed by a trusted key load.
    #[default]
    Strict,
    /// Unsigned plugins load too (development), loudly logged, if their id is allowed.
    AllowUnsigned,
}

/// The trust policy: mode, trusted publisher keys, ids allowed unsigned (`*` for all).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub mode: PolicyMode,
    pub trusted: Vec<VerifyingKey>,
    pub allow_unsigned: Vec<String>,
}

/// What the signature check found, before mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by a trusted key as this id and version.
    Signed {
        id: String,
        version: String,
        key: String,
    },
    /// Unsigned, allowed by the policy if the id (known after mapping) is allowed.
    Unsigned,
}

impl Policy {
    /// Checks `bytes` of `library` against its signature file and the policy. `Err` is the
    /// refusal reason.
    pub fn check(&self, library: &Path, bytes: &[u8]) -> Result<Verdict, String> {
        self.check_digest(library, &sha256_hex(bytes))
    }

    /// [`Policy::check`] for a library whose SHA-256 is already known (hashed by the caller,
    /// or remembered by [`crate::verified`]).
    pub fn check_digest(&self, library: &Path, sha256: &str) -> Result<Verdict, String> {
        let sig_path = signature_path(library);
        let text = match std::fs::read_to_string(&sig_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match self.mode {
                    PolicyMode::Strict => Err(format!(
                        "it is not signed and the plugin policy is strict; sign it with `passerelle plugin sign {} --key <publisher.key>` and trust that key, or use policy allow-unsigned for development",
                        library.display()
                    )),
                    PolicyMode::AllowUnsigned => Ok(Verdict::Unsigned),
                }
            }
            Err(e) => return Err(format!("its signature file {} is unreadable: {e}", sig_path.display())),
        };
        let sig: SignatureFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "its signature file {} is malformed ({e}); sign it again",
                sig_path.display()
            )
        })?;
        if sha256 != sig.sha256 {
            return Err(format!(
                "its content does not match its signature (SHA-256 {sha256}, signed {}): the file was changed after signing — reinstall it from its publisher",
                sig.sha256
            ));
        }
        let key = parse_public_key(&sig.public_key).map_err(|e| e.to_string())?;
        if !self.trusted.iter().any(|k| k == &key) {
            return Err(format!(
                "it is signed by {} which is not a trusted publisher key; add the key to `trusted_keys` in host.toml if you trust its publisher",
                sig.public_key
            ));
        }
        let signature_bytes: [u8; 64] = b64()
            .decode(&sig.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("its signature is not 64 bytes of base64; sign it again")?;
        key.verify(
            &message(sha256, &sig.plugin_id, &sig.plugin_version),
            &ed25519_dalek::Signature::from_bytes(&signature_bytes),
        )
        .map_err(|_| {
            "its signature is invalid (forged or corrupted); reinstall it from its publisher"
                .to_owned()
        })?;
        Ok(Verdict::Signed {
            id: sig.plugin_id,
            version: sig.plugin_version,
            key: sig.public_key,
        })
    }

    /// After mapping: the manifest must be what was signed, or an allowed unsigned id.
    pub fn check_identity(&self, verdict: &Verdict, id: &str, version: &str) -> Result<(), String> {
        match verdict {
            Verdict::Signed { id: sid, version: sver, .. } if sid == id && sver == version => Ok(()),
            Verdict::Signed { id: sid, version: sver, .. } => Err(format!(
                "it was signed as plugin `{sid}` {sver} but is `{id}` {version}; sign the right file"
            )),
            Verdict::Unsigned => {
                if self.allow_unsigned.iter().any(|a| a == "*" || a == id) {
                    tracing::warn!(plugin = id, "UNSIGNED plugin loaded (policy allow-unsigned); do not run this in production");
                    Ok(())
                } else {
                    Err(format!(
                        "it is not signed and `{id}` is not in the allow_unsigned list of host.toml"
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, Policy, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = keygen(dir.path(), "pub").unwrap();
        let lib = dir.path().join("libx.so");
        std::fs::write(&lib, b"library bytes").unwrap();
        let policy = Policy {
            mode: PolicyMode::Strict,
            trusted: vec![parse_public_key(&public).unwrap()],
            allow_unsigned: vec![],
        };
        (dir, lib, policy, key)
    }

    #[test]
    fn valid_tampered_wrong_key_unsigned() {
        let (dir, lib, policy, key) = setup();
        let bytes = std::fs::read(&lib).unwrap();
        assert!(matches!(policy.check(&lib, &bytes), Err(e) if e.contains("not signed")));
        sign(&lib, &bytes, "x", "1.0.0", &key).unwrap();
        let verdict = policy.check(&lib, &bytes).unwrap();
        assert!(policy.check_identity(&verdict, "x", "1.0.0").is_ok());
        assert!(policy.check_identity(&verdict, "y", "1.0.0").is_err());
        let mut tampered = bytes.clone();
        tampered[0] ^= 1;
        assert!(
            matches!(policy.check(&lib, &tampered), Err(e) if e.contains("changed after signing"))
        );
        let (other, _) = keygen(dir.path(), "other").unwrap();
        sign(&lib, &bytes, "x", "1.0.0", &other).unwrap();
        assert!(
            matches!(policy.check(&lib, &bytes), Err(e) if e.contains("not a trusted publisher"))
        );
        // A forged signature with the trusted key's name.
        let mut sig: SignatureFile =
            serde_json::from_str(&std::fs::read_to_string(signature_path(&lib)).unwrap()).unwrap();
        sig.public_key = public_key_string(&policy.trusted[0]);
        std::fs::write(signature_path(&lib), serde_json::to_string(&sig).unwrap()).unwrap();
        assert!(matches!(policy.check(&lib, &bytes), Err(e) if e.contains("invalid")));
    }
}
