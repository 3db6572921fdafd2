//! ARCHITECTURE.md "Cross-cutting" (Auth): the gRPC port serves TLS when `GRPC_TLS_CERT` and
//! `GRPC_TLS_KEY` are set, and mutual TLS (partner banks' systems presenting client
//! certificates) when `GRPC_TLS_CLIENT_CA` is set too. Bearer tokens and personal data then
//! never cross the network in the clear. Certificates: `tests/tls` (test-only, see `gen.sh`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use fupin_platform::{
    auth::JwtVerifier,
    clock::AdjustableClock,
    config::GrpcTls,
    grpc::{GrpcServer, server_tls},
    shutdown,
};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(file(name)).expect("test certificate")
}

/// A gRPC server with the platform's services, serving TLS from the test certificates.
async fn serve(client_ca: bool) -> (SocketAddr, shutdown::ShutdownTrigger) {
    let files = GrpcTls {
        cert: file("server.pem"),
        key: file("server.key"),
        client_ca: client_ca.then(|| file("ca.pem")),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = GrpcServer::new(JwtVerifier::hs256("secret"), AdjustableClock::new(), false)
        .with_tls(server_tls(&files).expect("reading the test certificates"));
    let (trigger, stop) = shutdown::channel();
    tokio::spawn(server.serve(listener, stop));
    (addr, trigger)
}

async fn health(endpoint: Endpoint) -> Result<ServingStatus, String> {
    let channel: Channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|s| format!("call: {s:?}"))?;
    Ok(reply.into_inner().status())
}

fn tls_endpoint(addr: SocketAddr, identity: bool) -> Endpoint {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem("ca.pem")))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(Identity::from_pem(pem("client.pem"), pem("client.key")));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("client TLS settings")
}

#[tokio::test]
async fn tls_is_served_and_plain_http2_is_refused() {
    let (addr, trigger) = serve(false).await;
    assert_eq!(
        health(tls_endpoint(addr, false)).await,
        Ok(ServingStatus::Serving)
    );
    let plain = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    assert!(
        health(plain).await.is_err(),
        "plain HTTP/2 must not be answered"
    );
    // A client that does not trust the server's CA does not connect.
    let untrusted = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem("server.pem")))
                .domain_name("localhost"),
        )
        .expect("client TLS settings");
    assert!(health(untrusted).await.is_err());
    trigger.trigger();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_client_ca() {
    let (addr, trigger) = serve(true).await;
    assert_eq!(
        health(tls_endpoint(addr, true)).await,
        Ok(ServingStatus::Serving)
    );
    assert!(
        health(tls_endpoint(addr, false)).await.is_err(),
        "a client without a certificate must be refused"
    );
    trigger.trigger();
}

#[test]
fn unreadable_certificate_files_stop_the_start_naming_the_setting() {
    let files = GrpcTls {
        cert: file("missing.pem"),
        key: file("server.key"),
        client_ca: None,
    };
    let e = format!("{:#}", server_tls(&files).unwrap_err());
    assert!(
        e.contains("GRPC_TLS_CERT") && e.contains("missing.pem"),
        "{e}"
    );
}
