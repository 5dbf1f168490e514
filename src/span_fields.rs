//! [`SpanFields`]: which fields of the enclosing spans go into each event's line.

use std::sync::Arc;

/// Which fields of the spans around an event go into its line's `data` (and into its OTLP
/// log record as attributes): [`ALL`](Self::ALL) (the default), [`NONE`](Self::NONE), or an
/// allow-list ([`only`](Self::only)). Set with
/// [`Builder::span_fields`](crate::Builder::span_fields).
///
/// The innermost span's value of a name wins; the event's own fields win over all; redaction
/// applies as to the event's fields. The request, user and session ids and the component are
/// record keys, never `data`; [`LogContext::field`](crate::LogContext::field) values are
/// always written.
///
/// # Examples
///
/// ```
/// use tracekit::SpanFields;
///
/// # let dir = tempfile::tempdir()?;
/// let (dispatch, guard) = tracekit::builder()
///     .root(dir.path())
///     .span_fields(SpanFields::only(["order_id"]))
///     .build()?;
/// tracing::dispatcher::with_default(&dispatch, || {
///     let _checkout = tracing::info_span!("checkout", order_id = 42_u64, cart = "c-1").entered();
///     tracing::info!("paid");
/// });
/// drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
/// let paid = text.lines().find(|l| l.contains("\"paid\"")).unwrap();
/// let paid: serde_json::Value = serde_json::from_str(paid)?;
/// assert_eq!(paid["data"], serde_json::json!({"order_id": 42}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFields(Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    All,
    None,
    Only(Arc<[Box<str>]>),
}

impl SpanFields {
    /// Every field of every enclosing span (the default).
    ///
    /// ```
    /// assert!(tracekit::SpanFields::ALL.includes("order_id"));
    /// ```
    pub const ALL: SpanFields = SpanFields(Kind::All);

    /// No span field: event lines carry their own fields only.
    ///
    /// ```
    /// assert!(!tracekit::SpanFields::NONE.includes("order_id"));
    /// ```
    pub const NONE: SpanFields = SpanFields(Kind::None);

    /// The fields with these names only.
    ///
    /// ```
    /// let only = tracekit::SpanFields::only(["order_id", "tenant"]);
    /// assert!(only.includes("tenant") && !only.includes("cart"));
    /// ```
    pub fn only<I, N>(names: I) -> SpanFields
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        SpanFields(Kind::Only(
            names
                .into_iter()
                .map(|n| n.into().into_boxed_str())
                .collect(),
        ))
    }

    /// True when a span field named `name` goes into event lines.
    ///
    /// ```
    /// assert!(tracekit::SpanFields::default().includes("anything"));
    /// ```
    pub fn includes(&self, name: &str) -> bool {
        match &self.0 {
            Kind::All => true,
            Kind::None => false,
            Kind::Only(names) => names.iter().any(|n| **n == *name),
        }
    }
}

impl Default for SpanFields {
    fn default() -> Self {
        SpanFields::ALL
    }
}
