//! `OTEL_TRACES_SAMPLER` for the OTLP stream only: the decision is taken when a span ends,
//! inside the OTLP span processor, so that the files keep every span.

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::SpanData;

/// The sampler of the OTLP span stream (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
///
/// The decision depends on the trace id only (and, for the `parentbased_*` samplers, on a
/// remote parent's sampled flag), so every span of a trace is exported or none is. The files
/// are never sampled.
///
/// ```
/// use tracekit::OtlpSampler;
/// assert_eq!(OtlpSampler::parse("traceidratio", Some("0.25")), Ok(OtlpSampler::TraceIdRatio(0.25)));
/// assert_eq!(OtlpSampler::parse("parentbased_always_off", None),
///            Ok(OtlpSampler::ParentBased(Box::new(OtlpSampler::AlwaysOff))));
/// assert!(OtlpSampler::parse("jaeger_remote", None).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OtlpSampler {
    /// Every span (the default).
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// The traces whose id falls in the first `ratio` of the id space.
    TraceIdRatio(f64),
    /// A remote parent's sampled flag decides; root spans and local children follow the
    /// inner sampler (applied to the trace id, which gives the root's decision).
    ParentBased(Box<OtlpSampler>),
}

/// The environment variable naming the sampler.
///
/// ```
/// assert_eq!(tracekit::otlp::ENV_SAMPLER, "OTEL_TRACES_SAMPLER");
/// ```
pub const ENV_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The environment variable with the sampler's argument (the ratio).
///
/// ```
/// assert_eq!(tracekit::otlp::ENV_SAMPLER_ARG, "OTEL_TRACES_SAMPLER_ARG");
/// ```
pub const ENV_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

impl OtlpSampler {
    /// Parses the standard names: `always_on`, `always_off`, `traceidratio`,
    /// `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`. The
    /// ratio defaults to 1.0 and must lie in 0..=1.
    ///
    /// ```
    /// use tracekit::OtlpSampler;
    /// assert_eq!(OtlpSampler::parse("traceidratio", None), Ok(OtlpSampler::TraceIdRatio(1.0)));
    /// assert!(OtlpSampler::parse("traceidratio", Some("1.5")).is_err());
    /// ```
    pub fn parse(name: &str, arg: Option<&str>) -> Result<OtlpSampler, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("{ENV_SAMPLER_ARG}={a:?}: expected a ratio in 0..=1")),
            }
        };
        Ok(match name.trim() {
            "always_on" => OtlpSampler::AlwaysOn,
            "always_off" => OtlpSampler::AlwaysOff,
            "traceidratio" => OtlpSampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => OtlpSampler::ParentBased(Box::new(OtlpSampler::AlwaysOn)),
            "parentbased_always_off" => OtlpSampler::ParentBased(Box::new(OtlpSampler::AlwaysOff)),
            "parentbased_traceidratio" => {
                OtlpSampler::ParentBased(Box::new(OtlpSampler::TraceIdRatio(ratio()?)))
            }
            other => {
                return Err(format!(
                    "{ENV_SAMPLER}={other:?}: expected always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ))
            }
        })
    }

    /// The sampler the environment names, or [`AlwaysOn`](Self::AlwaysOn) when it names none.
    ///
    /// ```
    /// // With OTEL_TRACES_SAMPLER unset:
    /// # std::env::remove_var("OTEL_TRACES_SAMPLER");
    /// assert_eq!(tracekit::OtlpSampler::from_env(), Ok(tracekit::OtlpSampler::AlwaysOn));
    /// ```
    pub fn from_env() -> Result<OtlpSampler, String> {
        match std::env::var(ENV_SAMPLER) {
            Ok(name) if !name.trim().is_empty() => {
                OtlpSampler::parse(&name, std::env::var(ENV_SAMPLER_ARG).ok().as_deref())
            }
            _ => Ok(OtlpSampler::AlwaysOn),
        }
    }

    /// True when the trace with this id is exported (root decision).
    ///
    /// ```
    /// use opentelemetry::trace::TraceId;
    /// use tracekit::OtlpSampler;
    /// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert!(OtlpSampler::TraceIdRatio(1.0).samples_trace(id));
    /// assert!(!OtlpSampler::TraceIdRatio(0.0).samples_trace(id));
    /// ```
    pub fn samples_trace(&self, trace_id: TraceId) -> bool {
        match self {
            OtlpSampler::AlwaysOn => true,
            OtlpSampler::AlwaysOff => false,
            OtlpSampler::TraceIdRatio(ratio) => {
                // The lower 8 bytes of the id, against the ratio of their range (the
                // specification's rule, as the SDKs apply it).
                let bytes = trace_id.to_bytes();
                let low = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes")) >> 1;
                let bound = (ratio * (1u64 << 63) as f64) as u64;
                low < bound
            }
            OtlpSampler::ParentBased(root) => root.samples_trace(trace_id),
        }
    }

    /// True when the ended span is exported.
    pub(crate) fn samples(&self, span: &SpanData) -> bool {
        match self {
            OtlpSampler::ParentBased(_) if span.parent_span_is_remote => {
                span.span_context.is_sampled()
            }
            other => other.samples_trace(span.span_context.trace_id()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_splits_trace_ids() {
        let sampler = OtlpSampler::TraceIdRatio(0.5);
        let kept = (0..10_000u64)
            .filter(|i| {
                let id = TraceId::from_bytes(
                    (u128::from(*i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
                        .to_be_bytes(),
                );
                sampler.samples_trace(id)
            })
            .count();
        assert!((4_500..5_500).contains(&kept), "{kept}");
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(OtlpSampler::parse("traceidratio", Some("2")).is_err());
        assert!(OtlpSampler::parse("traceidratio", Some("x")).is_err());
    }
}
