use thiserror::Error;

/// One failed rule of a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub rule: &'static str,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Failure {
    pub fn new(
        rule: &'static str,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            field,
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DomainError {
    /// Bad input: the field and the rule it breaks (R-X-3).
    #[error("{field}: {message} [{rule}]")]
    Invalid {
        field: &'static str,
        rule: &'static str,
        message: String,
    },
    /// Admission or state refusal; lists every failed rule (R-IN-3).
    #[error("refused: {0:?}")]
    Refused(Vec<Failure>),
    /// The caller's role or area may not take this action (R-IN-2).
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller may not take this action in the object's present state: another tier's step
    /// (R-IN-2), a complaint held by another organisation (R-IN-7). Denied like
    /// [`DomainError::PermissionDenied`], and kept as the request id's result (R-IN-8): a retry
    /// after the state moved on must not do what the first attempt was refused.
    #[error("{0}")]
    DeniedInState(String),
    /// The caller may not even see the object (another town's application).
    #[error("not visible to the caller")]
    NotVisible,
}

impl DomainError {
    pub fn invalid(field: &'static str, rule: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            rule,
            message: message.into(),
        }
    }

    pub fn refused(rule: &'static str, message: impl Into<String>) -> Self {
        Self::Refused(vec![Failure::new(rule, None, message)])
    }
}
