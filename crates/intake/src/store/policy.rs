//! The policy versions this database has seen (R-X-4), so a recorded version id keeps one
//! meaning: see [`fupin_kernel::PolicyHistory::register`].

use anyhow::Context;
use chrono::NaiveDate;
use fupin_kernel::{
    PolicyHistory,
    policy::{KnownVersion, Registration},
};
use sqlx::PgPool;

/// Checks `history` (the policy file named `policy`) against the versions earlier starts
/// registered, as of `today`, and records the new ones; an error names the version and stops
/// the start. Replicas starting at once take turns.
pub async fn register<T>(
    pool: &PgPool,
    policy: &str,
    history: &PolicyHistory<T>,
    today: NaiveDate,
) -> anyhow::Result<Registration> {
    let mut tx = pool.begin().await?;
    sqlx::query("lock table policy_versions in share row exclusive mode")
        .execute(&mut *tx)
        .await?;
    let known: Vec<KnownVersion> = sqlx::query_as::<_, (String, NaiveDate, String)>(
        "select id, effective_from, digest from policy_versions where policy = $1 order by id",
    )
    .bind(policy)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(id, effective_from, digest)| KnownVersion {
        id,
        effective_from,
        digest,
    })
    .collect();
    let plan = history
        .register(&known, today)
        .with_context(|| format!("{policy} policy against the versions already used"))?;
    for v in &plan.add {
        sqlx::query(
            "insert into policy_versions (policy, id, effective_from, digest) values ($1, $2, $3, $4)",
        )
        .bind(policy)
        .bind(&v.id)
        .bind(v.effective_from)
        .bind(&v.digest)
        .execute(&mut *tx)
        .await?;
    }
    if !plan.withdraw.is_empty() {
        sqlx::query("delete from policy_versions where policy = $1 and id = any($2)")
            .bind(policy)
            .bind(&plan.withdraw)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(plan)
}
