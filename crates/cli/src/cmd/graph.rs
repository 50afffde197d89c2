//! `netport graph MODEL -o OUT.svg|OUT.dot`: a picture of an ONNX model or a
//! Caffe2 net (`netport_graph`), as SVG drawn by netport or as DOT for
//! Graphviz, with scopes folded on request. The output is written
//! atomically; the same model gives the same bytes.

use crate::detect::{Detected, detect};
use crate::exit::Outcome;
use crate::global::Global;
use crate::output::emit;
use netport_caffe2::Caffe2Model;
use netport_graph::{Collapse, Picture};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Draw an ONNX model or a Caffe2 net as SVG or DOT.
///
/// One box per op (type in bold, name, key attributes, the initializers it
/// reads as "W ⟨64×3×7×7⟩" lines), coloured by op family as Netron does;
/// graph inputs and outputs as rounded boxes; edges labelled with dtype and
/// shape where known; If/Loop/Scan bodies as nested clusters. MODEL is an
/// ONNX file, a Caffe2 NetDef (binary or text), a folder with a Caffe2
/// init_net.pb + predict_net.pb pair, or the two files of a pair in either
/// order; the format comes from the bytes. The output format comes from the
/// name of OUT: .svg (laid out by netport, no Graphviz needed) or .dot.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model file, or a Caffe2 pair (a folder, or two files).
    #[arg(required = true, num_args = 1..=2, value_name = "MODEL")]
    pub paths: Vec<PathBuf>,
    /// The picture to write: OUT.svg or OUT.dot.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// For ONNX models: label edges with the types and shapes that shape
    /// inference finds (as `netport check --shapes`), not only the declared
    /// ones.
    #[arg(long)]
    pub shapes: bool,
    /// Fold every name scope at depth N (1: /layer1, 2: /layer1/layer1.0)
    /// that holds more than one op into one box with its op count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: Option<u32>,
    /// Fold the ops whose names are in SCOPE (torch's /layer1/layer1.0/...
    /// names) into one box with its op count; repeatable.
    #[arg(long, value_name = "SCOPE")]
    pub collapse: Vec<String>,
    /// Print one JSON document (field names documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// What `netport graph` reports.
#[derive(Serialize)]
struct GraphJson {
    output: String,
    format: &'static str,
    model_format: &'static str,
    ops: usize,
    boxes: usize,
    edges: usize,
    clusters: usize,
    bytes: usize,
}

/// Runs `netport graph`.
pub fn run(args: &Args, _global: &Global) -> anyhow::Result<Outcome> {
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let svg = match ext.as_deref() {
        Some("svg") => true,
        Some("dot" | "gv") => false,
        _ => anyhow::bail!(
            "{}: the output name must end in .svg or .dot (it says which to write)",
            args.output.display()
        ),
    };
    if let Some(input) = args
        .paths
        .iter()
        .find(|p| netport_io::same_file(p, &args.output))
    {
        anyhow::bail!(
            "{}: the output is the input {}: give another -o",
            args.output.display(),
            input.display()
        );
    }
    let (picture, model_format) = read(args)?;
    let ops = picture.op_count();
    let what = Collapse {
        scopes: args.collapse.clone(),
        depth: args.depth.map(|d| d as usize),
    };
    let picture = if what.is_empty() {
        picture
    } else {
        netport_graph::collapse(&picture, &what)?
    };
    let text = if svg {
        netport_graph::to_svg(&picture)
    } else {
        netport_graph::to_dot(&picture)
    };
    netport_io::write_file(&args.output, text.as_bytes())?;
    let doc = GraphJson {
        output: args.output.display().to_string(),
        format: if svg { "svg" } else { "dot" },
        model_format,
        ops,
        boxes: picture.nodes.len(),
        edges: picture.edges.len(),
        clusters: picture.clusters.len(),
        bytes: text.len(),
    };
    emit(
        args.json,
        || &doc,
        || {
            format!(
                "{}: {} of the {} model: {} ops, {} boxes, {} edges, {} clusters, {} bytes\n",
                doc.output,
                doc.format.to_uppercase(),
                doc.model_format,
                doc.ops,
                doc.boxes,
                doc.edges,
                doc.clusters,
                doc.bytes
            )
        },
    )?;
    Ok(Outcome::Ok)
}

/// The picture of the model the arguments name, and its format's name.
fn read(args: &Args) -> anyhow::Result<(Picture, &'static str)> {
    let caffe2_pair = |model: &Caffe2Model| {
        if args.shapes {
            anyhow::bail!("--shapes applies to ONNX models only, not to a Caffe2 pair");
        }
        Ok((
            netport_graph::caffe2::picture(&model.predict_net, Some(&model.init_net)),
            "Caffe2",
        ))
    };
    match args.paths.as_slice() {
        [dir] if dir.is_dir() => caffe2_pair(&Caffe2Model::load_dir(dir)?),
        [path] => match detect(path)? {
            Detected::Onnx(model) => {
                let options = netport_graph::onnx::Options {
                    shapes: args.shapes,
                };
                Ok((netport_graph::onnx::picture(&model, &options), "ONNX"))
            }
            Detected::Caffe2(net) => {
                if args.shapes {
                    anyhow::bail!("{}: --shapes applies to ONNX models only", path.display());
                }
                Ok((netport_graph::caffe2::picture(&net, None), "Caffe2"))
            }
            Detected::Torch(_) => not_a_graph(path, "a PyTorch checkpoint"),
            Detected::Safetensors(_) => not_a_graph(path, "a safetensors file"),
        },
        [first, second] => caffe2_pair(&Caffe2Model::load_any_order(first, second)?.0),
        _ => unreachable!("clap allows one or two paths"),
    }
}

fn not_a_graph(path: &Path, what: &str) -> anyhow::Result<(Picture, &'static str)> {
    anyhow::bail!(
        "{}: is {what}, which holds tensors but no graph; netport graph draws ONNX models and Caffe2 nets",
        path.display()
    )
}
