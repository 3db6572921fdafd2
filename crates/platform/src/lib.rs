//! Runtime plumbing shared by every fupin service. Nothing here decides a business rule: the
//! services' `domain` modules do. This crate gives them configuration, telemetry, a Postgres
//! pool with migrations, the transactional outbox and its relay, the JetStream consumer with an
//! inbox, the gRPC server bootstrap (health, reflection, auth, graceful shutdown), the error
//! mapping and an injectable clock.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod grpc;
pub mod idempotency;
pub mod pii;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use auth::{Caller, Role};
pub use clock::{Clock, SharedClock};
pub use config::BaseConfig;
pub use error::ServiceError;
pub use pii::PiiCipher;
