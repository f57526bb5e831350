//! `/api/v1/articles/{id}/seo`: an article's search-engine and social-sharing settings. A
//! field left empty is derived from the article when read (see `model::Seo`), so an article
//! has sensible metadata before anyone writes any.

use axum::{extract::State, http::HeaderMap};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiResult,
    extract::{IfMatch, Json, Path},
    validate::{Validator, short_text},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Reader,
    articles::{lock_for_edit, read_visible, updated_event, with_etag},
    model::{ArticleDetail, Seo, StoredSeo, detail, detail_columns, load_detail},
    state::AppState,
    versions,
};

pub const TWITTER_CARDS: [&str; 4] = ["summary", "summary_large_image", "app", "player"];
const MAX_KEYWORDS: usize = 20;

/// SEO settings as a client writes them: every field optional; an absent or empty field is
/// derived from the article. A PUT replaces the whole set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeoInput {
    /// At most 70 characters.
    pub meta_title: Option<String>,
    /// At most 160 characters.
    pub meta_description: Option<String>,
    /// At most 20 keywords of at most 50 characters.
    pub keywords: Option<Vec<String>>,
    /// An absolute https (or http) URL without credentials or fragment.
    pub canonical_url: Option<String>,
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    /// An https URL or a /media/ path.
    pub og_image: Option<String>,
    /// summary, summary_large_image, app or player.
    pub twitter_card: Option<String>,
    pub no_index: Option<bool>,
    pub no_follow: Option<bool>,
}

fn text(v: &mut Validator, field: &str, raw: Option<String>, max: usize) -> Option<String> {
    raw.map(|s| crate::blocks::plain_text_of(&s))
        .filter(|s| !s.is_empty())
        .and_then(|s: String| v.check(field, short_text(&s, max)))
}

/// A canonical URL: absolute http(s), with a host, no credentials, no fragment.
pub fn canonical_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    Ok(url.to_string())
}

/// Validates SEO input, naming fields under `prefix` (`seo.meta_title`).
pub fn parse(v: &mut Validator, prefix: &str, input: SeoInput) -> StoredSeo {
    let field = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let keywords = match input.keywords {
        None => Vec::new(),
        Some(list) if list.len() > MAX_KEYWORDS => {
            v.add(
                &field("keywords"),
                format!("must hold at most {MAX_KEYWORDS} keywords"),
            );
            Vec::new()
        }
        Some(list) => {
            let mut seen = Vec::new();
            for (i, keyword) in list.into_iter().enumerate() {
                let keyword = crate::blocks::plain_text_of(&keyword);
                if let Some(k) =
                    v.check(&field(&format!("keywords[{i}]")), short_text(&keyword, 50))
                    && !seen.iter().any(|s: &String| s.eq_ignore_ascii_case(&k))
                {
                    seen.push(k);
                }
            }
            seen
        }
    };
    StoredSeo {
        meta_title: text(v, &field("meta_title"), input.meta_title, 70),
        meta_description: text(v, &field("meta_description"), input.meta_description, 160),
        keywords,
        canonical_url: input
            .canonical_url
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| v.check(&field("canonical_url"), canonical_url(&s))),
        og_title: text(v, &field("og_title"), input.og_title, 100),
        og_description: text(v, &field("og_description"), input.og_description, 300),
        og_image: input
            .og_image
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| v.check(&field("og_image"), crate::articles::image_url(&s))),
        twitter_card: input.twitter_card.and_then(|s| {
            if TWITTER_CARDS.contains(&s.as_str()) {
                Some(s)
            } else {
                v.add(
                    &field("twitter_card"),
                    format!("must be one of {}", TWITTER_CARDS.join(", ")),
                );
                None
            }
        }),
        no_index: input.no_index.unwrap_or(false),
        no_follow: input.no_follow.unwrap_or(false),
        updated_at: None,
    }
}

/// Writes the article's SEO row (creating it on the first save).
pub async fn store(db: &impl GenericClient, article_id: Uuid, seo: &StoredSeo) -> ApiResult<()> {
    db.execute(
        &db.prepare_cached(
            "INSERT INTO content.article_seo (id, article_id, meta_title, meta_description, keywords,
                 canonical_url, og_title, og_description, og_image, twitter_card, no_index, no_follow)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (article_id) DO UPDATE SET
                 meta_title = excluded.meta_title, meta_description = excluded.meta_description,
                 keywords = excluded.keywords, canonical_url = excluded.canonical_url,
                 og_title = excluded.og_title, og_description = excluded.og_description,
                 og_image = excluded.og_image, twitter_card = excluded.twitter_card,
                 no_index = excluded.no_index, no_follow = excluded.no_follow, updated_at = now()",
        )
        .await?,
        &[
            &Uuid::now_v7(),
            &article_id,
            &seo.meta_title,
            &seo.meta_description,
            &seo.keywords,
            &seo.canonical_url,
            &seo.og_title,
            &seo.og_description,
            &seo.og_image,
            &seo.twitter_card,
            &seo.no_index,
            &seo.no_follow,
        ],
    )
    .await?;
    Ok(())
}

/// The SEO settings of an article the caller can see, with derived values filled in.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/seo", tag = "articles",
    params(("id" = Uuid, Path, description = "The article id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The settings; `derived` names the fields taken from the article", body = Seo),
        (status = 404, description = "No such article, or not visible to the caller"),
    )
)]
pub async fn get_seo(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
) -> ApiResult<(HeaderMap, Json<Seo>)> {
    let db = state.pool.get().await?;
    let row = read_visible(&db, &reader, id, &detail_columns()).await?;
    let (headers, Json(article)) = with_etag(detail(&row)?);
    Ok((headers, Json(article.seo)))
}

/// Replaces the SEO settings: one new article version.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}/seo", tag = "articles",
    params(
        ("id" = Uuid, Path, description = "The article id"),
        ("If-Match" = Option<String>, Header, description = "The article's ETag"),
    ),
    request_body = SeoInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings as saved", body = Seo),
        (status = 403, description = "Not the caller's to change"),
        (status = 404, description = "No such article, or not visible to the caller"),
        (status = 412, description = "If-Match names an older version"),
        (status = 422, description = "Invalid fields, each named"),
    )
)]
pub async fn put_seo(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<SeoInput>,
) -> ApiResult<(HeaderMap, Json<Seo>)> {
    reader.signed_in()?;
    let mut v = Validator::new();
    let seo = parse(&mut v, "", body);
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    lock_for_edit(&tx, &reader, id, if_match).await?;
    store(&tx, id, &seo).await?;
    versions::snapshot(&tx, id, reader.id(), "Changed the SEO settings").await?;
    let saved: ArticleDetail = load_detail(&tx, id).await?;
    let event = updated_event(&saved, reader.id(), &["seo"], json!({}));
    state.outbox.commit(tx, &[event]).await?;
    let (headers, Json(article)) = with_etag(saved);
    Ok((headers, Json(article.seo)))
}
