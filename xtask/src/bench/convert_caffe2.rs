//! The caffe2 part: `netport convert MODEL.onnx OUT --to caffe2` against
//! `Caffe2Backend.onnx_graph_to_caffe2_net` + `SerializeToString` + write
//! (torch 1.4.0 in the Caffe2 venv) and against `cp` of a file of the
//! output's size, on vgg16 exported by torch 1.4 at opset 9; and the way
//! back, `netport convert PAIR OUT.onnx`, against `cp` of its output's size.
//! The model, the probe that makes the reference outputs, and the report.

use super::*;
use std::fmt::Write as _;

const C2_BENCH_DIR: &str = "testdata/caffe2/bench";
const C2_BENCH_SCRIPT: &str = "testdata/caffe2/bench/make_bench_vgg16_opset9.py";
const C2_STAMP: &str = "netport-bench-caffe2.stamp";

/// The model, in the part's folder.
pub(super) const C2_VGG16: &str = "vgg16.onnx";
/// netport's Caffe2 pair of it, made by the probe: the input of the way
/// back, and the file `cp` copies (the init net is the output's bulk).
pub(super) const C2_PAIR: &str = "vgg16_caffe2";
pub(super) const C2_PAIR_INIT: &str = "vgg16_caffe2/init_net.pb";
/// The way back's output, made by the probe: the file its `cp` copies.
pub(super) const C2_BACK: &str = "vgg16_back.onnx";
const C2_WHAT: &str = "torchvision 0.5 vgg16 (seeded weights), torch.onnx.export by torch 1.4.0 \
    at opset 9 with keep_initializers_as_inputs=True, weights inside the protobuf";
/// The data input's name and shape, as the script exports it.
pub(super) const C2_INPUT_SHAPE: &str = "input=1,3,224,224";
/// vgg16's largest tensor: classifier.0.weight, float32 [4096, 25088].
const LARGEST_TENSOR: u64 = 4096 * 25088 * 4;

/// Targets of the Caffe2 issue.
const C2_VS_BACKEND: f64 = 10.0;
const C2_VS_CP: f64 = 2.0;
const C2_PEAK_OVER_LARGEST_MIB: f64 = 64.0;

/// Converts with Caffe2's backend and writes both nets into the folder
/// `argv[2]`; prints the seconds of the conversion, serialisation and
/// writes (the model's load excluded). `import onnx` first (docs/formats/caffe2.md,
/// "The real Caffe2 as an oracle").
pub(super) const BACKEND_CODE: &str = "import sys, os, time, onnx\n\
    from caffe2.python.onnx.backend import Caffe2Backend\n\
    m = onnx.load(sys.argv[1])\n\
    t = time.perf_counter()\n\
    init, pred = Caffe2Backend.onnx_graph_to_caffe2_net(m, device='CPU')\n\
    os.makedirs(sys.argv[2])\n\
    for name, net in (('init_net.pb', init), ('predict_net.pb', pred)):\n\
    \x20   with open(os.path.join(sys.argv[2], name), 'wb') as f:\n\
    \x20       f.write(net.SerializeToString())\n\
    print(time.perf_counter() - t)";

/// Writes the model if it is not there yet; returns its folder and the
/// Caffe2 venv's python.
pub(super) fn ensure_caffe2_model(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let python = crate::caffe2::ensure_venv(root)?;
    let venv_name = python
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let dir = ScriptFolder {
        tag: format!("netport bench caffe2 v1 {venv_name}"),
        folder: C2_BENCH_DIR,
        script: C2_BENCH_SCRIPT,
        prefix: "bench-caffe2",
        stamp: C2_STAMP,
        what: "caffe2 part's vgg16 at opset 9 (~530 MB, exported in the caffe2 venv)",
    }
    .ensure(root, &python)?;
    Ok((dir, python))
}

/// Runs both netport conversions once (untimed), into the part's folder:
/// the pair is the way back's input and both outputs are the files the
/// `cp` rows copy. A netport that cannot convert fails here with its own
/// message, not as a timing.
pub(super) fn probe_caffe2(bin: &Path, dir: &Path) -> Result<()> {
    let pair = dir.join(C2_PAIR);
    if pair.exists() {
        fs::remove_dir_all(&pair).with_context(|| format!("removing {}", pair.display()))?;
    }
    let model = dir.join(C2_VGG16);
    let back = dir.join(C2_BACK);
    probe_run(
        bin,
        &[
            "convert".as_ref(),
            model.as_os_str(),
            pair.as_os_str(),
            "--to".as_ref(),
            "caffe2".as_ref(),
        ],
    )?;
    probe_run(
        bin,
        &[
            "convert".as_ref(),
            pair.as_os_str(),
            back.as_os_str(),
            "--input-shape".as_ref(),
            C2_INPUT_SHAPE.as_ref(),
        ],
    )?;
    eprintln!("netport converts the bench model to Caffe2 and back");
    Ok(())
}

impl Report<'_> {
    /// The caffe2 part: files, table, ratios against the backend and cp.
    pub(super) fn caffe2(&self, out: &mut String, dir: &Path) -> Result<()> {
        warm_files(out)?;
        writeln!(
            out,
            "  - `{C2_VGG16}` (written by `{C2_BENCH_SCRIPT}` in the Caffe2 venv): {C2_WHAT}; {}",
            on_disk(dir, C2_VGG16)?
        )?;
        writeln!(
            out,
            "  - `{C2_PAIR_INIT}`: netport's init net of it (the `cp` row's input: a file of \
             the output's size); {}",
            on_disk(dir, C2_PAIR_INIT)?
        )?;
        writeln!(
            out,
            "  - `{C2_BACK}`: netport's way back from that pair (the other `cp` row's input); {}",
            on_disk(dir, C2_BACK)?
        )?;
        writeln!(
            out,
            "  - the largest tensor: `classifier.0.weight`, float32 [4096, 25088], {}",
            bytes(LARGEST_TENSOR)
        )?;
        writeln!(out)?;
        self.table(out, Part::Caffe2, "backend call")?;
        writeln!(out)?;
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let wall = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
        let to_c2 = self.index(Kind::C2Netport, Some(C2_VGG16));
        let backend = self.index(Kind::C2Backend, Some(C2_VGG16));
        let cp = self.index(Kind::C2Cp, Some(C2_PAIR_INIT));
        let back = self.index(Kind::C2Back, Some(C2_PAIR));
        let back_cp = self.index(Kind::C2BackCp, Some(C2_BACK));
        if to_c2.is_none() {
            writeln!(out, "- netport was not timed (--python-only): no ratios")?;
        } else {
            let vs_backend = self.paired(backend, to_c2, wall);
            writeln!(
                out,
                "- ONNX -> Caffe2: Caffe2Backend (whole process) / netport convert --to caffe2: \
                 {}",
                against(vs_backend, Target::AtLeast(C2_VS_BACKEND)),
            )?;
            let alone = self.paired(backend, to_c2, |x, y| {
                x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
            });
            writeln!(
                out,
                "- ONNX -> Caffe2: the backend's conversion + SerializeToString + write alone \
                 (timed inside Python, no start-up, imports or onnx.load) / netport (whole \
                 process): {}",
                times(alone)
            )?;
            let vs_cp = self.paired(to_c2, cp, wall);
            writeln!(
                out,
                "- ONNX -> Caffe2: netport / cp of the init net: {}",
                against(vs_cp, Target::AtMost(C2_VS_CP)),
            )?;
            let vs_cp = self.paired(back, back_cp, wall);
            writeln!(
                out,
                "- Caffe2 -> ONNX: netport / cp of the ONNX output: {}",
                against(vs_cp, Target::AtMost(C2_VS_CP)),
            )?;
            let limit_kib = (LARGEST_TENSOR as f64 / 1024.0) + C2_PEAK_OVER_LARGEST_MIB * 1024.0;
            for (index, name) in [(to_c2, "ONNX -> Caffe2"), (back, "Caffe2 -> ONNX")] {
                let Some(i) = index else { continue };
                let peak = Stats::of(self.samples[i].iter().map(|s| s.peak_kib as f64));
                writeln!(
                    out,
                    "- peak RSS (`ru_maxrss`, mapped file pages included), {name}: **{}** (max \
                     {}) (target < the largest tensor + {C2_PEAK_OVER_LARGEST_MIB:.0} MiB = {}: \
                     {})",
                    kib(peak.median as u64),
                    kib(peak.max as u64),
                    kib(limit_kib as u64),
                    verdict(peak.max < limit_kib),
                )?;
                if let Some(private) = self.samples[i].iter().filter_map(|s| s.private_kib).max() {
                    writeln!(
                        out,
                        "- private memory peak (`RssAnon`, sampled every {} ms; file pages not \
                         counted), {name}: **{}**",
                        private::INTERVAL.as_millis(),
                        kib(private),
                    )?;
                }
            }
        }
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is `ru_maxrss` from `wait4`; `private peak` is the largest `RssAnon` sampled \
             while the process runs. `backend call` is `Caffe2Backend.onnx_graph_to_caffe2_net` \
             + `SerializeToString` + writing both files, timed inside the Python process (no \
             interpreter start-up, no imports, no `onnx.load`). Every command writes into a \
             fresh output folder on the input's file system, removed after its run, with \
             `sync` (untimed) before each run. Ratios are taken run by run within a round, \
             then the median."
        )?;
        Ok(())
    }
}
