//! `/api/v1/tags*`: the flat list of tags with how many published articles carry each, and
//! creating and deleting them. Which tags an article carries is `article_tags`' business.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    events::Envelope,
    extract::{Json, List, PageQuery, Path, Query},
    validate::{Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::Reader,
    slug,
    state::{AppState, EVENT_SOURCE},
};

/// The longest tag name.
pub const NAME_MAX: usize = 50;

/// The longest tag slug.
pub const SLUG_MAX: usize = 60;

/// A tag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tag {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// Published articles carrying the tag.
    pub usage_count: i64,
}

/// The published articles carrying tag alias `t`.
const USAGE: &str = "(SELECT count(*) FROM content.article_tags at
      JOIN content.articles a ON a.id = at.article_id
      WHERE at.tag_id = t.id AND a.status = 'published')";

/// The columns [`tag`] reads, on alias `t`, followed by the name's sort key.
static TAG_COLUMNS: LazyLock<String> =
    LazyLock::new(|| format!("t.id, t.name, t.slug, t.created_at, {USAGE}, lower(t.name)"));

fn tag(row: &tokio_postgres::Row) -> Tag {
    Tag {
        id: row.get(0),
        name: row.get(1),
        slug: row.get(2),
        created_at: row.get(3),
        usage_count: row.get(4),
    }
}

async fn load_tag(db: &impl GenericClient, id: Uuid) -> ApiResult<Tag> {
    let sql = format!(
        "SELECT {} FROM content.tags t WHERE t.id = $1",
        *TAG_COLUMNS
    );
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| tag(&r))
        .ok_or(ApiError::NotFound)
}

/// The sort key of the last tag of a page. It says which order issued it, so a cursor from
/// one order is refused by the other instead of skipping or repeating tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "by")]
enum TagCursor {
    #[serde(rename = "name")]
    Name { name: String, id: Uuid },
    #[serde(rename = "usage")]
    Usage { usage: i64, name: String, id: Uuid },
}

/// The orders of `GET /tags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagSort {
    Name,
    Usage,
}

/// Filters and order of `GET /tags`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagFilter {
    /// The start of the name, any case.
    pub q: Option<String>,
    /// `name` (the default) or `-usage` (most used first, then by name).
    pub sort: Option<String>,
}

/// `text` as a LIKE pattern matching names that start with it, its wildcards escaped.
fn prefix_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

static BY_NAME_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM content.tags t
         WHERE ($1::text IS NULL OR lower(t.name) LIKE lower($1))
           AND ($3::uuid IS NULL OR (lower(t.name), t.id) > ($2, $3))
         ORDER BY lower(t.name), t.id
         LIMIT $4",
        *TAG_COLUMNS
    )
});

const BY_USAGE_SQL: &str = "
SELECT t.id, t.name, t.slug, t.created_at, t.usage_count, t.key FROM (
    SELECT t.id, t.name, t.slug, t.created_at, lower(t.name) AS key, coalesce(u.n, 0) AS usage_count
    FROM content.tags t
    LEFT JOIN (SELECT at.tag_id, count(*) AS n
               FROM content.article_tags at JOIN content.articles a ON a.id = at.article_id
               WHERE a.status = 'published'
               GROUP BY at.tag_id) u ON u.tag_id = t.id
    WHERE ($1::text IS NULL OR lower(t.name) LIKE lower($1))
) t
WHERE ($4::uuid IS NULL OR t.usage_count < $2 OR (t.usage_count = $2 AND (t.key, t.id) > ($3, $4)))
ORDER BY t.usage_count DESC, t.key, t.id
LIMIT $5";

/// Lists tags by name or by use; keyset-paginated. Anyone may read it, signed in or not.
#[utoipa::path(
    get, path = "/api/v1/tags", tag = "tags",
    params(PageQuery, TagFilter),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of tags", body = List<Tag>),
        (status = 422, description = "A bad filter, sort, limit or cursor (one issued for the other sort), named"),
    )
)]
pub async fn list_tags(
    State(state): State<AppState>,
    Query(page): Query<PageQuery>,
    Query(filter): Query<TagFilter>,
) -> ApiResult<Json<List<Tag>>> {
    let mut v = Validator::new();
    let sort = match filter.sort.as_deref().map(str::trim) {
        None | Some("") | Some("name") => Some(TagSort::Name),
        Some("-usage") => Some(TagSort::Usage),
        Some(_) => {
            v.add("sort", "must be name or -usage");
            None
        }
    };
    let q = filter
        .q
        .as_deref()
        .filter(|q| !q.trim().is_empty())
        .and_then(|q| v.check("q", short_text(q, NAME_MAX)))
        .map(|q| prefix_pattern(&q));
    v.finish()?;
    let page = page.parse::<TagCursor>()?;
    let db = state.pool.get().await?;
    let rows = match (sort, &page.after) {
        (Some(TagSort::Name), None | Some(TagCursor::Name { .. })) => {
            let (name, id) = match &page.after {
                Some(TagCursor::Name { name, id }) => (Some(name.as_str()), Some(*id)),
                _ => (None, None),
            };
            db.query(
                &db.prepare_cached(&BY_NAME_SQL).await?,
                &[&q, &name, &id, &(page.limit + 1)],
            )
            .await?
        }
        (Some(TagSort::Usage), None | Some(TagCursor::Usage { .. })) => {
            let (usage, name, id) = match &page.after {
                Some(TagCursor::Usage { usage, name, id }) => {
                    (Some(*usage), Some(name.as_str()), Some(*id))
                }
                _ => (None, None, None),
            };
            db.query(
                &db.prepare_cached(BY_USAGE_SQL).await?,
                &[&q, &usage, &name, &id, &(page.limit + 1)],
            )
            .await?
        }
        _ => {
            return Err(ApiError::validation(
                "cursor",
                "was issued for another sort; start again without a cursor",
            ));
        }
    };
    let data: Vec<(Tag, String)> = rows.iter().map(|r| (tag(r), r.get(5))).collect();
    let page = List::paginate(data, page.limit, |(t, key)| match sort {
        Some(TagSort::Usage) => TagCursor::Usage {
            usage: t.usage_count,
            name: key.clone(),
            id: t.id,
        },
        _ => TagCursor::Name {
            name: key.clone(),
            id: t.id,
        },
    });
    Ok(Json(List {
        data: page.data.into_iter().map(|(t, _)| t).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One tag.
#[utoipa::path(
    get, path = "/api/v1/tags/{id}", tag = "tags",
    params(("id" = Uuid, Path, description = "The tag id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The tag", body = Tag),
        (status = 404, description = "No such tag"),
    )
)]
pub async fn get_tag(State(state): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<Json<Tag>> {
    let db = state.pool.get().await?;
    Ok(Json(load_tag(&db, id).await?))
}

/// A new tag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    /// 1 to 50 characters; unique whatever the case. The slug is made from it.
    pub name: String,
}

/// Creates a tag (needs tags.create).
#[utoipa::path(
    post, path = "/api/v1/tags", tag = "tags",
    request_body = NewTag,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the tag", body = Tag,
         headers(("Location" = String, description = "The new tag's URL"))),
        (status = 409, description = "A tag has this name (in any case), or the slug made from it"),
        (status = 422, description = "The name is empty or too long"),
    )
)]
pub async fn create_tag(
    State(state): State<AppState>,
    reader: Reader,
    Json(body): Json<NewTag>,
) -> ApiResult<impl IntoResponse> {
    let user = reader.require(Module::Tags, Action::Create)?;
    let name = short_text(&body.name, NAME_MAX).map_err(|m| ApiError::validation("name", m))?;
    let slug = slug::slugify(&name, SLUG_MAX, "tag");
    let id = Uuid::now_v7();
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let inserted = tx
        .query_opt(
            &tx.prepare_cached(
                "INSERT INTO content.tags (id, name, slug) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .await?,
            &[&id, &name, &slug],
        )
        .await?;
    if inserted.is_none() {
        let holder = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT name, lower(name) = lower($1) FROM content.tags
                     WHERE lower(name) = lower($1) OR slug = $2
                     ORDER BY lower(name) = lower($1) DESC LIMIT 1",
                )
                .await?,
                &[&name, &slug],
            )
            .await?;
        return Err(ApiError::Conflict(match holder {
            Some(row) if row.get::<_, bool>(1) => {
                format!("A tag named {} exists.", row.get::<_, String>(0))
            }
            Some(row) => format!(
                "The tag {} has the slug {slug} that {name} would get; choose a more distinct name.",
                row.get::<_, String>(0)
            ),
            None => format!("A tag named {name} was being created at the same time."),
        }));
    }
    let created = load_tag(&tx, id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "tag.created",
        Some(user.id()),
        json!({ "tag_id": id, "name": created.name, "slug": created.slug }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/tags/{id}"))],
        Json(created),
    ))
}

/// Deletes a tag (needs tags.delete) and takes it off every article that carried it; the
/// `tag.deleted` event lists those articles. Their versions and search documents are not
/// rewritten: a search still finds them by the old tag word until their next save.
#[utoipa::path(
    delete, path = "/api/v1/tags/{id}", tag = "tags",
    params(("id" = Uuid, Path, description = "The tag id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such tag"),
    )
)]
pub async fn delete_tag(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let user = reader.require(Module::Tags, Action::Delete)?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    // The row lock holds off articles taking the tag on until it is gone, so the event names
    // every article that lost it.
    let row = tx
        .query_opt(
            &tx.prepare_cached("SELECT name, slug FROM content.tags WHERE id = $1 FOR UPDATE")
                .await?,
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let (name, slug): (String, String) = (row.get(0), row.get(1));
    let article_ids: Vec<Uuid> = tx
        .query(
            &tx.prepare_cached(
                "SELECT article_id FROM content.article_tags WHERE tag_id = $1 ORDER BY article_id",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute(
        &tx.prepare_cached("DELETE FROM content.tags WHERE id = $1")
            .await?,
        &[&id],
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "tag.deleted",
        Some(user.id()),
        json!({ "tag_id": id, "name": name, "slug": slug, "article_ids": article_ids }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}
