//! Interop: the seed's checkpoint (tagged `cuda:0`, `pickle_protocol=4`)
//! after `netport map-location --to cpu`: the real `torch.load(f)` (torch
//! 2.15, weights_only=True by default) still refuses it, as the note on
//! stderr says, and loads it after `--fix`, with the same tensors as the
//! source, on the CPU. Run by `cargo xtask ci`.

use crate::common::*;

const SNIPPET: &str = r#"
import json, sys, torch
plain, fixed, ref = sys.argv[1:4]
try:
    torch.load(plain)
    plain_loads, plain_error = True, ""
except Exception as e:
    plain_loads, plain_error = False, str(e)
out = torch.load(fixed)
src = torch.load(ref, weights_only=False)
assert list(out) == list(src), (list(out), list(src))
for k in src:
    assert out[k].device.type == "cpu", k
    assert out[k].dtype == src[k].dtype and torch.equal(out[k], src[k]), k
print(json.dumps({"plain_loads": plain_loads, "plain_error": plain_error, "tensors": len(out)}))
"#;

#[test]
#[ignore = "interop: needs the Python peers (cargo xtask ci)"]
fn torch_loads_the_fixed_output_and_refuses_the_plain_one() {
    let python = std::env::var("NETPORT_PYTHON")
        .expect("NETPORT_PYTHON is not set: interop tests run through `cargo xtask ci`");
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("torch/protocol4.pt");
    let cuda = dir.path().join("cuda_p4.pt");
    let plain = dir.path().join("plain.pt");
    let fixed = dir.path().join("fixed.pt");
    let s = |p: &std::path::Path| p.display().to_string();
    for (args, note) in [
        (
            vec![
                "map-location".into(),
                s(&src),
                "-o".into(),
                s(&cuda),
                "--map".into(),
                "cpu=cuda:0".into(),
            ],
            true,
        ),
        (
            vec![
                "map-location".into(),
                s(&cuda),
                "-o".into(),
                s(&plain),
                "--to".into(),
                "cpu".into(),
            ],
            true,
        ),
        (
            vec![
                "map-location".into(),
                s(&cuda),
                "-o".into(),
                s(&fixed),
                "--to".into(),
                "cpu".into(),
                "--fix".into(),
            ],
            false,
        ),
    ] {
        let out = netport(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr.contains("netport fix"), note, "{args:?}: {stderr}");
    }
    let run = std::process::Command::new(&python)
        .args(["-c", SNIPPET])
        .args([&plain, &fixed, &src])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "torch disagrees: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let verdict: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("the snippet prints JSON");
    assert_eq!(verdict["plain_loads"], false, "{verdict}");
    let error = verdict["plain_error"].as_str().unwrap();
    assert!(
        error.contains("Weights only load failed") && error.contains("149"),
        "{error}"
    );
    assert_eq!(verdict["tensors"], 9);
}
