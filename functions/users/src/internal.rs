//! `/api/v1/internal/users/*`: what other services ask the users service. Reachable only with
//! a service credential (IAM in AWS), never with an end-user token.

use axum::extract::State;
use lectern_shared::{
    ApiResult,
    extract::{Json, JsonWriter, Path},
    internal::ServiceCaller,
};
use uuid::Uuid;

use crate::{
    profiles::{EffectivePermissions, Profile, effective_permissions, load_profile},
    state::AppState,
};

/// A user's profile, for another service.
#[utoipa::path(
    get, path = "/api/v1/internal/users/{id}", tag = "internal",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("iam" = [])),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Profile>> {
    let db = state.pool.get().await?;
    Ok(Json(load_profile(&db, id).await?))
}

/// A user's effective permissions, for another service.
#[utoipa::path(
    get, path = "/api/v1/internal/users/{id}/permissions", tag = "internal",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("iam" = [])),
    responses(
        (status = 200, description = "Effective flags per module and where each comes from", body = EffectivePermissions),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user_permissions(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<JsonWriter> {
    let db = state.pool.get().await?;
    effective_permissions(&db, id).await
}
