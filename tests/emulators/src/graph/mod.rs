//! An emulator of Microsoft Graph v1.0 (Outlook calendar resources) and of the Microsoft
//! identity platform's token endpoint, for end-to-end tests of the `calendar-graph` plugin.
//!
//! It keeps calendars in memory and serves `GET /users/{id}/calendar`,
//! `GET /users/{id}/calendarView` (also under `/calendar/`), `POST /users/{id}/events`,
//! `GET`, `PATCH` and `DELETE /users/{id}/events/{event}` in the shapes Graph uses (see
//! `fixtures/graph/`), and refuses what Graph refuses:
//! - tokens: an unknown tenant (AADSTS90002), an unknown client id (AADSTS700016), a wrong
//!   secret (AADSTS7000215), an expired secret (AADSTS7000222), a scope other than
//!   `https://graph.microsoft.com/.default` (AADSTS1002012), in the identity platform's JSON;
//!   issued tokens are JWTs whose `roles` claim holds the app's application permissions;
//! - HTTP 401 `InvalidAuthenticationToken` without a bearer token it issued, or an expired one;
//! - HTTP 403 `ErrorAccessDenied` without the permission (`Calendars.Read*` to read,
//!   `Calendars.ReadWrite` to write), or when an application access policy leaves the
//!   mailbox out;
//! - HTTP 404 `ErrorInvalidUser` for an unknown mailbox, `ErrorItemNotFound` for an unknown
//!   event (or one of another mailbox);
//! - HTTP 400 for a calendar view without its time window or with a malformed one, an event
//!   without `start`/`end`, a malformed `dateTime`, an unknown time zone, an all-day event
//!   that does not run from midnight to midnight, a malformed extended property id;
//! - HTTP 429 `ApplicationThrottled` with `Retry-After` when a mailbox gets more than 4
//!   concurrent requests (MailboxConcurrency), or on demand ([`GraphEmulator::inject_throttling`]).
//!
//! Calendar views page with `@odata.nextLink` (`$top`, default 10, then `$skip`), return the
//! times in the zone of `Prefer: outlook.timezone` (UTC without it) and expand only the
//! single-value extended properties that `$expand=singleValueExtendedProperties($filter=id
//! eq '…')` names. Time zones are a fixed table of standard offsets (no daylight saving):
//! enough to tell UTC from a named zone, not a time zone database.

mod calendar;
mod errors;
mod fields;
mod http;
use errors::*;
use fields::*;
use http::*;

use crate::kit::serve::{self as server, RunningServer};
use crate::kit::{dates, lock};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The scope of every app-only Graph token.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Client id of the default app registration.
pub const DEFAULT_CLIENT_ID: &str = "0f7d3c2a-5b1e-4c9a-8e6f-3a2b1c0d9e8f";
/// Tenant of the default app registration.
pub const DEFAULT_TENANT: &str = "contoso.onmicrosoft.com";
/// Lifetime of issued tokens, in seconds (as the identity platform says: 3599).
pub const TOKEN_LIFETIME_SECS: u64 = 3599;
/// Concurrent requests Outlook resources serve per app and mailbox.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// Time zones the emulator knows, with their standard offset in minutes.
const ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT Standard Time", 0),
    ("Romance Standard Time", 60),
    ("W. Europe Standard Time", 60),
    ("Eastern Standard Time", -300),
    ("Pacific Standard Time", -480),
    ("Etc/UTC", 0),
    ("Europe/London", 0),
    ("Europe/Paris", 60),
    ("Europe/Berlin", 60),
    ("America/New_York", -300),
    ("America/Los_Angeles", -480),
];

/// An app registration of the emulated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphApp {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// Application permissions granted with admin consent (the token's `roles`).
    pub roles: Vec<String>,
}

/// Apps, mailboxes and behaviour of an emulated Microsoft 365 organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOptions {
    pub apps: Vec<GraphApp>,
    pub mailboxes: Vec<String>,
    /// Delay of every Graph answer, to make concurrency observable.
    pub latency_ms: u64,
}

impl Default for GraphOptions {
    fn default() -> Self {
        let mut mailboxes: Vec<String> = ["jane", "bob", "ceo"]
            .iter()
            .map(|m| format!("{m}@contoso.com"))
            .collect();
        mailboxes.extend((1..=20).map(|i| format!("user{i:02}@contoso.com")));
        GraphOptions {
            apps: vec![GraphApp {
                tenant: DEFAULT_TENANT.into(),
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: "graph-app-secret".into(),
                roles: vec!["Calendars.ReadWrite".into()],
            }],
            mailboxes,
            latency_ms: 0,
        }
    }
}

/// A Graph request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    pub method: String,
    /// Decoded path, e.g. `/v1.0/users/jane@contoso.com/events`.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
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

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub change_key: String,
    pub mailbox: String,
    pub subject: String,
    pub body: String,
    pub body_type: String,
    /// Seconds since the epoch.
    pub start: i64,
    pub end: i64,
    /// The zones the event was written in.
    pub start_zone: String,
    pub end_zone: String,
    pub is_all_day: bool,
    pub is_reminder_on: bool,
    pub location: String,
    /// Single-value extended properties, by id as written.
    pub properties: BTreeMap<String, String>,
}

/// A running Graph emulator; stops when dropped.
#[derive(Debug)]
pub struct GraphEmulator {
    server: RunningServer,
    state: Arc<Shared>,
}

impl GraphEmulator {
    /// Starts on `127.0.0.1` with a port chosen by the OS.
    pub fn start(opts: GraphOptions) -> io::Result<Self> {
        Self::start_on(opts, 0)
    }

    /// Starts on `127.0.0.1:port` (0: the OS chooses).
    pub fn start_on(opts: GraphOptions, port: u16) -> io::Result<Self> {
        let state = Arc::new(Shared::new(opts));
        let server = server::spawn_on(app(state.clone()), port)?;
        let base = server.url();
        *lock(&state.base_url) = base;
        Ok(GraphEmulator { server, state })
    }

    /// `http://127.0.0.1:PORT`, also the authority of the token endpoint.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The plugin's Graph URL.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.url())
    }

    /// The plugin's authority (token endpoint base).
    pub fn authority_url(&self) -> String {
        self.url()
    }

    pub fn options(&self) -> &GraphOptions {
        &self.state.opts
    }

    /// Every Graph request so far (token requests excluded), in arrival order.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// The most Graph requests ever in flight at once, all mailboxes together.
    pub fn max_concurrent(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once on one mailbox.
    pub fn max_concurrent_per_mailbox(&self) -> usize {
        self.state.max_per_mailbox.load(Ordering::SeqCst)
    }

    pub fn reset_max_concurrent(&self) {
        self.state.max_in_flight.store(0, Ordering::SeqCst);
        self.state.max_per_mailbox.store(0, Ordering::SeqCst);
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.state.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// The next `times` authenticated Graph requests get HTTP 429 `ApplicationThrottled`
    /// with `Retry-After: retry_after_secs`.
    pub fn inject_throttling(&self, times: u32, retry_after_secs: u64) {
        *lock(&self.state.throttle) = (times, retry_after_secs);
    }

    /// How many requests were answered 429 so far.
    pub fn throttled(&self) -> usize {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// An application access policy: `client_id` may open only these mailboxes.
    pub fn restrict_app(&self, client_id: &str, mailboxes: &[&str]) {
        lock(&self.state.policies).insert(
            client_id.to_owned(),
            mailboxes.iter().map(|m| m.to_lowercase()).collect(),
        );
    }

    /// The client secret of `client_id` expired (AADSTS7000222).
    pub fn expire_secret(&self, client_id: &str) {
        lock(&self.state.expired).insert(client_id.to_owned());
    }

    /// The events of a calendar, by start.
    pub fn events(&self, mailbox: &str) -> Vec<StoredEvent> {
        let mailbox = mailbox.to_lowercase();
        let mut events: Vec<StoredEvent> = lock(&self.state.events)
            .values()
            .filter(|e| e.mailbox == mailbox)
            .cloned()
            .collect();
        events.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        events
    }

    /// Adds an event as a user in Outlook would (UTC seconds); returns its id.
    pub fn add_event(&self, mailbox: &str, subject: &str, start: i64, end: i64) -> String {
        let mut event = self.state.new_event(&mailbox.to_lowercase());
        event.subject = subject.to_owned();
        event.start = start;
        event.end = end;
        let id = event.id.clone();
        lock(&self.state.events).insert(id.clone(), event);
        id
    }

    /// Changes an event as a user in Outlook would; `None` when there is no such event.
    pub fn edit_event(&self, id: &str, edit: impl FnOnce(&mut StoredEvent)) -> Option<()> {
        let mut events = lock(&self.state.events);
        let event = events.get_mut(id)?;
        edit(event);
        event.change_key = self.state.change_key();
        Some(())
    }

    /// Deletes an event as a user in Outlook would.
    pub fn remove_event(&self, id: &str) -> bool {
        lock(&self.state.events).remove(id).is_some()
    }

    /// Tokens granted by the token endpoint so far.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }
}

/// What an issued token stands for.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    roles: Vec<String>,
    expiry: Instant,
}

#[derive(Debug)]
struct Shared {
    opts: GraphOptions,
    base_url: Mutex<String>,
    mailboxes: HashSet<String>,
    events: Mutex<BTreeMap<String, StoredEvent>>,
    tokens: Mutex<HashMap<String, Grant>>,
    tokens_issued: AtomicUsize,
    policies: Mutex<HashMap<String, HashSet<String>>>,
    expired: Mutex<HashSet<String>>,
    throttle: Mutex<(u32, u64)>,
    throttled: AtomicUsize,
    latency_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    per_mailbox: Mutex<HashMap<String, usize>>,
    max_per_mailbox: AtomicUsize,
    requests: Mutex<Vec<CapturedRequest>>,
    counter: AtomicU64,
}

/// Counts a request in flight (overall and on its mailbox) until dropped.
struct InFlight<'a> {
    shared: &'a Shared,
    mailbox: Option<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(m) = &self.mailbox {
            if let Some(n) = lock(&self.shared.per_mailbox).get_mut(m) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests;
