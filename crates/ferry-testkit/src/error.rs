//! Errors of the test kit.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias of the test kit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while starting clusters or running a Java tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `scripts/kafka` failed (fetching jars, formatting or starting a broker). `output` holds the
    /// script's output, which ends with the tail of the broker log when a broker did not start.
    #[error("scripts/kafka {command} failed ({status}):\n{output}")]
    Launcher {
        /// The sub-command and its arguments.
        command: String,
        /// Exit status as text.
        status: String,
        /// stdout and stderr of the script.
        output: String,
    },
    /// A program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing a file failed.
    #[error("{context} ({}): {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A Java tool exited with a non-zero status.
    #[error("{main_class} exited with {status}:\n{output}")]
    ToolFailed {
        /// The tool's main class.
        main_class: String,
        /// Exit status as text.
        status: String,
        /// stdout and stderr of the tool (the tail, at most a few KiB).
        output: String,
    },
    /// A Java tool ran longer than its timeout and was killed.
    #[error("{main_class} did not finish within {after:?} and was killed:\n{output}")]
    ToolTimedOut {
        /// The tool's main class.
        main_class: String,
        /// The timeout.
        after: Duration,
        /// What the tool had printed (the tail).
        output: String,
    },
    /// Output of the script or a tool was not in the expected shape.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// Why it failed, with the offending text.
        detail: String,
    },
    /// The caller asked for something the kit does not have (an unknown user or cluster).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The output of the failed tool or script, if this error carries one.
    pub fn output(&self) -> Option<&str> {
        match self {
            Self::Launcher { output, .. }
            | Self::ToolFailed { output, .. }
            | Self::ToolTimedOut { output, .. } => Some(output),
            _ => None,
        }
    }

    /// Whether a Java tool failed because the broker refused the client's credentials
    /// (`SaslAuthenticationException`, an SSL handshake failure, or `Authentication failed`).
    pub fn is_authentication_failure(&self) -> bool {
        let Self::ToolFailed { output, .. } = self else {
            return false;
        };
        output.contains("SaslAuthenticationException")
            || output.contains("Authentication failed")
            || output.contains("SslAuthenticationException")
    }

    /// Whether a Java tool failed because an ACL denied the operation
    /// (`…AuthorizationException`, or the `*_AUTHORIZATION_FAILED` error names).
    pub fn is_authorization_failure(&self) -> bool {
        let Self::ToolFailed { output, .. } = self else {
            return false;
        };
        output.contains("AuthorizationException") || output.contains("AUTHORIZATION_FAILED")
    }
}
