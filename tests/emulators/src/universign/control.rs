//! Control routes for tests (no authentication: they are the test's, not Universign's):
//! view a transaction, make a signer act, end a transaction, play an outage.

use super::*;

pub(super) async fn control_view(
    State(state): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match lock(&state.transactions).get(&id) {
        Some(tx) => {
            let v = tx.view();
            Json(json!({
                "id": v.id,
                "status": v.status.as_str(),
                "custom_id": v.custom_id,
                "signers": v.signers.iter().map(|(f, l, e, s)| json!({
                    "first_name": f, "last_name": l, "email": e, "status": s
                })).collect::<Vec<_>>(),
                "documents": v.documents,
            }))
            .into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no transaction {id}")).into_response(),
    }
}

pub(super) async fn control_signer(
    State(state): State<Arc<Shared>>,
    Path((id, index, action)): Path<(String, usize, String)>,
) -> Response {
    let action = match action.as_str() {
        "sign" => SignerAction::Sign,
        "refuse" => SignerAction::Refuse,
        "access" => SignerAction::Access,
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown signer action {other}; use sign, refuse or access"),
            )
                .into_response()
        }
    };
    control_result(state.signer_action(&id, index, action))
}

pub(super) async fn control_transaction(
    State(state): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let status = match action.as_str() {
        "expire" => TxStatus::Expired,
        "cancel" => TxStatus::Canceled,
        "fail" => TxStatus::Failed,
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown transaction action {other}; use expire, cancel or fail"),
            )
                .into_response()
        }
    };
    control_result(state.finish(&id, status))
}

pub(super) async fn control_unavailable(
    State(state): State<Arc<Shared>>,
    Path(on): Path<bool>,
) -> Response {
    state.unavailable.store(on, Ordering::SeqCst);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) fn control_result(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.starts_with("no transaction") => (StatusCode::NOT_FOUND, e).into_response(),
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}
