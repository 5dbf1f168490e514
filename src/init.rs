//! Set-up: [`init`], [`builder`], the [`Builder`] and the [`Guard`] that flushes on drop.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanProcessor};
use opentelemetry_sdk::Resource;
use tracing::Dispatch;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::context_span::SharedProcessor;
use crate::exporters::{
    normalize_component, BuildError, FileLogExporter, FileSpanExporter, LogWriter,
    LogWriterBuilder, WriterGuard,
};
use crate::layer::{Shared, TracekitLayer};
use crate::otel_spans::Bridge;

/// Level directives in `EnvFilter` syntax (`info,myapp::ranking=debug`); wins over `RUST_LOG`.
pub const ENV_FILTER: &str = "TRACEKIT_LOG";
/// Level directives read when [`ENV_FILTER`] is not set.
pub const ENV_FILTER_FALLBACK: &str = "RUST_LOG";
/// The directives used when neither variable is set.
pub const DEFAULT_FILTER: &str = "info";
/// How long dropping the [`Guard`] waits for spans and records to reach the files.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The instrumentation scope of the spans the tracing bridge creates.
const TRACER_NAME: &str = "tracekit";

/// Sets everything up with the defaults and the environment: see [`Builder`].
///
/// A second call (or a call after another global `tracing` subscriber was installed) returns
/// [`InitError::AlreadyInitialized`]; nothing panics.
///
/// # Examples
///
/// ```no_run
/// fn main() -> Result<(), tracekit::InitError> {
///     let _guard = tracekit::init()?; // keep it alive: dropping it flushes
///     tracing::info!(num_candidates = 1500_u64, "Generated candidates");
///     Ok(())
/// }
/// ```
pub fn init() -> Result<Guard, InitError> {
    builder().init()
}

/// The same as [`init`], under the name `tracing-subscriber` users look for: it never panics
/// either way.
///
/// ```no_run
/// let _guard = tracekit::try_init().expect("tracekit is set up once");
/// assert!(matches!(tracekit::try_init(), Err(tracekit::InitError::AlreadyInitialized)));
/// ```
pub fn try_init() -> Result<Guard, InitError> {
    builder().init()
}

static GLOBAL_LOGGER_PROVIDER: OnceLock<SdkLoggerProvider> = OnceLock::new();

/// The logger provider installed by [`init`]: the OpenTelemetry logs API and log appenders
/// (`opentelemetry-appender-log`, `-tracing`) write the same files through it. `None` before
/// `init`. (opentelemetry 0.33 has no global logger provider; this is tracekit's.)
///
/// ```no_run
/// use opentelemetry::logs::{LogRecord, Logger, LoggerProvider, Severity};
///
/// let _guard = tracekit::init()?;
/// if let Some(provider) = tracekit::logger_provider() {
///     let logger = provider.logger("billing");
///     let mut record = logger.create_log_record();
///     record.set_severity_number(Severity::Info);
///     record.set_body("invoice sent".into());
///     logger.emit(record);
/// }
/// # Ok::<(), tracekit::InitError>(())
/// ```
pub fn logger_provider() -> Option<SdkLoggerProvider> {
    GLOBAL_LOGGER_PROVIDER.get().cloned()
}

/// A [`Builder`] with the defaults and the environment.
///
/// ```no_run
/// let _guard = tracekit::builder()
///     .root("/var/log/recsys/trace")
///     .filter("info,ranking=debug")
///     .service_name("recommendation-service")
///     .init()?;
/// # Ok::<(), tracekit::InitError>(())
/// ```
pub fn builder() -> Builder {
    Builder::default()
}

/// Why set-up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A global `tracing` subscriber is already installed (a second `init`).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
    /// The level directives do not parse.
    #[error("invalid level directives {directives:?}")]
    Filter {
        /// The directives.
        directives: String,
        /// Why.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The log writer could not be started.
    #[error("cannot start the log writer")]
    Writer(#[from] BuildError),
    /// The OTLP export could not be set up (an invalid endpoint, protocol or sampler).
    #[cfg(feature = "otlp")]
    #[error(transparent)]
    Otlp(#[from] crate::otlp::OtlpError),
}

/// Configures the tracing + OpenTelemetry bridge.
///
/// Each setting is resolved in one order: a value set here, else its environment variable,
/// else the default.
///
/// | setting | default | environment |
/// | --- | --- | --- |
/// | [`root`](Self::root) | `trace` | `TRACEKIT_DIR` |
/// | [`filter`](Self::filter) | `info` | `TRACEKIT_LOG`, else `RUST_LOG` |
/// | [`default_component`](Self::default_component) | `app` | |
/// | [`component_for_target`](Self::component_for_target) | none | |
/// | [`service_name`](Self::service_name) | `unknown_service` | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` |
/// | [`panic_hook`](Self::panic_hook) | on | |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 5 s | |
/// | [`log_writer`](Self::log_writer) | [`LogWriter::builder`] defaults | `TRACEKIT_*` (see there) |
/// | `otlp_endpoint` (feature `otlp`) | none: no OTLP export | `OTEL_EXPORTER_OTLP_ENDPOINT` and the other `OTEL_*` variables (see `tracekit::otlp`) |
///
/// The subscriber is a `tracing-subscriber` registry with the `EnvFilter`, the
/// tracing-opentelemetry layer (an `SdkTracerProvider` whose simple processor feeds a
/// [`FileSpanExporter`]; span events are not recorded, see below) and the tracekit event layer,
/// all writing through one lossless [`LogWriter`]. Spans of
/// [`LogContext`](crate::LogContext) (target `tracekit::context`) are always enabled, whatever
/// the directives say, so that request context never disappears with a level change.
///
/// Log events are written as records when they happen and are not also kept as OTel span
/// events, so a request that logs a million lines holds no memory for them; an `ERROR` event
/// (or a recorded `&dyn Error` span field) sets its span's status to error.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let (dispatch, guard) = tracekit::builder()
///     .root(dir.path())
///     .filter("debug")
///     .component_for_target("myapp::ranking", "ranking")
///     .build()?; // a subscriber, not installed: use it with `tracing::dispatcher::with_default`
/// tracing::dispatcher::with_default(&dispatch, || {
///     tracing::info!(target: "myapp::ranking::model", score = 0.97, "scored");
/// });
/// drop(guard);
/// assert!(dir.path().join("logs/ranking/ranking.log").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct Builder {
    writer: LogWriterBuilder,
    root: Option<PathBuf>,
    filter: Option<String>,
    default_component: Option<String>,
    targets: Vec<(String, String)>,
    service_name: Option<String>,
    panic_hook: bool,
    shutdown_timeout: Duration,
    span_processors: Vec<Box<dyn SpanProcessor>>,
    #[cfg(feature = "otlp")]
    otlp: crate::otlp::OtlpSettings,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            writer: LogWriter::builder(),
            root: None,
            filter: None,
            default_component: None,
            targets: Vec::new(),
            service_name: None,
            panic_hook: true,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            span_processors: Vec::new(),
            #[cfg(feature = "otlp")]
            otlp: crate::otlp::OtlpSettings::default(),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("writer", &self.writer)
            .field("root", &self.root)
            .field("filter", &self.filter)
            .field("default_component", &self.default_component)
            .field("targets", &self.targets)
            .field("service_name", &self.service_name)
            .field("panic_hook", &self.panic_hook)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("span_processors", &self.span_processors.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The root directory (logs go to `<root>/logs`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    /// drop(guard);
    /// assert!(dir.path().join("logs/app/app.log").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Level directives in `EnvFilter` syntax, instead of `TRACEKIT_LOG` / `RUST_LOG`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).filter("warn").build()?;
    /// tracing::dispatcher::with_default(&dispatch, || {
    ///     tracing::info!("below the level: not written");
    ///     tracing::warn!("written");
    /// });
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert_eq!(text.lines().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = Some(directives.into());
        self
    }

    /// The component of records that resolve to none.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).default_component("recsys").build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("no component given"));
    /// drop(guard);
    /// assert!(dir.path().join("logs/recsys/recsys.log").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn default_component(mut self, component: impl Into<String>) -> Self {
        self.default_component = Some(component.into());
        self
    }

    /// Records whose target is `prefix` or below it (`prefix::..`) and that name no component
    /// (on the event or an enclosing span) go to `component`. The longest prefix wins.
    ///
    /// ```
    /// let builder = tracekit::builder()
    ///     .component_for_target("recsys::ranking", "ranking")
    ///     .component_for_target("recsys::ranking::explore", "exploration");
    /// # drop(builder);
    /// ```
    pub fn component_for_target(
        mut self,
        prefix: impl Into<String>,
        component: impl AsRef<str>,
    ) -> Self {
        let component = normalize_component(component.as_ref()).into_owned();
        self.targets.push((prefix.into(), component));
        self
    }

    /// The OpenTelemetry `service.name`, instead of `OTEL_SERVICE_NAME`.
    ///
    /// ```
    /// let builder = tracekit::builder().service_name("recommendation-service");
    /// # drop(builder);
    /// ```
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Whether [`init`](Self::init) installs the panic hook (default on).
    ///
    /// ```
    /// let builder = tracekit::builder().panic_hook(false); // keep the process's own hook alone
    /// # drop(builder);
    /// ```
    pub fn panic_hook(mut self, install: bool) -> Self {
        self.panic_hook = install;
        self
    }

    /// How long dropping the [`Guard`] waits for everything to be written.
    ///
    /// ```
    /// let builder = tracekit::builder().shutdown_timeout(std::time::Duration::from_secs(2));
    /// # drop(builder);
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The writer's settings (rotation, redaction, queue, ...). [`root`](Self::root) and
    /// [`default_component`](Self::default_component) set here win over the same settings
    /// in `writer`.
    pub fn log_writer(mut self, writer: LogWriterBuilder) -> Self {
        self.writer = writer;
        self
    }

    /// Adds a span processor after the file exporter (an OTLP exporter, a test probe). It
    /// receives every span the files get, request-context spans included.
    pub fn span_processor<P: SpanProcessor + 'static>(mut self, processor: P) -> Self {
        self.span_processors.push(Box::new(processor));
        self
    }

    /// Also exports spans and log records live over OTLP/HTTP to `endpoint` (the base URL,
    /// e.g. `http://localhost:4318`; `/v1/traces` and `/v1/logs` are appended), instead of
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`. The files are written as always. See
    /// [`otlp`](crate::otlp) for the variables honoured and what is sent. Feature `otlp`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// // Nothing listens there: the export fails, is counted and reported in the files.
    /// let (dispatch, guard) = tracekit::builder()
    ///     .root(dir.path())
    ///     .otlp_endpoint("http://127.0.0.1:9")
    ///     .build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("still written"));
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(text.contains("still written"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp.endpoint = Some(endpoint.into());
        self
    }

    /// Turns the OTLP export off (`false`) whatever the environment says, or back to its
    /// default (`true`: on when an endpoint is configured). Feature `otlp`.
    ///
    /// ```
    /// let builder = tracekit::builder().otlp(false); // files only, even with OTEL_EXPORTER_OTLP_ENDPOINT set
    /// # drop(builder);
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, enabled: bool) -> Self {
        self.otlp.enabled = Some(enabled);
        self
    }

    /// The sampler of the OTLP span stream, instead of `OTEL_TRACES_SAMPLER`. The files keep
    /// every span whatever it says. Feature `otlp`.
    ///
    /// ```
    /// let builder = tracekit::builder().otlp_sampler(tracekit::OtlpSampler::TraceIdRatio(0.1));
    /// # drop(builder);
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp_sampler(mut self, sampler: crate::otlp::OtlpSampler) -> Self {
        self.otlp.sampler = Some(sampler);
        self
    }

    fn directives(&self) -> String {
        self.filter
            .clone()
            .or_else(|| std::env::var(ENV_FILTER).ok())
            .or_else(|| std::env::var(ENV_FILTER_FALLBACK).ok())
            .unwrap_or_else(|| DEFAULT_FILTER.to_owned())
    }

    /// Builds the subscriber and everything behind it without installing anything global:
    /// use the [`Dispatch`] with `tracing::dispatcher::with_default` / `set_default` (tests,
    /// several subscribers in one process). The panic hook and the global OTel providers
    /// are not installed.
    pub fn build(self) -> Result<(Dispatch, Guard), InitError> {
        let directives = self.directives();
        // Request-context spans are opened at ERROR level so that every filter short of
        // `off` lets them through, without a directive of their own (which would raise the
        // filter's maximum level and slow every disabled event down).
        let filter =
            EnvFilter::builder()
                .parse(&directives)
                .map_err(|source| InitError::Filter {
                    directives: directives.clone(),
                    source,
                })?;

        let mut writer = self.writer;
        if let Some(root) = self.root {
            writer = writer.root(root);
        }
        if let Some(c) = &self.default_component {
            writer = writer.default_component(c.clone());
        }
        let (writer, writer_guard) = writer.build()?;

        let mut resource = Resource::builder();
        if let Some(name) = self.service_name {
            resource = resource.with_service_name(name);
        }
        let resource = resource.build();
        #[cfg(feature = "otlp")]
        let otlp = self.otlp.start(&resource, &writer)?;
        let mut tracer_builder = SdkTracerProvider::builder()
            // The SDK's default sampler, set explicitly: the builder would otherwise read
            // OTEL_TRACES_SAMPLER, which is for the OTLP stream only. The files keep every span.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(resource.clone())
            .with_simple_exporter(FileSpanExporter::new(writer.clone()));
        #[allow(unused_mut)]
        let mut processors = self.span_processors;
        #[cfg(feature = "otlp")]
        if let Some(p) = otlp.as_ref().and_then(|o| o.span_processor()) {
            processors.insert(0, Box::new(p));
        }
        let mut span_processors: Vec<Arc<dyn SpanProcessor>> = Vec::new();
        for mut processor in processors {
            // Shared with the event layer (for request-context spans), so the resource is set
            // here, once, rather than by the provider.
            processor.set_resource(&resource);
            let processor: Arc<dyn SpanProcessor> = Arc::from(processor);
            tracer_builder =
                tracer_builder.with_span_processor(SharedProcessor(Arc::clone(&processor)));
            span_processors.push(processor);
        }
        let tracer_provider = tracer_builder.build();
        #[allow(unused_mut)]
        let mut logger_builder = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_simple_exporter(FileLogExporter::new(writer.clone()));
        #[cfg(feature = "otlp")]
        let otlp_log_processor = otlp.as_ref().and_then(|o| o.log_processor());
        #[cfg(feature = "otlp")]
        if let Some(p) = &otlp_log_processor {
            logger_builder = logger_builder.with_log_processor(p.clone());
        }
        let logger_provider = logger_builder.build();

        let mut targets = self.targets;
        targets.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let shared = Arc::new(Shared {
            writer: writer.clone(),
            targets,
            logger_levels: static_directives(&directives),
            pid: std::process::id(),
            serial: crate::layer::next_serial(),
            span_processors,
            #[cfg(feature = "otlp")]
            otlp_records: std::sync::OnceLock::new(),
        });
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(TRACER_NAME))
            // The event layer sets the location (not for LogContext spans) and the OS thread id.
            .with_location(false)
            .with_threads(false)
            .with_target(false);
        // tracing events reach OTLP through their own provider: the main one's processors
        // include the file exporter, which the event layer already wrote to.
        #[cfg(feature = "otlp")]
        let (otlp_layer, otlp_events) = match otlp_log_processor {
            Some(p) => {
                use opentelemetry::logs::LoggerProvider as _;
                let provider = SdkLoggerProvider::builder().with_log_processor(p).build();
                let layer = crate::otlp::OtlpLogLayer::new(
                    provider.logger(TRACER_NAME),
                    Arc::clone(&shared),
                );
                let _ = shared.otlp_records.set(provider.logger(TRACER_NAME));
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "otlp"))]
        let otlp_layer: Option<tracing_subscriber::layer::Identity> = None;
        let subscriber = Registry::default()
            .with(crate::filter::Levels::new(filter, &directives))
            .with(Bridge {
                otel,
                tracekit: TracekitLayer::new(Arc::clone(&shared)),
            })
            .with(otlp_layer);
        let guard = Guard {
            writer,
            writer_guard: Some(writer_guard),
            tracer_provider,
            logger_provider,
            timeout: self.shutdown_timeout,
            shared,
            #[cfg(feature = "otlp")]
            otlp,
            #[cfg(feature = "otlp")]
            otlp_events,
        };
        Ok((Dispatch::new(subscriber), guard))
    }

    /// Builds and installs everything: the global `tracing` subscriber, the global OTel tracer
    /// provider, tracekit's global [logger provider](logger_provider), the W3C trace-context +
    /// baggage propagator and the panic hook. Keep the
    /// returned [`Guard`] alive; dropping it flushes.
    ///
    /// A second call returns [`InitError::AlreadyInitialized`] (and starts nothing).
    pub fn init(self) -> Result<Guard, InitError> {
        static INITIALIZED: AtomicBool = AtomicBool::new(false);
        if INITIALIZED.swap(true, Ordering::AcqRel) {
            return Err(InitError::AlreadyInitialized);
        }
        let panic_hook = self.panic_hook;
        let (dispatch, guard) = match self.build() {
            Ok(built) => built,
            Err(e) => {
                INITIALIZED.store(false, Ordering::Release);
                return Err(e);
            }
        };
        if tracing::dispatcher::set_global_default(dispatch).is_err() {
            // Another global subscriber (not ours) is installed: dropping `guard` stops what
            // was started.
            return Err(InitError::AlreadyInitialized);
        }
        opentelemetry::global::set_tracer_provider(guard.tracer_provider.clone());
        let _ = GLOBAL_LOGGER_PROVIDER.set(guard.logger_provider.clone());
        opentelemetry::global::set_text_map_propagator(crate::propagation::propagator());
        if panic_hook {
            crate::panic::install(Arc::clone(&guard.shared));
        }
        Ok(guard)
    }

    /// The same as [`init`](Self::init) (which never panics either).
    ///
    /// ```no_run
    /// let _guard = tracekit::builder().service_name("recommender").try_init()?;
    /// # Ok::<(), tracekit::InitError>(())
    /// ```
    pub fn try_init(self) -> Result<Guard, InitError> {
        self.init()
    }
}

/// Keeps the bridge running; dropping it flushes every span and record to the files, waiting
/// at most the [shutdown timeout](Builder::shutdown_timeout).
///
/// Spans still open when it drops are not written. Records written after it dropped are
/// discarded.
#[must_use = "dropping the guard shuts the log writer down: keep it alive for the program's life"]
pub struct Guard {
    writer: LogWriter,
    writer_guard: Option<WriterGuard>,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    timeout: Duration,
    shared: Arc<Shared>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::OtlpRuntime>,
    #[cfg(feature = "otlp")]
    otlp_events: Option<SdkLoggerProvider>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("writer", &self.writer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The log writer (its [`status`](LogWriter::status) counts what was written).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    /// assert_eq!(guard.writer().root(), dir.path());
    /// guard.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &LogWriter {
        &self.writer
    }

    /// The tracer provider behind the tracing bridge (also the global one after
    /// [`init`](Builder::init)).
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer, TracerProvider};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (_dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// guard.tracer_provider().tracer("ranking").in_span("score", |_cx| {});
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(text.contains(r#""span":{"name":"score""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider whose records land in the same files: hand it to an OpenTelemetry
    /// log appender or call the logs API on it (after [`init`](Builder::init) it is also
    /// [`tracekit::logger_provider()`](logger_provider)).
    ///
    /// ```
    /// use opentelemetry::logs::{LogRecord, Logger, LoggerProvider, Severity};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (_dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// let logger = guard.logger_provider().logger("billing");
    /// let mut record = logger.create_log_record();
    /// record.set_severity_number(Severity::Warn);
    /// record.set_body("card declined".into());
    /// logger.emit(record);
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(text.contains("\"level\":\"WARNING\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// Flushes and stops everything now, within the shutdown timeout; `Drop` does the same.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder().root(dir.path()).build()?;
    /// tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    /// guard.shutdown()?; // errors (a full disk, a timeout) are returned instead of dropped
    /// assert!(dir.path().join("logs/app/app.log").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> Result<(), crate::exporters::WriteError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), crate::exporters::WriteError> {
        let Some(writer_guard) = self.writer_guard.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.timeout;
        // The OTLP export gets half the time at most: a collector that does not answer must
        // not keep the files from being flushed. Its processors' own shutdown then returns
        // at once.
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.shutdown(self.timeout / 2);
        }
        #[cfg(feature = "otlp")]
        if let Some(events) = &self.otlp_events {
            let _ = events.shutdown_with_timeout(remaining(deadline));
        }
        // Ended spans and emitted log records are already queued (simple processors export
        // synchronously); the providers' shutdown stops further exports and flushes.
        let _ = self
            .tracer_provider
            .shutdown_with_timeout(remaining(deadline));
        let _ = self
            .logger_provider
            .shutdown_with_timeout(remaining(deadline));
        let result = self.writer.shutdown_with_timeout(remaining(deadline));
        drop(writer_guard);
        result
    }
}

/// The directives without span or field filters (which need a span to decide), for
/// [`Logger`](crate::Logger)s: `info,ranking=debug` gives loggers of component (or name)
/// `ranking` the level `DEBUG`.
fn static_directives(directives: &str) -> Targets {
    let statics: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.parse::<Targets>().is_ok())
        .collect();
    statics.join(",").parse().unwrap_or_default()
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggers_take_the_static_directives_only() {
        let levels = static_directives("warn, ranking=debug,[{component=x}]=trace,myapp[req]=info");
        assert!(levels.would_enable("ranking", &tracing::Level::DEBUG));
        assert!(!levels.would_enable("candidate", &tracing::Level::INFO));
        assert!(levels.would_enable("candidate", &tracing::Level::WARN));
    }

    #[test]
    fn invalid_directives_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = builder()
            .root(dir.path())
            .filter("info,=[")
            .build()
            .unwrap_err();
        assert!(matches!(err, InitError::Filter { .. }), "{err:?}");
    }
}
