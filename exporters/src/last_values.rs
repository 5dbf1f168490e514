//! Repeated attribute keys: the last value wins.
//!
//! The OpenTelemetry spec says a later value for a key overwrites the earlier one, but the
//! SDK appends attributes without replacing: tracing-opentelemetry sets a `u64` span field as
//! its `Debug` text (`"42"`) and the tracekit layer then sets the typed value (`42`) on the
//! same span. The exporters write each key once, with its last value, both where the key is
//! lifted into a record key and where it is written as an attribute.

use std::collections::HashSet;

/// Up to this many attributes, keys are compared pairwise (no allocation, and nothing at
/// all is allocated when no key repeats); more are hashed.
const PAIRWISE_UP_TO: usize = 16;

/// Which attributes of one span or log record a later attribute of the same key overwrites.
#[derive(Debug, Default)]
pub(crate) struct LastValues {
    /// `overwritten[i]`: attribute `i` has a later namesake. `None` when no key repeats.
    overwritten: Option<Vec<bool>>,
}

impl LastValues {
    /// Looks for repeated keys among the attributes' `keys` (each call a fresh iterator over
    /// them, in attribute order).
    pub(crate) fn of<'a, I>(keys: impl Fn() -> I) -> LastValues
    where
        I: Iterator<Item = &'a str>,
    {
        let n = keys().count();
        let mut overwritten: Option<Vec<bool>> = None;
        let mut mark = |i: usize| overwritten.get_or_insert_with(|| vec![false; n])[i] = true;
        if n <= PAIRWISE_UP_TO {
            for (i, key) in keys().enumerate() {
                if keys().skip(i + 1).any(|later| later == key) {
                    mark(i);
                }
            }
        } else {
            let keys: Vec<&str> = keys().collect();
            let mut later = HashSet::with_capacity(n);
            for (i, key) in keys.iter().enumerate().rev() {
                if !later.insert(*key) {
                    mark(i);
                }
            }
        }
        LastValues { overwritten }
    }

    /// The attributes (in the order [`of`](Self::of) saw their keys) that no later attribute
    /// overwrites.
    pub(crate) fn keep<'s, T: 's>(
        &'s self,
        attributes: impl Iterator<Item = T> + 's,
    ) -> impl Iterator<Item = T> + 's {
        let overwritten = self.overwritten.as_deref();
        attributes
            .enumerate()
            .filter(move |(i, _)| !overwritten.is_some_and(|o| o[*i]))
            .map(|(_, a)| a)
    }
}

/// Drops every attribute that a later attribute of the same key overwrites, keeping the
/// order of the rest: for span processors that hand `SpanData` on to exporters other than
/// these (the tracekit crate wraps its OTLP and user processors with it).
#[doc(hidden)]
pub fn keep_last_values(attributes: &mut Vec<opentelemetry::KeyValue>) {
    let last = LastValues::of(|| attributes.iter().map(|kv| kv.key.as_str()));
    if last.overwritten.is_some() {
        let kept: Vec<_> = last.keep(attributes.drain(..)).collect();
        *attributes = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept<'a>(keys: &[&'a str]) -> Vec<(usize, &'a str)> {
        LastValues::of(|| keys.iter().copied())
            .keep(keys.iter().copied().enumerate())
            .collect()
    }

    #[test]
    fn each_key_keeps_its_last_position() {
        assert_eq!(kept(&[]), []);
        assert_eq!(kept(&["a", "b"]), [(0, "a"), (1, "b")]);
        assert_eq!(kept(&["k", "x", "k"]), [(1, "x"), (2, "k")]);
        assert_eq!(kept(&["k", "k", "k"]), [(2, "k")]);
        assert!(LastValues::of(|| ["a", "b", "c"].into_iter())
            .overwritten
            .is_none());
    }

    #[test]
    fn many_attributes_are_hashed_with_the_same_outcome() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{}", i % 25)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = kept(&keys);
        assert_eq!(got.len(), 25);
        // The last 25 positions are the last of each key.
        assert_eq!(got.first(), Some(&(15, "k15")));
        assert!(got.iter().map(|(i, _)| *i).eq(15..40));
    }
}
