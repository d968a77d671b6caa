// SPDX-License-Identifier: GPL-2.0

//! Parts of a walked range without a page table.

use crate::{mm::virt::VmaRef, page::PAGE_SIZE};

/// A part of a walked range without a page table, handed to [`PageWalker::pte_hole`]:
/// `start()..end()`, inside [`Hole::vma`] or outside any VMA.
///
/// # Invariants
///
/// `start..end` is part of the walked range, within `vma` if there is one; the mmap read lock is
/// held. If `uffd_wp`, the walk runs inside an mmu notifier invalidation of a range that covers
/// `start..end` for a protection change.
///
/// [`PageWalker::pte_hole`]: super::PageWalker::pte_hole
pub struct Hole<'a> {
    pub(super) vma: Option<&'a VmaRef>,
    start: usize,
    end: usize,
    pub(super) uffd_wp: bool,
}

impl<'a> Hole<'a> {
    /// Creates the hole a walk callback was called with (`uffd_wp` for a walk inside an mmu
    /// notifier invalidation of its range).
    #[inline]
    pub(super) fn new(vma: Option<&'a VmaRef>, start: usize, end: usize, uffd_wp: bool) -> Self {
        // INVARIANT: The walk passes a part of the walked range, and the VMA it is in.
        Self {
            vma,
            start,
            end,
            uffd_wp,
        }
    }

    /// Returns the VMA the hole is in, `None` outside any VMA.
    #[inline]
    pub fn vma(&self) -> Option<&'a VmaRef> {
        self.vma
    }

    /// Returns the first address of the hole.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Returns the end (exclusive) of the hole.
    #[inline]
    pub fn end(&self) -> usize {
        self.end
    }

    /// Returns the number of base pages in the hole.
    #[inline]
    pub fn pages(&self) -> usize {
        (self.end - self.start) / PAGE_SIZE
    }
}
