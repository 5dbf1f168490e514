//! Record heads cached per thread: the parts of an event's line that only its layer, its
//! span's scope and its call site determine (component, logger, ids, code context, and the
//! span fields the event does not set itself), encoded once and reused while they stay the
//! same, so that an event encodes only its timestamp, level, message and own fields.

use crate::exporters::{EncodedFields, RecordHead};

/// Cached heads, direct-mapped by [`HeadKey::slot`].
pub(crate) struct Heads(Box<[CachedHead; HEAD_SLOTS]>);

const HEAD_SLOTS: usize = 64;

impl Default for Heads {
    fn default() -> Self {
        Heads(Box::new(std::array::from_fn(|_| CachedHead::default())))
    }
}

impl Heads {
    /// The slot for `key` (holding `key`'s head, another's, or none yet).
    #[inline]
    pub(crate) fn slot(&mut self, key: &HeadKey) -> &mut CachedHead {
        &mut self.0[key.slot()]
    }
}

/// What a record head depends on besides an event's own `component` field. Serials are never
/// reused and call sites are `'static`, so equal keys mean equal heads.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeadKey {
    pub layer: u64,
    pub scope: u64,
    pub callsite: usize,
}

impl HeadKey {
    #[inline]
    fn slot(&self) -> usize {
        let h = (self.callsite as u64 >> 4) ^ self.scope.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h ^ (h >> 29)) as usize % HEAD_SLOTS
    }
}

/// One cached head.
#[derive(Default)]
pub(crate) struct CachedHead {
    /// All zero (no layer has serial 0) until first filled.
    pub key: HeadKey,
    pub has_component: bool,
    /// The event's own `component` field, when it had one.
    pub component: String,
    pub head: RecordHead,
    /// The scope's span fields that the call site does not set itself, encoded.
    pub span_data: EncodedFields,
}

impl CachedHead {
    /// True when this slot holds the head of `key` with the event's `component` field.
    #[inline]
    pub(crate) fn matches(&self, key: &HeadKey, component: Option<&str>) -> bool {
        self.key == *key
            && match component {
                None => !self.has_component,
                Some(c) => self.has_component && self.component == c,
            }
    }

    /// Records that the slot now holds the head of `key` with the event's `component`.
    pub(crate) fn fill(&mut self, key: HeadKey, component: Option<&str>) {
        self.key = key;
        self.component.clear();
        self.has_component = component.is_some();
        if let Some(c) = component {
            self.component.push_str(c);
        }
    }
}
