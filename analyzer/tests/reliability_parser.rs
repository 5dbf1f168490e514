//! Item 10 (the property test): the analyzer's line parser against serde_json on random
//! lines. Random records (any strings, nested data, extra keys, the contract's key order
//! or sorted keys, timestamps in several RFC 3339 spellings) parse to what serde_json reads
//! from the same line; a line with a contract key of the wrong type, or cut short, is
//! refused, as serde_json's reading says it must be; the fast paths agree with the full
//! parse (`check_line`), also on timing records written by the encoder. Cases:
//! `PROPTEST_CASES` (default 2000).

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tracekit::exporters::{CodeContext, Level, Record, RecordEncoder};
use tracekit_analyzer::fuzzing::{check_line, parse_line};
use tracekit_analyzer::{SkipReason, Timestamp};

const STRING_KEYS: [&str; 9] = [
    "level",
    "component",
    "logger",
    "request_id",
    "user_id",
    "session_id",
    "trace_id",
    "span_id",
    "message",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A timestamp in one of the spellings the parser takes, and its instant.
fn timestamp() -> impl Strategy<Value = (String, i64)> {
    // 1900..2200, whole microseconds.
    (-2_208_988_800_000_000i64..7_258_118_400_000_000, 0..4usize).prop_map(|(micros, form)| {
        let contract = Timestamp::from_micros(micros).to_string();
        match form {
            0 => (contract, micros),
            // Millisecond precision, no zone (UTC).
            1 => {
                let ms = micros.div_euclid(1000) * 1000;
                let s = Timestamp::from_micros(ms).to_string();
                (s[..23].to_owned(), ms)
            }
            // An offset: the same instant written two hours ahead.
            2 => {
                let ahead = Timestamp::from_micros(micros + 7_200_000_000).to_string();
                (format!("{}+02:00", &ahead[..26]), micros)
            }
            // Seconds only, a space for the T.
            _ => {
                let s = micros.div_euclid(1_000_000) * 1_000_000;
                let t = Timestamp::from_micros(s).to_string().replacen('T', " ", 1);
                (format!("{}Z", &t[..19]), s)
            }
        }
    })
}

#[derive(Debug, Clone)]
struct Line {
    text: String,
    micros: i64,
}

/// A record: the timestamp, some of the string keys, maybe data/context/span/exception,
/// maybe unknown keys; in the contract's order or sorted.
fn line() -> impl Strategy<Value = Line> {
    (
        timestamp(),
        prop::collection::vec(proptest::option::of(".*"), STRING_KEYS.len()),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of((
            proptest::option::of(".*"),
            proptest::option::of(".*"),
            proptest::option::of(".*"),
        )),
        prop::collection::vec(("x_[a-z]{1,6}", json_value()), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |((ts, micros), strings, data, context, span, exception, extra, sorted)| {
                let mut kv: Vec<(String, Value)> = vec![("timestamp".into(), json!(ts))];
                for (k, v) in STRING_KEYS.iter().zip(strings) {
                    if let Some(v) = v {
                        kv.push(((*k).into(), json!(v)));
                    }
                }
                for (k, v) in [("data", data), ("context", context), ("span", span)] {
                    if let Some(v) = v {
                        kv.push((k.into(), v));
                    }
                }
                if let Some((t, m, tb)) = exception {
                    let mut e = Map::new();
                    for (k, v) in [("type", t), ("message", m), ("traceback", tb)] {
                        if let Some(v) = v {
                            e.insert(k.into(), json!(v));
                        }
                    }
                    kv.push(("exception".into(), Value::Object(e)));
                }
                kv.extend(extra);
                if sorted {
                    kv.sort_by(|a, b| a.0.cmp(&b.0));
                }
                let mut seen = std::collections::HashSet::new();
                kv.retain(|(k, _)| seen.insert(k.clone()));
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{}", json!(k), v))
                    .collect();
                Line {
                    text: format!("{{{}}}", parts.join(",")),
                    micros,
                }
            },
        )
}

fn string_of(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_line_parser_reads_what_serde_json_reads(line in line()) {
        let text = &line.text;
        let obj: Map<String, Value> = serde_json::from_str(text).unwrap();
        let entry = parse_line(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(entry.timestamp.micros(), line.micros, "{}", text);
        prop_assert_eq!(entry.level, string_of(&obj, "level").unwrap_or_default());
        prop_assert_eq!(entry.component, string_of(&obj, "component").unwrap_or_default());
        prop_assert_eq!(entry.message, string_of(&obj, "message").unwrap_or_default());
        prop_assert_eq!(entry.logger, string_of(&obj, "logger"));
        prop_assert_eq!(entry.request_id, string_of(&obj, "request_id"));
        prop_assert_eq!(entry.user_id, string_of(&obj, "user_id"));
        prop_assert_eq!(entry.session_id, string_of(&obj, "session_id"));
        prop_assert_eq!(entry.trace_id, string_of(&obj, "trace_id"));
        prop_assert_eq!(entry.span_id, string_of(&obj, "span_id"));
        // `null` reads as absent.
        let object = |k: &str| obj.get(k).filter(|v| !v.is_null()).cloned();
        prop_assert_eq!(entry.data, object("data"));
        prop_assert_eq!(entry.context, object("context"));
        prop_assert_eq!(entry.span, object("span"));
        let exc = obj.get("exception").and_then(Value::as_object);
        prop_assert_eq!(entry.exception.is_some(), exc.is_some());
        if let (Some(got), Some(want)) = (&entry.exception, exc) {
            prop_assert_eq!(&got.kind, &string_of(want, "type"));
            prop_assert_eq!(&got.message, &string_of(want, "message"));
            prop_assert_eq!(&got.traceback, &string_of(want, "traceback"));
        }
        check_line(text.as_bytes());
    }

    /// Timing records as the encoder writes them (any message, any data around the duration,
    /// any function or none): the analyzer's fast timing reader agrees with the full parse
    /// (`check_line`), and the full parse reads back the duration that went in.
    #[test]
    fn encoder_timing_records_read_back(
        message in ".*",
        function in proptest::option::of(".*"),
        ms in prop_oneof![
            (-1_000_000i64..1_000_000_000).prop_map(|n| n as f64 / 100.0),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ],
        data in prop::collection::vec(("[a-z_]{1,12}", json_value()), 0..4),
    ) {
        let mut map: Map<String, Value> = data.into_iter().collect();
        map.insert("duration_ms".into(), json!(ms));
        let context = CodeContext {
            function: function.as_deref(),
            line: Some(7),
            ..CodeContext::default()
        };
        let record = Record::new(Level::INFO, "ranking", &message)
            .data(&map)
            .context(context)
            .timing(true);
        let mut out = Vec::new();
        RecordEncoder::default().encode(&record, &mut out);
        let line = out.strip_suffix(b"\n").unwrap();
        check_line(line);
        let entry = parse_line(line)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(line))))?;
        let data = entry.data.unwrap_or_default();
        prop_assert_eq!(data["duration_ms"].as_f64(), Some(ms));
    }

    #[test]
    fn a_contract_key_of_the_wrong_type_is_refused(line in line(), key in 0..STRING_KEYS.len(), n in any::<i32>()) {
        let mut obj: Map<String, Value> = serde_json::from_str(&line.text).unwrap();
        obj.insert(STRING_KEYS[key].into(), json!(n));
        let text = Value::Object(obj).to_string();
        prop_assert_eq!(parse_line(text.as_bytes()).err(), Some(SkipReason::Malformed), "{}", text);
        check_line(text.as_bytes());
    }

    #[test]
    fn a_line_cut_short_is_refused_like_serde_json_refuses_it(line in line(), cut in any::<prop::sample::Index>()) {
        let bytes = line.text.as_bytes();
        let cut = cut.index(bytes.len());
        let short = &bytes[..cut];
        prop_assert!(serde_json::from_slice::<Value>(short).is_err());
        let err = parse_line(short).err();
        prop_assert!(
            matches!(err, Some(SkipReason::Malformed | SkipReason::InvalidUtf8)),
            "{:?}: {}", err, String::from_utf8_lossy(short)
        );
        check_line(short);
    }
}
