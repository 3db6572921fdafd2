//! `tracing` subscriber (plain or JSON) plus OpenTelemetry traces, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Spans carry trace context either way, so events
//! always get a `traceparent` and a collector added later joins traces that already flow.

use opentelemetry::{propagation::Extractor, trace::TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, registry::LookupSpan,
    util::SubscriberInitExt,
};

/// Keeps the tracer provider alive; dropping it flushes pending spans.
pub struct TelemetryGuard(Option<SdkTracerProvider>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

pub fn init(service_name: &str, json: bool) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    // Unset or empty: `info` (an empty filter would show nothing; the README says an empty
    // variable counts as unset). A filter that does not parse stopped the start already
    // (`BaseConfig`); here, for binaries that do not read it, it falls back the same way.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let set = |k| std::env::var(k).is_ok_and(|v| !v.is_empty());
    let provider =
        match set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            true => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()?;
                builder.with_batch_exporter(exporter).build()
            }
            // No collector: spans still get trace and span ids (for propagation), nothing is sent.
            false => builder.build(),
        };
    let result = tracing_subscriber::registry()
        .with(layers(filter, json, &provider, service_name))
        .try_init();
    // A test binary may initialise twice; the first subscriber wins.
    let _ = result;
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard(Some(provider)))
}

/// The log lines (filtered by `RUST_LOG`) and the trace spans (INFO and above, whatever
/// `RUST_LOG` says): quietening the logs must not cut traces, nor the `traceparent` that
/// events carry (a global `RUST_LOG=warn` used to disable the request spans altogether).
fn layers<S>(
    log_filter: EnvFilter,
    json: bool,
    provider: &SdkTracerProvider,
    service_name: &str,
) -> Vec<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name.to_owned()))
        .with_filter(LevelFilter::INFO)
        .boxed();
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_filter(log_filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_filter(log_filter)
            .boxed()
    };
    vec![traces, logs]
}

/// The W3C `traceparent` of the current span, if it is sampled into a trace.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The context a span continues when the caller (gRPC metadata) or the event (NATS header)
/// carries a valid W3C `traceparent` (and maybe `tracestate`); `None` when it carries none or
/// an invalid one, and the span starts a new trace. W3C trace context is the one wire format
/// (ARCHITECTURE "Events"), so this parses it directly rather than through the global
/// propagator, which a test subscriber may not have registered.
pub fn remote_parent(carrier: &dyn Extractor) -> Option<opentelemetry::Context> {
    use opentelemetry::{propagation::TextMapPropagator, trace::TraceContextExt};
    // Parsing needs the header: a call without one costs a map lookup.
    carrier.get(TRACEPARENT)?;
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), carrier);
    cx.has_active_span().then_some(cx)
}

/// Makes `span` (just opened, not yet entered) continue the trace `carrier` names, if any;
/// nothing happens without a valid `traceparent`, or when no subscriber records `span`.
pub fn continue_trace(span: &tracing::Span, carrier: &dyn Extractor) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if span.is_disabled() {
        return;
    }
    if let Some(parent) = remote_parent(carrier) {
        // Fails only without the OpenTelemetry layer, when there is no trace to continue.
        let _ = span.set_parent(parent);
    }
}

const TRACEPARENT: &str = "traceparent";

/// A `traceparent` value alone (an event's header) as a carrier for [`continue_trace`].
pub struct Traceparent<'a>(pub &'a str);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The headers of a request (gRPC metadata) as a carrier for [`continue_trace`].
pub struct HttpHeaders<'a>(pub &'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans keep their trace context when the logs are quietened to warnings.
    #[test]
    fn quiet_logs_keep_trace_context() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(layers(
            EnvFilter::new("warn"),
            false,
            &provider,
            "test",
        ));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            let tp = current_traceparent().expect("an INFO span carries trace context");
            assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
        });
    }

    /// A span continues the trace a valid `traceparent` names, and starts its own otherwise.
    #[test]
    fn spans_continue_a_valid_remote_trace_only() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(layers(
            EnvFilter::new("off"),
            false,
            &provider,
            "test",
        ));
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let remote = format!("00-{trace}-00f067aa0ba902b7-01");
        tracing::subscriber::with_default(subscriber, || {
            let traced = |carrier: &dyn Extractor| {
                let span = tracing::info_span!("call");
                continue_trace(&span, carrier);
                let _entered = span.enter();
                current_traceparent().expect("trace context")
            };
            let tp = traced(&Traceparent(&remote));
            assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");
            assert!(!tp.contains("00f067aa0ba902b7"), "a span of its own: {tp}");
            assert!(tp.ends_with("-01"), "{tp}");

            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", remote.parse().unwrap());
            headers.insert("tracestate", "vendor=x".parse().unwrap());
            let tp = traced(&HttpHeaders(&headers));
            assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");

            for bad in [
                "",
                "garbage",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            ] {
                let tp = traced(&Traceparent(bad));
                assert!(!tp.contains(trace), "{bad:?} gave {tp}");
            }
            let tp = traced(&HttpHeaders(&http::HeaderMap::new()));
            assert!(!tp.contains(trace), "{tp}");
        });
    }
}
