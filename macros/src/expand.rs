//! Code generation: the fn keeps its signature; its body runs inside a closure (an `async`
//! block for async fns) that the runtime in `tracekit::__private` times, catches and reports.
//! Everything that is not specific to the fn's types lives in that runtime.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Error, FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::plan::Plan;

/// The parameter names never logged whatever the writer's redaction list (the default list of
/// `tracekit_exporters::DEFAULT_REDACT_KEYS`; a unit test keeps the two equal). Names the
/// writer's list adds at run time are redacted there, before their value is formatted.
pub(crate) const REDACTED_NAMES: [&str; 4] = ["password", "token", "secret", "api_key"];

/// True when a parameter of this name is never captured.
pub(crate) fn is_redacted_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    REDACTED_NAMES.iter().any(|n| lower.contains(n))
}

/// The wrapped fn.
pub(crate) fn expand(plan: &Plan, mut func: ItemFn) -> syn::Result<TokenStream> {
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        return Err(Error::new(
            c.span(),
            format!(
                "`#[{}]` cannot wrap a `const fn`: it reads the clock and writes records at run time",
                plan.kinds[0].name()
            ),
        ));
    }
    let ident = &sig.ident;
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    let is_async = sig.asyncness.is_some();

    let ret_ty: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Some(no_reraise) = &plan.no_reraise {
        if is_unit(&ret_ty) {
            let mut err = Error::new(
                sig.output.span().join(ident.span()).unwrap_or(ident.span()),
                format!(
                    "`#[log_errors(reraise = false)]` returns a caught panic as the fn's error, \
                     but `{name}` returns `()`, which cannot carry one: return `Result<T, E>` \
                     (with `E: From<tracekit::Panicked>`) or `Option<T>`, or keep `reraise = true`"
                ),
            );
            err.combine(Error::new(
                no_reraise.span(),
                "`reraise = false` given here",
            ));
            return Err(err);
        }
    }

    let capture = capture_args(plan, &func)?;
    let site = site(plan, &name, ident.span());
    let checks = level_checks(plan);
    let fake_ret = fake_return(&ret_ty);
    let tail = tail(plan, &ret_ty);
    let block = &func.block;

    let span_new = plan.span.then(|| {
        let level = level_path(plan.level.tracing_const());
        let component = plan.component.as_ref().map(|c| quote!(, component = #c));
        quote! {
            let __tk_span = ::tracekit::__private::tracing::span!(#level, #name #component);
        }
    });

    let body = if is_async {
        let inner = quote! {
            #[allow(unused_mut)]
            let mut __tk_call = ::tracekit::__private::Call::start(&__TK_SITE, __tk_main, __tk_errs);
            #capture
            __tk_call.begin();
            let __tk_out = __tk_call.catch(async move { #fake_ret #block }).await;
            #tail
        };
        if plan.span {
            quote! {
                #span_new
                ::tracekit::__private::tracing::Instrument::instrument(async move { #inner }, __tk_span).await
            }
        } else {
            inner
        }
    } else {
        let enter = plan
            .span
            .then(|| quote!(let __tk_entered = __tk_span.enter();));
        quote! {
            #span_new
            #enter
            #[allow(unused_mut)]
            let mut __tk_call = ::tracekit::__private::Call::start(&__TK_SITE, __tk_main, __tk_errs);
            #capture
            __tk_call.begin();
            let __tk_out = __tk_call.run(move || { #fake_ret #block });
            #tail
        }
    };

    func.block = syn::parse2(quote! {{
        #site
        #checks
        #body
    }})?;
    Ok(func.into_token_stream())
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

fn level_path(level: &str) -> TokenStream {
    let level = format_ident!("{level}");
    quote!(::tracekit::__private::tracing::Level::#level)
}

/// The static description of the fn: names, location, what to write.
fn site(plan: &Plan, name: &str, name_span: Span) -> TokenStream {
    let component = match &plan.component {
        Some(c) => quote!(::core::option::Option::Some(#c)),
        None => quote!(::core::option::Option::None),
    };
    let level = format_ident!("{}", plan.level.record_const());
    let line = quote_spanned!(name_span=> ::core::line!());
    let Plan {
        entry,
        timing,
        errors,
        args_entry,
        args_timing,
        args_errors,
        ..
    } = plan;
    let recover = plan.no_reraise.is_some();
    let started = format!("{name} started");
    let finished = format!("{name} finished");
    let failed = format!("{name} failed");
    let panicked = format!("{name} panicked");
    quote! {
        static __TK_SITE: ::tracekit::__private::Site = ::tracekit::__private::Site {
            name: #name,
            module: ::core::module_path!(),
            file: ::core::file!(),
            line: #line,
            component: #component,
            level: ::tracekit::exporters::Level::#level,
            entry: #entry,
            timing: #timing,
            errors: #errors,
            args_entry: #args_entry,
            args_timing: #args_timing,
            args_errors: #args_errors,
            recover: #recover,
            started: #started,
            finished: #finished,
            failed: #failed,
            panicked: #panicked,
        };
    }
}

/// `__tk_main` (entry and timing records enabled) and `__tk_errs` (error records enabled):
/// each a `tracing` callsite whose interest is cached, so a filtered-out decorator costs a
/// load or two.
fn level_checks(plan: &Plan) -> TokenStream {
    let main = if plan.timing || plan.entry {
        let level = level_path(plan.level.tracing_const());
        quote!(::tracekit::__private::tracing::enabled!(#level))
    } else {
        quote!(false)
    };
    let errs = if plan.errors {
        let level = level_path("ERROR");
        quote!(::tracekit::__private::tracing::enabled!(#level))
    } else {
        quote!(false)
    };
    quote! {
        let __tk_main: bool = #main;
        let __tk_errs: bool = #errs;
    }
}

/// Writes the loggable parameters into the call's argument buffer, before the body can move
/// them: `Serialize` when the type has it, else `Debug`; a parameter whose name is in the
/// redaction list is written as `"[REDACTED]"` without being read.
fn capture_args(plan: &Plan, func: &ItemFn) -> syn::Result<TokenStream> {
    let mut params: Vec<&Ident> = Vec::new();
    for input in &func.sig.inputs {
        if let FnArg::Typed(pt) = input {
            if let Pat::Ident(pi) = &*pt.pat {
                if pi.subpat.is_none() {
                    params.push(&pi.ident);
                }
            }
        }
    }
    for skipped in &plan.skip {
        if !params.contains(&skipped) {
            return Err(Error::new(
                skipped.span(),
                format!(
                    "`skip({skipped})`: `{}` has no parameter named `{skipped}`",
                    func.sig.ident
                ),
            ));
        }
    }
    if !plan.any_args() {
        return Ok(TokenStream::new());
    }
    let mut writes = Vec::new();
    for param in params {
        if plan.skip.iter().any(|s| s == param) {
            continue;
        }
        let key = param.to_string();
        let key = key.strip_prefix("r#").unwrap_or(&key).to_owned();
        if is_redacted_name(&key) {
            writes.push(quote! {
                __tk_w.str(#key, ::tracekit::__private::REDACTED);
            });
            continue;
        }
        // Spanned at the parameter: a type that cannot be logged is reported there.
        writes.push(quote_spanned! {param.span()=>
            (&&&::tracekit::__private::Arg(&#param)).__tk_arg().write(__tk_w, #key, &#param);
        });
    }
    if writes.is_empty() {
        return Ok(TokenStream::new());
    }
    Ok(quote! {
        if __tk_call.wants_args() {
            #[allow(unused_imports)]
            use ::tracekit::__private::{ArgDebug as _, ArgNeither as _, ArgSerialize as _};
            __tk_call.capture_args(&|__tk_w: &mut ::tracekit::__private::FieldWriter<'_>| {
                #(#writes)*
            });
        }
    })
}

/// Gives the body's closure or async block the fn's return type, so that `?` and `.into()`
/// inside infer as they do in the fn (a closure's annotation could not take `impl Trait` or
/// elided lifetimes; a `let` can, with `impl Trait` as `_`).
fn fake_return(ret: &Type) -> TokenStream {
    let mut ty = ret.clone();
    EraseImplTrait.visit_type_mut(&mut ty);
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __tk_fake_return: #ty = loop {};
            return __tk_fake_return;
        }
    }
}

struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](it.span()),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// After the body: report an `Err`, write the timing record (with the result), hand the
/// value back; or log the panic and resume it (or return it as the error).
fn tail(plan: &Plan, ret: &Type) -> TokenStream {
    let finish = if plan.log_result && plan.timing {
        quote_spanned! {ret.span()=>
            if __tk_call.wants_result() {
                #[allow(unused_imports)]
                use ::tracekit::__private::{ArgDebug as _, ArgNeither as _, ArgSerialize as _, OkOfOther as _, OkOfResult as _};
                __tk_call.finish_with(&|__tk_w: &mut ::tracekit::__private::FieldWriter<'_>| {
                    if let ::core::option::Option::Some(__tk_v) = (&&::tracekit::__private::OkValue(&__tk_ret)).__tk_ok() {
                        (&&&::tracekit::__private::Arg(__tk_v)).__tk_arg().write(__tk_w, "result", __tk_v);
                    }
                });
            } else {
                __tk_call.finish();
            }
        }
    } else {
        quote!(__tk_call.finish();)
    };
    let panic_arm = if plan.no_reraise.is_some() {
        quote_spanned!(ret.span()=> __tk_call.recover(__tk_panic))
    } else {
        quote!(__tk_call.resume(__tk_panic))
    };
    quote! {
        match __tk_out {
            ::core::result::Result::Ok(__tk_ret) => {
                if __tk_call.is_active() {
                    #[allow(unused_imports)]
                    use ::tracekit::__private::{
                        ReportDebug as _, ReportDisplay as _, ReportDynError as _, ReportNone as _,
                        ReportOpaque as _, ReportStdError as _,
                    };
                    (&&&&&&::tracekit::__private::Outcome(&__tk_ret)).__tk_report(&mut __tk_call);
                    #finish
                }
                __tk_ret
            }
            ::core::result::Result::Err(__tk_panic) => #panic_arm,
        }
    }
}
