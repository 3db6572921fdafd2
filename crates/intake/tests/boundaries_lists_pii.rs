//! Boundary tests of intake's listings (ListApplications, ListTransitions, ListObjections,
//! ListComplaints, ListRecommendedApplications, GetApplication) and of personal-data masking
//! and its access log (R-CR-11), driven over gRPC as a black box.
//!
//! Paging follows common.proto: `page_size` 1..=200, 0 the default; `page_token` is opaque, to
//! be passed back unchanged. Masking and logging follow README "Personal data (R-CR-11)".

mod common;

use std::collections::{BTreeSet, HashSet};

use common::*;
use fupin_platform::Role;
use fupin_proto::{
    common::v1::{DateRange, PageRequest},
    intake::v1 as pb,
};
use tonic::{Code, Status};
use uuid::Uuid;

// ---- helpers ----

fn page(size: u32, token: &str) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: size,
        page_token: token.to_owned(),
    })
}

/// `InvalidArgument` whose message starts with `field:` (R-X-3).
fn names_field(s: &Status, field: &str) -> bool {
    s.code() == Code::InvalidArgument && s.message().starts_with(&format!("{field}:"))
}

fn assert_names_field(s: &Status, field: &str, what: &str) {
    assert!(
        names_field(s, field),
        "{what}: expected InvalidArgument naming {field}, got {:?} {:?}",
        s.code(),
        s.message()
    );
    assert!(
        s.message().contains("[R-"),
        "{what}: the message names a rule: {:?}",
        s.message()
    );
}

/// Records a problem unless `r` is bad input naming `field`.
fn expect_named<T: std::fmt::Debug>(
    r: Result<T, Status>,
    field: &str,
    what: &str,
    problems: &mut Vec<String>,
) {
    match r {
        Err(s) if names_field(&s, field) => {}
        Err(s) => problems.push(format!(
            "{what}: expected InvalidArgument naming {field}, got {:?} {:?}",
            s.code(),
            s.message()
        )),
        Ok(v) => problems.push(format!(
            "{what}: expected InvalidArgument naming {field}, but it was accepted: {v:?}"
        )),
    }
}

async fn apps_page(
    c: &mut Client,
    req: pb::ListApplicationsRequest,
) -> Result<(Vec<pb::Application>, String), Status> {
    c.list_applications(req).await.map(|r| {
        let r = r.into_inner();
        (
            r.applications,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

/// Every page of a staff listing with `size` rows a page; fails on a repeated token.
async fn all_apps(c: &mut Client, req: pb::ListApplicationsRequest, size: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    let mut tokens = HashSet::new();
    loop {
        let (rows, next) = apps_page(
            c,
            pb::ListApplicationsRequest {
                page: page(size, &token),
                ..req.clone()
            },
        )
        .await
        .unwrap_or_else(|s| panic!("listing {req:?}: {s:?}"));
        assert!(rows.len() <= size as usize, "a page of at most {size}");
        out.extend(rows.into_iter().map(|a| a.id));
        if next.is_empty() {
            let unique: HashSet<&String> = out.iter().collect();
            assert_eq!(
                unique.len(),
                out.len(),
                "a row repeated across pages: {out:?}"
            );
            return out;
        }
        assert!(tokens.insert(next.clone()), "token {next} came twice");
        token = next;
    }
}

fn bank_req(
    size: u32,
    token: &str,
    statuses: &[pb::Status],
    from: &str,
    to: &str,
) -> pb::ListRecommendedApplicationsRequest {
    pb::ListRecommendedApplicationsRequest {
        page: page(size, token),
        statuses: statuses.iter().map(|s| *s as i32).collect(),
        recommended_on: Some(DateRange {
            from: from.to_owned(),
            to: to.to_owned(),
        }),
    }
}

async fn bank_page(
    c: &mut Client,
    req: pb::ListRecommendedApplicationsRequest,
) -> Result<(Vec<pb::Application>, String), Status> {
    c.list_recommended_applications(req).await.map(|r| {
        let r = r.into_inner();
        (
            r.applications,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

/// Every page of the bank's listing, `size` rows a page.
async fn all_bank(c: &mut Client, req: pb::ListRecommendedApplicationsRequest) -> Vec<String> {
    let size = req.page.as_ref().map_or(0, |p| p.page_size);
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let mut r = req.clone();
        r.page = page(size, &token);
        let (rows, next) = bank_page(c, r)
            .await
            .unwrap_or_else(|s| panic!("bank listing {req:?}: {s:?}"));
        out.extend(rows.into_iter().map(|a| a.id));
        if next.is_empty() {
            let unique: HashSet<&String> = out.iter().collect();
            assert_eq!(
                unique.len(),
                out.len(),
                "a row repeated across pages: {out:?}"
            );
            return out;
        }
        token = next;
    }
}

async fn transitions_page(
    c: &mut Client,
    app: &str,
    size: u32,
    token: &str,
) -> Result<(Vec<pb::Transition>, String), Status> {
    c.list_transitions(pb::ListTransitionsRequest {
        application_id: app.to_owned(),
        page: page(size, token),
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (
            r.transitions,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

async fn objections_page(
    c: &mut Client,
    app: &str,
    size: u32,
    token: &str,
) -> Result<(Vec<pb::Objection>, String), Status> {
    c.list_objections(pb::ListObjectionsRequest {
        application_id: app.to_owned(),
        page: page(size, token),
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (
            r.objections,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

async fn complaints_page(
    c: &mut Client,
    size: u32,
    token: &str,
) -> Result<(Vec<pb::Complaint>, String), Status> {
    c.list_complaints(pb::ListComplaintsRequest {
        page: page(size, token),
        unanswered_past_deadline_only: false,
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (
            r.complaints,
            r.page.map(|p| p.next_page_token).unwrap_or_default(),
        )
    })
}

fn objection_req(app: &str, objector: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: app.to_owned(),
        objector: objector.to_owned(),
        content: "the household already has a loan with another bank".into(),
    }
}

fn complaint_req(area: &str, complainant: &str) -> pb::LodgeComplaintRequest {
    pb::LodgeComplaintRequest {
        request_id: rid(),
        complainant: complainant.to_owned(),
        content: "the village did not post the notice".into(),
        area_code: area.to_owned(),
        application_id: String::new(),
    }
}

fn reject_req(id: &str, reason: &str) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        approved: false,
        approved_amount: None,
        annual_rate: String::new(),
        term_months: 0,
        rejection_reason: reason.to_owned(),
    }
}

/// What, statuses, from, to, the expected ids: one bank listing.
type BankCase<'a> = (&'a str, Vec<pb::Status>, &'a str, &'a str, Vec<String>);

/// What, role, own area, area filter, statuses, step, overdue only: one staff listing.
type StaffCase<'a> = (
    &'a str,
    Role,
    &'a str,
    &'a str,
    Vec<pb::Status>,
    pb::Step,
    bool,
);

/// rpc, role, caller, application, complaint, fields: the access log, oldest first.
type LogRow = (
    String,
    String,
    String,
    Option<Uuid>,
    Option<Uuid>,
    Vec<String>,
);

async fn access_log(t: &TestIntake) -> Vec<LogRow> {
    sqlx::query_as(
        "select rpc, role, caller, application_id, complaint_id, fields
         from pii_access_log order by id",
    )
    .fetch_all(&t.pool)
    .await
    .expect("access log")
}

async fn log_len(t: &TestIntake) -> usize {
    access_log(t).await.len()
}

fn fields(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| (*s).to_owned()).collect()
}

fn uuid_of(id: &str) -> Option<Uuid> {
    Some(Uuid::parse_str(id).expect("an id"))
}

/// A credit household's application walked to public notice and recommended to `bank` on
/// `day` (YYYY-MM-DD, after the notice of 2026-03-02 ended on 03-06).
async fn recommended_on(t: &TestIntake, app: &pb::Application, bank: &str, day: &str) {
    t.set_time(&format!("{day}T09:00:00+08:00"));
    t.recommend(&app.id, bank)
        .await
        .unwrap_or_else(|s| panic!("recommend {} on {day}: {s:?}", app.id));
}

/// A 17-digit body of district 410311 whose check character is `X` (born 1980-05-01).
fn resident_id_ending_in_x() -> String {
    (0..1000)
        .map(resident_id)
        .find(|r| r.ends_with('X'))
        .expect("some sequence number has check character X")
}

// ---- paging: page sizes and tokens (R-X-3) ----

/// R-X-3: a listing whose step and status filters cannot both hold is still a request whose
/// paging is checked: page_size 201 (or u32::MAX) and a made-up token are bad input naming
/// `page.page_size` / `page.page_token`, as they are for the same listing without the
/// contradiction, never silently an empty page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contradictory_step_and_status_filters_still_validate_paging() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(601);
        t.given_credit_household(&r, VILLAGE_A).await;
        t.submit_household(&r, VILLAGE_A, "1000").await;
        let mut district = t.as_district_staff();
        let filtered = |step: pb::Step, p: Option<PageRequest>| pb::ListApplicationsRequest {
            page: p,
            statuses: vec![pb::Status::VillageReview as i32],
            step: step as i32,
            ..Default::default()
        };
        // Consistent filters: the paging is checked.
        let s = apps_page(&mut district, filtered(pb::Step::Village, page(201, "")))
            .await
            .unwrap_err();
        assert_names_field(&s, "page.page_size", "consistent filters, 201");
        // Contradictory filters and good paging: an empty page without a next token.
        let (rows, next) = apps_page(&mut district, filtered(pb::Step::Town, page(10, "")))
            .await
            .expect("contradictory filters are a valid query");
        assert!(rows.is_empty() && next.is_empty(), "{rows:?} {next:?}");

        let mut problems = Vec::new();
        for (what, p, field) in [
            ("page_size 201", page(201, ""), "page.page_size"),
            ("page_size u32::MAX", page(u32::MAX, ""), "page.page_size"),
            (
                "a made-up token",
                page(10, "not-a-token"),
                "page.page_token",
            ),
        ] {
            expect_named(
                apps_page(&mut district, filtered(pb::Step::Town, p)).await,
                field,
                &format!("step TOWN with status VILLAGE_REVIEW, {what}"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3: on every listing, a page token that is garbage, a real token cut short or extended
/// by one character, padded with a space, or a real token re-encoded (base64) is bad input
/// naming `page.page_token`; a page size of u32::MAX names `page.page_size`. Never INTERNAL,
/// never a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_page_tokens_and_sizes_are_bad_input_on_every_listing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(611);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        t.submit_household(&r, VILLAGE_A, "1000").await;
        let mut district = t.as_district_staff();
        let (_, real) = apps_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(1, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(!real.is_empty(), "two rows, one a page: a next token");
        let bad_tokens = [
            ("garbage", "not-a-token".to_owned()),
            ("cut short", real[..real.len() - 1].to_owned()),
            ("one more character", format!("{real}0")),
            ("padded with a space", format!(" {real}")),
            ("a trailing newline", format!("{real}\n")),
            (
                "base64 of a token",
                "MDE5NWQ2YjAtMDAwMC03MDAwLTgwMDAtMDAwMDAwMDAwMDAw".to_owned(),
            ),
            (
                "base64 JSON",
                "eyJhZnRlciI6IjAxOTVkNmIwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMCIsImZpbHRlciI6IngifQ=="
                    .to_owned(),
            ),
            (
                "percent-encoded",
                format!("%{:02X}{}", real.as_bytes()[0], &real[1..]),
            ),
        ];
        let mut bank = t.as_bank(BANK);
        let mut problems = Vec::new();
        for (what, token) in &bad_tokens {
            expect_named(
                apps_page(
                    &mut district,
                    pb::ListApplicationsRequest {
                        page: page(10, token),
                        ..Default::default()
                    },
                )
                .await,
                "page.page_token",
                &format!("applications, {what}"),
                &mut problems,
            );
            expect_named(
                transitions_page(&mut district, &app.id, 10, token).await,
                "page.page_token",
                &format!("transitions, {what}"),
                &mut problems,
            );
            expect_named(
                objections_page(&mut district, &app.id, 10, token).await,
                "page.page_token",
                &format!("objections, {what}"),
                &mut problems,
            );
            expect_named(
                complaints_page(&mut district, 10, token).await,
                "page.page_token",
                &format!("complaints, {what}"),
                &mut problems,
            );
            expect_named(
                bank_page(&mut bank, bank_req(10, token, &[], "", "")).await,
                "page.page_token",
                &format!("recommended, {what}"),
                &mut problems,
            );
        }
        let huge = u32::MAX;
        expect_named(
            apps_page(
                &mut district,
                pb::ListApplicationsRequest {
                    page: page(huge, ""),
                    ..Default::default()
                },
            )
            .await,
            "page.page_size",
            "applications, u32::MAX",
            &mut problems,
        );
        expect_named(
            transitions_page(&mut district, &app.id, huge, "").await,
            "page.page_size",
            "transitions, u32::MAX",
            &mut problems,
        );
        expect_named(
            objections_page(&mut district, &app.id, huge, "").await,
            "page.page_size",
            "objections, u32::MAX",
            &mut problems,
        );
        expect_named(
            complaints_page(&mut district, huge, "").await,
            "page.page_size",
            "complaints, u32::MAX",
            &mut problems,
        );
        expect_named(
            bank_page(&mut bank, bank_req(huge, "", &[], "", "")).await,
            "page.page_size",
            "recommended, u32::MAX",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3 with common.proto ("`page_token` is opaque: pass back `next_page_token` unchanged";
/// the service's own refusal says "not a token returned by this API"): a well-formed token
/// the API never returned — the nil and the max UUID, a random one, an application's id — is
/// forged input, refused naming `page.page_token`, not taken as a position to list from.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn well_formed_tokens_the_api_never_returned_are_refused() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(621);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut apps = Vec::new();
        for _ in 0..3 {
            apps.push(t.submit_household(&r, VILLAGE_A, "1000").await);
        }
        let mut district = t.as_district_staff();
        let forged = [
            ("the nil UUID", Uuid::nil().to_string()),
            (
                "the max UUID",
                "ffffffff-ffff-ffff-ffff-ffffffffffff".to_owned(),
            ),
            (
                "a random UUID",
                "6f1c2a3e-8d4b-4c5a-9e7f-0a1b2c3d4e5f".to_owned(),
            ),
            ("the first application's id", apps[0].id.clone()),
            (
                "the first application's id, braced",
                format!("{{{}}}", apps[0].id),
            ),
            (
                "the first application's id as a URN",
                format!("urn:uuid:{}", apps[0].id),
            ),
        ];
        let mut problems = Vec::new();
        for (what, token) in &forged {
            expect_named(
                apps_page(
                    &mut district,
                    pb::ListApplicationsRequest {
                        page: page(10, token),
                        ..Default::default()
                    },
                )
                .await
                .map(|(rows, next)| (rows.len(), next)),
                "page.page_token",
                &format!("applications, {what}"),
                &mut problems,
            );
            expect_named(
                complaints_page(&mut district, 10, token)
                    .await
                    .map(|(rows, next)| (rows.len(), next)),
                "page.page_token",
                &format!("complaints, {what}"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3 with common.proto (the token is opaque and passed back unchanged, i.e. to the same
/// listing with the same query): a token issued for one listing is refused naming
/// `page.page_token` when sent with other filters, to another listing, or for another
/// application's history, instead of silently starting the new query in the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_reused_with_other_filters_or_on_another_listing_is_refused() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(631);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut apps = Vec::new();
        for _ in 0..4 {
            apps.push(t.submit_household(&r, VILLAGE_A, "1000").await);
        }
        // Two in town review, two in village review.
        for a in &apps[..2] {
            review(
                &mut t.as_village_staff(VILLAGE_A),
                &a.id,
                pb::Decision::Approve,
                "",
            )
            .await;
        }
        let mut district = t.as_district_staff();
        let only = |s: pb::Status, p| pb::ListApplicationsRequest {
            page: p,
            statuses: vec![s as i32],
            ..Default::default()
        };
        let (first, village_token) =
            apps_page(&mut district, only(pb::Status::VillageReview, page(1, "")))
                .await
                .unwrap();
        assert_eq!(first.len(), 1);
        assert!(!village_token.is_empty());
        let (_, tr_token) = transitions_page(&mut district, &apps[0].id, 1, "")
            .await
            .unwrap();
        assert!(!tr_token.is_empty(), "submit + approve: two transitions");

        let mut problems = Vec::new();
        expect_named(
            apps_page(
                &mut district,
                only(pb::Status::TownReview, page(1, &village_token)),
            )
            .await
            .map(|(rows, _)| rows.into_iter().map(|a| a.id).collect::<Vec<_>>()),
            "page.page_token",
            "the village-review listing's token with status TOWN_REVIEW",
            &mut problems,
        );
        expect_named(
            apps_page(
                &mut district,
                pb::ListApplicationsRequest {
                    page: page(1, &village_token),
                    area_code: VILLAGE_A2.into(),
                    ..Default::default()
                },
            )
            .await
            .map(|(rows, _)| rows.len()),
            "page.page_token",
            "the district listing's token with another area",
            &mut problems,
        );
        expect_named(
            complaints_page(&mut district, 1, &village_token)
                .await
                .map(|(rows, _)| rows.len()),
            "page.page_token",
            "an applications token on ListComplaints",
            &mut problems,
        );
        expect_named(
            objections_page(&mut district, &apps[0].id, 1, &tr_token)
                .await
                .map(|(rows, _)| rows.len()),
            "page.page_token",
            "a transitions token on ListObjections",
            &mut problems,
        );
        expect_named(
            transitions_page(&mut district, &apps[1].id, 1, &tr_token)
                .await
                .map(|(rows, _)| rows.len()),
            "page.page_token",
            "one application's transitions token on another application",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

// ---- R-IN-6: the bank's date filter ----

/// R-X-3, R-IN-6: a recommendation date the database cannot hold (a year thousands of years
/// BC, which a lenient date parser reads) is bad input naming the field, or at worst an empty
/// page; never INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recommendation_dates_out_of_range_are_never_internal() {
    bounded(60, async {
        let t = spawn_intake().await;
        let mut bank = t.as_bank(BANK);
        let mut problems = Vec::new();
        for (what, from, to, field) in [
            ("from 5000 BC", "-5000-01-01", "", "recommended_on.from"),
            ("to 5000 BC", "", "-5000-01-01", "recommended_on.to"),
            (
                "from year -200000",
                "-200000-01-01",
                "2026-03-08",
                "recommended_on.from",
            ),
            (
                "to year +262143",
                "2026-03-08",
                "+262143-12-31",
                "recommended_on.to",
            ),
        ] {
            match bank_page(&mut bank, bank_req(0, "", &[], from, to)).await {
                Ok((rows, _)) if rows.is_empty() => {}
                Ok((rows, _)) => problems.push(format!("{what}: listed {rows:?}")),
                Err(s) if names_field(&s, field) => {}
                Err(s) => problems.push(format!("{what}: {:?} {:?}", s.code(), s.message())),
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-6 (proto: "Recommendation date range (YYYY-MM-DD, China time)"): dates not
/// written YYYY-MM-DD are bad input naming the end they are in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recommendation_dates_must_be_written_yyyy_mm_dd() {
    bounded(60, async {
        let t = spawn_intake().await;
        let mut bank = t.as_bank(BANK);
        let mut problems = Vec::new();
        for bad in [
            "2026-3-8",
            "2026-03-8",
            "+2026-03-08",
            " 2026-03-08",
            "2026-03-08 ",
            "20260308",
            "2026/03/08",
            "2026-03-08T00:00:00+08:00",
            "2026-02-29",
        ] {
            expect_named(
                bank_page(&mut bank, bank_req(0, "", &[], bad, "")).await,
                "recommended_on.from",
                &format!("from {bad:?}"),
                &mut problems,
            );
            expect_named(
                bank_page(&mut bank, bank_req(0, "", &[], "", bad)).await,
                "recommended_on.to",
                &format!("to {bad:?}"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{problems:#?}");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6 (common.proto: the date range is half-open, from inclusive, to exclusive): status
/// and date filters combine, and paging one row at a time gives exactly the single-page
/// result for every combination.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_status_and_date_filters_combine_and_page_exactly() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut apps = Vec::new();
        for n in 641..645 {
            let r = resident_id(n);
            t.given_credit_household(&r, VILLAGE_A).await;
            let a = t.submit_household(&r, VILLAGE_A, "20000").await;
            t.approve_to_notice(&a).await;
            apps.push(a);
        }
        let days = ["2026-03-07", "2026-03-07", "2026-03-08", "2026-03-09"];
        for (a, day) in apps.iter().zip(days) {
            recommended_on(&t, a, BANK, day).await;
        }
        let mut bank = t.as_bank(BANK);
        bank.record_bank_decision(approve_req(&apps[0].id, "20000", "0.0435", 12))
            .await
            .expect("approve the first");
        bank.record_bank_decision(reject_req(&apps[2].id, "insufficient repayment capacity"))
            .await
            .expect("reject the third");
        let id = |i: usize| apps[i].id.clone();
        use pb::Status::{BankApproved, BankRejected, Recommended};
        let cases: Vec<BankCase> = vec![
            ("everything", vec![], "", "", (0..4).map(id).collect()),
            (
                "decided, 03-07 to 03-09",
                vec![BankApproved, BankRejected],
                "2026-03-07",
                "2026-03-09",
                vec![id(0), id(2)],
            ),
            (
                "undecided from 03-08",
                vec![Recommended],
                "2026-03-08",
                "",
                vec![id(3)],
            ),
            (
                "undecided on 03-07",
                vec![Recommended],
                "2026-03-07",
                "2026-03-08",
                vec![id(1)],
            ),
            (
                "before 03-07 (exclusive end)",
                vec![],
                "",
                "2026-03-07",
                vec![],
            ),
            (
                "from 03-09 (inclusive start)",
                vec![],
                "2026-03-09",
                "",
                vec![id(3)],
            ),
            (
                "to 03-09 (exclusive end)",
                vec![],
                "",
                "2026-03-09",
                vec![id(0), id(1), id(2)],
            ),
            (
                "rejected on 03-07",
                vec![BankRejected],
                "2026-03-07",
                "2026-03-08",
                vec![],
            ),
        ];
        for (what, statuses, from, to, want) in cases {
            for size in [1, 2, 0] {
                let mut got = all_bank(&mut bank, bank_req(size, "", &statuses, from, to)).await;
                got.sort();
                let mut want = want.clone();
                want.sort();
                assert_eq!(got, want, "{what}, page size {size}");
            }
        }
        t.shutdown().await;
    })
    .await;
}

// ---- staff listings: filters combined ----

/// R-IN-2, R-IN-4 (staff list by area, status, step, overdue): every combination of area,
/// statuses, step and overdue lists exactly the applications of the caller's full listing
/// that match, page by page without repeats; an overdue listing shows only applications
/// flagged overdue with a due date before today, and every flagged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn combined_staff_filters_match_the_full_listing_page_by_page() {
    bounded(180, async {
        let t = spawn_intake().await;
        let (ra, ra2, rb) = (resident_id(651), resident_id(652), resident_id(653));
        t.given_credit_household(&ra, VILLAGE_A).await;
        t.given_credit_household(&ra2, VILLAGE_A2).await;
        t.given_credit_household(&rb, VILLAGE_B).await;
        // Monday 03-02.
        let a1 = t.submit_household(&ra, VILLAGE_A, "1000").await;
        let a2 = t.submit_household(&ra, VILLAGE_A, "1000").await;
        let a3 = t.submit_household(&ra2, VILLAGE_A2, "1000").await;
        let a4 = t.submit_household(&ra, VILLAGE_A, "1000").await;
        let b1 = t.submit_household(&rb, VILLAGE_B, "1000").await;
        let b2 = t.submit_household(&rb, VILLAGE_B, "1000").await;
        let mut va = t.as_village_staff(VILLAGE_A);
        let mut va2 = t.as_village_staff(VILLAGE_A2);
        let mut ta = t.as_town_staff(TOWN_A);
        review(&mut va, &a2.id, pb::Decision::Approve, "").await;
        review(&mut va2, &a3.id, pb::Decision::Approve, "").await;
        review(&mut ta, &a3.id, pb::Decision::Approve, "").await;
        review(&mut va, &a4.id, pb::Decision::Approve, "").await;
        review(
            &mut ta,
            &a4.id,
            pb::Decision::ReturnForCorrection,
            "plan missing",
        )
        .await;
        review(
            &mut t.as_village_staff(VILLAGE_B),
            &b2.id,
            pb::Decision::Reject,
            "moved away",
        )
        .await;
        // Monday 03-09: the village and town steps entered on 03-02 are overdue; new ones not.
        t.set_time("2026-03-09T09:00:00+08:00");
        let a5 = t.submit_household(&ra, VILLAGE_A, "1000").await;
        let b3 = t.submit_household(&rb, VILLAGE_B, "1000").await;
        let all_ids: BTreeSet<String> = [&a1, &a2, &a3, &a4, &a5, &b1, &b2, &b3]
            .iter()
            .map(|a| a.id.clone())
            .collect();

        let mut district = t.as_district_staff();
        let (full, next) = apps_page(
            &mut district,
            pb::ListApplicationsRequest {
                page: page(200, ""),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(next, "");
        assert_eq!(
            full.iter().map(|a| a.id.clone()).collect::<BTreeSet<_>>(),
            all_ids
        );
        let overdue: BTreeSet<String> = full
            .iter()
            .filter(|a| a.overdue)
            .map(|a| a.id.clone())
            .collect();
        assert_eq!(
            overdue,
            [&a1, &a2, &b1].iter().map(|a| a.id.clone()).collect(),
            "village and town steps entered 03-02 are overdue on 03-09"
        );
        for a in full.iter().filter(|a| a.overdue) {
            assert!(
                !a.step_due_on.is_empty() && a.step_due_on.as_str() < "2026-03-09",
                "{a:?}"
            );
        }

        use pb::Status::*;
        let cases: Vec<StaffCase> = vec![
            (
                "district overdue",
                Role::DistrictStaff,
                DISTRICT,
                "",
                vec![],
                pb::Step::Unspecified,
                true,
            ),
            (
                "district, town A, village step, overdue",
                Role::DistrictStaff,
                DISTRICT,
                TOWN_A,
                vec![],
                pb::Step::Village,
                true,
            ),
            (
                "district, village+town review, overdue",
                Role::DistrictStaff,
                DISTRICT,
                "",
                vec![VillageReview, TownReview],
                pb::Step::Unspecified,
                true,
            ),
            (
                "district, village step with village review or rejected",
                Role::DistrictStaff,
                DISTRICT,
                "",
                vec![VillageReview, Rejected],
                pb::Step::Village,
                false,
            ),
            (
                "district, town B, rejected",
                Role::DistrictStaff,
                DISTRICT,
                TOWN_B,
                vec![Rejected],
                pb::Step::Unspecified,
                false,
            ),
            (
                "district, district review, overdue",
                Role::DistrictStaff,
                DISTRICT,
                "",
                vec![DistrictReview],
                pb::Step::Unspecified,
                true,
            ),
            (
                "district, bank step",
                Role::DistrictStaff,
                DISTRICT,
                "",
                vec![],
                pb::Step::Bank,
                false,
            ),
            (
                "town A, village step",
                Role::TownStaff,
                TOWN_A,
                "",
                vec![],
                pb::Step::Village,
                false,
            ),
            (
                "town A, village A2, district step",
                Role::TownStaff,
                TOWN_A,
                VILLAGE_A2,
                vec![],
                pb::Step::District,
                false,
            ),
            (
                "town A, returned or rejected",
                Role::TownStaff,
                TOWN_A,
                "",
                vec![Returned, Rejected],
                pb::Step::Unspecified,
                false,
            ),
            (
                "town A, overdue",
                Role::TownStaff,
                TOWN_A,
                "",
                vec![],
                pb::Step::Unspecified,
                true,
            ),
            (
                "village A, overdue",
                Role::VillageStaff,
                VILLAGE_A,
                "",
                vec![],
                pb::Step::Unspecified,
                true,
            ),
            (
                "village A, everything",
                Role::VillageStaff,
                VILLAGE_A,
                "",
                vec![],
                pb::Step::Unspecified,
                false,
            ),
            (
                "village A, village A, town step, overdue",
                Role::VillageStaff,
                VILLAGE_A,
                VILLAGE_A,
                vec![TownReview],
                pb::Step::Town,
                true,
            ),
        ];
        for (what, role, own, area, statuses, step, overdue_only) in cases {
            let scope = if area.is_empty() { own } else { area };
            let mut want: Vec<String> = full
                .iter()
                .filter(|a| a.area_code.starts_with(scope))
                .filter(|a| statuses.is_empty() || statuses.contains(&a.status()))
                .filter(|a| step == pb::Step::Unspecified || a.current_step() == step)
                .filter(|a| !overdue_only || a.overdue)
                .map(|a| a.id.clone())
                .collect();
            want.sort();
            let mut c = t.as_caller(&format!("staff-{own}"), role, own, None);
            let req = pb::ListApplicationsRequest {
                page: None,
                area_code: area.to_owned(),
                statuses: statuses.iter().map(|s| *s as i32).collect(),
                step: step as i32,
                overdue_only,
            };
            for size in [1, 2, 200] {
                let mut got = all_apps(&mut c, req.clone(), size).await;
                got.sort();
                assert_eq!(got, want, "{what}, page size {size}");
            }
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, R-IN-5, R-IN-6, R-IN-7 (common.proto: "Empty when there are no more results"):
/// listings with nothing to show answer an empty page without a next token, for every tier
/// and every listing, with and without filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_listings_are_empty_pages_without_a_token() {
    bounded(60, async {
        let t = spawn_intake().await;
        for (who, mut c) in [
            ("village", t.as_village_staff(VILLAGE_A)),
            ("town", t.as_town_staff(TOWN_B)),
            ("district", t.as_district_staff()),
        ] {
            for req in [
                pb::ListApplicationsRequest::default(),
                pb::ListApplicationsRequest {
                    page: page(1, ""),
                    overdue_only: true,
                    step: pb::Step::Bank as i32,
                    ..Default::default()
                },
            ] {
                let (rows, next) = apps_page(&mut c, req).await.expect(who);
                assert!(rows.is_empty() && next.is_empty(), "{who}: {rows:?} {next}");
            }
            let (rows, next) = complaints_page(&mut c, 1, "").await.expect(who);
            assert!(rows.is_empty() && next.is_empty(), "{who}: {rows:?} {next}");
        }
        let (rows, next) = bank_page(
            &mut t.as_bank(BANK),
            bank_req(1, "", &[pb::Status::Disbursed], "2026-01-01", ""),
        )
        .await
        .unwrap();
        assert!(rows.is_empty() && next.is_empty());
        let r = resident_id(661);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "1000").await;
        let (rows, next) = objections_page(&mut t.as_district_staff(), &app.id, 1, "")
            .await
            .unwrap();
        assert!(rows.is_empty() && next.is_empty(), "{rows:?} {next}");
        let (rows, next) = transitions_page(&mut t.as_district_staff(), &app.id, 1, "")
            .await
            .unwrap();
        assert_eq!((rows.len(), next.as_str()), (1, ""), "the submission only");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3: ids that are not ids are bad input naming the field (`id`, `application_id`) on
/// every read; a well-formed id of nothing is not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_ids_on_reads_are_bad_input() {
    bounded(60, async {
        let t = spawn_intake().await;
        let mut district = t.as_district_staff();
        let mut problems = Vec::new();
        for bad in [
            "",
            "abc",
            "0195d6b0-0000-7000-8000-00000000000",
            "' or 1=1 --",
        ] {
            expect_named(
                t.get_as(&mut district, bad).await,
                "id",
                &format!("GetApplication {bad:?}"),
                &mut problems,
            );
            expect_named(
                transitions_page(&mut district, bad, 0, "").await,
                "application_id",
                &format!("ListTransitions {bad:?}"),
                &mut problems,
            );
            expect_named(
                objections_page(&mut district, bad, 0, "").await,
                "application_id",
                &format!("ListObjections {bad:?}"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{problems:#?}");
        let nothing = Uuid::now_v7().to_string();
        assert_eq!(
            t.get_as(&mut district, &nothing).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            transitions_page(&mut district, &nothing, 0, "")
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            objections_page(&mut district, &nothing, 0, "")
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-8: every write given an id that is not one, and the fields of the writes that
/// are checked only once the object is loaded (a bank id, an organisation's area, a corrected
/// name or phone with a NUL), is INVALID_ARGUMENT naming the field and the rule, and keeps
/// nothing (no request id, no row).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_ids_and_fields_on_writes_are_bad_input_and_keep_nothing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let keys = || count(&t.pool, "select count(*) from idempotency_keys");
        let resident = resident_id(71);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "8000").await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let returned = review(
            &mut village,
            &app.id,
            pb::Decision::ReturnForCorrection,
            "sign",
        )
        .await;
        assert_eq!(returned.status(), pb::Status::Returned);
        let mut district = t.as_district_staff();
        let complaint = lodge(&mut district, TOWN_A, "the station did not answer").await;
        let kept = keys().await;
        let mut problems = Vec::new();
        for bad in [
            "",
            "abc",
            "0195d6b0-0000-7000-8000-00000000000",
            "' or 1=1 --",
        ] {
            let what = |rpc: &str| format!("{rpc} {bad:?}");
            let r = village
                .review_application(review_req(bad, pb::Decision::Approve, ""))
                .await;
            expect_named(
                r,
                "application_id",
                &what("ReviewApplication"),
                &mut problems,
            );
            let r = village
                .resubmit_application(pb::ResubmitApplicationRequest {
                    request_id: rid(),
                    application_id: bad.into(),
                    ..Default::default()
                })
                .await;
            expect_named(
                r,
                "application_id",
                &what("ResubmitApplication"),
                &mut problems,
            );
            let r = district
                .file_objection(objection_req(bad, "村民 张某"))
                .await;
            expect_named(r, "application_id", &what("FileObjection"), &mut problems);
            let r = district
                .resolve_objection(resolve_req(bad, false, "checked"))
                .await;
            expect_named(r, "objection_id", &what("ResolveObjection"), &mut problems);
            let r = district
                .recommend_to_bank(pb::RecommendToBankRequest {
                    request_id: rid(),
                    application_id: bad.into(),
                    bank_id: BANK.into(),
                })
                .await;
            expect_named(r, "application_id", &what("RecommendToBank"), &mut problems);
            let r = district
                .assign_complaint(pb::AssignComplaintRequest {
                    request_id: rid(),
                    complaint_id: bad.into(),
                    organisation_area_code: TOWN_A.into(),
                })
                .await;
            expect_named(r, "complaint_id", &what("AssignComplaint"), &mut problems);
            let r = district
                .answer_complaint(pb::AnswerComplaintRequest {
                    request_id: rid(),
                    complaint_id: bad.into(),
                    answer: "answered".into(),
                })
                .await;
            expect_named(r, "complaint_id", &what("AnswerComplaint"), &mut problems);
        }
        for bank in ["abc\u{0}", &"b".repeat(300)] {
            let r = district
                .recommend_to_bank(pb::RecommendToBankRequest {
                    request_id: rid(),
                    application_id: app.id.clone(),
                    bank_id: bank.into(),
                })
                .await;
            expect_named(
                r,
                "bank_id",
                &format!("RecommendToBank bank_id {bank:.12?}"),
                &mut problems,
            );
        }
        for area in ["41031", "4103111O0", "410311100\u{0}", "999999100"] {
            let r = district
                .assign_complaint(pb::AssignComplaintRequest {
                    request_id: rid(),
                    complaint_id: complaint.id.clone(),
                    organisation_area_code: area.into(),
                })
                .await;
            expect_named(
                r,
                "organisation_area_code",
                &format!("AssignComplaint {area:?}"),
                &mut problems,
            );
        }
        for (field, correction) in [
            (
                "household.name",
                pb::HouseholdCorrection {
                    name: "王\u{0}民".into(),
                    ..Default::default()
                },
            ),
            (
                "household.phone",
                pb::HouseholdCorrection {
                    phone: "1391234\u{0}678".into(),
                    ..Default::default()
                },
            ),
            (
                "household.poor_household_number",
                pb::HouseholdCorrection {
                    poor_household_number: "JD\u{0}1".into(),
                    ..Default::default()
                },
            ),
        ] {
            let r = village
                .resubmit_application(pb::ResubmitApplicationRequest {
                    request_id: rid(),
                    application_id: app.id.clone(),
                    household: Some(correction),
                    ..Default::default()
                })
                .await;
            expect_named(
                r,
                field,
                &format!("ResubmitApplication {field}"),
                &mut problems,
            );
        }
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(keys().await, kept, "no request id kept");
        let a = t
            .get_as(&mut district, &app.id)
            .await
            .expect("the application");
        assert_eq!(a.status(), pb::Status::Returned, "nothing moved");
        t.shutdown().await;
    })
    .await;
}

// ---- scoping ----

/// Section 0 (staff see only inside their area), R-IN-5 (objections are listed to service
/// staff), R-IN-6 (a bank sees only what was recommended to it): an application's objections
/// and history are listed to exactly those who may see the application; others get NotFound
/// (or PermissionDenied for roles that never list objections) and leave no access-log row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objections_and_transitions_are_scoped_like_their_application() {
    bounded(120, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(671), resident_id(672));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let held = t.submit_household(&r1, VILLAGE_A, "20000").await;
        let lent = t.submit_household(&r2, VILLAGE_A, "20000").await;
        t.approve_to_notice(&held).await;
        t.approve_to_notice(&lent).await;
        t.as_district_staff()
            .file_objection(objection_req(&held.id, "赵某某"))
            .await
            .expect("objection");
        recommended_on(&t, &lent, BANK, "2026-03-07").await;
        let before = log_len(&t).await;

        let other_district = || t.as_caller("district-x", Role::DistrictStaff, "410302", None);
        let mut problems = Vec::new();
        let mut code_of = |what: &str, r: Result<usize, Status>, want: Option<Code>| {
            let got = r.as_ref().err().map(Status::code);
            if got != want {
                problems.push(format!("{what}: expected {want:?}, got {r:?}"));
            }
        };
        for (who, mut c, objections, transitions) in [
            ("village A", t.as_village_staff(VILLAGE_A), None, None),
            ("town A", t.as_town_staff(TOWN_A), None, None),
            ("district", t.as_district_staff(), None, None),
            (
                "village A2",
                t.as_village_staff(VILLAGE_A2),
                Some(Code::NotFound),
                Some(Code::NotFound),
            ),
            (
                "town B",
                t.as_town_staff(TOWN_B),
                Some(Code::NotFound),
                Some(Code::NotFound),
            ),
            // A token of another district is not a caller of this deployment at all.
            (
                "another district",
                other_district(),
                Some(Code::Unauthenticated),
                Some(Code::Unauthenticated),
            ),
            (
                "the bank (not recommended)",
                t.as_bank(BANK),
                Some(Code::PermissionDenied),
                Some(Code::NotFound),
            ),
            (
                "an operator",
                t.as_operator(),
                Some(Code::PermissionDenied),
                Some(Code::NotFound),
            ),
        ] {
            let o = objections_page(&mut c, &held.id, 0, "")
                .await
                .map(|(v, _)| v.len());
            code_of(&format!("{who}: objections"), o, objections);
            let tr = transitions_page(&mut c, &held.id, 0, "")
                .await
                .map(|(v, _)| v.len());
            code_of(&format!("{who}: transitions"), tr, transitions);
        }
        // The recommended application: its bank reads the history, the other bank does not;
        // neither bank lists objections.
        for (who, mut c, objections, transitions) in [
            (
                "the lending bank",
                t.as_bank(BANK),
                Some(Code::PermissionDenied),
                None,
            ),
            (
                "another bank",
                t.as_bank(OTHER_BANK),
                Some(Code::PermissionDenied),
                Some(Code::NotFound),
            ),
        ] {
            let o = objections_page(&mut c, &lent.id, 0, "")
                .await
                .map(|(v, _)| v.len());
            code_of(&format!("{who}: objections"), o, objections);
            let tr = transitions_page(&mut c, &lent.id, 0, "")
                .await
                .map(|(v, _)| v.len());
            code_of(&format!("{who}: transitions"), tr, transitions);
        }
        assert!(problems.is_empty(), "{problems:#?}");
        // Only village A's listing of the objection showed a name unmasked.
        let rows = access_log(&t).await;
        let new: Vec<_> = rows[before..].iter().collect();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(
            (new[0].0.as_str(), new[0].1.as_str(), new[0].3, &new[0].5),
            (
                "ListObjections",
                "village_staff",
                uuid_of(&held.id),
                &fields(&["objector"])
            )
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6 ("lists the applications recommended to it (and only those)"), R-CR-11: whatever
/// the status and date filters, page sizes or tokens (even a token taken from the other
/// bank's listing), a bank lists only its own recommendations; the other bank's application
/// is not found by id or history, and the access log names each bank only with its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bank_never_sees_another_banks_applications_whatever_the_filters() {
    bounded(150, async {
        let t = spawn_intake_with_two_banks().await;
        t.set_time(DEFAULT_NOW);
        let mut apps = Vec::new();
        for n in 681..685 {
            let r = resident_id(n);
            t.given_credit_household(&r, VILLAGE_A).await;
            let a = t.submit_household(&r, VILLAGE_A, "20000").await;
            t.approve_to_notice(&a).await;
            apps.push(a);
        }
        // ABC: 0 (03-07), 2 (03-08); ICBC: 1 (03-07), 3 (03-08).
        recommended_on(&t, &apps[0], BANK, "2026-03-07").await;
        recommended_on(&t, &apps[1], OTHER_BANK, "2026-03-07").await;
        recommended_on(&t, &apps[2], BANK, "2026-03-08").await;
        recommended_on(&t, &apps[3], OTHER_BANK, "2026-03-08").await;
        t.as_bank(OTHER_BANK)
            .record_bank_decision(approve_req(&apps[1].id, "20000", "0.045", 12))
            .await
            .expect("ICBC approves its own");
        t.as_bank(BANK)
            .record_bank_decision(reject_req(&apps[2].id, "no repayment capacity"))
            .await
            .expect("ABC rejects its own");
        let own = |bank: &str| -> Vec<String> {
            let idx: &[usize] = if bank == BANK { &[0, 2] } else { &[1, 3] };
            idx.iter().map(|i| apps[*i].id.clone()).collect()
        };
        let icbc_token = {
            let (_, next) = bank_page(&mut t.as_bank(OTHER_BANK), bank_req(1, "", &[], "", ""))
                .await
                .unwrap();
            assert!(!next.is_empty());
            next
        };
        use pb::Status::*;
        let filters: Vec<(Vec<pb::Status>, &str, &str)> = vec![
            (vec![], "", ""),
            (vec![Recommended], "", ""),
            (vec![BankApproved], "", ""),
            (vec![BankRejected], "", ""),
            (
                vec![Recommended, BankApproved, BankRejected, Disbursed],
                "",
                "",
            ),
            (vec![], "2026-03-07", "2026-03-08"),
            (vec![], "2026-03-08", ""),
            (vec![], "", "2026-03-09"),
        ];
        for bank in [BANK, OTHER_BANK] {
            let mut c = t.as_bank(bank);
            let mine = own(bank);
            for (statuses, from, to) in &filters {
                for size in [1, 0] {
                    let got = all_bank(&mut c, bank_req(size, "", statuses, from, to)).await;
                    for id in &got {
                        assert!(
                            mine.contains(id),
                            "{bank} listed {id}, not recommended to it ({statuses:?} {from} {to})"
                        );
                    }
                }
            }
            if bank == BANK {
                // ICBC's token in ABC's listing: nothing of ICBC's, whatever it means.
                if let Ok((rows, _)) =
                    bank_page(&mut c, bank_req(10, &icbc_token, &[], "", "")).await
                {
                    for a in rows {
                        assert!(mine.contains(&a.id), "ABC got {} with ICBC's token", a.id);
                    }
                }
            }
            for other in apps.iter().filter(|a| !mine.contains(&a.id)) {
                assert_eq!(
                    t.get_as(&mut c, &other.id).await.unwrap_err().code(),
                    Code::NotFound,
                    "{bank} reads {}",
                    other.id
                );
                assert_eq!(
                    transitions_page(&mut c, &other.id, 0, "")
                        .await
                        .unwrap_err()
                        .code(),
                    Code::NotFound
                );
            }
        }
        for (rpc, role, caller, app, _, _) in access_log(&t).await {
            if role != "bank" {
                continue;
            }
            let bank = caller.trim_start_matches("bank-");
            let app = app.expect("an application").to_string();
            assert!(
                own(bank).contains(&app),
                "{rpc}: {caller} logged as reading {app}, not recommended to it"
            );
        }
        t.shutdown().await;
    })
    .await;
}

// ---- R-CR-11: masking and the access log ----

/// R-CR-11 (README table): town and district staff see every personal field masked on every
/// read (application, listings, history, objections, complaints) and leave no access-log
/// row; operators read none of it at all and leave no row either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn masked_reads_and_operators_leave_no_access_log() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(691);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        t.approve_to_notice(&app).await;
        t.as_district_staff()
            .file_objection(objection_req(&app.id, "赵某某"))
            .await
            .expect("objection");
        t.as_village_staff(VILLAGE_A)
            .lodge_complaint(complaint_req(VILLAGE_A, "钱某某"))
            .await
            .expect("complaint");
        let before = log_len(&t).await;
        for (who, mut c) in [
            ("town", t.as_town_staff(TOWN_A)),
            ("district", t.as_district_staff()),
        ] {
            let mut seen = vec![t.get_as(&mut c, &app.id).await.expect(who)];
            seen.extend(
                apps_page(&mut c, pb::ListApplicationsRequest::default())
                    .await
                    .expect(who)
                    .0,
            );
            for a in &seen {
                assert_eq!(
                    (
                        a.applicant_id.as_str(),
                        a.applicant_name.as_str(),
                        a.applicant_phone.as_str()
                    ),
                    (masked(&r).as_str(), "王**", "138****8000"),
                    "{who}"
                );
            }
            let (os, _) = objections_page(&mut c, &app.id, 0, "").await.expect(who);
            assert_eq!(
                os.iter().map(|o| o.objector.as_str()).collect::<Vec<_>>(),
                vec!["赵**"],
                "{who}"
            );
            let (cs, _) = complaints_page(&mut c, 0, "").await.expect(who);
            assert_eq!(
                cs.iter()
                    .map(|c| c.complainant.as_str())
                    .collect::<Vec<_>>(),
                vec!["钱**"],
                "{who}"
            );
            let (tr, _) = transitions_page(&mut c, &app.id, 0, "").await.expect(who);
            for x in &tr {
                for text in [&x.reason, &x.actor, &x.action] {
                    assert!(
                        !text.contains(&r)
                            && !text.contains("王建国")
                            && !text.contains("13800138000"),
                        "{who}: history shows personal data: {x:?}"
                    );
                }
            }
        }
        assert_eq!(log_len(&t).await, before, "masked reads are not logged");

        let mut op = t.as_operator();
        let answers: Vec<(&str, Result<String, Status>)> = vec![
            (
                "GetApplication",
                t.get_as(&mut op, &app.id).await.map(|a| format!("{a:?}")),
            ),
            (
                "ListApplications",
                apps_page(&mut op, pb::ListApplicationsRequest::default())
                    .await
                    .map(|r| format!("{r:?}")),
            ),
            (
                "ListTransitions",
                transitions_page(&mut op, &app.id, 0, "")
                    .await
                    .map(|r| format!("{r:?}")),
            ),
            (
                "ListObjections",
                objections_page(&mut op, &app.id, 0, "")
                    .await
                    .map(|r| format!("{r:?}")),
            ),
            (
                "ListComplaints",
                complaints_page(&mut op, 0, "")
                    .await
                    .map(|r| format!("{r:?}")),
            ),
            (
                "ListRecommendedApplications",
                bank_page(&mut op, bank_req(0, "", &[], "", ""))
                    .await
                    .map(|r| format!("{r:?}")),
            ),
        ];
        for (rpc, answer) in answers {
            match answer {
                Ok(shown) => {
                    for secret in [r.as_str(), "王建国", "13800138000", "赵某某", "钱某某"]
                    {
                        assert!(
                            !shown.contains(secret),
                            "operator {rpc} shows {secret}: {shown}"
                        );
                    }
                }
                Err(s) => assert!(
                    matches!(s.code(), Code::PermissionDenied | Code::NotFound),
                    "operator {rpc}: {s:?}"
                ),
            }
        }
        assert_eq!(log_len(&t).await, before, "operators read nothing unmasked");
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 ("every unmasked read is audit-logged"; README: lists one row per record): paged
/// unmasked reads log one row per record shown, page by page, with the record's id; the
/// same listing by the town logs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paged_unmasked_reads_log_one_row_per_record_shown() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(701);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(t.submit_household(&r, VILLAGE_A, "1000").await.id);
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut complaints = Vec::new();
        for i in 0..3 {
            complaints.push(
                village
                    .lodge_complaint(complaint_req(VILLAGE_A, &format!("钱某{i}")))
                    .await
                    .expect("lodge")
                    .into_inner()
                    .id,
            );
        }
        assert_eq!(
            log_len(&t).await,
            0,
            "submissions and complaints echo input"
        );
        let mut listed = all_apps(&mut village, pb::ListApplicationsRequest::default(), 2).await;
        listed.sort();
        ids.sort();
        assert_eq!(listed, ids);
        let mut token = String::new();
        loop {
            let (_, next) = complaints_page(&mut village, 2, &token).await.unwrap();
            if next.is_empty() {
                break;
            }
            token = next;
        }
        all_apps(
            &mut t.as_town_staff(TOWN_A),
            pb::ListApplicationsRequest::default(),
            2,
        )
        .await;
        complaints_page(&mut t.as_town_staff(TOWN_A), 0, "")
            .await
            .unwrap();
        let rows = access_log(&t).await;
        let mut apps_logged: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == "ListApplications")
            .map(|r| {
                assert_eq!(r.1, "village_staff");
                assert_eq!(r.2, format!("village-staff-{VILLAGE_A}"));
                assert_eq!(r.5, fields(&["applicant_name", "applicant_phone"]));
                r.3.expect("an application").to_string()
            })
            .collect();
        apps_logged.sort();
        assert_eq!(apps_logged, ids, "one row per application, each once");
        let mut complaints_logged: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == "ListComplaints")
            .map(|r| {
                assert_eq!(
                    (r.1.as_str(), &r.5),
                    ("village_staff", &fields(&["complainant"]))
                );
                r.4.expect("a complaint").to_string()
            })
            .collect();
        complaints_logged.sort();
        complaints.sort();
        assert_eq!(complaints_logged, complaints);
        assert_eq!(rows.len(), 5 + 3, "nothing else: {rows:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 with R-IN-8 (README: "A retry replays the first response to the same caller and is
/// not logged again"): every write whose response shows personal data unmasked — a village
/// review, a village resubmission, the bank's decision and disbursement, a village answer to
/// a complaint — logs that response once with its fields; the retry returns the same
/// response and adds no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unmasked_write_responses_are_logged_once_and_replayed_identically() {
    bounded(120, async {
        let t = spawn_intake().await;
        let r = resident_id(711);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        let mut village = t.as_village_staff(VILLAGE_A);
        let mut bank = t.as_bank(BANK);
        let name_phone = fields(&["applicant_name", "applicant_phone"]);
        let everything = fields(&["applicant_id", "applicant_name", "applicant_phone"]);

        // Returned by the town, resubmitted with a new phone by the village.
        let rv = review_req(&app.id, pb::Decision::Approve, "");
        let first = village
            .review_application(rv.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.applicant_name, "王建国");
        review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::ReturnForCorrection,
            "phone number wrong",
        )
        .await;
        let rs = pb::ResubmitApplicationRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            household: Some(pb::HouseholdCorrection {
                phone: "13912345678".into(),
                ..Default::default()
            }),
            note: "phone corrected".into(),
            ..Default::default()
        };
        let resubmitted = village
            .resubmit_application(rs.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resubmitted.applicant_phone, "13912345678");
        review(
            &mut t.as_town_staff(TOWN_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        review(
            &mut t.as_district_staff(),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        recommended_on(&t, &app, BANK, "2026-03-07").await;
        let dr = approve_req(&app.id, "20000", "0.0435", 12);
        let decided = bank
            .record_bank_decision(dr.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decided.applicant_id, r);
        t.set_time("2026-03-10T10:00:00+08:00");
        let ds = pb::RecordDisbursementRequest {
            request_id: rid(),
            application_id: app.id.clone(),
            loan_account_number: "6228-4801-0000-0711".into(),
            amount: money("20000.00"),
            disbursed_on: "2026-03-10".into(),
            schedule: (0..12)
                .map(|i| {
                    let (y, m) = if i < 9 { (2026, 4 + i) } else { (2027, i - 8) };
                    pb::Instalment {
                        due_on: format!("{y}-{m:02}-10"),
                        principal: money(if i < 11 { "1666.67" } else { "1666.63" }),
                        interest: money("72.50"),
                    }
                })
                .collect(),
        };
        let disbursed = bank
            .record_disbursement(ds.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(disbursed.status(), pb::Status::Disbursed);

        // A complaint answered by the village.
        let c = village
            .lodge_complaint(complaint_req(VILLAGE_A, "钱某某"))
            .await
            .unwrap()
            .into_inner();
        t.as_town_staff(TOWN_A)
            .assign_complaint(assign_req(&c.id, VILLAGE_A))
            .await
            .expect("assign");
        let an = answer_req(&c.id, "the notice is posted at the village office");
        let answered = village
            .answer_complaint(an.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answered.complainant, "钱某某");

        let logged_once = |rows: &[LogRow], rpc: &str, role: &str, f: &Vec<String>| {
            let n = rows
                .iter()
                .filter(|x| x.0 == rpc && x.1 == role && &x.5 == f)
                .count();
            assert_eq!(n, 1, "{rpc} by {role}: {rows:#?}");
        };
        let check = |rows: Vec<LogRow>| {
            logged_once(&rows, "ReviewApplication", "village_staff", &name_phone);
            logged_once(&rows, "ResubmitApplication", "village_staff", &name_phone);
            logged_once(&rows, "RecordBankDecision", "bank", &everything);
            logged_once(&rows, "RecordDisbursement", "bank", &everything);
            logged_once(
                &rows,
                "AnswerComplaint",
                "village_staff",
                &fields(&["complainant"]),
            );
            rows.len()
        };
        let n = check(access_log(&t).await);

        // Retries: the same responses, nothing more logged.
        assert_eq!(
            village.review_application(rv).await.unwrap().into_inner(),
            first
        );
        assert_eq!(
            village.resubmit_application(rs).await.unwrap().into_inner(),
            resubmitted
        );
        assert_eq!(
            bank.record_bank_decision(dr).await.unwrap().into_inner(),
            decided
        );
        assert_eq!(
            bank.record_disbursement(ds).await.unwrap().into_inner(),
            disbursed
        );
        assert_eq!(
            village.answer_complaint(an).await.unwrap().into_inner(),
            answered
        );
        assert_eq!(check(access_log(&t).await), n);
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 (README: "An organisation's USCC and name are public"): an enterprise's
/// application shows its USCC and name in full to every tier and to its bank, on reads and
/// listings; only its legal representative, a person, is shown like a name (in full to the
/// village and the bank, masked to the town and district) and only those reads are logged,
/// naming that field alone; a household listed beside it is masked and logged as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprise_applications_are_public_and_never_logged() {
    bounded(120, async {
        let t = spawn_intake().await;
        let code = uscc('3', 721);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let r = resident_id(721);
        t.given_credit_household(&r, VILLAGE_A).await;
        let org = submit(
            &mut t.as_village_staff(VILLAGE_A),
            enterprise_request(&code, VILLAGE_A, "300000"),
        )
        .await;
        let household = t.submit_household(&r, VILLAGE_A, "1000").await;
        t.approve_to_notice(&org).await;
        recommended_on(&t, &org, BANK, "2026-03-07").await;
        let before = log_len(&t).await;
        let public = |a: &pb::Application| {
            assert_eq!(
                (
                    a.applicant_id.as_str(),
                    a.applicant_name.as_str(),
                    a.applicant_phone.as_str()
                ),
                (code.as_str(), "洛龙区牡丹种植合作社", ""),
                "{a:?}"
            );
        };
        for (who, mut c) in [
            ("village", t.as_village_staff(VILLAGE_A)),
            ("town", t.as_town_staff(TOWN_A)),
            ("district", t.as_district_staff()),
            ("bank", t.as_bank(BANK)),
        ] {
            public(&t.get_as(&mut c, &org.id).await.expect(who));
            let listed = if who == "bank" {
                bank_page(&mut c, bank_req(0, "", &[], "", ""))
                    .await
                    .expect(who)
                    .0
            } else {
                apps_page(&mut c, pb::ListApplicationsRequest::default())
                    .await
                    .expect(who)
                    .0
            };
            let o = listed.iter().find(|a| a.id == org.id).expect("listed");
            public(o);
            let representative = if matches!(who, "village" | "bank") {
                "李明"
            } else {
                "李*"
            };
            assert_eq!(o.legal_representative, representative, "{who}");
        }
        let rows = access_log(&t).await;
        let new: Vec<&LogRow> = rows[before..].iter().collect();
        assert!(
            new.iter()
                .filter(|x| x.3 == uuid_of(&org.id))
                .all(|x| x.5 == ["legal_representative"]),
            "the enterprise is logged for its representative only: {new:#?}"
        );
        // The village's and the bank's reads and listings showed the representative; the
        // village's listing showed the household unmasked.
        assert_eq!(
            new.iter().map(|x| (x.0.as_str(), x.3)).collect::<Vec<_>>(),
            vec![
                ("GetApplication", uuid_of(&org.id)),
                ("ListApplications", uuid_of(&org.id)),
                ("ListApplications", uuid_of(&household.id)),
                ("GetApplication", uuid_of(&org.id)),
                ("ListRecommendedApplications", uuid_of(&org.id)),
            ]
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 (README: rows carry the `fields` shown): a household that gave no phone is shown
/// with an empty phone to everyone, and the access log names only the fields actually shown
/// unmasked (the village: the name; the bank: ID and name).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_household_without_a_phone_logs_only_the_fields_shown() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(731);
        t.given_credit_household(&r, VILLAGE_A).await;
        let mut req = household_request(&r, VILLAGE_A, "20000");
        household(&mut req).phone = String::new();
        let app = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
        assert_eq!(app.applicant_phone, "");
        t.approve_to_notice(&app).await;
        recommended_on(&t, &app, BANK, "2026-03-07").await;
        let before = log_len(&t).await;
        for (who, mut c, want) in [
            (
                "village",
                t.as_village_staff(VILLAGE_A),
                (masked(&r), "王建国"),
            ),
            ("town", t.as_town_staff(TOWN_A), (masked(&r), "王**")),
            ("bank", t.as_bank(BANK), (r.clone(), "王建国")),
        ] {
            let a = t.get_as(&mut c, &app.id).await.expect(who);
            assert_eq!(
                (
                    a.applicant_id,
                    a.applicant_name.as_str(),
                    a.applicant_phone.as_str()
                ),
                (want.0, want.1, ""),
                "{who}"
            );
        }
        let rows = access_log(&t).await;
        let new: Vec<(String, Vec<String>)> = rows[before..]
            .iter()
            .map(|x| (x.1.clone(), x.5.clone()))
            .collect();
        assert_eq!(
            new,
            vec![
                ("village_staff".to_owned(), fields(&["applicant_name"])),
                (
                    "bank".to_owned(),
                    fields(&["applicant_id", "applicant_name"])
                ),
            ]
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 (format `410311********123X`, names `王**`, phones `138****0000`): on listings the
/// masks keep the documented shape for IDs ending in X (sent lower-case: the bank sees the
/// canonical upper-case number), compound surnames, two- and one-character names and any
/// mobile number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn masks_on_listings_keep_the_documented_shape() {
    bounded(120, async {
        let t = spawn_intake().await;
        let x = resident_id_ending_in_x();
        t.given_credit_household(&x, VILLAGE_A).await;
        let mut ids = Vec::new();
        for (name, phone) in [
            ("欧阳娜娜", "13912345678"),
            ("王五", "15000000001"),
            ("王", "18600000000"),
        ] {
            let mut req = household_request(&x.to_lowercase(), VILLAGE_A, "1000");
            household(&mut req).name = name.into();
            household(&mut req).phone = phone.into();
            let a = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
            assert_eq!(
                a.applicant_id,
                masked(&x),
                "village sees the masked canonical ID"
            );
            ids.push(a.id);
        }
        let (rows, _) = apps_page(
            &mut t.as_town_staff(TOWN_A),
            pb::ListApplicationsRequest::default(),
        )
        .await
        .unwrap();
        let shown: BTreeSet<(String, String, String)> = rows
            .into_iter()
            .map(|a| (a.applicant_id, a.applicant_name, a.applicant_phone))
            .collect();
        let id_mask = format!("{}********{}", &x[..6], &x[14..]);
        assert!(id_mask.ends_with('X'), "{id_mask}");
        assert_eq!(
            shown,
            [
                (
                    id_mask.clone(),
                    "欧***".to_owned(),
                    "139****5678".to_owned()
                ),
                (id_mask.clone(), "王*".to_owned(), "150****0001".to_owned()),
                (id_mask.clone(), "*".to_owned(), "186****0000".to_owned()),
            ]
            .into_iter()
            .collect()
        );
        let first = t.get_as(&mut t.as_district_staff(), &ids[0]).await.unwrap();
        t.approve_to_notice(&first).await;
        recommended_on(&t, &first, BANK, "2026-03-07").await;
        let (rows, _) = bank_page(&mut t.as_bank(BANK), bank_req(0, "", &[], "", ""))
            .await
            .unwrap();
        assert_eq!(
            rows.iter()
                .map(|a| (a.applicant_id.as_str(), a.applicant_name.as_str()))
                .collect::<Vec<_>>(),
            vec![(x.as_str(), "欧阳娜娜")]
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 ("every unmasked read is audit-logged"; README: rows are written "before the
/// response is returned"): when the access log cannot be written, a read that would show
/// personal data unmasked fails instead of showing it, and a write whose response would show
/// it changes nothing and keeps nothing with its request id (the retry goes through once the
/// log works); masked reads are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unmasked_data_is_never_shown_without_its_log_row() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(741);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        sqlx::query(
            "create function fail_pii_log() returns trigger language plpgsql as
             $$ begin raise exception 'access log unavailable'; end $$",
        )
        .execute(&t.pool)
        .await
        .unwrap();
        sqlx::query(
            "create trigger fail_pii_log before insert on pii_access_log
             for each statement execute function fail_pii_log()",
        )
        .execute(&t.pool)
        .await
        .unwrap();
        let mut village = t.as_village_staff(VILLAGE_A);
        let got = t.get_as(&mut village, &app.id).await;
        assert!(
            got.is_err(),
            "GetApplication showed {got:?} without a log row"
        );
        let listed = apps_page(&mut village, pb::ListApplicationsRequest::default()).await;
        assert!(
            listed.is_err(),
            "ListApplications showed {listed:?} without a log row"
        );
        let rv = review_req(&app.id, pb::Decision::Approve, "");
        let reviewed = village.review_application(rv.clone()).await;
        assert!(reviewed.is_err(), "ReviewApplication showed {reviewed:?}");
        // Masked reads go on, and the review changed nothing.
        let seen = t
            .get_as(&mut t.as_town_staff(TOWN_A), &app.id)
            .await
            .expect("a masked read needs no log row");
        assert_eq!(seen.status(), pb::Status::VillageReview);
        assert_eq!(seen.version, app.version);
        sqlx::query("drop trigger fail_pii_log on pii_access_log")
            .execute(&t.pool)
            .await
            .unwrap();
        let a = village
            .review_application(rv)
            .await
            .expect("the same request id goes through once the log works")
            .into_inner();
        assert_eq!(a.status(), pb::Status::TownReview);
        assert_eq!(log_len(&t).await, 1);
        t.shutdown().await;
    })
    .await;
}

// ---- paging while rows are added ----

/// R-IN-2 ("every transition ... can be listed"), R-IN-5 (objections "oldest first"): paging
/// an application's history and objections one row at a time while it moves on and more
/// objections are filed between pages lists every row once, in the order they happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_and_objections_page_in_order_while_rows_are_added() {
    bounded(90, async {
        let t = spawn_intake().await;
        let r = resident_id(751);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "20000").await;
        review(
            &mut t.as_village_staff(VILLAGE_A),
            &app.id,
            pb::Decision::Approve,
            "",
        )
        .await;
        let mut district = t.as_district_staff();
        // Two rows now; the town's and the district's moves come between pages.
        let mut later: Vec<Client> = vec![t.as_district_staff(), t.as_town_staff(TOWN_A)];
        let mut seen: Vec<pb::Transition> = Vec::new();
        let mut token = String::new();
        loop {
            let (rows, next) = transitions_page(&mut district, &app.id, 1, &token)
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            seen.extend(rows);
            if next.is_empty() {
                break;
            }
            if let Some(mut c) = later.pop() {
                review(&mut c, &app.id, pb::Decision::Approve, "").await;
            }
            token = next;
        }
        let path: Vec<(pb::Status, pb::Status)> = seen
            .iter()
            .map(|x| (x.from_status(), x.to_status()))
            .collect();
        use pb::Status::*;
        assert_eq!(
            path,
            vec![
                (Unspecified, VillageReview),
                (VillageReview, TownReview),
                (TownReview, DistrictReview),
                (DistrictReview, PublicNotice),
            ],
            "{seen:#?}"
        );

        // Objections: two filed, then one more after each page while pages remain.
        let mut filed = Vec::new();
        let file = |n: usize| {
            let mut c = t.as_district_staff();
            let app = app.id.clone();
            async move {
                c.file_objection(objection_req(&app, &format!("赵某{n}")))
                    .await
                    .unwrap()
                    .into_inner()
                    .id
            }
        };
        filed.push(file(0).await);
        filed.push(file(1).await);
        let mut listed = Vec::new();
        let mut token = String::new();
        loop {
            let (rows, next) = objections_page(&mut district, &app.id, 1, &token)
                .await
                .unwrap();
            listed.extend(rows.into_iter().map(|o| o.id));
            if next.is_empty() {
                break;
            }
            if filed.len() < 4 {
                filed.push(file(filed.len()).await);
            }
            token = next;
        }
        assert_eq!(listed, filed, "every objection once, oldest first");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3 and operations: a status filter is each status at most once; more entries than there
/// are statuses are refused naming `statuses`, before anything is read (millions of repeated
/// entries fit a few megabytes and held that much memory, and more, per call). Repeats within
/// the limit mean the status once. A request larger than intake's limit (256 KiB) is refused
/// without being decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_filters_and_requests_are_bounded() {
    bounded(60, async {
        let t = spawn_intake().await;
        let r = resident_id(91);
        t.given_credit_household(&r, VILLAGE_A).await;
        let app = t.submit_household(&r, VILLAGE_A, "5000").await;
        let list = |statuses: Vec<i32>| pb::ListApplicationsRequest {
            statuses,
            ..Default::default()
        };
        let mut district = t.as_district_staff();
        let village = pb::Status::VillageReview as i32;
        let all: Vec<i32> = (1..=11).collect();
        let ids = |r: pb::ListApplicationsResponse| {
            r.applications.into_iter().map(|a| a.id).collect::<Vec<_>>()
        };
        let once = ids(district
            .list_applications(list(vec![village]))
            .await
            .unwrap()
            .into_inner());
        assert_eq!(once, vec![app.id.clone()]);
        let thrice = district
            .list_applications(list(vec![village; 3]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ids(thrice), once, "a repeat means the status once");
        assert!(district.list_applications(list(all.clone())).await.is_ok());
        let mut too_many = all.clone();
        too_many.push(village);
        let s = district
            .list_applications(list(too_many))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().starts_with("statuses:"), "{s:?}");
        let s = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest {
                statuses: vec![pb::Status::Recommended as i32; 12],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(s.message().starts_with("statuses:"), "{s:?}");

        let huge = list(vec![village; 300 * 1024]);
        let s = district.list_applications(huge).await.unwrap_err();
        assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
        // The connection and the service are fine afterwards.
        assert!(
            district
                .list_applications(list(vec![village]))
                .await
                .is_ok()
        );
        t.shutdown().await;
    })
    .await;
}
