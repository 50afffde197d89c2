//! Format detection from the bytes of a file, never from its name.
//! `netport_torch::detect` recognises the PyTorch formats and what users
//! mistake for a model (a Git LFS pointer, an HTML error page, an empty file, a
//! damaged zip), so that the error says what the file really is; the rest is
//! tried as ONNX and then as a Caffe2 net.

use bytes::Bytes;
use netport_caffe2::proto::NetDef;
use netport_onnx::proto::ModelProto;

/// What a file turned out to be.
pub enum Detected {
    Torch,
    Onnx(Box<ModelProto>),
    Caffe2(Box<NetDef>),
}

/// Recognises `bytes` (read from `what`) or explains what they are instead.
pub fn detect(bytes: Bytes, what: &str) -> anyhow::Result<Detected> {
    // PyTorch formats, and the files people mistake for a model (empty, Git
    // LFS pointers, HTML pages, damaged zips, plain pickles...).
    match netport_torch::detect(&bytes) {
        netport_torch::Detected::Torch(_) => return Ok(Detected::Torch),
        netport_torch::Detected::Unknown { .. } => {}
        other => anyhow::bail!("{what}: {other}"),
    }
    // ONNX files start with field 1 (ir_version, a varint): tag byte 0x08. A
    // Caffe2 NetDef starts with a length-delimited field (name, op: 0x0a or
    // 0x12) and cannot decode as a ModelProto, nor the other way round.
    let onnx_err = match netport_onnx::decode_model(bytes.clone(), what) {
        Ok(model) => return Ok(Detected::Onnx(Box::new(model))),
        Err(e) => e,
    };
    if let Some(net) = netport_caffe2::sniff_net(&bytes, what) {
        return match net {
            Ok(net) => Ok(Detected::Caffe2(Box::new(net))),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
    }
    if bytes.first() == Some(&0x08) {
        anyhow::bail!("{onnx_err}");
    }
    anyhow::bail!(
        "{what}: not a format netport reads ({} bytes, starting with {})",
        bytes.len(),
        hex_prefix(&bytes)
    )
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
