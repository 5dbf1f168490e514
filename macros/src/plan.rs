//! Stacking: the first decorator to expand takes the others on the same fn along, so the fn
//! gets one wrapper, one clock and one copy of its arguments whatever the combination.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Error, Ident, LitBool, LitStr, Meta};

use crate::attr::{Args, Kind, Level};

/// What the wrapper does, merged from every decorator on the fn.
#[derive(Debug)]
pub(crate) struct Plan {
    /// A span around the call (`trace_execution`).
    pub span: bool,
    /// An entry record (`trace_execution`).
    pub entry: bool,
    /// A timing record (`log_performance`, `trace_execution`).
    pub timing: bool,
    /// `Err` and panics logged (`log_errors`, `trace_execution`).
    pub errors: bool,
    pub component: Option<LitStr>,
    pub level: Level,
    /// `reraise = false`, with its token for errors.
    pub no_reraise: Option<LitBool>,
    pub args_entry: bool,
    pub args_timing: bool,
    pub args_errors: bool,
    pub log_result: bool,
    pub skip: Vec<Ident>,
    /// The decorators merged, for messages.
    pub kinds: Vec<Kind>,
}

impl Plan {
    /// Merges the expanding attribute's arguments with the decorators still on the fn, which
    /// are removed from `attrs`.
    pub(crate) fn merge(first: Args, attrs: &mut Vec<Attribute>) -> syn::Result<Plan> {
        let mut all = vec![first];
        let mut kept = Vec::with_capacity(attrs.len());
        for attr in attrs.drain(..) {
            match Kind::of_path(attr.path()) {
                Some(kind) => all.push(stacked_args(kind, &attr)?),
                None => kept.push(attr),
            }
        }
        *attrs = kept;

        let mut plan = Plan {
            span: false,
            entry: false,
            timing: false,
            errors: false,
            component: None,
            level: Level::Info,
            no_reraise: None,
            args_entry: false,
            args_timing: false,
            args_errors: false,
            log_result: false,
            skip: Vec::new(),
            kinds: Vec::new(),
        };
        let mut level_from: Option<Span> = None;
        for args in all {
            if plan.kinds.contains(&args.kind) {
                return Err(Error::new(
                    args.span,
                    format!("`#[{}]` is given twice on this fn", args.kind.name()),
                ));
            }
            plan.kinds.push(args.kind);
            let log_args = args.log_args.unwrap_or(true);
            match args.kind {
                Kind::Performance => {
                    plan.timing = true;
                    plan.args_timing = log_args;
                }
                Kind::Errors => {
                    plan.errors = true;
                    plan.args_errors |= log_args;
                    plan.no_reraise = args.reraise.filter(|r| !r.value);
                }
                Kind::Trace => {
                    plan.span = true;
                    plan.entry = true;
                    plan.timing = true;
                    plan.errors = true;
                    // The arguments go in the entry record only: the error records share its
                    // span, and capturing them for errors alone would cost every call.
                    plan.args_entry = log_args;
                    plan.component = args.component;
                }
            }
            plan.log_result |= args.log_result.unwrap_or(false);
            if let Some((level, span)) = args.level {
                if level_from.is_some() && level != plan.level {
                    return Err(Error::new(
                        span,
                        "the stacked decorators give two different levels: give `level` once",
                    ));
                }
                plan.level = level;
                level_from = Some(span);
            }
            for name in args.skip {
                if !plan.skip.contains(&name) {
                    plan.skip.push(name);
                }
            }
        }
        Ok(plan)
    }

    /// True when any record carries the arguments.
    pub(crate) fn any_args(&self) -> bool {
        self.args_entry || self.args_timing || self.args_errors
    }
}

/// The arguments of a decorator found below the expanding one.
fn stacked_args(kind: Kind, attr: &Attribute) -> syn::Result<Args> {
    let tokens = match &attr.meta {
        Meta::Path(_) => proc_macro2::TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(nv) => {
            return Err(Error::new(
                nv.span(),
                format!(
                    "write `#[{}(...)]`, not `#[{} = ...]`",
                    kind.name(),
                    kind.name()
                ),
            ))
        }
    };
    Args::parse(kind, attr.meta.path().span(), tokens)
}
