//! Parsing inputs into domain types, collecting every invalid field before answering.
//!
//! Handlers parse the whole body with one [`Validator`], so a client learns about all of its
//! mistakes in one 422 instead of one per round trip.

use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `field` and returns the value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// A field a client may leave out, clear or set (see `extract::nullable`): absent stays
    /// `None` (unchanged), `null` is `Some(None)` (cleared), a value is parsed with `parse`
    /// and any error recorded under `field`.
    pub fn change<T, P>(
        &mut self,
        field: &str,
        raw: Option<Option<P>>,
        parse: impl FnOnce(P) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match raw {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => self.check(field, parse(raw)).map(Some),
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when nothing was recorded; otherwise the 422 naming every field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// An email address, trimmed and lower-cased so that one mailbox has one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must be an email address like name@example.com".into());
        };
        let bad_char =
            |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
        let valid = !local.is_empty()
            && local.len() <= 64
            && !local.chars().any(bad_char)
            && !local.starts_with('.')
            && !local.ends_with('.')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if valid {
            Ok(Self(email))
        } else {
            Err("must be an email address like name@example.com".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A short human-readable text: trimmed, non-empty, at most `max` characters, no control
/// characters.
pub fn short_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_string())
}

/// A longer free text (a bio, a description): trimmed, at most `max` characters; line breaks
/// and tabs allowed, other control characters not. Empty means "none".
pub fn long_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("must not contain control characters".into());
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// An absolute `https://` (or `http://`) URL with a host, at most 2048 characters.
pub fn http_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http(s) URL like https://example.com/a.png")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let valid = !host.is_empty()
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"`".contains(c));
    if valid {
        Ok(url.to_string())
    } else {
        Err("must be an http(s) URL like https://example.com/a.png".into())
    }
}

/// A telephone number as people write it: digits with spaces, dashes, dots, brackets and a
/// leading `+`; 3 to 20 digits.
pub fn phone(raw: &str) -> Result<String, String> {
    let phone = raw.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || " -.()".contains(c) || (c == '+' && i == 0));
    if allowed && (3..=20).contains(&digits) && phone.len() <= 40 {
        Ok(phone.to_string())
    } else {
        Err("must be a phone number like +44 20 7946 0958".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@exa_mple.com",
            "ada@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn urls_phones_and_long_texts() {
        assert!(http_url("https://cdn.example.com/a.png").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x",
            "https://",
            "https://a b",
            "//x",
        ] {
            assert!(http_url(bad).is_err(), "{bad} should be rejected");
        }
        assert!(phone("+44 (20) 7946-0958").is_ok());
        for bad in ["12", "call me", "44+1234", "1".repeat(21).as_str()] {
            assert!(phone(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            long_text("  two\nlines ", 20).unwrap().as_deref(),
            Some("two\nlines")
        );
        assert_eq!(long_text("   ", 20).unwrap(), None);
        assert!(long_text("bell\u{7}", 20).is_err());
    }

    #[test]
    fn a_validator_reports_every_field() {
        let mut v = Validator::new();
        v.check("a", short_text("", 10));
        v.check("b", short_text("fine", 10));
        v.check("c", short_text("too long here", 3));
        let ApiError::Validation(errors) = v.finish().unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c"]);
    }
}
