//! An emulator of Exchange Web Services (SOAP 1.1 over HTTP) and of the Microsoft identity
//! platform's token endpoint, for end-to-end tests of the `exchange-ews` plugin.
//!
//! It keeps calendars in memory and answers `GetFolder`, `FindItem` (with a `CalendarView`),
//! `CreateItem`, `UpdateItem` and `DeleteItem` in the shapes real servers use (see the samples
//! in the plugin's `tests/fixtures/`), and it refuses what Exchange refuses:
//! - HTTP 401 without valid basic credentials or a Bearer token it issued; with
//!   [`ServerAuth::windows_only`], basic and Bearer are refused and the 401 offers
//!   `WWW-Authenticate: Negotiate` and `NTLM` only, as an on-premises virtual directory with
//!   Windows authentication only. NTLM is checked as a domain controller would
//!   ([`crate::ntlm`]): an NTLMv2 proof recomputed from the password, answered on the TCP
//!   connection that received the challenge and no other; that connection then stays
//!   authenticated;
//! - a `RequestServerVersion` outside the schema's enumeration (ErrorSchemaValidation) or newer
//!   than the emulated server (ErrorInvalidServerVersion), as SOAP faults on HTTP 500;
//! - malformed XML or envelopes, and missing required attributes, as SOAP faults on HTTP 500;
//! - impersonation of an unknown mailbox (ErrorNonExistentMailbox) or of a mailbox the account
//!   may not impersonate (ErrorImpersonateUserDenied); app-only tokens without impersonation
//!   (ErrorInvalidExchangeImpersonationHeaderData);
//! - delegate access to a calendar without the right (ErrorAccessDenied, per item);
//! - calendar writes without `SendMeetingInvitations…` attributes, updates with a stale
//!   `ChangeKey` (ErrorIrresolvableConflict), unknown items (ErrorItemNotFound);
//! - throttling on demand: ErrorServerBusy faults with `BackOffMilliseconds`;
//! - for mailboxes on an older server ([`EwsOptions::mailbox_versions`]), a newer
//!   `RequestServerVersion` (ErrorInvalidSchemaVersionForMailboxVersion); `StartTimeZone` or
//!   `EndTimeZone` under an Exchange 2007 version; extended properties that are not named
//!   String properties.
//!
//! Items keep what the plugin writes and reads back: `IsAllDayEvent`, `ReminderIsSet`,
//! `StartTimeZone`/`EndTimeZone`, named extended properties, and the `IsCancelled`,
//! `LegacyFreeBusyStatus` and `Sensitivity` a user sets in Outlook ([`EwsEmulator::edit_item`]).
//!
//! For the tests it records every request (headers and body, to validate them against the
//! schemas with [`soap_parts`]) and the largest number of requests in flight at once.
//!
//! Defaults ([`EwsOptions::default`]): the user `svc@contoso.com` / `S3cret-pass`, the app
//! [`DEFAULT_CLIENT_ID`] / `app-secret` in tenant `contoso.onmicrosoft.com`, mailboxes
//! `svc@`, `jane@`, `bob@`, `ceo@` and `user01@`…`user20@contoso.com`, an Exchange 2016 server.
//! Every principal may impersonate every mailbox until told otherwise.

use crate::ntlm;
use crate::server::{self, RunningServer};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::{NsReader, Reader};
use quick_xml::Writer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Path of the EWS endpoint under the emulator's root.
pub const EWS_PATH: &str = "/EWS/Exchange.asmx";
/// The only scope the token endpoint grants.
pub const EWS_SCOPE: &str = "https://outlook.office365.com/.default";
/// Client id of the default app registration.
pub const DEFAULT_CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// Tenant of the default app registration.
pub const DEFAULT_TENANT: &str = "contoso.onmicrosoft.com";
/// Lifetime of issued tokens, in seconds (as the identity platform says: 3599).
pub const TOKEN_LIFETIME_SECS: u64 = 3599;

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const ERRORS_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// `ExchangeVersionType` of `types.xsd`, oldest first.
pub const SCHEMA_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2012",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
];

/// An app registration of the emulated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Accounts, mailboxes and behaviour of an emulated Exchange organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsOptions {
    /// Basic authentication accounts (login, password); each has a mailbox at its login.
    pub users: Vec<(String, String)>,
    pub apps: Vec<App>,
    /// Mailboxes besides the users' own.
    pub mailboxes: Vec<String>,
    /// The newest `RequestServerVersion` the server accepts.
    pub server_version: String,
    /// Delay of every EWS answer, to make concurrency observable.
    pub latency_ms: u64,
    /// Most items one calendar view returns (Exchange's default `EWSFindCountLimit`: 1000).
    pub max_view_items: usize,
    /// Which authentication schemes the EWS virtual directory accepts, as its IIS settings.
    pub auth: ServerAuth,
    /// Mailboxes living on an older server than the one answering, with that server's
    /// newest schema version: a request for a newer one is refused for them with
    /// ErrorInvalidSchemaVersionForMailboxVersion, as a proxying Client Access server does.
    pub mailbox_versions: Vec<(String, String)>,
}

/// The authentication of the EWS virtual directory. Exchange Online: basic (until it was
/// turned off) and OAuth. On-premises, Windows authentication only is common:
/// `Set-WebServicesVirtualDirectory -BasicAuthentication $false -WindowsAuthentication $true`,
/// whose 401 offers `WWW-Authenticate: Negotiate` and `WWW-Authenticate: NTLM` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAuth {
    pub basic: bool,
    pub oauth: bool,
    /// NTLM (also under the Negotiate scheme, as raw NTLMSSP tokens), bound to a connection.
    pub ntlm: bool,
    /// The NetBIOS domain of the accounts, for `DOMAIN\user` logins.
    pub domain: String,
    /// Extended Protection for Authentication (on by default since Exchange 2019 CU14):
    /// over TLS, NTLM must carry the channel binding of the server's certificate.
    pub extended_protection: bool,
}

impl ServerAuth {
    /// An on-premises EWS virtual directory with Windows authentication only.
    pub fn windows_only() -> Self {
        ServerAuth {
            basic: false,
            oauth: false,
            ntlm: true,
            domain: "CONTOSO".into(),
            extended_protection: true,
        }
    }
}

impl Default for ServerAuth {
    fn default() -> Self {
        ServerAuth {
            basic: true,
            oauth: true,
            ntlm: false,
            domain: "CONTOSO".into(),
            extended_protection: false,
        }
    }
}

impl Default for EwsOptions {
    fn default() -> Self {
        let mut mailboxes: Vec<String> = ["jane", "bob", "ceo"]
            .iter()
            .map(|m| format!("{m}@contoso.com"))
            .collect();
        mailboxes.extend((1..=20).map(|i| format!("user{i:02}@contoso.com")));
        EwsOptions {
            users: vec![("svc@contoso.com".into(), "S3cret-pass".into())],
            apps: vec![App {
                tenant: DEFAULT_TENANT.into(),
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: "app-secret".into(),
            }],
            mailboxes,
            server_version: "Exchange2016".into(),
            latency_ms: 0,
            max_view_items: 1000,
            auth: ServerAuth::default(),
            mailbox_versions: Vec::new(),
        }
    }
}

/// A request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    /// Local name of the body's first element (`GetFolder`…), when the body was SOAP.
    pub operation: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl CapturedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A calendar item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    pub id: String,
    pub change_key: String,
    pub mailbox: String,
    pub subject: String,
    pub body: Option<String>,
    /// Seconds since the epoch.
    pub start: i64,
    pub end: i64,
    pub location: Option<String>,
    pub all_day: bool,
    pub cancelled: bool,
    /// `LegacyFreeBusyStatus`: Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
    pub show_as: String,
    /// Normal, Personal, Private, Confidential.
    pub sensitivity: String,
    /// Exchange sets a 15-minute reminder on new calendar items unless told otherwise.
    pub reminder_set: bool,
    /// `StartTimeZone/@Id` and `EndTimeZone/@Id`, when the request gave them.
    pub start_time_zone: Option<String>,
    pub end_time_zone: Option<String>,
    /// Named extended properties: (property set id in lower case, name, value).
    pub extended: Vec<(String, String, String)>,
}

impl CalendarItem {
    /// The value of a named String extended property.
    pub fn extended_property(&self, set_id: &str, name: &str) -> Option<&str> {
        self.extended
            .iter()
            .find(|(s, n, _)| s.eq_ignore_ascii_case(set_id) && n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

/// A running EWS emulator; stops when dropped.
#[derive(Debug)]
pub struct EwsEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl EwsEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: EwsOptions) -> io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: EwsOptions, port: u16) -> io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        Ok(EwsEmulator { server, state })
    }

    /// Starts over TLS with the given certificate chain and private key (DER), as an
    /// on-premises server whose certificate comes from the organisation's own authority.
    pub fn start_tls(opts: EwsOptions, cert_chain: Vec<Vec<u8>>, key: Vec<u8>) -> io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        if let Some(leaf) = cert_chain.first() {
            *lock(&state.channel_binding) = Some(ntlm::expected_channel_binding(leaf));
        }
        let server = server::spawn_tls(app(state.clone()), cert_chain, key)?;
        Ok(EwsEmulator { server, state })
    }

    /// `http://127.0.0.1:PORT`, also the authority of the token endpoint.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The plugin's EWS URL.
    pub fn ews_url(&self) -> String {
        format!("{}{EWS_PATH}", self.url())
    }

    /// The plugin's authority (token endpoint base).
    pub fn authority_url(&self) -> String {
        self.url()
    }

    pub fn options(&self) -> &EwsOptions {
        &self.state.opts
    }

    /// Every EWS request so far, in arrival order.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// The most EWS requests ever in flight at once.
    pub fn max_concurrent(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn reset_max_concurrent(&self) {
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.state.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// The next `times` EWS requests (authenticated and well-formed) get ErrorServerBusy
    /// with this `BackOffMilliseconds`.
    pub fn inject_server_busy(&self, times: u32, back_off_ms: u64) {
        *lock(&self.state.busy) = (times, back_off_ms);
    }

    /// `principal` (a user's login or an app's client id) may no longer impersonate `mailbox`.
    pub fn deny_impersonation(&self, principal: &str, mailbox: &str) {
        lock(&self.state.denied).insert((principal.to_lowercase(), mailbox.to_lowercase()));
    }

    /// `principal` may impersonate no mailbox at all.
    pub fn revoke_impersonation(&self, principal: &str) {
        lock(&self.state.revoked).insert(principal.to_lowercase());
    }

    /// `delegate` (a mailbox) may open `owner`'s calendar.
    pub fn grant_delegate(&self, delegate: &str, owner: &str) {
        lock(&self.state.delegates)
            .entry(delegate.to_lowercase())
            .or_default()
            .insert(owner.to_lowercase());
    }

    /// The items of a calendar, by start.
    pub fn items(&self, mailbox: &str) -> Vec<CalendarItem> {
        let mailbox = mailbox.to_lowercase();
        let mut items: Vec<CalendarItem> = lock(&self.state.items)
            .values()
            .filter(|i| i.mailbox == mailbox)
            .cloned()
            .collect();
        items.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        items
    }

    /// Adds an item as Outlook would (times in seconds since the epoch); returns its id.
    pub fn add_item(&self, mailbox: &str, subject: &str, start: i64, end: i64) -> String {
        let item = self
            .state
            .new_item(&mailbox.to_lowercase(), subject, start, end);
        let id = item.id.clone();
        lock(&self.state.items).insert(id.clone(), item);
        id
    }

    /// Changes an item as a user in Outlook would; `None` when there is no such item.
    pub fn edit_item(&self, id: &str, edit: impl FnOnce(&mut CalendarItem)) -> Option<()> {
        let mut items = lock(&self.state.items);
        let item = items.get_mut(id)?;
        edit(item);
        item.change_key = self.state.next_change_key();
        Some(())
    }

    /// Deletes an item as a user in Outlook would.
    pub fn remove_item(&self, id: &str) -> bool {
        lock(&self.state.items).remove(id).is_some()
    }

    /// Tokens granted by the token endpoint so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    /// NTLM handshakes that authenticated a connection so far.
    pub fn ntlm_handshakes(&self) -> usize {
        self.state.ntlm_handshakes.load(Ordering::SeqCst)
    }

    /// Forgets every token granted so far.
    pub fn revoke_tokens(&self) {
        lock(&self.state.tokens).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Shared {
    opts: EwsOptions,
    /// Lower-case addresses of every mailbox.
    mailboxes: HashSet<String>,
    items: Mutex<BTreeMap<String, CalendarItem>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    tokens_issued: AtomicUsize,
    denied: Mutex<HashSet<(String, String)>>,
    revoked: Mutex<HashSet<String>>,
    delegates: Mutex<HashMap<String, HashSet<String>>>,
    busy: Mutex<(u32, u64)>,
    latency_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: Mutex<Vec<CapturedRequest>>,
    counter: AtomicU64,
    /// NTLM state of each TCP connection, by the client's address and port.
    connections: Mutex<HashMap<SocketAddr, NtlmConnection>>,
    ntlm_handshakes: AtomicUsize,
    /// The channel binding of the TLS certificate, when serving TLS.
    channel_binding: Mutex<Option<[u8; 16]>>,
}

/// Where a connection is in the NTLM handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NtlmConnection {
    /// A challenge was sent on this connection; only it may answer.
    Challenged([u8; 8]),
    /// The handshake succeeded: later requests on the connection act as this principal.
    Authenticated(Principal),
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    /// A user's login, lower case; also its mailbox.
    User(String),
    /// An app's client id (app-only token).
    App(String),
}

impl Principal {
    fn name(&self) -> &str {
        match self {
            Principal::User(u) | Principal::App(u) => u,
        }
    }
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    body: String,
    headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    fn xml(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            body,
            headers: vec![(header::CONTENT_TYPE, "text/xml; charset=utf-8".into())],
        }
    }
}

/// A per-item error.
#[derive(Debug, Clone)]
struct ItemError {
    code: &'static str,
    text: String,
}

fn item_error(code: &'static str, text: impl Into<String>) -> ItemError {
    ItemError {
        code,
        text: text.into(),
    }
}

impl Shared {
    fn new(opts: EwsOptions) -> Self {
        let mut mailboxes: HashSet<String> =
            opts.mailboxes.iter().map(|m| m.to_lowercase()).collect();
        mailboxes.extend(opts.users.iter().map(|(u, _)| u.to_lowercase()));
        Shared {
            latency_ms: AtomicU64::new(opts.latency_ms),
            opts,
            mailboxes,
            items: Mutex::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            denied: Mutex::new(HashSet::new()),
            revoked: Mutex::new(HashSet::new()),
            delegates: Mutex::new(HashMap::new()),
            busy: Mutex::new((0, 0)),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            connections: Mutex::new(HashMap::new()),
            ntlm_handshakes: AtomicUsize::new(0),
            channel_binding: Mutex::new(None),
        }
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    fn next_change_key(&self) -> String {
        let n = self.next();
        base64::engine::general_purpose::STANDARD.encode(format!("DwAAABYAAAA{n:08}"))
    }

    fn new_item(&self, mailbox: &str, subject: &str, start: i64, end: i64) -> CalendarItem {
        let n = self.next();
        CalendarItem {
            id: format!(
                "AAMkA{}",
                base64::engine::general_purpose::STANDARD.encode(format!("{mailbox}/{n:010}"))
            ),
            change_key: self.next_change_key(),
            mailbox: mailbox.to_owned(),
            subject: subject.to_owned(),
            body: None,
            start,
            end,
            location: None,
            all_day: false,
            cancelled: false,
            show_as: "Busy".into(),
            sensitivity: "Normal".into(),
            reminder_set: true,
            start_time_zone: None,
            end_time_zone: None,
            extended: Vec::new(),
        }
    }

    // ---- authentication ----

    fn authenticate(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<Principal, Reply> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ntlm_token = auth
            .strip_prefix("NTLM ")
            .or_else(|| auth.strip_prefix("Negotiate "));
        if let Some(token) = ntlm_token {
            if !self.opts.auth.ntlm {
                return Err(self.unauthorized(None));
            }
            return self.ntlm(peer, token.trim());
        }
        if let Some(encoded) = auth.strip_prefix("Basic ") {
            if !self.opts.auth.basic {
                // IIS with Basic off answers as if no credentials came, offering the others.
                return Err(self.unauthorized(None));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            if let Some((user, password)) = decoded.split_once(':') {
                let known = self
                    .opts
                    .users
                    .iter()
                    .any(|(u, p)| u.eq_ignore_ascii_case(user) && p == password);
                if known {
                    return Ok(Principal::User(user.to_lowercase()));
                }
            }
            return Err(self.unauthorized(None));
        }
        if let Some(token) = auth.strip_prefix("Bearer ") {
            if !self.opts.auth.oauth {
                return Err(self.unauthorized(None));
            }
            let tokens = lock(&self.tokens);
            return match tokens.get(token.trim()) {
                Some((client_id, expiry)) if *expiry > Instant::now() => {
                    Ok(Principal::App(client_id.clone()))
                }
                Some(_) => Err(self.unauthorized(Some("The token has expired."))),
                None => Err(self.unauthorized(Some("The token is invalid."))),
            };
        }
        if auth.is_empty() {
            if let Some(NtlmConnection::Authenticated(p)) = lock(&self.connections).get(&peer) {
                return Ok(p.clone());
            }
        }
        Err(self.unauthorized(None))
    }

    /// One leg of the NTLM handshake on the connection from `peer`.
    fn ntlm(&self, peer: SocketAddr, token: &str) -> Result<Principal, Reply> {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return Err(self.unauthorized(None));
        };
        match ntlm::message_type(&bytes) {
            Some(1) => {
                if ntlm::read_negotiate(&bytes).is_err() {
                    return Err(self.unauthorized(None));
                }
                let server_challenge: [u8; 8] = rand::random();
                lock(&self.connections).insert(peer, NtlmConnection::Challenged(server_challenge));
                let domain = &self.opts.auth.domain;
                let names = ntlm::ServerNames {
                    nb_domain: domain.to_uppercase(),
                    nb_computer: "EX01".into(),
                    dns_domain: format!("{}.local", domain.to_lowercase()),
                    dns_computer: format!("ex01.{}.local", domain.to_lowercase()),
                };
                let message = ntlm::challenge(server_challenge, &names, filetime_now());
                let challenge = base64::engine::general_purpose::STANDARD.encode(message);
                Err(Reply {
                    status: StatusCode::UNAUTHORIZED,
                    body: String::new(),
                    headers: vec![(header::WWW_AUTHENTICATE, format!("NTLM {challenge}"))],
                })
            }
            Some(3) => {
                // Only the connection that received the challenge may answer it, once.
                let state = lock(&self.connections).remove(&peer);
                let Some(NtlmConnection::Challenged(server_challenge)) = state else {
                    return Err(self.unauthorized(None));
                };
                let Ok(auth) = ntlm::read_authenticate(&bytes) else {
                    return Err(self.unauthorized(None));
                };
                let Some((login, password)) = self.windows_account(&auth.user, &auth.domain) else {
                    return Err(self.unauthorized(None));
                };
                if ntlm::verify_v2(&auth, server_challenge, &password).is_err() {
                    return Err(self.unauthorized(None));
                }
                if let Some(expected) = *lock(&self.channel_binding) {
                    let sent = ntlm::channel_binding_of(&auth);
                    if self.opts.auth.extended_protection && sent.as_deref() != Some(&expected[..])
                    {
                        return Err(self.unauthorized(None));
                    }
                }
                let principal = Principal::User(login);
                self.ntlm_handshakes.fetch_add(1, Ordering::SeqCst);
                lock(&self.connections)
                    .insert(peer, NtlmConnection::Authenticated(principal.clone()));
                Ok(principal)
            }
            _ => Err(self.unauthorized(None)),
        }
    }

    /// The account (login, password) of an NTLM user: `user@domain` as a UPN with an empty
    /// domain, or the local part of a login with the organisation's NetBIOS domain.
    fn windows_account(&self, user: &str, domain: &str) -> Option<(String, String)> {
        self.opts.users.iter().find_map(|(login, password)| {
            let matches = if domain.is_empty() {
                login.eq_ignore_ascii_case(user)
            } else {
                let local = login.split('@').next().unwrap_or(login);
                local.eq_ignore_ascii_case(user)
                    && domain.eq_ignore_ascii_case(&self.opts.auth.domain)
            };
            matches.then(|| (login.to_lowercase(), password.clone()))
        })
    }

    /// HTTP 401 offering the schemes the virtual directory accepts.
    fn unauthorized(&self, error: Option<&str>) -> Reply {
        unauthorized(&self.opts.auth, error)
    }

    fn may_impersonate(&self, principal: &Principal, mailbox: &str) -> bool {
        let p = principal.name().to_lowercase();
        !lock(&self.revoked).contains(&p) && !lock(&self.denied).contains(&(p, mailbox.to_owned()))
    }

    /// Whether the acting mailbox may open `owner`'s calendar.
    fn may_open(&self, acting: &str, owner: &str) -> bool {
        acting == owner
            || lock(&self.delegates)
                .get(acting)
                .is_some_and(|owners| owners.contains(owner))
    }

    fn server_rank(&self) -> usize {
        version_rank(&self.opts.server_version).unwrap_or(SCHEMA_VERSIONS.len())
    }

    // ---- EWS ----

    fn handle(&self, peer: SocketAddr, headers: &HeaderMap, body: &str) -> (Option<String>, Reply) {
        let principal = match self.authenticate(peer, headers) {
            Ok(p) => p,
            Err(reply) => return (None, reply),
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("text/xml") {
            return (
                None,
                Reply {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    body: String::new(),
                    headers: Vec::new(),
                },
            );
        }
        let doc = match parse(body) {
            Ok(doc) => doc,
            Err(e) => {
                return (
                    None,
                    fault(
                        "ErrorSchemaValidation",
                        &format!("The request failed schema validation: {e}"),
                        &[],
                    ),
                )
            }
        };
        if !doc.is(SOAP_NS, "Envelope") {
            return (
                None,
                fault(
                    "ErrorSchemaValidation",
                    "The request failed schema validation: the root element is not a SOAP 1.1 Envelope.",
                    &[],
                ),
            );
        }
        let Some(operation) = doc.child(SOAP_NS, "Body").and_then(|b| b.children.first()) else {
            return (
                None,
                fault(
                    "ErrorSchemaValidation",
                    "The request failed schema validation: the SOAP Body holds no operation.",
                    &[],
                ),
            );
        };
        let op_name = Some(operation.name.clone());
        let soap_header = doc.child(SOAP_NS, "Header");
        let requested_rank = soap_header
            .and_then(|h| h.child(TYPES_NS, "RequestServerVersion"))
            .and_then(|v| version_rank(v.attr("Version").unwrap_or_default()))
            .unwrap_or(0);
        if let Some(zone) = soap_header.and_then(|h| h.child(TYPES_NS, "TimeZoneContext")) {
            let id = zone
                .child(TYPES_NS, "TimeZoneDefinition")
                .and_then(|d| d.attr("Id"));
            if id.is_none_or(|i| i.trim().is_empty()) {
                return (
                    op_name,
                    schema_fault("TimeZoneContext needs a TimeZoneDefinition with an Id"),
                );
            }
        }
        if let Some(version) = soap_header.and_then(|h| h.child(TYPES_NS, "RequestServerVersion")) {
            let value = version.attr("Version").unwrap_or_default();
            match version_rank(value) {
                None => {
                    return (
                        op_name,
                        fault(
                            "ErrorSchemaValidation",
                            &format!(
                                "The request failed schema validation: The 'Version' attribute is invalid - The value '{value}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:ExchangeVersionType' - The Enumeration constraint failed."
                            ),
                            &[],
                        ),
                    )
                }
                Some(rank) if rank > self.server_rank() => {
                    return (
                        op_name,
                        fault(
                            "ErrorInvalidServerVersion",
                            "The specified server version is invalid.",
                            &[],
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        if operation.ns.as_deref() != Some(MESSAGES_NS) {
            return (
                op_name,
                fault(
                    "ErrorSchemaValidation",
                    &format!(
                        "The request failed schema validation: the element '{}' is not an EWS operation.",
                        operation.name
                    ),
                    &[],
                ),
            );
        }
        {
            let mut busy = lock(&self.busy);
            if busy.0 > 0 {
                busy.0 -= 1;
                let back_off = busy.1.to_string();
                return (
                    op_name,
                    fault(
                        "ErrorServerBusy",
                        "The server cannot service this request right now. Try again later.",
                        &[("BackOffMilliseconds", &back_off)],
                    ),
                );
            }
        }
        let impersonation = soap_header.and_then(|h| h.child(TYPES_NS, "ExchangeImpersonation"));
        let acting = match (impersonation, &principal) {
            (Some(imp), _) => {
                let sid = imp.child(TYPES_NS, "ConnectingSID");
                let address = sid
                    .and_then(|s| {
                        s.child_text(TYPES_NS, "PrimarySmtpAddress")
                            .or_else(|| s.child_text(TYPES_NS, "SmtpAddress"))
                    })
                    .map(str::to_lowercase);
                let Some(address) = address else {
                    return (
                        op_name,
                        fault(
                            "ErrorInvalidExchangeImpersonationHeaderData",
                            "The impersonation header must name the mailbox by PrimarySmtpAddress or SmtpAddress in this emulator.",
                            &[],
                        ),
                    );
                };
                if !self.mailboxes.contains(&address) {
                    return (
                        op_name,
                        fault(
                            "ErrorNonExistentMailbox",
                            "The SMTP address has no mailbox associated with it.",
                            &[("SmtpAddress", &address)],
                        ),
                    );
                }
                if !self.may_impersonate(&principal, &address) {
                    return (
                        op_name,
                        fault(
                            "ErrorImpersonateUserDenied",
                            "The account does not have permission to impersonate the requested user.",
                            &[],
                        ),
                    );
                }
                address
            }
            (None, Principal::User(login)) => login.clone(),
            (None, Principal::App(_)) => {
                return (
                    op_name,
                    fault(
                        "ErrorInvalidExchangeImpersonationHeaderData",
                        "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
                        &[],
                    ),
                )
            }
        };
        let older_mailbox = self
            .opts
            .mailbox_versions
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(&acting))
            .and_then(|(_, v)| version_rank(v));
        if older_mailbox.is_some_and(|rank| requested_rank > rank) {
            return (
                op_name,
                fault(
                    "ErrorInvalidSchemaVersionForMailboxVersion",
                    "The mailbox that was requested doesn't support the specified RequestServerVersion.",
                    &[],
                ),
            );
        }
        let reply = match operation.name.as_str() {
            "GetFolder" => self.get_folder(operation, &acting),
            "FindItem" => self.find_item(operation, &acting),
            "CreateItem" => self.create_item(operation, &acting, requested_rank),
            "UpdateItem" => self.update_item(operation, &acting, requested_rank),
            "DeleteItem" => self.delete_item(operation, &acting),
            other => Err(fault(
                "ErrorInvalidRequest",
                &format!("The request is valid but this emulator does not serve {other}."),
                &[],
            )),
        };
        (op_name, reply.unwrap_or_else(|fault| fault))
    }

    /// The mailbox whose calendar a folder id designates, for the acting mailbox.
    fn calendar_of(&self, folder: &El, acting: &str) -> Result<String, ItemError> {
        let owner = if folder.is(TYPES_NS, "DistinguishedFolderId") {
            if folder.attr("Id") != Some("calendar") {
                return Err(item_error(
                    "ErrorFolderNotFound",
                    "The specified folder could not be found in the store (this emulator holds calendars only).",
                ));
            }
            folder
                .path(&[(TYPES_NS, "Mailbox")])
                .and_then(|m| m.child_text(TYPES_NS, "EmailAddress"))
                .map(str::to_lowercase)
                .unwrap_or_else(|| acting.to_owned())
        } else if folder.is(TYPES_NS, "FolderId") {
            let id = folder.attr("Id").unwrap_or_default();
            match decode_folder_id(id) {
                Some(owner) => owner,
                None => return Err(item_error("ErrorInvalidIdMalformed", "Id is malformed.")),
            }
        } else {
            return Err(item_error("ErrorInvalidRequest", "The request is invalid."));
        };
        if !self.mailboxes.contains(&owner) {
            return Err(item_error(
                "ErrorNonExistentMailbox",
                "The SMTP address has no mailbox associated with it.",
            ));
        }
        if !self.may_open(acting, &owner) {
            return Err(item_error(
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        Ok(owner)
    }

    fn get_folder(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        let shape = op
            .path(&[(MESSAGES_NS, "FolderShape")])
            .and_then(|s| s.child_text(TYPES_NS, "BaseShape"));
        if !matches!(shape, Some("IdOnly" | "Default" | "AllProperties")) {
            return Err(schema_fault(
                "GetFolder needs FolderShape/BaseShape (IdOnly, Default or AllProperties)",
            ));
        }
        let Some(ids) = op
            .child(MESSAGES_NS, "FolderIds")
            .filter(|f| !f.children.is_empty())
        else {
            return Err(schema_fault("GetFolder needs FolderIds"));
        };
        let results: Vec<Result<String, ItemError>> = ids
            .children
            .iter()
            .map(|f| self.calendar_of(f, acting))
            .collect();
        Ok(self.answer("GetFolder", |w| {
            for r in &results {
                match r {
                    Ok(owner) => success(w, "m:GetFolderResponseMessage", |w| {
                        w.create_element("m:Folders").write_inner_content(|w| {
                            w.create_element("t:CalendarFolder")
                                .write_inner_content(|w| {
                                    w.create_element("t:FolderId")
                                        .with_attribute(("Id", folder_id(owner).as_str()))
                                        .with_attribute(("ChangeKey", "AgAAABYAAAA"))
                                        .write_empty()?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:GetFolderResponseMessage", e, Some("m:Folders"))?,
                }
            }
            Ok(())
        }))
    }

    fn find_item(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        if !matches!(
            op.attr("Traversal"),
            Some("Shallow" | "SoftDeleted" | "Associated")
        ) {
            return Err(schema_fault(
                "The required attribute 'Traversal' is missing or invalid",
            ));
        }
        let Some(shape) = op.child(MESSAGES_NS, "ItemShape") else {
            return Err(schema_fault("FindItem needs ItemShape"));
        };
        let base = shape.child_text(TYPES_NS, "BaseShape").unwrap_or_default();
        if !matches!(base, "IdOnly" | "Default" | "AllProperties") {
            return Err(schema_fault(
                "ItemShape/BaseShape must be IdOnly, Default or AllProperties",
            ));
        }
        let mut fields: Vec<String> = shape
            .child(TYPES_NS, "AdditionalProperties")
            .map(|p| {
                p.children_named(TYPES_NS, "FieldURI")
                    .filter_map(|f| f.attr("FieldURI").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if base != "IdOnly" {
            fields.extend(
                [
                    "item:Subject",
                    "calendar:Start",
                    "calendar:End",
                    "calendar:Location",
                ]
                .map(str::to_owned),
            );
        }
        if let Some(props) = shape.child(TYPES_NS, "AdditionalProperties") {
            for ext in props.children_named(TYPES_NS, "ExtendedFieldURI") {
                let (set_id, name) = extended_uri(ext).map_err(|e| schema_fault(&e.text))?;
                fields.push(format!("ext:{set_id}:{name}"));
            }
        }
        let body_asked = fields.iter().any(|f| f == "item:Body");
        let view = op.child(MESSAGES_NS, "CalendarView");
        let range = match view {
            Some(v) => {
                let start = v.attr("StartDate").and_then(parse_time);
                let end = v.attr("EndDate").and_then(parse_time);
                match (start, end) {
                    (Some(s), Some(e)) => Some((s, e)),
                    _ => {
                        return Err(schema_fault(
                            "CalendarView needs StartDate and EndDate as xs:dateTime",
                        ))
                    }
                }
            }
            None => None,
        };
        let max_entries = view
            .and_then(|v| v.attr("MaxEntriesReturned"))
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
            .min(self.opts.max_view_items);
        let Some(parents) = op
            .child(MESSAGES_NS, "ParentFolderIds")
            .filter(|p| !p.children.is_empty())
        else {
            return Err(schema_fault("FindItem needs ParentFolderIds"));
        };
        let results: Vec<Result<(Vec<CalendarItem>, usize), ItemError>> = parents
            .children
            .iter()
            .map(|folder| {
                if body_asked {
                    return Err(item_error(
                        "ErrorInvalidPropertyRequest",
                        "The property Body can't be used in FindItem requests.",
                    ));
                }
                let owner = self.calendar_of(folder, acting)?;
                if let Some((s, e)) = range {
                    if e < s {
                        return Err(item_error(
                            "ErrorInvalidRequest",
                            "The EndDate of the calendar view is earlier than its StartDate.",
                        ));
                    }
                }
                let mut items: Vec<CalendarItem> = lock(&self.items)
                    .values()
                    .filter(|i| i.mailbox == owner)
                    .filter(|i| range.is_none_or(|(s, e)| overlaps(i.start, i.end, s, e)))
                    .cloned()
                    .collect();
                items.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
                let total = items.len();
                items.truncate(max_entries);
                Ok((items, total))
            })
            .collect();
        Ok(self.answer("FindItem", |w| {
            for r in &results {
                match r {
                    Ok((items, total)) => success(w, "m:FindItemResponseMessage", |w| {
                        let complete = if items.len() == *total {
                            "true"
                        } else {
                            "false"
                        };
                        w.create_element("m:RootFolder")
                            .with_attribute(("TotalItemsInView", total.to_string().as_str()))
                            .with_attribute(("IncludesLastItemInRange", complete))
                            .write_inner_content(|w| {
                                w.create_element("t:Items").write_inner_content(|w| {
                                    for item in items {
                                        write_item(w, item, &fields)?;
                                    }
                                    Ok(())
                                })?;
                                Ok(())
                            })?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:FindItemResponseMessage", e, None)?,
                }
            }
            Ok(())
        }))
    }

    fn create_item(&self, op: &El, acting: &str, version: usize) -> Result<Reply, Reply> {
        let invitations = op.attr("SendMeetingInvitations");
        if invitations.is_some_and(|v| !SEND_VALUES.contains(&v)) {
            return Err(schema_fault("SendMeetingInvitations has an invalid value"));
        }
        let Some(items) = op
            .child(MESSAGES_NS, "Items")
            .filter(|i| !i.children.is_empty())
        else {
            return Err(schema_fault("CreateItem needs Items"));
        };
        let folder = op
            .child(MESSAGES_NS, "SavedItemFolderId")
            .and_then(|f| f.children.first());
        let owner = match folder {
            Some(f) => self.calendar_of(f, acting),
            None => Ok(acting.to_owned()),
        };
        let results: Vec<Result<CalendarItem, ItemError>> = items
            .children
            .iter()
            .map(|el| {
                let owner = owner.clone()?;
                if !el.is(TYPES_NS, "CalendarItem") {
                    return Err(item_error(
                        "ErrorInvalidRequest",
                        "This emulator creates calendar items only.",
                    ));
                }
                if invitations.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingInvitationsRequired",
                        "SendMeetingInvitations attribute is required for calendar items.",
                    ));
                }
                let (Some(start), Some(end)) = (
                    el.child_text(TYPES_NS, "Start").and_then(parse_time),
                    el.child_text(TYPES_NS, "End").and_then(parse_time),
                ) else {
                    return Err(item_error(
                        "ErrorInvalidRequest",
                        "This emulator needs Start and End as xs:dateTime on every calendar item.",
                    ));
                };
                if end < start {
                    return Err(item_error(
                        "ErrorCalendarEndDateIsEarlierThanStartDate",
                        "EndDate is earlier than StartDate",
                    ));
                }
                let mut item = self.new_item(
                    &owner,
                    &el.child(TYPES_NS, "Subject")
                        .map(|s| s.text.clone())
                        .unwrap_or_default(),
                    start,
                    end,
                );
                item.body = el.child(TYPES_NS, "Body").map(|b| b.text.clone());
                item.location = el.child(TYPES_NS, "Location").map(|l| l.text.clone());
                if let Some(set) = el.child_text(TYPES_NS, "ReminderIsSet") {
                    item.reminder_set = xs_bool(set);
                }
                if let Some(all_day) = el.child_text(TYPES_NS, "IsAllDayEvent") {
                    item.all_day = xs_bool(all_day);
                }
                for property in el.children_named(TYPES_NS, "ExtendedProperty") {
                    set_extended(&mut item, property)?;
                }
                for (name, slot) in [
                    ("StartTimeZone", &mut item.start_time_zone),
                    ("EndTimeZone", &mut item.end_time_zone),
                ] {
                    if let Some(zone) = el.child(TYPES_NS, name) {
                        *slot = Some(time_zone_id(zone, version)?);
                    }
                }
                lock(&self.items).insert(item.id.clone(), item.clone());
                Ok(item)
            })
            .collect();
        Ok(self.answer("CreateItem", |w| {
            for r in &results {
                match r {
                    Ok(item) => success(w, "m:CreateItemResponseMessage", |w| {
                        w.create_element("m:Items")
                            .write_inner_content(|w| write_item(w, item, &[]))?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:CreateItemResponseMessage", e, Some("m:Items"))?,
                }
            }
            Ok(())
        }))
    }

    /// The item `id` if the acting mailbox may write it.
    fn writable(&self, id: &str, acting: &str) -> Result<CalendarItem, ItemError> {
        let item = lock(&self.items).get(id).cloned().ok_or_else(|| {
            item_error(
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            )
        })?;
        if !self.may_open(acting, &item.mailbox) {
            return Err(item_error(
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        Ok(item)
    }

    fn update_item(&self, op: &El, acting: &str, version: usize) -> Result<Reply, Reply> {
        let conflict = op.attr("ConflictResolution").unwrap_or_default();
        if !matches!(
            conflict,
            "NeverOverwrite" | "AutoResolve" | "AlwaysOverwrite"
        ) {
            return Err(schema_fault(
                "The required attribute 'ConflictResolution' is missing or invalid",
            ));
        }
        let notify = op.attr("SendMeetingInvitationsOrCancellations");
        if notify.is_some_and(|v| !UPDATE_SEND_VALUES.contains(&v)) {
            return Err(schema_fault(
                "SendMeetingInvitationsOrCancellations has an invalid value",
            ));
        }
        let Some(changes) = op
            .child(MESSAGES_NS, "ItemChanges")
            .filter(|c| !c.children.is_empty())
        else {
            return Err(schema_fault("UpdateItem needs ItemChanges"));
        };
        let results: Vec<Result<CalendarItem, ItemError>> = changes
            .children
            .iter()
            .map(|change| {
                let id_el = change
                    .child(TYPES_NS, "ItemId")
                    .ok_or_else(|| item_error("ErrorInvalidRequest", "ItemChange needs an ItemId in this emulator."))?;
                let mut item = self.writable(id_el.attr("Id").unwrap_or_default(), acting)?;
                if notify.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingInvitationsOrCancellationsRequired",
                        "SendMeetingInvitationsOrCancellations attribute is required for calendar items.",
                    ));
                }
                if conflict != "AlwaysOverwrite" {
                    match id_el.attr("ChangeKey") {
                        None => {
                            return Err(item_error(
                                "ErrorChangeKeyRequiredForWriteOperations",
                                "When making a write operation, the change key is required.",
                            ))
                        }
                        Some(ck) if ck != item.change_key => {
                            return Err(item_error(
                                "ErrorIrresolvableConflict",
                                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
                            ))
                        }
                        Some(_) => {}
                    }
                }
                let updates = change
                    .child(TYPES_NS, "Updates")
                    .ok_or_else(|| item_error("ErrorInvalidRequest", "ItemChange needs Updates."))?;
                for update in &updates.children {
                    let uri = update
                        .child(TYPES_NS, "FieldURI")
                        .and_then(|f| f.attr("FieldURI"))
                        .unwrap_or_default();
                    let value = update
                        .child(TYPES_NS, "CalendarItem")
                        .and_then(|c| c.children.first());
                    let set = update.is(TYPES_NS, "SetItemField");
                    let deleted = update.is(TYPES_NS, "DeleteItemField");
                    if let Some(ext) = update.child(TYPES_NS, "ExtendedFieldURI") {
                        let (set_id, name) = extended_uri(ext)?;
                        item.extended.retain(|(s, n, _)| !(s == &set_id && n == &name));
                        if set {
                            let property = value.filter(|v| v.is(TYPES_NS, "ExtendedProperty")).ok_or_else(|| {
                                item_error("ErrorIncorrectUpdatePropertyCount", "An object within a change description must contain one and only one property to modify.")
                            })?;
                            set_extended(&mut item, property)?;
                        }
                        continue;
                    }
                    if !set && !deleted {
                        return Err(item_error("ErrorInvalidRequest", "This emulator serves SetItemField and DeleteItemField only."));
                    }
                    if set && value.is_none() {
                        return Err(item_error("ErrorIncorrectUpdatePropertyCount", "An object within a change description must contain one and only one property to modify."));
                    }
                    let text = value.map(|v| v.text.clone());
                    match (uri, set) {
                        ("item:Subject", _) => item.subject = text.unwrap_or_default(),
                        ("item:Body", _) => item.body = text,
                        ("calendar:Location", _) => item.location = text,
                        ("calendar:IsAllDayEvent", true) => {
                            item.all_day = text.as_deref().is_some_and(xs_bool)
                        }
                        ("calendar:StartTimeZone", true) => {
                            item.start_time_zone = value.map(|z| time_zone_id(z, version)).transpose()?
                        }
                        ("calendar:EndTimeZone", true) => {
                            item.end_time_zone = value.map(|z| time_zone_id(z, version)).transpose()?
                        }
                        ("calendar:Start", true) => {
                            item.start = text.as_deref().and_then(parse_time).ok_or_else(|| {
                                item_error("ErrorInvalidRequest", "Start is not an xs:dateTime.")
                            })?
                        }
                        ("calendar:End", true) => {
                            item.end = text.as_deref().and_then(parse_time).ok_or_else(|| {
                                item_error("ErrorInvalidRequest", "End is not an xs:dateTime.")
                            })?
                        }
                        _ => {
                            return Err(item_error(
                                "ErrorInvalidPropertyRequest",
                                format!("This emulator cannot change {uri}."),
                            ))
                        }
                    }
                }
                if item.end < item.start {
                    return Err(item_error(
                        "ErrorCalendarEndDateIsEarlierThanStartDate",
                        "EndDate is earlier than StartDate",
                    ));
                }
                item.change_key = self.next_change_key();
                lock(&self.items).insert(item.id.clone(), item.clone());
                Ok(item)
            })
            .collect();
        Ok(self.answer("UpdateItem", |w| {
            for r in &results {
                match r {
                    Ok(item) => success(w, "m:UpdateItemResponseMessage", |w| {
                        w.create_element("m:Items")
                            .write_inner_content(|w| write_item(w, item, &[]))?;
                        w.create_element("m:ConflictResults")
                            .write_inner_content(|w| text_el(w, "t:Count", "0"))?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:UpdateItemResponseMessage", e, Some("m:Items"))?,
                }
            }
            Ok(())
        }))
    }

    fn delete_item(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        if !matches!(
            op.attr("DeleteType"),
            Some("HardDelete" | "SoftDelete" | "MoveToDeletedItems")
        ) {
            return Err(schema_fault(
                "The required attribute 'DeleteType' is missing or invalid",
            ));
        }
        let cancellations = op.attr("SendMeetingCancellations");
        if cancellations.is_some_and(|v| !SEND_VALUES.contains(&v)) {
            return Err(schema_fault(
                "SendMeetingCancellations has an invalid value",
            ));
        }
        let Some(ids) = op
            .child(MESSAGES_NS, "ItemIds")
            .filter(|i| !i.children.is_empty())
        else {
            return Err(schema_fault("DeleteItem needs ItemIds"));
        };
        let results: Vec<Result<(), ItemError>> = ids
            .children
            .iter()
            .map(|id| {
                let item = self.writable(id.attr("Id").unwrap_or_default(), acting)?;
                if cancellations.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingCancellationsRequired",
                        "SendMeetingCancellations attribute is required for calendar items.",
                    ));
                }
                lock(&self.items).remove(&item.id);
                Ok(())
            })
            .collect();
        Ok(self.answer("DeleteItem", |w| {
            for r in &results {
                match r {
                    Ok(()) => success(w, "m:DeleteItemResponseMessage", |_| Ok(()))?,
                    Err(e) => failure(w, "m:DeleteItemResponseMessage", e, None)?,
                }
            }
            Ok(())
        }))
    }

    /// A successful SOAP answer with `ServerVersionInfo`; `messages` writes the response
    /// messages.
    fn answer(
        &self,
        operation: &str,
        messages: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>,
    ) -> Reply {
        let (major, minor, build) = server_build(&self.opts.server_version);
        let written = write_doc(|w| {
            w.create_element("s:Envelope")
                .with_attribute(("xmlns:s", SOAP_NS))
                .write_inner_content(|w| {
                    w.create_element("s:Header").write_inner_content(|w| {
                        w.create_element("h:ServerVersionInfo")
                            .with_attribute(("MajorVersion", major))
                            .with_attribute(("MinorVersion", minor))
                            .with_attribute(("MajorBuildNumber", build.0))
                            .with_attribute(("MinorBuildNumber", build.1))
                            .with_attribute(("xmlns:h", TYPES_NS))
                            .with_attribute(("xmlns", TYPES_NS))
                            .write_empty()?;
                        Ok(())
                    })?;
                    w.create_element("s:Body").write_inner_content(|w| {
                        w.create_element(format!("m:{operation}Response").as_str())
                            .with_attribute(("xmlns:m", MESSAGES_NS))
                            .with_attribute(("xmlns:t", TYPES_NS))
                            .write_inner_content(|w| {
                                w.create_element("m:ResponseMessages")
                                    .write_inner_content(messages)?;
                                Ok(())
                            })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        });
        match written {
            Ok(body) => Reply::xml(StatusCode::OK, body),
            Err(e) => internal_fault(&e),
        }
    }
}

const SEND_VALUES: &[&str] = &["SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy"];
const UPDATE_SEND_VALUES: &[&str] = &[
    "SendToNone",
    "SendOnlyToAll",
    "SendOnlyToChanged",
    "SendToAllAndSaveCopy",
    "SendToChangedAndSaveCopy",
];

fn xs_bool(v: &str) -> bool {
    matches!(v.trim(), "true" | "1")
}

/// The (lower-case property set id, name) of a named String `ExtendedFieldURI`; this
/// emulator keeps no other kind.
fn extended_uri(uri: &El) -> Result<(String, String), ItemError> {
    match (
        uri.attr("PropertySetId"),
        uri.attr("PropertyName"),
        uri.attr("PropertyType"),
    ) {
        (Some(set), Some(name), Some("String")) => Ok((set.to_lowercase(), name.to_owned())),
        (_, _, None) => Err(item_error(
            "ErrorInvalidExtendedProperty",
            "The extended property attribute combination is invalid: PropertyType is required.",
        )),
        _ => Err(item_error(
            "ErrorInvalidExtendedProperty",
            "This emulator keeps named String extended properties (PropertySetId, PropertyName, PropertyType String) only.",
        )),
    }
}

fn set_extended(item: &mut CalendarItem, property: &El) -> Result<(), ItemError> {
    let uri = property
        .child(TYPES_NS, "ExtendedFieldURI")
        .ok_or_else(|| {
            item_error(
                "ErrorInvalidExtendedProperty",
                "An ExtendedProperty needs an ExtendedFieldURI.",
            )
        })?;
    let (set_id, name) = extended_uri(uri)?;
    let value = property.child_text(TYPES_NS, "Value").ok_or_else(|| {
        item_error(
            "ErrorInvalidExtendedPropertyValue",
            "The extended property value is invalid.",
        )
    })?;
    item.extended
        .retain(|(s, n, _)| !(s == &set_id && n == &name));
    item.extended.push((set_id, name, value.to_owned()));
    Ok(())
}

/// The Id of a `StartTimeZone`/`EndTimeZone`: elements of the Exchange 2010 schema.
fn time_zone_id(zone: &El, version: usize) -> Result<String, ItemError> {
    if version < version_rank("Exchange2010").unwrap_or(0) {
        return Err(item_error(
            "ErrorSchemaValidation",
            format!(
                "The element '{}' is not valid for the requested server version.",
                zone.name
            ),
        ));
    }
    zone.attr("Id")
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| item_error("ErrorTimeZone", "The time zone definition has no Id."))
}

fn version_rank(version: &str) -> Option<usize> {
    SCHEMA_VERSIONS.iter().position(|v| *v == version)
}

/// Major, minor and build numbers a server of that version reports.
fn server_build(version: &str) -> (&'static str, &'static str, (&'static str, &'static str)) {
    match version {
        "Exchange2007" | "Exchange2007_SP1" => ("8", "1", ("436", "0")),
        "Exchange2010" => ("14", "0", ("639", "21")),
        "Exchange2010_SP1" => ("14", "1", ("218", "15")),
        "Exchange2010_SP2" => ("14", "2", ("247", "5")),
        "Exchange2013" | "Exchange2013_SP1" => ("15", "0", ("847", "32")),
        _ => ("15", "1", ("2507", "6")),
    }
}

fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if start == end {
        start >= from && start < to
    } else {
        start < to && end > from
    }
}

/// Seconds since the epoch of an `xs:dateTime`; without an offset it is UTC.
fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn format_time(seconds: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn folder_id(owner: &str) -> String {
    format!(
        "AAMkAF{}",
        base64::engine::general_purpose::STANDARD.encode(format!("calendar:{owner}"))
    )
}

fn decode_folder_id(id: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(id.strip_prefix("AAMkAF")?)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("calendar:")
        .map(str::to_owned)
}

// ---- writing answers ----

type W = Writer<Vec<u8>>;

fn write_doc(f: impl FnOnce(&mut W) -> io::Result<()>) -> io::Result<String> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    f(&mut w)?;
    String::from_utf8(w.into_inner()).map_err(io::Error::other)
}

fn text_el(w: &mut W, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

fn success(
    w: &mut W,
    name: &str,
    payload: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("ResponseClass", "Success"))
        .write_inner_content(|w| {
            text_el(w, "m:ResponseCode", "NoError")?;
            payload(w)
        })?;
    Ok(())
}

/// A per-item error message, in the order of `ResponseMessageType`, with the empty payload
/// element real servers add.
fn failure(w: &mut W, name: &str, e: &ItemError, empty: Option<&str>) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("ResponseClass", "Error"))
        .write_inner_content(|w| {
            text_el(w, "m:MessageText", &e.text)?;
            text_el(w, "m:ResponseCode", e.code)?;
            text_el(w, "m:DescriptiveLinkKey", "0")?;
            if let Some(empty) = empty {
                w.create_element(empty).write_empty()?;
            }
            Ok(())
        })?;
    Ok(())
}

/// An item with the fields asked for, in schema order.
fn write_item(w: &mut W, item: &CalendarItem, fields: &[String]) -> io::Result<()> {
    let asked = |f: &str| fields.iter().any(|x| x == f);
    w.create_element("t:CalendarItem")
        .write_inner_content(|w| {
            w.create_element("t:ItemId")
                .with_attribute(("Id", item.id.as_str()))
                .with_attribute(("ChangeKey", item.change_key.as_str()))
                .write_empty()?;
            if asked("item:Subject") {
                text_el(w, "t:Subject", &item.subject)?;
            }
            if asked("item:Sensitivity") {
                text_el(w, "t:Sensitivity", &item.sensitivity)?;
            }
            for (set_id, name, value) in &item.extended {
                if asked(&format!("ext:{set_id}:{name}")) {
                    w.create_element("t:ExtendedProperty")
                        .write_inner_content(|w| {
                            w.create_element("t:ExtendedFieldURI")
                                .with_attribute(("PropertySetId", set_id.as_str()))
                                .with_attribute(("PropertyName", name.as_str()))
                                .with_attribute(("PropertyType", "String"))
                                .write_empty()?;
                            text_el(w, "t:Value", value)
                        })?;
                }
            }
            if asked("calendar:Start") {
                text_el(w, "t:Start", &format_time(item.start))?;
            }
            if asked("calendar:End") {
                text_el(w, "t:End", &format_time(item.end))?;
            }
            if asked("calendar:IsAllDayEvent") {
                text_el(
                    w,
                    "t:IsAllDayEvent",
                    if item.all_day { "true" } else { "false" },
                )?;
            }
            if asked("calendar:LegacyFreeBusyStatus") {
                text_el(w, "t:LegacyFreeBusyStatus", &item.show_as)?;
            }
            if asked("calendar:Location") {
                if let Some(location) = &item.location {
                    text_el(w, "t:Location", location)?;
                }
            }
            if asked("calendar:IsCancelled") {
                text_el(
                    w,
                    "t:IsCancelled",
                    if item.cancelled { "true" } else { "false" },
                )?;
            }
            Ok(())
        })?;
    Ok(())
}

/// A request-level SOAP fault on HTTP 500, shaped like the real ones.
fn fault(code: &str, text: &str, values: &[(&str, &str)]) -> Reply {
    let written = write_doc(|w| {
        w.create_element("s:Envelope")
            .with_attribute(("xmlns:s", SOAP_NS))
            .write_inner_content(|w| {
                w.create_element("s:Body").write_inner_content(|w| {
                    w.create_element("s:Fault").write_inner_content(|w| {
                        w.create_element("faultcode")
                            .with_attribute(("xmlns:a", TYPES_NS))
                            .write_text_content(BytesText::new(&format!("a:{code}")))?;
                        w.create_element("faultstring")
                            .with_attribute(("xml:lang", "en-US"))
                            .write_text_content(BytesText::new(text))?;
                        w.create_element("detail").write_inner_content(|w| {
                            w.create_element("e:ResponseCode")
                                .with_attribute(("xmlns:e", ERRORS_NS))
                                .write_text_content(BytesText::new(code))?;
                            w.create_element("e:Message")
                                .with_attribute(("xmlns:e", ERRORS_NS))
                                .write_text_content(BytesText::new(text))?;
                            if !values.is_empty() {
                                w.create_element("t:MessageXml")
                                    .with_attribute(("xmlns:t", TYPES_NS))
                                    .write_inner_content(|w| {
                                        for (name, value) in values {
                                            w.create_element("t:Value")
                                                .with_attribute(("Name", *name))
                                                .write_text_content(BytesText::new(value))?;
                                        }
                                        Ok(())
                                    })?;
                            }
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    });
    match written {
        Ok(body) => Reply::xml(StatusCode::INTERNAL_SERVER_ERROR, body),
        Err(e) => internal_fault(&e),
    }
}

fn schema_fault(why: &str) -> Reply {
    fault(
        "ErrorSchemaValidation",
        &format!("The request failed schema validation: {why}."),
        &[],
    )
}

fn internal_fault(e: &io::Error) -> Reply {
    Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: format!("emulator failure: {e}"),
        headers: vec![(header::CONTENT_TYPE, "text/plain".into())],
    }
}

fn unauthorized(auth: &ServerAuth, error: Option<&str>) -> Reply {
    let mut headers = Vec::new();
    if auth.ntlm {
        headers.push((header::WWW_AUTHENTICATE, "Negotiate".to_owned()));
        headers.push((header::WWW_AUTHENTICATE, "NTLM".to_owned()));
    }
    if auth.basic {
        headers.push((
            header::WWW_AUTHENTICATE,
            "Basic realm=\"127.0.0.1\"".to_owned(),
        ));
    }
    if auth.oauth {
        let bearer = match error {
            Some(_) => "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", error=\"invalid_token\"",
            None => "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\"",
        };
        headers.push((header::WWW_AUTHENTICATE, bearer.to_owned()));
        if let Some(reason) = error {
            headers.push((
                header::HeaderName::from_static("x-ms-diagnostics"),
                format!("2000001;reason=\"{reason}\";error_category=\"invalid_token\""),
            ));
        }
    }
    Reply {
        status: StatusCode::UNAUTHORIZED,
        body: "401 - Unauthorized: Access is denied due to invalid credentials.".to_owned(),
        headers,
    }
}

/// Now as a Windows FILETIME: 100 ns ticks since 1601-01-01.
fn filetime_now() -> u64 {
    const EPOCH_DIFFERENCE_SECS: u64 = 11_644_473_600;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since_unix.as_secs() + EPOCH_DIFFERENCE_SECS) * 10_000_000
        + u64::from(since_unix.subsec_nanos() / 100)
}

// ---- reading requests ----

/// An element of a request: namespace, local name, unqualified attributes, children, text.
#[derive(Debug, Clone, Default)]
struct El {
    ns: Option<String>,
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    fn child(&self, ns: &str, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a El> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    fn path(&self, steps: &[(&str, &str)]) -> Option<&El> {
        steps
            .iter()
            .try_fold(self, |el, (ns, name)| el.child(ns, name))
    }

    fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse(text: &str) -> Result<El, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<El> = Vec::new();
    let mut root = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("the XML is malformed: {e}"))?;
        match event {
            Event::Start(start) => {
                if root.is_some() || stack.len() > 128 {
                    return Err("unexpected element".into());
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => Some(n.into_inner().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(format!("the namespace prefix '{p}' is not declared"))
                    }
                };
                let mut attrs = Vec::new();
                for a in start.attributes() {
                    let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("malformed attribute: {e}"))?;
                    attrs.push((a.key.local_name().into_inner().to_owned(), v.into_owned()));
                }
                stack.push(El {
                    ns,
                    name: start.local_name().into_inner().to_owned(),
                    attrs,
                    ..El::default()
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::CData(c) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(|| format!("unknown entity &{};", r.xml10_content()))?
                        .to_owned(),
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&s);
                }
            }
            Event::DocType(_) => return Err("DTDs are not allowed in SOAP messages".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "the body is empty".to_owned())
}

/// Which part of a SOAP request a standalone document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A child of `soap:Header`: validate with `types.xsd`.
    Header,
    /// The first child of `soap:Body`: validate with `messages.xsd`.
    Operation,
}

/// A header element or the operation of a SOAP request, as a standalone document that
/// declares every namespace it inherited from the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapPart {
    pub kind: PartKind,
    /// Local name, e.g. `RequestServerVersion` or `CreateItem`.
    pub name: String,
    pub xml: String,
}

/// Splits a SOAP 1.1 request into its header elements and its operation, each a document of
/// its own, so that they can be validated against the EWS schemas (which do not describe the
/// envelope). Copies events as they are, so nothing the sender wrote is changed or escaped
/// again.
pub fn soap_parts(body: &str) -> Result<Vec<SoapPart>, String> {
    struct Open {
        name: String,
        decls: Vec<(String, String)>,
    }
    let mut reader = Reader::from_str(body);
    let mut stack: Vec<Open> = Vec::new();
    let mut parts = Vec::new();
    let mut current: Option<(PartKind, String, W, usize)> = None;
    let declarations = |start: &BytesStart<'_>| -> Result<Vec<(String, String)>, String> {
        let mut decls = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key.into_inner();
            if key == "xmlns" || key.starts_with("xmlns:") {
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                decls.push((key.to_owned(), v.into_owned()));
            }
        }
        Ok(decls)
    };
    let resolve = |stack: &[Open], qname: &str| -> Option<String> {
        let key = match qname.split_once(':') {
            Some((prefix, _)) => format!("xmlns:{prefix}"),
            None => "xmlns".to_owned(),
        };
        stack.iter().rev().find_map(|o| {
            o.decls
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        })
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s.clone()), false),
            Event::Empty(s) => (Some(s.clone()), true),
            _ => (None, false),
        };
        if let Some(start) = start {
            let qname = start.name().into_inner().to_owned();
            let decls = declarations(&start)?;
            if current.is_none() && stack.len() == 2 {
                let parent = &stack[1].name;
                let local = parent.rsplit(':').next().unwrap_or(parent).to_owned();
                let in_soap = resolve(&stack, parent).as_deref() == Some(SOAP_NS);
                let kind = match local.as_str() {
                    "Header" if in_soap => Some(PartKind::Header),
                    "Body"
                        if in_soap
                            && !parts
                                .iter()
                                .any(|p: &SoapPart| p.kind == PartKind::Operation) =>
                    {
                        Some(PartKind::Operation)
                    }
                    _ => None,
                };
                if let Some(kind) = kind {
                    // Every binding in scope that the element does not declare itself.
                    let mut inherited: Vec<(String, String)> = Vec::new();
                    for open in stack.iter().rev() {
                        for (k, v) in &open.decls {
                            if !decls.iter().any(|(d, _)| d == k)
                                && !inherited.iter().any(|(i, _)| i == k)
                            {
                                inherited.push((k.clone(), v.clone()));
                            }
                        }
                    }
                    let mut root = start.to_owned();
                    for (k, v) in &inherited {
                        root.push_attribute((k.as_str(), v.as_str()));
                    }
                    let mut w = Writer::new(Vec::new());
                    let local_name = qname.rsplit(':').next().unwrap_or(&qname).to_owned();
                    if empty {
                        w.write_event(Event::Empty(root))
                            .map_err(|e| e.to_string())?;
                        parts.push(SoapPart {
                            kind,
                            name: local_name,
                            xml: String::from_utf8(w.into_inner()).map_err(|e| e.to_string())?,
                        });
                    } else {
                        w.write_event(Event::Start(root))
                            .map_err(|e| e.to_string())?;
                        current = Some((kind, local_name, w, stack.len()));
                        stack.push(Open { name: qname, decls });
                    }
                    continue;
                }
            }
            if let Some((_, _, w, _)) = current.as_mut() {
                w.write_event(event.clone()).map_err(|e| e.to_string())?;
            }
            if !empty {
                stack.push(Open { name: qname, decls });
            }
            continue;
        }
        match event {
            Event::End(_) => {
                stack.pop();
                if let Some((_, _, w, _)) = current.as_mut() {
                    w.write_event(event.clone()).map_err(|e| e.to_string())?;
                }
                if current
                    .as_ref()
                    .is_some_and(|(_, _, _, depth)| *depth == stack.len())
                {
                    if let Some((kind, name, w, _)) = current.take() {
                        parts.push(SoapPart {
                            kind,
                            name,
                            xml: String::from_utf8(w.into_inner()).map_err(|e| e.to_string())?,
                        });
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {}
            other => {
                if let Some((_, _, w, _)) = current.as_mut() {
                    w.write_event(other).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    if current.is_some() || !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    Ok(parts)
}

// ---- HTTP ----

fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route(EWS_PATH, post(ews))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .with_state(state)
}

fn into_response(reply: Reply) -> Response {
    let mut response = (reply.status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn ews(
    State(state): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = state.enter();
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let (operation, reply) = state.handle(peer, &headers, &text);
    lock(&state.requests).push(CapturedRequest {
        operation,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: text,
        status: reply.status.as_u16(),
    });
    into_response(reply)
}

/// Percent-decoding of an `application/x-www-form-urlencoded` body.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// An error of the identity platform, in its JSON shape.
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: 0b7e1a52-0000-4000-8000-000000000000 Correlation ID: 5f3c7a10-0000-4000-8000-000000000000 Timestamp: 2025-01-01 00:00:00Z"
        ),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "0b7e1a52-0000-4000-8000-000000000000",
        "correlation_id": "5f3c7a10-0000-4000-8000-000000000000",
    });
    (status, axum::Json(body)).into_response()
}

async fn token(
    State(state): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = form_pairs(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // Client secret in the form or as HTTP Basic (client_secret_basic).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (field("client_id"), field("client_secret")),
    };
    if field("grant_type").as_deref() != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !state
        .opts
        .apps
        .iter()
        .any(|a| a.tenant.eq_ignore_ascii_case(&tenant))
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let client_id = client_id.unwrap_or_default();
    let Some(app) = state
        .opts
        .apps
        .iter()
        .find(|a| a.tenant.eq_ignore_ascii_case(&tenant) && a.client_id == client_id)
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        );
    };
    if secret.as_deref() != Some(app.client_secret.as_str()) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        );
    }
    if field("scope").as_deref() != Some(EWS_SCOPE) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope").unwrap_or_default()
            ),
        );
    }
    let n = state.next();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "eyJ0eXAiOiJKV1QifQ.{client_id}.{n}.{:?}",
        Instant::now()
    ));
    lock(&state.tokens).insert(
        token.clone(),
        (
            client_id.clone(),
            Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        ),
    );
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    axum::Json(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
        "ext_expires_in": TOKEN_LIFETIME_SECS,
        "access_token": token,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    /// One HTTP/1.1 exchange on `stream`: status and `WWW-Authenticate` values.
    fn exchange(stream: &mut TcpStream, authorization: Option<&str>) -> (u16, Vec<String>) {
        let body = "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id=\"calendar\"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>";
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "POST {EWS_PATH} HTTP/1.1\r\nHost: ex01\r\nContent-Type: text/xml; charset=utf-8\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let (head, length) = loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                break (head, end + 4 + length);
            }
        };
        while raw.len() < length {
            let n = stream.read(&mut buf).unwrap();
            raw.extend_from_slice(&buf[..n]);
        }
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let challenges = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        (status, challenges)
    }

    fn negotiate() -> String {
        let mut m = b"NTLMSSP\0\x01\0\0\0".to_vec();
        let flags = ntlm::NEGOTIATE_UNICODE | ntlm::NEGOTIATE_NTLM | ntlm::REQUEST_TARGET;
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[0; 16]);
        format!(
            "NTLM {}",
            base64::engine::general_purpose::STANDARD.encode(m)
        )
    }

    /// An NTLMv2 AUTHENTICATE_MESSAGE answering `challenge` (a `WWW-Authenticate` value).
    fn authenticate(challenge: &str, user: &str, domain: &str, password: &str) -> String {
        let c = base64::engine::general_purpose::STANDARD
            .decode(challenge.strip_prefix("NTLM ").unwrap())
            .unwrap();
        let server_challenge: [u8; 8] = c[24..32].try_into().unwrap();
        let info_len = u16::from_le_bytes([c[40], c[41]]) as usize;
        let info_off = u32::from_le_bytes(c[44..48].try_into().unwrap()) as usize;
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&filetime_now().to_le_bytes());
        blob.extend_from_slice(&[7; 8]);
        blob.extend_from_slice(&[0; 4]);
        blob.extend_from_slice(&c[info_off..info_off + info_len]);
        blob.extend_from_slice(&[0; 4]);
        let key = ntlm::ntowf_v2(password, user, domain);
        let mut nt = ntlm::hmac_md5(&key, &[&server_challenge, &blob]).to_vec();
        nt.extend_from_slice(&blob);
        let fields = [
            vec![0u8; 24],
            nt,
            ntlm::utf16(domain),
            ntlm::utf16(user),
            ntlm::utf16("WS"),
            Vec::new(),
        ];
        let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
        let mut payload = Vec::new();
        let mut offset = 72u32;
        for f in &fields {
            m.extend_from_slice(&(f.len() as u16).to_le_bytes());
            m.extend_from_slice(&(f.len() as u16).to_le_bytes());
            m.extend_from_slice(&offset.to_le_bytes());
            offset += f.len() as u32;
            payload.extend_from_slice(f);
        }
        let flags = ntlm::NEGOTIATE_UNICODE | ntlm::NEGOTIATE_NTLM;
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&payload);
        format!(
            "NTLM {}",
            base64::engine::general_purpose::STANDARD.encode(m)
        )
    }

    fn windows_only() -> EwsEmulator {
        EwsEmulator::start(EwsOptions {
            auth: ServerAuth::windows_only(),
            ..EwsOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn windows_only_vdir_refuses_basic_and_offers_negotiate_and_ntlm() {
        let ews = windows_only();
        let mut s = TcpStream::connect(ews.server.addr()).unwrap();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("svc@contoso.com:S3cret-pass")
        );
        let (status, offered) = exchange(&mut s, Some(&basic));
        assert_eq!(status, 401);
        assert_eq!(offered, ["Negotiate", "NTLM"]);
    }

    #[test]
    fn ntlm_authenticates_the_connection_that_was_challenged_and_no_other() {
        let ews = windows_only();
        let mut first = TcpStream::connect(ews.server.addr()).unwrap();
        let (status, offered) = exchange(&mut first, Some(&negotiate()));
        assert_eq!(status, 401);
        let challenge = offered[0].clone();
        assert!(challenge.starts_with("NTLM "), "{offered:?}");
        let answer = authenticate(&challenge, "svc", "CONTOSO", "S3cret-pass");

        // The right answer on another connection is refused, and spends the challenge.
        let mut other = TcpStream::connect(ews.server.addr()).unwrap();
        assert_eq!(exchange(&mut other, Some(&answer)).0, 401);
        assert_eq!(ews.ntlm_handshakes(), 0);

        // On the challenged connection it works; the connection stays authenticated.
        let (status, offered) = exchange(&mut first, Some(&negotiate()));
        assert_eq!(status, 401);
        let answer = authenticate(&offered[0], "svc", "CONTOSO", "S3cret-pass");
        assert_eq!(exchange(&mut first, Some(&answer)).0, 200);
        assert_eq!(exchange(&mut first, None).0, 200);
        assert_eq!(exchange(&mut other, None).0, 401);
        assert_eq!(ews.ntlm_handshakes(), 1);

        // A wrong password, or a UPN with a domain, is refused.
        let mut third = TcpStream::connect(ews.server.addr()).unwrap();
        let (_, offered) = exchange(&mut third, Some(&negotiate()));
        let wrong = authenticate(&offered[0], "svc", "CONTOSO", "wrong");
        assert_eq!(exchange(&mut third, Some(&wrong)).0, 401);
        let (_, offered) = exchange(&mut third, Some(&negotiate()));
        let upn = authenticate(&offered[0], "svc@contoso.com", "", "S3cret-pass");
        assert_eq!(exchange(&mut third, Some(&upn)).0, 200);
    }

    const REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>jane@contoso.com</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body><m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>R&amp;D &lt;x&gt;</t:Subject></t:CalendarItem></m:Items></m:CreateItem></soap:Body></soap:Envelope>"#;

    #[test]
    fn soap_parts_are_standalone_documents() {
        let parts = soap_parts(REQUEST).unwrap();
        let names: Vec<_> = parts.iter().map(|p| (p.kind, p.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (PartKind::Header, "RequestServerVersion"),
                (PartKind::Header, "ExchangeImpersonation"),
                (PartKind::Operation, "CreateItem")
            ]
        );
        for p in &parts {
            let doc = parse(&p.xml).unwrap();
            assert_eq!(doc.name, p.name);
        }
        let op = &parts[2].xml;
        assert!(
            op.starts_with("<m:CreateItem SendMeetingInvitations=\"SendToNone\""),
            "{op}"
        );
        assert!(
            op.contains("xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"")
        );
        assert!(
            op.contains("xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"")
        );
        assert!(op.contains("R&amp;D &lt;x&gt;"), "{op}");
        let doc = parse(op).unwrap();
        assert_eq!(
            doc.path(&[(MESSAGES_NS, "Items"), (TYPES_NS, "CalendarItem")])
                .unwrap()
                .child_text(TYPES_NS, "Subject"),
            Some("R&D <x>")
        );
    }

    #[test]
    fn form_bodies_are_decoded() {
        assert_eq!(
            form_pairs("scope=https%3A%2F%2Foutlook.office365.com%2F.default&a=b+c"),
            [
                ("scope".to_owned(), EWS_SCOPE.to_owned()),
                ("a".to_owned(), "b c".to_owned())
            ]
        );
    }

    #[test]
    fn versions_are_ranked_like_the_schema() {
        assert!(version_rank("Exchange2010_SP2") < version_rank("Exchange2013"));
        assert_eq!(version_rank("Exchange2019"), None);
    }
}
