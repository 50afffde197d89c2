//! [`Chunked`]: a growable sequence stored in fixed-size chunks, for the
//! arena's values and the engine's per-value bookkeeping.
//!
//! A `Vec` that grows by doubling holds up to twice what it needs, and while
//! it moves to a larger buffer both buffers are live and every element is
//! copied: for a pickle of 50,000 tensors (about 700,000 values) that is
//! tens of MB of peak memory and a few percent of the load's time. Chunks
//! never move; what is reserved beyond the values is at most one chunk.

/// Elements per chunk (a power of two: an index splits with a shift and a
/// mask). 4,096 values of 32 bytes are 128 KiB.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A sequence indexed from 0 whose elements never move once pushed.
#[derive(Debug, Clone)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// Append `value` at index `len()`.
    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The element at `index`, if any.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.chunks
            .get(index >> CHUNK_BITS)?
            .get(index & (CHUNK - 1))
    }

    /// The element at `index`, mutably, if any.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(index >> CHUNK_BITS)?
            .get_mut(index & (CHUNK - 1))
    }

    /// The elements in index order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &T> + Clone + '_ {
        Iter {
            inner: self.chunks.iter().flatten(),
            left: self.len,
        }
    }
}

impl<T: PartialEq> PartialEq for Chunked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// [`Chunked::iter`]: the flattened chunks with their exact length.
#[derive(Clone)]
struct Iter<I> {
    inner: I,
    left: usize,
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> Iterator for Iter<I> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let next = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ExactSizeIterator for Iter<I> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_cross_chunk_boundaries() {
        let mut c = Chunked::default();
        let n = 3 * CHUNK + 5;
        for i in 0..n {
            c.push(i);
        }
        assert_eq!(c.len(), n);
        assert_eq!(c.chunks.len(), 4);
        for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 1, n - 1] {
            assert_eq!(c.get(i), Some(&i));
        }
        assert_eq!(c.get(n), None);
        *c.get_mut(CHUNK).unwrap() = 7;
        assert_eq!(c.get(CHUNK), Some(&7));
        let it = c.iter();
        assert_eq!(it.len(), n);
        assert_eq!(it.filter(|&&v| v == 7).count(), 2);
        // No chunk grew past its first allocation.
        assert!(c.chunks.iter().all(|ch| ch.capacity() == CHUNK));
    }
}
