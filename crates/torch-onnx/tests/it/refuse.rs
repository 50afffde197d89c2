//! Inputs that are not a torchvision state_dict: refused with the closest
//! family and its key differences, or as unreadable; nothing written.

use crate::common::testdata;
use netport_torch_onnx::{ExportError, ExportOptions, export};

fn refused(input: &str, options: &ExportOptions) -> ExportError {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.onnx");
    let e = export(&testdata(input), &out, options).expect_err("refused");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "{input}: files left after an error: {left:?}"
    );
    e
}

#[test]
fn a_small_cnn_fits_no_family_and_the_closest_is_named() {
    // dataparallel.pt: module.conv / module.bn / module.fc of a tiny CNN.
    let e = refused("torch/dataparallel.pt", &ExportOptions::default());
    assert!(e.is_mismatch(), "{e}");
    let ExportError::NotRecognised { closest } = &e else {
        panic!("{e}")
    };
    assert_eq!(closest.family, "resnet");
    // The `module.` prefix was dropped before comparing.
    assert!(closest.unexpected.iter().any(|k| k == "conv.weight"), "{e}");
    assert!(closest.missing.iter().any(|k| k == "conv1.weight"), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("Missing key(s) in state_dict: \"conv1.weight\""),
        "{text}"
    );
    assert!(text.contains("Unexpected key(s) in state_dict:"), "{text}");
}

#[test]
fn a_forced_architecture_that_does_not_fit_lists_the_differences() {
    let options = ExportOptions {
        arch: Some("resnet50".into()),
        ..ExportOptions::default()
    };
    let e = refused("torch/training.pt", &options);
    let ExportError::DoesNotFit { mismatch } = &e else {
        panic!("{e}")
    };
    assert_eq!(mismatch.variant, "resnet50");
    assert!(
        mismatch
            .missing
            .iter()
            .any(|k| k == "layer4.2.bn3.running_var"),
        "{e}"
    );
}

#[test]
fn unknown_names_and_options_are_refused_before_reading() {
    let e = refused(
        "torch/dataparallel.pt",
        &ExportOptions {
            arch: Some("lenet".into()),
            ..ExportOptions::default()
        },
    );
    assert!(matches!(e, ExportError::UnknownArch { .. }), "{e}");
    assert!(e.to_string().contains("resnet18"), "{e}");
    for opset in [8, 1000] {
        let e = refused(
            "torch/dataparallel.pt",
            &ExportOptions {
                opset,
                ..ExportOptions::default()
            },
        );
        assert!(e.to_string().contains(&format!("opset {opset}")), "{e}");
    }
}

#[test]
fn files_without_a_state_dict_are_read_errors() {
    for f in [
        "torch/malicious/benign_argparse_namespace.pkl",
        "torch/broken/html_error_page.pt",
        "torch/broken/truncated_in_central_directory.pt",
    ] {
        let e = refused(f, &ExportOptions::default());
        assert!(!e.is_mismatch(), "{f}: {e}");
        assert!(
            matches!(
                e,
                ExportError::Read { .. } | ExportError::NotAStateDict { .. }
            ),
            "{f}: {e}"
        );
    }
}

#[test]
fn a_key_that_holds_nothing_is_refused() {
    let options = ExportOptions {
        key: Some("optimizer_state".into()),
        ..ExportOptions::default()
    };
    let e = refused("torch/training.pt", &options);
    assert!(
        e.to_string()
            .contains("no tensor sits under the key 'optimizer_state'"),
        "{e}"
    );
}
