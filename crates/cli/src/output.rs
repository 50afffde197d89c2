//! Writing to stdout: a closed pipe (`netport inspect ... | head`) ends the
//! output quietly instead of panicking, as command-line tools are expected to.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout; a broken pipe is not an error.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
