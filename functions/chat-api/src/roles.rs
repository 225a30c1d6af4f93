use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::http::PublicBase;
use chat_media::http::{
    code, created, page_json, parse_sid, AdminService, ApiResult, Paging, TwilioForm,
};
use chat_media::limits;
use chat_media::model::{self, Role, Service};
use chat_media::permission::{PermissionSet, RoleType};
use chat_media::sid::RoleSid;
use chat_media::store::StoreError;
use chat_media::{ApiError, AppState};
use serde_json::Value;

use crate::text_param;

fn permissions(form: &TwilioForm, role_type: RoleType) -> ApiResult<PermissionSet> {
    let names = form.all("Permission");
    if names.is_empty() {
        return Err(ApiError::missing("Permission"));
    }
    // An unknown name is Twilio's 50104; a known one of the other role type, ours.
    if let Some(unknown) = names
        .iter()
        .find(|n| n.parse::<chat_media::permission::Permission>().is_err())
    {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            code::PERMISSION_NOT_FOUND,
            format!("Invalid parameter Permission: '{unknown}' is not a Twilio permission"),
        ));
    }
    PermissionSet::parse(role_type, names).map_err(|e| ApiError::invalid("Permission", e))
}

/// The path's role, of the admin's service.
async fn load(state: &AppState, service: &Service, role: &str) -> ApiResult<Role> {
    let role_sid: RoleSid = parse_sid("RoleSid", role)?;
    state
        .store
        .get_role(&service.sid, &role_sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Role {role_sid} not found")))
}

pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    form: TwilioForm,
) -> ApiResult<Response> {
    let friendly_name = text_param(
        "FriendlyName",
        form.required("FriendlyName")?,
        limits::ROLE_FRIENDLY_NAME,
    )?;
    let role_type: RoleType = form
        .get("Type")
        .ok_or_else(|| ApiError::missing("Type"))?
        .parse()
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                code::INVALID_ROLE_TYPE,
                format!("Invalid parameter Type: {e}"),
            )
        })?;
    let permissions = permissions(&form, role_type)?;
    let role = Role::new(
        RoleSid::generate(),
        service.sid,
        &friendly_name,
        role_type,
        permissions,
        model::now(),
    );
    state.store.create_role(&role).await?;
    Ok(created(role.to_json(state.view_at(base.as_str()))))
}

pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let page = state.store.list_roles(&service.sid, &req).await?;
    let path = format!("/v2/Services/{}/Roles", service.sid);
    Ok(page_json(
        &state,
        &base,
        &path,
        "roles",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    Path((_, role)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let role = load(&state, &service, &role).await?;
    Ok(Json(role.to_json(state.view_at(base.as_str()))))
}

/// POST .../Roles/{sid}: replaces the role's permissions (Twilio semantics).
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    Path((_, role)): Path<(String, String)>,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let mut role = load(&state, &service, &role).await?;
    role.permissions = permissions(&form, role.role_type)?;
    role.date_updated = model::now();
    state.store.update_role(&role).await.map_err(|e| match e {
        StoreError::ConditionFailed => ApiError::not_found(format!("Role {} not found", role.sid)),
        other => other.into(),
    })?;
    Ok(Json(role.to_json(state.view_at(base.as_str()))))
}

/// DELETE .../Roles/{sid}: refused while the role is a service default or held by anyone.
pub async fn delete(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, role)): Path<(String, String)>,
) -> ApiResult<Response> {
    let role = load(&state, &service, &role).await?;
    let defaults = [
        &service.default_service_role_sid,
        &service.default_channel_role_sid,
        &service.default_channel_creator_role_sid,
        &service.blocked_channel_role_sid,
    ];
    if defaults.contains(&&role.sid) {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Role {} is a default role of the service and cannot be deleted",
                role.sid
            ),
        ));
    }
    if state.store.role_in_use(&role.sid).await? {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Role {} is assigned to members or users and cannot be deleted",
                role.sid
            ),
        ));
    }
    state
        .store
        .delete_role(&service.sid, &role.sid)
        .await
        .map_err(|e| match e {
            StoreError::ConditionFailed => {
                ApiError::not_found(format!("Role {} not found", role.sid))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
