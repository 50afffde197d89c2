//! Converts `tiny_cnn.pt` (a PyTorch state_dict in this folder) to
//! safetensors in `OUT_DIR` at build time, with netport: no Python, no torch.

use netport_torch::{Checkpoint, Edits};
use netport_torch_safetensors::checkpoint_to_safetensors;
use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo::rerun-if-changed=tiny_cnn.pt");
    let dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR unset")?);

    // Reading never executes the pickle: the checkpoint is parsed, not loaded.
    let checkpoint = Checkpoint::open(dir.join("tiny_cnn.pt"))?;
    // `Edits` can strip prefixes, keep a sub-dict or change dtypes; none here.
    let report = checkpoint_to_safetensors(
        &checkpoint,
        &out_dir.join("tiny_cnn.safetensors"),
        &Edits::default(),
    )?;
    // The library can check what the build wrote against this count.
    println!("cargo::rustc-env=TINY_CNN_TENSORS={}", report.tensors);
    Ok(())
}
