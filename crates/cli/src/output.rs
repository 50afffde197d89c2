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
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    doc.serialize(&mut ser)?;
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

/// serde_json's `PrettyFormatter` with its two-space indent, byte for byte,
/// writing each line break and its indentation as one piece (serde_json's
/// writes the indent one level at a time: a 50,000-tensor document has a
/// million indented lines).
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    /// `,` (unless first), a line break and the indentation of `depth`.
    fn line<W: ?Sized + Write>(w: &mut W, first: bool, depth: usize) -> std::io::Result<()> {
        const BREAKS: &[u8] = b",\n                                                                                                                                ";
        let start = usize::from(first);
        match BREAKS.get(start..2 + 2 * depth) {
            Some(piece) => w.write_all(piece),
            None => {
                w.write_all(&BREAKS[start..2])?;
                (0..depth).try_for_each(|_| w.write_all(b"  "))
            }
        }
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            Self::line(w, true, self.depth)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        Self::line(w, first, self.depth)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            Self::line(w, true, self.depth)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        Self::line(w, first, self.depth)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_name_the_rest() {
        assert_eq!(preview(&["a", "b"], 3), "a, b");
        assert_eq!(preview(&["a", "b", "c", "d"], 2), "a, b, ... (2 more)");
        assert_eq!(preview::<&str>(&[], 2), "");
    }

    fn ours(v: &serde_json::Value) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
        v.serialize(&mut ser).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pretty_is_serde_jsons_pretty_byte_for_byte() {
        let mut deep = serde_json::json!([1]);
        // Past the one-piece indentation (64 levels).
        for i in 0..80 {
            deep = if i % 2 == 0 {
                serde_json::json!({ "k": deep, "e": {}, "a": [] })
            } else {
                serde_json::json!([deep, "s\"\n", 1.5, null, []])
            };
        }
        for v in [
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!("x"),
            serde_json::json!({"a": [1, {"b": []}, {}], "c": {"d": null}}),
            deep,
        ] {
            assert_eq!(ours(&v), serde_json::to_string_pretty(&v).unwrap());
        }
    }
}
