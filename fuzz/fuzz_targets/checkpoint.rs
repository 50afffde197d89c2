//! Fuzz target: the checkpoint reader and the file-level scan on arbitrary
//! bytes (zip, legacy and pickle paths all start from the same bytes). They
//! may refuse anything, but never panic, hang or read out of bounds; for a
//! checkpoint that opens, every tensor's bytes either read or give an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netport_torch::{Checkpoint, Options};

fuzz_target!(|data: &[u8]| {
    let _ = netport_torch::detect(data);
    let _ = netport_torch::scan_bytes(data);
    if let Ok(ckpt) = Checkpoint::from_bytes(data.to_vec(), &Options::default()) {
        for t in ckpt.tensors() {
            let _ = ckpt.tensor_bytes(t);
        }
        let _ = ckpt.tree();
    }
});
