//! Concurrency and races, driven over gRPC as a black box: many calls leave at once (each on
//! a connection of its own, released together by a barrier) and the test checks that what
//! the service stored, answered and announced is what one serial order of those calls gives.
//!
//! - R-IN-8: one request id sent 20 times at once, on every write, takes effect once and every
//!   caller gets the identical answer; a copy with another body under the same id, in the
//!   same burst, gets the documented refusal (`INVALID_ARGUMENT` naming `request_id`), unless
//!   it came first, in which case the others get it. Likewise for a refusal (kept once), bad
//!   input (kept never), and one clerk's id under tokens for two villages.
//! - R-IN-2, R-IN-6: different request ids racing on one application make exactly one move
//!   (a return may be followed by a rejection by the tier that returned it, decided on the
//!   returned application); the others are refused as the state left by the winner requires.
//! - R-IN-5: objections, resolutions and recommendations racing, also across the midnight that
//!   ends the public notice: never a recommended application with an open objection.
//! - R-IN-7: assignment racing with answers, answers racing, late answers racing with scans.
//! - R-IN-3: submissions racing with a blacklisting, a town suspension or a downgrade are each
//!   decided on one state of the read model; many submissions for one household at once.
//! - R-IN-4: a late step left while deadline scans run is alerted once.
//! - R-X-2: after every race the events on the stream are the stored transitions, one for
//!   one, and each application's version counts its moves without gaps.
//!
//! Unless a test moves it, the clock starts on Monday 2026-03-02 09:00 China time and runs on;
//! a notice started that day ends on Friday 03-06, recommendation is possible from 03-07.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, FixedOffset, NaiveDate};
use common::*;
use fupin_platform::{Role, auth::token_for};
use fupin_proto::{
    common::v1::PageRequest,
    intake::v1::{self as pb, intake_service_client::IntakeServiceClient},
};
use futures::future::join_all;
use prost::Name;
use tokio::sync::Barrier;
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// How many identical copies of one request a same-id race sends (plus one other body).
const COPIES: usize = 20;

// =====================================================================================
// Callers, each on a connection of its own
// =====================================================================================

#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Own = IntakeServiceClient<InterceptedService<Channel, Auth>>;

/// Who calls: the token's subject, role, area and bank.
#[derive(Clone, Debug)]
struct Who {
    subject: String,
    role: Role,
    area: String,
    bank: Option<String>,
}

impl Who {
    fn new(subject: String, role: Role, area: &str, bank: Option<&str>) -> Self {
        Self {
            subject,
            role,
            area: area.to_owned(),
            bank: bank.map(str::to_owned),
        }
    }

    /// Staff member `n` of village A's service department.
    fn village(n: u32) -> Self {
        Self::new(
            format!("village-a-{n}"),
            Role::VillageStaff,
            VILLAGE_A,
            None,
        )
    }

    /// Staff member `n` of town A's service station.
    fn town(n: u32) -> Self {
        Self::new(format!("town-a-{n}"), Role::TownStaff, TOWN_A, None)
    }

    /// Staff member `n` of the district center.
    fn district(n: u32) -> Self {
        Self::new(format!("district-{n}"), Role::DistrictStaff, DISTRICT, None)
    }

    /// Core system `n` of partner bank `bank`.
    fn bank(bank: &str, n: u32) -> Self {
        Self::new(format!("{bank}-core-{n}"), Role::Bank, DISTRICT, Some(bank))
    }

    fn operator(n: u32) -> Self {
        Self::new(format!("ops-{n}"), Role::Operator, DISTRICT, None)
    }
}

/// A client for `who` on a new HTTP/2 connection. A call that hangs (a deadlock) fails after
/// 60 s instead of stalling the test.
async fn connect(t: &TestIntake, who: &Who) -> Own {
    let channel = Channel::from_shared(format!("http://{}", t.addr))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connecting to intake");
    let token = token_for(
        SECRET,
        &who.subject,
        who.role,
        &who.area,
        who.bank.as_deref(),
        3600,
    );
    let value = format!("Bearer {token}").parse().expect("ascii token");
    IntakeServiceClient::with_interceptor(channel, Auth(value))
}

// =====================================================================================
// Calls and bursts
// =====================================================================================

/// One write (or scan) of the intake API.
#[derive(Clone, Debug)]
enum Call {
    Submit(pb::SubmitApplicationRequest),
    Review(pb::ReviewApplicationRequest),
    Resubmit(pb::ResubmitApplicationRequest),
    File(pb::FileObjectionRequest),
    Resolve(pb::ResolveObjectionRequest),
    Recommend(pb::RecommendToBankRequest),
    Decide(pb::RecordBankDecisionRequest),
    Disburse(pb::RecordDisbursementRequest),
    Lodge(pb::LodgeComplaintRequest),
    Assign(pb::AssignComplaintRequest),
    Answer(pb::AnswerComplaintRequest),
    Scan,
}

#[derive(Clone, Debug, PartialEq)]
enum Reply {
    App(Box<pb::Application>),
    Objection(pb::Objection),
    Complaint(pb::Complaint),
    Scan(pb::RunDeadlineScanResponse),
}

impl Reply {
    fn app(&self) -> &pb::Application {
        match self {
            Reply::App(a) => a,
            other => panic!("expected an application, got {other:?}"),
        }
    }

    fn objection(&self) -> &pb::Objection {
        match self {
            Reply::Objection(o) => o,
            other => panic!("expected an objection, got {other:?}"),
        }
    }

    fn complaint(&self) -> &pb::Complaint {
        match self {
            Reply::Complaint(c) => c,
            other => panic!("expected a complaint, got {other:?}"),
        }
    }
}

async fn send(mut c: Own, call: Call) -> Result<Reply, Status> {
    Ok(match call {
        Call::Submit(q) => Reply::App(Box::new(c.submit_application(q).await?.into_inner())),
        Call::Review(q) => Reply::App(Box::new(c.review_application(q).await?.into_inner())),
        Call::Resubmit(q) => Reply::App(Box::new(c.resubmit_application(q).await?.into_inner())),
        Call::File(q) => Reply::Objection(c.file_objection(q).await?.into_inner()),
        Call::Resolve(q) => Reply::Objection(c.resolve_objection(q).await?.into_inner()),
        Call::Recommend(q) => Reply::App(Box::new(c.recommend_to_bank(q).await?.into_inner())),
        Call::Decide(q) => Reply::App(Box::new(c.record_bank_decision(q).await?.into_inner())),
        Call::Disburse(q) => Reply::App(Box::new(c.record_disbursement(q).await?.into_inner())),
        Call::Lodge(q) => Reply::Complaint(c.lodge_complaint(q).await?.into_inner()),
        Call::Assign(q) => Reply::Complaint(c.assign_complaint(q).await?.into_inner()),
        Call::Answer(q) => Reply::Complaint(c.answer_complaint(q).await?.into_inner()),
        Call::Scan => Reply::Scan(
            c.run_deadline_scan(pb::RunDeadlineScanRequest { request_id: rid() })
                .await?
                .into_inner(),
        ),
    })
}

/// Connects every caller first, then sends all calls at once (each task waits at one barrier)
/// and returns their results in the order given.
async fn burst(t: &TestIntake, calls: Vec<(Who, Call)>) -> Vec<Result<Reply, Status>> {
    let timed = calls
        .into_iter()
        .map(|(who, call)| (who, call, Duration::ZERO))
        .collect();
    burst_at(t, timed, || {}).await
}

/// A permutation of `0..n` that differs from run to run (xorshift64* seeded by the time), so
/// the order in which a burst's tasks are spawned does not favour the first call listed.
fn shuffled(n: usize) -> Vec<usize> {
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
        | 1;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let j = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// [`burst`] where each call leaves its own delay after the release, and `at_release` runs
/// right before the barrier opens (after every caller is connected).
async fn burst_at(
    t: &TestIntake,
    calls: Vec<(Who, Call, Duration)>,
    at_release: impl FnOnce(),
) -> Vec<Result<Reply, Status>> {
    let mut ready = Vec::with_capacity(calls.len());
    for (who, call, delay) in calls {
        ready.push(Some((connect(t, &who).await, call, delay)));
    }
    let barrier = Arc::new(Barrier::new(ready.len() + 1));
    let mut tasks: Vec<Option<tokio::task::JoinHandle<Result<Reply, Status>>>> =
        (0..ready.len()).map(|_| None).collect();
    for i in shuffled(ready.len()) {
        let (client, call, delay) = ready[i].take().expect("each call once");
        let barrier = barrier.clone();
        tasks[i] = Some(tokio::spawn(async move {
            barrier.wait().await;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            send(client, call).await
        }));
    }
    at_release();
    barrier.wait().await;
    join_all(tasks.into_iter().map(|t| t.expect("spawned")))
        .await
        .into_iter()
        .map(|r| r.expect("call task"))
        .collect()
}

/// R-IN-8: `COPIES` copies of `same` and one `other` (the same request id, another body), all
/// from `who` at once. Exactly one body wins: every call with it gets one identical answer
/// (the whole message), every call with the other body `INVALID_ARGUMENT` naming
/// `request_id` and R-IN-8. Returns the answer and whether `other` was the winner.
async fn same_id_race(t: &TestIntake, who: &Who, same: Call, other: Call) -> (Reply, bool) {
    let mut calls: Vec<(Who, Call)> = (0..COPIES).map(|_| (who.clone(), same.clone())).collect();
    calls.push((who.clone(), other));
    let mut results = burst(t, calls).await;
    let other = results.pop().expect("the other body's result");
    match &other {
        Ok(won) => {
            for r in &results {
                match r {
                    Err(s) => assert_invalid(s, "request_id", "R-IN-8"),
                    Ok(a) => {
                        panic!("both bodies of one request id took effect:\n  {a:?}\n  {won:?}")
                    }
                }
            }
            (won.clone(), true)
        }
        Err(s) => {
            assert_invalid(s, "request_id", "R-IN-8");
            let first = results[0]
                .clone()
                .unwrap_or_else(|s| panic!("the first copy failed: {s:?}"));
            for (i, r) in results.iter().enumerate() {
                match r {
                    Ok(a) => assert_eq!(a, &first, "copy {i} got another answer"),
                    Err(s) => panic!("copy {i} of a request that took effect failed: {s:?}"),
                }
            }
            (first, false)
        }
    }
}

/// After a same-id race, the winning request sent once more replays its answer, and the
/// losing one is still refused.
async fn replays(t: &TestIntake, who: &Who, won: &Reply, winner: Call, loser: Call) {
    let again = send(connect(t, who).await, winner)
        .await
        .unwrap_or_else(|s| panic!("a later retry of the winner: {s:?}"));
    assert_eq!(&again, won, "a later retry returns the first result");
    let s = send(connect(t, who).await, loser)
        .await
        .expect_err("the other body stays refused");
    assert_invalid(&s, "request_id", "R-IN-8");
}

// =====================================================================================
// Observing
// =====================================================================================

async fn keys(t: &TestIntake) -> i64 {
    count(&t.pool, "select count(*) from idempotency_keys").await
}

async fn get(t: &TestIntake, id: &str) -> pb::Application {
    t.get_as(&mut t.as_district_staff(), id)
        .await
        .unwrap_or_else(|s| panic!("get {id}: {s:?}"))
}

/// The whole history of an application, read as the district, page by page.
async fn history(t: &TestIntake, id: &str) -> Vec<pb::Transition> {
    let mut c = t.as_district_staff();
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .list_transitions(pb::ListTransitionsRequest {
                application_id: id.to_owned(),
                page: Some(PageRequest {
                    page_size: 200,
                    page_token: token.clone(),
                }),
            })
            .await
            .unwrap_or_else(|s| panic!("history of {id}: {s:?}"))
            .into_inner();
        out.extend(r.transitions);
        token = r.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return out;
        }
    }
}

fn actions(h: &[pb::Transition]) -> Vec<&str> {
    h.iter().map(|tr| tr.action.as_str()).collect()
}

/// The calendar day in China of an RFC 3339 instant.
fn china_day(rfc3339: &str) -> NaiveDate {
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .with_timezone(&china)
        .date_naive()
}

/// R-X-2, R-IN-2: for every application of the test (`ids` must name them all), the history
/// is a chain from the submission, the version counts its moves (no gap, no move twice), the
/// status is where the chain ends, and the stream holds one `ApplicationSubmitted` and exactly
/// the recorded moves as `ApplicationStatusChanged`, in order, with nothing else.
async fn assert_announced_as_recorded(t: &TestIntake, ids: &[String]) {
    let changed: Vec<pb::ApplicationStatusChanged> = t
        .intake_events(&pb::ApplicationStatusChanged::full_name())
        .await
        .iter()
        .map(Event::decode)
        .collect();
    let submitted: Vec<pb::ApplicationSubmitted> = t
        .intake_events(&pb::ApplicationSubmitted::full_name())
        .await
        .iter()
        .map(Event::decode)
        .collect();
    let mut moves = 0;
    for id in ids {
        let h = history(t, id).await;
        assert!(!h.is_empty(), "{id}: no history");
        assert_eq!(
            h[0].from_status(),
            pb::Status::Unspecified,
            "{id}: the history starts at the submission: {h:#?}"
        );
        for k in 1..h.len() {
            assert_eq!(
                h[k].from_status(),
                h[k - 1].to_status(),
                "{id}: move {k} does not start where move {} ended: {:?}",
                k - 1,
                actions(&h)
            );
        }
        let app = get(t, id).await;
        assert_eq!(
            app.version,
            h.len() as u64,
            "{id}: the version counts the recorded moves: {:?}",
            actions(&h)
        );
        assert_eq!(
            app.status(),
            h.last().expect("a move").to_status(),
            "{id}: status is where the history ends"
        );
        let announced: Vec<_> = changed
            .iter()
            .filter(|e| e.application_id == *id)
            .map(|e| {
                (
                    e.from_status(),
                    e.to_status(),
                    e.action.clone(),
                    e.reason.clone(),
                )
            })
            .collect();
        let recorded: Vec<_> = h[1..]
            .iter()
            .map(|tr| {
                (
                    tr.from_status(),
                    tr.to_status(),
                    tr.action.clone(),
                    tr.reason.clone(),
                )
            })
            .collect();
        assert_eq!(announced, recorded, "{id}: announced vs recorded moves");
        assert_eq!(
            submitted.iter().filter(|e| e.application_id == *id).count(),
            1,
            "{id}: one ApplicationSubmitted"
        );
        moves += h.len() - 1;
    }
    assert_eq!(
        changed.len(),
        moves,
        "no ApplicationStatusChanged without a recorded move"
    );
    assert_eq!(submitted.len(), ids.len(), "one ApplicationSubmitted each");
}

/// A refusal by a rule: `FailedPrecondition` listing exactly one of `rules`.
fn refused_by_one_of(s: &Status, rules: &[&str]) -> bool {
    s.code() == Code::FailedPrecondition
        && rules.iter().any(|r| {
            s.message().contains(&format!("[{r}]")) && s.message().matches('[').count() == 1
        })
}

// =====================================================================================
// Preparing applications
// =====================================================================================

/// Credit households `ns` of village A apply for 20,000 (term 12) today; prepared at once.
async fn at_village(t: &TestIntake, ns: impl IntoIterator<Item = u32>) -> Vec<pb::Application> {
    join_all(ns.into_iter().map(|n| async move {
        let r = resident_id(n);
        t.given_credit_household(&r, VILLAGE_A).await;
        t.submit_household(&r, VILLAGE_A, "20000").await
    }))
    .await
}

/// [`at_village`], then approved by the village (`tiers` 1), the town too (2), or all three
/// tiers (3: in public notice from today).
async fn approved_by(
    t: &TestIntake,
    ns: impl IntoIterator<Item = u32>,
    tiers: usize,
) -> Vec<pb::Application> {
    let apps = at_village(t, ns).await;
    join_all(apps.into_iter().map(|a| async move {
        let reviewers = [
            t.as_village_staff(VILLAGE_A),
            t.as_town_staff(TOWN_A),
            t.as_district_staff(),
        ];
        let mut now = a;
        for mut c in reviewers.into_iter().take(tiers) {
            now = review(&mut c, &now.id, pb::Decision::Approve, "").await;
        }
        now
    }))
    .await
}

/// Applications in public notice from Monday 2026-03-02 (ends Friday 03-06); the clock must
/// be on that Monday.
async fn in_notice(t: &TestIntake, ns: impl IntoIterator<Item = u32>) -> Vec<pb::Application> {
    let apps = approved_by(t, ns, 3).await;
    for a in &apps {
        assert_eq!(a.status(), pb::Status::PublicNotice);
        assert_eq!(a.notice_ends_on, "2026-03-06");
    }
    apps
}

fn ids(apps: &[pb::Application]) -> Vec<String> {
    apps.iter().map(|a| a.id.clone()).collect()
}

fn objection_req(application: &str, content: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: application.to_owned(),
        objector: "村民 赵某".into(),
        content: content.to_owned(),
    }
}

fn recommend_req(application: &str, bank: &str) -> pb::RecommendToBankRequest {
    pb::RecommendToBankRequest {
        request_id: rid(),
        application_id: application.to_owned(),
        bank_id: bank.to_owned(),
    }
}

fn reject_req(application: &str, reason: &str) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: application.to_owned(),
        approved: false,
        approved_amount: None,
        annual_rate: String::new(),
        term_months: 0,
        rejection_reason: reason.to_owned(),
    }
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A payout of `fen` on `on` (YYYY-MM-DD) into `account`, repaid in 12 monthly instalments.
fn disburse_req(
    application: &str,
    account: &str,
    fen: i64,
    on: &str,
) -> pb::RecordDisbursementRequest {
    let start = day(on);
    let each = fen / 12;
    let schedule = (1..=12)
        .map(|i: i64| {
            let due = start
                .checked_add_months(chrono::Months::new(i as u32))
                .expect("a date");
            let principal = if i == 12 { fen - each * 11 } else { each };
            pb::Instalment {
                due_on: due.to_string(),
                principal: money(&yuan(principal)),
                interest: money("65.25"),
            }
        })
        .collect();
    pb::RecordDisbursementRequest {
        request_id: rid(),
        application_id: application.to_owned(),
        loan_account_number: account.to_owned(),
        amount: money(&yuan(fen)),
        disbursed_on: on.to_owned(),
        schedule,
    }
}

fn review_call(id: &str, decision: pb::Decision, reason: &str) -> Call {
    Call::Review(review_req(id, decision, reason))
}

/// The status a staff decision at `from` leads to.
fn after_decision(from: pb::Status, decision: pb::Decision) -> pb::Status {
    match decision {
        pb::Decision::Reject => pb::Status::Rejected,
        pb::Decision::ReturnForCorrection => pb::Status::Returned,
        _ => match from {
            pb::Status::VillageReview => pb::Status::TownReview,
            pb::Status::TownReview => pb::Status::DistrictReview,
            _ => pb::Status::PublicNotice,
        },
    }
}

// =====================================================================================
// R-IN-8: one request id, twenty copies at once, on every write
// =====================================================================================

/// R-IN-8, R-X-2 on SubmitApplication: 20 copies of one submission and one with another
/// amount under the same request id, at once: one application, one transition, one
/// `ApplicationSubmitted`, one kept key; all copies of the winner answer the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_twenty_times_submits_once() {
    bounded(240, async {
        let t = spawn_intake().await;
        let resident = resident_id(1);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let who = Who::village(1);
        let same = household_request(&resident, VILLAGE_A, "10000");
        let mut other = same.clone();
        other.amount = money("9000");
        let (won, other_won) = same_id_race(
            &t,
            &who,
            Call::Submit(same.clone()),
            Call::Submit(other.clone()),
        )
        .await;
        let app = won.app();
        assert_eq!(
            app.amount,
            if other_won {
                money("9000.00")
            } else {
                money("10000.00")
            }
        );
        assert_eq!(app.status(), pb::Status::VillageReview);
        assert_eq!(app.version, 1);
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        assert_eq!(count(&t.pool, "select count(*) from transitions").await, 1);
        assert_eq!(keys(&t).await, 1, "one kept request id");
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        replays(&t, &who, &won, Call::Submit(winner), Call::Submit(loser)).await;
        assert_announced_as_recorded(&t, std::slice::from_ref(&app.id)).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8, R-IN-2, R-X-2 on ReviewApplication (approve, reject, return) and
/// ResubmitApplication: 20 copies of one decision and one other decision under the same id,
/// at once, make one move (version 2, or 3 for the resubmission), one transition, one
/// `ApplicationStatusChanged` and one kept key; the winner's callers all get the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_twenty_times_reviews_and_resubmits_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let apps = at_village(&t, 11..15).await;
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &apps[3].id,
            pb::Decision::ReturnForCorrection,
            "land contract missing",
        )
        .await;
        let who = Who::village(1);

        // R-IN-8, R-X-3: 20 copies of a rejection without a reason at once: each is bad input
        // naming `reason`; nothing is kept, so the corrected request reuses the id below.
        let bad = review_req(&apps[1].id, pb::Decision::Reject, "");
        let before = keys(&t).await;
        let results = burst(
            &t,
            (0..COPIES)
                .map(|_| (who.clone(), Call::Review(bad.clone())))
                .collect(),
        )
        .await;
        for r in &results {
            let s = r.as_ref().expect_err("a rejection needs a reason");
            assert_invalid(s, "reason", "R-IN-2");
        }
        assert_eq!(keys(&t).await, before, "bad input keeps nothing");
        assert_eq!(history(&t, &apps[1].id).await.len(), 1);

        let cases = [
            (
                &apps[0],
                review_req(&apps[0].id, pb::Decision::Approve, ""),
                pb::Decision::Reject,
                "no production project",
            ),
            (
                &apps[1],
                pb::ReviewApplicationRequest {
                    reason: "no production project".into(),
                    ..bad.clone()
                },
                pb::Decision::ReturnForCorrection,
                "photo of the land contract missing",
            ),
            (
                &apps[2],
                review_req(
                    &apps[2].id,
                    pb::Decision::ReturnForCorrection,
                    "photo of the land contract missing",
                ),
                pb::Decision::Approve,
                "",
            ),
        ];
        for (app, same, other_decision, other_reason) in cases {
            let other = pb::ReviewApplicationRequest {
                decision: other_decision as i32,
                reason: other_reason.to_owned(),
                ..same.clone()
            };
            let before = keys(&t).await;
            let (won, other_won) = same_id_race(
                &t,
                &who,
                Call::Review(same.clone()),
                Call::Review(other.clone()),
            )
            .await;
            let (winner, loser) = if other_won {
                (other, same)
            } else {
                (same, other)
            };
            let want = after_decision(pb::Status::VillageReview, winner.decision());
            let a = won.app();
            assert_eq!(a.status(), want, "{:?}", winner.decision());
            assert_eq!(a.version, 2, "one move");
            let h = history(&t, &app.id).await;
            assert_eq!(h.len(), 2, "one transition: {:?}", actions(&h));
            assert_eq!(h[1].to_status(), want);
            assert_eq!(h[1].actor, who.subject);
            assert_eq!(keys(&t).await, before + 1, "one kept request id");
            assert_eq!(get(&t, &app.id).await.version, 2);
            replays(&t, &who, &won, Call::Review(winner), Call::Review(loser)).await;
        }

        let same = pb::ResubmitApplicationRequest {
            request_id: rid(),
            application_id: apps[3].id.clone(),
            note: "contract photo added".into(),
            ..Default::default()
        };
        let other = pb::ResubmitApplicationRequest {
            note: "contract photo and lease added".into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &who,
            Call::Resubmit(same.clone()),
            Call::Resubmit(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let a = won.app();
        assert_eq!(a.status(), pb::Status::VillageReview);
        assert_eq!(a.version, 3, "submit, return, one resubmission");
        let h = history(&t, &apps[3].id).await;
        assert_eq!(actions(&h)[1..], ["return", "resubmit"], "{h:#?}");
        assert_eq!(h[2].reason, winner.note);
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &who,
            &won,
            Call::Resubmit(winner),
            Call::Resubmit(loser),
        )
        .await;
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8, R-IN-5, R-X-2 on FileObjection, ResolveObjection and RecommendToBank: 20 copies
/// and one other body (another objection text; an uphold instead of a dismissal; the other
/// partner bank) under one id, at once: one objection stored and one hold, one resolution,
/// one recommendation to one bank; one transition and one announcement each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_twenty_times_objects_resolves_and_recommends_once() {
    bounded(300, async {
        let t = spawn_intake_with_two_banks().await;
        let apps = in_notice(&t, 21..23).await;
        let (held, clean) = (&apps[0], &apps[1]);

        t.set_time("2026-03-03T09:00:00+08:00");
        let village = Who::village(1);
        let same = objection_req(&held.id, "the loan is for a relative's house");
        let other = pb::FileObjectionRequest {
            content: "the household already has a loan".into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &village,
            Call::File(same.clone()),
            Call::File(other.clone()),
        )
        .await;
        let o = won.objection().clone();
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        assert_eq!(o.content, winner.content);
        assert_eq!(o.state, "open");
        let listed = t.objections(&held.id).await;
        assert_eq!(listed.len(), 1, "one objection: {listed:?}");
        assert_eq!(listed[0].id, o.id);
        assert_eq!(get(&t, &held.id).await.status(), pb::Status::OnHold);
        let h = history(&t, &held.id).await;
        assert_eq!(actions(&h).last(), Some(&"objection"));
        assert_eq!(h.len(), 5, "one hold: {:?}", actions(&h));
        assert_eq!(keys(&t).await, before + 1);
        replays(&t, &village, &won, Call::File(winner), Call::File(loser)).await;

        t.set_time("2026-03-04T09:00:00+08:00");
        let district = Who::district(1);
        let same = resolve_req(&o.id, false, "unfounded: the project is a peony field");
        let other = resolve_req(&o.id, true, "confirmed by the village committee");
        let other = pb::ResolveObjectionRequest {
            request_id: same.request_id.clone(),
            ..other
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &district,
            Call::Resolve(same.clone()),
            Call::Resolve(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let resolved = won.objection();
        let (state, status, action) = if winner.upheld {
            ("upheld", pb::Status::Rejected, "objection_upheld")
        } else {
            ("dismissed", pb::Status::PublicNotice, "objection_dismissed")
        };
        assert_eq!(resolved.state, state);
        assert_eq!(resolved.resolution, winner.resolution);
        let listed = t.objections(&held.id).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, state);
        assert_eq!(get(&t, &held.id).await.status(), status);
        let h = history(&t, &held.id).await;
        assert_eq!(h.len(), 6, "one resolution: {:?}", actions(&h));
        assert_eq!(h[5].action, action);
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &district,
            &won,
            Call::Resolve(winner),
            Call::Resolve(loser),
        )
        .await;

        t.set_time("2026-03-07T09:00:00+08:00");
        let same = recommend_req(&clean.id, BANK);
        let other = pb::RecommendToBankRequest {
            bank_id: OTHER_BANK.into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &district,
            Call::Recommend(same.clone()),
            Call::Recommend(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let a = won.app();
        assert_eq!(a.status(), pb::Status::Recommended);
        assert_eq!(a.bank_id, winner.bank_id);
        assert_eq!(a.version, 5);
        let now = get(&t, &clean.id).await;
        assert_eq!(now.bank_id, winner.bank_id);
        assert_eq!(now.version, 5, "one recommendation");
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &district,
            &won,
            Call::Recommend(winner),
            Call::Recommend(loser),
        )
        .await;
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8, R-IN-6, R-X-2 on RecordBankDecision (approval and rejection) and
/// RecordDisbursement: 20 copies and one other body (another amount, another reason, another
/// loan account) under one id, at once: one decision and one payout as the winner asked, one
/// transition each, one `LoanDisbursed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_twenty_times_decides_and_disburses_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 31..33).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        for a in &apps {
            t.recommend(&a.id, BANK).await.expect("recommend");
        }
        let bank = Who::bank(BANK, 1);

        let same = approve_req(&apps[0].id, "18000", "0.0435", 12);
        let other = pb::RecordBankDecisionRequest {
            approved_amount: money("17000"),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &bank,
            Call::Decide(same.clone()),
            Call::Decide(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let fen: i64 = if other_won { 1_700_000 } else { 1_800_000 };
        let a = won.app();
        assert_eq!(a.status(), pb::Status::BankApproved);
        assert_eq!(a.version, 6);
        let decision = a.bank_decision.clone().expect("decision");
        assert_eq!(decision.approved_amount, money(&yuan(fen)));
        assert_eq!(get(&t, &apps[0].id).await.bank_decision, Some(decision));
        assert_eq!(keys(&t).await, before + 1);
        replays(&t, &bank, &won, Call::Decide(winner), Call::Decide(loser)).await;

        let same = disburse_req(&apps[0].id, "6228480100000001", fen, "2026-03-07");
        let other = pb::RecordDisbursementRequest {
            loan_account_number: "6228480100000002".into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &bank,
            Call::Disburse(same.clone()),
            Call::Disburse(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let a = won.app();
        assert_eq!(a.status(), pb::Status::Disbursed);
        assert_eq!(a.version, 7);
        let info = a.disbursement.clone().expect("disbursement");
        assert_eq!(info.loan_account_number, winner.loan_account_number);
        let loans: Vec<pb::LoanDisbursed> = t
            .intake_events(&pb::LoanDisbursed::full_name())
            .await
            .iter()
            .map(Event::decode)
            .collect();
        assert_eq!(loans.len(), 1, "one LoanDisbursed: {loans:?}");
        assert_eq!(loans[0].loan_id, info.loan_id);
        assert_eq!(loans[0].loan_account_number, winner.loan_account_number);
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &bank,
            &won,
            Call::Disburse(winner),
            Call::Disburse(loser),
        )
        .await;

        let same = reject_req(&apps[1].id, "no land lease for the project");
        let other = pb::RecordBankDecisionRequest {
            rejection_reason: "income too low to repay".into(),
            ..same.clone()
        };
        let (won, other_won) = same_id_race(
            &t,
            &bank,
            Call::Decide(same.clone()),
            Call::Decide(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let a = won.app();
        assert_eq!(a.status(), pb::Status::BankRejected);
        assert_eq!(a.version, 6);
        assert_eq!(
            a.bank_decision
                .as_ref()
                .map(|d| d.rejection_reason.as_str()),
            Some(winner.rejection_reason.as_str())
        );
        replays(&t, &bank, &won, Call::Decide(winner), Call::Decide(loser)).await;
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

/// The stored assignment, answer and answerer of a complaint.
async fn complaint_row(
    t: &TestIntake,
    id: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    sqlx::query_as("select assigned_to, answer, answered_by from complaints where id = $1::uuid")
        .bind(id)
        .fetch_one(&t.pool)
        .await
        .expect("complaint row")
}

/// R-IN-8, R-IN-7 on LodgeComplaint, AssignComplaint and AnswerComplaint: 20 copies and one
/// other body (another text; another organisation; another answer) under one id, at once: one
/// complaint, one assignment, one answer, as the winner asked; one kept key each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_twenty_times_lodges_assigns_and_answers_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let village = Who::village(1);
        let same = lodge_req(VILLAGE_A, "the loan officer asked for a fee");
        let other = pb::LodgeComplaintRequest {
            content: "the notice was not posted in the village".into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &village,
            Call::Lodge(same.clone()),
            Call::Lodge(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let c = won.complaint().clone();
        assert_eq!(c.content, winner.content);
        assert_eq!(count(&t.pool, "select count(*) from complaints").await, 1);
        let listed = t
            .as_district_staff()
            .list_complaints(pb::ListComplaintsRequest::default())
            .await
            .expect("list complaints")
            .into_inner()
            .complaints;
        assert_eq!(
            listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [c.id.as_str()]
        );
        assert_eq!(keys(&t).await, before + 1);
        replays(&t, &village, &won, Call::Lodge(winner), Call::Lodge(loser)).await;

        let town = Who::town(1);
        let same = assign_req(&c.id, VILLAGE_A);
        let other = pb::AssignComplaintRequest {
            organisation_area_code: TOWN_A.into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &town,
            Call::Assign(same.clone()),
            Call::Assign(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        let assigned = won.complaint();
        assert_eq!(assigned.assigned_to, winner.organisation_area_code);
        let (stored_to, answer, _) = complaint_row(&t, &c.id).await;
        assert_eq!(
            stored_to.as_deref(),
            Some(winner.organisation_area_code.as_str())
        );
        assert_eq!(answer, None);
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &town,
            &won,
            Call::Assign(winner.clone()),
            Call::Assign(loser),
        )
        .await;

        let answerer = if winner.organisation_area_code == VILLAGE_A {
            Who::village(2)
        } else {
            Who::town(2)
        };
        let same = answer_req(&c.id, "the fee was refunded; the officer was warned");
        let other = pb::AnswerComplaintRequest {
            answer: "no fee is due under the programme".into(),
            ..same.clone()
        };
        let before = keys(&t).await;
        let (won, other_won) = same_id_race(
            &t,
            &answerer,
            Call::Answer(same.clone()),
            Call::Answer(other.clone()),
        )
        .await;
        let (winner, loser) = if other_won {
            (other, same)
        } else {
            (same, other)
        };
        assert_eq!(won.complaint().answer, winner.answer);
        let (_, answer, by) = complaint_row(&t, &c.id).await;
        assert_eq!(answer.as_deref(), Some(winner.answer.as_str()));
        assert_eq!(by.as_deref(), Some(answerer.subject.as_str()));
        assert_eq!(keys(&t).await, before + 1);
        replays(
            &t,
            &answerer,
            &won,
            Call::Answer(winner),
            Call::Answer(loser),
        )
        .await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-2: different request ids racing on one step
// =====================================================================================

/// What a caller who lost a race at a staff step gets, given where the winner left the
/// application (README, boundaries: `PermissionDenied` for a step that is another tier's now;
/// `FailedPrecondition` naming R-IN-2 when no staff review or resubmission is pending).
fn assert_lost_step(winner: &pb::Application, s: &Status) {
    match winner.status() {
        pb::Status::TownReview | pb::Status::DistrictReview => {
            assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        }
        _ => assert_refused(s, &["R-IN-2"]),
    }
}

/// Exactly one success among `results`; returns it.
fn the_one(results: &[Result<Reply, Status>], what: &str) -> pb::Application {
    let ok: Vec<&Reply> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        ok.len(),
        1,
        "{what}: exactly one call takes effect: {results:#?}"
    );
    ok[0].app().clone()
}

/// The move a burst of decisions on one step made, and the rejection that may follow it: once
/// a return has won, a rejection by the same tier applies to the returned application (the
/// tier that returned it may reject it, README "Returned for correction"), as it would one
/// call later. Never anything else: no second approval, no second return.
fn the_step(results: &[Result<Reply, Status>], what: &str) -> (pb::Application, bool) {
    let mut ok: Vec<pb::Application> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.app().clone())
        .collect();
    ok.sort_by_key(|a| a.version);
    match ok.as_slice() {
        [one] => (one.clone(), false),
        [returned, rejected]
            if returned.status() == pb::Status::Returned
                && rejected.status() == pb::Status::Rejected
                && rejected.version == returned.version + 1 =>
        {
            (returned.clone(), true)
        }
        _ => panic!("{what}: one move, or a return and then a rejection: {results:#?}"),
    }
}

/// When a burst ended in a return and then a rejection ([`the_step`]), the rejection was
/// decided on the returned application by the tier that returned it: a rejection decided on
/// the review step and written late would record that step as where it came from.
fn assert_rejected_after_return(h: &[pb::Transition]) {
    let (returned, rejected) = (&h[h.len() - 2], &h[h.len() - 1]);
    assert_eq!(
        (
            returned.to_status(),
            rejected.from_status(),
            rejected.action.as_str()
        ),
        (pb::Status::Returned, pb::Status::Returned, "reject"),
        "{:?}",
        actions(h)
    );
    assert_eq!(
        rejected.actor_role, returned.actor_role,
        "the returning tier"
    );
}

/// R-IN-2, R-X-2: ten staff of the right tier deciding one step at once (distinct request ids
/// and subjects) make exactly one move, which a rejection of the returned application may
/// follow when the move was a return ([`the_step`]); the others are refused as the winner's
/// state requires — never an internal error, a deadlock, a lost update or a second move:
/// - village step, ten approvals (two applications) and mixed approve / reject / return (two);
/// - town step and district step, mixed decisions (three applications each);
/// - ten approvals all naming `expected_version` 1: one moves, nine are `Aborted`;
/// - ten resubmissions of a returned application: one, the nine others refused (R-IN-2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_staff_deciding_one_step_at_once_make_one_move() {
    bounded(420, async {
        let t = spawn_intake().await;
        let village_apps = approved_by(&t, 41..46, 0).await;
        let town_apps = approved_by(&t, 46..49, 1).await;
        let district_apps = approved_by(&t, 49..52, 2).await;
        let returned = approved_by(&t, 52..54, 0).await;
        for a in &returned {
            review(
                &mut t.as_village_staff(VILLAGE_A),
                &a.id,
                pb::Decision::ReturnForCorrection,
                "land contract missing",
            )
            .await;
        }
        let mixed = |i: u32| match i % 3 {
            0 => (pb::Decision::Approve, ""),
            1 => (pb::Decision::Reject, "no production project"),
            _ => (pb::Decision::ReturnForCorrection, "land contract missing"),
        };

        // The village step: apps 0-1 ten approvals, 2-3 mixed, 4 with expected_version.
        let mut calls = Vec::new();
        for (k, a) in village_apps.iter().enumerate() {
            for i in 0..10 {
                let (decision, reason) = if k < 2 {
                    (pb::Decision::Approve, "")
                } else {
                    mixed(i)
                };
                let mut q = review_req(&a.id, decision, reason);
                if k == 4 {
                    q.expected_version = 1;
                }
                calls.push((Who::village(i), Call::Review(q)));
            }
        }
        let results = burst(&t, calls).await;
        for (k, (a, rs)) in village_apps.iter().zip(results.chunks(10)).enumerate() {
            let (winner, then_rejected) = the_step(rs, &format!("village step of app {k}"));
            assert_eq!(winner.version, 2);
            for s in rs.iter().filter_map(|r| r.as_ref().err()) {
                if k == 4 {
                    assert_eq!(s.code(), Code::Aborted, "a stale expected version: {s:?}");
                } else {
                    assert_lost_step(&winner, s);
                }
            }
            let h = history(&t, &a.id).await;
            assert_eq!(
                h.len(),
                2 + usize::from(then_rejected),
                "one move: {:?}",
                actions(&h)
            );
            assert_eq!(h[1].to_status(), winner.status());
            if then_rejected {
                assert_rejected_after_return(&h);
            }
        }

        // Town and district steps, mixed decisions, in one burst.
        let mut calls = Vec::new();
        for a in &town_apps {
            for i in 0..10 {
                let (d, r) = mixed(i);
                calls.push((Who::town(i), review_call(&a.id, d, r)));
            }
        }
        for a in &district_apps {
            for i in 0..10 {
                let (d, r) = mixed(i + 1);
                calls.push((Who::district(i), review_call(&a.id, d, r)));
            }
        }
        let results = burst(&t, calls).await;
        let staged = town_apps
            .iter()
            .map(|a| (a, 3))
            .chain(district_apps.iter().map(|a| (a, 4)));
        for ((a, version), rs) in staged.zip(results.chunks(10)) {
            let (winner, then_rejected) = the_step(rs, &format!("step of {}", a.id));
            assert_eq!(winner.version, version);
            assert_eq!(
                winner.status(),
                after_decision(a.status(), decision_of(&winner))
            );
            for s in rs.iter().filter_map(|r| r.as_ref().err()) {
                assert_lost_step(&winner, s);
            }
            let h = history(&t, &a.id).await;
            assert_eq!(
                h.len() as u64,
                version + u64::from(then_rejected),
                "one move: {:?}",
                actions(&h)
            );
            if then_rejected {
                assert_rejected_after_return(&h);
            }
        }

        // Ten resubmissions of each returned application.
        let mut calls = Vec::new();
        for a in &returned {
            for i in 0..10 {
                calls.push((
                    Who::village(i),
                    Call::Resubmit(pb::ResubmitApplicationRequest {
                        request_id: rid(),
                        application_id: a.id.clone(),
                        note: format!("corrected by clerk {i}"),
                        ..Default::default()
                    }),
                ));
            }
        }
        let results = burst(&t, calls).await;
        for (a, rs) in returned.iter().zip(results.chunks(10)) {
            let winner = the_one(rs, "resubmission");
            assert_eq!(winner.status(), pb::Status::VillageReview);
            assert_eq!(winner.version, 3);
            for s in rs.iter().filter_map(|r| r.as_ref().err()) {
                assert_lost_step(&winner, s);
            }
            let h = history(&t, &a.id).await;
            assert_eq!(actions(&h)[1..], ["return", "resubmit"]);
        }

        let all: Vec<String> = [&village_apps, &town_apps, &district_apps, &returned]
            .into_iter()
            .flat_map(|v| ids(v))
            .collect();
        assert_announced_as_recorded(&t, &all).await;
        t.shutdown().await;
    })
    .await;
}

/// The decision a winning review took, read from where it left the application.
fn decision_of(a: &pb::Application) -> pb::Decision {
    match a.status() {
        pb::Status::Rejected => pb::Decision::Reject,
        pb::Status::Returned => pb::Decision::ReturnForCorrection,
        _ => pb::Decision::Approve,
    }
}

// =====================================================================================
// R-IN-6: the bank's races
// =====================================================================================

/// R-IN-6, R-X-2: the bank's races.
/// - Two partner banks decide at once (five core systems each, approvals and rejections) on
///   an application recommended to the first and one recommended to the second: exactly one
///   decision, by the bank it was recommended to; the other bank's calls are `NotFound` (it
///   cannot see it), the recommended bank's other calls `FailedPrecondition` naming R-IN-6.
/// - An approval and four disbursements at once: the approval always lands (a refused
///   disbursement changes nothing); at most one disbursement, and only after the approval
///   (history recommend, bank_approve, disburse; its version one above the approval's), with
///   one `LoanDisbursed`; the others refused naming R-IN-6.
/// - A rejection and four disbursements at once: nothing is paid out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_decisions_and_disbursements_race_into_one_serial_order() {
    bounded(420, async {
        let t = spawn_intake_with_two_banks().await;
        let apps = in_notice(&t, 61..71).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&apps[0].id, BANK).await.expect("recommend");
        t.recommend(&apps[1].id, OTHER_BANK)
            .await
            .expect("recommend");
        for a in &apps[2..] {
            t.recommend(&a.id, BANK).await.expect("recommend");
        }

        // Two banks deciding at once.
        let mut calls = Vec::new();
        for a in &apps[..2] {
            for (bank, n) in [BANK, OTHER_BANK]
                .into_iter()
                .flat_map(|b| (0..5).map(move |n| (b, n)))
            {
                let q = if n % 2 == 0 {
                    approve_req(&a.id, "18000", "0.0435", 12)
                } else {
                    reject_req(&a.id, "no land lease for the project")
                };
                calls.push((Who::bank(bank, n), Call::Decide(q)));
            }
        }
        let results = burst(&t, calls).await;
        for ((a, recommended_to), rs) in apps[..2]
            .iter()
            .zip([BANK, OTHER_BANK])
            .zip(results.chunks(10))
        {
            let winner = the_one(rs, "two banks' decisions");
            assert!(matches!(
                winner.status(),
                pb::Status::BankApproved | pb::Status::BankRejected
            ));
            for (i, r) in rs.iter().enumerate() {
                let bank = if i < 5 { BANK } else { OTHER_BANK };
                match r {
                    Ok(_) => assert_eq!(bank, recommended_to, "only the recommended bank decides"),
                    Err(s) if bank == recommended_to => assert_refused(s, &["R-IN-6"]),
                    Err(s) => assert_eq!(s.code(), Code::NotFound, "{s:?}"),
                }
            }
            let h = history(&t, &a.id).await;
            assert_eq!(
                h.iter().filter(|tr| tr.action.starts_with("bank_")).count(),
                1,
                "{:?}",
                actions(&h)
            );
        }

        // An approval racing with disbursements (apps 2-7), a rejection racing with them (8-9).
        let mut calls = Vec::new();
        for (k, a) in apps[2..].iter().enumerate() {
            let decision = if k < 6 {
                approve_req(&a.id, "18000", "0.0435", 12)
            } else {
                reject_req(&a.id, "no land lease for the project")
            };
            calls.push((Who::bank(BANK, 0), Call::Decide(decision)));
            for n in 1..5 {
                let account = format!("62284801{k:04}{n:04}");
                calls.push((
                    Who::bank(BANK, n),
                    Call::Disburse(disburse_req(&a.id, &account, 1_800_000, "2026-03-07")),
                ));
            }
        }
        let results = burst(&t, calls).await;
        let mut paid: HashMap<String, String> = HashMap::new();
        for (k, (a, rs)) in apps[2..].iter().zip(results.chunks(5)).enumerate() {
            let approving = k < 6;
            let decided = rs[0]
                .as_ref()
                .unwrap_or_else(|s| panic!("the decision always lands: {s:?}"))
                .app();
            let payouts: Vec<&pb::Application> = rs[1..]
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(Reply::app)
                .collect();
            for s in rs[1..].iter().filter_map(|r| r.as_ref().err()) {
                assert_refused(s, &["R-IN-6"]);
            }
            let h = history(&t, &a.id).await;
            let now = get(&t, &a.id).await;
            if approving {
                assert!(payouts.len() <= 1, "one payout at most: {payouts:#?}");
                if let Some(p) = payouts.first() {
                    assert_eq!(p.status(), pb::Status::Disbursed);
                    assert_eq!(p.version, decided.version + 1, "paid after the approval");
                    assert_eq!(decided.status(), pb::Status::BankApproved);
                    assert_eq!(decided.version, 6);
                    assert_eq!(actions(&h)[4..], ["recommend", "bank_approve", "disburse"]);
                    assert_eq!(now.status(), pb::Status::Disbursed);
                    let info = p.disbursement.clone().expect("disbursement");
                    paid.insert(a.id.clone(), info.loan_id);
                } else {
                    assert_eq!(actions(&h)[4..], ["recommend", "bank_approve"]);
                    assert_eq!(now.status(), pb::Status::BankApproved);
                }
            } else {
                assert!(
                    payouts.is_empty(),
                    "nothing paid on a rejection: {payouts:#?}"
                );
                assert_eq!(decided.status(), pb::Status::BankRejected);
                assert_eq!(actions(&h)[4..], ["recommend", "bank_reject"]);
            }
        }
        let loans: Vec<pb::LoanDisbursed> = t
            .intake_events(&pb::LoanDisbursed::full_name())
            .await
            .iter()
            .map(Event::decode)
            .collect();
        let announced: HashMap<String, String> = loans
            .iter()
            .map(|l| (l.application_id.clone(), l.loan_id.clone()))
            .collect();
        assert_eq!(
            loans.len(),
            announced.len(),
            "one LoanDisbursed per loan: {loans:#?}"
        );
        assert_eq!(announced, paid, "every payout announced, nothing else");
        println!(
            "bank race: {} of 6 approvals were paid out in the same burst",
            paid.len()
        );
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-5: objections, resolutions and recommendations
// =====================================================================================

/// One application's share of a notice race: three objections (village, town, district) and
/// three recommendations (three district staff), all distinct request ids.
fn notice_race_calls(a: &pb::Application, n: u32) -> Vec<(Who, Call)> {
    vec![
        (
            Who::village(n),
            Call::File(objection_req(&a.id, "the borrower works in the city")),
        ),
        (
            Who::town(n),
            Call::File(objection_req(&a.id, "the project land is leased out")),
        ),
        (
            Who::district(n),
            Call::File(objection_req(&a.id, "reported on the hotline")),
        ),
        (
            Who::district(n + 100),
            Call::Recommend(recommend_req(&a.id, BANK)),
        ),
        (
            Who::district(n + 200),
            Call::Recommend(recommend_req(&a.id, BANK)),
        ),
        (
            Who::district(n + 300),
            Call::Recommend(recommend_req(&a.id, BANK)),
        ),
    ]
}

/// How one application's notice race ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NoticeOutcome {
    Recommended,
    Held,
    Untouched,
}

/// R-IN-5, R-IN-2: the results of [`notice_race_calls`] are those of one serial order. Never
/// a recommendation and an accepted objection both; at most one recommendation; an accepted
/// objection was filed on a notice day and holds the application; a recommendation was made
/// after the notice; every refusal names R-IN-5 (or R-IN-2 for a second recommendation).
async fn assert_notice_race(
    t: &TestIntake,
    a: &pb::Application,
    rs: &[Result<Reply, Status>],
) -> NoticeOutcome {
    let notice_end = day("2026-03-06");
    let filed: Vec<&pb::Objection> = rs[..3]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(Reply::objection)
        .collect();
    let recommended: Vec<&pb::Application> = rs[3..]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(Reply::app)
        .collect();
    for s in rs[..3].iter().filter_map(|r| r.as_ref().err()) {
        assert_refused(s, &["R-IN-5"]);
    }
    for s in rs[3..].iter().filter_map(|r| r.as_ref().err()) {
        if recommended.is_empty() {
            assert_refused(s, &["R-IN-5"]);
        } else {
            assert!(refused_by_one_of(s, &["R-IN-5", "R-IN-2"]), "{s:?}");
        }
    }
    assert!(
        recommended.len() <= 1,
        "{}: recommended twice: {recommended:#?}",
        a.id
    );
    assert!(
        filed.is_empty() || recommended.is_empty(),
        "{}: an objection was accepted and the application recommended: {filed:#?} {recommended:#?}",
        a.id
    );
    let now = get(t, &a.id).await;
    let h = history(t, &a.id).await;
    let listed = t.objections(&a.id).await;
    let mut listed_ids: Vec<&str> = listed.iter().map(|o| o.id.as_str()).collect();
    let mut filed_ids: Vec<&str> = filed.iter().map(|o| o.id.as_str()).collect();
    listed_ids.sort_unstable();
    filed_ids.sort_unstable();
    assert_eq!(
        listed_ids, filed_ids,
        "{}: the accepted objections are stored",
        a.id
    );
    for o in &listed {
        assert_eq!(o.state, "open");
        assert!(
            china_day(&o.filed_at) <= notice_end,
            "{}: objection filed after the notice: {o:?}",
            a.id
        );
    }
    if let Some(r) = recommended.first() {
        assert_eq!(now.status(), pb::Status::Recommended);
        assert_eq!(actions(&h)[4..], ["recommend"]);
        assert!(
            china_day(&h[4].at) > notice_end,
            "recommended during the notice: {:?}",
            h[4]
        );
        assert_eq!(r.version, 5);
        NoticeOutcome::Recommended
    } else if !filed.is_empty() {
        assert_eq!(
            now.status(),
            pb::Status::OnHold,
            "an accepted objection holds it"
        );
        assert_eq!(actions(&h)[4..], ["objection"], "one hold");
        NoticeOutcome::Held
    } else {
        assert_eq!(now.status(), pb::Status::PublicNotice);
        assert_eq!(h.len(), 4);
        NoticeOutcome::Untouched
    }
}

/// R-IN-5, R-IN-2, R-X-2: objections filed at once with recommendations of the same
/// application, three objections and three recommendations each:
/// - on the last notice day (Friday 03-06): every objection is taken and holds it, every
///   recommendation is refused (R-IN-5);
/// - on the first allowed day (Saturday 03-07, just after midnight): every objection is refused
///   (R-IN-5), exactly one recommendation is made;
/// - across the midnight that ends the notice (six rounds of four applications, midnight 2 to
///   20 ms after the release, each application's calls staggered a millisecond apart, every
///   call on its own connection): whatever each call saw, the end state and history are
///   those of one serial order: never recommended with an objection, held only by objections
///   filed on a notice day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objections_and_recommendations_racing_at_the_end_of_the_notice() {
    bounded(480, async {
        let t = spawn_intake().await;
        let last_day = in_notice(&t, 101..105).await;
        let first_day = in_notice(&t, 105..109).await;
        let midnight = in_notice(&t, 111..135).await;
        let mut all = Vec::new();

        t.set_time("2026-03-06T15:00:00+08:00");
        let calls = last_day
            .iter()
            .zip(0..)
            .flat_map(|(a, n)| notice_race_calls(a, n))
            .collect();
        let results = burst(&t, calls).await;
        for (a, rs) in last_day.iter().zip(results.chunks(6)) {
            assert!(
                rs[..3].iter().all(Result::is_ok),
                "objections on the last day: {rs:#?}"
            );
            assert_eq!(assert_notice_race(&t, a, rs).await, NoticeOutcome::Held);
        }
        all.extend(ids(&last_day));

        t.set_time("2026-03-07T00:00:00.200+08:00");
        let calls = first_day
            .iter()
            .zip(0..)
            .flat_map(|(a, n)| notice_race_calls(a, n))
            .collect();
        let results = burst(&t, calls).await;
        for (a, rs) in first_day.iter().zip(results.chunks(6)) {
            assert_eq!(
                assert_notice_race(&t, a, rs).await,
                NoticeOutcome::Recommended
            );
        }
        all.extend(ids(&first_day));

        let mut outcomes: HashMap<NoticeOutcome, usize> = HashMap::new();
        for (round, midnight_ms) in midnight.chunks(4).zip([2u64, 5, 8, 12, 16, 20]) {
            // App k's calls leave 4k ms after the release, objections and recommendations
            // alternating a millisecond apart; midnight falls `midnight_ms` after the release.
            let calls: Vec<_> = round
                .iter()
                .zip(0..)
                .flat_map(|(a, k)| {
                    notice_race_calls(a, k)
                        .into_iter()
                        .enumerate()
                        .map(move |(i, (who, call))| {
                            let slot = if i < 3 { 2 * i } else { 2 * (i - 3) + 1 };
                            (
                                who,
                                call,
                                Duration::from_millis(4 * u64::from(k) + slot as u64),
                            )
                        })
                })
                .collect();
            let results = burst_at(&t, calls, || {
                t.set_time(&format!(
                    "2026-03-06T23:59:59.{:03}+08:00",
                    1000 - midnight_ms
                ));
            })
            .await;
            for (a, rs) in round.iter().zip(results.chunks(6)) {
                *outcomes
                    .entry(assert_notice_race(&t, a, rs).await)
                    .or_default() += 1;
            }
            all.extend(ids(round));
        }
        println!("notice races across midnight: {outcomes:?}");
        assert_announced_as_recorded(&t, &all).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5, README "Objections", R-X-2: a resolution racing with new objections of the same
/// application (held by objection o1 filed on Tuesday; the race on Wednesday, during the
/// notice), two new objections each:
/// - o1 dismissed: whichever goes first, the new objections are taken and keep it held: o1
///   dismissed, the two new ones open, ON_HOLD; the history is either the first hold alone
///   or a release and a new hold;
/// - o1 upheld: the application is rejected; a new objection is either refused (R-IN-5) or
///   taken and superseded; none stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolutions_racing_with_new_objections() {
    bounded(420, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 201..211).await;
        t.set_time("2026-03-03T09:00:00+08:00");
        let mut first = Vec::new();
        for a in &apps {
            let o = t
                .as_village_staff(VILLAGE_A)
                .file_objection(objection_req(&a.id, "the borrower works in the city"))
                .await
                .expect("first objection")
                .into_inner();
            first.push(o);
        }
        t.set_time("2026-03-04T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, (a, o1)) in apps.iter().zip(&first).enumerate() {
            let uphold = k % 2 == 1;
            let resolution = if uphold { "confirmed" } else { "unfounded" };
            calls.push((
                Who::district(k as u32),
                Call::Resolve(resolve_req(&o1.id, uphold, resolution)),
            ));
            calls.push((
                Who::village(k as u32),
                Call::File(objection_req(&a.id, "a second objection")),
            ));
            calls.push((
                Who::town(k as u32),
                Call::File(objection_req(&a.id, "a third objection")),
            ));
        }
        let results = burst(&t, calls).await;
        for (k, ((a, o1), rs)) in apps.iter().zip(&first).zip(results.chunks(3)).enumerate() {
            let uphold = k % 2 == 1;
            let resolved = rs[0]
                .as_ref()
                .unwrap_or_else(|s| panic!("the resolution always lands: {s:?}"))
                .objection();
            let taken: Vec<&pb::Objection> = rs[1..]
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(Reply::objection)
                .collect();
            for s in rs[1..].iter().filter_map(|r| r.as_ref().err()) {
                assert!(uphold, "an objection during the notice refused: {s:?}");
                assert_refused(s, &["R-IN-5"]);
            }
            let states: HashMap<String, String> = t
                .objections(&a.id)
                .await
                .into_iter()
                .map(|o| (o.id, o.state))
                .collect();
            let now = get(&t, &a.id).await;
            let h = history(&t, &a.id).await;
            let open = states.values().filter(|s| *s == "open").count();
            assert_eq!(
                now.status() == pb::Status::OnHold,
                open > 0,
                "{}: held exactly while an objection is open: {states:?} {:?}",
                a.id,
                now.status()
            );
            if uphold {
                assert_eq!(resolved.state, "upheld");
                assert_eq!(now.status(), pb::Status::Rejected);
                assert_eq!(states.get(&o1.id).map(String::as_str), Some("upheld"));
                for o in &taken {
                    assert_eq!(
                        states.get(&o.id).map(String::as_str),
                        Some("superseded"),
                        "a taken objection is closed with the rejection"
                    );
                }
                assert_eq!(states.len(), 1 + taken.len());
                assert_eq!(actions(&h)[4..], ["objection", "objection_upheld"]);
            } else {
                assert_eq!(resolved.state, "dismissed");
                assert_eq!(taken.len(), 2, "both new objections are taken");
                assert_eq!(now.status(), pb::Status::OnHold);
                assert_eq!(states.get(&o1.id).map(String::as_str), Some("dismissed"));
                assert_eq!(open, 2, "{states:?}");
                let tail = actions(&h)[4..].to_vec();
                assert!(
                    tail == ["objection"]
                        || tail == ["objection", "objection_dismissed", "objection"],
                    "{}: {tail:?}",
                    a.id
                );
                if tail.len() == 3 {
                    let new_hold = &h[6].reason;
                    assert!(
                        taken
                            .iter()
                            .any(|o| *new_hold == format!("objection {}", o.id)),
                        "the new hold names a new objection: {new_hold}"
                    );
                }
            }
        }
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5, R-IN-2, R-X-2: after the notice (Saturday 03-07), the dismissal of the objection
/// holding an application races with three recommendations and a late objection: the
/// dismissal always lands; the late objection is always refused (R-IN-5); either a
/// recommendation came after the release (history objection, objection_dismissed,
/// recommend) or every recommendation was refused (R-IN-5, or R-IN-2 behind another) and
/// the application is back in PUBLIC_NOTICE. Never recommended while an objection is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dismissals_racing_with_recommendations() {
    bounded(420, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 301..309).await;
        t.set_time("2026-03-05T09:00:00+08:00");
        let mut held = Vec::new();
        for a in &apps {
            held.push(
                t.as_town_staff(TOWN_A)
                    .file_objection(objection_req(&a.id, "the project land is leased out"))
                    .await
                    .expect("objection")
                    .into_inner(),
            );
        }
        t.set_time("2026-03-07T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, (a, o)) in apps.iter().zip(&held).enumerate() {
            let k = k as u32;
            calls.push((
                Who::district(k),
                Call::Resolve(resolve_req(&o.id, false, "unfounded")),
            ));
            for n in 1..4 {
                calls.push((
                    Who::district(100 * n + k),
                    Call::Recommend(recommend_req(&a.id, BANK)),
                ));
            }
            calls.push((
                Who::village(k),
                Call::File(objection_req(&a.id, "too late")),
            ));
        }
        let results = burst(&t, calls).await;
        let mut made = 0;
        for ((a, o), rs) in apps.iter().zip(&held).zip(results.chunks(5)) {
            let dismissed = rs[0]
                .as_ref()
                .unwrap_or_else(|s| panic!("the dismissal always lands: {s:?}"))
                .objection();
            assert_eq!(dismissed.id, o.id);
            assert_eq!(dismissed.state, "dismissed");
            let late = rs[4].as_ref().expect_err("an objection after the notice");
            assert_refused(late, &["R-IN-5"]);
            let recommended: Vec<&pb::Application> = rs[1..4]
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(Reply::app)
                .collect();
            assert!(recommended.len() <= 1, "{recommended:#?}");
            for s in rs[1..4].iter().filter_map(|r| r.as_ref().err()) {
                if recommended.is_empty() {
                    assert_refused(s, &["R-IN-5"]);
                } else {
                    assert!(refused_by_one_of(s, &["R-IN-5", "R-IN-2"]), "{s:?}");
                }
            }
            let listed = t.objections(&a.id).await;
            assert_eq!(listed.len(), 1, "{listed:?}");
            assert_eq!(listed[0].state, "dismissed");
            let now = get(&t, &a.id).await;
            let h = history(&t, &a.id).await;
            if recommended.is_empty() {
                assert_eq!(now.status(), pb::Status::PublicNotice);
                assert_eq!(actions(&h)[4..], ["objection", "objection_dismissed"]);
            } else {
                made += 1;
                assert_eq!(now.status(), pb::Status::Recommended);
                assert_eq!(
                    actions(&h)[4..],
                    ["objection", "objection_dismissed", "recommend"]
                );
                assert_eq!(recommended[0].version, 7);
            }
        }
        println!(
            "dismissal races: {made} of {} recommended in the burst",
            apps.len()
        );
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-7: complaints
// =====================================================================================

async fn lodged_and_assigned(t: &TestIntake, n: usize, to: &str) -> Vec<pb::Complaint> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = t
            .as_village_staff(VILLAGE_A)
            .lodge_complaint(lodge_req(VILLAGE_A, &format!("complaint {i}")))
            .await
            .expect("lodge")
            .into_inner();
        let c = t
            .as_town_staff(TOWN_A)
            .assign_complaint(assign_req(&c.id, to))
            .await
            .expect("assign")
            .into_inner();
        out.push(c);
    }
    out
}

/// R-IN-7: complaints under concurrency.
/// - The town reassigns a complaint (from village A's department to itself) while the
///   department answers it: exactly one lands. Answered first, the reassignment is refused
///   (R-IN-7, already answered) and the answer stays the department's; reassigned first, the
///   department may no longer answer (`PermissionDenied`) and the complaint is unanswered.
/// - Ten clerks of the department answer one complaint at once: one answer is stored, with
///   its clerk; the nine others are refused (R-IN-7, already answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complaint_assignments_and_answers_race_into_one_serial_order() {
    bounded(300, async {
        let t = spawn_intake().await;
        let raced = lodged_and_assigned(&t, 8, VILLAGE_A).await;
        let mut calls = Vec::new();
        for (k, c) in raced.iter().enumerate() {
            calls.push((Who::town(k as u32), Call::Assign(assign_req(&c.id, TOWN_A))));
            calls.push((
                Who::village(k as u32),
                Call::Answer(answer_req(&c.id, "refunded")),
            ));
        }
        let results = burst(&t, calls).await;
        let mut answered_first = 0;
        for (k, (c, rs)) in raced.iter().zip(results.chunks(2)).enumerate() {
            let (stored_to, answer, by) = complaint_row(&t, &c.id).await;
            match (&rs[0], &rs[1]) {
                (Err(s), Ok(a)) => {
                    answered_first += 1;
                    assert_refused(s, &["R-IN-7"]);
                    assert_eq!(a.complaint().answer, "refunded");
                    assert_eq!(stored_to.as_deref(), Some(VILLAGE_A));
                    assert_eq!(answer.as_deref(), Some("refunded"));
                    assert_eq!(by, Some(Who::village(k as u32).subject));
                }
                (Ok(r), Err(s)) => {
                    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
                    assert_eq!(r.complaint().assigned_to, TOWN_A);
                    assert_eq!(stored_to.as_deref(), Some(TOWN_A));
                    assert_eq!(
                        answer, None,
                        "no answer by an organisation no longer assigned"
                    );
                }
                other => panic!(
                    "{}: exactly one of reassignment and answer: {other:#?}",
                    c.id
                ),
            }
        }
        println!("assignment races: {answered_first} of 8 answered first");

        let answered = lodged_and_assigned(&t, 4, VILLAGE_A).await;
        let mut calls = Vec::new();
        for c in &answered {
            for i in 0..10 {
                calls.push((
                    Who::village(i),
                    Call::Answer(answer_req(&c.id, &format!("answer by clerk {i}"))),
                ));
            }
        }
        let results = burst(&t, calls).await;
        for (c, rs) in answered.iter().zip(results.chunks(10)) {
            let ok: Vec<(usize, &pb::Complaint)> = rs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_ref().ok().map(|r| (i, r.complaint())))
                .collect();
            assert_eq!(ok.len(), 1, "one answer: {rs:#?}");
            let (i, won) = ok[0];
            for s in rs.iter().filter_map(|r| r.as_ref().err()) {
                assert_refused(s, &["R-IN-7"]);
            }
            let (_, answer, by) = complaint_row(&t, &c.id).await;
            assert_eq!(answer.as_deref(), Some(won.answer.as_str()));
            assert_eq!(answer, Some(format!("answer by clerk {i}")));
            assert_eq!(by, Some(Who::village(i as u32).subject));
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-7, R-X-2: late answers racing with deadline scans. Four complaints lodged on Monday
/// 03-02 (due in 10 working days, 03-16) are answered on 03-20 by five clerks each while three
/// scans run: one answer each, and each late complaint is announced overdue exactly once
/// (`ComplaintOverdue`, by a scan or by the late answer, never both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_answers_racing_with_scans_flag_each_complaint_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let late = lodged_and_assigned(&t, 4, VILLAGE_A).await;
        for c in &late {
            assert_eq!(c.due_on, "2026-03-16");
        }
        t.set_time("2026-03-20T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, c) in late.iter().enumerate() {
            for i in 0..5 {
                calls.push((
                    Who::village(i),
                    Call::Answer(answer_req(&c.id, &format!("late answer {k}.{i}"))),
                ));
            }
            if k < 3 {
                calls.push((Who::operator(k as u32), Call::Scan));
            }
        }
        let results = burst(&t, calls).await;
        let mut answers = 0;
        for r in &results {
            match r {
                Ok(Reply::Complaint(_)) => answers += 1,
                Ok(Reply::Scan(_)) => {}
                Ok(other) => panic!("{other:?}"),
                Err(s) => assert_refused(s, &["R-IN-7"]),
            }
        }
        assert_eq!(
            answers,
            late.len(),
            "one answer per complaint: {results:#?}"
        );
        let overdue: Vec<pb::ComplaintOverdue> = t
            .intake_events(&pb::ComplaintOverdue::full_name())
            .await
            .iter()
            .map(Event::decode)
            .collect();
        for c in &late {
            assert_eq!(
                overdue.iter().filter(|e| e.complaint_id == c.id).count(),
                1,
                "{}: overdue announced once: {overdue:#?}",
                c.id
            );
        }
        assert_eq!(overdue.len(), late.len());
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from complaints where answer is null"
            )
            .await,
            0
        );
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Submissions
// =====================================================================================

/// R-IN-1, R-IN-8, R-X-2: thirty submissions for one household at once (distinct request ids;
/// twenty from one clerk, ten from ten others of the same department). The README refuses
/// nothing for a household that already applied (a request id is what makes a retry one
/// application), so each is an application of its own: thirty distinct applications, thirty
/// transitions, thirty `ApplicationSubmitted`, thirty kept keys, and every id answered is one
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_submissions_for_one_household_at_once_are_each_stored_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let resident = resident_id(401);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let calls = (0..30)
            .map(|i| {
                let who = if i < 20 {
                    Who::village(0)
                } else {
                    Who::village(i)
                };
                (
                    who,
                    Call::Submit(household_request(&resident, VILLAGE_A, "10000")),
                )
            })
            .collect();
        let results = burst(&t, calls).await;
        let mut answered = HashSet::new();
        for r in &results {
            let a = r
                .as_ref()
                .unwrap_or_else(|s| panic!("a submission failed: {s:?}"))
                .app();
            assert_eq!(a.status(), pb::Status::VillageReview);
            assert_eq!(a.applicant_id, masked(&resident));
            assert!(answered.insert(a.id.clone()), "two answers name {}", a.id);
        }
        assert_eq!(
            count(&t.pool, "select count(*) from applications").await,
            30
        );
        assert_eq!(count(&t.pool, "select count(*) from transitions").await, 30);
        assert_eq!(keys(&t).await, 30);
        let stored: HashSet<String> =
            sqlx::query_scalar::<_, uuid::Uuid>("select id from applications")
                .fetch_all(&t.pool)
                .await
                .expect("ids")
                .into_iter()
                .map(|u| u.to_string())
                .collect();
        assert_eq!(stored, answered);
        let all: Vec<String> = answered.into_iter().collect();
        assert_announced_as_recorded(&t, &all).await;
        t.shutdown().await;
    })
    .await;
}

/// One submission of a read-model race.
#[derive(Debug)]
struct Attempt {
    worker: usize,
    seq: usize,
    affected: bool,
    request: pb::SubmitApplicationRequest,
    started: Instant,
    ended: Instant,
    result: Result<pb::Application, Status>,
}

/// A change of the read model arriving while submissions keep coming.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Household H is blacklisted (R-CR-10).
    Blacklist,
    /// Town A's lending is suspended by the NPL circuit breaker (R-RK-9).
    Suspension,
    /// Household H's rating drops to B (R-CR-3).
    Downgrade,
}

impl Change {
    fn rule(self) -> &'static str {
        match self {
            Change::Blacklist => "R-CR-10",
            Change::Suspension => "R-RK-9",
            Change::Downgrade => "R-CR-3",
        }
    }

    async fn publish(self, t: &TestIntake, h: &str) {
        match self {
            Change::Blacklist => {
                t.publish_blacklisted("bl-race", h, HOUSEHOLD_KIND).await;
            }
            Change::Suspension => {
                t.publish_npl_exceeded(TOWN_A, 1).await;
            }
            Change::Downgrade => {
                t.publish_rating_effective(
                    h,
                    VILLAGE_A,
                    "B",
                    "10000.00",
                    false,
                    "2024-01-01",
                    "2027-12-31",
                    2,
                )
                .await;
            }
        }
    }

    /// Whether the change is in intake's read model (committed).
    async fn visible(self, t: &TestIntake, h: &str) -> bool {
        let q = match self {
            Change::Blacklist => sqlx::query_scalar::<_, i64>(
                "select count(*) from rm_blacklist where subject_idx = $1 and active",
            )
            .bind(t.subject_index(h)),
            Change::Suspension => sqlx::query_scalar::<_, i64>(
                "select count(*) from rm_suspended_areas where area_code = $1 and suspended",
            )
            .bind(TOWN_A),
            Change::Downgrade => sqlx::query_scalar::<_, i64>(
                "select count(*) from rm_credit_ratings where subject_idx = $1 and grade = 'B'",
            )
            .bind(t.subject_index(h)),
        };
        q.fetch_one(&t.pool).await.expect("read-model probe") == 1
    }
}

/// R-IN-3, R-IN-8, R-X-2: submissions keep coming — eight clerks of village A filing for
/// household H, two clerks of village B (another town) for household G, each clerk one call
/// after the other — while `change` reaches the read model mid-burst. Each submission is
/// decided on one state of the read model:
/// - every answer is an application or a refusal naming exactly the change's rule (never an
///   internal error, UNAVAILABLE or another rule); G is always admitted;
/// - answered before the change was published: admitted; sent after it was visible in the
///   read model: refused (admitted ones were admissible when written);
/// - per clerk, once refused, refused ever after (the read model does not go back);
/// - what was admitted is stored, announced once and replayed (even now); what was refused
///   stores nothing and replays its refusal.
async fn submissions_racing_with(change: Change) {
    let t = spawn_intake().await;
    let h = resident_id(501);
    let g = resident_id(502);
    t.given_credit_household(&h, VILLAGE_A).await;
    t.given_credit_household(&g, VILLAGE_B).await;
    let clerk = |w: usize| {
        if w < 8 {
            Who::village(w as u32)
        } else {
            Who::new(
                format!("village-b-{w}"),
                Role::VillageStaff,
                VILLAGE_B,
                None,
            )
        }
    };
    let done = Arc::new(AtomicUsize::new(0));
    let changed_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..10 {
        let (household, village) = if w < 8 {
            (h.clone(), VILLAGE_A)
        } else {
            (g.clone(), VILLAGE_B)
        };
        let client = connect(&t, &clerk(w)).await;
        let (done, changed_at, attempts) = (done.clone(), changed_at.clone(), attempts.clone());
        workers.push(tokio::spawn(async move {
            let mut after = 0;
            let began = Instant::now();
            for seq in 0.. {
                // The change is seen within seconds; a minute bounds a stuck read model.
                if began.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let request = household_request(&household, village, "10000");
                let started = Instant::now();
                let result = client
                    .clone()
                    .submit_application(request.clone())
                    .await
                    .map(tonic::Response::into_inner);
                let ended = Instant::now();
                attempts.lock().expect("attempts").push(Attempt {
                    worker: w,
                    seq,
                    affected: w < 8,
                    request,
                    started,
                    ended,
                    result,
                });
                done.fetch_add(1, Ordering::SeqCst);
                if changed_at.get().is_some_and(|at| started > *at) {
                    after += 1;
                    if after >= 3 {
                        break;
                    }
                }
            }
        }));
    }
    // Mid-burst: after 30 answers the change is published.
    wait_until("30 submissions answered", || {
        let done = done.clone();
        async move { done.load(Ordering::SeqCst) >= 30 }
    })
    .await;
    // Meanwhile two more requests for H are sent, and sent again, each by four connections
    // of one clerk until after the change: one from just before it is published, one from
    // just after (R-IN-8: one answer throughout, whenever the first attempt was decided).
    let retried_before = household_request(&h, VILLAGE_A, "10000");
    let retriers_before = retry_until_after(&t, &retried_before, &changed_at).await;
    let published_at = Instant::now();
    change.publish(&t, &h).await;
    let retried_after = household_request(&h, VILLAGE_A, "10000");
    let retriers_after = retry_until_after(&t, &retried_after, &changed_at).await;
    // Polled every millisecond, so that "after the change" starts right after its commit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !change.visible(&t, &h).await {
        assert!(
            Instant::now() < deadline,
            "{change:?} not in the read model after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    changed_at.set(Instant::now()).expect("set once");
    let changed = *changed_at.get().expect("set");
    for w in join_all(workers).await {
        w.expect("worker");
    }
    let attempts = std::mem::take(&mut *attempts.lock().expect("attempts"));
    let mut admitted: HashSet<String> = HashSet::new();
    let mut retried = Vec::new();
    for retriers in [retriers_before, retriers_after] {
        let timed: Vec<(Instant, Result<pb::Application, Status>)> = join_all(retriers)
            .await
            .into_iter()
            .flat_map(|r| r.expect("retrier"))
            .collect();
        for (ended, r) in &timed {
            if r.is_err() {
                assert!(
                    *ended >= published_at,
                    "{change:?}: refused before the change was published: {r:?}"
                );
            }
        }
        let retries: Vec<_> = timed.into_iter().map(|(_, r)| r).collect();
        let first = retries[0].clone();
        for r in &retries {
            match (&first, r) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{change:?}: one answer for one request id"),
                (Err(a), Err(b)) => {
                    assert_refused(b, &[change.rule()]);
                    assert_eq!(a.message(), b.message());
                }
                _ => panic!("{change:?}: one request id answered {first:?} and {r:?}"),
            }
        }
        if let Ok(a) = &first {
            admitted.insert(a.id.clone());
        }
        retried.push(format!(
            "{} ({} sends)",
            if first.is_ok() { "admitted" } else { "refused" },
            retries.len()
        ));
    }
    let mut refused = 0;
    let mut refused_clerks = HashSet::new();
    for a in &attempts {
        match &a.result {
            Ok(app) => {
                assert_eq!(app.status(), pb::Status::VillageReview);
                assert!(admitted.insert(app.id.clone()));
                assert!(
                    !refused_clerks.contains(&a.worker),
                    "{change:?}: clerk {} admitted call {} after a refusal",
                    a.worker,
                    a.seq
                );
                if a.affected {
                    assert!(
                        a.started <= changed,
                        "{change:?}: call {} of clerk {} sent {:?} after the change was in the \
                         read model, and admitted",
                        a.seq,
                        a.worker,
                        a.started - changed
                    );
                }
            }
            Err(s) => {
                assert!(a.affected, "{change:?}: G is never refused: {s:?}");
                assert_refused(s, &[change.rule()]);
                assert!(
                    a.ended >= published_at,
                    "{change:?}: refused before the change was published: {s:?}"
                );
                refused_clerks.insert(a.worker);
                refused += 1;
            }
        }
    }
    let before = attempts.iter().filter(|a| a.ended < published_at).count();
    assert!(before >= 30, "{before}");
    assert!(
        refused >= 24,
        "eight clerks, three calls each after the change"
    );
    println!(
        "{change:?} race: {} submissions, {} admitted, {refused} refused; \
         requests sent again and again, from before and after the change: {retried:?}",
        attempts.len(),
        admitted.len(),
    );
    assert_eq!(
        count(&t.pool, "select count(*) from applications").await,
        admitted.len() as i64
    );
    assert_eq!(
        keys(&t).await,
        attempts.len() as i64 + 2,
        "every first result is kept"
    );

    // Every request replays its first result, the change notwithstanding.
    let mut clerks = Vec::new();
    for w in 0..10 {
        clerks.push(connect(&t, &clerk(w)).await);
    }
    let replayed = join_all(attempts.iter().map(|a| {
        let mut c = clerks[a.worker].clone();
        async move {
            let again = c.submit_application(a.request.clone()).await;
            (a, again.map(tonic::Response::into_inner))
        }
    }))
    .await;
    for (a, again) in replayed {
        match (&a.result, again) {
            (Ok(first), Ok(again)) => assert_eq!(&again, first),
            (Err(first), Err(again)) => {
                assert_eq!(again.code(), first.code());
                assert_eq!(again.message(), first.message());
            }
            (first, again) => panic!("replay {again:?} of {first:?}"),
        }
    }
    assert_eq!(
        count(&t.pool, "select count(*) from applications").await,
        admitted.len() as i64
    );
    let all: Vec<String> = admitted.into_iter().collect();
    assert_announced_as_recorded(&t, &all).await;
    t.shutdown().await;
}

/// Four connections of one clerk send `request` again and again, from now until three sends
/// have started after `changed_at` is set; each returns every answer it got, with when.
async fn retry_until_after(
    t: &TestIntake,
    request: &pb::SubmitApplicationRequest,
    changed_at: &Arc<OnceLock<Instant>>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, Result<pb::Application, Status>)>>> {
    let mut retriers = Vec::new();
    for _ in 0..4 {
        let client = connect(t, &Who::village(50)).await;
        let (request, changed_at) = (request.clone(), changed_at.clone());
        retriers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut after = 0;
            let began = Instant::now();
            while after < 3 && began.elapsed() < Duration::from_secs(60) {
                let started = Instant::now();
                let answer = client
                    .clone()
                    .submit_application(request.clone())
                    .await
                    .map(tonic::Response::into_inner);
                answers.push((Instant::now(), answer));
                if changed_at.get().is_some_and(|at| started > *at) {
                    after += 1;
                }
            }
            answers
        }));
    }
    retriers
}

/// R-IN-3, R-CR-10: [`submissions_racing_with`] a blacklisting of H.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_racing_with_a_blacklisting_are_each_decided_on_one_state() {
    bounded(420, submissions_racing_with(Change::Blacklist)).await;
}

/// R-IN-3, R-RK-9: [`submissions_racing_with`] the suspension of H's town.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_racing_with_a_town_suspension_are_each_decided_on_one_state() {
    bounded(420, submissions_racing_with(Change::Suspension)).await;
}

/// R-IN-3, R-CR-3: [`submissions_racing_with`] H's rating dropping to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_racing_with_a_downgrade_are_each_decided_on_one_state() {
    bounded(420, submissions_racing_with(Change::Downgrade)).await;
}

// =====================================================================================
// R-IN-4: overdue alerts racing with the move that leaves the step
// =====================================================================================

/// R-IN-4, R-X-2, README "Overdue steps ... alerted once per step entry: by the scan while the
/// step is pending, or ... by the move that leaves it": six applications submitted on Monday
/// 03-02 (village step due 03-05) are approved by the village on 03-10 while four deadline
/// scans run. Each late village step is announced overdue exactly once
/// (`ApplicationStepOverdue`, step VILLAGE, due 03-05), before the move that left it is
/// announced; nothing else is alerted (the town's step has just begun).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_step_left_while_scans_run_is_alerted_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let apps = at_village(&t, 601..607).await;
        for a in &apps {
            assert_eq!(a.step_due_on, "2026-03-05");
        }
        t.set_time("2026-03-10T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, a) in apps.iter().enumerate() {
            calls.push((
                Who::village(k as u32),
                review_call(&a.id, pb::Decision::Approve, ""),
            ));
            if k < 4 {
                calls.push((Who::operator(k as u32), Call::Scan));
            }
        }
        let results = burst(&t, calls).await;
        let mut flagged_by_scans = 0;
        for r in &results {
            match r
                .as_ref()
                .unwrap_or_else(|s| panic!("every call lands: {s:?}"))
            {
                Reply::Scan(s) => flagged_by_scans += s.newly_overdue,
                Reply::App(a) => assert_eq!(a.status(), pb::Status::TownReview),
                other => panic!("{other:?}"),
            }
        }
        assert!(flagged_by_scans <= 6, "{flagged_by_scans}");
        t.outbox_drained().await;
        let stream = all_events(&t.bus, &format!("{}.intake.>", t.bus.prefix)).await;
        let overdue_name = pb::ApplicationStepOverdue::full_name();
        let changed_name = pb::ApplicationStatusChanged::full_name();
        for a in &apps {
            let mut seen = Vec::new();
            for e in &stream {
                if e.header(fupin_platform::events::headers::CE_TYPE) == Some(&overdue_name) {
                    let o: pb::ApplicationStepOverdue = e.decode();
                    if o.application_id == a.id {
                        assert_eq!(o.step(), pb::Step::Village);
                        assert_eq!(o.due_on, "2026-03-05");
                        seen.push("overdue");
                    }
                } else if e.header(fupin_platform::events::headers::CE_TYPE) == Some(&changed_name)
                {
                    let c: pb::ApplicationStatusChanged = e.decode();
                    if c.application_id == a.id {
                        seen.push("changed");
                    }
                }
            }
            assert_eq!(
                seen,
                ["overdue", "changed"],
                "{}: alerted once, before the move is announced",
                a.id
            );
        }
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-5: every objection resolved at once
// =====================================================================================

/// R-IN-5, README "Objections" (the hold lasts until the last open one is dismissed; an
/// upheld one rejects and supersedes the others), R-X-2: applications held by five objections
/// each, during the notice:
/// - five dismissals at once (five district staff): all land, the hold is released exactly
///   once (one `objection_dismissed` move, by whichever came last), PUBLIC_NOTICE again;
/// - four dismissals and one uphold at once: the uphold lands and rejects; each dismissal
///   either came before it (dismissed) or is refused naming R-IN-5 (superseded); the hold is
///   never released in between (no `objection_dismissed` move).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolving_every_objection_at_once_releases_or_rejects_once() {
    bounded(420, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 701..709).await;
        t.set_time("2026-03-03T09:00:00+08:00");
        let mut filed: Vec<Vec<pb::Objection>> = Vec::new();
        for a in &apps {
            let mut mine = Vec::new();
            for i in 0..5 {
                let mut c = if i % 2 == 0 {
                    t.as_village_staff(VILLAGE_A)
                } else {
                    t.as_town_staff(TOWN_A)
                };
                mine.push(
                    c.file_objection(objection_req(&a.id, &format!("objection {i}")))
                        .await
                        .expect("objection")
                        .into_inner(),
                );
            }
            filed.push(mine);
        }
        t.set_time("2026-03-04T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, mine) in filed.iter().enumerate() {
            for (i, o) in mine.iter().enumerate() {
                let uphold = k >= 4 && i == 2;
                let resolution = if uphold { "confirmed" } else { "unfounded" };
                calls.push((
                    Who::district(i as u32),
                    Call::Resolve(resolve_req(&o.id, uphold, resolution)),
                ));
            }
        }
        let results = burst(&t, calls).await;
        for (k, ((a, mine), rs)) in apps.iter().zip(&filed).zip(results.chunks(5)).enumerate() {
            let states: HashMap<String, String> = t
                .objections(&a.id)
                .await
                .into_iter()
                .map(|o| (o.id, o.state))
                .collect();
            let now = get(&t, &a.id).await;
            let h = history(&t, &a.id).await;
            if k < 4 {
                for r in rs {
                    let o = r
                        .as_ref()
                        .unwrap_or_else(|s| panic!("every dismissal lands: {s:?}"))
                        .objection();
                    assert_eq!(o.state, "dismissed");
                }
                assert!(states.values().all(|s| s == "dismissed"), "{states:?}");
                assert_eq!(
                    now.status(),
                    pb::Status::PublicNotice,
                    "the hold is released"
                );
                assert_eq!(actions(&h)[4..], ["objection", "objection_dismissed"]);
            } else {
                let upheld = rs[2]
                    .as_ref()
                    .unwrap_or_else(|s| panic!("the uphold lands: {s:?}"))
                    .objection();
                assert_eq!(upheld.state, "upheld");
                for (i, (o, r)) in mine.iter().zip(rs).enumerate() {
                    if i == 2 {
                        continue;
                    }
                    match r {
                        Ok(_) => assert_eq!(states[&o.id], "dismissed"),
                        Err(s) => {
                            assert_refused(s, &["R-IN-5"]);
                            assert_eq!(states[&o.id], "superseded");
                        }
                    }
                }
                assert_eq!(now.status(), pb::Status::Rejected);
                assert_eq!(actions(&h)[4..], ["objection", "objection_upheld"]);
            }
        }
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 ("every transition is recorded (who, when, why)"), R-IN-5: objections filed at once
/// on one application are listed oldest first, and their `filed_at` and the history's `at`
/// follow that order: a write reads the clock once it holds the application's lock, not before
/// waiting for it (QA saw an objection filed at .067 listed before one filed at .056).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn times_of_racing_writes_follow_their_order() {
    bounded(300, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 721..725).await;
        t.set_time("2026-03-03T09:00:00+08:00");
        let mut calls = Vec::new();
        for a in &apps {
            for i in 0..8 {
                let who = match i % 3 {
                    0 => Who::village(i),
                    1 => Who::town(i),
                    _ => Who::district(i),
                };
                calls.push((
                    who,
                    Call::File(objection_req(&a.id, &format!("objection {i}"))),
                ));
            }
        }
        for r in burst(&t, calls).await {
            r.expect("every objection is filed during the notice");
        }
        let instant = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap_or_else(|e| panic!("{s:?}: {e}"))
                .to_utc()
        };
        for a in &apps {
            let listed = t.objections(&a.id).await;
            assert_eq!(listed.len(), 8);
            let filed: Vec<_> = listed.iter().map(|o| instant(&o.filed_at)).collect();
            assert!(
                filed.is_sorted(),
                "listed oldest first, filed_at in that order: {filed:?}"
            );
            let at: Vec<_> = history(&t, &a.id)
                .await
                .iter()
                .map(|tr| instant(&tr.at))
                .collect();
            assert!(at.is_sorted(), "the history in time order: {at:?}");
        }
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-8: one request id, one clerk, two areas at once
// =====================================================================================

/// R-IN-8, README "Request ids" (the same id from the same subject acting with another role,
/// area or bank is refused; a clerk moved to another village gets no replay): one clerk's
/// request id sent at once 20 times under a token for village A (where the household and the
/// application are) and 5 times under a token for village A2, on SubmitApplication (group
/// committed) and on ReviewApplication. One effect; every village-A copy gets the same
/// answer; a village-A2 copy never gets it: it is refused as outside its area (it cannot file
/// for or see village A's household) or, once the village-A request holds the id,
/// `INVALID_ARGUMENT` naming `request_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_from_one_clerk_in_two_villages_at_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let resident = resident_id(801);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let here = Who::village(1);
        let moved = Who::new(here.subject.clone(), Role::VillageStaff, VILLAGE_A2, None);
        let check = |results: Vec<Result<Reply, Status>>| -> Reply {
            let first = results[0]
                .clone()
                .unwrap_or_else(|s| panic!("the village-A request: {s:?}"));
            for (i, r) in results.iter().enumerate() {
                if i < COPIES {
                    assert_eq!(r.as_ref().ok(), Some(&first), "village-A copy {i}: {r:?}");
                } else {
                    let s = r
                        .as_ref()
                        .expect_err("no answer for another village's token");
                    assert!(
                        matches!(s.code(), Code::PermissionDenied | Code::NotFound)
                            || (s.code() == Code::InvalidArgument
                                && s.message().starts_with("request_id:")
                                && s.message().contains("[R-IN-8]")),
                        "village-A2 copy {i}: {s:?}"
                    );
                }
            }
            first
        };

        let submit = household_request(&resident, VILLAGE_A, "10000");
        let calls = (0..COPIES + 5)
            .map(|i| {
                let who = if i < COPIES { &here } else { &moved };
                (who.clone(), Call::Submit(submit.clone()))
            })
            .collect();
        let app = check(burst(&t, calls).await).app().clone();
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);

        let approve = review_req(&app.id, pb::Decision::Approve, "");
        let calls = (0..COPIES + 5)
            .map(|i| {
                let who = if i < COPIES { &here } else { &moved };
                (who.clone(), Call::Review(approve.clone()))
            })
            .collect();
        let reviewed = check(burst(&t, calls).await);
        assert_eq!(reviewed.app().status(), pb::Status::TownReview);
        assert_eq!(reviewed.app().version, 2);
        assert_eq!(keys(&t).await, 2, "one kept key per request");
        assert_announced_as_recorded(&t, std::slice::from_ref(&app.id)).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// R-IN-8: a refusal sent twenty times at once
// =====================================================================================

/// R-IN-8 ("the refusal the first attempt got" is its first result), R-IN-5, R-IN-6, R-IN-7:
/// a request refused by a rule, sent 20 times at once under one id, gets one refusal for all
/// copies (the same code and message), kept once, and changes nothing: an objection after
/// the notice (R-IN-5), a recommendation of an application held by an objection (R-IN-5), a
/// disbursement before the bank's decision (R-IN-6), an answer to a complaint not yet
/// assigned (R-IN-7).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_request_sent_twenty_times_at_once_is_refused_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let apps = in_notice(&t, 901..904).await;
        t.set_time("2026-03-03T09:00:00+08:00");
        t.as_village_staff(VILLAGE_A)
            .file_objection(objection_req(&apps[1].id, "the borrower works in the city"))
            .await
            .expect("objection");
        let complaint = t
            .as_village_staff(VILLAGE_A)
            .lodge_complaint(lodge_req(VILLAGE_A, "the loan officer asked for a fee"))
            .await
            .expect("lodge")
            .into_inner();
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&apps[2].id, BANK).await.expect("recommend");

        let cases = [
            (
                Who::village(1),
                Call::File(objection_req(&apps[0].id, "too late")),
                "R-IN-5",
                Some(&apps[0]),
            ),
            (
                Who::district(1),
                Call::Recommend(recommend_req(&apps[1].id, BANK)),
                "R-IN-5",
                Some(&apps[1]),
            ),
            (
                Who::bank(BANK, 1),
                Call::Disburse(disburse_req(
                    &apps[2].id,
                    "6228480100000001",
                    1_800_000,
                    "2026-03-07",
                )),
                "R-IN-6",
                Some(&apps[2]),
            ),
            (
                Who::village(1),
                Call::Answer(answer_req(&complaint.id, "refunded")),
                "R-IN-7",
                None,
            ),
        ];
        for (who, call, rule, app) in cases {
            let before = keys(&t).await;
            let was = match app {
                Some(a) => Some((get(&t, &a.id).await, history(&t, &a.id).await.len())),
                None => None,
            };
            let results = burst(
                &t,
                (0..COPIES).map(|_| (who.clone(), call.clone())).collect(),
            )
            .await;
            let first = results[0].clone().expect_err("refused");
            assert_refused(&first, &[rule]);
            for r in &results {
                let s = r.as_ref().expect_err("every copy is refused");
                assert_eq!(s.code(), first.code());
                assert_eq!(s.message(), first.message(), "one refusal for all copies");
            }
            assert_eq!(
                keys(&t).await,
                before + 1,
                "{rule}: the refusal is kept once"
            );
            let again = send(connect(&t, &who).await, call.clone())
                .await
                .expect_err("still refused");
            assert_eq!(again.message(), first.message());
            if let (Some(a), Some((was, moves))) = (app, was) {
                assert_eq!(get(&t, &a.id).await, was, "{rule}: nothing changed");
                assert_eq!(history(&t, &a.id).await.len(), moves);
            }
        }
        let (_, answer, _) = complaint_row(&t, &complaint.id).await;
        assert_eq!(answer, None);
        assert_announced_as_recorded(&t, &ids(&apps)).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Fifty callers on one application
// =====================================================================================

/// R-IN-2, R-IN-5, R-X-2 at fifty calls at once on one application (more than the service's
/// ten database connections, so calls queue for connections and for the row):
/// - 50 district staff deciding one district step (approve, reject, return): one move (a
///   return may be followed by one rejection, see [`the_step`]), the others refused naming
///   R-IN-2;
/// - on the last notice day, 25 objections and 25 recommendations: every objection taken, one
///   hold, every recommendation refused naming R-IN-5.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_callers_on_one_application_at_once() {
    bounded(300, async {
        let t = spawn_intake().await;
        let at_district = approved_by(&t, [951], 2).await.remove(0);
        let noticed = in_notice(&t, [952]).await.remove(0);

        let calls = (0..50)
            .map(|i| {
                let (d, r) = match i % 3 {
                    0 => (pb::Decision::Approve, ""),
                    1 => (pb::Decision::Reject, "no production project"),
                    _ => (pb::Decision::ReturnForCorrection, "land contract missing"),
                };
                (Who::district(i), review_call(&at_district.id, d, r))
            })
            .collect();
        let results = burst(&t, calls).await;
        let (winner, then_rejected) = the_step(&results, "fifty district decisions");
        assert_eq!(winner.version, 4);
        for s in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_lost_step(&winner, s);
        }
        let h = history(&t, &at_district.id).await;
        assert_eq!(h.len(), 4 + usize::from(then_rejected));
        if then_rejected {
            assert_rejected_after_return(&h);
        }

        t.set_time("2026-03-06T15:00:00+08:00");
        let calls = (0..50)
            .map(|i| {
                if i % 2 == 0 {
                    let who = match i % 3 {
                        0 => Who::village(i),
                        1 => Who::town(i),
                        _ => Who::district(i),
                    };
                    (
                        who,
                        Call::File(objection_req(&noticed.id, &format!("objection {i}"))),
                    )
                } else {
                    (
                        Who::district(i),
                        Call::Recommend(recommend_req(&noticed.id, BANK)),
                    )
                }
            })
            .collect();
        let results = burst(&t, calls).await;
        for (i, r) in results.iter().enumerate() {
            if i % 2 == 0 {
                r.as_ref()
                    .unwrap_or_else(|s| panic!("objection {i}: {s:?}"));
            } else {
                assert_refused(
                    r.as_ref().expect_err("no recommendation during the notice"),
                    &["R-IN-5"],
                );
            }
        }
        let listed = t.objections(&noticed.id).await;
        assert_eq!(listed.len(), 25);
        assert!(listed.iter().all(|o| o.state == "open"));
        assert_eq!(get(&t, &noticed.id).await.status(), pb::Status::OnHold);
        assert_eq!(actions(&history(&t, &noticed.id).await)[4..], ["objection"]);
        assert_announced_as_recorded(&t, &[at_district.id.clone(), noticed.id.clone()]).await;
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Moves racing with the move that allows them
// =====================================================================================

/// R-IN-5, R-IN-6, R-IN-2, R-X-2: a move sent at once with the move that makes it possible
/// lands only if it came second, never on the earlier state:
/// - an objection sent with the district's approval that opens the notice: taken (and the
///   application held, history approve then objection) or refused naming R-IN-5 (not under
///   notice yet, the application then in notice untouched);
/// - the recommendation, the bank's approval and the disbursement all at once: the
///   recommendation always lands; the approval lands only after it (before it the bank cannot
///   see the application: `NotFound`); the payout only after the approval (`NotFound` before
///   the recommendation, R-IN-6 before the approval): the moves made are a prefix of
///   recommend, bank_approve, disburse, in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moves_racing_with_the_move_that_allows_them() {
    bounded(300, async {
        let t = spawn_intake().await;
        let at_district = approved_by(&t, 961..967, 2).await;
        let noticed = in_notice(&t, 971..977).await;

        let mut calls = Vec::new();
        for (k, a) in at_district.iter().enumerate() {
            let k = k as u32;
            calls.push((
                Who::district(k),
                review_call(&a.id, pb::Decision::Approve, ""),
            ));
            calls.push((
                Who::village(k),
                Call::File(objection_req(&a.id, "objection")),
            ));
        }
        let results = burst(&t, calls).await;
        let mut taken = 0;
        for (a, rs) in at_district.iter().zip(results.chunks(2)) {
            let approved = rs[0]
                .as_ref()
                .unwrap_or_else(|s| panic!("the approval always lands: {s:?}"))
                .app();
            assert_eq!(approved.status(), pb::Status::PublicNotice);
            let h = history(&t, &a.id).await;
            let now = get(&t, &a.id).await;
            match &rs[1] {
                Ok(o) => {
                    taken += 1;
                    assert_eq!(o.objection().state, "open");
                    assert_eq!(now.status(), pb::Status::OnHold);
                    assert_eq!(actions(&h)[3..], ["approve", "objection"]);
                }
                Err(s) => {
                    assert_refused(s, &["R-IN-5"]);
                    assert_eq!(now.status(), pb::Status::PublicNotice);
                    assert_eq!(actions(&h)[3..], ["approve"]);
                    assert!(t.objections(&a.id).await.is_empty());
                }
            }
        }
        println!("objections with the opening approval: {taken} of 6 taken");

        t.set_time("2026-03-07T09:00:00+08:00");
        let mut calls = Vec::new();
        for (k, a) in noticed.iter().enumerate() {
            let k = k as u32;
            calls.push((
                Who::district(k),
                Call::Recommend(recommend_req(&a.id, BANK)),
            ));
            calls.push((
                Who::bank(BANK, k),
                Call::Decide(approve_req(&a.id, "18000", "0.0435", 12)),
            ));
            calls.push((
                Who::bank(BANK, 100 + k),
                Call::Disburse(disburse_req(
                    &a.id,
                    &format!("622848010000{k:04}"),
                    1_800_000,
                    "2026-03-07",
                )),
            ));
        }
        let results = burst(&t, calls).await;
        let mut depth = HashMap::new();
        for (a, rs) in noticed.iter().zip(results.chunks(3)) {
            let recommended = rs[0]
                .as_ref()
                .unwrap_or_else(|s| panic!("the recommendation always lands: {s:?}"))
                .app();
            assert_eq!(recommended.version, 5);
            let mut made = vec!["recommend"];
            match &rs[1] {
                Ok(r) => {
                    assert_eq!(r.app().version, 6, "approved after the recommendation");
                    made.push("bank_approve");
                }
                Err(s) => assert_eq!(s.code(), Code::NotFound, "{s:?}"),
            }
            match &rs[2] {
                Ok(r) => {
                    assert_eq!(made.len(), 2, "paid out without an approval");
                    assert_eq!(r.app().version, 7, "paid after the approval");
                    made.push("disburse");
                }
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => assert_refused(s, &["R-IN-6"]),
            }
            let h = history(&t, &a.id).await;
            assert_eq!(actions(&h)[4..], made[..], "{}", a.id);
            *depth.entry(made.len()).or_insert(0) += 1;
        }
        println!("recommend / approve / disburse at once, moves made: {depth:?}");
        let loans = t.intake_events(&pb::LoanDisbursed::full_name()).await;
        assert_eq!(loans.len(), depth.get(&3).copied().unwrap_or(0));
        let all: Vec<String> = ids(&at_district).into_iter().chain(ids(&noticed)).collect();
        assert_announced_as_recorded(&t, &all).await;
        t.shutdown().await;
    })
    .await;
}
