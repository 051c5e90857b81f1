//! A vector stored in shared chunks: cloning it copies only the chunk
//! pointers, and writing copies only the chunk written. This is what makes
//! publishing a new version of a large merged structure cost O(what
//! changed) instead of O(its size).

use std::sync::Arc;

/// Elements per chunk.
const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;

#[derive(Clone, Debug)]
/// A vector of shared, copy-on-write chunks.
pub struct ChunkVec<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for ChunkVec<T> {
    fn default() -> Self {
        ChunkVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> ChunkVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }
    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    /// Element `i`.
    pub fn get(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
    /// Mutable access; copies the chunk first if another version shares it.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        let c = Arc::make_mut(&mut self.chunks[i >> CHUNK_BITS]);
        &mut c[i & (CHUNK - 1)]
    }
    /// Appends `v`; returns its index.
    pub fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i & (CHUNK - 1) == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        Arc::make_mut(self.chunks.last_mut().unwrap()).push(v);
        self.len += 1;
        i
    }
    /// Every element, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
    /// Chunks this version shares with another.
    #[cfg(test)]
    fn shared_chunks(&self, other: &ChunkVec<T>) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count()
    }
    /// Chunks held.
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_until_written() {
        let mut a = ChunkVec::new();
        for i in 0..1000u32 {
            a.push(i);
        }
        let mut b = a.clone();
        assert_eq!(b.shared_chunks(&a), a.chunk_count());
        *b.get_mut(700) = 7;
        assert_eq!(*a.get(700), 700);
        assert_eq!(*b.get(700), 7);
        assert_eq!(b.shared_chunks(&a), a.chunk_count() - 1);
        assert_eq!(b.iter().copied().filter(|v| *v == 7).count(), 2);
    }
}
