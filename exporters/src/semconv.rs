//! The OpenTelemetry attribute names the exporters lift out of attributes into the record's
//! own keys (DESIGN.md section 3, "OTel names"), shared by the span and the log exporter.

use std::borrow::Cow;

use crate::otel_value::AttributeValue;
use crate::record::{CodeContext, Exception};

pub(crate) const REQUEST_ID: &str = "request.id";
pub(crate) const USER_ID: &str = "user.id";
pub(crate) const SESSION_ID: &str = "session.id";
pub(crate) const COMPONENT: &str = "component";
pub(crate) const CODE_FUNCTION: &str = "code.function.name";
pub(crate) const CODE_FUNCTION_LEGACY: &str = "code.function";
pub(crate) const CODE_FILE: &str = "code.file.path";
pub(crate) const CODE_FILE_LEGACY: &str = "code.filepath";
pub(crate) const CODE_LINE: &str = "code.line.number";
pub(crate) const CODE_LINE_LEGACY: &str = "code.lineno";
pub(crate) const THREAD_ID: &str = "thread.id";
pub(crate) const PROCESS_PID: &str = "process.pid";
pub(crate) const EXCEPTION_TYPE: &str = "exception.type";
pub(crate) const EXCEPTION_MESSAGE: &str = "exception.message";
pub(crate) const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";
/// The span event that carries an error.
pub(crate) const EXCEPTION_EVENT: &str = "exception";
/// The boolean log attribute that marks a timing record.
pub(crate) const TIMING: &str = "tracekit.timing";

/// The exception type written when the attributes name none.
pub(crate) const DEFAULT_EXCEPTION_TYPE: &str = "Error";

/// Which record key an attribute feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    RequestId,
    UserId,
    SessionId,
    Component,
    Function,
    FunctionLegacy,
    File,
    FileLegacy,
    Line,
    LineLegacy,
    Thread,
    Process,
    ExceptionType,
    ExceptionMessage,
    ExceptionStacktrace,
    Timing,
}

/// Which attribute groups an exporter lifts out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lift {
    /// `exception.*` attributes become the record's exception.
    pub exception: bool,
    /// `tracekit.timing` marks a timing record.
    pub timing: bool,
}

fn slot(key: &str) -> Option<Slot> {
    Some(match key {
        REQUEST_ID => Slot::RequestId,
        USER_ID => Slot::UserId,
        SESSION_ID => Slot::SessionId,
        COMPONENT => Slot::Component,
        CODE_FUNCTION => Slot::Function,
        CODE_FUNCTION_LEGACY => Slot::FunctionLegacy,
        CODE_FILE => Slot::File,
        CODE_FILE_LEGACY => Slot::FileLegacy,
        CODE_LINE => Slot::Line,
        CODE_LINE_LEGACY => Slot::LineLegacy,
        THREAD_ID => Slot::Thread,
        PROCESS_PID => Slot::Process,
        EXCEPTION_TYPE => Slot::ExceptionType,
        EXCEPTION_MESSAGE => Slot::ExceptionMessage,
        EXCEPTION_STACKTRACE => Slot::ExceptionStacktrace,
        TIMING => Slot::Timing,
        _ => return None,
    })
}

/// The slot `key` feeds when its value has a type the slot takes; attributes with a known
/// name but an unusable value (a list as `request.id`, a negative line) stay ordinary
/// attributes, so nothing is lost.
fn accepted<V: AttributeValue + ?Sized>(key: &str, value: &V, lift: Lift) -> Option<Slot> {
    let slot = slot(key)?;
    let ok = match slot {
        Slot::RequestId | Slot::UserId | Slot::SessionId => {
            value.as_text().is_some() || value.as_int().is_some()
        }
        Slot::Component | Slot::Function | Slot::FunctionLegacy | Slot::File | Slot::FileLegacy => {
            value.as_text().is_some()
        }
        Slot::Line | Slot::LineLegacy | Slot::Process => {
            value.as_int().is_some_and(|n| u32::try_from(n).is_ok())
        }
        Slot::Thread => value.as_int().is_some_and(|n| n >= 0),
        Slot::ExceptionType | Slot::ExceptionMessage | Slot::ExceptionStacktrace => {
            lift.exception && value.as_text().is_some()
        }
        Slot::Timing => lift.timing && value.as_flag().is_some(),
    };
    ok.then_some(slot)
}

/// True when the attribute is lifted into a record key and so is not repeated in `data` or
/// `span.attributes`.
pub(crate) fn is_lifted<V: AttributeValue + ?Sized>(key: &str, value: &V, lift: Lift) -> bool {
    accepted(key, value, lift).is_some()
}

/// The record keys found in one record's attributes.
#[derive(Debug, Default)]
pub(crate) struct Lifted<'a> {
    pub request_id: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub component: Option<&'a str>,
    function: Option<&'a str>,
    function_legacy: Option<&'a str>,
    file: Option<&'a str>,
    file_legacy: Option<&'a str>,
    line: Option<u32>,
    line_legacy: Option<u32>,
    thread: Option<u64>,
    process: Option<u32>,
    pub exception_type: Option<&'a str>,
    pub exception_message: Option<&'a str>,
    pub exception_stacktrace: Option<&'a str>,
    pub timing: bool,
}

impl<'a> Lifted<'a> {
    /// Collects the lifted attributes; a later attribute of the same name wins.
    pub(crate) fn collect<V, I>(attributes: I, lift: Lift) -> Lifted<'a>
    where
        V: AttributeValue + ?Sized + 'a,
        I: IntoIterator<Item = (&'a str, &'a V)>,
    {
        let mut l = Lifted::default();
        for (key, value) in attributes {
            let Some(slot) = accepted(key, value, lift) else {
                continue;
            };
            let text = || value.as_text();
            let id = || match value.as_text() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(value.as_int().unwrap_or_default().to_string()),
            };
            let int = || value.as_int().unwrap_or_default();
            match slot {
                Slot::RequestId => l.request_id = Some(id()),
                Slot::UserId => l.user_id = Some(id()),
                Slot::SessionId => l.session_id = Some(id()),
                Slot::Component => l.component = text(),
                Slot::Function => l.function = text(),
                Slot::FunctionLegacy => l.function_legacy = text(),
                Slot::File => l.file = text(),
                Slot::FileLegacy => l.file_legacy = text(),
                Slot::Line => l.line = u32::try_from(int()).ok(),
                Slot::LineLegacy => l.line_legacy = u32::try_from(int()).ok(),
                Slot::Thread => l.thread = u64::try_from(int()).ok(),
                Slot::Process => l.process = u32::try_from(int()).ok(),
                Slot::ExceptionType => l.exception_type = text(),
                Slot::ExceptionMessage => l.exception_message = text(),
                Slot::ExceptionStacktrace => l.exception_stacktrace = text(),
                Slot::Timing => l.timing = value.as_flag().unwrap_or(false),
            }
        }
        l
    }

    /// The `context` object: the current names win over the legacy ones; the thread id
    /// defaults to `thread`, the process id to this process, which is where the SDK exports
    /// from.
    pub(crate) fn code_context(&self, thread: Option<u64>) -> CodeContext<'a> {
        CodeContext {
            function: self.function.or(self.function_legacy),
            file: self.file.or(self.file_legacy),
            line: self.line.or(self.line_legacy),
            thread: self.thread.or(thread),
            process: Some(self.process.unwrap_or_else(std::process::id)),
        }
    }

    /// The exception from the `exception.*` attributes, when any of them was given.
    pub(crate) fn exception(&self, default_message: &'a str) -> Option<Exception<'a>> {
        if self.exception_type.is_none()
            && self.exception_message.is_none()
            && self.exception_stacktrace.is_none()
        {
            return None;
        }
        Some(Exception {
            kind: self.exception_type.unwrap_or(DEFAULT_EXCEPTION_TYPE),
            message: self.exception_message.unwrap_or(default_message),
            traceback: self.exception_stacktrace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Value;

    const ALL: Lift = Lift {
        exception: true,
        timing: true,
    };

    #[test]
    fn lifts_typed_values_and_keeps_the_rest() {
        let attrs = [
            (REQUEST_ID, Value::from("req-1")),
            (USER_ID, Value::I64(456)),
            (CODE_LINE_LEGACY, Value::I64(7)),
            (CODE_LINE, Value::I64(42)),
            (CODE_FUNCTION_LEGACY, Value::from("old")),
            (THREAD_ID, Value::I64(-1)),
            (TIMING, Value::Bool(true)),
            (SESSION_ID, Value::F64(1.5)),
        ];
        let lifted = Lifted::collect(attrs.iter().map(|(k, v)| (*k, v)), ALL);
        assert_eq!(lifted.request_id.as_deref(), Some("req-1"));
        assert_eq!(lifted.user_id.as_deref(), Some("456"));
        assert_eq!(lifted.session_id, None);
        assert!(lifted.timing);
        let ctx = lifted.code_context(None);
        assert_eq!(ctx.line, Some(42));
        assert_eq!(ctx.function, Some("old"));
        assert_eq!(ctx.thread, None);
        assert_eq!(lifted.code_context(Some(9)).thread, Some(9));
        assert_eq!(ctx.process, Some(std::process::id()));
        assert!(!is_lifted(THREAD_ID, &Value::I64(-1), ALL));
        assert!(!is_lifted(SESSION_ID, &Value::F64(1.5), ALL));
        assert!(is_lifted(USER_ID, &Value::I64(456), ALL));
        let spans = Lift {
            exception: false,
            timing: false,
        };
        assert!(!is_lifted(TIMING, &Value::Bool(true), spans));
        assert!(!is_lifted(EXCEPTION_TYPE, &Value::from("E"), spans));
    }

    #[test]
    fn exception_needs_one_attribute() {
        assert!(Lifted::default().exception("m").is_none());
        let attrs = [(EXCEPTION_STACKTRACE, Value::from("at main"))];
        let lifted = Lifted::collect(attrs.iter().map(|(k, v)| (*k, v)), ALL);
        let e = lifted.exception("body").unwrap();
        assert_eq!(
            (e.kind, e.message, e.traceback),
            (DEFAULT_EXCEPTION_TYPE, "body", Some("at main"))
        );
    }
}
