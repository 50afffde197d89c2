//! Everything a command prints goes through here: stdout for the result
//! (text, or one JSON document serialized from typed structs), stderr for
//! notes. A closed pipe (`netport inspect ... | head`) ends the output
//! quietly instead of panicking, as command-line tools are expected to.

use serde::Serialize;
use std::io::{ErrorKind, Write};

/// Writes `text` to stdout; a broken pipe is not an error.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Stdout through a buffer, where a closed pipe swallows the rest.
struct Stdout {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    closed: bool,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.out.write(buf) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    /// serde_json writes every token with `write_all`: straight into the
    /// buffer (the default would loop over [`write`](Self::write) per token).
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.out.write_all(buf) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.out.flush() {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Prints `doc` as one pretty JSON document and a newline, serialized
/// straight to stdout (a document of 100,000 tensors is never held whole).
pub fn print_json(doc: &impl Serialize) -> anyhow::Result<()> {
    let mut out = Stdout {
        out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock()),
        closed: false,
    };
    serde_json::to_writer_pretty(&mut out, doc)?;
    out.write_all(b"\n")?;
    Ok(out.flush()?)
}

/// Prints the JSON document or the text, whichever was asked for; only that
/// one is built.
pub fn emit<D: Serialize>(
    json: bool,
    doc: impl FnOnce() -> D,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        print_json(&doc())
    } else {
        Ok(print(&text())?)
    }
}

/// A result in the one form asked for, built by a function that also needs
/// to choose (e.g. `inspect`, by format).
pub enum Report {
    /// A JSON document, already serialized.
    Json(String),
    /// The readable text.
    Text(String),
    /// Already printed (a large JSON document, streamed by [`print_json`]).
    Printed,
}

impl Report {
    /// Serializes a JSON document.
    pub fn json(doc: &impl Serialize) -> anyhow::Result<Self> {
        Ok(Report::Json(serde_json::to_string_pretty(doc)?))
    }

    /// Prints it.
    pub fn print(self) -> anyhow::Result<()> {
        match self {
            Report::Json(mut text) => {
                text.push('\n');
                Ok(print(&text)?)
            }
            Report::Text(text) => Ok(print(&text)?),
            Report::Printed => Ok(()),
        }
    }
}

/// A note on stderr (`netport: note: ...`): something the user should know
/// that is not an error and not part of the result.
pub fn note(message: &str) {
    eprintln!("netport: note: {message}");
}

/// The first `max` names, comma-separated, then `... (N more)`.
pub fn preview<S: AsRef<str>>(names: &[S], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        s.push_str(&format!(", ... ({} more)", names.len() - max));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_name_the_rest() {
        assert_eq!(preview(&["a", "b"], 3), "a, b");
        assert_eq!(preview(&["a", "b", "c", "d"], 2), "a, b, ... (2 more)");
        assert_eq!(preview::<&str>(&[], 2), "");
    }
}
