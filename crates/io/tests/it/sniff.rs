//! The sniffer on generated inputs: every verdict, and the bound on what it reads.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};

use netport_io::sniff::{MAX_SNIFF_BYTES, Sniffed, TextStart, sniff_reader, text_start};
use netport_io::{sniff_bytes, sniff_file};

/// A stored-only zip with one entry `name` holding `data`, and `comment`.
fn zip(name: &str, data: &[u8], comment: &[u8]) -> Vec<u8> {
    let mut z = Vec::new();
    z.extend(b"PK\x03\x04");
    z.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend([0, 0]);
    z.extend(name.as_bytes());
    z.extend(data);
    let cd = z.len() as u32;
    z.extend(b"PK\x01\x02");
    z.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend([0; 12]);
    z.extend(0u32.to_le_bytes());
    z.extend(name.as_bytes());
    let cd_size = z.len() as u32 - cd;
    z.extend(b"PK\x05\x06");
    z.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend(cd_size.to_le_bytes());
    z.extend(cd.to_le_bytes());
    z.extend((comment.len() as u16).to_le_bytes());
    z.extend(comment);
    z
}

#[test]
fn what_users_mistake_for_models() {
    assert_eq!(sniff_bytes(b""), Sniffed::Empty);
    let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 6181001\n";
    let s = sniff_bytes(lfs);
    assert_eq!(
        s,
        Sniffed::GitLfsPointer {
            oid: Some("sha256:4d7a".into()),
            size: Some(6181001)
        }
    );
    assert_eq!(
        s.to_string(),
        "a Git LFS pointer file, not the model itself (oid sha256:4d7a, size 6181001 bytes); run `git lfs pull` to fetch the real file"
    );
    for html in [
        &b"\n\n<!DOCTYPE html>\n<html><body>404</body></html>"[..],
        b"\xef\xbb\xbf  <html lang=en>\xff\xfe",
        b"<?xml version=\"1.0\"?><Error/>",
        b"<!-- comment -->",
    ] {
        assert_eq!(sniff_bytes(html), Sniffed::Html, "{html:?}");
    }
    assert!(Sniffed::Html.to_string().contains("an HTML page"));
    assert_eq!(sniff_bytes(b"\x1f\x8b\x08\x00"), Sniffed::Gzip);
    let mut tar = vec![0u8; 1024];
    tar[257..262].copy_from_slice(b"ustar");
    assert_eq!(sniff_bytes(&tar), Sniffed::Tar);
    assert_eq!(sniff_bytes(b"  {\"a\": 1}"), Sniffed::Json);
    assert_eq!(
        sniff_bytes(b"\x80\x02}q\x00."),
        Sniffed::Pickle { protocol: 2 }
    );
    assert!(sniff_bytes(b"").is_not_a_model());
    assert!(!sniff_bytes(b"\x80\x02}q\x00.").is_not_a_model());
}

#[test]
fn safetensors_and_truncation() {
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend(b"{}");
    assert_eq!(sniff_bytes(&st), Sniffed::Safetensors { header_len: 2 });
    let mut cut = 100u64.to_le_bytes().to_vec();
    cut.extend(b"{\"a\":");
    assert_eq!(
        sniff_bytes(&cut),
        Sniffed::TruncatedSafetensors {
            header_len: 100,
            len: 13
        }
    );
    let z = zip("archive/data.pkl", b"\x80\x02}q\x00.", b"");
    assert_eq!(sniff_bytes(&z), Sniffed::Zip { offset: 0 });
    assert_eq!(
        sniff_bytes(&z[..z.len() - 10]),
        Sniffed::TruncatedZip {
            len: z.len() as u64 - 10
        }
    );
}

#[test]
fn a_zip_after_junk_is_found_through_its_end_record() {
    let comment = vec![b'c'; 65_535];
    for (prefix, comment) in [(4usize, &b""[..]), (10_000, &comment[..]), (1, b"note")] {
        let mut f = vec![b'J'; prefix];
        f.extend(zip("a/data.pkl", &vec![7u8; 200_000], comment));
        assert_eq!(
            sniff_bytes(&f),
            Sniffed::Zip {
                offset: prefix as u64
            }
        );
    }
    // An end record whose directory does not lead to a local header.
    let mut f = vec![0xeeu8; 50];
    let z = zip("a/b", b"x", b"");
    f.extend(&z[z.len() - 22..]);
    assert!(matches!(sniff_bytes(&f), Sniffed::Unknown { .. }));
}

#[test]
fn text_and_protobuf_guesses() {
    assert_eq!(
        sniff_bytes(b"name: \"x\"\nop {\n}\n"),
        Sniffed::ProtobufText
    );
    assert_eq!(sniff_bytes(b"# only a comment\n"), Sniffed::ProtobufText);
    assert_eq!(sniff_bytes(b"404 Not Found"), Sniffed::Text);
    // ONNX: ir_version (field 1, varint).
    assert_eq!(
        sniff_bytes(b"\x08\x07\x12\x04onnx"),
        Sniffed::Protobuf {
            field: 1,
            wire_type: 0
        }
    );
    // Field 0 and end-group keys are not protobuf.
    assert!(matches!(
        sniff_bytes(b"\x07\xff\x00"),
        Sniffed::Unknown { .. }
    ));
    assert_eq!(text_start(b"\n  op {"), Some(TextStart::Identifier("op")));
    assert_eq!(text_start(b"a\x00"), None);
}

/// A reader of a large virtual file (zeros, with `head` and `tail` at its
/// ends) that counts the bytes it hands out.
struct Counting<'a> {
    len: u64,
    head: &'a [u8],
    tail: &'a [u8],
    pos: u64,
    read: &'a Cell<u64>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64).min(1 << 16) as usize;
        let tail_at = self.len - self.tail.len() as u64;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *b = if (at as usize) < self.head.len() {
                self.head[at as usize]
            } else if at >= tail_at {
                self.tail[(at - tail_at) as usize]
            } else {
                0
            };
        }
        self.pos += n as u64;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl Seek for Counting<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn detection_reads_a_bounded_amount_of_any_file() {
    let z = zip("a/data.pkl", b"x", b"");
    let (local, end) = z.split_at(z.len() - 22 - 46 - 10);
    let cases: [(&[u8], &[u8]); 5] = [
        (b"\x08\x07\x12\x04onnx", b""), // protobuf-looking, nothing at the end
        (b"unknown \x01\x02", b""),     // nothing recognised
        (b"PK\x03\x04", b""),           // a zip cut short
        (b"JUNK", b"PK\x05\x06"),       // an end record that leads nowhere
        (b"", b""),                     // all zeros
    ];
    for len in [5u64 << 20, 8u64 << 30] {
        for (head, tail) in cases {
            let read = Cell::new(0);
            let r = Counting {
                len,
                head,
                tail,
                pos: 0,
                read: &read,
            };
            sniff_reader(r).unwrap();
            assert!(
                read.get() <= MAX_SNIFF_BYTES,
                "{} bytes read of {len} for {head:?}",
                read.get()
            );
        }
    }
    // A zip 8 GiB into the file (bytes before it): still found, still bounded.
    let len = 16u64 << 30;
    let prefix = len - z.len() as u64;
    let mut tail = Vec::new();
    tail.extend(local);
    tail.extend(end);
    let read = Cell::new(0);
    let r = Counting {
        len,
        head: b"JUNK",
        tail: &tail,
        pos: 0,
        read: &read,
    };
    assert_eq!(sniff_reader(r).unwrap(), Sniffed::Zip { offset: prefix });
    assert!(read.get() <= MAX_SNIFF_BYTES, "{}", read.get());
}

#[test]
fn files_are_sniffed_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.pt");
    std::fs::write(&p, b"<html><body>Sign in</body></html>").unwrap();
    assert_eq!(sniff_file(&p).unwrap(), Sniffed::Html);
    let e = sniff_file(dir.path().join("missing.pt")).unwrap_err();
    assert!(e.to_string().contains("missing.pt"), "{e}");
}
