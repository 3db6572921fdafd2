//! Shared test data for the domain tests.
//!
//! The policy, the working-day calendar and the area registry are the files the service ships
//! (`deploy/...`), loaded once, so the tests prove the rules against the real data.

use std::sync::LazyLock;

use chrono::{Days, NaiveDate};
use fupin_kernel::{
    AreaCode, AreaRegistry, CreditGrade, Money, PolicyHistory, ResidentId, Uscc,
    WorkingDayCalendar, policy::IntakePolicy,
};

use crate::domain::{
    Actor, ActorRole, ApplicantKind, Decision, DomainError, Status,
    admission::{AdmissionFacts, RatingFact, Timeline},
    application::{Application, Moved},
    error::Failure,
    form::{Applicant, ApplicationForm, EnterpriseApplicant, HouseholdApplicant},
    types::Purpose,
};

pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

/// The district of the shipped registry (洛龙区).
pub const DISTRICT: &str = "410311";
/// 安乐镇 and two of its villages.
pub const TOWN: &str = "410311100";
pub const VILLAGE: &str = "410311100201";
pub const NEIGHBOUR_VILLAGE: &str = "410311100202";
/// 白马寺镇 and one of its villages.
pub const OTHER_TOWN: &str = "410311101";
pub const OTHER_TOWN_VILLAGE: &str = "410311101201";
/// The shipped partner bank and another one.
pub const BANK: &str = "abc-luolong-xinqu";
pub const OTHER_BANK: &str = "icbc-luolong";

static POLICY: LazyLock<IntakePolicy> = LazyLock::new(|| {
    let history = PolicyHistory::<IntakePolicy>::load(format!("{DEPLOY}/policy/intake.toml"))
        .expect("shipped intake policy loads");
    history
        .in_force(date("2025-06-01"))
        .expect("a policy version is in force in 2025")
        .value
        .clone()
});

static CALENDAR: LazyLock<WorkingDayCalendar> = LazyLock::new(|| {
    WorkingDayCalendar::load_dir(format!("{DEPLOY}/calendar")).expect("shipped calendar loads")
});

static CALENDAR_WITH_2027: LazyLock<WorkingDayCalendar> = LazyLock::new(|| {
    let shipped: Vec<String> = (2024..=2026)
        .map(|year| {
            std::fs::read_to_string(format!("{DEPLOY}/calendar/{year}.toml"))
                .expect("shipped calendar year reads")
        })
        .collect();
    let stand_in = "year = 2027\nsource = \"test stand-in for the State Council notice\"\n\
                    holidays = [\"2027-01-01\"]\nadjusted_working_days = []\n";
    let mut texts: Vec<&str> = shipped.iter().map(String::as_str).collect();
    texts.push(stand_in);
    WorkingDayCalendar::from_year_strs(&texts).expect("the calendar with a 2027 stand-in loads")
});

static AREAS: LazyLock<AreaRegistry> = LazyLock::new(|| {
    AreaRegistry::load(format!("{DEPLOY}/areas/{DISTRICT}.toml")).expect("shipped areas load")
});

pub fn policy() -> &'static IntakePolicy {
    &POLICY
}

pub fn calendar() -> &'static WorkingDayCalendar {
    &CALENDAR
}

/// The shipped calendar (2024 to 2026) with a stand-in for 2027, as an operator's added file
/// would be read at the next start: only 1 January off, no worked weekend day.
pub fn calendar_with_2027() -> &'static WorkingDayCalendar {
    &CALENDAR_WITH_2027
}

pub fn areas() -> &'static AreaRegistry {
    &AREAS
}

// ---------------------------------------------------------------------------------------------
// Values

/// `"2025-09-26"` -> a date; panics on a typo.
pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {s}: {e}"))
}

pub fn plus_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).expect("date in range")
}

pub fn minus_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).expect("date in range")
}

pub fn money(s: &str) -> Money {
    Money::parse(s).unwrap_or_else(|e| panic!("bad money {s}: {e}"))
}

pub fn area(code: &str) -> AreaCode {
    AreaCode::parse(code).unwrap_or_else(|e| panic!("bad area {code}: {e}"))
}

/// A valid resident ID of someone born on `born`, registered in district 410311.
pub fn resident_id_born(born: NaiveDate) -> ResidentId {
    let body = format!("{DISTRICT}{}123", born.format("%Y%m%d"));
    let check = ResidentId::check_char_for(&body).expect("17-digit body");
    let id = ResidentId::parse(&format!("{body}{check}")).expect("valid resident ID");
    assert_eq!(id.birth_date(), born);
    id
}

/// A valid unified social credit code registered in 410311.
pub fn uscc() -> Uscc {
    let body = "91410311MA47RN5T0";
    let check = Uscc::check_char_for(body).expect("17-character body");
    Uscc::parse(&format!("{body}{check}")).expect("valid USCC")
}

/// The same month and day `years` earlier: the birth date of someone whose `years`-th birthday
/// is `on`.
pub fn born_years_before(on: NaiveDate, years: u32) -> NaiveDate {
    on.checked_sub_months(chrono::Months::new(12 * years))
        .expect("date in range")
}

// ---------------------------------------------------------------------------------------------
// Actors

fn actor(role: ActorRole, code: &str, bank_id: Option<&str>) -> Actor {
    Actor {
        subject: format!("{}@{code}", role.as_str()),
        role,
        area: area(code),
        bank_id: bank_id.map(str::to_owned),
    }
}

pub fn village_staff(code: &str) -> Actor {
    actor(ActorRole::VillageStaff, code, None)
}

pub fn town_staff(code: &str) -> Actor {
    actor(ActorRole::TownStaff, code, None)
}

pub fn district_staff() -> Actor {
    actor(ActorRole::DistrictStaff, DISTRICT, None)
}

pub fn bank(bank_id: &str) -> Actor {
    actor(ActorRole::Bank, DISTRICT, Some(bank_id))
}

pub fn operator() -> Actor {
    actor(ActorRole::Operator, DISTRICT, None)
}

// ---------------------------------------------------------------------------------------------
// Forms and admission facts

/// A registered poor household head, aged 40 in 2025, in `village`.
pub fn household_applicant(village: &str) -> HouseholdApplicant {
    HouseholdApplicant {
        resident_id: resident_id_born(date("1985-04-12")),
        name: "张建国".to_owned(),
        phone: "13803790001".to_owned(),
        village: area(village),
        poor_household_number: "410311100201-0007".to_owned(),
        self_use: true,
    }
}

/// A household form that passes validation and admission: 20,000 yuan (the A line) for
/// 24 months of planting, in a real village of the shipped registry.
pub fn household_form() -> ApplicationForm {
    ApplicationForm {
        applicant: Applicant::Household(household_applicant(VILLAGE)),
        amount: money("20000.00"),
        term_months: 24,
        purpose: Purpose::Planting,
        description: "花椒种植 5 亩".to_owned(),
    }
}

pub fn household_form_born(born: NaiveDate) -> ApplicationForm {
    let mut form = household_form();
    household_mut(&mut form).resident_id = resident_id_born(born);
    form
}

pub fn household_mut(form: &mut ApplicationForm) -> &mut HouseholdApplicant {
    match &mut form.applicant {
        Applicant::Household(h) => h,
        Applicant::Enterprise(_) => panic!("not a household form"),
    }
}

pub fn enterprise_mut(form: &mut ApplicationForm) -> &mut EnterpriseApplicant {
    match &mut form.applicant {
        Applicant::Enterprise(e) => e,
        Applicant::Household(_) => panic!("not an enterprise form"),
    }
}

/// A cooperative in `area` asking 300,000 yuan for 36 months.
pub fn enterprise_form(area_code: &str) -> ApplicationForm {
    ApplicationForm {
        applicant: Applicant::Enterprise(EnterpriseApplicant {
            uscc: uscc(),
            name: "洛龙区军屯花椒种植专业合作社".to_owned(),
            area: area(area_code),
            kind: ApplicantKind::Cooperative,
            legal_representative: "李卫东".to_owned(),
        }),
        amount: money("300000.00"),
        term_months: 36,
        purpose: Purpose::Processing,
        description: "花椒烘干线".to_owned(),
    }
}

/// The line the credit-rating service grants `grade` by default (R-CR-8): AAA 50,000, AA 30,000,
/// A 20,000, none below A.
pub fn grade_line(grade: CreditGrade) -> Money {
    let yuan = match grade {
        CreditGrade::Aaa => 50_000,
        CreditGrade::Aa => 30_000,
        CreditGrade::A => 20_000,
        CreditGrade::B | CreditGrade::C => 0,
    };
    Money::from_fen(yuan * 100).expect("a line")
}

/// An effective rating on `today` with the default line of `grade`.
pub fn rating(grade: CreditGrade, today: NaiveDate) -> RatingFact {
    RatingFact {
        grade: Some(grade),
        veto: false,
        credit_line: grade_line(grade),
        village_code: VILLAGE.to_owned(),
        effective_from: Some(minus_days(today, 30)),
        expires_on: Some(plus_days(today, 300)),
    }
}

/// Facts under which [`household_form`] is admitted on `today`.
pub fn household_facts(today: NaiveDate) -> AdmissionFacts {
    AdmissionFacts {
        rating: Some(rating(CreditGrade::A, today)),
        earlier_ratings: Vec::new(),
        credit_village: Timeline::default(),
        blacklisted: false,
        suspended_areas: Vec::new(),
        enterprise_qualified: Timeline::default(),
        enterprise_area: None,
    }
}

pub fn enterprise_facts() -> AdmissionFacts {
    AdmissionFacts {
        enterprise_qualified: Timeline::always(true),
        ..AdmissionFacts::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The rule IDs of a refusal, in order; panics on anything else.
pub fn refused_rules(result: Result<(), DomainError>) -> Vec<&'static str> {
    match result {
        Err(DomainError::Refused(failures)) => failures.iter().map(|f| f.rule).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn refusal_failures<T: std::fmt::Debug>(result: Result<T, DomainError>) -> Vec<Failure> {
    match result {
        Err(DomainError::Refused(failures)) => failures,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asserts a refusal naming exactly `rule` (once).
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, DomainError>, rule: &str) {
    let failures = refusal_failures(result);
    let rules: Vec<_> = failures.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![rule], "failures: {failures:?}");
}

/// Asserts an `Invalid` error on `field` citing `rule`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, DomainError>, field: &str, rule: &str) {
    match result {
        Err(DomainError::Invalid {
            field: f, rule: r, ..
        }) => assert_eq!((f, r), (field, rule), "wrong field/rule"),
        other => panic!("expected Invalid {field} [{rule}], got {other:?}"),
    }
}

#[track_caller]
pub fn assert_denied<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(
            result,
            Err(DomainError::PermissionDenied(_) | DomainError::DeniedInState(_))
        ),
        "expected a denial, got {result:?}"
    );
}

#[track_caller]
pub fn assert_not_visible<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(result, Err(DomainError::NotVisible)),
        "expected NotVisible, got {result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Applications in a given state

/// A household application in [`VILLAGE`] filed by its village department on `on`.
pub fn filed_household(on: NaiveDate) -> Application {
    let (app, _) = Application::file(
        &village_staff(VILLAGE),
        ApplicantKind::Household,
        area(VILLAGE),
        money("20000.00"),
        24,
        on,
        policy(),
        calendar(),
    )
    .expect("filing by the village department");
    app
}

/// Approves the current staff step by the right tier on `on`.
pub fn approve(app: &mut Application, on: NaiveDate) -> Moved {
    let actor = match app.status {
        Status::VillageReview => village_staff(VILLAGE),
        Status::TownReview => town_staff(TOWN),
        Status::DistrictReview => district_staff(),
        other => panic!("no staff step in {other:?}"),
    };
    app.review(&actor, Decision::Approve, "", on, policy(), calendar())
        .expect("approval by the right tier")
}

/// A household application in `status`, every step taken on `on`; `PublicNotice` means the
/// district approved on `on`.
pub fn household_in(status: Status, on: NaiveDate) -> Application {
    let mut app = filed_household(on);
    let path = [
        Status::VillageReview,
        Status::TownReview,
        Status::DistrictReview,
        Status::PublicNotice,
    ];
    assert!(
        path.contains(&status),
        "household_in({status:?}) unsupported"
    );
    while app.status != status {
        approve(&mut app, on);
    }
    app
}

/// A household application the district approved on `approved_on` and recommended to
/// [`BANK`] after the notice, on `approved_on + notice days`.
pub fn recommended_household(approved_on: NaiveDate) -> (Application, NaiveDate) {
    let mut app = household_in(Status::PublicNotice, approved_on);
    let on = plus_days(approved_on, u64::from(policy().public_notice_calendar_days));
    app.recommend(&district_staff(), BANK, on, policy(), calendar())
        .expect("recommendation after the notice");
    (app, on)
}

/// The day forms are judged on (a Monday with no holiday near).
pub fn judged_on() -> NaiveDate {
    date("2025-06-16")
}
