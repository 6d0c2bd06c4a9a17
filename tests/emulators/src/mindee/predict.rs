//! `POST /v1/products/{owner}/{product}/{version}/predict`: the checks Mindee makes, in
//! Mindee's order, before answering with a stored prediction.

use super::*;

/// Whether the request may pass the rate limit now; it counts when it does.
pub(super) fn admit(state: &Shared) -> bool {
    if state.rate_limited.load(Ordering::SeqCst) {
        return false;
    }
    let limits: Vec<Limit> = [
        Limit::per_second(state.opts.per_second as usize),
        Limit::per_minute(state.opts.per_minute as usize),
    ]
    .into_iter()
    .filter(|l| l.max > 0)
    .collect();
    state.window.admit(&limits).is_ok()
}

pub(super) async fn predict(
    State(state): State<Arc<Shared>>,
    Path((owner, product, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let path = uri.path().to_owned();
    if owner != "mindee"
        || product != "expense_receipts"
        || !matches!(version.as_str(), "v4" | "v5")
    {
        return api_error(
            StatusCode::NOT_FOUND,
            &path,
            json!({
                "code": "NotFound",
                "message": "Product not found",
                "details": format!("No product {owner}/{product} {version}, or no subscription to it")
            }),
        );
    }

    // Django REST framework's TokenAuthentication: only the `Token` scheme is read.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "))
        .map(str::trim);
    match token {
        None => return json_response(StatusCode::UNAUTHORIZED, ERROR_401_NO_TOKEN),
        Some(t) if t != state.opts.api_key => {
            return json_response(StatusCode::UNAUTHORIZED, ERROR_401_INVALID_TOKEN)
        }
        Some(_) => {}
    }
    if state.plan_limit.load(Ordering::SeqCst) {
        return api_error(
            StatusCode::FORBIDDEN,
            &path,
            json!({
                "code": "PlanLimitReached",
                "message": "Plan limit reached",
                "details": "You have reached the maximum number of requests of your plan"
            }),
        );
    }
    if !admit(&state) {
        return json_response(StatusCode::TOO_MANY_REQUESTS, ERROR_429);
    }

    let file = match read_document(multipart).await {
        Ok(file) => file,
        Err(DocumentProblem::Missing) => return document_error(&path, "No file was submitted."),
        Err(DocumentProblem::NotAFile) => {
            return document_error(
                &path,
                "The submitted data was not a file. Check the encoding type on the form.",
            )
        }
        Err(DocumentProblem::Parse(reason)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &path,
                json!({"details": format!("Multipart form parse error - {reason}")}),
            )
        }
    };
    if file.bytes.is_empty() {
        return document_error(&path, "The submitted file is empty.");
    }
    if file.bytes.len() > MAX_BYTES {
        return bad_request(
            &path,
            "File is too big",
            &format!(
                "The file is {} bytes; the maximum is 10 MB for synchronous calls",
                file.bytes.len()
            ),
        );
    }
    let kind = match inspect(&file.bytes) {
        Ok(kind) => kind,
        Err(Inspection::Unsupported) => {
            return bad_request(
                &path,
                "Invalid file type",
                "File type not allowed: accepted types are png, jpg, webp, heic, tiff, pdf",
            )
        }
        Err(Inspection::Broken(why)) => {
            return bad_request(
                &path,
                "Invalid file",
                &format!("The file cannot be read: {why}"),
            )
        }
    };
    let pages = match kind {
        "pdf" => count_pdf_pages(&file.bytes).max(1),
        _ => 1,
    };
    if pages > MAX_PDF_PAGES {
        return bad_request(
            &path,
            "Too many pages",
            &format!(
                "The PDF has {pages} pages; the maximum is {MAX_PDF_PAGES} for synchronous calls"
            ),
        );
    }
    if state
        .take_failure(|f| f == Failure::InferenceFailed)
        .is_some()
    {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, ERROR_500);
    }

    state.predicted_pages.fetch_add(pages, Ordering::SeqCst);
    lock(&state.uploads).push(Upload {
        product_version: version.clone(),
        file_name: file.file_name,
        content_type: file.content_type,
        bytes: file.bytes,
        kind,
        pages,
    });
    let answer = *lock(&state.answer);
    let body = match (version.as_str(), answer) {
        ("v4", Answer::Complete) => V4_COMPLETE,
        ("v4", Answer::Empty) => V4_EMPTY,
        (_, Answer::Complete) => V5_COMPLETE,
        (_, Answer::Empty) => V5_EMPTY,
    };
    json_response(StatusCode::CREATED, body)
}
