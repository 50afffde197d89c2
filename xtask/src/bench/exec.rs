//! The exec part: netport's executor (`netport run --threads 1`) on
//! torchvision's resnet18 at 1x3x224x224 against onnxruntime with one
//! intra-op thread, and the same net as a Caffe2 pair (made by `netport
//! convert --to caffe2`) on netport's executor against the real Caffe2
//! workspace (the Python 3.7 venv); each timed in-process (median of
//! `EXEC_INNER` runs after one untimed run, and the load: session creation
//! against netport's load + plan) and as a whole process. The model and its
//! input are the peer corpus's (`resnet18/torchscript/resnet18.onnx`,
//! `resnet18/input.npy`); the pair is written into `<cache>/bench-exec-<pid>`
//! and removed at the end.

use super::*;
use std::fmt::Write as _;

/// The ONNX model and its input, as the exec part's folder holds them.
pub(super) const EXEC_ONNX: &str = "resnet18.onnx";
/// The Caffe2 pair netport converts from it.
pub(super) const EXEC_CAFFE2: &str = "resnet18_caffe2";
const EXEC_INPUT: &str = "input.npy";
/// Timed runs inside each process (after one untimed run).
pub(super) const EXEC_INNER: usize = 10;

/// The targets of the executor issue, on the medians of the paired rounds:
/// netport's ONNX run at most this many times onnxruntime's ...
const VS_ORT: f64 = 1.5;
/// ... the Caffe2 pair on netport at most this many times netport's ONNX run
/// (and faster than the real Caffe2) ...
const CAFFE2_VS_ONNX: f64 = 1.5;
/// ... and netport's load + plan at most this many times onnxruntime's
/// session creation.
const LOAD_VS_ORT: f64 = 2.0;

/// onnxruntime with one intra-op thread (and one inter-op thread): prints the
/// median seconds of `EXEC_INNER` runs after one untimed run, then the
/// seconds of the session creation.
pub(super) const ORT_CODE: &str = "import sys, time, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
t = time.perf_counter()
s = ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])
load = time.perf_counter() - t
x = np.load(sys.argv[2]); feed = {s.get_inputs()[0].name: x}
s.run(None, feed)
ts = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); s.run(None, feed); ts.append(time.perf_counter() - t)
ts.sort(); n = len(ts)
print((ts[n // 2] + ts[(n - 1) // 2]) / 2, load)";

/// The real Caffe2 workspace on the pair: the init net run and the predict
/// net created (the load), then `workspace.RunNet` timed like ORT_CODE.
/// onnx is imported before anything of torch (see the Caffe2 reference).
pub(super) const CAFFE2_CODE: &str = "import sys, os, time, numpy as np
import onnx
from caffe2.proto import caffe2_pb2
from caffe2.python import workspace
d = sys.argv[1]
t = time.perf_counter()
init = caffe2_pb2.NetDef(); init.ParseFromString(open(os.path.join(d, 'init_net.pb'), 'rb').read())
pred = caffe2_pb2.NetDef(); pred.ParseFromString(open(os.path.join(d, 'predict_net.pb'), 'rb').read())
workspace.RunNetOnce(init)
filled = set(o for op in init.op for o in op.output)
name = [b for b in pred.external_input if b not in filled][0]
x = np.load(sys.argv[2])
workspace.FeedBlob(name, x)
workspace.CreateNet(pred)
load = time.perf_counter() - t
workspace.RunNet(pred.name)
ts = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); workspace.RunNet(pred.name); ts.append(time.perf_counter() - t)
ts.sort(); n = len(ts)
print((ts[n // 2] + ts[(n - 1) // 2]) / 2, load)";

/// The exec part's inputs: a folder holding the model, its input and the
/// Caffe2 pair, and the Caffe2 venv's python when there is one.
pub(super) struct ExecFiles {
    pub(super) dir: PathBuf,
    pub(super) caffe2_python: Option<PathBuf>,
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Finds the peer corpus's resnet18 (building the corpus if needed), links
/// it and its input into a folder of the cache, converts it to a Caffe2 pair
/// with `bin`, and runs both once on netport so that a failure shows here
/// with its own message. The Caffe2 venv is used when it is built (`cargo
/// xtask caffe2-venv`); else its row is left out and said so.
pub(super) fn prepare_exec(root: &Path, bin: Option<&Path>) -> Result<ExecFiles> {
    let (peers, _venv) = crate::peers::ensure(root)?;
    let onnx = peers.join("resnet18/torchscript/resnet18.onnx");
    let input = peers.join("resnet18/input.npy");
    for f in [&onnx, &input] {
        if !f.is_file() {
            bail!("the peer corpus has no {}", f.display());
        }
    }
    let dir = util::cache_root()?.join(format!("bench-exec-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = ExecFiles {
        dir,
        caffe2_python: None,
    };
    fs::copy(&onnx, files.dir.join(EXEC_ONNX)).context("copying resnet18.onnx")?;
    fs::copy(&input, files.dir.join(EXEC_INPUT)).context("copying input.npy")?;
    if let Some(bin) = bin {
        util::run(
            Command::new(bin)
                .arg("convert")
                .arg(files.dir.join(EXEC_ONNX))
                .arg(files.dir.join(EXEC_CAFFE2))
                .args(["--to", "caffe2"])
                .stdout(Stdio::null()),
            "netport convert --to caffe2 (the exec part's Caffe2 pair)",
        )?;
        for model in [EXEC_ONNX, EXEC_CAFFE2] {
            util::run(
                Command::new(bin)
                    .arg("run")
                    .arg(files.dir.join(model))
                    .arg("--input")
                    .arg(files.dir.join(EXEC_INPUT))
                    .args(["--threads", "1"])
                    .stdout(Stdio::null()),
                &format!("netport run {model} (the exec part's probe)"),
            )?;
        }
    }
    match crate::caffe2::find_python37()
        .and_then(|p| crate::caffe2::venv_dir(root, &p))
        .map(|d| d.join("bin").join("python"))
    {
        Ok(python) if python.is_file() && files.dir.join(EXEC_CAFFE2).is_dir() => {
            files.caffe2_python = Some(python);
        }
        Ok(python) => eprintln!(
            "no Caffe2 venv at {} (or no pair): the real Caffe2 row is left out \
             (`cargo xtask caffe2-venv` builds it)",
            python.display()
        ),
        Err(e) => eprintln!("no Caffe2 venv ({e:#}): the real Caffe2 row is left out"),
    }
    Ok(files)
}

/// The exec commands, in the order of a round.
pub(super) fn exec_specs(with_netport: bool, with_caffe2: bool, specs: &mut Vec<Spec>) {
    if with_netport {
        specs.push(Spec {
            kind: Kind::ExecNetport,
            file: Some(EXEC_ONNX),
        });
    }
    specs.push(Spec {
        kind: Kind::ExecOrt,
        file: Some(EXEC_ONNX),
    });
    if with_netport {
        specs.push(Spec {
            kind: Kind::ExecNetport,
            file: Some(EXEC_CAFFE2),
        });
    }
    if with_caffe2 {
        specs.push(Spec {
            kind: Kind::ExecCaffe2,
            file: Some(EXEC_CAFFE2),
        });
    }
}

/// The command of an exec spec.
pub(super) fn exec_command(spec: &Spec, ctx: &Ctx) -> Command {
    let model = ctx.exec_dir.join(spec.file.unwrap_or(""));
    let input = ctx.exec_dir.join(EXEC_INPUT);
    let inner = EXEC_INNER.to_string();
    let python = |python: &Path, code: &str| {
        let mut cmd = Command::new(python);
        util::python_env(&mut cmd)
            .args(["-c", code])
            .arg(&model)
            .arg(&input)
            .arg(&inner)
            // One thread for every library the peers may use underneath.
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1");
        cmd
    };
    match spec.kind {
        Kind::ExecOrt => python(&ctx.python, ORT_CODE),
        Kind::ExecCaffe2 => python(
            ctx.caffe2_python
                .as_deref()
                .expect("the Caffe2 row only with its venv"),
            CAFFE2_CODE,
        ),
        _ => {
            let mut cmd = Command::new(
                ctx.netport
                    .as_ref()
                    .expect("netport specs only with a binary"),
            );
            cmd.arg("run").arg(&model).arg("--input").arg(&input).args([
                "--threads",
                "1",
                "--time",
                &inner,
                "--json",
            ]);
            cmd
        }
    }
}

/// The label of an exec spec, as a reader would type it.
pub(super) fn exec_label(spec: &Spec) -> String {
    let file = spec.file.unwrap_or("");
    match spec.kind {
        Kind::ExecOrt => format!(
            "onnxruntime InferenceSession('{file}', intra_op_num_threads=1).run × {EXEC_INNER}"
        ),
        Kind::ExecCaffe2 => {
            format!("Caffe2 workspace.RunNet on {file}/ × {EXEC_INNER} (Python 3.7, torch 1.4)")
        }
        _ => format!(
            "netport run {file} --input {EXEC_INPUT} --threads 1 --time {EXEC_INNER} --json"
        ),
    }
}

/// What an exec command printed on stdout: the median run and the load, in
/// seconds; netport's `--json` document (`timing.median_ms`, `load_ms`) or
/// the Python codes' two numbers.
pub(super) fn parse_exec_stdout(stdout: &str) -> Result<(Duration, Duration)> {
    let text = stdout.trim();
    let (run, load) = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).context("netport run --json printed no JSON")?;
        let ms = |x: Option<&serde_json::Value>| x.and_then(serde_json::Value::as_f64);
        (
            ms(v.pointer("/timing/median_ms")).map(|x| x / 1000.0),
            ms(v.get("load_ms")).map(|x| x / 1000.0),
        )
    } else {
        let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
        (it.next().flatten(), it.next().flatten())
    };
    match (run, load) {
        (Some(r), Some(l)) => Ok((
            Duration::from_secs_f64(r.max(0.0)),
            Duration::from_secs_f64(l.max(0.0)),
        )),
        _ => bail!("expected the median run and the load on stdout, got {stdout:?}"),
    }
}

impl Report<'_> {
    /// The exec part: the table, in-process figures and ratios.
    pub(super) fn exec(&self, out: &mut String, caffe2: bool) -> Result<()> {
        writeln!(
            out,
            "- model: the peer corpus's torchvision resnet18 (weights=None, random BN \
             statistics), `torch.onnx.export(dynamo=False)`, input 1x3x224x224 float32 \
             (`resnet18/input.npy`); `{EXEC_CAFFE2}` is its Caffe2 pair made by `netport \
             convert --to caffe2`."
        )?;
        writeln!(
            out,
            "- every row single-threaded: netport `--threads 1`; onnxruntime \
             `intra_op_num_threads=1`, `inter_op_num_threads=1`; all with \
             `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1`."
        )?;
        if !caffe2 {
            writeln!(
                out,
                "- the real Caffe2 row was left out: no Caffe2 venv (`cargo xtask caffe2-venv`)."
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "| command | run median (in process) | run min – max | load median | whole process \
             median | whole process min – max |"
        )?;
        writeln!(out, "|---|--:|--:|--:|--:|--:|")?;
        for (spec, runs) in self.specs.iter().zip(self.samples) {
            if spec.kind.part() != Part::Exec {
                continue;
            }
            let run = Stats::of(runs.iter().filter_map(|s| s.call).map(|d| d.as_secs_f64()));
            let load = Stats::of(runs.iter().filter_map(|s| s.load).map(|d| d.as_secs_f64()));
            let wall = Stats::of(runs.iter().map(|s| s.wall.as_secs_f64()));
            writeln!(
                out,
                "| `{}` | {} | {} – {} | {} | {} | {} – {} |",
                spec.label(),
                secs(run.median),
                secs(run.min),
                secs(run.max),
                secs(load.median),
                secs(wall.median),
                secs(wall.min),
                secs(wall.max),
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "Ratios, taken round by round (median, min – max in brackets):\n"
        )?;
        let onnx = self.index(Kind::ExecNetport, Some(EXEC_ONNX));
        let pair = self.index(Kind::ExecNetport, Some(EXEC_CAFFE2));
        let ort = self.index(Kind::ExecOrt, Some(EXEC_ONNX));
        let real = self.index(Kind::ExecCaffe2, Some(EXEC_CAFFE2));
        if onnx.is_none() {
            writeln!(out, "- netport was not timed (--python-only): no ratios")?;
            return Ok(());
        }
        let run = |s: &Sample| s.call.unwrap_or_default().as_secs_f64();
        let load = |s: &Sample| s.load.unwrap_or_default().as_secs_f64();
        let line = |out: &mut String, what: &str, r: Option<Stats>, target: &str, met: bool| {
            writeln!(
                out,
                "- {what}: {}{}",
                times(r),
                if target.is_empty() {
                    String::new()
                } else {
                    format!(" (target {target}: {})", verdict(met))
                }
            )
        };
        let r = self.paired(onnx, ort, |x, y| run(x) / run(y));
        line(
            out,
            "netport run / onnxruntime run, resnet18.onnx",
            r,
            &format!("≤ {VS_ORT}×"),
            r.is_some_and(|s| s.median <= VS_ORT),
        )?;
        let r = self.paired(pair, onnx, |x, y| run(x) / run(y));
        line(
            out,
            "netport run of the Caffe2 pair / netport run of resnet18.onnx",
            r,
            &format!("≤ {CAFFE2_VS_ONNX}×"),
            r.is_some_and(|s| s.median <= CAFFE2_VS_ONNX),
        )?;
        if real.is_some() {
            let r = self.paired(real, pair, |x, y| run(x) / run(y));
            line(
                out,
                "real Caffe2 RunNet / netport run of the Caffe2 pair",
                r,
                "> 1× (netport faster)",
                r.is_some_and(|s| s.median > 1.0),
            )?;
        }
        let r = self.paired(onnx, ort, |x, y| load(x) / load(y));
        line(
            out,
            "netport load + plan / onnxruntime session creation",
            r,
            &format!("≤ {LOAD_VS_ORT}×"),
            r.is_some_and(|s| s.median <= LOAD_VS_ORT),
        )?;
        let r = self.paired(onnx, ort, |x, y| {
            x.wall.as_secs_f64() / y.wall.as_secs_f64()
        });
        line(
            out,
            "netport whole process / onnxruntime whole process (Python start and imports \
             included)",
            r,
            "",
            false,
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "`run` is the median of {EXEC_INNER} runs inside one process after one untimed run \
             (netport: `--time {EXEC_INNER}`; the Python rows: `time.perf_counter()` around \
             each `run` / `RunNet`), then the median of that over the rounds; `load` is \
             netport's file read + plan build against onnxruntime's `InferenceSession(...)` \
             and Caffe2's init net run + `CreateNet`. The whole-process columns include \
             those runs, the load, Python's start and imports."
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_stdout_is_parsed_from_both_forms() {
        let (r, l) = parse_exec_stdout(
            "{\"load_ms\": 250.0, \"timing\": {\"runs\": 10, \"median_ms\": 40.0}}\n",
        )
        .unwrap();
        assert_eq!((r.as_millis(), l.as_millis()), (40, 250));
        let (r, l) = parse_exec_stdout("0.025 1.5\n").unwrap();
        assert_eq!((r.as_millis(), l.as_millis()), (25, 1500));
        assert!(parse_exec_stdout("0.025\n").is_err());
        assert!(parse_exec_stdout("{\"load_ms\": 1}").is_err());
    }
}
