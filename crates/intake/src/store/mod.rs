//! Persistence of the intake context (sqlx). Rows map to domain values here; decisions are
//! the domain's.

pub mod applications;
pub mod audit;
pub mod complaints;
pub mod pii;
pub mod policy;
pub mod readmodel;
pub mod readmodel_copy;
