//! gRPC server bootstrap shared by every service: standard health service, server reflection,
//! the test-clock admin service, and graceful shutdown that drains in-flight calls.
//! Business services add themselves wrapped in the auth interceptor
//! (`XServer::with_interceptor(svc, auth)`); health and reflection stay open so load balancers
//! and grpcurl work without a token. Every call runs in a span that continues the caller's
//! trace (W3C `traceparent` in the metadata), see `call_span`.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use fupin_proto::admin::v1::{
    GetTimeRequest, SetTimeRequest, TimeReply,
    test_clock_service_server::{TestClockService, TestClockServiceServer},
};
use tokio::net::TcpListener;
use tonic::{
    Request, Response, Status,
    service::RoutesBuilder,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};
use tonic_health::server::HealthReporter;

use crate::{
    Role,
    auth::{self, JwtVerifier},
    clock::{AdjustableClock, Clock},
    config::GrpcTls,
    shutdown::Shutdown,
};

/// After shutdown and the drain, how long calls still in flight may take before the server
/// closes them: compose's 30 s stop grace minus this, the drain, and the relay's final flush
/// (at most about 10 s with NATS failing) must stay positive.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How many calls (streams) one HTTP/2 connection may have open at once; more wait in the
/// client for one to end. A bank core with more calls in flight opens more connections.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 200;

/// The largest request the shared services (reflection, the test clock) decode: theirs are a
/// few bytes, against tonic's default of 4 MiB.
const SMALL_REQUEST_BYTES: usize = 64 * 1024;

/// Collects the services of one gRPC server.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    tls: Option<ServerTlsConfig>,
    drain: std::time::Duration,
}

/// The TLS settings of the files in `files`, read now so that a missing or unreadable file
/// stops the service at start.
pub fn server_tls(files: &GrpcTls) -> anyhow::Result<ServerTlsConfig> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
    };
    let identity = Identity::from_pem(
        read("GRPC_TLS_CERT", &files.cert)?,
        read("GRPC_TLS_KEY", &files.key)?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read("GRPC_TLS_CLIENT_CA", ca)?));
    }
    // tonic parses the files only when a server takes them: done here, at start, so that a
    // key that is not the certificate's stops the start before the database is migrated or
    // the port bound, naming the variables (it used to surface once intake was listening).
    Server::builder().tls_config(tls.clone()).map_err(|e| {
        let ca = files
            .client_ca
            .as_ref()
            .map(|ca| format!(", GRPC_TLS_CLIENT_CA {}", ca.display()))
            .unwrap_or_default();
        anyhow::anyhow!(
            "GRPC_TLS_CERT {}, GRPC_TLS_KEY {}{ca}: not a PEM certificate chain with its own \
             private key (and a PEM client CA): {:#}",
            files.cert.display(),
            files.key.display(),
            anyhow::Error::new(e)
        )
    })?;
    Ok(tls)
}

impl GrpcServer {
    /// Health, reflection (every fupin package) and the test-clock admin service.
    pub fn new(
        verifier: JwtVerifier,
        clock: Arc<AdjustableClock>,
        test_clock_enabled: bool,
    ) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        // Both reflection versions: grpcurl and older clients still speak v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(fupin_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection()
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");
        let admin = TestClockAdmin {
            clock,
            enabled: test_clock_enabled,
        };
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        routes.add_service(reflection_v1.max_decoding_message_size(SMALL_REQUEST_BYTES));
        routes.add_service(reflection_v1alpha.max_decoding_message_size(SMALL_REQUEST_BYTES));
        routes.add_service(tonic::service::interceptor::InterceptedService::new(
            TestClockServiceServer::new(admin).max_decoding_message_size(SMALL_REQUEST_BYTES),
            move |r| verifier.intercept(r),
        ));
        Self {
            routes,
            health,
            tls: None,
            drain: std::time::Duration::ZERO,
        }
    }

    /// After shutdown is asked for, keeps taking calls for `drain` while reporting NOT_SERVING,
    /// so that load balancers that poll health stop routing here first.
    pub fn with_drain(mut self, drain: std::time::Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Serves TLS (mutual TLS when `tls` names a client CA) instead of plain HTTP/2.
    pub fn with_tls(mut self, tls: ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Where a service adds itself (wrapped in its auth interceptor).
    pub fn routes_mut(&mut self) -> &mut RoutesBuilder {
        &mut self.routes
    }

    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves until `shutdown`, then reports NOT_SERVING, keeps serving for the drain period,
    /// and stops accepting calls, finishing those in flight.
    pub async fn serve(self, listener: TcpListener, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let health = self.health.clone();
        let drain = self.drain;
        // On the accepted sockets themselves: the builder's `tcp_nodelay` is ignored for a
        // listener passed in. Without it, a response whose HEADERS and DATA frames went out in
        // two writes waited for the client's delayed ACK: 40 ms stalls, seen at one client.
        let incoming = tonic::transport::server::TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(std::time::Duration::from_secs(60)));
        // What one connection may hold: tonic otherwise advertises no bound on concurrent
        // streams (hyper's own default of 200 is replaced by "none"), so one client could keep
        // any number of calls or health Watch streams open; and HTTP/2 pings find a peer that
        // went away without closing, whose streams would otherwise stay open.
        let mut builder = Server::builder()
            .trace_fn(call_span)
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)));
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .context("the gRPC port's TLS certificate, key or client CA")?;
        }
        let mut stopping = shutdown.clone();
        let serve = builder
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.wait().await;
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                if !drain.is_zero() {
                    tracing::info!(
                        ?drain,
                        "NOT_SERVING; still taking calls while load balancers notice"
                    );
                    tokio::time::sleep(drain).await;
                }
            });
        // Calls in flight finish, but not forever: a health Watch stream or a stuck client
        // would otherwise hold the stop until the orchestrator kills the process, before the
        // relay published what the finished calls committed.
        tokio::select! {
            served = serve => served?,
            _ = async {
                stopping.wait().await;
                tokio::time::sleep(drain + CLOSE_GRACE).await;
            } => tracing::warn!(
                grace = ?CLOSE_GRACE,
                "calls still open after the drain and the grace period; closing them"
            ),
        }
        Ok(())
    }
}

/// The span of one call (INFO, so that it is traced whatever `RUST_LOG` says, see
/// [`crate::telemetry`]), named after the method in the OpenTelemetry convention
/// (`fupin.intake.v1.IntakeService/SubmitApplication`) and continuing the caller's trace when
/// its metadata carries a valid W3C `traceparent` (and `tracestate`); an invalid one starts a
/// new trace, never fails the call. Events written during the call carry its trace.
fn call_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let span = tracing::info_span!(
        "grpc",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        otel.kind = "server",
    );
    crate::telemetry::continue_trace(&span, &crate::telemetry::HttpHeaders(req.headers()));
    span
}

struct TestClockAdmin {
    clock: Arc<AdjustableClock>,
    enabled: bool,
}

impl TestClockAdmin {
    #[allow(clippy::result_large_err)]
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if !self.enabled {
            return Err(Status::failed_precondition(
                "test clock disabled: start the service with FUPIN_TEST_CLOCK=1 (never in production)",
            ));
        }
        let caller = auth::caller(req)?;
        if caller.role != Role::Operator {
            return Err(Status::permission_denied(
                "only an operator may move the clock",
            ));
        }
        Ok(())
    }

    fn reply(&self) -> TimeReply {
        TimeReply {
            now: self
                .clock
                .now()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            pinned: self.clock.is_shifted(),
        }
    }
}

#[tonic::async_trait]
impl TestClockService for TestClockAdmin {
    async fn set_time(&self, req: Request<SetTimeRequest>) -> Result<Response<TimeReply>, Status> {
        self.check(&req)?;
        let now = req.into_inner().now;
        if now.is_empty() {
            self.clock.reset();
        } else {
            let t = DateTime::parse_from_rfc3339(&now).map_err(|e| {
                Status::invalid_argument(crate::error::bounded(format!(
                    "now: not an RFC 3339 instant ({e})"
                )))
            })?;
            self.clock.set(t.with_timezone(&Utc)).map_err(|e| {
                Status::invalid_argument(crate::error::bounded(format!("now: {now:?} is {e}")))
            })?;
        }
        tracing::warn!(now = %self.clock.now(), "test clock moved");
        Ok(Response::new(self.reply()))
    }

    async fn get_time(&self, req: Request<GetTimeRequest>) -> Result<Response<TimeReply>, Status> {
        self.check(&req)?;
        Ok(Response::new(self.reply()))
    }
}
