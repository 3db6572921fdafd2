//! The application layer: load, let the domain decide, save the decision with its outbox
//! events and the idempotency record in one transaction (R-X-2, R-IN-8).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use fupin_kernel::{
    AreaRegistry, Money, PolicyHistory, Versioned, WorkingDayCalendar, policy::IntakePolicy,
};
use fupin_platform::{
    Caller, PiiCipher, ServiceError, SharedClock,
    error::RuleFailure,
    events::{outbox, relay::RelayHandle},
    idempotency::{self, Claim, RequestKey},
};
use fupin_proto::intake::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    api::convert,
    domain::{
        Actor, ActorRole, DomainError, Status, admission,
        application::{Application, Correction, Moved},
        bank::{self, Approval},
        complaint::Complaint,
        form::{self, Applicant},
    },
    store::{
        applications::{
            self as apps, ApplicantPii, ApplicationRow, BankDecision, DisbursementRecord,
            InstalmentRecord, ListFilter,
        },
        audit,
        complaints::{self, ComplaintRow},
        pii,
        readmodel::{self, Subject},
    },
    submit::{self, SubmitQueue},
};

/// Everything a command needs. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    pub pool: PgPool,
    pub prefix: String,
    pub relay: RelayHandle,
    pub clock: SharedClock,
    pub areas: Arc<AreaRegistry>,
    pub calendar: Arc<WorkingDayCalendar>,
    pub policy: Arc<PolicyHistory<IntakePolicy>>,
    /// The group commit of submissions.
    pub submissions: SubmitQueue,
    /// Opens and seals personal data at the row boundary (R-CR-11).
    pub pii: PiiCipher,
    /// Scans on request run one at a time: each holds its request id's connection while its
    /// batches take another from the pool, so many at once could exhaust the pool.
    pub manual_scans: Arc<tokio::sync::Mutex<()>>,
}

/// Whose personal data a response showed (R-CR-11 access log).
#[derive(Clone, Copy, Debug)]
enum Shown {
    /// The applicant's.
    Application(Uuid),
    /// An objector's, on the application.
    Objection {
        application: Uuid,
        objection: Uuid,
    },
    Complaint(Uuid),
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// A warning for operators when the working-day calendar runs out within
/// [`fupin_kernel::calendar::CALENDAR_NOTICE`] of `today`: steps (R-IN-4) and complaints
/// (R-IN-7) whose deadline would fall after its last day are taken with their deadline
/// pending, neither overdue nor alerted, until the next year's file is deployed.
pub fn calendar_warning(calendar: &WorkingDayCalendar, today: NaiveDate) -> Option<String> {
    let next_year = calendar.year_needed_soon(today)?;
    Some(format!(
        "the working-day calendar has no data for {next_year}: steps and complaints whose \
         deadline would fall in it are taken with their deadline pending, and nothing is \
         overdue until it is counted; add {next_year}.toml to CALENDAR_DIR from the State \
         Council holiday notice and restart intake (calendars are read at start)"
    ))
}

/// Warnings for operators about statutory holidays on a fixed date that the calendar data
/// leaves out ([`fupin_kernel::calendar::fixed_date_statutory_holidays`]) on a day it then
/// counts as a working day, so deadlines across it come one day short. Logged at start
/// rather than refusing it, since a refused start stops every submission for a one-day
/// error; `fupinctl calendar check` fails on them before a restart.
pub fn calendar_mistakes(calendar: &WorkingDayCalendar) -> Vec<String> {
    calendar
        .summaries()
        .flat_map(|summary| {
            let year = summary.year;
            summary
                .unlisted_statutory_days
                .into_iter()
                .filter(|missing| missing.counted_as_working_day)
                .map(move |missing| {
                    format!(
                        "the working-day calendar of {year} does not list {} ({}), a statutory \
                         holiday, as a day off: deadlines count it as a working day; correct \
                         {year}.toml in CALENDAR_DIR, check it with `fupinctl calendar check` \
                         and restart intake",
                        missing.date, missing.name
                    )
                })
        })
        .collect()
}

/// A write under its client request id (R-IN-8): a retry gets the stored first result; a first
/// attempt claims the id and runs `$body` in the claim's transaction, as `$tx: &mut
/// PgConnection`. The body returns the response or the error; [`idempotency::settle`] then
/// stores and commits the response, or keeps a refusal by a rule as the id's first result in
/// the same transaction, or rolls back. (A macro rather than a function taking a closure: the
/// bodies borrow `self`, the caller and the request across awaits, and return early with `?`.)
macro_rules! once {
    ($self:ident, $key:expr, $resp:ty, |$tx:ident| $body:block) => {{
        let key: &RequestKey = $key;
        match idempotency::claim::<$resp>(&$self.pool, key).await? {
            Claim::Replay(r) => Ok(r),
            Claim::Fresh(mut claimed) => {
                let attempt: Result<$resp> = async {
                    let $tx: &mut PgConnection = &mut claimed;
                    $body
                }
                .await;
                let settled = idempotency::settle(claimed, key, attempt).await;
                if settled.is_ok() {
                    // The write may have added outbox events.
                    $self.relay.wake();
                }
                settled
            }
        }
    }};
}

/// Free text a caller typed, checked (R-X-3, see [`form::free_text`]) and trimmed.
fn typed<'a>(
    field: &'static str,
    rule: &'static str,
    value: &'a str,
    max: usize,
    required: bool,
) -> Result<&'a str> {
    form::free_text(field, rule, value, max, required).map_err(app_err(""))?;
    Ok(value.trim())
}

/// A bank sees an application only once it is recommended to it (R-IN-6): the not-found a
/// bank's decision or disbursement gets is the state's, kept with its request id (R-IN-8), so
/// a retry after the recommendation is answered the same instead of acting. Staff see by area,
/// which a retry cannot change.
fn hidden_by_state(actor: &Actor, e: ServiceError) -> ServiceError {
    match e {
        ServiceError::NotFound { what, id } if actor.role == ActorRole::Bank => {
            ServiceError::NotFoundInState { what, id }
        }
        other => other,
    }
}

/// A name a caller typed, checked (R-X-3, see [`form::name`]) and trimmed.
fn typed_name<'a>(field: &'static str, rule: &'static str, value: &'a str) -> Result<&'a str> {
    form::name(field, rule, value, true).map_err(app_err(""))?;
    Ok(value.trim())
}

/// Domain refusals to service errors; `id` names the object for NotFound.
pub fn domain_err(e: DomainError, what: &'static str, id: &str) -> ServiceError {
    match e {
        DomainError::Invalid {
            field,
            rule,
            message,
        } => ServiceError::invalid(field, rule, message),
        DomainError::Refused(fs) => {
            ServiceError::Refused(fs.into_iter().map(rule_failure).collect())
        }
        DomainError::PermissionDenied(m) => ServiceError::PermissionDenied(m),
        DomainError::DeniedInState(m) => ServiceError::DeniedInState(m),
        DomainError::NotVisible => ServiceError::not_found(what, id),
    }
}

fn rule_failure(f: crate::domain::error::Failure) -> RuleFailure {
    RuleFailure {
        rule: f.rule,
        field: f.field.map(str::to_owned),
        message: f.message,
    }
}

/// What admission refused besides the caps `over` (which it checks again): told after them
/// as one bad-input error (R-IN-3 "a refusal names every rule that failed", R-X-3).
fn beside_caps(over: &[RuleFailure], refused: Vec<RuleFailure>) -> Vec<RuleFailure> {
    refused
        .into_iter()
        .filter(|f| {
            !over
                .iter()
                .any(|o| (o.rule, &o.field) == (f.rule, &f.field))
        })
        .collect()
}

fn app_err(id: &str) -> impl Fn(DomainError) -> ServiceError + '_ {
    move |e| domain_err(e, "application", id)
}

const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

/// Filter values in the order and form a token's hash takes them: sorted, once each.
fn canonical(values: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = values.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A listing's page: how many rows and after which one. A page token names the row the
/// previous page ended on and the listing and filters it was issued for (a hash of them). One
/// that does not decode, or was issued for another listing or other filters, is refused: the
/// same row would start the page at another place in other results (R-X-3). Tokens are opaque
/// to callers: base64url of the hash's first 8 bytes and the row id. They are not signed: a
/// forged one can only start the caller's own listing at a row of its choosing.
pub struct Paging {
    pub limit: i64,
    pub after: Option<Uuid>,
    scope: [u8; SCOPE_BYTES],
}

const SCOPE_BYTES: usize = 8;

impl Paging {
    /// `listing` names the RPC, `filters` everything that selects its rows, as plain strings,
    /// numbers and flags (their `Debug` form is hashed: it must not change between releases,
    /// or replicas of two releases would refuse each other's tokens).
    pub fn of(
        p: Option<&fupin_proto::common::v1::PageRequest>,
        listing: &str,
        filters: impl std::fmt::Debug,
    ) -> Result<Self> {
        let n = p.map_or(0, |p| p.page_size);
        if n > MAX_PAGE {
            return Err(ServiceError::invalid(
                "page.page_size",
                "R-X-3",
                format!("at most {MAX_PAGE}"),
            ));
        }
        let limit = i64::from(if n == 0 { DEFAULT_PAGE } else { n });
        let scope = {
            use sha2::Digest;
            let hash = sha2::Sha256::digest(format!("{listing}\0{filters:?}"));
            let mut scope = [0; SCOPE_BYTES];
            scope.copy_from_slice(&hash[..SCOPE_BYTES]);
            scope
        };
        let after = match p.map(|p| p.page_token.as_str()).unwrap_or_default() {
            "" => None,
            token => Some(Self::resume(token, &scope)?),
        };
        Ok(Self {
            limit,
            after,
            scope,
        })
    }

    fn resume(token: &str, scope: &[u8; SCOPE_BYTES]) -> Result<Uuid> {
        use base64::Engine;
        let refused = |why: &str| ServiceError::invalid("page.page_token", "R-X-3", why.to_owned());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .filter(|b| b.len() == SCOPE_BYTES + 16)
            .ok_or_else(|| refused("not a token returned by this API"))?;
        if bytes[..SCOPE_BYTES] != scope[..] {
            return Err(refused(
                "issued for another listing or other filters: repeat the request that returned it",
            ));
        }
        Uuid::from_slice(&bytes[SCOPE_BYTES..])
            .map_err(|_| refused("not a token returned by this API"))
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts `rows` to the page and returns the next page's token, empty on the last page.
    pub fn next_token<T>(&self, rows: &mut Vec<T>, id: impl Fn(&T) -> Uuid) -> String {
        use base64::Engine;
        if rows.len() as i64 <= self.limit {
            return String::new();
        }
        rows.truncate(self.limit as usize);
        rows.last().map_or_else(String::new, |r| {
            let mut bytes = self.scope.to_vec();
            bytes.extend_from_slice(id(r).as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        })
    }
}

impl Intake {
    /// The request's idempotency key; its stored response is sealed, since responses may show
    /// personal data (R-CR-11).
    fn request_key<M: prost::Message>(
        &self,
        caller: &Caller,
        method: &'static str,
        request_id: &str,
        request: &M,
    ) -> Result<RequestKey> {
        Ok(RequestKey::new(caller, method, request_id, request)?.sealed_with(&self.pii))
    }

    pub fn now(&self) -> (DateTime<Utc>, NaiveDate) {
        let now = self.clock.now();
        (now, fupin_kernel::time::china_date(now))
    }

    fn policy_on(&self, today: NaiveDate) -> Result<&Versioned<IntakePolicy>> {
        self.policy.in_force(today).map_err(|e| {
            ServiceError::NotReady(vec![RuleFailure {
                rule: "R-X-4",
                field: None,
                message: e.to_string(),
            }])
        })
    }

    async fn emit<M: prost::Message + prost::Name>(
        &self,
        conn: &mut PgConnection,
        ev: &M,
        about: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        outbox::enqueue(conn, &self.prefix, ev, Some(about), now).await?;
        Ok(())
    }

    /// Raises `ComplaintOverdue` for `row`, on `now`'s China day (R-IN-7).
    async fn flag_complaint(
        &self,
        conn: &mut PgConnection,
        row: &ComplaintRow,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let today = fupin_kernel::time::china_date(now);
        self.emit(
            conn,
            &complaint_overdue(row, today),
            &row.id.to_string(),
            now,
        )
        .await
    }

    /// A write's response that may show personal data: the access is logged in the write's
    /// transaction (R-CR-11).
    async fn shown<R>(
        &self,
        conn: &mut PgConnection,
        key: &RequestKey,
        actor: &Actor,
        shown: Shown,
        unmasked: convert::Unmasked,
        resp: R,
    ) -> Result<R> {
        self.audit_unmasked(conn, actor, key.method, &[(shown, unmasked)])
            .await?;
        Ok(resp)
    }

    async fn record(
        &self,
        conn: &mut PgConnection,
        row: &ApplicationRow,
        moved: &Moved,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<()> {
        apps::record_transition(conn, row, moved, &actor.subject, actor.role.as_str(), now).await?;
        let ev = pb::ApplicationStatusChanged {
            application_id: row.id.to_string(),
            from_status: moved.from.map_or(0, |s| convert::status_to_pb(s) as i32),
            to_status: convert::status_to_pb(moved.to) as i32,
            action: moved.action.to_owned(),
            reason: moved.reason.clone(),
            at: convert::rfc3339(now),
            area_code: row.area_code.clone(),
            policy_version: row.policy_version.clone(),
            corrections: moved
                .corrections
                .iter()
                .map(convert::announced_correction)
                .collect(),
            bank_id: row.bank_id.clone().unwrap_or_default(),
            notice_ends_on: row
                .notice_ends_on
                .map(|d| d.to_string())
                .unwrap_or_default(),
            // Only the bank's decision moves there.
            bank_decision: if matches!(moved.to, Status::BankApproved | Status::BankRejected) {
                row.decision.as_deref().map(convert::bank_decision)
            } else {
                None
            },
            application_version: convert::version(row.version),
            step_entry: if moved.to.step().is_some() {
                u32::try_from(row.step_seq).unwrap_or_default()
            } else {
                0
            },
            step_due_on: match (moved.to.step(), row.step_due_on) {
                (Some(_), Some(due)) => due.to_string(),
                _ => String::new(),
            },
        };
        self.emit(conn, &ev, &row.id.to_string(), now).await
    }

    /// Saves the row with optimistic concurrency (it is also locked, so this only fails if
    /// the caller's expected version was stale).
    async fn save(&self, conn: &mut PgConnection, row: &mut ApplicationRow) -> Result<()> {
        if !apps::update(conn, row).await? {
            return Err(ServiceError::Conflict(
                "application changed concurrently; re-read and retry".into(),
            ));
        }
        row.version += 1;
        Ok(())
    }

    /// Persists a decided move in the caller's transaction: the row (optimistic version) and
    /// the transition with its `ApplicationStatusChanged` event (R-IN-2, R-X-2).
    async fn persist_move(
        &self,
        conn: &mut PgConnection,
        row: &mut ApplicationRow,
        app: &Application,
        moved: &Moved,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // R-IN-4: a step left after its deadline that no scan has alerted yet (scans run every
        // few minutes, or not at all during an outage) is alerted now, once, before the move.
        // A deadline left pending is counted first if the calendar now reaches it; one it
        // still does not reach is kept, for the scan that counts it once the calendar does.
        let mut before = row.aggregate()?;
        let today = fupin_kernel::time::china_date(now);
        let left = (app.step_seq, app.current_step()) != (before.step_seq, before.current_step());
        // The step's own policy, not this move's (R-X-4).
        let policy = row.step_policy_version().to_owned();
        if left
            && before.step_deadline_pending()
            && let Some(p) = self.policy.by_id(&policy)
        {
            before.count_step_deadline(&p.value, &self.calendar);
            // Counted now: the transition that entered the step gets it too.
            if let Some(due) = before.step_due_on {
                apps::set_transition_deadline(
                    conn,
                    row.id,
                    before.step_seq,
                    due,
                    before.step_calendar.as_deref(),
                )
                .await?;
            }
        }
        let late = left && before.needs_overdue_alert(today);
        let still_pending = match (left, before.current_step(), before.step_started_on) {
            (true, Some(step), Some(started_on)) if before.step_deadline_pending() => {
                Some(apps::LeftStepRow {
                    application_id: row.id,
                    step_seq: before.step_seq,
                    step: step.as_str().to_owned(),
                    started_on,
                    left_on: today,
                    policy_version: policy.clone(),
                    area_code: row.area_code.clone(),
                    bank_id: before.bank_id.clone(),
                })
            }
            _ => None,
        };
        row.absorb(app, now);
        let version_before = row.version;
        self.save(conn, row).await?;
        if late {
            let ev = step_overdue(
                row.id,
                version_before,
                LateStep::of(&before),
                &row.area_code,
                today,
                &policy,
            );
            self.emit(conn, &ev, &row.id.to_string(), now).await?;
        }
        if let Some(left_step) = still_pending {
            apps::insert_left_step(conn, &left_step).await?;
        }
        self.record(conn, row, moved, actor, now).await
    }

    /// [`Self::persist_move`], then the response, audited when it shows identifiers (R-CR-11).
    #[allow(clippy::too_many_arguments)]
    async fn show_move(
        &self,
        conn: &mut PgConnection,
        key: &RequestKey,
        mut row: ApplicationRow,
        app: &Application,
        moved: &Moved,
        actor: &Actor,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<pb::Application> {
        self.persist_move(conn, &mut row, app, moved, actor, now)
            .await?;
        let (resp, unmasked) = convert::application(&row, &row.applicant(&self.pii)?, actor, today);
        self.shown(conn, key, actor, Shown::Application(row.id), unmasked, resp)
            .await
    }

    /// Logs an answer to a submission that shows the applicant's admission facts without
    /// being kept with its request id ([`submit::log_told`]).
    async fn log_told(
        &self,
        key: &RequestKey,
        actor: &Actor,
        at: DateTime<Utc>,
        subject_idx: &[u8],
        told: &ServiceError,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(anyhow::Error::from)?;
        submit::log_told(
            &mut conn,
            &submit::Refusal {
                key,
                actor,
                at,
                subject_idx,
                error: told,
            },
        )
        .await
    }

    /// The application, locked for the rest of the transaction, if the actor may see it.
    /// Writes read the clock after it: moves on one application are serialised by this lock,
    /// so their times (a transition's `at`, an objection's `filed_at`) follow the order of
    /// their ids and of the history, and a wait on the lock across midnight decides on the
    /// day the move is made.
    async fn load_locked(
        &self,
        conn: &mut PgConnection,
        id: &str,
        actor: &Actor,
    ) -> Result<(ApplicationRow, Application)> {
        let uuid = convert::uuid("application_id", id).map_err(app_err(id))?;
        let row = apps::get_for_update(conn, uuid)
            .await?
            .ok_or_else(|| ServiceError::not_found("application", id))?;
        let app = row.aggregate()?;
        if !app.visible_to(actor) {
            return Err(ServiceError::not_found("application", id));
        }
        Ok((row, app))
    }

    // ---- R-IN-1 / R-IN-3: submission ----

    // Runs in the call's span (the shared gRPC server opens one per call): no span of its own
    // on the hot path.
    pub async fn submit(
        &self,
        caller: &Caller,
        req: pb::SubmitApplicationRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, submit::METHOD, &req.request_id, &req)?;
        // The hot path: decide here what needs no I/O, then hand the draft to the group commit
        // (`submit`), which decides admission on its copy of the read model and writes the key
        // (with its response), the application, its transition and its event with one
        // statement, for a whole batch of submissions. A retry gets the first result (R-IN-8): the stored
        // response, or the kept refusal.
        let actor = convert::actor(caller);
        let (now, today) = self.now();
        let decided = (|| {
            let policy = self.policy_on(today)?;
            let form = convert::form(&req).map_err(app_err(""))?;
            form::validate(&form, &self.areas, today).map_err(app_err(""))?;
            let filed = Application::file(
                &actor,
                form.applicant.kind(),
                form.applicant.area().clone(),
                form.amount,
                form.term_months,
                today,
                &policy.value,
                &self.calendar,
            )
            .map_err(app_err(""));
            Ok::<_, ServiceError>((form, policy, filed))
        })();
        let refused_early = |e: ServiceError| async {
            match self.stored_response::<pb::Application>(&key).await? {
                Some(first) => Ok(first),
                None => Err(e),
            }
        };
        let (form, policy, filed) = match decided {
            Ok(d) => d,
            Err(e) => return refused_early(e).await,
        };
        let area = form.applicant.area();
        let village =
            (area.level() == fupin_kernel::AreaLevel::Village).then(|| area.as_str().to_owned());
        let town = area.town().map(|t| t.as_str().to_owned());
        // Decided here, outside the group commit, with one read of the read model: an
        // application over the caps (R-IN-3, R-X-3: bad input, told every other rule admission
        // refuses with it, once the caller may file it).
        let over = form::over_caps(&form, &policy.value);
        let (app, moved) = match filed {
            Ok(filed) if over.is_empty() => filed,
            Ok(_) => {
                if let Some(first) = self.stored_response::<pb::Application>(&key).await? {
                    return Ok(first);
                }
                let (index, admitted) = self
                    .admit_alone(
                        &form,
                        village.as_deref(),
                        town.as_deref(),
                        &policy.value,
                        today,
                    )
                    .await?;
                let refused = match admitted {
                    Err(DomainError::Refused(failures)) => failures,
                    _ => Vec::new(),
                };
                let over: Vec<RuleFailure> = over.into_iter().map(rule_failure).collect();
                let others = beside_caps(&over, refused.into_iter().map(rule_failure).collect());
                let told = ServiceError::InvalidArguments {
                    failures: [over, others].concat(),
                    policy: policy.version.id.clone(),
                };
                // The answer shows the applicant's facts (R-CR-11), as a kept refusal does:
                // what else admission refused, or by its absence that admission passed the
                // applicant (QA: a clerk could learn whether anyone is admissible and leave no
                // trace). Not kept.
                self.log_told(&key, &actor, now, &index, &told).await?;
                return Err(told);
            }
            Err(e) => return refused_early(e).await,
        };
        let id = Uuid::now_v7();
        let applicant = ApplicantPii {
            id: form.applicant.id().to_owned(),
            name: form.applicant.name().to_owned(),
            phone: match &form.applicant {
                Applicant::Household(h) => h.phone.clone(),
                Applicant::Enterprise(_) => String::new(),
            },
            legal_representative: match &form.applicant {
                Applicant::Household(_) => String::new(),
                Applicant::Enterprise(e) => e.legal_representative.clone(),
            },
        };
        let sealed = applicant.seal(&self.pii, id);
        let draft = submit::Draft {
            key,
            actor,
            form,
            app,
            moved,
            village,
            town,
            id,
            applicant,
            sealed,
            traceparent: fupin_platform::telemetry::current_traceparent(),
            now,
            today,
        };
        let key = draft.key.clone();
        match self.submissions.submit(draft).await {
            submit::Outcome::Done(resp) => Ok(*resp),
            submit::Outcome::Replay => idempotency::replay(&self.pool, &key).await,
            submit::Outcome::Failed(e) => Err(e),
        }
    }

    /// The stored response to an already-used request id, if any.
    async fn stored_response<R: prost::Message + Default>(
        &self,
        key: &RequestKey,
    ) -> Result<Option<R>> {
        let taken = idempotency::taken(&self.pool, &[key]).await?[0];
        if taken {
            idempotency::replay(&self.pool, key).await.map(Some)
        } else {
            Ok(None)
        }
    }

    pub async fn get(&self, caller: &Caller, id: &str) -> Result<pb::Application> {
        let actor = convert::actor(caller);
        let row = self.visible_row(&actor, id).await?;
        let (_, today) = self.now();
        let (resp, unmasked) =
            convert::application(&row, &row.applicant(&self.pii)?, &actor, today);
        self.audit_unmasked(
            &self.pool,
            &actor,
            "GetApplication",
            &[(Shown::Application(row.id), unmasked)],
        )
        .await?;
        Ok(resp)
    }

    /// The application if the actor may see it; NotFound otherwise (no existence leak).
    async fn visible_row(&self, actor: &Actor, id: &str) -> Result<ApplicationRow> {
        let uuid = convert::uuid("id", id).map_err(app_err(id))?;
        let row = apps::get(&self.pool, uuid)
            .await?
            .ok_or_else(|| ServiceError::not_found("application", id))?;
        if !row.aggregate()?.visible_to(actor) {
            return Err(ServiceError::not_found("application", id));
        }
        Ok(row)
    }

    /// R-CR-11: every response that shows personal data unmasked is logged before it is
    /// returned, one row per application, objection or complaint with the fields shown, in one
    /// statement and in the caller's transaction where there is one. Records shown masked are
    /// skipped.
    async fn audit_unmasked<'c>(
        &self,
        conn: impl sqlx::PgExecutor<'c>,
        actor: &Actor,
        rpc: &str,
        shown: &[(Shown, convert::Unmasked)],
    ) -> Result<()> {
        let rows: Vec<audit::Shown> = shown
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(record, unmasked)| {
                let (application, objection, complaint) = match *record {
                    Shown::Application(id) => (Some(id), None, None),
                    Shown::Objection {
                        application,
                        objection,
                    } => (Some(application), Some(objection), None),
                    Shown::Complaint(id) => (None, None, Some(id)),
                };
                audit::Shown {
                    application,
                    objection,
                    complaint,
                    fields: unmasked.join(","),
                }
            })
            .collect();
        let (now, _) = self.now();
        audit::log_unmasked_reads(conn, now, &audit::Caller::of(actor), rpc, &rows).await?;
        Ok(())
    }

    // ---- listings ----

    pub async fn list(
        &self,
        caller: &Caller,
        req: pb::ListApplicationsRequest,
    ) -> Result<pb::ListApplicationsResponse> {
        let actor = convert::actor(caller);
        if !actor.is_staff() {
            return Err(ServiceError::PermissionDenied(match actor.role {
                ActorRole::Bank => {
                    "staff listing; banks use ListRecommendedApplications [R-IN-6]".into()
                }
                role => format!("staff listing: not for the {} role [R-IN-2]", role.as_str()),
            }));
        }
        let area = if req.area_code.is_empty() {
            actor.area.clone()
        } else {
            let a = fupin_kernel::AreaCode::parse(&req.area_code)
                .map_err(|e| ServiceError::invalid("area_code", "R-X-3", e.to_string()))?;
            if !self.areas.exists(&a) {
                return Err(ServiceError::invalid(
                    "area_code",
                    "R-X-3",
                    format!("{} is not an area of this district", a.as_str()),
                ));
            }
            if !actor.area.contains(&a) {
                return Err(ServiceError::PermissionDenied(format!(
                    "area_code: {} is outside the caller's area [R-IN-2]",
                    a.as_str()
                )));
            }
            a
        };
        let mut statuses = convert::statuses(&req.statuses)
            .map_err(app_err(""))?
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>();
        let step = convert::step_from_pb(req.step).map_err(app_err(""))?;
        // The token is checked against the filters as asked, before they are combined.
        let paging = Paging::of(
            req.page.as_ref(),
            "ListApplications",
            (
                area.as_str(),
                canonical(&statuses),
                step.map(|s| s.review_status().as_str()),
                req.overdue_only,
            ),
        )?;
        if let Some(step) = step {
            let st = step.review_status().as_str().to_owned();
            if !statuses.is_empty() && !statuses.contains(&st) {
                return Ok(pb::ListApplicationsResponse {
                    applications: Vec::new(),
                    page: Some(fupin_proto::common::v1::PageResponse::default()),
                });
            }
            statuses = vec![st];
        }
        let (_, today) = self.now();
        let filter = ListFilter {
            area_prefix: Some(area.as_str().to_owned()),
            statuses,
            overdue_on: req.overdue_only.then_some(today),
            after: paging.after,
            limit: paging.fetch(),
            ..Default::default()
        };
        let mut rows = apps::list(&self.pool, &filter).await?;
        let next = paging.next_token(&mut rows, |r| r.id);
        let (page, shown) = self.application_page(&rows, &actor, today, next)?;
        self.audit_unmasked(&self.pool, &actor, "ListApplications", &shown)
            .await?;
        Ok(page)
    }

    /// A page of applications as `actor` may see them, and what it shows unmasked.
    fn application_page(
        &self,
        rows: &[ApplicationRow],
        actor: &Actor,
        today: NaiveDate,
        next: String,
    ) -> Result<(
        pb::ListApplicationsResponse,
        Vec<(Shown, convert::Unmasked)>,
    )> {
        let mut applications = Vec::with_capacity(rows.len());
        let mut shown = Vec::with_capacity(rows.len());
        for r in rows {
            let (a, unmasked) = convert::application(r, &r.applicant(&self.pii)?, actor, today);
            applications.push(a);
            shown.push((Shown::Application(r.id), unmasked));
        }
        let page = pb::ListApplicationsResponse {
            applications,
            page: Some(fupin_proto::common::v1::PageResponse {
                next_page_token: next,
            }),
        };
        Ok((page, shown))
    }

    pub async fn list_recommended(
        &self,
        caller: &Caller,
        req: pb::ListRecommendedApplicationsRequest,
    ) -> Result<pb::ListApplicationsResponse> {
        let actor = convert::actor(caller);
        let (ActorRole::Bank, Some(bank)) = (actor.role, actor.bank_id.clone()) else {
            return Err(ServiceError::PermissionDenied(
                "only partner banks list recommended applications [R-IN-6]".into(),
            ));
        };
        let statuses = if req.statuses.is_empty() {
            [
                Status::Recommended,
                Status::BankApproved,
                Status::BankRejected,
                Status::Disbursed,
            ]
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect()
        } else {
            let mut v = Vec::new();
            for st in convert::statuses(&req.statuses).map_err(app_err(""))? {
                if !matches!(
                    st,
                    Status::Recommended
                        | Status::BankApproved
                        | Status::BankRejected
                        | Status::Disbursed
                ) {
                    return Err(ServiceError::invalid(
                        "statuses",
                        "R-IN-6",
                        format!("{} is not a bank-side status", st.as_str()),
                    ));
                }
                v.push(st.as_str().to_owned());
            }
            v
        };
        let range = req.recommended_on.unwrap_or_default();
        let from =
            convert::opt_date("recommended_on.from", "R-IN-6", &range.from).map_err(app_err(""))?;
        let to =
            convert::opt_date("recommended_on.to", "R-IN-6", &range.to).map_err(app_err(""))?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(ServiceError::invalid(
                "recommended_on.to",
                "R-IN-6",
                format!("{to} is before recommended_on.from {from}"),
            ));
        }
        let paging = Paging::of(
            req.page.as_ref(),
            "ListRecommendedApplications",
            (
                &bank,
                canonical(&statuses),
                from.map(|d| d.to_string()),
                to.map(|d| d.to_string()),
            ),
        )?;
        let filter = ListFilter {
            bank_id: Some(bank),
            statuses,
            recommended_from: from,
            recommended_to: to,
            after: paging.after,
            limit: paging.fetch(),
            ..Default::default()
        };
        let mut rows = apps::list(&self.pool, &filter).await?;
        let next = paging.next_token(&mut rows, |r| r.id);
        let (_, today) = self.now();
        let (page, shown) = self.application_page(&rows, &actor, today, next)?;
        self.audit_unmasked(&self.pool, &actor, "ListRecommendedApplications", &shown)
            .await?;
        Ok(page)
    }

    pub async fn transitions(
        &self,
        caller: &Caller,
        req: pb::ListTransitionsRequest,
    ) -> Result<pb::ListTransitionsResponse> {
        let id = convert::uuid("application_id", &req.application_id).map_err(app_err(""))?;
        // Visibility first: the history of an application one may not see is not found.
        self.visible_row(&convert::actor(caller), &req.application_id)
            .await?;
        let paging = Paging::of(req.page.as_ref(), "ListTransitions", id)?;
        let mut rows = apps::transitions(&self.pool, id, paging.after, paging.fetch()).await?;
        let next = paging.next_token(&mut rows, |t| t.id);
        Ok(pb::ListTransitionsResponse {
            transitions: rows.iter().map(convert::transition).collect(),
            page: Some(fupin_proto::common::v1::PageResponse {
                next_page_token: next,
            }),
        })
    }

    // ---- R-IN-2: staff steps ----

    pub async fn review(
        &self,
        caller: &Caller,
        req: pb::ReviewApplicationRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, "ReviewApplication", &req.request_id, &req)?;
        once!(self, &key, pb::Application, |tx| {
            let actor = convert::actor(caller);
            // Who before what (README): an application the caller cannot see is not found and
            // a bank is denied, whatever the request says.
            let (mut row, mut app) = self.load_locked(tx, &req.application_id, &actor).await?;
            app.check_reviewer(&actor)
                .map_err(app_err(&req.application_id))?;
            let decision = convert::decision(req.decision).map_err(app_err(""))?;
            typed("reason", "R-IN-2", &req.reason, form::MAX_TEXT, false)?;
            // A rejection or return without a reason is wrong in any state: refused before
            // the state is read, and not kept with the request id.
            decision.check_reason(&req.reason).map_err(app_err(""))?;
            let (now, today) = self.now();
            if req.expected_version != 0 && req.expected_version != row.version as u64 {
                return Err(ServiceError::Conflict(format!(
                    "expected_version: {} but the application is at version {}; re-read and \
                     retry [R-IN-2]",
                    req.expected_version, row.version
                )));
            }
            let policy = self.policy_on(today)?;
            let moved = app
                .review(
                    &actor,
                    decision,
                    &req.reason,
                    today,
                    &policy.value,
                    &self.calendar,
                )
                .map_err(app_err(&req.application_id))?;
            row.decided_under(&policy.version.id);
            self.show_move(tx, &key, row, &app, &moved, &actor, now, today)
                .await
        })
    }

    pub async fn resubmit(
        &self,
        caller: &Caller,
        req: pb::ResubmitApplicationRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, "ResubmitApplication", &req.request_id, &req)?;
        once!(self, &key, pb::Application, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut app) = self.load_locked(tx, &req.application_id, &actor).await?;
            // The note is malformed in any state (R-X-3): refused once the application is
            // known to be visible, before anything else, and not kept.
            let note = typed("note", "R-IN-2", &req.note, form::MAX_TEXT, false)?.to_owned();
            let (now, today) = self.now();
            let policy = self.policy_on(today)?;
            let terms_before = (
                app.amount,
                app.term_months,
                row.purpose,
                row.project_description.clone(),
            );
            // Corrections: empty fields keep the current value; the corrected application is
            // validated and admitted again like a new submission.
            if req.amount.as_ref().is_some_and(|m| !m.amount.is_empty()) {
                app.amount =
                    convert::money("amount", "R-IN-1", req.amount.as_ref()).map_err(app_err(""))?;
            }
            if req.term_months != 0 {
                app.term_months = req.term_months;
            }
            if req.purpose != 0 {
                row.purpose = convert::purpose(req.purpose).map_err(app_err(""))?.code();
            }
            if !req.project_description.trim().is_empty() {
                row.project_description = req.project_description.trim().to_owned();
            }
            // Who may resubmit, and whether the application is returned, before the corrected
            // form is judged: an application that is not returned is refused as such (R-IN-2).
            let mut moved = app
                .resubmit(&actor, today, &policy.value, &self.calendar)
                .map_err(app_err(&req.application_id))?;
            let mut who = row.applicant(&self.pii)?;
            let applicant_before = (who.clone(), row.poor_household_number.clone(), row.self_use);
            let corrected = correct_applicant(&req, app.kind, &mut row, &mut who)?;
            // R-IN-2: the history keeps what the tiers that approved before the return saw.
            let (amount, term, purpose, description) = terms_before;
            let (was, number, self_use) = applicant_before;
            let household = app.kind == crate::domain::ApplicantKind::Household;
            let purpose_name =
                |code: i32| pb::Purpose::try_from(code).map_or("", |p| p.as_str_name());
            let terms = [
                Correction::of("amount", amount, app.amount),
                Correction::of("term_months", term, app.term_months),
                Correction::of("purpose", purpose_name(purpose), purpose_name(row.purpose)),
                Correction::of("project_description", description, &row.project_description),
            ];
            // A household's name, phone and registration number, and an organisation's legal
            // representative, are personal data (R-CR-11): corrected, without their values. A
            // company's name is not.
            let applicant = if household {
                vec![
                    Correction::personal("household.name", &was.name, &who.name),
                    Correction::personal("household.phone", &was.phone, &who.phone),
                    Correction::personal(
                        "household.poor_household_number",
                        &number,
                        &row.poor_household_number,
                    ),
                    Correction::of(
                        "household.household_borrows_uses_repays",
                        self_use,
                        row.self_use,
                    ),
                ]
            } else {
                vec![
                    Correction::of("enterprise.name", &was.name, &who.name),
                    Correction::personal(
                        "enterprise.legal_representative",
                        &was.legal_representative,
                        &who.legal_representative,
                    ),
                ]
            };
            let corrections = terms.into_iter().chain(applicant).flatten().collect();
            let form = self.form_of(&row, &who, &app)?;
            form::validate(&form, &self.areas, today).map_err(app_err(""))?;
            // A cap the corrected amount or term exceeds is bad input, told with every other
            // rule admission refuses (R-IN-3, R-X-3). One the stored value exceeds (the cap
            // lowered since) is admission's refusal under the policy, as at recommendation.
            let corrected_field = |f: &crate::domain::error::Failure| match f.field {
                Some("amount") => req.amount.as_ref().is_some_and(|m| !m.amount.is_empty()),
                Some("term_months") => req.term_months != 0,
                _ => false,
            };
            let over: Vec<RuleFailure> = form::over_caps(&form, &policy.value)
                .into_iter()
                .filter(corrected_field)
                .map(rule_failure)
                .collect();
            if !over.is_empty() {
                let others = match self.admit_again(tx, &form, &row, policy, today).await {
                    Ok(_) => Vec::new(),
                    Err(
                        ServiceError::Refused(f)
                        | ServiceError::RefusedUnderPolicy { failures: f, .. },
                    ) => f,
                    Err(e) => return Err(e),
                };
                let others = beside_caps(&over, others);
                return Err(ServiceError::InvalidArguments {
                    failures: [over, others].concat(),
                    policy: policy.version.id.clone(),
                });
            }
            self.admit_again(tx, &form, &row, policy, today).await?;
            moved.reason = note;
            moved.corrections = corrections;
            if corrected {
                row.correct_applicant(&self.pii, &who);
                apps::save_applicant_corrections(tx, &row).await?;
            }
            row.decided_under(&policy.version.id);
            self.show_move(tx, &key, row, &app, &moved, &actor, now, today)
                .await
        })
    }

    /// Admission (R-IN-3) of a submission decided outside the group commit (over the caps),
    /// on the read model's tables: the applicant's blind index, and admission's verdict.
    async fn admit_alone(
        &self,
        form: &form::ApplicationForm,
        village: Option<&str>,
        town: Option<&str>,
        policy: &IntakePolicy,
        today: NaiveDate,
    ) -> Result<(Vec<u8>, std::result::Result<(), DomainError>)> {
        let index = pii::subject_index(&self.pii, form.applicant.id());
        let facts =
            readmodel::admission_facts(&self.pool, subject(&form.applicant, &index), village, town)
                .await?;
        let admitted = admission::check(form, &facts, policy, today);
        Ok((index, admitted))
    }

    /// Admission (R-IN-3) of a stored application, against the read model as it is now. Read
    /// inside the writing transaction: a busy pool must not stall a row lock.
    async fn admit_again(
        &self,
        conn: &mut PgConnection,
        form: &form::ApplicationForm,
        row: &ApplicationRow,
        policy: &Versioned<IntakePolicy>,
        today: NaiveDate,
    ) -> Result<Option<admission::CreditStanding>> {
        let facts = readmodel::admission_facts(
            conn,
            subject(&form.applicant, &row.applicant_id_idx),
            row.village_code.as_deref(),
            row.town_code.as_deref(),
        )
        .await?;
        admission::check(form, &facts, &policy.value, today)
            .map_err(|e| app_err("")(e).under_policy(&policy.version.id))?;
        // A household admitted is a credit household today: its standing, for the record.
        Ok(admission::standing(form, &facts, &policy.value, today))
    }

    /// Rebuilds the submitted form from the stored row and its opened personal data (for
    /// re-checks).
    fn form_of(
        &self,
        row: &ApplicationRow,
        who: &ApplicantPii,
        app: &Application,
    ) -> Result<form::ApplicationForm> {
        use fupin_kernel::{AreaCode, ResidentId, Uscc};
        let applicant = match app.kind {
            crate::domain::ApplicantKind::Household => {
                Applicant::Household(form::HouseholdApplicant {
                    resident_id: ResidentId::parse(&who.id).map_err(anyhow::Error::from)?,
                    name: who.name.clone(),
                    phone: who.phone.clone(),
                    village: AreaCode::parse(&row.area_code).map_err(anyhow::Error::from)?,
                    poor_household_number: row.poor_household_number.clone(),
                    self_use: row.self_use,
                })
            }
            kind => Applicant::Enterprise(form::EnterpriseApplicant {
                uscc: Uscc::parse(&who.id).map_err(anyhow::Error::from)?,
                name: who.name.clone(),
                area: AreaCode::parse(&row.area_code).map_err(anyhow::Error::from)?,
                kind,
                legal_representative: who.legal_representative.clone(),
            }),
        };
        Ok(form::ApplicationForm {
            applicant,
            amount: app.amount,
            term_months: app.term_months,
            purpose: crate::domain::Purpose::from_code(row.purpose)
                .ok_or_else(|| anyhow::anyhow!("bad purpose"))?,
            description: row.project_description.clone(),
        })
    }

    // ---- R-IN-5: public notice ----

    pub async fn file_objection(
        &self,
        caller: &Caller,
        req: pb::FileObjectionRequest,
    ) -> Result<pb::Objection> {
        let key = self.request_key(caller, "FileObjection", &req.request_id, &req)?;
        once!(self, &key, pb::Objection, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut app) = self.load_locked(tx, &req.application_id, &actor).await?;
            // Who before what (README): a caller who may not object learns nothing of the
            // objection's text.
            app.check_objector(&actor)
                .map_err(app_err(&req.application_id))?;
            typed("content", "R-IN-5", &req.content, form::MAX_TEXT, true)?;
            typed_name("objector", "R-IN-5", &req.objector)?;
            let (now, today) = self.now();
            let moved = app
                .file_objection(&actor, today)
                .map_err(app_err(&req.application_id))?;
            let objector = req.objector.trim();
            let id = Uuid::now_v7();
            let o = apps::ObjectionRow {
                id,
                application_id: row.id,
                objector_enc: apps::ObjectionRow::seal_objector(&self.pii, id, objector),
                content: req.content.trim().to_owned(),
                state: "open".into(),
                resolution: String::new(),
                filed_at: now,
                resolved_at: None,
                filed_by: actor.subject.clone(),
                resolved_by: None,
            };
            apps::insert_objection(tx, &o).await?;
            if let Some(mut moved) = moved {
                // Why the application is held (R-IN-2 "who, when, why"): the objection, by id
                // (its content may name people; it is read through ListObjections).
                moved.reason = format!("objection {id}");
                self.persist_move(tx, &mut row, &app, &moved, &actor, now)
                    .await?;
            }
            // An echo of the caller's own input: not an access to log (R-CR-11).
            let (resp, _) = objection_pb(&o, objector, &actor);
            Ok(resp)
        })
    }

    /// R-IN-5: the objections of an application the caller may see, for service staff (they
    /// file and resolve them; a bank never needs who objected); objectors' names shown as the
    /// caller's role may see them, unmasked ones logged (R-CR-11).
    pub async fn objections(
        &self,
        caller: &Caller,
        req: pb::ListObjectionsRequest,
    ) -> Result<pb::ListObjectionsResponse> {
        let id = convert::uuid("application_id", &req.application_id).map_err(app_err(""))?;
        let actor = convert::actor(caller);
        if !actor.is_staff() {
            return Err(ServiceError::PermissionDenied(
                "objections are listed to service staff [R-IN-5]".into(),
            ));
        }
        self.visible_row(&actor, &req.application_id).await?;
        let paging = Paging::of(req.page.as_ref(), "ListObjections", id)?;
        let mut rows = apps::objections(&self.pool, id, paging.after, paging.fetch()).await?;
        let next = paging.next_token(&mut rows, |o| o.id);
        let mut objections = Vec::with_capacity(rows.len());
        let mut shown = Vec::new();
        for o in &rows {
            let (pb, unmasked) = objection_pb(o, &o.objector(&self.pii)?, &actor);
            objections.push(pb);
            shown.push((
                Shown::Objection {
                    application: o.application_id,
                    objection: o.id,
                },
                unmasked,
            ));
        }
        self.audit_unmasked(&self.pool, &actor, "ListObjections", &shown)
            .await?;
        Ok(pb::ListObjectionsResponse {
            objections,
            page: Some(fupin_proto::common::v1::PageResponse {
                next_page_token: next,
            }),
        })
    }

    pub async fn resolve_objection(
        &self,
        caller: &Caller,
        req: pb::ResolveObjectionRequest,
    ) -> Result<pb::Objection> {
        let key = self.request_key(caller, "ResolveObjection", &req.request_id, &req)?;
        once!(self, &key, pb::Objection, |tx| {
            let actor = convert::actor(caller);
            let oid = convert::uuid("objection_id", &req.objection_id).map_err(app_err(""))?;
            let not_found = || ServiceError::not_found("objection", &req.objection_id);
            // The application first, then the objection: the lock order of every write on an
            // application's objections (filing, and closing the others when one is upheld), so
            // two resolutions of one application's objections queue instead of deadlocking.
            // An objection on an application the caller may not see is itself not found: the
            // answer names neither the application nor that the objection exists.
            let app_id = apps::objection_application(tx, oid)
                .await?
                .ok_or_else(not_found)?;
            let (mut row, mut app) = self
                .load_locked(tx, &app_id.to_string(), &actor)
                .await
                .map_err(|e| match e {
                    ServiceError::NotFound { .. } => not_found(),
                    e => e,
                })?;
            let mut o = apps::objection_for_update(tx, oid)
                .await?
                .ok_or_else(not_found)?;
            let (now, _) = self.now();
            // Who may resolve first: a caller who may not is denied, not told the objection's
            // state (a refusal that would be kept with their request id).
            app.check_resolver(&actor)
                .map_err(app_err(&req.objection_id))?;
            typed(
                "resolution",
                "R-IN-5",
                &req.resolution,
                form::MAX_TEXT,
                true,
            )?;
            if o.state != "open" {
                return Err(ServiceError::refused(
                    "R-IN-5",
                    format!("objection already {}", o.state),
                ));
            }
            let others = apps::open_objections_except(tx, row.id, o.id).await? as usize;
            let moved = app
                .resolve_objection(&actor, req.upheld, others)
                .map_err(app_err(&req.objection_id))?;
            o.state = if req.upheld { "upheld" } else { "dismissed" }.into();
            o.resolution = req.resolution.trim().to_owned();
            o.resolved_at = Some(now);
            o.resolved_by = Some(actor.subject.clone());
            apps::resolve_objection(tx, &o).await?;
            if req.upheld {
                apps::supersede_open_objections(tx, row.id, o.id, &actor.subject, now).await?;
            }
            if let Some(mut moved) = moved {
                // Like the hold, the release names the objection: its resolution answers the
                // content, may name people just as well, and is read through ListObjections
                // (R-IN-2 "why", R-CR-11), not announced on a subject subscribers read.
                moved.reason = format!("objection {}", o.id);
                self.persist_move(tx, &mut row, &app, &moved, &actor, now)
                    .await?;
            }
            let (resp, unmasked) = objection_pb(&o, &o.objector(&self.pii)?, &actor);
            let shown = Shown::Objection {
                application: o.application_id,
                objection: o.id,
            };
            self.shown(tx, &key, &actor, shown, unmasked, resp).await
        })
    }

    // ---- R-IN-2 / R-IN-3 / R-IN-6: recommendation and the bank ----

    pub async fn recommend(
        &self,
        caller: &Caller,
        req: pb::RecommendToBankRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, "RecommendToBank", &req.request_id, &req)?;
        once!(self, &key, pb::Application, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut app) = self.load_locked(tx, &req.application_id, &actor).await?;
            let (now, today) = self.now();
            let policy = self.policy_on(today)?;
            // Who may recommend before to which bank (a clerk of another tier is denied).
            app.check_recommender(&actor)
                .map_err(app_err(&req.application_id))?;
            let bank = req.bank_id.trim();
            if !policy.value.partner_banks.iter().any(|b| b == bank) {
                return Err(ServiceError::invalid(
                    "bank_id",
                    "R-IN-6",
                    format!(
                        "{:?} is not a partner bank",
                        fupin_kernel::text::excerpt(bank)
                    ),
                ));
            }
            let moved = app
                .recommend(&actor, bank, today, &policy.value, &self.calendar)
                .map_err(app_err(&req.application_id))?;
            // R-IN-3: admission is checked again at recommendation.
            let form = self.form_of(&row, &row.applicant(&self.pii)?, &app)?;
            self.admit_again(tx, &form, &row, policy, today).await?;
            row.decided_under(&policy.version.id);
            self.show_move(tx, &key, row, &app, &moved, &actor, now, today)
                .await
        })
    }

    pub async fn bank_decision(
        &self,
        caller: &Caller,
        req: pb::RecordBankDecisionRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, "RecordBankDecision", &req.request_id, &req)?;
        once!(self, &key, pb::Application, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut app) = self
                .load_locked(tx, &req.application_id, &actor)
                .await
                .map_err(|e| hidden_by_state(&actor, e))?;
            let (now, today) = self.now();
            let policy = self.policy_on(today)?;
            // Who may decide before what was decided: anyone but the bank it was recommended
            // to is denied whatever the payload; then the payload (wrong in any state:
            // INVALID_ARGUMENT), then the state (README "Who before what").
            app.check_bank(&actor)
                .map_err(app_err(&req.application_id))?;
            // Every field sent is checked, the other outcome's too (left empty or zero, as a
            // core sends a field it does not use, it is not given); only the outcome's are
            // recorded.
            let given = |s: &str| {
                let s = s.trim();
                !s.is_empty()
                    && s.parse::<rust_decimal::Decimal>()
                        .map_or(true, |d| !d.is_zero())
            };
            if req.approved {
                bank::check_unused_reason(&req.rejection_reason).map_err(app_err(""))?;
            } else {
                let amount = match &req.approved_amount {
                    Some(m) if given(&m.amount) => Some(
                        convert::money("approved_amount", "R-IN-6", Some(m))
                            .map_err(app_err(""))?,
                    ),
                    _ => None,
                };
                let rate = if given(&req.annual_rate) {
                    Some(convert::annual_rate(&req.annual_rate).map_err(app_err(""))?)
                } else {
                    None
                };
                bank::check_unused_approval(
                    app.kind,
                    app.amount,
                    amount,
                    rate,
                    (req.term_months != 0).then_some(req.term_months),
                    &policy.value,
                )
                .map_err(app_err(""))?;
            }
            let mut decision = if req.approved {
                let amount =
                    convert::money("approved_amount", "R-IN-6", req.approved_amount.as_ref())
                        .map_err(app_err(""))?;
                let rate = convert::annual_rate(&req.annual_rate).map_err(app_err(""))?;
                let approval = Approval::new(
                    app.kind,
                    app.amount,
                    amount,
                    rate,
                    req.term_months,
                    &policy.value,
                )
                .map_err(app_err(""))?;
                BankDecision::approved(approval, now)
            } else {
                BankDecision {
                    approved: false,
                    rejection_reason: bank::rejection_reason(&req.rejection_reason)
                        .map_err(app_err(""))?
                        .to_owned(),
                    decided_at: now,
                    ..Default::default()
                }
            };
            let moved = app
                .bank_decide(&actor, req.approved, &decision.rejection_reason)
                .map_err(app_err(&req.application_id))?;
            // R-IN-3 once more for what the bank approves, against the read model and the
            // policy of the decision day: a blacklisting, downgrade or suspension during the
            // bank's step refuses the approval (kept with the request id), as it would have
            // refused the recommendation.
            if let (Some(amount), Some(term)) = (decision.approved_amount, decision.term_months) {
                let mut form = self.form_of(&row, &row.applicant(&self.pii)?, &app)?;
                form.amount = amount;
                form.term_months = term;
                // The bank's fields: what admission calls the amount is the approved amount.
                // The credit it judged on is kept with the approval, for the loan's
                // announcement (R-RK-10).
                decision.credit = self
                    .admit_again(tx, &form, &row, policy, today)
                    .await
                    .map_err(|e| e.with_field_renamed("amount", "approved_amount"))?;
            }
            row.decision = Some(sqlx::types::Json(decision));
            row.decided_under(&policy.version.id);
            self.show_move(tx, &key, row, &app, &moved, &actor, now, today)
                .await
        })
    }

    pub async fn disburse(
        &self,
        caller: &Caller,
        req: pb::RecordDisbursementRequest,
    ) -> Result<pb::Application> {
        let key = self.request_key(caller, "RecordDisbursement", &req.request_id, &req)?;
        once!(self, &key, pb::Application, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut app) = self
                .load_locked(tx, &req.application_id, &actor)
                .await
                .map_err(|e| hidden_by_state(&actor, e))?;
            let (now, today) = self.now();
            // As for the decision (README "Who before what"): anyone but the bank it was
            // recommended to is denied; then what the request says on its own
            // (INVALID_ARGUMENT, nothing kept); then the state; then the request against the
            // approval the state says there is.
            app.check_bank(&actor)
                .map_err(app_err(&req.application_id))?;
            let record = disbursement(&req, today)?;
            let moved = app.disburse(&actor).map_err(app_err(&req.application_id))?;
            // Approved by the bank (the move above checked), so its approval is stored.
            let approval = row
                .decision
                .as_ref()
                .and_then(|d| d.0.approval())
                .ok_or_else(|| anyhow::anyhow!("application {} approved without terms", row.id))?;
            let policy = self.policy_on(today)?;
            record
                .within(&approval, row.recommended_on, &policy.value)
                .map_err(app_err(""))?;
            let bank = row.bank_id.clone().unwrap_or_default();
            if let Some(holder) =
                apps::loan_account_holder(tx, &bank, &record.loan_account_number, row.id).await?
            {
                // Not kept with the request id: the bank corrects the number and sends again.
                return Err(ServiceError::AlreadyExists(format!(
                    "loan_account_number: {:?} already holds the loan of application {holder} \
                     [R-IN-6]",
                    record.loan_account_number
                )));
            }
            row.disbursement = Some(sqlx::types::Json(record.clone()));
            // Disbursement and loan servicing need the borrower's identity: the event carries it
            // in the clear, on a subject only the platform's services read (README "Personal
            // data").
            let borrower = row.applicant(&self.pii)?;
            // What admission judged the household's credit on at the bank's approval.
            let credit = row.decision.as_ref().and_then(|d| d.0.credit.as_ref());
            let ev = pb::LoanDisbursed {
                loan_id: record.loan_id.to_string(),
                application_id: row.id.to_string(),
                kind: convert::kind_to_pb(app.kind) as i32,
                borrower_id: borrower.id,
                borrower_name: borrower.name,
                village_code: row.village_code.clone().unwrap_or_default(),
                town_code: row.town_code.clone().unwrap_or_default(),
                area_code: row.area_code.clone(),
                bank_id: row.bank_id.clone().unwrap_or_default(),
                loan_account_number: record.loan_account_number.clone(),
                amount: record.amount.to_string(),
                annual_rate: approval.annual_rate().to_string(),
                term_months: approval.term_months(),
                disbursed_on: record.disbursed_on.to_string(),
                schedule: record
                    .schedule
                    .iter()
                    .map(|i| pb::Instalment {
                        due_on: i.due_on.to_string(),
                        principal: convert::pb_money(i.principal),
                        interest: convert::pb_money(i.interest),
                    })
                    .collect(),
                purpose: row.purpose,
                policy_version: row.policy_version.clone(),
                credit_grade: credit.map(|c| c.grade.clone()).unwrap_or_default(),
                credit_line: credit
                    .map(|c| c.credit_line.to_string())
                    .unwrap_or_default(),
                credit_village: credit.is_some_and(|c| c.credit_village),
                approved_amount: approval.amount().to_string(),
                poor_household_number: row.poor_household_number.clone(),
                project_description: row.project_description.clone(),
                // The version the move to DISBURSED saves below.
                application_version: convert::version(row.version + 1),
            };
            self.emit(tx, &ev, &row.id.to_string(), now).await?;
            self.show_move(tx, &key, row, &app, &moved, &actor, now, today)
                .await
        })
    }

    // ---- R-IN-4 / R-IN-7: deadline scan ----

    /// The scan on request (R-IN-8): the first run under a request id answers every retry. The
    /// scan commits its alerts batch by batch, as the scheduled one does; should it fail half
    /// way, nothing is kept with the request id, and a retry raises what is left (each alert
    /// is raised once whatever runs the scan).
    pub async fn run_deadline_scan(
        &self,
        caller: &Caller,
        req: pb::RunDeadlineScanRequest,
    ) -> Result<pb::RunDeadlineScanResponse> {
        let key = self.request_key(caller, "RunDeadlineScan", &req.request_id, &req)?;
        let _one_at_a_time = self.manual_scans.lock().await;
        once!(self, &key, pb::RunDeadlineScanResponse, |_tx| {
            self.scan_deadlines().await
        })
    }

    /// Raises `ApplicationStepOverdue` once per overdue step and `ComplaintOverdue` once per
    /// overdue complaint. Safe to run concurrently (alerts claim their rows with SKIP LOCKED;
    /// counting the deadlines left pending waits for rows a move holds). A
    /// failure of the applications' part does not keep the complaints' from running (the
    /// first error is returned once both ran, the other logged).
    pub async fn scan_deadlines(&self) -> Result<pb::RunDeadlineScanResponse> {
        let (now, today) = self.now();
        let mut out = pb::RunDeadlineScanResponse::default();
        let countable = self.countable_from(today);
        let applications = self
            .scan_applications(now, today, countable, &mut out)
            .await;
        let complaints = self.scan_complaints(now, today, countable, &mut out).await;
        // What either part committed is published, whatever the other did.
        self.relay.wake();
        if let (Err(first), Err(second)) = (&applications, &complaints) {
            tracing::warn!(error = %first, "the applications' deadline scan failed");
            tracing::warn!(error = %second, "the complaints' deadline scan failed");
        }
        applications.and(complaints)?;
        Ok(out)
    }

    /// R-IN-4: raises `ApplicationStepOverdue` for each step past its deadline not yet alerted,
    /// in id order (counting first the deadlines left pending that the calendar now reaches).
    /// A row it cannot read is logged and passed over, so that one bad row cannot stop every
    /// alert after it.
    async fn scan_applications(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        countable: Option<NaiveDate>,
        out: &mut pb::RunDeadlineScanResponse,
    ) -> Result<()> {
        if let Some(countable) = countable {
            out.newly_overdue += self
                .count_pending_step_deadlines(now, today, countable)
                .await?;
        }
        let mut after = None;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = apps::overdue_unalerted(&mut tx, today, after, 200).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for r in &rows {
                let mut app = match r.aggregate() {
                    Ok(app) => app,
                    Err(e) => {
                        tracing::error!(application = %r.id, error = %e,
                            "an application the deadline scan cannot read is not alerted");
                        continue;
                    }
                };
                if !app.needs_overdue_alert(today) {
                    continue;
                }
                app.mark_overdue_alerted();
                apps::mark_overdue_alerted(&mut tx, r.id, r.step_seq).await?;
                let late = LateStep::of(&app);
                let ev = step_overdue(
                    r.id,
                    r.version,
                    late,
                    &r.area_code,
                    today,
                    &r.policy_version,
                );
                self.emit(&mut tx, &ev, &r.id.to_string(), now).await?;
                out.newly_overdue += 1;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// The last day from which this process's calendar counts every deadline a deployed
    /// policy version sets (its longest step or answer period): deadlines left pending for
    /// want of a calendar and started by then can be counted now; none started after can. So
    /// a scan looks only at those, and a process whose calendar reaches no further than the
    /// one that left them pending reads none (no row locked, nothing logged). None when the
    /// calendar has no data for `today`.
    fn countable_from(&self, today: NaiveDate) -> Option<NaiveDate> {
        let longest = self
            .policy
            .versions()
            .iter()
            .map(|v| {
                let p = &v.value;
                [
                    p.village_review_days,
                    p.town_review_days,
                    p.district_review_days,
                    p.bank_decision_days,
                    p.complaint_answer_days,
                ]
                .into_iter()
                .max()
                .unwrap_or_default()
            })
            .max()?;
        self.calendar.last_start_for(longest, today)
    }

    /// R-IN-4: counts the deadlines of steps entered while the calendar did not reach them,
    /// now that it does: the step's working days under the policy version it was entered
    /// under, from the day it started. Those already past are alerted by the scan that
    /// follows; those left meanwhile are alerted here if they were left after their
    /// deadline. Run by every scan, over the steps started by `countable` (see
    /// [`Self::countable_from`]): a replica with an older calendar may leave deadlines pending
    /// at any time. A row it cannot read, or whose policy is gone, is logged and left pending
    /// rather than stopping the scan. Returns how many left steps it alerted.
    async fn count_pending_step_deadlines(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        countable: NaiveDate,
    ) -> Result<u32> {
        let mut after = None;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = apps::deadline_pending(&mut tx, countable, after, 200).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for mut row in rows {
                let Some(policy) = self.policy.by_id(&row.policy_version) else {
                    tracing::warn!(application = %row.id, policy = %row.policy_version,
                        "a step's policy version is no longer deployed; its deadline stays pending");
                    continue;
                };
                let mut app = match row.aggregate() {
                    Ok(app) => app,
                    Err(e) => {
                        tracing::error!(application = %row.id, error = %e,
                            "an unreadable application; its step deadline stays pending");
                        continue;
                    }
                };
                if app.count_step_deadline(&policy.value, &self.calendar) {
                    row.step_due_on = app.step_due_on;
                    row.step_calendar = app.step_calendar;
                    // Counted once: a step another pass counted meanwhile is left as it is.
                    apps::set_step_deadline(&mut tx, &row, now).await?;
                }
            }
            tx.commit().await?;
        }
        self.count_left_step_deadlines(now, today, countable).await
    }

    /// R-IN-4: counts the deadlines of steps left while they were pending, and alerts each
    /// one left after its deadline, once (detected on `today`). Returns how many it alerted.
    async fn count_left_step_deadlines(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        countable: NaiveDate,
    ) -> Result<u32> {
        let mut alerted = 0;
        let mut after = None;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = apps::left_steps_pending(&mut tx, countable, after, 200).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.application_id, last.step_seq));
            for r in rows {
                let Some(policy) = self.policy.by_id(&r.policy_version) else {
                    tracing::warn!(application = %r.application_id, policy = %r.policy_version,
                        "a left step's policy version is no longer deployed; its deadline stays pending");
                    continue;
                };
                let Some(step) = crate::domain::Step::parse(&r.step) else {
                    tracing::error!(application = %r.application_id, step = %r.step,
                        "an unreadable left step; its deadline stays pending");
                    continue;
                };
                let Some((due, version)) = crate::domain::application::step_deadline(
                    step,
                    r.started_on,
                    &policy.value,
                    &self.calendar,
                ) else {
                    continue;
                };
                // Counted once: a row another pass took meanwhile is gone.
                let counted = apps::delete_left_step(&mut tx, &r).await?;
                if counted {
                    apps::set_transition_deadline(
                        &mut tx,
                        r.application_id,
                        r.step_seq,
                        due,
                        Some(&version),
                    )
                    .await?;
                }
                if counted && r.left_on > due {
                    // Ordered with the application's moves, which lock its row: without it, a
                    // move committing after this alert's outbox row was written but before
                    // this commit would be published after it.
                    let now_version = apps::lock_application(&mut tx, r.application_id).await?;
                    let late = LateStep {
                        step: Some(step),
                        entry: r.step_seq,
                        due_on: Some(due),
                        calendar_version: Some(&version),
                        bank_id: r.bank_id.as_deref(),
                        left_on: Some(r.left_on),
                    };
                    let ev = step_overdue(
                        r.application_id,
                        now_version,
                        late,
                        &r.area_code,
                        today,
                        &r.policy_version,
                    );
                    self.emit(&mut tx, &ev, &r.application_id.to_string(), now)
                        .await?;
                    alerted += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(alerted)
    }

    /// R-IN-7: raises `ComplaintOverdue` for each unanswered complaint past its deadline not
    /// yet flagged (counting first the deadlines left pending that the calendar now reaches).
    async fn scan_complaints(
        &self,
        now: DateTime<Utc>,
        today: NaiveDate,
        countable: Option<NaiveDate>,
        out: &mut pb::RunDeadlineScanResponse,
    ) -> Result<()> {
        if let Some(countable) = countable {
            out.complaints_flagged += self
                .count_pending_complaint_deadlines(now, countable)
                .await?;
        }
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = complaints::overdue_unalerted(&mut tx, today, 200).await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let mut row = r;
                row.overdue_alerted = true;
                complaints::save(&mut tx, &row).await?;
                self.flag_complaint(&mut tx, &row, now).await?;
                out.complaints_flagged += 1;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// R-IN-7: counts the answer deadlines of complaints lodged while the calendar did not
    /// cover them, now that it does (each under the policy version it was lodged under). A
    /// complaint already answered after its deadline is flagged as a late answer is at
    /// answering; unanswered ones past it are flagged by the scan that follows. Run by every
    /// scan, over the complaints lodged by `countable` (see [`Self::countable_from`]); a row it
    /// cannot read is logged and left pending rather than stopping the scan.
    /// Returns how many it flagged.
    async fn count_pending_complaint_deadlines(
        &self,
        now: DateTime<Utc>,
        countable: NaiveDate,
    ) -> Result<u32> {
        let mut flagged = 0;
        let mut after = None;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = complaints::deadline_pending(&mut tx, countable, after, 200).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for mut row in rows {
                let Some(policy) = self.policy.by_id(&row.policy_version) else {
                    tracing::warn!(complaint = %row.id, policy = %row.policy_version,
                        "a complaint's policy version is no longer deployed; its deadline stays pending");
                    continue;
                };
                let mut c = match row.aggregate() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(complaint = %row.id, error = %e,
                            "an unreadable complaint; its deadline stays pending");
                        continue;
                    }
                };
                if !c.count_deadline(policy.value.complaint_answer_days, &self.calendar) {
                    continue;
                }
                row.due_on = c.due_on;
                row.calendar_version = c.calendar_version;
                let answered_on = row.answered_at.map(fupin_kernel::time::china_date);
                let flag = !row.overdue_alerted
                    && crate::domain::complaint::answered_late(row.due_on, answered_on);
                if flag {
                    row.overdue_alerted = true;
                }
                // Counted once: a row another pass counted meanwhile is left as it is.
                if complaints::set_deadline(&mut tx, &row).await? && flag {
                    self.flag_complaint(&mut tx, &row, now).await?;
                    flagged += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(flagged)
    }

    // ---- R-IN-7: complaints ----

    pub async fn lodge_complaint(
        &self,
        caller: &Caller,
        req: pb::LodgeComplaintRequest,
    ) -> Result<pb::Complaint> {
        let key = self.request_key(caller, "LodgeComplaint", &req.request_id, &req)?;
        once!(self, &key, pb::Complaint, |tx| {
            let actor = convert::actor(caller);
            let (now, today) = self.now();
            let policy = self.policy_on(today)?;
            // Who before what (README): a caller who is not service staff learns nothing of
            // the complaint's text or area.
            if !actor.is_staff() {
                return Err(ServiceError::PermissionDenied(
                    "complaints are lodged by service staff [R-IN-7]".into(),
                ));
            }
            let area = fupin_kernel::AreaCode::parse(&req.area_code)
                .map_err(|e| ServiceError::invalid("area_code", "R-IN-7", e.to_string()))?;
            if !self.areas.exists(&area) {
                return Err(ServiceError::invalid(
                    "area_code",
                    "R-IN-7",
                    "not an area of this district",
                ));
            }
            let c = Complaint::lodge(
                &actor,
                area.clone(),
                today,
                policy.value.complaint_answer_days,
                &self.calendar,
            )
            .map_err(|e| domain_err(e, "complaint", ""))?;
            typed_name("complainant", "R-IN-7", &req.complainant)?;
            typed("content", "R-IN-7", &req.content, form::MAX_TEXT, true)?;
            let application_id = if req.application_id.is_empty() {
                None
            } else {
                let id =
                    convert::uuid("application_id", &req.application_id).map_err(app_err(""))?;
                // A complaint about an application names one the lodging staff can see, inside
                // the complaint's area, so whoever it is assigned to can look it up.
                // Read in the claim's transaction: a second pooled connection while this one
                // is held could starve the pool under load.
                let app = apps::get(&mut *tx, id)
                    .await?
                    .filter(|r| r.aggregate().is_ok_and(|a| a.visible_to(&actor)))
                    .ok_or_else(|| ServiceError::not_found("application", &req.application_id))?;
                let app_area =
                    fupin_kernel::AreaCode::parse(&app.area_code).map_err(anyhow::Error::from)?;
                if !area.contains(&app_area) {
                    return Err(ServiceError::invalid(
                        "application_id",
                        "R-IN-7",
                        format!("the application is outside area_code {}", area.as_str()),
                    ));
                }
                Some(id)
            };
            let id = Uuid::now_v7();
            let complainant = req.complainant.trim();
            let row = ComplaintRow {
                id,
                complainant_enc: ComplaintRow::seal_complainant(&self.pii, id, complainant),
                content: req.content.trim().to_owned(),
                area_code: area.as_str().to_owned(),
                application_id,
                assigned_to: None,
                assigned_by: None,
                assigned_at: None,
                answer: None,
                lodged_by: actor.subject.clone(),
                lodged_at: now,
                lodged_on: c.lodged_on,
                due_on: c.due_on,
                answered_by: None,
                answered_at: None,
                overdue_alerted: false,
                policy_version: policy.version.id.clone(),
                calendar_version: c.calendar_version.clone(),
            };
            complaints::insert(tx, &row).await?;
            // An echo of the caller's own input: not an access to log (R-CR-11).
            let (resp, _) = complaint_pb(&row, complainant, &actor, today);
            Ok(resp)
        })
    }

    pub async fn assign_complaint(
        &self,
        caller: &Caller,
        req: pb::AssignComplaintRequest,
    ) -> Result<pb::Complaint> {
        let key = self.request_key(caller, "AssignComplaint", &req.request_id, &req)?;
        once!(self, &key, pb::Complaint, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut c) = self.load_complaint(tx, &req.complaint_id).await?;
            // Who before what (README): then the organisation named, then the state.
            c.check_assigner(&actor)
                .map_err(|e| domain_err(e, "complaint", &req.complaint_id))?;
            let to = fupin_kernel::AreaCode::parse(&req.organisation_area_code).map_err(|e| {
                ServiceError::invalid("organisation_area_code", "R-IN-7", e.to_string())
            })?;
            let (now, today) = self.now();
            let changed = c
                .assign(&actor, to.clone())
                .map_err(|e| domain_err(e, "complaint", &req.complaint_id))?;
            if changed {
                complaints::assign(tx, &mut row, to.as_str(), &actor.subject, now).await?;
            }
            self.show_complaint(tx, &key, &row, &actor, today).await
        })
    }

    pub async fn answer_complaint(
        &self,
        caller: &Caller,
        req: pb::AnswerComplaintRequest,
    ) -> Result<pb::Complaint> {
        let key = self.request_key(caller, "AnswerComplaint", &req.request_id, &req)?;
        once!(self, &key, pb::Complaint, |tx| {
            let actor = convert::actor(caller);
            let (mut row, mut c) = self.load_complaint(tx, &req.complaint_id).await?;
            // Who before what (README): a complaint the caller cannot see is not found,
            // whatever the answer says.
            if !c.visible_to(&actor) {
                return Err(domain_err(
                    DomainError::NotVisible,
                    "complaint",
                    &req.complaint_id,
                ));
            }
            typed("answer", "R-IN-7", &req.answer, form::MAX_TEXT, true)?;
            let (now, today) = self.now();
            let flag = c
                .answer(&actor, today)
                .map_err(|e| domain_err(e, "complaint", &req.complaint_id))?;
            row.answer = Some(req.answer.trim().to_owned());
            row.answered_by = Some(actor.subject.clone());
            row.answered_at = Some(now);
            row.overdue_alerted = c.overdue_alerted;
            complaints::save(tx, &row).await?;
            if flag {
                self.flag_complaint(tx, &row, now).await?;
            }
            let answered = pb::ComplaintAnswered {
                complaint_id: row.id.to_string(),
                area_code: row.area_code.clone(),
                answered_by_organisation: row.assigned_to.clone().unwrap_or_default(),
                answered_on: today.to_string(),
                due_on: row.due_on.map(|d| d.to_string()).unwrap_or_default(),
                answered_late: crate::domain::complaint::answered_late(row.due_on, Some(today)),
                policy_version: row.policy_version.clone(),
            };
            self.emit(tx, &answered, &row.id.to_string(), now).await?;
            self.show_complaint(tx, &key, &row, &actor, today).await
        })
    }

    /// The saved complaint as the response, audited when it shows the complainant unmasked
    /// (R-CR-11).
    async fn show_complaint(
        &self,
        conn: &mut PgConnection,
        key: &RequestKey,
        row: &ComplaintRow,
        actor: &Actor,
        today: NaiveDate,
    ) -> Result<pb::Complaint> {
        let (resp, unmasked) = complaint_pb(row, &row.complainant(&self.pii)?, actor, today);
        self.shown(conn, key, actor, Shown::Complaint(row.id), unmasked, resp)
            .await
    }

    async fn load_complaint(
        &self,
        conn: &mut PgConnection,
        id: &str,
    ) -> Result<(ComplaintRow, Complaint)> {
        let uuid = convert::uuid("complaint_id", id).map_err(|e| domain_err(e, "complaint", id))?;
        let row = complaints::get_for_update(conn, uuid)
            .await?
            .ok_or_else(|| ServiceError::not_found("complaint", id))?;
        let c = row.aggregate()?;
        Ok((row, c))
    }

    pub async fn list_complaints(
        &self,
        caller: &Caller,
        req: pb::ListComplaintsRequest,
    ) -> Result<pb::ListComplaintsResponse> {
        let actor = convert::actor(caller);
        if !actor.is_staff() {
            return Err(ServiceError::PermissionDenied(
                "complaints are listed by service staff [R-IN-7]".into(),
            ));
        }
        let (_, today) = self.now();
        let paging = Paging::of(
            req.page.as_ref(),
            "ListComplaints",
            (actor.area.as_str(), req.unanswered_past_deadline_only),
        )?;
        let mut rows = complaints::list(
            &self.pool,
            actor.area.as_str(),
            actor.area.as_str(),
            req.unanswered_past_deadline_only.then_some(today),
            paging.after,
            paging.fetch(),
        )
        .await?;
        let next = paging.next_token(&mut rows, |r| r.id);
        let mut complaints = Vec::with_capacity(rows.len());
        let mut shown = Vec::with_capacity(rows.len());
        for r in &rows {
            let (c, unmasked) = complaint_pb(r, &r.complainant(&self.pii)?, &actor, today);
            complaints.push(c);
            shown.push((Shown::Complaint(r.id), unmasked));
        }
        self.audit_unmasked(&self.pool, &actor, "ListComplaints", &shown)
            .await?;
        Ok(pb::ListComplaintsResponse {
            complaints,
            page: Some(fupin_proto::common::v1::PageResponse {
                next_page_token: next,
            }),
        })
    }
}

/// Whom admission asks about: the applicant's blind index and, for an organisation, its USCC.
fn subject<'a>(applicant: &'a Applicant, index: &'a [u8]) -> Subject<'a> {
    Subject {
        index,
        uscc: match applicant {
            Applicant::Household(_) => None,
            Applicant::Enterprise(e) => Some(e.uscc.as_str()),
        },
    }
}

/// A step past its deadline, as `ApplicationStepOverdue` announces it (R-IN-4).
struct LateStep<'a> {
    step: Option<crate::domain::Step>,
    /// Which entry into a step it is (the application's step sequence number).
    entry: i32,
    due_on: Option<NaiveDate>,
    calendar_version: Option<&'a str>,
    /// The bank the application was recommended to; announced for the bank's step only.
    bank_id: Option<&'a str>,
    /// When the application left the step, for a step left before its deadline was counted.
    left_on: Option<NaiveDate>,
}

impl<'a> LateStep<'a> {
    /// The current step of `app`.
    fn of(app: &'a Application) -> Self {
        Self {
            step: app.current_step(),
            entry: app.step_seq,
            due_on: app.step_due_on,
            calendar_version: app.step_calendar.as_deref(),
            bank_id: app.bank_id.as_deref(),
            left_on: None,
        }
    }
}

/// `ApplicationStepOverdue` for `late`, a step of application `id` (R-IN-4).
fn step_overdue(
    id: Uuid,
    application_version: i64,
    late: LateStep<'_>,
    area_code: &str,
    today: NaiveDate,
    policy_version: &str,
) -> pb::ApplicationStepOverdue {
    pb::ApplicationStepOverdue {
        application_id: id.to_string(),
        step: convert::step_to_pb(late.step) as i32,
        due_on: late.due_on.map(|d| d.to_string()).unwrap_or_default(),
        area_code: area_code.to_owned(),
        detected_on: today.to_string(),
        calendar_version: late.calendar_version.unwrap_or_default().to_owned(),
        policy_version: policy_version.to_owned(),
        bank_id: match late.step {
            Some(crate::domain::Step::Bank) => late.bank_id.unwrap_or_default().to_owned(),
            _ => String::new(),
        },
        application_version: convert::version(application_version),
        step_entry: u32::try_from(late.entry).unwrap_or_default(),
        left_on: late.left_on.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// The flag of a complaint left unanswered past its deadline (R-IN-7).
fn complaint_overdue(row: &ComplaintRow, today: NaiveDate) -> pb::ComplaintOverdue {
    pb::ComplaintOverdue {
        complaint_id: row.id.to_string(),
        area_code: row.area_code.clone(),
        due_on: row.due_on.map(|d| d.to_string()).unwrap_or_default(),
        calendar_version: row.calendar_version.clone().unwrap_or_default(),
        assigned_to: row.assigned_to.clone().unwrap_or_default(),
        policy_version: row.policy_version.clone(),
        answered_on: row
            .answered_at
            .map(|at| fupin_kernel::time::china_date(at).to_string())
            .unwrap_or_default(),
        detected_on: today.to_string(),
    }
}

/// Applies a resubmission's corrections of the applicant's data to the row and the opened
/// personal data; whether anything changed. Corrections for the other kind of applicant are
/// refused by field.
fn correct_applicant(
    req: &pb::ResubmitApplicationRequest,
    kind: crate::domain::ApplicantKind,
    row: &mut ApplicationRow,
    who: &mut ApplicantPii,
) -> Result<bool> {
    let household = kind == crate::domain::ApplicantKind::Household;
    let mut changed = false;
    let mut set = |current: &mut String, corrected: &str| {
        let corrected = corrected.trim();
        if !corrected.is_empty() && corrected != current.as_str() {
            *current = corrected.to_owned();
            changed = true;
        }
    };
    match (&req.household, &req.enterprise) {
        (Some(_), _) if !household => Err(ServiceError::invalid(
            "household",
            "R-IN-2",
            "corrects a household application only",
        )),
        (_, Some(_)) if household => Err(ServiceError::invalid(
            "enterprise",
            "R-IN-2",
            "corrects an enterprise or cooperative application only",
        )),
        (Some(h), _) => {
            set(&mut who.name, &h.name);
            set(&mut who.phone, &h.phone);
            set(&mut row.poor_household_number, &h.poor_household_number);
            if let Some(self_use) = h.household_borrows_uses_repays
                && self_use != row.self_use
            {
                row.self_use = self_use;
                changed = true;
            }
            Ok(changed)
        }
        (_, Some(e)) => {
            set(&mut who.name, &e.name);
            set(&mut who.legal_representative, &e.legal_representative);
            Ok(changed)
        }
        (None, None) => Ok(false),
    }
}

/// The objection as `actor` may see it; `objector` is the opened name (R-CR-11).
fn objection_pb(
    o: &apps::ObjectionRow,
    objector: &str,
    actor: &Actor,
) -> (pb::Objection, convert::Unmasked) {
    let (objector, unmasked) = convert::person_name(actor, "objector", objector);
    let pb = pb::Objection {
        id: o.id.to_string(),
        application_id: o.application_id.to_string(),
        objector,
        content: o.content.clone(),
        state: o.state.clone(),
        resolution: o.resolution.clone(),
        filed_at: convert::rfc3339(o.filed_at),
        resolved_at: o.resolved_at.map(convert::rfc3339).unwrap_or_default(),
        filed_by: o.filed_by.clone(),
        resolved_by: o.resolved_by.clone().unwrap_or_default(),
    };
    (pb, unmasked)
}

/// The complaint as `actor` may see it; `complainant` is the opened name (R-CR-11).
fn complaint_pb(
    r: &ComplaintRow,
    complainant: &str,
    actor: &Actor,
    today: NaiveDate,
) -> (pb::Complaint, convert::Unmasked) {
    let (complainant, unmasked) = convert::person_name(actor, "complainant", complainant);
    let pb = pb::Complaint {
        id: r.id.to_string(),
        complainant,
        content: r.content.clone(),
        area_code: r.area_code.clone(),
        application_id: r.application_id.map(|u| u.to_string()).unwrap_or_default(),
        assigned_to: r.assigned_to.clone().unwrap_or_default(),
        assigned_by: r.assigned_by.clone().unwrap_or_default(),
        assigned_at: r.assigned_at.map(convert::rfc3339).unwrap_or_default(),
        lodged_by: r.lodged_by.clone(),
        answered_by: r.answered_by.clone().unwrap_or_default(),
        answer: r.answer.clone().unwrap_or_default(),
        lodged_at: convert::rfc3339(r.lodged_at),
        answered_at: r.answered_at.map(convert::rfc3339).unwrap_or_default(),
        due_on: r.due_on.map(|d| d.to_string()).unwrap_or_default(),
        overdue: r.answer.is_none() && r.due_on.is_some_and(|due| today > due),
        answered_late: crate::domain::complaint::answered_late(
            r.due_on,
            r.answered_at.map(fupin_kernel::time::china_date),
        ),
        policy_version: r.policy_version.clone(),
        calendar_version: r.calendar_version.clone().unwrap_or_default(),
    };
    (pb, unmasked)
}

/// The disbursement as the bank reports it, read and checked on its own (R-IN-6); the checks
/// against its approval follow once the state says there is one.
fn disbursement(
    req: &pb::RecordDisbursementRequest,
    today: NaiveDate,
) -> Result<DisbursementRecord> {
    let amount = convert::money("amount", "R-IN-6", req.amount.as_ref()).map_err(app_err(""))?;
    let on = convert::date("disbursed_on", "R-IN-6", &req.disbursed_on).map_err(app_err(""))?;
    let schedule = req
        .schedule
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            // Which instalment, as the domain's own schedule errors say (`schedule[i]`): a
            // 36-line schedule with one bad amount is otherwise a search.
            let at = |e: DomainError| match e {
                DomainError::Invalid {
                    field,
                    rule,
                    message,
                } => DomainError::Invalid {
                    field,
                    rule,
                    message: format!("schedule[{i}]: {message}"),
                },
                other => other,
            };
            Ok(InstalmentRecord {
                due_on: convert::date("schedule.due_on", "R-IN-6", &inst.due_on).map_err(at)?,
                principal: convert::money("schedule.principal", "R-IN-6", inst.principal.as_ref())
                    .map_err(at)?,
                interest: match inst.interest.as_ref() {
                    Some(m) if !m.amount.is_empty() => {
                        convert::money("schedule.interest", "R-IN-6", Some(m)).map_err(at)?
                    }
                    _ => Money::ZERO,
                },
            })
        })
        .collect::<std::result::Result<Vec<_>, DomainError>>()
        .map_err(app_err(""))?;
    DisbursementRecord {
        loan_id: Uuid::now_v7(),
        loan_account_number: req.loan_account_number.clone(),
        amount,
        disbursed_on: on,
        schedule,
    }
    .well_formed(today)
    .map_err(app_err(""))
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;
    use fupin_kernel::calendar::CALENDAR_NOTICE;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    /// R-IN-4: operators are warned once fewer than 60 days of calendar are left, naming the
    /// year to add; not before.
    #[test]
    fn operators_are_warned_once_the_calendar_runs_out_within_sixty_days() {
        let calendar = WorkingDayCalendar::load_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/calendar"
        ))
        .expect("shipped calendar");
        let last = calendar
            .covered_until(date(2026, 1, 1))
            .expect("2026 is shipped");
        assert_eq!(calendar_warning(&calendar, last - CALENDAR_NOTICE), None);
        let day_before = last - CALENDAR_NOTICE + chrono::Days::new(1);
        let warning = calendar_warning(&calendar, day_before).expect("a warning");
        let next = last.year() + 1;
        assert!(
            warning.contains(&format!("{next}.toml")),
            "names the file: {warning}"
        );
        let past = calendar_warning(&calendar, last + chrono::Days::new(1)).expect("a warning");
        assert!(past.contains(&format!("{next}.toml")), "{past}");
    }

    /// R-IN-4: a year's data without a fixed-date statutory holiday on a weekday is logged at
    /// start, naming the day and the file; one on a weekend changes no deadline and is not.
    /// The shipped years have none missing.
    #[test]
    fn operators_are_warned_of_a_statutory_holiday_missing_from_the_calendar() {
        let shipped = WorkingDayCalendar::load_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/calendar"
        ))
        .expect("shipped calendar");
        assert_eq!(calendar_mistakes(&shipped), Vec::<String>::new());
        // 2027-10-01 is a Friday, 2027-10-03 a Sunday.
        let without_oct_1_and_3 = WorkingDayCalendar::from_year_strs(&[
            "year = 2027\nsource = \"test\"\nadjusted_working_days = []\nholidays = \
             [\"2027-01-01\", \"2027-05-01\", \"2027-05-02\", \"2027-10-02\"]\n",
        ])
        .expect("a calendar intake reads");
        let mistakes = calendar_mistakes(&without_oct_1_and_3);
        assert_eq!(mistakes.len(), 1, "{mistakes:?}");
        assert!(
            mistakes[0].contains("2027-10-01 (国庆节)") && mistakes[0].contains("2027.toml"),
            "{mistakes:?}"
        );
    }
}
