-- The content service: categories (a tree, optionally restricted to user groups), articles
-- made of typed content blocks, their SEO settings and tags, and every saved version.
-- Groups and users belong to the users service: `group_id`, `author_id`, `created_by` and
-- `changed_by` are plain ids kept consistent by events (see `groups` below).

-- The groups the users service has announced (group.created / updated / deleted), so an
-- access rule can only name a group that exists.
CREATE TABLE content.groups (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE content.categories (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CONSTRAINT categories_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    slug             text NOT NULL CONSTRAINT categories_slug_key UNIQUE
                     CONSTRAINT categories_slug_format
                     CHECK (char_length(slug) <= 120 AND slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    description      text CONSTRAINT categories_description_length CHECK (char_length(description) <= 2000),
    icon             text CONSTRAINT categories_icon_length CHECK (char_length(icon) <= 100),
    color            text CONSTRAINT categories_color_format CHECK (color ~ '^#[0-9a-f]{6}$'),
    parent_id        uuid REFERENCES content.categories (id),
    sort_order       integer NOT NULL DEFAULT 0,
    is_active        boolean NOT NULL DEFAULT true,
    meta_title       text CONSTRAINT categories_meta_title_length CHECK (char_length(meta_title) <= 70),
    meta_description text CONSTRAINT categories_meta_description_length CHECK (char_length(meta_description) <= 160),
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The category whose group rules apply here: this one when it has rules, otherwise its
    -- nearest ancestor that has some, NULL when nothing on its path is restricted. A
    -- restriction covers the whole subtree. Kept by content.refresh_category_gates().
    gate_id          uuid,
    CONSTRAINT categories_not_own_parent CHECK (parent_id <> id)
);
CREATE INDEX categories_parent_idx ON content.categories (parent_id, sort_order, name);

-- A category with at least one rule is restricted: its articles are visible to members of a
-- group with can_view (or can_edit) and editable by members of a group with can_edit.
CREATE TABLE content.category_group_access (
    id          uuid PRIMARY KEY,
    category_id uuid NOT NULL REFERENCES content.categories (id) ON DELETE CASCADE,
    group_id    uuid NOT NULL,
    can_view    boolean NOT NULL DEFAULT true,
    can_edit    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT category_group_access_key UNIQUE (category_id, group_id),
    CONSTRAINT category_group_access_grants_something CHECK (can_view OR can_edit)
);
CREATE INDEX category_group_access_group_idx ON content.category_group_access (group_id);

-- Recomputes every category's gate_id from the rules and the tree; called in the transaction
-- of every change of either (categories are few: the whole tree is walked).
CREATE FUNCTION content.refresh_category_gates() RETURNS void LANGUAGE sql AS $$
    WITH RECURSIVE walk AS (
        SELECT c.id,
               CASE WHEN EXISTS (SELECT 1 FROM content.category_group_access r WHERE r.category_id = c.id)
                    THEN c.id END AS gate,
               1 AS depth
        FROM content.categories c WHERE c.parent_id IS NULL
      UNION ALL
        SELECT c.id,
               CASE WHEN EXISTS (SELECT 1 FROM content.category_group_access r WHERE r.category_id = c.id)
                    THEN c.id ELSE walk.gate END,
               walk.depth + 1
        FROM content.categories c JOIN walk ON c.parent_id = walk.id
        WHERE walk.depth < 64
    )
    UPDATE content.categories c SET gate_id = walk.gate
    FROM walk WHERE c.id = walk.id AND c.gate_id IS DISTINCT FROM walk.gate;
$$;

CREATE TABLE content.articles (
    id                   uuid PRIMARY KEY,
    title                text NOT NULL CONSTRAINT articles_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    slug                 text NOT NULL CONSTRAINT articles_slug_key UNIQUE
                         CONSTRAINT articles_slug_format
                         CHECK (char_length(slug) <= 120 AND slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    excerpt              text CONSTRAINT articles_excerpt_length CHECK (char_length(excerpt) <= 500),
    -- Whether `excerpt` was written by someone; otherwise every save derives it from the
    -- first paragraph.
    excerpt_custom       boolean NOT NULL DEFAULT false,
    featured_image       text CONSTRAINT articles_featured_image_length CHECK (char_length(featured_image) <= 2048),
    status               text NOT NULL DEFAULT 'draft' CONSTRAINT articles_status_check
                         CHECK (status IN ('draft', 'pending_review', 'approved', 'published', 'archived')),
    visibility           text NOT NULL DEFAULT 'public' CONSTRAINT articles_visibility_check
                         CHECK (visibility IN ('public', 'private', 'restricted')),
    category_id          uuid REFERENCES content.categories (id),
    author_id            uuid NOT NULL,
    published_at         timestamptz,
    scheduled_publish_at timestamptz,
    view_count           bigint NOT NULL DEFAULT 0,
    reading_time_minutes integer NOT NULL DEFAULT 0,
    is_featured          boolean NOT NULL DEFAULT false,
    allow_comments       boolean NOT NULL DEFAULT true,
    version              integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- Title and tags (A), excerpt (B) and block text (C), rebuilt by every save.
    search               tsvector NOT NULL DEFAULT ''::tsvector,
    CONSTRAINT articles_published_has_time CHECK (status <> 'published' OR published_at IS NOT NULL),
    CONSTRAINT articles_schedule_only_approved CHECK (scheduled_publish_at IS NULL OR status = 'approved')
);
-- The default order: newest publication first, never-published articles last.
CREATE INDEX articles_published_idx ON content.articles ((coalesce(published_at, '-infinity'::timestamptz)) DESC, id DESC);
CREATE INDEX articles_updated_idx ON content.articles (updated_at DESC, id DESC);
CREATE INDEX articles_title_idx ON content.articles (lower(title), id);
CREATE INDEX articles_views_idx ON content.articles (view_count DESC, id DESC);
CREATE INDEX articles_category_idx ON content.articles (category_id);
CREATE INDEX articles_author_idx ON content.articles (author_id, updated_at DESC);
CREATE INDEX articles_due_idx ON content.articles (scheduled_publish_at) WHERE scheduled_publish_at IS NOT NULL;
CREATE INDEX articles_search_idx ON content.articles USING gin (search);

CREATE TABLE content.article_content_blocks (
    id          uuid PRIMARY KEY,
    article_id  uuid NOT NULL REFERENCES content.articles (id) ON DELETE CASCADE,
    block_type  text NOT NULL CONSTRAINT article_content_blocks_type_check
                CHECK (block_type IN ('paragraph', 'heading', 'code', 'image', 'quote', 'list',
                                      'divider', 'callout', 'video', 'embed')),
    -- Sanitized rich text (paragraph, heading, quote, callout), source (code) or caption.
    content     text NOT NULL DEFAULT '' CONSTRAINT article_content_blocks_content_length CHECK (char_length(content) <= 100000),
    metadata    jsonb NOT NULL DEFAULT '{}' CONSTRAINT article_content_blocks_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    -- The block's readable words, for search, reading time and the default excerpt.
    plain_text  text NOT NULL DEFAULT '',
    sort_order  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_content_blocks_order_idx ON content.article_content_blocks (article_id, sort_order);

CREATE TABLE content.article_seo (
    id               uuid PRIMARY KEY,
    article_id       uuid NOT NULL CONSTRAINT article_seo_article_key UNIQUE
                     REFERENCES content.articles (id) ON DELETE CASCADE,
    meta_title       text CONSTRAINT article_seo_meta_title_length CHECK (char_length(meta_title) <= 70),
    meta_description text CONSTRAINT article_seo_meta_description_length CHECK (char_length(meta_description) <= 160),
    keywords         text[] NOT NULL DEFAULT '{}',
    canonical_url    text CONSTRAINT article_seo_canonical_url_length CHECK (char_length(canonical_url) <= 2048),
    og_title         text CONSTRAINT article_seo_og_title_length CHECK (char_length(og_title) <= 100),
    og_description   text CONSTRAINT article_seo_og_description_length CHECK (char_length(og_description) <= 300),
    og_image         text CONSTRAINT article_seo_og_image_length CHECK (char_length(og_image) <= 2048),
    twitter_card     text CONSTRAINT article_seo_twitter_card_check
                     CHECK (twitter_card IN ('summary', 'summary_large_image', 'app', 'player')),
    no_index         boolean NOT NULL DEFAULT false,
    no_follow        boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE content.tags (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CONSTRAINT tags_name_length CHECK (char_length(name) BETWEEN 1 AND 50),
    slug       text NOT NULL CONSTRAINT tags_slug_key UNIQUE
               CONSTRAINT tags_slug_format CHECK (char_length(slug) <= 60 AND slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_name_key ON content.tags (lower(name));

CREATE TABLE content.article_tags (
    id         uuid PRIMARY KEY,
    article_id uuid NOT NULL REFERENCES content.articles (id) ON DELETE CASCADE,
    tag_id     uuid NOT NULL REFERENCES content.tags (id) ON DELETE CASCADE,
    CONSTRAINT article_tags_key UNIQUE (article_id, tag_id)
);
CREATE INDEX article_tags_tag_idx ON content.article_tags (tag_id, article_id);

-- Every save of an article: the whole article (fields, blocks, SEO, tags) as it stood.
CREATE TABLE content.article_versions (
    id               uuid PRIMARY KEY,
    article_id       uuid NOT NULL REFERENCES content.articles (id) ON DELETE CASCADE,
    version_number   integer NOT NULL,
    title            text NOT NULL,
    content_snapshot jsonb NOT NULL,
    changed_by       uuid,
    change_summary   text CONSTRAINT article_versions_summary_length CHECK (char_length(change_summary) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT article_versions_key UNIQUE (article_id, version_number)
);
