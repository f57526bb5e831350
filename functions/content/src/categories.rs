//! `/api/v1/categories*`: the category tree (at most [`MAX_CATEGORY_DEPTH`] levels), each
//! category's group access rules, and what happens to subcategories and articles when one
//! goes.
//!
//! A category with rules in `category_group_access` is restricted: it exists only for members
//! of one of its groups (the token's `groups` lists the caller's groups with their ancestors)
//! and for holders of `categories.manage`; everyone else gets 404, and a hidden category
//! hides its whole subtree. Inactive categories are left out of navigation for everyone but
//! editors (`categories.edit`). Every change of the tree (create, move, delete) runs under
//! one advisory lock, so two concurrent moves can never build a cycle or nest too deep.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    error::unique_violation,
    events::Envelope,
    extract::{Json, Path, Query, nullable},
    validate::{self, Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::{Reader, Scope},
    slug,
    state::{AppState, EVENT_SOURCE},
};

/// How many levels the tree may have: a top-level category is level 1.
pub const MAX_CATEGORY_DEPTH: i32 = 8;

/// The longest slug a category may have.
pub const SLUG_MAX: usize = 120;

/// The most rules one category may have.
pub const MAX_RULES: usize = 100;

/// Exposes category alias `c`'s id as `k.category_id`, the shape the fragments of
/// [`Scope`] read, so that categories are hidden by the very rule that hides articles.
const AS_ARTICLE_CATEGORY: &str = "CROSS JOIN LATERAL (SELECT c.id AS category_id) k";

/// Whether the category joined by [`AS_ARTICLE_CATEGORY`] is visible to the caller whose
/// groups are `$first` and whose bypass flag is `$first+1` ([`Reader::category_params`]).
fn visible(first: usize) -> String {
    Scope::for_categories(first).category_visible("k")
}

/// What part of the tree a caller sees.
struct Sight<'a> {
    groups: &'a Vec<Uuid>,
    bypass: bool,
    /// Whether inactive categories (and what lies below them) count.
    inactive: bool,
}

impl<'a> Sight<'a> {
    fn of(reader: &'a Reader, inactive: bool) -> Self {
        Self {
            groups: &reader.groups,
            bypass: reader.bypass,
            inactive,
        }
    }
}

/// A category: every column, whether it is restricted, and its published articles.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// An icon name, like `book-open`.
    pub icon: Option<String>,
    /// `#rrggbb`, lowercase.
    pub color: Option<String>,
    /// `null` for a top-level category.
    pub parent_id: Option<Uuid>,
    /// Siblings are ordered by this, then by name.
    pub sort_order: i32,
    pub is_active: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub created_by: Option<Uuid>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Whether group access rules limit who sees the category.
    pub restricted: bool,
    /// Published articles directly in this category (not in its subcategories).
    pub article_count: i64,
}

/// The columns [`category`] reads, on alias `c`.
const CATEGORY_COLUMNS: &str = "c.id, c.name, c.slug, c.description, c.icon, c.color, \
    c.parent_id, c.sort_order, c.is_active, c.meta_title, c.meta_description, c.created_by, \
    c.created_at, c.updated_at, \
    c.gate_id IS NOT NULL, \
    (SELECT count(*) FROM content.articles a WHERE a.category_id = c.id AND a.status = 'published')";

/// How many columns [`CATEGORY_COLUMNS`] has: what follows them starts here.
const CATEGORY_WIDTH: usize = 16;

fn category(row: &tokio_postgres::Row) -> Category {
    Category {
        id: row.get(0),
        name: row.get(1),
        slug: row.get(2),
        description: row.get(3),
        icon: row.get(4),
        color: row.get(5),
        parent_id: row.get(6),
        sort_order: row.get(7),
        is_active: row.get(8),
        meta_title: row.get(9),
        meta_description: row.get(10),
        created_by: row.get(11),
        created_at: row.get(12),
        updated_at: row.get(13),
        restricted: row.get(14),
        article_count: row.get(15),
    }
}

/// What events say about a category.
fn category_data(c: &Category) -> Value {
    json!({
        "category_id": c.id,
        "name": c.name,
        "slug": c.slug,
        "parent_id": c.parent_id,
        "is_active": c.is_active,
        "sort_order": c.sort_order,
    })
}

/// A category in the tree, with the subcategories the caller sees.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryNode {
    #[serde(flatten)]
    pub category: Category,
    /// Ordered by `sort_order`, then name.
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// A category as other answers name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CategoryRef {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// One category with its place in the tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryDetail {
    #[serde(flatten)]
    pub category: Category,
    /// The ancestors, from the top-level category down to the parent.
    pub path: Vec<CategoryRef>,
    /// The direct subcategories the caller sees, by `sort_order`, then name.
    pub children: Vec<CategoryRef>,
}

static TREE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CATEGORY_COLUMNS}, {visible} FROM content.categories c {AS_ARTICLE_CATEGORY}
         ORDER BY c.sort_order, lower(c.name), c.id",
        visible = visible(1),
    )
});

/// Nests the rows (already in sibling order) under their parents, leaving out what the caller
/// does not see together with everything below it.
fn build_tree(rows: Vec<(Category, bool)>, include_inactive: bool) -> Vec<CategoryNode> {
    let mut by_parent: HashMap<Option<Uuid>, Vec<Category>> = HashMap::new();
    for (category, visible) in rows {
        if visible && (include_inactive || category.is_active) {
            by_parent
                .entry(category.parent_id)
                .or_default()
                .push(category);
        }
    }
    // Each list is taken once, so a node is placed at most once and only when its parent was:
    // the children of a left-out category are never reached.
    fn attach(
        by_parent: &mut HashMap<Option<Uuid>, Vec<Category>>,
        parent: Option<Uuid>,
    ) -> Vec<CategoryNode> {
        by_parent
            .remove(&parent)
            .unwrap_or_default()
            .into_iter()
            .map(|category| {
                let children = attach(by_parent, Some(category.id));
                CategoryNode { category, children }
            })
            .collect()
    }
    attach(&mut by_parent, None)
}

/// Options of `GET /categories`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TreeQuery {
    /// `true` also lists inactive categories (needs categories.edit).
    pub include_inactive: Option<String>,
}

/// The whole category tree the caller sees, nested; siblings by `sort_order`, then name.
/// Anyone may read it, signed in or not.
#[utoipa::path(
    get, path = "/api/v1/categories", tag = "categories",
    params(TreeQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The top-level categories, each with its subcategories", body = Vec<CategoryNode>),
        (status = 403, description = "include_inactive=true without categories.edit"),
    )
)]
pub async fn list_categories(
    State(state): State<AppState>,
    reader: Reader,
    Query(query): Query<TreeQuery>,
) -> ApiResult<Json<Vec<CategoryNode>>> {
    let include_inactive = match query.include_inactive.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::validation(
                "include_inactive",
                "must be true or false",
            ));
        }
    };
    if include_inactive {
        reader.require(Module::Categories, Action::Edit)?;
    }
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(&TREE_SQL).await?,
            &reader.category_params(),
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| (category(r), r.get::<_, bool>(CATEGORY_WIDTH)))
        .collect();
    Ok(Json(build_tree(rows, include_inactive)))
}

static PATH_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE up AS (
             SELECT id, parent_id, 0 AS depth FROM content.categories WHERE id = $1
           UNION ALL
             SELECT c.id, c.parent_id, up.depth + 1 FROM content.categories c JOIN up ON c.id = up.parent_id
             WHERE up.depth < 64
         )
         SELECT c.id, c.name, c.slug, c.is_active, {visible}
         FROM up JOIN content.categories c ON c.id = up.id {AS_ARTICLE_CATEGORY}
         ORDER BY up.depth DESC",
        visible = visible(2),
    )
});

/// Category `id` and its ancestors, top-down (the category itself last), if the caller sees
/// every one of them; `None` when it does not exist or is hidden.
async fn visible_path(
    db: &impl GenericClient,
    sight: &Sight<'_>,
    id: Uuid,
) -> ApiResult<Option<Vec<CategoryRef>>> {
    let rows = db
        .query(
            &db.prepare_cached(&PATH_SQL).await?,
            &[&id, sight.groups, &sight.bypass],
        )
        .await?;
    let seen = !rows.is_empty()
        && rows
            .iter()
            .all(|r| r.get::<_, bool>(4) && (sight.inactive || r.get::<_, bool>(3)));
    Ok(seen.then(|| {
        rows.iter()
            .map(|r| CategoryRef {
                id: r.get(0),
                name: r.get(1),
                slug: r.get(2),
            })
            .collect()
    }))
}

/// How deep category `id` sits (1 for a top-level one), if the caller sees it.
async fn visible_depth(
    db: &impl GenericClient,
    sight: &Sight<'_>,
    id: Uuid,
) -> ApiResult<Option<i32>> {
    Ok(visible_path(db, sight, id)
        .await?
        .map(|path| i32::try_from(path.len()).unwrap_or(i32::MAX)))
}

static CHILDREN_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT c.id, c.name, c.slug FROM content.categories c {AS_ARTICLE_CATEGORY}
         WHERE c.parent_id = $1 AND (c.is_active OR $4) AND {visible}
         ORDER BY c.sort_order, lower(c.name), c.id",
        visible = visible(2),
    )
});

async fn load_category(db: &impl GenericClient, id: Uuid) -> ApiResult<Category> {
    let sql = format!("SELECT {CATEGORY_COLUMNS} FROM content.categories c WHERE c.id = $1");
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| category(&r))
        .ok_or(ApiError::NotFound)
}

/// The category with its path and subcategories, as the caller sees it; 404 when hidden.
async fn category_detail(
    db: &impl GenericClient,
    sight: &Sight<'_>,
    id: Uuid,
) -> ApiResult<CategoryDetail> {
    let mut path = visible_path(db, sight, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    path.pop();
    let category = load_category(db, id).await?;
    let children = db
        .query(
            &db.prepare_cached(&CHILDREN_SQL).await?,
            &[&id, sight.groups, &sight.bypass, &sight.inactive],
        )
        .await?
        .iter()
        .map(|r| CategoryRef {
            id: r.get(0),
            name: r.get(1),
            slug: r.get(2),
        })
        .collect();
    Ok(CategoryDetail {
        category,
        path,
        children,
    })
}

/// Recomputes which category's rules apply to each category (`gate_id`): after any change of
/// rules or of the tree's shape, in the same transaction.
async fn refresh_gates(tx: &Transaction<'_>) -> ApiResult<()> {
    tx.execute(
        &tx.prepare_cached("SELECT content.refresh_category_gates()")
            .await?,
        &[],
    )
    .await?;
    Ok(())
}

/// Serialises every change of the tree's shape: a create or a move checks depth and cycles
/// against a tree nobody else is changing.
async fn lock_tree(tx: &Transaction<'_>) -> ApiResult<()> {
    tx.execute(
        &tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtext('content.categories'))")
            .await?,
        &[],
    )
    .await?;
    Ok(())
}

/// The category, its row locked for the rest of the transaction; 404 when absent or hidden.
async fn lock_category(tx: &Transaction<'_>, sight: &Sight<'_>, id: Uuid) -> ApiResult<Category> {
    tx.query_opt(
        &tx.prepare_cached("SELECT 1 FROM content.categories WHERE id = $1 FOR UPDATE")
            .await?,
        &[&id],
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    visible_path(tx, sight, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    load_category(tx, id).await
}

/// A category and everything below it.
struct Subtree {
    ids: Vec<Uuid>,
    /// Levels from the category down to its deepest descendant: 1 without subcategories.
    height: i32,
}

async fn subtree(db: &impl GenericClient, id: Uuid) -> ApiResult<Subtree> {
    let rows = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE down AS (
                     SELECT id, 1 AS level FROM content.categories WHERE id = $1
                   UNION ALL
                     SELECT c.id, down.level + 1 FROM content.categories c JOIN down ON c.parent_id = down.id
                     WHERE down.level < 64
                 )
                 SELECT id, level FROM down",
            )
            .await?,
            &[&id],
        )
        .await?;
    Ok(Subtree {
        ids: rows.iter().map(|r| r.get(0)).collect(),
        height: rows.iter().map(|r| r.get::<_, i32>(1)).max().unwrap_or(0),
    })
}

const NO_SUCH_CATEGORY: &str = "names a category that does not exist";

fn too_deep() -> String {
    format!("would nest categories more than {MAX_CATEGORY_DEPTH} levels deep")
}

/// Any text that is one line: trimmed, at most `max` characters, no control characters;
/// empty means none.
fn optional_line(raw: &str, max: usize) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    short_text(text, max).map(Some)
}

/// An icon name: lowercase letters, digits and hyphens, at most 100 characters; empty means
/// none.
fn icon(raw: &str) -> Result<Option<String>, String> {
    let icon = raw.trim();
    if icon.is_empty() {
        return Ok(None);
    }
    if icon.len() > 100
        || !icon
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(
            "must be at most 100 lowercase letters, digits and hyphens, like book-open".into(),
        );
    }
    Ok(Some(icon.to_string()))
}

/// A colour as `#rrggbb` (any case in, lowercase out); empty means none.
fn color(raw: &str) -> Result<Option<String>, String> {
    let color = raw.trim();
    if color.is_empty() {
        return Ok(None);
    }
    let valid = color.len() == 7
        && color.starts_with('#')
        && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(Some(color.to_ascii_lowercase()))
    } else {
        Err("must be a colour like #1a2b3c".into())
    }
}

fn slug_conflict(slug: &str) -> ApiError {
    ApiError::Conflict(format!(
        "The slug {slug} is taken by another category; choose another."
    ))
}

/// A new category. Only `name` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    /// 1 to 100 characters.
    pub name: String,
    /// Made from the name when absent (with `-2`, `-3`... when that is taken); a slug sent
    /// and taken is a 409.
    pub slug: Option<String>,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// Lowercase letters, digits and hyphens, at most 100.
    pub icon: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// The parent category; top-level when absent.
    pub parent_id: Option<Uuid>,
    /// 0 when absent.
    pub sort_order: Option<i32>,
    /// true when absent.
    pub is_active: Option<bool>,
    /// At most 70 characters.
    pub meta_title: Option<String>,
    /// At most 160 characters.
    pub meta_description: Option<String>,
}

/// The category's columns a request may set, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    name: String,
    slug: String,
    description: Option<String>,
    icon: Option<String>,
    color: Option<String>,
    parent_id: Option<Uuid>,
    sort_order: i32,
    is_active: bool,
    meta_title: Option<String>,
    meta_description: Option<String>,
}

impl Fields {
    fn of(c: &Category) -> Self {
        Self {
            name: c.name.clone(),
            slug: c.slug.clone(),
            description: c.description.clone(),
            icon: c.icon.clone(),
            color: c.color.clone(),
            parent_id: c.parent_id,
            sort_order: c.sort_order,
            is_active: c.is_active,
            meta_title: c.meta_title.clone(),
            meta_description: c.meta_description.clone(),
        }
    }

    /// The names of the fields that differ from `before`.
    fn changes(&self, before: &Self) -> Vec<&'static str> {
        [
            ("name", self.name != before.name),
            ("slug", self.slug != before.slug),
            ("description", self.description != before.description),
            ("icon", self.icon != before.icon),
            ("color", self.color != before.color),
            ("parent_id", self.parent_id != before.parent_id),
            ("sort_order", self.sort_order != before.sort_order),
            ("is_active", self.is_active != before.is_active),
            ("meta_title", self.meta_title != before.meta_title),
            (
                "meta_description",
                self.meta_description != before.meta_description,
            ),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(field, _)| field)
        .collect()
    }
}

/// Inserts the category unless its slug is taken; answers whether it did.
async fn insert(tx: &Transaction<'_>, id: Uuid, f: &Fields, by: Uuid) -> ApiResult<bool> {
    let inserted = tx
        .query_opt(
            &tx.prepare_cached(
                "INSERT INTO content.categories (id, name, slug, description, icon, color, parent_id,
                     sort_order, is_active, meta_title, meta_description, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT ON CONSTRAINT categories_slug_key DO NOTHING
                 RETURNING id",
            )
            .await?,
            &[
                &id,
                &f.name,
                &f.slug,
                &f.description,
                &f.icon,
                &f.color,
                &f.parent_id,
                &f.sort_order,
                &f.is_active,
                &f.meta_title,
                &f.meta_description,
                &by,
            ],
        )
        .await?;
    Ok(inserted.is_some())
}

/// Creates a category (needs categories.create), at the top level or under `parent_id`.
#[utoipa::path(
    post, path = "/api/v1/categories", tag = "categories",
    request_body = NewCategory,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the category", body = CategoryDetail,
         headers(("Location" = String, description = "The new category's URL"))),
        (status = 409, description = "The slug sent is taken"),
        (status = 422, description = "Invalid fields, each named; an unknown parent or one 8 levels deep is `parent_id`"),
    )
)]
pub async fn create_category(
    State(state): State<AppState>,
    reader: Reader,
    Json(body): Json<NewCategory>,
) -> ApiResult<impl IntoResponse> {
    let user = reader.require(Module::Categories, Action::Create)?;
    let mut v = Validator::new();
    let name = v.check("name", short_text(&body.name, 100));
    let explicit_slug = body
        .slug
        .as_deref()
        .and_then(|s| v.check("slug", slug::parse(s, SLUG_MAX)));
    let description = body
        .description
        .as_deref()
        .and_then(|d| v.check("description", validate::long_text(d, 2000)))
        .flatten();
    let icon = body
        .icon
        .as_deref()
        .and_then(|i| v.check("icon", icon(i)))
        .flatten();
    let color = body
        .color
        .as_deref()
        .and_then(|c| v.check("color", color(c)))
        .flatten();
    let meta_title = body
        .meta_title
        .as_deref()
        .and_then(|m| v.check("meta_title", optional_line(m, 70)))
        .flatten();
    let meta_description = body
        .meta_description
        .as_deref()
        .and_then(|m| v.check("meta_description", optional_line(m, 160)))
        .flatten();

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_tree(&tx).await?;
    let sight = Sight::of(&reader, true);
    if let Some(parent) = body.parent_id {
        match visible_depth(&tx, &sight, parent).await? {
            None => v.add("parent_id", NO_SUCH_CATEGORY),
            Some(depth) if depth + 1 > MAX_CATEGORY_DEPTH => v.add("parent_id", too_deep()),
            Some(_) => {}
        }
    }
    v.finish()?;
    let Some(name) = name else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a validated name is missing"
        )));
    };

    let id = Uuid::now_v7();
    let mut fields = Fields {
        slug: explicit_slug.clone().unwrap_or_default(),
        name,
        description,
        icon,
        color,
        parent_id: body.parent_id,
        sort_order: body.sort_order.unwrap_or(0),
        is_active: body.is_active.unwrap_or(true),
        meta_title,
        meta_description,
    };
    match explicit_slug {
        Some(slug) => {
            if !insert(&tx, id, &fields, user.id()).await? {
                return Err(slug_conflict(&slug));
            }
        }
        None => {
            let base = slug::slugify(&fields.name, SLUG_MAX, "category");
            // A free slug can be taken by a concurrent create before this one inserts: then
            // the next free one is tried.
            let mut attempts = 0;
            loop {
                fields.slug =
                    slug::first_free(&tx, slug::Owner::Categories, &base, SLUG_MAX).await?;
                if insert(&tx, id, &fields, user.id()).await? {
                    break;
                }
                attempts += 1;
                if attempts == 5 {
                    return Err(slug_conflict(&fields.slug));
                }
            }
        }
    }
    refresh_gates(&tx).await?;
    let created = category_detail(&tx, &sight, id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "category.created",
        Some(user.id()),
        category_data(&created.category),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/categories/{id}"))],
        Json(created),
    ))
}

/// One category with its ancestors and the subcategories the caller sees. Anyone may read a
/// category they can see; inactive ones (or those below an inactive one) only editors
/// (`categories.edit`).
#[utoipa::path(
    get, path = "/api/v1/categories/{id}", tag = "categories",
    params(("id" = Uuid, Path, description = "The category id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The category", body = CategoryDetail),
        (status = 404, description = "No such category, or not visible to the caller"),
    )
)]
pub async fn get_category(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<CategoryDetail>> {
    let sight = Sight::of(&reader, reader.can(Module::Categories, Action::Edit));
    let db = state.pool.get().await?;
    Ok(Json(category_detail(&db, &sight, id).await?))
}

/// A category update: only the fields present change; `null` clears a nullable field
/// (`parent_id: null` moves the category to the top level). The slug does not follow a new
/// name: links to the category keep working.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub icon: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub color: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
    pub sort_order: Option<i32>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub meta_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub meta_description: Option<Option<String>>,
}

/// Changes, renames or moves a category (needs categories.edit). A move may not put the
/// category under itself or one of its subcategories, nor nest the tree deeper than 8 levels.
#[utoipa::path(
    put, path = "/api/v1/categories/{id}", tag = "categories",
    params(("id" = Uuid, Path, description = "The category id")),
    request_body = CategoryUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated category", body = CategoryDetail),
        (status = 404, description = "No such category, or not visible to the caller"),
        (status = 409, description = "The slug is taken"),
        (status = 422, description = "Invalid fields, each named; a cycle or a tree too deep is `parent_id`"),
    )
)]
pub async fn update_category(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    Json(body): Json<CategoryUpdate>,
) -> ApiResult<Json<CategoryDetail>> {
    let user = reader.require(Module::Categories, Action::Edit)?;
    let mut v = Validator::new();
    let name = body
        .name
        .as_deref()
        .and_then(|n| v.check("name", short_text(n, 100)));
    let slug = body
        .slug
        .as_deref()
        .and_then(|s| v.check("slug", slug::parse(s, SLUG_MAX)));
    let description = v
        .change("description", body.description, |d| {
            validate::long_text(&d, 2000)
        })
        .map(Option::flatten);
    let icon = v
        .change("icon", body.icon, |i| icon(&i))
        .map(Option::flatten);
    let color = v
        .change("color", body.color, |c| color(&c))
        .map(Option::flatten);
    let meta_title = v
        .change("meta_title", body.meta_title, |m| optional_line(&m, 70))
        .map(Option::flatten);
    let meta_description = v
        .change("meta_description", body.meta_description, |m| {
            optional_line(&m, 160)
        })
        .map(Option::flatten);

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_tree(&tx).await?;
    let sight = Sight::of(&reader, true);
    let before = lock_category(&tx, &sight, id).await?;
    if let Some(Some(parent)) = body.parent_id.filter(|p| *p != before.parent_id) {
        let moved = subtree(&tx, id).await?;
        if moved.ids.contains(&parent) {
            v.add(
                "parent_id",
                "would create a cycle: a category cannot move under itself or one of its subcategories",
            );
        } else {
            match visible_depth(&tx, &sight, parent).await? {
                None => v.add("parent_id", NO_SUCH_CATEGORY),
                Some(depth) if depth + moved.height > MAX_CATEGORY_DEPTH => {
                    v.add("parent_id", too_deep())
                }
                Some(_) => {}
            }
        }
    }
    v.finish()?;

    let old = Fields::of(&before);
    let new = Fields {
        name: name.unwrap_or_else(|| old.name.clone()),
        slug: slug.unwrap_or_else(|| old.slug.clone()),
        description: description.unwrap_or_else(|| old.description.clone()),
        icon: icon.unwrap_or_else(|| old.icon.clone()),
        color: color.unwrap_or_else(|| old.color.clone()),
        parent_id: body.parent_id.unwrap_or(old.parent_id),
        sort_order: body.sort_order.unwrap_or(old.sort_order),
        is_active: body.is_active.unwrap_or(old.is_active),
        meta_title: meta_title.unwrap_or_else(|| old.meta_title.clone()),
        meta_description: meta_description.unwrap_or_else(|| old.meta_description.clone()),
    };
    let changes = new.changes(&old);
    if changes.is_empty() {
        let unchanged = category_detail(&tx, &sight, id).await?;
        tx.commit().await?;
        return Ok(Json(unchanged));
    }
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.categories
             SET name = $2, slug = $3, description = $4, icon = $5, color = $6, parent_id = $7,
                 sort_order = $8, is_active = $9, meta_title = $10, meta_description = $11,
                 updated_at = now()
             WHERE id = $1",
        )
        .await?,
        &[
            &id,
            &new.name,
            &new.slug,
            &new.description,
            &new.icon,
            &new.color,
            &new.parent_id,
            &new.sort_order,
            &new.is_active,
            &new.meta_title,
            &new.meta_description,
        ],
    )
    .await
    .map_err(|e| {
        if unique_violation(&e) == Some("categories_slug_key") {
            slug_conflict(&new.slug)
        } else {
            e.into()
        }
    })?;
    refresh_gates(&tx).await?;
    let after = category_detail(&tx, &sight, id).await?;
    let mut data = category_data(&after.category);
    data["changes"] = json!(changes);
    let event = Envelope::new(EVENT_SOURCE, "category.updated", Some(user.id()), data);
    state.outbox.commit(tx, &[event]).await?;
    Ok(Json(after))
}

/// Where `DELETE /categories/{id}` puts what the category holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteCategory {
    /// A category id to move the subcategories (with their subtrees) under, or `root` to
    /// make them top-level. Required when the category has subcategories.
    pub children_to: Option<String>,
    /// A category id to move the articles to, or `none` to leave them uncategorised. Required
    /// when the category holds articles (in any status).
    pub articles_to: Option<String>,
}

/// Where a delete moves things: the top of the tree (or no category), or a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Top,
    Category(Uuid),
}

impl Destination {
    fn parse(v: &mut Validator, field: &str, raw: Option<&str>, top: &str) -> Option<Self> {
        match raw.map(str::trim) {
            None | Some("") => None,
            Some(word) if word == top => Some(Self::Top),
            Some(raw) => match raw.parse::<Uuid>() {
                Ok(id) => Some(Self::Category(id)),
                Err(_) => {
                    v.add(field, format!("must be a category id or {top}"));
                    None
                }
            },
        }
    }

    fn category(self) -> Option<Uuid> {
        match self {
            Self::Top => None,
            Self::Category(id) => Some(id),
        }
    }

    /// As events show it: the category id, or `top`.
    fn data(self, top: &str) -> Value {
        match self {
            Self::Top => json!(top),
            Self::Category(id) => json!(id),
        }
    }
}

/// Deletes a category (needs categories.delete). Subcategories and articles do not go with
/// it: while it has any, the delete is refused (409) unless `children_to` and `articles_to`
/// say where they go; they move, and the category goes, in one transaction. Moved articles
/// take on the access rules of where they land (none when uncategorised); their `version` is
/// unchanged, as a move of category is not an edit of the article.
#[utoipa::path(
    delete, path = "/api/v1/categories/{id}", tag = "categories",
    params(("id" = Uuid, Path, description = "The category id"), DeleteCategory),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such category, or not visible to the caller"),
        (status = 409, description = "It has subcategories or articles the query does not place"),
        (status = 422, description = "children_to or articles_to names no category, the category itself or one below it, or would nest too deep"),
    )
)]
pub async fn delete_category(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    Query(options): Query<DeleteCategory>,
) -> ApiResult<StatusCode> {
    let user = reader.require(Module::Categories, Action::Delete)?;
    let mut v = Validator::new();
    let children_to = Destination::parse(
        &mut v,
        "children_to",
        options.children_to.as_deref(),
        "root",
    );
    let articles_to = Destination::parse(
        &mut v,
        "articles_to",
        options.articles_to.as_deref(),
        "none",
    );

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_tree(&tx).await?;
    let sight = Sight::of(&reader, true);
    let target = lock_category(&tx, &sight, id).await?;
    let doomed = subtree(&tx, id).await?;
    for (field, destination) in [("children_to", children_to), ("articles_to", articles_to)] {
        let Some(Destination::Category(to)) = destination else {
            continue;
        };
        if doomed.ids.contains(&to) {
            v.add(
                field,
                "must not be the category being deleted or one of its subcategories",
            );
            continue;
        }
        match visible_depth(&tx, &sight, to).await? {
            None => v.add(field, NO_SUCH_CATEGORY),
            // The subcategories' subtrees are one level shorter than the deleted category's.
            Some(depth)
                if field == "children_to" && depth + doomed.height - 1 > MAX_CATEGORY_DEPTH =>
            {
                v.add(field, too_deep())
            }
            Some(_) => {}
        }
    }
    v.finish()?;

    let counts = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT (SELECT count(*) FROM content.categories WHERE parent_id = $1),
                        (SELECT count(*) FROM content.articles WHERE category_id = $1)",
            )
            .await?,
            &[&id],
        )
        .await?;
    let (children, articles): (i64, i64) = (counts.get(0), counts.get(1));
    let mut refusals = Vec::new();
    if children > 0 && children_to.is_none() {
        refusals.push(format!(
            "it has {children} {} (pass children_to=<category id> to move them under another category, or children_to=root to make them top-level)",
            if children == 1 { "subcategory" } else { "subcategories" }
        ));
    }
    if articles > 0 && articles_to.is_none() {
        refusals.push(format!(
            "it holds {articles} {} (pass articles_to=<category id> to move them to another category, or articles_to=none to leave them uncategorised)",
            if articles == 1 { "article" } else { "articles" }
        ));
    }
    if !refusals.is_empty() {
        return Err(ApiError::Conflict(format!(
            "The category {} was not deleted: {}.",
            target.name,
            refusals.join("; ")
        )));
    }

    let moved_categories: Vec<Uuid> = match children_to {
        Some(to) if children > 0 => tx
            .query(
                &tx.prepare_cached(
                    "UPDATE content.categories SET parent_id = $2, updated_at = now()
                     WHERE parent_id = $1 RETURNING id",
                )
                .await?,
                &[&id, &to.category()],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        _ => Vec::new(),
    };
    let moved_articles: Vec<Uuid> = match articles_to {
        Some(to) if articles > 0 => tx
            .query(
                &tx.prepare_cached(
                    "UPDATE content.articles SET category_id = $2 WHERE category_id = $1 RETURNING id",
                )
                .await?,
                &[&id, &to.category()],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        _ => Vec::new(),
    };
    tx.execute(
        &tx.prepare_cached("DELETE FROM content.categories WHERE id = $1")
            .await?,
        &[&id],
    )
    .await?;
    refresh_gates(&tx).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "category.deleted",
        Some(user.id()),
        json!({
            "category_id": id,
            "name": target.name,
            "slug": target.slug,
            "parent_id": target.parent_id,
            "children_to": children_to.filter(|_| children > 0).map(|d| d.data("root")),
            "moved_category_ids": moved_categories,
            "articles_to": articles_to.filter(|_| articles > 0).map(|d| d.data("none")),
            "moved_article_ids": moved_articles,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One group access rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessRule {
    pub group_id: Uuid,
    /// `null` when the group was deleted.
    pub group_name: Option<String>,
    /// The users service deleted the group: the rule matches nobody, and keeps the category
    /// restricted until it is removed.
    pub group_deleted: bool,
    /// Members see the category and its articles.
    pub can_view: bool,
    /// Members write articles in the category.
    pub can_edit: bool,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// Who may see a category: nobody is limited without rules; with rules, only members of
/// their groups (and holders of categories.manage).
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryAccess {
    pub category_id: Uuid,
    pub restricted: bool,
    /// By group name; rules of deleted groups last.
    pub rules: Vec<AccessRule>,
}

async fn category_access(db: &impl GenericClient, id: Uuid) -> ApiResult<CategoryAccess> {
    let rules: Vec<AccessRule> = db
        .query(
            &db.prepare_cached(
                "SELECT r.group_id, g.name, r.can_view, r.can_edit, r.created_at
                 FROM content.category_group_access r
                 LEFT JOIN content.groups g ON g.id = r.group_id
                 WHERE r.category_id = $1
                 ORDER BY g.name IS NULL, lower(g.name), r.group_id",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            let group_name: Option<String> = r.get(1);
            AccessRule {
                group_id: r.get(0),
                group_deleted: group_name.is_none(),
                group_name,
                can_view: r.get(2),
                can_edit: r.get(3),
                created_at: r.get(4),
            }
        })
        .collect();
    Ok(CategoryAccess {
        category_id: id,
        restricted: !rules.is_empty(),
        rules,
    })
}

/// A category's group access rules (needs categories.manage).
#[utoipa::path(
    get, path = "/api/v1/categories/{id}/access", tag = "categories",
    params(("id" = Uuid, Path, description = "The category id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules", body = CategoryAccess),
        (status = 404, description = "No such category"),
    )
)]
pub async fn get_category_access(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<CategoryAccess>> {
    reader.require(Module::Categories, Action::Manage)?;
    let sight = Sight::of(&reader, true);
    let db = state.pool.get().await?;
    visible_path(&db, &sight, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(category_access(&db, id).await?))
}

/// One rule of `PUT /categories/{id}/access`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleInput {
    /// A group of the users service.
    pub group_id: Uuid,
    pub can_view: bool,
    pub can_edit: bool,
}

/// The complete set of rules a category is to have.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRules {
    /// Every rule; an empty list makes the category unrestricted.
    pub rules: Vec<AccessRuleInput>,
}

/// Replaces a category's group access rules (needs categories.manage). Each group must be one
/// the content service has learned of from the users service; a rule the category already
/// has for a group that was deleted since may stay (it matches nobody, and keeps the category
/// closed rather than opening it).
#[utoipa::path(
    put, path = "/api/v1/categories/{id}/access", tag = "categories",
    params(("id" = Uuid, Path, description = "The category id")),
    request_body = AccessRules,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules now", body = CategoryAccess),
        (status = 404, description = "No such category"),
        (status = 422, description = "An unknown or repeated group, or a rule granting nothing, each named"),
    )
)]
pub async fn put_category_access(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    Json(body): Json<AccessRules>,
) -> ApiResult<Json<CategoryAccess>> {
    let user = reader.require(Module::Categories, Action::Manage)?;
    let mut v = Validator::new();
    if body.rules.len() > MAX_RULES {
        return Err(ApiError::validation(
            "rules",
            format!("must hold at most {MAX_RULES} rules"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, rule) in body.rules.iter().enumerate() {
        if !seen.insert(rule.group_id) {
            v.add(
                &format!("rules[{i}].group_id"),
                "names a group an earlier rule names",
            );
        }
        if !rule.can_view && !rule.can_edit {
            v.add(
                &format!("rules[{i}]"),
                "must grant can_view or can_edit (leave the group out to grant nothing)",
            );
        }
    }

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let sight = Sight::of(&reader, true);
    lock_category(&tx, &sight, id).await?;
    let before = category_access(&tx, id).await?;
    let group_ids: Vec<Uuid> = body.rules.iter().map(|r| r.group_id).collect();
    let known: HashSet<Uuid> = tx
        .query(
            &tx.prepare_cached("SELECT id FROM content.groups WHERE id = ANY ($1)")
                .await?,
            &[&group_ids],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (i, rule) in body.rules.iter().enumerate() {
        let kept = before.rules.iter().any(|r| r.group_id == rule.group_id);
        if !known.contains(&rule.group_id) && !kept {
            v.add(
                &format!("rules[{i}].group_id"),
                "names no group the content service knows (a group created a moment ago may take a few seconds to arrive)",
            );
        }
    }
    v.finish()?;

    tx.execute(
        &tx.prepare_cached(
            "DELETE FROM content.category_group_access
             WHERE category_id = $1 AND NOT (group_id = ANY ($2))",
        )
        .await?,
        &[&id, &group_ids],
    )
    .await?;
    let ids: Vec<Uuid> = body.rules.iter().map(|_| Uuid::now_v7()).collect();
    let views: Vec<bool> = body.rules.iter().map(|r| r.can_view).collect();
    let edits: Vec<bool> = body.rules.iter().map(|r| r.can_edit).collect();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO content.category_group_access (id, category_id, group_id, can_view, can_edit)
             SELECT x.id, $1, x.group_id, x.can_view, x.can_edit
             FROM unnest($2::uuid[], $3::uuid[], $4::boolean[], $5::boolean[])
                  AS x (id, group_id, can_view, can_edit)
             ON CONFLICT ON CONSTRAINT category_group_access_key
             DO UPDATE SET can_view = EXCLUDED.can_view, can_edit = EXCLUDED.can_edit",
        )
        .await?,
        &[&id, &ids, &group_ids, &views, &edits],
    )
    .await?;
    refresh_gates(&tx).await?;
    let after = category_access(&tx, id).await?;
    let grants = |a: &CategoryAccess| -> HashSet<(Uuid, bool, bool)> {
        a.rules
            .iter()
            .map(|r| (r.group_id, r.can_view, r.can_edit))
            .collect()
    };
    if grants(&before) == grants(&after) {
        tx.commit().await?;
        return Ok(Json(after));
    }
    let event = Envelope::new(
        EVENT_SOURCE,
        "category.access_changed",
        Some(user.id()),
        json!({
            "category_id": id,
            "restricted": after.restricted,
            "rules": after.rules.iter().map(|r| json!({
                "group_id": r.group_id,
                "can_view": r.can_view,
                "can_edit": r.can_edit,
            })).collect::<Vec<_>>(),
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(Json(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_icons_are_checked() {
        assert_eq!(color("#A1b2C3").unwrap().as_deref(), Some("#a1b2c3"));
        for bad in ["a1b2c3", "#a1b2c", "#a1b2cg", "#a1b2c3d"] {
            assert!(color(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(icon("book-open").unwrap().as_deref(), Some("book-open"));
        assert!(icon("Book").is_err());
        assert_eq!(icon("  ").unwrap(), None);
    }
}
