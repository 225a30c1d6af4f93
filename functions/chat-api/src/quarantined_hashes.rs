//! The deny-list of takedown by hash (admins only; upload-media's `Quarantine`
//! fills it):
//!
//! - `GET /v1/Services/{ServiceSid}/QuarantinedHashes[/{Sha256}]`: the list (a
//!   query on the service's partition) or one entry.
//! - `DELETE /v1/Services/{ServiceSid}/QuarantinedHashes/{Sha256}`: lifts a digest;
//!   the same bytes are accepted again (the quarantined media stays removed).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::http::{page_json, AdminService, ApiResult, Paging};
use chat_media::model::{QuarantinedHash, Sha256};
use chat_media::{ApiError, AppState};
use serde_json::Value;

fn digest(value: &str) -> ApiResult<Sha256> {
    Sha256::parse(value).map_err(|e| ApiError::invalid("Sha256", e))
}

fn not_listed(sha256: &Sha256) -> ApiError {
    ApiError::not_found(format!("No quarantined hash {sha256} in this service"))
}

/// GET .../QuarantinedHashes: the service's deny-list, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let page = state
        .store
        .list_quarantined_hashes(&service.sid, &req)
        .await?;
    let path = format!("/v1/Services/{}/QuarantinedHashes", service.sid);
    Ok(page_json(
        &state,
        &path,
        "quarantined_hashes",
        &req,
        page,
        QuarantinedHash::to_json,
    ))
}

/// GET .../QuarantinedHashes/{Sha256}.
pub async fn fetch(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, sha256)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let sha256 = digest(&sha256)?;
    let entry = state
        .store
        .quarantined_hash(&service.sid, &sha256)
        .await?
        .ok_or_else(|| not_listed(&sha256))?;
    Ok(Json(entry.to_json(state.view())))
}

/// DELETE .../QuarantinedHashes/{Sha256}: later uploads of these bytes are accepted again.
pub async fn lift(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, sha256)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sha256 = digest(&sha256)?;
    if !state
        .store
        .delete_quarantined_hash(&service.sid, &sha256)
        .await?
    {
        return Err(not_listed(&sha256));
    }
    tracing::info!(service = %service.sid, sha256 = %sha256, "quarantined hash lifted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
