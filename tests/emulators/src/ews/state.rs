//! The emulator's shared state: mailboxes and their calendar items, granted tokens,
//! NTLM connections, scripted faults and counters; who a request authenticated as, and
//! answers before they become HTTP responses.

use super::*;

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) opts: EwsOptions,
    /// Lower-case addresses of every mailbox.
    pub(super) mailboxes: HashSet<String>,
    pub(super) items: Mutex<BTreeMap<String, CalendarItem>>,
    pub(super) tokens: Mutex<HashMap<String, (String, Instant)>>,
    pub(super) tokens_issued: AtomicUsize,
    pub(super) denied: Mutex<HashSet<(String, String)>>,
    pub(super) revoked: Mutex<HashSet<String>>,
    pub(super) delegates: Mutex<HashMap<String, HashSet<String>>>,
    pub(super) busy: Mutex<(u32, u64)>,
    pub(super) latency_ms: AtomicU64,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) requests: Mutex<Vec<CapturedRequest>>,
    pub(super) counter: AtomicU64,
    /// NTLM state of each TCP connection, by the client's address and port.
    pub(super) connections: Mutex<HashMap<SocketAddr, NtlmConnection>>,
    pub(super) ntlm_handshakes: AtomicUsize,
    /// The channel binding of the TLS certificate, when serving TLS.
    pub(super) channel_binding: Mutex<Option<[u8; 16]>>,
}

/// Where a connection is in the NTLM handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NtlmConnection {
    /// A challenge was sent on this connection; only it may answer.
    Challenged([u8; 8]),
    /// The handshake succeeded: later requests on the connection act as this principal.
    Authenticated(Principal),
}

/// Counts a request in flight until dropped.
pub(super) struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Principal {
    /// A user's login, lower case; also its mailbox.
    User(String),
    /// An app's client id (app-only token).
    App(String),
}

impl Principal {
    pub(super) fn name(&self) -> &str {
        match self {
            Principal::User(u) | Principal::App(u) => u,
        }
    }
}

/// An answer before it becomes an HTTP response.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: String,
    pub(super) headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    pub(super) fn xml(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            body,
            headers: vec![(header::CONTENT_TYPE, "text/xml; charset=utf-8".into())],
        }
    }
}

/// A per-item error.
#[derive(Debug, Clone)]
pub(super) struct ItemError {
    pub(super) code: &'static str,
    pub(super) text: String,
}

pub(super) fn item_error(code: &'static str, text: impl Into<String>) -> ItemError {
    ItemError {
        code,
        text: text.into(),
    }
}

impl Shared {
    pub(super) fn new(opts: EwsOptions) -> Self {
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

    pub(super) fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    pub(super) fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn next_change_key(&self) -> String {
        let n = self.next();
        base64::engine::general_purpose::STANDARD.encode(format!("DwAAABYAAAA{n:08}"))
    }

    pub(super) fn new_item(
        &self,
        mailbox: &str,
        subject: &str,
        start: i64,
        end: i64,
    ) -> CalendarItem {
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
}
