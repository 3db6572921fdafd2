//! Wire <-> domain conversions in one place. Parsing errors name the request field and rule.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use fupin_kernel::{AreaCode, Money, ResidentId, Uscc, text::excerpt};
use fupin_platform::{Caller, Role};
use fupin_proto::{common::v1 as common, intake::v1 as pb};
use rust_decimal::Decimal;

use crate::{
    domain::{
        Actor, ActorRole, ApplicantKind, Decision, DomainError, Purpose, Status, Step,
        application::Correction,
        bank,
        disclosure::{Disclosure, mask_name, mask_phone, mask_resident_id},
        form::{Applicant, ApplicationForm, EnterpriseApplicant, HouseholdApplicant},
    },
    store::applications::{ApplicantPii, ApplicationRow, BankDecision, TransitionRow},
};

pub fn actor(c: &Caller) -> Actor {
    Actor {
        subject: c.subject.clone(),
        role: match c.role {
            Role::VillageStaff => ActorRole::VillageStaff,
            Role::TownStaff => ActorRole::TownStaff,
            Role::DistrictStaff => ActorRole::DistrictStaff,
            Role::Bank => ActorRole::Bank,
            Role::Operator => ActorRole::Operator,
        },
        area: c.area.clone(),
        bank_id: c.bank_id.clone(),
    }
}

pub fn money(
    field: &'static str,
    rule: &'static str,
    m: Option<&common::Money>,
) -> Result<Money, DomainError> {
    let s = m.map(|m| m.amount.as_str()).unwrap_or_default();
    if s.is_empty() {
        return Err(DomainError::invalid(field, rule, "required"));
    }
    Money::parse(s).map_err(|e| DomainError::invalid(field, rule, e.to_string()))
}

pub fn pb_money(m: Money) -> Option<common::Money> {
    Some(common::Money {
        amount: m.to_string(),
    })
}

/// The bank's decision, on the application and on the event of the move it made (R-IN-6).
pub fn bank_decision(d: &BankDecision) -> pb::BankDecisionInfo {
    pb::BankDecisionInfo {
        approved: d.approved,
        approved_amount: d.approved_amount.and_then(pb_money),
        annual_rate: d.annual_rate.map(|r| r.to_string()).unwrap_or_default(),
        term_months: d.term_months.unwrap_or_default(),
        rejection_reason: d.rejection_reason.clone(),
        decided_at: rfc3339(d.decided_at),
    }
}

/// An application's version (a row's `version`, from 1) as the API and the events carry it.
pub fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

/// A calendar day written exactly `YYYY-MM-DD` (years 0001 to 9999, see
/// [`fupin_kernel::time::parse_iso_date`]).
pub fn date(field: &'static str, rule: &'static str, s: &str) -> Result<NaiveDate, DomainError> {
    fupin_kernel::time::parse_iso_date(s).ok_or_else(|| {
        DomainError::invalid(
            field,
            rule,
            format!("{:?} is not a YYYY-MM-DD date", excerpt(s)),
        )
    })
}

pub fn opt_date(
    field: &'static str,
    rule: &'static str,
    s: &str,
) -> Result<Option<NaiveDate>, DomainError> {
    if s.is_empty() {
        Ok(None)
    } else {
        date(field, rule, s).map(Some)
    }
}

pub fn uuid(field: &'static str, s: &str) -> Result<uuid::Uuid, DomainError> {
    uuid::Uuid::parse_str(s).map_err(|_| DomainError::invalid(field, "R-X-3", "not a valid id"))
}

pub fn purpose(code: i32) -> Result<Purpose, DomainError> {
    Purpose::from_code(code).ok_or_else(|| {
        let message = if code == 0 {
            "a purpose category is required".to_owned()
        } else {
            format!("{code} is not a purpose category")
        };
        DomainError::invalid("purpose", "R-IN-1", message)
    })
}

pub fn status_from_pb(code: i32) -> Result<Status, DomainError> {
    Ok(match pb::Status::try_from(code) {
        Ok(pb::Status::VillageReview) => Status::VillageReview,
        Ok(pb::Status::TownReview) => Status::TownReview,
        Ok(pb::Status::DistrictReview) => Status::DistrictReview,
        Ok(pb::Status::PublicNotice) => Status::PublicNotice,
        Ok(pb::Status::OnHold) => Status::OnHold,
        Ok(pb::Status::Recommended) => Status::Recommended,
        Ok(pb::Status::BankApproved) => Status::BankApproved,
        Ok(pb::Status::BankRejected) => Status::BankRejected,
        Ok(pb::Status::Disbursed) => Status::Disbursed,
        Ok(pb::Status::Rejected) => Status::Rejected,
        Ok(pb::Status::Returned) => Status::Returned,
        Ok(pb::Status::Unspecified) | Err(_) => {
            return Err(DomainError::invalid(
                "statuses",
                "R-X-3",
                format!("unknown status {code}"),
            ));
        }
    })
}

/// A listing's status filter: each status once, in the order first given. More entries than
/// there are statuses are refused before any is read: a filter of millions of repeated
/// entries (a few megabytes on the wire) would otherwise become as many strings, a sort and a
/// query parameter.
pub fn statuses(codes: &[i32]) -> Result<Vec<Status>, DomainError> {
    if codes.len() > Status::ALL.len() {
        return Err(DomainError::invalid(
            "statuses",
            "R-X-3",
            format!("at most {} statuses", Status::ALL.len()),
        ));
    }
    let mut out: Vec<Status> = Vec::with_capacity(codes.len());
    for code in codes {
        let s = status_from_pb(*code)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn status_to_pb(s: Status) -> pb::Status {
    match s {
        Status::VillageReview => pb::Status::VillageReview,
        Status::TownReview => pb::Status::TownReview,
        Status::DistrictReview => pb::Status::DistrictReview,
        Status::PublicNotice => pb::Status::PublicNotice,
        Status::OnHold => pb::Status::OnHold,
        Status::Recommended => pb::Status::Recommended,
        Status::BankApproved => pb::Status::BankApproved,
        Status::BankRejected => pb::Status::BankRejected,
        Status::Disbursed => pb::Status::Disbursed,
        Status::Rejected => pb::Status::Rejected,
        Status::Returned => pb::Status::Returned,
    }
}

pub fn step_to_pb(s: Option<Step>) -> pb::Step {
    match s {
        None => pb::Step::Unspecified,
        Some(Step::Village) => pb::Step::Village,
        Some(Step::Town) => pb::Step::Town,
        Some(Step::District) => pb::Step::District,
        Some(Step::Bank) => pb::Step::Bank,
    }
}

pub fn step_from_pb(code: i32) -> Result<Option<Step>, DomainError> {
    Ok(match pb::Step::try_from(code) {
        Ok(pb::Step::Unspecified) => None,
        Ok(pb::Step::Village) => Some(Step::Village),
        Ok(pb::Step::Town) => Some(Step::Town),
        Ok(pb::Step::District) => Some(Step::District),
        Ok(pb::Step::Bank) => Some(Step::Bank),
        Err(_) => {
            return Err(DomainError::invalid(
                "step",
                "R-X-3",
                format!("unknown step {code}"),
            ));
        }
    })
}

pub fn decision(code: i32) -> Result<Decision, DomainError> {
    match pb::Decision::try_from(code) {
        Ok(pb::Decision::Approve) => Ok(Decision::Approve),
        Ok(pb::Decision::Reject) => Ok(Decision::Reject),
        Ok(pb::Decision::ReturnForCorrection) => Ok(Decision::ReturnForCorrection),
        _ => Err(DomainError::invalid(
            "decision",
            "R-IN-2",
            "approve, reject or return_for_correction",
        )),
    }
}

pub fn kind_to_pb(k: ApplicantKind) -> pb::ApplicantKind {
    match k {
        ApplicantKind::Household => pb::ApplicantKind::Household,
        ApplicantKind::Enterprise => pb::ApplicantKind::Enterprise,
        ApplicantKind::Cooperative => pb::ApplicantKind::Cooperative,
    }
}

/// R-IN-1: parses the applicant and the loan terms; check digits, code shapes, decimals.
pub fn form(req: &pb::SubmitApplicationRequest) -> Result<ApplicationForm, DomainError> {
    let kind = pb::ApplicantKind::try_from(req.kind).map_err(|_| {
        DomainError::invalid(
            "kind",
            "R-IN-1",
            format!("{} is not an applicant kind", req.kind),
        )
    })?;
    let applicant = match (&req.applicant, kind) {
        (None, _) => {
            return Err(DomainError::invalid(
                "applicant",
                "R-IN-1",
                "household or enterprise is required",
            ));
        }
        (
            Some(pb::submit_application_request::Applicant::Household(h)),
            pb::ApplicantKind::Household | pb::ApplicantKind::Unspecified,
        ) => Applicant::Household(HouseholdApplicant {
            resident_id: ResidentId::parse(h.resident_id.trim()).map_err(|e| {
                DomainError::invalid("household.resident_id", "R-IN-1", e.to_string())
            })?,
            name: h.name.trim().to_owned(),
            phone: h.phone.trim().to_owned(),
            village: AreaCode::parse(h.village_code.trim()).map_err(|e| {
                DomainError::invalid("household.village_code", "R-IN-1", e.to_string())
            })?,
            poor_household_number: h.poor_household_number.trim().to_owned(),
            self_use: h.household_borrows_uses_repays,
        }),
        (
            Some(pb::submit_application_request::Applicant::Enterprise(e)),
            pb::ApplicantKind::Enterprise | pb::ApplicantKind::Cooperative,
        ) => Applicant::Enterprise(EnterpriseApplicant {
            uscc: Uscc::parse(e.uscc.trim()).map_err(|err| {
                DomainError::invalid("enterprise.uscc", "R-IN-1", err.to_string())
            })?,
            name: e.name.trim().to_owned(),
            area: AreaCode::parse(e.area_code.trim()).map_err(|err| {
                DomainError::invalid("enterprise.area_code", "R-IN-1", err.to_string())
            })?,
            kind: if kind == pb::ApplicantKind::Cooperative {
                ApplicantKind::Cooperative
            } else {
                ApplicantKind::Enterprise
            },
            legal_representative: e.legal_representative.trim().to_owned(),
        }),
        (Some(pb::submit_application_request::Applicant::Enterprise(_)), _) => {
            return Err(DomainError::invalid(
                "kind",
                "R-IN-1",
                "an enterprise applicant needs kind ENTERPRISE or COOPERATIVE",
            ));
        }
        (Some(pb::submit_application_request::Applicant::Household(_)), _) => {
            return Err(DomainError::invalid(
                "kind",
                "R-IN-1",
                "a household applicant needs kind HOUSEHOLD",
            ));
        }
    };
    Ok(ApplicationForm {
        applicant,
        amount: money("amount", "R-IN-1", req.amount.as_ref())?,
        term_months: req.term_months,
        purpose: purpose(req.purpose)?,
        description: req.project_description.trim().to_owned(),
    })
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_day(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// The response fields a response showed unmasked (R-CR-11), named as on the wire; what the
/// access log records.
pub type Unmasked = Vec<&'static str>;

/// `value` as the caller's role may see it (see [`crate::domain::disclosure`]), noting the
/// field when it is shown unmasked. An empty value reveals nothing.
fn disclose(
    unmasked: &mut Unmasked,
    field: &'static str,
    allowed: bool,
    value: &str,
    mask: fn(&str) -> String,
) -> String {
    if !allowed {
        return mask(value);
    }
    if !value.is_empty() {
        unmasked.push(field);
    }
    value.to_owned()
}

/// A person's name (objector, complainant) as `actor` may see it, with the field if unmasked.
pub fn person_name(actor: &Actor, field: &'static str, name: &str) -> (String, Unmasked) {
    let mut unmasked = Unmasked::new();
    let shown = disclose(
        &mut unmasked,
        field,
        Disclosure::for_role(actor.role).names,
        name,
        mask_name,
    );
    (shown, unmasked)
}

/// The application as `actor` may see it (R-CR-11), and which personal fields that shows
/// unmasked. `applicant` is the row's opened personal data.
pub fn application(
    r: &ApplicationRow,
    applicant: &ApplicantPii,
    actor: &Actor,
    today: NaiveDate,
) -> (pb::Application, Unmasked) {
    let status = r.status();
    let step = status.step();
    let overdue = step.is_some() && r.step_due_on.is_some_and(|d| today > d);
    let kind = ApplicantKind::parse(&r.kind).unwrap_or(ApplicantKind::Household);
    let mut unmasked = Unmasked::new();
    // A household's ID, name and phone are personal data; an organisation's USCC and name are
    // public (kernel `Uscc`), and it has no phone.
    let (applicant_id, applicant_name, applicant_phone) = if kind == ApplicantKind::Household {
        let may = Disclosure::for_role(actor.role);
        let u = &mut unmasked;
        (
            disclose(
                u,
                "applicant_id",
                may.resident_id,
                &applicant.id,
                mask_resident_id,
            ),
            disclose(u, "applicant_name", may.names, &applicant.name, mask_name),
            disclose(
                u,
                "applicant_phone",
                may.phone,
                &applicant.phone,
                mask_phone,
            ),
        )
    } else {
        (
            applicant.id.clone(),
            applicant.name.clone(),
            applicant.phone.clone(),
        )
    };
    // An organisation's legal representative is a person: shown like a name (R-CR-11).
    let legal_representative = disclose(
        &mut unmasked,
        "legal_representative",
        Disclosure::for_role(actor.role).names,
        &applicant.legal_representative,
        mask_name,
    );
    let pb = pb::Application {
        id: r.id.to_string(),
        kind: kind_to_pb(kind) as i32,
        applicant_id,
        applicant_name,
        applicant_phone,
        village_code: r.village_code.clone().unwrap_or_default(),
        town_code: r.town_code.clone().unwrap_or_default(),
        area_code: r.area_code.clone(),
        amount: Some(common::Money {
            amount: format!("{:.2}", r.amount),
        }),
        term_months: r.term_months as u32,
        purpose: r.purpose,
        project_description: r.project_description.clone(),
        status: status_to_pb(status) as i32,
        current_step: step_to_pb(step) as i32,
        step_due_on: if step.is_some() {
            opt_day(r.step_due_on)
        } else {
            String::new()
        },
        step_calendar_version: if step.is_some() {
            r.step_calendar.clone().unwrap_or_default()
        } else {
            String::new()
        },
        overdue,
        notice_ends_on: opt_day(r.notice_ends_on),
        bank_id: r.bank_id.clone().unwrap_or_default(),
        recommended_on: opt_day(r.recommended_on),
        legal_representative,
        bank_decision: r.decision.as_deref().map(bank_decision),
        disbursement: r.disbursement.as_ref().map(|d| pb::DisbursementInfo {
            loan_account_number: d.loan_account_number.clone(),
            amount: pb_money(d.amount),
            disbursed_on: d.disbursed_on.to_string(),
            schedule: d
                .schedule
                .iter()
                .map(|i| pb::Instalment {
                    due_on: i.due_on.to_string(),
                    principal: pb_money(i.principal),
                    interest: pb_money(i.interest),
                })
                .collect(),
            loan_id: d.loan_id.to_string(),
        }),
        submitted_at: rfc3339(r.submitted_at),
        updated_at: rfc3339(r.updated_at),
        version: version(r.version),
        policy_version: r.policy_version.clone(),
        returned_from: step_to_pb(r.returned_from.as_deref().and_then(Step::parse)) as i32,
    };
    (pb, unmasked)
}

pub fn transition(t: &TransitionRow) -> pb::Transition {
    let st = |s: &str| Status::parse(s).map_or(pb::Status::Unspecified, status_to_pb) as i32;
    pb::Transition {
        id: t.id.to_string(),
        from_status: t.from_status.as_deref().map_or(0, st),
        to_status: st(&t.to_status),
        action: t.action.clone(),
        actor: t.actor.clone(),
        actor_role: t.actor_role.clone(),
        reason: t.reason.clone(),
        at: rfc3339(t.at),
        policy_version: t.policy_version.clone(),
        calendar_version: t.calendar_version.clone().unwrap_or_default(),
        corrections: t.corrections.iter().map(correction).collect(),
        step_due_on: t.step_due_on.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// A corrected value (R-IN-2) on the wire; personal data without its values (R-CR-11).
pub fn correction(c: &Correction) -> pb::Correction {
    pb::Correction {
        field: c.field.clone(),
        from: c.from.clone().unwrap_or_default(),
        to: c.to.clone().unwrap_or_default(),
        personal: c.is_personal(),
    }
}

/// A correction as `ApplicationStatusChanged` announces it: a project description's values are
/// withheld like personal data's (free text that may name people; `ApplicationSubmitted` leaves
/// the description out too).
pub fn announced_correction(c: &Correction) -> pb::Correction {
    if c.field == "project_description" {
        return pb::Correction {
            field: c.field.clone(),
            personal: true,
            ..Default::default()
        };
    }
    correction(c)
}

/// An annual rate as a decimal fraction, read exactly; its bounds are [`bank::annual_rate`]'s.
pub fn annual_rate(s: &str) -> Result<Decimal, DomainError> {
    let malformed =
        || DomainError::invalid("annual_rate", "R-IN-6", "a decimal fraction such as 0.0435");
    // Digits and one point only, read exactly: no exponent, separators or signs, and no digits
    // beyond what the decimal type holds (they would be rounded away silently).
    // Written as money is: digits before the point, and digits after it if there is one.
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return Err(malformed());
    }
    let fraction = fraction.unwrap_or_default();
    if whole.len() + fraction.len() > 28 {
        return Err(malformed());
    }
    if fraction.trim_end_matches('0').len() > bank::RATE_DECIMALS as usize
        || whole.trim_start_matches('0').len() > 1
    {
        return Err(bank::rate_refused());
    }
    let r: Decimal = s.parse().map_err(|_| malformed())?;
    bank::annual_rate(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    // R-X-3, R-IN-6: dates are exactly YYYY-MM-DD with a year PostgreSQL stores; anything else
    // is refused naming the field, never passed on to fail as an internal error.
    #[test]
    fn dates_are_written_yyyy_mm_dd() {
        let d = |s: &str| date("recommended_on.from", "R-IN-6", s);
        assert_eq!(d("2026-03-08").unwrap().to_string(), "2026-03-08");
        assert_eq!(d("0001-01-01").unwrap().to_string(), "0001-01-01");
        assert_eq!(d("9999-12-31").unwrap().to_string(), "9999-12-31");
        for bad in [
            "2026-3-8",
            "2026-03-8",
            "+2026-03-08",
            " 2026-03-08",
            "2026-03-08 ",
            "-5000-01-01",
            "-200000-01-01",
            "12026-03-08",
            "0000-01-01",
            "2026-02-30",
            "2026/03/08",
            "２０２６-03-08",
            "",
        ] {
            let e = d(bad).expect_err(bad);
            assert!(
                format!("{e:?}").contains("recommended_on.from"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn rate_bounds() {
        assert!(annual_rate("0.0435").is_ok());
        assert_eq!(annual_rate("0.0435000").unwrap().to_string(), "0.0435");
        // Leading zeros are the same rate; a point needs digits on both sides, as money does.
        assert_eq!(
            annual_rate("00000000000000.0435").unwrap().to_string(),
            "0.0435"
        );
        for bad in [".0435", "0.", "1."] {
            let e = annual_rate(bad).unwrap_err();
            assert!(format!("{e:?}").contains("such as 0.0435"), "{bad}: {e:?}");
        }
        for bad in [
            "0",
            "1",
            "-0.01",
            "abc",
            "0.1234567",
            "4.35",
            "0.04_35",
            "1e-2",
            "4.35e-2",
            "0.0435000000000000000000000000001",
            " 0.0435",
            "+0.0435",
            ".",
            "",
        ] {
            assert!(annual_rate(bad).is_err(), "{bad}");
        }
    }
}
