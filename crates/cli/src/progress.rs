//! A progress bar for long work (rewrites, conversions), on stderr, driven
//! by the bytes this process has written so far.
//!
//! The libraries write through their own atomic writers; rather than thread
//! a callback through each of them, a background thread samples the bytes
//! the process has handed to `write` (`wchar` of `/proc/self/io` on Linux)
//! ten times a second, and shows them against the expected output size
//! (the input's size). Where that counter does not exist the bar shows the
//! elapsed time only. The bar appears only after a short delay (quick work
//! shows nothing), only when stderr is a terminal, never with `--json` or
//! `--quiet`, and is cleared when the work ends.

use crate::global::Global;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Work that is shorter than this shows no bar.
const DELAY: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(100);

/// Whether a bar is shown: on a terminal, without `--json` or `--quiet`.
pub fn wanted(global: &Global, json: bool, terminal: bool) -> bool {
    terminal && !json && !global.quiet
}

/// A running progress bar; cleared when finished or dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts a bar labelled `what` (e.g. `writing model.safetensors`) for
    /// about `expected` bytes of output, if one is [`wanted`].
    pub fn start(global: &Global, json: bool, what: String, expected: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = wanted(global, json, std::io::stderr().is_terminal()).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || run(&stop, what, expected))
        });
        Progress { stop, thread }
    }

    /// Ends the bar (also done on drop).
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

/// The size of a file, as the expected size of a rewrite of it (0 if it
/// cannot be read: the command reports that itself).
pub fn size_of(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn run(stop: &AtomicBool, what: String, expected: u64) {
    let base = bytes_written();
    let mut waited = Duration::ZERO;
    while waited < DELAY {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(TICK);
        waited += TICK;
    }
    // Drawn only once positioned, so the rate starts from here, not from 0.
    let bar = match base {
        Some(_) => ProgressBar::hidden().with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {elapsed}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::hidden().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
        ),
    };
    bar.set_length(expected);
    if let (Some(base), Some(now)) = (base, bytes_written()) {
        bar.set_position(now.saturating_sub(base));
    }
    bar.reset_eta();
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message(what);
    while !stop.load(Ordering::Relaxed) {
        if let (Some(base), Some(now)) = (base, bytes_written()) {
            let done = now.saturating_sub(base);
            if done > bar.length().unwrap_or(0) {
                bar.set_length(done);
            }
            bar.set_position(done);
        } else {
            bar.tick();
        }
        std::thread::sleep(TICK);
    }
    bar.finish_and_clear();
}

/// Bytes this process has passed to `write` so far (all threads), if the
/// system says.
fn bytes_written() -> Option<u64> {
    parse_wchar(&std::fs::read_to_string("/proc/self/io").ok()?)
}

fn parse_wchar(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_only_on_a_terminal_without_json_or_quiet() {
        let loud = Global { quiet: false };
        let quiet = Global { quiet: true };
        assert!(wanted(&loud, false, true));
        assert!(!wanted(&loud, false, false));
        assert!(!wanted(&loud, true, true));
        assert!(!wanted(&quiet, false, true));
    }

    #[test]
    fn the_write_counter_is_read() {
        let io = "rchar: 6976\nwchar: 123\nsyscr: 10\n";
        assert_eq!(parse_wchar(io), Some(123));
        assert_eq!(parse_wchar("rchar: 1\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_counter_follows_writes() {
        use std::io::Write;
        let before = bytes_written().expect("linux has /proc/self/io");
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[0u8; 1 << 16]).unwrap();
        let after = bytes_written().unwrap();
        assert!(after - before >= 1 << 16, "{before} -> {after}");
    }
}
