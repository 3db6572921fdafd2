//! PostgreSQL pool and embedded migrations, run at start-up.

use std::time::Duration;

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

/// Platform tables (outbox, inbox, idempotency keys), versions 1..999.
pub static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Connects and applies the platform migrations, then the service's own.
pub async fn connect_and_migrate(
    url: &str,
    max_connections: u32,
    service: &Migrator,
) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    migrate(&pool, service).await?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool, service: &Migrator) -> anyhow::Result<()> {
    // Both sets share `_sqlx_migrations`, so each must tolerate the other's rows.
    for set in [&PLATFORM_MIGRATIONS, service] {
        let mut m = Migrator::with_migrations(set.iter().cloned().collect());
        m.set_ignore_missing(true);
        m.run(pool).await?;
    }
    Ok(())
}
