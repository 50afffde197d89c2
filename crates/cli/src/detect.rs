//! Format detection from the bytes of a file, never from its name.
//! Opening the file as a PyTorch checkpoint comes first: `netport_torch`
//! recognises its formats and what users mistake for a model (a Git LFS
//! pointer, an HTML error page, an empty file, a damaged zip), so that the
//! error says what the file really is (a safetensors file is then opened as
//! such). Bytes it does not recognise are tried as ONNX and then as a Caffe2
//! net.

use netport_caffe2::proto::NetDef;
use netport_onnx::proto::ModelProto;
use netport_safetensors::SafetensorsFile;
use netport_torch::{Checkpoint, TorchError};
use std::path::Path;

/// What a file turned out to be, read.
pub enum Detected {
    Torch(Box<Checkpoint>),
    Safetensors(Box<SafetensorsFile>),
    Onnx(Box<ModelProto>),
    Caffe2(Box<NetDef>),
}

/// Reads the file at `path` as whatever it is, or explains what it is instead.
pub fn detect(path: &Path) -> anyhow::Result<Detected> {
    let what = path.display().to_string();
    match Checkpoint::open(path) {
        Ok(ckpt) => return Ok(Detected::Torch(Box::new(ckpt))),
        Err(TorchError::NotACheckpoint {
            detected: netport_torch::Detected::Unknown { .. },
        }) => {}
        Err(TorchError::NotACheckpoint {
            detected: netport_torch::Detected::Safetensors { .. },
        }) => {
            let file = SafetensorsFile::open(path).map_err(crate::errors::at(&what))?;
            return Ok(Detected::Safetensors(Box::new(file)));
        }
        Err(TorchError::NotACheckpoint { detected }) => anyhow::bail!("{what}: {detected}"),
        // I/O errors name the file already.
        Err(e @ TorchError::Io { .. }) => anyhow::bail!("{e}"),
        Err(e) => anyhow::bail!("{what}: {e}"),
    }
    let bytes = read(path)?;
    let what = what.as_str();
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
    // The one sniffer's verdict (head and tail only) says what it looked
    // like. ONNX files start with field 1 (ir_version, a varint); a Caffe2
    // NetDef with a length-delimited field, and cannot decode as a
    // ModelProto, nor the other way round.
    match netport_io::sniff_bytes(&bytes) {
        netport_io::Sniffed::Protobuf {
            field: 1,
            wire_type: 0,
        } => anyhow::bail!("{onnx_err}"),
        sniffed => anyhow::bail!(
            "{what}: not a format netport reads ({} bytes): {sniffed}",
            bytes.len()
        ),
    }
}

/// Maps a file for reading ([`netport_io::map_file`]); never modifies it.
fn read(path: &Path) -> anyhow::Result<bytes::Bytes> {
    Ok(bytes::Bytes::from_owner(netport_io::map_file(path)?))
}
