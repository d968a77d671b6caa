// SPDX-License-Identifier: GPL-2.0

//! Page-table walks.
//!
//! [`MmapReadGuard::walk_page_range`] walks the page tables of a range of an address space
//! (C `walk_page_range()`) and calls the methods of a [`PageWalker`] on what it finds:
//!
//! - [`PageWalker::test_vma`] once for each VMA that overlaps the range, to walk it or skip it;
//! - [`PageWalker::pmd_entry`] for each page middle directory entry that is not none: either a
//!   table of PTEs or a transparent huge page. [`PmdEntry::lock`] takes the right page-table
//!   lock and returns a [`PteTable`] to read and change the PTEs of the range, or a [`HugePmd`];
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
//! A walker method returns [`Walk::Continue`] to go on, [`Walk::Stop`] to end the walk early
//! (the walk then returns `Ok(Walk::Stop)`), or an error, which ends the walk and is returned.
//!
//! C header: [`include/linux/pagewalk.h`](srctree/include/linux/pagewalk.h)

use crate::{
    bindings,
    error::{code::EINVAL, from_result, Error, Result, VTABLE_DEFAULT_ERROR},
    ffi::{c_int, c_ulong, c_void},
    mm::{
        pgtable::{Pmd, Pte, PteKind},
        virt::VmaRef,
        MmapReadGuard,
    },
    page::PAGE_SIZE,
    prelude::*,
    types::NotThreadSafe,
};
use core::{marker::PhantomData, ptr::NonNull};

/// The size of the address range a PMD entry maps.
///
/// From C (`RUST_CONST_HELPER_PMD_SIZE`): arm64 computes `PMD_SHIFT` from the page-table
/// geometry, which bindgen cannot evaluate. (Where the PMD geometry is chosen at boot, as on
/// powerpc book3s64, `PMD_SIZE` is not a constant at all; this module does not build there.)
const PMD_SIZE: usize = bindings::PMD_SIZE;

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

/// What a walk does after a [`PageWalker`] method returned successfully.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Walk {
    /// Go on with the walk.
    Continue,
    /// End the walk here; [`MmapReadGuard::walk_page_range`] returns `Ok(Walk::Stop)`.
    Stop,
}

/// What to do with a VMA, decided by [`PageWalker::test_vma`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VmaAction {
    /// Walk the page tables of the VMA.
    Walk,
    /// Skip the VMA: none of the walker's methods is called for it.
    Skip,
}

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
/// use kernel::kunit::{prot, vm_mmap};
/// use kernel::mm::pagewalk::{PageWalker, PmdEntry, PmdLock, Walk};
/// use kernel::page::PAGE_SIZE;
/// use kernel::uaccess::{UserPtr, UserSlice};
///
/// struct CountPresent(usize);
///
/// #[vtable]
/// impl PageWalker for CountPresent {
///     fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> Result<Walk> {
///         match entry.lock() {
///             PmdLock::Table(ptes) => {
///                 self.0 += ptes.iter().filter(|(_, pte)| pte.is_present()).count();
///             }
///             PmdLock::Huge(huge) => self.0 += huge.pages(),
///             PmdLock::Retry => {}
///         }
///         Ok(Walk::Continue)
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
    fn pmd_entry(&mut self, _entry: &mut PmdEntry<'_>) -> Result<Walk> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called for each part of the range without a page table.
    ///
    /// `vma` is `None` for parts outside any VMA. A walker without [`PageWalker::test_vma`] also
    /// gets each `VM_PFNMAP` VMA as one hole, which is then skipped; [`Walk::Stop`] returned for
    /// it only skips that VMA (C `walk_page_test()`).
    fn pte_hole(&mut self, _vma: Option<&VmaRef>, _start: usize, _end: usize) -> Result<Walk> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called for each huge page (present or not) of a hugetlb VMA.
    fn hugetlb_entry(&mut self, _entry: &mut HugetlbEntry<'_>) -> Result<Walk> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

impl MmapReadGuard<'_> {
    /// Walks the page tables of `start..end` with `walker`.
    ///
    /// Returns `Ok(Walk::Stop)` if a method of `walker` stopped the walk, `Ok(Walk::Continue)`
    /// if it went through the whole range.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `start >= end`; otherwise the first error a method of `walker` returned.
    pub fn walk_page_range<T: PageWalker>(
        &self,
        start: usize,
        end: usize,
        walker: &mut T,
    ) -> Result<Walk> {
        if start >= end {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariants of `MmapReadGuard`, the mmap read lock of `self.mm` is
        // held, as `PGWALK_RDLOCK` requires, for the whole call. The ops table is static and its
        // callbacks expect `private` to be a `T`, which `walker` is; it outlives the call and is
        // not otherwise used during it.
        let ret = unsafe {
            bindings::walk_page_range(
                self.mm.as_raw(),
                start,
                end,
                &WalkOps::<T>::OPS,
                core::ptr::from_mut(walker).cast::<c_void>(),
            )
        };
        match ret {
            0 => Ok(Walk::Continue),
            r if r > 0 => Ok(Walk::Stop),
            r => Err(Error::from_errno(r)),
        }
    }
}

#[inline]
fn to_c(r: Result<Walk>) -> c_int {
    match r {
        Ok(Walk::Continue) => 0,
        // Any positive value ends the walk and is returned by `walk_page_range()`.
        Ok(Walk::Stop) => 1,
        Err(e) => e.to_errno(),
    }
}

/// The C callbacks of a walk with a `T`.
struct WalkOps<T: PageWalker>(PhantomData<T>);

impl<T: PageWalker> WalkOps<T> {
    const OPS: bindings::mm_walk_ops = bindings::mm_walk_ops {
        test_walk: if T::HAS_TEST_VMA {
            Some(Self::test_walk)
        } else {
            None
        },
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
    /// `walk` is the `struct mm_walk` of a walk started by [`MmapReadGuard::walk_page_range`]
    /// with a `T`, and the walk is in a callback; no other reference to the walker exists.
    unsafe fn state<'a>(walk: *mut bindings::mm_walk) -> (&'a mut T, Option<&'a VmaRef>) {
        // SAFETY: `walk` is valid during the callback (the function's safety requirements).
        let (private, vma) = unsafe { ((*walk).private, (*walk).vma) };
        // SAFETY: `private` is the `&mut T` that `walk_page_range` passed, which outlives the
        // walk and has no other user during it.
        let walker = unsafe { &mut *private.cast::<T>() };
        // SAFETY: A non-null `vma` is the VMA being walked, valid under the mmap read lock that
        // `walk_page_range` holds for the whole walk.
        let vma = (!vma.is_null()).then(|| unsafe { VmaRef::from_raw(vma) });
        (walker, vma)
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_page_range`] with a `T`.
    unsafe extern "C" fn test_walk(
        start: c_ulong,
        end: c_ulong,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        from_result(|| {
            let vma = vma.ok_or(EINVAL)?;
            Ok(match walker.test_vma(vma, start, end)? {
                VmaAction::Walk => 0,
                // A positive value skips the VMA.
                VmaAction::Skip => 1,
            })
        })
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_page_range`] with a `T`.
    unsafe extern "C" fn pmd_entry(
        pmd: *mut bindings::pmd_t,
        start: c_ulong,
        end: c_ulong,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        let (Some(vma), Some(pmd), Some(walk)) = (vma, NonNull::new(pmd), NonNull::new(walk))
        else {
            return EINVAL.to_errno();
        };
        // INVARIANT: `walk_pmd_range()` calls `pmd_entry` for a valid PMD entry of `vma`, which
        // covers `start..end`, with the mmap read lock held.
        let mut entry = PmdEntry {
            range: WalkRange { vma, start, end },
            pmd,
            walk,
        };
        to_c(walker.pmd_entry(&mut entry))
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_page_range`] with a `T`.
    unsafe extern "C" fn pte_hole(
        start: c_ulong,
        end: c_ulong,
        _depth: c_int,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        to_c(walker.pte_hole(vma, start, end))
    }

    /// # Safety
    ///
    /// Only the C page walker calls this, with the `struct mm_walk` of a walk started by
    /// [`MmapReadGuard::walk_page_range`] with a `T`.
    #[cfg(CONFIG_HUGETLB_PAGE)]
    unsafe extern "C" fn hugetlb_entry(
        ptep: *mut bindings::pte_t,
        hmask: c_ulong,
        start: c_ulong,
        end: c_ulong,
        walk: *mut bindings::mm_walk,
    ) -> c_int {
        // SAFETY: Called by the walk of `walk_page_range` with its `mm_walk`.
        let (walker, vma) = unsafe { Self::state(walk) };
        let (Some(vma), Some(ptep)) = (vma, NonNull::new(ptep)) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: `walk_hugetlb_range()` calls `hugetlb_entry` with the entry of the hugetlb
        // page that covers `start..end` of `vma`, holding the hugetlb VMA lock for reading.
        let mut entry = HugetlbEntry {
            range: WalkRange { vma, start, end },
            ptep,
            size: (!hmask).wrapping_add(1),
            _hugetlb: (),
        };
        to_c(walker.hugetlb_entry(&mut entry))
    }
}

/// The part of a VMA that a walk callback covers: `start()..end()` of `vma()`.
///
/// [`PmdEntry`], [`HugePmd`] and [`HugetlbEntry`] dereference to it.
#[derive(Clone, Copy)]
pub struct WalkRange<'a> {
    vma: &'a VmaRef,
    start: usize,
    end: usize,
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
            type Target = WalkRange<'a>;

            #[inline]
            fn deref(&self) -> &WalkRange<'a> {
                &self.range
            }
        }
    };
}

/// A page middle directory entry met by a walk, handed to [`PageWalker::pmd_entry`].
///
/// It covers `start()..end()` (at most one PMD's worth of address space) of `vma()`, through
/// its [`WalkRange`].
///
/// # Invariants
///
/// `pmd` points at a non-none PMD entry of `range.vma`'s page tables that covers `range`; `walk`
/// is the `struct mm_walk` of the running walk. The mmap read lock is held, so the PTE table a
/// non-huge entry points at is not freed while it is mapped by `pte_offset_map_lock()`.
pub struct PmdEntry<'a> {
    range: WalkRange<'a>,
    pmd: NonNull<bindings::pmd_t>,
    walk: NonNull<bindings::mm_walk>,
}

deref_to_range!(PmdEntry);

impl PmdEntry<'_> {
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
    /// will call [`PageWalker::pmd_entry`] again for this entry once the method returns.
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
                // INVARIANT: `pmd_trans_huge_lock()` returned the held lock of a huge entry.
                return PmdLock::Huge(HugePmd {
                    range: self.range,
                    pmd: self.pmd,
                    ptl,
                    _thp: (),
                    _nts: NotThreadSafe,
                });
            }
        }

        let mut ptl = core::ptr::null_mut();
        // SAFETY: By the type invariants, `pmd` is a PMD entry of the VMA's mm, which is alive,
        // and the mmap lock is held.
        let ptes = unsafe {
            bindings::pte_offset_map_lock(
                self.vma().mm().as_raw(),
                self.pmd.as_ptr(),
                self.start(),
                &mut ptl,
            )
        };
        match (NonNull::new(ptes), NonNull::new(ptl)) {
            (Some(ptes), Some(ptl)) => {
                // SAFETY: Always allowed; `PteTable::drop` leaves the mode again before it
                // unlocks the table.
                unsafe { bindings::lazy_mmu_mode_enable() };
                // INVARIANT: `pte_offset_map_lock()` mapped the table with the entry for
                // `start` at `ptes` and took its lock `ptl`; the range stays within one PMD.
                PmdLock::Table(PteTable {
                    vma: self.vma(),
                    ptes,
                    ptl,
                    start: self.start(),
                    len: self.pages(),
                    _nts: NotThreadSafe,
                })
            }
            _ => {
                self.set_action(bindings::page_walk_action_ACTION_AGAIN);
                PmdLock::Retry
            }
        }
    }

    /// Sets what the walk does with this entry once [`PageWalker::pmd_entry`] returns: go on
    /// (`ACTION_SUBTREE`, there is nothing below a PMD entry for it to do) or call it again
    /// (`ACTION_AGAIN`).
    #[inline]
    fn set_action(&mut self, action: bindings::page_walk_action) {
        // SAFETY: `walk` is the running walk's `mm_walk` (type invariants); the walker reads
        // `action` after `pmd_entry` returns.
        unsafe { (*self.walk.as_ptr()).action = action };
    }
}

/// The result of [`PmdEntry::lock`].
pub enum PmdLock<'a> {
    /// The entry maps a transparent huge page, or is a PMD-level migration entry.
    Huge(HugePmd<'a>),
    /// The entry points at a table of PTEs.
    Table(PteTable<'a>),
    /// The entry changed; return from [`PageWalker::pmd_entry`] and it is called again.
    Retry,
}

/// A locked huge PMD entry.
///
/// # Invariants
///
/// `pmd` is a huge PMD entry (a transparent huge page or a PMD-level migration entry) of
/// `range.vma` covering `range`, and `ptl` is its lock, held by this guard.
pub struct HugePmd<'a> {
    range: WalkRange<'a>,
    pmd: NonNull<bindings::pmd_t>,
    ptl: NonNull<bindings::spinlock_t>,
    _thp: ThpConfig,
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

    /// Protects the huge page with userfaultfd (sets the uffd bit, which also write-protects it).
    ///
    /// A present entry is invalidated first (`pmdp_invalidate_ad()`) so that the hardware
    /// accessed and dirty bits that the CPU may set meanwhile are kept; a PMD migration entry
    /// gets the bit in its swap encoding. The TLB still has to be flushed, see
    /// [`HugePmd::flush_tlb`].
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless the walk covers the whole huge page: split it first.
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    pub fn make_uffd_wp(&mut self) -> Result {
        if !self.is_whole() {
            return Err(EINVAL);
        }
        let (vma, pmdp, addr) = (self.vma(), self.pmd.as_ptr(), self.start());
        let pmd = self.pmd();
        if pmd.is_present() {
            // SAFETY: The PMD lock is held and the entry is a present huge page of `vma` at
            // `addr`, which is huge-page aligned (checked by `is_whole`).
            let old = unsafe { bindings::pmdp_invalidate_ad(vma.as_ptr(), addr, pmdp) };
            // SAFETY: Pure function of the value.
            let new = unsafe { bindings::pmd_mkuffd(old) };
            // SAFETY: The PMD lock is held; `new` is the entry just invalidated plus the bit.
            unsafe { bindings::set_pmd_at(vma.mm().as_raw(), addr, pmdp, new) };
        } else if pmd.is_migration() {
            // SAFETY: Pure function of the value.
            let new = unsafe { bindings::pmd_swp_mkuffd(pmd.as_raw()) };
            // SAFETY: The PMD lock is held and the entry is a migration entry, which the CPU
            // does not access.
            unsafe { bindings::set_pmd_at(vma.mm().as_raw(), addr, pmdp, new) };
        }
        Ok(())
    }

    /// Protects the huge page with userfaultfd. Without `CONFIG_TRANSPARENT_HUGEPAGE` there is
    /// no huge page to protect.
    #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
    pub fn make_uffd_wp(&mut self) -> Result {
        match self._thp {}
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

    /// Flushes the TLB entries of the walked part of the huge page.
    pub fn flush_tlb(&self) {
        // SAFETY: The range is within `vma`, which is valid under the mmap lock.
        unsafe { bindings::flush_tlb_range(self.vma().as_ptr(), self.start(), self.end()) };
    }

    /// Unlocks the entry and splits the huge page into a table of PTEs.
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
        // SAFETY: The guard holds the lock (type invariants).
        unsafe { bindings::spin_unlock(self.ptl.as_ptr()) };
    }
}

/// The PTEs of a walked range, mapped and locked.
///
/// While this guard lives, the PTE lock is held: the entries change only by the hardware setting
/// accessed and dirty bits on present entries, and by this guard's methods. The lazy MMU mode is
/// entered for the lifetime of the guard, so that changes can be batched.
///
/// # Invariants
///
/// `ptes` points at the `len` entries for `start..start + len * PAGE_SIZE` in a PTE table of
/// `vma`, mapped by `pte_offset_map_lock()`, whose lock `ptl` this guard holds.
pub struct PteTable<'a> {
    vma: &'a VmaRef,
    ptes: NonNull<bindings::pte_t>,
    ptl: NonNull<bindings::spinlock_t>,
    start: usize,
    len: usize,
    _nts: NotThreadSafe,
}

impl PteTable<'_> {
    /// Returns the number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the address that entry `index` maps.
    ///
    /// For `index <= len()` that is a page of the walked range or its end; a larger `index` gives
    /// an address of no use, but does not panic.
    #[inline]
    pub fn addr(&self, index: usize) -> usize {
        // The entries map consecutive pages from `start` on and lie in one PMD of user addresses
        // (type invariants), so this does not wrap for `index <= len`: the check for overflow,
        // on every entry of the loops over a table, would be dead code.
        self.start.wrapping_add(index.wrapping_mul(PAGE_SIZE))
    }

    /// Returns entry `index`, or `None` if out of range.
    #[inline]
    pub fn get(&self, index: usize) -> Option<Pte> {
        (index < self.len).then(|| {
            // SAFETY: `index` is in range, so the entry is valid and mapped (type invariants).
            Pte::from_raw(unsafe { bindings::ptep_get(self.ptes.as_ptr().add(index)) })
        })
    }

    /// Iterates over the entries with their addresses.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (usize, Pte)> + '_ {
        (0..self.len).filter_map(move |i| self.get(i).map(|pte| (self.addr(i), pte)))
    }

    #[inline]
    fn ptep(&self, index: usize) -> Result<*mut bindings::pte_t> {
        if index >= self.len {
            return Err(EINVAL);
        }
        // SAFETY: `index` is in range of the mapped entries (type invariants).
        Ok(unsafe { self.ptes.as_ptr().add(index) })
    }

    /// Changes a present entry with `f`, keeping hardware accessed and dirty bits.
    ///
    /// `ptep_modify_prot_start()` clears the entry so that the CPU cannot set bits in it while it
    /// is changed; `ptep_modify_prot_commit()` writes the new value back, under the same lock.
    #[inline]
    fn modify_present(&mut self, index: usize, f: impl FnOnce(Pte) -> Pte) -> Result {
        if !self.get(index).is_some_and(Pte::is_present) {
            return Err(EINVAL);
        }
        let ptep = self.ptep(index)?;
        let addr = self.addr(index);
        // SAFETY: The entry is present, mapped and locked (type invariants); the start is
        // committed below before the lock can be released.
        let old = unsafe { bindings::ptep_modify_prot_start(self.vma.as_ptr(), addr, ptep) };
        let new = f(Pte::from_raw(old));
        // SAFETY: Commits the modification started above, under the same lock.
        unsafe {
            bindings::ptep_modify_prot_commit(self.vma.as_ptr(), addr, ptep, old, new.as_raw())
        };
        Ok(())
    }

    /// Protects a present entry with userfaultfd: sets its uffd bit, which write-protects it.
    ///
    /// The TLB still has to be flushed ([`PteTable::flush_tlb`]) before the change is seen by all
    /// CPUs.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range or the entry is not present.
    #[inline]
    pub fn protect_uffd(&mut self, index: usize) -> Result {
        self.modify_present(index, |pte| {
            // SAFETY: Pure function of the value.
            Pte::from_raw(unsafe { bindings::pte_mkuffd(pte.as_raw()) })
        })
    }

    /// Clears the uffd bit of a present entry (it stays write-protected if it was).
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range or the entry is not present.
    #[inline]
    pub fn clear_uffd(&mut self, index: usize) -> Result {
        self.modify_present(index, |pte| {
            // SAFETY: Pure function of the value.
            Pte::from_raw(unsafe { bindings::pte_clear_uffd(pte.as_raw()) })
        })
    }

    /// Installs a userfaultfd write-protect marker in a none entry.
    ///
    /// The marker makes a later fault on the unpopulated page a userfaultfd write-protect fault
    /// in a `VM_UFFD_WP` VMA. No TLB flush is needed: a none entry is never cached.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range or the entry is not none.
    #[inline]
    pub fn install_uffd_wp_marker(&mut self, index: usize) -> Result {
        let ptep = self.ptep(index)?;
        if !self.get(index).is_some_and(Pte::is_none) {
            return Err(EINVAL);
        }
        // SAFETY: Pure function of the value.
        let marker = unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) };
        // SAFETY: The entry is mapped and locked (type invariants) and none, so nothing is
        // replaced.
        unsafe { bindings::set_pte_at(self.vma.mm().as_raw(), self.addr(index), ptep, marker) };
        Ok(())
    }

    /// Protects a non-present entry (swap, migration, marker) with userfaultfd.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range or the entry is present or none.
    #[inline]
    pub fn protect_uffd_leaf(&mut self, index: usize) -> Result {
        let ptep = self.ptep(index)?;
        let pte = self.get(index).ok_or(EINVAL)?;
        if pte.soft_leaf().is_none() {
            return Err(EINVAL);
        }
        // SAFETY: Pure function of the value, a software leaf.
        let new = unsafe { bindings::pte_swp_mkuffd(pte.as_raw()) };
        // SAFETY: The entry is mapped and locked (type invariants); it is not present, so the
        // CPU does not write to it.
        unsafe { bindings::set_pte_at(self.vma.mm().as_raw(), self.addr(index), ptep, new) };
        Ok(())
    }

    /// Returns whether entry `index` maps a page that is not anonymous memory.
    ///
    /// That is a page-cache or shmem page, mapped (C `vm_normal_page()`) or being migrated or
    /// held by a device (a software leaf with a page frame). The shared zero page and the raw
    /// page frames of `VM_PFNMAP` and `VM_MIXEDMAP` mappings are not "normal" pages and do not
    /// count; neither do swap entries, which are anonymous or shmem memory that is not in the
    /// page cache.
    pub fn maps_file_page(&self, index: usize) -> bool {
        let Some(pte) = self.get(index) else {
            return false;
        };
        let folio = match pte.kind() {
            PteKind::None => return false,
            PteKind::Present => {
                // SAFETY: The entry is mapped and locked (type invariants) and `pte` is its
                // value, at `addr(index)` of `vma`.
                let page = unsafe {
                    bindings::vm_normal_page(self.vma.as_ptr(), self.addr(index), pte.as_raw())
                };
                if page.is_null() {
                    return false;
                }
                // SAFETY: `vm_normal_page()` returned the page the locked entry maps.
                unsafe { bindings::page_folio(page) }
            }
            PteKind::Leaf(leaf) if leaf.has_pfn() => {
                // SAFETY: The entry is a software leaf with a page frame, locked (type
                // invariants), so its folio is pinned by the entry.
                unsafe { bindings::softleaf_to_folio(leaf.as_raw()) }
            }
            PteKind::Leaf(_) => return false,
        };
        // SAFETY: `folio` is the folio the locked entry refers to.
        !unsafe { bindings::folio_test_anon(folio) }
    }

    /// Protects entry `index` with userfaultfd, whatever its kind (C `make_uffd_wp_pte()`): a
    /// present entry like [`PteTable::protect_uffd`], a none entry with a uffd-wp marker, a
    /// software leaf like [`PteTable::protect_uffd_leaf`].
    ///
    /// Returns whether the entry was present, in which case its TLB entry has to be flushed
    /// ([`PteTable::flush_tlb`]).
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `index` is out of range.
    #[inline]
    pub fn protect_uffd_any(&mut self, index: usize) -> Result<bool> {
        let ptep = self.ptep(index)?;
        // SAFETY: `index` is in range, so the entry is valid, mapped and locked (type
        // invariants). It is read once: under the lock only the hardware changes it, and only
        // the accessed and dirty bits of a present entry.
        let pte = Pte::from_raw(unsafe { bindings::ptep_get(ptep) });
        // SAFETY: `ptep` is entry `index`, which maps `self.addr(index)`, and `pte` its value,
        // read under the lock.
        Ok(unsafe { self.protect_entry(ptep, self.addr(index), pte) })
    }

    /// Protects with userfaultfd each entry of `from..to` that is not protected yet, as
    /// [`PteTable::protect_uffd_any`] does one entry: the loop of an exclusive write protection,
    /// which leaves protected entries as they are.
    ///
    /// Returns the range of the entries that were present, whose TLB entries have to be flushed
    /// ([`PteTable::flush_tlb`]), or `None` if none was.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `from..to` is out of range.
    #[inline]
    pub fn protect_uffd_unprotected(
        &mut self,
        from: usize,
        to: usize,
    ) -> Result<Option<(usize, usize)>> {
        if from > to || to > self.len {
            return Err(EINVAL);
        }
        let mut flush: Option<(usize, usize)> = None;
        for index in from..to {
            // SAFETY: `index < to <= len`, so this is one of the mapped entries (type
            // invariants).
            let ptep = unsafe { self.ptes.as_ptr().add(index) };
            // SAFETY: The entry is mapped and locked. It is read once: under the lock only the
            // hardware changes it, and only the accessed and dirty bits of a present entry.
            let pte = Pte::from_raw(unsafe { bindings::ptep_get(ptep) });
            if pte.is_uffd() {
                continue;
            }
            // SAFETY: `ptep` is entry `index`, which maps `self.addr(index)`, and `pte` its value,
            // read under the lock.
            if unsafe { self.protect_entry(ptep, self.addr(index), pte) } {
                flush = Some((flush.map_or(index, |(first, _)| first), index + 1));
            }
        }
        Ok(flush)
    }

    /// Protects the entry at `ptep`, which maps `addr` and has the value `pte`, with
    /// userfaultfd; returns whether it was present.
    ///
    /// # Safety
    ///
    /// `ptep` must point at one of the guard's entries, the one mapping `addr`, and `pte` must be
    /// its value, read while the guard holds the lock.
    #[inline]
    unsafe fn protect_entry(&mut self, ptep: *mut bindings::pte_t, addr: usize, pte: Pte) -> bool {
        let new = match pte.kind() {
            PteKind::Present => {
                // SAFETY: The entry is present, mapped and locked; the start is committed right
                // below, under the same lock.
                let old =
                    unsafe { bindings::ptep_modify_prot_start(self.vma.as_ptr(), addr, ptep) };
                // SAFETY: `pte_mkuffd()` is a pure function of the value; this commits the
                // modification started above.
                unsafe {
                    bindings::ptep_modify_prot_commit(
                        self.vma.as_ptr(),
                        addr,
                        ptep,
                        old,
                        bindings::pte_mkuffd(old),
                    )
                };
                return true;
            }
            // SAFETY: Pure function of the value.
            PteKind::None => unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) },
            // SAFETY: Pure function of the value, a software leaf.
            PteKind::Leaf(_) => unsafe { bindings::pte_swp_mkuffd(pte.as_raw()) },
        };
        // SAFETY: The entry is mapped and locked and not present, so the CPU does not write to
        // it.
        unsafe { bindings::set_pte_at(self.vma.mm().as_raw(), addr, ptep, new) };
        false
    }

    /// Flushes the TLB entries for entries `from..to`.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] if `from..to` is empty or out of range.
    #[inline]
    pub fn flush_tlb(&self, from: usize, to: usize) -> Result {
        if from >= to || to > self.len {
            return Err(EINVAL);
        }
        // SAFETY: The range is within `vma` (type invariants), which is valid under the mmap lock.
        unsafe { bindings::flush_tlb_range(self.vma.as_ptr(), self.addr(from), self.addr(to)) };
        Ok(())
    }
}

impl Drop for PteTable<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: Leaves the lazy MMU mode entered by `PmdEntry::lock`.
        unsafe { bindings::lazy_mmu_mode_disable() };
        // SAFETY: The table was mapped and locked by `pte_offset_map_lock()` (type invariants)
        // with `ptes` in it; this unlocks and unmaps it once.
        unsafe { bindings::pte_unmap_unlock(self.ptes.as_ptr(), self.ptl.as_ptr()) };
    }
}

/// A hugetlb entry met by a walk, handed to [`PageWalker::hugetlb_entry`].
///
/// # Invariants
///
/// `ptep` is the entry of the hugetlb page of `size` bytes covering `range` of `range.vma`, and
/// the hugetlb VMA lock is held for reading, so that the entry is not freed.
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

    /// Reads the entry (without its page-table lock: it may change right after).
    #[cfg(CONFIG_HUGETLB_PAGE)]
    #[inline]
    pub fn pte(&self) -> HugetlbPte<'_> {
        // SAFETY: The entry is valid under the hugetlb VMA lock (type invariants).
        let pte = unsafe {
            bindings::huge_ptep_get(self.vma().mm().as_raw(), self.start(), self.ptep.as_ptr())
        };
        // INVARIANT: Read from the entry of a hugetlb page of the walked VMA.
        HugetlbPte {
            pte: Pte::from_raw(pte),
            _hugetlb: (),
            _entry: PhantomData,
        }
    }

    /// Locks the entry to change it: takes the file's `i_mmap` lock for writing (so that the
    /// page cannot be unmapped by truncation) and the entry's page-table lock.
    ///
    /// The guard borrows the entry mutably, so that there is one at a time.
    #[cfg(CONFIG_HUGETLB_PAGE)]
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
        // `HugetlbEntry`).
        HugetlbLock {
            range: self.range,
            ptep: self.ptep,
            size: self.size,
            mapping,
            ptl,
            _hugetlb: (),
            _nts: NotThreadSafe,
        }
    }

    /// Reads the entry. Without `CONFIG_HUGETLB_PAGE` there is no entry to read.
    #[cfg(not(CONFIG_HUGETLB_PAGE))]
    pub fn pte(&self) -> HugetlbPte<'_> {
        match self._hugetlb {}
    }

    /// Locks the entry. Without `CONFIG_HUGETLB_PAGE` there is no entry to lock.
    #[cfg(not(CONFIG_HUGETLB_PAGE))]
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

impl HugetlbPte<'_> {
    /// Returns whether the entry maps a huge page that is not anonymous: a page of a hugetlbfs
    /// file (a shared mapping, or a private one before copy on write).
    #[cfg(CONFIG_HUGETLB_PAGE)]
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

    /// Returns whether the entry maps a huge page that is not anonymous. Without
    /// `CONFIG_HUGETLB_PAGE` there is no entry.
    #[cfg(not(CONFIG_HUGETLB_PAGE))]
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
#[cfg_attr(not(CONFIG_HUGETLB_PAGE), expect(dead_code))]
pub struct HugetlbLock<'a> {
    range: WalkRange<'a>,
    ptep: NonNull<bindings::pte_t>,
    size: usize,
    mapping: *mut bindings::address_space,
    ptl: *mut bindings::spinlock_t,
    _hugetlb: HugetlbConfig,
    _nts: NotThreadSafe,
}

deref_to_range!(HugetlbLock);

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

    /// Protects the huge page with userfaultfd.
    pub fn make_uffd_wp(&mut self) -> Result {
        match self._hugetlb {}
    }

    /// Flushes the TLB entries of the huge page.
    pub fn flush_tlb(&self) {
        match self._hugetlb {}
    }
}

#[cfg(CONFIG_HUGETLB_PAGE)]
impl HugetlbLock<'_> {
    /// Reads the entry.
    #[inline]
    pub fn pte(&self) -> HugetlbPte<'_> {
        // SAFETY: The entry is valid and locked (type invariants).
        let pte = unsafe {
            bindings::huge_ptep_get(self.vma().mm().as_raw(), self.start(), self.ptep.as_ptr())
        };
        // INVARIANT: Read from the entry of a hugetlb page of the walked VMA.
        HugetlbPte {
            pte: Pte::from_raw(pte),
            _hugetlb: (),
            _entry: PhantomData,
        }
    }

    /// Returns whether the walk covers the whole huge page.
    #[inline]
    pub fn is_whole(&self) -> bool {
        self.start() % self.size == 0 && self.end() - self.start() == self.size
    }

    /// Protects the huge page with userfaultfd, like [`HugePmd::make_uffd_wp`]: a present
    /// entry gets the uffd bit, a migration entry the bit in its swap encoding, and a none entry
    /// a uffd-wp marker. Hardware-poison entries and markers are left alone. The TLB still has to
    /// be flushed, see [`HugetlbLock::flush_tlb`].
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless the walk covers the whole huge page: part of one cannot be protected.
    pub fn make_uffd_wp(&mut self) -> Result {
        if !self.is_whole() {
            return Err(EINVAL);
        }
        // SAFETY: The entry is locked (type invariants) and covers the whole huge page at
        // `start()`.
        unsafe { make_uffd_wp_huge_pte(self.vma(), self.start(), self.ptep, self.size) };
        Ok(())
    }

    /// Flushes the TLB entries of the huge page.
    pub fn flush_tlb(&self) {
        // SAFETY: The range is within the VMA, which is valid under the mmap lock.
        unsafe { bindings::flush_hugetlb_tlb_range(self.vma().as_ptr(), self.start(), self.end()) };
    }
}

#[cfg(CONFIG_HUGETLB_PAGE)]
impl Drop for HugetlbLock<'_> {
    fn drop(&mut self) {
        // SAFETY: The guard holds both locks (type invariants); they are released once, in the
        // reverse order of taking them.
        unsafe {
            bindings::spin_unlock(self.ptl);
            bindings::i_mmap_unlock_write(self.mapping);
        }
    }
}

/// Write-protects the hugetlb entry at `ptep` for userfaultfd (C `make_uffd_wp_huge_pte()`).
///
/// # Safety
///
/// `ptep` is the entry of the huge page of `size` bytes of `vma` at `addr` (aligned), and the
/// caller holds its page-table lock and the `i_mmap` lock of the VMA's file for writing.
#[cfg(CONFIG_HUGETLB_PAGE)]
unsafe fn make_uffd_wp_huge_pte(
    vma: &VmaRef,
    addr: usize,
    ptep: NonNull<bindings::pte_t>,
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

#[cfg(CONFIG_HUGETLB_PAGE)]
impl VmaRef {
    /// Write-protects the unpopulated hugetlb entries of `start..end` of a uffd-wp hugetlb VMA
    /// for userfaultfd, installing a uffd-wp marker in each (entries that got populated
    /// meanwhile are protected like [`HugetlbLock::make_uffd_wp`] does, with a TLB flush).
    ///
    /// Unlike `uffd_wp_range()` this does not take the hugetlb VMA lock for writing, so it can be
    /// called from a walk, which holds it for reading. Page-table sharing is off in uffd-wp
    /// VMAs, so the VMA lock guards nothing that this changes.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] unless this is a hugetlb VMA registered for userfaultfd write protection and
    /// `start..end` is within it; [`ENOMEM`] if a page table could
    /// not be allocated.
    pub fn uffd_wp_hugetlb_holes(&self, start: usize, end: usize) -> Result {
        if !self.is_hugetlb()
            || !self.userfaultfd_wp()
            || start >= end
            || start < self.start()
            || end > self.end()
        {
            return Err(EINVAL);
        }
        let size = self.huge_page_size();
        if !size.is_power_of_two() {
            return Err(EINVAL);
        }
        let mm = self.mm().as_raw();
        let mut addr = start & !(size - 1);
        while addr < end {
            // SAFETY: `addr` is a huge-page aligned address of this hugetlb VMA, whose mmap or vma
            // lock is held (type invariants); page-table sharing is off for uffd-wp VMAs.
            let ptep =
                NonNull::new(unsafe { bindings::huge_pte_alloc(mm, self.as_ptr(), addr, size) })
                    .ok_or(crate::error::code::ENOMEM)?;
            // SAFETY: A hugetlb VMA is backed by a hugetlbfs file, valid while the VMA is.
            let mapping = unsafe { (*(*self.as_ptr()).vm_file).f_mapping };
            // SAFETY: `mapping` is the live mapping of the VMA's file; `ptep` was just allocated
            // for this VMA, whose hstate locks it.
            let ptl = unsafe {
                bindings::i_mmap_lock_write(mapping);
                bindings::huge_pte_lock(bindings::hstate_vma(self.as_ptr()), mm, ptep.as_ptr())
            };
            // SAFETY: The entry is locked.
            let was_none =
                Pte::from_raw(unsafe { bindings::huge_ptep_get(mm, addr, ptep.as_ptr()) })
                    .is_none();
            // SAFETY: Both locks are held and `ptep` is the entry of the huge page at `addr`.
            unsafe { make_uffd_wp_huge_pte(self, addr, ptep, size) };
            if !was_none {
                // A none entry is never cached in a TLB; one that a fault populated meanwhile is.
                // SAFETY: The range is within this VMA.
                unsafe { bindings::flush_hugetlb_tlb_range(self.as_ptr(), addr, addr + size) };
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

    /// Returns the size of the huge pages of this hugetlb VMA.
    fn huge_page_size(&self) -> usize {
        // SAFETY: The VMA is a valid hugetlb VMA (checked by the caller), which has an hstate.
        unsafe { bindings::huge_page_size(bindings::hstate_vma(self.as_ptr())) }
    }
}

#[cfg(not(CONFIG_HUGETLB_PAGE))]
impl VmaRef {
    /// Write-protects the unpopulated hugetlb entries of `start..end` of a uffd-wp hugetlb VMA.
    ///
    /// # Errors
    ///
    /// [`EINVAL`]: without `CONFIG_HUGETLB_PAGE` no VMA is a hugetlb VMA.
    pub fn uffd_wp_hugetlb_holes(&self, _start: usize, _end: usize) -> Result {
        Err(EINVAL)
    }
}

#[cfg(CONFIG_RUST_MM_PAGEWALK_KUNIT_TEST)]
#[macros::kunit_tests(rust_mm_pagewalk)]
mod tests {
    use super::*;
    use crate::{
        kunit::{prot, vm_mmap},
        uaccess::{UserPtr, UserSlice},
    };

    /// What a test walker saw.
    ///
    /// The vectors are allocated before the walk: entries are recorded with a page-table lock
    /// held, where an allocation could sleep.
    struct Seen {
        /// Addresses and entries of every PTE of the walked tables.
        ptes: KVec<(usize, Pte)>,
        /// Huge entries: start, end and the entry.
        huge: KVec<(usize, usize, Pmd)>,
        /// Holes: start, end and whether they were inside a VMA.
        holes: KVec<(usize, usize, bool)>,
        /// The VMAs tested, as start and end of the part in the range.
        vmas: KVec<(usize, usize)>,
        /// Skip VMAs that start at this address.
        skip: Option<usize>,
        /// Stop after this many present PTEs.
        stop_after: Option<usize>,
        /// Fail with this error on the first present PTE.
        fail: Option<Error>,
        /// Split huge pages before looking at their PTEs.
        split: bool,
        /// For each PMD entry, whether [`PmdEntry::huge_lockless`] saw a huge one.
        lockless_huge: KVec<bool>,
    }

    impl Default for Seen {
        fn default() -> Self {
            // Room for the largest walk of a test, a few PTE tables. If an allocation fails, the
            // walk fails with `ENOMEM` when it runs out of room, and so does the test.
            fn room<T>(n: usize) -> KVec<T> {
                KVec::with_capacity(n, GFP_KERNEL).unwrap_or_default()
            }
            Seen {
                ptes: room(4 * (PMD_SIZE / PAGE_SIZE)),
                huge: room(16),
                holes: KVec::new(),
                vmas: KVec::new(),
                skip: None,
                stop_after: None,
                fail: None,
                split: false,
                lockless_huge: KVec::new(),
            }
        }
    }

    /// Records `value` in `v` without allocating.
    fn record<T>(v: &mut KVec<T>, value: T) -> Result {
        v.push_within_capacity(value).map_err(|_| ENOMEM)
    }

    #[vtable]
    impl PageWalker for Seen {
        fn test_vma(&mut self, vma: &VmaRef, start: usize, end: usize) -> Result<VmaAction> {
            self.vmas.push((start, end), GFP_KERNEL)?;
            Ok(if Some(vma.start()) == self.skip {
                VmaAction::Skip
            } else {
                VmaAction::Walk
            })
        }

        fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> Result<Walk> {
            self.lockless_huge
                .push(entry.huge_lockless().is_some(), GFP_KERNEL)?;
            let ptes = loop {
                match entry.lock() {
                    PmdLock::Retry => return Ok(Walk::Continue),
                    PmdLock::Huge(huge) if self.split => huge.split(),
                    PmdLock::Huge(huge) => {
                        record(&mut self.huge, (huge.start(), huge.end(), huge.pmd()))?;
                        return Ok(Walk::Continue);
                    }
                    PmdLock::Table(ptes) => break ptes,
                }
            };
            for (addr, pte) in ptes.iter() {
                record(&mut self.ptes, (addr, pte))?;
                if pte.is_present() {
                    if let Some(err) = self.fail {
                        return Err(err);
                    }
                    let present = self.ptes.iter().filter(|(_, p)| p.is_present()).count();
                    if Some(present) == self.stop_after {
                        return Ok(Walk::Stop);
                    }
                }
            }
            Ok(Walk::Continue)
        }

        fn pte_hole(&mut self, vma: Option<&VmaRef>, start: usize, end: usize) -> Result<Walk> {
            self.holes.push((start, end, vma.is_some()), GFP_KERNEL)?;
            Ok(Walk::Continue)
        }
    }

    fn touch(addr: usize) -> Result {
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .writer()
            .write(&0x5au8)
    }

    fn read(addr: usize) -> Result {
        let mut buf = KVec::new();
        UserSlice::new(UserPtr::from_addr(addr), 1).read_all(&mut buf, GFP_KERNEL)
    }

    fn walk<T: PageWalker>(start: usize, end: usize, walker: &mut T) -> Result<Walk> {
        let current = crate::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let guard = mm.mmap_read_lock();
        guard.walk_page_range(start, end, walker)
    }

    fn present(seen: &Seen) -> KVec<usize> {
        let mut v = KVec::new();
        for (addr, _) in seen.ptes.iter().filter(|(_, p)| p.is_present()) {
            let _ = v.push(*addr, GFP_KERNEL);
        }
        v
    }

    #[test]
    fn reports_present_pages_and_their_bits() -> Result {
        let addr = vm_mmap(16 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        for page in [0, 3, 4, 9] {
            touch(addr + page * PAGE_SIZE)?;
        }
        read(addr + 12 * PAGE_SIZE)?;
        let mut seen = Seen::default();
        assert_eq!(
            walk(addr, addr + 16 * PAGE_SIZE, &mut seen)?,
            Walk::Continue
        );

        // One PTE table covers the range: every entry is reported, in order.
        assert_eq!(seen.ptes.len(), 16);
        for (i, (a, _)) in seen.ptes.iter().enumerate() {
            assert_eq!(*a, addr + i * PAGE_SIZE);
        }
        let want = [0, 3, 4, 9, 12].map(|p| addr + p * PAGE_SIZE);
        assert_eq!(&present(&seen)[..], &want[..]);
        for (a, pte) in seen.ptes.iter() {
            let page = (a - addr) / PAGE_SIZE;
            match page {
                0 | 3 | 4 | 9 => {
                    assert!(pte.is_write() && pte.is_dirty() && pte.is_young());
                    assert!(!pte.is_zero_pfn() && pte.pfn().is_some());
                }
                // A read fault on anonymous memory maps the shared zero page, read-only.
                12 => assert!(pte.is_zero_pfn() && !pte.is_write()),
                _ => assert!(pte.is_none() && matches!(pte.kind(), PteKind::None)),
            }
            assert!(!pte.is_uffd());
        }
        assert_eq!(seen.vmas.len(), 1);
        assert!(seen.huge.is_empty());
        Ok(())
    }

    #[test]
    fn reports_holes_inside_and_outside_vmas() -> Result {
        let addr = vm_mmap(4 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        // Nothing is populated: the VMA has no page table at all, or one with none entries.
        let mut seen = Seen::default();
        let (start, end) = (addr - 8 * PAGE_SIZE, addr + 4 * PAGE_SIZE);
        walk(start, end, &mut seen)?;
        assert!(present(&seen).is_empty());
        // The part below the mapping is a hole outside any VMA.
        assert!(seen.holes.contains(&(start, addr, false)));
        // The mapping itself is either a hole inside the VMA or none PTEs.
        let covered = seen
            .holes
            .iter()
            .filter(|h| h.2)
            .map(|h| h.1 - h.0)
            .sum::<usize>()
            + seen.ptes.len() * PAGE_SIZE;
        assert_eq!(covered, 4 * PAGE_SIZE);
        assert_eq!(&seen.vmas[..], &[(addr, end)][..]);
        Ok(())
    }

    #[test]
    fn walks_each_vma_and_skips_on_request() -> Result {
        // Different protections keep the two mappings apart as two VMAs.
        let a = vm_mmap(4 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let b = vm_mmap(4 * PAGE_SIZE, prot::READ)?;
        touch(a)?;
        read(b)?;
        let (start, end) = (a.min(b), a.max(b) + 4 * PAGE_SIZE);

        let mut seen = Seen::default();
        walk(start, end, &mut seen)?;
        assert_eq!(seen.vmas.len(), 2);
        assert!(seen.vmas[0].1 <= seen.vmas[1].0);
        let mut want = [a, b];
        want.sort_unstable();
        assert_eq!(&present(&seen)[..], &want[..]);

        let mut seen = Seen {
            skip: Some(a),
            ..Seen::default()
        };
        walk(start, end, &mut seen)?;
        assert_eq!(seen.vmas.len(), 2);
        assert_eq!(&present(&seen)[..], &[b][..]);
        Ok(())
    }

    #[test]
    fn stops_early_and_propagates_errors() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        for page in 0..8 {
            touch(addr + page * PAGE_SIZE)?;
        }
        let mut seen = Seen {
            stop_after: Some(3),
            ..Seen::default()
        };
        assert_eq!(walk(addr, addr + 8 * PAGE_SIZE, &mut seen)?, Walk::Stop);
        assert_eq!(present(&seen).len(), 3);

        let mut seen = Seen {
            fail: Some(ENOSPC),
            ..Seen::default()
        };
        assert_eq!(walk(addr, addr + 8 * PAGE_SIZE, &mut seen), Err(ENOSPC));
        assert_eq!(seen.ptes.len(), 1);

        assert_eq!(walk(addr, addr, &mut Seen::default()), Err(EINVAL));
        Ok(())
    }

    /// A walker that changes the uffd state of the PTEs at given pages.
    struct Protect {
        base: usize,
        protect: &'static [usize],
        marker: &'static [usize],
        clear: &'static [usize],
        errors: KVec<Error>,
    }

    #[vtable]
    impl PageWalker for Protect {
        fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> Result<Walk> {
            let PmdLock::Table(mut ptes) = entry.lock() else {
                return Ok(Walk::Continue);
            };
            let page_of = |i: usize, ptes: &PteTable<'_>| (ptes.addr(i) - self.base) / PAGE_SIZE;
            for i in 0..ptes.len() {
                let page = page_of(i, &ptes);
                let r = if self.protect.contains(&page) {
                    ptes.protect_uffd(i)
                } else if self.marker.contains(&page) {
                    ptes.install_uffd_wp_marker(i)
                } else if self.clear.contains(&page) {
                    ptes.clear_uffd(i)
                } else {
                    Ok(())
                };
                if let Err(e) = r {
                    record(&mut self.errors, e)?;
                }
            }
            ptes.flush_tlb(0, ptes.len())?;
            Ok(Walk::Continue)
        }
    }

    #[test]
    fn changes_uffd_state_under_the_pte_lock() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        for page in [0, 1, 2] {
            touch(addr + page * PAGE_SIZE)?;
        }
        let end = addr + 8 * PAGE_SIZE;
        let mut p = Protect {
            base: addr,
            protect: &[0, 1, 5],
            marker: &[6, 2],
            clear: &[],
            errors: KVec::with_capacity(8, GFP_KERNEL)?,
        };
        walk(addr, end, &mut p)?;
        // Page 5 is none (cannot be protected), page 2 is present (no marker).
        assert_eq!(&p.errors[..], &[EINVAL, EINVAL][..]);

        let mut seen = Seen::default();
        walk(addr, end, &mut seen)?;
        let pte = |page: usize| seen.ptes[page].1;
        for page in [0, 1] {
            // Protected: uffd bit set, no longer writable, still present and dirty.
            assert!(pte(page).is_uffd() && !pte(page).is_write());
            assert!(pte(page).is_present() && pte(page).is_dirty());
        }
        assert!(!pte(2).is_uffd() && pte(2).is_write());
        let leaf = pte(6).soft_leaf().ok_or(EINVAL)?;
        assert!(leaf.is_uffd_wp_marker() && leaf.is_marker() && !leaf.is_guard_marker());
        assert_eq!(leaf.kind(), crate::mm::pgtable::SoftLeafKind::Marker);
        assert!(pte(5).is_none());

        let mut p = Protect {
            base: addr,
            protect: &[],
            marker: &[],
            clear: &[0],
            errors: KVec::with_capacity(8, GFP_KERNEL)?,
        };
        walk(addr, end, &mut p)?;
        assert!(p.errors.is_empty());
        let mut seen = Seen::default();
        walk(addr, end, &mut seen)?;
        assert!(!seen.ptes[0].1.is_uffd() && seen.ptes[1].1.is_uffd());
        Ok(())
    }

    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    #[test]
    fn sees_and_splits_transparent_huge_pages() -> Result {
        // Two huge pages' worth, so that one aligned huge page fits inside.
        let map = vm_mmap(2 * PMD_SIZE, prot::READ | prot::WRITE)?;
        let start = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
        let end = start + PMD_SIZE;
        touch(start)?;

        let mut seen = Seen::default();
        walk(start, end, &mut seen)?;
        // THP is "always" in the test config: the write fault maps a whole huge page.
        assert_eq!(seen.huge.len(), 1);
        let (s, e, pmd) = seen.huge[0];
        assert_eq!((s, e), (start, end));
        assert!(pmd.is_present() && pmd.is_trans_huge() && pmd.pfn().is_some());
        assert!(!pmd.is_huge_zero() && !pmd.is_uffd());
        assert!(seen.ptes.is_empty());
        assert_eq!(seen.lockless_huge.as_slice(), &[true]);

        // After a split, the same memory is 512 present PTEs.
        let mut seen = Seen {
            split: true,
            ..Seen::default()
        };
        walk(start, end, &mut seen)?;
        assert!(seen.huge.is_empty());
        assert_eq!(present(&seen).len(), PMD_SIZE / PAGE_SIZE);

        // Now the entry points at a table: not huge, with or without the lock.
        let mut seen = Seen::default();
        walk(start, end, &mut seen)?;
        assert!(seen.huge.is_empty());
        assert_eq!(seen.lockless_huge.as_slice(), &[false]);
        Ok(())
    }
}
