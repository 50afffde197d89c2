//! Timing whole processes: rounds of runs, each child reaped with `wait4`
//! for its own CPU time and peak RSS, and its private memory sampled.

use super::*;

/// One finished run.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    pub(super) wall: Duration,
    pub(super) cpu: Duration,
    pub(super) peak_kib: u64,
    /// The sampled peak of private memory (rewrite commands, Linux).
    pub(super) private_kib: Option<u64>,
    /// The torch.load call alone (for the rewrite peers: the load and the
    /// save), as the Python process reported it.
    pub(super) call: Option<Duration>,
    /// The load (exec part: netport's load + plan, the peers' session
    /// creation), as the process reported it.
    pub(super) load: Option<Duration>,
}

/// Runs every command once per round, `warmup` rounds uncounted, then `runs`
/// rounds; returns `samples[spec][round]`. A rewrite command's output is
/// removed before its run and deleted after it (its absence after a run that
/// succeeded is an error).
pub(super) fn measure(
    ctx: &Ctx,
    specs: &[Spec],
    opts: &Options,
) -> Result<(Vec<Vec<Sample>>, u64)> {
    let stderr_path =
        std::env::temp_dir().join(format!("netport-bench-{}.stderr", std::process::id()));
    let mut samples = vec![Vec::with_capacity(opts.runs); specs.len()];
    let rounds = opts.warmup + opts.runs;
    let timer = Timer::start("timing");
    let mut floor_kib = 0;
    for round in 0..rounds {
        let counted = round >= opts.warmup;
        // The floor of every peak RSS figure (see `rusage::reset_peak`):
        // what `true`, which needs next to nothing, is reported to use.
        let floor = run_once(Command::new("true"), false, false, false, &stderr_path)
            .context("timing `true` (the peak RSS floor)")?;
        floor_kib = floor_kib.max(floor.peak_kib);
        eprintln!(
            "round {}/{rounds}{} (peak RSS floor: {})",
            round + 1,
            if counted {
                ""
            } else {
                " (warm-up, not counted)"
            },
            kib(floor.peak_kib)
        );
        for (i, spec) in specs.iter().enumerate() {
            let output = spec.output(ctx);
            if let Some(out) = &output {
                remove_output(out)?;
                // Flush the write-back of earlier outputs (untimed), or the
                // kernel writes them during this run and its figure swings.
                util::run(&mut Command::new("sync"), "`sync` before a timed rewrite")?;
            }
            let sample = run_once(
                spec.command(ctx),
                spec.reports_call(),
                spec.kind.part() == Part::Exec,
                spec.kind.samples_private(),
                &stderr_path,
            )
            .with_context(|| format!("timing `{}`", spec.label()))?;
            if let Some(out) = &output {
                if !out.exists() {
                    bail!(
                        "`{}` succeeded but wrote no {}",
                        spec.label(),
                        out.display()
                    );
                }
                remove_output(out)?;
            }
            eprintln!(
                "  {:>10}  {:>10}  {}",
                seconds(sample.wall),
                kib(sample.peak_kib),
                spec.label()
            );
            if counted {
                samples[i].push(sample);
            }
        }
    }
    let _ = fs::remove_file(&stderr_path);
    timer.report();
    Ok((samples, floor_kib))
}

/// Starts `cmd` with stderr to a file and stdout to /dev/null (or, when
/// `reports_call`, to a pipe that carries the seconds of the torch.load call),
/// waits for it with `wait4` and returns its wall time, CPU time and peak
/// memory. A command that fails is an error carrying its stderr. An `exec`
/// command reports its median run (as the call) and its load
/// ([`parse_exec_stdout`]).
pub(super) fn run_once(
    mut cmd: Command,
    reports_call: bool,
    exec: bool,
    sample_private: bool,
    stderr_path: &Path,
) -> Result<Sample> {
    use std::io::Read;
    let stderr =
        File::create(stderr_path).with_context(|| format!("creating {}", stderr_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(if reports_call || exec {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(stderr);
    rusage::reset_peak();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", util::describe(&cmd)))?;
    let sampler = if sample_private {
        private::Sampler::start(child.id())
    } else {
        None
    };
    // A few bytes, read to the end (the child's exit) before reaping it.
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout)
            .context("reading the command's output")?;
    }
    let (status, usage) = rusage::wait(child)?;
    let wall = start.elapsed();
    let private_kib = sampler.map(private::Sampler::finish);
    if !status.success() {
        let text = fs::read_to_string(stderr_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{status}: {}\n{}", util::describe(&cmd), tail.join("\n"));
    }
    let (call, load) = if exec {
        let (run, load) = parse_exec_stdout(&stdout)?;
        (Some(run), Some(load))
    } else if reports_call {
        let secs: f64 = stdout.trim().parse().with_context(|| {
            format!("expected the torch.load seconds on stdout, got {stdout:?}")
        })?;
        (Some(Duration::from_secs_f64(secs.max(0.0))), None)
    } else {
        (None, None)
    };
    Ok(Sample {
        wall,
        cpu: usage.cpu,
        peak_kib: usage.peak_kib,
        private_kib,
        call,
        load,
    })
}

/// The peak of a child's private memory (`RssAnon` in `/proc/PID/status`:
/// heap, stacks, anonymous maps; not the file pages it maps, which
/// `ru_maxrss` counts), sampled from a thread while the main thread waits.
#[cfg(target_os = "linux")]
pub(super) mod private {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// How often the status file is read.
    pub const INTERVAL: Duration = Duration::from_millis(10);

    pub struct Sampler {
        stop: Arc<AtomicBool>,
        thread: JoinHandle<u64>,
    }

    impl Sampler {
        /// Starts sampling `pid`; `None` if its status file cannot be opened.
        pub fn start(pid: u32) -> Option<Sampler> {
            // Opened once: the open file stays tied to this process, so a
            // later process with the same pid is never read.
            let file = File::open(format!("/proc/{pid}/status")).ok()?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let thread = std::thread::spawn(move || {
                let mut peak = 0;
                let mut buf = vec![0u8; 8192];
                while !flag.load(Ordering::Relaxed) {
                    // Fails (ESRCH) or reads nothing once the process is gone.
                    let Ok(n) = file.read_at(&mut buf, 0) else {
                        break;
                    };
                    match rss_anon_kib(&buf[..n]) {
                        Some(kib) => peak = peak.max(kib),
                        None => break,
                    }
                    std::thread::sleep(INTERVAL);
                }
                peak
            });
            Some(Sampler { stop, thread })
        }

        /// Stops sampling (the child has been reaped); the peak in KiB.
        pub fn finish(self) -> u64 {
            self.stop.store(true, Ordering::Relaxed);
            self.thread.join().unwrap_or(0)
        }
    }

    /// The `RssAnon:` line of a status file, in KiB.
    pub fn rss_anon_kib(status: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(status).ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("RssAnon:"))?;
        line.trim().strip_suffix("kB")?.trim().parse().ok()
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) mod private {
    use std::time::Duration;

    pub const INTERVAL: Duration = Duration::from_millis(10);

    pub struct Sampler;

    impl Sampler {
        pub fn start(_pid: u32) -> Option<Sampler> {
            None
        }

        pub fn finish(self) -> u64 {
            0
        }
    }
}

#[cfg(unix)]
pub(super) mod rusage {
    use anyhow::{Context, Result};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, ExitStatus};
    use std::time::Duration;

    pub struct Usage {
        pub cpu: Duration,
        pub peak_kib: u64,
    }

    /// Lowers this process's peak resident set to its current one (Linux:
    /// `5` written to `/proc/self/clear_refs`; elsewhere, or if refused,
    /// nothing). A child starts in its parent's address space (vfork, or a
    /// copy of it with fork), and Linux carries that address space's peak
    /// into the child's `ru_maxrss` when it execs: so a child's reported peak
    /// is never below its parent's peak so far. Resetting before each spawn
    /// makes that floor the parent's current resident set instead.
    pub fn reset_peak() {
        #[cfg(target_os = "linux")]
        {
            let _ = std::fs::write("/proc/self/clear_refs", "5");
        }
    }

    /// Reaps `child` with `wait4`, which returns the resource usage of that
    /// child alone (`getrusage(RUSAGE_CHILDREN)` would give the largest peak
    /// of every child reaped so far, not this one's).
    // `wait4` through libc: the workspace denies `unsafe` elsewhere.
    #[allow(unsafe_code)]
    pub fn wait(child: Child) -> Result<(ExitStatus, Usage)> {
        let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; all zeroes is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: pid is our own unreaped child; both pointers are valid
            // for writes for the duration of the call.
            let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if got == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).context("wait4");
            }
        }
        // The child is reaped; dropping the handle neither waits nor kills.
        drop(child);
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        // Linux reports ru_maxrss in KiB, macOS in bytes.
        let maxrss = usage.ru_maxrss as u64;
        let peak_kib = if cfg!(target_os = "macos") {
            maxrss / 1024
        } else {
            maxrss
        };
        Ok((
            ExitStatus::from_raw(status),
            Usage {
                cpu: time(usage.ru_utime) + time(usage.ru_stime),
                peak_kib,
            },
        ))
    }
}

#[cfg(not(unix))]
pub(super) mod rusage {
    use anyhow::{Result, bail};
    use std::process::{Child, ExitStatus};
    use std::time::Duration;

    pub struct Usage {
        pub cpu: Duration,
        pub peak_kib: u64,
    }

    pub fn reset_peak() {}

    pub fn wait(mut child: Child) -> Result<(ExitStatus, Usage)> {
        let _ = child.kill();
        bail!("cargo xtask bench needs a Unix system (it measures with wait4)")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    pub(super) fn rss_anon_from_status() {
        let status =
            b"Name:\tnetport\nVmRSS:\t 2101384 kB\nRssAnon:\t    1464 kB\nRssFile:\t 2099920 kB\n";
        assert_eq!(private::rss_anon_kib(status), Some(1464));
        assert_eq!(private::rss_anon_kib(b"Name:\tzombie\nState:\tZ\n"), None);
    }
}
