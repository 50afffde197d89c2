//! The rewriting commands end to end on the committed fixtures: map-location,
//! fix, convert and diff, with their exit codes, their reports, atomic outputs
//! and untouched inputs. (The library tests check the bytes; the interop
//! tests load the outputs with the real torch.)

use crate::common::*;
use std::path::Path;

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = netport(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn p(path: &Path) -> &std::ffi::OsStr {
    path.as_os_str()
}

#[test]
fn map_location_makes_a_cuda_checkpoint_cpu_and_keeps_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("torch/cuda_tagged.pt");
    let before = std::fs::read(&src).unwrap();
    let out = dir.path().join("cpu.pt");
    let (code, stdout, stderr) = run(&[
        os("map-location"),
        p(&src),
        os("-o"),
        p(&out),
        os("--to"),
        os("cpu"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("9 storages: cuda:0 -> cpu"), "{stdout}");
    assert_eq!(std::fs::read(&src).unwrap(), before, "the input changed");
    let json = inspect_json(&[&out]);
    assert_eq!(json["devices"], serde_json::json!({"cpu": 9}));
    let reference = testdata("torch/cuda_tagged_reference.pt");
    let (code, stdout, _) = run(&[os("diff"), p(&reference), p(&out)]);
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn writing_over_the_input_is_refused_unless_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("c.pt");
    std::fs::copy(testdata("torch/cuda_tagged.pt"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let (code, _, stderr) = run(&[
        os("map-location"),
        p(&copy),
        os("-o"),
        p(&copy),
        os("--to"),
        os("cpu"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("in-place") || stderr.contains("in place"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    let (code, _, stderr) = run(&[
        os("map-location"),
        p(&copy),
        os("-o"),
        p(&copy),
        os("--to"),
        os("cpu"),
        os("--in-place"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        inspect_json(&[&copy])["devices"],
        serde_json::json!({"cpu": 9})
    );
}

#[test]
fn fix_reports_its_changes_or_refuses_with_exit_code_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fixed.pt");
    let (code, stdout, stderr) = run(&[
        os("fix"),
        p(&testdata("torch/training.pt")),
        os("-o"),
        p(&out),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("3 changes"), "{stdout}");
    assert!(
        stdout.contains("argparse.Namespace(lr, batch_size, name) -> dict"),
        "{stdout}"
    );
    // The fixed file is safe by our own scan.
    let (code, stdout, _) = run(&[os("scan"), p(&out)]);
    assert_eq!(code, Some(0), "{stdout}");

    let refused = dir.path().join("refused.pt");
    let (code, _, stderr) = run(&[
        os("fix"),
        p(&testdata("torch/malicious/zip_reduce.pt")),
        os("-o"),
        p(&refused),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("posix.system"), "{stderr}");
    assert!(!refused.exists());
}

#[test]
fn convert_round_trips_through_safetensors_and_diff_sees_a_dtype_change() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("torch/protocol2.pt");
    let st = dir.path().join("m.safetensors");
    let back = dir.path().join("back.pt");
    let half = dir.path().join("half.safetensors");
    let (code, _, stderr) = run(&[os("convert"), p(&src), p(&st)]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(&[os("convert"), p(&st), p(&back)]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = run(&[os("diff"), p(&src), p(&back)]);
    assert_eq!(code, Some(0), "{stdout}");
    let (code, _, stderr) = run(&[os("convert"), p(&src), p(&half), os("--dtype"), os("bf16")]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = netport([os("diff"), os("--json"), p(&src), p(&half)]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["identical"], false);
    assert!(json["summary"]["different"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn broken_inputs_give_exit_two_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let broken = testdata("torch/broken/truncated_in_storage.pt");
    for cmd in [
        vec![
            os("map-location"),
            p(&broken),
            os("-o"),
            os("OUT"),
            os("--to"),
            os("cpu"),
        ],
        vec![os("fix"), p(&broken), os("-o"), os("OUT")],
        vec![os("convert"), p(&broken), os("OUT.safetensors")],
    ] {
        let out_name = if cmd[0] == "convert" {
            "OUT.safetensors"
        } else {
            "OUT"
        };
        let out_path = dir.path().join(out_name);
        let args: Vec<&std::ffi::OsStr> = cmd
            .iter()
            .map(|a| if *a == os(out_name) { p(&out_path) } else { a })
            .collect();
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(2), "{:?}: {stderr}", cmd[0]);
        assert!(!out_path.exists(), "{:?} left an output", cmd[0]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{:?} left a file",
            cmd[0]
        );
    }
}

#[test]
fn a_plain_rewrite_strips_prefixes_and_can_write_the_legacy_format() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("torch/dataparallel.pt");
    for (name, extra) in [("zip.pt", None), ("legacy.pt", Some(os("--legacy")))] {
        let out = dir.path().join(name);
        let mut args = vec![
            os("convert"),
            p(&src),
            p(&out),
            os("--strip-prefix"),
            os("module."),
        ];
        args.extend(extra);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        let json = inspect_json(&[&out]);
        let want = if extra.is_some() { "legacy" } else { "zip" };
        assert_eq!(json["format"], want, "{name}");
        // Same names and bytes as the plain state_dict.
        let (code, stdout, _) = run(&[os("diff"), p(&testdata("torch/protocol2.pt")), p(&out)]);
        assert_eq!(code, Some(0), "{name}: {stdout}");
    }
}

/// The seed's checkpoint: tagged `cuda:0` and saved with
/// `pickle_protocol=4`. Made from the committed protocol-4 state dict.
fn cuda_protocol4(dir: &Path) -> std::path::PathBuf {
    let cuda = dir.join("cuda_p4.pt");
    let (code, _, stderr) = run(&[
        os("map-location"),
        p(&testdata("torch/protocol4.pt")),
        os("-o"),
        p(&cuda),
        os("--map"),
        os("cpu=cuda:0"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let json = inspect_json(&[&cuda]);
    assert_eq!(json["devices"], serde_json::json!({"cuda:0": 9}));
    assert_eq!(json["details"]["pickles"][0]["protocol"], 4);
    cuda
}

#[test]
fn map_location_of_a_protocol_4_file_names_the_fix_and_fix_does_both() {
    let dir = tempfile::tempdir().unwrap();
    let cuda = cuda_protocol4(dir.path());

    // Relocated only: still protocol 4, which weights_only refuses. Said on
    // stderr, with the way out.
    let plain = dir.path().join("plain.pt");
    let (code, stdout, stderr) = run(&[
        os("map-location"),
        p(&cuda),
        os("-o"),
        p(&plain),
        os("--to"),
        os("cpu"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("9 storages: cuda:0 -> cpu"), "{stdout}");
    assert!(stderr.contains("netport: note:"), "{stderr}");
    assert!(stderr.contains("FRAME"), "{stderr}");
    assert!(stderr.contains("netport fix"), "{stderr}");
    assert!(stderr.contains("--fix"), "{stderr}");
    let (code, stdout, _) = run(&[os("scan"), p(&plain)]);
    assert_eq!(code, Some(1), "{stdout}");

    // --fix: one output, relocated and protocol 2, that our scan passes.
    let fixed = dir.path().join("fixed.pt");
    let (code, stdout, stderr) = run(&[
        os("map-location"),
        p(&cuda),
        os("-o"),
        p(&fixed),
        os("--to"),
        os("cpu"),
        os("--fix"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(stdout.contains("9 storages: cuda:0 -> cpu"), "{stdout}");
    assert!(
        stdout.contains("data.pkl: pickle protocol 4 -> 2"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    let json = inspect_json(&[&fixed]);
    assert_eq!(json["devices"], serde_json::json!({"cpu": 9}));
    assert_eq!(json["details"]["pickles"][0]["protocol"], 2);
    let (code, stdout, _) = run(&[os("scan"), p(&fixed)]);
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout, _) = run(&[os("diff"), p(&testdata("torch/protocol4.pt")), p(&fixed)]);
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn map_location_says_nothing_more_when_the_output_loads() {
    let dir = tempfile::tempdir().unwrap();
    for src in ["torch/cuda_tagged.pt", "torch/cuda_tagged_legacy.pt"] {
        let out = dir.path().join("cpu.pt");
        let (code, _, stderr) = run(&[
            os("map-location"),
            p(&testdata(src)),
            os("-o"),
            p(&out),
            os("--to"),
            os("cpu"),
        ]);
        assert_eq!(code, Some(0), "{src}: {stderr}");
        // Not a terminal: no progress bar either.
        assert!(stderr.is_empty(), "{src}: {stderr}");
    }
}

#[test]
fn map_location_fix_refuses_what_cannot_be_made_safe() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pt");
    let (code, _, stderr) = run(&[
        os("map-location"),
        p(&testdata("torch/malicious/zip_reduce.pt")),
        os("-o"),
        p(&out),
        os("--to"),
        os("cpu"),
        os("--fix"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("posix.system"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
