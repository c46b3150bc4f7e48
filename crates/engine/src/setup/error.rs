//! What setting a container up can fail with.

use crate::EngineError;

/// A failed set-up: a flag refused, or a step that failed with its cause.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A flag, or a combination of flags, refused: the message says what to give instead.
    #[error("{0}")]
    Invalid(String),
    /// A step failed: what it was, on what (the message), and why (the source).
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Idmap(#[from] berth_image::idmap::IdmapError),
    #[error(transparent)]
    Spec(#[from] berth_image::spec::SpecError),
    #[error(transparent)]
    Volume(#[from] berth_image::volume::VolumeError),
}

impl SetupError {
    pub(crate) fn step(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> SetupError {
        SetupError::Step {
            what: what.into(),
            source: source.into(),
        }
    }

    /// Docker's exit status for a `run` that failed here: the engine's, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            SetupError::Engine(e) => e.exit_code(),
            SetupError::Step { source, .. } => source
                .downcast_ref::<EngineError>()
                .map_or(125, EngineError::exit_code),
            _ => 125,
        }
    }
}

/// The set-up's result type.
pub type Result<T> = std::result::Result<T, SetupError>;

/// `.context(…)`/`.with_context(…)` for a step: its failure as [`SetupError::Step`].
pub(crate) trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| SetupError::step(what, e))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| SetupError::step(what(), e))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T> {
        self.ok_or_else(|| SetupError::Invalid(what.to_owned()))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| SetupError::Invalid(what().into()))
    }
}

/// Refuse with a formatted message ([`SetupError::Invalid`]).
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::setup::error::SetupError::Invalid(format!($($arg)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_keeps_its_message_and_the_engine_errors_exit_code() {
        let not_found = EngineError::Monitor {
            id: "c".into(),
            message: "exec: \"nope\": executable file not found in $PATH".into(),
        };
        let e = SetupError::step("--network container:web", not_found);
        assert_eq!(e.to_string(), "--network container:web");
        assert_eq!(e.exit_code(), 127);
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("not found")));
        assert_eq!(
            SetupError::Invalid("--ip needs a network".into()).exit_code(),
            125
        );
        let none: Option<u8> = None;
        let refused = none
            .with_context(|| "the container is not running")
            .unwrap_err();
        assert!(matches!(refused, SetupError::Invalid(m) if m == "the container is not running"));
    }
}
