//! Vocabulary of the intake context.

use fupin_kernel::AreaCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplicantKind {
    Household,
    Enterprise,
    Cooperative,
}

impl ApplicantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Household => "household",
            Self::Enterprise => "enterprise",
            Self::Cooperative => "cooperative",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "household" => Self::Household,
            "enterprise" => Self::Enterprise,
            "cooperative" => Self::Cooperative,
            _ => return None,
        })
    }
}

/// Loan purpose. Only industry/production purposes pass admission (R-IN-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Planting,
    Breeding,
    Processing,
    RuralTourism,
    Ecommerce,
    Handicraft,
    OtherProduction,
    Consumption,
    Housing,
}

impl Purpose {
    pub fn is_production(self) -> bool {
        !matches!(self, Self::Consumption | Self::Housing)
    }

    /// The wire number (stable, see intake.proto).
    pub fn code(self) -> i32 {
        match self {
            Self::Planting => 1,
            Self::Breeding => 2,
            Self::Processing => 3,
            Self::RuralTourism => 4,
            Self::Ecommerce => 5,
            Self::Handicraft => 6,
            Self::OtherProduction => 7,
            Self::Consumption => 20,
            Self::Housing => 21,
        }
    }

    pub fn from_code(c: i32) -> Option<Self> {
        Some(match c {
            1 => Self::Planting,
            2 => Self::Breeding,
            3 => Self::Processing,
            4 => Self::RuralTourism,
            5 => Self::Ecommerce,
            6 => Self::Handicraft,
            7 => Self::OtherProduction,
            20 => Self::Consumption,
            21 => Self::Housing,
            _ => return None,
        })
    }
}

/// Workflow status (R-IN-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    VillageReview,
    TownReview,
    DistrictReview,
    PublicNotice,
    OnHold,
    Recommended,
    BankApproved,
    BankRejected,
    Disbursed,
    Rejected,
    Returned,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Self::VillageReview,
        Self::TownReview,
        Self::DistrictReview,
        Self::PublicNotice,
        Self::OnHold,
        Self::Recommended,
        Self::BankApproved,
        Self::BankRejected,
        Self::Disbursed,
        Self::Rejected,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VillageReview => "village_review",
            Self::TownReview => "town_review",
            Self::DistrictReview => "district_review",
            Self::PublicNotice => "public_notice",
            Self::OnHold => "on_hold",
            Self::Recommended => "recommended",
            Self::BankApproved => "bank_approved",
            Self::BankRejected => "bank_rejected",
            Self::Disbursed => "disbursed",
            Self::Rejected => "rejected",
            Self::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The step whose deadline runs while in this status (R-IN-4).
    pub fn step(self) -> Option<Step> {
        match self {
            Self::VillageReview => Some(Step::Village),
            Self::TownReview => Some(Step::Town),
            Self::DistrictReview => Some(Step::District),
            Self::Recommended => Some(Step::Bank),
            _ => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected | Self::BankRejected | Self::Disbursed)
    }
}

/// A deadline-bearing step (R-IN-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Village,
    Town,
    District,
    Bank,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Village => "village",
            Self::Town => "town",
            Self::District => "district",
            Self::Bank => "bank",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "village" => Self::Village,
            "town" => Self::Town,
            "district" => Self::District,
            "bank" => Self::Bank,
            _ => return None,
        })
    }

    /// The review status of a staff step.
    pub fn review_status(self) -> Status {
        match self {
            Self::Village => Status::VillageReview,
            Self::Town => Status::TownReview,
            Self::District => Status::DistrictReview,
            Self::Bank => Status::Recommended,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    ReturnForCorrection,
}

impl Decision {
    /// R-IN-2: a rejection or a return says why; an approval needs no reason. Judged on the
    /// request alone, whatever the application's state.
    pub fn check_reason(self, reason: &str) -> Result<(), super::DomainError> {
        if self != Self::Approve && reason.trim().is_empty() {
            return Err(super::DomainError::invalid(
                "reason",
                "R-IN-2",
                "required to reject or return",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorRole {
    VillageStaff,
    TownStaff,
    DistrictStaff,
    Bank,
    Operator,
}

impl ActorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VillageStaff => "village_staff",
            Self::TownStaff => "town_staff",
            Self::DistrictStaff => "district_staff",
            Self::Bank => "bank",
            Self::Operator => "operator",
        }
    }

    /// The staff role that takes a step.
    pub fn for_step(step: Step) -> Self {
        match step {
            Step::Village => Self::VillageStaff,
            Step::Town => Self::TownStaff,
            Step::District => Self::DistrictStaff,
            Step::Bank => Self::Bank,
        }
    }
}

/// Who is acting: the authenticated caller in domain terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub role: ActorRole,
    pub area: AreaCode,
    pub bank_id: Option<String>,
}

impl Actor {
    pub fn is_staff(&self) -> bool {
        matches!(
            self.role,
            ActorRole::VillageStaff | ActorRole::TownStaff | ActorRole::DistrictStaff
        )
    }
}
