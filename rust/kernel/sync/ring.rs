// SPDX-License-Identifier: GPL-2.0

//! A bounded log of records that its producers never wait for.
//!
//! A [`Ring`] keeps records in the order they were pushed, up to a capacity fixed when it is
//! made. Producers push from process context, also with other spinlocks held (a page fault
//! pushes with its page table locked), but not from interrupts: [`Ring::push`] takes the ring's
//! spinlock, without disabling interrupts, for a few stores and never sleeps or waits for a
//! reader. When the ring is
//! full the record is not stored; the ring counts it as lost instead, so that the reader learns
//! that it has to recover what it missed by other means.
//!
//! One reader at a time takes records out through a [`RingReader`], which it gets from
//! [`Ring::reader`] (a mutex, so it may sleep): it copies the oldest records out with
//! [`RingReader::peek`], does what may fail with them (copy them to user space, say), and only
//! then removes them with [`RingReader::consume`], so that a failure loses nothing.
//!
//! A producer learns from [`Ring::push`] when the ring becomes worth reading: when it reaches its
//! watermark, or loses its first record since the reader last looked. That is when to wake up a
//! reader that waits for it.

use crate::{
    alloc::{Flags, KVVec},
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Mutex, MutexGuard, SpinLock},
};

/// A bounded, ordered log of records of type `T`.
///
/// # Examples
///
/// ```
/// use kernel::sync::ring::{Pushed, Ring};
///
/// let ring = KBox::pin_init(Ring::<u32>::new(4, 2, GFP_KERNEL)?, GFP_KERNEL)?;
/// assert_eq!(ring.push(1), Pushed::Stored);
/// assert_eq!(ring.push(2), Pushed::Ready);
/// assert!(ring.is_ready());
///
/// let mut reader = ring.reader();
/// let mut out = [0; 8];
/// assert_eq!(reader.peek(&mut out), 2);
/// assert_eq!(out[..2], [1, 2]);
/// reader.consume(2);
/// drop(reader);
///
/// for i in 3..=6 {
///     ring.push(i);
/// }
/// // The ring is full: the next record is lost, and that makes the ring worth reading.
/// assert_eq!(ring.push(7), Pushed::Lost { first: true });
/// assert_eq!(ring.push(8), Pushed::Lost { first: false });
///
/// let mut reader = ring.reader();
/// assert_eq!(reader.peek(&mut out), 4);
/// assert_eq!(out[..4], [3, 4, 5, 6]);
/// reader.consume(4);
/// assert_eq!(reader.take_lost(), 2);
/// assert_eq!(reader.take_lost(), 0);
/// # Ok::<(), Error>(())
/// ```
#[pin_data]
pub struct Ring<T> {
    #[pin]
    state: SpinLock<State<T>>,
    #[pin]
    reader: Mutex<()>,
}

/// The records of a [`Ring`] and what it counts.
///
/// # Invariants
///
/// `buf.len()` is a power of two, `len <= buf.len()`, `head < buf.len()`, and
/// `1 <= watermark <= buf.len()`. The records, oldest first, are at indices `head`, `head + 1`,
/// ... `head + len - 1`, modulo `buf.len()`.
struct State<T> {
    buf: KVVec<T>,
    head: usize,
    len: usize,
    lost: u64,
    watermark: usize,
}

/// What [`Ring::push`] did with a record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pushed {
    /// The record was stored.
    Stored,
    /// The record was stored, and the ring reached its watermark with it.
    Ready,
    /// The ring was full: the record was counted as lost; `first` if it is the first lost
    /// since the reader last took the count (which also makes the ring worth reading).
    Lost {
        /// Whether this is the first record lost since [`RingReader::take_lost`].
        first: bool,
    },
}

impl Pushed {
    /// Returns whether the push made the ring worth reading: a reader waiting for
    /// [`Ring::is_ready`] should be woken up.
    #[inline]
    pub fn wakes(self) -> bool {
        matches!(self, Pushed::Ready | Pushed::Lost { first: true })
    }
}

/// The fill of a [`Ring`] at one point in time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stats {
    /// The records stored.
    pub len: usize,
    /// The records lost since the reader last took the count.
    pub lost: u64,
}

impl<T: Copy + Default> Ring<T> {
    /// Creates a ring of `capacity` records that is ready to read from `watermark` records on.
    ///
    /// The storage is allocated here, with `flags`, so that no push allocates.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless `capacity` is a power of two and `1 <= watermark <= capacity`;
    /// [`ENOMEM`] if the storage cannot be allocated.
    pub fn new(capacity: usize, watermark: usize, flags: Flags) -> Result<impl PinInit<Self>> {
        if !capacity.is_power_of_two() || watermark == 0 || watermark > capacity {
            return Err(EINVAL);
        }
        let buf = KVVec::from_elem(T::default(), capacity, flags)?;
        // INVARIANT: `buf.len() == capacity`, checked above with the watermark; the ring is
        // empty.
        let state = State {
            buf,
            head: 0,
            len: 0,
            lost: 0,
            watermark,
        };
        Ok(pin_init!(Self {
            state <- new_spinlock!(state, "Ring::state"),
            reader <- new_mutex!((), "Ring::reader"),
        }))
    }
}

impl<T: Copy> Ring<T> {
    /// Returns how many records the ring holds at most.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.state.lock().buf.len()
    }

    /// Appends `record`, or counts it as lost if the ring is full. Never sleeps.
    #[inline]
    pub fn push(&self, record: T) -> Pushed {
        let mut state = self.state.lock();
        let capacity = state.buf.len();
        if state.len == capacity {
            state.lost += 1;
            return Pushed::Lost {
                first: state.lost == 1,
            };
        }
        let at = (state.head + state.len) & (capacity - 1);
        state.buf[at] = record;
        // INVARIANT: `len < capacity` before, so `len <= capacity` after; the new record is the
        // newest, at `head + len` modulo the capacity.
        state.len += 1;
        if state.len == state.watermark {
            Pushed::Ready
        } else {
            Pushed::Stored
        }
    }

    /// Returns the number of records stored and lost.
    #[inline]
    pub fn stats(&self) -> Stats {
        let state = self.state.lock();
        Stats {
            len: state.len,
            lost: state.lost,
        }
    }

    /// Returns whether the ring is worth reading: it holds at least its watermark of records,
    /// or lost some.
    #[inline]
    pub fn is_ready(&self) -> bool {
        let state = self.state.lock();
        state.len >= state.watermark || state.lost != 0
    }

    /// Returns the reader of the ring, once no other reader has it. May sleep.
    pub fn reader(&self) -> RingReader<'_, T> {
        RingReader {
            ring: self,
            _guard: self.reader.lock(),
        }
    }
}

/// The one reader of a [`Ring`], from [`Ring::reader`].
///
/// Records are removed only by the reader, so the records it has peeked at stay the oldest
/// ones until it consumes them, whatever producers push meanwhile.
pub struct RingReader<'a, T> {
    ring: &'a Ring<T>,
    _guard: MutexGuard<'a, ()>,
}

impl<T: Copy> RingReader<'_, T> {
    /// Copies the oldest records to `out`, as many as it holds, and returns how many it copied.
    /// The records stay in the ring.
    pub fn peek(&self, out: &mut [T]) -> usize {
        let state = self.ring.state.lock();
        let n = state.len.min(out.len());
        let mask = state.buf.len() - 1;
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = state.buf[(state.head + i) & mask];
        }
        n
    }

    /// Removes the `n` oldest records (at most those in the ring).
    pub fn consume(&mut self, n: usize) {
        let mut state = self.ring.state.lock();
        let n = n.min(state.len);
        let mask = state.buf.len() - 1;
        // INVARIANT: The `n` oldest records go, the others keep their order.
        state.head = (state.head + n) & mask;
        state.len -= n;
    }

    /// Returns the number of records lost since the last call, and starts counting again.
    pub fn take_lost(&mut self) -> u64 {
        core::mem::take(&mut self.ring.state.lock().lost)
    }

    /// Counts `n` more records as lost: records the reader consumed but could not deliver, so
    /// that the next [`RingReader::take_lost`] tells that something is missing.
    pub fn count_lost(&mut self, n: u64) {
        let mut state = self.ring.state.lock();
        state.lost = state.lost.saturating_add(n);
    }

    /// Returns the number of records stored and lost.
    pub fn stats(&self) -> Stats {
        self.ring.stats()
    }
}

#[cfg(CONFIG_RUST_SYNC_RING_KUNIT_TEST)]
#[kunit_tests(rust_sync_ring)]
mod tests {
    use super::*;
    use crate::{
        sync::{Arc, Completion},
        workqueue,
    };

    fn ring(capacity: usize, watermark: usize) -> Result<Pin<KBox<Ring<u64>>>> {
        KBox::pin_init(Ring::new(capacity, watermark, GFP_KERNEL)?, GFP_KERNEL)
    }

    fn read_all(ring: &Ring<u64>) -> Result<KVec<u64>> {
        let mut reader = ring.reader();
        let mut out = KVec::from_elem(0, ring.capacity(), GFP_KERNEL)?;
        let n = reader.peek(&mut out);
        reader.consume(n);
        out.truncate(n);
        Ok(out)
    }

    #[test]
    fn bad_sizes() {
        for (capacity, watermark) in [(0, 1), (3, 1), (6, 2), (4, 0), (4, 5)] {
            assert!(matches!(
                Ring::<u64>::new(capacity, watermark, GFP_KERNEL),
                Err(e) if e == EINVAL
            ));
        }
        assert!(Ring::<u64>::new(1, 1, GFP_KERNEL).is_ok());
    }

    /// Records come out in order across many wraps, whatever the reads' sizes.
    #[test]
    fn order_across_wraps() -> Result {
        let ring = ring(8, 8)?;
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        let mut out = [0; 8];
        for round in 0..100usize {
            // As many as there is room for, so that nothing is lost.
            let room = 8 - ring.stats().len;
            for _ in 0..(round % 8 + 1).min(room) {
                assert!(!matches!(ring.push(next_in), Pushed::Lost { .. }));
                next_in += 1;
            }
            let mut reader = ring.reader();
            // Read a part of it, so that the head moves by odd amounts.
            let n = reader.peek(&mut out[..round % 5 + 1]);
            for &v in &out[..n] {
                assert_eq!(v, next_out);
                next_out += 1;
            }
            reader.consume(n);
            assert_eq!(reader.take_lost(), 0);
        }
        for v in read_all(&ring)?.iter() {
            assert_eq!(*v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        Ok(())
    }

    /// A full ring drops what comes, counts it, and keeps what it had.
    #[test]
    fn full_counts_losses() -> Result {
        let ring = ring(4, 3)?;
        assert_eq!(ring.push(0), Pushed::Stored);
        assert_eq!(ring.push(1), Pushed::Stored);
        assert!(!ring.is_ready());
        assert_eq!(ring.push(2), Pushed::Ready);
        assert!(ring.is_ready());
        assert_eq!(ring.push(3), Pushed::Stored);
        assert_eq!(ring.push(4), Pushed::Lost { first: true });
        assert!(Pushed::Lost { first: true }.wakes());
        assert!(!Pushed::Lost { first: false }.wakes());
        for v in 5..10 {
            assert_eq!(ring.push(v), Pushed::Lost { first: false });
        }
        assert_eq!(ring.stats(), Stats { len: 4, lost: 6 });
        assert_eq!(read_all(&ring)?.as_slice(), &[0, 1, 2, 3]);
        // Lost records keep the ring worth reading until the reader takes the count.
        assert!(ring.is_ready());
        let mut reader = ring.reader();
        assert_eq!(reader.take_lost(), 6);
        reader.count_lost(2);
        assert_eq!(reader.take_lost(), 2);
        drop(reader);
        assert!(!ring.is_ready());
        assert_eq!(ring.push(10), Pushed::Stored);
        assert_eq!(read_all(&ring)?.as_slice(), &[10]);
        Ok(())
    }

    /// A record pushed while the reader holds peeked records is kept after them.
    #[test]
    fn push_while_reading() -> Result {
        let ring = ring(4, 1)?;
        ring.push(1);
        ring.push(2);
        let mut reader = ring.reader();
        let mut out = [0; 1];
        assert_eq!(reader.peek(&mut out), 1);
        ring.push(3);
        reader.consume(1);
        assert_eq!(reader.stats(), Stats { len: 2, lost: 0 });
        drop(reader);
        assert_eq!(read_all(&ring)?.as_slice(), &[2, 3]);
        Ok(())
    }

    /// Producers on several CPUs at once: each one's records come out in its order, none is
    /// lost while there is room, and the losses are counted once there is not.
    #[test]
    fn concurrent_producers() -> Result {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 2000;
        for capacity in [8192usize, 1024] {
            let ring = Arc::pin_init(Ring::<u64>::new(capacity, 1, GFP_KERNEL)?, GFP_KERNEL)?;
            let mut done = KVec::new();
            for p in 0..PRODUCERS {
                let finished = Arc::pin_init(Completion::new(), GFP_KERNEL)?;
                done.push(finished.clone(), GFP_KERNEL)?;
                let ring = ring.clone();
                workqueue::system_dfl().try_spawn(GFP_KERNEL, move || {
                    for i in 0..EACH {
                        ring.push(p << 32 | i);
                    }
                    finished.complete_all();
                })?;
            }
            for finished in done.iter() {
                finished.wait_for_completion();
            }
            let mut reader = ring.reader();
            let mut out = KVec::from_elem(0, capacity, GFP_KERNEL)?;
            let n = reader.peek(&mut out);
            reader.consume(n);
            let lost = reader.take_lost();
            assert_eq!(n as u64 + lost, PRODUCERS * EACH);
            assert_eq!(n, capacity.min((PRODUCERS * EACH) as usize));
            let mut next = [0u64; PRODUCERS as usize];
            for v in out[..n].iter() {
                let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                // In each producer's order; a gap only where records were lost.
                assert!(i >= next[p]);
                assert!(lost != 0 || i == next[p]);
                next[p] = i + 1;
            }
        }
        Ok(())
    }
}
