//! The partner bank's part (R-IN-6): what a bank may approve, and what a disbursement record
//! must say to be the loan risk control and disbursement supervision take over (R-RK-1).
//!
//! The request's text (amounts, dates, the rate) is read by the API layer; the rules on the
//! values are here.

use chrono::{Months, NaiveDate};
use fupin_kernel::{IntakePolicy, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApplicantKind, DomainError, form};

/// Most decimal places of an annual rate (`0.043500`): banks quote to a ten-thousandth of a
/// percent at most.
pub const RATE_DECIMALS: u32 = 6;

/// The longest loan account number a bank's core system gives.
pub const MAX_ACCOUNT_NUMBER: usize = 64;

/// What a bank approved (R-IN-6): only made by [`Approval::new`], which checks it, or read
/// back as it was recorded (`Approval::recorded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approval {
    amount: Money,
    annual_rate: Decimal,
    term_months: u32,
}

impl Approval {
    /// A bank approves at most what was applied for (`requested`), at a rate strictly between
    /// 0 and 1 with at most [`RATE_DECIMALS`] places, for a term within the programme's cap for
    /// the applicant's kind (R-IN-3). Whether the approved amount is still within the
    /// applicant's line is admission's question, asked again by the caller.
    pub fn new(
        kind: ApplicantKind,
        requested: Money,
        amount: Money,
        annual_rate: Decimal,
        term_months: u32,
        policy: &IntakePolicy,
    ) -> Result<Self, DomainError> {
        check_amount(requested, amount)?;
        let annual_rate = self::annual_rate(annual_rate)?;
        check_rate_range(annual_rate, policy)?;
        check_term(kind, term_months, policy)?;
        Ok(Self {
            amount,
            annual_rate,
            term_months,
        })
    }

    /// An approval as it was recorded, checked by [`Approval::new`] when it was made.
    pub(crate) fn recorded(amount: Money, annual_rate: Decimal, term_months: u32) -> Self {
        Self {
            amount,
            annual_rate,
            term_months,
        }
    }

    pub fn amount(&self) -> Money {
        self.amount
    }

    pub fn annual_rate(&self) -> Decimal {
        self.annual_rate
    }

    pub fn term_months(&self) -> u32 {
        self.term_months
    }
}

/// An annual rate as a fraction, strictly between 0 and 1 with at most [`RATE_DECIMALS`]
/// places; returned without trailing zeros (`0.0435000` is `0.0435`).
pub fn annual_rate(rate: Decimal) -> Result<Decimal, DomainError> {
    let rate = rate.normalize();
    if rate <= Decimal::ZERO || rate >= Decimal::ONE || rate.scale() > RATE_DECIMALS {
        return Err(rate_refused());
    }
    Ok(rate)
}

/// The refusal of a rate out of bounds or too precise.
pub fn rate_refused() -> DomainError {
    DomainError::invalid(
        "annual_rate",
        "R-IN-6",
        format!("must be between 0 and 1 (exclusive), at most {RATE_DECIMALS} decimals"),
    )
}

/// The policy's plausible range of annual rates, both included (R-IN-6); a version without
/// one leaves only [`annual_rate`]'s bounds.
fn check_rate_range(rate: Decimal, policy: &IntakePolicy) -> Result<(), DomainError> {
    let (min, max) = (policy.min_annual_rate, policy.max_annual_rate);
    if min.is_some_and(|m| rate < m) || max.is_some_and(|m| rate > m) {
        let bound = |b: Option<Decimal>, none: &str| {
            b.map_or(none.to_owned(), |b| b.normalize().to_string())
        };
        return Err(DomainError::invalid(
            "annual_rate",
            "R-IN-6",
            format!(
                "must be {} to {} a year under the policy in force (a fraction: 0.0435 is \
                 4.35% a year)",
                bound(min, "above 0"),
                bound(max, "below 1"),
            ),
        ));
    }
    Ok(())
}

/// The programme's term cap for an applicant of `kind` (R-IN-3).
pub fn max_term_months(kind: ApplicantKind, policy: &IntakePolicy) -> u32 {
    match kind {
        ApplicantKind::Household => policy.max_term_months,
        ApplicantKind::Enterprise | ApplicantKind::Cooperative => policy.enterprise_max_term_months,
    }
}

/// The approval's fields sent with a rejection (left over from a form, or a core's template):
/// each given one is checked as an approval would check it, so bad input is refused by name
/// whatever the outcome, and none is recorded. A field left empty or zero is not given.
pub fn check_unused_approval(
    kind: ApplicantKind,
    requested: Money,
    amount: Option<Money>,
    annual_rate: Option<Decimal>,
    term_months: Option<u32>,
    policy: &IntakePolicy,
) -> Result<(), DomainError> {
    if let Some(amount) = amount {
        check_amount(requested, amount)?;
    }
    if let Some(rate) = annual_rate {
        check_rate_range(self::annual_rate(rate)?, policy)?;
    }
    if let Some(term) = term_months {
        check_term(kind, term, policy)?;
    }
    Ok(())
}

/// A rejection reason sent with an approval: checked as a rejection would check it (bad input
/// is refused by name), and not recorded.
pub fn check_unused_reason(reason: &str) -> Result<(), DomainError> {
    if reason.trim().is_empty() {
        return Ok(());
    }
    rejection_reason(reason).map(|_| ())
}

fn check_amount(requested: Money, amount: Money) -> Result<(), DomainError> {
    if amount.is_zero() || amount > requested {
        return Err(DomainError::invalid(
            "approved_amount",
            "R-IN-6",
            format!("must be above 0 and at most the requested {requested}"),
        ));
    }
    Ok(())
}

fn check_term(
    kind: ApplicantKind,
    term_months: u32,
    policy: &IntakePolicy,
) -> Result<(), DomainError> {
    let max_term = max_term_months(kind, policy);
    if term_months == 0 || term_months > max_term {
        return Err(DomainError::invalid(
            "term_months",
            "R-IN-3",
            format!("must be 1 to {max_term} months"),
        ));
    }
    Ok(())
}

/// A bank's rejection states its reason (R-IN-6); returned trimmed, as stored.
pub fn rejection_reason(reason: &str) -> Result<&str, DomainError> {
    if reason.trim().is_empty() {
        return Err(DomainError::invalid(
            "rejection_reason",
            "R-IN-6",
            "required when rejecting",
        ));
    }
    form::free_text("rejection_reason", "R-IN-6", reason, form::MAX_TEXT, true)?;
    Ok(reason.trim())
}

/// One instalment of the repayment schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalmentRecord {
    pub due_on: NaiveDate,
    pub principal: Money,
    pub interest: Money,
}

/// The disbursement as the bank reports it (R-IN-6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisbursementRecord {
    pub loan_id: Uuid,
    pub loan_account_number: String,
    pub amount: Money,
    pub disbursed_on: NaiveDate,
    pub schedule: Vec<InstalmentRecord>,
}

impl DisbursementRecord {
    /// The disbursement of an approval as the bank reported it, checked (R-IN-6):
    /// - the loan account number is 1 to [`MAX_ACCOUNT_NUMBER`] letters, digits or `-`;
    /// - the amount is above 0 and at most the approved amount (a bank may pay out less);
    /// - it was paid out between the recommendation and today, both included (not bounded by
    ///   the decision: intake knows when the decision was recorded, not when the bank took it);
    /// - the schedule has at least one instalment, each owing something, due strictly after
    ///   the one before (the first after the payout) and no later than the end of the approved
    ///   term, and its principal adds up to the amount paid out exactly. Instalments of
    ///   interest only (principal 0) are allowed: interest quarterly and principal at maturity
    ///   is the usual schedule of these loans.
    pub fn checked(
        self,
        approval: &Approval,
        recommended_on: Option<NaiveDate>,
        today: NaiveDate,
        policy: &IntakePolicy,
    ) -> Result<Self, DomainError> {
        let record = self.well_formed(today)?;
        record.within(approval, recommended_on, policy)?;
        Ok(record)
    }

    /// The checks that need nothing but the request and the day, run before the application's
    /// state is looked at (README "Who before what"): the account number, an amount above 0,
    /// a payout not after today, and a schedule of increasing dates after the payout, each
    /// owing something, whose principal adds up to the amount.
    pub fn well_formed(mut self, today: NaiveDate) -> Result<Self, DomainError> {
        let account = self.loan_account_number.trim();
        // Starting and ending with a letter or digit: a core that fills an empty field with
        // "-" does not book a loan on "-".
        let edges = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if account.len() > MAX_ACCOUNT_NUMBER
            || !edges(account.chars().next())
            || !edges(account.chars().next_back())
            || !account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(
                "loan_account_number",
                format!(
                    "1 to {MAX_ACCOUNT_NUMBER} letters, digits or '-', starting and ending \
                     with a letter or digit"
                ),
            ));
        }
        let (amount, disbursed_on) = (self.amount, self.disbursed_on);
        if amount.is_zero() {
            return Err(invalid("amount", "must be above 0".into()));
        }
        if disbursed_on > today {
            return Err(invalid(
                "disbursed_on",
                "must be between the recommendation date and today".into(),
            ));
        }
        if self.schedule.is_empty() {
            return Err(invalid(
                "schedule",
                "a repayment schedule is required".into(),
            ));
        }
        let mut previous = disbursed_on;
        let mut total = Money::ZERO;
        for (i, inst) in self.schedule.iter().enumerate() {
            if inst.due_on <= previous {
                return Err(invalid(
                    "schedule.due_on",
                    format!("schedule[{i}]: due dates must increase after the disbursement date"),
                ));
            }
            if inst.principal.is_zero() && inst.interest.is_zero() {
                return Err(invalid(
                    "schedule.principal",
                    format!("schedule[{i}]: owes neither principal nor interest"),
                ));
            }
            previous = inst.due_on;
            total = total
                .checked_add(inst.principal)
                .ok_or_else(|| invalid("schedule.principal", "total overflows".into()))?;
        }
        if total != amount {
            return Err(invalid(
                "schedule.principal",
                format!("principal instalments add up to {total}, not the disbursed {amount}"),
            ));
        }
        // Nothing is owed once the principal is repaid: an instalment after the last one that
        // repays principal would be interest on nothing, and overdue on a zero balance.
        let last = self.schedule.len() - 1;
        if self.schedule[last].principal.is_zero() {
            return Err(invalid(
                "schedule.principal",
                format!(
                    "schedule[{last}]: the last instalment must repay principal (no instalment \
                     may follow the one that completes the principal)"
                ),
            ));
        }
        self.loan_account_number = account.to_owned();
        Ok(self)
    }

    /// The checks against the bank's approval, once there is one: at most the approved amount,
    /// paid out on or after the recommendation, and every instalment due by the end of the
    /// approved term.
    pub fn within(
        &self,
        approval: &Approval,
        recommended_on: Option<NaiveDate>,
        policy: &IntakePolicy,
    ) -> Result<(), DomainError> {
        if self.amount > approval.amount() {
            return Err(invalid(
                "amount",
                format!(
                    "must be above 0 and at most the approved {}",
                    approval.amount()
                ),
            ));
        }
        if recommended_on.is_some_and(|r| self.disbursed_on < r) {
            return Err(invalid(
                "disbursed_on",
                "must be between the recommendation date and today".into(),
            ));
        }
        self.interest_within(approval, policy)?;
        let term = approval.term_months();
        let term_ends = term_end(self.disbursed_on, term);
        if let Some((i, _)) = self
            .schedule
            .iter()
            .enumerate()
            .find(|(_, inst)| inst.due_on > term_ends)
        {
            return Err(invalid(
                "schedule.due_on",
                format!("schedule[{i}]: after the end of the {term}-month term, {term_ends}"),
            ));
        }
        Ok(())
    }
}

impl DisbursementRecord {
    /// The schedule's interest against the approved rate: at most twice the simple interest
    /// on the whole amount over the schedule's span (from the payout to the last due date, a
    /// 365-day year), plus a fen per instalment for rounding. Any schedule the rate can give
    /// (equal instalments, equal principal, interest on the original principal, interest
    /// periodically with principal at maturity) owes less than the simple interest on the whole
    /// amount; twice it leaves room for day counts and fees, and catches an interest worked out
    /// from a percentage as a fraction or a monthly rate as an annual one. An approval recorded
    /// before the policy (of the payout's day) bounded rates, at a rate outside its range (a
    /// monthly rate taken as yearly), is held to the range's top instead: the interest its
    /// real rate gives is not refused for a rate nobody can correct any more.
    fn interest_within(
        &self,
        approval: &Approval,
        policy: &IntakePolicy,
    ) -> Result<(), DomainError> {
        let Some(last) = self.schedule.last() else {
            return Ok(());
        };
        let rate = match check_rate_range(approval.annual_rate(), policy) {
            Ok(()) => approval.annual_rate(),
            Err(_) => policy.max_annual_rate.unwrap_or(Decimal::ONE),
        };
        let days = Decimal::from((last.due_on - self.disbursed_on).num_days());
        let rounding = Decimal::new(1, 2) * Decimal::from(self.schedule.len());
        let ceiling = self
            .amount
            .amount()
            .checked_mul(rate)
            .and_then(|v| v.checked_mul(Decimal::TWO))
            .and_then(|v| v.checked_mul(days))
            .and_then(|v| v.checked_div(Decimal::from(365)))
            .and_then(|v| v.checked_add(rounding))
            .map(|v| v.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::AwayFromZero));
        let total = self.schedule.iter().try_fold(Decimal::ZERO, |sum, inst| {
            sum.checked_add(inst.interest.amount())
        });
        match (total, ceiling) {
            (Some(total), Some(ceiling)) if total <= ceiling => Ok(()),
            (total, ceiling) => Err(invalid(
                "schedule.interest",
                format!(
                    "interest instalments add up to {}, more than {} (twice the simple \
                     interest on {} at the approved annual rate {} over the schedule's {days} \
                     days, plus a fen per instalment)",
                    total.map_or_else(|| "more than can be counted".into(), |t| t.to_string()),
                    ceiling.map_or_else(|| "-".into(), |c| c.to_string()),
                    self.amount,
                    rate,
                ),
            )),
        }
    }
}

/// The last day of a term of `months` from `start`: the same day of the month, or the month's
/// last day when it is shorter (a loan paid out on 31 January for one month ends on the last
/// day of February).
pub fn term_end(start: NaiveDate, months: u32) -> NaiveDate {
    start
        .checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

fn invalid(field: &'static str, message: String) -> DomainError {
    DomainError::invalid(field, "R-IN-6", message)
}
