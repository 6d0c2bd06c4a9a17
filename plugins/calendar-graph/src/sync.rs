//! `calendar.sync` over Microsoft Graph: makes each mailbox's calendar hold exactly the ERP's
//! appointments over the window, and reads back the events the ERP did not create. The
//! contract (input, output, counts, read-only foreign events) is the one `exchange-ews`
//! serves, so that an ERP can switch providers without noticing.
//!
//! Per mailbox: one calendar view over the window, in UTC, following `@odata.nextLink`, with
//! the ERP-id extended property expanded (the pull); then a POST, PATCH or DELETE per event
//! that differs (the push). The ERP id on the event is the truth about which appointment an
//! event is; the instance state only remembers a fingerprint of what was last written (a
//! calendar view cannot return bodies as written) and the event id, so that an event moved
//! out of the window is still found. Losing the state therefore costs nothing but a body
//! change that goes unnoticed once.
//!
//! Mailboxes run on scoped threads, at most `max_concurrency` at a time, and each mailbox
//! sends one request at a time: Graph allows 4 concurrent requests per mailbox. Credentials
//! or configuration errors stop the whole sync; a mailbox Graph will not open, or a request
//! that fails after the retries, stops that mailbox; other errors stop one appointment.

use crate::client::{encode, query, Failure, Graph};
use crate::config::{is_smtp_address, Config};
use crate::event::{
    output_time, overlaps, parse_rfc3339, utc, when, Content, Created, Event, Page, ERP_ID_PROPERTY,
};
use passerelle_plugin_api::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// State keys of the links: `appointment/<mailbox>/<erp id>`.
pub const LINK_PREFIX: &str = "appointment/";
/// Events per calendar view page.
const PAGE_SIZE: u32 = 100;
/// Pages read at most (10 000 events): a longer view means the window is too long.
const MAX_PAGES: usize = 100;

/// What the state remembers of a pushed appointment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub mailbox: String,
    pub erp_id: String,
    pub event_id: String,
    /// Of the content last written, to tell whether the ERP changed it.
    pub fingerprint: String,
    pub start: i64,
    pub end: i64,
}

/// The state key of an appointment's link.
pub fn link_key(mailbox: &str, erp_id: &str) -> String {
    format!("{}{}", mailbox_prefix(mailbox), escape(erp_id))
}

fn mailbox_prefix(mailbox: &str) -> String {
    format!("{LINK_PREFIX}{}/", escape(&mailbox.trim().to_lowercase()))
}

/// Keeps `/` as the only separator of a key.
fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

#[derive(Debug, Clone)]
struct Desired {
    erp_id: String,
    start: i64,
    end: i64,
    content: Content,
    fingerprint: String,
}

#[derive(Debug)]
struct MailboxPlan {
    address: String,
    desired: Vec<Desired>,
}

/// A checked input.
#[derive(Debug)]
struct Plan {
    from: i64,
    to: i64,
    mailboxes: Vec<MailboxPlan>,
}

fn invalid(field: String, message: String) -> PluginError {
    PluginError::invalid_input(format!("{field}: {message}")).with_field(field)
}

/// Text as Graph keeps it: `\n` line ends.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

impl Plan {
    fn new(input: &CalendarSyncInput) -> Result<Plan, PluginError> {
        if input.mailboxes.is_empty() {
            return Err(invalid(
                "mailboxes".into(),
                "no mailbox to synchronise; list at least one address".into(),
            ));
        }
        let from = parse_rfc3339(&input.window.start)
            .map_err(|e| invalid("window.start".into(), e))?
            .unix_timestamp();
        let to = parse_rfc3339(&input.window.end)
            .map_err(|e| invalid("window.end".into(), e))?
            .unix_timestamp();
        if to <= from {
            return Err(invalid(
                "window.end".into(),
                "the window must end after it starts".into(),
            ));
        }
        let mut mailboxes = Vec::new();
        let mut index_of = HashMap::new();
        for (i, address) in input.mailboxes.iter().enumerate() {
            let address = address.trim();
            if !is_smtp_address(address) {
                return Err(invalid(
                    format!("mailboxes[{i}]"),
                    format!(
                        "{address:?} is not a mailbox address; expected e.g. jane.doe@example.com"
                    ),
                ));
            }
            if index_of.insert(address.to_lowercase(), i).is_some() {
                return Err(invalid(
                    format!("mailboxes[{i}]"),
                    format!("{address} is listed twice"),
                ));
            }
            mailboxes.push(MailboxPlan {
                address: address.to_owned(),
                desired: Vec::new(),
            });
        }
        let mut seen = HashSet::new();
        for (i, a) in input.appointments.iter().enumerate() {
            let field = |name: &str| format!("appointments[{i}].{name}");
            if a.id.trim().is_empty() {
                return Err(invalid(field("id"), "the ERP id is empty".into()));
            }
            let Some(&m) = index_of.get(&a.mailbox.trim().to_lowercase()) else {
                return Err(invalid(
                    field("mailbox"),
                    format!("{:?} is not one of the mailboxes synchronised", a.mailbox),
                ));
            };
            if !seen.insert((m, a.id.clone())) {
                return Err(invalid(
                    field("id"),
                    format!("{:?} appears twice for {}", a.id, mailboxes[m].address),
                ));
            }
            let start_at = parse_rfc3339(&a.start).map_err(|e| invalid(field("start"), e))?;
            let end_at = parse_rfc3339(&a.end).map_err(|e| invalid(field("end"), e))?;
            let (start, end) = (start_at.unix_timestamp(), end_at.unix_timestamp());
            if end < start {
                return Err(invalid(
                    field("end"),
                    "the appointment ends before it starts".into(),
                ));
            }
            if !overlaps(start, end, from, to) {
                return Err(invalid(
                    field("start"),
                    format!(
                        "the appointment ({} to {}) is outside the window ({} to {})",
                        utc(start),
                        utc(end),
                        utc(from),
                        utc(to)
                    ),
                ));
            }
            let text = |t: Option<&str>| t.map(normalise).filter(|t| !t.trim().is_empty());
            let content = Content {
                subject: normalise(&a.subject),
                body: text(a.body.as_deref()),
                location: text(a.location.as_deref()),
                when: when(start_at, end_at),
            };
            let fingerprint = fingerprint(&content);
            mailboxes[m].desired.push(Desired {
                erp_id: a.id.clone(),
                start,
                end,
                content,
                fingerprint,
            });
        }
        Ok(Plan {
            from,
            to,
            mailboxes,
        })
    }
}

/// FNV-1a (64 bits) of the content: enough to notice that the ERP changed something.
fn fingerprint(c: &Content) -> String {
    let canonical = format!("{c:?}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Runs `calendar.sync`.
pub fn run(
    input: &CalendarSyncInput,
    config: &Config,
    host: &Host<'_>,
) -> Result<CalendarSyncOutput, PluginError> {
    let plan = Plan::new(input)?;
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let graph = Graph::new(config, host);
    // One token for every thread, fetched before they start.
    graph.token(false)?;
    let count = plan.mailboxes.len();
    let threads = usize::try_from(config.max_concurrency.max(1))
        .unwrap_or(1)
        .min(count);
    let next = AtomicUsize::new(0);
    let fatal: Mutex<Option<PluginError>> = Mutex::new(None);
    let results: Vec<Mutex<Option<MailboxSync>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let worker = || loop {
        if lock(&fatal).is_some() {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(mailbox) = plan.mailboxes.get(i) else {
            break;
        };
        let mut sync = Mailbox::new(&graph, host, config, &plan, mailbox);
        match sync.run() {
            Ok(()) => *lock(&results[i]) = Some(sync.out),
            Err(e) => {
                lock(&fatal).get_or_insert(e);
            }
        }
    };
    std::thread::scope(|scope| {
        // The calling thread is a worker too, so the sync runs even if no thread can start.
        for n in 1..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("graph-sync-{n}"))
                .spawn_scoped(scope, worker);
            if let Err(e) = spawned {
                host.log(
                    LogLevel::Warn,
                    format!("cannot start sync thread {n} ({e}); continuing with fewer"),
                );
                break;
            }
        }
        worker();
    });
    if let Some(e) = lock(&fatal).take() {
        return Err(e);
    }
    let mailboxes = results
        .into_iter()
        .zip(&plan.mailboxes)
        .map(|(r, m)| {
            r.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_else(|| MailboxSync {
                    mailbox: m.address.clone(),
                    errors: vec![CalendarSyncError {
                        appointment_id: None,
                        kind: ErrorKind::Internal,
                        message: "the mailbox was not synchronised".into(),
                    }],
                    ..MailboxSync::default()
                })
        })
        .collect();
    let (waits, waited) = graph.throttling();
    if waits > 0 {
        host.log(
            LogLevel::Info,
            format!(
                "Microsoft Graph throttled the sync {waits} time(s), {waited} ms of waiting in all"
            ),
        );
    }
    Ok(CalendarSyncOutput { mailboxes })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Errors that would fail every mailbox alike stop the whole sync.
fn is_fatal(e: &PluginError) -> bool {
    matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::Config)
}

/// Whether a failed write means the mailbox cannot go on (access, throttling past the
/// retries, no answer) rather than this one event being refused.
fn stops_mailbox(f: &Failure) -> bool {
    f.status == 0 || f.status == 401 || f.status == 403 || f.status == 429 || f.status >= 500
}

/// Why a mailbox stopped: the whole sync (Err) or this mailbox only (recorded).
type Step = Result<bool, PluginError>;

/// The sync of one mailbox.
struct Mailbox<'s, 'a, 'h> {
    graph: &'s Graph<'a, 'h>,
    host: &'s Host<'h>,
    config: &'s Config,
    plan: &'s Plan,
    mailbox: &'s MailboxPlan,
    /// `/users/{mailbox}`, encoded.
    user_path: String,
    out: MailboxSync,
}

impl<'s, 'a, 'h> Mailbox<'s, 'a, 'h> {
    fn new(
        graph: &'s Graph<'a, 'h>,
        host: &'s Host<'h>,
        config: &'s Config,
        plan: &'s Plan,
        mailbox: &'s MailboxPlan,
    ) -> Self {
        Mailbox {
            graph,
            host,
            config,
            plan,
            mailbox,
            user_path: format!("/users/{}", encode(&mailbox.address)),
            out: MailboxSync {
                mailbox: mailbox.address.clone(),
                ..MailboxSync::default()
            },
        }
    }

    fn run(&mut self) -> Result<(), PluginError> {
        let mailbox: &'s MailboxPlan = self.mailbox;
        let Some(view) = self.view()? else {
            return Ok(());
        };
        let links = match self
            .host
            .state_list::<Link>(&mailbox_prefix(&mailbox.address))
        {
            Ok(rows) => rows
                .into_iter()
                .map(|(_, link)| (link.erp_id.clone(), link))
                .collect::<BTreeMap<_, _>>(),
            Err(e) => {
                self.fail(
                    None,
                    PluginError::internal(format!(
                        "cannot read the links of this mailbox: {}",
                        e.message
                    )),
                );
                return Ok(());
            }
        };
        // The ERP's events as the calendar says (first one of an id wins; others are
        // duplicates left by an interrupted write, removed below).
        let mut ours: HashMap<&str, &Event> = HashMap::new();
        let mut duplicates: Vec<&Event> = Vec::new();
        for event in &view {
            if let Some(erp_id) = event.erp_id() {
                if ours.contains_key(erp_id) {
                    duplicates.push(event);
                } else {
                    ours.insert(erp_id, event);
                }
            }
        }
        let in_view: HashSet<&str> = view.iter().map(|e| e.id.as_str()).collect();
        let wanted: HashSet<&str> = mailbox.desired.iter().map(|d| d.erp_id.as_str()).collect();

        for d in &mailbox.desired {
            let link = links.get(&d.erp_id);
            let step = match ours.get(d.erp_id.as_str()) {
                Some(event) => {
                    let known = link.is_none_or(|l| l.fingerprint == d.fingerprint);
                    if known && d.content.shown_by(event) {
                        self.out.unchanged += 1;
                        if link.is_none_or(|l| l.event_id != event.id) {
                            // Found by its extended property after the state was lost.
                            self.save(&self.link(d, event.id.clone()));
                        }
                        Ok(true)
                    } else {
                        self.update(d, &event.id)
                    }
                }
                // Moved out of the window in Outlook, or deleted: the ERP still wants it.
                None => match link {
                    Some(link) => self.update(d, &link.event_id),
                    None => self.create(d),
                },
            };
            if !step? {
                return Ok(());
            }
        }

        let mut stale: Vec<(String, String)> = ours
            .iter()
            .filter(|(erp_id, _)| !wanted.contains(*erp_id))
            .map(|(erp_id, e)| ((*erp_id).to_owned(), e.id.clone()))
            .collect();
        stale.sort();
        stale.extend(
            links
                .values()
                .filter(|l| !wanted.contains(l.erp_id.as_str()))
                .filter(|l| !in_view.contains(l.event_id.as_str()))
                .filter(|l| overlaps(l.start, l.end, self.plan.from, self.plan.to))
                .map(|l| (l.erp_id.clone(), l.event_id.clone())),
        );
        for (erp_id, event_id) in stale {
            if !self.delete(&erp_id, &event_id, true)? {
                return Ok(());
            }
        }
        for event in duplicates {
            let erp_id = event.erp_id().unwrap_or_default().to_owned();
            if !self.delete(&erp_id, &event.id, false)? {
                return Ok(());
            }
        }

        self.out.events = view
            .iter()
            .filter(|e| e.erp_id().is_none())
            .map(|e| CalendarEvent {
                id: e.id.clone(),
                subject: e.subject.clone().unwrap_or_default(),
                start: output_time(e.start.as_ref()),
                end: output_time(e.end.as_ref()),
                location: e.location().map(str::to_owned),
                all_day: e.is_all_day,
                cancelled: e.is_cancelled,
                show_as: e.show_as.clone(),
                sensitivity: e.sensitivity.clone(),
            })
            .collect();
        Ok(())
    }

    /// Every event of the window, or `None` when the mailbox failed.
    fn view(&mut self) -> Result<Option<Vec<Event>>, PluginError> {
        let expand = format!("singleValueExtendedProperties($filter=id eq '{ERP_ID_PROPERTY}')");
        let top = PAGE_SIZE.to_string();
        let (from, to) = (utc(self.plan.from), utc(self.plan.to));
        let first = format!(
            "{}/calendarView{}",
            self.user_path,
            query(&[
                ("startDateTime", &from),
                ("endDateTime", &to),
                (
                    "$select",
                    "subject,start,end,location,isAllDay,isCancelled,showAs,sensitivity",
                ),
                ("$expand", &expand),
                ("$top", &top),
            ])
        );
        let mut request = self.graph.request(Method::Get, &first);
        let mut events = Vec::new();
        for _ in 0..MAX_PAGES {
            request = request.header("Prefer", "outlook.timezone=\"UTC\"");
            let response =
                match self
                    .graph
                    .send(&request, Idempotency::Idempotent, &self.mailbox.address)
                {
                    Ok(r) => r,
                    Err(f) => {
                        self.stop(f)?;
                        return Ok(None);
                    }
                };
            let page: Page = match response.json() {
                Ok(p) => p,
                Err(e) => {
                    self.fail(None, e);
                    return Ok(None);
                }
            };
            events.extend(page.value);
            match page.next_link {
                // The link is used as Graph gave it (it carries a skip token).
                Some(next) => {
                    request = HttpRequest::get(next)
                        .header("Accept", "application/json")
                        .timeout_ms(self.config.timeout_ms());
                }
                None => return Ok(Some(events)),
            }
        }
        self.fail(
            None,
            PluginError::invalid_input(format!(
                "the calendar holds more than {} events in the window; synchronise a shorter \
                 window",
                MAX_PAGES * PAGE_SIZE as usize
            )),
        );
        Ok(None)
    }

    fn create(&mut self, d: &Desired) -> Step {
        let body = d.content.to_json(&d.erp_id, self.config.time_zone());
        let request = self
            .graph
            .request(Method::Post, &format!("{}/events", self.user_path))
            .json(&body)?;
        match self
            .graph
            .send(&request, Idempotency::NotIdempotent, &self.mailbox.address)
        {
            Ok(response) => match response.json::<Created>() {
                Ok(created) => {
                    self.save(&self.link(d, created.id));
                    self.out.created += 1;
                }
                Err(e) => self.fail(Some(&d.erp_id), e),
            },
            Err(f) => return self.item_failed(&d.erp_id, f),
        }
        Ok(true)
    }

    fn update(&mut self, d: &Desired, event_id: &str) -> Step {
        let body = d.content.to_json(&d.erp_id, self.config.time_zone());
        let request = self
            .graph
            .request(
                Method::Patch,
                &format!("{}/events/{}", self.user_path, encode(event_id)),
            )
            .json(&body)?;
        match self
            .graph
            .send(&request, Idempotency::Idempotent, &self.mailbox.address)
        {
            Ok(_) => {
                self.save(&self.link(d, event_id.to_owned()));
                self.out.updated += 1;
                Ok(true)
            }
            // Deleted in Outlook: the ERP still wants it.
            Err(f) if f.status == 404 => {
                let _ = self
                    .host
                    .state_delete(&link_key(&self.mailbox.address, &d.erp_id));
                self.create(d)
            }
            Err(f) => self.item_failed(&d.erp_id, f),
        }
    }

    /// Deletes an event; `counted` when it is an appointment the ERP dropped (a duplicate
    /// is cleanup, not a deletion the ERP asked for).
    fn delete(&mut self, erp_id: &str, event_id: &str, counted: bool) -> Step {
        let request = self.graph.request(
            Method::Delete,
            &format!("{}/events/{}", self.user_path, encode(event_id)),
        );
        match self
            .graph
            .send(&request, Idempotency::Idempotent, &self.mailbox.address)
        {
            Ok(_) => {}
            Err(f) if f.status == 404 => {}
            Err(f) => return self.item_failed(erp_id, f),
        }
        if !counted {
            return Ok(true);
        }
        if let Err(e) = self
            .host
            .state_delete(&link_key(&self.mailbox.address, erp_id))
        {
            self.fail(
                Some(erp_id),
                PluginError::internal(format!(
                    "deleted, but the link could not be forgotten: {}",
                    e.message
                )),
            );
            return Ok(true);
        }
        self.out.deleted += 1;
        Ok(true)
    }

    /// Records a failed write: on the appointment, or on the mailbox when it cannot go on.
    fn item_failed(&mut self, erp_id: &str, f: Failure) -> Step {
        if stops_mailbox(&f) {
            self.stop(f)?;
            return Ok(false);
        }
        self.fail(Some(erp_id), f.error);
        Ok(true)
    }

    /// Records a failure of the whole mailbox, or stops the sync when every mailbox would
    /// fail alike.
    fn stop(&mut self, f: Failure) -> Result<(), PluginError> {
        if is_fatal(&f.error) {
            return Err(f.error);
        }
        self.fail(None, f.error);
        Ok(())
    }

    fn link(&self, d: &Desired, event_id: String) -> Link {
        Link {
            mailbox: self.mailbox.address.to_lowercase(),
            erp_id: d.erp_id.clone(),
            event_id,
            fingerprint: d.fingerprint.clone(),
            start: d.start,
            end: d.end,
        }
    }

    fn save(&mut self, link: &Link) {
        if let Err(e) = self
            .host
            .state_put(&link_key(&link.mailbox, &link.erp_id), link)
        {
            self.fail(
                Some(&link.erp_id),
                PluginError::internal(format!(
                    "written to the calendar, but the link could not be saved ({}); the next \
                     sync finds the event by its ERP id",
                    e.message
                )),
            );
        }
    }

    fn fail(&mut self, appointment_id: Option<&str>, e: PluginError) {
        self.out.errors.push(CalendarSyncError {
            appointment_id: appointment_id.map(str::to_owned),
            kind: e.kind,
            message: e.message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: serde_json::Value) -> CalendarSyncInput {
        serde_json::from_value(value).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "mailboxes": ["Jane@example.com", "bob@example.com"],
            "window": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00+02:00"},
            "appointments": [{
                "id": "A1", "mailbox": "jane@EXAMPLE.com", "subject": "Visit",
                "start": "2025-03-04T09:00:00+01:00", "end": "2025-03-04T10:00:00+01:00"
            }]
        })
    }

    fn field_of(v: serde_json::Value) -> String {
        Plan::new(&input(v)).unwrap_err().field.unwrap()
    }

    #[test]
    fn plan_names_the_bad_field() {
        let plan = Plan::new(&input(base())).unwrap();
        assert_eq!(plan.mailboxes[0].desired[0].start, 1_741_075_200);
        let mut v = base();
        v["mailboxes"] = json!([]);
        assert_eq!(field_of(v), "mailboxes");
        let mut v = base();
        v["mailboxes"][1] = json!("JANE@example.com");
        assert_eq!(field_of(v), "mailboxes[1]");
        let mut v = base();
        v["window"]["end"] = json!("2025-02-01T00:00:00Z");
        assert_eq!(field_of(v), "window.end");
        let mut v = base();
        v["appointments"][0]["mailbox"] = json!("carol@example.com");
        assert_eq!(field_of(v), "appointments[0].mailbox");
        let mut v = base();
        v["appointments"][0]["end"] = json!("2025-03-04T07:00:00Z");
        assert_eq!(field_of(v), "appointments[0].end");
        let mut v = base();
        v["appointments"][0]["start"] = json!("2025-05-04T07:00:00Z");
        v["appointments"][0]["end"] = json!("2025-05-04T08:00:00Z");
        assert_eq!(field_of(v), "appointments[0].start");
        let mut v = base();
        let dup = v["appointments"][0].clone();
        v["appointments"].as_array_mut().unwrap().push(dup);
        assert_eq!(field_of(v), "appointments[1].id");
    }

    #[test]
    fn keys_keep_slash_as_the_separator() {
        assert_eq!(
            link_key("Jane@Example.com", "SO/12%"),
            "appointment/jane@example.com/SO%2F12%25"
        );
    }
}
