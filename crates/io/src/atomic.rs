//! Atomic output files: the bytes go to a temporary file in the destination
//! folder, which is renamed over the destination only when everything was
//! written, so a reader sees the old file or the whole new one, never half.
//!
//! Policy, the same for every format netport writes:
//! - the temporary file is created like any new file (mode 0666 less the
//!   umask on Unix; not 0600 as `tempfile` would make it), so the renamed
//!   output has the permissions a plain create gives;
//! - it is named `.<name>.netport-<pid>-<n>.tmp`, next to the destination
//!   (a rename cannot cross file systems);
//! - it is removed on every error path and when an unfinished
//!   [`AtomicFile`] or an uncommitted [`Finished`] is dropped;
//! - no fsync by default ([`Durability::Rename`]), like `cp` and
//!   `torch.save`: the rename is atomic for readers, and a crash of the
//!   machine shortly after may lose the new file. [`Durability::Fsync`]
//!   flushes the file before the rename and the folder after it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{IoError, parent_dir};

/// Size of the write buffer in front of the temporary file.
const BUFFER: usize = 1 << 20;

/// Whether an output reaches the disk before it is renamed into place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Rename only (the default): atomic for readers, not flushed.
    #[default]
    Rename,
    /// fsync the file before the rename and its folder after it.
    Fsync,
}

/// Bytes that every [`AtomicFile`] of this process has handed to its file
/// so far (what passed the write buffer), for progress displays.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// How many bytes all [`AtomicFile`]s of this process have written so far:
/// a progress display samples it while a long write runs.
pub fn bytes_written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

/// Writes at least this long whose bytes lie in a live map of an input are
/// copied by the kernel ([`crate::map::copy_mapped`]).
const KERNEL_COPY_MIN: usize = 64 << 10;

/// The temporary file of an [`AtomicFile`], counting what reaches it (see
/// [`bytes_written`]). A large write of bytes that lie in a live read-only
/// map of an input ([`crate::map_file`]) is copied file to file by the
/// kernel, so the input's pages never become resident in this process.
#[derive(Debug)]
pub struct OutputFile(File);

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let copied = if buf.len() >= KERNEL_COPY_MIN {
            crate::map::copy_mapped(buf, &self.0)
        } else {
            None
        };
        let n = match copied {
            Some(n) => n?,
            None => self.0.write(buf)?,
        };
        WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// An output file being written; see the module docs.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<OutputFile>>,
    durability: Durability,
}

impl AtomicFile {
    /// Starts writing `target` (not fsynced).
    pub fn create(target: impl AsRef<Path>) -> Result<Self, IoError> {
        Self::create_with(target, Durability::default())
    }

    /// Starts writing `target` with the given durability.
    pub fn create_with(target: impl AsRef<Path>, durability: Durability) -> Result<Self, IoError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let target = target.as_ref();
        let name = target
            .file_name()
            .ok_or_else(|| {
                IoError::new(
                    target,
                    io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let dir = parent_dir(target);
        let mut attempts = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.netport-{}-{n}.tmp", std::process::id()));
            // OpenOptions creates with mode 0666 less the umask.
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        target: target.to_owned(),
                        temp,
                        writer: Some(BufWriter::with_capacity(BUFFER, OutputFile(file))),
                        durability,
                    });
                }
                // Left by an earlier process with the same id: try the next.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(IoError::new(target, e)),
            }
        }
    }

    /// The destination.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<OutputFile> {
        self.writer.as_mut().expect("present until finish")
    }

    /// Flushes (and fsyncs if asked) and closes the temporary file, without
    /// renaming it yet: for outputs that must all be complete before any of
    /// them replaces its destination.
    pub fn finish(mut self) -> Result<Finished, IoError> {
        let writer = self.writer.take().expect("present until finish");
        let temp = std::mem::take(&mut self.temp);
        let target = std::mem::take(&mut self.target);
        // From here on `Finished` owns (and on error removes) the temp file.
        let mut finished = Finished {
            target,
            temp: Some(temp),
            len: 0,
            durability: self.durability,
        };
        let OutputFile(file) = writer
            .into_inner()
            .map_err(|e| IoError::new(&finished.target, e.into_error()))?;
        if finished.durability == Durability::Fsync {
            file.sync_all()
                .map_err(|e| IoError::new(&finished.target, e))?;
        }
        finished.len = file
            .metadata()
            .map_err(|e| IoError::new(&finished.target, e))?
            .len();
        Ok(finished)
    }

    /// Finishes and renames into place; returns the file's size.
    pub fn commit(self) -> Result<u64, IoError> {
        self.finish()?.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A complete temporary file waiting to be renamed over its destination.
/// Dropped without [`commit`](Self::commit), it is removed.
#[derive(Debug)]
pub struct Finished {
    target: PathBuf,
    temp: Option<PathBuf>,
    len: u64,
    durability: Durability,
}

impl Finished {
    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The destination.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the file into place; returns its size.
    pub fn commit(mut self) -> Result<u64, IoError> {
        let temp = self.temp.as_ref().expect("present until commit");
        std::fs::rename(temp, &self.target).map_err(|e| IoError::new(&self.target, e))?;
        self.temp = None;
        if self.durability == Durability::Fsync {
            // Not every platform can sync a folder; the file itself is synced.
            if let Ok(dir) = File::open(parent_dir(&self.target)) {
                let _ = dir.sync_all();
            }
        }
        Ok(self.len)
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Writes `bytes` to `target` atomically (not fsynced); returns the size.
pub fn write_file(target: impl AsRef<Path>, bytes: &[u8]) -> Result<u64, IoError> {
    let mut out = AtomicFile::create(target)?;
    out.write_all(bytes)
        .map_err(|e| IoError::new(out.target(), e))?;
    out.commit()
}

/// Writes `target` atomically (not fsynced) with `f`, which writes into the
/// buffered temporary file; on an error from `f` or from the file system
/// nothing is left behind and `target` is untouched. Returns the size.
pub fn write_with<E, F>(target: impl AsRef<Path>, f: F) -> Result<u64, E>
where
    E: From<IoError>,
    F: FnOnce(&mut BufWriter<OutputFile>) -> Result<(), E>,
{
    let mut out = AtomicFile::create(target)?;
    f(out.writer())?;
    Ok(out.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let before = bytes_written();
        write_file(dir.path().join("a"), &[7u8; 3 << 20]).unwrap();
        // Other tests may write at the same time: at least ours are counted.
        assert!(bytes_written() - before >= 3 << 20);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[cfg(unix)]
    fn umask() -> u32 {
        // Read it the portable way: create a file with 0666 and look.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("probe");
        File::create(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        0o666 & !std::fs::metadata(&p).unwrap().permissions().mode()
    }

    #[test]
    fn writes_replaces_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.bin");
        assert_eq!(write_file(&out, b"one").unwrap(), 3);
        assert_eq!(write_file(&out, b"second").unwrap(), 6);
        assert_eq!(std::fs::read(&out).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["o.bin"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o666 & !umask());
        }
        let mut f = AtomicFile::create_with(&out, Durability::Fsync).unwrap();
        f.write_all(b"synced").unwrap();
        assert_eq!(f.commit().unwrap(), 6);
        assert_eq!(std::fs::read(&out).unwrap(), b"synced");
    }

    #[test]
    fn errors_and_drops_remove_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.bin");
        std::fs::write(&out, b"old").unwrap();
        // The writer fails half-way.
        let r: Result<u64, IoError> = write_with(&out, |w| {
            w.write_all(b"half").unwrap();
            Err(IoError::new("encoder", io::Error::other("cannot encode")))
        });
        assert_eq!(r.unwrap_err().to_string(), "encoder: cannot encode");
        // Dropped before finishing, and finished but never committed.
        let mut f = AtomicFile::create(&out).unwrap();
        f.write_all(b"dropped").unwrap();
        assert!(f.temp_path().exists());
        drop(f);
        let mut f = AtomicFile::create(&out).unwrap();
        f.write_all(b"finished").unwrap();
        let done = f.finish().unwrap();
        assert_eq!(done.len(), 8);
        drop(done);
        // The rename fails: the destination is a non-empty folder.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        let e = write_file(&blocked, b"data").unwrap_err();
        assert_eq!(e.path, blocked);
        // No folder to create the temporary file in.
        let e = write_file(dir.path().join("no/such/dir/o.bin"), b"x").unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::NotFound);
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["blocked", "o.bin"]);
        assert!(write_file(dir.path(), b"x").is_err());
    }
}
