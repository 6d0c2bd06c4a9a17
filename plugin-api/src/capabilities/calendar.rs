//! `calendar.sync`: the ERP's appointments pushed to people's calendars, and what those
//! calendars already hold read back, for any calendar provider (Exchange Web Services today,
//! Microsoft Graph or CalDAV tomorrow) with the same input and output.
//!
//! The ERP owns the appointments it sends: after a sync, the appointments of each mailbox
//! that overlap the window are exactly those of the input (created, updated, or deleted when
//! the ERP no longer sends them). The provider keeps the link between the ERP's ids and its
//! own in the instance state, so syncing twice with the same input changes nothing. Items the
//! ERP did not create are never modified; they are returned as `events` so that the ERP can
//! show when people are busy.
//!
//! Times are RFC 3339 strings (`2025-03-04T09:00:00+01:00`); outputs are in UTC (`…Z`).

use crate::contract::OperationContract;
use crate::error::ErrorKind;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Synchronises the ERP's appointments with the calendars of a set of mailboxes.
#[derive(Debug)]
pub struct CalendarSync;

impl Operation for CalendarSync {
    const NAME: &'static str = "calendar.sync";
    type Input = CalendarSyncInput;
    type Output = CalendarSyncOutput;
}

inventory::submit! {
    OperationContract::of::<CalendarSync>(Category::Calendar, "Synchronises the ERP's appointments with the calendars of a set of mailboxes")
}

/// What to synchronise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSyncInput {
    /// The mailboxes (SMTP addresses) whose calendars are synchronised, each once.
    pub mailboxes: Vec<String>,
    /// The period synchronised: appointments overlapping it.
    pub window: TimeWindow,
    /// The ERP's appointments in that period, for the mailboxes above. Each must overlap
    /// the window; one outside it is refused as invalid input, naming its index.
    #[serde(default)]
    pub appointments: Vec<Appointment>,
}

/// A period, `start` included, `end` excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// RFC 3339 date and time.
    pub start: String,
    /// RFC 3339 date and time, after `start`.
    pub end: String,
}

/// One appointment of the ERP (a planning slot, a visit, a meeting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    /// The ERP's id, unique within a mailbox and stable across syncs.
    pub id: String,
    /// The mailbox whose calendar holds it; one of the input's `mailboxes`.
    pub mailbox: String,
    pub subject: String,
    /// RFC 3339 date and time.
    pub start: String,
    /// RFC 3339 date and time, not before `start`.
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An all-day appointment: `start` and `end` are midnights (RFC 3339, with the offset of
    /// the calendar's time zone), `end` excluded, so one day is `…-10T00:00:00+01:00` to
    /// `…-11T00:00:00+01:00`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_day: bool,
}

/// What a sync did, mailbox by mailbox, in the order of the input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CalendarSyncOutput {
    pub mailboxes: Vec<MailboxSync>,
}

/// What a sync did in one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MailboxSync {
    pub mailbox: String,
    /// ERP appointments added to the calendar.
    pub created: u32,
    /// ERP appointments whose calendar item was changed to match the ERP.
    pub updated: u32,
    /// ERP appointments already up to date.
    pub unchanged: u32,
    /// Calendar items of appointments the ERP no longer sends, removed.
    pub deleted: u32,
    /// What failed: the whole mailbox (no `appointment_id`) or one appointment.
    #[serde(default)]
    pub errors: Vec<CalendarSyncError>,
    /// Items of the calendar in the window that the ERP did not create, read only.
    #[serde(default)]
    pub events: Vec<CalendarEvent>,
}

/// A failure within a sync, for the ERP to show or retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CalendarSyncError {
    /// The appointment concerned; absent when the whole mailbox failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<String>,
    pub kind: ErrorKind,
    /// What happened and what to do, for a person.
    pub message: String,
}

/// An item of a calendar, as read from the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CalendarEvent {
    /// The provider's id of the item.
    pub id: String,
    pub subject: String,
    /// UTC, RFC 3339.
    pub start: String,
    /// UTC, RFC 3339.
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// An all-day item.
    #[serde(default)]
    pub all_day: bool,
    /// A meeting the organiser cancelled, still in the calendar.
    #[serde(default)]
    pub cancelled: bool,
    /// How the time shows to others, as the provider says it: `Free`, `Tentative`, `Busy`,
    /// `OOF` (away), `WorkingElsewhere`, `NoData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_as: Option<String>,
    /// `Normal`, `Personal`, `Private` or `Confidential`: a private item's details are the
    /// owner's; show it as busy time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
}
