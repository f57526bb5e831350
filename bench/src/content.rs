//! Articles for the content benchmarks: what `seed --articles N` writes, and the words
//! `warm-content` searches for.
//!
//! Seeding is bulk SQL (`generate_series`), never the API: a batch of articles, their blocks
//! and tags is generated into temporary tables, then written with the derived fields
//! (`search`, `reading_time_minutes`, `excerpt`) computed by the very expressions of
//! `functions/content/src/versions.rs` (`SNAPSHOT_SQL`; a test below fails when they change)
//! and one `article_versions` row each, as a save through the API would leave them.
//!
//! - **Categories:** 50 in a small tree (10 topics with 4 subtopics each), no group rules.
//! - **Tags:** 300 (20 adjectives × 15 nouns), 0–4 per article, the first ones most used.
//! - **Articles:** a title of 3–8 words; 3–8 blocks: paragraphs of 60–200 words, a heading
//!   second, every 4th article a code block last. Words follow Zipf's law over a vocabulary of
//!   [`HEAD`] real words (the most common) and 27 000 made-up three-syllable words (the long
//!   tail), so a search word can be common or rare. 90 % are published and public (with
//!   `published_at` spread over three years), 5 % drafts, 2 % in review, 3 % published but
//!   private. Authors are directory users (`users.users`).
//! - Every 1 000th article (i ≡ 500) also says [`RARE_WORD`] once, so the rare search finds
//!   one article in a thousand at every size.
//! - The first [`FIXED_MATCHES`] articles say [`FIXED_WORD`] once, so that search answers the
//!   same pages at every size: its cost growth is the index's, not the answer's.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Context;
use lectern_shared::db::Pool;

/// A common search word: one of [`HEAD`] (rank ~170), in roughly a quarter of the articles.
pub const COMMON_WORD: &str = "database";
/// A rare search word: in one article of every thousand.
pub const RARE_WORD: &str = "quetzal";
/// A search word in the first [`FIXED_MATCHES`] articles only, whatever the size.
pub const FIXED_WORD: &str = "xylograph";
/// How many articles say [`FIXED_WORD`]: two pages of 20.
pub const FIXED_MATCHES: i64 = 40;
/// Articles per seeding batch (one transaction).
const BATCH: i64 = 1_000;

/// The head of the vocabulary, most common first (word `r` has probability ∝ 1/r).
pub const HEAD: &[&str] = &[
    "time",
    "data",
    "system",
    "code",
    "service",
    "user",
    "request",
    "team",
    "design",
    "test",
    "query",
    "model",
    "change",
    "release",
    "server",
    "value",
    "error",
    "process",
    "function",
    "memory",
    "network",
    "client",
    "build",
    "state",
    "event",
    "type",
    "cache",
    "index",
    "table",
    "page",
    "file",
    "record",
    "stream",
    "thread",
    "message",
    "queue",
    "report",
    "result",
    "version",
    "feature",
    "access",
    "security",
    "token",
    "session",
    "account",
    "policy",
    "schema",
    "field",
    "column",
    "row",
    "batch",
    "worker",
    "job",
    "task",
    "deploy",
    "cluster",
    "region",
    "storage",
    "disk",
    "latency",
    "throughput",
    "budget",
    "metric",
    "trace",
    "log",
    "alert",
    "incident",
    "review",
    "draft",
    "article",
    "editor",
    "author",
    "reader",
    "content",
    "block",
    "heading",
    "paragraph",
    "image",
    "link",
    "search",
    "ranking",
    "filter",
    "sort",
    "cursor",
    "limit",
    "offset",
    "pattern",
    "library",
    "framework",
    "language",
    "compiler",
    "runtime",
    "binary",
    "package",
    "module",
    "crate",
    "trait",
    "struct",
    "closure",
    "iterator",
    "future",
    "async",
    "lambda",
    "container",
    "kernel",
    "socket",
    "protocol",
    "header",
    "payload",
    "response",
    "router",
    "handler",
    "middleware",
    "endpoint",
    "gateway",
    "proxy",
    "balancer",
    "replica",
    "primary",
    "backup",
    "snapshot",
    "migration",
    "transaction",
    "lock",
    "deadlock",
    "isolation",
    "consistency",
    "durability",
    "availability",
    "partition",
    "shard",
    "tenant",
    "quota",
    "throttle",
    "retry",
    "timeout",
    "backoff",
    "circuit",
    "fallback",
    "monitor",
    "dashboard",
    "benchmark",
    "profile",
    "flame",
    "allocation",
    "garbage",
    "heap",
    "stack",
    "pointer",
    "reference",
    "lifetime",
    "borrow",
    "ownership",
    "generic",
    "macro",
    "plugin",
    "extension",
    "certificate",
    "encryption",
    "signature",
    "hash",
    "password",
    "identity",
    "permission",
    "role",
    "database",
    "config",
    "secret",
    "category",
    "tag",
    "workflow",
    "schedule",
    "publish",
    "archive",
    "history",
    "audit",
    "compliance",
    "privacy",
    "export",
    "import",
    "format",
    "parser",
    "encoder",
    "decoder",
    "buffer",
    "channel",
    "signal",
    "scheduler",
    "executor",
    "reactor",
    "poll",
    "wake",
    "spawn",
    "join",
    "select",
    "merge",
    "split",
    "chunk",
    "window",
    "frame",
    "pixel",
    "render",
    "layout",
    "style",
    "theme",
    "font",
    "color",
];

const SYLLABLES: &[&str] = &[
    "ka", "ke", "ki", "ko", "ku", "ma", "me", "mi", "mo", "mu", "na", "ne", "ni", "no", "nu", "ra",
    "re", "ri", "ro", "ru", "sa", "se", "si", "so", "su", "ta", "te", "ti", "to", "tu",
];

const ADJECTIVES: &[&str] = &[
    "async",
    "distributed",
    "embedded",
    "functional",
    "serverless",
    "realtime",
    "secure",
    "scalable",
    "typed",
    "concurrent",
    "reactive",
    "incremental",
    "immutable",
    "portable",
    "modular",
    "observable",
    "resilient",
    "declarative",
    "parallel",
    "persistent",
];

const NOUNS: &[&str] = &[
    "rust",
    "postgres",
    "lambda",
    "networking",
    "storage",
    "testing",
    "tooling",
    "design",
    "performance",
    "security",
    "search",
    "caching",
    "messaging",
    "deployment",
    "monitoring",
];

// The derived fields exactly as `versions.rs` (`SNAPSHOT_SQL`) computes them on a save: the
// same text, with the same aliases (`a` the article, `b` its blocks, `t` its tag names, `e`
// the excerpt and minutes). `$5` is `versions::WORDS_PER_MINUTE`, as there.

/// `b`: the body and the first paragraph of an article's blocks.
pub const BODY_COLUMNS: &str =
    "coalesce(string_agg(plain_text, E'\\n' ORDER BY sort_order, id), '') AS body,
           (array_agg(plain_text ORDER BY sort_order, id)
               FILTER (WHERE block_type = 'paragraph' AND plain_text <> ''))[1] AS first_paragraph";

/// `t`: its tag names.
pub const TAG_NAMES: &str = "coalesce(string_agg(t.name, ' '), '') AS names";

/// `e`: the excerpt and the reading time.
pub const DERIVED_COLUMNS: &str = "CASE
               WHEN a.excerpt_custom THEN a.excerpt
               WHEN char_length(b.first_paragraph) <= 300 THEN b.first_paragraph
               ELSE regexp_replace(left(b.first_paragraph, 299), '\\s+\\S*$', '') || '…'
           END AS excerpt,
           CASE WHEN btrim(b.body) = '' THEN 0
                ELSE greatest(1, ceil(array_length(regexp_split_to_array(btrim(b.body), '\\s+'), 1)
                                      / $5::int::numeric))::int
           END AS minutes";

/// The search document.
pub const SEARCH_VECTOR: &str = "setweight(to_tsvector('english', a.title || ' ' || t.names), 'A')
              || setweight(to_tsvector('english', coalesce(e.excerpt, '')), 'B')
              || setweight(to_tsvector('english', b.body), 'C')";

/// The snapshot of article alias `a` that `article_versions.content_snapshot` holds.
pub const SNAPSHOT_COLUMNS: &str = "jsonb_build_object(
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
                    WHERE at.article_id = a.id))";

fn sql_array(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]::text[]", quoted.join(","))
}

/// One Zipf-distributed word of the vocabulary, from `x` in 1..=V (the SQL of a word).
fn word_sql(x: &str) -> String {
    let head = HEAD.len();
    let s = SYLLABLES.len();
    format!(
        "CASE WHEN {x} <= {head} THEN (SELECT h FROM v)[{x}]
              ELSE (SELECT s FROM v)[1 + ({x} - {head} - 1) % {s}]
                || (SELECT s FROM v)[1 + (({x} - {head} - 1) / {s}) % {s}]
                || (SELECT s FROM v)[1 + ({x} - {head} - 1) / {ss}] END",
        ss = s * s
    )
}

fn vocabulary_size() -> usize {
    HEAD.len() + SYLLABLES.len().pow(3)
}

/// Categories and tags, once.
async fn seed_taxonomy(pool: &Pool) -> anyhow::Result<()> {
    let db = pool.get().await?;
    let (adjectives, nouns) = (sql_array(ADJECTIVES), sql_array(NOUNS));
    db.batch_execute(&format!(
        "INSERT INTO content.categories (id, name, slug, description, sort_order)
         SELECT gen_random_uuid(), 'Bench Topic ' || d, 'bench-topic-' || d, 'benchmark topic', d
         FROM generate_series(1, 10) d
         ON CONFLICT DO NOTHING;
         INSERT INTO content.categories (id, name, slug, parent_id, sort_order)
         SELECT gen_random_uuid(), 'Bench Topic ' || d || '.' || s, 'bench-topic-' || d || '-' || s, p.id, s
         FROM generate_series(1, 10) d CROSS JOIN generate_series(1, 4) s
         JOIN content.categories p ON p.slug = 'bench-topic-' || d
         ON CONFLICT DO NOTHING;
         INSERT INTO content.tags (id, name, slug)
         SELECT gen_random_uuid(), initcap(adj || ' ' || noun), adj || '-' || noun
         FROM unnest({adjectives}) WITH ORDINALITY AS x(adj, i),
              unnest({nouns}) WITH ORDINALITY AS y(noun, j)
         ON CONFLICT DO NOTHING;"
    ))
    .await
    .context("seeding categories and tags")?;
    Ok(())
}

/// The statements that add articles `from..=to` (one transaction).
fn batch_sql(from: i64, to: i64) -> String {
    let v = vocabulary_size();
    let zipf = format!("least({v}, floor(exp(random() * ln({v} + 1)))::int)");
    let word = word_sql("w.x");
    let head = HEAD.len();
    let paragraph = format!(
        "(SELECT upper(left(p, 1)) || substr(p, 2) || '.'
             || CASE WHEN a.i % 1000 = 500 AND j = 1 THEN ' The {RARE_WORD} said so.' ELSE '' END
             || CASE WHEN a.i <= {FIXED_MATCHES} AND j = 1 THEN ' A {FIXED_WORD} was found.' ELSE '' END
          FROM (SELECT string_agg({word}, ' ') AS p
                FROM (SELECT {zipf} AS x
                      FROM generate_series(1, 60 + ((2147483647 & hashint8(a.i * 8 + j)) % 141)::int)) w) pp)"
    );
    let heading = format!(
        "(SELECT initcap(string_agg((SELECT h FROM v)[1 + floor(random() * {head})::int], ' '))
          FROM generate_series(1, 2 + (j + a.i) % 4))"
    );
    let code = "(SELECT 'let ' || (SELECT h FROM v)[1 + a.i % 50] || ' = '
                 || initcap((SELECT h FROM v)[1 + (a.i / 50) % 100]) || '::open(&config)?;' || E'\\n'
                 || (SELECT h FROM v)[1 + a.i % 50] || '.run().await?;')";
    let seed = (from % 1_000_003) as f64 / 1_000_003.0;
    let wpm = lectern_content::versions::WORDS_PER_MINUTE;
    format!(
        "SELECT setseed({seed});
         CREATE TEMP TABLE v ON COMMIT DROP AS
         SELECT {h} AS h, {s} AS s;
         CREATE TEMP TABLE bench_a ON COMMIT DROP AS
         SELECT i, gen_random_uuid() AS id, (3 + (2147483647 & hashint8(i)) % 6)::int AS nblocks,
                CASE WHEN i % 100 < 90 THEN 'published' WHEN i % 100 < 95 THEN 'draft'
                     WHEN i % 100 < 97 THEN 'pending_review' ELSE 'published' END AS status,
                CASE WHEN i % 100 >= 97 THEN 'private' ELSE 'public' END AS visibility,
                cats[1 + (2147483647 & hashint8(i * 31)) % array_length(cats, 1)] AS category_id,
                coalesce(authors[1 + (2147483647 & hashint8(i * 17)) % array_length(authors, 1)],
                         gen_random_uuid()) AS author_id,
                date_trunc('second', now()) - make_interval(secs => ((2147483647 & hashint8(i * 7)) % 94608000)::double precision) AS at,
                false AS excerpt_custom, NULL::text AS excerpt,
                (SELECT initcap(string_agg((SELECT h FROM v)[1 + floor(random() * {head})::int], ' '))
                 FROM generate_series(1, 3 + (i % 6)::int)) AS title
         FROM generate_series({from}::bigint, {to}::bigint) i,
              (SELECT (SELECT array_agg(id ORDER BY slug) FROM content.categories WHERE slug LIKE 'bench-topic-%') AS cats,
                      (SELECT array_agg(id) FROM (SELECT id FROM users.users ORDER BY email LIMIT 500) u) AS authors) c;
         CREATE TEMP TABLE bench_b ON COMMIT DROP AS
         SELECT gen_random_uuid() AS id, a.id AS article_id, j AS sort_order, k.block_type,
                CASE k.block_type WHEN 'heading' THEN '{{\"level\": 2}}'::jsonb
                                  WHEN 'code' THEN '{{\"language\": \"rust\"}}'::jsonb
                                  ELSE '{{}}'::jsonb END AS metadata,
                CASE k.block_type WHEN 'heading' THEN {heading}
                                  WHEN 'code' THEN {code}
                                  ELSE {paragraph} END AS content
         FROM bench_a a CROSS JOIN LATERAL generate_series(1, a.nblocks) j
         CROSS JOIN LATERAL (SELECT CASE WHEN j = 2 THEN 'heading'
                                         WHEN j = a.nblocks AND a.i % 4 = 0 THEN 'code'
                                         ELSE 'paragraph' END AS block_type) k;
         CREATE TEMP TABLE bench_t ON COMMIT DROP AS
         SELECT DISTINCT a.id AS article_id,
                tags[least(array_length(tags, 1), floor(exp(random() * ln(array_length(tags, 1) + 1)))::int)] AS tag_id
         FROM bench_a a CROSS JOIN LATERAL generate_series(1, ((2147483647 & hashint8(a.i * 3)) % 5)::int) n,
              (SELECT array_agg(id ORDER BY slug) AS tags FROM content.tags) tg;
         INSERT INTO content.articles (id, title, slug, excerpt, status, visibility, category_id,
             author_id, published_at, reading_time_minutes, version, created_at, updated_at, search)
         SELECT a.id, a.title, 'bench-article-' || a.i, e.excerpt, a.status, a.visibility,
                a.category_id, a.author_id, CASE WHEN a.status = 'published' THEN a.at END,
                e.minutes, 1, a.at - interval '1 day', a.at,
                {search}
         FROM bench_a a
         JOIN (SELECT article_id, {body}
               FROM (SELECT article_id, id, sort_order, block_type,
                            CASE block_type WHEN 'code' THEN regexp_replace(btrim(content), '\\s+', ' ', 'g')
                                            ELSE content END AS plain_text
                     FROM bench_b) x
               GROUP BY article_id) b ON b.article_id = a.id
         LEFT JOIN (SELECT at.article_id, {names}
                    FROM bench_t at JOIN content.tags t ON t.id = at.tag_id GROUP BY at.article_id) tn
                ON tn.article_id = a.id
         CROSS JOIN LATERAL (SELECT coalesce(tn.names, '') AS names) t
         CROSS JOIN LATERAL (SELECT {derived}) e;
         INSERT INTO content.article_content_blocks (id, article_id, block_type, content, metadata, plain_text, sort_order)
         SELECT id, article_id, block_type, content, metadata,
                CASE block_type WHEN 'code' THEN regexp_replace(btrim(content), '\\s+', ' ', 'g') ELSE content END,
                sort_order
         FROM bench_b;
         INSERT INTO content.article_tags (id, article_id, tag_id)
         SELECT gen_random_uuid(), article_id, tag_id FROM bench_t;
         INSERT INTO content.article_versions
             (id, article_id, version_number, title, content_snapshot, changed_by, change_summary)
         SELECT gen_random_uuid(), a.id, a.version, a.title, {snapshot}, a.author_id, 'Created'
         FROM content.articles a JOIN bench_a n ON n.id = a.id;",
        h = sql_array(HEAD),
        s = sql_array(SYLLABLES),
        search = SEARCH_VECTOR,
        body = BODY_COLUMNS,
        names = TAG_NAMES,
        derived = DERIVED_COLUMNS.replace("$5", &wpm.to_string()),
        snapshot = SNAPSHOT_COLUMNS,
    )
}

/// Adds articles `bench-article-<i>` for i in 1..=target, in batches, with a progress bar.
pub async fn seed_articles(pool: &Pool, target: i64) -> anyhow::Result<()> {
    seed_taxonomy(pool).await?;
    let mut db = pool.get().await?;
    let existing: i64 = db
        .query_one(
            "SELECT count(*) FROM content.articles WHERE slug LIKE 'bench-article-%'",
            &[],
        )
        .await?
        .get(0);
    if existing >= target {
        println!("{existing} articles already seeded");
        return Ok(());
    }
    let started = Instant::now();
    let mut from = existing + 1;
    while from <= target {
        let to = (from + BATCH - 1).min(target);
        let tx = db.transaction().await?;
        tx.batch_execute(&batch_sql(from, to))
            .await
            .with_context(|| format!("seeding articles {from}..={to}"))?;
        tx.commit().await?;
        progress(to - existing, target - existing, started.elapsed());
        from = to + 1;
    }
    println!();
    let started = Instant::now();
    db.batch_execute(
        "VACUUM ANALYZE content.articles, content.article_content_blocks, content.article_tags,
                        content.tags, content.categories, content.article_versions",
    )
    .await?;
    println!(
        "vacuum + analyze of the content tables: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn progress(done: i64, total: i64, elapsed: Duration) {
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    print!(
        "\rseeding articles [{}{}] {done}/{total} ({rate:.0}/s)",
        "#".repeat(filled),
        " ".repeat(width as usize - filled)
    );
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_derived_fields_are_computed_as_a_save_computes_them() {
        // The source holds the statement as a Rust literal: `\\s` there is `\s` here.
        let source = include_str!("../../functions/content/src/versions.rs").replace("\\\\", "\\");
        for sql in [
            super::BODY_COLUMNS,
            super::TAG_NAMES,
            super::DERIVED_COLUMNS,
            super::SEARCH_VECTOR,
            super::SNAPSHOT_COLUMNS,
        ] {
            assert!(
                squash(&source).contains(&squash(sql)),
                "SNAPSHOT_SQL changed; copy it again into bench/src/content.rs:\n{sql}"
            );
        }
    }

    #[test]
    fn the_search_words_are_in_the_vocabulary_or_planted() {
        assert!(super::HEAD.contains(&super::COMMON_WORD));
        assert!(!super::HEAD.contains(&super::RARE_WORD));
        assert!(!super::HEAD.contains(&super::FIXED_WORD));
        assert_eq!(super::vocabulary_size(), super::HEAD.len() + 27_000);
    }
}
