//! `netport scan` on the committed malicious and benign fixtures: the verdict
//! of each file matches the class the fixture script assigned, the predicted
//! weights_only error matches what real torch printed, and the exit codes are
//! 0 (all safe), 1 (findings), 2 (cannot scan).

use crate::common::*;
use serde_json::Value;

fn scan_json(path: &std::path::Path) -> (Option<i32>, Value) {
    let out = netport(["scan".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("scan --json prints JSON");
    (out.status.code(), json)
}

#[test]
fn malicious_fixtures_get_the_expected_verdicts() {
    let dir = testdata("torch/malicious");
    let expected = read_json(&dir.join("expected.json"));
    let entries = expected.as_object().unwrap();
    assert!(entries.len() >= 30);
    // The set holds pickles of every protocol, not only PROTO 2+.
    // For bare pickles of every protocol, torch's own message is predicted.
    for file in [
        "proto0_inst_os_system.pt",
        "proto0_global_reduce.pt",
        "proto1_dict_no_globals.pt",
        "ext1_reduce.pt",
        "legacy_proto0_first.pt",
    ] {
        let (_, json) = scan_json(&dir.join(file));
        assert!(
            json["files"][0]["weights_only"]["torch_error"].is_string(),
            "{file}: {json}"
        );
    }
    for file in [
        "proto0_inst_os_system.pt",
        "proto1_obj_os_system.pt",
        "legacy_proto0_first.pt",
        "object_array.npy",
        "object_array.npz",
    ] {
        assert!(entries.contains_key(file), "{file} missing");
    }
    for (file, e) in entries {
        let (code, json) = scan_json(&dir.join(file));
        let ours = &json["files"][0];
        let verdict = ours["verdict"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: {json}"));
        let expected_verdict = e["verdict"].as_str().unwrap();
        let want: &[&str] = match expected_verdict {
            // A bare pickle with only allowed globals still does not load
            // with torch.load (no magic number), so it is not "safe".
            "allowed" => &["safe", "weights-only-incompatible"],
            "benign-not-allowlisted" => &["needs-allowlist"],
            "suspicious-unknown" => &["suspicious"],
            "dangerous" => &["dangerous"],
            other => panic!("{file}: unknown expected verdict {other}"),
        };
        assert!(
            want.contains(&verdict),
            "{file}: ours {verdict}, expected {expected_verdict}"
        );
        assert_eq!(
            code,
            Some(if verdict == "safe" { 0 } else { 1 }),
            "{file}: exit code"
        );
        // Whatever real torch.load(weights_only=False) or numpy.load(
        // allow_pickle=True) ran (recorded by the fixture script) is dangerous.
        let ran = ["torch_load_unsafe", "numpy_load_allow_pickle"]
            .iter()
            .any(|k| e[*k]["payload_ran"].as_bool() == Some(true));
        if ran {
            assert_eq!(verdict, "dangerous", "{file}: its payload runs");
            assert!(
                ours["unsafe_load"].is_string(),
                "{file}: scan says what an unsafe load runs"
            );
        }
        // What real torch did with weights_only=True.
        let loads = e["torch_load_weights_only"]["ok"].as_bool().unwrap();
        match ours["weights_only"]["loads"].as_bool() {
            Some(ours_loads) => assert_eq!(ours_loads, loads, "{file}: weights_only"),
            // Only duplicate data.pkl entries make the outcome unknowable.
            None => assert!(file.contains("duplicate"), "{file}: weights_only unknown"),
        }
        // What torch printed: the weights_only reason, else its first line
        // (e.g. "Invalid magic number; corrupt file?").
        let theirs = &e["torch_load_weights_only"];
        if let (Some(detail), Some(predicted)) = (
            theirs["error_detail"]
                .as_str()
                .or(theirs["error_first_line"].as_str()),
            ours["weights_only"]["torch_error"].as_str(),
        ) {
            assert_eq!(predicted, detail, "{file}: predicted torch error");
        }
    }
}

#[test]
fn clean_checkpoints_are_safe_and_exit_zero() {
    for file in [
        "protocol2.pt",
        "legacy.pt",
        "dataparallel.pt",
        "cuda_tagged.pt",
    ] {
        let (code, json) = scan_json(&testdata("torch").join(file));
        assert_eq!(json["files"][0]["verdict"], "safe", "{file}: {json}");
        assert_eq!(json["files"][0]["weights_only"]["loads"], true, "{file}");
        assert_eq!(code, Some(0), "{file}");
    }
}

#[test]
fn weights_only_blockers_match_real_torch() {
    // Each fixture recorded whether torch.load(f) (weights_only=True) loaded it.
    for file in [
        "protocol4.pt",
        "training.pt",
        "torchscript.pt",
        "dtypes.pt",
        "big_endian.pt",
    ] {
        let path = testdata("torch").join(file);
        let expected = read_json(&path.with_extension("expected.json"));
        let loads = expected["torch_load"]["ok"].as_bool().unwrap_or_else(|| {
            panic!(
                "{file}: expected.json has no torch_load.ok: {}",
                expected["torch_load"]
            )
        });
        let (_, json) = scan_json(&path);
        assert_eq!(
            json["files"][0]["weights_only"]["loads"].as_bool(),
            Some(loads),
            "{file}: {json}"
        );
    }
    let (code, json) = scan_json(&testdata("torch/protocol4.pt"));
    assert_eq!(code, Some(1));
    assert_eq!(
        json["files"][0]["weights_only"]["torch_error"],
        "Unsupported operand 149"
    );
    let (_, json) = scan_json(&testdata("torch/training.pt"));
    assert_eq!(
        json["files"][0]["add_safe_globals"]
            .as_str()
            .map(|s| s.contains("argparse.Namespace")),
        Some(true)
    );
}

#[test]
fn text_output_has_offsets_and_a_summary() {
    let out = netport([
        "scan".as_ref(),
        testdata("torch/malicious/zip_reduce.pt").as_os_str(),
        testdata("torch/protocol2.pt").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("dangerous       posix.system"), "{text}");
    assert!(text.contains("at byte "), "{text}");
    assert!(
        text.contains("summary: 2 files: 1 dangerous, 1 safe"),
        "{text}"
    );
}

#[test]
fn unscannable_files_exit_two() {
    let out = netport([
        "scan".as_ref(),
        testdata("torch/broken/html_error_page.pt").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTML page"));
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // `netport scan --json FILE... | head -c 1`: the reader goes away early,
    // and the output (about 1 MB) is far larger than a pipe's buffer.
    let file = testdata("torch/protocol2.pt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netport"))
        .args(["scan", "--json"])
        .args(std::iter::repeat_n(&file, 400))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // Dropping our end closes the pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
