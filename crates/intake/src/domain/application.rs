//! The application aggregate and its workflow (R-IN-2, R-IN-4, R-IN-5, R-IN-6).
//!
//! village review -> town review -> district review -> public notice -> recommended to a bank
//! (bank investigates) -> bank approved / rejected -> disbursed. Each staff step may approve,
//! reject (with a reason) or return for correction; a returned application is resubmitted to
//! the step that returned it. Every method checks who may act, changes the aggregate and
//! returns the [`Moved`] record that the history keeps.

use chrono::{Days, NaiveDate};
use fupin_kernel::{AreaCode, AreaLevel, Money, WorkingDayCalendar, policy::IntakePolicy};
use serde::{Deserialize, Serialize};

use super::{Actor, ActorRole, ApplicantKind, Decision, DomainError, Status, Step, error::Failure};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub kind: ApplicantKind,
    /// The applicant's most specific area (village for households).
    pub area: AreaCode,
    pub amount: Money,
    pub term_months: u32,
    pub status: Status,
    pub returned_from: Option<Step>,
    /// Increments every time a step is entered, so an overdue alert is raised once per step.
    pub step_seq: i32,
    pub step_started_on: Option<NaiveDate>,
    pub step_due_on: Option<NaiveDate>,
    /// The version of the calendar data that counted the step's deadline (R-X-4).
    pub step_calendar: Option<String>,
    pub overdue_alerted_seq: Option<i32>,
    /// Last day (inclusive) of the public notice.
    pub notice_ends_on: Option<NaiveDate>,
    pub bank_id: Option<String>,
    pub recommended_on: Option<NaiveDate>,
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub from: Option<Status>,
    pub to: Status,
    pub action: &'static str,
    pub reason: String,
    /// What a resubmission corrected (R-IN-2 退回补正); empty for every other move.
    pub corrections: Vec<Correction>,
}

/// One value a resubmission corrected (R-IN-2 退回补正), kept with its transition and
/// announced with it. Personal data (R-CR-11) is kept as corrected, without its values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The request's field, e.g. `amount` or `household.phone`.
    pub field: String,
    /// The values before and after, as on the wire; none for personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Correction {
    /// `field` corrected from `from` to `to`; none when they are the same.
    pub fn of(field: &str, from: impl ToString, to: impl ToString) -> Option<Self> {
        let (from, to) = (from.to_string(), to.to_string());
        (from != to).then(|| Self {
            field: field.to_owned(),
            from: Some(from),
            to: Some(to),
        })
    }

    /// Personal data `field` corrected (its values are not kept); none when unchanged.
    pub fn personal<T: PartialEq + ?Sized>(field: &str, from: &T, to: &T) -> Option<Self> {
        (from != to).then(|| Self {
            field: field.to_owned(),
            from: None,
            to: None,
        })
    }

    /// Whether the values were withheld (personal data).
    pub fn is_personal(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

fn deny(msg: impl Into<String>) -> DomainError {
    DomainError::PermissionDenied(msg.into())
}

fn state_refusal(rule: &'static str, msg: impl Into<String>) -> DomainError {
    DomainError::Refused(vec![Failure::new(rule, None, msg)])
}

/// The deadline of `step` started on `started` under `policy`, and the version of the
/// calendar data that counted it (R-IN-4, R-X-4); none while the calendar does not reach it.
pub fn step_deadline(
    step: Step,
    started: NaiveDate,
    policy: &IntakePolicy,
    calendar: &WorkingDayCalendar,
) -> Option<(NaiveDate, String)> {
    calendar.deadline(started, step_days(step, policy))
}

/// Working days allowed for a step (R-IN-4).
pub fn step_days(step: Step, policy: &IntakePolicy) -> u32 {
    match step {
        Step::Village => policy.village_review_days,
        Step::Town => policy.town_review_days,
        Step::District => policy.district_review_days,
        Step::Bank => policy.bank_decision_days,
    }
}

/// Who may file (and resubmit) an application for an applicant in `area` (R-IN-1): the
/// village department of a household's village; for an enterprise or cooperative, the village
/// department of its village or the district center. Returns the first step.
pub fn filing_step(
    actor: &Actor,
    kind: ApplicantKind,
    area: &AreaCode,
) -> Result<Step, DomainError> {
    match (kind, actor.role) {
        (ApplicantKind::Household, ActorRole::VillageStaff) if actor.area == *area => {
            Ok(Step::Village)
        }
        (ApplicantKind::Household, _) => Err(deny(
            "household applications are recorded by the village service department of the household's village [R-IN-1]",
        )),
        (_, ActorRole::VillageStaff)
            if area.level() == AreaLevel::Village && actor.area == *area =>
        {
            Ok(Step::Village)
        }
        (_, ActorRole::DistrictStaff) if actor.area.contains(area) => Ok(Step::District),
        _ => Err(deny(
            "enterprise applications are filed by the village department of its village or at the district center [R-IN-1]",
        )),
    }
}

impl Application {
    /// A new application, entering its first step on `today` (R-IN-1, R-IN-4).
    #[allow(clippy::too_many_arguments)]
    pub fn file(
        actor: &Actor,
        kind: ApplicantKind,
        area: AreaCode,
        amount: Money,
        term_months: u32,
        today: NaiveDate,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) -> Result<(Self, Moved), DomainError> {
        let step = filing_step(actor, kind, &area)?;
        let mut app = Self {
            kind,
            area,
            amount,
            term_months,
            status: step.review_status(),
            returned_from: None,
            step_seq: 0,
            step_started_on: None,
            step_due_on: None,
            step_calendar: None,
            overdue_alerted_seq: None,
            notice_ends_on: None,
            bank_id: None,
            recommended_on: None,
        };
        app.enter_step(step, today, policy, calendar);
        let moved = Moved {
            from: None,
            to: app.status,
            action: "submit",
            reason: String::new(),
            corrections: Vec::new(),
        };
        Ok((app, moved))
    }

    /// Staff see applications inside their area; a bank sees only those recommended to it.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        match actor.role {
            ActorRole::VillageStaff | ActorRole::TownStaff | ActorRole::DistrictStaff => {
                actor.area.contains(&self.area)
            }
            ActorRole::Bank => self.bank_id.is_some() && self.bank_id == actor.bank_id,
            ActorRole::Operator => false,
        }
    }

    /// The step a returned application goes back to, and whose tier may reject it.
    fn returned_step(&self) -> Step {
        self.returned_from.unwrap_or(Step::Village)
    }

    pub fn current_step(&self) -> Option<Step> {
        self.status.step()
    }

    /// Past its step's deadline (R-IN-4): the day after the due date.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.current_step().is_some() && self.step_due_on.is_some_and(|due| today > due)
    }

    /// Overdue and not yet alerted for this step entry.
    pub fn needs_overdue_alert(&self, today: NaiveDate) -> bool {
        self.is_overdue(today) && self.overdue_alerted_seq != Some(self.step_seq)
    }

    pub fn mark_overdue_alerted(&mut self) {
        self.overdue_alerted_seq = Some(self.step_seq);
    }

    /// Enters `step` on `today`, its deadline counted if the calendar reaches it and left
    /// pending otherwise (R-IN-4): the step is taken either way, since a deadline is never
    /// guessed and a year's calendar deployed late must not stop the programme.
    fn enter_step(
        &mut self,
        step: Step,
        today: NaiveDate,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) {
        self.status = step.review_status();
        self.step_seq += 1;
        self.step_started_on = Some(today);
        self.step_due_on = None;
        self.step_calendar = None;
        self.count_step_deadline(policy, calendar);
    }

    /// Whether the current step's deadline is still to be counted: entered while the
    /// calendar did not reach it (R-IN-4).
    pub fn step_deadline_pending(&self) -> bool {
        self.current_step().is_some() && self.step_due_on.is_none()
    }

    /// Counts the current step's deadline, its working days under `policy` (the policy it
    /// was entered under) from the day it started, if it is pending and the calendar now
    /// reaches it (R-IN-4, SPEC section 0). Says whether it counted it now.
    pub fn count_step_deadline(
        &mut self,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) -> bool {
        let (Some(step), Some(started), None) =
            (self.current_step(), self.step_started_on, self.step_due_on)
        else {
            return false;
        };
        let Some((due, version)) = step_deadline(step, started, policy, calendar) else {
            return false;
        };
        self.step_due_on = Some(due);
        self.step_calendar = Some(version);
        true
    }

    fn leave_steps(&mut self) {
        self.step_started_on = None;
        self.step_due_on = None;
        self.step_calendar = None;
    }

    /// A step the district center takes, on an application it can see; `denied` says so.
    fn require_district(&self, actor: &Actor, denied: &str) -> Result<(), DomainError> {
        self.require_visible(actor)?;
        if actor.role != ActorRole::DistrictStaff {
            return Err(deny(denied));
        }
        Ok(())
    }

    fn require_visible(&self, actor: &Actor) -> Result<(), DomainError> {
        if self.visible_to(actor) {
            Ok(())
        } else {
            Err(DomainError::NotVisible)
        }
    }

    /// Who before what: a bank (which sees the application once recommended to it) never
    /// reviews, whatever the state, and is denied without keeping anything (R-IN-2).
    pub fn check_reviewer(&self, actor: &Actor) -> Result<(), DomainError> {
        self.require_visible(actor)?;
        if !actor.is_staff() {
            return Err(deny(
                "reviews are taken by village, town or district service staff [R-IN-2]",
            ));
        }
        Ok(())
    }

    /// Approve / reject / return at the village, town or district step (R-IN-2); once the
    /// public notice has ended, the district center's reject or return instead of a
    /// recommendation (its approval there is `recommend`); and the rejection of a returned
    /// application by the tier that returned it.
    pub fn review(
        &mut self,
        actor: &Actor,
        decision: Decision,
        reason: &str,
        today: NaiveDate,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) -> Result<Moved, DomainError> {
        self.check_reviewer(actor)?;
        let step = match self.status {
            Status::VillageReview => Step::Village,
            Status::TownReview => Step::Town,
            Status::DistrictReview => Step::District,
            // Once the notice has ended the district center may reject or return it instead of
            // recommending it; its approval there is the recommendation, and it is told so.
            // Anything else in the notice (during it, other tiers) is refused below as before:
            // nothing awaits a review.
            Status::PublicNotice
                if actor.role == ActorRole::DistrictStaff
                    && self.notice_ends_on.is_some_and(|end| today > end) =>
            {
                if decision == Decision::Approve {
                    return Err(state_refusal(
                        "R-IN-2",
                        "application is public_notice and its notice has ended: approve it by \
                         recommending it to a bank (RecommendToBank), or reject or return it",
                    ));
                }
                return self.reject_or_return(decision, reason, Step::District);
            }
            // Awaiting correction: the tier that returned it may reject it instead, with a
            // reason (below, as at its step). Without this an application that no correction
            // can make admissible again (the borrower turned 66, a blacklisting) would stay
            // returned for good.
            Status::Returned => {
                let step = self.returned_step();
                if decision != Decision::Reject {
                    return Err(state_refusal(
                        "R-IN-2",
                        format!(
                            "application is returned for correction: it can be resubmitted, \
                             or rejected with a reason by {}, which returned it",
                            ActorRole::for_step(step).as_str()
                        ),
                    ));
                }
                step
            }
            other => {
                return Err(state_refusal(
                    "R-IN-2",
                    format!(
                        "application is {}, not awaiting a staff review",
                        other.as_str()
                    ),
                ));
            }
        };
        if actor.role != ActorRole::for_step(step) {
            return Err(DomainError::DeniedInState(format!(
                "the {} step is taken by {} [R-IN-2]",
                step.as_str(),
                ActorRole::for_step(step).as_str()
            )));
        }
        if decision != Decision::Approve {
            return self.reject_or_return(decision, reason, step);
        }
        let from = self.status;
        match step {
            Step::Village => self.enter_step(Step::Town, today, policy, calendar),
            Step::Town => self.enter_step(Step::District, today, policy, calendar),
            Step::District => {
                self.status = Status::PublicNotice;
                self.leave_steps();
                let days = policy.public_notice_calendar_days.max(1);
                self.notice_ends_on = today.checked_add_days(Days::new(u64::from(days - 1)));
            }
            Step::Bank => unreachable!("bank is not a staff review step"),
        }
        Ok(Moved {
            from: Some(from),
            to: self.status,
            action: "approve",
            reason: reason.trim().to_owned(),
            corrections: Vec::new(),
        })
    }

    /// Rejection (final) or return for correction to `step` (退回补正), with a reason (R-IN-2):
    /// at a staff step, or by the district center once the public notice has ended instead of
    /// a recommendation (without which an application whose admission no longer holds when
    /// the notice ends, the borrower turned 66, a blacklisting, a lower line, could never leave
    /// the notice). A return also ends any notice: the next district approval opens a new one.
    fn reject_or_return(
        &mut self,
        decision: Decision,
        reason: &str,
        step: Step,
    ) -> Result<Moved, DomainError> {
        decision.check_reason(reason)?;
        let reason = reason.trim();
        let from = self.status;
        self.leave_steps();
        let action = if decision == Decision::Reject {
            self.status = Status::Rejected;
            self.returned_from = None;
            "reject"
        } else {
            self.status = Status::Returned;
            self.returned_from = Some(step);
            self.notice_ends_on = None;
            "return"
        };
        Ok(Moved {
            from: Some(from),
            to: self.status,
            action,
            reason: reason.to_owned(),
            corrections: Vec::new(),
        })
    }

    /// Resubmission after correction (退回补正): back to the step that returned it.
    pub fn resubmit(
        &mut self,
        actor: &Actor,
        today: NaiveDate,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) -> Result<Moved, DomainError> {
        self.require_visible(actor)?;
        // Who before what: a tier that never resubmits is denied whatever the state (and
        // nothing is kept), rather than told the state, which a retry would repeat once false.
        filing_step(actor, self.kind, &self.area)?;
        if self.status != Status::Returned {
            return Err(state_refusal(
                "R-IN-2",
                format!("application is {}, not returned", self.status.as_str()),
            ));
        }
        let step = self.returned_step();
        self.enter_step(step, today, policy, calendar);
        self.returned_from = None;
        Ok(Moved {
            from: Some(Status::Returned),
            to: self.status,
            action: "resubmit",
            reason: String::new(),
            corrections: Vec::new(),
        })
    }

    /// Staff who run the notice (district center) and the applicant's own tiers may record an
    /// objection; it holds the application until resolved (R-IN-5).
    pub fn file_objection(
        &mut self,
        actor: &Actor,
        today: NaiveDate,
    ) -> Result<Option<Moved>, DomainError> {
        self.check_objector(actor)?;
        match self.status {
            Status::PublicNotice if self.notice_ends_on.is_some_and(|end| today <= end) => {
                self.status = Status::OnHold;
                Ok(Some(Moved {
                    from: Some(Status::PublicNotice),
                    to: Status::OnHold,
                    action: "objection",
                    reason: String::new(),
                    corrections: Vec::new(),
                }))
            }
            // Further objections while already held add to the hold.
            Status::OnHold if self.notice_ends_on.is_some_and(|end| today <= end) => Ok(None),
            Status::PublicNotice | Status::OnHold => Err(state_refusal(
                "R-IN-5",
                "the public notice period has ended",
            )),
            other => Err(state_refusal(
                "R-IN-5",
                format!("application is {}, not under public notice", other.as_str()),
            )),
        }
    }

    /// Whether `actor` may record an objection to this application (R-IN-5): service staff who
    /// can see it. Checked before what the objection says (README "Who before what").
    pub fn check_objector(&self, actor: &Actor) -> Result<(), DomainError> {
        self.require_visible(actor)?;
        if !actor.is_staff() {
            return Err(deny("objections are recorded by service staff [R-IN-5]"));
        }
        Ok(())
    }

    /// Whether `actor` may resolve this application's objections (R-IN-5): the district
    /// center, and only for an application it can see.
    pub fn check_resolver(&self, actor: &Actor) -> Result<(), DomainError> {
        self.require_district(
            actor,
            "objections are resolved by the district center [R-IN-5]",
        )
    }

    /// Resolves one objection; `other_open` is how many other objections remain open.
    pub fn resolve_objection(
        &mut self,
        actor: &Actor,
        upheld: bool,
        other_open: usize,
    ) -> Result<Option<Moved>, DomainError> {
        self.check_resolver(actor)?;
        if self.status != Status::OnHold {
            return Err(state_refusal(
                "R-IN-5",
                format!("application is {}, not on hold", self.status.as_str()),
            ));
        }
        if upheld {
            self.status = Status::Rejected;
            return Ok(Some(Moved {
                from: Some(Status::OnHold),
                to: Status::Rejected,
                action: "objection_upheld",
                reason: String::new(),
                corrections: Vec::new(),
            }));
        }
        if other_open > 0 {
            return Ok(None);
        }
        self.status = Status::PublicNotice;
        Ok(Some(Moved {
            from: Some(Status::OnHold),
            to: Status::PublicNotice,
            action: "objection_dismissed",
            reason: String::new(),
            corrections: Vec::new(),
        }))
    }

    /// Whether `actor` may recommend this application to a bank (R-IN-2): the district
    /// center, and only for an application it can see.
    pub fn check_recommender(&self, actor: &Actor) -> Result<(), DomainError> {
        self.require_district(
            actor,
            "the district center recommends applications to banks [R-IN-2]",
        )
    }

    /// Recommendation to a partner bank after the notice period (R-IN-2, R-IN-5). Admission is
    /// re-checked by the caller before this.
    pub fn recommend(
        &mut self,
        actor: &Actor,
        bank_id: &str,
        today: NaiveDate,
        policy: &IntakePolicy,
        calendar: &WorkingDayCalendar,
    ) -> Result<Moved, DomainError> {
        self.check_recommender(actor)?;
        match self.status {
            Status::PublicNotice => {}
            Status::OnHold => return Err(state_refusal("R-IN-5", "an objection is unresolved")),
            other => {
                return Err(state_refusal(
                    "R-IN-2",
                    format!("application is {}, not past public notice", other.as_str()),
                ));
            }
        }
        if self.notice_ends_on.is_none_or(|end| today <= end) {
            return Err(state_refusal(
                "R-IN-5",
                format!(
                    "public notice runs until {}",
                    self.notice_ends_on
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ),
            ));
        }
        self.enter_step(Step::Bank, today, policy, calendar);
        self.bank_id = Some(bank_id.to_owned());
        self.recommended_on = Some(today);
        Ok(Moved {
            from: Some(Status::PublicNotice),
            to: Status::Recommended,
            action: "recommend",
            reason: bank_id.to_owned(),
            corrections: Vec::new(),
        })
    }

    /// The bank's decision (R-IN-6). Only the bank it was recommended to may decide.
    pub fn bank_decide(
        &mut self,
        actor: &Actor,
        approved: bool,
        reason: &str,
    ) -> Result<Moved, DomainError> {
        self.check_bank(actor)?;
        if self.status != Status::Recommended {
            return Err(state_refusal(
                "R-IN-6",
                format!(
                    "application is {}, not awaiting a bank decision",
                    self.status.as_str()
                ),
            ));
        }
        self.leave_steps();
        self.status = if approved {
            Status::BankApproved
        } else {
            Status::BankRejected
        };
        Ok(Moved {
            from: Some(Status::Recommended),
            to: self.status,
            action: if approved {
                "bank_approve"
            } else {
                "bank_reject"
            },
            reason: reason.to_owned(),
            corrections: Vec::new(),
        })
    }

    /// The disbursement (R-IN-6).
    pub fn disburse(&mut self, actor: &Actor) -> Result<Moved, DomainError> {
        self.check_bank(actor)?;
        if self.status != Status::BankApproved {
            return Err(state_refusal(
                "R-IN-6",
                format!(
                    "application is {}, not approved by the bank",
                    self.status.as_str()
                ),
            ));
        }
        self.status = Status::Disbursed;
        Ok(Moved {
            from: Some(Status::BankApproved),
            to: Status::Disbursed,
            action: "disburse",
            reason: String::new(),
            corrections: Vec::new(),
        })
    }

    /// Whether `actor` is the bank that may record this application's decision and
    /// disbursement (R-IN-6); anyone who cannot see the application is told it does not exist.
    pub fn check_bank(&self, actor: &Actor) -> Result<(), DomainError> {
        if actor.role != ActorRole::Bank {
            return Err(if self.visible_to(actor) {
                deny("only the partner bank records decisions and disbursements [R-IN-6]")
            } else {
                DomainError::NotVisible
            });
        }
        self.require_visible(actor)
    }
}
