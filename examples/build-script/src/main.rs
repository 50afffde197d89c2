//! Prints the tensors of the safetensors file that `build.rs` converted from
//! `tiny_cnn.pt` and embedded; fails if the embedded bytes are not one.

use build_script_example::{TINY_CNN, read_header};
use std::process::ExitCode;

fn main() -> ExitCode {
    match read_header(TINY_CNN) {
        Ok((entries, _)) => {
            for (name, entry) in &entries {
                println!("{name}: {} {:?}", entry.dtype, entry.shape);
            }
            println!(
                "{} tensors, {} bytes, converted at build time",
                entries.len(),
                TINY_CNN.len()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: the embedded file is not safetensors: {err}");
            ExitCode::FAILURE
        }
    }
}
