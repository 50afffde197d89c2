//! The export part: `netport export resnet50.pt -o OUT.onnx` against `cp`
//! of the checkpoint and against a Python process that imports torch and
//! torchvision, loads the state_dict and calls `torch.onnx.export` (the
//! export issue's targets); the checkpoint, the probe and the report.

use super::*;
use std::fmt::Write as _;

/// The checkpoint, in the part's folder.
pub(super) const EXPORT_CKPT: &str = "resnet50.pt";
const EXPORT_WHAT: &str = "torchvision resnet50 (weights=None, seeded, BatchNorm statistics \
    randomised, 1000 classes), its state_dict saved by torch.save (zip format)";
/// Both exporters write this opset (netport's default).
const EXPORT_OPSET: &str = "17";

/// Targets of the export issue: at most this many times `cp` ...
const EXPORT_VS_CP: f64 = 2.0;
/// ... and at least this many times faster than the Python peer.
const EXPORT_VS_PYTHON: f64 = 10.0;

/// The Python peer: everything after start-up is its job (imports, building
/// the model, the load, the export); prints the seconds of the
/// `torch.onnx.export` call alone.
pub(super) const EXPORT_TORCH_CODE: &str = "import sys, time, torch, torchvision\n\
    m = torchvision.models.resnet50(weights=None)\n\
    m.load_state_dict(torch.load(sys.argv[1], map_location='cpu', weights_only=True))\n\
    m.eval()\n\
    t = time.perf_counter()\n\
    torch.onnx.export(m, (torch.randn(1, 3, 224, 224),), sys.argv[2], dynamo=False, \
    opset_version=17, input_names=['input'], output_names=['output'], \
    dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})\n\
    print(time.perf_counter() - t)";

/// Writes the checkpoint if it is not there yet; returns its folder.
pub(super) fn ensure_export_checkpoint(root: &Path, venv: &venv::Venv) -> Result<PathBuf> {
    ScriptFolder {
        tag: "netport bench export v1".into(),
        folder: "testdata/export/bench",
        script: "testdata/export/bench/make_bench_resnet50.py",
        prefix: "bench-export",
        stamp: "netport-bench-export.stamp",
        what: "export part's resnet50 checkpoint (~100 MB)",
    }
    .ensure(root, &venv.python())
}

/// The arguments of netport's timed command after the binary.
pub(super) fn export_args(input: &Path, output: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "export".into(),
        input.into(),
        "-o".into(),
        output.into(),
        "--opset".into(),
        EXPORT_OPSET.into(),
    ]
}

/// Runs `netport export` once (untimed), so that a netport that cannot
/// export the checkpoint fails here with its own message, not as a timing.
pub(super) fn probe_export(bin: &Path, dir: &Path) -> Result<()> {
    let output = dir.join("probe.onnx");
    let probed = probe_run(bin, &export_args(&dir.join(EXPORT_CKPT), &output));
    let _ = fs::remove_file(&output);
    probed?;
    eprintln!("netport exports the bench checkpoint");
    Ok(())
}

impl Report<'_> {
    /// The export part: file, table, ratios against cp and the Python peer.
    pub(super) fn export(&self, out: &mut String, dir: &Path) -> Result<()> {
        warm_files(out)?;
        writeln!(
            out,
            "  - `{EXPORT_CKPT}` (written by `testdata/export/bench/make_bench_resnet50.py` in \
             the peer venv): {EXPORT_WHAT}; {}",
            on_disk(dir, EXPORT_CKPT)?
        )?;
        writeln!(out)?;
        self.table(out, Part::Export, "torch.onnx.export call")?;
        writeln!(out)?;
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let wall = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
        let netport = self.index(Kind::ExportNetport, Some(EXPORT_CKPT));
        let cp = self.index(Kind::ExportCp, Some(EXPORT_CKPT));
        let torch = self.index(Kind::ExportTorch, Some(EXPORT_CKPT));
        if netport.is_none() {
            writeln!(out, "- netport was not timed (--python-only): no ratios")?;
        } else {
            let vs_cp = self.paired(netport, cp, wall);
            writeln!(
                out,
                "- netport export / cp of the checkpoint: {}",
                against(vs_cp, Target::AtMost(EXPORT_VS_CP)),
            )?;
            let vs_torch = self.paired(torch, netport, wall);
            writeln!(
                out,
                "- Python (whole process) / netport export: {}",
                against(vs_torch, Target::AtLeast(EXPORT_VS_PYTHON)),
            )?;
            let alone = self.paired(torch, netport, |x, y| {
                x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
            });
            writeln!(
                out,
                "- the `torch.onnx.export` call alone (timed inside Python: no start-up, \
                 imports, model construction or load) / netport export (whole process): {}",
                times(alone)
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is `ru_maxrss` from `wait4`; `private peak` is the largest `RssAnon` sampled \
             while the process runs. Both exporters write opset {EXPORT_OPSET} with a symbolic \
             batch; the Python peer builds torchvision's resnet50, loads the state_dict \
             (`weights_only=True`) and calls `torch.onnx.export(dynamo=False)`. Every command \
             writes a fresh output on the input's file system (none is there before the run; \
             it is removed after it), with `sync` (untimed) before each run. Ratios are taken \
             run by run within a round, then the median."
        )?;
        Ok(())
    }
}
