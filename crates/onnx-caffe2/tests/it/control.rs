//! `If` and `Loop` against the real Caffe2: the models of caffe2's own
//! conversion tests and nested ones, made with the nets
//! `Caffe2Backend.onnx_graph_to_caffe2_net` writes by
//! `testdata/peers/caffe2/make_control_refs.py` (in the Caffe2 venv,
//! NETPORT_CAFFE2_PYTHON); our nets equal them op for op, sub-nets included,
//! and run in the Caffe2 workspace equal to the expected outputs.

use crate::common::need_env;
use crate::control_refs::make_control_refs;
use crate::interop::{convert, run_python, script};

#[test]
#[ignore = "interop: needs NETPORT_CAFFE2_PYTHON"]
fn if_and_loop_equal_caffe2_backend_op_for_op_and_run_in_caffe2_as_expected() {
    let python = need_env("NETPORT_CAFFE2_PYTHON");
    let tmp = tempfile::tempdir().unwrap();
    let refs = tmp.path().join("refs");
    let manifest = make_control_refs(&python, &refs);
    let cases = manifest.as_object().unwrap();
    assert!(cases.len() >= 5, "{manifest}");
    let mut jobs = Vec::new();
    for (name, info) in cases {
        let dir = refs.join(name);
        let model_path = dir.join("model.onnx");
        let ours = tmp.path().join("ours").join(name);
        convert(&model_path, &ours);
        // The control inputs are in our external lists (the predict net reads
        // them); the backend's split leaves them out.
        let pred = netport_caffe2::Caffe2Model::load_dir(&ours)
            .unwrap()
            .predict_net;
        let mut extra: Vec<String> = pred
            .op
            .iter()
            .flat_map(|o| o.control_input.iter().cloned())
            .collect();
        assert!(!extra.is_empty(), "{name}: no control inputs");
        extra.sort();
        extra.dedup();
        let extra = extra.join(",");
        let (code, report) = run_python(&[
            script("compare_nets.py").as_os_str(),
            ours.as_os_str(),
            dir.join("ref").as_os_str(),
            "--extra-external".as_ref(),
            extra.as_ref(),
        ]);
        assert_eq!(code, 0, "{name}: {report}");
        assert_eq!(report["equal"], true, "{name}: {report}");
        let pb = |stem: &str, k: usize| dir.join(format!("{stem}_{k}.pb")).display().to_string();
        let feeds: Vec<(String, String)> = info["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str().unwrap().to_string(), pb("input", k)))
            .collect();
        let expected: Vec<String> = (0..info["outputs"].as_array().unwrap().len())
            .map(|k| pb("expected", k))
            .collect();
        jobs.push(serde_json::json!({
            "test": name,
            "init_net": ours.join("init_net.pb"),
            "predict_net": ours.join("predict_net.pb"),
            "feeds": feeds,
            "expected": expected,
        }));
    }
    let jobs_path = tmp.path().join("jobs.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let (_, results) = run_python(&[
        script("run_node_tests.py").as_os_str(),
        jobs_path.as_os_str(),
    ]);
    for job in &jobs {
        let name = job["test"].as_str().unwrap();
        assert_eq!(results[name]["equal"], true, "{name}: {}", results[name]);
    }
}
