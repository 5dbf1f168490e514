//! A span's request context, as the event layer keeps it in the span's registry extensions.
//!
//! When a span opens, its own fields (request, user and session ids, component, the fields
//! that go into event lines) are resolved over its parent's [`Scope`] once: the span's own
//! values win, the rest is inherited. Events, [`Logger`](crate::Logger)s and the decorators
//! read the scope of the span they are in instead of walking the span's ancestors.
//!
//! A span's fields can be recorded after it opened (`span.record`): its scope is then
//! replaced and the old one marked stale. Scopes of spans opened under the old one still
//! hold it as their parent; whoever reads such a scope finds the stale link
//! ([`Scope::is_fresh`]) and resolves it again over its parent's current scope, so recorded
//! fields count in child spans from then on.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::{SpanId, Status, TraceContextExt, TraceId};
use tracing::field::{Field, Visit};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::context_value::ContextValue;
use crate::exporters::{normalize_component, FieldWriter, Fields, Record};
use crate::keys::{COMPONENT, REQUEST_ID_KEY, SESSION_ID_KEY, USER_ID_KEY};
use crate::sdk_span::SdkSpan;
use crate::span_fields::SpanFields;

/// The name of a span field or a [`LogContext`](crate::LogContext) key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FieldName {
    /// A `tracing` field name.
    Static(&'static str),
    /// A key given at run time.
    Shared(Arc<str>),
}

impl std::ops::Deref for FieldName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            FieldName::Static(s) => s,
            FieldName::Shared(s) => s,
        }
    }
}

/// One field of a span that goes into the `data` of the lines written inside it.
pub(crate) type SpanField = (FieldName, ContextValue);

/// What a span's own fields say, before they are resolved over its parent.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnValues {
    pub request_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub session_id: Option<Arc<str>>,
    /// Normalized where it was set.
    pub component: Option<Arc<str>>,
    /// The span's fields for event lines, in the order they were recorded.
    pub fields: Vec<SpanField>,
    /// `NAMED_*` bits: the ids and component given under their OTel attribute key
    /// (`request.id`, not `request_id`), which the OpenTelemetry layer set on the span as
    /// they are.
    pub named: u8,
    /// Unsigned and 128-bit fields, which the OpenTelemetry layer sets as their `Debug` text:
    /// set again as numbers.
    pub unsigned: Vec<(&'static str, ContextValue)>,
    /// A recorded `&dyn Error` field: the span failed.
    pub error: Option<String>,
}

/// The request context of one span: its own values over its parent's.
#[derive(Debug)]
pub(crate) struct Scope {
    pub request_id: Option<Arc<str>>,
    pub user_id: Option<Arc<str>>,
    pub session_id: Option<Arc<str>>,
    pub component: Option<Arc<str>>,
    /// The innermost instrumented span's name (request contexts are not functions).
    pub function: Option<&'static str>,
    /// The fields of this span and the spans around it (the innermost value of a name wins),
    /// for the `data` of every line written inside it.
    pub fields: Option<Arc<[SpanField]>>,
    /// The span's SDK span, once tracekit completed it (see `sdk_span`).
    pub sdk: Arc<SdkSpan>,
    /// Never reused: the key of the record heads cached for this scope.
    pub serial: u64,
    /// What this scope was resolved from, to resolve it again.
    pub own: OwnValues,
    /// The span's name when it counts as a function.
    name: Option<&'static str>,
    /// The parent's scope this one was resolved over.
    parent: Option<Arc<Scope>>,
    /// Replaced in its span: scopes resolved over it must be resolved again.
    stale: AtomicBool,
}

impl Scope {
    /// The scope of a span with `own` values under `parent`; `name` when the span counts as a
    /// function (`context.function` of the lines inside it).
    pub(crate) fn resolve(
        own: OwnValues,
        name: Option<&'static str>,
        parent: Option<&Arc<Scope>>,
    ) -> Scope {
        let pick = |mine: &Option<Arc<str>>, theirs: fn(&Scope) -> &Option<Arc<str>>| {
            mine.clone()
                .or_else(|| parent.and_then(|p| theirs(p).clone()))
        };
        Scope {
            request_id: pick(&own.request_id, |p| &p.request_id),
            user_id: pick(&own.user_id, |p| &p.user_id),
            session_id: pick(&own.session_id, |p| &p.session_id),
            component: pick(&own.component, |p| &p.component),
            function: name.or_else(|| parent.and_then(|p| p.function)),
            fields: merge_fields(parent.and_then(|p| p.fields.as_ref()), &own.fields),
            sdk: Arc::default(),
            serial: next_serial(),
            own,
            name,
            parent: parent.cloned(),
            stale: AtomicBool::new(false),
        }
    }

    /// The scope that replaces this one in its span: `more` recorded over its own values,
    /// resolved over `parent` (the parent's current scope).
    pub(crate) fn successor(&self, more: OwnValues, parent: Option<&Arc<Scope>>) -> Scope {
        let mut own = self.own.clone();
        own.merge(more);
        let mut next = Scope::resolve(own, self.name, parent);
        next.sdk = Arc::clone(&self.sdk);
        next
    }

    /// A request context's own values, given once its span is open, over what the scope
    /// inherited when it opened (the event layer reads no fields of a context's span).
    pub(crate) fn set_context(&mut self, own: OwnValues) {
        for (slot, mine) in [
            (&mut self.request_id, &own.request_id),
            (&mut self.user_id, &own.user_id),
            (&mut self.session_id, &own.session_id),
            (&mut self.component, &own.component),
        ] {
            if mine.is_some() {
                slot.clone_from(mine);
            }
        }
        self.fields = merge_fields(self.fields.as_ref(), &own.fields);
        self.own = own;
    }

    /// The same values resolved over `parent`'s current scope.
    pub(crate) fn refreshed(&self, parent: Option<&Arc<Scope>>) -> Scope {
        self.successor(OwnValues::default(), parent)
    }

    /// Marks this scope as replaced in its span.
    pub(crate) fn retire(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// True when neither this scope nor any it was resolved over was replaced since.
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        let mut scope = self;
        loop {
            if scope.stale.load(Ordering::Acquire) {
                return false;
            }
            match &scope.parent {
                Some(parent) => scope = parent,
                None => return true,
            }
        }
    }

    /// Marks the scope's span as failed.
    pub(crate) fn set_error(&self, message: &str) {
        if let Some(sdk) = self.sdk.get() {
            sdk.cx.span().set_status(Status::error(message.to_owned()));
        }
    }

    /// The trace and span ids of the scope's span, once its SDK span was completed.
    pub(crate) fn trace_ids(&self) -> Option<(TraceId, SpanId)> {
        self.sdk
            .get()
            .map(|sdk| (sdk.trace_id, sdk.span_id))
            .filter(|(trace, _)| *trace != TraceId::INVALID)
    }

    /// `record` with this scope's request, user and session ids and trace and span ids.
    pub(crate) fn ids<'a>(&'a self, mut record: Record<'a>) -> Record<'a> {
        record.request_id = self.request_id.as_deref();
        record.user_id = self.user_id.as_deref();
        record.session_id = self.session_id.as_deref();
        match self.trace_ids() {
            Some((trace, span)) => record.trace(trace, span),
            None => record,
        }
    }

    /// The scope's fields, for the `data` of a line (after its own).
    pub(crate) fn write_fields(&self, w: &mut FieldWriter<'_>, skip: impl Fn(&str) -> bool) {
        for (name, value) in self.fields.as_deref().unwrap_or_default() {
            if !skip(name) {
                value.write(w, name);
            }
        }
    }
}

/// The span extension holding a span's [`Scope`].
pub(crate) struct ScopeExt(pub Arc<Scope>);

/// The scope of `span`, resolved again over its parent's current scope first when something
/// it was resolved over has been replaced since (see [`Scope::is_fresh`]).
pub(crate) fn fresh_scope<'a, R>(span: &SpanRef<'a, R>) -> Option<Arc<Scope>>
where
    R: LookupSpan<'a>,
{
    let scope = Arc::clone(&span.extensions().get::<ScopeExt>()?.0);
    if scope.is_fresh() {
        return Some(scope);
    }
    let parent = nearest_scope(span.parent());
    let fresh = Arc::new(scope.refreshed(parent.as_ref()));
    replace_scope(span, &scope, Arc::clone(&fresh));
    Some(fresh)
}

/// True when `span`'s SDK span is completed (shared by all its scopes); false when the
/// layer never saw it.
pub(crate) fn is_completed<'a, R>(span: &SpanRef<'a, R>) -> bool
where
    R: LookupSpan<'a>,
{
    span.extensions()
        .get::<ScopeExt>()
        .is_some_and(|s| s.0.sdk.get().is_some())
}

/// The scope of `span` or, when the layer never saw it (a filter), of its nearest ancestor
/// that has one.
pub(crate) fn nearest_scope<'a, R>(mut span: Option<SpanRef<'a, R>>) -> Option<Arc<Scope>>
where
    R: LookupSpan<'a>,
{
    while let Some(s) = span {
        if let Some(scope) = fresh_scope(&s) {
            return Some(scope);
        }
        span = s.parent();
    }
    None
}

/// Puts `next` in `old`'s place in `span` and retires `old`, unless another thread replaced it
/// first (its replacement then stays).
pub(crate) fn replace_scope<'a, R>(span: &SpanRef<'a, R>, old: &Arc<Scope>, next: Arc<Scope>)
where
    R: LookupSpan<'a>,
{
    let mut ext = span.extensions_mut();
    if let Some(slot) = ext.get_mut::<ScopeExt>() {
        if Arc::ptr_eq(&slot.0, old) {
            slot.0 = next;
            old.retire();
        }
    }
}

/// `parent`'s fields with `own` over them: a name the parent has keeps its place and takes
/// the span's value; new names follow. Shares the parent's list when the span adds nothing.
fn merge_fields(parent: Option<&Arc<[SpanField]>>, own: &[SpanField]) -> Option<Arc<[SpanField]>> {
    if own.is_empty() {
        return parent.cloned();
    }
    let mut merged: Vec<SpanField> = parent.map(|p| p.to_vec()).unwrap_or_default();
    for (name, value) in own {
        match merged.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.clone(),
            None => merged.push((name.clone(), value.clone())),
        }
    }
    Some(merged.into())
}

impl OwnValues {
    /// `later` recorded over these values: its ids and component replace, its fields merge.
    fn merge(&mut self, later: OwnValues) {
        for (slot, value) in [
            (&mut self.request_id, later.request_id),
            (&mut self.user_id, later.user_id),
            (&mut self.session_id, later.session_id),
            (&mut self.component, later.component),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        for (name, value) in later.fields {
            match self.fields.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.fields.push((name, value)),
            }
        }
        self.named |= later.named;
        for (name, value) in later.unsigned {
            match self.unsigned.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.unsigned.push((name, value)),
            }
        }
        if later.error.is_some() {
            self.error = later.error;
        }
    }

    /// True when there is nothing to record.
    pub(crate) fn is_empty(&self) -> bool {
        self.request_id.is_none()
            && self.user_id.is_none()
            && self.session_id.is_none()
            && self.component.is_none()
            && self.fields.is_empty()
            && self.unsigned.is_empty()
            && self.error.is_none()
    }
}

/// A process-wide serial number: never 0, never reused, so that a thread's cached record
/// heads, keyed by serials, cannot be mistaken for those of a dropped layer or scope.
pub(crate) fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Collects a span's own values from its fields (when it opens, or when fields are recorded).
pub(crate) struct OwnVisitor<'a> {
    pub own: OwnValues,
    /// Which fields go into event lines.
    setting: &'a SpanFields,
}

pub(crate) const NAMED_REQUEST_ID: u8 = 1;
pub(crate) const NAMED_USER_ID: u8 = 2;
pub(crate) const NAMED_SESSION_ID: u8 = 4;
pub(crate) const NAMED_COMPONENT: u8 = 8;

impl<'a> OwnVisitor<'a> {
    pub(crate) fn new(setting: &'a SpanFields) -> OwnVisitor<'a> {
        OwnVisitor {
            own: OwnValues::default(),
            setting,
        }
    }

    /// The id or component a field sets, if it is one of them.
    fn id_slot(&mut self, name: &str) -> Option<&mut Option<Arc<str>>> {
        self.own.named |= match name {
            REQUEST_ID_KEY => NAMED_REQUEST_ID,
            USER_ID_KEY => NAMED_USER_ID,
            SESSION_ID_KEY => NAMED_SESSION_ID,
            COMPONENT => NAMED_COMPONENT,
            _ => 0,
        };
        Some(match name {
            "request_id" | REQUEST_ID_KEY => &mut self.own.request_id,
            "user_id" | USER_ID_KEY => &mut self.own.user_id,
            "session_id" | SESSION_ID_KEY => &mut self.own.session_id,
            COMPONENT => &mut self.own.component,
            _ => return None,
        })
    }

    /// Records `value` under `field`: an id, or a field for event lines when the setting
    /// lets it through.
    fn record(&mut self, field: &Field, value: ContextValue) {
        let name = field.name();
        if let Some(slot) = self.id_slot(name) {
            let text = match value {
                ContextValue::Str(s) => s,
                other => other.to_string().into(),
            };
            *slot = Some(if name == COMPONENT {
                normalized(text)
            } else {
                text
            });
            return;
        }
        if name.starts_with("otel.") {
            // The OpenTelemetry layer's span name, kind and status.
            return;
        }
        if self.setting.includes(name) {
            self.own.fields.push((FieldName::Static(name), value));
        }
    }
}

impl Visit for OwnVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, ContextValue::Str(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, ContextValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.own
            .unsigned
            .push((field.name(), ContextValue::U64(value)));
        self.record(field, ContextValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.own
            .unsigned
            .push((field.name(), ContextValue::I128(value)));
        self.record(field, ContextValue::I128(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.own
            .unsigned
            .push((field.name(), ContextValue::U128(value)));
        self.record(field, ContextValue::U128(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, ContextValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, ContextValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.own.error = Some(value.to_string());
        self.record(field, ContextValue::Str(value.to_string().into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, ContextValue::Str(format!("{value:?}").into()));
    }
}

/// A component name set on a span, as records write it.
fn normalized(component: Arc<str>) -> Arc<str> {
    match normalize_component(&component) {
        std::borrow::Cow::Owned(n) => n.into(),
        std::borrow::Cow::Borrowed(_) => component,
    }
}

/// A record's `data` with the fields of the scope it is written in after its own: the
/// records that bypass `tracing` events ([`Logger`](crate::Logger), the decorators).
pub(crate) struct WithScopeFields<'a> {
    pub data: Option<&'a dyn Fields>,
    pub scope: &'a Scope,
}

impl Fields for WithScopeFields<'_> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        if let Some(data) = self.data {
            data.write_fields(w);
        }
        self.scope.write_fields(w, |_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(request: Option<&str>, fields: &[(&'static str, u64)]) -> OwnValues {
        OwnValues {
            request_id: request.map(Arc::from),
            fields: fields
                .iter()
                .map(|(n, v)| (FieldName::Static(n), ContextValue::U64(*v)))
                .collect(),
            ..OwnValues::default()
        }
    }

    fn names(scope: &Scope) -> Vec<(String, String)> {
        scope
            .fields
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_span_inherits_what_it_does_not_set_and_its_own_fields_win() {
        let root = Arc::new(Scope::resolve(
            own(Some("req-1"), &[("a", 1), ("b", 2)]),
            Some("root"),
            None,
        ));
        let child = Scope::resolve(own(None, &[("b", 3), ("c", 4)]), None, Some(&root));
        assert_eq!(child.request_id.as_deref(), Some("req-1"));
        assert_eq!(child.function, Some("root"));
        assert_eq!(
            names(&child),
            [("a", "1"), ("b", "3"), ("c", "4")].map(|(a, b)| (a.into(), b.into()))
        );
        // A span that adds no field shares its parent's list.
        let bare = Scope::resolve(OwnValues::default(), Some("bare"), Some(&root));
        assert!(Arc::ptr_eq(
            bare.fields.as_ref().unwrap(),
            root.fields.as_ref().unwrap()
        ));
    }

    #[test]
    fn a_replaced_scope_makes_the_scopes_resolved_over_it_stale() {
        let root = Arc::new(Scope::resolve(own(Some("req-1"), &[]), None, None));
        let child = Arc::new(Scope::resolve(own(None, &[("n", 1)]), None, Some(&root)));
        let grandchild = Scope::resolve(OwnValues::default(), None, Some(&child));
        assert!(grandchild.is_fresh());
        let recorded = Arc::new(root.successor(own(Some("req-2"), &[("late", 7)]), None));
        root.retire();
        assert!(!grandchild.is_fresh(), "the root was replaced");
        let child = Arc::new(child.refreshed(Some(&recorded)));
        let grandchild = grandchild.refreshed(Some(&child));
        assert!(grandchild.is_fresh());
        assert_eq!(grandchild.request_id.as_deref(), Some("req-2"));
        assert_eq!(
            names(&grandchild),
            [("late", "7"), ("n", "1")].map(|(a, b)| (a.into(), b.into()))
        );
        assert_ne!(grandchild.serial, child.serial);
    }
}
