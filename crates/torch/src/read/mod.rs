//! Reading PyTorch files: what a file is ([`detect`]), the zip container
//! ([`zip`]), checkpoints of every format ([`checkpoint`], with `.pt2`
//! archives in `pt2`), and the file-level safety scan ([`scan`]). Nothing
//! here writes; the writers in [`crate::write`] take what these read.

pub mod checkpoint;
pub mod detect;
pub(crate) mod pt2;
pub mod scan;
pub mod zip;
