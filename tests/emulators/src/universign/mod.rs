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

use crate::server::{self, RunningServer};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

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

// ---------------------------------------------------------------------------------------
// State

#[derive(Debug)]
struct Shared {
    opts: UniversignOptions,
    root: OnceLock<String>,
    transactions: Mutex<BTreeMap<String, Transaction>>,
    injected: Mutex<HashMap<String, i32>>,
    calls: Mutex<Vec<(String, Option<String>)>>,
    unavailable: AtomicBool,
    requests: AtomicU64,
    serial: AtomicU64,
}

#[derive(Debug, Clone)]
struct Transaction {
    serial: u64,
    id: String,
    custom_id: Option<String>,
    description: Option<String>,
    status: TxStatus,
    created: String,
    current_signer: usize,
    signers: Vec<Signer>,
    documents: Vec<Document>,
    certificate_type: String,
}

#[derive(Debug, Clone)]
struct Signer {
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    status: &'static str,
    action_date: Option<String>,
    identification: String,
    success_url: Option<String>,
}

#[derive(Debug, Clone)]
struct Document {
    name: String,
    content: Vec<u8>,
    placements: Vec<Placement>,
}

impl Transaction {
    fn view(&self) -> TransactionView {
        TransactionView {
            id: self.id.clone(),
            status: self.status,
            custom_id: self.custom_id.clone(),
            signers: self
                .signers
                .iter()
                .map(|s| {
                    (
                        s.first_name.clone(),
                        s.last_name.clone(),
                        s.email.clone(),
                        s.status.to_owned(),
                    )
                })
                .collect(),
            documents: self.documents.iter().map(|d| d.name.clone()).collect(),
            placements: self
                .documents
                .iter()
                .map(|d| d.placements.clone())
                .collect(),
            certificate_type: self.certificate_type.clone(),
            identification: self
                .signers
                .iter()
                .map(|s| (s.identification.clone(), s.success_url.clone()))
                .collect(),
        }
    }

    /// The submitted PDF with a stamp naming the signers, as the signed version.
    fn signed(&self, doc: &Document) -> Vec<u8> {
        let mut bytes = doc.content.clone();
        let names = self
            .signers
            .iter()
            .map(|s| format!("{} {}", s.first_name, s.last_name))
            .collect::<Vec<_>>()
            .join(", ");
        bytes.extend_from_slice(
            format!(
                "\n% Universign emulator: transaction {} signed by {names}\n%%EOF\n",
                self.id
            )
            .as_bytes(),
        );
        bytes
    }
}

impl Shared {
    fn new(opts: UniversignOptions) -> Self {
        Shared {
            opts,
            root: OnceLock::new(),
            transactions: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            serial: AtomicU64::new(0),
        }
    }

    /// A fresh UUID-shaped id, unique within this emulator.
    fn new_id(&self) -> String {
        let n = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (a, b) = (next(), next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a as u16) & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn signing_url(&self, signer_id: &str) -> String {
        format!(
            "{}/fr/signature/?id={signer_id}",
            self.root
                .get()
                .map(String::as_str)
                .unwrap_or("http://127.0.0.1")
        )
    }

    fn signer_action(&self, id: &str, index: usize, action: SignerAction) -> Result<(), String> {
        let mut txs = lock(&self.transactions);
        let tx = txs
            .get_mut(id)
            .ok_or_else(|| format!("no transaction {id}"))?;
        if tx.status != TxStatus::Ready {
            return Err(format!(
                "transaction {id} is {}, not ready",
                tx.status.as_str()
            ));
        }
        let count = tx.signers.len();
        let signer = tx
            .signers
            .get(index)
            .ok_or_else(|| format!("transaction {id} has {count} signer(s), no signer {index}"))?;
        if signer.status == "signed" {
            return Err(format!("signer {index} of {id} already signed"));
        }
        if index != tx.current_signer {
            return Err(format!(
                "it is not signer {index}'s turn in {id}: signer {} signs first",
                tx.current_signer
            ));
        }
        let now = now_xmlrpc();
        let signer = &mut tx.signers[index];
        signer.action_date = Some(now);
        match action {
            SignerAction::Access => signer.status = "accessed",
            SignerAction::Refuse => {
                signer.status = "canceled";
                tx.status = TxStatus::Canceled;
            }
            SignerAction::Sign => {
                signer.status = "signed";
                tx.current_signer += 1;
                match tx.signers.get_mut(index + 1) {
                    Some(next) => next.status = "ready",
                    None => tx.status = TxStatus::Completed,
                }
            }
        }
        Ok(())
    }

    fn finish(&self, id: &str, status: TxStatus) -> Result<(), String> {
        let mut txs = lock(&self.transactions);
        let tx = txs
            .get_mut(id)
            .ok_or_else(|| format!("no transaction {id}"))?;
        if tx.status != TxStatus::Ready {
            return Err(format!(
                "transaction {id} is already {}",
                tx.status.as_str()
            ));
        }
        tx.status = status;
        if status == TxStatus::Failed {
            if let Some(s) = tx.signers.get_mut(tx.current_signer) {
                s.status = "failed";
            }
        }
        Ok(())
    }
}

/// A poisoned lock only means another handler panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// HTTP

fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route(RPC_PATH, post(rpc).get(wrong_method))
        .route("/sign/rpc", post(rpc).get(wrong_method))
        .route("/_control/transactions/{id}", get(control_view))
        .route(
            "/_control/transactions/{id}/signers/{index}/{action}",
            post(control_signer),
        )
        .route(
            "/_control/transactions/{id}/{action}",
            post(control_transaction),
        )
        .route("/_control/unavailable/{on}", post(control_unavailable))
        .with_state(state)
}

async fn wrong_method() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "XML-RPC calls are POST requests",
    )
        .into_response()
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"))],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"Universign\""),
            (header::CONTENT_TYPE, "text/html"),
        ],
        "<html><body><h1>401 Unauthorized</h1></body></html>",
    )
        .into_response()
}

async fn rpc(State(state): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>503 Service Unavailable</title></head><body><h1>Service \
             Unavailable</h1><p>The server is temporarily unable to service your request \
             due to maintenance downtime.</p></body></html>",
        )
            .into_response();
    }
    let Some((user, password)) = basic_credentials(&headers) else {
        return unauthorized();
    };
    let call = parse_call(&body);
    if let Ok(call) = &call {
        let subject = call.params.first().and_then(Rpc::as_str).map(str::to_owned);
        lock(&state.calls).push((call.method.clone(), subject));
    }
    if user != state.opts.user || password != state.opts.password {
        return match state.opts.bad_credentials {
            BadCredentials::Http401 => unauthorized(),
            BadCredentials::Fault => xml_response(
                StatusCode::OK,
                fault(
                    faults::INVALID_LOGIN,
                    "Error on authentication: invalid login or password",
                ),
            ),
        };
    }
    let body = match call {
        Err(reason) => fault(
            faults::MALFORMED_REQUEST,
            &format!("Malformed request: {reason}"),
        ),
        Ok(call) => match dispatch(&state, &call) {
            Ok(value) => success(&value),
            Err((code, message)) => fault(code, &message),
        },
    };
    xml_response(StatusCode::OK, body)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

// ---------------------------------------------------------------------------------------
// Methods

type Fault = (i32, String);

fn malformed(message: impl Into<String>) -> Fault {
    (faults::MALFORMED_REQUEST, message.into())
}

fn dispatch(state: &Shared, call: &Call) -> Result<Rpc, Fault> {
    match call.method.as_str() {
        "requester.requestTransaction" => request_transaction(state, &call.params),
        "requester.getTransactionInfo" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let txs = lock(&state.transactions);
            let tx = txs.get(&id).ok_or_else(|| unknown(&id))?;
            Ok(transaction_info(state, tx))
        }
        "requester.getDocuments" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let txs = lock(&state.transactions);
            let tx = txs.get(&id).ok_or_else(|| unknown(&id))?;
            if tx.status != TxStatus::Completed {
                return Err((
                    faults::NOT_ALLOWED_IN_STATE,
                    format!(
                        "Action not allowed in the current state: transaction {id} is {}",
                        tx.status.as_str()
                    ),
                ));
            }
            Ok(documents(tx))
        }
        "requester.cancelTransaction" => {
            let id = one_id(&call.params, &call.method)?;
            injected(state, &id)?;
            let mut txs = lock(&state.transactions);
            let tx = txs.get_mut(&id).ok_or_else(|| unknown(&id))?;
            if tx.status != TxStatus::Ready {
                return Err((
                    faults::NOT_ALLOWED_IN_STATE,
                    format!(
                        "Action not allowed in the current state: transaction {id} is {}",
                        tx.status.as_str()
                    ),
                ));
            }
            tx.status = TxStatus::Canceled;
            Ok(Rpc::Bool(true))
        }
        other => Err((
            faults::NO_SUCH_METHOD,
            format!("requested method not found: {other}"),
        )),
    }
}

fn unknown(id: &str) -> Fault {
    (
        faults::UNKNOWN_TRANSACTION,
        format!("Invalid transaction id: {id}"),
    )
}

fn injected(state: &Shared, id: &str) -> Result<(), Fault> {
    match lock(&state.injected).get(id) {
        Some(code) => Err((*code, format!("Injected error on transaction {id}"))),
        None => Ok(()),
    }
}

fn one_id(params: &[Rpc], method: &str) -> Result<String, Fault> {
    match params {
        [Rpc::Str(id)] => Ok(id.clone()),
        [other] => Err(malformed(format!(
            "{method} expects a transaction id string, not a {}",
            other.type_name()
        ))),
        _ => Err(malformed(format!(
            "{method} expects 1 parameter, got {}",
            params.len()
        ))),
    }
}

const LANGUAGES: &[&str] = &[
    "bg", "ca", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ro",
];

fn request_transaction(state: &Shared, params: &[Rpc]) -> Result<Rpc, Fault> {
    let [Rpc::Struct(req)] = params else {
        return Err(malformed(format!(
            "requester.requestTransaction expects 1 struct parameter, got {}",
            params.len()
        )));
    };
    // Members the service knows, with the type it requires.
    for (name, value) in req {
        let expected = match name.as_str() {
            "documents" | "signers" => "array",
            "finalDocSent"
            | "finalDocRequesterSent"
            | "finalDocObserverSent"
            | "mustContactFirstSigner" => "boolean",
            "handwrittenSignatureMode" => "int",
            _ => "string",
        };
        let known = [
            "documents",
            "signers",
            "finalDocSent",
            "finalDocRequesterSent",
            "finalDocObserverSent",
            "mustContactFirstSigner",
            "handwrittenSignatureMode",
            "language",
            "chainingMode",
            "customId",
            "description",
            "profile",
            "certificateType",
            "identificationType",
            "successURL",
            "cancelURL",
            "failURL",
            "invitationMessage",
        ];
        if known.contains(&name.as_str()) && value.type_name() != expected {
            return Err(malformed(format!(
                "member {name} must be a {expected}, not a {}",
                value.type_name()
            )));
        }
    }
    let documents = match req.get("documents") {
        Some(Rpc::Array(items)) if !items.is_empty() => items,
        _ => return Err(malformed("documents: at least one document is required")),
    };
    let mut docs = Vec::new();
    for (i, item) in documents.iter().enumerate() {
        let Rpc::Struct(d) = item else {
            return Err(malformed(format!("documents[{i}] must be a struct")));
        };
        let content = match d.get("content") {
            Some(Rpc::Bytes(b)) => b.clone(),
            Some(other) => {
                return Err(malformed(format!(
                    "documents[{i}].content must be base64, not a {}",
                    other.type_name()
                )))
            }
            None => return Err(malformed(format!("documents[{i}].content is missing"))),
        };
        if !content.starts_with(b"%PDF-") {
            return Err((
                faults::PDF_SIGNING,
                format!("Error on document {i}: the content is not a PDF document"),
            ));
        }
        let name = d
            .get("fileName")
            .or_else(|| d.get("name"))
            .and_then(Rpc::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("document{i}.pdf"));
        docs.push((name, content, d.get("signatureFields")));
    }
    let signers = match req.get("signers") {
        Some(Rpc::Array(items)) if !items.is_empty() => items,
        _ => return Err(malformed("signers: at least one signer is required")),
    };
    let docs = docs
        .into_iter()
        .enumerate()
        .map(|(i, (name, content, fields))| {
            let placements = match fields {
                None => Vec::new(),
                Some(fields) => placements(i, &content, fields, signers.len())?,
            };
            Ok(Document {
                name,
                content,
                placements,
            })
        })
        .collect::<Result<Vec<_>, Fault>>()?;
    let certificate_type = match req.get("certificateType").and_then(Rpc::as_str) {
        None => "simple".to_owned(),
        Some(t @ "simple") => t.to_owned(),
        Some(t @ ("certified" | "advanced")) if state.opts.certified_allowed => t.to_owned(),
        Some(t @ ("certified" | "advanced")) => {
            return Err(malformed(format!(
                "certificateType {t} is not allowed for this account: its profile offers \
                 simple signatures only"
            )))
        }
        Some(other) => {
            return Err(malformed(format!(
                "certificateType must be simple, certified or advanced, not {other}"
            )))
        }
    };
    let mut people = Vec::new();
    for (i, item) in signers.iter().enumerate() {
        let Rpc::Struct(s) = item else {
            return Err(malformed(format!("signers[{i}] must be a struct")));
        };
        let text = |member: &str| -> Result<Option<String>, Fault> {
            match s.get(member) {
                None => Ok(None),
                Some(Rpc::Str(t)) => Ok(Some(t.clone())),
                Some(other) => Err(malformed(format!(
                    "signers[{i}].{member} must be a string, not a {}",
                    other.type_name()
                ))),
            }
        };
        let email = text("emailAddress")?
            .ok_or_else(|| malformed(format!("signers[{i}].emailAddress is missing")))?;
        let valid_email = email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'));
        if !valid_email {
            return Err(malformed(format!(
                "signers[{i}].emailAddress is not a valid e-mail address: {email}"
            )));
        }
        if let Some(phone) = text("phoneNum")? {
            let digits = phone.strip_prefix('+').unwrap_or("");
            if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed(format!(
                    "signers[{i}].phoneNum must be an international number (+33…): {phone}"
                )));
            }
        }
        let identification = text("identificationType")?.unwrap_or_else(|| "none".to_owned());
        match identification.as_str() {
            "none" | "email" => {}
            "sms" if text("phoneNum")?.is_none() => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType sms requires the signer's phoneNum"
                )))
            }
            "sms" if !state.opts.sms_allowed => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType sms is not allowed for this account"
                )))
            }
            "sms" => {}
            other => {
                return Err(malformed(format!(
                    "signers[{i}].identificationType must be none, email or sms, not {other}"
                )))
            }
        }
        for member in ["successURL", "cancelURL", "failURL"] {
            if let Some(url) = text(member)? {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(malformed(format!(
                        "signers[{i}].{member} is not a valid URL: {url}"
                    )));
                }
            }
        }
        people.push(Signer {
            id: state.new_id(),
            first_name: text("firstname")?.unwrap_or_default(),
            last_name: text("lastname")?.unwrap_or_default(),
            email,
            status: if i == 0 { "ready" } else { "waiting" },
            action_date: None,
            identification,
            success_url: text("successURL")?,
        });
    }
    if let Some(Rpc::Int(mode)) = req.get("handwrittenSignatureMode") {
        if !(0..=2).contains(mode) {
            return Err(malformed(format!(
                "handwrittenSignatureMode must be 0, 1 or 2, not {mode}"
            )));
        }
    }
    if let Some(Rpc::Str(mode)) = req.get("chainingMode") {
        if !["none", "email", "web"].contains(&mode.as_str()) {
            return Err(malformed(format!(
                "chainingMode must be none, email or web, not {mode}"
            )));
        }
    }
    if let Some(Rpc::Str(lang)) = req.get("language") {
        if !LANGUAGES.contains(&lang.as_str()) {
            return Err(malformed(format!("unsupported language {lang}")));
        }
    }
    let id = state.new_id();
    let first_url = state.signing_url(&people[0].id);
    let tx = Transaction {
        serial: state.serial.fetch_add(1, Ordering::SeqCst),
        id: id.clone(),
        custom_id: req.get("customId").and_then(Rpc::as_str).map(str::to_owned),
        description: req
            .get("description")
            .and_then(Rpc::as_str)
            .map(str::to_owned),
        status: TxStatus::Ready,
        created: now_xmlrpc(),
        current_signer: 0,
        signers: people,
        documents: docs,
        certificate_type,
    };
    lock(&state.transactions).insert(id.clone(), tx);
    Ok(Rpc::Struct(BTreeMap::from([
        ("id".to_owned(), Rpc::Str(id)),
        ("url".to_owned(), Rpc::Str(first_url)),
    ])))
}

/// Checks document `doc`'s `signatureFields` (`DocSignatureField[]`) and says where each
/// signature goes.
fn placements(
    doc: usize,
    pdf: &[u8],
    fields: &Rpc,
    signers: usize,
) -> Result<Vec<Placement>, Fault> {
    let Rpc::Array(items) = fields else {
        return Err(malformed(format!(
            "documents[{doc}].signatureFields must be an array, not a {}",
            fields.type_name()
        )));
    };
    let pages = crate::mindee::count_pdf_pages(pdf).max(1);
    let mut out: Vec<Placement> = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let at = format!("documents[{doc}].signatureFields[{j}]");
        let Rpc::Struct(f) = item else {
            return Err(malformed(format!("{at} must be a struct")));
        };
        let int = |member: &str| match f.get(member) {
            Some(Rpc::Int(v)) => Ok(*v),
            Some(other) => Err(malformed(format!(
                "{at}.{member} must be an int, not a {}",
                other.type_name()
            ))),
            None => Err(malformed(format!("{at}.{member} is mandatory"))),
        };
        let (page, x, y, signer_index) = (int("page")?, int("x")?, int("y")?, int("signerIndex")?);
        if page == 0 || page < -1 || page > i64::try_from(pages).unwrap_or(i64::MAX) {
            return Err(malformed(format!(
                "{at}.page {page} is out of the document, which has {pages} page(s)"
            )));
        }
        if signer_index < 0 || signer_index as usize >= signers {
            return Err(malformed(format!(
                "{at}.signerIndex {signer_index} does not match any of the {signers} signer(s)"
            )));
        }
        let text = |member: &str| f.get(member).and_then(Rpc::as_str).map(str::to_owned);
        let field = text("name").filter(|name| {
            let literal = format!("/T ({name})");
            let tight = format!("/T({name})");
            crate::mindee::contains(pdf, literal.as_bytes())
                || crate::mindee::contains(pdf, tight.as_bytes())
        });
        out.push(Placement {
            signer_index,
            page,
            x,
            y,
            field,
            label: text("label"),
        });
    }
    for p in &out {
        let several = out
            .iter()
            .filter(|q| q.signer_index == p.signer_index)
            .count()
            > 1;
        if several && p.label.is_none() {
            return Err(malformed(format!(
                "documents[{doc}].signatureFields: signer {} has several fields, each needs a \
                 label",
                p.signer_index
            )));
        }
    }
    Ok(out)
}

/// `getTransactionInfo`'s answer, members in the order of the 2021 recording.
fn transaction_info(state: &Shared, tx: &Transaction) -> Rpc {
    let empty_certificate = || {
        Rpc::Ordered(vec![
            ("serial".into(), Rpc::Str(String::new())),
            ("subject".into(), Rpc::Str(String::new())),
            ("issuer".into(), Rpc::Str(String::new())),
        ])
    };
    let signers = tx
        .signers
        .iter()
        .map(|s| {
            let mut members = vec![
                ("firstName".to_owned(), Rpc::Str(s.first_name.clone())),
                ("lastName".to_owned(), Rpc::Str(s.last_name.clone())),
                ("id".to_owned(), Rpc::Str(s.id.clone())),
                ("certificateInfo".to_owned(), empty_certificate()),
            ];
            if let Some(date) = &s.action_date {
                members.push(("actionDate".to_owned(), Rpc::Date(date.clone())));
            }
            members.push(("url".to_owned(), Rpc::Str(state.signing_url(&s.id))));
            members.push(("status".to_owned(), Rpc::Str(s.status.to_owned())));
            Rpc::Ordered(members)
        })
        .collect();
    let mut members = vec![
        ("signerInfos".to_owned(), Rpc::Array(signers)),
        (
            "currentSigner".to_owned(),
            Rpc::Int(tx.current_signer.min(tx.signers.len().saturating_sub(1)) as i64),
        ),
        ("eachField".to_owned(), Rpc::Bool(false)),
        ("creationDate".to_owned(), Rpc::Date(tx.created.clone())),
        (
            "signerCertificates".to_owned(),
            Rpc::Array(tx.signers.iter().map(|_| empty_certificate()).collect()),
        ),
        (
            "initiatorInfo".to_owned(),
            Rpc::Ordered(vec![
                ("firstName".into(), Rpc::Str("ERP".into())),
                ("lastName".into(), Rpc::Str("Passerelle".into())),
                ("email".into(), Rpc::Str(state.opts.user.clone())),
            ]),
        ),
        ("transactionId".to_owned(), Rpc::Str(tx.id.clone())),
    ];
    if let Some(custom) = &tx.custom_id {
        members.push(("customId".to_owned(), Rpc::Str(custom.clone())));
    }
    if let Some(description) = &tx.description {
        members.push(("description".to_owned(), Rpc::Str(description.clone())));
    }
    members.push(("status".to_owned(), Rpc::Str(tx.status.as_str().to_owned())));
    Rpc::Ordered(members)
}

/// `getDocuments`' answer, members in the order of the recording.
fn documents(tx: &Transaction) -> Rpc {
    Rpc::Array(
        tx.documents
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let signed = tx.signed(d);
                Rpc::Ordered(vec![
                    (
                        "metaData".into(),
                        Rpc::Ordered(vec![
                            ("pages".into(), Rpc::Int(1)),
                            ("size".into(), Rpc::Int(signed.len() as i64)),
                        ]),
                    ),
                    ("fileName".into(), Rpc::Str(d.name.clone())),
                    ("documentType".into(), Rpc::Str("pdf".into())),
                    ("name".into(), Rpc::Str(d.name.clone())),
                    ("id".into(), Rpc::Int(1_918_700 + i as i64)),
                    ("content".into(), Rpc::Bytes(signed)),
                ])
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Control routes (no authentication: they are the test's, not Universign's)

async fn control_view(State(state): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&state.transactions).get(&id) {
        Some(tx) => {
            let v = tx.view();
            Json(json!({
                "id": v.id,
                "status": v.status.as_str(),
                "custom_id": v.custom_id,
                "signers": v.signers.iter().map(|(f, l, e, s)| json!({
                    "first_name": f, "last_name": l, "email": e, "status": s
                })).collect::<Vec<_>>(),
                "documents": v.documents,
            }))
            .into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no transaction {id}")).into_response(),
    }
}

async fn control_signer(
    State(state): State<Arc<Shared>>,
    Path((id, index, action)): Path<(String, usize, String)>,
) -> Response {
    let action = match action.as_str() {
        "sign" => SignerAction::Sign,
        "refuse" => SignerAction::Refuse,
        "access" => SignerAction::Access,
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown signer action {other}; use sign, refuse or access"),
            )
                .into_response()
        }
    };
    control_result(state.signer_action(&id, index, action))
}

async fn control_transaction(
    State(state): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let status = match action.as_str() {
        "expire" => TxStatus::Expired,
        "cancel" => TxStatus::Canceled,
        "fail" => TxStatus::Failed,
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown transaction action {other}; use expire, cancel or fail"),
            )
                .into_response()
        }
    };
    control_result(state.finish(&id, status))
}

async fn control_unavailable(State(state): State<Arc<Shared>>, Path(on): Path<bool>) -> Response {
    state.unavailable.store(on, Ordering::SeqCst);
    StatusCode::NO_CONTENT.into_response()
}

fn control_result(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.starts_with("no transaction") => (StatusCode::NOT_FOUND, e).into_response(),
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// XML-RPC, read through an element tree and written as text

/// An XML-RPC value as the emulator reads and writes it.
#[derive(Debug, Clone, PartialEq)]
enum Rpc {
    Int(i64),
    Bool(bool),
    Str(String),
    Double(f64),
    Date(String),
    Bytes(Vec<u8>),
    Struct(BTreeMap<String, Rpc>),
    /// A struct written with its members in this order (answers only).
    Ordered(Vec<(String, Rpc)>),
    Array(Vec<Rpc>),
    Nil,
}

impl Rpc {
    fn as_str(&self) -> Option<&str> {
        match self {
            Rpc::Str(s) => Some(s),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Rpc::Int(_) => "int",
            Rpc::Bool(_) => "boolean",
            Rpc::Str(_) => "string",
            Rpc::Double(_) => "double",
            Rpc::Date(_) => "dateTime.iso8601",
            Rpc::Bytes(_) => "base64",
            Rpc::Struct(_) | Rpc::Ordered(_) => "struct",
            Rpc::Array(_) => "array",
            Rpc::Nil => "nil",
        }
    }
}

#[derive(Debug)]
struct Call {
    method: String,
    params: Vec<Rpc>,
}

/// An XML element: its local name and its children (elements and text pieces).
#[derive(Debug)]
struct Element {
    name: String,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    fn child(&self, name: &str) -> Result<&Element, String> {
        self.elements()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("<{}> has no <{name}>", self.name))
    }

    /// Fails when non-whitespace text sits among child elements.
    fn only_elements(&self) -> Result<(), String> {
        if self.text().trim().is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected text inside <{}>", self.name))
        }
    }
}

/// Parses a document into its root element.
fn parse_tree(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(s) => {
                let raw = s.name();
                let name = raw.0.rsplit(':').next().unwrap_or(raw.0).to_owned();
                if root.is_some() {
                    return Err("content after the root element".to_owned());
                }
                if stack.len() > 100 {
                    return Err("elements nested too deeply".to_owned());
                }
                stack.push(Element {
                    name,
                    children: Vec::new(),
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced closing tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content().into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(content)),
                    None if content.trim().is_empty() => {}
                    None => return Err("text outside the root element".to_owned()),
                }
            }
            Event::CData(c) => {
                let parent = stack.last_mut().ok_or("CDATA outside the root element")?;
                parent
                    .children
                    .push(Node::Text(c.into_inner().into_owned()));
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                let parent = stack
                    .last_mut()
                    .ok_or("reference outside the root element")?;
                parent.children.push(Node::Text(ch.to_string()));
            }
            Event::DocType(_) => return Err("DOCTYPE is not allowed".to_owned()),
            Event::Empty(_) => return Err("unexpected empty element".to_owned()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".to_owned());
    }
    root.ok_or_else(|| "the body is empty".to_owned())
}

fn parse_call(body: &[u8]) -> Result<Call, String> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err(format!(
            "the root element is <{}>, not <methodCall>",
            root.name
        ));
    }
    let method = root.child("methodName")?.text().trim().to_owned();
    if method.is_empty() {
        return Err("<methodName> is empty".to_owned());
    }
    let mut params = Vec::new();
    if let Ok(list) = root.child("params") {
        list.only_elements()?;
        for param in list.elements() {
            if param.name != "param" {
                return Err(format!("<params> holds a <{}>", param.name));
            }
            params.push(read_value(param.child("value")?)?);
        }
    }
    Ok(Call { method, params })
}

fn read_value(value: &Element) -> Result<Rpc, String> {
    let typed: Vec<&Element> = value.elements().collect();
    let inner = match typed.as_slice() {
        [] => return Ok(Rpc::Str(value.text())),
        [one] => {
            value.only_elements()?;
            *one
        }
        _ => return Err("a <value> holds more than one type element".to_owned()),
    };
    let text = inner.text();
    let bad = |kind: &str| format!("invalid <{kind}> value {:?}", text.trim());
    Ok(match inner.name.as_str() {
        "int" | "i4" => Rpc::Int(
            text.trim()
                .parse::<i32>()
                .map_err(|_| bad(&inner.name))?
                .into(),
        ),
        "boolean" => match text.trim() {
            "1" => Rpc::Bool(true),
            "0" => Rpc::Bool(false),
            _ => return Err(bad("boolean")),
        },
        "string" => Rpc::Str(text),
        "double" => Rpc::Double(
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .ok_or_else(|| bad("double"))?,
        ),
        "dateTime.iso8601" => {
            let t = text.trim();
            let ok = t.len() == 17
                && t.as_bytes()[8] == b'T'
                && t.as_bytes()[11] == b':'
                && t.as_bytes()[14] == b':';
            if !ok {
                return Err(bad("dateTime.iso8601"));
            }
            Rpc::Date(t.to_owned())
        }
        "base64" => {
            let compact: String = text.split_ascii_whitespace().collect();
            Rpc::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| bad("base64"))?,
            )
        }
        "struct" => {
            inner.only_elements()?;
            let mut members = BTreeMap::new();
            for member in inner.elements() {
                if member.name != "member" {
                    return Err(format!("<struct> holds a <{}>", member.name));
                }
                let name = member.child("name")?.text();
                members.insert(name, read_value(member.child("value")?)?);
            }
            Rpc::Struct(members)
        }
        "array" => {
            let data = inner.child("data")?;
            data.only_elements()?;
            Rpc::Array(data.elements().map(read_value).collect::<Result<_, _>>()?)
        }
        "nil" => Rpc::Nil,
        other => return Err(format!("unknown XML-RPC type <{other}>")),
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#13;")
}

fn write_value(out: &mut String, value: &Rpc) {
    out.push_str("<value>");
    match value {
        Rpc::Int(i) => out.push_str(&format!("<i4>{i}</i4>")),
        Rpc::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        Rpc::Str(s) => out.push_str(&format!("<string>{}</string>", escape(s))),
        Rpc::Double(d) => out.push_str(&format!("<double>{d}</double>")),
        Rpc::Date(d) => out.push_str(&format!("<dateTime.iso8601>{d}</dateTime.iso8601>")),
        Rpc::Bytes(b) => out.push_str(&format!(
            "<base64>{}</base64>",
            base64::engine::general_purpose::STANDARD.encode(b)
        )),
        Rpc::Struct(members) => write_struct(out, members.iter()),
        Rpc::Ordered(members) => write_struct(out, members.iter().map(|(k, v)| (k, v))),
        Rpc::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Rpc::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

fn write_struct<'a>(out: &mut String, members: impl Iterator<Item = (&'a String, &'a Rpc)>) {
    out.push_str("<struct>");
    for (name, value) in members {
        out.push_str(&format!("<member><name>{}</name>", escape(name)));
        write_value(out, value);
        out.push_str("</member>");
    }
    out.push_str("</struct>");
}

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

fn success(value: &Rpc) -> String {
    let mut out = format!("{DECLARATION}<methodResponse><params><param>");
    write_value(&mut out, value);
    out.push_str("</param></params></methodResponse>");
    out
}

fn fault(code: i32, message: &str) -> String {
    let mut out = format!("{DECLARATION}<methodResponse><fault>");
    write_value(
        &mut out,
        &Rpc::Ordered(vec![
            ("faultCode".into(), Rpc::Int(code.into())),
            ("faultString".into(), Rpc::Str(message.to_owned())),
        ]),
    );
    out.push_str("</fault></methodResponse>");
    out
}

/// Now, in XML-RPC's form (`20240301T10:22:05`, UTC).
fn now_xmlrpc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/universign");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn recorded_requests_parse() {
        let call = parse_call(&fixture("request_transaction.request.xml")).unwrap();
        assert_eq!(call.method, "requester.requestTransaction");
        let [Rpc::Struct(req)] = call.params.as_slice() else {
            panic!("{call:?}")
        };
        assert_eq!(req.get("handwrittenSignatureMode"), Some(&Rpc::Int(1)));
        assert_eq!(req.get("finalDocSent"), Some(&Rpc::Bool(true)));
        let Some(Rpc::Array(docs)) = req.get("documents") else {
            panic!()
        };
        let Rpc::Struct(doc) = &docs[0] else { panic!() };
        let Some(Rpc::Bytes(pdf)) = doc.get("content") else {
            panic!()
        };
        assert!(pdf.starts_with(b"%PDF-1.5"));
        let call = parse_call(&fixture("get_documents.request.xml")).unwrap();
        assert_eq!(call.method, "requester.getDocuments");
        assert_eq!(
            call.params,
            [Rpc::Str("0f7c32e2-b989-4017-87c5-d3e2a08eae52".into())]
        );
    }

    #[test]
    fn the_recorded_request_creates_a_transaction() {
        let state = Shared::new(UniversignOptions::default());
        let call = parse_call(&fixture("request_transaction.request.xml")).unwrap();
        let Rpc::Struct(answer) = dispatch(&state, &call).unwrap() else {
            panic!()
        };
        let Some(Rpc::Str(id)) = answer.get("id") else {
            panic!()
        };
        assert_eq!(id.len(), 36);
        let txs = lock(&state.transactions);
        let tx = &txs[id];
        assert_eq!(tx.signers[0].email, "test@gmail.com");
        assert_eq!(tx.documents[0].name, "original_contract.pdf");
    }

    #[test]
    fn answers_are_written_like_the_recordings() {
        // The recorded answer to requestTransaction, rebuilt member by member.
        let rebuilt = success(&Rpc::Ordered(vec![
            ("id".into(), Rpc::Str("613b6a85-cf56-4705-ba20-93c9d24e813e".into())),
            (
                "url".into(),
                Rpc::Str(
                    "https://sign.test.universign.eu/fr/signature/?id=cc1e322b-daaf-4143-adfc-de75c3864bf3"
                        .into(),
                ),
            ),
        ]));
        assert_eq!(
            rebuilt.as_bytes(),
            fixture("request_transaction.response.xml").as_slice()
        );
        let f = fault(73025, "Invalid transaction id: x & y");
        assert!(f.contains("<name>faultCode</name><value><i4>73025</i4></value>"));
        assert!(f.contains("x &amp; y"));
    }

    #[test]
    fn malformed_requests_are_fault_73020() {
        let state = Shared::new(UniversignOptions::default());
        let cases = [
            ("<methodCall><methodName>requester.getTransactionInfo</methodName><params><param><value><i4>5</i4></value></param></params></methodCall>", "expects a transaction id string"),
            ("<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct><member><name>documents</name><value><array><data></data></array></value></member></struct></value></param></params></methodCall>", "at least one document"),
            ("<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct><member><name>language</name><value><i4>1</i4></value></member></struct></value></param></params></methodCall>", "member language must be a string"),
        ];
        for (xml, needle) in cases {
            let call = parse_call(xml.as_bytes()).unwrap();
            let (code, message) = dispatch(&state, &call).unwrap_err();
            assert_eq!(code, faults::MALFORMED_REQUEST, "{xml}");
            assert!(message.contains(needle), "{message}");
        }
        for bad in [
            "<methodCall><methodName>x</methodName><params><param><value><i4>x</i4></value></param></params></methodCall>",
            "<methodCall><methodName>x</methodName>",
            "<!DOCTYPE x><methodCall/>",
            "<methodResponse/>",
        ] {
            assert!(parse_call(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn signers_sign_in_turn_and_complete_the_transaction() {
        let state = Shared::new(UniversignOptions::default());
        let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 x");
        let xml = format!(
            "<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct>\
             <member><name>documents</name><value><array><data><value><struct><member><name>name</name><value>q.pdf</value></member>\
             <member><name>content</name><value><base64>{pdf}</base64></value></member></struct></value></data></array></value></member>\
             <member><name>signers</name><value><array><data>\
             <value><struct><member><name>emailAddress</name><value><string>a@example.com</string></value></member></struct></value>\
             <value><struct><member><name>emailAddress</name><value><string>b@example.com</string></value></member></struct></value>\
             </data></array></value></member></struct></value></param></params></methodCall>"
        );
        let Rpc::Struct(answer) = dispatch(&state, &parse_call(xml.as_bytes()).unwrap()).unwrap()
        else {
            panic!()
        };
        let id = answer["id"].as_str().unwrap().to_owned();
        assert!(state
            .signer_action(&id, 1, SignerAction::Sign)
            .unwrap_err()
            .contains("not signer 1's turn"));
        state.signer_action(&id, 0, SignerAction::Sign).unwrap();
        let get_docs = Call {
            method: "requester.getDocuments".into(),
            params: vec![Rpc::Str(id.clone())],
        };
        assert_eq!(
            dispatch(&state, &get_docs).unwrap_err().0,
            faults::NOT_ALLOWED_IN_STATE
        );
        state.signer_action(&id, 1, SignerAction::Sign).unwrap();
        assert_eq!(lock(&state.transactions)[&id].status, TxStatus::Completed);
        let Rpc::Array(docs) = dispatch(&state, &get_docs).unwrap() else {
            panic!()
        };
        let Rpc::Ordered(doc) = &docs[0] else {
            panic!()
        };
        let Rpc::Bytes(signed) = &doc.iter().find(|(k, _)| k == "content").unwrap().1 else {
            panic!()
        };
        assert!(signed.starts_with(b"%PDF-1.4 x\n% Universign emulator: transaction"));
        assert_eq!(
            state.finish(&id, TxStatus::Expired).unwrap_err(),
            format!("transaction {id} is already completed")
        );
    }

    #[test]
    fn dates_are_xmlrpc_shaped() {
        let now = now_xmlrpc();
        assert_eq!(now.len(), 17, "{now}");
        assert!(now.starts_with("20"), "{now}");
        assert_eq!(&now[8..9], "T");
    }

    /// A two-page PDF with a signature field named `Client`.
    const TWO_PAGES: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n3 0 obj << /FT /Sig /T (Client) >> endobj\n%%EOF";

    fn field(members: &[(&str, i64)], texts: &[(&str, &str)]) -> String {
        let mut out = String::from("<value><struct>");
        for (k, v) in members {
            out.push_str(&format!(
                "<member><name>{k}</name><value><i4>{v}</i4></value></member>"
            ));
        }
        for (k, v) in texts {
            out.push_str(&format!(
                "<member><name>{k}</name><value><string>{v}</string></value></member>"
            ));
        }
        out.push_str("</struct></value>");
        out
    }

    fn request_with(fields: &[String], signer_extra: &str, top_extra: &str) -> Call {
        let pdf = base64::engine::general_purpose::STANDARD.encode(TWO_PAGES);
        let xml = format!(
            "<methodCall><methodName>requester.requestTransaction</methodName><params><param><value><struct>\
             <member><name>documents</name><value><array><data><value><struct>\
             <member><name>name</name><value><string>quote.pdf</string></value></member>\
             <member><name>content</name><value><base64>{pdf}</base64></value></member>\
             <member><name>signatureFields</name><value><array><data>{}</data></array></value></member>\
             </struct></value></data></array></value></member>\
             <member><name>signers</name><value><array><data><value><struct>\
             <member><name>firstname</name><value><string>Jeanne</string></value></member>\
             <member><name>lastname</name><value><string>Martin</string></value></member>\
             <member><name>emailAddress</name><value><string>jeanne@example.com</string></value></member>\
             {signer_extra}</struct></value></data></array></value></member>{top_extra}\
             </struct></value></param></params></methodCall>",
            fields.concat()
        );
        parse_call(xml.as_bytes()).unwrap()
    }

    fn refused(state: &Shared, call: &Call) -> String {
        let (code, message) = dispatch(state, call).unwrap_err();
        assert_eq!(code, faults::MALFORMED_REQUEST, "{message}");
        message
    }

    #[test]
    fn signature_fields_are_checked_and_placed() {
        let state = Shared::new(UniversignOptions::default());
        let ok = request_with(
            &[
                field(
                    &[("page", 2), ("x", 100), ("y", 50), ("signerIndex", 0)],
                    &[("label", "a")],
                ),
                field(
                    &[("page", 1), ("x", 0), ("y", 0), ("signerIndex", 0)],
                    &[("name", "Client"), ("label", "b")],
                ),
                field(
                    &[("page", -1), ("x", 9), ("y", 9), ("signerIndex", 0)],
                    &[("name", "Nope"), ("label", "c")],
                ),
            ],
            "",
            "",
        );
        let Rpc::Struct(answer) = dispatch(&state, &ok).unwrap() else {
            panic!()
        };
        let Some(Rpc::Str(id)) = answer.get("id") else {
            panic!()
        };
        let view = lock(&state.transactions)[id].view();
        let p = &view.placements[0];
        assert_eq!(
            (p[0].page, p[0].x, p[0].y, p[0].field.clone()),
            (2, 100, 50, None)
        );
        assert_eq!(
            p[1].field.as_deref(),
            Some("Client"),
            "a name the PDF has wins"
        );
        assert_eq!(
            p[2].field, None,
            "an unknown name falls back to the coordinates"
        );
        assert_eq!(view.certificate_type, "simple");

        let cases = [
            (
                field(&[("page", 3), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]),
                "out of the document, which has 2 page(s)",
            ),
            (
                field(&[("page", 0), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]),
                "page 0 is out",
            ),
            (
                field(&[("page", 1), ("x", 1), ("signerIndex", 0)], &[]),
                "signatureFields[0].y is mandatory",
            ),
            (
                field(
                    &[("page", 1), ("y", 1), ("signerIndex", 0)],
                    &[("name", "Client")],
                ),
                "signatureFields[0].x is mandatory",
            ),
            (
                field(&[("page", 1), ("x", 1), ("y", 1), ("signerIndex", 1)], &[]),
                "signerIndex 1 does not match",
            ),
        ];
        for (f, needle) in cases {
            let message = refused(&state, &request_with(&[f], "", ""));
            assert!(message.contains(needle), "{needle}: {message}");
        }
        let twice = field(&[("page", 1), ("x", 1), ("y", 1), ("signerIndex", 0)], &[]);
        let message = refused(&state, &request_with(&[twice.clone(), twice], "", ""));
        assert!(message.contains("needs a label"), "{message}");
    }

    #[test]
    fn certificate_levels_and_sms_follow_the_account() {
        let state = Shared::new(UniversignOptions::default());
        let certified = "<member><name>certificateType</name><value><string>certified</string></value></member>";
        assert!(refused(&state, &request_with(&[], "", certified))
            .contains("not allowed for this account"));
        let sms =
            "<member><name>identificationType</name><value><string>sms</string></value></member>";
        assert!(
            refused(&state, &request_with(&[], sms, "")).contains("requires the signer's phoneNum")
        );
        let phone =
            "<member><name>phoneNum</name><value><string>+33612345678</string></value></member>";
        let url = "<member><name>successURL</name><value><string>https://erp.example.com/ok</string></value></member>";
        dispatch(
            &state,
            &request_with(&[], &format!("{sms}{phone}{url}"), ""),
        )
        .unwrap();

        let strict = Shared::new(UniversignOptions {
            certified_allowed: true,
            sms_allowed: false,
            ..UniversignOptions::default()
        });
        assert!(
            refused(&strict, &request_with(&[], &format!("{sms}{phone}"), ""))
                .contains("sms is not allowed")
        );
        let Rpc::Struct(answer) = dispatch(&strict, &request_with(&[], "", certified)).unwrap()
        else {
            panic!()
        };
        let Some(Rpc::Str(id)) = answer.get("id") else {
            panic!()
        };
        assert_eq!(
            lock(&strict.transactions)[id].view().certificate_type,
            "certified"
        );
        let bad =
            "<member><name>certificateType</name><value><string>gold</string></value></member>";
        assert!(refused(&strict, &request_with(&[], "", bad))
            .contains("must be simple, certified or advanced"));
    }

    #[test]
    fn only_a_pending_transaction_can_be_canceled() {
        let state = Shared::new(UniversignOptions::default());
        let Rpc::Struct(answer) = dispatch(&state, &request_with(&[], "", "")).unwrap() else {
            panic!()
        };
        let Some(Rpc::Str(id)) = answer.get("id") else {
            panic!()
        };
        let cancel = parse_call(format!("<methodCall><methodName>requester.cancelTransaction</methodName><params><param><value><string>{id}</string></value></param></params></methodCall>").as_bytes()).unwrap();
        dispatch(&state, &cancel).unwrap();
        assert_eq!(lock(&state.transactions)[id].status, TxStatus::Canceled);
        let (code, _) = dispatch(&state, &cancel).unwrap_err();
        assert_eq!(code, faults::NOT_ALLOWED_IN_STATE);
    }
}
