//! Property tests: the workflow against a small state-machine model (R-IN-2, R-IN-4, R-IN-5,
//! R-IN-6), admission against an independent oracle (R-IN-3), deadlines (R-IN-4) and the
//! form's amount/term limits (R-IN-1, R-IN-3).

use chrono::{Datelike, NaiveDate};
use fupin_kernel::{CreditGrade, Money};
use proptest::prelude::*;

use super::fixtures::*;
use crate::domain::{
    Actor, ApplicantKind, Decision, DomainError, Purpose, Status, Step,
    admission::{AdmissionFacts, RatingFact, Timeline, check},
    application::{Application, Moved, step_days},
    form::{over_caps, validate},
};

// =============================================================================================
// Workflow state machine

/// The edges SPEC R-IN-2 allows (with R-IN-5's hold and R-IN-6's bank steps). `None` is
/// "not yet filed": a filing enters the village step or, for an enterprise filed at the
/// district center, the district step.
const ALLOWED: &[(Option<Status>, Status)] = {
    use Status::*;
    &[
        (None, VillageReview),
        (None, DistrictReview),
        // village -> town -> district -> public notice; reject or return at each
        (Some(VillageReview), TownReview),
        (Some(VillageReview), Rejected),
        (Some(VillageReview), Returned),
        (Some(TownReview), DistrictReview),
        (Some(TownReview), Rejected),
        (Some(TownReview), Returned),
        (Some(DistrictReview), PublicNotice),
        (Some(DistrictReview), Rejected),
        (Some(DistrictReview), Returned),
        // resubmission to the step that returned it
        (Some(Returned), VillageReview),
        (Some(Returned), TownReview),
        (Some(Returned), DistrictReview),
        // or, when no correction can make it admissible, rejection by the tier that returned it
        (Some(Returned), Rejected),
        // public notice: an objection holds it; resolved back or rejected
        (Some(PublicNotice), OnHold),
        (Some(OnHold), PublicNotice),
        (Some(OnHold), Rejected),
        // past the notice the district center rejects or returns instead of recommending
        (Some(PublicNotice), Rejected),
        (Some(PublicNotice), Returned),
        // recommended to a bank, which approves or rejects, then disburses
        (Some(PublicNotice), Recommended),
        (Some(Recommended), BankApproved),
        (Some(Recommended), BankRejected),
        (Some(BankApproved), Disbursed),
    ]
};

fn allowed(from: Option<Status>, to: Status) -> bool {
    ALLOWED.contains(&(from, to))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Village,
    NeighbourVillage,
    Town,
    OtherTown,
    District,
    Bank,
    OtherBank,
    Operator,
    /// Whoever should take the operation in the current state (resolved by the model), so that
    /// random runs get far along the workflow.
    Right,
}

impl Who {
    fn actor(self) -> Actor {
        match self {
            Who::Village => village_staff(VILLAGE),
            Who::NeighbourVillage => village_staff(NEIGHBOUR_VILLAGE),
            Who::Town => town_staff(TOWN),
            Who::OtherTown => town_staff(OTHER_TOWN),
            Who::District => district_staff(),
            Who::Bank => bank(BANK),
            Who::OtherBank => bank(OTHER_BANK),
            Who::Operator => operator(),
            Who::Right => unreachable!("resolved before use"),
        }
    }

    /// Staff over the application's village.
    fn staff_over(self) -> bool {
        matches!(self, Who::Village | Who::Town | Who::District)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Review(Who, Decision, bool),
    Resubmit(Who),
    Objection(Who),
    Resolve(Who, bool, usize),
    Recommend(Who),
    BankDecide(Who, bool),
    Disburse(Who),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        3 => Just(Who::Village),
        1 => Just(Who::NeighbourVillage),
        3 => Just(Who::Town),
        1 => Just(Who::OtherTown),
        4 => Just(Who::District),
        3 => Just(Who::Bank),
        1 => Just(Who::OtherBank),
        1 => Just(Who::Operator),
        12 => Just(Who::Right),
    ]
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        5 => Just(Decision::Approve),
        1 => Just(Decision::Reject),
        2 => Just(Decision::ReturnForCorrection),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (who(), decision(), prop::bool::weighted(0.85)).prop_map(|(w, d, r)| Op::Review(w, d, r)),
        2 => who().prop_map(Op::Resubmit),
        2 => who().prop_map(Op::Objection),
        2 => (who(), prop::bool::weighted(0.3), 0usize..3).prop_map(|(w, u, n)| Op::Resolve(w, u, n)),
        3 => who().prop_map(Op::Recommend),
        2 => (who(), any::<bool>()).prop_map(|(w, a)| Op::BankDecide(w, a)),
        2 => who().prop_map(Op::Disburse),
    ]
}

/// Who files: a household by its village department, an enterprise of the village by the
/// village department or the district center.
#[derive(Clone, Copy, Debug)]
enum Filing {
    Household,
    EnterpriseAtVillage,
    EnterpriseAtDistrict,
}

/// What the model expects of one operation.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Fail,
    Stay,
    Move(Status),
}

/// The model: only what the spec says, kept apart from the aggregate.
struct Model {
    household: bool,
    status: Status,
    returned_from: Option<Step>,
    notice_end: Option<NaiveDate>,
    recommended: bool,
}

impl Model {
    /// Replaces [`Who::Right`] by the actor the spec gives the operation in this state.
    fn resolve(&self, op: &Op) -> Op {
        let right = |w: Who, who: Who| if w == Who::Right { who } else { w };
        let tier = match self.status {
            Status::VillageReview => Who::Village,
            Status::TownReview => Who::Town,
            _ => Who::District,
        };
        match *op {
            Op::Review(w, d, r) => Op::Review(right(w, tier), d, r),
            Op::Resubmit(w) => Op::Resubmit(right(w, Who::Village)),
            Op::Objection(w) => Op::Objection(right(w, Who::Town)),
            Op::Resolve(w, u, n) => Op::Resolve(right(w, Who::District), u, n),
            Op::Recommend(w) => Op::Recommend(right(w, Who::District)),
            Op::BankDecide(w, a) => Op::BankDecide(right(w, Who::Bank), a),
            Op::Disburse(w) => Op::Disburse(right(w, Who::Bank)),
        }
    }

    fn visible(&self, w: Who) -> bool {
        match w {
            Who::Bank => self.recommended,
            other => other.staff_over(),
        }
    }

    fn expect(&self, op: &Op, today: NaiveDate) -> Expect {
        use Expect::*;
        use Status::*;
        let in_notice = self.notice_end.is_some_and(|end| today <= end);
        match *op {
            Op::Review(w, d, with_reason) => {
                let (tier, next) = match self.status {
                    VillageReview => (Who::Village, TownReview),
                    TownReview => (Who::Town, DistrictReview),
                    DistrictReview => (Who::District, PublicNotice),
                    // Past the notice the district center rejects or returns instead of
                    // recommending; approval there is the recommendation.
                    PublicNotice
                        if !in_notice
                            && self.visible(w)
                            && w == Who::District
                            && d != Decision::Approve =>
                    {
                        return match d {
                            _ if !with_reason => Fail,
                            Decision::Reject => Move(Rejected),
                            _ => Move(Returned),
                        };
                    }
                    // Awaiting correction: the tier that returned it may only reject it.
                    Returned => {
                        let tier = match self.returned_from.expect("model: returned from a step") {
                            Step::Village => Who::Village,
                            Step::Town => Who::Town,
                            Step::District => Who::District,
                            Step::Bank => unreachable!(),
                        };
                        return match d {
                            Decision::Reject if with_reason && self.visible(w) && w == tier => {
                                Move(Rejected)
                            }
                            _ => Fail,
                        };
                    }
                    _ => return Fail,
                };
                if !self.visible(w) || w != tier {
                    return Fail;
                }
                match d {
                    Decision::Approve => Move(next),
                    _ if !with_reason => Fail,
                    Decision::Reject => Move(Rejected),
                    Decision::ReturnForCorrection => Move(Returned),
                }
            }
            Op::Resubmit(w) => {
                let filer = w == Who::Village || (!self.household && w == Who::District);
                if self.status != Returned || !self.visible(w) || !filer {
                    return Fail;
                }
                Move(
                    match self.returned_from.expect("model: returned from a step") {
                        Step::Village => VillageReview,
                        Step::Town => TownReview,
                        Step::District => DistrictReview,
                        Step::Bank => unreachable!(),
                    },
                )
            }
            Op::Objection(w) => {
                if !self.visible(w) || !w.staff_over() || !in_notice {
                    return Fail;
                }
                match self.status {
                    PublicNotice => Move(OnHold),
                    OnHold => Stay,
                    _ => Fail,
                }
            }
            Op::Resolve(w, upheld, other_open) => {
                if w != Who::District || self.status != OnHold {
                    Fail
                } else if upheld {
                    Move(Rejected)
                } else if other_open > 0 {
                    Stay
                } else {
                    Move(PublicNotice)
                }
            }
            Op::Recommend(w) => {
                if w == Who::District && self.status == PublicNotice && !in_notice {
                    Move(Recommended)
                } else {
                    Fail
                }
            }
            Op::BankDecide(w, approved) => match (w, self.status) {
                (Who::Bank, Recommended) => {
                    Move(if approved { BankApproved } else { BankRejected })
                }
                _ => Fail,
            },
            Op::Disburse(w) => match (w, self.status) {
                (Who::Bank, BankApproved) => Move(Disbursed),
                _ => Fail,
            },
        }
    }

    fn apply(&mut self, op: &Op, to: Status, today: NaiveDate) {
        if let Op::Review(_, Decision::ReturnForCorrection, _) = op {
            // Past the notice the district center returns it to its own step, and the old
            // notice is over.
            self.returned_from = self.status.step().or(Some(Step::District));
            if self.status == Status::PublicNotice {
                self.notice_end = None;
            }
        }
        if let Op::Resubmit(_) | Op::Review(_, Decision::Reject, _) = op {
            self.returned_from = None;
        }
        if self.status == Status::DistrictReview && to == Status::PublicNotice {
            self.notice_end = Some(plus_days(today, 4));
        }
        if to == Status::Recommended {
            self.recommended = true;
        }
        self.status = to;
    }
}

fn run(app: &mut Application, op: &Op, today: NaiveDate) -> Result<Option<Moved>, DomainError> {
    let (p, c) = (policy(), calendar());
    match *op {
        Op::Review(w, d, r) => app
            .review(&w.actor(), d, if r { "理由" } else { "" }, today, p, c)
            .map(Some),
        Op::Resubmit(w) => app.resubmit(&w.actor(), today, p, c).map(Some),
        Op::Objection(w) => app.file_objection(&w.actor(), today),
        Op::Resolve(w, upheld, n) => app.resolve_objection(&w.actor(), upheld, n),
        Op::Recommend(w) => app.recommend(&w.actor(), BANK, today, p, c).map(Some),
        Op::BankDecide(w, a) => app.bank_decide(&w.actor(), a, "").map(Some),
        Op::Disburse(w) => app.disburse(&w.actor()).map(Some),
    }
}

/// Invariants that hold in every state, whatever the model says.
fn assert_state_invariants(app: &Application) -> Result<(), TestCaseError> {
    // R-IN-4: a deadline runs exactly while the status has a step
    prop_assert_eq!(app.step_due_on.is_some(), app.status.step().is_some());
    prop_assert_eq!(app.step_started_on.is_some(), app.status.step().is_some());
    if let (Some(start), Some(due)) = (app.step_started_on, app.step_due_on) {
        prop_assert!(due > start);
    }
    prop_assert_eq!(app.returned_from.is_some(), app.status == Status::Returned);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // R-IN-2, R-IN-4, R-IN-5, R-IN-6, R-X-3
    #[test]
    fn workflow_moves_only_along_allowed_edges(
        filing in prop_oneof![
            3 => Just(Filing::Household),
            1 => Just(Filing::EnterpriseAtVillage),
            1 => Just(Filing::EnterpriseAtDistrict),
        ],
        start_offset in 0u64..300,
        ops in prop::collection::vec((op(), 0u64..4), 1..60),
    ) {
        let mut today = plus_days(date("2025-01-06"), start_offset);
        let (kind, filer) = match filing {
            Filing::Household => (ApplicantKind::Household, village_staff(VILLAGE)),
            Filing::EnterpriseAtVillage => (ApplicantKind::Cooperative, village_staff(VILLAGE)),
            Filing::EnterpriseAtDistrict => (ApplicantKind::Enterprise, district_staff()),
        };
        let (mut app, filed) = Application::file(
            &filer, kind, area(VILLAGE), money("20000.00"), 24, today, policy(), calendar(),
        ).expect("filing");
        prop_assert!(allowed(filed.from, filed.to));
        prop_assert_eq!(filed.to, app.status);
        assert_state_invariants(&app)?;
        let mut model = Model {
            household: matches!(filing, Filing::Household),
            status: app.status,
            returned_from: None,
            notice_end: None,
            recommended: false,
        };

        let mut reached = vec![app.status];
        for (op, advance) in &ops {
            today = plus_days(today, *advance);
            let op = &model.resolve(op);
            let before = app.clone();
            let expected = model.expect(op, today);
            let result = run(&mut app, op, today);

            // terminal statuses never change
            if before.status.is_terminal() {
                prop_assert_eq!(&app, &before, "terminal {:?} changed by {:?}", before.status, op);
            }
            // step_seq never decreases
            prop_assert!(app.step_seq >= before.step_seq);
            assert_state_invariants(&app)?;

            match (&expected, &result) {
                (Expect::Fail, Err(_)) | (Expect::Stay, Ok(None)) => {
                    // R-X-3: a refusal (or a no-op) changes nothing
                    prop_assert_eq!(&app, &before, "{:?} -> {:?}", op, result);
                }
                (Expect::Move(to), Ok(Some(moved))) => {
                    prop_assert_eq!(moved.from, Some(before.status));
                    prop_assert_eq!(moved.to, *to);
                    prop_assert_eq!(app.status, *to);
                    prop_assert!(
                        allowed(moved.from, moved.to),
                        "edge {:?} -> {:?} not allowed by R-IN-2", moved.from, moved.to
                    );
                    if let Some(step) = to.step() {
                        // entering a step: a new sequence number and its working-day deadline
                        prop_assert_eq!(app.step_seq, before.step_seq + 1);
                        prop_assert_eq!(app.step_started_on, Some(today));
                        prop_assert_eq!(
                            app.step_due_on,
                            Some(calendar().add_working_days(today, step_days(step, policy())).unwrap())
                        );
                    } else {
                        prop_assert_eq!(app.step_seq, before.step_seq);
                    }
                    model.apply(op, *to, today);
                }
                _ => prop_assert!(
                    false,
                    "{:?} in {:?} on {}: model expected {:?}, got {:?}",
                    op, before.status, today, expected, result
                ),
            }
            prop_assert_eq!(app.status, model.status);
            reached.push(app.status);
        }
        REACHED.with(|r| r.borrow_mut().extend(reached));
    }
}

thread_local! {
    /// Statuses the workflow property reached on this thread, for the coverage check below.
    static REACHED: std::cell::RefCell<std::collections::HashSet<Status>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

// The property above proves little unless random runs reach every status.
// R-IN-2
#[test]
fn workflow_property_reaches_every_status() {
    workflow_moves_only_along_allowed_edges();
    REACHED.with(|r| {
        let reached = r.borrow();
        for status in Status::ALL {
            assert!(reached.contains(&status), "{status:?} never reached");
        }
    });
}

// =============================================================================================
// Admission oracle

const ALL_PURPOSES: [Purpose; 9] = [
    Purpose::Planting,
    Purpose::Breeding,
    Purpose::Processing,
    Purpose::RuralTourism,
    Purpose::Ecommerce,
    Purpose::Handicraft,
    Purpose::OtherProduction,
    Purpose::Consumption,
    Purpose::Housing,
];

#[derive(Clone, Debug)]
struct RatingCase {
    grade: Option<CreditGrade>,
    veto: bool,
    effective_offset: Option<i64>,
    expires_offset: Option<i64>,
}

#[derive(Clone, Debug)]
struct HouseholdCase {
    today: NaiveDate,
    born: NaiveDate,
    registered: bool,
    self_use: bool,
    blacklisted: bool,
    in_credit_village: bool,
    village_suspended: bool,
    town_suspended: bool,
    purpose: Purpose,
    rating: Option<RatingCase>,
    amount_fen: i64,
    term_months: u32,
}

fn shift(d: NaiveDate, offset: i64) -> NaiveDate {
    if offset >= 0 {
        plus_days(d, offset.unsigned_abs())
    } else {
        minus_days(d, offset.unsigned_abs())
    }
}

fn grade() -> impl Strategy<Value = Option<CreditGrade>> {
    prop_oneof![
        1 => Just(None),
        2 => Just(Some(CreditGrade::Aaa)),
        2 => Just(Some(CreditGrade::Aa)),
        3 => Just(Some(CreditGrade::A)),
        1 => Just(Some(CreditGrade::B)),
        1 => Just(Some(CreditGrade::C)),
    ]
}

fn rating_case() -> impl Strategy<Value = RatingCase> {
    (
        grade(),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.9, -400i64..3),
        prop::option::weighted(0.8, -2i64..400),
    )
        .prop_map(
            |(grade, veto, effective_offset, expires_offset)| RatingCase {
                grade,
                veto,
                effective_offset,
                expires_offset,
            },
        )
}

/// Amounts around the lines and the cap, or anywhere up to 60,000 yuan.
fn amount_fen() -> impl Strategy<Value = i64> {
    let edges = prop::sample::select(vec![
        2_000_000i64,
        2_400_000,
        3_000_000,
        3_600_000,
        5_000_000,
    ]);
    prop_oneof![
        (edges, -1i64..=1).prop_map(|(e, d)| e + d),
        1i64..=6_000_000,
    ]
}

/// Birth dates around the 18th and 66th birthdays, or anywhere from 10 to 80 years back.
fn born(today: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        (prop::sample::select(vec![17u32, 18, 65, 66]), -1i64..=1)
            .prop_map(move |(y, d)| shift(born_years_before(today, y), d)),
        (3650i64..29200).prop_map(move |days| shift(today, -days)),
    ]
}

fn household_case() -> impl Strategy<Value = HouseholdCase> {
    (0i64..730)
        .prop_map(|o| shift(date("2025-01-01"), o))
        .prop_flat_map(|today| {
            (
                Just(today),
                born(today),
                (
                    prop::bool::weighted(0.9),
                    prop::bool::weighted(0.9),
                    prop::bool::weighted(0.1),
                    any::<bool>(),
                    prop::bool::weighted(0.1),
                    prop::bool::weighted(0.1),
                ),
                prop::sample::select(ALL_PURPOSES.to_vec()),
                prop::option::weighted(0.9, rating_case()),
                amount_fen(),
                prop_oneof![3 => 1u32..=36, 1 => 35u32..=40],
            )
        })
        .prop_map(
            |(
                today,
                born,
                (registered, self_use, blacklisted, cv, vs, ts),
                purpose,
                rating,
                amount_fen,
                term_months,
            )| {
                HouseholdCase {
                    today,
                    born,
                    registered,
                    self_use,
                    blacklisted,
                    in_credit_village: cv,
                    village_suspended: vs,
                    town_suspended: ts,
                    purpose,
                    rating,
                    amount_fen,
                    term_months,
                }
            },
        )
}

/// The rules of R-IN-3 written out from the spec text and its defaults, independently of the
/// domain code: the multiset of rule IDs that must be named.
fn oracle(c: &HouseholdCase) -> Vec<&'static str> {
    const CAP_FEN: i64 = 5_000_000; // 50,000 yuan
    let mut rules = Vec::new();
    if !c.registered {
        rules.push("R-IN-3");
    }
    match &c.rating {
        None => rules.push("R-CR-3"),
        Some(r) => {
            let effective = r
                .effective_offset
                .is_some_and(|o| shift(c.today, o) <= c.today)
                && r.expires_offset.is_none_or(|o| c.today < shift(c.today, o));
            let base_fen = match r.grade {
                Some(CreditGrade::Aaa) => Some(5_000_000),
                Some(CreditGrade::Aa) => Some(3_000_000),
                Some(CreditGrade::A) => Some(2_000_000),
                _ => None,
            };
            match base_fen {
                Some(base) if effective && !r.veto => {
                    let line = if c.in_credit_village {
                        base * 120 / 100
                    } else {
                        base
                    };
                    if c.amount_fen > line.min(CAP_FEN) {
                        rules.push("R-CR-8");
                    }
                }
                _ => rules.push("R-CR-3"),
            }
        }
    }
    // aged n on `today` iff the n-th birthday (same month/day, n years on) is not after today
    let reached = |n: i32| {
        (c.today.year() - n, c.today.month(), c.today.day())
            >= (c.born.year(), c.born.month(), c.born.day())
    };
    if !reached(18) || reached(66) {
        rules.push("R-IN-3");
    }
    if !c.self_use {
        rules.push("R-IN-3");
    }
    if c.amount_fen > CAP_FEN {
        rules.push("R-IN-3");
    }
    if c.term_months > 36 {
        rules.push("R-IN-3");
    }
    if c.blacklisted {
        rules.push("R-CR-10");
    }
    if matches!(c.purpose, Purpose::Consumption | Purpose::Housing) {
        rules.push("R-IN-3");
    }
    if c.village_suspended {
        rules.push("R-RK-9");
    }
    if c.town_suspended {
        rules.push("R-RK-9");
    }
    rules.sort_unstable();
    rules
}

fn to_inputs(c: &HouseholdCase) -> (crate::domain::form::ApplicationForm, AdmissionFacts) {
    let mut form = household_form_born(c.born);
    form.amount = Money::from_fen(c.amount_fen).unwrap();
    form.term_months = c.term_months;
    form.purpose = c.purpose;
    let h = household_mut(&mut form);
    if !c.registered {
        h.poor_household_number = String::new();
    }
    h.self_use = c.self_use;
    let rating = c.rating.as_ref().map(|r| RatingFact {
        grade: r.grade,
        veto: r.veto,
        credit_line: r.grade.map_or(Money::ZERO, grade_line),
        effective_from: r.effective_offset.map(|o| shift(c.today, o)),
        expires_on: r.expires_offset.map(|o| shift(c.today, o)),
        village_code: VILLAGE.to_owned(),
    });
    let mut suspended_areas = Vec::new();
    if c.village_suspended {
        suspended_areas.push(area(VILLAGE));
    }
    if c.town_suspended {
        suspended_areas.push(area(TOWN));
    }
    let facts = AdmissionFacts {
        rating,
        earlier_ratings: Vec::new(),
        credit_village: if c.in_credit_village {
            Timeline::always(true)
        } else {
            Timeline::default()
        },
        blacklisted: c.blacklisted,
        suspended_areas,
        enterprise_qualified: Timeline::default(),
        enterprise_area: None,
    };
    (form, facts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    // R-IN-3, R-CR-3, R-CR-8, R-CR-10, R-RK-9: admitted iff no rule fails, and a refusal names
    // exactly the rules that fail
    #[test]
    fn household_admission_matches_the_oracle(case in household_case()) {
        let (form, facts) = to_inputs(&case);
        let expected = oracle(&case);
        match check(&form, &facts, policy(), case.today) {
            Ok(()) => prop_assert!(expected.is_empty(), "admitted, oracle refuses {:?}", expected),
            Err(DomainError::Refused(failures)) => {
                prop_assert!(!failures.is_empty());
                prop_assert!(failures.iter().all(|f| !f.message.is_empty()));
                let mut rules: Vec<_> = failures.iter().map(|f| f.rule).collect();
                rules.sort_unstable();
                prop_assert_eq!(rules, expected);
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    // R-ID-4, R-CR-10, R-RK-9: an enterprise is admitted iff qualified, not blacklisted, for a
    // production purpose, and not in a suspended area
    #[test]
    fn enterprise_admission_matches_the_oracle(
        qualified in prop::option::of(any::<bool>()),
        blacklisted in any::<bool>(),
        suspended in any::<bool>(),
        purpose in prop::sample::select(ALL_PURPOSES.to_vec()),
        amount_fen in 1i64..100_000_000,
    ) {
        let mut form = enterprise_form(TOWN);
        form.purpose = purpose;
        form.amount = Money::from_fen(amount_fen).unwrap();
        let facts = AdmissionFacts {
            enterprise_qualified: qualified.map(Timeline::always).unwrap_or_default(),
            blacklisted,
            suspended_areas: if suspended { vec![area(TOWN)] } else { vec![] },
            ..AdmissionFacts::default()
        };
        let mut expected = Vec::new();
        if qualified != Some(true) { expected.push("R-ID-4"); }
        if blacklisted { expected.push("R-CR-10"); }
        if !purpose.is_production() { expected.push("R-IN-3"); }
        if suspended { expected.push("R-RK-9"); }
        expected.sort_unstable();
        let got = match check(&form, &facts, policy(), date("2025-06-16")) {
            Ok(()) => vec![],
            Err(DomainError::Refused(f)) => {
                let mut r: Vec<_> = f.iter().map(|f| f.rule).collect();
                r.sort_unstable();
                r
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(got, expected);
    }
}

// =============================================================================================
// Deadlines and form limits

proptest! {
    // R-IN-4: a step is due on a working day exactly n working days on, overdue the day after
    #[test]
    fn step_deadline_is_n_working_days_and_overdue_the_day_after(
        offset in 0u64..1060,
        at_district in any::<bool>(),
    ) {
        let start = plus_days(date("2024-01-01"), offset);
        let (actor, kind, step) = if at_district {
            (district_staff(), ApplicantKind::Enterprise, Step::District)
        } else {
            (village_staff(VILLAGE), ApplicantKind::Household, Step::Village)
        };
        let (app, _) = Application::file(
            &actor, kind, area(VILLAGE), money("1000.00"), 12, start, policy(), calendar(),
        ).unwrap();
        let due = app.step_due_on.unwrap();
        let days = step_days(step, policy());
        prop_assert!(due > start);
        prop_assert!(calendar().is_working_day(due).unwrap());
        prop_assert_eq!(calendar().working_days_between(start, due).unwrap(), days);
        prop_assert_eq!(calendar().working_days_between(start, minus_days(due, 1)).unwrap(), days - 1);
        prop_assert!(!app.is_overdue(start));
        prop_assert!(!app.is_overdue(due));
        prop_assert!(app.is_overdue(plus_days(due, 1)));
        prop_assert!(app.needs_overdue_alert(plus_days(due, 1)));
    }

    // R-IN-1, R-IN-3, R-X-3: a household form is well-formed iff amount > 0 and term >= 1
    // (a failure names the field at fault), and over the caps iff amount > 50,000 or
    // term > 36, naming each cap exceeded, amount first
    #[test]
    fn household_form_amount_and_term_limits(
        amount_fen in prop_oneof![0i64..=6_000_000, (4_999_999i64..=5_000_001)],
        term in 0u32..=40,
    ) {
        let mut form = household_form();
        form.amount = Money::from_fen(amount_fen).unwrap();
        form.term_months = term;
        let positive = amount_fen > 0 && term >= 1;
        match validate(&form, areas(), judged_on()) {
            Ok(()) => prop_assert!(positive),
            Err(DomainError::Invalid { field, .. }) => {
                prop_assert!(!positive);
                prop_assert!(
                    (field == "amount" && amount_fen == 0) || (field == "term_months" && term == 0),
                    "field {} for amount {} term {}", field, amount_fen, term
                );
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
        let over: Vec<_> = over_caps(&form, policy()).into_iter().map(|f| (f.field, f.rule)).collect();
        let mut expected = Vec::new();
        if amount_fen > 5_000_000 {
            expected.push((Some("amount"), "R-IN-3"));
        }
        if term > 36 {
            expected.push((Some("term_months"), "R-IN-3"));
        }
        prop_assert_eq!(over, expected);
    }
}

// The model itself must be able to reach the far end of the workflow, or the property above
// proves little: replay the happy path through it.
// R-IN-2
#[test]
fn model_follows_the_happy_path() {
    let d = date("2025-06-16");
    let mut model = Model {
        household: true,
        status: Status::VillageReview,
        returned_from: None,
        notice_end: None,
        recommended: false,
    };
    let path = [
        (
            Op::Review(Who::Village, Decision::Approve, false),
            d,
            Status::TownReview,
        ),
        (
            Op::Review(Who::Town, Decision::Approve, false),
            d,
            Status::DistrictReview,
        ),
        (
            Op::Review(Who::District, Decision::Approve, false),
            d,
            Status::PublicNotice,
        ),
        (
            Op::Recommend(Who::District),
            plus_days(d, 5),
            Status::Recommended,
        ),
        (
            Op::BankDecide(Who::Bank, true),
            plus_days(d, 6),
            Status::BankApproved,
        ),
        (Op::Disburse(Who::Bank), plus_days(d, 7), Status::Disbursed),
    ];
    for (op, on, to) in path {
        assert_eq!(model.expect(&op, on), Expect::Move(to), "{op:?}");
        model.apply(&op, to, on);
    }
    assert_eq!(model.expect(&Op::Disburse(Who::Bank), d), Expect::Fail);
}

// =============================================================================================
// Statuses announced ahead of their day (R-CR-8 credit villages, R-ID-4 qualifications)

proptest! {
    // R-CR-8, R-ID-4: after any sequence of announcements, the status on every day is that of
    // the last announcement whose day is that day or earlier (an announcement without a day
    // covering every day), checked against a day-by-day oracle; and the stored entries read
    // back as the same timeline.
    #[test]
    fn a_timeline_is_the_last_announcement_covering_each_day(
        announcements in prop::collection::vec(
            (prop::option::weighted(0.85, 0u64..40), any::<bool>()),
            0..12,
        ),
    ) {
        let start = date("2026-01-01");
        let day = |n: u64| start.checked_add_days(chrono::Days::new(n)).unwrap();
        let mut timeline = Timeline::default();
        let mut oracle: Vec<Option<bool>> = vec![None; 50];
        for (from, status) in &announcements {
            timeline.announce(from.map(day), *status);
            for (n, slot) in oracle.iter_mut().enumerate() {
                if from.is_none_or(|f| f <= n as u64) {
                    *slot = Some(*status);
                }
            }
        }
        for (n, expected) in oracle.iter().enumerate() {
            prop_assert_eq!(timeline.on(day(n as u64)), *expected, "day {}", n);
        }
        prop_assert_eq!(
            Timeline::from_entries(timeline.entries().to_vec()),
            Some(timeline.clone())
        );
        // No two entries in a row say the same: announcing the status in force adds nothing.
        prop_assert!(timeline.entries().windows(2).all(|w| w[0].1 != w[1].1));
    }
}
