//! Group commit of submissions: the `SubmitApplication` hot path.
//!
//! A submission is decided in two halves. What needs no I/O (the form, the filing, sealing
//! personal data) is decided by the request's own task; what needs the read model (admission,
//! R-IN-3) and the write are done for whole batches. A dispatcher takes every submission
//! waiting, decides each against its in-memory copy of the read model
//! ([`ReadModelCopy`]), and writes all the admitted ones, with their idempotency keys,
//! transitions and outbox events, in one statement. That statement first checks that nothing
//! admission read about these applicants changed since the copy's version; if something did,
//! it writes nothing, the copy catches up and the batch is decided again.
//! Each request is answered as if it had been alone: it gets its own application, its own
//! refusal or, for a request id already used, the first response (R-IN-8).
//!
//! Under load this turns many small transactions into few larger ones: one commit, one
//! executor start per table and one network round trip are shared by the batch. A lone
//! request is not held back: when nothing is in flight it makes a batch of one at once (one
//! bench client against the test database: 1.02 ms at the median, 1.24 before group commit).

use std::{
    collections::HashSet,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, Utc};
use fupin_kernel::{PolicyHistory, policy::IntakePolicy};
use fupin_platform::{
    ServiceError,
    events::outbox::OutboxRow,
    events::relay::RelayHandle,
    idempotency::{self, RequestKey},
    shutdown::Shutdown,
};
use fupin_proto::intake::v1 as pb;
use futures::FutureExt;
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgDatabaseError, PgSeverity},
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    api::convert,
    app::{Result, domain_err},
    domain::{
        Actor, admission,
        application::{Application, Moved},
        form::{Applicant, ApplicationForm},
    },
    store::{
        applications::{
            self as apps, ApplicantPii, ApplicationRow, BatchWritten, NewSubmission,
            SealedApplicant,
        },
        audit,
        readmodel::{FactsQuery, Subject},
        readmodel_copy::{ReadModelAt, ReadModelCopy},
    },
};

/// The idempotency method name of submissions.
pub const METHOD: &str = "SubmitApplication";

/// A submission with everything decided that needs no I/O.
pub struct Draft {
    pub key: RequestKey,
    pub actor: Actor,
    pub form: ApplicationForm,
    pub app: Application,
    pub moved: Moved,
    /// The applicant's village and town, when the applicant has them.
    pub village: Option<String>,
    pub town: Option<String>,
    /// The new application's id, and the applicant's personal data in the clear (for the
    /// response) and sealed for that row (R-CR-11), with the blind index admission looks up.
    pub id: Uuid,
    pub applicant: ApplicantPii,
    pub sealed: SealedApplicant,
    /// The request's W3C trace context: the batch runs outside the request's span, and the
    /// event must carry the request's trace (ARCHITECTURE "Events").
    pub traceparent: Option<String>,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
}

/// How a submission ended.
pub enum Outcome {
    /// Written; the response.
    Done(Box<pb::Application>),
    /// The request id was already used (by an earlier or a concurrent attempt): answer with
    /// what the first attempt stored.
    Replay,
    /// Refused (admission; the refusal is kept with the request id) or failed (nothing was
    /// written).
    Failed(ServiceError),
}

/// What an admitted submission writes and answers, built in the request's task so that the
/// batch (which runs one at a time) only decides admission and writes.
struct Written {
    row: ApplicationRow,
    event: OutboxRow,
    response: pb::Application,
    /// The response as stored with the idempotency key (sealed when the key says so).
    bytes: Vec<u8>,
}

struct Pending {
    draft: Draft,
    written: Written,
    reply: oneshot::Sender<Answer>,
}

enum Answer {
    Outcome(Outcome),
    /// Submit again in a later batch: the request id was also in this one.
    Again(Box<(Draft, Written)>),
}

impl Pending {
    fn answer(self, outcome: Outcome) {
        // The requester may have gone (a cancelled call); the write stands either way.
        let _ = self.reply.send(Answer::Outcome(outcome));
    }
}

/// Hands drafts to the dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct SubmitQueue {
    tx: mpsc::Sender<Pending>,
    prefix: Arc<str>,
    policy: Arc<PolicyHistory<IntakePolicy>>,
}

/// What the dispatcher needs.
pub struct Writer {
    pub pool: PgPool,
    pub prefix: String,
    pub relay: RelayHandle,
    pub policy: Arc<PolicyHistory<IntakePolicy>>,
    /// How long one statement of the dispatcher may run ([`STATEMENT_DEADLINE`]).
    pub deadline: Duration,
}

/// How long one statement of the submission writer may run: a batch takes milliseconds, and
/// every submission of the replica waits behind it. The server cancels a statement past it
/// (`statement_timeout`: a lock held by a stuck transaction, a migration) and its submissions
/// are answered UNAVAILABLE (retry with the same request id, R-IN-8). Without it every
/// submission waited until the callers' own deadlines.
pub const STATEMENT_DEADLINE: Duration = Duration::from_secs(20);

/// How much longer than its deadline the writer waits for the server's answer before it gives
/// the connection up: a connection cut without a reset (half-open TCP) answers nothing, not
/// even the cancellation, and would hold every submission for the quarter of an hour TCP takes
/// to give up. The statement then runs once more on a new connection. (The server may still
/// have committed it: a retry with the same request id replays it.)
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// Largest batch one statement writes.
pub const MAX_BATCH: usize = 128;

impl SubmitQueue {
    /// Starts the dispatcher, which ends when every queue handle is dropped, or once
    /// `closing` is triggered and what was queued by then is written: later submissions are
    /// refused as `Unavailable` (a connection the server could not close, such as a stream
    /// left open, may still hold a handle).
    pub fn spawn(writer: Writer, closing: Shutdown) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let queue = Self {
            tx,
            prefix: writer.prefix.as_str().into(),
            policy: writer.policy.clone(),
        };
        let task = tokio::spawn(dispatch(writer, rx, closing));
        (queue, task)
    }

    /// Decides and writes one submission with whichever others are waiting.
    pub async fn submit(&self, mut draft: Draft) -> Outcome {
        let mut written = match written(&self.prefix, &self.policy, &draft) {
            Ok(w) => w,
            Err(e) => return Outcome::Failed(e),
        };
        loop {
            let (reply, answer) = oneshot::channel();
            let pending = Pending {
                draft,
                written,
                reply,
            };
            if self.tx.send(pending).await.is_err() {
                return Outcome::Failed(ServiceError::Unavailable("shutting down".into()));
            }
            match answer.await {
                Ok(Answer::Outcome(outcome)) => return outcome,
                Ok(Answer::Again(again)) => (draft, written) = *again,
                Err(_) => {
                    return Outcome::Failed(ServiceError::Internal(anyhow::anyhow!(
                        "submission worker stopped"
                    )));
                }
            }
        }
    }
}

/// One batch at a time, run in the dispatcher's own task: everything that arrives while a batch
/// is decided and written makes the next batch. Measured on the 2-core bench machine at 16
/// clients (when admission facts were still read by a query per batch), this beat overlapping
/// the read of one batch with the write of the previous one (3,900 against 3,350
/// submissions/s) and two concurrent writers (2,800): both split the waiting submissions into
/// smaller batches, and a batch's fixed cost (a statement, a commit, two task wake-ups) is most
/// of a small batch's cost. Running the batch inline also saves a task spawn per batch.
/// Deciding admission on the in-memory copy instead of that query took a round trip out of
/// every batch: 14% more submissions/s at 16 clients (5,030 against 4,400, five runs each).
///
/// Batches go through the dispatcher's own connection, which plans its statements once
/// (`plan_cache_mode = force_generic_plan`). Left to choose, PostgreSQL would plan the batch's
/// array statements again for every batch (a custom plan knows the array lengths, so it always
/// looks cheaper): measured on the facts query, planning cost more than running it (250
/// against 95 µs a batch).
async fn dispatch(writer: Writer, mut rx: mpsc::Receiver<Pending>, mut closing: Shutdown) {
    let mut conn = Conn::new(&writer.pool, writer.deadline);
    let mut copy = ReadModelCopy::default();
    // Loaded ahead of the first submission; should that fail, the first batch loads it.
    if let Err(e) = catch_up(&writer, &mut copy).await {
        tracing::warn!(error = %e, "loading the read model failed; trying again at the first submission");
    }
    let mut open = true;
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = closing.wait(), if open => {
                // What is queued is still received; nothing more is accepted.
                rx.close();
                open = false;
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // A panicking batch answers nobody (its waiters see the reply dropped); the next batch
        // must still run, so the panic stops here.
        if let Err(panic) = AssertUnwindSafe(run_batch(&writer, &mut conn, &mut copy, batch))
            .catch_unwind()
            .await
        {
            // The connection may be half-way through a statement, the copy through a change.
            conn.discard();
            copy = ReadModelCopy::default();
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %why, "a submission batch panicked");
        }
    }
}

/// The `application_name` of the dispatcher's connection (to find it in `pg_stat_activity`).
pub const CONNECTION_NAME: &str = "fupin-intake submissions";

/// The dispatcher's database connection, opened on first use and again after it failed.
struct Conn {
    options: PgConnectOptions,
    timeout: Duration,
    /// [`Writer::deadline`].
    deadline: Duration,
    conn: Option<PgConnection>,
    /// When the connection last ran a statement.
    used: Instant,
}

/// A connection idle this long is tested before use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Conn {
    fn new(pool: &PgPool, deadline: Duration) -> Self {
        Self {
            deadline,
            options: pool
                .connect_options()
                .as_ref()
                .clone()
                .application_name(CONNECTION_NAME)
                .options([
                    ("plan_cache_mode", "force_generic_plan".to_owned()),
                    ("statement_timeout", deadline.as_millis().to_string()),
                    // A session cut (half-open) in the middle of keeping refusals would hold
                    // their keys' locks until TCP gives up, and every retry would wait on them.
                    (
                        "idle_in_transaction_session_timeout",
                        deadline.as_millis().to_string(),
                    ),
                ]),
            timeout: pool.options().get_acquire_timeout(),
            conn: None,
            used: Instant::now(),
        }
    }

    async fn get(&mut self) -> sqlx::Result<&mut PgConnection> {
        // Like a pool lending a connection, test one that sat idle: the server may have
        // dropped it silently (a network cut, an idle timeout). Under load batches follow each
        // other closely and nothing is added: a session the server ended in between is found
        // by the batch's statement, which runs again on a new connection (`again!`). Only a
        // connection lost twice in a row fails its batch, whose callers may retry with the
        // same request ids (R-IN-8).
        if self.used.elapsed() >= IDLE_CHECK
            && let Some(conn) = self.conn.as_mut()
            && !matches!(
                tokio::time::timeout(self.timeout, conn.ping()).await,
                Ok(Ok(()))
            )
        {
            self.discard();
        }
        if self.conn.is_none() {
            let conn =
                tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Takes note of a statement's result; returns whether it closed the connection. An error
    /// the server reported about the statement leaves the connection usable. Anything else
    /// closes it, and the next statement connects again: I/O, protocol and timeout errors, and
    /// the server ending the session (a FATAL or PANIC message, e.g. `57P01` after
    /// `pg_terminate_backend` or a restart).
    fn settle<T, E: AsSqlx>(&mut self, result: &std::result::Result<T, E>) -> bool {
        self.used = Instant::now();
        match result {
            Err(e) if !e.as_sqlx().is_some_and(session_survives) => {
                self.discard();
                true
            }
            _ => false,
        }
    }

    fn discard(&mut self) {
        self.conn = None;
    }
}

/// Runs a statement on the dispatcher's connection ([`Conn`]), and once more on a new
/// connection when the one it ran on had died while idle. Only for statements that may run
/// twice: reads, the batch write and the keeping of a batch's refusals, whose idempotency keys
/// turn a second run after a commit whose answer was lost into a replay of each submission
/// (R-IN-8). (A macro: async closures
/// borrowing the batch would not let the dispatcher's future be `Send`.)
macro_rules! again {
    ($conn:expr, |$c:ident| $statement:expr) => {{
        let mut again = true;
        loop {
            let reused = $conn.is_open();
            let wait = $conn.deadline + ANSWER_GRACE;
            let result = match $conn.get().await {
                Ok($c) => match tokio::time::timeout(wait, $statement).await {
                    Ok(result) => result,
                    // Not a session error: the connection is given up (`settle`).
                    Err(_) => Err(no_answer(wait).into()),
                },
                Err(e) => Err(e.into()),
            };
            if $conn.settle(&result) && reused && std::mem::take(&mut again) {
                tracing::warn!("the submission connection was lost or did not answer; running the statement again");
                continue;
            }
            break result;
        }
    }};
}

/// The error of a statement the server did not answer within `wait`, as an I/O error: the
/// connection it ran on is given up.
fn no_answer(wait: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the database did not answer within {wait:?}"),
    ))
}

/// Whether the session is still usable after `e`: the server reported an error about the
/// statement, not the end of the session.
fn session_survives(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .is_some_and(|pg| !matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic))
}

/// The `sqlx::Error` inside an error, if it is one.
trait AsSqlx {
    fn as_sqlx(&self) -> Option<&sqlx::Error>;
}

impl AsSqlx for sqlx::Error {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

impl AsSqlx for anyhow::Error {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        self.downcast_ref()
    }
}

impl AsSqlx for ServiceError {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            ServiceError::Internal(e) => e.downcast_ref(),
            _ => None,
        }
    }
}

/// How many times a batch is decided again because the read model changed under it before
/// its callers are told to retry.
const MAX_ROUNDS: usize = 4;

/// How often at most the copy catches up only because a write found it behind.
const CATCH_UP_EVERY: Duration = Duration::from_millis(50);

async fn run_batch(w: &Writer, conn: &mut Conn, copy: &mut ReadModelCopy, batch: Vec<Pending>) {
    // A request id twice in one batch: the later ones wait for the first. If it stored its key
    // (admitted, or refused and the refusal kept), they replay it; if not (failed), they go
    // again, decided as a retry would be.
    let mut seen = HashSet::new();
    let (mut batch, again): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|p| seen.insert(key_of(&p.draft)));
    let mut stored = HashSet::new();
    // Whether the copy was brought up to date during this batch.
    let mut current = false;
    // Whether the last write found the read model moved on (in ways that did not concern it).
    let mut behind = false;
    for round in 1.. {
        if copy.version().is_none()
            && let Err(e) = catch_up(w, copy).await
        {
            fail_all(batch, &e);
            break;
        }
        let (ready, refused) = decide(w, copy, batch);
        // A refusal by a rule is kept for good (R-IN-8), so it is decided on the read model as
        // it is now, not as the copy last saw it.
        if !refused.is_empty() && !current {
            current = true;
            match catch_up(w, copy).await {
                Ok(false) => {}
                Ok(true) => {
                    batch = ready
                        .into_iter()
                        .chain(refused.into_iter().map(|r| r.0))
                        .collect();
                    continue;
                }
                Err(e) => {
                    fail_all(
                        ready.into_iter().chain(refused.into_iter().map(|r| r.0)),
                        &e,
                    );
                    break;
                }
            }
        }
        if !refused.is_empty() {
            answer_refused(conn, refused, &mut stored).await;
        }
        if ready.is_empty() {
            break;
        }
        let at = copy.at().expect("loaded above");
        behind = false;
        batch = write(w, conn, ready, &at, &mut stored, &mut behind).await;
        if batch.is_empty() {
            break;
        }
        // What admission read about these applicants changed since the copy's version: catch
        // up and decide again.
        if round == MAX_ROUNDS {
            for p in batch {
                p.answer(Outcome::Failed(ServiceError::Unavailable(
                    "the read model kept changing while the submission was written; retry with \
                     the same request id"
                        .into(),
                )));
            }
            break;
        }
        current = true;
        if let Err(e) = catch_up(w, copy).await {
            fail_all(batch, &e);
            break;
        }
    }
    for p in again {
        if stored.contains(&key_of(&p.draft)) {
            p.answer(Outcome::Replay);
        } else {
            let _ = p.reply.send(Answer::Again(Box::new((p.draft, p.written))));
        }
    }
    // Everyone answered: bring the copy up to date, so that later batches' writes need not
    // check their applicants' rows. Not after every batch while the read model keeps changing
    // (a rating run): the checks keep those writes exact, and a catch-up costs the dispatcher
    // several round trips.
    if behind
        && copy.checked_before(CATCH_UP_EVERY)
        && let Err(e) = catch_up(w, copy).await
    {
        tracing::warn!(error = %e, "catching up with the read model failed; the next batch tries again");
    }
}

/// Brings the copy of the read model up to date, on a connection of the pool (the dispatcher's
/// own plans every statement once, which would not suit these). Returns whether it changed.
async fn catch_up(w: &Writer, copy: &mut ReadModelCopy) -> anyhow::Result<bool> {
    let mut conn = w.pool.acquire().await?;
    // Under the writer's deadline too, per statement (set in its transaction): every
    // submission waits for it. The whole read (a few statements) is given up only well past
    // that, for a connection that answers nothing; it is closed, not returned to the pool.
    let wait = w.deadline * 3 + ANSWER_GRACE;
    let read =
        match tokio::time::timeout(wait, copy.catch_up_within(&mut conn, Some(w.deadline))).await {
            Ok(read) => read,
            Err(_) => {
                conn.close_on_drop();
                Err(no_answer(wait))
            }
        };
    read.map_err(|e| {
        tracing::error!(error = %e, "reading the read model failed");
        e.into()
    })
}

/// Admission (R-IN-3) of each submission against the copy of the read model: those admitted,
/// and those refused with why.
fn decide(
    w: &Writer,
    copy: &ReadModelCopy,
    batch: Vec<Pending>,
) -> (Vec<Pending>, Vec<(Pending, ServiceError)>) {
    let mut ready = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    for p in batch {
        let decided = copy
            .facts(&facts_query(&p.draft))
            .map_err(ServiceError::Internal)
            .and_then(|facts| admit(w, &p.draft, &facts));
        match decided {
            Ok(()) => ready.push(p),
            Err(e) => refused.push((p, e)),
        }
    }
    (ready, refused)
}

/// Answers every submission of `batch` with the one failure `e` (each needs its own error
/// value): the database out of reach is `UNAVAILABLE`, which clients retry (with the same
/// request id, safe under R-IN-8), logged here once for the batch; anything else `INTERNAL`,
/// logged with each answer's error id.
fn fail_all(batch: impl IntoIterator<Item = Pending>, e: &anyhow::Error) {
    // The database out of reach, or a statement it gave up (its deadline, a deadlock).
    let transient = fupin_platform::db::is_transient(e) || fupin_platform::db::is_given_up(e);
    let mut failed = 0_usize;
    for p in batch {
        p.answer(Outcome::Failed(if transient {
            ServiceError::Unavailable(
                "the database did not answer, or gave the statement up; retry with the same \
                 request id"
                    .into(),
            )
        } else {
            ServiceError::Internal(anyhow::anyhow!("{e:#}"))
        }));
        failed += 1;
    }
    if transient {
        tracing::warn!(error = %format!("{e:#}"), failed, "submissions failed: the database did not answer or gave the statement up");
    }
}

/// Answers the submissions admission refused. A refusal by a rule is kept as its request id's
/// first result (R-IN-8), so a retry gets it again even after the facts changed. Where the id
/// is already taken (the retry of a request answered before; every earlier batch has
/// committed by now, batches running one at a time), the first result is replayed instead.
/// Adds the keys now stored to `stored`.
async fn answer_refused(
    conn: &mut Conn,
    refused: Vec<(Pending, ServiceError)>,
    stored: &mut HashSet<(String, String)>,
) {
    let keys: Vec<(&RequestKey, &ServiceError)> =
        refused.iter().map(|(p, e)| (&p.draft.key, e)).collect();
    // A rule's refusal is kept, and the credit facts it shows are logged with it (R-CR-11);
    // for any other failure only whether the id is taken is read.
    // Run again once on a fresh connection if the session was lost, as the batch's write is:
    // keeping is `on conflict do nothing`, so a second run after a lost commit reply replays.
    let kept = again!(conn, |c| keep_and_log(c, &refused));
    let others: Vec<&RequestKey> = keys
        .iter()
        .filter(|(_, e)| !idempotency::is_kept(e))
        .map(|(k, _)| *k)
        .collect();
    let taken = match (&kept, others.is_empty()) {
        (Ok(_), false) => again!(conn, |c| idempotency::taken(c, &others)),
        _ => Ok(Vec::new()),
    };
    let (kept, taken) = match (kept, taken) {
        (Ok(k), Ok(t)) => (k, t),
        (Err(e), _) | (_, Err(e)) => {
            let e = match e {
                ServiceError::Internal(cause) => cause,
                other => anyhow::anyhow!("{other}"),
            };
            fail_all(refused.into_iter().map(|(pending, _)| pending), &e);
            return;
        }
    };
    let mut taken = taken.into_iter();
    for ((pending, e), kept) in refused.into_iter().zip(kept) {
        let answered_before = if idempotency::is_kept(&e) {
            !kept
        } else {
            taken.next().unwrap_or(false)
        };
        if answered_before || kept {
            stored.insert(key_of(&pending.draft));
        }
        if answered_before {
            pending.answer(Outcome::Replay);
        } else {
            pending.answer(Outcome::Failed(e));
        }
    }
}

/// Keeps the refusals with their request ids and logs, in the same transaction, each newly
/// kept one as a disclosure of the applicant's admission facts.
async fn keep_and_log(
    c: &mut PgConnection,
    refused: &[(Pending, ServiceError)],
) -> Result<Vec<bool>> {
    let refused: Vec<Refusal<'_>> = refused
        .iter()
        .map(|(p, e)| Refusal {
            key: &p.draft.key,
            actor: &p.draft.actor,
            at: p.draft.now,
            subject_idx: &p.draft.sealed.id_idx,
            error: e,
        })
        .collect();
    keep_logged(c, &refused).await
}

/// A submission refused, as [`keep_logged`] keeps and logs it.
pub struct Refusal<'a> {
    pub key: &'a RequestKey,
    pub actor: &'a Actor,
    pub at: DateTime<Utc>,
    /// The applicant's blind index.
    pub subject_idx: &'a [u8],
    pub error: &'a ServiceError,
}

/// Keeps the refusals among `refused` with their request ids and logs each newly kept refusal
/// by admission as a disclosure of the applicant's admission facts, in one transaction
/// (R-IN-8, R-CR-11). Says, in order, which were kept.
pub async fn keep_logged(c: &mut PgConnection, refused: &[Refusal<'_>]) -> Result<Vec<bool>> {
    let keys: Vec<(&RequestKey, &ServiceError)> =
        refused.iter().map(|r| (r.key, r.error)).collect();
    let mut tx = sqlx::Connection::begin(c).await?;
    let kept = idempotency::keep_refusals(&mut *tx, &keys).await?;
    let disclosures: Vec<audit::Disclosure<'_>> = refused
        .iter()
        .zip(&kept)
        .filter(|(_, kept)| **kept)
        .filter_map(|(r, _)| r.disclosure(true))
        .collect();
    if !disclosures.is_empty() {
        audit::log_disclosures(&mut tx, &disclosures).await?;
    }
    tx.commit().await?;
    Ok(kept)
}

/// Logs an answer that shows the applicant's admission facts without keeping its request id
/// (R-CR-11, R-X-3): bad input over the caps ([`ServiceError::InvalidArguments`]), with what
/// admission refused besides or without anything (then the rest passed).
pub async fn log_told(c: &mut PgConnection, told: &Refusal<'_>) -> Result<()> {
    if let Some(d) = told.disclosure(false) {
        audit::log_disclosures(c, &[d]).await?;
    }
    Ok(())
}

impl Refusal<'_> {
    /// The answers of admission show the applicant's facts: its refusals, and what it tells
    /// once it has passed the applicant (a cap exceeded). `kept` says
    /// whether this one was kept with its request id.
    fn disclosure(&self, kept: bool) -> Option<audit::Disclosure<'_>> {
        let failures = match self.error {
            ServiceError::Refused(f)
            | ServiceError::RefusedUnderPolicy { failures: f, .. }
            | ServiceError::InvalidArguments { failures: f, .. } => f.as_slice(),
            _ => return None,
        };
        let mut rules: Vec<&str> = failures.iter().map(|f| f.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        Some(audit::Disclosure {
            at: self.at,
            caller: audit::Caller::of(self.actor),
            request_id: &self.key.request_id,
            subject_idx: self.subject_idx,
            rules: rules.join(","),
            kept,
        })
    }
}

fn key_of(d: &Draft) -> (String, String) {
    (d.key.caller.clone(), d.key.request_id.clone())
}

/// Writes the batch in one statement. Should one of its rows make it fail (bad data, a
/// constraint, a trigger's exception), each submission is written on its own, so that one bad
/// submission cannot fail the others. Any other failure (database unreachable, timeout) fails
/// the whole batch at once: retrying row by row would only hold the writer for longer. Adds the
/// keys now stored to `stored`.
async fn write(
    w: &Writer,
    conn: &mut Conn,
    ready: Vec<Pending>,
    read_model: &ReadModelAt,
    stored: &mut HashSet<(String, String)>,
    behind: &mut bool,
) -> Vec<Pending> {
    let written = match insert(conn, &ready, read_model).await {
        Ok(BatchWritten::Written { ids, behind: b }) => {
            *behind |= b;
            ids
        }
        // Decided on facts since changed: nothing written, to be decided again.
        Ok(BatchWritten::Stale) => return ready,
        Err(e) if ready.len() > 1 && caused_by_a_row(&e) => {
            tracing::warn!(error = %e, size = ready.len(), "batch write failed; writing one by one");
            let mut stale = Vec::new();
            for r in ready {
                stale.extend(Box::pin(write(w, conn, vec![r], read_model, stored, behind)).await);
            }
            return stale;
        }
        Err(e) => {
            tracing::error!(error = %e, size = ready.len(), "submission write failed");
            fail_all(ready, &anyhow::Error::new(e));
            return Vec::new();
        }
    };
    w.relay.wake();
    for r in ready {
        // Written, or a concurrent attempt with the same id committed first: stored either way.
        stored.insert(key_of(&r.draft));
        let outcome = if written.contains(&r.written.row.id) {
            Outcome::Done(Box::new(r.written.response))
        } else {
            Outcome::Replay
        };
        let _ = r.reply.send(Answer::Outcome(outcome));
    }
    Vec::new()
}

/// Whether a failed write may be down to one of its rows: a data exception (SQLSTATE class
/// 22), an integrity constraint (23), or an exception raised by a trigger or function (P0).
fn caused_by_a_row(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| {
            ["22", "23", "P0"]
                .iter()
                .any(|class| code.starts_with(class))
        })
}

async fn insert(
    conn: &mut Conn,
    ready: &[Pending],
    read_model: &ReadModelAt,
) -> sqlx::Result<BatchWritten> {
    let subs: Vec<NewSubmission<'_>> = ready
        .iter()
        .map(|r| NewSubmission {
            key: &r.draft.key,
            response: &r.written.bytes,
            row: &r.written.row,
            moved: &r.draft.moved,
            actor_role: r.draft.actor.role.as_str(),
            event: &r.written.event,
            uscc: facts_query(&r.draft).subject.uscc,
        })
        .collect();
    again!(conn, |c| apps::insert_submissions(
        c, METHOD, &subs, read_model
    ))
}

fn facts_query(d: &Draft) -> FactsQuery<'_> {
    FactsQuery {
        subject: Subject {
            index: &d.sealed.id_idx,
            uscc: match &d.form.applicant {
                Applicant::Household(_) => None,
                Applicant::Enterprise(e) => Some(e.uscc.as_str()),
            },
        },
        village: d.village.as_deref(),
        town: d.town.as_deref(),
    }
}

/// Admission (R-IN-3) against the facts, under the policy in force on the filing day.
fn admit(w: &Writer, d: &Draft, facts: &admission::AdmissionFacts) -> Result<()> {
    let policy = w
        .policy
        .in_force(d.today)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    admission::check(&d.form, facts, &policy.value, d.today)
        .map_err(|e| domain_err(e, "application", "").under_policy(&policy.version.id))
}

/// The row, event and response of the submission, should it be admitted.
fn written(prefix: &str, policy: &PolicyHistory<IntakePolicy>, d: &Draft) -> Result<Written> {
    let policy = policy
        .in_force(d.today)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let area = d.form.applicant.area();
    let (poor_no, self_use) = match &d.form.applicant {
        Applicant::Household(h) => (h.poor_household_number.clone(), h.self_use),
        Applicant::Enterprise(_) => (String::new(), false),
    };
    let mut row = ApplicationRow {
        id: d.id,
        kind: d.app.kind.as_str().to_owned(),
        applicant_id_enc: d.sealed.id_enc.clone(),
        applicant_id_idx: d.sealed.id_idx.clone(),
        applicant_name_enc: d.sealed.name_enc.clone(),
        phone_enc: d.sealed.phone_enc.clone(),
        legal_rep_enc: Some(d.sealed.legal_rep_enc.clone()),
        poor_household_number: poor_no,
        self_use,
        village_code: d.village.clone(),
        town_code: d.town.clone(),
        area_code: area.as_str().to_owned(),
        amount: d.form.amount.amount(),
        term_months: d.form.term_months as i32,
        purpose: d.form.purpose.code(),
        project_description: d.form.description.clone(),
        status: String::new(),
        returned_from: None,
        step_seq: 0,
        step_started_on: None,
        step_due_on: None,
        step_calendar: None,
        overdue_alerted_seq: None,
        notice_ends_on: None,
        bank_id: None,
        recommended_on: None,
        decision: None,
        disbursement: None,
        submitted_by: d.actor.subject.clone(),
        policy_version: policy.version.id.clone(),
        submitted_at: d.now,
        updated_at: d.now,
        version: 1,
        policy_before: None,
    };
    row.absorb(&d.app, d.now);
    let ev = pb::ApplicationSubmitted {
        application_id: row.id.to_string(),
        kind: convert::kind_to_pb(d.app.kind) as i32,
        village_code: row.village_code.clone().unwrap_or_default(),
        town_code: row.town_code.clone().unwrap_or_default(),
        area_code: row.area_code.clone(),
        amount: d.form.amount.to_string(),
        term_months: d.form.term_months,
        purpose: d.form.purpose.code(),
        submitted_at: convert::rfc3339(d.now),
        policy_version: row.policy_version.clone(),
        status: convert::status_to_pb(d.app.status) as i32,
        application_version: 1,
    };
    let mut event = OutboxRow::new(prefix, &ev, Some(&row.id.to_string()), d.now);
    event.traceparent = d.traceparent.clone();
    // The response only echoes what the caller just sent: not an access to log (R-CR-11).
    let (response, _) = convert::application(&row, &d.applicant, &d.actor, d.today);
    // Sealed when the key says so: a stored response holds personal data too.
    let bytes = d.key.stored_response(&response);
    Ok(Written {
        row,
        event,
        response,
        bytes,
    })
}
