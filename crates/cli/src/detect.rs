//! Format detection from the bytes of a file, never from its name. Besides the
//! formats netport reads, it recognises what users mistake for a model (a Git
//! LFS pointer, an HTML error page, an empty file) so that the error says what
//! the file really is.

use bytes::Bytes;
use netport_caffe2::proto::NetDef;
use netport_onnx::proto::ModelProto;

/// What a file turned out to be.
pub enum Detected {
    Onnx(Box<ModelProto>),
    Caffe2(Box<NetDef>),
}

/// Recognises `bytes` (read from `what`) or explains what they are instead.
pub fn detect(bytes: Bytes, what: &str) -> anyhow::Result<Detected> {
    if let Some(reason) = not_a_model(&bytes) {
        anyhow::bail!("{what}: {reason}");
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

/// A description of files that are recognisably not a model.
fn not_a_model(bytes: &[u8]) -> Option<String> {
    const LFS: &[u8] = b"version https://git-lfs.github.com/spec/";
    if bytes.is_empty() {
        return Some("the file is empty (0 bytes)".into());
    }
    if bytes.starts_with(LFS) {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]);
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
                .unwrap_or("?")
                .to_string()
        };
        return Some(format!(
            "a Git LFS pointer file, not the model itself (oid {}, size {} bytes); run `git lfs pull` to fetch the real file",
            field("oid "),
            field("size ")
        ));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let trimmed = head.trim_start();
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
        return Some(format!(
            "an HTML page ({} bytes), not a model: probably an error or login page saved by a download",
            bytes.len()
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(
            "a zip archive (a PyTorch checkpoint or TorchScript archive?); netport does not read PyTorch checkpoints yet".into(),
        );
    }
    if bytes.len() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5 {
        return Some(format!(
            "a Python pickle (protocol {}), e.g. a legacy PyTorch checkpoint; netport does not read PyTorch checkpoints yet",
            bytes[1]
        ));
    }
    None
}
