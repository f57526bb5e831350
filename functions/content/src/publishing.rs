//! The editorial workflow: `PUT /articles/{id}/status`, `POST /articles/{id}/publish`,
//! `POST /articles/{id}/schedule`, and [`publish_due`], which the scheduler runs every minute.
//!
//! An article moves draft → pending_review → approved → published → archived, with the
//! backward moves an editorial team needs; every other move is 409:
//!
//! | from | to | move | who |
//! |---|---|---|---|
//! | draft | pending_review | submit | the author (articles.create) or articles.edit |
//! | pending_review | approved | approve | articles.publish |
//! | pending_review | draft | reject (withdraw, by the author) | articles.publish or the author |
//! | approved | published | publish | articles.publish |
//! | approved | draft | reject | articles.publish |
//! | published | archived | archive | articles.publish |
//! | published | draft | unpublish | articles.publish |
//! | archived | draft | unarchive | articles.publish |
//!
//! Every move is a save (a new version) and emits `article.<move>ed`-style events:
//! `article.submitted`, `.approved`, `.rejected`, `.published`, `.unpublished`, `.archived`,
//! `.unarchived`. A category restricted to groups needs `can_edit` for any move.

use axum::{extract::State, http::HeaderMap};
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::{GenericClient, Pool};
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    events::{Envelope, Outbox},
    extract::{IfMatch, Json, Path},
    validate::{Validator, short_text},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Reader,
    articles::{Locked, STATUSES, article_data, check_if_match, lock_visible, with_etag},
    model::{ArticleDetail, load_detail},
    state::{AppState, EVENT_SOURCE},
    versions,
};

/// Who may make a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The author with articles.create, or anyone with articles.edit.
    AuthorOrEditor,
    /// articles.publish, or the author (withdrawing their own submission).
    PublisherOrAuthor,
    Publisher,
}

/// Every allowed move: from, to, its name (the event is `article.<event>`), who.
const MOVES: &[(&str, &str, &str, Needs)] = &[
    (
        "draft",
        "pending_review",
        "submitted",
        Needs::AuthorOrEditor,
    ),
    ("pending_review", "approved", "approved", Needs::Publisher),
    (
        "pending_review",
        "draft",
        "rejected",
        Needs::PublisherOrAuthor,
    ),
    ("approved", "published", "published", Needs::Publisher),
    ("approved", "draft", "rejected", Needs::Publisher),
    ("published", "archived", "archived", Needs::Publisher),
    ("published", "draft", "unpublished", Needs::Publisher),
    ("archived", "draft", "unarchived", Needs::Publisher),
];

/// The move from `from` to `to` and who may make it; `None` when there is no such move.
fn find_move(from: &str, to: &str) -> Option<(&'static str, Needs)> {
    MOVES
        .iter()
        .find(|(f, t, _, _)| *f == from && *t == to)
        .map(|(_, _, name, needs)| (*name, *needs))
}

fn ensure_may(reader: &Reader, locked: &Locked, needs: Needs) -> ApiResult<()> {
    let user = reader.signed_in()?;
    if !locked.category_editable {
        return Err(ApiError::Forbidden(
            "Only members of a group with can_edit on this category change its articles.".into(),
        ));
    }
    let author = user.id() == locked.author_id;
    let allowed = match needs {
        Needs::AuthorOrEditor => {
            user.can(Module::Articles, Action::Edit)
                || (author && user.can(Module::Articles, Action::Create))
        }
        Needs::PublisherOrAuthor => {
            user.can(Module::Articles, Action::Publish)
                || (author && user.can(Module::Articles, Action::Create))
        }
        Needs::Publisher => user.can(Module::Articles, Action::Publish),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(match needs {
            Needs::AuthorOrEditor => {
                "Submitting needs to be the author (articles.create) or articles.edit.".into()
            }
            _ => "This move needs the articles.publish permission.".into(),
        }))
    }
}

/// Moves the locked article to `to`: the row, a version, the event. The caller commits.
async fn apply_move(
    tx: &impl GenericClient,
    locked: &Locked,
    to: &str,
    name: &str,
    actor: Option<Uuid>,
    comment: Option<&str>,
) -> ApiResult<(ArticleDetail, Envelope)> {
    tx.execute(
        &tx.prepare_cached(
            "UPDATE content.articles SET status = $2,
                 published_at = CASE WHEN $2 = 'published' THEN coalesce(published_at, now()) ELSE published_at END,
                 scheduled_publish_at = CASE WHEN $2 = 'approved' THEN scheduled_publish_at END
             WHERE id = $1",
        )
        .await?,
        &[&locked.id, &to],
    )
    .await?;
    let summary = match comment {
        Some(comment) => format!("{} → {to}: {comment}", locked.status),
        None => format!("{} → {to}", locked.status),
    };
    versions::snapshot(tx, locked.id, actor, &summary).await?;
    let moved = load_detail(tx, locked.id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        &format!("article.{name}"),
        actor,
        json!({
            "from": locked.status,
            "to": to,
            "comment": comment,
            "article": article_data(&moved.article),
            // Flattened for consumers that route on the article alone.
            "article_id": moved.article.id,
            "author_id": moved.article.author_id,
        }),
    );
    Ok((moved, event))
}

/// A status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// draft, pending_review, approved, published or archived.
    pub status: String,
    /// Why (a reviewer's note when rejecting); kept in the version's summary and the event.
    pub comment: Option<String>,
}

fn parse_comment(v: &mut Validator, raw: Option<String>) -> Option<String> {
    raw.filter(|c| !c.trim().is_empty())
        .and_then(|c| v.check("comment", short_text(&c, 500)))
}

async fn change(
    state: &AppState,
    reader: &Reader,
    id: Uuid,
    if_match: Option<i32>,
    to: &str,
    comment: Option<String>,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    reader.signed_in()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let locked = lock_visible(&tx, reader, id).await?;
    check_if_match(&locked, if_match)?;
    let Some((name, needs)) = find_move(&locked.status, to) else {
        return Err(ApiError::Conflict(format!(
            "An article cannot move from {} to {to}.",
            locked.status
        )));
    };
    ensure_may(reader, &locked, needs)?;
    let (moved, event) =
        apply_move(&tx, &locked, to, name, reader.id(), comment.as_deref()).await?;
    state.outbox.commit(tx, &[event]).await?;
    Ok(with_etag(moved))
}

/// Moves an article along the workflow (the table in this module's documentation).
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/status", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = StatusChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The article in its new status", body = ArticleDetail),
        (status = 403, description = "The move needs a permission the caller lacks"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 409, description = "No such move from the current status"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "Unknown status"),
    )
)]
pub async fn change_status(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<StatusChange>,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    let mut v = Validator::new();
    if !STATUSES.contains(&body.status.as_str()) {
        v.add("status", format!("must be one of {}", STATUSES.join(", ")));
    }
    let comment = parse_comment(&mut v, body.comment);
    v.finish()?;
    change(&state, &reader, id, if_match, &body.status, comment).await
}

/// An optional note with a publication.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub comment: Option<String>,
}

/// Publishes an approved article now (articles.publish); 409 from any other status.
#[utoipa::path(
    post, path = "/api/v1/articles/{id}/publish", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body(content = Option<PublishRequest>, description = "Optional"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The published article", body = ArticleDetail),
        (status = 403, description = "Needs articles.publish"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 409, description = "The article is not approved"),
        (status = 412, description = "If-Match names an older version"),
    )
)]
pub async fn publish_article(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    body: axum::body::Bytes,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    // The body is optional: an empty one publishes without a note.
    let body: PublishRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PublishRequest::default()
    } else {
        lectern_shared::extract::parse_json(&body)?
    };
    let mut v = Validator::new();
    let comment = parse_comment(&mut v, body.comment);
    v.finish()?;
    change(&state, &reader, id, if_match, "published", comment).await
}

/// When to publish; `null` cancels the schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[serde(deserialize_with = "lectern_shared::extract::nullable", default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub scheduled_publish_at: Option<Option<String>>,
}

/// How far ahead a publication may be scheduled.
const SCHEDULE_HORIZON_DAYS: i64 = 730;

/// Schedules an approved article for publication (articles.publish), or cancels the schedule
/// with `null`. The scheduler publishes it within a minute of the time.
#[utoipa::path(
    post, path = "/api/v1/articles/{id}/schedule", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = ScheduleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The article with its schedule", body = ArticleDetail),
        (status = 403, description = "Needs articles.publish"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 409, description = "Only an approved article is scheduled"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "The time is missing, malformed, past or too far ahead"),
    )
)]
pub async fn schedule_article(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<ScheduleRequest>,
) -> ApiResult<(HeaderMap, Json<ArticleDetail>)> {
    let now = Utc::now();
    let at: Option<DateTime<Utc>> = match body.scheduled_publish_at {
        None => {
            return Err(ApiError::validation(
                "scheduled_publish_at",
                "is required: a future time, or null to cancel",
            ));
        }
        Some(None) => None,
        Some(Some(raw)) => {
            let at = DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::validation(
                        "scheduled_publish_at",
                        "must be an RFC 3339 time like 2026-12-01T09:00:00Z",
                    )
                })?;
            if at <= now {
                return Err(ApiError::validation(
                    "scheduled_publish_at",
                    "must be in the future",
                ));
            }
            if at > now + Duration::days(SCHEDULE_HORIZON_DAYS) {
                return Err(ApiError::validation(
                    "scheduled_publish_at",
                    format!("must be within {SCHEDULE_HORIZON_DAYS} days"),
                ));
            }
            Some(at)
        }
    };
    let user = reader.require(Module::Articles, Action::Publish)?.clone();
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let locked = lock_visible(&tx, &reader, id).await?;
    check_if_match(&locked, if_match)?;
    ensure_may(&reader, &locked, Needs::Publisher)?;
    if locked.status != "approved" {
        return Err(ApiError::Conflict(format!(
            "Only an approved article is scheduled; this one is {}.",
            locked.status
        )));
    }
    tx.execute(
        &tx.prepare_cached("UPDATE content.articles SET scheduled_publish_at = $2 WHERE id = $1")
            .await?,
        &[&id, &at],
    )
    .await?;
    let summary = match at {
        Some(at) => format!("Scheduled for {}", at.to_rfc3339()),
        None => "Schedule cancelled".to_string(),
    };
    versions::snapshot(&tx, id, Some(user.id()), &summary).await?;
    let saved = load_detail(&tx, id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        if at.is_some() {
            "article.scheduled"
        } else {
            "article.schedule_cancelled"
        },
        Some(user.id()),
        json!({
            "scheduled_publish_at": at,
            "previous": locked.scheduled_publish_at,
            "article": article_data(&saved.article),
            "article_id": id,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(with_etag(saved))
}

/// Due articles published per transaction; a longer backlog takes several rounds of one run.
const DUE_BATCH: i64 = 100;

/// Publishes every approved article whose `scheduled_publish_at` has come, each exactly once:
/// the due rows are locked with `SKIP LOCKED` and re-checked under the lock, so two
/// overlapping runs split the work instead of repeating it. Emits `article.published` per
/// article through `outbox` (the content schema's). Answers how many were published.
pub async fn publish_due(pool: &Pool, outbox: &Outbox) -> anyhow::Result<usize> {
    let mut published = 0;
    loop {
        let mut db = pool.get().await?;
        let tx = db.transaction().await?;
        let due = tx
            .query(
                &tx.prepare_cached(
                    "SELECT a.id, a.title, a.slug, a.status, a.visibility, a.author_id, a.category_id,
                            a.version, a.published_at, a.scheduled_publish_at
                     FROM content.articles a
                     WHERE a.status = 'approved' AND a.scheduled_publish_at <= now()
                     ORDER BY a.scheduled_publish_at, a.id
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED",
                )
                .await?,
                &[&DUE_BATCH],
            )
            .await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(published);
        }
        let mut events = Vec::with_capacity(due.len());
        for row in &due {
            let locked = Locked {
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
                category_editable: true,
            };
            let (_, mut event) = apply_move(
                &tx,
                &locked,
                "published",
                "published",
                None,
                Some("published on schedule"),
            )
            .await
            .map_err(|err| anyhow::anyhow!("publishing {}: {err}", locked.id))?;
            event.data["scheduled_publish_at"] = json!(locked.scheduled_publish_at);
            events.push(event);
        }
        let count = events.len();
        outbox.commit(tx, &events).await?;
        published += count;
        tracing::info!(published = count, "published scheduled articles");
        if (count as i64) < DUE_BATCH {
            return Ok(published);
        }
    }
}
