// SPDX-License-Identifier: GPL-2.0

//! Page-table walks.
//!
//! [`MmapReadGuard::walk_page_range`] walks the page tables of a range of an address space
//! (C `walk_page_range()`) and calls the methods of a [`PageWalker`] on what it finds:
//!
//! - [`PageWalker::test_vma`] once for each VMA that overlaps the range, to walk it or skip it;
//! - [`PageWalker::pmd_entry`] for each page middle directory entry that is not none: either a
//!   table of PTEs or a transparent huge page. [`PmdEntry::lock`] takes the right page-table
//!   lock and returns a [`PteTable`] to read the PTEs of the range, or a [`HugePmd`];
//! - [`PageWalker::pte_hole`] for each part of the range that has no page table, inside or
//!   outside a VMA;
//! - [`PageWalker::hugetlb_entry`] for each hugetlb page of a hugetlb VMA.
//!
//! The caller holds the mmap read lock for the whole walk: the method is on the lock's guard, so
//! a walk without it does not compile. The lock keeps the VMAs and the upper page-table levels in
//! place; entries at the PTE and huge-PMD level can still change (faults, reclaim, migration)
//! until the walker takes the page-table lock (`ptl`) that covers them, and that is what the lock
//! guards here do.
//!
//! A walker method returns [`ControlFlow::Continue`] to go on, [`ControlFlow::Break`] to end the
//! walk early (the walk then returns `Ok(ControlFlow::Break(()))`), or an error, which ends the
//! walk and is returned.
//!
//! A walk started with [`MmapReadGuard::walk_page_range_uffd_wp`] may also write-protect what it
//! finds in VMAs registered for userfaultfd write protection: see the [`uffd`] module.
//!
//! C header: [`include/linux/pagewalk.h`](srctree/include/linux/pagewalk.h)

use crate::{
    bindings,
    error::{code::EINVAL, Error, Result, VTABLE_DEFAULT_ERROR},
    ffi::{c_int, c_ulong, c_void},
    mm::{virt::VmaRef, MmapReadGuard},
    page::PAGE_SIZE,
    prelude::*,
};
use core::{marker::PhantomData, ops::ControlFlow, ptr::NonNull};

mod hole;
mod hugetlb;
mod pmd;
mod pte;
#[cfg(CONFIG_RUST_MM_PAGEWALK_KUNIT_TEST)]
mod tests;
pub mod uffd;

pub use self::{
    hole::Hole,
    hugetlb::{HugetlbEntry, HugetlbLock, HugetlbPte},
    pmd::{HugePmd, PmdEntry, PmdLock},
    pte::PteTable,
};
#[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
use hugetlb::HugetlbVmaReadLock;

/// The size of the address range a PMD entry maps.
///
/// From C (`RUST_CONST_HELPER_PMD_SIZE`): arm64 computes `PMD_SHIFT` from the page-table
/// geometry, which bindgen cannot evaluate. (Where the PMD geometry is chosen at boot, as on
/// powerpc book3s64, `PMD_SIZE` is not a constant at all; this module does not build there.)
pub(crate) const PMD_SIZE: usize = bindings::PMD_SIZE;

/// The size of the address range a PUD entry maps (`RUST_CONST_HELPER_PUD_SIZE`, as
/// [`PMD_SIZE`]).
const PUD_SIZE: usize = bindings::PUD_SIZE;

/// `()` with transparent huge pages, the empty type without: a field of this type makes the types
/// of huge PMD entries (see [`HugePmd`]) empty where no such entry can exist, so that their
/// methods need no implementation there.
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
type ThpConfig = ();
#[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
type ThpConfig = core::convert::Infallible;

/// `()` with hugetlb pages, the empty type without: like [`ThpConfig`], for the types of hugetlb
/// entries (see [`HugetlbEntry`]).
#[cfg(CONFIG_HUGETLB_PAGE)]
type HugetlbConfig = ();
#[cfg(not(CONFIG_HUGETLB_PAGE))]
type HugetlbConfig = core::convert::Infallible;

/// What to do with a VMA, decided by [`PageWalker::test_vma`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VmaAction {
    /// Walk the page tables of the VMA.
    Walk,
    /// Skip the VMA: none of the walker's methods is called for it.
    Skip,
}

/// What a walker method returns: go on, or end the walk.
pub type WalkResult = Result<ControlFlow<()>>;

/// Callbacks of a page-table walk.
///
/// Implement the methods you need; a walk calls only those (the rest are left out of the C
/// `struct mm_walk_ops`). Without [`PageWalker::test_vma`], VMAs with `VM_PFNMAP` are skipped;
/// without [`PageWalker::hugetlb_entry`], hugetlb VMAs are skipped entirely.
///
/// # Examples
///
/// Count the pages of a range that are mapped:
///
/// ```
/// use core::ops::ControlFlow;
/// use kernel::kunit::{prot, vm_mmap};
/// use kernel::mm::pagewalk::{PageWalker, PmdEntry, PmdLock, WalkResult};
/// use kernel::page::PAGE_SIZE;
/// use kernel::uaccess::{UserPtr, UserSlice};
///
/// struct CountPresent(usize);
///
/// #[vtable]
/// impl PageWalker for CountPresent {
///     fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
///         match entry.lock() {
///             PmdLock::Table(ptes) => {
///                 self.0 += ptes.iter().filter(|(_, pte)| pte.is_present()).count();
///             }
///             PmdLock::Huge(huge) => self.0 += huge.pages(),
///             PmdLock::Retry => {}
///         }
///         Ok(ControlFlow::Continue(()))
///     }
/// }
///
/// let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
/// for page in [1, 2, 6] {
///     UserSlice::new(UserPtr::from_addr(addr + page * PAGE_SIZE), 1).writer().write(&1u8)?;
/// }
///
/// let current = kernel::current!();
/// let mm = current.mm().ok_or(ESRCH)?;
/// let mut count = CountPresent(0);
/// mm.mmap_read_lock().walk_page_range(addr, addr + 8 * PAGE_SIZE, &mut count)?;
/// assert_eq!(count.0, 3);
/// # Ok::<(), Error>(())
/// ```
#[vtable]
pub trait PageWalker: Sized {
    /// Decides whether to walk a VMA; `start..end` is the part of the VMA in the walked range.
    fn test_vma(&mut self, _vma: &VmaRef, _start: usize, _end: usize) -> Result<VmaAction> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called for each page middle directory entry in a walked VMA that is not none.
    fn pmd_entry(&mut self, _entry: &mut PmdEntry<'_>) -> WalkResult {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called for each part of the range without a page table.
    ///
    /// [`Hole::vma`] is `None` for parts outside any VMA. A walker without
    /// [`PageWalker::test_vma`] also gets each `VM_PFNMAP` VMA as one hole, which is then
    /// skipped; a break returned for it only skips that VMA (C `walk_page_test()`).
    fn pte_hole(&mut self, _hole: &mut Hole<'_>) -> WalkResult {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called for each huge page (present or not) of a hugetlb VMA.
    fn hugetlb_entry(&mut self, _entry: &mut HugetlbEntry<'_>) -> WalkResult {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The result of a C walk: 0 once through, a positive value after a break, or a negative errno.
#[inline]
fn walk_result(ret: c_int) -> WalkResult {
    match ret {
        0 => Ok(ControlFlow::Continue(())),
        r if r > 0 => Ok(ControlFlow::Break(())),
        r => Err(Error::from_errno(r)),
    }
}

impl MmapReadGuard<'_> {
    /// Walks the page tables of `start..end` with `walker`.
    ///
    /// Returns `Ok(ControlFlow::Break(()))` if a method of `walker` ended the walk early,
    /// `Ok(ControlFlow::Continue(()))` if it went through the whole range.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `start >= end`; otherwise the first error a method of `walker` returned.
    #[inline]
    pub fn walk_page_range<T: PageWalker>(
        &self,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        self.walk::<T, false>(start, end, walker)
    }

    /// Walks the page tables of `start..end` with `walker`, which may write-protect what it finds
    /// in VMAs registered for userfaultfd write protection (see [`uffd`]).
    ///
    /// The walk runs inside an mmu notifier invalidation of `start..end` for a protection change
    /// (`MMU_NOTIFY_PROTECTION_VMA`): secondary MMUs that mirror the address space (KVM, devices
    /// sharing it) drop their mappings of the range before it and may map it again, with the new
    /// protection, after it. Each lock guard flushes the TLB entries of what it protected before
    /// it releases its lock.
    ///
    /// # Errors
    ///
    /// As [`MmapReadGuard::walk_page_range`].
    pub fn walk_page_range_uffd_wp<T: PageWalker>(
        &self,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        self.invalidating(start, end, || self.walk::<T, true>(start, end, walker))
    }

    /// Walks the page tables of `start..end`, which lies within `vma`, a VMA of this mm, with
    /// `walker`, as [`MmapReadGuard::walk_page_range_uffd_wp`] does, but without looking the VMA
    /// up and without [`PageWalker::test_vma`]: for a caller that walks many small ranges of a
    /// VMA it has looked up and tested once.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `start >= end`, if `start..end` is not within `vma`, or if `vma` is not a VMA
    /// of this mm; otherwise the first error a method of `walker` returned.
    pub fn walk_vma_range_uffd_wp<T: PageWalker>(
        &self,
        vma: &VmaRef,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        if start >= end || start < vma.start() || end > vma.end() {
            return Err(EINVAL);
        }
        if !core::ptr::eq(vma.mm().as_raw(), self.mm.as_raw()) {
            return Err(EINVAL);
        }
        self.invalidating(start, end, || {
            // SAFETY: `start..end` is non-empty and lies within `vma`, a VMA of this mm (checked
            // above); the walk runs inside an mmu notifier invalidation of `start..end`.
            unsafe { self.walk_vma::<T, true>(vma, start, end, walker) }
        })
    }

    /// Returns the PMD entry of this mm that covers `addr` if the tables above it are populated
    /// (none of their entries is none, bad, not present or a huge page): what `walk_pud_range()`
    /// would hand to `walk_pmd_range()` for it.
    ///
    /// Otherwise returns the end of the part of `addr..end` that the entry which is not a table
    /// covers (`pgd_addr_end()`, `p4d_addr_end()` or `pud_addr_end()`): what the C walk, from
    /// `addr`, would report as one hole, retry or split before it goes on.
    ///
    /// # Safety
    ///
    /// `addr` is within a VMA of this mm, and `addr < end`. If that VMA is a hugetlb VMA, its
    /// hugetlb VMA lock is held for reading for as long as the returned entry is used.
    #[inline]
    unsafe fn pmd_of(&self, addr: usize, end: usize) -> Result<NonNull<bindings::pmd_t>, usize> {
        // SAFETY: `addr` is in a VMA of this mm (the function's safety requirements), whose
        // mmap read lock is held (type invariants): the upper tables that cover a VMA are freed
        // only once it is gone (`free_pgtables()`), and an entry of them that points at a table
        // does not change under the read lock, but for the PUD entry of a shared hugetlb PMD
        // table, which is unshared only under the hugetlb VMA lock (held for a hugetlb VMA, the
        // function's safety requirements); so each table followed below stays valid while it
        // is used. An entry that is none, bad, not present or a leaf ends the descent before it
        // is followed. (The `pXd_offset()` helpers read the entry above again, as the C walk's
        // do.)
        unsafe {
            // Each level's end within the one above it, as the C walk's loops nest (a folded
            // level's `pXd_addr_end()` is the end it is given).
            let pgd = bindings::pgd_offset(self.mm.as_raw(), addr);
            let entry = bindings::pgdp_get(pgd);
            let end = bindings::pgd_addr_end(addr, end);
            if bindings::pgd_none(entry) != 0
                || bindings::pgd_present(entry) == 0
                || bindings::pgd_bad(entry) != 0
            {
                return Err(end);
            }
            let p4d = bindings::p4d_offset(pgd, addr);
            let entry = bindings::p4dp_get(p4d);
            let end = bindings::p4d_addr_end(addr, end);
            if bindings::p4d_none(entry) != 0
                || bindings::p4d_present(entry) == 0
                || bindings::p4d_bad(entry) != 0
            {
                return Err(end);
            }
            let pud = bindings::pud_offset(p4d, addr);
            let entry = bindings::pudp_get(pud);
            let end = addr_end(addr, end, PUD_SIZE);
            if bindings::pud_none(entry) != 0
                || bindings::pud_present(entry) == 0
                || bindings::pud_leaf(entry)
                || bindings::pud_bad(entry) != 0
            {
                return Err(end);
            }
            NonNull::new(bindings::pmd_offset(pud, addr)).ok_or(end)
        }
    }

    /// Runs `walk` inside an mmu notifier invalidation of `start..end` for a protection change.
    #[inline]
    fn invalidating<R>(
        &self,
        start: usize,
        end: usize,
        walk: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        if start >= end {
            return Err(EINVAL);
        }
        let mut range = core::mem::MaybeUninit::<bindings::mmu_notifier_range>::uninit();
        // SAFETY: `range` is valid for writes and is fully initialised by the call; the mm is
        // alive and its mmap lock held (type invariants).
        unsafe {
            bindings::mmu_notifier_range_init(
                range.as_mut_ptr(),
                bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA,
                0,
                self.mm.as_raw(),
                start,
                end,
            )
        };
        // SAFETY: `range` was initialised above. It stays in this frame, so it does not move
        // before the invalidation is ended below, with the mmap lock still held.
        unsafe { bindings::mmu_notifier_invalidate_range_start(range.as_mut_ptr()) };
        let ret = walk();
        // SAFETY: Ends the invalidation started above, on the same range.
        unsafe { bindings::mmu_notifier_invalidate_range_end(range.as_mut_ptr()) };
        ret
    }

    /// Walks `start..end` as C `walk_page_range()` does, calling the same methods of `walker` in
    /// the same order (see [`MmapReadGuard::walk_vma`]), but finds each VMA from the one before
    /// it ([`MmapReadGuard::vmas`]) instead of looking it up from the top of the VMA tree: that
    /// lookup was a fifth of the cost of a walk over many small VMAs.
    fn walk<T: PageWalker, const UFFD_WP: bool>(
        &self,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        if start >= end {
            return Err(EINVAL);
        }
        let mut addr = start;
        for vma in self.vmas(start, end) {
            if addr < vma.start() {
                // The gap before the VMA.
                if Self::hole::<T, UFFD_WP>(walker, None, addr, vma.start())?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                addr = vma.start();
            }
            let next = end.min(vma.end());
            if Self::test_vma::<T, UFFD_WP>(walker, vma, addr, next)? == VmaAction::Walk {
                // SAFETY: `vma` is a VMA of this mm that overlaps `start..end`, and `addr..next`
                // is its non-empty part from `addr`; with `UFFD_WP`, the caller runs the walk
                // inside an mmu notifier invalidation of `start..end`.
                let walked = unsafe { self.walk_vma::<T, UFFD_WP>(vma, addr, next, walker) }?;
                if walked.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            addr = next;
        }
        if addr < end {
            // After the last VMA.
            return Self::hole::<T, UFFD_WP>(walker, None, addr, end);
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Walks `start..end` of `vma` with `walker` (C `walk_page_range_vma()`), without testing the
    /// VMA.
    ///
    /// For a walker with [`PageWalker::pmd_entry`] in a VMA that is not hugetlb, the range is
    /// walked here, one PUD at a time: the first PMD entry of each part is found by
    /// [`MmapReadGuard::pmd_of`] and the entries are handed to the walker as `walk_pmd_range()`
    /// would, without the C walk's setup, descent through every level and call through the ops
    /// table (a quarter of the cost of walking a VMA of 16 pages, and a third of the scan of a
    /// transparent huge page). The part an upper entry that is not a table covers (a PGD, P4D or
    /// PUD entry), a hugetlb VMA, or a walker without [`PageWalker::pmd_entry`], goes to the C
    /// walk.
    ///
    /// # Safety
    ///
    /// `start..end` is non-empty and lies within `vma`, a VMA of this mm. With `UFFD_WP`, the call
    /// runs inside an mmu notifier invalidation of a range that covers `start..end`.
    #[inline]
    unsafe fn walk_vma<T: PageWalker, const UFFD_WP: bool>(
        &self,
        vma: &VmaRef,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        if vma.is_hugetlb() {
            #[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
            if T::HAS_HUGETLB_ENTRY {
                // SAFETY: `vma` is a hugetlb VMA, backed by a hugetlbfs file with an hstate.
                let size = unsafe { bindings::huge_page_size(bindings::hstate_vma(vma.as_ptr())) };
                if size == PMD_SIZE {
                    // SAFETY: `start..end` is non-empty and lies within `vma` (the function's
                    // safety requirements), a hugetlb VMA of this mm (checked above) whose pages
                    // are PMD-sized (`size`), on an architecture with the generic hugetlb page
                    // tables (the `cfg` above); with `UFFD_WP`, inside the invalidation.
                    return unsafe { self.walk_hugetlb_vma::<T, UFFD_WP>(vma, start, end, walker) };
                }
            }
            // SAFETY: `start..end` is non-empty and lies within `vma`, a VMA of this mm; with
            // `UFFD_WP`, the call runs inside an mmu notifier invalidation of a range that covers
            // it (the function's safety requirements).
            return unsafe { self.walk_vma_in_c::<T, UFFD_WP>(vma, start, end, walker) };
        }
        // Without `pmd_entry` the C walk goes below the top level for nothing (not even for the
        // holes of none PMD entries), so it alone decides what a walker with `pte_hole` only sees.
        if !T::HAS_PMD_ENTRY {
            // SAFETY: `start..end` is non-empty and lies within `vma`, a VMA of this mm; with
            // `UFFD_WP`, the call runs inside an mmu notifier invalidation of a range that covers
            // it (the function's safety requirements).
            return unsafe { self.walk_vma_in_c::<T, UFFD_WP>(vma, start, end, walker) };
        }
        if start & !(PMD_SIZE - 1) == (end - 1) & !(PMD_SIZE - 1) {
            // Within one PMD (a small VMA, or a harvest of the log of written pages for one
            // page): its one entry, without the loops' setup, as the loops below would.
            // SAFETY: `start` is within `vma`, a VMA of this mm that is not hugetlb (returned
            // above), and before `end` (the function's safety requirements).
            return match unsafe { self.pmd_of(start, end) } {
                Ok(pmd) => {
                    let range = WalkRange {
                        vma,
                        start,
                        end,
                        uffd_wp: UFFD_WP,
                    };
                    let mut action = bindings::page_walk_action_ACTION_SUBTREE;
                    // SAFETY: `pmd` is the PMD entry that covers `range`, which lies within one
                    // PMD of `vma`, with the mmap read lock held (type invariants); with
                    // `UFFD_WP`, inside the invalidation (the function's safety requirements).
                    // `action` lives in this frame, which outlives `entry`.
                    let mut entry =
                        unsafe { PmdEntry::new(range, pmd, NonNull::from(&mut action)) };
                    Self::walk_pmd(&mut entry, walker)
                }
                // SAFETY: `start..end` is non-empty and lies within `vma`, a VMA of this mm; with
                // `UFFD_WP`, inside the invalidation (the function's safety requirements).
                Err(_) => unsafe { self.walk_vma_in_c::<T, UFFD_WP>(vma, start, end, walker) },
            };
        }
        let mut addr = start;
        loop {
            // SAFETY: `addr` is within `vma`, a VMA of this mm that is not hugetlb (returned
            // above), and before `end` (the function's safety requirements).
            let (next, walked) = match unsafe { self.pmd_of(addr, end) } {
                Ok(pmd) => {
                    let next = addr_end(addr, end, PUD_SIZE);
                    let range = WalkRange {
                        vma,
                        start: addr,
                        end: next,
                        uffd_wp: UFFD_WP,
                    };
                    // SAFETY: `pmd` is the PMD entry of this mm that covers `addr`, the start of
                    // `range`, which lies within one PUD of `vma`; with `UFFD_WP`, the call runs
                    // inside an mmu notifier invalidation of a range that covers it (the
                    // function's safety requirements).
                    (next, unsafe { Self::walk_pmds(range, pmd, walker) }?)
                }
                // The C walk of the part that the upper entry covers: from `addr`, as it is a
                // boundary of that entry's part or the start, it reports the same hole as the C
                // walk of the whole range would, or handles the huge or non-present PUD entry.
                Err(next) => {
                    // SAFETY: `addr..next` is a non-empty part of `start..end`, which lies within
                    // `vma`, a VMA of this mm, inside the invalidation with `UFFD_WP` (the
                    // function's safety requirements).
                    let walked =
                        unsafe { self.walk_vma_in_c::<T, UFFD_WP>(vma, addr, next, walker) };
                    (next, walked?)
                }
            };
            if walked.is_break() || next == end {
                return Ok(walked);
            }
            addr = next;
        }
    }

    /// Walks `start..end` of `vma`, a hugetlb VMA of PMD-sized pages, as C `walk_hugetlb_range()`
    /// does: each huge page is handed to [`PageWalker::hugetlb_entry`], none or not. The walk
    /// goes one PUD at a time, under the hugetlb VMA lock, and steps from one PMD entry to the
    /// next instead of looking each one up from the top (`hugetlb_walk()`). The part that an
    /// upper entry which is not a table covers goes to the C walk, which reports its huge pages
    /// as holes.
    ///
    /// # Safety
    ///
    /// `start..end` is non-empty and lies within `vma`, a hugetlb VMA of this mm whose huge pages
    /// are PMD-sized, in an architecture whose hugetlb entries are the entries of the page table
    /// level of their size (`CONFIG_ARCH_WANT_GENERAL_HUGETLB`). With `UFFD_WP`, the call runs
    /// inside an mmu notifier invalidation of a range that covers `start..end`.
    #[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
    unsafe fn walk_hugetlb_vma<T: PageWalker, const UFFD_WP: bool>(
        &self,
        vma: &VmaRef,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        let mut addr = start;
        loop {
            // The tables are looked up under the lock, as `walk_hugetlb_range()` does: a shared
            // PMD table could otherwise be unshared and freed under the walk.
            // SAFETY: `vma` is a hugetlb VMA of this mm, whose mmap read lock is held for the
            // life of the guard (type invariants).
            let lock = unsafe { HugetlbVmaReadLock::new(vma) };
            // SAFETY: `addr` is within `vma`, a VMA of this mm, and before `end` (the function's
            // safety requirements); `lock`, its hugetlb VMA lock, is held while the entry
            // returned is used, by the walk of the part below.
            let (next, walked) = match unsafe { self.pmd_of(addr, end) } {
                Ok(pmd) => {
                    let next = addr_end(addr, end, PUD_SIZE);
                    let range = WalkRange {
                        vma,
                        start: addr,
                        end: next,
                        uffd_wp: UFFD_WP,
                    };
                    // SAFETY: `pmd` is the PMD entry of this mm that covers `addr`, the start of
                    // `range`, which lies within one PUD of `vma`, a hugetlb VMA of PMD-sized
                    // pages; with `UFFD_WP`, the call runs inside an mmu notifier invalidation of
                    // a range that covers it (the function's safety requirements).
                    let walked = unsafe { Self::walk_hugetlb_pmds(range, pmd, &lock, walker) };
                    (next, walked?)
                }
                Err(next) => {
                    // The C walk takes the lock itself.
                    drop(lock);
                    // SAFETY: `addr..next` is a non-empty part of `start..end`, which lies within
                    // `vma`, a VMA of this mm, inside the invalidation with `UFFD_WP` (the
                    // function's safety requirements).
                    let walked =
                        unsafe { self.walk_vma_in_c::<T, UFFD_WP>(vma, addr, next, walker) };
                    (next, walked?)
                }
            };
            if walked.is_break() || next == end {
                return Ok(walked);
            }
            addr = next;
        }
    }

    /// Hands the hugetlb entries of `range`, the first of which is `pmd`, to `walker` one after
    /// the other, as C `walk_hugetlb_range()` does, until one breaks.
    ///
    /// # Safety
    ///
    /// `pmd` is the PMD entry of the mm whose mmap read lock is held that covers the start of
    /// `range`, which lies within one PUD of the VMA of `lock`, a hugetlb VMA of PMD-sized pages
    /// as [`MmapReadGuard::walk_hugetlb_vma`] requires. If `range.uffd_wp`, the call runs inside
    /// an mmu notifier invalidation of a range that covers `range`.
    #[cfg(all(CONFIG_HUGETLB_PAGE, CONFIG_ARCH_WANT_GENERAL_HUGETLB))]
    #[inline]
    unsafe fn walk_hugetlb_pmds<T: PageWalker>(
        range: WalkRange<'_>,
        pmd: NonNull<bindings::pmd_t>,
        _lock: &HugetlbVmaReadLock<'_>,
        walker: &mut T,
    ) -> WalkResult {
        let end = range.end;
        let first = WalkRange {
            end: addr_end(range.start, end, PMD_SIZE),
            ..range
        };
        // SAFETY: The PMD entry that covers `first` is the entry of its huge page (a PMD-sized
        // page of a hugetlb VMA where those are the entries of their level), and `_lock`, the
        // hugetlb VMA lock held for reading, outlives `entry` (the function's safety
        // requirements).
        let mut entry = unsafe { HugetlbEntry::new(first, pmd.cast(), PMD_SIZE) };
        loop {
            let walked = walker.hugetlb_entry(&mut entry)?;
            if walked.is_break() || entry.end() == end {
                return Ok(walked);
            }
            // Past the first, each entry starts at the start of its huge page.
            let next = end.min(entry.end() + PMD_SIZE);
            // SAFETY: The huge pages are PMD-sized, mapped by the entries of one PMD table, and
            // `entry.end()..next` is non-empty and lies within the next one, in the same PUD and
            // VMA as `range` (the function's safety requirements).
            unsafe { entry.move_on(next) };
        }
    }

    /// Walks `start..end` of `vma` with the C walk, `walk_page_range_vma()`.
    ///
    /// # Safety
    ///
    /// `start..end` is non-empty and lies within `vma`, a VMA of this mm. With `UFFD_WP`, the call
    /// runs inside an mmu notifier invalidation of a range that covers `start..end`.
    #[inline]
    unsafe fn walk_vma_in_c<T: PageWalker, const UFFD_WP: bool>(
        &self,
        vma: &VmaRef,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> WalkResult {
        // SAFETY: `vma` is a VMA of this mm, whose mmap read lock is held (type invariants) for
        // the whole call, as `PGWALK_RDLOCK` requires, and `start..end` lies within it (the
        // function's safety requirements). The ops table is static and its callbacks expect
        // `private` to be a `T`, which `walker` is; it outlives the call and is not otherwise used
        // during it. With `UFFD_WP`, the walk runs inside an mmu notifier invalidation of
        // `start..end`, as the callbacks then expect.
        let ret = unsafe {
            bindings::walk_page_range_vma(
                vma.as_ptr(),
                start,
                end,
                &WalkOps::<T, UFFD_WP>::OPS,
                core::ptr::from_mut(walker).cast::<c_void>(),
            )
        };
        walk_result(ret)
    }

    /// Hands the PMD entries of `range`, the first of which is `pmd`, to `walker` one after the
    /// other, as C `walk_pmd_range()` does ([`MmapReadGuard::walk_pmd`]), until one breaks.
    ///
    /// # Safety
    ///
    /// `pmd` is the PMD entry of the mm whose mmap read lock is held that covers the start of
    /// `range`, which lies within one PUD of a VMA that is not hugetlb; `T` has
    /// [`PageWalker::pmd_entry`]. If `range.uffd_wp`, the call runs inside an mmu notifier
    /// invalidation of a range that covers `range`.
    ///
    /// Out of line: the walkers' `pmd_entry()` is inline in its loop, which stays tighter in a
    /// function of its own.
    #[inline(never)]
    unsafe fn walk_pmds<T: PageWalker>(
        range: WalkRange<'_>,
        pmd: NonNull<bindings::pmd_t>,
        walker: &mut T,
    ) -> WalkResult {
        let end = range.end;
        let first = WalkRange {
            end: addr_end(range.start, end, PMD_SIZE),
            ..range
        };
        let mut action = bindings::page_walk_action_ACTION_SUBTREE;
        // One `PmdEntry` is lent for each entry in turn: from one to the next, only its range
        // and entry change.
        // SAFETY: `pmd` is the PMD entry that covers `first`, within one PMD of the VMA, with
        // the mmap read lock held; with `uffd_wp`, inside the invalidation (the function's safety
        // requirements). `action` lives in this frame, which outlives `entry`.
        let mut entry = unsafe { PmdEntry::new(first, pmd, NonNull::from(&mut action)) };
        loop {
            let walked = Self::walk_pmd(&mut entry, walker)?;
            if walked.is_break() || entry.end() == end {
                return Ok(walked);
            }
            // Past the first, each entry starts at the start of its PMD.
            let next = end.min(entry.end() + PMD_SIZE);
            // SAFETY: `entry.end()..next` is non-empty and lies within the next PMD, which is
            // in the same PUD and VMA as `range` (the function's safety requirements).
            unsafe { entry.move_on(next) };
        }
    }

    /// Hands `entry` to `walker`, as C `walk_pmd_range()` does for one entry: a none entry as
    /// a hole, any other to [`PageWalker::pmd_entry`], again for as long as that asks for it
    /// ([`PmdLock::Retry`]).
    ///
    /// Only for a VMA that is not hugetlb, and a `T` that has [`PageWalker::pmd_entry`].
    /// Inline in both of its callers: it is the body of `walk_pmds()`'s loop.
    #[inline(always)]
    fn walk_pmd<T: PageWalker>(entry: &mut PmdEntry<'_>, walker: &mut T) -> WalkResult {
        loop {
            if entry.is_none() {
                if !T::HAS_PTE_HOLE {
                    return Ok(ControlFlow::Continue(()));
                }
                // INVARIANT (of `Hole`): `entry`'s range is part of the walked range, within its
                // VMA, with the mmap read lock held; with `uffd_wp` inside an invalidation of it
                // (as `walk_pmds()` made and moved `entry`, and its type invariants).
                let mut hole =
                    Hole::new(Some(entry.vma()), entry.start(), entry.end(), entry.uffd_wp);
                return walker.pte_hole(&mut hole);
            }
            let walked = walker.pmd_entry(entry)?;
            if walked.is_break() || entry.take_action() != bindings::page_walk_action_ACTION_AGAIN {
                return Ok(walked);
            }
        }
    }

    /// Decides whether a walk goes into `vma`, as C `walk_page_test()`: [`PageWalker::test_vma`]
    /// does, or else a `VM_PFNMAP` VMA is skipped, after being passed as a hole (a break returned
    /// for that hole only skips the VMA).
    #[inline]
    fn test_vma<T: PageWalker, const UFFD_WP: bool>(
        walker: &mut T,
        vma: &VmaRef,
        start: usize,
        end: usize,
    ) -> Result<VmaAction> {
        if T::HAS_TEST_VMA {
            return walker.test_vma(vma, start, end);
        }
        if vma.flags() & crate::mm::virt::flags::PFNMAP == 0 {
            return Ok(VmaAction::Walk);
        }
        // A break for this hole only ends the VMA, which is skipped anyway.
        let _ = Self::hole::<T, UFFD_WP>(walker, Some(vma), start, end)?;
        Ok(VmaAction::Skip)
    }

    /// Passes `start..end`, a part of the walked range without page tables, to
    /// [`PageWalker::pte_hole`] if `walker` has it.
    #[inline]
    fn hole<T: PageWalker, const UFFD_WP: bool>(
        walker: &mut T,
        vma: Option<&VmaRef>,
        start: usize,
        end: usize,
    ) -> WalkResult {
        if !T::HAS_PTE_HOLE {
            return Ok(ControlFlow::Continue(()));
        }
        // INVARIANT (of `Hole`): `start..end` is part of the walked range, within `vma` if there
        // is one, with the mmap read lock held; with `UFFD_WP` the caller runs the walk inside an
        // mmu notifier invalidation of the walked range.
        walker.pte_hole(&mut Hole::new(vma, start, end, UFFD_WP))
    }
}

#[inline]
fn to_c(r: WalkResult) -> c_int {
    match r {
        Ok(ControlFlow::Continue(())) => 0,
        // Any positive value ends the walk and is returned by `walk_page_range_vma()`.
        Ok(ControlFlow::Break(())) => 1,
        Err(e) => e.to_errno(),
    }
}

/// The C callbacks of a walk with a `T`; `UFFD_WP` if the walk runs inside an mmu notifier
/// invalidation of its range, so that it may write-protect entries.
struct WalkOps<T: PageWalker, const UFFD_WP: bool>(PhantomData<T>);

impl<T: PageWalker, const UFFD_WP: bool> WalkOps<T, UFFD_WP> {
    const OPS: bindings::mm_walk_ops = bindings::mm_walk_ops {
        // `walk_page_range_vma()`, which the walk calls for what it does not walk itself
        // ([`MmapReadGuard::walk_vma`]), does not test the VMA: the walk asks
        // [`PageWalker::test_vma`] itself.
        pmd_entry: if T::HAS_PMD_ENTRY {
            Some(Self::pmd_entry)
        } else {
            None
        },
        pte_hole: if T::HAS_PTE_HOLE {
            Some(Self::pte_hole)
        } else {
            None
        },
        #[cfg(CONFIG_HUGETLB_PAGE)]
        hugetlb_entry: if T::HAS_HUGETLB_ENTRY {
            Some(Self::hugetlb_entry)
        } else {
            None
        },
        walk_lock: bindings::page_walk_lock_PGWALK_RDLOCK,
        ..pin_init::zeroed()
    };

    /// Returns the walker and the VMA of a walk.
    ///
    /// # Safety
    ///
    /// `walk` is the `struct mm_walk` of a walk started by [`MmapReadGuard::walk_vma`] with a `T`,
    /// and the walk is in a callback; no other reference to the walker exists.
    unsafe fn state<'a>(walk: *mut bindings::mm_walk) -> (&'a mut T, Option<&'a VmaRef>) {
        // SAFETY: `walk` is valid during the callback (the function's safety requirements).
        let (private, vma) = unsafe { ((*walk).private, (*walk).vma) };
        // SAFETY: `private` is the `&mut T` that `walk_page_range_vma` passed, which outlives the
        // walk and has no other user during it.
        let walker = unsafe { &mut *private.cast::<T>() };
        // SAFETY: A non-null `vma` is the VMA being walked, valid under the mmap read lock that
        // `walk_page_range_vma` holds for the whole walk.
        let vma = (!vma.is_null()).then(|| unsafe { VmaRef::from_raw(vma) });
        (walker, vma)
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_vma`] with a `T`.
    unsafe extern "C" fn pmd_entry(
        pmd: *mut bindings::pmd_t,
        start: c_ulong,
        end: c_ulong,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range_vma` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        let (Some(vma), Some(pmd), Some(walk)) = (vma, NonNull::new(pmd), NonNull::new(walk))
        else {
            return EINVAL.to_errno();
        };
        let range = WalkRange {
            vma,
            start,
            end,
            uffd_wp: UFFD_WP,
        };
        // SAFETY: `walk` is non-null (checked above), so a pointer to its field is too.
        let action =
            unsafe { NonNull::new_unchecked(core::ptr::addr_of_mut!((*walk.as_ptr()).action)) };
        // SAFETY: `walk_pmd_range()` calls `pmd_entry` for a valid PMD entry of `vma`, which
        // covers `start..end`, with the mmap read lock held; `walk` is the running walk, which
        // outlives `entry` and reads its `action` once `pmd_entry` returns.
        let mut entry = unsafe { PmdEntry::new(range, pmd, action) };
        to_c(walker.pmd_entry(&mut entry))
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_vma`] with a `T`.
    unsafe extern "C" fn pte_hole(
        start: c_ulong,
        end: c_ulong,
        _depth: c_int,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range_vma` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        let mut hole = Hole::new(vma, start, end, UFFD_WP);
        to_c(walker.pte_hole(&mut hole))
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_vma`] with a `T`.
    #[cfg(CONFIG_HUGETLB_PAGE)]
    unsafe extern "C" fn hugetlb_entry(
        ptep: *mut bindings::pte_t,
        hmask: c_ulong,
        start: c_ulong,
        end: c_ulong,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range_vma` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        let (Some(vma), Some(ptep)) = (vma, NonNull::new(ptep)) else {
            return EINVAL.to_errno();
        };
        let range = WalkRange {
            vma,
            start,
            end,
            uffd_wp: UFFD_WP,
        };
        // SAFETY: `walk_hugetlb_range()` calls `hugetlb_entry` with the entry of the hugetlb page
        // that covers `start..end` of `vma`, holding the hugetlb VMA lock for reading.
        let mut entry = unsafe { HugetlbEntry::new(range, ptep, (!hmask).wrapping_add(1)) };
        to_c(walker.hugetlb_entry(&mut entry))
    }
}

/// Returns the end of the part of `addr..end` that lies in the same `size`-aligned block as `addr`
/// (C `pmd_addr_end()` and `pud_addr_end()` where those levels are not folded), also where the
/// block is the last of the address space.
#[inline]
fn addr_end(addr: usize, end: usize, size: usize) -> usize {
    let boundary = (addr & !(size - 1)).wrapping_add(size);
    if boundary.wrapping_sub(1) < end - 1 {
        boundary
    } else {
        end
    }
}

/// Flushes the TLB entries of `start..end` of `vma`, which a lock guard write-protected.
#[inline]
fn flush_tlb_range(vma: &VmaRef, start: usize, end: usize) {
    #[cfg(CONFIG_RUST_MM_PAGEWALK_KUNIT_TEST)]
    tests::record_flush(start, end);
    // SAFETY: The range is within `vma`, which is valid (type invariants of `VmaRef`).
    unsafe { bindings::flush_tlb_range(vma.as_ptr(), start, end) };
}

/// Flushes the TLB entries of `start..end` of the hugetlb VMA `vma`, which a lock guard
/// write-protected.
#[cfg(CONFIG_HUGETLB_PAGE)]
#[inline]
fn flush_hugetlb_tlb_range(vma: &VmaRef, start: usize, end: usize) {
    #[cfg(CONFIG_RUST_MM_PAGEWALK_KUNIT_TEST)]
    tests::record_flush(start, end);
    // SAFETY: The range is within the hugetlb VMA `vma`, which is valid (type invariants of
    // `VmaRef`).
    unsafe { bindings::flush_hugetlb_tlb_range(vma.as_ptr(), start, end) };
}

/// The part of a VMA that a walk callback covers: `start()..end()` of `vma()`.
///
/// [`PmdEntry`], [`HugePmd`], [`HugetlbEntry`] and [`HugetlbLock`] dereference to it.
#[derive(Clone, Copy)]
pub struct WalkRange<'a> {
    vma: &'a VmaRef,
    start: usize,
    end: usize,
    /// The walk runs inside an mmu notifier invalidation of its range for a protection change
    /// ([`MmapReadGuard::walk_page_range_uffd_wp`]).
    uffd_wp: bool,
}

impl<'a> WalkRange<'a> {
    /// Returns the VMA.
    #[inline]
    pub fn vma(&self) -> &'a VmaRef {
        self.vma
    }

    /// Returns the first address of the range.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Returns the end (exclusive) of the range.
    #[inline]
    pub fn end(&self) -> usize {
        self.end
    }

    /// Returns the number of base pages in the range.
    #[inline]
    pub fn pages(&self) -> usize {
        (self.end - self.start) / PAGE_SIZE
    }
}

macro_rules! deref_to_range {
    ($ty:ident) => {
        impl<'a> core::ops::Deref for $ty<'a> {
            type Target = $crate::mm::pagewalk::WalkRange<'a>;

            #[inline]
            fn deref(&self) -> &$crate::mm::pagewalk::WalkRange<'a> {
                &self.range
            }
        }
    };
}
use deref_to_range;
