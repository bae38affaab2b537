//! The one error type of the extension. Every failure, from option validation to API answers,
//! is a `FdwError`; `fdw::report` turns it into a Postgres ERROR with the SQLSTATE from
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
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::FdwInvalidOptionName => "HV00D",
            SqlState::FdwInvalidAttributeValue => "HV024",
            SqlState::FdwOptionNameNotFound => "HV00J",
        }
    }
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
}

impl FdwError {
    pub fn sqlstate(&self) -> SqlState {
        match self {
            FdwError::UnknownOption { .. } => SqlState::FdwInvalidOptionName,
            FdwError::InvalidOptionValue { .. } | FdwError::ConflictingOptions { .. } => SqlState::FdwInvalidAttributeValue,
            FdwError::MissingOption { .. } => SqlState::FdwOptionNameNotFound,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            FdwError::UnknownOption { valid, .. } if valid.is_empty() => Some("This object takes no options.".to_string()),
            FdwError::UnknownOption { valid, .. } => Some(format!("Valid options here are: {}.", valid.join(", "))),
            FdwError::MissingOption { hint, .. } => Some((*hint).to_string()),
            FdwError::ConflictingOptions { hint, .. } => Some(hint.clone()),
            FdwError::InvalidOptionValue { .. } => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, FdwError>;
