//! The seed's whole flow with netport alone, on the committed small model
//! (`testdata/torch/seed_shufflenet.prm`: a torchvision CNN with a 2-class
//! head, saved by real torch with `pickle_protocol=4`, which today's
//! `torch.load(weights_only=True)` refuses): export to ONNX, check, convert
//! to a Caffe2 pair, and verify both against the output torch computed for
//! the committed input. With the Caffe2 venv, the pair also runs in the real
//! Caffe2 workspace.

use crate::common::{netport, testdata};
use std::path::Path;

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exports and converts the seed model into `dir`, returning the ONNX file
/// and the Caffe2 folder.
fn export_and_convert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ckpt = testdata("torch/seed_shufflenet.prm");
    let onnx = dir.join("seed.onnx");
    let caffe2 = dir.join("seed_caffe2");
    let out = netport([
        "export".as_ref(),
        ckpt.as_os_str(),
        "-o".as_ref(),
        onnx.as_os_str(),
        "--input-size".as_ref(),
        "112,112".as_ref(),
        "--json".as_ref(),
    ]);
    ok(&out, "export");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["family"], "shufflenet_v2", "{report}");
    assert_eq!(report["classes"], 2, "{report}");
    let out = netport(["check".as_ref(), onnx.as_os_str(), "--shapes".as_ref()]);
    ok(&out, "check --shapes");
    let out = netport([
        "convert".as_ref(),
        onnx.as_os_str(),
        caffe2.as_os_str(),
        "--to".as_ref(),
        "caffe2".as_ref(),
    ]);
    ok(&out, "convert --to caffe2");
    (onnx, caffe2)
}

#[test]
fn checkpoint_to_onnx_to_caffe2_agrees_with_torch() {
    // The checkpoint is the seed's: protocol 4, refused by weights_only.
    let scan = netport([
        "scan".as_ref(),
        testdata("torch/seed_shufflenet.prm").as_os_str(),
    ]);
    assert_eq!(scan.status.code(), Some(1), "scan finds the FRAME opcode");
    assert!(String::from_utf8_lossy(&scan.stdout).contains("FRAME"));

    let dir = tempfile::tempdir().unwrap();
    let (onnx, caffe2) = export_and_convert(dir.path());
    for name in ["init_net.pb", "predict_net.pb"] {
        assert!(caffe2.join(name).is_file(), "{name} written");
    }
    let input = format!(
        "input={}",
        testdata("torch/seed_shufflenet.input.npy").display()
    );
    let reference = format!(
        "output={}",
        testdata("torch/seed_shufflenet.output.npy").display()
    );
    let out = netport([
        "verify".as_ref(),
        onnx.as_os_str(),
        caffe2.as_os_str(),
        "--input".as_ref(),
        input.as_ref(),
        "--reference".as_ref(),
        reference.as_ref(),
        "--rtol".as_ref(),
        "1e-4".as_ref(),
        "--json".as_ref(),
    ]);
    ok(&out, "verify");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agree"], true, "{v}");
    let pairs: Vec<&str> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["between"].as_str().unwrap())
        .collect();
    assert_eq!(pairs, ["A:B", "A:reference", "B:reference"], "{v}");

    // A reference that is not torch's output must not agree.
    let wrong = dir.path().join("wrong.npy");
    std::fs::write(&wrong, zero_output_npy()).unwrap();
    let out = netport([
        "verify".as_ref(),
        onnx.as_os_str(),
        "--input".as_ref(),
        input.as_ref(),
        "--reference".as_ref(),
        format!("output={}", wrong.display()).as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1), "a wrong reference differs");
}

/// torch's `[1, 2]` float32 output file with its two values set to zero
/// (the data are the last 8 bytes of the `.npy`).
fn zero_output_npy() -> Vec<u8> {
    let mut bytes = std::fs::read(testdata("torch/seed_shufflenet.output.npy")).unwrap();
    let n = bytes.len();
    bytes[n - 8..].fill(0);
    bytes
}

/// The Caffe2 pair netport wrote runs in the real Caffe2 workspace (Python
/// 3.7, torch 1.4.0) and equals torch's output.
#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON"]
fn the_caffe2_pair_runs_in_the_real_caffe2() {
    let python = std::env::var_os("NETPORT_CAFFE2_PYTHON").expect(
        "NETPORT_CAFFE2_PYTHON must name the Python of the Caffe2 venv (`cargo xtask ci` builds it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let (_, caffe2) = export_and_convert(dir.path());
    let script = r#"
import sys
import onnx  # before torch: see testdata/peers/caffe2
import numpy as np
from caffe2.python import workspace
from caffe2.proto import caffe2_pb2
folder, x, ref = sys.argv[1:4]
nets = []
for name in ("init_net.pb", "predict_net.pb"):
    net = caffe2_pb2.NetDef()
    net.ParseFromString(open(folder + "/" + name, "rb").read())
    nets.append(net)
workspace.RunNetOnce(nets[0])
workspace.FeedBlob("input", np.load(x))
workspace.CreateNet(nets[1])
workspace.RunNet(nets[1].name)
y = workspace.FetchBlob("output")
np.testing.assert_allclose(y, np.load(ref), rtol=1e-4, atol=1e-5)
print("caffe2 agrees", np.abs(y - np.load(ref)).max())
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&caffe2)
        .arg(testdata("torch/seed_shufflenet.input.npy"))
        .arg(testdata("torch/seed_shufflenet.output.npy"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "real Caffe2: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("caffe2 agrees"));
}

/// The seed's input packed in a `.npz` (stored members, as `np.savez`
/// writes them) runs as the `.npy` does, picked by name among two arrays.
#[test]
fn run_reads_npz_inputs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (onnx, _) = export_and_convert(dir.path());
    let npy = std::fs::read(testdata("torch/seed_shufflenet.input.npy")).unwrap();
    let npz = dir.path().join("inputs.npz");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&npz).unwrap());
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for name in ["other.npy", "input.npy"] {
            z.start_file(name, stored).unwrap();
            z.write_all(&npy).unwrap();
        }
        z.finish().unwrap();
    }
    let out_npy = dir.path().join("npy");
    let out_npz = dir.path().join("npz");
    for (arg, out) in [
        (
            format!(
                "input={}",
                testdata("torch/seed_shufflenet.input.npy").display()
            ),
            &out_npy,
        ),
        (format!("input={}", npz.display()), &out_npz),
    ] {
        let r = netport([
            "run".as_ref(),
            onnx.as_os_str(),
            "--input".as_ref(),
            arg.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        ok(&r, "run");
    }
    let a = std::fs::read(out_npy.join("output.npy")).unwrap();
    let b = std::fs::read(out_npz.join("output.npy")).unwrap();
    assert_eq!(a, b, "the same input gives the same output");
    // Two arrays and none named as the input: an error naming them.
    let two = dir.path().join("two.npz");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&two).unwrap());
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for name in ["other.npy", "more.npy"] {
            z.start_file(name, stored).unwrap();
            z.write_all(&npy).unwrap();
        }
        z.finish().unwrap();
    }
    let r = netport([
        "run".as_ref(),
        onnx.as_os_str(),
        "--input".as_ref(),
        format!("input={}", two.display()).as_ref(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("no array named \"input\" (it holds other, more)"),
        "{err}"
    );
}
