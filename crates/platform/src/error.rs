//! Typed service errors and their one mapping to `tonic::Status`. The match has no wildcard
//! arm, so a new variant cannot slip through as `Internal`. Internal causes are logged with
//! their chain and never returned to the caller.

use tonic::{Code, Status};

/// One failed rule, as listed in a refusal (R-IN-3: "a refusal names every rule that failed").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {} [{}]", self.message, self.rule),
            None => write!(f, "{} [{}]", self.message, self.rule),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input (R-X-3): names the field and the rule.
    #[error("{field}: {message} [{rule}]")]
    InvalidArgument {
        field: String,
        rule: &'static str,
        message: String,
    },
    /// Bad input where the rules refuse more than the input: `InvalidArgument` like
    /// [`ServiceError::InvalidArgument`], the bad fields first (policy caps), then every other
    /// rule that failed (R-IN-3: "a refusal names every rule that failed"), naming the policy
    /// version they were judged under (R-X-4). Not kept (R-X-3).
    #[error("{} (policy {policy})", join(failures))]
    InvalidArguments {
        failures: Vec<RuleFailure>,
        policy: String,
    },
    /// Valid input, but the state or the rules refuse it; every failed rule is listed.
    #[error("{}", join(.0))]
    Refused(Vec<RuleFailure>),
    /// [`ServiceError::Refused`] by rules whose values come from versioned policy: the refusal
    /// names the policy version it was decided under (R-X-4), and is kept like any refusal.
    #[error("{} (policy {policy})", join(failures))]
    RefusedUnderPolicy {
        failures: Vec<RuleFailure>,
        policy: String,
    },
    /// Refused because reference data the decision needs is missing (e.g. no policy version in
    /// force yet): `FailedPrecondition` like [`ServiceError::Refused`], but not kept as the
    /// request id's result, so a retry goes again once the data is deployed.
    #[error("{}", join(.0))]
    NotReady(Vec<RuleFailure>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// [`ServiceError::NotFound`] to a caller who sees the object only in some states (a bank
    /// sees an application once it is recommended to it): the same status and message, but
    /// kept with the request id like [`ServiceError::DeniedInState`] (R-IN-8), so a retry
    /// after the state moved on is answered the same instead of acting.
    #[error("{what} {id} not found")]
    NotFoundInState { what: &'static str, id: String },
    #[error("{0}")]
    AlreadyExists(String),
    /// Optimistic-concurrency conflict: the caller should re-read and retry.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Denied because of the object's present state (another tier's step, a complaint held by
    /// another organisation): `PermissionDenied`, but kept with the request id like a
    /// refusal (R-IN-8), since the state may have moved on by the time the request is retried.
    #[error("{0}")]
    DeniedInState(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A refusal kept with a request id, returned again to a retry (R-IN-8): the status the
    /// first attempt got, code and message as they were.
    #[error("{message}")]
    Recorded { code: Code, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn join(failures: &[RuleFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ServiceError {
    pub fn invalid(
        field: impl Into<String>,
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }

    pub fn refused(rule: &'static str, message: impl Into<String>) -> Self {
        Self::Refused(vec![RuleFailure {
            rule,
            field: None,
            message: message.into(),
        }])
    }

    /// A refusal whose failures name field `from` names `to` instead: the same rule checked
    /// on another request's field (e.g. the bank's approved amount). Others are unchanged.
    pub fn with_field_renamed(mut self, from: &str, to: &str) -> Self {
        if let Self::Refused(failures) | Self::RefusedUnderPolicy { failures, .. } = &mut self {
            for f in failures
                .iter_mut()
                .filter(|f| f.field.as_deref() == Some(from))
            {
                f.field = Some(to.to_owned());
            }
        }
        self
    }

    /// A refusal decided under policy `version` says so (R-X-4); other errors are unchanged.
    pub fn under_policy(self, version: &str) -> Self {
        match self {
            Self::Refused(failures) => Self::RefusedUnderPolicy {
                failures,
                policy: version.to_owned(),
            },
            other => other,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } | Self::InvalidArguments { .. } => Code::InvalidArgument,
            Self::Refused(_) | Self::RefusedUnderPolicy { .. } | Self::NotReady(_) => {
                Code::FailedPrecondition
            }
            Self::NotFound { .. } | Self::NotFoundInState { .. } => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Conflict(_) => Code::Aborted,
            Self::PermissionDenied(_) | Self::DeniedInState(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Recorded { code, .. } => *code,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let code = e.code();
        match e {
            // The database out of reach is an outage, not a bug: UNAVAILABLE is what gRPC
            // clients and banks' cores retry, and a write retried with its request id is safe
            // (R-IN-8: nothing was kept, or the first result is replayed).
            ServiceError::Internal(cause) if crate::db::is_transient(&cause) => {
                let id = uuid::Uuid::now_v7();
                tracing::warn!(error_id = %id, error = ?cause, "the database is unavailable");
                Status::unavailable(format!(
                    "service unavailable: the database did not answer; retry (error id {id})"
                ))
            }
            // A deadlock, a serialization failure or a statement out of time is the database
            // giving the work up, not a bug: UNAVAILABLE too (ABORTED here means a stale
            // `expected_version`, which a retry as it stands cannot pass).
            ServiceError::Internal(cause) if crate::db::is_given_up(&cause) => {
                let id = uuid::Uuid::now_v7();
                tracing::warn!(error_id = %id, error = ?cause, "the database gave the statement up");
                Status::unavailable(format!(
                    "service unavailable: the database gave the statement up (a conflict with \
                     a concurrent one, or out of time); retry with the same request id (error \
                     id {id})"
                ))
            }
            ServiceError::Internal(cause) => {
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, error = ?cause, "internal error");
                Status::internal(format!("internal error (id {id})"))
            }
            other => Status::new(code, bounded(other.to_string())),
        }
    }
}

/// Longest status message sent, in bytes. gRPC carries the message percent-encoded in a
/// header (a Chinese character takes 9 bytes there), and common clients refuse headers above
/// 8-16 KiB: a longer message would lose the field and rule it names (R-X-3).
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, saying so. Errors echo
/// inputs only shortened (`fupin_kernel::text::excerpt`); this is the last guard, also for
/// the statuses built outside [`ServiceError`] (authentication, the test clock).
pub fn bounded(mut message: String) -> String {
    const CUT: &str = "… (message cut)";
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - CUT.len();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(CUT);
    }
    message
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    // R-X-3: however long a message grows, the caller gets its start, where the field and
    // rule are named, cut at a character boundary.
    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = format!("amount: {} [R-IN-3]", "四".repeat(3000));
        let s: Status = ServiceError::Refused(vec![RuleFailure {
            rule: "R-IN-3",
            field: Some("amount".into()),
            message: long,
        }])
        .into();
        assert!(
            s.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            s.message().len()
        );
        assert!(s.message().starts_with("amount: amount: 四四"));
        assert!(s.message().ends_with("… (message cut)"));
        let short = "四".repeat(300);
        let s: Status = ServiceError::refused("R-IN-3", short.clone()).into();
        assert_eq!(s.message(), format!("{short} [R-IN-3]"));
    }

    #[test]
    fn invalid_argument_names_field_and_rule() {
        let s: Status = ServiceError::invalid("amount", "R-IN-3", "at most 50000.00").into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "amount: at most 50000.00 [R-IN-3]");
    }

    // R-X-4
    #[test]
    fn a_refusal_under_policy_names_the_version_and_is_still_a_refusal() {
        let e = ServiceError::refused("R-CR-8", "above the line").under_policy("luolong-2026.1");
        assert!(crate::idempotency::is_kept(&e));
        let s: Status = e.into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            "above the line [R-CR-8] (policy luolong-2026.1)"
        );
        let other = ServiceError::invalid("amount", "R-IN-1", "bad").under_policy("v");
        assert!(matches!(other, ServiceError::InvalidArgument { .. }));
        let renamed = ServiceError::Refused(vec![
            RuleFailure {
                rule: "R-CR-8",
                field: Some("amount".into()),
                message: "above the line".into(),
            },
            RuleFailure {
                rule: "R-CR-10",
                field: None,
                message: "blacklisted".into(),
            },
        ])
        .under_policy("v")
        .with_field_renamed("amount", "approved_amount");
        assert_eq!(
            renamed.to_string(),
            "approved_amount: above the line [R-CR-8]; blacklisted [R-CR-10] (policy v)"
        );
    }

    #[test]
    fn refusal_lists_every_rule() {
        let e = ServiceError::Refused(vec![
            RuleFailure {
                rule: "R-CR-10",
                field: None,
                message: "blacklisted".into(),
            },
            RuleFailure {
                rule: "R-RK-9",
                field: Some("village_code".into()),
                message: "lending suspended".into(),
            },
        ]);
        let s: Status = e.into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert!(s.message().contains("R-CR-10") && s.message().contains("R-RK-9"));
    }

    #[test]
    fn a_kept_refusal_is_returned_as_it_was_first_seen() {
        let first: Status = ServiceError::refused("R-CR-10", "blacklisted").into();
        let again: Status = ServiceError::Recorded {
            code: first.code(),
            message: first.message().to_owned(),
        }
        .into();
        assert_eq!(again.code(), first.code());
        assert_eq!(again.message(), first.message());
    }

    #[test]
    fn the_database_out_of_reach_is_unavailable_not_internal() {
        let status = |e: anyhow::Error| Status::from(ServiceError::Internal(e));
        for lost in [
            anyhow::Error::from(sqlx::Error::PoolTimedOut),
            anyhow::Error::from(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            )))
            .context("committing a write"),
        ] {
            let s = status(lost);
            assert_eq!(s.code(), Code::Unavailable, "{s:?}");
            assert!(s.message().contains("retry"), "{}", s.message());
        }
        // A statement's own failure is still a bug to look at.
        assert_eq!(
            status(sqlx::Error::RowNotFound.into()).code(),
            Code::Internal
        );
        let s: Status = ServiceError::from(sqlx::Error::PoolClosed).into();
        assert_eq!(s.code(), Code::Unavailable);
    }

    #[test]
    fn internal_cause_is_not_leaked() {
        let s: Status = ServiceError::Internal(anyhow::anyhow!("password=hunter2")).into();
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("hunter2"));
    }
}
