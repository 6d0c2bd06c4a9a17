//! Who is calling: Basic, NTLM (MS-NLMP, bound to the connection, with channel binding
//! over TLS) or OAuth bearer tokens, and what they may open (impersonation, delegate
//! access).

use super::*;

impl Shared {
    pub(super) fn authenticate(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<Principal, Reply> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ntlm_token = auth
            .strip_prefix("NTLM ")
            .or_else(|| auth.strip_prefix("Negotiate "));
        if let Some(token) = ntlm_token {
            if !self.opts.auth.ntlm {
                return Err(self.unauthorized(None));
            }
            return self.ntlm(peer, token.trim());
        }
        if let Some(encoded) = auth.strip_prefix("Basic ") {
            if !self.opts.auth.basic {
                // IIS with Basic off answers as if no credentials came, offering the others.
                return Err(self.unauthorized(None));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            if let Some((user, password)) = decoded.split_once(':') {
                let known = self
                    .opts
                    .users
                    .iter()
                    .any(|(u, p)| u.eq_ignore_ascii_case(user) && p == password);
                if known {
                    return Ok(Principal::User(user.to_lowercase()));
                }
            }
            return Err(self.unauthorized(None));
        }
        if let Some(token) = auth.strip_prefix("Bearer ") {
            if !self.opts.auth.oauth {
                return Err(self.unauthorized(None));
            }
            let tokens = lock(&self.tokens);
            return match tokens.get(token.trim()) {
                Some((client_id, expiry)) if *expiry > Instant::now() => {
                    Ok(Principal::App(client_id.clone()))
                }
                Some(_) => Err(self.unauthorized(Some("The token has expired."))),
                None => Err(self.unauthorized(Some("The token is invalid."))),
            };
        }
        if auth.is_empty() {
            if let Some(NtlmConnection::Authenticated(p)) = lock(&self.connections).get(&peer) {
                return Ok(p.clone());
            }
        }
        Err(self.unauthorized(None))
    }

    /// One leg of the NTLM handshake on the connection from `peer`.
    pub(super) fn ntlm(&self, peer: SocketAddr, token: &str) -> Result<Principal, Reply> {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return Err(self.unauthorized(None));
        };
        match ntlm::message_type(&bytes) {
            Some(1) => {
                if ntlm::read_negotiate(&bytes).is_err() {
                    return Err(self.unauthorized(None));
                }
                let server_challenge: [u8; 8] = rand::random();
                lock(&self.connections).insert(peer, NtlmConnection::Challenged(server_challenge));
                let domain = &self.opts.auth.domain;
                let names = ntlm::ServerNames {
                    nb_domain: domain.to_uppercase(),
                    nb_computer: "EX01".into(),
                    dns_domain: format!("{}.local", domain.to_lowercase()),
                    dns_computer: format!("ex01.{}.local", domain.to_lowercase()),
                };
                let message = ntlm::challenge(server_challenge, &names, dates::filetime_now());
                let challenge = base64::engine::general_purpose::STANDARD.encode(message);
                Err(Reply {
                    status: StatusCode::UNAUTHORIZED,
                    body: String::new(),
                    headers: vec![(header::WWW_AUTHENTICATE, format!("NTLM {challenge}"))],
                })
            }
            Some(3) => {
                // Only the connection that received the challenge may answer it, once.
                let state = lock(&self.connections).remove(&peer);
                let Some(NtlmConnection::Challenged(server_challenge)) = state else {
                    return Err(self.unauthorized(None));
                };
                let Ok(auth) = ntlm::read_authenticate(&bytes) else {
                    return Err(self.unauthorized(None));
                };
                let Some((login, password)) = self.windows_account(&auth.user, &auth.domain) else {
                    return Err(self.unauthorized(None));
                };
                if ntlm::verify_v2(&auth, server_challenge, &password).is_err() {
                    return Err(self.unauthorized(None));
                }
                if let Some(expected) = *lock(&self.channel_binding) {
                    let sent = ntlm::channel_binding_of(&auth);
                    if self.opts.auth.extended_protection && sent.as_deref() != Some(&expected[..])
                    {
                        return Err(self.unauthorized(None));
                    }
                }
                let principal = Principal::User(login);
                self.ntlm_handshakes.fetch_add(1, Ordering::SeqCst);
                lock(&self.connections)
                    .insert(peer, NtlmConnection::Authenticated(principal.clone()));
                Ok(principal)
            }
            _ => Err(self.unauthorized(None)),
        }
    }

    /// The account (login, password) of an NTLM user: `user@domain` as a UPN with an empty
    /// domain, or the local part of a login with the organisation's NetBIOS domain.
    pub(super) fn windows_account(&self, user: &str, domain: &str) -> Option<(String, String)> {
        self.opts.users.iter().find_map(|(login, password)| {
            let matches = if domain.is_empty() {
                login.eq_ignore_ascii_case(user)
            } else {
                let local = login.split('@').next().unwrap_or(login);
                local.eq_ignore_ascii_case(user)
                    && domain.eq_ignore_ascii_case(&self.opts.auth.domain)
            };
            matches.then(|| (login.to_lowercase(), password.clone()))
        })
    }

    /// HTTP 401 offering the schemes the virtual directory accepts.
    pub(super) fn unauthorized(&self, error: Option<&str>) -> Reply {
        unauthorized(&self.opts.auth, error)
    }

    pub(super) fn may_impersonate(&self, principal: &Principal, mailbox: &str) -> bool {
        let p = principal.name().to_lowercase();
        !lock(&self.revoked).contains(&p) && !lock(&self.denied).contains(&(p, mailbox.to_owned()))
    }

    /// Whether the acting mailbox may open `owner`'s calendar.
    pub(super) fn may_open(&self, acting: &str, owner: &str) -> bool {
        acting == owner
            || lock(&self.delegates)
                .get(acting)
                .is_some_and(|owners| owners.contains(owner))
    }

    pub(super) fn server_rank(&self) -> usize {
        version_rank(&self.opts.server_version).unwrap_or(SCHEMA_VERSIONS.len())
    }
}
