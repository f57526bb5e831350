//! How the API writes a time: RFC 3339 in UTC, `2026-01-31T09:30:00.123456Z`, the same text
//! chrono's `Serialize` gives (seconds, then 3, 6 or 9 fraction digits when there are any).
//!
//! chrono writes a time through `fmt::Display` piece by piece, and serde_json escapes each piece
//! on its own: about a dozen formatter calls for one time. A list page of articles holds 60 of
//! them (BENCHMARKS.md, *Times written once*). Here the digits are written into a stack buffer
//! and handed to the serializer as one string. Use it on response fields:
//!
//! ```ignore
//! #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
//! pub created_at: DateTime<Utc>,
//! #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
//! pub published_at: Option<DateTime<Utc>>,
//! ```

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: the longest text [`write`] produces.
const MAX_LEN: usize = 30;

/// Writes `t` as chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, true)` does, for the years
/// 0000–9999 and times without a leap second; answers `None` for the others.
fn write(t: &DateTime<Utc>, out: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    fn digits(out: &mut [u8], value: u32) {
        let mut value = value;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    digits(&mut out[0..4], year as u32);
    out[4] = b'-';
    digits(&mut out[5..7], t.month());
    out[7] = b'-';
    digits(&mut out[8..10], t.day());
    out[10] = b'T';
    digits(&mut out[11..13], t.hour());
    out[13] = b':';
    digits(&mut out[14..16], t.minute());
    out[16] = b':';
    digits(&mut out[17..19], t.second());
    let mut len = 19;
    let (fraction, width) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if width > 0 {
        out[len] = b'.';
        digits(&mut out[len + 1..len + 1 + width], fraction);
        len += 1 + width;
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// `serialize_with` for a `DateTime<Utc>` field.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; MAX_LEN];
    match write(t, &mut buffer) {
        // Only ASCII digits and separators were written.
        Some(len) => match std::str::from_utf8(&buffer[..len]) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => t.serialize(serializer),
        },
        None => t.serialize(serializer),
    }
}

/// `serialize_with` for an `Option<DateTime<Utc>>` field: `null` when absent.
pub fn serialize_option<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, SecondsFormat, TimeZone};

    use super::*;

    #[derive(Serialize)]
    struct Fast {
        #[serde(serialize_with = "serialize")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "serialize_option")]
        o: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chrono {
        t: DateTime<Utc>,
        o: Option<DateTime<Utc>>,
    }

    fn same_as_chrono(t: DateTime<Utc>) {
        for o in [None, Some(t)] {
            let fast = serde_json::to_string(&Fast { t, o }).unwrap();
            let chrono = serde_json::to_string(&Chrono { t, o }).unwrap();
            assert_eq!(fast, chrono, "for {t:?}");
        }
        assert_eq!(
            serde_json::to_value(Fast { t, o: None }).unwrap()["t"],
            t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        );
    }

    #[test]
    fn writes_what_chrono_writes() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        for (h, m, s, nanos) in [
            (0, 0, 0, 0),
            (9, 30, 5, 0),
            (23, 59, 59, 123_000_000),
            (12, 1, 2, 123_456_000),
            (12, 1, 2, 123_456_789),
            (12, 1, 2, 1_000),
            (12, 1, 2, 1),
            (12, 1, 2, 10_000_000),
            (12, 1, 2, 999_999_999),
        ] {
            let naive = day.and_hms_nano_opt(h, m, s, nanos).unwrap();
            same_as_chrono(Utc.from_utc_datetime(&naive));
        }
        for (y, mo, d) in [
            (1, 1, 1),
            (999, 12, 31),
            (1970, 1, 1),
            (2000, 2, 29),
            (9999, 12, 31),
        ] {
            let naive = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_micro_opt(7, 8, 9, 10)
                .unwrap();
            same_as_chrono(Utc.from_utc_datetime(&naive));
        }
        // Every microsecond count PostgreSQL can hand back, spread over a day.
        let start = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
        for i in 0..20_000i64 {
            same_as_chrono(start + chrono::Duration::microseconds(i * 4_320_001 + i % 1_000));
        }
    }

    #[test]
    fn years_outside_four_digits_and_leap_seconds_fall_back_to_chrono() {
        let far = NaiveDate::from_ymd_opt(12_345, 6, 7)
            .unwrap()
            .and_hms_opt(1, 2, 3)
            .unwrap();
        let before = NaiveDate::from_ymd_opt(-44, 3, 15)
            .unwrap()
            .and_hms_opt(1, 2, 3)
            .unwrap();
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap();
        for naive in [far, before, leap] {
            let t = Utc.from_utc_datetime(&naive);
            let mut buffer = [0u8; MAX_LEN];
            assert_eq!(write(&t, &mut buffer), None, "{t:?}");
            same_as_chrono(t);
        }
    }
}
