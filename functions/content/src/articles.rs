//! `/api/v1/articles*`: the article itself — create, read (by id, and the public read by
//! slug), update, delete or archive, and the list with its filters, orders and full-text
//! search. Blocks, SEO, tags, versions and the status workflow have their own modules; they
//! all lock an article through [`lock_for_edit`] so that access, `If-Match` and ownership are
//! decided in one place.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    db::Binds,
    error::unique_violation,
    events::Envelope,
    extract::{IfMatch, Json, List, PageQuery, Path, Query, nullable},
    validate::{Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::{Reader, Scope, ensure_can_edit},
    article_tags, blocks,
    blocks::rules::{BlockInput, CleanBlock, MAX_BLOCKS},
    model::{
        ARTICLE_COLUMNS, Article, ArticleDetail, ArticleRef, article_ref, detail_columns,
        load_detail, view,
    },
    seo::{self, SeoInput},
    slug,
    state::{AppState, EVENT_SOURCE},
    versions,
};

pub const STATUSES: [&str; 5] = [
    "draft",
    "pending_review",
    "approved",
    "published",
    "archived",
];
pub const VISIBILITIES: [&str; 3] = ["public", "private", "restricted"];
const SLUG_MAX: usize = 120;

/// The article as `lock_*` found it, its row locked until the transaction ends.
#[derive(Debug, Clone)]
pub struct Locked {
    pub id: Uuid,
    pub title: String,
    pub slug: String,
    pub status: String,
    pub visibility: String,
    pub author_id: Uuid,
    pub category_id: Option<Uuid>,
    pub version: i32,
    pub published_at: Option<DateTime<Utc>>,
    pub scheduled_publish_at: Option<DateTime<Utc>>,
    /// Whether the article's category lets the caller change its articles.
    pub category_editable: bool,
}

fn find_sql(lock: &str) -> String {
    let scope = Scope::numbered(2);
    format!(
        "SELECT a.id, a.title, a.slug, a.status, a.visibility, a.author_id, a.category_id,
                a.version, a.published_at, a.scheduled_publish_at, {editable}
         FROM content.articles a WHERE a.id = $1 AND {visible} {lock}",
        editable = scope.category_editable("a"),
        visible = scope.visible("a"),
    )
}

static LOCK_SQL: LazyLock<String> = LazyLock::new(|| find_sql("FOR UPDATE"));
static FIND_SQL: LazyLock<String> = LazyLock::new(|| find_sql(""));

/// Locks article `id` if the caller can see it; 404 otherwise (whether it is absent or
/// hidden is not the caller's business).
pub async fn lock_visible(tx: &Transaction<'_>, reader: &Reader, id: Uuid) -> ApiResult<Locked> {
    find(tx, reader, id, &LOCK_SQL).await
}

/// Article `id` if the caller can see it, without locking it (for reads); 404 otherwise.
pub async fn find_visible(db: &impl GenericClient, reader: &Reader, id: Uuid) -> ApiResult<Locked> {
    find(db, reader, id, &FIND_SQL).await
}

async fn find(db: &impl GenericClient, reader: &Reader, id: Uuid, sql: &str) -> ApiResult<Locked> {
    let me = reader.id();
    let [p2, p3, p4, p5] = reader.params(&me);
    let row = db
        .query_opt(&db.prepare_cached(sql).await?, &[&id, p2, p3, p4, p5])
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Locked {
        id: row.get(0),
        title: row.get(1),
        slug: row.get(2),
        status: row.get(3),
        visibility: row.get(4),
        author_id: row.get(5),
        category_id: row.get(6),
        version: row.get(7),
        published_at: row.get(8),
        scheduled_publish_at: row.get(9),
        category_editable: row.get(10),
    })
}

/// 412 unless `if_match` is absent or names the current version.
pub fn check_if_match(locked: &Locked, if_match: Option<i32>) -> ApiResult<()> {
    match if_match {
        Some(expected) if expected != locked.version => Err(ApiError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// Locks article `id` for a change of its content: visible (404), current (412), and the
/// caller's to change (403, or 409 when archived).
pub async fn lock_for_edit(
    tx: &Transaction<'_>,
    reader: &Reader,
    id: Uuid,
    if_match: Option<i32>,
) -> ApiResult<Locked> {
    let locked = lock_visible(tx, reader, id).await?;
    check_if_match(&locked, if_match)?;
    ensure_can_edit(
        reader,
        locked.author_id,
        &locked.status,
        locked.category_editable,
    )?;
    Ok(locked)
}

/// Finds article `id` for reading its history (no lock): drafts live there, so only its author and
/// editors read it.
pub async fn find_for_history(
    db: &impl GenericClient,
    reader: &Reader,
    id: Uuid,
) -> ApiResult<Locked> {
    let locked = find_visible(db, reader, id).await?;
    let user = reader.signed_in()?;
    if user.id() != locked.author_id && !reader.editor {
        return Err(ApiError::Forbidden(
            "An article's history is for its author and for editors (articles.edit).".into(),
        ));
    }
    Ok(locked)
}

/// The `ETag` header of an article at `version`.
pub fn etag(version: i32) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, value);
    }
    headers
}

/// The answer for one article: the article with its version as the ETag.
pub fn with_etag(article: ArticleDetail) -> (HeaderMap, Json<ArticleDetail>) {
    (etag(article.article.version), Json(article))
}

/// `columns` (on alias `a`) of article `id` if the caller can see it, in one round trip;
/// 404 otherwise.
pub async fn read_visible(
    db: &impl GenericClient,
    reader: &Reader,
    id: Uuid,
    columns: &str,
) -> ApiResult<tokio_postgres::Row> {
    let sql = format!(
        "SELECT {columns} FROM content.articles a WHERE a.id = $1 AND {}",
        Scope::numbered(2).visible("a")
    );
    let me = reader.id();
    let [p2, p3, p4, p5] = reader.params(&me);
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id, p2, p3, p4, p5])
        .await?
        .ok_or(ApiError::NotFound)
}

/// What every article event carries.
pub fn article_data(article: &Article) -> Value {
    json!({
        "article_id": article.id,
        "title": article.title,
        "slug": article.slug,
        "status": article.status,
        "visibility": article.visibility,
        "category_id": article.category_id,
        "author_id": article.author_id,
        "version": article.version,
        "published_at": article.published_at,
    })
}

/// `article.updated`, naming what changed; `extra` is merged into the data.
pub fn updated_event(
    article: &ArticleDetail,
    actor: Option<Uuid>,
    changes: &[&str],
    extra: Value,
) -> Envelope {
    let mut data = article_data(&article.article);
    data["changes"] = json!(changes);
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    Envelope::new(EVENT_SOURCE, "article.updated", actor, data)
}

/// A featured image: an https URL, or a path of the media service (`/media/...`).
pub fn image_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    if raw.starts_with("/media/") && !raw.contains("..") && !raw.chars().any(char::is_whitespace) {
        return Ok(raw.to_string());
    }
    match url::Url::parse(raw) {
        Ok(url)
            if url.scheme() == "https"
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(url.to_string())
        }
        _ => Err("must be an https URL or a /media/ path".into()),
    }
}

fn one_of(raw: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(format!("must be one of {}", allowed.join(", ")))
    }
}

fn excerpt_text(raw: &str) -> Result<Option<String>, String> {
    let text = crate::blocks::plain_text_of(raw);
    match text.chars().count() {
        0 => Ok(None),
        n if n > 500 => Err("must be at most 500 characters".into()),
        _ => Ok(Some(text)),
    }
}

/// Parses a list of blocks, naming `blocks[i]...` in every error.
pub fn parse_blocks(v: &mut Validator, field: &str, raw: Vec<BlockInput>) -> Vec<CleanBlock> {
    if raw.len() > MAX_BLOCKS {
        v.add(field, format!("must hold at most {MAX_BLOCKS} blocks"));
        return Vec::new();
    }
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, block)| blocks::rules::clean(block, &format!("{field}[{i}]"), v))
        .collect()
}

/// A new article. Only `title` is required; `slug` is derived from it when absent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    pub title: String,
    pub slug: Option<String>,
    /// Derived from the first paragraph while absent.
    pub excerpt: Option<String>,
    pub featured_image: Option<String>,
    /// public (default), private or restricted.
    pub visibility: Option<String>,
    pub category_id: Option<Uuid>,
    /// Needs articles.publish.
    pub is_featured: Option<bool>,
    pub allow_comments: Option<bool>,
    #[serde(default)]
    pub blocks: Vec<BlockInput>,
    pub seo: Option<SeoInput>,
    /// Tag names or ids; a missing name is created when the caller holds tags.create.
    #[serde(default)]
    pub tags: Vec<String>,
    pub change_summary: Option<String>,
}

/// A change of an article: every field optional; `excerpt`, `featured_image` and
/// `category_id` clear with `null`. `blocks`, `seo` and `tags` replace the whole set when
/// present. The change is one new version.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArticle {
    pub title: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub excerpt: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub featured_image: Option<Option<String>>,
    pub visibility: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    pub is_featured: Option<bool>,
    pub allow_comments: Option<bool>,
    pub blocks: Option<Vec<BlockInput>>,
    pub seo: Option<SeoInput>,
    pub tags: Option<Vec<String>>,
    pub change_summary: Option<String>,
}

/// The change summary a save records: the client's, or `default`.
pub fn summary_of(v: &mut Validator, raw: Option<String>, default: &str) -> String {
    raw.filter(|s| !s.trim().is_empty())
        .and_then(|s| v.check("change_summary", short_text(&s, 500)))
        .unwrap_or_else(|| default.to_string())
}

/// Checks that the caller may put articles in `category_id`: it exists (422), is active
/// (422) and its rules let the caller edit there (403).
async fn check_category(
    db: &impl GenericClient,
    reader: &Reader,
    category_id: Uuid,
) -> ApiResult<()> {
    let scope = Scope::for_categories(2);
    let sql = format!(
        "SELECT c.is_active, {visible}, {editable}
         FROM (SELECT c.id AS category_id, c.is_active FROM content.categories c WHERE c.id = $1) c",
        visible = scope.category_visible("c"),
        editable = scope.category_editable("c"),
    );
    let [groups, bypass] = reader.category_params();
    let row = db
        .query_opt(
            &db.prepare_cached(&sql).await?,
            &[&category_id, groups, bypass],
        )
        .await?;
    match row {
        Some(row) if row.get::<_, bool>(1) => {
            if !row.get::<_, bool>(0) {
                Err(ApiError::validation(
                    "category_id",
                    "names an inactive category",
                ))
            } else if !row.get::<_, bool>(2) {
                Err(ApiError::Forbidden(
                    "Only members of a group with can_edit on this category write in it.".into(),
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(ApiError::validation("category_id", "names no category")),
    }
}

/// A slug for `title` that no article uses yet: the title's slug, or it with `-2`, `-3`...
async fn free_slug(db: &impl GenericClient, title: &str) -> ApiResult<String> {
    let base = slug::slugify(title, SLUG_MAX, "article");
    // Two saves deriving the same slug take turns, so the second sees the first's: a client
    // that sent no slug never gets a slug conflict. Held until the transaction ends.
    db.execute(
        &db.prepare_cached(
            "SELECT pg_advisory_xact_lock(hashtext('content.articles.slug'), hashtext($1))",
        )
        .await?,
        &[&base],
    )
    .await?;
    slug::first_free(db, slug::Owner::Articles, &base, SLUG_MAX).await
}

fn slug_conflict(err: tokio_postgres::Error) -> ApiError {
    if unique_violation(&err) == Some("articles_slug_key") {
        ApiError::Conflict("Another article has this slug.".into())
    } else {
        err.into()
    }
}

/// Creates an article as a draft by the caller (needs articles.create); answers it with its
/// first version.
#[utoipa::path(
    post, path = "/api/v1/articles", tag = "articles",
    request_body = NewArticle,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the article", body = ArticleDetail,
         headers(("Location" = String, description = "The new article's URL"),
                 ("ETag" = String, description = "The article's version"))),
        (status = 403, description = "Missing articles.create, or the category does not let the caller write in it"),
        (status = 409, description = "The slug is taken"),
        (status = 422, description = "Invalid fields, each named"),
    )
)]
pub async fn create_article(
    State(state): State<AppState>,
    reader: Reader,
    Json(body): Json<NewArticle>,
) -> ApiResult<impl IntoResponse> {
    let user = reader.require(Module::Articles, Action::Create)?;
    let mut v = Validator::new();
    let title = v.check("title", short_text(&body.title, 200));
    let explicit_slug = body
        .slug
        .as_deref()
        .and_then(|s| v.check("slug", slug::parse(s, SLUG_MAX)));
    let excerpt = body
        .excerpt
        .as_deref()
        .and_then(|e| v.check("excerpt", excerpt_text(e)))
        .flatten();
    let featured_image = body
        .featured_image
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| v.check("featured_image", image_url(s)));
    let visibility = body
        .visibility
        .as_deref()
        .map_or(Some("public".to_string()), |s| {
            v.check("visibility", one_of(s, &VISIBILITIES))
        });
    let blocks = parse_blocks(&mut v, "blocks", body.blocks);
    let seo = body.seo.map(|s| seo::parse(&mut v, "seo", s));
    let tags = article_tags::parse_refs(&mut v, "tags", body.tags);
    let summary = summary_of(&mut v, body.change_summary, "Created");
    if body.is_featured == Some(true) && !reader.can(Module::Articles, Action::Publish) {
        v.add(
            "is_featured",
            "featuring an article needs the articles.publish permission",
        );
    }
    v.finish()?;
    let (Some(title), Some(visibility)) = (title, visibility) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields are missing"
        )));
    };
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    if let Some(category_id) = body.category_id {
        check_category(&tx, &reader, category_id).await?;
    }
    let slug = match explicit_slug {
        Some(slug) => slug,
        None => free_slug(&tx, &title).await?,
    };
    let id = Uuid::now_v7();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO content.articles (id, title, slug, excerpt, excerpt_custom, featured_image,
                 visibility, category_id, author_id, is_featured, allow_comments)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .await?,
        &[
            &id,
            &title,
            &slug,
            &excerpt,
            &excerpt.is_some(),
            &featured_image,
            &visibility,
            &body.category_id,
            &user.id(),
            &body.is_featured.unwrap_or(false),
            &body.allow_comments.unwrap_or(true),
        ],
    )
    .await
    .map_err(slug_conflict)?;
    blocks::insert_all(&tx, id, &blocks, 0).await?;
    if let Some(seo) = seo {
        seo::store(&tx, id, &seo).await?;
    }
    article_tags::replace(&tx, &reader, id, &tags, "tags").await?;
    versions::snapshot(&tx, id, Some(user.id()), &summary).await?;
    let created = load_detail(&tx, id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "article.created",
        Some(user.id()),
        article_data(&created.article),
    );
    state.outbox.commit(tx, &[event]).await?;
    let (mut headers, body) = with_etag(created);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/articles/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, body))
}

static GET_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM content.articles a WHERE a.id = $1 AND {}",
        detail_columns(),
        Scope::numbered(2).visible("a")
    )
});

/// The statement [`get_article`] runs: `$1` the article id, `$2..$5` the reader's scope
/// ([`Reader::params`]). For the benchmarks, whose raw loops run the handler's statement.
pub fn get_sql() -> &'static str {
    &GET_SQL
}

/// The whole article (blocks, SEO, tags), for whoever may see it: everyone for a published
/// public article; its author and editors for drafts and private ones; category groups for
/// restricted ones.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}", tag = "articles",
    params(("id" = Uuid, Path, description = "The article id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The article", body = ArticleDetail,
         headers(("ETag" = String, description = "The article's version"))),
        (status = 404, description = "No such article, or not visible to the caller"),
    )
)]
pub async fn get_article(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::response::Response> {
    let me = reader.id();
    let [p2, p3, p4, p5] = reader.params(&me);
    let db = state.pool.get().await?;
    let row = db
        .query_opt(&db.prepare_cached(&GET_SQL).await?, &[&id, p2, p3, p4, p5])
        .await?
        .ok_or(ApiError::NotFound)?;
    // Written here, while the row the answer borrows from is still held.
    Ok(view(&row)?.into_response())
}

static SLUG_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH found AS (
             SELECT a.id FROM content.articles a WHERE a.slug = $1 AND {readable}
         ), counted AS (
             UPDATE content.articles a SET view_count = a.view_count + 1
             FROM found WHERE a.id = found.id
             RETURNING a.*
         ), viewed AS (
             INSERT INTO content.outbox (id, type, source, actor_id, occurred_at, data)
             SELECT $6, 'article.viewed', $8, $2, $7,
                    jsonb_build_object('article_id', a.id, 'slug', a.slug, 'title', a.title,
                                       'author_id', a.author_id, 'category_id', a.category_id,
                                       'user_id', $2::uuid, 'view_count', a.view_count)
             FROM counted a
         )
         SELECT {columns} FROM counted a",
        readable = Scope::numbered(2).readable_published("a"),
        columns = detail_columns(),
    )
});

/// The public read: a published article by its slug, for whoever its visibility allows (the
/// same rule as by id, but only once published). Counts the view and records `article.viewed`
/// for the analytics service, in the same single statement. Like every analytics event it waits
/// in the outbox for the scheduler's sweep, which sends it with others, ten to a `PutEvents`
/// call, within a minute: a read does not call EventBridge.
#[utoipa::path(
    get, path = "/api/v1/articles/slug/{slug}", tag = "articles",
    params(("slug" = String, Path, description = "The article's slug")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The published article", body = ArticleDetail),
        (status = 404, description = "No published article with this slug is visible to the caller"),
    )
)]
pub async fn get_article_by_slug(
    State(state): State<AppState>,
    reader: Reader,
    Path(raw): Path<String>,
) -> ApiResult<axum::response::Response> {
    if !slug::is_slug(&raw, SLUG_MAX) {
        return Err(ApiError::NotFound);
    }
    let me = reader.id();
    let [p2, p3, p4, p5] = reader.params(&me);
    // Recorded in the outbox by the statement itself; the scheduler's sweep publishes it.
    let event = Envelope::new(EVENT_SOURCE, "article.viewed", me, Value::Null);
    let db = state.pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(&SLUG_SQL).await?,
            &[
                &raw,
                p2,
                p3,
                p4,
                p5,
                &event.id,
                &event.occurred_at,
                &EVENT_SOURCE,
            ],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    // Written here, while the row the answer borrows from is still held.
    Ok(view(&row)?.into_response())
}

/// The orders a list can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sort {
    #[serde(rename = "-published_at")]
    PublishedDesc,
    #[serde(rename = "published_at")]
    PublishedAsc,
    #[serde(rename = "-updated_at")]
    UpdatedDesc,
    #[serde(rename = "updated_at")]
    UpdatedAsc,
    #[serde(rename = "title")]
    TitleAsc,
    #[serde(rename = "-title")]
    TitleDesc,
    #[serde(rename = "-view_count")]
    ViewsDesc,
    #[serde(rename = "view_count")]
    ViewsAsc,
    #[serde(rename = "relevance")]
    Relevance,
}

impl Sort {
    const NAMES: &'static str = "-published_at, published_at, -updated_at, updated_at, title, -title, -view_count, view_count, relevance (with q)";

    fn parse(raw: &str) -> Result<Self, String> {
        serde_json::from_value(Value::String(raw.to_string()))
            .map_err(|_| format!("must be one of {}", Self::NAMES))
    }

    fn descending(self) -> bool {
        matches!(
            self,
            Sort::PublishedDesc
                | Sort::UpdatedDesc
                | Sort::TitleDesc
                | Sort::ViewsDesc
                | Sort::Relevance
        )
    }

    /// The key expression on alias `a` (relevance's is the `rank` column).
    fn key(self) -> &'static str {
        match self {
            Sort::PublishedDesc | Sort::PublishedAsc => {
                "coalesce(a.published_at, '-infinity'::timestamptz)"
            }
            Sort::UpdatedDesc | Sort::UpdatedAsc => "a.updated_at",
            Sort::TitleAsc | Sort::TitleDesc => "lower(a.title)",
            Sort::ViewsDesc | Sort::ViewsAsc => "a.view_count",
            Sort::Relevance => "rank",
        }
    }
}

/// Where the previous page ended: the sort key of its last row and its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleCursor {
    sort: Sort,
    /// published_at / updated_at (`null` for a never-published article in publication order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<f32>,
    id: Uuid,
}

/// The filters of `GET /articles`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleFilter {
    /// Full-text search (websearch syntax: `"exact phrase"`, `-not`, `or`), ranked, with
    /// highlighted snippets.
    pub q: Option<String>,
    /// draft, pending_review, approved, published or archived.
    pub status: Option<String>,
    /// public, private or restricted.
    pub visibility: Option<String>,
    pub category_id: Option<String>,
    /// With `category_id`: also the articles of its subcategories.
    pub include_subcategories: Option<String>,
    /// A tag's slug or id.
    pub tag: Option<String>,
    pub author_id: Option<String>,
    /// true or false.
    pub featured: Option<String>,
    /// Published at or after this time (RFC 3339).
    pub published_from: Option<String>,
    /// Published before this time (RFC 3339).
    pub published_to: Option<String>,
    /// -published_at (default; relevance with q), published_at, -updated_at, updated_at,
    /// title, -title, -view_count, view_count, relevance.
    pub sort: Option<String>,
}

/// An article in a list; a search adds its rank and a snippet with the matches in `<mark>`
/// (every other character of the snippet is escaped HTML text).
// A page is written straight from its rows: every string is borrowed from the row it came in
// (BENCHMARKS.md, *A list page written from its rows*). Not a doc comment: those are the API's.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleSummary<'r> {
    #[serde(flatten)]
    #[schema(value_type = Article)]
    pub article: ArticleRef<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<&'r str>,
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, String> {
    raw.parse().map_err(|_| "must be a UUID".to_string())
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 time like 2026-01-31T00:00:00Z".to_string())
}

/// Parsed filters, owned so the statement can borrow them.
struct Filters {
    q: Option<String>,
    status: Option<String>,
    visibility: Option<String>,
    category_id: Option<Uuid>,
    subcategories: bool,
    tag: Option<String>,
    tag_id: Option<Uuid>,
    author_id: Option<Uuid>,
    featured: Option<bool>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    sort: Sort,
}

fn parse_filters(f: ArticleFilter) -> ApiResult<Filters> {
    let mut v = Validator::new();
    let q =
        f.q.as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .and_then(|q| v.check("q", short_text(q, 200)));
    let status = f
        .status
        .as_deref()
        .and_then(|s| v.check("status", one_of(s, &STATUSES)));
    let visibility = f
        .visibility
        .as_deref()
        .and_then(|s| v.check("visibility", one_of(s, &VISIBILITIES)));
    let category_id = f
        .category_id
        .as_deref()
        .and_then(|s| v.check("category_id", parse_uuid(s)));
    let subcategories = f
        .include_subcategories
        .as_deref()
        .and_then(|s| v.check("include_subcategories", parse_bool(s)))
        .unwrap_or(false);
    if subcategories && f.category_id.is_none() {
        v.add("include_subcategories", "needs category_id");
    }
    let (tag, tag_id) = match f.tag.as_deref() {
        None => (None, None),
        Some(raw) => match raw.parse::<Uuid>() {
            Ok(id) => (None, Some(id)),
            Err(_) => (v.check("tag", slug::parse(raw, 60)), None),
        },
    };
    let author_id = f
        .author_id
        .as_deref()
        .and_then(|s| v.check("author_id", parse_uuid(s)));
    let featured = f
        .featured
        .as_deref()
        .and_then(|s| v.check("featured", parse_bool(s)));
    let from = f
        .published_from
        .as_deref()
        .and_then(|s| v.check("published_from", parse_time(s)));
    let to = f
        .published_to
        .as_deref()
        .and_then(|s| v.check("published_to", parse_time(s)));
    let sort = match f.sort.as_deref() {
        None if q.is_some() => Sort::Relevance,
        None => Sort::PublishedDesc,
        Some(raw) => v
            .check("sort", Sort::parse(raw))
            .unwrap_or(Sort::PublishedDesc),
    };
    if sort == Sort::Relevance && q.is_none() && f.sort.is_some() {
        v.add("sort", "relevance needs a search (q)");
    }
    v.finish()?;
    Ok(Filters {
        q,
        status,
        visibility,
        category_id,
        subcategories,
        tag,
        tag_id,
        author_id,
        featured,
        from,
        to,
        sort,
    })
}

const RANK: &str = "ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', a.search, query.q)";

/// How many matches a relevance search ranks: the newest this many the caller may see. A
/// search for a word most articles contain then costs the same at a thousand articles as at
/// a million (ranking reads each match's whole search vector); one that matches fewer is
/// ranked in full. Past them, `sort=-published_at` pages through every match.
pub const RANKED_MATCHES: usize = 200;

/// The snippet text: title, a written excerpt (a derived one repeats the first paragraph) and
/// block text, HTML-escaped so that only the `<mark>`
/// tags ts_headline adds are markup.
const SNIPPET_TEXT: &str = "replace(replace(replace(
        a.title || '. ' || CASE WHEN a.excerpt_custom THEN coalesce(a.excerpt, '') || ' ' ELSE '' END
            || coalesce((SELECT string_agg(b.plain_text, ' ' ORDER BY b.sort_order)
                         FROM content.article_content_blocks b WHERE b.article_id = a.id), ''),
        '&', '&amp;'), '<', '&lt;'), '>', '&gt;')";

/// The highlighted snippet of a search hit, built once.
static SNIPPET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "ts_headline('english', {SNIPPET_TEXT}, query.q,
            'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=10, FragmentDelimiter=\" … \"')"
    )
});

/// Articles the caller can see, filtered, ordered, keyset-paginated; with `q`, a ranked
/// full-text search (title and tags weigh most, then the excerpt, then the blocks) that records
/// `search.performed`. In relevance order a search ranks the newest 200 matches the caller may
/// see (all of them when fewer match); `sort=-published_at` reaches every match.
#[utoipa::path(
    get, path = "/api/v1/articles", tag = "articles",
    params(PageQuery, ArticleFilter),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of articles", body = List<ArticleSummary>),
        (status = 422, description = "A filter, the sort or the cursor is invalid (named)"),
    )
)]
pub async fn list_articles(
    State(state): State<AppState>,
    reader: Reader,
    Query(page): Query<PageQuery>,
    Query(filter): Query<ArticleFilter>,
) -> ApiResult<axum::response::Response> {
    let f = parse_filters(filter)?;
    let page = page.parse::<ArticleCursor>()?;
    let me = reader.id();
    let after = page.after.clone();
    let limit = page.limit + 1;
    let (sql, binds) = list_statement(&reader, &me, &f, after.as_ref(), &limit)?;
    let searching = f.q.is_some();
    let db = state.pool.get().await?;
    let rows = if searching {
        // Planned for its words: a generic plan cannot tell a rare word from a common one.
        db.query(sql.as_str(), binds.values()).await?
    } else {
        db.query(&db.prepare_cached(&sql).await?, binds.values())
            .await?
    };
    let w = crate::model::ARTICLE_WIDTH;
    // Each item keeps its row, so that only the cursor's row decodes its sort title.
    let items: Vec<(ArticleSummary, &tokio_postgres::Row)> = rows
        .iter()
        .map(|r| {
            let item = ArticleSummary {
                article: article_ref(r),
                rank: r.get(w + 1),
                snippet: r.get(w + 2),
            };
            (item, r)
        })
        .collect();
    let sort = f.sort;
    let list = List::paginate(items, page.limit, |(item, row)| {
        let a = &item.article;
        ArticleCursor {
            sort,
            t: match sort {
                Sort::PublishedDesc | Sort::PublishedAsc => a.published_at,
                Sort::UpdatedDesc | Sort::UpdatedAsc => Some(a.updated_at),
                _ => None,
            },
            s: matches!(sort, Sort::TitleAsc | Sort::TitleDesc).then(|| row.get(w)),
            n: matches!(sort, Sort::ViewsAsc | Sort::ViewsDesc).then_some(a.view_count),
            r: if sort == Sort::Relevance {
                item.rank
            } else {
                None
            },
            id: a.id,
        }
    });
    let answer = List {
        data: list
            .data
            .into_iter()
            .map(|(item, _)| item)
            .collect::<Vec<_>>(),
        next_cursor: list.next_cursor,
    };
    if let (Some(q), None) = (&f.q, &after) {
        record_search(&state, &db, me, q, &f, &answer).await?;
    }
    // Written here, while the rows its strings borrow from are still held.
    Ok(Json(answer).into_response())
}

/// The statement of one `GET /articles` request and its parameters, in bind order: the
/// reader's scope ([`Reader::bind`]), each filter present, the cursor's id and position, the
/// limit (page size + 1) and, with `q`, the words. `f.q` decides the shape: a search (run
/// unprepared, see [`list_articles`]) or a plain list.
fn list_statement<'a>(
    reader: &'a Reader,
    me: &'a Option<Uuid>,
    f: &'a Filters,
    after: Option<&'a ArticleCursor>,
    limit: &'a i64,
) -> ApiResult<(String, Binds<'a>)> {
    if after.is_some_and(|c| c.sort != f.sort) {
        return Err(ApiError::validation(
            "cursor",
            "belongs to a list in another order",
        ));
    }
    let mut binds = Binds::new();
    let scope = reader.bind(&mut binds, me);
    let mut conditions = vec![scope.visible("a")];
    if let Some(status) = &f.status {
        conditions.push(format!("a.status = {}", binds.bind(status)));
    }
    if let Some(visibility) = &f.visibility {
        conditions.push(format!("a.visibility = {}", binds.bind(visibility)));
    }
    if let Some(category_id) = &f.category_id {
        let p = binds.bind(category_id);
        conditions.push(if f.subcategories {
            format!(
                "a.category_id IN (WITH RECURSIVE down AS (
                     SELECT id, 1 AS depth FROM content.categories WHERE id = {p}
                   UNION ALL
                     SELECT c.id, down.depth + 1 FROM content.categories c JOIN down ON c.parent_id = down.id
                     WHERE down.depth < 64)
                 SELECT id FROM down)"
            )
        } else {
            format!("a.category_id = {p}")
        });
    }
    if let Some(tag) = &f.tag {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM content.article_tags at JOIN content.tags t ON t.id = at.tag_id
                     WHERE at.article_id = a.id AND t.slug = {})",
            binds.bind(tag)
        ));
    }
    if let Some(tag_id) = &f.tag_id {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM content.article_tags at WHERE at.article_id = a.id AND at.tag_id = {})",
            binds.bind(tag_id)
        ));
    }
    if let Some(author_id) = &f.author_id {
        conditions.push(format!("a.author_id = {}", binds.bind(author_id)));
    }
    if let Some(featured) = &f.featured {
        conditions.push(format!("a.is_featured = {}", binds.bind(featured)));
    }
    if let Some(from) = &f.from {
        conditions.push(format!("a.published_at >= {}", binds.bind(from)));
    }
    if let Some(to) = &f.to {
        conditions.push(format!("a.published_at < {}", binds.bind(to)));
    }
    if f.q.is_some() {
        // `query` is the CTE the search statement below starts with.
        conditions.push("a.search @@ query.q".to_string());
    }
    let comparison = if f.sort.descending() { "<" } else { ">" };
    let sort_key = f.sort.key();
    let mut after_condition = None;
    if let Some(after) = after {
        let id = binds.bind(&after.id);
        let position = match f.sort {
            Sort::PublishedDesc | Sort::PublishedAsc => after.t.as_ref().map(|t| binds.bind(t)),
            Sort::UpdatedDesc | Sort::UpdatedAsc => after.t.as_ref().map(|t| binds.bind(t)),
            Sort::TitleAsc | Sort::TitleDesc => after.s.as_ref().map(|s| binds.bind(s)),
            Sort::ViewsDesc | Sort::ViewsAsc => after.n.as_ref().map(|n| binds.bind(n)),
            Sort::Relevance => after.r.as_ref().map(|r| binds.bind(r)),
        };
        after_condition = Some(match (position, f.sort) {
            (Some(p), Sort::PublishedDesc | Sort::PublishedAsc) => {
                format!("({sort_key}, a.id) {comparison} ({p}::timestamptz, {id})")
            }
            (Some(p), Sort::Relevance) => format!("(a.rank, a.id) {comparison} ({p}::real, {id})"),
            (Some(p), _) => format!("({sort_key}, a.id) {comparison} ({p}, {id})"),
            // A never-published article in publication order: the key is -infinity.
            (None, Sort::PublishedDesc) => {
                format!("(a.published_at IS NULL AND a.id < {id})")
            }
            (None, Sort::PublishedAsc) => {
                format!("(a.published_at IS NOT NULL OR a.id > {id})")
            }
            (None, _) => {
                return Err(ApiError::validation(
                    "cursor",
                    "is not a cursor this list issued",
                ));
            }
        });
    }
    let direction = if f.sort.descending() { "DESC" } else { "ASC" };
    let limit_param = binds.bind(limit);
    // `query` is not materialized, so the planner sees the words themselves and can tell a
    // common word (walk the newest articles) from a rare one (the GIN index).
    let snippet = &*SNIPPET;
    let sql = match (&f.q, f.sort) {
        (Some(q), Sort::Relevance) => {
            let q_param = binds.bind(q);
            let filter = conditions.join(" AND ");
            let after = after_condition.map_or(String::new(), |c| format!("WHERE {c}"));
            format!(
                "WITH query AS NOT MATERIALIZED (SELECT websearch_to_tsquery('english', {q_param}) AS q),
                 candidates AS MATERIALIZED (
                     SELECT a.id FROM content.articles a, query
                     WHERE {filter}
                     ORDER BY {newest} DESC, a.id DESC LIMIT {RANKED_MATCHES}),
                 hits AS (
                     SELECT * FROM (
                         SELECT a.*, {RANK} AS rank
                         FROM content.articles a JOIN candidates USING (id), query) a
                     {after}
                     ORDER BY a.rank DESC, a.id DESC LIMIT {limit_param})
                 SELECT {ARTICLE_COLUMNS}, lower(a.title), a.rank, {snippet}
                 FROM hits a, query
                 ORDER BY a.rank DESC, a.id DESC",
                newest = Sort::PublishedDesc.key(),
            )
        }
        (Some(q), _) => {
            let q_param = binds.bind(q);
            conditions.extend(after_condition);
            let filter = conditions.join(" AND ");
            format!(
                "WITH query AS NOT MATERIALIZED (SELECT websearch_to_tsquery('english', {q_param}) AS q),
                 hits AS (
                     SELECT a.* FROM content.articles a, query
                     WHERE {filter}
                     ORDER BY {sort_key} {direction}, a.id {direction} LIMIT {limit_param})
                 SELECT {ARTICLE_COLUMNS}, lower(a.title), {RANK}, {snippet}
                 FROM hits a, query
                 ORDER BY {sort_key} {direction}, a.id {direction}",
            )
        }
        (None, _) => {
            conditions.extend(after_condition);
            let filter = conditions.join(" AND ");
            format!(
                "SELECT {ARTICLE_COLUMNS}, lower(a.title), NULL::real, NULL::text
                 FROM content.articles a WHERE {filter}
                 ORDER BY {sort_key} {direction}, a.id {direction} LIMIT {limit_param}"
            )
        }
    };
    Ok((sql, binds))
}

/// The SQL text `GET /articles` runs for `reader` with these query parameters, built by the
/// very code [`list_articles`] uses. For the benchmarks, whose raw tokio-postgres loops must
/// run the handler's statement; the parameters are the ones [`list_statement`] lists (for an
/// anonymous reader on `?status=published&limit=20`: no id, no groups, false, false,
/// `"published"`, 21). Errors as the handler would answer them.
pub fn list_sql(reader: &Reader, filter: ArticleFilter, page: PageQuery) -> ApiResult<String> {
    let f = parse_filters(filter)?;
    let page = page.parse::<ArticleCursor>()?;
    let me = reader.id();
    let limit = page.limit + 1;
    Ok(list_statement(reader, &me, &f, page.after.as_ref(), &limit)?.0)
}

/// Records `search.performed` for the first page of a search: the words, how many results the
/// page holds and whether more follow, and the filters. An analytics event: the scheduler's
/// sweep publishes it (see [`get_article_by_slug`]).
async fn record_search(
    state: &AppState,
    db: &impl GenericClient,
    me: Option<Uuid>,
    q: &str,
    f: &Filters,
    answer: &List<ArticleSummary<'_>>,
) -> ApiResult<()> {
    let event = Envelope::new(
        EVENT_SOURCE,
        "search.performed",
        me,
        json!({
            "query": q,
            "results": answer.data.len(),
            "has_more": answer.next_cursor.is_some(),
            "result_ids": answer.data.iter().map(|a| a.article.id).collect::<Vec<_>>(),
            "user_id": me,
            "filters": {
                "status": f.status, "visibility": f.visibility, "category_id": f.category_id,
                "tag": f.tag.clone().or_else(|| f.tag_id.map(|t| t.to_string())),
                "author_id": f.author_id, "featured": f.featured,
            },
        }),
    );
    state.outbox.record(db, &event).await?;
    Ok(())
}

/// Changes an article's fields and, when present, replaces its blocks, SEO settings or tags:
/// one new version. Authors change their own drafts (articles.create); anything else needs
/// articles.edit. Honours `If-Match`.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body = UpdateArticle,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The article, saved as a new version", body = ArticleDetail),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 409, description = "The slug is taken, or the article is archived"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "Invalid fields, each named"),
    )
)]
pub async fn update_article(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<UpdateArticle>,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let title = body
        .title
        .as_deref()
        .and_then(|t| v.check("title", short_text(t, 200)));
    let new_slug = body
        .slug
        .as_deref()
        .and_then(|s| v.check("slug", slug::parse(s, SLUG_MAX)));
    let excerpt = v
        .change("excerpt", body.excerpt, |e| excerpt_text(&e))
        .map(Option::flatten);
    let featured_image = v.change(
        "featured_image",
        body.featured_image
            .map(|i| i.filter(|s| !s.trim().is_empty())),
        |s| image_url(&s),
    );
    let visibility = body
        .visibility
        .as_deref()
        .and_then(|s| v.check("visibility", one_of(s, &VISIBILITIES)));
    let blocks = body.blocks.map(|b| parse_blocks(&mut v, "blocks", b));
    let seo = body.seo.map(|s| seo::parse(&mut v, "seo", s));
    let tags = body
        .tags
        .map(|t| article_tags::parse_refs(&mut v, "tags", t));
    let summary = summary_of(&mut v, body.change_summary, "Edited");
    if body.is_featured.is_some() && !reader.can(Module::Articles, Action::Publish) {
        v.add(
            "is_featured",
            "featuring an article needs the articles.publish permission",
        );
    }
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let locked = lock_for_edit(&tx, &reader, id, if_match).await?;
    if let Some(Some(category_id)) = body.category_id
        && locked.category_id != Some(category_id)
    {
        check_category(&tx, &reader, category_id).await?;
    }
    let mut changes: Vec<&str> = Vec::new();
    let mut mark = |field: &'static str, changed: bool| {
        if changed {
            changes.push(field);
        }
    };
    mark("title", title.is_some());
    mark("slug", new_slug.as_ref().is_some_and(|s| *s != locked.slug));
    mark("excerpt", excerpt.is_some());
    mark("featured_image", featured_image.is_some());
    mark(
        "visibility",
        visibility.as_ref().is_some_and(|s| *s != locked.visibility),
    );
    mark(
        "category_id",
        body.category_id.is_some_and(|c| c != locked.category_id),
    );
    mark("is_featured", body.is_featured.is_some());
    mark("allow_comments", body.allow_comments.is_some());
    mark("blocks", blocks.is_some());
    mark("seo", seo.is_some());
    mark("tags", tags.is_some());
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.articles SET
                 title = coalesce($2, title),
                 slug = coalesce($3, slug),
                 excerpt = CASE WHEN $4 THEN $5 ELSE excerpt END,
                 excerpt_custom = CASE WHEN $4 THEN $5 IS NOT NULL ELSE excerpt_custom END,
                 featured_image = CASE WHEN $6 THEN $7 ELSE featured_image END,
                 visibility = coalesce($8, visibility),
                 category_id = CASE WHEN $9 THEN $10 ELSE category_id END,
                 is_featured = coalesce($11, is_featured),
                 allow_comments = coalesce($12, allow_comments)
             WHERE id = $1",
        )
        .await?,
        &[
            &id,
            &title,
            &new_slug,
            &excerpt.is_some(),
            &excerpt.clone().flatten(),
            &featured_image.is_some(),
            &featured_image.clone().flatten(),
            &visibility,
            &body.category_id.is_some(),
            &body.category_id.flatten(),
            &body.is_featured,
            &body.allow_comments,
        ],
    )
    .await
    .map_err(slug_conflict)?;
    if let Some(blocks) = &blocks {
        blocks::replace_all(&tx, id, blocks).await?;
    }
    if let Some(seo) = &seo {
        seo::store(&tx, id, seo).await?;
    }
    if let Some(tags) = &tags {
        article_tags::replace(&tx, &reader, id, tags, "tags").await?;
    }
    versions::snapshot(&tx, id, reader.id(), &summary).await?;
    let saved = load_detail(&tx, id).await?;
    let event = updated_event(&saved, reader.id(), &changes, json!({ "summary": summary }));
    state.outbox.commit(tx, &[event]).await?;
    Ok(with_etag(saved))
}

/// `?permanent=true` on `DELETE /articles/{id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteOptions {
    /// true: delete even a published or archived article, with its history.
    pub permanent: Option<String>,
}

/// Deletes or archives: a published article is archived (it leaves the site, its history
/// stays; 200 with the article); any other article — a draft, one in review, or an archived
/// one — is deleted with its history (204). `?permanent=true` deletes a published article
/// outright. Needs articles.delete; authors delete their own drafts with articles.create.
#[utoipa::path(
    delete, path = "/api/v1/articles/{id}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on"),
        DeleteOptions,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Archived; the article", body = ArticleDetail),
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the caller's to delete"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
    )
)]
pub async fn delete_article(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Query(options): Query<DeleteOptions>,
) -> ApiResult<axum::response::Response> {
    let permanent = match options.permanent.as_deref() {
        None => false,
        Some(raw) => parse_bool(raw).map_err(|m| ApiError::validation("permanent", m))?,
    };
    let user = reader.signed_in()?.clone();
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let locked = lock_visible(&tx, &reader, id).await?;
    check_if_match(&locked, if_match)?;
    let own_draft = locked.author_id == user.id()
        && locked.status == "draft"
        && user.can(Module::Articles, Action::Create);
    if !own_draft {
        user.require(Module::Articles, Action::Delete)?;
    }
    if !locked.category_editable {
        return Err(ApiError::Forbidden(
            "Only members of a group with can_edit on this category change its articles.".into(),
        ));
    }
    if locked.status == "published" && !permanent {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE content.articles SET status = 'archived', scheduled_publish_at = NULL WHERE id = $1",
            )
            .await?,
            &[&id],
        )
        .await?;
        versions::snapshot(&tx, id, Some(user.id()), "Archived").await?;
        let archived = load_detail(&tx, id).await?;
        let event = Envelope::new(
            EVENT_SOURCE,
            "article.archived",
            Some(user.id()),
            json!({
                "from": locked.status,
                "to": "archived",
                "article": article_data(&archived.article),
                "article_id": id,
                "author_id": locked.author_id,
            }),
        );
        state.outbox.commit(tx, &[event]).await?;
        return Ok(with_etag(archived).into_response());
    }
    tx.execute(
        &tx.prepare_cached("DELETE FROM content.articles WHERE id = $1")
            .await?,
        &[&id],
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "article.deleted",
        Some(user.id()),
        json!({
            "article_id": id,
            "title": locked.title,
            "slug": locked.slug,
            "status": locked.status,
            "author_id": locked.author_id,
            "category_id": locked.category_id,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
