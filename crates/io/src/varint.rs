//! LEB128 unsigned integers (protobuf's varints): seven bits a byte, low
//! first, at most 10 bytes for a `u64`. One reader and one writer for every
//! crate that meets them: the sniffer's protobuf fields, Caffe2 fill ops
//! written by hand, netport-torch's table of taken tensors.

/// Appends `v` to `out`.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The integer at `*pos` in `data`, `*pos` moved past it; `None` when the
/// data ends first or 10 bytes all say "more" (bits past 64 of a 10th byte
/// are dropped, as protobuf readers drop them).
#[inline]
pub fn get(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_back_at_every_width() {
        let values = [0, 1, 127, 128, 255, 300, 1 << 35, u64::MAX - 1, u64::MAX];
        let mut bytes = Vec::new();
        for v in values {
            put(&mut bytes, v);
        }
        // 300 is protobuf's own example: 0xac 0x02.
        assert_eq!(&bytes[7..9], [0xac, 0x02]);
        let mut pos = 0;
        for v in values {
            assert_eq!(get(&bytes, &mut pos), Some(v));
        }
        assert_eq!(pos, bytes.len());
        // Cut short, or more than 10 bytes of continuation: no value.
        assert_eq!(
            get(&bytes[..bytes.len() - 1], &mut { bytes.len() - 10 }),
            None
        );
        assert_eq!(get(&[0xff; 11], &mut 0), None);
        assert_eq!(get(&[], &mut 0), None);
    }
}
