//! Error type of the crate.

use std::path::PathBuf;

/// Errors raised by tf-run / tf-diff. Messages are single-line and name the offending thing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TensorFlow call failed; `code` is TF's status code name, `message` TF's own text.
    #[error("TensorFlow {context} failed ({code}): {message}")]
    Tf { context: String, code: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported data type {0}")]
    UnsupportedDType(String),
    #[error("tensor '{name}' not found in {graph}")]
    TensorNotFound { name: String, graph: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

/// Collapse a (possibly multi-line) message into one line.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for (i, line) in msg.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        out.push_str(line);
    }
    out
}
