//! The administrator's extra certificate authorities.
//!
//! Some providers' certificates chain to authorities missing from default trust stores (INSEE
//! once used Certigna, which administrators added by hand to a JRE keystore and then
//! restarted the server). Here `passerelle trust add <file>` stores the authority in the data
//! directory (`trust/<sha256>.der`) and the host's HTTP client trusts the system roots plus
//! these, reloading when the folder changes. There is deliberately no way to disable
//! certificate checks.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no certificate: expected a DER file or PEM blocks `-----BEGIN CERTIFICATE-----`; export the authority's certificate (not a private key) and try again")]
    NoCertificate { path: PathBuf },
    #[error("{path}: certificate {index} cannot be read ({reason})")]
    Unreadable {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error(
        "no trusted certificate has a fingerprint starting with `{0}`; see `passerelle trust list`"
    )]
    NotFound(String),
    #[error("the fingerprint prefix `{0}` matches several certificates; give more characters")]
    Ambiguous(String),
}

/// What an administrator needs to recognise a certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    pub is_ca: bool,
}

impl std::fmt::Display for CertInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subject:  {}\nissuer:   {}\nvalid:    {} to {}\nsha256:   {}{}",
            self.subject,
            self.issuer,
            self.not_before,
            self.not_after,
            self.sha256,
            if self.is_ca {
                ""
            } else {
                "\nnote:     not a CA certificate (it can only vouch for itself)"
            }
        )
    }
}

/// Reads one certificate's details.
pub fn describe(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        sha256: hex(&Sha256::digest(der)),
        is_ca: cert.is_ca(),
    })
}

/// The issuer name of a certificate, for error messages.
pub fn issuer_of(der: &[u8]) -> Option<String> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c.issuer().to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trust folder of a data directory.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    pub fn new(data_dir: &Path) -> Self {
        TrustStore {
            dir: data_dir.join("trust"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds every certificate of a DER or PEM file (a bundle too).
    pub fn add(&self, file: &Path) -> Result<Vec<CertInfo>, TrustError> {
        let bytes = std::fs::read(file).map_err(|source| TrustError::Io {
            path: file.to_owned(),
            source,
        })?;
        let ders: Vec<Vec<u8>> =
            if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                CertificateDer::pem_slice_iter(&bytes)
                    .filter_map(Result::ok)
                    .map(|c| c.as_ref().to_vec())
                    .collect()
            } else if describe(&bytes).is_ok() {
                vec![bytes]
            } else {
                Vec::new()
            };
        if ders.is_empty() {
            return Err(TrustError::NoCertificate {
                path: file.to_owned(),
            });
        }
        crate::datadir::create_private_dir_all(&self.dir).map_err(|source| TrustError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut added = Vec::new();
        for (index, der) in ders.iter().enumerate() {
            let info = describe(der).map_err(|reason| TrustError::Unreadable {
                path: file.to_owned(),
                index: index + 1,
                reason,
            })?;
            let path = self.dir.join(format!("{}.der", info.sha256));
            crate::store::write_atomic(&path, der).map_err(|e| TrustError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            added.push(info);
        }
        Ok(added)
    }

    /// Certificates in the store, by subject.
    pub fn list(&self) -> Result<Vec<CertInfo>, TrustError> {
        let mut out: Vec<CertInfo> = self
            .ders()?
            .iter()
            .filter_map(|der| describe(der).ok())
            .collect();
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(out)
    }

    /// Removes the certificate whose fingerprint starts with `prefix` (at least 8 hex digits).
    pub fn remove(&self, prefix: &str) -> Result<CertInfo, TrustError> {
        let prefix = prefix.to_lowercase().replace(':', "");
        let matches: Vec<CertInfo> = self
            .list()?
            .into_iter()
            .filter(|c| prefix.len() >= 8 && c.sha256.starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] => {
                let path = self.dir.join(format!("{}.der", one.sha256));
                std::fs::remove_file(&path).map_err(|source| TrustError::Io { path, source })?;
                Ok(one.clone())
            }
            [] => Err(TrustError::NotFound(prefix)),
            _ => Err(TrustError::Ambiguous(prefix)),
        }
    }

    /// The raw certificates, for the HTTP client.
    pub fn ders(&self) -> Result<Vec<Vec<u8>>, TrustError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TrustError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("der") {
                if let Ok(bytes) = std::fs::read(&path) {
                    out.push(bytes);
                }
            }
        }
        Ok(out)
    }

    /// A cheap fingerprint of the folder's content (names and sizes), to notice changes.
    pub fn stamp(&self) -> String {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.join(",")
    }
}
