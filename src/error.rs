//! The one error type of the extension. Every failure, from option validation to API answers,
//! is a `FdwError`; `fdw::raise` turns it into a Postgres ERROR with the SQLSTATE from
//! `sqlstate()`. Messages never carry secrets: options flagged secret are never echoed.

use thiserror::Error;

/// SQLSTATEs we raise, named as Postgres names them (mapped to pgrx codes in the FFI layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    /// HV00D fdw_invalid_option_name
    FdwInvalidOptionName,
    /// HV024 fdw_invalid_attribute_value
    FdwInvalidAttributeValue,
    /// HV00J fdw_option_name_not_found (a required option is missing)
    FdwOptionNameNotFound,
    /// HV000 fdw_error (the API failed after retries)
    FdwError,
    /// HV00N fdw_unable_to_establish_connection
    FdwUnableToEstablishConnection,
    /// 28000 invalid_authorization_specification (401: bad or expired token)
    InvalidAuthorization,
    /// 42501 insufficient_privilege (the token lacks the scope)
    InsufficientPrivilege,
    /// 22023 invalid_parameter_value (422 from the API)
    InvalidParameterValue,
    /// 22P02 invalid_text_representation (a value that does not fit its column)
    InvalidTextRepresentation,
    /// 0A000 feature_not_supported (no endpoint, or a required key missing)
    FeatureNotSupported,
    /// HV00L fdw_unable_to_create_execution (no user mapping)
    FdwUnableToCreateExecution,
    /// 57014 query_canceled (an interrupt arrived while waiting)
    QueryCanceled,
    /// 54000 program_limit_exceeded (a body over max_request_bytes)
    ProgramLimitExceeded,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FdwError {
    #[error("invalid option \"{name}\" for {object}")]
    UnknownOption { name: String, object: &'static str, valid: Vec<&'static str> },

    #[error("invalid value for option \"{name}\": {problem}")]
    InvalidOptionValue { name: &'static str, problem: String },

    #[error("option \"{name}\" is required for {object}")]
    MissingOption { name: &'static str, object: &'static str, hint: &'static str },

    #[error("{message}")]
    ConflictingOptions { message: String, hint: String },

    /// An argument naming what the catalog does not have: a table to replicate or import, a
    /// remote schema (same SQLSTATE as a bad option value, as in 0.2.0).
    #[error("{message}")]
    BadArgument { message: String, hint: String },

    #[error("no CYBERBIZ user mapping for the current user on server \"{server}\"")]
    NoUserMapping { server: String },

    #[error("CYBERBIZ rejected the API token for {request} (401): {reason}")]
    Unauthorized { request: String, reason: String },

    #[error("the API token lacks the scope \"{scope}\" that table \"{table}\" needs ({request} answered {status})")]
    MissingScope { table: String, scope: String, request: String, status: u16 },

    #[error("CYBERBIZ answered {status} to {request}: {message}")]
    Api { status: u16, request: String, message: String },

    #[error("CYBERBIZ answered {status} to {request} after {attempts} attempts: {message}")]
    RetriesExhausted { status: u16, request: String, attempts: u32, message: String },

    #[error("could not reach CYBERBIZ for {request} after {attempts} attempts: {cause}")]
    Transport { request: String, attempts: u32, cause: String },

    #[error("CYBERBIZ answered {request} with more than the server's max_response_bytes ({limit} bytes); nothing of it was used")]
    ResponseTooLarge { request: String, limit: u64 },

    #[error("CYBERBIZ answered {request} with a redirect ({status}) to {location}; the API never redirects, so it was not followed")]
    Redirected { request: String, status: u16, location: String },

    #[error("CYBERBIZ answered {request} with {status}, but the answer could not be read ({cause}); the write was applied, RETURNING cannot show it")]
    UnreadableAnswer { request: String, status: u16, cause: String },

    #[error("CYBERBIZ answered {request} with a body that is not rows: {detail}")]
    BadBody { request: String, detail: String },

    #[error("table \"{table}\", column \"{column}\", row id {row_id}: value {value} does not fit type {expected}")]
    ValueMismatch { table: String, column: String, row_id: String, value: String, expected: &'static str },

    #[error("table \"{table}\" can only be read by {key}: {reason}")]
    KeyRequired { table: String, key: String, reason: String, hint: String },

    #[error("table \"{table}\" cannot be read: {reason}")]
    Unavailable { table: String, reason: String },

    #[error("canceling statement while waiting for CYBERBIZ")]
    Interrupted,

    #[error("{message}")]
    WriteUnsupported { message: String, hint: String },

    #[error("the request body for {row} is {size} bytes, over the server's max_request_bytes ({limit}); nothing was sent")]
    BodyTooLarge { row: String, size: usize, limit: u64 },

    #[error("{request} may have reached CYBERBIZ but no answer came back ({cause}); the row may have been created")]
    OutcomeUnknown { request: String, cause: String, hint: String },

    /// A webhook delivery refused before anything is stored.
    #[error("{message}")]
    WebhookRejected { message: String, hint: String, reason: WebhookReason },

    #[error("{inner} ({written} row(s) of this statement were already written to CYBERBIZ; API writes cannot be rolled back)")]
    PartiallyWritten { inner: Box<FdwError>, written: u64 },
}

/// Why a webhook delivery was refused (it decides the SQLSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookReason {
    /// No, or a wrong, signature, or no App Secret to check it with: 28000.
    Unverified,
    /// Over the platform's request size: 54000.
    TooLarge,
    /// An event name CYBERBIZ does not send: 22023.
    UnknownEvent,
}

impl FdwError {
    /// A POST that may have reached the API without an answer: the row may exist.
    pub fn outcome_unknown(request: impl Into<String>, cause: impl Into<String>) -> FdwError {
        FdwError::OutcomeUnknown {
            request: request.into(),
            cause: cause.into(),
            hint: "Check with a SELECT whether the row exists before inserting it again.".into(),
        }
    }

    pub fn sqlstate(&self) -> SqlState {
        match self {
            FdwError::UnknownOption { .. } => SqlState::FdwInvalidOptionName,
            FdwError::InvalidOptionValue { .. } | FdwError::ConflictingOptions { .. } | FdwError::BadArgument { .. } => SqlState::FdwInvalidAttributeValue,
            FdwError::MissingOption { .. } => SqlState::FdwOptionNameNotFound,
            FdwError::NoUserMapping { .. } => SqlState::FdwUnableToCreateExecution,
            FdwError::Unauthorized { .. } => SqlState::InvalidAuthorization,
            FdwError::MissingScope { .. } => SqlState::InsufficientPrivilege,
            FdwError::Api { status: 422, .. } | FdwError::Api { status: 400, .. } => SqlState::InvalidParameterValue,
            FdwError::Api { .. } | FdwError::RetriesExhausted { .. } | FdwError::BadBody { .. } => SqlState::FdwError,
            FdwError::Transport { .. } => SqlState::FdwUnableToEstablishConnection,
            FdwError::ValueMismatch { .. } => SqlState::InvalidTextRepresentation,
            FdwError::KeyRequired { .. } | FdwError::Unavailable { .. } => SqlState::FeatureNotSupported,
            FdwError::Interrupted => SqlState::QueryCanceled,
            FdwError::WriteUnsupported { .. } => SqlState::FeatureNotSupported,
            FdwError::BodyTooLarge { .. } | FdwError::ResponseTooLarge { .. } => SqlState::ProgramLimitExceeded,
            FdwError::Redirected { .. } => SqlState::FdwUnableToEstablishConnection,
            FdwError::UnreadableAnswer { .. } => SqlState::FdwError,
            FdwError::OutcomeUnknown { .. } => SqlState::FdwError,
            FdwError::PartiallyWritten { inner, .. } => inner.sqlstate(),
            FdwError::WebhookRejected { reason: WebhookReason::TooLarge, .. } => SqlState::ProgramLimitExceeded,
            FdwError::WebhookRejected { reason: WebhookReason::UnknownEvent, .. } => SqlState::InvalidParameterValue,
            FdwError::WebhookRejected { reason: WebhookReason::Unverified, .. } => SqlState::InvalidAuthorization,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            FdwError::UnknownOption { valid, .. } if valid.is_empty() => Some("This object takes no options.".to_string()),
            FdwError::UnknownOption { valid, .. } => Some(format!("Valid options here are: {}.", valid.join(", "))),
            FdwError::MissingOption { hint, .. } => Some((*hint).to_string()),
            FdwError::ConflictingOptions { hint, .. } | FdwError::BadArgument { hint, .. } => Some(hint.clone()),
            FdwError::KeyRequired { hint, .. } | FdwError::WriteUnsupported { hint, .. } | FdwError::OutcomeUnknown { hint, .. } => Some(hint.clone()),
            FdwError::PartiallyWritten { inner, .. } => inner.hint(),
            FdwError::WebhookRejected { hint, .. } if !hint.is_empty() => Some(hint.clone()),
            FdwError::NoUserMapping { server } => Some(format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS (api_token '...');")),
            FdwError::Redirected { .. } => Some("Check the server's api_url: it should be https://app-store-api.cyberbiz.io (or a sandbox).".into()),
            FdwError::ResponseTooLarge { .. } => Some("Raise the server option max_response_bytes if the answer is expected to be this large.".into()),
            FdwError::MissingScope { scope, .. } => {
                Some(format!("Tick {scope} for the custom app in the CYBERBIZ admin (APP MARKET > My extensions > Custom), then use its new token."))
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, FdwError>;
