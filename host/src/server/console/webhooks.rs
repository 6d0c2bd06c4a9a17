//! The console's Webhooks page: the webhooks (add, test, remove), and the recent deliveries
//! with their state and a Replay button. Same rules as the command line and the API (they
//! all go through [`crate::events`]); complete without JavaScript (forms post, the server
//! redirects or shows the page again with the outcome).
//!
//! Every text a person reads comes from the console's catalogs (`webhooks-*` in
//! `host/locales/*/console.ftl`), in the page's language.

use crate::events::outbox::{DeliveryState, HistoryFilter};
use crate::events::{delivery, webhooks};
use crate::server::auth::Principal;
use crate::server::html::{attr, esc, page_in, Section, Viewer};
use crate::server::i18n::Ui;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use passerelle_plugin_api::events::EVENT_TYPES;
use std::fmt::Write as _;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(webhooks_page).post(add_submit))
        .route("/webhooks/{id}/test", post(test_submit))
        .route("/webhooks/{id}/remove", post(remove_submit))
        .route("/webhooks/replay", post(replay_submit))
        .layer(axum::middleware::from_fn(crate::server::i18n::negotiate))
}

type Pairs = Form<Vec<(String, String)>>;

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    super::last(pairs, key).unwrap_or_default()
}

/// The page, with an optional notice (`ok`, text) on top.
fn render(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    notice: Option<(bool, String)>,
) -> Result<String, String> {
    let csrf = who.csrf().unwrap_or_default().to_owned();
    let outbox = &app.engine.services.events;
    let hooks = webhooks::list(outbox).map_err(|e| e.to_string())?;
    let deliveries = outbox
        .history(&HistoryFilter {
            limit: 50,
            ..HistoryFilter::default()
        })
        .map_err(|e| e.to_string())?;
    let mut body = format!(
        "<h1>{}</h1><p>{}</p>",
        esc(&ui.t("webhooks-title")),
        esc(&ui.t("webhooks-intro"))
    );
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
        let _ = write!(body, "<p>{}</p>", esc(&ui.t("webhooks-none")));
    } else {
        let _ = write!(
            body,
            "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            esc(&ui.t("webhooks-caption-webhooks")), esc(&ui.t("webhooks-col-id")), esc(&ui.t("webhooks-col-url")), esc(&ui.t("webhooks-col-events")), esc(&ui.t("webhooks-col-actions"))
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
                test = esc(&ui.t("webhooks-test")),
                remove = esc(&ui.t("webhooks-remove")),
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
        add_title = esc(&ui.t("webhooks-add-title")),
        csrf = attr(&csrf),
        url_label = esc(&ui.t("webhooks-url-label")),
        events_label = esc(&ui.t("webhooks-events-label")),
        events_hint = esc(&ui.t("webhooks-events-hint")),
        types = esc(&EVENT_TYPES.join(", ")),
        secret_label = esc(&ui.t("webhooks-secret-label")),
        min = webhooks::MIN_SECRET_LEN,
        secret_hint = esc(&ui.t("webhooks-secret-hint")),
        add = esc(&ui.t("webhooks-add")),
    );
    if deliveries.is_empty() {
        let _ = write!(
            body,
            "<h2>{}</h2><p>{}</p>",
            esc(&ui.t("webhooks-caption-deliveries")),
            esc(&ui.t("webhooks-no-delivery"))
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"deliveries\"><caption>{}</caption><thead><tr>",
            esc(&ui.t("webhooks-caption-deliveries"))
        );
        for col in [
            ui.t("webhooks-col-event"),
            ui.t("webhooks-col-type"),
            ui.t("webhooks-col-instance"),
            ui.t("webhooks-col-webhook"),
            ui.t("webhooks-col-state"),
            ui.t("webhooks-col-attempts"),
            ui.t("webhooks-col-last"),
            ui.t("webhooks-col-actions"),
        ] {
            let _ = write!(body, "<th scope=\"col\">{}</th>", esc(&col));
        }
        body.push_str("</tr></thead><tbody>");
        for d in &deliveries {
            let state = match d.state {
                DeliveryState::Pending => ui.t("webhooks-state-pending"),
                DeliveryState::Delivered => ui.t("webhooks-state-delivered"),
                DeliveryState::Failed => ui.t("webhooks-state-failed"),
            };
            let last = match (&d.last_error, d.last_status, d.done_ms) {
                (Some(e), _, _) => e.clone(),
                (None, Some(s), Some(at)) => {
                    format!("HTTP {s}, {}", crate::server::l10n::date_time(at, ui.lang))
                }
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
                esc(&state),
                d.attempts,
                esc(&last),
                attr(&csrf),
                attr(&d.event_id),
                attr(&d.webhook),
                esc(&ui.t("webhooks-replay")),
            );
        }
        body.push_str("</tbody></table>");
    }
    let viewer = Viewer {
        user: &who.actor(),
        csrf: &csrf,
    };
    Ok(page_in(
        ui,
        &ui.t("webhooks-title"),
        Some(viewer),
        Section::Webhooks,
        &body,
    ))
}

fn answer(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    status: StatusCode,
    notice: Option<(bool, String)>,
) -> Response {
    match render(app, ui, who, notice) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => crate::server::error::ApiError::internal(e).into_response(),
    }
}

/// The page again, with a refusal on top.
fn refused(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    status: StatusCode,
    e: impl std::fmt::Display,
) -> Response {
    let text = format!("{}: {e}", ui.t("webhooks-error"));
    answer(app, ui, who, status, Some((false, text)))
}

async fn webhooks_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
) -> Response {
    answer(&app, &ui, &who, StatusCode::OK, None)
}

async fn add_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
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
        Err(e) => refused(&app, &ui, &who, StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

async fn test_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> Response {
    match delivery::ping(&app.engine, &id).await {
        Ok((_, outcome)) if outcome.delivered() => answer(
            &app,
            &ui,
            &who,
            StatusCode::OK,
            Some((
                true,
                format!(
                    "{} ({id}): HTTP {} in {} ms",
                    ui.t("webhooks-ping-ok"),
                    outcome.status.unwrap_or(0),
                    outcome.duration_ms
                ),
            )),
        ),
        Ok((_, outcome)) => answer(
            &app,
            &ui,
            &who,
            StatusCode::OK,
            Some((
                false,
                format!(
                    "{} ({id}): {}",
                    ui.t("webhooks-ping-failed"),
                    outcome.error.unwrap_or_default()
                ),
            )),
        ),
        Err(e) => refused(&app, &ui, &who, StatusCode::NOT_FOUND, e),
    }
}

async fn remove_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> Response {
    match webhooks::remove(&app.engine.services.events, &id) {
        Ok(()) => Redirect::to("/webhooks").into_response(),
        Err(e) => refused(&app, &ui, &who, StatusCode::NOT_FOUND, e),
    }
}

async fn replay_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Form(pairs): Pairs,
) -> Response {
    let event = field(&pairs, "event");
    let webhook = Some(field(&pairs, "webhook")).filter(|w| !w.is_empty());
    match app.engine.services.events.replay(event, webhook) {
        Ok(Some(targets)) if !targets.is_empty() => answer(
            &app,
            &ui,
            &who,
            StatusCode::OK,
            Some((
                true,
                format!(
                    "{}: {event} → {}",
                    ui.t("webhooks-replayed"),
                    targets.join(", ")
                ),
            )),
        ),
        Ok(_) => refused(&app, &ui, &who, StatusCode::NOT_FOUND, format!("{event:?}")),
        Err(e) => crate::server::error::ApiError::internal(e).into_response(),
    }
}
