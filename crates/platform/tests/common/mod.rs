//! Helpers shared by the platform's integration tests. Each test binary uses a subset, hence
//! the `dead_code` allowance.
#![allow(dead_code)]

use std::{future::Future, time::Duration};

use fupin_platform::testing::TestDb;
use sqlx::{PgPool, migrate::Migrator};

/// A fresh test database carrying only the platform tables (no service migrations).
pub async fn platform_db() -> TestDb {
    let none = Migrator::with_migrations(vec![]);
    TestDb::create(&none)
        .await
        .expect("creating a test database (is PostgreSQL up? see DATABASE_URL)")
}

/// Polls `probe` every 50 ms until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `select count(*) ...` as an i64.
pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}
