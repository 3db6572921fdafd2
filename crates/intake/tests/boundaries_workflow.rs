//! The application workflow as a state machine (R-IN-2, R-IN-5, R-IN-6) at its boundaries:
//! every action by every caller in every state, checked against a small model of the
//! documented machine written here (SPEC R-IN-2/5/6, README "How intake reads the rules");
//! the history that records each move (who, when, why); and seeded random sequences of actions
//! checked step by step against the same model.

mod common;

use std::future::Future;

use chrono::{DateTime, Days, Months, NaiveDate};
use common::*;
use fupin_proto::{common::v1::PageRequest, intake::v1 as pb};
use prost::Name;
use tonic::{Code, Status};

// =====================================================================================
// Callers
// =====================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// Village A's department: the applicants' village.
    Village,
    /// Village A2's department: the same town, another village.
    OtherVillage,
    /// Village B's department: another town.
    OtherTownVillage,
    Town,
    OtherTown,
    District,
    /// The partner bank applications are recommended to.
    Bank,
    OtherBank,
    Operator,
}

const EVERYONE: [Who; 9] = [
    Who::Village,
    Who::OtherVillage,
    Who::OtherTownVillage,
    Who::Town,
    Who::OtherTown,
    Who::District,
    Who::Bank,
    Who::OtherBank,
    Who::Operator,
];

impl Who {
    fn client(self, t: &TestIntake) -> Client {
        match self {
            Who::Village => t.as_village_staff(VILLAGE_A),
            Who::OtherVillage => t.as_village_staff(VILLAGE_A2),
            Who::OtherTownVillage => t.as_village_staff(VILLAGE_B),
            Who::Town => t.as_town_staff(TOWN_A),
            Who::OtherTown => t.as_town_staff(TOWN_B),
            Who::District => t.as_district_staff(),
            Who::Bank => t.as_bank(BANK),
            Who::OtherBank => t.as_bank(OTHER_BANK),
            Who::Operator => t.as_operator(),
        }
    }

    /// The token subject common/mod.rs gives this caller: who a transition names.
    fn subject(self) -> String {
        match self {
            Who::Village => format!("village-staff-{VILLAGE_A}"),
            Who::OtherVillage => format!("village-staff-{VILLAGE_A2}"),
            Who::OtherTownVillage => format!("village-staff-{VILLAGE_B}"),
            Who::Town => format!("town-staff-{TOWN_A}"),
            Who::OtherTown => format!("town-staff-{TOWN_B}"),
            Who::District => "district-center-1".into(),
            Who::Bank => format!("bank-{BANK}"),
            Who::OtherBank => format!("bank-{OTHER_BANK}"),
            Who::Operator => "ops-1".into(),
        }
    }

    fn role(self) -> &'static str {
        match self {
            Who::Village | Who::OtherVillage | Who::OtherTownVillage => "village_staff",
            Who::Town | Who::OtherTown => "town_staff",
            Who::District => "district_staff",
            Who::Bank | Who::OtherBank => "bank",
            Who::Operator => "operator",
        }
    }

    fn is_staff(self) -> bool {
        !matches!(self, Who::Bank | Who::OtherBank | Who::Operator)
    }
}

// =====================================================================================
// The documented state machine
// =====================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tier {
    Village,
    Town,
    District,
}

impl Tier {
    fn status(self) -> St {
        match self {
            Tier::Village => St::Village,
            Tier::Town => St::Town,
            Tier::District => St::District,
        }
    }

    fn step(self) -> pb::Step {
        match self {
            Tier::Village => pb::Step::Village,
            Tier::Town => pb::Step::Town,
            Tier::District => pb::Step::District,
        }
    }

    /// The one caller whose step this is (R-IN-2: "staff of the right tier whose area
    /// contains the applicant").
    fn staff(self) -> Who {
        match self {
            Tier::Village => Who::Village,
            Tier::Town => Who::Town,
            Tier::District => Who::District,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Village,
    Town,
    District,
    Returned(Tier),
    Notice,
    Held,
    Recommended,
    BankApproved,
    BankRejected,
    Disbursed,
    Rejected,
}

impl St {
    fn pb(self) -> pb::Status {
        match self {
            St::Village => pb::Status::VillageReview,
            St::Town => pb::Status::TownReview,
            St::District => pb::Status::DistrictReview,
            St::Returned(_) => pb::Status::Returned,
            St::Notice => pb::Status::PublicNotice,
            St::Held => pb::Status::OnHold,
            St::Recommended => pb::Status::Recommended,
            St::BankApproved => pb::Status::BankApproved,
            St::BankRejected => pb::Status::BankRejected,
            St::Disbursed => pb::Status::Disbursed,
            St::Rejected => pb::Status::Rejected,
        }
    }

    fn review_tier(self) -> Option<Tier> {
        match self {
            St::Village => Some(Tier::Village),
            St::Town => Some(Tier::Town),
            St::District => Some(Tier::District),
            _ => None,
        }
    }

    /// The step pending (proto: `step_due_on` is "empty when no step is pending").
    fn step(self) -> pb::Step {
        match self {
            St::Recommended => pb::Step::Bank,
            other => other
                .review_tier()
                .map_or(pb::Step::Unspecified, Tier::step),
        }
    }

    /// Where an approval at a staff step goes (R-IN-2: village -> town -> district -> notice).
    fn approved(self) -> St {
        match self {
            St::Village => St::Town,
            St::Town => St::District,
            St::District => St::Notice,
            other => unreachable!("{other:?} is no staff step"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Approve,
    Reject,
    Return,
    Resubmit,
    Object,
    Uphold,
    Dismiss,
    Recommend,
    BankApprove,
    BankReject,
    Disburse,
}

const ACTS: [Act; 11] = [
    Act::Approve,
    Act::Reject,
    Act::Return,
    Act::Resubmit,
    Act::Object,
    Act::Uphold,
    Act::Dismiss,
    Act::Recommend,
    Act::BankApprove,
    Act::BankReject,
    Act::Disburse,
];

const REASON: &str = "household visited on site";
const NOTE: &str = "corrected as asked";
const RESOLUTION: &str = "checked with the village committee";
const BANK_REASON: &str = "insufficient repayment capacity";
const AMOUNT: &str = "3000.00";

const NOT_FOUND: &[Code] = &[Code::NotFound];
const DENIED: &[Code] = &[Code::PermissionDenied];
const STATE: &[Code] = &[Code::FailedPrecondition];
/// The caller never takes this action and the state does not allow it either: refusing on
/// either ground is documented.
const DENIED_OR_STATE: &[Code] = &[Code::PermissionDenied, Code::FailedPrecondition];
const STALE: &[Code] = &[Code::Aborted];
const STALE_OR_REFUSED: &[Code] = &[
    Code::Aborted,
    Code::PermissionDenied,
    Code::FailedPrecondition,
];

/// What the model says an action does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Succeeds and records one transition, `action`, to the state.
    Moves(St, &'static str),
    /// Succeeds without a move: another objection while held; a dismissal while other
    /// objections stay open (README "Objections").
    Stays,
    /// Refused with one of the codes; a FailedPrecondition names the rule (R-X-3).
    Refused(&'static [Code], &'static str),
}

impl Expect {
    /// The same action sent with a stale or future `expected_version` (README: optional
    /// optimistic concurrency): never a success.
    fn stale(self) -> Expect {
        match self {
            Expect::Refused(codes, rule) if codes == NOT_FOUND => Expect::Refused(codes, rule),
            Expect::Moves(..) | Expect::Stays => Expect::Refused(STALE, ""),
            Expect::Refused(..) => Expect::Refused(STALE_OR_REFUSED, ""),
        }
    }

    fn succeeds(&self) -> bool {
        !matches!(self, Expect::Refused(..))
    }
}

#[derive(Clone, Debug)]
struct Move {
    action: &'static str,
    who: Who,
    to: pb::Status,
    /// The "why" the caller gave, when it gave one.
    reason: &'static str,
}

/// One application as the documented machine sees it.
#[derive(Clone, Debug)]
struct Model {
    id: String,
    st: St,
    version: u64,
    /// Last day of the public notice (README: the approval day is day 1 of 5).
    notice_ends: Option<NaiveDate>,
    recommended_on: Option<NaiveDate>,
    /// Objections, oldest first: id and state.
    objections: Vec<(String, &'static str)>,
    moves: Vec<Move>,
}

impl Model {
    fn submitted(a: &pb::Application) -> Model {
        assert_eq!(a.status(), pb::Status::VillageReview, "{a:?}");
        Model {
            id: a.id.clone(),
            st: St::Village,
            version: a.version,
            notice_ends: None,
            recommended_on: None,
            objections: Vec::new(),
            moves: vec![Move {
                action: "submit",
                who: Who::Village,
                to: pb::Status::VillageReview,
                reason: "",
            }],
        }
    }

    /// Staff see inside their area; a bank only what was recommended to it; operators none.
    fn sees(&self, who: Who) -> bool {
        match who {
            Who::Village | Who::Town | Who::District => true,
            Who::Bank => self.recommended_on.is_some(),
            _ => false,
        }
    }

    fn open(&self) -> usize {
        self.objections.iter().filter(|o| o.1 == "open").count()
    }

    /// The objection an Uphold or Dismiss acts on: the oldest open one, else the latest.
    fn target(&self) -> Option<usize> {
        self.objections
            .iter()
            .position(|o| o.1 == "open")
            .or(self.objections.len().checked_sub(1))
    }

    fn in_notice(&self, today: NaiveDate) -> bool {
        self.notice_ends.is_some_and(|end| today <= end)
    }

    /// What `act` by `who` on `today` does; None when it has no target (resolving without
    /// any objection).
    fn expect(&self, act: Act, who: Who, today: NaiveDate) -> Option<Expect> {
        use Expect::{Moves, Refused, Stays};
        if matches!(act, Act::Uphold | Act::Dismiss) && self.objections.is_empty() {
            return None;
        }
        if !self.sees(who) {
            return Some(Refused(NOT_FOUND, ""));
        }
        let past_notice = self.st == St::Notice && !self.in_notice(today);
        Some(match act {
            // README: past the notice the district center rejects or returns instead of
            // recommending.
            Act::Reject if past_notice && who == Who::District => Moves(St::Rejected, "reject"),
            Act::Return if past_notice && who == Who::District => {
                Moves(St::Returned(Tier::District), "return")
            }
            // README "Returned for correction": the tier that returned it may reject it;
            // anyone else is denied (approving or returning it is refused below).
            Act::Reject if matches!(self.st, St::Returned(_)) => match self.st {
                St::Returned(tier) if tier.staff() == who => Moves(St::Rejected, "reject"),
                _ => Refused(DENIED, ""),
            },
            Act::Approve | Act::Reject | Act::Return => match self.st.review_tier() {
                None if who.is_staff() => Refused(STATE, "R-IN-2"),
                None => Refused(DENIED_OR_STATE, "R-IN-2"),
                Some(tier) if tier.staff() != who => Refused(DENIED, ""),
                Some(tier) => match act {
                    Act::Approve => Moves(self.st.approved(), "approve"),
                    Act::Reject => Moves(St::Rejected, "reject"),
                    _ => Moves(St::Returned(tier), "return"),
                },
            },
            // README: "Return for correction goes back to the step that returned it".
            Act::Resubmit => match self.st {
                St::Returned(tier) if who == Who::Village => Moves(tier.status(), "resubmit"),
                St::Returned(_) => Refused(DENIED, ""),
                _ if who == Who::Village => Refused(STATE, "R-IN-2"),
                _ => Refused(DENIED_OR_STATE, "R-IN-2"),
            },
            // README "Objections": any staff over the applicant, during the notice.
            Act::Object if !who.is_staff() => Refused(DENIED, ""),
            Act::Object => match self.st {
                St::Notice if self.in_notice(today) => Moves(St::Held, "objection"),
                St::Held if self.in_notice(today) => Stays,
                _ => Refused(STATE, "R-IN-5"),
            },
            // Only the district resolves (anyone else is denied, whatever the objection's
            // state); the hold lasts until the last open one is dismissed; an upheld one
            // rejects the application.
            Act::Uphold | Act::Dismiss => {
                let i = self.target().expect("an objection");
                if who != Who::District {
                    Refused(DENIED, "")
                } else if self.objections[i].1 != "open" {
                    Refused(STATE, "R-IN-5")
                } else if act == Act::Uphold {
                    Moves(St::Rejected, "objection_upheld")
                } else if self.open() > 1 {
                    Stays
                } else {
                    Moves(St::Notice, "objection_dismissed")
                }
            }
            Act::Recommend if who != Who::District => Refused(DENIED, ""),
            Act::Recommend => match self.st {
                St::Notice if !self.in_notice(today) => Moves(St::Recommended, "recommend"),
                St::Notice | St::Held => Refused(STATE, "R-IN-5"),
                _ => Refused(STATE, "R-IN-2"),
            },
            Act::BankApprove | Act::BankReject | Act::Disburse if who != Who::Bank => {
                Refused(DENIED, "")
            }
            Act::BankApprove if self.st == St::Recommended => {
                Moves(St::BankApproved, "bank_approve")
            }
            Act::BankReject if self.st == St::Recommended => Moves(St::BankRejected, "bank_reject"),
            Act::Disburse if self.st == St::BankApproved => Moves(St::Disbursed, "disburse"),
            Act::BankApprove | Act::BankReject | Act::Disburse => Refused(STATE, "R-IN-6"),
        })
    }

    /// Applies what the service did (as the model expected it) to the model.
    fn apply(
        &mut self,
        act: Act,
        who: Who,
        want: &Expect,
        reply: Option<&Reply>,
        today: NaiveDate,
    ) {
        if !want.succeeds() {
            return;
        }
        if let Expect::Moves(to, action) = want {
            let reason = match act {
                Act::Reject | Act::Return => REASON,
                Act::Resubmit => NOTE,
                // Named by the objection's id (checked below), not by its resolution.
                Act::Recommend => BANK,
                Act::BankReject => BANK_REASON,
                _ => "",
            };
            self.moves.push(Move {
                action,
                who,
                to: to.pb(),
                reason,
            });
            self.version += 1;
            if act == Act::Approve && self.st == St::District {
                self.notice_ends = today.checked_add_days(Days::new(4));
            }
            if act == Act::Return && self.st == St::Notice {
                self.notice_ends = None;
            }
            if act == Act::Recommend {
                self.recommended_on = Some(today);
            }
            self.st = *to;
        }
        match act {
            Act::Object => {
                let Some(Reply::Objection(o)) = reply else {
                    panic!("an objection reply: {reply:?}")
                };
                self.objections.push((o.id.clone(), "open"));
            }
            Act::Uphold => {
                let i = self.target().expect("an objection");
                for (k, o) in self.objections.iter_mut().enumerate() {
                    if k == i {
                        o.1 = "upheld";
                    } else if o.1 == "open" {
                        o.1 = "superseded";
                    }
                }
            }
            Act::Dismiss => {
                let i = self.target().expect("an objection");
                self.objections[i].1 = "dismissed";
            }
            _ => {}
        }
    }
}

// =====================================================================================
// Requests and replies
// =====================================================================================

#[derive(Clone, Debug)]
enum Req {
    Review(pb::ReviewApplicationRequest),
    Resubmit(Box<pb::ResubmitApplicationRequest>),
    Object(pb::FileObjectionRequest),
    Resolve(pb::ResolveObjectionRequest),
    Recommend(pb::RecommendToBankRequest),
    Decide(pb::RecordBankDecisionRequest),
    Disburse(pb::RecordDisbursementRequest),
}

#[derive(Clone, Debug)]
enum Reply {
    App(Box<pb::Application>),
    Objection(Box<pb::Objection>),
}

fn disbursement_req(id: &str, on: NaiveDate) -> pb::RecordDisbursementRequest {
    pb::RecordDisbursementRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        // One loan per account number of a bank (R-IN-6): each application its own.
        loan_account_number: format!("6228-{}", id.replace('-', "")),
        amount: money(AMOUNT),
        disbursed_on: on.to_string(),
        schedule: vec![pb::Instalment {
            due_on: (on + Months::new(12)).to_string(),
            principal: money(AMOUNT),
            interest: money("130.50"),
        }],
    }
}

fn objection_req(id: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        objector: "村民 赵某".into(),
        content: "the household already has a loan with another bank".into(),
    }
}

fn resubmit_req(id: &str) -> pb::ResubmitApplicationRequest {
    pb::ResubmitApplicationRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        note: NOTE.into(),
        ..Default::default()
    }
}

fn bank_reject_req(id: &str, reason: &str) -> pb::RecordBankDecisionRequest {
    pb::RecordBankDecisionRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        approved: false,
        rejection_reason: reason.to_owned(),
        ..Default::default()
    }
}

fn recommend_req(id: &str, bank: &str) -> pb::RecommendToBankRequest {
    pb::RecommendToBankRequest {
        request_id: rid(),
        application_id: id.to_owned(),
        bank_id: bank.to_owned(),
    }
}

/// The request `act` sends for the application of `m` (fresh request id).
fn request(m: &Model, act: Act, today: NaiveDate) -> Req {
    let id = m.id.as_str();
    match act {
        Act::Approve => Req::Review(review_req(id, pb::Decision::Approve, "")),
        Act::Reject => Req::Review(review_req(id, pb::Decision::Reject, REASON)),
        Act::Return => Req::Review(review_req(id, pb::Decision::ReturnForCorrection, REASON)),
        Act::Resubmit => Req::Resubmit(Box::new(resubmit_req(id))),
        Act::Object => Req::Object(objection_req(id)),
        Act::Uphold | Act::Dismiss => {
            let target = &m.objections[m.target().expect("an objection")].0;
            Req::Resolve(resolve_req(target, act == Act::Uphold, RESOLUTION))
        }
        Act::Recommend => Req::Recommend(recommend_req(id, BANK)),
        Act::BankApprove => Req::Decide(approve_req(id, AMOUNT, "0.0435", 12)),
        Act::BankReject => Req::Decide(bank_reject_req(id, BANK_REASON)),
        Act::Disburse => Req::Disburse(disbursement_req(id, today)),
    }
}

async fn send(t: &TestIntake, who: Who, req: Req) -> Result<Reply, Status> {
    let mut c = who.client(t);
    let app = |r: Result<tonic::Response<pb::Application>, Status>| {
        r.map(|r| Reply::App(Box::new(r.into_inner())))
    };
    let objection = |r: Result<tonic::Response<pb::Objection>, Status>| {
        r.map(|r| Reply::Objection(Box::new(r.into_inner())))
    };
    match req {
        Req::Review(r) => app(c.review_application(r).await),
        Req::Resubmit(r) => app(c.resubmit_application(*r).await),
        Req::Object(r) => objection(c.file_objection(r).await),
        Req::Resolve(r) => objection(c.resolve_objection(r).await),
        Req::Recommend(r) => app(c.recommend_to_bank(r).await),
        Req::Decide(r) => app(c.record_bank_decision(r).await),
        Req::Disburse(r) => app(c.record_disbursement(r).await),
    }
}

fn outcome(got: &Result<Reply, Status>) -> String {
    match got {
        Ok(Reply::App(a)) => format!("ok {:?} v{}", a.status(), a.version),
        Ok(Reply::Objection(o)) => format!("ok objection {}", o.state),
        Err(s) => format!("{:?} {:?}", s.code(), s.message()),
    }
}

/// None when `got` is what `want` says; otherwise what differs.
fn mismatch(act: Act, want: &Expect, got: &Result<Reply, Status>) -> Option<String> {
    match (want, got) {
        (Expect::Moves(to, _), Ok(Reply::App(a))) if a.status() != to.pb() => Some(format!(
            "moved to {:?}, documented {:?}",
            a.status(),
            to.pb()
        )),
        (Expect::Moves(..) | Expect::Stays, Ok(Reply::Objection(o))) => {
            let state = match act {
                Act::Object => "open",
                Act::Uphold => "upheld",
                _ => "dismissed",
            };
            (o.state != state).then(|| format!("objection {}, documented {state}", o.state))
        }
        (Expect::Moves(..) | Expect::Stays, Ok(_)) => None,
        (Expect::Moves(..) | Expect::Stays, Err(s)) => {
            Some(format!("refused {s:?}, documented a success"))
        }
        (Expect::Refused(codes, _), Ok(_)) => Some(format!(
            "succeeded ({}), documented {codes:?}",
            outcome(got)
        )),
        (Expect::Refused(codes, rule), Err(s)) => {
            if !codes.contains(&s.code()) {
                Some(format!("documented {codes:?}, got {s:?}"))
            } else if s.code() == Code::FailedPrecondition
                && !rule.is_empty()
                && !s.message().contains(&format!("[{rule}]"))
            {
                Some(format!("the refusal does not name {rule}: {s:?}"))
            } else {
                None
            }
        }
    }
}

// =====================================================================================
// Observing
// =====================================================================================

/// The application's row, transitions and objections, as one digest (what a refused call
/// must not change). Request ids are left out: a refusal by a rule is kept with its request
/// id (README "Request ids").
async fn digest(t: &TestIntake, id: &str) -> String {
    sqlx::query_scalar(
        "select coalesce((select md5(a::text) from applications a where a.id = $1::uuid), '-')
             || ':' || coalesce((select md5(string_agg(x::text, '|' order by x.id))
                                 from transitions x where x.application_id = $1::uuid), '-')
             || ':' || coalesce((select md5(string_agg(o::text, '|' order by o.id))
                                 from objections o where o.application_id = $1::uuid), '-')",
    )
    .bind(id)
    .fetch_one(&t.pool)
    .await
    .expect("digest")
}

/// How many events intake has published, once its outbox is drained.
async fn intake_event_count(t: &TestIntake) -> usize {
    t.outbox_drained().await;
    all_events(&t.bus, &format!("{}.intake.>", t.bus.prefix))
        .await
        .len()
}

async fn status_events(t: &TestIntake) -> Vec<pb::ApplicationStatusChanged> {
    t.intake_events(&pb::ApplicationStatusChanged::full_name())
        .await
        .iter()
        .map(Event::decode)
        .collect()
}

/// The whole history, read as the district in pages of `page_size`.
async fn history(t: &TestIntake, id: &str, page_size: u32) -> Vec<pb::Transition> {
    let mut c = t.as_district_staff();
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let r = c
            .list_transitions(pb::ListTransitionsRequest {
                application_id: id.to_owned(),
                page: Some(PageRequest {
                    page_size,
                    page_token: token.clone(),
                }),
            })
            .await
            .expect("list transitions")
            .into_inner();
        assert!(
            r.transitions.len() <= page_size as usize,
            "page of {page_size}: {}",
            r.transitions.len()
        );
        out.extend(r.transitions);
        token = r.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return out;
        }
    }
    panic!("more than 100 pages of history");
}

async fn objection_states(t: &TestIntake, id: &str) -> Vec<(String, String)> {
    t.objections(id)
        .await
        .into_iter()
        .map(|o| (o.id, o.state))
        .collect()
}

async fn get(t: &TestIntake, id: &str) -> pb::Application {
    t.get_as(&mut t.as_district_staff(), id)
        .await
        .unwrap_or_else(|s| panic!("get {id}: {s:?}"))
}

/// What the application shows against the model: status, version and the step fields
/// (proto: `step_due_on` empty when no step is pending, `returned_from` while RETURNED).
fn step_problems(m: &Model, a: &pb::Application) -> Vec<String> {
    let mut p = Vec::new();
    let mut differ = |what: &str, got: String, want: String| {
        if got != want {
            p.push(format!("{what} {got}, documented {want}"));
        }
    };
    differ(
        "status",
        format!("{:?}", a.status()),
        format!("{:?}", m.st.pb()),
    );
    differ("version", a.version.to_string(), m.version.to_string());
    differ(
        "current_step",
        format!("{:?}", a.current_step()),
        format!("{:?}", m.st.step()),
    );
    differ(
        "step_due_on set",
        (!a.step_due_on.is_empty()).to_string(),
        (m.st.step() != pb::Step::Unspecified).to_string(),
    );
    let returned = match m.st {
        St::Returned(tier) => tier.step(),
        _ => pb::Step::Unspecified,
    };
    differ(
        "returned_from",
        format!("{:?}", a.returned_from()),
        format!("{returned:?}"),
    );
    match m.st {
        St::Notice | St::Held => differ(
            "notice_ends_on",
            a.notice_ends_on.clone(),
            m.notice_ends.map(|d| d.to_string()).unwrap_or_default(),
        ),
        St::Village | St::Town | St::District | St::Returned(_) if m.notice_ends.is_none() => {
            differ("notice_ends_on", a.notice_ends_on.clone(), String::new())
        }
        _ => {}
    }
    differ(
        "bank_id",
        a.bank_id.clone(),
        if m.recommended_on.is_some() {
            BANK.into()
        } else {
            String::new()
        },
    );
    let decided = match m.st {
        St::BankApproved | St::Disbursed => Some(true),
        St::BankRejected => Some(false),
        _ => None,
    };
    differ(
        "bank_decision.approved",
        format!("{:?}", a.bank_decision.as_ref().map(|d| d.approved)),
        format!("{decided:?}"),
    );
    differ(
        "disbursement present",
        a.disbursement.is_some().to_string(),
        (m.st == St::Disbursed).to_string(),
    );
    p
}

fn parse_at(s: &str) -> DateTime<chrono::Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("at {s:?}: {e}"))
        .to_utc()
}

/// The recorded history against the model's moves: the same actions by the same callers to
/// the same states, a chain (each move starts where the previous ended), in time order, each
/// "why" the caller gave; the same moves announced in the same order; the objections.
async fn history_problems(
    t: &TestIntake,
    m: &Model,
    events: &[pb::ApplicationStatusChanged],
) -> Vec<String> {
    let mut p = Vec::new();
    let h = history(t, &m.id, 200).await;
    let got: Vec<_> = h
        .iter()
        .map(|tr| {
            (
                tr.action.clone(),
                tr.actor.clone(),
                tr.actor_role.clone(),
                tr.to_status(),
            )
        })
        .collect();
    let want: Vec<_> = m
        .moves
        .iter()
        .map(|mv| {
            (
                mv.action.to_owned(),
                mv.who.subject(),
                mv.who.role().to_owned(),
                mv.to,
            )
        })
        .collect();
    if got != want {
        p.push(format!(
            "{}: history\n  {got:?}\ndocumented\n  {want:?}",
            m.id
        ));
        return p;
    }
    for (k, (tr, mv)) in h.iter().zip(&m.moves).enumerate() {
        let from = if k == 0 {
            pb::Status::Unspecified
        } else {
            h[k - 1].to_status()
        };
        if tr.from_status() != from {
            p.push(format!(
                "{}: move {k} from {:?}, not {from:?}",
                m.id,
                tr.from_status()
            ));
        }
        if !mv.reason.is_empty() && tr.reason != mv.reason {
            p.push(format!(
                "{}: move {k} ({}) why {:?}, given {:?}",
                m.id, tr.action, tr.reason, mv.reason
            ));
        }
        if mv.action == "objection" && tr.reason.is_empty() {
            p.push(format!("{}: move {k} (objection) records no why", m.id));
        }
        // R-CR-11: a resolution is announced by the objection's id, never its text.
        let names_the_objection =
            tr.reason.starts_with("objection ") && !tr.reason.contains(RESOLUTION);
        if mv.action.starts_with("objection_") && !names_the_objection {
            p.push(format!(
                "{}: move {k} ({}) why {:?}, not the objection's id",
                m.id, tr.action, tr.reason
            ));
        }
        if tr.id.is_empty() || tr.policy_version.is_empty() {
            p.push(format!(
                "{}: move {k} without id or policy version: {tr:?}",
                m.id
            ));
        }
        if k > 0 && parse_at(&tr.at) < parse_at(&h[k - 1].at) {
            p.push(format!(
                "{}: move {k} at {} before move {} at {}",
                m.id,
                tr.at,
                k - 1,
                h[k - 1].at
            ));
        }
    }
    let announced: Vec<_> = events
        .iter()
        .filter(|e| e.application_id == m.id)
        .map(|e| (e.from_status(), e.to_status(), e.action.clone()))
        .collect();
    let recorded: Vec<_> = h
        .iter()
        .skip(1)
        .map(|tr| (tr.from_status(), tr.to_status(), tr.action.clone()))
        .collect();
    if announced != recorded {
        p.push(format!(
            "{}: announced {announced:?}, recorded {recorded:?}",
            m.id
        ));
    }
    let objections = objection_states(t, &m.id).await;
    let want: Vec<_> = m
        .objections
        .iter()
        .map(|(id, s)| (id.clone(), (*s).to_owned()))
        .collect();
    if objections != want {
        p.push(format!(
            "{}: objections {objections:?}, documented {want:?}",
            m.id
        ));
    }
    p
}

// =====================================================================================
// Driving
// =====================================================================================

fn at(t: &TestIntake, day: NaiveDate) {
    t.set_time(&format!("{day}T09:00:00+08:00"));
}

/// A rated household of village A (resident `n`) applying for 3,000.00 today.
async fn applied(t: &TestIntake, n: u32) -> Model {
    let r = resident_id(n);
    t.given_credit_household(&r, VILLAGE_A).await;
    Model::submitted(&t.submit_household(&r, VILLAGE_A, "3000").await)
}

/// Takes a move the model allows through the API and into the model; fails the test when the
/// model does not allow it or the service does not do what the model says.
async fn drive(t: &TestIntake, m: &mut Model, act: Act, who: Who, today: NaiveDate) -> Reply {
    let want = m.expect(act, who, today).expect("an action with a target");
    assert!(
        want.succeeds(),
        "the documented machine refuses {act:?} by {who:?} in {:?}: {want:?}",
        m.st
    );
    let got = send(t, who, request(m, act, today)).await;
    if let Some(d) = mismatch(act, &want, &got) {
        panic!("{act:?} by {who:?} in {:?}: {d}", m.st);
    }
    let reply = got.expect("checked");
    m.apply(act, who, &want, Some(&reply), today);
    reply
}

async fn drive_all(t: &TestIntake, m: &mut Model, moves: &[(Act, Who)], today: NaiveDate) {
    for &(act, who) in moves {
        drive(t, m, act, who, today).await;
    }
}

const TO_NOTICE: [(Act, Who); 3] = [
    (Act::Approve, Who::Village),
    (Act::Approve, Who::Town),
    (Act::Approve, Who::District),
];

/// One application in every state an application can be in, on Saturday 2026-03-07 (the
/// clock is left there): each staff step, returned and rejected at each tier, public notice
/// running and over, held while running and after, after a dismissed objection, rejected by
/// an upheld one, recommended, approved and rejected by the bank, disbursed.
async fn every_state(t: &TestIntake) -> Vec<(&'static str, Model)> {
    use Act::*;
    use Who::{Bank as B, District as D, Town as T, Village as V};
    let (d1, d2, d3) = (day("2026-03-02"), day("2026-03-03"), day("2026-03-07"));
    let plans: [(&str, &[(Act, Who)]); 9] = [
        ("village review", &[]),
        ("town review", &[(Approve, V)]),
        ("district review", &[(Approve, V), (Approve, T)]),
        ("returned by the village", &[(Return, V)]),
        ("returned by the town", &[(Approve, V), (Return, T)]),
        (
            "returned by the district",
            &[(Approve, V), (Approve, T), (Return, D)],
        ),
        ("rejected by the village", &[(Reject, V)]),
        ("rejected by the town", &[(Approve, V), (Reject, T)]),
        (
            "rejected by the district",
            &[(Approve, V), (Approve, T), (Reject, D)],
        ),
    ];
    let mut out = Vec::new();
    let mut n = 600;
    at(t, d1);
    for (name, plan) in plans {
        n += 1;
        let mut m = applied(t, n).await;
        drive_all(t, &mut m, plan, d1).await;
        out.push((name, m));
    }
    let mut noticed = Vec::new();
    for _ in 0..8 {
        n += 1;
        let mut m = applied(t, n).await;
        drive_all(t, &mut m, &TO_NOTICE, d1).await;
        noticed.push(m);
    }
    let [
        ended,
        mut held_ended,
        mut rec,
        mut approved,
        mut bank_rejected,
        mut disbursed,
        mut upheld,
        mut dismissed,
    ]: [Model; 8] = noticed.try_into().expect("eight");
    at(t, d2);
    drive(t, &mut held_ended, Object, V, d2).await;
    drive_all(t, &mut upheld, &[(Object, T), (Object, D), (Uphold, D)], d2).await;
    drive_all(t, &mut dismissed, &[(Object, D), (Dismiss, D)], d2).await;
    at(t, d3);
    for m in [&mut rec, &mut approved, &mut bank_rejected, &mut disbursed] {
        drive(t, m, Recommend, D, d3).await;
    }
    drive(t, &mut approved, BankApprove, B, d3).await;
    drive(t, &mut bank_rejected, BankReject, B, d3).await;
    drive_all(t, &mut disbursed, &[(BankApprove, B), (Disburse, B)], d3).await;
    let mut notice = applied(t, n + 1).await;
    drive_all(t, &mut notice, &TO_NOTICE, d3).await;
    let mut held = applied(t, n + 2).await;
    drive_all(t, &mut held, &TO_NOTICE, d3).await;
    drive(t, &mut held, Object, T, d3).await;
    out.extend([
        ("public notice, period over", ended),
        ("on hold, notice period over", held_ended),
        ("recommended", rec),
        ("approved by the bank", approved),
        ("rejected by the bank", bank_rejected),
        ("disbursed", disbursed),
        ("rejected by an upheld objection", upheld),
        (
            "public notice after a dismissed objection, period over",
            dismissed,
        ),
        ("public notice", notice),
        ("on hold", held),
    ]);
    out
}

// =====================================================================================
// Every action in every state
// =====================================================================================

/// R-IN-2, R-IN-5, R-IN-6, R-X-3: in each of the 19 states an application can be in, every
/// action (review approve / reject / return, resubmit, objection, uphold, dismiss,
/// recommendation, bank approval / rejection, disbursement) by every caller (the right and
/// the wrong village, town, the district, the bank, another bank, an operator) that the
/// documented machine does not allow is refused: NotFound for a caller who cannot see the
/// application, PermissionDenied for a step that is another's, FailedPrecondition naming
/// R-IN-2 / R-IN-5 / R-IN-6 for a state that does not allow it. Each refusal changes nothing:
/// the application, its history and objections stay as they were, GetApplication and
/// ListTransitions answer the same, and no event is published. Each state shows the step
/// fields the proto documents (step pending, its due date, returned_from, notice end, bank).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_refused_action_in_every_state_changes_nothing() {
    bounded(500, async {
        let t = spawn_intake().await;
        let states = every_state(&t).await;
        let today = day("2026-03-07");
        let mut problems = Vec::new();
        let mut views = Vec::new();
        for (name, m) in &states {
            let a = get(&t, &m.id).await;
            problems.extend(
                step_problems(m, &a)
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            );
            views.push((a, history(&t, &m.id, 200).await));
        }
        let events = intake_event_count(&t).await;
        let mut tried = 0;
        for (name, m) in &states {
            for act in ACTS {
                for who in EVERYONE {
                    let Some(want) = m.expect(act, who, today) else {
                        continue;
                    };
                    if want.succeeds() {
                        continue;
                    }
                    tried += 1;
                    let before = digest(&t, &m.id).await;
                    let got = send(&t, who, request(m, act, today)).await;
                    if let Some(d) = mismatch(act, &want, &got) {
                        problems.push(format!("{name}: {act:?} by {who:?}: {d}"));
                    }
                    if digest(&t, &m.id).await != before {
                        problems.push(format!(
                            "{name}: {act:?} by {who:?} ({}) changed the application",
                            outcome(&got)
                        ));
                    }
                }
            }
        }
        assert!(tried > 1000, "{tried} refused combinations tried");
        assert!(
            problems.is_empty(),
            "{} problems in {tried} refused combinations:\n{}",
            problems.len(),
            problems.join("\n")
        );
        for ((name, m), (a, h)) in states.iter().zip(&views) {
            assert_eq!(&get(&t, &m.id).await, a, "{name}: GetApplication unchanged");
            assert_eq!(
                &history(&t, &m.id, 200).await,
                h,
                "{name}: history unchanged"
            );
        }
        assert_eq!(
            intake_event_count(&t).await,
            events,
            "refused actions publish no event"
        );
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Random sequences against the model
// =====================================================================================

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Two results of one request id: the first result again (R-IN-8).
fn replay_mismatch(first: &Result<Reply, Status>, again: &Result<Reply, Status>) -> Option<String> {
    match (first, again) {
        (Ok(Reply::App(a)), Ok(Reply::App(b)))
            if (a.id.as_str(), a.status(), a.version) == (b.id.as_str(), b.status(), b.version) =>
        {
            None
        }
        (Ok(Reply::Objection(a)), Ok(Reply::Objection(b)))
            if (&a.id, &a.state) == (&b.id, &b.state) =>
        {
            None
        }
        (Err(a), Err(b))
            if a.code() == b.code()
                && (a.code() != Code::FailedPrecondition || a.message() == b.message()) =>
        {
            None
        }
        _ => Some(format!(
            "first {}, replayed {}",
            outcome(first),
            outcome(again)
        )),
    }
}

/// Fails a random sequence, showing its last steps.
fn fail(seed: u64, log: &[String], msg: String) -> ! {
    let tail = &log[log.len().saturating_sub(40)..];
    panic!("seed {seed}: {msg}\nlast steps:\n{}", tail.join("\n"))
}

/// Random actions on ten applications (and fresh ones while most have ended): at each step
/// either the clock moves on a day or two, or the previous request is sent again with its
/// request id, or an action the model allows
/// (most of the time) or any action by any caller is tried, reviews sometimes carrying the
/// current, a stale or a future `expected_version`. After every step the service must have
/// done what the model says (outcome, status, version, step fields); at the end each history,
/// each application's announcements and its objections must be the model's.
async fn random_sequences(seed: u64) {
    const APPS: usize = 10;
    const STEPS: usize = 700;
    let t = spawn_intake().await;
    let mut rng = Rng::new(seed);
    let mut today = day("2026-03-02");
    at(&t, today);
    let mut models = Vec::new();
    for i in 0..APPS {
        models.push(applied(&t, seed as u32 * 100 + i as u32).await);
    }
    let mut log: Vec<String> = Vec::new();
    let mut last: Option<(usize, Who, Req, Result<Reply, Status>)> = None;
    let mut visited = std::collections::BTreeSet::from(["Village".to_owned()]);
    for step in 0..STEPS {
        let roll = rng.below(100);
        if roll < 12 {
            today = today + Days::new(1 + rng.below(2) as u64);
            at(&t, today);
            log.push(format!("{step}: clock to {today}"));
            last = None;
            continue;
        }
        if roll < 20
            && let Some((i, who, req, first)) = last.take()
        {
            let again = send(&t, who, req.clone()).await;
            log.push(format!(
                "{step}: replay on app {i} by {who:?} -> {}",
                outcome(&again)
            ));
            if let Some(d) = replay_mismatch(&first, &again) {
                fail(
                    seed,
                    &log,
                    format!("step {step}: the same request id again: {d}"),
                );
            }
            let p = step_problems(&models[i], &get(&t, &models[i].id).await);
            if !p.is_empty() {
                fail(seed, &log, format!("step {step}: after a replay: {p:?}"));
            }
            last = Some((i, who, req, first));
            continue;
        }
        // A fresh application whenever most have ended, so that sequences keep reaching
        // every state, whatever ends them early.
        let live = models
            .iter()
            .filter(|m| !matches!(m.st, St::Rejected | St::BankRejected | St::Disbursed))
            .count();
        if live < APPS / 2 && models.len() < 4 * APPS {
            let n = seed as u32 * 100 + models.len() as u32;
            models.push(applied(&t, n).await);
            continue;
        }
        let i = rng.below(models.len());
        let m = &models[i];
        let options: Vec<(Act, Who, Expect)> = ACTS
            .iter()
            .flat_map(|&a| {
                EVERYONE
                    .iter()
                    .filter_map(move |&w| m.expect(a, w, today).map(|e| (a, w, e)))
            })
            .collect();
        // Allowed moves, the ones that end the workflow (or undo the notice) less often than
        // the others and only among them, so that sequences reach the bank's steps.
        let ends = |o: &(Act, Who, Expect)| {
            o.2.succeeds()
                && (matches!(o.0, Act::Reject | Act::Uphold)
                    || (o.0 == Act::Return && m.st == St::Notice))
        };
        // Rejecting a returned application (the tier that returned it may) is left to the
        // tests of refused and allowed actions in every state: taken here, it ends too many
        // sequences before the bank's steps.
        let returned_rejection =
            |o: &(Act, Who, Expect)| o.0 == Act::Reject && matches!(m.st, St::Returned(_));
        let allowed: Vec<_> = options
            .iter()
            .filter(|o| o.2.succeeds() && !returned_rejection(o))
            .flat_map(|o| {
                // The bank's rejection half as often as its approval: both are reached.
                let weight = match o.0 {
                    _ if ends(o) => 1,
                    Act::BankReject => 3,
                    _ => 6,
                };
                std::iter::repeat_n(o.clone(), weight)
            })
            .collect();
        let any: Vec<_> = options.iter().filter(|o| !ends(o)).collect();
        let (act, who, mut want) = if roll < 65 && !allowed.is_empty() || any.is_empty() {
            allowed[rng.below(allowed.len())].clone()
        } else {
            any[rng.below(any.len())].clone()
        };
        let mut req = request(m, act, today);
        if let Req::Review(r) = &mut req {
            match rng.below(5) {
                0 => r.expected_version = m.version,
                1 => {
                    r.expected_version = m.version + 1;
                    want = want.stale();
                }
                2 if m.version > 1 => {
                    r.expected_version = m.version - 1;
                    want = want.stale();
                }
                _ => {}
            }
        }
        let version = match &req {
            Req::Review(r) => r.expected_version,
            _ => 0,
        };
        let got = send(&t, who, req.clone()).await;
        log.push(format!(
            "{step}: app {i} in {:?} on {today}: {act:?} by {who:?} (expected_version {version}) \
             -> {}",
            m.st,
            outcome(&got)
        ));
        if let Some(d) = mismatch(act, &want, &got) {
            fail(seed, &log, format!("step {step}: {d}"));
        }
        let reply = got.as_ref().ok().cloned();
        models[i].apply(act, who, &want, reply.as_ref(), today);
        visited.insert(format!("{:?}", models[i].st));
        let p = step_problems(&models[i], &get(&t, &models[i].id).await);
        if !p.is_empty() {
            fail(seed, &log, format!("step {step}: {p:?}"));
        }
        last = Some((i, who, req, got));
    }
    let events = status_events(&t).await;
    let mut problems = Vec::new();
    for m in &models {
        problems.extend(history_problems(&t, m, &events).await);
    }
    if !problems.is_empty() {
        fail(seed, &log, problems.join("\n"));
    }
    let reached: Vec<_> = models.iter().map(|m| m.st).collect();
    eprintln!("seed {seed}: visited {visited:?}, final states {reached:?}");
    // The sequence exercised the whole machine: every state, returns from every tier.
    assert_eq!(visited.len(), 13, "seed {seed} visited only {visited:?}");
    t.shutdown().await;
}

/// R-IN-2, R-IN-5, R-IN-6, R-IN-8: seeded random action sequences follow the documented
/// machine (seed 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_action_sequences_follow_the_documented_machine_seed_1() {
    bounded(400, random_sequences(1)).await;
}

/// R-IN-2, R-IN-5, R-IN-6, R-IN-8: seeded random action sequences follow the documented
/// machine (seed 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_action_sequences_follow_the_documented_machine_seed_2() {
    bounded(400, random_sequences(2)).await;
}

/// R-IN-2, R-IN-5, R-IN-6, R-IN-8: seeded random action sequences follow the documented
/// machine (seed 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_action_sequences_follow_the_documented_machine_seed_3() {
    bounded(400, random_sequences(3)).await;
}

// =====================================================================================
// Returns and resubmissions
// =====================================================================================

/// R-IN-2, R-IN-4, README "Return for correction goes back to the step that returned it": an
/// application returned by the village, the town or the district is RETURNED with
/// `returned_from` that step and no step pending; resubmitted by the village department the
/// next day it is back at that same step, with a fresh deadline of that step's working days
/// (village 3, town 3, district 5) from the day of resubmission, and no `returned_from`. The
/// history names the tier that returned it and why, and the department that resubmitted and
/// its note.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_return_at_each_tier_is_resubmitted_to_that_tier() {
    bounded(120, async {
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut apps = Vec::new();
        for (n, tier, before) in [
            (11, Tier::Village, &[][..]),
            (12, Tier::Town, &TO_NOTICE[..1]),
            (13, Tier::District, &TO_NOTICE[..2]),
        ] {
            let mut m = applied(&t, n).await;
            drive_all(&t, &mut m, before, d1).await;
            drive(&t, &mut m, Act::Return, tier.staff(), d1).await;
            let a = get(&t, &m.id).await;
            assert_eq!(step_problems(&m, &a), Vec::<String>::new(), "{tier:?}");
            assert_eq!(a.returned_from(), tier.step());
            apps.push((tier, m));
        }
        // Tuesday 03-03: village +3 and town +3 working days = Friday 03-06, district +5 =
        // Tuesday 03-10.
        let d2 = day("2026-03-03");
        at(&t, d2);
        for ((tier, m), due) in apps
            .iter_mut()
            .zip(["2026-03-06", "2026-03-06", "2026-03-10"])
        {
            let Reply::App(a) = drive(&t, m, Act::Resubmit, Who::Village, d2).await else {
                unreachable!()
            };
            assert_eq!(a.status(), tier.status().pb(), "{tier:?}");
            assert_eq!(a.current_step(), tier.step(), "{tier:?}");
            assert_eq!(a.returned_from(), pb::Step::Unspecified, "{tier:?}");
            assert_eq!(a.step_due_on, due, "{tier:?}: a fresh deadline");
            let h = history(&t, &m.id, 200).await;
            let last: Vec<_> = h[h.len() - 2..]
                .iter()
                .map(|tr| {
                    (
                        tr.action.as_str(),
                        tr.actor.clone(),
                        tr.actor_role.as_str(),
                        tr.reason.as_str(),
                        tr.from_status(),
                        tr.to_status(),
                    )
                })
                .collect();
            assert_eq!(
                last,
                vec![
                    (
                        "return",
                        tier.staff().subject(),
                        tier.staff().role(),
                        REASON,
                        tier.status().pb(),
                        pb::Status::Returned
                    ),
                    (
                        "resubmit",
                        Who::Village.subject(),
                        "village_staff",
                        NOTE,
                        pb::Status::Returned,
                        tier.status().pb()
                    ),
                ],
                "{tier:?}"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, README "Return for correction goes back to the step that returned it": after a
/// town return and resubmission the town approves, then the district returns it; the second
/// resubmission goes to the district (the last tier that returned it), not to the town or the
/// village, and the village and town can no longer act on it. A district that returns it a
/// second time gets it back again; approved, it enters a public notice from that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_return_decides_where_a_resubmission_goes() {
    bounded(90, async {
        use Act::*;
        use Who::{District as D, Town as T, Village as V};
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut m = applied(&t, 21).await;
        drive_all(
            &t,
            &mut m,
            &[
                (Approve, V),
                (Return, T),
                (Resubmit, V),
                (Approve, T),
                (Return, D),
                (Resubmit, V),
            ],
            d1,
        )
        .await;
        let a = get(&t, &m.id).await;
        assert_eq!(a.status(), pb::Status::DistrictReview);
        assert_eq!(step_problems(&m, &a), Vec::<String>::new());
        for who in [V, T] {
            let s = err(who
                .client(&t)
                .review_application(review_req(&m.id, pb::Decision::Approve, ""))
                .await);
            assert_eq!(s.code(), Code::PermissionDenied, "{who:?}: {s:?}");
        }
        drive_all(&t, &mut m, &[(Return, D), (Resubmit, V)], d1).await;
        let d2 = day("2026-03-04");
        at(&t, d2);
        let Reply::App(a) = drive(&t, &mut m, Approve, D, d2).await else {
            unreachable!()
        };
        assert_eq!(a.status(), pb::Status::PublicNotice);
        assert_eq!(
            a.notice_ends_on, "2026-03-08",
            "5 days from the approval day"
        );
        let events = status_events(&t).await;
        assert_eq!(
            history_problems(&t, &m, &events).await,
            Vec::<String>::new()
        );
        t.shutdown().await;
    })
    .await;
}

/// R-IN-1, R-IN-2 (README: enterprises filed at the district center start at district review;
/// a return goes back to the step that returned it): a cooperative registered at town A and
/// filed by the district, returned by the district, is resubmitted by the district to district
/// review; the town may see it but not resubmit it (PermissionDenied), village A's department
/// does not see it (NotFound), and a second resubmission is refused as not returned (R-IN-2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enterprise_filed_at_the_district_is_resubmitted_to_the_district() {
    bounded(90, async {
        let t = spawn_intake().await;
        let code = uscc('3', 4242);
        let ce = t.publish_enterprise_qualified(&code, true, 1).await;
        t.wait_applied(&ce).await;
        let a = submit(
            &mut t.as_district_staff(),
            enterprise_request(&code, TOWN_A, "200000"),
        )
        .await;
        assert_eq!(a.status(), pb::Status::DistrictReview);
        let a = review(
            &mut t.as_district_staff(),
            &a.id,
            pb::Decision::ReturnForCorrection,
            REASON,
        )
        .await;
        assert_eq!(
            (a.status(), a.returned_from()),
            (pb::Status::Returned, pb::Step::District)
        );
        let before = digest(&t, &a.id).await;
        let s = err(t
            .as_town_staff(TOWN_A)
            .resubmit_application(resubmit_req(&a.id))
            .await);
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(resubmit_req(&a.id))
            .await);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        assert_eq!(digest(&t, &a.id).await, before, "refusals changed nothing");
        let renamed = pb::ResubmitApplicationRequest {
            enterprise: Some(pb::EnterpriseCorrection {
                name: "洛龙区牡丹种植合作社（更名）".into(),
                ..Default::default()
            }),
            ..resubmit_req(&a.id)
        };
        let r = t
            .as_district_staff()
            .resubmit_application(renamed)
            .await
            .expect("the district resubmits what it filed")
            .into_inner();
        assert_eq!(
            (r.status(), r.current_step(), r.returned_from()),
            (
                pb::Status::DistrictReview,
                pb::Step::District,
                pb::Step::Unspecified
            )
        );
        // R-IN-2: a company's name is no personal data; its correction keeps both values.
        let h = history(&t, &a.id, 50).await;
        let fixed = &h.last().expect("a history").corrections;
        assert_eq!(fixed.len(), 1, "{fixed:?}");
        assert_eq!(
            (
                fixed[0].field.as_str(),
                fixed[0].to.as_str(),
                fixed[0].personal
            ),
            ("enterprise.name", "洛龙区牡丹种植合作社（更名）", false)
        );
        assert!(!fixed[0].from.is_empty(), "{fixed:?}");
        let s = err(t
            .as_district_staff()
            .resubmit_application(resubmit_req(&a.id))
            .await);
        assert_refused(&s, &["R-IN-2"]);
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Reasons
// =====================================================================================

/// Rejects and returns at `apps` (at the village, town and district steps) with `reason`,
/// collecting what is not InvalidArgument naming `reason` or changed the application. An
/// application that accepted a reason has moved: the rest of the reasons skip it.
async fn try_reasons(
    t: &TestIntake,
    apps: &[(Tier, Model)],
    reasons: &[(&str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    'app: for (tier, m) in apps {
        for (what, reason) in reasons {
            for decision in [pb::Decision::Reject, pb::Decision::ReturnForCorrection] {
                let before = digest(t, &m.id).await;
                let r = tier
                    .staff()
                    .client(t)
                    .review_application(review_req(&m.id, decision, reason))
                    .await;
                match r {
                    Err(s)
                        if s.code() == Code::InvalidArgument
                            && s.message().starts_with("reason:") => {}
                    Err(s) => problems.push(format!("{tier:?} {decision:?} {what}: {s:?}")),
                    Ok(a) => {
                        let a = a.into_inner();
                        problems.push(format!(
                            "{tier:?} {decision:?} {what}: accepted, now {:?} with the reason {:?}",
                            a.status(),
                            history(t, &m.id, 200)
                                .await
                                .last()
                                .map(|tr| tr.reason.clone())
                                .unwrap_or_default()
                        ));
                        continue 'app;
                    }
                }
                if digest(t, &m.id).await != before {
                    problems.push(format!(
                        "{tier:?} {decision:?} {what}: changed the application"
                    ));
                }
            }
        }
    }
    problems
}

/// One application at each staff step.
async fn at_each_step(t: &TestIntake, base: u32) -> Vec<(Tier, Model)> {
    let d1 = day("2026-03-02");
    let mut apps = Vec::new();
    for (k, tier) in [Tier::Village, Tier::Town, Tier::District]
        .into_iter()
        .enumerate()
    {
        let mut m = applied(t, base + k as u32).await;
        drive_all(t, &mut m, &TO_NOTICE[..k], d1).await;
        apps.push((tier, m));
    }
    apps
}

/// R-IN-2 ("reject (with a reason) or return for correction"), R-X-3, README "Free text ...
/// stored trimmed": at the village, town and district steps a rejection or a return whose
/// reason is empty or only whitespace — spaces, tabs and line breaks, the ideographic space
/// U+3000 a Chinese keyboard types, a no-break space, an em space — is bad input naming
/// `reason`, and changes nothing: no move, no event. An approval needs no reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_and_return_without_a_reason_are_refused_at_every_tier() {
    bounded(120, async {
        let t = spawn_intake().await;
        let apps = at_each_step(&t, 31).await;
        let events = intake_event_count(&t).await;
        let problems = try_reasons(
            &t,
            &apps,
            &[
                ("empty", ""),
                ("spaces", "   "),
                ("tabs and line breaks", " \t\r\n "),
                ("ideographic spaces", "\u{3000}\u{3000}"),
                ("a no-break space", "\u{a0}"),
                ("an em space", "\u{2003}"),
            ],
        )
        .await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        for (tier, m) in &apps {
            let a = get(&t, &m.id).await;
            assert_eq!(step_problems(m, &a), Vec::<String>::new(), "{tier:?}");
        }
        for (tier, mut m) in apps {
            drive(&t, &mut m, Act::Approve, tier.staff(), day("2026-03-02")).await;
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 ("reject (with a reason)"; "every transition is recorded (who, when, why)"), README
/// "Free text ... without control or invisible formatting characters": a reason made only of
/// invisible format characters reads as no reason at all. A zero-width space, a byte-order
/// mark, a word joiner, the Arabic letter mark U+061C (a bidirectional mark, like the ones the
/// README names) and the Mongolian vowel separator U+180E (format characters, Cf) must each be
/// refused as bad input naming `reason`, at every tier, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reason_of_invisible_characters_only_is_refused() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut problems = Vec::new();
        for (k, reason) in [
            ("a zero-width space", "\u{200b}"),
            ("a byte-order mark", "\u{feff}"),
            ("a word joiner", "\u{2060}"),
            ("the Arabic letter mark U+061C", "\u{61c}"),
            ("the Mongolian vowel separator U+180E", "\u{180e}"),
        ]
        .into_iter()
        .enumerate()
        {
            let apps = at_each_step(&t, 141 + 3 * k as u32).await;
            problems.extend(try_reasons(&t, &apps, &[reason]).await);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        t.shutdown().await;
    })
    .await;
}

/// R-IN-6 ("records its decision (... or rejection reason)"), R-IN-5, R-X-3: a bank rejection
/// whose reason is empty or only whitespace (spaces, line breaks, U+3000) is bad input naming
/// `rejection_reason`; an objection resolution likewise names `resolution`. Nothing changes.
/// A reason with spaces around it is recorded trimmed in the decision and the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_rejections_and_resolutions_need_a_reason_too() {
    bounded(120, async {
        use Act::*;
        use Who::{District as D, Town as T};
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut rec = applied(&t, 51).await;
        drive_all(&t, &mut rec, &TO_NOTICE, d1).await;
        let mut held = applied(&t, 52).await;
        drive_all(&t, &mut held, &TO_NOTICE, d1).await;
        drive(&t, &mut held, Object, T, d1).await;
        let d2 = day("2026-03-07");
        at(&t, d2);
        drive(&t, &mut rec, Recommend, D, d2).await;
        let events = intake_event_count(&t).await;
        let (rec_before, held_before) = (digest(&t, &rec.id).await, digest(&t, &held.id).await);
        let blank = ["", "  ", "\n\t", "\u{3000}"];
        for reason in blank {
            let s = err(t
                .as_bank(BANK)
                .record_bank_decision(bank_reject_req(&rec.id, reason))
                .await);
            assert_eq!(s.code(), Code::InvalidArgument, "{reason:?}: {s:?}");
            assert!(s.message().starts_with("rejection_reason:"), "{s:?}");
            for upheld in [true, false] {
                let s = err(t
                    .as_district_staff()
                    .resolve_objection(resolve_req(&held.objections[0].0, upheld, reason))
                    .await);
                assert_eq!(s.code(), Code::InvalidArgument, "{reason:?}: {s:?}");
                assert!(s.message().starts_with("resolution:"), "{s:?}");
            }
        }
        assert_eq!(digest(&t, &rec.id).await, rec_before);
        assert_eq!(digest(&t, &held.id).await, held_before);
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        let a = t
            .as_bank(BANK)
            .record_bank_decision(bank_reject_req(&rec.id, "  \u{3000}income too low \n"))
            .await
            .expect("a reason")
            .into_inner();
        assert_eq!(a.status(), pb::Status::BankRejected);
        assert_eq!(
            a.bank_decision
                .as_ref()
                .map(|d| d.rejection_reason.as_str()),
            Some("income too low")
        );
        let h = history(&t, &rec.id, 200).await;
        let last = h.last().expect("history");
        assert_eq!(
            (last.action.as_str(), last.reason.as_str()),
            ("bank_reject", "income too low")
        );
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// The history
// =====================================================================================

/// R-IN-2 ("Every transition is recorded (who, when, why) and can be listed"), R-IN-5, R-IN-6:
/// three lives, each move at its own instant — one returned, resubmitted, objected to,
/// released, recommended, approved and disbursed by the bank; one whose objection is upheld;
/// one rejected by the bank — record for every move, including the resubmission and the
/// bank's steps, the caller (token subject and role), the instant of the move, and the reason
/// the caller gave (return, resubmission note, objection, resolution, recommendation's bank,
/// bank rejection), from one state to the next, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_history_records_who_when_and_why_of_every_move() {
    bounded(120, async {
        use Act::*;
        use Who::{Bank as B, District as D, Town as T, Village as V};
        let t = spawn_intake().await;
        let mut full = applied(&t, 61).await;
        let mut upheld = applied(&t, 62).await;
        let mut refused = applied(&t, 63).await;
        // (instant, application, move): each at its own time, every few hours or days.
        let plan: Vec<(&str, usize, Act, Who)> = vec![
            ("2026-03-02T10:15:00+08:00", 0, Return, V),
            ("2026-03-03T08:30:00+08:00", 0, Resubmit, V),
            ("2026-03-03T11:00:00+08:00", 0, Approve, V),
            ("2026-03-03T11:00:00+08:00", 1, Approve, V),
            ("2026-03-03T11:00:00+08:00", 2, Approve, V),
            ("2026-03-03T16:45:00+08:00", 0, Approve, T),
            ("2026-03-03T16:45:00+08:00", 1, Approve, T),
            ("2026-03-03T16:45:00+08:00", 2, Approve, T),
            ("2026-03-04T09:05:00+08:00", 0, Approve, D),
            ("2026-03-04T09:05:00+08:00", 1, Approve, D),
            ("2026-03-04T09:05:00+08:00", 2, Approve, D),
            ("2026-03-05T14:00:00+08:00", 0, Object, T),
            ("2026-03-05T14:00:00+08:00", 1, Object, V),
            ("2026-03-06T10:00:00+08:00", 0, Dismiss, D),
            ("2026-03-06T10:00:00+08:00", 1, Uphold, D),
            ("2026-03-09T09:30:00+08:00", 0, Recommend, D),
            ("2026-03-09T09:30:00+08:00", 2, Recommend, D),
            ("2026-03-12T15:20:00+08:00", 0, BankApprove, B),
            ("2026-03-12T15:20:00+08:00", 2, BankReject, B),
            ("2026-03-16T10:00:00+08:00", 0, Disburse, B),
        ];
        // The instant each move was made, per application, after the submission's.
        let mut when: Vec<Vec<&str>> = vec![vec![DEFAULT_NOW]; 3];
        for (instant_s, k, act, who) in &plan {
            t.set_time(instant_s);
            let today = instant(instant_s)
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
                .date_naive();
            let m = [&mut full, &mut upheld, &mut refused]
                .into_iter()
                .nth(*k)
                .expect("three");
            let before = m.moves.len();
            drive(&t, m, *act, *who, today).await;
            if m.moves.len() > before {
                when[*k].push(*instant_s);
            }
        }
        let events = status_events(&t).await;
        for (k, m) in [&full, &upheld, &refused].into_iter().enumerate() {
            assert_eq!(history_problems(&t, m, &events).await, Vec::<String>::new());
            let h = history(&t, &m.id, 200).await;
            assert_eq!(h.len(), when[k].len(), "one time per move");
            for (tr, instant_s) in h.iter().zip(&when[k]) {
                let (got, set) = (parse_at(&tr.at), instant(instant_s));
                assert!(
                    got >= set && got - set < chrono::TimeDelta::seconds(30),
                    "{} {}: at {} but made at {instant_s}",
                    m.id,
                    tr.action,
                    tr.at
                );
            }
        }
        let actions = |m: &Model| m.moves.iter().map(|mv| mv.action).collect::<Vec<_>>();
        assert_eq!(
            actions(&full),
            [
                "submit",
                "return",
                "resubmit",
                "approve",
                "approve",
                "approve",
                "objection",
                "objection_dismissed",
                "recommend",
                "bank_approve",
                "disburse"
            ]
        );
        assert_eq!(
            actions(&upheld),
            [
                "submit",
                "approve",
                "approve",
                "approve",
                "objection",
                "objection_upheld"
            ]
        );
        assert_eq!(
            actions(&refused),
            [
                "submit",
                "approve",
                "approve",
                "approve",
                "recommend",
                "bank_reject"
            ]
        );
        // The bank's steps name the bank.
        let h = history(&t, &full.id, 200).await;
        for tr in &h[h.len() - 2..] {
            assert_eq!(
                (tr.actor.as_str(), tr.actor_role.as_str()),
                (format!("bank-{BANK}").as_str(), "bank"),
                "{tr:?}"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 ("can be listed"), R-X-3 paging: a long history (three returns and resubmissions,
/// two objections, the last dismissal, the bank's steps: 15 moves) is listed in the order the
/// moves were made, as a chain from the submission, whatever the page size (1, 2, 3, 5, 14,
/// 15, 16, 200); a page that ends the history carries no next token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_are_listed_in_order_whatever_the_page_size() {
    bounded(120, async {
        use Act::*;
        use Who::{Bank as B, District as D, Town as T, Village as V};
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut m = applied(&t, 71).await;
        drive_all(
            &t,
            &mut m,
            &[
                (Return, V),
                (Resubmit, V),
                (Approve, V),
                (Return, T),
                (Resubmit, V),
                (Approve, T),
                (Return, D),
                (Resubmit, V),
                (Approve, D),
                (Object, V),
                (Object, T),
                (Dismiss, D),
                (Dismiss, D),
            ],
            d1,
        )
        .await;
        let d2 = day("2026-03-07");
        at(&t, d2);
        drive_all(
            &t,
            &mut m,
            &[(Recommend, D), (BankApprove, B), (Disburse, B)],
            d2,
        )
        .await;
        assert_eq!(m.moves.len(), 15);
        let events = status_events(&t).await;
        assert_eq!(
            history_problems(&t, &m, &events).await,
            Vec::<String>::new()
        );
        let all = history(&t, &m.id, 200).await;
        for size in [1, 2, 3, 5, 14, 15, 16] {
            assert_eq!(history(&t, &m.id, size).await, all, "page size {size}");
        }
        // Exactly 15 in pages of 15: one page, no next token.
        let r = t
            .as_district_staff()
            .list_transitions(pb::ListTransitionsRequest {
                application_id: m.id.clone(),
                page: Some(PageRequest {
                    page_size: 15,
                    page_token: String::new(),
                }),
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(r.transitions.len(), 15);
        assert_eq!(r.page.map(|p| p.next_page_token).unwrap_or_default(), "");
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Versions, concurrency, request ids
// =====================================================================================

/// R-IN-2, README (`expected_version` is optional optimistic concurrency; a conflict keeps
/// nothing): a rejection and a return at the district step with a stale (version - 1) or
/// future (version + 1) expected version are Aborted and change nothing, announce nothing; a
/// caller who cannot see the application gets NotFound whatever version it names (a
/// conflict would tell it the application exists); the current version rejects; the current
/// version on the rejected application is refused by the state (R-IN-2), not accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expected_version_guards_rejections_and_returns() {
    bounded(90, async {
        let t = spawn_intake().await;
        let mut m = applied(&t, 81).await;
        drive_all(&t, &mut m, &TO_NOTICE[..2], day("2026-03-02")).await;
        assert_eq!(m.version, 3);
        let before = digest(&t, &m.id).await;
        let events = intake_event_count(&t).await;
        let with = |decision, v: u64| pb::ReviewApplicationRequest {
            expected_version: v,
            ..review_req(&m.id, decision, REASON)
        };
        for decision in [pb::Decision::Reject, pb::Decision::ReturnForCorrection] {
            for v in [2, 4] {
                let s = err(t
                    .as_district_staff()
                    .review_application(with(decision, v))
                    .await);
                assert_eq!(s.code(), Code::Aborted, "{decision:?} at {v}: {s:?}");
            }
            for who in [Who::OtherVillage, Who::OtherTown, Who::Operator, Who::Bank] {
                for v in [2, 3, 4] {
                    let s = err(who.client(&t).review_application(with(decision, v)).await);
                    assert_eq!(s.code(), Code::NotFound, "{who:?} at {v}: {s:?}");
                }
            }
        }
        assert_eq!(digest(&t, &m.id).await, before, "nothing changed");
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        let a = t
            .as_district_staff()
            .review_application(with(pb::Decision::Reject, 3))
            .await
            .expect("the current version")
            .into_inner();
        assert_eq!((a.status(), a.version), (pb::Status::Rejected, 4));
        let s = err(t
            .as_district_staff()
            .review_application(with(pb::Decision::ReturnForCorrection, 4))
            .await);
        assert_refused(&s, &["R-IN-2"]);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2, R-X-2: at one village step, an approval, a rejection, a return and a second
/// approval (four request ids) sent at once end in exactly one move: one succeeds, the others
/// are refused (the step is no longer the village's, or the application no longer awaits a
/// review), never an internal error or a second move; one transition after the submission and
/// one announcement. The one exception: once the return has won, the rejection may land on
/// the returned application (decided there, by the village), a second transition and a second
/// announcement. Five applications at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_at_one_step_make_exactly_one_move() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut apps = Vec::new();
        for n in 0..5 {
            apps.push(applied(&t, 91 + n).await);
        }
        let mut calls = Vec::new();
        for m in &apps {
            for decision in [
                pb::Decision::Approve,
                pb::Decision::Reject,
                pb::Decision::ReturnForCorrection,
                pb::Decision::Approve,
            ] {
                let mut c = t.as_village_staff(VILLAGE_A);
                let req = review_req(&m.id, decision, REASON);
                calls.push(
                    async move { (req.application_id.clone(), c.review_application(req).await) },
                );
            }
        }
        let results = futures::future::join_all(calls).await;
        let events = status_events(&t).await;
        for m in &apps {
            let mine: Vec<_> = results.iter().filter(|(id, _)| *id == m.id).collect();
            let mut ok: Vec<_> = mine
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .map(|r| r.get_ref())
                .collect();
            ok.sort_by_key(|a| a.version);
            // One decision; once a return has won, the rejection may land on the returned
            // application (the tier that returned it may reject it), as one call later would.
            let then_rejected = match ok.as_slice() {
                [_] => false,
                [returned, rejected]
                    if returned.status() == pb::Status::Returned
                        && rejected.status() == pb::Status::Rejected =>
                {
                    true
                }
                _ => panic!("exactly one decision: {mine:?}"),
            };
            for (_, r) in &mine {
                if let Err(s) = r {
                    assert!(
                        matches!(s.code(), Code::FailedPrecondition | Code::PermissionDenied),
                        "{s:?}"
                    );
                }
            }
            let h = history(&t, &m.id, 200).await;
            assert_eq!(h.len(), 2 + usize::from(then_rejected), "{h:?}");
            if then_rejected {
                // The rejection was decided on the returned application, not on the review
                // step the caller saw: a stale write would record that step instead.
                let last = &h[2];
                assert_eq!(
                    (
                        last.from_status(),
                        last.action.as_str(),
                        last.actor_role.as_str()
                    ),
                    (pb::Status::Returned, "reject", "village_staff"),
                    "{h:?}"
                );
                assert_eq!(ok[1].version, 3);
            }
            let winner = ok[0];
            assert_eq!(h[1].to_status(), winner.status());
            assert_eq!(winner.version, 2);
            assert_eq!(
                events.iter().filter(|e| e.application_id == m.id).count(),
                1 + usize::from(then_rejected),
                "one announcement per move"
            );
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5, README "Objections" (the hold lasts until the last open one is dismissed; an upheld
/// one rejects the application and closes the others as superseded): three objections by the
/// village, the town and the district; dismissing the first keeps the hold; upholding the
/// second rejects and supersedes the third. A dismissed, an upheld and a superseded objection
/// cannot be resolved again either way (FailedPrecondition naming R-IN-5), by the district or
/// anyone else, and no such attempt changes anything or is announced; the rejected application
/// takes no more objections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closed_objections_cannot_be_resolved_again() {
    bounded(120, async {
        use Act::*;
        use Who::{District as D, Town as T, Village as V};
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut m = applied(&t, 101).await;
        drive_all(&t, &mut m, &TO_NOTICE, d1).await;
        drive_all(
            &t,
            &mut m,
            &[(Object, V), (Object, T), (Object, D), (Dismiss, D)],
            d1,
        )
        .await;
        assert_eq!(get(&t, &m.id).await.status(), pb::Status::OnHold);
        drive(&t, &mut m, Uphold, D, d1).await;
        let states: Vec<_> = m.objections.iter().map(|o| o.1).collect();
        assert_eq!(states, ["dismissed", "upheld", "superseded"]);
        let before = digest(&t, &m.id).await;
        let events = intake_event_count(&t).await;
        let mut problems = Vec::new();
        for (id, state) in &m.objections {
            for who in EVERYONE {
                for upheld in [true, false] {
                    let r = who
                        .client(&t)
                        .resolve_objection(resolve_req(id, upheld, RESOLUTION))
                        .await;
                    let want: &[Code] = match who {
                        D => STATE,
                        // Who before what: denied whatever the objection's state.
                        V | T => DENIED,
                        _ => NOT_FOUND,
                    };
                    match r {
                        Err(s) if want.contains(&s.code()) => {
                            if s.code() == Code::FailedPrecondition
                                && !s.message().contains("[R-IN-5]")
                            {
                                problems.push(format!("{state} by {who:?}: {s:?}"));
                            }
                        }
                        other => problems.push(format!(
                            "{state} (upheld {upheld}) by {who:?}: {other:?}, documented {want:?}"
                        )),
                    }
                }
            }
        }
        for who in [V, T, D] {
            let s = err(who.client(&t).file_objection(objection_req(&m.id)).await);
            if s.code() != Code::FailedPrecondition || !s.message().contains("[R-IN-5]") {
                problems.push(format!(
                    "objection on the rejected application by {who:?}: {s:?}"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(digest(&t, &m.id).await, before, "nothing changed");
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        let events = status_events(&t).await;
        assert_eq!(
            history_problems(&t, &m, &events).await,
            Vec::<String>::new()
        );
        t.shutdown().await;
    })
    .await;
}

/// R-X-3, R-IN-2, R-IN-5, R-IN-6: every workflow write and the history, on an application id
/// that names no application (a fresh UUID, or the id of an objection), is NotFound, and on an
/// id that is no id at all (empty, words, a UUID cut short) is bad input naming
/// `application_id` (`objection_id` for a resolution); nothing is stored or announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_malformed_ids_on_every_workflow_write() {
    bounded(120, async {
        let t = spawn_intake().await;
        let mut m = applied(&t, 111).await;
        drive_all(&t, &mut m, &TO_NOTICE, day("2026-03-02")).await;
        drive(&t, &mut m, Act::Object, Who::Village, day("2026-03-02")).await;
        let objection = m.objections[0].0.clone();
        let before = digest(&t, &m.id).await;
        let events = intake_event_count(&t).await;
        let unknown = uuid::Uuid::now_v7().to_string();
        let mut problems = Vec::new();
        let check = |what: String, r: Result<(), Status>, want: Code, field: &str| match r {
            Err(s)
                if s.code() == want
                    && (want != Code::InvalidArgument
                        || s.message().starts_with(&format!("{field}:"))) =>
            {
                None
            }
            other => Some(format!("{what}: {other:?}, documented {want:?} ({field})")),
        };
        let cases: Vec<(String, Code)> = vec![
            (unknown.clone(), Code::NotFound),
            (objection.clone(), Code::NotFound),
            (String::new(), Code::InvalidArgument),
            ("application-1".into(), Code::InvalidArgument),
            (m.id[..30].to_owned(), Code::InvalidArgument),
        ];
        for (id, want) in &cases {
            let base = Model {
                id: id.clone(),
                ..m.clone()
            };
            for (act, who) in [
                (Act::Approve, Who::Village),
                (Act::Reject, Who::District),
                (Act::Resubmit, Who::Village),
                (Act::Object, Who::District),
                (Act::Recommend, Who::District),
                (Act::BankApprove, Who::Bank),
                (Act::BankReject, Who::Bank),
                (Act::Disburse, Who::Bank),
            ] {
                let r = send(&t, who, request(&base, act, day("2026-03-02")))
                    .await
                    .map(|_| ());
                problems.extend(check(
                    format!("{act:?} on {id:?}"),
                    r,
                    *want,
                    "application_id",
                ));
            }
            let r = t
                .as_district_staff()
                .list_transitions(pb::ListTransitionsRequest {
                    application_id: id.clone(),
                    page: None,
                })
                .await
                .map(|_| ());
            problems.extend(check(
                format!("history of {id:?}"),
                r,
                *want,
                "application_id",
            ));
        }
        for (id, want) in [
            (unknown.clone(), Code::NotFound),
            (m.id.clone(), Code::NotFound),
            (String::new(), Code::InvalidArgument),
            ("objection-1".into(), Code::InvalidArgument),
        ] {
            for upheld in [true, false] {
                let r = t
                    .as_district_staff()
                    .resolve_objection(resolve_req(&id, upheld, RESOLUTION))
                    .await
                    .map(|_| ());
                problems.extend(check(format!("resolve {id:?}"), r, want, "objection_id"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(digest(&t, &m.id).await, before, "nothing changed");
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        let stored = count(&t.pool, "select count(*) from applications").await;
        assert_eq!(stored, 1, "no application appeared");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 ("bank approved or rejected -> disbursed"), R-IN-6: under a policy with two partner
/// banks, a bank rejection ends the workflow: the district cannot recommend it again, to the
/// same or to the other partner bank
/// (FailedPrecondition naming R-IN-2); the bank cannot decide again or disburse
/// (FailedPrecondition naming R-IN-6); the other bank does not see it. Nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bank_rejection_is_final_for_every_bank() {
    bounded(90, async {
        let t = spawn_intake_with_two_banks().await;
        let mut m = applied(&t, 121).await;
        drive_all(&t, &mut m, &TO_NOTICE, day("2026-03-02")).await;
        let d2 = day("2026-03-07");
        at(&t, d2);
        drive_all(
            &t,
            &mut m,
            &[
                (Act::Recommend, Who::District),
                (Act::BankReject, Who::Bank),
            ],
            d2,
        )
        .await;
        let before = digest(&t, &m.id).await;
        let events = intake_event_count(&t).await;
        for bank in [BANK, OTHER_BANK] {
            let s = err(t
                .as_district_staff()
                .recommend_to_bank(recommend_req(&m.id, bank))
                .await);
            assert_refused(&s, &["R-IN-2"]);
        }
        for req in [
            Req::Decide(approve_req(&m.id, AMOUNT, "0.0435", 12)),
            Req::Decide(bank_reject_req(&m.id, BANK_REASON)),
            Req::Disburse(disbursement_req(&m.id, d2)),
        ] {
            let s = send(&t, Who::Bank, req.clone()).await.expect_err("refused");
            assert_refused(&s, &["R-IN-6"]);
            let s = send(&t, Who::OtherBank, req).await.expect_err("refused");
            assert_eq!(s.code(), Code::NotFound, "{s:?}");
        }
        assert_eq!(digest(&t, &m.id).await, before, "nothing changed");
        assert_eq!(intake_event_count(&t).await, events, "nothing announced");
        t.shutdown().await;
    })
    .await;
}

/// R-IN-8 with R-IN-2 / R-IN-5 (README "Request ids": a retry returns the refusal the first
/// attempt got, even when the facts have changed since; a new decision needs a new id): a
/// recommendation refused during the notice (R-IN-5) is refused again with the same id after
/// the notice, and a new id recommends; a resubmission refused because the application was not
/// returned (R-IN-2) stays refused with that id once it is returned, and a new id resubmits.
/// Neither replay records a move.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_move_keeps_its_refusal_and_a_new_request_id_moves() {
    bounded(90, async {
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut m = applied(&t, 131).await;
        let early_resubmit = resubmit_req(&m.id);
        let s = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(early_resubmit.clone())
            .await);
        assert_refused(&s, &["R-IN-2"]);
        drive(&t, &mut m, Act::Return, Who::Village, d1).await;
        let again = err(t
            .as_village_staff(VILLAGE_A)
            .resubmit_application(early_resubmit)
            .await);
        assert_eq!(
            (again.code(), again.message()),
            (s.code(), s.message()),
            "the first refusal"
        );
        assert_eq!(get(&t, &m.id).await.status(), pb::Status::Returned);
        drive(&t, &mut m, Act::Resubmit, Who::Village, d1).await;
        let village_approval = review_req(&m.id, pb::Decision::Approve, "");
        let first = t
            .as_village_staff(VILLAGE_A)
            .review_application(village_approval.clone())
            .await
            .expect("the village approves")
            .into_inner();
        m.apply(
            Act::Approve,
            Who::Village,
            &Expect::Moves(St::Town, "approve"),
            None,
            d1,
        );
        drive_all(&t, &mut m, &TO_NOTICE[1..], d1).await;
        let early = recommend_req(&m.id, BANK);
        let s = err(t.as_district_staff().recommend_to_bank(early.clone()).await);
        assert_refused(&s, &["R-IN-5"]);
        let d2 = day("2026-03-07");
        at(&t, d2);
        let again = err(t.as_district_staff().recommend_to_bank(early).await);
        assert_eq!(
            (again.code(), again.message()),
            (s.code(), s.message()),
            "the first refusal"
        );
        assert_eq!(get(&t, &m.id).await.status(), pb::Status::PublicNotice);
        drive(&t, &mut m, Act::Recommend, Who::District, d2).await;
        // The village's approval, sent again once the application is with the bank: its first
        // response, and no second move.
        let replayed = t
            .as_village_staff(VILLAGE_A)
            .review_application(village_approval)
            .await
            .expect("the first result again")
            .into_inner();
        assert_eq!(
            (replayed.status(), replayed.version),
            (first.status(), first.version)
        );
        let events = status_events(&t).await;
        assert_eq!(
            history_problems(&t, &m, &events).await,
            Vec::<String>::new()
        );
        assert_eq!(get(&t, &m.id).await.status(), pb::Status::Recommended);
        t.shutdown().await;
    })
    .await;
}

/// R-IN-5, README "Objections" (the hold lasts until the last open one is dismissed), R-X-2:
/// while the district dismisses the only open objection, four more are filed at once by the
/// village, the town and the district; then the four are dismissed at once. Whatever the
/// order, the application is on hold exactly while an objection is open, ends in public
/// notice, every recorded move starts where the previous one ended, and each is announced
/// once; no call fails other than as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objections_filed_while_one_is_dismissed_keep_the_hold_consistent() {
    bounded(120, async {
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut apps = Vec::new();
        for n in 0..3 {
            let mut m = applied(&t, 161 + n).await;
            drive_all(&t, &mut m, &TO_NOTICE, d1).await;
            drive(&t, &mut m, Act::Object, Who::Village, d1).await;
            apps.push(m);
        }
        for m in &apps {
            let first = m.objections[0].0.clone();
            let mut calls = Vec::new();
            let (c, req) = (
                t.as_district_staff(),
                resolve_req(&first, false, RESOLUTION),
            );
            calls.push(Box::pin(async move {
                let mut c = c;
                c.resolve_objection(req).await.map(|r| r.into_inner())
            })
                as std::pin::Pin<
                    Box<dyn Future<Output = Result<pb::Objection, Status>> + Send>,
                >);
            for who in [Who::Village, Who::Town, Who::District, Who::Village] {
                let (mut c, req) = (who.client(&t), objection_req(&m.id));
                calls.push(Box::pin(async move {
                    c.file_objection(req).await.map(|r| r.into_inner())
                }));
            }
            let results = futures::future::join_all(calls).await;
            let filed: Vec<String> = results
                .iter()
                .map(|r| r.as_ref().unwrap_or_else(|s| panic!("{s:?}")))
                .skip(1)
                .map(|o| o.id.clone())
                .collect();
            let a = get(&t, &m.id).await;
            assert_eq!(a.status(), pb::Status::OnHold, "four objections are open");
            let results = futures::future::join_all(filed.iter().map(|id| {
                let (mut c, req) = (t.as_district_staff(), resolve_req(id, false, RESOLUTION));
                async move { c.resolve_objection(req).await }
            }))
            .await;
            for r in &results {
                assert!(r.is_ok(), "{r:?}");
            }
            let a = get(&t, &m.id).await;
            assert_eq!(a.status(), pb::Status::PublicNotice, "no objection is open");
            let states: Vec<_> = objection_states(&t, &m.id)
                .await
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            assert_eq!(states, vec!["dismissed"; 5]);
            let h = history(&t, &m.id, 200).await;
            for k in 1..h.len() {
                assert_eq!(h[k].from_status(), h[k - 1].to_status(), "a chain: {h:?}");
            }
            let holds = h.iter().filter(|tr| tr.action == "objection").count();
            let releases = h
                .iter()
                .filter(|tr| tr.action == "objection_dismissed")
                .count();
            assert!(
                (1..=2).contains(&holds) && holds == releases,
                "held and released alike: {h:?}"
            );
            assert_eq!(
                h.last().map(|tr| tr.to_status()),
                Some(pb::Status::PublicNotice)
            );
            assert_eq!(a.version as usize, h.len(), "one version per move");
        }
        let events = status_events(&t).await;
        for m in &apps {
            let announced = events.iter().filter(|e| e.application_id == m.id).count();
            let recorded = history(&t, &m.id, 200).await.len() - 1;
            assert_eq!(announced, recorded, "each move announced once");
        }
        t.shutdown().await;
    })
    .await;
}

/// R-IN-2 ("every transition ... can be listed"), R-X-3 (bad input gets a clear error), with
/// common.proto's page token ("a token returned by this API" for this listing): the next-page
/// token of one application's history, given while listing another application's history, is
/// not a token of that listing. It must be refused as bad input naming `page.page_token`, not
/// taken as a position that silently leaves out the other history's earlier moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_token_of_another_applications_history_is_refused() {
    bounded(90, async {
        let t = spawn_intake().await;
        let d1 = day("2026-03-02");
        let mut early = applied(&t, 171).await;
        let mut late = applied(&t, 172).await;
        drive_all(&t, &mut late, &TO_NOTICE, d1).await;
        drive_all(&t, &mut early, &TO_NOTICE, d1).await;
        let page = |id: &str, token: String| pb::ListTransitionsRequest {
            application_id: id.to_owned(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: token,
            }),
        };
        let mut district = t.as_district_staff();
        // A token of `late`'s history after its first move, its submission, which came after
        // `early`'s submission and before `early`'s approvals.
        let late_token = district
            .list_transitions(page(&late.id, String::new()))
            .await
            .expect("late's first page")
            .into_inner()
            .page
            .map(|p| p.next_page_token)
            .unwrap_or_default();
        assert!(!late_token.is_empty());
        let r = district
            .list_transitions(page(&early.id, late_token.clone()))
            .await;
        match r {
            Err(s) => assert_invalid(&s, "page.page_token", "R-X-3"),
            Ok(r) => panic!(
                "another listing's token accepted: {:?} of early's {} moves",
                r.into_inner()
                    .transitions
                    .iter()
                    .map(|tr| tr.action.clone())
                    .collect::<Vec<_>>(),
                early.moves.len()
            ),
        }
        t.shutdown().await;
    })
    .await;
}

// =====================================================================================
// Who before what
// =====================================================================================

/// R-IN-5, R-IN-6, R-X-3 (ARCHITECTURE "Errors"): whether the caller may take a step is
/// decided before what they sent and before the state of things. A town clerk resolving an
/// objection the district already dismissed is denied, not told (and kept against their
/// request id) that it is closed; a town clerk recommending to a bank that is no partner, and
/// the district recording a bank decision with an unreadable rate, are denied, not told about
/// the bank or the rate. For the right caller the payload comes before the state: the bank
/// deciding a second time with an unreadable rate is told about the rate, and with a good
/// payload that the decision was taken (R-IN-6). The disbursement follows the same order: an
/// unreadable payout before any decision is bad input, kept with nothing (R-IN-8).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_who_may_not_act_are_denied_before_payload_or_state_is_looked_at() {
    let code = |got: &Result<Reply, Status>| got.as_ref().err().map(Status::code);
    let t = spawn_intake().await;
    let (d1, d2, d3) = (day("2026-03-02"), day("2026-03-03"), day("2026-03-07"));
    at(&t, d1);
    let mut dismissed = applied(&t, 701).await;
    drive_all(&t, &mut dismissed, &TO_NOTICE, d1).await;
    let mut rec = applied(&t, 702).await;
    drive_all(&t, &mut rec, &TO_NOTICE, d1).await;
    // An objection with no content from a caller who may not object (the bank before the
    // recommendation, the operator, another town's station: none can see the application) is
    // not found, not told about its content; from staff, it is bad input. Nothing is held.
    let mut blank = objection_req(&rec.id);
    blank.content = " ".into();
    for who in [Who::Bank, Who::Operator, Who::OtherTown] {
        let got = send(&t, who, Req::Object(blank.clone())).await;
        assert_eq!(code(&got), Some(Code::NotFound), "{who:?}: {got:?}");
    }
    // So is a rejection without a reason, or a resubmission with an unreadable note.
    let reasonless = review_req(&rec.id, pb::Decision::Reject, " ");
    let mut noteless = resubmit_req(&rec.id);
    noteless.note = "\u{0}".into();
    for who in [Who::OtherTown, Who::OtherTownVillage] {
        let got = send(&t, who, Req::Review(reasonless.clone())).await;
        assert_eq!(code(&got), Some(Code::NotFound), "{who:?}: {got:?}");
        let got = send(&t, who, Req::Resubmit(Box::new(noteless.clone()))).await;
        assert_eq!(code(&got), Some(Code::NotFound), "{who:?}: {got:?}");
    }
    let got = send(&t, Who::District, Req::Review(reasonless)).await;
    let Err(s) = got else {
        panic!("rejected without a reason: {got:?}")
    };
    assert_invalid(&s, "reason", "R-IN-2");
    let got = send(&t, Who::Village, Req::Resubmit(Box::new(noteless))).await;
    let Err(s) = got else {
        panic!("resubmitted with an unreadable note: {got:?}")
    };
    assert_invalid(&s, "note", "R-IN-2");
    let got = send(&t, Who::Town, Req::Object(blank.clone())).await;
    let Err(s) = got else {
        panic!("an objection without content filed: {got:?}")
    };
    assert_invalid(&s, "content", "R-IN-5");
    assert_eq!(get(&t, &rec.id).await.status(), pb::Status::PublicNotice);
    at(&t, d2);
    drive_all(
        &t,
        &mut dismissed,
        &[(Act::Object, Who::District), (Act::Dismiss, Who::District)],
        d2,
    )
    .await;
    let closed = dismissed.objections[0].0.clone();
    for upheld in [true, false] {
        let req = resolve_req(&closed, upheld, RESOLUTION);
        let got = send(&t, Who::Town, Req::Resolve(req.clone())).await;
        assert_eq!(code(&got), Some(Code::PermissionDenied), "{got:?}");
        // Nothing was kept with the clerk's request id.
        let kept: i64 = sqlx::query_scalar(
            "select count(*) from idempotency_keys where caller = $1 and request_id = $2",
        )
        .bind(format!("town-staff-{TOWN_A}"))
        .bind(&req.request_id)
        .fetch_one(&t.pool)
        .await
        .expect("idempotency keys");
        assert_eq!(kept, 0, "a denial is not kept");
        // Nor is a blank resolution looked at before the clerk is denied.
        let blank = resolve_req(&closed, upheld, " ");
        let got = send(&t, Who::Town, Req::Resolve(blank)).await;
        assert_eq!(code(&got), Some(Code::PermissionDenied), "{got:?}");
        // The district is told the objection is closed.
        let got = send(&t, Who::District, Req::Resolve(req)).await;
        let Err(s) = got else {
            panic!("a closed objection resolved: {got:?}")
        };
        assert_refused(&s, &["R-IN-5"]);
    }

    at(&t, d3);
    let got = send(
        &t,
        Who::Town,
        Req::Recommend(recommend_req(&rec.id, "no-such-bank")),
    )
    .await;
    assert_eq!(code(&got), Some(Code::PermissionDenied), "{got:?}");
    let got = send(
        &t,
        Who::District,
        Req::Recommend(recommend_req(&rec.id, "no-such-bank")),
    )
    .await;
    let Err(s) = got else {
        panic!("recommended to a bank that is no partner: {got:?}")
    };
    assert_invalid(&s, "bank_id", "R-IN-6");
    drive(&t, &mut rec, Act::Recommend, Who::District, d3).await;
    // The bank, which now sees it, is denied an objection by its role, before its content
    // and the state (the notice is over).
    let got = send(&t, Who::Bank, Req::Object(blank.clone())).await;
    let Err(s) = got else {
        panic!("a bank filed an objection: {got:?}")
    };
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("[R-IN-5]"), "names the rule: {s:?}");

    // The disbursement likewise: the district is denied; the bank, while nothing is approved
    // yet, is told about its unreadable amount (not kept), not that nothing is approved; a
    // readable one is told about the state.
    let mut unreadable_payout = disbursement_req(&rec.id, d3);
    unreadable_payout.amount = money("abc");
    let got = send(&t, Who::District, Req::Disburse(unreadable_payout.clone())).await;
    assert_eq!(code(&got), Some(Code::PermissionDenied), "{got:?}");
    let got = send(&t, Who::Bank, Req::Disburse(unreadable_payout.clone())).await;
    let Err(s) = got else {
        panic!("an unreadable payout accepted: {got:?}")
    };
    assert_invalid(&s, "amount", "R-IN-6");
    let early = send(&t, Who::Bank, Req::Disburse(disbursement_req(&rec.id, d3))).await;
    let Err(s) = early else {
        panic!("paid out before any decision: {early:?}")
    };
    assert_refused(&s, &["R-IN-6"]);

    let unreadable = approve_req(&rec.id, AMOUNT, "4.35%", 12);
    let got = send(&t, Who::District, Req::Decide(unreadable.clone())).await;
    assert_eq!(code(&got), Some(Code::PermissionDenied), "{got:?}");
    drive(&t, &mut rec, Act::BankApprove, Who::Bank, d3).await;
    let got = send(&t, Who::Bank, Req::Decide(unreadable)).await;
    let Err(s) = got else {
        panic!("an unreadable rate accepted: {got:?}")
    };
    assert_invalid(&s, "annual_rate", "R-IN-6");
    let again = approve_req(&rec.id, AMOUNT, "0.0435", 12);
    let got = send(&t, Who::Bank, Req::Decide(again)).await;
    let Err(s) = got else {
        panic!("decided twice: {got:?}")
    };
    assert_refused(&s, &["R-IN-6"]);
    assert_eq!(get(&t, &rec.id).await.status(), pb::Status::BankApproved);
    // The unreadable payout kept nothing with its request id (R-IN-8): corrected, it is paid.
    let corrected = pb::RecordDisbursementRequest {
        request_id: unreadable_payout.request_id.clone(),
        ..disbursement_req(&rec.id, d3)
    };
    let paid = send(&t, Who::Bank, Req::Disburse(corrected)).await;
    assert!(paid.is_ok(), "{paid:?}");
    assert_eq!(get(&t, &rec.id).await.status(), pb::Status::Disbursed);
    t.shutdown().await;
}

// =====================================================================================
// What a resubmission corrected
// =====================================================================================

/// R-IN-2 (退回补正), R-X-2, R-CR-11: a resubmission's transition records what it corrected,
/// and its `ApplicationStatusChanged` announces the same, so the history shows that the tiers
/// which approved before the return saw other values, and subscribers holding the submitted
/// amount learn the new one. Values are as on the wire; a household's phone is recorded as
/// corrected without its values. A resubmission that corrects nothing records nothing, and no
/// other move has corrections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resubmission_records_and_announces_each_correction() {
    let t = spawn_intake().await;
    let today = day("2026-03-02");
    at(&t, today);
    let mut m = applied(&t, 741).await;
    drive_all(
        &t,
        &mut m,
        &[
            (Act::Approve, Who::Village),
            (Act::Approve, Who::Town),
            (Act::Return, Who::District),
        ],
        today,
    )
    .await;
    let corrected = pb::ResubmitApplicationRequest {
        amount: money("5000"),
        term_months: 24,
        purpose: pb::Purpose::Breeding as i32,
        project_description: "peony seedlings, 4 mu".into(),
        household: Some(pb::HouseholdCorrection {
            name: "王建国（更正）".into(),
            phone: "13900139000".into(),
            poor_household_number: "LL-2016-000124".into(),
            // As declared: not a correction.
            household_borrows_uses_repays: Some(true),
        }),
        ..resubmit_req(&m.id)
    };
    let got = send(&t, Who::Village, Req::Resubmit(Box::new(corrected))).await;
    let Ok(Reply::App(a)) = got else {
        panic!("resubmitted: {got:?}")
    };
    assert_eq!(a.status(), pb::Status::DistrictReview);
    assert_eq!(a.amount, money("5000.00"));
    let want = vec![
        pb::Correction {
            field: "amount".into(),
            from: "3000.00".into(),
            to: "5000.00".into(),
            personal: false,
        },
        pb::Correction {
            field: "term_months".into(),
            from: "12".into(),
            to: "24".into(),
            personal: false,
        },
        pb::Correction {
            field: "purpose".into(),
            from: "PURPOSE_PLANTING".into(),
            to: "PURPOSE_BREEDING".into(),
            personal: false,
        },
        pb::Correction {
            field: "project_description".into(),
            from: "peony seedlings, 3 mu".into(),
            to: "peony seedlings, 4 mu".into(),
            personal: false,
        },
    ]
    .into_iter()
    .chain(
        [
            "household.name",
            "household.phone",
            "household.poor_household_number",
        ]
        .map(|field| pb::Correction {
            field: field.into(),
            from: String::new(),
            to: String::new(),
            personal: true,
        }),
    )
    .collect::<Vec<_>>();
    let h = history(&t, &m.id, 50).await;
    let last = h.last().expect("a history");
    assert_eq!(last.action, "resubmit");
    assert_eq!(last.corrections, want);
    assert!(
        h[..h.len() - 1].iter().all(|t| t.corrections.is_empty()),
        "only the resubmission corrects: {h:?}"
    );
    t.outbox_drained().await;
    let events = status_events(&t).await;
    let announced = events
        .iter()
        .rfind(|e| e.application_id == m.id)
        .expect("the resubmission announced");
    assert_eq!(announced.action, "resubmit");
    // The project description is named without its values in the event (free text, left out
    // of events as from ApplicationSubmitted); the history shows them to staff.
    let want_announced: Vec<_> = want
        .iter()
        .cloned()
        .map(|c| match c.field.as_str() {
            "project_description" => pb::Correction {
                field: c.field,
                personal: true,
                ..Default::default()
            },
            _ => c,
        })
        .collect();
    assert_eq!(announced.corrections, want_announced);
    // R-CR-11: no personal value, old or new, is kept with the transition.
    let kept: Vec<String> = sqlx::query_scalar(
        "select corrections::text from transitions where application_id = $1::uuid",
    )
    .bind(&m.id)
    .fetch_all(&t.pool)
    .await
    .expect("the transitions");
    for value in ["王建国", "13800138000", "13900139000", "LL-2016-00012"] {
        assert!(
            kept.iter().all(|k| !k.contains(value)),
            "{value} kept: {kept:?}"
        );
    }

    // Returned again and resubmitted as it is: nothing corrected.
    let got = send(
        &t,
        Who::District,
        Req::Review(review_req(&m.id, pb::Decision::ReturnForCorrection, REASON)),
    )
    .await;
    assert!(got.is_ok(), "{got:?}");
    let got = send(
        &t,
        Who::Village,
        Req::Resubmit(Box::new(resubmit_req(&m.id))),
    )
    .await;
    assert!(got.is_ok(), "{got:?}");
    let h = history(&t, &m.id, 50).await;
    let last = h.last().expect("a history");
    assert_eq!(last.action, "resubmit");
    assert!(last.corrections.is_empty(), "{last:?}");

    // R-X-2: every announcement carries the application's version after its write (1 for the
    // submission), so a consumer orders them without the stream; a move into a step names its
    // entry (the submission's village step is the first) and deadline as the application
    // shows them.
    let now = t
        .get_as(&mut t.as_district_staff(), &m.id)
        .await
        .expect("the application");
    let mine: Vec<_> = status_events(&t)
        .await
        .into_iter()
        .filter(|e| e.application_id == m.id)
        .collect();
    assert_eq!(
        mine.iter()
            .map(|e| e.application_version)
            .collect::<Vec<_>>(),
        (2..=now.version).collect::<Vec<_>>()
    );
    assert_eq!(
        mine.iter().map(|e| e.step_entry).collect::<Vec<_>>(),
        [2, 3, 0, 4, 0, 5]
    );
    let last = mine.last().expect("the last move");
    assert_eq!(last.step_due_on, now.step_due_on);
    assert!(!last.step_due_on.is_empty());
    assert!(
        mine.iter()
            .all(|e| (e.step_entry == 0) == e.step_due_on.is_empty())
    );
    let submitted = t
        .intake_messages::<pb::ApplicationSubmitted>()
        .await
        .into_iter()
        .find(|e| e.application_id == m.id)
        .expect("the submission announced");
    assert_eq!(submitted.application_version, 1);
    t.shutdown().await;
}
