//! `/api/v1/internal/articles/*`: what other services ask the content service (the comments
//! service whether an article allows comments, notifications its title and author, analytics
//! its category). Reachable only with a service credential (IAM in AWS), never with an
//! end-user token; answers any article whatever its status, with the category's group rules
//! so the caller can apply the same visibility.

use axum::extract::State;
use lectern_shared::{
    ApiResult,
    extract::{Json, Path},
    internal::ServiceCaller,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    model::{ArticleDetail, load_detail},
    state::AppState,
};

/// A category group rule, as other services see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRule {
    pub group_id: Uuid,
    pub can_view: bool,
    pub can_edit: bool,
}

/// The article, and the group rules that apply to its category — its own, or those of the
/// nearest restricted ancestor (empty when unrestricted).
#[derive(Debug, Serialize, ToSchema)]
pub struct InternalArticle {
    #[serde(flatten)]
    pub article: ArticleDetail,
    pub category_rules: Vec<AccessRule>,
}

/// An article, for another service.
#[utoipa::path(
    get, path = "/api/v1/internal/articles/{id}", tag = "internal",
    params(("id" = Uuid, Path, description = "The article id")),
    security(("iam" = [])),
    responses(
        (status = 200, description = "The article with its category's group rules", body = InternalArticle),
        (status = 404, description = "No such article"),
    )
)]
pub async fn get_article(
    State(state): State<AppState>,
    _service: ServiceCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<InternalArticle>> {
    let db = state.pool.get().await?;
    let article = load_detail(&db, id).await?;
    let rules = db
        .query(
            &db.prepare_cached(
                "SELECT r.group_id, r.can_view, r.can_edit
                 FROM content.categories g JOIN content.category_group_access r ON r.category_id = g.gate_id
                 WHERE g.id = $1 ORDER BY r.group_id",
            )
            .await?,
            &[&article.article.category_id],
        )
        .await?
        .iter()
        .map(|r| AccessRule {
            group_id: r.get(0),
            can_view: r.get(1),
            can_edit: r.get(2),
        })
        .collect();
    Ok(Json(InternalArticle {
        article,
        category_rules: rules,
    }))
}
