//! The baseline: single-row INSERT transactions from `clients` connections.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;

use crate::stats::{CpuWindow, Summary};

pub async fn setup(url: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::query(
        "create table if not exists bench_plain (id uuid primary key, payload text not null, created_at timestamptz not null)",
    )
    .execute(&pool)
    .await?;
    Ok(())
}

pub async fn run(
    url: &str,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Summary> {
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .connect(url)
        .await?;
    let start = Instant::now();
    let deadline = start + warmup + measure;
    let measure_from = start + warmup;
    let cpu = CpuWindow::spawn(measure_from, deadline, None);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = sqlx::query(
                    "insert into bench_plain (id, payload, created_at) values ($1, $2, now())",
                )
                .bind(uuid::Uuid::now_v7())
                .bind("household application payload of a typical size for comparison")
                .execute(&pool)
                .await;
                if t >= measure_from {
                    match r {
                        Ok(_) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok(Summary::new(all, errors, measure, cpu.finish().await))
}
