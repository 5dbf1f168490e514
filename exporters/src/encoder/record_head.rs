//! [`RecordHead`]: the parts a run of records repeats, encoded once.

use std::ops::Range;

/// The repeated parts of a record, encoded once by
/// [`RecordEncoder::encode_head`](crate::RecordEncoder::encode_head) and reused by the records
/// that set [`Record::head`](crate::Record::head): component, logger, request, user and
/// session ids, trace and span ids, and the code context.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::{Level, Record, RecordEncoder, RecordHead};
///
/// let encoder = RecordEncoder::default();
/// let mut head = RecordHead::default();
/// encoder.encode_head(&Record::new(Level::INFO, "serving", "").request_id("req-9"), &mut head);
/// let mut line = Vec::new();
/// encoder.encode(&Record::new(Level::INFO, "ignored", "served").head(&head), &mut line);
/// let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
/// assert_eq!((json["component"].as_str(), json["request_id"].as_str()), (Some("serving"), Some("req-9")));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RecordHead {
    pub(super) buf: Vec<u8>,
    /// Where the component name stands in `buf`.
    pub(super) component: Range<usize>,
    /// Where the ids end and the context begins.
    pub(super) ids_end: usize,
}
