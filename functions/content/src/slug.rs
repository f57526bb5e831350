//! URL slugs: lowercase ASCII letters and digits joined by single hyphens, and the search for
//! the first free one among `base`, `base-2`, `base-3`...

use std::collections::HashSet;

use deadpool_postgres::GenericClient;
use lectern_shared::{ApiError, ApiResult};

/// The tables whose rows carry a unique slug.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Articles,
    Categories,
}

impl Owner {
    fn taken_sql(self) -> &'static str {
        match self {
            Owner::Articles => "SELECT slug FROM content.articles WHERE slug = ANY ($1)",
            Owner::Categories => "SELECT slug FROM content.categories WHERE slug = ANY ($1)",
        }
    }
}

/// `base`, or `base-n` cut so that it stays within `max` characters.
pub fn numbered(base: &str, n: u32, max: usize) -> String {
    if n <= 1 {
        return base.to_string();
    }
    let suffix = format!("-{n}");
    let keep = max.saturating_sub(suffix.len());
    // Slugs are ASCII, so any byte index is a character boundary.
    let stem = if base.len() > keep {
        base[..keep].trim_end_matches('-')
    } else {
        base
    };
    format!("{stem}{suffix}")
}

/// The first of `base`, `base-2`, `base-3`... (each within `max`) that no row of `owner` uses.
pub async fn first_free(
    db: &impl GenericClient,
    owner: Owner,
    base: &str,
    max: usize,
) -> ApiResult<String> {
    const BATCH: u32 = 50;
    for batch in 0..100 {
        let candidates: Vec<String> = (batch * BATCH + 1..=(batch + 1) * BATCH)
            .map(|n| numbered(base, n, max))
            .collect();
        let taken: HashSet<String> = db
            .query(&db.prepare_cached(owner.taken_sql()).await?, &[&candidates])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(free) = candidates.into_iter().find(|c| !taken.contains(c)) {
            return Ok(free);
        }
    }
    Err(ApiError::Conflict(format!(
        "Every slug made from {base} is taken; send a slug."
    )))
}

/// Whether `slug` is a well-formed slug of at most `max` characters.
pub fn is_slug(slug: &str, max: usize) -> bool {
    !slug.is_empty()
        && slug.len() <= max
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Parses a client's slug, or says what is wrong with it.
pub fn parse(raw: &str, max: usize) -> Result<String, String> {
    let slug = raw.trim();
    if is_slug(slug, max) {
        Ok(slug.to_string())
    } else {
        Err(format!(
            "must be 1 to {max} lowercase letters and digits in words joined by single hyphens"
        ))
    }
}

/// The slug of a title: accents dropped where a plain letter exists (é → e, ß → ss), every
/// other run of characters a hyphen, cut at a word boundary to at most `max` characters.
/// `fallback` when nothing of the title survives (a title in a non-Latin script).
pub fn slugify(text: &str, max: usize, fallback: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_hyphen = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let plain = fold(c);
        if plain.is_empty() {
            pending_hyphen = !slug.is_empty();
            continue;
        }
        if pending_hyphen {
            slug.push('-');
            pending_hyphen = false;
        }
        slug.push_str(plain);
    }
    if slug.len() > max {
        let cut = &slug[..max];
        slug = match cut.rfind('-') {
            Some(i) if i > max / 2 => cut[..i].to_string(),
            _ => cut.trim_end_matches('-').to_string(),
        };
    }
    if slug.is_empty() {
        fallback.to_string()
    } else {
        slug
    }
}

/// A lowercase character as slug text: itself for ASCII letters and digits, a plain spelling
/// for common Latin letters with diacritics, "" for anything else.
fn fold(c: char) -> &'static str {
    const PLAIN: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("çćĉċč", "c"),
        ("ďđ", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ĥħ", "h"),
        ("ìíîïĩīĭįı", "i"),
        ("ĵ", "j"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("ŕŗř", "r"),
        ("śŝşš", "s"),
        ("ţťŧ", "t"),
        ("ùúûüũūŭůűų", "u"),
        ("ŵ", "w"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
        ("þ", "th"),
        ("ð", "d"),
    ];
    const ASCII: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        let i = ASCII.find(c).unwrap_or(0);
        return &ASCII[i..i + 1];
    }
    PLAIN
        .iter()
        .find(|(from, _)| from.contains(c))
        .map_or("", |(_, to)| to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_slugs() {
        assert_eq!(slugify("Hello, World!", 80, "x"), "hello-world");
        assert_eq!(
            slugify("  Crème brûlée — à la carte ", 80, "x"),
            "creme-brulee-a-la-carte"
        );
        assert_eq!(slugify("Straße 42", 80, "x"), "strasse-42");
        assert_eq!(slugify("日本語", 80, "article"), "article");
        assert_eq!(slugify("one two three four", 12, "x"), "one-two");
        assert!(is_slug(&slugify("a--b__c", 80, "x"), 80));
    }

    #[test]
    fn numbered_slugs_stay_within_the_limit() {
        assert_eq!(numbered("news", 1, 120), "news");
        assert_eq!(numbered("news", 3, 120), "news-3");
        let long = format!("{}-b", "a".repeat(117));
        let slug = numbered(&long, 12, 120);
        assert!(slug.len() <= 120, "{slug}");
        assert!(is_slug(&slug, 120), "{slug}");
    }

    #[test]
    fn client_slugs_are_checked() {
        assert_eq!(parse("my-post-2", 120).unwrap(), "my-post-2");
        for bad in ["", "My-Post", "a--b", "-a", "a-", "a b", "ä"] {
            assert!(parse(bad, 120).is_err(), "{bad} was accepted");
        }
        assert!(parse(&"a".repeat(121), 120).is_err());
    }
}
