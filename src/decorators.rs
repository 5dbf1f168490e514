//! The runtime of the decorators (`#[log_performance]`, `#[log_errors]`, `#[trace_execution]`,
//! crate `tracekit-macros`): the generated code wraps the fn's body and calls these.
//!
//! A call goes: the level checks (in the generated code: `tracing` callsites, cached), then
//! [`Call::start`]; the arguments are encoded once into a buffer when a record will carry
//! them; [`Call::begin`] writes the entry record and reads the clock; the body runs under
//! `catch_unwind` ([`Call::run`], [`Call::catch`]); its value is inspected for an `Err`
//! (the `Report*` traits pick, per type, how to read the error); the timing record closes
//! the call, and a panic is logged and resumed ([`Call::resume`]) or returned as the error
//! ([`Call::recover`]).
//!
//! Records are written straight to the writer, like [`Logger`](crate::Logger)'s, in the
//! current span's scope: request, user and session ids, trace and span ids, `LogContext`
//! fields. `context.function`, `file` and `line` are the decorated fn's.
//!
//! # Panics and the panic hook
//!
//! tracekit's panic hook writes a `CRITICAL` record for every panic. A panic inside a call
//! whose decorator logs panics would then be written twice, so the hook leaves it to the
//! decorator: a per-thread count of such calls on the stack tells the hook one will catch
//! it, and the hook hands over the message, location and backtrace taken at the panic
//! (the decorator, catching after the unwind, could only take its own). Nested decorated
//! calls write the panic once: the innermost writes it and marks the payload, the outer
//! ones see the mark. A panic that something inside the call catches itself never reaches
//! the decorator: the hook's record is then written when the call (or its poll) returns.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::exception::{type_name_len, write_source_chain};
use crate::exporters::{
    current_thread_id, layout, CodeContext, EncodedFields, Exception, FieldWriter, Fields, Level,
    Record,
};
use crate::panic_record::PANIC_FLUSH_TIMEOUT;
use crate::scope::Scope;
use crate::sink::{with_current, Handle, Sink};

/// What a decorated fn writes, fixed at compile time (one `static` per fn).
#[doc(hidden)]
#[derive(Debug)]
pub struct Site {
    pub name: &'static str,
    pub module: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub component: Option<&'static str>,
    /// The level of the entry and timing records.
    pub level: Level,
    pub entry: bool,
    pub timing: bool,
    pub errors: bool,
    pub args_entry: bool,
    pub args_timing: bool,
    pub args_errors: bool,
    /// `reraise = false`: a panic is always caught, to be returned, even with nothing to log.
    pub recover: bool,
    pub started: &'static str,
    pub finished: &'static str,
    pub failed: &'static str,
    pub panicked: &'static str,
}

/// One call of a decorated fn.
#[doc(hidden)]
#[derive(Debug)]
pub struct Call {
    site: &'static Site,
    /// Entry and timing records pass the level filter.
    main: bool,
    /// Error records pass it.
    errors: bool,
    args: Option<EncodedFields>,
    start: Option<Instant>,
    failed: bool,
}

impl Call {
    /// A call; `main` and `errors` say which of its records the level filter lets through.
    #[inline]
    pub fn start(site: &'static Site, main: bool, errors: bool) -> Call {
        Call {
            site,
            main: main && (site.entry || site.timing),
            errors: errors && site.errors,
            args: None,
            start: None,
            failed: false,
        }
    }

    /// True when any record of this call can be written.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.main || self.errors
    }

    /// True when an enabled record carries the arguments.
    #[inline]
    pub fn wants_args(&self) -> bool {
        let s = self.site;
        (self.main && (s.entry && s.args_entry || s.timing && s.args_timing))
            || (self.errors && s.args_errors)
    }

    /// Encodes the arguments (with the writer's redaction) for the records to come.
    pub fn capture_args(&mut self, write: &dyn Fn(&mut FieldWriter<'_>)) {
        // The writer's encoder only: no span lookup.
        self.args = tracing::dispatcher::get_default(|dispatch| {
            let handle = dispatch.downcast_ref::<Handle>()?;
            let mut args = ARGS_POOL
                .try_with(|p| p.borrow_mut().pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            args.write(handle.sink.writer.encoder(), write);
            Some(args)
        });
    }

    /// Writes the entry record and starts the clock.
    #[inline]
    pub fn begin(&mut self) {
        if !self.main {
            return;
        }
        let site = self.site;
        if site.entry {
            let args = self.args.as_ref().filter(|_| site.args_entry);
            self.write(
                site.level,
                site.started,
                &|w| write_args(w, args),
                None,
                false,
            );
        }
        if site.timing {
            self.start = Some(Instant::now());
        }
    }

    fn counts_panics(&self) -> bool {
        self.errors
    }

    /// Runs a sync body, catching a panic.
    #[inline]
    pub fn run<R>(&self, body: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
        if !self.is_active() && !self.site.recover {
            // Nothing to write, so nothing to catch: the fast path of a filtered-out call.
            return Ok(body());
        }
        if !self.counts_panics() {
            return catch_unwind(AssertUnwindSafe(body));
        }
        enter_frame();
        let out = catch_unwind(AssertUnwindSafe(body));
        leave_frame(out.is_ok());
        out
    }

    /// Wraps an async body: each poll catches a panic.
    pub fn catch<F: Future>(&self, future: F) -> CatchUnwind<F> {
        CatchUnwind {
            future,
            active: self.is_active() || self.site.recover,
            counted: self.counts_panics(),
        }
    }

    /// Logs a returned error (the `Report*` traits call this).
    pub fn report_error(&mut self, kind: &str, message: &str, traceback: &str) {
        self.failed = true;
        if !self.errors {
            return;
        }
        let site = self.site;
        let args = self.args.as_ref().filter(|_| site.args_errors);
        self.write(
            Level::ERROR,
            site.failed,
            &|w| write_args(w, args),
            Some(Exception {
                kind,
                message,
                traceback: Some(traceback).filter(|t| !t.is_empty()),
            }),
            false,
        );
    }

    /// True when the timing record will be written with a result.
    #[inline]
    pub fn wants_result(&self) -> bool {
        self.start.is_some() && !self.failed
    }

    /// Writes the timing record.
    #[inline]
    pub fn finish(&mut self) {
        self.finish_with(&|_| {});
    }

    /// Writes the timing record; `result` adds the returned value.
    pub fn finish_with(&mut self, result: &dyn Fn(&mut FieldWriter<'_>)) {
        let Some(start) = self.start.take() else {
            return;
        };
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let site = self.site;
        let args = self.args.as_ref().filter(|_| site.args_timing);
        let status = if self.failed { "error" } else { "success" };
        self.write(
            site.level,
            site.finished,
            &|w| {
                w.f64(layout::DURATION_MS.name(), ms);
                w.str("status", status);
                write_args(w, args);
                if !self.failed {
                    result(w);
                }
            },
            None,
            true,
        );
    }

    /// Logs a panic caught in the body and resumes it.
    pub fn resume(&mut self, payload: Box<dyn Any + Send>) -> ! {
        self.log_panic(&*payload);
        if FRAMES.with(Cell::get) == 0 {
            LOGGED.with(|l| l.set(0));
        }
        resume_unwind(payload)
    }

    /// Logs a panic caught in the body and returns it as the fn's value
    /// (`#[log_errors(reraise = false)]`).
    pub fn recover<R: FromPanic>(&mut self, payload: Box<dyn Any + Send>) -> R {
        let panicked = self.log_panic(&*payload);
        // The panic ends here: an outer decorated call sees a value, not this panic.
        LOGGED.with(|l| l.set(0));
        R::from_panic(panicked)
    }

    fn log_panic(&mut self, payload: &(dyn Any + Send)) -> Panicked {
        self.failed = true;
        let message = payload_message(payload);
        HAS_PENDING.with(|h| h.set(false));
        let pending = PENDING.with(|p| p.borrow_mut().take());
        if self.counts_panics() {
            let addr = payload as *const (dyn Any + Send) as *const () as usize;
            if LOGGED.with(Cell::get) != addr {
                LOGGED.with(|l| l.set(addr));
                let mut traceback = String::new();
                match &pending {
                    Some(p) => {
                        if let Some((file, line)) = &p.location {
                            let _ = writeln!(traceback, "panicked at {file}:{line}");
                        }
                        traceback.push_str(&p.backtrace);
                    }
                    None => {
                        let _ = write!(traceback, "{}", Backtrace::force_capture());
                    }
                }
                let site = self.site;
                let args = self.args.as_ref().filter(|_| site.args_errors);
                self.write(
                    Level::CRITICAL,
                    site.panicked,
                    &|w| write_args(w, args),
                    Some(Exception {
                        kind: "panic",
                        message: &message,
                        traceback: Some(&traceback),
                    }),
                    false,
                );
                with_current(|sink, _| {
                    let _ = sink.writer.flush_with_timeout(PANIC_FLUSH_TIMEOUT);
                });
            }
        }
        self.finish();
        Panicked {
            function: self.site.name,
            message,
        }
    }

    fn write(
        &self,
        level: Level,
        message: &str,
        data: &dyn Fn(&mut FieldWriter<'_>),
        exception: Option<Exception<'_>>,
        timing: bool,
    ) {
        let site = self.site;
        with_current(|sink, scope| {
            let component = site
                .component
                .or_else(|| scope.and_then(|s| s.component.as_deref()))
                .unwrap_or_else(|| sink.component_for_target(site.module));
            let data = RecordData(data);
            let mut record = Record::new(level, component, message)
                .timing(timing)
                .logger(site.module)
                .data(&data)
                .context(CodeContext {
                    function: Some(site.name),
                    file: Some(site.file),
                    line: Some(site.line),
                    thread: Some(current_thread_id()),
                    process: Some(sink.pid),
                });
            if let Some(exception) = exception {
                record = record.exception(exception);
            }
            sink.write_direct(scope, record);
        });
    }
}

impl Drop for Call {
    #[inline]
    fn drop(&mut self) {
        if let Some(args) = self.args.take() {
            recycle(args);
        }
    }
}

/// The argument buffer goes back to this thread's pool, keeping its capacity: the next call
/// encodes without growing a fresh buffer.
#[inline(never)]
fn recycle(mut args: EncodedFields) {
    args.clear();
    let _ = ARGS_POOL.try_with(|p| {
        if let Ok(mut pool) = p.try_borrow_mut() {
            if pool.len() < ARGS_POOL_SIZE {
                pool.push(args);
            }
        }
    });
}

/// Argument buffers kept per thread (one per decorated call in flight on it, up to this).
const ARGS_POOL_SIZE: usize = 16;

thread_local! {
    static ARGS_POOL: RefCell<Vec<EncodedFields>> = const { RefCell::new(Vec::new()) };
}

fn write_args(w: &mut FieldWriter<'_>, args: Option<&EncodedFields>) {
    if let Some(args) = args {
        w.object("args", |o| args.write_fields(o));
    }
}

/// A decorator record's `data` (the scope's fields follow: see `Sink::write_direct`).
struct RecordData<'a>(&'a dyn Fn(&mut FieldWriter<'_>));

impl Fields for RecordData<'_> {
    fn write_fields(&self, w: &mut FieldWriter<'_>) {
        (self.0)(w);
    }
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned())
}

pin_project_lite::pin_project! {
    /// An async body whose panics are caught at each poll.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct CatchUnwind<F> {
        #[pin]
        future: F,
        // Anything to write or a panic to return: else polled without catching.
        active: bool,
        counted: bool,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        if !*this.active {
            return future.poll(cx).map(Ok);
        }
        if *this.counted {
            enter_frame();
        }
        let out = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        if *this.counted {
            leave_frame(out.is_ok());
        }
        match out {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

// ---- Arguments: `Serialize` when the type has it, else `Debug` (autoref specialization:
// method resolution tries `&&Arg` first, then `&Arg`, then `Arg`).

/// An argument or result to write.
#[doc(hidden)]
#[derive(Debug)]
pub struct Arg<'a, T: ?Sized>(pub &'a T);

#[doc(hidden)]
pub trait ArgSerialize {
    fn __tk_arg(&self) -> SerializeTag {
        SerializeTag
    }
}
impl<T: serde::Serialize + ?Sized> ArgSerialize for &&Arg<'_, T> {}

#[doc(hidden)]
pub trait ArgDebug {
    fn __tk_arg(&self) -> DebugTag {
        DebugTag
    }
}
impl<T: fmt::Debug + ?Sized> ArgDebug for &Arg<'_, T> {}

#[doc(hidden)]
pub trait ArgNeither {
    fn __tk_arg(&self) -> NeitherTag {
        NeitherTag
    }
}
impl<T: ?Sized> ArgNeither for Arg<'_, T> {}

#[doc(hidden)]
#[derive(Debug)]
pub struct SerializeTag;
impl SerializeTag {
    #[inline]
    pub fn write<T: serde::Serialize + ?Sized>(self, w: &mut FieldWriter<'_>, key: &str, v: &T) {
        w.serialize(key, v);
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct DebugTag;
impl DebugTag {
    #[inline]
    pub fn write<T: fmt::Debug + ?Sized>(self, w: &mut FieldWriter<'_>, key: &str, v: &T) {
        w.debug(key, &v);
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct NeitherTag;
impl NeitherTag {
    pub fn write<T: Loggable + ?Sized>(self, _: &mut FieldWriter<'_>, _: &str, _: &T) {}
}

/// Reached only for a value with neither `Serialize` nor `Debug`; never implemented, so the
/// compiler reports the message below at the parameter.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be logged: it implements neither `serde::Serialize` nor `Debug`",
    label = "this value is logged by the decorator",
    note = "leave the parameter out with `skip(name)`, set `log_args = false` (or `log_result = false` for the return value), or derive `Debug`"
)]
pub trait Loggable {}

// ---- The returned value: an `Err` is reported with the best view its type allows
// (`&&&&&Outcome` first, down to `Outcome`).

/// The value a decorated body returned.
#[doc(hidden)]
#[derive(Debug)]
pub struct Outcome<'a, R: ?Sized>(pub &'a R);

/// `Result<T, E>` with `E: Error + 'static`.
#[doc(hidden)]
pub trait ReportStdError {
    fn __tk_report(&self, call: &mut Call);
}
impl<T, E: Error + 'static> ReportStdError for &&&&&Outcome<'_, Result<T, E>> {
    fn __tk_report(&self, call: &mut Call) {
        if let Err(e) = self.0 {
            report(call, type_name_of::<E>(), e, None);
        }
    }
}

/// `Result<T, E>` with a boxed or `anyhow` error.
#[doc(hidden)]
pub trait ReportDynError {
    fn __tk_report(&self, call: &mut Call);
}
impl<T, E: DynError> ReportDynError for &&&&Outcome<'_, Result<T, E>> {
    fn __tk_report(&self, call: &mut Call) {
        if let Err(e) = self.0 {
            let inner = e.as_dyn_error();
            let debug = format!("{inner:?}");
            let len = type_name_len(&debug);
            let kind = if len > 0 {
                Cow::Owned(debug[..len].to_owned())
            } else {
                type_name_of::<E>()
            };
            report(call, kind, inner, e.captured_backtrace());
        }
    }
}

/// `Result<T, E>` with `E: Display` only.
#[doc(hidden)]
pub trait ReportDisplay {
    fn __tk_report(&self, call: &mut Call);
}
impl<T, E: fmt::Display> ReportDisplay for &&&Outcome<'_, Result<T, E>> {
    fn __tk_report(&self, call: &mut Call) {
        if let Err(e) = self.0 {
            call.report_error(&type_name_of::<E>(), &e.to_string(), "");
        }
    }
}

/// `Result<T, E>` with `E: Debug` only.
#[doc(hidden)]
pub trait ReportDebug {
    fn __tk_report(&self, call: &mut Call);
}
impl<T, E: fmt::Debug> ReportDebug for &&Outcome<'_, Result<T, E>> {
    fn __tk_report(&self, call: &mut Call) {
        if let Err(e) = self.0 {
            call.report_error(&type_name_of::<E>(), &format!("{e:?}"), "");
        }
    }
}

/// `Result<T, E>` with an `E` that cannot be printed: its type name only.
#[doc(hidden)]
pub trait ReportOpaque {
    fn __tk_report(&self, call: &mut Call);
}
impl<T, E> ReportOpaque for &Outcome<'_, Result<T, E>> {
    fn __tk_report(&self, call: &mut Call) {
        if self.0.is_err() {
            let kind = type_name_of::<E>();
            call.report_error(&kind, &kind, "");
        }
    }
}

/// Anything else: no error to report.
#[doc(hidden)]
pub trait ReportNone {
    fn __tk_report(&self, call: &mut Call);
}
impl<R: ?Sized> ReportNone for Outcome<'_, R> {
    #[inline]
    fn __tk_report(&self, _: &mut Call) {}
}

fn report(
    call: &mut Call,
    kind: Cow<'_, str>,
    error: &(dyn Error + 'static),
    backtrace: Option<&Backtrace>,
) {
    if !call.errors {
        call.failed = true;
        return;
    }
    let message = error.to_string();
    let mut traceback = String::new();
    write_source_chain(&mut traceback, error);
    if let Some(bt) = backtrace.filter(|b| b.status() == BacktraceStatus::Captured) {
        if !traceback.is_empty() {
            traceback.push('\n');
        }
        let _ = write!(traceback, "{bt}");
    }
    call.report_error(&kind, &message, &traceback);
}

/// Error types that are not `Error` themselves but hold one: boxed errors and
/// `anyhow::Error`.
#[doc(hidden)]
pub trait DynError {
    fn as_dyn_error(&self) -> &(dyn Error + 'static);
    fn captured_backtrace(&self) -> Option<&Backtrace> {
        None
    }
}

impl DynError for Box<dyn Error> {
    fn as_dyn_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

impl DynError for Box<dyn Error + Send> {
    fn as_dyn_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

impl DynError for Box<dyn Error + Send + Sync> {
    fn as_dyn_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
}

impl DynError for anyhow::Error {
    fn as_dyn_error(&self) -> &(dyn Error + 'static) {
        &**self
    }
    fn captured_backtrace(&self) -> Option<&Backtrace> {
        Some(self.backtrace())
    }
}

/// The error type's name as written in code: `ParseIntError`, `Box<dyn Error + Send + Sync>`,
/// `MyError<String>` (every path shortened to its last segment).
fn type_name_of<E: ?Sized>() -> Cow<'static, str> {
    readable_type_name(std::any::type_name::<E>())
}

pub(crate) fn readable_type_name(full: &'static str) -> Cow<'static, str> {
    if !full.contains("::") {
        return Cow::Borrowed(full);
    }
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (i, c) in full.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            continue;
        }
        push_last_segment(&mut out, &full[segment_start..i]);
        out.push(c);
        segment_start = i + c.len_utf8();
    }
    push_last_segment(&mut out, &full[segment_start..]);
    Cow::Owned(out)
}

fn push_last_segment(out: &mut String, path: &str) {
    out.push_str(path.rsplit("::").next().unwrap_or(path));
}

// ---- The result value: a `Result`'s `Ok` value, else the value itself.

/// The value whose `Ok` part (for a `Result`) the timing record carries.
#[doc(hidden)]
#[derive(Debug)]
pub struct OkValue<'a, R: ?Sized>(pub &'a R);

#[doc(hidden)]
pub trait OkOfResult {
    type Value: ?Sized;
    fn __tk_ok(&self) -> Option<&Self::Value>;
}
impl<'a, T, E> OkOfResult for &OkValue<'a, Result<T, E>> {
    type Value = T;
    fn __tk_ok(&self) -> Option<&T> {
        self.0.as_ref().ok()
    }
}

#[doc(hidden)]
pub trait OkOfOther {
    type Value: ?Sized;
    fn __tk_ok(&self) -> Option<&Self::Value>;
}
impl<'a, R: ?Sized> OkOfOther for OkValue<'a, R> {
    type Value = R;
    fn __tk_ok(&self) -> Option<&R> {
        Some(self.0)
    }
}

// ---- Panics.

/// A panic that `#[log_errors(reraise = false)]` caught and returned as the fn's error.
///
/// It is an [`Error`], so `Box<dyn Error>`, `Box<dyn Error + Send + Sync>` and
/// `anyhow::Error` convert from it; give your own error enum a `From<Panicked>` to use it
/// there.
///
/// # Examples
///
/// ```
/// #[tracekit::log_errors(reraise = false)]
/// fn risky(n: u32) -> Result<u32, anyhow::Error> {
///     if n == 0 { panic!("n must be positive") }
///     Ok(100 / n)
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, _guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// let err = risky(0).unwrap_err();
/// let panicked = err.downcast_ref::<tracekit::Panicked>().unwrap();
/// assert_eq!(panicked.function(), "risky");
/// assert_eq!(panicked.message(), "n must be positive");
/// assert_eq!(err.to_string(), "risky panicked: n must be positive");
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panicked {
    function: &'static str,
    message: String,
}

impl Panicked {
    /// The decorated fn that caught the panic.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The panic's message (`Box<dyn Any>` for a payload that is not a string).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} panicked: {}", self.function, self.message)
    }
}

impl Error for Panicked {}

/// The return types `#[log_errors(reraise = false)]` can hand a caught panic back in:
/// `Result<T, E>` with `E: From<Panicked>` (the panic becomes `Err(e)`) and `Option<T>`
/// (it becomes `None`).
///
/// # Examples
///
/// ```
/// use tracekit::{FromPanic, Panicked};
///
/// #[derive(Debug)]
/// enum Outcome { Done(u32), Crashed(String) }
/// impl FromPanic for Outcome {
///     fn from_panic(p: Panicked) -> Self { Outcome::Crashed(p.message().to_owned()) }
/// }
///
/// #[tracekit::log_errors(reraise = false)]
/// fn step(n: u32) -> Outcome {
///     if n > 9 { panic!("too big") }
///     Outcome::Done(n)
/// }
///
/// assert!(matches!(step(3), Outcome::Done(3)));
/// assert!(matches!(step(10), Outcome::Crashed(m) if m == "too big"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[log_errors(reraise = false)]` cannot return a caught panic as a `{Self}`",
    label = "this return type cannot carry the panic",
    note = "return `Result<T, E>` with `E: From<tracekit::Panicked>` (`Box<dyn Error>` and `anyhow::Error` have it) or `Option<T>`, implement `tracekit::FromPanic`, or keep `reraise = true`"
)]
pub trait FromPanic {
    /// The value standing for the panic.
    fn from_panic(panic: Panicked) -> Self;
}

impl<T, E: From<Panicked>> FromPanic for Result<T, E> {
    fn from_panic(panic: Panicked) -> Self {
        Err(E::from(panic))
    }
}

impl<T> FromPanic for Option<T> {
    fn from_panic(_: Panicked) -> Self {
        None
    }
}

/// A panic the hook handed over to a decorator.
struct PendingPanic {
    message: String,
    location: Option<(String, u32)>,
    backtrace: String,
}

thread_local! {
    /// Decorated calls that log panics, on this thread's stack (sync calls, and async calls
    /// while they are polled).
    static FRAMES: Cell<u32> = const { Cell::new(0) };
    /// The payload of the panic a decorator already wrote (0: none), so outer ones skip it.
    static LOGGED: Cell<usize> = const { Cell::new(0) };
    /// `PENDING` is set (checked on every return without touching the `RefCell`).
    static HAS_PENDING: Cell<bool> = const { Cell::new(false) };
    /// The panic the hook handed over, with its backtrace.
    static PENDING: RefCell<Option<PendingPanic>> = const { RefCell::new(None) };
}

fn enter_frame() {
    FRAMES.with(|f| f.set(f.get() + 1));
}

fn leave_frame(returned: bool) {
    FRAMES.with(|f| f.set(f.get().saturating_sub(1)));
    if returned && HAS_PENDING.with(Cell::get) {
        // A panic handed over inside the call was caught by the call itself: nobody else
        // will write it.
        HAS_PENDING.with(|h| h.set(false));
        if let Some(p) = PENDING.with(|p| p.borrow_mut().take()) {
            with_current(|sink, scope| write_swallowed(sink, scope, &p));
        }
    }
}

fn write_swallowed(sink: &Sink, scope: Option<&Scope>, p: &PendingPanic) {
    crate::panic_record::write_record(
        sink,
        scope,
        &p.message,
        p.location.as_ref().map(|(f, l)| (f.as_str(), *l)),
        &p.backtrace,
    );
}

/// Called by tracekit's panic hook: true when a decorator on this thread's stack will
/// catch and write this panic (the hook then writes nothing itself).
pub(crate) fn take_over_panic(info: &PanicHookInfo<'_>) -> bool {
    let _ = LOGGED.try_with(|l| l.set(0));
    if !cfg!(panic = "unwind") || FRAMES.try_with(Cell::get).unwrap_or(0) == 0 {
        return false;
    }
    let payload = info.payload();
    let pending = PendingPanic {
        message: payload_message(payload),
        location: info.location().map(|l| (l.file().to_owned(), l.line())),
        backtrace: Backtrace::force_capture().to_string(),
    };
    let _ = HAS_PENDING.try_with(|h| h.set(true));
    PENDING
        .try_with(|p| *p.borrow_mut() = Some(pending))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_shortened_everywhere() {
        assert_eq!(
            readable_type_name("core::num::error::ParseIntError"),
            "ParseIntError"
        );
        assert_eq!(
            readable_type_name("alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>"),
            "Box<dyn Error + Send + Sync>"
        );
        assert_eq!(
            readable_type_name("my_app::Wrapper<alloc::string::String, (u8, &str)>"),
            "Wrapper<String, (u8, &str)>"
        );
        assert_eq!(readable_type_name("u32"), "u32");
    }

    #[test]
    fn panicked_converts_into_the_usual_error_types() {
        let p = Panicked {
            function: "f",
            message: "boom".into(),
        };
        let r: Result<(), Box<dyn Error + Send + Sync>> = FromPanic::from_panic(p.clone());
        assert_eq!(r.unwrap_err().to_string(), "f panicked: boom");
        let r: Result<(), anyhow::Error> = FromPanic::from_panic(p.clone());
        assert!(r.unwrap_err().downcast_ref::<Panicked>().is_some());
        let o: Option<u8> = FromPanic::from_panic(p);
        assert!(o.is_none());
    }
}
