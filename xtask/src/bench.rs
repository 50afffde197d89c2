//! `cargo xtask bench`: how long netport takes on large PyTorch checkpoints,
//! and how much memory, against the Python way of doing the same in the same
//! run. A benchmark, never a test: nothing here passes or fails on a timing,
//! and no test runs it. Two parts (`--only inspect|rewrite` runs one):
//!
//! - inspect: `netport inspect --json` against `torch.load` on a 256 MiB, a
//!   2 GiB and a 50,000-tensor checkpoint;
//! - rewrite: `netport map-location --to cpu` and `netport convert` (to
//!   safetensors) on a 2 GiB checkpoint whose storages are tagged `cuda:0`,
//!   against `cp` (the floor: the same bytes copied) and the Python peers
//!   `torch.save(torch.load(f, map_location='cpu'), OUT)` and
//!   `safetensors.torch.save_file(torch.load(f, map_location='cpu'), OUT)`.
//!
//! How:
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
//!   round by round (two commands of the same round), then the median, so a
//!   machine whose speed drifts during the run still gives a fair ratio. Every
//!   run is warm-cache: the files were just written or read.
//! - The rewrite commands write into `<cache>/bench-<hash>/out-<pid>/` (the
//!   same file system as their input, never the repo); each output is deleted
//!   after its run and the folder at the end. No command fsyncs its output
//!   (netport renames a complete temporary file into place, like cp and
//!   torch.save it leaves write-back to the kernel); a `cp && sync OUT` row
//!   shows what forcing the bytes to disk would cost.
//! - Nothing is written into the repo unless `--write-docs` is given; then the
//!   figures section of each part that ran (between its two markers in
//!   `docs/performance.md`) is replaced, and the other part's is kept.

use crate::util::{self, Timer};
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

/// The figures section of each part in `docs/performance.md`: everything
/// between its two markers.
struct Section {
    begin: &'static str,
    end: &'static str,
}

const INSPECT_SECTION: Section = Section {
    begin: "<!-- bench figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench figures: end -->",
};
const REWRITE_SECTION: Section = Section {
    begin: "<!-- bench rewrite figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench rewrite figures: end -->",
};

/// One part of the benchmark (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// `netport inspect --json` against torch.load.
    Inspect,
    /// `netport map-location` and `netport convert` against cp and the Python peers.
    Rewrite,
}

impl Part {
    fn section(self) -> &'static Section {
        match self {
            Part::Inspect => &INSPECT_SECTION,
            Part::Rewrite => &REWRITE_SECTION,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Part::Inspect => "inspect",
            Part::Rewrite => "rewrite",
        }
    }
}

/// The checkpoints, as written by the script, with what they hold.
const BIG: &str = "big.pt";
const MID: &str = "mid.pt";
const MANY: &str = "many.pt";
const BIG_CUDA: &str = "big_cuda.pt";
/// The files the inspect part reads.
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
const BIG_CUDA_WHAT: &str = "big.pt's state_dict (256 float32 tensors [2048, 1024], 2 GiB of \
    tensor bytes) saved with every storage tagged `cuda:0` (torch.serialization.location_tag \
    patched, on a CPU machine)";

/// The targets of the issue: how many times faster than
/// `torch.load(weights_only=True)` netport must be on each file.
const BIG_TARGET: f64 = 100.0;
const MANY_TARGET: f64 = 10.0;
/// Peak memory counts as independent of tensor bytes when netport's peak on
/// big.pt (8x the tensor bytes of mid.pt) is within this factor of mid.pt's.
const FLAT_TOLERANCE: f64 = 1.10;
/// Rewrite targets: netport's wall time at most this many times cp's ...
const MAP_LOCATION_VS_CP: f64 = 1.2;
const CONVERT_VS_CP: f64 = 1.5;
/// ... at least this many times faster than the Python peer ...
const MAP_LOCATION_VS_PYTHON: f64 = 3.0;
/// ... and a peak resident set under this (MiB).
const REWRITE_PEAK_MIB: f64 = 100.0;

/// The torch.load commands also print how long the `torch.load` call itself
/// took (perf_counter around it, inside the process): what the load costs
/// without the interpreter start and `import torch`.
const LOAD_CODE: &str = "import sys, time, torch; t = time.perf_counter(); \
    torch.load(sys.argv[1], weights_only=True); print(time.perf_counter() - t)";
const LOAD_MMAP_CODE: &str = "import sys, time, torch; t = time.perf_counter(); \
    torch.load(sys.argv[1], weights_only=True, mmap=True); print(time.perf_counter() - t)";
const IMPORT_CODE: &str = "import torch";
/// The Python peers of the rewrite commands print the seconds of the load and
/// the save together, likewise.
const RESAVE_TORCH_CODE: &str = "import sys, time, torch; t = time.perf_counter(); \
    torch.save(torch.load(sys.argv[1], map_location='cpu'), sys.argv[2]); \
    print(time.perf_counter() - t)";
const RESAVE_SAFETENSORS_CODE: &str = "import sys, time, torch; \
    from safetensors.torch import save_file; t = time.perf_counter(); \
    save_file(torch.load(sys.argv[1], map_location='cpu'), sys.argv[2]); \
    print(time.perf_counter() - t)";
/// `cp IN OUT`, then fsync OUT (coreutils `sync FILE` fsyncs that file).
const CP_SYNC_SCRIPT: &str = "cp \"$1\" \"$2\" && sync \"$2\"";
const VERSIONS_CODE: &str = "import sys, torch, safetensors; print('Python', \
    sys.version.split()[0] + ', torch', torch.__version__ + ', safetensors', \
    safetensors.__version__)";

pub struct Options {
    pub runs: usize,
    pub warmup: usize,
    pub write_docs: bool,
    pub python_only: bool,
    /// Run one part only; both when `None`.
    pub only: Option<Part>,
}

impl Options {
    fn parts(&self) -> Vec<Part> {
        [Part::Inspect, Part::Rewrite]
            .into_iter()
            .filter(|&p| self.only.is_none_or(|o| o == p))
            .collect()
    }

    /// The command line, as the docs quote it.
    fn command_line(&self) -> String {
        let mut line = String::from("cargo xtask bench");
        if let Some(part) = self.only {
            write!(line, " --only {}", part.name()).expect("writing to a String");
        }
        if self.write_docs {
            line.push_str(" --write-docs");
        }
        line
    }
}

/// `cargo xtask bench [--runs N] [--warmup N] [--only PART] [--write-docs] [--python-only]`.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    if opts.write_docs && opts.python_only {
        bail!("--write-docs needs the netport figures; it cannot be combined with --python-only");
    }
    let parts = opts.parts();
    if opts.write_docs {
        // Fail now, not after minutes of timing, if the markers are gone.
        let text =
            fs::read_to_string(root.join(DOCS)).with_context(|| format!("reading {DOCS}"))?;
        for &part in &parts {
            replace_section(&text, part.section(), "")?;
        }
    }
    let (dir, venv) = ensure_checkpoints(root)?;
    let out_dir = OutDir::create(dir.join(format!("out-{}", std::process::id())))?;
    let netport = if opts.python_only {
        eprintln!("--python-only: netport is not built or timed");
        None
    } else {
        let bin = build_netport(root)?;
        if parts.contains(&Part::Inspect) {
            probe_netport(&bin, &dir)?;
        }
        Some(bin)
    };
    let ctx = Ctx {
        python: venv.python(),
        netport,
        dir: dir.clone(),
        out_dir: out_dir.0.clone(),
    };
    let plan = if parts.contains(&Part::Rewrite) {
        let plan = probe_rewrite(&ctx)?;
        if opts.write_docs && !plan.skipped.is_empty() {
            bail!(
                "--write-docs needs every rewrite figure, but {}",
                plan.skipped.join("; ")
            );
        }
        Some(plan)
    } else {
        None
    };
    let specs = specs(&parts, ctx.netport.is_some(), plan.as_ref());
    let versions = versions(root, &ctx)?;
    let (samples, floor_kib) = measure(&ctx, &specs, opts)?;
    drop(out_dir);
    let report = Report {
        specs: &specs,
        samples: &samples,
    };

    let machine = machine();
    let date = utc_date();
    let mut sections = Vec::new();
    for &part in &parts {
        let mut out = String::new();
        writeln!(
            out,
            "Measured by `{}` ({} counted runs of each command after {} warm-up round{}) on \
             {date} (UTC).\n",
            opts.command_line(),
            opts.runs,
            opts.warmup,
            if opts.warmup == 1 { "" } else { "s" },
        )?;
        writeln!(out, "- machine: {machine}")?;
        writeln!(out, "- versions: {versions}")?;
        writeln!(
            out,
            "- peak RSS floor: {}. Linux carries the address space a child starts in (the \
             benchmark's own) into the child's `ru_maxrss`, so no peak RSS below reads lower \
             than the benchmark's own resident set at the spawn: `true` reads {} here. A \
             figure at that value means \"at most this\".",
            kib(floor_kib),
            kib(floor_kib),
        )?;
        match part {
            Part::Inspect => report.inspect(&mut out, &dir)?,
            Part::Rewrite => report.rewrite(
                &mut out,
                &dir,
                plan.as_ref().expect("planned when the rewrite part runs"),
            )?,
        }
        println!("\n{out}");
        sections.push((part, out));
    }

    if opts.write_docs {
        let path = root.join(DOCS);
        let mut text = fs::read_to_string(&path).with_context(|| format!("reading {DOCS}"))?;
        for (part, out) in &sections {
            text = replace_section(&text, part.section(), out)?;
        }
        fs::write(&path, text).with_context(|| format!("writing {DOCS}"))?;
        let names: Vec<&str> = parts.iter().map(|p| p.name()).collect();
        eprintln!(
            "rewrote the {} figures section{} of {DOCS}",
            names.join(" and "),
            if names.len() == 1 { "" } else { "s" }
        );
    } else {
        eprintln!("(nothing written; --write-docs puts these figures into {DOCS})");
    }
    Ok(())
}

// --- the checkpoints -------------------------------------------------------------

/// The checkpoint folder for the current testdata/bench/ and venv.
fn checkpoint_dir(root: &Path) -> Result<PathBuf> {
    util::scripts_cache_dir(root, "netport bench v1", BENCH_DIR, "bench")
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
    let timer = Timer::start("writing the bench checkpoints (~4.3 GiB)");
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
        use std::io::Read;
        let path = dir.join(name);
        let mut child = Command::new(bin)
            .args(["inspect"])
            .arg(&path)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // The JSON of many.pt is tens of MiB: only its start is kept. Holding
        // it all would raise this process's peak RSS, which every child
        // spawned afterwards inherits as the floor of its ru_maxrss.
        let mut head = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let mut stdout = child.stdout.take().expect("stdout is piped");
        loop {
            let n = stdout
                .read(&mut chunk)
                .context("reading netport's output")?;
            if n == 0 {
                break;
            }
            if head.len() < 64 {
                head.extend_from_slice(&chunk[..n.min(64)]);
            }
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr)
                .context("reading netport's errors")?;
        }
        let status = child.wait().context("waiting for netport inspect")?;
        if !status.success() {
            bail!(
                "netport cannot inspect the bench checkpoints yet: `netport inspect {} --json` \
                 {status}: {}\n(`cargo xtask bench --python-only` times the Python side alone)",
                path.display(),
                stderr.trim()
            );
        }
        if !head.trim_ascii_start().starts_with(b"{") {
            bail!(
                "`netport inspect {} --json` succeeded but did not print a JSON object",
                path.display()
            );
        }
    }
    eprintln!("netport inspects all {} bench checkpoints", FILES.len());
    Ok(())
}

// --- the rewrite outputs -----------------------------------------------------------

/// The folder the rewrite commands write into; removed, with whatever is left
/// in it, when dropped (also when the run fails).
struct OutDir(PathBuf);

impl OutDir {
    fn create(path: PathBuf) -> Result<OutDir> {
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(OutDir(path))
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.0)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: could not remove {}: {err}", self.0.display());
        }
    }
}

/// Removes `path` if it is there.
fn remove_output(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// What the rewrite part times, as found by running each netport command once.
struct RewritePlan {
    /// The file `netport convert` and its Python peer read: big_cuda.pt, or
    /// big.pt when convert refuses the cuda-tagged file.
    convert_input: &'static str,
    /// Why convert reads big.pt, when it does.
    convert_note: Option<String>,
    /// netport commands that could not run, with the reason; not timed.
    skipped: Vec<String>,
    map_location: bool,
    convert: bool,
}

/// Runs `netport map-location` and `netport convert` once each and checks
/// their output, so that a netport that cannot do the job fails here with its
/// own message, not as a timing. A command that fails is left out of the
/// timings (and `--write-docs` refuses); convert falls back to big.pt when it
/// refuses big_cuda.pt.
fn probe_rewrite(ctx: &Ctx) -> Result<RewritePlan> {
    let mut plan = RewritePlan {
        convert_input: BIG_CUDA,
        convert_note: None,
        skipped: Vec::new(),
        map_location: false,
        convert: false,
    };
    let Some(bin) = &ctx.netport else {
        return Ok(plan);
    };
    let inspect = |path: &Path| -> Result<String> {
        let out = Command::new(bin)
            .arg("inspect")
            .arg(path)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "`netport inspect {} --json` {}: {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The same string the fixture script checks for in data.pkl; in the
    // JSON, a device name.
    let input = ctx.dir.join(BIG_CUDA);
    if !inspect(&input)?.contains("\"cuda:0\"") {
        bail!(
            "netport inspect does not see device cuda:0 in {}",
            input.display()
        );
    }

    let map = Spec {
        kind: Kind::MapLocation,
        file: Some(BIG_CUDA),
    };
    match probe_once(ctx, &map) {
        Ok(out) => {
            let json = inspect(&out);
            remove_output(&out)?;
            let json = json?;
            if json.contains("\"cuda:0\"") || !json.contains("\"cpu\"") {
                bail!(
                    "`{}` succeeded, but netport inspect still sees cuda:0 (or no cpu) in its \
                     output",
                    map.label()
                );
            }
            plan.map_location = true;
        }
        Err(err) => plan
            .skipped
            .push(format!("`{}` failed: {err:#}", map.label())),
    }

    let mut convert = Spec {
        kind: Kind::Convert,
        file: Some(BIG_CUDA),
    };
    let mut result = probe_once(ctx, &convert);
    if let Err(err) = &result {
        let refusal = format!("{err:#}");
        convert.file = Some(BIG);
        result = probe_once(ctx, &convert);
        if result.is_ok() {
            eprintln!("netport convert refused {BIG_CUDA}; converting {BIG} instead: {refusal}");
            plan.convert_input = BIG;
            plan.convert_note = Some(format!(
                "`netport convert` refused the cuda-tagged `{BIG_CUDA}` ({}), so the convert \
                 rows (netport and its Python peer) read the cpu-tagged `{BIG}` instead: the \
                 same tensors and tensor bytes",
                refusal.lines().last().unwrap_or("").trim()
            ));
        }
    }
    match result {
        Ok(out) => {
            let check = check_safetensors(&out);
            remove_output(&out)?;
            check.with_context(|| format!("checking the output of `{}`", convert.label()))?;
            plan.convert = true;
        }
        Err(err) => plan
            .skipped
            .push(format!("`{}` failed: {err:#}", convert.label())),
    }
    for skipped in &plan.skipped {
        eprintln!("not timed: {skipped}");
    }
    if plan.skipped.is_empty() {
        eprintln!("netport map-location and convert work on the bench checkpoint");
    }
    Ok(plan)
}

/// Runs a rewrite command once (stdout to /dev/null); returns its output path.
fn probe_once(ctx: &Ctx, spec: &Spec) -> Result<PathBuf> {
    let out = spec.output(ctx).expect("a rewrite command has an output");
    remove_output(&out)?;
    let result = spec
        .command(ctx)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting `{}`", spec.label()));
    let result = result.and_then(|o| {
        if !o.status.success() {
            bail!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        if !out.is_file() {
            bail!("it succeeded but wrote no {}", out.display());
        }
        Ok(())
    });
    if let Err(err) = result {
        remove_output(&out)?;
        return Err(err);
    }
    Ok(out)
}

/// A safetensors file holding the 256 tensors of big.pt: the header names
/// the last one, and the file holds at least the 2 GiB of tensor bytes.
fn check_safetensors(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 1 << 20 {
        bail!(
            "{}: a header of {len} bytes is not a safetensors header",
            path.display()
        );
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    let size = file.metadata()?.len();
    let tensor_bytes = 256 * 2048 * 1024 * 4;
    if !header.contains("\"layers.255.weight\"") || size < tensor_bytes {
        bail!(
            "{} ({size} bytes) does not look like big.pt's 256 tensors in safetensors",
            path.display()
        );
    }
    Ok(())
}

// --- what is timed -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    // inspect
    Import,
    Netport,
    Load,
    LoadMmap,
    // rewrite
    Cp,
    CpSync,
    MapLocation,
    ResaveTorch,
    Convert,
    ResaveSafetensors,
}

impl Kind {
    fn part(self) -> Part {
        match self {
            Kind::Import | Kind::Netport | Kind::Load | Kind::LoadMmap => Part::Inspect,
            Kind::Cp
            | Kind::CpSync
            | Kind::MapLocation
            | Kind::ResaveTorch
            | Kind::Convert
            | Kind::ResaveSafetensors => Part::Rewrite,
        }
    }

    /// Whether the private memory of the process is sampled: the rewrite
    /// commands that run as one process (not `sh -c 'cp … && sync …'`).
    fn samples_private(self) -> bool {
        self.part() == Part::Rewrite && self != Kind::CpSync
    }

    /// The file a rewrite command writes, in the output folder.
    fn output(self) -> Option<&'static str> {
        match self {
            Kind::Import | Kind::Netport | Kind::Load | Kind::LoadMmap => None,
            Kind::Cp | Kind::CpSync => Some("cp.pt"),
            Kind::MapLocation => Some("map-location.pt"),
            Kind::ResaveTorch => Some("torch-save.pt"),
            Kind::Convert => Some("convert.safetensors"),
            Kind::ResaveSafetensors => Some("save-file.safetensors"),
        }
    }
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
    /// Where the rewrite commands write.
    out_dir: PathBuf,
}

/// Every command, in the order of a round and of the tables.
fn specs(parts: &[Part], with_netport: bool, plan: Option<&RewritePlan>) -> Vec<Spec> {
    let mut specs = Vec::new();
    if parts.contains(&Part::Inspect) {
        specs.push(Spec {
            kind: Kind::Import,
            file: None,
        });
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
    }
    if let Some(plan) = plan.filter(|_| parts.contains(&Part::Rewrite)) {
        let mut push = |kind, file| {
            specs.push(Spec {
                kind,
                file: Some(file),
            })
        };
        push(Kind::Cp, BIG_CUDA);
        push(Kind::CpSync, BIG_CUDA);
        if plan.map_location {
            push(Kind::MapLocation, BIG_CUDA);
        }
        push(Kind::ResaveTorch, BIG_CUDA);
        if plan.convert {
            push(Kind::Convert, plan.convert_input);
        }
        push(Kind::ResaveSafetensors, plan.convert_input);
    }
    specs
}

impl Spec {
    /// Whether the command prints the duration of its torch.load call (the
    /// rewrite peers: of the load and the save together).
    fn reports_call(&self) -> bool {
        matches!(
            self.kind,
            Kind::Load | Kind::LoadMmap | Kind::ResaveTorch | Kind::ResaveSafetensors
        )
    }

    fn output(&self, ctx: &Ctx) -> Option<PathBuf> {
        self.kind.output().map(|name| ctx.out_dir.join(name))
    }

    /// The command as a reader would type it.
    fn label(&self) -> String {
        let file = self.file.unwrap_or("");
        let out = self.kind.output().unwrap_or("");
        match self.kind {
            Kind::Import => format!("python -c \"{IMPORT_CODE}\""),
            Kind::Netport => format!("netport inspect {file} --json > /dev/null"),
            Kind::Load => format!("python -c \"torch.load('{file}', weights_only=True)\""),
            Kind::LoadMmap => {
                format!("python -c \"torch.load('{file}', weights_only=True, mmap=True)\"")
            }
            Kind::Cp => format!("cp {file} {out}"),
            Kind::CpSync => format!("cp {file} {out} && sync {out}"),
            Kind::MapLocation => {
                format!("netport map-location {file} -o {out} --to cpu > /dev/null")
            }
            Kind::ResaveTorch => format!(
                "python -c \"torch.save(torch.load('{file}', map_location='cpu'), '{out}')\""
            ),
            Kind::Convert => format!("netport convert {file} {out} > /dev/null"),
            Kind::ResaveSafetensors => format!(
                "python -c \"save_file(torch.load('{file}', map_location='cpu'), '{out}')\""
            ),
        }
    }

    fn command(&self, ctx: &Ctx) -> Command {
        let input = self.file.map(|f| ctx.dir.join(f));
        let output = self.output(ctx);
        let python = |code: &str| {
            let mut cmd = Command::new(&ctx.python);
            util::python_env(&mut cmd).args(["-c", code]);
            cmd.args(&input).args(&output);
            cmd
        };
        let netport = || {
            let bin = ctx
                .netport
                .as_ref()
                .expect("netport specs only with a binary");
            Command::new(bin)
        };
        let input = input.as_deref().unwrap_or(Path::new(""));
        let output = output.as_deref().unwrap_or(Path::new(""));
        match self.kind {
            Kind::Import => python(IMPORT_CODE),
            Kind::Load => python(LOAD_CODE),
            Kind::LoadMmap => python(LOAD_MMAP_CODE),
            Kind::ResaveTorch => python(RESAVE_TORCH_CODE),
            Kind::ResaveSafetensors => python(RESAVE_SAFETENSORS_CODE),
            Kind::Netport => {
                let mut cmd = netport();
                cmd.arg("inspect").arg(input).arg("--json");
                cmd
            }
            Kind::MapLocation => {
                let mut cmd = netport();
                cmd.arg("map-location")
                    .arg(input)
                    .arg("-o")
                    .arg(output)
                    .args(["--to", "cpu"]);
                cmd
            }
            Kind::Convert => {
                let mut cmd = netport();
                cmd.arg("convert").arg(input).arg(output);
                cmd
            }
            Kind::Cp => {
                let mut cmd = Command::new("cp");
                cmd.arg(input).arg(output);
                cmd
            }
            Kind::CpSync => {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", CP_SYNC_SCRIPT, "sh"])
                    .arg(input)
                    .arg(output);
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
    /// The sampled peak of private memory (rewrite commands, Linux).
    private_kib: Option<u64>,
    /// The torch.load call alone (for the rewrite peers: the load and the
    /// save), as the Python process reported it.
    call: Option<Duration>,
}

/// Runs every command once per round, `warmup` rounds uncounted, then `runs`
/// rounds; returns `samples[spec][round]`. A rewrite command's output is
/// removed before its run and deleted after it (its absence after a run that
/// succeeded is an error).
fn measure(ctx: &Ctx, specs: &[Spec], opts: &Options) -> Result<(Vec<Vec<Sample>>, u64)> {
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
        let floor = run_once(Command::new("true"), false, false, &stderr_path)
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
            }
            let sample = run_once(
                spec.command(ctx),
                spec.reports_call(),
                spec.kind.samples_private(),
                &stderr_path,
            )
            .with_context(|| format!("timing `{}`", spec.label()))?;
            if let Some(out) = &output {
                if !out.is_file() {
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
/// memory. A command that fails is an error carrying its stderr.
fn run_once(
    mut cmd: Command,
    reports_call: bool,
    sample_private: bool,
    stderr_path: &Path,
) -> Result<Sample> {
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
        private_kib,
        call,
    })
}

/// The peak of a child's private memory (`RssAnon` in `/proc/PID/status`:
/// heap, stacks, anonymous maps; not the file pages it maps, which
/// `ru_maxrss` counts), sampled from a thread while the main thread waits.
#[cfg(target_os = "linux")]
mod private {
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
mod private {
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
mod rusage {
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

    pub fn reset_peak() {}

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

    /// The table of one part's commands; `call` heads the column of the
    /// seconds the Python commands report.
    fn table(&self, out: &mut String, part: Part, call: &str) -> Result<()> {
        // The rewrite table also has the sampled peak of private memory.
        let private = part == Part::Rewrite;
        writeln!(
            out,
            "| command | wall median | wall min – max | cpu median | {call} median | \
             peak RSS median | peak RSS max |{}",
            if private { " private peak max |" } else { "" }
        )?;
        writeln!(
            out,
            "|---|--:|--:|--:|--:|--:|--:|{}",
            if private { "--:|" } else { "" }
        )?;
        for (spec, runs) in self.specs.iter().zip(self.samples) {
            if spec.kind.part() != part {
                continue;
            }
            let wall = Stats::of(runs.iter().map(|s| s.wall.as_secs_f64()));
            let cpu = Stats::of(runs.iter().map(|s| s.cpu.as_secs_f64()));
            let peak = Stats::of(runs.iter().map(|s| s.peak_kib as f64));
            let call = if spec.reports_call() {
                secs(Stats::of(runs.iter().filter_map(|s| s.call).map(|d| d.as_secs_f64())).median)
            } else {
                "–".into()
            };
            let private_peak = runs.iter().filter_map(|s| s.private_kib).max();
            let private_cell = match (private, private_peak) {
                (false, _) => String::new(),
                (true, Some(k)) => format!(" {} |", kib(k)),
                (true, None) => " – |".into(),
            };
            writeln!(
                out,
                "| `{}` | {} | {} – {} | {} | {call} | {} | {} |{private_cell}",
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

    /// The inspect part: files, table, ratios against torch.load.
    fn inspect(&self, out: &mut String, dir: &Path) -> Result<()> {
        writeln!(
            out,
            "- cache: warm. Every file was just written or read by the warm-up round, so it is \
             in the page cache; nothing is dropped between runs (that needs root). A first read \
             from disk is slower for every command, most for those that read every tensor byte."
        )?;
        writeln!(out, "- files (written by torch.save, default zip format):")?;
        for (name, what) in FILES {
            writeln!(out, "  - `{name}`: {what}; {}", on_disk(dir, name)?)?;
        }
        writeln!(out)?;
        self.table(out, Part::Inspect, "torch.load call")?;
        writeln!(out)?;
        self.inspect_ratios(out)?;
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is the process's largest resident set (`ru_maxrss` from `wait4`), file pages it \
             mapped and touched included. `torch.load call` is the call alone, timed inside the \
             Python process (`time.perf_counter()` around it): no interpreter start-up, no \
             `import torch`. Ratios are taken run by run within a round, then the median."
        )?;
        Ok(())
    }

    fn inspect_ratios(&self, out: &mut String) -> Result<()> {
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

    /// The rewrite part: files, table, ratios against cp and the Python peers.
    fn rewrite(&self, out: &mut String, dir: &Path, plan: &RewritePlan) -> Result<()> {
        writeln!(
            out,
            "- cache: warm. The input was just written or read by the warm-up round, so it is in \
             the page cache; nothing is dropped between runs (that needs root)."
        )?;
        writeln!(
            out,
            "- outputs: each command writes a new file on the input's file system (in \
             `<cache>/bench-<hash>/out-<pid>/`), deleted right after its run. `cp`, `torch.save` \
             and `save_file` return once the bytes are in the page cache, not on disk, and so do \
             netport's writers (a complete temporary file renamed into place, not fsynced): `cp` \
             is the like-for-like floor. `cp … && sync OUT` (coreutils `sync FILE` fsyncs that \
             one file) shows what forcing the bytes to disk costs."
        )?;
        writeln!(out, "- files (written by torch.save, default zip format):")?;
        writeln!(
            out,
            "  - `{BIG_CUDA}`: {BIG_CUDA_WHAT}; {}",
            on_disk(dir, BIG_CUDA)?
        )?;
        if plan.convert_input != BIG_CUDA {
            let (_, what) = FILES
                .iter()
                .find(|(name, _)| *name == plan.convert_input)
                .expect("the convert input is a bench file");
            writeln!(
                out,
                "  - `{}`: {what}; {}",
                plan.convert_input,
                on_disk(dir, plan.convert_input)?
            )?;
        }
        if let Some(note) = &plan.convert_note {
            writeln!(
                out,
                "- convert input: {note}. The `cp` rows copy `{BIG_CUDA}`."
            )?;
        }
        for skipped in &plan.skipped {
            writeln!(out, "- not timed: {skipped}")?;
        }
        writeln!(out)?;
        self.table(out, Part::Rewrite, "load + save call")?;
        writeln!(out)?;
        self.rewrite_ratios(out, plan)?;
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is the process's largest resident set (`ru_maxrss` from `wait4`; for `cp && \
             sync`, the larger of the shell's and its children's), file pages it mapped and \
             touched included: those of a memory-mapped input are the page cache's, shared and \
             reclaimable, yet counted in full. `private peak` is the largest `RssAnon` (heap, \
             stacks, anonymous maps) seen in `/proc/PID/status`, read every {} ms while the \
             process runs (a shorter peak can be missed; not taken for the shell of `cp && \
             sync`). `load + save call` is `torch.load` and the save together, timed \
             inside the Python process (`time.perf_counter()` around them): no interpreter \
             start-up, no imports. Ratios are taken run by run within a round, then the median.",
            private::INTERVAL.as_millis()
        )?;
        Ok(())
    }

    fn rewrite_ratios(&self, out: &mut String, plan: &RewritePlan) -> Result<()> {
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let wall = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
        let cp = self.index(Kind::Cp, Some(BIG_CUDA));
        let cp_sync = self.index(Kind::CpSync, Some(BIG_CUDA));
        let rows = [
            (
                Kind::MapLocation,
                "netport map-location",
                BIG_CUDA,
                MAP_LOCATION_VS_CP,
                Kind::ResaveTorch,
                "torch.save(torch.load(map_location='cpu'))",
                Some(MAP_LOCATION_VS_PYTHON),
            ),
            (
                Kind::Convert,
                "netport convert",
                plan.convert_input,
                CONVERT_VS_CP,
                Kind::ResaveSafetensors,
                "save_file(torch.load(map_location='cpu'))",
                None,
            ),
        ];
        for (kind, name, input, cp_target, peer_kind, peer_name, peer_target) in rows {
            let netport = self.index(kind, Some(input));
            let peer = self.index(peer_kind, Some(input));
            let peer_cp = self.paired(peer, cp, wall);
            let Some(me) = netport else {
                writeln!(out, "- `{name}` was not timed: no ratios against it")?;
                writeln!(out, "- {peer_name} / cp: {}", times(peer_cp))?;
                continue;
            };
            let vs_cp = self.paired(netport, cp, wall);
            writeln!(
                out,
                "- `{input}`: {name} / cp: {} (target ≤ {cp_target}×: {})",
                times(vs_cp),
                verdict(vs_cp.is_some_and(|s| s.median <= cp_target)),
            )?;
            let vs_cp_sync = self.paired(netport, cp_sync, wall);
            writeln!(
                out,
                "- `{input}`: {name} / (cp && sync), for comparison (only the latter fsyncs): {}",
                times(vs_cp_sync),
            )?;
            let vs_peer = self.paired(peer, netport, wall);
            match peer_target {
                Some(target) => writeln!(
                    out,
                    "- `{input}`: {peer_name} / {name}: {} (target ≥ {target:.0}×: {})",
                    times(vs_peer),
                    verdict(vs_peer.is_some_and(|s| s.median >= target)),
                )?,
                None => writeln!(out, "- `{input}`: {peer_name} / {name}: {}", times(vs_peer))?,
            }
            let alone = self.paired(peer, netport, |x, y| {
                x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
            });
            writeln!(
                out,
                "- `{input}`: the load + save alone (timed inside Python, no start-up or \
                 imports) / {name} (whole process): {}",
                times(alone)
            )?;
            writeln!(
                out,
                "- `{input}`: {peer_name} / cp, for comparison: {}",
                times(peer_cp)
            )?;
            let peak = Stats::of(self.samples[me].iter().map(|s| s.peak_kib as f64));
            writeln!(
                out,
                "- peak RSS (`ru_maxrss`, the input's mapped file pages included), {name}: \
                 **{}** (max {}) (target < {REWRITE_PEAK_MIB:.0} MiB: {})",
                kib(peak.median as u64),
                kib(peak.max as u64),
                verdict(peak.max < REWRITE_PEAK_MIB * 1024.0),
            )?;
            if let Some(private) = self.samples[me].iter().filter_map(|s| s.private_kib).max() {
                writeln!(
                    out,
                    "- private memory peak (`RssAnon`, sampled every {} ms; the file pages are \
                     not counted), {name}: **{}** (target < {REWRITE_PEAK_MIB:.0} MiB: {})",
                    private::INTERVAL.as_millis(),
                    kib(private),
                    verdict((private as f64) < REWRITE_PEAK_MIB * 1024.0),
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

/// The size of a bench file, for the files list.
fn on_disk(dir: &Path, name: &str) -> Result<String> {
    let size = fs::metadata(dir.join(name))
        .with_context(|| format!("reading the size of {name}"))?
        .len();
    Ok(format!("{} on disk", bytes(size)))
}

/// `text` with the part between the section's markers replaced by `figures`.
fn replace_section(text: &str, section: &Section, figures: &str) -> Result<String> {
    let Section { begin: b, end: e } = section;
    let (Some(begin), Some(end)) = (text.find(b), text.find(e)) else {
        bail!("{DOCS} has lost its figures markers `{b}` and `{e}`");
    };
    if end < begin {
        bail!("{DOCS}: the figures end marker `{e}` comes before its begin marker");
    }
    let head = &text[..begin + b.len()];
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
        let (b, e) = (INSPECT_SECTION.begin, INSPECT_SECTION.end);
        let (rb, re) = (REWRITE_SECTION.begin, REWRITE_SECTION.end);
        let doc = format!("# P\n\nintro\n\n{b}\n\nold\n\n{e}\n\n{rb}\n\nold 2\n\n{re}\n");
        let new = replace_section(&doc, &INSPECT_SECTION, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("# P\n\nintro\n\n{b}\n\nnew table\n\n{e}\n\n{rb}\n\nold 2\n\n{re}\n")
        );
        assert_eq!(
            replace_section(&new, &INSPECT_SECTION, "new table").unwrap(),
            new
        );
        let both = replace_section(&new, &REWRITE_SECTION, "new 2").unwrap();
        assert_eq!(
            both,
            format!("# P\n\nintro\n\n{b}\n\nnew table\n\n{e}\n\n{rb}\n\nnew 2\n\n{re}\n")
        );
        assert!(replace_section("no markers", &INSPECT_SECTION, "x").is_err());
        assert!(replace_section(&format!("{b}\n{e}\n"), &REWRITE_SECTION, "x").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rss_anon_from_status() {
        let status =
            b"Name:\tnetport\nVmRSS:\t 2101384 kB\nRssAnon:\t    1464 kB\nRssFile:\t 2099920 kB\n";
        assert_eq!(private::rss_anon_kib(status), Some(1464));
        assert_eq!(private::rss_anon_kib(b"Name:\tzombie\nState:\tZ\n"), None);
    }

    #[test]
    fn parts_and_command_line() {
        let mut opts = Options {
            runs: 5,
            warmup: 1,
            write_docs: true,
            python_only: false,
            only: None,
        };
        assert_eq!(opts.parts(), [Part::Inspect, Part::Rewrite]);
        assert_eq!(opts.command_line(), "cargo xtask bench --write-docs");
        opts.only = Some(Part::Rewrite);
        assert_eq!(opts.parts(), [Part::Rewrite]);
        assert_eq!(
            opts.command_line(),
            "cargo xtask bench --only rewrite --write-docs"
        );
    }
}
