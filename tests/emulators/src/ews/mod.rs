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

mod answers;
mod auth;
mod envelope;
mod http;
mod items;
mod operations;
mod soap;
mod state;
use state::*;

use answers::*;
use http::*;
use items::*;
pub use soap::*;

use crate::kit::serve::{self as server, RunningServer};
use crate::kit::xml;
use crate::kit::{dates, form, lock};
pub mod ntlm;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::reader::Reader;
use quick_xml::Writer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

impl Shared {
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

/// An element of a request, read by the kit's tree.
type El = xml::Element;

/// Reads a request; 129 levels of nesting at most, as before.
fn parse(text: &str) -> Result<El, String> {
    xml::parse(text, 129).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
