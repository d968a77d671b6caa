// SPDX-License-Identifier: GPL-2.0

//! Hugetlb entries: one entry per huge page of a hugetlb VMA, whatever its size.

use super::{deref_to_range, HugetlbConfig, WalkRange};
#[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
use crate::mm::virt::VmaRef;
use crate::{bindings, mm::pgtable::Pte, types::NotThreadSafe};
use core::{marker::PhantomData, ptr::NonNull};

/// A hugetlb entry met by a walk, handed to [`PageWalker::hugetlb_entry`].
///
/// # Invariants
///
/// `ptep` is the entry of the hugetlb page of `size` bytes covering `range` of `range.vma`, and
/// the hugetlb VMA lock is held for reading while the `HugetlbEntry` exists, so that the entry is
/// not freed. If `range.uffd_wp`, the walk runs inside an mmu notifier invalidation of a range
/// that covers `range`.
///
/// [`PageWalker::hugetlb_entry`]: super::PageWalker::hugetlb_entry
#[cfg_attr(not(CONFIG_HUGETLB_PAGE), expect(dead_code))]
pub struct HugetlbEntry<'a> {
    range: WalkRange<'a>,
    ptep: NonNull<bindings::pte_t>,
    size: usize,
    _hugetlb: HugetlbConfig,
}

deref_to_range!(HugetlbEntry);

impl HugetlbEntry<'_> {
    /// Returns the size of the huge page.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(CONFIG_HUGETLB_PAGE)]
impl<'a> HugetlbEntry<'a> {
    /// Creates the entry that the C walk's callback, or the Rust walk, hands to
    /// [`PageWalker::hugetlb_entry`].
    ///
    /// # Safety
    ///
    /// `ptep` and `size` satisfy the type invariants for `range` and `'a`: `ptep` is the entry of
    /// the hugetlb page of `size` bytes that covers `range`, and the hugetlb VMA lock is held for
    /// reading while the returned `HugetlbEntry` exists.
    ///
    /// [`PageWalker::hugetlb_entry`]: super::PageWalker::hugetlb_entry
    #[inline]
    pub(super) unsafe fn new(
        range: WalkRange<'a>,
        ptep: NonNull<bindings::pte_t>,
        size: usize,
    ) -> Self {
        // INVARIANT: What the caller guarantees.
        Self {
            range,
            ptep,
            size,
            _hugetlb: (),
        }
    }

    /// Moves the entry on to the next entry of its page table, which covers `self.end()..end`:
    /// the Rust walk lends one `HugetlbEntry` for the entries of a table in turn.
    ///
    /// # Safety
    ///
    /// The huge pages are mapped by the entries of one table (PMD-sized pages, mapped by PMD
    /// entries), and `self.end()..end` is non-empty and lies within the huge page that follows
    /// the one of `self`, in the same table and the same VMA.
    #[cfg(CONFIG_ARCH_WANT_GENERAL_HUGETLB)]
    #[inline]
    pub(super) unsafe fn move_on(&mut self, end: usize) {
        self.range.start = self.range.end;
        self.range.end = end;
        // INVARIANT: The entry after `ptep` in its table is the one of the next huge page,
        // which covers the new range (the function's safety requirements).
        // SAFETY: The next huge page's entry follows `ptep` in the same table.
        self.ptep = unsafe { self.ptep.add(1) };
    }

    /// Reads the entry (without its page-table lock: it may change right after).
    #[inline]
    pub fn pte(&self) -> HugetlbPte<'_> {
        // SAFETY: The entry is valid under the hugetlb VMA lock (type invariants).
        unsafe { HugetlbPte::read(&self.range, self.ptep) }
    }

    /// Locks the entry to change it: takes the file's `i_mmap` lock for writing (so that the
    /// page cannot be unmapped by truncation) and the entry's page-table lock.
    ///
    /// The guard borrows the entry mutably, so that there is one at a time.
    pub fn lock(&mut self) -> HugetlbLock<'_> {
        let vma = self.vma();
        // SAFETY: A hugetlb VMA is backed by a hugetlbfs file, valid while the VMA is.
        let mapping = unsafe { (*(*vma.as_ptr()).vm_file).f_mapping };
        // SAFETY: `mapping` is the live mapping of the VMA's file.
        unsafe { bindings::i_mmap_lock_write(mapping) };
        // SAFETY: `ptep` is an entry of this hugetlb VMA (type invariants), whose hstate it uses.
        let ptl = unsafe {
            bindings::huge_pte_lock(
                bindings::hstate_vma(vma.as_ptr()),
                vma.mm().as_raw(),
                self.ptep.as_ptr(),
            )
        };
        // INVARIANT: Both locks were just taken; `ptep` covers the range (type invariants of
        // `HugetlbEntry`). Nothing is pending.
        HugetlbLock {
            range: self.range,
            ptep: self.ptep,
            size: self.size,
            mapping,
            ptl,
            flush: false,
            _hugetlb: (),
            _nts: NotThreadSafe,
        }
    }
}

/// Without `CONFIG_HUGETLB_PAGE` no VMA is a hugetlb VMA: there is no entry.
#[cfg(not(CONFIG_HUGETLB_PAGE))]
impl HugetlbEntry<'_> {
    /// Reads the entry.
    pub fn pte(&self) -> HugetlbPte<'_> {
        match self._hugetlb {}
    }

    /// Locks the entry.
    pub fn lock(&mut self) -> HugetlbLock<'_> {
        match self._hugetlb {}
    }
}

/// The value of a hugetlb entry, as read by [`HugetlbEntry::pte`] or [`HugetlbLock::pte`].
///
/// It dereferences to the [`Pte`].
///
/// # Invariants
///
/// `pte` was read from the entry of a hugetlb page of a walked VMA, so a present `pte` maps a
/// page frame that has a `struct page`.
#[derive(Clone, Copy)]
pub struct HugetlbPte<'a> {
    pte: Pte,
    _hugetlb: HugetlbConfig,
    _entry: PhantomData<&'a ()>,
}

impl core::ops::Deref for HugetlbPte<'_> {
    type Target = Pte;

    #[inline]
    fn deref(&self) -> &Pte {
        &self.pte
    }
}

#[cfg(CONFIG_HUGETLB_PAGE)]
impl HugetlbPte<'_> {
    /// Reads the hugetlb entry at `ptep`, of the huge page at `range.start()`.
    ///
    /// # Safety
    ///
    /// `ptep` is the entry of a hugetlb page of `range.vma()` covering `range`, valid for the
    /// call.
    #[inline]
    unsafe fn read(range: &WalkRange<'_>, ptep: NonNull<bindings::pte_t>) -> Self {
        // SAFETY: The entry is valid (the function's safety requirements).
        let pte = unsafe {
            bindings::huge_ptep_get(range.vma().mm().as_raw(), range.start(), ptep.as_ptr())
        };
        // INVARIANT: Read from the entry of a hugetlb page of the walked VMA.
        Self {
            pte: Pte::from_raw(pte),
            _hugetlb: (),
            _entry: PhantomData,
        }
    }

    /// Returns whether the entry maps a huge page that is not anonymous: a page of a hugetlbfs
    /// file (a shared mapping, or a private one before copy on write).
    pub fn maps_file_page(&self) -> bool {
        if !self.pte.is_present() {
            return false;
        }
        // SAFETY: A present hugetlb entry maps a page with a `struct page` (type invariants);
        // its flags are read without a lock, as C `pagemap_hugetlb_category()` does.
        !unsafe {
            bindings::folio_test_anon(bindings::page_folio(bindings::pte_page(self.pte.as_raw())))
        }
    }
}

#[cfg(not(CONFIG_HUGETLB_PAGE))]
impl HugetlbPte<'_> {
    /// Returns whether the entry maps a huge page that is not anonymous. Without
    /// `CONFIG_HUGETLB_PAGE` there is no entry.
    pub fn maps_file_page(&self) -> bool {
        match self._hugetlb {}
    }
}

/// A locked hugetlb entry, from [`HugetlbEntry::lock`].
///
/// # Invariants
///
/// `ptep` is the entry of the hugetlb page of `size` bytes covering `range`; this guard holds the
/// `i_mmap` lock of `mapping` (the VMA's file) for writing and the entry's page-table lock `ptl`.
/// If `flush`, the entry was write-protected and the TLB entries of the huge page are flushed
/// before the locks are released.
#[cfg_attr(not(CONFIG_HUGETLB_PAGE), expect(dead_code))]
pub struct HugetlbLock<'a> {
    pub(super) range: WalkRange<'a>,
    pub(super) ptep: NonNull<bindings::pte_t>,
    pub(super) size: usize,
    mapping: *mut bindings::address_space,
    ptl: *mut bindings::spinlock_t,
    pub(super) flush: bool,
    pub(super) _hugetlb: HugetlbConfig,
    _nts: NotThreadSafe,
}

deref_to_range!(HugetlbLock);

#[cfg(CONFIG_HUGETLB_PAGE)]
impl HugetlbLock<'_> {
    /// Reads the entry.
    #[inline]
    pub fn pte(&self) -> HugetlbPte<'_> {
        // SAFETY: The entry is valid and locked (type invariants).
        unsafe { HugetlbPte::read(&self.range, self.ptep) }
    }

    /// Returns whether the walk covers the whole huge page.
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.start() % self.size == 0 && self.end() - self.start() == self.size
    }
}

/// Without `CONFIG_HUGETLB_PAGE` there is no hugetlb entry to lock, and no guard.
#[cfg(not(CONFIG_HUGETLB_PAGE))]
impl HugetlbLock<'_> {
    /// Reads the entry.
    pub fn pte(&self) -> HugetlbPte<'_> {
        match self._hugetlb {}
    }

    /// Returns whether the walk covers the whole huge page.
    pub fn is_whole(&self) -> bool {
        match self._hugetlb {}
    }
}

#[cfg(CONFIG_HUGETLB_PAGE)]
impl Drop for HugetlbLock<'_> {
    fn drop(&mut self) {
        if self.flush {
            super::flush_hugetlb_tlb_range(self.vma(), self.start(), self.end());
        }
        // SAFETY: The guard holds both locks (type invariants); they are released once, in the
        // reverse order of taking them.
        unsafe {
            bindings::spin_unlock(self.ptl);
            bindings::i_mmap_unlock_write(self.mapping);
        }
    }
}

/// The hugetlb VMA lock of a VMA, held for reading (C `hugetlb_vma_lock_read()`): the page tables
/// of the VMA's huge pages are not unshared, and so not freed, while it is held.
///
/// # Invariants
///
/// This guard holds the hugetlb VMA lock of `vma`, a hugetlb VMA, for reading.
#[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
pub(super) struct HugetlbVmaReadLock<'a> {
    vma: &'a VmaRef,
    _nts: NotThreadSafe,
}

#[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
impl<'a> HugetlbVmaReadLock<'a> {
    /// Takes the hugetlb VMA lock of `vma` for reading.
    ///
    /// # Safety
    ///
    /// `vma` is a hugetlb VMA, and the mmap lock of its mm is held for the life of the guard.
    #[inline]
    pub(super) unsafe fn new(vma: &'a VmaRef) -> Self {
        // SAFETY: `vma` is a live hugetlb VMA (the function's safety requirements).
        unsafe { bindings::hugetlb_vma_lock_read(vma.as_ptr()) };
        // INVARIANT: The lock was just taken.
        Self {
            vma,
            _nts: NotThreadSafe,
        }
    }
}

#[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
impl Drop for HugetlbVmaReadLock<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard holds the lock (type invariants); it is released once.
        unsafe { bindings::hugetlb_vma_unlock_read(self.vma.as_ptr()) };
    }
}
