//! An article as the API answers it, and the statements that read one.
//!
//! A full article (fields, blocks, SEO, tags, category) is read by one statement: the blocks,
//! SEO row, tags and category come back as JSON columns of the article's row, so a read is
//! one round trip whatever the article holds.

use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{ApiError, ApiResult, db::JsonText, extract::Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::blocks::rules::BlockType;

/// An article's fields, as lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Article {
    pub id: Uuid,
    pub title: String,
    pub slug: String,
    /// Written by an editor, or derived from the first paragraph while nobody has written one.
    pub excerpt: Option<String>,
    pub featured_image: Option<String>,
    /// draft, pending_review, approved, published or archived.
    pub status: String,
    /// public, private or restricted.
    pub visibility: String,
    pub category_id: Option<Uuid>,
    pub author_id: Uuid,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub scheduled_publish_at: Option<DateTime<Utc>>,
    pub view_count: i64,
    pub reading_time_minutes: i32,
    pub is_featured: bool,
    pub allow_comments: bool,
    /// Increments with every save; sent as the ETag, expected back in `If-Match`.
    pub version: i32,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// The article columns [`article`] reads, on alias `a`.
pub const ARTICLE_COLUMNS: &str = "a.id, a.title, a.slug, a.excerpt, a.featured_image, a.status, \
    a.visibility, a.category_id, a.author_id, a.published_at, a.scheduled_publish_at, a.view_count, \
    a.reading_time_minutes, a.is_featured, a.allow_comments, a.version, a.created_at, a.updated_at";

/// How many columns [`ARTICLE_COLUMNS`] has: what follows them starts here.
pub const ARTICLE_WIDTH: usize = 18;

/// Reads the article of a row selected with [`ARTICLE_COLUMNS`] first.
pub fn article(row: &tokio_postgres::Row) -> Article {
    article_ref(row).into_owned()
}

/// [`Article`] as its row holds it: every string borrowed from the row, none copied. A list
/// page writes its articles from these (20 of them are 120 strings fewer to copy and free);
/// its JSON is [`Article`]'s, field for field.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ArticleRef<'r> {
    pub id: Uuid,
    pub title: &'r str,
    pub slug: &'r str,
    pub excerpt: Option<&'r str>,
    pub featured_image: Option<&'r str>,
    pub status: &'r str,
    pub visibility: &'r str,
    pub category_id: Option<Uuid>,
    pub author_id: Uuid,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub scheduled_publish_at: Option<DateTime<Utc>>,
    pub view_count: i64,
    pub reading_time_minutes: i32,
    pub is_featured: bool,
    pub allow_comments: bool,
    pub version: i32,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// Reads the article of a row selected with [`ARTICLE_COLUMNS`] first, borrowing its strings.
pub fn article_ref(row: &tokio_postgres::Row) -> ArticleRef<'_> {
    ArticleRef {
        id: row.get(0),
        title: row.get(1),
        slug: row.get(2),
        excerpt: row.get(3),
        featured_image: row.get(4),
        status: row.get(5),
        visibility: row.get(6),
        category_id: row.get(7),
        author_id: row.get(8),
        published_at: row.get(9),
        scheduled_publish_at: row.get(10),
        view_count: row.get(11),
        reading_time_minutes: row.get(12),
        is_featured: row.get(13),
        allow_comments: row.get(14),
        version: row.get(15),
        created_at: row.get(16),
        updated_at: row.get(17),
    }
}

impl ArticleRef<'_> {
    /// The owned [`Article`], for answers that outlive the row or change it.
    pub fn into_owned(self) -> Article {
        Article {
            id: self.id,
            title: self.title.to_owned(),
            slug: self.slug.to_owned(),
            excerpt: self.excerpt.map(str::to_owned),
            featured_image: self.featured_image.map(str::to_owned),
            status: self.status.to_owned(),
            visibility: self.visibility.to_owned(),
            category_id: self.category_id,
            author_id: self.author_id,
            published_at: self.published_at,
            scheduled_publish_at: self.scheduled_publish_at,
            view_count: self.view_count,
            reading_time_minutes: self.reading_time_minutes,
            is_featured: self.is_featured,
            allow_comments: self.allow_comments,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// One content block.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Block {
    pub id: Uuid,
    pub block_type: BlockType,
    /// Sanitized rich text, code source or caption, by type.
    pub content: String,
    pub metadata: serde_json::Value,
    pub sort_order: i32,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// The blocks of article alias `a`, in order, as a JSON array. Times are written as the API
/// writes every time (RFC 3339 in UTC with `Z`, and only the sub-second digits there are, as
/// chrono does), because a read of the whole article passes this array through as it is
/// ([`ArticleView`]).
pub const BLOCKS_JSON: &str = "(SELECT coalesce(jsonb_agg(jsonb_build_object(
        'id', b.id, 'block_type', b.block_type, 'content', b.content, 'metadata', b.metadata,
        'sort_order', b.sort_order,
        'created_at', to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')
            || CASE WHEN to_char(b.created_at, 'US') = '000000' THEN ''
                    WHEN to_char(b.created_at, 'US') LIKE '%000' THEN '.' || to_char(b.created_at, 'MS')
                    ELSE '.' || to_char(b.created_at, 'US') END || 'Z',
        'updated_at', to_char(b.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')
            || CASE WHEN to_char(b.updated_at, 'US') = '000000' THEN ''
                    WHEN to_char(b.updated_at, 'US') LIKE '%000' THEN '.' || to_char(b.updated_at, 'MS')
                    ELSE '.' || to_char(b.updated_at, 'US') END || 'Z')
        ORDER BY b.sort_order, b.id), '[]'::jsonb)
    FROM content.article_content_blocks b WHERE b.article_id = a.id)";

/// A tag as an article shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagRef {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// The tags of article alias `a`, by name, as a JSON array.
pub const TAGS_JSON: &str = "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'slug', t.slug)
        ORDER BY lower(t.name), t.id), '[]'::jsonb)
    FROM content.article_tags at JOIN content.tags t ON t.id = at.tag_id WHERE at.article_id = a.id)";

/// The stored SEO row of article alias `a` (`null` when none was ever saved).
pub const SEO_JSON: &str = "(SELECT jsonb_build_object(
        'meta_title', s.meta_title, 'meta_description', s.meta_description, 'keywords', s.keywords,
        'canonical_url', s.canonical_url, 'og_title', s.og_title, 'og_description', s.og_description,
        'og_image', s.og_image, 'twitter_card', s.twitter_card, 'no_index', s.no_index,
        'no_follow', s.no_follow, 'updated_at', s.updated_at)
    FROM content.article_seo s WHERE s.article_id = a.id)";

/// The category of article alias `a` (`null` when uncategorised).
pub const CATEGORY_JSON: &str =
    "(SELECT jsonb_build_object('id', c.id, 'name', c.name, 'slug', c.slug)
    FROM content.categories c WHERE c.id = a.category_id)";

/// SEO settings as stored; a field left empty is derived from the article (see [`Seo`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct StoredSeo {
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub canonical_url: Option<String>,
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    pub og_image: Option<String>,
    pub twitter_card: Option<String>,
    #[serde(default)]
    pub no_index: bool,
    #[serde(default)]
    pub no_follow: bool,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The SEO settings a page renders: what was set, and for what was left empty a value
/// derived from the article, listed in `derived`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Seo {
    pub meta_title: String,
    pub meta_description: Option<String>,
    pub keywords: Vec<String>,
    pub canonical_url: Option<String>,
    pub og_title: String,
    pub og_description: Option<String>,
    pub og_image: Option<String>,
    /// summary, summary_large_image, app or player.
    pub twitter_card: String,
    pub no_index: bool,
    pub no_follow: bool,
    /// The fields above that were not set and come from the article.
    pub derived: Vec<&'static str>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Cuts `text` to at most `max` characters, at a word boundary when there is one.
pub fn shorten(text: &str, max: usize) -> String {
    if text.char_indices().nth(max).is_none() {
        return text.to_string();
    }
    let end = text
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(text.len(), |(at, _)| at);
    let mut cut = &text[..end];
    if let Some(space) = cut.rfind(' ')
        && space > max / 2
    {
        cut = &cut[..space];
    }
    let cut = cut.trim_end();
    let mut short = String::with_capacity(cut.len() + '…'.len_utf8());
    short.push_str(cut);
    short.push('…');
    short
}

impl Seo {
    pub fn effective(stored: StoredSeo, article: &ArticleRef<'_>) -> Self {
        let mut derived = Vec::new();
        let mut or_derive =
            |field: &'static str, value: Option<String>, default: Option<String>| {
                value.or_else(|| {
                    if default.is_some() {
                        derived.push(field);
                    }
                    default
                })
            };
        let meta_title = or_derive(
            "meta_title",
            stored.meta_title,
            Some(shorten(article.title, 70)),
        )
        .unwrap_or_default();
        let meta_description = or_derive(
            "meta_description",
            stored.meta_description,
            article.excerpt.map(|e| shorten(e, 160)),
        );
        let og_title =
            or_derive("og_title", stored.og_title, Some(meta_title.clone())).unwrap_or_default();
        let og_description = or_derive(
            "og_description",
            stored.og_description,
            meta_description.clone(),
        );
        let og_image = or_derive(
            "og_image",
            stored.og_image,
            article.featured_image.map(str::to_owned),
        );
        let twitter_card = or_derive(
            "twitter_card",
            stored.twitter_card,
            Some(
                if og_image.is_some() {
                    "summary_large_image"
                } else {
                    "summary"
                }
                .into(),
            ),
        )
        .unwrap_or_default();
        Self {
            meta_title,
            meta_description,
            keywords: stored.keywords,
            canonical_url: stored.canonical_url,
            og_title,
            og_description,
            og_image,
            twitter_card,
            no_index: stored.no_index,
            no_follow: stored.no_follow,
            derived,
            updated_at: stored.updated_at,
        }
    }
}

/// A category as an article shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CategoryRef {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// The whole article: fields, blocks in order, SEO, tags and category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArticleDetail {
    #[serde(flatten)]
    pub article: Article,
    pub category: Option<CategoryRef>,
    pub blocks: Vec<Block>,
    pub seo: Seo,
    pub tags: Vec<TagRef>,
}

/// [`ArticleDetail`] as the reads answer it, borrowed from its row: the article's strings are
/// the row's, and the blocks, the largest part of an article and of the cost of reading one,
/// are the text PostgreSQL built ([`BLOCKS_JSON`]), appended to the answer as they are
/// ([`ArticleView::into_response`]) instead of being decoded, checked and encoded again. The
/// same JSON document as [`ArticleDetail`].
#[derive(Debug, Serialize)]
pub struct ArticleView<'r> {
    #[serde(flatten)]
    pub article: ArticleRef<'r>,
    pub category: Option<CategoryRef>,
    pub seo: Seo,
    pub tags: Vec<TagRef>,
    #[serde(skip)]
    pub blocks: JsonText<'r>,
}

impl ArticleView<'_> {
    /// `200` with the article, its version as the ETag.
    pub fn into_response(self) -> axum::response::Response {
        let blocks = self.blocks;
        (
            crate::articles::etag(self.article.version),
            Json(self).with_member("blocks", blocks),
        )
            .into_response()
    }
}

/// The select list of a full article on alias `a`: [`ARTICLE_COLUMNS`], then blocks, SEO,
/// tags and category as JSON.
pub fn detail_columns() -> String {
    format!("{ARTICLE_COLUMNS}, {BLOCKS_JSON}, {SEO_JSON}, {TAGS_JSON}, {CATEGORY_JSON}")
}

/// A JSON column decoded straight into its type (no `serde_json::Value` in between).
fn json_column<'r, T: serde::Deserialize<'r>>(
    row: &'r tokio_postgres::Row,
    index: usize,
) -> ApiResult<Option<T>> {
    row.try_get::<_, Option<tokio_postgres::types::Json<T>>>(index)
        .map(|value| value.map(|json| json.0))
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading an article column: {err}")))
}

/// The parts of a row selected with [`detail_columns`] besides its blocks: the article, the
/// SEO a page renders, its tags and its category.
type Parts<'r> = (ArticleRef<'r>, Seo, Vec<TagRef>, Option<CategoryRef>);

fn parts(row: &tokio_postgres::Row) -> ApiResult<Parts<'_>> {
    let article = article_ref(row);
    let w = ARTICLE_WIDTH;
    let stored: StoredSeo = json_column(row, w + 1)?.unwrap_or_default();
    let seo = Seo::effective(stored, &article);
    let tags = json_column(row, w + 2)?.unwrap_or_default();
    Ok((article, seo, tags, json_column(row, w + 3)?))
}

/// Reads a row selected with [`detail_columns`].
pub fn detail(row: &tokio_postgres::Row) -> ApiResult<ArticleDetail> {
    let (article, seo, tags, category) = parts(row)?;
    Ok(ArticleDetail {
        article: article.into_owned(),
        category,
        blocks: json_column(row, ARTICLE_WIDTH)?.unwrap_or_default(),
        seo,
        tags,
    })
}

/// Reads a row selected with [`detail_columns`], for answering as it is.
pub fn view(row: &tokio_postgres::Row) -> ApiResult<ArticleView<'_>> {
    let (article, seo, tags, category) = parts(row)?;
    let blocks = row
        .try_get::<_, Option<JsonText>>(ARTICLE_WIDTH)
        .map_err(|err| ApiError::internal(anyhow::anyhow!("reading an article's blocks: {err}")))?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("an article row without its blocks array"))
        })?;
    Ok(ArticleView {
        article,
        category,
        seo,
        tags,
        blocks,
    })
}

/// The full article `id`, whoever asks: callers check access first.
pub async fn load_detail(db: &impl GenericClient, id: Uuid) -> ApiResult<ArticleDetail> {
    let sql = format!(
        "SELECT {} FROM content.articles a WHERE a.id = $1",
        detail_columns()
    );
    let row = db
        .query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .ok_or(ApiError::NotFound)?;
    detail(&row)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn shorten_cuts_at_a_word_boundary_and_counts_characters_not_bytes() {
        assert_eq!(shorten("Clocks and time", 15), "Clocks and time");
        assert_eq!(shorten("", 0), "");
        assert_eq!(shorten("Clocks and time", 14), "Clocks and…");
        // No space past the middle: cut at max - 1 characters.
        assert_eq!(shorten("Lamportclocks", 8), "Lamport…");
        assert_eq!(shorten("Zeit für Uhren überall", 12), "Zeit für…");
        assert_eq!(shorten("ééééééééé", 5), "éééé…");
        assert_eq!(shorten("ab   cdefgh", 6), "ab…");
        assert_eq!(shorten("abcdef", 0), "…");
    }

    #[test]
    fn an_article_borrowed_from_its_row_is_written_as_the_owned_one() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).unwrap();
        let full = ArticleRef {
            id: Uuid::from_u128(1),
            title: "Clocks \"and\" <time>",
            slug: "clocks-and-time",
            excerpt: Some("Lamport's clocks, explained."),
            featured_image: Some("https://cdn.example/c.png"),
            status: "published",
            visibility: "public",
            category_id: Some(Uuid::from_u128(2)),
            author_id: Uuid::from_u128(3),
            published_at: Some(at),
            scheduled_publish_at: None,
            view_count: 41,
            reading_time_minutes: 7,
            is_featured: true,
            allow_comments: false,
            version: 3,
            created_at: at,
            updated_at: at + chrono::Duration::milliseconds(250),
        };
        let bare = ArticleRef {
            excerpt: None,
            featured_image: None,
            category_id: None,
            published_at: None,
            scheduled_publish_at: Some(at),
            ..full
        };
        for borrowed in [full, bare] {
            // The same text, so the same fields in the same order with the same values.
            assert_eq!(
                serde_json::to_string(&borrowed).unwrap(),
                serde_json::to_string(&borrowed.into_owned()).unwrap()
            );
        }
        let written = serde_json::to_value(full).unwrap();
        assert_eq!(written["title"], "Clocks \"and\" <time>");
        assert_eq!(written["updated_at"], "2026-12-06T09:30:00.250Z");
        assert_eq!(written.as_object().unwrap().len(), ARTICLE_WIDTH);
    }
}
