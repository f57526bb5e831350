//! Every save of an article is a version: `snapshot` bumps `version`, rebuilds what is derived
//! from the content (search document, reading time, default excerpt) and records the whole
//! article — fields, blocks, SEO and tags — in `article_versions`, in the transaction of the
//! change. `/articles/{id}/versions` reads that history and `/restore/{version}` writes an
//! old version back as a new one, so nothing is ever lost.

use axum::{extract::State, http::HeaderMap};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    extract::{IfMatch, Json, List, PageQuery, Path, Query},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Reader,
    articles::{self, Locked, with_etag},
    model::{ArticleDetail, StoredSeo, TagRef},
    state::AppState,
};

/// Words read per minute, for `reading_time_minutes`.
pub const WORDS_PER_MINUTE: i32 = 200;

/// One statement: the derived fields, the version bump and the snapshot.
const SNAPSHOT_SQL: &str = "
WITH b AS (
    SELECT coalesce(string_agg(plain_text, E'\\n' ORDER BY sort_order, id), '') AS body,
           (array_agg(plain_text ORDER BY sort_order, id)
               FILTER (WHERE block_type = 'paragraph' AND plain_text <> ''))[1] AS first_paragraph
    FROM content.article_content_blocks WHERE article_id = $1
), t AS (
    SELECT coalesce(string_agg(t.name, ' '), '') AS names
    FROM content.article_tags at JOIN content.tags t ON t.id = at.tag_id WHERE at.article_id = $1
), e AS (
    SELECT CASE
               WHEN a.excerpt_custom THEN a.excerpt
               WHEN char_length(b.first_paragraph) <= 300 THEN b.first_paragraph
               ELSE regexp_replace(left(b.first_paragraph, 299), '\\s+\\S*$', '') || '…'
           END AS excerpt,
           CASE WHEN btrim(b.body) = '' THEN 0
                ELSE greatest(1, ceil(array_length(regexp_split_to_array(btrim(b.body), '\\s+'), 1)
                                      / $5::int::numeric))::int
           END AS minutes
    FROM content.articles a, b WHERE a.id = $1
), saved AS (
    UPDATE content.articles a
    SET version = a.version + 1, updated_at = now(), excerpt = e.excerpt,
        reading_time_minutes = e.minutes,
        search = setweight(to_tsvector('english', a.title || ' ' || t.names), 'A')
              || setweight(to_tsvector('english', coalesce(e.excerpt, '')), 'B')
              || setweight(to_tsvector('english', b.body), 'C')
    FROM b, t, e WHERE a.id = $1
    RETURNING a.*
)
INSERT INTO content.article_versions
    (id, article_id, version_number, title, content_snapshot, changed_by, change_summary)
SELECT $2, a.id, a.version, a.title,
       jsonb_build_object(
           'article', to_jsonb(a) - 'search',
           'blocks', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'id', x.id, 'block_type', x.block_type, 'content', x.content,
                          'metadata', x.metadata, 'plain_text', x.plain_text, 'sort_order', x.sort_order)
                          ORDER BY x.sort_order, x.id), '[]'::jsonb)
                      FROM content.article_content_blocks x WHERE x.article_id = a.id),
           'seo', (SELECT to_jsonb(s) - 'id' - 'article_id' - 'created_at'
                   FROM content.article_seo s WHERE s.article_id = a.id),
           'tags', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'slug', t.slug)
                        ORDER BY lower(t.name)), '[]'::jsonb)
                    FROM content.article_tags at JOIN content.tags t ON t.id = at.tag_id
                    WHERE at.article_id = a.id)),
       $3, $4
FROM saved a
RETURNING version_number";

/// Saves the article as a new version (call after changing it, in the same transaction).
pub async fn snapshot(
    db: &impl GenericClient,
    article_id: Uuid,
    changed_by: Option<Uuid>,
    summary: &str,
) -> ApiResult<i32> {
    let row = db
        .query_opt(
            &db.prepare_cached(SNAPSHOT_SQL).await?,
            &[
                &article_id,
                &Uuid::now_v7(),
                &changed_by,
                &summary,
                &WORDS_PER_MINUTE,
            ],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(row.get(0))
}

/// One entry of an article's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    pub version_number: i32,
    pub title: String,
    pub changed_by: Option<Uuid>,
    pub change_summary: Option<String>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A version with the article as it stood: `content_snapshot` holds `article` (its fields),
/// `blocks`, `seo` and `tags`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: Version,
    pub content_snapshot: serde_json::Value,
}

fn version(row: &tokio_postgres::Row) -> Version {
    Version {
        version_number: row.get(0),
        title: row.get(1),
        changed_by: row.get(2),
        change_summary: row.get(3),
        created_at: row.get(4),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionCursor {
    version: i32,
}

/// The history of an article, newest first (needs the right to change it: history shows
/// drafts).
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/versions", tag = "articles",
    params(("id" = Uuid, Path, description = "The article id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions, newest first", body = List<Version>),
        (status = 404, description = "No such article, or not visible to the caller"),
    )
)]
pub async fn list_versions(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<List<Version>>> {
    let page = page.parse::<VersionCursor>()?;
    let db = state.pool.get().await?;
    articles::find_for_history(&db, &reader, id).await?;
    let before = page.after.map_or(i32::MAX, |c| c.version);
    let rows = db
        .query(
            &db.prepare_cached(
                "SELECT version_number, title, changed_by, change_summary, created_at
                 FROM content.article_versions
                 WHERE article_id = $1 AND version_number < $2
                 ORDER BY version_number DESC LIMIT $3",
            )
            .await?,
            &[&id, &before, &(page.limit + 1)],
        )
        .await?;
    Ok(Json(List::paginate(
        rows.iter().map(version).collect(),
        page.limit,
        |v| VersionCursor {
            version: v.version_number,
        },
    )))
}

async fn load_version(db: &impl GenericClient, id: Uuid, number: i32) -> ApiResult<VersionDetail> {
    let row = db
        .query_opt(
            &db.prepare_cached(
                "SELECT version_number, title, changed_by, change_summary, created_at, content_snapshot
                 FROM content.article_versions WHERE article_id = $1 AND version_number = $2",
            )
            .await?,
            &[&id, &number],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(VersionDetail {
        version: version(&row),
        content_snapshot: row.get(5),
    })
}

/// One version with the whole article as it stood.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/versions/{version}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("version" = i32, Path, description = "The version number"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The version", body = VersionDetail),
        (status = 404, description = "No such article or version"),
    )
)]
pub async fn get_version(
    State(state): State<AppState>,
    reader: Reader,
    Path((id, number)): Path<(Uuid, i32)>,
) -> ApiResult<Json<VersionDetail>> {
    let db = state.pool.get().await?;
    articles::find_for_history(&db, &reader, id).await?;
    Ok(Json(load_version(&db, id, number).await?))
}

/// What a snapshot holds, as `restore` reads it back.
#[derive(Debug, Deserialize)]
struct Snapshot {
    article: SnapshotArticle,
    #[serde(default)]
    blocks: Vec<SnapshotBlock>,
    seo: Option<StoredSeo>,
    #[serde(default)]
    tags: Vec<TagRef>,
}

#[derive(Debug, Deserialize)]
struct SnapshotArticle {
    title: String,
    excerpt: Option<String>,
    #[serde(default)]
    excerpt_custom: bool,
    featured_image: Option<String>,
    visibility: String,
    category_id: Option<Uuid>,
    is_featured: bool,
    allow_comments: bool,
}

#[derive(Debug, Deserialize)]
struct SnapshotBlock {
    block_type: String,
    content: String,
    metadata: serde_json::Value,
    #[serde(default)]
    plain_text: String,
    sort_order: i32,
}

/// Writes version `version` back as a new version: fields, blocks, SEO and tags as they were
/// then. The slug, status and schedule stay as they are now (links keep working and the
/// editorial state is not rewound); a category deleted since leaves the article where it is,
/// and a tag deleted since is created again.
#[utoipa::path(
    post, path = "/api/v1/articles/{id}/restore/{version}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("version" = i32, Path, description = "The version to restore"),
        ("If-Match" = Option<String>, Header, description = "The article's current ETag"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The article, restored as a new version", body = ArticleDetail),
        (status = 404, description = "No such article or version"),
        (status = 409, description = "The article is archived"),
        (status = 412, description = "If-Match names an older version"),
    )
)]
pub async fn restore_version(
    State(state): State<AppState>,
    reader: Reader,
    Path((id, number)): Path<(Uuid, i32)>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    reader.signed_in()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let locked: Locked = articles::lock_for_edit(&tx, &reader, id, if_match).await?;
    let found = load_version(&tx, id, number).await?;
    let old: Snapshot = serde_json::from_value(found.content_snapshot)
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading a snapshot: {err}")))?;
    let a = old.article;
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.articles SET title = $2, excerpt = $3, excerpt_custom = $4,
                 featured_image = $5, visibility = $6, is_featured = $7, allow_comments = $8,
                 category_id = CASE WHEN EXISTS (SELECT 1 FROM content.categories WHERE id = $9)
                                    THEN $9 ELSE category_id END
             WHERE id = $1",
        )
        .await?,
        &[
            &id,
            &a.title,
            &a.excerpt,
            &a.excerpt_custom,
            &a.featured_image,
            &a.visibility,
            &a.is_featured,
            &a.allow_comments,
            &a.category_id,
        ],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached("DELETE FROM content.article_content_blocks WHERE article_id = $1")
            .await?,
        &[&id],
    )
    .await?;
    let insert_block = tx
        .prepare_cached(
            "INSERT INTO content.article_content_blocks
                 (id, article_id, block_type, content, metadata, plain_text, sort_order)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    for block in &old.blocks {
        tx.execute(
            &insert_block,
            &[
                &Uuid::now_v7(),
                &id,
                &block.block_type,
                &block.content,
                &block.metadata,
                &block.plain_text,
                &block.sort_order,
            ],
        )
        .await?;
    }
    crate::seo::store(&tx, id, &old.seo.unwrap_or_default()).await?;
    let names: Vec<String> = old.tags.iter().map(|t| t.name.clone()).collect();
    crate::article_tags::restore(&tx, id, &names).await?;
    let version = snapshot(&tx, id, reader.id(), &format!("Restored version {number}")).await?;
    let article = crate::model::load_detail(&tx, id).await?;
    let event = articles::updated_event(
        &article,
        reader.id(),
        &["restored"],
        json!({ "restored_version": number, "previous_version": locked.version }),
    );
    state.outbox.commit(tx, &[event]).await?;
    debug_assert_eq!(version, article.article.version);
    Ok(with_etag(article))
}
