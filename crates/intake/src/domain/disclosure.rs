//! Who sees personal data unmasked (R-CR-11). Resident IDs, names and phones are personal;
//! an organisation's USCC and name are public registry data and always shown.
//!
//! | role                                 | resident ID          | names  | phone         |
//! |--------------------------------------|----------------------|--------|---------------|
//! | bank (once recommended to it)        | shown                | shown  | shown         |
//! | village staff                        | `410311********123X` | shown  | shown         |
//! | town staff, district staff, operator | `410311********123X` | `王**` | `138****0000` |
//!
//! Names are those of applicants, objectors and complainants.
//!
//! The lending bank needs the full identity to contract and disburse. Village staff verify
//! the household in person and call it, so they need its name and phone, but not the ID
//! number. The town station and the district center review on the record and see none of it
//! in the clear. Every response that shows a field unmasked is logged by the application
//! layer, except one that only echoes what the caller sent in the same request.

use super::ActorRole;

/// Which personal fields a role is shown unmasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disclosure {
    pub resident_id: bool,
    /// Applicant, objector and complainant names.
    pub names: bool,
    pub phone: bool,
}

impl Disclosure {
    pub fn for_role(role: ActorRole) -> Self {
        match role {
            ActorRole::Bank => Self {
                resident_id: true,
                names: true,
                phone: true,
            },
            ActorRole::VillageStaff => Self {
                resident_id: false,
                names: true,
                phone: true,
            },
            ActorRole::TownStaff | ActorRole::DistrictStaff | ActorRole::Operator => Self {
                resident_id: false,
                names: false,
                phone: false,
            },
        }
    }
}

/// `410311********123X`: the area and the last four characters.
pub fn mask_resident_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// `王**`: the first character, then one `*` per remaining character. A one-character name
/// would be shown whole, so it is masked whole. Variation selectors (an ideograph's variant,
/// `葛\u{E0100}`) are not characters of their own: left out, so they neither count as the rest
/// of a one-character name nor follow the character shown.
pub fn mask_name(name: &str) -> String {
    let mut chars = name
        .chars()
        .filter(|c| !fupin_kernel::text::is_variation_selector(*c));
    match (chars.next(), chars.count()) {
        (None, _) => String::new(),
        (Some(_), 0) => "*".into(),
        (Some(first), rest) => format!("{first}{}", "*".repeat(rest)),
    }
}

/// `138****0000`: the first three and last four digits; a number too short to keep seven
/// digits and still hide some is masked whole.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 11 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn masks_like_the_spec() {
        assert_eq!(mask_resident_id("41031119800101123X"), "410311********123X");
        assert_eq!(mask_name("王建国"), "王**");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("王"), "*");
        // A variation selector is not a character of its own.
        assert_eq!(mask_name("葛\u{E0100}"), "*");
        assert_eq!(mask_name("葛\u{E0100}亮"), "葛*");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("1380000"), "*******");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn each_role_sees_what_it_needs() {
        use ActorRole::*;
        let seen = |r| {
            let d = Disclosure::for_role(r);
            (d.resident_id, d.names, d.phone)
        };
        assert_eq!(seen(Bank), (true, true, true));
        assert_eq!(seen(VillageStaff), (false, true, true));
        for r in [TownStaff, DistrictStaff, Operator] {
            assert_eq!(seen(r), (false, false, false), "{r:?}");
        }
    }

    proptest! {
        /// A masked value keeps its length in characters and never shows more than its
        /// unmasked head and tail.
        #[test]
        fn masks_keep_length_and_hide_the_middle(s in "\\PC{0,30}") {
            let n = s.chars().count();
            // A name's length leaves out its variation selectors.
            let letters = s
                .chars()
                .filter(|c| !fupin_kernel::text::is_variation_selector(*c))
                .count();
            for (masked, shown, length) in [
                (mask_resident_id(&s), if n <= 10 { 0 } else { 10 }, n),
                (mask_name(&s), usize::from(letters > 1), letters),
                (mask_phone(&s), if n < 11 { 0 } else { 7 }, n),
            ] {
                prop_assert_eq!(masked.chars().count(), length);
                let visible = masked
                    .chars()
                    .zip(s.chars())
                    .filter(|(m, c)| m == c && *m != '*')
                    .count();
                prop_assert!(visible <= shown, "{masked:?} shows {visible} of {s:?}");
            }
        }
    }
}
