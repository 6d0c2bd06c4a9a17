//! The console's Webhooks page: the webhooks (add, test, remove), and the recent deliveries
//! with their state and a Replay button. Same rules as the command line and the API (they
//! all go through [`crate::events`]); complete without JavaScript (forms post, the server
//! redirects or shows the page again with the outcome).
//!
//! Every text a person reads is in [`TEXTS`], so that the console's translations can take
//! them over in one place.

use super::auth::Principal;
use super::html::{self, attr, esc, page, Section, Viewer};
use super::AppState;
use crate::events::outbox::{DeliveryState, HistoryFilter};
use crate::events::{delivery, webhooks};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use passerelle_plugin_api::events::EVENT_TYPES;
use std::fmt::Write as _;

/// The page's texts, English.
pub struct Texts {
    pub title: &'static str,
    pub intro: &'static str,
    pub none: &'static str,
    pub caption_webhooks: &'static str,
    pub col_id: &'static str,
    pub col_url: &'static str,
    pub col_events: &'static str,
    pub col_actions: &'static str,
    pub test: &'static str,
    pub remove: &'static str,
    pub add_title: &'static str,
    pub url_label: &'static str,
    pub events_label: &'static str,
    pub events_hint: &'static str,
    pub secret_label: &'static str,
    pub secret_hint: &'static str,
    pub add: &'static str,
    pub caption_deliveries: &'static str,
    pub no_delivery: &'static str,
    pub col_event: &'static str,
    pub col_type: &'static str,
    pub col_instance: &'static str,
    pub col_webhook: &'static str,
    pub col_state: &'static str,
    pub col_attempts: &'static str,
    pub col_last: &'static str,
    pub replay: &'static str,
    pub state_pending: &'static str,
    pub state_delivered: &'static str,
    pub state_failed: &'static str,
    pub ping_ok: &'static str,
    pub ping_failed: &'static str,
    pub replayed: &'static str,
    pub error: &'static str,
}

pub const TEXTS: Texts = Texts {
    title: "Webhooks",
    intro: "Events (signatures completed, invoice statuses, failed tests…) are sent to these addresses as signed HTTP POSTs, retried for three days. The README explains how the ERP checks the signature.",
    none: "No webhook yet.",
    caption_webhooks: "Webhooks",
    col_id: "Id",
    col_url: "Address",
    col_events: "Events",
    col_actions: "Actions",
    test: "Send a test",
    remove: "Remove",
    add_title: "Add a webhook",
    url_label: "Address of the ERP's receiver",
    events_label: "Events",
    events_hint: "* for every event, or types separated by commas:",
    secret_label: "Signing secret",
    secret_hint: "16 characters at least, e.g. from openssl rand -hex 32. Keep a copy for the receiver: it is never shown again.",
    add: "Add",
    caption_deliveries: "Recent deliveries, newest first",
    no_delivery: "No delivery yet.",
    col_event: "Event",
    col_type: "Type",
    col_instance: "Instance",
    col_webhook: "Webhook",
    col_state: "State",
    col_attempts: "Attempts",
    col_last: "Last answer",
    replay: "Send again",
    state_pending: "pending",
    state_delivered: "delivered",
    state_failed: "given up",
    ping_ok: "Test delivered",
    ping_failed: "Test not delivered",
    replayed: "Queued again",
    error: "Refused",
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(webhooks_page).post(add_submit))
        .route("/webhooks/{id}/test", post(test_submit))
        .route("/webhooks/{id}/remove", post(remove_submit))
        .route("/webhooks/replay", post(replay_submit))
}

type Pairs = Form<Vec<(String, String)>>;

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// The page, with an optional notice (`ok`, text) on top.
fn render(
    app: &AppState,
    who: &Principal,
    notice: Option<(bool, String)>,
) -> Result<String, String> {
    let t = &TEXTS;
    let csrf = who.csrf().unwrap_or_default().to_owned();
    let outbox = &app.engine.services.events;
    let hooks = webhooks::list(outbox).map_err(|e| e.to_string())?;
    let deliveries = outbox
        .history(&HistoryFilter {
            limit: 50,
            ..HistoryFilter::default()
        })
        .map_err(|e| e.to_string())?;
    let mut body = format!("<h1>{}</h1><p>{}</p>", esc(t.title), esc(t.intro));
    if let Some((ok, text)) = notice {
        let _ = write!(
            body,
            "<p class=\"{}\" role=\"{}\">{}</p>",
            if ok { "notice" } else { "problem" },
            if ok { "status" } else { "alert" },
            esc(&text)
        );
    }
    if hooks.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.none));
    } else {
        let _ = write!(
            body,
            "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            esc(t.caption_webhooks), esc(t.col_id), esc(t.col_url), esc(t.col_events), esc(t.col_actions)
        );
        for h in &hooks {
            let _ = write!(
                body,
                "<tr><td>{id}</td><td>{url}</td><td>{events}</td><td>\
                 <form method=\"post\" action=\"/webhooks/{aid}/test\"><input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"secondary\">{test}</button></form> \
                 <form method=\"post\" action=\"/webhooks/{aid}/remove\"><input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"danger\">{remove}</button></form></td></tr>",
                id = esc(&h.id),
                aid = attr(&h.id),
                url = esc(&h.url),
                events = esc(&h.events.join(", ")),
                csrf = attr(&csrf),
                test = esc(t.test),
                remove = esc(t.remove),
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        "<h2>{add_title}</h2><form method=\"post\" action=\"/webhooks\" class=\"add-webhook\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
         <label for=\"wh-url\">{url_label}</label><input id=\"wh-url\" name=\"url\" type=\"url\" required placeholder=\"https://erp.example.com/passerelle/events\">\
         <label for=\"wh-events\">{events_label}</label><input id=\"wh-events\" name=\"events\" required value=\"*\" aria-describedby=\"wh-events-hint\">\
         <p id=\"wh-events-hint\" class=\"hint\">{events_hint} {types}</p>\
         <label for=\"wh-secret\">{secret_label}</label><input id=\"wh-secret\" name=\"secret\" type=\"password\" required minlength=\"{min}\" autocomplete=\"new-password\" aria-describedby=\"wh-secret-hint\">\
         <p id=\"wh-secret-hint\" class=\"hint\">{secret_hint}</p>\
         <button type=\"submit\">{add}</button></form>",
        add_title = esc(t.add_title),
        csrf = attr(&csrf),
        url_label = esc(t.url_label),
        events_label = esc(t.events_label),
        events_hint = esc(t.events_hint),
        types = esc(&EVENT_TYPES.join(", ")),
        secret_label = esc(t.secret_label),
        min = webhooks::MIN_SECRET_LEN,
        secret_hint = esc(t.secret_hint),
        add = esc(t.add),
    );
    if deliveries.is_empty() {
        let _ = write!(
            body,
            "<h2>{}</h2><p>{}</p>",
            esc(t.caption_deliveries),
            esc(t.no_delivery)
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"deliveries\"><caption>{}</caption><thead><tr>",
            esc(t.caption_deliveries)
        );
        for col in [
            t.col_event,
            t.col_type,
            t.col_instance,
            t.col_webhook,
            t.col_state,
            t.col_attempts,
            t.col_last,
            t.col_actions,
        ] {
            let _ = write!(body, "<th scope=\"col\">{}</th>", esc(col));
        }
        body.push_str("</tr></thead><tbody>");
        for d in &deliveries {
            let state = match d.state {
                DeliveryState::Pending => t.state_pending,
                DeliveryState::Delivered => t.state_delivered,
                DeliveryState::Failed => t.state_failed,
            };
            let last = match (&d.last_error, d.last_status, d.done_ms) {
                (Some(e), _, _) => e.clone(),
                (None, Some(s), Some(at)) => format!("HTTP {s}, {}", html::time(at)),
                _ => String::new(),
            };
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"/webhooks/replay\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"event\" value=\"{}\"><input type=\"hidden\" name=\"webhook\" value=\"{}\">\
                 <button type=\"submit\" class=\"secondary\">{}</button></form></td></tr>",
                esc(&d.event_id),
                esc(&d.event_type),
                esc(&d.instance),
                esc(&d.webhook),
                esc(state),
                d.attempts,
                esc(&last),
                attr(&csrf),
                attr(&d.event_id),
                attr(&d.webhook),
                esc(t.replay),
            );
        }
        body.push_str("</tbody></table>");
    }
    let viewer = Viewer {
        user: &who.actor(),
        csrf: &csrf,
    };
    Ok(page(t.title, Some(viewer), Section::None, &body))
}

fn answer(
    app: &AppState,
    who: &Principal,
    status: StatusCode,
    notice: Option<(bool, String)>,
) -> Response {
    match render(app, who, notice) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}

async fn webhooks_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Response {
    answer(&app, &who, StatusCode::OK, None)
}

async fn add_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Form(pairs): Pairs,
) -> Response {
    let events: Vec<&str> = field(&pairs, "events").split(',').collect();
    match webhooks::add(
        &app.engine.services.events,
        &app.engine.key,
        field(&pairs, "url").trim(),
        &events,
        field(&pairs, "secret"),
    ) {
        Ok(_) => Redirect::to("/webhooks").into_response(),
        Err(e) => answer(
            &app,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some((false, format!("{}: {e}", TEXTS.error))),
        ),
    }
}

async fn test_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match delivery::ping(&app.engine, &id).await {
        Ok((_, outcome)) if outcome.delivered() => answer(
            &app,
            &who,
            StatusCode::OK,
            Some((
                true,
                format!(
                    "{} ({id}): HTTP {} in {} ms",
                    TEXTS.ping_ok,
                    outcome.status.unwrap_or(0),
                    outcome.duration_ms
                ),
            )),
        ),
        Ok((_, outcome)) => answer(
            &app,
            &who,
            StatusCode::OK,
            Some((
                false,
                format!(
                    "{} ({id}): {}",
                    TEXTS.ping_failed,
                    outcome.error.unwrap_or_default()
                ),
            )),
        ),
        Err(e) => answer(
            &app,
            &who,
            StatusCode::NOT_FOUND,
            Some((false, format!("{}: {e}", TEXTS.error))),
        ),
    }
}

async fn remove_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match webhooks::remove(&app.engine.services.events, &id) {
        Ok(()) => Redirect::to("/webhooks").into_response(),
        Err(e) => answer(
            &app,
            &who,
            StatusCode::NOT_FOUND,
            Some((false, format!("{}: {e}", TEXTS.error))),
        ),
    }
}

async fn replay_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Form(pairs): Pairs,
) -> Response {
    let event = field(&pairs, "event");
    let webhook = Some(field(&pairs, "webhook")).filter(|w| !w.is_empty());
    match app.engine.services.events.replay(event, webhook) {
        Ok(Some(targets)) if !targets.is_empty() => answer(
            &app,
            &who,
            StatusCode::OK,
            Some((
                true,
                format!("{}: {event} → {}", TEXTS.replayed, targets.join(", ")),
            )),
        ),
        Ok(_) => answer(
            &app,
            &who,
            StatusCode::NOT_FOUND,
            Some((false, format!("{}: {event:?}", TEXTS.error))),
        ),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}
