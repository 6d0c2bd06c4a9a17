//! The HTTP side: routing, Basic authentication, and the XML-RPC endpoint's answers.

use super::*;

pub(super) fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route(RPC_PATH, post(rpc).get(wrong_method))
        .route("/sign/rpc", post(rpc).get(wrong_method))
        .route("/_control/transactions/{id}", get(control_view))
        .route(
            "/_control/transactions/{id}/signers/{index}/{action}",
            post(control_signer),
        )
        .route(
            "/_control/transactions/{id}/{action}",
            post(control_transaction),
        )
        .route("/_control/unavailable/{on}", post(control_unavailable))
        .with_state(state)
}

pub(super) async fn wrong_method() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "XML-RPC calls are POST requests",
    )
        .into_response()
}

pub(super) fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"))],
        body,
    )
        .into_response()
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"Universign\""),
            (header::CONTENT_TYPE, "text/html"),
        ],
        "<html><body><h1>401 Unauthorized</h1></body></html>",
    )
        .into_response()
}

pub(super) async fn rpc(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>503 Service Unavailable</title></head><body><h1>Service \
             Unavailable</h1><p>The server is temporarily unable to service your request \
             due to maintenance downtime.</p></body></html>",
        )
            .into_response();
    }
    let Some((user, password)) = credentials::basic(&headers) else {
        return unauthorized();
    };
    let call = parse_call(&body);
    if let Ok(call) = &call {
        let subject = call.params.first().and_then(Rpc::as_str).map(str::to_owned);
        lock(&state.calls).push((call.method.clone(), subject));
    }
    if user != state.opts.user || password != state.opts.password {
        return match state.opts.bad_credentials {
            BadCredentials::Http401 => unauthorized(),
            BadCredentials::Fault => xml_response(
                StatusCode::OK,
                fault(
                    faults::INVALID_LOGIN,
                    "Error on authentication: invalid login or password",
                ),
            ),
        };
    }
    let body = match call {
        Err(reason) => fault(
            faults::MALFORMED_REQUEST,
            &format!("Malformed request: {reason}"),
        ),
        Ok(call) => match dispatch(&state, &call) {
            Ok(value) => success(&value),
            Err((code, message)) => fault(code, &message),
        },
    };
    xml_response(StatusCode::OK, body)
}
