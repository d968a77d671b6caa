// SPDX-License-Identifier: GPL-2.0

//! Userfaultfd write protection of what a walk finds.
//!
//! In a VMA registered for userfaultfd write protection (`VM_UFFD_WP`), an entry with the uffd
//! bit is read-only for userfaultfd: a write to it faults, and the fault goes to the VMA's
//! userfaultfd context (or, in its asynchronous mode, drops the bit; see `PAGEMAP_SCAN`). A walk
//! write-protects entries through [`UffdWp`], a view of a lock guard (or of a hole) that exists
//! only where doing so is right:
//!
//! - the walk was started by [`MmapReadGuard::walk_page_range_uffd_wp`], which runs it inside an
//!   mmu notifier invalidation of the walked range, so that secondary MMUs drop their writable
//!   mappings of what is protected;
//! - the VMA is registered for userfaultfd write protection: a uffd bit in any other VMA would
//!   be a stale one, which C code has to clean up (the bit would survive a later registration
//!   and be taken for a protection userfaultfd never asked for);
//! - the guard records what was protected and flushes its TLB entries before it releases the
//!   page-table lock, on every path out of the walker method, so that no CPU keeps writing
//!   through a stale writable TLB entry once the protection is visible.
//!
//! [`MmapReadGuard::walk_page_range_uffd_wp`]: crate::mm::MmapReadGuard::walk_page_range_uffd_wp

use super::{Hole, HugePmd, HugetlbLock, PteTable, WalkRange};
use crate::{
    bindings,
    error::{code::EINVAL, Result},
    mm::{
        pgtable::{Pte, PteKind},
        virt::VmaRef,
    },
    page::PAGE_SIZE,
};
use core::ops::{
    ControlFlow::{self, Continue},
    Deref, DerefMut,
};

/// A VMA registered for userfaultfd write protection (`VM_UFFD_WP`).
///
/// # Invariants
///
/// The VMA has `VM_UFFD_WP`. Its flags change only under the mmap write lock (or the VMA's write
/// lock), and a [`VmaRef`] is only used with the mmap or VMA lock held, so the flag stays.
#[repr(transparent)]
pub(super) struct UffdWpVma(VmaRef);

impl VmaRef {
    /// Returns the VMA as a [`UffdWpVma`] if it is registered for userfaultfd write protection.
    #[inline]
    pub(super) fn as_uffd_wp(&self) -> Option<&UffdWpVma> {
        if !self.uffd_wp() {
            return None;
        }
        // SAFETY: `UffdWpVma` is a transparent wrapper of `VmaRef`, so the cast keeps layout
        // and validity. INVARIANT: the VMA has `VM_UFFD_WP`, just checked.
        Some(unsafe { &*core::ptr::from_ref(self).cast::<UffdWpVma>() })
    }
}

impl Deref for UffdWpVma {
    type Target = VmaRef;

    #[inline]
    fn deref(&self) -> &VmaRef {
        &self.0
    }
}

/// A lock guard of a walk (or a hole) whose entries may be write-protected for userfaultfd:
/// from `uffd_wp()` on a [`PteTable`], a [`HugePmd`], a [`HugetlbLock`] or a [`Hole`].
///
/// It dereferences to the guard, to read the entries.
///
/// # Invariants
///
/// The guard's VMA is registered for userfaultfd write protection, and the walk runs inside an
/// mmu notifier invalidation of a range covering the guard's range for a protection change.
pub struct UffdWp<'g, G>(&'g mut G);

impl<G> Deref for UffdWp<'_, G> {
    type Target = G;

    #[inline]
    fn deref(&self) -> &G {
        self.0
    }
}

impl<G> DerefMut for UffdWp<'_, G> {
    #[inline]
    fn deref_mut(&mut self) -> &mut G {
        self.0
    }
}

impl<'a> WalkRange<'a> {
    /// Returns whether the walk may write-protect the range's entries for userfaultfd: it was
    /// started by [`MmapReadGuard::walk_page_range_uffd_wp`] and the VMA is registered for
    /// userfaultfd write protection.
    ///
    /// [`MmapReadGuard::walk_page_range_uffd_wp`]:
    ///     crate::mm::MmapReadGuard::walk_page_range_uffd_wp
    #[inline]
    fn may_uffd_wp(&self) -> bool {
        self.uffd_wp && self.vma().as_uffd_wp().is_some()
    }
}

impl<'a> PteTable<'a> {
    /// Returns the table as one whose entries may be write-protected for userfaultfd, or `None`
    /// unless the walk was started by [`MmapReadGuard::walk_page_range_uffd_wp`] and the VMA is
    /// registered for userfaultfd write protection.
    ///
    /// [`MmapReadGuard::walk_page_range_uffd_wp`]:
    ///     crate::mm::MmapReadGuard::walk_page_range_uffd_wp
    #[inline]
    pub fn uffd_wp(&mut self) -> Option<UffdWp<'_, Self>> {
        // INVARIANT: Checked; the mmu notifier invalidation covers the walk's ranges (type
        // invariants of `PteTable`).
        self.range.may_uffd_wp().then_some(UffdWp(self))
    }

    /// Protects the entry at `index`, whose value under the lock is `pte`, with userfaultfd
    /// (C `make_uffd_wp_pte()`), and adds it to the entries to flush if it was present.
    ///
    /// The change of a present entry, the one a dirty-tracking round makes, is inline in the
    /// loop that finds the entry; the others are out of line.
    ///
    /// # Safety
    ///
    /// `index < self.len()`, `pte` is the entry's value, and the walk may write-protect the
    /// table's entries (an [`UffdWp`] of the table exists).
    #[inline(always)]
    unsafe fn protect_entry(&mut self, index: usize, pte: Pte) {
        if !pte.is_present() {
            // SAFETY: The function's safety requirements, and the entry is not present.
            unsafe { self.protect_non_present(index, pte) };
            return;
        }
        let (vma, addr) = (self.vma().as_ptr(), self.addr(index));
        // SAFETY: `index` is in range, so this is one of the mapped entries (type invariants).
        let ptep = unsafe { self.ptes.as_ptr().add(index) };
        // SAFETY: The entry is present, mapped and locked; the start is committed right below,
        // under the same lock.
        let old = unsafe { bindings::ptep_modify_prot_start(vma, addr, ptep) };
        // SAFETY: `pte_mkuffd()` is a pure function of the value; this commits the modification
        // started above.
        unsafe {
            bindings::ptep_modify_prot_commit(vma, addr, ptep, old, bindings::pte_mkuffd(old))
        };
        // INVARIANT: The entry may be cached in a TLB as writable: flush it before the lock is
        // released.
        // An empty range starts at `usize::MAX`, so this needs no branch; `index < len`, so
        // `index + 1` does not wrap.
        self.flush = (
            self.flush.0.min(index),
            self.flush.1.max(index.wrapping_add(1)),
        );
    }

    /// Protects the non-present entry at `index`, whose value under the lock is `pte`, as
    /// [`PteTable::protect_entry`] does.
    ///
    /// # Safety
    ///
    /// As for [`PteTable::protect_entry`]; the entry is not present.
    #[inline(never)]
    unsafe fn protect_non_present(&mut self, index: usize, pte: Pte) {
        let new = match pte.kind() {
            // Not reached: `protect_entry()` changes present entries itself.
            PteKind::Present => return,
            // Unpopulated entries are protected only where the VMA uses markers, as
            // `uffd_wp_range()` does.
            PteKind::None if !self.vma().uffd_wp_use_markers() => return,
            // SAFETY: Pure function of the value.
            PteKind::None => unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) },
            // SAFETY: Pure function of the value, a software leaf.
            PteKind::Leaf(_) => unsafe { bindings::pte_swp_mkuffd(pte.as_raw()) },
        };
        // SAFETY: `index` is in range, so this is one of the mapped entries (type invariants).
        let ptep = unsafe { self.ptes.as_ptr().add(index) };
        // SAFETY: The entry is mapped and locked and not present, so the CPU neither caches nor
        // writes it.
        unsafe { bindings::set_pte_at(self.vma().mm().as_raw(), self.addr(index), ptep, new) };
    }
}

impl UffdWp<'_, PteTable<'_>> {
    /// Protects entry `index` with userfaultfd, whatever its kind (C `make_uffd_wp_pte()`): a
    /// present entry gets the uffd bit (keeping the accessed and dirty bits the hardware sets
    /// meanwhile), a none entry a uffd-wp marker if the VMA uses markers (C
    /// `userfaultfd_wp_use_markers()`), a software leaf (swap, migration, marker) the
    /// bit in its swap encoding. The TLB entry of a present one is flushed before the table is
    /// unlocked.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range.
    #[inline]
    pub fn protect(&mut self, index: usize) -> Result {
        let pte = self.get(index).ok_or(EINVAL)?;
        // SAFETY: `get` checked `index`; `pte` is the entry's value, read under the lock, which
        // only the hardware changes meanwhile, and only in the accessed and dirty bits of a
        // present entry, which `ptep_modify_prot_start()` keeps. `self` exists.
        unsafe { self.0.protect_entry(index, pte) };
        Ok(())
    }

    /// Protects with userfaultfd each entry of `from..to` that is not protected yet, as
    /// [`UffdWp::protect`] does one entry: the loop of an exclusive write protection, which
    /// leaves protected entries as they are.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `from..to` is out of range.
    #[inline]
    pub fn protect_unprotected(&mut self, from: usize, to: usize) -> Result {
        if from > to || to > self.len() {
            return Err(EINVAL);
        }
        let _ = self.protect_picked(from, to, |_| true, |_| Continue(()));
        Ok(())
    }

    /// Goes through the entries from index `from` on and protects each one that is not protected
    /// yet and that `select` picks, as [`UffdWp::protect`] does, once `take` has agreed; stops
    /// with `Break` where `take` breaks, before that entry is protected.
    ///
    /// Entries that are protected already are left alone: they are neither given to `select`
    /// nor passed to `take` (they need nothing, and the loop tells most of them at a glance).
    /// `select` gets the value of each other entry, `take` the address of each entry picked.
    /// This is the loop of a scan that reports what it protects: one pass, each entry read once.
    #[inline]
    pub fn protect_each(
        &mut self,
        from: usize,
        select: impl FnMut(Pte) -> bool,
        take: impl FnMut(usize) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.protect_picked(from, self.len(), select, take)
    }

    /// Does [`UffdWp::protect_each`] on the entries `from..to` (none past `len()`).
    #[inline(always)]
    fn protect_picked(
        &mut self,
        from: usize,
        to: usize,
        mut select: impl FnMut(Pte) -> bool,
        mut take: impl FnMut(usize) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let to = to.min(self.len());
        let mut from = from;
        while let Some((index, pte)) = self.pick(from, to, &mut select) {
            take(self.addr(index))?;
            // SAFETY: `index < to <= len()` and `pte` was read under the lock, which only the
            // hardware changes meanwhile, and only in the accessed and dirty bits of a present
            // entry, which `ptep_modify_prot_start()` keeps. `self` exists.
            unsafe { self.0.protect_entry(index, pte) };
            // `index < to`: this does not wrap.
            from = index.wrapping_add(1);
        }
        Continue(())
    }

    /// Returns the first entry of `from..end` that is not protected and that `select` picks,
    /// with its index; `end` is at most `len()`.
    ///
    /// Most entries are protected already: they are looked at eight per round, so that the bound
    /// check and the branch back are paid once per eight entries, and two at a time, so that two
    /// protected entries that a comparison or two can tell ([`Pte::both_known_uffd`]: present
    /// ones on x86-64, uffd-wp markers) are skipped together.
    #[inline(always)]
    fn pick(
        &self,
        from: usize,
        end: usize,
        select: &mut impl FnMut(Pte) -> bool,
    ) -> Option<(usize, Pte)> {
        const GROUP: usize = 8;
        let mut picks = |pte: Pte| !pte.is_uffd_present_first() && select(pte);
        let mut index = from;
        // Looks at the entries `index + k` and `index + k + 1` for the given `k`, each read just
        // before they are looked at; the round below gives each even `k < GROUP` once.
        // `index + GROUP <= end`: the additions cannot wrap (and the checks for it would cost one
        // per entry).
        macro_rules! look_at {
            ($($k:literal)*) => {
                const { assert!([$($k),*].len() * 2 == GROUP) };
                $(
                    const { assert!($k % 2 == 0 && $k < GROUP) };
                    let i = index.wrapping_add($k);
                    let j = i.wrapping_add(1);
                    // SAFETY: `i < j < index + GROUP <= end <= len()`.
                    let (a, b) = unsafe { (self.0.entry(i), self.0.entry(j)) };
                    if !Pte::both_known_uffd(a, b) {
                        if picks(a) {
                            return Some((i, a));
                        }
                        if picks(b) {
                            return Some((j, b));
                        }
                    }
                )*
            };
        }
        // The last index from which a group fits before `end`, if any.
        if let Some(last) = end.checked_sub(GROUP) {
            while index <= last {
                look_at!(0 2 4 6);
                index = index.wrapping_add(GROUP);
            }
        }
        while index < end {
            // SAFETY: `index < end <= len()`.
            let pte = unsafe { self.0.entry(index) };
            if picks(pte) {
                return Some((index, pte));
            }
            index += 1;
        }
        None
    }
}

impl<'a> HugePmd<'a> {
    /// Returns the entry as one that may be write-protected for userfaultfd, or `None` unless
    /// the walk was started by [`MmapReadGuard::walk_page_range_uffd_wp`] and the VMA is
    /// registered for userfaultfd write protection.
    ///
    /// [`MmapReadGuard::walk_page_range_uffd_wp`]:
    ///     crate::mm::MmapReadGuard::walk_page_range_uffd_wp
    #[inline]
    pub fn uffd_wp(&mut self) -> Option<UffdWp<'_, Self>> {
        // INVARIANT: Checked; the mmu notifier invalidation covers the walk's ranges (type
        // invariants of `HugePmd`).
        self.range.may_uffd_wp().then_some(UffdWp(self))
    }
}

impl UffdWp<'_, HugePmd<'_>> {
    /// Protects the huge page with userfaultfd (C `make_uffd_wp_pmd()`): a present entry is
    /// invalidated first (`pmdp_invalidate_ad()`), so that the accessed and dirty bits the CPU
    /// may set meanwhile are kept, and gets the uffd bit; a PMD migration entry gets the bit in
    /// its swap encoding. The TLB entries of the huge page are flushed before it is unlocked.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless the walk covers the whole huge page: split it first.
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    pub fn protect(&mut self) -> Result {
        if !self.is_whole() {
            return Err(EINVAL);
        }
        let (vma, pmdp, addr) = (self.vma(), self.0.pmd.as_ptr(), self.start());
        let pmd = self.pmd();
        let new = if pmd.is_present() {
            // SAFETY: The PMD lock is held and the entry is a present huge page of `vma` at
            // `addr`, which is huge-page aligned (checked by `is_whole`).
            let old = unsafe { bindings::pmdp_invalidate_ad(vma.as_ptr(), addr, pmdp) };
            // SAFETY: Pure function of the value.
            unsafe { bindings::pmd_mkuffd(old) }
        } else if pmd.is_migration() {
            // SAFETY: Pure function of the value.
            unsafe { bindings::pmd_swp_mkuffd(pmd.as_raw()) }
        } else {
            return Ok(());
        };
        // SAFETY: The PMD lock is held; `new` is the entry, invalidated if it was present, plus
        // the bit.
        unsafe { bindings::set_pmd_at(vma.mm().as_raw(), addr, pmdp, new) };
        // INVARIANT: Flushed before the lock is released.
        self.0.flush = true;
        Ok(())
    }

    /// Protects the huge page with userfaultfd. Without `CONFIG_TRANSPARENT_HUGEPAGE` there is
    /// no huge page to protect.
    #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
    pub fn protect(&mut self) -> Result {
        match self.0._thp {}
    }
}

impl<'a> HugetlbLock<'a> {
    /// Returns the entry as one that may be write-protected for userfaultfd, or `None` unless
    /// the walk was started by [`MmapReadGuard::walk_page_range_uffd_wp`] and the VMA is
    /// registered for userfaultfd write protection.
    ///
    /// [`MmapReadGuard::walk_page_range_uffd_wp`]:
    ///     crate::mm::MmapReadGuard::walk_page_range_uffd_wp
    #[inline]
    pub fn uffd_wp(&mut self) -> Option<UffdWp<'_, Self>> {
        // INVARIANT: Checked; the mmu notifier invalidation covers the walk's ranges (type
        // invariants of `HugetlbEntry`).
        self.range.may_uffd_wp().then_some(UffdWp(self))
    }
}

impl UffdWp<'_, HugetlbLock<'_>> {
    /// Protects the huge page with userfaultfd (C `make_uffd_wp_huge_pte()`): a present entry
    /// gets the uffd bit, a migration entry the bit in its swap encoding, and a none entry a
    /// uffd-wp marker; hardware-poison entries and markers are left alone. The TLB entries of
    /// the huge page are flushed before it is unlocked.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless the walk covers the whole huge page: part of one cannot be protected.
    #[cfg(CONFIG_HUGETLB_PAGE)]
    pub fn protect(&mut self) -> Result {
        if !self.is_whole() {
            return Err(EINVAL);
        }
        // SAFETY: The entry is locked (type invariants of `HugetlbLock`) and covers the whole
        // huge page at `start()` of a uffd-wp VMA (type invariants).
        unsafe { make_uffd_wp_huge_pte(self.vma(), self.start(), self.0.ptep, self.0.size) };
        // INVARIANT: Flushed before the locks are released.
        self.0.flush = true;
        Ok(())
    }

    /// Protects the huge page with userfaultfd. Without `CONFIG_HUGETLB_PAGE` there is no
    /// hugetlb page to protect.
    #[cfg(not(CONFIG_HUGETLB_PAGE))]
    pub fn protect(&mut self) -> Result {
        match self.0._hugetlb {}
    }
}

impl<'a> Hole<'a> {
    /// Returns the hole as one that may be write-protected for userfaultfd, or `None` unless
    /// the walk was started by [`MmapReadGuard::walk_page_range_uffd_wp`] and the hole is in a
    /// VMA registered for userfaultfd write protection.
    ///
    /// [`MmapReadGuard::walk_page_range_uffd_wp`]:
    ///     crate::mm::MmapReadGuard::walk_page_range_uffd_wp
    #[inline]
    pub fn uffd_wp(&mut self) -> Option<UffdWp<'_, Self>> {
        let vma = self.vma?;
        // INVARIANT: Checked; the mmu notifier invalidation covers the hole (type invariants
        // of `Hole`).
        (self.uffd_wp && vma.as_uffd_wp().is_some()).then_some(UffdWp(self))
    }
}

impl UffdWp<'_, Hole<'_>> {
    /// Write-protects `start..end` of the hole for userfaultfd.
    ///
    /// In a hugetlb VMA each huge page gets a uffd-wp marker; elsewhere the range is protected as
    /// C `uffd_wp_range()` does, with markers where the VMA uses them. Entries that a fault
    /// populated since the walk saw the hole are protected too, and flushed.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless `start..end` is a non-empty, page-aligned part of the hole;
    /// [`ENOMEM`](crate::error::code::ENOMEM) if a page table could not be allocated.
    pub fn protect(&mut self, start: usize, end: usize) -> Result {
        if start >= end
            || start < self.start()
            || end > self.end()
            || (start | end) % PAGE_SIZE != 0
        {
            return Err(EINVAL);
        }
        let vma = self.vma().and_then(VmaRef::as_uffd_wp).ok_or(EINVAL)?;
        if vma.is_hugetlb() {
            return protect_hugetlb_holes(vma, start, end);
        }
        #[cfg(CONFIG_USERFAULTFD)]
        {
            // SAFETY: The range is within this uffd-wp VMA, which is valid, and the walk holds
            // the mmap read lock, as `change_protection()` requires.
            let changed =
                unsafe { bindings::uffd_wp_range(vma.as_ptr(), start, end - start, true) };
            if changed < 0 {
                return Err(i32::try_from(changed).map_or(EINVAL, crate::error::Error::from_errno));
            }
        }
        Ok(())
    }
}

/// Write-protects the hugetlb entry at `ptep` for userfaultfd (C `make_uffd_wp_huge_pte()`).
///
/// # Safety
///
/// `ptep` is the entry of the huge page of `size` bytes of the uffd-wp VMA `vma` at `addr`
/// (aligned), and the caller holds its page-table lock and the `i_mmap` lock of the VMA's file
/// for writing.
#[cfg(CONFIG_HUGETLB_PAGE)]
unsafe fn make_uffd_wp_huge_pte(
    vma: &VmaRef,
    addr: usize,
    ptep: core::ptr::NonNull<bindings::pte_t>,
    size: usize,
) {
    let (mm, ptep) = (vma.mm().as_raw(), ptep.as_ptr());
    // SAFETY: The entry is valid and locked (the function's safety requirements).
    let pte = Pte::from_raw(unsafe { bindings::huge_ptep_get(mm, addr, ptep) });
    let new = match pte.kind() {
        // SAFETY: Pure function of the value.
        PteKind::None => unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) },
        // SAFETY: Pure function of the value, a software leaf.
        PteKind::Leaf(leaf) if leaf.is_migration() => unsafe {
            bindings::pte_swp_mkuffd(pte.as_raw())
        },
        PteKind::Leaf(_) => return,
        PteKind::Present => {
            // SAFETY: The entry is present and locked; the start is committed right below.
            let old = unsafe { bindings::huge_ptep_modify_prot_start(vma.as_ptr(), addr, ptep) };
            // SAFETY: Pure function of the value; commits the change started above.
            unsafe {
                bindings::huge_ptep_modify_prot_commit(
                    vma.as_ptr(),
                    addr,
                    ptep,
                    old,
                    bindings::huge_pte_mkuffd(old),
                )
            };
            return;
        }
    };
    // SAFETY: The entry is locked and not present, so the CPU does not write to it.
    unsafe { bindings::set_huge_pte_at(mm, addr, ptep, new, size) };
}

/// Write-protects the unpopulated hugetlb entries of `start..end` of a uffd-wp hugetlb VMA for
/// userfaultfd, installing a uffd-wp marker in each (entries that got populated meanwhile are
/// protected like [`UffdWp::protect`] does a locked one, with a TLB flush).
///
/// Unlike `uffd_wp_range()` this does not take the hugetlb VMA lock for writing, so it can be
/// called from a walk, which holds it for reading. Page-table sharing is off in uffd-wp VMAs, so
/// the VMA lock guards nothing that this changes.
#[cfg(CONFIG_HUGETLB_PAGE)]
fn protect_hugetlb_holes(vma: &UffdWpVma, start: usize, end: usize) -> Result {
    // SAFETY: The VMA is a valid hugetlb VMA (checked by the caller), which has an hstate.
    let size = unsafe { bindings::huge_page_size(bindings::hstate_vma(vma.as_ptr())) };
    if !size.is_power_of_two() {
        return Err(EINVAL);
    }
    let mm = vma.mm().as_raw();
    let mut addr = start & !(size - 1);
    while addr < end {
        // SAFETY: `addr` is a huge-page aligned address of this hugetlb VMA, whose mmap lock is
        // held by the walk; page-table sharing is off for uffd-wp VMAs.
        let ptep = core::ptr::NonNull::new(unsafe {
            bindings::huge_pte_alloc(mm, vma.as_ptr(), addr, size)
        })
        .ok_or(crate::error::code::ENOMEM)?;
        // SAFETY: A hugetlb VMA is backed by a hugetlbfs file, valid while the VMA is.
        let mapping = unsafe { (*(*vma.as_ptr()).vm_file).f_mapping };
        // SAFETY: `mapping` is the live mapping of the VMA's file; `ptep` was just allocated for
        // this VMA, whose hstate locks it.
        let ptl = unsafe {
            bindings::i_mmap_lock_write(mapping);
            bindings::huge_pte_lock(bindings::hstate_vma(vma.as_ptr()), mm, ptep.as_ptr())
        };
        // SAFETY: The entry is locked.
        let was_none =
            Pte::from_raw(unsafe { bindings::huge_ptep_get(mm, addr, ptep.as_ptr()) }).is_none();
        // SAFETY: Both locks are held and `ptep` is the entry of the huge page at `addr` of this
        // uffd-wp VMA.
        unsafe { make_uffd_wp_huge_pte(vma, addr, ptep, size) };
        if !was_none {
            // A none entry is never cached in a TLB; one that a fault populated meanwhile is.
            super::flush_hugetlb_tlb_range(vma, addr, addr + size);
        }
        // SAFETY: Releases the locks taken above, once, in reverse order.
        unsafe {
            bindings::spin_unlock(ptl);
            bindings::i_mmap_unlock_write(mapping);
        }
        let Some(next) = addr.checked_add(size) else {
            break;
        };
        addr = next;
    }
    Ok(())
}

/// Without `CONFIG_HUGETLB_PAGE` no VMA is a hugetlb VMA.
#[cfg(not(CONFIG_HUGETLB_PAGE))]
fn protect_hugetlb_holes(_vma: &UffdWpVma, _start: usize, _end: usize) -> Result {
    Err(EINVAL)
}
