//! Personal data at the row boundary (R-CR-11): values are sealed into `*_enc` columns bound to
//! their column and row, and resident IDs / USCCs are looked up by their blind index. Rows
//! carry only sealed bytes; plain values exist in memory while a request needs them.

use anyhow::Context;
use fupin_platform::PiiCipher;
use uuid::Uuid;

/// Blind-index domain of applicant and read-model subject ids (resident ID or USCC).
const SUBJECT_ID: &str = "subject-id";

/// The blind index of a resident ID or USCC, as stored in `applications.applicant_id_idx`,
/// `rm_credit_ratings.subject_idx` and `rm_blacklist.subject_idx`. Both kinds of code are
/// upper-case ASCII when parsed, so events spelling an `x` in lower case still match.
pub fn subject_index(pii: &PiiCipher, id: &str) -> Vec<u8> {
    pii.blind_index(SUBJECT_ID, id.trim().to_ascii_uppercase().as_bytes())
        .to_vec()
}

/// What a sealed value is bound to: `table.column` and the row's id.
pub fn context(column: &str, row: Uuid) -> Vec<u8> {
    [column.as_bytes(), b"\0", row.as_bytes()].concat()
}

pub fn seal(pii: &PiiCipher, column: &str, row: Uuid, value: &str) -> Vec<u8> {
    pii.seal_str(&context(column, row), value)
}

/// Opens a sealed column; failure is an internal error naming the column and row, never an
/// empty value.
pub fn open(pii: &PiiCipher, column: &str, row: Uuid, sealed: &[u8]) -> anyhow::Result<String> {
    pii.open_str(&context(column, row), sealed)
        .with_context(|| format!("opening {column} of {row}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_in_its_own_column_and_row() {
        let pii = PiiCipher::development();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = seal(&pii, "applications.applicant_name", a, "王建国");
        assert_eq!(
            open(&pii, "applications.applicant_name", a, &sealed).unwrap(),
            "王建国"
        );
        assert!(open(&pii, "applications.applicant_name", b, &sealed).is_err());
        assert!(open(&pii, "applications.phone", a, &sealed).is_err());
    }

    #[test]
    fn subject_index_ignores_case_and_surrounding_space() {
        let pii = PiiCipher::development();
        assert_eq!(
            subject_index(&pii, "41031119800501007X"),
            subject_index(&pii, " 41031119800501007x ")
        );
        assert_eq!(subject_index(&pii, "41031119800501007X").len(), 32);
    }
}
