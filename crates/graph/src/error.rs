//! The error type of netport-graph.

/// What can go wrong making a picture.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    /// `--collapse SCOPE` named a scope no op name is in.
    #[error("no op name is in scope {scope:?} (scopes at the top: {available})")]
    NoSuchScope {
        /// The scope asked for.
        scope: String,
        /// The top-level scopes there are, comma-separated (`none` if the
        /// ops have no scoped names).
        available: String,
    },
    /// A scope to fold was empty or `/`.
    #[error("{scope:?} is not a scope: give one like /layer1")]
    EmptyScope {
        /// The scope asked for.
        scope: String,
    },
}
