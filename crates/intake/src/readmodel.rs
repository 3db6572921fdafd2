//! Consumes other services' events into intake's read model (ARCHITECTURE "each consuming
//! service keeps its own read model"): ratings, credit villages, blacklist (credit rating),
//! suspended areas (risk control), qualified enterprises (industry).

use chrono::NaiveDate;
use fupin_kernel::{AreaCode, AreaLevel, CreditGrade, Money, ResidentId, Uscc};
use fupin_platform::{
    PiiCipher,
    events::consumer::{Delivered, EventHandler},
};
use fupin_proto::{industry::v1 as industry, rating::v1 as rating, risk::v1 as risk};
use futures::future::BoxFuture;
use prost::Name;
use sqlx::PgConnection;

use crate::store::{pii::subject_index, readmodel as rm};

pub const CONSUMER: &str = "intake-readmodel";

pub fn event_types() -> Vec<String> {
    vec![
        rating::CreditRatingEffective::full_name(),
        rating::CreditVillageStatusChanged::full_name(),
        rating::BlacklistEntryAdded::full_name(),
        rating::BlacklistEntryRemoved::full_name(),
        risk::NplThresholdExceeded::full_name(),
        risk::LendingResumed::full_name(),
        industry::EnterpriseQualificationChanged::full_name(),
    ]
}

/// Events name subjects by their plain resident ID or USCC; the read model keeps only the
/// blind index, computed here with the service's key (R-CR-11).
pub struct ReadModelHandler {
    pub pii: PiiCipher,
}

/// A value an event sent, as an error repeats it: quoted, and only its first characters, so
/// that a huge or odd value cannot make the error (kept with the dead letter, logged) huge.
fn echo(s: &str) -> String {
    const SHOWN: usize = 40;
    match s.char_indices().nth(SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &s[..cut], s.len()),
    }
}

/// Text an event carries, as PostgreSQL can store it: a NUL, which a protobuf string may hold
/// and a `text` column refuses, becomes U+FFFD. Stored as sent, it failed the statement every
/// time, and the fact (a suspension, a veto, a blacklisting) was dead-lettered and lost for an
/// informational field.
fn storable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}").into()
    } else {
        s.into()
    }
}

/// An identifier an event carries (a blacklist entry id), as PostgreSQL can store it: one with a
/// NUL, or starting with U+FFFE (so that no id reads like an encoded one), is kept as U+FFFE
/// and the hex of its bytes, so that it cannot become equal to another id, as it would with
/// the NUL replaced (the removal of one entry lifting another's).
fn storable_id(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') || s.starts_with('\u{FFFE}') {
        let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
        format!("\u{FFFE}{hex}").into()
    } else {
        s.into()
    }
}

fn date(field: &str, s: &str) -> anyhow::Result<Option<NaiveDate>> {
    if s.is_empty() {
        return Ok(None);
    }
    fupin_kernel::time::parse_iso_date(s)
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("{field}: {} is not a YYYY-MM-DD date", echo(s)))
}

/// An area code as admission looks it up; an event naming none that parses is dead-lettered
/// rather than stored under a key no applicant has (a suspension silently lost, R-RK-9).
fn area(field: &str, s: &str) -> anyhow::Result<String> {
    AreaCode::parse(s.trim())
        .map(|a| a.as_str().to_owned())
        .map_err(|e| anyhow::anyhow!("{field}: {}: {e}", echo(s)))
}

/// An identifier the event must carry: an empty one would merge unrelated facts (two
/// blacklistings under one empty entry id, the second lost).
fn required<'s>(field: &str, s: &'s str) -> anyhow::Result<&'s str> {
    match s.trim() {
        "" => anyhow::bail!("{field} is empty"),
        t => Ok(t),
    }
}

/// The subject an event names, as admission looks it up: a household's resident ID or an
/// enterprise's USCC. Read by the event's subject kind first; one that reads as the other
/// form is taken as that (a mislabelled blacklisting still refuses, R-CR-10) with a warning.
/// One that reads as neither is dead-lettered: stored, it would sit under a blind index no
/// application has, and a blacklisting would be silently lost. The error never repeats the
/// identifier (R-CR-11: it is logged and kept with the dead letter).
fn subject(kind: i32, id: &str) -> anyhow::Result<String> {
    let id = required("subject_id", id)?;
    let household = ResidentId::parse(id).map(|r| r.as_str().to_owned());
    let enterprise = Uscc::parse(id).map(|u| u.as_str().to_owned());
    let named = rating::SubjectKind::try_from(kind).ok();
    match (named, household, enterprise) {
        (Some(rating::SubjectKind::Household), Ok(read), _)
        | (Some(rating::SubjectKind::Enterprise), _, Ok(read)) => Ok(read),
        (_, Ok(read), _) | (_, _, Ok(read)) => {
            if matches!(
                named,
                Some(rating::SubjectKind::Household | rating::SubjectKind::Enterprise)
            ) {
                tracing::warn!(
                    subject_kind = kind,
                    "subject_id reads as the other kind of subject; taken as that"
                );
            }
            Ok(read)
        }
        (_, Err(h), Err(u)) => anyhow::bail!(
            "subject_id ({} characters) is neither a resident ID ({h}) nor a USCC ({u})",
            id.chars().count()
        ),
    }
}

/// An area lending can be suspended in (R-RK-9): a town or a village, the levels admission
/// looks up. Any other code is dead-lettered rather than stored where nothing reads it.
fn lending_area(s: &str) -> anyhow::Result<String> {
    let code = area("area_code", s)?;
    match AreaCode::parse(&code)?.level() {
        AreaLevel::Town | AreaLevel::Village => Ok(code),
        AreaLevel::District => anyhow::bail!(
            "area_code {code:?}: lending is suspended by town or village (R-RK-9), not district"
        ),
    }
}

fn seq(s: u64) -> anyhow::Result<i64> {
    i64::try_from(s)
        .map_err(|_| anyhow::anyhow!("sequence {s}: above {}, the largest intake keeps", i64::MAX))
}

/// Why a blacklist event naming another subject than its entry's is dead-lettered: applied,
/// a removal would lift someone else's entry (R-CR-10). The subjects are not repeated
/// (R-CR-11: the error is logged and kept with the dead letter).
fn another_subject(entry: &str) -> String {
    format!(
        "subject_id: blacklist entry {} is known under another subject; an entry names one \
         subject (R-CR-10), so this event changes nothing",
        echo(entry)
    )
}

/// A credit village's code: a village (R-CR-6). A town's or the district's status stored as a
/// village's would never apply and hide the credit service's mistake.
fn village(field: &str, s: &str) -> anyhow::Result<String> {
    let code = area(field, s)?;
    match AreaCode::parse(&code)?.level() {
        AreaLevel::Village => Ok(code),
        level => anyhow::bail!(
            "{field} {code:?}: a {} code, not a village's (R-CR-6)",
            format!("{level:?}").to_lowercase()
        ),
    }
}

impl EventHandler for ReadModelHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        ev: &'a Delivered,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if ev.is::<rating::CreditRatingEffective>() {
                let e: rating::CreditRatingEffective = ev.decode()?;
                // Checked here, not when admission reads it: one malformed rating stored would
                // fail the admission of every submission read in the same batch. A bad event
                // goes to the dead-letter subject instead.
                let grade = match e.grade.as_str() {
                    "" => None,
                    g => Some(
                        CreditGrade::parse(g)
                            .map_err(|err| anyhow::anyhow!("grade {}: {err}", echo(g)))?,
                    ),
                };
                // No line is a line of zero (a grade below A, a veto).
                let line = if e.credit_line.is_empty() {
                    Money::ZERO
                } else {
                    Money::parse(&e.credit_line).map_err(|err| {
                        anyhow::anyhow!("credit_line {}: {err}", echo(&e.credit_line))
                    })?
                };
                // The household's village decides whose credit-village uplift applies (R-CR-8).
                // One that does not read costs the uplift, not the rating: a downgrade or veto
                // must still reach admission.
                let village = match e.village_code.trim() {
                    "" => String::new(),
                    v => area("village_code", v).unwrap_or_else(|err| {
                        tracing::warn!(error = %err, "rating without a readable village: no uplift");
                        String::new()
                    }),
                };
                let effective_from = date("effective_from", &e.effective_from)?;
                let expires_on = date("expires_on", &e.expires_on)?;
                // A rating that would grant credit without the day it took effect would be
                // stored and never count (R-CR-3, R-CR-4), and one that expires before it starts
                // is no rating: dead-lettered, so the credit service's mistake is seen rather
                // than silently refusing the household. One that grants nothing (below A, a
                // veto, a revocation) is applied whatever its days: a downgrade must reach
                // admission (R-CR-5), and without a day it replaces every rating held.
                if grade.is_some_and(CreditGrade::is_credit_grade) && !e.veto {
                    let Some(from) = effective_from else {
                        anyhow::bail!(
                            "effective_from: a rating of {} names the day it took effect",
                            e.grade
                        );
                    };
                    if expires_on.is_some_and(|until| until <= from) {
                        anyhow::bail!(
                            "expires_on {:?} is not after effective_from {:?}",
                            e.expires_on,
                            e.effective_from
                        );
                    }
                }
                rm::upsert_rating(
                    conn,
                    &subject_index(&self.pii, &subject(e.subject_kind, &e.subject_id)?),
                    e.subject_kind,
                    &village,
                    &e.grade,
                    e.veto,
                    line.amount(),
                    effective_from,
                    expires_on,
                    &storable(&e.policy_version),
                    seq(e.sequence)?,
                )
                .await?;
            } else if ev.is::<rating::CreditVillageStatusChanged>() {
                let e: rating::CreditVillageStatusChanged = ev.decode()?;
                rm::upsert_credit_village(
                    conn,
                    &village("village_code", &e.village_code)?,
                    e.credit_village,
                    date("effective_from", &e.effective_from)?,
                    seq(e.sequence)?,
                )
                .await?;
            } else if ev.is::<rating::BlacklistEntryAdded>() {
                let e: rating::BlacklistEntryAdded = ev.decode()?;
                let subject = subject_index(&self.pii, &subject(e.subject_kind, &e.subject_id)?);
                let entry = storable_id(required("entry_id", &e.entry_id)?);
                let applied = rm::blacklist_added(
                    conn,
                    &entry,
                    &subject,
                    e.subject_kind,
                    &storable(&e.reason),
                )
                .await?;
                anyhow::ensure!(applied, "{}", another_subject(&entry));
            } else if ev.is::<rating::BlacklistEntryRemoved>() {
                let e: rating::BlacklistEntryRemoved = ev.decode()?;
                let subject = subject_index(&self.pii, &subject(e.subject_kind, &e.subject_id)?);
                let entry = storable_id(required("entry_id", &e.entry_id)?);
                let applied = rm::blacklist_removed(conn, &entry, &subject, e.subject_kind).await?;
                anyhow::ensure!(applied, "{}", another_subject(&entry));
            } else if ev.is::<risk::NplThresholdExceeded>() {
                let e: risk::NplThresholdExceeded = ev.decode()?;
                let area = lending_area(&e.area_code)?;
                let ratio = storable(&e.npl_ratio);
                rm::set_suspension(conn, &area, true, &ratio, seq(e.sequence)?).await?;
            } else if ev.is::<risk::LendingResumed>() {
                let e: risk::LendingResumed = ev.decode()?;
                let area = lending_area(&e.area_code)?;
                let ratio = storable(&e.npl_ratio);
                rm::set_suspension(conn, &area, false, &ratio, seq(e.sequence)?).await?;
            } else if ev.is::<industry::EnterpriseQualificationChanged>() {
                let e: industry::EnterpriseQualificationChanged = ev.decode()?;
                // Kept in the form admission looks it up by (upper case, check character valid).
                let uscc = Uscc::parse(e.uscc.trim())
                    .map_err(|err| anyhow::anyhow!("uscc {}: {err}", echo(&e.uscc)))?;
                // Where R-RK-9 suspends its lending: a town or a village, or not said. A
                // qualification naming an area that is neither is dead-lettered; a
                // disqualification is applied all the same (it grants nothing), without it.
                let registered = match e.area_code.trim() {
                    "" => None,
                    a => match lending_area(a) {
                        Ok(area) => Some(area),
                        Err(err) if !e.qualified => {
                            tracing::warn!(error = %err, "disqualification with an unreadable area: applied without it");
                            None
                        }
                        Err(err) => return Err(err),
                    },
                };
                rm::set_qualification(
                    conn,
                    uscc.as_str(),
                    e.qualified,
                    &storable(&e.reason),
                    date("effective_from", &e.effective_from)?,
                    registered.as_deref(),
                    seq(e.sequence)?,
                )
                .await?;
            } else {
                anyhow::bail!(
                    "unexpected event type {} on {}",
                    echo(&ev.ce_type),
                    ev.subject
                );
            }
            Ok(())
        })
    }
}
