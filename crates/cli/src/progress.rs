//! A progress bar for long work (rewrites, conversions), on stderr, driven
//! by the bytes this process has written so far.
//!
//! Every library writes its outputs through `netport_io::AtomicFile`, which
//! counts the bytes that reach its files ([`netport_io::bytes_written`]); a
//! background thread samples that counter ten times a second and shows it
//! against the expected output size (the input's size). The bar appears only
//! after a short delay (quick work shows nothing), only when stderr is a
//! terminal, never with `--json` or `--quiet`, and is cleared when the work
//! ends.

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
    let base = netport_io::bytes_written();
    let mut waited = Duration::ZERO;
    while waited < DELAY {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(TICK);
        waited += TICK;
    }
    let done = || netport_io::bytes_written().saturating_sub(base);
    // Drawn only once positioned, so the rate starts from here, not from 0.
    let bar = ProgressBar::hidden().with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {elapsed}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_length(expected);
    bar.set_position(done());
    bar.reset_eta();
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message(what);
    while !stop.load(Ordering::Relaxed) {
        let now = done();
        if now > bar.length().unwrap_or(0) {
            bar.set_length(now);
        }
        bar.set_position(now);
        std::thread::sleep(TICK);
    }
    bar.finish_and_clear();
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
}
