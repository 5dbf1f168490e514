//! Property test of the record contract: any record encodes to exactly one `\n`-terminated
//! line without raw control bytes, which parses back to the expected content (built here
//! independently), with top-level keys in contract order and a well-formed timestamp.

mod writer_common;

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId};
use proptest::prelude::*;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{json, Map, Value as J};
use tracekit_exporters::{
    CodeContext, Exception, Level, Record, RecordEncoder, RecordHead, SpanInfo, SpanStatus, Value,
};
use writer_common::{from_micros, rfc3339};

const CONTRACT_ORDER: [&str; 14] = [
    "timestamp",
    "level",
    "component",
    "logger",
    "request_id",
    "user_id",
    "session_id",
    "trace_id",
    "span_id",
    "message",
    "data",
    "context",
    "exception",
    "span",
];

const NEEDLES: [&str; 4] = ["password", "token", "secret", "api_key"];

/// An owned value; [`borrowed`] turns it into the crate's borrowed [`Value`].
#[derive(Clone, Debug)]
enum V {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Display(String),
    Debug(String),
    List(Vec<V>),
    Map(Vec<(String, V)>),
    Json(J),
}

// ---------------------------------------------------------------------------------------
// Strategies

/// Characters that stress the escaper, mixed with ordinary and arbitrary ones.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
        3 => prop::sample::select(vec![
            '\0', '\u{1}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1b}', '\u{1f}', ' ',
            '"', '\\', '/', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}', '\u{9f}', '\u{a0}', '\u{2027}',
            '\u{2028}', '\u{2029}', '\u{202a}', '\u{fffd}', '\u{feff}', 'é', '你', '😀',
        ]),
    ]
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(hostile_char(), 0..24).prop_map(String::from_iter),
        1 => prop::collection::vec(hostile_char(), 0..8)
            .prop_map(|v| format!("\u{1b}[31m{}\u{1b}[0m\r\n", String::from_iter(v))),
        1 => Just(String::new()),
    ]
}

/// A key: random, or one that contains a redaction needle in random ASCII case.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => hostile_string(),
        2 => "[a-z_]{1,10}",
        2 => (
            "[a-zA-Z_]{0,4}",
            prop::sample::select(NEEDLES.to_vec()),
            prop::collection::vec(any::<bool>(), 8),
            "[a-zA-Z_0-9]{0,4}",
        )
            .prop_map(|(pre, needle, upper, post)| {
                let cased: String = needle
                    .chars()
                    .zip(upper.iter().cycle())
                    .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                    .collect();
                format!("{pre}{cased}{post}")
            }),
    ]
}

fn json_leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        hostile_string().prop_map(J::String),
    ]
}

fn json_value() -> impl Strategy<Value = J> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| J::Object(kv.into_iter().collect::<Map<String, J>>())),
        ]
    })
}

fn leaf() -> impl Strategy<Value = V> {
    prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::I64),
        any::<u64>().prop_map(V::U64),
        any::<i128>().prop_map(V::I128),
        any::<u128>().prop_map(V::U128),
        // Any f64, NaN and the infinities included.
        any::<f64>().prop_map(V::F64),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0)
        ]
        .prop_map(V::F64),
        hostile_string().prop_map(V::Str),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(V::Bytes),
        prop::collection::vec(
            prop::sample::select(vec![
                0xffu8, 0xfe, 0xc0, 0xe2, 0x80, 0xa8, b'a', 0, b'\n', 0xf0
            ]),
            0..12
        )
        .prop_map(V::Bytes),
        hostile_string().prop_map(V::Display),
        hostile_string().prop_map(V::Debug),
        json_value().prop_map(V::Json),
    ]
}

fn value() -> impl Strategy<Value = V> {
    leaf().prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(V::List),
            prop::collection::vec((key(), inner), 0..5).prop_map(V::Map),
        ]
    })
}

#[derive(Clone, Debug)]
struct OwnedSpan {
    name: String,
    kind: String,
    parent: Option<u64>,
    start: i64,
    end: i64,
    status: u8,
    status_message: String,
    attributes: Option<Vec<(String, V)>>,
}

/// function, file, line, thread, process.
type OwnedContext = (
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u64>,
    Option<u32>,
);

#[derive(Clone, Debug)]
struct OwnedRecord {
    timestamp: i64,
    level: Level,
    component: (String, String),
    logger: Option<String>,
    request_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    trace: Option<(u128, u64)>,
    message: String,
    data: Option<Vec<(String, V)>>,
    context: Option<OwnedContext>,
    exception: Option<(String, String, Option<String>)>,
    span: Option<OwnedSpan>,
}

/// Microseconds from 1900 to 2200.
fn micros() -> impl Strategy<Value = i64> {
    -2_208_988_800_000_000i64..7_258_118_400_000_000i64
}

/// (raw component, expected normalised component).
fn component() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,7}(_[a-z0-9]{1,5})?".prop_map(|c| (c.clone(), c)),
        1 => prop::sample::select(vec![
            ("", "app"),
            ("Ranking", "ranking"),
            ("CandidateGenerator", "candidate_generator"),
            ("../x", "x"),
            ("/etc", "etc"),
            ("a\0b", "a_b"),
            ("..", "app"),
            ("errors", "errors_component"),
            ("ab-test", "ab_test"),
        ])
        .prop_map(|(a, b)| (a.to_owned(), b.to_owned())),
    ]
}

fn fields() -> impl Strategy<Value = Vec<(String, V)>> {
    prop::collection::vec((key(), value()), 0..6)
}

fn span() -> impl Strategy<Value = OwnedSpan> {
    (
        hostile_string(),
        prop::sample::select(vec!["internal", "server", "client", "producer", "consumer"]),
        prop::option::of(prop_oneof![Just(0u64), any::<u64>()]),
        micros(),
        prop_oneof![0i64..10_000_000, -1_000i64..0, 0i64..100_000_000_000],
        0u8..3,
        hostile_string(),
        prop::option::of(fields()),
    )
        .prop_map(
            |(name, kind, parent, start, dur, status, status_message, attributes)| OwnedSpan {
                name,
                kind: kind.to_owned(),
                parent,
                start,
                end: start + dur,
                status,
                status_message,
                attributes,
            },
        )
}

fn record() -> impl Strategy<Value = OwnedRecord> {
    let ids = (
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of((
            prop_oneof![Just(0u128), any::<u128>()],
            prop_oneof![Just(0u64), any::<u64>()],
        )),
    );
    let rest = (
        hostile_string(),
        prop::option::of(fields()),
        prop::option::of((
            prop::option::of(hostile_string()),
            prop::option::of(hostile_string()),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u32>()),
        )),
        prop::option::of((
            hostile_string(),
            hostile_string(),
            prop::option::of(hostile_string()),
        )),
        prop::option::of(span()),
    );
    (
        micros(),
        prop::sample::select(Level::ALL.to_vec()),
        component(),
        ids,
        rest,
    )
        .prop_map(
            |(
                timestamp,
                level,
                component,
                (logger, request_id, user_id, session_id, trace),
                (message, data, context, exception, span),
            )| OwnedRecord {
                timestamp,
                level,
                component,
                logger,
                request_id,
                user_id,
                session_id,
                trace,
                message,
                data,
                context,
                exception,
                span,
            },
        )
}

// ---------------------------------------------------------------------------------------
// Owned → borrowed (the crate's `Value` borrows its lists and maps: leak them, it is a test)

fn borrowed(v: &V) -> Value<'_> {
    match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::I64(n) => Value::I64(*n),
        V::U64(n) => Value::U64(*n),
        V::I128(n) => Value::I128(*n),
        V::U128(n) => Value::U128(*n),
        V::F64(n) => Value::F64(*n),
        V::Str(s) => Value::Str(s),
        V::Bytes(b) => Value::Bytes(b),
        V::Display(s) => Value::Display(s as &dyn fmt::Display),
        V::Debug(s) => Value::Debug(s as &dyn fmt::Debug),
        V::List(items) => {
            let items: Vec<Value<'_>> = items.iter().map(borrowed).collect();
            Value::List(Box::leak(items.into_boxed_slice()))
        }
        V::Map(kv) => Value::Map(Box::leak(borrowed_fields(kv).into_boxed_slice())),
        V::Json(j) => Value::Json(j),
    }
}

fn borrowed_fields(kv: &[(String, V)]) -> Vec<(&str, Value<'_>)> {
    kv.iter().map(|(k, v)| (k.as_str(), borrowed(v))).collect()
}

// ---------------------------------------------------------------------------------------
// The expected JSON, built without the crate

fn redacted(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    NEEDLES.iter().any(|n| k.contains(n))
}

fn int_json(n: i128) -> J {
    if let Ok(v) = i64::try_from(n) {
        json!(v)
    } else if let Ok(v) = u64::try_from(n) {
        json!(v)
    } else {
        // Beyond 64 bits serde_json reads the number back as a float.
        json!(n as f64)
    }
}

fn expected_value(v: &V) -> J {
    match v {
        V::Null => J::Null,
        V::Bool(b) => J::Bool(*b),
        V::I64(n) => json!(n),
        V::U64(n) => json!(n),
        V::I128(n) => int_json(*n),
        V::U128(n) => match i128::try_from(*n) {
            Ok(n) => int_json(n),
            Err(_) => json!(*n as f64),
        },
        V::F64(f) if f.is_finite() => json!(f),
        V::F64(_) => J::Null,
        V::Str(s) | V::Display(s) => J::String(s.clone()),
        V::Debug(s) => J::String(format!("{s:?}")),
        V::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        V::List(items) => J::Array(items.iter().map(expected_value).collect()),
        V::Map(kv) => J::Object(expected_fields(kv)),
        V::Json(j) => redact_json(j),
    }
}

fn expected_fields(kv: &[(String, V)]) -> Map<String, J> {
    let mut m = Map::new();
    for (k, v) in kv {
        let v = if redacted(k) {
            J::String("[REDACTED]".into())
        } else {
            expected_value(v)
        };
        m.insert(k.clone(), v);
    }
    m
}

fn redact_json(j: &J) -> J {
    match j {
        J::Array(a) => J::Array(a.iter().map(redact_json).collect()),
        J::Object(o) => J::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if redacted(k) {
                        J::String("[REDACTED]".into())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn expected_record(r: &OwnedRecord) -> (Map<String, J>, Vec<&'static str>) {
    let mut m = Map::new();
    let mut keys = Vec::new();
    let mut put = |m: &mut Map<String, J>, k: &'static str, v: J| {
        keys.push(k);
        m.insert(k.to_owned(), v);
    };
    put(&mut m, "timestamp", J::String(rfc3339(r.timestamp)));
    put(&mut m, "level", J::String(level_name(r.level).into()));
    put(&mut m, "component", J::String(r.component.1.clone()));
    for (k, v) in [
        ("logger", &r.logger),
        ("request_id", &r.request_id),
        ("user_id", &r.user_id),
        ("session_id", &r.session_id),
    ] {
        if let Some(v) = v {
            put(&mut m, k, J::String(v.clone()));
        }
    }
    if let Some((t, s)) = r.trace {
        if t != 0 {
            put(&mut m, "trace_id", J::String(format!("{t:032x}")));
        }
        if s != 0 {
            put(&mut m, "span_id", J::String(format!("{s:016x}")));
        }
    }
    put(&mut m, "message", J::String(r.message.clone()));
    if let Some(data) = &r.data {
        if !data.is_empty() {
            put(&mut m, "data", J::Object(expected_fields(data)));
        }
    }
    if let Some((function, file, line, thread, process)) = &r.context {
        let mut c = Map::new();
        if let Some(f) = function {
            c.insert("function".into(), json!(f));
        }
        if let Some(f) = file {
            c.insert("file".into(), json!(f));
        }
        if let Some(l) = line {
            c.insert("line".into(), json!(l));
        }
        if let Some(t) = thread {
            c.insert("thread".into(), json!(t));
        }
        if let Some(p) = process {
            c.insert("process".into(), json!(p));
        }
        if !c.is_empty() {
            put(&mut m, "context", J::Object(c));
        }
    }
    if let Some((kind, message, traceback)) = &r.exception {
        let mut e = Map::new();
        e.insert("type".into(), json!(kind));
        e.insert("message".into(), json!(message));
        if let Some(tb) = traceback {
            e.insert("traceback".into(), json!(tb));
        }
        put(&mut m, "exception", J::Object(e));
    }
    if let Some(s) = &r.span {
        let mut o = Map::new();
        o.insert("name".into(), json!(s.name));
        o.insert("kind".into(), json!(s.kind));
        if let Some(p) = s.parent.filter(|p| *p != 0) {
            o.insert("parent_span_id".into(), json!(format!("{p:016x}")));
        }
        o.insert("start".into(), json!(rfc3339(s.start)));
        o.insert("end".into(), json!(rfc3339(s.end)));
        let micros = (s.end - s.start).max(0);
        o.insert("duration_ms".into(), json!(micros as f64 / 1000.0));
        match s.status {
            0 => {
                o.insert("status".into(), json!("unset"));
            }
            1 => {
                o.insert("status".into(), json!("ok"));
            }
            _ => {
                o.insert("status".into(), json!("error"));
                if !s.status_message.is_empty() {
                    o.insert("status_message".into(), json!(s.status_message));
                }
            }
        }
        if let Some(a) = &s.attributes {
            if !a.is_empty() {
                o.insert("attributes".into(), J::Object(expected_fields(a)));
            }
        }
        put(&mut m, "span", J::Object(o));
    }
    (m, keys)
}

fn level_name(l: Level) -> &'static str {
    // Independent of `Level::as_str`: by severity order.
    let i = Level::ALL.iter().position(|x| *x == l).unwrap();
    ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"][i]
}

/// JSON equality, floats compared to a relative 1e-15 (serde_json's default float parser
/// may be one ulp off).
fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs()).max(1e-300)
            } else {
                x == y
            }
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------
// The raw key order of the top-level object (serde_json's `Map` sorts, so read it raw)

struct KeyOrder;

impl<'de> Visitor<'de> for KeyOrder {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(k);
        }
        Ok(keys)
    }
}

fn raw_keys(line: &[u8]) -> Vec<String> {
    serde_json::Deserializer::from_slice(line)
        .deserialize_map(KeyOrder)
        .expect("a JSON object")
}

fn is_timestamp(s: &str) -> bool {
    // ^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---------------------------------------------------------------------------------------

fn check(r: &OwnedRecord) -> Result<(), TestCaseError> {
    let data = r.data.as_deref().map(borrowed_fields);
    let attrs = r
        .span
        .as_ref()
        .and_then(|s| s.attributes.as_deref())
        .map(borrowed_fields);
    let mut rec =
        Record::new(r.level, &r.component.0, &r.message).timestamp(from_micros(r.timestamp));
    rec.logger = r.logger.as_deref();
    rec.request_id = r.request_id.as_deref();
    rec.user_id = r.user_id.as_deref();
    rec.session_id = r.session_id.as_deref();
    if let Some((t, s)) = r.trace {
        rec = rec.trace(
            TraceId::from_bytes(t.to_be_bytes()),
            SpanId::from_bytes(s.to_be_bytes()),
        );
    }
    if let Some(d) = &data {
        rec = rec.data(d);
    }
    if let Some((function, file, line, thread, process)) = &r.context {
        rec = rec.context(CodeContext {
            function: function.as_deref(),
            file: file.as_deref(),
            line: *line,
            thread: *thread,
            process: *process,
        });
    }
    if let Some((kind, message, traceback)) = &r.exception {
        rec = rec.exception(Exception {
            kind,
            message,
            traceback: traceback.as_deref(),
        });
    }
    if let Some(s) = &r.span {
        rec = rec.span(SpanInfo {
            name: &s.name,
            kind: &s.kind,
            parent_span_id: s.parent.map(|p| SpanId::from_bytes(p.to_be_bytes())),
            start: from_micros(s.start),
            end: from_micros(s.end),
            status: match s.status {
                0 => SpanStatus::Unset,
                1 => SpanStatus::Ok,
                _ => SpanStatus::Error(&s.status_message),
            },
            attributes: attrs.as_ref().map(|a| a as &dyn tracekit_exporters::Fields),
            links: &[],
        });
    }

    let mut out = b"previous line\n".to_vec();
    let prefix = out.len();
    let encoder = RecordEncoder::default();
    let range = encoder.encode(&rec, &mut out);
    let line = &out[prefix..];

    // The same record through a pre-encoded head (made from a record that differs in
    // everything a head does not cover) gives the same bytes and component range.
    let mut head = RecordHead::default();
    let donor = Record {
        message: "other",
        data: None,
        exception: None,
        span: None,
        level: Level::CRITICAL,
        ..rec
    };
    encoder.encode_head(&donor, &mut head);
    let stripped = Record {
        component: "ignored",
        logger: None,
        request_id: None,
        user_id: None,
        session_id: None,
        trace_id: None,
        span_id: None,
        context: None,
        ..rec
    };
    let mut via_head = b"previous line\n".to_vec();
    let head_range = encoder.encode(&stripped.head(&head), &mut via_head);
    prop_assert_eq!(&via_head, &out);
    prop_assert_eq!(head_range, range.clone());

    // Exactly one line, `\n`-terminated, no raw control byte anywhere else.
    prop_assert_eq!(line.last(), Some(&b'\n'));
    let body = &line[..line.len() - 1];
    prop_assert!(
        !body.iter().any(|&b| b < 0x20),
        "raw control byte in {:?}",
        String::from_utf8_lossy(body)
    );
    let text = std::str::from_utf8(body).expect("UTF-8");
    for c in ['\u{85}', '\u{2028}', '\u{2029}', '\u{7f}'] {
        prop_assert!(!text.contains(c), "raw {:?} in {:?}", c, text);
    }
    // The returned range names the component within `out`.
    prop_assert_eq!(&out[range], r.component.1.as_bytes());

    // Parses back to the expected content.
    let parsed: J = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("does not parse: {e}: {text}")))?;
    let (expected, keys) = expected_record(r);
    let expected = J::Object(expected);
    prop_assert!(
        json_eq(&parsed, &expected),
        "\n  got: {}\n want: {}",
        parsed,
        expected
    );

    // Keys in contract order, absent ones omitted.
    let raw = raw_keys(body);
    prop_assert_eq!(&raw, &keys);
    let positions: Vec<usize> = raw
        .iter()
        .map(|k| {
            CONTRACT_ORDER
                .iter()
                .position(|c| c == k)
                .expect("contract key")
        })
        .collect();
    prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{:?}", raw);

    let ts = parsed["timestamp"].as_str().unwrap();
    prop_assert!(is_timestamp(ts), "{}", ts);
    if let Some(s) = parsed.get("span") {
        prop_assert!(is_timestamp(s["start"].as_str().unwrap()));
        prop_assert!(is_timestamp(s["end"].as_str().unwrap()));
    }
    Ok(())
}

proptest! {
    // PROPTEST_CASES=N runs more (or fewer) cases.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512),
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_record_encodes_to_one_contract_line(r in record()) {
        check(&r)?;
    }
}

/// A fixed record with every part, as a readable example of what the property checks.
#[test]
fn full_record_example() {
    let nested = [("inner_secret", Value::Str("s")), ("n", Value::U64(1))];
    let list = [Value::Map(&nested), Value::Bytes(b"\xff\x00")];
    let json = json!({"Api_Key": "k", "ok": [{"passWORD": 1}, "\u{2028}"]});
    let data = [
        ("list", Value::List(&list)),
        ("json", Value::Json(&json)),
        ("MyToken", Value::Str("t")),
        ("msg", Value::Str("\u{1b}[31mred\u{0}\u{85}")),
    ];
    let start = from_micros(1_763_296_496_789_123);
    let rec = Record::new(Level::ERROR, "Ranking", "line1\nline2\u{2029}")
        .timestamp(start)
        .logger("svc::rank")
        .request_id("req-1")
        .user_id("u")
        .session_id("s")
        .trace(
            TraceId::from_bytes([0xab; 16]),
            SpanId::from_bytes([0x01; 8]),
        )
        .data(&data)
        .context(CodeContext {
            function: Some("rank"),
            line: Some(7),
            ..CodeContext::default()
        })
        .exception(Exception {
            kind: "ValueError",
            message: "bad\r\n",
            traceback: Some("a\nb"),
        })
        .span(SpanInfo {
            name: "rank",
            kind: "internal",
            parent_span_id: Some(SpanId::from_bytes([2; 8])),
            start,
            end: start + Duration::from_micros(1500),
            status: SpanStatus::Error("boom"),
            attributes: None,
            links: &[],
        });
    let mut out = Vec::new();
    RecordEncoder::default().encode(&rec, &mut out);
    let text = std::str::from_utf8(&out).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let v: J = serde_json::from_str(text).unwrap();
    assert_eq!(v["timestamp"], "2025-11-16T12:34:56.789123Z");
    assert_eq!(v["component"], "ranking");
    assert_eq!(v["data"]["list"][0]["inner_secret"], "[REDACTED]");
    assert_eq!(v["data"]["list"][1], "\u{fffd}\u{0}");
    assert_eq!(v["data"]["json"]["Api_Key"], "[REDACTED]");
    assert_eq!(v["data"]["json"]["ok"][0]["passWORD"], "[REDACTED]");
    assert_eq!(v["data"]["MyToken"], "[REDACTED]");
    assert_eq!(v["span"]["duration_ms"], 1.5);
    assert_eq!(v["span"]["status_message"], "boom");
    assert_eq!(
        raw_keys(text.trim_end().as_bytes()),
        CONTRACT_ORDER.to_vec()
    );
}
