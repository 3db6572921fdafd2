//! Text people and systems send: which characters show nothing (R-X-3), shared by the checks
//! of free text and of token subjects.

/// Characters that show nothing or change how the text around them reads: every character of
/// Unicode's general category Cf (format: zero-width ones, bidirectional marks, embeddings,
/// overrides and isolates, the byte-order mark, the soft hyphen, invisible operators, tags,
/// interlinear annotation, the Mongolian vowel separator, ...), and the blank letters and
/// joiners outside it (Hangul fillers, the combining grapheme joiner, the blank Braille
/// pattern, the Khmer inherent vowels), the code points Unicode reserves as default-ignorable
/// (shown as nothing once assigned) and the noncharacters. A reason made of them would read as
/// no reason. Variation selectors are not among them: see [`is_variation_selector`].
pub fn is_format_character(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
        || matches!(c,
            // Not Cf, as invisible:
            '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
            | '\u{17B4}' | '\u{17B5}'
            // Default-ignorable, not assigned yet:
            | '\u{2065}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}' | '\u{E0002}'..='\u{E001F}'
            | '\u{E0080}'..='\u{E00FF}' | '\u{E01F0}'..='\u{E0FFF}'
            // Noncharacters:
            | '\u{FDD0}'..='\u{FDEF}')
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// The variation selectors (standard, ideographic and Mongolian free ones): they change how the
/// character before them is drawn and draw nothing themselves.
pub fn is_variation_selector(c: char) -> bool {
    matches!(c,
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}'
        | '\u{180F}')
}

/// Longest input [`excerpt`] echoes whole, in characters.
pub const EXCERPT_CHARS: usize = 40;
/// How many characters of a longer input [`excerpt`] echoes.
pub const EXCERPT_HEAD: usize = 32;

/// `input` as an error message may echo it: whole when at most [`EXCERPT_CHARS`] characters,
/// otherwise its first [`EXCERPT_HEAD`] followed by `…`. An error that repeated a long input
/// whole would not reach the caller: gRPC clients refuse a status message in headers above
/// 8-16 KiB, so the field and rule it names would be lost (R-X-3).
pub fn excerpt(input: &str) -> String {
    if input.chars().count() <= EXCERPT_CHARS {
        return input.to_owned();
    }
    let mut head: String = input.chars().take(EXCERPT_HEAD).collect();
    head.push('…');
    head
}

/// A character that can make up a name: a letter of any script (Unicode general categories
/// Lu, Ll, Lt, Lm, Lo) or a letter number (Nl: the ideographic zero 〇 of Chinese names among
/// them). Not a combining mark, even one Unicode counts as Alphabetic (a vowel sign or point
/// shows nothing without a letter), not a digit, not a private-use character.
pub fn is_name_letter(c: char) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    c.general_category_group() == GeneralCategoryGroup::Letter
        || c.general_category() == GeneralCategory::LetterNumber
}

#[cfg(test)]
mod name_letter_tests {
    use super::is_name_letter;

    // R-IN-1: letters of any script and the ideographic zero make names; combining marks
    // (also those Unicode counts as Alphabetic), digits, punctuation, symbols and private-use
    // characters do not.
    #[test]
    fn letters_make_names_marks_do_not() {
        for c in ['王', 'a', 'É', 'ǅ', 'ʰ', 'ئ', 'й', '〇', 'ⅻ', '𠀀'] {
            assert!(is_name_letter(c), "{c:?}");
        }
        for c in [
            '\u{0301}',
            '\u{05B0}',
            '\u{0345}',
            '\u{093F}',
            '\u{0901}',
            '\u{0F71}',
            '\u{20DD}',
            '1',
            '٣',
            '·',
            '-',
            '❤',
            '\u{E000}',
            '\u{F0000}',
            ' ',
        ] {
            assert!(!is_name_letter(c), "{c:?}");
        }
    }
}

#[cfg(test)]
mod excerpt_tests {
    use super::{EXCERPT_CHARS, EXCERPT_HEAD, excerpt};

    // R-X-3: a short input is echoed whole; a long one is cut, by characters.
    #[test]
    fn echoes_short_inputs_whole_and_cuts_long_ones() {
        let limit = "9".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&limit), limit);
        assert_eq!(excerpt(""), "");
        let long = "四".repeat(EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&long), format!("{}…", "四".repeat(EXCERPT_HEAD)));
        assert!(excerpt(&"x".repeat(250_000)).len() < 64);
    }
}
