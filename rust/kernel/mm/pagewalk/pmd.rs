// SPDX-License-Identifier: GPL-2.0

//! Page middle directory entries: a table of PTEs or a transparent huge page.

use super::{deref_to_range, PteTable, ThpConfig, WalkRange, PMD_SIZE};
use crate::{bindings, mm::pgtable::Pmd, types::NotThreadSafe};
use core::ptr::NonNull;

/// A page middle directory entry met by a walk, handed to [`PageWalker::pmd_entry`].
///
/// It covers `start()..end()` (at most one PMD's worth of address space) of `vma()`, through
/// its [`WalkRange`]. A walk lends it only for an entry that it found not none.
///
/// # Invariants
///
/// `pmd` points at the PMD entry of `range.vma`'s page tables that covers `range`; `action`, valid
/// for reads and writes while the `PmdEntry` exists, is what the running walk does with the entry
/// once [`PageWalker::pmd_entry`] returns (the `action` of its `struct mm_walk`, or the Rust
/// walk's own). The mmap read lock is held, so the
/// PTE table a non-huge entry points at is not freed while it is mapped by
/// `pte_offset_map_lock()`. If `range.uffd_wp`, the walk runs inside an mmu notifier
/// invalidation of a range that covers `range` for a protection change. `action` may not live
/// for `'a`: a `PmdEntry` is only ever lent to [`PageWalker::pmd_entry`], never given away.
///
/// [`PageWalker::pmd_entry`]: super::PageWalker::pmd_entry
pub struct PmdEntry<'a> {
    range: WalkRange<'a>,
    pmd: NonNull<bindings::pmd_t>,
    action: NonNull<bindings::page_walk_action>,
}

deref_to_range!(PmdEntry);

impl<'a> PmdEntry<'a> {
    /// Creates the entry that the C walk's callback, or the Rust walk, hands to
    /// [`PageWalker::pmd_entry`].
    ///
    /// # Safety
    ///
    /// `pmd` and `action` satisfy the type invariants for `range` and `'a`: `pmd` is the PMD
    /// entry that covers `range`, and `action` is valid for reads and writes while the returned
    /// `PmdEntry` exists.
    #[inline]
    pub(super) unsafe fn new(
        range: WalkRange<'a>,
        pmd: NonNull<bindings::pmd_t>,
        action: NonNull<bindings::page_walk_action>,
    ) -> Self {
        // INVARIANT: What the caller guarantees.
        Self { range, pmd, action }
    }

    /// Moves the entry on to the next entry of its PMD table, which covers `self.end()..end`:
    /// the Rust walk lends one `PmdEntry` for the entries of a table in turn.
    ///
    /// # Safety
    ///
    /// `self.end()..end` is non-empty and lies within the PMD that follows the one of `self`, in
    /// the same PUD and the same VMA.
    #[inline]
    pub(super) unsafe fn move_on(&mut self, end: usize) {
        self.range.start = self.range.end;
        self.range.end = end;
        // INVARIANT: The entry after `pmd` in its table is the one of the next PMD, which covers
        // the new range (the function's safety requirements).
        // SAFETY: The next PMD is in the same PUD, so its entry follows `pmd` in the same table,
        // as `walk_pmd_range()`'s `pmd++` assumes.
        self.pmd = unsafe { self.pmd.add(1) };
    }

    /// Returns whether the entry is none (C `pmd_none(pmdp_get(pmd))`).
    #[inline]
    pub(super) fn is_none(&self) -> bool {
        // SAFETY: By the type invariants, `pmd` is a PMD entry of the VMA's page tables, which
        // are not freed while the mmap lock is held.
        Pmd::from_raw(unsafe { bindings::pmdp_get(self.pmd.as_ptr()) }).is_none()
    }

    /// Returns what the walk is to do with the entry once [`PageWalker::pmd_entry`] returned
    /// (see [`PmdEntry::set_action`]), and makes it go on by default after the next call.
    ///
    /// [`PageWalker::pmd_entry`]: super::PageWalker::pmd_entry
    #[inline]
    pub(super) fn take_action(&mut self) -> bindings::page_walk_action {
        // SAFETY: `action` is valid for reads and writes while `self` exists (type invariants).
        unsafe {
            self.action
                .as_ptr()
                .replace(bindings::page_walk_action_ACTION_SUBTREE)
        }
    }

    /// Reads the entry without its lock (C `pmdp_get_lockless()`) and returns it if it is huge:
    /// a transparent huge page or a PMD-level migration entry, what [`PmdEntry::lock`] would
    /// return as [`PmdLock::Huge`].
    ///
    /// The value is a snapshot of the entry, which may be split, collapsed or changed right
    /// after it was read. That is enough for what depends on the value alone; anything that
    /// follows the entry to its page, or changes the entry, needs [`PmdEntry::lock`].
    #[inline]
    pub fn huge_lockless(&self) -> Option<Pmd> {
        // SAFETY: By the type invariants, `pmd` is a PMD entry of the VMA's page tables, which
        // are not freed while the mmap lock is held; the read is atomic.
        let pmd = Pmd::from_raw(unsafe { bindings::pmdp_get_lockless(self.pmd.as_ptr()) });
        pmd.is_huge().then_some(pmd)
    }

    /// Locks the entry: the huge page it maps, or the table of PTEs it points at.
    ///
    /// For a transparent huge page (or a PMD-level migration entry) this takes the PMD lock
    /// (`pmd_trans_huge_lock()`) and returns [`PmdLock::Huge`]. Otherwise it maps the PTE table
    /// and takes its lock (`pte_offset_map_lock()`), and returns [`PmdLock::Table`] for the PTEs of
    /// `start()..end()`. If the entry changed in between so that neither applies (for example, a
    /// concurrent collapse or the table being freed), it returns [`PmdLock::Retry`] and the walk
    /// will call [`PageWalker::pmd_entry`] again for this entry once the method returns; locking
    /// the entry again in the same call, successfully, cancels that.
    ///
    /// [`PageWalker::pmd_entry`]: super::PageWalker::pmd_entry
    #[inline]
    pub fn lock(&mut self) -> PmdLock<'_> {
        // A retry asked for by an earlier call is void once the entry is locked.
        self.set_action(bindings::page_walk_action_ACTION_SUBTREE);
        // Without transparent huge pages no PMD entry is huge.
        #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
        {
            // SAFETY: By the type invariants, `pmd` is a PMD entry of `vma` and the mmap lock is
            // held, as `pmd_trans_huge_lock()` requires.
            let ptl =
                unsafe { bindings::pmd_trans_huge_lock(self.pmd.as_ptr(), self.vma().as_ptr()) };
            if let Some(ptl) = NonNull::new(ptl) {
                // INVARIANT: `pmd_trans_huge_lock()` returned the held lock of a huge entry; no
                // change is pending yet.
                return PmdLock::Huge(HugePmd {
                    range: self.range,
                    pmd: self.pmd,
                    ptl,
                    flush: false,
                    _thp: (),
                    _nts: NotThreadSafe,
                });
            }
        }

        // SAFETY: By the type invariants, `pmd` is a PMD entry of the range's VMA, which is
        // alive, and the mmap lock is held.
        match unsafe { PteTable::lock(self.range, self.pmd) } {
            Some(ptes) => PmdLock::Table(ptes),
            None => {
                self.set_action(bindings::page_walk_action_ACTION_AGAIN);
                PmdLock::Retry
            }
        }
    }

    /// Sets what the walk does with this entry once [`PageWalker::pmd_entry`] returns: go on
    /// (`ACTION_SUBTREE`, there is nothing below a PMD entry for it to do) or call it again
    /// (`ACTION_AGAIN`).
    ///
    /// [`PageWalker::pmd_entry`]: super::PageWalker::pmd_entry
    #[inline]
    fn set_action(&mut self, action: bindings::page_walk_action) {
        // SAFETY: `action` is valid for reads and writes while `self` exists (type invariants).
        unsafe { self.action.as_ptr().write(action) };
    }
}

/// The result of [`PmdEntry::lock`].
pub enum PmdLock<'a> {
    /// The entry maps a transparent huge page, or is a PMD-level migration entry.
    Huge(HugePmd<'a>),
    /// The entry points at a table of PTEs.
    Table(PteTable<'a>),
    /// The entry changed; return from [`PageWalker::pmd_entry`] and it is called again.
    ///
    /// [`PageWalker::pmd_entry`]: super::PageWalker::pmd_entry
    Retry,
}

/// A locked huge PMD entry.
///
/// # Invariants
///
/// `pmd` is a huge PMD entry (a transparent huge page or a PMD-level migration entry) of
/// `range.vma` covering `range`, and `ptl` is its lock, held by this guard. If `flush`, the
/// entry was write-protected and its TLB entries are flushed before the lock is released.
pub struct HugePmd<'a> {
    pub(super) range: WalkRange<'a>,
    pub(super) pmd: NonNull<bindings::pmd_t>,
    ptl: NonNull<bindings::spinlock_t>,
    pub(super) flush: bool,
    pub(super) _thp: ThpConfig,
    _nts: NotThreadSafe,
}

deref_to_range!(HugePmd);

impl HugePmd<'_> {
    /// Returns the entry.
    #[inline]
    pub fn pmd(&self) -> Pmd {
        // SAFETY: The entry is valid and locked (type invariants).
        Pmd::from_raw(unsafe { bindings::pmdp_get(self.pmd.as_ptr()) })
    }

    /// Returns whether the walk covers the whole huge page.
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.start() % PMD_SIZE == 0 && self.end() - self.start() == PMD_SIZE
    }

    /// Returns whether the huge entry maps a page that is not anonymous memory: a page-cache or
    /// shmem huge page, mapped or being migrated. The huge zero page does not count.
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    pub fn maps_file_page(&self) -> bool {
        let pmd = self.pmd();
        let folio = if pmd.is_present() {
            // SAFETY: The PMD lock is held and `pmd` is the entry's value at `start()`.
            let page = unsafe {
                bindings::vm_normal_page_pmd(self.vma().as_ptr(), self.start(), pmd.as_raw())
            };
            if page.is_null() {
                return false;
            }
            // SAFETY: `vm_normal_page_pmd()` returned the page the locked entry maps.
            unsafe { bindings::page_folio(page) }
        } else {
            match pmd.soft_leaf() {
                // SAFETY: A locked software leaf with a page frame pins its folio.
                Some(leaf) if leaf.has_pfn() => unsafe {
                    bindings::softleaf_to_folio(leaf.as_raw())
                },
                _ => return false,
            }
        };
        // SAFETY: `folio` is the folio the locked entry refers to.
        !unsafe { bindings::folio_test_anon(folio) }
    }

    /// Returns whether the huge entry maps a page that is not anonymous memory. Without
    /// `CONFIG_TRANSPARENT_HUGEPAGE` there is no huge entry.
    #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
    pub fn maps_file_page(&self) -> bool {
        match self._thp {}
    }

    /// Unlocks the entry (after flushing what was protected) and splits the huge page into a
    /// table of PTEs.
    ///
    /// Afterwards [`PmdEntry::lock`] returns the table (or [`PmdLock::Retry`]).
    pub fn split(self) {
        let (vma, pmd, start) = (self.vma(), self.pmd, self.start());
        drop(self);
        // SAFETY: The PMD lock is not held; the mmap lock is, as `split_huge_pmd()` requires, and
        // `pmd` is an entry of `vma` covering `start`.
        unsafe { bindings::split_huge_pmd(vma.as_ptr(), pmd.as_ptr(), start) };
    }
}

impl Drop for HugePmd<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.flush {
            super::flush_tlb_range(self.vma(), self.start(), self.end());
        }
        // SAFETY: The guard holds the lock (type invariants).
        unsafe { bindings::spin_unlock(self.ptl.as_ptr()) };
    }
}
