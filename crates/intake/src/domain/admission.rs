//! Admission (准入, R-IN-3), checked at submission and again at recommendation against the
//! read model of other services' facts. A refusal lists every rule that failed.

use chrono::NaiveDate;
use fupin_kernel::{AreaCode, AreaLevel, CreditGrade, Money, policy::IntakePolicy};

use super::{
    DomainError,
    error::Failure,
    form::{Applicant, ApplicationForm},
};

/// A household's latest rating as announced by the credit service (R-CR-3, R-CR-8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatingFact {
    /// None when the rating was revoked.
    pub grade: Option<CreditGrade>,
    pub veto: bool,
    pub credit_line: Money,
    pub effective_from: Option<NaiveDate>,
    /// Exclusive.
    pub expires_on: Option<NaiveDate>,
    /// The village the credit service rates the household in: a credit village raises the
    /// lines of its own households only (R-CR-8).
    pub village_code: String,
}

impl RatingFact {
    /// An effective grade of A or better and no veto (R-CR-3).
    pub fn is_credit_household_on(&self, today: NaiveDate) -> bool {
        let effective = self.effective_from.is_some_and(|f| f <= today)
            && self.expires_on.is_none_or(|e| today < e);
        effective && !self.veto && self.grade.is_some_and(CreditGrade::is_credit_grade)
    }
}

/// A status announced with the day it takes effect, possibly ahead of that day (R-CR-8
/// credit-village status, R-ID-4 qualification). Each announcement says "from this day (from
/// now on, when it names no day) the status is this" and replaces whatever was announced for
/// that day or later; what was announced for earlier days stands. So two changes announced
/// ahead of their days both apply, each from its own day, and the status before the first is
/// the one in force now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline<T>(Vec<(Option<NaiveDate>, T)>);

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Copy> Timeline<T> {
    /// A status in force whatever the day.
    pub fn always(status: T) -> Self {
        Self(vec![(None, status)])
    }

    /// The timeline of stored entries, which must be in strictly increasing order of their day
    /// (an entry without a day, at most one, first); None otherwise.
    pub fn from_entries(entries: Vec<(Option<NaiveDate>, T)>) -> Option<Self> {
        entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0)
            .then_some(Self(entries))
    }

    /// Applies an announcement: `status` from `from` on (from now on when `None`). One that
    /// announces the status already in force the day before adds no entry.
    pub fn announce(&mut self, from: Option<NaiveDate>, status: T)
    where
        T: PartialEq,
    {
        // `None` orders before every day, so an announcement for no day keeps nothing.
        self.0.retain(|(day, _)| *day < from);
        if self.0.last().is_none_or(|(_, last)| *last != status) {
            self.0.push((from, status));
        }
    }

    /// The status in force on `day`; None when nothing announced applies yet.
    pub fn on(&self, day: NaiveDate) -> Option<T> {
        self.0
            .iter()
            .rev()
            .find(|(from, _)| from.is_none_or(|f| f <= day))
            .map(|(_, status)| *status)
    }

    pub fn entries(&self) -> &[(Option<NaiveDate>, T)] {
        &self.0
    }
}

/// What intake knows about an applicant from other services' events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionFacts {
    /// The newest rating the credit service announced, possibly ahead of its day.
    pub rating: Option<RatingFact>,
    /// The ratings in force before the newest one's day, in increasing order of their day
    /// (a renewal announced before the rating in force expires, R-CR-4, R-CR-5).
    pub earlier_ratings: Vec<RatingFact>,
    /// The village's credit-village status (R-CR-6) as announced, gained or lost, by day: it
    /// changes lines only from its day (R-CR-8). No status counts as not a credit village.
    pub credit_village: Timeline<bool>,
    pub blacklisted: bool,
    /// Which of the applicant's areas have lending suspended (R-RK-9): at least those of the
    /// village and town it is filed in and, for a household, of every rating held (newest and
    /// earlier). Admission counts those filed in and those of the rating in force.
    pub suspended_areas: Vec<AreaCode>,
    /// Industry's qualification of an enterprise/cooperative (R-ID-4) as announced, by day;
    /// empty when never assessed.
    pub enterprise_qualified: Timeline<bool>,
    /// The town or village the industry service registered the enterprise in (R-ID-1); None
    /// when it has not said.
    pub enterprise_area: Option<AreaCode>,
}

impl AdmissionFacts {
    /// The rating in force on `today`: the newest once its day has come, until then the latest
    /// earlier one whose day has, and otherwise the newest (not yet effective, R-CR-3).
    pub fn rating_on(&self, today: NaiveDate) -> Option<&RatingFact> {
        let newest = self.rating.as_ref()?;
        if newest.effective_from.is_none_or(|day| day <= today) {
            return Some(newest);
        }
        self.earlier_ratings
            .iter()
            .rev()
            .find(|r| r.effective_from.is_some_and(|day| day <= today))
            .or(Some(newest))
    }

    /// Whether the applicant's village is a credit village on `today`.
    pub fn credit_village_on(&self, today: NaiveDate) -> bool {
        self.credit_village.on(today).unwrap_or(false)
    }

    /// Whether the enterprise is qualified on `today` (R-ID-4 "currently qualified").
    pub fn enterprise_qualified_on(&self, today: NaiveDate) -> bool {
        self.enterprise_qualified.on(today) == Some(true)
    }
}

/// A household's credit as admission judged it on a day (R-CR-3, R-CR-8): recorded with the
/// bank's approval and announced with the loan, since whether it is a poor credit household's
/// decides its "两免一贴" (R-RK-10), whatever the credit service announces after.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreditStanding {
    /// The grade in force ("AAA", "AA", "A").
    pub grade: String,
    /// The effective line: the grade's, raised for a credit village, within the cap.
    pub credit_line: Money,
    /// Whether the household's own village was a credit village that day (R-CR-6, R-CR-8).
    pub credit_village: bool,
}

/// The standing of a household that is a credit household on `today` under `facts`; None for
/// an enterprise or cooperative, and for a household that is not one.
pub fn standing(
    form: &ApplicationForm,
    facts: &AdmissionFacts,
    policy: &IntakePolicy,
    today: NaiveDate,
) -> Option<CreditStanding> {
    let Applicant::Household(h) = &form.applicant else {
        return None;
    };
    let rating = facts
        .rating_on(today)
        .filter(|r| r.is_credit_household_on(today))?;
    let credit_village = raised_by_credit_village(rating, h, facts, today);
    Some(CreditStanding {
        grade: rating.grade?.as_str().to_owned(),
        credit_line: effective_line(rating, credit_village, policy),
        credit_village,
    })
}

/// Whether a credit village raises the household's line on `today` (R-CR-8): the village it
/// is rated in is the one it applies from, and a credit village that day.
fn raised_by_credit_village(
    rating: &RatingFact,
    household: &super::form::HouseholdApplicant,
    facts: &AdmissionFacts,
    today: NaiveDate,
) -> bool {
    rating.village_code == household.village.as_str() && facts.credit_village_on(today)
}

/// The household's effective credit line: the grade's line, raised for a credit village, and
/// never above the national cap (R-CR-8).
pub fn effective_line(
    rating: &RatingFact,
    in_credit_village: bool,
    policy: &IntakePolicy,
) -> Money {
    let line = if in_credit_village {
        rating
            .credit_line
            .uplift_pct(policy.credit_village_line_uplift_pct)
    } else {
        rating.credit_line
    };
    line.min(policy.max_amount)
}

pub fn check(
    form: &ApplicationForm,
    facts: &AdmissionFacts,
    policy: &IntakePolicy,
    today: NaiveDate,
) -> Result<(), DomainError> {
    let mut failures = Vec::new();
    match &form.applicant {
        Applicant::Household(h) => {
            if h.poor_household_number.trim().is_empty() {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("household.poor_household_number"),
                    "not a registered poor household (建档立卡)",
                ));
            }
            match facts.rating_on(today) {
                Some(r) if r.is_credit_household_on(today) => {
                    let line =
                        effective_line(r, raised_by_credit_village(r, h, facts, today), policy);
                    if r.credit_line.is_zero() {
                        // The credit service owns the lines; a credit grade announced without
                        // one grants nothing, and saying "a line of 0" would read as a rule.
                        failures.push(Failure::new(
                            "R-CR-8",
                            Some("amount"),
                            format!(
                                "the credit service announced no credit line with grade {}",
                                r.grade.map_or("", CreditGrade::as_str)
                            ),
                        ));
                    } else if form.amount > line {
                        failures.push(Failure::new(
                            "R-CR-8",
                            Some("amount"),
                            format!("{} exceeds the credit line of {line} yuan", form.amount),
                        ));
                    }
                }
                Some(_) => failures.push(Failure::new(
                    "R-CR-3",
                    None,
                    "no effective credit grade of A or better without veto",
                )),
                None => failures.push(Failure::new(
                    "R-CR-3",
                    None,
                    "household has no credit rating",
                )),
            }
            let age = h.resident_id.age_on(today);
            if age < policy.min_age || age > policy.max_age {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("household.resident_id"),
                    format!(
                        "borrower is {age}, must be {} to {}",
                        policy.min_age, policy.max_age
                    ),
                ));
            }
            if !h.self_use {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("household.household_borrows_uses_repays"),
                    "the household must borrow, use and repay the loan itself (户借户用户还)",
                ));
            }
            if form.amount > policy.max_amount {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("amount"),
                    format!("at most {} yuan", policy.max_amount),
                ));
            }
            if form.term_months > policy.max_term_months {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("term_months"),
                    format!("at most {} months", policy.max_term_months),
                ));
            }
        }
        Applicant::Enterprise(e) => {
            // Held to the area it is registered in, where R-RK-9 suspends its lending: filed
            // under another town (or its town, when registered in a village) it would escape
            // its own circuit breaker. A village of the town it is registered in adds that
            // village's breaker to the town's, and is accepted.
            if let Some(registered) = &facts.enterprise_area
                && !registered.contains(&e.area)
            {
                failures.push(Failure::new(
                    "R-ID-1",
                    Some("enterprise.area_code"),
                    format!(
                        "the industry service registers this enterprise in {}, not {}: file it \
                         there (a resubmission cannot move it)",
                        registered.as_str(),
                        e.area.as_str()
                    ),
                ));
            }
            // Repeated from the form's checks for the re-checks of a stored application (at
            // recommendation and at the bank's approval) under the policy then in force.
            if form.term_months > policy.enterprise_max_term_months {
                failures.push(Failure::new(
                    "R-IN-3",
                    Some("term_months"),
                    format!(
                        "at most {} months for an enterprise or cooperative",
                        policy.enterprise_max_term_months
                    ),
                ));
            }
            if !facts.enterprise_qualified_on(today) {
                failures.push(Failure::new(
                    "R-ID-4",
                    None,
                    "not currently qualified for programme credit by the industry service",
                ));
            }
        }
    }
    if facts.blacklisted {
        failures.push(Failure::new(
            "R-CR-10",
            None,
            "applicant is on the blacklist (失信黑名单)",
        ));
    }
    if !form.purpose.is_production() {
        failures.push(Failure::new(
            "R-IN-3",
            Some("purpose"),
            "loan purpose must be an industry/production project (以产业发展实现脱贫)",
        ));
    }
    // R-RK-9: lending is suspended where the application is filed and, for a household, where
    // the rating in force places it (filed elsewhere it must not escape its own village's
    // suspension; a renewal naming another village counts only from its day).
    let filed_in = match &form.applicant {
        Applicant::Household(h) => &h.village,
        Applicant::Enterprise(e) => &e.area,
    };
    let rated_in = match &form.applicant {
        Applicant::Household(_) => facts
            .rating_on(today)
            .filter(|r| r.effective_from.is_none_or(|day| day <= today))
            .map(|r| r.village_code.as_str()),
        Applicant::Enterprise(_) => None,
    };
    let concerned = |area: &AreaCode| {
        area.level() >= AreaLevel::Town
            && (area.contains(filed_in) || rated_in.is_some_and(|v| v.starts_with(area.as_str())))
    };
    for area in facts.suspended_areas.iter().filter(|a| concerned(a)) {
        failures.push(Failure::new(
            "R-RK-9",
            None,
            format!(
                "lending suspended in {} (NPL circuit breaker)",
                area.as_str()
            ),
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Refused(failures))
    }
}
