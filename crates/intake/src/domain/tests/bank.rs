//! The partner bank's approval and disbursement (R-IN-6), and the term cap it is held to
//! (R-IN-3): given a decision or a reported disbursement, what is accepted and what is refused.

use chrono::{Months, NaiveDate};
use fupin_kernel::Money;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::fixtures::*;
use crate::domain::{
    ApplicantKind, DomainError,
    bank::{
        Approval, DisbursementRecord, InstalmentRecord, annual_rate, check_unused_approval,
        check_unused_reason, rejection_reason, term_end,
    },
};

fn rate(s: &str) -> Decimal {
    s.parse().expect("rate")
}

/// An approval of `amount` at 4.35% for `term_months`, as recorded.
fn approval(amount: &str, term_months: u32) -> Approval {
    Approval::recorded(money(amount), rate("0.0435"), term_months)
}

/// An application of `kind` for `requested`, approved for `amount` and `term_months`.
fn approve(
    kind: ApplicantKind,
    requested: &str,
    amount: &str,
    term_months: u32,
) -> Result<Approval, DomainError> {
    Approval::new(
        kind,
        money(requested),
        money(amount),
        rate("0.0435"),
        term_months,
        policy(),
    )
}

/// The field of a bad-input error; every rule here is R-IN-6 but the term cap's (R-IN-3).
fn field_of(e: DomainError) -> &'static str {
    match e {
        DomainError::Invalid { field, rule, .. } => {
            let expected = if field == "term_months" {
                "R-IN-3"
            } else {
                "R-IN-6"
            };
            assert_eq!(rule, expected, "the rule of {field}");
            field
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn instalment(due: &str, principal: &str, interest: &str) -> InstalmentRecord {
    InstalmentRecord {
        due_on: date(due),
        principal: money(principal),
        interest: money(interest),
    }
}

/// Disbursed on 2026-03-10 after a recommendation on 2026-03-02, checked on 2026-03-20.
fn disburse(
    amount: &str,
    schedule: Vec<InstalmentRecord>,
    approved: &Approval,
) -> Result<DisbursementRecord, DomainError> {
    DisbursementRecord {
        loan_id: Uuid::nil(),
        loan_account_number: "6228-0001".to_owned(),
        amount: money(amount),
        disbursed_on: date("2026-03-10"),
        schedule,
    }
    .checked(
        approved,
        Some(date("2026-03-02")),
        date("2026-03-20"),
        policy(),
    )
}

// R-IN-6: a bank approves more than zero and at most what was applied for.
#[test]
fn an_approval_is_above_zero_and_at_most_the_request() {
    let household = ApplicantKind::Household;
    let full = approve(household, "20000.00", "20000.00", 36).expect("all of it");
    assert_eq!(
        (full.amount(), full.annual_rate(), full.term_months()),
        (money("20000.00"), rate("0.0435"), 36)
    );
    assert!(approve(household, "20000.00", "0.01", 1).is_ok());
    for amount in ["0.00", "20000.01"] {
        let e = approve(household, "20000.00", amount, 12).unwrap_err();
        assert_eq!(field_of(e), "approved_amount", "{amount}");
    }
}

// R-IN-3 via R-IN-6: the approved term is within the programme's cap for the applicant's kind.
#[test]
fn an_approved_term_is_within_the_cap_of_the_applicants_kind() {
    for kind in [
        ApplicantKind::Household,
        ApplicantKind::Enterprise,
        ApplicantKind::Cooperative,
    ] {
        let cap = crate::domain::bank::max_term_months(kind, policy());
        assert!(approve(kind, "20000.00", "100.00", cap).is_ok());
        for term in [0, cap + 1] {
            let e = approve(kind, "20000.00", "100.00", term).unwrap_err();
            assert_eq!(field_of(e), "term_months", "{kind:?} {term}");
        }
    }
}

// R-IN-6: a rate is a fraction strictly between 0 and 1, to at most six places.
#[test]
fn a_rate_is_a_fraction_between_zero_and_one_to_six_places() {
    for ok in ["0.000001", "0.0435", "0.999999", "0.04350000"] {
        assert!(annual_rate(rate(ok)).is_ok(), "{ok}");
    }
    assert_eq!(
        annual_rate(rate("0.04350000")).unwrap().to_string(),
        "0.0435"
    );
    for bad in ["0", "1", "1.000000", "0.0000001", "0.9999999", "2"] {
        assert_eq!(
            field_of(annual_rate(rate(bad)).unwrap_err()),
            "annual_rate",
            "{bad}"
        );
    }
    let e = Approval::new(
        ApplicantKind::Household,
        money("100.00"),
        money("100.00"),
        rate("0"),
        12,
        policy(),
    )
    .unwrap_err();
    assert_eq!(field_of(e), "annual_rate");
    let trimmed = Approval::new(
        ApplicantKind::Household,
        money("100.00"),
        money("100.00"),
        rate("0.04350"),
        12,
        policy(),
    )
    .expect("approved");
    assert_eq!(
        trimmed.annual_rate().to_string(),
        "0.0435",
        "kept without trailing zeros"
    );
}

// R-IN-6: a rejection says why; the reason is kept trimmed.
#[test]
fn a_rejection_states_its_reason() {
    assert_eq!(
        rejection_reason("  no collateral needed, but no income  ").unwrap(),
        "no collateral needed, but no income"
    );
    for bad in ["", "   ", "\u{202e}", "a\u{0}b"] {
        assert_eq!(
            field_of(rejection_reason(bad).unwrap_err()),
            "rejection_reason",
            "{bad:?}"
        );
    }
}

// R-IN-6, R-X-3: the other outcome's fields sent with a decision (a form's leftovers, a core's
// template) are checked as that outcome would check them, so bad input is refused by name
// whatever the outcome; valid ones pass (and are not recorded).
#[test]
fn the_other_outcomes_fields_are_checked_and_not_recorded() {
    let unused = |amount: Option<&str>, rate: Option<&str>, term: Option<u32>| {
        check_unused_approval(
            ApplicantKind::Household,
            money("20000"),
            amount.map(money),
            rate.map(self::rate),
            term,
            policy(),
        )
    };
    assert!(unused(None, None, None).is_ok());
    assert!(unused(Some("20000"), Some("0.0435"), Some(36)).is_ok());
    assert_eq!(
        field_of(unused(Some("20000.01"), None, None).unwrap_err()),
        "approved_amount"
    );
    assert_eq!(
        field_of(unused(None, Some("1"), None).unwrap_err()),
        "annual_rate"
    );
    assert_eq!(
        field_of(unused(None, None, Some(37)).unwrap_err()),
        "term_months"
    );
    assert!(check_unused_reason("").is_ok());
    assert!(check_unused_reason("  ").is_ok());
    assert!(check_unused_reason("a note").is_ok());
    for bad in ["\u{202e}", "a\u{0}b"] {
        assert_eq!(
            field_of(check_unused_reason(bad).unwrap_err()),
            "rejection_reason"
        );
    }
}

// R-IN-6: the usual schedule of these loans, interest quarterly and the principal at
// maturity, is accepted, and the record keeps what the bank reported.
#[test]
fn interest_quarterly_and_principal_at_maturity_is_accepted() {
    let approved = approval("20000.00", 12);
    let schedule = vec![
        instalment("2026-06-10", "0", "217.50"),
        instalment("2026-09-10", "0", "217.50"),
        instalment("2026-12-10", "0", "217.50"),
        instalment("2027-03-10", "20000.00", "217.50"),
    ];
    let record = disburse("20000.00", schedule.clone(), &approved).expect("accepted");
    assert_eq!(record.schedule, schedule);
    assert_eq!(record.amount, money("20000.00"));
    assert_eq!(record.loan_account_number, "6228-0001");
}

// R-IN-6: a bank may pay out less than it approved, never more, and never nothing.
#[test]
fn the_amount_paid_out_is_above_zero_and_at_most_the_approval() {
    let approved = approval("20000.00", 12);
    let at_maturity = |amount: &str| vec![instalment("2027-03-10", amount, "0")];
    assert!(disburse("19999.99", at_maturity("19999.99"), &approved).is_ok());
    assert!(disburse("20000.00", at_maturity("20000.00"), &approved).is_ok());
    let e = disburse("20000.01", at_maturity("20000.01"), &approved).unwrap_err();
    assert_eq!(field_of(e), "amount");
    let e = disburse("0", vec![instalment("2027-03-10", "0", "1.00")], &approved).unwrap_err();
    assert_eq!(field_of(e), "amount");
}

// R-IN-6: the schedule's principal is exactly what was paid out, to the fen.
#[test]
fn the_principal_adds_up_to_the_amount_paid_out_to_the_fen() {
    let approved = approval("20000.00", 12);
    for (first, last) in [("9999.99", "10000.00"), ("10000.00", "10000.01")] {
        let e = disburse(
            "20000.00",
            vec![
                instalment("2026-09-10", first, "0"),
                instalment("2027-03-10", last, "0"),
            ],
            &approved,
        )
        .unwrap_err();
        assert_eq!(field_of(e), "schedule.principal", "{first} + {last}");
    }
}

// R-IN-6: instalments fall after the payout, in order, and no later than the term's end.
#[test]
fn instalments_fall_in_order_within_the_term() {
    let approved = approval("1200.00", 12);
    let cases = [
        // due on the payout day itself
        (
            vec![instalment("2026-03-10", "1200.00", "0")],
            "schedule.due_on",
        ),
        // two on one day
        (
            vec![
                instalment("2026-09-10", "600.00", "0"),
                instalment("2026-09-10", "600.00", "0"),
            ],
            "schedule.due_on",
        ),
        // out of order
        (
            vec![
                instalment("2026-09-10", "600.00", "0"),
                instalment("2026-08-10", "600.00", "0"),
            ],
            "schedule.due_on",
        ),
        // a day after the twelve months end
        (
            vec![instalment("2027-03-11", "1200.00", "0")],
            "schedule.due_on",
        ),
        // an empty schedule
        (vec![], "schedule"),
        // an instalment owing nothing
        (
            vec![
                instalment("2026-09-10", "0", "0"),
                instalment("2027-03-10", "1200.00", "0"),
            ],
            "schedule.principal",
        ),
    ];
    for (schedule, field) in cases {
        let e = disburse("1200.00", schedule.clone(), &approved).unwrap_err();
        assert_eq!(field_of(e), field, "{schedule:?}");
    }
    assert!(
        disburse(
            "1200.00",
            vec![
                instalment("2026-03-11", "1.00", "0"),
                instalment("2027-03-10", "1199.00", "0"),
            ],
            &approved,
        )
        .is_ok(),
        "the day after the payout and the term's last day are both inside"
    );
}

// R-IN-6: a term that starts on a day its last month lacks ends on that month's last day.
#[test]
fn a_term_from_the_end_of_a_month_ends_at_the_end_of_a_shorter_month() {
    assert_eq!(term_end(date("2026-01-31"), 1), date("2026-02-28"));
    assert_eq!(term_end(date("2027-01-31"), 13), date("2028-02-29"));
    assert_eq!(term_end(date("2026-03-10"), 36), date("2029-03-10"));
}

// R-IN-6: paid out between the recommendation and today, both days included.
#[test]
fn the_payout_is_dated_between_the_recommendation_and_today() {
    let approved = approval("100.00", 12);
    let on = |disbursed: &str| {
        DisbursementRecord {
            loan_id: Uuid::nil(),
            loan_account_number: "A1".to_owned(),
            amount: money("100.00"),
            disbursed_on: date(disbursed),
            schedule: vec![instalment("2027-01-01", "100.00", "0")],
        }
        .checked(
            &approved,
            Some(date("2026-03-02")),
            date("2026-03-20"),
            policy(),
        )
    };
    assert!(on("2026-03-02").is_ok());
    assert!(on("2026-03-20").is_ok());
    for bad in ["2026-03-01", "2026-03-21"] {
        assert_eq!(field_of(on(bad).unwrap_err()), "disbursed_on", "{bad}");
    }
}

// R-IN-6: the loan account number is what a core system gives: letters, digits and dashes.
#[test]
fn a_loan_account_number_is_letters_digits_and_dashes() {
    let approved = approval("100.00", 12);
    let with = |account: &str| {
        DisbursementRecord {
            loan_id: Uuid::nil(),
            loan_account_number: account.to_owned(),
            amount: money("100.00"),
            disbursed_on: date("2026-03-10"),
            schedule: vec![instalment("2027-01-01", "100.00", "0")],
        }
        .checked(&approved, None, date("2026-03-20"), policy())
    };
    assert_eq!(
        with("  6228-48-0001  ").unwrap().loan_account_number,
        "6228-48-0001"
    );
    assert!(with(&"9".repeat(64)).is_ok());
    assert!(with("A").is_ok());
    for bad in [
        "",
        "  ",
        "6228 0001",
        "6228_0001",
        "账号1",
        &"9".repeat(65),
        "-",
        "---",
        &"-".repeat(64),
        "-6228",
        "6228-",
    ] {
        assert_eq!(
            field_of(with(bad).unwrap_err()),
            "loan_account_number",
            "{bad:?}"
        );
    }
}

// R-IN-6: nothing is owed once the principal is repaid: the last instalment repays principal,
// so none follows the one that completes it (interest-only instalments before it are fine).
#[test]
fn no_instalment_follows_the_principal_repaid() {
    let approved = approval("20000.00", 12);
    let e = disburse(
        "20000.00",
        vec![
            instalment("2026-04-10", "20000.00", "72.50"),
            instalment("2026-05-10", "0", "72.50"),
        ],
        &approved,
    )
    .unwrap_err();
    assert_eq!(field_of(e), "schedule.principal");
    assert!(
        disburse(
            "20000.00",
            vec![
                instalment("2026-04-10", "0", "72.50"),
                instalment("2026-05-10", "20000.00", "72.50"),
            ],
            &approved,
        )
        .is_ok()
    );
}

// R-IN-6: the schedule's interest is at most twice the simple interest on the whole amount at
// the approved rate over the schedule's span, plus a fen an instalment: 20,000.00 at 4.35% from
// 2026-03-10 to 2027-03-10 (365 days) is 870.00 simple, so one instalment may owe 1,740.01 and
// not a fen more; the same interest worked out from 4.35 as a fraction is refused.
#[test]
fn the_interest_is_within_twice_the_simple_interest_at_the_approved_rate() {
    let approved = approval("20000.00", 12);
    let once = |interest: &str| {
        disburse(
            "20000.00",
            vec![instalment("2027-03-10", "20000.00", interest)],
            &approved,
        )
    };
    assert!(once("1740.01").is_ok());
    assert_eq!(field_of(once("1740.02").unwrap_err()), "schedule.interest");
    assert_eq!(field_of(once("87000.00").unwrap_err()), "schedule.interest");
    // Four quarterly instalments: 870.00 * 2 + 0.04.
    let quarterly = |last: &str| {
        disburse(
            "20000.00",
            vec![
                instalment("2026-06-10", "0", "435.00"),
                instalment("2026-09-10", "0", "435.00"),
                instalment("2026-12-10", "0", "435.00"),
                instalment("2027-03-10", "20000.00", last),
            ],
            &approved,
        )
    };
    assert!(quarterly("435.04").is_ok());
    assert_eq!(
        field_of(quarterly("435.05").unwrap_err()),
        "schedule.interest"
    );
}

// R-IN-6, R-X-4: the approved rate is within the policy's plausible range, both ends included
// (shipped from 2026-12-04: 1% to 24% a year): a monthly rate or a percentage divided by 100
// twice is refused, with the approval's other fields; a policy version without a range (the
// shipped one before) bounds only by 0 and 1.
#[test]
fn an_approved_rate_is_within_the_policys_range() {
    let with = |r: &str, policy: &fupin_kernel::IntakePolicy| {
        Approval::new(
            ApplicantKind::Household,
            money("20000.00"),
            money("20000.00"),
            rate(r),
            12,
            policy,
        )
    };
    let ranged = ranged_policy();
    for ok in ["0.01", "0.0435", "0.24"] {
        assert!(with(ok, &ranged).is_ok(), "{ok}");
    }
    for bad in ["0.009999", "0.003625", "0.000435", "0.240001", "0.99"] {
        assert_eq!(
            field_of(with(bad, &ranged).unwrap_err()),
            "annual_rate",
            "{bad}"
        );
        let unused = check_unused_approval(
            ApplicantKind::Household,
            money("20000.00"),
            None,
            Some(rate(bad)),
            None,
            &ranged,
        );
        assert_eq!(field_of(unused.unwrap_err()), "annual_rate", "{bad}");
    }
    assert_eq!(policy().min_annual_rate, None);
    for ok in ["0.000001", "0.003625", "0.999999"] {
        assert!(with(ok, policy()).is_ok(), "{ok}");
    }
}

// R-IN-6, R-X-4: an approval recorded before the range, at a rate outside it, is held to the
// range's top for its schedule's interest: a monthly rate taken as yearly does not refuse the
// interest the real rate gives (870.00 a year on 20,000 at 4.35%), which the recorded rate
// alone would (ceiling 145.01).
#[test]
fn an_approval_from_before_the_range_is_held_to_its_top() {
    let monthly_as_yearly = Approval::recorded(money("20000.00"), rate("0.003625"), 12);
    let record = |policy: &fupin_kernel::IntakePolicy| {
        DisbursementRecord {
            loan_id: Uuid::nil(),
            loan_account_number: "6228-0001".to_owned(),
            amount: money("20000.00"),
            disbursed_on: date("2026-03-10"),
            schedule: vec![instalment("2027-03-10", "20000.00", "870.00")],
        }
        .checked(&monthly_as_yearly, None, date("2026-03-20"), policy)
    };
    assert_eq!(field_of(record(policy()).unwrap_err()), "schedule.interest");
    assert!(record(&ranged_policy()).is_ok());
}

/// The shipped policy with the shipped later version's rate range (0.01 to 0.24).
fn ranged_policy() -> fupin_kernel::IntakePolicy {
    let mut ranged = policy().clone();
    ranged.min_annual_rate = Some(rate("0.01"));
    ranged.max_annual_rate = Some(rate("0.24"));
    ranged
}

/// A schedule of `n` instalments a month apart from the payout, splitting `fen` of principal.
fn monthly(start: NaiveDate, parts: &[i64]) -> Vec<InstalmentRecord> {
    parts
        .iter()
        .enumerate()
        .map(|(i, fen)| InstalmentRecord {
            due_on: start + Months::new(i as u32 + 1),
            principal: Money::from_fen(*fen).expect("fen"),
            // A fen of interest: every instalment owes something, within any rate's ceiling.
            interest: Money::from_fen(1).expect("fen"),
        })
        .collect()
}

proptest! {
    // R-IN-6: a monthly schedule within the term is accepted exactly when its principal adds
    // up to the amount paid out and that amount is within the approval.
    #[test]
    fn a_schedule_is_accepted_exactly_when_it_adds_up_within_the_approval(
        parts in prop::collection::vec(0i64..=2_000_000, 0..=35)
            .prop_flat_map(|p| (Just(p), 1i64..=2_000_000))
            .prop_map(|(mut p, last)| { p.push(last); p }),
        approved_fen in 1i64..=5_000_000,
        paid_delta in -2i64..=2,
    ) {
        let start = date("2026-03-10");
        let total: i64 = parts.iter().sum();
        let paid = total + paid_delta;
        prop_assume!(paid > 0);
        let approved = Approval::recorded(
            Money::from_fen(approved_fen).expect("fen"),
            rate("0.0435"),
            parts.len() as u32,
        );
        let result = DisbursementRecord {
            loan_id: Uuid::nil(),
            loan_account_number: "A-1".to_owned(),
            amount: Money::from_fen(paid).expect("fen"),
            disbursed_on: start,
            schedule: monthly(start, &parts),
        }
        .checked(&approved, None, start, policy());
        let expected_ok = paid_delta == 0 && paid <= approved_fen;
        prop_assert_eq!(result.is_ok(), expected_ok, "{:?}", result);
        // What the request says on its own is checked before what it says against the
        // approval (README "Who before what"): a sum that does not add up comes first.
        if let Err(e) = result {
            let field = field_of(e);
            if paid_delta != 0 {
                prop_assert_eq!(field, "schedule.principal");
            } else {
                prop_assert_eq!(field, "amount");
            }
        }
    }

    // R-IN-6: the last instalment may fall on the term's last day, never after it.
    #[test]
    fn the_last_instalment_falls_on_or_before_the_terms_end(
        start_offset in 0u64..1500,
        term in 1u32..=36,
        after in 0u64..=3,
    ) {
        let start = date("2024-01-01") + chrono::Days::new(start_offset);
        let end = term_end(start, term);
        let due = end + chrono::Days::new(after);
        let approved = approval("100.00", term);
        let result = DisbursementRecord {
            loan_id: Uuid::nil(),
            loan_account_number: "A-1".to_owned(),
            amount: money("100.00"),
            disbursed_on: start,
            schedule: vec![InstalmentRecord { due_on: due, principal: money("100.00"), interest: Money::ZERO }],
        }
        .checked(&approved, None, start, policy());
        prop_assert_eq!(result.is_ok(), after == 0);
    }
}
