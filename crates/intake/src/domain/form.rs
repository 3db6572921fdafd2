//! A submitted application after parsing (R-IN-1): the wire layer turns the request into an
//! [`ApplicationForm`] (resident ID / USCC check digits, area code shapes, money with at most two
//! decimals); [`validate`] then checks what needs the area registry and the day, and
//! [`over_caps`] the policy's caps.

use fupin_kernel::text::{is_format_character, is_variation_selector};
use fupin_kernel::{
    AreaCode, AreaLevel, AreaRegistry, Money, ResidentId, Uscc, policy::IntakePolicy,
};

use chrono::NaiveDate;

use super::{ApplicantKind, DomainError, Purpose, error::Failure};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HouseholdApplicant {
    pub resident_id: ResidentId,
    pub name: String,
    pub phone: String,
    pub village: AreaCode,
    /// 建档立卡 registration number; empty when the household is not registered.
    pub poor_household_number: String,
    /// 户借户用户还.
    pub self_use: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnterpriseApplicant {
    pub uscc: Uscc,
    pub name: String,
    pub area: AreaCode,
    pub kind: ApplicantKind,
    pub legal_representative: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applicant {
    Household(HouseholdApplicant),
    Enterprise(EnterpriseApplicant),
}

impl Applicant {
    pub fn kind(&self) -> ApplicantKind {
        match self {
            Self::Household(_) => ApplicantKind::Household,
            Self::Enterprise(e) => e.kind,
        }
    }

    /// Resident ID or USCC.
    pub fn id(&self) -> &str {
        match self {
            Self::Household(h) => h.resident_id.as_str(),
            Self::Enterprise(e) => e.uscc.as_str(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Household(h) => &h.name,
            Self::Enterprise(e) => &e.name,
        }
    }

    /// The most specific area the applicant belongs to.
    pub fn area(&self) -> &AreaCode {
        match self {
            Self::Household(h) => &h.village,
            Self::Enterprise(e) => &e.area,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationForm {
    pub applicant: Applicant,
    pub amount: Money,
    pub term_months: u32,
    pub purpose: Purpose,
    pub description: String,
}

pub const MAX_NAME: usize = 100;
pub const MAX_TEXT: usize = 2000;

/// Field-level checks that need the area registry and the day (China time) the form is judged
/// on (R-IN-1); the policy's caps are [`over_caps`].
pub fn validate(
    form: &ApplicationForm,
    areas: &AreaRegistry,
    today: NaiveDate,
) -> Result<(), DomainError> {
    match &form.applicant {
        Applicant::Household(h) => {
            // GB 11643's birth date must be a real date, and a resident ID is issued to
            // someone already born: a future one is a wrong ID, not an applicant aged 0.
            if h.resident_id.birth_date() > today {
                return Err(DomainError::invalid(
                    "household.resident_id",
                    "R-IN-1",
                    format!(
                        "birth date {} (positions 7-14) is after today, {today}",
                        h.resident_id.birth_date()
                    ),
                ));
            }
            name("household.name", "R-IN-1", &h.name, true)?;
            if !h.phone.is_empty() && !is_mobile(&h.phone) {
                return Err(DomainError::invalid(
                    "household.phone",
                    "R-IN-1",
                    "must be an 11-digit mobile number (1, then 3 to 9, then 9 digits)",
                ));
            }
            if h.village.level() != AreaLevel::Village {
                return Err(DomainError::invalid(
                    "household.village_code",
                    "R-IN-1",
                    "must be a 12-digit village code",
                ));
            }
            if !areas.exists(&h.village) {
                return Err(DomainError::invalid(
                    "household.village_code",
                    "R-IN-1",
                    format!(
                        "{} is not a village of district {}",
                        h.village.as_str(),
                        areas.district().code().as_str()
                    ),
                ));
            }
            text(
                "household.poor_household_number",
                &h.poor_household_number,
                64,
                false,
            )?;
        }
        Applicant::Enterprise(e) => {
            name("enterprise.name", "R-IN-1", &e.name, true)?;
            name(
                "enterprise.legal_representative",
                "R-IN-1",
                &e.legal_representative,
                false,
            )?;
            // The town (or village) an enterprise sits in is where the circuit breaker
            // suspends lending (R-RK-9 via R-IN-3): a district-level area would escape it.
            if e.area.level() == AreaLevel::District {
                return Err(DomainError::invalid(
                    "enterprise.area_code",
                    "R-IN-1",
                    "must be the 9-digit town or 12-digit village code where it is registered",
                ));
            }
            if !areas.exists(&e.area) {
                return Err(DomainError::invalid(
                    "enterprise.area_code",
                    "R-IN-1",
                    format!(
                        "{} is not an area of district {}",
                        e.area.as_str(),
                        areas.district().code().as_str()
                    ),
                ));
            }
        }
    }
    if form.amount.is_zero() || form.amount.is_negative() {
        return Err(DomainError::invalid(
            "amount",
            "R-IN-1",
            "must be greater than zero",
        ));
    }
    if form.term_months == 0 {
        return Err(DomainError::invalid(
            "term_months",
            "R-IN-1",
            "must be at least 1",
        ));
    }
    text("project_description", &form.description, MAX_TEXT, false)?;
    Ok(())
}

/// The caps of a well-formed form ([`validate`]) it exceeds, in field order: a household's
/// amount (50,000 yuan by default) and term (36 months), an enterprise's or cooperative's term
/// (R-IN-3). Bad input, checked with the form (R-X-3); the caller lists them with every other
/// rule admission refuses ([`super::admission::check`] checks them again for the re-checks of
/// a stored application), since R-IN-3 counts them among its conditions.
pub fn over_caps(form: &ApplicationForm, policy: &IntakePolicy) -> Vec<Failure> {
    let mut over = Vec::new();
    let max_term = match &form.applicant {
        Applicant::Household(_) => {
            if form.amount > policy.max_amount {
                over.push(Failure::new(
                    "R-IN-3",
                    Some("amount"),
                    format!("at most {} yuan for a household", policy.max_amount),
                ));
            }
            policy.max_term_months
        }
        Applicant::Enterprise(_) => policy.enterprise_max_term_months,
    };
    if form.term_months > max_term {
        over.push(Failure::new(
            "R-IN-3",
            Some("term_months"),
            match &form.applicant {
                Applicant::Household(_) => format!("at most {max_term} months"),
                Applicant::Enterprise(_) => {
                    format!("at most {max_term} months for an enterprise or cooperative")
                }
            },
        ));
    }
    over
}

/// A mainland mobile number: 11 digits, `1` then 3 to 9 (the mobile number blocks).
fn is_mobile(phone: &str) -> bool {
    let b = phone.as_bytes();
    b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && b[1] >= b'3'
}

fn text(field: &'static str, value: &str, max: usize, required: bool) -> Result<(), DomainError> {
    free_text(field, "R-IN-1", value, max, required)
}

/// A person's or an organisation's name: one line of [`free_text`] with at least one letter
/// (any script's, [`fupin_kernel::text::is_name_letter`]; a name of only digits, punctuation,
/// combining marks or private-use characters names no one a clerk or a bank can check).
pub fn name(
    field: &'static str,
    rule: &'static str,
    value: &str,
    required: bool,
) -> Result<(), DomainError> {
    free_text(field, rule, value, MAX_NAME, required)?;
    let value = value.trim();
    if !value.is_empty() && !value.chars().any(fupin_kernel::text::is_name_letter) {
        return Err(DomainError::invalid(
            field,
            rule,
            "must contain a letter or character of a name",
        ));
    }
    Ok(())
}

/// Text a person typed (names, reasons, notes, objections, complaints, answers), as stored
/// (trimmed): present when `required`, at most `max` characters, and without control or
/// invisible format characters (a NUL cannot even be stored; a bidirectional override makes
/// the text read otherwise than it is). Short fields (names and numbers, at most
/// [`MAX_NAME`] characters) are one line; longer ones may hold tabs and line breaks (R-X-3).
pub fn free_text(
    field: &'static str,
    rule: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), DomainError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(DomainError::invalid(field, rule, "required"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            rule,
            format!("at most {max} characters"),
        ));
    }
    let lines_allowed = max > MAX_NAME;
    let unreadable = |c: char| {
        let line = matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
        (c.is_control() && c != '\t' && !line)
            || (line && !lines_allowed)
            || (c == '\t' && !lines_allowed)
            || is_format_character(c)
    };
    // A variation selector chooses how the character before it looks (an emoji's colour, an
    // ideograph's variant); without a visible one before it, it shows nothing.
    let mut after_visible = false;
    let unreadable = |c: char| {
        let bad = unreadable(c) || (is_variation_selector(c) && !after_visible);
        after_visible = !bad && !c.is_whitespace() && !is_variation_selector(c);
        bad
    };
    if value.chars().any(unreadable) {
        return Err(DomainError::invalid(
            field,
            rule,
            if lines_allowed {
                "must not contain control or invisible formatting characters"
            } else {
                "one line, without control or invisible formatting characters"
            },
        ));
    }
    Ok(())
}
