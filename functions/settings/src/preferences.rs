//! What a user's preference may be: a theme, a BCP 47 language tag, an IANA time zone, a date
//! format from the allowlist, and a free-form JSON object of bounded size. Each parses once,
//! on the way in, into a value that is valid to store.

use deadpool_postgres::GenericClient;
use serde_json::Value;

/// How the web app looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
    System,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Light, Theme::Dark, Theme::System];

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| "must be one of light, dark, system".into())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }
}

/// How dates are written. The allowlist keeps clients from storing patterns they cannot all
/// render.
pub const DATE_FORMATS: [&str; 6] = [
    "YYYY-MM-DD",
    "DD/MM/YYYY",
    "MM/DD/YYYY",
    "DD.MM.YYYY",
    "D MMM YYYY",
    "MMM D, YYYY",
];

pub const DEFAULT_DATE_FORMAT: &str = "YYYY-MM-DD";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateFormat(&'static str);

impl DateFormat {
    pub fn parse(raw: &str) -> Result<Self, String> {
        DATE_FORMATS
            .into_iter()
            .find(|f| *f == raw)
            .map(Self)
            .ok_or_else(|| format!("must be one of {}", DATE_FORMATS.join(", ")))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A well-formed BCP 47 (RFC 5646) language tag, of the shape preferences use: a 2–3 letter
/// language, then optionally a 4-letter script, a 2-letter or 3-digit region and variants.
/// Stored in the canonical case: `en`, `en-GB`, `zh-Hant-TW`, `es-419`, `de-CH-1996`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

const LANGUAGE_TAG_HINT: &str = "must be a BCP 47 language tag like en, en-GB or zh-Hant-TW";

/// RFC 5646 recommends supporting tags of at least 35 characters; nothing in this subset
/// needs more.
const MAX_LANGUAGE_TAG_LEN: usize = 35;

fn is_variant(subtag: &str) -> bool {
    let bytes = subtag.as_bytes();
    subtag.chars().all(|c| c.is_ascii_alphanumeric())
        && ((5..=8).contains(&bytes.len()) || (bytes.len() == 4 && bytes[0].is_ascii_digit()))
}

impl LanguageTag {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_LANGUAGE_TAG_LEN || !raw.is_ascii() {
            return Err(LANGUAGE_TAG_HINT.into());
        }
        let mut subtags = raw.split('-').peekable();
        let mut canonical = Vec::new();

        let language = subtags.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(LANGUAGE_TAG_HINT.into());
        }
        canonical.push(language.to_ascii_lowercase());

        if let Some(script) =
            subtags.next_if(|s| s.len() == 4 && s.chars().all(|c| c.is_ascii_alphabetic()))
        {
            let lower = script.to_ascii_lowercase();
            canonical.push(lower[..1].to_ascii_uppercase() + &lower[1..]);
        }

        if let Some(region) = subtags.next_if(|s| {
            (s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()))
                || (s.len() == 3 && s.chars().all(|c| c.is_ascii_digit()))
        }) {
            canonical.push(region.to_ascii_uppercase());
        }

        let first_variant = canonical.len();
        for variant in subtags {
            if !is_variant(variant) {
                return Err(LANGUAGE_TAG_HINT.into());
            }
            let variant = variant.to_ascii_lowercase();
            if canonical[first_variant..].contains(&variant) {
                return Err("must not repeat a variant subtag".into());
            }
            canonical.push(variant);
        }
        Ok(Self(canonical.join("-")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `UTC`) as the
/// database's time zone catalogue spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName(String);

const TIME_ZONE_HINT: &str = "must be an IANA time zone name like Europe/Berlin or UTC";

impl TimeZoneName {
    /// The cheap syntactic check; [`TimeZoneName::resolve`] then asks the catalogue.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let well_formed = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
            && name.split('/').all(|part| !part.is_empty())
            // Aliases of the zone files themselves, not zones.
            && !name.starts_with("posix/")
            && !name.starts_with("right/")
            && !["posixrules", "localtime", "Factory"].contains(&name);
        if well_formed {
            Ok(Self(name.to_string()))
        } else {
            Err(TIME_ZONE_HINT.into())
        }
    }

    /// The catalogue's spelling of this zone (`europe/berlin` → `Europe/Berlin`), or the
    /// field error when there is no such zone (`Mars/Phobos`).
    pub async fn resolve(
        self,
        db: &impl GenericClient,
    ) -> Result<Result<Self, String>, tokio_postgres::Error> {
        let row = db
            .query_opt(
                "SELECT name FROM pg_timezone_names
                 WHERE lower(name) = lower($1) AND name NOT LIKE 'posix/%' AND name NOT LIKE 'right/%'
                 ORDER BY name = $1 DESC, name
                 LIMIT 1",
                &[&self.0],
            )
            .await?;
        Ok(row
            .map(|r| Self(r.get(0)))
            .ok_or_else(|| "is not a time zone the IANA database knows".into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client's own preferences: any JSON object up to 16 KiB, stored as given.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsJson(Value);

pub const MAX_SETTINGS_JSON_BYTES: usize = 16 * 1024;

impl SettingsJson {
    pub fn parse(value: Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err("must be a JSON object".into());
        }
        let size = serde_json::to_vec(&value)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > MAX_SETTINGS_JSON_BYTES {
            return Err(format!(
                "must be at most {MAX_SETTINGS_JSON_BYTES} bytes as JSON (this is {size})"
            ));
        }
        Ok(Self(value))
    }

    pub fn into_value(self) -> Value {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_checked_and_canonically_cased() {
        for (raw, canonical) in [
            ("en", "en"),
            ("EN-gb", "en-GB"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("sr-Latn", "sr-Latn"),
            ("es-419", "es-419"),
            ("de-CH-1996", "de-CH-1996"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
            ("ast", "ast"),
            (" fr-CA ", "fr-CA"),
        ] {
            assert_eq!(
                LanguageTag::parse(raw).unwrap().as_str(),
                canonical,
                "{raw}"
            );
        }
        for bad in [
            "",
            "e",
            "english!",
            "english",
            "en-",
            "-en",
            "en--GB",
            "en_GB",
            "en-GBR",
            "en-12",
            "en-Latn-Latn",
            "de-1996-1996",
            "zh-TW-Hant",
            "en-abc",
            "en-GB-x",
            "fr-ça",
            "a-very-long-but-otherwise-plausible-tag-here",
        ] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn time_zone_names_pass_a_syntactic_check_first() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(TimeZoneName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            TimeZoneName::parse(" Europe/Berlin ").unwrap().as_str(),
            "Europe/Berlin"
        );
        for bad in [
            "",
            "Europe//Berlin",
            "/etc/passwd",
            "../secret",
            "posix/Europe/Berlin",
            "localtime",
            "Europe/Berlin;DROP",
        ] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_json_is_an_object_of_bounded_size() {
        assert!(SettingsJson::parse(serde_json::json!({"a": 1})).is_ok());
        assert!(SettingsJson::parse(serde_json::json!([1])).is_err());
        assert!(SettingsJson::parse(serde_json::json!("x")).is_err());
        let big = "x".repeat(MAX_SETTINGS_JSON_BYTES);
        assert!(SettingsJson::parse(serde_json::json!({ "big": big })).is_err());
    }

    #[test]
    fn themes_and_date_formats_come_from_their_lists() {
        assert_eq!(Theme::parse("dark").unwrap(), Theme::Dark);
        assert!(Theme::parse("Dark").is_err());
        assert_eq!(
            DateFormat::parse("DD.MM.YYYY").unwrap().as_str(),
            "DD.MM.YYYY"
        );
        assert!(DateFormat::parse("yyyy-mm-dd").is_err());
    }
}
