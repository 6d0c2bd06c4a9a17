//! An emulator of Universign's signer API (XML-RPC over HTTP with Basic authentication), for
//! end-to-end tests of the `universign` plugin.
//!
//! It is an implementation of the public contract written independently from the plugin:
//! requests are parsed into an element tree with quick-xml and read by member name, answers
//! are written as Universign writes them (same member names and order as the recorded
//! samples in `fixtures/universign/`, `<i4>` integers, explicit `<string>`s).
//!
//! What it reproduces: HTTP Basic authentication (no credentials: HTTP 401; wrong ones:
//! fault 73010, or HTTP 401 with [`BadCredentials::Http401`]); method dispatch for
//! `requester.requestTransaction`, `requester.getTransactionInfo`, `requester.getDocuments`
//! and `requester.cancelTransaction`; the fault codes 73002 (not a PDF), 73010, 73020
//! (malformed request: wrong parameter count or types, missing members, bad e-mail or
//! phone), 73025 (unknown transaction), 73027 (action not allowed in the current state) and
//! 73040 (injected internal error); transactions in memory whose signers sign in turn.
//!
//! What the test controls: signers signing, opening the page or refusing, transactions
//! expiring, being canceled or failing ([`UniversignEmulator::sign`] and friends, or the
//! same over HTTP under `/_control/`), faults injected per transaction, an outage (HTTP 503)
//! and a real shutdown (connection refused) followed by a restart on the same port with the
//! same transactions. Signed documents are the submitted PDFs with a stamp appended (a PDF
//! comment naming the signers), so a test can tell them from the originals.
//!
//! Request options, from Universign's signature guide 8.8 (published with the
//! `CapSens/Universign` client, `spec/fixtures/universign-guide-8.8.pdf`) and that client:
//! `certificateType` (simple, advanced, certified; the last two only if the account offers
//! them, [`UniversignOptions::certified_allowed`]), each signer's `identificationType` (none,
//! email, sms; sms needs `phoneNum` and an account that allows it) and its
//! `successURL`/`cancelURL`/`failURL`, and each document's `signatureFields`: `page`, `x`,
//! `y` and `signerIndex` are mandatory, the page must exist (from 1, -1 for the last), the
//! signer index must name a signer, a signer with several fields on one document needs a
//! `label`; a `name` that the PDF has wins over the coordinates, an unknown one falls back to
//! them, as the guide says. Every refusal is fault 73020 with a message naming the member.
//! Placements are kept and shown in [`TransactionView::placements`].
//!
//! Emulator choices where the public contract is silent: `getDocuments` on a transaction that
//! is not completed answers 73027; an unknown method answers the XML-RPC interoperability
//! fault -32601; `cancelTransaction` (`void` in the guide) answers `true`; a certificate level
//! or SMS identification the account does not offer is fault 73020, the guide's code for
//! incompatible elements.

mod control;
mod http;
mod methods;
mod state;
mod xmlrpc;
use state::*;

use control::*;
use http::*;
use methods::*;
use xmlrpc::*;

use crate::kit::serve::{self as server, RunningServer};
use crate::kit::{credentials, dates, lock};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Path of the XML-RPC endpoint, as on `https://ws.universign.eu/sign/rpc/`.
pub const RPC_PATH: &str = "/sign/rpc/";

/// Universign's fault codes.
pub mod faults {
    pub const PDF_SIGNING: i32 = 73002;
    pub const INVALID_LOGIN: i32 = 73010;
    pub const MALFORMED_REQUEST: i32 = 73020;
    pub const UNKNOWN_TRANSACTION: i32 = 73025;
    pub const NOT_ALLOWED_IN_STATE: i32 = 73027;
    pub const INTERNAL: i32 = 73040;
    /// XML-RPC interoperability fault: the method does not exist.
    pub const NO_SUCH_METHOD: i32 = -32601;
}

/// How wrong credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadCredentials {
    /// HTTP 200 with fault 73010, as the XML-RPC service does.
    #[default]
    Fault,
    /// HTTP 401, as an authenticating gateway in front of it does.
    Http401,
}

/// The emulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniversignOptions {
    pub user: String,
    pub password: String,
    pub bad_credentials: BadCredentials,
    /// Whether the account offers `certified` and `advanced` signatures.
    pub certified_allowed: bool,
    /// Whether the account may identify signers by SMS.
    pub sms_allowed: bool,
}

impl Default for UniversignOptions {
    fn default() -> Self {
        UniversignOptions {
            user: "erp@example.com".to_owned(),
            password: "test-password".to_owned(),
            bad_credentials: BadCredentials::Fault,
            certified_allowed: false,
            sms_allowed: true,
        }
    }
}

/// A transaction's status, as Universign spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Ready,
    Expired,
    Completed,
    Canceled,
    Failed,
}

impl TxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Ready => "ready",
            TxStatus::Expired => "expired",
            TxStatus::Completed => "completed",
            TxStatus::Canceled => "canceled",
            TxStatus::Failed => "failed",
        }
    }
}

/// What the test can do to a signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerAction {
    /// Opens the signing page (`accessed`).
    Access,
    /// Signs; the next signer's turn comes, or the transaction is completed.
    Sign,
    /// Refuses to sign: the signer and the transaction are canceled.
    Refuse,
}

/// A transaction as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionView {
    pub id: String,
    pub status: TxStatus,
    pub custom_id: Option<String>,
    /// `(first name, last name, e-mail, status)` of each signer.
    pub signers: Vec<(String, String, String, String)>,
    /// File names of the documents.
    pub documents: Vec<String>,
    /// Where each signature goes, per document, in request order.
    pub placements: Vec<Vec<Placement>>,
    /// `certificateType` as requested (`simple` when absent).
    pub certificate_type: String,
    /// Each signer's `identificationType` (`none` when absent) and `successURL`.
    pub identification: Vec<(String, Option<String>)>,
}

/// Where one signature goes on a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub signer_index: i64,
    pub page: i64,
    pub x: i64,
    pub y: i64,
    /// The PDF field used, when the requested name exists in the document.
    pub field: Option<String>,
    pub label: Option<String>,
}

/// A running Universign emulator. Stops when dropped.
#[derive(Debug)]
pub struct UniversignEmulator {
    server: Mutex<Option<RunningServer>>,
    port: u16,
    state: Arc<Shared>,
}

/// Starts an emulator with these options on a port the OS picks (for the emulators program).
pub fn start(opts: UniversignOptions) -> std::io::Result<UniversignEmulator> {
    UniversignEmulator::start(opts)
}

impl UniversignEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: UniversignOptions) -> std::io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: UniversignOptions, port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        let port = server.addr().port();
        let _ = state.root.set(server.url());
        Ok(UniversignEmulator {
            server: Mutex::new(Some(server)),
            port,
            state,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The XML-RPC endpoint, the plugin's `url`.
    pub fn url(&self) -> String {
        format!("{}{RPC_PATH}", self.root_url())
    }

    pub fn options(&self) -> &UniversignOptions {
        &self.state.opts
    }

    /// Stops listening: connections are refused until [`UniversignEmulator::restart`].
    /// Transactions are kept.
    pub fn stop(&self) {
        drop(lock(&self.server).take());
    }

    /// Listens again on the same port, with the same transactions.
    pub fn restart(&self) -> std::io::Result<()> {
        let mut server = lock(&self.server);
        if server.is_none() {
            *server = Some(server::spawn_on(app(self.state.clone()), self.port)?);
        }
        Ok(())
    }

    /// While true, the endpoint answers HTTP 503 with an HTML page (the control routes keep
    /// working).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Makes every call about this transaction answer `code` (e.g. 73040), or stops doing so.
    pub fn set_fault(&self, transaction: &str, code: Option<i32>) {
        let mut faults = lock(&self.state.injected);
        match code {
            Some(code) => faults.insert(transaction.to_owned(), code),
            None => faults.remove(transaction),
        };
    }

    /// Acts for signer `index` (0-based) of a transaction.
    pub fn signer(
        &self,
        transaction: &str,
        index: usize,
        action: SignerAction,
    ) -> Result<(), String> {
        self.state.signer_action(transaction, index, action)
    }

    /// Signer `index` signs.
    pub fn sign(&self, transaction: &str, index: usize) -> Result<(), String> {
        self.signer(transaction, index, SignerAction::Sign)
    }

    /// Signer `index` refuses: the transaction is canceled.
    pub fn refuse(&self, transaction: &str, index: usize) -> Result<(), String> {
        self.signer(transaction, index, SignerAction::Refuse)
    }

    /// Every signer still to sign signs, in turn.
    pub fn sign_all(&self, transaction: &str) -> Result<(), String> {
        let count = self
            .transaction(transaction)
            .ok_or_else(|| format!("no transaction {transaction}"))?
            .signers
            .len();
        (0..count).try_for_each(|i| match self.sign(transaction, i) {
            Err(e) if e.contains("already signed") => Ok(()),
            other => other,
        })
    }

    /// The transaction runs out of time.
    pub fn expire(&self, transaction: &str) -> Result<(), String> {
        self.state.finish(transaction, TxStatus::Expired)
    }

    /// The requester cancels the transaction.
    pub fn cancel(&self, transaction: &str) -> Result<(), String> {
        self.state.finish(transaction, TxStatus::Canceled)
    }

    /// Universign fails the transaction.
    pub fn fail(&self, transaction: &str) -> Result<(), String> {
        self.state.finish(transaction, TxStatus::Failed)
    }

    pub fn transaction(&self, id: &str) -> Option<TransactionView> {
        lock(&self.state.transactions)
            .get(id)
            .map(Transaction::view)
    }

    /// Ids of every transaction, in creation order.
    pub fn transaction_ids(&self) -> Vec<String> {
        let txs = lock(&self.state.transactions);
        let mut all: Vec<_> = txs.values().collect();
        all.sort_by_key(|t| t.serial);
        all.into_iter().map(|t| t.id.clone()).collect()
    }

    /// Calls of `method` received (authenticated or not), about `transaction` when given.
    pub fn calls(&self, method: &str, transaction: Option<&str>) -> usize {
        lock(&self.state.calls)
            .iter()
            .filter(|(m, t)| m == method && (transaction.is_none() || t.as_deref() == transaction))
            .count()
    }

    /// Every HTTP request that reached the endpoint (503s and 401s included).
    pub fn request_count(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst) as usize
    }
}

#[cfg(test)]
mod tests;
