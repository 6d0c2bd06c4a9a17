//! OAuth2 client-credentials tokens, fetched and cached by the host for every plugin.
//!
//! Keyed by instance, token URL, client id and scope, so two instances never share a token.
//! Tokens are kept in memory and, with [`TokenCache::shared`], also in the state database,
//! sealed like other secrets, so that `serve`, cron's `tasks run` and the CLI on one data
//! directory use one token instead of each asking the provider (whose token endpoints have
//! quotas of their own). A token is reused until shortly before it expires
//! (a minute, or a tenth of its life when shorter). Client secrets and tokens are registered
//! with the redactor before anything could log them.

use super::http::HttpService;
use super::state::StateDb;
use crate::redact;
use crate::secrets::SecretKey;
use passerelle_plugin_api::host::wire::{HttpOutcome, OAuth2Request, OAuth2Token};
use passerelle_plugin_api::oauth2::{parse_token_response, token_http_request};
use passerelle_plugin_api::PluginError;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, OAuth2Token>>,
    /// Seals the tokens shared through the state database; `None`: this process only.
    seal: Option<SecretKey>,
}

/// The sealed field name of shared tokens (sealing binds a value to instance and field).
const SEALED_FIELD: &str = "oauth2-token";

fn margin_ms(lifetime_ms: u64) -> u64 {
    (lifetime_ms / 10).min(60_000)
}

impl TokenCache {
    /// A cache whose tokens are shared with the other processes of the data directory.
    pub fn shared(seal: SecretKey) -> Self {
        TokenCache {
            tokens: Mutex::default(),
            seal: Some(seal),
        }
    }

    /// A token shared by another process, still good at `now_ms`.
    fn shared_token(
        &self,
        state: &StateDb,
        instance: &str,
        key: &str,
        now_ms: u64,
    ) -> Option<OAuth2Token> {
        let seal = self.seal.as_ref()?;
        let (sealed, reuse_until) = state.shared_token(&shared_key(key)).ok()??;
        if u64::try_from(reuse_until).unwrap_or(0) <= now_ms {
            return None;
        }
        let json = seal.open(instance, SEALED_FIELD, &sealed).ok()?;
        let token: OAuth2Token = serde_json::from_str(&json).ok()?;
        redact::register(&token.access_token);
        Some(token)
    }

    fn share(&self, state: &StateDb, instance: &str, key: &str, token: &OAuth2Token) {
        let Some(seal) = &self.seal else {
            return;
        };
        let Ok(json) = serde_json::to_string(token) else {
            return;
        };
        let sealed = seal.seal(instance, SEALED_FIELD, &json);
        let until = i64::try_from(token.expires_at_ms).unwrap_or(i64::MAX);
        if let Err(e) = state.put_shared_token(&shared_key(key), &sealed, until) {
            tracing::warn!(instance, error = %e, "cannot share the oauth2 token with other processes");
        }
    }

    pub async fn token(
        &self,
        state: &StateDb,
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
            if let Some(mut token) = self.shared_token(state, instance, &key, now_ms) {
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert(key, token.clone());
                }
                token.cached = true;
                return Ok(token);
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
            self.share(state, instance, &key, &cached);
            tokens.insert(key, cached);
        }
        token.cached = false;
        tracing::info!(instance, token_url = %request.token_url, expires_in_s = lifetime / 1000, "oauth2 token obtained");
        Ok(token)
    }
}

/// The state database's key of a cache key: its digest (the cache key holds the digest of the
/// client secret, and nothing of it needs to be readable there).
fn shared_key(key: &str) -> String {
    crate::signing::sha256_hex(key.as_bytes())
}
