//! Submission over gRPC (R-IN-1, R-IN-3, R-X-3, R-X-2, R-CR-11): a valid application is stored
//! and announced; every bad input is refused with the field and rule and stores nothing; an
//! admission refusal lists every failed rule at once.

mod common;

use common::*;
use fupin_proto::intake::v1::{self as pb, submit_application_request::Applicant};
use prost::Name;
use tonic::Code;

async fn nothing_stored(t: &TestIntake, what: &str) {
    nothing_but_refusals(t, what).await;
    assert_eq!(
        count(&t.pool, "select count(*) from idempotency_keys").await,
        0,
        "{what}: idempotency_keys must stay empty"
    );
}

/// Nothing stored but `refusals` kept with their request ids (R-IN-8: a refusal is the id's
/// first result).
async fn nothing_but_refusals(t: &TestIntake, what: &str) {
    for (table, sql) in [
        ("applications", "select count(*) from applications"),
        ("transitions", "select count(*) from transitions"),
        ("outbox", "select count(*) from outbox"),
        (
            "idempotency_keys (other than refusals)",
            "select count(*) from idempotency_keys where refused_code is null",
        ),
    ] {
        assert_eq!(
            count(&t.pool, sql).await,
            0,
            "{what}: {table} must stay empty"
        );
    }
}

/// R-IN-1, R-IN-3, R-X-2: a credit household's application is stored at VILLAGE_REVIEW, its
/// transition recorded, `ApplicationSubmitted` published with CloudEvents headers; R-CR-11:
/// staff see the resident ID masked, the bank it is recommended to sees it in full and that
/// read is audit-logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valid_household_application_is_stored_announced_and_masked() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(7);
        t.given_credit_household(&resident, VILLAGE_A).await;

        let app = t.submit_household(&resident, VILLAGE_A, "15000.50").await;
        assert_eq!(app.status(), pb::Status::VillageReview);
        assert_eq!(app.current_step(), pb::Step::Village);
        assert_eq!(app.kind(), pb::ApplicantKind::Household);
        assert_eq!(app.village_code, VILLAGE_A);
        assert_eq!(app.town_code, TOWN_A);
        assert_eq!(app.amount.as_ref().map(|m| m.amount.as_str()), Some("15000.50"));
        assert_eq!(app.term_months, 12);
        assert_eq!(app.policy_version, "luolong-2026.1");
        assert_eq!(app.version, 1);
        // Monday 2026-03-02 + 3 working days (R-IN-4).
        assert_eq!(app.step_due_on, "2026-03-05");
        // R-CR-11: the submitting village staff already sees the number masked.
        assert_eq!(app.applicant_id, masked(&resident));
        assert!(app.applicant_id.starts_with("410311********"));

        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from transitions where application_id = $1::uuid and action = 'submit' and to_status = 'village_review'",
                &[&app.id],
            )
            .await,
            1
        );

        // R-X-2: the announcement is on the stream, with the CloudEvents binding headers.
        let events = t
            .intake_events(&pb::ApplicationSubmitted::full_name())
            .await;
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_cloudevent(e, &pb::ApplicationSubmitted::full_name(), &app.id);
        // The first thing intake ever published on its stream.
        let first = read_events(
            &t.bus,
            &format!("{}.intake.v1.>", t.bus.prefix),
            1,
            std::time::Duration::from_secs(10),
        )
        .await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].subject, e.subject);
        assert_eq!(first[0].payload, e.payload);
        let sub: pb::ApplicationSubmitted = e.decode();
        assert_eq!(sub.application_id, app.id);
        assert_eq!(sub.kind(), pb::ApplicantKind::Household);
        assert_eq!(sub.village_code, VILLAGE_A);
        assert_eq!(sub.town_code, TOWN_A);
        assert_eq!(sub.amount, "15000.50");
        assert_eq!(sub.term_months, 12);
        assert_eq!(sub.purpose(), pb::Purpose::Planting);
        assert_eq!(sub.policy_version, "luolong-2026.1");
        assert_eq!(sub.status(), pb::Status::VillageReview);

        // R-CR-11: every staff tier sees the masked number; only the village, which sees the
        // name and phone in the clear, leaves an audit row (tests/personal_data.rs has the rest).
        for mut c in [
            t.as_village_staff(VILLAGE_A),
            t.as_town_staff(TOWN_A),
            t.as_district_staff(),
        ] {
            let got = t.get_as(&mut c, &app.id).await.expect("staff get");
            assert_eq!(got.applicant_id, masked(&resident));
            assert_eq!(got.id, app.id);
        }
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from pii_access_log where role <> 'village_staff'"
            )
            .await,
            0
        );

        // Before recommendation the bank cannot see it at all.
        let s = t.get_as(&mut t.as_bank(BANK), &app.id).await.unwrap_err();
        assert_eq!(s.code(), Code::NotFound);

        t.approve_to_notice(&app).await;
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommend");
        let got = t
            .get_as(&mut t.as_bank(BANK), &app.id)
            .await
            .expect("bank get");
        assert_eq!(got.applicant_id, resident, "the lending bank needs the number");
        assert_eq!(
            count_where(
                &t.pool,
                "select count(*) from pii_access_log where application_id = $1::uuid and role = 'bank' and caller = $2 and rpc = 'GetApplication'",
                &[&app.id, &format!("bank-{BANK}")],
            )
            .await,
            1,
            "R-CR-11: the unmasked read is audit-logged"
        );
        // With the bank it acted for: one subject may act for several.
        let scope: (Option<String>, Option<String>) = sqlx::query_as(
            "select caller_area, caller_bank_id from pii_access_log
             where application_id = $1::uuid and rpc = 'GetApplication' and role = 'bank'",
        )
        .bind(&app.id)
        .fetch_one(&t.pool)
        .await
        .expect("the access log row");
        assert_eq!(scope, (Some("410311".into()), Some(BANK.into())));
        // Staff still see it masked afterwards.
        let got = t
            .get_as(&mut t.as_district_staff(), &app.id)
            .await
            .expect("district get");
        assert_eq!(got.applicant_id, masked(&resident));
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-IN-3: identifiers pasted with surrounding spaces (a resident ID, a village code,
/// a USCC, an area code) are read without them, as the credit and industry events' subjects
/// are: the household is found rated and the enterprise qualified, and the application keeps
/// the codes as they are. A space inside is still bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identifiers_are_read_without_surrounding_spaces() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(8);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let lower = resident.to_lowercase();
        let app = submit(
            &mut t.as_village_staff(VILLAGE_A),
            household_request(&format!(" {lower}\t"), &format!("{VILLAGE_A} "), "15000"),
        )
        .await;
        assert_eq!(app.status(), pb::Status::VillageReview, "admitted: {app:?}");
        assert_eq!(app.village_code, VILLAGE_A);
        assert_eq!(app.applicant_id, masked(&resident));

        let qualified = uscc('3', 9);
        let id = t.publish_enterprise_qualified(&qualified, true, 1).await;
        t.wait_applied(&id).await;
        let app = submit(
            &mut t.as_district_staff(),
            enterprise_request(&format!("  {qualified}"), &format!("\t{TOWN_A}"), "300000"),
        )
        .await;
        assert_eq!(
            app.status(),
            pb::Status::DistrictReview,
            "admitted: {app:?}"
        );
        assert_eq!(app.applicant_id, qualified);
        assert_eq!(app.town_code, TOWN_A);

        let spaced = format!("{} {}", &resident[..6], &resident[6..]);
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(household_request(&spaced, VILLAGE_A, "15000"))
            .await);
        assert_invalid(&s, "household.resident_id", "R-IN-1");
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-1, R-IN-3: each bad input is `InvalidArgument` naming the field and the rule,
/// and nothing is stored (no application, no transition, no outbox row, no idempotency key).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_is_refused_with_field_and_rule_and_stores_nothing() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(8);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let good = || household_request(&resident, VILLAGE_A, "10000");

        let mut cases: Vec<(&str, pb::SubmitApplicationRequest, &str, &str)> = Vec::new();

        let mut r = good();
        let mut bad_check = resident.clone();
        let last = bad_check.pop().expect("18 chars");
        bad_check.push(if last == '0' { '1' } else { '0' });
        household(&mut r).resident_id = bad_check;
        cases.push(("bad check digit", r, "household.resident_id", "R-IN-1"));

        let mut r = good();
        // 1980-02-30 does not exist; the check digit itself is right.
        household(&mut r).resident_id = resident_id_born("19800230", 1);
        cases.push(("bad birth date", r, "household.resident_id", "R-IN-1"));

        let mut r = good();
        // A real date, but after today: nobody born then holds a resident ID yet.
        household(&mut r).resident_id = resident_id_born("20900101", 1);
        cases.push((
            "birth date in the future",
            r,
            "household.resident_id",
            "R-IN-1",
        ));

        let mut r = good();
        household(&mut r).village_code = "410311100299".into();
        cases.push((
            "village not in registry",
            r,
            "household.village_code",
            "R-IN-1",
        ));

        let mut r = good();
        household(&mut r).village_code = TOWN_A.into();
        cases.push((
            "town code for a village",
            r,
            "household.village_code",
            "R-IN-1",
        ));

        let mut r = good();
        r.amount = money("1000.123");
        cases.push(("amount with 3 decimals", r, "amount", "R-IN-1"));

        let mut r = good();
        r.amount = money("-100.00");
        cases.push(("negative amount", r, "amount", "R-IN-1"));

        let mut r = good();
        r.amount = money("0");
        cases.push(("zero amount", r, "amount", "R-IN-1"));

        let mut r = good();
        r.amount = None;
        cases.push(("missing amount", r, "amount", "R-IN-1"));

        let mut r = good();
        r.amount = money("50000.01");
        cases.push(("amount above the cap", r, "amount", "R-IN-3"));

        let mut r = good();
        r.term_months = 37;
        cases.push(("term 37 months", r, "term_months", "R-IN-3"));

        let mut r = good();
        r.term_months = 0;
        cases.push(("term 0", r, "term_months", "R-IN-1"));

        let mut r = good();
        r.purpose = pb::Purpose::Unspecified as i32;
        cases.push(("missing purpose", r, "purpose", "R-IN-1"));

        let mut r = good();
        r.applicant = None;
        cases.push(("missing applicant", r, "applicant", "R-IN-1"));

        let mut r = good();
        r.kind = pb::ApplicantKind::Enterprise as i32;
        cases.push(("household with kind ENTERPRISE", r, "kind", "R-IN-1"));

        let mut r = good();
        household(&mut r).name = "  ".into();
        cases.push(("missing name", r, "household.name", "R-IN-1"));

        let mut r = good();
        household(&mut r).name = "\u{0301}\u{E000}".into();
        cases.push((
            "name of a mark and a private-use character",
            r,
            "household.name",
            "R-IN-1",
        ));

        let mut r = good();
        household(&mut r).phone = "1380013800".into();
        cases.push(("10-digit phone", r, "household.phone", "R-IN-1"));

        let code = uscc('3', 41);
        let mut bad_uscc = code.clone();
        let last = bad_uscc.pop().expect("18 chars");
        bad_uscc.push(if last == '0' { '1' } else { '0' });
        cases.push((
            "bad USCC",
            enterprise_request(&bad_uscc, VILLAGE_A, "100000"),
            "enterprise.uscc",
            "R-IN-1",
        ));

        let mut r = enterprise_request(&code, VILLAGE_A, "100000");
        r.kind = pb::ApplicantKind::Household as i32;
        cases.push(("enterprise with kind HOUSEHOLD", r, "kind", "R-IN-1"));

        cases.push((
            "enterprise outside the district",
            enterprise_request(&code, "410312100201", "100000"),
            "enterprise.area_code",
            "R-IN-1",
        ));

        cases.push((
            "enterprise registered at the district level",
            enterprise_request(&code, DISTRICT, "100000"),
            "enterprise.area_code",
            "R-IN-1",
        ));

        for (what, req, field, rule) in cases {
            let s = err(t.as_village_staff(VILLAGE_A).submit_application(req).await);
            assert_invalid(&s, field, rule);
            nothing_stored(&t, what).await;
        }
        let mut r = good();
        r.request_id = String::new();
        let s = err(t.as_village_staff(VILLAGE_A).submit_application(r).await);
        assert_invalid(&s, "request_id", "R-IN-8");
        nothing_stored(&t, "missing request id").await;

        // Nothing was published either.
        assert!(
            t.intake_events(&pb::ApplicationSubmitted::full_name())
                .await
                .is_empty()
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-3 (with R-CR-3, R-CR-10, R-RK-9): a refusal is `FailedPrecondition` naming every rule
/// that failed at once, and stores nothing but the refusal itself with its request id (R-IN-8).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_refusal_lists_every_failed_rule_and_stores_nothing() {
    bounded(90, async {
        let t = spawn_intake().await;
        // Born 1950: 75 on 2026-03-02, above the maximum age of 65.
        let old = resident_id_born("19500301", 5);
        // Unrated, blacklisted, in a suspended town, not registered as poor, not self-use,
        // consumption purpose.
        let id = t.publish_blacklisted("bl-1", &old, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        let id = t.publish_npl_exceeded(TOWN_A, 1).await;
        t.wait_applied(&id).await;

        let mut r = household_request(&old, VILLAGE_A, "30000");
        r.purpose = pb::Purpose::Consumption as i32;
        if let Some(Applicant::Household(h)) = r.applicant.as_mut() {
            h.poor_household_number = String::new();
            h.household_borrows_uses_repays = false;
        }
        let s = err(t.as_village_staff(VILLAGE_A).submit_application(r).await);
        assert_refused(&s, &["R-IN-3", "R-CR-3", "R-CR-10", "R-RK-9"]);
        for part in [
            "household.poor_household_number",
            "household.household_borrows_uses_repays",
            "household.resident_id",
            "purpose",
            TOWN_A,
            // R-X-4: the refusal names the policy version it was decided under.
            "(policy luolong-2026.1)",
        ] {
            assert!(s.message().contains(part), "{part} in {:?}", s.message());
        }
        nothing_but_refusals(&t, "admission refusal").await;

        // A veto-ed grade-A rating is no credit grade either (R-CR-3), and an amount above the
        // line is named with R-CR-8 together with the other failures.
        let young = resident_id(9);
        let id = t
            .publish_rating_effective(
                &young,
                VILLAGE_B,
                "AA",
                "30000.00",
                true,
                "2024-01-01",
                "2027-12-31",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        let s = err(t
            .as_village_staff(VILLAGE_B)
            .submit_application(household_request(&young, VILLAGE_B, "10000"))
            .await);
        assert_refused(&s, &["R-CR-3"]);
        let young2 = resident_id(10);
        let id = t
            .publish_rating_effective(
                &young2,
                VILLAGE_B,
                "A",
                "20000.00",
                false,
                "2024-01-01",
                "2027-12-31",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        let id = t.publish_blacklisted("bl-2", &young2, HOUSEHOLD_KIND).await;
        t.wait_applied(&id).await;
        let s = err(t
            .as_village_staff(VILLAGE_B)
            .submit_application(household_request(&young2, VILLAGE_B, "20000.01"))
            .await);
        assert_refused(&s, &["R-CR-8", "R-CR-10"]);
        // An expired rating is not effective (R-CR-3, R-CR-5).
        let expired = resident_id(11);
        let id = t
            .publish_rating_effective(
                &expired,
                VILLAGE_B,
                "AAA",
                "50000.00",
                false,
                "2024-01-01",
                "2026-03-02",
                1,
            )
            .await;
        t.wait_applied(&id).await;
        let s = err(t
            .as_village_staff(VILLAGE_B)
            .submit_application(household_request(&expired, VILLAGE_B, "10000"))
            .await);
        assert_refused(&s, &["R-CR-3"]);
        nothing_but_refusals(&t, "refusals").await;
        assert_eq!(
            count(&t.pool, "select count(*) from idempotency_keys").await,
            4,
            "each refusal kept with its request id"
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1: only the household's own village department records a household application.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn household_applications_are_recorded_by_their_own_village() {
    bounded(60, async {
        let t = spawn_intake().await;
        let resident = resident_id(12);
        t.given_credit_household(&resident, VILLAGE_A).await;
        for mut c in [
            t.as_village_staff(VILLAGE_A2),
            t.as_town_staff(TOWN_A),
            t.as_district_staff(),
            t.as_bank(BANK),
        ] {
            let s = err(c
                .submit_application(household_request(&resident, VILLAGE_A, "1000"))
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        }
        nothing_stored(&t, "wrong filer").await;
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-ID-4: a cooperative qualified by the industry service and filed at the district
/// center starts at DISTRICT_REVIEW; an unqualified one is refused naming R-ID-4.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enterprise_admission_follows_industry_qualification() {
    bounded(60, async {
        let t = spawn_intake().await;
        let qualified = uscc('3', 1);
        let id = t.publish_enterprise_qualified(&qualified, true, 1).await;
        t.wait_applied(&id).await;
        let app = submit(
            &mut t.as_district_staff(),
            enterprise_request(&qualified, TOWN_A, "300000"),
        )
        .await;
        assert_eq!(app.status(), pb::Status::DistrictReview);
        assert_eq!(app.current_step(), pb::Step::District);
        assert_eq!(app.kind(), pb::ApplicantKind::Cooperative);
        assert_eq!(app.town_code, TOWN_A);
        assert_eq!(app.village_code, "");
        // An organisation's code is public: shown in full (only resident IDs are masked).
        assert_eq!(app.applicant_id, qualified);
        // Monday + 5 working days (district step, R-IN-4).
        assert_eq!(app.step_due_on, "2026-03-09");

        // Disqualified (R-ID-4) and never assessed are both refused.
        let disqualified = uscc('3', 2);
        let id = t.publish_enterprise_qualified(&disqualified, true, 1).await;
        t.wait_applied(&id).await;
        let id = t
            .publish_enterprise_qualified(&disqualified, false, 2)
            .await;
        t.wait_applied(&id).await;
        let never = uscc('1', 3);
        for code in [&disqualified, &never] {
            let s = err(t
                .as_district_staff()
                .submit_application(enterprise_request(code, TOWN_A, "300000"))
                .await);
            assert_refused(&s, &["R-ID-4"]);
        }
        assert_eq!(count(&t.pool, "select count(*) from applications").await, 1);
        assert_eq!(
            t.intake_events(&pb::ApplicationSubmitted::full_name())
                .await
                .len(),
            1
        );
        t.shutdown().await;
    })
    .await;
}

/// A message written as raw bytes, to send what no generated client would.
#[derive(Clone, Debug, Default, PartialEq)]
struct RawBytes(Vec<u8>);

impl prost::Message for RawBytes {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// R-X-3: a request body that does not decode (a string that is not UTF-8, a field of the wrong
/// wire type, bytes cut short) is the caller's bad input: `INVALID_ARGUMENT` naming the message
/// and field where prost can, and the rule; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_does_not_decode_is_bad_input() {
    use fupin_platform::{Role, auth::token_for};
    use prost::Message;
    bounded(60, async {
        let t = spawn_intake().await;
        let valid = household_request(&resident_id(81), VILLAGE_A, "1000").encode_to_vec();
        let mut not_utf8 = valid.clone();
        // project_description (field 8, length-delimited) of two bytes that are not UTF-8.
        not_utf8.extend_from_slice(&[0x42, 2, 0xff, 0xfe]);
        let mut wrong_wire_type = valid.clone();
        // term_months (field 6, a varint) sent length-delimited.
        wrong_wire_type.extend_from_slice(&[0x32, 1, 0]);
        let cut_short = valid[..valid.len() - 3].to_vec();
        let token = token_for(SECRET, "v", Role::VillageStaff, VILLAGE_A, None, 3600);
        for (what, body) in [
            ("not UTF-8", not_utf8),
            ("wrong wire type", wrong_wire_type),
            ("cut short", cut_short),
        ] {
            let mut grpc = tonic::client::Grpc::new(t.channel.clone());
            grpc.ready().await.expect("ready");
            let mut request = tonic::Request::new(RawBytes(body));
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii"),
            );
            let s = grpc
                .unary::<_, pb::Application, _>(
                    request,
                    tonic::codegen::http::uri::PathAndQuery::from_static(
                        "/fupin.intake.v1.IntakeService/SubmitApplication",
                    ),
                    fupin_proto::codec::FupinCodec::<RawBytes, pb::Application>::default(),
                )
                .await
                .expect_err(what);
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert!(
                s.message().starts_with("request: ") && s.message().ends_with("[R-X-3]"),
                "{what}: {}",
                s.message()
            );
        }
        nothing_stored(&t, "undecodable requests").await;
        t.shutdown().await;
    })
    .await;
}
