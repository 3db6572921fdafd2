//! `admission::check` (准入): households and enterprises (R-IN-3, R-CR-3, R-CR-8, R-CR-10,
//! R-RK-9, R-ID-4). A refusal names every rule that failed.

use chrono::NaiveDate;
use fupin_kernel::{CreditGrade, Money};

use super::fixtures::*;
use crate::domain::{
    DomainError, Purpose,
    admission::{
        AdmissionFacts, CreditStanding, RatingFact, Timeline, check, effective_line, standing,
    },
    form::{Applicant, ApplicationForm},
};

fn today() -> NaiveDate {
    date("2025-06-16")
}

fn admit(form: &ApplicationForm, facts: &AdmissionFacts) -> Result<(), DomainError> {
    check(form, facts, policy(), today())
}

fn admit_on(
    form: &ApplicationForm,
    facts: &AdmissionFacts,
    on: NaiveDate,
) -> Result<(), DomainError> {
    check(form, facts, policy(), on)
}

fn with_rating(rating: RatingFact) -> AdmissionFacts {
    AdmissionFacts {
        rating: Some(rating),
        ..household_facts(today())
    }
}

fn sorted(mut rules: Vec<&'static str>) -> Vec<&'static str> {
    rules.sort_unstable();
    rules
}

// R-IN-3
#[test]
fn a_registered_a_grade_household_within_every_limit_is_admitted() {
    assert_eq!(admit(&household_form(), &household_facts(today())), Ok(()));
}

// R-IN-3, R-CR-3, R-CR-10, R-RK-9
#[test]
fn every_failed_household_rule_is_listed_in_one_refusal() {
    // given an unregistered, blacklisted household without a rating, asking for a consumption
    // loan it will not use itself, in a village and town where lending is suspended
    let mut form = household_form();
    form.purpose = Purpose::Consumption;
    let h = household_mut(&mut form);
    h.poor_household_number = "  ".to_owned();
    h.self_use = false;
    let facts = AdmissionFacts {
        rating: None,
        earlier_ratings: Vec::new(),
        credit_village: Timeline::default(),
        blacklisted: true,
        suspended_areas: vec![area(VILLAGE), area(TOWN)],
        enterprise_qualified: Timeline::default(),
        enterprise_area: None,
    };
    // when
    let failures = refusal_failures(admit(&form, &facts));
    // then every rule is named: registration, purpose and self-use (R-IN-3), the missing
    // rating (R-CR-3), the blacklist (R-CR-10), and both suspended areas (R-RK-9)
    let rules: Vec<_> = failures.iter().map(|f| f.rule).collect();
    assert_eq!(
        sorted(rules),
        vec![
            "R-CR-10", "R-CR-3", "R-IN-3", "R-IN-3", "R-IN-3", "R-RK-9", "R-RK-9"
        ],
        "{failures:#?}"
    );
    let fields: Vec<_> = failures.iter().filter_map(|f| f.field).collect();
    for field in [
        "household.poor_household_number",
        "household.household_borrows_uses_repays",
        "purpose",
    ] {
        assert!(fields.contains(&field), "{field} not named: {failures:#?}");
    }
    let suspended: Vec<_> = failures
        .iter()
        .filter(|f| f.rule == "R-RK-9")
        .map(|f| f.message.clone())
        .collect();
    assert!(suspended[0].contains(VILLAGE) && suspended[1].contains(TOWN));
}

// R-IN-3: amount and term caps also fail at admission, next to the grade's line
#[test]
fn amount_over_the_cap_and_term_over_36_fail_together_with_the_line() {
    let mut form = household_form();
    form.amount = money("50000.01");
    form.term_months = 37;
    let rules = refused_rules(admit(&form, &household_facts(today())));
    assert_eq!(sorted(rules), vec!["R-CR-8", "R-IN-3", "R-IN-3"]);
}

// R-IN-3: age 18 to 65, both inclusive
#[test]
fn borrower_turning_18_today_is_admitted_and_the_day_before_is_refused() {
    // given a borrower whose 18th birthday is today
    let born = born_years_before(today(), 18);
    let form = household_form_born(born);
    // then admitted today
    assert_eq!(admit(&form, &household_facts(today())), Ok(()));
    // and refused the day before, aged 17
    let yesterday = minus_days(today(), 1);
    let failures = refusal_failures(admit_on(&form, &household_facts(yesterday), yesterday));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].rule, "R-IN-3");
    assert_eq!(failures[0].field, Some("household.resident_id"));
}

// R-IN-3
#[test]
fn borrower_aged_65_is_admitted_until_the_day_before_the_66th_birthday() {
    // given a borrower whose 66th birthday is today
    let born = born_years_before(today(), 66);
    let form = household_form_born(born);
    let yesterday = minus_days(today(), 1);
    // then on the day before (still 65) admitted
    assert_eq!(
        admit_on(&form, &household_facts(yesterday), yesterday),
        Ok(())
    );
    // and on the 66th birthday refused
    let failures = refusal_failures(admit(&form, &household_facts(today())));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0].rule, failures[0].field),
        ("R-IN-3", Some("household.resident_id"))
    );
    // and on the 65th birthday admitted
    let birthday_65 = born_years_before(today(), 1);
    assert_eq!(
        admit_on(&form, &household_facts(birthday_65), birthday_65),
        Ok(())
    );
}

// R-IN-3: a 29 February birthday is reached on 1 March in common years
#[test]
fn leap_day_borrower_turns_18_on_1_march_of_a_common_year() {
    let form = household_form_born(date("2008-02-29"));
    let (feb28, mar1) = (date("2026-02-28"), date("2026-03-01"));
    assert_eq!(
        refused_rules(admit_on(&form, &household_facts(feb28), feb28)),
        vec!["R-IN-3"]
    );
    assert_eq!(admit_on(&form, &household_facts(mar1), mar1), Ok(()));
}

// R-CR-3
#[test]
fn grade_a_or_better_passes_and_b_c_fail() {
    for grade in [CreditGrade::Aaa, CreditGrade::Aa, CreditGrade::A] {
        assert_eq!(
            admit(&household_form(), &with_rating(rating(grade, today()))),
            Ok(()),
            "{grade}"
        );
    }
    for grade in [CreditGrade::B, CreditGrade::C] {
        let mut r = rating(grade, today());
        // even with a line: the grade itself disqualifies
        r.credit_line = money("20000.00");
        assert_eq!(
            refused_rules(admit(&household_form(), &with_rating(r))),
            vec!["R-CR-3"],
            "{grade}"
        );
    }
}

// R-CR-3, R-CR-2: a veto excludes the household whatever its grade
#[test]
fn a_vetoed_aaa_rating_fails() {
    let mut r = rating(CreditGrade::Aaa, today());
    r.veto = true;
    assert_eq!(
        refused_rules(admit(&household_form(), &with_rating(r))),
        vec!["R-CR-3"]
    );
}

// R-CR-3: a revoked rating (no grade) and no rating at all both fail
#[test]
fn revoked_or_missing_rating_fails() {
    let mut r = rating(CreditGrade::A, today());
    r.grade = None;
    assert_eq!(
        refused_rules(admit(&household_form(), &with_rating(r))),
        vec!["R-CR-3"]
    );
    let facts = AdmissionFacts {
        rating: None,
        ..household_facts(today())
    };
    assert_eq!(
        refused_rules(admit(&household_form(), &facts)),
        vec!["R-CR-3"]
    );
}

// R-CR-3, R-CR-4: effective from its first day, not before
#[test]
fn rating_effective_from_today_passes_and_from_tomorrow_fails() {
    let mut r = rating(CreditGrade::A, today());
    r.effective_from = Some(today());
    assert_eq!(admit(&household_form(), &with_rating(r.clone())), Ok(()));
    r.effective_from = Some(plus_days(today(), 1));
    assert_eq!(
        refused_rules(admit(&household_form(), &with_rating(r.clone()))),
        vec!["R-CR-3"]
    );
    // a rating still under notice (no effective date) is not effective either
    r.effective_from = None;
    assert_eq!(
        refused_rules(admit(&household_form(), &with_rating(r))),
        vec!["R-CR-3"]
    );
}

// R-CR-3, R-CR-4, R-CR-5: a rating announced ahead of its day (a renewal noticed before the
// rating in force expires) leaves the earlier one in force until that day, then takes over
#[test]
fn a_rating_announced_ahead_leaves_the_earlier_one_in_force_until_its_day() {
    // given A in force, expiring the day the announced AA starts
    let renewal_day = plus_days(today(), 5);
    let mut a = rating(CreditGrade::A, today());
    a.expires_on = Some(renewal_day);
    let mut aa = rating(CreditGrade::Aa, today());
    aa.effective_from = Some(renewal_day);
    aa.expires_on = Some(plus_days(renewal_day, 365));
    let facts = AdmissionFacts {
        rating: Some(aa.clone()),
        earlier_ratings: vec![a.clone()],
        ..household_facts(today())
    };
    let asking = |amount: &str| {
        let mut form = household_form();
        form.amount = Money::parse(amount).unwrap();
        form
    };
    // then A's line until the day before, AA's from the day
    let eve = minus_days(renewal_day, 1);
    assert_eq!(facts.rating_on(eve), Some(&a));
    assert_eq!(admit_on(&asking("20000"), &facts, eve), Ok(()));
    assert_eq!(
        refused_rules(admit_on(&asking("20000.01"), &facts, eve)),
        vec!["R-CR-8"]
    );
    assert_eq!(facts.rating_on(renewal_day), Some(&aa));
    assert_eq!(admit_on(&asking("30000"), &facts, renewal_day), Ok(()));
    // before any of them started, the newest is shown (not yet effective: R-CR-3)
    let before_all = minus_days(a.effective_from.unwrap(), 1);
    assert_eq!(facts.rating_on(before_all), Some(&aa));
    assert_eq!(
        refused_rules(admit_on(&asking("1000"), &facts, before_all)),
        vec!["R-CR-3"]
    );
    // the latest earlier one whose day has come counts, not an older one
    let mut b = rating(CreditGrade::B, today());
    b.effective_from = Some(plus_days(today(), 2));
    let facts = AdmissionFacts {
        earlier_ratings: vec![a.clone(), b.clone()],
        ..facts
    };
    assert_eq!(facts.rating_on(plus_days(today(), 1)), Some(&a));
    assert_eq!(facts.rating_on(plus_days(today(), 2)), Some(&b));
    assert_eq!(
        refused_rules(admit_on(&asking("1000"), &facts, plus_days(today(), 3))),
        vec!["R-CR-3"]
    );
}

// R-CR-3, R-CR-5: the expiry date is exclusive
#[test]
fn rating_expiring_today_fails_and_expiring_tomorrow_passes() {
    let mut r = rating(CreditGrade::A, today());
    r.expires_on = Some(today());
    assert_eq!(
        refused_rules(admit(&household_form(), &with_rating(r.clone()))),
        vec!["R-CR-3"]
    );
    r.expires_on = Some(plus_days(today(), 1));
    assert_eq!(admit(&household_form(), &with_rating(r.clone())), Ok(()));
    r.expires_on = None;
    assert_eq!(admit(&household_form(), &with_rating(r)), Ok(()));
}

// R-CR-8
#[test]
fn amount_equal_to_the_line_passes_and_one_fen_more_fails_on_the_line() {
    // given an A rating with the 20,000 line, outside a credit village
    let facts = household_facts(today());
    let mut form = household_form();
    form.amount = money("20000.00");
    assert_eq!(admit(&form, &facts), Ok(()));
    // when one fen more is asked
    form.amount = money("20000.01");
    let failures = refusal_failures(admit(&form, &facts));
    // then only the line fails (still far below the 50,000 cap)
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0].rule, failures[0].field),
        ("R-CR-8", Some("amount"))
    );
}

// R-CR-8: the credit service sets the line; a credit grade announced without one grants
// nothing, and the refusal says so instead of citing "a line of 0"
#[test]
fn credit_grade_announced_without_a_line_is_refused_naming_the_missing_line() {
    let mut r = rating(CreditGrade::Aa, today());
    r.credit_line = Money::ZERO;
    let failures = refusal_failures(admit(&household_form(), &with_rating(r.clone())));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0].rule, failures[0].field),
        ("R-CR-8", Some("amount"))
    );
    assert!(
        failures[0].message.contains("no credit line with grade AA"),
        "{}",
        failures[0].message
    );
    // a credit village raises nothing from nothing
    let facts = AdmissionFacts {
        credit_village: Timeline::always(true),
        ..with_rating(r)
    };
    assert_eq!(
        refused_rules(admit(&household_form(), &facts)),
        vec!["R-CR-8"]
    );
}

// R-CR-8: a credit village raises the line by 20%
#[test]
fn credit_village_raises_the_a_line_from_20000_to_24000() {
    let facts = AdmissionFacts {
        credit_village: Timeline::always(true),
        ..household_facts(today())
    };
    let r = facts.rating.clone().unwrap();
    assert_eq!(effective_line(&r, true, policy()), money("24000.00"));
    assert_eq!(effective_line(&r, false, policy()), money("20000.00"));
    let mut form = household_form();
    form.amount = money("24000.00");
    assert_eq!(admit(&form, &facts), Ok(()));
    form.amount = money("24000.01");
    assert_eq!(refused_rules(admit(&form, &facts)), vec!["R-CR-8"]);
}

// R-CR-3, R-CR-8, R-RK-10: the standing recorded with an approval is the credit admission
// judged on that day: the grade in force, the line as raised for a credit village (its own
// village only), nothing for a household that is no credit household, or for an enterprise.
#[test]
fn the_standing_is_the_credit_admission_judged_on() {
    let facts = AdmissionFacts {
        credit_village: Timeline::always(true),
        ..household_facts(today())
    };
    assert_eq!(
        standing(&household_form(), &facts, policy(), today()),
        Some(CreditStanding {
            grade: "A".into(),
            credit_line: money("24000.00"),
            credit_village: true,
        })
    );
    let elsewhere = AdmissionFacts {
        rating: Some(RatingFact {
            village_code: "410311100202".into(),
            ..rating(CreditGrade::Aa, today())
        }),
        ..facts.clone()
    };
    assert_eq!(
        standing(&household_form(), &elsewhere, policy(), today()),
        Some(CreditStanding {
            grade: "AA".into(),
            credit_line: money("30000.00"),
            credit_village: false,
        })
    );
    let vetoed = AdmissionFacts {
        rating: Some(RatingFact {
            veto: true,
            ..rating(CreditGrade::Aaa, today())
        }),
        ..household_facts(today())
    };
    assert_eq!(
        standing(&household_form(), &vetoed, policy(), today()),
        None
    );
    let b = with_rating(rating(CreditGrade::B, today()));
    assert_eq!(standing(&household_form(), &b, policy(), today()), None);
    assert_eq!(
        standing(
            &enterprise_form("410311100201"),
            &enterprise_facts(),
            policy(),
            today()
        ),
        None
    );
}

// R-CR-8: a credit-village status announced for a later day, gained or lost, changes lines
// from that day
#[test]
fn a_credit_village_raises_lines_only_from_its_effective_day() {
    let tomorrow = today().succ_opt().unwrap();
    let announced = |before: Option<bool>, from, status| {
        let mut timeline = before.map(Timeline::always).unwrap_or_default();
        timeline.announce(Some(from), status);
        AdmissionFacts {
            credit_village: timeline,
            ..household_facts(today())
        }
    };
    let facts = announced(None, tomorrow, true);
    assert!(!facts.credit_village_on(today()));
    assert!(facts.credit_village_on(tomorrow));
    let mut form = household_form();
    form.amount = money("24000.00");
    assert_eq!(refused_rules(admit(&form, &facts)), vec!["R-CR-8"]);
    assert_eq!(admit(&form, &announced(None, today(), true)), Ok(()));
    // And one losing the status from tomorrow keeps it until then.
    let losing = announced(Some(true), tomorrow, false);
    assert!(losing.credit_village_on(today()));
    assert!(!losing.credit_village_on(tomorrow));
    assert_eq!(admit(&form, &losing), Ok(()));
}

// R-CR-8, R-ID-4: two changes announced ahead of their days both apply, each from its own day,
// and the status in force now stays until the first; an announcement replaces only what was
// announced for its day or later.
#[test]
fn changes_announced_ahead_apply_each_from_its_own_day() {
    let d = |n: u64| today().checked_add_days(chrono::Days::new(n)).unwrap();
    let mut timeline = Timeline::always(false);
    timeline.announce(Some(d(5)), true);
    timeline.announce(Some(d(10)), false);
    let on: Vec<_> = [0, 4, 5, 9, 10, 30].map(|n| timeline.on(d(n))).to_vec();
    assert_eq!(
        on,
        [false, false, true, true, false, false].map(Some).to_vec()
    );
    // A later announcement for an earlier day replaces both pending ones.
    timeline.announce(Some(d(3)), true);
    assert_eq!(timeline.on(d(2)), Some(false));
    assert_eq!(timeline.on(d(3)), Some(true));
    assert_eq!(timeline.on(d(30)), Some(true));
    // An announcement for the same day replaces that day's.
    timeline.announce(Some(d(3)), false);
    assert_eq!(timeline.on(d(3)), Some(false));
    // One for no day applies at once and replaces everything announced.
    timeline.announce(None, true);
    assert_eq!(timeline.entries(), &[(None, true)]);
    // Nothing announced: no status on any day.
    assert_eq!(Timeline::<bool>::default().on(today()), None);
    // Stored entries out of order are not a timeline.
    assert!(Timeline::from_entries(vec![(Some(d(2)), true), (Some(d(1)), false)]).is_none());
    assert!(Timeline::from_entries(vec![(Some(d(1)), true), (Some(d(1)), false)]).is_none());
    assert!(Timeline::from_entries(vec![(None, true), (Some(d(1)), false)]).is_some());
    // The household's line follows the days.
    let facts = AdmissionFacts {
        credit_village: {
            let mut t = Timeline::always(false);
            t.announce(Some(d(5)), true);
            t.announce(Some(d(10)), false);
            t
        },
        ..household_facts(today())
    };
    let mut form = household_form();
    form.amount = money("24000.00");
    assert_eq!(
        refused_rules(check(&form, &facts, policy(), d(4))),
        vec!["R-CR-8"]
    );
    assert_eq!(check(&form, &facts, policy(), d(5)), Ok(()));
    assert_eq!(
        refused_rules(check(&form, &facts, policy(), d(10))),
        vec!["R-CR-8"]
    );
}

// R-CR-8, R-IN-3: the uplift never goes past the 50,000 cap
#[test]
fn uplift_is_capped_at_50000() {
    let facts = AdmissionFacts {
        rating: Some(rating(CreditGrade::Aaa, today())),
        credit_village: Timeline::always(true),
        ..household_facts(today())
    };
    let r = facts.rating.clone().unwrap();
    assert_eq!(effective_line(&r, true, policy()), money("50000.00"));
    // AA: 30,000 x 1.2 = 36,000, under the cap
    let aa = rating(CreditGrade::Aa, today());
    assert_eq!(effective_line(&aa, true, policy()), money("36000.00"));
    let mut form = household_form();
    form.amount = money("50000.00");
    assert_eq!(admit(&form, &facts), Ok(()));
    form.amount = money("50000.01");
    assert_eq!(
        sorted(refused_rules(admit(&form, &facts))),
        vec!["R-CR-8", "R-IN-3"]
    );
}

// R-CR-10
#[test]
fn a_blacklisted_household_with_everything_else_in_order_is_refused() {
    let facts = AdmissionFacts {
        blacklisted: true,
        ..household_facts(today())
    };
    assert_eq!(
        refused_rules(admit(&household_form(), &facts)),
        vec!["R-CR-10"]
    );
}

// R-IN-3: only industry/production purposes
#[test]
fn consumption_and_housing_purposes_fail_and_production_purposes_pass() {
    for purpose in [
        Purpose::Planting,
        Purpose::Breeding,
        Purpose::Processing,
        Purpose::RuralTourism,
        Purpose::Ecommerce,
        Purpose::Handicraft,
        Purpose::OtherProduction,
    ] {
        let mut form = household_form();
        form.purpose = purpose;
        assert_eq!(
            admit(&form, &household_facts(today())),
            Ok(()),
            "{purpose:?}"
        );
    }
    for purpose in [Purpose::Consumption, Purpose::Housing] {
        let mut form = household_form();
        form.purpose = purpose;
        let failures = refusal_failures(admit(&form, &household_facts(today())));
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].rule, failures[0].field),
            ("R-IN-3", Some("purpose"))
        );
    }
}

// R-RK-9: a suspended village alone refuses
#[test]
fn a_suspended_village_refuses() {
    let facts = AdmissionFacts {
        suspended_areas: vec![area(VILLAGE)],
        ..household_facts(today())
    };
    assert_eq!(
        refused_rules(admit(&household_form(), &facts)),
        vec!["R-RK-9"]
    );
}

// R-ID-4
#[test]
fn enterprise_currently_qualified_is_admitted() {
    assert_eq!(admit(&enterprise_form(TOWN), &enterprise_facts()), Ok(()));
}

// R-ID-4
#[test]
fn enterprise_never_assessed_or_disqualified_is_refused() {
    for qualified in [Timeline::default(), Timeline::always(false)] {
        let facts = AdmissionFacts {
            enterprise_qualified: qualified.clone(),
            ..enterprise_facts()
        };
        assert_eq!(
            refused_rules(admit(&enterprise_form(TOWN), &facts)),
            vec!["R-ID-4"],
            "{qualified:?}"
        );
    }
}

// R-CR-10
#[test]
fn blacklisted_enterprise_is_refused_even_when_qualified() {
    let facts = AdmissionFacts {
        blacklisted: true,
        ..enterprise_facts()
    };
    assert_eq!(
        refused_rules(admit(&enterprise_form(TOWN), &facts)),
        vec!["R-CR-10"]
    );
}

// R-IN-3: household rules (rating, age, registration) do not apply to an enterprise
#[test]
fn enterprise_is_not_checked_against_household_rules() {
    // given no rating, an amount above the household cap and an enterprise-length term
    let mut form = enterprise_form(VILLAGE);
    form.amount = money("800000.00");
    let facts = AdmissionFacts {
        rating: None,
        ..enterprise_facts()
    };
    assert_eq!(admit(&form, &facts), Ok(()));
}

// R-ID-4, R-CR-10, R-RK-9: every enterprise failure at once
#[test]
fn every_failed_enterprise_rule_is_listed() {
    let facts = AdmissionFacts {
        enterprise_qualified: Timeline::always(false),
        blacklisted: true,
        suspended_areas: vec![area(TOWN)],
        ..AdmissionFacts::default()
    };
    assert_eq!(
        sorted(refused_rules(admit(&enterprise_form(TOWN), &facts))),
        vec!["R-CR-10", "R-ID-4", "R-RK-9"]
    );
}

// R-ID-1, R-RK-9: an enterprise is filed where the industry service registers it, or in a
// village of the town it is registered in (which adds that village's breaker); not in another
// town, nor in its town when it is registered in one of its villages
#[test]
fn an_enterprise_is_filed_where_it_is_registered() {
    let registered = |area_code: &str| AdmissionFacts {
        enterprise_area: Some(area(area_code)),
        ..enterprise_facts()
    };
    assert_eq!(admit(&enterprise_form(TOWN), &registered(TOWN)), Ok(()));
    assert_eq!(admit(&enterprise_form(VILLAGE), &registered(TOWN)), Ok(()));
    assert_eq!(
        admit(&enterprise_form(VILLAGE), &registered(VILLAGE)),
        Ok(())
    );
    assert_eq!(admit(&enterprise_form(TOWN), &enterprise_facts()), Ok(()));
    for (filed, at) in [(TOWN, VILLAGE), (OTHER_TOWN, TOWN), (OTHER_TOWN, VILLAGE)] {
        let failures = refusal_failures(admit(&enterprise_form(filed), &registered(at)));
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].rule, "R-ID-1");
        assert_eq!(failures[0].field, Some("enterprise.area_code"));
    }
}

// R-ID-4, R-IN-3: a qualification announced ahead of its day admits only from that day, and a
// disqualification announced ahead leaves the enterprise qualified until then.
#[test]
fn enterprise_qualification_applies_from_its_effective_day() {
    let today = today();
    let tomorrow = today.succ_opt().expect("tomorrow");
    let ahead = |qualified, before: Option<bool>| {
        let mut timeline = before.map(Timeline::always).unwrap_or_default();
        timeline.announce(Some(tomorrow), qualified);
        AdmissionFacts {
            enterprise_qualified: timeline,
            ..AdmissionFacts::default()
        }
    };
    let form = enterprise_form(TOWN);
    let on = |facts: &AdmissionFacts, day| admit_on(&form, facts, day);
    // qualified from tomorrow, never before: refused today, admitted tomorrow
    assert_eq!(refused_rules(on(&ahead(true, None), today)), vec!["R-ID-4"]);
    assert_eq!(on(&ahead(true, None), tomorrow), Ok(()));
    // disqualified from tomorrow, qualified until then: admitted today, refused tomorrow
    assert_eq!(on(&ahead(false, Some(true)), today), Ok(()));
    assert_eq!(
        refused_rules(on(&ahead(false, Some(true)), tomorrow)),
        vec!["R-ID-4"]
    );
    // in force from today
    let mut from_today = Timeline::default();
    from_today.announce(Some(today), true);
    let from_today = AdmissionFacts {
        enterprise_qualified: from_today,
        ..AdmissionFacts::default()
    };
    assert_eq!(on(&from_today, today), Ok(()));
}

// R-IN-3: a stored enterprise application is re-checked (at recommendation and at the bank's
// approval) against the enterprise term cap of the policy then in force.
#[test]
fn enterprise_term_above_the_cap_in_force_is_refused_at_a_re_check() {
    let mut form = enterprise_form(TOWN);
    form.term_months = 36;
    let mut lowered = policy().clone();
    lowered.enterprise_max_term_months = 24;
    let refused = check(&form, &enterprise_facts(), &lowered, today());
    assert_eq!(refused_rules(refused.clone()), vec!["R-IN-3"]);
    assert!(
        format!("{refused:?}").contains("term_months"),
        "{refused:?}"
    );
    form.term_months = 24;
    assert_eq!(check(&form, &enterprise_facts(), &lowered, today()), Ok(()));
}

// R-CR-8: "a credit village raises its households' lines": a household the credit service rates
// in another village gets no uplift from the credit village it applies through.
#[test]
fn a_credit_village_raises_only_its_own_households_lines() {
    let mut rated_elsewhere = rating(CreditGrade::A, today());
    rated_elsewhere.village_code = NEIGHBOUR_VILLAGE.to_owned();
    let facts = AdmissionFacts {
        rating: Some(rated_elsewhere),
        credit_village: Timeline::always(true),
        ..household_facts(today())
    };
    let mut form = household_form();
    form.amount = money("24000.00");
    assert_eq!(refused_rules(admit(&form, &facts)), vec!["R-CR-8"]);
    form.amount = money("20000.00");
    assert_eq!(admit(&form, &facts), Ok(()));
    let own = AdmissionFacts {
        rating: Some(rating(CreditGrade::A, today())),
        ..facts
    };
    form.amount = money("24000.00");
    assert_eq!(admit(&form, &own), Ok(()));
}

// R-RK-9, R-CR-4: lending is suspended where the rating in force places the household. A
// renewal announced ahead that names another village counts from its day: until then the
// earlier rating's village does, whichever village the application is filed in.
#[test]
fn the_rating_in_force_says_where_a_household_is_suspended() {
    let in_force = rating(CreditGrade::A, today());
    let mut renewal = rating(CreditGrade::A, today());
    renewal.village_code = OTHER_TOWN_VILLAGE.to_owned();
    renewal.effective_from = Some(plus_days(today(), 7));
    let renewal_day = plus_days(today(), 7);
    let mut form = household_form();
    form.amount = money("1000.00");
    let facts = |suspended: &str| AdmissionFacts {
        rating: Some(renewal.clone()),
        earlier_ratings: vec![in_force.clone()],
        suspended_areas: vec![area(suspended)],
        ..household_facts(today())
    };

    // The renewal's town is suspended: it counts only from the renewal's day.
    let renewal_town = facts(OTHER_TOWN);
    assert_eq!(admit_on(&form, &renewal_town, today()), Ok(()));
    assert_eq!(
        refused_rules(admit_on(&form, &renewal_town, renewal_day)),
        vec!["R-RK-9"]
    );

    // The in-force rating's village is suspended: filed from another town the household is
    // refused until the renewal moves it, and admitted from then on.
    let mut elsewhere = form.clone();
    if let Applicant::Household(h) = &mut elsewhere.applicant {
        h.village = area(OTHER_TOWN_VILLAGE);
    }
    let own_village = facts(VILLAGE);
    assert_eq!(
        refused_rules(admit_on(&elsewhere, &own_village, today())),
        vec!["R-RK-9"]
    );
    assert_eq!(admit_on(&elsewhere, &own_village, renewal_day), Ok(()));

    // Where it is filed always counts.
    assert_eq!(
        refused_rules(admit_on(&form, &own_village, renewal_day)),
        vec!["R-RK-9"]
    );

    // A first rating announced ahead places the household nowhere yet (it is no credit
    // household either): filed elsewhere, its village's suspension is not among the reasons.
    let ahead = AdmissionFacts {
        rating: Some(renewal.clone()),
        suspended_areas: vec![area(OTHER_TOWN)],
        ..household_facts(today())
    };
    assert_eq!(
        refused_rules(admit_on(&form, &ahead, today())),
        vec!["R-CR-3"]
    );
    assert_eq!(
        refused_rules(admit_on(&form, &ahead, renewal_day)),
        vec!["R-RK-9"]
    );
}

// R-RK-9: an enterprise is held to the area it is filed in; the read model's other suspended
// areas (a village of its town, another town) do not concern it.
#[test]
fn only_an_enterprises_own_area_and_town_suspend_it() {
    let facts = |suspended: &str| AdmissionFacts {
        suspended_areas: vec![area(suspended)],
        ..enterprise_facts()
    };
    assert_eq!(admit(&enterprise_form(TOWN), &facts(VILLAGE)), Ok(()));
    assert_eq!(admit(&enterprise_form(TOWN), &facts(OTHER_TOWN)), Ok(()));
    assert_eq!(admit(&enterprise_form(TOWN), &facts(DISTRICT)), Ok(()));
    assert_eq!(
        refused_rules(admit(&enterprise_form(TOWN), &facts(TOWN))),
        vec!["R-RK-9"]
    );
    assert_eq!(
        refused_rules(admit(&enterprise_form(VILLAGE), &facts(TOWN))),
        vec!["R-RK-9"]
    );
}
