//! The state-dict pickle the writers produce when they build a checkpoint
//! from tensors alone (safetensors -> checkpoint, state-dict rewrites).

use netport_tensor::DType;

/// A minimal protocol-2 pickle of a state dict (`collections.OrderedDict`
/// of `torch._utils._rebuild_tensor_v2` calls; `_rebuild_tensor_v3` with
/// an `UntypedStorage` for dtypes without a typed storage class, as
/// torch.save writes them), using only opcodes torch's `weights_only`
/// unpickler accepts.
pub struct StateDictPickle(
    /// The pickle bytes written so far.
    pub Vec<u8>,
);

impl StateDictPickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'\n');
    }
    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: u64) {
        if v < (1 << 31) {
            self.0.push(b'J');
            self.0.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            let mut b = v.to_le_bytes().to_vec();
            while b.len() > 1 && b[b.len() - 1] == 0 && b[b.len() - 2] & 0x80 == 0 {
                b.pop();
            }
            if b[b.len() - 1] & 0x80 != 0 {
                b.push(0);
            }
            self.0.push(0x8a);
            self.0.push(b.len() as u8);
            self.0.extend_from_slice(&b);
        }
    }
    fn ints(&mut self, v: &[u64]) {
        self.0.push(b'(');
        for &x in v {
            self.int(x);
        }
        self.0.push(b't');
    }
    /// An empty `collections.OrderedDict()` (GLOBAL, EMPTY_TUPLE, REDUCE).
    pub fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend_from_slice(b")R");
    }
    /// `name` -> a tensor over storage `key` (contiguous, offset 0).
    pub fn tensor(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        key: &str,
        storage_bytes: u64,
    ) {
        let strides = netport_tensor::contiguous_strides(shape).unwrap_or_default();
        self.tensor_view(name, dtype, shape, &strides, 0, key, storage_bytes);
    }

    /// name -> a view (`shape`, `strides`, `offset` in elements) of storage
    /// `key` of `storage_bytes` bytes; `requires_grad` False.
    #[allow(clippy::too_many_arguments)]
    pub fn tensor_view(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        strides: &[u64],
        offset: u64,
        key: &str,
        storage_bytes: u64,
    ) {
        self.str(name);
        let class = dtype.storage_class();
        self.global(
            "torch._utils",
            if class.is_some() {
                "_rebuild_tensor_v2"
            } else {
                "_rebuild_tensor_v3"
            },
        );
        self.0.push(b'(');
        self.0.push(b'(');
        self.str("storage");
        match class {
            Some(c) => self.global("torch", c),
            None => self.global("torch.storage", "UntypedStorage"),
        }
        self.str(key);
        self.str("cpu");
        self.int(match class {
            Some(_) => storage_bytes / dtype.size_in_bytes() as u64,
            None => storage_bytes,
        });
        self.0.extend_from_slice(b"tQ");
        self.int(offset);
        self.ints(shape);
        self.ints(strides);
        self.0.push(0x89); // NEWFALSE: requires_grad
        self.empty_ordered_dict(); // backward_hooks
        if class.is_none() {
            self.global("torch", dtype.torch_name());
        }
        self.0.extend_from_slice(b"tR");
    }
}
