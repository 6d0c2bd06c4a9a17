//! The API of events and webhooks: `/api/webhooks` (add, list, remove, test),
//! `/api/deliveries` (history), `/api/events/{id}/replay`, and `GET /api/events`, which is a
//! page of events as JSON, or a server-sent event stream for a client that asks for
//! `text/event-stream` (as `EventSource` does) and resumes after its `Last-Event-ID`.
//!
//! Same rules as the command line: everything goes through [`crate::events`]. Scope `admin`
//! (the middleware's default for these paths).

use super::{ApiJson, ApiQuery};
use crate::events::delivery::{self, AttemptOutcome};
use crate::events::outbox::{Delivery, HistoryFilter};
use crate::events::webhooks::{self, WebhookError, WebhookView};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use passerelle_plugin_api::events::Event;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most events or deliveries returned at once.
pub const PAGE_MAX: u32 = 1000;
/// An idle stream gets a comment line this often, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, add_webhook))
        .routes(routes!(remove_webhook))
        .routes(routes!(test_webhook))
        .routes(routes!(deliveries))
        .routes(routes!(events))
        .routes(routes!(replay_event))
}

fn webhook_error(e: WebhookError) -> ApiError {
    match e {
        WebhookError::NotFound(_) => ApiError::not_found(e.to_string()),
        WebhookError::Outbox(_) | WebhookError::Secret { .. } => ApiError::internal(e),
        _ => ApiError::new(crate::failure::ErrorCode::InvalidValue, e.to_string()),
    }
}

fn outbox_error(e: crate::events::outbox::OutboxError) -> ApiError {
    ApiError::internal(e)
}

/// An event, as webhooks and the stream carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDoc {
    /// Unique; the webhook's `X-Passerelle-Delivery` and the stream's `id`.
    pub id: String,
    /// e.g. `esign.completed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub instance: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub data: serde_json::Value,
}

impl From<Event> for EventDoc {
    fn from(e: Event) -> Self {
        EventDoc {
            id: e.id,
            kind: e.kind,
            instance: e.instance,
            time: e.time,
            data: e.data,
        }
    }
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWebhook {
    /// The ERP's receiver, `http://` or `https://`.
    #[schema(pattern = "^https?://[^/?#]+")]
    pub url: String,
    /// `["*"]` for every event, or event types such as `esign.completed`.
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// The signing secret (16 characters at least); sealed at rest, never returned.
    #[schema(min_length = 16, format = Password, write_only)]
    pub secret: String,
}

/// The outcome of a test delivery (`webhook.ping`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PingDoc {
    pub event_id: String,
    pub delivered: bool,
    pub outcome: AttemptOutcome,
}

/// Webhooks (never their secrets).
#[utoipa::path(get, path = "/api/webhooks", tag = "events",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorBody)))]
async fn list_webhooks(State(app): State<AppState>) -> Result<Json<Vec<WebhookView>>, ApiError> {
    webhooks::list(&app.engine.services.events)
        .map(Json)
        .map_err(webhook_error)
}

/// Adds a webhook; deliveries are signed with its secret (see the README).
#[utoipa::path(post, path = "/api/webhooks", tag = "events", request_body = AddWebhook,
    responses((status = 201, body = WebhookView),
        (status = 422, description = "`invalid_value`: URL, event types or secret refused", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn add_webhook(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<AddWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let view = webhooks::add(
        &app.engine.services.events,
        &app.engine.key,
        &body.url,
        &body.events,
        &body.secret,
    )
    .map_err(webhook_error)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Removes a webhook with its pending deliveries and history.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "Webhook id, e.g. `wh-1a2b3c4d`")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn remove_webhook(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::remove(&app.engine.services.events, &id).map_err(webhook_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a `webhook.ping` event to the webhook now (not stored, not retried).
#[utoipa::path(post, path = "/api/webhooks/{id}/test", tag = "events",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = PingDoc), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn test_webhook(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PingDoc>, ApiError> {
    let (event, outcome) = delivery::ping(&app.engine, &id)
        .await
        .map_err(webhook_error)?;
    Ok(Json(PingDoc {
        event_id: event.id,
        delivered: outcome.delivered(),
        outcome,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this webhook's.
    pub webhook: Option<String>,
    /// Only this instance's.
    pub instance: Option<String>,
    /// Only this event's.
    pub event: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Delivery history, newest event first: state, attempts, last answer, next attempt.
#[utoipa::path(get, path = "/api/deliveries", tag = "events", params(DeliveryQuery),
    responses((status = 200, body = Vec<Delivery>), (status = 401, body = ErrorBody)))]
async fn deliveries(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    app.engine
        .services
        .events
        .history(&HistoryFilter {
            webhook: q.webhook,
            instance: q.instance,
            event: q.event,
            limit: q.limit.unwrap_or(100).clamp(1, PAGE_MAX),
        })
        .map(Json)
        .map_err(outbox_error)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// Only to this webhook (which need not have had the event); default: those that had it.
    pub webhook: Option<String>,
}

/// Where a replayed event was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayDoc {
    pub event_id: String,
    pub webhooks: Vec<String>,
}

/// Queues an event again with a fresh retry window; the server delivers it.
#[utoipa::path(post, path = "/api/events/{id}/replay", tag = "events",
    params(("id" = String, Path, description = "Event id"), ReplayQuery),
    responses((status = 202, body = ReplayDoc), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_value`: no webhook wants this event; give `webhook`", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn replay_event(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReplayQuery>,
) -> Result<(StatusCode, Json<ReplayDoc>), ApiError> {
    let outbox = &app.engine.services.events;
    if let Some(w) = &q.webhook {
        if outbox.webhook(w).map_err(outbox_error)?.is_none() {
            return Err(webhook_error(WebhookError::NotFound(w.clone())));
        }
    }
    match outbox
        .replay(&id, q.webhook.as_deref())
        .map_err(outbox_error)?
    {
        None => Err(ApiError::not_found(format!(
            "no event {id:?}; GET /api/deliveries shows the event ids"
        ))),
        Some(w) if w.is_empty() => Err(ApiError::new(
            crate::failure::ErrorCode::InvalidValue,
            format!("no webhook wants event {id:?}; give one with ?webhook="),
        )),
        Some(webhooks) => Ok((
            StatusCode::ACCEPTED,
            Json(ReplayDoc {
                event_id: id,
                webhooks,
            }),
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events stored after this event id (the stream also reads `Last-Event-ID`).
    pub after: Option<String>,
    /// At most this many in a JSON page (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A page of events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventDoc>,
    /// Give it as `after` for the next page; absent when the page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
}

/// Events, oldest first. With `Accept: text/event-stream`, a server-sent event stream
/// instead: each event as `id: <event id>`, `event: <type>`, `data: <event JSON>`; it
/// starts after `Last-Event-ID` (or `after`), else with the next event stored.
#[utoipa::path(get, path = "/api/events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "A page of events, or the event stream",
            content((EventPage = "application/json"), (String = "text/event-stream"))),
        (status = 404, description = "`not_found`: no event `after`", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let outbox = &app.engine.services.events;
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !streaming {
        let seq = match &q.after {
            None => 0,
            Some(id) => outbox
                .seq_of(id)
                .map_err(outbox_error)?
                .ok_or_else(|| ApiError::not_found(format!("no event {id:?} (forgotten after 30 days, or never stored); start without `after`")))?,
        };
        let rows = outbox
            .events_after(seq, q.limit.unwrap_or(100).clamp(1, PAGE_MAX))
            .map_err(outbox_error)?;
        let last_id = rows.last().map(|(_, e)| e.id.clone());
        return Ok(Json(EventPage {
            events: rows.into_iter().map(|(_, e)| e.into()).collect(),
            last_id,
        })
        .into_response());
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.after);
    let seq = match resume {
        // An id no longer stored (pruned): everything stored, rather than a silent gap.
        Some(id) => outbox.seq_of(&id).map_err(outbox_error)?.unwrap_or(0),
        None => outbox.last_seq().map_err(outbox_error)?,
    };
    let cursor = Cursor {
        engine: app.engine.clone(),
        seq,
        buffer: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(cursor, next_event);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

struct Cursor {
    engine: std::sync::Arc<crate::engine::Engine>,
    seq: i64,
    buffer: VecDeque<Event>,
}

/// The stream's next event: from the buffer, else from the outbox, else after waiting for a
/// new one (stored by this process, or seen by polling for other processes').
async fn next_event(mut c: Cursor) -> Option<(Result<SseEvent, Infallible>, Cursor)> {
    loop {
        if let Some(e) = c.buffer.pop_front() {
            let data = serde_json::to_string(&e).unwrap_or_default();
            let event = SseEvent::default().id(e.id).event(e.kind).data(data);
            return Some((Ok(event), c));
        }
        let engine = c.engine.clone();
        let outbox = &engine.services.events;
        let stored = outbox.stored.notified();
        match outbox.events_after(c.seq, 100) {
            Ok(rows) if !rows.is_empty() => {
                for (seq, e) in rows {
                    c.seq = seq;
                    c.buffer.push_back(e);
                }
            }
            Ok(_) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), stored).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "the event stream cannot read the outbox; closing it");
                return None;
            }
        }
    }
}
