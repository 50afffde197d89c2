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

impl Stdout {
    fn new() -> Self {
        Stdout {
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock()),
            closed: false,
        }
    }
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
    let mut out = Stdout::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    doc.serialize(&mut ser)?;
    out.write_all(b"\n")?;
    Ok(out.flush()?)
}

/// Prints one pretty JSON object and a newline, field by field, as
/// [`print_json`] prints a struct with those fields in that order: `fill`
/// adds them. A field can be a long array whose items are rendered on two
/// threads ([`JsonObject::items`]).
pub fn print_json_object(
    fill: impl FnOnce(&mut JsonObject<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out = Stdout::new();
    write_json_object(&mut out, fill)?;
    Ok(out.flush()?)
}

/// [`print_json_object`] to `out`.
fn write_json_object(
    out: &mut dyn Write,
    fill: impl FnOnce(&mut JsonObject<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut object = JsonObject { out, first: true };
    object.out.write_all(b"{")?;
    fill(&mut object)?;
    if !object.first {
        Pretty::line(object.out, true, 0)?;
    }
    Ok(object.out.write_all(b"}\n")?)
}

/// The object [`print_json_object`] is printing.
pub struct JsonObject<'o> {
    out: &'o mut dyn Write,
    first: bool,
}

impl JsonObject<'_> {
    /// Items per piece of a [`JsonObject::items`] array.
    const CHUNK: usize = 2048;

    fn key(&mut self, key: &str) -> anyhow::Result<()> {
        Pretty::line(self.out, self.first, 1)?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, key)?;
        Ok(self.out.write_all(b": ")?)
    }

    /// The field `key`: `value`.
    pub fn field(&mut self, key: &str, value: &impl Serialize) -> anyhow::Result<()> {
        self.key(key)?;
        let mut ser = serde_json::Serializer::with_formatter(&mut *self.out, Pretty::at(1));
        Ok(value.serialize(&mut ser)?)
    }

    /// The field `key`: the array of `item(0)` .. `item(len - 1)`. Pieces
    /// of [`Self::CHUNK`] items are rendered by this thread and a second
    /// one in turn and written in order, so a 50,000-tensor list takes
    /// about half the time; the bytes are those of [`field`](Self::field)
    /// with the whole array.
    pub fn items<T: Serialize>(
        &mut self,
        key: &str,
        len: usize,
        item: impl Fn(usize) -> T + Sync,
    ) -> anyhow::Result<()> {
        self.key(key)?;
        self.out.write_all(b"[")?;
        let render = |chunk: usize, buf: &mut Vec<u8>| -> serde_json::Result<()> {
            let start = chunk * Self::CHUNK;
            for i in start..len.min(start + Self::CHUNK) {
                Pretty::line(buf, i == 0, 2).map_err(serde_json::Error::io)?;
                let mut ser = serde_json::Serializer::with_formatter(&mut *buf, Pretty::at(2));
                item(i).serialize(&mut ser)?;
            }
            Ok(())
        };
        let chunks = len.div_ceil(Self::CHUNK);
        let out = &mut *self.out;
        std::thread::scope(|scope| -> anyhow::Result<()> {
            // The second thread renders the odd pieces, one ahead.
            let (tx, rx) = std::sync::mpsc::sync_channel::<serde_json::Result<Vec<u8>>>(1);
            let render = &render;
            let second = (chunks >= 2)
                .then(|| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, move || {
                            for chunk in (1..chunks).step_by(2) {
                                let mut buf = Vec::new();
                                let piece = render(chunk, &mut buf).map(|()| buf);
                                let failed = piece.is_err();
                                // A closed channel: this thread's reader failed.
                                if tx.send(piece).is_err() || failed {
                                    return;
                                }
                            }
                        })
                        .ok()
                })
                .flatten();
            // One piece, or no second thread (the system refused one):
            // every piece here.
            let step = if second.is_some() { 2 } else { 1 };
            let mut buf = Vec::new();
            for chunk in (0..chunks).step_by(step) {
                buf.clear();
                render(chunk, &mut buf)?;
                out.write_all(&buf)?;
                if second.is_some() && chunk + 1 < chunks {
                    let piece = rx.recv().map_err(|_| {
                        anyhow::anyhow!("the thread rendering JSON pieces stopped")
                    })??;
                    out.write_all(&piece)?;
                }
            }
            Ok(())
        })?;
        if len > 0 {
            Pretty::line(self.out, true, 1)?;
        }
        Ok(self.out.write_all(b"]")?)
    }
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
    /// The formatter of a value that sits `depth` levels deep.
    fn at(depth: usize) -> Self {
        Pretty {
            depth,
            has_value: false,
        }
    }

    /// An array or object opens one level deeper.
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// It closes on a line of its own, unless it is empty.
    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            Self::line(w, true, self.depth)?;
        }
        w.write_all(bracket)
    }

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
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
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
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
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
    fn objects_written_field_by_field_are_serde_jsons_pretty_byte_for_byte() {
        #[derive(Serialize)]
        struct Item {
            path: String,
            shape: Vec<u64>,
            empty: Vec<u64>,
        }
        let item = |i: usize| Item {
            path: format!("layer.{i}\"x"),
            shape: vec![i as u64, 3],
            empty: Vec::new(),
        };
        let chunk = JsonObject::CHUNK;
        // No items, fewer than a piece, exactly two pieces, an odd number
        // of pieces with a short last one.
        for len in [0, 1, chunk - 1, 2 * chunk, 3 * chunk + 5] {
            let mut ours = Vec::new();
            write_json_object(&mut ours, |o| {
                o.field("before", &serde_json::json!({"a": [1, 2], "b": {}}))?;
                o.items("items", len, item)?;
                o.field("after", &Vec::<u8>::new())
            })
            .unwrap();
            #[derive(Serialize)]
            struct Whole {
                before: serde_json::Value,
                items: Vec<Item>,
                after: Vec<u8>,
            }
            let whole = Whole {
                before: serde_json::json!({"a": [1, 2], "b": {}}),
                items: (0..len).map(item).collect(),
                after: Vec::new(),
            };
            let mut want = serde_json::to_string_pretty(&whole).unwrap();
            want.push('\n');
            assert_eq!(String::from_utf8(ours).unwrap(), want, "{len} items");
        }
        let mut empty = Vec::new();
        write_json_object(&mut empty, |_| Ok(())).unwrap();
        assert_eq!(empty, b"{}\n");
    }

    #[test]
    fn a_failing_item_stops_both_threads_with_its_error() {
        #[derive(Serialize)]
        struct Bad(#[serde(serialize_with = "fail")] usize);
        fn fail<S: serde::Serializer>(i: &usize, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(format!(
                "item {i} does not serialize"
            )))
        }
        // In a piece of the second thread, then of this one.
        for bad in [JsonObject::CHUNK + 5, 2 * JsonObject::CHUNK + 5] {
            let mut out = Vec::new();
            let err = write_json_object(&mut out, |o| {
                o.items("items", 4 * JsonObject::CHUNK, |i| {
                    (i == bad).then_some(Bad(i))
                })
            })
            .unwrap_err();
            assert!(err.to_string().contains(&format!("item {bad} ")), "{err}");
        }
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
