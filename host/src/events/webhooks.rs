//! The webhooks registry: where events go, which types each wants, and its signing secret.
//!
//! A secret is sealed with the host's secret key like an instance's secret fields
//! ([`crate::secrets`], bound to `webhooks/<id>`), is never shown again once added, and is
//! registered with the redactor whenever it is opened. Every rule about a new webhook (URL,
//! event names, secret strength) is checked here, so the CLI, the API and the console apply
//! the same ones.

use super::outbox::{Outbox, OutboxError, WebhookRow};
use crate::secrets::{SecretError, SecretKey};
use passerelle_plugin_api::events::EVENT_TYPES;
use serde::Serialize;

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("url: {0:?} is not an http:// or https:// URL with a host; give the full address of the ERP's receiver, e.g. https://erp.example.com/passerelle/events")]
    BadUrl(String),
    #[error("events: unknown event type {given:?}; give `*` or a comma-separated list of: {}", EVENT_TYPES.join(", "))]
    UnknownEvent { given: String },
    #[error("events: the list is empty; give `*` for every event or a comma-separated list of: {}", EVENT_TYPES.join(", "))]
    NoEvents,
    #[error("secret: {MIN_SECRET_LEN} characters at least are needed (got {0}); generate one with `openssl rand -hex 32` and keep a copy for the receiver")]
    WeakSecret(usize),
    #[error("no webhook {0:?}; `passerelle webhooks list` shows them")]
    NotFound(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("the secret of webhook {id} cannot be opened: {source}")]
    Secret { id: String, source: SecretError },
}

/// A webhook as shown: never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// `*` or the event types it receives.
    pub events: Vec<String>,
    pub created_ms: i64,
}

impl From<&WebhookRow> for WebhookView {
    fn from(r: &WebhookRow) -> Self {
        WebhookView {
            id: r.id.clone(),
            url: r.url.clone(),
            events: r.events.split(',').map(str::to_owned).collect(),
            created_ms: r.created_ms,
        }
    }
}

fn aad_name(id: &str) -> String {
    format!("webhooks/{id}")
}

/// Checks and normalises an event list: `*`, or known types without repeats.
pub fn parse_events<S: AsRef<str>>(given: &[S]) -> Result<String, WebhookError> {
    let mut out: Vec<&str> = Vec::new();
    for item in given.iter().flat_map(|g| g.as_ref().split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item == "*" {
            return Ok("*".to_owned());
        }
        if !EVENT_TYPES.contains(&item) {
            return Err(WebhookError::UnknownEvent {
                given: item.to_owned(),
            });
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    if out.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    Ok(out.join(","))
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let ok = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    ok.map(|_| ())
        .ok_or_else(|| WebhookError::BadUrl(url.to_owned()))
}

/// Adds a webhook; returns it.
pub fn add(
    outbox: &Outbox,
    key: &SecretKey,
    url: &str,
    events: &[impl AsRef<str>],
    secret: &str,
) -> Result<WebhookView, WebhookError> {
    check_url(url)?;
    let events = parse_events(events)?;
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(WebhookError::WeakSecret(secret.chars().count()));
    }
    let mut bytes = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let id = format!("wh-{}", super::signature::hex(&bytes));
    let row = WebhookRow {
        sealed_secret: key.seal(&aad_name(&id), "secret", secret),
        id,
        url: url.to_owned(),
        events,
        created_ms: crate::services::state::now_ms(),
    };
    crate::redact::register(secret);
    outbox.add_webhook(&row)?;
    Ok(WebhookView::from(&row))
}

pub fn list(outbox: &Outbox) -> Result<Vec<WebhookView>, WebhookError> {
    Ok(outbox.webhooks()?.iter().map(WebhookView::from).collect())
}

pub fn remove(outbox: &Outbox, id: &str) -> Result<(), WebhookError> {
    if outbox.remove_webhook(id)? {
        Ok(())
    } else {
        Err(WebhookError::NotFound(id.to_owned()))
    }
}

/// A webhook ready to send to: its URL and opened secret.
#[derive(Clone)]
pub struct Target {
    pub id: String,
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Opens a stored webhook's secret.
pub fn target(key: &SecretKey, row: &WebhookRow) -> Result<Target, WebhookError> {
    let secret = key
        .open(&aad_name(&row.id), "secret", &row.sealed_secret)
        .map_err(|source| WebhookError::Secret {
            id: row.id.clone(),
            source,
        })?;
    Ok(Target {
        id: row.id.clone(),
        url: row.url.clone(),
        secret,
    })
}

/// The webhook `id`, opened.
pub fn find(outbox: &Outbox, key: &SecretKey, id: &str) -> Result<Target, WebhookError> {
    let row = outbox
        .webhook(id)?
        .ok_or_else(|| WebhookError::NotFound(id.to_owned()))?;
    target(key, &row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_keeps_its_secret_sealed_and_checks_what_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("e.sqlite3")).unwrap();
        let key = SecretKey::from_bytes(&[3u8; 32]).unwrap();
        let secret = "canary-webhook-secret-1234";
        let view = add(
            &outbox,
            &key,
            "https://erp.example/hook",
            &["esign.completed,esign.expired", "esign.completed"],
            secret,
        )
        .unwrap();
        assert_eq!(view.events, ["esign.completed", "esign.expired"]);
        let row = outbox.webhook(&view.id).unwrap().unwrap();
        assert!(!row.sealed_secret.contains("canary"));
        assert_eq!(find(&outbox, &key, &view.id).unwrap().secret, secret);
        assert!(!format!("{:?}", find(&outbox, &key, &view.id).unwrap()).contains("canary"));

        let e = add(&outbox, &key, "ftp://x", &["*"], secret).unwrap_err();
        assert!(e.to_string().starts_with("url:"), "{e}");
        let e = add(&outbox, &key, "https://x", &["esign.signed"], secret).unwrap_err();
        assert!(e.to_string().contains("esign.completed"), "{e}");
        let e = add(&outbox, &key, "https://x", &["*"], "short").unwrap_err();
        assert!(e.to_string().contains("openssl rand"), "{e}");
        assert_eq!(parse_events(&["esign.expired", "*"]).unwrap(), "*");

        remove(&outbox, &view.id).unwrap();
        assert!(matches!(
            remove(&outbox, &view.id),
            Err(WebhookError::NotFound(_))
        ));
    }
}
