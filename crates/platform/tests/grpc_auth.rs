//! ARCHITECTURE.md "Cross-cutting" (Auth) and the gRPC bootstrap: every business RPC needs a
//! valid bearer token (`Unauthenticated` otherwise) and the right role (`PermissionDenied`);
//! health and reflection answer without one; the test clock refuses to move unless enabled;
//! shutdown is graceful.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use fupin_platform::{
    Role,
    auth::{self, JwtVerifier},
    clock::{AdjustableClock, Clock},
    grpc::GrpcServer,
    shutdown::{self, ShutdownTrigger},
};
use fupin_proto::admin::v1::{
    GetTimeRequest, SetTimeRequest, TimeReply, test_clock_service_client::TestClockServiceClient,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SECRET: &str = "secret-a";
const DISTRICT: &str = "410311";

struct Running {
    channel: Channel,
    clock: Arc<AdjustableClock>,
    trigger: ShutdownTrigger,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn start(test_clock_enabled: bool) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let clock = AdjustableClock::new();
    let server = GrpcServer::new(
        JwtVerifier::hs256(SECRET),
        clock.clone(),
        test_clock_enabled,
    );
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(server.serve(listener, stop));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connecting to the gRPC server");
    Running {
        channel,
        clock,
        trigger,
        task,
    }
}

impl Running {
    fn clock_client(&self) -> TestClockServiceClient<Channel> {
        TestClockServiceClient::new(self.channel.clone())
    }

    /// Graceful shutdown: `serve` returns Ok promptly even with a client still connected.
    async fn shut_down(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve returns within 5 s of shutdown")
            .expect("serve task did not panic")
            .expect("serve returns Ok");
        drop(self.channel);
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut req = Request::new(message);
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii token"),
        );
    }
    req
}

fn operator_token() -> String {
    auth::token_for(SECRET, "ops", Role::Operator, DISTRICT, None, 60)
}

async fn get_time(
    client: &mut TestClockServiceClient<Channel>,
    token: Option<&str>,
) -> Result<TimeReply, tonic::Status> {
    client
        .get_time(with_token(GetTimeRequest {}, token))
        .await
        .map(tonic::Response::into_inner)
}

fn parse(now: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(now)
        .unwrap_or_else(|e| panic!("{now:?} is not RFC 3339: {e}"))
        .to_utc()
}

/// Auth (ARCHITECTURE.md "Cross-cutting"): no token, a token signed with another key and an
/// expired token are all `Unauthenticated`; a valid operator passes; a valid token of another
/// role is `PermissionDenied`. Health and reflection need no token. Shutdown is graceful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_clock_rpc_requires_a_valid_operator_token() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start(true).await;
        let mut client = server.clock_client();

        let err = get_time(&mut client, None).await.expect_err("no token");
        assert_eq!(err.code(), Code::Unauthenticated, "no token: {err:?}");

        let foreign = auth::token_for("secret-b", "ops", Role::Operator, DISTRICT, None, 60);
        let err = get_time(&mut client, Some(&foreign))
            .await
            .expect_err("token signed with another key");
        assert_eq!(err.code(), Code::Unauthenticated, "wrong key: {err:?}");

        // Expired an hour ago: well past the verifier's leeway.
        let expired = auth::token_for(SECRET, "ops", Role::Operator, DISTRICT, None, -3600);
        let err = get_time(&mut client, Some(&expired))
            .await
            .expect_err("expired token");
        assert_eq!(err.code(), Code::Unauthenticated, "expired: {err:?}");

        let err = get_time(&mut client, Some("not-a-jwt"))
            .await
            .expect_err("garbage token");
        assert_eq!(err.code(), Code::Unauthenticated, "garbage: {err:?}");

        let reply = get_time(&mut client, Some(&operator_token()))
            .await
            .expect("a valid operator token is accepted");
        let skew = (parse(&reply.now) - Utc::now()).num_seconds().abs();
        assert!(
            skew <= 5,
            "unshifted clock reads the system time, got {}",
            reply.now
        );
        assert!(!reply.pinned);

        let staff = auth::token_for(SECRET, "clerk", Role::DistrictStaff, DISTRICT, None, 60);
        let err = get_time(&mut client, Some(&staff))
            .await
            .expect_err("district staff may not use the test clock");
        assert_eq!(
            err.code(),
            Code::PermissionDenied,
            "district staff: {err:?}"
        );

        // Health answers without a token.
        let mut health = HealthClient::new(server.channel.clone());
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health check without a token")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);

        // Reflection answers without a token and lists every fupin service.
        let mut reflection = ServerReflectionClient::new(server.channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection without a token")
            .into_inner();
        let reply = replies
            .message()
            .await
            .expect("reflection reply")
            .expect("one reply");
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!(
                "expected a ListServices response, got {:?}",
                reply.message_response
            );
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for expected in [
            "fupin.intake.v1.IntakeService",
            "fupin.admin.v1.TestClockService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.contains(&expected),
                "reflection lists {names:?}, missing {expected}"
            );
        }

        server.shut_down().await;
    })
    .await
    .expect("test took longer than 30 s");
}

/// The test clock (fupin.admin.v1): disabled by default, it refuses even a valid operator with
/// `FailedPrecondition` and the clock does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_test_clock_refuses_set_time() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start(false).await;
        let mut client = server.clock_client();
        let err = client
            .set_time(with_token(
                SetTimeRequest {
                    now: "2030-01-01T00:00:00Z".into(),
                },
                Some(&operator_token()),
            ))
            .await
            .expect_err("a disabled test clock refuses SetTime");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(!server.clock.is_shifted(), "the clock must not have moved");
        assert!((server.clock.now() - Utc::now()).num_seconds().abs() <= 5);

        // Authentication still comes first.
        let err = client
            .set_time(with_token(
                SetTimeRequest {
                    now: "2030-01-01T00:00:00Z".into(),
                },
                None,
            ))
            .await
            .expect_err("no token");
        assert_eq!(err.code(), Code::Unauthenticated);

        server.shut_down().await;
    })
    .await
    .expect("test took longer than 30 s");
}

/// The test clock, when enabled: an operator's SetTime moves the service clock, GetTime reads
/// it back, an instant it cannot hold is refused, and an empty SetTime resets it to the system
/// clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_test_clock_moves_time() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start(true).await;
        let mut client = server.clock_client();
        let token = operator_token();
        let target = parse("2030-01-01T00:00:00Z");
        let within = |t: DateTime<Utc>| (t - target).num_seconds().abs() <= 5;

        let set = client
            .set_time(with_token(
                SetTimeRequest {
                    now: "2030-01-01T08:00:00+08:00".into(),
                },
                Some(&token),
            ))
            .await
            .expect("operator moves the clock")
            .into_inner();
        assert!(within(parse(&set.now)), "SetTime replied {}", set.now);
        assert!(set.pinned);

        let got = get_time(&mut client, Some(&token)).await.expect("GetTime");
        assert!(within(parse(&got.now)), "GetTime returned {}", got.now);
        assert!(got.pinned);
        assert!(within(server.clock.now()), "the service's own clock moved");

        // Not an instant, or an instant too far away for the clock's offset: refused, naming
        // the field, not clamped somewhere else; the clock stays where it was.
        for bad in ["next tuesday", "1700-01-01T00:00:00Z"] {
            let err = client
                .set_time(with_token(SetTimeRequest { now: bad.into() }, Some(&token)))
                .await
                .expect_err(bad);
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
            assert!(
                err.message().starts_with("now:"),
                "{bad}: {}",
                err.message()
            );
            assert!(
                within(server.clock.now()),
                "{bad}: a refused instant leaves the clock"
            );
        }

        let reset = client
            .set_time(with_token(
                SetTimeRequest { now: String::new() },
                Some(&token),
            ))
            .await
            .expect("reset")
            .into_inner();
        assert!(!reset.pinned);
        assert!((parse(&reset.now) - Utc::now()).num_seconds().abs() <= 5);

        server.shut_down().await;
    })
    .await
    .expect("test took longer than 30 s");
}

/// Hardening of the shared gRPC server: one HTTP/2 connection holds at most
/// `MAX_STREAMS_PER_CONNECTION` calls at once (tonic otherwise advertises no bound, and one
/// client could keep any number of health Watch streams open); a call beyond them waits until
/// one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_holds_a_bounded_number_of_calls() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = start(false).await;
        let mut health = HealthClient::new(server.channel.clone());
        let limit = fupin_platform::grpc::MAX_STREAMS_PER_CONNECTION as usize;
        let mut watches = Vec::with_capacity(limit);
        for _ in 0..limit {
            let mut watch = health
                .watch(HealthCheckRequest::default())
                .await
                .expect("a Watch within the bound")
                .into_inner();
            watch
                .message()
                .await
                .expect("the first status")
                .expect("a status");
            watches.push(watch);
        }
        let mut check = health.clone();
        let waiting = tokio::spawn(async move { check.check(HealthCheckRequest::default()).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiting.is_finished(),
            "a call beyond the bound is answered while {limit} are open"
        );
        watches.pop();
        let answered = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("answered once a call ended")
            .expect("no panic")
            .expect("health check");
        assert_eq!(answered.into_inner().status(), ServingStatus::Serving);
        drop(watches);
        server.shut_down().await;
    })
    .await
    .expect("test took longer than 60 s");
}

/// The test clock decodes only small requests (its messages are a timestamp): a request of
/// 100 KiB is refused before it is read, the clock unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_refuses_a_large_request() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = start(true).await;
        let mut client = server.clock_client();
        let err = client
            .set_time(with_token(
                SetTimeRequest {
                    now: "2".repeat(100 * 1024),
                },
                Some(&operator_token()),
            ))
            .await
            .expect_err("a 100 KiB request");
        assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
        let reply = get_time(&mut client, Some(&operator_token()))
            .await
            .expect("the clock still answers");
        assert!(!reply.pinned, "the clock unchanged");
        server.shut_down().await;
    })
    .await
    .expect("test took longer than 30 s");
}
