//! Timestamps written exactly as chrono's serde writes a `DateTime<Utc>` (RFC 3339, `Z`, and 0, 3,
//! 6 or 9 fractional digits, the fewest that are exact), without chrono's `Display` machinery.
//!
//! Every logged attempt carries three timestamps, and chrono's serialisation goes through
//! `collect_str`, which escapes its output one `write_char` at a time: a fifth of the event log's
//! cost per attempt under load (callgrind). Readers are unchanged; they parse with chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "crate::timestamp::serialize")]` for a `DateTime<Utc>` field.
///
/// # Errors
/// The serializer's own.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    match format(at) {
        Some(text) => serializer.serialize_str(text.as_str()),
        // Years outside 0000–9999 and leap seconds: chrono's own form, however slow.
        None => serde::Serialize::serialize(at, serializer),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`; `None` where chrono's form differs from this
/// shape (a year outside 0000–9999, a leap second).
fn format(at: &DateTime<Utc>) -> Option<Text> {
    let (date, time) = (at.date_naive(), at.time());
    let year = u32::try_from(date.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut text = Text::default();
    text.digits(year, 4);
    text.push(b'-');
    text.digits(date.month(), 2);
    text.push(b'-');
    text.digits(date.day(), 2);
    text.push(b'T');
    text.digits(time.hour(), 2);
    text.push(b':');
    text.digits(time.minute(), 2);
    text.push(b':');
    text.digits(time.second(), 2);
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((value, width)) = fraction {
        text.push(b'.');
        text.digits(value, width);
    }
    text.push(b'Z');
    Some(text)
}

/// The longest form is 30 bytes (`YYYY-MM-DDTHH:MM:SS.fffffffffZ`).
#[derive(Default)]
struct Text {
    bytes: [u8; 30],
    len: usize,
}

impl Text {
    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, value: u32, width: u32) {
        for place in (0..width).rev() {
            let digit = value / 10_u32.pow(place) % 10;
            // Below 10: the conversion never fails.
            self.push(b'0' + u8::try_from(digit).unwrap_or(0));
        }
    }

    fn as_str(&self) -> &str {
        // ASCII digits and separators only.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    fn same_as_chrono(at: DateTime<Utc>) {
        assert_eq!(
            serde_json::to_string(&Ours(at)).unwrap(),
            serde_json::to_string(&at).unwrap(),
            "{at:?}"
        );
    }

    #[test]
    fn each_fraction_width_and_the_edges_match_chrono() {
        for nanos in [
            0,
            1,
            999_999_999,
            5_000_000,
            120_000_000,
            7_000,
            123_456_000,
            100,
        ] {
            same_as_chrono(Utc.timestamp_opt(1_795_000_000, nanos).unwrap());
        }
        same_as_chrono(Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap());
        same_as_chrono(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap());
        // Outside the fast form: chrono's own text.
        same_as_chrono(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
        same_as_chrono(Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap());
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        same_as_chrono(leap);
    }

    proptest! {
        #[test]
        fn any_instant_is_written_as_chrono_writes_it(
            seconds in -62_167_219_200_i64..253_402_300_800,
            nanos in prop_oneof![
                0_u32..1_000_000_000,
                (0_u32..1000).prop_map(|ms| ms * 1_000_000),
                (0_u32..1_000_000).prop_map(|us| us * 1_000),
            ],
        ) {
            let at = Utc.timestamp_opt(seconds, nanos).unwrap();
            prop_assert_eq!(
                serde_json::to_string(&Ours(at)).unwrap(),
                serde_json::to_string(&at).unwrap()
            );
        }
    }
}
