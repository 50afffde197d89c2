//! What is timed: every command of both parts, how it is labelled and how
//! it is started.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    // inspect
    Import,
    /// The floor: the zip directory listed and `data.pkl` read, by `unzip`.
    Floor,
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
    // check
    CheckNetport,
    CheckOnnx,
    // caffe2
    /// cp of netport's init net (the output's size).
    C2Cp,
    /// netport convert MODEL.onnx OUT --to caffe2.
    C2Netport,
    /// Caffe2Backend.onnx_graph_to_caffe2_net + SerializeToString + write.
    C2Backend,
    /// cp of netport's ONNX output of the way back.
    C2BackCp,
    /// netport convert PAIR OUT.onnx.
    C2Back,
    // exec
    /// `netport run --threads 1 --time N` (the ONNX model or its Caffe2 pair).
    ExecNetport,
    /// onnxruntime with one intra-op thread.
    ExecOrt,
    /// The real Caffe2 workspace (Python 3.7 venv).
    ExecCaffe2,
    // export
    /// cp of the checkpoint.
    ExportCp,
    /// netport export CKPT -o OUT.onnx.
    ExportNetport,
    /// import torch, torchvision; load_state_dict; torch.onnx.export.
    ExportTorch,
}

impl Kind {
    pub(super) fn part(self) -> Part {
        match self {
            Kind::Import | Kind::Floor | Kind::Netport | Kind::Load | Kind::LoadMmap => {
                Part::Inspect
            }
            Kind::Cp
            | Kind::CpSync
            | Kind::MapLocation
            | Kind::ResaveTorch
            | Kind::Convert
            | Kind::ResaveSafetensors => Part::Rewrite,
            Kind::CheckNetport | Kind::CheckOnnx => Part::Check,
            Kind::C2Cp | Kind::C2Netport | Kind::C2Backend | Kind::C2BackCp | Kind::C2Back => {
                Part::Caffe2
            }
            Kind::ExecNetport | Kind::ExecOrt | Kind::ExecCaffe2 => Part::Exec,
            Kind::ExportCp | Kind::ExportNetport | Kind::ExportTorch => Part::Export,
        }
    }

    /// Whether the private memory of the process is sampled: the rewrite
    /// commands that run as one process (not `sh -c 'cp … && sync …'`).
    pub(super) fn samples_private(self) -> bool {
        matches!(self.part(), Part::Rewrite | Part::Caffe2 | Part::Export) && self != Kind::CpSync
    }

    /// The file a rewrite command writes, in the output folder.
    pub(super) fn output(self) -> Option<&'static str> {
        match self {
            Kind::Import
            | Kind::Floor
            | Kind::Netport
            | Kind::Load
            | Kind::LoadMmap
            | Kind::CheckNetport
            | Kind::CheckOnnx
            | Kind::ExecNetport
            | Kind::ExecOrt
            | Kind::ExecCaffe2 => None,
            Kind::Cp | Kind::CpSync => Some("cp.pt"),
            Kind::MapLocation => Some("map-location.pt"),
            Kind::ResaveTorch => Some("torch-save.pt"),
            Kind::Convert => Some("convert.safetensors"),
            Kind::ResaveSafetensors => Some("save-file.safetensors"),
            Kind::C2Cp => Some("cp-init_net.pb"),
            Kind::C2Netport => Some("netport-caffe2"),
            Kind::C2Backend => Some("backend-caffe2"),
            Kind::C2BackCp => Some("cp-back.onnx"),
            Kind::C2Back => Some("netport-back.onnx"),
            Kind::ExportCp => Some("cp-resnet50.pt"),
            Kind::ExportNetport => Some("netport-resnet50.onnx"),
            Kind::ExportTorch => Some("torch-resnet50.onnx"),
        }
    }
}

pub(super) struct Spec {
    pub(super) kind: Kind,
    /// The checkpoint it reads (none for `import torch`).
    pub(super) file: Option<&'static str>,
}

pub(super) struct Ctx {
    pub(super) python: PathBuf,
    /// Where the caffe2 part's model and netport's reference outputs are.
    pub(super) caffe2_dir: PathBuf,
    pub(super) netport: Option<PathBuf>,
    pub(super) dir: PathBuf,
    /// Where the export part's checkpoint is.
    pub(super) export_dir: PathBuf,
    /// Where the check part's models are.
    pub(super) onnx_dir: PathBuf,
    /// Where the rewrite commands write.
    pub(super) out_dir: PathBuf,
    /// The exec part's model, input and Caffe2 pair.
    pub(super) exec_dir: PathBuf,
    /// The Caffe2 venv's python (the caffe2 part, and the exec part when
    /// the venv is built).
    pub(super) caffe2_python: Option<PathBuf>,
}

/// Every command, in the order of a round and of the tables.
pub(super) fn specs(
    parts: &[Part],
    with_netport: bool,
    plan: Option<&RewritePlan>,
    with_caffe2: bool,
) -> Vec<Spec> {
    let mut specs = Vec::new();
    if parts.contains(&Part::Inspect) {
        specs.push(Spec {
            kind: Kind::Import,
            file: None,
        });
        for (name, _) in FILES {
            let kinds: &[Kind] = match (with_netport, has_unzip()) {
                (true, true) => &[Kind::Floor, Kind::Netport, Kind::Load, Kind::LoadMmap],
                (true, false) => &[Kind::Netport, Kind::Load, Kind::LoadMmap],
                (false, _) => &[Kind::Load, Kind::LoadMmap],
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
    if parts.contains(&Part::Caffe2) {
        let mut push = |kind, file| {
            specs.push(Spec {
                kind,
                file: Some(file),
            })
        };
        push(Kind::C2Cp, C2_PAIR_INIT);
        if with_netport {
            push(Kind::C2Netport, C2_VGG16);
        }
        push(Kind::C2Backend, C2_VGG16);
        push(Kind::C2BackCp, C2_BACK);
        if with_netport {
            push(Kind::C2Back, C2_PAIR);
        }
    }
    if parts.contains(&Part::Check) {
        for (name, _) in CHECK_FILES {
            if with_netport {
                specs.push(Spec {
                    kind: Kind::CheckNetport,
                    file: Some(name),
                });
            }
            specs.push(Spec {
                kind: Kind::CheckOnnx,
                file: Some(name),
            });
        }
    }
    if parts.contains(&Part::Exec) {
        exec_specs(with_netport, with_caffe2, &mut specs);
    }
    if parts.contains(&Part::Export) {
        let kinds: &[Kind] = if with_netport {
            &[Kind::ExportCp, Kind::ExportNetport, Kind::ExportTorch]
        } else {
            &[Kind::ExportCp, Kind::ExportTorch]
        };
        for &kind in kinds {
            specs.push(Spec {
                kind,
                file: Some(EXPORT_CKPT),
            });
        }
    }
    specs
}

/// Lists the zip directory and reads `data.pkl` (whatever the archive
/// name), discarding both: what any reader of a checkpoint must do at least.
const FLOOR_SCRIPT: &str =
    "unzip -l \"$1\" > /dev/null && unzip -p \"$1\" '*/data.pkl' > /dev/null";

/// Whether `unzip` runs here (the floor is timed only then).
fn has_unzip() -> bool {
    Command::new("unzip")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Spec {
    /// Whether the command prints the duration of its torch.load call (the
    /// rewrite peers: of the load and the save together).
    pub(super) fn reports_call(&self) -> bool {
        matches!(
            self.kind,
            Kind::Load
                | Kind::LoadMmap
                | Kind::ResaveTorch
                | Kind::ResaveSafetensors
                | Kind::CheckOnnx
                | Kind::C2Backend
                | Kind::ExportTorch
        )
    }

    pub(super) fn output(&self, ctx: &Ctx) -> Option<PathBuf> {
        self.kind.output().map(|name| ctx.out_dir.join(name))
    }

    /// The command as a reader would type it.
    pub(super) fn label(&self) -> String {
        let file = self.file.unwrap_or("");
        let out = self.kind.output().unwrap_or("");
        match self.kind {
            Kind::Import => format!("python -c \"{IMPORT_CODE}\""),
            Kind::Floor => {
                format!("unzip -l {file} > /dev/null && unzip -p {file} '*/data.pkl' > /dev/null")
            }
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
            Kind::CheckNetport => format!("netport check --shapes {file} > /dev/null"),
            Kind::CheckOnnx => {
                format!("python -c \"onnx.checker.check_model('{file}', full_check=True)\"")
            }
            Kind::C2Cp | Kind::C2BackCp => format!("cp {file} {out}"),
            Kind::C2Netport => format!("netport convert {file} {out} --to caffe2 > /dev/null"),
            Kind::C2Backend => format!(
                "python3.7 -c \"Caffe2Backend.onnx_graph_to_caffe2_net(onnx.load('{file}')) + \
                 SerializeToString + write {out}/\""
            ),
            Kind::C2Back => {
                format!("netport convert {file} {out} --input-shape {C2_INPUT_SHAPE} > /dev/null")
            }
            Kind::ExecNetport | Kind::ExecOrt | Kind::ExecCaffe2 => exec_label(self),
            Kind::ExportCp => format!("cp {file} {out}"),
            Kind::ExportNetport => {
                format!("netport export {file} -o {out} --opset 17 > /dev/null")
            }
            Kind::ExportTorch => format!(
                "python -c \"import torch, torchvision; resnet50().load_state_dict(torch.load('{file}')); \
                 torch.onnx.export(…, '{out}', dynamo=False, opset_version=17)\""
            ),
        }
    }

    pub(super) fn command(&self, ctx: &Ctx) -> Command {
        if self.kind.part() == Part::Exec {
            return exec_command(self, ctx);
        }
        let dir = match self.kind.part() {
            Part::Check => &ctx.onnx_dir,
            Part::Caffe2 => &ctx.caffe2_dir,
            Part::Export => &ctx.export_dir,
            Part::Inspect | Part::Rewrite | Part::Exec => &ctx.dir,
        };
        let input = self.file.map(|f| dir.join(f));
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
            Kind::CheckNetport => {
                let mut cmd = netport();
                cmd.args(["check", "--shapes"]).arg(input);
                cmd
            }
            Kind::CheckOnnx => python(ONNX_CHECK_CODE),
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
            Kind::C2Backend => {
                let mut cmd = Command::new(
                    ctx.caffe2_python
                        .as_deref()
                        .expect("the caffe2 part has its venv"),
                );
                util::python_env(&mut cmd).args(["-c", BACKEND_CODE]);
                cmd.arg(input).arg(output);
                cmd
            }
            Kind::C2Netport => {
                let mut cmd = netport();
                cmd.arg("convert")
                    .arg(input)
                    .arg(output)
                    .args(["--to", "caffe2"]);
                cmd
            }
            Kind::C2Back => {
                let mut cmd = netport();
                cmd.arg("convert")
                    .arg(input)
                    .arg(output)
                    .args(["--input-shape", C2_INPUT_SHAPE]);
                cmd
            }
            Kind::ExportTorch => python(EXPORT_TORCH_CODE),
            Kind::ExportNetport => {
                let mut cmd = netport();
                cmd.args(export_args(input, output));
                cmd
            }
            Kind::Cp | Kind::C2Cp | Kind::C2BackCp | Kind::ExportCp => {
                let mut cmd = Command::new("cp");
                cmd.arg(input).arg(output);
                cmd
            }
            Kind::Floor => {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", FLOOR_SCRIPT, "sh"]).arg(input);
                cmd
            }
            Kind::ExecNetport | Kind::ExecOrt | Kind::ExecCaffe2 => {
                unreachable!("exec commands are made by exec_command")
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
