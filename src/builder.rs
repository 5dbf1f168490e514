//! Set-up: [`builder`], the [`Builder`], its [`layer`](Builder::layer) and the one-call
//! conveniences [`init`], [`try_init`] and [`Builder::build`].

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, ShouldSample, SimpleSpanProcessor, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry};

use crate::events::EventLayer;
use crate::exporters::{
    normalize_component, BuildError, FileLogExporter, FileSpanExporter, LogWriter, LogWriterBuilder,
};
use crate::guard::Guard;
use crate::layer::TracekitLayer;
use crate::processors::{LastValueWins, ThreadStamp};
use crate::sink::Sink;
use crate::span_fields::SpanFields;

/// Level directives in `EnvFilter` syntax (`info,myapp::ranking=debug`); wins over `RUST_LOG`.
pub const ENV_FILTER: &str = "TRACEKIT_LOG";
/// Level directives read when [`ENV_FILTER`] is not set.
pub const ENV_FILTER_FALLBACK: &str = "RUST_LOG";
/// The directives used when neither variable is set.
pub const DEFAULT_FILTER: &str = "info";
/// How long dropping the [`Guard`] waits for spans and records to reach the files.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The instrumentation scope of the spans the tracing bridge creates.
pub(crate) const TRACER_NAME: &str = "tracekit";

/// Sets everything up with the defaults and the environment (see [`Builder`]) and installs
/// it as the global subscriber; keep the returned [`Guard`] alive: dropping it flushes.
///
/// # Panics
///
/// When set-up fails (a global subscriber is already installed, the level directives do not
/// parse, the log directory cannot be created): use [`try_init`] to handle the error.
///
/// # Examples
///
/// ```no_run
/// let _guard = tracekit::init(); // keep it alive: dropping it flushes
/// tracing::info!(num_candidates = 1500_u64, "Generated candidates");
/// ```
pub fn init() -> Guard {
    builder().init()
}

/// The same as [`init`], returning the error instead of panicking.
///
/// ```no_run
/// let _guard = tracekit::try_init().expect("tracekit is set up once");
/// assert!(matches!(tracekit::try_init(), Err(tracekit::InitError::AlreadyInitialized)));
/// ```
pub fn try_init() -> Result<Guard, InitError> {
    builder().try_init()
}

static GLOBAL_LOGGER_PROVIDER: OnceLock<SdkLoggerProvider> = OnceLock::new();

/// The logger provider installed by [`init`] (or [`Builder::layer`]): the OpenTelemetry logs
/// API and log appenders (`opentelemetry-appender-log`, `-tracing`) write the same files
/// through it. `None` before. (opentelemetry 0.33 has no global logger provider; this is
/// tracekit's.)
///
/// ```no_run
/// use opentelemetry::logs::{LogRecord, Logger, LoggerProvider, Severity};
///
/// let _guard = tracekit::init();
/// if let Some(provider) = tracekit::logger_provider() {
///     let logger = provider.logger("billing");
///     let mut record = logger.create_log_record();
///     record.set_severity_number(Severity::Info);
///     record.set_body("invoice sent".into());
///     logger.emit(record);
/// }
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
///     .init();
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

/// Configures tracekit: the files, the OpenTelemetry SDK behind the spans, the level filter.
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
/// | [`span_fields`](Self::span_fields) | [`SpanFields::ALL`] | |
/// | [`service_name`](Self::service_name) | `unknown_service` | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` |
/// | [`sampler`](Self::sampler) | parent-based, always on | |
/// | [`span_processor`](Self::span_processor) | none besides the files | |
/// | [`otel_globals`](Self::otel_globals) | on | |
/// | [`panic_hook`](Self::panic_hook) | on | |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 5 s | |
/// | [`log_writer`](Self::log_writer) | [`LogWriter::builder`] defaults | `TRACEKIT_*` (see there) |
/// | `otlp_endpoint` (feature `otlp`) | none: no OTLP export | `OTEL_EXPORTER_OTLP_ENDPOINT` and the other `OTEL_*` variables (see `tracekit::otlp`) |
///
/// [`layer`](Self::layer) gives a [`TracekitLayer`] to add to your own subscriber;
/// [`init`](Self::init), [`try_init`](Self::try_init) and [`build`](Self::build) put it on a
/// registry with a level filter of the [`filter`](Self::filter) directives (tracing-subscriber's
/// `Targets`, or its `EnvFilter` when a directive names a span or a field). Spans of
/// [`LogContext`](crate::LogContext)s are opened at `ERROR` level, so that every filter
/// short of `off` lets them through and request context never disappears with a level change.
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
    span_fields: SpanFields,
    sampler: Option<Box<dyn ShouldSample>>,
    otel_globals: bool,
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
            span_fields: SpanFields::ALL,
            sampler: None,
            otel_globals: true,
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
            .field("span_fields", &self.span_fields)
            .field("sampler", &self.sampler)
            .field("otel_globals", &self.otel_globals)
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

    /// Which fields of the spans around an event go into its line (default
    /// [`SpanFields::ALL`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let (dispatch, guard) = tracekit::builder()
    ///     .root(dir.path())
    ///     .span_fields(tracekit::SpanFields::NONE)
    ///     .build()?;
    /// tracing::dispatcher::with_default(&dispatch, || {
    ///     tracing::info_span!("checkout", order_id = 42_u64).in_scope(|| tracing::info!("paid"));
    /// });
    /// drop(guard);
    /// let text = std::fs::read_to_string(dir.path().join("logs/app/app.log"))?;
    /// assert!(!text.lines().next().unwrap().contains("order_id"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn span_fields(mut self, fields: SpanFields) -> Self {
        self.span_fields = fields;
        self
    }

    /// The sampler of the tracer provider behind every span, instead of the SDK's default
    /// (parent-based, always on). A span it drops is not written (its events still are, with
    /// its ids). The OTLP stream has a sampler of its own (feature `otlp`).
    ///
    /// ```
    /// use opentelemetry_sdk::trace::Sampler;
    ///
    /// let builder = tracekit::builder().sampler(Sampler::TraceIdRatioBased(0.5));
    /// # drop(builder);
    /// ```
    pub fn sampler(mut self, sampler: impl ShouldSample + 'static) -> Self {
        self.sampler = Some(Box::new(sampler));
        self
    }

    /// Whether [`layer`](Self::layer) and [`init`](Self::init) install the OpenTelemetry
    /// globals: the global tracer provider, tracekit's [logger provider](logger_provider) and
    /// the W3C trace-context + baggage propagator (default on). Off, the providers are only
    /// the [`Guard`]'s.
    ///
    /// ```
    /// let builder = tracekit::builder().otel_globals(false); // another part of the program owns them
    /// # drop(builder);
    /// ```
    pub fn otel_globals(mut self, install: bool) -> Self {
        self.otel_globals = install;
        self
    }

    /// Whether [`layer`](Self::layer) and [`init`](Self::init) install the panic hook, which
    /// writes a `CRITICAL` record for every panic before the previous hook runs (default on).
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

    /// Adds a span processor to the tracer provider, after the file exporter (an exporter of
    /// your own, a test probe). It sees every span start and end, request contexts
    /// included.
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

    /// The level filter of [`build`](Self::build) and [`init`](Self::init): tracing-subscriber's
    /// `Targets` when every directive is a target and a level (it keeps no per-span state),
    /// its `EnvFilter` when one needs a span or a field to decide.
    fn level_filter(&self) -> Result<LevelDirectives, InitError> {
        let directives = self.directives();
        // `Targets` would read a span or field directive (`[checkout]=debug`) as a target.
        let statics_only = !directives.trim().is_empty() && !directives.contains(['[', '{']);
        if statics_only {
            if let Ok(targets) = directives.parse::<Targets>() {
                return Ok(LevelDirectives::Targets(targets));
            }
        }
        EnvFilter::builder()
            .parse(&directives)
            .map(|filter| LevelDirectives::Env(Box::new(filter)))
            .map_err(|source| InitError::Filter { directives, source })
    }

    /// A registry with `filter` and the tracekit layer.
    fn on_registry<F>(self, filter: F) -> Result<(Dispatch, Guard), InitError>
    where
        F: tracing_subscriber::Layer<Registry> + Send + Sync + 'static,
    {
        let (layer, guard) = self.assemble()?;
        let subscriber = Registry::default().with(filter).with(layer);
        Ok((Dispatch::new(subscriber), guard))
    }

    /// [`on_registry`](Self::on_registry) with the [`level_filter`](Self::level_filter).
    fn filtered(self) -> Result<(Dispatch, Guard), InitError> {
        match self.level_filter()? {
            LevelDirectives::Targets(filter) => self.on_registry(filter),
            LevelDirectives::Env(filter) => self.on_registry(*filter),
        }
    }

    /// Builds tracekit as a [`TracekitLayer`] for your own subscriber, and the [`Guard`]
    /// that flushes it: the files, the OpenTelemetry bridge (every span an SDK span of the
    /// guard's tracer provider) and the standard span APIs, from one `.with(layer)`.
    ///
    /// Like [`init`](Self::init), it installs the OpenTelemetry globals (tracer and logger
    /// providers, propagator) unless [`otel_globals(false)`](Self::otel_globals), and the
    /// panic hook unless [`panic_hook(false)`](Self::panic_hook). It adds no level filter:
    /// your subscriber's filters decide (an `EnvFilter`, or `layer.with_filter(..)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// let (layer, guard) = tracekit::builder().root(dir.path()).otel_globals(false).layer()?;
    /// let subscriber = tracing_subscriber::registry().with(layer);
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
    /// drop(guard);
    /// assert!(dir.path().join("logs/app/app.log").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(self) -> Result<(TracekitLayer<S>, Guard), InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (globals, panic_hook) = (self.otel_globals, self.panic_hook);
        let (layer, guard) = self.assemble()?;
        guard.install(globals, panic_hook);
        Ok((layer, guard))
    }

    /// Builds a subscriber (a registry with the [`filter`](Self::filter) directives and the
    /// tracekit layer) without installing anything global: use the [`Dispatch`] with
    /// `tracing::dispatcher::with_default` / `set_default` (tests, several subscribers in one
    /// process). Neither the panic hook nor the OpenTelemetry globals are installed.
    pub fn build(self) -> Result<(Dispatch, Guard), InitError> {
        self.filtered()
    }

    /// Builds everything and installs it: the global `tracing` subscriber (a registry with
    /// the [`filter`](Self::filter) directives and the tracekit layer), the OpenTelemetry
    /// globals and the panic hook (unless turned off). Keep the returned [`Guard`] alive;
    /// dropping it flushes.
    ///
    /// A second call returns [`InitError::AlreadyInitialized`] (and starts nothing).
    ///
    /// ```no_run
    /// let _guard = tracekit::builder().service_name("recommender").try_init()?;
    /// # Ok::<(), tracekit::InitError>(())
    /// ```
    pub fn try_init(self) -> Result<Guard, InitError> {
        static INITIALIZED: AtomicBool = AtomicBool::new(false);
        if INITIALIZED.swap(true, Ordering::AcqRel) {
            return Err(InitError::AlreadyInitialized);
        }
        let (globals, panic_hook) = (self.otel_globals, self.panic_hook);
        let (dispatch, guard) = match self.filtered() {
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
        guard.install(globals, panic_hook);
        Ok(guard)
    }

    /// [`try_init`](Self::try_init), panicking on error, as `tracing-subscriber`'s `init`
    /// does.
    ///
    /// # Panics
    ///
    /// When [`try_init`](Self::try_init) returns an error.
    ///
    /// ```no_run
    /// let _guard = tracekit::builder().service_name("recommender").init();
    /// ```
    pub fn init(self) -> Guard {
        match self.try_init() {
            Ok(guard) => guard,
            Err(e) => panic!("tracekit set-up failed: {e}"),
        }
    }

    /// The layer and everything behind it, nothing global installed.
    fn assemble<S>(self) -> Result<(TracekitLayer<S>, Guard), InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let directives = self.directives();
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
        // The SDK's default sampler unless one is given, set explicitly: the builder would
        // otherwise read OTEL_TRACES_SAMPLER, which is for the OTLP stream only.
        let sampler = self
            .sampler
            .unwrap_or_else(|| Box::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))));
        let mut tracer_builder = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_resource(resource.clone())
            .with_span_processor(ThreadStamp(SimpleSpanProcessor::new(
                FileSpanExporter::new(writer.clone()),
            )));
        #[cfg(feature = "otlp")]
        if let Some(p) = otlp.as_ref().and_then(|o| o.span_processor()) {
            tracer_builder = tracer_builder.with_span_processor(LastValueWins(Box::new(p)));
        }
        for processor in self.span_processors {
            tracer_builder = tracer_builder.with_span_processor(LastValueWins(processor));
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
        let sink = Arc::new(Sink {
            writer: writer.clone(),
            targets,
            logger_levels: static_directives(&directives),
            pid: std::process::id(),
            serial: crate::scope::next_serial(),
            #[cfg(feature = "otlp")]
            otlp_records: OnceLock::new(),
        });
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(TRACER_NAME))
            // The event layer sets the location (a request context's is its caller's) and
            // `ThreadStamp` the OS thread id.
            .with_location(false)
            .with_threads(false)
            .with_target(false);
        let events = EventLayer::new(Arc::clone(&sink), self.span_fields);
        // tracing events reach OTLP through their own provider: the main one's processors
        // include the file exporter, which the event layer already wrote to.
        #[cfg(feature = "otlp")]
        let otlp_events = otlp_log_processor.map(|p| {
            use opentelemetry::logs::LoggerProvider as _;
            let provider = SdkLoggerProvider::builder().with_log_processor(p).build();
            let _ = sink.otlp_records.set(provider.logger(TRACER_NAME));
            provider
        });
        #[cfg(feature = "otlp")]
        let otlp_layer =
            crate::otlp::OtlpLogLayer::new(sink.otlp_records.get().cloned(), Arc::clone(&sink));
        let layer = TracekitLayer::new(
            otel,
            events,
            #[cfg(feature = "otlp")]
            otlp_layer,
        );
        let guard = Guard {
            writer,
            writer_guard: Some(writer_guard),
            tracer_provider,
            logger_provider,
            timeout: self.shutdown_timeout,
            sink,
            #[cfg(feature = "otlp")]
            otlp,
            #[cfg(feature = "otlp")]
            otlp_events,
        };
        Ok((layer, guard))
    }
}

impl Guard {
    /// Installs the OpenTelemetry globals and the panic hook, as asked.
    fn install(&self, globals: bool, panic_hook: bool) {
        if globals {
            opentelemetry::global::set_tracer_provider(self.tracer_provider.clone());
            let _ = GLOBAL_LOGGER_PROVIDER.set(self.logger_provider.clone());
            opentelemetry::global::set_text_map_propagator(crate::propagation::propagator());
        }
        if panic_hook {
            crate::panic::install(Arc::clone(&self.sink));
        }
    }
}

/// The level filter of the one-call set-ups.
enum LevelDirectives {
    Targets(Targets),
    Env(Box<EnvFilter>),
}

/// The directives without span or field filters (which need a span to decide), for
/// [`Logger`](crate::Logger)s: `info,ranking=debug` gives loggers of component (or name)
/// `ranking` the level `DEBUG`.
fn static_directives(directives: &str) -> Targets {
    let statics: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains(['[', '{']) && d.parse::<Targets>().is_ok())
        .collect();
    statics.join(",").parse().unwrap_or_default()
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
    fn targets_decide_as_env_filter_does() {
        use tracing::Level;
        let decisions = |dispatch: Dispatch| {
            tracing::dispatcher::with_default(&dispatch, || {
                [
                    tracing::enabled!(target: "myapp", Level::INFO),
                    tracing::enabled!(target: "myapp", Level::DEBUG),
                    tracing::enabled!(target: "myapp::ranking", Level::DEBUG),
                    tracing::enabled!(target: "myapp::ranking::model", Level::TRACE),
                    tracing::enabled!(target: "myapp::rankings", Level::DEBUG),
                    tracing::enabled!(target: "other", Level::WARN),
                    tracing::enabled!(target: "other", Level::INFO),
                    tracing::enabled!(target: "tracekit::context", Level::ERROR),
                ]
            })
        };
        for directives in [
            "info",
            "warn,myapp::ranking=debug",
            "myapp=info",
            "debug,myapp::ranking::model=trace,other=off",
            "off",
            "error,myapp=debug,myapp::ranking=warn",
        ] {
            let targets: Targets = directives.parse().unwrap();
            let env = EnvFilter::builder().parse(directives).unwrap();
            assert_eq!(
                decisions(Dispatch::new(Registry::default().with(targets))),
                decisions(Dispatch::new(Registry::default().with(env))),
                "{directives}"
            );
        }
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
