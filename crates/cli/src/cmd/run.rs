//! `netport run MODEL`: runs an ONNX model or a Caffe2 pair on our own
//! executor (`netport-exec`), with inputs from `.npy`, `.npz` or safetensors files
//! or random ones from the declared shapes; writes each output as
//! `DIR/<name>.npy` and prints a summary of each. The input handling here
//! is shared with `netport verify`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use netport_exec::{Data, InputDim, InputSpec, Plan, Tensor};
use netport_tensor::DType;
use serde::Serialize;

use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;

/// Where the inputs come from (shared by `run` and `verify`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// An input: NAME=FILE (a .npy file, a .npz or safetensors file holding an
    /// array of that name), or FILE alone for the inputs in order.
    /// Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE")]
    pub inputs: Vec<String>,
    /// Make every input not given by --input random (floats uniform in
    /// [-1, 1), integers in [0, 10), bools half true), from the shapes the
    /// model declares.
    #[arg(long)]
    pub random: bool,
    /// The seed of --random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The shape of an input for --random, for symbolic or unknown dims:
    /// NAME=1,3,224,224 (or 1x3x224x224). Repeatable.
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<String>,
}

/// Run an ONNX model or a Caffe2 net on netport's own executor.
///
/// MODEL is an ONNX file, a Caffe2 folder (init_net.pb + predict_net.pb), or
/// a Caffe2 predict net with --init. Each output is written to
/// DIR/<name>.npy when --output-dir is given, and summarized (dtype, shape,
/// min/max/mean, first values). An op or dtype the executor does not
/// support is an error when the model is loaded. Exit code 0 ok, 2 error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: ONNX file, Caffe2 folder, or Caffe2 predict net (with --init).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// The Caffe2 init net, when MODEL is a predict net file.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Write each output as DIR/<name>.npy.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Run N more times after the first and report the median and spread.
    #[arg(long, value_name = "N")]
    pub time: Option<usize>,
    /// Threads each op may use (default: the available cores, as
    /// onnxruntime's intra-op pool; 1 runs on the calling thread only).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print one JSON document (fields in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// A summary of one tensor.
#[derive(Serialize, Debug)]
pub struct TensorSummary {
    /// The value's name.
    pub name: String,
    /// numpy-style dtype name (float32, int64, ...).
    pub dtype: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// Smallest value (NaN ignored; none when empty).
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// NaN count.
    pub nan: usize,
    /// The first values (up to 8).
    pub first: Vec<f64>,
    /// Where it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl TensorSummary {
    /// Summarizes a tensor.
    pub fn of(name: &str, t: &Tensor) -> Self {
        let v = t.data.to_f64_vec();
        let finite: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        let nan = v.len() - finite.len();
        let (min, max, mean) = if finite.is_empty() {
            (None, None, None)
        } else {
            (
                Some(finite.iter().copied().fold(f64::INFINITY, f64::min)),
                Some(finite.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                Some(finite.iter().sum::<f64>() / finite.len() as f64),
            )
        };
        TensorSummary {
            name: name.to_string(),
            dtype: t.dtype().torch_name().to_string(),
            shape: t.shape.clone(),
            min,
            max,
            mean,
            nan,
            first: v.iter().take(8).copied().collect(),
            file: None,
        }
    }

    /// One line of text.
    pub fn line(&self) -> String {
        let g = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.6}"));
        let first: Vec<String> = self.first.iter().map(|v| format!("{v:.6}")).collect();
        let mut s = format!(
            "{} {} {:?} min {} max {} mean {}",
            self.name,
            self.dtype,
            self.shape,
            g(self.min),
            g(self.max),
            g(self.mean)
        );
        if self.nan > 0 {
            let _ = write!(s, " nan {}", self.nan);
        }
        let _ = write!(s, " first [{}]", first.join(", "));
        if let Some(f) = &self.file {
            let _ = write!(s, " -> {f}");
        }
        s
    }
}

/// Timing of repeated runs.
#[derive(Serialize, Debug)]
struct Timing {
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct RunJson<'a> {
    model: String,
    format: &'static str,
    load_ms: f64,
    inputs: &'a [TensorSummary],
    outputs: &'a [TensorSummary],
    #[serde(skip_serializing_if = "Option::is_none")]
    timing: Option<Timing>,
}

/// Loads a model for `run` and `verify`, with the model path in errors, set
/// to use `threads` intra-op threads (`None`: the available cores, as
/// onnxruntime's default intra-op pool; 0 is taken as 1).
pub fn load(
    model: &Path,
    init: Option<&Path>,
    threads: Option<usize>,
) -> anyhow::Result<(Plan, netport_exec::ModelKind)> {
    let (mut plan, kind) =
        netport_exec::load_model(model, init).map_err(|e| anyhow!("{}: {e}", model.display()))?;
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    plan.set_threads(threads.max(1));
    Ok((plan, kind))
}

fn parse_dims(text: &str) -> anyhow::Result<Vec<usize>> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    text.split([',', 'x'])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .with_context(|| format!("invalid dimension {d:?} in {text:?}"))
        })
        .collect()
}

/// Reads one tensor from a file: `.npy`, the array `name` of a `.npz`, or
/// the tensor `name` of a safetensors file (or the file's only one).
pub fn read_tensor(path: &Path, name: Option<&str>) -> anyhow::Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.starts_with(netport_tensor::npy::MAGIC) {
        return Tensor::from_npy(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return read_npz(path, &bytes, name);
    }
    let file = netport_safetensors::SafetensorsFile::from_bytes(bytes).map_err(|e| {
        anyhow!(
            "{}: neither a .npy file nor safetensors: {e}",
            path.display()
        )
    })?;
    let t = match name.and_then(|n| file.tensor(n)) {
        Some(t) => t,
        None if file.tensors().len() == 1 => &file.tensors()[0],
        None => bail!(
            "{}: no tensor named {:?} (it holds {})",
            path.display(),
            name.unwrap_or(""),
            file.tensors().len()
        ),
    };
    let view = file
        .view(t)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Tensor::from_view(&view).map_err(|e| anyhow!("{}: {}: {e}", path.display(), t.name))
}

/// Largest `.npz` member inflated for an input.
const MAX_NPZ_MEMBER: u64 = 4 << 30;

/// Reads the array `name` (the member `name.npy`) of a NumPy `.npz` file, or
/// its only array; members may be stored (`np.savez`) or deflated
/// (`np.savez_compressed`).
fn read_npz(path: &Path, bytes: &[u8], name: Option<&str>) -> anyhow::Result<Tensor> {
    let zip = netport_torch::ZipArchive::parse(bytes)
        .map_err(|e| anyhow!("{}: not a readable .npz: {e}", path.display()))?;
    let arrays: Vec<_> = zip
        .entries()
        .iter()
        .filter(|e| e.name.ends_with(".npy"))
        .collect();
    let wanted = name.map(|n| format!("{n}.npy"));
    let entry = match wanted
        .as_ref()
        .and_then(|w| arrays.iter().find(|e| e.name == *w))
    {
        Some(e) => *e,
        None if arrays.len() == 1 => arrays[0],
        None => bail!(
            "{}: no array named {:?} (it holds {})",
            path.display(),
            name.unwrap_or(""),
            arrays
                .iter()
                .map(|e| e.name.trim_end_matches(".npy"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let member = entry
        .bytes(bytes, MAX_NPZ_MEMBER)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Tensor::from_npy(&member).map_err(|e| anyhow!("{}: {}: {e}", path.display(), entry.name))
}

/// A small deterministic generator (splitmix64) for --random.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_tensor(spec: &InputSpec, shape: &[usize], rng: &mut Rng) -> anyhow::Result<Tensor> {
    let dtype = spec.dtype.unwrap_or(DType::Float32);
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|_| {
            if dtype.is_floating_point() {
                rng.unit() * 2.0 - 1.0
            } else if dtype == DType::Bool {
                (rng.next() & 1) as f64
            } else {
                (rng.next() % 10) as f64
            }
        })
        .collect();
    let data = Data::from_f64(dtype, &vals)
        .ok_or_else(|| anyhow!("input {}: dtype {dtype} cannot be made random", spec.name))?;
    Tensor::new(shape.to_vec(), data).map_err(|e| anyhow!("input {}: {e}", spec.name))
}

/// The named inputs for a plan, from files and/or random values.
pub fn gather_inputs(plan: &Plan, args: &InputArgs) -> anyhow::Result<Vec<(String, Tensor)>> {
    let specs: Vec<&InputSpec> = plan.inputs().collect();
    let mut given: Vec<(String, Tensor)> = Vec::new();
    let mut positional = 0usize;
    for item in &args.inputs {
        let (name, file) = match item.split_once('=') {
            Some((n, f)) if !Path::new(item).exists() => (n.to_string(), f.to_string()),
            _ => {
                let spec = specs.get(positional).ok_or_else(|| {
                    anyhow!("--input {item}: the model has only {} inputs", specs.len())
                })?;
                positional += 1;
                (spec.name.clone(), item.clone())
            }
        };
        if !specs.iter().any(|s| s.name == name) {
            bail!(
                "--input {item}: the model has no input {name:?} (its inputs: {})",
                specs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let t = read_tensor(Path::new(&file), Some(&name))?;
        given.push((name, t));
    }
    let mut shapes = Vec::new();
    for s in &args.input_shapes {
        let (n, d) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--input-shape {s:?}: expected NAME=DIMS"))?;
        shapes.push((n.to_string(), parse_dims(d)?));
    }
    let mut rng = Rng(args.seed);
    for spec in specs {
        if given.iter().any(|(n, _)| n == &spec.name) {
            continue;
        }
        if !args.random {
            bail!(
                "input {:?} is not given: pass --input {}=FILE.npy, or --random",
                spec.name,
                spec.name
            );
        }
        let shape = match shapes.iter().find(|(n, _)| n == &spec.name) {
            Some((_, s)) => s.clone(),
            None => {
                let dims = spec.shape.as_ref().ok_or_else(|| {
                    anyhow!(
                        "input {:?} declares no shape: give --input-shape {}=DIMS",
                        spec.name,
                        spec.name
                    )
                })?;
                dims.iter()
                    .map(|d| match d {
                        InputDim::Fixed(n) => Ok(*n),
                        InputDim::Symbolic(p) => Err(anyhow!(
                            "input {:?} has the symbolic dim {p:?}: give --input-shape {}=DIMS",
                            spec.name,
                            spec.name
                        )),
                        InputDim::Unknown => Err(anyhow!(
                            "input {:?} has an unknown dim: give --input-shape {}=DIMS",
                            spec.name,
                            spec.name
                        )),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            }
        };
        given.push((spec.name.clone(), random_tensor(spec, &shape, &mut rng)?));
    }
    Ok(given)
}

/// A file name for an output: the name with path separators and other
/// awkward characters replaced.
pub fn output_file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.');
    format!("{}.npy", if s.is_empty() { "output" } else { s })
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `netport run`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let (plan, kind) = load(&args.model, args.init.as_deref(), args.threads)?;
    let load_ms = ms(start.elapsed());
    let inputs = gather_inputs(&plan, &args.inputs)?;
    let outputs = plan
        .run(&inputs)
        .map_err(|e| anyhow!("{}: {e}", args.model.display()))?;
    let timing = match args.time {
        Some(n) if n > 0 => {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                plan.run(&inputs)
                    .map_err(|e| anyhow!("{}: {e}", args.model.display()))?;
                times.push(ms(t.elapsed()));
            }
            times.sort_by(|a, b| a.total_cmp(b));
            Some(Timing {
                runs: n,
                median_ms: times[n / 2],
                min_ms: times[0],
                max_ms: times[n - 1],
            })
        }
        _ => None,
    };
    let mut summaries: Vec<TensorSummary> = Vec::new();
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    for (name, t) in &outputs {
        let mut s = TensorSummary::of(name, t);
        if let Some(dir) = &args.output_dir {
            let path = dir.join(output_file_name(name));
            let bytes = t.to_npy().map_err(|e| anyhow!("output {name:?}: {e}"))?;
            let mut f = netport_io::AtomicFile::create(&path)?;
            std::io::Write::write_all(&mut f, &bytes)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            f.finish()?.commit()?;
            s.file = Some(path.display().to_string());
        }
        summaries.push(s);
    }
    let in_summaries: Vec<TensorSummary> = inputs
        .iter()
        .map(|(n, t)| TensorSummary::of(n, t))
        .collect();
    let timing_line = timing.as_ref().map(|t| {
        format!(
            "{} runs: median {:.2} ms, min {:.2} ms, max {:.2} ms",
            t.runs, t.median_ms, t.min_ms, t.max_ms
        )
    });
    emit(
        args.json,
        || RunJson {
            model: args.model.display().to_string(),
            format: kind.as_str(),
            load_ms,
            inputs: &in_summaries,
            outputs: &summaries,
            timing,
        },
        || {
            let mut t = String::new();
            let _ = writeln!(
                t,
                "{} ({}), loaded in {load_ms:.1} ms",
                args.model.display(),
                kind.as_str()
            );
            for s in &in_summaries {
                let _ = writeln!(t, "input  {}", s.line());
            }
            for s in &summaries {
                let _ = writeln!(t, "output {}", s.line());
            }
            if let Some(tm) = &timing_line {
                let _ = writeln!(t, "{tm}");
            }
            t
        },
    )?;
    Ok(Outcome::Ok)
}
