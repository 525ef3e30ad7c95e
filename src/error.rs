//! The error type shared by the engine and the persistence layer.

#![forbid(unsafe_code)]

use std::fmt;

/// Every way a call can fail. Normal outcomes (a missing key, a held lock)
/// are return values, not errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidArgument(String),
    TooLarge(String),
    NotInteger,
    Overflow,
    /// A string operation on a list or sorted set, or the reverse.
    WrongType,
    /// The caller's buffer is too small; the value needs this many bytes.
    BufferTooSmall(usize),
    Io(String),
    Corruption(String),
    /// The data directory is held by another handle or process.
    Busy(String),
    /// The engine stopped accepting writes after an I/O failure.
    Failed(String),
    Internal(String),
}

impl Error {
    pub fn io(context: &str, err: &std::io::Error) -> Error {
        Error::Io(format!("{context}: {err}"))
    }

    /// The message without the kind's name in front: for surfaces that
    /// report the kind separately (a C status, a Go sentinel error).
    pub fn detail(&self) -> String {
        match self {
            Error::InvalidArgument(m) | Error::TooLarge(m) | Error::Io(m) | Error::Corruption(m) | Error::Busy(m) | Error::Failed(m) | Error::Internal(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::TooLarge(m) => write!(f, "too large: {m}"),
            Error::NotInteger => write!(f, "value is not a base-10 signed 64-bit integer"),
            Error::WrongType => write!(f, "wrong type: the key holds a list or sorted set, which string operations do not read or overwrite (use the list or sorted-set commands of dbkv serve, or delete the key first)"),
            Error::Overflow => write!(f, "increment or decrement would overflow a signed 64-bit integer"),
            Error::BufferTooSmall(n) => write!(f, "buffer too small: the value needs {n} bytes"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
            Error::Corruption(m) => write!(f, "corruption: {m}"),
            Error::Busy(m) => write!(f, "busy: {m}"),
            Error::Failed(m) => write!(f, "engine failed and accepts no writes: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
