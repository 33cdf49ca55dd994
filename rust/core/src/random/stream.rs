//! The state of a random stream: a Philox key, a 128-bit block counter and
//! the number of child streams spawned so far.

use super::philox::block;
use super::GROUP_BLOCKS;
use crate::error::{Error, Result};

/// The name of the algorithm in a stream's saved state.
pub const ALGORITHM: &str = "philox4x32-10";

/// The top counter word of the blocks that derive child keys ("SPWN"): a
/// draw under the same key reaches such a counter only after 2^126 blocks.
const SPAWN_DOMAIN: u32 = 0x5350_574e;

/// The most children one [`Stream::spawn`] call makes (about a million):
/// more than any use of independent streams needs, and few enough that
/// their Python objects (about 100 MB) cannot exhaust memory by accident.
pub const MAX_SPAWN: u64 = 1 << 20;

/// A counter-based random stream.
///
/// Every call that draws reserves a fresh range of block counters
/// ([`Stream::reserve`]) and computes its values from the key, the first
/// counter of the range and the index of each value: a pure function,
/// whatever the thread or SIMD level that computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stream {
    pub key: [u32; 2],
    /// The first block counter not yet used.
    pub counter: u128,
    /// Children spawned so far (the next child's index).
    pub spawned: u64,
}

/// A reserved range of a stream: `words(n)` 32-bit words starting at block
/// counter `start`. Copy it into the worker threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub key: [u32; 2],
    pub start: u128,
}

impl Stream {
    /// The stream of a seed: the key is the seed's two 32-bit halves (low
    /// first) and the counter starts at zero, as `philox4x32(seed)` in
    /// Random123 and cuRAND.
    pub fn new(seed: u64) -> Self {
        Stream {
            key: [seed as u32, (seed >> 32) as u32],
            counter: 0,
            spawned: 0,
        }
    }

    /// The number of blocks a draw of `words` 32-bit words reserves: whole
    /// groups of 64 words (see [`super`] for the layout).
    pub fn blocks_for(words: u64) -> u128 {
        u128::from(words.div_ceil(64)) * GROUP_BLOCKS as u128
    }

    /// Reserves the counters of a draw of `words` words and advances the
    /// stream past them. Fails, changing nothing, only if the 2^128 counters
    /// would run out.
    pub fn reserve(&mut self, words: u64) -> Result<Draw> {
        let end = self
            .counter
            .checked_add(Self::blocks_for(words))
            .ok_or_else(|| {
                Error::Random(format!(
                    "the generator's stream is exhausted (counter {} cannot advance by {} blocks)",
                    self.counter,
                    Self::blocks_for(words)
                ))
            })?;
        let draw = Draw {
            key: self.key,
            start: self.counter,
        };
        self.counter = end;
        Ok(draw)
    }

    /// Gives back the reservation `draw` of `words` words (a call that was
    /// cancelled before its results were returned), if it is still the
    /// last one: the stream is then as before the call. Returns whether it
    /// was given back.
    pub fn release(&mut self, draw: Draw, words: u64) -> bool {
        let last = draw.key == self.key
            && draw.start.checked_add(Self::blocks_for(words)) == Some(self.counter);
        if last {
            self.counter = draw.start;
        }
        last
    }

    /// `n` independent child streams. Child `i` (counting every child this
    /// stream has spawned, so repeated calls give new children) gets the
    /// key made of the first two words of the Philox block of counter
    /// `(i mod 2^32, i / 2^32, 0, SPAWN_DOMAIN)` under this stream's key;
    /// its counter starts at zero. The parent's own draws are unaffected.
    ///
    /// Keys have 64 bits: among `m` streams, two share a key with
    /// probability about `m^2 / 2^65` (3e-8 for a million streams).
    ///
    /// At most [`MAX_SPAWN`] children per call; the list is allocated
    /// fallibly. Fails, changing nothing, on either limit.
    pub fn spawn(&mut self, n: u64) -> Result<Vec<Stream>> {
        if n > MAX_SPAWN {
            return Err(Error::InvalidHyperparameter {
                name: "n".into(),
                value: n as f64,
                expected: "at most 2**20 children per spawn call",
            });
        }
        let end = self.spawned.checked_add(n).ok_or_else(|| {
            Error::Random(format!(
                "cannot spawn {n} more streams ({} spawned so far)",
                self.spawned
            ))
        })?;
        let mut children = crate::alloc::with_capacity(n as usize, "the spawned streams")?;
        children.extend((self.spawned..end).map(|i| {
            let words = block([i as u32, (i >> 32) as u32, 0, SPAWN_DOMAIN], self.key);
            Stream {
                key: [words[0], words[1]],
                counter: 0,
                spawned: 0,
            }
        }));
        self.spawned = end;
        Ok(children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_the_key() {
        let s = Stream::new(0x1234_5678_9abc_def0);
        assert_eq!(s.key, [0x9abc_def0, 0x1234_5678]);
        assert_eq!((s.counter, s.spawned), (0, 0));
    }

    #[test]
    fn reservations_are_whole_groups_and_disjoint() {
        let mut s = Stream::new(1);
        assert_eq!(s.reserve(0).unwrap().start, 0);
        assert_eq!(s.counter, 0);
        assert_eq!(s.reserve(1).unwrap().start, 0);
        assert_eq!(s.reserve(64).unwrap().start, 16);
        assert_eq!(s.reserve(65).unwrap().start, 32);
        assert_eq!(s.counter, 64);
    }

    #[test]
    fn exhausted_stream_errors_and_stays() {
        let mut s = Stream::new(1);
        s.counter = u128::MAX - 16;
        assert!(s.reserve(64).is_ok());
        let before = s;
        assert!(matches!(s.reserve(1), Err(Error::Random(_))));
        assert_eq!(s, before);
    }

    #[test]
    fn huge_spawns_are_refused_and_change_nothing() {
        let mut s = Stream::new(7);
        assert!(s.spawn(MAX_SPAWN + 1).is_err());
        assert!(s.spawn(1 << 62).is_err());
        s.spawned = u64::MAX - 1;
        assert!(s.spawn(2).is_err());
        assert_eq!(s.spawned, u64::MAX - 1);
    }

    #[test]
    fn only_the_last_reservation_is_released() {
        let mut s = Stream::new(1);
        let a = s.reserve(100).unwrap();
        let b = s.reserve(10).unwrap();
        assert!(!s.release(a, 100));
        assert!(s.release(b, 10));
        assert!(s.release(a, 100));
        assert_eq!(s.counter, 0);
    }

    #[test]
    fn spawn_gives_new_keys_each_time() {
        let mut s = Stream::new(7);
        let a = s.spawn(3).unwrap();
        let b = s.spawn(2).unwrap();
        assert_eq!(s.spawned, 5);
        let mut keys: Vec<_> = a.iter().chain(&b).map(|c| c.key).collect();
        keys.push(s.key);
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 6);
        // The same parent state spawns the same children.
        let mut again = Stream::new(7);
        let all = again.spawn(5).unwrap();
        assert_eq!(all[..3], a[..]);
        assert_eq!(all[3..], b[..]);
    }
}
