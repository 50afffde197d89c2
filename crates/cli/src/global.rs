//! The options every command gets, whatever it is (flags declared `global`
//! in main.rs).

/// Global options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Global {
    /// `--quiet`: no progress bar.
    pub quiet: bool,
}
