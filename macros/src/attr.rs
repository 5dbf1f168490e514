//! The attributes' arguments: parsing and validation, each mistake reported at its token.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Ident, Lit, LitBool, LitStr, Meta, Token};

/// Which attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Performance,
    Errors,
    Trace,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Performance => "log_performance",
            Kind::Errors => "log_errors",
            Kind::Trace => "trace_execution",
        }
    }

    /// The arguments this attribute takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Performance => &["log_args", "log_result", "skip", "level"],
            Kind::Errors => &["reraise", "log_args", "skip"],
            Kind::Trace => &["component", "level", "log_args", "log_result", "skip"],
        }
    }

    /// The decorator an attribute path names: `log_errors` or `tracekit::log_errors`.
    pub(crate) fn of_path(path: &syn::Path) -> Option<Kind> {
        let n = path.segments.len();
        if n == 2 && path.segments[0].ident != "tracekit" || n > 2 || n == 0 {
            return None;
        }
        let last = &path.segments[n - 1].ident;
        [Kind::Performance, Kind::Errors, Kind::Trace]
            .into_iter()
            .find(|k| last == k.name())
    }
}

/// A level of the entry and timing records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(lit: &LitStr) -> syn::Result<Level> {
        Ok(match lit.value().to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            other => {
                return Err(Error::new(
                    lit.span(),
                    format!(
                        "unknown level {other:?}: expected \"trace\", \"debug\", \"info\", \"warn\" or \"error\""
                    ),
                ))
            }
        })
    }

    /// The `tracing::Level` constant's name.
    pub(crate) fn tracing_const(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    /// The `tracekit::exporters::Level` constant's name.
    pub(crate) fn record_const(self) -> &'static str {
        match self {
            Level::Warn => "WARNING",
            other => other.tracing_const(),
        }
    }
}

/// One attribute's arguments, as written (unset ones are `None`).
#[derive(Debug)]
pub(crate) struct Args {
    pub kind: Kind,
    /// The attribute itself, for errors about it as a whole.
    pub span: Span,
    pub log_args: Option<bool>,
    pub log_result: Option<bool>,
    pub reraise: Option<LitBool>,
    pub component: Option<LitStr>,
    pub level: Option<(Level, Span)>,
    pub skip: Vec<Ident>,
}

impl Args {
    /// Parses `tokens`, the inside of `#[kind(...)]` (empty for a bare `#[kind]`).
    pub(crate) fn parse(kind: Kind, span: Span, tokens: TokenStream) -> syn::Result<Args> {
        let mut args = Args {
            kind,
            span,
            log_args: None,
            log_result: None,
            reraise: None,
            component: None,
            level: None,
            skip: Vec::new(),
        };
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut seen: Vec<String> = Vec::new();
        for meta in metas {
            let path = meta.path();
            let Some(key) = path.get_ident().map(Ident::to_string) else {
                return Err(Error::new(
                    path.span(),
                    unknown(kind, &quote::quote!(#path).to_string()),
                ));
            };
            if !kind.keys().contains(&key.as_str()) {
                return Err(Error::new(path.span(), unknown(kind, &key)));
            }
            if seen.contains(&key) {
                return Err(Error::new(path.span(), format!("`{key}` is given twice")));
            }
            seen.push(key.clone());
            match key.as_str() {
                "log_args" => args.log_args = Some(bool_value(&meta, &key)?.value),
                "log_result" => args.log_result = Some(bool_value(&meta, &key)?.value),
                "reraise" => args.reraise = Some(bool_value(&meta, &key)?),
                "component" => {
                    let lit = str_value(&meta, &key)?;
                    if lit.value().trim().is_empty() {
                        return Err(Error::new(lit.span(), "`component` must not be empty"));
                    }
                    args.component = Some(lit);
                }
                "level" => {
                    let lit = str_value(&meta, &key)?;
                    args.level = Some((Level::parse(&lit)?, lit.span()));
                }
                "skip" => args.skip = skip_list(&meta)?,
                _ => unreachable!("every key of Kind::keys is handled"),
            }
        }
        Ok(args)
    }
}

fn unknown(kind: Kind, key: &str) -> String {
    let keys = kind
        .keys()
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>();
    format!(
        "unknown argument `{key}` of `#[{}]`: expected {}",
        kind.name(),
        keys.join(", ")
    )
}

/// The literal of `key = value`, or an error that says what was expected (`expected`
/// describes the value, `example` is one).
fn lit_value<'m>(meta: &'m Meta, key: &str, expected: &str, example: &str) -> syn::Result<&'m Lit> {
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit { lit, .. }) => Ok(lit),
            other => Err(Error::new(
                other.span(),
                format!("`{key}` takes {expected}, not an expression"),
            )),
        },
        _ => Err(Error::new(
            meta.span(),
            format!("`{key}` takes a value: `{key} = {example}`"),
        )),
    }
}

fn bool_value(meta: &Meta, key: &str) -> syn::Result<LitBool> {
    match lit_value(meta, key, "`true` or `false`", "true")? {
        Lit::Bool(b) => Ok(b.clone()),
        other => Err(Error::new(
            other.span(),
            format!("`{key}` takes `true` or `false`"),
        )),
    }
}

fn str_value(meta: &Meta, key: &str) -> syn::Result<LitStr> {
    match lit_value(meta, key, "a string literal", "\"...\"")? {
        Lit::Str(s) => Ok(s.clone()),
        other => Err(Error::new(
            other.span(),
            format!("`{key}` takes a string literal: `{key} = \"...\"`"),
        )),
    }
}

/// `skip(a, b)`: parameter names.
fn skip_list(meta: &Meta) -> syn::Result<Vec<Ident>> {
    let Meta::List(list) = meta else {
        return Err(Error::new(
            meta.span(),
            "`skip` takes a list of parameter names: `skip(a, b)`",
        ));
    };
    // `parse_any`: `self` parses, to be refused with a reason below.
    let names = list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        Punctuated::<Ident, Token![,]>::parse_terminated_with(input, Ident::parse_any)
    })?;
    for name in &names {
        if name == "self" {
            return Err(Error::new(
                name.span(),
                "`self` is never logged: leave it out of `skip`",
            ));
        }
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
        Args::parse(kind, Span::call_site(), tokens)
    }

    #[test]
    fn arguments_parse() {
        let a = parse(
            Kind::Trace,
            quote!(
                component = "serving",
                level = "debug",
                skip(a, b),
                log_result = true
            ),
        )
        .unwrap();
        assert_eq!(a.component.unwrap().value(), "serving");
        assert_eq!(a.level.unwrap().0, Level::Debug);
        assert_eq!(a.skip.len(), 2);
        assert_eq!(a.log_result, Some(true));
        assert!(parse(Kind::Errors, quote!()).unwrap().reraise.is_none());
    }

    #[test]
    fn mistakes_are_errors() {
        for (kind, tokens, message) in [
            (
                Kind::Errors,
                quote!(component = "x"),
                "unknown argument `component`",
            ),
            (
                Kind::Performance,
                quote!(log_args = "yes"),
                "takes `true` or `false`",
            ),
            (Kind::Performance, quote!(log_args), "takes a value"),
            (
                Kind::Trace,
                quote!(component = serving),
                "not an expression",
            ),
            (Kind::Trace, quote!(level = "loud"), "unknown level"),
            (
                Kind::Performance,
                quote!(log_args = true, log_args = false),
                "given twice",
            ),
            (
                Kind::Performance,
                quote!(skip = "a"),
                "list of parameter names",
            ),
            (Kind::Performance, quote!(skip(self)), "never logged"),
        ] {
            let err = parse(kind, tokens).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn attribute_paths() {
        let p: syn::Path = syn::parse_quote!(tracekit::log_errors);
        assert_eq!(Kind::of_path(&p), Some(Kind::Errors));
        let p: syn::Path = syn::parse_quote!(trace_execution);
        assert_eq!(Kind::of_path(&p), Some(Kind::Trace));
        let p: syn::Path = syn::parse_quote!(other::log_errors);
        assert_eq!(Kind::of_path(&p), None);
        let p: syn::Path = syn::parse_quote!(instrument);
        assert_eq!(Kind::of_path(&p), None);
    }
}
