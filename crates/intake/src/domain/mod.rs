//! The intake domain: pure decisions (SPEC.md section 1). No tonic, sqlx or async-nats here;
//! every rule takes `today` and the policy in force as input.

pub mod admission;
pub mod application;
pub mod bank;
pub mod complaint;
pub mod disclosure;
pub mod error;
pub mod form;
pub mod types;

pub use error::DomainError;
pub use types::*;

#[cfg(test)]
mod tests;
