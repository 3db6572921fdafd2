//! R-CR-11 personal data: resident IDs, names and phones are sealed at rest (the read model
//! keeps only blind indexes), shown masked by role, and every response that shows them unmasked
//! is in `pii_access_log` with the fields it showed.

mod common;

use common::*;
use fupin_proto::intake::v1 as pb;
use tonic::Code;
use uuid::Uuid;

const NAME: &str = "王建国";
const PHONE: &str = "13800138000";
const OBJECTOR: &str = "赵某某";
const COMPLAINANT: &str = "钱某某";

/// Rows of `table` whose text form (bytea shown as hex) contains `value` as text or as bytes.
/// The village files an objection (by [`OBJECTOR`]) and lodges a complaint about `app`: each
/// stores a sealed name.
async fn object_and_complain(t: &TestIntake, app: &str) {
    t.as_village_staff(VILLAGE_A)
        .file_objection(objection_req(app, OBJECTOR))
        .await
        .expect("objection");
    t.as_village_staff(VILLAGE_A)
        .lodge_complaint(complaint_req(VILLAGE_A, app))
        .await
        .expect("complaint");
}

/// An application's sealed applicant ID, name and phone, as stored.
async fn sealed_applicant(t: &TestIntake, id: Uuid) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    sqlx::query_as(
        "select applicant_id_enc, applicant_name_enc, phone_enc from applications where id = $1",
    )
    .bind(id)
    .fetch_one(&t.pool)
    .await
    .expect("sealed applicant")
}

async fn rows_containing(t: &TestIntake, table: &str, value: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} r
         where strpos(r::text, $1) > 0
            or strpos(r::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0"
    )))
    .bind(value)
    .fetch_one(&t.pool)
    .await
    .expect("scan")
}

async fn rows(t: &TestIntake, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(&t.pool)
        .await
        .expect("count")
}

/// `(role, fields)` of the access-log rows of one RPC, oldest first.
async fn logged(t: &TestIntake, rpc: &str) -> Vec<(String, Vec<String>)> {
    sqlx::query_as("select role, fields from pii_access_log where rpc = $1 order by id")
        .bind(rpc)
        .fetch_all(&t.pool)
        .await
        .expect("access log")
}

/// rpc, role, application_id, complaint_id, fields.
type LogRow = (String, String, Option<Uuid>, Option<Uuid>, Vec<String>);

fn fields(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| (*s).to_owned()).collect()
}

fn objection_req(app: &str, objector: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: app.to_owned(),
        objector: objector.to_owned(),
        content: "the household already has a loan with another bank".into(),
    }
}

fn complaint_req(area: &str, app: &str) -> pb::LodgeComplaintRequest {
    pb::LodgeComplaintRequest {
        request_id: rid(),
        complainant: COMPLAINANT.into(),
        content: "the village did not post the notice".into(),
        area_code: area.to_owned(),
        application_id: app.to_owned(),
    }
}

/// R-CR-11 at rest, R-IN-3: after a household applies (its rating and a neighbour's blacklist
/// entry in the read model, an objection and a complaint on file), no column of applications,
/// rm_credit_ratings, rm_blacklist, complaints, objections or the stored idempotent responses
/// holds a resident ID, name or phone, as text or as bytes; the sealed values open with the
/// service's current key in their own column and row; admission still finds the rating and the
/// blacklist entry by blind index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_is_sealed_at_rest_and_found_by_blind_index() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(101);
        let listed = resident_id(102);
        t.given_credit_household(&resident, VILLAGE_A).await;
        t.given_credit_household(&listed, VILLAGE_A).await;
        let id = t
            .publish_blacklisted("bl-101", &listed, HOUSEHOLD_KIND)
            .await;
        t.wait_applied(&id).await;

        // R-IN-3 through the blind index: the rating admits, the blacklist refuses.
        let app = t.submit_household(&resident, VILLAGE_A, "15000").await;
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .submit_application(household_request(&listed, VILLAGE_A, "1000"))
            .await);
        assert_refused(&s, &["R-CR-10"]);

        t.approve_to_notice(&app).await;
        object_and_complain(&t, &app.id).await;

        let tables = [
            "applications",
            "rm_credit_ratings",
            "rm_blacklist",
            "complaints",
            "objections",
            // Stored responses show what the caller saw (name and phone for village staff).
            "idempotency_keys",
        ];
        for table in tables {
            assert!(rows(&t, table).await > 0, "{table} has rows to scan");
            for secret in [
                resident.as_str(),
                &listed,
                NAME,
                PHONE,
                OBJECTOR,
                COMPLAINANT,
            ] {
                assert_eq!(
                    rows_containing(&t, table, secret).await,
                    0,
                    "R-CR-11: {table} holds {secret:?} in the clear"
                );
            }
        }
        // The scan does see plain values where they are (the check is not vacuous): as text,
        // and as bytes inside a bytea.
        assert_eq!(rows_containing(&t, "applications", VILLAGE_A).await, 1);
        sqlx::query("create table scan_probe (b bytea not null)")
            .execute(&t.pool)
            .await
            .unwrap();
        sqlx::query("insert into scan_probe values (convert_to($1, 'UTF8'))")
            .bind(format!("payload {VILLAGE_A} payload"))
            .execute(&t.pool)
            .await
            .unwrap();
        assert_eq!(rows_containing(&t, "scan_probe", VILLAGE_A).await, 1);
        // Event payloads carry personal data to subscribers; the outbox keeps no copy once
        // JetStream has acknowledged an event: `outbox_drained` fails the test if a published
        // row stays.
        t.outbox_drained().await;

        // The read model is keyed by the blind index, the applicant row carries the same one.
        let index = t.subject_index(&resident);
        let (ratings, applications): (i64, i64) = sqlx::query_as(
            "select (select count(*) from rm_credit_ratings where subject_idx = $1),
                    (select count(*) from applications where applicant_id_idx = $1)",
        )
        .bind(&index)
        .fetch_one(&t.pool)
        .await
        .unwrap();
        assert_eq!((ratings, applications), (1, 1));

        // Sealed with the current key (t2), bound to column and row.
        let uuid = Uuid::parse_str(&app.id).unwrap();
        let (id_enc, name_enc, phone_enc) = sealed_applicant(&t, uuid).await;
        use fupin_intake::store::pii::open;
        assert_eq!(t.pii.key_id_of(&name_enc), Ok("t2"));
        assert_eq!(
            open(&t.pii, "applications.applicant_id", uuid, &id_enc).unwrap(),
            resident
        );
        assert_eq!(
            open(&t.pii, "applications.applicant_name", uuid, &name_enc).unwrap(),
            NAME
        );
        assert_eq!(
            open(&t.pii, "applications.phone", uuid, &phone_enc).unwrap(),
            PHONE
        );
        assert!(open(&t.pii, "applications.phone", uuid, &name_enc).is_err());
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-CR-11: the legal representative an enterprise or cooperative application names is
/// kept (it used to be checked and dropped), sealed like the applicant's name, shown like a
/// name (in full to the filing village and the bank, masked to the district) with unmasked
/// reads logged, and correctable on resubmission, recorded as corrected without its values.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organisations_legal_representative_is_kept_sealed_and_shown_like_a_name() {
    bounded(90, async {
        let t = spawn_intake().await;
        let code = uscc('3', 301);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let mut req = enterprise_request(&code, VILLAGE_A, "100000");
        if let Some(pb::submit_application_request::Applicant::Enterprise(e)) = &mut req.applicant {
            e.legal_representative = " 李卫东 ".into();
        }
        let mut village = t.as_village_staff(VILLAGE_A);
        let app = submit(&mut village, req).await;
        assert_eq!(app.legal_representative, "李卫东", "the filer's own input");

        let shown = |a: pb::Application| a.legal_representative;
        let mut district = t.as_district_staff();
        assert_eq!(
            shown(t.get_as(&mut village, &app.id).await.unwrap()),
            "李卫东"
        );
        assert_eq!(
            shown(t.get_as(&mut district, &app.id).await.unwrap()),
            "李**"
        );
        let reads = logged(&t, "GetApplication").await;
        assert_eq!(
            reads,
            vec![(
                "village_staff".to_owned(),
                fields(&["legal_representative"])
            )],
            "the village's unmasked read is logged, the district's masked one not"
        );

        // Sealed in its own column and row; in the clear nowhere.
        t.outbox_drained().await;
        for table in ["applications", "idempotency_keys", "transitions"] {
            assert_eq!(rows_containing(&t, table, "李卫东").await, 0, "{table}");
        }
        let uuid = Uuid::parse_str(&app.id).unwrap();
        let sealed: Vec<u8> =
            sqlx::query_scalar("select legal_rep_enc from applications where id = $1")
                .bind(uuid)
                .fetch_one(&t.pool)
                .await
                .unwrap();
        use fupin_intake::store::pii::open;
        assert_eq!(
            open(&t.pii, "applications.legal_representative", uuid, &sealed).unwrap(),
            "李卫东"
        );
        assert!(open(&t.pii, "applications.applicant_name", uuid, &sealed).is_err());

        // Returned and corrected: a new representative, recorded without either name.
        review(
            &mut village,
            &app.id,
            pb::Decision::ReturnForCorrection,
            "法定代表人已变更",
        )
        .await;
        let a = village
            .resubmit_application(pb::ResubmitApplicationRequest {
                request_id: rid(),
                application_id: app.id.clone(),
                enterprise: Some(pb::EnterpriseCorrection {
                    legal_representative: "王建设".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("resubmitted")
            .into_inner();
        assert_eq!(a.legal_representative, "王建设");
        assert_eq!(
            shown(t.get_as(&mut district, &app.id).await.unwrap()),
            "王**"
        );
        let history = district
            .list_transitions(pb::ListTransitionsRequest {
                application_id: app.id.clone(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .transitions;
        let corrections = &history.last().expect("the resubmission").corrections;
        assert_eq!(corrections.len(), 1, "{corrections:?}");
        let c = &corrections[0];
        assert_eq!(
            (c.field.as_str(), c.from.as_str(), c.to.as_str(), c.personal),
            ("enterprise.legal_representative", "", "", true)
        );
        t.outbox_drained().await;
        for table in ["applications", "idempotency_keys", "transitions"] {
            assert_eq!(rows_containing(&t, table, "王建设").await, 0, "{table}");
        }
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11: a sealed value that was tampered with, or moved to another row, does not open: the
/// read fails as an internal error instead of showing an empty or another person's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_or_moved_value_fails_the_read() {
    bounded(60, async {
        let t = spawn_intake().await;
        let (r1, r2) = (resident_id(111), resident_id(112));
        t.given_credit_household(&r1, VILLAGE_A).await;
        t.given_credit_household(&r2, VILLAGE_A).await;
        let a1 = t.submit_household(&r1, VILLAGE_A, "1000").await;
        let a2 = t.submit_household(&r2, VILLAGE_A, "1000").await;
        let mut village = t.as_village_staff(VILLAGE_A);
        assert_eq!(t.get_as(&mut village, &a1.id).await.unwrap().applicant_name, NAME);

        sqlx::query(
            "update applications set phone_enc = set_byte(phone_enc, 30, get_byte(phone_enc, 30) # 1)
             where id = $1::uuid",
        )
        .bind(&a1.id)
        .execute(&t.pool)
        .await
        .unwrap();
        let s = t.get_as(&mut village, &a1.id).await.unwrap_err();
        assert_eq!(s.code(), Code::Internal, "{s:?}");

        sqlx::query(
            "update applications set applicant_name_enc =
               (select applicant_name_enc from applications where id = $1::uuid)
             where id = $2::uuid",
        )
        .bind(&a1.id)
        .bind(&a2.id)
        .execute(&t.pool)
        .await
        .unwrap();
        let s = t.get_as(&mut village, &a2.id).await.unwrap_err();
        assert_eq!(s.code(), Code::Internal, "{s:?}");
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 masking by role and the access log: the lending bank sees everything, village staff
/// the name and phone but a masked ID, town and district staff everything masked, operators
/// nothing; each unmasked response is logged with its fields (lists one row per application),
/// masked ones and echoes of the caller's own submission are not. An organisation's USCC and
/// name are public: shown in full, never logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_sees_its_masking_and_unmasked_reads_are_logged_with_fields() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(121);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "15000").await;
        // The submitting village staff: name and phone as sent, ID masked, nothing logged.
        assert_eq!(
            (
                app.applicant_id.as_str(),
                app.applicant_name.as_str(),
                app.applicant_phone.as_str()
            ),
            (masked(&resident).as_str(), NAME, PHONE)
        );
        assert!(logged(&t, "SubmitApplication").await.is_empty());

        t.approve_to_notice(&app).await;
        // Only the village step's response showed personal data unmasked.
        assert_eq!(
            logged(&t, "ReviewApplication").await,
            vec![(
                "village_staff".to_owned(),
                fields(&["applicant_name", "applicant_phone"])
            )]
        );
        t.set_time("2026-03-07T09:00:00+08:00");
        t.recommend(&app.id, BANK).await.expect("recommend");

        let shown = |a: pb::Application| (a.applicant_id, a.applicant_name, a.applicant_phone);
        let clear = (resident.clone(), NAME.to_owned(), PHONE.to_owned());
        let all_masked = (
            masked(&resident),
            "王**".to_owned(),
            "138****8000".to_owned(),
        );
        let (tr, id) = (&t, app.id.as_str());
        let get = |mut c: Client| async move { tr.get_as(&mut c, id).await };
        assert_eq!(
            shown(get(t.as_village_staff(VILLAGE_A)).await.unwrap()),
            (masked(&resident), NAME.to_owned(), PHONE.to_owned())
        );
        assert_eq!(
            shown(get(t.as_town_staff(TOWN_A)).await.unwrap()),
            all_masked
        );
        assert_eq!(shown(get(t.as_district_staff()).await.unwrap()), all_masked);
        assert_eq!(shown(get(t.as_bank(BANK)).await.unwrap()), clear);
        assert_eq!(
            get(t.as_operator()).await.unwrap_err().code(),
            Code::NotFound,
            "operators see no application"
        );
        assert_eq!(
            logged(&t, "GetApplication").await,
            vec![
                (
                    "village_staff".to_owned(),
                    fields(&["applicant_name", "applicant_phone"])
                ),
                (
                    "bank".to_owned(),
                    fields(&["applicant_id", "applicant_name", "applicant_phone"])
                ),
            ]
        );
        let (caller, logged_app): (String, Uuid) = sqlx::query_as(
            "select caller, application_id from pii_access_log
             where rpc = 'GetApplication' and role = 'bank'",
        )
        .fetch_one(&t.pool)
        .await
        .unwrap();
        assert_eq!(
            (caller.as_str(), logged_app.to_string()),
            (format!("bank-{BANK}").as_str(), app.id.clone())
        );

        // Lists: one row per application shown unmasked, in one statement.
        let second = resident_id(122);
        t.given_credit_household(&second, VILLAGE_A).await;
        let app2 = t.submit_household(&second, VILLAGE_A, "2000").await;
        let list = |mut c: Client| async move {
            c.list_applications(pb::ListApplicationsRequest::default())
                .await
                .expect("list")
                .into_inner()
                .applications
        };
        let page = list(t.as_village_staff(VILLAGE_A)).await;
        assert_eq!(page.len(), 2);
        assert!(
            page.iter()
                .all(|a| a.applicant_name == NAME && a.applicant_phone == PHONE)
        );
        let page = list(t.as_town_staff(TOWN_A)).await;
        assert!(
            page.iter()
                .all(|a| a.applicant_name == "王**" && a.applicant_phone == "138****8000")
        );
        let listed: Vec<(String, Uuid, Vec<String>)> = sqlx::query_as(
            "select role, application_id, fields from pii_access_log
             where rpc = 'ListApplications' order by application_id",
        )
        .fetch_all(&t.pool)
        .await
        .unwrap();
        let ids: Vec<String> = listed.iter().map(|(_, a, _)| a.to_string()).collect();
        assert_eq!(ids, vec![app.id.clone(), app2.id.clone()]);
        assert!(listed.iter().all(|(role, _, f)| role == "village_staff"
            && *f == fields(&["applicant_name", "applicant_phone"])));
        let page = t
            .as_bank(BANK)
            .list_recommended_applications(pb::ListRecommendedApplicationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .applications;
        assert_eq!(page.into_iter().map(shown).collect::<Vec<_>>(), vec![clear]);
        assert_eq!(
            logged(&t, "ListRecommendedApplications").await,
            vec![(
                "bank".to_owned(),
                fields(&["applicant_id", "applicant_name", "applicant_phone"])
            )]
        );

        // An organisation: public code and name for everyone, no phone, nothing logged.
        let code = uscc('3', 121);
        let id = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&id).await;
        let org = submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_A, "300000"),
        )
        .await;
        let before: i64 = count(&t.pool, "select count(*) from pii_access_log").await;
        for c in [t.as_town_staff(TOWN_A), t.as_district_staff()] {
            let id = org.id.clone();
            let mut c = c;
            let a = t.get_as(&mut c, &id).await.unwrap();
            assert_eq!(
                (
                    a.applicant_id.as_str(),
                    a.applicant_name.as_str(),
                    a.applicant_phone.as_str()
                ),
                (code.as_str(), "洛龙区牡丹种植合作社", "")
            );
        }
        assert_eq!(
            count(&t.pool, "select count(*) from pii_access_log").await,
            before
        );
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 for third parties: objectors' and complainants' names are masked like applicants'
/// (village staff see them, town and district staff see `钱**`), and a response that shows one
/// stored unmasked is logged: complaints by complaint id, objections by application id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objectors_and_complainants_are_masked_like_names() {
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(131);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let app = t.submit_household(&resident, VILLAGE_A, "15000").await;
        t.approve_to_notice(&app).await;

        // Echoes: each filer sees its own input as its role may, nothing is logged.
        let o = t
            .as_village_staff(VILLAGE_A)
            .file_objection(objection_req(&app.id, OBJECTOR))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(o.objector, OBJECTOR);
        let o2 = t
            .as_district_staff()
            .file_objection(objection_req(&app.id, OBJECTOR))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(o2.objector, "赵**");
        assert!(logged(&t, "FileObjection").await.is_empty());
        // The district resolves on the record: masked, not logged.
        for id in [&o.id, &o2.id] {
            let r = t
                .as_district_staff()
                .resolve_objection(pb::ResolveObjectionRequest {
                    request_id: rid(),
                    objection_id: id.clone(),
                    upheld: false,
                    resolution: "loan with another bank repaid".into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.objector, "赵**");
        }
        assert!(logged(&t, "ResolveObjection").await.is_empty());

        let c = t
            .as_village_staff(VILLAGE_A)
            .lodge_complaint(complaint_req(VILLAGE_A, &app.id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(c.complainant, COMPLAINANT);
        assert!(logged(&t, "LodgeComplaint").await.is_empty());
        let list = |mut c: Client| async move {
            c.list_complaints(pb::ListComplaintsRequest::default())
                .await
                .expect("list complaints")
                .into_inner()
                .complaints
        };
        let seen = list(t.as_town_staff(TOWN_A)).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].complainant, "钱**");
        assert!(logged(&t, "ListComplaints").await.is_empty());
        let seen = list(t.as_village_staff(VILLAGE_A)).await;
        assert_eq!(seen[0].complainant, COMPLAINANT);
        let assigned = t
            .as_town_staff(TOWN_A)
            .assign_complaint(pb::AssignComplaintRequest {
                request_id: rid(),
                complaint_id: c.id.clone(),
                organisation_area_code: VILLAGE_A.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(assigned.complainant, "钱**");
        let answered = t
            .as_village_staff(VILLAGE_A)
            .answer_complaint(pb::AnswerComplaintRequest {
                request_id: rid(),
                complaint_id: c.id.clone(),
                answer: "the notice is posted at the village office".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answered.complainant, COMPLAINANT);

        let rows: Vec<LogRow> = sqlx::query_as(
            "select rpc, role, application_id, complaint_id, fields from pii_access_log
             where complaint_id is not null or 'objector' = any(fields) order by id",
        )
        .fetch_all(&t.pool)
        .await
        .unwrap();
        let complaint = Uuid::parse_str(&c.id).ok();
        let expected: Vec<LogRow> = ["ListComplaints", "AnswerComplaint"]
            .into_iter()
            .map(|rpc| {
                (
                    rpc.to_owned(),
                    "village_staff".to_owned(),
                    None,
                    complaint,
                    fields(&["complainant"]),
                )
            })
            .collect();
        assert_eq!(rows, expected);
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11 key rotation: one re-sealing pass moves every value sealed with the retiring key
/// (applicant ID, name and phone, objector, complainant, stored responses) to the current key,
/// and a second pass finds nothing left; with no key retiring, nothing is touched. The old key
/// can then be removed: every value opens without it, and the service still shows and replays
/// what it did. A value that does not open is left as it is and counted. The timer's first
/// pass runs at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pass_reseals_every_value_with_the_current_key() {
    use fupin_intake::{reseal, store::pii::open};
    use fupin_platform::PiiCipher;
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(110);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let req = household_request(&resident, VILLAGE_A, "15000");
        let app = submit(&mut t.as_village_staff(VILLAGE_A), req.clone()).await;
        t.approve_to_notice(&app).await;
        object_and_complain(&t, &app.id).await;
        // The service seals with t2 (current) and reads t1. Rotate the other way round: t1
        // becomes current, t2 is kept for reading until the pass is done.
        let (t2, t1) = PII_KEYS.split_once(',').expect("two keys");
        let rotated = PiiCipher::from_config(&format!("{t1},{t2}"), PII_INDEX_KEY).unwrap();
        let retired = PiiCipher::from_config(t1, PII_INDEX_KEY).unwrap();
        let responses = count(
            &t.pool,
            "select count(*) from idempotency_keys where response is not null",
        )
        .await;
        assert!(responses >= 6, "submission, reviews, objection, complaint");

        // Only keys named as retiring are re-sealed: the key must be configured and not
        // current, and with none named a pass touches nothing.
        let names = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            reseal::Retiring::new(&rotated, &names(&["t1"])).is_err(),
            "current"
        );
        assert!(
            reseal::Retiring::new(&rotated, &names(&["t7"])).is_err(),
            "unknown"
        );
        let (_keep, stop) = fupin_platform::shutdown::channel();
        let nothing = reseal::Retiring::new(&rotated, &[]).unwrap();
        let none = reseal::pass(&t.pool, &rotated, &nothing, &stop)
            .await
            .expect("pass");
        assert_eq!(none, Default::default());
        let retiring = reseal::Retiring::new(&rotated, &names(&["t2"])).unwrap();

        let first = reseal::pass(&t.pool, &rotated, &retiring, &stop)
            .await
            .expect("pass");
        assert_eq!(first.failed, 0);
        // The applicant's three values and its (empty) legal representative, the objector,
        // the complainant, the stored responses.
        assert_eq!(first.resealed as i64, 4 + 1 + 1 + responses);
        let second = reseal::pass(&t.pool, &rotated, &retiring, &stop)
            .await
            .expect("pass");
        assert_eq!(second, Default::default(), "nothing left to re-seal");

        // Everything opens with t1 alone.
        let uuid = Uuid::parse_str(&app.id).unwrap();
        let (id_enc, name_enc, phone_enc) = sealed_applicant(&t, uuid).await;
        for (column, sealed, plain) in [
            ("applications.applicant_id", &id_enc, resident.as_str()),
            ("applications.applicant_name", &name_enc, NAME),
            ("applications.phone", &phone_enc, PHONE),
        ] {
            assert_eq!(retired.key_id_of(sealed), Ok("t1"), "{column}");
            assert_eq!(open(&retired, column, uuid, sealed).unwrap(), plain);
        }
        let (objection, objector_enc): (Uuid, Vec<u8>) =
            sqlx::query_as("select id, objector_enc from objections")
                .fetch_one(&t.pool)
                .await
                .unwrap();
        assert_eq!(
            open(&retired, "objections.objector", objection, &objector_enc).unwrap(),
            OBJECTOR
        );
        let (complaint, complainant_enc): (Uuid, Vec<u8>) =
            sqlx::query_as("select id, complainant_enc from complaints")
                .fetch_one(&t.pool)
                .await
                .unwrap();
        assert_eq!(
            open(
                &retired,
                "complaints.complainant",
                complaint,
                &complainant_enc
            )
            .unwrap(),
            COMPLAINANT
        );
        let stored: Vec<Vec<u8>> =
            sqlx::query_scalar("select response from idempotency_keys where response is not null")
                .fetch_all(&t.pool)
                .await
                .unwrap();
        for r in &stored {
            assert_eq!(retired.key_id_of(r), Ok("t1"));
        }

        // The service (which reads t1 too) shows and replays as before.
        let again = submit(&mut t.as_village_staff(VILLAGE_A), req).await;
        assert_eq!(again, app, "the retry replays the first response");
        let seen = t
            .get_as(&mut t.as_village_staff(VILLAGE_A), &app.id)
            .await
            .expect("get");
        assert_eq!(
            (seen.applicant_name.as_str(), seen.applicant_phone.as_str()),
            (NAME, PHONE)
        );

        // A value that does not open (here: sealed with t2 for another row) is left alone and
        // counted.
        let orphan =
            fupin_intake::store::pii::seal(&t.pii, "applications.phone", Uuid::now_v7(), PHONE);
        sqlx::query("update applications set phone_enc = $1 where id = $2")
            .bind(&orphan)
            .bind(uuid)
            .execute(&t.pool)
            .await
            .unwrap();
        let third = reseal::pass(&t.pool, &rotated, &retiring, &stop)
            .await
            .expect("pass");
        assert_eq!((third.resealed, third.failed), (0, 1));
        let kept: Vec<u8> = sqlx::query_scalar("select phone_enc from applications where id = $1")
            .bind(uuid)
            .fetch_one(&t.pool)
            .await
            .unwrap();
        assert_eq!(kept, orphan);

        // The service's timer runs a pass as soon as it starts: a name sealed meanwhile with
        // the old key (by a replica not yet rotated) is moved too.
        let name =
            fupin_intake::store::pii::seal(&t.pii, "applications.applicant_name", uuid, NAME);
        sqlx::query("update applications set applicant_name_enc = $1 where id = $2")
            .bind(&name)
            .bind(uuid)
            .execute(&t.pool)
            .await
            .unwrap();
        let (trigger, timer_stop) = fupin_platform::shutdown::channel();
        let timer = tokio::spawn(reseal::run_every(
            t.pool.clone(),
            rotated.clone(),
            retiring.clone(),
            std::time::Duration::from_secs(3600),
            timer_stop,
        ));
        let (pool, retired) = (&t.pool, &retired);
        wait_until("the timer's first pass", || async move {
            let name: Vec<u8> =
                sqlx::query_scalar("select applicant_name_enc from applications where id = $1")
                    .bind(uuid)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            retired.key_id_of(&name) == Ok("t1")
        })
        .await;
        trigger.trigger();
        timer.await.expect("the timer stops on shutdown");
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11: a refused submission tells the clerk about the applicant's credit facts (no rating,
/// the line, the blacklist) for whatever resident id was typed in. Each refusal is logged with
/// the clerk, the request id, the applicant's blind index and the rules it named, in the same
/// transaction that keeps it; its retry (the same answer, replayed) and bad input (no facts
/// read) add nothing, and an admitted submission is not a disclosure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_that_show_credit_facts_are_logged() {
    bounded(60, async {
        let t = spawn_intake().await;
        let unrated = resident_id(93);
        let mut village = t.as_village_staff(VILLAGE_A);
        let req = household_request(&unrated, VILLAGE_A, "5000");
        let first = village
            .submit_application(req.clone())
            .await
            .expect_err("no rating");
        assert_eq!(first.code(), Code::FailedPrecondition);
        let again = village
            .submit_application(req.clone())
            .await
            .expect_err("replayed");
        assert_eq!(again.message(), first.message());
        let mut bad = household_request(&unrated, VILLAGE_A, "5000.001");
        bad.request_id = rid();
        assert_eq!(
            village.submit_application(bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
        let rated = resident_id(94);
        t.given_credit_household(&rated, VILLAGE_A).await;
        t.submit_household(&rated, VILLAGE_A, "5000").await;

        type Disclosure = (String, String, String, String, Vec<u8>, Vec<String>);
        let rows: Vec<Disclosure> = sqlx::query_as(
            "select caller, role, rpc, request_id, subject_idx, rules from admission_disclosures",
        )
        .fetch_all(&t.pool)
        .await
        .expect("disclosures");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let (caller, role, rpc, request_id, idx, rules) = &rows[0];
        assert_eq!(
            (role.as_str(), rpc.as_str(), request_id.as_str()),
            (
                "village_staff",
                "SubmitApplication",
                req.request_id.as_str()
            )
        );
        assert!(caller.contains(VILLAGE_A), "{caller}");
        let scope: (Option<String>, Option<String>) =
            sqlx::query_as("select caller_area, caller_bank_id from admission_disclosures")
                .fetch_one(&t.pool)
                .await
                .expect("the disclosure's scope");
        assert_eq!(scope, (Some(VILLAGE_A.into()), None), "the clerk's village");
        assert_eq!(idx, &t.subject_index(&unrated));
        assert_eq!(rules, &vec!["R-CR-3".to_owned()]);
        t.shutdown().await;
    })
    .await;
}

/// R-CR-11, R-IN-8: a write's request fingerprint is stored keyed with the index key. The
/// request holds the resident id, name and phone in the clear and the rest of it is in readable
/// columns, so an unkeyed hash let anyone reading the table find the resident id by hashing the
/// few thousand birth dates. A fingerprint an earlier version stored unkeyed still replays for
/// its request (and refuses another one), before and after the keying pass keys it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_fingerprints_are_stored_keyed_and_earlier_ones_still_replay() {
    use fupin_kernel::AreaCode;
    use fupin_platform::{
        Caller, Role,
        idempotency::{self, RequestKey},
    };
    bounded(90, async {
        let t = spawn_intake().await;
        let resident = resident_id(111);
        t.given_credit_household(&resident, VILLAGE_A).await;
        let req = household_request(&resident, VILLAGE_A, "15000");
        let mut village = t.as_village_staff(VILLAGE_A);
        let app = submit(&mut village, req.clone()).await;
        let stored = || async {
            sqlx::query_scalar::<_, Vec<u8>>(
                "select request_hash from idempotency_keys where request_id = $1",
            )
            .bind(&req.request_id)
            .fetch_one(&t.pool)
            .await
            .expect("key row")
        };
        let caller = Caller {
            subject: format!("village-staff-{VILLAGE_A}"),
            role: Role::VillageStaff,
            area: AreaCode::parse(VILLAGE_A).unwrap(),
            bank_id: None,
        };
        let key = RequestKey::new(&caller, "SubmitApplication", &req.request_id, &req).unwrap();
        let unkeyed = key.request_hash.clone();
        let keyed = key.sealed_with(&t.pii).request_hash;
        assert_eq!(stored().await, keyed);
        assert_ne!(keyed, unkeyed);
        assert_eq!(keyed.len(), 33);

        // As an earlier version stored it.
        sqlx::query("update idempotency_keys set request_hash = $1 where request_id = $2")
            .bind(&unkeyed)
            .bind(&req.request_id)
            .execute(&t.pool)
            .await
            .unwrap();
        let replayed = |a: pb::Application| assert_eq!(a.id, app.id);
        let mut changed = req.clone();
        changed.amount = money("14000");
        for expected in [1, 0] {
            replayed(submit(&mut village, req.clone()).await);
            let s = err(village.submit_application(changed.clone()).await);
            assert_invalid(&s, "request_id", "R-IN-8");
            let (_keep, stop) = fupin_platform::shutdown::channel();
            let keyed_now = idempotency::key_request_hashes(&t.pool, &t.pii, 500, &stop)
                .await
                .expect("keying pass");
            // The first pass keys the one unkeyed row, the second finds none.
            assert_eq!(keyed_now, expected);
            assert_eq!(stored().await, keyed);
        }
        assert_eq!(
            count(
                &t.pool,
                "select count(*) from idempotency_keys where length(request_hash) <> 33"
            )
            .await,
            0
        );
        t.shutdown().await;
    })
    .await;
}
