//! `cargo xtask bench`: how long `netport inspect --json` takes on large
//! PyTorch checkpoints, and how much memory, against `torch.load` on the same
//! files in the same run. A benchmark, never a test: nothing here passes or
//! fails on a timing, and no test runs it.
//!
//! - The checkpoints are written by real torch (`testdata/bench/make_bench_checkpoints.py`
//!   in the peer venv) into `<cache>/bench-<hash>`, where the hash covers every
//!   file in `testdata/bench/` and the venv; built in `.partial` and renamed
//!   after a stamp file, like the peer corpus, and reused while present.
//! - Each command is timed as a whole process (start-up included), each run
//!   reaped with `wait4`, which returns that child's own resource usage: its
//!   user and system time and its peak resident memory (`ru_maxrss`). The wall
//!   time is `Instant` around spawn and reap.
//! - The commands run in rounds, every command once per round in a fixed
//!   order, after `--warmup` rounds that are not counted. Ratios are taken
//!   round by round (netport and torch.load of the same round), then the
//!   median, so a machine whose speed drifts during the run still gives a fair
//!   ratio. Every run is warm-cache: the files were just written or read.
//! - Nothing is written into the repo unless `--write-docs` is given; then the
//!   figures section of `docs/performance.md` (between its two markers) is
//!   replaced.

use crate::util::{self, ContentHash, Timer};
use crate::venv;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BENCH_DIR: &str = "testdata/bench";
const BENCH_SCRIPT: &str = "testdata/bench/make_bench_checkpoints.py";
const STAMP: &str = "netport-bench.stamp";
const DOCS: &str = "docs/performance.md";
/// The figures section of `docs/performance.md` is everything between these.
const DOCS_BEGIN: &str =
    "<!-- bench figures: begin (rewritten by `cargo xtask bench --write-docs`) -->";
const DOCS_END: &str = "<!-- bench figures: end -->";

/// The checkpoints, as written by the script, with what they hold.
const BIG: &str = "big.pt";
const MID: &str = "mid.pt";
const MANY: &str = "many.pt";
const FILES: [(&str, &str); 3] = [
    (
        MID,
        "256 float32 tensors [256, 1024]: 256 MiB of tensor bytes",
    ),
    (
        BIG,
        "256 float32 tensors [2048, 1024]: 2 GiB of tensor bytes",
    ),
    (
        MANY,
        "50,000 float32 tensors [16]: 3.2 MB of tensor bytes, 50,000 records",
    ),
];

/// The targets of the issue: how many times faster than
/// `torch.load(weights_only=True)` netport must be on each file.
const BIG_TARGET: f64 = 100.0;
const MANY_TARGET: f64 = 10.0;
/// Peak memory counts as independent of tensor bytes when netport's peak on
/// big.pt (8x the tensor bytes of mid.pt) is within this factor of mid.pt's.
const FLAT_TOLERANCE: f64 = 1.10;

/// The torch.load commands also print how long the `torch.load` call itself
/// took (perf_counter around it, inside the process): what the load costs
/// without the interpreter start and `import torch`.
const LOAD_CODE: &str = "import sys, time, torch; t = time.perf_counter(); \
    torch.load(sys.argv[1], weights_only=True); print(time.perf_counter() - t)";
const LOAD_MMAP_CODE: &str = "import sys, time, torch; t = time.perf_counter(); \
    torch.load(sys.argv[1], weights_only=True, mmap=True); print(time.perf_counter() - t)";
const IMPORT_CODE: &str = "import torch";
const VERSIONS_CODE: &str =
    "import sys, torch; print('Python', sys.version.split()[0] + ', torch', torch.__version__)";

pub struct Options {
    pub runs: usize,
    pub warmup: usize,
    pub write_docs: bool,
    pub python_only: bool,
}

/// `cargo xtask bench [--runs N] [--warmup N] [--write-docs] [--python-only]`.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    if opts.write_docs && opts.python_only {
        bail!("--write-docs needs the netport figures; it cannot be combined with --python-only");
    }
    if opts.write_docs {
        // Fail now, not after minutes of timing, if the markers are gone.
        let text =
            fs::read_to_string(root.join(DOCS)).with_context(|| format!("reading {DOCS}"))?;
        replace_section(&text, "")?;
    }
    let (dir, venv) = ensure_checkpoints(root)?;
    let netport = if opts.python_only {
        eprintln!("--python-only: netport is not built or timed");
        None
    } else {
        let bin = build_netport(root)?;
        probe_netport(&bin, &dir)?;
        Some(bin)
    };
    let ctx = Ctx {
        python: venv.python(),
        netport,
        dir: dir.clone(),
    };
    let specs = specs(ctx.netport.is_some());
    let versions = versions(root, &ctx)?;
    let samples = measure(&ctx, &specs, opts)?;
    let report = Report {
        specs: &specs,
        samples: &samples,
    };

    let machine = machine();
    let mut out = String::new();
    writeln!(
        out,
        "Measured by `cargo xtask bench{}` ({} counted runs of each command after {} warm-up \
         round{}) on {} (UTC).\n",
        if opts.write_docs { " --write-docs" } else { "" },
        opts.runs,
        opts.warmup,
        if opts.warmup == 1 { "" } else { "s" },
        utc_date(),
    )?;
    writeln!(out, "- machine: {machine}")?;
    writeln!(out, "- versions: {versions}")?;
    writeln!(
        out,
        "- cache: warm. Every file was just written or read by the warm-up round, so it is in \
         the page cache; nothing is dropped between runs (that needs root). A first read from \
         disk is slower for every command, most for those that read every tensor byte."
    )?;
    writeln!(out, "- files (written by torch.save, default zip format):")?;
    for (name, what) in FILES {
        let size = fs::metadata(dir.join(name))
            .with_context(|| format!("reading the size of {name}"))?
            .len();
        writeln!(out, "  - `{name}`: {what}; {} on disk", bytes(size))?;
    }
    writeln!(out)?;
    report.table(&mut out)?;
    writeln!(out)?;
    report.ratios(&mut out)?;
    writeln!(out)?;
    writeln!(
        out,
        "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak RSS` \
         is the process's largest resident set (`ru_maxrss` from `wait4`), file pages it mapped \
         and touched included. `torch.load call` is the call alone, timed inside the Python \
         process (`time.perf_counter()` around it): no interpreter start-up, no `import torch`. \
         Ratios are taken run by run within a round, then the median."
    )?;

    println!("\n{out}");
    if opts.write_docs {
        let path = root.join(DOCS);
        let text = fs::read_to_string(&path).with_context(|| format!("reading {DOCS}"))?;
        let new = replace_section(&text, &out)?;
        fs::write(&path, new).with_context(|| format!("writing {DOCS}"))?;
        eprintln!("rewrote the figures section of {DOCS}");
    } else {
        eprintln!("(nothing written; --write-docs puts these figures into {DOCS})");
    }
    Ok(())
}

// --- the checkpoints -------------------------------------------------------------

/// The checkpoint folder for the current testdata/bench/ and venv.
fn checkpoint_dir(root: &Path) -> Result<PathBuf> {
    let venv_dir = venv::venv_dir(root)?;
    let mut hash = ContentHash::new("netport bench v1");
    hash.part(venv_dir.file_name().unwrap_or_default().as_encoded_bytes());
    let dir = root.join(BENCH_DIR);
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {BENCH_DIR}"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !name.starts_with('.') && !name.ends_with(".swp") {
            files.push(name);
        }
    }
    files.sort();
    for name in files {
        let bytes =
            fs::read(dir.join(&name)).with_context(|| format!("reading {BENCH_DIR}/{name}"))?;
        hash.part(name.as_bytes()).part(&bytes);
    }
    Ok(util::cache_root()?.join(format!("bench-{}", hash.short())))
}

/// Writes the checkpoints if they are not there yet; returns their folder.
fn ensure_checkpoints(root: &Path) -> Result<(PathBuf, venv::Venv)> {
    let venv = venv::ensure(root)?;
    let dir = checkpoint_dir(root)?;
    let _lock = util::lock_folder(&dir)?;
    if dir.join(STAMP).is_file() {
        eprintln!("bench checkpoints are up to date: {}", dir.display());
        return Ok((dir, venv));
    }
    let timer = Timer::start("writing the bench checkpoints (~2.3 GiB)");
    let mut partial = dir.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    for stale in [&partial, &dir] {
        if stale.exists() {
            eprintln!("removing unfinished bench checkpoints {}", stale.display());
            fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    util::run(
        util::python_env(&mut Command::new(venv.python()))
            .current_dir(root)
            .arg(root.join(BENCH_SCRIPT))
            .arg("--out")
            .arg(&partial),
        &format!(
            "{BENCH_SCRIPT} (the partial output is left in {})",
            partial.display()
        ),
    )?;
    fs::write(
        partial.join(STAMP),
        "written by `cargo xtask bench` after testdata/bench/make_bench_checkpoints.py succeeded\n",
    )
    .with_context(|| format!("writing the stamp in {}", partial.display()))?;
    fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    timer.report();
    Ok((dir, venv))
}

// --- netport ---------------------------------------------------------------------

/// `cargo build --release -p netport-cli`; returns the binary.
fn build_netport(root: &Path) -> Result<PathBuf> {
    let timer = Timer::start("cargo build --release -p netport-cli");
    util::run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root)
            .args(["build", "--release", "-p", "netport-cli"]),
        "building the release netport",
    )?;
    timer.report();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    let bin = target
        .join("release")
        .join(format!("netport{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "cargo built netport-cli but there is no {}; is the target folder elsewhere?",
            bin.display()
        );
    }
    Ok(bin)
}

/// Runs `netport inspect FILE --json` once on every file, so that a netport
/// that cannot read them fails here with its own message, not as a timing.
fn probe_netport(bin: &Path, dir: &Path) -> Result<()> {
    for (name, _) in FILES {
        let path = dir.join(name);
        let out = Command::new(bin)
            .args(["inspect"])
            .arg(&path)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "netport cannot inspect the bench checkpoints yet: `netport inspect {} --json` \
                 {}: {}\n(`cargo xtask bench --python-only` times the Python side alone)",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if !out.stdout.trim_ascii_start().starts_with(b"{") {
            bail!(
                "`netport inspect {} --json` succeeded but did not print a JSON object",
                path.display()
            );
        }
    }
    eprintln!("netport inspects all {} bench checkpoints", FILES.len());
    Ok(())
}

// --- what is timed -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Import,
    Netport,
    Load,
    LoadMmap,
}

struct Spec {
    kind: Kind,
    /// The checkpoint it reads (none for `import torch`).
    file: Option<&'static str>,
}

struct Ctx {
    python: PathBuf,
    netport: Option<PathBuf>,
    dir: PathBuf,
}

/// Every command, in the order of a round and of the table.
fn specs(with_netport: bool) -> Vec<Spec> {
    let mut specs = vec![Spec {
        kind: Kind::Import,
        file: None,
    }];
    for (name, _) in FILES {
        let kinds: &[Kind] = if with_netport {
            &[Kind::Netport, Kind::Load, Kind::LoadMmap]
        } else {
            &[Kind::Load, Kind::LoadMmap]
        };
        for &kind in kinds {
            specs.push(Spec {
                kind,
                file: Some(name),
            });
        }
    }
    specs
}

impl Spec {
    /// Whether the command prints the duration of its torch.load call.
    fn reports_call(&self) -> bool {
        matches!(self.kind, Kind::Load | Kind::LoadMmap)
    }

    /// The command as a reader would type it.
    fn label(&self) -> String {
        let file = self.file.unwrap_or("");
        match self.kind {
            Kind::Import => format!("python -c \"{IMPORT_CODE}\""),
            Kind::Netport => format!("netport inspect {file} --json > /dev/null"),
            Kind::Load => format!("python -c \"torch.load('{file}', weights_only=True)\""),
            Kind::LoadMmap => {
                format!("python -c \"torch.load('{file}', weights_only=True, mmap=True)\"")
            }
        }
    }

    fn command(&self, ctx: &Ctx) -> Command {
        let python = |code: &str| {
            let mut cmd = Command::new(&ctx.python);
            util::python_env(&mut cmd).args(["-c", code]);
            if let Some(file) = self.file {
                cmd.arg(ctx.dir.join(file));
            }
            cmd
        };
        match self.kind {
            Kind::Import => python(IMPORT_CODE),
            Kind::Load => python(LOAD_CODE),
            Kind::LoadMmap => python(LOAD_MMAP_CODE),
            Kind::Netport => {
                let bin = ctx
                    .netport
                    .as_ref()
                    .expect("netport specs only with a binary");
                let mut cmd = Command::new(bin);
                cmd.arg("inspect")
                    .arg(ctx.dir.join(self.file.expect("netport reads a file")))
                    .arg("--json");
                cmd
            }
        }
    }
}

/// One finished run.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
    /// The torch.load call alone, as the Python process reported it.
    call: Option<Duration>,
}

/// Runs every command once per round, `warmup` rounds uncounted, then `runs`
/// rounds; returns `samples[spec][round]`.
fn measure(ctx: &Ctx, specs: &[Spec], opts: &Options) -> Result<Vec<Vec<Sample>>> {
    let stderr_path =
        std::env::temp_dir().join(format!("netport-bench-{}.stderr", std::process::id()));
    let mut samples = vec![Vec::with_capacity(opts.runs); specs.len()];
    let rounds = opts.warmup + opts.runs;
    let timer = Timer::start("timing");
    for round in 0..rounds {
        let counted = round >= opts.warmup;
        eprintln!(
            "round {}/{rounds}{}",
            round + 1,
            if counted {
                ""
            } else {
                " (warm-up, not counted)"
            }
        );
        for (i, spec) in specs.iter().enumerate() {
            let sample = run_once(spec.command(ctx), spec.reports_call(), &stderr_path)
                .with_context(|| format!("timing `{}`", spec.label()))?;
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
    Ok(samples)
}

/// Starts `cmd` with stderr to a file and stdout to /dev/null (or, when
/// `reports_call`, to a pipe that carries the seconds of the torch.load call),
/// waits for it with `wait4` and returns its wall time, CPU time and peak
/// memory. A command that fails is an error carrying its stderr.
fn run_once(mut cmd: Command, reports_call: bool, stderr_path: &Path) -> Result<Sample> {
    use std::io::Read;
    let stderr =
        File::create(stderr_path).with_context(|| format!("creating {}", stderr_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(if reports_call {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(stderr);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", util::describe(&cmd)))?;
    // A few bytes, read to the end (the child's exit) before reaping it.
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout)
            .context("reading the command's output")?;
    }
    let (status, usage) = rusage::wait(child)?;
    let wall = start.elapsed();
    if !status.success() {
        let text = fs::read_to_string(stderr_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{status}: {}\n{}", util::describe(&cmd), tail.join("\n"));
    }
    let call = if reports_call {
        let secs: f64 = stdout.trim().parse().with_context(|| {
            format!("expected the torch.load seconds on stdout, got {stdout:?}")
        })?;
        Some(Duration::from_secs_f64(secs.max(0.0)))
    } else {
        None
    };
    Ok(Sample {
        wall,
        cpu: usage.cpu,
        peak_kib: usage.peak_kib,
        call,
    })
}

#[cfg(unix)]
mod rusage {
    use anyhow::{Context, Result};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, ExitStatus};
    use std::time::Duration;

    pub struct Usage {
        pub cpu: Duration,
        pub peak_kib: u64,
    }

    /// Reaps `child` with `wait4`, which returns the resource usage of that
    /// child alone (`getrusage(RUSAGE_CHILDREN)` would give the largest peak
    /// of every child reaped so far, not this one's).
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
mod rusage {
    use anyhow::{Result, bail};
    use std::process::{Child, ExitStatus};
    use std::time::Duration;

    pub struct Usage {
        pub cpu: Duration,
        pub peak_kib: u64,
    }

    pub fn wait(mut child: Child) -> Result<(ExitStatus, Usage)> {
        let _ = child.kill();
        bail!("cargo xtask bench needs a Unix system (it measures with wait4)")
    }
}

// --- the report ------------------------------------------------------------------

struct Report<'a> {
    specs: &'a [Spec],
    samples: &'a [Vec<Sample>],
}

impl Report<'_> {
    fn index(&self, kind: Kind, file: Option<&str>) -> Option<usize> {
        self.specs
            .iter()
            .position(|s| s.kind == kind && s.file == file)
    }

    fn table(&self, out: &mut String) -> Result<()> {
        writeln!(
            out,
            "| command | wall median | wall min – max | cpu median | torch.load call median | \
             peak RSS median | peak RSS max |"
        )?;
        writeln!(out, "|---|--:|--:|--:|--:|--:|--:|")?;
        for (spec, runs) in self.specs.iter().zip(self.samples) {
            let wall = Stats::of(runs.iter().map(|s| s.wall.as_secs_f64()));
            let cpu = Stats::of(runs.iter().map(|s| s.cpu.as_secs_f64()));
            let peak = Stats::of(runs.iter().map(|s| s.peak_kib as f64));
            let call = if spec.reports_call() {
                secs(Stats::of(runs.iter().filter_map(|s| s.call).map(|d| d.as_secs_f64())).median)
            } else {
                "–".into()
            };
            writeln!(
                out,
                "| `{}` | {} | {} – {} | {} | {call} | {} | {} |",
                spec.label(),
                secs(wall.median),
                secs(wall.min),
                secs(wall.max),
                secs(cpu.median),
                kib(peak.median as u64),
                kib(peak.max as u64),
            )?;
        }
        Ok(())
    }

    /// Median and range of `f(a_run, b_run)` over the rounds.
    fn paired(
        &self,
        a: Option<usize>,
        b: Option<usize>,
        f: impl Fn(&Sample, &Sample) -> f64,
    ) -> Option<Stats> {
        let (a, b) = (a?, b?);
        Some(Stats::of(
            self.samples[a]
                .iter()
                .zip(&self.samples[b])
                .map(|(x, y)| f(x, y)),
        ))
    }

    fn ratios(&self, out: &mut String) -> Result<()> {
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let timed_netport = self.specs.iter().any(|s| s.kind == Kind::Netport);
        if !timed_netport {
            writeln!(
                out,
                "- netport was not timed (--python-only): no ratios against it"
            )?;
        }
        let files: &[(&str, f64)] = if timed_netport {
            &[(BIG, BIG_TARGET), (MANY, MANY_TARGET)]
        } else {
            &[]
        };
        for &(file, target) in files {
            let netport = self.index(Kind::Netport, Some(file));
            let load = self.index(Kind::Load, Some(file));
            let mmap = self.index(Kind::LoadMmap, Some(file));
            let ratio = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
            let whole = self.paired(load, netport, |x, y| ratio(x, y));
            writeln!(
                out,
                "- `{file}`: torch.load(weights_only=True) / netport inspect: {} \
                 (target ≥ {target:.0}×: {})",
                times(whole),
                verdict(whole.is_some_and(|s| s.median >= target)),
            )?;
            let whole_mmap = self.paired(mmap, netport, |x, y| ratio(x, y));
            writeln!(
                out,
                "- `{file}`: torch.load(weights_only=True, mmap=True) / netport inspect: {}",
                times(whole_mmap)
            )?;
            // The cost of torch.load itself: the call as timed inside the
            // Python process, against netport's whole process.
            for (name, idx) in [("torch.load", load), ("torch.load(mmap=True)", mmap)] {
                let alone = self.paired(idx, netport, |x, y| {
                    x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
                });
                writeln!(
                    out,
                    "- `{file}`: the {name} call alone (timed inside Python, no start-up or \
                     import) / netport inspect (whole process): {}",
                    times(alone)
                )?;
            }
        }
        // Peak memory: big.pt has 8x the tensor bytes of mid.pt, the same
        // tensor count and names.
        let peak = |x: &Sample, y: &Sample| x.peak_kib as f64 / y.peak_kib.max(1) as f64;
        if let Some(flat) = self.paired(
            self.index(Kind::Netport, Some(BIG)),
            self.index(Kind::Netport, Some(MID)),
            |x, y| peak(x, y),
        ) {
            writeln!(
                out,
                "- peak RSS, netport inspect `{BIG}` / `{MID}` (8× the tensor bytes): {} \
                 (target: independent of tensor bytes, within {:.0}%: {})",
                factor(flat),
                (FLAT_TOLERANCE - 1.0) * 100.0,
                verdict(flat.median <= FLAT_TOLERANCE),
            )?;
        }
        for (kind, name) in [
            (Kind::Load, "torch.load"),
            (Kind::LoadMmap, "torch.load(mmap=True)"),
        ] {
            let grows = self.paired(
                self.index(kind, Some(BIG)),
                self.index(kind, Some(MID)),
                |x, y| peak(x, y),
            );
            if let Some(grows) = grows {
                writeln!(
                    out,
                    "- peak RSS, {name} `{BIG}` / `{MID}`, for comparison: {}",
                    factor(grows)
                )?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

impl Stats {
    /// Min, median (the mean of the middle two for an even count) and max;
    /// all NaN for no values.
    fn of(values: impl Iterator<Item = f64>) -> Stats {
        let mut v: Vec<f64> = values.collect();
        if v.is_empty() {
            return Stats {
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn times(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "**{}×** ({}× – {}×)",
            ratio(s.median),
            ratio(s.min),
            ratio(s.max)
        ),
        None => "n/a".into(),
    }
}

fn factor(s: Stats) -> String {
    format!("**{:.2}** ({:.2} – {:.2})", s.median, s.min, s.max)
}

fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn seconds(d: Duration) -> String {
    secs(d.as_secs_f64())
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn kib(k: u64) -> String {
    let mib = k as f64 / 1024.0;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

fn bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB ({b} bytes)", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB ({b} bytes)")
    }
}

/// `text` with the part between the figures markers replaced by `figures`.
fn replace_section(text: &str, figures: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (text.find(DOCS_BEGIN), text.find(DOCS_END)) else {
        bail!("{DOCS} has lost its figures markers `{DOCS_BEGIN}` and `{DOCS_END}`");
    };
    if end < begin {
        bail!("{DOCS}: the figures end marker comes before the begin marker");
    }
    let head = &text[..begin + DOCS_BEGIN.len()];
    let tail = &text[end..];
    Ok(format!("{head}\n\n{}\n\n{tail}", figures.trim()))
}

// --- machine and versions --------------------------------------------------------

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let ram = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|k| format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!("{model}, {cores} processors (nproc), {ram} RAM, {kernel}")
}

fn versions(root: &Path, ctx: &Ctx) -> Result<String> {
    let mut parts = Vec::new();
    if let Some(bin) = &ctx.netport {
        let version = util::output(Command::new(bin).arg("--version"), "netport --version")?;
        let commit = Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let dirty = Command::new("git")
            .current_dir(root)
            .args([
                "status",
                "--porcelain",
                "--untracked-files=normal",
                "crates",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| !o.stdout.is_empty());
        parts.push(match commit {
            Some(c) => format!(
                "{version} (release build, commit {c}{})",
                if dirty {
                    " + uncommitted changes in crates/"
                } else {
                    ""
                }
            ),
            None => format!("{version} (release build)"),
        });
    }
    if let Ok(out) = Command::new("rustc").arg("-V").output()
        && out.status.success()
    {
        parts.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    parts.push(util::output(
        util::python_env(&mut Command::new(&ctx.python)).args(["-c", VERSIONS_CODE]),
        "asking the venv for its Python and torch versions",
    )?);
    Ok(parts.join(", "))
}

/// Today's date in UTC, `YYYY-MM-DD`, from the system clock.
fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Stats::of([3.0, 1.0, 2.0].into_iter());
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Stats::of([4.0, 1.0, 3.0, 2.0].into_iter());
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert!(Stats::of(std::iter::empty()).median.is_nan());
    }

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_453), (2025, 12, 31));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn figures_section_is_replaced_between_markers() {
        let doc = format!("# P\n\nintro\n\n{DOCS_BEGIN}\n\nold\n\n{DOCS_END}\n\nafter\n");
        let new = replace_section(&doc, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("# P\n\nintro\n\n{DOCS_BEGIN}\n\nnew table\n\n{DOCS_END}\n\nafter\n")
        );
        assert_eq!(replace_section(&new, "new table").unwrap(), new);
        assert!(replace_section("no markers", "x").is_err());
    }
}
