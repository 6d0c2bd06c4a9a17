//! The one HTTP client of the host.
//!
//! rustls with the system's root certificates; connect and request timeouts; a request log
//! line per call with method, URL, status and duration — never headers or bodies, so that
//! credentials cannot leak into logs. Failures without a response are classified
//! (connect, TLS, timeout) so that a test report can say what to fix.
//!
//! NTLM (`HttpRequest::auth`) authenticates a connection, not a request, so those requests
//! do not use the shared pool: each runs on a connection the host holds itself with hyper's
//! connection-level HTTP/1.1 client (`hyper::client::conn::http1`; HTTP/2 forbids
//! connection-bound authentication), with the same TLS settings and trust store. A pooled
//! client cannot promise that the authenticate message travels on the connection that got
//! the challenge: when its idle connection is not ready yet, it races a new one and often
//! picks it, and the server then refuses the handshake. Connections are kept idle per
//! credentials and origin and serve one request at a time; concurrent requests get
//! connections of their own, each authenticated once. A connection the server closed is
//! dropped, and a 401 on an authenticated one runs the handshake again.

use super::ntlm;
use crate::trust::TrustStore;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
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
    ntlm_tls: Arc<rustls::ClientConfig>,
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

/// One HTTP/1.1 connection, and whether the handshake authenticated it.
struct NtlmSession {
    sender: http1::SendRequest<Full<Bytes>>,
    authenticated: bool,
    /// MsvAvChannelBindings of a TLS connection.
    binding: Option<[u8; 16]>,
}

impl std::fmt::Debug for NtlmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmSession")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
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

/// The host's TLS settings: system roots plus the trust store, a verifier that remembers
/// unknown issuers; no ALPN (each use sets its own).
fn tls_config(
    trust: &TrustStore,
    unknown_issuers: &Arc<Mutex<HashMap<String, String>>>,
) -> Result<rustls::ClientConfig, HttpSetupError> {
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
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The shared client, and the TLS settings of NTLM connections (HTTP/1.1 only: HTTP/2
/// forbids connection-bound authentication).
fn build_clients(
    trust: &TrustStore,
    unknown_issuers: &Arc<Mutex<HashMap<String, String>>>,
) -> Result<(reqwest::Client, Arc<rustls::ClientConfig>), HttpSetupError> {
    let base = tls_config(trust, unknown_issuers)?;
    let mut ntlm = base.clone();
    ntlm.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut tls = base;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| HttpSetupError(e.to_string()))?;
    Ok((client, Arc::new(ntlm)))
}

const USER_AGENT: &str = concat!("passerelle/", env!("CARGO_PKG_VERSION"));

impl HttpService {
    pub fn new(trust: TrustStore) -> Result<Self, HttpSetupError> {
        let unknown_issuers = Arc::new(Mutex::new(HashMap::new()));
        let (client, ntlm_tls) = build_clients(&trust, &unknown_issuers)?;
        let stamp = trust.stamp();
        Ok(HttpService {
            trust,
            state: RwLock::new(ClientState {
                client,
                ntlm_tls,
                stamp,
                checked: Instant::now(),
            }),
            unknown_issuers,
            ntlm_sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The current client, rebuilt when the trust folder changed since it was built. Also
    /// what webhook deliveries use, so the added authorities apply to the ERP's receiver.
    pub fn client(&self) -> reqwest::Client {
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
            match build_clients(&self.trust, &self.unknown_issuers) {
                Ok((client, ntlm_tls)) => {
                    tracing::info!(dir = %self.trust.dir().display(), "trust store changed; HTTP client reloaded");
                    state.client = client;
                    state.ntlm_tls = ntlm_tls;
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

    /// What to do about a certificate from an authority the host does not trust.
    fn unknown_issuer_message(&self, host: &str) -> String {
        let issuer = self
            .unknown_issuer(host)
            .map(|i| format!("“{i}”"))
            .unwrap_or_else(|| "an authority".to_owned());
        format!(
            "the certificate of {host} is issued by {issuer}, which this host does not trust. If that authority is legitimate for this provider, add its certificate with `passerelle trust add <ca-certificate.pem>` (the host picks it up without a restart); certificate checks cannot be disabled"
        )
    }

    /// Sends a plugin's request. Any HTTP status is a response.
    pub async fn send(&self, instance: &str, request: HttpRequest) -> HttpOutcome {
        let started = Instant::now();
        let method = request.method;
        let url_for_log = strip_query(&request.url);
        let outcome = self.send_inner(request).await;
        let took = started.elapsed();
        let ms = took.as_millis();
        match &outcome {
            HttpOutcome::Response(r) => crate::metrics::provider_response(instance, r.status, took),
            HttpOutcome::Error(e) => crate::metrics::provider_failure(instance, e.kind, took),
        }
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
                self.execute(&client, &prepared).await
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

    /// Sends `prepared` on the shared client.
    async fn execute(&self, client: &reqwest::Client, prepared: &Prepared) -> HttpOutcome {
        let url = &prepared.url;
        let timeout = prepared.timeout;
        let mut builder = client
            .request(prepared.method.clone(), url.clone())
            .timeout(timeout);
        for (name, value) in &prepared.headers {
            builder = builder.header(name.as_str(), value.as_str());
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

    /// Sends `prepared` on an NTLM-authenticated connection: an idle one of these
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
        // Refreshes the shared client, and with it the TLS settings and trust stamp.
        let _ = self.client();
        let Ok((tls, trust_stamp)) = self
            .state
            .read()
            .map(|s| (s.ntlm_tls.clone(), s.stamp.clone()))
        else {
            return error(HttpErrorKind::Other, "the HTTP service is unusable".into());
        };
        let key = SessionKey {
            origin: prepared.url.origin().ascii_serialization(),
            domain: domain.to_owned(),
            user: user.to_owned(),
            password_sha256: sha2::Sha256::digest(password.as_bytes()).into(),
            trust_stamp,
        };
        let idle = self.ntlm_sessions.lock().ok().and_then(|mut map| {
            let idle = map.get_mut(&key)?;
            // Connections the server closed while idle are of no use.
            idle.retain(|s| !s.sender.is_closed());
            idle.pop()
        });
        let mut session = match idle {
            Some(s) => s,
            None => match self.connect(&prepared.url, tls).await {
                Ok((sender, binding)) => NtlmSession {
                    sender,
                    authenticated: false,
                    binding,
                },
                Err(outcome) => return outcome,
            },
        };
        if session.authenticated {
            let outcome = self.exchange(&mut session.sender, prepared, None).await;
            match &outcome {
                HttpOutcome::Response(r) if r.status == 401 && asks_ntlm(r) => {
                    // The server no longer counts the connection as authenticated.
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
            .exchange(&mut session.sender, prepared, Some(&negotiate))
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
        let authenticate =
            match ntlm::authenticate_header(&challenge, user, domain, password, session.binding) {
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
            .exchange(&mut session.sender, prepared, Some(&authenticate))
            .await;
        if let HttpOutcome::Response(r) = &last {
            if r.status != 401 {
                session.authenticated = true;
                self.give_back(key, session);
            }
        }
        last
    }

    /// Opens an HTTP/1.1 connection to the URL's origin (TLS for https).
    async fn connect(
        &self,
        url: &reqwest::Url,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<(http1::SendRequest<Full<Bytes>>, Option<[u8; 16]>), HttpOutcome> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let unreachable = |why: String| {
            error(
                HttpErrorKind::Connect,
                format!(
                    "cannot reach {host} ({}): {why}; check the URL and that the service is up and reachable from this machine",
                    strip_query(url.as_str())
                ),
            )
        };
        // Brackets of an IPv6 literal are URL syntax, not part of the address.
        let address = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((address.as_str(), port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("connection timed out".into())),
        };
        let _ = tcp.set_nodelay(true);
        let handshake = if url.scheme() == "https" {
            let name = match rustls::pki_types::ServerName::try_from(address.clone()) {
                Ok(n) => n,
                Err(e) => {
                    return Err(error(
                        HttpErrorKind::InvalidUrl,
                        format!("{host} is not a valid server name ({e})"),
                    ))
                }
            };
            let stream = match tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(self.tls_failure(&host, &e.to_string())),
                Err(_) => return Err(unreachable("TLS handshake timed out".into())),
            };
            let binding = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ntlm::channel_binding(leaf.as_ref()));
            http1::handshake(TokioIo::new(stream))
                .await
                .map(|(sender, conn)| {
                    tokio::spawn(conn);
                    (sender, binding)
                })
        } else {
            http1::handshake(TokioIo::new(tcp))
                .await
                .map(|(sender, conn)| {
                    tokio::spawn(conn);
                    (sender, None)
                })
        };
        handshake.map_err(|e| unreachable(e.to_string()))
    }

    /// The error of a failed TLS handshake, naming an unknown issuer and how to trust it.
    fn tls_failure(&self, host: &str, why: &str) -> HttpOutcome {
        if why.contains("UnknownIssuer") {
            return error(HttpErrorKind::Tls, self.unknown_issuer_message(host));
        }
        error(
            HttpErrorKind::Tls,
            format!("the TLS connection to {host} failed: {why}"),
        )
    }

    /// One request and its whole answer on `sender`'s connection.
    async fn exchange(
        &self,
        sender: &mut http1::SendRequest<Full<Bytes>>,
        prepared: &Prepared,
        authorization: Option<&str>,
    ) -> HttpOutcome {
        let url = &prepared.url;
        let host = url.host_str().unwrap_or("?").to_owned();
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let mut builder = hyper::Request::builder()
            .method(prepared.method.clone())
            .uri(target)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, USER_AGENT);
        for (name, value) in &prepared.headers {
            if authorization.is_some() && name.eq_ignore_ascii_case("authorization") {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(value) = authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, value);
        }
        let request = match builder.body(Full::new(Bytes::from(prepared.body.clone()))) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    HttpErrorKind::InvalidUrl,
                    format!("cannot build the request to {host}: {e}"),
                )
            }
        };
        let round_trip = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = Limited::new(response.into_body(), MAX_BODY).collect().await;
            Ok::<_, hyper::Error>((status, headers, body))
        };
        match tokio::time::timeout(prepared.timeout, round_trip).await {
            Err(_) => error(
                HttpErrorKind::Timeout,
                format!(
                    "{host} did not answer within {} s",
                    prepared.timeout.as_secs_f64()
                ),
            ),
            Ok(Err(e)) => error(
                HttpErrorKind::Other,
                format!("request to {host} failed: {}", error_chain(&e)),
            ),
            Ok(Ok((_, _, Err(e)))) => error(
                HttpErrorKind::Other,
                format!(
                    "the answer of {} could not be read (larger than {} MiB?): {e}",
                    strip_query(url.as_str()),
                    MAX_BODY / 1024 / 1024
                ),
            ),
            Ok(Ok((status, headers, Ok(body)))) => HttpOutcome::Response(HttpResponse {
                status,
                headers,
                body: body.to_bytes().to_vec(),
            }),
        }
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
            return error(HttpErrorKind::Tls, self.unknown_issuer_message(&host));
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
