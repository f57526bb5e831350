//! `/api/v1/articles/{id}/blocks*`: an article's body, one typed block at a time or all at
//! once. Every change is a save — a new article version — and honours `If-Match` on the
//! article's ETag; `sort_order` is always 0, 1, 2… in display order.

pub mod rules;

use std::{collections::HashSet, sync::LazyLock};

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError, ApiResult,
    extract::{IfMatch, Json, List, Path},
    validate::Validator,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Reader,
    articles::{etag, lock_for_edit, parse_blocks, read_visible, summary_of, updated_event},
    model::{BLOCKS_JSON, Block, load_detail},
    state::AppState,
    versions,
};
use rules::{BlockInput, CleanBlock, MAX_BLOCKS};

/// The text of a plain field a client sends (an excerpt, a tag name, an SEO title): markup
/// removed with the content of script-like elements, entities decoded, whitespace collapsed.
/// Stored as text; clients escape it like any text.
pub fn plain_text_of(raw: &str) -> String {
    static STRIP: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut builder = ammonia::Builder::empty();
        builder.clean_content_tags(HashSet::from(["script", "style", "template", "noscript"]));
        builder
    });
    rules::html_to_text(&STRIP.clean(&raw.replace('\0', "")).to_string())
}

/// Inserts `blocks` in order, the first at `sort_order = first`.
pub async fn insert_all(
    tx: &Transaction<'_>,
    article_id: Uuid,
    blocks: &[CleanBlock],
    first: i32,
) -> ApiResult<Vec<Uuid>> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO content.article_content_blocks
                 (id, article_id, block_type, content, metadata, plain_text, sort_order)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let mut ids = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let id = Uuid::now_v7();
        tx.execute(
            &insert,
            &[
                &id,
                &article_id,
                &block.block_type.as_str(),
                &block.content,
                &block.metadata,
                &block.plain_text,
                &(first + i as i32),
            ],
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Replaces every block of the article with `blocks`.
pub async fn replace_all(
    tx: &Transaction<'_>,
    article_id: Uuid,
    blocks: &[CleanBlock],
) -> ApiResult<Vec<Uuid>> {
    tx.execute(
        &tx.prepare_cached("DELETE FROM content.article_content_blocks WHERE article_id = $1")
            .await?,
        &[&article_id],
    )
    .await?;
    insert_all(tx, article_id, blocks, 0).await
}

/// Renumbers the blocks 0, 1, 2… in their current order.
async fn renumber(tx: &Transaction<'_>, article_id: Uuid) -> ApiResult<()> {
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.article_content_blocks b SET sort_order = n.position
             FROM (SELECT id, row_number() OVER (ORDER BY sort_order, id)::int - 1 AS position
                   FROM content.article_content_blocks WHERE article_id = $1) n
             WHERE b.id = n.id AND b.sort_order <> n.position",
        )
        .await?,
        &[&article_id],
    )
    .await?;
    Ok(())
}

async fn blocks_of(db: &impl GenericClient, article_id: Uuid) -> ApiResult<Vec<Block>> {
    let sql = format!("SELECT {BLOCKS_JSON} FROM content.articles a WHERE a.id = $1");
    let row = db
        .query_one(&db.prepare_cached(&sql).await?, &[&article_id])
        .await?;
    serde_json::from_value(row.get(0))
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading blocks: {err}")))
}

/// Saves the change as a version, emits `article.updated` and commits; answers the new ETag
/// and the blocks as saved (read once, for the event and the answer).
async fn save(
    state: &AppState,
    tx: Transaction<'_>,
    reader: &Reader,
    article_id: Uuid,
    summary: &str,
) -> ApiResult<(HeaderMap, Vec<Block>)> {
    renumber(&tx, article_id).await?;
    let version = versions::snapshot(&tx, article_id, reader.id(), summary).await?;
    let saved = load_detail(&tx, article_id).await?;
    let event = updated_event(
        &saved,
        reader.id(),
        &["blocks"],
        json!({ "summary": summary }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok((etag(version), saved.blocks))
}

/// The blocks of an article the caller can see, in order.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/blocks", tag = "articles",
    params(("id" = Uuid, Path, description = "The article id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The blocks in display order", body = List<Block>,
         headers(("ETag" = String, description = "The article's version"))),
        (status = 404, description = "No such article, or not visible to the caller"),
    )
)]
pub async fn list_blocks(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<(HeaderMap, Json<List<Block>>)> {
    let db = state.pool.get().await?;
    let row = read_visible(&db, &reader, id, &format!("a.version, {BLOCKS_JSON}")).await?;
    let blocks: Vec<Block> = serde_json::from_value(row.get(1))
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading blocks: {err}")))?;
    Ok((
        etag(row.get(0)),
        Json(List {
            data: blocks,
            next_cursor: None,
        }),
    ))
}

/// The whole body at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBlocks {
    pub blocks: Vec<BlockInput>,
    pub change_summary: Option<String>,
}

/// Replaces every block: one new version.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/blocks", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = ReplaceBlocks,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new blocks", body = List<Block>),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "An invalid block, its field named (`blocks[2].metadata.level`)"),
    )
)]
pub async fn replace_blocks(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<ReplaceBlocks>,
) -> ApiResult<(HeaderMap, Json<List<Block>>)> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let blocks = parse_blocks(&mut v, "blocks", body.blocks);
    let summary = summary_of(&mut v, body.change_summary, "Replaced the body");
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    replace_all(&tx, id, &blocks).await?;
    let (headers, blocks) = save(&state, tx, &reader, id, &summary).await?;
    Ok((
        headers,
        Json(List {
            data: blocks,
            next_cursor: None,
        }),
    ))
}

/// One new block, and where it goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    pub block_type: String,
    pub content: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// 0-based place among the blocks; at the end when absent.
    pub position: Option<i32>,
    pub change_summary: Option<String>,
}

/// Adds a block (at `position`, or at the end): one new version.
#[utoipa::path(
    post, path = "/api/v1/articles/{id}/blocks", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = NewBlock,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the block", body = Block,
         headers(("Location" = String, description = "The block's URL"),
                 ("ETag" = String, description = "The article's new version"))),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "An invalid field, named (`block.metadata.level`)"),
    )
)]
pub async fn add_block(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<NewBlock>,
) -> ApiResult<impl IntoResponse> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let block = rules::clean(
        BlockInput {
            block_type: body.block_type,
            content: body.content,
            metadata: body.metadata,
        },
        "block",
        &mut v,
    );
    if body.position.is_some_and(|p| p < 0) {
        v.add("position", "must be 0 or more");
    }
    let summary = summary_of(&mut v, body.change_summary, "Added a block");
    v.finish()?;
    let block =
        block.ok_or_else(|| ApiError::internal(anyhow::anyhow!("a valid block is missing")))?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    let count: i64 = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT count(*) FROM content.article_content_blocks WHERE article_id = $1",
            )
            .await?,
            &[&id],
        )
        .await?
        .get(0);
    if count as usize >= MAX_BLOCKS {
        return Err(ApiError::Conflict(format!(
            "An article holds at most {MAX_BLOCKS} blocks."
        )));
    }
    let position = body.position.map_or(count as i32, |p| p.min(count as i32));
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.article_content_blocks SET sort_order = sort_order + 1
             WHERE article_id = $1 AND sort_order >= $2",
        )
        .await?,
        &[&id, &position],
    )
    .await?;
    let block_id = insert_all(&tx, id, std::slice::from_ref(&block), position)
        .await?
        .remove(0);
    let (mut headers, blocks) = save(&state, tx, &reader, id, &summary).await?;
    let created = pick(blocks, block_id)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/articles/{id}/blocks/{block_id}"))
    {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(created)))
}

/// Block `block_id` among `blocks`; 404 when it is not there.
fn pick(blocks: Vec<Block>, block_id: Uuid) -> ApiResult<Block> {
    blocks
        .into_iter()
        .find(|b| b.id == block_id)
        .ok_or(ApiError::NotFound)
}

async fn find_block(db: &impl GenericClient, article_id: Uuid, block_id: Uuid) -> ApiResult<Block> {
    pick(blocks_of(db, article_id).await?, block_id)
}

/// A change of one block: what is absent stays as it is; the result is validated as a whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBlock {
    pub block_type: Option<String>,
    pub content: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Moves the block to this 0-based place.
    pub position: Option<i32>,
    pub change_summary: Option<String>,
}

/// Changes one block: one new version.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/blocks/{block_id}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("block_id" = Uuid, Path, description = "The block id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = UpdateBlock,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The block", body = Block),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article or block"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "An invalid field, named (`block.metadata.level`)"),
    )
)]
pub async fn update_block(
    State(state): State<AppState>,
    reader: Reader,
    Path((id, block_id)): Path<(Uuid, Uuid)>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<UpdateBlock>,
) -> ApiResult<(HeaderMap, Json<Block>)> {
    reader.signed_in()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    let current = find_block(&tx, id, block_id).await?;
    let mut v = Validator::new();
    let type_changed = body.block_type.is_some();
    let block = rules::clean(
        BlockInput {
            block_type: body
                .block_type
                .unwrap_or_else(|| current.block_type.as_str().to_string()),
            content: body.content.or(Some(current.content)),
            // A new type starts from empty metadata unless some is given.
            metadata: body
                .metadata
                .or((!type_changed).then_some(current.metadata)),
        },
        "block",
        &mut v,
    );
    if body.position.is_some_and(|p| p < 0) {
        v.add("position", "must be 0 or more");
    }
    let summary = summary_of(&mut v, body.change_summary, "Changed a block");
    v.finish()?;
    let block =
        block.ok_or_else(|| ApiError::internal(anyhow::anyhow!("a valid block is missing")))?;
    // Moving: place it just before the block now at `position` (after it when moving down).
    let sort_order = match body.position {
        None => current.sort_order,
        Some(p) if p > current.sort_order => p * 2 + 1,
        Some(p) => p * 2 - 1,
    };
    if body.position.is_some() {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE content.article_content_blocks SET sort_order = sort_order * 2
                 WHERE article_id = $1",
            )
            .await?,
            &[&id],
        )
        .await?;
    }
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.article_content_blocks
             SET block_type = $3, content = $4, metadata = $5, plain_text = $6, updated_at = now(),
                 sort_order = CASE WHEN $8 THEN $7 ELSE sort_order END
             WHERE id = $2 AND article_id = $1",
        )
        .await?,
        &[
            &id,
            &block_id,
            &block.block_type.as_str(),
            &block.content,
            &block.metadata,
            &block.plain_text,
            &sort_order,
            &body.position.is_some(),
        ],
    )
    .await?;
    let (headers, blocks) = save(&state, tx, &reader, id, &summary).await?;
    Ok((headers, Json(pick(blocks, block_id)?)))
}

/// Deletes one block: one new version.
#[utoipa::path(
    delete, path = "/api/v1/articles/{id}/blocks/{block_id}", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("block_id" = Uuid, Path, description = "The block id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted",
         headers(("ETag" = String, description = "The article's new version"))),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article or block"),
        (status = 412, description = "If-Match names an older version"),
    )
)]
pub async fn delete_block(
    State(state): State<AppState>,
    reader: Reader,
    Path((id, block_id)): Path<(Uuid, Uuid)>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<(StatusCode, HeaderMap)> {
    reader.signed_in()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    let deleted = tx
        .execute(
            &tx.prepare_cached(
                "DELETE FROM content.article_content_blocks WHERE id = $2 AND article_id = $1",
            )
            .await?,
            &[&id, &block_id],
        )
        .await?;
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    let (headers, _) = save(&state, tx, &reader, id, "Deleted a block").await?;
    Ok((StatusCode::NO_CONTENT, headers))
}

/// The new order: every block id of the article, once each.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockOrder {
    pub block_ids: Vec<Uuid>,
    pub change_summary: Option<String>,
}

/// Reorders the blocks: one new version.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/blocks/order", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = BlockOrder,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The blocks in their new order", body = List<Block>),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "block_ids is not every block of the article once"),
    )
)]
pub async fn reorder_blocks(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<BlockOrder>,
) -> ApiResult<(HeaderMap, Json<List<Block>>)> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let summary = summary_of(&mut v, body.change_summary, "Reordered the blocks");
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    let current = blocks_of(&tx, id).await?;
    let mut wanted = body.block_ids.clone();
    wanted.sort();
    let mut have: Vec<Uuid> = current.iter().map(|b| b.id).collect();
    have.sort();
    if wanted != have {
        return Err(ApiError::validation(
            "block_ids",
            "must list every block of the article exactly once",
        ));
    }
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.article_content_blocks b SET sort_order = o.position::int - 1
             FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, position)
             WHERE b.id = o.id AND b.article_id = $1",
        )
        .await?,
        &[&id, &body.block_ids],
    )
    .await?;
    let (headers, blocks) = save(&state, tx, &reader, id, &summary).await?;
    Ok((
        headers,
        Json(List {
            data: blocks,
            next_cursor: None,
        }),
    ))
}
