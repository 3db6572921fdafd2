//! `tracing` subscriber (plain or JSON) plus OpenTelemetry traces, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Spans carry trace context either way, so events
//! always get a `traceparent` and a collector added later joins traces that already flow.

use opentelemetry::trace::TracerProvider as _;
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            builder.with_batch_exporter(exporter).build()
        }
        // No collector: spans still get trace and span ids (for propagation), nothing is sent.
        _ => builder.build(),
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
}
