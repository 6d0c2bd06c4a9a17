//! OAuth2 client-credentials tokens, fetched and cached by the host for every plugin.
//!
//! One cache per process, keyed by instance, token URL, client id and scope, so two
//! instances never share a token. A token is reused until shortly before it expires
//! (a minute, or a tenth of its life when shorter). Client secrets and tokens are registered
//! with the redactor before anything could log them.

use super::http::HttpService;
use crate::redact;
use passerelle_plugin_api::host::wire::{HttpOutcome, OAuth2Request, OAuth2Token};
use passerelle_plugin_api::oauth2::{parse_token_response, token_http_request};
use passerelle_plugin_api::PluginError;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, OAuth2Token>>,
}

fn margin_ms(lifetime_ms: u64) -> u64 {
    (lifetime_ms / 10).min(60_000)
}

impl TokenCache {
    pub async fn token(
        &self,
        http: &HttpService,
        instance: &str,
        request: &OAuth2Request,
        now_ms: u64,
    ) -> Result<OAuth2Token, PluginError> {
        redact::register(&request.client_secret);
        // The secret's digest is part of the key: a changed secret never reuses a token
        // obtained with the old one.
        let key = format!(
            "{instance}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            request.token_url,
            request.client_id,
            request.scope.as_deref().unwrap_or(""),
            crate::signing::sha256_hex(request.client_secret.as_bytes())
        );
        if !request.force_refresh {
            let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
            if let Some(mut token) = cached {
                if token.expires_at_ms > now_ms {
                    token.cached = true;
                    return Ok(token);
                }
            }
        }
        let response = match http.send(instance, token_http_request(request)).await {
            HttpOutcome::Response(r) => r,
            HttpOutcome::Error(e) => {
                let mut err: PluginError = e.into();
                err.message = format!("cannot reach the token endpoint: {}", err.message);
                return Err(err);
            }
        };
        let mut token = parse_token_response(&response, now_ms)?;
        redact::register(&token.access_token);
        let lifetime = token.expires_at_ms.saturating_sub(now_ms);
        // Keep the provider's expiry for callers, but stop reusing it a little earlier.
        let reuse_until = token.expires_at_ms.saturating_sub(margin_ms(lifetime));
        if let Ok(mut tokens) = self.tokens.lock() {
            let mut cached = token.clone();
            cached.expires_at_ms = reuse_until;
            tokens.insert(key, cached);
        }
        token.cached = false;
        tracing::info!(instance, token_url = %request.token_url, expires_in_s = lifetime / 1000, "oauth2 token obtained");
        Ok(token)
    }
}
