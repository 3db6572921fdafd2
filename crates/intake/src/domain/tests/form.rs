//! `form::validate` and `form::over_caps`: field checks that need the registry and the day,
//! and the policy's caps (R-IN-1, R-IN-3, R-X-3).

use super::fixtures::*;
use crate::domain::{
    error::Failure,
    form::{over_caps, validate},
};

/// `validate`, then the first cap `over_caps` names, as the first bad field.
fn check(form: &crate::domain::form::ApplicationForm) -> Result<(), crate::domain::DomainError> {
    validate(form, areas(), judged_on())?;
    match over_caps(form, policy()).into_iter().next() {
        Some(f) => Err(crate::domain::DomainError::invalid(
            f.field.unwrap_or_default(),
            f.rule,
            f.message,
        )),
        None => Ok(()),
    }
}

// R-IN-1
#[test]
fn household_form_in_a_registered_village_is_valid() {
    // given a household in 军屯村 asking the A line for 24 months
    let form = household_form();
    // when / then
    assert_eq!(check(&form), Ok(()));
}

// R-IN-1, R-X-3
#[test]
fn village_code_not_in_the_registry_is_refused_on_the_village_field() {
    // given a well-formed village code of a town of 洛龙区 that the registry does not list
    let mut form = household_form();
    household_mut(&mut form).village = area("410311100299");
    // when / then
    assert_invalid(check(&form), "household.village_code", "R-IN-1");
}

// R-IN-1, R-X-3
#[test]
fn village_code_of_another_district_is_refused() {
    let mut form = household_form();
    household_mut(&mut form).village = area("410312100201");
    assert_invalid(check(&form), "household.village_code", "R-IN-1");
}

// R-IN-1, R-X-3
#[test]
fn town_code_given_as_the_household_village_is_refused() {
    // given the code of 安乐镇 (a town that exists) as the household's village
    let mut form = household_form();
    household_mut(&mut form).village = area(TOWN);
    assert!(areas().exists(&area(TOWN)));
    // when / then: households belong to a village
    assert_invalid(check(&form), "household.village_code", "R-IN-1");
}

// R-IN-1
#[test]
fn district_code_given_as_the_household_village_is_refused() {
    let mut form = household_form();
    household_mut(&mut form).village = area(DISTRICT);
    assert_invalid(check(&form), "household.village_code", "R-IN-1");
}

// R-IN-3, R-X-3
#[test]
fn household_amount_above_the_policy_maximum_is_refused_on_amount() {
    // given the shipped maximum of 50,000.00 and 50,000.01 asked
    assert_eq!(policy().max_amount, money("50000.00"));
    let mut form = household_form();
    form.amount = money("50000.01");
    // when / then
    assert_invalid(check(&form), "amount", "R-IN-3");
}

// R-IN-3
#[test]
fn household_amount_of_exactly_the_maximum_passes() {
    let mut form = household_form();
    form.amount = money("50000.00");
    assert_eq!(check(&form), Ok(()));
}

// R-IN-3
#[test]
fn household_term_of_36_months_passes_and_37_is_refused() {
    let mut form = household_form();
    form.term_months = 36;
    assert_eq!(check(&form), Ok(()));
    form.term_months = 37;
    assert_invalid(check(&form), "term_months", "R-IN-3");
}

// R-IN-1, R-X-3
#[test]
fn zero_amount_is_refused() {
    let mut form = household_form();
    form.amount = money("0.00");
    assert_invalid(check(&form), "amount", "R-IN-1");
    // the same for an enterprise
    let mut form = enterprise_form(VILLAGE);
    form.amount = money("0");
    assert_invalid(check(&form), "amount", "R-IN-1");
}

// R-IN-1, R-X-3
#[test]
fn negative_amount_is_refused() {
    // given an amount that only a signed parse can build
    let mut form = household_form();
    form.amount = fupin_kernel::Money::parse_signed("-100.00").unwrap();
    // when / then: "greater than zero" means greater than zero
    assert_invalid(check(&form), "amount", "R-IN-1");
    let mut form = enterprise_form(VILLAGE);
    form.amount = fupin_kernel::Money::parse_signed("-0.01").unwrap();
    assert_invalid(check(&form), "amount", "R-IN-1");
}

// R-IN-1
#[test]
fn smallest_positive_amount_passes() {
    let mut form = household_form();
    form.amount = money("0.01");
    assert_eq!(check(&form), Ok(()));
}

// R-IN-1, R-X-3
#[test]
fn zero_term_is_refused() {
    let mut form = household_form();
    form.term_months = 0;
    assert_invalid(check(&form), "term_months", "R-IN-1");
    let mut form = enterprise_form(VILLAGE);
    form.term_months = 0;
    assert_invalid(check(&form), "term_months", "R-IN-1");
}

// R-IN-1, R-X-3
#[test]
fn empty_or_blank_household_name_is_refused() {
    for name in ["", "   "] {
        let mut form = household_form();
        household_mut(&mut form).name = name.to_owned();
        assert_invalid(check(&form), "household.name", "R-IN-1");
    }
}

// R-IN-1
#[test]
fn household_name_longer_than_100_characters_is_refused() {
    let mut form = household_form();
    household_mut(&mut form).name = "张".repeat(100);
    assert_eq!(check(&form), Ok(()));
    household_mut(&mut form).name = "张".repeat(101);
    assert_invalid(check(&form), "household.name", "R-IN-1");
}

// R-IN-1, R-X-3
#[test]
fn phone_must_be_an_11_digit_number() {
    let mut form = household_form();
    for good in ["13803790001", "19912345678", "15000000000"] {
        household_mut(&mut form).phone = good.to_owned();
        assert_eq!(check(&form), Ok(()), "{good}");
    }
    for bad in [
        "1380379000",
        "138037900012",
        "1380379000a",
        "138-0379-001",
        "１３８０３７９０００１",
        // 11 digits, but no mobile number: mobile blocks start 13 to 19.
        "00000000000",
        "23803790001",
        "12803790001",
    ] {
        household_mut(&mut form).phone = bad.to_owned();
        assert_invalid(check(&form), "household.phone", "R-IN-1");
    }
}

// R-IN-1
#[test]
fn enterprise_form_in_the_districts_towns_or_villages_is_valid() {
    for code in [TOWN, VILLAGE] {
        assert_eq!(check(&enterprise_form(code)), Ok(()), "area {code}");
    }
}

// R-IN-1, R-RK-9: an enterprise is registered in a town or village, where lending can be
// suspended; the district's own code would leave it outside every suspension.
#[test]
fn enterprise_area_at_the_district_level_is_refused() {
    assert_invalid(
        check(&enterprise_form(DISTRICT)),
        "enterprise.area_code",
        "R-IN-1",
    );
}

// R-IN-1, R-X-3
#[test]
fn enterprise_area_outside_the_district_is_refused() {
    // another district, a town of another district, an unregistered town of this district
    for code in ["410312", "410312100", "410311199", "410311100299"] {
        assert_invalid(
            check(&enterprise_form(code)),
            "enterprise.area_code",
            "R-IN-1",
        );
    }
}

// R-IN-1
#[test]
fn enterprise_name_is_required() {
    let mut form = enterprise_form(VILLAGE);
    enterprise_mut(&mut form).name = " ".to_owned();
    assert_invalid(check(&form), "enterprise.name", "R-IN-1");
}

// R-IN-3
#[test]
fn enterprise_term_above_the_enterprise_maximum_is_refused() {
    // given the shipped enterprise maximum of 36 months
    assert_eq!(policy().enterprise_max_term_months, 36);
    let mut form = enterprise_form(VILLAGE);
    form.term_months = 36;
    assert_eq!(check(&form), Ok(()));
    form.term_months = 37;
    assert_invalid(check(&form), "term_months", "R-IN-3");
}

// R-IN-3, R-X-4
#[test]
fn enterprise_term_limit_is_its_own_policy_value() {
    // given a policy version that lets enterprises borrow for 60 months
    let mut policy = policy().clone();
    policy.enterprise_max_term_months = 60;
    let mut enterprise = enterprise_form(VILLAGE);
    enterprise.term_months = 48;
    let mut household = household_form();
    household.term_months = 48;
    // then the enterprise passes and the household is still held to 36 months
    assert_eq!(validate(&enterprise, areas(), judged_on()), Ok(()));
    assert_eq!(over_caps(&enterprise, &policy), vec![]);
    assert_eq!(validate(&household, areas(), judged_on()), Ok(()));
    let fields = |f: Vec<Failure>| f.into_iter().map(|f| (f.field, f.rule)).collect::<Vec<_>>();
    assert_eq!(
        fields(over_caps(&household, &policy)),
        [(Some("term_months"), "R-IN-3")]
    );
    enterprise.term_months = 61;
    assert_eq!(
        fields(over_caps(&enterprise, &policy)),
        [(Some("term_months"), "R-IN-3")]
    );
}

// R-IN-3: a household over both caps is told of both, amount first.
#[test]
fn a_household_over_both_caps_is_told_of_both() {
    let mut form = household_form();
    form.amount = money("50000.01");
    form.term_months = 37;
    assert_eq!(validate(&form, areas(), judged_on()), Ok(()));
    let over = over_caps(&form, policy());
    assert_eq!(
        over.iter().map(|f| (f.field, f.rule)).collect::<Vec<_>>(),
        [(Some("amount"), "R-IN-3"), (Some("term_months"), "R-IN-3")]
    );
    assert_eq!(over[0].message, "at most 50000.00 yuan for a household");
    assert_eq!(over[1].message, "at most 36 months");
}

// R-IN-1: enterprise amounts are not capped by the household maximum.
#[test]
fn enterprise_amount_is_not_held_to_the_household_cap() {
    let mut form = enterprise_form(TOWN);
    form.amount = money("1000000.00");
    assert_eq!(check(&form), Ok(()));
}

// R-IN-1
#[test]
fn project_description_is_limited_to_2000_characters() {
    let mut form = household_form();
    form.description = "x".repeat(2000);
    assert_eq!(check(&form), Ok(()));
    form.description = "x".repeat(2001);
    assert_invalid(check(&form), "project_description", "R-IN-1");
}

// R-IN-1, R-X-3: a resident ID whose birth date is after today is a wrong ID (refused on the
// field, nothing kept), not a borrower aged 0 for admission to refuse; one born today is a
// well-formed ID (admission then refuses the age).
#[test]
fn resident_id_born_after_today_is_refused_on_the_field() {
    let tomorrow = judged_on().succ_opt().expect("tomorrow");
    assert_invalid(
        check(&household_form_born(tomorrow)),
        "household.resident_id",
        "R-IN-1",
    );
    assert_eq!(check(&household_form_born(judged_on())), Ok(()));
}

// R-X-3: free text is stored trimmed, so it is measured trimmed; names are one line; control
// and invisible formatting characters are refused everywhere, tabs and line breaks kept in
// longer text.
#[test]
fn free_text_is_one_readable_line_for_names_and_readable_text_elsewhere() {
    use crate::domain::form::{MAX_NAME, MAX_TEXT, free_text};
    let name = |v: &str| free_text("objector", "R-IN-5", v, MAX_NAME, true);
    let text = |v: &str| free_text("content", "R-IN-5", v, MAX_TEXT, true);
    assert_eq!(name("  王建国  "), Ok(()));
    assert_eq!(name(&format!(" {} ", "王".repeat(MAX_NAME))), Ok(()));
    assert_eq!(text("第一行\n第二行\t附件"), Ok(()));
    for bad in [
        "王\n建国",
        "王\t建国",
        "a\u{0}b",
        "a\u{202E}b",
        "a\u{200B}b",
        "  ",
    ] {
        assert_invalid(name(bad), "objector", "R-IN-5");
    }
    for bad in ["a\u{0}b", "a\u{7}b", "a\u{202E}b", "a\u{FEFF}b"] {
        assert_invalid(text(bad), "content", "R-IN-5");
    }
    assert_invalid(text(&"字".repeat(MAX_TEXT + 1)), "content", "R-IN-5");
}

// R-IN-2, R-X-3: a reason made only of invisible characters reads as no reason: every format
// character (Unicode category Cf) and the blank letters outside it are refused, alone or in
// text; visible text in any script is kept.
#[test]
fn invisible_characters_are_refused_whatever_their_block() {
    use crate::domain::form::{MAX_TEXT, free_text};
    let reason = |v: &str| free_text("reason", "R-IN-2", v, MAX_TEXT, true);
    for c in [
        '\u{00AD}',
        '\u{0600}',
        '\u{061C}',
        '\u{06DD}',
        '\u{070F}',
        '\u{0890}',
        '\u{08E2}',
        '\u{180E}',
        '\u{200D}',
        '\u{206A}',
        '\u{206F}',
        '\u{FFF9}',
        '\u{FFFB}',
        '\u{110BD}',
        '\u{13430}',
        '\u{1BCA0}',
        '\u{1D173}',
        '\u{E0001}',
        '\u{E0041}',
        '\u{E007F}',
        '\u{034F}',
        '\u{3164}',
        '\u{FFA0}',
        '\u{115F}',
        '\u{2800}',
        '\u{17B4}',
        '\u{17B5}',
        '\u{2065}',
        '\u{FFF0}',
        '\u{E0000}',
        '\u{E0FFF}',
        '\u{FDD0}',
        '\u{FFFE}',
        '\u{1FFFF}',
    ] {
        assert_invalid(reason(&c.to_string()), "reason", "R-IN-2");
        assert_invalid(reason(&format!("材料不全{c}")), "reason", "R-IN-2");
    }
    for good in ["材料不全，请补正", "Ұлттық банк", "بنك", "안녕", "réservé"]
    {
        assert_eq!(reason(good), Ok(()), "{good}");
    }
}

// R-IN-2, R-X-3: a variation selector draws the character before it differently (an emoji's
// colour, an ideograph's variant) and nothing by itself: kept after a visible character,
// refused where it would show nothing (alone, after a space, after another selector).
#[test]
fn variation_selectors_only_after_a_visible_character() {
    use crate::domain::form::{MAX_NAME, MAX_TEXT, free_text};
    let reason = |v: &str| free_text("reason", "R-IN-2", v, MAX_TEXT, true);
    let name = |v: &str| free_text("household.name", "R-IN-1", v, MAX_NAME, true);
    for good in ["谢谢❤\u{FE0F}", "❤\u{FE0F} 谢谢", "葛\u{E0100}"] {
        assert_eq!(reason(good), Ok(()), "{good:?}");
    }
    assert_eq!(name("王\u{E0101}芳"), Ok(()));
    for bad in [
        "\u{FE0F}",
        "\u{FE0F}\u{FE0E}",
        " \u{FE0F} ",
        "材料不全 \u{FE0F}",
        "❤\u{FE0F}\u{FE0F}",
        "\u{E0100}",
        "\u{180B}",
        "材料不全\n\u{FE0F}",
    ] {
        assert_invalid(reason(bad), "reason", "R-IN-2");
    }
    assert_invalid(name("\u{FE0F}\u{FE0F}"), "household.name", "R-IN-1");
}

// R-IN-1, R-X-3: a name holds at least one letter or character of a name, in any script: one
// of only digits, punctuation, combining marks or private-use characters names no one.
#[test]
fn names_hold_a_letter() {
    use crate::domain::form::{Applicant, name};
    for good in [
        "王芳",
        "Ma Li",
        "阿依古丽·买买提",
        "王\u{E000}",
        "葛\u{E0100}",
    ] {
        assert_eq!(name("objector", "R-IN-5", good, true), Ok(()), "{good:?}");
    }
    for bad in [
        "\u{0301}",
        "\u{0301}\u{0302}",
        "\u{E000}\u{E001}",
        "123",
        "·-·",
        "\u{F0000}",
        "\u{05B0}\u{05B1}",
        "\u{0345}",
        "\u{093F}",
        "\u{0901}",
    ] {
        assert_invalid(name("objector", "R-IN-5", bad, true), "objector", "R-IN-5");
        let mut form = household_form();
        household_mut(&mut form).name = bad.to_owned();
        assert_invalid(check(&form), "household.name", "R-IN-1");
        let mut form = enterprise_form(TOWN);
        if let Applicant::Enterprise(e) = &mut form.applicant {
            e.legal_representative = bad.to_owned();
        }
        assert_invalid(check(&form), "enterprise.legal_representative", "R-IN-1");
    }
    // An organisation's legal representative may be left out.
    let mut form = enterprise_form(TOWN);
    if let Applicant::Enterprise(e) = &mut form.applicant {
        e.legal_representative = String::new();
    }
    assert_eq!(check(&form), Ok(()));
}
