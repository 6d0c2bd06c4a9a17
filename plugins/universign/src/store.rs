//! The instance's state: one record per transaction, and the signed documents beside it.
//!
//! Plugins have no file system, so the signed PDFs live in the host's state (in the data
//! directory): `doc/<id>/<n>` holds one document's base64 content with its size and SHA-256,
//! and `tx/<id>` holds the transaction without any content, so that the polling task lists
//! every transaction without loading megabytes of PDF. Documents are written before the
//! record that points at them: a crash in between only means they are fetched again, never
//! that a record points at nothing. Reading a document checks its checksum.

use base64::Engine as _;
use passerelle_plugin_api::prelude::*;
use sha2::{Digest, Sha256};

/// Prefix of the transaction records.
pub const TX_PREFIX: &str = "tx/";

/// What the plugin keeps about one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What `esign.status` answers.
    pub transaction: SignatureTransaction,
    /// The signed documents stored under `doc/<id>/<n>`, without content.
    #[serde(default)]
    pub signed: Vec<SignatureDocument>,
    /// When the signed documents were fetched, ms since the Unix epoch.
    #[serde(default)]
    pub fetched_at_ms: Option<u64>,
    /// Consecutive failed refreshes; reset by a success.
    #[serde(default)]
    pub failures: u32,
}

impl Record {
    /// Whether the polling task still has something to do for this transaction.
    pub fn is_pending(&self) -> bool {
        match self.transaction.status {
            SignatureStatus::Ready => true,
            SignatureStatus::Completed => !self.transaction.documents_stored,
            _ => false,
        }
    }
}

/// One stored signed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub name: String,
    pub content_base64: String,
    pub size: u64,
    pub sha256: String,
}

pub fn tx_key(id: &str) -> String {
    format!("{TX_PREFIX}{id}")
}

fn doc_key(id: &str, index: usize) -> String {
    format!("doc/{id}/{index:03}")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a transaction id from the caller before it becomes part of a state key.
pub fn check_id(id: &str) -> Result<&str, PluginError> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(id)
    } else {
        Err(PluginError::invalid_input(format!(
            "{id:?} is not a Universign transaction id (expected letters, digits and '-', e.g. \
             613b6a85-cf56-4705-ba20-93c9d24e813e)"
        ))
        .with_field("id"))
    }
}

pub fn load(host: &Host<'_>, id: &str) -> Result<Option<Record>, PluginError> {
    host.state_get(&tx_key(id))
}

pub fn save(host: &Host<'_>, record: &Record) -> Result<(), PluginError> {
    host.state_put(&tx_key(&record.transaction.id), record)
}

/// Every stored transaction. A record that cannot be read is logged and left out, so that
/// one damaged record never stops the others.
pub fn list(host: &Host<'_>) -> Result<Vec<Record>, PluginError> {
    let rows: Vec<(String, serde_json::Value)> = host.state_list(TX_PREFIX)?;
    let mut records = Vec::with_capacity(rows.len());
    for (key, value) in rows {
        match serde_json::from_value::<Record>(value) {
            Ok(r) => records.push(r),
            Err(e) => host.log(
                LogLevel::Error,
                format!("state record {key} cannot be read and is skipped: {e}"),
            ),
        }
    }
    Ok(records)
}

/// The first stored transaction with this custom id that is still useful (ready or
/// completed), if any.
pub fn find_by_custom_id(host: &Host<'_>, custom_id: &str) -> Result<Option<Record>, PluginError> {
    Ok(list(host)?.into_iter().find(|r| {
        r.transaction.custom_id.as_deref() == Some(custom_id)
            && matches!(
                r.transaction.status,
                SignatureStatus::Ready | SignatureStatus::Completed
            )
    }))
}

/// Stores the signed documents, then marks the record as holding them (and saves it).
pub fn store_documents(
    host: &Host<'_>,
    record: &mut Record,
    documents: &[(String, Vec<u8>)],
    now_ms: u64,
) -> Result<(), PluginError> {
    let id = record.transaction.id.clone();
    let mut signed = Vec::with_capacity(documents.len());
    for (index, (name, bytes)) in documents.iter().enumerate() {
        let doc = StoredDocument {
            name: name.clone(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        };
        host.state_put(&doc_key(&id, index), &doc)?;
        signed.push(SignatureDocument {
            name: doc.name,
            size: doc.size,
            sha256: doc.sha256,
        });
    }
    record.signed = signed;
    record.fetched_at_ms = Some(now_ms);
    record.transaction.documents_stored = true;
    save(host, record)
}

/// Reads the stored signed documents back, each checked against its SHA-256.
pub fn load_documents(
    host: &Host<'_>,
    record: &Record,
) -> Result<Vec<SignedDocument>, PluginError> {
    let id = &record.transaction.id;
    record
        .signed
        .iter()
        .enumerate()
        .map(|(index, summary)| {
            let key = doc_key(id, index);
            let doc: StoredDocument = host.state_get(&key)?.ok_or_else(|| {
                PluginError::internal(format!(
                    "signed document {:?} of transaction {id} is missing from the state ({key})",
                    summary.name
                ))
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(doc.content_base64.as_bytes())
                .map_err(|e| damaged(id, &doc.name, &format!("not base64: {e}")))?;
            let actual = sha256_hex(&bytes);
            if actual != summary.sha256 || doc.sha256 != summary.sha256 {
                return Err(damaged(
                    id,
                    &doc.name,
                    &format!("SHA-256 {actual}, expected {}", summary.sha256),
                ));
            }
            Ok(SignedDocument {
                name: doc.name,
                content_base64: doc.content_base64,
                size: bytes.len() as u64,
                sha256: actual,
            })
        })
        .collect()
}

fn damaged(id: &str, name: &str, why: &str) -> PluginError {
    PluginError::internal(format!(
        "stored signed document {name:?} of transaction {id} is damaged ({why})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_are_checked_before_becoming_keys() {
        assert_eq!(
            check_id(" 613b6a85-cf56-4705-ba20-93c9d24e813e ").unwrap(),
            "613b6a85-cf56-4705-ba20-93c9d24e813e"
        );
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(129)] {
            let e = check_id(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput);
            assert_eq!(e.field.as_deref(), Some("id"));
        }
    }
}
