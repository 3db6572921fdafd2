//! Black-box boundary tests of intake's read model of other services' events (ARCHITECTURE
//! "Events": inbox, dead letters, CloudEvents headers; R-IN-3, R-CR-3, R-CR-5, R-CR-8, R-CR-10,
//! R-RK-9, R-ID-4, R-X-2) and of its authentication and authorisation (ARCHITECTURE "Auth",
//! SPEC section 0 "sees and acts only inside its area", R-X-3).
//!
//! Events are published as the producing services publish them (or deliberately not), and
//! their effect is observed through admission over gRPC, the inbox and the dead-letter subject.

mod common;

use std::time::Duration;

use async_nats::HeaderMap;
use common::*;
use fupin_platform::{Role, auth::token_for, events::headers};
use fupin_proto::{intake::v1 as pb, rating::v1 as rating, risk::v1 as risk};
use prost::{Message, Name};
use sqlx::PgPool;
use tonic::{Code, Status};

const RATING_SOURCE: &str = "/fupin/credit-rating";
const RISK_SOURCE: &str = "/fupin/risk-control";

// ---- admission helpers ----

async fn try_enterprise(t: &TestIntake, code: &str, area: &str) -> Result<pb::Application, Status> {
    t.as_district_staff()
        .submit_application(enterprise_request(code, area, "200000"))
        .await
        .map(tonic::Response::into_inner)
}

#[allow(clippy::too_many_arguments)]
async fn rate(
    t: &TestIntake,
    resident: &str,
    village: &str,
    grade: &str,
    line: &str,
    from: &str,
    until: &str,
    seq: u64,
) {
    let id = t
        .publish_rating_effective(resident, village, grade, line, false, from, until, seq)
        .await;
    t.wait_applied(&id).await;
}

/// A resident ID (born 1980-05-01) whose check character is `X`.
fn resident_id_with_x() -> String {
    (0..1000)
        .map(resident_id)
        .find(|r| r.ends_with('X'))
        .expect("some sequence number gives the check character X")
}

// ---- event helpers ----

fn ce_headers(ce_type: &str, source: &str, ce_id: Option<&str>, msg_id: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::CE_SPECVERSION, "1.0");
    if let Some(id) = ce_id {
        h.insert(headers::CE_ID, id);
    }
    if !ce_type.is_empty() {
        h.insert(headers::CE_TYPE, ce_type);
    }
    h.insert(headers::CE_SOURCE, source);
    h.insert(headers::CE_TIME, "2026-03-02T01:00:00.000000Z");
    h.insert(headers::CONTENT_TYPE, headers::PROTOBUF_CONTENT_TYPE);
    if let Some(m) = msg_id {
        h.insert(headers::NATS_MSG_ID, m);
    }
    h
}

/// Publishes `payload` on the subject of event type `M` with exactly `h` as headers.
async fn publish_raw<M: Name>(t: &TestIntake, h: HeaderMap, payload: Vec<u8>) {
    t.bus
        .js
        .publish_with_headers(t.bus.subject_for(&M::full_name()), h, payload.into())
        .await
        .expect("publish")
        .await
        .expect("JetStream ack");
}

/// Every dead letter on the stream now.
async fn dead_letters(t: &TestIntake) -> Vec<Event> {
    all_events(&t.bus, &t.bus.dead_letter_subject("*")).await
}

/// Waits until at least `n` dead letters are on the stream (or `secs` pass) and returns them.
async fn wait_dead_letters(t: &TestIntake, n: usize, secs: u64) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let dead = dead_letters(t).await;
        if dead.len() >= n || tokio::time::Instant::now() >= deadline {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Applied,
    DeadLettered,
}

/// Whether the event with this ce-id was applied (in the inbox) or dead-lettered.
async fn fate(t: &TestIntake, ce_id: &str) -> Fate {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        if t.applied(ce_id).await {
            return Fate::Applied;
        }
        if dead_letters(t)
            .await
            .iter()
            .any(|e| e.header(headers::CE_ID) == Some(ce_id))
        {
            return Fate::DeadLettered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {ce_id} neither applied nor dead-lettered after 45 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish_npl(t: &TestIntake, area: &str, seq: u64) -> String {
    let ev = risk::NplThresholdExceeded {
        area_code: area.to_owned(),
        npl_ratio: "0.0612".into(),
        threshold: "0.05".into(),
        measured_at: "2026-03-01T00:00:00Z".into(),
        sequence: seq,
    };
    t.publish(RISK_SOURCE, &ev, area).await
}

// =====================================================================================
// Read model: ordering, blacklist entries, normalisation
// =====================================================================================

/// R-CR-10 (and the BlacklistEntryAdded contract): a removal that arrives before its addition
/// keeps the entry removed; a subject with several active entries stays blacklisted until the
/// last is removed; a redelivered removal of one entry does not lift another; a new listing
/// (new entry id) refuses again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blacklist_entries_are_tracked_one_by_one() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(401);
        t.given_credit_household(&r, VILLAGE_A).await;

        // Removal first, then the (late) addition: stays removed.
        let id = t
            .publish_blacklist_removed("bl-401-a", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        let id = t.publish_blacklisted("bl-401-a", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "1000", "addition after its removal").await;

        // Two active entries: removing one keeps the household blacklisted.
        for e in ["bl-401-b", "bl-401-c"] {
            let id = t.publish_blacklisted(e, &r, HOUSEHOLD_KIND).await;
            t.wait_applied(&id).await;
        }
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "two entries").await;
        let id = t
            .publish_blacklist_removed("bl-401-b", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "one entry left").await;
        // The same removal again (a new delivery): still one entry left.
        let id = t
            .publish_blacklist_removed("bl-401-b", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        refused(
            &t,
            &r,
            VILLAGE_A,
            "1000",
            &["R-CR-10"],
            "removal redelivered",
        )
        .await;
        // The addition of the removed entry again (redelivery): it stays removed.
        let id = t.publish_blacklisted("bl-401-b", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        let id = t
            .publish_blacklist_removed("bl-401-c", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "1000", "every entry removed").await;

        // Listed again under a new entry id.
        let id = t.publish_blacklisted("bl-401-d", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "listed again").await;
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9: a resumption that arrives before the suspension it follows (higher sequence first)
/// keeps lending open; a village's resumption does not lift its town's suspension, nor a
/// town's resumption its village's; each area follows its own sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn npl_suspensions_follow_each_areas_sequence_whatever_the_order() {
    bounded(90, async {
        let t = spawn_intake().await;
        let a = resident_id(411);
        t.given_credit_household(&a, VILLAGE_A).await;

        let id = t.publish_lending_resumed(TOWN_A, 2).await;
        t.wait_applied(&id).await;
        let id = t.publish_npl_exceeded(TOWN_A, 1).await;
        t.wait_applied(&id).await;
        admitted(
            &t,
            &a,
            VILLAGE_A,
            "1000",
            "stale suspension after resumption",
        )
        .await;

        let id = t.publish_npl_exceeded(TOWN_A, 3).await;
        t.wait_applied(&id).await;
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"], "town suspended").await;
        // The village's own resumption does not lift the town's suspension.
        let id = t.publish_lending_resumed(VILLAGE_A, 1).await;
        t.wait_applied(&id).await;
        let s = refused(
            &t,
            &a,
            VILLAGE_A,
            "1000",
            &["R-RK-9"],
            "town still suspended",
        )
        .await;
        assert!(s.message().contains(TOWN_A), "{s:?}");

        // Village suspended, town resumed: still refused, naming the village only.
        let id = t.publish_npl_exceeded(VILLAGE_A, 2).await;
        t.wait_applied(&id).await;
        let id = t.publish_lending_resumed(TOWN_A, 4).await;
        t.wait_applied(&id).await;
        let s = refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"], "village suspended").await;
        assert!(s.message().contains(VILLAGE_A), "{s:?}");
        assert!(
            !s.message().contains(&format!("{TOWN_A} ")),
            "the town is no longer named: {s:?}"
        );
        // A stale resumption of the village (older sequence) does not lift it.
        let id = t.publish_lending_resumed(VILLAGE_A, 1).await;
        t.wait_applied(&id).await;
        refused(
            &t,
            &a,
            VILLAGE_A,
            "1000",
            &["R-RK-9"],
            "stale village resumption",
        )
        .await;
        let id = t.publish_lending_resumed(VILLAGE_A, 3).await;
        t.wait_applied(&id).await;
        admitted(&t, &a, VILLAGE_A, "1000", "both resumed").await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-3, R-CR-5: a newer rating delivered before an older one wins; a revoked rating (empty
/// grade and line, no dates) refuses; an upgrade after it admits; a rating expiring today
/// (exclusive) refuses; a veto refuses whatever the grade.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ratings_out_of_order_revoked_and_expired() {
    bounded(90, async {
        let t = spawn_intake().await; // 2026-03-02
        let r = resident_id(421);
        rate(&t, &r, VILLAGE_A, "B", "0", "2026-01-01", "2027-01-01", 5).await;
        rate(
            &t,
            &r,
            VILLAGE_A,
            "A",
            "20000.00",
            "2025-01-01",
            "2027-01-01",
            4,
        )
        .await;
        refused(
            &t,
            &r,
            VILLAGE_A,
            "1000",
            &["R-CR-3"],
            "B (seq 5) beats A (seq 4)",
        )
        .await;

        rate(
            &t,
            &r,
            VILLAGE_A,
            "A",
            "20000.00",
            "2026-03-01",
            "2027-03-01",
            6,
        )
        .await;
        admitted(&t, &r, VILLAGE_A, "20000", "A (seq 6)").await;

        // Revoked: the credit service sends an empty grade and line.
        rate(&t, &r, VILLAGE_A, "", "", "", "", 7).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"], "rating revoked").await;

        // Expiring today (expires_on is exclusive).
        rate(
            &t,
            &r,
            VILLAGE_A,
            "AA",
            "30000.00",
            "2025-03-02",
            "2026-03-02",
            8,
        )
        .await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"], "expired today").await;
        rate(
            &t,
            &r,
            VILLAGE_A,
            "AA",
            "30000.00",
            "2025-03-03",
            "2026-03-03",
            9,
        )
        .await;
        admitted(&t, &r, VILLAGE_A, "30000", "its last day").await;

        // A "三无" veto refuses an AAA.
        let id = t
            .publish_rating_effective(
                &r,
                VILLAGE_A,
                "AAA",
                "50000.00",
                true,
                "2026-03-01",
                "2027-03-01",
                10,
            )
            .await;
        t.wait_applied(&id).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-3"], "veto").await;
        t.shutdown().await;
    })
    .await;
}

/// R-CR-8 ("a credit village raises ITS households' lines"), SPEC section 0: the credit
/// service rates the household as one of village A2, which is no credit village; village A is
/// one. Filed by A2 the line is 20,000. Filed by village A's department as a household of A,
/// intake must not grant A's uplift (24,000) to a household the credit service places in A2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_household_rated_in_another_village_gets_no_uplift_from_this_one() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(431);
        rate(
            &t,
            &r,
            VILLAGE_A2,
            "A",
            "20000.00",
            "2024-01-01",
            "2027-12-31",
            1,
        )
        .await;
        let id = t.publish_credit_village(VILLAGE_A, true, 1).await;
        t.wait_applied(&id).await;

        refused(
            &t,
            &r,
            VILLAGE_A2,
            "24000",
            &["R-CR-8"],
            "A2 is no credit village",
        )
        .await;
        let s = try_household(&t, &r, VILLAGE_A, "24000").await;
        assert!(
            s.is_err(),
            "a household rated in {VILLAGE_A2} got {VILLAGE_A}'s credit-village line: {s:?}"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-10, R-ID-4, R-CR-11 (subjects keyed by a blind index of the normalised code): a
/// resident ID whose check character arrives as a lower-case `x` with surrounding spaces, and
/// a USCC in lower case or with spaces, name the same subject as the upper-case form the
/// application carries. An enterprise's own credit rating (subject_kind ENTERPRISE) plays no
/// part in its admission (R-IN-3: qualified and not blacklisted).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_codes_match_whatever_their_case_and_spacing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id_with_x();
        let lower = format!(" {} ", r.to_lowercase());
        rate(
            &t,
            &lower,
            VILLAGE_A,
            "A",
            "20000.00",
            "2024-01-01",
            "2027-12-31",
            1,
        )
        .await;
        admitted(&t, &r, VILLAGE_A, "20000", "rated as lower-case x").await;
        let id = t
            .publish_blacklisted("bl-441", &lower, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        refused(
            &t,
            &r,
            VILLAGE_A,
            "1000",
            &["R-CR-10"],
            "listed as lower-case x",
        )
        .await;
        let id = t
            .publish_blacklist_removed("bl-441", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;
        admitted(&t, &r, VILLAGE_A, "1000", "removed as upper-case X").await;

        let code = uscc('3', 441);
        let id = t
            .publish_enterprise_qualified(&format!("  {code} "), true, 1)
            .await;
        t.wait_applied(&id).await;
        assert!(
            try_enterprise(&t, &code, TOWN_B).await.is_ok(),
            "qualified with spaces around the USCC"
        );
        // An enterprise's own grade C rating does not refuse it.
        let ev = rating::CreditRatingEffective {
            subject_kind: ENTERPRISE_KIND,
            ..rating_event(&code, TOWN_B, "C", "", false, "2026-01-01", "2027-01-01", 1)
        };
        let id = t.publish(RATING_SOURCE, &ev, &code).await;
        t.wait_applied(&id).await;
        assert!(
            try_enterprise(&t, &code, TOWN_B).await.is_ok(),
            "an enterprise's grade plays no part in its admission"
        );
        let id = t
            .publish_blacklisted("bl-442", &code.to_lowercase(), ENTERPRISE_KIND)
            .await;
        t.wait_applied(&id).await;
        assert_refused(
            &try_enterprise(&t, &code, TOWN_B)
                .await
                .expect_err("blacklisted"),
            &["R-CR-10"],
        );
        let id = t
            .publish_blacklist_removed("bl-442", &format!(" {code}"), ENTERPRISE_KIND)
            .await;
        t.wait_applied(&id).await;
        assert!(try_enterprise(&t, &code, TOWN_B).await.is_ok(), "removed");
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Malformed events and dead letters
// =====================================================================================

/// ARCHITECTURE "Poison messages go to a dead-letter subject after bounded retries", R-X-2,
/// R-IN-3: events intake cannot read — money with 3 decimals or an exponent, impossible or
/// wrongly formatted dates, a sequence beyond what can be stored, a bad USCC, an undecodable
/// payload, no ce-type header — are each dead-lettered with the error, their original subject
/// and ce-id; none reaches the read model; good events published after them apply at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_events_are_dead_lettered_without_blocking_good_ones() {
    bounded(150, async {
        let t = spawn_intake().await;
        let bad = resident_id(451);
        let good = resident_id(452);
        let mut bad_ids = Vec::new();
        let rating_cases: [(&str, &str, &str, u64); 5] = [
            ("20000.001", "2024-01-01", "2027-12-31", 1),
            ("1e4", "2024-01-01", "2027-12-31", 2),
            ("20000.00", "2026-02-30", "2027-12-31", 3),
            ("20000.00", "2024-01-01", "31/12/2027", 4),
            ("20000.00", "2024-01-01", "2027-12-31", u64::MAX),
        ];
        for (line, from, until, seq) in rating_cases {
            bad_ids.push(
                t.publish_rating_effective(&bad, VILLAGE_A, "A", line, false, from, until, seq)
                    .await,
            );
        }
        bad_ids.push(
            t.publish_credit_village_from(VILLAGE_A2, true, "03/01/2026", 1)
                .await,
        );
        let mut wrong_check = uscc('3', 451);
        let last = wrong_check.pop().expect("check char");
        wrong_check.push(if last == '0' { '1' } else { '0' });
        bad_ids.push(t.publish_enterprise_qualified(&wrong_check, true, 1).await);
        let code = uscc('3', 452);
        bad_ids.push(
            t.publish_enterprise_qualification(&code, true, "2026-13-01", 1)
                .await,
        );
        bad_ids.push(publish_npl(&t, TOWN_B, u64::MAX).await);
        // Undecodable payload with correct headers.
        let garbage_id = rid();
        publish_raw::<rating::BlacklistEntryAdded>(
            &t,
            ce_headers(
                &rating::BlacklistEntryAdded::full_name(),
                RATING_SOURCE,
                Some(&garbage_id),
                Some(&garbage_id),
            ),
            vec![
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        )
        .await;
        bad_ids.push(garbage_id);
        // A valid rating without its ce-type header.
        let untyped_id = rid();
        let untyped = rating_event(
            &bad,
            VILLAGE_A,
            "A",
            "20000.00",
            false,
            "2024-01-01",
            "2027-12-31",
            9,
        );
        publish_raw::<rating::CreditRatingEffective>(
            &t,
            ce_headers("", RATING_SOURCE, Some(&untyped_id), Some(&untyped_id)),
            untyped.encode_to_vec(),
        )
        .await;
        bad_ids.push(untyped_id);

        // Good events after them apply without waiting for the bad ones' retries (about 3 s
        // each; blocked behind all of them they would wait more than 30 s).
        let started = tokio::time::Instant::now();
        t.given_credit_household(&good, VILLAGE_A).await;
        let id = t.publish_enterprise_qualified(&code, true, 2).await;
        t.wait_applied(&id).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "good events waited {:?} behind the bad ones",
            started.elapsed()
        );
        admitted(&t, &good, VILLAGE_A, "20000", "good rating").await;

        let dead = wait_dead_letters(&t, bad_ids.len(), 60).await;
        for id in &bad_ids {
            let d = dead
                .iter()
                .find(|e| e.header(headers::CE_ID) == Some(id.as_str()))
                .unwrap_or_else(|| panic!("event {id} dead-lettered; dead letters: {dead:?}"));
            assert!(
                d.header(headers::DLQ_ERROR).is_some_and(|e| !e.is_empty()),
                "{d:?} carries the error"
            );
            let original = d
                .header(headers::DLQ_ORIGINAL_SUBJECT)
                .expect("original subject");
            assert!(
                original.starts_with(&format!("{}.", t.bus.prefix)),
                "{original}"
            );
            assert!(!t.applied(id).await, "{id} not recorded as applied");
        }
        assert_eq!(dead.len(), bad_ids.len(), "one dead letter each: {dead:?}");

        // Nothing of them in the read model.
        let rows: i64 =
            sqlx::query_scalar("select count(*) from rm_credit_ratings where subject_idx = $1")
                .bind(t.subject_index(&bad))
                .fetch_one(&t.pool)
                .await
                .expect("count");
        assert_eq!(rows, 0, "no malformed rating stored");
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from rm_credit_villages where village_code = $1",
                &[VILLAGE_A2],
            )
            .await,
            0
        );
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from rm_suspended_areas where area_code = $1",
                &[TOWN_B],
            )
            .await,
            0
        );
        refused(&t, &bad, VILLAGE_A, "1000", &["R-CR-3"], "no rating").await;
        // The qualification with the bad date did not apply; the good one (seq 2) did.
        assert!(try_enterprise(&t, &code, TOWN_B).await.is_ok());
        t.shutdown().await;
    })
    .await;
}

/// Publishes a rating of household `n` with a grade no one has ("Z", poison) and these ids;
/// returns its rating id.
async fn publish_poison_rating(
    t: &TestIntake,
    n: u32,
    ce_id: Option<&str>,
    msg_id: Option<&str>,
) -> String {
    let ev = rating_event(
        &resident_id(n),
        VILLAGE_A,
        "Z",
        "20000.00",
        false,
        "2024-01-01",
        "2027-12-31",
        1,
    );
    publish_raw::<rating::CreditRatingEffective>(
        t,
        ce_headers(
            &rating::CreditRatingEffective::full_name(),
            RATING_SOURCE,
            ce_id,
            msg_id,
        ),
        ev.encode_to_vec(),
    )
    .await;
    ev.rating_id
}

/// R-X-2 ("no event is lost"), ARCHITECTURE dead letters: two different poison events that
/// carry no ce-id (one identified only by its Nats-Msg-Id, which the consumer uses as the
/// event id, one with no id header at all) are both dead-lettered — not one of them dropped
/// as a JetStream duplicate of the other's dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_events_without_ce_id_are_each_dead_lettered() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut rating_ids = Vec::new();
        for (n, msg_id) in [(461, Some("producer-msg-461")), (462, None)] {
            rating_ids.push(publish_poison_rating(&t, n, None, msg_id).await);
        }
        // A good event after them still applies.
        t.given_credit_household(&resident_id(463), VILLAGE_A).await;

        let dead = wait_dead_letters(&t, 2, 40).await;
        let dead_ratings: Vec<String> = dead
            .iter()
            .map(|e| e.decode::<rating::CreditRatingEffective>().rating_id)
            .collect();
        for id in &rating_ids {
            assert!(
                dead_ratings.contains(id),
                "rating {id} dead-lettered; dead letters: {dead_ratings:?}"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-X-2, R-CR-10: a blank ce-id is no id. Two blacklistings with an empty and a blank ce-id
/// (each with its own Nats-Msg-Id) are both applied, under their Nats-Msg-Ids, and two poison
/// events with an empty ce-id and no Nats-Msg-Id are both dead-lettered: neither is taken for
/// the other as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blank_ce_id_is_no_id() {
    bounded(120, async {
        let t = spawn_intake().await;
        let ce_type = rating::BlacklistEntryAdded::full_name();
        let listed = [resident_id(464), resident_id(465)];
        let mut msg_ids = Vec::new();
        for (r, blank) in listed.iter().zip(["", " "]) {
            t.given_credit_household(r, VILLAGE_A).await;
            let ev = rating::BlacklistEntryAdded {
                entry_id: rid(),
                subject_kind: HOUSEHOLD_KIND,
                subject_id: r.clone(),
                reason: "fraud for subsidy".into(),
                source: "bank report".into(),
                listed_on: "2026-01-05".into(),
            };
            let msg_id = format!("producer-{}", rid());
            publish_raw::<rating::BlacklistEntryAdded>(
                &t,
                ce_headers(&ce_type, RATING_SOURCE, Some(blank), Some(&msg_id)),
                ev.encode_to_vec(),
            )
            .await;
            msg_ids.push(msg_id);
        }
        for (r, msg_id) in listed.iter().zip(&msg_ids) {
            t.wait_applied(msg_id).await;
            refused(&t, r, VILLAGE_A, "1000", &["R-CR-10"], "blacklisted").await;
        }
        let mut rating_ids = Vec::new();
        for n in [466, 467] {
            rating_ids.push(publish_poison_rating(&t, n, Some(""), None).await);
        }
        let dead: Vec<String> = wait_dead_letters(&t, 2, 40)
            .await
            .iter()
            .map(|e| e.decode::<rating::CreditRatingEffective>().rating_id)
            .collect();
        for id in &rating_ids {
            assert!(dead.contains(id), "rating {id} dead-lettered: {dead:?}");
        }
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9 with ARCHITECTURE dead letters and R-X-2: a suspension must never be acknowledged
/// and ignored. A NplThresholdExceeded whose town code arrives with a trailing space is
/// either applied to that town (its households refused, R-RK-9) or dead-lettered for an
/// operator; one naming no area at all (letters in the code) is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspension_with_an_unreadable_area_is_never_silently_dropped() {
    bounded(120, async {
        let t = spawn_intake().await;
        let a = resident_id(471);
        t.given_credit_household(&a, VILLAGE_A).await;

        let id = publish_npl(&t, &format!("{TOWN_A} "), 1).await;
        match fate(&t, &id).await {
            Fate::Applied => {
                refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"], "town suspended").await;
            }
            Fate::DeadLettered => {}
        }
        let id = publish_npl(&t, "41031110O", 1).await;
        assert_eq!(
            fate(&t, &id).await,
            Fate::DeadLettered,
            "a suspension naming no area is poison"
        );
        // The district's own code: R-RK-9 suspends towns and villages, and admission looks up
        // nothing else, so stored it would change nothing.
        let id = publish_npl(&t, DISTRICT, 2).await;
        assert_eq!(
            fate(&t, &id).await,
            Fate::DeadLettered,
            "a district-level suspension is poison"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-10 with R-X-2: a blacklisting whose subject reads as no resident ID (an inner space,
/// a full-width digit, the old 15-digit form, a wrong check digit) is dead-lettered, not stored
/// under a blind index no application has (which would admit the household it meant), and the
/// dead letter's error does not repeat the identifier (R-CR-11). One labelled with the wrong
/// kind, or a kind intake does not know, is taken as the form it reads as. An entry id with
/// padding is the same entry: its removal without the padding lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blacklisting_naming_no_readable_subject_is_dead_lettered() {
    bounded(150, async {
        let t = spawn_intake().await;
        let r = resident_id(491);
        t.given_credit_household(&r, VILLAGE_A).await;
        let wrong_check = {
            let (body, check) = r.split_at(17);
            let other = if check == "0" { "1" } else { "0" };
            format!("{body}{other}")
        };
        let unreadable = [
            format!("{} {}", &r[..6], &r[6..]),
            format!("{}\u{ff11}{}", &r[..6], &r[7..]),
            format!("{}{}", &r[..6], &r[8..17]),
            wrong_check,
        ];
        for (n, id) in unreadable.iter().enumerate() {
            let ce = t
                .publish_blacklisted(&format!("bl-491-{n}"), id, HOUSEHOLD_KIND)
                .await;
            assert_eq!(fate(&t, &ce).await, Fate::DeadLettered, "{id:?}");
        }
        // R-CR-11: the dead letters' errors do not repeat the identifiers.
        for dead in dead_letters(&t).await {
            let error = dead.header(headers::DLQ_ERROR).unwrap_or_default();
            assert!(!error.contains(&r[6..14]), "{error}");
        }
        // Labelled as an enterprise, but a resident ID: taken as that, so it still refuses.
        let ce = t.publish_blacklisted("bl-491-e", &r, ENTERPRISE_KIND).await;
        assert_eq!(fate(&t, &ce).await, Fate::Applied);
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "mislabelled").await;
        let ce = t
            .publish_blacklist_removed("bl-491-e", &r, ENTERPRISE_KIND)
            .await;
        t.wait_applied(&ce).await;
        // A kind intake does not know: read as either form.
        let ce = t.publish_blacklisted("bl-491-k", &r, 7).await;
        assert_eq!(fate(&t, &ce).await, Fate::Applied);
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "unknown kind").await;
        let ce = t.publish_blacklist_removed("bl-491-k", &r, 7).await;
        t.wait_applied(&ce).await;
        admitted(&t, &r, VILLAGE_A, "1000", "removed").await;

        let ce = t.publish_blacklisted("bl-491-p ", &r, HOUSEHOLD_KIND).await;
        t.wait_applied(&ce).await;
        refused(&t, &r, VILLAGE_A, "1000", &["R-CR-10"], "padded entry").await;
        let ce = t
            .publish_blacklist_removed("bl-491-p", &r, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&ce).await;
        admitted(&t, &r, VILLAGE_A, "1000", "the padded entry removed").await;
        t.shutdown().await;
    })
    .await;
}

/// R-RK-9, R-X-2: the database's trouble is not the event's. While intake cannot write a
/// suspension (its table locked by another session, and the consumer's connection terminated
/// over and over, more times than a bad event is retried before it is dead-lettered), the
/// event is held and applied once the database is back: the town is suspended and nothing is
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspension_is_held_through_database_failures_not_dead_lettered() {
    bounded(150, async {
        let t = spawn_intake().await;
        let a = resident_id(496);
        t.given_credit_household(&a, VILLAGE_A).await;
        let mut lock = t.pool.begin().await.expect("a transaction");
        sqlx::query("lock table rm_suspended_areas in share mode")
            .execute(&mut *lock)
            .await
            .expect("the lock");
        let id = publish_npl(&t, TOWN_A, 1).await;
        for _ in 0..8 {
            let mut blocked = None;
            for _ in 0..200 {
                blocked = sqlx::query_scalar::<_, i32>(
                    "select pid from pg_stat_activity
                      where datname = current_database() and wait_event_type = 'Lock'
                      limit 1",
                )
                .fetch_optional(&t.pool)
                .await
                .expect("pg_stat_activity");
                if blocked.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let pid = blocked.expect("the consumer waits on the lock");
            sqlx::query("select pg_terminate_backend($1)")
                .bind(pid)
                .execute(&t.pool)
                .await
                .expect("terminate");
        }
        lock.commit().await.expect("released");
        assert_eq!(fate(&t, &id).await, Fate::Applied);
        refused(&t, &a, VILLAGE_A, "1000", &["R-RK-9"], "town suspended").await;
        assert!(dead_letters(&t).await.is_empty(), "nothing dead-lettered");
        t.shutdown().await;
    })
    .await;
}

/// R-CR-10 with R-X-2: a BlacklistEntryAdded without an entry id is malformed. Whatever intake
/// does with it, a blacklisting must never be lost silently: each such event either blacklists
/// its subject or is dead-lettered. (Two of them must not collapse into one entry.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blacklistings_without_an_entry_id_are_never_lost() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(481), resident_id(482));
        for r in [&r1, &r2] {
            t.given_credit_household(r, VILLAGE_A).await;
        }
        for r in [&r1, &r2] {
            let id = t.publish_blacklisted("", r, HOUSEHOLD_KIND).await;
            if fate(&t, &id).await == Fate::Applied {
                refused(
                    &t,
                    r,
                    VILLAGE_A,
                    "1000",
                    &["R-CR-10"],
                    "listed without entry id",
                )
                .await;
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-X-2: an event identified only by its Nats-Msg-Id (no ce-id header) is applied once and
/// recorded in the inbox under that id; published again past JetStream's dedupe (same
/// Nats-Msg-Id is deduped by the stream itself) it is not applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_identified_by_its_nats_msg_id_is_applied_once() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(491);
        let ce_type = rating::CreditRatingEffective::full_name();
        let ev = rating_event(
            &r,
            VILLAGE_A,
            "A",
            "20000.00",
            false,
            "2024-01-01",
            "2027-12-31",
            1,
        );
        let msg_id = format!("producer-{}", rid());
        publish_raw::<rating::CreditRatingEffective>(
            &t,
            ce_headers(&ce_type, RATING_SOURCE, None, Some(&msg_id)),
            ev.encode_to_vec(),
        )
        .await;
        t.wait_applied(&msg_id).await;
        admitted(&t, &r, VILLAGE_A, "20000", "applied by its Nats-Msg-Id").await;
        // The same event delivered again with ce-id = that id and another Nats-Msg-Id, now
        // claiming a downgrade: the inbox says it was applied already.
        let tampered = rating_event(&r, VILLAGE_A, "C", "", false, "2024-01-01", "2027-12-31", 5);
        publish_raw::<rating::CreditRatingEffective>(
            &t,
            ce_headers(&ce_type, RATING_SOURCE, Some(&msg_id), Some(&rid())),
            tampered.encode_to_vec(),
        )
        .await;
        let marker = t.publish_credit_village(VILLAGE_B, true, 1).await;
        t.wait_applied(&marker).await;
        admitted(&t, &r, VILLAGE_A, "20000", "the redelivery changed nothing").await;
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from inbox where consumer like $1 || '%'",
                &[READMODEL_CONSUMER],
            )
            .await,
            2
        );
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Authentication
// =====================================================================================

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// HMAC-SHA256 with PostgreSQL's sha256 (the test has no crypto crate of its own).
async fn hmac_sha256(pool: &PgPool, key: &[u8], msg: &[u8]) -> Vec<u8> {
    assert!(key.len() <= 64);
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    sqlx::query_scalar("select sha256($1 || sha256($2 || $3))")
        .bind(opad)
        .bind(ipad)
        .bind(msg)
        .fetch_one(pool)
        .await
        .expect("sha256")
}

/// A JWT with exactly this header and these claims, HS256-signed with `secret`.
async fn jwt(pool: &PgPool, secret: &str, header: &str, claims: serde_json::Value) -> String {
    let signing = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = hmac_sha256(pool, secret.as_bytes(), signing.as_bytes()).await;
    format!("{signing}.{}", b64url(&sig))
}

const HS256: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn district_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "district-center-9",
        "role": "district_staff",
        "area": DISTRICT,
        "exp": now_secs() + 3600,
        "iat": now_secs(),
    })
}

/// The call a token is tried on: a read that any district staff may make.
async fn list_with(t: &TestIntake, token: &str) -> Result<(), Status> {
    t.client_with(Some(token))
        .list_applications(pb::ListApplicationsRequest::default())
        .await
        .map(|_| ())
}

/// ARCHITECTURE "Auth" (tokens verified with the configured key): the test's own signer
/// reproduces the service's tokens, then tokens without `exp` or `sub`, with `alg` none or
/// HS512, a payload altered after signing, an unknown role, a malformed area, `exp` as a
/// string, or expired 90 s ago (past any leeway) are all `Unauthenticated` and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_or_forged_tokens_are_unauthenticated() {
    bounded(60, async {
        let t = spawn_intake().await;
        // The signer agrees with the service's own tokens.
        let real = token_for(SECRET, "x", Role::DistrictStaff, DISTRICT, None, 3600);
        let (signing, sig) = real.rsplit_once('.').expect("jwt");
        assert_eq!(
            b64url(&hmac_sha256(&t.pool, SECRET.as_bytes(), signing.as_bytes()).await),
            sig
        );
        let good = jwt(&t.pool, SECRET, HS256, district_claims()).await;
        list_with(&t, &good)
            .await
            .expect("a well-formed token is accepted");

        let mut cases: Vec<(&str, String)> = Vec::new();
        let without = |k: &str| {
            let mut c = district_claims();
            c.as_object_mut().expect("object").remove(k);
            c
        };
        let with = |k: &str, v: serde_json::Value| {
            let mut c = district_claims();
            c[k] = v;
            c
        };
        cases.push(("no exp", jwt(&t.pool, SECRET, HS256, without("exp")).await));
        cases.push(("no sub", jwt(&t.pool, SECRET, HS256, without("sub")).await));
        cases.push((
            "no role",
            jwt(&t.pool, SECRET, HS256, without("role")).await,
        ));
        cases.push((
            "no area",
            jwt(&t.pool, SECRET, HS256, without("area")).await,
        ));
        cases.push((
            "alg none",
            format!(
                "{}.{}.",
                b64url(br#"{"typ":"JWT","alg":"none"}"#),
                b64url(district_claims().to_string().as_bytes())
            ),
        ));
        cases.push((
            "alg HS512 header",
            jwt(
                &t.pool,
                SECRET,
                r#"{"typ":"JWT","alg":"HS512"}"#,
                district_claims(),
            )
            .await,
        ));
        cases.push((
            "unknown role",
            jwt(&t.pool, SECRET, HS256, with("role", "admin".into())).await,
        ));
        cases.push((
            "area with a letter",
            jwt(&t.pool, SECRET, HS256, with("area", "41031A".into())).await,
        ));
        cases.push((
            "area of 7 digits",
            jwt(&t.pool, SECRET, HS256, with("area", "4103111".into())).await,
        ));
        cases.push((
            "exp as a string",
            jwt(
                &t.pool,
                SECRET,
                HS256,
                with("exp", (now_secs() + 3600).to_string().into()),
            )
            .await,
        ));
        cases.push((
            "expired 90 s ago",
            jwt(
                &t.pool,
                SECRET,
                HS256,
                with("exp", (now_secs() - 90).into()),
            )
            .await,
        ));
        // A village staff token whose payload was swapped for a district one after signing.
        let village = token_for(SECRET, "v", Role::VillageStaff, VILLAGE_A, None, 3600);
        let mut parts: Vec<&str> = village.split('.').collect();
        let forged_payload = b64url(district_claims().to_string().as_bytes());
        parts[1] = &forged_payload;
        cases.push(("payload altered", parts.join(".")));
        cases.push(("signature truncated", good[..good.len() - 2].to_owned()));

        for (what, token) in &cases {
            let s = list_with(&t, token).await.expect_err(what);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            let s = t
                .client_with(Some(token))
                .submit_application(enterprise_request(&uscc('3', 501), TOWN_B, "200000"))
                .await
                .expect_err(what);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            0
        );
        t.shutdown().await;
    })
    .await;
}

/// ARCHITECTURE "Auth", RFC 7519 §4.1.5 ("nbf ... MUST NOT be accepted for processing" before
/// that time): a token that only becomes valid in an hour is `Unauthenticated` now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_not_yet_valid_is_unauthenticated() {
    bounded(60, async {
        let t = spawn_intake().await;
        let mut claims = district_claims();
        claims["nbf"] = (now_secs() + 3600).into();
        claims["exp"] = (now_secs() + 7200).into();
        let token = jwt(&t.pool, SECRET, HS256, claims).await;
        let s = list_with(&t, &token).await.expect_err("not yet valid");
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        t.shutdown().await;
    })
    .await;
}

/// ARCHITECTURE "Auth" (claims give role, organisation area and, for banks, the bank id):
/// a role whose area is of the wrong level, and a bank token without (or with an empty)
/// bank_id, are `Unauthenticated` on reads and writes; the matching levels pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn role_and_area_level_must_match_and_banks_name_themselves() {
    bounded(60, async {
        let t = spawn_intake().await;
        let bad: [(Role, &str, Option<&str>); 12] = [
            (Role::VillageStaff, TOWN_A, None),
            (Role::VillageStaff, DISTRICT, None),
            (Role::TownStaff, VILLAGE_A, None),
            (Role::TownStaff, DISTRICT, None),
            (Role::DistrictStaff, TOWN_A, None),
            (Role::DistrictStaff, VILLAGE_A, None),
            (Role::Bank, TOWN_A, Some(BANK)),
            (Role::Bank, VILLAGE_A, Some(BANK)),
            (Role::Operator, VILLAGE_A, None),
            (Role::Operator, TOWN_A, None),
            (Role::Bank, DISTRICT, None),
            (Role::Bank, DISTRICT, Some("")),
        ];
        for (role, area, bank) in bad {
            let what = format!("{role:?} {area} {bank:?}");
            let mut c = t.as_caller("someone", role, area, bank);
            let s = err(c
                .list_applications(pb::ListApplicationsRequest::default())
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            let s = err(c
                .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            let s = err(c
                .submit_application(household_request(&resident_id(511), VILLAGE_A, "1000"))
                .await);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
        }
        // The right levels pass the gate.
        for (role, area, bank) in [
            (Role::VillageStaff, VILLAGE_A, None),
            (Role::TownStaff, TOWN_A, None),
            (Role::DistrictStaff, DISTRICT, None),
        ] {
            let r = t
                .as_caller("someone", role, area, bank)
                .list_applications(pb::ListApplicationsRequest::default())
                .await;
            assert!(r.is_ok(), "{role:?} {area}: {r:?}");
        }
        let r = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await;
        assert!(r.is_ok(), "bank: {r:?}");
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 0);
        t.shutdown().await;
    })
    .await;
}

/// ARCHITECTURE "Auth" ("every RPC carries a bearer token"): a missing header, another scheme,
/// the scheme without a token, an empty token, a token without the scheme, or two tokens are
/// `Unauthenticated`; `Bearer` with extra spaces around the token is the same token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorization_header_forms() {
    bounded(60, async {
        let t = spawn_intake().await;
        let token = token_for(SECRET, "d", Role::DistrictStaff, DISTRICT, None, 3600);
        let call = |value: Option<String>| {
            let ch = t.channel.clone();
            async move {
                let mut req = tonic::Request::new(pb::ListApplicationsRequest::default());
                if let Some(v) = value {
                    req.metadata_mut()
                        .insert("authorization", v.parse().expect("ascii"));
                }
                pb::intake_service_client::IntakeServiceClient::new(ch)
                    .list_applications(req)
                    .await
                    .map(|_| ())
            }
        };
        for (what, value) in [
            ("missing", None),
            ("Basic scheme", Some(format!("Basic {token}"))),
            ("scheme only", Some("Bearer".to_owned())),
            ("empty token", Some("Bearer ".to_owned())),
            ("blank token", Some("Bearer    ".to_owned())),
            ("no scheme", Some(token.clone())),
            ("Token scheme", Some(format!("Token {token}"))),
            ("two tokens", Some(format!("Bearer {token} {token}"))),
            ("scheme glued", Some(format!("Bearer{token}"))),
        ] {
            let s = call(value).await.expect_err(what);
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
        }
        call(Some(format!("Bearer   {token}  ")))
            .await
            .expect("extra spaces around the token");
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Authorisation: every write, the wrong role, nothing changes
// =====================================================================================

/// Applications and a complaint in every state a write can act on.
struct Fixture {
    /// At the village step.
    at_village: pb::Application,
    /// Returned for correction by the village.
    returned: pb::Application,
    /// Under public notice, notice period over (recommendable).
    notice: pb::Application,
    /// On hold with one open objection.
    held: pb::Application,
    objection: String,
    /// Recommended to BANK.
    recommended: pb::Application,
    /// Approved by BANK.
    approved: pb::Application,
    /// Lodged about VILLAGE_A and assigned to VILLAGE_A's department.
    complaint: String,
    /// A rated household with no application yet.
    fresh: String,
}

async fn fixture(t: &TestIntake, base: u32) -> Fixture {
    let residents: Vec<String> = (base..base + 7).map(resident_id).collect();
    for r in &residents {
        t.given_credit_household(r, VILLAGE_A).await;
    }
    let mut village = t.as_village_staff(VILLAGE_A);
    let mut district = t.as_district_staff();
    let at_village = t.submit_household(&residents[0], VILLAGE_A, "20000").await;
    let returned = t.submit_household(&residents[1], VILLAGE_A, "20000").await;
    let returned = review(
        &mut village,
        &returned.id,
        pb::Decision::ReturnForCorrection,
        "poor-household number missing a digit",
    )
    .await;
    let mut noticed = Vec::new();
    for r in &residents[2..6] {
        let a = t.submit_household(r, VILLAGE_A, "20000").await;
        noticed.push(t.approve_to_notice(&a).await);
    }
    let objection = district
        .file_objection(pb::FileObjectionRequest {
            request_id: rid(),
            application_id: noticed[1].id.clone(),
            objector: "村民 赵某".into(),
            content: "the household already has a loan with another bank".into(),
        })
        .await
        .expect("objection")
        .into_inner();
    let complaint = village
        .lodge_complaint(pb::LodgeComplaintRequest {
            request_id: rid(),
            complainant: "村民 钱某".into(),
            content: "the village office was closed on a working day".into(),
            area_code: VILLAGE_A.into(),
            application_id: String::new(),
        })
        .await
        .expect("lodge")
        .into_inner();
    t.as_town_staff(TOWN_A)
        .assign_complaint(pb::AssignComplaintRequest {
            request_id: rid(),
            complaint_id: complaint.id.clone(),
            organisation_area_code: VILLAGE_A.into(),
        })
        .await
        .expect("assign");
    t.set_time("2026-03-07T09:00:00+08:00");
    let recommended = t.recommend(&noticed[2].id, BANK).await.expect("recommend");
    t.recommend(&noticed[3].id, BANK).await.expect("recommend");
    let approved = t
        .as_bank(BANK)
        .record_bank_decision(bank_approval(&noticed[3].id))
        .await
        .expect("bank approves")
        .into_inner();
    let held = t
        .get_as(&mut district, &noticed[1].id)
        .await
        .expect("held application");
    assert_eq!(held.status(), pb::Status::OnHold);
    Fixture {
        at_village,
        returned,
        notice: noticed[0].clone(),
        held,
        objection: objection.id,
        recommended,
        approved,
        complaint: complaint.id,
        fresh: residents[6].clone(),
    }
}

fn bank_approval(id: &str) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        approved: true,
        approved_amount: money("18000.00"),
        annual_rate: "0.0435".into(),
        term_months: 12,
        rejection_reason: String::new(),
    }
}

fn disbursement(id: &str) -> pb::RecordDisbursementRequest {
    pb::RecordDisbursementRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        loan_account_number: "6228-4801-0000-0009".into(),
        amount: money("18000.00"),
        disbursed_on: "2026-03-07".into(),
        schedule: (0..12)
            .map(|i| {
                let (y, m) = if i < 9 { (2026, 4 + i) } else { (2027, i - 8) };
                pb::Instalment {
                    due_on: format!("{y}-{m:02}-10"),
                    principal: money("1500.00"),
                    interest: money("65.25"),
                }
            })
            .collect(),
    }
}

/// Everything a refused call could have changed: the rows of every business table, the
/// request ids taken, and the events published.
async fn state(t: &TestIntake) -> Vec<String> {
    state_but(t, "true").await
}

/// [`state`] with only the request ids that match `keys` (SQL on `x`, an `idempotency_keys`
/// row).
async fn state_but(t: &TestIntake, keys: &str) -> Vec<String> {
    t.outbox_drained().await;
    let mut out = Vec::new();
    for table in [
        "applications",
        "transitions",
        "objections",
        "complaints",
        "idempotency_keys",
    ] {
        let filter = if table == "idempotency_keys" {
            keys
        } else {
            "true"
        };
        let digest: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '') from {table} x where {filter}"
        )))
        .fetch_one(&t.pool)
        .await
        .expect("table digest");
        out.push(format!("{table} {}", digest.unwrap_or_default()));
    }
    let events = all_events(&t.bus, &format!("{}.intake.>", t.bus.prefix)).await;
    out.push(format!("intake events {}", events.len()));
    out
}

fn review_of(id: &str, decision: pb::Decision) -> pb::ReviewApplicationRequest {
    review_req(id, decision, "checked on site")
}

/// ARCHITECTURE "Auth", R-IN-1, R-IN-2, R-IN-5, R-IN-6, R-IN-7, R-X-3: every write RPC, called
/// by a role that may see its target but may not take that step, is `PermissionDenied`; the
/// caller who cannot see it gets `NotFound` (never a success); and none of these calls changes
/// any table or publishes an event. A request id denied by role or area is not kept; one denied
/// by the state (another tier's step, a complaint held by another organisation) is kept with
/// its denial (R-IN-8): the same caller's retry once the step is theirs is denied again, and a
/// new request id goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_refused_for_the_wrong_role_changes_nothing() {
    bounded(180, async {
        let t = spawn_intake().await;
        let f = fixture(&t, 521).await;
        let before = state(&t).await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut other_village = t.as_village_staff(VILLAGE_A2);
        let mut town = t.as_town_staff(TOWN_A);
        let mut district = t.as_district_staff();
        let mut bank = t.as_bank(BANK);
        let mut other_bank = t.as_bank(OTHER_BANK);
        let mut operator = t.as_operator();
        let household = || household_request(&f.fresh, VILLAGE_A, "20000");
        let mut results: Vec<(String, Code, Status)> = Vec::new();
        let mut expect = |what: &str, want: Code, r: Result<(), Status>| match r {
            Ok(()) => panic!("{what}: succeeded"),
            Err(s) => results.push((what.to_owned(), want, s)),
        };
        macro_rules! call {
            ($c:expr, $m:ident, $req:expr) => {
                $c.$m($req).await.map(|_| ())
            };
        }
        use Code::{NotFound, PermissionDenied};

        // SubmitApplication (R-IN-1): households by their own village department only.
        for (who, c) in [
            ("town", &mut town),
            ("district", &mut district),
            ("bank", &mut bank),
            ("operator", &mut operator),
            ("another village", &mut other_village),
        ] {
            expect(
                &format!("submit household by {who}"),
                PermissionDenied,
                call!(c, submit_application, household()),
            );
        }
        for (who, c) in [
            ("town", &mut town),
            ("bank", &mut bank),
            ("operator", &mut operator),
        ] {
            expect(
                &format!("submit enterprise by {who}"),
                PermissionDenied,
                call!(
                    c,
                    submit_application,
                    enterprise_request(&uscc('3', 521), TOWN_A, "200000")
                ),
            );
        }
        // ReviewApplication (R-IN-2): the village step by the village only.
        for (who, c) in [("town", &mut town), ("district", &mut district)] {
            expect(
                &format!("village step by {who}"),
                PermissionDenied,
                call!(
                    c,
                    review_application,
                    review_of(&f.at_village.id, pb::Decision::Approve)
                ),
            );
        }
        for (who, c) in [("bank", &mut bank), ("operator", &mut operator)] {
            expect(
                &format!("village step by {who}"),
                NotFound,
                call!(
                    c,
                    review_application,
                    review_of(&f.at_village.id, pb::Decision::Reject)
                ),
            );
        }
        expect(
            "village step by another village",
            NotFound,
            call!(
                other_village,
                review_application,
                review_of(&f.at_village.id, pb::Decision::Approve)
            ),
        );
        // ResubmitApplication (R-IN-2): by the department that files.
        for (who, c) in [("town", &mut town), ("district", &mut district)] {
            expect(
                &format!("resubmit by {who}"),
                PermissionDenied,
                call!(
                    c,
                    resubmit_application,
                    pb::ResubmitApplicationRequest {
                        request_id: rid(),
                        application_id: f.returned.id.clone(),
                        note: "corrected".into(),
                        ..Default::default()
                    }
                ),
            );
        }
        // FileObjection (R-IN-5): staff only; the bank sees only what was recommended to it.
        expect(
            "objection by the bank",
            PermissionDenied,
            call!(
                bank,
                file_objection,
                pb::FileObjectionRequest {
                    request_id: rid(),
                    application_id: f.recommended.id.clone(),
                    objector: "银行 孙某".into(),
                    content: "late objection".into(),
                }
            ),
        );
        expect(
            "objection by the operator",
            NotFound,
            call!(
                operator,
                file_objection,
                pb::FileObjectionRequest {
                    request_id: rid(),
                    application_id: f.notice.id.clone(),
                    objector: "运维".into(),
                    content: "objection".into(),
                }
            ),
        );
        // ResolveObjection (R-IN-5): the district only.
        for (who, c) in [("village", &mut village), ("town", &mut town)] {
            for upheld in [false, true] {
                expect(
                    &format!("resolve (upheld {upheld}) by {who}"),
                    PermissionDenied,
                    call!(
                        c,
                        resolve_objection,
                        pb::ResolveObjectionRequest {
                            request_id: rid(),
                            objection_id: f.objection.clone(),
                            upheld,
                            resolution: "checked".into(),
                        }
                    ),
                );
            }
        }
        // RecommendToBank (R-IN-2): the district only.
        for (who, c) in [("village", &mut village), ("town", &mut town)] {
            expect(
                &format!("recommend by {who}"),
                PermissionDenied,
                call!(
                    c,
                    recommend_to_bank,
                    pb::RecommendToBankRequest {
                        request_id: rid(),
                        application_id: f.notice.id.clone(),
                        bank_id: BANK.into(),
                    }
                ),
            );
        }
        expect(
            "recommend by the bank",
            NotFound,
            call!(
                bank,
                recommend_to_bank,
                pb::RecommendToBankRequest {
                    request_id: rid(),
                    application_id: f.notice.id.clone(),
                    bank_id: BANK.into(),
                }
            ),
        );
        // RecordBankDecision / RecordDisbursement (R-IN-6): the bank it was recommended to.
        for (who, c) in [
            ("village", &mut village),
            ("town", &mut town),
            ("district", &mut district),
        ] {
            expect(
                &format!("bank decision by {who}"),
                PermissionDenied,
                call!(c, record_bank_decision, bank_approval(&f.recommended.id)),
            );
            expect(
                &format!("disbursement by {who}"),
                PermissionDenied,
                call!(c, record_disbursement, disbursement(&f.approved.id)),
            );
        }
        expect(
            "bank decision by another bank",
            NotFound,
            call!(
                other_bank,
                record_bank_decision,
                bank_approval(&f.recommended.id)
            ),
        );
        expect(
            "disbursement by another bank",
            NotFound,
            call!(
                other_bank,
                record_disbursement,
                disbursement(&f.approved.id)
            ),
        );
        expect(
            "disbursement by the operator",
            NotFound,
            call!(operator, record_disbursement, disbursement(&f.approved.id)),
        );
        // RunDeadlineScan (R-IN-4): operators and the district center.
        for (who, c) in [
            ("village", &mut village),
            ("town", &mut town),
            ("bank", &mut bank),
        ] {
            expect(
                &format!("deadline scan by {who}"),
                PermissionDenied,
                call!(
                    c,
                    run_deadline_scan,
                    pb::RunDeadlineScanRequest { request_id: rid() }
                ),
            );
        }
        // LodgeComplaint / AssignComplaint / AnswerComplaint (R-IN-7).
        let lodge = |area: &str| pb::LodgeComplaintRequest {
            request_id: rid(),
            complainant: "村民 钱某".into(),
            content: "no answer for two weeks".into(),
            area_code: area.to_owned(),
            application_id: String::new(),
        };
        for (who, c) in [("bank", &mut bank), ("operator", &mut operator)] {
            expect(
                &format!("complaint lodged by {who}"),
                PermissionDenied,
                call!(c, lodge_complaint, lodge(VILLAGE_A)),
            );
        }
        expect(
            "complaint about another village",
            PermissionDenied,
            call!(village, lodge_complaint, lodge(VILLAGE_B)),
        );
        expect(
            "complaint about the town by its village",
            PermissionDenied,
            call!(village, lodge_complaint, lodge(TOWN_A)),
        );
        expect(
            "assign by the village",
            PermissionDenied,
            call!(
                village,
                assign_complaint,
                pb::AssignComplaintRequest {
                    request_id: rid(),
                    complaint_id: f.complaint.clone(),
                    organisation_area_code: VILLAGE_A.into(),
                }
            ),
        );
        for (who, c) in [("town", &mut town), ("district", &mut district)] {
            expect(
                &format!("answer by {who} (assigned to the village)"),
                PermissionDenied,
                call!(
                    c,
                    answer_complaint,
                    pb::AnswerComplaintRequest {
                        request_id: rid(),
                        complaint_id: f.complaint.clone(),
                        answer: "we will look into it".into(),
                    }
                ),
            );
        }
        for (who, c) in [("bank", &mut bank), ("another village", &mut other_village)] {
            expect(
                &format!("answer by {who}"),
                NotFound,
                call!(
                    c,
                    answer_complaint,
                    pb::AnswerComplaintRequest {
                        request_id: rid(),
                        complaint_id: f.complaint.clone(),
                        answer: "we will look into it".into(),
                    }
                ),
            );
        }

        let wrong: Vec<String> = results
            .iter()
            .filter(|(_, want, s)| s.code() != *want)
            .map(|(what, want, s)| format!("{what}: want {want:?}, got {s:?}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Only the state's denials are kept (7: PERMISSION_DENIED; 5: NOT_FOUND to a bank the
        // application is not recommended to), and nothing else changed.
        let not_denials = "x.refused_code is distinct from 7 and x.refused_code is distinct from 5";
        assert_eq!(
            state_but(&t, not_denials).await,
            before,
            "refused calls changed nothing"
        );
        let kept = count(
            &t.pool,
            "select count(*) from idempotency_keys where refused_code = 7",
        )
        .await;
        assert_eq!(kept, 4, "the state's denials: two reviews, two answers");
        let hidden = count(
            &t.pool,
            "select count(*) from idempotency_keys where refused_code = 5",
        )
        .await;
        assert_eq!(
            hidden, 2,
            "another bank's decision and disbursement (R-IN-6: it may be recommended there later)"
        );
        assert_eq!(
            t.get_as(&mut district, &f.held.id)
                .await
                .expect("held")
                .status(),
            pb::Status::OnHold
        );

        // A denial by the state is kept: the town's review, denied at the village step, is
        // denied again with the same id once the application is at the town step; a new id
        // goes through.
        let town_review = review_of(&f.at_village.id, pb::Decision::Approve);
        let s = err(town.review_application(town_review.clone()).await);
        assert_eq!(s.code(), PermissionDenied, "{s:?}");
        review(&mut village, &f.at_village.id, pb::Decision::Approve, "").await;
        let again = err(town.review_application(town_review.clone()).await);
        assert_eq!((again.code(), again.message()), (s.code(), s.message()));
        let moved = town
            .review_application(pb::ReviewApplicationRequest {
                request_id: rid(),
                ..town_review
            })
            .await
            .expect("a new request id, now the town's step")
            .into_inner();
        assert_eq!(moved.status(), pb::Status::DistrictReview);
        t.shutdown().await;
    })
    .await;
}

/// ARCHITECTURE "Auth" ("every RPC carries a bearer token"): each of the 18 RPCs, called
/// without a token with a body a valid caller would succeed with, is `Unauthenticated`, and
/// nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rpc_without_a_token_is_unauthenticated_and_changes_nothing() {
    bounded(180, async {
        let t = spawn_intake().await;
        let f = fixture(&t, 541).await;
        let before = state(&t).await;
        let mut c = t.anonymous();
        let mut results: Vec<(&str, Result<(), Status>)> = Vec::new();
        macro_rules! call {
            ($name:literal, $m:ident, $req:expr) => {
                results.push(($name, c.$m($req).await.map(|_| ())))
            };
        }
        call!(
            "SubmitApplication",
            submit_application,
            household_request(&f.fresh, VILLAGE_A, "20000")
        );
        call!(
            "GetApplication",
            get_application,
            pb::GetApplicationRequest {
                id: f.at_village.id.clone()
            }
        );
        call!(
            "ListApplications",
            list_applications,
            pb::ListApplicationsRequest::default()
        );
        call!(
            "ReviewApplication",
            review_application,
            review_of(&f.at_village.id, pb::Decision::Approve)
        );
        call!(
            "ResubmitApplication",
            resubmit_application,
            pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: f.returned.id.clone(),
                ..Default::default()
            }
        );
        call!(
            "ListTransitions",
            list_transitions,
            pb::ListTransitionsRequest {
                application_id: f.at_village.id.clone(),
                page: None,
            }
        );
        call!(
            "FileObjection",
            file_objection,
            pb::FileObjectionRequest {
                request_id: rid(),
                application_id: f.notice.id.clone(),
                objector: "村民 赵某".into(),
                content: "objection".into(),
            }
        );
        call!(
            "ResolveObjection",
            resolve_objection,
            pb::ResolveObjectionRequest {
                request_id: rid(),
                objection_id: f.objection.clone(),
                upheld: true,
                resolution: "upheld".into(),
            }
        );
        call!(
            "ListObjections",
            list_objections,
            pb::ListObjectionsRequest {
                application_id: f.held.id.clone(),
                page: None,
            }
        );
        call!(
            "RecommendToBank",
            recommend_to_bank,
            pb::RecommendToBankRequest {
                request_id: rid(),
                application_id: f.notice.id.clone(),
                bank_id: BANK.into(),
            }
        );
        call!(
            "ListRecommendedApplications",
            list_recommended_applications,
            pb::ListRecommendedApplicationsRequest::default()
        );
        call!(
            "RecordBankDecision",
            record_bank_decision,
            bank_approval(&f.recommended.id)
        );
        call!(
            "RecordDisbursement",
            record_disbursement,
            disbursement(&f.approved.id)
        );
        call!(
            "RunDeadlineScan",
            run_deadline_scan,
            pb::RunDeadlineScanRequest { request_id: rid() }
        );
        call!(
            "LodgeComplaint",
            lodge_complaint,
            pb::LodgeComplaintRequest {
                request_id: rid(),
                complainant: "村民 钱某".into(),
                content: "complaint".into(),
                area_code: VILLAGE_A.into(),
                application_id: String::new(),
            }
        );
        call!(
            "AssignComplaint",
            assign_complaint,
            pb::AssignComplaintRequest {
                request_id: rid(),
                complaint_id: f.complaint.clone(),
                organisation_area_code: TOWN_A.into(),
            }
        );
        call!(
            "AnswerComplaint",
            answer_complaint,
            pb::AnswerComplaintRequest {
                request_id: rid(),
                complaint_id: f.complaint.clone(),
                answer: "answered".into(),
            }
        );
        call!(
            "ListComplaints",
            list_complaints,
            pb::ListComplaintsRequest::default()
        );
        assert_eq!(results.len(), 18, "every IntakeService RPC");
        for (rpc, r) in results {
            let s = r.expect_err(rpc);
            assert_eq!(s.code(), Code::Unauthenticated, "{rpc}: {s:?}");
        }
        assert_eq!(state(&t).await, before, "nothing changed");
        t.shutdown().await;
    })
    .await;
}

/// SPEC section 0 ("every staff member ... sees and acts only inside its area"), ARCHITECTURE
/// "Auth" (services enforce area scope): staff of another town and of another village see none
/// of this district's applications and act on none of them; a token of another district (410302,
/// validly signed) is not a caller of this deployment at all; nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staff_outside_the_area_see_and_act_on_nothing() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(561);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        let mut district = t.as_district_staff();
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let code = uscc('3', 561);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let before = state(&t).await;

        let mut other_district =
            t.as_caller("district-center-x", Role::DistrictStaff, "410302", None);
        let mut other_town = t.as_town_staff(TOWN_B);
        let mut other_village = t.as_village_staff(VILLAGE_B);
        for (who, c) in [
            ("another town", &mut other_town),
            ("another village", &mut other_village),
        ] {
            let s = t.get_as(c, &app.id).await.expect_err(who);
            assert_eq!(s.code(), Code::NotFound, "{who}: {s:?}");
            let listed = c
                .list_applications(pb::ListApplicationsRequest::default())
                .await
                .unwrap_or_else(|s| panic!("{who} lists its own area: {s:?}"))
                .into_inner();
            assert!(listed.applications.is_empty(), "{who}: {listed:?}");
            let s = c
                .list_applications(pb::ListApplicationsRequest {
                    area_code: VILLAGE_A.into(),
                    ..Default::default()
                })
                .await
                .expect_err(who);
            assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
            let s = err(c
                .list_transitions(pb::ListTransitionsRequest {
                    application_id: app.id.clone(),
                    page: None,
                })
                .await);
            assert_eq!(s.code(), Code::NotFound, "{who}: {s:?}");
            let s = err(c
                .review_application(review_of(&app.id, pb::Decision::Approve))
                .await);
            assert_eq!(s.code(), Code::NotFound, "{who}: {s:?}");
            let s = err(c
                .lodge_complaint(pb::LodgeComplaintRequest {
                    request_id: rid(),
                    complainant: "村民 钱某".into(),
                    content: "complaint".into(),
                    area_code: VILLAGE_A.into(),
                    application_id: String::new(),
                })
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
        }
        // The other district's center reads, lists and files nothing here.
        let s = t
            .get_as(&mut other_district, &app.id)
            .await
            .expect_err("get");
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        let s = err(other_district
            .list_applications(pb::ListApplicationsRequest::default())
            .await);
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        let s = err(other_district
            .submit_application(enterprise_request(&code, TOWN_B, "200000"))
            .await);
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        let s = err(other_district
            .submit_application(household_request(&r, VILLAGE_A, "1000"))
            .await);
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        assert_eq!(state(&t).await, before, "nothing changed");
        // This district's center still takes its step.
        let a = review(&mut district, &app.id, pb::Decision::Approve, "").await;
        assert_eq!(a.status(), pb::Status::PublicNotice);
        t.shutdown().await;
    })
    .await;
}

/// SPEC section 0 (staff act and see only inside their area), R-CR-11, with R-IN-8: a request
/// id's stored result is replayed only to a caller still allowed to make that request. A
/// village clerk who reviewed an application in village A and was then moved to village B
/// (same token subject, new area) cannot get A's application back — names and phone
/// unmasked — by resending the old request: the id is refused as used for another request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_is_authorised_like_a_first_request() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(571);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        let clerk = "village-clerk-7";
        let req = review_of(&app.id, pb::Decision::Approve);
        let mut in_a = t.as_caller(clerk, Role::VillageStaff, VILLAGE_A, None);
        let first = in_a
            .review_application(req.clone())
            .await
            .expect("village A approves")
            .into_inner();
        assert_eq!(first.status(), pb::Status::TownReview);

        let mut in_b = t.as_caller(clerk, Role::VillageStaff, VILLAGE_B, None);
        let s = t.get_as(&mut in_b, &app.id).await.expect_err("not B's");
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        let replay = in_b.review_application(req).await;
        match replay {
            // The first result is bound to the scope it was decided in: from another area the
            // id names a different request (R-IN-8), and nothing of A's application shows.
            Err(s) => {
                assert_invalid(&s, "request_id", "R-IN-8");
                assert!(!s.message().contains(&app.id), "{s:?}");
            }
            Ok(a) => panic!(
                "village B's clerk got village A's application back: name {:?}, phone {:?}",
                a.get_ref().applicant_name,
                a.get_ref().applicant_phone
            ),
        }
        t.shutdown().await;
    })
    .await;
}
