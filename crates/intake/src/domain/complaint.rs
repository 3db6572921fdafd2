//! Complaints (投诉, R-IN-7): lodged, assigned to a service organisation, answered within a
//! deadline in working days; unanswered ones past the deadline are flagged once.

use chrono::NaiveDate;
use fupin_kernel::{AreaCode, WorkingDayCalendar};

use super::{Actor, ActorRole, DomainError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complaint {
    pub area: AreaCode,
    pub assigned_to: Option<AreaCode>,
    pub answered: bool,
    pub lodged_on: NaiveDate,
    /// None while the calendar cannot count it yet (the next year's file not deployed):
    /// [`Complaint::count_deadline`] sets it once it can.
    pub due_on: Option<NaiveDate>,
    /// The version of the calendar data that counted `due_on` (R-X-4).
    pub calendar_version: Option<String>,
    pub overdue_alerted: bool,
}

impl Complaint {
    pub fn lodge(
        actor: &Actor,
        area: AreaCode,
        today: NaiveDate,
        answer_days: u32,
        calendar: &WorkingDayCalendar,
    ) -> Result<Self, DomainError> {
        if !actor.is_staff() || !actor.area.contains(&area) {
            return Err(DomainError::PermissionDenied(
                "complaints are lodged by service staff for an area inside their own [R-IN-7]"
                    .into(),
            ));
        }
        let mut complaint = Self {
            area,
            assigned_to: None,
            answered: false,
            lodged_on: today,
            due_on: None,
            calendar_version: None,
            overdue_alerted: false,
        };
        // Recorded whether or not the calendar can count the deadline yet: a complaint is
        // heard when it is made.
        complaint.count_deadline(answer_days, calendar);
        Ok(complaint)
    }

    /// Counts the answer deadline, `answer_days` working days from the lodging day, if it is
    /// not counted yet and the calendar covers it (R-IN-7, SPEC section 0). Says whether it
    /// counted it now.
    pub fn count_deadline(&mut self, answer_days: u32, calendar: &WorkingDayCalendar) -> bool {
        if self.due_on.is_some() {
            return false;
        }
        let Some((due_on, version)) = calendar.deadline(self.lodged_on, answer_days) else {
            return false;
        };
        self.due_on = Some(due_on);
        self.calendar_version = Some(version);
        true
    }

    /// Staff see complaints about their area, and those assigned to their organisation.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        actor.is_staff()
            && (actor.area.contains(&self.area) || self.assigned_to.as_ref() == Some(&actor.area))
    }

    /// Whether `actor` may assign this complaint (R-IN-7): a town station or the district
    /// center over its area. Checked before the organisation the request names.
    pub fn check_assigner(&self, actor: &Actor) -> Result<(), DomainError> {
        if !self.visible_to(actor) {
            return Err(DomainError::NotVisible);
        }
        if !actor.area.contains(&self.area)
            || !matches!(actor.role, ActorRole::TownStaff | ActorRole::DistrictStaff)
        {
            return Err(DomainError::PermissionDenied(
                "complaints are assigned by the town station or district center over the complaint's area [R-IN-7]".into(),
            ));
        }
        Ok(())
    }

    /// Assigning is done by an organisation above or at the complaint's area, to an
    /// organisation whose area is inside the assigner's and contains or equals the complaint's
    /// area chain (its village, town or the district). Reassigning is done by an organisation
    /// over the one it is assigned to: a town station does not take it from the district.
    /// Returns whether the assignment changed: assigning it to the organisation that already
    /// holds it records nothing (a second click, a reassignment sent twice).
    pub fn assign(&mut self, actor: &Actor, to: AreaCode) -> Result<bool, DomainError> {
        self.check_assigner(actor)?;
        // Who, then what the request says, then the state (README "Who before what").
        if !actor.area.contains(&to) || !to.contains(&self.area) {
            return Err(DomainError::invalid(
                "organisation_area_code",
                "R-IN-7",
                "must be an organisation over the complaint's area, inside the assigner's",
            ));
        }
        // A lower tier does not take a complaint away from the organisation above it.
        if let Some(current) = &self.assigned_to
            && !actor.area.contains(current)
        {
            return Err(DomainError::DeniedInState(format!(
                "the complaint is assigned to {}, above the caller's organisation; only an \
                 organisation over that one reassigns it [R-IN-7]",
                current.as_str()
            )));
        }
        if self.answered {
            return Err(DomainError::refused("R-IN-7", "complaint already answered"));
        }
        if self.assigned_to.as_ref() == Some(&to) {
            return Ok(false);
        }
        self.assigned_to = Some(to);
        Ok(true)
    }

    /// Answers the complaint on `today`. An answer after the deadline to a complaint not yet
    /// flagged flags it first (as a step left late is alerted by the move that leaves it,
    /// R-IN-4): whether the deadline scan ran in between must not decide whether a late
    /// answer is ever flagged. Returns whether it was flagged now.
    pub fn answer(&mut self, actor: &Actor, today: NaiveDate) -> Result<bool, DomainError> {
        if !self.visible_to(actor) {
            return Err(DomainError::NotVisible);
        }
        match &self.assigned_to {
            None => Err(DomainError::refused(
                "R-IN-7",
                "complaint is not assigned yet",
            )),
            Some(org) if *org != actor.area => Err(DomainError::DeniedInState(
                "only the organisation the complaint is assigned to answers it [R-IN-7]".into(),
            )),
            Some(_) if self.answered => {
                Err(DomainError::refused("R-IN-7", "complaint already answered"))
            }
            Some(_) => {
                let flag = self.needs_overdue_alert(today);
                if flag {
                    self.overdue_alerted = true;
                }
                self.answered = true;
                Ok(flag)
            }
        }
    }

    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        !self.answered && self.due_on.is_some_and(|due| today > due)
    }

    pub fn needs_overdue_alert(&self, today: NaiveDate) -> bool {
        self.is_overdue(today) && !self.overdue_alerted
    }
}

/// Whether a complaint due on `due_on` and answered on `answered_on` (China dates) was
/// answered late: after its due day, which is itself in time. Unanswered, or its deadline not
/// counted yet: not (yet).
pub fn answered_late(due_on: Option<NaiveDate>, answered_on: Option<NaiveDate>) -> bool {
    due_on.is_some_and(|due| answered_on.is_some_and(|on| on > due))
}
