//! The level filter: tracing-subscriber's `EnvFilter`, without its span bookkeeping when no
//! directive needs it.
//!
//! `EnvFilter` tracks spans for directives that match span names or fields
//! (`target[span{field=value}]=level`). It looks every span up in its own tables on open,
//! enter, exit and close, behind a read lock, even when there are no such directives and
//! the tables stay empty: eight atomic operations per span for nothing. [`Levels`] forwards
//! those four callbacks only when a directive has a span or field part; levels, targets and
//! the callsite cache are `EnvFilter`'s as they are.

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::{EnvFilter, Layer};

/// `EnvFilter` as a layer, its span callbacks forwarded only if `spans`.
#[derive(Debug)]
pub(crate) struct Levels {
    filter: EnvFilter,
    spans: bool,
}

impl Levels {
    /// `filter`, parsed from `directives`.
    pub(crate) fn new(filter: EnvFilter, directives: &str) -> Levels {
        // Span and field parts are written in brackets; targets and levels have none.
        Levels {
            filter,
            spans: directives.contains('['),
        }
    }
}

impl<S: Subscriber> Layer<S> for Levels {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        Layer::<S>::register_callsite(&self.filter, metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Layer::<S>::max_level_hint(&self.filter)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        Layer::<S>::enabled(&self.filter, metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.spans {
            Layer::<S>::on_new_span(&self.filter, attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.spans {
            Layer::<S>::on_record(&self.filter, id, values, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.spans {
            Layer::<S>::on_enter(&self.filter, id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.spans {
            Layer::<S>::on_exit(&self.filter, id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.spans {
            Layer::<S>::on_close(&self.filter, id, ctx);
        }
    }
}
