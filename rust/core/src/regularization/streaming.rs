//! Writing a large output front to back with streaming stores.

use std::marker::PhantomData;

use crate::random::philox::Words;
use crate::simd::Real;

/// Bytes per cache line.
const LINE: usize = 64;

/// The most bytes one run may add (a group of 64 float64 values).
pub(crate) const MAX_RUN: usize = 512;

#[repr(C, align(64))]
struct Stage([u8; LINE + MAX_RUN + LINE]);

/// Fills `dst` front to back from runs computed into its staging buffer,
/// and stores every whole 64-byte line of `dst` with
/// [`Words::stream_line`] (written whole, never read for ownership, not kept
/// in cache), whatever the alignment of `dst`: the bytes before its first
/// line boundary and its last partial line get plain stores.
///
/// The staging buffer holds the bytes of the current partial line (the
/// carry) followed by the next run, so that runs are computed in place and
/// only the carry, at most one line, is ever copied.
pub(crate) struct LineWriter<'a, V> {
    dst: &'a mut [u8],
    /// Bytes of `dst` stored so far.
    pos: usize,
    /// Bytes before the first 64-byte boundary of `dst`.
    head: usize,
    stage: Stage,
    /// Bytes at the front of `stage` that belong to `dst[pos..]`.
    carry: usize,
    lanes: PhantomData<V>,
}

impl<'a, V: Words> LineWriter<'a, V> {
    pub fn new(dst: &'a mut [u8]) -> Self {
        let head = dst.as_ptr().align_offset(LINE).min(dst.len());
        LineWriter {
            dst,
            pos: 0,
            head,
            stage: Stage([0; LINE + MAX_RUN + LINE]),
            carry: 0,
            lanes: PhantomData,
        }
    }

    /// Space for the next `n` bytes, right after the carry
    /// (`n <= MAX_RUN`).
    #[inline(always)]
    pub fn stage_bytes(&mut self, n: usize) -> &mut [u8] {
        &mut self.stage.0[self.carry..self.carry + n]
    }

    /// Space for the next `n` floats, right after the carry: `dst` holds
    /// floats of this type (`n * size_of::<T>() <= MAX_RUN`).
    #[inline(always)]
    pub fn stage<T: Real>(&mut self, n: usize) -> &mut [T] {
        let bytes = self.stage_bytes(n * size_of::<T>());
        assert!((bytes.as_ptr() as usize).is_multiple_of(align_of::<T>()));
        // SAFETY: in bounds and aligned (checked: the stage is 64-byte
        // aligned and `carry` a multiple of the float size when `dst` holds
        // floats); every byte pattern is a valid float.
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast(), n) }
    }

    /// Appends the `bytes` just written by [`LineWriter::stage`] to `dst`.
    /// Pushing more than `dst.len()` bytes in all panics.
    ///
    /// # Safety
    /// The CPU supports `V`'s instruction set.
    #[inline(always)]
    pub unsafe fn commit(&mut self, bytes: usize) {
        let mut total = self.carry + bytes;
        let mut at = 0;
        if self.pos < self.head {
            // Only at the start: plain stores up to the first line boundary.
            let k = (self.head - self.pos).min(total);
            self.dst[self.pos..self.pos + k].copy_from_slice(&self.stage.0[..k]);
            self.pos += k;
            at = k;
            total -= k;
        }
        while total >= LINE {
            let dst = &mut self.dst[self.pos..self.pos + LINE];
            // SAFETY: `dst` starts on a line boundary (`pos >= head`, then
            // steps of 64); both ranges hold 64 bytes and do not overlap.
            V::stream_line(dst.as_mut_ptr(), self.stage.0.as_ptr().add(at));
            self.pos += LINE;
            at += LINE;
            total -= LINE;
        }
        if at > 0 {
            // The new carry to the front: a fixed-size copy of one line
            // (`at + LINE` lies inside the stage, and `at >= LINE` unless
            // this is the head, which `copy` allows to overlap).
            assert!(at + LINE <= self.stage.0.len());
            let stage = self.stage.0.as_mut_ptr();
            // SAFETY: both ranges lie inside the stage (checked).
            std::ptr::copy(stage.add(at), stage, LINE);
        }
        self.carry = total;
    }

    /// Stores the last partial line and orders the streaming stores before
    /// whatever the thread does next (another thread may read `dst`).
    ///
    /// # Safety
    /// The CPU supports `V`'s instruction set.
    #[inline(always)]
    pub unsafe fn finish(self) {
        let n = self.carry;
        self.dst[self.pos..self.pos + n].copy_from_slice(&self.stage.0[..n]);
        V::stream_fence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_alignment_and_run_lengths_write_the_same_bytes() {
        let want: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for offset in [0, 1, 17, 63] {
            for run in [1, 5, 64, 100, 256] {
                let mut storage = vec![0u8; 1100];
                let dst = &mut storage[offset..offset + want.len()];
                // SAFETY: `u32` lanes need no instruction set.
                unsafe {
                    let mut w = LineWriter::<u32>::new(dst);
                    for chunk in want.chunks(run) {
                        w.stage_bytes(chunk.len()).copy_from_slice(chunk);
                        w.commit(chunk.len());
                    }
                    w.finish();
                }
                assert_eq!(&storage[offset..offset + want.len()], &want[..]);
            }
        }
    }
}
