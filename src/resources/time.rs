//! Timestamps as the original REST API wrote them: `YYYY-MM-DD HH:MM:SS.ffffff`
//! in UTC, with `9999-01-01 00:00:00.000000` standing for "never".

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

const FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";
/// What the original API sent for a timestamp that is not set.
pub const UNSET: &str = "9999-01-01 00:00:00.000000";
const PATTERN: &str = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$";

pub fn format(at: DateTime<Utc>) -> String {
    at.format(FORMAT).to_string()
}

/// Reads a timestamp in the format above. Fewer fractional digits (or none)
/// are accepted, since clients may have trimmed them; more than microseconds
/// are not, because PostgreSQL could not compare them exactly.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()?
        .and_utc();
    let whole_micros = at.timestamp_subsec_nanos() % 1_000 == 0;
    // Only years PostgreSQL can compare against.
    (whole_micros && (1..=9999).contains(&at.year())).then_some(at)
}

/// A timestamp field of a REST response; `None` is sent as [`UNSET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub Option<DateTime<Utc>>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(at) => serializer.serialize_str(&format(at)),
            None => serializer.serialize_str(UNSET),
        }
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PATTERN))
            .description(Some(
                "A time in UTC as `YYYY-MM-DD HH:MM:SS.ffffff`; \
                 `9999-01-01 00:00:00.000000` when it is not set.",
            ))
            .examples(["2022-02-01 00:00:00.000000"])
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_and_the_unset_sentinel() {
        let at = DateTime::from_timestamp_micros(1_667_404_628_368_093).unwrap();
        assert_eq!(format(at), "2022-11-02 15:57:08.368093");
        let whole = DateTime::from_timestamp(1_643_673_600, 0).unwrap();
        assert_eq!(format(whole), "2022-02-01 00:00:00.000000");
        assert_eq!(
            serde_json::to_value(Timestamp(None)).unwrap(),
            serde_json::json!(UNSET)
        );
        assert_eq!(
            serde_json::to_value(Timestamp(Some(at))).unwrap(),
            serde_json::json!("2022-11-02 15:57:08.368093")
        );
    }

    #[test]
    fn parses_what_it_formats_and_trimmed_fractions() {
        let at = DateTime::from_timestamp_micros(1_667_404_628_368_093).unwrap();
        assert_eq!(parse(&format(at)), Some(at));
        assert_eq!(
            parse("2022-02-01 00:00:00"),
            DateTime::from_timestamp(1_643_673_600, 0)
        );
        assert_eq!(
            parse("2022-02-01 00:00:00.5"),
            DateTime::from_timestamp(1_643_673_600, 500_000_000)
        );
        assert!(parse(UNSET).is_some());
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "2022-02-01",
            "2022-02-01T00:00:00.000000",
            "2022-02-01 00:00:00.000000Z",
            "2022-02-01 00:00:00.0000001",
            "2022-13-01 00:00:00.000000",
            "0000-01-01 00:00:00.000000",
            "garbage",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
