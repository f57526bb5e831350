//! `/api/v1/articles/{id}/tags`: the tags an article carries, set by name or id. A name no tag
//! has yet becomes a new tag when the caller may create tags (tags.create); otherwise it is a
//! field error. Setting the tags is a save: one new article version.

use axum::{extract::State, http::HeaderMap};
use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    error::FieldError,
    extract::{IfMatch, Json, List, Path},
    validate::{Validator, short_text},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Reader,
    articles::{lock_for_edit, read_visible, updated_event, with_etag},
    model::{TAGS_JSON, TagRef, load_detail},
    slug,
    state::AppState,
    versions,
};

/// At most this many tags on one article.
pub const MAX_TAGS: usize = 20;

/// A tag as a client names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagName {
    Id(Uuid),
    Name(String),
}

/// Parses tag references (ids or names), naming `field[i]` in errors; duplicates collapse.
pub fn parse_refs(v: &mut Validator, field: &str, raw: Vec<String>) -> Vec<TagName> {
    if raw.len() > MAX_TAGS {
        v.add(field, format!("must hold at most {MAX_TAGS} tags"));
        return Vec::new();
    }
    let mut refs: Vec<TagName> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let parsed = match raw.trim().parse::<Uuid>() {
            Ok(id) => Some(TagName::Id(id)),
            Err(_) => {
                let name = crate::blocks::plain_text_of(&raw);
                v.check(&format!("{field}[{i}]"), short_text(&name, 50))
                    .map(TagName::Name)
            }
        };
        if let Some(tag) = parsed {
            let duplicate = refs.iter().any(|r| match (r, &tag) {
                (TagName::Name(a), TagName::Name(b)) => a.to_lowercase() == b.to_lowercase(),
                (a, b) => a == b,
            });
            if !duplicate {
                refs.push(tag);
            }
        }
    }
    refs
}

/// The tag named `name` (case-insensitively), created if missing and `may_create`.
async fn find_or_create(
    tx: &Transaction<'_>,
    name: &str,
    may_create: bool,
) -> ApiResult<Option<Uuid>> {
    let find = tx
        .prepare_cached("SELECT id FROM content.tags WHERE lower(name) = lower($1)")
        .await?;
    if let Some(row) = tx.query_opt(&find, &[&name]).await? {
        return Ok(Some(row.get(0)));
    }
    if !may_create {
        return Ok(None);
    }
    let base = slug::slugify(name, 56, "tag");
    let insert = tx
        .prepare_cached(
            "INSERT INTO content.tags (id, name, slug) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .await?;
    // Another name may already own the slug ("C" and "C++" both slugify to "c").
    for n in 1..=20 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if let Some(row) = tx
            .query_opt(&insert, &[&Uuid::now_v7(), &name, &candidate])
            .await?
        {
            return Ok(Some(row.get(0)));
        }
        // Lost a race to a concurrent save creating the same name.
        if let Some(row) = tx.query_opt(&find, &[&name]).await? {
            return Ok(Some(row.get(0)));
        }
    }
    Err(ApiError::Conflict(format!(
        "No free slug for the tag {name}; create it with POST /tags and a distinct name."
    )))
}

/// Resolves `refs` to tag ids, creating missing names when the caller holds tags.create.
/// Unknown ids and (without tags.create) unknown names are field errors on `field[i]`.
pub async fn resolve(
    tx: &Transaction<'_>,
    reader: &Reader,
    refs: &[TagName],
    field: &str,
) -> ApiResult<Vec<Uuid>> {
    resolve_as(tx, reader.can(Module::Tags, Action::Create), refs, field).await
}

async fn resolve_as(
    tx: &Transaction<'_>,
    may_create: bool,
    refs: &[TagName],
    field: &str,
) -> ApiResult<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(refs.len());
    let mut errors = Vec::new();
    let exists = tx
        .prepare_cached("SELECT 1 FROM content.tags WHERE id = $1")
        .await?;
    for (i, tag) in refs.iter().enumerate() {
        match tag {
            TagName::Id(id) => {
                if tx.query_opt(&exists, &[id]).await?.is_some() {
                    ids.push(*id);
                } else {
                    errors.push(FieldError::new(format!("{field}[{i}]"), "names no tag"));
                }
            }
            TagName::Name(name) => match find_or_create(tx, name, may_create).await? {
                Some(id) => ids.push(id),
                None => errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    "no tag has this name, and creating tags needs the tags.create permission",
                )),
            },
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok(ids)
}

/// Makes the article carry exactly the tags `ids`.
async fn link(tx: &Transaction<'_>, article_id: Uuid, ids: &[Uuid]) -> ApiResult<()> {
    tx.execute(
        &tx.prepare_cached(
            "DELETE FROM content.article_tags WHERE article_id = $1 AND NOT tag_id = ANY ($2)",
        )
        .await?,
        &[&article_id, &ids],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO content.article_tags (id, article_id, tag_id)
             SELECT gen_random_uuid(), $1, t FROM unnest($2::uuid[]) AS t
             ON CONFLICT (article_id, tag_id) DO NOTHING",
        )
        .await?,
        &[&article_id, &ids],
    )
    .await?;
    Ok(())
}

/// Resolves `refs` for the caller and makes them the article's tags.
pub async fn replace(
    tx: &Transaction<'_>,
    reader: &Reader,
    article_id: Uuid,
    refs: &[TagName],
    field: &str,
) -> ApiResult<()> {
    let ids = resolve(tx, reader, refs, field).await?;
    link(tx, article_id, &ids).await
}

/// Makes `names` the article's tags, creating those deleted since (a restore).
pub async fn restore(tx: &Transaction<'_>, article_id: Uuid, names: &[String]) -> ApiResult<()> {
    let refs: Vec<TagName> = names.iter().cloned().map(TagName::Name).collect();
    let ids = resolve_as(tx, true, &refs, "tags").await?;
    link(tx, article_id, &ids).await
}

async fn tags_of(db: &impl GenericClient, article_id: Uuid) -> ApiResult<Vec<TagRef>> {
    let sql = format!("SELECT {TAGS_JSON} FROM content.articles a WHERE a.id = $1");
    let row = db
        .query_one(&db.prepare_cached(&sql).await?, &[&article_id])
        .await?;
    serde_json::from_value(row.get(0))
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading tags: {err}")))
}

/// The tags of an article the caller can see, by name.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/tags", tag = "articles",
    params(("id" = Uuid, Path, description = "The article id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The article's tags", body = List<TagRef>),
        (status = 404, description = "No such article, or not visible to the caller"),
    )
)]
pub async fn get_article_tags(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<List<TagRef>>> {
    let db = state.pool.get().await?;
    let row = read_visible(&db, &reader, id, TAGS_JSON).await?;
    let tags: Vec<TagRef> = serde_json::from_value(row.get(0))
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading tags: {err}")))?;
    Ok(Json(List {
        data: tags,
        next_cursor: None,
    }))
}

/// The tags to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTags {
    /// Tag names or ids, at most 20.
    pub tags: Vec<String>,
}

/// Sets the article's tags: one new version.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/tags", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = SetTags,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The article's tags now", body = List<TagRef>),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "An unknown tag id or, without tags.create, name (`tags[1]`)"),
    )
)]
pub async fn put_article_tags(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<SetTags>,
) -> ApiResult<(HeaderMap, Json<List<TagRef>>)> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let refs = parse_refs(&mut v, "tags", body.tags);
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    replace(&tx, &reader, id, &refs, "tags").await?;
    versions::snapshot(&tx, id, reader.id(), "Changed the tags").await?;
    let saved = load_detail(&tx, id).await?;
    let event = updated_event(&saved, reader.id(), &["tags"], json!({}));
    let tags = tags_of(&tx, id).await?;
    state.outbox.commit(tx, &[event]).await?;
    let (headers, _) = with_etag(saved);
    Ok((
        headers,
        Json(List {
            data: tags,
            next_cursor: None,
        }),
    ))
}
