//! What a content block may contain, and how a block a client sends becomes one we store.
//!
//! Every string we keep in `content` or `metadata` is either sanitized HTML or markup-free
//! text that is already safe to insert into HTML (`&`, `<`, `>` escaped), so a renderer may use
//! every one of them as HTML — except a code block's source, which is kept exactly as typed
//! and must be rendered as text. URLs are parsed with the `url` crate and judged by their
//! scheme and host, never by their spelling, because the spelling is what attackers vary.
//!
//! Pure code: no I/O, so the whole policy is covered by the unit tests at the bottom.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    str::FromStr,
    sync::LazyLock,
};

use lectern_shared::validate::Validator;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use utoipa::ToSchema;

/// At most this many blocks per article.
pub const MAX_BLOCKS: usize = 500;

/// Longest HTML a paragraph, quote or callout may send, and longest code source. Measured on
/// what the client sent, so the limit also bounds the work the sanitizer does.
const MAX_BODY_CHARS: usize = 100_000;
/// A heading is a line, not a body; this still leaves room for inline markup.
const MAX_HEADING_CHARS: usize = 1_000;
const MAX_ITEM_CHARS: usize = 5_000;
const MAX_ITEMS: usize = 1_000;
const MAX_HIGHLIGHTS: usize = 1_000;
const MAX_URL_CHARS: usize = 2_048;
const MAX_ALT_CHARS: usize = 300;
const MAX_CAPTION_CHARS: usize = 500;
const MAX_CITATION_CHARS: usize = 300;
const MAX_CALLOUT_TITLE_CHARS: usize = 200;
const MAX_FILENAME_CHARS: usize = 255;
/// Longest metadata key echoed back in an error's field name.
const MAX_KEY_IN_ERROR: usize = 64;

/// A block as a client sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockInput {
    /// One of `paragraph`, `heading`, `code`, `image`, `quote`, `list`, `divider`, `callout`,
    /// `video`, `embed`.
    pub block_type: String,
    /// HTML for paragraph, heading, quote and callout; source text for code; absent or empty
    /// for the other types.
    #[serde(default)]
    pub content: Option<String>,
    /// The type's settings as a JSON object (a heading's `level`, an image's `src`, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The kinds of block an article is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockType {
    Paragraph,
    Heading,
    Code,
    Image,
    Quote,
    List,
    Divider,
    Callout,
    Video,
    Embed,
}

impl BlockType {
    /// Every type, in the order error messages list them.
    pub const ALL: [BlockType; 10] = [
        Self::Paragraph,
        Self::Heading,
        Self::Code,
        Self::Image,
        Self::Quote,
        Self::List,
        Self::Divider,
        Self::Callout,
        Self::Video,
        Self::Embed,
    ];

    /// The name clients send and the database stores (the same as the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paragraph => "paragraph",
            Self::Heading => "heading",
            Self::Code => "code",
            Self::Image => "image",
            Self::Quote => "quote",
            Self::List => "list",
            Self::Divider => "divider",
            Self::Callout => "callout",
            Self::Video => "video",
            Self::Embed => "embed",
        }
    }

    /// The metadata keys a client may send for this type; anything else is refused rather
    /// than dropped, so a typo (`colour`, `lvl`) is reported instead of silently lost.
    fn known_keys(self) -> &'static [&'static str] {
        match self {
            Self::Paragraph => &[],
            Self::Heading => &["level", "anchor"],
            Self::Code => &["language", "filename", "lineNumbers", "highlight"],
            Self::Image => &["src", "alt", "caption", "width", "height", "decorative"],
            Self::Quote => &["citation", "source_url"],
            Self::List => &["ordered", "items", "start"],
            Self::Divider => &["style"],
            Self::Callout => &["type", "icon", "title"],
            Self::Video => &["url", "caption", "start"],
            Self::Embed => &["url", "caption", "height"],
        }
    }

    /// "a heading block", "an image block".
    fn a_block(self) -> String {
        let article = match self {
            Self::Image | Self::Embed => "an",
            _ => "a",
        };
        format!("{article} {} block", self.as_str())
    }
}

impl fmt::Display for BlockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BlockType {
    type Err = String;

    /// Ignores surrounding whitespace and case; the error lists the allowed types, ready to
    /// be a validation message.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

/// A block ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanBlock {
    pub block_type: BlockType,
    /// Sanitized HTML for paragraph/heading/quote/callout; raw source text for code (never
    /// HTML-interpreted, stored as given); the caption for image/video/embed (markup removed,
    /// HTML-escaped, the same string as `metadata.caption`, "" without one); "" for list and
    /// divider.
    pub content: String,
    /// Normalised metadata: only the known keys, with their validated values (always a JSON
    /// object). Text values are escaped like `content`; derived keys (`provider`) are added.
    pub metadata: Value,
    /// The readable words of the block (tags stripped, entities decoded, whitespace
    /// collapsed): used for full-text search, reading time and the default excerpt. Code
    /// blocks contribute their source; list blocks their items joined by newlines; image its
    /// alt and caption, quote its text and citation, callout its title and text (each joined
    /// by a newline); video and embed their caption; divider "". Entities are decoded, so this
    /// is text, never HTML: escape it wherever it is rendered.
    pub plain_text: String,
}

/// Words in a text (whitespace-separated), for reading time.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Elements whose contents are dropped along with the tag: for these the text inside is code
/// or a fallback, never words the author meant to show.
const DROP_WITH_CONTENT: [&str; 9] = [
    "script", "style", "iframe", "noscript", "template", "textarea", "object", "title", "xmp",
];

/// A sanitizer that keeps `tags` (with no attributes, except `href` on `a`) and nothing else.
///
/// Relative links (`/articles/x`, `#section`) pass: they cannot carry a scheme, and articles
/// link to each other. `rel` is forced on every link so that nothing we publish passes on
/// our reputation or a `window.opener` handle.
fn sanitizer(tags: &[&'static str]) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::empty();
    let mut attributes = HashMap::new();
    if tags.contains(&"a") {
        attributes.insert("a", HashSet::from(["href"]));
    }
    builder
        .tags(tags.iter().copied().collect())
        .clean_content_tags(DROP_WITH_CONTENT.into_iter().collect())
        .tag_attributes(attributes)
        .tag_attribute_values(HashMap::new())
        .generic_attributes(HashSet::new())
        .allowed_classes(HashMap::new())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true)
        .id_prefix(None);
    builder
}

/// Paragraphs, quotes, callouts and list items: inline formatting and links. Lists take
/// links too, because a list of links is one of the commonest things an article contains.
static RICH: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    sanitizer(&[
        "a", "b", "strong", "i", "em", "u", "s", "code", "mark", "sub", "sup", "br", "span",
    ])
});

/// Headings: inline formatting only. No links, because the table of contents turns a
/// heading into a link and a link cannot nest in a link; no `br`, because a heading is one
/// line in that table.
static INLINE: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    sanitizer(&[
        "b", "strong", "i", "em", "u", "s", "code", "mark", "sub", "sup", "span",
    ])
});

/// Captions, titles, alt texts and citations: no markup at all.
static PLAIN: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| sanitizer(&[]));

/// `raw` through `builder`, trimmed. NUL never reaches storage (Postgres refuses it in text
/// and jsonb), whatever the parser does with it.
fn sanitize(builder: &ammonia::Builder<'static>, raw: &str) -> String {
    builder
        .clean(raw)
        .to_string()
        .replace('\0', "")
        .trim()
        .to_string()
}

/// The text of HTML that came out of our sanitizers: tags dropped (`br` becomes a space),
/// the entities html5ever writes (and numeric ones) decoded, whitespace collapsed. Not a
/// general HTML parser: it relies on text never holding a raw `<` and on attribute values
/// being double-quoted, both of which html5ever's serializer guarantees.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('<') {
            let end = tag_end(rest);
            if is_br(&rest[..end]) {
                text.push(' ');
            }
            rest = &rest[end..];
        } else {
            match decode_entity(rest) {
                Some((c, len)) => {
                    text.push(c);
                    rest = &rest[len..];
                }
                None => {
                    text.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    text.push_str(rest);
    collapse_whitespace(&text)
}

/// The length of the tag `s` starts with, `>` included; a `>` inside a quoted attribute value
/// does not end it.
fn tag_end(s: &str) -> usize {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn is_br(tag: &str) -> bool {
    let name = tag
        .trim_start_matches('<')
        .split(|c: char| c == '>' || c == '/' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    name.eq_ignore_ascii_case("br")
}

/// The character of the entity `s` starts with (`&amp;`, `&#39;`, `&#x27;`) and the entity's
/// length; None for anything else, which then stays as typed.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let (semi, _) = s.char_indices().take(12).find(|&(_, c)| c == ';')?;
    let name = &s[1..semi];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            // What browsers do with NUL and with numbers that are not characters.
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{fffd}')
        }
    };
    Some((c, semi + 1))
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text without markup: what is stored (escaped, safe in HTML) and what is read.
struct Plain {
    html: String,
    text: String,
}

/// A one-line text field: control characters refused, whitespace collapsed, all tags
/// stripped, at most `max` readable characters (counted after decoding, so `&amp;` is one).
/// May come out empty; each caller decides whether that is allowed.
fn plain(value: &Value, max: usize) -> Result<Plain, String> {
    let raw = value.as_str().ok_or("must be a string")?;
    if raw.chars().count() > max * 8 {
        // Far beyond anything that could shrink to `max`; spare the sanitizer.
        return Err(format!("must be at most {max} characters"));
    }
    if raw.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err("must not contain control characters".into());
    }
    let html = sanitize(&PLAIN, &collapse_whitespace(raw));
    let text = html_to_text(&html);
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(Plain { html, text })
}

/// A JSON integer from `min` to `max` (`2.0` and `"2"` are not integers).
fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    value
        .as_i64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            if max == i64::MAX {
                format!("must be a whole number of at least {min}")
            } else {
                format!("must be a whole number from {min} to {max}")
            }
        })
}

fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "must be true or false".into())
}

/// `value` as a string that is one of `allowed`.
fn one_of(value: &Value, allowed: &[&'static str]) -> Result<&'static str, String> {
    value
        .as_str()
        .and_then(|s| allowed.iter().copied().find(|a| *a == s.trim()))
        .ok_or_else(|| format!("must be one of {}", allowed.join(", ")))
}

/// `^[a-z0-9][a-z0-9-]{0,99}$`: the fragment a heading links as, usable unescaped in a URL.
fn anchor(value: &Value) -> Result<String, String> {
    let anchor = value.as_str().ok_or("must be a string")?.trim();
    let valid = (1..=100).contains(&anchor.len())
        && anchor.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && anchor
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(anchor.to_string())
    } else {
        Err("must be 1 to 100 lowercase letters, digits and dashes, starting with a letter or digit, like getting-started".into())
    }
}

/// `^[a-z0-9][a-z0-9+#.-]{0,39}$` once lowercased: the name highlighters know it by
/// (`rust`, `c++`, `c#`, `objective-c`, `vue.js`).
fn language(value: &Value) -> Result<String, String> {
    let language = value
        .as_str()
        .ok_or("must be a string")?
        .trim()
        .to_lowercase();
    let valid = (1..=40).contains(&language.len())
        && language.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && language
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+#.-".contains(c));
    if valid {
        Ok(language)
    } else {
        Err(
            "must be a language name of up to 40 letters, digits and + # . -, like rust or c++"
                .into(),
        )
    }
}

/// A file name shown above a code block. Directories are fine (`src/main.rs`) but not ones
/// that climb (`../`), and nothing that could open markup.
fn filename(value: &Value) -> Result<String, String> {
    let name = value.as_str().ok_or("must be a string")?.trim();
    if name.chars().count() > MAX_FILENAME_CHARS {
        return Err(format!("must be at most {MAX_FILENAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if name.contains(['<', '>', '"']) {
        return Err("must not contain <, > or \"".into());
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err("must not contain .. as a directory".into());
    }
    Ok(name.to_string())
}

/// `^[a-z0-9-]{1,40}$`: an icon name from the front end's set.
fn icon(value: &Value) -> Result<String, String> {
    let icon = value.as_str().ok_or("must be a string")?.trim();
    let valid = (1..=40).contains(&icon.len())
        && icon
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(icon.to_string())
    } else {
        Err("must be 1 to 40 lowercase letters, digits and dashes, like alert-circle".into())
    }
}

/// An absolute URL with one of `schemes`, a host, no user name or password (which exist in
/// links mostly to make `https://trusted.com@evil.com` look like it goes to trusted.com) and
/// no explicit port. Returned in the `url` crate's normal form: host lowercased, spaces and
/// quotes percent-encoded.
fn absolute_url(value: &Value, schemes: &[&str], example: &str) -> Result<Url, String> {
    let raw = value.as_str().ok_or("must be a string")?.trim();
    if raw.len() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let wanted = || {
        if schemes == ["https"] {
            format!("must be an https URL like {example}")
        } else {
            format!("must be an http(s) URL like {example}")
        }
    };
    let url = Url::parse(raw).map_err(|_| wanted())?;
    if !schemes.contains(&url.scheme()) || url.host_str().is_none_or(str::is_empty) {
        return Err(wanted());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.port().is_some() {
        return Err("must not name a port".into());
    }
    Ok(url)
}

/// The hosts a video may come from, and the player each belongs to.
const VIDEO_HOSTS: [(&str, &str); 9] = [
    ("youtube.com", "youtube"),
    ("www.youtube.com", "youtube"),
    ("youtu.be", "youtube"),
    ("youtube-nocookie.com", "youtube"),
    ("www.youtube-nocookie.com", "youtube"),
    ("vimeo.com", "vimeo"),
    ("player.vimeo.com", "vimeo"),
    ("loom.com", "loom"),
    ("www.loom.com", "loom"),
];

/// The hosts an embed may come from. Exact names: a subdomain of a listed host may be run
/// by someone else (user pages, sandboxes), so it is not trusted by association.
const EMBED_HOSTS: [&str; 10] = [
    "twitter.com",
    "x.com",
    "codepen.io",
    "gist.github.com",
    "codesandbox.io",
    "www.figma.com",
    "figma.com",
    "open.spotify.com",
    "www.slideshare.net",
    "docs.google.com",
];

/// A video URL and its provider (`youtube`, `vimeo`, `loom`).
fn video_url(value: &Value) -> Result<(String, &'static str), String> {
    let url = absolute_url(value, &["https"], "https://www.youtube.com/watch?v=…")?;
    let host = url.host_str().unwrap_or_default();
    let provider = VIDEO_HOSTS
        .iter()
        .find(|(allowed, _)| *allowed == host)
        .map(|(_, provider)| *provider)
        .ok_or("must be a YouTube, Vimeo or Loom video URL")?;
    Ok((url.into(), provider))
}

/// An embed URL and its provider: the host without `www.`.
fn embed_url(value: &Value) -> Result<(String, String), String> {
    let url = absolute_url(value, &["https"], "https://codepen.io/…")?;
    let host = url.host_str().unwrap_or_default();
    if !EMBED_HOSTS.contains(&host) {
        return Err(format!("must be a URL on {}", EMBED_HOSTS.join(", ")));
    }
    let provider = host.strip_prefix("www.").unwrap_or(host).to_string();
    Ok((url.into(), provider))
}

/// An image's `src`: an https URL, or a path of our own media (`/media/…`). Relative paths
/// are resolved the way a browser would and stored resolved (percent-encoded), so
/// `/media/../admin` and `/media/%2e%2e/x`, which leave `/media/`, are refused rather than
/// stored looking harmless.
fn image_src(value: &Value) -> Result<String, String> {
    const WANTED: &str = "must be an https URL or a media path like /media/photo.jpg";
    let raw = value.as_str().ok_or("must be a string")?.trim();
    if !raw.starts_with('/') {
        return absolute_url(value, &["https"], "https://cdn.example.com/photo.jpg")
            .map(String::from);
    }
    if raw.len() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let invalid = !raw.starts_with("/media/")
        || raw.contains(['\\', '?', '#'])
        || raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if invalid {
        return Err(WANTED.into());
    }
    let base = Url::parse("https://media.invalid/").map_err(|_| WANTED.to_string())?;
    let resolved = base.join(raw).map_err(|_| WANTED.to_string())?;
    let path = resolved.path();
    let inside = resolved.host_str() == Some("media.invalid")
        && path.len() > "/media/".len()
        && path.starts_with("/media/");
    if inside {
        Ok(path.to_string())
    } else {
        Err(WANTED.into())
    }
}

/// The block being cleaned: errors are recorded under its field, and whether any was.
struct Check<'v> {
    v: &'v mut Validator,
    field: &'v str,
    failed: bool,
}

impl Check<'_> {
    fn fail(&mut self, sub: &str, message: impl Into<String>) {
        self.v.add(&format!("{}.{sub}", self.field), message);
        self.failed = true;
    }

    fn check<T>(&mut self, sub: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.fail(sub, message)).ok()
    }

    /// Metadata `key`, parsed; missing or `null` is an error.
    fn required<'m, T>(
        &mut self,
        meta: &'m Map<String, Value>,
        key: &str,
        parse: impl FnOnce(&'m Value) -> Result<T, String>,
    ) -> Option<T> {
        match meta.get(key).filter(|value| !value.is_null()) {
            Some(value) => self.check(&format!("metadata.{key}"), parse(value)),
            None => {
                self.fail(&format!("metadata.{key}"), "is required");
                None
            }
        }
    }

    /// Metadata `key`, parsed; missing or `null` means "not set".
    fn optional<'m, T>(
        &mut self,
        meta: &'m Map<String, Value>,
        key: &str,
        parse: impl FnOnce(&'m Value) -> Result<T, String>,
    ) -> Option<T> {
        let value = meta.get(key).filter(|value| !value.is_null())?;
        self.check(&format!("metadata.{key}"), parse(value))
    }

    /// An optional one-line text, dropped when it is empty once markup is stripped.
    fn optional_plain(
        &mut self,
        meta: &Map<String, Value>,
        key: &str,
        max: usize,
    ) -> Option<Plain> {
        self.optional(meta, key, |value| plain(value, max))
            .filter(|plain| !plain.html.is_empty())
    }

    /// Required HTML `content` through `builder`.
    fn html(
        &mut self,
        content: Option<&str>,
        builder: &ammonia::Builder<'static>,
        max: usize,
    ) -> String {
        let raw = content.unwrap_or_default();
        if raw.trim().is_empty() {
            self.fail("content", "is required");
            return String::new();
        }
        if raw.chars().count() > max {
            self.fail("content", format!("must be at most {max} characters"));
            return String::new();
        }
        let html = sanitize(builder, raw);
        if html.is_empty() {
            self.fail("content", "is empty once unsafe markup is removed");
        }
        html
    }

    /// Types whose text lives in metadata take no `content`, so that it cannot be lost.
    fn no_content(&mut self, content: Option<&str>, message: &str) {
        if content.is_some_and(|c| !c.trim().is_empty()) {
            self.fail("content", message);
        }
    }
}

/// What a type's rules produce; only kept if nothing failed.
#[derive(Default)]
struct Built {
    content: String,
    metadata: Map<String, Value>,
    plain_text: String,
}

/// Validates one block; every problem is recorded in `v` under `"{field}.block_type"`,
/// `"{field}.content"`, `"{field}.metadata.level"`, `"{field}.metadata.items[3]"` etc.
/// (`field` is e.g. `blocks[2]` or `block`). Returns None if anything was invalid.
///
/// Every problem of the block is reported at once, except that a block of an unknown type, or
/// whose metadata is not an object, is judged no further: its other fields mean nothing yet.
pub fn clean(input: BlockInput, field: &str, v: &mut Validator) -> Option<CleanBlock> {
    let mut c = Check {
        v,
        field,
        failed: false,
    };
    let block_type = c.check("block_type", input.block_type.parse::<BlockType>())?;
    let meta = match input.metadata {
        None => Map::new(),
        Some(Value::Object(meta)) => meta,
        Some(_) => {
            c.fail("metadata", "must be a JSON object");
            return None;
        }
    };
    let known = block_type.known_keys();
    for key in meta.keys().filter(|key| !known.contains(&key.as_str())) {
        let shown: String = key.chars().take(MAX_KEY_IN_ERROR).collect();
        c.fail(
            &format!("metadata.{shown}"),
            format!("is not a field of {}", block_type.a_block()),
        );
    }
    let content = input.content.as_deref();
    let built = match block_type {
        BlockType::Paragraph => paragraph(&mut c, content),
        BlockType::Heading => heading(&mut c, content, &meta),
        BlockType::Code => code(&mut c, content, &meta),
        BlockType::Image => image(&mut c, content, &meta),
        BlockType::Quote => quote(&mut c, content, &meta),
        BlockType::List => list(&mut c, content, &meta),
        BlockType::Divider => divider(&mut c, content, &meta),
        BlockType::Callout => callout(&mut c, content, &meta),
        BlockType::Video => video(&mut c, content, &meta),
        BlockType::Embed => embed(&mut c, content, &meta),
    };
    if c.failed {
        return None;
    }
    Some(CleanBlock {
        block_type,
        content: built.content,
        metadata: Value::Object(built.metadata),
        plain_text: built.plain_text,
    })
}

/// The non-empty texts, one per line.
fn lines<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    texts
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn paragraph(c: &mut Check, content: Option<&str>) -> Built {
    let html = c.html(content, &RICH, MAX_BODY_CHARS);
    Built {
        plain_text: html_to_text(&html),
        content: html,
        metadata: Map::new(),
    }
}

fn heading(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    let mut out = Map::new();
    if let Some(level) = c.required(meta, "level", |v| integer(v, 1, 6)) {
        out.insert("level".into(), level.into());
    }
    if let Some(anchor) = c.optional(meta, "anchor", anchor) {
        out.insert("anchor".into(), anchor.into());
    }
    let html = c.html(content, &INLINE, MAX_HEADING_CHARS);
    Built {
        plain_text: html_to_text(&html),
        content: html,
        metadata: out,
    }
}

fn code(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    let mut out = Map::new();
    if let Some(language) = c.required(meta, "language", language) {
        out.insert("language".into(), language.into());
    }
    if let Some(name) = c
        .optional(meta, "filename", filename)
        .filter(|n| !n.is_empty())
    {
        out.insert("filename".into(), name.into());
    }
    if let Some(numbers) = c.optional(meta, "lineNumbers", boolean) {
        out.insert("lineNumbers".into(), numbers.into());
    }
    if let Some(value) = meta.get("highlight").filter(|value| !value.is_null())
        && let Some(lines) = highlight(c, value)
    {
        out.insert("highlight".into(), lines.into());
    }
    let source = content.unwrap_or_default();
    if source.trim().is_empty() {
        c.fail("content", "is required");
    } else if source.chars().count() > MAX_BODY_CHARS {
        c.fail(
            "content",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        );
    } else if source.contains('\0') {
        c.fail("content", "must not contain NUL characters");
    }
    Built {
        plain_text: collapse_whitespace(source),
        content: source.to_string(),
        metadata: out,
    }
}

/// The lines a code block highlights: positive line numbers, each error naming its entry.
fn highlight(c: &mut Check, value: &Value) -> Option<Vec<u64>> {
    let Some(entries) = value.as_array() else {
        c.fail("metadata.highlight", "must be an array of line numbers");
        return None;
    };
    if entries.len() > MAX_HIGHLIGHTS {
        c.fail(
            "metadata.highlight",
            format!("must have at most {MAX_HIGHLIGHTS} entries"),
        );
        return None;
    }
    let mut lines = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        match entry.as_u64().filter(|&n| n >= 1) {
            Some(line) => lines.push(line),
            None => c.fail(
                &format!("metadata.highlight[{i}]"),
                "must be a line number (a whole number of at least 1)",
            ),
        }
    }
    (lines.len() == entries.len()).then_some(lines)
}

fn image(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    c.no_content(
        content,
        "an image block keeps its caption in metadata.caption",
    );
    let mut out = Map::new();
    if let Some(src) = c.required(meta, "src", image_src) {
        out.insert("src".into(), src.into());
    }
    let decorative = c.optional(meta, "decorative", boolean);
    let alt = c.required(meta, "alt", |v| plain(v, MAX_ALT_CHARS));
    if let Some(alt) = &alt {
        if alt.html.is_empty() && decorative != Some(true) {
            c.fail(
                "metadata.alt",
                "must describe the image (it may be empty only when decorative is true)",
            );
        }
        out.insert("alt".into(), alt.html.clone().into());
    }
    let caption = c.optional_plain(meta, "caption", MAX_CAPTION_CHARS);
    if let Some(caption) = &caption {
        out.insert("caption".into(), caption.html.clone().into());
    }
    for key in ["width", "height"] {
        if let Some(size) = c.optional(meta, key, |v| integer(v, 1, 10_000)) {
            out.insert(key.into(), size.into());
        }
    }
    if let Some(decorative) = decorative {
        out.insert("decorative".into(), decorative.into());
    }
    let alt_text = alt.as_ref().map(|a| a.text.as_str()).unwrap_or_default();
    let caption_text = caption
        .as_ref()
        .map(|c| c.text.as_str())
        .unwrap_or_default();
    Built {
        plain_text: lines([alt_text, caption_text]),
        content: caption.map(|c| c.html).unwrap_or_default(),
        metadata: out,
    }
}

fn quote(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    let mut out = Map::new();
    let citation = c.optional_plain(meta, "citation", MAX_CITATION_CHARS);
    if let Some(citation) = &citation {
        out.insert("citation".into(), citation.html.clone().into());
    }
    let source = c.optional(meta, "source_url", |v| {
        absolute_url(v, &["http", "https"], "https://example.com/speech")
    });
    if let Some(source) = source {
        out.insert("source_url".into(), String::from(source).into());
    }
    let html = c.html(content, &RICH, MAX_BODY_CHARS);
    let text = html_to_text(&html);
    let citation_text = citation
        .as_ref()
        .map(|c| c.text.as_str())
        .unwrap_or_default();
    Built {
        plain_text: lines([text.as_str(), citation_text]),
        content: html,
        metadata: out,
    }
}

fn list(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    c.no_content(content, "a list block keeps its items in metadata.items");
    let ordered = c.optional(meta, "ordered", boolean).unwrap_or(false);
    let mut out = Map::new();
    out.insert("ordered".into(), ordered.into());
    let start = c.optional(meta, "start", |v| integer(v, 1, i64::MAX));
    if let Some(start) = start {
        if ordered {
            out.insert("start".into(), start.into());
        } else {
            c.fail("metadata.start", "applies only to an ordered list");
        }
    }
    let mut texts = Vec::new();
    match meta.get("items").filter(|value| !value.is_null()) {
        None => c.fail("metadata.items", "is required"),
        Some(Value::Array(items)) if items.is_empty() => {
            c.fail("metadata.items", "must have at least one item");
        }
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => {
            c.fail(
                "metadata.items",
                format!("must have at most {MAX_ITEMS} items"),
            );
        }
        Some(Value::Array(items)) => {
            let mut clean = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(html) = c.check(&format!("metadata.items[{i}]"), list_item(item)) {
                    texts.push(html_to_text(&html));
                    clean.push(Value::String(html));
                }
            }
            out.insert("items".into(), Value::Array(clean));
        }
        Some(_) => c.fail("metadata.items", "must be an array of strings"),
    }
    Built {
        content: String::new(),
        metadata: out,
        plain_text: texts.join("\n"),
    }
}

fn list_item(value: &Value) -> Result<String, String> {
    let raw = value.as_str().ok_or("must be a string")?;
    if raw.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if raw.chars().count() > MAX_ITEM_CHARS {
        return Err(format!("must be at most {MAX_ITEM_CHARS} characters"));
    }
    let html = sanitize(&RICH, raw);
    if html.is_empty() {
        return Err("is empty once unsafe markup is removed".into());
    }
    Ok(html)
}

fn divider(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    c.no_content(content, "a divider has no content");
    let mut out = Map::new();
    if let Some(style) = c.optional(meta, "style", |v| one_of(v, &["line", "dots", "space"])) {
        out.insert("style".into(), style.into());
    }
    Built {
        metadata: out,
        ..Built::default()
    }
}

const CALLOUT_TYPES: [&str; 6] = ["info", "warning", "success", "error", "tip", "note"];

fn callout(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    let mut out = Map::new();
    if let Some(kind) = c.required(meta, "type", |v| one_of(v, &CALLOUT_TYPES)) {
        out.insert("type".into(), kind.into());
    }
    if let Some(icon) = c.optional(meta, "icon", icon) {
        out.insert("icon".into(), icon.into());
    }
    let title = c.optional_plain(meta, "title", MAX_CALLOUT_TITLE_CHARS);
    if let Some(title) = &title {
        out.insert("title".into(), title.html.clone().into());
    }
    let html = c.html(content, &RICH, MAX_BODY_CHARS);
    let text = html_to_text(&html);
    let title_text = title.as_ref().map(|t| t.text.as_str()).unwrap_or_default();
    Built {
        plain_text: lines([title_text, text.as_str()]),
        content: html,
        metadata: out,
    }
}

fn video(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    c.no_content(
        content,
        "a video block keeps its caption in metadata.caption",
    );
    let mut out = Map::new();
    if let Some((url, provider)) = c.required(meta, "url", video_url) {
        out.insert("url".into(), url.into());
        out.insert("provider".into(), provider.into());
    }
    let caption = c.optional_plain(meta, "caption", MAX_CAPTION_CHARS);
    if let Some(caption) = &caption {
        out.insert("caption".into(), caption.html.clone().into());
    }
    if let Some(start) = c.optional(meta, "start", |v| integer(v, 0, i64::MAX)) {
        out.insert("start".into(), start.into());
    }
    let (content, plain_text) = caption.map(|p| (p.html, p.text)).unwrap_or_default();
    Built {
        content,
        metadata: out,
        plain_text,
    }
}

fn embed(c: &mut Check, content: Option<&str>, meta: &Map<String, Value>) -> Built {
    c.no_content(
        content,
        "an embed block keeps its caption in metadata.caption",
    );
    let mut out = Map::new();
    if let Some((url, provider)) = c.required(meta, "url", embed_url) {
        out.insert("url".into(), url.into());
        out.insert("provider".into(), provider.into());
    }
    let caption = c.optional_plain(meta, "caption", MAX_CAPTION_CHARS);
    if let Some(caption) = &caption {
        out.insert("caption".into(), caption.html.clone().into());
    }
    if let Some(height) = c.optional(meta, "height", |v| integer(v, 50, 2_000)) {
        out.insert("height".into(), height.into());
    }
    let (content, plain_text) = caption.map(|p| (p.html, p.text)).unwrap_or_default();
    Built {
        content,
        metadata: out,
        plain_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_shared::ApiError;
    use serde_json::json;

    fn input(block_type: &str, content: Option<&str>, metadata: Value) -> BlockInput {
        BlockInput {
            block_type: block_type.into(),
            content: content.map(String::from),
            metadata: (!metadata.is_null()).then_some(metadata),
        }
    }

    /// The block, which must be valid.
    fn ok(block_type: &str, content: Option<&str>, metadata: Value) -> CleanBlock {
        let mut v = Validator::new();
        let block = clean(input(block_type, content, metadata), "blocks[0]", &mut v);
        match v.finish() {
            Ok(()) => block.expect("a valid block comes back"),
            Err(e) => panic!("expected a valid {block_type} block, got {e:?}"),
        }
    }

    /// Every (field, message) recorded for an invalid block.
    fn errors(block_type: &str, content: Option<&str>, metadata: Value) -> Vec<(String, String)> {
        let mut v = Validator::new();
        let block = clean(input(block_type, content, metadata), "blocks[0]", &mut v);
        assert!(block.is_none(), "an invalid block must not come back");
        match v.finish() {
            Err(ApiError::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    /// The fields of the errors, in order.
    fn fields(block_type: &str, content: Option<&str>, metadata: Value) -> Vec<String> {
        errors(block_type, content, metadata)
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    fn one_error(block_type: &str, content: Option<&str>, metadata: Value) -> (String, String) {
        let mut all = errors(block_type, content, metadata);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn field_error(field: &str, message: &str) -> (String, String) {
        (field.to_string(), message.to_string())
    }

    const XSS: [&str; 11] = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">y</a>",
        "<svg onload=alert(1)>",
        "<iframe src=\"https://evil.example/\"></iframe>",
        "<p style=\"background:url(javascript:alert(1))\">styled</p>",
        "<a href=\"&#106;avascript:alert(1)\">z</a>",
        "<a title=\"\"><script>alert(1)</script>\">q</a>",
        "<b title=\"\"><img src=x onerror=alert(1)>\">w</b>",
        "<math><mi xlink:href=\"javascript:alert(1)\">m</mi></math>",
    ];

    const NEEDLES: [&str; 7] = [
        "<script",
        "javascript:",
        "onerror",
        "onload",
        "<iframe",
        "<svg",
        "style=",
    ];

    /// Every string in a JSON value.
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Value::Object(map) => map.values().for_each(|i| strings(i, out)),
            _ => {}
        }
    }

    fn assert_harmless(block: &CleanBlock, payload: &str) {
        let mut stored = vec![block.content.clone()];
        strings(&block.metadata, &mut stored);
        for s in stored {
            let lower = s.to_lowercase();
            for needle in NEEDLES {
                assert!(
                    !lower.contains(needle),
                    "{needle} survived in {s:?} (payload {payload:?})"
                );
            }
        }
    }

    #[test]
    fn block_types_parse_by_name_and_list_the_allowed_ones() {
        for t in BlockType::ALL {
            assert_eq!(t.as_str().parse::<BlockType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(" Heading ".parse::<BlockType>(), Ok(BlockType::Heading));
        assert_eq!(
            one_error("table", Some("x"), Value::Null),
            field_error(
                "blocks[0].block_type",
                "must be one of paragraph, heading, code, image, quote, list, divider, callout, video, embed"
            )
        );
    }

    #[test]
    fn block_input_refuses_unknown_fields() {
        let parsed: BlockInput = serde_json::from_value(json!({"block_type": "divider"})).unwrap();
        assert_eq!(parsed.block_type, "divider");
        assert_eq!(parsed.content, None);
        assert_eq!(parsed.metadata, None);
        assert!(
            serde_json::from_value::<BlockInput>(json!({"block_type": "divider", "x": 1})).is_err()
        );
    }

    #[test]
    fn paragraphs_keep_inline_markup_and_links_with_a_forced_rel() {
        let block = ok(
            "paragraph",
            Some(
                "  <p>Read <a href=\"https://example.com/a\" class=\"x\" onclick=\"e()\">this</a>, <em>now</em> &amp; <span style=\"color:red\">later</span></p> ",
            ),
            Value::Null,
        );
        assert_eq!(block.block_type, BlockType::Paragraph);
        assert_eq!(
            block.content,
            "Read <a href=\"https://example.com/a\" rel=\"noopener noreferrer nofollow\">this</a>, <em>now</em> &amp; <span>later</span>"
        );
        assert_eq!(block.metadata, json!({}));
        assert_eq!(block.plain_text, "Read this, now & later");
        // Relative links and mailto survive; other schemes lose their href.
        let block = ok(
            "paragraph",
            Some(
                "<a href=\"/articles/x\">a</a><a href=\"mailto:a@b.c\">b</a><a href=\"ftp://x\">c</a>",
            ),
            json!({}),
        );
        assert_eq!(
            block.content,
            "<a href=\"/articles/x\" rel=\"noopener noreferrer nofollow\">a</a><a href=\"mailto:a@b.c\" rel=\"noopener noreferrer nofollow\">b</a><a rel=\"noopener noreferrer nofollow\">c</a>"
        );
    }

    #[test]
    fn plain_text_strips_tags_and_decodes_entities() {
        let block = ok("paragraph", Some("<p>a &amp; <b>b</b></p>"), Value::Null);
        assert_eq!(block.content, "a &amp; <b>b</b>");
        assert_eq!(block.plain_text, "a & b");
        assert_eq!(
            html_to_text(
                "x<br>y &lt;z&gt; &quot;q&quot; &#39;s&#39; &#x41;&#66; &nbsp; &bogus; & <a href=\"a>b\">l</a>"
            ),
            "x y <z> \"q\" 's' AB &bogus; & l"
        );
        assert_eq!(html_to_text("  many \n\t spaces  "), "many spaces");
        assert_eq!(html_to_text("&#0;&#xD800;"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn paragraphs_need_content_that_survives_sanitizing() {
        assert_eq!(
            one_error("paragraph", None, Value::Null),
            field_error("blocks[0].content", "is required")
        );
        assert_eq!(
            one_error("paragraph", Some("  \n "), Value::Null),
            field_error("blocks[0].content", "is required")
        );
        assert_eq!(
            one_error("paragraph", Some("<script>alert(1)</script>"), Value::Null),
            field_error(
                "blocks[0].content",
                "is empty once unsafe markup is removed"
            )
        );
        assert_eq!(
            one_error("paragraph", Some(&"a".repeat(100_001)), Value::Null),
            field_error("blocks[0].content", "must be at most 100000 characters")
        );
        assert_eq!(
            ok("paragraph", Some(&"a".repeat(100_000)), Value::Null)
                .content
                .len(),
            100_000
        );
        assert_eq!(
            one_error("paragraph", Some("x"), json!("text")),
            field_error("blocks[0].metadata", "must be a JSON object")
        );
    }

    #[test]
    fn unknown_metadata_keys_are_refused_by_name() {
        assert_eq!(
            one_error("paragraph", Some("x"), json!({"colour": "red"})),
            field_error(
                "blocks[0].metadata.colour",
                "is not a field of a paragraph block"
            )
        );
        assert_eq!(
            one_error(
                "image",
                None,
                json!({"src": "/media/a.png", "alt": "A", "onload": "x"})
            ),
            field_error(
                "blocks[0].metadata.onload",
                "is not a field of an image block"
            )
        );
        assert_eq!(
            fields("divider", None, json!({"style": "line", "b": 1, "a": 2})),
            ["blocks[0].metadata.a", "blocks[0].metadata.b"]
        );
    }

    #[test]
    fn headings_have_a_level_an_optional_anchor_and_no_links() {
        let block = ok(
            "heading",
            Some(
                "Getting <em>started</em> <a href=\"https://x.example\">here</a><br><code>now</code>",
            ),
            json!({"level": 2, "anchor": "getting-started"}),
        );
        assert_eq!(
            block.content,
            "Getting <em>started</em> here<code>now</code>"
        );
        assert_eq!(
            block.metadata,
            json!({"level": 2, "anchor": "getting-started"})
        );
        assert_eq!(block.plain_text, "Getting started herenow");
        assert_eq!(
            ok("heading", Some("H"), json!({"level": 6, "anchor": null})).metadata,
            json!({"level": 6})
        );
        for level in [json!(0), json!(7), json!("2"), json!(2.0), json!(-1)] {
            assert_eq!(
                one_error("heading", Some("H"), json!({"level": level})),
                field_error(
                    "blocks[0].metadata.level",
                    "must be a whole number from 1 to 6"
                )
            );
        }
        assert_eq!(
            fields("heading", None, json!({})),
            ["blocks[0].metadata.level", "blocks[0].content"]
        );
        for anchor in ["Getting-Started", "-x", "a b", "", "ü", &"a".repeat(101)] {
            assert_eq!(
                fields("heading", Some("H"), json!({"level": 1, "anchor": anchor})),
                ["blocks[0].metadata.anchor"],
                "{anchor}"
            );
        }
        assert!(
            ok(
                "heading",
                Some("H"),
                json!({"level": 1, "anchor": "a".repeat(100)})
            )
            .metadata["anchor"]
                .is_string()
        );
    }

    #[test]
    fn code_is_stored_as_typed() {
        let source = "fn main() {\n    println!(\"<script>alert(1)</script> & more\");\n}\n";
        let block = ok(
            "code",
            Some(source),
            json!({"language": " Rust ", "filename": "src/main.rs", "lineNumbers": true, "highlight": [2, 3]}),
        );
        assert_eq!(block.content, source);
        assert_eq!(
            block.metadata,
            json!({"language": "rust", "filename": "src/main.rs", "lineNumbers": true, "highlight": [2, 3]})
        );
        assert_eq!(
            block.plain_text,
            "fn main() { println!(\"<script>alert(1)</script> & more\"); }"
        );
        for language in ["c++", "c#", "objective-c", "vue.js", "x86"] {
            assert_eq!(
                ok("code", Some("x"), json!({"language": language})).metadata,
                json!({"language": language})
            );
        }
    }

    #[test]
    fn code_metadata_errors_name_their_field() {
        assert_eq!(
            fields("code", Some("x"), json!({})),
            ["blocks[0].metadata.language"]
        );
        for language in ["", "py thon", "+c", "<b>", &"a".repeat(41)] {
            assert_eq!(
                fields("code", Some("x"), json!({"language": language})),
                ["blocks[0].metadata.language"],
                "{language}"
            );
        }
        for filename in [
            "../etc/passwd",
            "a/../b",
            "a\\..\\b",
            "/..",
            "<x>.js",
            "a\u{7}b",
            &"a".repeat(256),
        ] {
            assert_eq!(
                fields(
                    "code",
                    Some("x"),
                    json!({"language": "c", "filename": filename})
                ),
                ["blocks[0].metadata.filename"],
                "{filename}"
            );
        }
        assert_eq!(
            fields(
                "code",
                Some("x"),
                json!({"language": "c", "lineNumbers": "yes"})
            ),
            ["blocks[0].metadata.lineNumbers"]
        );
        assert_eq!(
            fields(
                "code",
                Some("x"),
                json!({"language": "c", "highlight": [1, 0, "3", -2, 4]})
            ),
            [
                "blocks[0].metadata.highlight[1]",
                "blocks[0].metadata.highlight[2]",
                "blocks[0].metadata.highlight[3]"
            ]
        );
        assert_eq!(
            one_error("code", Some("x"), json!({"language": "c", "highlight": 3})),
            field_error(
                "blocks[0].metadata.highlight",
                "must be an array of line numbers"
            )
        );
        assert_eq!(
            one_error(
                "code",
                Some("x"),
                json!({"language": "c", "highlight": vec![1; 1001]})
            ),
            field_error(
                "blocks[0].metadata.highlight",
                "must have at most 1000 entries"
            )
        );
        assert_eq!(
            fields("code", Some(" \n"), json!({"language": "c"})),
            ["blocks[0].content"]
        );
        assert_eq!(
            one_error("code", Some("a\0b"), json!({"language": "c"})),
            field_error("blocks[0].content", "must not contain NUL characters")
        );
    }

    #[test]
    fn images_keep_their_text_in_metadata() {
        let block = ok(
            "image",
            Some(""),
            json!({
                "src": "https://CDN.example.com/a%20b.png",
                "alt": "A <b>cat</b> & a dog",
                "caption": "  Photo:\n <i>Tom</i> <script>x()</script> ",
                "width": 800,
                "height": 600,
            }),
        );
        assert_eq!(
            block.metadata,
            json!({
                "src": "https://cdn.example.com/a%20b.png",
                "alt": "A cat &amp; a dog",
                "caption": "Photo: Tom",
                "width": 800,
                "height": 600,
            })
        );
        assert_eq!(block.content, "Photo: Tom");
        assert_eq!(block.plain_text, "A cat & a dog\nPhoto: Tom");

        let block = ok(
            "image",
            None,
            json!({"src": "/media/2024/cat.png", "alt": "", "decorative": true, "caption": ""}),
        );
        assert_eq!(
            block.metadata,
            json!({"src": "/media/2024/cat.png", "alt": "", "decorative": true})
        );
        assert_eq!(block.content, "");
        assert_eq!(block.plain_text, "");
        assert_eq!(
            ok(
                "image",
                None,
                json!({"src": "/media/a/../b.png", "alt": "x"})
            )
            .metadata["src"],
            json!("/media/b.png")
        );
    }

    #[test]
    fn image_errors_name_their_field() {
        assert_eq!(
            one_error(
                "image",
                Some("a caption"),
                json!({"src": "/media/a.png", "alt": "A"})
            ),
            field_error(
                "blocks[0].content",
                "an image block keeps its caption in metadata.caption"
            )
        );
        assert_eq!(
            fields("image", None, json!({})),
            ["blocks[0].metadata.src", "blocks[0].metadata.alt"]
        );
        for src in [
            "http://cdn.example.com/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://user:pw@cdn.example.com/a.png",
            "https://cdn.example.com@evil.example/a.png",
            "//evil.example/a.png",
            "/uploads/a.png",
            "/media/",
            "/media/../admin",
            "/media/%2e%2e/admin",
            "/media/../../etc/passwd",
            "/media/%2E%2E/private/report.png",
            "/media/./../private/report.png",
            "/media/a.png?x=1",
            "/media\\..\\x",
            "media/a.png",
            "https://cdn.example.com:8443/a.png",
        ] {
            assert_eq!(
                fields("image", None, json!({"src": src, "alt": "A"})),
                ["blocks[0].metadata.src"],
                "{src}"
            );
        }
        assert_eq!(
            one_error(
                "image",
                None,
                json!({"src": "/media/a.png", "alt": " <img src=x> "})
            ),
            field_error(
                "blocks[0].metadata.alt",
                "must describe the image (it may be empty only when decorative is true)"
            )
        );
        assert_eq!(
            fields(
                "image",
                None,
                json!({"src": "/media/a.png", "alt": "", "decorative": false})
            ),
            ["blocks[0].metadata.alt"]
        );
        assert_eq!(
            one_error(
                "image",
                None,
                json!({"src": "/media/a.png", "alt": "a".repeat(301)})
            ),
            field_error("blocks[0].metadata.alt", "must be at most 300 characters")
        );
        assert_eq!(
            fields(
                "image",
                None,
                json!({"src": "/media/a.png", "alt": "A", "caption": "c".repeat(501), "width": 0, "height": 10_001, "decorative": "no"})
            ),
            [
                "blocks[0].metadata.decorative",
                "blocks[0].metadata.caption",
                "blocks[0].metadata.width",
                "blocks[0].metadata.height"
            ]
        );
    }

    #[test]
    fn quotes_have_an_optional_citation_and_source() {
        let block = ok(
            "quote",
            Some("To be, <b>or not</b>"),
            json!({"citation": "<i>Hamlet</i> & co", "source_url": "http://example.com/hamlet"}),
        );
        assert_eq!(block.content, "To be, <b>or not</b>");
        assert_eq!(
            block.metadata,
            json!({"citation": "Hamlet &amp; co", "source_url": "http://example.com/hamlet"})
        );
        assert_eq!(block.plain_text, "To be, or not\nHamlet & co");
        for source in [
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://x.example/",
            "not a url",
        ] {
            assert_eq!(
                fields("quote", Some("q"), json!({"source_url": source})),
                ["blocks[0].metadata.source_url"],
                "{source}"
            );
        }
        assert_eq!(
            fields("quote", Some("q"), json!({"citation": "c".repeat(301)})),
            ["blocks[0].metadata.citation"]
        );
    }

    #[test]
    fn lists_clean_every_item() {
        let block = ok(
            "list",
            None,
            json!({"items": [" <b>one</b> ", "<a href=\"https://x.example\">two</a> &amp; more"]}),
        );
        assert_eq!(block.content, "");
        assert_eq!(
            block.metadata,
            json!({"ordered": false, "items": ["<b>one</b>", "<a href=\"https://x.example\" rel=\"noopener noreferrer nofollow\">two</a> &amp; more"]})
        );
        assert_eq!(block.plain_text, "one\ntwo & more");
        let block = ok(
            "list",
            Some(""),
            json!({"ordered": true, "start": 3, "items": ["a"]}),
        );
        assert_eq!(
            block.metadata,
            json!({"ordered": true, "start": 3, "items": ["a"]})
        );
    }

    #[test]
    fn list_errors_name_the_item() {
        assert_eq!(
            errors(
                "list",
                None,
                json!({"items": ["fine", "", 3, "<script>x</script>", "a".repeat(5_001)]})
            ),
            [
                field_error("blocks[0].metadata.items[1]", "must not be empty"),
                field_error("blocks[0].metadata.items[2]", "must be a string"),
                field_error(
                    "blocks[0].metadata.items[3]",
                    "is empty once unsafe markup is removed"
                ),
                field_error(
                    "blocks[0].metadata.items[4]",
                    "must be at most 5000 characters"
                ),
            ]
        );
        assert_eq!(
            one_error("list", None, json!({})),
            field_error("blocks[0].metadata.items", "is required")
        );
        assert_eq!(
            one_error("list", None, json!({"items": []})),
            field_error("blocks[0].metadata.items", "must have at least one item")
        );
        assert_eq!(
            one_error("list", None, json!({"items": "a"})),
            field_error("blocks[0].metadata.items", "must be an array of strings")
        );
        assert_eq!(
            one_error("list", None, json!({"items": vec!["a"; 1_001]})),
            field_error("blocks[0].metadata.items", "must have at most 1000 items")
        );
        assert_eq!(
            one_error("list", None, json!({"items": ["a"], "start": 2})),
            field_error(
                "blocks[0].metadata.start",
                "applies only to an ordered list"
            )
        );
        assert_eq!(
            one_error(
                "list",
                None,
                json!({"ordered": true, "items": ["a"], "start": 0})
            ),
            field_error(
                "blocks[0].metadata.start",
                "must be a whole number of at least 1"
            )
        );
        assert_eq!(
            fields("list", Some("x"), json!({"ordered": "yes", "items": ["a"]})),
            ["blocks[0].content", "blocks[0].metadata.ordered"]
        );
        assert_eq!(
            ok("list", None, json!({"items": vec!["a"; 1_000]}))
                .plain_text
                .len(),
            1_999
        );
    }

    #[test]
    fn dividers_have_only_a_style() {
        let block = ok("divider", None, Value::Null);
        assert_eq!(
            (
                block.content.as_str(),
                &block.metadata,
                block.plain_text.as_str()
            ),
            ("", &json!({}), "")
        );
        assert_eq!(
            ok("divider", Some(""), json!({"style": "dots"})).metadata,
            json!({"style": "dots"})
        );
        assert_eq!(
            one_error("divider", None, json!({"style": "wavy"})),
            field_error(
                "blocks[0].metadata.style",
                "must be one of line, dots, space"
            )
        );
        assert_eq!(
            one_error("divider", Some("---"), json!({})),
            field_error("blocks[0].content", "a divider has no content")
        );
    }

    #[test]
    fn callouts_have_a_type_icon_and_title() {
        let block = ok(
            "callout",
            Some("Mind <strong>the gap</strong>"),
            json!({"type": "warning", "icon": "alert-triangle", "title": "<b>Careful</b> now"}),
        );
        assert_eq!(block.content, "Mind <strong>the gap</strong>");
        assert_eq!(
            block.metadata,
            json!({"type": "warning", "icon": "alert-triangle", "title": "Careful now"})
        );
        assert_eq!(block.plain_text, "Careful now\nMind the gap");
        assert_eq!(
            one_error("callout", Some("x"), json!({"type": "danger"})),
            field_error(
                "blocks[0].metadata.type",
                "must be one of info, warning, success, error, tip, note"
            )
        );
        assert_eq!(
            fields(
                "callout",
                None,
                json!({"icon": "Alert Circle", "title": "t".repeat(201)})
            ),
            [
                "blocks[0].metadata.type",
                "blocks[0].metadata.icon",
                "blocks[0].metadata.title",
                "blocks[0].content"
            ]
        );
    }

    #[test]
    fn videos_come_from_known_players_only() {
        for (url, provider) in [
            ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube"),
            ("https://youtu.be/dQw4w9WgXcQ", "youtube"),
            ("https://www.youtube-nocookie.com/embed/x", "youtube"),
            ("https://player.vimeo.com/video/1", "vimeo"),
            ("https://vimeo.com/1", "vimeo"),
            ("https://www.loom.com/share/abc", "loom"),
        ] {
            let block = ok("video", None, json!({"url": url}));
            assert_eq!(block.metadata, json!({"url": url, "provider": provider}));
            assert_eq!(block.content, "");
        }
        let block = ok(
            "video",
            None,
            json!({"url": "https://YouTube.com/watch?v=x", "caption": "Demo &amp; <b>talk</b>", "start": 0}),
        );
        assert_eq!(
            block.metadata,
            json!({"url": "https://youtube.com/watch?v=x", "provider": "youtube", "caption": "Demo &amp; talk", "start": 0})
        );
        assert_eq!(block.content, "Demo &amp; talk");
        assert_eq!(block.plain_text, "Demo & talk");
    }

    #[test]
    fn video_urls_off_the_list_are_refused() {
        for url in [
            "http://www.youtube.com/watch?v=x",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)//https://youtube.com",
            "data:text/html,<script>alert(1)</script>",
            "https://youtube.com@evil.example/watch",
            "https://user:pw@youtube.com/watch",
            "https://youtube.com.evil.example/watch",
            "https://evil.example/#https://youtube.com",
            "https://m.youtube.com/watch?v=x",
            "https://youtube.com:444/watch",
            "//youtube.com/watch",
            "youtube.com/watch",
        ] {
            assert_eq!(
                fields("video", None, json!({"url": url})),
                ["blocks[0].metadata.url"],
                "{url}"
            );
        }
        assert_eq!(
            one_error("video", None, json!({"url": "https://evil.example/v"})),
            field_error(
                "blocks[0].metadata.url",
                "must be a YouTube, Vimeo or Loom video URL"
            )
        );
        assert_eq!(
            one_error("video", None, json!({"url": "https://x@youtube.com/v"})),
            field_error(
                "blocks[0].metadata.url",
                "must not contain a user name or password"
            )
        );
        assert_eq!(
            one_error(
                "video",
                None,
                json!({"url": "https://vimeo.com/1", "provider": "vimeo"})
            ),
            field_error(
                "blocks[0].metadata.provider",
                "is not a field of a video block"
            )
        );
        assert_eq!(
            fields(
                "video",
                Some("cap"),
                json!({"url": "https://vimeo.com/1", "start": -1})
            ),
            ["blocks[0].content", "blocks[0].metadata.start"]
        );
        assert_eq!(
            one_error("video", None, json!({})),
            field_error("blocks[0].metadata.url", "is required")
        );
    }

    #[test]
    fn embeds_come_from_exactly_the_listed_hosts() {
        for (url, provider) in [
            ("https://twitter.com/a/status/1", "twitter.com"),
            ("https://x.com/a/status/1", "x.com"),
            ("https://codepen.io/a/pen/b", "codepen.io"),
            ("https://gist.github.com/a/b", "gist.github.com"),
            ("https://codesandbox.io/s/x", "codesandbox.io"),
            ("https://www.figma.com/file/x", "figma.com"),
            ("https://open.spotify.com/track/x", "open.spotify.com"),
            ("https://www.slideshare.net/a/b", "slideshare.net"),
            ("https://docs.google.com/document/d/x", "docs.google.com"),
        ] {
            assert_eq!(
                ok("embed", None, json!({"url": url})).metadata,
                json!({"url": url, "provider": provider})
            );
        }
        let block = ok(
            "embed",
            None,
            json!({"url": "https://figma.com/file/x", "caption": "Design", "height": 50}),
        );
        assert_eq!(
            block.metadata,
            json!({"url": "https://figma.com/file/x", "provider": "figma.com", "caption": "Design", "height": 50})
        );
        assert_eq!(
            (block.content.as_str(), block.plain_text.as_str()),
            ("Design", "Design")
        );
        for url in [
            "http://codepen.io/a",
            "https://evil.docs.google.com/x",
            "https://github.com/a/b",
            "https://gist.github.com.evil.example/x",
            "https://codepen.io@evil.example/x",
            "https://a:b@codepen.io/x",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://slideshare.net/a",
        ] {
            assert_eq!(
                fields("embed", None, json!({"url": url})),
                ["blocks[0].metadata.url"],
                "{url}"
            );
        }
        for height in [49, 2001] {
            assert_eq!(
                one_error(
                    "embed",
                    None,
                    json!({"url": "https://x.com/a", "height": height})
                ),
                field_error(
                    "blocks[0].metadata.height",
                    "must be a whole number from 50 to 2000"
                )
            );
        }
        assert_eq!(
            one_error("embed", Some("c"), json!({"url": "https://x.com/a"})),
            field_error(
                "blocks[0].content",
                "an embed block keeps its caption in metadata.caption"
            )
        );
    }

    #[test]
    fn xss_payloads_are_neutralised_in_paragraphs_items_and_callouts() {
        for payload in XSS {
            let text = format!("ok {payload} end");
            let paragraph = ok("paragraph", Some(&text), Value::Null);
            assert_harmless(&paragraph, payload);
            assert!(paragraph.plain_text.starts_with("ok "), "{payload}");
            let heading = ok("heading", Some(&text), json!({"level": 2}));
            assert_harmless(&heading, payload);
            let list = ok("list", None, json!({"items": [text.as_str(), "fine"]}));
            assert_harmless(&list, payload);
            let callout = ok(
                "callout",
                Some(&text),
                json!({"type": "info", "title": payload}),
            );
            assert_harmless(&callout, payload);
            // Alone, a payload either cleans to something harmless or to nothing (an error).
            harmless_or_refused("paragraph", Some(payload), Value::Null, payload);
            harmless_or_refused("list", None, json!({"items": [payload]}), payload);
            harmless_or_refused("callout", Some(payload), json!({"type": "tip"}), payload);
        }
        assert_eq!(
            ok(
                "paragraph",
                Some("ok <img src=x onerror=alert(1)> end"),
                Value::Null
            )
            .content,
            "ok  end"
        );
        assert_eq!(
            ok(
                "paragraph",
                Some("<a href=\"&#106;avascript:alert(1)\">z</a>"),
                Value::Null
            )
            .content,
            "<a rel=\"noopener noreferrer nofollow\">z</a>"
        );
    }

    fn harmless_or_refused(
        block_type: &str,
        content: Option<&str>,
        metadata: Value,
        payload: &str,
    ) {
        let mut v = Validator::new();
        match clean(input(block_type, content, metadata), "blocks[0]", &mut v) {
            Some(block) => assert_harmless(&block, payload),
            None => assert!(!v.is_valid()),
        }
    }

    #[test]
    fn xss_payloads_are_neutralised_in_plain_text_fields() {
        for payload in XSS {
            let mut v = Validator::new();
            let block = clean(
                input(
                    "image",
                    None,
                    json!({"src": "/media/a.png", "alt": format!("ok {payload}"), "caption": payload}),
                ),
                "blocks[0]",
                &mut v,
            )
            .unwrap_or_else(|| panic!("{payload}: {:?}", v.finish()));
            assert_harmless(&block, payload);
            let quote = ok("quote", Some("q"), json!({"citation": payload}));
            assert_harmless(&quote, payload);
            let video = ok(
                "video",
                None,
                json!({"url": "https://vimeo.com/1", "caption": payload}),
            );
            assert_harmless(&video, payload);
        }
        // Escaped markup stays escaped: decoding happens only in plain_text.
        let block = ok(
            "embed",
            None,
            json!({"url": "https://x.com/a", "caption": "&lt;script&gt;alert(1)&lt;/script&gt;"}),
        );
        assert_eq!(
            block.metadata["caption"],
            json!("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert_eq!(block.plain_text, "<script>alert(1)</script>");
        assert_eq!(
            one_error(
                "embed",
                None,
                json!({"url": "https://x.com/a", "caption": "a\u{1b}b"})
            ),
            field_error(
                "blocks[0].metadata.caption",
                "must not contain control characters"
            )
        );
    }

    #[test]
    fn errors_go_under_the_given_field_and_earlier_errors_do_not_leak() {
        let mut v = Validator::new();
        assert!(clean(input("heading", Some("H"), json!({})), "block", &mut v).is_none());
        let later = clean(input("divider", None, Value::Null), "blocks[7]", &mut v);
        assert!(
            later.is_some(),
            "a valid block is returned whatever came before"
        );
        let Err(ApiError::Validation(errors)) = v.finish() else {
            panic!("expected the heading's error")
        };
        let recorded: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(recorded, ["block.metadata.level"]);
    }

    #[test]
    fn words_are_counted_by_whitespace() {
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("  one\ttwo\nthree  "), 3);
        assert_eq!(word_count("a & b"), 3);
        assert_eq!(MAX_BLOCKS, 500);
    }
}
