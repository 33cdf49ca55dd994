//! Allocations whose size a caller controls: an error instead of an abort.
//!
//! `vec![v; n]`, `Vec::with_capacity(n)` and `collect()` abort the process
//! when the allocator refuses (and panic on a capacity overflow). Every
//! buffer whose length follows from a user's input (an image count, an
//! output size, a history length) goes through these helpers instead, so
//! that a request that cannot be met is [`Error::OutOfMemory`], which the
//! binding raises as `MemoryError`.
//!
//! A request larger than the machine's physical memory is refused up front
//! as well: an overcommitting allocator (Linux's default) would hand it
//! out, and the first writes would then get the process killed.

use crate::error::{Error, Result};

/// The error for a buffer of `count` elements of `T` that cannot be had.
pub fn oom<T>(what: &str, count: usize) -> Error {
    Error::OutOfMemory {
        what: what.to_string(),
        bytes: count.saturating_mul(std::mem::size_of::<T>()),
    }
}

/// Requests from this size up are compared with the physical memory.
const CHECK_FROM_BYTES: usize = 1 << 30;

/// `Err(OutOfMemory)` for a request of `bytes` that exceeds the machine's
/// physical memory (checked from 1 GiB up).
pub fn check_fits(bytes: usize, what: &str) -> Result<()> {
    if bytes >= CHECK_FROM_BYTES && physical_memory().is_some_and(|ram| bytes > ram) {
        return Err(Error::OutOfMemory {
            what: what.to_string(),
            bytes,
        });
    }
    Ok(())
}

/// The machine's physical memory in bytes, if known.
pub fn physical_memory() -> Option<usize> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return (pages as usize).checked_mul(size as usize);
        }
    }
    None
}

/// An empty vector with room for exactly `capacity` elements.
pub fn with_capacity<T>(capacity: usize, what: &str) -> Result<Vec<T>> {
    check_fits(capacity.saturating_mul(std::mem::size_of::<T>()), what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(capacity)
        .map_err(|_| oom::<T>(what, capacity))?;
    Ok(v)
}

/// `vec![value; len]`, fallibly.
pub fn filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = with_capacity(len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// `iter.collect()`, fallibly: room for `iter.len()` elements is reserved
/// first (an iterator that yields more grows the vector as usual).
pub fn collect<T>(iter: impl ExactSizeIterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut v = with_capacity(iter.len(), what)?;
    v.extend(iter);
    Ok(v)
}

/// The product of `sizes`, or [`Error::OutOfMemory`] for `what` if it
/// overflows `usize`.
pub fn product(sizes: &[usize], what: &str) -> Result<usize> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::OutOfMemory {
            what: what.to_string(),
            bytes: usize::MAX,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(matches!(
            filled(usize::MAX / 2, 0u64, "t"),
            Err(Error::OutOfMemory { .. })
        ));
        assert!(matches!(
            with_capacity::<u8>(isize::MAX as usize + 1, "t"),
            Err(Error::OutOfMemory { .. })
        ));
        assert!(product(&[1 << 40, 1 << 40], "t").is_err());
        assert_eq!(product(&[3, 4], "t").unwrap(), 12);
        assert_eq!(filled(3, 7u8, "t").unwrap(), vec![7, 7, 7]);
        assert_eq!(collect(0..4, "t").unwrap(), vec![0, 1, 2, 3]);
    }
}
