//! A checkpoint at a glance, for `netport inspect` and build scripts: storages
//! per device, tensor totals by dtype, parameter count, and the storages
//! shared by several tensors. Computed from the parsed pickles alone (no
//! tensor bytes are read), as plain structs; rendering is the caller's job,
//! as for the ONNX and Caffe2 summaries.
//!
//! * **Bytes of a tensor** are logical: elements times the element size,
//!   whatever the view's strides (an expanded or sliced view counts its own
//!   elements, not its storage's).
//! * **Totals by dtype** are keyed by the torch name (`float32`), in name
//!   order, and sum the tensor entries (a tensor reached at two paths counts
//!   twice, as it is listed twice).
//! * **Storage bytes** count each storage once, however many tensors view it.

use std::collections::BTreeMap;

use crate::checkpoint::Checkpoint;
use crate::objects::{Storage, Tensor};
use netport_tensor::DType;

/// Tensors of one dtype.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DTypeTotal {
    /// Tensor entries.
    pub tensors: usize,
    /// Their elements.
    pub elements: u64,
    /// Their logical bytes (see [`tensor_bytes`]).
    pub bytes: u64,
}

/// What `netport inspect` reports about a checkpoint besides the tensor list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// Location tag as written (`cpu`, `cuda:0`) -> number of storages.
    pub devices: BTreeMap<String, usize>,
    /// Torch dtype name -> totals.
    pub by_dtype: BTreeMap<String, DTypeTotal>,
    /// Tensor entries.
    pub tensors: usize,
    /// Elements over all tensor entries.
    pub parameters: u64,
    /// Logical bytes over all tensor entries.
    pub tensor_bytes: u64,
    /// Distinct storages.
    pub storages: usize,
    /// Bytes of the distinct storages (each counted once).
    pub storage_bytes: u64,
    /// Indices (into [`Checkpoint::storages`]) of the storages viewed by
    /// more than one tensor, in storage order.
    pub shared_storages: Vec<usize>,
}

/// Elements of a tensor (the product of its shape; 1 for a 0-d tensor),
/// saturating.
pub fn numel(t: &Tensor) -> u64 {
    shape_numel(&t.shape)
}

/// Logical bytes of a tensor: elements times element size, saturating.
pub fn tensor_bytes(t: &Tensor) -> u64 {
    shape_bytes(t.dtype, &t.shape)
}

/// Elements of a shape (1 for a 0-d tensor), saturating.
pub fn shape_numel(shape: &[u64]) -> u64 {
    shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
}

/// Logical bytes of a `dtype` tensor of `shape`, saturating.
pub fn shape_bytes(dtype: DType, shape: &[u64]) -> u64 {
    shape_numel(shape).saturating_mul(dtype.size_in_bytes() as u64)
}

impl CheckpointSummary {
    /// Summarises an opened checkpoint (its tensors read in place).
    pub fn of(ckpt: &Checkpoint) -> Self {
        Self::from_shapes(
            ckpt.tensor_refs().map(|t| (t.dtype(), t.shape())),
            ckpt.storage_refs()
                .map(|s| (&**s.location(), s.nbytes(), s.tensor_count())),
        )
    }

    /// Summarises tensors and the storages they view.
    pub fn from_parts(tensors: &[Tensor], storages: &[Storage]) -> Self {
        Self::from_shapes(
            tensors.iter().map(|t| (t.dtype, t.shape.as_slice())),
            storages
                .iter()
                .map(|s| (&*s.location, s.nbytes(), s.tensors.len())),
        )
    }

    /// Summarises tensors given as (dtype, shape) and storages as
    /// (location, bytes, number of users).
    fn from_shapes<'t, 's>(
        tensors: impl Iterator<Item = (DType, &'t [u64])>,
        storages: impl Iterator<Item = (&'s str, Option<u64>, usize)>,
    ) -> Self {
        // Keys are borrowed while counting (a checkpoint may hold 100,000
        // tensors) and owned once at the end.
        let mut devices: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut storage_count, mut storage_bytes) = (0usize, 0u64);
        let mut shared_storages = Vec::new();
        for (i, (location, nbytes, users)) in storages.enumerate() {
            *devices.entry(location).or_default() += 1;
            storage_count += 1;
            storage_bytes = storage_bytes.saturating_add(nbytes.unwrap_or(0));
            if users > 1 {
                shared_storages.push(i);
            }
        }
        let mut by_dtype: BTreeMap<DType, DTypeTotal> = BTreeMap::new();
        let (mut parameters, mut bytes_total, mut count) = (0u64, 0u64, 0usize);
        for (dtype, shape) in tensors {
            let (n, bytes) = (shape_numel(shape), shape_bytes(dtype, shape));
            count += 1;
            let total = by_dtype.entry(dtype).or_default();
            total.tensors += 1;
            total.elements = total.elements.saturating_add(n);
            total.bytes = total.bytes.saturating_add(bytes);
            parameters = parameters.saturating_add(n);
            bytes_total = bytes_total.saturating_add(bytes);
        }
        let devices = devices
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        let by_dtype = by_dtype
            .into_iter()
            .map(|(d, t)| (d.torch_name().to_owned(), t))
            .collect();
        CheckpointSummary {
            devices,
            by_dtype,
            tensors: count,
            parameters,
            tensor_bytes: bytes_total,
            storages: storage_count,
            storage_bytes,
            shared_storages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Checkpoint {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/torch")
            .join(name);
        Checkpoint::open(&path).unwrap()
    }

    #[test]
    fn a_state_dict_on_cuda() {
        // tiny_cnn: conv 8x3x3x3 + 8, bn 4 x 8 + num_batches_tracked (int64, 0-d),
        // fc 2x512 + 2; every storage tagged cuda:0.
        let s = CheckpointSummary::of(&fixture("cuda_tagged.pt"));
        assert_eq!(s.devices, BTreeMap::from([("cuda:0".to_owned(), 9)]));
        assert_eq!((s.tensors, s.storages), (9, 9));
        let f32s = &s.by_dtype["float32"];
        assert_eq!(f32s.tensors, 8);
        assert_eq!(f32s.elements, 216 + 8 + 4 * 8 + 1024 + 2);
        assert_eq!(f32s.bytes, f32s.elements * 4);
        assert_eq!(
            s.by_dtype["int64"],
            DTypeTotal {
                tensors: 1,
                elements: 1,
                bytes: 8
            }
        );
        assert_eq!(s.parameters, f32s.elements + 1);
        assert_eq!(s.tensor_bytes, f32s.bytes + 8);
        assert_eq!(s.storage_bytes, s.tensor_bytes);
        assert!(s.shared_storages.is_empty());
    }

    #[test]
    fn shared_storages_are_counted_once() {
        let ckpt = fixture("dtypes.pt");
        let s = CheckpointSummary::of(&ckpt);
        assert!(!s.shared_storages.is_empty());
        for &i in &s.shared_storages {
            assert!(ckpt.storages()[i].tensors.len() > 1);
        }
        let distinct: u64 = ckpt.storages().iter().filter_map(Storage::nbytes).sum();
        assert_eq!(s.storage_bytes, distinct);
        assert_eq!(
            s.by_dtype.values().map(|t| t.tensors).sum::<usize>(),
            ckpt.tensors().len()
        );
        // The expanded tensor (stride 0) counts its logical elements, more
        // than its storage holds.
        let expanded = ckpt
            .tensors()
            .iter()
            .find(|t| t.strides.contains(&0) && numel(t) > 1)
            .expect("dtypes.pt has an expanded tensor");
        let storage = &ckpt.storages()[expanded.storage.unwrap()];
        assert!(tensor_bytes(expanded) > storage.nbytes().unwrap());
    }
}
