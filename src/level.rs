//! `CRITICAL`, the sixth level: a `tracing` `ERROR` event with a marker field.

/// Logs a `CRITICAL` record: a system-threatening error (OTel severity 21).
///
/// Takes the arguments of [`tracing::error!`]; the event is an `ERROR` event with the field
/// `tracekit.critical = true`, which the tracekit layer writes as `CRITICAL` (and does not
/// write into `data`). Other subscribers see a plain `ERROR` event.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
/// # tracing::dispatcher::with_default(&dispatch, || {
/// tracekit::critical!(free_mb = 12_u64, "Disk almost full");
/// tracekit::critical!(target: "myapp::storage", "Replica lost");
/// # });
/// # drop(guard);
/// let text = std::fs::read_to_string(dir.path().join("logs/errors/errors.log"))?;
/// let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(first["level"], "CRITICAL");
/// assert_eq!(first["data"]["free_mb"], 12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! critical {
    (target: $target:expr, parent: $parent:expr, $($arg:tt)+) => {
        $crate::__private::tracing::event!(
            target: $target, parent: $parent, $crate::__private::tracing::Level::ERROR,
            tracekit.critical = true, $($arg)+
        )
    };
    (target: $target:expr, $($arg:tt)+) => {
        $crate::__private::tracing::event!(
            target: $target, $crate::__private::tracing::Level::ERROR,
            tracekit.critical = true, $($arg)+
        )
    };
    (parent: $parent:expr, $($arg:tt)+) => {
        $crate::__private::tracing::event!(
            parent: $parent, $crate::__private::tracing::Level::ERROR,
            tracekit.critical = true, $($arg)+
        )
    };
    ($($arg:tt)+) => {
        $crate::__private::tracing::event!(
            $crate::__private::tracing::Level::ERROR,
            tracekit.critical = true, $($arg)+
        )
    };
}
