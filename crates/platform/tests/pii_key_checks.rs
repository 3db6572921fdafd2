//! R-CR-11 (README "Personal data", keys): a database remembers a check value of each
//! personal-data key that wrote to it. A start with other material under a known key id, or
//! with another blind-index key, is refused naming the variable; new key ids (a rotation) are
//! recorded; keys left out of the configuration (retired) are no concern.

mod common;

use common::{count, platform_db};
use fupin_platform::{
    PiiCipher,
    db::{database_now, key_heartbeat, keys_quiet_in, record_keys_retired, verify_pii_keys},
};
use sqlx::PgPool;

/// A pass that began `minutes` from now (database time): later than a replica's last beat by
/// more than the quiet time when `minutes` is large enough.
async fn pass_began(pool: &PgPool, minutes: i64) -> chrono::DateTime<chrono::Utc> {
    database_now(pool).await.expect("now") + chrono::Duration::minutes(minutes)
}

const K1: &str = "a2V5LW9uZS1mb3ItdGhlLXRlc3RzLS0tLS0tLS0tLS0=";
const K1_OTHER: &str = "b3RoZXItbWF0ZXJpYWwtZm9yLWtleS1vbmUtLS0tLS0=";
const K2: &str = "a2V5LXR3by1mb3ItdGhlLXRlc3RzLS0tLS0tLS0tLS0=";
const INDEX: &str = "aW5kZXgta2V5LWZvci10aGUtdGVzdHMtLS0tLS0tLS0=";
const INDEX_OTHER: &str = "YW5vdGhlci1pbmRleC1rZXktZm9yLXRoZS10ZXN0cy0=";

fn cipher(keys: &str, index: &str) -> PiiCipher {
    PiiCipher::from_config(keys, index).expect("test keys parse")
}

#[tokio::test]
async fn keys_that_did_not_write_the_database_stop_the_start() {
    let db = platform_db().await;
    let pool = &db.pool;
    let first = cipher(&format!("k1:{K1}"), INDEX);
    verify_pii_keys(pool, &first).await.expect("first use");
    assert_eq!(count(pool, "select count(*) from pii_key_checks").await, 2);
    verify_pii_keys(pool, &first).await.expect("the same keys");

    let e = verify_pii_keys(pool, &cipher(&format!("k1:{K1_OTHER}"), INDEX))
        .await
        .expect_err("other material under k1")
        .to_string();
    assert!(e.starts_with("PII_KEYS: key \"k1\""), "{e}");
    let e = verify_pii_keys(pool, &cipher(&format!("k1:{K1}"), INDEX_OTHER))
        .await
        .expect_err("another index key")
        .to_string();
    assert!(e.starts_with("PII_INDEX_KEY"), "{e}");
    // A refused start records nothing.
    assert_eq!(count(pool, "select count(*) from pii_key_checks").await, 2);

    // Rotation: k2 added, then put first, then k1 retired and left out.
    verify_pii_keys(pool, &cipher(&format!("k1:{K1},k2:{K2}"), INDEX))
        .await
        .expect("a new key id");
    verify_pii_keys(pool, &cipher(&format!("k2:{K2},k1:{K1}"), INDEX))
        .await
        .expect("the new key first");
    // k1 sealed values: it leaves only once a re-sealing pass has moved them.
    let e = verify_pii_keys(pool, &cipher(&format!("k2:{K2}"), INDEX))
        .await
        .expect_err("k1 left out before a pass moved its values")
        .to_string();
    assert!(
        e.starts_with("PII_KEYS: key \"k1\" has sealed values"),
        "{e}"
    );
    // A pass begun while k1 was current a moment ago (a replica on the old configuration may
    // still seal with it) does not retire it.
    let still = record_keys_retired(pool, &["k1".to_owned()], pass_began(pool, 0).await)
        .await
        .expect("a pass done");
    assert_eq!(still, vec!["k1".to_owned()]);
    assert!(
        verify_pii_keys(pool, &cipher(&format!("k2:{K2}"), INDEX))
            .await
            .is_err()
    );
    // One begun well after the last replica sealed with it does.
    let still = record_keys_retired(pool, &["k1".to_owned()], pass_began(pool, 10).await)
        .await
        .expect("a later pass done");
    assert!(still.is_empty(), "{still:?}");
    verify_pii_keys(pool, &cipher(&format!("k2:{K2}"), INDEX))
        .await
        .expect("the old key left out");
    assert_eq!(count(pool, "select count(*) from pii_key_checks").await, 3);
    // An id once used keeps its material, even after it was left out.
    let e = verify_pii_keys(pool, &cipher(&format!("k2:{K2},k1:{K1_OTHER}"), INDEX))
        .await
        .expect_err("k1 back with other material")
        .to_string();
    assert!(e.starts_with("PII_KEYS: key \"k1\""), "{e}");
}

/// A key added beside the current one and never current sealed nothing: it may leave without
/// a pass. A retired key made current again seals again: it may not leave until the next pass.
#[tokio::test]
async fn only_keys_that_sealed_need_a_pass_before_they_leave() {
    let db = platform_db().await;
    let pool = &db.pool;
    verify_pii_keys(pool, &cipher(&format!("k1:{K1}"), INDEX))
        .await
        .expect("first use");
    verify_pii_keys(pool, &cipher(&format!("k1:{K1},k2:{K2}"), INDEX))
        .await
        .expect("k2 added second");
    verify_pii_keys(pool, &cipher(&format!("k1:{K1}"), INDEX))
        .await
        .expect("k2 never sealed anything");
    record_keys_retired(pool, &["k1".to_owned()], pass_began(pool, 10).await)
        .await
        .expect("a pass over k1");
    // Current again (an operator going back): the retirement no longer holds.
    verify_pii_keys(pool, &cipher(&format!("k1:{K1},k2:{K2}"), INDEX))
        .await
        .expect("k1 current again");
    let e = verify_pii_keys(pool, &cipher(&format!("k2:{K2}"), INDEX))
        .await
        .expect_err("k1 sealed again since its pass")
        .to_string();
    assert!(e.contains("\"k1\" has sealed values"), "{e}");
}

/// A replica still sealing with k1 (its heartbeat) while another, moved to k2, finishes a pass
/// over k1: k1 is not retired, and a start without it is refused, until a pass begun after the
/// last beat.
#[tokio::test]
async fn a_key_another_replica_still_seals_with_is_not_retired() {
    let db = platform_db().await;
    let pool = &db.pool;
    let old = cipher(&format!("k1:{K1}"), INDEX);
    verify_pii_keys(pool, &old).await.expect("first use");
    verify_pii_keys(pool, &cipher(&format!("k2:{K2},k1:{K1}"), INDEX))
        .await
        .expect("a replica moved to k2");
    // The old replica's beat, then a pass on the new one that began a while after k1's first
    // use but not after the beat.
    key_heartbeat(pool, &old).await.expect("beat");
    let still = record_keys_retired(pool, &["k1".to_owned()], pass_began(pool, 1).await)
        .await
        .expect("pass");
    assert_eq!(still, vec!["k1".to_owned()]);
    let e = verify_pii_keys(pool, &cipher(&format!("k2:{K2}"), INDEX))
        .await
        .expect_err("k1 still seals on a replica")
        .to_string();
    assert!(e.contains("\"k1\" has sealed values"), "{e}");
    // The next pass is due once the beat is quiet: three minutes on, and a margin.
    let quiet = keys_quiet_in(pool, &["k1".to_owned()])
        .await
        .expect("quiet")
        .expect("k1 waits");
    assert!(
        quiet > std::time::Duration::from_secs(170) && quiet <= std::time::Duration::from_secs(191),
        "{quiet:?}"
    );
    record_keys_retired(pool, &["k1".to_owned()], pass_began(pool, 10).await)
        .await
        .expect("a later pass");
    assert_eq!(
        keys_quiet_in(pool, &["k1".to_owned()])
            .await
            .expect("quiet"),
        None
    );
}

/// Replicas starting at once with the same new keys: all start, each key recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_record_each_key_once() {
    let db = platform_db().await;
    let keys = cipher(&format!("k1:{K1},k2:{K2}"), INDEX);
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let (pool, keys) = (db.pool.clone(), keys.clone());
            tokio::spawn(async move { verify_pii_keys(&pool, &keys).await })
        })
        .collect();
    for s in starts {
        s.await.expect("no panic").expect("every replica starts");
    }
    assert_eq!(
        count(&db.pool, "select count(*) from pii_key_checks").await,
        3
    );
}
