//! Test support (feature `testing`): every test gets its own database and its own NATS subject
//! prefix and stream, so tests run in parallel without colliding. Reads `DATABASE_URL` (a
//! server whose user may create databases) and `NATS_URL`, which `cargo xtask test` sets.

use sqlx::{
    Connection, Executor, PgConnection, PgPool, migrate::Migrator, postgres::PgPoolOptions,
};

use crate::events::EventBus;

pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:54222".to_owned())
}

/// A short unique token for names: `t` + 12 hex chars of a v7 uuid's random part.
pub fn unique_token() -> String {
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!("t{}", &u[20..32])
}

/// A fresh database with the platform migrations and `service` applied.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn create(service: &Migrator) -> anyhow::Result<Self> {
        let admin = admin_database_url();
        let name = format!("test_{}", unique_token());
        let mut conn = PgConnection::connect(&admin).await?;
        // `name` is generated here (hex), never user input.
        conn.execute(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
            .await?;
        conn.close().await?;
        let url = replace_database(&admin, &name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await?;
        crate::db::migrate(&pool, service).await?;
        Ok(Self { name, url, pool })
    }
}

/// Replaces the database name in a postgres URL (keeping query parameters).
pub fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{db}?{q}"),
        None => format!("{host}/{db}"),
    }
}

/// An event bus on a unique subject prefix and stream.
pub async fn test_bus(source: &str) -> anyhow::Result<EventBus> {
    let token = unique_token();
    EventBus::connect(&nats_url(), &token, &token.to_uppercase(), source).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database() {
        assert_eq!(
            super::replace_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
