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

use crate::server::{self, RunningServer};
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
use std::sync::{Arc, Mutex, MutexGuard};
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// A Graph error reply.
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> GraphError {
    GraphError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

impl GraphError {
    /// Graph's OData error body, with the `innerError` Graph adds.
    fn into_response(self, counter: u64) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": "2025-03-01T08:00:00",
                    "request-id": format!("8d1b0a3e-0000-4000-8000-{counter:012}"),
                    "client-request-id": format!("8d1b0a3e-0000-4000-8000-{counter:012}"),
                }
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

type Answer = Result<(StatusCode, Option<Value>), GraphError>;

impl Shared {
    fn new(opts: GraphOptions) -> Self {
        Shared {
            latency_ms: AtomicU64::new(opts.latency_ms),
            mailboxes: opts.mailboxes.iter().map(|m| m.to_lowercase()).collect(),
            opts,
            base_url: Mutex::new(String::new()),
            events: Mutex::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            policies: Mutex::new(HashMap::new()),
            expired: Mutex::new(HashSet::new()),
            throttle: Mutex::new((0, 0)),
            throttled: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            per_mailbox: Mutex::new(HashMap::new()),
            max_per_mailbox: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    fn change_key(&self) -> String {
        let n = self.next();
        base64::engine::general_purpose::STANDARD.encode(format!("ZlnW4RIAV06KYYwl{n:012}"))
    }

    fn new_event(&self, mailbox: &str) -> StoredEvent {
        let n = self.next();
        StoredEvent {
            // Outlook ids are URL-safe base64 and may end with '='.
            id: format!(
                "AAMkAGI1{}=",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(format!("{mailbox}/{n:010}"))
            ),
            change_key: self.change_key(),
            mailbox: mailbox.to_owned(),
            subject: String::new(),
            body: String::new(),
            body_type: "text".into(),
            start: 0,
            end: 0,
            start_zone: "UTC".into(),
            end_zone: "UTC".into(),
            is_all_day: false,
            is_reminder_on: true,
            location: String::new(),
            properties: BTreeMap::new(),
        }
    }

    /// Counts a request in flight; `Err` past the mailbox's concurrency limit.
    fn enter(&self, mailbox: Option<&str>) -> (InFlight<'_>, bool) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut over = false;
        if let Some(m) = mailbox {
            let mut per = lock(&self.per_mailbox);
            let n = per.entry(m.to_owned()).or_insert(0);
            *n += 1;
            self.max_per_mailbox.fetch_max(*n, Ordering::SeqCst);
            over = *n > MAILBOX_CONCURRENCY;
        }
        (
            InFlight {
                shared: self,
                mailbox: mailbox.map(str::to_owned),
            },
            over,
        )
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Grant, GraphError> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(token) = auth.strip_prefix("Bearer ") else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ));
        };
        match lock(&self.tokens).get(token.trim()) {
            Some(grant) if grant.expiry > Instant::now() => Ok(grant.clone()),
            Some(_) => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )),
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )),
        }
    }

    /// The checks every mailbox request passes, in Graph's order.
    fn admit(&self, grant: &Grant, mailbox: &str, write: bool) -> Result<(), GraphError> {
        {
            let mut throttle = lock(&self.throttle);
            if throttle.0 > 0 {
                throttle.0 -= 1;
                self.throttled.fetch_add(1, Ordering::SeqCst);
                return Err(GraphError {
                    retry_after: Some(throttle.1),
                    ..error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                    )
                });
            }
        }
        if !self.mailboxes.contains(mailbox) {
            return Err(error(
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                format!("The requested user '{mailbox}' is invalid."),
            ));
        }
        let has = |role: &str| grant.roles.iter().any(|r| r == role);
        let allowed = if write {
            has("Calendars.ReadWrite")
        } else {
            has("Calendars.ReadWrite") || has("Calendars.Read") || has("Calendars.ReadBasic")
        };
        if !allowed {
            return Err(error(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        if let Some(allowed) = lock(&self.policies).get(&grant.client_id) {
            if !allowed.contains(mailbox) {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
                ));
            }
        }
        Ok(())
    }

    fn route(
        &self,
        method: &Method,
        segments: &[String],
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
        grant: &Grant,
    ) -> Answer {
        let mailbox = segments[2].to_lowercase();
        let rest: Vec<&str> = segments[3..].iter().map(String::as_str).collect();
        let write = !matches!(*method, Method::GET);
        self.admit(grant, &mailbox, write)?;
        let zone = prefer_zone(headers);
        match (method, rest.as_slice()) {
            (&Method::GET, ["calendar"]) => Ok((
                StatusCode::OK,
                Some(json!({
                    "@odata.context": format!("{}/v1.0/$metadata#users('{mailbox}')/calendar/$entity", lock(&self.base_url)),
                    "id": format!("AAMkAGI1calendar{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mailbox)),
                    "name": "Calendar",
                    "color": "auto",
                    "canEdit": true,
                    "canShare": true,
                    "canViewPrivateItems": true,
                    "owner": {"name": mailbox, "address": mailbox},
                })),
            )),
            (&Method::GET, ["calendarView"] | ["calendar", "calendarView"]) => {
                self.calendar_view(&mailbox, query, zone)
            }
            (&Method::POST, ["events"]) => self.create(&mailbox, body, zone),
            (&Method::GET, ["events", id]) => {
                let event = self.owned(&mailbox, id)?;
                Ok((StatusCode::OK, Some(self.render(&event, zone, query)?)))
            }
            (&Method::PATCH, ["events", id]) => self.update(&mailbox, id, body, zone),
            (&Method::DELETE, ["events", id]) => {
                self.owned(&mailbox, id)?;
                lock(&self.events).remove(*id);
                Ok((StatusCode::NO_CONTENT, None))
            }
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "Resource not found for the segment '{}'.",
                    rest.first().copied().unwrap_or_default()
                ),
            )),
        }
    }

    fn owned(&self, mailbox: &str, id: &str) -> Result<StoredEvent, GraphError> {
        lock(&self.events)
            .get(id)
            .filter(|e| e.mailbox == mailbox)
            .cloned()
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                )
            })
    }

    fn calendar_view(
        &self,
        mailbox: &str,
        query: &[(String, String)],
        zone: (String, i32),
    ) -> Answer {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (Some(start), Some(end)) = (param("startDateTime"), param("endDateTime")) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            ));
        };
        let bad = |name: &str, value: &str| {
            error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                format!("The value '{value}' of parameter '{name}' is invalid."),
            )
        };
        let from = parse_query_time(start).ok_or_else(|| bad("StartDateTime", start))?;
        let to = parse_query_time(end).ok_or_else(|| bad("EndDateTime", end))?;
        let top: usize = match param("$top") {
            Some(t) => t.parse().map_err(|_| bad("$top", t))?,
            None => 10,
        };
        let top = top.clamp(1, 1000);
        let skip: usize = match param("$skip") {
            Some(s) => s.parse().map_err(|_| bad("$skip", s))?,
            None => 0,
        };
        let mut matching: Vec<StoredEvent> = lock(&self.events)
            .values()
            .filter(|e| e.mailbox == mailbox && overlaps(e.start, e.end, from, to))
            .cloned()
            .collect();
        matching.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let page: Vec<Value> = matching
            .iter()
            .skip(skip)
            .take(top)
            .map(|e| self.render(e, zone.clone(), query))
            .collect::<Result<_, _>>()?;
        let base = lock(&self.base_url).clone();
        let mut out = json!({
            "@odata.context": format!("{base}/v1.0/$metadata#users('{mailbox}')/calendarView"),
            "value": page,
        });
        if skip + top < matching.len() {
            let mut pairs: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "$skip")
                .cloned()
                .collect();
            pairs.push(("$skip".into(), (skip + top).to_string()));
            let encoded = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            out["@odata.nextLink"] = Value::from(format!(
                "{base}/v1.0/users/{mailbox}/calendarView?{encoded}"
            ));
        }
        Ok((StatusCode::OK, Some(out)))
    }

    fn create(&self, mailbox: &str, body: &[u8], zone: (String, i32)) -> Answer {
        let fields = read_body(body)?;
        if !fields.contains_key("start") || !fields.contains_key("end") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorPropertyValidationFailure",
                "At least one property failed validation: start and end are required.",
            ));
        }
        let mut event = self.new_event(mailbox);
        event.is_reminder_on = true;
        apply(&mut event, &fields)?;
        let rendered = self.render(&event, zone, &[])?;
        lock(&self.events).insert(event.id.clone(), event);
        Ok((StatusCode::CREATED, Some(rendered)))
    }

    fn update(&self, mailbox: &str, id: &str, body: &[u8], zone: (String, i32)) -> Answer {
        let fields = read_body(body)?;
        let mut event = self.owned(mailbox, id)?;
        apply(&mut event, &fields)?;
        event.change_key = self.change_key();
        let rendered = self.render(&event, zone, &[])?;
        lock(&self.events).insert(event.id.clone(), event);
        Ok((StatusCode::OK, Some(rendered)))
    }

    /// The event's JSON: `$select`ed properties (all without one), times in `zone`, and
    /// the extended properties `$expand` names.
    fn render(
        &self,
        e: &StoredEvent,
        zone: (String, i32),
        query: &[(String, String)],
    ) -> Result<Value, GraphError> {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let time = |t: i64| json!({"dateTime": graph_time(t, zone.1), "timeZone": zone.0});
        let mut all = Map::new();
        all.insert(
            "@odata.etag".into(),
            Value::from(format!("W/\"{}\"", e.change_key)),
        );
        all.insert("id".into(), Value::from(e.id.clone()));
        all.insert("changeKey".into(), Value::from(e.change_key.clone()));
        all.insert("categories".into(), json!([]));
        all.insert(
            "originalStartTimeZone".into(),
            Value::from(e.start_zone.clone()),
        );
        all.insert(
            "originalEndTimeZone".into(),
            Value::from(e.end_zone.clone()),
        );
        all.insert("reminderMinutesBeforeStart".into(), Value::from(15));
        all.insert("isReminderOn".into(), Value::from(e.is_reminder_on));
        all.insert("subject".into(), Value::from(e.subject.clone()));
        all.insert(
            "bodyPreview".into(),
            Value::from(e.body.chars().take(255).collect::<String>()),
        );
        all.insert("isAllDay".into(), Value::from(e.is_all_day));
        all.insert("isCancelled".into(), Value::from(false));
        all.insert("showAs".into(), Value::from("busy"));
        all.insert("type".into(), Value::from("singleInstance"));
        all.insert(
            "body".into(),
            json!({"contentType": e.body_type, "content": e.body}),
        );
        all.insert("start".into(), time(e.start));
        all.insert("end".into(), time(e.end));
        all.insert(
            "location".into(),
            json!({"displayName": e.location, "locationType": "default", "uniqueIdType": "unknown"}),
        );
        let mut out = match param("$select") {
            Some(select) => {
                let wanted: HashSet<&str> = select.split(',').map(str::trim).collect();
                all.into_iter()
                    .filter(|(k, _)| k == "id" || k == "@odata.etag" || wanted.contains(k.as_str()))
                    .collect()
            }
            None => all,
        };
        if let Some(expand) = param("$expand") {
            let ids = expand_filter(expand).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Invalid $expand: '{expand}'; expected singleValueExtendedProperties($filter=id eq '{{id}}')."),
                )
            })?;
            let props: Vec<Value> = e
                .properties
                .iter()
                .filter(|(id, _)| ids.iter().any(|want| same_property(want, id)))
                .map(|(id, value)| json!({"id": id, "value": value}))
                .collect();
            // Graph leaves the collection out when no property matches.
            if !props.is_empty() {
                out.insert("singleValueExtendedProperties".into(), Value::from(props));
            }
        }
        Ok(Value::Object(out))
    }
}

fn read_body(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "UnableToDeserializePostBody",
            "were unable to deserialize ",
        )),
    }
}

/// Applies a create's or an update's properties to an event, checking them as Graph does.
fn apply(event: &mut StoredEvent, fields: &Map<String, Value>) -> Result<(), GraphError> {
    let invalid = |message: String| error(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", message);
    if let Some(v) = fields.get("subject") {
        event.subject = v.as_str().unwrap_or_default().to_owned();
    }
    if let Some(body) = fields.get("body") {
        let kind = body
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("html");
        if !kind.eq_ignore_ascii_case("text") && !kind.eq_ignore_ascii_case("html") {
            return Err(invalid(format!(
                "The value '{kind}' of bodyType is invalid."
            )));
        }
        event.body_type = kind.to_ascii_lowercase();
        event.body = body
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    if let Some(location) = fields.get("location") {
        event.location = location
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    if let Some(v) = fields.get("isReminderOn") {
        event.is_reminder_on = v.as_bool().unwrap_or(true);
    }
    if let Some(v) = fields.get("isAllDay") {
        event.is_all_day = v.as_bool().unwrap_or(false);
    }
    for (name, target, zone) in [
        ("start", &mut event.start, &mut event.start_zone),
        ("end", &mut event.end, &mut event.end_zone),
    ] {
        let Some(value) = fields.get(name) else {
            continue;
        };
        let date_time = value.get("dateTime").and_then(Value::as_str);
        let time_zone = value.get("timeZone").and_then(Value::as_str);
        let (Some(date_time), Some(time_zone)) = (date_time, time_zone) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorPropertyValidationFailure",
                format!(
                    "At least one property failed validation: {name} needs dateTime and timeZone."
                ),
            ));
        };
        let Some(offset) = zone_offset(time_zone) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "TimeZoneNotSupportedException",
                format!("A valid TimeZone value must be specified. The following TimeZone value is not supported: '{time_zone}'."),
            ));
        };
        let local = parse_local(date_time).ok_or_else(|| {
            invalid(format!("Cannot convert the literal '{date_time}' to the expected type 'Edm.DateTimeOffset'."))
        })?;
        if event.is_all_day && local.time() != Time::MIDNIGHT {
            return Err(invalid(
                "Your request can't be completed. An all-day event must start and end at midnight."
                    .into(),
            ));
        }
        *target = local.assume_offset(offset).unix_timestamp();
        *zone = time_zone.to_owned();
    }
    if event.end < event.start {
        return Err(invalid(
            "Your request can't be completed. The end time must be after the start time.".into(),
        ));
    }
    if let Some(props) = fields.get("singleValueExtendedProperties") {
        for p in props.as_array().into_iter().flatten() {
            let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
            if !is_property_id(id) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidProperty",
                    format!("The extended property id '{id}' is malformed; expected e.g. String {{66f5a359-4659-4830-9070-00047ec6ac6e}} Name Color."),
                ));
            }
            let value = p.get("value").and_then(Value::as_str).unwrap_or_default();
            event.properties.insert(id.to_owned(), value.to_owned());
        }
    }
    Ok(())
}

/// `Type {guid} Name x` or `Type {guid} Id 0x…`.
fn is_property_id(id: &str) -> bool {
    let parts: Vec<&str> = id.splitn(4, ' ').collect();
    let [kind, guid, tag, name] = parts.as_slice() else {
        return false;
    };
    let guid_ok = guid.len() == 38
        && guid.starts_with('{')
        && guid.ends_with('}')
        && guid[1..37]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-');
    [
        "String",
        "Integer",
        "Boolean",
        "SystemTime",
        "Binary",
        "Long",
        "Double",
        "CLSID",
    ]
    .contains(kind)
        && guid_ok
        && (*tag == "Name" || *tag == "Id")
        && !name.is_empty()
}

/// Graph compares the type and the GUID without case, the name with case.
fn same_property(a: &str, b: &str) -> bool {
    match (a.rsplit_once(' '), b.rsplit_once(' ')) {
        (Some((head_a, name_a)), Some((head_b, name_b))) => {
            head_a.eq_ignore_ascii_case(head_b) && name_a == name_b
        }
        _ => false,
    }
}

/// The ids of `singleValueExtendedProperties($filter=id eq 'x')` (several joined by `or`).
fn expand_filter(expand: &str) -> Option<Vec<String>> {
    let inner = expand
        .trim()
        .strip_prefix("singleValueExtendedProperties(")?
        .strip_suffix(')')?;
    let filter = inner.trim().strip_prefix("$filter=")?;
    filter
        .split(" or ")
        .map(|clause| {
            let value = clause.trim().strip_prefix("id eq ")?;
            let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(value.to_owned())
        })
        .collect()
}

/// `Prefer: outlook.timezone="…"`, when the zone is known; UTC otherwise.
fn prefer_zone(headers: &HeaderMap) -> (String, i32) {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let value = p.trim().strip_prefix("outlook.timezone=")?;
            let name = value.trim().trim_matches('"');
            let minutes = ZONES.iter().find(|(z, _)| z.eq_ignore_ascii_case(name))?.1;
            Some((name.to_owned(), minutes))
        })
        .unwrap_or_else(|| ("UTC".into(), 0))
}

fn zone_offset(name: &str) -> Option<UtcOffset> {
    let minutes = ZONES
        .iter()
        .find(|(z, _)| z.eq_ignore_ascii_case(name.trim()))?
        .1;
    UtcOffset::from_whole_seconds(minutes * 60).ok()
}

fn parse_local(s: &str) -> Option<PrimitiveDateTime> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s.trim(), &format).ok()
}

/// A calendar view bound: ISO 8601 with an offset, or without one (then UTC).
fn parse_query_time(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .ok()
        .or_else(|| parse_local(s).map(|t| t.assume_utc().unix_timestamp()))
}

/// Graph's `dateTime` form in a zone: `2017-04-15T11:00:00.0000000`.
fn graph_time(seconds: i64, offset_minutes: i32) -> String {
    let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(UtcOffset::UTC);
    let t = OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if start == end {
        start >= from && start < to
    } else {
        start < to && end > from
    }
}

/// Percent-encoding of a query name or value (`%20` for spaces, as OData asks).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'$' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .fallback(graph)
        .with_state(state)
}

async fn graph(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let mailbox = (segments.len() >= 3 && segments[0] == "v1.0" && segments[1] == "users")
        .then(|| segments[2].to_lowercase());
    let (_in_flight, over) = state.enter(mailbox.as_deref());
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let answer = match state.authenticate(&headers) {
        Err(e) => Err(e),
        Ok(_) if mailbox.is_none() => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "Resource not found for the segment '{}'.",
                segments.last().map(String::as_str).unwrap_or_default()
            ),
        )),
        Ok(_) if over => {
            state.throttled.fetch_add(1, Ordering::SeqCst);
            Err(GraphError {
                retry_after: Some(1),
                ..error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                )
            })
        }
        Ok(grant) => state.route(&method, &segments, &query, &headers, &body, &grant),
    };
    let counter = state.next();
    let response = match answer {
        Ok((status, Some(value))) => (status, Json(value)).into_response(),
        Ok((status, None)) => status.into_response(),
        Err(e) => e.into_response(counter),
    };
    lock(&state.requests).push(CapturedRequest {
        method: method.to_string(),
        path: format!("/{}", segments.join("/")),
        query,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
    });
    response
}

/// An error of the identity platform, in its JSON shape.
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: 0b7e1a52-0000-4000-8000-000000000000 Correlation ID: 5f3c7a10-0000-4000-8000-000000000000 Timestamp: 2025-01-01 00:00:00Z"
        ),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "0b7e1a52-0000-4000-8000-000000000000",
        "correlation_id": "5f3c7a10-0000-4000-8000-000000000000",
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(state): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
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
    let client_id = field("client_id");
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
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        );
    };
    if field("client_secret") != app.client_secret {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        );
    }
    if lock(&state.expired).contains(client_id) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
        );
    }
    if field("scope") != GRAPH_SCOPE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope")
            ),
        );
    }
    let n = state.next();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.emulator-signature-{n}",
        b64(&json!({"typ": "JWT", "alg": "RS256", "kid": "emulator"})),
        b64(&json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{tenant}/"),
            "appid": client_id,
            "tid": tenant,
            "roles": app.roles,
            "n": n,
        })),
    );
    lock(&state.tokens).insert(
        token.clone(),
        Grant {
            client_id: client_id.to_owned(),
            roles: app.roles.clone(),
            expiry: Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        },
    );
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({
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
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One HTTP/1.1 exchange over a plain socket: (status, JSON body or Null).
    fn call(
        emu: &GraphEmulator,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let mut stream = TcpStream::connect(emu.server.addr()).unwrap();
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let json = answer
            .find("\r\n\r\n")
            .and_then(|i| {
                let rest = &answer[i + 4..];
                // Chunked or not, the JSON object is between the outer braces.
                let (a, b) = (rest.find('{')?, rest.rfind('}')?);
                serde_json::from_str(&rest[a..=b]).ok()
            })
            .unwrap_or(Value::Null);
        (status, json)
    }

    fn token(emu: &GraphEmulator, secret: &str) -> (u16, Value) {
        let form = format!(
            "grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={secret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        );
        call(
            emu,
            "POST",
            &format!("/{DEFAULT_TENANT}/oauth2/v2.0/token"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &form,
        )
    }

    #[test]
    fn refuses_what_graph_refuses() {
        let emu = GraphEmulator::start(GraphOptions::default()).unwrap();
        let (status, body) = token(&emu, "wrong");
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215"));
        let (status, body) = call(
            &emu,
            "POST",
            "/nowhere.example/oauth2/v2.0/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "grant_type=client_credentials",
        );
        assert_eq!((status, &body["error_codes"][0]), (400, &json!(90002)));
        let (status, body) = token(&emu, "graph-app-secret");
        assert_eq!(status, 200, "{body}");
        let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
        let auth = [("Authorization", bearer.as_str())];

        let (status, body) = call(
            &emu,
            "GET",
            "/v1.0/users/jane@contoso.com/calendar",
            &[],
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("InvalidAuthenticationToken"))
        );
        assert!(body["error"]["innerError"]["request-id"].is_string());
        let (status, body) = call(
            &emu,
            "GET",
            "/v1.0/users/nobody@contoso.com/calendar",
            &auth,
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("ErrorInvalidUser"))
        );
        let (status, body) = call(
            &emu,
            "GET",
            "/v1.0/users/jane@contoso.com/calendarView",
            &auth,
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("ErrorInvalidParameter"))
        );
        let (status, _) = call(
            &emu,
            "GET",
            "/v1.0/users/jane@contoso.com/calendarView?startDateTime=soon&endDateTime=2025-04-01T00:00:00Z",
            &auth,
            "",
        );
        assert_eq!(status, 400);

        let post = |body: &str| {
            let headers = [auth[0], ("Content-Type", "application/json")];
            call(
                &emu,
                "POST",
                "/v1.0/users/jane@contoso.com/events",
                &headers,
                body,
            )
        };
        let (status, body) = post(r#"{"subject":"x"}"#);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("ErrorPropertyValidationFailure"))
        );
        let (status, _) = post(
            r#"{"subject":"x","start":{"dateTime":"tomorrow","timeZone":"UTC"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"}}"#,
        );
        assert_eq!(status, 400);
        let (status, body) = post(
            r#"{"subject":"x","start":{"dateTime":"2025-03-04T08:00:00","timeZone":"Mars/Olympus"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"}}"#,
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("TimeZoneNotSupportedException"))
        );
        let (status, _) = post(
            r#"{"subject":"x","isAllDay":true,"start":{"dateTime":"2025-03-04T08:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-05T00:00:00","timeZone":"UTC"}}"#,
        );
        assert_eq!(status, 400);
        let (status, created) = post(
            r#"{"subject":"Visit","start":{"dateTime":"2025-03-04T08:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"},"singleValueExtendedProperties":[{"id":"String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color","value":"Green"}]}"#,
        );
        assert_eq!(status, 201, "{created}");
        // The documentation's sample event has every property the emulator writes.
        let sample: Value =
            serde_json::from_str(include_str!("../../fixtures/graph/event_created.json")).unwrap();
        for key in created.as_object().unwrap().keys() {
            assert!(
                sample.get(key).is_some(),
                "{key} is not in Graph's sample event"
            );
        }
        let id = created["id"].as_str().unwrap();
        let (status, body) = call(
            &emu,
            "DELETE",
            &format!("/v1.0/users/bob@contoso.com/events/{id}"),
            &auth,
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("ErrorItemNotFound"))
        );

        // Extended properties come back only when $expand names them.
        let view = "/v1.0/users/jane@contoso.com/calendarView?startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-04-01T00:00:00Z";
        let (_, plain) = call(&emu, "GET", view, &auth, "");
        assert!(plain["value"][0]
            .get("singleValueExtendedProperties")
            .is_none());
        let expand = format!(
            "{view}&$expand=singleValueExtendedProperties(%24filter%3Did%20eq%20%27String%20%7B66f5a359-4659-4830-9070-00047ec6ac6e%7D%20Name%20Color%27)"
        );
        let (status, expanded) = call(&emu, "GET", &expand, &auth, "");
        assert_eq!(status, 200, "{expanded}");
        assert_eq!(
            expanded["value"][0]["singleValueExtendedProperties"][0]["value"],
            "Green"
        );

        // An application access policy that lets the app open no mailbox.
        emu.restrict_app(DEFAULT_CLIENT_ID, &[]);
        let (status, body) = call(&emu, "GET", view, &auth, "");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("ErrorAccessDenied"))
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AccessPolicy"));
    }

    #[test]
    fn more_than_four_requests_on_a_mailbox_are_throttled() {
        let emu = GraphEmulator::start(GraphOptions::default()).unwrap();
        let (_, body) = token(&emu, "graph-app-secret");
        let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
        emu.set_latency_ms(300);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        call(
                            &emu,
                            "GET",
                            "/v1.0/users/jane@contoso.com/calendar",
                            &[("Authorization", &bearer)],
                            "",
                        )
                        .0
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            2,
            "{statuses:?}"
        );
        assert_eq!(emu.throttled(), 2);
        let throttled = emu
            .requests()
            .into_iter()
            .find(|r| r.status == 429)
            .unwrap();
        assert_eq!(throttled.path, "/v1.0/users/jane@contoso.com/calendar");
    }

    #[test]
    fn expand_filters_and_property_ids_are_read_like_graph() {
        let id = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color";
        assert!(is_property_id(id));
        assert!(!is_property_id("String 66f5a359 Name Color"));
        assert_eq!(
            expand_filter(&format!(
                "singleValueExtendedProperties($filter=id eq '{id}')"
            )),
            Some(vec![id.to_owned()])
        );
        assert_eq!(expand_filter("attachments"), None);
        assert!(same_property(
            id,
            "string {66F5A359-4659-4830-9070-00047EC6AC6E} Name Color"
        ));
        assert!(!same_property(
            id,
            "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name color"
        ));
    }

    #[test]
    fn times_follow_the_zone_table() {
        assert_eq!(graph_time(1_741_075_200, 0), "2025-03-04T08:00:00.0000000");
        assert_eq!(graph_time(1_741_075_200, 60), "2025-03-04T09:00:00.0000000");
        assert_eq!(
            zone_offset("Romance Standard Time").map(|o| o.whole_minutes()),
            Some(60)
        );
        assert_eq!(zone_offset("Mars/Olympus"), None);
        assert_eq!(
            parse_query_time("2025-03-04T09:00:00+01:00"),
            Some(1_741_075_200)
        );
        assert_eq!(parse_query_time("2025-03-04T08:00:00"), Some(1_741_075_200));
        assert_eq!(percent_decode("AAMk%3D%2Fx"), "AAMk=/x");
    }
}
