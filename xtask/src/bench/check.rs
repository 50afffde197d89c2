//! The check part: `netport check --shapes` against
//! `onnx.checker.check_model(path, full_check=True)` on vgg16 exported by
//! torch, its weights inside the model and in an external data file; the
//! models, the probe that netport accepts them, and the part's report.

use super::*;
use std::fmt::Write as _;

const ONNX_BENCH_DIR: &str = "testdata/onnx/bench";
const ONNX_BENCH_SCRIPT: &str = "testdata/onnx/bench/make_bench_vgg16.py";
const ONNX_STAMP: &str = "netport-bench-onnx.stamp";

/// vgg16 with its weights inside the model.
pub(super) const VGG16: &str = "vgg16.onnx";
/// The same model, every initializer in `vgg16.data` next to it.
pub(super) const VGG16_EXTERNAL: &str = "vgg16_external/vgg16.onnx";
/// The models the check part reads, with what they hold.
pub(super) const CHECK_FILES: [(&str, &str); 2] = [
    (
        VGG16,
        "torchvision vgg16 (weights=None), torch.onnx.export(dynamo=False), input [batch, 3, \
         224, 224], weights inside the protobuf",
    ),
    (
        VGG16_EXTERNAL,
        "the same model saved by onnx with every initializer in one external data file",
    ),
];
/// The target of the ONNX issue: netport check at least this many times
/// faster than onnx.checker's full check.
const CHECK_TARGET: f64 = 5.0;

/// `onnx.checker.check_model(path, full_check=True)`, printing how long the
/// call took inside the process.
pub(super) const ONNX_CHECK_CODE: &str = "import sys, time, onnx; t = time.perf_counter(); \
    onnx.checker.check_model(sys.argv[1], full_check=True); print(time.perf_counter() - t)";

/// Writes the models if they are not there yet; returns their folder.
pub(super) fn ensure_onnx_models(root: &Path, venv: &venv::Venv) -> Result<PathBuf> {
    ScriptFolder {
        tag: "netport bench onnx v1".into(),
        folder: ONNX_BENCH_DIR,
        script: ONNX_BENCH_SCRIPT,
        prefix: "bench-onnx",
        stamp: ONNX_STAMP,
        what: "check part's vgg16 models (~1.1 GB)",
    }
    .ensure(root, &venv.python())
}

/// Runs `netport check --shapes` once on every model, so that a netport
/// that rejects them fails here with its own message, not as a timing.
pub(super) fn probe_check(bin: &Path, dir: &Path) -> Result<()> {
    for (name, _) in CHECK_FILES {
        probe_run(
            bin,
            &[
                "check".as_ref(),
                "--shapes".as_ref(),
                dir.join(name).as_os_str(),
            ],
        )?;
    }
    eprintln!("netport check accepts both bench models");
    Ok(())
}

impl Report<'_> {
    /// The check part: files, table, ratios against onnx.checker.
    pub(super) fn check(&self, out: &mut String, dir: &Path) -> Result<()> {
        writeln!(
            out,
            "- cache: warm (every file was just read by the warm-up round)."
        )?;
        writeln!(out, "- files (written by `{ONNX_BENCH_SCRIPT}`):")?;
        for (name, what) in CHECK_FILES {
            writeln!(out, "  - `{name}`: {what}; {}", on_disk(dir, name)?)?;
        }
        let data = dir.join("vgg16_external/vgg16.data");
        if let Ok(meta) = fs::metadata(&data) {
            writeln!(
                out,
                "  - `vgg16_external/vgg16.data`: {}",
                bytes(meta.len())
            )?;
        }
        writeln!(out)?;
        self.table(out, Part::Check, "check_model call")?;
        writeln!(out)?;
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let ratio = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
        for (file, _) in CHECK_FILES {
            let netport = self.index(Kind::CheckNetport, Some(file));
            let onnx = self.index(Kind::CheckOnnx, Some(file));
            if netport.is_none() {
                writeln!(out, "- netport was not timed (--python-only): no ratios")?;
                break;
            }
            let whole = self.paired(onnx, netport, |x, y| ratio(x, y));
            writeln!(
                out,
                "- `{file}`: onnx.checker full_check / netport check --shapes: {}",
                against(whole, Target::AtLeast(CHECK_TARGET)),
            )?;
            let call = self.paired(onnx, netport, |x, y| {
                x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
            });
            writeln!(
                out,
                "- `{file}`: the check_model call alone (timed inside Python) / netport check \
                 (whole process): {}",
                times(call)
            )?;
        }
        let peak = |x: &Sample, y: &Sample| x.peak_kib as f64 / y.peak_kib.max(1) as f64;
        if let Some(p) = self.paired(
            self.index(Kind::CheckNetport, Some(VGG16_EXTERNAL)),
            self.index(Kind::CheckNetport, Some(VGG16)),
            |x, y| peak(x, y),
        ) {
            writeln!(
                out,
                "- peak RSS, netport check of the external-data model / of the one with the \
                 weights inside: {}",
                factor(p)
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is `ru_maxrss` from `wait4`. `check_model call` is the call alone, timed \
             inside the Python process (no interpreter start-up, no `import onnx`)."
        )?;
        Ok(())
    }
}
