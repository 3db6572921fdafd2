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

/// How many of the newest applications [`check_keys_open_stored`] tries.
const KEY_SAMPLE: i64 = 20;

/// R-CR-11: keys about to be recorded as this database's for the first time (a database
/// written before the key check values, see `fupin_platform::db::verify_pii_keys`) must open
/// what it holds: of the newest applications, at least one resident ID must open with
/// `PII_KEYS` and match its blind index under `PII_INDEX_KEY`. Otherwise a configuration
/// regenerated at the upgrade would be recorded as the truth and the right keys refused after.
/// One damaged value among them does not stop the start.
pub async fn check_keys_open_stored(pool: &sqlx::PgPool, cipher: &PiiCipher) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "select id, applicant_id_enc, applicant_id_idx from applications order by id desc limit $1",
    )
    .bind(KEY_SAMPLE)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let opened: Vec<(String, &[u8])> = rows
        .iter()
        .filter_map(|(id, enc, idx)| {
            open(cipher, crate::store::applications::APPLICANT_ID, *id, enc)
                .ok()
                .map(|v| (v, idx.as_slice()))
        })
        .collect();
    anyhow::ensure!(
        !opened.is_empty(),
        "PII_KEYS open none of the resident IDs of this database's {} newest applications: \
         they are not the keys it was written with. Restore them from the backup of the \
         configuration",
        rows.len()
    );
    anyhow::ensure!(
        opened
            .iter()
            .any(|(value, idx)| subject_index(cipher, value) == *idx),
        "PII_INDEX_KEY does not give the blind index stored with this database's newest \
         applications: it is not the key the index was built with. Restore it from the backup \
         of the configuration"
    );
    Ok(())
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
