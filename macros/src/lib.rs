//! The tracekit decorators: `#[log_performance]`, `#[log_errors]` and `#[trace_execution]`,
//! re-exported by `tracekit` (use them as `tracekit::log_performance` & co).
//!
//! Each works on sync and `async` fns, methods (`&self`, `&mut self`, `self`), generic fns,
//! fns with `impl Trait` arguments or returns, fns that use `?`, and fns in trait impls. The
//! fn keeps its signature; the generated code wraps its body and calls tracekit's runtime.
//!
//! | attribute | writes |
//! | --- | --- |
//! | [`log_performance`] | one timing record per call (also in `performance/`) |
//! | [`log_errors`] | an `ERROR` record for a returned `Err`, a `CRITICAL` one for a panic |
//! | [`trace_execution`] | a span for the call, entry record, timing record (the exit), errors and panics |
//!
//! Stacked on one fn (`#[log_performance] #[log_errors]`), they merge into one wrapper: one
//! clock, one copy of the arguments, one timing record and one error record per failing
//! call. Misuse (an unknown argument, a wrong value, a fn that cannot carry what is asked) is
//! a compile error at the offending token.
//!
//! Every record carries the request context (`request_id`, `user_id`, `session_id`) and the
//! trace and span ids of the span the call runs in, like any other record.

#![warn(missing_docs, rust_2018_idioms)]

mod attr;
mod expand;
mod plan;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, ToTokens};
use syn::{Error, Item, ItemFn};

use attr::{Args, Kind};
use plan::Plan;

/// Writes one timing record per call: `data.duration_ms` (a float, sub-millisecond),
/// `data.status` (`"success"`, or `"error"` when the fn returns `Err` or panics), the
/// arguments in `data.args` and, with `log_result = true`, the returned value (the `Ok`
/// value of a `Result`) in `data.result`. The record's `context.function` is the fn's name;
/// it goes to the component's file and is copied to `performance/performance.log`.
///
/// | argument | default | meaning |
/// | --- | --- | --- |
/// | `log_args = bool` | `true` | write the arguments (`Serialize` form when the type has one, else `Debug`) |
/// | `log_result = bool` | `false` | write the returned value |
/// | `skip(a, b)` | | leave these parameters out (needed for types with neither `Serialize` nor `Debug`) |
/// | `level = "info"` | `"info"` | the record's level (`trace`, `debug`, `info`, `warn`, `error`) |
///
/// Parameters whose names contain `password`, `token`, `secret` or `api_key` are never
/// read: they are written as `"[REDACTED]"` (so their type needs neither trait). Names that
/// the writer's redaction list adds are redacted too, before their value is formatted.
/// `self` is never logged. The arguments are captured before the body runs, since the body
/// may move them.
///
/// When the level filter disables the record (the callsite's level for the fn's module),
/// the decorator does nothing but that check: no clock, no formatting.
///
/// # Examples
///
/// ```
/// #[tracekit::log_performance(log_args = true, log_result = true)]
/// async fn generate_candidates(user_id: &str, count: usize) -> Vec<u32> {
///     (0..count as u32).collect()
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # let _default = tracing::dispatcher::set_default(&dispatch);
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(generate_candidates("user-456", 3));
/// # drop(_default);
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/performance/performance.log"))?;
/// let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(record["context"]["function"], "generate_candidates");
/// assert_eq!(record["data"]["status"], "success");
/// assert_eq!(record["data"]["args"]["user_id"], "user-456");
/// assert_eq!(record["data"]["result"], serde_json::json!([0, 1, 2]));
/// assert!(record["data"]["duration_ms"].as_f64().unwrap() >= 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[proc_macro_attribute]
pub fn log_performance(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Performance, args, item)
}

/// Logs what goes wrong in the fn: a returned `Err` as an `ERROR` record, a panic as a
/// `CRITICAL` one, both with the arguments (as [`log_performance`] writes them) and an
/// `exception`:
///
/// - for an `Err(e)`: `type` is the error type's name (`ParseIntError`, `ConfigError`;
///   for `Box<dyn Error>` and `anyhow::Error`, the type of the error inside when its `Debug`
///   form names it), `message` is `e`'s `Display`, `traceback` its `source()` chain (plus
///   `anyhow`'s backtrace when one was captured);
/// - for a panic: `type` is `panic`, `message` the panic message, `traceback` where it
///   panicked and the backtrace (taken at the panic by tracekit's panic hook when it is
///   installed, as [`tracekit::init`] does, else where the decorator caught it).
///
/// | argument | default | meaning |
/// | --- | --- | --- |
/// | `reraise = bool` | `true` | `true`: the panic resumes unwinding once logged. `false`: the panic stops here and becomes the fn's return value: `Err(tracekit::Panicked.into())` for a `Result<T, E>` whose `E: From<tracekit::Panicked>` (`Box<dyn Error>`, `anyhow::Error`, your own enum with a `From`), `None` for an `Option<T>` |
/// | `log_args = bool` | `true` | write the arguments into the error records |
/// | `skip(a, b)` | | leave these parameters out |
///
/// A returned `Err` is always returned unchanged: in Rust, returning an error is not
/// raising one. `reraise = false` on a fn whose return type cannot carry the panic (`()`,
/// `u32`, ...) is a compile error.
///
/// Panics are caught with `catch_unwind` (the fn's state is treated as unwind-safe, as the
/// panic either resumes or is handed back as an error). tracekit's panic hook leaves a panic
/// inside a decorated call to the decorator, so each panic is written once, with the fn's
/// context; nested decorated fns write it once too (the innermost).
///
/// # Examples
///
/// ```
/// #[derive(Debug)]
/// enum ConfigError { Missing(&'static str) }
/// impl std::fmt::Display for ConfigError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self { ConfigError::Missing(k) => write!(f, "missing key {k}") }
///     }
/// }
/// impl std::error::Error for ConfigError {}
///
/// #[tracekit::log_errors(reraise = true)]
/// fn load(key: &'static str) -> Result<u32, ConfigError> {
///     Err(ConfigError::Missing(key))
/// }
///
/// // A panic becomes the error value: Box<dyn Error> has a `From<Panicked>`.
/// #[tracekit::log_errors(reraise = false)]
/// fn parse(raw: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
///     if raw.is_empty() { panic!("empty input") }
///     Ok(raw.parse()?)
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// assert!(load("model_path").is_err());
/// let err = parse("").unwrap_err();
/// assert!(err.to_string().contains("empty input"));
/// # });
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/errors/errors.log"))?;
/// let records: Vec<serde_json::Value> =
///     text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
/// assert_eq!(records[0]["level"], "ERROR");
/// assert_eq!(records[0]["exception"]["type"], "ConfigError");
/// assert_eq!(records[0]["exception"]["message"], "missing key model_path");
/// assert_eq!(records[0]["data"]["args"]["key"], "model_path");
/// assert_eq!(records[1]["level"], "CRITICAL");
/// assert_eq!(records[1]["exception"]["type"], "panic");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`tracekit::init`]: https://docs.rs/tracekit/latest/tracekit/fn.init.html
#[proc_macro_attribute]
pub fn log_errors(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Errors, args, item)
}

/// Full tracing in one attribute: the call runs in a span named after the fn (so every line
/// logged inside goes to the span's component and nests under the request's span), with an
/// entry record (`<fn> started`, with the arguments), the timing record (`<fn> finished`,
/// which is also the exit record: duration, status and, with `log_result`, the result) and
/// the error and panic records of [`log_errors`] (panics resume).
///
/// | argument | default | meaning |
/// | --- | --- | --- |
/// | `component = "serving"` | inherited | the span's component: every record inside goes there |
/// | `level = "info"` | `"info"` | level of the span, the entry and the timing records |
/// | `log_args = bool` | `true` | arguments in the entry record (the error records, in the same span, do not repeat them; stack `#[log_errors]` to have them there too) |
/// | `log_result = bool` | `false` | the returned value in the timing record |
/// | `skip(a, b)` | | leave these parameters out |
///
/// Stack `#[log_errors(reraise = false)]` on it to turn panics into the fn's error.
///
/// # Examples
///
/// ```
/// #[tracekit::trace_execution(component = "serving")]
/// async fn serve_recommendations(user_id: &str) -> Vec<u64> {
///     tracing::info!(count = 2_u64, "ranked"); // goes to serving/, inside the span
///     vec![7, 9]
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # let _default = tracing::dispatcher::set_default(&dispatch);
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let ctx = tracekit::LogContext::new().request_id("req-123");
/// rt.block_on(ctx.instrument(serve_recommendations("user-456")));
/// # drop(_default);
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/serving/serving.log"))?;
/// let messages: Vec<String> = text
///     .lines()
///     .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
///     .filter(|r| r["request_id"] == "req-123" && r.get("span").is_none())
///     .map(|r| r["message"].as_str().unwrap().to_owned())
///     .collect();
/// assert_eq!(
///     messages,
///     ["serve_recommendations started", "ranked", "serve_recommendations finished"]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[proc_macro_attribute]
pub fn trace_execution(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Trace, args, item)
}

fn run(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match try_run(kind, args.into(), item.clone()) {
        Ok(out) => out.into(),
        Err(err) => fallback(err, item).into(),
    }
}

fn try_run(kind: Kind, args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args = Args::parse(kind, Span::call_site(), args)?;
    let mut func = parse_fn(kind, item)?;
    let plan = Plan::merge(args, &mut func.attrs)?;
    expand::expand(&plan, func)
}

/// The fn, or an error naming what the attribute was put on instead.
fn parse_fn(kind: Kind, item: TokenStream2) -> syn::Result<ItemFn> {
    if let Ok(func) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(func);
    }
    if let Ok(decl) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if decl.default.is_none() {
            return Err(Error::new(
                decl.sig.fn_token.span,
                format!(
                    "`#[{}]` needs the fn's body: put it on the fn in each `impl` block, not on the trait's declaration",
                    kind.name()
                ),
            ));
        }
    }
    let first = item.clone().into_iter().next().map(|t| t.span());
    let (what, span) = match syn::parse2::<Item>(item) {
        Ok(Item::Struct(s)) => ("a struct", s.struct_token.span),
        Ok(Item::Enum(e)) => ("an enum", e.enum_token.span),
        Ok(Item::Impl(i)) => ("an impl block (put it on each method)", i.impl_token.span),
        Ok(Item::Mod(m)) => ("a module", m.mod_token.span),
        Ok(Item::Trait(t)) => ("a trait", t.trait_token.span),
        Ok(Item::Const(c)) => ("a const", c.const_token.span),
        Ok(Item::Static(s)) => ("a static", s.static_token.span),
        Ok(Item::Type(t)) => ("a type alias", t.type_token.span),
        Ok(Item::Use(u)) => ("a use declaration", u.use_token.span),
        _ => ("this item", first.unwrap_or_else(Span::call_site)),
    };
    Err(Error::new(
        span,
        format!(
            "`#[{}]` applies to fns (free fns, methods, async fns), not to {what}",
            kind.name()
        ),
    ))
}

/// The item as it was (without tracekit decorators, which would only repeat the error) and
/// the error: one mistake, one message.
fn fallback(err: Error, item: TokenStream2) -> TokenStream2 {
    let err = err.to_compile_error();
    match syn::parse2::<Item>(item.clone()) {
        Ok(mut parsed) => {
            if let Some(attrs) = item_attrs(&mut parsed) {
                attrs.retain(|a| attr::Kind::of_path(a.path()).is_none());
            }
            let parsed = parsed.into_token_stream();
            quote!(#parsed #err)
        }
        Err(_) => quote!(#item #err),
    }
}

fn item_attrs(item: &mut Item) -> Option<&mut Vec<syn::Attribute>> {
    Some(match item {
        Item::Fn(f) => &mut f.attrs,
        Item::Struct(s) => &mut s.attrs,
        Item::Enum(e) => &mut e.attrs,
        Item::Impl(i) => &mut i.attrs,
        Item::Mod(m) => &mut m.attrs,
        Item::Trait(t) => &mut t.attrs,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacted_names_follow_the_writers_default_list() {
        assert_eq!(
            crate::expand::REDACTED_NAMES,
            tracekit::exporters::DEFAULT_REDACT_KEYS
        );
        assert!(crate::expand::is_redacted_name("db_Password"));
        assert!(crate::expand::is_redacted_name("API_KEY"));
        assert!(!crate::expand::is_redacted_name("user_id"));
    }
}
