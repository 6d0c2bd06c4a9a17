//! The one HTTP client of the host.
//!
//! rustls with the system's root certificates; connect and request timeouts; a request log
//! line per call with method, URL, status and duration — never headers or bodies, so that
//! credentials cannot leak into logs. Failures without a response are classified
//! (connect, TLS, timeout) so that a test report can say what to fix.
//!
//! NTLM (`HttpRequest::auth`) authenticates a connection, not a request, so those requests
//! do not use the shared pool: each runs on a session of its own — a client that speaks
//! HTTP/1.1 only (connection-bound authentication is not allowed over HTTP/2) and keeps at
//! most one idle connection — taken from the idle sessions of its credentials and origin and
//! given back after the answer was read, so the one connection it holds is the one that the
//! handshake authenticated. A session serves one request at a time; concurrent requests get
//! sessions (connections) of their own, each authenticated once. reqwest rather than a
//! hand-held hyper connection keeps one TLS configuration, one trust store and one error
//! classification for every request; when the server closes an idle connection, the
//! session's next request gets a 401 on the new one and the handshake runs again.

use super::ntlm;
use crate::trust::TrustStore;
use passerelle_plugin_api::host::wire::HttpOutcome;
use passerelle_plugin_api::{
    HttpAuth, HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Timeout of a request when the plugin does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers larger than this are cut off with an error: plugins get bodies in memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct HttpSetupError(String);

/// How often the trust folder is checked for changes.
const TRUST_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct ClientState {
    client: reqwest::Client,
    stamp: String,
    checked: Instant,
}

#[derive(Debug)]
pub struct HttpService {
    trust: TrustStore,
    state: RwLock<ClientState>,
    /// Issuer of the last certificate refused for an unknown issuer, by server name.
    unknown_issuers: Arc<Mutex<HashMap<String, String>>>,
    /// Idle NTLM sessions by credentials, origin and trust stamp.
    ntlm_sessions: Mutex<HashMap<SessionKey, Vec<NtlmSession>>>,
}

/// Idle NTLM sessions kept per key; more concurrent requests open more, then drop them.
const MAX_IDLE_SESSIONS: usize = 32;

/// Whose connections an NTLM session holds. The password enters only as a SHA-256, so a
/// changed password never reuses a connection authenticated with the old one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    origin: String,
    domain: String,
    user: String,
    password_sha256: [u8; 32],
    trust_stamp: String,
}

/// A client holding (at most) one connection, and whether the handshake authenticated it.
#[derive(Debug)]
struct NtlmSession {
    client: reqwest::Client,
    authenticated: bool,
}

/// A checked request, ready to be sent on any client.
struct Prepared {
    method: reqwest::Method,
    url: reqwest::Url,
    timeout: Duration,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A certificate verifier that remembers which issuer it did not know, so that the error
/// shown to the administrator can name it.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    unknown_issuers: Arc<Mutex<HashMap<String, String>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) = &result {
            let top = intermediates.last().unwrap_or(end_entity);
            if let (Some(issuer), Ok(mut map)) = (
                crate::trust::issuer_of(top.as_ref()),
                self.unknown_issuers.lock(),
            ) {
                map.insert(server_name.to_str().into_owned(), issuer);
            }
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Which connections a client keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    /// The shared client: HTTP/2 or HTTP/1.1, pooled connections.
    Shared,
    /// An NTLM session: HTTP/1.1 only, one idle connection.
    SingleConnection,
}

fn build_client(
    trust: &TrustStore,
    unknown_issuers: &Arc<Mutex<HashMap<String, String>>>,
    pooling: Pooling,
) -> Result<reqwest::Client, HttpSetupError> {
    let setup = |e: &dyn std::fmt::Display| HttpSetupError(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    let extra = trust.ders().map_err(|e| setup(&e))?;
    for der in extra {
        if let Err(e) = roots.add(CertificateDer::from(der)) {
            tracing::warn!(error = %e, dir = %trust.dir().display(), "a certificate of the trust store was not accepted as a root");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| setup(&e))?;
    let verifier = RecordingVerifier {
        inner,
        unknown_issuers: unknown_issuers.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut builder = reqwest::Client::builder();
    match pooling {
        Pooling::Shared => {
            tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        Pooling::SingleConnection => {
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.http1_only().pool_max_idle_per_host(1);
        }
    }
    builder
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| setup(&e))
}

impl HttpService {
    pub fn new(trust: TrustStore) -> Result<Self, HttpSetupError> {
        let unknown_issuers = Arc::new(Mutex::new(HashMap::new()));
        let client = build_client(&trust, &unknown_issuers, Pooling::Shared)?;
        let stamp = trust.stamp();
        Ok(HttpService {
            trust,
            state: RwLock::new(ClientState {
                client,
                stamp,
                checked: Instant::now(),
            }),
            unknown_issuers,
            ntlm_sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The current client, rebuilt when the trust folder changed since it was built.
    fn client(&self) -> reqwest::Client {
        let fresh = self
            .state
            .read()
            .ok()
            .filter(|s| s.checked.elapsed() < TRUST_CHECK)
            .map(|s| s.client.clone());
        if let Some(client) = fresh {
            return client;
        }
        let Ok(mut state) = self.state.write() else {
            return reqwest::Client::new();
        };
        state.checked = Instant::now();
        let stamp = self.trust.stamp();
        if stamp != state.stamp {
            match build_client(&self.trust, &self.unknown_issuers, Pooling::Shared) {
                Ok(client) => {
                    tracing::info!(dir = %self.trust.dir().display(), "trust store changed; HTTP client reloaded");
                    state.client = client;
                    state.stamp = stamp;
                }
                Err(e) => {
                    tracing::error!(error = %e, "trust store changed but the HTTP client cannot be rebuilt; keeping the previous one")
                }
            }
        }
        state.client.clone()
    }

    fn unknown_issuer(&self, host: &str) -> Option<String> {
        self.unknown_issuers.lock().ok()?.get(host).cloned()
    }

    /// Sends a plugin's request. Any HTTP status is a response.
    pub async fn send(&self, instance: &str, request: HttpRequest) -> HttpOutcome {
        let started = Instant::now();
        let method = request.method;
        let url_for_log = strip_query(&request.url);
        let outcome = self.send_inner(request).await;
        let ms = started.elapsed().as_millis();
        match &outcome {
            HttpOutcome::Response(r) => {
                tracing::info!(instance, method = ?method, url = %url_for_log, status = r.status, ms, "http")
            }
            HttpOutcome::Error(e) => {
                tracing::warn!(instance, method = ?method, url = %url_for_log, error = %e.message, ms, "http failed")
            }
        }
        outcome
    }

    async fn send_inner(&self, request: HttpRequest) -> HttpOutcome {
        let auth = request.auth.clone();
        let prepared = match prepare(request) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        match auth {
            None => {
                let client = self.client();
                self.execute(&client, &prepared, None).await
            }
            Some(HttpAuth::Ntlm {
                user,
                domain,
                password,
            }) => {
                crate::redact::register(&password);
                self.send_ntlm(&prepared, &user, &domain, &password).await
            }
        }
    }

    /// Sends `prepared` on `client`, with `authorization` replacing any the plugin set.
    async fn execute(
        &self,
        client: &reqwest::Client,
        prepared: &Prepared,
        authorization: Option<&str>,
    ) -> HttpOutcome {
        let url = &prepared.url;
        let timeout = prepared.timeout;
        let mut builder = client
            .request(prepared.method.clone(), url.clone())
            .timeout(timeout);
        for (name, value) in &prepared.headers {
            if authorization.is_some() && name.eq_ignore_ascii_case("authorization") {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(value) = authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if !prepared.body.is_empty() {
            builder = builder.body(prepared.body.clone());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.classify(url, timeout, &e),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|l| l > MAX_BODY as u64)
        {
            return error(
                HttpErrorKind::Other,
                format!(
                    "the answer of {} is larger than {} MiB",
                    strip_query(url.as_str()),
                    MAX_BODY / 1024 / 1024
                ),
            );
        }
        match response.bytes().await {
            Ok(body) => HttpOutcome::Response(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            }),
            Err(e) => self.classify(url, timeout, &e),
        }
    }

    /// Sends `prepared` on an NTLM-authenticated connection: an idle session of these
    /// credentials as it is, or the three-message handshake on a new connection (or again
    /// on one the server no longer accepts).
    async fn send_ntlm(
        &self,
        prepared: &Prepared,
        user: &str,
        domain: &str,
        password: &str,
    ) -> HttpOutcome {
        use sha2::Digest as _;
        // Refreshes the shared client, and with it the trust stamp the sessions are keyed by.
        let _ = self.client();
        let trust_stamp = self
            .state
            .read()
            .map(|s| s.stamp.clone())
            .unwrap_or_default();
        let key = SessionKey {
            origin: prepared.url.origin().ascii_serialization(),
            domain: domain.to_owned(),
            user: user.to_owned(),
            password_sha256: sha2::Sha256::digest(password.as_bytes()).into(),
            trust_stamp,
        };
        let idle = self
            .ntlm_sessions
            .lock()
            .ok()
            .and_then(|mut map| map.get_mut(&key).and_then(Vec::pop));
        let mut session = match idle {
            Some(s) => s,
            None => match build_client(
                &self.trust,
                &self.unknown_issuers,
                Pooling::SingleConnection,
            ) {
                Ok(client) => NtlmSession {
                    client,
                    authenticated: false,
                },
                Err(e) => return error(HttpErrorKind::Other, e.to_string()),
            },
        };
        if session.authenticated {
            let outcome = self.execute(&session.client, prepared, None).await;
            match &outcome {
                HttpOutcome::Response(r) if r.status == 401 && asks_ntlm(r) => {
                    // A new connection (the server closed the idle one) or an expired
                    // authentication: run the handshake again below.
                    session.authenticated = false;
                }
                HttpOutcome::Response(_) => {
                    self.give_back(key, session);
                    return outcome;
                }
                HttpOutcome::Error(_) => return outcome,
            }
        }
        let negotiate = match ntlm::negotiate_header() {
            Ok(h) => h,
            Err(e) => return error(HttpErrorKind::Other, e.to_string()),
        };
        let first = self
            .execute(&session.client, prepared, Some(&negotiate))
            .await;
        let challenge = match &first {
            HttpOutcome::Response(r) if r.status == 401 => r
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
                .find_map(|(_, v)| ntlm::challenge_of(v).map(str::to_owned)),
            // Not asked to authenticate (or failed): that is the answer.
            _ => None,
        };
        let Some(challenge) = challenge else {
            // A 401 without an NTLM challenge: the server does not offer NTLM here. The
            // plugin reads its WWW-Authenticate and says which scheme to choose.
            return first;
        };
        let authenticate = match ntlm::authenticate_header(&challenge, user, domain, password) {
            Ok(h) => h,
            Err(e) => {
                return error(
                    HttpErrorKind::Other,
                    format!(
                        "NTLM authentication with {} failed: {e}",
                        strip_query(prepared.url.as_str())
                    ),
                )
            }
        };
        let last = self
            .execute(&session.client, prepared, Some(&authenticate))
            .await;
        if let HttpOutcome::Response(r) = &last {
            if r.status != 401 {
                session.authenticated = true;
                self.give_back(key, session);
            }
        }
        last
    }

    fn give_back(&self, key: SessionKey, session: NtlmSession) {
        if let Ok(mut map) = self.ntlm_sessions.lock() {
            let idle = map.entry(key).or_default();
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(session);
            }
        }
    }
}

/// Whether a 401 asks for NTLM (a fresh handshake).
fn asks_ntlm(response: &HttpResponse) -> bool {
    response
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && ntlm::offers_ntlm(v))
}

/// Checks the URL and method, registers secret headers with the redactor.
fn prepare(request: HttpRequest) -> Result<Prepared, HttpOutcome> {
    let url = match reqwest::Url::parse(&request.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            return Err(error(
                HttpErrorKind::InvalidUrl,
                format!(
                    "the URL scheme `{}` is not supported; use https:// (or http:// for a local service)",
                    u.scheme()
                ),
            ))
        }
        Err(e) => {
            return Err(error(
                HttpErrorKind::InvalidUrl,
                format!("{:?} is not a valid URL ({e})", request.url),
            ))
        }
    };
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Head => reqwest::Method::HEAD,
    };
    let timeout = request
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT);
    for (name, value) in &request.headers {
        let secret = name.eq_ignore_ascii_case("authorization")
            || request
                .secret_headers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name));
        if secret {
            crate::redact::register(value);
            if let Some((_, credential)) = value.split_once(' ') {
                crate::redact::register(credential);
            }
        }
    }
    Ok(Prepared {
        method,
        url,
        timeout,
        headers: request.headers,
        body: request.body,
    })
}

fn error(kind: HttpErrorKind, message: String) -> HttpOutcome {
    HttpOutcome::Error(HttpError { kind, message })
}

/// The URL without its query string (which may carry a key).
fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

impl HttpService {
    /// Turns a reqwest failure into a kind and a message that says what to check.
    fn classify(&self, url: &reqwest::Url, timeout: Duration, e: &reqwest::Error) -> HttpOutcome {
        let host = url.host_str().unwrap_or("?").to_owned();
        let chain = error_chain(e);
        if chain.contains("UnknownIssuer") {
            let issuer = self
                .unknown_issuer(&host)
                .map(|i| format!("“{i}”"))
                .unwrap_or_else(|| "an authority".to_owned());
            return error(
            HttpErrorKind::Tls,
            format!(
                "the certificate of {host} is issued by {issuer}, which this host does not trust. If that authority is legitimate for this provider, add its certificate with `passerelle trust add <ca-certificate.pem>` (the host picks it up without a restart); certificate checks cannot be disabled"
            ),
        );
        }
        let lower = chain.to_lowercase();
        if e.is_timeout() {
            return error(
                HttpErrorKind::Timeout,
                format!("{host} did not answer within {} s", timeout.as_secs_f64()),
            );
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return error(
                HttpErrorKind::Tls,
                format!("the TLS connection to {host} failed: {chain}"),
            );
        }
        if e.is_connect() || lower.contains("dns") || lower.contains("connection refused") {
            return error(
            HttpErrorKind::Connect,
            format!(
                "cannot reach {host} ({}): {chain}; check the URL and that the service is up and reachable from this machine",
                strip_query(url.as_str())
            ),
        );
        }
        error(
            HttpErrorKind::Other,
            format!("request to {host} failed: {chain}"),
        )
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
