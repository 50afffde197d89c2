//! `netport export`: exit codes and messages for inputs that are not a
//! torchvision state_dict (nothing written), and (ignored, with the peer
//! venv) a real resnet18 state_dict exported, reported and checked.

use crate::common::{netport, testdata};

fn refused(input: &str, extra: &[&str], code: i32) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.onnx");
    let mut args = vec![
        "export".into(),
        testdata(input).into_os_string(),
        "-o".into(),
        out.clone().into_os_string(),
    ];
    args.extend(extra.iter().map(Into::into));
    let o = netport(args);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "{input}: {stderr}");
    assert!(o.stdout.is_empty(), "{input}: stdout {:?}", o.stdout);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{input}: files left: {left:?}");
    stderr
}

#[test]
fn a_state_dict_of_another_architecture_is_a_finding_with_the_closest_family() {
    let e = refused("torch/dataparallel.pt", &[], 1);
    assert!(
        e.contains("fits no known architecture; closest: resnet (resnet18)"),
        "{e}"
    );
    assert!(
        e.contains("Unexpected key(s) in state_dict: \"bn.bias\""),
        "{e}"
    );
    let e = refused("torch/dataparallel.pt", &["--arch", "resnet18"], 1);
    assert!(e.contains("does not fit resnet (resnet18)"), "{e}");
    assert!(
        e.contains("Missing key(s) in state_dict: \"conv1.weight\""),
        "{e}"
    );
}

#[test]
fn unreadable_or_non_state_dict_inputs_and_bad_flags_are_errors() {
    let e = refused("torch/malicious/benign_argparse_namespace.pkl", &[], 2);
    assert!(e.starts_with("netport: error: "), "{e}");
    let e = refused("torch/broken/git_lfs_pointer.pth", &[], 2);
    assert!(e.contains("LFS"), "{e}");
    let e = refused("torch/dataparallel.pt", &["--opset", "8"], 2);
    assert!(e.contains("opset 8 is not supported: 9 to"), "{e}");
    let e = refused("torch/dataparallel.pt", &["--arch", "lenet5"], 2);
    assert!(e.contains("unknown architecture 'lenet5'"), "{e}");
    let e = refused("torch/dataparallel.pt", &["--set", "transform_input"], 2);
    assert!(e.contains("expected KEY=VALUE"), "{e}");
    let e = refused("torch/dataparallel.pt", &["--input-size", "64,x"], 2);
    assert!(e.contains("--input-size"), "{e}");
}

/// A resnet18 with a 2-class head made by torch: exported with `--json`,
/// then valid for `netport check --shapes`.
#[test]
#[ignore = "needs NETPORT_PYTHON (torch, torchvision)"]
fn peer_resnet18_exports_and_checks() {
    let python = std::env::var_os("NETPORT_PYTHON").expect("NETPORT_PYTHON is not set");
    let dir = tempfile::tempdir().expect("temp dir");
    let made = std::process::Command::new(python)
        .arg(testdata("peers/torchvision_export.py"))
        .args(["make", dir.path().to_str().unwrap(), "r18:resnet18:2:64:64"])
        .output()
        .expect("run python");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = dir.path().join("r18.onnx");
    let o = netport([
        "export".as_ref(),
        dir.path().join("r18.pt").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
        "--static-batch".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(j["family"], "resnet");
    assert_eq!(j["variant"], "resnet18");
    assert_eq!(j["classes"], 2);
    assert_eq!(j["params"], 11_177_538);
    assert_eq!(j["opset"], 17);
    assert_eq!(
        j["input_shape"],
        serde_json::json!(["1", "3", "224", "224"])
    );
    assert_eq!(j["unused_tensors"], 20);
    let c = netport(["check".as_ref(), "--shapes".as_ref(), out.as_os_str()]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
}
