//! `cargo xtask bench`: how long netport takes on large PyTorch checkpoints,
//! and how much memory, against the Python way of doing the same in the same
//! run. A benchmark, never a test: nothing here passes or fails on a timing,
//! and no test runs it. Six parts (`--only inspect|rewrite|check|caffe2|exec|export`
//! runs one):
//!
//! - inspect: `netport inspect --json` against `torch.load` on a 256 MiB, a
//!   2 GiB and a 50,000-tensor checkpoint;
//! - rewrite: `netport map-location --to cpu` and `netport convert` (to
//!   safetensors) on a 2 GiB checkpoint whose storages are tagged `cuda:0`,
//!   against `cp` (the floor: the same bytes copied) and the Python peers
//!   `torch.save(torch.load(f, map_location='cpu'), OUT)` and
//!   `safetensors.torch.save_file(torch.load(f, map_location='cpu'), OUT)`;
//! - check: `netport check --shapes` against `onnx.checker.check_model(path,
//!   full_check=True)` on vgg16 exported by torch (~528 MB), with its weights
//!   inside the model and in an external data file (the models are written by
//!   `testdata/onnx/bench/make_bench_vgg16.py` into `<cache>/bench-onnx-<hash>`,
//!   like the checkpoints; the check part alone never writes the checkpoints).
//! - caffe2: `netport convert vgg16.onnx OUT --to caffe2` against
//!   `Caffe2Backend.onnx_graph_to_caffe2_net` + `SerializeToString` + write in
//!   the Caffe2 venv (torch 1.4.0) and against `cp` of the output's size, and
//!   the way back (`netport convert PAIR OUT.onnx`) against `cp` of its
//!   output's size; vgg16 is exported at opset 9 by torch 1.4 with
//!   `testdata/caffe2/bench/make_bench_vgg16_opset9.py` into
//!   `<cache>/bench-caffe2-<hash>`.
//! - exec: `netport run --threads 1` on resnet18 (1x3x224x224) against
//!   onnxruntime with one intra-op thread, and its Caffe2 pair (made by
//!   `netport convert --to caffe2`) against the real Caffe2 workspace, each
//!   timed in-process (median run, load) and as a whole process (see `exec`).
//! - export: `netport export resnet50.pt -o OUT.onnx` against `cp` of the
//!   checkpoint and a Python process that imports torch and torchvision,
//!   loads the state_dict and calls `torch.onnx.export` (the checkpoint is
//!   written by `testdata/export/bench/make_bench_resnet50.py` into
//!   `<cache>/bench-export-<hash>`).
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
//!   after its run and the folder at the end; `sync` runs (untimed) before
//!   each of them, so the write-back of the previous output does not land
//!   in the next timing. No command fsyncs its output
//!   (netport renames a complete temporary file into place, like cp and
//!   torch.save it leaves write-back to the kernel); a `cp && sync OUT` row
//!   shows what forcing the bytes to disk would cost.
//! - Nothing is written into the repo unless `--write-docs` is given; then the
//!   figures section of each part that ran (between its two markers in
//!   `docs/performance.md`) is replaced, and the other part's is kept.
//!
//! Layout: this module runs the whole thing; `fixtures` makes the files of
//! every part (one script each, into the cache), `spec` lists the timed
//! commands, `measure` runs and reaps them, `report` holds the shared tables,
//! statistics and docs rewriting, and `inspect` / `rewrite` / `check` /
//! `convert_caffe2` / `exec` / `export` hold each part's probe and report
//! (and `exec` its models).

mod check;
mod convert_caffe2;
mod exec;
mod export;
mod fixtures;
mod inspect;
mod measure;
mod report;
mod rewrite;
mod spec;

use check::*;
use convert_caffe2::*;
use exec::*;
use export::*;
use fixtures::*;
use inspect::*;
use measure::*;
use report::*;
use rewrite::*;
use spec::*;

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
const CHECK_SECTION: Section = Section {
    begin: "<!-- bench check figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench check figures: end -->",
};
const CAFFE2_SECTION: Section = Section {
    begin: "<!-- bench caffe2 figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench caffe2 figures: end -->",
};
const EXEC_SECTION: Section = Section {
    begin: "<!-- bench exec figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench exec figures: end -->",
};
const EXPORT_SECTION: Section = Section {
    begin: "<!-- bench export figures: begin (rewritten by `cargo xtask bench --write-docs`) -->",
    end: "<!-- bench export figures: end -->",
};

/// One part of the benchmark (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// `netport inspect --json` against torch.load.
    Inspect,
    /// `netport map-location` and `netport convert` against cp and the Python peers.
    Rewrite,
    /// `netport check --shapes` against onnx.checker's full check on vgg16.
    Check,
    /// `netport convert --to caffe2` against Caffe2's ONNX backend and cp,
    /// and the way back against cp, on vgg16.
    Caffe2,
    /// `netport run` on resnet18 (ONNX and its Caffe2 pair) against
    /// onnxruntime and the real Caffe2, single-threaded.
    Exec,
    /// `netport export` of resnet50 against cp and torch.onnx.export.
    Export,
}

impl Part {
    fn section(self) -> &'static Section {
        match self {
            Part::Inspect => &INSPECT_SECTION,
            Part::Rewrite => &REWRITE_SECTION,
            Part::Check => &CHECK_SECTION,
            Part::Caffe2 => &CAFFE2_SECTION,
            Part::Exec => &EXEC_SECTION,
            Part::Export => &EXPORT_SECTION,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Part::Inspect => "inspect",
            Part::Rewrite => "rewrite",
            Part::Check => "check",
            Part::Caffe2 => "caffe2",
            Part::Exec => "exec",
            Part::Export => "export",
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
const MANY_TARGET: f64 = 50.0;
/// Peak memory counts as independent of tensor bytes when netport's peak on
/// big.pt (8x the tensor bytes of mid.pt) is within this factor of mid.pt's.
const FLAT_TOLERANCE: f64 = 1.10;
/// Tensors in many.pt and in mid.pt, and the target for netport
/// inspect's peak RSS per tensor between them (bytes).
const MANY_TENSORS: f64 = 50_000.0;
const MID_TENSORS: f64 = 256.0;
const PER_TENSOR_TARGET: f64 = 300.0;
/// Rewrite targets (issue 13): netport's wall time at most this many times
/// cp's ...
const MAP_LOCATION_VS_CP: f64 = 1.2;
const CONVERT_VS_CP: f64 = 1.3;
/// ... at least this many times faster than the Python peer ...
const MAP_LOCATION_VS_PYTHON: f64 = 3.0;
const CONVERT_VS_PYTHON: f64 = 3.0;
/// ... and a peak resident set under this (MiB), as `/usr/bin/time` reports
/// it.
const REWRITE_PEAK_MIB: f64 = 64.0;

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
const VERSIONS_CODE: &str = "import sys, torch, safetensors, onnx; print('Python', \
    sys.version.split()[0] + ', torch', torch.__version__ + ', safetensors', \
    safetensors.__version__ + ', onnx', onnx.__version__)";

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
        [
            Part::Inspect,
            Part::Rewrite,
            Part::Check,
            Part::Caffe2,
            Part::Exec,
            Part::Export,
        ]
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
    // The checkpoints only for the parts that read them.
    let (dir, venv) = if parts
        .iter()
        .any(|&p| p == Part::Inspect || p == Part::Rewrite)
    {
        ensure_checkpoints(root)?
    } else {
        (PathBuf::new(), venv::ensure(root)?)
    };
    let onnx_dir = if parts.contains(&Part::Check) {
        ensure_onnx_models(root, &venv)?
    } else {
        PathBuf::new()
    };
    let export_dir = if parts.contains(&Part::Export) {
        ensure_export_checkpoint(root, &venv)?
    } else {
        PathBuf::new()
    };
    let (caffe2_dir, caffe2_python) = if parts.contains(&Part::Caffe2) {
        ensure_caffe2_model(root)?
    } else {
        (PathBuf::new(), PathBuf::new())
    };
    // The commands that write do it next to their inputs (the first such
    // part's folder).
    let out_dir = [
        (Part::Rewrite, &dir),
        (Part::Caffe2, &caffe2_dir),
        (Part::Export, &export_dir),
    ]
    .into_iter()
    .find(|(part, _)| parts.contains(part))
    .map(|(_, folder)| OutDir::create(folder.join(format!("out-{}", std::process::id()))))
    .transpose()?;
    let netport = if opts.python_only {
        eprintln!("--python-only: netport is not built or timed");
        None
    } else {
        let bin = build_netport(root)?;
        if parts.contains(&Part::Inspect) {
            probe_netport(&bin, &dir)?;
        }
        if parts.contains(&Part::Check) {
            probe_check(&bin, &onnx_dir)?;
        }
        if parts.contains(&Part::Caffe2) {
            probe_caffe2(&bin, &caffe2_dir)?;
        }
        if parts.contains(&Part::Export) {
            probe_export(&bin, &export_dir)?;
        }
        Some(bin)
    };
    let exec = if parts.contains(&Part::Exec) {
        Some(prepare_exec(root, netport.as_deref())?)
    } else {
        None
    };
    // The exec part's Caffe2 row runs only when its own preparation found
    // the venv (it made the pair's reference run there).
    let exec_caffe2 = exec.as_ref().is_some_and(|e| e.caffe2_python.is_some());
    let ctx = Ctx {
        python: venv.python(),
        netport,
        dir: dir.clone(),
        onnx_dir: onnx_dir.clone(),
        caffe2_dir: caffe2_dir.clone(),
        export_dir: export_dir.clone(),
        out_dir: out_dir.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
        exec_dir: exec.as_ref().map(|e| e.dir.clone()).unwrap_or_default(),
        caffe2_python: exec
            .as_ref()
            .and_then(|e| e.caffe2_python.clone())
            .or(parts.contains(&Part::Caffe2).then_some(caffe2_python)),
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
    let specs = specs(&parts, ctx.netport.is_some(), plan.as_ref(), exec_caffe2);
    let versions = versions(root, &ctx)?;
    let load_before = load_average();
    let (samples, floor_kib) = measure(&ctx, &specs, opts)?;
    let load_after = load_average();
    drop(out_dir);
    drop(exec);
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
        writeln!(out, "- load: {}", load_line(load_before, load_after))?;
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
            Part::Check => report.check(&mut out, &onnx_dir)?,
            Part::Caffe2 => report.caffe2(&mut out, &caffe2_dir)?,
            Part::Exec => report.exec(&mut out, exec_caffe2)?,
            Part::Export => report.export(&mut out, &export_dir)?,
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

// --- netport ---------------------------------------------------------------------

/// Runs `netport ARGS` once, untimed, before the rounds: a netport that
/// cannot do a part's job fails here with its own message (its stdout and
/// stderr), not as a timing.
fn probe_run<S: AsRef<std::ffi::OsStr>>(bin: &Path, args: &[S]) -> Result<()> {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "`netport {}` {}: {}{}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_command_line() {
        let mut opts = Options {
            runs: 5,
            warmup: 1,
            write_docs: true,
            python_only: false,
            only: None,
        };
        assert_eq!(
            opts.parts(),
            [
                Part::Inspect,
                Part::Rewrite,
                Part::Check,
                Part::Caffe2,
                Part::Exec,
                Part::Export
            ]
        );
        assert_eq!(opts.command_line(), "cargo xtask bench --write-docs");
        opts.only = Some(Part::Rewrite);
        assert_eq!(opts.parts(), [Part::Rewrite]);
        assert_eq!(
            opts.command_line(),
            "cargo xtask bench --only rewrite --write-docs"
        );
        opts.only = Some(Part::Check);
        assert_eq!(opts.parts(), [Part::Check]);
        assert_eq!(
            opts.command_line(),
            "cargo xtask bench --only check --write-docs"
        );
    }
}
