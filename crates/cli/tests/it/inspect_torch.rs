//! `netport inspect` on the committed PyTorch fixtures (made by real torch,
//! testdata/make_torch_fixtures.py): for every fixture with an
//! `.expected.json`, the format, pickle protocol and every tensor's path,
//! dtype, shape, strides, offset, device, storage key and requires_grad agree
//! with what torch recorded; training-checkpoint values are shown; broken
//! files give one line and exit code 2.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;

fn fixtures() -> Vec<(std::path::PathBuf, Value)> {
    let dir = testdata("torch");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            let expected = read_json(&path);
            let file = dir.join(expected["file"].as_str().unwrap_or(stem));
            out.push((file, expected));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 10,
        "expected the torch fixtures, found {}",
        out.len()
    );
    out
}

#[test]
fn every_fixture_agrees_with_what_torch_recorded() {
    for (file, expected) in fixtures() {
        let what = file.display().to_string();
        let ours = inspect_json(&[&file]);
        assert_eq!(ours["format"], expected["format"], "{what}: format");
        if let Some(p) = expected["pickle_protocol"].as_u64() {
            let first = &ours["details"]["pickles"][0];
            assert_eq!(
                first["protocol"].as_u64(),
                Some(p),
                "{what}: pickle protocol"
            );
        }
        let ours_tensors: BTreeMap<String, &Value> = ours["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["path"].as_str().unwrap().to_string(), t))
            .collect();
        // TorchScript constants (constants.pkl) are listed separately.
        let tensors: Vec<&Value> = ["tensors", "constants"]
            .iter()
            .filter_map(|k| expected[*k].as_array())
            .flatten()
            .collect();
        assert!(!tensors.is_empty(), "{what}: no expected tensors");
        for e in tensors {
            let path = e["path"].as_str().unwrap();
            let t = ours_tensors
                .get(path)
                .unwrap_or_else(|| panic!("{what}: tensor {path:?} missing"));
            assert_eq!(t["dtype"], e["dtype"], "{what}: {path} dtype");
            assert_eq!(t["shape"], e["shape"], "{what}: {path} shape");
            if !e["stride"].is_null() {
                assert_eq!(t["strides"], e["stride"], "{what}: {path} strides");
            }
            if !e["storage_offset"].is_null() {
                assert_eq!(
                    t["storage_offset"], e["storage_offset"],
                    "{what}: {path} offset"
                );
            }
            if !e["device"].is_null() {
                assert_eq!(t["device"], e["device"], "{what}: {path} device");
            }
            if !e["storage_key"].is_null() {
                assert_eq!(
                    t["storage_key"], e["storage_key"],
                    "{what}: {path} storage key"
                );
            }
            if let Some(rg) = e["requires_grad"].as_bool() {
                assert_eq!(
                    t["requires_grad"].as_bool(),
                    Some(rg),
                    "{what}: {path} requires_grad"
                );
            }
        }
    }
}

#[test]
fn cuda_tagged_checkpoint_reports_its_devices() {
    let ours = inspect_json(&[&testdata("torch/cuda_tagged.pt")]);
    assert_eq!(ours["devices"], serde_json::json!({"cuda:0": 9}));
    let out = netport([
        "inspect".as_ref(),
        testdata("torch/cuda_tagged.pt").as_os_str(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("devices: 9 storages on cuda:0"), "{text}");
}

#[test]
fn training_checkpoint_shows_values_and_tree() {
    let path = testdata("torch/training.pt");
    let ours = inspect_json(&[&path]);
    let values: BTreeMap<&str, &str> = ours["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["path"].as_str().unwrap(), v["repr"].as_str().unwrap()))
        .collect();
    assert_eq!(values["epoch"], "7");
    assert_eq!(values["args.lr"], "0.001");
    assert_eq!(
        values["args"],
        "argparse.Namespace(lr=0.001, batch_size=32, name='run1')"
    );
    assert_eq!(values["best_acc"], "np.float64(0.93)");
    assert!(
        ours["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["path"] == "optimizer.state.0.exp_avg")
    );

    let out = netport(["inspect".as_ref(), "--tree".as_ref(), path.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The state_dict keys contain dots; the tree keeps them as one key.
    for needle in [
        "  (root): (6 entries)",
        "    model: (9 entries)",
        "      conv.weight: float32 [8, 3, 3, 3] cpu",
        "        0: (3 entries)",
        "          exp_avg: float32 [8, 3, 3, 3] cpu",
        "    epoch: = 7",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn shared_storages_are_listed() {
    let ours = inspect_json(&[&testdata("torch/dtypes.pt")]);
    let shared = ours["shared_storages"].as_array().unwrap();
    assert!(
        shared.iter().any(|s| {
            let t = s["tensors"].as_array().unwrap();
            t.contains(&Value::from("shared_a")) && t.contains(&Value::from("shared_b"))
        }),
        "{shared:?}"
    );
}

#[test]
fn broken_files_fail_with_one_clear_line() {
    let dir = testdata("torch/broken");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".md") || name.ends_with(".json") {
            continue;
        }
        let out = netport(["inspect".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A pickle bomb inside a valid zip may open (its memo graph is
        // small); everything else must be refused with exit code 2.
        if out.status.success() {
            assert!(name.contains("bomb"), "{name} was accepted");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(&name),
            "{name}: error does not name the file: {stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} broken fixtures");
}

#[test]
fn specific_broken_files_say_what_they_are() {
    let cases = [
        ("broken/git_lfs_pointer.pth", "git lfs pull"),
        ("broken/html_error_page.pt", "HTML page"),
        ("broken/empty.pt", "empty"),
    ];
    for (rel, expected) in cases {
        let path = testdata("torch").join(rel);
        if !path.exists() {
            panic!("fixture {rel} is missing");
        }
        let out = netport(["inspect".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rel}");
        assert!(stderr.contains(expected), "{rel}: {stderr}");
    }
}

#[test]
fn per_dtype_totals_have_one_shape_in_every_format() {
    // The same tiny_cnn weights as a checkpoint, safetensors, ONNX and a
    // Caffe2 pair: the float32 group is the same object in all four (the
    // checkpoint also has BatchNorm's int64 num_batches_tracked).
    let dir = tempfile::tempdir().unwrap();
    let pt = testdata("torch/protocol2.pt");
    let st = dir.path().join("m.safetensors");
    let out = netport(["convert".as_ref(), pt.as_os_str(), st.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let torch = inspect_json(&[&pt]);
    let safetensors = inspect_json(&[&st]);
    let onnx = inspect_json(&[&testdata("onnx/tiny_cnn.onnx")]);
    let caffe2 = inspect_json(&[&testdata("caffe2/tiny")]);
    assert_eq!(safetensors["format"], "safetensors");
    let float32 = serde_json::json!({
        "tensors": 8, "elements": 1282, "bytes": 5128, "unsized_tensors": 0
    });
    for (what, by) in [
        ("torch", &torch["totals"]["by_dtype"]),
        ("safetensors", &safetensors["totals"]["by_dtype"]),
        ("onnx", &onnx["initializers"]["by_dtype"]),
        ("caffe2 params", &caffe2["params"]["by_dtype"]),
        ("caffe2 init fills", &caffe2["init_net"]["fill_totals"]),
    ] {
        assert_eq!(by["float32"], float32, "{what}: {by}");
    }
    let int64 = serde_json::json!({
        "tensors": 1, "elements": 1, "bytes": 8, "unsized_tensors": 0
    });
    assert_eq!(torch["totals"]["by_dtype"]["int64"], int64);
    assert_eq!(
        safetensors["totals"]["by_dtype"],
        torch["totals"]["by_dtype"]
    );
    assert_eq!(safetensors["totals"]["tensors"], torch["totals"]["tensors"]);
    assert_eq!(
        safetensors["totals"]["parameters"],
        torch["totals"]["parameters"]
    );
}
