//! `calendar.sync`: makes each mailbox's calendar hold exactly the ERP's appointments over the
//! window, and reads back the items the ERP did not create.
//!
//! Per mailbox: one `FindItem` with a `CalendarView` over the window (the pull), then
//! `CreateItem`, `UpdateItem` and `DeleteItem` in batches for what differs (the push). The
//! link between an ERP id and its EWS `ItemId`/`ChangeKey` lives in the instance state, one
//! key per appointment, written as soon as Exchange confirms each write, so that a second sync
//! with the same input sends nothing but the `FindItem`s and an interrupted sync does not
//! duplicate what it had created.
//!
//! An appointment counts as unchanged when the ERP sent the same content as last time and
//! the calendar still shows its subject, times, all-day flag and location; otherwise the
//! ERP's version is written back (the ERP owns its appointments). A body edited in Outlook
//! is not detected: a calendar view cannot return bodies.
//!
//! Each created item also carries its ERP id in an extended property, which the calendar
//! view reads back. When the state lost a link (a new data directory, a restored backup),
//! the item holding that ERP id is adopted instead of being created again: unchanged if it
//! shows what the ERP wants, updated otherwise, deleted if the ERP no longer sends it.
//!
//! Mailboxes run on scoped threads, at most `max_threads` at a time, each mailbox on one
//! thread, so no more than `max_threads` requests are ever in flight. Credentials or
//! configuration errors stop the whole sync (every mailbox would fail the same way); other
//! errors are reported per mailbox or per appointment.

use crate::client::{CallError, Ews};
use crate::config::{is_smtp_address, Config};
use crate::response::{calendar_view, written_item, Message, View, ViewItem};
use crate::soap::{Conflict, Envelope, ItemContent, ItemUpdate};
use crate::times::{overlaps, parse_ews, parse_rfc3339, utc};
use passerelle_plugin_api::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// State keys of the ERP id ↔ EWS item links: `appointment/<mailbox>/<erp id>`.
pub const LINK_PREFIX: &str = "appointment/";
/// Items per CreateItem, UpdateItem or DeleteItem request.
const BATCH: usize = 50;

/// What the state remembers of a pushed appointment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub mailbox: String,
    pub erp_id: String,
    pub item_id: String,
    pub change_key: String,
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

/// An appointment as it should be in the calendar.
#[derive(Debug, Clone)]
struct Desired {
    erp_id: String,
    start: i64,
    end: i64,
    content: ItemContent,
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

/// Text as it comes back from XML: no impossible characters, `\n` line ends.
fn normalise(text: &str) -> String {
    crate::xml::xml_safe(text)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

impl Plan {
    fn new(input: &CalendarSyncInput) -> Result<Plan, PluginError> {
        if input.mailboxes.is_empty() {
            return Err(invalid(
                "mailboxes".into(),
                "no mailbox to synchronise; list at least one address".into(),
            ));
        }
        let from =
            parse_rfc3339(&input.window.start).map_err(|e| invalid("window.start".into(), e))?;
        let to = parse_rfc3339(&input.window.end).map_err(|e| invalid("window.end".into(), e))?;
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
            let start = parse_rfc3339(&a.start).map_err(|e| invalid(field("start"), e))?;
            let end = parse_rfc3339(&a.end).map_err(|e| invalid(field("end"), e))?;
            if end < start {
                return Err(invalid(
                    field("end"),
                    "the appointment ends before it starts".into(),
                ));
            }
            if a.all_day {
                for (name, value) in [("start", &a.start), ("end", &a.end)] {
                    if !is_midnight(value) {
                        return Err(invalid(
                            field(name),
                            format!(
                                "{value:?} is not a midnight: an all-day appointment starts and \
                                 ends at 00:00 of the calendar's time zone, e.g. \
                                 2025-03-10T00:00:00+01:00 to 2025-03-11T00:00:00+01:00"
                            ),
                        ));
                    }
                }
                if end == start {
                    return Err(invalid(
                        field("end"),
                        "an all-day appointment lasts at least one day; end is the next \
                         midnight after its last day"
                            .into(),
                    ));
                }
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
            let content = ItemContent {
                subject: normalise(&a.subject),
                body: a
                    .body
                    .as_deref()
                    .map(normalise)
                    .filter(|b| !b.trim().is_empty()),
                start: utc(start),
                end: utc(end),
                location: a
                    .location
                    .as_deref()
                    .map(normalise)
                    .filter(|l| !l.trim().is_empty()),
                all_day: a.all_day,
                erp_id: a.id.clone(),
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

/// Whether an RFC 3339 date-time is 00:00:00 in its own offset.
fn is_midnight(s: &str) -> bool {
    let time = s.trim().get(11..).unwrap_or_default();
    let Some(rest) = time.strip_prefix("00:00:00") else {
        return false;
    };
    let fraction = rest.strip_prefix('.').unwrap_or("");
    fraction
        .chars()
        .take_while(char::is_ascii_digit)
        .all(|c| c == '0')
}

/// FNV-1a (64 bits) of the content: enough to notice that the ERP changed something.
fn fingerprint(c: &ItemContent) -> String {
    let canonical =
        serde_json::json!([c.subject, c.body, c.start, c.end, c.location, c.all_day]).to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Whether the calendar shows what the ERP wants, for the fields a view returns.
fn shows(item: &ViewItem, d: &Desired) -> bool {
    let same_text = |a: Option<&str>, b: Option<&str>| {
        a.unwrap_or_default().trim() == b.unwrap_or_default().trim()
    };
    same_text(Some(&item.subject), Some(&d.content.subject))
        && item.start.as_deref().and_then(parse_ews) == Some(d.start)
        && item.end.as_deref().and_then(parse_ews) == Some(d.end)
        && same_text(item.location.as_deref(), d.content.location.as_deref())
        && item.all_day == d.content.all_day
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
    let ews = Ews::new(config, host);
    // One token for every thread, fetched before they start.
    ews.fetch_token(false)?;
    let count = plan.mailboxes.len();
    let threads = usize::try_from(config.max_threads.max(1))
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
        let mut sync = Mailbox::new(&ews, host, &plan, mailbox);
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
                .name(format!("ews-sync-{n}"))
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
    let (waits, waited) = ews.busy_waits();
    if waits > 0 {
        host.log(
            LogLevel::Info,
            format!("Exchange throttled the sync {waits} time(s), {waited} ms of waiting in all"),
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

/// The sync of one mailbox.
struct Mailbox<'s, 'a, 'h> {
    ews: &'s Ews<'a, 'h>,
    host: &'s Host<'h>,
    plan: &'s Plan,
    mailbox: &'s MailboxPlan,
    envelope: Envelope<'s>,
    out: MailboxSync,
}

/// A request-level failure: stops this mailbox (Ok) or the whole sync (Err).
type Step = Result<bool, PluginError>;

impl<'s, 'a, 'h> Mailbox<'s, 'a, 'h> {
    fn new(
        ews: &'s Ews<'a, 'h>,
        host: &'s Host<'h>,
        plan: &'s Plan,
        mailbox: &'s MailboxPlan,
    ) -> Self {
        Mailbox {
            ews,
            host,
            plan,
            mailbox,
            envelope: ews.envelope(Some(&mailbox.address)),
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
        let mut links = match self
            .host
            .state_list::<Link>(&mailbox_prefix(&self.mailbox.address))
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
        let in_view: HashMap<&str, &ViewItem> =
            view.items.iter().map(|i| (i.id.as_str(), i)).collect();
        let duplicates = self.adopt(&view, &mut links, &in_view);

        let mut creates: Vec<&Desired> = Vec::new();
        let mut fresh: Vec<(&Desired, &Link, String)> = Vec::new();
        let mut blind: Vec<(&Desired, &Link)> = Vec::new();
        for d in &mailbox.desired {
            match links.get(&d.erp_id) {
                None => creates.push(d),
                Some(link) => match in_view.get(link.item_id.as_str()) {
                    // An adopted link has no fingerprint: what the view shows decides.
                    Some(item)
                        if (link.fingerprint == d.fingerprint || link.fingerprint.is_empty())
                            && shows(item, d) =>
                    {
                        self.out.unchanged += 1;
                        if item.change_key != link.change_key || link.fingerprint.is_empty() {
                            // Touched in Outlook without changing what the ERP owns (a
                            // reminder dismissed, a category), or adopted: remember it.
                            let mut link = link.clone();
                            link.change_key = item.change_key.clone();
                            link.fingerprint = d.fingerprint.clone();
                            self.save(&link);
                        }
                    }
                    Some(item) => fresh.push((d, link, item.change_key.clone())),
                    None => blind.push((d, link)),
                },
            }
        }
        let wanted: HashSet<&str> = mailbox.desired.iter().map(|d| d.erp_id.as_str()).collect();
        let stale: Vec<&Link> = links
            .values()
            .filter(|l| !wanted.contains(l.erp_id.as_str()))
            .filter(|l| overlaps(l.start, l.end, self.plan.from, self.plan.to))
            .chain(&duplicates)
            .collect();

        let mut recreate = Vec::new();
        // Each step stops the mailbox (false) when a whole request failed.
        let _completed = self.update(&fresh, Conflict::AutoResolve, &mut recreate)?
            && self.update(
                &blind
                    .iter()
                    .map(|(d, l)| (*d, *l, String::new()))
                    .collect::<Vec<_>>(),
                Conflict::AlwaysOverwrite,
                &mut recreate,
            )?
            && self.create(&creates)?
            && self.create(&recreate)?
            && self.delete(&stale)?;

        let ours: HashSet<&str> = links.values().map(|l| l.item_id.as_str()).collect();
        self.out.events = view
            .items
            .iter()
            .filter(|i| !ours.contains(i.id.as_str()) && i.erp_id.is_none())
            .map(|i| CalendarEvent {
                id: i.id.clone(),
                subject: i.subject.clone(),
                start: normalise_time(i.start.as_deref()),
                end: normalise_time(i.end.as_deref()),
                location: i.location.clone(),
                all_day: i.all_day,
                cancelled: i.cancelled,
                show_as: i.show_as.clone(),
                sensitivity: i.sensitivity.clone(),
            })
            .collect();
        Ok(())
    }

    /// Links items of the view that carry an ERP id the state does not link (lost state);
    /// returns the extra items found for an ERP id already linked, to delete.
    fn adopt(
        &mut self,
        view: &View,
        links: &mut BTreeMap<String, Link>,
        in_view: &HashMap<&str, &ViewItem>,
    ) -> Vec<Link> {
        let linked: HashSet<String> = links.values().map(|l| l.item_id.clone()).collect();
        let mut duplicates = Vec::new();
        let mut adopted = 0;
        for item in &view.items {
            let Some(erp_id) = &item.erp_id else {
                continue;
            };
            if linked.contains(&item.id) {
                continue;
            }
            let link = Link {
                mailbox: self.mailbox.address.to_lowercase(),
                erp_id: erp_id.clone(),
                item_id: item.id.clone(),
                change_key: item.change_key.clone(),
                fingerprint: String::new(),
                start: item
                    .start
                    .as_deref()
                    .and_then(parse_ews)
                    .unwrap_or(self.plan.from),
                end: item
                    .end
                    .as_deref()
                    .and_then(parse_ews)
                    .unwrap_or(self.plan.from),
            };
            match links.get(erp_id) {
                Some(existing) if in_view.contains_key(existing.item_id.as_str()) => {
                    duplicates.push(link)
                }
                _ => {
                    adopted += 1;
                    links.insert(erp_id.clone(), link);
                }
            }
        }
        if adopted > 0 {
            self.host.log(
                LogLevel::Info,
                format!(
                    "{}: {adopted} item(s) of the calendar carry an ERP id the state did not \
                     link (state lost or restored); adopted, not created again",
                    self.mailbox.address
                ),
            );
        }
        duplicates
    }

    /// The calendar view of the window, or `None` when the mailbox failed.
    fn view(&mut self) -> Result<Option<View>, PluginError> {
        let (from, to) = (utc(self.plan.from), utc(self.plan.to));
        let answer = match self
            .ews
            .call(&self.envelope, |e| e.find_calendar_view(&from, &to))
        {
            Ok(a) => a,
            Err(e) => {
                self.request_failed(e)?;
                return Ok(None);
            }
        };
        let Some(message) = answer.messages.first() else {
            self.fail(
                None,
                PluginError::new(
                    ErrorKind::Upstream,
                    "Exchange answered FindItem without a response message",
                ),
            );
            return Ok(None);
        };
        if message.is_error() {
            let e = self
                .ews
                .error(CallError::Ews(message.error()), Some(&self.mailbox.address));
            if is_fatal(&e) {
                return Err(e);
            }
            self.fail(None, e);
            return Ok(None);
        }
        let view = match calendar_view(message) {
            Ok(v) => v,
            Err(why) => {
                self.fail(
                    None,
                    PluginError::new(
                        ErrorKind::Upstream,
                        format!("unreadable FindItem answer: {why}"),
                    ),
                );
                return Ok(None);
            }
        };
        if !view.complete {
            self.fail(
                None,
                PluginError::invalid_input(format!(
                    "the calendar holds more items in the window than Exchange returns at once \
                     ({} of {}); synchronise a shorter window",
                    view.items.len(),
                    view.total
                        .map_or_else(|| "more".to_owned(), |t| t.to_string())
                )),
            );
            return Ok(None);
        }
        Ok(Some(view))
    }

    fn create(&mut self, items: &[&Desired]) -> Step {
        for chunk in items.chunks(BATCH) {
            let contents: Vec<&ItemContent> = chunk.iter().map(|d| &d.content).collect();
            let Some(messages) = self.send(|e| e.create_items(&contents), chunk.len())? else {
                return Ok(false);
            };
            for (d, m) in chunk.iter().zip(&messages) {
                if m.is_error() {
                    self.fail_item(d, m);
                    continue;
                }
                match written_item(m) {
                    Some((item_id, change_key)) => {
                        let link = self.link(d, item_id, change_key);
                        self.save(&link);
                        self.out.created += 1;
                    }
                    None => self.fail(
                        Some(&d.erp_id),
                        PluginError::new(
                            ErrorKind::Upstream,
                            "Exchange created the item without returning its id",
                        ),
                    ),
                }
            }
        }
        Ok(true)
    }

    fn update<'d>(
        &mut self,
        items: &[(&'d Desired, &Link, String)],
        conflict: Conflict,
        recreate: &mut Vec<&'d Desired>,
    ) -> Step {
        for chunk in items.chunks(BATCH) {
            let updates: Vec<ItemUpdate<'_>> = chunk
                .iter()
                .map(|(d, link, change_key)| ItemUpdate {
                    item_id: &link.item_id,
                    change_key: match conflict {
                        Conflict::AutoResolve => Some(change_key.as_str()),
                        Conflict::AlwaysOverwrite => None,
                    },
                    content: &d.content,
                })
                .collect();
            let Some(messages) = self.send(|e| e.update_items(&updates, conflict), chunk.len())?
            else {
                return Ok(false);
            };
            for ((d, link, _), m) in chunk.iter().zip(&messages) {
                if m.is_error() && m.code == "ErrorItemNotFound" {
                    // Deleted in Outlook: the ERP still wants it.
                    let _ = self
                        .host
                        .state_delete(&link_key(&link.mailbox, &link.erp_id));
                    recreate.push(d);
                } else if m.is_error() {
                    self.fail_item(d, m);
                } else {
                    let (item_id, change_key) =
                        written_item(m).unwrap_or_else(|| (link.item_id.clone(), String::new()));
                    let link = self.link(d, item_id, change_key);
                    self.save(&link);
                    self.out.updated += 1;
                }
            }
        }
        Ok(true)
    }

    fn delete(&mut self, links: &[&Link]) -> Step {
        for chunk in links.chunks(BATCH) {
            let ids: Vec<&str> = chunk.iter().map(|l| l.item_id.as_str()).collect();
            let Some(messages) = self.send(|e| e.delete_items(&ids), chunk.len())? else {
                return Ok(false);
            };
            for (link, m) in chunk.iter().zip(&messages) {
                if m.is_error() && m.code != "ErrorItemNotFound" {
                    let e = self
                        .ews
                        .error(CallError::Ews(m.error()), Some(&self.mailbox.address));
                    self.fail(Some(&link.erp_id), e);
                    continue;
                }
                if let Err(e) = self
                    .host
                    .state_delete(&link_key(&link.mailbox, &link.erp_id))
                {
                    self.fail(
                        Some(&link.erp_id),
                        PluginError::internal(format!(
                            "deleted, but the link could not be forgotten: {}",
                            e.message
                        )),
                    );
                    continue;
                }
                self.out.deleted += 1;
            }
        }
        Ok(true)
    }

    /// Sends a batch; `None` when the request failed as a whole (recorded on the mailbox).
    fn send(
        &mut self,
        write: impl Fn(&Envelope<'_>) -> std::io::Result<Vec<u8>>,
        expected: usize,
    ) -> Result<Option<Vec<Message>>, PluginError> {
        match self.ews.call(&self.envelope, write) {
            Ok(answer) if answer.messages.len() == expected => Ok(Some(answer.messages)),
            Ok(answer) => {
                self.fail(
                    None,
                    PluginError::new(
                        ErrorKind::Upstream,
                        format!(
                            "Exchange answered {} response messages for {expected} items",
                            answer.messages.len()
                        ),
                    ),
                );
                Ok(None)
            }
            Err(e) => {
                self.request_failed(e)?;
                Ok(None)
            }
        }
    }

    fn request_failed(&mut self, e: CallError) -> Result<(), PluginError> {
        let e = self.ews.error(e, Some(&self.mailbox.address));
        if is_fatal(&e) {
            return Err(e);
        }
        self.fail(None, e);
        Ok(())
    }

    fn link(&self, d: &Desired, item_id: String, change_key: String) -> Link {
        Link {
            mailbox: self.mailbox.address.to_lowercase(),
            erp_id: d.erp_id.clone(),
            item_id,
            change_key,
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
                    "written to Exchange, but the link could not be saved ({}); the next sync \
                     may write it again",
                    e.message
                )),
            );
        }
    }

    fn fail_item(&mut self, d: &Desired, m: &Message) {
        let e = self
            .ews
            .error(CallError::Ews(m.error()), Some(&self.mailbox.address));
        self.fail(Some(&d.erp_id), e);
    }

    fn fail(&mut self, appointment_id: Option<&str>, e: PluginError) {
        self.out.errors.push(CalendarSyncError {
            appointment_id: appointment_id.map(str::to_owned),
            kind: e.kind,
            message: e.message,
        });
    }
}

fn normalise_time(t: Option<&str>) -> String {
    t.map(|s| parse_ews(s).map_or_else(|| s.to_owned(), utc))
        .unwrap_or_default()
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
    fn plan_normalises_times_and_mailboxes() {
        let plan = Plan::new(&input(base())).unwrap();
        assert_eq!(plan.mailboxes.len(), 2);
        let d = &plan.mailboxes[0].desired[0];
        assert_eq!(d.content.start, "2025-03-04T08:00:00Z");
        assert_eq!(d.content.end, "2025-03-04T09:00:00Z");
        assert!(plan.mailboxes[1].desired.is_empty());
        assert_eq!(utc(plan.to), "2025-03-31T22:00:00Z");
    }

    #[test]
    fn plan_names_the_bad_field() {
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
    fn fingerprints_follow_content() {
        let plan = Plan::new(&input(base())).unwrap();
        let a = plan.mailboxes[0].desired[0].clone();
        let mut b = a.content.clone();
        assert_eq!(fingerprint(&a.content), fingerprint(&b));
        b.body = Some("x".into());
        assert_ne!(fingerprint(&a.content), fingerprint(&b));
    }

    #[test]
    fn keys_keep_slash_as_the_separator() {
        assert_eq!(
            link_key("Jane@Example.com", "SO/12%"),
            "appointment/jane@example.com/SO%2F12%25"
        );
        assert!(link_key("a@x", "1").starts_with(&mailbox_prefix("A@X")));
        assert!(!link_key("a@x.fr", "1").starts_with(&mailbox_prefix("a@x")));
    }
}
